//! Function calls as PostgreSQL clients write them:
//!
//! - pass `generate_subscripts`: `generate_subscripts(a, 1)` in a select list (SQLAlchemy's
//!   index and constraint reflection, beside `unnest(a)`) is one row per subscript, 1 to the
//!   array's length: `unnest(generate_series(1, array_length(a, 1)))`, advancing with the
//!   `unnest(a)` beside it as in PostgreSQL.
//! - pass `pretty_flags`: the `pretty` argument of `pg_get_constraintdef(oid, 't')` and its kin
//!   written as text (psycopg 3 sends a boolean parameter as its text) is a boolean, the
//!   unknown-typed literal PostgreSQL reads as the parameter's type.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, Statement, Value, VisitMut, VisitorMut,
};

/// The last name part of a call, lowercased.
fn called(f: &Function) -> Option<String> {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
}

fn unnamed_args(f: &Function) -> Option<Vec<Expr>> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// `generate_subscripts(a, d)` → `unnest(generate_series(1, array_length(a, d)))`.
pub fn generate_subscripts(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut Subscripts);
    stmt
}

struct Subscripts;

impl VisitorMut for Subscripts {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            if called(f).as_deref() == Some("generate_subscripts") {
                if let Some([array, dim]) = unnamed_args(f).as_deref() {
                    let one = Expr::Value(Value::Number("1".into(), false).with_empty_span());
                    let length = call("array_length", vec![array.clone(), dim.clone()]);
                    *e = call("unnest", vec![call("generate_series", vec![one, length])]);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The catalog functions whose last argument is `pretty boolean`.
const PRETTY: &[&str] = &[
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_indexdef",
    "pg_get_viewdef",
    "pg_get_ruledef",
    "pg_get_triggerdef",
    "pg_get_statisticsobjdef_columns",
    "pg_get_partkeydef",
];

/// A text `pretty` argument as the boolean it spells.
pub fn pretty_flags(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut Pretty);
    stmt
}

struct Pretty;

impl VisitorMut for Pretty {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        if !called(f).is_some_and(|n| PRETTY.contains(&n.as_str())) {
            return ControlFlow::Continue(());
        }
        if let FunctionArguments::List(l) = &mut f.args {
            if l.args.len() >= 2 {
                if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) =
                    l.args.last_mut()
                {
                    let flag = match &v.value {
                        Value::SingleQuotedString(s) => match s.to_ascii_lowercase().as_str() {
                            "t" | "true" | "on" | "yes" | "1" => Some(true),
                            "f" | "false" | "off" | "no" | "0" => Some(false),
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some(b) = flag {
                        v.value = Value::Boolean(b);
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}
