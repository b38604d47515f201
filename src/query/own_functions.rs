//! Timberline's own functions (`nearest`, `match`, `log_context`, …) as rows of `pg_proc` and
//! `pg_description`, in schema `public` like an extension's, from their facts in
//! [`timberline_udfs::own_functions`]: psql's `\df` lists them, `\df+` and pgjdbc's
//! `getFunctions` describe them.

use datafusion::arrow::array::{new_null_array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use timberline_udfs::own_functions::{Argument, OwnFunction, OWN_FUNCTIONS};

/// `pg_class.oid` of `pg_proc`, the `classoid` of a function's description.
const PG_PROC_CLASS: i32 = 1255;
/// The administrator, who owns every object here (`pg_roles`).
const OWNER: i32 = 10;
/// `pg_language.oid` of `internal`, the language of built-in functions.
const INTERNAL_LANGUAGE: i32 = 12;

/// Whether Timberline adds rows to the catalog table `table`.
pub fn adds_rows(table: &str) -> bool {
    matches!(table, "pg_proc" | "pg_description")
}

/// The rows Timberline adds to `table` (`pg_proc`, `pg_description`), shaped as `schema`;
/// `None` for any other table.
/// `public` is the namespace whose oid `pg_namespace` gives `public`.
pub fn rows(table: &str, schema: &SchemaRef, public: i32) -> Result<Option<RecordBatch>> {
    let column: fn(&str, &OwnFunction, i32) -> Option<ScalarValue> = match table {
        "pg_proc" => proc_column,
        "pg_description" => description_column,
        _ => return Ok(None),
    };
    let n = OWN_FUNCTIONS.len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let values: Vec<Option<ScalarValue>> = OWN_FUNCTIONS
            .iter()
            .map(|f| column(field.name(), f, public))
            .collect();
        // A NULL of the type the column's other values have (or the column's own).
        let Some(like) = values.iter().flatten().next() else {
            columns.push(new_null_array(field.data_type(), n));
            continue;
        };
        let null = ScalarValue::try_from(like.data_type())?;
        let values = values
            .into_iter()
            .map(|v| v.unwrap_or_else(|| null.clone()));
        columns.push(cast(
            &ScalarValue::iter_to_array(values)?,
            field.data_type(),
        )?);
    }
    Ok(Some(RecordBatch::try_new(schema.clone(), columns)?))
}

fn int(v: i32) -> Option<ScalarValue> {
    Some(ScalarValue::Int32(Some(v)))
}

fn text(v: &str) -> Option<ScalarValue> {
    Some(ScalarValue::Utf8(Some(v.to_string())))
}

fn list(values: Vec<ScalarValue>, element: &DataType) -> Option<ScalarValue> {
    Some(ScalarValue::List(ScalarValue::new_list_nullable(
        &values, element,
    )))
}

/// `pg_proc.column` of `f`; `None` for a column left NULL.
fn proc_column(column: &str, f: &OwnFunction, public: i32) -> Option<ScalarValue> {
    let arg_types: Vec<ScalarValue> = f
        .arguments
        .iter()
        .map(|a| ScalarValue::Int32(Some(a.type_oid)))
        .collect();
    let count = |n: usize| {
        Some(ScalarValue::Int16(Some(
            i16::try_from(n).unwrap_or(i16::MAX),
        )))
    };
    match column {
        "oid" => int(f.oid),
        "proname" => text(f.name),
        "pronamespace" => int(public),
        "proowner" => int(OWNER),
        "prolang" => int(INTERNAL_LANGUAGE),
        "procost" => Some(ScalarValue::Float32(Some(1.0))),
        "prorows" => Some(ScalarValue::Float32(Some(if f.returns_set() {
            1000.0
        } else {
            0.0
        }))),
        "provariadic" => int(0),
        "prosupport" => text("-"),
        "prokind" => text("f"),
        "prosecdef" | "proleakproof" => Some(ScalarValue::Boolean(Some(false))),
        "proisstrict" => Some(ScalarValue::Boolean(Some(false))),
        "proretset" => Some(ScalarValue::Boolean(Some(f.returns_set()))),
        "provolatile" => text(f.volatility),
        "proparallel" => text("s"),
        "pronargs" => count(f.arguments.len()),
        "pronargdefaults" => count(f.defaults()),
        "prorettype" => int(f.result_oid),
        "proargtypes" => list(arg_types, &DataType::Int32),
        // A table function's columns follow its arguments, in mode `t`.
        "proallargtypes" if f.returns_set() => list(
            all(f)
                .map(|a| ScalarValue::Int32(Some(a.type_oid)))
                .collect(),
            &DataType::Int32,
        ),
        "proargmodes" if f.returns_set() => list(
            (f.arguments.iter().map(|_| "i"))
                .chain(f.columns.iter().map(|_| "t"))
                .map(|m| ScalarValue::Utf8(Some(m.to_string())))
                .collect(),
            &DataType::Utf8,
        ),
        "proargnames" => list(
            all(f)
                .map(|a| ScalarValue::Utf8(Some(a.name.to_string())))
                .collect(),
            &DataType::Utf8,
        ),
        "prosrc" => text(f.name),
        _ => None,
    }
}

/// `f`'s arguments, then its result columns.
fn all(f: &OwnFunction) -> impl Iterator<Item = &Argument> {
    f.arguments.iter().chain(f.columns.iter())
}

/// `pg_description.column` of `f`'s description.
fn description_column(column: &str, f: &OwnFunction, _public: i32) -> Option<ScalarValue> {
    match column {
        "objoid" => int(f.oid),
        "classoid" => int(PG_PROC_CLASS),
        "objsubid" => int(0),
        "description" => text(f.description),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Field, Int32Type, Schema};

    #[test]
    fn every_function_is_a_row_of_pg_proc_and_pg_description() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("oid", DataType::Int32, true),
            Field::new("proname", DataType::Utf8, true),
            Field::new("pronargs", DataType::Int16, true),
            Field::new(
                "proargtypes",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                true,
            ),
            Field::new("probin", DataType::Utf8, true),
        ]));
        let procs = rows("pg_proc", &schema, 2200).ok().flatten();
        let Some(procs) = procs else {
            panic!("pg_proc rows");
        };
        assert_eq!(procs.num_rows(), OWN_FUNCTIONS.len());
        let names = procs.column(1).as_string::<i32>();
        assert!(names.iter().any(|n| n == Some("nearest")));
        assert!(procs.column(4).is_null(0), "unknown columns are NULL");
        let types = procs.column(3).as_list::<i32>();
        let first = types.value(0);
        assert_eq!(
            first.as_primitive::<Int32Type>().values().to_vec(),
            vec![1184, 1184, 20]
        );
        let descriptions = Arc::new(Schema::new(vec![
            Field::new("objoid", DataType::Int32, true),
            Field::new("description", DataType::Utf8, true),
        ]));
        let described = rows("pg_description", &descriptions, 2200).ok().flatten();
        assert_eq!(described.map(|b| b.num_rows()), Some(OWN_FUNCTIONS.len()));
        assert!(rows("pg_class", &schema, 2200).ok().flatten().is_none());
    }
}
