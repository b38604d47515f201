//! The ingest path's kernels, one step at a time: each line parser, the HTTP body decoders, WAL
//! append with group commit (real fsyncs, concurrent appenders), and the Parquet flush per MB,
//! without and with its sidecar index, and PII redaction.
//!
//! `cargo bench --bench ingest_kernels` (figures in benches/RESULTS.md). Throughputs are per
//! input byte (parsers, decoders, flush) or per event (WAL).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datafusion::arrow::record_batch::RecordBatch;
use timberline::generate::Generator;
use timberline::ingest::decode::{decode_batch, decode_ndjson};
use timberline::model::format::{Clock, LineFormat, LOGHUB_SYSTEMS};
use timberline::model::{records_to_batch, LogRecord};
use timberline::segment::write_segments;
use timberline::wal::format::encode_records;
use timberline::wal::{Wal, WalSink};

const START: i64 = 1_705_276_800_000_000; // 2024-01-15T00:00:00Z

fn events(n: usize) -> Vec<serde_json::Value> {
    let mut g = Generator::new(1, START, 10_000);
    (0..n).map(|_| g.next_event()).collect()
}

fn records(n: usize) -> Vec<LogRecord> {
    let mut g = Generator::new(1, START, 10_000);
    (0..n).map(|_| g.next_record()).collect()
}

fn parsers(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_line");
    let mut g = Generator::new(1, START, 10_000);
    let triage: Vec<String> = (0..2_000).map(|_| g.next_triage_line()).collect();
    let mut inputs = vec![(LineFormat::Triage, triage)];
    for system in LOGHUB_SYSTEMS.iter() {
        let path = format!(
            "{}/tests/data/loghub/{n}/{n}_2k.log",
            env!("CARGO_MANIFEST_DIR"),
            n = system.name
        );
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let format = LineFormat::Loghub(system);
        inputs.push((format, text.lines().map(str::to_string).collect()));
    }
    // Year-less stamps are read as of 2024-06-01 (in UTC).
    let clock = Clock::new(1_717_200_000_000_000);
    for (format, lines) in &inputs {
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(BenchmarkId::from_parameter(format.name()), |b| {
            b.iter(|| {
                for l in lines {
                    black_box(format.parse(l, &clock));
                }
            })
        });
    }
    group.finish();
}

fn decoders(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_body");
    let evs = events(1_000);
    let ndjson: String = evs.iter().map(|e| format!("{e}\n")).collect();
    let batch = serde_json::json!({ "logs": evs }).to_string();
    group.throughput(Throughput::Bytes(ndjson.len() as u64));
    group.bench_function("ndjson_1000_events", |b| {
        b.iter(|| black_box(decode_ndjson(ndjson.as_bytes(), START)))
    });
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("json_batch_1000_events", |b| {
        b.iter(|| black_box(decode_batch(batch.as_bytes(), START)))
    });
    group.finish();
}

struct Discard;
impl WalSink for Discard {
    fn publish(&self, _seq: u64, _batch: RecordBatch) {}
}

fn wal(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let wal =
        Wal::start(dir.path(), 1, 64 << 20, Vec::new(), vec![Arc::new(Discard)]).expect("wal");
    let recs = records(1_000);
    let payload = encode_records(&recs);
    let batch = records_to_batch(&recs).expect("batch");
    // `concurrency` requests of 1,000 events in flight at once: the writer drains them all into
    // one fdatasync (group commit), so events/s grows with concurrency.
    for concurrency in [1usize, 4, 16] {
        group.throughput(Throughput::Elements((concurrency * recs.len()) as u64));
        group.bench_function(BenchmarkId::new("1000_events_x", concurrency), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let appends =
                            (0..concurrency).map(|_| wal.append(payload.clone(), batch.clone()));
                        for r in futures::future::join_all(appends).await {
                            r.expect("append");
                        }
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();
}

fn flush(c: &mut Criterion) {
    let mut group = c.benchmark_group("parquet_flush");
    group.sample_size(10);
    let recs = records(100_000);
    let raw: usize = recs
        .iter()
        .map(|r| r.msg.len() + r.attrs.len() + r.service.len() + r.host.len() + 48)
        .sum();
    let batch = records_to_batch(&recs).expect("batch");
    let dir = tempfile::tempdir().expect("temp dir");
    group.throughput(Throughput::Bytes(raw as u64));
    let mut id = 0;
    for (name, index) in [
        ("100k_events_sort_encode_fsync", None),
        (
            "100k_events_sort_encode_fsync_with_index",
            Some(timberline::index::BLOCK_ROWS),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    id += 100;
                    let started = Instant::now();
                    let written =
                        write_segments(dir.path(), std::slice::from_ref(&batch), id, index);
                    spent += started.elapsed();
                    black_box(written.expect("flush"));
                    // Files of earlier iterations would only fill the disk.
                    std::fs::remove_dir_all(dir.path().join("segments")).ok();
                }
                spent
            })
        });
    }
    group.finish();
}

/// PII redaction per batch of 1,000 generated events: no rules (the pass-through), the default
/// detectors on clean events, and on events a tenth of which carry an email, a card number or
/// a bearer token; compare with `decode_body` above (the same events' decode).
fn redaction(c: &mut Criterion) {
    use timberline::ingest::redact::Redactor;
    let mut group = c.benchmark_group("redact");
    let clean = records(1_000);
    let mut dirty = clean.clone();
    for (i, r) in dirty.iter_mut().enumerate().filter(|(i, _)| i % 10 == 0) {
        r.msg = match i % 30 {
            0 => format!("{} user=ana.lopez{i}@example.com", r.msg),
            10 => format!("{} paid with 4111 1111 1111 1111", r.msg),
            _ => format!("{} Authorization: Bearer abcDEF{i}123456789", r.msg),
        };
    }
    let bytes: usize = clean.iter().map(|r| r.msg.len() + r.attrs.len()).sum();
    group.throughput(Throughput::Bytes(bytes as u64));
    for (name, setting, input) in [
        ("none_1000_events", "none", &clean),
        ("default_clean_1000_events", "default", &clean),
        ("default_10pct_pii_1000_events", "default", &dirty),
    ] {
        let redactor = Redactor::new(setting, &[]).expect("rules");
        group.bench_function(name, |b| {
            b.iter_batched(
                || input.clone(),
                |mut batch| {
                    for r in batch.iter_mut() {
                        black_box(redactor.redact_record(r));
                    }
                    batch
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, parsers, decoders, wal, flush, redaction);
criterion_main!(benches);
