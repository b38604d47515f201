//! The ring search behind `nearest` and `log_context` over one [`Snapshot`].
//!
//! The covered window is `[T - left, T + right]`. Every ring widens it and reads only the slices
//! it adds (one or two `ts` ranges): segments whose catalog range misses them are never opened;
//! in the rest, only `ts` and the conditions' columns of the pages that can hold the ranges are
//! decoded ([`SegmentFile::find`]); every hot batch — sorted by `ts` — is cut to the ranges by
//! binary search. Steps start from the data's density near `T`, grow eightfold, and jump straight
//! across stretches where no source has rows. Because each window holds *every* matching row
//! within it, the rows it selects are exact. Full rows are decoded once, at the end, for the rows
//! that can still win ([`SegmentFile::fetch`]).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::kernels::cmp::{eq, lt};
use datafusion::arrow::compute::{
    concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch, SortColumn,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use timberline_udfs::nearest::kernel;

use super::segment_read::{Found, SegmentFile};
use super::spec::{NearestSpec, Selection};
use crate::catalog::SegmentMeta;
use crate::model::{logs_schema, ts_values};
use crate::query::prune::keep_by_time;
use crate::store::{Snapshot, Store};

/// Each ring's step is this many times the last one.
const GROWTH: i64 = 8;
/// The smallest first step (µs).
const MIN_STEP: i64 = 100;
/// The first ring aims at this many rows at least: finding rows decodes only `ts` and the
/// conditions' columns, a page of which holds thousands, so a wider first ring costs about
/// nothing and spares filtered searches their extra rings.
const FIRST_RING_ROWS: usize = 256;

/// What a search did, for `EXPLAIN ANALYZE`.
#[derive(Debug, Clone)]
pub struct SearchMetrics {
    pub rings: Count,
    pub segment_scans: Count,
    pub keys_decoded: Count,
    pub rows_decoded: Count,
    pub hot_rows_examined: Count,
}

impl SearchMetrics {
    pub fn new(set: &ExecutionPlanMetricsSet) -> SearchMetrics {
        let c = |name: &'static str| MetricBuilder::new(set).global_counter(name);
        SearchMetrics {
            rings: c("rings"),
            segment_scans: c("segment_scans"),
            keys_decoded: c("keys_decoded"),
            rows_decoded: c("rows_decoded"),
            hot_rows_examined: c("hot_rows_examined"),
        }
    }
}

/// Where rows may be: a segment or a hot batch, with its `ts` range.
struct Source<'a> {
    min: i64,
    max: i64,
    rows: u64,
    kind: SourceKind<'a>,
}

enum SourceKind<'a> {
    Segment(&'a SegmentMeta),
    Hot(RecordBatch),
}

/// One side of the window: how far it reaches from `T` and how far the next ring goes.
#[derive(Debug, Clone, Copy)]
struct Side {
    reach: i64,
    step: i64,
    exhausted: bool,
}

/// Runs `spec` over `snap`; returns full `logs` rows in the selection's order.
pub async fn search(
    store: &Store,
    snap: &Snapshot,
    spec: &NearestSpec,
    task: Arc<TaskContext>,
    metrics: &SearchMetrics,
) -> Result<RecordBatch> {
    let schema = logs_schema();
    let keep = keep_by_time(&snap.segments, spec.predicate.as_ref(), &schema);
    let mut sources: Vec<Source> = snap
        .segments
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(s, _)| Source {
            min: s.min_ts,
            max: s.max_ts,
            rows: s.rows,
            kind: SourceKind::Segment(s),
        })
        .collect();
    // Every hot batch is a run sorted by ts (built so by `records_to_batch`; debug builds assert it in `HotBuffer::push`).
    for batch in &snap.hot {
        let ts = ts_values(batch);
        if let (Some(&min), Some(&max)) = (ts.first(), ts.last()) {
            sources.push(Source {
                min,
                max,
                rows: ts.len() as u64,
                kind: SourceKind::Hot(batch.clone()),
            });
        }
    }
    let mut found = Candidates::default();
    if sources.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let t = spec.target;
    let (need_left, need_right) = match spec.selection {
        Selection::Nearest { k } => (k, k),
        Selection::Context { before, after } => (before, after),
    };
    let step0 = first_step(&sources, t, need_left.max(need_right).max(FIRST_RING_ROWS));
    let mut left = Side {
        reach: if need_left > 0 { step0 } else { 0 },
        step: step0,
        exhausted: false,
    };
    let mut right = Side {
        reach: step0,
        step: step0,
        exhausted: false,
    };
    let mut ranges = vec![(t.saturating_sub(left.reach), t.saturating_add(right.reach))];
    let (mut below, mut above, mut total) = (0usize, 0usize, 0usize);
    loop {
        metrics.rings.add(1);
        let ts = read_ranges(store, &sources, &ranges, spec, &task, metrics, &mut found).await?;
        below += ts.iter().filter(|&&x| x < t).count();
        above += ts.iter().filter(|&&x| x > t).count();
        total += ts.len();
        left.exhausted = left.exhausted || t.saturating_sub(left.reach) <= min_of(&sources);
        right.exhausted = right.exhausted || t.saturating_add(right.reach) >= max_of(&sources);
        ranges.clear();
        match spec.selection {
            Selection::Nearest { k } => {
                if total >= k || (left.exhausted && right.exhausted) {
                    break;
                }
                // Both sides move together, so the window is always every row within `reach`.
                let mut grown = Vec::new();
                if !left.exhausted {
                    let l = grow_left(&sources, t, left, step0);
                    left.exhausted = l.exhausted;
                    grown.push(l);
                }
                if !right.exhausted {
                    let r = grow_right(&sources, t, right, step0);
                    right.exhausted = r.exhausted;
                    grown.push(r);
                }
                let Some(next) = grown
                    .into_iter()
                    .filter(|s| !s.exhausted)
                    .min_by_key(|s| s.reach)
                else {
                    break;
                };
                ranges.push((
                    t.saturating_sub(next.reach),
                    t.saturating_sub(left.reach).saturating_sub(1),
                ));
                ranges.push((
                    t.saturating_add(right.reach).saturating_add(1),
                    t.saturating_add(next.reach),
                ));
                left = Side {
                    exhausted: left.exhausted,
                    ..next
                };
                right = Side {
                    exhausted: right.exhausted,
                    ..next
                };
            }
            Selection::Context { before, after } => {
                let left_done = below >= before || left.exhausted;
                let right_done = above >= after || right.exhausted;
                if left_done && right_done {
                    break;
                }
                if !left_done {
                    let next = grow_left(&sources, t, left, step0);
                    ranges.push((
                        t.saturating_sub(next.reach),
                        t.saturating_sub(left.reach).saturating_sub(1),
                    ));
                    left = next;
                }
                if !right_done {
                    let next = grow_right(&sources, t, right, step0);
                    ranges.push((
                        t.saturating_add(right.reach).saturating_add(1),
                        t.saturating_add(next.reach),
                    ));
                    right = next;
                }
            }
        }
    }
    let rows = fetch_winners(found, t, spec.selection, metrics).await?;
    select(&schema, &rows, t, spec.selection)
}

/// The next left reach: one step further, or across an empty stretch to the next source's end.
fn grow_left(sources: &[Source], t: i64, side: Side, step0: i64) -> Side {
    let edge = t.saturating_sub(side.reach).saturating_sub(1); // the first uncovered instant
    let want = t.saturating_sub(side.reach.saturating_add(side.step));
    let step_has_rows = sources.iter().any(|s| s.max >= want && s.min <= edge);
    let beyond = sources
        .iter()
        .filter(|s| s.min <= edge)
        .map(|s| t.saturating_sub(s.max))
        .min();
    grow(side, step0, step_has_rows, beyond)
}

/// The mirror image of [`grow_left`].
fn grow_right(sources: &[Source], t: i64, side: Side, step0: i64) -> Side {
    let edge = t.saturating_add(side.reach).saturating_add(1);
    let want = t.saturating_add(side.reach.saturating_add(side.step));
    let step_has_rows = sources.iter().any(|s| s.min <= want && s.max >= edge);
    let beyond = sources
        .iter()
        .filter(|s| s.max >= edge)
        .map(|s| s.min.saturating_sub(t))
        .min();
    grow(side, step0, step_has_rows, beyond)
}

/// One side's next reach: a step further if that step holds rows, else `step0` past the nearest
/// data beyond the edge (`beyond`: its distance from `T`), else exhausted.
fn grow(side: Side, step0: i64, step_has_rows: bool, beyond: Option<i64>) -> Side {
    if step_has_rows {
        return Side {
            reach: side.reach.saturating_add(side.step),
            step: side.step.saturating_mul(GROWTH),
            exhausted: false,
        };
    }
    match beyond {
        Some(distance) => Side {
            reach: distance.saturating_add(step0),
            step: step0.saturating_mul(GROWTH),
            exhausted: false,
        },
        None => Side {
            exhausted: true,
            ..side
        },
    }
}

fn min_of(sources: &[Source]) -> i64 {
    sources.iter().map(|s| s.min).min().unwrap_or(i64::MAX)
}

fn max_of(sources: &[Source]) -> i64 {
    sources.iter().map(|s| s.max).max().unwrap_or(i64::MIN)
}

/// A first step that should hold about `need` rows each side, judged by the density of the
/// source nearest to `t` (filters only make the search take more rings, never wrong).
fn first_step(sources: &[Source], t: i64, need: usize) -> i64 {
    let gap = |s: &Source| {
        if t < s.min {
            s.min.abs_diff(t)
        } else if t > s.max {
            t.abs_diff(s.max)
        } else {
            0
        }
    };
    let Some(nearest) = sources.iter().min_by_key(|s| gap(s)) else {
        return MIN_STEP;
    };
    let span = nearest.max.saturating_sub(nearest.min).max(1);
    let per_row = span / nearest.rows.max(1) as i64;
    per_row.saturating_mul(need as i64).max(MIN_STEP)
}

/// What the rings have found: full rows from hot batches, row positions from segments.
#[derive(Default)]
struct Candidates {
    hot: Vec<RecordBatch>,
    /// Per source index of a segment: its opened file and the rows found in it.
    segments: HashMap<usize, (Arc<SegmentFile>, Found)>,
}

impl Candidates {
    fn ts(&self) -> impl Iterator<Item = i64> + '_ {
        let hot = self.hot.iter().flat_map(|b| ts_values(b).iter().copied());
        let segs = self
            .segments
            .values()
            .flat_map(|(_, f)| f.ts.iter().copied());
        hot.chain(segs)
    }
}

/// Adds every matching row whose `ts` falls in one of `ranges` (inclusive bounds) to `found`;
/// returns their `ts` values.
async fn read_ranges(
    store: &Store,
    sources: &[Source<'_>],
    ranges: &[(i64, i64)],
    spec: &NearestSpec,
    task: &Arc<TaskContext>,
    metrics: &SearchMetrics,
    found: &mut Candidates,
) -> Result<Vec<i64>> {
    let ranges: Vec<(i64, i64)> = ranges.iter().copied().filter(|(lo, hi)| lo <= hi).collect();
    let hits = |s: &Source| ranges.iter().any(|&(lo, hi)| s.min <= hi && s.max >= lo);
    let mut new_ts = Vec::new();
    let mut work: Vec<(usize, Arc<SegmentFile>)> = Vec::new();
    for (i, source) in sources.iter().enumerate().filter(|(_, s)| hits(s)) {
        let SourceKind::Segment(seg) = source.kind else {
            continue;
        };
        let file = match found.segments.get(&i) {
            Some((file, _)) => file.clone(),
            None => {
                let file = Arc::new(
                    SegmentFile::open(&store.files, seg, task.runtime_env().as_ref()).await?,
                );
                found.segments.insert(i, (file.clone(), Found::default()));
                file
            }
        };
        work.push((i, file));
    }
    if !work.is_empty() {
        metrics.segment_scans.add(work.len());
        let (ring, predicate) = (ranges.clone(), spec.predicate.clone());
        let results = blocking(move || {
            work.into_iter()
                .map(|(i, file)| Ok((i, file.find(&ring, predicate.as_ref())?)))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
        for (i, (rows, keys)) in results {
            metrics.keys_decoded.add(keys);
            new_ts.extend_from_slice(&rows.ts);
            if let Some((_, all)) = found.segments.get_mut(&i) {
                all.rows.extend(rows.rows);
                all.ts.extend(rows.ts);
            }
        }
    }
    for source in sources.iter().filter(|s| hits(s)) {
        let SourceKind::Hot(batch) = &source.kind else {
            continue;
        };
        let ts = ts_values(batch);
        for &(lo, hi) in &ranges {
            let rows = kernel::range(ts, lo, hi);
            if rows.is_empty() {
                continue;
            }
            metrics.hot_rows_examined.add(rows.len());
            let slice = batch.slice(rows.start, rows.len());
            let kept = match &spec.predicate {
                Some(p) => apply(p, &slice)?,
                None => slice,
            };
            if kept.num_rows() > 0 {
                new_ts.extend_from_slice(ts_values(&kept));
                found.hot.push(kept);
            }
        }
    }
    Ok(new_ts)
}

/// The full rows of every candidate that can be in the answer: all of them but those farther
/// than the k-th nearest (or beyond the `before`-th / `after`-th row), ties kept.
async fn fetch_winners(
    found: Candidates,
    t: i64,
    selection: Selection,
    metrics: &SearchMetrics,
) -> Result<Vec<RecordBatch>> {
    let (lo, hi) = bounds(found.ts().collect(), t, selection);
    let mut batches = found.hot;
    let work: Vec<(Arc<SegmentFile>, Vec<u64>)> = found
        .segments
        .into_values()
        .filter_map(|(file, f)| {
            let mut rows: Vec<u64> = f
                .rows
                .iter()
                .zip(&f.ts)
                .filter(|(_, &v)| lo <= v && v <= hi)
                .map(|(&r, _)| r)
                .collect();
            rows.sort_unstable();
            (!rows.is_empty()).then_some((file, rows))
        })
        .collect();
    if !work.is_empty() {
        let fetched = blocking(move || {
            work.iter()
                .map(|(file, rows)| file.fetch(rows))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
        for batch in fetched {
            metrics.rows_decoded.add(batch.num_rows());
            batches.push(batch);
        }
    }
    Ok(batches)
}

/// The `ts` interval (inclusive) that holds every row the selection can pick from `ts`.
fn bounds(mut ts: Vec<i64>, t: i64, selection: Selection) -> (i64, i64) {
    match selection {
        Selection::Nearest { k } => {
            if ts.len() <= k || k == 0 {
                return (i64::MIN, i64::MAX);
            }
            let mut d: Vec<u64> = ts.iter().map(|&x| x.abs_diff(t)).collect();
            let (_, &mut kth, _) = d.select_nth_unstable(k - 1);
            let kth = i64::try_from(kth).unwrap_or(i64::MAX);
            (t.saturating_sub(kth), t.saturating_add(kth))
        }
        Selection::Context { before, after } => {
            ts.sort_unstable();
            let below = ts.partition_point(|&x| x < t);
            let above = ts.len() - ts.partition_point(|&x| x <= t);
            let lo = match before {
                0 => t,
                n if below >= n => ts[below - n],
                _ => i64::MIN,
            };
            let hi = match after {
                0 => t,
                n if above >= n => ts[ts.len() - above + n - 1],
                _ => i64::MAX,
            };
            (lo, hi)
        }
    }
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DataFusionError::Execution(format!("segment read task failed: {e}")))?
}

/// The rows of `batch` for which `predicate` is true (NULL counts as false).
fn apply(predicate: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<RecordBatch> {
    let mask = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
    let mask: &BooleanArray = mask.as_boolean();
    Ok(filter_record_batch(batch, mask)?)
}

fn sort_column(values: &ArrayRef) -> SortColumn {
    SortColumn {
        values: values.clone(),
        options: None,
    }
}

/// Orders what the rings found and keeps what the selection asks for.
fn select(
    schema: &SchemaRef,
    found: &[RecordBatch],
    t: i64,
    selection: Selection,
) -> Result<RecordBatch> {
    let all = concat_batches(schema, found)?;
    let column =
        |name: &str| -> Result<ArrayRef> { Ok(all.column(schema.index_of(name)?).clone()) };
    // Tie order after ts: service, host, msg — where the row lives never changes it.
    let mut keys = vec![
        sort_column(&column("ts")?),
        sort_column(&column("service")?),
        sort_column(&column("host")?),
        sort_column(&column("msg")?),
    ];
    match selection {
        Selection::Nearest { k } => {
            let distance: UInt64Array = ts_values(&all).iter().map(|&x| x.abs_diff(t)).collect();
            keys.insert(0, sort_column(&(Arc::new(distance) as ArrayRef)));
            let order = lexsort_to_indices(&keys, Some(k))?;
            Ok(take_record_batch(&all, &order)?)
        }
        Selection::Context { before, after } => {
            let order = lexsort_to_indices(&keys, None)?;
            let sorted = take_record_batch(&all, &order)?;
            let ts = sorted.column(0);
            let target =
                ScalarValue::TimestampMicrosecond(Some(t), Some("UTC".into())).to_scalar()?;
            let below = lt(ts, &target)?.true_count();
            let at = eq(ts, &target)?.true_count();
            let start = below.saturating_sub(before);
            let end = (below + at + after).min(sorted.num_rows());
            Ok(sorted.slice(start, end - start))
        }
    }
}
