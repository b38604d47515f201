//! Grafana as it really talks: `tests/grafana/replay.go`, built with Debian's Go 1.19 and pgx v4
//! (`golang-1.19-go golang-github-jackc-pgx-v4-dev`), sends Grafana's PostgreSQL-datasource
//! traffic (`tests/grafana/traffic.sql`: health checks, query-editor metadata, macro-expanded
//! panels, template variables, time zones, several statements per Exec) over the simple
//! protocol to Timberline and to a PostgreSQL 15 holding the same rows, and the command tags,
//! column names, type OIDs and text values of every statement are compared.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::differential::{corpus, load, Reference};
use crate::support::{repo_path, TestServer};

const GO: &str = "/usr/lib/go-1.19/bin/go";

/// Builds the replay client offline against Debian's pgx v4 sources.
fn build_replay(out: &Path) -> Option<std::path::PathBuf> {
    let found = Path::new(GO).exists()
        && Path::new("/usr/share/gocode/src/github.com/jackc/pgconn").exists();
    if !crate::support::present(
        "Go 1.19 and pgx v4",
        found,
        "apt-get install golang-1.19-go golang-github-jackc-pgx-v4-dev",
    ) {
        return None;
    }
    let bin = out.join("replay");
    let gopath = format!("{}:/usr/share/gocode", out.display());
    let built = Command::new(GO)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(repo_path("tests/grafana/replay.go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOCACHE", out.join("cache"))
        .env("GOFLAGS", "")
        .output()
        .expect("go build");
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(bin)
}

/// One replay: a JSON value per step.
fn replay(bin: &Path, dsn: &str) -> Vec<Value> {
    let out = Command::new(bin)
        .arg(dsn)
        .arg(repo_path("tests/grafana/traffic.sql"))
        .output()
        .expect("replay runs");
    assert!(
        out.status.success(),
        "replay against {dsn}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON step"))
        .collect()
}

/// A step as compared: errors by SQLSTATE class, rows sorted unless the statement orders them.
fn comparable(step: &Value) -> Value {
    if let Some(code) = step["error"].as_str() {
        return Value::String(format!("error {}", code.get(..2).unwrap_or(code)));
    }
    let ordered = step["sql"]
        .as_str()
        .is_some_and(|s| s.to_ascii_lowercase().contains("order by"));
    let mut results = step["results"].clone();
    if !ordered {
        if let Some(all) = results.as_array_mut() {
            for r in all {
                if let Some(rows) = r["rows"].as_array_mut() {
                    rows.sort_by_key(|v| v.to_string());
                }
            }
        }
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_traffic_over_pgx_answers_as_postgresql_does() {
    let Some(reference) = Reference::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(bin) = build_replay(dir.path()) else {
        return;
    };
    let server = TestServer::start();
    let tl = server.pg().await;
    let pg = reference.connect().await;
    load(&server, &tl, &pg).await;

    let ours = replay(
        &bin,
        &format!(
            "host=127.0.0.1 port={} user=timberline password=timberline dbname=timberline sslmode=disable",
            server.pg_port
        ),
    );
    let theirs = replay(
        &bin,
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
            reference.port
        ),
    );
    // The two health checks, then the file's steps.
    let cases = corpus(&repo_path("tests/grafana/traffic.sql"));
    assert_eq!(ours.len(), cases.len() + 2, "steps run against Timberline");
    assert_eq!(theirs.len(), ours.len(), "steps run against PostgreSQL");
    for (health, reference) in ours[..2].iter().zip(&theirs[..2]) {
        assert!(health["error"].is_null(), "health check failed: {health}");
        assert_eq!(comparable(health), comparable(reference), "health check");
    }
    let mut failures = Vec::new();
    let mut same = 0;
    for ((case, a), b) in cases.iter().zip(&ours[2..]).zip(&theirs[2..]) {
        let agree = comparable(a) == comparable(b);
        match (agree, &case.differs) {
            (true, None) => same += 1,
            (false, Some(_)) => {}
            (false, None) => failures.push(format!(
                "traffic.sql:{}: {}\n    Timberline {}\n    PostgreSQL {}",
                case.line,
                case.sql,
                comparable(a),
                comparable(b)
            )),
            (true, Some(reason)) => failures.push(format!(
                "traffic.sql:{}: now answers as PostgreSQL does; remove its mark ({reason})",
                case.line
            )),
        }
    }
    println!(
        "grafana replay (pgx v4): {same} of {} steps answer as PostgreSQL 15 does",
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
