//! Line formats of log files: the seed tool's `TS [TAG] body`, and the loghub system formats.
//!
//! A [`LineFormat`] turns one text line into a [`ParsedLine`], or `None` when the line does not
//! match; callers store unmatched lines raw with `parse_failed = true`, never skip them.

mod loghub;
mod timestamp;
mod triage;

use serde_json::{Map, Value};

pub use loghub::{LoghubSystem, LOGHUB_SYSTEMS};
pub use timestamp::{parse_rfc3339_micros, parse_ts, parse_ts_text};

use super::Micros;

/// What a format extracts from one line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedLine {
    pub ts: Micros,
    pub level: Option<String>,
    pub host: Option<String>,
    pub msg: String,
    pub attrs: Map<String, Value>,
}

/// A line format for file ingest.
#[derive(Debug, Clone)]
pub enum LineFormat {
    /// `2024-01-15T10:30:45.123Z [ERROR] body` (the tag is optional).
    Triage,
    /// One JSON event per line; decoded by the server, not here.
    Ndjson,
    /// One of the loghub systems; `year` fills year-less timestamps.
    Loghub {
        system: &'static LoghubSystem,
        year: i32,
    },
}

impl LineFormat {
    /// Parses a format name: `triage`, `ndjson` or `loghub:<System>` (case-insensitive).
    pub fn from_name(name: &str, year: i32) -> Option<LineFormat> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "triage" => Some(LineFormat::Triage),
            "ndjson" | "json" => Some(LineFormat::Ndjson),
            _ => {
                let sys = lower.strip_prefix("loghub:")?;
                let system = LOGHUB_SYSTEMS
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(sys))?;
                Some(LineFormat::Loghub { system, year })
            }
        }
    }

    /// Picks the format that parses most of `sample` (ties go to the first listed).
    pub fn detect(sample: &[&str], year: i32) -> LineFormat {
        let lines: Vec<&str> = sample
            .iter()
            .copied()
            .filter(|l| !l.trim().is_empty())
            .collect();
        if !lines.is_empty() && lines.iter().all(|l| l.trim_start().starts_with('{')) {
            return LineFormat::Ndjson;
        }
        let mut candidates = vec![LineFormat::Triage];
        candidates.extend(
            LOGHUB_SYSTEMS
                .iter()
                .map(|system| LineFormat::Loghub { system, year }),
        );
        let mut best = (0usize, LineFormat::Triage);
        for c in candidates {
            let hits = lines.iter().filter(|l| c.parse(l).is_some()).count();
            if hits > best.0 {
                best = (hits, c);
            }
        }
        best.1
    }

    /// Short name for messages.
    pub fn name(&self) -> String {
        match self {
            LineFormat::Triage => "triage".into(),
            LineFormat::Ndjson => "ndjson".into(),
            LineFormat::Loghub { system, .. } => format!("loghub:{}", system.name),
        }
    }

    /// The service a file of this format is stored under unless one is given.
    pub fn default_service(&self) -> Option<String> {
        match self {
            LineFormat::Loghub { system, .. } => Some(system.name.to_ascii_lowercase()),
            _ => None,
        }
    }

    /// Parses one line; `None` when the line does not match the format.
    pub fn parse(&self, line: &str) -> Option<ParsedLine> {
        match self {
            LineFormat::Triage => triage::parse(line),
            LineFormat::Ndjson => None,
            LineFormat::Loghub { system, year } => system.parse(line, *year),
        }
    }
}
