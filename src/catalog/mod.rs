//! The catalog: one row per segment (tenant, time range, rows, bytes, path) and the WAL watermark.
//!
//! The embedded implementation keeps it in `catalog.json` beside the segments, replaced atomically
//! (write a temporary file, fsync, rename, fsync the directory). Changes are made durable with
//! [`FileCatalog::persist`] and made visible to queries with [`FileCatalog::install`], so that the
//! flush can switch segments in and hot rows out in one step.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::model::Micros;

/// Errors of the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog file {path} is unreadable: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// One immutable Parquet segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub id: u64,
    pub tenant: String,
    pub min_ts: Micros,
    pub max_ts: Micros,
    pub rows: u64,
    pub bytes: u64,
    /// Path relative to the data directory.
    pub path: String,
    pub created_at: Micros,
    /// Its sidecar index, if it has one (segments flushed with indexing off, or before it
    /// existed, have none and are scanned).
    #[serde(default)]
    pub index: Option<IndexMeta>,
}

/// What a segment's sidecar index holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Layout version (`crate::index::VERSION`).
    pub version: u32,
    /// Fields indexed.
    pub fields: Vec<String>,
    pub bytes: u64,
    /// Fields with a segment-level bloom in the segment's `.bloom` file (none before blooms).
    #[serde(default)]
    pub blooms: Vec<String>,
}

/// What the catalog file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CatalogState {
    pub version: u32,
    pub next_segment_id: u64,
    /// Every WAL record with sequence number ≤ this is in a segment.
    pub flushed_through: u64,
    pub segments: Arc<Vec<SegmentMeta>>,
}

/// The embedded, file-backed catalog.
#[derive(Debug)]
pub struct FileCatalog {
    path: PathBuf,
    state: RwLock<CatalogState>,
}

const FILE_NAME: &str = "catalog.json";

impl FileCatalog {
    /// Opens (or creates empty) the catalog in `dir`.
    pub fn open(dir: &Path) -> Result<FileCatalog, CatalogError> {
        let path = dir.join(FILE_NAME);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| CatalogError::Decode {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CatalogState {
                version: 1,
                next_segment_id: 1,
                ..CatalogState::default()
            },
            Err(source) => return Err(CatalogError::Io { path, source }),
        };
        Ok(FileCatalog {
            path,
            state: RwLock::new(state),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CatalogState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Every segment, as of now.
    pub fn segments(&self) -> Arc<Vec<SegmentMeta>> {
        self.read().segments.clone()
    }

    /// The WAL watermark.
    pub fn flushed_through(&self) -> u64 {
        self.read().flushed_through
    }

    /// The state a flush would produce: `added` segments and a new watermark.
    pub fn with_flush(&self, added: Vec<SegmentMeta>, flushed_through: u64) -> CatalogState {
        let cur = self.read();
        let mut segments = (*cur.segments).clone();
        let next = added
            .iter()
            .map(|s| s.id + 1)
            .max()
            .unwrap_or(cur.next_segment_id);
        segments.extend(added);
        CatalogState {
            version: cur.version,
            next_segment_id: next.max(cur.next_segment_id),
            flushed_through: flushed_through.max(cur.flushed_through),
            segments: Arc::new(segments),
        }
    }

    /// First id a new segment may take.
    pub fn next_segment_id(&self) -> u64 {
        self.read().next_segment_id
    }

    /// Makes `state` durable on disk (does not change what queries see).
    pub fn persist(&self, state: &CatalogState) -> Result<(), CatalogError> {
        let io = |source| CatalogError::Io {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(state).map_err(|source| CatalogError::Decode {
            path: self.path.clone(),
            source,
        })?;
        crate::wal::replace_file(&self.path, "json.tmp", &bytes).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            crate::wal::sync_dir(dir).map_err(io)?;
        }
        Ok(())
    }

    /// Makes `state` what queries see.
    pub fn install(&self, state: CatalogState) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = state;
    }
}
