//! PostgreSQL front end: startup, simple and extended query protocol, SQLSTATE errors.
//!
//! Built on `pgwire` for framing and `arrow-pg` for value encoding; planning goes through the same
//! DataFusion session as every other query. `datafusion-pg-catalog` supplies `pg_catalog` and its
//! SQL rewrites so psql's `\d` family and drivers' metadata queries work.

mod error;
mod fixtures;
mod query;
mod startup;

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use pgwire::api::auth::StartupHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::PgWireServerHandlers;
use tokio::net::TcpListener;

pub use error::{df_error, sqlstate_of};
pub use query::QueryEngine;
pub use startup::TrustStartup;

/// Everything one pg connection needs.
pub struct PgHandlers {
    engine: Arc<QueryEngine>,
    startup: Arc<TrustStartup>,
}

impl PgHandlers {
    pub fn new(ctx: SessionContext, users: Vec<String>) -> PgHandlers {
        PgHandlers {
            engine: Arc::new(QueryEngine::new(ctx)),
            startup: Arc::new(TrustStartup::new(users)),
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
        self.startup.clone()
    }
}

/// Accepts pg connections until the listener fails; each connection is its own task, and a
/// broken or hostile client only ever ends its own connection.
pub async fn serve(listener: TcpListener, handlers: Arc<PgHandlers>) {
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let _ = socket.set_nodelay(true);
                let handlers = handlers.clone();
                tokio::spawn(async move {
                    if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
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
