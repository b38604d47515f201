//! The reading side of a file load: opens a file (gzip and zstd read directly), cuts it into
//! lines (bad UTF-8 replaced, never a stop), joins multi-line records (stack traces, CRI partial
//! lines), parses each record with the file's format and packs them into request bodies that
//! know the byte offset they end at. With `--follow` it keeps reading as the file grows, like
//! `tail -F`: a rotated file is finished and the new one opened, a truncated one re-read.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::checkpoint::FileId;
use super::LoadError;
use crate::model::format::{is_continuation, Clock, LineFormat, ParsedLine};
use crate::model::MAX_MSG_BYTES;

/// How often a followed file is checked for new lines, rotation and truncation.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// One request body, ready to send, and what it covers.
#[derive(Debug, Default)]
pub struct Chunk {
    pub body: Vec<u8>,
    pub lines: u64,
    pub records: u64,
    pub parse_failed: u64,
    /// Offset in the (decompressed) file up to which every line is in this or an earlier chunk.
    pub end_offset: u64,
    /// The file the offset is of (`None` for stdin).
    pub file: Option<Arc<(PathBuf, FileId)>>,
    /// Up to three unparsed lines: (line number, text).
    pub samples: Vec<(u64, String)>,
}

/// What the reader needs to know.
#[derive(Debug, Clone)]
pub struct Plan {
    pub format: LineFormat,
    pub clock: Clock,
    /// Overrides every record's service/host when the user gave one.
    pub service: Option<String>,
    pub host: Option<String>,
    /// The batch's defaults (the format's or the file's name; `unknown`).
    pub source: Value,
    pub batch_lines: usize,
    pub follow: bool,
}

/// Opens a file for reading from its start, decompressing gzip or zstd (by magic bytes).
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, LoadError> {
    let read_err = |source| LoadError::Read {
        path: path.display().to_string(),
        line: None,
        source,
    };
    let mut f = File::open(path).map_err(read_err)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(read_err)?;
    f.seek(SeekFrom::Start(0)).map_err(read_err)?;
    let reader: Box<dyn Read + Send> = match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(f)),
        [0x28, 0xb5, 0x2f, 0xfd] => {
            Box::new(zstd::stream::read::Decoder::new(f).map_err(read_err)?)
        }
        _ => Box::new(f),
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, reader)))
}

/// Whether the file is compressed (and so cannot be followed or seeked).
pub fn is_compressed(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .unwrap_or(0);
    matches!(&magic[..n], [0x1f, 0x8b, ..] | [0x28, 0xb5, 0x2f, 0xfd])
}

/// The first `n` non-empty lines of a reader (for detection).
pub fn sample(reader: &mut dyn BufRead, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while out.len() < n {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if !line.trim().is_empty() {
                    out.push(line);
                }
            }
        }
    }
    out
}

/// A record being assembled: parsed from its first line, continuation lines appended.
struct Pending {
    parsed: ParsedLine,
    /// Offset of its first line: a checkpoint never passes a record not yet sent.
    start: u64,
}

/// Packs records into chunks.
struct Packer<'a> {
    plan: &'a Plan,
    events: Vec<Value>,
    chunk: Chunk,
}

impl Packer<'_> {
    fn push_parsed(&mut self, p: ParsedLine) {
        let mut ev = Map::new();
        if !p.failed {
            let ts = DateTime::<Utc>::from_timestamp_micros(p.ts).unwrap_or_default();
            ev.insert(
                "ts".into(),
                Value::String(ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            );
        } else {
            ev.insert("parse_failed".into(), Value::Bool(true));
        }
        ev.insert("msg".into(), Value::String(p.msg));
        if let Some(l) = p.level {
            ev.insert("level".into(), Value::String(l));
        }
        if let Some(s) = self.plan.service.clone().or(p.service) {
            ev.insert("service".into(), Value::String(s));
        }
        if let Some(h) = self.plan.host.clone().or(p.host) {
            ev.insert("host".into(), Value::String(h));
        }
        if let Some(t) = p.trace_id {
            ev.insert("trace_id".into(), Value::String(t));
        }
        if !p.attrs.is_empty() {
            ev.insert("meta".into(), Value::Object(p.attrs));
        }
        self.events.push(Value::Object(ev));
        self.chunk.records += 1;
    }

    fn push_raw(&mut self, line: &str, line_no: u64) {
        let mut ev = json!({ "msg": line, "parse_failed": true });
        if let Some(s) = &self.plan.service {
            ev["service"] = Value::String(s.clone());
        }
        if let Some(h) = &self.plan.host {
            ev["host"] = Value::String(h.clone());
        }
        self.events.push(ev);
        self.chunk.records += 1;
        self.chunk.parse_failed += 1;
        if self.chunk.samples.len() < 3 {
            let shown: String = line.chars().take(120).collect();
            self.chunk.samples.push((line_no, shown));
        }
    }

    fn take(&mut self, end_offset: u64, file: &Option<Arc<(PathBuf, FileId)>>) -> Chunk {
        let events = std::mem::take(&mut self.events);
        let body = json!({ "source": self.plan.source, "logs": events });
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.body = serde_json::to_vec(&body).unwrap_or_default();
        chunk.end_offset = end_offset;
        chunk.file = file.clone();
        chunk
    }
}

/// Where the lines come from.
pub struct Input {
    pub reader: Box<dyn BufRead + Send>,
    /// The file being read (`None` for stdin), for following and checkpoints.
    pub file: Option<Arc<(PathBuf, FileId)>>,
    /// Offset the reader starts at (lines before it were loaded by an earlier run).
    pub offset: u64,
    /// Line number of the first line read (1-based).
    pub line_no: u64,
}

/// Reads `input` to its end (or forever with `--follow`), sending chunks; returns when done or
/// when the receiver is gone.
pub fn run(
    mut input: Input,
    plan: &Plan,
    tx: &tokio::sync::mpsc::Sender<Result<Chunk, LoadError>>,
) {
    let mut packer = Packer {
        plan,
        events: Vec::new(),
        chunk: Chunk::default(),
    };
    let mut pending: Option<Pending> = None;
    let mut partial: Option<(String, u64)> = None;
    let mut buf = Vec::new();
    let mut offset = input.offset;
    let mut line_no = input.line_no;
    let mut idle_polls = 0u32;
    let send = |chunk: Chunk| tx.blocking_send(Ok(chunk)).is_ok();
    loop {
        buf.clear();
        let read = input.reader.read_until(b'\n', &mut buf);
        let n = match read {
            Ok(n) => n,
            Err(source) => {
                let path = input
                    .file
                    .as_ref()
                    .map_or("stdin".into(), |f| f.0.display().to_string());
                let _ = tx.blocking_send(Err(LoadError::Read {
                    path,
                    line: Some(line_no),
                    source,
                }));
                return;
            }
        };
        let complete = buf.last() == Some(&b'\n');
        if n == 0 || (plan.follow && !complete) {
            // End of what is there now. A followed file's half-written last line waits.
            if plan.follow && n > 0 {
                if let Some(f) = &input.file {
                    if let Ok(mut file) = File::open(&f.0) {
                        // Re-read the half line next time: reopen at its start.
                        if file.seek(SeekFrom::Start(offset)).is_ok() {
                            input.reader = Box::new(BufReader::with_capacity(1 << 20, file));
                        }
                    }
                }
            }
            if !plan.follow {
                break;
            }
            idle_polls += 1;
            if idle_polls >= 2 {
                if let Some(p) = pending.take() {
                    packer.push_parsed(p.parsed);
                }
            }
            if packer.chunk.records > 0 || packer.chunk.lines > 0 {
                let safe = pending.as_ref().map_or(offset, |p| p.start);
                if !send(packer.take(safe, &input.file)) {
                    return;
                }
            }
            std::thread::sleep(FOLLOW_POLL);
            if let Some(next) = reopen_if_rotated(&input, offset) {
                if let Some(p) = pending.take() {
                    packer.push_parsed(p.parsed);
                }
                if packer.chunk.records > 0 && !send(packer.take(offset, &input.file)) {
                    return;
                }
                input = next;
                offset = 0;
                line_no = 1;
            }
            continue;
        }
        idle_polls = 0;
        let start = offset;
        offset += n as u64;
        let this_line = line_no;
        line_no += 1;
        let text = String::from_utf8_lossy(&buf);
        let mut line: std::borrow::Cow<str> =
            std::borrow::Cow::Borrowed(text.trim_end_matches(['\n', '\r']));
        if line.trim().is_empty() {
            continue;
        }
        packer.chunk.lines += 1;
        // CRI partial lines: hold the first, append the contents of the rest.
        if let Some((mut joined, first_start)) = partial.take() {
            joined.push_str(plan.format.content(&line));
            if plan.format.partial_content(&line).is_some() && joined.len() < MAX_MSG_BYTES {
                partial = Some((joined, first_start));
                continue;
            }
            line = std::borrow::Cow::Owned(joined);
        } else if plan.format.partial_content(&line).is_some() {
            partial = Some((line.into_owned(), start));
            continue;
        }
        match plan.format.parse(&line, &plan.clock) {
            Some(parsed) => {
                if let Some(p) = pending.replace(Pending { parsed, start }) {
                    packer.push_parsed(p.parsed);
                }
            }
            None => {
                let joins = plan.format.joins_lines() && is_continuation(&line);
                match pending.as_mut() {
                    Some(p) if joins => {
                        if p.parsed.msg.len() <= MAX_MSG_BYTES {
                            p.parsed.msg.push('\n');
                            p.parsed.msg.push_str(&line);
                        }
                    }
                    _ => {
                        if let Some(p) = pending.take() {
                            packer.push_parsed(p.parsed);
                        }
                        packer.push_raw(&line, this_line);
                    }
                }
            }
        }
        if packer.chunk.records as usize >= plan.batch_lines {
            let safe = pending.as_ref().map_or(offset, |p| p.start);
            if !send(packer.take(safe, &input.file)) {
                return;
            }
        }
    }
    if let Some((joined, _)) = partial.take() {
        match plan.format.parse(&joined, &plan.clock) {
            Some(p) => packer.push_parsed(p),
            None => packer.push_raw(&joined, line_no),
        }
    }
    if let Some(p) = pending.take() {
        packer.push_parsed(p.parsed);
    }
    if packer.chunk.records > 0 || packer.chunk.lines > 0 {
        let _ = send(packer.take(offset, &input.file));
    }
}

/// A followed file that was rotated (a new file at its path) or truncated: the input to go on
/// with, from the new file's start.
fn reopen_if_rotated(input: &Input, offset: u64) -> Option<Input> {
    let f = input.file.as_ref()?;
    let path = &f.0;
    let now = FileId::of(path).ok()?;
    let len = std::fs::metadata(path).ok()?.len();
    let rotated = now.key() != f.1.key();
    if !rotated && len >= offset {
        return None;
    }
    let file = File::open(path).ok()?;
    Some(Input {
        reader: Box::new(BufReader::with_capacity(1 << 20, file)),
        file: Some(Arc::new((path.clone(), now))),
        offset: 0,
        line_no: 1,
    })
}
