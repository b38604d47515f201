//! `pg_expandarray(arr)`: an array's elements with their 1-based positions, as a list of
//! `{x, n}` records — what `information_schema._pg_expandarray` returns one row each of
//! (pgjdbc's getPrimaryKeys and getIndexInfo). The front end turns the set-returning call
//! into `unnest(pg_expandarray(arr))`. An `int2vector` held as text (`'1 2'`) is read as
//! its `smallint`s.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int16Builder, Int32Array, ListArray, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The `pg_expandarray` function.
pub fn expand_array_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ExpandArray {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

fn element(arg: &DataType) -> Result<DataType> {
    match arg {
        DataType::List(f) => Ok(f.data_type().clone()),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
            Ok(DataType::Int16)
        }
        other => crate::query_err!(
            crate::sqlstate::UNDEFINED_FUNCTION,
            "function _pg_expandarray({other}) does not exist"
        ),
    }
}

fn record(element: DataType) -> Fields {
    Fields::from(vec![
        Field::new("x", element, true),
        Field::new("n", DataType::Int32, false),
    ])
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        "pg_expandarray"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let Some(arg) = args.first() else {
            return plan_err!("_pg_expandarray takes one array");
        };
        let fields = record(element(arg)?);
        Ok(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(fields),
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(arg) = args.args.first() else {
            return exec_err!("_pg_expandarray takes one array");
        };
        let array = arg.to_array(args.number_rows)?;
        let (offsets, values) = match array.data_type() {
            DataType::List(_) => {
                let list = array.as_list::<i32>();
                let first = list.value_offsets().first().copied().unwrap_or(0);
                let offsets: Vec<i32> = list.value_offsets().iter().map(|o| o - first).collect();
                let len = offsets.last().copied().unwrap_or(0) as usize;
                (offsets, list.values().slice(first as usize, len))
            }
            _ => int2vectors(&datafusion::arrow::compute::cast(&array, &DataType::Utf8)?),
        };
        let mut n = Vec::with_capacity(values.len());
        for w in offsets.windows(2) {
            n.extend(1..=(w[1] - w[0]));
        }
        let fields = record(values.data_type().clone());
        let records = StructArray::try_new(
            fields.clone(),
            vec![values, Arc::new(Int32Array::from(n)) as ArrayRef],
            None,
        )?;
        let list = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Struct(fields), true)),
            OffsetBuffer::new(offsets.into()),
            Arc::new(records),
            array.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
}

/// `int2vector` text (`'1 2 3'`) as lists of `smallint`s; a word that is not one is skipped.
fn int2vectors(text: &ArrayRef) -> (Vec<i32>, ArrayRef) {
    let text = text.as_string::<i32>();
    let mut values = Int16Builder::new();
    let mut offsets = vec![0i32];
    let mut count = 0i32;
    for i in 0..text.len() {
        if !text.is_null(i) {
            for word in text.value(i).split_ascii_whitespace() {
                if let Ok(v) = word.parse::<i16>() {
                    values.append_value(v);
                    count += 1;
                }
            }
        }
        offsets.push(count);
    }
    (offsets, Arc::new(values.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    #[test]
    fn an_int2vector_expands_to_its_elements_and_positions() {
        let udf = expand_array_udf();
        let input: ArrayRef = Arc::new(StringArray::from(vec![Some("3 1"), None, Some("")]));
        let ret = udf.return_type(&[DataType::Utf8]).expect("type");
        let out = udf
            .invoke_with_args(ScalarFunctionArgs {
                args: vec![ColumnarValue::Array(input)],
                arg_fields: vec![Arc::new(Field::new("a", DataType::Utf8, true))],
                number_rows: 3,
                return_field: Arc::new(Field::new("r", ret, true)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .expect("runs");
        let ColumnarValue::Array(out) = out else {
            panic!("an array")
        };
        let list = out.as_list::<i32>();
        assert_eq!(list.value_length(0), 2);
        assert!(list.is_null(1));
        assert_eq!(list.value_length(2), 0);
        let first = list.value(0);
        let records = first.as_struct();
        let x = records
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int16Type>();
        let n = records
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        assert_eq!((x.value(0), n.value(0)), (3, 1));
        assert_eq!((x.value(1), n.value(1)), (1, 2));
    }
}
