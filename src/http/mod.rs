//! The HTTP API: `POST /v1/ingest` (JSON batch or NDJSON, zstd/gzip), the shipper endpoints
//! (OTLP `POST /v1/logs`, Loki `POST /loki/api/v1/push`, Elasticsearch `/_bulk` and `GET /`),
//! `POST /v1/flush`, `GET /v1/tail` (live tail: Server-Sent Events or a WebSocket), `/v1/alerts`
//! (alert rules), `/mcp` (the MCP endpoint), `GET /health`, `GET /ready`,
//! and the seed tool's `POST /query`. Refusals
//! are a 4xx/5xx with `{"error": reason}`, or the shipper protocol's own error shape.
//!
//! - [`serve`]: the listener (connection caps, header timeout); [`guard`]: the API key, checked
//!   before the body is read, and the body's size, time and in-flight limits.

mod alerts;
mod elastic;
pub mod guard;
mod loki;
mod maintenance;
pub mod metrics;
mod otlp;
pub mod otlp_grpc;
pub mod serve;
mod tail;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use datafusion::execution::TaskContext;
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::ApiKeys;
use crate::ingest::decode::{decode_batch, decode_ndjson, replaced_len, DecodeError, EventError};
use crate::ingest::encoding::{self, EncodingError};
use crate::ingest::{IngestError, Ingestor, Shed};
use crate::model::{now_micros, LogRecord, DEFAULT_TENANT};
use crate::query::seed_api::{self, SeedQuery};
use crate::store::policy::TierPolicy;
use crate::store::Store;
use crate::wal::Wal;
use guard::KeyTenant;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    pub ingestor: Ingestor,
    pub store: Arc<Store>,
    pub wal: Wal,
    /// Body size, time and in-flight limits (compressed and decompressed).
    pub body: guard::BodyLimits,
    /// Runtime (footer cache, config) for `POST /query`.
    pub task: Arc<TaskContext>,
    /// Keys the data endpoints require (`Authorization: Bearer …`).
    pub keys: Arc<ApiKeys>,
    /// The server's tier policy (each tenant's overrides are read at each pass).
    pub tiers: TierPolicy,
    /// The key of the admin endpoints.
    pub admin_key: Arc<String>,
    /// Every listener's connection caps, for their figures in `/ready`.
    pub listeners: Arc<Vec<Arc<crate::admission::Admission>>>,
    /// The live-tail streams, and the heartbeat of an idle one.
    pub tail: Arc<crate::tail::Hub>,
    pub tail_heartbeat: std::time::Duration,
    /// The alert rules (`/v1/alerts`).
    pub alerts: Arc<crate::alerts::Alerts>,
    /// The MCP endpoint (`/mcp`).
    pub mcp: crate::mcp::McpService,
}

/// An HTTP refusal with a JSON reason.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: String,
    /// Seconds after which a `429` or `503` may be retried (1 when unsaid).
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// The `Retry-After` header a retryable refusal carries.
    fn retry_header(&self) -> Option<header::HeaderValue> {
        matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        )
        .then(|| header::HeaderValue::from(self.retry_after.unwrap_or(1)))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_header();
        let mut body = json!({ "error": self.reason });
        if let Some(secs) = self.retry_after {
            body["retry_after_secs"] = json!(secs);
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(v) = retry {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The router: the data endpoints behind [`guard::admit`], the probes open.
pub fn router(state: HttpState) -> Router {
    let limit = state.body.max_bytes;
    let mcp = state.mcp.clone();
    let data = Router::new()
        .route("/v1/ingest", post(ingest))
        .route("/v1/flush", post(flush))
        .route("/v1/logs", post(otlp::logs))
        .route("/v1/traces", post(otlp::traces))
        .route("/loki/api/v1/push", post(loki::push))
        .route("/_bulk", post(elastic::bulk).put(elastic::bulk))
        .route(
            "/{index}/_bulk",
            post(elastic::index_bulk).put(elastic::index_bulk),
        )
        .route("/query", post(seed_query))
        .route("/v1/tail", get(tail::tail))
        .route("/v1/alerts", get(alerts::list).post(alerts::add))
        .route("/v1/alerts/{name}", get(alerts::one).delete(alerts::remove))
        .route("/v1/alerts/{name}/mute", post(alerts::mute))
        .route("/v1/alerts/{name}/unmute", post(alerts::unmute))
        .nest_service("/mcp", mcp)
        .route_layer(from_fn_with_state(state.clone(), guard::admit));
    Router::new()
        .merge(data)
        .route("/v1/maintenance", post(maintenance::run))
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::scrape))
        .route("/", get(elastic::info))
        .route_layer(axum::middleware::from_fn(metrics::count_answers))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The router of `--metrics-addr`: `GET /metrics` and nothing else, without a key.
pub fn metrics_router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::open_scrape))
        .with_state(state)
}

/// Readiness for probes: says nothing about anyone's data (no key is asked for). With the
/// admin key it adds each listener's connections (open, cap, refused and evicted since start).
async fn ready(State(s): State<HttpState>, headers: HeaderMap) -> impl IntoResponse {
    if !maintenance::is_admin(&s, &headers) {
        return Json(json!({ "status": "ready" }));
    }
    let connections: serde_json::Map<String, serde_json::Value> = s
        .listeners
        .iter()
        .map(|a| (a.name().to_string(), json!(a.stats())))
        .collect();
    Json(json!({ "status": "ready", "connections": connections }))
}

/// `POST /query` (see [`crate::query::seed_api`]).
async fn seed_query(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let q = SeedQuery::parse(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let answer = seed_api::answer(&s.store, s.task.clone(), &q, &tenant)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(answer).into_response())
}

/// Flushes the hot buffer; the answer counts only the key's tenant's segments.
async fn flush(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let report = s.store.flush(&s.wal).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("flush failed: {e}"),
        )
    })?;
    let mine = report.written.iter().filter(|w| w.tenant == tenant);
    let (segments, rows, bytes) =
        mine.fold((0, 0, 0), |(n, r, b), w| (n + 1, r + w.rows, b + w.bytes));
    Ok(Json(
        json!({ "segments": segments, "rows": rows, "bytes": bytes }),
    ))
}

impl From<EncodingError> for ApiError {
    fn from(e: EncodingError) -> ApiError {
        let status = match e {
            EncodingError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            EncodingError::Corrupt { .. } => StatusCode::BAD_REQUEST,
            EncodingError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Charges the copy that replacing invalid UTF-8 makes of a body (none for valid UTF-8).
fn charge_text(s: &HttpState, raw: &[u8]) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
    if std::str::from_utf8(raw).is_ok() {
        return Ok(None);
    }
    s.body.reserve(raw.len().saturating_add(replaced_len(raw)))
}

/// A decompressed body and its share of the in-flight budget (held while it is).
struct Decompressed {
    bytes: Bytes,
    _held: Option<OwnedSemaphorePermit>,
}

/// Decompresses by `Content-Encoding`, refusing output larger than the body limit; each chunk
/// of output is charged to the in-flight budget before it is kept (503 once it is spent).
fn decompress(s: &HttpState, headers: &HeaderMap, body: Bytes) -> Result<Decompressed, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    let mut held: Option<OwnedSemaphorePermit> = None;
    let bytes = encoding::decompress_charged(encoding, body, s.body.max_bytes, |n| {
        if let Some(permit) = s.body.reserve(n)? {
            match &mut held {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
        }
        Ok::<(), ApiError>(())
    })?;
    Ok(Decompressed { bytes, _held: held })
}

async fn ingest(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let raw = decompress(&s, &headers, body)?;
    let raw = &raw.bytes;
    let _text = charge_text(&s, raw)?;
    let content_type = content_type(&headers, "application/json");
    let now = now_micros();
    let decoding = tracing::info_span!("decode", protocol = "http").entered();
    let decoded = match content_type.as_str() {
        "application/json" | "" => decode_batch(raw, now),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            decode_ndjson(raw, now)
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Type \"{other}\"; use application/json or application/x-ndjson"),
            ))
        }
    }
    .map_err(|e| match e {
        DecodeError::TooManyEvents(_) | DecodeError::TooLarge { .. } | DecodeError::Limit(_) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        DecodeError::Malformed(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
    })?;
    drop(decoding);
    let mut decoded = decoded;
    let shed = store_records(&s, &tenant, &mut decoded.records, "http").await?;
    let errors: Vec<EventError> = decoded.errors;
    let body = json!({
        "accepted": decoded.records.len(),
        "failed": errors.len(),
        "errors": errors,
        "shed": shed.count(),
        "shed_by_level": shed.by_level,
        "lag_hint": s.ingestor.pressure().as_str(),
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The media type of a request (`default` when it names none), lower case, parameters dropped.
fn content_type(headers: &HeaderMap, default: &str) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(default)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Every endpoint's way in: charges the decoded records to the in-flight budget (each holds its
/// copy of shared labels), stamps the key's tenant, charges them to the tenant's ingest quota
/// (which may shed the lowest levels: returned, and removed from `records`), and accepts the
/// rest durably (WAL fsync, then the hot buffer). Over the quota is 429 with the seconds to
/// wait, a full buffer 503 (retry), a batch larger than the buffer 413.
async fn store_records(
    s: &HttpState,
    tenant: &str,
    records: &mut Vec<LogRecord>,
    protocol: &'static str,
) -> Result<Shed, ApiError> {
    if records.is_empty() {
        return Ok(Shed::default());
    }
    let expanded: usize = records.iter().map(LogRecord::approx_bytes).sum();
    let _held = s.body.reserve(expanded)?;
    if tenant != DEFAULT_TENANT {
        for r in records.iter_mut() {
            r.tenant = tenant.to_string();
        }
    }
    let shed = s
        .ingestor
        .admit(records, protocol, true)
        .map_err(|e| match e {
            IngestError::OverQuota { retry_after, .. } => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                reason: e.to_string(),
                retry_after: Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            },
            other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        })?;
    s.ingestor
        .accept(records, protocol)
        .await
        .map_err(|e| match e {
            IngestError::BufferFull { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            IngestError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            // The same batch would take as long again: not one to retry.
            IngestError::RedactionTimeout { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        })?;
    Ok(shed)
}
