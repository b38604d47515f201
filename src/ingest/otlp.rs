//! OTLP logs (`ExportLogsServiceRequest`, protobuf or OTLP/JSON) to records, with the
//! generated `opentelemetry-proto` types.
//!
//! Resource `service.name` → `service`, `host.name` → `host`, severity → `level`, the body →
//! `msg` (non-string bodies as JSON), trace id as hex; resource, scope and record attributes,
//! the span id, flags, event name and the observed time → `attrs`. `ts` is the record's time,
//! else its observed time, else the receive time.

use base64::Engine;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord as OtlpRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{Map, Value};

use super::decode::Decoded;
use super::limits::LimitError;
use super::measure::shapes::OTLP_LOGS;
use super::measure::{json, proto, Kind, MeasureError, Shape};
use crate::model::fields;
use crate::model::level::find_level;
use crate::model::{LogRecord, Micros};

/// Why an OTLP body is refused whole.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("protobuf {message}: {source}")]
    Protobuf {
        message: &'static str,
        source: prost::DecodeError,
    },
    #[error("OTLP/JSON {message}: {source}")]
    Json {
        message: &'static str,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Malformed(MeasureError),
    #[error(transparent)]
    Limit(#[from] LimitError),
}

const LOGS: &str = "ExportLogsServiceRequest";

/// A measuring error of a request of the message `message`.
trait Named {
    fn named(self, message: &'static str) -> OtlpError;
}

impl Named for MeasureError {
    fn named(self, message: &'static str) -> OtlpError {
        match self {
            MeasureError::Limit(limit) => OtlpError::Limit(limit),
            other => OtlpError::Malformed(MeasureError::Json(format!("{message}: {other}"))),
        }
    }
}

/// Decodes a protobuf `ExportLogsServiceRequest` (also the gRPC service's path), measured
/// first so that nothing is built for a request over the limits.
pub fn decode_protobuf(body: &[u8], now: Micros) -> Result<Decoded, OtlpError> {
    Ok(to_records(measured_protobuf(body, &OTLP_LOGS, LOGS)?, now))
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest` (camelCase keys, hex ids), measured first.
pub fn decode_json(body: &[u8], now: Micros) -> Result<Decoded, OtlpError> {
    Ok(to_records(measured_json(body, &OTLP_LOGS, LOGS)?, now))
}

/// `body` measured against `shape`, then decoded as the protobuf `message`.
pub(super) fn measured_protobuf<M: Message + Default>(
    body: &[u8],
    shape: &'static Shape,
    message: &'static str,
) -> Result<M, OtlpError> {
    proto::measure(body, shape).map_err(|e| e.named(message))?;
    M::decode(body).map_err(|source| OtlpError::Protobuf { message, source })
}

/// `body` measured against `shape`, then decoded as the OTLP/JSON `message`.
pub(super) fn measured_json<M: serde::de::DeserializeOwned>(
    body: &[u8],
    shape: &'static Shape,
    message: &'static str,
) -> Result<M, OtlpError> {
    json::measure(body, Kind::Message(shape), 0).map_err(|e| e.named(message))?;
    serde_json::from_slice(body).map_err(|source| OtlpError::Json { message, source })
}

/// A resource's attributes, as pairs copied into each of its records.
pub(super) fn resource_pairs(resource: Option<Resource>) -> Vec<(String, Value)> {
    resource
        .map(|r| r.attributes)
        .unwrap_or_default()
        .into_iter()
        .map(pair)
        .collect()
}

/// An instrumentation scope's name, version and attributes, as pairs.
pub(super) fn scope_pairs(scope: Option<InstrumentationScope>) -> Vec<(String, Value)> {
    let mut pairs = Vec::new();
    if let Some(s) = scope {
        if !s.name.is_empty() {
            pairs.push(("otel.scope.name".to_string(), Value::String(s.name)));
        }
        if !s.version.is_empty() {
            pairs.push(("otel.scope.version".to_string(), Value::String(s.version)));
        }
        pairs.extend(s.attributes.into_iter().map(pair));
    }
    pairs
}

/// Records of a decoded request.
fn to_records(req: ExportLogsServiceRequest, now: Micros) -> Decoded {
    let mut out = Decoded::default();
    for rl in req.resource_logs {
        let resource = resource_pairs(rl.resource);
        for sl in rl.scope_logs {
            let scope = scope_pairs(sl.scope);
            for record in sl.log_records {
                out.records.push(to_record(&resource, &scope, record, now));
            }
        }
    }
    out
}

/// An OTLP time (nanoseconds, as the spec fixes them; 0 means unknown) to µs.
pub(super) fn nanos_to_micros(ns: u64) -> Option<Micros> {
    (ns != 0)
        .then(|| crate::model::epoch::from_int_in(ns.into(), crate::model::epoch::Unit::Nanos))
        .flatten()
}

/// The canonical level of an OTLP severity number (1–4 TRACE … 21–24 FATAL).
fn severity_level(n: i32) -> Option<&'static str> {
    Some(match n {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => return None,
    })
}

fn to_record(
    resource: &[(String, Value)],
    scope: &[(String, Value)],
    r: OtlpRecord,
    now: Micros,
) -> LogRecord {
    let mut pairs: Vec<(String, Value)> = resource.to_vec();
    pairs.extend(scope.iter().cloned());
    pairs.extend(r.attributes.into_iter().map(pair));
    let observed = nanos_to_micros(r.observed_time_unix_nano);
    if let Some(o) = observed {
        let text = chrono::DateTime::from_timestamp_micros(o)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        if let Some(text) = text {
            pairs.push(("observed_time".into(), Value::String(text)));
        }
    }
    if !r.span_id.is_empty() {
        pairs.push(("span_id".into(), Value::String(hex::encode(&r.span_id))));
    }
    if r.flags != 0 {
        pairs.push(("trace_flags".into(), Value::from(r.flags)));
    }
    if !r.event_name.is_empty() {
        pairs.push(("event_name".into(), Value::String(r.event_name)));
    }
    let mut routed = fields::route(pairs);
    let msg = match r.body.and_then(|b| b.value) {
        Some(any_value::Value::StringValue(s)) => s,
        Some(other) => any_json(other).to_string(),
        None => String::new(),
    };
    let level = if !r.severity_text.is_empty() {
        Some(crate::model::level::normalize(&r.severity_text))
    } else {
        severity_level(r.severity_number).map(str::to_string)
    };
    routed.level = level
        .or(routed.level)
        .or_else(|| find_level(&msg).map(str::to_string));
    if !r.trace_id.is_empty() {
        routed.trace_id = Some(hex::encode(&r.trace_id));
    }
    let ts = nanos_to_micros(r.time_unix_nano).or(observed);
    routed.into_record(ts, now, msg)
}

pub(super) fn pair(kv: KeyValue) -> (String, Value) {
    let v = kv.value.and_then(|v| v.value).map_or(Value::Null, any_json);
    (kv.key, v)
}

/// An `AnyValue` as JSON: kvlists as objects, bytes as base64.
fn any_json(v: any_value::Value) -> Value {
    use any_value::Value as V;
    match v {
        V::StringValue(s) => Value::String(s),
        V::BoolValue(b) => Value::Bool(b),
        V::IntValue(i) => Value::from(i),
        V::DoubleValue(d) => serde_json::Number::from_f64(d).map_or(Value::Null, Value::Number),
        V::ArrayValue(a) => Value::Array(a.values.into_iter().map(any_opt).collect()),
        V::KvlistValue(kv) => {
            let m: Map<String, Value> = kv.values.into_iter().map(pair).collect();
            Value::Object(m)
        }
        V::BytesValue(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

fn any_opt(v: AnyValue) -> Value {
    v.value.map_or(Value::Null, any_json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn request() -> ExportLogsServiceRequest {
        use any_value::Value as V;
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", V::StringValue("checkout".into())),
                        kv("host.name", V::StringValue("web-1".into())),
                        kv("deployment.environment", V::StringValue("prod".into())),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        OtlpRecord {
                            time_unix_nano: 1_705_314_645_123_456_789,
                            observed_time_unix_nano: 1_705_314_646_000_000_000,
                            severity_number: 17,
                            body: Some(AnyValue {
                                value: Some(V::StringValue("card declined".into())),
                            }),
                            attributes: vec![kv("user.id", V::IntValue(7))],
                            trace_id: vec![0xab; 16],
                            span_id: vec![0xcd; 8],
                            ..Default::default()
                        },
                        OtlpRecord {
                            observed_time_unix_nano: 1_705_314_646_000_000_000,
                            severity_text: "Warning".into(),
                            body: Some(AnyValue {
                                value: Some(V::KvlistValue(
                                    opentelemetry_proto::tonic::common::v1::KeyValueList {
                                        values: vec![kv("a", V::BoolValue(true))],
                                    },
                                )),
                            }),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn records_map_resource_severity_body_and_ids() {
        let d = decode_protobuf(&request().encode_to_vec(), 1).unwrap_or_default();
        assert_eq!(d.records.len(), 2);
        let a = &d.records[0];
        assert_eq!(a.ts, 1_705_314_645_123_456);
        assert_eq!((a.service.as_str(), a.host.as_str()), ("checkout", "web-1"));
        assert_eq!(
            (a.level.as_str(), a.msg.as_str()),
            ("ERROR", "card declined")
        );
        assert_eq!(
            a.trace_id.as_deref(),
            Some("abababababababababababababababab")
        );
        let attrs: Value = serde_json::from_str(&a.attrs).unwrap_or_default();
        assert_eq!(attrs["user.id"], 7);
        assert_eq!(attrs["span_id"], "cdcdcdcdcdcdcdcd");
        assert_eq!(attrs["deployment.environment"], "prod");
        assert_eq!(attrs["observed_time"], "2024-01-15T10:30:46Z");
        let b = &d.records[1];
        assert_eq!(
            b.ts, 1_705_314_646_000_000,
            "observed time when the record has none"
        );
        assert_eq!(
            (b.level.as_str(), b.msg.as_str()),
            ("WARN", r#"{"a":true}"#)
        );
        assert_eq!(b.trace_id, None);
    }

    #[test]
    fn many_records_sharing_a_big_resource_are_refused_before_they_are_built() {
        use any_value::Value as V;
        let big = "x".repeat(1 << 20);
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("blob", V::StringValue(big))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![OtlpRecord::default(); 200],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = req.encode_to_vec();
        assert!(body.len() < 2 << 20, "a small body");
        assert!(matches!(
            decode_protobuf(&body, 1),
            Err(OtlpError::Limit(LimitError::Expanded { .. }))
        ));
        let many = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![OtlpRecord::default(); 100_001],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert!(matches!(
            decode_protobuf(&many.encode_to_vec(), 1),
            Err(OtlpError::Limit(LimitError::Records { .. }))
        ));
    }

    #[test]
    fn json_and_protobuf_agree_and_truncation_is_refused() {
        let req = request();
        let json = serde_json::to_vec(&req).unwrap_or_default();
        let from_json = decode_json(&json, 1).unwrap_or_default();
        let from_pb = decode_protobuf(&req.encode_to_vec(), 1).unwrap_or_default();
        assert_eq!(from_json.records, from_pb.records);
        let pb = req.encode_to_vec();
        assert!(decode_protobuf(&pb[..pb.len() - 3], 1).is_err());
        assert!(decode_json(b"{\"resourceLogs\": [", 1).is_err());
    }
}
