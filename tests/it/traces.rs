//! The server's own traces: pointed at its own OTLP endpoint (`--otlp-traces-endpoint
//! http://itself/v1/traces`), it stores the spans of an ingest request (decode, prepare, wal)
//! and of a query (plan, prune, scan, encode) as rows, under the trace id its query log line
//! names; storing spans is itself not traced (no feedback loop). `POST /v1/traces` takes
//! OTLP/JSON from any client too, and refuses garbage with a reason.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{bin, http, pg_connect, text_rows};

/// A server whose spans go to its own `/v1/traces`; its log lines (JSON) go to `log`.
struct Traced {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    http: String,
    pg_port: u16,
    log: std::path::PathBuf,
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_traced() -> Traced {
    let dir = tempfile::tempdir().expect("tempdir");
    // A free port, so the server can be told its own address before it binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = dir.path().join("server.log");
    let mut child = Command::new(bin())
        .args(["--log-format", "json", "serve", "--http-addr", &addr])
        .args(["--pg-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--otlp-traces-endpoint",
            &format!("http://{addr}/v1/traces"),
        ])
        .env("RUST_LOG", "info,timberline::server=error")
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "authorization=Bearer timberline",
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn timberline");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let pg_port = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pg="))
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pg port in {line:?}"));
    Traced {
        child,
        _dir: dir,
        http: format!("http://{addr}"),
        pg_port,
        log,
    }
}

/// The `trace_id` of the first `query` log line (JSON) of kind `kind`.
fn query_trace_id(log: &std::path::Path, kind: &str) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "query" && v["fields"]["kind"] == kind)
        .and_then(|v| v["fields"]["trace_id"].as_str().map(str::to_string))
}

/// Asks (a bounded number of times) until the spans of `trace_id` include every name of
/// `want`; returns the names found.
async fn spans_of(
    client: &tokio_postgres::Client,
    trace_id: &str,
    want: &[&str],
) -> BTreeSet<String> {
    let sql = format!(
        "SELECT msg FROM logs WHERE service = 'timberline' AND trace_id = '{trace_id}' ORDER BY ts"
    );
    let mut found = BTreeSet::new();
    for _ in 0..300 {
        found = text_rows(client, &sql).await.into_iter().collect();
        if want.iter().all(|w| found.contains(*w)) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("spans of {trace_id}: {found:?}, want {want:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_servers_own_spans_are_rows_under_the_trace_id_of_its_query_log_line() {
    let server = start_traced();
    let (s, body) = {
        let resp = http()
            .post(format!("{}/v1/ingest", server.http))
            .header("authorization", "Bearer timberline")
            .json(&json!({"logs": [{"service": "api", "msg": "hello traced world"}]}))
            .send()
            .await
            .expect("ingest");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    };
    assert_eq!(s, 202, "{body}");
    let client = pg_connect(server.pg_port, "timberline").await.expect("pg");
    let rows = text_rows(
        &client,
        "SELECT count(*) FROM logs WHERE service = 'api' AND msg LIKE '%traced%'",
    )
    .await;
    assert_eq!(rows, ["1"]);

    // The query's log line names its trace; the trace's spans arrive as rows.
    let mut trace_id = None;
    for _ in 0..100 {
        trace_id = query_trace_id(&server.log, "search");
        if trace_id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trace_id = trace_id.expect("a query log line with its trace id");
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    spans_of(
        &client,
        &trace_id,
        &["query", "plan", "prune", "scan", "encode"],
    )
    .await;

    // The ingest request's spans share one trace.
    let ingest_trace = loop_for_ingest_trace(&client).await;
    spans_of(
        &client,
        &ingest_trace,
        &["http_request", "decode", "prepare", "wal"],
    )
    .await;

    // Storing spans is not traced: after another query's spans arrived (later exports), the
    // only `wal` span is the ingest request's.
    let rows = text_rows(&client, "SELECT count(*) FROM logs WHERE level = 'INFO'").await;
    assert!(!rows.is_empty());
    let mut second = None;
    for _ in 0..100 {
        let text = std::fs::read_to_string(&server.log).unwrap_or_default();
        second = text
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "query")
            .filter_map(|v| v["fields"]["trace_id"].as_str().map(str::to_string))
            .filter(|t| *t != trace_id)
            .next();
        if second.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = second.expect("the second query's log line");
    spans_of(&client, &second, &["query", "plan", "scan"]).await;
    let wal = text_rows(
        &client,
        "SELECT count(*) FROM logs WHERE service = 'timberline' AND msg = 'wal'",
    )
    .await;
    assert_eq!(wal, ["1"], "spans of storing spans were exported");

    // Spans are rows like any: measured, and none for storing spans.
    let avg = text_rows(
        &client,
        "SELECT avg((attrs->>'duration_ms')::double) > 0 FROM logs WHERE service = 'timberline' AND msg = 'query'",
    )
    .await;
    assert_eq!(avg, ["t"]);
    let stored = text_rows(
        &client,
        "SELECT count(*) FROM logs WHERE service = 'timberline' AND attrs->>'route' = '/v1/traces'",
    )
    .await;
    assert_eq!(stored, ["0"]);
}

/// The trace id of the `wal` span of an ingest request, once it is stored.
async fn loop_for_ingest_trace(client: &tokio_postgres::Client) -> String {
    for _ in 0..300 {
        let ids = text_rows(
            client,
            "SELECT trace_id FROM logs WHERE service = 'timberline' AND msg = 'http_request' AND attrs->>'route' = '/v1/ingest' LIMIT 1",
        )
        .await;
        if let Some(id) = ids.into_iter().next() {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no ingest request span was stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_json_spans_from_a_client_are_rows_and_garbage_gets_a_reason() {
    let server = crate::support::TestServer::start();
    let trace = "5b8efff798038103d269b633813fc60c";
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace, "spanId": "eee19b7ec3c1b174", "name": "GET /cart",
            "kind": 2, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000120000000",
            "attributes": [{"key": "http.status_code", "value": {"intValue": "500"}}],
            "status": {"code": 2, "message": "upstream failed"}
        }]}]
    }]});
    let resp = http()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/json")
        .header("authorization", "Bearer timberline")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /v1/traces");
    assert_eq!(resp.status().as_u16(), 200);
    let client = server.pg().await;
    let rows = text_rows(
        &client,
        &format!("SELECT service, level, msg, attrs->>'duration_ms', attrs->>'status_message' FROM logs WHERE trace_id = '{trace}'"),
    )
    .await;
    assert_eq!(rows, ["checkout|ERROR|GET /cart|120.0|upstream failed"]);

    for (ctype, garbage) in [
        ("application/json", "{\"resourceSpans\": 7}"),
        ("application/x-protobuf", "\u{7f}\u{7f}\u{7f}"),
    ] {
        let resp = http()
            .post(format!("{}/v1/traces", server.http))
            .header("content-type", ctype)
            .header("authorization", "Bearer timberline")
            .body(garbage)
            .send()
            .await
            .expect("POST /v1/traces");
        assert_eq!(resp.status().as_u16(), 400, "{ctype}");
    }
    let resp = http()
        .post(format!("{}/v1/traces", server.http))
        .header("content-type", "application/json")
        .header("authorization", "Bearer not-a-key")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /v1/traces");
    assert_eq!(resp.status().as_u16(), 401, "a wrong key is refused");
}
