//! [`SegmentFiles`]: the one handle through which segment files are found and read. Data files
//! are read by DataFusion through an object store registered as [`SegmentFiles::url`], rooted at
//! the data directory, so a plan names a segment by its key (`segments/tenant=…/…parquet`),
//! never by where the server's disk is; sidecars (index, bloom) are opened by local path and
//! memory-mapped. Local disk is the embedded default; an object-store tier plugs in here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::ObjectStore;

use super::layout::{bloom_path, index_path};

/// Segment files under one root.
#[derive(Debug, Clone)]
pub struct SegmentFiles {
    root: PathBuf,
    store: Arc<dyn ObjectStore>,
}

impl SegmentFiles {
    /// Segment files on local disk under `root` (the data directory).
    pub fn local(root: &Path) -> Result<SegmentFiles, datafusion::object_store::Error> {
        Ok(SegmentFiles {
            root: root.to_path_buf(),
            store: Arc::new(LocalFileSystem::new_with_prefix(root)?),
        })
    }

    /// The URL plans read segments under.
    pub fn url() -> ObjectStoreUrl {
        ObjectStoreUrl::parse("timberline://segments/")
            .unwrap_or_else(|_| ObjectStoreUrl::local_filesystem())
    }

    /// The store behind [`SegmentFiles::url`].
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The directory segment keys are relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of the data file with `key`.
    pub fn data(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The local path of the sidecar index of the segment with `key`.
    pub fn index(&self, key: &str) -> PathBuf {
        index_path(&self.data(key))
    }

    /// The local path of the bloom file of the segment with `key`.
    pub fn bloom(&self, key: &str) -> PathBuf {
        bloom_path(&self.data(key))
    }

    /// Whether the data file with `key` is there.
    pub fn has_data(&self, key: &str) -> bool {
        std::fs::metadata(self.data(key)).is_ok_and(|m| m.is_file())
    }
}
