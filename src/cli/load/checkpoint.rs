//! Where a file load got to, so a re-run resumes (or skips) instead of storing lines twice: one
//! small JSON file per source file under `<data dir>/ingest-checkpoints/`, keyed by the file's
//! identity (device and inode) and checked against a hash of its first bytes, written atomically
//! (temp file, then rename) as the server acknowledges batches in order.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bytes of a file's start that prove it is the same file.
const PREFIX: u64 = 1024;

/// The identity of a file and how far into it (decompressed) the server has acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub path: String,
    pub prefix_len: u64,
    pub prefix_md5: String,
    /// Bytes of the (decompressed) stream whose lines the server has acknowledged.
    pub offset: u64,
}

/// The checkpoint store of one load.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

/// A file's key in the store (device and inode) and its prefix fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct FileId {
    key: String,
    pub prefix_len: u64,
    pub prefix_md5: String,
}

impl FileId {
    /// Reads `path`'s identity.
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)?;
        let mut head = Vec::new();
        std::fs::File::open(path)?
            .take(PREFIX)
            .read_to_end(&mut head)?;
        Ok(FileId {
            key: format!("{:x}-{:x}", meta.dev(), meta.ino()),
            prefix_len: head.len() as u64,
            prefix_md5: format!("{:x}", md5::compute(&head)),
        })
    }

    /// The file's device-and-inode key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether `later` (this file read again) still starts with the bytes this one hashed;
    /// false when it was rewritten.
    pub fn continues_in(&self, path: &Path, later: &FileId) -> bool {
        later.starts_with(path, self.prefix_len, &self.prefix_md5)
    }

    /// Whether this file (at `path`) starts with `len` bytes hashing to `md5`.
    fn starts_with(&self, path: &Path, len: u64, md5: &str) -> bool {
        if len > self.prefix_len {
            return false;
        }
        if len == self.prefix_len {
            return md5 == self.prefix_md5;
        }
        let mut head = Vec::new();
        let read = std::fs::File::open(path).and_then(|f| f.take(len).read_to_end(&mut head));
        read.is_ok() && format!("{:x}", md5::compute(&head)) == md5
    }

    /// Whether a checkpoint was taken of this file: same prefix (a file that grew since keeps
    /// the bytes the checkpoint hashed).
    fn matches(&self, path: &Path, cp: &Checkpoint) -> bool {
        self.starts_with(path, cp.prefix_len, &cp.prefix_md5)
    }
}

impl Checkpoints {
    pub fn new(data_dir: &Path) -> Checkpoints {
        Checkpoints {
            dir: data_dir.join("ingest-checkpoints"),
        }
    }

    fn file(&self, id: &FileId) -> PathBuf {
        self.dir.join(format!("{}.json", id.key))
    }

    /// The acknowledged offset of this very file, if an earlier load recorded one.
    pub fn resume_offset(&self, path: &Path, id: &FileId) -> Option<u64> {
        let text = std::fs::read_to_string(self.file(id)).ok()?;
        let cp: Checkpoint = serde_json::from_str(&text).ok()?;
        id.matches(path, &cp).then_some(cp.offset)
    }

    /// Records `offset` for the file (atomically).
    pub fn save(&self, path: &Path, id: &FileId, offset: u64) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let cp = Checkpoint {
            path: path.display().to_string(),
            prefix_len: id.prefix_len,
            prefix_md5: id.prefix_md5.clone(),
            offset,
        };
        let target = self.file(id);
        let tmp = target.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&cp).unwrap_or_default())?;
        std::fs::rename(&tmp, &target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grown_file_resumes_and_a_replaced_one_does_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("app.log");
        std::fs::write(&log, "line 1\nline 2\n").unwrap_or_default();
        let store = Checkpoints::new(dir.path());
        let id = FileId::of(&log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.resume_offset(&log, &id), None);
        store.save(&log, &id, 14).unwrap_or_default();
        std::fs::write(&log, "line 1\nline 2\nline 3\n").unwrap_or_default();
        let grown = FileId::of(&log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.resume_offset(&log, &grown), Some(14));
        std::fs::write(&log, "other\n").unwrap_or_default();
        let replaced = FileId::of(&log).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.resume_offset(&log, &replaced), None);
    }
}
