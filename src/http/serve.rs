//! The HTTP listener: admits each connection under the [`Admission`] caps (past them a client
//! gets `503` with a JSON reason and the socket is closed), and serves HTTP/1.1 with a deadline
//! for each request's headers, so a connection that sends nothing, or headers a byte at a time,
//! is closed instead of held forever.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::admission::Admission;

/// Serves `router` on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    admission: Arc<Admission>,
    header_timeout: Duration,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: give closing connections a moment.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match admission.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                tracing::debug!(%peer, %refused, "HTTP connection refused");
                tokio::spawn(refuse(tcp, refused.to_string()));
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(tcp), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// A `503` for a connection past the caps, written without parsing anything it sent.
async fn refuse(mut tcp: TcpStream, why: String) {
    let body = serde_json::json!({ "error": why }).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}
