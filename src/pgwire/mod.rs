//! PostgreSQL front end: startup, simple and extended query protocol, SQLSTATE errors.
//!
//! Built on `pgwire` for framing and `arrow-pg` for value encoding; planning goes through the same
//! DataFusion session as every other query. `datafusion-pg-catalog` supplies `pg_catalog` and its
//! SQL rewrites so psql's `\d` family and drivers' metadata queries work.

mod error;
mod fixtures;
mod params;
mod query;
mod rewrite;
mod session;
mod startup;
mod tls;

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::PgWireServerHandlers;
use pgwire::tokio::TlsAcceptor;
use tokio::net::TcpListener;

pub use error::{df_error, sqlstate_of};
pub use fixtures::{classify, Fixture};
pub use query::QueryEngine;
pub use startup::AuthMethod;
pub use tls::{tls_acceptor, TlsError};

use crate::auth::Users;
use session::Cancels;
use startup::Startup;

/// Everything one pg connection needs.
pub struct PgHandlers {
    engine: Arc<QueryEngine>,
    auth: AuthMethod,
    users: Arc<Users>,
    cancels: Arc<Cancels>,
    require_tls: bool,
}

impl PgHandlers {
    pub fn new(
        ctx: SessionContext,
        auth: AuthMethod,
        users: Users,
        require_tls: bool,
    ) -> PgHandlers {
        PgHandlers {
            engine: Arc::new(QueryEngine::new(ctx)),
            auth,
            users: Arc::new(users),
            cancels: Arc::new(Cancels::default()),
            require_tls,
        }
    }
}

impl PgWireServerHandlers for PgHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.engine.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.engine.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(Startup::new(
            self.auth,
            self.users.clone(),
            self.cancels.clone(),
            self.require_tls,
        ))
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancels.clone()
    }
}

/// Accepts pg connections until the listener fails; each connection is its own task, and a
/// broken or hostile client only ever ends its own connection.
pub async fn serve(listener: TcpListener, handlers: Arc<PgHandlers>, tls: Option<TlsAcceptor>) {
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let _ = socket.set_nodelay(true);
                let handlers = handlers.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
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
