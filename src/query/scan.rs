//! [`LogScanExec`]: the root of every `logs` scan; reports what the catalog pruned.
//!
//! It passes its input's batches through unchanged. Its metrics (`segments_total`,
//! `segments_pruned_time`, `segments_pruned_bloom`, `segments_pruned_index`, `segments_scanned`,
//! `index_fallbacks`, `rows_selected`, `hot_batches`, and for a `count(*)` answered from count
//! tables `segments_counted` and `rows_counted`) show in `EXPLAIN ANALYZE`, with the segments
//! and bytes scanned per tier (`segments_hot`, `bytes_cold`, …) and the object-store requests
//! made while the scan ran (`store_gets`, `store_get_bytes`, `store_cache_hits`: counted over
//! the server, so a concurrent query's reads of cold data show too).
//!
//! It also holds the segments its snapshot chose until its last stream ends: a segment a
//! running scan holds is never deleted under it by compaction, a tier move or retention.

use std::fmt;
use std::sync::Arc;

use std::sync::OnceLock;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::execution_plan::ReplaceChildrenOptions;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::metrics::Gauge;
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties,
};
use futures::StreamExt;

use crate::catalog::SegmentMeta;
use crate::storage::{CachedStore, StoreCount};

/// What the catalog did for one scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanCounts {
    pub segments_total: usize,
    pub segments_pruned_time: usize,
    /// Segments whose blooms say no row can match: neither their index nor their data opened.
    pub segments_pruned_bloom: usize,
    /// Segments whose index says no row can match: never opened.
    pub segments_pruned_index: usize,
    /// Segments whose index was missing or unreadable though the catalog names one: scanned.
    pub index_fallbacks: usize,
    /// Rows of the scanned segments that their indexes left as candidates (every row of a
    /// segment the index could not narrow).
    pub rows_selected: u64,
    /// Segments whose rows were decoded (or some of them, by row selection).
    pub segments_scanned: usize,
    pub hot_batches: usize,
    /// Set when `count(*)` is answered from count tables (see `query::count`).
    pub counted: Option<Counted>,
    /// Segments scanned, and their bytes, per tier (hot, warm, cold).
    pub tier_segments: [usize; 3],
    pub tier_bytes: [u64; 3],
}

/// The index of `tier` in [`ScanCounts::tier_segments`].
pub fn tier_slot(tier: crate::storage::Tier) -> usize {
    match tier {
        crate::storage::Tier::Hot => 0,
        crate::storage::Tier::Warm => 1,
        crate::storage::Tier::Cold => 2,
    }
}

/// What the count tables answered for one `count(*)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counted {
    /// Segments whose count table was read.
    pub segments: usize,
    /// Rows counted from those tables, none of them decoded.
    pub rows: u64,
}

impl ScanCounts {
    /// The counts of two scans over disjoint parts of the data, as one.
    pub fn plus(self, other: ScanCounts) -> ScanCounts {
        ScanCounts {
            segments_total: self.segments_total + other.segments_total,
            segments_pruned_time: self.segments_pruned_time + other.segments_pruned_time,
            segments_pruned_bloom: self.segments_pruned_bloom + other.segments_pruned_bloom,
            segments_pruned_index: self.segments_pruned_index + other.segments_pruned_index,
            index_fallbacks: self.index_fallbacks + other.index_fallbacks,
            rows_selected: self.rows_selected + other.rows_selected,
            segments_scanned: self.segments_scanned + other.segments_scanned,
            hot_batches: self.hot_batches + other.hot_batches,
            counted: self.counted.or(other.counted),
            tier_segments: std::array::from_fn(|i| self.tier_segments[i] + other.tier_segments[i]),
            tier_bytes: std::array::from_fn(|i| self.tier_bytes[i] + other.tier_bytes[i]),
        }
    }
}

/// What a scan holds while it runs: the segments its snapshot chose (so none is deleted under
/// it), and the cold store whose requests it reports.
#[derive(Debug, Clone, Default)]
pub struct ScanHold {
    pub segments: Vec<Arc<SegmentMeta>>,
    pub cold: Option<Arc<CachedStore>>,
    /// Memory of the query's pool taken by what the scan keeps in memory (rollup partials).
    pub reserved: Option<Arc<datafusion::execution::memory_pool::MemoryReservation>>,
}

/// Pass-through root of a `logs` scan carrying its pruning counts.
#[derive(Debug)]
pub struct LogScanExec {
    input: Arc<dyn ExecutionPlan>,
    counts: ScanCounts,
    metrics: ExecutionPlanMetricsSet,
    hold: Arc<ScanHold>,
    /// The cold store's requests, counted from when the first stream started.
    reads: Arc<OnceLock<Arc<StoreReads>>>,
    /// The rollup view this scan answers from, if any (shown by `EXPLAIN`).
    rollup: Option<Arc<str>>,
    /// Segments whose states the result cache had, and those computed (shown by `EXPLAIN`).
    cache: Option<(usize, usize)>,
}

impl LogScanExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, counts: ScanCounts, hold: ScanHold) -> LogScanExec {
        Self::with_hold(input, counts, Arc::new(hold))
    }

    fn with_hold(
        input: Arc<dyn ExecutionPlan>,
        counts: ScanCounts,
        hold: Arc<ScanHold>,
    ) -> LogScanExec {
        let metrics = ExecutionPlanMetricsSet::new();
        let set =
            |name: &'static str, v: usize| MetricBuilder::new(&metrics).global_counter(name).add(v);
        set("segments_total", counts.segments_total);
        set("segments_pruned_time", counts.segments_pruned_time);
        set("segments_pruned_bloom", counts.segments_pruned_bloom);
        set("segments_pruned_index", counts.segments_pruned_index);
        set("segments_scanned", counts.segments_scanned);
        if let Some(c) = counts.counted {
            set("segments_counted", c.segments);
            set("rows_counted", c.rows as usize);
        }
        set("index_fallbacks", counts.index_fallbacks);
        set("rows_selected", counts.rows_selected as usize);
        set("hot_batches", counts.hot_batches);
        for (i, tier) in ["hot", "warm", "cold"].iter().enumerate() {
            let segs = MetricBuilder::new(&metrics).global_counter(format!("segments_{tier}"));
            segs.add(counts.tier_segments[i]);
            let bytes = MetricBuilder::new(&metrics).global_counter(format!("bytes_{tier}"));
            bytes.add(counts.tier_bytes[i] as usize);
        }
        LogScanExec {
            input,
            counts,
            metrics,
            hold,
            reads: Arc::new(OnceLock::new()),
            rollup: None,
            cache: None,
        }
    }

    /// Names the rollup view the scan answers from.
    pub fn from_rollup(mut self, view: &str) -> LogScanExec {
        MetricBuilder::new(&self.metrics)
            .global_counter("rollup_answers")
            .add(1);
        self.rollup = Some(view.into());
        self
    }

    /// Says how many segments' states the result cache had (`hits`) and how many were computed.
    pub fn from_cache(mut self, hits: usize, computed: usize) -> LogScanExec {
        MetricBuilder::new(&self.metrics)
            .global_counter("cache_hits")
            .add(hits);
        MetricBuilder::new(&self.metrics)
            .global_counter("cache_misses")
            .add(computed);
        self.cache = Some((hits, computed));
        self
    }

    /// Carries what the builders above set over to `scan`, a copy with new children.
    fn labelled(&self, mut scan: LogScanExec) -> LogScanExec {
        if let Some(view) = &self.rollup {
            scan = scan.from_rollup(view);
        }
        if let Some((hits, computed)) = self.cache {
            scan = scan.from_cache(hits, computed);
        }
        scan
    }

    pub fn counts(&self) -> ScanCounts {
        self.counts
    }
}

impl DisplayAs for LogScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let c = self.counts;
        write!(
            f,
            "LogScanExec: segments_total={}, segments_pruned_time={}, segments_pruned_bloom={}, \
             segments_pruned_index={}, segments_scanned={}, index_fallbacks={}, rows_selected={}, \
             hot_batches={}",
            c.segments_total,
            c.segments_pruned_time,
            c.segments_pruned_bloom,
            c.segments_pruned_index,
            c.segments_scanned,
            c.index_fallbacks,
            c.rows_selected,
            c.hot_batches
        )?;
        if c.tier_segments[2] > 0 {
            write!(
                f,
                ", segments_cold={}, bytes_cold={}",
                c.tier_segments[2], c.tier_bytes[2]
            )?;
        }
        if let Some(view) = &self.rollup {
            write!(f, ", rollup={view}")?;
        }
        if let Some((hits, computed)) = self.cache {
            write!(
                f,
                ", result_cache_hits={hits}, result_cache_misses={computed}"
            )?;
        }
        match c.counted {
            Some(counted) => write!(
                f,
                ", segments_counted={}, rows_counted={}",
                counted.segments, counted.rows
            ),
            None => Ok(()),
        }
    }
}

impl ExecutionPlan for LogScanExec {
    fn name(&self) -> &str {
        "LogScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        let scan = LogScanExec::with_hold(input, self.counts, self.hold.clone());
        Ok(Arc::new(self.labelled(scan)))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut children = children;
        let input = children.swap_remove(0);
        let scan = LogScanExec::with_hold(input, self.counts, self.hold.clone());
        Ok(Arc::new(self.labelled(scan)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context)?;
        // One set of gauges for the whole scan, shared by its streams: each sets them to the
        // server's requests since the first started, so the last to finish leaves the total.
        let reads = self.hold.cold.clone().map(|cold| {
            self.reads
                .get_or_init(|| {
                    Arc::new(StoreReads {
                        gets: MetricBuilder::new(&self.metrics).gauge("store_gets", 0),
                        get_bytes: MetricBuilder::new(&self.metrics).gauge("store_get_bytes", 0),
                        hits: MetricBuilder::new(&self.metrics).gauge("store_cache_hits", 0),
                        started: cold.count(),
                        cold,
                    })
                })
                .clone()
        });
        let (hold, at_end) = (self.hold.clone(), reads.clone());
        let schema = stream.schema();
        let counted = stream
            .inspect(move |_| {
                if let Some(r) = &reads {
                    r.record();
                }
            })
            .chain(futures::stream::poll_fn(move |_| {
                // The segments stay held until the stream's end.
                let _ = &hold;
                if let Some(r) = &at_end {
                    r.record();
                }
                std::task::Poll::Ready(None)
            }));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, counted)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    // Filters pass through to the sources, as through any operator that keeps its input's rows:
    // so a TopK's dynamic filter reaches the Parquet scan and prunes files and rows with it.
    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}

/// The cold store's requests since a scan started, kept in its metrics.
#[derive(Debug)]
struct StoreReads {
    gets: Gauge,
    get_bytes: Gauge,
    hits: Gauge,
    cold: Arc<CachedStore>,
    started: StoreCount,
}

impl StoreReads {
    fn record(&self) {
        let d = self.cold.count().since(self.started);
        self.gets.set(d.gets as usize);
        self.get_bytes.set(d.get_bytes as usize);
        self.hits.set(d.hits as usize);
    }
}
