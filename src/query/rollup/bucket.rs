//! Time in rollups: which expression of `ts` makes a view's buckets (and how wide they are),
//! which expressions of `ts` are constant within a bucket (so a query may group or filter by
//! them on rolled-up rows), and the `ts` bounds of a query's filters.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use crate::index::rollup::Bucket;

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 1970-01-05, the first Monday of the epoch: where `date_trunc('week', …)` weeks start.
const FIRST_MONDAY: i64 = 4 * DAY;

/// `ts`, or `ts` cast to a timestamp type that keeps its instant and its UTC calendar
/// (microseconds or nanoseconds, UTC or zoneless). A cast into another zone (what a session's
/// `TimeZone` makes of `date_trunc`) moves the calendar, and is not `ts` here.
pub fn is_ts(e: &Expr) -> bool {
    let same = |t: &DataType| match t {
        DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Nanosecond, zone) => zone
            .as_deref()
            .is_none_or(|z| matches!(z, "UTC" | "+00:00" | "Z")),
        _ => false,
    };
    match e {
        Expr::Column(c) => c.name == "ts",
        Expr::Cast(c) => same(c.field.data_type()) && is_ts(&c.expr),
        Expr::TryCast(c) => same(c.field.data_type()) && is_ts(&c.expr),
        _ => false,
    }
}

fn literal_str(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(v, _) => v.try_as_str().flatten().map(str::to_lowercase),
        _ => None,
    }
}

/// How `date_trunc` / `date_part` of a unit change over time: at fixed multiples of a
/// period (`Some`), or at calendar boundaries that all fall on midnights (`None`).
fn unit_period(unit: &str) -> Option<Option<i64>> {
    Some(match unit {
        "second" | "seconds" => Some(SECOND),
        "minute" | "minutes" => Some(MINUTE),
        "hour" | "hours" => Some(HOUR),
        "day" | "days" | "dow" | "doy" | "isodow" => Some(DAY),
        "week" | "month" | "quarter" | "year" | "decade" | "century" | "millennium" | "isoyear" => {
            None
        }
        _ => return None,
    })
}

/// A `date_bin` stride in µs (fixed widths only: no months).
fn stride_micros(stride: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = stride else {
        return None;
    };
    match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            let ns = i128::from(i.days) * 86_400_000_000_000 + i128::from(i.nanoseconds);
            (ns > 0 && ns % 1000 == 0)
                .then(|| i64::try_from(ns / 1000).ok())
                .flatten()
        }
        ScalarValue::IntervalDayTime(Some(i)) => {
            let ms = i64::from(i.days) * 86_400_000 + i64::from(i.milliseconds);
            (ms > 0).then(|| ms.saturating_mul(1000))
        }
        _ => None,
    }
}

fn timestamp_micros(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampSecond(Some(s), _) => s.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(s), _) => s.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(s), _) => Some(*s),
        ScalarValue::TimestampNanosecond(Some(s), _) => (s % 1_000 == 0).then_some(s / 1_000),
        _ => None,
    }
}

/// The boundaries of a recognised function of `ts`: `Fixed(period, phase)` means it changes
/// exactly at `phase + k·period`; `Midnights` at some UTC midnights.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Steps {
    Fixed(i64, i64),
    Midnights,
}

/// The steps of `e`, if it is `date_trunc(unit, ts)`, `date_part(unit, ts)` (not `epoch`),
/// `date_bin(stride, ts [, origin])`, or `floor(date_part('epoch', ts) / k)`.
fn steps(e: &Expr) -> Option<Steps> {
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    let args = f.args.as_slice();
    match (f.func.name(), args) {
        ("date_trunc" | "date_part", [unit, ts]) if is_ts(ts) => {
            let unit = literal_str(unit)?;
            match unit_period(&unit)? {
                Some(p) => Some(Steps::Fixed(p, 0)),
                None if unit == "week" && f.func.name() == "date_trunc" => {
                    Some(Steps::Fixed(7 * DAY, FIRST_MONDAY))
                }
                None => Some(Steps::Midnights),
            }
        }
        ("date_bin", [stride, ts, rest @ ..]) if is_ts(ts) && rest.len() <= 1 => {
            let origin = match rest.first() {
                None => 0,
                Some(Expr::Literal(v, _)) => timestamp_micros(v)?,
                Some(_) => return None,
            };
            Some(Steps::Fixed(stride_micros(stride)?, origin))
        }
        (
            "floor",
            [Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Divide,
                right,
            })],
        ) => {
            let epoch = matches!(left.as_ref(), Expr::ScalarFunction(p)
                if p.func.name() == "date_part"
                    && matches!(p.args.as_slice(), [unit, ts]
                        if is_ts(ts) && literal_str(unit).as_deref() == Some("epoch")));
            let k = match right.as_ref() {
                Expr::Literal(ScalarValue::Float64(Some(k)), _) => *k,
                Expr::Literal(ScalarValue::Int64(Some(k)), _) => *k as f64,
                _ => return None,
            };
            let micros = k * 1e6;
            (epoch && k > 0.0 && micros.fract() == 0.0 && micros < 1e15)
                .then_some(Steps::Fixed(micros as i64, 0))
        }
        _ => None,
    }
}

/// The buckets a view's time grouping makes: `e` must read `ts` only through one recognised
/// function with fixed steps of a minute or more.
pub fn bucket_of(e: &Expr) -> Result<Bucket, String> {
    let mut found: Option<Steps> = None;
    let mut bare_ts = false;
    let _ = e.apply(|x| {
        if let Some(s) = steps(x) {
            if found.is_some_and(|f| f != s) {
                bare_ts = true;
            }
            found = Some(s);
            return Ok(TreeNodeRecursion::Jump);
        }
        if is_ts(x) {
            bare_ts = true;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match found {
        _ if bare_ts => Err(format!(
            "the time bucket {e} must read ts through one date_bin, date_trunc or floor(extract(epoch from ts) / k)"
        )),
        None => Err(format!("{e} is not a time bucket of ts")),
        Some(Steps::Midnights) => Err(format!(
            "the time bucket {e} is not of a fixed width; use date_trunc('day', ts) or date_bin"
        )),
        Some(Steps::Fixed(width, origin)) if width >= MINUTE => Ok(Bucket {
            width,
            origin: origin.rem_euclid(width),
        }),
        Some(_) => Err(format!(
            "the time bucket {e} is finer than a minute; rollups keep a minute or coarser"
        )),
    }
}

/// True if every boundary of `steps` is a boundary of `bucket`: the function is then the same
/// for every instant of a bucket.
fn steps_on(steps: Steps, bucket: Bucket) -> bool {
    let aligned = |phase: i64| (phase - bucket.origin).rem_euclid(bucket.width) == 0;
    match steps {
        Steps::Fixed(period, phase) => period % bucket.width == 0 && aligned(phase),
        Steps::Midnights => DAY % bucket.width == 0 && aligned(0),
    }
}

/// True if `e` reads `ts` only through functions constant within each bucket of `bucket`
/// (or not at all): on rolled-up rows, `ts` may be replaced by its bucket's first instant.
pub fn constant_within(e: &Expr, bucket: Bucket) -> bool {
    let mut ok = true;
    let _ = e.apply(|x| {
        if let Some(s) = steps(x) {
            ok &= steps_on(s, bucket);
            return Ok(TreeNodeRecursion::Jump);
        }
        let volatile = matches!(x, Expr::ScalarFunction(f)
            if f.func.signature().volatility != datafusion::logical_expr::Volatility::Immutable);
        if is_ts(x)
            || volatile
            || matches!(
                x,
                Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
            )
        {
            ok = false;
        }
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

/// `(lo, hi)` (inclusive µs) of a `ts` bound `ts <op> literal`, or `None` if `e` is not one.
pub fn ts_bound(e: &Expr) -> Option<(Option<i64>, Option<i64>)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let (value, op) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) if c.name == "ts" => (v, *op),
        (Expr::Literal(v, _), Expr::Column(c)) if c.name == "ts" => (v, op.swap()?),
        _ => return None,
    };
    let ScalarValue::TimestampMicrosecond(Some(v), _) = value else {
        return None;
    };
    let v = *v;
    Some(match op {
        Operator::Eq => (Some(v), Some(v)),
        Operator::Gt => (Some(v.checked_add(1)?), None),
        Operator::GtEq => (Some(v), None),
        Operator::Lt => (None, Some(v.checked_sub(1)?)),
        Operator::LtEq => (None, Some(v)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::functions::datetime::expr_fn::{date_bin, date_part, date_trunc};
    use datafusion::logical_expr::{col, lit};

    fn minute() -> Bucket {
        Bucket {
            width: MINUTE,
            origin: 0,
        }
    }

    fn interval(micros: i64) -> Expr {
        lit(ScalarValue::new_interval_mdn(0, 0, micros * 1000))
    }

    fn epoch() -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(0),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn buckets_of_view_groupings() {
        assert_eq!(
            bucket_of(&date_trunc(lit("minute"), col("ts"))),
            Ok(minute())
        );
        assert_eq!(
            bucket_of(&date_bin(interval(5 * MINUTE), col("ts"), epoch())).map(|b| b.width),
            Ok(5 * MINUTE)
        );
        assert!(bucket_of(&date_trunc(lit("second"), col("ts"))).is_err());
        assert!(bucket_of(&date_trunc(lit("month"), col("ts"))).is_err());
        assert!(bucket_of(&col("ts")).is_err());
        assert!(bucket_of(&col("service")).is_err());
    }

    #[test]
    fn coarser_groupings_are_constant_within_a_bucket() {
        let five = Bucket {
            width: 5 * MINUTE,
            origin: 0,
        };
        assert!(constant_within(&date_trunc(lit("hour"), col("ts")), five));
        assert!(constant_within(&date_trunc(lit("month"), col("ts")), five));
        assert!(!constant_within(
            &date_trunc(lit("minute"), col("ts")),
            five
        ));
        assert!(constant_within(
            &date_bin(interval(10 * MINUTE), col("ts"), epoch()),
            five
        ));
        assert!(!constant_within(
            &date_bin(interval(7 * MINUTE), col("ts"), epoch()),
            five
        ));
        assert!(!constant_within(
            &date_part(lit("epoch"), col("ts")),
            minute()
        ));
        assert!(constant_within(
            &date_part(lit("hour"), col("ts")),
            minute()
        ));
        assert!(!constant_within(&col("ts"), minute()));
        // In another zone's calendar an hour need not start on a UTC hour.
        let local = Expr::Cast(datafusion::logical_expr::Cast::new(
            Box::new(col("ts")),
            DataType::Timestamp(TimeUnit::Microsecond, Some("Asia/Kolkata".into())),
        ));
        let hour = Bucket {
            width: 60 * MINUTE,
            origin: 0,
        };
        assert!(!constant_within(&date_trunc(lit("hour"), local), hour));
        assert!(constant_within(&date_trunc(lit("hour"), col("ts")), hour));
        assert!(constant_within(&col("service"), minute()));
    }
}
