//! Parameter types of a prepared statement: what DataFusion infers, what the SQL casts a
//! placeholder to, and how they are described to clients (`ParameterDescription`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_pg::datatypes::into_pg_type;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use regex::Regex;

use super::error::{df_error, user_error};

/// `$N::oid[]` in a statement's text.
static OID_ARRAY_CAST: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)\$(\d+)\s*::\s*(?:pg_catalog\.)?oid\s*\[\s*\]").ok());

pub fn oid_array_params(sql: &str) -> Arc<[usize]> {
    let Some(re) = OID_ARRAY_CAST.as_ref() else {
        return Arc::from(Vec::new());
    };
    re.captures_iter(sql)
        .filter_map(|c| c.get(1).and_then(|m| m.as_str().parse().ok()))
        .collect::<Vec<usize>>()
        .into()
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
            _ => return Err(user_error("42P02", format!("there is no parameter {name}"))),
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
