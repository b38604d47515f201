//! Pass `catalog_subqueries`: a correlated scalar subquery over `pg_catalog` is a key lookup
//! (pgjdbc's getTypeInfo asks `(SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid =
//! t.typrelid)`; SQLAlchemy's column reflection asks for defaults, identities and collations
//! this way, in the select list). DataFusion plans a correlated scalar subquery only when it
//! is aggregated, so its one value becomes `max(value)`: the same answer for the zero or one
//! row a lookup finds. A lookup DataFusion cannot decorrelate at all answers NULL in a select
//! list (see [`lookup`] for which, and why NULL is their answer here). A subquery over any
//! other table is left as written: DataFusion answers it, or refuses it with an error.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, CaseWhen, Expr, FunctionArg, FunctionArgExpr,
    GroupByExpr, ObjectNamePart, Query, SelectItem, SetExpr, Statement, TableFactor, Value,
    VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Aggregates the correlated catalog lookups of `stmt`.
pub fn rewrite(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut CatalogSubqueries);
    stmt
}

struct CatalogSubqueries;

impl VisitorMut for CatalogSubqueries {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        lookups_in(query.body.as_mut());
        ControlFlow::Continue(())
    }
}

/// The lookups of each select of `body` (both sides of a `UNION`).
fn lookups_in(body: &mut SetExpr) {
    let select = match body {
        SetExpr::Select(select) => select,
        SetExpr::SetOperation { left, right, .. } => {
            lookups_in(left);
            lookups_in(right);
            return;
        }
        _ => return,
    };
    if let Some(selection) = select.selection.as_mut() {
        let _ = visit_expressions_mut(selection, |e| {
            lookup(e, false);
            ControlFlow::<()>::Continue(())
        });
    }
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
            let _ = visit_expressions_mut(expr, |e| {
                lookup(e, true);
                ControlFlow::<()>::Continue(())
            });
        }
    }
}

/// Rewrites `e` if it is a correlated catalog lookup. Its conditions on the outer row alone
/// move out (`(SELECT v … WHERE d.k = a.k AND a.flag)` → `CASE WHEN a.flag THEN (SELECT max(v)
/// … WHERE d.k = a.k) END`), since DataFusion decorrelates equalities only. A lookup that
/// still compares the outer row by anything but equality cannot be planned: in a select list
/// it answers NULL (psql's `\d` asks for a column's collation when it differs from its type's,
/// as no column's does here), elsewhere it is left for DataFusion to refuse.
fn lookup(e: &mut Expr, in_select_list: bool) {
    let Expr::Subquery(q) = e else {
        return;
    };
    let Some(own) = catalog_tables(q) else {
        return;
    };
    if !is_correlated(q, &own) {
        return;
    }
    // An ordered, limited or distinct lookup is not one value to aggregate: left as written.
    if q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return;
    }
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    if select.distinct.is_some() || select.having.is_some() {
        return;
    }
    // A function in FROM over the outer row is a lateral join, which DataFusion does not plan.
    let mut unplannable = select.from.iter().any(|t| {
        std::iter::once(&t.relation)
            .chain(t.joins.iter().map(|j| &j.relation))
            .any(|r| match r {
                TableFactor::Table {
                    args: Some(args), ..
                } => args.args.iter().any(|a| reach_arg(a, &own)),
                TableFactor::UNNEST { array_exprs, .. } => {
                    array_exprs.iter().any(|e| reach(e, &own).outer)
                }
                _ => false,
            })
    });
    // Outer columns in the lookup's own select list are not decorrelated either.
    unplannable |= select.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => {
            reach(x, &own).outer
        }
        _ => false,
    });
    let mut outer_only = Vec::new();
    let mut kept = Vec::new();
    for c in select.selection.take().map(conjuncts).unwrap_or_default() {
        match reach(&c, &own) {
            Reach {
                outer: true,
                inner: false,
            } => outer_only.push(c),
            Reach {
                outer: true,
                inner: true,
            } => {
                unplannable |= !splits_by_equality(&c, &own);
                kept.push(c);
            }
            _ => kept.push(c),
        }
    }
    select.selection = and(kept);
    if unplannable {
        if in_select_list {
            *e = Expr::Value(Value::Null.with_empty_span());
        } else if let Some(outer) = and(outer_only) {
            // Left as written, the conditions put back.
            select.selection = and(select.selection.take().into_iter().chain([outer]).collect());
        }
        return;
    }
    aggregate_single_value(q);
    if let Some(condition) = and(outer_only) {
        // Where the outer row fails the conditions the lookup finds no row: its value over no
        // rows (NULL, or an aggregate's, as `count(*)`'s 0).
        let mut none = q.clone();
        if let SetExpr::Select(select) = none.body.as_mut() {
            select.selection = Some(Expr::Value(Value::Boolean(false).with_empty_span()));
        }
        *e = Expr::Case {
            case_token: AttachedToken::empty(),
            end_token: AttachedToken::empty(),
            operand: None,
            conditions: vec![CaseWhen {
                condition,
                result: e.clone(),
            }],
            else_result: Some(Box::new(Expr::Subquery(none))),
        };
    }
}

/// Which sides of a lookup an expression names: the outer row's tables, the lookup's own.
struct Reach {
    outer: bool,
    inner: bool,
}

fn reach(e: &Expr, own: &HashSet<String>) -> Reach {
    let mut r = Reach {
        outer: false,
        inner: false,
    };
    for_own_columns(e, &mut |x| match x {
        Expr::CompoundIdentifier(ids) if ids.len() >= 2 => {
            let table = ids[ids.len() - 2].value.to_ascii_lowercase();
            if own.contains(&table) {
                r.inner = true;
            } else {
                r.outer = true;
            }
        }
        Expr::Identifier(_) | Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            r.inner = true
        }
        _ => {}
    });
    r
}

/// Calls `f` on every expression of `node` outside the queries nested in it: a nested
/// subquery's own tables are neither the lookup's nor the outer row's.
fn for_own_columns<V: datafusion::sql::sqlparser::ast::Visit>(node: &V, f: &mut dyn FnMut(&Expr)) {
    struct Own<'a> {
        depth: usize,
        f: &'a mut dyn FnMut(&Expr),
    }
    impl Visitor for Own<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth == 0 {
                (self.f)(e);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = datafusion::sql::sqlparser::ast::Visit::visit(node, &mut Own { depth: 0, f });
}

/// `inner = outer`, each side naming one side only: a correlation DataFusion decorrelates.
fn splits_by_equality(c: &Expr, own: &HashSet<String>) -> bool {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = c
    else {
        return false;
    };
    let (l, r) = (reach(left, own), reach(right, own));
    (l.outer != l.inner) && (r.outer != r.inner) && l.outer != r.outer
}

fn reach_arg(a: &FunctionArg, own: &HashSet<String>) -> bool {
    match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => reach(e, own).outer,
        _ => false,
    }
}

fn conjuncts(e: Expr) -> Vec<Expr> {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut v = conjuncts(*left);
            v.extend(conjuncts(*right));
            v
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

fn and(v: Vec<Expr>) -> Option<Expr> {
    v.into_iter().reduce(|l, r| Expr::BinaryOp {
        left: Box::new(l),
        op: BinaryOperator::And,
        right: Box::new(r),
    })
}

/// `SELECT v FROM …` → `SELECT max(v) FROM …` (left alone if it is not that shape).
fn aggregate_single_value(q: &mut Query) {
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    if select.projection.len() != 1
        || !matches!(select.group_by, GroupByExpr::Expressions(ref v, _) if v.is_empty())
    {
        return;
    }
    let Some(item) = select.projection.first_mut() else {
        return;
    };
    let expr = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return,
    };
    // An aggregate already answers one row (`count(*) > 0` too).
    if super::calls(expr, super::AGGREGATES) {
        return;
    }
    let wrapped = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&format!("max({expr})"))
        .and_then(|mut p| p.parse_expr());
    if let Ok(w) = wrapped {
        *expr = w;
    }
}

/// Whether a subquery over `own` tables names a column of an outer table.
fn is_correlated(q: &Query, own: &HashSet<String>) -> bool {
    let mut correlated = false;
    for_own_columns(q.body.as_ref(), &mut |e| {
        if let Expr::CompoundIdentifier(ids) = e {
            // schema.table.column or table.column
            let table = match ids.len() {
                3 => ids.get(1),
                2 => ids.first(),
                _ => None,
            };
            if let Some(t) = table {
                if !own.contains(&t.value.to_ascii_lowercase()) {
                    correlated = true;
                }
            }
        }
    });
    correlated
}

/// The names and aliases of a select's tables, if every one is a `pg_catalog` table.
fn catalog_tables(q: &Query) -> Option<HashSet<String>> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let mut own: HashSet<String> = HashSet::new();
    let mut all_catalog = !select.from.is_empty();
    let relations = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for rel in relations {
        match rel {
            // A set-returning function over the row (`generate_series(0, array_upper(…))`).
            TableFactor::Table {
                name,
                alias,
                args: Some(_),
                ..
            } if matches!(
                name.to_string()
                    .to_ascii_lowercase()
                    .trim_start_matches("pg_catalog."),
                "generate_series" | "unnest" | "generate_subscripts"
            ) =>
            {
                if let Some(a) = alias {
                    own.insert(a.name.value.to_ascii_lowercase());
                }
            }
            TableFactor::UNNEST { alias, .. } => {
                if let Some(a) = alias {
                    own.insert(a.name.value.to_ascii_lowercase());
                }
            }
            TableFactor::Table { name, alias, .. } => {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| match p {
                        ObjectNamePart::Identifier(i) => Some(i.value.to_ascii_lowercase()),
                        _ => None,
                    })
                    .collect();
                let table = parts.last().cloned().unwrap_or_default();
                all_catalog &= table.starts_with("pg_")
                    && parts.len() <= 2
                    && parts
                        .first()
                        .is_some_and(|s| s == "pg_catalog" || s.starts_with("pg_"));
                own.insert(table);
                if let Some(a) = alias {
                    own.insert(a.name.value.to_ascii_lowercase());
                }
            }
            _ => all_catalog = false,
        }
    }
    all_catalog.then_some(own)
}
