//! The bytes of a WAL file.
//!
//! ```text
//! file   := MAGIC frame*
//! MAGIC  := "TLWAL001"                          (8 bytes)
//! frame  := len:u32le crc:u32le body[len]       crc = CRC32C(body)
//! body   := seq:u64le count:u32le record*count
//! record := ts:i64le ingest_ts:i64le flags:u8 str(tenant) str(service) str(host) str(level)
//!           str(msg) [str(trace_id) if flags & HAS_TRACE] str(attrs)
//! flags  := PARSE_FAILED=1 | TRUNCATED=2 | HAS_TRACE=4
//! str    := len:u32le utf8[len]
//! ```
//!
//! A reader stops at the first frame whose length runs past the end of the file, whose CRC does
//! not match, or whose body does not decode: that is the torn tail of a crash, and it is cut off.

use crate::model::LogRecord;

/// First bytes of every WAL file.
pub const MAGIC: &[u8; 8] = b"TLWAL001";
/// Bytes before a frame's body.
pub const FRAME_HEADER: usize = 8;
/// Largest body a reader accepts; anything larger is a corrupt length prefix.
pub const MAX_BODY: usize = 1 << 30;

const PARSE_FAILED: u8 = 1;
const TRUNCATED: u8 = 2;
const HAS_TRACE: u8 = 4;

/// Encodes records as a body payload without the leading sequence number.
pub fn encode_records(records: &[LogRecord]) -> Vec<u8> {
    let size: usize = records.iter().map(|r| r.approx_bytes()).sum::<usize>() + 4;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        out.extend_from_slice(&r.ts.to_le_bytes());
        out.extend_from_slice(&r.ingest_ts.to_le_bytes());
        let mut flags = 0u8;
        if r.parse_failed {
            flags |= PARSE_FAILED;
        }
        if r.truncated {
            flags |= TRUNCATED;
        }
        if r.trace_id.is_some() {
            flags |= HAS_TRACE;
        }
        out.push(flags);
        for s in [&r.tenant, &r.service, &r.host, &r.level, &r.msg] {
            put_str(&mut out, s);
        }
        if let Some(t) = &r.trace_id {
            put_str(&mut out, t);
        }
        put_str(&mut out, &r.attrs);
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Builds a whole frame (header and body) for `seq` and an encoded payload.
pub fn frame(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER + 8 + payload.len());
    frame_into(&mut out, seq, payload);
    out
}

/// Appends a whole frame for `seq` and `payload` to `out`.
pub fn frame_into(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = (8 + payload.len()) as u32;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Decodes a frame body into its sequence number and records.
pub fn decode_body(body: &[u8]) -> Result<(u64, Vec<LogRecord>), String> {
    let mut r = Reader { buf: body, pos: 0 };
    let seq = r.u64()?;
    let count = r.u32()? as usize;
    if count > body.len() {
        return Err(format!("record count {count} exceeds body size"));
    }
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let ts = r.u64()? as i64;
        let ingest_ts = r.u64()? as i64;
        let flags = r.u8()?;
        let tenant = r.str()?;
        let service = r.str()?;
        let host = r.str()?;
        let level = r.str()?;
        let msg = r.str()?;
        let trace_id = if flags & HAS_TRACE != 0 {
            Some(r.str()?)
        } else {
            None
        };
        let attrs = r.str()?;
        records.push(LogRecord {
            ts,
            ingest_ts,
            tenant,
            service,
            host,
            level,
            msg,
            trace_id,
            attrs,
            parse_failed: flags & PARSE_FAILED != 0,
            truncated: flags & TRUNCATED != 0,
        });
    }
    if r.pos != body.len() {
        return Err(format!(
            "{} trailing bytes after records",
            body.len() - r.pos
        ));
    }
    Ok((seq, records))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| format!("need {n} bytes at {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
    }
}
