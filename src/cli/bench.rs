//! `timberline bench …`: end-to-end measurements against a running server.
//!
//! - `ingest`: durable HTTP ingest of ~500-byte JSON events in 1,000-event batches from several
//!   concurrent clients for a fixed time; prints events/s and request latency percentiles.
//! - `visibility`: posts one uniquely tagged event, then queries it over pgwire until it is seen;
//!   prints the ingest → visible latency percentiles.
//! - `tail`: a steady ingest rate while many live-tail streams listen; prints the latency from
//!   each request's 202 to each stream's receipt of its probe row (see [`super::tail_bench`]).
//! - `sql`: one query template run for many targets over pgwire (Timberline or PostgreSQL alike);
//!   prints latency percentiles. Targets are `from + (to - from) · frac(i · φ⁻¹)`, a sequence any
//!   other driver (the DuckDB side of `benches/nearest.sh`) reproduces exactly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::shipper_bodies::{body, Protocol};
use crate::generate::Generator;
use crate::model::now_micros;

/// What to measure.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Sustained durable ingest over HTTP.
    Ingest {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Target size of one raw JSON event.
        #[arg(long, default_value_t = 500)]
        event_bytes: usize,
        /// Requests in flight (syslog: connections).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// The protocol to send in.
        #[arg(long, value_enum, default_value = "json")]
        protocol: Protocol,
        /// syslog TCP address (for `--protocol syslog-tcp`).
        #[arg(long, default_value = "127.0.0.1:1514")]
        syslog: String,
        /// pg connection, to see when syslog events (which get no acknowledgement) are stored.
        #[arg(
            long,
            default_value = "host=127.0.0.1 port=5433 user=timberline password=timberline"
        )]
        pg: String,
    },
    /// Ingest → visible-over-pgwire latency.
    Visibility {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        #[arg(
            long,
            default_value = "host=127.0.0.1 port=5433 user=timberline password=timberline"
        )]
        pg: String,
        #[arg(long, default_value_t = 50)]
        samples: usize,
    },
    /// Latency from an ingest 202 to many live-tail streams, under a steady ingest rate.
    Tail {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// Events a second to ingest.
        #[arg(long, default_value_t = 100_000)]
        rate: u64,
        /// Live-tail streams open at once.
        #[arg(long, default_value_t = 20)]
        tailers: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Ingest requests in flight.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Latency of one query template over many target timestamps.
    Sql {
        #[arg(
            long,
            default_value = "host=127.0.0.1 port=5433 user=timberline password=timberline"
        )]
        pg: String,
        /// The query; `{T}` becomes the target as an RFC 3339 literal.
        #[arg(long)]
        query: String,
        /// First possible target, µs since the epoch.
        #[arg(long)]
        from: i64,
        /// Last possible target, µs since the epoch.
        #[arg(long)]
        to: i64,
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Untimed runs first.
        #[arg(long, default_value_t = 20)]
        warmup: usize,
    },
}

/// The i-th benchmark target in `[from, to]` (golden-ratio sequence: spread, deterministic).
pub fn target(i: usize, from: i64, to: i64) -> i64 {
    let frac = (i as f64 * 0.618_033_988_749_895_f64).fract();
    from + ((to - from) as f64 * frac) as i64
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs one benchmark and prints its figures.
pub async fn run(cmd: BenchCommand) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        BenchCommand::Ingest {
            server,
            seconds,
            batch,
            event_bytes,
            concurrency,
            protocol,
            syslog,
            pg,
        } => {
            let (path, content_type) = protocol.endpoint();
            let url = format!("{}{path}", server.trim_end_matches('/'));
            let mut gen = Generator::new(7, now_micros(), 1000);
            let bodies: Vec<Vec<u8>> = (0..32)
                .map(|_| {
                    let records: Vec<_> = (0..batch)
                        .map(|_| {
                            let mut r = gen.next_record();
                            // Pad the message so one raw JSON event is about `event_bytes`.
                            let len =
                                r.msg.len() + r.attrs.len() + r.service.len() + r.host.len() + 120;
                            if len < event_bytes {
                                r.msg.push(' ');
                                r.msg.push_str(&"x".repeat(event_bytes - len));
                            }
                            r
                        })
                        .collect();
                    body(protocol, &records)
                })
                .collect();
            if protocol == Protocol::SyslogTcp {
                return syslog_tcp(&syslog, &pg, bodies, batch, seconds, concurrency).await;
            }
            let avg_event =
                bodies.iter().map(Vec::len).sum::<usize>() / (bodies.len() * batch).max(1);
            let bodies = Arc::new(bodies);
            let client = crate::cli::load::http_client(&bench_api_key())?;
            let accepted = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let started = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..concurrency {
                let (client, url, bodies, accepted) = (
                    client.clone(),
                    url.clone(),
                    bodies.clone(),
                    accepted.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = w;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let body = bodies[i % bodies.len()].clone();
                        i += concurrency;
                        let Ok(resp) = client
                            .post(&url)
                            .header("content-type", content_type)
                            .body(body)
                            .send()
                            .await
                        else {
                            continue;
                        };
                        if resp.status().is_success() {
                            let v: serde_json::Value = resp.json().await.unwrap_or_default();
                            let n = v["accepted"].as_u64().unwrap_or(batch as u64);
                            if v["errors"] != json!(true) {
                                accepted.fetch_add(n, Ordering::Relaxed);
                            }
                            lat.push(t.elapsed());
                        } else {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    lat
                }));
            }
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(t.await.unwrap_or_default());
            }
            lat.sort();
            let secs = started.elapsed().as_secs_f64();
            let n = accepted.load(Ordering::Relaxed);
            println!(
                "durable ingest ({protocol:?}): {n} events in {secs:.1}s = {:.0} events/s ({:.1} MB/s of request bodies, ~{avg_event} B/event, batch {batch}, {concurrency} in flight); request p50 {:?} p99 {:?}",
                n as f64 / secs,
                n as f64 * avg_event as f64 / secs / 1e6,
                percentile(&lat, 0.5),
                percentile(&lat, 0.99)
            );
            Ok(())
        }
        BenchCommand::Tail {
            server,
            rate,
            tailers,
            seconds,
            batch,
            concurrency,
        } => {
            super::tail_bench::run(
                &server,
                &bench_api_key(),
                rate,
                tailers,
                seconds,
                batch,
                concurrency,
            )
            .await
        }
        BenchCommand::Sql {
            pg,
            query,
            from,
            to,
            samples,
            warmup,
        } => {
            let (pg, conn) = tokio_postgres::connect(&pg, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let sql = |i: usize| {
                let t = chrono::DateTime::from_timestamp_micros(target(i, from, to))
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                    .unwrap_or_default();
                query.replace("{T}", &t)
            };
            for i in 0..warmup {
                pg.simple_query(&sql(samples + i)).await?;
            }
            let mut lat = Vec::with_capacity(samples);
            let mut rows = 0usize;
            for i in 0..samples {
                let q = sql(i);
                let t = Instant::now();
                let out = pg.simple_query(&q).await?;
                lat.push(t.elapsed());
                rows += out
                    .iter()
                    .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                    .count();
            }
            lat.sort();
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            println!(
                "n={samples} rows={rows} p50_us={:.0} p95_us={:.0} p99_us={:.0}",
                us(percentile(&lat, 0.5)),
                us(percentile(&lat, 0.95)),
                us(percentile(&lat, 0.99))
            );
            Ok(())
        }
        BenchCommand::Visibility {
            server,
            pg,
            samples,
        } => {
            let url = format!("{}/v1/ingest", server.trim_end_matches('/'));
            let client = crate::cli::load::http_client(&bench_api_key())?;
            let (pg, conn) = tokio_postgres::connect(&pg, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let stmt = pg
                .prepare("SELECT count(*) FROM logs WHERE service = 'visibility' AND msg = $1")
                .await?;
            let mut lat = Vec::with_capacity(samples);
            for i in 0..samples {
                let token = format!("visibility-probe-{}-{i}", now_micros());
                let body = json!({"source": {"service": "visibility"}, "logs": [{"msg": token}]});
                let t = Instant::now();
                client
                    .post(&url)
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()?;
                loop {
                    let row = pg.query_one(&stmt, &[&token]).await?;
                    if row.get::<_, i64>(0) > 0 {
                        break;
                    }
                    if t.elapsed() > Duration::from_secs(30) {
                        return Err(format!("event {token} not visible after 30 s").into());
                    }
                }
                lat.push(t.elapsed());
            }
            lat.sort();
            println!(
                "ingest → visible in pg: n={samples} p50 {:?} p95 {:?} max {:?}",
                percentile(&lat, 0.5),
                percentile(&lat, 0.95),
                lat.last().copied().unwrap_or_default()
            );
            Ok(())
        }
    }
}

/// syslog over TCP has no acknowledgement: `concurrency` connections write octet-counted frames
/// for `seconds`, then the rate counts until every event sent is stored (seen over pgwire).
async fn syslog_tcp(
    addr: &str,
    pg: &str,
    bodies: Vec<Vec<u8>>,
    batch: usize,
    seconds: u64,
    concurrency: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    use tokio::io::AsyncWriteExt;
    let (pg, conn) = tokio_postgres::connect(pg, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let count = || async {
        pg.query_one("SELECT count(*) FROM logs", &[])
            .await
            .map(|r| r.get::<_, i64>(0))
    };
    let before = count().await?;
    let bodies = Arc::new(bodies);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (bodies, addr) = (bodies.clone(), addr.to_string());
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            let Ok(mut tcp) = tokio::net::TcpStream::connect(&addr).await else {
                return sent;
            };
            let mut i = w;
            while Instant::now() < deadline {
                if tcp.write_all(&bodies[i % bodies.len()]).await.is_err() {
                    break;
                }
                sent += batch as u64;
                i += concurrency;
            }
            let _ = tcp.shutdown().await;
            sent
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap_or(0);
    }
    let written = started.elapsed().as_secs_f64();
    loop {
        let stored = (count().await? - before) as u64;
        if stored >= sent {
            break;
        }
        if started.elapsed() > Duration::from_secs(seconds * 4 + 30) {
            return Err(format!("only {stored} of {sent} syslog events stored").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "syslog TCP (octet counting, {concurrency} connections): {sent} events written in {written:.1}s, all stored after {secs:.1}s = {:.0} events/s",
        sent as f64 / secs
    );
    Ok(())
}

/// The key the bench sends to HTTP ingest: `TIMBERLINE_API_KEY`, else the demo key.
fn bench_api_key() -> String {
    std::env::var("TIMBERLINE_API_KEY").unwrap_or_else(|_| crate::auth::DEMO_API_KEY.to_string())
}
