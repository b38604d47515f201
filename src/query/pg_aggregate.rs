//! `pg_aggregate.aggfnoid` as the oid of the aggregate's function, as in PostgreSQL, where
//! the bundled catalog holds only its name (`pg_catalog.avg`, once per overload): so a join
//! `pg_proc p, pg_aggregate a WHERE p.oid = a.aggfnoid` (DBeaver's aggregate list) compares
//! oids instead of failing to read a name as a number. The bundled rows of one name come in
//! their functions' oid order, so the k-th `avg` row is the k-th `avg` aggregate of `pg_proc`.

use std::collections::{HashMap, VecDeque};
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

/// The aggregates' oids by qualified name (`pg_catalog.avg`), in oid order, from `pg_proc`.
pub fn aggregate_oids(procs: &[RecordBatch]) -> HashMap<String, VecDeque<i32>> {
    let mut found: Vec<(String, i32)> = Vec::new();
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
        for i in 0..batch.num_rows() {
            if oids.is_valid(i) && names.is_valid(i) && kinds.is_valid(i) && kinds.value(i) == "a" {
                found.push((format!("pg_catalog.{}", names.value(i)), oids.value(i)));
            }
        }
    }
    found.sort_by_key(|(_, oid)| *oid);
    let mut by_name: HashMap<String, VecDeque<i32>> = HashMap::new();
    for (name, oid) in found {
        by_name.entry(name).or_default().push_back(oid);
    }
    by_name
}

/// `batch` of `pg_aggregate` (shaped as [`schema`] but for `aggfnoid`, still the name) with
/// each name replaced by the next oid of that name in `oids`; NULL where none is left.
pub fn resolve(
    batch: RecordBatch,
    to: &SchemaRef,
    oids: &mut HashMap<String, VecDeque<i32>>,
) -> Result<RecordBatch> {
    let Ok(at) = batch.schema().index_of(COLUMN) else {
        return Ok(batch);
    };
    let Some(names) = batch.column(at).as_string_opt::<i32>() else {
        return Ok(batch);
    };
    let resolved: Int32Array = names
        .iter()
        .map(|n| n.and_then(|n| oids.get_mut(n).and_then(VecDeque::pop_front)))
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[at] = Arc::new(resolved);
    Ok(RecordBatch::try_new(to.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    #[test]
    fn overloads_take_their_functions_oids_in_order() {
        let procs = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("oid", DataType::Int32, true),
                Field::new("proname", DataType::Utf8, true),
                Field::new("prokind", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int32Array::from(vec![2101, 2100, 7, 2147])),
                Arc::new(StringArray::from(vec!["avg", "avg", "avg", "count"])),
                Arc::new(StringArray::from(vec!["a", "a", "f", "a"])),
            ],
        );
        let Ok(procs) = procs else {
            panic!("batch");
        };
        let mut oids = aggregate_oids(&[procs]);
        let from = Arc::new(Schema::new(vec![Field::new(COLUMN, DataType::Utf8, true)]));
        let aggregates = RecordBatch::try_new(
            from.clone(),
            vec![Arc::new(StringArray::from(vec![
                "pg_catalog.avg",
                "pg_catalog.avg",
                "pg_catalog.count",
                "pg_catalog.avg",
            ]))],
        );
        let Ok(aggregates) = aggregates else {
            panic!("batch");
        };
        let resolved = resolve(aggregates, &schema(&from), &mut oids);
        let Ok(resolved) = resolved else {
            panic!("resolve");
        };
        let got: Vec<Option<i32>> = resolved
            .column(0)
            .as_primitive::<Int32Type>()
            .iter()
            .collect();
        assert_eq!(got, vec![Some(2100), Some(2101), Some(2147), None]);
    }
}
