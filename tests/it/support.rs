//! Starting and stopping real servers, and small clients for them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A `timberline serve` child process.
pub struct TestServer {
    pub child: Child,
    pub dir: Arc<tempfile::TempDir>,
    pub http: String,
    pub pg_port: u16,
    pub extra: Vec<String>,
    /// Environment variables the server was started with (kept across restarts).
    pub env: Vec<(String, String)>,
    /// The ready line (`timberline ready http=… pg=… [otlp-grpc=…] [syslog=…]`).
    pub ready: String,
}

/// The server binary: this build's, or `TIMBERLINE_TEST_BIN` (to replay the suite against
/// another build, e.g. to measure a change before and after).
pub fn bin() -> &'static str {
    static BIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        std::env::var("TIMBERLINE_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_timberline").to_string())
    });
    &BIN
}

impl TestServer {
    /// Starts a server on a fresh data directory.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra `serve` flags.
    pub fn start_with(extra: &[&str]) -> TestServer {
        Self::start_env(extra, &[])
    }

    /// Starts a server with extra `serve` flags and environment variables.
    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(dir, extra.iter().map(|s| s.to_string()).collect(), env)
    }

    /// Starts a server on `dir` (a data directory another server used), with `env`.
    pub fn spawn(
        dir: Arc<tempfile::TempDir>,
        extra: Vec<String>,
        env: Vec<(String, String)>,
    ) -> TestServer {
        Self::spawn_capped(None, dir, extra, env)
    }

    /// Starts a server under `prlimit --as=<address_space>`, so that a memory regression fails
    /// its allocations (and the test) instead of exhausting the machine.
    pub fn start_capped(extra: &[&str], address_space: u64) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let extra = extra.iter().map(|s| s.to_string()).collect();
        Self::spawn_capped(Some(address_space), dir, extra, Vec::new())
    }

    fn spawn_capped(
        address_space: Option<u64>,
        dir: Arc<tempfile::TempDir>,
        extra: Vec<String>,
        env: Vec<(String, String)>,
    ) -> TestServer {
        let mut command = match address_space {
            Some(cap) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--as={cap}")).arg("--").arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        let mut child = command
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--pg-addr",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(&extra)
            // The demo-credentials warning would repeat for every test server.
            .env("RUST_LOG", "warn,timberline::server=error")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn timberline");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ready line");
        // "timberline ready http=127.0.0.1:P pg=127.0.0.1:Q"
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or_else(|| panic!("no {k} in ready line {line:?}"))
                .to_string()
        };
        let http = format!("http://{}", field("http="));
        let pg_port = field("pg=")
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("pg port");
        TestServer {
            child,
            dir,
            http,
            pg_port,
            extra,
            env,
            ready: line.trim().to_string(),
        }
    }

    /// An address the ready line names (`otlp-grpc`, `syslog`), if the server opened it.
    pub fn listener(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.ready
            .split_whitespace()
            .find_map(|w| w.strip_prefix(prefix.as_str()))
            .map(str::to_string)
    }

    /// SIGKILL: no flush, no clean shutdown.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process and starts a new one on the same data directory.
    pub fn restart(mut self) -> TestServer {
        self.kill();
        let (dir, extra, env) = (self.dir.clone(), self.extra.clone(), self.env.clone());
        drop(self);
        TestServer::spawn(dir, extra, env)
    }

    pub async fn pg(&self) -> Client {
        pg_connect(self.pg_port, "timberline")
            .await
            .expect("pg connect")
    }

    /// Runs a maintenance pass with the admin key (the bootstrap API key); its report.
    pub async fn maintain(&self) -> Value {
        let (status, report) = self
            .post_raw(
                "/v1/maintenance",
                &[("authorization", "Bearer timberline")],
                Vec::new(),
            )
            .await;
        assert_eq!(status, 200, "{report}");
        report
    }

    /// POSTs a JSON batch; returns (status, body).
    pub async fn ingest(&self, body: &Value) -> (u16, Value) {
        let resp = http()
            .post(format!("{}/v1/ingest", self.http))
            .json(body)
            .send()
            .await
            .expect("POST /v1/ingest");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Raw POST with headers; returns (status, JSON body or Null).
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req = http().post(format!("{}{path}", self.http)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("POST");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POSTs `events` as one NDJSON body and asserts every one was accepted.
    pub async fn ingest_ndjson(&self, events: impl IntoIterator<Item = Value>) {
        let body: Vec<u8> = events
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
        let (s, b) = self
            .post_raw(
                "/v1/ingest",
                &[("content-type", "application/x-ndjson")],
                body,
            )
            .await;
        assert_eq!((s, &b["failed"]), (202, &serde_json::json!(0)), "{b}");
    }

    /// Forces a flush of the hot buffer into segments.
    pub async fn flush(&self) -> Value {
        let (status, body) = self.post_raw("/v1/flush", &[], Vec::new()).await;
        assert_eq!(status, 200, "flush: {body}");
        body
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs psql with `conninfo` and `-c sql`, capturing everything.
pub fn psql(conninfo: &str, password: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
            "-c",
            sql,
        ])
        .env("PGPASSWORD", password)
        .output()
        .expect("psql runs (apt-get install postgresql-client)")
}

/// The demo API key and password every test server accepts.
pub const API_KEY: &str = "timberline";

/// An HTTP client that sends the demo API key (a request's own Authorization wins).
pub fn http() -> reqwest::Client {
    timberline::cli::load::http_client(API_KEY).expect("HTTP client")
}

pub async fn pg_connect(port: u16, user: &str) -> Result<Client, tokio_postgres::Error> {
    pg_login(port, user, "timberline").await
}

/// A login as `user` with `password`.
pub async fn pg_login(
    port: u16,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user={user} password={password}"),
        NoTls,
    )
    .await?;
    tokio::spawn(conn);
    Ok(client)
}

/// One row of `logs` as the tests compare them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub msg: String,
    pub ts: SystemTime,
    pub service: String,
    pub host: String,
    pub level: String,
    pub trace_id: Option<String>,
    pub attrs: String,
    pub parse_failed: bool,
    pub truncated: bool,
}

/// Every row of `logs` matching `filter`, sorted.
pub async fn rows(client: &Client, filter: &str) -> Vec<Row> {
    let sql = format!(
        "SELECT msg, ts, service, host, level, trace_id, attrs, parse_failed, truncated FROM logs {filter}"
    );
    let mut out: Vec<Row> = client
        .query(&sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| Row {
            msg: r.get(0),
            ts: r.get(1),
            service: r.get(2),
            host: r.get(3),
            level: r.get(4),
            trace_id: r.get(5),
            attrs: r.get(6),
            parse_failed: r.get(7),
            truncated: r.get(8),
        })
        .collect();
    out.sort();
    out
}

pub async fn count(client: &Client, filter: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM logs {filter}"), &[])
        .await
        .expect("count")
        .get(0)
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A JSON batch of `n` events with messages `"{prefix}-{i}"`.
pub fn batch(prefix: &str, n: usize) -> Value {
    let logs: Vec<Value> = (0..n)
        .map(|i| {
            let level = ["INFO", "ERROR", "warn", "debug"][i % 4];
            serde_json::json!({
                "ts": format!("2024-01-15T10:{:02}:{:02}.{:03}Z", (i / 60) % 60, i % 60, i % 1000),
                "level": level,
                "msg": format!("{prefix}-{i}"),
                "meta": {"trace_id": format!("trace-{prefix}-{}", i / 3), "user_id": i}
            })
        })
        .collect();
    serde_json::json!({"source": {"service": "payments", "host": "pay-1", "region": "eu-west-1"}, "logs": logs})
}

/// The sidecar index files of `server`'s segments, oldest first (in the order they were
/// flushed: file names are random).
pub fn sidecars(server: &TestServer) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![server.dir.path().join("segments")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            // The audit log's own segments (tenant `_audit`) are not the test's.
            if p.is_dir() && !p.ends_with("tenant=_audit") {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "idx") && !p.is_dir() {
                out.push(p);
            }
        }
    }
    let written = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    out.sort_by_cached_key(|p| (written(p), p.clone()));
    out
}

/// The rows of `sql` in the text format, one string per row (columns joined by `|`, NULL as
/// `NULL`), in the order the server sent them.
pub async fn text_rows(client: &Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

/// The first column of `sql`'s rows (a text column), each parsed as a `T`, in the order sent.
pub async fn parsed_first<T, C>(client: &Client, sql: &str) -> C
where
    T: std::str::FromStr,
    T::Err: std::fmt::Debug,
    C: FromIterator<T>,
{
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| {
            let text = r.get::<_, String>(0);
            text.parse()
                .unwrap_or_else(|e| panic!("{sql}: {text:?}: {e:?}"))
        })
        .collect()
}

/// The text of `EXPLAIN ANALYZE sql`.
pub async fn explain(client: &Client, sql: &str) -> String {
    client
        .simple_query(&format!("EXPLAIN ANALYZE {sql}"))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The number after `name=` in a plan, if the plan shows that metric.
pub fn plan_metric(plan: &str, name: &str) -> Option<u64> {
    let at = plan.find(&format!("{name}="))? + name.len() + 1;
    plan[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Runs each `(sql, sqlstate)`: every statement must fail with its SQLSTATE.
pub async fn refused_with(client: &Client, cases: &[(&str, &str)]) {
    for (sql, want) in cases {
        let e = client
            .query(*sql, &[])
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} answered"));
        let code = e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| format!("no SQLSTATE: {e}"));
        assert_eq!(code, *want, "{sql}: {e:?}");
    }
}

/// The server's `/metrics`, scraped with the bootstrap key (the admin key when none is set apart).
pub async fn scrape(server: &TestServer) -> String {
    http()
        .get(format!("{}/metrics", server.http))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the first sample of `text` whose line starts with `name` and holds each of
/// `labels` (`tenant="acme"`).
pub fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Whether a client or server a test drives is here (`found`). Where CI requires them all
/// (`TIMBERLINE_REQUIRE_CLIENTS`), a missing one fails the test; elsewhere the test is skipped
/// with a message saying what to install. The one place that decision is made.
pub fn present(what: &str, found: bool, install: &str) -> bool {
    if !found {
        assert!(
            std::env::var_os("TIMBERLINE_REQUIRE_CLIENTS").is_none(),
            "{what} is required here but missing: {install}"
        );
        eprintln!("SKIPPED: {what} is not installed ({install})");
    }
    found
}

/// [`present`], probing with `probe` (`program --version` and the like).
/// pgjdbc's jar, as Debian installs it, when java and the jar are here (skipped, or failed
/// under `TIMBERLINE_REQUIRE_CLIENTS`, when not).
pub fn pgjdbc() -> Option<&'static str> {
    const JAR: &str = "/usr/share/java/postgresql.jar";
    available(
        "java with pgjdbc",
        Command::new("sh").args(["-c", &format!("command -v java && test -f {JAR}")]),
        "apt-get install default-jre-headless libpostgresql-jdbc-java",
    )
    .then_some(JAR)
}

pub fn available(what: &str, probe: &mut Command, install: &str) -> bool {
    let found = probe.output().map(|o| o.status.success()).unwrap_or(false);
    present(what, found, install)
}
