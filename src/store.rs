//! The live view of the data: cataloged segments plus the hot buffer, switched atomically.
//!
//! A query takes a [`Snapshot`] under the view lock's read side; a flush installs its new segments
//! and retires the matching hot rows under the write side. So every query sees each row exactly
//! once, before, during and after a flush.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use datafusion::arrow::record_batch::RecordBatch;
use timberline_udfs::pg_compat::Tenant;

use crate::buffer::HotBuffer;
use crate::catalog::{Catalog, CatalogError, Change, SegmentMeta};
use crate::index::{BloomCache, IndexCache};
use crate::segment::{write_segments, SegmentError, SEGMENTS_DIR};
use crate::storage::SegmentFiles;
use crate::wal::{Wal, WalError};

/// Errors of a flush.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("flush task failed: {0}")]
    Join(String),
}

/// What a query reads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub segments: Arc<Vec<Arc<SegmentMeta>>>,
    pub hot: Vec<RecordBatch>,
}

impl Snapshot {
    /// Only what `tenant` may see. Segments hold one tenant each; hot batches are filtered row
    /// by row.
    pub fn for_tenant(
        self,
        tenant: &Tenant,
    ) -> Result<Snapshot, datafusion::arrow::error::ArrowError> {
        use datafusion::arrow::array::StringArray;
        use datafusion::arrow::compute::{filter_record_batch, kernels::cmp::eq};
        let Tenant::One(tenant) = tenant else {
            return Ok(self);
        };
        let segments = self
            .segments
            .iter()
            .filter(|s| &s.tenant == tenant)
            .cloned()
            .collect();
        let wanted = StringArray::new_scalar(tenant);
        let mut hot = Vec::with_capacity(self.hot.len());
        for batch in self.hot {
            let Some(col) = batch.column_by_name("tenant") else {
                continue;
            };
            let keep = eq(col, &wanted)?;
            if keep.true_count() == batch.num_rows() {
                hot.push(batch);
            } else if keep.true_count() > 0 {
                hot.push(filter_record_batch(&batch, &keep)?);
            }
        }
        Ok(Snapshot {
            segments: Arc::new(segments),
            hot,
        })
    }
}

/// Segments, hot buffer and the lock that keeps them consistent for readers.
#[derive(Debug)]
pub struct Store {
    pub data_dir: PathBuf,
    /// Where segment files are found and read.
    pub files: SegmentFiles,
    pub buffer: Arc<HotBuffer>,
    pub catalog: Arc<dyn Catalog>,
    /// Write sidecar indexes at flush with postings over blocks of this many rows (`None`: off).
    pub index: Option<u32>,
    /// Opened sidecar indexes.
    pub indexes: IndexCache,
    /// Opened segment blooms.
    pub blooms: BloomCache,
    view: RwLock<()>,
    /// Serialises flushes.
    flushing: tokio::sync::Mutex<()>,
}

/// What one flush did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FlushReport {
    /// Each segment written: its tenant, rows and bytes.
    pub written: Vec<Written>,
    pub segments: usize,
    pub rows: u64,
    pub bytes: u64,
    pub flushed_through: u64,
    pub wal_files_removed: usize,
}

/// One segment a flush wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub tenant: String,
    pub rows: u64,
    pub bytes: u64,
}

impl Store {
    /// `files`' root is the data directory segments are written to and cleaned in.
    pub fn new(
        files: SegmentFiles,
        buffer: Arc<HotBuffer>,
        catalog: Arc<dyn Catalog>,
        index: Option<u32>,
    ) -> Store {
        Store {
            data_dir: files.root().to_path_buf(),
            files,
            index,
            indexes: IndexCache::default(),
            blooms: BloomCache::default(),
            buffer,
            catalog,
            view: RwLock::new(()),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// A consistent view for one query.
    pub fn snapshot(&self) -> Snapshot {
        let _g = self.view.read().unwrap_or_else(|p| p.into_inner());
        Snapshot {
            segments: self.catalog.segments(),
            hot: self.buffer.batches(),
        }
    }

    /// Moves everything in the hot buffer into segments, then truncates the WAL.
    pub async fn flush(self: &Arc<Self>, wal: &Wal) -> Result<FlushReport, FlushError> {
        let _one_at_a_time = self.flushing.lock().await;
        // Later appends go to a fresh WAL file, so the current ones can be deleted after this flush.
        wal.rotate().await?;
        let Some((through, batches)) = self.buffer.freeze() else {
            return Ok(FlushReport::default());
        };
        let store = self.clone();
        let index = self.index;
        let first_id = self.catalog.next_segment_id();
        let segments = tokio::task::spawn_blocking(move || {
            write_segments(&store.data_dir, &batches, first_id, index)
        })
        .await
        .map_err(|e| FlushError::Join(e.to_string()))??;
        let mut report = FlushReport {
            written: segments
                .iter()
                .map(|s| Written {
                    tenant: s.tenant.clone(),
                    rows: s.rows,
                    bytes: s.bytes,
                })
                .collect(),
            segments: segments.len(),
            rows: segments.iter().map(|s| s.rows).sum(),
            bytes: segments.iter().map(|s| s.bytes).sum(),
            flushed_through: through,
            wal_files_removed: 0,
        };
        let catalog = self.catalog.clone();
        let change = Change::Flush {
            added: segments,
            wal_through: through,
        };
        let state = tokio::task::spawn_blocking(move || catalog.commit(change))
            .await
            .map_err(|e| FlushError::Join(e.to_string()))??;
        {
            let _g = self.view.write().unwrap_or_else(|p| p.into_inner());
            self.catalog.install(state);
            self.buffer.retire_through(through);
        }
        report.wal_files_removed = wal.remove_through(through)?;
        tracing::info!(
            segments = report.segments,
            rows = report.rows,
            bytes = report.bytes,
            through,
            "flushed hot buffer"
        );
        Ok(report)
    }

    /// Deletes segment and index files that no catalog entry names: leftovers of a crash between writing a
    /// segment and cataloging it (their rows are still in the WAL and will be flushed again).
    pub fn remove_orphan_segments(&self) -> std::io::Result<usize> {
        let known: std::collections::HashSet<PathBuf> = self
            .catalog
            .segments()
            .iter()
            .flat_map(|s| {
                let parquet = self.files.data(&s.path);
                let index = s.index.as_ref().map(|_| self.files.index(&s.path));
                let blooms = s
                    .index
                    .as_ref()
                    .filter(|i| !i.blooms.is_empty())
                    .map(|_| self.files.bloom(&s.path));
                std::iter::once(parquet).chain(index).chain(blooms)
            })
            .collect();
        let mut removed = 0;
        let mut stack = vec![self.data_dir.join(SEGMENTS_DIR)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if !known.contains(&path) {
                    std::fs::remove_file(&path)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
