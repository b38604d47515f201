//! The differential test: the same rows in Timberline and in a real PostgreSQL 15, the same
//! statements sent to both (`tests/differential/corpus.sql`), and their answers compared — column
//! names, type OIDs, text values, or the SQLSTATE class of the error. A statement marked
//! `-- differs: <reason>` is a documented exception (README, "PostgreSQL compatibility"): it
//! must still differ, so a fix cannot leave a stale mark behind. The pass rate is printed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::support::{repo_path, TestServer};

const INITDB: &str = "/usr/lib/postgresql/15/bin/initdb";
const POSTGRES: &str = "/usr/lib/postgresql/15/bin/postgres";

/// A PostgreSQL 15 server of its own, on 127.0.0.1, in a temporary directory.
pub struct Reference {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Reference {
    /// `None` when PostgreSQL 15 is not installed (CI installs it and sets
    /// `TIMBERLINE_REQUIRE_CLIENTS`, which makes its absence a failure).
    pub fn start() -> Option<Reference> {
        if !crate::support::present(
            "PostgreSQL 15",
            Path::new(POSTGRES).exists(),
            "apt-get install postgresql-15",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("pg");
        std::fs::create_dir(&data).expect("pg dir");
        // PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
        let owner = run_as();
        if let Some((uid, gid)) = owner {
            use std::os::unix::fs::{chown, PermissionsExt};
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            chown(&data, Some(uid), Some(gid)).expect("chown");
        }
        let as_owner = |program: &str| {
            let mut cmd = Command::new(program);
            if let Some((uid, gid)) = owner {
                use std::os::unix::process::CommandExt;
                cmd.uid(uid).gid(gid);
            }
            cmd
        };
        let init = as_owner(INITDB)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let child = as_owner(POSTGRES)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&data)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "TimeZone=UTC",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn postgres");
        Some(Reference {
            child,
            port,
            _dir: dir,
        })
    }

    /// A connection, once the server accepts one (it is polled: startup has no other signal).
    pub async fn connect(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let conn = tokio_postgres::connect(
                &format!(
                    "host=127.0.0.1 port={} user=postgres dbname=postgres",
                    self.port
                ),
                NoTls,
            )
            .await;
            match conn {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    return client;
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("PostgreSQL did not start: {e}"),
            }
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown, the backends exit with the postmaster.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The `postgres` user's ids when running as root.
fn run_as() -> Option<(u32, u32)> {
    let id = |flag: &str, user: Option<&str>| -> Option<u32> {
        let out = Command::new("id").arg(flag).args(user).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    if id("-u", None)? != 0 {
        return None;
    }
    Some((id("-u", Some("postgres"))?, id("-g", Some("postgres"))?))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The rows both servers hold: a morning of a small shop's services, with a burst of payment
/// errors, nulls, nested and numeric attributes and microsecond timestamps.
fn events() -> Vec<serde_json::Value> {
    let services = ["api", "payments", "checkout", "auth"];
    let levels = ["INFO", "ERROR", "WARN", "DEBUG", "INFO"];
    let words = [
        "request served",
        "card declined by issuer",
        "connection timeout to db-1",
        "user login ok",
        "retrying payment after timeout",
        "cache miss for key user:42",
        "Order #1234 shipped",
        "slow query took 1532 ms",
    ];
    let start = 1_705_312_680_000_000_i64; // 2024-01-15 09:58:00 UTC
    (0..160_i64)
        .map(|i| {
            let ts = start + i * 37_123_457 + (i % 7) * 1_000;
            let secs = ts.div_euclid(1_000_000);
            let micros = ts.rem_euclid(1_000_000);
            let at = chrono::DateTime::from_timestamp(secs, (micros * 1000) as u32)
                .expect("ts")
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            let service = services[(i % 4) as usize];
            let status = [200, 500, 404, 200, 201][(i % 5) as usize];
            let region = ["eu-west-1", "us-east-1"][(i % 2) as usize];
            let method = ["GET", "POST"][(i % 2) as usize];
            let mut meta = json!({
                "latency_ms": (i * 37) % 900,
                "status": status,
                "user": format!("u{}", i % 9),
                "region": region,
                "http": {"method": method, "path": format!("/v1/items/{}", i % 3)},
            });
            if i % 3 == 0 {
                meta["trace_id"] = json!(format!("{:08x}", 0x4bf9_2f35_u32 + (i / 3) as u32));
            }
            if i % 11 == 0 {
                meta["retry"] = json!(true);
            }
            json!({
                "ts": at,
                "service": service,
                "host": format!("{service}-{}", i % 3),
                "level": levels[(i % 5) as usize],
                "msg": words[(i % 8) as usize],
                "meta": meta,
            })
        })
        .collect()
}

/// Loads the rows into Timberline (half flushed into segments, half hot), reads them back as
/// Timberline stores them, and inserts exactly those into PostgreSQL's `logs`.
pub async fn load(server: &TestServer, tl: &Client, pg: &Client) {
    let all = events();
    let (first, second) = all.split_at(all.len() / 2);
    server.ingest_ndjson(first.iter().cloned()).await;
    server.flush().await;
    server.ingest_ndjson(second.iter().cloned()).await;
    copy_logs(tl, pg, all.len()).await;
}

/// Creates PostgreSQL's `logs` and inserts exactly the `rows` rows Timberline holds.
pub async fn copy_logs(tl: &Client, pg: &Client, expected: usize) {
    pg.batch_execute(
        "CREATE TABLE logs (ts timestamptz NOT NULL, ingest_ts timestamptz NOT NULL, \
         tenant text NOT NULL, service text NOT NULL, host text NOT NULL, level text NOT NULL, \
         msg text NOT NULL, trace_id text, attrs jsonb NOT NULL, parse_failed boolean NOT NULL, \
         truncated boolean NOT NULL)",
    )
    .await
    .expect("create logs");
    let rows = tl
        .query(
            "SELECT ts, ingest_ts, tenant, service, host, level, msg, trace_id, attrs, \
             parse_failed, truncated FROM logs",
            &[],
        )
        .await
        .expect("read back");
    assert_eq!(rows.len(), expected);
    let insert = pg
        .prepare(
            "INSERT INTO logs VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $11)",
        )
        .await
        .expect("prepare insert");
    for r in &rows {
        let ts: SystemTime = r.get(0);
        let ingest_ts: SystemTime = r.get(1);
        let text = |i: usize| -> String { r.get(i) };
        let trace_id: Option<String> = r.get(7);
        let (parse_failed, truncated): (bool, bool) = (r.get(9), r.get(10));
        pg.execute(
            &insert,
            &[
                &ts,
                &ingest_ts,
                &text(2),
                &text(3),
                &text(4),
                &text(5),
                &text(6),
                &trace_id,
                &text(8),
                &parse_failed,
                &truncated,
            ],
        )
        .await
        .expect("insert");
    }
}

/// One statement of the corpus.
pub struct Case {
    pub line: usize,
    pub sql: String,
    /// The documented reason it answers differently, if it does.
    pub differs: Option<String>,
}

/// Statements end with `;` at the end of a line; `--` lines are comments, and a
/// `-- differs: reason` line marks the next statement as a documented exception.
pub fn corpus(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).expect("corpus");
    let mut out = Vec::new();
    let mut sql = String::new();
    let mut start = 0;
    let mut differs = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if sql.is_empty() {
            if let Some(reason) = trimmed.strip_prefix("-- differs:") {
                differs = Some(reason.trim().to_string());
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with("--") {
                continue;
            }
            start = i + 1;
        }
        sql.push_str(line);
        sql.push('\n');
        if trimmed.ends_with(';') {
            out.push(Case {
                line: start,
                sql: std::mem::take(&mut sql)
                    .trim()
                    .trim_end_matches(';')
                    .to_string(),
                differs: differs.take(),
            });
        }
    }
    out
}

/// What a server answered: columns (name, type OID) and rows as text, or an error's SQLSTATE.
#[derive(Debug, PartialEq)]
enum Answer {
    Rows {
        columns: Vec<(String, u32)>,
        rows: Vec<Vec<Option<String>>>,
    },
    Error(String, String),
}

async fn answer(client: &Client, sql: &str) -> Answer {
    let error = |e: tokio_postgres::Error| {
        let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
        let message = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string());
        Answer::Error(code, message)
    };
    // Type OIDs from the extended protocol's description, text values from the simple one.
    let types: Vec<u32> = match client.prepare(sql).await {
        Ok(stmt) => stmt.columns().iter().map(|c| c.type_().oid()).collect(),
        Err(e) => return error(e),
    };
    let messages = match client.simple_query(sql).await {
        Ok(m) => m,
        Err(e) => return error(e),
    };
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                names = cols.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(row) => rows.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => {}
        }
    }
    let ordered = sql.to_ascii_lowercase().contains("order by");
    if !ordered {
        rows.sort();
    }
    Answer::Rows {
        columns: names.into_iter().zip(types).collect(),
        rows,
    }
}

/// How two answers differ, or `None` when they agree (errors agree on the SQLSTATE class).
fn difference(ours: &Answer, theirs: &Answer) -> Option<String> {
    match (ours, theirs) {
        (Answer::Error(a, _), Answer::Error(b, _)) if a.get(..2) == b.get(..2) => None,
        (
            Answer::Rows {
                columns: c1,
                rows: r1,
            },
            Answer::Rows {
                columns: c2,
                rows: r2,
            },
        ) => {
            if c1 != c2 {
                return Some(format!("columns {c1:?}, PostgreSQL {c2:?}"));
            }
            if r1.len() != r2.len() {
                return Some(format!("{} rows, PostgreSQL {}", r1.len(), r2.len()));
            }
            let first = r1.iter().zip(r2).find(|(a, b)| a != b)?;
            Some(format!("row {:?}, PostgreSQL {:?}", first.0, first.1))
        }
        (a, b) => Some(format!("{}, PostgreSQL {}", brief(a), brief(b))),
    }
}

fn brief(a: &Answer) -> String {
    match a {
        Answer::Rows { rows, .. } => format!("{} rows", rows.len()),
        Answer::Error(code, message) => format!("error {code} {message}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_postgresql_on_the_corpus() {
    let Some(reference) = Reference::start() else {
        return;
    };
    let server = TestServer::start();
    let tl = server.pg().await;
    let pg = reference.connect().await;
    load(&server, &tl, &pg).await;

    let path: PathBuf = repo_path("tests/differential/corpus.sql");
    let cases = corpus(&path);
    assert!(
        cases.len() >= 100,
        "the corpus has only {} statements",
        cases.len()
    );
    let (mut same, mut failures) = (0, Vec::new());
    for case in &cases {
        let ours = answer(&tl, &case.sql).await;
        let theirs = answer(&pg, &case.sql).await;
        match (difference(&ours, &theirs), &case.differs) {
            (None, None) => same += 1,
            (Some(_), Some(_)) => {}
            (Some(diff), None) => failures.push(format!(
                "corpus.sql:{}: {}\n    {diff}",
                case.line, case.sql
            )),
            (None, Some(reason)) => failures.push(format!(
                "corpus.sql:{}: now answers as PostgreSQL does; remove its mark ({reason}): {}",
                case.line, case.sql
            )),
        }
    }
    let documented = cases.iter().filter(|c| c.differs.is_some()).count();
    println!(
        "differential: {same} of {} statements answer as PostgreSQL 15 does ({:.1}%); \
         {documented} documented exceptions",
        cases.len(),
        100.0 * same as f64 / cases.len() as f64
    );
    assert!(
        failures.is_empty(),
        "{} statements differ from PostgreSQL without a documented reason:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
