//! `POST /loki/api/v1/push`: Loki's push API, snappy-compressed protobuf
//! (`application/x-protobuf`, what Loki clients send) or JSON (`application/json`, gzip or not).
//! `204 No Content` on success; refusals are text, as Loki answers them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::guard::KeyTenant;
use super::{content_type, decompress, store_records, ApiError, HttpState};
use crate::ingest::{loki, Shed};
use crate::model::now_micros;

pub async fn push(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept(&s, &tenant, &headers, body).await {
        Ok(shed) if shed.count() == 0 => StatusCode::NO_CONTENT.into_response(),
        // Loki's clients take any 2xx; the body says what the quota shed.
        Ok(shed) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "shed": shed.count(),
                "shed_by_level": shed.by_level,
                "message": shed.describe(),
            })),
        )
            .into_response(),
        Err(e) => {
            let retry = e.retry_header();
            let mut resp = (e.status, format!("{}\n", e.reason)).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            if let Some(v) = retry {
                h.insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

async fn accept(
    s: &HttpState,
    tenant: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Shed, ApiError> {
    let now = now_micros();
    let max = s.body.max_bytes;
    let decoded = match content_type(headers, "application/x-protobuf").as_str() {
        "application/x-protobuf" | "application/protobuf" => {
            let _held = s.body.reserve(max.min(snap_len(&body)))?;
            loki::decode_protobuf(&body, max, now)
        }
        "application/json" => loki::decode_json(&decompress(s, headers, body)?.bytes, now),
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Type \"{other}\"; Loki push is application/x-protobuf (snappy) or application/json"),
            ))
        }
    }
    .map_err(|e| {
        let status = match e {
            loki::LokiError::TooLarge { .. } | loki::LokiError::Limit(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    })?;
    let mut records = decoded.records;
    store_records(s, tenant, &mut records, "loki").await
}

/// The decompressed size a snappy body claims (0 when it claims nothing readable).
fn snap_len(body: &[u8]) -> usize {
    snap::raw::decompress_len(body).unwrap_or(0)
}
