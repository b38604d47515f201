//! PostgreSQL front end: TLS, authentication bound to tenants, per-connection sessions, the
//! simple and extended query protocol, cancellation, SQLSTATE errors.
//!
//! Built on `pgwire` for framing and `arrow-pg` for value encoding; planning goes through the same
//! DataFusion session as every other query. `datafusion-pg-catalog` supplies `pg_catalog` and some
//! of the passes, so psql's `\d` family and drivers' metadata queries work.
//!
//! - [`socket`]: one connection's message loop; [`frames`]: each client frame checked against
//!   the protocol's layouts before pgwire decodes it; [`startup`]: SCRAM/md5/trust and the session;
//! - [`session`]: settings, cancel and `statement_timeout`; [`fixtures`]: `SET`/`SHOW`/`BEGIN`…;
//! - [`passes`]: the SQL front end, parse once and one ordered list of named passes that make a
//!   statement plannable with PostgreSQL's answer; [`query`]: plan and stream rows;
//!   [`params`]: parameter types;
//! - [`column_names`]: PostgreSQL's names of unnamed columns; [`text_out`]: PostgreSQL's text
//!   output (session-zone timestamps, shortest floats); [`tls`]: the rustls acceptor.

mod audit;
mod column_names;
mod ddl;
mod depth;
mod error;
mod fixtures;
mod frames;
mod params;
mod passes;
mod query;
mod session;
mod socket;
mod startup;
mod text_out;
mod throttle;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use pgwire::tokio::TlsAcceptor;
use tokio::net::TcpListener;

pub use crate::auth::AuthMethod;
pub use error::{df_error, sqlstate_of};
pub use frames::{FrameCheck, FrameError, Refused};
pub use query::QueryEngine;
pub use tls::{tls_acceptor, TlsError};

use crate::admission::Admission;
use crate::auth::Users;
use session::Cancels;
use startup::{Pids, Startup};
use throttle::LoginThrottle;

/// Everything one pg connection needs.
pub struct PgHandlers {
    engine: Arc<QueryEngine>,
    auth: AuthMethod,
    users: Arc<Users>,
    cancels: Arc<Cancels>,
    require_tls: bool,
    throttle: LoginThrottle,
    caps: PgCaps,
    limits: SessionLimits,
    pids: Arc<Pids>,
}

/// The pg listener's connection caps.
#[derive(Debug, Clone)]
pub struct PgCaps {
    /// Logged-in sessions (a place is taken as the login completes).
    pub sessions: Arc<Admission>,
    /// Connections that have not logged in yet (held until the login completes); when full,
    /// the longest-waiting one is closed to make room.
    pub logins: Arc<Admission>,
}

/// What one pg session, and a client logging in, may do.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A new session's `statement_timeout` (zero: none).
    pub statement_timeout: Duration,
    /// Largest message a logged-in client may send.
    pub max_message: usize,
    /// Time a connection has, from its accept, to log in.
    pub login_timeout: Duration,
    /// The wait before a failed login is answered (doubling per address).
    pub auth_delay: Duration,
}

impl PgHandlers {
    /// `engine` answers the queries of every connection.
    pub fn new(
        engine: QueryEngine,
        auth: AuthMethod,
        users: Users,
        require_tls: bool,
        caps: PgCaps,
        limits: SessionLimits,
    ) -> PgHandlers {
        PgHandlers {
            engine: Arc::new(engine),
            auth,
            users: Arc::new(users),
            cancels: Arc::new(Cancels::default()),
            require_tls,
            throttle: LoginThrottle::new(limits.auth_delay),
            caps,
            limits,
            pids: Arc::new(Pids::default()),
        }
    }
}

impl PgHandlers {
    /// A fresh startup state machine for one connection.
    fn startup(&self) -> Startup {
        Startup::new(
            self.auth,
            self.users.clone(),
            self.cancels.clone(),
            self.require_tls,
            self.limits.statement_timeout,
            self.pids.clone(),
        )
    }

    /// The check of one connection's frames: a password comes first unless auth is trust.
    fn frame_check(&self) -> frames::FrameCheck {
        let password_first = !matches!(self.auth, AuthMethod::Trust);
        frames::FrameCheck::new(password_first, self.limits.max_message)
    }
}

/// Accepts pg connections until the listener fails; each connection is its own task, and a
/// broken or hostile client only ever ends its own connection. A connection first takes a
/// place among those logging in (the longest-waiting one is closed to make room; an address
/// past its share is answered FATAL 53300), and a session place once it logs in.
pub async fn serve(listener: TcpListener, handlers: Arc<PgHandlers>, tls: Option<TlsAcceptor>) {
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let login = match handlers.caps.logins.admit(peer.ip()) {
                    Ok(permit) => permit,
                    Err(refused) => {
                        tracing::debug!(%peer, %refused, "pg connection refused");
                        tokio::spawn(socket::refuse(socket, format!("sorry, {refused}")));
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let handlers = handlers.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let served =
                        socket::serve_connection(socket, peer.ip(), tls, handlers, login).await;
                    if let Err(e) = served {
                        tracing::debug!(%peer, error = %e, "pg connection ended with an error");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "pg accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
