//! `timberline ingest FILE…`: reads log files, parses lines on a worker pool over all cores, and
//! ships them to a running server's `/v1/ingest` (the same durable path as every shipper), with a
//! progress bar. A line no format matches is sent raw with `parse_failed`, never skipped.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Utc};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::model::format::LineFormat;

/// Errors of a file load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown format {0:?}: use auto, triage, ndjson or loghub:<HDFS|Zookeeper|Spark|Linux|OpenSSH|Apache>")]
    UnknownFormat(String),
    #[error("server refused a batch: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("cannot reach the server at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

/// What to load and where to send it (the flags of `timberline ingest`).
#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// Files to load; `-` reads stdin.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// auto, triage, ndjson or loghub:<HDFS|Zookeeper|Spark|Linux|OpenSSH|Apache>.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// The server's HTTP address.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "TIMBERLINE_SERVER"
    )]
    pub server: String,
    /// The API key the server's HTTP ingest requires.
    #[arg(long, env = "TIMBERLINE_API_KEY", default_value = crate::auth::DEMO_API_KEY, hide_env_values = true)]
    pub api_key: String,
    /// Service name for every line (default: the loghub system or the file name).
    #[arg(long)]
    pub service: Option<String>,
    /// Host name for lines whose format has none.
    #[arg(long)]
    pub host: Option<String>,
    /// Year for year-less timestamps (default: the file's modification year).
    #[arg(long)]
    pub year: Option<i32>,
    /// Lines per request.
    #[arg(long = "batch", default_value_t = 2000)]
    pub batch_lines: usize,
    /// No progress bar.
    #[arg(long = "quiet", action = clap::ArgAction::SetFalse)]
    pub progress: bool,
}

/// Totals of a load.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    pub lines: u64,
    pub accepted: u64,
    pub failed: u64,
    pub parse_failed: u64,
    pub bytes: u64,
}

struct Chunk {
    lines: Vec<String>,
    bytes: u64,
}

/// An HTTP client that sends `Authorization: Bearer <api_key>` with every request.
pub fn http_client(api_key: &str) -> Result<reqwest::Client, reqwest::Error> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(mut v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {api_key}")) {
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    reqwest::Client::builder().default_headers(headers).build()
}

/// Loads every file; returns the totals.
pub async fn load(opts: LoadOptions) -> Result<LoadReport, LoadError> {
    let client = http_client(&opts.api_key).map_err(|source| LoadError::Unreachable {
        url: opts.server.clone(),
        source,
    })?;
    let url = format!("{}/v1/ingest", opts.server.trim_end_matches('/'));
    let total_bytes: u64 = opts
        .files
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .sum();
    let bar = if opts.progress {
        let bar = ProgressBar::new(total_bytes.max(1));
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut report = LoadReport::default();
    for path in &opts.files {
        let (reader, year): (Box<dyn Read + Send>, i32) = if path.as_os_str() == "-" {
            (
                Box::new(std::io::stdin()),
                opts.year.unwrap_or_else(|| Utc::now().year()),
            )
        } else {
            let read_err = |source| LoadError::Read {
                path: path.display().to_string(),
                source,
            };
            let f = std::fs::File::open(path).map_err(read_err)?;
            let mtime_year = f
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| DateTime::<Utc>::from(t).year())
                .unwrap_or_else(|_| Utc::now().year());
            (Box::new(f), opts.year.unwrap_or(mtime_year))
        };
        let mut lines = BufReader::with_capacity(1 << 20, reader).lines();
        let mut first = Vec::new();
        let mut pending = Vec::new();
        for line in lines.by_ref().take(50) {
            let line = line.map_err(|source| LoadError::Read {
                path: path.display().to_string(),
                source,
            })?;
            first.push(line);
        }
        let format = if opts.format == "auto" {
            LineFormat::detect(&first.iter().map(String::as_str).collect::<Vec<_>>(), year)
        } else {
            LineFormat::from_name(&opts.format, year)
                .ok_or_else(|| LoadError::UnknownFormat(opts.format.clone()))?
        };
        tracing::info!(file = %path.display(), format = %format.name(), "loading");
        let service = opts
            .service
            .clone()
            .or_else(|| format.default_service())
            .or_else(|| (path.as_os_str() == "-").then(|| "stdin".to_string()))
            .or_else(|| path.file_stem().map(|s| s.to_string_lossy().to_string()))
            .unwrap_or_else(|| "unknown".into());
        let source = json!({ "service": service, "host": opts.host.clone().unwrap_or_else(|| "unknown".into()) });
        pending.extend(first.into_iter().filter(|l| !l.trim().is_empty()));

        // Read in chunks; parse and send up to 2×cores chunks at once.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Chunk, LoadError>>(8);
        let batch_lines = opts.batch_lines.max(1);
        let path_name = path.display().to_string();
        std::thread::spawn(move || {
            let mut chunk = Chunk {
                lines: std::mem::take(&mut pending),
                bytes: 0,
            };
            chunk.bytes = chunk.lines.iter().map(|l| l.len() as u64 + 1).sum();
            for line in lines {
                match line {
                    Ok(l) if l.trim().is_empty() => chunk.bytes += l.len() as u64 + 1,
                    Ok(l) => {
                        chunk.bytes += l.len() as u64 + 1;
                        chunk.lines.push(l);
                        if chunk.lines.len() >= batch_lines {
                            let full = std::mem::replace(
                                &mut chunk,
                                Chunk {
                                    lines: Vec::with_capacity(batch_lines),
                                    bytes: 0,
                                },
                            );
                            if tx.blocking_send(Ok(full)).is_err() {
                                return;
                            }
                        }
                    }
                    Err(source) => {
                        let _ = tx.blocking_send(Err(LoadError::Read {
                            path: path_name.clone(),
                            source,
                        }));
                        return;
                    }
                }
            }
            if !chunk.lines.is_empty() {
                let _ = tx.blocking_send(Ok(chunk));
            }
        });
        let format = Arc::new(format);
        let source = Arc::new(source);
        let workers = num_cpus::get().max(1) * 2;
        let mut sends = tokio_stream_from(rx)
            .map(|chunk| {
                let (format, source, client, url) =
                    (format.clone(), source.clone(), client.clone(), url.clone());
                async move {
                    let chunk = chunk?;
                    let bytes = chunk.bytes;
                    let n = chunk.lines.len() as u64;
                    let encoded = tokio::task::spawn_blocking(move || {
                        encode_chunk(&format, &source, chunk.lines)
                    })
                    .await
                    .unwrap_or_default();
                    let parse_failed = encoded.parse_failed;
                    let (accepted, failed) = send(&client, &url, encoded).await?;
                    Ok::<_, LoadError>((n, accepted, failed, parse_failed, bytes))
                }
            })
            .buffer_unordered(workers);
        while let Some(done) = sends.next().await {
            let (n, accepted, failed, parse_failed, bytes) = done?;
            report.lines += n;
            report.accepted += accepted;
            report.failed += failed;
            report.parse_failed += parse_failed;
            report.bytes += bytes;
            bar.set_position(report.bytes);
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{} lines, {:.0} lines/s",
                report.lines,
                report.lines as f64 / secs
            ));
        }
    }
    bar.finish();
    Ok(report)
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// One request body ready to send.
#[derive(Debug, Default)]
pub struct EncodedChunk {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Lines no format matched (sent raw, flagged).
    pub parse_failed: u64,
}

/// Parses lines into one request body.
pub fn encode_chunk(format: &LineFormat, source: &Value, lines: Vec<String>) -> EncodedChunk {
    if matches!(format, LineFormat::Ndjson) {
        // The server decodes NDJSON itself (and stores non-JSON lines raw).
        return EncodedChunk {
            content_type: "application/x-ndjson",
            body: lines.join("\n").into_bytes(),
            parse_failed: 0,
        };
    }
    let mut parse_failed = 0;
    let logs: Vec<Value> = lines
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .map(|line| match format.parse(&line) {
            Some(p) => {
                let ts = DateTime::<Utc>::from_timestamp_micros(p.ts).unwrap_or_default();
                let mut ev = json!({
                    "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "msg": p.msg,
                    "meta": Value::Object(p.attrs),
                });
                if let Some(level) = p.level {
                    ev["level"] = Value::String(level);
                }
                if let Some(host) = p.host {
                    ev["host"] = Value::String(host);
                }
                ev
            }
            None => {
                parse_failed += 1;
                json!({ "msg": line, "parse_failed": true })
            }
        })
        .collect();
    let body = json!({ "source": source, "logs": logs });
    EncodedChunk {
        content_type: "application/json",
        body: serde_json::to_vec(&body).unwrap_or_default(),
        parse_failed,
    }
}

/// POSTs one body (retrying while the server is busy); returns (accepted, failed).
async fn send(
    client: &reqwest::Client,
    url: &str,
    chunk: EncodedChunk,
) -> Result<(u64, u64), LoadError> {
    let EncodedChunk {
        content_type, body, ..
    } = chunk;
    let mut delay = Duration::from_millis(50);
    loop {
        let resp = client
            .post(url)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .map_err(|source| LoadError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        let status = resp.status();
        if status.as_u16() == 503 && delay < Duration::from_secs(30) {
            tokio::time::sleep(delay).await;
            delay *= 2;
            continue;
        }
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(LoadError::Refused {
                status: status.as_u16(),
                body: text,
            });
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        return Ok((
            v["accepted"].as_u64().unwrap_or(0),
            v["failed"].as_u64().unwrap_or(0),
        ));
    }
}
