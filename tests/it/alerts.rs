//! Alert rules against real receivers: a real Alertmanager (`apt-get install
//! prometheus-alertmanager`, started here on 127.0.0.1, whose own webhook reports what it was
//! sent) and an in-test webhook receiver checking the HMAC signature — fire once, no duplicate
//! within the cooldown, resolve, mute by an Alertmanager silence, delivery after a restart
//! mid-retry — and the API's refusals, quota and tenant separation.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::quotas::{key_of, tenant_set};
use crate::support::{available, bin, http, TestServer, API_KEY};

const SECRET: &str = "webhook-secret";
/// Longest wait for one notification (a wait, not a sync: they come within a second or two).
const WAIT: Duration = Duration::from_secs(45);

/// A notification a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    signature: Option<String>,
    delivery: Option<String>,
    body: Value,
    raw: Bytes,
}

/// Where the receiver reports requests, and whether it fails them.
type Sink = (mpsc::UnboundedSender<(Received, bool)>, Arc<AtomicBool>);

/// An HTTP receiver on 127.0.0.1: every POST is reported; while `failing`, answered 500.
struct Receiver {
    url: String,
    failing: Arc<AtomicBool>,
    got: mpsc::UnboundedReceiver<(Received, bool)>,
    /// Requests read while waiting for another path's.
    held: Vec<(Received, bool)>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let failing = Arc::new(AtomicBool::new(false));
        let (tx, got) = mpsc::unbounded_channel();
        let state = (tx, failing.clone());
        let app = axum::Router::new()
            .fallback(
                |State((tx, failing)): State<Sink>,
                 uri: axum::http::Uri,
                 headers: HeaderMap,
                 raw: Bytes| async move {
                    let header = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .map(String::from)
                    };
                    let failed = failing.load(Ordering::SeqCst);
                    let _ = tx.send((
                        Received {
                            path: uri.path().to_string(),
                            signature: header("x-timberline-signature"),
                            delivery: header("x-timberline-delivery"),
                            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                            raw,
                        },
                        failed,
                    ));
                    if failed {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            )
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            failing,
            got,
            held: Vec::new(),
        }
    }

    /// The next request to `path` (with whether it was failed), within [`WAIT`].
    async fn next(&mut self, path: &str) -> (Received, bool) {
        if let Some(i) = self.held.iter().position(|(r, _)| r.path == path) {
            return self.held.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.got.recv()).await {
                Ok(Some((r, failed))) if r.path == path => return (r, failed),
                Ok(Some(other)) => self.held.push(other),
                _ => panic!("no request to {path} within {WAIT:?}"),
            }
        }
    }

    /// The requests to `path` already received, without waiting.
    fn drain(&mut self, path: &str) -> Vec<Received> {
        while let Ok(r) = self.got.try_recv() {
            self.held.push(r);
        }
        let (mine, others) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(r, _)| r.path == path);
        self.held = others;
        mine.into_iter().map(|(r, _)| r).collect()
    }
}

/// A webhook body's signature as the receiver recomputes it.
fn expected_signature(raw: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, raw).as_ref())
    )
}

/// A real Alertmanager posting every alert group to `webhook` at once; killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    async fn start(webhook: &str) -> Option<Alertmanager> {
        if !available(
            "Alertmanager",
            Command::new("prometheus-alertmanager").arg("--version"),
            "apt-get install prometheus-alertmanager",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "route:\n  receiver: hook\n  group_by: ['alertname', 'service']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n- name: hook\n  webhook_configs:\n  - url: '{webhook}'\n    send_resolved: true\n"
        );
        let file = dir.path().join("alertmanager.yml");
        std::fs::write(&file, config).expect("config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let ready = reqwest::get(format!("{}/-/ready", am.url)).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Some(am);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Alertmanager did not become ready");
    }

    /// The active alert named `name`, once Alertmanager holds it.
    async fn alerts(&self, name: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let all: Value = reqwest::get(format!("{}/api/v2/alerts", self.url))
                .await
                .expect("GET alerts")
                .json()
                .await
                .expect("alerts json");
            let found = all
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["labels"]["alertname"] == name && a["status"]["state"] == "active");
            if let Some(a) = found {
                return a.clone();
            }
            assert!(
                Instant::now() < deadline,
                "Alertmanager never held {name}: {all}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Silences alerts whose `labels` are all equal; the silence's id.
    async fn silence(&self, labels: &[(&str, &str)]) -> String {
        let matchers: Vec<Value> = labels
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v, "isRegex": false, "isEqual": true}))
            .collect();
        let now = chrono::Utc::now();
        let resp: Value = reqwest::Client::new()
            .post(format!("{}/api/v2/silences", self.url))
            .json(&json!({
                "matchers": matchers,
                "startsAt": now.to_rfc3339(),
                "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
                "createdBy": "test",
                "comment": "maintenance",
            }))
            .send()
            .await
            .expect("POST silence")
            .json()
            .await
            .expect("silence id");
        resp["silenceID"].as_str().expect("silenceID").to_string()
    }
}

/// Posts error rows of `service` stamped now.
async fn errors(server: &TestServer, service: &str, n: usize) {
    let now = chrono::Utc::now().to_rfc3339();
    let logs: Vec<Value> = (0..n)
        .map(|i| json!({"ts": now, "service": service, "level": "ERROR", "msg": format!("payment failed {i}")}))
        .collect();
    let resp = http()
        .post(format!("{}/v1/ingest", server.http))
        .json(&json!({ "logs": logs }))
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status(), 202);
}

/// `timberline alert …` against `server`; its stdout, or its stderr when it failed.
fn alert_cli(server: &TestServer, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin())
        .arg("alert")
        .args(args)
        .env("TIMBERLINE_SERVER", &server.http)
        .env("TIMBERLINE_API_KEY", API_KEY)
        .output()
        .expect("timberline alert");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The `alert_events` rows of `rule` as (event, labels, detail), oldest first.
async fn events(pg: &tokio_postgres::Client, rule: &str) -> Vec<(String, String, String)> {
    pg.query(
        "SELECT event, labels, detail FROM alert_events WHERE name = $1 ORDER BY ts",
        &[&rule],
    )
    .await
    .expect("alert_events")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Waits for an `alert_events` row of `rule` with `event` whose labels contain `labels`.
async fn wait_event(pg: &tokio_postgres::Client, rule: &str, event: &str, labels: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let all = events(pg, rule).await;
        if let Some((_, _, detail)) = all
            .iter()
            .find(|(e, l, _)| e == event && l.contains(labels))
        {
            return detail.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {event} {labels} event of {rule}: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_fires_once_resolves_and_obeys_alertmanager_silences() {
    let mut receiver = Receiver::start().await;
    let Some(am) = Alertmanager::start(&format!("{}/am", receiver.url)).await else {
        return;
    };
    let hook = format!("{}/hook", receiver.url);
    let server = TestServer::start_with(&[
        "--alertmanager-url",
        &am.url,
        "--alert-webhook-url",
        &hook,
        "--alert-webhook-secret",
        SECRET,
    ]);
    // Errors of the last 6 seconds, per service: rows age out of it, so the alert resolves.
    let added = alert_cli(
        &server,
        &[
            "add",
            "payments-errors",
            "--sql",
            "SELECT service, count(*) FROM logs WHERE level = 'ERROR' AND ts > now() - interval '6 seconds' GROUP BY service",
            "--above",
            "5",
            "--every",
            "1s",
            "--cooldown",
            "1h",
            "--summary",
            "payments are failing",
        ],
    )
    .expect("alert add");
    assert!(added.contains("payments-errors  > 5  every 1s"), "{added}");
    let pg = server.pg().await;

    // Below the threshold: nothing fires.
    errors(&server, "checkout", 3).await;
    errors(&server, "checkout", 7).await;
    let (fired, _) = receiver.next("/hook").await;
    assert_eq!(fired.body["status"], "firing");
    assert_eq!(fired.body["rule"], "payments-errors");
    assert_eq!(fired.body["labels"], json!({"service": "checkout"}));
    assert_eq!(fired.body["value"], 10.0);
    assert_eq!(fired.body["summary"], "payments are failing");
    assert_eq!(
        fired.signature.as_deref(),
        Some(expected_signature(&fired.raw).as_str()),
        "the body is signed with the secret"
    );
    assert_eq!(
        fired.delivery.as_deref(),
        fired.body["delivery_id"].as_str()
    );
    // Alertmanager holds it as an active alert.
    let active = am.alerts("payments-errors").await;
    assert_eq!(active["labels"]["service"], "checkout");
    assert_eq!(active["labels"]["tenant"], "default");
    assert_eq!(active["annotations"]["summary"], "payments are failing");

    // It resolves once its rows age out; in between, every evaluation saw it firing and none
    // sent it again (the cooldown is an hour).
    let (resolved, _) = receiver.next("/hook").await;
    assert_eq!(resolved.body["status"], "resolved", "{:?}", resolved.body);
    assert_eq!(resolved.body["labels"], json!({"service": "checkout"}));
    let at = |r: &Received| {
        chrono::DateTime::parse_from_rfc3339(r.body["at"].as_str().expect("at")).expect("time")
    };
    assert!(
        (at(&resolved) - at(&fired)).num_milliseconds() >= 2000,
        "firing lasted several evaluations"
    );
    let evaluations: i64 = pg
        .query_one(
            "SELECT count(*) FROM alert_events WHERE name = 'payments-errors' AND event = 'firing'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(evaluations, 1);
    // Alertmanager notified its own receiver, and was told it resolved.
    let resolved_am = loop {
        let (r, _) = receiver.next("/am").await;
        if r.body["status"] == "resolved" {
            break r;
        }
    };
    let alert = &resolved_am.body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "payments-errors");
    assert_eq!(alert["labels"]["service"], "checkout");

    // A silence in Alertmanager mutes checkout here; api, fired in the same evaluation, is sent.
    let silence = am
        .silence(&[("alertname", "payments-errors"), ("service", "checkout")])
        .await;
    receiver.drain("/hook");
    let now = chrono::Utc::now().to_rfc3339();
    let mut both: Vec<Value> = Vec::new();
    for s in ["checkout", "api"] {
        for i in 0..8 {
            both.push(json!({"ts": now, "service": s, "level": "ERROR", "msg": format!("e{i}")}));
        }
    }
    let resp = http()
        .post(format!("{}/v1/ingest", server.http))
        .json(&json!({ "logs": both }))
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status(), 202);
    let (api, _) = receiver.next("/hook").await;
    assert_eq!(
        api.body["labels"],
        json!({"service": "api"}),
        "checkout's would come first"
    );
    // Its second firing (the first was notified) says which silence held it.
    let deadline = Instant::now() + WAIT;
    let detail = loop {
        let firings: Vec<String> = events(&pg, "payments-errors")
            .await
            .into_iter()
            .filter(|(e, l, _)| e == "firing" && l.contains("checkout"))
            .map(|(_, _, d)| d)
            .collect();
        if let [_, second] = firings.as_slice() {
            break second.clone();
        }
        assert!(Instant::now() < deadline, "no second firing: {firings:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(detail.contains(&silence), "{detail}");
    let state: (String, Option<String>) = {
        let row = pg
            .query_one(
                "SELECT state, silenced_by FROM alerts WHERE name = 'payments-errors' AND labels LIKE '%checkout%'",
                &[],
            )
            .await
            .expect("alerts row");
        (row.get(0), row.get(1))
    };
    assert_eq!(state, ("firing".to_string(), Some(silence)));
    assert!(
        receiver
            .drain("/hook")
            .iter()
            .all(|r| r.body["labels"]["service"] != "checkout"),
        "the silenced label set was not sent"
    );

    // `alert list` shows both label sets; `alert rm` tells the webhook api resolved.
    let listed = alert_cli(&server, &["list"]).expect("alert list");
    assert!(
        listed.contains("firing") && listed.contains("api"),
        "{listed}"
    );
    alert_cli(&server, &["rm", "payments-errors"]).expect("alert rm");
    let (gone, _) = receiver.next("/hook").await;
    assert_eq!(
        (
            gone.body["status"].as_str(),
            gone.body["labels"]["service"].as_str()
        ),
        (Some("resolved"), Some("api"))
    );
    assert_eq!(
        alert_cli(&server, &["list"]).expect("list").trim(),
        "no alert rules"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_is_delivered_after_a_restart_mid_retry() {
    let mut receiver = Receiver::start().await;
    receiver.failing.store(true, Ordering::SeqCst);
    let hook = format!("{}/hook", receiver.url);
    let server = TestServer::start_with(&["--alert-webhook-url", &hook]);
    let resp = http()
        .post(format!("{}/v1/alerts", server.http))
        .json(&json!({
            "name": "any-error",
            "sql": "SELECT count(*) FROM logs WHERE level = 'ERROR'",
            "above": 0,
            "every": "1s",
        }))
        .send()
        .await
        .expect("POST /v1/alerts");
    assert_eq!(resp.status(), 201);
    errors(&server, "checkout", 1).await;
    let (first, failed) = receiver.next("/hook").await;
    assert!(failed);
    let id = first.delivery.clone().expect("delivery id");
    {
        let pg = server.pg().await;
        wait_event(&pg, "any-error", "delivery_failed", "").await;
    }
    // Killed while the notification waits for its retry; the receiver recovers meanwhile.
    let mut server = server;
    server.kill();
    receiver.failing.store(false, Ordering::SeqCst);
    receiver.drain("/hook");
    let server = server.restart();
    let delivered = loop {
        let (r, failed) = receiver.next("/hook").await;
        if !failed {
            break r;
        }
    };
    assert_eq!(
        delivered.delivery.as_deref(),
        Some(id.as_str()),
        "the same notification"
    );
    assert_eq!(delivered.body["status"], "firing");
    assert!(delivered.signature.is_none(), "no secret, no signature");
    // The state survived too: still firing, and not notified a second time.
    let pg = server.pg().await;
    wait_event(&pg, "any-error", "delivered", "").await;
    let row = pg
        .query_one(
            "SELECT state, value, last_fired IS NOT NULL FROM alerts WHERE name = 'any-error'",
            &[],
        )
        .await
        .expect("alerts row");
    assert_eq!(row.get::<_, String>(0), "firing");
    assert_eq!(row.get::<_, Option<f64>>(1), Some(1.0));
    assert!(row.get::<_, bool>(2));
    let firings = events(&pg, "any-error")
        .await
        .into_iter()
        .filter(|(e, _, _)| e == "firing")
        .count();
    assert_eq!(firings, 1);
    // An attempt in flight when the server was killed is sent again (at least once): receivers
    // drop it by its delivery id. No other notification came.
    let again = receiver.drain("/hook");
    assert!(
        again
            .iter()
            .all(|r| r.delivery.as_deref() == Some(id.as_str())),
        "no second notification: {again:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alerts_api_refuses_bad_rules_keeps_quotas_and_tenants_apart() {
    let server = TestServer::start();
    let post = |body: Value, key: Option<String>| {
        let mut req = reqwest::Client::new()
            .post(format!("{}/v1/alerts", server.http))
            .json(&body);
        if let Some(k) = key {
            req = req.header("authorization", k);
        }
        async move {
            let resp = req.send().await.expect("POST /v1/alerts");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let mine = Some(format!("Bearer {API_KEY}"));
    let good =
        json!({"name": "r1", "sql": "SELECT count(*) FROM logs", "above": 1, "every": "10s"});
    assert_eq!(post(good.clone(), None).await.0, 401);
    let cases = [
        (
            json!({"name": "r", "sql": "SELEC count(*) FROM logs", "above": 1}),
            "syntax",
        ),
        (
            json!({"name": "r", "sql": "SELECT count(*) FROM nowhere", "above": 1}),
            "nowhere",
        ),
        (
            json!({"name": "r", "sql": "SELECT 'x' AS s", "above": 1}),
            "no number column",
        ),
        (
            json!({"name": "r", "sql": "SELECT count(*) FROM logs"}),
            "threshold",
        ),
        (
            json!({"name": "r r", "sql": "SELECT 1", "above": 1}),
            "rule name",
        ),
        (
            json!({"name": "r", "sql": "SELECT 1", "above": 1, "every": "1ms"}),
            "every",
        ),
        (
            json!({"name": "r", "sql": "SELECT 1", "above": 1, "evry": "1m"}),
            "unknown field",
        ),
        (
            json!({"name": "r", "sql": "SELECT 1; SELECT 2", "above": 1}),
            "exactly one",
        ),
        (
            json!({"name": "r", "sql": "SET search_path = x", "above": 1}),
            "only a query",
        ),
    ];
    for (body, why) in cases {
        let (status, answer) = post(body.clone(), mine.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let reason = answer["error"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{body}: {reason}");
    }
    assert_eq!(post(good.clone(), mine.clone()).await.0, 201);
    let (status, answer) = post(good.clone(), mine.clone()).await;
    assert_eq!(status, 409, "{answer}");

    // Another tenant neither sees nor touches this tenant's rules, and has its own quota.
    let theirs = key_of(&server, "acme");
    assert!(tenant_set(&server, "acme", &["--max-alert-rules", "1"])
        .status
        .success());
    assert!(!tenant_set(&server, "acme", &["--max-alert-rules", "lots"])
        .status
        .success());
    assert_eq!(post(good.clone(), Some(theirs.clone())).await.0, 201);
    let second = json!({"name": "r2", "sql": "SELECT count(*) FROM logs", "above": 1});
    let (status, answer) = post(second, Some(theirs.clone())).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap_or_default()
        .contains("max_alert_rules"));
    let client = reqwest::Client::new();
    let listed: Value = client
        .get(format!("{}/v1/alerts", server.http))
        .header("authorization", &theirs)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["rules"].as_array().map(Vec::len), Some(1));
    let del = client
        .delete(format!("{}/v1/alerts/nope", server.http))
        .header("authorization", &theirs)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(del.status(), 404);
    let mute = client
        .post(format!("{}/v1/alerts/r1/mute", server.http))
        .header("authorization", mine.clone().unwrap_or_default())
        .json(&json!({"for": "soon"}))
        .send()
        .await
        .expect("mute");
    assert_eq!(mute.status(), 400);
    let muted = alert_cli(&server, &["mute", "r1", "--for", "1h"]).expect("mute");
    assert!(muted.contains("muted until"), "{muted}");

    // Over pgwire each tenant sees its own rows; rules and mutes survive a restart.
    let server = server.restart();
    let pg = server.pg().await;
    let rows = pg
        .query("SELECT name, muted FROM alerts", &[])
        .await
        .expect("alerts");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].get::<_, String>(0), rows[0].get::<_, bool>(1)),
        ("r1".into(), true)
    );
    let acme = crate::quotas::user_of(&server, "acme").await;
    let theirs_rows = acme
        .query("SELECT name, muted FROM alerts", &[])
        .await
        .expect("alerts");
    assert_eq!(theirs_rows.len(), 1);
    assert!(
        !theirs_rows[0].get::<_, bool>(1),
        "acme's r1 is its own, not muted"
    );
    let err = alert_cli(&server, &["unmute", "nope"]).expect_err("unknown rule");
    assert!(err.contains("404") && err.contains("nope"), "{err}");
}
