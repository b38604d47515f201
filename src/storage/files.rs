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

use super::layout::{bloom_path, index_path};
use super::{Location, StorageError, Tier};

/// Segment files: the local tiers under one root directory, and the cold tier's object store
/// when one is configured.
#[derive(Debug, Clone)]
pub struct SegmentFiles {
    root: PathBuf,
    local: Arc<dyn ObjectStore>,
    cold: Option<Arc<dyn ObjectStore>>,
}

impl SegmentFiles {
    /// Segment files on local disk under `root` (the data directory), with no cold tier.
    pub fn local(root: &Path) -> Result<SegmentFiles, datafusion::object_store::Error> {
        Ok(SegmentFiles {
            root: root.to_path_buf(),
            local: Arc::new(LocalFileSystem::new_with_prefix(root)?),
            cold: None,
        })
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
            out.push((Self::url(Tier::Cold), cold.clone()));
        }
        out
    }

    /// The directory local segment keys are relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local copy of the data file at `at`.
    pub fn data(&self, at: &Location) -> Result<PathBuf, StorageError> {
        self.local_copy(at)
    }

    /// The local copy of the sidecar index of the segment at `at`.
    pub fn index(&self, at: &Location) -> Result<PathBuf, StorageError> {
        Ok(index_path(&self.local_copy(at)?))
    }

    /// The local copy of the bloom file of the segment at `at`.
    pub fn bloom(&self, at: &Location) -> Result<PathBuf, StorageError> {
        Ok(bloom_path(&self.local_copy(at)?))
    }

    /// Whether the data file at `at` is there.
    pub fn has_data(&self, at: &Location) -> bool {
        self.data(at)
            .is_ok_and(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
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
