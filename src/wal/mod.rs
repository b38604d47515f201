//! Segmented write-ahead log: append with group commit, replay, truncate.
//!
//! Every accepted batch is framed, CRC32C-checked and fsynced before its request is answered
//! (see [`format`] for the bytes). One writer thread owns the open file: it drains every append
//! waiting at that moment, writes them, issues one `fdatasync`, publishes each batch to the hot
//! buffer in sequence order, and only then acknowledges the requests. A file is deleted once every
//! sequence number it holds is in a durable, cataloged segment.

pub mod format;
mod replay;
mod writer;

use std::path::{Path, PathBuf};

pub use replay::{replay_dir, Replayed};
pub use writer::{Wal, WalSink};

/// Errors of the WAL layer.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("WAL writer has stopped")]
    WriterGone,
    #[error("WAL record at {path}:{offset} is corrupt: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl WalError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> WalError {
        WalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The file name of the WAL file whose first sequence number is `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// Lists WAL files of `dir`, ordered by their first sequence number.
pub fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| WalError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io(dir, e))?;
        let path = entry.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
        else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            files.push((first, path));
        }
    }
    files.sort();
    Ok(files)
}
