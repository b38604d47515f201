//! Hot buffer: the Arrow batches that are durable in the WAL but not yet in a segment.
//!
//! Every query reads it, so a row is visible the moment its ingest request is acknowledged. The
//! WAL writer publishes into it in sequence order, which makes "everything up to sequence S" a
//! prefix of the buffer: the flush takes such a prefix and retires exactly it.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::Notify;

use crate::wal::WalSink;

/// One durable batch waiting for its flush.
#[derive(Debug, Clone)]
pub struct HotBatch {
    pub seq: u64,
    pub batch: RecordBatch,
    pub bytes: usize,
    /// The tenant of every row, when they share one (a batch is one request's): a query of
    /// another tenant skips the batch without comparing its rows.
    pub tenant: Option<Arc<str>>,
}

#[derive(Debug, Default)]
struct Inner {
    batches: Vec<HotBatch>,
    bytes: usize,
    rows: usize,
    oldest: Option<Instant>,
}

/// How full the buffer is, as told to shippers in `lag_hint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    Normal,
    Elevated,
    Critical,
}

impl Pressure {
    pub fn as_str(self) -> &'static str {
        match self {
            Pressure::Normal => "normal",
            Pressure::Elevated => "elevated",
            Pressure::Critical => "critical",
        }
    }
}

/// The hot buffer with its flush thresholds.
#[derive(Debug)]
pub struct HotBuffer {
    inner: RwLock<Inner>,
    /// Flush when this many bytes are buffered.
    pub flush_bytes: usize,
    /// Never hold more than this: reaching it forces a flush at once.
    pub max_bytes: usize,
    /// Woken whenever a threshold is crossed.
    pub flush_wanted: Notify,
    /// Set when a batch was refused for want of room: flush now, whatever the thresholds say.
    room_wanted: std::sync::atomic::AtomicBool,
    /// Bytes promised to batches on their way through the WAL, not yet pushed.
    reserved: std::sync::atomic::AtomicUsize,
}

/// Room in the hot buffer held for one batch until it is pushed (or fails); freed on drop.
#[derive(Debug)]
pub struct Room<'a> {
    buffer: &'a HotBuffer,
    bytes: usize,
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        self.buffer
            .reserved
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::SeqCst);
    }
}

impl HotBuffer {
    pub fn new(flush_bytes: usize, max_bytes: usize) -> HotBuffer {
        HotBuffer {
            inner: RwLock::new(Inner::default()),
            flush_bytes: flush_bytes.min(max_bytes),
            max_bytes,
            flush_wanted: Notify::new(),
            room_wanted: std::sync::atomic::AtomicBool::new(false),
            reserved: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Holds `bytes` of room for a batch, if the buffer (with what other batches hold) has it.
    /// Concurrent batches cannot together overrun the cap: each one's room is taken at once.
    pub fn reserve(&self, bytes: usize) -> Option<Room<'_>> {
        use std::sync::atomic::Ordering;
        let held = self.bytes();
        self.reserved
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
                let after = held.saturating_add(r).saturating_add(bytes);
                (after <= self.max_bytes).then_some(r + bytes)
            })
            .ok()
            .map(|_| Room {
                buffer: self,
                bytes,
            })
    }

    /// Asks for a flush because a batch did not fit.
    pub fn want_room(&self) {
        self.room_wanted
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.flush_wanted.notify_one();
    }

    /// Whether a flush was asked for by [`HotBuffer::want_room`] since the last call.
    pub fn take_room_wanted(&self) -> bool {
        self.room_wanted
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a durable batch, which must be sorted by `ts` (`records_to_batch` builds it so):
    /// time lookups binary-search each batch.
    pub fn push(&self, seq: u64, batch: RecordBatch) {
        debug_assert!(crate::model::ts_values(&batch)
            .windows(2)
            .all(|w| w[0] <= w[1]));
        let bytes = batch.get_array_memory_size();
        let rows = batch.num_rows();
        let tenant = one_tenant(&batch);
        let total = {
            let mut g = self.write();
            g.batches.push(HotBatch {
                seq,
                batch,
                bytes,
                tenant,
            });
            g.bytes += bytes;
            g.rows += rows;
            g.oldest.get_or_insert_with(Instant::now);
            g.bytes
        };
        if total >= self.flush_bytes {
            self.flush_wanted.notify_one();
        }
    }

    /// Every buffered batch, for a query.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.read()
            .batches
            .iter()
            .map(|b| b.batch.clone())
            .collect()
    }

    /// Every buffered batch with the tenant all its rows share (if they do), for a query.
    pub fn batches_and_tenants(&self) -> (Vec<RecordBatch>, Vec<Option<Arc<str>>>) {
        let g = self.read();
        g.batches
            .iter()
            .map(|b| (b.batch.clone(), b.tenant.clone()))
            .unzip()
    }

    /// Every buffered batch with its sequence number and the tenant all its rows share (if
    /// they do), in sequence order: what a live tail reads to resume or catch up.
    pub fn hot_batches(&self) -> Vec<HotBatch> {
        self.read().batches.clone()
    }

    /// Batch `seq`, while it is buffered (not yet flushed).
    pub fn batch(&self, seq: u64) -> Option<HotBatch> {
        let g = self.read();
        let at = g.batches.partition_point(|b| b.seq < seq);
        g.batches.get(at).filter(|b| b.seq == seq).cloned()
    }

    /// The batches a flush takes now, with the highest sequence number among them.
    pub fn freeze(&self) -> Option<(u64, Vec<RecordBatch>)> {
        let g = self.read();
        let last = g.batches.last()?.seq;
        Some((last, g.batches.iter().map(|b| b.batch.clone()).collect()))
    }

    /// Drops every batch with sequence number ≤ `seq` (they now live in segments).
    pub fn retire_through(&self, seq: u64) {
        let mut g = self.write();
        let keep = g.batches.partition_point(|b| b.seq <= seq);
        let gone: Vec<HotBatch> = g.batches.drain(..keep).collect();
        g.bytes -= gone.iter().map(|b| b.bytes).sum::<usize>();
        g.rows -= gone.iter().map(|b| b.batch.num_rows()).sum::<usize>();
        g.oldest = if g.batches.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
    }

    /// Buffered bytes.
    pub fn bytes(&self) -> usize {
        self.read().bytes
    }

    /// Buffered rows.
    pub fn rows(&self) -> usize {
        self.read().rows
    }

    /// How long the oldest buffered batch has waited.
    pub fn age(&self) -> std::time::Duration {
        self.read().oldest.map(|t| t.elapsed()).unwrap_or_default()
    }

    /// How full the buffer is relative to its cap: shippers are told to slow down well before
    /// the cap refuses them.
    pub fn pressure(&self) -> Pressure {
        let bytes = self.bytes();
        if bytes >= self.max_bytes / 2 {
            Pressure::Critical
        } else if bytes >= self.max_bytes / 4 {
            Pressure::Elevated
        } else {
            Pressure::Normal
        }
    }

    /// True when new batches must wait: the buffer is at its cap, flushing cannot keep up.
    pub fn is_full(&self) -> bool {
        self.bytes() >= self.max_bytes
    }
}

impl WalSink for HotBuffer {
    fn publish(&self, seq: u64, batch: RecordBatch) {
        self.push(seq, batch);
    }
}

/// The tenant every row of `batch` has, if they share one.
pub fn one_tenant(batch: &RecordBatch) -> Option<Arc<str>> {
    use datafusion::arrow::array::{Array, AsArray};
    let column = batch.column_by_name("tenant")?.as_string_opt::<i32>()?;
    if column.null_count() > 0 || column.is_empty() {
        return None;
    }
    let first = column.value(0);
    column
        .iter()
        .all(|t| t == Some(first))
        .then(|| Arc::from(first))
}
