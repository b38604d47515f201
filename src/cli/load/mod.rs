//! `timberline ingest FILE…`: reads log files (plain, gzip or zstd), detects each file's format,
//! joins multi-line records, and ships them to a running server's `/v1/ingest` (the same durable
//! path as every shipper), several requests at once, in order, with a progress bar. A line no
//! format matches is sent raw with `parse_failed`, never skipped, and the summary says so loudly.
//! Each file's acknowledged offset is checkpointed, so a re-run resumes instead of duplicating,
//! and `--follow` tails a growing file like `tail -F`.

mod checkpoint;
mod follow;
mod reader;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::model::format::{Clock, LineFormat, Pattern, Zone, FORMAT_NAMES};
use crate::model::now_micros;
use checkpoint::{Checkpoints, FileId};
use reader::{Chunk, Input, Plan};

/// Errors of a file load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}{}: {source}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Read {
        path: String,
        line: Option<u64>,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("the server refused a batch: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("cannot reach the Timberline server at {url} ({reason}); is `timberline serve` running there? Point --server (or TIMBERLINE_SERVER) at its HTTP address")]
    Unreachable { url: String, reason: String },
    #[error("saving the load's checkpoint in {dir}: {source}")]
    Checkpoint {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// What to load and where to send it (the flags of `timberline ingest`).
#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// Files to load (plain, .gz or .zst); `-` reads stdin.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// auto, json (ndjson, docker), logfmt, cri, access (nginx, apache), triage, text (any line
    /// with a timestamp), loghub:<System>.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Your own line format: a regex with named groups ts, level, host, service, msg (others go
    /// to attrs), or grok-style `%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{GREEDYDATA:msg}`.
    #[arg(long, conflicts_with = "format")]
    pub pattern: Option<String>,
    /// The server's HTTP address (`http://` may be left out).
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "TIMBERLINE_SERVER"
    )]
    pub server: String,
    /// The API key the server's HTTP ingest requires.
    #[arg(long, env = "TIMBERLINE_API_KEY", default_value = crate::auth::DEMO_API_KEY, hide_env_values = true)]
    pub api_key: String,
    /// Service of every line (default: the program the line names, as syslog lines do, else the
    /// file's name without extensions).
    #[arg(long)]
    pub service: Option<String>,
    /// Host of every line (default: the line's own, else `unknown`).
    #[arg(long)]
    pub host: Option<String>,
    /// Year of year-less timestamps (default: the latest that is not in the future).
    #[arg(long)]
    pub year: Option<i32>,
    /// Time zone of timestamps written without one: UTC, +02:00, or a name like Europe/Berlin.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Keep reading the file as it grows, like `tail -F` (rotation and truncation followed);
    /// growth is noticed through inotify, or by polling where that is unavailable.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: poll every 100 ms instead of waiting for file events (network
    /// filesystems, whose remote writes raise no local events).
    #[arg(long, requires = "follow")]
    pub poll: bool,
    /// Load the whole file again even if an earlier run loaded part of it.
    #[arg(long)]
    pub from_start: bool,
    /// Where checkpoints are kept (a directory `ingest-checkpoints` is made inside).
    #[arg(long, env = "TIMBERLINE_DATA_DIR", default_value = "./timberline-data")]
    pub data_dir: PathBuf,
    /// Records per request.
    #[arg(long = "batch", default_value_t = 2000)]
    pub batch_lines: usize,
    /// No progress bar.
    #[arg(long = "quiet", action = clap::ArgAction::SetFalse)]
    pub progress: bool,
}

/// Totals of a load.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub lines: u64,
    pub accepted: u64,
    pub failed: u64,
    pub parse_failed: u64,
    pub bytes: u64,
    /// Per file: what was chosen and what did not parse.
    pub files: Vec<FileReport>,
}

/// What happened to one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub path: String,
    pub format: String,
    /// Sample lines detection read, and how many of them the format parsed.
    pub sample_hits: usize,
    pub sample_lines: usize,
    pub lines: u64,
    pub records: u64,
    pub parse_failed: u64,
    /// Up to three unparsed lines: (line number, text).
    pub samples: Vec<(u64, String)>,
    /// Offset the load resumed at (an earlier run had loaded the file up to it).
    pub resumed_at: u64,
    /// When detection's choice is weak: the sample's line numbers it could not read.
    pub weak: Vec<usize>,
}

impl FileReport {
    /// The summary lines `timberline ingest` prints for this file; loud when lines did not parse.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{}: {} lines -> {} rows, format {} ({} of {} sample lines parsed)",
            self.path, self.lines, self.records, self.format, self.sample_hits, self.sample_lines
        );
        if self.resumed_at > 0 {
            out.push_str(&format!("; resumed after byte {} loaded by an earlier run (--from-start loads it all again)", self.resumed_at));
        }
        if !self.weak.is_empty() {
            let shown: Vec<String> = self.weak.iter().take(5).map(|n| n.to_string()).collect();
            out.push_str(&format!(
                "\nNOTE: format {} is a weak match: {} of the first {} lines neither read as it nor continue a record (lines {}{}); they were joined to the record before them or flagged. Check the rows, or name the format with --format or --pattern",
                self.format,
                self.weak.len(),
                self.sample_lines,
                shown.join(", "),
                if self.weak.len() > 5 { ", …" } else { "" }
            ));
        }
        if self.parse_failed > 0 {
            out.push_str(&format!(
                "\nWARNING: {} of {} lines matched no format and joined no record: stored with parse_failed = true at the time of the record before them (the receive time where none came before)",
                self.parse_failed, self.lines
            ));
            for (n, text) in &self.samples {
                out.push_str(&format!("\n  line {n}: {text}"));
            }
            out.push_str(&format!(
                "\n  pick another format with --format ({FORMAT_NAMES}) or describe yours with --pattern '(?P<ts>...) (?P<level>\\w+) (?P<msg>.*)'"
            ));
        }
        out
    }
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

/// The server's base URL: `http://` added when the scheme is left out.
fn base_url(server: &str) -> String {
    let s = server.trim().trim_end_matches('/');
    if s.starts_with("http://") || s.starts_with("https://") {
        s.to_string()
    } else {
        format!("http://{s}")
    }
}

/// Loads every file; returns the totals.
pub async fn load(opts: LoadOptions) -> Result<LoadReport, LoadError> {
    let client = http_client(&opts.api_key)
        .map_err(|e| LoadError::Usage(format!("building the HTTP client: {e}")))?;
    let url = format!("{}/v1/ingest", base_url(&opts.server));
    let zone = Zone::parse(&opts.tz).ok_or_else(|| {
        LoadError::Usage(format!(
            "--tz {:?} is not a zone: use UTC, an offset like +02:00, or a name like Europe/Berlin",
            opts.tz
        ))
    })?;
    let pattern = match &opts.pattern {
        Some(p) => Some(Arc::new(Pattern::compile(p).map_err(LoadError::Usage)?)),
        None => None,
    };
    let fixed_format = match (&pattern, opts.format.as_str()) {
        (Some(p), _) => Some(LineFormat::Pattern(p.clone())),
        (None, "auto") => None,
        (None, name) => Some(LineFormat::from_name(name).map_err(LoadError::Usage)?),
    };
    if opts.follow && opts.files.len() != 1 {
        return Err(LoadError::Usage("--follow takes exactly one file".into()));
    }
    // The server must answer and take the key even when every file turns out loaded already,
    // and fail the same way a first run does when it does not.
    send(&client, &url, br#"{"logs":[]}"#.to_vec()).await?;
    let checkpoints = Checkpoints::new(&opts.data_dir);
    let total_bytes: u64 = opts
        .files
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .sum();
    let bar = if opts.progress && !opts.follow {
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
        let stdin = path.as_os_str() == "-";
        let clock = Clock {
            now: now_micros(),
            year: opts.year,
            zone,
        };
        let read_err = |source| LoadError::Read {
            path: path.display().to_string(),
            line: None,
            source,
        };
        // Detection reads the file's first lines (stdin: the first lines are kept and replayed).
        let (mut reader, sample): (Box<dyn std::io::BufRead + Send>, Vec<String>) = if stdin {
            let mut r: Box<dyn std::io::BufRead + Send> =
                Box::new(std::io::BufReader::new(std::io::stdin()));
            let sample = reader::sample(&mut *r, 200);
            let replay = sample
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes();
            (
                Box::new(std::io::BufReader::new(std::io::Read::chain(
                    std::io::Cursor::new(replay),
                    r,
                ))),
                sample,
            )
        } else {
            let sample = reader::sample(&mut *reader::open(path)?, 200);
            (reader::open(path)?, sample)
        };
        let sample_refs: Vec<&str> = sample.iter().map(String::as_str).collect();
        let detection = LineFormat::detect(&sample_refs, &clock);
        let (format, sample_hits, weak) = match &fixed_format {
            Some(f) => (
                f.clone(),
                sample_refs
                    .iter()
                    .filter(|l| f.parse(l, &clock).is_some())
                    .count(),
                Vec::new(),
            ),
            None => (
                detection.format.clone(),
                detection.hits,
                if detection.weak() {
                    detection.unexplained.clone()
                } else {
                    Vec::new()
                },
            ),
        };
        let file_id = if stdin {
            None
        } else {
            if opts.follow && reader::is_compressed(path) {
                return Err(LoadError::Usage(format!(
                    "{}: a compressed file cannot be followed",
                    path.display()
                )));
            }
            Some(Arc::new((
                path.clone(),
                FileId::of(path).map_err(read_err)?,
            )))
        };
        // Resume where an earlier run of this same file stopped.
        let mut resumed_at = 0;
        let mut line_no = 1;
        if let (Some(f), false) = (&file_id, opts.from_start) {
            if let Some(offset) = checkpoints.resume_offset(&f.0, &f.1) {
                let (skipped, lines) = skip(&mut *reader, offset).map_err(read_err)?;
                resumed_at = skipped;
                line_no += lines;
            }
        }
        let service = opts
            .service
            .clone()
            .or_else(|| stdin.then(|| "stdin".to_string()))
            .or_else(|| file_stem(path))
            .unwrap_or_else(|| "unknown".into());
        let plan = Plan {
            format: format.clone(),
            clock,
            service: opts.service.clone(),
            host: opts.host.clone(),
            source: json!({ "service": service, "host": "unknown" }),
            batch_lines: opts.batch_lines.clamp(1, crate::ingest::decode::MAX_EVENTS),
            follow: opts.follow,
            poll: opts.poll,
        };
        tracing::info!(file = %path.display(), format = %format.name(), "loading");
        let mut file_report = FileReport {
            path: path.display().to_string(),
            format: format.name(),
            sample_hits,
            sample_lines: sample_refs.iter().filter(|l| !l.trim().is_empty()).count(),
            resumed_at,
            weak,
            ..FileReport::default()
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Chunk, LoadError>>(8);
        let input = Input {
            reader,
            file: file_id,
            offset: resumed_at,
            line_no,
        };
        let reading = std::thread::spawn(move || reader::run(input, &plan, &tx));
        let workers = num_cpus::get().max(1) * 2;
        // `buffered` answers in order, so each answer moves the checkpoint forward.
        let mut sends = stream_from(rx)
            .map(|chunk| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let mut chunk = chunk?;
                    let body = std::mem::take(&mut chunk.body);
                    let answer = send(&client, &url, body).await?;
                    Ok::<_, LoadError>((chunk, answer))
                }
            })
            .buffered(workers);
        let mut last_bytes = 0;
        while let Some(done) = sends.next().await {
            let (chunk, (accepted, failed)) = done?;
            if let Some(f) = &chunk.file {
                checkpoints
                    .save(&f.0, &f.1, chunk.end_offset)
                    .map_err(|source| LoadError::Checkpoint {
                        dir: opts.data_dir.display().to_string(),
                        source,
                    })?;
            }
            file_report.lines += chunk.lines;
            file_report.records += chunk.records;
            file_report.parse_failed += chunk.parse_failed;
            for s in chunk.samples {
                if file_report.samples.len() < 3 {
                    file_report.samples.push(s);
                }
            }
            report.lines += chunk.lines;
            report.accepted += accepted;
            report.failed += failed;
            report.parse_failed += chunk.parse_failed;
            report.bytes += chunk.end_offset.saturating_sub(last_bytes.max(resumed_at));
            last_bytes = chunk.end_offset;
            bar.set_position(report.bytes);
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{} lines, {:.0} lines/s",
                report.lines,
                report.lines as f64 / secs
            ));
        }
        drop(sends);
        let _ = reading.join();
        report.files.push(file_report);
    }
    bar.finish_and_clear();
    Ok(report)
}

/// A file's name without its extensions: `app.log.1.gz`, `app.log-20240115`, `app.logfmt` and
/// `app.json` are all `app`, `syslog.2.gz` is `syslog`, `api-2024-01-15.log` is
/// `api-2024-01-15`, `nginx-1.25.3.log` is `nginx-1.25.3`. From the end, known extensions and
/// rotation numbers go; the dots of the name itself (a version) stay.
fn file_stem(path: &std::path::Path) -> Option<String> {
    const EXTENSIONS: [&str; 16] = [
        "log", "logs", "txt", "out", "err", "json", "ndjson", "jsonl", "logfmt", "csv", "gz",
        "zst", "zstd", "bz2", "xz", "lz4",
    ];
    let known = |part: &str| {
        let part = part.to_ascii_lowercase();
        // `log-20240115`: logrotate's dateext.
        let base = match part.split_once('-') {
            Some((b, date)) if !date.is_empty() && date.bytes().all(|c| c.is_ascii_digit()) => {
                b.to_string()
            }
            _ => part,
        };
        EXTENSIONS.contains(&base.as_str())
    };
    let number = |part: &str| !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit());
    let name = path.file_name()?.to_string_lossy().to_string();
    let trimmed = name.trim_start_matches('.');
    let mut parts: Vec<&str> = trimmed.split('.').collect();
    while parts.len() > 1 {
        let last = parts[parts.len() - 1];
        let before = parts[parts.len() - 2];
        // A rotation number follows an extension (`kern.log.10`) or a name (`syslog.1`), but
        // not another number (`1.25.3` is a version).
        let rotation = number(last) && (known(before) || !number(before));
        if known(last) || rotation {
            parts.pop();
        } else {
            break;
        }
    }
    let stem = parts.join(".");
    Some(if stem.is_empty() { name } else { stem })
}

/// Reads past the first `offset` bytes of a reader; (bytes skipped, lines skipped).
fn skip(reader: &mut dyn std::io::BufRead, offset: u64) -> std::io::Result<(u64, u64)> {
    let mut skipped = 0u64;
    let mut lines = 0u64;
    let mut buf = Vec::new();
    while skipped < offset {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        skipped += n as u64;
        lines += 1;
    }
    Ok((skipped, lines))
}

fn stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// POSTs one body; returns (accepted, failed). A busy server (503) is retried with backoff for
/// as long as it takes; a body too large for the server (413) is split in two and each half sent.
async fn send(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(u64, u64), LoadError> {
    let mut delay = Duration::from_millis(50);
    loop {
        let resp = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map_err(|e| LoadError::Unreachable {
                url: url.to_string(),
                reason: unreachable_reason(&e),
            })?;
        let status = resp.status();
        if status.as_u16() == 503 {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            continue;
        }
        let text = resp.text().await.unwrap_or_default();
        if status.as_u16() == 413 {
            if let Some((a, b)) = halves(&body) {
                let (a1, f1) = Box::pin(send(client, url, a)).await?;
                let (a2, f2) = Box::pin(send(client, url, b)).await?;
                return Ok((a1 + a2, f1 + f2));
            }
        }
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

/// A JSON batch body split into two with half the events each; `None` for a single event.
fn halves(body: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut batch: Value = serde_json::from_slice(body).ok()?;
    let logs = batch.get_mut("logs")?.as_array_mut()?;
    if logs.len() < 2 {
        return None;
    }
    let second = logs.split_off(logs.len() / 2);
    let first = serde_json::to_vec(&batch).ok()?;
    batch["logs"] = Value::Array(second);
    Some((first, serde_json::to_vec(&batch).ok()?))
}

/// Why a request got no answer, in words (reqwest's own say only "error sending request").
pub(crate) fn unreachable_reason(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut deepest = None;
    while let Some(s) = source {
        deepest = Some(s.to_string());
        source = s.source();
    }
    if e.is_connect() {
        format!(
            "connection failed: {}",
            deepest.unwrap_or_else(|| e.to_string())
        )
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        deepest.unwrap_or_else(|| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_s_name_without_its_extensions() {
        for (path, want) in [
            ("/var/log/app.log.1.gz", "app"),
            ("prometheus.logfmt", "prometheus"),
            ("prometheus.json", "prometheus"),
            ("api-2024-01-15.log", "api-2024-01-15"),
            ("/x/.hidden.log", "hidden"),
            ("syslog", "syslog"),
            ("nginx-1.25.3.log", "nginx-1.25.3"),
            ("app.log-20240115", "app"),
            ("app.log-20240115.gz", "app"),
            ("/var/log/syslog.2.gz", "syslog"),
            ("messages.1", "messages"),
            ("kern.log.10", "kern"),
            ("events.NDJSON", "events"),
            ("api.v2.log", "api.v2"),
        ] {
            let got = super::file_stem(std::path::Path::new(path));
            assert_eq!(got.as_deref(), Some(want), "{path}");
        }
    }
}
