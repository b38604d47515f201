//! Logs written by real programs (tests/data/programs, recorded by its record.py): each file is
//! loaded by `timberline ingest` with no flags and must come back as the records its truth
//! file states, independently of the parsers — rows = records, every time from the line, the
//! level right, stack traces and continuation lines inside their record, the service named.

use serde_json::Value;

use crate::file_ingest::ingest;
use crate::support::{repo_path, TestServer};

/// One stored row.
#[derive(Debug)]
struct Row {
    ts: i64,
    level: String,
    msg: String,
    service: String,
    host: String,
    flagged: bool,
}

fn micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("truth time {rfc3339}: {e}"))
        .timestamp_micros()
}

/// What is wrong with the rows of one file, against its truth (empty when nothing).
fn compare(file: &str, truth: &Value, rows: &[Row]) -> Vec<String> {
    let records = truth["records"].as_array().cloned().unwrap_or_default();
    let stem = file.split('.').next().unwrap_or(file);
    let mut problems = Vec::new();
    if rows.len() != records.len() {
        problems.push(format!(
            "{file}: {} rows for {} records",
            rows.len(),
            records.len()
        ));
    }
    let mut used = vec![false; rows.len()];
    for (i, rec) in records.iter().enumerate() {
        let ts = micros(rec["ts"].as_str().unwrap_or_default());
        let contains: Vec<&str> = rec["contains"]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let level = match rec.get("level") {
            Some(Value::Null) => Some("UNKNOWN"),
            Some(l) => l.as_str(),
            None => None,
        };
        let service = rec["service"].as_str().unwrap_or(stem);
        let fits = |r: &Row| {
            r.ts == ts
                && level.is_none_or(|l| r.level == l)
                && contains.iter().all(|c| r.msg.contains(c))
                && r.service == service
                && rec["host"].as_str().is_none_or(|h| r.host == h)
                && !r.flagged
        };
        match (0..rows.len()).find(|&j| !used[j] && fits(&rows[j])) {
            Some(j) => used[j] = true,
            None => {
                let near: Vec<&Row> = rows.iter().filter(|r| r.ts == ts).collect();
                problems.push(format!(
                    "{file}: record {i} ({rec}) has no row; rows at its time: {near:#?}"
                ));
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_of_real_programs_load_as_their_records() {
    let dir = repo_path("tests/data/programs");
    let mut truths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
        .collect();
    truths.sort();
    assert!(truths.len() >= 15, "the corpus: {truths:?}");
    let mut problems = Vec::new();
    for truth_path in truths {
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(&truth_path).unwrap()).unwrap();
        let file = truth["file"].as_str().unwrap().to_string();
        let server = TestServer::start();
        let state = tempfile::tempdir().unwrap();
        let year = truth["year"].as_i64().map(|y| y.to_string());
        let mut args = vec![];
        if let Some(y) = &year {
            args = vec!["--year", y.as_str()];
        }
        let (ok, _, stderr) = ingest(&server, &args, &[&dir.join(&file)], state.path());
        assert!(ok, "{file}: {stderr}");
        if stderr.contains("WARNING") {
            problems.push(format!("{file}: {stderr}"));
        }
        let pg = server.pg().await;
        let rows: Vec<Row> = pg
            .query(
                "SELECT CAST(extract(epoch FROM ts) * 1000000 AS bigint), level, msg, service, host, parse_failed FROM logs ORDER BY ts",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| Row {
                ts: r.get(0),
                level: r.get(1),
                msg: r.get(2),
                service: r.get(3),
                host: r.get(4),
                flagged: r.get(5),
            })
            .collect();
        problems.extend(compare(&file, &truth, &rows));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
