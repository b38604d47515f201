//! `json_build_object(k1, v1, …)`: a JSON object of key/value pairs, as text (SQLAlchemy's
//! column reflection builds one per column).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use crate::sqlstate;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::{Map, Value};

/// `json_build_object`.
pub fn json_build_object_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonBuildObject {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

/// A SQL value as JSON, the way PostgreSQL's `to_json` writes the common types.
fn to_json(v: &ScalarValue) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match v {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(n)) => (*n).into(),
        ScalarValue::Int16(Some(n)) => (*n).into(),
        ScalarValue::Int32(Some(n)) => (*n).into(),
        ScalarValue::Int64(Some(n)) => (*n).into(),
        ScalarValue::UInt8(Some(n)) => (*n).into(),
        ScalarValue::UInt16(Some(n)) => (*n).into(),
        ScalarValue::UInt32(Some(n)) => (*n).into(),
        ScalarValue::UInt64(Some(n)) => (*n).into(),
        ScalarValue::Float32(Some(f)) => Value::from(*f as f64),
        ScalarValue::Float64(Some(f)) => Value::from(*f),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::String(s.clone()),
        // A list scalar is a one-row list array.
        ScalarValue::List(l) if l.len() == 1 => elements_json(&l.value(0)),
        ScalarValue::LargeList(l) if l.len() == 1 => elements_json(&l.value(0)),
        other => Value::String(other.to_string()),
    }
}

/// A list's elements as a JSON array.
fn elements_json(values: &ArrayRef) -> Value {
    Value::Array(
        (0..values.len())
            .map(|i| ScalarValue::try_from_array(values, i).map_or(Value::Null, |v| to_json(&v)))
            .collect(),
    )
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return crate::query_err!(
                sqlstate::INVALID_PARAMETER_VALUE,
                "argument list must have even number of elements"
            );
        }
        let n = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<Vec<_>>>()?;
        let mut out = StringBuilder::with_capacity(n, n * 32);
        for row in 0..n {
            let mut obj = Map::new();
            for pair in arrays.chunks(2) {
                let [k, v] = pair else { continue };
                let key = ScalarValue::try_from_array(k, row)?;
                if key.is_null() {
                    return crate::query_err!(
                        sqlstate::NULL_VALUE_NOT_ALLOWED,
                        "null value not allowed for object key"
                    );
                }
                let key = match to_json(&key) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                obj.insert(key, to_json(&ScalarValue::try_from_array(v, row)?));
            }
            out.append_value(Value::Object(obj).to_string());
        }
        let arr = Arc::new(out.finish());
        Ok(
            match args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            {
                true => ColumnarValue::Scalar(ScalarValue::try_from_array(arr.as_ref(), 0)?),
                false => ColumnarValue::Array(arr),
            },
        )
    }
}
