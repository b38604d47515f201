//! Shipper field names onto the `logs` columns: which label, attribute or ECS key is the service,
//! host, level or trace id, and everything else kept in `attrs`.
//!
//! Loki labels, OTLP attributes, Elasticsearch documents and JSON lines name the same things
//! differently (`service.name`, `service_name`, `app`, `job`…). Each column takes the best-ranked
//! name present; the losers stay in `attrs`, so no value is lost.

use serde_json::{Map, Value};

use super::format::parse_ts;
use super::level::normalize_field;
use super::{LogRecord, Micros, DEFAULT_TENANT};

/// Names that fill a column, best first (matched without regard to case).
pub const SERVICE: &[&str] = &[
    "service.name",
    "service_name",
    "service",
    "app",
    "application",
    "app_name",
    "appname",
    "job",
    "container_name",
    "container",
    // journald's JSON export (`journalctl -o json`).
    "syslog_identifier",
];
pub const HOST: &[&str] = &[
    "host.name",
    "host",
    "hostname",
    "host.hostname",
    "host_name",
    "instance",
    "node",
    "nodename",
    "_hostname",
];
pub const LEVEL: &[&str] = &[
    "level",
    "log.level",
    "severity",
    "severity_text",
    "error_severity",
    "detected_level",
    "levelname",
    "loglevel",
    "log_level",
    "lvl",
    "priority",
];
pub const TRACE: &[&str] = &["trace_id", "trace.id", "traceid"];

/// The columns a set of fields fills, and the fields left for `attrs`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Routed {
    pub service: Option<String>,
    pub host: Option<String>,
    /// Normalised (TRACE … FATAL, unknown kept).
    pub level: Option<String>,
    pub trace_id: Option<String>,
    pub attrs: Map<String, Value>,
}

fn rank(names: &[&str], key: &str) -> Option<usize> {
    names.iter().position(|n| n.eq_ignore_ascii_case(key))
}

/// A label value as text (a string as is, anything else as JSON); `None` for null or empty.
pub fn label_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(_) | Value::Array(_) => None,
        other => Some(other.to_string()),
    }
}

/// Of `keys`, the one best ranked among `names` (matched without regard to case).
pub fn best_key<'a>(
    keys: impl IntoIterator<Item = &'a String>,
    names: &[&str],
) -> Option<&'a String> {
    keys.into_iter()
        .filter_map(|k| rank(names, k).map(|r| (r, k)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, k)| k)
}

/// A level field's value as a level; a `priority` counts only as journald writes it, `PRIORITY`
/// with syslog's 0–7 (a job queue's `"priority": 1` or a ticket's `"high"` is no level).
pub fn level_value(key: &str, value: &str) -> Option<String> {
    let numeric = matches!(value.trim(), "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7");
    let journald = key == "PRIORITY" && numeric;
    (!key.eq_ignore_ascii_case("priority") || journald).then(|| normalize_field(key, value))
}

/// Routes `fields` (in order; a later duplicate key replaces an earlier one in `attrs`).
pub fn route(fields: impl IntoIterator<Item = (String, Value)>) -> Routed {
    let mut attrs = Map::new();
    // (rank, key) of the field chosen for each column so far.
    let mut best: [Option<(usize, String)>; 4] = Default::default();
    for (key, value) in fields {
        if value.is_null() {
            continue;
        }
        if let Some(text) = label_text(&value) {
            for (slot, names) in [SERVICE, HOST, LEVEL, TRACE].iter().enumerate() {
                if slot == 2 && level_value(&key, &text).is_none() {
                    continue;
                }
                if let Some(r) = rank(names, &key) {
                    if best[slot].as_ref().is_none_or(|(b, _)| r < *b) {
                        best[slot] = Some((r, key.clone()));
                    }
                }
            }
        }
        attrs.insert(key, value);
    }
    let level_key = best[2].as_ref().map(|(_, k)| k.clone()).unwrap_or_default();
    let mut take = |slot: usize| {
        let (_, key) = best[slot].take()?;
        attrs.remove(&key).as_ref().and_then(label_text)
    };
    let service = take(0);
    let host = take(1);
    let level = take(2).map(|l| normalize_field(&level_key, &l));
    let trace_id = take(3);
    Routed {
        service,
        host,
        level,
        trace_id,
        attrs,
    }
}

impl Routed {
    /// The record these fields describe: `ts` (the receive time when `None`), the columns
    /// routed (`unknown`/`UNKNOWN` when absent), `attrs` as JSON, `msg` cut to the limit.
    pub fn into_record(self, ts: Option<Micros>, now: Micros, msg: String) -> LogRecord {
        let mut r = LogRecord {
            ts: ts.unwrap_or(now),
            ingest_ts: now,
            tenant: DEFAULT_TENANT.into(),
            service: self.service.unwrap_or_else(|| "unknown".into()),
            host: self.host.unwrap_or_else(|| "unknown".into()),
            level: self.level.unwrap_or_else(|| "UNKNOWN".into()),
            msg,
            trace_id: self.trace_id,
            attrs: Value::Object(self.attrs).to_string(),
            ..LogRecord::default()
        };
        r.enforce_msg_limit();
        r
    }
}

/// Keys that hold an event's time in JSON documents, best first.
pub const TIME_KEYS: &[&str] = &[
    "@timestamp",
    "timestamp",
    "time",
    "ts",
    "t",
    "date",
    "datetime",
    // journald's JSON export: µs since the epoch, as text.
    "__realtime_timestamp",
];
/// Keys that hold an event's message in JSON documents, best first.
pub const MESSAGE_KEYS: &[&str] = &["message", "msg", "log", "body", "text", "event.original"];

/// What a JSON document says: its time (`None` when absent or unreadable), message, and
/// routed labels; `failed` when a time key was there but could not be read.
#[derive(Debug, Clone, Default)]
pub struct JsonFields {
    pub ts: Option<Micros>,
    pub msg: String,
    pub routed: Routed,
    pub failed: bool,
}

/// Maps one JSON document (an Elasticsearch `_bulk` source, a JSON or logfmt log line): nested
/// ECS objects lifted, the best time key parsed (kept in `attrs` when it cannot be read), the
/// best message key as `msg` (the whole document when it has none, so text search still finds
/// it), the labels routed, everything else in `attrs`.
pub fn json_fields(mut doc: Map<String, Value>) -> JsonFields {
    // `/v1/ingest`'s own convention: a `meta` object holds the attributes.
    if matches!(doc.get("meta"), Some(Value::Object(_))) {
        if let Some(Value::Object(meta)) = doc.remove("meta") {
            for (k, v) in meta {
                doc.entry(k).or_insert(v);
            }
        }
    }
    lift_nested(&mut doc);
    let pick = |doc: &Map<String, Value>, names: &[&str]| {
        names
            .iter()
            .find_map(|n| doc.keys().find(|k| k.eq_ignore_ascii_case(n)).cloned())
    };
    let mut failed = false;
    let mut ts = None;
    if let Some(key) = pick(&doc, TIME_KEYS) {
        ts = doc.get(&key).and_then(parse_ts);
        // `t` or `date` may mean something else: only a time since 2000 counts as one there.
        let loose = matches!(key.to_ascii_lowercase().as_str(), "t" | "date" | "datetime");
        if loose && ts.is_some_and(|t| t < 946_684_800_000_000) {
            ts = None;
        } else if ts.is_some() {
            doc.remove(&key);
        } else if !loose {
            failed = true;
        }
    }
    let msg = match pick(&doc, MESSAGE_KEYS).and_then(|k| doc.remove(&k)) {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => Value::Object(doc.clone()).to_string(),
    };
    JsonFields {
        ts,
        msg,
        routed: route(doc),
        failed,
    }
}

/// [`json_fields`] as a record (the receive time when the document has no readable time).
pub fn json_event(doc: Map<String, Value>, now: Micros) -> LogRecord {
    let f = json_fields(doc);
    let mut r = f.routed.into_record(f.ts, now, f.msg);
    r.parse_failed = f.failed;
    r
}

/// ECS-style dotted names that may arrive as nested objects (`{"log":{"level":"error"}}`).
const NESTED: &[&str] = &[
    "log.level",
    "service.name",
    "host.name",
    "host.hostname",
    "trace.id",
];

/// Lifts the nested objects of [`NESTED`] names to dotted keys, so [`route`] sees them; an
/// object left empty is removed, one with other keys stays in place.
pub fn lift_nested(doc: &mut Map<String, Value>) {
    for path in NESTED {
        let Some((outer, inner)) = path.split_once('.') else {
            continue;
        };
        let Some(Value::Object(obj)) = doc.get_mut(outer) else {
            continue;
        };
        let Some(v) = obj.remove(inner) else {
            continue;
        };
        if obj.is_empty() {
            doc.remove(outer);
        }
        doc.insert((*path).to_string(), v);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_journald_priority_is_a_level() {
        assert_eq!(level_value("PRIORITY", "3").as_deref(), Some("ERROR"));
        assert_eq!(level_value("priority", "1"), None);
        assert_eq!(level_value("PRIORITY", "high"), None);
        assert_eq!(level_value("level", "warning").as_deref(), Some("WARN"));
    }

    use super::*;
    use serde_json::json;

    fn pairs(v: Value) -> Vec<(String, Value)> {
        match v {
            Value::Object(m) => m.into_iter().collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn best_ranked_name_wins_and_losers_stay_in_attrs() {
        let r = route(pairs(json!({
            "job": "ns/api", "app": "api", "instance": "10.0.0.1:9100",
            "detected_level": "warn", "env": "prod", "traceID": "abc"
        })));
        assert_eq!(r.service.as_deref(), Some("api"));
        assert_eq!(r.host.as_deref(), Some("10.0.0.1:9100"));
        assert_eq!(r.level.as_deref(), Some("WARN"));
        assert_eq!(r.trace_id.as_deref(), Some("abc"));
        assert_eq!(
            r.attrs,
            pairs(json!({"job": "ns/api", "env": "prod"}))
                .into_iter()
                .collect::<serde_json::Map<String, serde_json::Value>>()
        );
    }

    #[test]
    fn nested_ecs_objects_are_lifted() {
        let mut doc = json!({
            "log": {"level": "error", "logger": "x"},
            "host": {"name": "web-1"},
            "service": {"name": "shop"},
            "trace": {"id": "t1"},
            "message": "m"
        });
        let Value::Object(m) = &mut doc else {
            unreachable!()
        };
        lift_nested(m);
        let r = route(m.clone());
        assert_eq!(r.service.as_deref(), Some("shop"));
        assert_eq!(r.host.as_deref(), Some("web-1"));
        assert_eq!(r.level.as_deref(), Some("ERROR"));
        assert_eq!(r.trace_id.as_deref(), Some("t1"));
        assert_eq!(r.attrs.get("log"), Some(&json!({"logger": "x"})));
        assert!(r.attrs.contains_key("message"));
    }

    #[test]
    fn json_documents_map_time_message_and_labels() {
        let Value::Object(doc) = json!({
            "@timestamp": "2024-01-15T10:30:45.123Z", "message": "card declined",
            "log": {"level": "error"}, "service": {"name": "payments"}, "user": {"id": 7}
        }) else {
            unreachable!()
        };
        let r = json_event(doc, 5);
        assert_eq!(r.ts, 1_705_314_645_123_000);
        assert_eq!(
            (r.msg.as_str(), r.level.as_str(), r.service.as_str()),
            ("card declined", "ERROR", "payments")
        );
        assert_eq!(r.attrs, r#"{"user":{"id":7}}"#);
        assert!(!r.parse_failed);
        let Value::Object(doc) = json!({"time": "soon", "cpu": 3}) else {
            unreachable!()
        };
        let r = json_event(doc, 5);
        assert!(r.parse_failed);
        assert_eq!(r.ts, 5);
        assert_eq!(r.msg, r#"{"cpu":3,"time":"soon"}"#);
    }

    #[test]
    fn meta_objects_hold_attributes() {
        let Value::Object(doc) = json!({"ts": "2024-01-15T10:30:45Z", "msg": "m", "meta": {"trace_id": "t9", "user": "u"}})
        else {
            unreachable!()
        };
        let f = json_fields(doc);
        assert_eq!(f.routed.trace_id.as_deref(), Some("t9"));
        assert_eq!(f.routed.attrs.get("user"), Some(&json!("u")));
    }

    #[test]
    fn structured_values_are_not_labels() {
        let r = route(pairs(json!({"service": {"a": 1}, "host": ""})));
        assert_eq!(r.service, None);
        assert_eq!(r.attrs.get("service"), Some(&json!({"a": 1})));
        assert_eq!(r.host, None);
    }
}
