//! `timberline bench tail`: latency from an ingest request's 202 to the moment each of many
//! live-tail streams has the row, under a steady ingest rate.
//!
//! Every batch carries one probe row (`service=probe`, `level=ERROR`, `msg=probe-N`) that every
//! stream's filter matches, among generated rows most filters do not. The figures are per
//! (stream, probe): time from the 202 to the stream's receipt (0 when the row arrived first),
//! and from the request's start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tail::SseReader;
use crate::generate::Generator;
use crate::model::now_micros;

/// The streams' filters, cycled: each matches the probe rows and a different share of the rest.
const FILTERS: [&str; 10] = [
    "",
    "service=probe",
    "level=ERROR%2B",
    "q=probe",
    "host=probe-host",
    "service=probe,api&level=ERROR",
    "q=probe%20OR%20timeout",
    "level=WARN%2B&q=probe",
    "q=service:probe",
    "service=probe&host=probe-host&level=ERROR",
];

/// One stream's receipts: (probe number, when it arrived).
type Receipts = Mutex<Vec<(u64, Instant)>>;

/// What one run measured.
struct Figures {
    from_ack: Vec<Duration>,
    from_send: Vec<Duration>,
    rows: u64,
    dropped: u64,
    missing: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs the benchmark and prints its figures.
pub async fn run(
    server: &str,
    api_key: &str,
    rate: u64,
    tailers: usize,
    seconds: u64,
    batch: usize,
    concurrency: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let base = server.trim_end_matches('/').to_string();
    let client = crate::cli::load::http_client(api_key)?;
    let seen: Arc<Vec<Receipts>> = Arc::new((0..tailers).map(|_| Mutex::new(Vec::new())).collect());
    let rows = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    let (live_tx, mut live_rx) = tokio::sync::mpsc::channel::<()>(tailers.max(1));
    for k in 0..tailers {
        let url = format!("{base}/v1/tail?{}", FILTERS[k % FILTERS.len()]);
        let mut resp = client.get(&url).send().await?.error_for_status()?;
        let (seen, rows, dropped, live_tx) =
            (seen.clone(), rows.clone(), dropped.clone(), live_tx.clone());
        readers.push(tokio::spawn(async move {
            let mut reader = SseReader::default();
            while let Ok(Some(chunk)) = resp.chunk().await {
                let now = Instant::now();
                for e in reader.push(&chunk) {
                    match e.event.as_deref() {
                        Some("live") => {
                            let _ = live_tx.send(()).await;
                        }
                        Some("dropped") => {
                            let v: serde_json::Value =
                                serde_json::from_str(&e.data).unwrap_or_default();
                            dropped.fetch_add(v["count"].as_u64().unwrap_or(0), Ordering::Relaxed);
                        }
                        _ => {
                            rows.fetch_add(1, Ordering::Relaxed);
                            if let Some(n) = probe_number(&e.data) {
                                if let Ok(mut s) = seen[k].lock() {
                                    s.push((n, now));
                                }
                            }
                        }
                    }
                }
            }
        }));
    }
    drop(live_tx);
    for _ in 0..tailers {
        live_rx.recv().await;
    }

    let fillers = fillers(batch.saturating_sub(1));
    let url = format!("{base}/v1/ingest");
    let sent_at: Arc<Mutex<Vec<(u64, Instant, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(batch as f64 / rate.max(1) as f64);
    let total = (seconds as f64 / interval.as_secs_f64()).ceil() as u64;
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..concurrency.max(1) as u64 {
        let (client, url, fillers, sent_at, accepted) = (
            client.clone(),
            url.clone(),
            fillers.clone(),
            sent_at.clone(),
            accepted.clone(),
        );
        let step = concurrency.max(1) as u64;
        writers.push(tokio::spawn(async move {
            let mut n = w;
            while n < total {
                tokio::time::sleep_until((started + interval * n as u32).into()).await;
                let probe = format!(
                    r#"{{"service":"probe","host":"probe-host","level":"ERROR","msg":"probe-{n}","ts":"{}"}}"#,
                    rfc3339(now_micros())
                );
                let body = format!(r#"{{"logs":[{probe}{fillers}]}}"#);
                let t = Instant::now();
                if let Ok(resp) = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    if resp.status().is_success() {
                        let acked = Instant::now();
                        let v: serde_json::Value = resp.json().await.unwrap_or_default();
                        accepted.fetch_add(v["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                        if let Ok(mut s) = sent_at.lock() {
                            s.push((n, t, acked));
                        }
                    }
                }
                n += step;
            }
        }));
    }
    for w in writers {
        w.await?;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let mut requests: Vec<Duration> = sent_at
        .lock()
        .map(|s| {
            s.iter()
                .map(|(_, t, a)| a.saturating_duration_since(*t))
                .collect()
        })
        .unwrap_or_default();
    requests.sort();
    // Let the streams catch up with the last probes (bounded).
    let sent: Vec<(u64, Instant, Instant)> = sent_at.lock().map(|s| s.clone()).unwrap_or_default();
    let wait_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < wait_until {
        let got: usize = seen
            .iter()
            .map(|s| s.lock().map(|v| v.len()).unwrap_or(0))
            .sum();
        if got >= sent.len() * tailers {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in &readers {
        r.abort();
    }
    let figures = figures(&sent, &seen, &rows, &dropped);
    let n = accepted.load(Ordering::Relaxed);
    println!(
        "live tail: {tailers} streams, ingest {n} events in {ingest_secs:.1}s = {:.0} events/s (target {rate}, batch {batch}), request p50 {:?} p99 {:?}; 202 → stream p50 {:?} p99 {:?} max {:?}; request start → stream p50 {:?} p99 {:?}; {} probe receipts, {} missing, {} rows sent to streams, {} dropped",
        n as f64 / ingest_secs,
        percentile(&requests, 0.5),
        percentile(&requests, 0.99),
        percentile(&figures.from_ack, 0.5),
        percentile(&figures.from_ack, 0.99),
        figures.from_ack.last().copied().unwrap_or_default(),
        percentile(&figures.from_send, 0.5),
        percentile(&figures.from_send, 0.99),
        figures.from_ack.len(),
        figures.missing,
        figures.rows,
        figures.dropped,
    );
    Ok(())
}

fn figures(
    sent: &[(u64, Instant, Instant)],
    seen: &[Receipts],
    rows: &AtomicU64,
    dropped: &AtomicU64,
) -> Figures {
    let by_probe: std::collections::HashMap<u64, (Instant, Instant)> =
        sent.iter().map(|(n, t, a)| (*n, (*t, *a))).collect();
    let (mut from_ack, mut from_send, mut missing) = (Vec::new(), Vec::new(), 0u64);
    for stream in seen {
        let got: std::collections::HashMap<u64, Instant> = stream
            .lock()
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        for (n, (t, acked)) in &by_probe {
            match got.get(n) {
                Some(at) => {
                    from_ack.push(at.saturating_duration_since(*acked));
                    from_send.push(at.saturating_duration_since(*t));
                }
                None => missing += 1,
            }
        }
    }
    from_ack.sort();
    from_send.sort();
    Figures {
        from_ack,
        from_send,
        rows: rows.load(Ordering::Relaxed),
        dropped: dropped.load(Ordering::Relaxed),
        missing,
    }
}

/// The probe number of a row's JSON, if it is a probe.
fn probe_number(json: &str) -> Option<u64> {
    let at = json.find("\"msg\":\"probe-")? + "\"msg\":\"probe-".len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// `,{…},{…}`: `n` generated events as JSON, to follow a batch's probe.
fn fillers(n: usize) -> Arc<String> {
    let mut gen = Generator::new(11, now_micros(), 1000);
    let mut out = String::new();
    for _ in 0..n {
        let r = gen.next_record();
        let e = serde_json::json!({
            "service": r.service, "host": r.host, "level": r.level, "msg": r.msg, "ts": rfc3339(r.ts),
        });
        out.push(',');
        out.push_str(&e.to_string());
    }
    Arc::new(out)
}
