//! The audit log: every statement (both protocols, fixtures, failures) and every API call is a
//! row of `audit_log`, with who, from where, what, how long, how many rows and bytes, and how
//! it ended; only the administrator reads it; it survives a crash (it is written through the
//! WAL); no user or key can take its tenant.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_postgres::SimpleQueryMessage;

use crate::quotas::{key_of, user_of};
use crate::support::{bin, TestServer};

/// The audit rows as text: `user|tenant|client|kind|query|rows|outcome|sqlstate`.
async fn audit_rows(pg: &tokio_postgres::Client) -> Vec<String> {
    let sql = "SELECT user_name, tenant, client_addr, kind, query_text, rows, outcome, sqlstate, \
               bytes_scanned, duration_ms FROM audit_log ORDER BY ts";
    let mut out = Vec::new();
    for m in pg.simple_query(sql).await.expect("audit_log") {
        if let SimpleQueryMessage::Row(r) = m {
            let cells: Vec<&str> = (0..10).map(|i| r.get(i).unwrap_or("∅")).collect();
            out.push(cells.join("|"));
        }
    }
    out
}

/// Polls `audit_log` until a row satisfies each of `wanted` (the trail is written behind the
/// statements it records); the rows then.
async fn wait_for(pg: &tokio_postgres::Client, wanted: &[&dyn Fn(&str) -> bool]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = audit_rows(pg).await;
        if wanted.iter().all(|w| rows.iter().any(|r| w(r))) {
            return rows;
        }
        assert!(Instant::now() < deadline, "audit rows missing: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_and_api_call_is_audited_for_the_admin_only() {
    let server = TestServer::start();
    let acme_key = key_of(&server, "acme");
    let reserved = Command::new(bin())
        .args(["key", "add", "--tenant", "_audit", "--data-dir"])
        .arg(server.dir.path())
        .output()
        .expect("key add");
    assert!(!reserved.status.success());
    assert!(String::from_utf8_lossy(&reserved.stderr).contains("reserved"));
    // API calls: one accepted, one without a key.
    let ct = ("content-type", "application/json");
    let logs = json!({"logs": [{"msg": "needle one"}, {"msg": "hay"}]});
    let (s, _) = server
        .post_raw(
            "/v1/ingest",
            &[ct, ("authorization", &acme_key)],
            logs.to_string().into_bytes(),
        )
        .await;
    assert_eq!(s, 202);
    let (s, _) = server
        .post_raw(
            "/v1/ingest",
            &[ct, ("authorization", "Bearer wrong")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = server.ingest(&logs).await;
    assert_eq!(s, 202);
    server.flush().await;
    // Statements: simple and extended protocol, a fixture, a failure.
    let admin = server.pg().await;
    admin
        .simple_query("SELECT count(*) FROM logs WHERE msg LIKE '%needle%'")
        .await
        .expect("count");
    let one: i32 = admin
        .query_one("SELECT $1::int AS answer", &[&42i32])
        .await
        .expect("extended")
        .get(0);
    assert_eq!(one, 42);
    admin
        .simple_query("SET statement_timeout = '10s'")
        .await
        .expect("set");
    let bad = admin
        .simple_query("SELECT nope FROM logs")
        .await
        .expect_err("no column");
    assert_eq!(bad.code().map(|c| c.code()), Some("42703"));
    // A tenant's user cannot read it.
    // A statement 100 KiB long keeps only its first 8 KiB in the trail.
    let long = format!("SELECT '{}' AS long_one", "z".repeat(100 * 1024));
    admin.simple_query(&long).await.expect("long statement");
    let acme = user_of(&server, "acme").await;
    let denied = acme
        .simple_query("SELECT * FROM audit_log")
        .await
        .expect_err("not the admin");
    assert_eq!(denied.code().map(|c| c.code()), Some("42501"), "{denied}");
    // Nor see it listed: information_schema and pg_class (psql's \dt) name it to the admin only.
    for (client, listed) in [(&acme, "0"), (&admin, "1")] {
        for sql in [
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit_log'",
            "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'audit_log'",
        ] {
            assert_eq!(
                crate::support::text_rows(client, sql).await,
                [listed],
                "{sql}"
            );
        }
    }
    let rows = wait_for(
        &admin,
        &[
            &|r| r.starts_with("timberline|default|127.0.0.1|sql|SELECT count(*) FROM logs WHERE msg LIKE '%needle%'|1|ok||"),
            &|r| r.starts_with("timberline|default|127.0.0.1|sql|SELECT $1::INT AS answer|1|ok||"),
            &|r| r.starts_with("timberline|default|127.0.0.1|sql|SET statement_timeout = '10s'|0|ok||"),
            &|r| r.starts_with("timberline|default|127.0.0.1|sql|SELECT nope FROM logs|0|error|42703|"),
            &|r| r.starts_with("u_acme|acme|127.0.0.1|sql|SELECT * FROM audit_log|0|error|42501|"),
            &|r| r.starts_with("key:") && r.contains("|acme|127.0.0.1|http|POST /v1/ingest|0|ok|202|"),
            &|r| r.starts_with("||127.0.0.1|http|POST /v1/ingest|0|error|401|"),
            &|r| r.contains("|sql|SELECT 'zzz"),
        ],
    )
    .await;
    let long_row = rows
        .iter()
        .find(|r| r.contains("SELECT 'zzz"))
        .expect("the long statement");
    let text = long_row.split('|').nth(4).unwrap_or_default();
    assert_eq!(text.len(), 8 * 1024, "{}", &text[..40.min(text.len())]);
    // The scan's bytes are counted; durations are measured.
    let count_row = rows
        .iter()
        .find(|r| r.contains("LIKE '%needle%'"))
        .expect("the count");
    let cells: Vec<&str> = count_row.split('|').collect();
    assert!(cells[8].parse::<u64>().expect("bytes") > 0, "{count_row}");
    assert!(cells[9].parse::<f64>().expect("ms") > 0.0, "{count_row}");
    // The key id is the start of the SHA-256 the keys file stores.
    let keys = std::fs::read_to_string(server.dir.path().join("api_keys.json")).expect("keys");
    let ingest = rows
        .iter()
        .find(|r| r.starts_with("key:"))
        .expect("keyed call");
    let id = &ingest[4..16];
    assert!(keys.contains(id), "{id} not in {keys}");
    // Durable: a crash loses none of it (the trail went through the WAL).
    let before = rows.len();
    let server = server.restart();
    let admin = server.pg().await;
    let after = audit_rows(&admin).await;
    assert!(
        after.len() >= before,
        "{} rows after the restart, {before} before",
        after.len()
    );
    for row in &rows {
        assert!(after.contains(row), "lost in the crash: {row}");
    }
}
