//! Where Timberline's files live and how they are written durably: the segment layout
//! ([`layout`]), the tiers and stores segment files are found and read through
//! ([`SegmentFiles`], [`Location`]), and the durable writes: whole-file replacement on local
//! disk (temporary file, fsync, rename, then the directory fsynced, so a crash leaves the old
//! file or the new one, never a part) and a conditional put on an object store.

pub mod cache;
pub mod cold;
mod files;
pub mod layout;
mod remote;

use std::fs::File;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use datafusion::object_store::{self, ObjectStore, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

pub use cache::{CachedStore, StoreCount};
pub use cold::{open_cold_store, ColdStoreError};
pub use files::{bloom_key, index_key, keep_file, SegmentFiles};
pub use remote::RemoteFile;

/// Where a segment sits in its life: freshly flushed (`hot`), compacted (`warm`, both on local
/// disk), or moved to the object store (`cold`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    #[default]
    Hot,
    Warm,
    Cold,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Warm => "warm",
            Tier::Cold => "cold",
        }
    }

    /// Whether the tier's files are on this server's disk.
    pub fn is_local(self) -> bool {
        !matches!(self, Tier::Cold)
    }
}

/// Where a segment's files are: its tier, and its data file's key in that tier's store
/// (`segments/tenant=…/date=…/hour=…/seg-….parquet`); the sidecars sit beside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Catalogs written before tiers hold local segments only.
    #[serde(default)]
    pub tier: Tier,
    /// Catalogs written before tiers call it `path` (relative to the data directory, the same key).
    #[serde(alias = "path")]
    pub key: String,
}

impl Location {
    /// A freshly flushed segment's location.
    pub fn hot(key: String) -> Location {
        Location {
            tier: Tier::Hot,
            key,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.tier.as_str(), self.key)
    }
}

/// A segment file that could not be found, read or written where its location says.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{location}: no {tier} store is configured", tier = location.tier.as_str())]
    NoStore { location: Location },
    #[error("{key}: already exists in the object store")]
    Exists { key: String },
    #[error("{key}: {source}")]
    Object {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `path` whole through `write` (given the temporary file `<path>.<tmp_ext>`, it returns
/// the file when done), fsyncs it and renames it over `path`, so a reader sees the old file or
/// the new one, never a part; the bytes written. The caller fsyncs the directory (once, after
/// all its renames) to make the rename itself durable.
pub fn write_durably<E: From<std::io::Error>>(
    path: &Path,
    tmp_ext: &str,
    write: impl FnOnce(File) -> Result<File, E>,
) -> Result<u64, E> {
    let tmp = path.with_extension(tmp_ext);
    let written = (|| {
        let file = write(File::create(&tmp)?)?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        drop(file);
        std::fs::rename(&tmp, path)?;
        Ok(bytes)
    })();
    if written.is_err() {
        // A full disk must not stay full of our half-written files.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Replaces `path` with `bytes` whole, as [`write_durably`] does.
pub fn replace_file(path: &Path, tmp_ext: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    write_durably(path, tmp_ext, |mut f: File| {
        f.write_all(bytes)?;
        Ok::<_, std::io::Error>(f)
    })
    .map(drop)
}

/// fsyncs a directory so that a create, rename or delete inside it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Puts `bytes` at `key` only if nothing is there yet (the object store's conditional put), so
/// two writers of the same key — a retried upload and a stale one — never overwrite each other;
/// an object is visible whole or not at all once this returns.
pub async fn put_new(store: &dyn ObjectStore, key: &str, bytes: Bytes) -> Result<(), StorageError> {
    let path = object_store::path::Path::from(key);
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store
        .put_opts(&path, PutPayload::from(bytes), options)
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => Err(StorageError::Exists {
            key: key.to_string(),
        }),
        Err(source) => Err(StorageError::Object {
            key: key.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_written_before_tiers_load_as_hot_segments_at_their_old_path() {
        let old: Location =
            serde_json::from_str(r#"{"path":"segments/a/seg-1.parquet"}"#).expect("old form");
        assert_eq!(old, Location::hot("segments/a/seg-1.parquet".into()));
        let new = serde_json::to_string(&Location {
            tier: Tier::Cold,
            key: "k".into(),
        })
        .expect("encode");
        assert_eq!(new, r#"{"tier":"cold","key":"k"}"#);
    }

    #[tokio::test]
    async fn a_conditional_put_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("store");
        put_new(&store, "segments/s.parquet", Bytes::from_static(b"first"))
            .await
            .expect("first put");
        let again = put_new(&store, "segments/s.parquet", Bytes::from_static(b"second")).await;
        assert!(
            matches!(again, Err(StorageError::Exists { .. })),
            "{again:?}"
        );
        let read = std::fs::read(dir.path().join("segments/s.parquet")).expect("read");
        assert_eq!(read, b"first");
    }

    #[test]
    fn a_failed_durable_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.json");
        replace_file(&path, "tmp", b"old").expect("write");
        let failed = write_durably(&path, "tmp", |_f: File| {
            Err::<File, _>(std::io::Error::other("encoder failed"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
    }
}
