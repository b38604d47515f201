//! Records and arrays, as pgjdbc's and psql's catalog queries use them:
//!
//! - pass `field_access`: `(expr).field` reads a field of a record; DataFusion reads
//!   `expr['field']`.
//! - pass `expand_array`: `information_schema._pg_expandarray(arr)` is set-returning (one
//!   `(x, n)` record per element, in the select list); it becomes
//!   `unnest(pg_expandarray(arr))`, the same rows, and two such calls in one select list
//!   advance together as in PostgreSQL.
//! - pass `unnest_from`: see [`unnest_from`].
//! - pass `array_text_literals`: an array compared with an array's text; see
//!   [`array_text_literals`].

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, Statement, Subscript, TableAliasColumnDef, TableFactor,
    Value, VisitMut, VisitorMut,
};

/// `(expr).field` → `expr['field']` throughout `stmt`.
pub fn field_access(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut FieldAccess);
    stmt
}

struct FieldAccess;

impl VisitorMut for FieldAccess {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::CompoundFieldAccess { root, access_chain } = e {
            // Only a parenthesized record: `t.col` parses as a compound identifier.
            if matches!(root.as_ref(), Expr::Nested(_)) {
                for access in access_chain.iter_mut() {
                    if let AccessExpr::Dot(Expr::Identifier(field)) = access {
                        // Folded to lower case unless quoted, as PostgreSQL folds names.
                        let folded = match field.quote_style {
                            Some(_) => field.value.clone(),
                            None => field.value.to_ascii_lowercase(),
                        };
                        let name = Value::SingleQuotedString(folded);
                        *access = AccessExpr::Subscript(Subscript::Index {
                            index: Expr::Value(name.with_empty_span()),
                        });
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// `_pg_expandarray(arr)` → `unnest(pg_expandarray(arr))` throughout `stmt`.
pub fn expand_array(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut ExpandArray);
    stmt
}

struct ExpandArray;

impl VisitorMut for ExpandArray {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            let named = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("_pg_expandarray"));
            if named {
                f.name = ObjectName::from(vec![Ident::new("pg_expandarray")]);
                let mut unnest = f.clone();
                unnest.name = ObjectName::from(vec![Ident::new("unnest")]);
                unnest.args = FunctionArguments::List(FunctionArgumentList {
                    duplicate_treatment: None,
                    args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(e.clone()))],
                    clauses: vec![],
                });
                *e = Expr::Function(unnest);
            }
        }
        ControlFlow::Continue(())
    }
}

/// `col = '{0}'`: a `pg_catalog` array column compared with an array's text (psql's `\d` asks
/// `pol.polroles = '{0}'`). PostgreSQL reads the unknown-typed literal as the column's array
/// type; here it becomes `ARRAY[0]` (numbers when every element is one, else text). Only a
/// catalog array column is compared so: `msg = '{retry}'` over `logs` compares text.
pub fn array_text_literals(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut ArrayText);
    stmt
}

struct ArrayText;

impl VisitorMut for ArrayText {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::BinaryOp { left, op, right } = e {
            if matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
                match (string_literal(left), string_literal(right)) {
                    (Some(text), None) if catalog_array(right) => {
                        if let Some(array) = array_of_text(text) {
                            **left = array;
                        }
                    }
                    (None, Some(text)) if catalog_array(left) => {
                        if let Some(array) = array_of_text(text) {
                            **right = array;
                        }
                    }
                    _ => {}
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Whether `e` is a column reference to a `pg_catalog` array column.
fn catalog_array(e: &Expr) -> bool {
    let column = match e {
        Expr::Identifier(i) => Some(&i.value),
        Expr::CompoundIdentifier(ids) => ids.last().map(|i| &i.value),
        _ => None,
    };
    column.is_some_and(|c| crate::query::pg_types::is_catalog_array(&c.to_ascii_lowercase()))
}

fn string_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn array_of_text(text: &str) -> Option<Expr> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    if inner.is_empty() || inner.contains([':', '"', '{', '}']) {
        return None;
    }
    let items: Vec<&str> = inner.split(',').map(str::trim).collect();
    let numbers = items.iter().all(|i| i.parse::<i64>().is_ok());
    let elem = items
        .iter()
        .map(|i| {
            let v = if numbers {
                Value::Number((*i).to_string(), false)
            } else {
                Value::SingleQuotedString((*i).to_string())
            };
            Expr::Value(v.with_empty_span())
        })
        .collect();
    Some(Expr::Array(datafusion::sql::sqlparser::ast::Array {
        elem,
        named: true,
    }))
}

/// Pass `unnest_from`: `FROM pg_catalog.unnest(arr) AS k` (psql's `\d+`) is the `UNNEST` table
/// factor DataFusion plans, not a table function of that name.
pub fn unnest_from(mut stmt: Statement) -> Statement {
    let _ = stmt.visit(&mut UnnestFrom);
    stmt
}

struct UnnestFrom;

impl VisitorMut for UnnestFrom {
    type Break = ();

    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            with_ordinality,
            ..
        } = t
        {
            let unnest = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("unnest"));
            let exprs: Option<Vec<Expr>> = args
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect();
            if let (true, Some(array_exprs)) = (unnest, exprs) {
                // `unnest(a) AS x` names its column `x`, as PostgreSQL does.
                let mut alias = alias.take();
                if let Some(a) = alias.as_mut() {
                    if a.columns.is_empty() && array_exprs.len() == 1 {
                        a.columns = vec![TableAliasColumnDef::from_name(a.name.value.clone())];
                    }
                }
                *t = TableFactor::UNNEST {
                    alias,
                    array_exprs,
                    with_offset: false,
                    with_offset_alias: None,
                    with_ordinality: *with_ordinality,
                };
            }
        }
        ControlFlow::Continue(())
    }
}
