//! Catalog lookups the statement spells as functions or casts:
//!
//! - pass `view_definitions`: `pg_get_viewdef(view [, pretty])` (psql's `\d+` of a view,
//!   pgAdmin, DBeaver) is the definition `pg_matviews` holds for that relation: a rollup view's
//!   SQL as it was written; NULL for any other relation, as for an oid that names no view.
//! - pass `regclass_names`: `CAST(format('%I.%I', schema, name) AS regclass)` (Metabase's field
//!   sync), a relation named by a computed text, is the oid of the relation of that name
//!   (unqualified: in `pg_catalog`, then `public`), or NULL when there is none (PostgreSQL
//!   raises 42P01); so is a literal name that needs no quoting (`'pg_proc'::regclass`, which
//!   DBeaver joins `pg_description` on). Other literals are pass `reg_casts`'; a number cast to
//!   `regclass` stays a number.

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query,
    Statement, Value, VisitMut, VisitorMut,
};

/// The definition of the relation whose oid is `$1` (an aggregate: at most one row, and a
/// correlated lookup DataFusion can plan).
static BY_OID: LazyLock<Option<Query>> = LazyLock::new(|| {
    super::template(
        "SELECT max(m.definition) FROM pg_catalog.pg_matviews m \
         JOIN pg_catalog.pg_class c ON c.relname = m.matviewname AND c.relkind = 'm' \
         WHERE c.oid = $1",
    )
});

/// The definition of the view named `$1` (`pg_get_viewdef('name')`).
static BY_NAME: LazyLock<Option<Query>> = LazyLock::new(|| {
    super::template(
        "SELECT max(m.definition) FROM pg_catalog.pg_matviews m WHERE m.matviewname = $1",
    )
});

/// Answers every `pg_get_viewdef` of `stmt` from `pg_matviews`.
pub fn view_definitions(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut ViewDefinitions);
    stmt
}

struct ViewDefinitions;

impl VisitorMut for ViewDefinitions {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        if super::last_name(&f.name).as_deref() != Some("pg_get_viewdef") {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(l) = &f.args else {
            return ControlFlow::Continue(());
        };
        let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(view))) = l.args.first() else {
            return ControlFlow::Continue(());
        };
        let named =
            matches!(view, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)));
        let template = if named { &*BY_NAME } else { &*BY_OID };
        if let Some(template) = template {
            *e = Expr::Subquery(Box::new(super::filled(template, view)));
        }
        ControlFlow::Continue(())
    }
}

/// The oid of the relation `$1` names: qualified, or unqualified on the search path
/// (`pg_catalog`, then `public`), as `quote_ident` and `format('%I')` spell names.
static RELATION_BY_NAME: LazyLock<Option<Query>> = LazyLock::new(|| {
    super::template(
        "SELECT first_value(r.oid ORDER BY r.rank) FROM ( \
           SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS key, c.oid, 0 AS rank \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           UNION ALL \
           SELECT quote_ident(c.relname), c.oid, \
                  CASE WHEN n.nspname = 'pg_catalog' THEN 1 ELSE 2 END \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname IN ('pg_catalog', 'public') \
         ) r WHERE r.key = $1",
    )
});

/// Answers every cast of a computed text to `regclass` in `stmt` with the relation's oid.
pub fn regclass_names(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut RegclassNames);
    stmt
}

struct RegclassNames;

/// Whether `e` is a literal name that needs no quoting (`'pg_proc'`, `'public.logs'`): looked
/// up on the search path here (PostgreSQL finds `'pg_proc'` in `pg_catalog`); any other literal
/// is pass `reg_casts`'.
fn plain_name(e: &Expr) -> bool {
    let Expr::Value(v) = e else {
        return false;
    };
    let Value::SingleQuotedString(name) = &v.value else {
        return false;
    };
    let part = |p: &str| {
        p.bytes().next().is_some_and(|b| !b.is_ascii_digit())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    name.split('.').count() <= 2 && name.split('.').all(part)
}

/// Whether `e` is text by its form: a text function, a concatenation, or a cast to text.
fn computed_text(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => matches!(
            super::last_name(&f.name).as_deref(),
            Some("format" | "concat" | "concat_ws" | "quote_ident" | "lower" | "upper" | "trim")
        ),
        Expr::BinaryOp {
            op: BinaryOperator::StringConcat,
            ..
        } => true,
        Expr::Cast { data_type, .. } => {
            matches!(data_type, DataType::Text | DataType::Varchar(_))
        }
        Expr::Nested(inner) => computed_text(inner),
        _ => false,
    }
}

impl VisitorMut for RegclassNames {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Cast {
            expr, data_type, ..
        } = e
        else {
            return ControlFlow::Continue(());
        };
        let regclass = match data_type {
            DataType::Regclass => true,
            DataType::Custom(name, _) => {
                name.to_string()
                    .to_ascii_lowercase()
                    .trim_start_matches("pg_catalog.")
                    == "regclass"
            }
            _ => false,
        };
        let named = computed_text(expr) || plain_name(expr);
        if let (true, true, Some(template)) = (regclass, named, RELATION_BY_NAME.as_ref()) {
            *e = Expr::Subquery(Box::new(super::filled(template, expr)));
        }
        ControlFlow::Continue(())
    }
}
