//! Decoders: the JSON batch `{"source":{…},"logs":[…]}` and NDJSON, to [`LogRecord`]s.
//!
//! Decoding never drops an event that can be stored: a wrong type is coerced to text, a bad
//! timestamp falls back to the receive time with `parse_failed`, a line that is not JSON is stored
//! raw with `parse_failed`, invalid UTF-8 is replaced (U+FFFD) and kept.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::fast_event::{self, FastSource};
use super::limits::LimitError;
use super::measure::{json::measure_value, MeasureError};

use crate::model::format::parse_ts;
use crate::model::level::normalize;
use crate::model::{LogRecord, Micros, DEFAULT_TENANT, MAX_MSG_BYTES};

/// Most events one request may carry.
pub const MAX_EVENTS: usize = 10_000;

/// Most bytes one request's events may take once decoded, the batch's `source` copied into each.
pub use super::limits::MAX_EXPANDED_BYTES;

/// Events longer than this are measured before they are decoded (a shorter one cannot build
/// much: its generic value is at most a few dozen times its size).
const MEASURED_EVENT_BYTES: usize = 16 << 10;

/// An event that could not be stored, with its position in the request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventError {
    pub index: usize,
    pub reason: String,
}

/// The result of decoding one request.
#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<LogRecord>,
    pub errors: Vec<EventError>,
}

/// Why a whole request is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("body is not a JSON batch: {0}")]
    Malformed(String),
    #[error("batch has {0} events; at most {MAX_EVENTS} are accepted per request")]
    TooManyEvents(usize),
    #[error("batch would take {bytes} bytes once its source ({per_event} bytes) is copied into each of its {events} events; at most {MAX_EXPANDED_BYTES} per request")]
    TooLarge {
        bytes: usize,
        per_event: usize,
        events: usize,
    },
    /// A value (the `source`, an event, the whole body) would build more than the limits allow.
    #[error("{0}")]
    Limit(#[from] LimitError),
}

/// Measures JSON text about to be decoded into a generic value: over the limits is an error;
/// text that is not JSON is left to the decoder (which keeps it raw or says why).
fn measured(text: &str) -> Result<(), DecodeError> {
    match measure_value(text) {
        Err(MeasureError::Limit(limit)) => Err(DecodeError::Limit(limit)),
        _ => Ok(()),
    }
}

/// Defaults every event of a request starts from (the batch's `source`).
#[derive(Debug, Clone)]
struct Source {
    service: String,
    host: String,
    attrs: Map<String, Value>,
}

impl Source {
    fn from_value(v: Option<&Value>) -> Source {
        let mut s = Source {
            service: "unknown".into(),
            host: "unknown".into(),
            attrs: Map::new(),
        };
        if let Some(Value::Object(m)) = v {
            for (k, v) in m {
                match k.as_str() {
                    "service" => s.service = text(v),
                    "host" => s.host = text(v),
                    _ => {
                        s.attrs.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        s
    }

    /// Refuses a batch whose events, each with a copy of this source, would exceed
    /// [`MAX_EXPANDED_BYTES`] — before any of them is built.
    fn check_expansion(&self, body_bytes: usize, events: usize) -> Result<(), DecodeError> {
        let attrs: usize = self
            .attrs
            .iter()
            .map(|(k, v)| k.len() + 4 + json_len(v))
            .sum();
        let per_event = self.service.len() + self.host.len() + attrs;
        let bytes = per_event.saturating_mul(events).saturating_add(body_bytes);
        if bytes > MAX_EXPANDED_BYTES {
            return Err(DecodeError::TooLarge {
                bytes,
                per_event,
                events,
            });
        }
        Ok(())
    }
}

/// Bytes of a value's JSON text, without writing it.
fn json_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|x| json_len(x) + 1).sum::<usize>(),
        Value::Object(m) => {
            2 + m
                .iter()
                .map(|(k, x)| k.len() + 4 + json_len(x))
                .sum::<usize>()
        }
        other => other.to_string().len(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Valid UTF-8 is borrowed as is; anything else has its bad bytes replaced (U+FFFD), in one
/// copy of exactly the size it needs ([`replaced_len`] more than the body).
pub fn utf8(body: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(body) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(body.len() + replaced_len(body));
    for chunk in body.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    Cow::Owned(out)
}

/// How many bytes longer [`utf8`] makes `body` (0 for valid UTF-8): each invalid sequence
/// becomes U+FFFD, three bytes.
pub fn replaced_len(body: &[u8]) -> usize {
    body.utf8_chunks()
        .map(|c| match c.invalid().len() {
            0 => 0,
            n => 3usize.saturating_sub(n),
        })
        .sum()
}

/// The part of `text` a record's message keeps: a prefix long enough that cutting it to the
/// message limit gives what cutting the whole would (a char is at most 4 bytes), so a long line
/// is never copied whole.
pub fn kept(text: &str) -> &str {
    let mut cut = MAX_MSG_BYTES + 4;
    if text.len() <= cut {
        return text;
    }
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

#[derive(serde::Deserialize)]
struct BatchIn<'a> {
    #[serde(default, borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    logs: Events<'a>,
}

/// A batch's `logs` array: the first [`MAX_EVENTS`] items, borrowed; the rest only counted.
struct Events<'a> {
    kept: Vec<&'a RawValue>,
    count: usize,
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Events<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Items<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Items<'a> {
            type Value = Events<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of events")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Events<'a>, A::Error> {
                let mut events = Events {
                    kept: Vec::new(),
                    count: 0,
                };
                while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                    events.count += 1;
                    if events.kept.len() < MAX_EVENTS {
                        events.kept.push(raw);
                    }
                }
                Ok(events)
            }
        }
        d.deserialize_seq(Items(std::marker::PhantomData))
    }
}

impl Source {
    fn fast(&self) -> FastSource {
        FastSource {
            service: self.service.clone(),
            host: self.host.clone(),
            attrs: self
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        }
    }
}

/// Decodes one event: the zero-copy path when it is well-formed, else the lenient one. A long
/// event is measured first: refused if its values would build more than the limits allow.
fn decode_event(
    text: &str,
    source: &Source,
    fast: &FastSource,
    now: Micros,
) -> Result<LogRecord, DecodeError> {
    if text.len() > MEASURED_EVENT_BYTES {
        measured(text)?;
    }
    if let Some(r) = fast_event::decode(text, fast, now) {
        return Ok(r);
    }
    Ok(match serde_json::from_str::<Value>(text) {
        Ok(v) => event_to_record(v, source, now),
        Err(_) => raw_record(text, source, now),
    })
}

/// Decodes a JSON batch body (already decompressed).
pub fn decode_batch(body: &[u8], now: Micros) -> Result<Decoded, DecodeError> {
    let text = utf8(body);
    if let Ok(batch) = serde_json::from_str::<BatchIn>(&text) {
        if batch.logs.count > MAX_EVENTS {
            return Err(DecodeError::TooManyEvents(batch.logs.count));
        }
        let source = match batch.source {
            Some(raw) => {
                measured(raw.get())?;
                serde_json::from_str::<Value>(raw.get()).ok()
            }
            None => None,
        };
        let source = Source::from_value(source.as_ref());
        source.check_expansion(body.len(), batch.logs.count)?;
        let fast = source.fast();
        let records = batch
            .logs
            .kept
            .iter()
            .map(|raw| decode_event(raw.get(), &source, &fast, now))
            .collect::<Result<_, _>>()?;
        return Ok(Decoded {
            records,
            errors: Vec::new(),
        });
    }
    // Not the usual shape: decode generically for a precise error (or an odd but valid body).
    decode_batch_reference(&text, now)
}

/// The lenient decoder alone (no fast path): the reference the fast path is tested against.
fn decode_batch_reference(text: &str, now: Micros) -> Result<Decoded, DecodeError> {
    measured(text)?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let Value::Object(mut top) = value else {
        return Err(DecodeError::Malformed(
            "expected a JSON object with a \"logs\" array".into(),
        ));
    };
    let source = Source::from_value(top.get("source"));
    let logs = match top.remove("logs") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(DecodeError::Malformed("\"logs\" must be an array".into())),
        None => return Err(DecodeError::Malformed("missing \"logs\" array".into())),
    };
    if logs.len() > MAX_EVENTS {
        return Err(DecodeError::TooManyEvents(logs.len()));
    }
    source.check_expansion(text.len(), logs.len())?;
    let mut out = Decoded {
        records: Vec::with_capacity(logs.len()),
        ..Decoded::default()
    };
    for event in logs {
        out.records.push(event_to_record(event, &source, now));
    }
    Ok(out)
}

/// Decodes an NDJSON body: one event per line; a line that is not JSON is stored raw.
pub fn decode_ndjson(body: &[u8], now: Micros) -> Result<Decoded, DecodeError> {
    let text = utf8(body);
    let source = Source::from_value(None);
    let fast = source.fast();
    let mut out = Decoded::default();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if out.records.len() == MAX_EVENTS {
            return Err(DecodeError::TooManyEvents(
                text.split('\n').filter(|l| !l.trim().is_empty()).count(),
            ));
        }
        let record = if line.trim_start().starts_with('{') {
            decode_event(line, &source, &fast, now)?
        } else {
            raw_record(line, &source, now)
        };
        out.records.push(record);
    }
    Ok(out)
}

fn base(source: &Source, now: Micros) -> LogRecord {
    LogRecord {
        ts: now,
        ingest_ts: now,
        tenant: DEFAULT_TENANT.into(),
        service: source.service.clone(),
        host: source.host.clone(),
        level: "UNKNOWN".into(),
        ..LogRecord::default()
    }
}

/// A line or value that is not an event object: kept (up to the message limit), flagged.
fn raw_record(raw: &str, source: &Source, now: Micros) -> LogRecord {
    let mut r = base(source, now);
    r.msg = kept(raw).to_string();
    r.parse_failed = true;
    r.attrs = Value::Object(source.attrs.clone()).to_string();
    r.enforce_msg_limit();
    r
}

fn event_to_record(event: Value, source: &Source, now: Micros) -> LogRecord {
    let Value::Object(mut fields) = event else {
        return raw_record(&text(&event), source, now);
    };
    // ECS objects (`{"log":{"level":…}}`) as the dotted keys other shippers send.
    crate::model::fields::lift_nested(&mut fields);
    let mut r = base(source, now);
    let mut attrs = source.attrs.clone();
    let mut set = Set::default();
    let mut others: Vec<String> = Vec::new();
    for (k, v) in fields {
        // A null is an absent key (a null `ts` means "use the receive time").
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "ts" | "timestamp" | "time" | "@timestamp" => {
                set.ts = true;
                match parse_ts(&v) {
                    Some(ts) => r.ts = ts,
                    None => {
                        r.parse_failed = true;
                        attrs.insert("_invalid_ts".into(), v);
                    }
                }
            }
            "level" | "severity" | "tag" if !v.is_object() => {
                set.level = true;
                r.level = normalize(&text(&v));
            }
            "msg" | "message" | "body" => {
                set.msg = true;
                r.msg = text(&v);
            }
            "service" if !v.is_object() => {
                set.service = true;
                r.service = text(&v);
            }
            "host" if !v.is_object() => {
                set.host = true;
                r.host = text(&v);
            }
            "trace_id" if !v.is_object() => {
                set.trace = true;
                r.trace_id = Some(text(&v)).filter(|t| !t.is_empty());
            }
            "parse_failed" => r.parse_failed |= v.as_bool().unwrap_or(false),
            "meta" => match v {
                Value::Object(meta) => {
                    for (mk, mv) in meta {
                        if mk == "trace_id" || mk == "traceId" {
                            set.trace = true;
                            r.trace_id = Some(text(&mv)).filter(|t| !t.is_empty());
                        } else {
                            attrs.insert(mk, mv);
                        }
                    }
                }
                Value::Null => {}
                other => {
                    attrs.insert("meta".into(), other);
                }
            },
            _ => {
                others.push(k.clone());
                attrs.insert(k, v);
            }
        }
    }
    other_shippers_keys(&mut r, &mut attrs, &others, &set);
    r.attrs = Value::Object(attrs).to_string();
    r.enforce_msg_limit();
    r
}

/// Which columns an event named with our own keys.
#[derive(Default)]
struct Set {
    ts: bool,
    level: bool,
    msg: bool,
    service: bool,
    host: bool,
    trace: bool,
}

/// Columns an event did not name with our keys, from the keys other shippers use for them
/// (`t`/`date`, `log`, `log.level`, `service.name`, `app`, `host.name`, `trace.id`…), taken
/// from its own top-level keys only (never from `meta` or the batch's `source`).
fn other_shippers_keys(
    r: &mut LogRecord,
    attrs: &mut Map<String, Value>,
    others: &[String],
    set: &Set,
) {
    use crate::model::fields::{self, best_key, label_text};
    if !set.ts {
        if let Some(k) = best_key(others, fields::TIME_KEYS) {
            // `t` or `date` may mean something else: only a time since 2000 counts as one.
            let plausible = |ts: &Micros| *ts >= 946_684_800_000_000;
            if let Some(ts) = attrs.get(k).and_then(parse_ts).filter(plausible) {
                r.ts = ts;
                attrs.remove(k);
            }
        }
    }
    if !set.msg {
        if let Some(k) = best_key(others, fields::MESSAGE_KEYS) {
            if let Some(v) = attrs.remove(k) {
                let mut m = text(&v);
                // Docker's json-file keeps the line's newline.
                if m.ends_with('\n') {
                    m.pop();
                }
                r.msg = m;
            }
        }
    }
    // Each column takes the value when it fits (a `priority` must be syslog's 0–7).
    type Put<'a> = &'a mut dyn FnMut(&str, String) -> bool;
    let columns: [(bool, &[&str], Put); 4] = [
        (set.level, fields::LEVEL, &mut |k, v| {
            fields::level_value(k, &v).map(|l| r.level = l).is_some()
        }),
        (set.service, fields::SERVICE, &mut |_, v| {
            r.service = v;
            true
        }),
        (set.host, fields::HOST, &mut |_, v| {
            r.host = v;
            true
        }),
        (set.trace, fields::TRACE, &mut |_, v| {
            r.trace_id = Some(v);
            true
        }),
    ];
    for (named, names, put) in columns {
        if named {
            continue;
        }
        let Some(k) = best_key(others, names) else {
            continue;
        };
        if let Some(v) = attrs.get(k).and_then(label_text) {
            if put(k, v) {
                attrs.remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_maps_source_meta_and_trace() {
        let body = br#"{"source":{"service":"payments","host":"h1","region":"eu","environment":"prod"},
            "logs":[{"ts":"2024-01-15T10:30:45.123Z","level":"warning","msg":"x","meta":{"trace_id":"t1","user_id":7}}]}"#;
        let d = decode_batch(body, 5).unwrap();
        let r = &d.records[0];
        assert_eq!(
            (r.service.as_str(), r.host.as_str(), r.level.as_str()),
            ("payments", "h1", "WARN")
        );
        assert_eq!(r.trace_id.as_deref(), Some("t1"));
        assert_eq!(r.ts, 1_705_314_645_123_000);
        assert_eq!(r.ingest_ts, 5);
        let attrs: Value = serde_json::from_str(&r.attrs).unwrap();
        assert_eq!(attrs["region"], "eu");
        assert_eq!(attrs["environment"], "prod");
        assert_eq!(attrs["user_id"], 7);
        assert!(attrs.get("trace_id").is_none());
    }

    #[test]
    fn other_shippers_keys_fill_the_columns_ours_leave_empty() {
        let body = concat!(
            r#"{"@timestamp":"2024-01-15T10:30:45Z","message":"m","log":{"level":"error"},"service":{"name":"pay","version":"2"},"host":{"name":"h1","ip":"10.0.0.1"},"trace":{"id":"t1"}}"#,
            "\n",
            r#"{"log":"docker line\n","stream":"stdout","time":"2024-01-15T10:30:46Z"}"#,
            "\n",
            r#"{"t":1705314647,"app":"api","lvl":"warn","msg":"x","service":"own"}"#,
            "\n",
        );
        let d = decode_ndjson(body.as_bytes(), 1).unwrap_or_default();
        let r = &d.records;
        assert_eq!(
            (
                r[0].service.as_str(),
                r[0].host.as_str(),
                r[0].level.as_str()
            ),
            ("pay", "h1", "ERROR")
        );
        assert_eq!(r[0].trace_id.as_deref(), Some("t1"));
        assert!(
            r[0].attrs.contains(r#""service":{"version":"2"}"#),
            "{}",
            r[0].attrs
        );
        assert_eq!(
            (r[1].msg.as_str(), r[1].ts),
            ("docker line", 1_705_314_646_000_000)
        );
        assert_eq!(
            (r[2].ts, r[2].level.as_str()),
            (1_705_314_647_000_000, "WARN")
        );
        assert_eq!(r[2].service, "own", "our own key wins over an alias");
        assert!(r[2].attrs.contains(r#""app":"api""#));
        let d = decode_ndjson(br#"{"msg":"temp","t":5}"#, 1).unwrap_or_default();
        assert_eq!(d.records[0].ts, 1, "a small `t` is not a time");
        assert!(d.records[0].attrs.contains(r#""t":5"#) && !d.records[0].parse_failed);
    }

    #[test]
    fn replaced_bytes_are_sized_first_and_long_lines_copied_only_as_kept() {
        let body = b"ok \xff\xfe \xe2\x82 end";
        let text = utf8(body);
        assert_eq!(text, String::from_utf8_lossy(body));
        assert_eq!(text.len(), body.len() + replaced_len(body));
        assert_eq!(replaced_len(b"valid \xc3\xa9"), 0);
        let long = format!(
            "{}\u{e9}{}",
            "a".repeat(MAX_MSG_BYTES - 1),
            "b".repeat(1 << 20)
        );
        let mut whole = LogRecord {
            msg: long.clone(),
            ..LogRecord::default()
        };
        whole.enforce_msg_limit();
        let mut cut = LogRecord {
            msg: kept(&long).to_string(),
            ..LogRecord::default()
        };
        cut.enforce_msg_limit();
        assert_eq!((cut.msg, cut.truncated), (whole.msg, true));
    }

    #[test]
    fn ndjson_limits_and_raw_lines() {
        let body = "{\"msg\":\"a\"}\n\n[1]\n{\"msg\":\"b\"}\r\n";
        let d = decode_ndjson(body.as_bytes(), 1).unwrap();
        assert_eq!(d.records.len(), 3);
        assert!(d.records[1].parse_failed);
        assert_eq!(d.records[1].msg, "[1]");
        let many = "{}\n".repeat(10_001);
        assert!(matches!(
            decode_ndjson(many.as_bytes(), 1),
            Err(DecodeError::TooManyEvents(_))
        ));
    }

    #[test]
    fn fast_path_and_reference_decoder_store_the_same_rows() {
        use crate::ingest::decode::decode_batch_reference;
        let events = [
            r#"{"ts":"2024-01-15T10:30:45.123Z","level":"warning","msg":"a","meta":{"trace_id":"t1","user_id":7,"z":{"n":[1,2]}}}"#,
            r#"{"ts":1705314645123,"msg":"b \"quoted\" \u00e9","service":"other","host":"h9"}"#,
            r#"{"msg":"no ts, no level","meta":{"region":"us","traceId":"t2"}}"#,
            r#"{"ts":null,"level":null,"msg":null,"meta":null}"#,
            r#"{"ts":"2024-01-15 10:30:45","level":"E","msg":"c","meta":{"region":"override"}}"#,
        ];
        for e in events {
            let body = format!(
                r#"{{"source":{{"service":"s","host":"h","region":"eu","environment":"prod"}},"logs":[{e}]}}"#
            );
            let fast = decode_batch(body.as_bytes(), 42).unwrap().records;
            let reference = decode_batch_reference(&body, 42).unwrap().records;
            assert_eq!(fast.len(), 1);
            let (mut f, r) = (fast[0].clone(), reference[0].clone());
            // attrs must be the same JSON object (text may differ in whitespace only).
            let fa: Value = serde_json::from_str(&f.attrs).unwrap();
            let ra: Value = serde_json::from_str(&r.attrs).unwrap();
            assert_eq!(fa, ra, "{e}");
            f.attrs = r.attrs.clone();
            assert_eq!(f, r, "{e}");
        }
    }
}
