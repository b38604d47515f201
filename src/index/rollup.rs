//! Rollup partials: a view's aggregate states per time bucket and dimension values, computed
//! from one segment's rows by DataFusion's own partial aggregation, so that the states of any
//! set of segments (and of rows computed at query time) merge into the exact answer.
//!
//! A [`RollupPlan`] is a view compiled against the `logs` schema: its bucket (a fixed width
//! and origin), its group expressions (`__bucket`, then the dimensions), its measures and its
//! filter. [`RollupPlan::partials`] runs `Filter → Aggregate(Partial)` over a batch; the result
//! (schema [`RollupPlan::state_schema`]) is stored as an Arrow IPC file per segment and view.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::{collect, ExecutionPlan};

use crate::model::logs_schema;

/// Name of the group column holding each bucket's first instant.
pub const BUCKET: &str = "__bucket";

/// The time buckets of a view: `[origin + k·width, origin + (k+1)·width)`, in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub width: i64,
    pub origin: i64,
}

impl Bucket {
    /// The first instant of the bucket holding `ts`.
    pub fn start(&self, ts: i64) -> i64 {
        let off = ts.saturating_sub(self.origin).div_euclid(self.width);
        self.origin.saturating_add(off.saturating_mul(self.width))
    }

    /// Bucket starts `[from, to)` of the buckets wholly inside `lo..=hi` (µs, inclusive).
    pub fn whole(&self, lo: Option<i64>, hi: Option<i64>) -> (i64, i64) {
        let from = match lo {
            None => i64::MIN,
            Some(lo) if self.start(lo) == lo => lo,
            Some(lo) => self.start(lo).saturating_add(self.width),
        };
        let to = match hi {
            None => i64::MAX,
            // Bucket b is whole when its last instant, b + width − 1, is ≤ hi.
            Some(hi) => self.start(hi.saturating_add(1)),
        };
        (from, to.max(from))
    }
}

/// A view's logical parts, as planned over `logs` (what the rewrite matches queries against).
#[derive(Debug, Clone)]
pub struct RollupShape {
    /// The dimension expressions, after the bucket.
    pub dims: Vec<Expr>,
    /// The measures (aggregate expressions, unaliased).
    pub measures: Vec<Expr>,
    /// The view's filter, as conjuncts.
    pub filters: Vec<Expr>,
}

/// A view compiled for computing and merging partial states.
#[derive(Debug)]
pub struct RollupPlan {
    pub id: u64,
    pub name: String,
    /// The definition as the user wrote it.
    pub sql: String,
    pub bucket: Bucket,
    pub shape: RollupShape,
    /// `__bucket`, then the dimensions, over the `logs` schema.
    pub group: PhysicalGroupBy,
    pub measures: Vec<Arc<AggregateFunctionExpr>>,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Group columns, then each measure's state fields.
    pub state_schema: SchemaRef,
    /// Where each measure's state fields start in [`Self::state_schema`].
    pub state_offsets: Vec<usize>,
}

impl RollupPlan {
    /// Compiles the parts of a view (physical expressions over the `logs` schema).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        name: String,
        sql: String,
        bucket: Bucket,
        shape: RollupShape,
        group: PhysicalGroupBy,
        measures: Vec<Arc<AggregateFunctionExpr>>,
        filter: Option<Arc<dyn PhysicalExpr>>,
    ) -> Result<RollupPlan> {
        let empty: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(logs_schema()));
        let probe = AggregateExec::try_new(
            AggregateMode::Partial,
            group.clone(),
            measures.clone(),
            vec![None; measures.len()],
            empty,
            logs_schema(),
        )?;
        let mut state_offsets = Vec::with_capacity(measures.len());
        let mut at = group.expr().len();
        for m in &measures {
            state_offsets.push(at);
            at += m.state_fields()?.len();
        }
        Ok(RollupPlan {
            id,
            name,
            sql,
            bucket,
            shape,
            group,
            state_schema: probe.schema(),
            measures,
            filter,
            state_offsets,
        })
    }

    /// The partial states of `batch` (schema `logs`) as one batch of [`Self::state_schema`].
    pub fn partials(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut input: Arc<dyn ExecutionPlan> =
            MemorySourceConfig::try_new_exec(&[vec![batch.clone()]], batch.schema(), None)?;
        if let Some(filter) = &self.filter {
            input = Arc::new(FilterExec::try_new(filter.clone(), input)?);
        }
        let plan = self.partial_exec(input)?;
        let batches = futures::executor::block_on(collect(plan, Arc::new(TaskContext::default())))?;
        Ok(concat_batches(&self.state_schema, &batches)?)
    }

    /// `Aggregate(Partial)` of this view's groups and measures over `input` (schema `logs`).
    pub fn partial_exec(&self, input: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(AggregateExec::try_new(
            AggregateMode::Partial,
            self.group.clone(),
            self.measures.clone(),
            vec![None; self.measures.len()],
            input,
            logs_schema(),
        )?))
    }
}

/// `batch` as the bytes of an Arrow IPC file.
pub fn encode_partials(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut writer = FileWriter::try_new(&mut out, &batch.schema())?;
        writer.write(batch)?;
        writer.finish()?;
    }
    Ok(out)
}

/// The partials of an Arrow IPC file written by [`encode_partials`], if its schema is `schema`.
pub fn decode_partials(bytes: Vec<u8>, schema: &SchemaRef) -> Result<RecordBatch> {
    let reader = FileReader::try_new(Cursor::new(bytes), None)?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b?);
    }
    let read_schema = batches.first().map(|b| b.schema());
    if read_schema.is_some_and(|s| s.fields() != schema.fields()) {
        return Err(datafusion::error::DataFusionError::Execution(
            "rollup partials were written for another definition".into(),
        ));
    }
    Ok(concat_batches(schema, &batches)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_buckets_of_a_range() {
        let b = Bucket {
            width: 60,
            origin: 0,
        };
        assert_eq!(b.whole(Some(0), Some(119)), (0, 120));
        assert_eq!(b.whole(Some(1), Some(119)), (60, 120));
        assert_eq!(b.whole(Some(1), Some(118)), (60, 60));
        assert_eq!(b.whole(None, Some(-1)), (i64::MIN, 0));
        assert_eq!(b.whole(Some(-61), None), (-60, i64::MAX));
        let shifted = Bucket {
            width: 60,
            origin: 30,
        };
        assert_eq!(shifted.start(29), -30);
        assert_eq!(shifted.whole(Some(30), Some(89)), (30, 90));
    }
}
