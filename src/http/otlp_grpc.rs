//! OTLP/gRPC logs (`opentelemetry.proto.collector.logs.v1.LogsService/Export`) on its own port
//! (`--otlp-grpc-addr`, 4317 by convention), served by tonic with the generated service. The
//! API key comes in the `authorization` metadata, as OTLP exporters send headers; records take
//! the same durable path as HTTP ingest.
//!
//! A connection has the login timeout to send a request with a valid key; one that has, and
//! then sends nothing for [`SETTLED_IDLE`], is closed too. Past the connection caps the idlest
//! connection is closed to admit the newcomer (unauthenticated ones first, never one with a
//! request in progress).

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::Connected;
use tonic::{Code, Request, Response, Status};

use super::guard::key_tenant;
use super::{store_records, HttpState};
use crate::admission::{Activity, Admission, Permit};
use crate::ingest::otlp;
use crate::model::now_micros;

/// The gRPC service over the HTTP API's state (keys, ingestor, body limits).
struct Logs {
    state: HttpState,
}

fn status_of(e: super::ApiError) -> Status {
    use axum::http::StatusCode;
    let code = match e.status {
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        _ => Code::Internal,
    };
    Status::new(code, e.reason)
}

#[tonic::async_trait]
impl LogsService for Logs {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let connection = request
            .extensions()
            .get::<GrpcConnection>()
            .map(|c| c.activity.clone());
        let _busy = connection.as_ref().map(Activity::busy);
        let headers = request.metadata().clone().into_headers();
        let tenant = key_tenant(&self.state, &headers).await.map_err(status_of)?;
        if let Some(connection) = &connection {
            connection.settle();
        }
        let message = request.into_inner();
        // The decoded message is held while its records are built: charge it to the budget.
        let _held = self
            .state
            .body
            .reserve(message.encoded_len())
            .map_err(status_of)?;
        let mut records = otlp::decode_request(message, now_micros())
            .map_err(|e| Status::resource_exhausted(e.to_string()))?
            .records;
        store_records(&self.state, &tenant, &mut records)
            .await
            .map_err(status_of)?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// How long a connection that has sent an authenticated request may then send nothing.
const SETTLED_IDLE: Duration = Duration::from_secs(300);

/// A connection admitted under the caps; its place is given back when it closes. Its reads
/// fail (and the connection closes) when it is evicted, when the login timeout passes before
/// an authenticated request, and after [`SETTLED_IDLE`] without a byte once there was one.
struct Admitted {
    stream: TcpStream,
    permit: Permit,
    deadline: Pin<Box<Sleep>>,
    evicted: Pin<Box<WaitForCancellationFutureOwned>>,
    last_read: Instant,
}

impl Admitted {
    fn new(stream: TcpStream, permit: Permit, login_timeout: Duration) -> Admitted {
        let evicted = Box::pin(permit.activity().evicted());
        Admitted {
            stream,
            permit,
            deadline: Box::pin(tokio::time::sleep(login_timeout)),
            evicted,
            last_read: Instant::now(),
        }
    }

    /// Why the connection must close now, if it must (the wakers are registered otherwise).
    fn closing(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        use std::io::{Error, ErrorKind};
        if self.evicted.as_mut().poll(cx).is_ready() {
            return Some(Error::new(
                ErrorKind::ConnectionAborted,
                "closed to admit a newer connection",
            ));
        }
        while self.deadline.as_mut().poll(cx).is_ready() {
            let idle_until = self.last_read + SETTLED_IDLE;
            if !self.permit.activity().is_settled() || idle_until <= Instant::now() {
                return Some(Error::new(ErrorKind::TimedOut, "no authenticated request"));
            }
            self.deadline.as_mut().reset(idle_until);
        }
        None
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.closing(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.last_read = Instant::now();
            self.permit.activity().touch();
        }
        read
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// What a request knows of its connection (tonic puts it in the request's extensions).
#[derive(Debug, Clone)]
struct GrpcConnection {
    activity: Activity,
}

impl Connected for Admitted {
    type ConnectInfo = GrpcConnection;
    fn connect_info(&self) -> GrpcConnection {
        GrpcConnection {
            activity: self.permit.activity().clone(),
        }
    }
}

/// Serves OTLP/gRPC on `listener` until the process ends, under `admission`'s caps; a
/// connection has `login_timeout` to send an authenticated request.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    admission: Arc<Admission>,
    login_timeout: Duration,
) {
    let max = state.body.max_bytes;
    let service = LogsServiceServer::new(Logs { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    let incoming = futures::stream::unfold(
        (listener, admission),
        move |(listener, admission)| async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => match admission.admit(peer.ip()) {
                        Ok(permit) => {
                            let _ = stream.set_nodelay(true);
                            let conn = Admitted::new(stream, permit, login_timeout);
                            return Some((Ok::<_, std::io::Error>(conn), (listener, admission)));
                        }
                        Err(refused) => {
                            tracing::debug!(%peer, %refused, "OTLP/gRPC connection refused")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "OTLP/gRPC accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        },
    );
    let result = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(256)
        .timeout(std::time::Duration::from_secs(60))
        .serve_with_incoming(service, incoming)
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "OTLP/gRPC server stopped");
    }
}
