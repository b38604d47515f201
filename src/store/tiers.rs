//! The tier manager: one maintenance pass deletes what retention expired (and trims segments
//! spanning its edge), compacts closed tenant-hours into warm segments ([`super::compaction`]),
//! and moves old segments to the object store (cold).
//!
//! Every change follows invariant 5: the target is written whole and confirmed (a staged and
//! renamed file; an upload, sidecars first, whose size a HEAD confirms), then `Replace` is
//! committed in the catalog and installed, and only then are the sources retired. A retired
//! segment's files are deleted once no query holds it: a query's snapshot holds each segment it
//! reads by an `Arc`, so a strong count of one means no running query can still open it. A
//! crash between any two steps leaves files no catalog entry names, which the next start
//! sweeps ([`super::sweep`]): no row lost, none doubled.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;

use super::compaction::{self, Job};
use super::policy::Policies;
use super::{Store, STAGING_DIR};
use crate::catalog::{CatalogError, Change, Location, SegmentMeta, Tier};
use crate::model::Micros;
use crate::segment::{
    read_segment, read_segment_from, segment_rel_path, write_segments_keeping, Cut, SegmentError,
};
use crate::storage::{bloom_key, index_key, keep_file, put_new, StorageError};

const HOUR: i64 = 3_600_000_000;

/// What one maintenance pass did (the JSON `POST /v1/maintenance` answers).
#[derive(Debug, Default, Clone, Serialize)]
pub struct MaintenanceReport {
    /// Segments merged by compaction, the warm segments they became, their rows and bytes.
    pub compacted_segments: usize,
    pub compacted_into: usize,
    pub compacted_rows: u64,
    pub compacted_bytes_before: u64,
    pub compacted_bytes_after: u64,
    /// Segments moved to the object store, and the bytes uploaded (data and sidecars).
    pub moved_segments: usize,
    pub moved_bytes: u64,
    /// Segments retention deleted, their rows and bytes.
    pub deleted_segments: usize,
    pub deleted_rows: u64,
    pub deleted_bytes: u64,
    /// Segments spanning hours rewritten without their expired rows (counted in `deleted_rows`).
    pub trimmed_segments: usize,
    /// Replaced segments whose files were deleted in this pass, and those still read by a
    /// running query (deleted by a later pass).
    pub retired_removed: usize,
    pub retired_waiting: usize,
    /// Objects no catalog entry names, deleted by the first pass after a start.
    pub orphan_objects_removed: usize,
    /// Steps that failed (the rest went on); each is retried by the next pass.
    pub errors: Vec<String>,
    pub elapsed_ms: u64,
}

/// A step of maintenance that failed.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{key}: the object store holds {found} bytes, the segment has {want}")]
    UploadMismatch { key: String, found: u64, want: u64 },
    #[error("maintenance task failed: {0}")]
    Join(String),
}

/// Aborts the process at the named step when `TIMBERLINE_FAILPOINT` names it: the crash tests'
/// kill -9 at an exact point (an abort runs no cleanup, as a kill does not).
fn failpoint(step: &str) {
    if std::env::var("TIMBERLINE_FAILPOINT").is_ok_and(|v| v == step) {
        tracing::error!(step, "failpoint reached: aborting");
        std::process::abort();
    }
}

fn age(now: Micros, ts: Micros) -> std::time::Duration {
    std::time::Duration::from_micros(now.saturating_sub(ts).max(0) as u64)
}

impl Store {
    /// One maintenance pass under `policies` at time `now`. Only one runs at a time.
    pub async fn maintain(self: &Arc<Self>, policies: &Policies, now: Micros) -> MaintenanceReport {
        let _one_at_a_time = self.maintaining.lock().await;
        let started = Instant::now();
        let mut report = MaintenanceReport::default();
        if !self.objects_swept.load(Ordering::Relaxed) {
            // Objects a crash left are swept once, before this process uploads any.
            match self.remove_orphan_objects().await {
                Ok(n) => {
                    report.orphan_objects_removed = n;
                    self.objects_swept.store(true, Ordering::Relaxed);
                }
                Err(e) => report
                    .errors
                    .push(format!("sweeping the object store: {e}")),
            }
        }
        if let Err(e) = self.expire(policies, now, &mut report).await {
            report.errors.push(format!("retention: {e}"));
        }
        self.compact(policies, now, &mut report).await;
        self.move_cold(policies, now, &mut report).await;
        let (removed, waiting) = self.remove_retired().await;
        report.retired_removed = removed;
        report.retired_waiting = waiting;
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        let m = crate::metrics::metrics();
        let outcome = if report.errors.is_empty() {
            "ok"
        } else {
            "error"
        };
        m.maintenance_passes
            .get_or_create(&crate::metrics::Outcome {
                outcome: outcome.into(),
            })
            .inc();
        m.maintenance_seconds
            .observe(started.elapsed().as_secs_f64());
        for e in &report.errors {
            tracing::warn!(error = %e, "maintenance step failed; the next pass retries it");
        }
        report
    }

    /// Commits `Replace { removed, added }`, installs it, and retires the removed segments.
    async fn replace(
        &self,
        removed: &[Arc<SegmentMeta>],
        added: Vec<SegmentMeta>,
    ) -> Result<(), TierError> {
        let catalog = self.catalog.clone();
        let change = Change::Replace {
            removed: removed.iter().map(|s| s.id).collect(),
            added,
        };
        let state = tokio::task::spawn_blocking(move || catalog.commit(change))
            .await
            .map_err(|e| TierError::Join(e.to_string()))??;
        self.install(state);
        self.retired_lock().extend(removed.iter().cloned());
        Ok(())
    }

    /// Deletes the segments whose newest event is past their tenant's retention, and rewrites
    /// without its expired rows a segment spanning hours whose oldest row is past it by more
    /// than an hour or an eighth of the segment's span (whichever is longer): an expired row
    /// goes as soon as in a one-hour segment or soon after, a segment is rewritten at most
    /// about eight times, and no row still inside retention goes because it shares a segment
    /// with older ones.
    async fn expire(
        self: &Arc<Self>,
        policies: &Policies,
        now: Micros,
        report: &mut MaintenanceReport,
    ) -> Result<(), TierError> {
        let segments = self.catalog.segments();
        let retention = |s: &SegmentMeta| policies.of(&s.tenant).retention;
        let expired: Vec<Arc<SegmentMeta>> = segments
            .iter()
            .filter(|s| retention(s).is_some_and(|r| age(now, s.max_ts) > r))
            .cloned()
            .collect();
        if !expired.is_empty() {
            self.replace(&expired, Vec::new()).await?;
            failpoint("retention-committed");
            report.deleted_segments += expired.len();
            report.deleted_rows += expired.iter().map(|s| s.rows).sum::<u64>();
            report.deleted_bytes += expired.iter().map(|s| s.bytes).sum::<u64>();
        }
        for seg in segments.iter() {
            let Some(r) = retention(seg) else { continue };
            let span = seg.max_ts.saturating_sub(seg.min_ts);
            let slack = std::time::Duration::from_micros((span / 8).max(HOUR) as u64);
            if age(now, seg.max_ts) > r || age(now, seg.min_ts) <= r.saturating_add(slack) {
                continue;
            }
            let keep_from = now.saturating_sub(i64::try_from(r.as_micros()).unwrap_or(i64::MAX));
            let done = self
                .rewrite(std::slice::from_ref(seg), Some(keep_from))
                .await?;
            report.trimmed_segments += 1;
            report.deleted_rows += seg.rows.saturating_sub(done.rows);
        }
        Ok(())
    }

    /// Compacts the local segments whose newest event is older than their tenant's
    /// `compact_after`, as [`compaction::plan`] groups them.
    async fn compact(
        self: &Arc<Self>,
        policies: &Policies,
        now: Micros,
        report: &mut MaintenanceReport,
    ) {
        let segments = self.catalog.segments();
        for job in compaction::plan(&segments, policies, now, self.compact_bytes) {
            let (tenant, result) = match &job {
                Job::Relabel(one) => (one.tenant.as_str(), self.relabel_warm(one).await),
                Job::Merge(run) => (
                    run.first().map_or("", |s| s.tenant.as_str()),
                    self.merge(run, report).await,
                ),
            };
            if let Err(e) = result {
                report.errors.push(format!("compacting {tenant}: {e}"));
            }
        }
    }

    /// A lone hot segment of a closed hour is already what compaction would write: it becomes
    /// warm by a catalog change alone, its files untouched.
    async fn relabel_warm(&self, seg: &Arc<SegmentMeta>) -> Result<(), TierError> {
        let _ids = self.flushing.lock().await;
        let mut warm = (**seg).clone();
        warm.id = self.catalog.next_segment_id();
        warm.location.tier = Tier::Warm;
        self.replace(std::slice::from_ref(seg), vec![warm]).await
    }

    /// Merges `chunk` into as few segments as its rows make; counted as compaction.
    async fn merge(
        self: &Arc<Self>,
        chunk: &[Arc<SegmentMeta>],
        report: &mut MaintenanceReport,
    ) -> Result<(), TierError> {
        let done = self.rewrite(chunk, None).await?;
        failpoint("compact-committed");
        report.compacted_segments += chunk.len();
        report.compacted_into += done.segments;
        report.compacted_rows += done.rows;
        report.compacted_bytes_before += chunk.iter().map(|s| s.bytes).sum::<u64>();
        report.compacted_bytes_after += done.bytes;
        Ok(())
    }

    /// Every row of a segment: read from local disk, or fetched whole from the object store.
    pub(super) async fn read_rows(&self, seg: &SegmentMeta) -> Result<Vec<RecordBatch>, TierError> {
        if seg.location.tier.is_local() {
            let path = self.files.data(&seg.location)?;
            return tokio::task::spawn_blocking(move || read_segment(&path))
                .await
                .map_err(|e| TierError::Join(e.to_string()))?
                .map_err(TierError::from);
        }
        let Some(cold) = self.files.cold() else {
            return Err(StorageError::NoStore {
                location: seg.location.clone(),
            }
            .into());
        };
        let key = seg.location.key.clone();
        let object = |source| StorageError::Object {
            key: key.clone(),
            source,
        };
        let bytes = cold
            .inner()
            .get(&ObjectPath::from(key.as_str()))
            .await
            .map_err(object)?
            .bytes()
            .await
            .map_err(object)?;
        tokio::task::spawn_blocking(move || read_segment_from(bytes, Path::new(&key)))
            .await
            .map_err(|e| TierError::Join(e.to_string()))?
            .map_err(TierError::from)
    }

    /// Writes the rows of `sources` (only those at or after `keep_from`, when given) as new
    /// warm segments, cut as a flush cuts them, and puts them in the sources' place: staged,
    /// renamed into place, committed, then the sources retired.
    async fn rewrite(
        self: &Arc<Self>,
        sources: &[Arc<SegmentMeta>],
        keep_from: Option<Micros>,
    ) -> Result<Rewritten, TierError> {
        let staging = self.data_dir.join(STAGING_DIR);
        let mut batches = Vec::new();
        for s in sources {
            batches.extend(self.read_rows(s).await?);
        }
        let index = self.index;
        let stage = staging.clone();
        let staged = tokio::task::spawn_blocking(move || {
            if let Some(from) = keep_from {
                batches = batches
                    .iter()
                    .map(|b| rows_from(b, from))
                    .collect::<Result<_, _>>()?;
            }
            write_segments_keeping(&stage, &batches, 0, index, Cut::Merge)
        })
        .await
        .map_err(|e| TierError::Join(e.to_string()))??;
        failpoint("compact-staged");
        // Ids are handed out under the flush lock, so a flush and this commit never take the
        // same one; the staged files are renamed to their final keys, then committed.
        let _ids = self.flushing.lock().await;
        let first = self.catalog.next_segment_id();
        let mut added = Vec::with_capacity(staged.len());
        for (i, (mut seg, rows)) in staged.into_iter().enumerate() {
            let id = first + i as u64;
            let key = segment_rel_path(&seg.tenant, seg.min_ts);
            let has_bloom = seg.index.as_ref().is_some_and(|x| !x.blooms.is_empty());
            let has_index = seg.index.is_some();
            let (data_dir, staging) = (self.data_dir.clone(), staging.clone());
            let (from, to) = (seg.location.key.clone(), key.clone());
            tokio::task::spawn_blocking(move || {
                promote(&staging, &data_dir, &from, &to, has_index, has_bloom)
            })
            .await
            .map_err(|e| TierError::Join(e.to_string()))?
            .map_err(|source| StorageError::Io {
                path: self.data_dir.join(&key),
                source,
            })?;
            // The views' partials of the merged rows, under the key they will be found by.
            let rollups_of = (self.clone(), key.clone());
            tokio::task::spawn_blocking(move || {
                rollups_of.0.rollups.write_all(&rollups_of.1, &rows)
            })
            .await
            .map_err(|e| TierError::Join(e.to_string()))?;
            seg.id = id;
            seg.location = Location {
                tier: Tier::Warm,
                key,
            };
            added.push(seg);
        }
        failpoint("compact-renamed");
        let done = Rewritten {
            segments: added.len(),
            rows: added.iter().map(|s| s.rows).sum::<u64>(),
            bytes: added.iter().map(|s| s.bytes).sum::<u64>(),
        };
        self.replace(sources, added).await?;
        Ok(done)
    }

    /// Moves every local segment older than its tenant's `cold_after` to the object store.
    async fn move_cold(&self, policies: &Policies, now: Micros, report: &mut MaintenanceReport) {
        let Some(cold) = self.files.cold().cloned() else {
            return;
        };
        let due: Vec<Arc<SegmentMeta>> = self
            .catalog
            .segments()
            .iter()
            .filter(|s| s.location.tier.is_local())
            .filter(|s| {
                policies
                    .of(&s.tenant)
                    .cold_after
                    .is_some_and(|c| age(now, s.max_ts) > c)
            })
            .cloned()
            .collect();
        let moved_any = !due.is_empty();
        for seg in due {
            match self.move_one(cold.inner(), &seg).await {
                Ok(bytes) => {
                    report.moved_segments += 1;
                    report.moved_bytes += bytes;
                }
                Err(e) => {
                    report.errors.push(format!(
                        "moving segment {} to the object store: {e}",
                        seg.id
                    ));
                    // The store is likely down: the rest waits for the next pass.
                    break;
                }
            }
        }
        if moved_any {
            self.files.trim_sidecars();
        }
    }

    /// Uploads `seg` (sidecars first, then the data file, each confirmed by size), keeps its
    /// sidecars in the local cache, commits it as cold; the bytes uploaded.
    async fn move_one(
        &self,
        store: &Arc<dyn ObjectStore>,
        seg: &Arc<SegmentMeta>,
    ) -> Result<u64, TierError> {
        let data = self.files.data(&seg.location)?;
        let key = seg.location.key.clone();
        let mut uploads = Vec::new();
        if seg.index.is_some() {
            uploads.push((index_key(&key), self.files.index(&seg.location)?));
        }
        if seg.index.as_ref().is_some_and(|i| !i.blooms.is_empty()) {
            uploads.push((bloom_key(&key), self.files.bloom(&seg.location)?));
        }
        uploads.push((key.clone(), data));
        let mut total = 0;
        for (object, path) in &uploads {
            let bytes = read_file(path).await?;
            total += bytes.len() as u64;
            upload_confirmed(store.as_ref(), object, bytes.clone()).await?;
            if object != &key {
                // The sidecar stays on this disk, where pruning reads it without a GET.
                let cached = self.files.sidecar_cache().join(object);
                if let Err(e) = keep_file(&cached, &bytes) {
                    tracing::warn!(object, error = %e, "could not keep a moved sidecar locally");
                }
            }
        }
        failpoint("move-uploaded");
        let _ids = self.flushing.lock().await;
        let mut moved = (**seg).clone();
        moved.id = self.catalog.next_segment_id();
        moved.location.tier = Tier::Cold;
        self.replace(std::slice::from_ref(seg), vec![moved]).await?;
        failpoint("move-committed");
        Ok(total)
    }

    /// Closes the opened sidecar at `path` (its file is going), so neither its mapping nor its
    /// memory outlives it.
    fn forget_sidecar(&self, path: &Path) {
        self.indexes.forget(path);
        self.blooms.forget(path);
    }

    fn retired_lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<SegmentMeta>>> {
        self.retired.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deletes the files of retired segments no query holds any more (and whose files no
    /// current segment names); the counts removed and still waiting.
    pub async fn remove_retired(&self) -> (usize, usize) {
        let mut in_use: HashSet<(bool, String)> = self
            .catalog
            .segments()
            .iter()
            .map(|s| (s.location.tier.is_local(), s.location.key.clone()))
            .collect();
        let (free, waiting) = {
            let mut retired = self.retired_lock();
            let mut free = Vec::new();
            retired.retain(|s| {
                if Arc::strong_count(s) > 1 {
                    return true;
                }
                free.push(s.clone());
                false
            });
            // A segment a query still holds keeps its files, even where another retired
            // segment names the same ones (a hot segment relabelled warm, then moved).
            for held in retired.iter() {
                in_use.insert((held.location.tier.is_local(), held.location.key.clone()));
            }
            (free, retired.len())
        };
        let mut removed = 0;
        for seg in free {
            let at = &seg.location;
            if in_use.contains(&(at.tier.is_local(), at.key.clone())) {
                continue;
            }
            match self.delete_files(&seg).await {
                Ok(()) => {
                    removed += 1;
                    // Partials belong to the key, whichever tier holds it: they go with its
                    // last segment.
                    if !in_use.iter().any(|(_, key)| key == &at.key) {
                        if let Err(e) = self.rollups.remove_segment(&at.key) {
                            tracing::warn!(key = %at.key, error = %e, "could not delete a segment's rollup partials; the next start sweeps them");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(segment = seg.id, error = %e, "could not delete a retired segment's files; the next start sweeps them");
                }
            }
        }
        (removed, waiting)
    }

    async fn delete_files(&self, seg: &SegmentMeta) -> Result<(), TierError> {
        let at = &seg.location;
        let keys = [at.key.clone(), index_key(&at.key), bloom_key(&at.key)];
        if at.tier.is_local() {
            for key in &keys {
                let path = self.data_dir.join(key);
                self.forget_sidecar(&path);
                remove_if_there(&path)?;
            }
            return Ok(());
        }
        let Some(cold) = self.files.cold() else {
            return Ok(());
        };
        for key in &keys {
            let path = ObjectPath::from(key.as_str());
            match cold.inner().delete(&path).await {
                Ok(()) | Err(datafusion::object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(StorageError::Object {
                        key: key.clone(),
                        source,
                    }
                    .into())
                }
            }
            cold.forget(&path);
            let cached = self.files.sidecar_cache().join(key);
            self.forget_sidecar(&cached);
            remove_if_there(&cached)?;
        }
        Ok(())
    }
}

/// What a rewrite wrote: segments, rows, bytes.
struct Rewritten {
    segments: usize,
    rows: u64,
    bytes: u64,
}

/// The rows of `batch` at or after `from`.
fn rows_from(batch: &RecordBatch, from: Micros) -> Result<RecordBatch, SegmentError> {
    use datafusion::arrow::array::{Scalar, TimestampMicrosecondArray};
    use datafusion::arrow::compute::{filter_record_batch, kernels::cmp::gt_eq};
    let from = Scalar::new(TimestampMicrosecondArray::from(vec![from]).with_timezone("UTC"));
    let keep = gt_eq(batch.column(crate::model::ts_column()), &from)?;
    Ok(filter_record_batch(batch, &keep)?)
}

/// Renames a staged segment's files (data, then its sidecars) from `staging/from` to
/// `data_dir/to`, and syncs the directory.
fn promote(
    staging: &Path,
    data_dir: &Path,
    from: &str,
    to: &str,
    has_index: bool,
    has_bloom: bool,
) -> std::io::Result<()> {
    let target = data_dir.join(to);
    let dir = target.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir)?;
    let mut pairs = Vec::new();
    if has_index {
        pairs.push((index_key(from), index_key(to)));
    }
    if has_bloom {
        pairs.push((bloom_key(from), bloom_key(to)));
    }
    pairs.push((from.to_string(), to.to_string()));
    for (a, b) in pairs {
        std::fs::rename(staging.join(a), data_dir.join(b))?;
    }
    crate::storage::sync_dir(dir)
}

async fn read_file(path: &Path) -> Result<Bytes, StorageError> {
    tokio::fs::read(path)
        .await
        .map(Bytes::from)
        .map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn remove_if_there(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StorageError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Puts `bytes` at `key` unless it is there, then confirms by a HEAD that the store holds all
/// of them. An object already there of the same size is an earlier, interrupted pass's upload
/// of these same bytes (keys are never reused for other bytes).
async fn upload_confirmed(
    store: &dyn ObjectStore,
    key: &str,
    bytes: Bytes,
) -> Result<(), TierError> {
    let want = bytes.len() as u64;
    match put_new(store, key, bytes).await {
        Ok(()) | Err(StorageError::Exists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let head = store
        .head(&ObjectPath::from(key))
        .await
        .map_err(|source| StorageError::Object {
            key: key.to_string(),
            source,
        })?;
    if head.size != want {
        return Err(TierError::UploadMismatch {
            key: key.to_string(),
            found: head.size,
            want,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::write_segments;
    use std::collections::BTreeMap;

    /// A store over a fresh directory holding `flushes` segments of one tenant-hour, each of
    /// `rows` rows.
    fn store_with_segments(dir: &Path, flushes: usize, rows: usize) -> Arc<Store> {
        use crate::buffer::HotBuffer;
        use crate::catalog::{Catalog, FileCatalog};
        use crate::model::{records_to_batch, LogRecord};
        use crate::storage::SegmentFiles;
        let catalog: Arc<dyn Catalog> = Arc::new(FileCatalog::open(dir).expect("catalog"));
        let buffer = Arc::new(HotBuffer::new(1 << 30, 1 << 30));
        let files = SegmentFiles::local(dir).expect("files");
        let store = Arc::new(Store::new(files, buffer, catalog.clone(), Some(64)));
        for f in 0..flushes {
            let records: Vec<LogRecord> = (0..rows)
                .map(|i| LogRecord {
                    ts: (i * flushes + f) as i64 * 1_000,
                    ingest_ts: 0,
                    tenant: "default".into(),
                    service: "api".into(),
                    host: "h".into(),
                    level: "INFO".into(),
                    msg: format!("flush {f} row {i}"),
                    trace_id: None,
                    attrs: "{}".into(),
                    parse_failed: false,
                    truncated: false,
                })
                .collect();
            let batch = records_to_batch(&records).expect("batch");
            let segs =
                write_segments(dir, &[batch], catalog.next_segment_id(), Some(64)).expect("write");
            let state = catalog
                .commit(Change::Flush {
                    added: segs,
                    wal_through: f as u64 + 1,
                })
                .expect("commit");
            store.install(state);
        }
        store
    }

    fn compact_now() -> Policies {
        Policies {
            base: crate::store::policy::TierPolicy {
                compact_after: std::time::Duration::ZERO,
                cold_after: None,
                retention: None,
            },
            tenants: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn a_segment_a_running_query_holds_is_deleted_only_after_it_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_segments(dir.path(), 3, 500);
        let held = store.snapshot();
        let sources: Vec<std::path::PathBuf> = held
            .segments
            .iter()
            .map(|s| dir.path().join(&s.location.key))
            .collect();
        let report = store.maintain(&compact_now(), HOUR * 1000).await;
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!((report.compacted_segments, report.compacted_into), (3, 1));
        assert_eq!((report.retired_removed, report.retired_waiting), (0, 3));
        assert!(sources.iter().all(|p| p.exists()), "deleted under a reader");
        // The snapshot still reads its own segments, whole.
        for p in &sources {
            let rows: usize = read_segment(p)
                .expect("read")
                .iter()
                .map(|b| b.num_rows())
                .sum();
            assert_eq!(rows, 500);
        }
        // The merged segment holds every row once, sorted, with its index.
        let now = store.snapshot();
        assert_eq!(now.segments.len(), 1);
        let merged = &now.segments[0];
        assert_eq!((merged.rows, merged.location.tier), (1500, Tier::Warm));
        assert!(merged.index.is_some());
        assert!(store.files.index(&merged.location).expect("path").exists());
        drop(held);
        assert_eq!(store.remove_retired().await, (3, 0));
        assert!(sources.iter().all(|p| !p.exists()));
        assert!(sources.iter().all(|p| !p.with_extension("idx").exists()));
        // Nothing is left to do, and the lone warm segment is not rewritten.
        let again = store.maintain(&compact_now(), HOUR * 1000).await;
        assert_eq!(again.compacted_segments, 0, "{again:?}");
    }

    #[tokio::test]
    async fn a_lone_hot_segment_becomes_warm_without_a_rewrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_segments(dir.path(), 1, 100);
        let before = store.snapshot().segments[0].clone();
        let report = store.maintain(&compact_now(), HOUR * 1000).await;
        assert!(report.errors.is_empty(), "{report:?}");
        let after = store.snapshot().segments[0].clone();
        assert_eq!(after.location.tier, Tier::Warm);
        assert_eq!(after.location.key, before.location.key);
        assert_ne!(after.id, before.id);
        drop(before);
        store.remove_retired().await;
        assert!(
            dir.path().join(&after.location.key).exists(),
            "its file is still in use"
        );
    }

    #[tokio::test]
    async fn a_held_segment_keeps_its_file_though_its_relabelled_copy_moves_cold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cold_dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_segments(dir.path(), 1, 100);
        let cold: Arc<dyn ObjectStore> = Arc::new(
            datafusion::object_store::local::LocalFileSystem::new_with_prefix(cold_dir.path())
                .expect("cold"),
        );
        // The same store, now with a cold tier (as a restart with --object-store makes it).
        let files = store.files.clone().with_cold(cold, 1 << 20);
        let store = Arc::new(Store::new(
            files,
            store.buffer.clone(),
            store.catalog.clone(),
            Some(64),
        ));
        let held = store.snapshot();
        let key = held.segments[0].location.key.clone();
        let mut policies = compact_now();
        policies.base.cold_after = Some(std::time::Duration::ZERO);
        let report = store.maintain(&policies, HOUR * 1000).await;
        assert!(report.errors.is_empty(), "{report:?}");
        // Relabelled warm, then moved: both passes' sources retired, one still held.
        assert_eq!(report.moved_segments, 1, "{report:?}");
        assert_eq!(store.snapshot().segments[0].location.tier, Tier::Cold);
        assert!(dir.path().join(&key).exists(), "deleted under a reader");
        drop(held);
        store.remove_retired().await;
        assert!(!dir.path().join(&key).exists());
        assert!(cold_dir.path().join(&key).exists());
    }
}
