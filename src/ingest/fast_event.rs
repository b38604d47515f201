//! The zero-copy fast path of the JSON decoders, for well-formed events.
//!
//! An event whose keys are only `ts`, `level`, `msg`, `service`, `host`, `meta`, with string
//! values (and `ts` a string or number, `meta` an object) is decoded from borrowed slices: no
//! `serde_json::Value` tree, and `attrs` is written straight from the raw JSON of the values.
//! Anything else returns `None`, and the caller uses the lenient path in `decode`, so both paths
//! store the same rows.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::format::parse_ts_text;
use crate::model::level::normalize;
use crate::model::{LogRecord, Micros, DEFAULT_TENANT};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastEvent<'a> {
    #[serde(borrow, default)]
    ts: Option<&'a RawValue>,
    #[serde(borrow, default)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    msg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    meta: Option<BTreeMap<Cow<'a, str>, &'a RawValue>>,
}

/// The batch's `source`, prepared once per request.
pub struct FastSource {
    pub service: String,
    pub host: String,
    /// `source` attributes as (key, JSON text of the value).
    pub attrs: Vec<(String, String)>,
}

/// Decodes one event, or `None` when it needs the lenient path.
pub fn decode(text: &str, source: &FastSource, now: Micros) -> Option<LogRecord> {
    let ev: FastEvent = serde_json::from_str(text).ok()?;
    let ts = match ev.ts {
        None => now,
        Some(raw) => parse_ts_text(raw.get())?,
    };
    let mut trace_id = None;
    let mut attrs: BTreeMap<&str, &str> = source
        .attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(meta) = &ev.meta {
        for (k, v) in meta {
            if k == "trace_id" || k == "traceId" {
                let t: Cow<str> = serde_json::from_str(v.get()).ok()?;
                trace_id = Some(t.into_owned()).filter(|t| !t.is_empty());
            } else {
                attrs.insert(k.as_ref(), v.get());
            }
        }
    }
    let mut attrs_json = Vec::with_capacity(64);
    attrs_json.push(b'{');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            attrs_json.push(b',');
        }
        serde_json::to_writer(&mut attrs_json, k).ok()?;
        attrs_json.push(b':');
        attrs_json.extend_from_slice(v.trim().as_bytes());
    }
    attrs_json.push(b'}');
    let mut r = LogRecord {
        ts,
        ingest_ts: now,
        tenant: DEFAULT_TENANT.into(),
        service: ev
            .service
            .map_or_else(|| source.service.clone(), Cow::into_owned),
        host: ev.host.map_or_else(|| source.host.clone(), Cow::into_owned),
        level: ev
            .level
            .map_or_else(|| "UNKNOWN".to_string(), |l| normalize(&l)),
        msg: ev.msg.map(Cow::into_owned).unwrap_or_default(),
        trace_id,
        attrs: String::from_utf8(attrs_json).ok()?,
        parse_failed: false,
        truncated: false,
    };
    r.enforce_msg_limit();
    Some(r)
}
