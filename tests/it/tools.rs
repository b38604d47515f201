//! The BI tools' own SQL (`tests/differential/tools/*.sql`: SQLAlchemy, pgjdbc, psql, Metabase,
//! Grafana, DBeaver, pgAdmin, Superset, each statement marked with its source) sent to
//! Timberline and to a real PostgreSQL 15 holding the same rows by `measure.py`, which sorts
//! each answer into identical / same shape / different / error. The suite is a ratchet: no
//! statement may answer worse than `baseline.json` records. `TIMBERLINE_TOOLS_BASELINE=write`
//! rewrites the baseline from this run (after a change that improves answers).

use std::collections::BTreeMap;
use std::process::Command;

use crate::differential::Reference;
use crate::support::{available, bin, repo_path, TestServer, API_KEY};

/// The classes, best first.
const CLASSES: [&str; 4] = ["identical", "same shape", "different", "error"];

fn rank(class: &str) -> usize {
    CLASSES
        .iter()
        .position(|c| *c == class)
        .unwrap_or(CLASSES.len())
}

fn python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(repo_path("tests/differential/tools/measure.py"))
        .args(args)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "measure.py {args:?}: {text}");
    text
}

/// A PostgreSQL 15 and a Timberline holding the same rows (`measure.py --load`), each with the
/// user `postgres` the tools log in as; `None` when psycopg or PostgreSQL is missing here.
async fn loaded_pair() -> Option<(Reference, TestServer)> {
    if !available(
        "psycopg",
        Command::new("python3").args(["-c", "import psycopg"]),
        "pip install -r tests/clients/requirements.txt",
    ) {
        return None;
    }
    let reference = Reference::start()?;
    // No background flush or compaction: `segments` keeps the rows the load copies.
    let server = TestServer::start_with(&[
        "--pg-auth",
        "trust",
        "--maintenance-interval",
        "0",
        "--flush-interval-secs",
        "86400",
    ]);
    // The tools log in as `postgres`, an ordinary user of the default tenant, on both.
    let added = Command::new(bin())
        .args([
            "user",
            "add",
            "postgres",
            "--tenant",
            "default",
            "--data-dir",
        ])
        .arg(server.dir.path())
        .env("TIMBERLINE_NEW_PASSWORD", "postgres")
        .output()
        .expect("user add");
    assert!(added.status.success(), "{added:?}");
    let _ready = reference.connect().await;
    let (tl_port, pg_port) = (server.pg_port.to_string(), reference.port.to_string());
    let http = server.http.trim_start_matches("http://").to_string();
    python(&[
        "--load",
        "--tl-http",
        &http,
        "--tl-port",
        &tl_port,
        "--pg-port",
        &pg_port,
        "--api-key",
        API_KEY,
    ]);
    Some((reference, server))
}

/// pgjdbc's `DatabaseMetaData`, every method DBeaver and Metabase call
/// (`tests/clients/JdbcMetadata.java`), answers on Timberline as on PostgreSQL 15.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgjdbc_database_metadata_answers_as_postgresql() {
    let Some(jar) = crate::support::pgjdbc() else {
        return;
    };
    let Some((reference, server)) = loaded_pair().await else {
        return;
    };
    let out = Command::new("java")
        .args(["-cp", jar])
        .arg(repo_path("tests/clients/JdbcMetadata.java"))
        .args([&server.pg_port.to_string(), "timberline", "timberline"])
        .args([&reference.port.to_string(), "postgres", "postgres"])
        .output()
        .expect("java runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success() && text.contains("\n0 failed"),
        "{text}"
    );
    // The calls ran: Metabase's table list found the relations.
    assert!(
        text.contains("PASS getTables(null,%,metabase types) (4 rows)"),
        "{text}"
    );
}

/// psql's `\d` commands (`describe.c`) that apply to a database one cannot write to, each
/// answering on Timberline as on PostgreSQL 15 holding the same relations, but where the
/// reason given says how it differs (those must still answer, without error).
const PSQL_COMMANDS: &[(&str, Option<&str>)] = &[
    ("\\d", None),
    ("\\d logs_per_minute", None),
    ("\\d+ logs_per_minute", None),
    ("\\da", None),
    ("\\dA", None),
    ("\\db", None),
    ("\\dc", None),
    ("\\dd", None),
    ("\\dD", None),
    ("\\ddp", None),
    ("\\dE", None),
    ("\\des", None),
    ("\\det", None),
    ("\\deu", None),
    ("\\dew", None),
    ("\\df", None),
    ("\\df nearest", None),
    (
        "\\df+ log_context",
        Some("the function's language and source: internal here, SQL in the reference"),
    ),
    ("\\di", None),
    ("\\dl", None),
    ("\\dL", None),
    ("\\dm", None),
    ("\\dn pg_catalog", None),
    ("\\dO", None),
    ("\\dP", None),
    ("\\drds", None),
    ("\\dRp", None),
    ("\\dRs", None),
    ("\\ds", None),
    ("\\dt", None),
    ("\\dt pg_catalog.pg_class", None),
    ("\\dT", None),
    ("\\dT+", None),
    ("\\dv", None),
    ("\\dvS pg_roles", None),
    ("\\dX", None),
    ("\\dy", None),
    ("\\lo_list", None),
    (
        "\\d logs",
        Some("logs.attrs is text holding JSON, jsonb in the reference"),
    ),
    (
        "\\d+ logs",
        Some("logs.attrs is text holding JSON, jsonb in the reference"),
    ),
    (
        "\\dt+",
        Some("no relation has PostgreSQL's heap storage: no access method or size"),
    ),
    (
        "\\dm+",
        Some("no relation has PostgreSQL's heap storage: no access method or size"),
    ),
    ("\\db+", Some("tablespaces have no size")),
    ("\\dA+", Some("built-in objects carry no descriptions")),
    ("\\dF", Some("built-in objects carry no descriptions")),
    ("\\dFd", Some("built-in objects carry no descriptions")),
    ("\\dFp", Some("built-in objects carry no descriptions")),
    ("\\dFt", Some("built-in objects carry no descriptions")),
    ("\\dx", Some("built-in objects carry no descriptions")),
    ("\\dTS int4", Some("built-in objects carry no descriptions")),
    (
        "\\dfS now",
        Some("a built-in function's result and arguments are not printed"),
    ),
    ("\\dx+", Some("an extension's members are not listed")),
    (
        "\\dC",
        Some("the casts of the bundled catalog, a newer PostgreSQL's"),
    ),
    (
        "\\dS pg_class",
        Some("catalog columns' types are their Arrow types (integer, text)"),
    ),
    (
        "\\dn",
        Some("public belongs to the administrator, to pg_database_owner in PostgreSQL 15"),
    ),
    (
        "\\dn+",
        Some("public belongs to the administrator, to pg_database_owner in PostgreSQL 15"),
    ),
    (
        "\\du",
        Some("the roles are Timberline's users: the administrator and oneself"),
    ),
    (
        "\\dg",
        Some("the roles are Timberline's users: the administrator and oneself"),
    ),
    (
        "\\l",
        Some("the databases are Timberline's, with its encoding and locale names"),
    ),
    (
        "\\l+",
        Some("the databases are Timberline's, with its encoding and locale names"),
    ),
    (
        "\\dconfig",
        Some("no setting comes from a configuration file"),
    ),
];

/// Every applicable `\d` command of real psql answers on Timberline (see [`PSQL_COMMANDS`]).
/// Not yet: `\dp`/`\z` (a subquery correlated by `= ANY`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_describe_commands_answer_as_postgresql() {
    let Some((reference, server)) = loaded_pair().await else {
        return;
    };
    let answer = |port: u16, db: &str, command: &str| {
        let out = crate::support::psql(
            &format!("host=127.0.0.1 port={port} user=postgres dbname={db}"),
            "postgres",
            command,
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let error = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), text, error)
    };
    let mut failed = Vec::new();
    for (command, differs) in PSQL_COMMANDS {
        let (ok, tl, error) = answer(server.pg_port, "timberline", command);
        // The administrator and the database are each server's own.
        let tl = tl.replace("timberline", "postgres");
        let (pg_ok, pg, _) = answer(reference.port, "postgres", command);
        assert!(pg_ok, "the reference fails {command}");
        match (ok, differs) {
            (false, _) => failed.push(format!("{command}: {error}")),
            (true, None) if tl != pg => {
                failed.push(format!("{command}:\ntimberline:\n{tl}\npostgresql:\n{pg}"))
            }
            (true, Some(why)) => println!("{command}: answers; differs: {why}"),
            (true, None) => println!("{command}: identical ({} lines)", pg.lines().count()),
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bi_tools_sql_answers_no_worse_than_the_baseline() {
    let Some((reference, server)) = loaded_pair().await else {
        return;
    };
    let (tl_port, pg_port) = (server.pg_port.to_string(), reference.port.to_string());
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let out_path = out.path().to_string_lossy().to_string();
    let figures = python(&[
        "--tl-port",
        &tl_port,
        "--pg-port",
        &pg_port,
        "--json",
        &out_path,
    ]);
    println!("{figures}");

    let outcomes: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.path()).expect("outcomes")).expect("json");
    let now: BTreeMap<String, String> = outcomes
        .iter()
        .map(|o| {
            (
                format!("{}:{}", o["file"].as_str().unwrap_or(""), o["line"]),
                o["class"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let baseline_path = repo_path("tests/differential/tools/baseline.json");
    if std::env::var("TIMBERLINE_TOOLS_BASELINE").as_deref() == Ok("write") {
        let text = serde_json::to_string_pretty(&now).expect("baseline");
        std::fs::write(&baseline_path, text + "\n").expect("write baseline");
        return;
    }
    let baseline: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(&baseline_path).expect("baseline.json"))
            .expect("baseline json");
    let mut worse = Vec::new();
    let mut better = 0;
    for (at, was) in &baseline {
        let is = now.get(at).map(String::as_str).unwrap_or("missing");
        if rank(is) > rank(was) {
            let detail = outcomes
                .iter()
                .find(|o| format!("{}:{}", o["file"].as_str().unwrap_or(""), o["line"]) == *at)
                .map(|o| format!("{} {}", o["diff"], o["tl_error"]))
                .unwrap_or_default();
            worse.push(format!("{at}: {was} -> {is}: {detail}"));
        } else if rank(is) < rank(was) {
            better += 1;
        }
    }
    if better > 0 {
        println!("{better} statements answer better than baseline.json records; rewrite it with TIMBERLINE_TOOLS_BASELINE=write");
    }
    assert!(
        worse.is_empty(),
        "{} statements answer worse than baseline.json:\n{}",
        worse.len(),
        worse.join("\n")
    );
}
