//! Scan budgets and long-scan places: a query planned to scan more than its budget (the
//! session's `timberline.max_scan_bytes`, within its tenant's limit set while the server runs)
//! is refused at once with `54000` naming both; a long scan finds no place while the long-scan
//! places are taken and gets `53300` after a short queue, while small queries go on.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{bin, TestServer};

fn code(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_its_scan_budget_is_refused_before_it_runs() {
    let server = TestServer::start();
    let logs: Vec<serde_json::Value> = (0..2000)
        .map(|i| serde_json::json!({"ts": format!("2024-01-15T10:{:02}:{:02}Z", i / 60 % 60, i % 60), "msg": format!("line {i} {}", "x".repeat(100))}))
        .collect();
    let (s, _) = server.ingest(&serde_json::json!({ "logs": logs })).await;
    assert_eq!(s, 202);
    server.flush().await;
    let pg = server.pg().await;
    // A result-cache hit scans nothing: the budget is checked on scans.
    pg.simple_query("SET timberline.result_cache = off")
        .await
        .expect("set");
    let scan = "SELECT count(*) FROM logs WHERE msg LIKE '%line 1%'";
    // No budget: it runs.
    pg.simple_query(scan).await.expect("no budget");
    pg.simple_query("SET timberline.max_scan_bytes = 100")
        .await
        .expect("set");
    let e = pg.simple_query(scan).await.expect_err("over budget");
    assert_eq!(code(&e), "54000", "{e}");
    let text = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(
        text.contains("budget of 100 bytes") && text.contains("timberline.max_scan_bytes"),
        "{text}"
    );
    // A query the time range prunes to nothing scans nothing: it runs.
    pg.simple_query("SELECT count(*) FROM logs WHERE ts > '2030-01-01' AND msg LIKE '%x%'")
        .await
        .expect("pruned to nothing");
    let bad = pg
        .simple_query("SET timberline.max_scan_bytes = 'lots'")
        .await
        .expect_err("bad value");
    assert_eq!(code(&bad), "22023");
    pg.simple_query("SET timberline.max_scan_bytes = '1GB'")
        .await
        .expect("set");
    pg.simple_query(scan).await.expect("within the budget");
    // The tenant's limit, set while the server runs, caps what a session may SET.
    let out = Command::new(bin())
        .args([
            "tenant",
            "set",
            "default",
            "--max-scan-bytes",
            "1000",
            "--data-dir",
        ])
        .arg(server.dir.path())
        .output()
        .expect("tenant set");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = pg
        .simple_query(scan)
        .await
        .expect_err("over the tenant's limit");
    assert_eq!(code(&e), "54000");
    let text = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(text.contains("tenant default's limit"), "{text}");
    let bad = Command::new(bin())
        .args([
            "tenant",
            "set",
            "default",
            "--max-scan-bytes",
            "lots",
            "--data-dir",
        ])
        .arg(server.dir.path())
        .output()
        .expect("tenant set");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("max_scan_bytes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_scan_waits_briefly_for_a_place_then_gets_53300_while_small_queries_run() {
    let server =
        TestServer::start_with(&["--long-scan-bytes", "1", "--long-scan-concurrency", "1"]);
    let logs: Vec<serde_json::Value> = (0..3000)
        .map(|i| serde_json::json!({"msg": format!("row {i}")}))
        .collect();
    let (s, _) = server.ingest(&serde_json::json!({ "logs": logs })).await;
    assert_eq!(s, 202);
    server.flush().await;
    // One long scan that keeps computing (a filter no pair of a cross join passes) takes the
    // only long-scan place until its statement_timeout.
    let holder = server.pg().await;
    holder
        .simple_query("SET statement_timeout = '30s'")
        .await
        .expect("set");
    let held = tokio::spawn(async move {
        let r = holder
            .simple_query(
                "SELECT count(*) FROM logs a, logs b, logs c WHERE a.msg || b.msg || c.msg = 'never'",
            )
            .await;
        (holder, r.err().map(|e| code(&e)))
    });
    let pg = server.pg().await;
    // Cached states are no scan: each try must scan.
    pg.simple_query("SET timberline.result_cache = off")
        .await
        .expect("set");
    // Wait (bounded) until the holder's scan has its place: then a second long scan queues.
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let started = Instant::now();
        match pg
            .simple_query("SELECT count(*) FROM logs WHERE msg LIKE '%row%'")
            .await
        {
            Err(e) if code(&e) == "53300" => break (e, started.elapsed()),
            other => {
                assert!(Instant::now() < deadline, "never refused: {other:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let text = refused
        .0
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(text.contains("long scans"), "{text}");
    assert!(
        refused.1 >= Duration::from_millis(1900),
        "queued {:?}",
        refused.1
    );
    // A query that scans nothing is not a long scan: it runs at once.
    let one = pg.simple_query("SELECT 1").await.expect("small query");
    assert!(!one.is_empty());
    pg.simple_query("SELECT count(*) FROM logs WHERE ts > '2030-01-01'")
        .await
        .expect("pruned query");
    held.abort();
}
