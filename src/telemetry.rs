//! The server's own log lines and traces: `tracing` to stderr (text or JSON lines), and — when
//! an OTLP traces endpoint is given — its spans (HTTP requests, decode, the WAL, queries'
//! planning, pruning, scans and encoding) exported over OTLP/HTTP protobuf in batches, from a
//! thread of their own, through the reqwest client the server already has.
//!
//! The endpoint's headers come from `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (or
//! `OTEL_EXPORTER_OTLP_HEADERS`), e.g. `authorization=Bearer <key>` for a Timberline;
//! batching from the SDK's `OTEL_BSP_*` variables. Requests to `/v1/traces` and their spans are
//! not sampled ([`untraced`]), so a server that stores its own traces does not trace storing
//! them.

use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// How the log lines are written.
#[derive(Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
}

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("the OTLP traces exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("the log subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Flushes and stops the exporter when dropped (at exit).
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Sends the exporter's requests on the server's runtime (the batch thread has none).
#[derive(Debug)]
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let mut req = self
            .http
            .request(parts.method, parts.uri.to_string())
            .body(body);
        for (name, value) in &parts.headers {
            req = req.header(name, value);
        }
        let sent = self.runtime.spawn(async move {
            let resp = req.send().await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        let (status, body) = sent.await??;
        let mut out = Response::new(body);
        *out.status_mut() = status;
        Ok(out)
    }
}

/// Starts the log lines (`RUST_LOG`, default `info`) and, with `otlp_endpoint`, the span
/// export. `runtime` runs the exporter's requests.
pub fn init(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    runtime: tokio::runtime::Handle,
) -> Result<Telemetry, TelemetryError> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match format {
        LogFormat::Text => lines.with_filter(filter()).boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter())
            .boxed(),
    };
    let Some(endpoint) = otlp_endpoint else {
        tracing_subscriber::registry().with(lines).try_init()?;
        return Ok(Telemetry { provider: None });
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_http_client(Client { http, runtime })
        .build()
        .map_err(|source| TelemetryError::Exporter {
            endpoint: endpoint.to_string(),
            source,
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("timberline").build())
        .build();
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("timberline"))
        .with_filter(filter_fn(|meta| {
            meta.target().starts_with("timberline") && *meta.level() <= tracing::Level::INFO
        }));
    tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .try_init()?;
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// Keeps `span` and every span under it from being exported: their parent is a trace nobody
/// samples (the SDK's default sampler follows the parent).
pub fn untraced(span: &tracing::Span) {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let unsampled = SpanContext::new(
        TraceId::from_bytes([1; 16]),
        SpanId::from_bytes([1; 8]),
        TraceFlags::default(),
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(unsampled));
}

/// The trace id of `span`, as hex; empty when spans are not exported.
pub fn trace_id_of(span: &tracing::Span) -> String {
    let context = span.context();
    let span = context.span();
    let ids = span.span_context();
    if ids.is_valid() {
        ids.trace_id().to_string()
    } else {
        String::new()
    }
}
