//! The catalog: one row per segment (tenant, time range, rows, bytes, path) and the WAL watermark,
//! changed only by versioned, atomic commits.
//!
//! A [`Change`] is a flush (`Flush { added, wal_through }`) or a swap of segments
//! (`Replace { removed, added }`: compaction and tier moves write the target, commit, then delete
//! the source). [`Catalog::commit`] makes it durable as the next commit; [`Catalog::install`]
//! makes the result what queries see, so that a flush can switch segments in and hot rows out in
//! one step. [`FileCatalog`] (the embedded default, [`file`]) is the first implementation.

pub mod file;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::Micros;
pub use crate::storage::{Location, Tier};

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
    #[error("catalog log {path} is broken at byte {offset}: {why}")]
    Log {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    #[error("catalog change conflicts with commit {commit}: {why}")]
    Conflict { commit: u64, why: String },
    #[error("the catalog log failed to sync; restart the server to reopen it")]
    Poisoned,
}

pub use file::FileCatalog;

/// One immutable Parquet segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub id: u64,
    pub tenant: String,
    pub min_ts: Micros,
    pub max_ts: Micros,
    pub rows: u64,
    pub bytes: u64,
    /// Its tier and key: where its files are.
    #[serde(flatten)]
    pub location: Location,
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

/// The catalog as of one commit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CatalogState {
    /// Layout version of the stored form.
    pub version: u32,
    /// How many commits made this state (0: none yet; catalogs older than commits load as 0).
    #[serde(default)]
    pub commit: u64,
    pub next_segment_id: u64,
    /// Every WAL record with sequence number ≤ this is in a segment.
    pub flushed_through: u64,
    /// Shared with every state and snapshot that holds them: a commit copies pointers, not
    /// segment entries.
    pub segments: Arc<Vec<Arc<SegmentMeta>>>,
}

/// One atomic change of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// New segments from the hot buffer, and the WAL watermark they reach.
    Flush {
        added: Vec<SegmentMeta>,
        wal_through: u64,
    },
    /// Segments that take the place of others (compaction, a move between tiers).
    Replace {
        removed: Vec<u64>,
        added: Vec<SegmentMeta>,
    },
}

impl CatalogState {
    /// An empty catalog.
    pub fn empty() -> CatalogState {
        CatalogState {
            version: 1,
            next_segment_id: 1,
            ..CatalogState::default()
        }
    }

    /// The state `change` makes of this one, as the next commit. A change naming a segment
    /// that is not here, or adding an id already used, conflicts and changes nothing.
    pub fn apply(&self, change: &Change) -> Result<CatalogState, CatalogError> {
        let conflict = |why: String| CatalogError::Conflict {
            commit: self.commit,
            why,
        };
        let (removed, added, wal_through) = match change {
            Change::Flush { added, wal_through } => (&[][..], added, *wal_through),
            Change::Replace { removed, added } => (&removed[..], added, 0),
        };
        if let Some(s) = added.iter().find(|s| s.id < self.next_segment_id) {
            return Err(conflict(format!("segment id {} is already used", s.id)));
        }
        let mut ids = HashSet::with_capacity(added.len());
        if let Some(s) = added.iter().find(|s| !ids.insert(s.id)) {
            return Err(conflict(format!("segment id {} is added twice", s.id)));
        }
        let removed: HashSet<u64> = removed.iter().copied().collect();
        let mut segments = Vec::with_capacity(self.segments.len() + added.len());
        segments.extend(
            self.segments
                .iter()
                .filter(|s| !removed.contains(&s.id))
                .cloned(),
        );
        if self.segments.len() - segments.len() != removed.len() {
            let missing = removed
                .iter()
                .filter(|id| !self.segments.iter().any(|s| s.id == **id))
                .map(|id| id.to_string())
                .collect::<Vec<_>>();
            return Err(conflict(format!("no segment {}", missing.join(", "))));
        }
        segments.extend(added.iter().cloned().map(Arc::new));
        let next = added.iter().map(|s| s.id + 1).max().unwrap_or(0);
        Ok(CatalogState {
            version: self.version,
            commit: self.commit + 1,
            next_segment_id: next.max(self.next_segment_id),
            flushed_through: wal_through.max(self.flushed_through),
            segments: Arc::new(segments),
        })
    }
}

/// Where the segments are listed: commits are durable and atomic, and several writers (a flush,
/// a compaction) may commit; each change applies to the latest commit, never to a stale view.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// What queries see now.
    fn current(&self) -> Arc<CatalogState>;

    /// Makes `change` durable as the next commit and returns the state it makes, which queries
    /// do not see until it is installed.
    fn commit(&self, change: Change) -> Result<Arc<CatalogState>, CatalogError>;

    /// Makes a committed state what queries see (one older than the visible one is ignored).
    /// The store calls it under its view lock, with the hot buffer's retirement
    /// (`Store::install`); nothing else should.
    fn install(&self, state: Arc<CatalogState>);

    /// First id a new segment may take (after the latest commit, visible or not).
    fn next_segment_id(&self) -> u64;

    /// Every segment queries see now.
    fn segments(&self) -> Arc<Vec<Arc<SegmentMeta>>> {
        self.current().segments.clone()
    }

    /// The WAL watermark queries see now.
    fn flushed_through(&self) -> u64 {
        self.current().flushed_through
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn seg(id: u64) -> SegmentMeta {
        SegmentMeta {
            id,
            tenant: "default".into(),
            min_ts: 0,
            max_ts: 1,
            rows: 1,
            bytes: 1,
            location: Location::hot(format!("segments/{id}.parquet")),
            created_at: 0,
            index: None,
        }
    }

    fn ids(state: &CatalogState) -> Vec<u64> {
        state.segments.iter().map(|s| s.id).collect()
    }

    #[test]
    fn flush_adds_and_advances_the_watermark_and_ids() {
        let s = CatalogState::empty();
        let f = Change::Flush {
            added: vec![seg(1), seg(2)],
            wal_through: 10,
        };
        let s = s.apply(&f).expect("flush");
        assert_eq!((s.commit, s.next_segment_id, s.flushed_through), (1, 3, 10));
        assert_eq!(ids(&s), [1, 2]);
        // A watermark never goes back.
        let s = s
            .apply(&Change::Flush {
                added: vec![seg(3)],
                wal_through: 4,
            })
            .expect("flush");
        assert_eq!((s.commit, s.flushed_through), (2, 10));
    }

    #[test]
    fn replace_swaps_segments_or_conflicts_without_change() {
        let s = CatalogState::empty()
            .apply(&Change::Flush {
                added: vec![seg(1), seg(2), seg(3)],
                wal_through: 1,
            })
            .expect("flush");
        let r = Change::Replace {
            removed: vec![1, 2],
            added: vec![seg(4)],
        };
        let t = s.apply(&r).expect("replace");
        assert_eq!(ids(&t), [3, 4]);
        assert_eq!(t.flushed_through, 1);
        // The same Replace again names segments that are gone.
        let again = t.apply(&Change::Replace {
            removed: vec![1, 2],
            added: vec![seg(5)],
        });
        assert!(
            matches!(again, Err(CatalogError::Conflict { commit: 2, .. })),
            "{again:?}"
        );
        let twice = t.apply(&Change::Flush {
            added: vec![seg(7), seg(7)],
            wal_through: 2,
        });
        assert!(
            matches!(twice, Err(CatalogError::Conflict { .. })),
            "{twice:?}"
        );
        // An id that was handed out before.
        let reused = t.apply(&Change::Flush {
            added: vec![seg(2)],
            wal_through: 2,
        });
        assert!(
            matches!(reused, Err(CatalogError::Conflict { .. })),
            "{reused:?}"
        );
    }
}
