//! The MCP endpoint (`/mcp`) driven by a real MCP client — the official Python SDK
//! (`pip install mcp`, tests/clients/mcp_triage.py) — finding a seeded incident (an error burst
//! in one service at a known minute) through the tools; every answer under its cap, errors as
//! tool errors in a session that goes on; the key required and tenants kept apart.

use std::process::Command;

use serde_json::{json, Value};

use crate::quotas::key_of;
use crate::support::{available, http, TestServer, API_KEY};

/// Seeds 90 minutes of background logs and, 30 minutes ago, a burst of 80 card-declined
/// errors in `payments` on host pay-1, each with a trace that an `api` row starts 1 ms earlier.
/// The burst's minute (RFC 3339, to the minute).
async fn seed(server: &TestServer) -> String {
    let now = chrono::Utc::now();
    let at = |ago_ms: i64| (now - chrono::Duration::milliseconds(ago_ms)).to_rfc3339();
    let mut logs = Vec::new();
    let services = ["api", "web", "search", "payments"];
    for i in 0..3000i64 {
        let service = services[(i % 4) as usize];
        let level = if i % 97 == 0 { "WARN" } else { "INFO" };
        logs.push(json!({
            "ts": at(i * 1800), "service": service, "host": format!("{service}-{}", i % 3),
            "level": level, "msg": format!("GET /api/v1/items/{i} 200 in {} ms", i % 50),
        }));
    }
    // Errors elsewhere, 0 to 20 minutes ago: never within minutes of the burst, so the rows
    // nearest its first error are its own (at 30 minutes, one landed among them whenever the
    // test started in a minute's 5th to 7th second).
    for i in 0..5i64 {
        logs.push(json!({
            "ts": at(i * 300_000 + 1000), "service": "api", "host": "api-1", "level": "ERROR",
            "msg": format!("timeout calling db after {} ms", 3000 + i),
        }));
    }
    let burst = now - chrono::Duration::minutes(30);
    let burst =
        burst - chrono::Duration::seconds(burst.timestamp() % 60) + chrono::Duration::seconds(5);
    for i in 0..80i64 {
        let ts = burst + chrono::Duration::milliseconds(i * 500);
        let trace = format!("trace-{i}");
        logs.push(json!({
            "ts": (ts - chrono::Duration::milliseconds(1)).to_rfc3339(), "service": "api", "host": "api-0",
            "level": "INFO", "msg": format!("POST /checkout order {i}"), "trace_id": trace,
        }));
        logs.push(json!({
            "ts": ts.to_rfc3339(), "service": "payments", "host": "pay-1", "level": "ERROR",
            "msg": format!("card declined for order {} by gateway stripe-{}", 1000 + i, i % 3),
            "trace_id": trace,
        }));
    }
    for chunk in logs.chunks(1000) {
        let resp = http()
            .post(format!("{}/v1/ingest", server.http))
            .json(&json!({ "logs": chunk }))
            .send()
            .await
            .expect("ingest");
        assert_eq!(resp.status(), 202);
    }
    burst.format("%Y-%m-%dT%H:%M").to_string()
}

/// Runs the scripted agent against `server` with `key`; what it found.
fn triage(server: &TestServer, key: &str) -> Value {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/mcp_triage.py"
        ))
        .arg(format!("{}/mcp", server.http))
        .arg(key)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "mcp_triage.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the agent's JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_finds_a_seeded_incident_through_the_mcp_tools() {
    if !available(
        "the MCP Python SDK",
        Command::new("python3").args(["-c", "import mcp"]),
        "pip install mcp",
    ) {
        return;
    }
    let server = TestServer::start();
    let minute = seed(&server).await;
    let found = triage(&server, API_KEY);
    let tools: Vec<&str> = found["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        tools,
        [
            "describe_logs",
            "log_context",
            "log_volume",
            "nearest",
            "run_sql",
            "search_logs",
            "top_patterns",
            "trace"
        ]
    );
    assert_eq!(found["worst_service"], "payments", "{found}");
    let peak = found["peak_bucket"].as_str().expect("peak bucket");
    assert!(
        peak.replace(' ', "T").starts_with(&minute),
        "the burst's minute {minute}, found {peak}"
    );
    assert_eq!(found["peak_count"], 80);
    assert_eq!(
        found["top_pattern"],
        "card declined for order <num> by gateway stripe-<num>"
    );
    assert_eq!(
        (
            &found["page1"],
            &found["page1_truncated"],
            &found["pages_overlap"]
        ),
        (&json!(25), &json!(true), &json!(false))
    );
    assert_eq!(found["nearest_services"], json!(["payments"]));
    let context = found["context_rows"].as_u64().expect("context rows");
    assert!((4..=7).contains(&context), "{context}");
    assert_eq!(found["trace_services"], json!(["api", "payments"]));
    assert_eq!(found["big_truncated"], true);
    assert!(found["big_rows"]
        .as_u64()
        .is_some_and(|n| (1..1000).contains(&n)));
    for (tool, size) in found["sizes"].as_object().expect("sizes") {
        let size = size.as_u64().unwrap_or(u64::MAX);
        assert!(size <= 110 * 1024, "{tool} answered {size} bytes");
    }
    for (call, reason) in found["errors"].as_object().expect("errors") {
        let reason = reason
            .as_str()
            .unwrap_or_else(|| panic!("{call} was not refused"));
        let why = match call.split(' ').next() {
            Some("run_sql") if call.contains("SELEC 1") => "syntax",
            Some("run_sql") => "only a query",
            Some("search_logs") => "level",
            Some("nearest") => "ts",
            _ => "by",
        };
        assert!(reason.contains(why), "{call}: {reason}");
    }
    assert_eq!(found["after_errors"], found["total_rows"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_needs_a_key_and_answers_for_its_tenant_only() {
    let server = TestServer::start();
    seed(&server).await;
    let call = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "run_sql", "arguments": {"sql": "SELECT count(*) AS n FROM logs"}},
    });
    let post = |key: Option<String>| {
        let mut req = reqwest::Client::new()
            .post(format!("{}/mcp", server.http))
            .header("accept", "application/json, text/event-stream")
            .json(&call);
        if let Some(k) = key {
            req = req.header("authorization", k);
        }
        req.send()
    };
    let refused = post(None).await.expect("POST /mcp");
    assert_eq!(refused.status(), 401);
    let count = |body: Value| -> Value {
        let text = body["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("null")
            .to_string();
        serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)["rows"][0]["n"].clone()
    };
    let mine: Value = post(Some(format!("Bearer {API_KEY}")))
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(count(mine.clone()), json!(3165), "{mine}");
    let theirs: Value = post(Some(key_of(&server, "acme")))
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(count(theirs.clone()), json!(0), "{theirs}");
}
