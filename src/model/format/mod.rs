//! Line formats of log files, detected per file: JSON lines (Docker json-file, ECS), logfmt,
//! Kubernetes CRI, web access logs, the seed tool's `TS [TAG] body`, PostgreSQL's server log,
//! syslog files (rsyslog, journalctl), all 16 loghub systems, any line with a timestamp near its
//! start ([`stamp`]), and a user's `--pattern`.
//!
//! A [`LineFormat`] turns one text line into a [`ParsedLine`], or `None` when the line does not
//! match. Detection is a judgement: a format counts a line only when what it read is plausible
//! (a level is a level word, a time is not in the future, a host looks like a host). Callers
//! join the lines that do not start a record onto the record before them (stack traces, blank
//! lines inside them, PostgreSQL's `DETAIL`), and store a line that joins nothing with the time
//! of the record before it and `parse_failed = true`, never skip it.

mod access;
mod container;
mod logfmt;
mod loghub;
mod pattern;
mod postgres;
pub mod stamp;
mod syslog;
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
    /// The line parses but continues the record before it (PostgreSQL's `DETAIL:` and
    /// `STATEMENT:` lines, apt's `End-Date:` after its `Start-Date:`).
    pub continues: bool,
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
    /// PostgreSQL's server log (`%m [%p] ` and the usual `log_line_prefix`es).
    Postgres,
    /// Syslog as rsyslog and journalctl write files: the program is the service.
    Syslog,
    /// One of the loghub systems.
    Loghub(&'static LoghubSystem),
    /// Any line with a timestamp near its start.
    Stamped(Stamped),
    /// The user's `--pattern`.
    Pattern(Arc<Pattern>),
}

/// How a file's timestamped lines look, as detection found them.
#[derive(Debug, Clone, Default)]
pub struct Stamped {
    /// The usual kind of stamp, tried first.
    pub kind: Option<StampKind>,
    /// The label before the stamp of a record's first line (`Start-Date:`) when every stamped
    /// line has a label and they differ: a stamped line with another label (`End-Date:`)
    /// continues the record.
    pub opener: Option<Arc<str>>,
}

/// What detection chose, and how much of the sample it read.
#[derive(Debug, Clone)]
pub struct Detection {
    pub format: LineFormat,
    /// Sample lines the format parses plausibly, of `lines` non-empty ones.
    pub hits: usize,
    pub lines: usize,
    /// Line numbers (1-based in the sample) of lines the format neither reads nor can join to
    /// a record: when there are many, the match is weak.
    pub unexplained: Vec<usize>,
}

impl Detection {
    /// Whether the chosen format reads too little of the sample to be trusted: fewer lines
    /// read as record starts than lines that neither start nor continue a record.
    pub fn weak(&self) -> bool {
        self.unexplained.len() > self.hits
    }
}

/// The names `--format` takes.
pub const FORMAT_NAMES: &str =
    "auto, json (ndjson, docker), logfmt, cri, access (nginx, apache), triage, postgres, syslog, text (any line with a timestamp), loghub:<System>";

const DAY: Micros = 86_400_000_000;

/// Lines that continue the record before them: indented lines, stack-trace headers and frames
/// (Java, Python, Go, Node), the sentences between chained Python tracebacks, Node's source
/// excerpt and version line, closing brackets.
static CONTINUATION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:\s+\S|Caused by:|Suppressed:|Traceback \(|\.\.\. \d+ (?:more|common frames)|",
        r"goroutine \d+ \[|panic: |[\]})]|Exception in thread |",
        r"(?:[A-Za-z_$][\w$]*\.)*[\w$]*(?:Exception|Error|Throwable)\b|",
        r"The above exception was the direct cause|During handling of the above exception|",
        r"Node\.js v\d|(?:/|[A-Za-z]:\\)\S+:\d+$|",
        r"[\w.$/*()\[\]-]+\(.*\)$|created by )"
    ))
    .ok()
});

/// Whether `line` continues the record before it (for formats whose records span lines).
pub fn is_continuation(line: &str) -> bool {
    CONTINUATION.as_ref().is_some_and(|re| re.is_match(line))
        || crate::model::level::level_label(line).is_some()
}

/// Whether what a format read from a line is believable: a level is a level word, a time is
/// not more than a day ahead of now, a host looks like a host.
fn plausible(p: &ParsedLine, clock: &Clock) -> bool {
    p.level.as_deref().is_none_or(crate::model::level::is_level)
        && (p.failed || p.ts <= clock.now + DAY)
        && p.host.as_deref().is_none_or(syslog::plausible_host)
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
            "postgres" | "postgresql" | "pg" => LineFormat::Postgres,
            "syslog" | "rsyslog" | "journald" | "journal" => LineFormat::Syslog,
            "text" | "stamped" | "plain" => LineFormat::Stamped(Stamped::default()),
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

    /// Picks the format that reads most of `sample` plausibly; a specific format wins over
    /// plain timestamped lines unless those read a tenth more of the sample. `sample` is the
    /// file's first lines, blank ones included (so an index is a line number).
    pub fn detect(sample: &[&str], clock: &Clock) -> Detection {
        let lines: Vec<&str> = sample
            .iter()
            .copied()
            .filter(|l| !l.trim().is_empty())
            .collect();
        // Judged on what the format read, before a non-level is moved out of `level`.
        let reads = |f: &LineFormat, l: &str| {
            let l = l.trim_end_matches(['\r', '\n']);
            f.parse_fields(l, clock)
                .is_some_and(|p| plausible(&p, clock))
        };
        let hits = |f: &LineFormat| lines.iter().filter(|l| reads(f, l)).count();
        let mut specific = vec![
            LineFormat::Json,
            LineFormat::Cri,
            LineFormat::AccessLog,
            LineFormat::Postgres,
            LineFormat::Syslog,
            LineFormat::Triage,
        ];
        specific.extend(LOGHUB_SYSTEMS.iter().map(LineFormat::Loghub));
        specific.push(LineFormat::Logfmt);
        let mut best = (LineFormat::Stamped(Stamped::default()), 0);
        for f in specific {
            let h = hits(&f);
            if h > best.1 {
                best = (f, h);
            }
            if best.1 == lines.len() && best.1 > 0 {
                break;
            }
        }
        let stamped = LineFormat::Stamped(stamped_shape(&lines, clock));
        let h = hits(&stamped);
        if h * 10 > best.1 * 11 || best.1 == 0 {
            best = (stamped, h);
        }
        let unexplained = sample
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !is_continuation(l) && !reads(&best.0, l))
            .map(|(i, _)| i + 1)
            .collect();
        Detection {
            format: best.0,
            hits: best.1,
            lines: lines.len(),
            unexplained,
        }
    }

    /// Short name for messages.
    pub fn name(&self) -> String {
        match self {
            LineFormat::Json => "json".into(),
            LineFormat::Logfmt => "logfmt".into(),
            LineFormat::Cri => "cri".into(),
            LineFormat::AccessLog => "access".into(),
            LineFormat::Triage => "triage".into(),
            LineFormat::Postgres => "postgres".into(),
            LineFormat::Syslog => "syslog".into(),
            LineFormat::Loghub(system) => format!("loghub:{}", system.name),
            LineFormat::Stamped(Stamped {
                kind: Some(k),
                opener,
            }) => {
                let opens = opener
                    .as_ref()
                    .map(|o| format!(", records open with {o:?}"))
                    .unwrap_or_default();
                format!(
                    "text ({:?} timestamps at token {}{opens})",
                    k.shape, k.token
                )
            }
            LineFormat::Stamped(_) => "text".into(),
            LineFormat::Pattern(_) => "pattern".into(),
        }
    }

    /// Whether every line this format does not parse continues the record before it (a record
    /// runs from one timestamped line to the next); otherwise only lines that look like
    /// continuations ([`is_continuation`]) do.
    pub fn joins_lines(&self) -> bool {
        !matches!(
            self,
            LineFormat::Json | LineFormat::Cri | LineFormat::Logfmt | LineFormat::AccessLog
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

    /// Parses one line; `None` when the line does not match the format. A level field that
    /// holds no level word is kept in `attrs.level_text`, never stored as the level.
    pub fn parse(&self, line: &str, clock: &Clock) -> Option<ParsedLine> {
        let mut p = self.parse_fields(line, clock)?;
        if let Some(level) = p.level.take_if(|l| !crate::model::level::is_level(l)) {
            p.attrs.insert("level_text".into(), Value::String(level));
        }
        Some(p)
    }

    fn parse_fields(&self, line: &str, clock: &Clock) -> Option<ParsedLine> {
        let line = line.trim_end_matches(['\r', '\n']);
        match self {
            LineFormat::Json => logfmt::parse_json(line, clock.now),
            LineFormat::Logfmt => logfmt::parse_logfmt(line, clock.now),
            LineFormat::Cri => container::parse(line),
            LineFormat::AccessLog => access::parse(line, clock),
            LineFormat::Triage => triage::parse(line),
            LineFormat::Postgres => postgres::parse(line, clock),
            LineFormat::Syslog => syslog::parse(line, clock),
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
            LineFormat::Stamped(s) => stamped(line, clock, s),
            LineFormat::Pattern(p) => p.parse(line, clock),
        }
    }
}

/// The usual stamp of the sample's lines, and the label that opens a record when every stamped
/// line has a label before its stamp and they differ (apt's `Start-Date:` … `End-Date:`).
fn stamped_shape(lines: &[&str], clock: &Clock) -> Stamped {
    let found: Vec<(&str, stamp::Found)> = lines
        .iter()
        .filter_map(|l| stamp::find(l, clock, None).map(|f| (*l, f)))
        .collect();
    let mut kinds: std::collections::BTreeMap<StampKind, usize> = Default::default();
    for (_, f) in &found {
        *kinds.entry(f.kind).or_default() += 1;
    }
    let Some(kind) = kinds
        .iter()
        .max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k)))
        .map(|(k, _)| *k)
    else {
        return Stamped::default();
    };
    let labels: Vec<&str> = found
        .iter()
        .filter(|(_, f)| f.kind == kind)
        .map(|(l, f)| l[..f.start].trim())
        .collect();
    // `Start-Date:`, `Log started:`; not a level (`INFO: 2009/11/10 …` is Go's log prefix).
    let is_label = |l: &&str| {
        l.strip_suffix(':').is_some_and(|w| {
            w.bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b' ')
                && !crate::model::level::is_level(w)
        })
    };
    let mut distinct = labels.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let opener = (labels.len() >= 2 && distinct.len() == 2 && labels.iter().all(is_label))
        .then(|| Arc::from(labels[0]));
    Stamped {
        kind: Some(kind),
        opener,
    }
}

/// A line that begins with a time, read as text: a record of its own in a file whose format
/// cannot read it (a syslog line with an odd tag), rather than part of the record before it.
pub fn begins_with_time(line: &str, clock: &Clock) -> Option<ParsedLine> {
    let found = stamp::at_first_token(line, clock)?;
    let shape = Stamped {
        kind: Some(found.kind),
        opener: None,
    };
    stamped(line, clock, &shape)
}

/// A line with a timestamp near its start: the message is the line without the stamp, the
/// level the one the stamp carries (glog) or one named near it.
fn stamped(line: &str, clock: &Clock, shape: &Stamped) -> Option<ParsedLine> {
    let found = stamp::find(line, clock, shape.kind)?;
    let label = line[..found.start].trim();
    // In a file whose records open with a label (`Start-Date:`), a line is kept whole.
    let labelled = shape.opener.is_some();
    let continues = shape.opener.as_deref().is_some_and(|o| o != label);
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
        msg: if labelled { line.to_string() } else { msg },
        continues,
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
    fn labels_open_records_only_in_pairs_that_are_not_levels() {
        let clock = Clock::new(NOW);
        let apt = [
            "Start-Date: 2024-01-15  10:30:45",
            "Commandline: apt-get install curl",
            "End-Date: 2024-01-15  10:30:50",
        ];
        let opener = stamped_shape(&apt, &clock).opener;
        assert_eq!(opener.as_deref(), Some("Start-Date:"));
        // Go's log.New(w, "INFO: ", LstdFlags): each line is a record.
        let go = [
            "INFO: 2024/01/15 10:30:45 started",
            "ERROR: 2024/01/15 10:30:46 failed",
        ];
        assert_eq!(stamped_shape(&go, &clock).opener, None);
        let p = begins_with_time("Jan 15 10:30:45 web-1 ERROR boom", &clock).unwrap_or_default();
        assert_eq!(
            (p.ts, p.level.as_deref()),
            (1_705_314_645_000_000, Some("ERROR"))
        );
        assert!(begins_with_time("\tat com.x.Y(Y.java:1)", &clock).is_none());
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
            "Exception in thread \"main\" java.lang.RuntimeException: x",
            "Error: boom",
            "The above exception was the direct cause of the following exception:",
            "/srv/app/server.js:12",
            "Node.js v20.20.2",
            "SEVERE: request failed",
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
            &Stamped::default(),
        )
        .unwrap_or_default();
        assert_eq!(p.msg, "web-1 disk 91%");
        assert_eq!(p.level.as_deref(), Some("WARN"));
        assert_eq!(p.ts, 1_705_314_645_000_000);
    }
}
