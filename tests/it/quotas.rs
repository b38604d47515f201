//! Per-tenant ingest quotas on a running server: set with `timberline tenant set` while it
//! runs, a tenant over its quota sheds DEBUG first and keeps ERROR (reported in every
//! protocol's answer), is refused with 429 and Retry-After (RESOURCE_EXHAUSTED over gRPC),
//! syslog waits instead of dropping, and a tenant next to it is untouched.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{bin, count, pg_login, TestServer};

/// `timberline tenant set TENANT ARGS…` on the server's data directory.
pub fn tenant_set(server: &TestServer, tenant: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["tenant", "set", tenant])
        .args(args)
        .arg("--data-dir")
        .arg(server.dir.path())
        .output()
        .expect("tenant set")
}

/// A new API key of `tenant`, as an authorization header value.
pub fn key_of(server: &TestServer, tenant: &str) -> String {
    let out = Command::new(bin())
        .args(["key", "add", "--tenant", tenant, "--data-dir"])
        .arg(server.dir.path())
        .output()
        .expect("key add");
    assert!(out.status.success());
    format!("Bearer {}", String::from_utf8_lossy(&out.stdout).trim())
}

/// A pg session of a new user of `tenant`.
pub async fn user_of(server: &TestServer, tenant: &str) -> tokio_postgres::Client {
    let name = format!("u_{tenant}");
    let out = Command::new(bin())
        .args(["user", "add", &name, "--tenant", tenant, "--data-dir"])
        .arg(server.dir.path())
        .env("TIMBERLINE_NEW_PASSWORD", "pw")
        .output()
        .expect("user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pg_login(server.pg_port, &name, "pw").await.expect("login")
}

fn events(levels: &[(&str, usize)]) -> Vec<u8> {
    let logs: Vec<Value> = levels
        .iter()
        .flat_map(|(level, n)| {
            (0..*n).map(move |i| json!({"level": level, "msg": format!("{level} {i}")}))
        })
        .collect();
    serde_json::to_vec(&json!({ "logs": logs })).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_quota_sheds_debug_first_keeps_errors_and_is_told_when_to_retry() {
    let server = TestServer::start_with(&["--otlp-grpc-addr", "127.0.0.1:0"]);
    let acme = key_of(&server, "acme");
    let beta = key_of(&server, "beta");
    let ct = ("content-type", "application/json");
    // Bad settings are refused and change nothing.
    for bad in [
        &["--ingest-events-per-sec", "lots"][..],
        &["--ingest-bytes-per-sec=-5MB"],
        &["--ingest-events-per-sec", "10", "--ingest-burst", "0s"],
    ] {
        let out = tenant_set(&server, "acme", bad);
        assert!(!out.status.success(), "{bad:?} was taken");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("ingest_"),
            "{bad:?}"
        );
    }
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[ct, ("authorization", &acme)],
            events(&[("DEBUG", 500)]),
        )
        .await;
    assert_eq!((s, &b["shed"]), (202, &json!(0)), "{b}");
    // Set while the server runs: one event a second, a hundred at once.
    let out = tenant_set(
        &server,
        "acme",
        &["--ingest-events-per-sec", "1", "--ingest-burst", "100s"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 50 ERROR and 50 of the WARN fit; the other WARN and every DEBUG are shed, and said so.
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[ct, ("authorization", &acme)],
            events(&[("DEBUG", 100), ("WARN", 150), ("ERROR", 50)]),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(
        (&b["accepted"], &b["shed"], &b["shed_by_level"]),
        (
            &json!(100),
            &json!(200),
            &json!({"DEBUG": 100, "WARN": 100})
        ),
        "{b}"
    );
    // Nothing fits now: 429, a Retry-After, and a JSON reason naming the quota.
    let resp = crate::support::http()
        .post(format!("{}/v1/ingest", server.http))
        .header("authorization", &acme)
        .header("content-type", "application/json")
        .body(events(&[("INFO", 5)]))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: Value = resp.json().await.expect("JSON reason");
    let reason = body["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("acme") && reason.contains("1 events/s"),
        "{body}"
    );
    // ERROR still gets in, into debt.
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[ct, ("authorization", &acme)],
            events(&[("ERROR", 5)]),
        )
        .await;
    assert_eq!(
        (s, &b["accepted"], &b["shed"]),
        (202, &json!(5), &json!(0)),
        "{b}"
    );
    // Every protocol says it its own way: _bulk items 429, OTLP partial success, gRPC
    // RESOURCE_EXHAUSTED, Loki 429.
    // Items: a delete (refused, no record), a DEBUG (record 0, shed), an ERROR (record 1, kept).
    let bulk = "{\"delete\":{\"_id\":\"x\"}}\n{\"index\":{}}\n{\"message\":\"d\",\"log.level\":\"debug\"}\n{\"index\":{}}\n{\"message\":\"e\",\"log.level\":\"error\"}\n";
    let (s, b) = server
        .post_raw(
            "/_bulk",
            &[
                ("content-type", "application/x-ndjson"),
                ("authorization", &acme),
            ],
            bulk.as_bytes().to_vec(),
        )
        .await;
    assert_eq!((s, &b["errors"]), (200, &json!(true)), "{b}");
    assert_eq!(b["items"][0]["delete"]["status"], 400, "{b}");
    assert_eq!(b["items"][1]["index"]["status"], 429, "{b}");
    assert_eq!(
        b["items"][1]["index"]["error"]["type"],
        "es_rejected_execution_exception"
    );
    assert_eq!(b["items"][2]["index"]["status"], 201, "{b}");
    let otlp = json!({"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"severityText":"ERROR","body":{"stringValue":"e"}},
        {"severityText":"DEBUG","body":{"stringValue":"d"}}]}]}]});
    let (s, b) = server
        .post_raw(
            "/v1/logs",
            &[
                ("content-type", "application/json"),
                ("authorization", &acme),
            ],
            otlp.to_string().into_bytes(),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["partialSuccess"]["rejectedLogRecords"], "1", "{b}");
    let grpc = server.listener("otlp-grpc").expect("otlp-grpc");
    let key = acme.trim_start_matches("Bearer ");
    let (status, message) = crate::abuse::grpc_export(
        &grpc,
        Some(key),
        &crate::abuse::otlp_empty_records(3),
        false,
    )
    .await;
    assert_eq!(status, "8", "{message}");
    let loki =
        json!({"streams":[{"stream":{"job":"x"},"values":[["1705314645000000000","info line"]]}]});
    let (s, _) = server
        .post_raw(
            "/loki/api/v1/push",
            &[
                ("content-type", "application/json"),
                ("authorization", &acme),
            ],
            loki.to_string().into_bytes(),
        )
        .await;
    assert_eq!(s, 429);
    // The tenant next to it is untouched.
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[ct, ("authorization", &beta)],
            events(&[("DEBUG", 1000)]),
        )
        .await;
    assert_eq!(
        (s, &b["accepted"], &b["shed"]),
        (202, &json!(1000), &json!(0)),
        "{b}"
    );
    // What is stored is what the answers said: every ERROR, none of the shed.
    let pg = user_of(&server, "acme").await;
    assert_eq!(count(&pg, "WHERE level = 'ERROR'").await, 50 + 5 + 2);
    assert_eq!(count(&pg, "WHERE level = 'WARN'").await, 50);
    assert_eq!(
        count(&pg, "WHERE level = 'DEBUG' AND msg LIKE 'DEBUG %'").await,
        500
    );
    assert_eq!(count(&pg, "").await, 500 + 100 + 5 + 2);
    // And the metrics count them.
    let metrics = crate::support::scrape(&server).await;
    let shed = |level: &str| {
        let level = format!("level=\"{level}\"");
        crate::support::sample(
            &metrics,
            "timberline_ingest_shed_total{",
            &["tenant=\"acme\"", &level],
        )
    };
    assert_eq!(shed("DEBUG"), Some(100.0 + 2.0), "{metrics}");
    assert_eq!(shed("WARN"), Some(100.0));
    assert!(metrics.lines().any(
        |l| l.starts_with("timberline_ingest_refused_total{") && l.contains("reason=\"quota\"")
    ));
    // Lifted, the tenant sends freely again.
    let out = tenant_set(&server, "acme", &["--ingest-events-per-sec", "unlimited"]);
    assert!(out.status.success());
    let (s, b) = server
        .post_raw(
            "/v1/ingest",
            &[ct, ("authorization", &acme)],
            events(&[("DEBUG", 300)]),
        )
        .await;
    assert_eq!((s, &b["shed"]), (202, &json!(0)), "{b}");
}

/// Syslog cannot be told to retry: over its quota the listener stops reading, and every line
/// arrives — at the quota's pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_its_quota_waits_and_loses_nothing() {
    let server =
        TestServer::start_with(&["--syslog-addr", "127.0.0.1:0", "--syslog-tenant", "sys"]);
    let out = tenant_set(
        &server,
        "sys",
        &["--ingest-events-per-sec", "20", "--ingest-burst", "1s"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = server.listener("syslog").expect("syslog in the ready line");
    let started = Instant::now();
    let mut stream = Vec::new();
    for i in 0..80 {
        let msg = format!("<15>1 2024-01-15T10:30:44Z h app - - - debug line {i}");
        stream.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
    }
    let mut tcp = std::net::TcpStream::connect(&addr).expect("tcp");
    tcp.write_all(&stream).expect("write");
    drop(tcp);
    let pg = user_of(&server, "sys").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = count(&pg, "").await;
        if n == 80 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} of 80 syslog lines arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 20 at once, then 20 a second: the last 60 cannot have gone in before 3 s.
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "80 lines at 20/s went in after {:?}",
        started.elapsed()
    );
}
