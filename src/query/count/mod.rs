//! `count(*)` from the segments' count tables instead of their rows: a logical rewrite of
//!
//! ```text
//! Aggregate: groupBy=[labels, f(ts) constant within a minute], aggr=[count(*)]
//!   Filter: ts range AND label = / IN literals          (optional)
//!     TableScan: logs
//! ```
//! into the same Aggregate with `sum(n)` over [`CountedLogs`], which reads each segment's
//! per-minute counts (`crate::index::CountTable`) and decodes only what they cannot answer: the
//! hot buffer, segments without a table, and the minutes a range bound cuts. The answer is the
//! same as counting the rows; `EXPLAIN ANALYZE` shows `segments_counted` and `rows_counted`.
//!
//! Any other filter (`match()` on text, `trace_id`, `attrs`), aggregate or grouping leaves the
//! plan alone: the count is then made from the rows.

mod spec;
mod table;

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::Transformed;
use datafusion::common::Column;
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, TableScan, TableScanBuilder};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

pub use spec::CountSpec;
pub use table::{CountedLogs, N};

use spec::{groups_by_minute_or_label, is_count_star};

use super::LogTable;
use crate::store::Store;

/// The optimizer rule; see the module docs.
#[derive(Debug)]
pub struct CountFromIndex {
    store: Arc<Store>,
}

impl CountFromIndex {
    pub fn new(store: Arc<Store>) -> CountFromIndex {
        CountFromIndex { store }
    }

    /// The rewritten aggregate, if `agg` counts rows of `logs` a count table can count.
    fn counted(&self, agg: &Aggregate) -> Result<Option<LogicalPlan>> {
        let countable = !agg.aggr_expr.is_empty()
            && agg.aggr_expr.iter().all(is_count_star)
            && agg
                .group_expr
                .iter()
                .all(|g| !matches!(g, Expr::GroupingSet(_)) && groups_by_minute_or_label(g));
        if !countable {
            return Ok(None);
        }
        // A projection of bare columns (what projection pushdown leaves) changes no count.
        let input = match agg.input.as_ref() {
            LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                p.input.as_ref()
            }
            other => other,
        };
        let (scan, mut filters): (&TableScan, Vec<Expr>) = match input {
            LogicalPlan::Filter(f) => match f.input.as_ref() {
                LogicalPlan::TableScan(s) => (
                    s,
                    split_conjunction(&f.predicate)
                        .into_iter()
                        .cloned()
                        .collect(),
                ),
                _ => return Ok(None),
            },
            LogicalPlan::TableScan(s) => (s, Vec::new()),
            _ => return Ok(None),
        };
        filters.extend(scan.filters.iter().cloned());
        let is_logs = source_as_provider(&scan.source).is_ok_and(|p| p.is::<LogTable>());
        if !is_logs || scan.fetch.is_some() || CountSpec::from_filters(&filters).is_none() {
            return Ok(None);
        }
        let provider = Arc::new(CountedLogs::new(self.store.clone()));
        let schema = provider.schema();
        let mut read = BTreeSet::new();
        for g in &agg.group_expr {
            for c in g.column_refs() {
                read.insert(schema.index_of(&c.name)?);
            }
        }
        read.insert(schema.index_of(N)?);
        let counted = TableScanBuilder::new(scan.table_name.clone(), provider_as_source(provider))
            .with_projection(Some(read.into_iter().collect()))
            .with_filters(filters)
            .build()?;
        let n = Expr::Column(Column::new(Some(scan.table_name.clone()), N));
        // Each count keeps its output name, so the plan above it reads the sums unchanged.
        let first_aggr = agg.schema.fields().len() - agg.aggr_expr.len();
        let sums = (0..agg.aggr_expr.len())
            .map(|i| {
                let name = agg.schema.field(first_aggr + i).name();
                sum(n.clone()).alias(name)
            })
            .collect();
        let rewritten = Aggregate::try_new(
            Arc::new(LogicalPlan::TableScan(counted)),
            agg.group_expr.clone(),
            sums,
        )?;
        Ok(Some(LogicalPlan::Aggregate(rewritten)))
    }
}

impl OptimizerRule for CountFromIndex {
    fn name(&self) -> &str {
        "count_from_index"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = &plan else {
            return Ok(Transformed::no(plan));
        };
        match self.counted(agg)? {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => Ok(Transformed::no(plan)),
        }
    }
}
