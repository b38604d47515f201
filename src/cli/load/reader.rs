//! The reading side of a file load: opens a file (gzip and zstd read directly), cuts it into
//! lines (bad UTF-8 replaced, never a stop), joins multi-line records (a record runs from one
//! timestamped line to the next: stack traces, blank lines inside them, PostgreSQL's `DETAIL`;
//! CRI partial lines), parses each record with the file's format and packs them into request
//! bodies that know the byte offset they end at. A line that joins nothing is stored with the
//! time of the record before it, flagged `parse_failed`. With `--follow` it keeps reading as the file grows, like
//! `tail -F`: a rotated file is finished and the new one opened, a truncated one re-read.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::checkpoint::FileId;
use super::follow::Waker;
use super::LoadError;
use crate::model::format::{begins_with_time, Clock, LineFormat, ParsedLine};
use crate::model::{Micros, MAX_MSG_BYTES};

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
    /// With `follow`: poll for changes instead of waiting for file events.
    pub poll: bool,
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

/// The first lines of a reader up to its `n`th non-empty one, blank ones included (for
/// detection, whose notes give line numbers).
pub fn sample(reader: &mut dyn BufRead, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut non_empty = 0;
    let mut buf = Vec::new();
    // A file of blank lines ends the sample too.
    while non_empty < n && out.len() < n * 10 {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                non_empty += usize::from(!line.trim().is_empty());
                out.push(line);
            }
        }
    }
    out
}

/// Lines one record holds at most; a longer run of continuation lines goes on as flagged rows.
const MAX_RECORD_LINES: usize = 5000;

/// A record being assembled: parsed from its first line, continuation lines appended.
struct Pending {
    parsed: ParsedLine,
    /// Offset of its first line: a checkpoint never passes a record not yet sent.
    start: u64,
    /// Lines joined so far, and blank lines seen since the last one (kept only if another line
    /// of the record follows them).
    joined: usize,
    blanks: usize,
}

impl Pending {
    /// Appends a continuation line, if the record has room for it. The first line joined to a
    /// record without a level may name it (java.util.logging's `SEVERE: …`).
    fn join(&mut self, line: &str) -> bool {
        let msg = &mut self.parsed.msg;
        if self.joined >= MAX_RECORD_LINES || msg.len() + line.len() + self.blanks >= MAX_MSG_BYTES
        {
            return false;
        }
        if self.joined == 0 && self.parsed.level.is_none() {
            self.parsed.level = crate::model::level::level_label(line).map(str::to_string);
        }
        for _ in 0..=self.blanks {
            msg.push('\n');
        }
        msg.push_str(line);
        self.joined += 1;
        self.blanks = 0;
        true
    }
}

/// Packs records into chunks.
struct Packer<'a> {
    plan: &'a Plan,
    events: Vec<Value>,
    /// JSON lines passed through whole (the server maps their keys), as JSON texts.
    raw_json: Vec<String>,
    /// The last JSON line of the chunks already taken.
    last_json: Option<String>,
    chunk: Chunk,
}

impl Packer<'_> {
    fn push_parsed(&mut self, p: ParsedLine) {
        let mut ev = Map::new();
        if !p.failed {
            ev.insert("ts".into(), Value::String(rfc3339(p.ts)));
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

    /// A line that is no record's and joins none: flagged, at the time of the record before it
    /// (`last_ts`), or the receive time when no earlier line had one.
    fn push_raw(&mut self, line: &str, line_no: u64, last_ts: Option<Micros>) {
        let ev = self.raw_event(line, line_no, last_ts);
        self.events.push(ev);
    }

    /// The event of a line stored flagged, counted and sampled for the summary.
    fn raw_event(&mut self, line: &str, line_no: u64, last_ts: Option<Micros>) -> Value {
        let mut ev = json!({ "msg": line, "parse_failed": true });
        if let Some(ts) = last_ts {
            ev["ts"] = Value::String(rfc3339(ts));
        }
        if let Some(s) = &self.plan.service {
            ev["service"] = Value::String(s.clone());
        }
        if let Some(h) = &self.plan.host {
            ev["host"] = Value::String(h.clone());
        }
        self.chunk.records += 1;
        self.chunk.parse_failed += 1;
        if self.chunk.samples.len() < 3 {
            let shown: String = line.chars().take(120).collect();
            self.chunk.samples.push((line_no, shown));
        }
        ev
    }

    /// A JSON line sent as it is (the server's decoder maps the same keys, with its zero-copy
    /// path for Timberline's own shape); a line that is not a JSON object is stored flagged,
    /// at the time of the JSON line before it, in its place among them.
    fn push_json_line(&mut self, line: &str, line_no: u64) {
        let trimmed = line.trim();
        let object = trimmed.starts_with('{')
            && serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok();
        if object {
            self.raw_json.push(trimmed.to_string());
            self.chunk.records += 1;
        } else {
            let clock = &self.plan.clock;
            let last_ts = self
                .raw_json
                .iter()
                .rev()
                .chain(self.last_json.as_ref())
                .find_map(|l| LineFormat::Json.parse(l, clock))
                .filter(|p| !p.failed)
                .map(|p| p.ts);
            let ev = self.raw_event(line, line_no, last_ts);
            self.raw_json.push(ev.to_string());
        }
    }

    fn take(&mut self, end_offset: u64, file: &Option<Arc<(PathBuf, FileId)>>) -> Chunk {
        let events = std::mem::take(&mut self.events);
        let raw = std::mem::take(&mut self.raw_json);
        // Where a non-JSON line at the start of the next chunk takes its time from.
        if let Some(last) = raw.last() {
            self.last_json = Some(last.clone());
        }
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.body = if raw.is_empty() {
            serde_json::to_vec(&json!({ "source": self.plan.source, "logs": events }))
                .unwrap_or_default()
        } else {
            let mut body = format!("{{\"source\":{},\"logs\":[", self.plan.source).into_bytes();
            let all = raw.into_iter().chain(events.iter().map(Value::to_string));
            for (i, ev) in all.enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(ev.as_bytes());
            }
            body.extend_from_slice(b"]}");
            body
        };
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

/// Longest line kept; the rest of a longer one is skipped (the row flagged by the server's
/// message limit), so a file without newlines cannot exhaust memory.
const MAX_LINE: usize = 1 << 20;
/// A request body stops growing at about this many bytes of messages (well under the server's
/// 64 MiB body limit), whatever `--batch` says.
const MAX_CHUNK_BYTES: usize = 8 << 20;

/// Reads up to and including the next `\n` into `buf`, keeping at most [`MAX_LINE`] bytes;
/// returns (bytes consumed, whether the newline was reached).
fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((consumed, false));
        }
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        buf.extend_from_slice(&available[..take.min(room)]);
        reader.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, true));
        }
    }
}

/// Where records are assembled: the record waiting for continuation lines, CRI partial lines
/// waiting for their end, and the chunk being packed.
struct Assembly<'a> {
    plan: &'a Plan,
    packer: Packer<'a>,
    pending: Option<Pending>,
    /// Joined CRI partial lines and the offset of the first.
    partial: Option<(String, u64)>,
    chunk_bytes: usize,
    /// The time of the latest record, for lines that join none.
    last_ts: Option<Micros>,
}

impl Assembly<'_> {
    /// The offset a checkpoint may move to: nothing of a record still being assembled passed.
    fn safe_offset(&self, offset: u64) -> u64 {
        let pending = self.pending.as_ref().map_or(offset, |p| p.start);
        let partial = self.partial.as_ref().map_or(offset, |p| p.1);
        offset.min(pending).min(partial)
    }

    fn emit_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            self.packer.push_parsed(p.parsed);
        }
    }

    fn start_record(&mut self, parsed: ParsedLine, start: u64) {
        self.emit_pending();
        if !parsed.failed {
            self.last_ts = Some(parsed.ts);
        }
        self.pending = Some(Pending {
            parsed,
            start,
            joined: 0,
            blanks: 0,
        });
    }

    /// A blank line: part of the record being assembled if another of its lines follows.
    fn blank(&mut self) {
        if let Some(p) = self.pending.as_mut() {
            p.blanks += 1;
        }
    }

    /// A line that starts no record: joined to the one being assembled when the format lets
    /// it, else stored on its own, flagged.
    fn unstarted(&mut self, line: &str, line_no: u64) {
        let joins = self.plan.format.joins_lines();
        if joins && self.pending.as_mut().is_some_and(|p| p.join(line)) {
            return;
        }
        self.emit_pending();
        self.packer.push_raw(line, line_no, self.last_ts);
    }

    /// One whole line, starting at `start`.
    fn line(&mut self, line: &str, start: u64, line_no: u64) {
        self.chunk_bytes += line.len() + 64;
        self.packer.chunk.lines += 1;
        let format = &self.plan.format;
        let (line, start) = match self.partial.take() {
            Some((mut joined, first)) => {
                joined.push_str(format.content(line));
                if format.partial_content(line).is_some() && joined.len() < MAX_LINE {
                    self.partial = Some((joined, first));
                    return;
                }
                (std::borrow::Cow::Owned(joined), first)
            }
            None if format.partial_content(line).is_some() => {
                self.partial = Some((line.to_string(), start));
                return;
            }
            None => (std::borrow::Cow::Borrowed(line), start),
        };
        if matches!(format, LineFormat::Json)
            && self.plan.service.is_none()
            && self.plan.host.is_none()
        {
            self.packer.push_json_line(&line, line_no);
            return;
        }
        match format.parse(&line, &self.plan.clock) {
            Some(parsed) if parsed.continues && self.pending.is_some() => {
                self.unstarted(&parsed.msg, line_no)
            }
            Some(parsed) => self.start_record(parsed, start),
            // A line that begins with a time the format cannot read starts a record of its
            // own, read as text; any other line continues the record before it.
            None => match format
                .joins_lines()
                .then(|| begins_with_time(&line, &self.plan.clock))
                .flatten()
            {
                Some(parsed) => self.start_record(parsed, start),
                None => self.unstarted(&line, line_no),
            },
        }
    }

    /// Everything still held becomes records (end of input, or a followed file gone quiet).
    fn finish_records(&mut self, line_no: u64) {
        if let Some((joined, _)) = self.partial.take() {
            match self.plan.format.parse(&joined, &self.plan.clock) {
                Some(p) => {
                    self.emit_pending();
                    self.packer.push_parsed(p);
                }
                None => {
                    self.emit_pending();
                    self.packer.push_raw(&joined, line_no, self.last_ts);
                }
            }
        }
        self.emit_pending();
    }

    /// Whether a record (or CRI partial line) is waiting for more of its lines.
    fn holds_record(&self) -> bool {
        self.pending.is_some() || self.partial.is_some()
    }

    fn full(&self) -> bool {
        self.packer.chunk.records as usize >= self.plan.batch_lines
            || self.chunk_bytes >= MAX_CHUNK_BYTES
    }

    fn take(&mut self, offset: u64, file: &Option<Arc<(PathBuf, FileId)>>) -> Chunk {
        self.chunk_bytes = 0;
        let safe = self.safe_offset(offset);
        self.packer.take(safe, file)
    }
}

/// What became of a followed file since it was last read to its end.
enum FileState {
    Same,
    /// A new file at the path: finish the old one, then read this from its start.
    Rotated(Input),
    /// Cut short or rewritten: read it again from its start.
    Truncated(Input),
}

/// Reads `input` to its end (or forever with `--follow`), sending chunks; returns when done or
/// when the receiver is gone.
pub fn run(
    mut input: Input,
    plan: &Plan,
    tx: &tokio::sync::mpsc::Sender<Result<Chunk, LoadError>>,
) {
    let mut asm = Assembly {
        plan,
        packer: Packer {
            plan,
            events: Vec::new(),
            raw_json: Vec::new(),
            last_json: None,
            chunk: Chunk::default(),
        },
        pending: None,
        partial: None,
        chunk_bytes: 0,
        last_ts: None,
    };
    let mut buf = Vec::new();
    // Bytes of the line in `buf` consumed so far (it may be longer than what `buf` keeps).
    let mut line_bytes = 0u64;
    let mut offset = input.offset;
    let mut line_no = input.line_no;
    let mut idle_polls = 0u32;
    let mut rotated: Option<Input> = None;
    let waker = plan
        .follow
        .then(|| Waker::new(input.file.as_ref().map(|f| f.0.as_path()), plan.poll));
    let send = |chunk: Chunk| tx.blocking_send(Ok(chunk)).is_ok();
    loop {
        let (n, complete) = match read_line(&mut *input.reader, &mut buf) {
            Ok(r) => r,
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
        line_bytes += n as u64;
        let at_end = !complete;
        // A half-written last line of a followed file waits in `buf` for its end.
        let whole = complete
            || (!plan.follow && line_bytes > 0)
            || (at_end && rotated.is_some() && line_bytes > 0);
        if whole {
            idle_polls = 0;
            let start = offset;
            offset += line_bytes;
            line_bytes = 0;
            let text = String::from_utf8_lossy(&buf).into_owned();
            buf.clear();
            let this_line = line_no;
            line_no += 1;
            let line = text.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                asm.blank();
            } else {
                asm.line(line, start, this_line);
                if asm.full() && !send(asm.take(offset, &input.file)) {
                    return;
                }
            }
            continue;
        }
        // At the end of what the file holds now. A rotated file read to its end once more
        // (what was written to it before the rename) goes on with the new one.
        let mut next = rotated.take();
        if next.is_none() {
            if !plan.follow {
                break;
            }
            idle_polls = idle_polls.saturating_add(1);
            if idle_polls >= 2 {
                asm.finish_records(line_no);
            }
            if asm.packer.chunk.records > 0 && !send(asm.take(offset, &input.file)) {
                return;
            }
            if let Some(w) = &waker {
                w.wait(asm.holds_record());
            }
            match file_state(&input, offset + line_bytes) {
                FileState::Same => continue,
                FileState::Rotated(n) => {
                    rotated = Some(n);
                    continue;
                }
                FileState::Truncated(n) => next = Some(n),
            }
        }
        if let Some(next) = next {
            asm.finish_records(line_no);
            if !send(asm.take(offset, &input.file)) {
                return;
            }
            input = next;
            (offset, line_no, line_bytes) = (0, 1, 0);
            buf.clear();
        }
    }
    asm.finish_records(line_no);
    if asm.packer.chunk.records > 0 || asm.packer.chunk.lines > 0 {
        let _ = send(asm.take(offset, &input.file));
    }
}

fn rfc3339(ts: Micros) -> String {
    DateTime::<Utc>::from_timestamp_micros(ts)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Whether a followed file was rotated (a new file at its path) or truncated (shorter than what
/// was read, or its first bytes changed), and the input to go on with.
fn file_state(input: &Input, read: u64) -> FileState {
    let Some(f) = input.file.as_ref() else {
        return FileState::Same;
    };
    let path = &f.0;
    let (Ok(now), Ok(meta)) = (FileId::of(path), std::fs::metadata(path)) else {
        return FileState::Same;
    };
    let open = |id: FileId| -> Option<Input> {
        let file = File::open(path).ok()?;
        Some(Input {
            reader: Box::new(BufReader::with_capacity(1 << 20, file)),
            file: Some(Arc::new((path.clone(), id))),
            offset: 0,
            line_no: 1,
        })
    };
    if now.key() != f.1.key() {
        return open(now).map_or(FileState::Same, FileState::Rotated);
    }
    if meta.len() < read || !f.1.continues_in(path, &now) {
        return open(now).map_or(FileState::Same, FileState::Truncated);
    }
    FileState::Same
}
