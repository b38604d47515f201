//! Names and numbers for catalog objects:
//!
//! - pass `reg_names`: `'pg_catalog.array_in'::regproc` (pgjdbc's type cache) becomes
//!   `'array_in'`: the `pg_type.typinput` it is compared with holds function names.
//! - pass `oid_literals`: see [`oid_literals`].
//! - pass `to_regtype`: see [`to_regtype`].

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Statement,
    Value, ValueWithSpan, VisitMut, VisitorMut,
};

/// Replaces each `'name'::regproc` of `stmt` by the function's name.
pub fn rewrite(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut RegProc);
    stmt
}

struct RegProc;

impl VisitorMut for RegProc {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Cast {
            expr, data_type, ..
        } = e
        else {
            return ControlFlow::Continue(());
        };
        let regproc = matches!(data_type, DataType::Custom(name, _)
            if name.to_string().to_ascii_lowercase().trim_start_matches("pg_catalog.") == "regproc");
        if let (
            true,
            Expr::Value(ValueWithSpan {
                value: Value::SingleQuotedString(name),
                ..
            }),
        ) = (regproc, expr.as_ref())
        {
            let bare = name.rsplit('.').next().unwrap_or(name).to_string();
            *e = Expr::Value(Value::SingleQuotedString(bare).with_empty_span());
        }
        ControlFlow::Continue(())
    }
}

/// Pass `oid_literals`: `pg_relation_is_publishable('16391')` (psql's `\d`): a catalog function's
/// argument written as a string of digits is an `oid`, the unknown-typed literal PostgreSQL
/// reads as the parameter's `oid`/`regclass` type.
pub fn oid_literals(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut OidLiterals);
    stmt
}

struct OidLiterals;

impl VisitorMut for OidLiterals {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        let catalog = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.to_ascii_lowercase().starts_with("pg_"));
        if let (true, FunctionArguments::List(list)) = (catalog, &mut f.args) {
            for arg in &mut list.args {
                if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e @ Expr::Value(_))) = arg {
                    let Expr::Value(v) = &*e else { continue };
                    let digits = match &v.value {
                        Value::SingleQuotedString(s)
                            if !s.is_empty()
                                && s.len() <= 10
                                && s.bytes().all(|b| b.is_ascii_digit()) =>
                        {
                            Some(s.clone())
                        }
                        _ => None,
                    };
                    if let Some(d) = digits {
                        // oids are `integer` in this catalog.
                        *e = Expr::Cast {
                            kind: CastKind::DoubleColon,
                            expr: Box::new(Expr::Value(Value::Number(d, false).with_empty_span())),
                            data_type: DataType::Int(None),
                            array: false,
                            format: None,
                        };
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Pass `to_regtype`: `to_regtype('hstore')` (psycopg 3's type lookup, which SQLAlchemy runs on
/// connect) is the type's oid, or NULL when there is no such type: a lookup in `pg_type` by
/// the name after any schema.
pub fn to_regtype(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut ToRegtype);
    stmt
}

struct ToRegtype;

static TYPE_LOOKUP: LazyLock<Option<Query>> = LazyLock::new(|| {
    super::template("SELECT min(t.oid) FROM pg_catalog.pg_type t WHERE t.typname = $1")
});

impl VisitorMut for ToRegtype {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        let named = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("to_regtype"));
        let arg = match &f.args {
            FunctionArguments::List(l) if l.args.len() == 1 => match l.args.first() {
                Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(a))) => Some(a.clone()),
                _ => None,
            },
            _ => None,
        };
        if let (true, Some(mut name), Some(template)) = (named, arg, TYPE_LOOKUP.as_ref()) {
            if let Expr::Value(v) = &mut name {
                if let Value::SingleQuotedString(s) = &mut v.value {
                    *s = s
                        .rsplit('.')
                        .next()
                        .unwrap_or(s)
                        .trim_matches('"')
                        .to_string();
                }
            }
            *e = Expr::Subquery(Box::new(super::filled(template, &name)));
        }
        ControlFlow::Continue(())
    }
}
