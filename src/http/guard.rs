//! What a request passes before its handler runs: the API key is checked on the headers, before
//! a byte of the body is read; then the body is read within a size cap, a time limit and the
//! server's budget of body bytes in flight, so no client (with a key or without) can hold the
//! server's memory by sending slowly or in parallel.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{ApiError, HttpState};

pub use crate::auth::KeyTenant;

/// Who made an API call, as the audit log names it: the key's tenant and the key's id (the
/// start of its SHA-256). Put in the response's extensions by [`admit`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
    pub key_id: String,
}

/// How much request body the server holds at once, and for how long one may take to arrive.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// Largest body of one request.
    pub max_bytes: usize,
    /// Time a whole body may take to arrive.
    pub timeout: Duration,
    /// Bytes of request bodies (compressed and decompressed) held in all requests at once.
    pub in_flight: Arc<Semaphore>,
    /// The whole of that budget: a request needing more can never fit (413, not 503).
    pub capacity: usize,
}

impl BodyLimits {
    pub fn new(max_bytes: usize, timeout: Duration, in_flight_bytes: usize) -> BodyLimits {
        BodyLimits {
            max_bytes,
            timeout,
            in_flight: Arc::new(Semaphore::new(in_flight_bytes.min(Semaphore::MAX_PERMITS))),
            capacity: in_flight_bytes
                .min(Semaphore::MAX_PERMITS)
                .min(u32::MAX as usize),
        }
    }

    /// Takes `bytes` of the in-flight budget, held until the permit drops; 503 when it is spent.
    pub fn reserve(&self, bytes: usize) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        if bytes == 0 {
            return Ok(None);
        }
        let busy = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server holds as many request bodies as it may; retry shortly",
            )
        };
        if bytes > self.capacity {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request needs {bytes} bytes in memory, more than the server holds for all requests ({}); send smaller batches", self.capacity),
            ));
        }
        let n = u32::try_from(bytes).map_err(|_| busy())?;
        let permit = self
            .in_flight
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| busy())?;
        Ok(Some(permit))
    }
}

/// The tenant an `Authorization: Bearer <key>` header proves; 401 without a valid key.
pub async fn key_tenant(s: &HttpState, headers: &HeaderMap) -> Result<String, ApiError> {
    let unauthorized = |why: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("{why}: send Authorization: Bearer <api key>"),
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("no API key"))?
        .to_str()
        .map_err(|_| unauthorized("unreadable Authorization header"))?;
    let key = presented_key(value)
        .ok_or_else(|| unauthorized("Authorization is not a Bearer, Basic or ApiKey credential"))?;
    let key = key.as_str();
    // Every request of a known key is answered from memory; an unknown one waits for the keys
    // file to be read (once, by whichever request came first) if it changed.
    let found = s.keys.tenant_of(key).await.map_err(|e| {
        tracing::error!(error = %e, "reading API keys");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read API keys; see the server log",
        )
    })?;
    found.ok_or_else(|| unauthorized("unknown API key"))
}

/// The API key an `Authorization` value carries: `Bearer <key>`; `Basic` with the key as the
/// password (any user name, as Loki and Elasticsearch clients send it); `ApiKey <key>` or
/// Elasticsearch's `ApiKey base64(id:key)`.
pub fn presented_key(value: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    let decoded = || {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        String::from_utf8(bytes).ok()
    };
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(rest.to_string()),
        "basic" => {
            let text = decoded()?;
            let (user, password) = text.split_once(':')?;
            Some(if password.is_empty() { user } else { password }.to_string())
        }
        "apikey" => Some(match decoded() {
            Some(text) if text.contains(':') => text.split_once(':')?.1.to_string(),
            _ => rest.to_string(),
        }),
        _ => None,
    }
}

/// Middleware of every endpoint that needs a key: checks it, then reads the body within the
/// limits, then runs the handler with the body in memory and [`KeyTenant`] in the extensions.
/// The body's share of the in-flight budget is held until the handler has answered.
pub async fn admit(State(s): State<HttpState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let limits = &s.body;
    let tenant = match key_tenant(&s, &parts.headers).await {
        Ok(t) => t,
        Err(e) => return refuse(body, limits, e).await,
    };
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limits.max_bytes as u64 {
            return refuse(body, limits, too_large(limits.max_bytes)).await;
        }
    }
    let mut held = None;
    let read = tokio::time::timeout(limits.timeout, collect(body, limits, &mut held)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return e.into_response(),
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    limits.timeout.as_secs_f64()
                ),
            )
            .into_response()
        }
    };
    let caller = Caller {
        tenant: tenant.clone(),
        key_id: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(presented_key)
            .map(|k| crate::auth::key_id(&k))
            .unwrap_or_default(),
    };
    parts.extensions.insert(KeyTenant(tenant));
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    drop(held);
    response.extensions_mut().insert(caller);
    response
}

/// How long, and how much of it, a refused request's body is read and thrown away before the
/// refusal is sent: a client writing its body reads the answer only once it has written it,
/// and a server that closes first makes it see a reset instead of the reason.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Answers `error` after discarding (not keeping) what arrives of the body within
/// [`DRAIN_TIME`] and twice the body limit.
async fn refuse(body: Body, limits: &BodyLimits, error: ApiError) -> Response {
    let cap = limits.max_bytes.saturating_mul(2);
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen = seen.saturating_add(chunk.len());
            if seen > cap {
                break;
            }
        }
    })
    .await;
    error.into_response()
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds {max} bytes"),
    )
}

/// Reads a body chunk by chunk, charging each to the in-flight budget.
pub(super) async fn collect(
    body: Body,
    limits: &BodyLimits,
    held: &mut Option<OwnedSemaphorePermit>,
) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {e}"),
            )
        })?;
        if out.len() + chunk.len() > limits.max_bytes {
            return Err(too_large(limits.max_bytes));
        }
        if let Some(permit) = limits.reserve(chunk.len())? {
            match held {
                Some(h) => h.merge(permit),
                None => *held = Some(permit),
            }
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::presented_key;

    #[test]
    fn keys_come_from_bearer_basic_and_apikey() {
        assert_eq!(presented_key("Bearer k1").as_deref(), Some("k1"));
        // base64("loki:k2"), base64("k3:"), base64("id:k4")
        assert_eq!(presented_key("Basic bG9raTprMg==").as_deref(), Some("k2"));
        assert_eq!(presented_key("Basic azM6").as_deref(), Some("k3"));
        assert_eq!(presented_key("ApiKey aWQ6azQ=").as_deref(), Some("k4"));
        assert_eq!(presented_key("ApiKey k5").as_deref(), Some("k5"));
        assert_eq!(presented_key("Digest x"), None);
        assert_eq!(presented_key("Basic !!!"), None);
    }
}
