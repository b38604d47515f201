//! What the row-wise PostgreSQL functions share: how many rows to compute, and their answer
//! as a scalar when every argument was one, and text arguments read without copying.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::ColumnarValue;

fn all_scalar(args: &[ColumnarValue]) -> bool {
    args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

/// The rows to compute: one when every argument is a scalar (a batch may have none).
pub fn rows(args: &[ColumnarValue], number_rows: usize) -> usize {
    if all_scalar(args) {
        1
    } else {
        number_rows
    }
}

/// The first argument as an array (one value for a scalar); `None` without arguments.
pub fn first(args: &[ColumnarValue]) -> Result<Option<ArrayRef>> {
    args.first().map(|a| a.to_array(1)).transpose()
}

/// Every argument as an array of [`rows`] values.
pub fn arrays(args: &[ColumnarValue], number_rows: usize) -> Result<Vec<ArrayRef>> {
    let n = rows(args, number_rows);
    args.iter().map(|a| a.to_array(n)).collect()
}

/// `out` (computed for [`rows`]) as the function's answer.
pub fn answer(args: &[ColumnarValue], out: Arc<dyn Array>) -> Result<ColumnarValue> {
    Ok(if all_scalar(args) && !out.is_empty() {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}

/// A text argument: one value for a scalar (never repeated per row: a large constant would
/// be copied into every row), or a column.
pub enum Texts {
    One(Option<String>),
    Many(ArrayRef),
}

impl Texts {
    pub fn new(value: &ColumnarValue) -> Result<Texts> {
        Ok(match value {
            ColumnarValue::Scalar(s) => {
                let text = cast(&s.to_array()?, &DataType::Utf8)?;
                let text = text.as_string::<i32>();
                Texts::One((!text.is_empty() && !text.is_null(0)).then(|| text.value(0).into()))
            }
            ColumnarValue::Array(a) => Texts::Many(cast(a, &DataType::Utf8)?),
        })
    }

    /// Row `i`'s text.
    pub fn get(&self, i: usize) -> Option<&str> {
        match self {
            Texts::One(v) => v.as_deref(),
            Texts::Many(a) => {
                let a = a.as_string::<i32>();
                (i < a.len() && !a.is_null(i)).then(|| a.value(i))
            }
        }
    }
}
