//! `GET /v1/tail`: a live tail as Server-Sent Events — the backfill, an `event: live` marker,
//! then each matching row as it is ingested (`id:` to resume from with `Last-Event-ID`),
//! `event: dropped` when the client reads too slowly, and a heartbeat comment when idle.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::json;

use super::guard::KeyTenant;
use super::{ApiError, HttpState};
use crate::model::now_micros;
use crate::tail::event::Cursor;
use crate::tail::filter::TailParams;
use crate::tail::stream::{self, TailEvent};
use crate::tail::TailRefused;

/// Seconds a client refused for the stream limits is told to wait.
const RETRY_SECS: u64 = 5;

pub(super) async fn tail(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let bad = |e: String| ApiError::new(StatusCode::BAD_REQUEST, e);
    let Query(params) = Query::<TailParams>::try_from_uri(&uri).map_err(|e| bad(e.body_text()))?;
    let spec = params
        .spec(&tenant, now_micros())
        .map_err(|e| bad(e.to_string()))?;
    let resume = headers
        .get("last-event-id")
        .map(|v| {
            let text = v
                .to_str()
                .map_err(|_| bad("Last-Event-ID is not text".into()))?;
            Cursor::parse(text).map_err(|e| bad(e.to_string()))
        })
        .transpose()?;
    let place = s.tail.open(&tenant).map_err(|e| ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        retry_after: Some(match e {
            TailRefused::TenantLimit { .. } | TailRefused::ServerLimit { .. } => RETRY_SECS,
        }),
        reason: e.to_string(),
    })?;
    let rx = stream::open(&s.tail, &s.store, place, &tenant, spec, resume)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "opening a tail stream");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the backfill: {e}"),
            )
        })?;
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        Some((Ok::<Event, Infallible>(sse(e)), rx))
    });
    let keep_alive = KeepAlive::new()
        .interval(s.tail_heartbeat)
        .text("heartbeat");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

/// One event as SSE writes it.
fn sse(e: TailEvent) -> Event {
    match e {
        TailEvent::Row { id, json } => Event::default().id(id).data(json),
        TailEvent::Dropped { count, reason } => Event::default()
            .event("dropped")
            .data(json!({ "count": count, "reason": reason }).to_string()),
        TailEvent::Truncated { sent, from } => Event::default().event("truncated").data(
            json!({
                "sent": sent,
                "from": from,
                "reason": "the backfill held more rows than its limit; only the newest were sent",
            })
            .to_string(),
        ),
        TailEvent::Live => Event::default().event("live").data("{}"),
    }
}
