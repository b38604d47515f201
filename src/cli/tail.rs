//! `timberline tail`: follows a server's live tail (`GET /v1/tail`) and prints one line per row
//! — levels coloured on a terminal, plain when piped, JSON with `--json` — reconnecting with
//! `Last-Event-ID` when the connection drops (a server restart), so no row is missed or repeated.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::Value;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Largest event the client holds while it arrives (a row is capped well below this).
const MAX_EVENT_BYTES: usize = 16 << 20;

#[derive(Debug, Clone, clap::Args)]
pub struct TailOptions {
    #[command(flatten)]
    pub remote: super::Remote,
    /// Only these services (comma-separated).
    #[arg(long)]
    pub service: Option<String>,
    /// Only these hosts (comma-separated).
    #[arg(long)]
    pub host: Option<String>,
    /// `ERROR` (that level), `WARN,ERROR`, or `WARN+` (that and above).
    #[arg(long)]
    pub level: Option<String>,
    /// A `match()` query over the message: `timeout -retry`, `"card declined" service:api`.
    #[arg(long = "match")]
    pub query: Option<String>,
    /// Show the rows of this long ago (`10m`) or since this time (RFC 3339) first.
    #[arg(long)]
    pub since: Option<String>,
    /// Most rows of the backfill (the newest).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print each row as the server's JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Why the tail stopped.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("cannot reach the Timberline server at {url} ({reason}); is `timberline serve` running there? Point --server (or TIMBERLINE_SERVER) at its HTTP address")]
    Unreachable { url: String, reason: String },
    #[error("the server refused the tail ({status}): {reason}")]
    Refused { status: u16, reason: String },
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// One Server-Sent Event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads Server-Sent Events out of the bytes of a stream as they arrive.
#[derive(Debug, Default)]
pub struct SseReader {
    pending: Vec<u8>,
}

impl SseReader {
    /// Takes `chunk`; returns the events it completed (comments and heartbeats are dropped).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((end, skip)) = block_end(&self.pending) {
            let block: Vec<u8> = self.pending.drain(..end + skip).take(end).collect();
            if let Some(e) = parse_block(&String::from_utf8_lossy(&block)) {
                events.push(e);
            }
        }
        events
    }

    /// Bytes held of an event not yet complete.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Where the first blank line ends an event block: its start and the separator's length.
fn block_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| (i, 2));
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut e = SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => e.id = Some(value.to_string()),
            "event" => e.event = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() && e.id.is_none() && e.event.is_none() {
        return None;
    }
    e.data = data.join("\n");
    Some(e)
}

/// How rows are printed.
struct Printer {
    json: bool,
    colour: bool,
}

impl Printer {
    fn line(&self, data: &str) -> String {
        if self.json {
            return data.to_string();
        }
        let Ok(row) = serde_json::from_str::<Value>(data) else {
            return data.to_string();
        };
        let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("");
        let level = text("level");
        let shown = if self.colour {
            let code = match level {
                "FATAL" => "1;31",
                "ERROR" => "31",
                "WARN" => "33",
                "INFO" => "32",
                _ => "2",
            };
            format!("\x1b[{code}m{level:<5}\x1b[0m")
        } else {
            format!("{level:<5}")
        };
        format!(
            "{} {shown} {} {}: {}",
            text("ts"),
            text("service"),
            text("host"),
            text("msg")
        )
    }
}

/// Follows the tail until interrupted, or until the server refuses it.
pub async fn run(opts: TailOptions) -> Result<(), TailError> {
    let client = crate::cli::load::http_client(&opts.remote.api_key)?;
    let url = opts.remote.url("/v1/tail");
    let mut query: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("service", &opts.service),
        ("host", &opts.host),
        ("level", &opts.level),
        ("q", &opts.query),
        ("since", &opts.since),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    if let Some(l) = opts.limit {
        query.push(("limit", l.to_string()));
    }
    let printer = Printer {
        json: opts.json,
        colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut last_id: Option<String> = None;
    let mut connected_once = false;
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut req = client
            .get(&url)
            .query(&query)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = &last_id {
            req = req.header("Last-Event-ID", id.as_str());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if !connected_once => {
                return Err(TailError::Unreachable {
                    url: opts.remote.url(""),
                    reason: crate::cli::load::unreachable_reason(&e),
                })
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let status = resp.status();
        if status.as_u16() == 429 || status.is_server_error() {
            let wait = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(backoff, Duration::from_secs);
            let reason = resp.text().await.unwrap_or_default();
            eprintln!("-- the server is busy ({status}): {reason}; retrying in {wait:?}");
            tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
            continue;
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let reason = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or(body);
            return Err(TailError::Refused {
                status: status.as_u16(),
                reason,
            });
        }
        if connected_once {
            eprintln!("-- reconnected");
        }
        connected_once = true;
        backoff = Duration::from_millis(200);
        if !follow(resp, &printer, &mut last_id).await {
            return Ok(());
        }
        eprintln!("-- connection lost; reconnecting");
    }
}

/// Prints the events of one connection until it ends; false when stdout is gone.
async fn follow(
    mut resp: reqwest::Response,
    printer: &Printer,
    last_id: &mut Option<String>,
) -> bool {
    let mut reader = SseReader::default();
    let stdout = std::io::stdout();
    while let Ok(Some(chunk)) = resp.chunk().await {
        if reader.pending() + chunk.len() > MAX_EVENT_BYTES {
            eprintln!("-- an event over {MAX_EVENT_BYTES} bytes; reconnecting");
            return true;
        }
        let mut out = stdout.lock();
        for e in reader.push(&chunk) {
            let written = match e.event.as_deref() {
                None | Some("message") => {
                    let w = writeln!(out, "{}", printer.line(&e.data));
                    if e.id.is_some() {
                        *last_id = e.id;
                    }
                    w
                }
                Some("dropped") | Some("truncated") => {
                    eprintln!("-- {}: {}", e.event.as_deref().unwrap_or(""), e.data);
                    Ok(())
                }
                _ => Ok(()),
            };
            if written.is_err() {
                return false;
            }
        }
        if out.flush().is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_across_chunks_and_comments_dropped() {
        let mut r = SseReader::default();
        assert!(r.push(b": heartbeat\n\nid: 1.0.5\nda").is_empty());
        let got = r.push(b"ta: {\"a\":1}\n\nevent: live\r\ndata: {}\r\n\r\n");
        assert_eq!(
            got,
            vec![
                SseEvent {
                    id: Some("1.0.5".into()),
                    event: None,
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    id: None,
                    event: Some("live".into()),
                    data: "{}".into()
                }
            ]
        );
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn a_row_prints_as_one_line_plain_when_piped() {
        let p = Printer {
            json: false,
            colour: false,
        };
        let line = p.line(r#"{"ts":"T","level":"WARN","service":"api","host":"h1","msg":"slow"}"#);
        assert_eq!(line, "T WARN  api h1: slow");
    }
}
