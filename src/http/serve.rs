//! The HTTP listener: admits each connection under the [`Admission`] caps, and serves HTTP/1.1
//! with a deadline for each request's headers, so a connection that sends nothing, or headers
//! a byte at a time, is closed instead of held forever. A connection is busy from a request's
//! headers to the end of its response (a live tail stays busy); past a cap the idlest connection
//! that is not busy is closed to admit the newcomer, and only when every one is busy does the
//! newcomer get `503` with a JSON reason.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::Router;
use hyper::body::{Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::admission::{Admission, Busy};

/// How long an evicted connection may take to finish what it was doing.
const GRACE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until the process ends.
/// The address an HTTP request came from, in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

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
        let router = TowerToHyperService::new(router.clone());
        let activity = permit.activity().clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ClientAddr(peer));
            let busy = activity.busy();
            let answer = router.call(request);
            async move {
                let response = answer.await?;
                Ok::<_, Infallible>(response.map(|body| Body::new(BusyBody { body, _busy: busy })))
            }
        });
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(tcp), service)
                // A live tail may ask for a WebSocket.
                .with_upgrades();
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = permit.activity().evicted() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(GRACE, conn.as_mut()).await.unwrap_or(Ok(()))
                }
            };
            if let Err(e) = ended {
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

/// A response body that keeps its connection busy until it is sent or dropped.
struct BusyBody {
    body: Body,
    _busy: Busy,
}

impl HttpBody for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
