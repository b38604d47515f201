//! The result cache: Grafana-shaped aggregates that no view answers give the same rows with
//! the cache on (computed, then read back from kept states) and off (a scan of the rows),
//! across refreshes, flushes, late rows, the hot buffer, compaction, a move to the cold tier
//! and retention; a tenant never gets another's states; ten concurrent identical refreshes
//! compute each segment's states once.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;
use tokio_postgres::Client;

use crate::quotas::{key_of, tenant_set, user_of};
use crate::rollups::{events, now_us, query, range, same};
use crate::support::{explain, plan_metric, sample, scrape, text_rows, TestServer};

async fn cache(client: &Client, on: bool) {
    let value = if on { "on" } else { "off" };
    client
        .batch_execute(&format!("SET timberline.result_cache = {value}"))
        .await
        .expect("set");
}

/// Runs each query with the cache off, then on twice (the second from kept states where the
/// first kept any); all three must agree. Returns how many second runs read kept states.
async fn on_and_off(client: &Client, queries: &[String]) -> usize {
    let mut hits = 0;
    for sql in queries {
        cache(client, false).await;
        let off = text_rows(client, sql).await;
        cache(client, true).await;
        let first = text_rows(client, sql).await;
        let plan = explain(client, sql).await;
        let again = text_rows(client, sql).await;
        for on in [&first, &again] {
            // approx_percentile_cont's digest depends on how states merge.
            if sql.contains("p99") {
                assert_eq!(off.len(), on.len(), "{sql}");
            } else {
                assert!(same(&off, on), "{sql}\noff: {off:?}\non: {on:?}");
            }
        }
        if plan_metric(&plan, "result_cache_hits").is_some_and(|h| h > 0) {
            hits += 1;
        } else {
            eprintln!("not from kept states: {sql}\n{plan}");
        }
    }
    hits
}

/// POSTs `events` as `tenant`'s (its API key `key`).
async fn ingest_as(server: &TestServer, key: &str, events: Vec<Value>) {
    let body = events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[
                ("authorization", key),
                ("content-type", "application/x-ndjson"),
            ],
            body.into_bytes(),
        )
        .await;
    assert_eq!(s, 202, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_aggregates_answer_as_a_scan_across_flushes_late_rows_compaction_and_retention() {
    let cold = tempfile::tempdir().expect("tempdir");
    let store = format!("file://{}", cold.path().display());
    let server = TestServer::start_with(&[
        "--object-store",
        &store,
        "--compact-after",
        "1h",
        "--cold-after",
        "2d",
        "--maintenance-interval",
        "0",
    ]);
    let admin = server.pg().await;
    let acme_key = key_of(&server, "acme");
    let acme = user_of(&server, "acme").await;
    let mut rng = StdRng::seed_from_u64(29);
    let end = now_us();
    let hours = 72;
    for _ in 0..3 {
        server
            .ingest_ndjson(events(&mut rng, 1_500, end, hours))
            .await;
        server.flush().await;
    }
    ingest_as(&server, &acme_key, events(&mut rng, 700, end, hours)).await;
    server.flush().await;

    // Dashboard panels (no view answers them), and the same panels without a time range.
    let mut queries: Vec<String> = (0..30)
        .map(|_| {
            let (from, to) = range(&mut rng, end, hours);
            query(&mut rng, from, to)
        })
        .collect();
    queries.push("SELECT service, level, count(*), max((attrs->>'duration_ms')::double) FROM logs GROUP BY 1, 2 ORDER BY 1, 2".into());
    queries.push("SELECT attrs->>'region', avg((attrs->>'duration_ms')::double) FROM logs WHERE match(msg, 'm') GROUP BY 1 ORDER BY 1".into());
    // Some are the count tables' (a view), some too narrow for their day-wide segments.
    let hits = on_and_off(&admin, &queries).await;
    assert!(
        hits >= 16,
        "only {hits} of {} refreshes read kept states",
        queries.len()
    );

    // A refresh over every segment computes nothing the second time.
    let whole = &queries[30];
    let plan = explain(&admin, whole).await;
    assert_eq!(plan_metric(&plan, "result_cache_misses"), Some(0), "{plan}");
    assert_eq!(plan_metric(&plan, "segments_scanned"), Some(0), "{plan}");

    // Another tenant running the same text gets its own rows, never the kept states of ours.
    assert!(on_and_off(&acme, &queries).await >= 16);
    let ours = text_rows(&admin, whole).await;
    let theirs = text_rows(&acme, whole).await;
    assert_ne!(ours, theirs, "the tenants' data differ");

    // Late rows into hours already flushed: some flushed, some left hot.
    server
        .ingest_ndjson(events(&mut rng, 800, end, hours))
        .await;
    server.flush().await;
    server
        .ingest_ndjson(events(&mut rng, 500, end, hours))
        .await;
    on_and_off(&admin, &queries).await;

    // Compaction, the cold tier and retention replace, move and remove segments.
    let out = tenant_set(&server, "default", &["--retention", "60h"]);
    assert!(out.status.success(), "{out:?}");
    let report = server.maintain().await;
    assert!(report["compacted_segments"].as_u64() > Some(0), "{report}");
    assert!(report["moved_segments"].as_u64() > Some(0), "{report}");
    assert!(report["deleted_segments"].as_u64() > Some(0), "{report}");
    on_and_off(&admin, &queries).await;
    on_and_off(&acme, &queries).await;

    // Off for a session is off; a bad value is refused.
    cache(&admin, false).await;
    let plan = explain(&admin, whole).await;
    assert_eq!(plan_metric(&plan, "result_cache_hits"), None, "{plan}");
    let e = match admin
        .batch_execute("SET timberline.result_cache = sometimes")
        .await
    {
        Ok(()) => admin.simple_query(whole).await.err(),
        Err(e) => Some(e),
    }
    .expect("refused");
    assert_eq!(e.code().map(|c| c.code()), Some("22023"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_concurrent_identical_refreshes_compute_each_segment_once() {
    let server = TestServer::start();
    let mut rng = StdRng::seed_from_u64(30);
    let end = now_us();
    for _ in 0..4 {
        server.ingest_ndjson(events(&mut rng, 2_000, end, 24)).await;
        server.flush().await;
    }
    let admin = server.pg().await;
    let segments: u64 = text_rows(&admin, "SELECT count(*) FROM segments").await[0]
        .parse()
        .expect("a count");
    assert!(segments >= 4);
    let sql = "SELECT date_trunc('hour', ts), service, count(*), avg((attrs->>'duration_ms')::double) FROM logs WHERE level <> 'DEBUG' GROUP BY 1, 2 ORDER BY 1, 2";
    cache(&admin, false).await;
    let want = text_rows(&admin, sql).await;

    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(server.pg().await);
    }
    let before = scrape(&server).await;
    let refreshes = clients.into_iter().map(|c| {
        let sql = sql.to_string();
        tokio::spawn(async move { text_rows(&c, &sql).await })
    });
    for answer in futures::future::join_all(refreshes).await {
        let answer = answer.expect("refresh");
        assert!(same(&answer, &want), "{answer:?}\n{want:?}");
    }
    let after = scrape(&server).await;
    let delta = |outcome: &str| {
        let label = format!("outcome=\"{outcome}\"");
        let name = "timberline_result_cache_segments_total";
        sample(&after, name, &[&label]).unwrap_or(0.0)
            - sample(&before, name, &[&label]).unwrap_or(0.0)
    };
    assert_eq!(delta("miss"), segments as f64, "each segment computed once");
    assert_eq!(delta("hit"), 9.0 * segments as f64);
}
