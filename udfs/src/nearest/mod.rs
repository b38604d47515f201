//! `nearest(ts, T [, k])` and `ts_distance(ts, T)`: the SQL face of "what happened at T?".
//!
//! `nearest` is a *selection*, not a per-row test: which rows it keeps depends on every other row.
//! So the function itself never runs; the `logs` table provider recognises it among the pushed-down
//! filters and answers the whole `WHERE` with a two-sided search (see `timberline::query::nearest`).
//! If it ends up anywhere else (inside `OR`/`NOT`, in the select list, over a table that is not
//! `logs`), evaluating it fails with a message saying where it belongs.
//!
//! The [`kernel`] module holds the in-memory search over a ts-sorted run that the hot buffer uses.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, DurationMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::ScalarValue;

use crate::sqlstate;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub mod kernel;

/// Name of the selection function.
pub const NEAREST: &str = "nearest";
/// The largest `k` one `nearest` call may ask for.
pub const MAX_K: i64 = 100_000;

/// The error for `nearest()` anywhere but a top-level AND-ed condition of WHERE over `logs`.
pub const MISPLACED: &str = "nearest() selects rows of the logs table: use it as a condition of \
     WHERE over logs, joined to the others with AND (not inside OR, NOT or CASE, nor in the select \
     list)";

/// The `ts` type of the `logs` table, which targets are coerced to.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Coerces (timestamp, target [, integer]) argument types; anything else is a plan error.
fn coerce(name: &str, args: &[DataType], max_args: usize) -> Result<Vec<DataType>> {
    if args.len() < 2 || args.len() > max_args {
        return crate::query_err!(
            sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
            "{name}() takes {} arguments: (ts, target timestamp{}), got {}",
            if max_args == 3 { "2 or 3" } else { "2" },
            if max_args == 3 { " [, k]" } else { "" },
            args.len()
        );
    }
    let is_time_or_text = |t: &DataType| {
        matches!(
            t,
            DataType::Timestamp(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Null
        )
    };
    if !matches!(args[0], DataType::Timestamp(..)) {
        return crate::query_err!(
            sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
            "{name}(): the first argument must be the ts column, got {}",
            args[0]
        );
    }
    if !is_time_or_text(&args[1]) {
        return crate::query_err!(
            sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
            "{name}(): the target must be a timestamp or an RFC 3339 string, got {}",
            args[1]
        );
    }
    let mut out = vec![ts_type(), ts_type()];
    if let Some(k) = args.get(2) {
        if !k.is_integer() && !k.is_null() {
            return crate::query_err!(
                sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
                "{name}(): k must be an integer, got {k}"
            );
        }
        out.push(DataType::Int64);
    }
    Ok(out)
}

/// `nearest(ts, T [, k])`: the k (default 1) rows whose `ts` is closest to `T`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NearestUdf {
    signature: Signature,
}

impl Default for NearestUdf {
    fn default() -> Self {
        NearestUdf {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for NearestUdf {
    fn name(&self) -> &str {
        NEAREST
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        coerce(NEAREST, args, 3)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        crate::query_err!(
            sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
            "{MISPLACED}"
        )
    }
}

/// `ts_distance(ts, T)`: `|ts - T|` as an interval.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TsDistanceUdf {
    signature: Signature,
}

impl Default for TsDistanceUdf {
    fn default() -> Self {
        TsDistanceUdf {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for TsDistanceUdf {
    fn name(&self) -> &str {
        "ts_distance"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Duration(TimeUnit::Microsecond))
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        coerce("ts_distance", args, 2)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [ts, target] = args.args.as_slice() else {
            return crate::query_err!(
                sqlstate::UNDEFINED_FUNCTION,
                "ts_distance() takes 2 arguments"
            );
        };
        let scalar_us = |v: &ScalarValue| match v {
            ScalarValue::TimestampMicrosecond(t, _) => Ok(*t),
            ScalarValue::Null => Ok(None),
            other => crate::query_err!(
                sqlstate::DATATYPE_MISMATCH,
                "ts_distance(): expected a timestamp, got {other:?}"
            ),
        };
        let distance =
            |a: Option<i64>, b: Option<i64>| Some(a?.abs_diff(b?).min(i64::MAX as u64) as i64);
        Ok(match (ts, target) {
            (ColumnarValue::Scalar(a), ColumnarValue::Scalar(b)) => ColumnarValue::Scalar(
                ScalarValue::DurationMicrosecond(distance(scalar_us(a)?, scalar_us(b)?)),
            ),
            (ColumnarValue::Array(a), ColumnarValue::Scalar(b)) => {
                let b = scalar_us(b)?;
                let a = a.as_primitive::<TimestampMicrosecondType>();
                let out: DurationMicrosecondArray = a.iter().map(|v| distance(v, b)).collect();
                ColumnarValue::Array(Arc::new(out))
            }
            (a, b) => {
                let n = args.number_rows;
                let (a, b) = (a.to_array(n)?, b.to_array(n)?);
                let (a, b) = (
                    a.as_primitive::<TimestampMicrosecondType>(),
                    b.as_primitive::<TimestampMicrosecondType>(),
                );
                let out: DurationMicrosecondArray = (0..a.len())
                    .map(|i| {
                        let get = |x: &datafusion::arrow::array::TimestampMicrosecondArray| {
                            (!x.is_null(i)).then(|| x.value(i))
                        };
                        distance(get(a), get(b))
                    })
                    .collect();
                ColumnarValue::Array(Arc::new(out))
            }
        })
    }
}

/// `nearest`.
pub fn nearest_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(NearestUdf::default())
}

/// `ts_distance`.
pub fn ts_distance_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(TsDistanceUdf::default())
}
