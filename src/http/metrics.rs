//! `GET /metrics`: the registry of [`crate::metrics`] in Prometheus's text format, with the
//! state read now (hot buffer, segments and bytes per tier, open connections per listener).
//! Every tenant's figures are in it, so it answers only the admin key (Prometheus's
//! `authorization` setting), unless `--metrics-addr` serves it on an address of its own.
//! Beside it, the layer that counts every HTTP answer by route and status, writes it to the
//! audit trail, and gives each request an id its log lines carry.

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::Instrument;

use super::guard::Caller;
use super::maintenance::is_admin;
use super::serve::ClientAddr;
use super::{ApiError, HttpState};
use crate::audit::{self, AuditEvent};
use crate::metrics::{metrics, Answered, ListenerLabels, TierLabels};

/// The scrape, for the admin key only.
pub async fn scrape(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    if !is_admin(&s, &headers) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "metrics hold every tenant's figures: send Authorization: Bearer <admin key>, or serve them on --metrics-addr",
        )
        .into_response();
    }
    open_scrape(State(s)).await
}

/// The scrape without a key (the `--metrics-addr` listener).
pub async fn open_scrape(State(s): State<HttpState>) -> Response {
    let m = metrics();
    m.hot_buffer_bytes.set(s.store.buffer.bytes() as i64);
    let segments = s.store.catalog.segments();
    for tier in ["hot", "warm", "cold"] {
        let of_tier = segments.iter().filter(|g| g.location.tier.as_str() == tier);
        let (n, bytes) = of_tier.fold((0i64, 0i64), |(n, b), g| (n + 1, b + g.bytes as i64));
        let labels = TierLabels { tier: tier.into() };
        m.segments.get_or_create(&labels).set(n);
        m.segment_bytes.get_or_create(&labels).set(bytes);
    }
    for listener in s.listeners.iter() {
        let labels = ListenerLabels {
            listener: listener.name().into(),
        };
        m.connections
            .get_or_create(&labels)
            .set(listener.stats().open as i64);
    }
    if let Some(cold) = s.store.files.cold() {
        let c = cold.count();
        m.sync_store(c.gets, c.get_bytes, c.other, c.hits, c.errors);
    }
    let mut response = Body::from(m.render()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Counts each answer by its route (the pattern, not the path: bounded) and status, and runs
/// the request in a span with its id (in every log line it causes, and at debug level one line
/// with its status and time).
/// Audited calls without a known key, a second; the others are counted as dropped.
const ANONYMOUS_AUDITS: u64 = 100;

/// Whether one more call without a key may be audited this second.
fn anonymous_audit_allowed() -> bool {
    static SECOND: AtomicU64 = AtomicU64::new(0);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if SECOND.swap(now, Ordering::Relaxed) != now {
        COUNT.store(0, Ordering::Relaxed);
    }
    if COUNT.fetch_add(1, Ordering::Relaxed) < ANONYMOUS_AUDITS {
        return true;
    }
    metrics().audit_dropped.inc();
    false
}

pub async fn count_answers(request: Request, next: Next) -> Response {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("http_request", request_id = id, route = %route);
    // A server storing its own spans does not trace storing them (see `telemetry`).
    if route == "/v1/traces" {
        crate::telemetry::untraced(&span);
    }
    let started = std::time::Instant::now();
    let client = request.extensions().get::<ClientAddr>().map(|a| a.0.ip());
    let method = request.method().clone();
    let response = next.run(request).instrument(span.clone()).await;
    // Every API call but the probes (and Elasticsearch clients' `GET /`) is audited; calls
    // without a known key at most ANONYMOUS_AUDITS a second, so that a flood of them cannot
    // push the real calls' and statements' events out of the audit queue.
    let caller = response.extensions().get::<Caller>();
    if audit::enabled()
        && !matches!(route.as_str(), "/health" | "/ready" | "/")
        && (caller.is_some() || anonymous_audit_allowed())
    {
        let status = response.status();
        audit::record(AuditEvent {
            user_name: caller
                .map(|c| format!("key:{}", c.key_id))
                .unwrap_or_default(),
            tenant: caller.map(|c| c.tenant.clone()).unwrap_or_default(),
            client_addr: client.map(|ip| ip.to_string()).unwrap_or_default(),
            kind: "http",
            query_text: format!("{method} {route}"),
            duration: started.elapsed(),
            outcome: if status.is_client_error() || status.is_server_error() {
                "error"
            } else {
                "ok"
            },
            sqlstate: status.as_u16().to_string(),
            ..AuditEvent::default()
        });
    }
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
    metrics()
        .http_responses
        .get_or_create(&Answered {
            route,
            status: response.status().as_u16().to_string(),
        })
        .inc();
    response
}
