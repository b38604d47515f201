//! Request bodies of the shipper protocols, built from generated records, for `timberline bench
//! ingest --protocol …`: OTLP/HTTP protobuf, Loki push (protobuf + snappy), Elasticsearch
//! `_bulk`, and octet-counted RFC 5424 syslog frames — what the real shippers send.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Value};

use crate::ingest::loki::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};
use crate::model::LogRecord;

/// The protocols the bench speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// `/v1/ingest` JSON batches.
    Json,
    /// OTLP/HTTP protobuf to `/v1/logs`.
    Otlp,
    /// Loki push, protobuf + snappy.
    Loki,
    /// Elasticsearch `_bulk` NDJSON.
    Bulk,
    /// RFC 5424 over TCP, octet counting, to `--syslog`.
    SyslogTcp,
}

impl Protocol {
    /// Path and content type of the HTTP protocols.
    pub fn endpoint(self) -> (&'static str, &'static str) {
        match self {
            Protocol::Json => ("/v1/ingest", "application/json"),
            Protocol::Otlp => ("/v1/logs", "application/x-protobuf"),
            Protocol::Loki => ("/loki/api/v1/push", "application/x-protobuf"),
            Protocol::Bulk | Protocol::SyslogTcp => ("/_bulk", "application/x-ndjson"),
        }
    }
}

fn kv(k: &str, v: String) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
        ..Default::default()
    }
}

fn attrs_of(r: &LogRecord) -> Vec<(String, String)> {
    match serde_json::from_str::<Value>(&r.attrs) {
        Ok(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect(),
        _ => Vec::new(),
    }
}

/// One request body of `records` in `protocol`.
pub fn body(protocol: Protocol, records: &[LogRecord]) -> Vec<u8> {
    match protocol {
        Protocol::Json => {
            let logs: Vec<Value> = records
                .iter()
                .map(|r| {
                    json!({"ts": crate::generate::format_ts(r.ts), "service": r.service, "host": r.host,
                           "level": r.level, "msg": r.msg, "trace_id": r.trace_id,
                           "meta": serde_json::from_str::<Value>(&r.attrs).unwrap_or(Value::Null)})
                })
                .collect();
            serde_json::to_vec(&json!({ "logs": logs })).unwrap_or_default()
        }
        Protocol::Otlp => {
            // One resource per record, as an SDK per process would batch them.
            let resource_logs = records
                .iter()
                .map(|r| ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![
                            kv("service.name", r.service.clone()),
                            kv("host.name", r.host.clone()),
                        ],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![OtlpRecord {
                            time_unix_nano: (r.ts as u64).saturating_mul(1000),
                            severity_text: r.level.clone(),
                            body: Some(AnyValue {
                                value: Some(any_value::Value::StringValue(r.msg.clone())),
                            }),
                            attributes: attrs_of(r).into_iter().map(|(k, v)| kv(&k, v)).collect(),
                            trace_id: r
                                .trace_id
                                .as_deref()
                                .and_then(|t| hex::decode(t).ok())
                                .unwrap_or_default(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect();
            ExportLogsServiceRequest { resource_logs }.encode_to_vec()
        }
        Protocol::Loki => {
            let streams = records
                .iter()
                .map(|r| StreamAdapter {
                    labels: format!(
                        "{{service_name=\"{}\", host=\"{}\", level=\"{}\"}}",
                        r.service, r.host, r.level
                    ),
                    entries: vec![EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: r.ts / 1_000_000,
                            nanos: (r.ts % 1_000_000 * 1000) as i32,
                        }),
                        line: r.msg.clone().into_bytes(),
                        structured_metadata: Vec::new(),
                    }],
                    hash: 0,
                })
                .collect();
            let raw = PushRequest { streams }.encode_to_vec();
            snap::raw::Encoder::new()
                .compress_vec(&raw)
                .unwrap_or_default()
        }
        Protocol::Bulk => {
            let mut out = Vec::new();
            for r in records {
                out.extend_from_slice(b"{\"create\":{\"_index\":\"bench\"}}\n");
                let mut doc = json!({"@timestamp": crate::generate::format_ts(r.ts), "message": r.msg,
                                     "log": {"level": r.level}, "service": {"name": r.service},
                                     "host": {"name": r.host}});
                for (k, v) in attrs_of(r) {
                    doc[k] = Value::String(v);
                }
                out.extend_from_slice(doc.to_string().as_bytes());
                out.push(b'\n');
            }
            out
        }
        Protocol::SyslogTcp => {
            let mut out = Vec::new();
            for r in records {
                let sev = match r.level.as_str() {
                    "FATAL" => 2,
                    "ERROR" => 3,
                    "WARN" => 4,
                    "DEBUG" | "TRACE" => 7,
                    _ => 6,
                };
                let msg = format!(
                    "<{}>1 {} {} {} - - - {}",
                    16 * 8 + sev,
                    crate::generate::format_ts(r.ts),
                    r.host,
                    r.service,
                    r.msg
                );
                out.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
            }
            out
        }
    }
}
