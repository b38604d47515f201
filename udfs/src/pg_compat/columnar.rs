//! What the row-wise PostgreSQL functions share: how many rows to compute, and their answer
//! as a scalar when every argument was one.

use std::sync::Arc;

use datafusion::arrow::array::Array;
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

/// `out` (computed for [`rows`]) as the function's answer.
pub fn answer(args: &[ColumnarValue], out: Arc<dyn Array>) -> Result<ColumnarValue> {
    Ok(if all_scalar(args) && !out.is_empty() {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}
