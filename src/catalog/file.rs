//! The embedded catalog: a checkpoint (`catalog.json`, the whole state as of one commit) and a
//! log (`catalog.log`, one JSON line per later commit, appended and fsynced). A commit writes
//! only its change; the checkpoint is rewritten once the log has grown as large as it, so its
//! cost spreads to O(change) per commit. Opening replays the log past the checkpoint; a last
//! line cut short by a crash is dropped (that commit never returned).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::{Catalog, CatalogError, CatalogState, Change};

const CHECKPOINT: &str = "catalog.json";
const LOG: &str = "catalog.log";
/// The log is folded into a new checkpoint once it is this large, or as large as the
/// checkpoint, whichever is more.
const MIN_LOG_BYTES: u64 = 1 << 20;

/// One line of the log.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    commit: u64,
    change: Change,
}

/// The file-backed catalog in a data directory.
#[derive(Debug)]
pub struct FileCatalog {
    dir: PathBuf,
    head: Mutex<Head>,
    visible: RwLock<Arc<CatalogState>>,
}

/// The latest commit and the log it continues.
#[derive(Debug)]
struct Head {
    state: Arc<CatalogState>,
    log: File,
    log_bytes: u64,
    checkpoint_bytes: u64,
    /// A failed fsync (or a failed undo of a half-written line) leaves the log's state unknown:
    /// no later commit is taken until the catalog is opened again.
    poisoned: bool,
}

impl FileCatalog {
    /// Opens (or creates empty) the catalog in `dir`.
    pub fn open(dir: &Path) -> Result<FileCatalog, CatalogError> {
        let checkpoint = dir.join(CHECKPOINT);
        let (mut state, checkpoint_bytes) = match std::fs::read(&checkpoint) {
            Ok(bytes) => {
                let state: CatalogState =
                    serde_json::from_slice(&bytes).map_err(|source| CatalogError::Decode {
                        path: checkpoint.clone(),
                        source,
                    })?;
                (state, bytes.len() as u64)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (CatalogState::empty(), 0),
            Err(source) => {
                return Err(CatalogError::Io {
                    path: checkpoint,
                    source,
                })
            }
        };
        let log_path = dir.join(LOG);
        let io = |source| CatalogError::Io {
            path: log_path.clone(),
            source,
        };
        let log_bytes = match std::fs::read(&log_path) {
            Ok(bytes) => {
                let kept = replay(&log_path, &bytes, &mut state)?;
                if kept < bytes.len() {
                    tracing::warn!(
                        path = %log_path.display(),
                        dropped = bytes.len() - kept,
                        "dropping a catalog commit cut short by a crash"
                    );
                    let f = OpenOptions::new().write(true).open(&log_path).map_err(io)?;
                    f.set_len(kept as u64).map_err(io)?;
                    f.sync_all().map_err(io)?;
                }
                kept as u64
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(io(source)),
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io)?;
        crate::storage::sync_dir(dir).map_err(|source| CatalogError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let state = Arc::new(state);
        Ok(FileCatalog {
            dir: dir.to_path_buf(),
            head: Mutex::new(Head {
                state: state.clone(),
                log,
                log_bytes,
                checkpoint_bytes,
                poisoned: false,
            }),
            visible: RwLock::new(state),
        })
    }

    /// Writes `state` as the checkpoint and empties the log (whose commits it holds).
    fn checkpoint(&self, head: &mut Head) -> Result<(), CatalogError> {
        let path = self.dir.join(CHECKPOINT);
        let io = |source| CatalogError::Io {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(&*head.state).map_err(|source| CatalogError::Decode {
            path: path.clone(),
            source,
        })?;
        crate::storage::replace_file(&path, "json.tmp", &bytes).map_err(io)?;
        crate::storage::sync_dir(&self.dir).map_err(io)?;
        // A crash before this leaves commits the checkpoint already holds: replay skips them.
        head.log.set_len(0).map_err(io)?;
        head.log.sync_all().map_err(io)?;
        head.log_bytes = 0;
        head.checkpoint_bytes = bytes.len() as u64;
        Ok(())
    }
}

/// Applies the log's commits past `state`'s; returns how many bytes hold whole commits.
fn replay(path: &Path, bytes: &[u8], state: &mut CatalogState) -> Result<usize, CatalogError> {
    let mut at = 0;
    let mut applied = false;
    while let Some(len) = bytes[at..].iter().position(|&b| b == b'\n') {
        let line = &bytes[at..at + len];
        let broken = |why: String| CatalogError::Log {
            path: path.to_path_buf(),
            offset: at as u64,
            why,
        };
        let last = at + len + 1 == bytes.len();
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(e) => e,
            // A crash may leave a last line cut or garbled; that commit never returned. A
            // well-formed line this build cannot read is not a crash's doing.
            Err(e) if last && (e.is_eof() || e.is_syntax()) => return Ok(at),
            Err(e) => return Err(broken(e.to_string())),
        };
        // Lines the checkpoint already holds come first; after them, each commit follows the
        // last one exactly.
        let skip = !applied && entry.commit <= state.commit;
        if !skip {
            if entry.commit != state.commit + 1 {
                return Err(broken(format!(
                    "commit {} follows commit {}",
                    entry.commit, state.commit
                )));
            }
            *state = state
                .apply(&entry.change)
                .map_err(|e| broken(e.to_string()))?;
            applied = true;
        }
        at += len + 1;
    }
    Ok(at)
}

impl Catalog for FileCatalog {
    fn current(&self) -> Arc<CatalogState> {
        self.visible
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn commit(&self, change: Change) -> Result<Arc<CatalogState>, CatalogError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if head.poisoned {
            return Err(CatalogError::Poisoned);
        }
        let next = Arc::new(head.state.apply(&change)?);
        let entry = Entry {
            commit: next.commit,
            change,
        };
        let path = self.dir.join(LOG);
        let io = |source| CatalogError::Io {
            path: path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&entry).map_err(|source| CatalogError::Decode {
            path: path.clone(),
            source,
        })?;
        line.push(b'\n');
        if let Err(e) = head.log.write_all(&line) {
            // Undo a part-written line, so the next commit starts on a line of its own.
            let undone = head
                .log
                .set_len(head.log_bytes)
                .and_then(|()| head.log.sync_all());
            head.poisoned = undone.is_err();
            return Err(io(e));
        }
        if let Err(e) = head.log.sync_data() {
            // Whether the line is durable is unknown: a later commit must not reuse its number.
            head.poisoned = true;
            return Err(io(e));
        }
        head.log_bytes += line.len() as u64;
        head.state = next.clone();
        if head.log_bytes >= head.checkpoint_bytes.max(MIN_LOG_BYTES) {
            // The commit is durable already; a failed checkpoint only leaves a longer log.
            if let Err(e) = self.checkpoint(&mut head) {
                tracing::warn!(error = %e, "catalog checkpoint failed; the log keeps growing");
            }
        }
        Ok(next)
    }

    fn next_segment_id(&self) -> u64 {
        let head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        head.state.next_segment_id
    }

    fn install(&self, state: Arc<CatalogState>) {
        let mut visible = self.visible.write().unwrap_or_else(|p| p.into_inner());
        if state.commit >= visible.commit {
            *visible = state;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::seg;
    use super::*;

    fn flush(ids: &[u64], through: u64) -> Change {
        Change::Flush {
            added: ids.iter().map(|&id| seg(id)).collect(),
            wal_through: through,
        }
    }

    fn ids(c: &FileCatalog) -> Vec<u64> {
        c.segments().iter().map(|s| s.id).collect()
    }

    #[test]
    fn commits_survive_a_reopen_and_are_visible_only_once_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = FileCatalog::open(dir.path()).expect("open");
        let s = c.commit(flush(&[1, 2], 5)).expect("commit");
        assert!(ids(&c).is_empty(), "visible before install");
        c.install(s);
        let s = c
            .commit(Change::Replace {
                removed: vec![1],
                added: vec![seg(3)],
            })
            .expect("replace");
        c.install(s);
        assert_eq!(ids(&c), [2, 3]);
        drop(c);
        let c = FileCatalog::open(dir.path()).expect("reopen");
        assert_eq!(ids(&c), [2, 3]);
        assert_eq!(
            (c.current().commit, c.flushed_through(), c.next_segment_id()),
            (2, 5, 4)
        );
    }

    #[test]
    fn a_commit_appends_its_change_not_the_catalog() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = FileCatalog::open(dir.path()).expect("open");
        let many: Vec<u64> = (1..=2_000).collect();
        c.install(c.commit(flush(&many, 1)).expect("commit"));
        let log = dir.path().join(LOG);
        let before = std::fs::metadata(&log).expect("log").len();
        c.install(c.commit(flush(&[5_000], 2)).expect("commit"));
        let grew = std::fs::metadata(&log).expect("log").len() - before;
        assert!(grew < 400, "one segment's commit wrote {grew} bytes");
    }

    #[test]
    fn a_long_log_becomes_a_checkpoint_and_replay_skips_what_it_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = FileCatalog::open(dir.path()).expect("open");
        let mut id = 1;
        while !dir.path().join(CHECKPOINT).exists() {
            c.install(c.commit(flush(&[id], id)).expect("commit"));
            id += 1;
        }
        assert_eq!(
            std::fs::metadata(dir.path().join(LOG)).expect("log").len(),
            0
        );
        c.install(c.commit(flush(&[id], id)).expect("commit"));
        let want = ids(&c);
        drop(c);
        let c = FileCatalog::open(dir.path()).expect("reopen");
        assert_eq!(ids(&c), want);
        assert_eq!(c.current().commit, id);
    }

    /// A catalog of one commit, closed: its directory, log path and log bytes.
    fn one_commit_logged() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = FileCatalog::open(dir.path()).expect("open");
        c.install(c.commit(flush(&[1], 1)).expect("commit"));
        drop(c);
        let log = dir.path().join(LOG);
        let whole = std::fs::read(&log).expect("log");
        (dir, log, whole)
    }

    #[test]
    fn a_commit_cut_short_is_dropped_and_a_broken_one_is_an_error() {
        let (dir, log, whole) = one_commit_logged();
        std::fs::write(&log, [&whole[..], b"{\"commit\":2,\"chan"].concat()).expect("write");
        let c = FileCatalog::open(dir.path()).expect("reopen");
        assert_eq!(ids(&c), [1]);
        // The cut line is gone, and a next commit follows the whole ones.
        c.install(c.commit(flush(&[2], 2)).expect("commit"));
        drop(c);
        assert_eq!(ids(&FileCatalog::open(dir.path()).expect("reopen")), [1, 2]);
        // Garbage before the last line is not a crash's doing: refuse to guess.
        let whole = std::fs::read(&log).expect("log");
        std::fs::write(&log, [&b"garbage\n"[..], &whole].concat()).expect("write");
        let err = FileCatalog::open(dir.path()).expect_err("broken log");
        assert!(matches!(err, CatalogError::Log { offset: 0, .. }), "{err}");
    }

    #[test]
    fn a_commit_number_seen_twice_is_an_error_not_a_skip() {
        let (dir, log, whole) = one_commit_logged();
        let dup = r#"{"commit":1,"change":{"kind":"flush","added":[],"wal_through":9}}"#;
        std::fs::write(&log, [&whole[..], dup.as_bytes(), b"\n"].concat()).expect("write");
        let err = FileCatalog::open(dir.path()).expect_err("duplicate commit");
        assert!(matches!(err, CatalogError::Log { .. }), "{err}");
    }

    #[test]
    fn a_catalog_from_before_commits_loads_as_commit_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = r#"{"version":1,"next_segment_id":3,"flushed_through":7,"segments":[
            {"id":2,"tenant":"default","min_ts":0,"max_ts":1,"rows":1,"bytes":1,
             "path":"segments/tenant=default/date=1970-01-01/hour=00/seg-000000000002.parquet",
             "created_at":0}]}"#;
        std::fs::write(dir.path().join(CHECKPOINT), old).expect("write");
        let c = FileCatalog::open(dir.path()).expect("open");
        assert_eq!(
            (c.current().commit, c.flushed_through(), c.next_segment_id()),
            (0, 7, 3)
        );
        // Its segments were written before tiers: local, hot, keyed by their old path.
        let seg = &c.current().segments[0];
        assert_eq!(seg.location.tier, super::super::Tier::Hot);
        assert!(seg.location.key.ends_with("seg-000000000002.parquet"));
    }
}
