//! `nearest()`, `log_context()` and `POST /query` against a brute-force answer computed from a
//! full scan of the same data: rows split over overlapping segments and the hot buffer, with
//! duplicate timestamps, out-of-order arrivals and a two-hour gap.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::support::TestServer;

const BASE: i64 = 1_705_312_800_000_000; // 2024-01-15T10:00:00Z in µs
const SERVICES: [&str; 4] = ["payments", "checkout", "auth", "search"];
const HOSTS: [&str; 5] = ["h-0", "h-1", "h-2", "h-3", "h-4"];

/// One row as the comparisons see it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct R {
    ts: i64,
    service: String,
    host: String,
    level: String,
    msg: String,
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// Generates ~3,000 events: mostly increasing, 5% sharing the previous timestamp, 3% up to 10 s
/// late, a 2 h gap after the first third, FATAL rare (1%).
fn events(rng: &mut StdRng) -> Vec<R> {
    let mut out = Vec::new();
    let mut ts = BASE;
    for i in 0..3_000 {
        if i == 1_000 {
            ts += 2 * 3_600_000_000;
        }
        let r: f64 = rng.gen();
        let t = if r < 0.05 {
            ts
        } else if r < 0.08 {
            ts - rng.gen_range(0..10_000_000)
        } else {
            ts += rng.gen_range(1..400_000);
            ts
        };
        let level = match rng.gen_range(0..100) {
            0 => "FATAL",
            1..=10 => "ERROR",
            11..=30 => "WARN",
            31..=70 => "INFO",
            _ => "DEBUG",
        };
        out.push(R {
            ts: t,
            service: SERVICES[rng.gen_range(0..SERVICES.len())].to_string(),
            host: HOSTS[rng.gen_range(0..HOSTS.len())].to_string(),
            level: level.to_string(),
            // Few distinct messages, so rows at the same ts can tie on everything but msg order.
            msg: format!("event {}", rng.gen_range(0..50)),
        });
    }
    out
}

/// Ingests `rows` in 12 batches, flushing after batches 3, 6 and 9 (overlapping segments), the
/// last three staying hot.
async fn load(server: &TestServer, rows: &[R]) {
    for (i, chunk) in rows.chunks(rows.len().div_ceil(12)).enumerate() {
        server
            .ingest_ndjson(chunk.iter().map(|r| {
                json!({"ts": rfc3339(r.ts), "service": r.service, "host": r.host,
                       "level": r.level, "msg": r.msg})
            }))
            .await;
        if i % 3 == 2 && i < 9 {
            server.flush().await;
        }
    }
}

fn to_r(r: &tokio_postgres::Row) -> R {
    R {
        ts: micros(r.get(0)),
        service: r.get(1),
        host: r.get(2),
        level: r.get(3),
        msg: r.get(4),
    }
}

/// Every row, by a plain full scan.
async fn scan_all(client: &Client) -> Vec<R> {
    let rows = client
        .query("SELECT ts, service, host, level, msg FROM logs", &[])
        .await
        .expect("full scan");
    rows.iter().map(to_r).collect()
}

async fn selected(client: &Client, sql: &str) -> Vec<R> {
    let rows = client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter().map(to_r).collect()
}

/// The k nearest by brute force: distance, then ts, then (service, host, msg).
fn brute_nearest(all: &[R], keep: impl Fn(&R) -> bool, t: i64, k: usize) -> Vec<R> {
    let mut rows: Vec<R> = all.iter().filter(|r| keep(r)).cloned().collect();
    rows.sort_by(|a, b| {
        (a.ts.abs_diff(t), a.ts, &a.service, &a.host, &a.msg).cmp(&(
            b.ts.abs_diff(t),
            b.ts,
            &b.service,
            &b.host,
            &b.msg,
        ))
    });
    rows.truncate(k);
    rows
}

fn brute_context(
    all: &[R],
    host: &str,
    service: Option<&str>,
    t: i64,
    before: usize,
    after: usize,
) -> Vec<R> {
    let mut rows: Vec<R> = all
        .iter()
        .filter(|r| r.host == host && service.is_none_or(|s| r.service == s))
        .cloned()
        .collect();
    rows.sort_by(|a, b| {
        (a.ts, &a.service, &a.host, &a.msg).cmp(&(b.ts, &b.service, &b.host, &b.msg))
    });
    let below = rows.iter().filter(|r| r.ts < t).count();
    let at = rows.iter().filter(|r| r.ts == t).count();
    rows[below.saturating_sub(before)..(below + at + after).min(rows.len())].to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn nearest_and_context_equal_a_brute_force_scan() {
    let server = TestServer::start();
    let mut rng = StdRng::seed_from_u64(7);
    let sent = events(&mut rng);
    load(&server, &sent).await;
    let client = server.pg().await;
    let all = scan_all(&client).await;
    assert_eq!(all.len(), sent.len());
    let segments: i64 = client
        .query_one("SELECT count(*) FROM segments", &[])
        .await
        .expect("segments")
        .get(0);
    assert!(
        segments >= 3,
        "data must span several segments, got {segments}"
    );

    let (min, max) = (
        all.iter().map(|r| r.ts).min().expect("rows"),
        all.iter().map(|r| r.ts).max().expect("rows"),
    );
    for case in 0..160 {
        let t = match case % 5 {
            0 => all[rng.gen_range(0..all.len())].ts, // exactly on a row (and its duplicates)
            1 => min - 3_600_000_000,                 // before everything
            2 => max + rng.gen_range(1..3_600_000_000), // after everything
            3 => all[999].ts.max(all[998].ts) + 3_600_000_000, // inside the 2 h gap
            _ => rng.gen_range(min..=max),
        };
        let k = [1usize, 2, 5, 17, 100][rng.gen_range(0..5)];
        let service = SERVICES[rng.gen_range(0..SERVICES.len())];
        let (cond, keep): (String, Box<dyn Fn(&R) -> bool>) = match case % 4 {
            0 => (String::new(), Box::new(|_| true)),
            1 => (
                format!(" AND service = '{service}'"),
                Box::new(move |r: &R| r.service == service),
            ),
            2 => (
                " AND level = 'FATAL'".into(),
                Box::new(|r: &R| r.level == "FATAL"),
            ),
            _ => (
                format!(" AND level IN ('ERROR', 'FATAL') AND service <> '{service}'"),
                Box::new(move |r: &R| {
                    (r.level == "ERROR" || r.level == "FATAL") && r.service != service
                }),
            ),
        };
        let sql = format!(
            "SELECT ts, service, host, level, msg FROM logs WHERE nearest(ts, '{}', {k}){cond}",
            rfc3339(t)
        );
        let got = selected(&client, &sql).await;
        assert_eq!(got, brute_nearest(&all, keep, t, k), "{sql}");
    }

    for case in 0..60 {
        let row = &all[rng.gen_range(0..all.len())];
        let (before, after) = (rng.gen_range(0..20), rng.gen_range(0..20));
        let service = (case % 3 != 0).then_some(row.service.as_str());
        let sql = format!(
            "SELECT ts, service, host, level, msg FROM log_context('{}', '{}', {}, {before}, {after})",
            rfc3339(row.ts),
            row.host,
            service.map_or("NULL".to_string(), |s| format!("'{s}'"))
        );
        let got = selected(&client, &sql).await;
        assert_eq!(
            got,
            brute_context(&all, &row.host, service, row.ts, before, after),
            "{sql}"
        );
        assert!(
            got.iter().any(|r| r == row),
            "{sql} must contain the line itself"
        );
    }

    // Parameters (extended protocol) work like literals.
    let t = all[1500].ts;
    let stmt =
        "SELECT ts, service, host, level, msg FROM logs WHERE nearest(ts, $1, 7) AND service = $2";
    let rows = client
        .query(stmt, &[&rfc3339(t), &"auth"])
        .await
        .expect("prepared nearest");
    let got: Vec<R> = rows.iter().map(to_r).collect();
    assert_eq!(got, brute_nearest(&all, |r| r.service == "auth", t, 7));
}

/// Numbers from one `EXPLAIN ANALYZE` metric.
fn metric(plan: &str, name: &str) -> usize {
    crate::support::plan_metric(plan, name).unwrap_or_else(|| panic!("no {name} in {plan}"))
        as usize
}

#[tokio::test(flavor = "multi_thread")]
async fn nearest_reads_only_the_segment_around_the_target() {
    let server = TestServer::start();
    // 12 hours, one segment each, 500 rows per hour.
    for hour in 0..12i64 {
        let body: Vec<u8> = (0..500i64)
            .map(|i| {
                json!({"ts": rfc3339(BASE + hour * 3_600_000_000 + i * 7_000_000),
                       "service": "api", "host": "h", "level": "INFO", "msg": format!("{hour}-{i}")})
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
        let (s, _) = server
            .post_raw(
                "/v1/ingest",
                &[("content-type", "application/x-ndjson")],
                body,
            )
            .await;
        assert_eq!(s, 202);
        server.flush().await;
    }
    let client = server.pg().await;
    let target = BASE + 6 * 3_600_000_000 + 250 * 7_000_000 + 3_000_000;
    let plan: String = client
        .query_one(
            &format!(
                "EXPLAIN ANALYZE SELECT msg FROM logs WHERE nearest(ts, '{}', 3)",
                rfc3339(target)
            ),
            &[],
        )
        .await
        .expect("explain")
        .get(1);
    assert!(plan.contains("NearestExec"), "{plan}");
    assert!(metric(&plan, "segment_scans") <= 2, "{plan}");
    assert!(
        metric(&plan, "keys_decoded") <= 500,
        "read the ts of more than one hour's rows: {plan}"
    );
    assert_eq!(
        metric(&plan, "rows_decoded"),
        3,
        "decoded full rows beyond the 3 winners: {plan}"
    );
    let msgs: Vec<String> = client
        .query(
            &format!(
                "SELECT msg FROM logs WHERE nearest(ts, '{}', 3)",
                rfc3339(target)
            ),
            &[],
        )
        .await
        .expect("nearest")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(msgs, ["6-250", "6-251", "6-249"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn nearest_misuse_gets_an_error_and_the_connection_survives() {
    let server = TestServer::start();
    let (s, _) = server.ingest(&crate::support::batch("x", 20)).await;
    assert_eq!(s, 202);
    let client = server.pg().await;
    for (sql, code) in [
        (
            "SELECT * FROM logs WHERE nearest(ts, '2024-01-15T10:00:00Z', 0)",
            "22023",
        ),
        (
            "SELECT * FROM logs WHERE nearest(ts, '2024-01-15T10:00:00Z', 1000000)",
            "22023",
        ),
        ("SELECT * FROM logs WHERE nearest(ts, 'garbage')", "22P02"),
        ("SELECT * FROM logs WHERE nearest(ts, msg)", "22023"),
        (
            "SELECT * FROM logs WHERE nearest(ingest_ts, '2024-01-15T10:00:00Z')",
            "42000",
        ),
        (
            "SELECT * FROM logs WHERE nearest(ts, '2024-01-15T10:00:00Z') OR level = 'x'",
            "42000",
        ),
        (
            "SELECT nearest(ts, '2024-01-15T10:00:00Z') FROM logs",
            "42000",
        ),
        ("SELECT * FROM log_context('2024-01-15T10:00:00Z')", "42000"),
        (
            "SELECT * FROM log_context('2024-01-15T10:00:00Z', NULL, NULL)",
            "22023",
        ),
        (
            "SELECT * FROM log_context('2024-01-15T10:00:00Z', 'h', 's', -1)",
            "22023",
        ),
    ] {
        let err = client.query(sql, &[]).await.expect_err(sql);
        let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: {err}"));
        assert_eq!(db.code().code(), code, "{sql}: {}", db.message());
        let n: i64 = client
            .query_one("SELECT count(*) FROM logs", &[])
            .await
            .expect("after")
            .get(0);
        assert_eq!(n, 20);
    }
}

async fn seed_query(server: &TestServer, body: Value) -> (u16, Value) {
    server
        .post_raw(
            "/query",
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_api_answers_like_the_go_tool() {
    let server = TestServer::start();
    let mut rng = StdRng::seed_from_u64(11);
    let sent = events(&mut rng);
    load(&server, &sent).await;
    let client = server.pg().await;
    let all = scan_all(&client).await;

    let t = all[2000].ts + 1_234;
    let (s, b) = seed_query(
        &server,
        json!({"timestamp": rfc3339(t), "tag": "error", "count": 5}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let want = brute_nearest(&all, |r| r.level == "ERROR", t, 5);
    let entries = b["entries"].as_array().expect("entries");
    assert_eq!(b["total"], 5);
    assert!(b["query_ms"].as_f64().is_some());
    for (e, w) in entries.iter().zip(&want) {
        let ts = e["timestamp"].as_str().expect("timestamp");
        let ts = chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339");
        assert_eq!(ts.timestamp_micros(), w.ts, "{e}");
        assert_eq!(e["tag"], "ERROR");
        assert_eq!(e["body"], w.msg.as_str());
        assert_eq!(
            e["distance"],
            timberline::query::seed_api::go_duration(w.ts.abs_diff(t))
        );
    }
    assert_eq!(entries.len(), want.len());

    // No tag: the single nearest row; count clamped to 1..=100.
    let (_, b) = seed_query(&server, json!({"timestamp": rfc3339(t)})).await;
    assert_eq!(b["total"], 1);
    let (_, b) = seed_query(&server, json!({"timestamp": rfc3339(t), "count": 0})).await;
    assert_eq!(b["total"], 1);
    let (_, b) = seed_query(&server, json!({"timestamp": rfc3339(t), "count": 100_000})).await;
    assert_eq!(b["total"], 100);
    // Nothing matches: [] not null.
    let (s, b) = seed_query(&server, json!({"timestamp": rfc3339(t), "tag": "NOPE"})).await;
    assert_eq!(s, 200);
    assert_eq!(b["entries"], json!([]));
    assert_eq!(b["total"], 0);

    for bad in [
        json!({}),
        json!({"timestamp": "yesterday"}),
        json!({"timestamp": 12}),
        json!({"timestamp": rfc3339(t), "count": "3"}),
        json!({"timestamp": rfc3339(t), "count": 2.5}),
        json!({"timestamp": rfc3339(t), "tag": 3}),
        json!([1, 2]),
    ] {
        let (s, b) = seed_query(&server, bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {b}");
        assert!(
            b["error"].as_str().is_some_and(|r| !r.is_empty()),
            "{bad}: {b}"
        );
    }
    let (s, b) = server.post_raw("/query", &[], b"not json".to_vec()).await;
    assert_eq!(s, 400, "{b}");
}
