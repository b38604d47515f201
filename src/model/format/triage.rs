//! The seed tool's line format: `2024-01-15T10:30:45.123Z [ERROR] body`, tag optional.

use serde_json::Map;

use super::{parse_rfc3339_micros, ParsedLine};

/// Parses `TS [TAG] body` or `TS body`.
pub(super) fn parse(line: &str) -> Option<ParsedLine> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (ts_text, rest) = line.split_once(' ').unwrap_or((line, ""));
    let ts = parse_rfc3339_micros(ts_text)?;
    let rest = rest.trim_start();
    let (level, msg) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((tag, body)) if !tag.is_empty() && !tag.contains(' ') => (
            Some(tag.to_string()),
            body.strip_prefix(' ').unwrap_or(body),
        ),
        _ => match crate::model::level::leading_level(rest) {
            Some((level, body)) => (Some(level.to_string()), body),
            None => (None, rest),
        },
    };
    Some(ParsedLine {
        ts,
        level,
        msg: msg.to_string(),
        attrs: Map::new(),
        ..ParsedLine::default()
    })
}
