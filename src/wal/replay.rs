//! Replay: read every WAL file on startup, cutting off a torn or corrupt tail.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::format::{decode_body, FRAME_HEADER, MAGIC, MAX_BODY};
use super::{list_files, WalError};
use crate::model::LogRecord;

/// What replay found.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Every intact frame, in file and sequence order.
    pub batches: Vec<(u64, Vec<LogRecord>)>,
    /// Highest sequence number seen (0 when none).
    pub max_seq: u64,
    /// Files whose tail was cut, with the offset kept and why.
    pub cut: Vec<(PathBuf, u64, String)>,
    /// Files that remain on disk, with their last sequence number.
    pub files: Vec<(PathBuf, u64)>,
}

/// Reads every WAL file of `dir`, truncating each at its first bad frame.
pub fn replay_dir(dir: &Path) -> Result<Replayed, WalError> {
    let mut out = Replayed::default();
    for (first_seq, path) in list_files(dir)? {
        let bytes = std::fs::read(&path).map_err(|e| WalError::io(&path, e))?;
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            // An empty file, or one torn before its header was complete: nothing was acked from it.
            tracing::warn!(path = %path.display(), len = bytes.len(), "WAL file without a complete header; removing it");
            std::fs::remove_file(&path).map_err(|e| WalError::io(&path, e))?;
            continue;
        }
        let (good_end, last_seq, reason) = read_frames(&bytes, &mut out.batches);
        if let Some(reason) = reason {
            tracing::warn!(path = %path.display(), offset = good_end, %reason, "cutting WAL tail");
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| WalError::io(&path, e))?;
            f.set_len(good_end as u64)
                .map_err(|e| WalError::io(&path, e))?;
            f.sync_all().map_err(|e| WalError::io(&path, e))?;
            out.cut.push((path.clone(), good_end as u64, reason));
        }
        if let Some(last) = last_seq {
            out.max_seq = out.max_seq.max(last);
        }
        out.files
            .push((path, last_seq.unwrap_or(first_seq.saturating_sub(1))));
    }
    Ok(out)
}

/// Appends every intact frame of a file to `batches`; returns the end of the last good frame,
/// the last sequence number read, and why reading stopped early (if it did).
fn read_frames(
    bytes: &[u8],
    batches: &mut Vec<(u64, Vec<LogRecord>)>,
) -> (usize, Option<u64>, Option<String>) {
    let mut pos = MAGIC.len();
    let mut last = None;
    while pos < bytes.len() {
        if bytes.len() - pos < FRAME_HEADER {
            return (pos, last, Some("truncated frame header".into()));
        }
        let len = u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        let crc = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        let body_start = pos + FRAME_HEADER;
        if len > MAX_BODY || len > bytes.len() - body_start {
            return (
                pos,
                last,
                Some(format!("frame length {len} runs past end of file")),
            );
        }
        let body = &bytes[body_start..body_start + len];
        if crc32c::crc32c(body) != crc {
            return (pos, last, Some("CRC mismatch".into()));
        }
        match decode_body(body) {
            Ok((seq, records)) => {
                if last.is_some_and(|l| seq <= l) {
                    return (pos, last, Some(format!("sequence {seq} does not increase")));
                }
                last = Some(seq);
                batches.push((seq, records));
            }
            Err(reason) => return (pos, last, Some(format!("undecodable body: {reason}"))),
        }
        pos = body_start + len;
    }
    (pos, last, None)
}
