//! Top-k by time: `ORDER BY ts DESC LIMIT k` over `logs` reads the newest segments, and their
//! newest row groups, first, so the TopK's dynamic filter (`ts > the k-th best so far`, pushed
//! into the Parquet scan) rules out older segments before they are opened and older rows before
//! their other columns are decoded.
//!
//! [`TopKReadOrder`] runs after DataFusion's own physical rules (its sort pushdown stops at the
//! `FilterExec` an inexact filter leaves above a scan). For a `SortExec` with a fetch whose first
//! key is a column, it walks down through the operators that neither drop nor reorder rows by
//! position (filter, projection, repartitioning) to a [`LogScanExec`], and asks each
//! Parquet source under it to read in that column's order (files ordered by their statistics,
//! row groups by theirs, reversed for `DESC`). The sort stays: the order is a hint the scan
//! follows, never trusted for the answer, so a wrong guess costs time, never rows.

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, SortOrderPushdownResult};

use super::scan::LogScanExec;

/// Has the `logs` scans under a top-k sort read in the sort's order (see the module doc).
#[derive(Debug, Default)]
pub struct TopKReadOrder;

impl PhysicalOptimizerRule for TopKReadOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            let first = sort.expr().first();
            let key = match first.expr.downcast_ref::<Column>() {
                Some(c) if sort.fetch().is_some() => (c.name().to_string(), first.options),
                _ => return Ok(Transformed::no(node)),
            };
            match ordered(sort.input(), &key.0, key.1)? {
                Some(input) => Ok(Transformed::yes(replace_children_if_necessary(
                    node.clone(),
                    vec![input],
                )?)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "top_k_read_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with the `logs` scan under it reading in `column`'s order, if there is one to reach.
fn ordered(
    plan: &Arc<dyn ExecutionPlan>,
    column: &str,
    options: SortOptions,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let [child] = plan.children()[..] else {
        return Ok(None);
    };
    let new_child = if plan.is::<LogScanExec>() {
        sources_ordered(child, column, options)?
    } else if plan.is::<FilterExec>()
        || plan.is::<ProjectionExec>()
        || plan.is::<RepartitionExec>()
        || plan.is::<CooperativeExec>()
    {
        ordered(child, column, options)?
    } else {
        None
    };
    new_child
        .map(|c| replace_children_if_necessary(plan.clone(), vec![c]))
        .transpose()
}

/// The sources of a scan (a Parquet source, or a union of sources) reading in `column`'s order
/// where they can; `None` when none can.
fn sources_ordered(
    plan: &Arc<dyn ExecutionPlan>,
    column: &str,
    options: SortOptions,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if plan.is::<UnionExec>() {
        let mut changed = false;
        let mut children = Vec::new();
        for child in plan.children() {
            match sources_ordered(child, column, options)? {
                Some(c) => {
                    changed = true;
                    children.push(c);
                }
                None => children.push(child.clone()),
            }
        }
        return match changed {
            true => Ok(Some(replace_children_if_necessary(plan.clone(), children)?)),
            false => Ok(None),
        };
    }
    if !plan.is::<DataSourceExec>() {
        return Ok(None);
    }
    let Ok(index) = plan.schema().index_of(column) else {
        return Ok(None);
    };
    let order = [PhysicalSortExpr::new(
        Arc::new(Column::new(column, index)),
        options,
    )];
    Ok(match plan.try_pushdown_sort(&order)? {
        SortOrderPushdownResult::Exact { inner } | SortOrderPushdownResult::Inexact { inner } => {
            Some(inner)
        }
        SortOrderPushdownResult::Unsupported => None,
    })
}
