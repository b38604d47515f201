//! `pg_aggregate.aggfnoid` as the oid of the aggregate's function, as in PostgreSQL, where
//! the bundled catalog holds only its name (`pg_catalog.avg`, once per overload): so a join
//! `pg_proc p, pg_aggregate a WHERE p.oid = a.aggfnoid` (DBeaver's aggregate list) compares
//! oids instead of failing to read a name as a number. An overload is told from its siblings
//! by its argument, where the transition type names it (`max(int8)`), else by order.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::error::Result;

const COLUMN: &str = "aggfnoid";

/// `schema` of `pg_aggregate` with `aggfnoid` an oid, described as PostgreSQL's `regproc` (whose
/// text is the function's name there, its number here).
pub fn schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == COLUMN {
                Field::new(COLUMN, DataType::Int32, true).with_metadata(
                    [(
                        arrow_pg::datatypes::PG_OID_ALIAS_KEY.to_string(),
                        "regproc".to_string(),
                    )]
                    .into(),
                )
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// An aggregate function of `pg_proc`: its oid and the type of its first argument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overload {
    oid: i32,
    first_arg: Option<i32>,
}

/// The aggregates of `pg_proc` (bundled, `proargtypes` as text) by name, in oid order.
pub fn aggregate_oids(procs: &[RecordBatch]) -> HashMap<String, Vec<Overload>> {
    let mut found: Vec<(String, Overload)> = Vec::new();
    for batch in procs {
        let schema = batch.schema();
        let (Ok(oid_at), Ok(name_at), Ok(kind_at)) = (
            schema.index_of("oid"),
            schema.index_of("proname"),
            schema.index_of("prokind"),
        ) else {
            continue;
        };
        let (Some(oids), Some(names), Some(kinds)) = (
            batch.column(oid_at).as_primitive_opt::<Int32Type>(),
            batch.column(name_at).as_string_opt::<i32>(),
            batch.column(kind_at).as_string_opt::<i32>(),
        ) else {
            continue;
        };
        let args = schema
            .index_of("proargtypes")
            .ok()
            .and_then(|at| batch.column(at).as_string_opt::<i32>());
        for i in 0..batch.num_rows() {
            if oids.is_valid(i) && names.is_valid(i) && kinds.is_valid(i) && kinds.value(i) == "a" {
                let first_arg = args.filter(|a| a.is_valid(i)).and_then(|a| {
                    a.value(i)
                        .split(|c: char| !c.is_ascii_digit())
                        .find(|w| !w.is_empty())
                        .and_then(|w| w.parse().ok())
                });
                let overload = Overload {
                    oid: oids.value(i),
                    first_arg,
                };
                found.push((names.value(i).to_string(), overload));
            }
        }
    }
    found.sort_by_key(|(_, o)| o.oid);
    let mut by_name: HashMap<String, Vec<Overload>> = HashMap::new();
    for (name, overload) in found {
        by_name.entry(name).or_default().push(overload);
    }
    by_name
}

/// `batch` of `pg_aggregate` (shaped as [`schema`] but for `aggfnoid`, still the name, with
/// or without `pg_catalog.`) with each name replaced by its function's oid: the overload of
/// that name whose argument is the row's transition type when exactly one is, then the
/// overloads left, in oid order, for the rows left, in order. NULL where none is left.
pub fn resolve(
    batch: RecordBatch,
    to: &SchemaRef,
    overloads: &HashMap<String, Vec<Overload>>,
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let Ok(at) = schema.index_of(COLUMN) else {
        return Ok(batch);
    };
    let Some(names) = batch.column(at).as_string_opt::<i32>() else {
        return Ok(batch);
    };
    let transition = schema
        .index_of("aggtranstype")
        .ok()
        .and_then(|t| batch.column(t).as_primitive_opt::<Int32Type>());
    let bare = |i: usize| {
        let name = names.value(i);
        name.strip_prefix("pg_catalog.").unwrap_or(name).to_string()
    };
    let mut taken: HashMap<String, Vec<i32>> = HashMap::new();
    let mut resolved: Vec<Option<i32>> = vec![None; batch.num_rows()];
    // First the rows whose transition type names one overload.
    for (i, slot) in resolved.iter_mut().enumerate() {
        let (false, Some(all)) = (names.is_null(i), overloads.get(&bare(i))) else {
            continue;
        };
        let Some(t) = transition.filter(|t| t.is_valid(i)).map(|t| t.value(i)) else {
            continue;
        };
        let matching: Vec<&Overload> = all.iter().filter(|o| o.first_arg == Some(t)).collect();
        if let [one] = matching.as_slice() {
            let used = taken.entry(bare(i)).or_default();
            if !used.contains(&one.oid) {
                used.push(one.oid);
                *slot = Some(one.oid);
            }
        }
    }
    // Then the others, in order.
    for (i, slot) in resolved.iter_mut().enumerate() {
        if slot.is_some() || names.is_null(i) {
            continue;
        }
        let name = bare(i);
        let Some(all) = overloads.get(&name) else {
            continue;
        };
        let used = taken.entry(name).or_default();
        if let Some(o) = all.iter().find(|o| !used.contains(&o.oid)) {
            used.push(o.oid);
            *slot = Some(o.oid);
        }
    }
    let mut columns = batch.columns().to_vec();
    columns[at] = Arc::new(Int32Array::from(resolved));
    Ok(RecordBatch::try_new(to.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    #[test]
    fn overloads_take_their_functions_oids() {
        let procs = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("oid", DataType::Int32, true),
                Field::new("proname", DataType::Utf8, true),
                Field::new("prokind", DataType::Utf8, true),
                Field::new("proargtypes", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int32Array::from(vec![2116, 2050, 2115, 7, 2147, 2100])),
                Arc::new(StringArray::from(vec![
                    "max", "max", "max", "max", "every", "avg",
                ])),
                Arc::new(StringArray::from(vec!["a", "a", "a", "f", "a", "a"])),
                Arc::new(StringArray::from(vec![
                    "{23}", "{2277}", "{20}", "{20}", "{16}", "{20}",
                ])),
            ],
        );
        let Ok(procs) = procs else {
            panic!("batch");
        };
        let overloads = aggregate_oids(&[procs]);
        let from = Arc::new(Schema::new(vec![
            Field::new(COLUMN, DataType::Utf8, true),
            Field::new("aggtranstype", DataType::Int32, true),
        ]));
        // Stored as PostgreSQL stores them: max(int8), max(int4), max(anyarray); `every` bare.
        let aggregates = RecordBatch::try_new(
            from.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    "pg_catalog.max",
                    "pg_catalog.max",
                    "pg_catalog.max",
                    "every",
                    "pg_catalog.avg",
                    "pg_catalog.avg",
                ])),
                Arc::new(Int32Array::from(vec![20, 23, 2277, 16, 2281, 2281])),
            ],
        );
        let Ok(aggregates) = aggregates else {
            panic!("batch");
        };
        let resolved = resolve(aggregates, &schema(&from), &overloads);
        let Ok(resolved) = resolved else {
            panic!("resolve");
        };
        let got: Vec<Option<i32>> = resolved
            .column(0)
            .as_primitive::<Int32Type>()
            .iter()
            .collect();
        assert_eq!(
            got,
            vec![
                Some(2115),
                Some(2116),
                Some(2050),
                Some(2147),
                Some(2100),
                None
            ]
        );
    }
}
