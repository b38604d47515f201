//! Opened sidecar files (indexes, blooms) by path, shared by every query. A file that failed to
//! open (other than by being missing, which a cold segment's sidecar may be until it is fetched)
//! is remembered as absent (and logged once) so queries do not retry it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::IndexError;

/// A sidecar file that can be opened and checked.
pub trait Sidecar: Sized {
    /// Reads and checks the file at `path`.
    fn open(path: &Path) -> Result<Self, IndexError>;
    /// What the query does without it, for the log line ("scanning that segment without it").
    const WITHOUT_IT: &'static str;
}

/// Sidecars read so far, failures included.
#[derive(Debug)]
pub struct SidecarCache<T> {
    open: Mutex<HashMap<PathBuf, Option<Arc<T>>>>,
}

impl<T> Default for SidecarCache<T> {
    fn default() -> Self {
        SidecarCache {
            open: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Sidecar> SidecarCache<T> {
    /// The sidecar at `path`, or `None` if it is missing or unreadable.
    pub fn get(&self, path: &Path) -> Option<Arc<T>> {
        if let Ok(open) = self.open.lock() {
            if let Some(hit) = open.get(path) {
                return hit.clone();
            }
        }
        let loaded = match T::open(path) {
            Ok(i) => Some(Arc::new(i)),
            Err(IndexError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return None;
            }
            Err(e) => {
                tracing::warn!("{e}; {}", T::WITHOUT_IT);
                None
            }
        };
        if let Ok(mut open) = self.open.lock() {
            open.insert(path.to_path_buf(), loaded.clone());
        }
        loaded
    }

    /// Drops what is known of `path` (its file was deleted or replaced).
    pub fn forget(&self, path: &Path) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(path);
        }
    }
}
