//! OTLP/gRPC logs (`opentelemetry.proto.collector.logs.v1.LogsService/Export`) on its own port
//! (`--otlp-grpc-addr`, 4317 by convention), over tonic's HTTP/2 server. The one method is
//! routed by hand so that nothing of a request is read before its key is checked: the API key
//! comes in the `authorization` metadata (as OTLP exporters send headers) and is checked on the
//! headers; only then is the message read (charged to the in-flight budget as it arrives, at
//! most `--max-body-bytes`), decompressed (gzip or zstd, charged chunk by chunk, at most the
//! same), measured (records and bytes it would build) and decoded. Records take the same
//! durable path as HTTP ingest.
//!
//! A connection has the login timeout to send a request with a valid key; one that has, and
//! then sends nothing for [`SETTLED_IDLE`], is closed too. Past the connection caps the idlest
//! connection is closed to admit the newcomer (unauthenticated ones first, never one with a
//! request in progress).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{self, header, HeaderMap, HeaderValue, StatusCode};
use hyper::body::Frame;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tonic::codegen::{BoxFuture, Service};
use tonic::transport::server::Connected;
use tonic::{Code, Status};

use super::guard::{collect, key_tenant, BodyLimits};
use super::{store_records, ApiError, HttpState};
use crate::admission::{Activity, Admission, Permit};
use crate::ingest::encoding::decompress_charged;
use crate::ingest::otlp::{self, OtlpError};
use crate::model::now_micros;

/// The one method served.
const EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// The compressions a request message may come in (`grpc-encoding`).
const ACCEPTED_ENCODINGS: &str = "gzip,zstd";

fn status_of(e: ApiError) -> Status {
    let code = match e.status {
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::Unimplemented,
        StatusCode::REQUEST_TIMEOUT => Code::DeadlineExceeded,
        _ => Code::Internal,
    };
    Status::new(code, e.reason)
}

/// The `LogsService` route, over the HTTP API's state (keys, ingestor, body limits).
#[derive(Clone)]
struct Logs {
    state: HttpState,
}

impl Service<http::Request<tonic::body::Body>> for Logs {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            if req.uri().path() != EXPORT {
                let path = req.uri().path().to_string();
                return Ok(Status::unimplemented(format!("no method {path}")).into_http());
            }
            let connection = req
                .extensions()
                .get::<GrpcConnection>()
                .map(|c| c.activity.clone());
            let _busy = connection.as_ref().map(Activity::busy);
            let (parts, body) = req.into_parts();
            Ok(
                match export(&state, &parts.headers, body, connection.as_ref()).await {
                    Ok(answer) => answered(&answer),
                    Err(status) => status.into_http(),
                },
            )
        })
    }
}

/// One `Export`: the key on the headers before anything else, then the message.
async fn export(
    state: &HttpState,
    headers: &HeaderMap,
    body: tonic::body::Body,
    connection: Option<&Activity>,
) -> Result<ExportLogsServiceResponse, Status> {
    let tenant = key_tenant(state, headers).await.map_err(status_of)?;
    if let Some(connection) = connection {
        connection.settle();
    }
    let limits = &state.body;
    let mut held = None;
    let body = axum::body::Body::new(body);
    // `--max-body-bytes` bounds the message, as for HTTP: the frame adds its 5-byte prefix.
    let framed = BodyLimits {
        max_bytes: limits.max_bytes.saturating_add(FRAME_PREFIX),
        ..limits.clone()
    };
    let frames = tokio::time::timeout(limits.timeout, collect(body, &framed, &mut held))
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!(
                "the request message did not arrive within {} s",
                limits.timeout.as_secs_f64()
            ))
        })?
        .map_err(|e| match e.status {
            StatusCode::PAYLOAD_TOO_LARGE => Status::resource_exhausted(format!(
                "the request message exceeds {} bytes (--max-body-bytes)",
                limits.max_bytes
            )),
            _ => status_of(e),
        })?;
    let message = unframe(frames)?;
    let message = if message.compressed {
        let encoding = headers
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Status::internal("a compressed message without grpc-encoding"))?;
        decompress_charged(encoding, message.bytes, limits.max_bytes, |n| {
            if let Some(permit) = limits.reserve(n)? {
                match &mut held {
                    Some(h) => h.merge(permit),
                    None => held = Some(permit),
                }
            }
            Ok::<(), ApiError>(())
        })
        .map_err(status_of)?
    } else {
        message.bytes
    };
    let mut records = otlp::decode_protobuf(&message, now_micros())
        .map_err(|e| match e {
            OtlpError::Limit(_) => Status::resource_exhausted(e.to_string()),
            _ => Status::invalid_argument(e.to_string()),
        })?
        .records;
    drop(message);
    let shed = store_records(state, &tenant, &mut records, "otlp_grpc")
        .await
        .map_err(status_of)?;
    drop(held);
    Ok(ExportLogsServiceResponse {
        partial_success: super::otlp::partial_success(&shed),
    })
}

/// A gRPC message's prefix: a compression flag and a 4-byte length.
const FRAME_PREFIX: usize = 5;

/// A unary request's one message, as sent.
struct Framed {
    compressed: bool,
    bytes: Bytes,
}

/// The one length-prefixed message of a unary call's body.
fn unframe(mut body: Bytes) -> Result<Framed, Status> {
    if body.len() < FRAME_PREFIX {
        return Err(Status::invalid_argument("the request has no message"));
    }
    let head = body.split_to(FRAME_PREFIX);
    let compressed = match head[0] {
        0 => false,
        1 => true,
        flag => {
            return Err(Status::internal(format!(
                "protocol error: compression flag {flag}"
            )))
        }
    };
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if usize::try_from(len).ok() != Some(body.len()) {
        return Err(Status::invalid_argument(format!(
            "the request's message is {len} bytes but {} follow; a unary call carries one message",
            body.len()
        )));
    }
    Ok(Framed {
        compressed,
        bytes: body,
    })
}

/// The answer of a successful call: headers, the response message, `grpc-status: 0`.
fn answered(response: &ExportLogsServiceResponse) -> http::Response<tonic::body::Body> {
    let message = response.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap_or(0).to_be_bytes());
    frame.extend_from_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let body = Answer {
        frame: Some(Bytes::from(frame)),
        trailers: Some(trailers),
    };
    let mut resp = http::Response::new(tonic::body::Body::new(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(
        "grpc-accept-encoding",
        HeaderValue::from_static(ACCEPTED_ENCODINGS),
    );
    resp
}

/// A unary answer's body: one data frame, then the trailers.
struct Answer {
    frame: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(frame) = self.frame.take() {
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.frame.is_none() && self.trailers.is_none()
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
    let service = Logs { state };
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
