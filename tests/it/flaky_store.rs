//! An object store just back from an outage, made repeatable: an HTTP proxy in front of
//! SeaweedFS that answers the next GETs it is told to with a fault (a 5xx, or a body cut
//! halfway), then passes requests through again, counting the faults it served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use futures::stream;

/// What the proxy answers a GET with while faults are pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `503 Slow Down`, as S3 answers while it is not ready.
    Unavailable,
    /// The object's headers (the whole `content-length`) and then half its bytes, and the
    /// connection is cut.
    CutBody,
}

#[derive(Default)]
struct Pending {
    faults: Mutex<Vec<Fault>>,
    served: AtomicUsize,
}

/// The proxy; it stops with the test.
pub struct FlakyStore {
    endpoint: String,
    pending: Arc<Pending>,
}

impl FlakyStore {
    /// A proxy on 127.0.0.1 in front of the S3 endpoint `upstream`.
    pub async fn start(upstream: String) -> FlakyStore {
        let pending = Arc::new(Pending::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let client = reqwest::Client::new();
        let state = (pending.clone(), client, upstream);
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let (pending, client, upstream) = state.clone();
            async move { forward(&pending, &client, &upstream, req).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        FlakyStore { endpoint, pending }
    }

    /// The S3 endpoint to give the server (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The next `n` GETs get `fault`.
    pub fn fail_next_gets(&self, n: usize, fault: Fault) {
        let mut faults = self
            .pending
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Faults served so far.
    pub fn served(&self) -> usize {
        self.pending.served.load(Ordering::SeqCst)
    }

    /// Faults not served yet.
    pub fn left(&self) -> usize {
        self.pending
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

async fn forward(
    pending: &Pending,
    client: &reqwest::Client,
    upstream: &str,
    req: Request<Body>,
) -> Response<Body> {
    let fault = match req.method() == Method::GET {
        true => {
            let mut faults = pending.faults.lock().unwrap_or_else(|p| p.into_inner());
            (!faults.is_empty()).then(|| faults.remove(0))
        }
        false => None,
    };
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    if fault == Some(Fault::Unavailable) {
        pending.served.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("content-type", "application/xml")
            .body(Body::from(
                "<Error><Code>SlowDown</Code><Message>back from an outage</Message></Error>",
            ))
            .expect("response");
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers.clone();
    headers.remove("connection");
    let answer = client
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("upstream");
    let status = answer.status();
    let mut headers: HeaderMap = answer.headers().clone();
    for hop in ["connection", "transfer-encoding", "keep-alive"] {
        headers.remove(hop);
    }
    let bytes = answer.bytes().await.expect("upstream body");
    let body = match fault {
        Some(Fault::CutBody) if status.is_success() && bytes.len() > 1 => {
            pending.served.fetch_add(1, Ordering::SeqCst);
            let half = bytes.slice(..bytes.len() / 2);
            let cut: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::other("cut by the flaky store")),
            ];
            Body::from_stream(stream::iter(cut))
        }
        // `content-length` stays the upstream's: for a HEAD it is the object's size.
        _ => Body::from(bytes),
    };
    let mut response = Response::builder().status(status);
    if let Some(h) = response.headers_mut() {
        *h = headers;
    }
    response.body(body).expect("response")
}
