//! PostgreSQL operators DataFusion lacks, planned as functions while the statement is planned
//! ([`PgOperatorPlanner`]): `interval * number`, `number * interval` and `interval / number`
//! with PostgreSQL's cascade of fractional months into days and days into time; and JSON
//! containment `a @> b` / `a <@ b` over JSON text (`attrs`), with jsonb's rules.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, IntervalMonthDayNanoArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, IntervalMonthDayNano, IntervalUnit};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use serde_json::Value;

use super::columnar::{answer, arrays};
use crate::{sqlstate, QueryError};

/// Plans the operators of the module docs; every other operator is left to DataFusion.
#[derive(Debug, Default)]
pub struct PgOperatorPlanner;

fn type_of(e: &Expr, schema: &DFSchema) -> Option<DataType> {
    e.get_type(schema).ok()
}

fn is_interval(t: &Option<DataType>) -> bool {
    matches!(t, Some(DataType::Interval(_)))
}

fn is_number(t: &Option<DataType>) -> bool {
    t.as_ref().is_some_and(|t| t.is_numeric())
}

fn is_text(t: &Option<DataType>) -> bool {
    matches!(
        t,
        Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
    )
}

impl ExprPlanner for PgOperatorPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let (l, r) = (type_of(&expr.left, schema), type_of(&expr.right, schema));
        let call = |udf: ScalarUDF, args: Vec<Expr>| Ok(PlannerResult::Planned(udf.call(args)));
        match expr.op {
            BinaryOperator::Multiply if is_interval(&l) && is_number(&r) => {
                call(interval_udf(Scale::Multiply), vec![expr.left, expr.right])
            }
            BinaryOperator::Multiply if is_number(&l) && is_interval(&r) => {
                call(interval_udf(Scale::Multiply), vec![expr.right, expr.left])
            }
            BinaryOperator::Divide if is_interval(&l) && is_number(&r) => {
                call(interval_udf(Scale::Divide), vec![expr.left, expr.right])
            }
            BinaryOperator::AtArrow if is_text(&l) && is_text(&r) => {
                call(contains_udf(), vec![expr.left, expr.right])
            }
            BinaryOperator::ArrowAt if is_text(&l) && is_text(&r) => {
                call(contains_udf(), vec![expr.right, expr.left])
            }
            _ => Ok(PlannerResult::Original(expr)),
        }
    }
}

/// Whether an interval is multiplied or divided by the number.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Scale {
    Multiply,
    Divide,
}

fn interval_udf(scale: Scale) -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalScale {
        scale,
        signature: Signature::exact(
            vec![
                DataType::Interval(IntervalUnit::MonthDayNano),
                DataType::Float64,
            ],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalScale {
    scale: Scale,
    signature: Signature,
}

fn out_of_range() -> datafusion::error::DataFusionError {
    QueryError::new(
        sqlstate::DATETIME_VALUE_OUT_OF_RANGE,
        "interval out of range",
    )
    .into_df()
}

/// Rounds to whole microseconds, as PostgreSQL's `TSROUND`.
fn ts_round(x: f64) -> f64 {
    (x * 1e6).round_ties_even() / 1e6
}

/// PostgreSQL's `interval_mul`: `span * factor` (a division is a product by the inverse,
/// computed as a quotient).
pub fn scale_interval(
    span: IntervalMonthDayNano,
    factor: f64,
    divide: bool,
) -> Option<IntervalMonthDayNano> {
    let apply = |x: f64| if divide { x / factor } else { x * factor };
    let months = apply(f64::from(span.months));
    let days = apply(f64::from(span.days));
    let fits = |x: f64| x.is_finite() && x >= f64::from(i32::MIN) && x <= f64::from(i32::MAX);
    if !fits(months) || !fits(days) {
        return None;
    }
    // Truncation toward zero, as C's (int32) cast.
    let out_months = months as i32;
    let mut out_days = days as i32;
    let month_remainder_days = ts_round((months - f64::from(out_months)) * 30.0);
    let mut sec_remainder = ts_round(
        (days - f64::from(out_days) + month_remainder_days - month_remainder_days.trunc())
            * 86_400.0,
    );
    if sec_remainder.abs() >= 86_400.0 {
        let whole = (sec_remainder / 86_400.0).trunc();
        out_days = out_days.checked_add(whole as i32)?;
        sec_remainder -= whole * 86_400.0;
    }
    out_days = out_days.checked_add(month_remainder_days.trunc() as i32)?;
    let micros = (span.nanoseconds / 1_000) as f64;
    let time = (apply(micros) + sec_remainder * 1e6).round_ties_even();
    if !time.is_finite() || time.abs() >= 9.2e18 / 1_000.0 {
        return None;
    }
    Some(IntervalMonthDayNano::new(
        out_months,
        out_days,
        (time as i64).checked_mul(1_000)?,
    ))
}

impl ScalarUDFImpl for IntervalScale {
    fn name(&self) -> &str {
        match self.scale {
            Scale::Multiply => "pg_interval_mul",
            Scale::Divide => "pg_interval_div",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = arrays(&args.args, args.number_rows)?;
        let (Some(spans), Some(factors)) = (arrays.first(), arrays.get(1)) else {
            return Ok(ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(
                None,
            )));
        };
        let spans = spans.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
        let factors = cast(factors, &DataType::Float64)?;
        let factors = factors.as_primitive::<Float64Type>();
        let divide = self.scale == Scale::Divide;
        let mut out = Vec::with_capacity(spans.len());
        for i in 0..spans.len() {
            if spans.is_null(i) || factors.is_null(i) {
                out.push(None);
                continue;
            }
            let factor = factors.value(i);
            if divide && factor == 0.0 {
                return Err(
                    QueryError::new(sqlstate::DIVISION_BY_ZERO, "division by zero").into_df(),
                );
            }
            out.push(Some(
                scale_interval(spans.value(i), factor, divide).ok_or_else(out_of_range)?,
            ));
        }
        answer(&args.args, Arc::new(IntervalMonthDayNanoArray::from(out)))
    }
}

fn contains_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonContains {
        signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonContains {
    signature: Signature,
}

/// jsonb's containment: whether `a` contains `b` (`a @> b`). Objects contain the pairs of
/// another whose values they contain; arrays contain every element of another that some
/// element of theirs contains (and, at the top, a lone scalar they hold); scalars are equal.
pub fn json_contains(a: &Value, b: &Value, top: bool) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(k, vb)| a.get(k).is_some_and(|va| json_contains(va, vb, false))),
        (Value::Array(a), Value::Array(b)) => b
            .iter()
            .all(|vb| a.iter().any(|va| json_contains(va, vb, false))),
        (Value::Array(a), b) if top && !b.is_object() && !b.is_array() => {
            a.iter().any(|va| json_contains(va, b, false))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) if !a.is_object() && !a.is_array() => a == b,
        _ => false,
    }
}

fn parse(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        QueryError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type json: {e}"),
        )
        .into_df()
    })
}

impl ScalarUDFImpl for JsonContains {
    fn name(&self) -> &str {
        "pg_json_contains"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // A constant right side (`attrs @> '{"status": 500}'`) is parsed once.
        let constant = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(t)))) => Some(parse(t)?),
            _ => None,
        };
        let arrays = arrays(&args.args, args.number_rows)?;
        let (Some(left), Some(right)) = (arrays.first(), arrays.get(1)) else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(None)));
        };
        let (left, right) = (cast(left, &DataType::Utf8)?, cast(right, &DataType::Utf8)?);
        let (left, right) = (left.as_string::<i32>(), right.as_string::<i32>());
        let mut out = Vec::with_capacity(left.len());
        for i in 0..left.len() {
            if left.is_null(i) || right.is_null(i) {
                out.push(None);
                continue;
            }
            let a = parse(left.value(i))?;
            let contained = match &constant {
                Some(b) => json_contains(&a, b, true),
                None => json_contains(&a, &parse(right.value(i))?, true),
            };
            out.push(Some(contained));
        }
        answer(&args.args, Arc::new(BooleanArray::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, micros: i64) -> IntervalMonthDayNano {
        IntervalMonthDayNano::new(months, days, micros * 1_000)
    }

    #[test]
    fn intervals_scale_and_cascade_as_in_postgresql() {
        const HOUR: i64 = 3_600_000_000;
        // interval '1 hour' * 3 = 03:00:00
        assert_eq!(
            scale_interval(iv(0, 0, HOUR), 3.0, false),
            Some(iv(0, 0, 3 * HOUR))
        );
        // interval '1 month' * 1.5 = 1 mon 15 days
        assert_eq!(scale_interval(iv(1, 0, 0), 1.5, false), Some(iv(1, 15, 0)));
        // interval '1 day' / 4 = 06:00:00
        assert_eq!(
            scale_interval(iv(0, 1, 0), 4.0, true),
            Some(iv(0, 0, 6 * HOUR))
        );
        // interval '1 month 1 day' * 0.5 = 15 days 12:00:00
        assert_eq!(
            scale_interval(iv(1, 1, 0), 0.5, false),
            Some(iv(0, 15, 12 * HOUR))
        );
        assert_eq!(scale_interval(iv(i32::MAX, 0, 0), 2.0, false), None);
        assert_eq!(scale_interval(iv(1, 0, 0), f64::NAN, false), None);
    }

    #[test]
    fn containment_follows_jsonb() {
        let j = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
        let has = |a: &str, b: &str| json_contains(&j(a), &j(b), true);
        assert!(has(
            r#"{"status": 500, "http": {"method": "GET"}}"#,
            r#"{"status": 500}"#
        ));
        assert!(has(
            r#"{"http": {"method": "GET", "path": "/"}}"#,
            r#"{"http": {"method": "GET"}}"#
        ));
        assert!(!has(r#"{"status": 500}"#, r#"{"status": "500"}"#));
        assert!(has(r#"{"status": 500.0}"#, r#"{"status": 500}"#));
        assert!(has(r#"[1, 2, [3, 4]]"#, r#"[[4], 1]"#));
        assert!(has(r#"["a", "b"]"#, r#""a""#));
        assert!(!has(r#"{"tags": ["a", "b"]}"#, r#"{"tags": "a"}"#));
        assert!(has(r#"{"a": 1}"#, r#"{}"#));
        assert!(!has(r#"[1]"#, r#"{}"#));
    }
}
