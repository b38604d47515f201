//! The sweep after a start: files and objects no catalog entry names are what a crash left between
//! writing a target and committing it, or between committing and deleting a source. Their rows
//! are elsewhere (in the WAL, or in the segment that replaced them), so they are deleted.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::ObjectStoreExt;
use futures::TryStreamExt;

use super::{Store, STAGING_DIR};
use crate::segment::SEGMENTS_DIR;
use crate::storage::{bloom_key, index_key};

impl Store {
    /// Deletes local segment files (and cached sidecars, rollup partials, and staged compaction
    /// output) that no catalog entry names.
    pub fn remove_orphan_segments(&self) -> std::io::Result<usize> {
        let mut known: HashSet<PathBuf> = HashSet::new();
        for s in self.catalog.segments().iter() {
            let at = &s.location;
            if let Ok(p) = self.files.data(at) {
                known.insert(p);
            }
            if s.index.is_some() {
                known.extend(self.files.index(at).ok());
            }
            if s.index.as_ref().is_some_and(|i| !i.blooms.is_empty()) {
                known.extend(self.files.bloom(at).ok());
            }
        }
        let mut removed = remove_unknown(&self.data_dir.join(SEGMENTS_DIR), &known)?;
        removed += remove_unknown(&self.files.sidecar_cache(), &known)?;
        let live: HashSet<String> = self
            .catalog
            .segments()
            .iter()
            .map(|s| s.location.key.clone())
            .collect();
        removed += self.rollups.sweep(&live);
        let staging = self.data_dir.join(STAGING_DIR);
        if staging.exists() {
            removed += remove_unknown(&staging, &HashSet::new())?;
            std::fs::remove_dir_all(&staging)?;
        }
        Ok(removed)
    }

    /// Deletes objects under `segments/` in the cold store that no cold segment names (an
    /// upload whose commit never happened, a source whose delete never ran). Run once per
    /// process, by its first maintenance pass, before it uploads anything: a pass's own
    /// uploads are not in the catalog until their commit. One server per bucket prefix.
    pub async fn remove_orphan_objects(&self) -> Result<usize, datafusion::object_store::Error> {
        let Some(cold) = self.files.cold() else {
            return Ok(0);
        };
        let mut known: HashSet<String> = HashSet::new();
        for s in self.catalog.segments().iter() {
            if !s.location.tier.is_local() {
                let key = &s.location.key;
                known.insert(key.clone());
                known.insert(index_key(key));
                known.insert(bloom_key(key));
            }
        }
        let prefix = ObjectPath::from(SEGMENTS_DIR);
        let listed: Vec<_> = cold.inner().list(Some(&prefix)).try_collect().await?;
        let mut removed = 0;
        for object in listed {
            if !known.contains(object.location.as_ref()) {
                cold.inner().delete(&object.location).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Removes every file under `root` that is not in `known`; how many.
fn remove_unknown(root: &Path, known: &HashSet<PathBuf>) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in walkdir::WalkDir::new(root).into_iter().flatten() {
        if entry.file_type().is_file() && !known.contains(entry.path()) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
