//! The shippers people already run, pointed at a real server: the OpenTelemetry Python SDK
//! (OTLP/HTTP and OTLP/gRPC exporters), the official Elasticsearch client's bulk helper,
//! python-logging-loki (JSON push), winston-loki (protobuf + snappy push) and util-linux
//! `logger` (syslog RFC 3164/5424 over UDP and TCP, both TCP framings). Each test checks the
//! stored rows field by field, then feeds each endpoint bad input and checks the protocol's own
//! refusal and that the server keeps serving.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tokio_postgres::Client;

use crate::support::available;
use crate::support::{count, repo_path, rows, TestServer, API_KEY};

fn python_ok() -> bool {
    available(
        "the OpenTelemetry, Elasticsearch and Loki Python clients",
        Command::new("python3").args([
            "-c",
            "import opentelemetry.exporter.otlp.proto.grpc, elasticsearch, logging_loki",
        ]),
        "pip install -r tests/clients/requirements.txt",
    )
}

/// Runs `tests/shippers/ship.py KIND TARGET KEY`; its JSON report.
fn ship(kind: &str, target: &str) -> Value {
    let out = Command::new("python3")
        .arg(repo_path("tests/shippers/ship.py"))
        .args([kind, target, API_KEY])
        .output()
        .expect("run ship.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ship.py {kind} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn attrs(row: &crate::support::Row) -> Value {
    serde_json::from_str(&row.attrs).expect("attrs is JSON")
}

/// Waits (polling, bounded) until `filter` matches `n` rows: syslog has no acknowledgement.
async fn wait_rows(pg: &Client, filter: &str, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = count(pg, filter).await;
        if got >= n {
            assert_eq!(got, n, "{filter}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{filter}: {got} of {n} rows arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentelemetry_sdk_exports_over_http_and_grpc() {
    if !python_ok() {
        return;
    }
    let server = TestServer::start_with(&["--otlp-grpc-addr", "127.0.0.1:0"]);
    let pg = server.pg().await;
    let grpc = server
        .listener("otlp-grpc")
        .expect("otlp-grpc in the ready line");
    let before = chrono::Utc::now();
    for (kind, target) in [("otlp-http", server.http.clone()), ("otlp-grpc", grpc)] {
        let sent = ship(kind, &target);
        let service = sent["service"].as_str().expect("service");
        let got = rows(&pg, &format!("WHERE service = '{service}' ORDER BY ts")).await;
        assert_eq!(got.len(), 3, "{kind}: {got:?}");
        let mut by_level: Vec<(String, String)> = got
            .iter()
            .map(|r| (r.level.clone(), r.msg.clone()))
            .collect();
        by_level.sort();
        let mut want: Vec<(String, String)> = sent["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap_or("").into(),
                    r[1].as_str().unwrap_or("").into(),
                )
            })
            .collect();
        want.sort();
        assert_eq!(by_level, want, "{kind}");
        for r in &got {
            assert_eq!(r.host, "web-7", "{kind}: host.name → host");
            assert!(!r.parse_failed);
            let ts: chrono::DateTime<chrono::Utc> = r.ts.into();
            let a = attrs(r);
            // The SDK stamps the record when it is made and observes it after: a receive time
            // (later still) would fail the second bound.
            let observed =
                chrono::DateTime::parse_from_rfc3339(a["observed_time"].as_str().unwrap_or(""))
                    .unwrap_or_else(|e| panic!("{kind}: observed_time {a}: {e}"));
            assert!(
                ts >= before && ts <= observed,
                "{kind}: ts {ts} is the record's time (observed {observed})"
            );
            assert_eq!(a["otel.scope.name"], format!("shop.{kind}"), "{kind}: {a}");
            assert!(
                a["observed_time"].is_string(),
                "{kind}: observed time kept: {a}"
            );
            assert_eq!(
                a["telemetry.sdk.language"], "python",
                "{kind}: resource attrs: {a}"
            );
        }
        let error = got.iter().find(|r| r.level == "ERROR").expect("error row");
        assert_eq!(
            error.trace_id.as_deref(),
            sent["trace_id"].as_str(),
            "{kind}"
        );
        let a = attrs(error);
        assert_eq!(
            (a["order.id"].as_str(), a["amount"].as_f64()),
            (Some("o-17"), Some(12.5))
        );
        assert_eq!(a["span_id"].as_str().map(str::len), Some(16), "{kind}: {a}");
    }

    // The OpenTelemetry JS SDK with its OTLP/HTTP protobuf exporter: the record's own time,
    // severity by number alone, a structured body as JSON, the scope's version.
    let node_dir = repo_path("tests/shippers");
    if available(
        "the OpenTelemetry JS SDK (npm)",
        Command::new("node")
            .arg("-e")
            .arg("require('@opentelemetry/exporter-logs-otlp-proto')")
            .current_dir(&node_dir),
        "npm ci --prefix tests/shippers",
    ) {
        let out = Command::new("node")
            .arg("otel_js.js")
            .args([&server.http, API_KEY])
            .current_dir(&node_dir)
            .output()
            .expect("node");
        assert!(
            out.status.success(),
            "otel js: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let got = rows(&pg, "WHERE service = 'shop-js'").await;
        assert_eq!(got.len(), 2, "{got:?}");
        for r in &got {
            assert_eq!(
                chrono::DateTime::<chrono::Utc>::from(r.ts).to_rfc3339(),
                "2024-01-15T10:30:45.123+00:00"
            );
            assert_eq!(r.host, "js-1");
            assert_eq!(attrs(r)["otel.scope.version"], "1.2.3");
        }
        let (declined, structured) = (&got[0], &got[1]);
        assert_eq!(
            (declined.level.as_str(), declined.msg.as_str()),
            ("ERROR", "js card declined")
        );
        assert_eq!(attrs(declined)["amount"], 9.5);
        assert_eq!(
            (structured.level.as_str(), structured.msg.as_str()),
            ("WARN", r#"{"kind":"structured","n":2}"#)
        );
    }

    // Bad input gets OTLP's own answer and the server keeps serving.
    let (status, body, ctype) = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        b"\x0a\xff\xff\xff".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(ctype, "application/x-protobuf");
    assert!(
        String::from_utf8_lossy(&body).contains("ExportLogsServiceRequest"),
        "a google.rpc.Status with the reason"
    );
    let (status, body, _) = post(
        &server,
        "/v1/logs",
        "application/json",
        b"{\"resourceLogs\": 7}".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let status_json: Value = serde_json::from_slice(&body).expect("JSON Status");
    assert_eq!(status_json["code"], 3, "{status_json}");
    let (status, _, _) = post(&server, "/v1/logs", "text/plain", b"hi".to_vec()).await;
    assert_eq!(status, 415);
    // A small body whose records would each copy a 1 MiB resource: 413 before they are built.
    let blob = "x".repeat(1 << 20);
    let records: Vec<Value> = (0..200)
        .map(|_| serde_json::json!({"body": {"stringValue": "r"}}))
        .collect();
    let amplifying = serde_json::json!({"resourceLogs": [{"resource": {"attributes": [{"key": "blob", "value": {"stringValue": blob}}]},
        "scopeLogs": [{"logRecords": records}]}]});
    let (status, body, _) = post(
        &server,
        "/v1/logs",
        "application/json",
        amplifying.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        count(&pg, "WHERE service LIKE 'shop-otlp-%'").await,
        6,
        "nothing of the bad bodies was stored, nothing lost"
    );
    assert!(
        server.pg().await.simple_query("SELECT 1").await.is_ok(),
        "still serving"
    );
}

/// POSTs `body` with the demo key; (status, body bytes, content type).
async fn post(
    server: &TestServer,
    path: &str,
    ctype: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>, String) {
    let resp = crate::support::http()
        .post(format!("{}{path}", server.http))
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, resp.bytes().await.expect("body").to_vec(), ctype)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_client_bulk_lands_ecs_fields() {
    if !python_ok() {
        return;
    }
    let server = TestServer::start();
    let pg = server.pg().await;
    let sent = ship("es", &server.http);
    assert_eq!(sent["ok"], 2);
    let got = rows(&pg, "WHERE service = 'payments' ORDER BY ts").await;
    assert_eq!(got.len(), 2, "{got:?}");
    let (a, b) = (&got[0], &got[1]);
    let ts = |r: &crate::support::Row| chrono::DateTime::<chrono::Utc>::from(r.ts).to_rfc3339();
    assert_eq!(ts(a), "2024-01-15T10:30:45.123+00:00");
    assert_eq!(
        (a.msg.as_str(), a.level.as_str(), a.host.as_str()),
        ("card declined", "ERROR", "pay-3")
    );
    assert_eq!(a.trace_id.as_deref(), Some("es-trace-1"));
    assert_eq!(attrs(a)["user"]["id"], 42);
    assert_eq!(attrs(a)["_index"], "shop-es");
    assert_eq!(ts(b), "2024-01-15T10:30:46+00:00");
    assert_eq!((b.msg.as_str(), b.level.as_str()), ("retry ok", "INFO"));
    assert_eq!(attrs(b)["_id"], "fixed-2");

    // A bulk line that is not JSON is stored raw; delete is refused per item; the header is on.
    let body = "{\"index\":{\"_index\":\"raw\"}}\nthis is not json\n{\"delete\":{\"_id\":\"1\"}}\n";
    let resp = crate::support::http()
        .post(format!("{}/_bulk", server.http))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("bulk");
    assert_eq!(
        resp.headers()
            .get("x-elastic-product")
            .and_then(|v| v.to_str().ok()),
        Some("Elasticsearch")
    );
    let answer: Value = resp.json().await.expect("bulk JSON");
    assert_eq!(answer["errors"], true);
    assert_eq!(answer["items"][0]["index"]["status"], 201);
    assert_eq!(answer["items"][1]["delete"]["status"], 400);
    let raw = rows(&pg, "WHERE msg = 'this is not json'").await;
    assert_eq!(raw.len(), 1);
    assert!(raw[0].parse_failed);
    // Without a key: 401, and nothing stored.
    let resp = reqwest::Client::new()
        .post(format!("{}/_bulk", server.http))
        .body(body)
        .send()
        .await
        .expect("bulk");
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(count(&pg, "").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_clients_push_json_and_snappy_protobuf() {
    if !python_ok() {
        return;
    }
    let server = TestServer::start();
    let pg = server.pg().await;
    ship("loki", &server.http);
    // `rows` sorts by message.
    let got = rows(&pg, "WHERE service = 'shop-loki'").await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[1].level.as_str(), got[1].msg.as_str()),
        ("ERROR", "upstream timeout")
    );
    assert_eq!(got[1].host, "edge-1");
    assert_eq!(attrs(&got[1])["region"], "eu-1");
    assert_eq!(attrs(&got[1])["logger"], "shop.loki");
    assert_eq!(
        (got[0].level.as_str(), got[0].msg.as_str()),
        ("INFO", "recovered")
    );

    let node_dir = repo_path("tests/shippers");
    let node_ok = available(
        "winston-loki (npm)",
        Command::new("node")
            .arg("-e")
            .arg("require('winston-loki'); require('snappy')")
            .current_dir(&node_dir),
        "npm ci --prefix tests/shippers",
    );
    if node_ok {
        let out = Command::new("node")
            .arg("winston_loki.js")
            .args([&server.http, API_KEY])
            .current_dir(&node_dir)
            .output()
            .expect("node");
        assert!(
            out.status.success(),
            "winston-loki: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("report");
        assert_eq!(
            report["content_type"], "application/x-protobuf",
            "snappy protobuf, not the JSON fallback"
        );
        let got = rows(&pg, "WHERE service = 'shop-node'").await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].level, "ERROR");
        assert!(
            got[0].msg.starts_with("payment gateway timeout"),
            "{:?}",
            got[0].msg
        );
        assert_eq!(got[0].host, "node-1");
        assert_eq!(got[1].level, "WARN");
        assert!(got[1].msg.starts_with("slow upstream"), "{:?}", got[1].msg);
    }

    // A Loki timestamp is kept to the microsecond, structured metadata lands in attrs.
    let push = r#"{"streams":[{"stream":{"service_name":"exact","level":"warn"},"values":[["1705314645123456789","exact line",{"trace_id":"tr-9","user":"u1"}]]}]}"#;
    let (status, _, _) = post(
        &server,
        "/loki/api/v1/push",
        "application/json",
        push.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 204);
    let got = rows(&pg, "WHERE service = 'exact'").await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        chrono::DateTime::<chrono::Utc>::from(got[0].ts).to_rfc3339(),
        "2024-01-15T10:30:45.123456+00:00"
    );
    assert_eq!(
        (got[0].level.as_str(), got[0].trace_id.as_deref()),
        ("WARN", Some("tr-9"))
    );
    assert_eq!(attrs(&got[0])["user"], "u1");

    // Wrong snappy and a broken JSON body: 400 with a text reason.
    let (status, body, _) = post(
        &server,
        "/loki/api/v1/push",
        "application/x-protobuf",
        b"\xff\xff\xff\xff\xff garbage".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("snappy"));
    let (status, _, _) = post(
        &server,
        "/loki/api/v1/push",
        "application/json",
        b"{\"streams\": [".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let expect = if node_ok { 5 } else { 3 };
    assert_eq!(count(&pg, "").await, expect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_sends_syslog_over_udp_and_tcp() {
    if !available(
        "logger (util-linux)",
        Command::new("logger").arg("--help"),
        "apt-get install bsdutils",
    ) {
        return;
    }
    let server = TestServer::start_with(&["--syslog-addr", "127.0.0.1:0"]);
    let pg = server.pg().await;
    let addr = server.listener("syslog").expect("syslog in the ready line");
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let send = |args: &[&str], msg: &str| {
        let out = Command::new("logger")
            .args(["-n", host, "-P", port])
            .args(args)
            .arg(msg)
            .output()
            .expect("logger");
        assert!(
            out.status.success(),
            "logger {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    send(
        &["--udp", "--rfc3164", "-t", "cron3164", "-p", "cron.err"],
        "udp bsd line",
    );
    send(
        &[
            "--udp",
            "--rfc5424",
            "-t",
            "api5424",
            "-p",
            "local3.warning",
            "--msgid",
            "M1",
            "--sd-id",
            "req@1",
            "--sd-param",
            "id=\"r-7\"",
        ],
        "udp rfc5424 line",
    );
    send(
        &[
            "--tcp",
            "--octet-count",
            "--rfc5424",
            "-t",
            "tcpcount",
            "-p",
            "user.info",
        ],
        "tcp octet-counted line",
    );
    send(
        &["--tcp", "--rfc3164", "-t", "tcpline", "-p", "daemon.debug"],
        "tcp newline line",
    );
    wait_rows(&pg, "WHERE msg LIKE '%line'", 4).await;

    let got = rows(&pg, "WHERE msg LIKE '%line' ORDER BY service").await;
    let by = |svc: &str| {
        got.iter()
            .find(|r| r.service == svc)
            .unwrap_or_else(|| panic!("{svc}: {got:?}"))
    };
    let now = chrono::Utc::now();
    for (svc, level, msg, facility) in [
        ("cron3164", "ERROR", "udp bsd line", "cron"),
        ("api5424", "WARN", "udp rfc5424 line", "local3"),
        ("tcpcount", "INFO", "tcp octet-counted line", "user"),
        ("tcpline", "DEBUG", "tcp newline line", "daemon"),
    ] {
        let r = by(svc);
        assert_eq!((r.level.as_str(), r.msg.as_str()), (level, msg), "{svc}");
        assert!(!r.parse_failed, "{svc}");
        let ts: chrono::DateTime<chrono::Utc> = r.ts.into();
        assert!(
            (now - ts).num_seconds().abs() < 120,
            "{svc}: ts {ts} is the message's own time"
        );
        assert_eq!(attrs(r)["facility"], facility, "{svc}");
        assert!(!r.host.is_empty());
    }
    let a = attrs(by("api5424"));
    assert_eq!(
        (a["msgid"].as_str(), a["req@1"]["id"].as_str()),
        (Some("M1"), Some("r-7")),
        "{a}"
    );

    // A header-less line and an absurd octet count over raw TCP: stored raw, server alive.
    let mut tcp = std::net::TcpStream::connect(&addr).expect("tcp");
    tcp.write_all(b"no header at all\n").expect("write");
    drop(tcp);
    let mut tcp = std::net::TcpStream::connect(&addr).expect("tcp");
    tcp.write_all(b"999999999 <13>1 - - - - - claims a gigabyte")
        .expect("write");
    drop(tcp);
    wait_rows(&pg, "WHERE parse_failed AND msg = 'no header at all'", 1).await;
    // What arrived of the frame that claimed a gigabyte is kept, flagged, not waited for.
    wait_rows(
        &pg,
        "WHERE parse_failed AND msg LIKE '999999999 %claims a gigabyte'",
        1,
    )
    .await;
    // The message's own time, to the microsecond (logger's would be "now").
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.send_to(
        b"<11>1 2024-01-15T10:30:44.123456Z db-9 pinned 77 - - exact time",
        &addr,
    )
    .expect("send");
    wait_rows(&pg, "WHERE service = 'pinned'", 1).await;
    let got = rows(&pg, "WHERE service = 'pinned'").await;
    assert_eq!(
        chrono::DateTime::<chrono::Utc>::from(got[0].ts).to_rfc3339(),
        "2024-01-15T10:30:44.123456+00:00"
    );
    assert_eq!(
        (got[0].host.as_str(), got[0].level.as_str()),
        ("db-9", "ERROR")
    );
    send(&["--udp", "--rfc5424", "-t", "after"], "still serving line");
    wait_rows(&pg, "WHERE service = 'after'", 1).await;
}

/// A syslog batch larger than the whole hot buffer is stored in parts, not retried forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_fills_a_small_buffer_without_stalling() {
    let server = TestServer::start_with(&[
        "--syslog-addr",
        "127.0.0.1:0",
        "--max-buffer-bytes",
        "1048576",
        "--flush-bytes",
        "262144",
    ]);
    let pg = server.pg().await;
    let addr = server.listener("syslog").expect("syslog in the ready line");
    let mut stream = Vec::new();
    for i in 0..3000 {
        let msg = format!(
            "<14>1 2024-01-15T10:30:44Z h bulk - - - event {i} {}",
            "x".repeat(1000)
        );
        stream.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
    }
    let mut tcp = std::net::TcpStream::connect(&addr).expect("tcp");
    tcp.write_all(&stream).expect("write");
    drop(tcp);
    wait_rows(&pg, "WHERE service = 'bulk'", 3000).await;
    assert_eq!(
        count(&pg, "WHERE service = 'bulk' AND parse_failed").await,
        0
    );
}

/// rsyslog, as people run it in front of a store: a message it receives is forwarded as RFC 5424
/// over TCP (octet-counted) and as Elasticsearch `_bulk` (omelasticsearch, Basic auth with the
/// key) — both land, field by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_over_tcp_and_bulk() {
    if !available(
        "rsyslogd (rsyslog, rsyslog-elasticsearch)",
        Command::new("rsyslogd").arg("-v"),
        "apt-get install rsyslog rsyslog-elasticsearch",
    ) {
        return;
    }
    let server = TestServer::start_with(&["--syslog-addr", "127.0.0.1:0"]);
    let pg = server.pg().await;
    let syslog = server.listener("syslog").expect("syslog in the ready line");
    let syslog_port = syslog.rsplit(':').next().expect("port");
    let http_port = server.http.rsplit(':').next().expect("port");
    let dir = tempfile::tempdir().expect("tempdir");
    let inbound = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port");
    let in_port = inbound.local_addr().expect("addr").port();
    drop(inbound);
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{in_port}" ruleset="fwd")
module(load="omelasticsearch")
template(name="ecs" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
  property(outname="host.name" name="hostname" format="jsonf")
  property(outname="service.name" name="programname" format="jsonf")
  property(outname="log.level" name="syslogseverity-text" format="jsonf")
}}
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{syslog_port}" protocol="tcp" template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")
  action(type="omelasticsearch" server="127.0.0.1" serverport="{http_port}" template="ecs" searchIndex="rsyslog" bulkmode="on" uid="rsyslog" pwd="{API_KEY}" esVersion.major="8")
}}
"#,
            work = dir.path().display()
        ),
    )
    .expect("write config");
    let mut rsyslogd = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.path().join("rsyslogd.pid"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("rsyslogd");
    // Until rsyslog listens, a datagram is lost: send a probe until one arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut i = 0;
    while count(&pg, "WHERE service = 'probe'").await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "rsyslog forwarded nothing"
        );
        let _ = Command::new("logger")
            .args([
                "-n",
                "127.0.0.1",
                "-P",
                &in_port.to_string(),
                "--udp",
                "-t",
                "probe",
            ])
            .arg(format!("probe {i}"))
            .output();
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = Command::new("logger")
        .args([
            "-n",
            "127.0.0.1",
            "-P",
            &in_port.to_string(),
            "--udp",
            "--rfc3164",
            "-t",
            "rsysapp",
            "-p",
            "local2.err",
        ])
        .arg("card declined via rsyslog")
        .output()
        .expect("logger");
    assert!(out.status.success());
    wait_rows(&pg, "WHERE service = 'rsysapp'", 2).await;
    let _ = rsyslogd.kill();
    let _ = rsyslogd.wait();
    let got = rows(&pg, "WHERE service = 'rsysapp'").await;
    for r in &got {
        assert_eq!(
            (r.msg.trim(), r.level.as_str()),
            ("card declined via rsyslog", "ERROR"),
            "{r:?}"
        );
        assert!(!r.parse_failed && !r.host.is_empty());
    }
    let via: Vec<Value> = got.iter().map(attrs).collect();
    assert!(
        via.iter().any(|a| a["_index"] == "rsyslog"),
        "one came through _bulk: {via:?}"
    );
    assert!(
        via.iter()
            .any(|a| a["syslog"] == "rfc5424" && a["facility"] == "local2"),
        "one over TCP: {via:?}"
    );
}
