//! The README's tour, run as a new user runs it: every `timberline=>` line, ```sql block and
//! ```sh block of its "A quick tour" section, against `serve --demo` and its planted incident,
//! through the real `psql` and `bash`; each must succeed and print rows.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{psql, repo_path, TestServer};

/// What the tour runs.
enum Step {
    Sql(String),
    Shell(String),
}

/// The steps of the README's "A quick tour" section, in order.
fn tour() -> Vec<Step> {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md");
    let start = readme.find("## A quick tour").expect("a tour section");
    let rest = &readme[start + 3..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut steps = Vec::new();
    let mut block: Option<(String, String)> = None;
    for line in section.lines() {
        if let Some(fence) = line.strip_prefix("```") {
            match block.take() {
                Some((lang, body)) => match lang.as_str() {
                    "sql" => steps.extend(statements(&body).into_iter().map(Step::Sql)),
                    "sh" => steps.push(Step::Shell(body)),
                    _ => {}
                },
                None => block = Some((fence.trim().to_string(), String::new())),
            }
            continue;
        }
        if let Some((lang, body)) = block.as_mut() {
            match line.strip_prefix("timberline=> ") {
                Some(sql) if lang == "console" => steps.push(Step::Sql(sql.to_string())),
                _ => {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    steps
}

/// The statements of a SQL block: `;` ends one at the end of a line; `--` lines are comments.
fn statements(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in body.lines() {
        if line.trim_start().starts_with("--") || line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_the_readme_tour_answers_on_the_demo() {
    if !crate::support::available(
        "psql",
        Command::new("psql").arg("--version"),
        "apt-get install postgresql-client",
    ) {
        return;
    }
    let steps = tour();
    assert!(steps.len() >= 8, "the tour has only {} steps", steps.len());
    let server = TestServer::start_with(&["--demo"]);
    let pg = server.pg().await;
    // The demo writes its backfill and incident after the server is ready: wait for them.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let row = pg
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE trace_id = '4bf92f3577b34da6a3ce929d0e0e4736') FROM logs",
                &[],
            )
            .await
            .expect("count");
        let (all, traced): (i64, i64) = (row.get(0), row.get(1));
        if all >= 30_000 && traced >= 7 {
            break;
        }
        assert!(Instant::now() < deadline, "the demo wrote {all} rows");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let conninfo = format!(
        "host=127.0.0.1 port={} user=timberline dbname=timberline",
        server.pg_port
    );
    let http = server.http.trim_start_matches("http://").to_string();
    for step in steps {
        let (what, out) = match &step {
            Step::Sql(sql) => (sql.clone(), psql(&conninfo, "timberline", sql)),
            Step::Shell(script) => {
                let script = script
                    .replace("127.0.0.1:8080", &http)
                    .replace("-p 5433", &format!("-p {}", server.pg_port));
                let out = Command::new("bash")
                    .args(["-c", &script])
                    .env("PGPASSWORD", "timberline")
                    .output()
                    .expect("bash");
                (script, out)
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tour step failed: {what}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !stdout.trim().is_empty(),
            "tour step printed no rows: {what}"
        );
    }
}
