//! Runs `sql/*.slt` (the executable spec of the SQL surface) and `sql/passes/*.slt` (PostgreSQL's
//! answers to what each front-end pass exists for) over pgwire against a server with
//! fixed data: `sql/fixtures/logs.ndjson`, the first half flushed to segments, the rest hot.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::support::{repo_path, TestServer};

struct PgDb {
    client: Client,
}

#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SltError {}

/// A value of a text-like type (`text`, `name`, `varchar`, `json`) as its text.
struct Text(String);

impl<'a> tokio_postgres::types::FromSql<'a> for Text {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Text, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Text(String::from_utf8(raw.to_vec())?))
    }

    fn accepts(t: &Type) -> bool {
        [
            Type::TEXT,
            Type::NAME,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::JSON,
            Type::UNKNOWN,
        ]
        .contains(t)
    }
}

fn cell(row: &tokio_postgres::Row, i: usize) -> String {
    let t = row.columns()[i].type_().clone();
    let s = match t {
        Type::BOOL => row.get::<_, Option<bool>>(i).map(|v| v.to_string()),
        Type::INT2 => row.get::<_, Option<i16>>(i).map(|v| v.to_string()),
        Type::INT4 => row.get::<_, Option<i32>>(i).map(|v| v.to_string()),
        Type::INT8 => row.get::<_, Option<i64>>(i).map(|v| v.to_string()),
        Type::OID => row.get::<_, Option<u32>>(i).map(|v| v.to_string()),
        // PostgreSQL's one-byte `"char"` (pg_class.relkind and kin).
        Type::CHAR => row
            .get::<_, Option<i8>>(i)
            .map(|v| char::from(v as u8).to_string()),
        Type::FLOAT4 => row.get::<_, Option<f32>>(i).map(|v| v.to_string()),
        Type::FLOAT8 => row.get::<_, Option<f64>>(i).map(|v| v.to_string()),
        Type::TIMESTAMPTZ | Type::TIMESTAMP => row.get::<_, Option<SystemTime>>(i).map(|v| {
            chrono::DateTime::<chrono::Utc>::from(v)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        }),
        _ => row.get::<_, Option<Text>>(i).map(|t| t.0),
    };
    match s {
        None => "NULL".into(),
        Some(v) if v.is_empty() => "(empty)".into(),
        Some(v) => v,
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for PgDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let stmt = self.client.prepare(sql).await.map_err(err)?;
        let rows = self.client.query(&stmt, &[]).await.map_err(err)?;
        if stmt.columns().is_empty() {
            return Ok(DBOutput::StatementComplete(rows.len() as u64));
        }
        let types = stmt
            .columns()
            .iter()
            .map(|c| match *c.type_() {
                Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => DefaultColumnType::Integer,
                Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => DefaultColumnType::FloatingPoint,
                _ => DefaultColumnType::Text,
            })
            .collect();
        let rows = rows
            .iter()
            .map(|r| (0..r.len()).map(|i| cell(r, i)).collect())
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "timberline"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// Errors read `SQLSTATE: message`, so `.slt` files can pin the code.
fn err(e: tokio_postgres::Error) -> SltError {
    match e.as_db_error() {
        Some(db) => SltError(format!("{}: {}", db.code().code(), db.message())),
        None => SltError(e.to_string()),
    }
}

/// Loads `sql/fixtures/logs.ndjson`, the first half flushed; the number of rows.
async fn load_fixture(server: &TestServer) -> usize {
    let fixture = std::fs::read(repo_path("sql/fixtures/logs.ndjson")).unwrap();
    let lines: Vec<&[u8]> = fixture
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let half = lines.len() / 2;
    for (i, part) in [&lines[..half], &lines[half..]].into_iter().enumerate() {
        let (s, b) = server
            .post_raw(
                "/v1/ingest",
                &[("content-type", "application/x-ndjson")],
                part.join(&b'\n'),
            )
            .await;
        assert_eq!(s, 202, "{b}");
        assert_eq!(b["failed"], 0);
        if i == 0 {
            server.flush().await;
        }
    }
    lines.len()
}

fn slt_files(dirs: &[&str]) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = dirs
        .iter()
        .flat_map(|dir| std::fs::read_dir(repo_path(dir)).unwrap())
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_spec_files() {
    let server = TestServer::start();
    load_fixture(&server).await;
    // The SQL surface's spec, then each front-end pass's PostgreSQL answers.
    for file in slt_files(&["sql", "sql/passes"]) {
        let port = server.pg_port;
        let mut runner = sqllogictest::Runner::new(move || async move {
            let client = crate::support::pg_connect(port, "timberline")
                .await
                .map_err(err)?;
            Ok(PgDb { client })
        });
        runner.with_column_validator(|a, b| a == b);
        runner
            .run_file_async(&file)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

/// The front-end passes' files hold PostgreSQL's answers: the same files, run against a real
/// PostgreSQL 15 holding the rows Timberline holds, pass there too.
#[tokio::test(flavor = "multi_thread")]
async fn pass_files_hold_postgresqls_answers() {
    let Some(reference) = crate::differential::Reference::start() else {
        return;
    };
    let server = TestServer::start();
    let rows = load_fixture(&server).await;
    let tl = server.pg().await;
    let pg = reference.connect().await;
    crate::differential::copy_logs(&tl, &pg, rows).await;
    for file in slt_files(&["sql/passes"]) {
        let port = reference.port;
        let mut runner = sqllogictest::Runner::new(move || async move {
            let (client, conn) = tokio_postgres::connect(
                &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
                tokio_postgres::NoTls,
            )
            .await
            .map_err(err)?;
            tokio::spawn(conn);
            Ok(PgDb { client })
        });
        runner.with_column_validator(|a, b| a == b);
        runner
            .run_file_async(&file)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL 15 on {}: {e}", file.display()));
    }
}
