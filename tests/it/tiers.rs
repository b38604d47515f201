//! Hot, warm and cold: compaction, moves to a real object store (SeaweedFS), retention, and
//! the sweep after a crash — every query answering the same over all three tiers, checked
//! against a brute force over the rows the test sent.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::flaky_store::{Fault, FlakyStore};
use crate::seaweed::{Seaweed, BUCKET};
use crate::support::{explain, plan_metric, text_rows as answer, TestServer};

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const SERVICES: [&str; 3] = ["api", "billing", "search"];
const LEVELS: [&str; 4] = ["INFO", "WARN", "ERROR", "DEBUG"];
const VERBS: [&str; 6] = ["login", "logout", "payment", "refund", "timeout", "retry"];

/// One event the test sent, as the brute force sees it.
#[derive(Debug, Clone)]
struct Event {
    ts: i64,
    service: &'static str,
    level: &'static str,
    msg: String,
    trace_id: String,
}

impl Event {
    fn json(&self) -> Value {
        json!({
            "ts": rfc3339(self.ts),
            "service": self.service,
            "host": "h1",
            "level": self.level,
            "msg": self.msg,
            "trace_id": self.trace_id,
        })
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as i64
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .expect("ts")
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Where the test's events fall: two hours three days ago (cold once moved), one hour five
/// hours ago (warm once compacted), the last ten minutes (hot).
fn anchors(now: i64) -> [i64; 4] {
    let hour = |t: i64| t.div_euclid(HOUR) * HOUR;
    [
        hour(now - 3 * DAY),
        hour(now - 3 * DAY) + HOUR,
        hour(now - 5 * HOUR),
        now - 10 * MINUTE,
    ]
}

/// `rounds` batches, each with events in every anchor's window (so every tenant-hour gets one
/// segment per round).
fn corpus(seed: u64, now: i64, rounds: usize, per_round: usize) -> Vec<Vec<Event>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let anchors = anchors(now);
    (0..rounds)
        .map(|round| {
            (0..per_round)
                .map(|i| {
                    let a = anchors[i % anchors.len()];
                    let span = if a == anchors[3] {
                        9 * MINUTE
                    } else {
                        59 * MINUTE
                    };
                    let verb = VERBS[rng.gen_range(0..VERBS.len())];
                    Event {
                        ts: a + rng.gen_range(0..span),
                        service: SERVICES[rng.gen_range(0..SERVICES.len())],
                        level: LEVELS[rng.gen_range(0..LEVELS.len())],
                        msg: format!("{verb} user{} round{round} n{i}", rng.gen_range(0..50)),
                        trace_id: format!("t{}", rng.gen_range(0..40)),
                    }
                })
                .collect()
        })
        .collect()
}

/// Sends each round and flushes it into segments of its own.
async fn load(server: &TestServer, rounds: &[Vec<Event>]) {
    for round in rounds {
        server.ingest_ndjson(round.iter().map(Event::json)).await;
        server.flush().await;
    }
}

/// Queries of every kind (plain scans, `match`, `trace_id`, count tables, `nearest`,
/// `log_context`) whose answers must not depend on where segments live.
fn queries(now: i64, seed: u64) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
    let a = anchors(now);
    let mut q = vec![
        "SELECT count(*) FROM logs".to_string(),
        "SELECT level, count(*) FROM logs GROUP BY level ORDER BY level".into(),
        "SELECT service, level, count(*) FROM logs WHERE level IN ('ERROR', 'WARN') GROUP BY 1, 2 ORDER BY 1, 2".into(),
        format!(
            "SELECT date_trunc('minute', ts) AS m, count(*) FROM logs WHERE ts >= '{}' AND ts < '{}' GROUP BY 1 ORDER BY 1",
            rfc3339(a[0]),
            rfc3339(a[0] + 2 * HOUR)
        ),
        "SELECT min(ts), max(ts), count(DISTINCT trace_id) FROM logs".into(),
    ];
    for verb in VERBS {
        q.push(format!(
            "SELECT count(*), min(msg), max(msg) FROM logs WHERE match(msg, '{verb}')"
        ));
    }
    for _ in 0..4 {
        let t = rng.gen_range(0..40);
        q.push(format!(
            "SELECT msg, ts FROM logs WHERE trace_id = 't{t}' ORDER BY ts, msg"
        ));
        let svc = SERVICES[rng.gen_range(0..SERVICES.len())];
        q.push(format!(
            "SELECT msg FROM logs WHERE service = '{svc}' AND level = 'ERROR' AND match(msg, 'refund OR timeout') ORDER BY msg"
        ));
    }
    for anchor in a {
        let t = rfc3339(anchor + rng.gen_range(0..9 * MINUTE));
        q.push(format!(
            "SELECT ts, msg FROM logs WHERE nearest(ts, '{t}', 7) ORDER BY ts, msg"
        ));
        q.push(format!(
            "SELECT ts, msg FROM logs WHERE nearest(ts, '{t}', 3) AND service = 'billing' ORDER BY ts, msg"
        ));
        q.push(format!(
            "SELECT ts, msg FROM log_context('{t}', 'h1', 'api', 4, 4) ORDER BY ts, msg"
        ));
    }
    q
}

/// Every query's answer.
async fn answers(client: &Client, qs: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::with_capacity(qs.len());
    for q in qs {
        out.push(answer(client, q).await);
    }
    out
}

fn assert_same(qs: &[String], want: &[Vec<String>], got: &[Vec<String>], when: &str) {
    for ((q, w), g) in qs.iter().zip(want).zip(got) {
        assert_eq!(w, g, "{when}: {q}");
    }
}

/// The brute force: what a full scan of the sent events says, for the queries it can answer.
async fn check_brute_force(client: &Client, events: &[Event], when: &str) {
    let count = |f: &dyn Fn(&Event) -> bool| events.iter().filter(|e| f(e)).count().to_string();
    assert_eq!(
        answer(client, "SELECT count(*) FROM logs").await,
        [count(&|_| true)],
        "{when}"
    );
    for verb in VERBS {
        let got = answer(
            client,
            &format!("SELECT count(*) FROM logs WHERE match(msg, '{verb}')"),
        )
        .await;
        assert_eq!(got, [count(&|e| e.msg.starts_with(verb))], "{when}: {verb}");
    }
    for svc in SERVICES {
        let got = answer(
            client,
            &format!("SELECT count(*) FROM logs WHERE service = '{svc}' AND level = 'ERROR'"),
        )
        .await;
        assert_eq!(
            got,
            [count(&|e| e.service == svc && e.level == "ERROR")],
            "{when}: {svc}"
        );
    }
    for t in ["t3", "t17"] {
        let mut want: Vec<String> = events
            .iter()
            .filter(|e| e.trace_id == t)
            .map(|e| e.msg.clone())
            .collect();
        want.sort();
        let got = answer(
            client,
            &format!("SELECT msg FROM logs WHERE trace_id = '{t}' ORDER BY msg"),
        )
        .await;
        assert_eq!(got, want, "{when}: trace {t}");
    }
    // nearest: the distance of its nearest row is the smallest distance of any event.
    nearest_is_closest(
        client,
        events,
        events.iter().step_by(97).map(|e| e.ts + 1234),
        when,
    )
    .await;
}

/// `nearest(ts, T)` answers, for each target `T`, a row as close to it as any event.
async fn nearest_is_closest(
    client: &Client,
    events: &[Event],
    targets: impl Iterator<Item = i64>,
    when: &str,
) {
    for target in targets {
        let best = events
            .iter()
            .map(|x| (x.ts - target).abs())
            .min()
            .expect("events");
        let got = answer(
            client,
            &format!(
                "SELECT ts FROM logs WHERE nearest(ts, '{}')",
                rfc3339(target)
            ),
        )
        .await;
        let ts = chrono::DateTime::parse_from_str(&got[0], "%Y-%m-%d %H:%M:%S%.f%#z")
            .unwrap_or_else(|e| panic!("{}: {e}", got[0]))
            .timestamp_micros();
        assert_eq!(
            (ts - target).abs(),
            best,
            "{when}: nearest {}",
            rfc3339(target)
        );
    }
}

/// `timberline tenant set default --retention AGE` on `server`'s data directory.
fn retention(server: &TestServer, age: &str) -> std::process::Output {
    std::process::Command::new(crate::support::bin())
        .args(["tenant", "set", "default", "--retention", age, "--data-dir"])
        .arg(server.dir.path())
        .output()
        .expect("tenant set")
}

/// The tiers the `segments` table shows.
async fn tiers(client: &Client) -> BTreeSet<String> {
    answer(client, "SELECT DISTINCT tier FROM segments")
        .await
        .into_iter()
        .collect()
}

fn tier_flags() -> Vec<String> {
    vec![
        "--object-store".into(),
        format!("s3://{BUCKET}/tl"),
        "--compact-after".into(),
        "1h".into(),
        "--cold-after".into(),
        "2d".into(),
        "--maintenance-interval".into(),
        "0".into(),
    ]
}

fn start(weed: &Seaweed, failpoint: Option<&str>) -> TestServer {
    start_through(weed, failpoint, None)
}

/// A server on `weed`, reaching it through `endpoint` (a proxy) when given.
fn start_through(weed: &Seaweed, failpoint: Option<&str>, endpoint: Option<&str>) -> TestServer {
    let flags = tier_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut env: Vec<(&str, String)> = weed.env();
    if let Some(endpoint) = endpoint {
        env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL", endpoint.to_string()));
    }
    if let Some(step) = failpoint {
        env.push(("TIMBERLINE_FAILPOINT", step.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::start_env(&flags, &env)
}

/// SeaweedFS, a server using it, and `rounds` flushed rounds of the corpus of `seed` in it:
/// the store, the server, the time the corpus is relative to, and the events sent.
async fn loaded(
    seed: u64,
    rounds: usize,
    per_round: usize,
) -> Option<(Seaweed, TestServer, i64, Vec<Event>)> {
    let weed = Seaweed::start().await?;
    let server = start(&weed, None);
    let now = now_micros();
    let rounds = corpus(seed, now, rounds, per_round);
    load(&server, &rounds).await;
    Some((weed, server, now, rounds.concat()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_answers_the_same_over_hot_warm_and_cold() {
    let Some((weed, server, now, events)) = loaded(16, 4, 400).await else {
        return;
    };
    let client = server.pg().await;
    let qs = queries(now, 16);
    let before = answers(&client, &qs).await;
    check_brute_force(&client, &events, "all hot").await;
    assert_eq!(tiers(&client).await, BTreeSet::from(["hot".to_string()]));

    let report = server.maintain().await;
    assert!(
        report["errors"].as_array().is_some_and(|e| e.is_empty()),
        "{report}"
    );
    // Three closed hours of four segments each became three warm segments; two moved.
    assert_eq!(report["compacted_segments"], 12, "{report}");
    assert_eq!(report["compacted_into"], 3, "{report}");
    assert_eq!(report["moved_segments"], 2, "{report}");
    assert_eq!(
        tiers(&client).await,
        BTreeSet::from(["hot".into(), "warm".into(), "cold".into()])
    );
    // Nothing is left locally of the cold segments but their cached sidecars; the bucket holds
    // each one's data, index and bloom.
    let cold: Vec<String> = answer(&client, "SELECT path FROM segments WHERE tier = 'cold'").await;
    let keys = weed.keys().await;
    for key in &cold {
        assert!(keys.contains(&format!("tl/{key}")), "{key} not in {keys:?}");
        assert!(keys.contains(&format!("tl/{}", key.replace(".parquet", ".idx"))));
        assert!(!server.dir.path().join(key).exists(), "{key} still local");
    }
    assert_no_orphans(&server, &weed, &client, "after the pass").await;
    let after = answers(&client, &qs).await;
    assert_same(&qs, &before, &after, "after compaction and moves");
    check_brute_force(&client, &events, "hot, warm and cold").await;

    // After a restart the cache is empty: the same answers, read from the store again.
    let server = server.restart();
    let client = server.pg().await;
    // A cold read goes to the store once; repeated, the cache answers it without a GET.
    let sql = format!(
        "SELECT msg FROM logs WHERE ts < '{}' AND msg LIKE '%refund%'",
        rfc3339(now - 2 * DAY)
    );
    let first = explain(&client, &sql).await;
    assert_eq!(plan_metric(&first, "segments_cold"), Some(2), "{first}");
    assert!(
        plan_metric(&first, "store_gets").unwrap_or(0) > 0,
        "{first}"
    );
    let again = explain(&client, &sql).await;
    assert_eq!(plan_metric(&again, "store_gets"), Some(0), "{again}");
    assert!(
        plan_metric(&again, "store_cache_hits").unwrap_or(0) > 0,
        "{again}"
    );

    let cold_start = answers(&client, &qs).await;
    assert_same(&qs, &before, &cold_start, "after a restart (empty cache)");
    // And a second pass has nothing left to do.
    let idle = server.maintain().await;
    assert_eq!(
        (
            &idle["compacted_segments"],
            &idle["moved_segments"],
            &idle["deleted_segments"]
        ),
        (&json!(0), &json!(0), &json!(0)),
        "{idle}"
    );
}

/// Local segment files (data and sidecars) under the data directory's `segments/`.
fn local_files(server: &TestServer) -> BTreeSet<String> {
    let root = server.dir.path();
    let mut out = BTreeSet::new();
    let mut stack = vec![root.join("segments")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            // The audit log's own segments (tenant `_audit`) are not the test's.
            if p.ends_with("tenant=_audit") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).expect("under root");
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// Asserts that every local segment file and every object is one the catalog names.
async fn assert_no_orphans(server: &TestServer, weed: &Seaweed, client: &Client, when: &str) {
    let rows = answer(client, "SELECT tier, path FROM segments").await;
    let (mut local, mut cold) = (BTreeSet::new(), BTreeSet::new());
    for row in rows {
        let (tier, path) = row.split_once('|').expect("tier|path");
        if tier == "cold" {
            cold.insert(format!("tl/{path}"));
        } else {
            local.insert(path.to_string());
        }
    }
    for file in local_files(server) {
        let data = file
            .trim_end_matches(".idx")
            .trim_end_matches(".bloom")
            .to_string();
        let data = if data == file {
            data
        } else {
            format!("{data}.parquet")
        };
        assert!(local.contains(&data), "{when}: orphan local file {file}");
    }
    for key in weed.keys().await {
        if key.contains("tenant=_audit/") {
            continue;
        }
        let data = key
            .trim_end_matches(".idx")
            .trim_end_matches(".bloom")
            .to_string();
        let data = if data == key {
            data
        } else {
            format!("{data}.parquet")
        };
        assert!(cold.contains(&data), "{when}: orphan object {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_at_any_step_of_a_move_or_compaction_loses_and_doubles_nothing() {
    let Some(weed) = Seaweed::start().await else {
        return;
    };
    for step in [
        "compact-staged",
        "compact-renamed",
        "compact-committed",
        "move-uploaded",
        "move-committed",
    ] {
        let server = start(&weed, Some(step));
        let now = now_micros();
        let rounds = corpus(7, now, 3, 120);
        let events: Vec<Event> = rounds.concat();
        load(&server, &rounds).await;
        let sent = crate::support::http()
            .post(format!("{}/v1/maintenance", server.http))
            .send()
            .await;
        assert!(
            sent.is_err(),
            "{step}: the failpoint did not stop the pass: {sent:?}"
        );
        // The same data directory, without the failpoint: the sweep at start, then queries.
        let mut server = server;
        server.env.retain(|(k, _)| k != "TIMBERLINE_FAILPOINT");
        let server = server.restart();
        let client = server.pg().await;
        check_brute_force(&client, &events, step).await;
        let report = server.maintain().await;
        assert!(
            report["errors"].as_array().is_some_and(|e| e.is_empty()),
            "{step}: {report}"
        );
        check_brute_force(&client, &events, &format!("{step}, pass resumed")).await;
        assert_eq!(
            tiers(&client).await,
            BTreeSet::from(["hot".into(), "warm".into(), "cold".into()]),
            "{step}"
        );
        assert_no_orphans(&server, &weed, &client, step).await;
        // The next step starts from an empty bucket prefix: this server's objects go.
        let tenant_set = retention(&server, "1s");
        assert!(tenant_set.status.success(), "{tenant_set:?}");
        let gone = server.maintain().await;
        assert_eq!(
            gone["deleted_segments"].as_u64().map(|n| n > 0),
            Some(true),
            "{gone}"
        );
        assert!(
            weed.keys().await.is_empty(),
            "{step}: {:?}",
            weed.keys().await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_from_every_tier_by_the_tenants_policy_read_while_running() {
    let Some((weed, server, now, events)) = loaded(3, 2, 200).await else {
        return;
    };
    let client = server.pg().await;
    server.maintain().await;
    assert_eq!(
        tiers(&client).await,
        BTreeSet::from(["hot".into(), "warm".into(), "cold".into()])
    );
    assert!(!weed.keys().await.is_empty());
    // A policy set on the running server: keep one day.
    let set = retention(&server, "1d");
    assert!(set.status.success(), "{set:?}");
    let bad = retention(&server, "soon");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("never"),
        "{bad:?}"
    );
    let report = server.maintain().await;
    let old: Vec<&Event> = events.iter().filter(|e| e.ts < now - DAY).collect();
    // Every row past the day goes, in however many segments compaction left them (sparse old
    // hours of one age band may share one).
    assert_eq!(report["deleted_rows"], old.len(), "{report}");
    assert!(
        report["deleted_segments"].as_u64().is_some_and(|n| n >= 1),
        "{report}"
    );
    let kept: Vec<Event> = events
        .iter()
        .filter(|e| e.ts >= now - DAY)
        .cloned()
        .collect();
    check_brute_force(&client, &kept, "after retention").await;
    assert_eq!(
        tiers(&client).await,
        BTreeSet::from(["hot".into(), "warm".into()])
    );
    assert!(weed.keys().await.is_empty(), "{:?}", weed.keys().await);
    // Without the admin key, no pass runs.
    let (status, body) = server
        .post_raw(
            "/v1/maintenance",
            &[("authorization", "Bearer wrong")],
            Vec::new(),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("admin key")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_cold_queries_fail_with_58030_and_the_rest_keeps_working() {
    let Some((mut weed, server, now, events)) = loaded(5, 2, 200).await else {
        return;
    };
    server.maintain().await;
    // A restart empties the range cache, so cold rows must come from the store.
    let server = server.restart();
    let client = server.pg().await;
    weed.stop();

    client
        .simple_query("SET statement_timeout = '30s'")
        .await
        .expect("set");
    let started = Instant::now();
    let cold_sql = format!(
        "SELECT msg FROM logs WHERE ts < '{}' ORDER BY msg",
        rfc3339(now - 2 * DAY)
    );
    let err = client
        .simple_query(&cold_sql)
        .await
        .expect_err("cold data with the store down");
    let db = err.as_db_error().expect("an error response");
    assert_eq!(db.code().code(), "58030", "{}", db.message());
    assert!(db.message().contains("object store"), "{}", db.message());
    assert!(started.elapsed() < Duration::from_secs(30));
    // nearest() and log_context() read cold pages their own way; the same SQLSTATE.
    let t = rfc3339(anchors(now)[0] + 20 * MINUTE);
    for sql in [
        format!("SELECT ts, msg FROM logs WHERE nearest(ts, '{t}', 3)"),
        format!("SELECT ts, msg FROM log_context('{t}', 'h1', 'api', 2, 2)"),
    ] {
        let err = client.simple_query(&sql).await.expect_err(&sql);
        let db = err.as_db_error().expect("an error response");
        assert_eq!(db.code().code(), "58030", "{sql}: {}", db.message());
    }
    // The failed reads are counted.
    let text = crate::support::scrape(&server).await;
    let errors = crate::support::sample(&text, "timberline_object_store_errors_total", &[])
        .unwrap_or_else(|| panic!("no object_store_errors_total in {text}"));
    assert!(errors >= 1.0, "{text}");
    // Hot and warm data answer; ingest goes on.
    let recent = format!(
        "SELECT count(*) FROM logs WHERE ts >= '{}'",
        rfc3339(now - DAY)
    );
    let want = events.iter().filter(|e| e.ts >= now - DAY).count();
    assert_eq!(answer(&client, &recent).await, [want.to_string()]);
    let late = corpus(9, now, 1, 80);
    server.ingest_ndjson(late[0].iter().map(Event::json)).await;
    server.flush().await;
    // A move fails and deletes nothing local: every local segment's file is there.
    let cold_before = answer(&client, "SELECT count(*) FROM segments WHERE tier = 'cold'").await;
    let report = server.maintain().await;
    assert!(
        report["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{report}"
    );
    assert_eq!(report["moved_segments"], 0, "{report}");
    let cold_after = answer(&client, "SELECT count(*) FROM segments WHERE tier = 'cold'").await;
    assert_eq!(cold_before, cold_after);
    for path in answer(&client, "SELECT path FROM segments WHERE tier <> 'cold'").await {
        assert!(server.dir.path().join(&path).is_file(), "{path} is gone");
    }

    // The store is back: the move resumes and the cold rows answer again.
    weed.resume().await;
    let report = server.maintain().await;
    assert!(
        report["errors"].as_array().is_some_and(|e| e.is_empty()),
        "{report}"
    );
    assert!(
        report["moved_segments"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    let all: Vec<Event> = events.into_iter().chain(late.concat()).collect();
    check_brute_force(&client, &all, "store back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_reads_right_after_an_outage_ride_out_the_stores_faults() {
    let Some(weed) = Seaweed::start().await else {
        return;
    };
    let store = FlakyStore::start(weed.endpoint()).await;
    let server = start_through(&weed, None, Some(store.endpoint()));
    let now = now_micros();
    let rounds = corpus(11, now, 2, 200);
    load(&server, &rounds).await;
    let events = rounds.concat();
    let report = server.maintain().await;
    assert!(
        report["moved_segments"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    // Back from an outage, a store answers 503 for a while, or cuts bodies: each read of
    // cold rows (with the range cache empty, after a restart) meets those first.
    let cold: Vec<&Event> = events.iter().filter(|e| e.ts < now - 2 * DAY).collect();
    assert!(!cold.is_empty());
    let targets = || cold.iter().step_by(41).map(|e| e.ts + 777);
    let mut server = server;
    for (fault, n) in [(Fault::Unavailable, 8), (Fault::CutBody, 3)] {
        server = server.restart();
        let client = server.pg().await;
        let served = store.served();
        store.fail_next_gets(n, fault);
        nearest_is_closest(&client, &events, targets(), &format!("{fault:?}")).await;
        check_brute_force(&client, &events, &format!("after {n} × {fault:?}")).await;
        assert_eq!(
            store.left(),
            0,
            "{fault:?}: the reads did not meet the faults"
        );
        assert_eq!(store.served() - served, n, "{fault:?}");
    }
    // The reads show in the metrics (the admin key is the API key when none is set apart).
    let text = crate::support::scrape(&server).await;
    let value = |name: &str| -> f64 {
        crate::support::sample(&text, name, &[]).unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(
        value(r#"timberline_object_store_requests_total{op="get"}"#) >= 1.0,
        "{text}"
    );
    assert!(
        value("timberline_object_store_get_bytes_total") > 0.0,
        "{text}"
    );
    assert!(
        value(r#"timberline_segments{tier="cold"}"#) >= 1.0,
        "{text}"
    );
}

/// A tmpfs of `size` mounted on a fresh directory (unmounted on drop); `None` where mounting is
/// not allowed.
struct SmallDisk {
    dir: std::sync::Arc<tempfile::TempDir>,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a small tmpfs here (needs root)");
            return None;
        }
        Some(SmallDisk {
            dir: std::sync::Arc::new(dir),
        })
    }

    fn grow(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_with_a_reason_keeps_what_it_acked_and_recovers() {
    let Some(disk) = SmallDisk::mount("6m") else {
        return;
    };
    let flags: Vec<String> = ["--wal-file-bytes", "262144", "--maintenance-interval", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let server = TestServer::spawn(disk.dir.clone(), flags, Vec::new());
    let now = now_micros();
    let mut acked = 0usize;
    let mut refused = None;
    for round in 0..400 {
        let events = corpus(round, now, 1, 500).concat();
        let body: Vec<u8> = events
            .iter()
            .map(|e| e.json().to_string())
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
        let (status, reply) = server
            .post_raw(
                "/v1/ingest",
                &[("content-type", "application/x-ndjson")],
                body,
            )
            .await;
        if status == 202 {
            acked += events.len();
            continue;
        }
        refused = Some((status, reply));
        break;
    }
    let (status, reply) = refused.expect("the disk never filled");
    assert_eq!(status, 503, "{reply}");
    assert!(
        reply["error"].as_str().is_some_and(|e| e.contains("space")),
        "{reply}"
    );
    // A flush on the full disk fails without a corrupt segment; every acked row answers.
    let (flushed, _) = server.post_raw("/v1/flush", &[], Vec::new()).await;
    let client = server.pg().await;
    assert_eq!(
        answer(&client, "SELECT count(*) FROM logs").await,
        [acked.to_string()],
        "flush answered {flushed}"
    );
    // Space returns: ingest and flush work again, nothing acked is lost.
    disk.grow("256m");
    let more = corpus(999, now, 1, 300).concat();
    server.ingest_ndjson(more.iter().map(Event::json)).await;
    server.flush().await;
    assert_eq!(
        answer(&client, "SELECT count(*) FROM logs").await,
        [(acked + more.len()).to_string()]
    );
    let server = server.restart();
    let client = server.pg().await;
    assert_eq!(
        answer(&client, "SELECT count(*) FROM logs").await,
        [(acked + more.len()).to_string()],
        "after a restart"
    );
}

/// The scattered events of [`one_batch_over_ten_thousand_hours_makes_a_handful_of_segments`]:
/// event `i` is `i + 2` hours and 30 minutes old (so no retention edge of whole hours falls
/// near one), its message naming a verb, a user and its own needle.
fn scattered(now: i64) -> Vec<Event> {
    (0..10_000i64)
        .map(|i| Event {
            ts: now - (i + 2) * HOUR - 30 * MINUTE,
            service: SERVICES[i as usize % SERVICES.len()],
            level: LEVELS[i as usize % LEVELS.len()],
            msg: format!(
                "{} user{} needle{i} from 10.0.{}.{} via edge-proxy",
                VERBS[i as usize % VERBS.len()],
                i % 50,
                i % 256,
                i / 256
            ),
            trace_id: format!("t{}", i % 40),
        })
        .collect()
}

/// Counts, `match`, count tables and `nearest` over the scattered events, against a brute force.
async fn check_scattered(client: &Client, events: &[Event], rounds: usize, when: &str) {
    let n =
        |f: &dyn Fn(&Event) -> bool| (events.iter().filter(|e| f(e)).count() * rounds).to_string();
    assert_eq!(
        answer(client, "SELECT count(*) FROM logs").await,
        [n(&|_| true)],
        "{when}"
    );
    let newest = events.iter().map(|e| e.ts).max().expect("events");
    for (from_h, to_h) in [(0, 5), (100, 1_000), (4_000, 4_900), (9_000, 12_000)] {
        let (lo, hi) = (newest - to_h * HOUR, newest - from_h * HOUR);
        let got = answer(
            client,
            &format!(
                "SELECT count(*) FROM logs WHERE ts > '{}' AND ts <= '{}'",
                rfc3339(lo),
                rfc3339(hi)
            ),
        )
        .await;
        assert_eq!(
            got,
            [n(&|e| e.ts > lo && e.ts <= hi)],
            "{when}: {from_h}..{to_h} h"
        );
    }
    for verb in VERBS {
        let got = answer(
            client,
            &format!("SELECT count(*) FROM logs WHERE match(msg, '{verb}')"),
        )
        .await;
        assert_eq!(got, [n(&|e| e.msg.starts_with(verb))], "{when}: {verb}");
    }
    for level in LEVELS {
        let got = answer(
            client,
            &format!("SELECT count(*) FROM logs WHERE level = '{level}'"),
        )
        .await;
        assert_eq!(got, [n(&|e| e.level == level)], "{when}: {level}");
    }
    let needle = &events[events.len() / 3];
    let tail = needle.msg.split(' ').nth(2).expect("needle");
    let got = answer(
        client,
        &format!("SELECT ts FROM logs WHERE match(msg, '{tail}')"),
    )
    .await;
    assert_eq!(got.len(), rounds, "{when}: {tail}");
    nearest_is_closest(
        client,
        events,
        events
            .iter()
            .step_by(events.len() / 7)
            .map(|e| e.ts + 7 * MINUTE),
        when,
    )
    .await;
}

/// A 1.7 MB batch of 10,000 events over 10,000 different hours, sent three times, used to make
/// 30,000 segments (90,000 files). Each flush now makes a handful, a pass merges the three
/// flushes' and moves the old ones cold, retention trims the segments that span its edge
/// without losing a row inside it, and every answer equals a brute force throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_over_ten_thousand_hours_makes_a_handful_of_segments() {
    let cold = tempfile::tempdir().expect("tempdir");
    let store = format!("file://{}", cold.path().display());
    let server = TestServer::start_with(&[
        "--object-store",
        &store,
        "--compact-after",
        "1h",
        "--cold-after",
        "30d",
        "--maintenance-interval",
        "0",
        "--flush-interval-secs",
        "3600",
    ]);
    let client = server.pg().await;
    let now = now_micros();
    let events = scattered(now);
    let batch = json!({"logs": events.iter().map(Event::json).collect::<Vec<_>>()});
    assert!(batch.to_string().len() > 1_600_000);
    for round in 1..=3 {
        let (status, body) = server.ingest(&batch).await;
        assert_eq!(status, 202, "{body}");
        let started = Instant::now();
        let report = server.flush().await;
        eprintln!("flush {round}: {report} in {:?}", started.elapsed());
        assert!(
            report["segments"].as_u64().is_some_and(|n| n <= 16),
            "{report}"
        );
    }
    let segments = || async {
        answer(&client, "SELECT count(*) FROM segments").await[0]
            .parse::<usize>()
            .expect("count")
    };
    assert!(segments().await <= 48);
    assert!(local_files(&server).len() <= 3 * 48);
    let started = Instant::now();
    check_scattered(&client, &events, 3, "flushed").await;
    eprintln!("queries after the flushes: {:?}", started.elapsed());

    let report = server.maintain().await;
    eprintln!("maintenance: {report}");
    assert!(
        report["errors"].as_array().is_some_and(|e| e.is_empty()),
        "{report}"
    );
    assert!(report["moved_segments"].as_u64() > Some(0), "{report}");
    let merged = segments().await;
    assert!(merged <= 16, "{merged} segments after a pass: {report}");
    check_scattered(&client, &events, 3, "after a pass").await;
    assert_eq!(
        server.maintain().await["compacted_segments"],
        0,
        "passes settle"
    );

    // Keep 200 days: the segment spanning the edge loses only the rows past it.
    let set = retention(&server, "200d");
    assert!(set.status.success(), "{set:?}");
    let report = server.maintain().await;
    assert!(
        report["errors"].as_array().is_some_and(|e| e.is_empty()),
        "{report}"
    );
    assert!(report["trimmed_segments"].as_u64() > Some(0), "{report}");
    let kept: Vec<Event> = events
        .iter()
        .filter(|e| e.ts >= now - 200 * DAY)
        .cloned()
        .collect();
    assert!(kept.len() < events.len());
    check_scattered(&client, &kept, 3, "after retention").await;
    let server = server.restart();
    let client = server.pg().await;
    check_scattered(&client, &kept, 3, "after a restart").await;
}
