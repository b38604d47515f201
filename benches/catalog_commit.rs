//! One catalog commit when the catalog already lists 100,000 segments: the file catalog's
//! append of the change (what a flush does now) against rewriting the whole catalog file (what
//! each flush did before the log). Both fsync, as the real ones do.
//!
//! `cargo bench --bench catalog_commit` (figures in benches/RESULTS.md).

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use timberline::catalog::{Catalog, CatalogState, Change, FileCatalog, IndexMeta, SegmentMeta};

const SEGMENTS: u64 = 100_000;
const HOUR: i64 = 3_600_000_000;

fn segment(id: u64) -> SegmentMeta {
    let start = 1_705_276_800_000_000 + (id as i64 % 2_000) * HOUR;
    SegmentMeta {
        id,
        tenant: format!("tenant-{}", id % 50),
        min_ts: start,
        max_ts: start + HOUR - 1,
        rows: 250_000,
        bytes: 12_345_678,
        location: timberline::catalog::Location::hot(format!(
            "segments/tenant=tenant-{}/hour=2024-01-15T10/{id:020}.parquet",
            id % 50
        )),
        created_at: start + HOUR,
        index: Some(IndexMeta {
            version: 3,
            fields: ["msg", "service", "level", "trace_id", "attrs"]
                .map(String::from)
                .to_vec(),
            bytes: 1_234_567,
            blooms: ["trace_id", "attrs"].map(String::from).to_vec(),
        }),
    }
}

fn commit_at_100k(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = FileCatalog::open(dir.path()).expect("open");
    let mut next = 1;
    while next <= SEGMENTS {
        let added = (next..next + 1_000).map(segment).collect();
        let state = catalog
            .commit(Change::Flush {
                added,
                wal_through: next,
            })
            .expect("commit");
        catalog.install(state);
        next += 1_000;
    }
    let whole = serde_json::to_vec(&*catalog.current()).expect("json");
    let line = serde_json::to_vec(&Change::Flush {
        added: vec![segment(next)],
        wal_through: next,
    })
    .expect("json");
    eprintln!(
        "catalog of {} segments: {} bytes as one file; a one-segment commit appends {} bytes",
        catalog.current().segments.len(),
        whole.len(),
        line.len() + 30
    );

    let mut group = c.benchmark_group("catalog_commit_100k");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("log_append_one_segment", |b| {
        b.iter(|| {
            let state = catalog
                .commit(Change::Flush {
                    added: vec![segment(next)],
                    wal_through: next,
                })
                .expect("commit");
            catalog.install(state);
            next += 1;
        })
    });
    // Before the log: the new state in memory, then the whole file rewritten and fsynced.
    let old = dir.path().join("old");
    std::fs::create_dir_all(&old).expect("dir");
    let mut state: Arc<CatalogState> = catalog.current();
    group.bench_function("rewrite_whole_file_one_segment", |b| {
        b.iter(|| {
            let change = Change::Flush {
                added: vec![segment(next)],
                wal_through: next,
            };
            state = Arc::new(state.apply(&change).expect("apply"));
            let bytes = serde_json::to_vec(&*state).expect("json");
            timberline::storage::replace_file(&old.join("catalog.json"), "json.tmp", &bytes)
                .expect("write");
            timberline::storage::sync_dir(&old).expect("sync");
            next += 1;
        })
    });
    group.finish();
}

criterion_group!(benches, commit_at_100k);
criterion_main!(benches);
