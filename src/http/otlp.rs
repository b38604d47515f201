//! `POST /v1/logs` and `POST /v1/traces`: OTLP/HTTP logs and spans, protobuf (`application/x-protobuf`) or OTLP/JSON
//! (`application/json`), gzip or not. Answers as the OTLP spec says: the
//! `Export…ServiceResponse` in the request's encoding on success, a `google.rpc.Status` (same
//! encoding) with 400 for a body that cannot be decoded, 503 with `Retry-After` when the buffer
//! is full, so exporters retry.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;

use super::guard::KeyTenant;
use super::{content_type, decompress, store_records, ApiError, HttpState};
use crate::ingest::{otlp, otlp_traces, Shed};
use crate::model::now_micros;

/// `google.rpc.Status`, the OTLP error body.
#[derive(Clone, PartialEq, Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn media_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// An error in the OTLP shape of the request's encoding.
fn status(encoding: Encoding, e: ApiError) -> Response {
    // gRPC codes: INVALID_ARGUMENT 3, RESOURCE_EXHAUSTED 8, UNAVAILABLE 14.
    let code = match e.status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => 8,
        _ => 14,
    };
    let body = match encoding {
        Encoding::Protobuf => Status {
            code,
            message: e.reason.clone(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": code, "message": e.reason })
            .to_string()
            .into_bytes(),
    };
    let retry = e.retry_header();
    let mut resp = (e.status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.media_type()),
    );
    if let Some(v) = retry {
        h.insert(header::RETRY_AFTER, v);
    }
    resp
}

/// OTLP's report of records a quota shed (none when nothing was).
pub(super) fn partial_success(shed: &Shed) -> Option<ExportLogsPartialSuccess> {
    if shed.count() == 0 {
        return None;
    }
    Some(ExportLogsPartialSuccess {
        rejected_log_records: shed.count() as i64,
        error_message: shed.describe(),
    })
}

/// What an OTLP/HTTP request carries.
#[derive(Clone, Copy, PartialEq)]
enum Signal {
    Logs,
    Traces,
}

/// `POST /v1/logs`.
pub async fn logs(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(Signal::Logs, &s, &tenant, &headers, body).await
}

/// `POST /v1/traces`: each span a row (see [`crate::ingest::otlp_traces`]).
pub async fn traces(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(Signal::Traces, &s, &tenant, &headers, body).await
}

async fn receive(
    signal: Signal,
    s: &HttpState,
    tenant: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let encoding = match content_type(headers, "application/x-protobuf").as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            let e = ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Type \"{other}\"; OTLP/HTTP is application/x-protobuf or application/json"),
            );
            return status(Encoding::Json, e);
        }
    };
    match export(signal, s, tenant, headers, body, encoding).await {
        Ok(shed) => {
            let rejected = partial_success(&shed);
            let body = match (encoding, signal) {
                (Encoding::Protobuf, Signal::Logs) => ExportLogsServiceResponse {
                    partial_success: rejected,
                }
                .encode_to_vec(),
                (Encoding::Protobuf, Signal::Traces) => ExportTraceServiceResponse {
                    partial_success: rejected.map(|p| ExportTracePartialSuccess {
                        rejected_spans: p.rejected_log_records,
                        error_message: p.error_message,
                    }),
                }
                .encode_to_vec(),
                (Encoding::Json, _) => match &rejected {
                    Some(p) => {
                        let count = match signal {
                            Signal::Logs => "rejectedLogRecords",
                            Signal::Traces => "rejectedSpans",
                        };
                        serde_json::json!({ "partialSuccess": {
                            count: p.rejected_log_records.to_string(),
                            "errorMessage": p.error_message,
                        }})
                        .to_string()
                        .into_bytes()
                    }
                    None => b"{}".to_vec(),
                },
            };
            let mut r = (StatusCode::OK, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(encoding.media_type()),
            );
            r
        }
        Err(e) => status(encoding, e),
    }
}

async fn export(
    signal: Signal,
    s: &HttpState,
    tenant: &str,
    headers: &HeaderMap,
    body: Bytes,
    encoding: Encoding,
) -> Result<Shed, ApiError> {
    let raw = decompress(s, headers, body)?;
    let now = now_micros();
    let decoded = {
        let _decode = tracing::info_span!("decode", protocol = "otlp_http").entered();
        match (signal, encoding) {
            (Signal::Logs, Encoding::Protobuf) => otlp::decode_protobuf(&raw.bytes, now),
            (Signal::Logs, Encoding::Json) => otlp::decode_json(&raw.bytes, now),
            (Signal::Traces, Encoding::Protobuf) => otlp_traces::decode_protobuf(&raw.bytes, now),
            (Signal::Traces, Encoding::Json) => otlp_traces::decode_json(&raw.bytes, now),
        }
    }
    .map_err(|e| match e {
        otlp::OtlpError::Limit(_) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        _ => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
    })?;
    let mut records = decoded.records;
    store_records(s, tenant, &mut records, "otlp_http").await
}
