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
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

use super::guard::key_tenant;
use super::{store_records, HttpState};
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
        let mut records = otlp::decode_request(request.into_inner(), now_micros()).records;
        store_records(&self.state, &tenant, &mut records)
            .await
            .map_err(status_of)?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// Serves OTLP/gRPC on `listener` until the process ends.
pub async fn serve(listener: TcpListener, state: HttpState) {
    let max = state.body.max_bytes;
    let service = LogsServiceServer::new(Logs { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    let result = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(256)
        .serve_with_incoming(service, TcpIncoming::from(listener))
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "OTLP/gRPC server stopped");
    }
}
