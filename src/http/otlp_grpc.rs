//! OTLP/gRPC logs (`opentelemetry.proto.collector.logs.v1.LogsService/Export`) on its own port
//! (`--otlp-grpc-addr`, 4317 by convention), served by tonic with the generated service. The
//! API key comes in the `authorization` metadata, as OTLP exporters send headers; records take
//! the same durable path as HTTP ingest.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::codec::CompressionEncoding;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Code, Request, Response, Status};

use super::guard::key_tenant;
use super::{store_records, HttpState};
use crate::admission::{Admission, Permit};
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
        let headers = request.metadata().clone().into_headers();
        let tenant = key_tenant(&self.state, &headers).await.map_err(status_of)?;
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

/// A connection admitted under the caps; its place is given back when it closes.
struct Admitted {
    stream: TcpStream,
    _permit: Permit,
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
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

impl Connected for Admitted {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

/// Serves OTLP/gRPC on `listener` until the process ends; connections past `admission`'s caps
/// are closed at once.
pub async fn serve(listener: TcpListener, state: HttpState, admission: Arc<Admission>) {
    let max = state.body.max_bytes;
    let service = LogsServiceServer::new(Logs { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    let incoming =
        futures::stream::unfold((listener, admission), |(listener, admission)| async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => match admission.admit(peer.ip()) {
                        Ok(permit) => {
                            let _ = stream.set_nodelay(true);
                            let conn = Admitted {
                                stream,
                                _permit: permit,
                            };
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
        });
    let result = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(256)
        .timeout(std::time::Duration::from_secs(60))
        .serve_with_incoming(service, incoming)
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "OTLP/gRPC server stopped");
    }
}
