//! Live tail (`GET /v1/tail`, `timberline tail`): every matching row once and in order across
//! many streams, backfill joined to live without a gap, resume after a restart, a stalled
//! client told what it lost, the limits and bad requests answered, tenants kept apart.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use timberline::cli::tail::{SseEvent, SseReader};

use crate::support::{bin, http, TestServer};

/// Longest wait for one event before a test fails (a wait, not a sync: events come sooner).
const EVENT_WAIT: Duration = Duration::from_secs(30);

/// One open stream, read event by event.
struct Tail {
    resp: reqwest::Response,
    reader: SseReader,
    queue: std::collections::VecDeque<SseEvent>,
}

impl Tail {
    /// Opens `/v1/tail?{query}` (with `Last-Event-ID: resume`); the refusal's status and body
    /// when it is refused.
    async fn open(
        server: &TestServer,
        query: &str,
        resume: Option<&str>,
        client: &reqwest::Client,
    ) -> Result<Tail, (u16, Value)> {
        let mut req = client.get(format!("{}/v1/tail?{query}", server.http));
        if let Some(id) = resume {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.expect("GET /v1/tail");
        if resp.status() != 200 {
            let status = resp.status().as_u16();
            let body = resp.json().await.unwrap_or(Value::Null);
            return Err((status, body));
        }
        assert_eq!(
            resp.headers()["content-type"].to_str().ok(),
            Some("text/event-stream")
        );
        Ok(Tail {
            resp,
            reader: SseReader::default(),
            queue: Default::default(),
        })
    }

    async fn ok(server: &TestServer, query: &str, resume: Option<&str>) -> Tail {
        match Tail::open(server, query, resume, &http()).await {
            Ok(t) => t,
            Err((s, b)) => panic!("tail {query}: {s} {b}"),
        }
    }

    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return e;
            }
            let chunk = tokio::time::timeout(EVENT_WAIT, self.resp.chunk())
                .await
                .expect("an event within the wait")
                .expect("stream readable")
                .expect("stream still open");
            self.queue.extend(self.reader.push(&chunk));
        }
    }

    /// The rows before the `live` marker (the backfill), and the other events among them.
    async fn until_live(&mut self) -> (Vec<(String, Value)>, Vec<SseEvent>) {
        let (mut rows, mut other) = (Vec::new(), Vec::new());
        loop {
            let e = self.next().await;
            match e.event.as_deref() {
                Some("live") => return (rows, other),
                None => rows.push(row(&e)),
                _ => other.push(e),
            }
        }
    }

    /// Rows until one whose msg is `marker` (included), and the `dropped` events among them.
    async fn until_marker(&mut self, marker: &str) -> (Vec<(String, Value)>, Vec<Value>) {
        let (mut rows, mut dropped) = (Vec::new(), Vec::new());
        loop {
            let e = self.next().await;
            match e.event.as_deref() {
                None => {
                    let r = row(&e);
                    let done = r.1["msg"] == marker;
                    rows.push(r);
                    if done {
                        return (rows, dropped);
                    }
                }
                Some("dropped") => dropped.push(serde_json::from_str(&e.data).expect("json")),
                _ => {}
            }
        }
    }
}

fn row(e: &SseEvent) -> (String, Value) {
    let id = e.id.clone().expect("a row has an id");
    (id, serde_json::from_str(&e.data).expect("row json"))
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Posts `rows` (objects with service/host/level/msg) as one batch.
async fn post(server: &TestServer, rows: &[Value]) {
    let (s, b) = server.ingest(&json!({ "logs": rows })).await;
    assert_eq!(s, 202, "{b}");
}

/// A live id's (seq, row), for order.
fn seq_row(id: &str) -> (u64, u32) {
    let mut p = id.split('.');
    let seq = p.next().and_then(|s| s.parse().ok()).expect("seq");
    let row = p.next().and_then(|s| s.parse().ok()).expect("row");
    (seq, row)
}

const WORDS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
const LEVELS: [&str; 5] = ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

fn data_row(i: usize) -> Value {
    json!({
        "ts": now_text(),
        "service": format!("svc{}", i % 4),
        "host": format!("h{}", i % 3),
        "level": LEVELS[i % 5],
        "msg": format!("{} {} n{i}", WORDS[i % 4], WORDS[(i / 4) % 4]),
    })
}

/// The streams' filters, and the same filter as a predicate over a row (the brute force).
type Check = fn(&Value) -> bool;

fn filters() -> Vec<(&'static str, Check)> {
    fn s(r: &Value, k: &str) -> String {
        r[k].as_str().unwrap_or("").to_string()
    }
    fn words(r: &Value) -> Vec<String> {
        s(r, "msg").split(' ').map(str::to_string).collect()
    }
    fn sev(r: &Value) -> usize {
        LEVELS.iter().position(|l| *l == s(r, "level")).unwrap_or(0)
    }
    vec![
        ("service=svc0", |r| s(r, "service") == "svc0"),
        ("service=svc1", |r| s(r, "service") == "svc1"),
        ("service=svc2,svc3", |r| {
            ["svc2", "svc3"].contains(&s(r, "service").as_str())
        }),
        ("host=h0", |r| s(r, "host") == "h0"),
        ("host=h2", |r| s(r, "host") == "h2"),
        ("level=ERROR", |r| s(r, "level") == "ERROR"),
        ("level=WARN%2B", |r| sev(r) >= 2),
        ("level=%3E%3Derror", |r| sev(r) >= 3),
        ("level=DEBUG,INFO", |r| sev(r) <= 1),
        ("q=alpha", |r| words(r).contains(&"alpha".into())),
        ("q=beta%20-gamma", |r| {
            words(r).contains(&"beta".into()) && !words(r).contains(&"gamma".into())
        }),
        ("q=alpha%20OR%20delta", |r| {
            words(r).contains(&"alpha".into()) || words(r).contains(&"delta".into())
        }),
        ("q=service:svc1%20gamma", |r| {
            s(r, "service") == "svc1" && words(r).contains(&"gamma".into())
        }),
        ("q=level:fatal", |r| s(r, "level") == "FATAL"),
        ("service=svc2&level=ERROR%2B", |r| {
            s(r, "service") == "svc2" && sev(r) >= 3
        }),
        ("host=h1&q=delta", |r| {
            s(r, "host") == "h1" && words(r).contains(&"delta".into())
        }),
        ("service=svc3&host=h0&level=INFO%2B", |r| {
            s(r, "service") == "svc3" && s(r, "host") == "h0" && sev(r) >= 1
        }),
        ("q=%22alpha%20beta%22", |r| {
            s(r, "msg").starts_with("alpha beta ")
        }),
        ("service=nobody", |_| false),
        ("", |_| true),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_streams_get_every_matching_row_once_in_order_and_nothing_else() {
    let server = TestServer::start();
    let filters = filters();
    assert_eq!(filters.len(), 20);
    let mut tails = Vec::new();
    for (q, _) in &filters {
        let mut t = Tail::ok(&server, q, None).await;
        let (backfill, _) = t.until_live().await;
        assert!(backfill.is_empty(), "no since, no backfill");
        tails.push(t);
    }
    // Batches from two writers at once, so batches interleave in the WAL.
    let rows: Vec<Value> = (0..1200).map(data_row).collect();
    let (a, b) = rows.split_at(600);
    let writer = |part: Vec<Value>| {
        let server_http = server.http.clone();
        async move {
            for chunk in part.chunks(50) {
                let resp = http()
                    .post(format!("{server_http}/v1/ingest"))
                    .json(&json!({ "logs": chunk }))
                    .send()
                    .await
                    .expect("ingest");
                assert_eq!(resp.status(), 202);
            }
        }
    };
    tokio::join!(writer(a.to_vec()), writer(b.to_vec()));
    // One marker per stream, each matching its own filter, sent after everything else.
    let markers: Vec<Value> = filters
        .iter()
        .enumerate()
        .map(|(k, _)| marker_for(k))
        .collect();
    for m in &markers {
        post(&server, std::slice::from_ref(m)).await;
    }
    for (k, ((q, check), tail)) in filters.iter().zip(tails.iter_mut()).enumerate() {
        if *q == "service=nobody" {
            continue;
        }
        let marker = markers[k]["msg"].as_str().expect("marker").to_string();
        let (got, dropped) = tail.until_marker(&marker).await;
        assert!(dropped.is_empty(), "{q}: {dropped:?}");
        let ids: Vec<(u64, u32)> = got.iter().map(|(id, _)| seq_row(id)).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{q}: out of order or repeated"
        );
        for (_, r) in &got {
            assert!(check(r), "{q}: a row that does not match: {r}");
        }
        let data: BTreeSet<String> = got
            .iter()
            .filter_map(|(_, r)| r["msg"].as_str())
            .filter(|m| !m.contains("marker"))
            .map(str::to_string)
            .collect();
        let want: BTreeSet<String> = rows
            .iter()
            .filter(|r| check(r))
            .filter_map(|r| r["msg"].as_str().map(str::to_string))
            .collect();
        assert_eq!(
            data.len(),
            got.iter()
                .filter(|(_, r)| !r["msg"].as_str().unwrap_or("").contains("marker"))
                .count(),
            "{q}: a row twice"
        );
        assert_eq!(data, want, "{q}");
    }
}

/// A row matching filter `k` of [`filters`] (and no data row's msg).
fn marker_for(k: usize) -> Value {
    let (service, host, level, word) = match k {
        0 => ("svc0", "h0", "INFO", "x"),
        1 => ("svc1", "h0", "INFO", "x"),
        2 => ("svc2", "h0", "INFO", "x"),
        3 => ("svc0", "h0", "INFO", "x"),
        4 => ("svc0", "h2", "INFO", "x"),
        5 => ("svc0", "h0", "ERROR", "x"),
        6 => ("svc0", "h0", "WARN", "x"),
        7 => ("svc0", "h0", "FATAL", "x"),
        8 => ("svc0", "h0", "DEBUG", "x"),
        9 => ("svc0", "h0", "INFO", "alpha"),
        10 => ("svc0", "h0", "INFO", "beta"),
        11 => ("svc0", "h0", "INFO", "delta"),
        12 => ("svc1", "h0", "INFO", "gamma"),
        13 => ("svc0", "h0", "FATAL", "x"),
        14 => ("svc2", "h0", "ERROR", "x"),
        15 => ("svc0", "h1", "INFO", "delta"),
        16 => ("svc3", "h0", "WARN", "x"),
        17 => ("svc0", "h0", "INFO", "alpha beta"),
        _ => ("svc0", "h0", "INFO", "x"),
    };
    let msg = if k == 17 {
        format!("{word} marker{k}")
    } else {
        format!("marker{k} {word}")
    };
    json!({"ts": now_text(), "service": service, "host": host, "level": level, "msg": msg})
}

#[tokio::test(flavor = "multi_thread")]
async fn since_backfills_from_segments_and_hot_rows_then_continues_live_without_gap_or_repeat() {
    let server = TestServer::start();
    let old = json!({"ts": "2020-01-01T00:00:00Z", "service": "api", "msg": "too old"});
    post(&server, &[old]).await;
    let first: Vec<Value> = (0..300)
        .map(|i| json!({"ts": now_text(), "service": "api", "msg": format!("r{i}")}))
        .collect();
    post(&server, &first[..150]).await;
    server.flush().await;
    post(&server, &first[150..]).await;
    // A writer keeps going while the stream opens: its rows land before, during and after
    // the moment the backfill's view is taken.
    let http_addr = server.http.clone();
    let writer = tokio::spawn(async move {
        for k in 0..40 {
            let rows: Vec<Value> = (0..10)
                .map(|i| json!({"ts": now_text(), "service": "api", "msg": format!("w{k}-{i}")}))
                .collect();
            let resp = http()
                .post(format!("{http_addr}/v1/ingest"))
                .json(&json!({ "logs": rows }))
                .send()
                .await
                .expect("ingest");
            assert_eq!(resp.status(), 202);
        }
    });
    let mut tail = Tail::ok(&server, "since=1h&service=api", None).await;
    let (backfill, other) = tail.until_live().await;
    assert!(other.is_empty(), "{other:?}");
    assert!(backfill.len() >= 300, "{}", backfill.len());
    assert!(
        backfill.iter().all(|(id, _)| id.starts_with('b')),
        "backfill ids"
    );
    let times: Vec<&str> = backfill
        .iter()
        .filter_map(|(_, r)| r["ts"].as_str())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "backfill in time order"
    );
    writer.await.expect("writer");
    post(
        &server,
        &[json!({"ts": now_text(), "service": "api", "msg": "end"})],
    )
    .await;
    let (live, dropped) = tail.until_marker("end").await;
    assert!(dropped.is_empty());
    let mut seen: Vec<String> = backfill
        .iter()
        .chain(live.iter())
        .filter_map(|(_, r)| r["msg"].as_str().map(str::to_string))
        .collect();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "a row came twice");
    let mut want: Vec<String> = (0..300).map(|i| format!("r{i}")).collect();
    want.extend((0..40).flat_map(|k| (0..10).map(move |i| format!("w{k}-{i}"))));
    want.push("end".into());
    want.sort();
    assert_eq!(seen, want, "every row since, once; not the old one");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_limit_sends_the_newest_rows_and_says_so() {
    let server = TestServer::start();
    let rows: Vec<Value> = (0..20)
        .map(|i| json!({"ts": format!("2026-01-01T00:00:{i:02}Z"), "msg": format!("m{i}")}))
        .collect();
    post(&server, &rows).await;
    let mut tail = Tail::ok(&server, "since=2025-12-31T00:00:00Z&limit=5", None).await;
    let (backfill, other) = tail.until_live().await;
    let msgs: Vec<&str> = backfill
        .iter()
        .filter_map(|(_, r)| r["msg"].as_str())
        .collect();
    assert_eq!(msgs, ["m15", "m16", "m17", "m18", "m19"]);
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].event.as_deref(), Some("truncated"));
    let t: Value = serde_json::from_str(&other[0].data).expect("json");
    assert_eq!(
        (t["sent"].as_u64(), t["from"].as_str()),
        (Some(5), Some("2026-01-01T00:00:15.000000Z"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn last_event_id_resumes_after_a_restart_with_no_gap_and_no_repeat() {
    // Rows a client has not read when its connection drops, then a restart: killed, stopped
    // (SIGTERM), or with the unread rows flushed into segments while the client was away (the
    // flush ending at the client's last batch, or past it).
    for how in ["kill", "term", "flushed at the cut", "flushed"] {
        let server = TestServer::start();
        let mut tail = Tail::ok(&server, "service=api", None).await;
        tail.until_live().await;
        let rows = |p: &str, n: usize| -> Vec<Value> {
            let base = chrono::Utc::now();
            (0..n)
                .map(|i| {
                    let ts = base + chrono::Duration::milliseconds(i as i64);
                    let ts = ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                    json!({"ts": ts, "service": "api", "msg": format!("{p}{i}")})
                })
                .collect()
        };
        post(&server, &rows("a", 50)).await;
        let (got, _) = tail.until_marker("a49").await;
        let cut = got[24].0.clone();
        drop(tail);
        if how == "flushed at the cut" {
            server.flush().await;
        }
        post(&server, &rows("b", 30)).await;
        if how == "flushed" {
            server.flush().await;
        }
        let server = match how {
            "term" => stop_gracefully(server),
            _ => server.restart(),
        };
        post(&server, &rows("c", 20)).await;
        let mut tail = Tail::ok(&server, "service=api", Some(&cut)).await;
        let (resumed, _) = tail.until_live().await;
        post(
            &server,
            &[json!({"ts": now_text(), "service": "api", "msg": "end"})],
        )
        .await;
        let (live, _) = tail.until_marker("end").await;
        let msgs: Vec<String> = resumed
            .iter()
            .chain(live.iter())
            .filter_map(|(_, r)| r["msg"].as_str().map(str::to_string))
            .collect();
        let mut want: Vec<String> = (25..50).map(|i| format!("a{i}")).collect();
        want.extend((0..30).map(|i| format!("b{i}")));
        want.extend((0..20).map(|i| format!("c{i}")));
        want.push("end".into());
        assert_eq!(msgs, want, "{how}: every row after the cut, once, in order");
    }
}

/// SIGTERM, then a new server on the same directory.
fn stop_gracefully(mut server: TestServer) -> TestServer {
    let pid = server.child.id().to_string();
    let term = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = server.child.wait().expect("wait");
    assert!(status.success(), "graceful stop: {status}");
    let (dir, extra, env) = (server.dir.clone(), server.extra.clone(), server.env.clone());
    drop(server);
    TestServer::spawn(dir, extra, env)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_client_is_told_how_many_rows_it_lost_and_ingest_goes_on() {
    let server = TestServer::start_with(&["--tail-queue", "16"]);
    let mut stalled = Tail::ok(&server, "", None).await;
    stalled.until_live().await;
    let mut total = 0usize;
    // The client reads nothing while 40,000 rows arrive: its queue and socket fill.
    for k in 0..40 {
        let rows: Vec<Value> = (0..1000)
            .map(|i| json!({"ts": now_text(), "msg": format!("k{k} i{i} {}", "x".repeat(1000))}))
            .collect();
        post(&server, &rows).await;
        total += rows.len();
    }
    // Reading again, it gets what was queued, a count of what was not, then live rows. An end
    // marker sent while the queue is still full is dropped (and counted) like any row, so
    // markers are sent until one arrives.
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let (mut rows, mut dropped) = (Vec::new(), Vec::new());
        loop {
            let e = stalled.next().await;
            match e.event.as_deref() {
                None => {
                    let r = row(&e).1;
                    let end = r["msg"].as_str().is_some_and(|m| m.starts_with("end-"));
                    rows.push(r);
                    if end {
                        let _ = done_tx.send(());
                        return (rows, dropped);
                    }
                }
                Some("dropped") => {
                    dropped.push(serde_json::from_str::<Value>(&e.data).expect("json"))
                }
                _ => {}
            }
        }
    });
    let mut ends = 0u64;
    loop {
        post(
            &server,
            &[json!({"ts": now_text(), "msg": format!("end-{ends}")})],
        )
        .await;
        ends += 1;
        let wait = tokio::time::timeout(Duration::from_millis(200), &mut done_rx).await;
        if wait.is_ok() {
            break;
        }
        assert!(ends < 300, "no end marker arrived");
    }
    let (rows, dropped) = reader.await.expect("reader");
    let lost: u64 = dropped.iter().filter_map(|d| d["count"].as_u64()).sum();
    assert!(lost > 0, "the stall dropped rows and said so");
    assert!(dropped
        .iter()
        .all(|d| d["reason"].as_str().is_some_and(|r| !r.is_empty())));
    // The first end marker received is end-j: the j before it were dropped, counted in `lost`.
    let last = rows
        .last()
        .and_then(|r| r["msg"].as_str())
        .unwrap_or_default();
    let j: u64 = last.trim_start_matches("end-").parse().expect("end number");
    let data = (rows.len() - 1) as u64;
    assert_eq!(
        data + lost,
        total as u64 + j,
        "every row is either sent or counted as dropped"
    );
    let scrape = crate::support::scrape(&server).await;
    let counted =
        crate::support::sample(&scrape, "timberline_tail_dropped_rows_total", &[]).unwrap_or(0.0);
    assert_eq!(counted as u64, lost);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_limits_answer_429_with_a_reason_and_free_up_when_a_stream_closes() {
    let server = TestServer::start_with(&["--tail-max-per-tenant", "2"]);
    let mut one = Tail::ok(&server, "", None).await;
    one.until_live().await;
    let mut two = Tail::ok(&server, "level=ERROR", None).await;
    two.until_live().await;
    let (status, body) = Tail::open(&server, "", None, &http())
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 429);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("limit")),
        "{body}"
    );
    assert!(body["retry_after_secs"].as_u64().is_some());
    // Another tenant has its own places.
    let acme = key_for(&server, "acme");
    let other = Tail::open(&server, "", None, &acme).await;
    assert!(other.is_ok(), "another tenant is not refused");
    // A tenant's own limit, set while the server runs, counts its streams.
    let bad = crate::quotas::tenant_set(&server, "acme", &["--max-tail-streams", "0"]);
    assert!(
        !bad.status.success(),
        "a limit of 0 is refused before it is written"
    );
    let set = crate::quotas::tenant_set(&server, "acme", &["--max-tail-streams", "1"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let (status, body) = Tail::open(&server, "", None, &acme)
        .await
        .err()
        .expect("acme's second stream refused");
    assert_eq!(status, 429);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_tail_streams")),
        "{body}"
    );
    drop(other);
    drop(one);
    // The server notices the closed stream on its next write or heartbeat; retry briefly.
    let mut reopened = None;
    for _ in 0..100 {
        post(&server, &[json!({"msg": "nudge"})]).await;
        if let Ok(t) = Tail::open(&server, "", None, &http()).await {
            reopened = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a closed stream gives its place back");
    drop(two);
}

/// A client with a new API key of `tenant`.
fn key_for(server: &TestServer, tenant: &str) -> reqwest::Client {
    let header = crate::quotas::key_of(server, tenant);
    timberline::cli::load::http_client(header.trim_start_matches("Bearer ")).expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_a_json_reason_and_tenants_see_only_their_rows() {
    let server = TestServer::start();
    let plain = reqwest::Client::new();
    let resp = plain
        .get(format!("{}/v1/tail", server.http))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 401);
    let wrong = timberline::cli::load::http_client("not-a-key").expect("client");
    let (s, _) = Tail::open(&server, "", None, &wrong)
        .await
        .err()
        .expect("refused");
    assert_eq!(s, 401);
    for (query, resume, needle) in [
        ("level=LOUD", None, "level"),
        ("q=(unclosed", None, "match"),
        ("since=last%20tuesday", None, "since"),
        ("limit=100000000", None, "limit"),
        ("colour=red", None, "colour"),
        ("", Some("not-an-id"), "Last-Event-ID"),
        ("service=", None, "empty"),
    ] {
        let (s, body) = Tail::open(&server, query, resume, &http())
            .await
            .err()
            .expect("refused");
        assert_eq!(s, 400, "{query}");
        let reason = body["error"].as_str().unwrap_or_default();
        assert!(reason.contains(needle), "{query}: {body}");
    }
    let acme = key_for(&server, "acme");
    let Ok(mut theirs) = Tail::open(&server, "since=1h", None, &acme).await else {
        panic!("acme's tail refused");
    };
    let mut mine = Tail::ok(&server, "since=1h", None).await;
    post(
        &server,
        &[json!({"ts": now_text(), "msg": "default tenant row"})],
    )
    .await;
    theirs.until_live().await;
    mine.until_live().await;
    let resp = acme
        .post(format!("{}/v1/ingest", server.http))
        .json(&json!({"logs": [{"ts": now_text(), "msg": "acme end"}]}))
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status(), 202);
    post(&server, &[json!({"ts": now_text(), "msg": "mine end"})]).await;
    let (got, _) = theirs.until_marker("acme end").await;
    assert_eq!(got.len(), 1, "acme sees only its own row: {got:?}");
    let (got, _) = mine.until_marker("mine end").await;
    assert!(got.iter().all(|(_, r)| r["msg"] != "acme end"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_stream_gets_heartbeats() {
    let server = TestServer::start_with(&["--tail-heartbeat", "200ms"]);
    let mut resp = http()
        .get(format!("{}/v1/tail", server.http))
        .send()
        .await
        .expect("GET");
    let mut text = String::new();
    while text.matches(":heartbeat").count() + text.matches(": heartbeat").count() < 2 {
        let chunk = tokio::time::timeout(EVENT_WAIT, resp.chunk())
            .await
            .expect("a heartbeat within the wait")
            .expect("readable")
            .expect("open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_prints_one_line_per_row_and_reconnects_after_a_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let addr = format!("127.0.0.1:{port}");
    let server = TestServer::start_with(&["--http-addr", &addr]);
    let mut child = Command::new(bin())
        .args([
            "tail", "--server", &addr, "--level", "WARN+", "--since", "1h",
        ])
        .env("TIMBERLINE_API_KEY", "timberline")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("timberline tail");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
        tokio::time::timeout(EVENT_WAIT, rx.recv())
            .await
            .expect("a line within the wait")
            .expect("tail still running")
    }
    post(&server, &[
        json!({"ts": now_text(), "service": "checkout", "host": "web-1", "level": "ERROR", "msg": "card declined"}),
        json!({"ts": now_text(), "service": "checkout", "level": "INFO", "msg": "not shown"}),
    ])
    .await;
    let line = next(&mut rx).await;
    assert!(
        line.ends_with("ERROR checkout web-1: card declined"),
        "{line:?}"
    );
    assert!(!line.contains('\x1b'), "plain when piped");
    let server = server.restart();
    post(&server, &[json!({"ts": now_text(), "service": "checkout", "level": "WARN", "msg": "after restart"})]).await;
    let line = next(&mut rx).await;
    assert!(
        line.ends_with("after restart"),
        "{line:?}: the first row is not repeated"
    );
    let _ = child.kill();
    let _ = child.wait();
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_at_the_same_path_gets_the_same_rows_and_resumes_by_parameter() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let server = TestServer::start_with(&["--tail-heartbeat", "200ms"]);
    let ws_url = server.http.replace("http://", "ws://");
    let connect = |query: String| {
        let ws_url = ws_url.clone();
        async move {
            let mut req = format!("{ws_url}/v1/tail?{query}")
                .into_client_request()
                .expect("request");
            req.headers_mut().insert(
                "authorization",
                "Bearer timberline".parse().expect("header"),
            );
            tokio_tungstenite::connect_async(req).await
        }
    };
    // Reads text messages as JSON (pings are answered by the client) until `stop` says so.
    async fn read_until(
        ws: &mut (impl futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
                  + Unpin),
        stop: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let mut got = Vec::new();
        loop {
            let msg = tokio::time::timeout(EVENT_WAIT, ws.next())
                .await
                .expect("a message within the wait")
                .expect("open")
                .expect("readable");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                let done = stop(&v);
                got.push(v);
                if done {
                    return got;
                }
            }
        }
    }
    let (mut ws, _) = connect("level=ERROR%2B".into()).await.expect("upgrade");
    let first = read_until(&mut ws, |v| v["event"] == "live").await;
    assert_eq!(first, vec![json!({"event": "live"})]);
    post(
        &server,
        &[
            json!({"ts": now_text(), "level": "INFO", "msg": "quiet"}),
            json!({"ts": now_text(), "level": "ERROR", "msg": "loud 1"}),
            json!({"ts": now_text(), "level": "FATAL", "msg": "loud 2"}),
        ],
    )
    .await;
    let rows = read_until(&mut ws, |v| v["row"]["msg"] == "loud 2").await;
    let msgs: Vec<&str> = rows
        .iter()
        .filter_map(|v| v["row"]["msg"].as_str())
        .collect();
    assert_eq!(msgs, ["loud 1", "loud 2"]);
    let cut = rows[0]["id"].as_str().expect("id").to_string();
    // A row this stream does not want, then silence: only the server's pings arrive.
    post(
        &server,
        &[json!({"ts": now_text(), "level": "INFO", "msg": "still quiet"})],
    )
    .await;
    let mut pings = 0;
    while pings < 2 {
        let msg = tokio::time::timeout(EVENT_WAIT, ws.next())
            .await
            .expect("a ping within the wait")
            .expect("open")
            .expect("readable");
        match msg {
            Message::Ping(_) => pings += 1,
            Message::Text(t) => panic!("no row matches this stream: {t}"),
            _ => {}
        }
    }
    ws.close(None).await.expect("close");
    // A browser cannot set Last-Event-ID: the parameter resumes instead.
    let (mut again, _) = connect(format!("level=ERROR%2B&last_event_id={cut}"))
        .await
        .expect("upgrade");
    let resumed = read_until(&mut again, |v| v["event"] == "live").await;
    let msgs: Vec<&str> = resumed
        .iter()
        .filter_map(|v| v["row"]["msg"].as_str())
        .collect();
    assert_eq!(msgs, ["loud 2"]);
    // Without a key, no upgrade.
    let plain = format!("{ws_url}/v1/tail")
        .into_client_request()
        .expect("request");
    let refused = tokio_tungstenite::connect_async(plain).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
}
