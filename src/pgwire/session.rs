//! One pg connection's state: its settings (`SET`), its tenant, and the switch a CancelRequest
//! or `statement_timeout` flips to stop the query it is running.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use timberline_udfs::sqlstate;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use timberline_udfs::pg_compat::PgSession;
use tokio::sync::watch;

use super::error::user_error;

/// A connection, as its queries see it (kept in pgwire's per-connection extensions).
#[derive(Debug)]
pub struct Connection {
    session: Mutex<PgSession>,
    /// Flipped to `true` to cancel the query now running.
    cancel: Mutex<Option<watch::Sender<bool>>>,
}

impl Connection {
    pub fn new(session: PgSession) -> Connection {
        Connection {
            session: Mutex::new(session),
            cancel: Mutex::new(None),
        }
    }

    /// The connection's settings, to read or change.
    pub fn session(&self) -> MutexGuard<'_, PgSession> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a query: the returned stopper resolves with SQLSTATE 57014 when the query is
    /// cancelled or outlives the session's `statement_timeout`, and never otherwise.
    pub fn start_query(&self) -> impl Future<Output = PgWireError> + Send + 'static {
        let (tx, mut rx) = watch::channel(false);
        *self.cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        let timeout = self.session().statement_timeout();
        async move {
            let deadline = async {
                match timeout {
                    Some(t) => tokio::time::sleep(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Ok(_) = rx.wait_for(|cancelled| *cancelled) => {
                    user_error(sqlstate::QUERY_CANCELED, "canceling statement due to user request")
                }
                _ = deadline => {
                    user_error(sqlstate::QUERY_CANCELED, "canceling statement due to statement timeout")
                }
            }
        }
    }

    fn cancel(&self) {
        if let Some(tx) = self
            .cancel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = tx.send(true);
        }
    }
}

/// Ends `rows` with the stopper's error as soon as it fires; dropping the rest of the stream
/// stops DataFusion's work on it.
pub fn stoppable<S, T>(
    rows: S,
    stop: impl Future<Output = PgWireError> + Send + 'static,
) -> impl Stream<Item = PgWireResult<T>> + Send + 'static
where
    S: Stream<Item = PgWireResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let state = (rows.boxed(), Box::pin(stop), false);
    futures::stream::unfold(state, |(mut rows, mut stop, done)| async move {
        if done {
            return None;
        }
        tokio::select! {
            biased;
            e = &mut stop => Some((Err(e), (rows, stop, true))),
            row = rows.next() => row.map(|r| (r, (rows, stop, false))),
        }
    })
}

/// The connection a client's queries run in, which only a successful login makes. Without one
/// the query is refused (fail closed): no message may run before authentication completes.
pub fn connection<C: ClientInfo + ?Sized>(client: &C) -> PgWireResult<Arc<Connection>> {
    client
        .session_extensions()
        .get::<Arc<Connection>>()
        .map(|c| c.as_ref().clone())
        .ok_or_else(|| {
            user_error(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                "not authenticated: log in first",
            )
        })
}

type Key = (i32, Vec<u8>);

/// Finds a connection by the (pid, secret key) its BackendKeyData gave the client.
#[derive(Debug, Default)]
pub struct Cancels {
    live: Mutex<HashMap<Key, Weak<Connection>>>,
}

/// Unregisters a connection from [`Cancels`] when the connection ends.
pub struct Registration {
    key: Key,
    cancels: Arc<Cancels>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cancels
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

impl Cancels {
    /// Attaches `conn` to the client and makes it cancellable by the client's key.
    pub fn register<C: ClientInfo + ?Sized>(self: &Arc<Self>, client: &C, conn: Arc<Connection>) {
        let (pid, secret) = client.pid_and_secret_key();
        let key = (pid, secret.to_bytes().to_vec());
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), Arc::downgrade(&conn));
        let ext = client.session_extensions();
        ext.insert(conn);
        ext.insert(Registration {
            key,
            cancels: self.clone(),
        });
    }
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes().to_vec());
        let conn = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .and_then(Weak::upgrade);
        match conn {
            Some(conn) => conn.cancel(),
            None => tracing::debug!(pid = request.pid, "cancel request for no live connection"),
        }
    }
}
