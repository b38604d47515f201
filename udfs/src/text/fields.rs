//! Plans the `field:value` terms of a `match()` query as comparisons on the row's columns.
//!
//! `match(msg, 'timeout service:api')` becomes `match(msg, '"timeout"') AND service = 'api'`:
//! the parts over text stay `match()` calls on the same text, each field term is an equality
//! on the column of that name beside the text column, so the index serves both.

use datafusion::common::{Column, DFSchema};
use datafusion::error::Result;
use datafusion::logical_expr::{lit, Expr};

use super::query::Part;
use super::{invalid, match_udf};

/// The expression for `parts`, with `text` the searched column.
pub(super) fn plan(parts: &Part, text: &Expr, schema: &DFSchema) -> Result<Expr> {
    Ok(match parts {
        Part::Text(q) => match_udf().call(vec![text.clone(), lit(q.clone())]),
        Part::Field { field, value } => {
            let Expr::Column(c) = text else {
                return Err(invalid(format!(
                    "match() can use {field}:… only on a table's column, not on {text}"
                )));
            };
            let column = Column::new(c.relation.clone(), field);
            if !schema.has_column(&column) {
                return Err(invalid(format!(
                    "match() field {field}:… needs a column {field} beside {}",
                    c.name
                )));
            }
            Expr::Column(column).eq(lit(value.clone()))
        }
        Part::And(ps) => conjoin(ps, text, schema, Expr::and)?,
        Part::Or(ps) => conjoin(ps, text, schema, Expr::or)?,
        Part::Not(p) => Expr::Not(Box::new(plan(p, text, schema)?)),
    })
}

fn conjoin(
    parts: &[Part],
    text: &Expr,
    schema: &DFSchema,
    join: fn(Expr, Expr) -> Expr,
) -> Result<Expr> {
    let mut exprs = parts.iter().map(|p| plan(p, text, schema));
    let first = exprs
        .next()
        .ok_or_else(|| invalid("match() query has an empty group"))??;
    exprs.try_fold(first, |acc, e| Ok(join(acc, e?)))
}
