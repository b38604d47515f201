//! The rollup views of a data directory: their definitions (`rollups.json`), their compiled
//! plans, and their partials, one Arrow IPC file per view and segment
//! (`rollups/<view id>/<segment key>.arrow`), written at flush and compaction, backfilled in
//! the background for older segments, and deleted with their segment.
//!
//! Partials are derived data: a segment without them (not yet backfilled, a file lost or
//! unreadable, or the partials' byte budget spent) is aggregated from its rows at query time,
//! so answers never depend on them. The number of views and the bytes of all partials have
//! limits (`--max-views`, `--rollup-bytes`): past the budget no partial is computed, and the
//! views' state says `partial`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::index::rollup::{decode_partials, encode_partials, RollupPlan};

/// File of the definitions, under the data directory.
pub const DEFS_FILE: &str = "rollups.json";
/// Directory of the partials, under the data directory.
pub const PARTIALS_DIR: &str = "rollups";

/// Bytes of the files under `dir`.
fn files_bytes(dir: &Path) -> u64 {
    walk(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Most bytes of decoded partials kept in memory.
const CACHE_BYTES: usize = 256 << 20;

/// Errors of the view registry.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error("rollup definitions {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rollup definitions {path} are unreadable: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("materialized view \"{0}\" already exists")]
    Exists(String),
    #[error("materialized view \"{0}\" does not exist")]
    Missing(String),
    #[error("too many materialized views: at most {0} (--max-views); drop one first")]
    TooMany(usize),
}

/// A view as the user defined it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupDef {
    pub id: u64,
    pub name: String,
    pub sql: String,
    pub created_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct DefsFile {
    next_id: u64,
    views: Vec<RollupDef>,
}

/// How far a view's backfill has come.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    pub segments_done: u64,
    pub segments_total: u64,
    pub failed: u64,
}

/// The registry; see the module docs.
#[derive(Debug)]
pub struct Rollups {
    root: PathBuf,
    /// Serialises changes of the definitions file.
    defs: Mutex<()>,
    plans: RwLock<Vec<Arc<RollupPlan>>>,
    cache: Mutex<Cache>,
    progress: Mutex<HashMap<u64, Progress>>,
    /// Wakes the backfill task.
    pub wake: tokio::sync::Notify,
    /// Most views, and most bytes of partials on disk.
    max_views: AtomicUsize,
    max_bytes: AtomicU64,
    /// Bytes of partials on disk now (counted at start, kept up to date as files come and go).
    disk_bytes: AtomicU64,
}

/// Views one server may have, by default.
pub const DEFAULT_MAX_VIEWS: usize = 64;
/// Bytes all views' partials may take on disk, by default.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 30;

#[derive(Debug, Default)]
struct Cache {
    bytes: usize,
    partials: HashMap<(u64, String), Arc<RecordBatch>>,
}

impl Rollups {
    pub fn new(data_dir: &Path) -> Rollups {
        Rollups {
            root: data_dir.to_path_buf(),
            defs: Mutex::new(()),
            plans: RwLock::new(Vec::new()),
            cache: Mutex::new(Cache::default()),
            progress: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            max_views: AtomicUsize::new(DEFAULT_MAX_VIEWS),
            max_bytes: AtomicU64::new(DEFAULT_MAX_BYTES),
            disk_bytes: AtomicU64::new(files_bytes(&data_dir.join(PARTIALS_DIR))),
        }
    }

    /// Sets the limits: views at most, bytes of partials at most.
    pub fn set_limits(&self, max_views: usize, max_bytes: u64) {
        self.max_views.store(max_views.max(1), Ordering::Relaxed);
        self.max_bytes.store(max_bytes, Ordering::Relaxed);
    }

    /// Bytes of all views' partials on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed)
    }

    fn recount(&self) {
        self.disk_bytes.store(
            files_bytes(&self.root.join(PARTIALS_DIR)),
            Ordering::Relaxed,
        );
    }

    fn defs_path(&self) -> PathBuf {
        self.root.join(DEFS_FILE)
    }

    fn read_defs(&self) -> Result<DefsFile, RollupError> {
        let path = self.defs_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| RollupError::Decode {
                path: path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DefsFile {
                next_id: 1,
                views: Vec::new(),
            }),
            Err(source) => Err(RollupError::Io { path, source }),
        }
    }

    fn write_defs(&self, defs: &DefsFile) -> Result<(), RollupError> {
        let path = self.defs_path();
        let bytes = serde_json::to_vec_pretty(defs).map_err(|source| RollupError::Decode {
            path: path.clone(),
            source,
        })?;
        crate::storage::replace_file(&path, "tmp", &bytes)
            .map_err(|source| RollupError::Io { path, source })
    }

    /// Every saved definition.
    pub fn definitions(&self) -> Result<Vec<RollupDef>, RollupError> {
        Ok(self.read_defs()?.views)
    }

    /// Saves a new definition under the next id (given to `plan`) and makes `plan` live
    /// (flushes write its partials from now on; the backfill computes them for older segments).
    pub fn create(&self, mut plan: RollupPlan, created_at: i64) -> Result<u64, RollupError> {
        let _g = self.defs.lock().unwrap_or_else(|p| p.into_inner());
        let mut defs = self.read_defs()?;
        if defs.views.iter().any(|v| v.name == plan.name) {
            return Err(RollupError::Exists(plan.name.clone()));
        }
        let max_views = self.max_views.load(Ordering::Relaxed);
        if defs.views.len() >= max_views {
            return Err(RollupError::TooMany(max_views));
        }
        plan.id = defs.next_id.max(1);
        defs.next_id = plan.id + 1;
        defs.views.push(RollupDef {
            id: plan.id,
            name: plan.name.clone(),
            sql: plan.sql.clone(),
            created_at,
        });
        self.write_defs(&defs)?;
        let id = plan.id;
        self.install(plan);
        Ok(id)
    }

    /// Makes a compiled plan live (at start, for a saved definition).
    pub fn install(&self, plan: RollupPlan) {
        let mut plans = self.plans.write().unwrap_or_else(|p| p.into_inner());
        plans.retain(|p| p.id != plan.id);
        plans.push(Arc::new(plan));
        self.wake.notify_one();
    }

    /// Drops a view: its definition, then its partials.
    pub fn drop_view(&self, name: &str) -> Result<(), RollupError> {
        let _g = self.defs.lock().unwrap_or_else(|p| p.into_inner());
        let mut defs = self.read_defs()?;
        let Some(at) = defs.views.iter().position(|v| v.name == name) else {
            return Err(RollupError::Missing(name.to_string()));
        };
        let gone = defs.views.remove(at);
        self.write_defs(&defs)?;
        self.plans
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| p.id != gone.id);
        self.forget(|(id, _)| *id == gone.id);
        let dir = self.root.join(PARTIALS_DIR).join(gone.id.to_string());
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, dir = %dir.display(), "could not remove a dropped view's partials; the next start sweeps them");
            }
        }
        self.recount();
        Ok(())
    }

    /// The live plans.
    pub fn plans(&self) -> Vec<Arc<RollupPlan>> {
        self.plans.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The file of `view`'s partials of the segment at `key`.
    pub fn path(&self, view: u64, key: &str) -> PathBuf {
        self.root
            .join(PARTIALS_DIR)
            .join(view.to_string())
            .join(format!("{key}.arrow"))
    }

    /// Computes and durably writes every live view's partials of one segment's rows. A view
    /// that fails is logged and left to the backfill (the segment is then aggregated from its
    /// rows until it succeeds).
    pub fn write_all(&self, key: &str, rows: &RecordBatch) -> u64 {
        let mut bytes = 0;
        for plan in self.plans() {
            match self.write_one(&plan, key, rows) {
                Ok(n) => bytes += n,
                Err(e) => {
                    tracing::warn!(view = %plan.name, key, error = %e, "could not compute a segment's rollup partials")
                }
            }
        }
        bytes
    }

    /// Computes and writes `plan`'s partials of one segment's rows; their size in bytes.
    pub fn write_one(
        &self,
        plan: &RollupPlan,
        key: &str,
        rows: &RecordBatch,
    ) -> Result<u64, datafusion::error::DataFusionError> {
        let budget = self.max_bytes.load(Ordering::Relaxed);
        if self.disk_bytes() >= budget {
            return Err(datafusion::error::DataFusionError::ResourcesExhausted(
                format!(
                "the views' partials take their whole budget of {budget} bytes (--rollup-bytes)"
            ),
            ));
        }
        let partials = plan.partials(rows)?;
        let bytes = encode_partials(&partials)?;
        let path = self.path(plan.id, key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let replaced = std::fs::metadata(&path).map_or(0, |m| m.len());
        crate::storage::replace_file(&path, "tmp", &bytes)?;
        let written = bytes.len() as u64;
        let _ = self
            .disk_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_add(written).saturating_sub(replaced))
            });
        self.remember(plan.id, key, Arc::new(partials));
        Ok(bytes.len() as u64)
    }

    /// `plan`'s partials of the segment at `key`, if they were computed and are readable.
    pub fn partials(&self, plan: &RollupPlan, key: &str) -> Option<Arc<RecordBatch>> {
        if let Some(hit) = self.cached(plan.id, key) {
            return Some(hit);
        }
        let path = self.path(plan.id, key);
        let bytes = std::fs::read(&path).ok()?;
        match decode_partials(bytes, &plan.state_schema) {
            Ok(batch) => {
                let batch = Arc::new(batch);
                self.remember(plan.id, key, batch.clone());
                Some(batch)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable rollup partials, removed; the segment is aggregated from its rows until the backfill computes them again");
                let _ = std::fs::remove_file(&path);
                self.wake.notify_one();
                None
            }
        }
    }

    /// Whether `view` has partials for the segment at `key` (on disk).
    pub fn has(&self, view: u64, key: &str) -> bool {
        self.cached(view, key).is_some() || self.path(view, key).exists()
    }

    /// A cached batch of `view` for `key`.
    pub fn cached(&self, view: u64, key: &str) -> Option<Arc<RecordBatch>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.partials.get(&(view, key.to_string())).cloned()
    }

    /// Keeps a decoded batch in memory (the cache starts over when full).
    pub fn remember(&self, view: u64, key: &str, batch: Arc<RecordBatch>) {
        let size = batch.get_array_memory_size();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.bytes + size > CACHE_BYTES {
            cache.partials.clear();
            cache.bytes = 0;
        }
        if let Some(old) = cache.partials.insert((view, key.to_string()), batch) {
            cache.bytes = cache.bytes.saturating_sub(old.get_array_memory_size());
        }
        cache.bytes += size;
    }

    fn forget(&self, gone: impl Fn(&(u64, String)) -> bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<(u64, String)> = cache.partials.keys().filter(|k| gone(k)).cloned().collect();
        for k in keys {
            if let Some(b) = cache.partials.remove(&k) {
                cache.bytes = cache.bytes.saturating_sub(b.get_array_memory_size());
            }
        }
    }

    /// Deletes every view's partials of the segment at `key` (its files are being deleted).
    pub fn remove_segment(&self, key: &str) -> std::io::Result<()> {
        self.forget(|(_, k)| k == key);
        for plan in self.plans() {
            let path = self.path(plan.id, key);
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                Err(_) => {}
                Ok(()) => {
                    let _ =
                        self.disk_bytes
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                                Some(b.saturating_sub(size))
                            });
                }
            }
        }
        Ok(())
    }

    /// Removes partial files of views that no longer exist and of segments no key in `live`
    /// names; how many files were removed.
    pub fn sweep(&self, live: &HashSet<String>) -> usize {
        let views: HashSet<String> = self.plans().iter().map(|p| p.id.to_string()).collect();
        let defined: HashSet<String> = self
            .definitions()
            .map(|d| d.iter().map(|v| v.id.to_string()).collect())
            .unwrap_or_else(|_| views.clone());
        let dir = self.root.join(PARTIALS_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !defined.contains(&name) {
                if std::fs::remove_dir_all(entry.path()).is_ok() {
                    removed += 1;
                }
                continue;
            }
            let view_dir = entry.path();
            for file in walk(&view_dir) {
                let Ok(rel) = file.strip_prefix(&view_dir) else {
                    continue;
                };
                let rel = rel.to_string_lossy();
                let key = rel.strip_suffix(".arrow").unwrap_or(&rel);
                if !live.contains(key) && std::fs::remove_file(&file).is_ok() {
                    removed += 1;
                }
            }
        }
        self.recount();
        removed
    }

    /// Bytes of `view`'s partials of the segments at `keys` (a tenant's: never another's).
    pub fn bytes_of<'a>(&self, view: u64, keys: impl IntoIterator<Item = &'a str>) -> u64 {
        keys.into_iter()
            .filter_map(|k| std::fs::metadata(self.path(view, k)).ok())
            .map(|m| m.len())
            .sum()
    }

    pub fn progress(&self, view: u64) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&view)
            .copied()
            .unwrap_or_default()
    }

    pub fn set_progress(&self, view: u64, progress: Progress) {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(view, progress);
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::rollup::{Bucket, RollupShape, BUCKET};
    use crate::model::{logs_schema, records_to_batch, LogRecord};
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_plan::aggregates::PhysicalGroupBy;
    use datafusion::physical_plan::expressions::{col, lit};

    fn plan(id: u64) -> RollupPlan {
        let schema = logs_schema();
        let count = AggregateExprBuilder::new(count_udaf(), vec![lit(1i64)])
            .schema(schema.clone())
            .alias("n")
            .build()
            .expect("count");
        let group = PhysicalGroupBy::new_single(vec![
            (col("ts", &schema).expect("ts"), BUCKET.to_string()),
            (col("level", &schema).expect("level"), "__dim0".to_string()),
        ]);
        RollupPlan::new(
            id,
            format!("v{id}"),
            "SELECT …".into(),
            Bucket {
                width: 60_000_000,
                origin: 0,
            },
            RollupShape {
                dims: vec![],
                measures: vec![],
                filters: vec![],
            },
            group,
            vec![Arc::new(count)],
            None,
        )
        .expect("plan")
    }

    fn rows() -> RecordBatch {
        let record = |level: &str| LogRecord {
            ts: 0,
            ingest_ts: 0,
            tenant: "default".into(),
            service: "api".into(),
            host: "h".into(),
            level: level.into(),
            msg: "m".into(),
            trace_id: None,
            attrs: "{}".into(),
            parse_failed: false,
            truncated: false,
        };
        records_to_batch(&[record("INFO"), record("INFO"), record("ERROR")]).expect("batch")
    }

    #[test]
    fn partials_are_kept_per_view_and_key_and_go_with_their_segment_or_view() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rollups = Rollups::new(dir.path());
        assert_eq!(rollups.create(plan(1), 0).expect("create"), 1);
        assert!(matches!(
            rollups.create(plan(1), 0),
            Err(RollupError::Exists(_))
        ));
        rollups.write_all("segments/a.parquet", &rows());
        rollups.write_all("segments/b.parquet", &rows());
        let view = rollups.plans()[0].clone();
        // Read back from disk by a fresh registry (a restart): one row per level.
        let reopened = Rollups::new(dir.path());
        assert_eq!(reopened.definitions().expect("defs").len(), 1);
        let got = reopened
            .partials(&view, "segments/a.parquet")
            .expect("partials");
        assert_eq!(got.num_rows(), 2);
        assert!(reopened.partials(&view, "segments/c.parquet").is_none());
        // A key no segment names any more is swept; a live one stays.
        let live = HashSet::from(["segments/a.parquet".to_string()]);
        assert_eq!(rollups.sweep(&live), 1);
        assert!(rollups.has(1, "segments/a.parquet"));
        assert!(!rollups.path(1, "segments/b.parquet").exists());
        rollups
            .remove_segment("segments/a.parquet")
            .expect("remove");
        assert!(!rollups.has(1, "segments/a.parquet"));
        // Dropping the view removes its definition and its directory.
        rollups.write_all("segments/a.parquet", &rows());
        rollups.drop_view("v1").expect("drop");
        assert!(rollups.plans().is_empty());
        assert!(rollups.definitions().expect("defs").is_empty());
        assert!(!dir.path().join(PARTIALS_DIR).join("1").exists());
        assert!(matches!(
            rollups.drop_view("v1"),
            Err(RollupError::Missing(_))
        ));
    }
}
