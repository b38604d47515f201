//! One tail stream: the backfill (rows since `since`, or after the client's last event id) from a
//! view pinned at WAL sequence number S, then every batch published after S, filtered, into a
//! bounded queue its client reads. Nothing is sent twice and nothing between is missed: the
//! stream subscribes before it pins the view, and skips live batches the view already held.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{col, SortExpr};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::event::{time_text, Columns, Cursor};
use super::filter::{ts_lit, TailSpec};
use super::{Hub, Place, Published};
use crate::buffer::HotBatch;
use crate::metrics::metrics;
use crate::query::pinned::read_pinned;
use crate::store::{Pinned, Store};

/// What a stream sends its client.
#[derive(Debug, Clone, PartialEq)]
pub enum TailEvent {
    /// A row: its id and its JSON.
    Row { id: String, json: String },
    /// Rows that matched but were not sent: `count` of them (`None` when they left the hot
    /// buffer before the stream read them, uncounted), and why.
    Dropped {
        count: Option<u64>,
        reason: &'static str,
    },
    /// The backfill held more rows than its limit: only the newest `sent` are sent, the
    /// oldest of them at `from`.
    Truncated { sent: usize, from: String },
    /// The backfill is over: from here on rows arrive as they are ingested.
    Live,
}

/// Opens a stream for `tenant`: its backfill (per `spec` and `resume`) is read before this
/// returns, so a bad filter is an error here, not a closed stream.
pub async fn open(
    hub: &Arc<Hub>,
    store: &Arc<Store>,
    place: Place,
    tenant: &str,
    spec: TailSpec,
    resume: Option<Cursor>,
) -> Result<mpsc::Receiver<TailEvent>, DataFusionError> {
    let live = hub.subscribe();
    let pinned = store.pinned();
    let backfill = backfill(store, &pinned, tenant, &spec, resume).await?;
    let (tx, rx) = mpsc::channel(hub.limits.queue);
    let stream = Producer {
        tx,
        spec,
        tenant: Arc::from(tenant),
        store: store.clone(),
        cursor: pinned.through,
        dropped: 0,
        _place: place,
    };
    tokio::spawn(stream.run(backfill, live));
    Ok(rx)
}

/// The events of the backfill, in order.
async fn backfill(
    store: &Arc<Store>,
    pinned: &Pinned,
    tenant: &str,
    spec: &TailSpec,
    resume: Option<Cursor>,
) -> Result<Vec<TailEvent>, DataFusionError> {
    let mine: Vec<_> = pinned
        .segments
        .iter()
        .filter(|s| s.tenant == tenant)
        .cloned()
        .collect();
    let mut events = Vec::new();
    match resume {
        // Everything after the client's last row is still hot: exact, by sequence number.
        Some(Cursor::Live { seq, row, .. }) if pinned.flushed <= seq => {
            for b in pinned.hot.iter().filter(|b| b.seq >= seq) {
                let skip = if b.seq == seq { row as usize + 1 } else { 0 };
                live_rows(&spec.live, b.seq, &b.batch, skip, &mut |e| events.push(e))?;
            }
        }
        // Some of it is in segments now, which know no sequence numbers: by receive time (the
        // rest of the client's last request: by event time after its last row's).
        Some(Cursor::Live {
            seq,
            row,
            ingest,
            ts,
        }) => {
            let later = col("ingest_ts").gt(ts_lit(ingest));
            let rest_of_request = col("ingest_ts")
                .eq(ts_lit(ingest))
                .and(col("ts").gt(ts_lit(ts)));
            let rows = spec.rows.clone().and(later.or(rest_of_request));
            let order = ["ingest_ts", "ts", "service", "host", "msg"];
            let found = newest(store, mine, rows, &order, spec.limit, &mut events).await?;
            for batch in &found {
                let Some(c) = Columns::of(batch) else {
                    continue;
                };
                for i in 0..batch.num_rows() {
                    let id = Cursor::Live {
                        seq,
                        row,
                        ingest: c.ingest(i),
                        ts: c.ts(i),
                    };
                    events.push(TailEvent::Row {
                        id: id.render(),
                        json: c.json(i),
                    });
                }
            }
            for b in pinned.hot.iter().filter(|b| b.seq > seq) {
                live_rows(&spec.live, b.seq, &b.batch, 0, &mut |e| events.push(e))?;
            }
        }
        Some(Cursor::Backfill { ts, k, .. }) => {
            by_time(store, pinned, mine, spec, ts, Some(k), &mut events).await?;
        }
        None => {
            if let Some(since) = spec.since {
                by_time(store, pinned, mine, spec, since, None, &mut events).await?;
            }
        }
    }
    Ok(events)
}

/// The backfill of rows with `ts` ≥ `from`, in time order; with `seen`, the client already
/// has the first `seen + 1` rows at exactly `from`.
async fn by_time(
    store: &Arc<Store>,
    pinned: &Pinned,
    segments: Vec<Arc<crate::catalog::SegmentMeta>>,
    spec: &TailSpec,
    from: i64,
    seen: Option<u32>,
    events: &mut Vec<TailEvent>,
) -> Result<(), DataFusionError> {
    let rows = spec.rows.clone().and(col("ts").gt_eq(ts_lit(from)));
    let order = ["ts", "ingest_ts", "service", "host", "msg"];
    let hot: Vec<RecordBatch> = pinned.hot.iter().map(|b| b.batch.clone()).collect();
    let found = newest_of(store, segments, hot, rows, &order, spec.limit, events).await?;
    let mut skip = seen.map_or(0, |k| k as usize + 1);
    let (mut last_ts, mut k) = (i64::MIN, 0u32);
    for batch in &found {
        let Some(c) = Columns::of(batch) else {
            continue;
        };
        for i in 0..batch.num_rows() {
            let ts = c.ts(i);
            if ts == last_ts {
                k += 1;
            } else {
                (last_ts, k) = (ts, 0);
            }
            if ts == from && skip > 0 {
                skip -= 1;
                continue;
            }
            let id = Cursor::Backfill {
                through: pinned.through,
                ts,
                k,
            };
            events.push(TailEvent::Row {
                id: id.render(),
                json: c.json(i),
            });
        }
    }
    Ok(())
}

/// [`newest_of`] over segments only.
async fn newest(
    store: &Arc<Store>,
    segments: Vec<Arc<crate::catalog::SegmentMeta>>,
    rows: datafusion::logical_expr::Expr,
    order: &[&str],
    limit: usize,
    events: &mut Vec<TailEvent>,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    newest_of(store, segments, Vec::new(), rows, order, limit, events).await
}

/// The newest `limit` rows passing `rows`, oldest first by `order`; when there were more, a
/// [`TailEvent::Truncated`] goes first.
async fn newest_of(
    store: &Arc<Store>,
    segments: Vec<Arc<crate::catalog::SegmentMeta>>,
    hot: Vec<RecordBatch>,
    rows: datafusion::logical_expr::Expr,
    order: &[&str],
    limit: usize,
    events: &mut Vec<TailEvent>,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    let desc: Vec<SortExpr> = order.iter().map(|c| col(*c).sort(false, true)).collect();
    let found = read_pinned(store.clone(), segments, hot, rows, desc, limit + 1).await?;
    let mut batch = match found.as_slice() {
        [] => return Ok(Vec::new()),
        [one] => one.clone(),
        many => datafusion::arrow::compute::concat_batches(&many[0].schema(), many)?,
    };
    if batch.num_rows() > limit {
        batch = batch.slice(0, limit);
        let from = Columns::of(&batch)
            .filter(|_| limit > 0)
            .map(|c| time_text(c.ts(limit - 1)))
            .unwrap_or_default();
        events.push(TailEvent::Truncated { sent: limit, from });
    }
    let reversed: Vec<u32> = (0..batch.num_rows() as u32).rev().collect();
    let indices = datafusion::arrow::array::UInt32Array::from(reversed);
    let columns = batch
        .columns()
        .iter()
        .map(|c| datafusion::arrow::compute::take(c, &indices, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![RecordBatch::try_new(batch.schema(), columns)?])
}

/// Calls `emit` with each row of batch `seq` (from row `skip` on) that passes `filter`.
fn live_rows(
    filter: &crate::query::pinned::RowFilter,
    seq: u64,
    batch: &RecordBatch,
    skip: usize,
    emit: &mut dyn FnMut(TailEvent),
) -> Result<(), DataFusionError> {
    if skip >= batch.num_rows() {
        return Ok(());
    }
    let mask = filter.mask(batch)?;
    let Some(c) = Columns::of(batch) else {
        return Ok(());
    };
    for i in skip..batch.num_rows() {
        if !mask.value(i) {
            continue;
        }
        let id = Cursor::Live {
            seq,
            row: i as u32,
            ingest: c.ingest(i),
            ts: c.ts(i),
        };
        emit(TailEvent::Row {
            id: id.render(),
            json: c.json(i),
        });
    }
    Ok(())
}

/// The task feeding one stream's queue.
struct Producer {
    tx: mpsc::Sender<TailEvent>,
    spec: TailSpec,
    tenant: Arc<str>,
    store: Arc<Store>,
    /// Every batch up to this sequence number has been dealt with.
    cursor: u64,
    /// Matching rows not sent since the last `dropped` event.
    dropped: u64,
    _place: Place,
}

impl Producer {
    async fn run(
        mut self,
        backfill: Vec<TailEvent>,
        mut live: tokio::sync::broadcast::Receiver<Arc<Published>>,
    ) {
        // The backfill waits for its client (it is bounded); live rows never do.
        for e in backfill.into_iter().chain([TailEvent::Live]) {
            if self.tx.send(e).await.is_err() {
                return;
            }
        }
        loop {
            let next = tokio::select! {
                next = live.recv() => next,
                _ = self.tx.closed() => return,
            };
            let ok = match next {
                Ok(p) => self.deliver(p.seq, &p.batch, p.tenant.as_deref()),
                Err(RecvError::Lagged(_)) => self.catch_up(),
                Err(RecvError::Closed) => return,
            };
            if !ok {
                return;
            }
        }
    }

    /// Sends batch `seq`'s matching rows; false once the client is gone.
    fn deliver(&mut self, seq: u64, batch: &RecordBatch, tenant: Option<&str>) -> bool {
        if seq <= self.cursor {
            return true;
        }
        self.cursor = seq;
        if tenant.is_some_and(|t| t != &*self.tenant) {
            return true;
        }
        let mut rows = Vec::new();
        if let Err(e) = live_rows(&self.spec.live, seq, batch, 0, &mut |e| rows.push(e)) {
            tracing::warn!(error = %e, seq, "tail filter failed on a batch");
            return true;
        }
        rows.into_iter().all(|row| self.offer(row))
    }

    /// Queues `event` if there is room; counts it as dropped if not. False once the client
    /// is gone.
    fn offer(&mut self, event: TailEvent) -> bool {
        if self.dropped > 0 {
            let told = TailEvent::Dropped {
                count: Some(self.dropped),
                reason: "the client read slower than rows arrived; its queue was full",
            };
            match self.tx.try_send(told) {
                Ok(()) => {
                    metrics().tail_dropped.inc_by(self.dropped);
                    self.dropped = 0;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.dropped += 1;
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        match self.tx.try_send(event) {
            Ok(()) => {
                metrics().tail_rows.inc();
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped += 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// After falling behind the hub's ring: reads what it missed from the hot buffer.
    fn catch_up(&mut self) -> bool {
        let pinned = self.store.pinned();
        if pinned.flushed > self.cursor {
            // Some batches left the hot buffer before this stream read them.
            let told = TailEvent::Dropped {
                count: None,
                reason: "rows were flushed before this stream read them; reopen it with since to read them from the store",
            };
            if matches!(
                self.tx.try_send(told),
                Err(mpsc::error::TrySendError::Closed(_))
            ) {
                return false;
            }
            self.cursor = pinned.flushed;
        }
        let hot: Vec<HotBatch> = pinned.hot;
        for b in hot {
            let tenant = b.tenant.clone();
            if !self.deliver(b.seq, &b.batch, tenant.as_deref()) {
                return false;
            }
        }
        true
    }
}
