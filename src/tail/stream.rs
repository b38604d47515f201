//! One tail stream: the backfill (see [`super::backfill`]) from a view pinned at WAL sequence
//! number S, then every batch published after S, filtered, into a bounded queue its client
//! reads. Nothing is sent twice and nothing between is missed: the stream subscribes before it
//! pins the view, and skips live batches the view already held. A row is lost only when its
//! client cannot keep up — the queue is full (counted), or the stream fell so far behind that
//! the batch was flushed out of the hot buffer before it read it — and the client is told.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::event::{matching, Cursor, TailEvent};
use super::filter::TailSpec;
use super::{Hub, Place, Published};
use crate::buffer::HotBuffer;
use crate::metrics::metrics;
use crate::store::Store;

/// How often a stream retries telling its client what it dropped, when no row comes to carry it.
const RETELL: Duration = Duration::from_secs(1);

/// Opens a stream for `tenant`: its backfill (per `spec` and `resume`) is read before this
/// returns, so a bad filter is an error here, not a closed stream. Both the backfill and the
/// stream's filtering run on the hub's `work` runtime (the query threads).
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
    let backfill = {
        let (store, pinned, tenant, spec) = (
            store.clone(),
            pinned.clone(),
            tenant.to_string(),
            spec.clone(),
        );
        hub.work
            .spawn(
                async move { super::backfill::read(&store, &pinned, &tenant, &spec, resume).await },
            )
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??
    };
    let (tx, rx) = mpsc::channel(hub.limits.queue);
    let stream = Producer {
        tx,
        spec,
        tenant: Arc::from(tenant),
        store: store.clone(),
        buffer: store.buffer.clone(),
        cursor: pinned.through,
        dropped: 0,
        lost: false,
        _place: place,
    };
    hub.work.spawn(stream.run(backfill, live));
    Ok(rx)
}

/// The task feeding one stream's queue.
struct Producer {
    tx: mpsc::Sender<TailEvent>,
    spec: TailSpec,
    tenant: Arc<str>,
    store: Arc<Store>,
    buffer: Arc<HotBuffer>,
    /// Every batch up to this sequence number has been dealt with.
    cursor: u64,
    /// Matching rows not sent (the queue was full) and not yet told.
    dropped: u64,
    /// Batches left the hot buffer before this stream read them, not yet told.
    lost: bool,
    _place: Place,
}

/// The client has gone.
struct Gone;

impl Producer {
    async fn run(
        mut self,
        backfill: Vec<TailEvent>,
        mut live: tokio::sync::broadcast::Receiver<Published>,
    ) {
        // The backfill waits for its client (it is bounded); live rows never do.
        for e in backfill.into_iter().chain([TailEvent::Live]) {
            if self.tx.send(e).await.is_err() {
                return;
            }
        }
        let mut retell = tokio::time::interval(RETELL);
        loop {
            let step = tokio::select! {
                next = live.recv() => match next {
                    Ok(p) => self.follow(p.seq, p.tenant.as_deref()),
                    Err(RecvError::Lagged(_)) => self.catch_up(),
                    Err(RecvError::Closed) => Err(Gone),
                },
                _ = retell.tick() => self.tell().map(|_| ()),
                _ = self.tx.closed() => Err(Gone),
            };
            if step.is_err() {
                return;
            }
        }
    }

    /// Deals with batch `seq` (of `tenant`, when it has one).
    fn follow(&mut self, seq: u64, tenant: Option<&str>) -> Result<(), Gone> {
        if seq <= self.cursor {
            return Ok(());
        }
        self.cursor = seq;
        if tenant.is_some_and(|t| t != &*self.tenant) {
            return Ok(());
        }
        match self.buffer.batch(seq) {
            Some(b) => self.deliver(seq, &b.batch),
            None => {
                // Flushed before this stream got to it.
                self.lost = true;
                Ok(())
            }
        }
    }

    fn deliver(&mut self, seq: u64, batch: &RecordBatch) -> Result<(), Gone> {
        let mut rows = Vec::new();
        let found = matching(&self.spec.live, seq, batch, 0, &mut |_, id, json| {
            rows.push(TailEvent::Row {
                id: id.render(),
                json,
            })
        });
        if let Err(e) = found {
            tracing::warn!(error = %e, seq, "tail filter failed on a batch");
            return Ok(());
        }
        rows.into_iter().try_for_each(|row| self.offer(row))
    }

    /// Tells the client what it lost, if there is room; true when nothing is left untold.
    fn tell(&mut self) -> Result<bool, Gone> {
        if self.lost {
            let told = TailEvent::Dropped {
                count: None,
                reason: "rows were flushed before this stream read them; reopen it with since to read them from the store",
            };
            match self.tx.try_send(told) {
                Ok(()) => self.lost = false,
                Err(mpsc::error::TrySendError::Full(_)) => return Ok(false),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Gone),
            }
        }
        if self.dropped > 0 {
            let told = TailEvent::Dropped {
                count: Some(self.dropped),
                reason: "the client read slower than rows arrived; its queue was full",
            };
            match self.tx.try_send(told) {
                Ok(()) => self.dropped = 0,
                Err(mpsc::error::TrySendError::Full(_)) => return Ok(false),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Gone),
            }
        }
        Ok(true)
    }

    /// Queues `event` if there is room (after what is still to be told); counts it as dropped
    /// if not.
    fn offer(&mut self, event: TailEvent) -> Result<(), Gone> {
        let sent = if self.tell()? {
            match self.tx.try_send(event) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => false,
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Gone),
            }
        } else {
            false
        };
        if sent {
            metrics().tail_rows.inc();
        } else {
            self.dropped += 1;
            metrics().tail_dropped.inc();
        }
        Ok(())
    }

    /// After falling behind the hub's ring: reads what it missed from the hot buffer.
    fn catch_up(&mut self) -> Result<(), Gone> {
        let pinned = self.store.pinned();
        if pinned.flushed > self.cursor {
            // Some batches left the hot buffer before this stream read them.
            self.lost = true;
            self.cursor = pinned.flushed;
        }
        for b in pinned.hot {
            if b.seq <= self.cursor {
                continue;
            }
            self.cursor = b.seq;
            if b.tenant.as_deref().is_some_and(|t| t != &*self.tenant) {
                continue;
            }
            self.deliver(b.seq, &b.batch)?;
        }
        Ok(())
    }
}
