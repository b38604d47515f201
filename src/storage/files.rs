//! [`SegmentFiles`]: the one handle through which segment files are found and read, by their
//! [`Location`]. Data files are read by DataFusion through the object store registered for the
//! segment's tier ([`SegmentFiles::url`]), so a plan names a segment by its key
//! (`segments/tenant=…/…parquet`), never by where the server's disk is. Readers that need a
//! file on this machine — the memory-mapped sidecars (index, bloom) and `nearest()`'s page reads
//! — ask for its local copy; on the local tiers that is the file itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::ObjectStore;

use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::ObjectStoreExt;
use futures::StreamExt;

use super::cache::CachedStore;
use super::layout::{bloom_path, index_path, SIDECAR_CACHE_DIR};
use super::{Location, StorageError, Tier};

/// Segment files: the local tiers under one root directory, and the cold tier's object store
/// when one is configured.
#[derive(Debug, Clone)]
pub struct SegmentFiles {
    root: PathBuf,
    local: Arc<dyn ObjectStore>,
    cold: Option<Arc<CachedStore>>,
    /// Bytes the cold segments' sidecars may take on local disk.
    sidecar_bytes: u64,
}

impl SegmentFiles {
    /// Segment files on local disk under `root` (the data directory), with no cold tier.
    pub fn local(root: &Path) -> Result<SegmentFiles, datafusion::object_store::Error> {
        Ok(SegmentFiles {
            root: root.to_path_buf(),
            local: Arc::new(LocalFileSystem::new_with_prefix(root)?),
            cold: None,
            sidecar_bytes: u64::MAX,
        })
    }

    /// These files with the cold tier in `store`, its ranges cached within `cache_bytes` (and
    /// cold segments' sidecars kept under `<root>/cache/`).
    pub fn with_cold(mut self, store: Arc<dyn ObjectStore>, cache_bytes: u64) -> SegmentFiles {
        self.cold = Some(Arc::new(CachedStore::new(store, cache_bytes)));
        self.sidecar_bytes = cache_bytes;
        self
    }

    /// Deletes the least recently used cold sidecars until those left take at most the cache's
    /// bytes (a sidecar is used when a scan asks for it; one deleted is fetched again when
    /// next needed). The bytes left.
    pub fn trim_sidecars(&self) -> u64 {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(self.sidecar_cache())
            .into_iter()
            .flatten()
        {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_file() {
                let used = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                files.push((used, meta.len(), entry.into_path()));
            }
        }
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.sidecar_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
        total
    }

    /// The cold tier's store, when one is configured.
    pub fn cold(&self) -> Option<&Arc<CachedStore>> {
        self.cold.as_ref()
    }

    /// The directory cold segments' sidecars are kept in, mirroring their keys.
    pub fn sidecar_cache(&self) -> PathBuf {
        self.root.join(SIDECAR_CACHE_DIR)
    }

    /// The URL plans read segments of `tier` under.
    pub fn url(tier: Tier) -> ObjectStoreUrl {
        let url = if tier.is_local() {
            "timberline://local/"
        } else {
            "timberline://cold/"
        };
        ObjectStoreUrl::parse(url).unwrap_or_else(|_| ObjectStoreUrl::local_filesystem())
    }

    /// Each configured store with the URL plans name it by.
    pub fn stores(&self) -> Vec<(ObjectStoreUrl, Arc<dyn ObjectStore>)> {
        let mut out = vec![(Self::url(Tier::Hot), self.local.clone())];
        if let Some(cold) = &self.cold {
            out.push((Self::url(Tier::Cold), cold.clone() as Arc<dyn ObjectStore>));
        }
        out
    }

    /// The directory local segment keys are relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local file of the data file at `at` (on the local tiers only: cold data is read by
    /// range from the object store).
    pub fn data(&self, at: &Location) -> Result<PathBuf, StorageError> {
        self.local_copy(at)
    }

    /// The local copy of the sidecar index of the segment at `at` (for a cold segment, its
    /// cached copy, which [`SegmentFiles::fetch_sidecars`] brings).
    pub fn index(&self, at: &Location) -> Result<PathBuf, StorageError> {
        Ok(index_path(&self.sidecar_base(at)?))
    }

    /// The local copy of the bloom file of the segment at `at`.
    pub fn bloom(&self, at: &Location) -> Result<PathBuf, StorageError> {
        Ok(bloom_path(&self.sidecar_base(at)?))
    }

    /// Whether the data file at `at` is there: on the local tiers, the file; on the cold tier,
    /// the catalog's word (a read that finds it gone fails then).
    pub fn has_data(&self, at: &Location) -> bool {
        if !at.tier.is_local() {
            return self.cold.is_some();
        }
        self.data(at)
            .is_ok_and(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
    }

    /// The store a segment at `at` is read from.
    pub fn store_of(&self, at: &Location) -> Result<Arc<dyn ObjectStore>, StorageError> {
        match at.tier {
            Tier::Cold => self
                .cold
                .clone()
                .map(|c| c as Arc<dyn ObjectStore>)
                .ok_or_else(|| StorageError::NoStore {
                    location: at.clone(),
                }),
            _ => Ok(self.local.clone()),
        }
    }

    /// Brings the cold segments' sidecars named by `keys` (object keys, as [`index_key`] and
    /// [`bloom_key`] make them) into the local cache where they are not there yet, so pruning a
    /// cold segment costs no GET after its first. A sidecar that cannot be fetched is left out:
    /// its segment is scanned instead.
    pub async fn fetch_sidecars(&self, keys: Vec<String>) {
        let Some(cold) = &self.cold else {
            return;
        };
        let mut missing = Vec::new();
        for key in keys {
            let local = self.sidecar_cache().join(&key);
            if let Ok(file) = std::fs::File::options().append(true).open(&local) {
                // Used now: the last to go when the cache is trimmed.
                let _ = file.set_modified(std::time::SystemTime::now());
            } else {
                missing.push((key, local));
            }
        }
        let fetched = !missing.is_empty();
        // A few at a time: many cold segments new to this cache need not wait one by one.
        let fetches =
            futures::stream::iter(missing).for_each_concurrent(8, |(key, local)| async move {
                let path = ObjectPath::from(key.as_str());
                let fetched = match cold.get(&path).await {
                    Ok(got) => got.bytes().await,
                    Err(e) => Err(e),
                };
                match fetched {
                    Ok(bytes) => {
                        if let Err(e) = keep_file(&local, &bytes) {
                            tracing::warn!(key, error = %e, "could not cache a cold sidecar");
                        }
                    }
                    Err(e) => tracing::warn!(key, error = %e, "could not fetch a cold sidecar"),
                }
            });
        fetches.await;
        if fetched {
            self.trim_sidecars();
        }
    }

    fn sidecar_base(&self, at: &Location) -> Result<PathBuf, StorageError> {
        match at.tier {
            Tier::Cold => Ok(self.sidecar_cache().join(&at.key)),
            _ => self.local_copy(at),
        }
    }

    fn local_copy(&self, at: &Location) -> Result<PathBuf, StorageError> {
        if at.tier.is_local() {
            Ok(self.root.join(&at.key))
        } else {
            Err(StorageError::NoStore {
                location: at.clone(),
            })
        }
    }
}

/// The object key of the sidecar index of the data file `key`.
pub fn index_key(key: &str) -> String {
    index_path(Path::new(key)).to_string_lossy().into_owned()
}

/// The object key of the bloom file of the data file `key`.
pub fn bloom_key(key: &str) -> String {
    bloom_path(Path::new(key)).to_string_lossy().into_owned()
}

/// Writes `bytes` as the file `path` (making its directory), whole or not at all.
pub fn keep_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let ext = path
        .extension()
        .map(|e| format!("{}.part", e.to_string_lossy()))
        .unwrap_or_else(|| "part".into());
    super::replace_file(path, &ext, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::object_store::memory::InMemory;

    #[tokio::test]
    async fn cold_sidecars_are_fetched_once_and_the_least_recently_used_go_past_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(InMemory::new());
        for i in 0..4 {
            let key = ObjectPath::from(format!("segments/s{i}.idx"));
            store
                .put(&key, vec![i as u8; 100].into())
                .await
                .expect("put");
        }
        let files = SegmentFiles::local(dir.path())
            .expect("files")
            .with_cold(store, 250);
        let keys = |ids: &[usize]| ids.iter().map(|i| format!("segments/s{i}.idx")).collect();
        files.fetch_sidecars(keys(&[0, 1])).await;
        assert_eq!(files.cold().map(|c| c.count().gets), Some(2));
        files.fetch_sidecars(keys(&[0, 1])).await;
        assert_eq!(
            files.cold().map(|c| c.count().gets),
            Some(2),
            "fetched again"
        );
        // Using 0 makes 1 the least recently used; fetching 2 pushes it out.
        std::thread::sleep(std::time::Duration::from_millis(20));
        files.fetch_sidecars(keys(&[0])).await;
        std::thread::sleep(std::time::Duration::from_millis(20));
        files.fetch_sidecars(keys(&[2])).await;
        let cached = |i: usize| {
            files
                .sidecar_cache()
                .join(format!("segments/s{i}.idx"))
                .exists()
        };
        assert_eq!((cached(0), cached(1), cached(2)), (true, false, true));
        assert!(files.trim_sidecars() <= 250);
    }
}
