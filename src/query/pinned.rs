//! Queries over one pinned view of the store (segments and hot batches taken at a known WAL
//! sequence number), and row filters compiled from the same expressions: what live tail and
//! alert rules need to join a past answer to the live stream without a gap or a duplicate.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::ExecutionProps;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, SortExpr, TableProviderFilterPushDown, TableType};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::scan::LogScanExec;
use super::table::{hold_of, scan_rows};
use crate::catalog::SegmentMeta;
use crate::model::logs_schema;
use crate::store::Store;

/// A `logs` table that reads only the segments and hot batches it was given.
#[derive(Debug)]
struct PinnedLogs {
    store: Arc<Store>,
    segments: Vec<Arc<SegmentMeta>>,
    hot: Vec<RecordBatch>,
}

#[async_trait]
impl TableProvider for PinnedLogs {
    fn schema(&self) -> SchemaRef {
        logs_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (plan, counts) = scan_rows(
            &self.store,
            state,
            &self.segments,
            self.hot.clone(),
            projection,
            filters,
        )?;
        Ok(Arc::new(LogScanExec::new(
            plan,
            counts,
            hold_of(&self.store, &self.segments),
        )))
    }
}

/// The rows of `segments` and `hot` (already one tenant's) passing `filter`, sorted by
/// `order`, at most `limit` of them, using at most `memory` bytes (past it: resources
/// exhausted).
pub async fn read_pinned(
    store: Arc<Store>,
    segments: Vec<Arc<SegmentMeta>>,
    hot: Vec<RecordBatch>,
    filter: Expr,
    order: Vec<SortExpr>,
    limit: usize,
    memory: usize,
) -> Result<Vec<RecordBatch>> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(memory, 1.0)
        .build_arc()?;
    let mut ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
    timberline_udfs::register(&mut ctx)?;
    super::source::register_segments_store(&ctx.runtime_env(), &store.files);
    ctx.register_table(
        "logs",
        Arc::new(PinnedLogs {
            store,
            segments,
            hot,
        }),
    )?;
    ctx.table("logs")
        .await?
        .filter(filter)?
        .sort(order)?
        .limit(0, Some(limit))?
        .collect()
        .await
}

/// A filter over rows of the `logs` schema, compiled once (a `match()` with `field:value`
/// terms expanded into column comparisons), applied to each batch as it arrives.
#[derive(Debug, Clone)]
pub struct RowFilter {
    expr: Arc<dyn PhysicalExpr>,
}

impl RowFilter {
    /// Compiles `expr`: a bad `match()` query or an unknown column is an error here.
    pub fn compile(expr: Expr) -> Result<RowFilter> {
        let schema = DFSchema::try_from(logs_schema().as_ref().clone())?;
        let props = ExecutionProps::new();
        let context = SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .build();
        let simplified = ExprSimplifier::new(context).simplify(expr)?;
        let expr = create_physical_expr(
            &simplified,
            &schema,
            &props,
            &PhysicalPlanningContext::default(),
        )?;
        Ok(RowFilter { expr })
    }

    /// Which rows of `batch` pass.
    pub fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let value = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let Some(mask) = value.as_boolean_opt() else {
            return Err(DataFusionError::Internal(format!(
                "a row filter gave {} values, not booleans",
                value.data_type()
            )));
        };
        // A NULL (say, a comparison with a NULL trace_id) does not pass.
        Ok(if mask.null_count() > 0 {
            datafusion::arrow::compute::prep_null_mask_filter(mask)
        } else {
            mask.clone()
        })
    }
}
