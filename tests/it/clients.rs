//! The real drivers users keep, against the real server: psycopg2, psycopg3, asyncpg,
//! SQLAlchemy and a Grafana replay (`tests/clients/python_clients.py`), and pgjdbc
//! (`tests/clients/Jdbc.java`). Each asserts values and type OIDs, not just "no error".
//!
//! `.ci/run` installs the clients and sets `TIMBERLINE_REQUIRE_CLIENTS=1`, so there a missing
//! client fails the test; elsewhere it is skipped with a message saying what to install.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::{available, psql, TestServer};

/// 120 events from 2024-05-01T10:00:00Z, 30 s apart; level cycles ERROR/WARN/INFO, service
/// cycles api/db; half flushed into a segment, half hot.
async fn load(server: &TestServer) {
    let t0 = 1_714_557_600i64;
    let event = |i: i64| {
        let ts = chrono::DateTime::from_timestamp(t0 + 30 * i, 0).expect("ts");
        let level = ["ERROR", "WARN", "INFO"][(i % 3) as usize];
        let service = ["api", "db"][(i % 2) as usize];
        json!({
            "timestamp": ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "level": level,
            "service": service,
            "host": "h1",
            "msg": format!("request {i} done"),
        })
    };
    server.ingest_ndjson((0..60).map(event)).await;
    server.flush().await;
    server.ingest_ndjson((60..120).map(event)).await;
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("client runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn python_drivers_sqlalchemy_and_grafana_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    if !available(
        "psycopg2, psycopg, asyncpg, SQLAlchemy",
        Command::new("python3").args(["-c", "import psycopg2, psycopg, asyncpg, sqlalchemy"]),
        "pip install -r tests/clients/requirements.txt",
    ) {
        return;
    }
    let server = TestServer::start();
    load(&server).await;
    let (ok, out) = run(Command::new("python3")
        .arg(dir.join("python_clients.py"))
        .arg(server.pg_port.to_string()));
    assert!(ok, "{out}");
    assert!(out.contains("0 failed"), "{out}");
    assert!(!out.contains("FAIL "), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pgjdbc_metadata_prepared_binary_and_fetch_size() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let Some(jar) = crate::support::pgjdbc() else {
        return;
    };
    let server = TestServer::start();
    load(&server).await;
    let (ok, out) = run(Command::new("java")
        .args(["-cp", jar])
        .arg(dir.join("Jdbc.java"))
        .arg(server.pg_port.to_string()));
    assert!(ok, "{out}");
    assert!(out.contains("0 failed"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_meta_commands_describe_our_database() {
    let server = TestServer::start();
    load(&server).await;
    let conn = format!("host=127.0.0.1 port={} user=timberline", server.pg_port);
    let run = |cmd: &str| {
        let out = psql(&conn, "timberline", cmd);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    // -At output: one row per line, fields separated by '|'.
    let dt = run("\\dt");
    assert!(
        dt.lines().any(|l| l.starts_with("public|logs|table|")),
        "{dt}"
    );
    let d = run("\\d logs");
    assert!(
        d.lines()
            .any(|l| l.starts_with("ts|timestamp with time zone|")),
        "{d}"
    );
    assert!(d.lines().any(|l| l.starts_with("msg|text|")), "{d}");
    let l = run("\\l");
    assert!(l.lines().any(|l| l.starts_with("timberline|")), "{l}");
    let dn = run("\\dn");
    assert!(dn.lines().any(|l| l.starts_with("public|")), "{dn}");
    // Timberline's own functions, listed as an extension's are, and described by `\df+`.
    let df = run("\\df");
    for name in ["log_context", "match", "nearest", "ts_distance"] {
        assert!(
            df.lines()
                .any(|l| l.starts_with(&format!("public|{name}|"))),
            "{df}"
        );
    }
    assert!(
        df.contains("public|nearest|boolean|ts timestamp with time zone, target timestamp with time zone, k bigint DEFAULT 1|func"),
        "{df}"
    );
    let df_plus = run("\\df+ match");
    assert!(df_plus.contains("full-text search"), "{df_plus}");
    // The `+` forms call pg_size_pretty, pg_table_size and obj_description.
    let dt_plus = run("\\dt+");
    assert!(
        dt_plus.lines().any(|l| l.starts_with("public|logs|table|")),
        "{dt_plus}"
    );
    let l_plus = run("\\l+");
    assert!(
        l_plus.lines().any(|l| l.starts_with("timberline|")),
        "{l_plus}"
    );
    assert_eq!(run("\\dT").trim(), "");
    // ARRAY(subquery), ACL arrays and storage columns: answered from the catalog's rows.
    let d_plus = run("\\d+ logs");
    assert!(
        d_plus
            .lines()
            .any(|l| l.starts_with("msg|text||not null||extended|")),
        "{d_plus}"
    );
    let du = run("\\du");
    assert!(
        du.lines().any(|l| l.starts_with("timberline|Superuser")),
        "{du}"
    );
    let dn_plus = run("\\dn+");
    assert!(
        dn_plus.lines().any(|l| l.starts_with("public|")),
        "{dn_plus}"
    );
    // Rollup views are materialized views: the count tables' built-in one at least.
    let dm = run("\\dm");
    assert!(
        dm.lines()
            .any(|l| l.starts_with("public|logs_per_minute|materialized view|")),
        "{dm}"
    );
    assert_eq!(run("SELECT count(*) FROM logs").trim(), "120");
}
