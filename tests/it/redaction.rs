//! PII redaction at ingest on a running server: the default detectors over every protocol,
//! in `msg` and in `attrs` values, before the WAL (the raw secret is in no file of the data
//! directory); a tenant's own detectors and rules set while the server runs; bad rules
//! refused; `--redact none` stores logs as sent.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::quotas::{key_of, tenant_set, user_of};
use crate::support::{bin, count, text_rows, TestServer};

const EMAIL: &str = "carol.smith@example.org";
const CARD: &str = "4111 1111 1111 1111";
const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const AWS: &str = "AKIAIOSFODNN7EXAMPLE";

/// Whether any file under `dir` holds `needle`.
fn any_file_holds(dir: &Path, needle: &[u8]) -> Option<String> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return Some(p.display().to_string());
                }
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_detectors_redact_every_protocol_before_the_wal() {
    let server = TestServer::start_with(&["--syslog-addr", "127.0.0.1:0"]);
    let ct = ("content-type", "application/json");
    let msg = format!(
        "login {EMAIL} card {CARD} token {JWT} key {AWS} from 10.1.2.3 via https://svc:hunter22@db.internal/x, Authorization: Bearer abcdef123456789"
    );
    let body = json!({"logs": [{
        "service": "auth", "msg": msg,
        "user": {"email": EMAIL, "id": 7}, "card": CARD, "note": "nothing here"
    }]});
    let (s, b) = server.ingest(&body).await;
    assert_eq!(s, 202, "{b}");
    // JSON escapes hide nothing: `\u0040` is an `@`, `\/` a `/` (as PHP's json_encode writes).
    let escaped = r#"{"logs":[{"service":"esc","msg":"m","meta":{"e":"dan\u0040example.org","dsn":"mysql:\/\/app:pw9zz@db\/x"}}]}"#;
    let (s, b) = server
        .post_raw("/v1/ingest", &[ct], escaped.as_bytes().to_vec())
        .await;
    assert_eq!(s, 202, "{b}");
    // The other protocols, an email each.
    let otlp = json!({"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"otlp"}}]},
        "scopeLogs":[{"logRecords":[{"body":{"stringValue":format!("otlp {EMAIL}")},
        "attributes":[{"key":"enduser.email","value":{"stringValue":EMAIL}}]}]}]}]});
    let (s, b) = server
        .post_raw("/v1/logs", &[ct], otlp.to_string().into_bytes())
        .await;
    assert_eq!(s, 200, "{b}");
    let loki = json!({"streams":[{"stream":{"service":"loki"},"values":[["1705314645000000000", format!("loki {EMAIL}")]]}]});
    let (s, b) = server
        .post_raw("/loki/api/v1/push", &[ct], loki.to_string().into_bytes())
        .await;
    assert_eq!(s, 204, "{b}");
    let bulk =
        format!("{{\"index\":{{}}}}\n{{\"message\":\"bulk {EMAIL}\",\"service.name\":\"bulk\"}}\n");
    let (s, b) = server
        .post_raw(
            "/_bulk",
            &[("content-type", "application/x-ndjson")],
            bulk.into_bytes(),
        )
        .await;
    assert_eq!((s, &b["errors"]), (200, &json!(false)), "{b}");
    let syslog = format!("<14>1 2024-01-15T10:30:44Z h sys - - - syslog {EMAIL}");
    let addr = server.listener("syslog").expect("syslog");
    let mut tcp = std::net::TcpStream::connect(&addr).expect("tcp");
    tcp.write_all(format!("{} {syslog}", syslog.len()).as_bytes())
        .expect("write");
    drop(tcp);
    let pg = server.pg().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&pg, "WHERE service = 'sys'").await < 1 {
        assert!(Instant::now() < deadline, "the syslog line never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Never stored: not in the WAL (read before a flush empties it), not in a segment.
    let secrets = [
        EMAIL,
        CARD,
        JWT,
        AWS,
        "hunter22",
        "abcdef123456789",
        "pw9zz",
        "dan\\u0040example",
        "dan@example",
    ];
    for secret in secrets {
        assert_eq!(
            any_file_holds(server.dir.path(), secret.as_bytes()),
            None,
            "WAL: {secret}"
        );
    }
    server.flush().await;
    for secret in secrets {
        assert_eq!(
            any_file_holds(server.dir.path(), secret.as_bytes()),
            None,
            "{secret}"
        );
    }
    let esc = text_rows(&pg, "SELECT attrs FROM logs WHERE service = 'esc'").await;
    let esc: Value = serde_json::from_str(&esc[0]).expect("attrs JSON");
    assert_eq!(esc["e"], "[REDACTED:email]", "{esc}");
    assert_eq!(
        esc["dsn"], "mysql://app:[REDACTED:url_password]@db/x",
        "{esc}"
    );
    let got = text_rows(&pg, "SELECT msg FROM logs WHERE service = 'auth'").await;
    assert_eq!(
        got,
        ["login [REDACTED:email] card [REDACTED:card] token [REDACTED:jwt] key [REDACTED:aws_key] from 10.1.2.3 via https://svc:[REDACTED:url_password]@db.internal/x, Authorization: Bearer [REDACTED:bearer]"]
    );
    let attrs = text_rows(&pg, "SELECT attrs FROM logs WHERE service = 'auth'").await;
    let attrs: Value = serde_json::from_str(&attrs[0]).expect("attrs JSON");
    assert_eq!(attrs["user"]["email"], "[REDACTED:email]", "{attrs}");
    assert_eq!(attrs["user"]["id"], 7, "{attrs}");
    assert_eq!(attrs["card"], "[REDACTED:card]", "{attrs}");
    assert_eq!(attrs["note"], "nothing here", "{attrs}");
    for service in ["otlp", "loki", "bulk", "sys"] {
        let msgs = text_rows(
            &pg,
            &format!("SELECT msg FROM logs WHERE service = '{service}'"),
        )
        .await;
        assert_eq!(
            msgs,
            [format!("{service} [REDACTED:email]").replace("sys ", "syslog ")],
            "{service}"
        );
    }
    let otlp_attrs = text_rows(&pg, "SELECT attrs FROM logs WHERE service = 'otlp'").await;
    assert!(!otlp_attrs[0].contains(EMAIL), "{otlp_attrs:?}");
    // Counted, by detector.
    let metrics = crate::support::scrape(&server).await;
    let emails = crate::support::sample(
        &metrics,
        "timberline_redactions_total{",
        &["kind=\"email\""],
    );
    assert_eq!(emails, Some(2.0 + 2.0 + 3.0 + 1.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sets_its_own_detectors_and_rules_and_bad_rules_are_refused() {
    let server = TestServer::start();
    let acme = key_of(&server, "acme");
    let out = tenant_set(
        &server,
        "acme",
        &[
            "--redact",
            "default,ipv4",
            "--redact-custom",
            r"employee=EMP-\d{6}",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (args, says) in [
        (&["--redact-custom", "x=("][..], "rule x"),
        (&["--redact-custom", r"x=(\w{100}){100}"], "rule x"),
        (&["--redact-custom", "x=a*"], "empty string"),
        (&["--redact-custom", "no equals"], "name=regex"),
        (&["--redact", "email,phone"], "unknown detector"),
    ] {
        let out = tenant_set(&server, "acme", args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    }
    let line = "EMP-123456 from 10.1.2.3 mailed a@b.io";
    let body = serde_json::to_vec(&json!({"logs": [{"msg": line}]})).expect("json");
    let ct = ("content-type", "application/json");
    let (s, b) = server
        .post_raw("/v1/ingest", &[ct, ("authorization", &acme)], body.clone())
        .await;
    assert_eq!(s, 202, "{b}");
    let (s, b) = server.post_raw("/v1/ingest", &[ct], body).await;
    assert_eq!(s, 202, "{b}");
    let pg = user_of(&server, "acme").await;
    assert_eq!(
        text_rows(&pg, "SELECT msg FROM logs").await,
        ["[REDACTED:employee] from [REDACTED:ipv4] mailed [REDACTED:email]"]
    );
    let admin = server.pg().await;
    assert_eq!(
        text_rows(&admin, "SELECT msg FROM logs").await,
        ["EMP-123456 from 10.1.2.3 mailed [REDACTED:email]"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redact_none_stores_logs_as_sent_and_a_bad_server_setting_does_not_start() {
    let server = TestServer::start_with(&["--redact", "none"]);
    let (s, b) = server
        .ingest(&json!({"logs": [{"msg": format!("to {EMAIL}")}]}))
        .await;
    assert_eq!(s, 202, "{b}");
    let pg = server.pg().await;
    assert_eq!(
        text_rows(&pg, "SELECT msg FROM logs").await,
        [format!("to {EMAIL}")]
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .args(["serve", "--redact", "email,phone", "--data-dir"])
        .arg(dir.path())
        .args(["--http-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0"])
        .output()
        .expect("serve");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown detector"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
