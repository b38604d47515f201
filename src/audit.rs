//! The audit trail: each SQL statement and each HTTP API call becomes a row of the reserved
//! tenant `_audit`, written through the ingest path — WAL, segments, tiers and retention like
//! any log (`timberline tenant set _audit --retention 400d`) — and read back as the
//! `audit_log` table, by the administrator only.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::ingest::Ingestor;
use crate::model::{now_micros, LogRecord};

/// The tenant the audit rows belong to; no user or key can be bound to it (names starting
/// with `_` are reserved).
pub const AUDIT_TENANT: &str = "_audit";

/// The `service` of audit rows.
pub const AUDIT_SERVICE: &str = "audit";

/// Events waiting to be written; past it an event is dropped and counted
/// (`timberline_audit_dropped_total`), never blocking the statement it records. With
/// [`MAX_TEXT`], the queue holds at most ~128 MiB of statement text.
const QUEUE: usize = 16_384;

/// The most of a statement's text an event keeps (a client's SQL may be megabytes).
pub const MAX_TEXT: usize = 8 * 1024;

/// Most events written in one batch.
const BATCH: usize = 2_048;

/// One statement or API call.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub user_name: String,
    pub tenant: String,
    pub client_addr: String,
    /// `sql` or `http`.
    pub kind: &'static str,
    /// The statement, or `METHOD /route` of an API call.
    pub query_text: String,
    pub duration: Duration,
    pub rows: u64,
    pub bytes_scanned: u64,
    /// `ok`, `error` or `cancelled`.
    pub outcome: &'static str,
    /// The SQLSTATE of a failed statement; the HTTP status of an API call.
    pub sqlstate: String,
}

impl AuditEvent {
    /// The event as a log row of [`AUDIT_TENANT`], stamped with its start.
    fn into_record(self, now: i64) -> LogRecord {
        let took = i64::try_from(self.duration.as_micros()).unwrap_or(i64::MAX);
        let attrs = json!({
            "user_name": self.user_name,
            "tenant": self.tenant,
            "client_addr": self.client_addr,
            "kind": self.kind,
            "duration_ms": self.duration.as_secs_f64() * 1000.0,
            "rows": self.rows,
            "bytes_scanned": self.bytes_scanned,
            "outcome": self.outcome,
            "sqlstate": self.sqlstate,
        });
        let mut r = LogRecord {
            ts: now.saturating_sub(took),
            ingest_ts: now,
            tenant: AUDIT_TENANT.to_string(),
            service: AUDIT_SERVICE.to_string(),
            host: self.client_addr,
            level: if self.outcome == "ok" {
                "INFO"
            } else {
                "ERROR"
            }
            .to_string(),
            msg: self.query_text,
            trace_id: None,
            attrs: attrs.to_string(),
            parse_failed: false,
            truncated: false,
        };
        r.enforce_msg_limit();
        r
    }
}

static AUDITOR: OnceLock<mpsc::Sender<AuditEvent>> = OnceLock::new();

/// Starts writing the audit trail through `ingestor` (once a process; a second call is a
/// no-op). Until then, and in tools that never call it, [`record`] keeps nothing.
pub fn start(ingestor: Ingestor) {
    let (tx, rx) = mpsc::channel(QUEUE);
    if AUDITOR.set(tx).is_ok() {
        tokio::spawn(writer(rx, ingestor));
    }
}

/// Whether events are recorded (`--audit true`, the trail started).
pub fn enabled() -> bool {
    AUDITOR.get().is_some()
}

/// What an event keeps of `text`: its first [`MAX_TEXT`] bytes, cut on a character boundary.
pub fn clipped(text: &str) -> &str {
    let mut cut = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// Records `event` (without waiting: a full queue drops it, counted in the metrics).
pub fn record(mut event: AuditEvent) {
    let Some(tx) = AUDITOR.get() else {
        return;
    };
    if event.query_text.len() > MAX_TEXT {
        event.query_text = clipped(&event.query_text).to_string();
    }
    if tx.try_send(event).is_err() {
        crate::metrics::metrics().audit_dropped.inc();
    }
}

async fn writer(mut rx: mpsc::Receiver<AuditEvent>, ingestor: Ingestor) {
    let mut events = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut events, BATCH).await > 0 {
        let now = now_micros();
        let mut records: Vec<LogRecord> = events.drain(..).map(|e| e.into_record(now)).collect();
        for chunk in records.chunks_mut(256) {
            if let Err(e) = ingestor.prepare(chunk, "audit") {
                tracing::error!(error = %e, rows = chunk.len(), "audit rows dropped");
                crate::metrics::metrics()
                    .audit_dropped
                    .inc_by(chunk.len() as u64);
                continue;
            }
            // What the WAL still refuses after ten tries a second apart (its disk failing)
            // is dropped and counted.
            let lost = ingestor.accept_waiting(chunk, "audit", Some(10)).await;
            if lost > 0 {
                crate::metrics::metrics().audit_dropped.inc_by(lost as u64);
            }
        }
    }
}
