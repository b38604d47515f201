//! The HTTP API: `POST /v1/ingest` (JSON batch or NDJSON, zstd/gzip), `POST /v1/flush`,
//! `GET /health`, `GET /ready`, and the seed tool's `POST /query`. Every refusal is a 4xx/5xx with `{"error": reason}`.

use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use datafusion::execution::TaskContext;
use serde_json::json;

use super::decode::{decode_batch, decode_ndjson, DecodeError, EventError};
use super::{IngestError, Ingestor};
use crate::auth::ApiKeys;
use crate::model::{now_micros, DEFAULT_TENANT};
use crate::query::seed_api::{self, SeedQuery};
use crate::store::Store;
use crate::wal::Wal;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    pub ingestor: Ingestor,
    pub store: Arc<Store>,
    pub wal: Wal,
    /// Largest body accepted, compressed or not.
    pub max_body_bytes: usize,
    /// Runtime (footer cache, config) for `POST /query`.
    pub task: Arc<TaskContext>,
    /// Keys the data endpoints require (`Authorization: Bearer …`).
    pub keys: Arc<ApiKeys>,
}

/// The tenant an `Authorization: Bearer <key>` header proves; 401 without a valid key.
async fn tenant(s: &HttpState, headers: &HeaderMap) -> Result<String, ApiError> {
    let unauthorized = |why: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("{why}: send Authorization: Bearer <api key>"),
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("no API key"))?
        .to_str()
        .map_err(|_| unauthorized("unreadable Authorization header"))?;
    let key = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| unauthorized("Authorization is not a Bearer key"))?
        .trim();
    // Every request of a known key takes this path; only an unknown one reads the keys file.
    if let Some(tenant) = s.keys.known(key) {
        return Ok(tenant);
    }
    let keys = s.keys.clone();
    let key = key.to_string();
    let found = tokio::task::spawn_blocking(move || keys.tenant_of(&key))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| {
            tracing::error!(error = %e, "reading API keys");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read API keys; see the server log",
            )
        })?;
    found.ok_or_else(|| unauthorized("unknown API key"))
}

/// An HTTP refusal with a JSON reason.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: String,
}

impl ApiError {
    fn new(status: StatusCode, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason: reason.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(json!({ "error": self.reason }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        resp
    }
}

/// The router.
pub fn router(state: HttpState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/ingest", post(ingest))
        .route("/v1/flush", post(flush))
        .route("/query", post(seed_query))
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn ready(State(s): State<HttpState>) -> impl IntoResponse {
    Json(json!({
        "status": "ready",
        "hot_rows": s.store.buffer.rows(),
        "hot_bytes": s.store.buffer.bytes(),
        "segments": s.store.catalog.segments().len(),
    }))
}

/// `POST /query` (see [`crate::query::seed_api`]).
async fn seed_query(
    State(s): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = tenant(&s, &headers).await?;
    let q = SeedQuery::parse(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let answer = seed_api::answer(&s.store, s.task.clone(), &q, &tenant)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(answer).into_response())
}

async fn flush(
    State(s): State<HttpState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    tenant(&s, &headers).await?;
    let report = s.store.flush(&s.wal).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("flush failed: {e}"),
        )
    })?;
    Ok(Json(json!({
        "segments": report.segments,
        "rows": report.rows,
        "bytes": report.bytes,
        "flushed_through": report.flushed_through,
        "wal_files_removed": report.wal_files_removed,
    })))
}

/// Decompresses by `Content-Encoding`, refusing output larger than `max`.
fn decompress(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("decompressed body exceeds {max} bytes"),
        )
    };
    let read_capped = |mut r: Box<dyn Read + '_>| -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        (&mut r)
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot decompress body ({encoding}): {e}"),
                )
            })?;
        if out.len() > max {
            return Err(too_big());
        }
        Ok(out)
    };
    match encoding.as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "x-gzip" => {
            read_capped(Box::new(flate2::read::MultiGzDecoder::new(&body[..]))).map(Bytes::from)
        }
        "zstd" => {
            let dec = zstd::stream::read::Decoder::new(&body[..]).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot decompress body (zstd): {e}"),
                )
            })?;
            read_capped(Box::new(dec)).map(Bytes::from)
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding \"{other}\"; use zstd, gzip or none"),
        )),
    }
}

async fn ingest(
    State(s): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let tenant = tenant(&s, &headers).await?;
    let body = body.map_err(|r| {
        ApiError::new(
            r.status(),
            format!("{} (limit {} bytes)", r.body_text(), s.max_body_bytes),
        )
    })?;
    let raw = decompress(&headers, body, s.max_body_bytes)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let now = now_micros();
    let decoded = match content_type.as_str() {
        "application/json" | "" => decode_batch(&raw, now),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            decode_ndjson(&raw, now)
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Type \"{other}\"; use application/json or application/x-ndjson"),
            ))
        }
    }
    .map_err(|e| match e {
        DecodeError::TooManyEvents(_) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        DecodeError::Malformed(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
    })?;
    let mut decoded = decoded;
    if tenant != DEFAULT_TENANT {
        for r in &mut decoded.records {
            r.tenant.clone_from(&tenant);
        }
    }
    let accepted = decoded.records.len();
    if accepted > 0 {
        s.ingestor
            .accept(&decoded.records)
            .await
            .map_err(|e| match e {
                IngestError::BufferFull { .. } => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                }
                other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
            })?;
    }
    let errors: Vec<EventError> = decoded.errors;
    let body = json!({
        "accepted": accepted,
        "failed": errors.len(),
        "errors": errors,
        "lag_hint": s.ingestor.pressure().as_str(),
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
