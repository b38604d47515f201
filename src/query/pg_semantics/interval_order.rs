//! PostgreSQL's interval order: an interval is compared by its length with a month of 30 days
//! and a day of 24 hours (`interval '48 hours' > interval '1 day'`), where Arrow compares the
//! month, day and nanosecond fields one after another. `pg_interval_order(i)` is that length in
//! nanoseconds, as a `Decimal128(38, 0)` no interval overflows.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Decimal128Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

const NANOS_PER_DAY: i128 = 86_400_000_000_000;
const DAYS_PER_MONTH: i128 = 30;
/// The key's type: 38 digits hold any month, day and nanosecond count.
const KEY: DataType = DataType::Decimal128(38, 0);

/// The ordering key of one interval.
pub fn order_key(i: IntervalMonthDayNano) -> i128 {
    (i128::from(i.months) * DAYS_PER_MONTH + i128::from(i.days)) * NANOS_PER_DAY
        + i128::from(i.nanoseconds)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalOrder {
    signature: Signature,
}

/// The `pg_interval_order(interval)` function the planner wraps interval comparisons in.
pub fn udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(IntervalOrder {
        signature: Signature::exact(
            vec![DataType::Interval(IntervalUnit::MonthDayNano)],
            Volatility::Immutable,
        ),
    }))
}

impl ScalarUDFImpl for IntervalOrder {
    fn name(&self) -> &str {
        "pg_interval_order"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(KEY)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("pg_interval_order() takes one interval");
        };
        let rows = match arg {
            ColumnarValue::Scalar(_) => 1,
            ColumnarValue::Array(_) => args.number_rows,
        };
        let array = arg.to_array(rows)?;
        let array = cast(&array, &DataType::Interval(IntervalUnit::MonthDayNano))?;
        let intervals =
            array.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
        let keys: Decimal128Array = intervals.iter().map(|v| v.map(order_key)).collect();
        let keys = keys.with_precision_and_scale(38, 0)?;
        Ok(match arg {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&keys, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(keys) as Arc<dyn Array>),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_thirty_days_and_a_day_twenty_four_hours() {
        let hours = |h: i64| IntervalMonthDayNano::new(0, 0, h * 3_600_000_000_000);
        let days = |d: i32| IntervalMonthDayNano::new(0, d, 0);
        assert!(order_key(hours(48)) > order_key(days(1)));
        assert_eq!(order_key(hours(24)), order_key(days(1)));
        assert_eq!(
            order_key(IntervalMonthDayNano::new(1, 0, 0)),
            order_key(days(30))
        );
        assert!(order_key(IntervalMonthDayNano::new(0, 1, -1)) < order_key(hours(24)));
    }
}
