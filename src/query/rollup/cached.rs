//! [`CachedAnswer`]: an aggregate over `logs` that no view answers, answered through the
//! [`ResultCache`] as if the query were a view of its own (its groups the dimensions, its
//! aggregates the measures, its filters other than the `ts` range the view's filter, its own
//! time grouping the buckets).
//!
//! ```text
//!  segment in range ─► its states from the cache, or computed whole and kept (when the range
//!                      covers at least half of it), kept to the range's whole buckets
//!                     └► its rows outside the whole buckets: scanned
//!  narrow segment not kept, hot rows ─► scanned, filtered, aggregated into states (never kept)
//!  all states ─► merged into the aggregate's rows            (the same assembly as a view's)
//! ```
//! A segment's states cover all its rows, whatever the query's range, so a dashboard whose
//! window moves with each refresh recomputes only the hot buffer, new segments and the buckets
//! its bounds cut.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNode;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType, Volatility};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    collect, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;

use super::answer::{
    assemble, keep_predicate, kept_states, outputs, outside_whole, states_of_rows, Fit, Pieces,
};
use super::bucket::{bucket_of, ts_bound};
use super::define::{compile, dim_name, dimension, measure, normalized, Flat, ViewParts};
use super::partials::Source;
use crate::catalog::SegmentMeta;
use crate::index::rollup::{Bucket, RollupShape};
use crate::query::result_cache::{Key, Lease, Lookup, ResultCache, Shape};
use crate::query::scan::{LogScanExec, ScanCounts, ScanHold};
use crate::query::scope::session_tenant;
use crate::query::table::hold_of;
use crate::store::Store;
use timberline_udfs::pg_compat::PgSession;

const HOUR_US: i64 = 3_600_000_000;

/// The name the ad hoc views compile under (errors name it).
const VIEW_NAME: &str = "result_cache";

/// Longest a query waits for another computing the same states before computing them itself.
const LEAD_WAIT: Duration = Duration::from_secs(30);

/// `flat` as a view of its own (compiled for a first check; each scan compiles it again with
/// its query's session), if the cache can answer it: every aggregate has a mergeable state;
/// every group is a label, `attrs->>'key'` or a time bucket; and no expression calls a
/// function that is not immutable or that builds values sized by its arguments, or holds a
/// parameter, a subquery or `nearest()`.
pub(super) fn adhoc_fit(state: &SessionState, flat: &Flat) -> Option<(Fit, ViewParts)> {
    let cacheable = |e: &Expr| {
        !e.exists(|x| {
            Ok(match x {
                Expr::Placeholder(_)
                | Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::GroupingSet(_) => true,
                Expr::ScalarFunction(f) => {
                    f.name() == timberline_udfs::nearest::NEAREST
                        || f.func.signature().volatility != Volatility::Immutable
                        || timberline_udfs::limits::guard_scalar(&f.func).is_some()
                }
                _ => false,
            })
        })
        .unwrap_or(true)
    };
    let dims: Vec<Expr> = flat.group.iter().map(normalized).collect();
    if dims
        .iter()
        .any(|d| !cacheable(d) || !(dimension(d) || bucket_of(d).is_ok()))
    {
        return None;
    }
    let measures: Vec<Expr> = flat.aggr.iter().map(normalized).collect();
    if measures
        .iter()
        .any(|m| !cacheable(m) || measure(m).is_err())
    {
        return None;
    }
    let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
    let (mut filters, mut all) = (Vec::new(), Vec::new());
    for f in flat.filters.iter().map(normalized) {
        if !cacheable(&f) {
            return None;
        }
        all.push(f.clone());
        match ts_bound(&f) {
            Some((l, h)) => {
                if let Some(l) = l {
                    lo = Some(lo.map_or(l, |x| x.max(l)));
                }
                if let Some(h) = h {
                    hi = Some(hi.map_or(h, |x| x.min(h)));
                }
            }
            None => filters.push(f),
        }
    }
    let n = dims.len();
    let shape = RollupShape {
        dims,
        measures: measures.clone(),
        filters,
    };
    let parts = ViewParts {
        bucket: states_bucket(&shape.dims),
        shape,
    };
    let view = compile(state, 0, VIEW_NAME.into(), String::new(), parts.clone()).ok()?;
    let groups = (0..n)
        .map(|i| Expr::Column(datafusion::common::Column::new_unqualified(dim_name(i))))
        .collect();
    let fit = Fit {
        view: Arc::new(view),
        source: Source::Files,
        groups,
        aggs: measures
            .into_iter()
            .enumerate()
            .map(|(i, m)| (m, i))
            .collect(),
        filters: all,
        partial_filters: Vec::new(),
        lo,
        hi,
    };
    Some((fit, parts))
}

/// The buckets the states are kept in: the finest time bucket the query groups by (its states
/// have that many rows anyway), else hours. A query range's whole buckets come from the states;
/// the rows of the partial buckets at its ends are scanned.
fn states_bucket(dims: &[Expr]) -> Bucket {
    dims.iter()
        .filter_map(|d| bucket_of(d).ok())
        .min_by_key(|b| b.width)
        .unwrap_or(Bucket {
            width: HOUR_US,
            origin: 0,
        })
}

/// The answer of one aggregate through the cache; its columns are `c0…`, the aggregate's
/// outputs in order.
#[derive(Debug)]
pub struct CachedAnswer {
    store: Arc<Store>,
    cache: Arc<ResultCache>,
    fit: Fit,
    parts: ViewParts,
    schema: SchemaRef,
}

impl CachedAnswer {
    pub fn new(
        store: Arc<Store>,
        cache: Arc<ResultCache>,
        fit: Fit,
        parts: ViewParts,
        schema: SchemaRef,
    ) -> CachedAnswer {
        CachedAnswer {
            store,
            cache,
            fit,
            parts,
            schema,
        }
    }
}

/// What the cache said of the segments in range.
#[derive(Default)]
struct Claimed {
    hits: Vec<(Arc<SegmentMeta>, Arc<RecordBatch>)>,
    /// Segments to compute: with a lease to keep their states, or none (kept elsewhere).
    compute: Vec<(Arc<SegmentMeta>, Option<Lease>)>,
    /// Segments neither kept nor worth computing whole: scanned with the query's filters.
    scan: Vec<Arc<SegmentMeta>>,
}

impl CachedAnswer {
    fn key(shape: &Arc<Shape>, tenant: &str, seg: &SegmentMeta) -> Key {
        Key {
            tenant: tenant.to_string(),
            shape: shape.clone(),
            segment: seg.id,
            location: format!("{:?}/{}", seg.location.tier, seg.location.key),
        }
    }

    /// Looks every segment up (`worth`: whether computing its states whole pays here); while
    /// another query computes one of them, gives back what it took and waits for it (at most
    /// [`LEAD_WAIT`], then computes without keeping).
    async fn claim(
        &self,
        shape: &Arc<Shape>,
        tenant: &str,
        segments: &[(Arc<SegmentMeta>, bool)],
        owner: usize,
    ) -> Claimed {
        let waiting_since = tokio::time::Instant::now();
        'again: loop {
            let patient = waiting_since.elapsed() < LEAD_WAIT;
            let mut claimed = Claimed::default();
            for (seg, worth) in segments {
                let key = Self::key(shape, tenant, seg);
                if !worth {
                    match self.cache.get(&key) {
                        Some(states) => claimed.hits.push((seg.clone(), states)),
                        None => claimed.scan.push(seg.clone()),
                    }
                    continue;
                }
                match self.cache.lookup(&key, owner) {
                    Lookup::Hit(states) => claimed.hits.push((seg.clone(), states)),
                    Lookup::Lead(lease) => claimed.compute.push((seg.clone(), Some(lease))),
                    Lookup::Unkept => claimed.compute.push((seg.clone(), None)),
                    Lookup::Wait(_) if !patient => claimed.compute.push((seg.clone(), None)),
                    Lookup::Wait(mut done) => {
                        // Leases held while waiting could make two queries wait on each other.
                        drop(claimed);
                        let left = LEAD_WAIT.saturating_sub(waiting_since.elapsed());
                        let _ = tokio::time::timeout(left, done.wait_for(|d| *d)).await;
                        continue 'again;
                    }
                }
            }
            return claimed;
        }
    }
}

/// Whether computing all of `seg`'s states pays for a query that reads its whole buckets
/// `[from, to)`: they hold at least half of its time span. (A narrow query over a wide
/// segment scans just its range instead.)
fn worth_computing(seg: &SegmentMeta, (from, to): (i64, i64)) -> bool {
    let (lo, hi) = (seg.min_ts.max(from), seg.max_ts.min(to.saturating_sub(1)));
    let span = i128::from(seg.max_ts) - i128::from(seg.min_ts) + 1;
    hi >= lo && (i128::from(hi) - i128::from(lo) + 1) * 2 >= span
}

#[async_trait]
impl TableProvider for CachedAnswer {
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
        // Compiled with the query's own session (its settings, its memory pool), and keyed by
        // its time zone, which functions of `ts` read.
        let compiled;
        let fit = match state.as_any().downcast_ref::<SessionState>() {
            Some(session) => {
                let view = compile(
                    session,
                    0,
                    VIEW_NAME.into(),
                    String::new(),
                    self.parts.clone(),
                )?;
                compiled = Fit {
                    view: Arc::new(view),
                    ..self.fit.clone()
                };
                &compiled
            }
            None => &self.fit,
        };
        let view = &fit.view;
        let zone = state
            .config_options()
            .extensions
            .get::<PgSession>()
            .and_then(|s| s.get("TimeZone"))
            .unwrap_or_default();
        let shape = Arc::new(Shape {
            dims: self.parts.shape.dims.clone(),
            measures: self.parts.shape.measures.clone(),
            filters: self.parts.shape.filters.clone(),
            bucket: (self.parts.bucket.width, self.parts.bucket.origin),
            zone,
        });
        let scope = session_tenant(state)?;
        let snap = self.store.snapshot().for_tenant(&scope)?;
        let whole = view.bucket.whole(fit.lo, fit.hi);
        let in_range: Vec<(Arc<SegmentMeta>, bool)> = fit
            .in_range(&snap.segments)
            .map(|s| (s.clone(), worth_computing(s, whole)))
            .collect();
        // The query's own pool identifies it while it plans and runs.
        let owner = Arc::as_ptr(state.runtime_env()) as *const () as usize;
        let claimed = self
            .claim(&shape, &format!("{scope:?}"), &in_range, owner)
            .await;
        let (hits, computed) = (claimed.hits.len(), claimed.compute.len());

        let keep = keep_predicate(fit, state, Some(whole))?;
        // Kept states count against the query's memory budget while it runs.
        let reserved =
            MemoryConsumer::new("cached states").register(&state.runtime_env().memory_pool);
        let (mut kept, mut edges) = (Vec::new(), Vec::new());
        for (seg, states) in &claimed.hits {
            if let Some(rows) = kept_states(&self.store, seg, states, keep.as_ref(), &reserved)? {
                kept.push(rows);
            }
            if outside_whole(seg, whole) {
                edges.push(seg.clone());
            }
        }
        let mut stored: Vec<Arc<dyn ExecutionPlan>> = vec![MemorySourceConfig::try_new_exec(
            &[kept],
            view.state_schema.clone(),
            None,
        )?];
        let mut scans = ScanCounts {
            segments_total: snap.segments.len(),
            segments_pruned_time: snap.segments.len() - in_range.len(),
            ..ScanCounts::default()
        };
        if !claimed.compute.is_empty() {
            let mut parts = Vec::with_capacity(claimed.compute.len());
            for (seg, lease) in claimed.compute {
                let (plan, c) = states_of_rows(
                    &self.store,
                    view,
                    state,
                    std::slice::from_ref(&seg),
                    Vec::new(),
                    view.shape.filters.clone(),
                )?;
                scans = scans.plus(ScanCounts {
                    segments_total: 0,
                    segments_pruned_time: 0,
                    ..c
                });
                if outside_whole(&seg, whole) {
                    edges.push(seg);
                }
                parts.push((lease, plan));
            }
            let fill: Arc<dyn ExecutionPlan> = Arc::new(FillExec::new(
                view.state_schema.clone(),
                parts,
                state.config().target_partitions(),
            ));
            stored.push(match &keep {
                Some(keep) => Arc::new(FilterExec::try_new(keep.clone(), fill)?),
                None => fill,
            });
        }
        let pieces = Pieces {
            stored,
            unrolled: claimed.scan,
            edges,
            scans,
        };
        let (merged, scans) = assemble(&self.store, fit, state, snap.hot, whole, pieces)?;
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
            .from_cache(hits, computed),
        ))
    }
}

/// One segment's states to compute: its plan, and the lease to keep them under (if any).
type Part = (Option<Lease>, Arc<dyn ExecutionPlan>);

/// Computes the states of segments one after another (a few at once), keeps each in the cache
/// under its lease, and passes them on. Its scans are its own: `EXPLAIN` shows one line, and
/// the scans' counts are on the [`LogScanExec`] above it.
struct FillExec {
    schema: SchemaRef,
    parts: Mutex<Vec<Part>>,
    at_once: usize,
    properties: Arc<PlanProperties>,
}

impl std::fmt::Debug for FillExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FillExec")
    }
}

impl FillExec {
    fn new(schema: SchemaRef, parts: Vec<Part>, at_once: usize) -> FillExec {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        FillExec {
            schema,
            parts: Mutex::new(parts),
            at_once: at_once.max(1),
            properties,
        }
    }
}

impl DisplayAs for FillExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let n = self.parts.lock().map(|p| p.len()).unwrap_or(0);
        write!(f, "FillExec: segments={n}")
    }
}

impl ExecutionPlan for FillExec {
    fn name(&self) -> &str {
        "FillExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_plan::PhysicalExpr>,
        ) -> Result<datafusion::common::tree_node::TreeNodeRecursion>,
    ) -> Result<datafusion::common::tree_node::TreeNodeRecursion> {
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return datafusion::common::internal_err!("FillExec has one partition");
        }
        // The leases go with the first execution; a later one (a recursive query's) computes
        // the same states again, unkept.
        let parts: Vec<Part> = self
            .parts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter_mut()
            .map(|(lease, plan)| (lease.take(), plan.clone()))
            .collect();
        let schema = self.schema.clone();
        // The states computed count against the query's memory budget until its end.
        let held =
            Arc::new(MemoryConsumer::new("result cache states").register(context.memory_pool()));
        let states = futures::stream::iter(parts)
            .map(move |(lease, plan)| {
                let (context, schema, held) = (context.clone(), schema.clone(), held.clone());
                async move {
                    let batches = collect(plan, context).await?;
                    held.try_grow(batches.iter().map(|b| b.get_array_memory_size()).sum())?;
                    let states = Arc::new(concat_batches(&schema, &batches)?);
                    drop(batches);
                    if let Some(lease) = lease {
                        lease.fulfil(states.clone());
                    }
                    Ok(Arc::unwrap_or_clone(states))
                }
            })
            .buffered(self.at_once);
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            states,
        )))
    }
}
