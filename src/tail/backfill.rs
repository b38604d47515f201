//! What a stream sends before it goes live: the rows since `since`, or after the client's last
//! event id, read from a view pinned at one WAL sequence number — at most `limit` rows and
//! [`MAX_BYTES`] of JSON (the newest kept, an `event: truncated` saying from when), read within
//! [`READ_TIME`] and [`READ_MEMORY`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{col, Expr, SortExpr};

use super::event::{matching, time_text, Columns, Cursor, TailEvent};
use super::filter::{ts_lit, TailSpec};
use crate::catalog::SegmentMeta;
use crate::query::pinned::{read_pinned, RowFilter};
use crate::store::{Pinned, Store};

/// Most bytes of row JSON a backfill holds.
pub const MAX_BYTES: usize = 64 << 20;
/// Longest a backfill's read of the store may take.
pub const READ_TIME: Duration = Duration::from_secs(60);
/// Most memory a backfill's read of the store may use (its sort keeps `limit` rows).
pub const READ_MEMORY: usize = 256 << 20;

/// The backfill's rows, oldest first, bounded: past `limit` rows or [`MAX_BYTES`] the oldest go.
struct Collector {
    rows: VecDeque<(i64, TailEvent)>,
    bytes: usize,
    limit: usize,
    cut: bool,
}

impl Collector {
    fn new(limit: usize) -> Collector {
        Collector {
            rows: VecDeque::new(),
            bytes: 0,
            limit,
            cut: false,
        }
    }

    fn push(&mut self, ts: i64, id: Cursor, json: String) {
        self.bytes += json.len();
        self.rows.push_back((
            ts,
            TailEvent::Row {
                id: id.render(),
                json,
            },
        ));
        while self.rows.len() > self.limit || (self.bytes > MAX_BYTES && self.rows.len() > 1) {
            if let Some((_, TailEvent::Row { json, .. })) = self.rows.pop_front() {
                self.bytes -= json.len();
            }
            self.cut = true;
        }
    }

    fn finish(self) -> Vec<TailEvent> {
        let mut out = Vec::with_capacity(self.rows.len() + 1);
        if self.cut {
            out.push(TailEvent::Truncated {
                sent: self.rows.len(),
                from: self
                    .rows
                    .front()
                    .map(|r| time_text(r.0))
                    .unwrap_or_default(),
            });
        }
        out.extend(self.rows.into_iter().map(|(_, e)| e));
        out
    }
}

/// The backfill's events, in order.
pub async fn read(
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
    let mut out = Collector::new(spec.limit);
    match resume {
        // Everything after the client's last row is still hot: exact, by sequence number.
        Some(Cursor::Live { seq, row, .. }) if pinned.flushed < seq => {
            for b in pinned.hot.iter().filter(|b| b.seq >= seq) {
                let skip = if b.seq == seq { row as usize + 1 } else { 0 };
                live_rows(&spec.live, b.seq, &b.batch, skip, &mut out)?;
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
            for batch in newest(store, mine, Vec::new(), rows, &order, spec.limit).await? {
                let Some(c) = Columns::of(&batch) else {
                    continue;
                };
                for i in 0..batch.num_rows() {
                    let id = Cursor::Live {
                        seq,
                        row,
                        ingest: c.ingest(i),
                        ts: c.ts(i),
                    };
                    out.push(c.ts(i), id, c.json(i));
                }
            }
            for b in pinned.hot.iter().filter(|b| b.seq > seq) {
                live_rows(&spec.live, b.seq, &b.batch, 0, &mut out)?;
            }
        }
        Some(Cursor::Backfill { through, ts, k }) => {
            // Rows that came after the first view with a time before the cursor's would have
            // reached the client live: they come first.
            let late = RowFilter::compile(spec.rows.clone().and(col("ts").lt(ts_lit(ts))))?;
            for b in pinned.hot.iter().filter(|b| b.seq > through) {
                live_rows(&late, b.seq, &b.batch, 0, &mut out)?;
            }
            by_time(store, pinned, mine, spec, ts, Some(k), &mut out).await?;
        }
        None => {
            if let Some(since) = spec.since {
                by_time(store, pinned, mine, spec, since, None, &mut out).await?;
            }
        }
    }
    Ok(out.finish())
}

/// The rows with `ts` ≥ `from`, in time order; with `seen`, the client already has the first
/// `seen + 1` rows at exactly `from`.
async fn by_time(
    store: &Arc<Store>,
    pinned: &Pinned,
    segments: Vec<Arc<SegmentMeta>>,
    spec: &TailSpec,
    from: i64,
    seen: Option<u32>,
    out: &mut Collector,
) -> Result<(), DataFusionError> {
    let rows = spec.rows.clone().and(col("ts").gt_eq(ts_lit(from)));
    let order = ["ts", "ingest_ts", "service", "host", "msg"];
    let hot: Vec<RecordBatch> = pinned.hot.iter().map(|b| b.batch.clone()).collect();
    let mut skip = seen.map_or(0, |k| k as usize + 1);
    let (mut last_ts, mut k) = (i64::MIN, 0u32);
    for batch in newest(store, segments, hot, rows, &order, spec.limit).await? {
        let Some(c) = Columns::of(&batch) else {
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
            out.push(ts, id, c.json(i));
        }
    }
    Ok(())
}

/// The newest `limit` rows passing `rows`, oldest first by `order` (one more is read, so the
/// collector knows when it cut).
async fn newest(
    store: &Arc<Store>,
    segments: Vec<Arc<SegmentMeta>>,
    hot: Vec<RecordBatch>,
    rows: Expr,
    order: &[&str],
    limit: usize,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    let desc: Vec<SortExpr> = order.iter().map(|c| col(*c).sort(false, true)).collect();
    let read = read_pinned(
        store.clone(),
        segments,
        hot,
        rows,
        desc,
        limit.saturating_add(1),
        READ_MEMORY,
    );
    let found = tokio::time::timeout(READ_TIME, read).await.map_err(|_| {
        DataFusionError::ResourcesExhausted(format!(
            "the backfill took over {} s to read; narrow since or the filters",
            READ_TIME.as_secs()
        ))
    })??;
    let mut out = Vec::with_capacity(found.len());
    for batch in found.iter().rev() {
        let reversed: Vec<u32> = (0..batch.num_rows() as u32).rev().collect();
        let indices = datafusion::arrow::array::UInt32Array::from(reversed);
        let columns = batch
            .columns()
            .iter()
            .map(|c| datafusion::arrow::compute::take(c, &indices, None))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(RecordBatch::try_new(batch.schema(), columns)?);
    }
    Ok(out)
}

/// Puts batch `seq`'s rows passing `filter` (from row `skip` on) into `out`.
fn live_rows(
    filter: &RowFilter,
    seq: u64,
    batch: &RecordBatch,
    skip: usize,
    out: &mut Collector,
) -> Result<(), DataFusionError> {
    matching(filter, seq, batch, skip, &mut |ts, id, json| {
        out.push(ts, id, json)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> Cursor {
        Cursor::Backfill {
            through: 1,
            ts: n,
            k: 0,
        }
    }

    #[test]
    fn the_collector_keeps_the_newest_and_says_from_when() {
        let mut c = Collector::new(2);
        for n in 0..5 {
            c.push(n * 1_000_000, id(n), format!("{{\"n\":{n}}}"));
        }
        let out = c.finish();
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0],
            TailEvent::Truncated {
                sent: 2,
                from: "1970-01-01T00:00:03.000000Z".into()
            }
        );
        let mut all = Collector::new(10);
        all.push(0, id(0), "{}".into());
        assert_eq!(all.finish().len(), 1, "nothing cut, no truncated event");
    }
}
