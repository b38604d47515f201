//! Subqueries as values: pass `array_subquery` and pass `exists_values` ([`exists_values`]).
//!
//! Pass `array_subquery`: `ARRAY(SELECT e FROM … ORDER BY o)` (psql's `\d`, `\du`, pgAdmin)
//! becomes `coalesce((SELECT array_agg(e ORDER BY o) FROM …), make_array())`: the same
//! elements in the same order, and `{}` when the subquery finds no row. An `ORDER BY 1`
//! names the select list's column, as it does in PostgreSQL. A subquery of any other shape
//! (grouped, distinct, limited, a set operation) is aggregated from outside, in its own order.
//! `ARRAY(SELECT x FROM unnest(a) AS t(x))` is `a` itself (`{}` when `a` is NULL).

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, GroupByExpr, OrderByExpr, OrderByKind, Query, SelectItem, SetExpr,
    Statement, TableFactor, Value, VisitMut, VisitorMut,
};

/// Rewrites every `ARRAY(subquery)` of `stmt`.
pub fn rewrite(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut ArraySubquery);
    stmt
}

struct ArraySubquery;

impl VisitorMut for ArraySubquery {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        let is_array = f.name.to_string().eq_ignore_ascii_case("array");
        if let (true, FunctionArguments::Subquery(q)) = (is_array, &f.args) {
            if let Some(array) = unnested_array(q) {
                // A NULL array lists no element: `{}`, as the subquery would be.
                *e = super::call("coalesce", vec![array, super::call("make_array", vec![])]);
                return ControlFlow::Continue(());
            }
            let aggregated = aggregated(q.as_ref().clone());
            *e = super::call(
                "coalesce",
                vec![
                    Expr::Subquery(Box::new(aggregated)),
                    super::call("make_array", vec![]),
                ],
            );
        }
        ControlFlow::Continue(())
    }
}

/// `E` when `q` is `SELECT x FROM unnest(E) AS t(x)` (psql's `\dy`): the array itself (`{}` for
/// NULL), whose
/// elements the subquery lists in order, and which may name the outer query's columns.
fn unnested_array(q: &Query) -> Option<Expr> {
    let plain =
        q.limit_clause.is_none() && q.fetch.is_none() && q.with.is_none() && q.order_by.is_none();
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let [from] = s.from.as_slice() else {
        return None;
    };
    let simple = plain
        && from.joins.is_empty()
        && s.selection.is_none()
        && s.distinct.is_none()
        && s.having.is_none()
        && matches!(&s.group_by, GroupByExpr::Expressions(v, _) if v.is_empty());
    let (array, alias) = match &from.relation {
        TableFactor::Table {
            name,
            args: Some(args),
            alias: Some(alias),
            with_ordinality: false,
            ..
        } if name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("unnest")) =>
        {
            match args.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => (e.clone(), alias),
                _ => return None,
            }
        }
        TableFactor::UNNEST {
            array_exprs,
            alias: Some(alias),
            with_ordinality: false,
            with_offset: false,
            ..
        } => match array_exprs.as_slice() {
            [e] => (e.clone(), alias),
            _ => return None,
        },
        _ => return None,
    };
    // The one column: the alias's column name, or the alias itself (`unnest(a) AS x`).
    let column = match alias.columns.as_slice() {
        [c] => &c.name,
        [] => &alias.name,
        _ => return None,
    };
    let selected = match s.projection.as_slice() {
        [SelectItem::UnnamedExpr(Expr::Identifier(i))] => i,
        [SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts))] => match parts.as_slice() {
            [table, i] if table.value == alias.name.value => i,
            _ => return None,
        },
        _ => return None,
    };
    (simple && selected.value == column.value).then_some(array)
}

/// `SELECT array_agg(e ORDER BY …) FROM …` for `q`'s one column.
fn aggregated(mut q: Query) -> Query {
    let simple = q.limit_clause.is_none()
        && q.fetch.is_none()
        && q.with.is_none()
        && matches!(q.body.as_ref(), SetExpr::Select(s)
            if s.projection.len() == 1
                && s.distinct.is_none()
                && s.having.is_none()
                && matches!(&s.group_by, GroupByExpr::Expressions(v, _) if v.is_empty())
                && matches!(s.projection.first(), Some(SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. })));
    if simple {
        let order = q.order_by.take();
        if let SetExpr::Select(select) = q.body.as_mut() {
            let element = match select.projection.first() {
                Some(SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. }) => {
                    x.clone()
                }
                _ => return q,
            };
            let mut orders: Vec<OrderByExpr> = match order.map(|o| o.kind) {
                Some(OrderByKind::Expressions(v)) => v,
                _ => vec![],
            };
            for o in &mut orders {
                if matches!(&o.expr, Expr::Value(v) if v.value == Value::Number("1".into(), false))
                {
                    o.expr = element.clone();
                }
            }
            select.projection = vec![SelectItem::UnnamedExpr(array_agg(element, orders))];
        }
        return q;
    }
    // Any other shape: its rows, aggregated from outside.
    let Some(mut outer) = OUTSIDE.clone() else {
        return q;
    };
    if let SetExpr::Select(select) = outer.body.as_mut() {
        if let Some(TableFactor::Derived { subquery, .. }) =
            select.from.first_mut().map(|t| &mut t.relation)
        {
            **subquery = q;
        }
    }
    outer
}

/// The outside aggregation, its subquery a stand-in.
static OUTSIDE: LazyLock<Option<Query>> = LazyLock::new(|| {
    match super::parse("SELECT array_agg(__element) FROM (SELECT 1) AS __array(__element)")
        .ok()?
        .pop()?
    {
        Statement::Query(q) => Some(*q),
        _ => None,
    }
});

fn array_agg(element: Expr, orders: Vec<OrderByExpr>) -> Expr {
    let clauses = if orders.is_empty() {
        vec![]
    } else {
        vec![FunctionArgumentClause::OrderBy(orders)]
    };
    super::call_with("array_agg", vec![element], clauses)
}

/// Pass `exists_values`: `EXISTS (SELECT … FROM … WHERE …)` as a value in a select list, which
/// DataFusion plans only in a filter, becomes `(SELECT count(*) > 0 FROM … WHERE …)`: the
/// same truth, correlated or not (`NOT EXISTS` compares with 0). A subquery of another shape
/// (grouped, limited, a set operation) is counted from outside.
pub fn exists_values(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut ExistsValues);
    stmt
}

struct ExistsValues;

impl VisitorMut for ExistsValues {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = q.body.as_mut() {
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item
                {
                    let _ = visit_expressions_mut(e, |x| {
                        if let Expr::Exists { subquery, negated } = x {
                            if let Some(counted) = counted(subquery.as_ref().clone(), *negated) {
                                *x = Expr::Subquery(Box::new(counted));
                            }
                        }
                        ControlFlow::<()>::Continue(())
                    });
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// `SELECT count(*) > 0 …` (or `= 0` when `negated`) over `q`'s rows.
fn counted(mut q: Query, negated: bool) -> Option<Query> {
    let op = if negated { "=" } else { ">" };
    let projected = |s: &datafusion::sql::sqlparser::ast::Select, fs: &[&str]| {
        s.projection.iter().any(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                super::calls(e, fs)
            }
            _ => false,
        })
    };
    // An ungrouped aggregate always finds its one row: EXISTS is true.
    if let SetExpr::Select(s) = q.body.as_ref() {
        let grouped = !matches!(&s.group_by, GroupByExpr::Expressions(v, _) if v.is_empty())
            || s.having.is_some();
        if !grouped && projected(s, super::AGGREGATES) && q.limit_clause.is_none() {
            let truth = Value::Boolean(!negated).with_empty_span();
            return super::parse(&format!("SELECT {truth}"))
                .ok()?
                .pop()
                .and_then(|st| match st {
                    Statement::Query(t) => Some(*t),
                    _ => None,
                });
        }
    }
    let simple = q.limit_clause.is_none()
        && q.fetch.is_none()
        && q.with.is_none()
        && matches!(q.body.as_ref(), SetExpr::Select(s)
            if s.distinct.is_none()
                && s.having.is_none()
                && !projected(s, super::SET_RETURNING)
                && matches!(&s.group_by, GroupByExpr::Expressions(v, _) if v.is_empty()));
    let template = match super::parse(&format!("SELECT count(*) {op} 0 FROM (SELECT 1) AS e"))
        .ok()?
        .pop()?
    {
        Statement::Query(t) => *t,
        _ => return None,
    };
    if simple {
        // The subquery's own FROM and WHERE, counted: a correlation stays an equality filter.
        q.order_by = None;
        let SetExpr::Select(select) = q.body.as_mut() else {
            return None;
        };
        let SetExpr::Select(counting) = template.body.as_ref() else {
            return None;
        };
        select.projection = counting.projection.clone();
        return Some(q);
    }
    let mut outer = template;
    if let SetExpr::Select(select) = outer.body.as_mut() {
        if let Some(TableFactor::Derived { subquery, .. }) =
            select.from.first_mut().map(|t| &mut t.relation)
        {
            **subquery = q;
        }
    }
    Some(outer)
}
