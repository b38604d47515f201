//! `GET /v1/tail`: a live tail as Server-Sent Events — the backfill, an `event: live` marker,
//! then each matching row as it is ingested (`id:` to resume from with `Last-Event-ID`),
//! `event: dropped` when the client reads too slowly, and a heartbeat comment when idle — or,
//! when the request asks to upgrade, the same events as WebSocket text messages (one JSON
//! object each) with pings as heartbeats.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use datafusion::error::DataFusionError;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;

use super::guard::KeyTenant;
use super::{ApiError, HttpState};
use crate::model::now_micros;
use crate::tail::event::{Cursor, TailEvent};
use crate::tail::filter::TailParams;
use crate::tail::stream;
use crate::tail::TailRefused;

/// Seconds a client refused for the stream limits is told to wait.
const RETRY_SECS: u64 = 5;
/// Largest WebSocket message (or frame) a tail client may send.
const CLIENT_MESSAGE_BYTES: usize = 4096;

pub(super) async fn tail(
    State(s): State<HttpState>,
    Extension(KeyTenant(tenant)): Extension<KeyTenant>,
    req: Request,
) -> Result<Response, ApiError> {
    let bad = |e: String| ApiError::new(StatusCode::BAD_REQUEST, e);
    let (mut parts, _) = req.into_parts();
    let Query(params) =
        Query::<TailParams>::try_from_uri(&parts.uri).map_err(|e| bad(e.body_text()))?;
    let spec = params
        .spec(&tenant, now_micros())
        .map_err(|e| bad(e.to_string()))?;
    let resume = resume_from(&parts.headers, params.last_event_id.as_deref()).map_err(bad)?;
    let upgrade = if wants_websocket(&parts.headers) {
        let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .map_err(|e| bad(e.body_text()))?;
        Some(ws)
    } else {
        None
    };
    let place = s.tail.open(&tenant).map_err(|e: TailRefused| ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        retry_after: Some(RETRY_SECS),
        reason: e.to_string(),
    })?;
    let rx = stream::open(&s.tail, &s.store, place, &tenant, spec, resume)
        .await
        .map_err(|e| match e.find_root() {
            // The backfill asked for more time or memory than a tail may use: the client's
            // `since`, `limit` or filters, not the server, are to change.
            DataFusionError::ResourcesExhausted(why) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the backfill is too large to read: {why}; narrow since, limit or the filters"
                ),
            ),
            _ => {
                tracing::warn!(error = %e, "opening a tail stream");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reading the backfill: {e}"),
                )
            }
        })?;
    if let Some(ws) = upgrade {
        let heartbeat = s.tail_heartbeat;
        // A tail client has nothing to say but a close: its messages are kept small.
        let ws = ws
            .max_message_size(CLIENT_MESSAGE_BYTES)
            .max_frame_size(CLIENT_MESSAGE_BYTES);
        return Ok(ws.on_upgrade(move |socket| websocket(socket, rx, heartbeat)));
    }
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        Some((Ok::<Event, Infallible>(sse(e)), rx))
    });
    let keep_alive = KeepAlive::new()
        .interval(s.tail_heartbeat)
        .text("heartbeat");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

/// Where the client stood: `Last-Event-ID`, or the `last_event_id` parameter (which a browser's
/// WebSocket, unable to set headers, sends instead).
fn resume_from(headers: &HeaderMap, param: Option<&str>) -> Result<Option<Cursor>, String> {
    let header = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| "Last-Event-ID is not text".to_string())?,
        ),
        None => None,
    };
    header
        .or(param)
        .map(|text| Cursor::parse(text).map_err(|e| e.to_string()))
        .transpose()
}

fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Sends the stream's events as text messages and a ping every `heartbeat`; ends when the
/// client closes (which ends the stream and frees its place).
async fn websocket(socket: WebSocket, mut rx: mpsc::Receiver<TailEvent>, heartbeat: Duration) {
    let (mut tx, mut incoming) = socket.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                if tx.send(Message::Text(message(event).into())).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            got = incoming.next() => match got {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = tx.close().await;
}

/// One event as a WebSocket message: `{"id","row"}` for a row, `{"event",…}` otherwise.
fn message(e: TailEvent) -> String {
    match e {
        TailEvent::Row { id, json } => format!(r#"{{"id":"{id}","row":{json}}}"#),
        TailEvent::Dropped { count, reason } => {
            json!({ "event": "dropped", "count": count, "reason": reason }).to_string()
        }
        TailEvent::Truncated { sent, from } => {
            json!({ "event": "truncated", "sent": sent, "from": from }).to_string()
        }
        TailEvent::Live => json!({ "event": "live" }).to_string(),
    }
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
