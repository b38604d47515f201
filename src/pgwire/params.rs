//! Parameter types of a prepared statement: what DataFusion infers, what the SQL casts a
//! placeholder to, and how they are described to clients (`ParameterDescription`).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use timberline_udfs::sqlstate;

use arrow_pg::datatypes::into_pg_type;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::sqlparser::ast::{
    visit_expressions, ArrayElemTypeDef, DataType as SqlType, Expr as SqlExpr, Statement, Value,
};
use pgwire::api::Type;
use pgwire::error::PgWireResult;

use super::error::{df_error, user_error};

/// The placeholders a statement casts to `oid[]` (`$2::oid[]`, `$1::pg_catalog.oid[]`), read
/// from its syntax tree: text in a string literal or a comment is not a cast.
pub fn oid_array_params(stmt: &Statement) -> Arc<[usize]> {
    let mut out = Vec::new();
    let _ = visit_expressions(stmt, |e| {
        if let SqlExpr::Cast {
            expr,
            data_type: SqlType::Array(ArrayElemTypeDef::SquareBracket(elem, _)),
            ..
        } = e
        {
            if let (SqlExpr::Value(v), true) = (expr.as_ref(), is_oid(elem)) {
                if let Value::Placeholder(p) = &v.value {
                    out.extend(p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()));
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    out.into()
}

fn is_oid(t: &SqlType) -> bool {
    match t {
        SqlType::Custom(name, modifiers) if modifiers.is_empty() => name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .is_some_and(|id| id.value.eq_ignore_ascii_case("oid")),
        _ => false,
    }
}

/// The type of each placeholder (`$1` → …): DataFusion's inference, else the type the SQL
/// casts it to (`$1::oid[]`, `$2::timestamptz`), which DataFusion leaves open.
pub fn placeholder_types(plan: &LogicalPlan) -> PgWireResult<HashMap<String, DataType>> {
    let mut out: HashMap<String, DataType> = plan
        .get_parameter_types()
        .map_err(df_error)?
        .into_iter()
        .filter_map(|(k, v)| v.map(|t| (k, t)))
        .collect();
    let mut casts: Vec<(String, DataType)> = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                let (inner, to) = match e {
                    Expr::Cast(c) => (c.expr.as_ref(), c.field.data_type()),
                    Expr::TryCast(c) => (c.expr.as_ref(), c.field.data_type()),
                    _ => return Ok(TreeNodeRecursion::Continue),
                };
                if let Expr::Placeholder(p) = inner {
                    casts.push((p.id.clone(), to.clone()));
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    for (id, t) in casts {
        out.entry(id).or_insert(t);
    }
    Ok(out)
}

/// Placeholders number `$1` to `$65535` (a Bind carries an int16 count), as in PostgreSQL.
const MAX_PLACEHOLDER: usize = 65_535;

/// Refuses a plan with a placeholder outside `$1..$65535` (42P02), before anything is sized
/// by its number.
pub fn check_placeholders(plan: &LogicalPlan) -> PgWireResult<()> {
    for name in placeholder_types(plan)?.keys() {
        match name.trim_start_matches('$').parse::<usize>() {
            Ok(i) if (1..=MAX_PLACEHOLDER).contains(&i) => {}
            _ => {
                return Err(user_error(
                    sqlstate::UNDEFINED_PARAMETER,
                    format!("there is no parameter {name}"),
                ))
            }
        }
    }
    Ok(())
}

/// The types to describe for `plan`'s placeholders, `$1` first; `oid_arrays` are `oid[]`.
pub fn described_types(plan: &LogicalPlan, oid_arrays: &[usize]) -> PgWireResult<Vec<Type>> {
    let types = placeholder_types(plan)?;
    let mut ordered: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(name, t)| {
            name.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|i| (i, Some(t)))
        })
        .collect();
    ordered.sort_by_key(|(i, _)| *i);
    let n = ordered.last().map_or(0, |(i, _)| *i).min(MAX_PLACEHOLDER);
    let mut out = vec![Type::UNKNOWN; n];
    for (i, t) in ordered {
        if let (Some(slot), Some(t)) = (out.get_mut(i.saturating_sub(1)), t) {
            *slot = into_pg_type(&t).unwrap_or(Type::UNKNOWN);
        }
    }
    for i in oid_arrays.iter() {
        if let Some(slot) = out.get_mut(i.saturating_sub(1)) {
            *slot = Type::OID_ARRAY;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn oid_array_casts_come_from_the_syntax_tree_not_the_text() {
        let sql = "SELECT $2::oid[], CAST($1 AS pg_catalog.oid[]), '$3::oid[]', $4::int[] \
                   /* $5::oid[] */ WHERE $6::oid = 1";
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .expect("parse")
            .remove(0);
        assert_eq!(&*oid_array_params(&stmt), &[2, 1]);
    }
}
