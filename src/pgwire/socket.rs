//! One pg connection's message loop: pgwire's own, except that a frame its codec cannot decode
//! (an unknown message type, a protocol 2 startup, a length beyond the limit) is answered with a
//! FATAL ErrorResponse (08P01) before the connection closes, as PostgreSQL does, instead of a
//! silent close.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, NoopHandler, PgWireConnectionState};
use pgwire::error::ErrorInfo;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use pgwire::tokio::TlsAcceptor;
use tokio::net::TcpStream;

use super::query::Prepared;
use super::PgHandlers;

/// How long a client may take to finish startup and authentication.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one connection until the client leaves or breaks the protocol.
pub async fn serve_connection(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    handlers: Arc<PgHandlers>,
) -> io::Result<()> {
    let startup_timeout = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_timeout);
    let negotiated = tokio::select! {
        _ = &mut startup_timeout => return Ok(()),
        s = negotiate_tls::<Prepared>(tcp, tls) => s?,
    };
    // A direct TLS handshake with no TLS configured: nothing to answer in.
    let Some(mut socket) = negotiated else {
        return Ok(());
    };
    let startup = Arc::new(handlers.startup());
    let engine = handlers.engine.clone();
    let cancels = handlers.cancels.clone();
    let copy = Arc::new(NoopHandler);
    loop {
        let next = if matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        ) {
            tokio::select! {
                _ = &mut startup_timeout => None,
                m = socket.next() => m,
            }
        } else {
            socket.next().await
        };
        let msg = match next {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => {
                let info = ErrorInfo::new(
                    "FATAL".into(),
                    "08P01".into(),
                    format!("invalid frontend message: {e}"),
                );
                socket
                    .send(PgWireBackendMessage::ErrorResponse(info.into()))
                    .await?;
                return socket.close().await;
            }
            None => return Ok(()),
        };
        // Terminate ends the connection (asyncpg waits for the server to close).
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            return Ok(());
        }
        let extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let handled = process_message(
            msg,
            &mut socket,
            startup.clone(),
            engine.clone(),
            engine.clone(),
            copy.clone(),
            cancels.clone(),
        )
        .await;
        if let Err(e) = handled {
            process_error(&mut socket, e, extended).await?;
        }
    }
}
