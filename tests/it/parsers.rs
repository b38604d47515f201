//! Parsers: every loghub sample line of all 16 systems, checked field by field against loghub's
//! structured CSV, every line's timestamp against the one the CSV's fields give (read here with
//! chrono's own format strings), and auto-detection of each system from its first lines.

use chrono::{DateTime, NaiveDateTime, Utc};
use timberline::model::format::{Clock, LineFormat, LoghubSystem, LOGHUB_SYSTEMS};
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
    let clock = Clock {
        year: Some(year),
        ..Clock::new(micros("2026-01-01T00:00:00Z"))
    };
    let detected = LineFormat::detect(&lines[..50], &clock);
    // Linux, Mac and OpenSSH samples are syslog files: detected as syslog, which names the
    // program as the service and reads the same instant and message.
    let syslog = matches!(name, "Linux" | "Mac" | "OpenSSH");
    let want = if syslog {
        "syslog".to_string()
    } else {
        format!("loghub:{name}")
    };
    assert_eq!(detected.format.name(), want);
    // Every line's timestamp is the one its CSV fields say.
    let mut csv =
        csv::Reader::from_path(dir.join(format!("{name}_2k.log_structured.csv"))).unwrap();
    for (line, rec) in lines.iter().zip(csv.records()) {
        let rec = rec.unwrap();
        let field = |h: &str| rec[headers.iter().position(|x| x == h).unwrap()].to_string();
        let want = expected_ts(name, year, &field);
        let got = sys.parse(line, year).unwrap().ts;
        assert_eq!(got, want, "{name} line {}: {line}", &rec[0]);
        if syslog {
            let p = LineFormat::Syslog.parse(line, &clock).unwrap();
            assert_eq!(p.ts, want, "{name} line {} as syslog", &rec[0]);
            assert!(
                p.msg.trim_end().ends_with(field("Content").trim()),
                "{name}: {line}"
            );
            assert!(p.service.is_some_and(|s| !s.is_empty()), "{name}: {line}");
        }
    }
}

/// The timestamp a line's CSV fields give, read with chrono's format strings.
fn expected_ts(name: &str, year: i32, field: &dyn Fn(&str) -> String) -> i64 {
    let naive = |text: String, fmt: &str| {
        NaiveDateTime::parse_from_str(&text, fmt)
            .unwrap_or_else(|e| panic!("{name}: {text:?} as {fmt}: {e}"))
            .and_utc()
            .timestamp_micros()
    };
    let (date, time) = (|| field("Date"), || field("Time"));
    match name {
        "HDFS" => naive(format!("{} {:0>6}", date(), time()), "%y%m%d %H%M%S"),
        "Zookeeper" | "Hadoop" => naive(format!("{} {}", date(), time()), "%Y-%m-%d %H:%M:%S,%3f"),
        "Spark" => naive(format!("{} {}", date(), time()), "%y/%m/%d %H:%M:%S"),
        "Linux" | "Mac" => naive(
            format!("{year} {} {} {}", field("Month"), date(), time()),
            "%Y %b %d %H:%M:%S",
        ),
        "OpenSSH" => naive(
            format!("{year} {} {} {}", date(), field("Day"), time()),
            "%Y %b %d %H:%M:%S",
        ),
        "Apache" => naive(time(), "%a %b %d %H:%M:%S %Y"),
        "Android" => naive(
            format!("{year}-{} {}", date(), time()),
            "%Y-%m-%d %H:%M:%S%.3f",
        ),
        "OpenStack" => naive(format!("{} {}", date(), time()), "%Y-%m-%d %H:%M:%S%.3f"),
        "Windows" => naive(format!("{} {}", date(), time()), "%Y-%m-%d %H:%M:%S"),
        "Proxifier" => naive(format!("{year}.{}", time()), "%Y.%m.%d %H:%M:%S"),
        "HealthApp" => {
            let t = time();
            let (head, ms) = t.rsplit_once(':').unwrap();
            naive(head.to_string(), "%Y%m%d-%H:%M:%S") + ms.parse::<i64>().unwrap() * 1000
        }
        // Epoch seconds are the instant (the printed clock is the machine's local time).
        "HPC" => time().parse::<i64>().unwrap() * 1_000_000,
        "Thunderbird" => field("Timestamp").parse::<i64>().unwrap() * 1_000_000,
        "BGL" => {
            let epoch = field("Timestamp").parse::<i64>().unwrap();
            let local = NaiveDateTime::parse_from_str(&time(), "%Y-%m-%d-%H.%M.%S%.6f").unwrap();
            // The µs of the printed time, when it is the same second as the epoch.
            let same = local.and_utc().timestamp().rem_euclid(60) == epoch.rem_euclid(60);
            epoch * 1_000_000
                + if same {
                    i64::from(local.and_utc().timestamp_subsec_micros())
                } else {
                    0
                }
        }
        other => panic!("no expectation for {other}"),
    }
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
fn android() {
    check("Android", 2017, "2017-03-17T16:13:38.811Z");
}

#[test]
fn bgl() {
    check("BGL", 2005, "2005-06-03T22:42:50.675872Z");
}

#[test]
fn hpc() {
    check("HPC", 2004, "2004-02-26T14:12:22Z");
}

#[test]
fn hadoop() {
    check("Hadoop", 2015, "2015-10-18T18:01:47.978Z");
}

#[test]
fn healthapp() {
    check("HealthApp", 2017, "2017-12-23T22:15:29.606Z");
}

#[test]
fn mac() {
    check("Mac", 2017, "2017-07-01T09:00:55Z");
}

#[test]
fn openstack() {
    check("OpenStack", 2017, "2017-05-16T00:00:00.008Z");
}

#[test]
fn proxifier() {
    check("Proxifier", 2016, "2016-10-30T16:49:06Z");
}

#[test]
fn thunderbird() {
    check("Thunderbird", 2005, "2005-11-09T20:01:01Z");
}

#[test]
fn windows() {
    check("Windows", 2016, "2016-09-28T04:30:30Z");
}

#[test]
fn triage_lines_and_garbage() {
    let f = LineFormat::from_name("triage").unwrap();
    let clock = Clock::new(micros("2026-01-01T00:00:00Z"));
    let p = f
        .parse("2024-01-15T10:30:45.123Z [ERROR] payment failed", &clock)
        .unwrap();
    assert_eq!(p.ts, micros("2024-01-15T10:30:45.123Z"));
    assert_eq!(p.level.as_deref(), Some("ERROR"));
    assert_eq!(p.msg, "payment failed");
    assert!(f.parse("garbage without a timestamp", &clock).is_none());
    assert!(LineFormat::from_name("loghub:Nope").is_err());
}
