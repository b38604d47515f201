//! `text @@ 'query'`: PostgreSQL's text-search operator, planned as `match(text, 'query')`.
//!
//! Only the text-on-text form is taken; anything else is left to DataFusion (which rejects it).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use super::match_udf;

/// Plans `a @@ b` over text as `match(a, b)`.
#[derive(Debug, Default)]
pub struct AtAtPlanner;

fn is_text(e: &Expr, schema: &DFSchema) -> bool {
    matches!(
        e.get_type(schema),
        Ok(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
    )
}

impl ExprPlanner for AtAtPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        if expr.op != BinaryOperator::AtAt
            || !is_text(&expr.left, schema)
            || !is_text(&expr.right, schema)
        {
            return Ok(PlannerResult::Original(expr));
        }
        Ok(PlannerResult::Planned(
            match_udf().call(vec![expr.left, expr.right]),
        ))
    }
}
