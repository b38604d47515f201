//! Loki push (`POST /loki/api/v1/push`): the protobuf body (snappy block-compressed, as every
//! Loki client sends it) and the JSON body, to records.
//!
//! Stream labels go through [`fields::route`] (`service_name`, `app`, `job` → `service`; `host`,
//! `instance` → `host`; `level`, `detected_level` → `level`), the rest, and each entry's
//! structured metadata, to `attrs`. A line without a level label gets one found in its text.

use prost::Message;
use serde_json::{Map, Value};

use super::decode::Decoded;
use super::limits::LimitError;
use super::measure::shapes::{LOKI_JSON, LOKI_PUSH};
use super::measure::{json, proto, Kind, MeasureError};
use crate::model::epoch::{self, Unit};
use crate::model::fields;
use crate::model::format::parse_rfc3339_micros;
use crate::model::level::find_level;
use crate::model::{LogRecord, Micros, MAX_MSG_BYTES};

/// Why a push body is refused whole (Loki answers these with 400 and the reason as text).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LokiError {
    #[error("snappy: {0}")]
    Snappy(String),
    #[error("the snappy body claims {claimed} bytes decompressed; at most {max} are accepted")]
    TooLarge { claimed: usize, max: usize },
    #[error("protobuf PushRequest: {0}")]
    Protobuf(String),
    #[error("JSON push body: {0}")]
    Json(String),
    #[error(transparent)]
    Limit(#[from] LimitError),
}

impl LokiError {
    fn measured(e: MeasureError) -> LokiError {
        match e {
            MeasureError::Limit(limit) => LokiError::Limit(limit),
            MeasureError::Wire(why) => LokiError::Protobuf(why.to_string()),
            MeasureError::Json(why) => LokiError::Json(why),
        }
    }
}

pub use super::loki_push::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};

/// Decodes a snappy-compressed protobuf push: one that claims more than `max` bytes is refused
/// before it is decompressed, one whose entries would take more than the limits before any
/// is built.
pub fn decode_protobuf(body: &[u8], max: usize, now: Micros) -> Result<Decoded, LokiError> {
    let claimed = snap::raw::decompress_len(body).map_err(|e| LokiError::Snappy(e.to_string()))?;
    if claimed > max {
        return Err(LokiError::TooLarge { claimed, max });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| LokiError::Snappy(e.to_string()))?;
    proto::measure(&raw, &LOKI_PUSH).map_err(LokiError::measured)?;
    let push = PushRequest::decode(&raw[..]).map_err(|e| LokiError::Protobuf(e.to_string()))?;
    let mut out = Decoded::default();
    for stream in push.streams {
        let labels = parse_labels(&stream.labels);
        for entry in stream.entries {
            // Nanoseconds, as Loki's spec fixes them; one no row can hold is kept in attrs.
            let ns = entry
                .timestamp
                .map(|t| i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos));
            let ts = ns.and_then(|ns| epoch::from_int_in(ns, Unit::Nanos));
            let invalid = ns
                .filter(|_| ts.is_none())
                .map(|ns| ("_invalid_ts".to_string(), Value::String(ns.to_string())));
            let meta = entry
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, Value::String(p.value)))
                .chain(invalid.clone());
            // Only what the message keeps is converted (a char is at most 4 bytes).
            let line = &entry.line[..entry.line.len().min(MAX_MSG_BYTES + 4)];
            let line = String::from_utf8_lossy(line).into_owned();
            let mut r = entry_record(&labels, meta, ts, line, now);
            r.parse_failed |= invalid.is_some();
            out.records.push(r);
        }
    }
    Ok(out)
}

/// Decodes the JSON push (measured first: it is built whole as a generic value): `{"streams":[{"stream":{…},"values":[["<ns>","line",{meta}]]}]}`
/// (and the older `{"labels":"{…}","entries":[{"ts":"RFC 3339","line":"…"}]}` streams).
pub fn decode_json(body: &[u8], now: Micros) -> Result<Decoded, LokiError> {
    // The whole body becomes a generic value: measured, every node of it, before it is built.
    json::measure(body, Kind::Message(&LOKI_JSON), 1).map_err(LokiError::measured)?;
    let top: Value = serde_json::from_slice(body).map_err(|e| LokiError::Json(e.to_string()))?;
    let Some(Value::Array(streams)) = top.get("streams") else {
        return Err(LokiError::Json("expected {\"streams\": [...]}".into()));
    };
    let mut out = Decoded::default();
    for stream in streams {
        let labels: Labels = match (stream.get("stream"), stream.get("labels")) {
            (Some(Value::Object(m)), _) => {
                Ok(m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            }
            (_, Some(Value::String(s))) => parse_labels(s),
            _ => Ok(Vec::new()),
        };
        if let Some(Value::Array(values)) = stream.get("values") {
            for (i, v) in values.iter().enumerate() {
                let Some(tuple) = v.as_array() else {
                    let line = v.to_string();
                    out.records.push(failed(
                        &labels,
                        line,
                        now,
                        format!("values[{i}] is not an array"),
                    ));
                    continue;
                };
                let ts = tuple.first().and_then(nanos_value);
                let line = tuple.get(1).map(text).unwrap_or_default();
                let mut meta: Vec<(String, Value)> = match tuple.get(2) {
                    Some(Value::Object(m)) => {
                        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                    }
                    _ => Vec::new(),
                };
                if let Some(raw) = tuple.first().filter(|_| ts.is_none()) {
                    meta.push(("_invalid_ts".into(), raw.clone()));
                }
                let mut r = entry_record(&labels, meta, ts, line, now);
                if ts.is_none() {
                    r.parse_failed = true;
                }
                out.records.push(r);
            }
        }
        if let Some(Value::Array(entries)) = stream.get("entries") {
            for e in entries {
                let ts = e
                    .get("ts")
                    .or_else(|| e.get("timestamp"))
                    .and_then(|t| t.as_str())
                    .and_then(parse_rfc3339_micros);
                let line = e.get("line").map(text).unwrap_or_default();
                let mut r = entry_record(&labels, Vec::new(), ts, line, now);
                r.parse_failed |= ts.is_none();
                out.records.push(r);
            }
        }
    }
    Ok(out)
}

/// A stream's labels, or the label string that could not be read.
type Labels = Result<Vec<(String, String)>, String>;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A Loki timestamp: nanoseconds as a string (or a number), to µs (`"-5"` is five
/// nanoseconds before 1970); `None` when it is not one a row can hold.
fn nanos_value(v: &Value) -> Option<Micros> {
    let ns: i128 = match v {
        Value::String(s) => s.trim().parse().ok()?,
        Value::Number(n) => i128::from(n.as_i64()?),
        _ => return None,
    };
    epoch::from_int_in(ns, Unit::Nanos)
}

fn entry_record(
    labels: &Labels,
    meta: impl IntoIterator<Item = (String, Value)>,
    ts: Option<Micros>,
    line: String,
    now: Micros,
) -> LogRecord {
    let mut pairs: Vec<(String, Value)> = match labels {
        Ok(l) => l
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        Err(raw) => vec![("labels".into(), Value::String(raw.clone()))],
    };
    pairs.extend(meta);
    let mut routed = fields::route(pairs);
    if routed.level.is_none() {
        routed.level = find_level(&line).map(str::to_string);
    }
    let mut r = routed.into_record(ts, now, line);
    r.parse_failed = labels.is_err();
    r
}

fn failed(labels: &Labels, line: String, now: Micros, why: String) -> LogRecord {
    let mut meta = Map::new();
    meta.insert("_parse_error".into(), Value::String(why));
    let mut r = entry_record(labels, meta, None, line, now);
    r.parse_failed = true;
    r
}

/// Reads a Prometheus label set `{name="value", …}` (Go-style escapes in values).
pub fn parse_labels(text: &str) -> Labels {
    let err = || text.to_string();
    let s = text.trim();
    let inner = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(err)?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if name.is_empty() || chars.next() != Some('=') {
            return Err(err());
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('"') {
            return Err(err());
        }
        let mut value = String::new();
        loop {
            match chars.next().ok_or_else(err)? {
                '"' => break,
                '\\' => match chars.next().ok_or_else(err)? {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_parse_with_escapes() {
        assert_eq!(
            parse_labels(r#"{app="api", level="error",msg="a \"q\" b"}"#),
            Ok(vec![
                ("app".into(), "api".into()),
                ("level".into(), "error".into()),
                ("msg".into(), "a \"q\" b".into()),
            ])
        );
        assert_eq!(parse_labels("{}"), Ok(vec![]));
        assert!(parse_labels("{app=api}").is_err());
        assert!(parse_labels(r#"{app="x"#).is_err());
    }

    #[test]
    fn protobuf_push_maps_labels_and_metadata() {
        let push = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{service_name="checkout", instance="h1", env="prod"}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: 1_705_314_645,
                        nanos: 123_456_789,
                    }),
                    line: b"ERROR card declined \xff".to_vec(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: "trace_id".into(),
                        value: "abc".into(),
                    }],
                }],
                hash: 0,
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&push.encode_to_vec())
            .unwrap_or_default();
        let d = decode_protobuf(&body, 1 << 20, 7).unwrap_or_default();
        assert_eq!(d.records.len(), 1);
        let r = &d.records[0];
        assert_eq!(r.ts, 1_705_314_645_123_456);
        assert_eq!((r.service.as_str(), r.host.as_str()), ("checkout", "h1"));
        assert_eq!(r.level, "ERROR");
        assert_eq!(r.trace_id.as_deref(), Some("abc"));
        assert_eq!(r.attrs, r#"{"env":"prod"}"#);
        assert!(r.msg.starts_with("ERROR card declined"));
        assert!(!r.parse_failed);
        assert!(
            decode_protobuf(&body, 10, 7).is_err(),
            "claimed size over the cap"
        );
        assert!(decode_protobuf(&body[..body.len() / 2], 1 << 20, 7).is_err());
    }

    #[test]
    fn json_push_keeps_every_value() {
        let body = br#"{"streams":[{"stream":{"job":"varlogs","level":"warn"},
            "values":[["1705314645000000000","one",{"user":"u1"}],["soon","two"],"three"]}]}"#;
        let d = decode_json(body, 99).unwrap_or_default();
        assert_eq!(d.records.len(), 3);
        assert_eq!(d.records[0].ts, 1_705_314_645_000_000);
        assert_eq!(d.records[0].service, "varlogs");
        assert_eq!(d.records[0].level, "WARN");
        assert_eq!(d.records[0].attrs, r#"{"user":"u1"}"#);
        assert!(d.records[1].parse_failed && d.records[1].ts == 99);
        assert!(d.records[2].parse_failed && d.records[2].msg == "\"three\"");
        assert!(decode_json(b"{\"streams\":", 0).is_err());
    }
}
