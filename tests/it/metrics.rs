//! What an operator sees: `GET /metrics`, scraped by a real Prometheus (`apt-get install
//! prometheus`, started here on 127.0.0.1) from both places a server serves it — the HTTP port
//! with the admin key as a bearer token, and `--metrics-addr` without one — with the figures read
//! back through Prometheus's API; and `--log-format json` lines carrying each request's id.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::available;
use crate::support::{TestServer, API_KEY};

const ADMIN_KEY: &str = "metrics-admin-key";

/// A Prometheus scraping `targets` every second; killed on drop.
struct Prometheus {
    child: Child,
    api: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(http: &str, metrics: &str) -> Option<Prometheus> {
        if !available(
            "Prometheus",
            Command::new("prometheus").arg("--version"),
            "apt-get install prometheus",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
             - job_name: with_key\n  authorization:\n    credentials: {ADMIN_KEY}\n  static_configs:\n  - targets: ['{http}']\n\
             - job_name: own_address\n  static_configs:\n  - targets: ['{metrics}']\n"
        );
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Some(Prometheus {
            child,
            api: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        })
    }

    /// The value of the instant query `q` once it is `want` (Prometheus scrapes every second),
    /// or what it was at the deadline.
    async fn wait_for(&self, q: &str, want: &str) -> String {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            let answer = client
                .get(format!("{}/api/v1/query", self.api))
                .query(&[("query", q)])
                .send()
                .await;
            if let Ok(r) = answer {
                if let Ok(body) = r.json::<Value>().await {
                    last = body["data"]["result"][0]["value"][1]
                        .as_str()
                        .unwrap_or("no sample")
                        .to_string();
                    if last == want {
                        return last;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        last
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_ingest_wal_flush_query_and_tier_figures() {
    let server =
        // Without the audit log, whose own segments would make the segment counts race.
        TestServer::start_with(&[
            "--admin-key",
            ADMIN_KEY,
            "--metrics-addr",
            "127.0.0.1:0",
            "--audit",
            "false",
        ]);
    let metrics_addr = server
        .listener("metrics")
        .expect("metrics in the ready line");
    let http_addr = server.http.trim_start_matches("http://").to_string();
    // The HTTP port answers the admin key only: the figures are every tenant's.
    for key in [None, Some(API_KEY)] {
        let mut req = reqwest::Client::new().get(format!("{}/metrics", server.http));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.expect("GET /metrics");
        assert_eq!(r.status(), 401, "key {key:?}");
        let body: Value = r.json().await.expect("a JSON reason");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("admin key")),
            "{body}"
        );
    }
    let logs: Vec<Value> = (0..50)
        .map(
            |i| json!({"level": if i % 5 == 0 { "ERROR" } else { "INFO" }, "msg": format!("m{i}")}),
        )
        .collect();
    let (s, _) = server.ingest(&json!({"logs": logs})).await;
    assert_eq!(s, 202);
    server.flush().await;
    let pg = server.pg().await;
    let n: i64 = pg
        .query_one("SELECT count(*) FROM logs WHERE level = 'ERROR'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 10);
    let Some(prometheus) = Prometheus::start(&http_addr, &metrics_addr) else {
        return;
    };
    for (q, want) in [
        (r#"up{job="with_key"}"#, "1"),
        (r#"up{job="own_address"}"#, "1"),
        (
            r#"timberline_ingest_events_total{job="with_key",tenant="default",protocol="http"}"#,
            "50",
        ),
        (
            r#"timberline_flushes_total{job="own_address",outcome="ok"}"#,
            "1",
        ),
        (r#"timberline_segments{job="with_key",tier="hot"}"#, "1"),
        (r#"timberline_hot_buffer_bytes{job="with_key"}"#, "0"),
        (
            r#"timberline_http_responses_total{job="with_key",route="/v1/ingest",status="202"}"#,
            "1",
        ),
        (
            r#"timberline_queries_total{job="with_key",kind="rollup",outcome="ok"}"#,
            "1",
        ),
        // The count tables' built-in view answered it.
        (r#"timberline_rollup_rewrites_total{job="with_key"}"#, "1"),
        (
            r#"timberline_wal_fsync_seconds_count{job="with_key"} > bool 0"#,
            "1",
        ),
        // The count's one scan considered the flushed segment.
        (
            r#"sum(timberline_scan_segments_total{job="with_key"}) > bool 0"#,
            "1",
        ),
        (
            r#"timberline_query_seconds_count{job="with_key",kind="rollup",outcome="ok"} > bool 0"#,
            "1",
        ),
    ] {
        assert_eq!(prometheus.wait_for(q, want).await, want, "{q}");
    }
    // The shipped dashboard of the server itself: every panel's PromQL is valid for this
    // Prometheus and names only metrics the server has.
    let registry = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::repo_path(
            "docker/grafana/dashboards/timberline-server.json",
        ))
        .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    for panel in panels {
        let expr = panel["targets"][0]["expr"].as_str().expect("expr");
        let answer: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", prometheus.api))
            .query(&[("query", expr)])
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("json");
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("timberline_"))
        {
            let family = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                registry.contains(&format!("# TYPE {family} ")),
                "{} names {name}, which the server does not have",
                panel["title"]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_each_requests_id_and_route() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(crate::support::bin())
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--pg-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--log-format", "json"])
        .env("RUST_LOG", "timberline::http=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready line");
    let http = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .expect("http address")
        .to_string();
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{http}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let refused = client
        .post(format!("http://{http}/v1/ingest"))
        .bearer_auth("not-a-key")
        .body("{}")
        .send()
        .await
        .expect("ingest");
    assert_eq!(refused.status(), 401);
    let _ = child.kill();
    let out = child.wait_with_output().expect("stderr");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let answered = |route: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == "answered" && l["span"]["route"] == route)
            .unwrap_or_else(|| panic!("no answer logged for {route}: {lines:?}"))
            .clone()
    };
    let (h, i) = (answered("/health"), answered("/v1/ingest"));
    assert_eq!(h["fields"]["status"], 200, "{h}");
    assert_eq!(i["fields"]["status"], 401, "{i}");
    let id = |l: &Value| l["span"]["request_id"].as_u64().expect("a request id");
    assert_ne!(id(&h), id(&i));
}
