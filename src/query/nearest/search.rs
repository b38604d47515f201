//! The ring search behind `nearest` and `log_context` over one [`Snapshot`].
//!
//! The covered window is `[T - left, T + right]`. Every ring widens it and reads only the slices
//! it adds (one or two `ts` ranges): segments whose catalog range misses them are never opened,
//! the rest are read through DataFusion's Parquet source with the ranges as predicate (row
//! groups and pages pruned by statistics and the page index), and every hot batch — sorted by
//! `ts` — is cut to the ranges by binary search. Steps start from the data's density near `T`,
//! grow eightfold, and jump straight across stretches where no source has rows. Because each
//! window holds *every* matching row within it, the rows it selects are exact.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::kernels::cmp::{eq, lt};
use datafusion::arrow::compute::{
    concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch, SortColumn,
};
use datafusion::arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::execution::context::ExecutionProps;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{col, lit, Expr};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use datafusion::physical_plan::{collect, PhysicalExpr};
use timberline_udfs::nearest::kernel;

use super::{NearestSpec, Selection};
use crate::catalog::SegmentMeta;
use crate::model::logs_schema;
use crate::query::prune::keep_by_time;
use crate::query::source::parquet_exec;
use crate::store::{Snapshot, Store};

/// Each ring's step is this many times the last one.
const GROWTH: i64 = 8;
/// The smallest first step (µs).
const MIN_STEP: i64 = 100;

/// What a search did, for `EXPLAIN ANALYZE`.
#[derive(Debug, Clone)]
pub struct SearchMetrics {
    pub rings: Count,
    pub segment_scans: Count,
    pub rows_decoded: Count,
    pub hot_rows_examined: Count,
}

impl SearchMetrics {
    pub fn new(set: &ExecutionPlanMetricsSet) -> SearchMetrics {
        let c = |name: &'static str| MetricBuilder::new(set).global_counter(name);
        SearchMetrics {
            rings: c("rings"),
            segment_scans: c("segment_scans"),
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
    let mut found: Vec<RecordBatch> = Vec::new();
    if sources.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let t = spec.target;
    let (need_left, need_right) = match spec.selection {
        Selection::Nearest { k } => (k, k),
        Selection::Context { before, after } => (before, after),
    };
    let step0 = first_step(&sources, t, need_left.max(need_right).max(1));
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
        for batch in read_ranges(store, &sources, &ranges, spec, &task, metrics).await? {
            let ts = ts_values(&batch);
            let b = ts.iter().filter(|&&x| x < t).count();
            let a = ts.iter().filter(|&&x| x > t).count();
            below += b;
            above += a;
            total += ts.len();
            found.push(batch);
        }
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
    select(&schema, &found, t, spec.selection)
}

/// The next left reach: one step further, or across an empty stretch to the next source's end.
fn grow_left(sources: &[Source], t: i64, side: Side, step0: i64) -> Side {
    let edge = t.saturating_sub(side.reach).saturating_sub(1); // the first uncovered instant
    let want = t.saturating_sub(side.reach.saturating_add(side.step));
    if sources.iter().any(|s| s.max >= want && s.min <= edge) {
        return Side {
            reach: side.reach.saturating_add(side.step),
            step: side.step.saturating_mul(GROWTH),
            exhausted: false,
        };
    }
    match sources
        .iter()
        .filter(|s| s.min <= edge)
        .map(|s| s.max)
        .max()
    {
        Some(end) => Side {
            reach: t.saturating_sub(end).saturating_add(step0),
            step: step0.saturating_mul(GROWTH),
            exhausted: false,
        },
        None => Side {
            exhausted: true,
            ..side
        },
    }
}

/// The mirror image of [`grow_left`].
fn grow_right(sources: &[Source], t: i64, side: Side, step0: i64) -> Side {
    let edge = t.saturating_add(side.reach).saturating_add(1);
    let want = t.saturating_add(side.reach.saturating_add(side.step));
    if sources.iter().any(|s| s.min <= want && s.max >= edge) {
        return Side {
            reach: side.reach.saturating_add(side.step),
            step: side.step.saturating_mul(GROWTH),
            exhausted: false,
        };
    }
    match sources
        .iter()
        .filter(|s| s.max >= edge)
        .map(|s| s.min)
        .min()
    {
        Some(start) => Side {
            reach: start.saturating_sub(t).saturating_add(step0),
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

/// Every matching row whose `ts` falls in one of `ranges` (inclusive bounds).
async fn read_ranges(
    store: &Store,
    sources: &[Source<'_>],
    ranges: &[(i64, i64)],
    spec: &NearestSpec,
    task: &Arc<TaskContext>,
    metrics: &SearchMetrics,
) -> Result<Vec<RecordBatch>> {
    let ranges: Vec<(i64, i64)> = ranges.iter().copied().filter(|(lo, hi)| lo <= hi).collect();
    let hits = |s: &Source| ranges.iter().any(|&(lo, hi)| s.min <= hi && s.max >= lo);
    let mut out = Vec::new();
    let segments: Vec<&SegmentMeta> = sources
        .iter()
        .filter(|s| hits(s))
        .filter_map(|s| match &s.kind {
            SourceKind::Segment(m) => Some(*m),
            SourceKind::Hot(_) => None,
        })
        .collect();
    if !segments.is_empty() {
        let schema = logs_schema();
        let predicate = ring_predicate(&schema, &ranges, spec)?;
        metrics.segment_scans.add(segments.len());
        let plan = parquet_exec(
            &store.data_dir,
            &schema,
            &segments,
            None,
            Some(predicate.clone()),
            task.session_config().target_partitions(),
            task.runtime_env().as_ref(),
        )?;
        for batch in collect(plan, task.clone()).await? {
            metrics.rows_decoded.add(batch.num_rows());
            let kept = apply(&predicate, &batch)?;
            if kept.num_rows() > 0 {
                out.push(kept);
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
                out.push(kept);
            }
        }
    }
    Ok(out)
}

/// `(ts in one of ranges) AND <the other conditions>`, planned against the `logs` schema.
fn ring_predicate(
    schema: &SchemaRef,
    ranges: &[(i64, i64)],
    spec: &NearestSpec,
) -> Result<Arc<dyn PhysicalExpr>> {
    let ts = |v: i64| {
        lit(ScalarValue::TimestampMicrosecond(
            Some(v),
            Some("UTC".into()),
        ))
    };
    let in_ranges = ranges
        .iter()
        .map(|&(lo, hi)| col("ts").gt_eq(ts(lo)).and(col("ts").lt_eq(ts(hi))))
        .reduce(Expr::or)
        .unwrap_or(lit(false));
    let df_schema = DFSchema::try_from(schema.clone())?;
    let in_ranges = create_physical_expr(
        &in_ranges,
        &df_schema,
        &ExecutionProps::new(),
        &PhysicalPlanningContext::default(),
    )?;
    Ok(match &spec.predicate {
        Some(p) => Arc::new(datafusion::physical_expr::expressions::BinaryExpr::new(
            in_ranges,
            datafusion::logical_expr::Operator::And,
            p.clone(),
        )),
        None => in_ranges,
    })
}

/// The rows of `batch` for which `predicate` is true (NULL counts as false).
fn apply(predicate: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<RecordBatch> {
    let mask = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
    let mask: &BooleanArray = mask.as_boolean();
    Ok(filter_record_batch(batch, mask)?)
}

/// The microsecond values of a `logs` batch's `ts` column.
pub fn ts_values(batch: &RecordBatch) -> &[i64] {
    batch
        .column(0)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .map_or(&[], |a| a.values().as_ref())
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
