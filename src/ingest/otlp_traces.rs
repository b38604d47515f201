//! OTLP traces (`ExportTraceServiceRequest`, protobuf or OTLP/JSON) to records: one row per
//! span, so spans are searched and aggregated like any log line.
//!
//! Resource `service.name` → `service`, `host.name` → `host`, the span's name → `msg`, its
//! trace id → `trace_id`, its start → `ts`; level `ERROR` when its status is an error, else
//! `INFO`. `attrs` holds the resource, scope and span attributes and `span_id`,
//! `parent_span_id`, `span_kind`, `duration_ms` (a measure: `avg((attrs->>'duration_ms')::double)`),
//! `status_message`, the events (`events`: name, time and attributes of each) and the number of
//! links.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use serde_json::{Map, Value};

use super::decode::Decoded;
use super::measure::shapes::OTLP_TRACES;
use super::otlp::{
    measured_json, measured_protobuf, nanos_to_micros, pair, resource_pairs, scope_pairs, OtlpError,
};

const TRACES: &str = "ExportTraceServiceRequest";
use crate::model::fields;
use crate::model::{LogRecord, Micros};

/// Decodes a protobuf `ExportTraceServiceRequest`, measured first so that nothing is built
/// for a request over the limits.
pub fn decode_protobuf(body: &[u8], now: Micros) -> Result<Decoded, OtlpError> {
    Ok(to_records(
        measured_protobuf(body, &OTLP_TRACES, TRACES)?,
        now,
    ))
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` (camelCase keys, hex ids), measured first.
pub fn decode_json(body: &[u8], now: Micros) -> Result<Decoded, OtlpError> {
    Ok(to_records(measured_json(body, &OTLP_TRACES, TRACES)?, now))
}

fn to_records(req: ExportTraceServiceRequest, now: Micros) -> Decoded {
    let mut out = Decoded::default();
    for rs in req.resource_spans {
        let resource = resource_pairs(rs.resource);
        for ss in rs.scope_spans {
            let scope = scope_pairs(ss.scope);
            for span in ss.spans {
                out.records.push(to_record(&resource, &scope, span, now));
            }
        }
    }
    out
}

const KINDS: [&str; 6] = [
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
];

fn to_record(
    resource: &[(String, Value)],
    scope: &[(String, Value)],
    span: Span,
    now: Micros,
) -> LogRecord {
    let mut pairs: Vec<(String, Value)> = resource.to_vec();
    pairs.extend(scope.iter().cloned());
    pairs.extend(span.attributes.into_iter().map(pair));
    if !span.span_id.is_empty() {
        pairs.push(("span_id".into(), Value::String(hex::encode(&span.span_id))));
    }
    if !span.parent_span_id.is_empty() {
        pairs.push((
            "parent_span_id".into(),
            Value::String(hex::encode(&span.parent_span_id)),
        ));
    }
    let kind = usize::try_from(span.kind)
        .ok()
        .and_then(|k| KINDS.get(k))
        .unwrap_or(&"unspecified");
    pairs.push(("span_kind".into(), Value::String(kind.to_string())));
    if span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano > 0 {
        let ns = span.end_time_unix_nano - span.start_time_unix_nano;
        pairs.push(("duration_ms".into(), Value::from(ns as f64 / 1e6)));
    }
    let failed = span
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32);
    if let Some(status) = span.status.filter(|s| !s.message.is_empty()) {
        pairs.push(("status_message".into(), Value::String(status.message)));
    }
    if !span.events.is_empty() {
        let events = span
            .events
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("name".into(), Value::String(e.name));
                m.insert("time_unix_nano".into(), Value::from(e.time_unix_nano));
                for (k, v) in e.attributes.into_iter().map(pair) {
                    m.insert(k, v);
                }
                Value::Object(m)
            })
            .collect();
        pairs.push(("events".into(), Value::Array(events)));
    }
    if !span.links.is_empty() {
        pairs.push(("links".into(), Value::from(span.links.len())));
    }
    let mut routed = fields::route(pairs);
    routed.level = Some(if failed { "ERROR" } else { "INFO" }.to_string());
    if !span.trace_id.is_empty() {
        routed.trace_id = Some(hex::encode(&span.trace_id));
    }
    routed.into_record(nanos_to_micros(span.start_time_unix_nano), now, span.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};
    use prost::Message;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn request() -> ExportTraceServiceRequest {
        let span = |name: &str, parent: &[u8], error: bool| Span {
            trace_id: vec![0xab; 16],
            span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
            parent_span_id: parent.to_vec(),
            name: name.into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_002_500_000,
            attributes: vec![kv("db.statement", "SELECT 1")],
            status: Some(Status {
                message: if error { "boom".into() } else { String::new() },
                code: if error { 2 } else { 1 },
            }),
            ..Span::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "checkout"), kv("host.name", "h1")],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span("query", &[], false), span("scan", &[9; 8], true)],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[test]
    fn spans_become_rows_with_their_ids_duration_and_status() {
        let body = request().encode_to_vec();
        let records = decode_protobuf(&body, 0).unwrap().records;
        assert_eq!(records.len(), 2);
        let (q, s) = (&records[0], &records[1]);
        assert_eq!((q.service.as_str(), q.host.as_str()), ("checkout", "h1"));
        assert_eq!((q.msg.as_str(), q.level.as_str()), ("query", "INFO"));
        assert_eq!((s.msg.as_str(), s.level.as_str()), ("scan", "ERROR"));
        assert_eq!(q.trace_id.as_deref(), Some("ab".repeat(16).as_str()));
        assert_eq!(q.ts, 1_700_000_000_000_000);
        let attrs: Value = serde_json::from_str(&s.attrs).unwrap();
        assert_eq!(attrs["duration_ms"], 2.5);
        assert_eq!(attrs["span_kind"], "server");
        assert_eq!(attrs["parent_span_id"], "0909090909090909");
        assert_eq!(attrs["span_id"], "0102030405060708");
        assert_eq!(attrs["status_message"], "boom");
        assert_eq!(attrs["db.statement"], "SELECT 1");
    }

    #[test]
    fn json_and_protobuf_agree_and_garbage_is_refused() {
        let req = request();
        let json = serde_json::to_vec(&req).unwrap();
        let a = decode_json(&json, 0).unwrap().records;
        let b = decode_protobuf(&req.encode_to_vec(), 0).unwrap().records;
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (&x.msg, &x.trace_id, x.ts, &x.attrs),
                (&y.msg, &y.trace_id, y.ts, &y.attrs)
            );
        }
        assert!(decode_protobuf(b"\xff\xff\xff", 0).is_err());
        assert!(decode_json(b"{\"resourceSpans\": 5}", 0).is_err());
    }
}
