//! The Elasticsearch API shippers use: `POST|PUT /_bulk` and `/{index}/_bulk` (NDJSON, per-item
//! results in Elasticsearch's shape), and `GET /` (the cluster info clients check first). Every
//! answer carries `X-Elastic-Product: Elasticsearch`, which the official clients require.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::guard::KeyTenant;
use super::{charge_text, decompress, store_records, ApiError, HttpState};
use crate::ingest::bulk::{decode_bulk, Outcome};
use crate::ingest::decode::utf8;
use crate::model::now_micros;

/// The Elasticsearch version we answer as (8.x clients accept it).
const VERSION: &str = "8.11.0";

/// Makes `_id`s unique across requests of one process.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn product(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    resp
}

/// An Elasticsearch-shaped error.
fn es_error(e: ApiError) -> Response {
    // Elasticsearch answers a full queue with 429, which its clients retry.
    let e = match e.status {
        StatusCode::SERVICE_UNAVAILABLE => ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            ..e
        },
        _ => e,
    };
    let kind = match e.status {
        StatusCode::TOO_MANY_REQUESTS => "es_rejected_execution_exception",
        StatusCode::PAYLOAD_TOO_LARGE => "content_too_long_exception",
        StatusCode::UNAUTHORIZED => "security_exception",
        _ => "parse_exception",
    };
    let body = json!({
        "error": {
            "root_cause": [{ "type": kind, "reason": e.reason }],
            "type": kind,
            "reason": e.reason,
        },
        "status": e.status.as_u16(),
    });
    let retry = e.retry_header();
    let mut resp = (e.status, Json(body)).into_response();
    if let Some(v) = retry {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    product(resp)
}

/// `GET /`: who we are, as Elasticsearch says it.
pub async fn info() -> Response {
    product(
        Json(json!({
            "name": "timberline",
            "cluster_name": "timberline",
            "cluster_uuid": "timberline-logs",
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "build_type": "timberline",
                "lucene_version": "9.8.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0"
            },
            "tagline": "You Know, for Search"
        }))
        .into_response(),
    )
}

/// `/_bulk`.
pub async fn bulk(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bulk_into(&s, &tenant, None, &headers, body).await
}

/// `/{index}/_bulk`.
pub async fn index_bulk(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bulk_into(&s, &tenant, Some(&index), &headers, body).await
}

async fn bulk_into(
    s: &HttpState,
    tenant: &str,
    index: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let raw = match decompress(s, headers, body) {
        Ok(raw) => raw,
        Err(e) => return es_error(e),
    };
    let _text = match charge_text(s, &raw.bytes) {
        Ok(held) => held,
        Err(e) => return es_error(e),
    };
    let text = utf8(&raw.bytes);
    let mut bulk = match decode_bulk(&text, index, now_micros()) {
        Ok(b) => b,
        Err(e) => return es_error(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())),
    };
    let shed = match store_records(s, tenant, &mut bulk.records, "bulk").await {
        Ok(shed) => shed,
        Err(e) => return es_error(e),
    };
    let first = NEXT_ID.fetch_add(bulk.items.len() as u64, Ordering::Relaxed);
    let mut errors = false;
    let items: Vec<Value> = bulk
        .items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let id = item
                .id
                .unwrap_or_else(|| format!("{:x}-{:x}", now_micros(), first + i as u64));
            let result = match item.outcome {
                // Shed by the tenant's quota: Elasticsearch's clients retry a 429 item.
                Outcome::Stored(n) if shed.indices.binary_search(&n).is_ok() => {
                    errors = true;
                    json!({
                        "_index": item.index, "_id": id, "status": 429,
                        "error": { "type": "es_rejected_execution_exception", "reason": shed.describe() }
                    })
                }
                Outcome::Stored(_) => json!({
                    "_index": item.index, "_id": id, "_version": 1, "result": "created",
                    "_shards": { "total": 1, "successful": 1, "failed": 0 },
                    "_seq_no": first + i as u64, "_primary_term": 1, "status": 201
                }),
                Outcome::Refused { kind, reason } => {
                    errors = true;
                    json!({
                        "_index": item.index, "_id": id, "status": 400,
                        "error": { "type": kind, "reason": reason }
                    })
                }
            };
            json!({ item.action: result })
        })
        .collect();
    let took = started.elapsed().as_millis() as u64;
    product(Json(json!({ "took": took, "errors": errors, "items": items })).into_response())
}
