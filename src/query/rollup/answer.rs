//! [`RollupAnswer`]: one aggregate over `logs` answered from a view's partials, as a table
//! whose rows are the aggregate's output.
//!
//! ```text
//!  segment with partials ─► its whole buckets in the range, rows passing the filters (states)
//!                          └► the rest of the range (a bound inside a bucket): scanned
//!  segment without them, hot rows ─► scanned, filtered, aggregated into states at query time
//!  all states ─► regrouped by the query's groups (ts = each bucket's first instant) ─► merged
//! ```
//! Every row in the range is in exactly one state: its segment's partials when its bucket
//! lies wholly inside the range, otherwise a state the scan makes.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{Int64Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{col, lit, Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::expressions::{Column as PhysColumn, Literal};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
// The one-call form; its replacement builder is not public API yet.
#[allow(deprecated)]
use datafusion::physical_planner::create_aggregate_expr_and_maybe_filter;

use super::partials::{Grain, Source};
use crate::catalog::SegmentMeta;
use crate::index::rollup::{RollupPlan, BUCKET};
use crate::model::logs_schema;
use crate::query::scan::{Counted, LogScanExec, ScanCounts, ScanHold};
use crate::query::scope::session_tenant;
use crate::query::source::require_data_file;
use crate::query::table::{hold_of, scan_rows};
use crate::store::Store;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};

/// How one aggregate is answered from one view (what the rewrite found).
#[derive(Debug, Clone)]
pub struct Fit {
    pub view: Arc<RollupPlan>,
    pub source: Source,
    /// The query's groups, over the partials' columns (`__bucket`, `__dimN`).
    pub groups: Vec<Expr>,
    /// The query's aggregates (normalized), and the view measure each one is.
    pub aggs: Vec<(Expr, usize)>,
    /// Every filter of the query, over `logs` (what the scanned rows must pass).
    pub filters: Vec<Expr>,
    /// The filters that are not `ts` bounds or the view's own, over the partials' columns.
    pub partial_filters: Vec<Expr>,
    /// The `ts` range of the filters (inclusive µs).
    pub lo: Option<i64>,
    pub hi: Option<i64>,
}

/// The answer of one aggregate; its columns are `c0…`, the aggregate's outputs in order.
#[derive(Debug)]
pub struct RollupAnswer {
    store: Arc<Store>,
    fit: Fit,
    schema: SchemaRef,
}

impl RollupAnswer {
    pub fn new(store: Arc<Store>, fit: Fit, schema: SchemaRef) -> RollupAnswer {
        RollupAnswer { store, fit, schema }
    }
}

fn ts_literal(v: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(v),
        Some("UTC".into()),
    ))
}

#[async_trait]
impl TableProvider for RollupAnswer {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let fit = &self.fit;
        let view = &fit.view;
        let snap = self.store.snapshot().for_tenant(&session_tenant(state)?)?;
        let in_range: Vec<Arc<SegmentMeta>> = fit.in_range(&snap.segments).cloned().collect();
        fit.source.prepare(&self.store, &in_range).await;
        let (from, to) = view.bucket.whole(fit.lo, fit.hi);

        // The count tables are tallied at the query's grain, over its whole buckets only.
        let grain = match fit.source {
            Source::CountTables => Grain::of(
                fit.groups
                    .iter()
                    .chain(&fit.partial_filters)
                    .flat_map(|e| e.column_refs())
                    .map(|c| c.name.as_str()),
                view.bucket,
                (from, to),
            ),
            Source::Files => None,
        };
        // The stored states of whole buckets that pass the filters.
        let bounds = grain.is_none().then_some((from, to));
        let keep = keep_predicate(fit, state, bounds)?;
        let count_measure = view.shape.measures.iter().position(super::is_count_star);
        let mut stored = Vec::new();
        // The states kept in memory count against the query's budget (53200 past it).
        let reserved =
            MemoryConsumer::new("rollup partials").register(&state.runtime_env().memory_pool);
        let mut counted = Counted::default();
        let (mut unrolled, mut edges) = (Vec::new(), Vec::new());
        for seg in &in_range {
            let Some(partials) = fit.source.partials(&self.store, view, seg, grain.as_ref()) else {
                unrolled.push(seg.clone());
                continue;
            };
            counted.segments += 1;
            if let Some(rows) = kept_states(&self.store, seg, &partials, keep.as_ref(), &reserved)?
            {
                if let Some(m) = count_measure {
                    let n = rows
                        .column(view.state_offsets[m])
                        .as_primitive::<Int64Type>();
                    counted.rows += n.iter().flatten().map(|v| v.max(0) as u64).sum::<u64>();
                }
                stored.push(rows);
            }
            if outside_whole(seg, (from, to)) {
                edges.push(seg.clone());
            }
        }
        let stored = concat_batches(&view.state_schema, &stored)?;
        reserved.try_grow(stored.get_array_memory_size())?;
        let pieces = Pieces {
            stored: vec![MemorySourceConfig::try_new_exec(
                &[vec![stored]],
                view.state_schema.clone(),
                None,
            )?],
            unrolled,
            edges,
            scans: ScanCounts {
                segments_total: snap.segments.len(),
                segments_pruned_time: snap.segments.len() - in_range.len(),
                counted: Some(counted),
                ..ScanCounts::default()
            },
        };
        let (merged, scans) = assemble(&self.store, fit, state, snap.hot, (from, to), pieces)?;
        let plan = outputs(&self.schema, projection, merged, &view.name)?;
        Ok(Arc::new(
            LogScanExec::new(
                plan,
                scans,
                ScanHold {
                    reserved: Some(Arc::new(reserved)),
                    ..hold_of(&self.store, &snap.segments)
                },
            )
            .from_rollup(&view.name),
        ))
    }
}

impl Fit {
    /// The segments whose time range meets the query's.
    pub(super) fn in_range<'a>(
        &'a self,
        segments: &'a [Arc<SegmentMeta>],
    ) -> impl Iterator<Item = &'a Arc<SegmentMeta>> + 'a {
        segments.iter().filter(|s| {
            !(self.lo.is_some_and(|lo| s.max_ts < lo) || self.hi.is_some_and(|hi| s.min_ts > hi))
        })
    }
}

/// True if `seg` holds rows outside the whole buckets `[from, to)` (an edge: those rows are
/// scanned).
pub(super) fn outside_whole(seg: &SegmentMeta, (from, to): (i64, i64)) -> bool {
    seg.min_ts < from || seg.max_ts >= to
}

/// The rows of `seg`'s `states` that `keep` passes (none: `None`), reserved in the query's
/// pool. States must answer only for rows a scan could still read: the segment's file is
/// checked.
pub(super) fn kept_states(
    store: &Store,
    seg: &SegmentMeta,
    states: &RecordBatch,
    keep: Option<&Arc<dyn datafusion::physical_plan::PhysicalExpr>>,
    reserved: &MemoryReservation,
) -> Result<Option<RecordBatch>> {
    let mut rows = states.clone();
    if let Some(keep) = keep {
        let mask = keep.evaluate(&rows)?.into_array(rows.num_rows())?;
        rows = filter_record_batch(&rows, mask.as_boolean())?;
    }
    if rows.num_rows() == 0 {
        return Ok(None);
    }
    require_data_file(&store.files, seg)?;
    reserved.try_grow(rows.get_array_memory_size())?;
    Ok(Some(rows))
}

/// The parts of an answer: plans of the states kept for whole buckets (already restricted to
/// them by [`keep_predicate`]), the segments in range with no states (`unrolled`), and those
/// with states that also hold rows outside the whole buckets (`edges`).
pub(super) struct Pieces {
    pub stored: Vec<Arc<dyn ExecutionPlan>>,
    pub unrolled: Vec<Arc<SegmentMeta>>,
    pub edges: Vec<Arc<SegmentMeta>>,
    pub scans: ScanCounts,
}

/// The predicate over a view's states keeping those that pass the query's filters on the
/// partials, and with `bounds`, only the whole buckets `[from, to)` (without: the states are
/// already of those buckets).
pub(super) fn keep_predicate(
    fit: &Fit,
    state: &dyn Session,
    bounds: Option<(i64, i64)>,
) -> Result<Option<Arc<dyn datafusion::physical_plan::PhysicalExpr>>> {
    let state_df = DFSchema::try_from(fit.view.state_schema.as_ref().clone())?;
    let bucket_col = || Expr::Column(Column::new_unqualified(BUCKET));
    let mut keep = Vec::new();
    let (from, to) = bounds.unwrap_or((i64::MIN, i64::MAX));
    if from > i64::MIN {
        keep.push(bucket_col().gt_eq(ts_literal(from)));
    }
    if to < i64::MAX {
        keep.push(bucket_col().lt(ts_literal(to)));
    }
    keep.extend(fit.partial_filters.iter().cloned());
    conjunction(keep)
        .map(|k| state.create_physical_expr(k, &state_df))
        .transpose()
}

/// The merged states of `pieces`, with the states of what they do not hold computed from rows:
/// the unrolled segments and `hot`, and the edges' rows outside the whole buckets
/// `[from, to)`. Returns the plan (the aggregate's rows, before [`outputs`]) and its counts.
pub(super) fn assemble(
    store: &Store,
    fit: &Fit,
    state: &dyn Session,
    hot: Vec<RecordBatch>,
    (from, to): (i64, i64),
    pieces: Pieces,
) -> Result<(Arc<dyn ExecutionPlan>, ScanCounts)> {
    let view = &fit.view;
    let (mut inputs, mut scans) = (pieces.stored, pieces.scans);
    let (unrolled, edges) = (pieces.unrolled, pieces.edges);
    let mut add = |plan: Arc<dyn ExecutionPlan>, c: ScanCounts| {
        inputs.push(plan);
        scans = scans.plus(ScanCounts {
            segments_total: 0,
            segments_pruned_time: 0,
            ..c
        });
    };
    // Rows outside the partials: segments without them, and the hot buffer.
    if !unrolled.is_empty() || !hot.is_empty() {
        let (plan, c) = states_of_rows(store, view, state, &unrolled, hot, fit.filters.clone())?;
        add(plan, c);
    }
    // Rows of rolled-up segments in the range but outside its whole buckets.
    if !edges.is_empty() {
        let mut outside = Vec::new();
        if from > i64::MIN {
            outside.push(col("ts").lt(ts_literal(from)));
        }
        if to < i64::MAX {
            outside.push(col("ts").gt_eq(ts_literal(to)));
        }
        let mut filters = fit.filters.clone();
        if let Some(outside) = outside.into_iter().reduce(Expr::or) {
            filters.push(outside);
        }
        let (plan, c) = states_of_rows(store, view, state, &edges, Vec::new(), filters)?;
        add(plan, c);
    }
    let union: Arc<dyn ExecutionPlan> = if inputs.len() == 1 {
        inputs.remove(0)
    } else {
        UnionExec::try_new(inputs)?
    };
    let state_df = DFSchema::try_from(view.state_schema.as_ref().clone())?;
    let merged = merge(
        fit,
        state,
        Arc::new(CoalescePartitionsExec::new(union)),
        &state_df,
    )?;
    Ok((merged, scans))
}

/// `view`'s states of the rows of `segments` and `hot` that pass `filters`.
pub(super) fn states_of_rows(
    store: &Store,
    view: &RollupPlan,
    state: &dyn Session,
    segments: &[Arc<SegmentMeta>],
    hot: Vec<RecordBatch>,
    filters: Vec<Expr>,
) -> Result<(Arc<dyn ExecutionPlan>, ScanCounts)> {
    let logs = logs_schema();
    // What the view computes from and what the filters read.
    let mut read = BTreeSet::new();
    let shape = &view.shape;
    for e in shape
        .dims
        .iter()
        .chain(&shape.measures)
        .chain(&filters)
        .chain(std::iter::once(&col("ts")))
    {
        for c in e.column_refs() {
            read.insert(logs.index_of(&c.name)?);
        }
    }
    let read: Vec<usize> = read.into_iter().collect();
    let (rows, counts) = scan_rows(store, state, segments, hot, Some(&read), &filters)?;
    let read_schema = rows.schema();
    let df_schema = DFSchema::try_from(read_schema.as_ref().clone())?;
    let mut plan = rows;
    if let Some(predicate) = conjunction(filters) {
        let predicate = state.create_physical_expr(predicate, &df_schema)?;
        plan = Arc::new(FilterExec::try_new(predicate, plan)?);
    }
    // The view's expressions index the whole `logs` row: the columns not read are nulls.
    let mut exprs = Vec::with_capacity(logs.fields().len());
    for field in logs.fields() {
        let expr: Arc<dyn datafusion::physical_plan::PhysicalExpr> =
            match read_schema.index_of(field.name()) {
                Ok(i) => Arc::new(PhysColumn::new(field.name(), i)),
                Err(_) => Arc::new(Literal::new(ScalarValue::try_from(field.data_type())?)),
            };
        exprs.push(ProjectionExpr {
            expr,
            alias: field.name().clone(),
        });
    }
    let padded = Arc::new(ProjectionExec::try_new(exprs, plan)?);
    Ok((view.partial_exec(padded)?, counts))
}

/// Regroups the states of `input` by `fit`'s groups and merges them into its aggregates.
pub(super) fn merge(
    fit: &Fit,
    state: &dyn Session,
    input: Arc<dyn ExecutionPlan>,
    state_df: &DFSchema,
) -> Result<Arc<dyn ExecutionPlan>> {
    let view = &fit.view;
    let mut exprs = Vec::new();
    for (i, g) in fit.groups.iter().enumerate() {
        exprs.push(ProjectionExpr {
            expr: state.create_physical_expr(g.clone(), state_df)?,
            alias: format!("g{i}"),
        });
    }
    let logs = logs_schema();
    let logs_df = DFSchema::try_from(logs.as_ref().clone())?;
    let mut aggs = Vec::new();
    for (e, m) in &fit.aggs {
        #[allow(deprecated)]
        let (agg, _, _) =
            create_aggregate_expr_and_maybe_filter(e, &logs_df, &logs, state.execution_props())?;
        let at = view.state_offsets[*m];
        for (k, f) in agg.state_fields()?.iter().enumerate() {
            exprs.push(ProjectionExpr {
                expr: Arc::new(PhysColumn::new(
                    view.state_schema.field(at + k).name(),
                    at + k,
                )),
                alias: f.name().clone(),
            });
        }
        aggs.push(agg);
    }
    let regrouped = Arc::new(ProjectionExec::try_new(exprs, input)?);
    let group = PhysicalGroupBy::new_single(
        (0..fit.groups.len())
            .map(|i| {
                let c: Arc<dyn datafusion::physical_plan::PhysicalExpr> =
                    Arc::new(PhysColumn::new(&format!("g{i}"), i));
                (c, format!("g{i}"))
            })
            .collect(),
    );
    let n = aggs.len();
    Ok(Arc::new(AggregateExec::try_new(
        AggregateMode::Final,
        group,
        aggs,
        vec![None; n],
        regrouped,
        Arc::new(Schema::new(logs.fields().clone())),
    )?))
}

/// The aggregate's outputs from `merged` (the [`merge`]d states), renamed to `schema`'s `c0…`,
/// in the projection asked for; `name` (the view's) names them in errors.
pub(super) fn outputs(
    schema: &SchemaRef,
    projection: Option<&Vec<usize>>,
    merged: Arc<dyn ExecutionPlan>,
    name: &str,
) -> Result<Arc<dyn ExecutionPlan>> {
    // The output columns, renamed, in the projection asked for.
    let wanted: Vec<usize> = match projection {
        Some(p) => p.clone(),
        None => (0..schema.fields().len()).collect(),
    };
    let mut exprs = Vec::with_capacity(wanted.len());
    for i in wanted {
        let field = schema.field(i);
        let got = merged.schema();
        let from_field = got.field(i);
        if from_field.data_type() != field.data_type() {
            return datafusion::common::plan_err!(
                "rollup {} answers {} as {}, the query wants {}",
                name,
                from_field.name(),
                from_field.data_type(),
                field.data_type()
            );
        }
        exprs.push(ProjectionExpr {
            expr: Arc::new(PhysColumn::new(from_field.name(), i)),
            alias: field.name().clone(),
        });
    }
    Ok(Arc::new(ProjectionExec::try_new(exprs, merged)?))
}
