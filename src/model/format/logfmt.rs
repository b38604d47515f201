//! logfmt lines (`ts=2024-01-15T10:30:45Z level=warn msg="slow query" dur=1.2s`) and JSON lines
//! (any of the usual time, message and level keys, ECS objects, Docker's json-file `log` lines),
//! both mapped by [`fields::json_fields`](crate::model::fields::json_fields).

use serde_json::{Map, Value};

use super::ParsedLine;
use crate::model::fields;
use crate::model::Micros;

/// The pairs of a logfmt line, or `None` when fewer than two-thirds of its tokens are pairs.
pub(super) fn pairs(line: &str) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let (mut tokens, mut kv) = (0usize, 0usize);
    let mut rest = line.trim();
    while !rest.is_empty() {
        tokens += 1;
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        if let Some(after) = rest.strip_prefix('=') {
            let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(match n {
                                    'n' => '\n',
                                    't' => '\t',
                                    other => other,
                                });
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (after[..end].to_string(), &after[end..])
            };
            if !key.is_empty() {
                kv += 1;
                out.insert(key.to_string(), Value::String(value));
            }
            rest = tail.trim_start();
        } else {
            rest = rest.trim_start();
        }
        if key_end == 0 && !rest.starts_with('=') && tokens > 64 {
            break;
        }
    }
    (kv >= 2 && kv * 3 >= tokens * 2).then_some(out)
}

/// A JSON or logfmt document as a parsed line.
pub(super) fn document(doc: Map<String, Value>, now: Micros) -> ParsedLine {
    let mapped = fields::json_fields(doc);
    let mut msg = mapped.msg;
    // Docker's json-file keeps the line's newline.
    if msg.ends_with('\n') {
        msg.pop();
        if msg.ends_with('\r') {
            msg.pop();
        }
    }
    ParsedLine {
        ts: mapped.ts.unwrap_or(now),
        level: mapped.routed.level,
        host: mapped.routed.host,
        service: mapped.routed.service,
        trace_id: mapped.routed.trace_id,
        msg,
        attrs: mapped.routed.attrs,
        failed: mapped.ts.is_none(),
        continues: false,
    }
}

pub(super) fn parse_logfmt(line: &str, now: Micros) -> Option<ParsedLine> {
    let doc = pairs(line)?;
    let p = document(doc, now);
    (!p.failed).then_some(p)
}

pub(super) fn parse_json(line: &str, now: Micros) -> Option<ParsedLine> {
    match serde_json::from_str::<Value>(line.trim()) {
        Ok(Value::Object(doc)) => Some(document(doc, now)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_pairs_and_quotes() {
        let p = parse_logfmt(
            r#"ts=2024-01-15T10:30:45Z level=warn msg="slow \"query\"" dur=1.2s app=api"#,
            0,
        )
        .unwrap_or_default();
        assert_eq!(p.ts, 1_705_314_645_000_000);
        assert_eq!(p.level.as_deref(), Some("WARN"));
        assert_eq!(p.msg, r#"slow "query""#);
        assert_eq!(p.service.as_deref(), Some("api"));
        assert_eq!(p.attrs.get("dur"), Some(&Value::from("1.2s")));
        assert!(parse_logfmt("just words and a=b", 0).is_none());
    }

    #[test]
    fn docker_json_file_lines() {
        let p = parse_json(
            r#"{"log":"GET / 200\n","stream":"stdout","time":"2024-01-15T10:30:45.123456789Z"}"#,
            0,
        )
        .unwrap_or_default();
        assert_eq!((p.msg.as_str(), p.ts), ("GET / 200", 1_705_314_645_123_456));
        assert_eq!(p.attrs.get("stream"), Some(&Value::from("stdout")));
    }
}
