//! Cancellation points inside the operators that can compute for seconds without yielding: a
//! query's [`Cancel`] is set the moment its client's stream is dropped (deadline, CancelRequest,
//! disconnect), and every join's output, and a nested-loop join's filter (evaluated once per
//! left row against a whole right batch), fail with 57014 as soon as they see it — where an
//! aborted task would otherwise run to the end of the batch being computed (a nested-loop
//! join's probe batch against every left row: seconds on a loaded machine).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{NestedLoopJoinExec, NestedLoopJoinExecBuilder};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    ReplaceChildrenOptions, SendableRecordBatchStream,
};
use futures::Stream;
use timberline_udfs::{sqlstate, QueryError};

/// Set once a query's result is no longer wanted.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn check(&self) -> Result<()> {
        match self.0.load(Ordering::Relaxed) {
            false => Ok(()),
            true => Err(cancelled()),
        }
    }
}

fn cancelled() -> DataFusionError {
    QueryError::new(
        sqlstate::QUERY_CANCELED,
        "canceling statement: its result is no longer wanted",
    )
    .into_df()
}

/// `plan` with a cancellation point on every join's output and in every nested-loop join's
/// filter.
pub fn interruptible(
    plan: Arc<dyn ExecutionPlan>,
    cancel: &Cancel,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if !is_join(node.name()) {
            return Ok(Transformed::no(node));
        }
        let node = match node.downcast_ref::<NestedLoopJoinExec>() {
            Some(nlj) => match nlj.filter() {
                Some(f) => {
                    let expression: Arc<dyn PhysicalExpr> = Arc::new(InterruptibleExpr {
                        inner: f.expression().clone(),
                        cancel: cancel.clone(),
                    });
                    let filter = JoinFilter::new(
                        expression,
                        f.column_indices().to_vec(),
                        f.schema().clone(),
                    );
                    let rebuilt = NestedLoopJoinExecBuilder::from(nlj)
                        .with_filter(Some(filter))
                        .build()?;
                    Arc::new(rebuilt) as Arc<dyn ExecutionPlan>
                }
                None => node,
            },
            None => node,
        };
        Ok(Transformed::yes(Arc::new(InterruptibleExec {
            properties: node.properties().clone(),
            input: node,
            cancel: cancel.clone(),
        })))
    })
    .map(|t| t.data)
}

/// Operators whose output can be many batches per input batch.
fn is_join(name: &str) -> bool {
    name.ends_with("JoinExec") || name == "UnnestExec"
}

/// An operator's output, checked for cancellation before each poll.
#[derive(Debug)]
struct InterruptibleExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    cancel: Cancel,
}

impl InterruptibleExec {
    /// The same check over `children` (its one new input).
    fn wrap(&self, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(InterruptibleExec {
                properties: input.properties().clone(),
                input,
                cancel: self.cancel.clone(),
            })),
            _ => Err(DataFusionError::Internal(
                "InterruptibleExec has one child".into(),
            )),
        }
    }
}

impl DisplayAs for InterruptibleExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "InterruptibleExec")
    }
}

impl ExecutionPlan for InterruptibleExec {
    fn name(&self) -> &str {
        "InterruptibleExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.wrap(children)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.wrap(children)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.cancel.check()?;
        Ok(Box::pin(Interruptible {
            inner: self.input.execute(partition, context)?,
            cancel: self.cancel.clone(),
            done: false,
        }))
    }
}

struct Interruptible {
    inner: SendableRecordBatchStream,
    cancel: Cancel,
    done: bool,
}

impl Stream for Interruptible {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Err(e) = self.cancel.check() {
            self.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        self.inner.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for Interruptible {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// A join filter that fails once its query is cancelled; shown as the filter it wraps.
#[derive(Debug)]
struct InterruptibleExpr {
    inner: Arc<dyn PhysicalExpr>,
    cancel: Cancel,
}

impl PartialEq for InterruptibleExpr {
    fn eq(&self, other: &Self) -> bool {
        self.inner.eq(&other.inner) && Arc::ptr_eq(&self.cancel.0, &other.cancel.0)
    }
}

impl Eq for InterruptibleExpr {}

impl Hash for InterruptibleExpr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl fmt::Display for InterruptibleExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl PhysicalExpr for InterruptibleExpr {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.inner.data_type(input_schema)
    }
    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.inner.nullable(input_schema)
    }
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }
    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        self.cancel.check()?;
        self.inner.evaluate(batch)
    }
    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }
    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        match (children.pop(), children.is_empty()) {
            (Some(inner), true) => Ok(Arc::new(InterruptibleExpr {
                inner,
                cancel: self.cancel.clone(),
            })),
            _ => Err(DataFusionError::Internal(
                "a join filter's wrapper has one child".into(),
            )),
        }
    }
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::SessionContext;

    /// A join of 9·10^6 pairs that no pair passes: it emits no batch while it works.
    async fn join(cancel: &Cancel) -> (Arc<dyn ExecutionPlan>, Arc<TaskContext>) {
        let ctx = SessionContext::new();
        let plan = ctx
            .sql(
                "SELECT count(*) FROM generate_series(1, 3000) a CROSS JOIN generate_series(1, 3000) b \
                 WHERE a.value + b.value < 0",
            )
            .await
            .expect("sql")
            .create_physical_plan()
            .await
            .expect("plan");
        (interruptible(plan, cancel).expect("wrap"), ctx.task_ctx())
    }

    #[tokio::test]
    async fn a_cancelled_join_fails_with_57014_and_its_filter_checks() {
        let cancel = Cancel::default();
        let (plan, task) = join(&cancel).await;
        let mut wrapped_filters = 0;
        plan.apply(|node| {
            if let Some(nlj) = node.downcast_ref::<NestedLoopJoinExec>() {
                let f = nlj.filter().expect("a filter");
                assert!(f.expression().downcast_ref::<InterruptibleExpr>().is_some());
                wrapped_filters += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .expect("walk");
        assert_eq!(wrapped_filters, 1);
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        assert!(shown.contains("InterruptibleExec"), "{shown}");
        // Not cancelled: it answers.
        let rows = collect(plan.clone(), task.clone()).await.expect("answer");
        assert_eq!(rows[0].num_rows(), 1);
        cancel.set();
        let e = collect(plan, task).await.expect_err("cancelled");
        assert_eq!(
            QueryError::find(&e).map(|q| q.sqlstate),
            Some("57014"),
            "{e}"
        );
    }
}
