//! [`LogScanExec`]: the root of every `logs` scan; reports what the catalog pruned.
//!
//! It passes its input's batches through unchanged. Its metrics (`segments_total`,
//! `segments_pruned_time`, `segments_pruned_bloom`, `segments_pruned_index`, `segments_scanned`,
//! `index_fallbacks`,
//! `rows_selected`, `hot_batches`) show in `EXPLAIN ANALYZE`.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::execution_plan::ReplaceChildrenOptions;
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties,
};

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
    pub hot_batches: usize,
}

impl ScanCounts {
    pub fn segments_scanned(&self) -> usize {
        self.segments_total
            - self.segments_pruned_time
            - self.segments_pruned_bloom
            - self.segments_pruned_index
    }
}

/// Pass-through root of a `logs` scan carrying its pruning counts.
#[derive(Debug)]
pub struct LogScanExec {
    input: Arc<dyn ExecutionPlan>,
    counts: ScanCounts,
    metrics: ExecutionPlanMetricsSet,
}

impl LogScanExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, counts: ScanCounts) -> LogScanExec {
        let metrics = ExecutionPlanMetricsSet::new();
        let set =
            |name: &'static str, v: usize| MetricBuilder::new(&metrics).global_counter(name).add(v);
        set("segments_total", counts.segments_total);
        set("segments_pruned_time", counts.segments_pruned_time);
        set("segments_pruned_bloom", counts.segments_pruned_bloom);
        set("segments_pruned_index", counts.segments_pruned_index);
        set("segments_scanned", counts.segments_scanned());
        set("index_fallbacks", counts.index_fallbacks);
        set("rows_selected", counts.rows_selected as usize);
        set("hot_batches", counts.hot_batches);
        LogScanExec {
            input,
            counts,
            metrics,
        }
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
            c.segments_scanned(),
            c.index_fallbacks,
            c.rows_selected,
            c.hot_batches
        )
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
        Ok(Arc::new(LogScanExec::new(input, self.counts)))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut children = children;
        let input = children.swap_remove(0);
        Ok(Arc::new(LogScanExec::new(input, self.counts)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
