//! Line formats of log files, detected per file: JSON lines (Docker json-file, ECS), logfmt,
//! Kubernetes CRI, web access logs, the seed tool's `TS [TAG] body`, all 16 loghub systems, any
//! line with a timestamp near its start ([`stamp`]), and a user's `--pattern`.
//!
//! A [`LineFormat`] turns one text line into a [`ParsedLine`], or `None` when the line does not
//! match; callers join continuation lines (stack traces) onto the record before them and store
//! other unmatched lines raw with `parse_failed = true`, never skip them.

mod access;
mod container;
mod logfmt;
mod loghub;
mod pattern;
pub mod stamp;
mod timestamp;
mod triage;

use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::{Map, Value};

pub use loghub::{LoghubSystem, LOGHUB_SYSTEMS};
pub use pattern::Pattern;
pub use stamp::{Clock, StampKind, Zone};
pub use timestamp::{parse_rfc3339_micros, parse_ts, parse_ts_text};

use super::Micros;

/// What a format extracts from one line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedLine {
    pub ts: Micros,
    pub level: Option<String>,
    pub host: Option<String>,
    pub service: Option<String>,
    pub trace_id: Option<String>,
    pub msg: String,
    pub attrs: Map<String, Value>,
    /// The line had a time field that could not be read (`ts` is the receive time).
    pub failed: bool,
}

/// A line format for file ingest.
#[derive(Debug, Clone)]
pub enum LineFormat {
    /// One JSON object per line (any usual time/level/message keys; Docker json-file; ECS).
    Json,
    /// `key=value` pairs.
    Logfmt,
    /// Kubernetes CRI: `TS stdout|stderr P|F content`.
    Cri,
    /// Common/Combined Log Format (nginx, Apache access logs).
    AccessLog,
    /// `2024-01-15T10:30:45.123Z [ERROR] body` (the tag is optional).
    Triage,
    /// One of the loghub systems.
    Loghub(&'static LoghubSystem),
    /// Any line with a timestamp near its start; the usual kind is tried first.
    Stamped(Option<StampKind>),
    /// The user's `--pattern`.
    Pattern(Arc<Pattern>),
}

/// What detection chose, and how much of the sample it read.
#[derive(Debug, Clone)]
pub struct Detection {
    pub format: LineFormat,
    /// Sample lines the format parses, of `lines` non-empty ones.
    pub hits: usize,
    pub lines: usize,
}

/// The names `--format` takes.
pub const FORMAT_NAMES: &str =
    "auto, json (ndjson, docker), logfmt, cri, access (nginx, apache), triage, text (any line with a timestamp), loghub:<System>";

/// Lines that continue the record before them: indented lines, stack-trace headers and frames
/// (Java, Python, Go), closing brackets.
static CONTINUATION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:\s+\S|Caused by:|Traceback \(|\.\.\. \d+ (?:more|common frames)|goroutine \d+ \[|",
        r"panic: |[\]})]|[A-Za-z_$][\w$]*(?:\.[\w$]+)*(?:Exception|Error|Throwable)\b|",
        r"[\w.$/*()\[\]-]+\(.*\)$|created by )"
    ))
    .ok()
});

/// Whether `line` continues the record before it (for formats whose records span lines).
pub fn is_continuation(line: &str) -> bool {
    CONTINUATION.as_ref().is_some_and(|re| re.is_match(line))
}

impl LineFormat {
    /// Parses a `--format` name (case-insensitive); the error lists the names.
    pub fn from_name(name: &str) -> Result<LineFormat, String> {
        let lower = name.trim().to_ascii_lowercase();
        let f = match lower.as_str() {
            "json" | "ndjson" | "jsonl" | "docker" => LineFormat::Json,
            "logfmt" => LineFormat::Logfmt,
            "cri" | "kubernetes" | "k8s" => LineFormat::Cri,
            "access" | "nginx" | "apache" | "clf" | "combined" => LineFormat::AccessLog,
            "triage" => LineFormat::Triage,
            "text" | "stamped" | "plain" => LineFormat::Stamped(None),
            _ => {
                let sys = lower.strip_prefix("loghub:").ok_or_else(|| {
                    format!("unknown format {name:?}: use {FORMAT_NAMES}, or --pattern")
                })?;
                let system = LOGHUB_SYSTEMS
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(sys))
                    .ok_or_else(|| {
                        let names: Vec<&str> = LOGHUB_SYSTEMS.iter().map(|s| s.name).collect();
                        format!("unknown loghub system {sys:?}: one of {}", names.join(", "))
                    })?;
                LineFormat::Loghub(system)
            }
        };
        Ok(f)
    }

    /// Picks the format that parses most of `sample`; a specific format wins over plain
    /// timestamped lines unless those parse a tenth more of the sample.
    pub fn detect(sample: &[&str], clock: &Clock) -> Detection {
        let lines: Vec<&str> = sample
            .iter()
            .copied()
            .filter(|l| !l.trim().is_empty())
            .collect();
        let hits = |f: &LineFormat| lines.iter().filter(|l| f.parse(l, clock).is_some()).count();
        let mut specific = vec![
            LineFormat::Json,
            LineFormat::Cri,
            LineFormat::AccessLog,
            LineFormat::Triage,
        ];
        specific.extend(LOGHUB_SYSTEMS.iter().map(LineFormat::Loghub));
        specific.push(LineFormat::Logfmt);
        let mut best = Detection {
            format: LineFormat::Stamped(None),
            hits: 0,
            lines: lines.len(),
        };
        for f in specific {
            // JSON and CRI lines say what they are at their first byte: skip the rest early.
            let h = hits(&f);
            if h > best.hits {
                best.hits = h;
                best.format = f;
            }
            if best.hits == lines.len() && best.hits > 0 {
                break;
            }
        }
        // The most common stamp kind among the lines.
        let mut kinds: std::collections::BTreeMap<StampKind, usize> = Default::default();
        for l in &lines {
            if let Some(f) = stamp::find(l, clock, None) {
                *kinds.entry(f.kind).or_default() += 1;
            }
        }
        if let Some((kind, _)) = kinds
            .iter()
            .max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k)))
        {
            let stamped = LineFormat::Stamped(Some(*kind));
            let h = hits(&stamped);
            if h * 10 > best.hits * 11 || best.hits == 0 {
                best.hits = h;
                best.format = stamped;
            }
        }
        best
    }

    /// Short name for messages.
    pub fn name(&self) -> String {
        match self {
            LineFormat::Json => "json".into(),
            LineFormat::Logfmt => "logfmt".into(),
            LineFormat::Cri => "cri".into(),
            LineFormat::AccessLog => "access".into(),
            LineFormat::Triage => "triage".into(),
            LineFormat::Loghub(system) => format!("loghub:{}", system.name),
            LineFormat::Stamped(Some(k)) => {
                format!("text ({:?} timestamps at token {})", k.shape, k.token)
            }
            LineFormat::Stamped(None) => "text".into(),
            LineFormat::Pattern(_) => "pattern".into(),
        }
    }

    /// The service a file of this format is stored under unless one is given.
    pub fn default_service(&self) -> Option<String> {
        match self {
            LineFormat::Loghub(system) => Some(system.name.to_ascii_lowercase()),
            _ => None,
        }
    }

    /// Whether a line this format does not parse may continue the record before it.
    pub fn joins_lines(&self) -> bool {
        matches!(
            self,
            LineFormat::Triage
                | LineFormat::Loghub(_)
                | LineFormat::Stamped(_)
                | LineFormat::Pattern(_)
        )
    }

    /// For CRI: the line's content when it is a partial (`P`) line to be joined with the next.
    pub fn partial_content<'a>(&self, line: &'a str) -> Option<&'a str> {
        match self {
            LineFormat::Cri => container::split(line).and_then(|(_, _, p, c)| p.then_some(c)),
            _ => None,
        }
    }

    /// For CRI: the content of a line (the part joined after earlier partial lines).
    pub fn content<'a>(&self, line: &'a str) -> &'a str {
        match self {
            LineFormat::Cri => container::split(line).map_or(line, |(_, _, _, c)| c),
            _ => line,
        }
    }

    /// Parses one line; `None` when the line does not match the format.
    pub fn parse(&self, line: &str, clock: &Clock) -> Option<ParsedLine> {
        let line = line.trim_end_matches(['\r', '\n']);
        match self {
            LineFormat::Json => logfmt::parse_json(line, clock.now),
            LineFormat::Logfmt => logfmt::parse_logfmt(line, clock.now),
            LineFormat::Cri => container::parse(line),
            LineFormat::AccessLog => access::parse(line, clock),
            LineFormat::Triage => triage::parse(line),
            LineFormat::Loghub(system) => {
                let year = match clock.year {
                    Some(y) => y,
                    None => chrono::DateTime::from_timestamp_micros(clock.now)
                        .map_or(1970, |d| chrono::Datelike::year(&d)),
                };
                let p = system.parse(line, year);
                if clock.year.is_some()
                    || p.as_ref()
                        .is_some_and(|p| p.ts <= clock.now + 86_400_000_000)
                {
                    return p;
                }
                // A year-less line in the future is last year's; a Feb 29 the last leap year's.
                (year - 4..year)
                    .rev()
                    .filter_map(|y| system.parse(line, y))
                    .find(|p| p.ts <= clock.now + 86_400_000_000)
                    .or(p)
            }
            LineFormat::Stamped(hint) => stamped(line, clock, *hint),
            LineFormat::Pattern(p) => p.parse(line, clock),
        }
    }
}

/// A line with a timestamp near its start: the message is the line without the stamp, the
/// level the one the stamp carries (glog) or one named near it.
fn stamped(line: &str, clock: &Clock, hint: Option<StampKind>) -> Option<ParsedLine> {
    let found = stamp::find(line, clock, hint)?;
    let before = line[..found.start].trim_end_matches(['[', '(', ' ', '\t', '|', '"', '<']);
    let mut after = line[found.end..].trim_start_matches([']', ')', ' ', '\t', '|', ',', '"', '>']);
    let mut level = found.level;
    if level.is_none() {
        if let Some((l, rest)) = crate::model::level::leading_level(after) {
            level = Some(l);
            after = rest;
        }
    }
    let msg = match (before.is_empty(), after.is_empty()) {
        (true, _) => after.to_string(),
        (false, true) => before.to_string(),
        (false, false) => format!("{before} {after}"),
    };
    let level = level
        .or_else(|| crate::model::level::find_level(after))
        .or_else(|| crate::model::level::find_level(before))
        .map(str::to_string);
    Some(ParsedLine {
        ts: found.ts,
        level,
        msg,
        ..ParsedLine::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_709_251_200_000_000;

    fn detect(lines: &[&str]) -> String {
        LineFormat::detect(lines, &Clock::new(NOW)).format.name()
    }

    #[test]
    fn detection_prefers_the_specific_format() {
        assert_eq!(
            detect(&[r#"{"time":"2024-01-15T10:30:45Z","msg":"x"}"#]),
            "json"
        );
        assert_eq!(
            detect(&["ts=2024-01-15T10:30:45Z level=info msg=x"]),
            "logfmt"
        );
        assert_eq!(
            detect(&["2024-01-15T10:30:45.123456789Z stdout F hello"]),
            "cri"
        );
        assert_eq!(
            detect(&[
                r#"10.0.0.1 - - [15/Jan/2024:10:30:45 +0000] "GET / HTTP/1.1" 200 12 "-" "curl""#
            ]),
            "access"
        );
        assert_eq!(
            detect(&["2024/01/15 10:30:45 [error] 7#7: *1 open() failed"]),
            "text (Slashed timestamps at token 0)"
        );
    }

    #[test]
    fn continuation_lines() {
        for l in [
            "\tat com.shop.Pay.charge(Pay.java:42)",
            "Caused by: java.io.IOException: reset",
            "java.lang.IllegalStateException: boom",
            "Traceback (most recent call last):",
            "  File \"app.py\", line 3, in <module>",
            "ValueError: bad",
            "goroutine 1 [running]:",
            "main.main()",
            "... 12 more",
        ] {
            assert!(is_continuation(l), "{l}");
        }
        for l in ["this line matches no format at all", "GET /index.html", ""] {
            assert!(!is_continuation(l), "{l}");
        }
    }

    #[test]
    fn stamped_lines_keep_what_surrounds_the_stamp() {
        let p = stamped(
            "web-1 [2024-01-15 10:30:45] WARN disk 91%",
            &Clock::new(NOW),
            None,
        )
        .unwrap_or_default();
        assert_eq!(p.msg, "web-1 disk 91%");
        assert_eq!(p.level.as_deref(), Some("WARN"));
        assert_eq!(p.ts, 1_705_314_645_000_000);
    }
}
