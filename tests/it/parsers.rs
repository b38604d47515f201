//! Parsers: every loghub sample line of the supported formats, checked field by field against
//! loghub's structured CSV, plus the timestamp of each system's first line.

use chrono::{DateTime, Utc};
use timberline::model::format::{LineFormat, LoghubSystem, LOGHUB_SYSTEMS};
use timberline::model::level::normalize;

use crate::support::repo_path;

fn system(name: &str) -> &'static LoghubSystem {
    LOGHUB_SYSTEMS
        .iter()
        .find(|s| s.name == name)
        .expect("system")
}

fn micros(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
        .timestamp_micros()
}

fn check(name: &str, year: i32, first_ts: &str) {
    let dir = repo_path(&format!("tests/data/loghub/{name}"));
    let log = std::fs::read_to_string(dir.join(format!("{name}_2k.log"))).unwrap();
    let mut csv =
        csv::Reader::from_path(dir.join(format!("{name}_2k.log_structured.csv"))).unwrap();
    let headers: Vec<String> = csv.headers().unwrap().iter().map(str::to_string).collect();
    let sys = system(name);
    let lines: Vec<&str> = log.lines().collect();
    let mut checked = 0;
    for (line, rec) in lines.iter().zip(csv.records()) {
        let rec = rec.unwrap();
        let fields = sys
            .fields(line)
            .unwrap_or_else(|| panic!("{name}: no match for {line:?}"));
        for (h, v) in headers.iter().zip(rec.iter()) {
            if matches!(h.as_str(), "LineId" | "EventId" | "EventTemplate") {
                continue;
            }
            let got = fields
                .iter()
                .find(|(k, _)| k == h)
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            assert_eq!(got.trim(), v.trim(), "{name} line {}: field {h}", &rec[0]);
        }
        let parsed = sys
            .parse(line, year)
            .unwrap_or_else(|| panic!("{name}: no parse for {line:?}"));
        let content = headers.iter().position(|h| h == "Content").unwrap();
        assert_eq!(parsed.msg.trim(), rec[content].trim());
        if let Some(l) = headers.iter().position(|h| h == "Level") {
            // Linux's "Level" header is really the host.
            match name {
                "Linux" => assert_eq!(parsed.host.as_deref(), Some(&rec[l])),
                _ => assert_eq!(
                    normalize(parsed.level.as_deref().unwrap_or("")),
                    normalize(&rec[l])
                ),
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 2000, "{name}: every sample line checked");
    let first = sys.parse(lines[0], year).unwrap();
    assert_eq!(first.ts, micros(first_ts), "{name} first timestamp");
    // Auto-detection picks this format from the file's first lines.
    let detected = LineFormat::detect(&lines[..50], year);
    assert_eq!(detected.name(), format!("loghub:{name}"));
}

#[test]
fn hdfs() {
    check("HDFS", 2008, "2008-11-09T20:36:15Z");
}

#[test]
fn zookeeper() {
    check("Zookeeper", 2015, "2015-07-29T17:41:44.747Z");
}

#[test]
fn spark() {
    check("Spark", 2017, "2017-06-09T20:10:40Z");
}

#[test]
fn linux_takes_the_year_it_is_given() {
    check("Linux", 2005, "2005-06-14T15:16:01Z");
}

#[test]
fn openssh() {
    check("OpenSSH", 2015, "2015-12-10T06:55:46Z");
}

#[test]
fn apache() {
    check("Apache", 2005, "2005-12-04T04:47:44Z");
}

#[test]
fn triage_lines_and_garbage() {
    let f = LineFormat::from_name("triage", 2024).unwrap();
    let p = f
        .parse("2024-01-15T10:30:45.123Z [ERROR] payment failed")
        .unwrap();
    assert_eq!(p.ts, micros("2024-01-15T10:30:45.123Z"));
    assert_eq!(p.level.as_deref(), Some("ERROR"));
    assert_eq!(p.msg, "payment failed");
    assert!(f.parse("garbage without a timestamp").is_none());
    assert!(LineFormat::from_name("loghub:Nope", 2024).is_none());
}
