//! [`LogTable`]: the `logs` TableProvider over cataloged segments and the hot buffer.
//!
//! ```text
//!  filters ──► physical predicate ──► catalog min/max(ts) pruning (no file opened)
//!                                       │ surviving segments, with exact per-file stats
//!                                       ▼
//!          DataSourceExec(Parquet: file stats → row groups → page index → bloom → row filter)
//!                              ∪ hot buffer batches (MemorySourceConfig)
//!                                       ▼
//!                               LogScanExec (counts)  ──► FilterExec added by DataFusion
//! ```
//! Every filter is `Inexact`: pruning may keep extra rows. DataFusion keeps a `FilterExec` above
//! the scan unless every source applies the filter itself (the Parquet row filter does; for the
//! hot buffer DataFusion adds a `FilterExec` over it), see [`LogScanExec`]'s filter pass-through.
//! Except with `nearest(ts, T [, k])` among them: then the scan is a [`NearestExec`], which applies
//! every filter itself and returns only the selected rows.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::DFSchema;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

use timberline_udfs::nearest::MISPLACED;
use timberline_udfs::sqlstate;

use super::index_select::select;
use super::nearest::{is_nearest, NearestExec, NearestSpec};
use super::prune::keep_by_time;
use super::scan::{tier_slot, LogScanExec, ScanCounts, ScanHold};
use super::scope::session_tenant;
use super::source::{parquet_execs, prefetch_cold_sidecars, require_data_file};
use crate::catalog::SegmentMeta;
use crate::model::logs_schema;
use crate::store::Store;

/// The `logs` table.
#[derive(Debug)]
pub struct LogTable {
    store: Arc<Store>,
    schema: SchemaRef,
}

impl LogTable {
    pub fn new(store: Arc<Store>) -> LogTable {
        LogTable {
            store,
            schema: logs_schema(),
        }
    }
}

#[async_trait]
impl TableProvider for LogTable {
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
        // `nearest` selects among the rows that pass every other filter, so when it is present
        // the scan applies them all itself, exactly.
        let kind = if filters.iter().any(|f| is_nearest(f)) {
            TableProviderFilterPushDown::Exact
        } else {
            TableProviderFilterPushDown::Inexact
        };
        Ok(vec![kind; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Caught here, while planning: evaluated later, inside the Parquet row filter, the
        // call's error would reach the client wrapped as an internal one.
        if filters
            .iter()
            .any(|f| !is_nearest(&f) && contains_nearest(f))
        {
            return timberline_udfs::query_err!(
                sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
                "{MISPLACED}"
            );
        }
        if filters.iter().any(|f| is_nearest(&f)) {
            let spec = NearestSpec::from_filters(filters, state)?;
            return Ok(Arc::new(NearestExec::new(
                self.store.clone(),
                spec,
                projection.cloned(),
                session_tenant(state)?,
            )?));
        }
        let snap = self.store.snapshot().for_tenant(&session_tenant(state)?)?;
        let in_range = time_kept(state, &snap.segments, filters)?;
        prefetch_cold_sidecars(&self.store, &in_range).await;
        let (plan, counts) = scan_rows(
            &self.store,
            state,
            &snap.segments,
            snap.hot,
            projection,
            filters,
        )?;
        Ok(Arc::new(LogScanExec::new(
            plan,
            counts,
            hold_of(&self.store, &snap.segments),
        )))
    }
}

/// What a scan of `segments` holds while it runs (see [`ScanHold`]).
pub(super) fn hold_of(store: &Store, segments: &[Arc<SegmentMeta>]) -> ScanHold {
    ScanHold {
        segments: segments.to_vec(),
        cold: store.files.cold().cloned(),
        reserved: None,
    }
}

/// The plan reading the rows of `segments` and `hot` that may pass `filters` (pruned by time,
/// blooms and indexes; the filters are not re-applied), and what the pruning did.
pub(super) fn scan_rows(
    store: &Store,
    state: &dyn Session,
    segments: &[Arc<SegmentMeta>],
    hot: Vec<RecordBatch>,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
) -> Result<(Arc<dyn ExecutionPlan>, ScanCounts)> {
    let _prune = tracing::info_span!("prune", segments = segments.len()).entered();
    let schema = logs_schema();
    let predicate = physical_predicate(state, filters)?;
    let kept: Vec<&SegmentMeta> = in_time(segments, predicate.as_ref())
        .map(|s| &**s)
        .collect();
    let pruned_time = segments.len() - kept.len();
    let picked = select(&store.files, &store.indexes, &store.blooms, kept, filters);
    let counts = ScanCounts {
        segments_total: segments.len(),
        segments_pruned_time: pruned_time,
        segments_pruned_bloom: picked.pruned_bloom,
        segments_pruned_index: picked.pruned,
        index_fallbacks: picked.fallbacks,
        rows_selected: picked.rows_selected,
        segments_scanned: picked.kept.len(),
        hot_batches: hot.len(),
        counted: None,
        tier_segments: [0; 3],
        tier_bytes: [0; 3],
    };
    let kept = picked.kept;
    let mut counts = counts;
    for seg in &kept {
        require_data_file(&store.files, seg)?;
        let slot = tier_slot(seg.location.tier);
        counts.tier_segments[slot] += 1;
        counts.tier_bytes[slot] += seg.bytes;
    }

    let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
    if !kept.is_empty() {
        inputs.extend(parquet_execs(
            &schema,
            &kept,
            &picked.selections,
            projection.cloned(),
            predicate.clone(),
            state.config().target_partitions(),
            state.runtime_env(),
        )?);
    }
    if !hot.is_empty() {
        let parts = state.config().target_partitions().max(1).min(hot.len());
        let mut partitions = vec![Vec::new(); parts];
        for (i, b) in hot.into_iter().enumerate() {
            partitions[i % parts].push(b);
        }
        inputs.push(MemorySourceConfig::try_new_exec(
            &partitions,
            schema.clone(),
            projection.cloned(),
        )?);
    }
    let plan: Arc<dyn ExecutionPlan> = match inputs.len() {
        0 => {
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => schema.clone(),
            };
            Arc::new(EmptyExec::new(projected))
        }
        1 => inputs.remove(0),
        _ => UnionExec::try_new(inputs)?,
    };
    Ok((plan, counts))
}

/// The segments of `segments` whose time range may hold rows passing `filters`.
fn time_kept(
    state: &dyn Session,
    segments: &[Arc<SegmentMeta>],
    filters: &[Expr],
) -> Result<Vec<Arc<SegmentMeta>>> {
    let predicate = physical_predicate(state, filters)?;
    Ok(in_time(segments, predicate.as_ref()).cloned().collect())
}

/// `filters`, AND-ed, planned against the `logs` schema (`None` when there are none).
fn physical_predicate(
    state: &dyn Session,
    filters: &[Expr],
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let df_schema = DFSchema::try_from(logs_schema())?;
    conjunction(filters.to_vec())
        .map(|e| state.create_physical_expr(e, &df_schema))
        .transpose()
}

/// The segments whose catalog time range may hold rows passing `predicate`.
fn in_time<'a>(
    segments: &'a [Arc<SegmentMeta>],
    predicate: Option<&Arc<dyn PhysicalExpr>>,
) -> impl Iterator<Item = &'a Arc<SegmentMeta>> {
    let keep = keep_by_time(segments, predicate, &logs_schema());
    segments
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(s, _)| s)
}

/// True if a `nearest(…)` call appears anywhere in `expr`.
fn contains_nearest(expr: &Expr) -> bool {
    expr.exists(|e| Ok(is_nearest(&e))).unwrap_or(false)
}
