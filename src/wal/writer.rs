//! The group-commit writer: one thread owns the open WAL file and fsyncs for everyone waiting.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::oneshot;

use super::format::{frame_into, MAGIC};
use super::{file_name, WalError};
use crate::storage::sync_dir;

/// Receives each batch once it is durable, in sequence order, before the request is acked: the
/// hot buffer, then the live tail's hub (and whatever else follows accepted logs as they arrive).
pub trait WalSink: Send + Sync + 'static {
    fn publish(&self, seq: u64, batch: RecordBatch);
}

enum Command {
    Append {
        payload: Vec<u8>,
        batch: RecordBatch,
        done: oneshot::Sender<Result<u64, Arc<WalError>>>,
    },
    /// Close the current file so the next append starts a new one.
    Rotate { done: oneshot::Sender<()> },
}

/// Handle to the WAL: cheap to clone, safe to share.
#[derive(Clone)]
pub struct Wal {
    tx: Sender<Command>,
    dir: PathBuf,
    /// Closed files and the last sequence number each holds.
    closed: Arc<Mutex<Vec<(PathBuf, u64)>>>,
}

struct OpenFile {
    path: PathBuf,
    file: File,
    size: u64,
    last_seq: u64,
}

struct WriterThread {
    dir: PathBuf,
    next_seq: u64,
    rotate_bytes: u64,
    current: Option<OpenFile>,
    closed: Arc<Mutex<Vec<(PathBuf, u64)>>>,
    sinks: Vec<Arc<dyn WalSink>>,
}

impl Wal {
    /// Starts the writer thread. `next_seq` is one past the highest sequence number ever used;
    /// `existing` are the files replay left on disk (they are never appended to again). Every
    /// durable batch goes to each of `sinks`, in their order.
    pub fn start(
        dir: &Path,
        next_seq: u64,
        rotate_bytes: u64,
        existing: Vec<(PathBuf, u64)>,
        sinks: Vec<Arc<dyn WalSink>>,
    ) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        let (tx, rx) = mpsc::channel();
        let closed = Arc::new(Mutex::new(existing));
        let mut thread = WriterThread {
            dir: dir.to_path_buf(),
            next_seq: next_seq.max(1),
            rotate_bytes,
            current: None,
            closed: closed.clone(),
            sinks,
        };
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || thread.run(rx))
            .map_err(|e| WalError::io(dir, e))?;
        Ok(Wal {
            tx,
            dir: dir.to_path_buf(),
            closed,
        })
    }

    /// Appends an encoded payload; resolves with its sequence number once it is fsynced and
    /// `batch` has been published to the sinks.
    pub async fn append(&self, payload: Vec<u8>, batch: RecordBatch) -> Result<u64, Arc<WalError>> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Command::Append {
                payload,
                batch,
                done,
            })
            .map_err(|_| Arc::new(WalError::WriterGone))?;
        rx.await.map_err(|_| Arc::new(WalError::WriterGone))?
    }

    /// Closes the current file; later appends go to a new one.
    pub async fn rotate(&self) -> Result<(), WalError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Command::Rotate { done })
            .map_err(|_| WalError::WriterGone)?;
        rx.await.map_err(|_| WalError::WriterGone)
    }

    /// Deletes closed files whose every record has sequence number ≤ `seq`.
    pub fn remove_through(&self, seq: u64) -> Result<usize, WalError> {
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        let mut removed = 0;
        let mut keep = Vec::with_capacity(closed.len());
        for (path, last) in closed.drain(..) {
            if last <= seq {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        keep.push((path.clone(), last));
                        return Err(WalError::io(&path, e));
                    }
                }
            } else {
                keep.push((path, last));
            }
        }
        *closed = keep;
        if removed > 0 {
            sync_dir(&self.dir).map_err(|e| WalError::io(&self.dir, e))?;
        }
        Ok(removed)
    }

    /// Number of WAL files on disk (closed ones; the open one is not counted).
    pub fn closed_files(&self) -> usize {
        self.closed.lock().map(|c| c.len()).unwrap_or(0)
    }
}

impl WriterThread {
    fn run(&mut self, rx: Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            // Group commit: take everything that is already waiting.
            let mut group = vec![first];
            while let Ok(more) = rx.try_recv() {
                group.push(more);
                if group.len() >= 4096 {
                    break;
                }
            }
            self.commit(group);
        }
        self.close_current();
    }

    fn commit(&mut self, group: Vec<Command>) {
        let mut appends = Vec::with_capacity(group.len());
        let mut rotations = Vec::new();
        for cmd in group {
            match cmd {
                Command::Append {
                    payload,
                    batch,
                    done,
                } => appends.push((payload, batch, done)),
                Command::Rotate { done } => rotations.push(done),
            }
        }
        if !appends.is_empty() {
            let first_seq = self.next_seq;
            match self.write_group(&appends) {
                Ok(()) => {
                    for (i, (_, batch, done)) in appends.into_iter().enumerate() {
                        let seq = first_seq + i as u64;
                        for sink in &self.sinks {
                            // The batch is durable: a sink that panics must not stop the
                            // writer, or the request from being answered.
                            let published = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                sink.publish(seq, batch.clone())
                            }));
                            if published.is_err() {
                                tracing::error!(seq, "a WAL sink panicked; the batch is durable");
                            }
                        }
                        let _ = done.send(Ok(seq));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "WAL write failed; rejecting the group");
                    // The file may hold part of the group: never append after it, and never reuse
                    // the group's sequence numbers (replay may still find some of its frames).
                    let last = first_seq + appends.len() as u64 - 1;
                    self.next_seq = last + 1;
                    if let Some(cur) = self.current.take() {
                        if let Ok(mut closed) = self.closed.lock() {
                            closed.push((cur.path, last));
                        }
                    }
                    let e = Arc::new(e);
                    for (_, _, done) in appends {
                        let _ = done.send(Err(e.clone()));
                    }
                }
            }
        }
        if !rotations.is_empty() {
            self.close_current();
            for done in rotations {
                let _ = done.send(());
            }
        }
    }

    fn write_group(
        &mut self,
        appends: &[(
            Vec<u8>,
            RecordBatch,
            oneshot::Sender<Result<u64, Arc<WalError>>>,
        )],
    ) -> Result<(), WalError> {
        if self.current.is_none() {
            self.open_new()?;
        }
        let Some(cur) = self.current.as_mut() else {
            return Err(WalError::WriterGone);
        };
        let mut buf = Vec::with_capacity(appends.iter().map(|a| a.0.len() + 16).sum());
        let mut seq = self.next_seq;
        for (payload, _, _) in appends {
            frame_into(&mut buf, seq, payload);
            seq += 1;
        }
        let started = std::time::Instant::now();
        cur.file
            .write_all(&buf)
            .map_err(|e| WalError::io(&cur.path, e))?;
        cur.file
            .sync_data()
            .map_err(|e| WalError::io(&cur.path, e))?;
        let m = crate::metrics::metrics();
        m.wal_fsync_seconds.observe(started.elapsed().as_secs_f64());
        m.wal_group_commit_batches.observe(appends.len() as f64);
        cur.size += buf.len() as u64;
        cur.last_seq = seq - 1;
        self.next_seq = seq;
        if cur.size >= self.rotate_bytes {
            self.close_current();
        }
        Ok(())
    }

    fn open_new(&mut self) -> Result<(), WalError> {
        let path = self.dir.join(file_name(self.next_seq));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| WalError::io(&path, e))?;
        file.write_all(MAGIC).map_err(|e| WalError::io(&path, e))?;
        file.sync_all().map_err(|e| WalError::io(&path, e))?;
        sync_dir(&self.dir).map_err(|e| WalError::io(&self.dir, e))?;
        self.current = Some(OpenFile {
            path,
            file,
            size: MAGIC.len() as u64,
            last_seq: self.next_seq.saturating_sub(1),
        });
        Ok(())
    }

    fn close_current(&mut self) {
        if let Some(cur) = self.current.take() {
            if let Ok(mut closed) = self.closed.lock() {
                closed.push((cur.path, cur.last_seq));
            }
        }
    }
}
