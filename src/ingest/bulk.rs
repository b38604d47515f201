//! Elasticsearch `_bulk` bodies: NDJSON action/document pairs to records, with one result per
//! action in the order sent, as Elasticsearch answers them.
//!
//! `index` and `create` store their document (ECS keys mapped by [`fields::json_fields`]);
//! `delete` and `update` are refused per item (logs are append-only). A document line that is
//! not JSON is stored raw with `parse_failed`; a line where an action was expected that is not
//! one is stored as a document of an implied `index` — no line is dropped.

use serde_json::{Map, Value};

use super::decode::kept;
use super::limits::{self, LimitError};
use super::measure::{json::measure_value, MeasureError};
use crate::model::fields;
use crate::model::{LogRecord, Micros};

/// What became of one action.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stored as `records[n]`.
    Stored(usize),
    /// Refused: Elasticsearch's error type and a reason.
    Refused { kind: &'static str, reason: String },
}

/// One action of the body, for the per-item response.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `index`, `create`, `update` or `delete`.
    pub action: &'static str,
    pub index: String,
    /// The `_id` given, else `None` (the response makes one).
    pub id: Option<String>,
    pub outcome: Outcome,
}

/// A decoded `_bulk` body.
#[derive(Debug, Default)]
pub struct Bulk {
    pub records: Vec<LogRecord>,
    pub items: Vec<Item>,
}

/// An action line's verb and metadata, if the line is one.
fn action_of(line: &str) -> Option<(&'static str, Map<String, Value>)> {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) else {
        return None;
    };
    if m.len() != 1 {
        return None;
    }
    let (verb, meta) = m.into_iter().next()?;
    let verb = match verb.as_str() {
        "index" => "index",
        "create" => "create",
        "update" => "update",
        "delete" => "delete",
        _ => return None,
    };
    match meta {
        Value::Object(meta) => Some((verb, meta)),
        _ => None,
    }
}

/// Decodes a body; `path_index` is the `{index}` of `/{index}/_bulk`, the default for actions.
/// More than [`MAX_RECORDS`](limits::MAX_RECORDS) actions are refused before any is built.
pub fn decode_bulk(body: &str, path_index: Option<&str>, now: Micros) -> Result<Bulk, LimitError> {
    let lines = body.split('\n').filter(|l| !l.trim().is_empty()).count();
    // A delete carries no document line: the actions are at most the lines.
    if lines > 2 * limits::MAX_RECORDS {
        return Err(LimitError::Records { records: lines / 2 });
    }
    limits::check(lines / 2, body.len().saturating_mul(2))?;
    let mut out = Bulk::default();
    let mut lines = body
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty());
    let default_index = path_index.unwrap_or("logs");
    while let Some(line) = lines.next() {
        let (verb, meta, doc_line) = match action_of(measured(line)?) {
            Some((verb, meta)) if verb == "delete" => (verb, meta, None),
            Some((verb, meta)) => (verb, meta, Some(lines.next().map(measured).transpose()?)),
            None => ("index", Map::new(), Some(Some(line))),
        };
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .unwrap_or(default_index)
            .to_string();
        let id = meta.get("_id").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let outcome = match (verb, doc_line) {
            ("index" | "create", Some(Some(doc))) => {
                let mut meta = Map::new();
                meta.insert("_index".into(), Value::String(index.clone()));
                if let Some(id) = &id {
                    meta.insert("_id".into(), Value::String(id.clone()));
                }
                out.records.push(document(doc, meta, now));
                Outcome::Stored(out.records.len() - 1)
            }
            ("index" | "create", _) => Outcome::Refused {
                kind: "action_request_validation_exception",
                reason: format!("the {verb} action has no document line after it"),
            },
            _ => Outcome::Refused {
                kind: "illegal_argument_exception",
                reason: format!(
                    "{verb} is not supported: logs are append-only; use index or create"
                ),
            },
        };
        out.items.push(Item {
            action: verb,
            index,
            id,
            outcome,
        });
    }
    Ok(out)
}

/// Lines longer than this are measured before they are decoded into a generic value (a shorter
/// one cannot build more than a few dozen times its size).
const MEASURED_LINE_BYTES: usize = 16 << 10;

/// `line`, once measured if it is long: refused if its value would build more than the limits
/// allow (text that is not JSON is kept raw, so it passes).
fn measured(line: &str) -> Result<&str, LimitError> {
    if line.len() > MEASURED_LINE_BYTES {
        if let Err(MeasureError::Limit(limit)) = measure_value(line) {
            return Err(limit);
        }
    }
    Ok(line)
}

/// One document line: a JSON object mapped by [`fields::json_fields`], anything else raw.
/// `meta` (the action's `_index` and `_id`) joins the document's attributes.
fn document(line: &str, meta: Map<String, Value>, now: Micros) -> LogRecord {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(doc)) => {
            let mut f = fields::json_fields(doc);
            f.routed.attrs.extend(meta);
            let mut r = f.routed.into_record(f.ts, now, f.msg);
            r.parse_failed = f.failed;
            r
        }
        _ => {
            let routed = fields::Routed {
                attrs: meta,
                ..fields::Routed::default()
            };
            let mut r = routed.into_record(None, now, kept(line).to_string());
            r.parse_failed = true;
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_pair_with_documents_and_every_line_is_kept() {
        let body = concat!(
            r#"{"index":{"_index":"app-logs","_id":"1"}}"#,
            "\n",
            r#"{"@timestamp":"2024-01-15T10:30:45Z","message":"hi","log.level":"warn"}"#,
            "\n",
            r#"{"create":{}}"#,
            "\n",
            "not json at all\n",
            r#"{"delete":{"_id":"1"}}"#,
            "\n",
            r#"{"update":{"_id":"1"}}"#,
            "\n",
            r#"{"doc":{"a":1}}"#,
            "\n",
            r#"{"message":"no action line"}"#,
            "\n",
            r#"{"index":{}}"#,
            "\n",
        );
        let b = decode_bulk(body, Some("dflt"), 9).unwrap_or_default();
        assert_eq!(b.records.len(), 3);
        assert_eq!(b.items.len(), 6);
        assert_eq!(b.records[0].level, "WARN");
        assert_eq!(b.records[0].ts, 1_705_314_645_000_000);
        assert!(b.records[0].attrs.contains(r#""_index":"app-logs""#));
        assert!(b.records[1].parse_failed && b.records[1].msg == "not json at all");
        assert!(b.records[1].attrs.contains(r#""_index":"dflt""#));
        assert_eq!(b.records[2].msg, "no action line");
        assert!(matches!(b.items[2].outcome, Outcome::Refused { .. }));
        assert!(matches!(b.items[3].outcome, Outcome::Refused { .. }));
        assert!(
            matches!(b.items[5].outcome, Outcome::Refused { .. }),
            "index without document"
        );
    }
}
