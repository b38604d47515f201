//! Pass `percentile_disc`: PostgreSQL's ordered-set aggregate
//! `percentile_disc(f) WITHIN GROUP (ORDER BY e)`, which DataFusion lacks, as the value at
//! position `ceil(f × n)` (at least the first) of the group's non-NULL `e` in that order:
//! `array_element(array_agg(e ORDER BY e) FILTER (WHERE e IS NOT NULL), greatest(ceil(f * count(e)), 1))`,
//! PostgreSQL's own arithmetic. A `FILTER` the call has applies to both. NULL over no rows.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, FunctionArguments, Statement, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Rewrites every `percentile_disc(…) WITHIN GROUP (…)` of `stmt`.
pub fn percentile_disc(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut PercentileDisc);
    stmt
}

struct PercentileDisc;

impl VisitorMut for PercentileDisc {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        if super::last_name(&f.name).as_deref() != Some("percentile_disc") || f.over.is_some() {
            return ControlFlow::Continue(());
        }
        let ([order], FunctionArguments::List(args)) = (f.within_group.as_slice(), &f.args) else {
            return ControlFlow::Continue(());
        };
        let [fraction] = args.args.as_slice() else {
            return ControlFlow::Continue(());
        };
        let key = &order.expr;
        let options = &order.options;
        let (kept, counted) = match &f.filter {
            Some(c) => (
                format!("{key} IS NOT NULL AND ({c})"),
                format!(" FILTER (WHERE {c})"),
            ),
            None => (format!("{key} IS NOT NULL"), String::new()),
        };
        // `array_element`, not `[…]`: DataFusion plans a subscript of `array_agg` as
        // `nth_value`, an aggregate the `count` beside it cannot be nested in.
        let sql = format!(
            "array_element(array_agg({key} ORDER BY {key} {options}) FILTER (WHERE {kept}), \
             greatest(CAST(ceil(({fraction}) * count({key}){counted}) AS bigint), 1))"
        );
        let parsed = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_expr());
        if let Ok(rewritten) = parsed {
            *e = rewritten;
        }
        ControlFlow::Continue(())
    }
}
