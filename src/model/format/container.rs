//! Kubernetes CRI log lines: `2024-01-15T10:30:45.123456789Z stdout F message`, where a `P`
//! (partial) line continues in the next one (the reader joins them).

use serde_json::{Map, Value};

use super::{parse_rfc3339_micros, ParsedLine};

/// The parts of one CRI line: time, stream, whether it is partial, content.
pub(super) fn split(line: &str) -> Option<(i64, &str, bool, &str)> {
    let (ts, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let (tag, content) = rest.split_once(' ').unwrap_or((rest, ""));
    let partial = match tag.split(':').next()? {
        "P" => true,
        "F" => false,
        _ => return None,
    };
    Some((parse_rfc3339_micros(ts)?, stream, partial, content))
}

/// A CRI line (the content of joined partial lines already concatenated).
pub(super) fn parse(line: &str) -> Option<ParsedLine> {
    let (ts, stream, _, content) = split(line)?;
    let mut attrs = Map::new();
    attrs.insert("stream".into(), Value::String(stream.to_string()));
    Some(ParsedLine {
        ts,
        level: crate::model::level::find_level(content).map(str::to_string),
        msg: content.to_string(),
        attrs,
        ..ParsedLine::default()
    })
}
