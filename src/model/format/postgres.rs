//! PostgreSQL's server log as `log_line_prefix` writes it by default (`%m [%p] `, Debian's
//! `%m [%p] %q%u@%d `, and prefixes with `[%l-1]` or `user=…,db=…` before the severity):
//! `2026-12-06 19:18:49.207 UTC [14754] ERROR:  division by zero`.
//!
//! `DETAIL`, `HINT`, `QUERY`, `CONTEXT`, `STATEMENT` and `LOCATION` lines carry their own prefix
//! but belong to the message before them: they parse as continuations of its record.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::stamp::{self, Clock, Shape};
use super::ParsedLine;

/// What follows the stamp: the pid, optional prefix fields, the severity and two spaces.
static AFTER_STAMP: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        // A zone the stamp did not take (`CST`, `+0530`…): the time is read in `--tz`.
        r"^(?: [A-Za-z]{2,5}| [+-]\d{2,4})? \[(?P<pid>\d+)\](?:: \[\d+(?:-\d+)?\])? (?P<mid>(?:\S+ )*?)",
        r"(?P<sev>DEBUG[1-5]?|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|",
        r"DETAIL|HINT|QUERY|CONTEXT|STATEMENT|LOCATION):  (?P<msg>.*)$"
    ))
    .ok()
});

/// Severities that continue the message before them.
const CONTINUING: [&str; 6] = [
    "DETAIL",
    "HINT",
    "QUERY",
    "CONTEXT",
    "STATEMENT",
    "LOCATION",
];

/// PostgreSQL's severity as a level.
fn level_of(severity: &str) -> &'static str {
    match severity {
        "LOG" | "INFO" | "NOTICE" => "INFO",
        "WARNING" => "WARN",
        "ERROR" => "ERROR",
        "FATAL" | "PANIC" => "FATAL",
        _ => "DEBUG",
    }
}

/// Parses one line of a PostgreSQL server log.
pub(super) fn parse(line: &str, clock: &Clock) -> Option<ParsedLine> {
    let found = stamp::at_start(line, clock, &[Shape::Iso])?;
    let caps = AFTER_STAMP.as_ref()?.captures(&line[found.end..])?;
    let severity = caps.name("sev")?.as_str();
    let mut attrs = Map::new();
    attrs.insert("pid".into(), Value::from(caps.name("pid")?.as_str()));
    let mid = caps.name("mid").map_or("", |m| m.as_str()).trim();
    match mid.split_once('@') {
        Some((user, db)) if !mid.contains(' ') => {
            if !user.is_empty() {
                attrs.insert("user".into(), Value::from(user));
            }
            if !db.is_empty() {
                attrs.insert("database".into(), Value::from(db));
            }
        }
        _ if !mid.is_empty() => {
            attrs.insert("prefix".into(), Value::from(mid));
        }
        _ => {}
    }
    let continues = CONTINUING.contains(&severity);
    let msg = caps.name("msg")?.as_str();
    Some(ParsedLine {
        ts: found.ts,
        level: Some(level_of(severity).to_string()),
        msg: if continues {
            format!("{severity}:  {msg}")
        } else {
            msg.to_string()
        },
        attrs,
        continues,
        ..ParsedLine::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000;

    #[test]
    fn default_and_debian_prefixes() {
        let clock = Clock::new(NOW);
        let p = parse(
            "2026-12-06 19:18:49.207 UTC [14754] ERROR:  division by zero",
            &clock,
        )
        .unwrap_or_default();
        assert_eq!(p.level.as_deref(), Some("ERROR"));
        assert_eq!(p.msg, "division by zero");
        assert_eq!(p.ts, 1_796_584_729_207_000);
        assert_eq!(p.attrs.get("pid"), Some(&Value::from("14754")));
        assert!(!p.continues);
        let p = parse(
            "2026-12-06 20:18:49.207 CET [7] postgres@shop LOG:  checkpoint starting: time",
            &clock,
        )
        .unwrap_or_default();
        assert_eq!(
            (p.level.as_deref(), p.ts),
            (Some("INFO"), 1_796_584_729_207_000)
        );
        assert_eq!(p.attrs.get("database"), Some(&Value::from("shop")));
        let p = parse(
            "2026-12-06 19:18:49 UTC [9] STATEMENT:  SELECT 1/0;",
            &clock,
        )
        .unwrap_or_default();
        assert!(p.continues && p.msg == "STATEMENT:  SELECT 1/0;");
        assert!(parse("2026-12-06 19:18:49.207 UTC [14754] hello", &clock).is_none());
    }
}
