//! A statement's audit record: who sent it, from where, what it was, and how it ended — kept by
//! the statement while it runs and written to the audit trail when it ends.

use std::net::SocketAddr;
use std::time::Instant;

use pgwire::error::PgWireError;
use timberline_udfs::pg_compat::PgSession;

use crate::audit::{record, AuditEvent};

/// The audit record of one statement, open until [`StatementAudit::finish`].
#[derive(Debug)]
pub struct StatementAudit {
    event: AuditEvent,
    started: Instant,
}

impl StatementAudit {
    /// A statement of `session`'s user from `client`, arriving now.
    pub fn new(session: &PgSession, client: SocketAddr, sql: &str) -> StatementAudit {
        StatementAudit {
            event: AuditEvent {
                user_name: session.user.clone(),
                tenant: session.tenant.name().unwrap_or("*").to_string(),
                client_addr: client.ip().to_string(),
                kind: "sql",
                query_text: crate::audit::clipped(sql).to_string(),
                ..AuditEvent::default()
            },
            started: Instant::now(),
        }
    }

    /// The statement ended: `outcome` (`ok`, `error`, `cancelled`), the rows it sent, the
    /// bytes its scans planned to read, and its SQLSTATE when it failed.
    pub fn finish(mut self, outcome: &'static str, rows: u64, bytes_scanned: u64, sqlstate: &str) {
        self.event.duration = self.started.elapsed();
        self.event.outcome = outcome;
        self.event.rows = rows;
        self.event.bytes_scanned = bytes_scanned;
        self.event.sqlstate = sqlstate.to_string();
        record(self.event);
    }

    /// The statement failed with `e` before it sent a row.
    pub fn failed(self, e: &PgWireError) {
        self.finish("error", 0, 0, &sqlstate_of(e));
    }
}

/// The SQLSTATE a client sees for `e`.
pub fn sqlstate_of(e: &PgWireError) -> String {
    match e {
        PgWireError::UserError(info) => info.code.clone(),
        _ => "XX000".to_string(),
    }
}
