//! The live view of the data: cataloged segments plus the hot buffer, switched atomically;
//! and the changes made to it: flushes here, tier moves in [`tiers`] (what compaction merges:
//! [`compaction`]), policies in [`policy`], the sweep of files a crash left behind in [`sweep`].
//!
//! A query takes a [`Snapshot`] under the view lock's read side; every catalog commit is
//! installed, and the hot rows its segments hold retired, under the write side
//! ([`Store::install`]). So every query sees each row exactly once, before, during and after a
//! flush or any later change.

mod backfill;
pub mod compaction;
pub mod policy;
pub mod rollups;
mod sweep;
pub mod tiers;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use datafusion::arrow::record_batch::RecordBatch;
use timberline_udfs::pg_compat::Tenant;

use crate::buffer::HotBuffer;
use crate::catalog::{Catalog, CatalogError, Change, SegmentMeta};
use crate::index::{BloomCache, IndexCache};
use crate::model::now_micros;
use crate::segment::{write_segments_keeping, Cut, SegmentError};
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
    /// Beside each hot batch, the tenant all its rows share, if they do.
    pub hot_tenants: Vec<Option<Arc<str>>>,
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
        let mut hot_tenants = Vec::with_capacity(self.hot.len());
        let tenants = self.hot_tenants.into_iter().chain(std::iter::repeat(None));
        for (batch, one) in self.hot.into_iter().zip(tenants) {
            match one {
                Some(t) if *t == **tenant => {
                    hot.push(batch);
                    hot_tenants.push(Some(t));
                    continue;
                }
                Some(_) => continue,
                None => {}
            }
            let Some(col) = batch.column_by_name("tenant") else {
                continue;
            };
            let keep = eq(col, &wanted)?;
            if keep.true_count() == batch.num_rows() {
                hot.push(batch);
            } else if keep.true_count() > 0 {
                hot.push(filter_record_batch(&batch, &keep)?);
            } else {
                continue;
            }
            hot_tenants.push(Some(Arc::from(tenant.as_str())));
        }
        Ok(Snapshot {
            segments: Arc::new(segments),
            hot,
            hot_tenants,
        })
    }
}

/// A view that knows where it stands in the WAL: everything published up to `through` is in
/// it (in a segment, or hot with its sequence number) and nothing after; `flushed` is the
/// highest sequence number in a segment. A live tail answers from such a view, then
/// continues with what is published after `through`.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub segments: Arc<Vec<Arc<SegmentMeta>>>,
    pub hot: Vec<crate::buffer::HotBatch>,
    pub through: u64,
    pub flushed: u64,
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
    /// Largest compacted segment, in bytes of the segments merged into it.
    pub compact_bytes: u64,
    /// The rollup views and their partials.
    pub rollups: rollups::Rollups,
    view: RwLock<()>,
    /// Serialises flushes, and the hand-out of segment ids to flushes and tier changes.
    flushing: tokio::sync::Mutex<()>,
    /// Serialises maintenance passes.
    maintaining: tokio::sync::Mutex<()>,
    /// Segments replaced or expired whose files wait to be deleted until no query holds them.
    retired: Mutex<Vec<Arc<SegmentMeta>>>,
    /// Whether this process has swept the object store of orphans yet.
    objects_swept: std::sync::atomic::AtomicBool,
}

/// Directory under the data directory where compaction writes a segment before it is renamed
/// into place.
pub const STAGING_DIR: &str = "staging";

/// Default largest compacted segment (see [`Store::compact_bytes`]).
pub const COMPACT_BYTES: u64 = 256 << 20;

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
            rollups: rollups::Rollups::new(files.root()),
            files,
            index,
            indexes: IndexCache::default(),
            blooms: BloomCache::default(),
            buffer,
            catalog,
            compact_bytes: COMPACT_BYTES,
            view: RwLock::new(()),
            flushing: tokio::sync::Mutex::new(()),
            maintaining: tokio::sync::Mutex::new(()),
            retired: Mutex::new(Vec::new()),
            objects_swept: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A consistent view for one query.
    pub fn snapshot(&self) -> Snapshot {
        let _g = self.view.read().unwrap_or_else(|p| p.into_inner());
        let (hot, hot_tenants) = self.buffer.batches_and_tenants();
        Snapshot {
            segments: self.catalog.segments(),
            hot,
            hot_tenants,
        }
    }

    /// A consistent view with the hot batches' sequence numbers (see [`Pinned`]).
    pub fn pinned(&self) -> Pinned {
        let _g = self.view.read().unwrap_or_else(|p| p.into_inner());
        let hot = self.buffer.hot_batches();
        let state = self.catalog.current();
        let flushed = state.flushed_through;
        Pinned {
            through: hot.last().map_or(flushed, |b| b.seq.max(flushed)),
            segments: state.segments.clone(),
            hot,
            flushed,
        }
    }

    /// Moves everything in the hot buffer into segments, then truncates the WAL.
    pub async fn flush(self: &Arc<Self>, wal: &Wal) -> Result<FlushReport, FlushError> {
        let started = std::time::Instant::now();
        let flushed = self.flush_counted(wal).await;
        let outcome = match &flushed {
            Ok(r) if r.rows == 0 => return flushed,
            Ok(_) => "ok",
            Err(_) => "error",
        };
        let m = crate::metrics::metrics();
        m.flushes
            .get_or_create(&crate::metrics::Outcome {
                outcome: outcome.into(),
            })
            .inc();
        m.flush_seconds.observe(started.elapsed().as_secs_f64());
        flushed
    }

    async fn flush_counted(self: &Arc<Self>, wal: &Wal) -> Result<FlushReport, FlushError> {
        let _one_at_a_time = self.flushing.lock().await;
        // Later appends go to a fresh WAL file, so the current ones can be deleted after this flush.
        wal.rotate().await?;
        let Some((through, batches)) = self.buffer.freeze() else {
            return Ok(FlushReport::default());
        };
        let store = self.clone();
        let index = self.index;
        let first_id = self.catalog.next_segment_id();
        let written = tokio::task::spawn_blocking(move || {
            let cut = Cut::Flush { now: now_micros() };
            write_segments_keeping(&store.data_dir, &batches, first_id, index, cut)
        })
        .await
        .map_err(|e| FlushError::Join(e.to_string()))??;
        let (segments, rows): (Vec<SegmentMeta>, Vec<RecordBatch>) = written.into_iter().unzip();
        let keys: Vec<String> = segments.iter().map(|s| s.location.key.clone()).collect();
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
        self.install(state);
        self.derive_rollups(keys.into_iter().zip(rows).collect());
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

    /// Computes the views' partials of just-flushed segments from their rows, in the
    /// background: the flush (and the ingest waiting on buffer room) does not wait for them, and
    /// until they are written queries aggregate those segments from their rows.
    fn derive_rollups(self: &Arc<Self>, parts: Vec<(String, RecordBatch)>) {
        if parts.is_empty() || self.rollups.plans().is_empty() {
            return;
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            for (key, rows) in parts {
                let live = |k: &str| store.catalog.segments().iter().any(|s| s.location.key == k);
                if !live(&key) {
                    continue;
                }
                store.rollups.write_all(&key, &rows);
                // Compacted away meanwhile: its partials would be orphans.
                if !live(&key) {
                    let _ = store.rollups.remove_segment(&key);
                }
            }
        });
    }

    /// Makes a committed catalog state what queries see, and retires from the hot buffer every
    /// row its segments now hold, in one step under the view lock: whichever commit installs
    /// first — a flush, or a later change built on it — no query sees a row twice or misses one.
    pub fn install(&self, state: Arc<crate::catalog::CatalogState>) {
        let _g = self.view.write().unwrap_or_else(|p| p.into_inner());
        self.catalog.install(state);
        self.buffer
            .retire_through(self.catalog.current().flushed_through);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{FileCatalog, Location};
    use crate::model::{records_to_batch, LogRecord};

    fn segment(id: u64, rows: u64) -> SegmentMeta {
        SegmentMeta {
            id,
            tenant: "default".into(),
            min_ts: 0,
            max_ts: 1,
            rows,
            bytes: 1,
            location: Location::hot(format!("segments/{id}.parquet")),
            created_at: 0,
            index: None,
        }
    }

    fn rows(snapshot: &Snapshot) -> u64 {
        let cold: u64 = snapshot.segments.iter().map(|s| s.rows).sum();
        let hot: usize = snapshot.hot.iter().map(|b| b.num_rows()).sum();
        cold + hot as u64
    }

    /// A change committed on top of a flush (compaction, a tier move) may be installed before
    /// the flush itself: it must retire the flushed rows from the buffer too, or queries would
    /// see them twice.
    #[test]
    fn installing_a_later_commit_first_never_shows_a_row_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog: Arc<dyn Catalog> = Arc::new(FileCatalog::open(dir.path()).expect("catalog"));
        let buffer = Arc::new(HotBuffer::new(1 << 30, 1 << 30));
        let files = SegmentFiles::local(dir.path()).expect("files");
        let store = Store::new(files, buffer.clone(), catalog.clone(), None);
        let record = LogRecord {
            ts: 0,
            ingest_ts: 0,
            tenant: "default".into(),
            service: "api".into(),
            host: "h".into(),
            level: "INFO".into(),
            msg: "m".into(),
            trace_id: None,
            attrs: "{}".into(),
            parse_failed: false,
            truncated: false,
        };
        let batch = records_to_batch(&[record.clone(), record]).expect("batch");
        buffer.push(1, batch);
        assert_eq!(rows(&store.snapshot()), 2);

        // The flush commits its segment; before it installs, a Replace is committed on top.
        let flushed = catalog
            .commit(Change::Flush {
                added: vec![segment(1, 2)],
                wal_through: 1,
            })
            .expect("flush");
        let replaced = catalog
            .commit(Change::Replace {
                removed: vec![1],
                added: vec![segment(2, 2)],
            })
            .expect("replace");
        store.install(replaced);
        let seen = store.snapshot();
        assert_eq!(rows(&seen), 2, "{seen:?}");
        assert_eq!(seen.segments.iter().map(|s| s.id).collect::<Vec<_>>(), [2]);
        // The flush's own install, now older than what is visible, changes nothing.
        store.install(flushed);
        let seen = store.snapshot();
        assert_eq!(rows(&seen), 2);
        assert_eq!(seen.segments.iter().map(|s| s.id).collect::<Vec<_>>(), [2]);
    }
}
