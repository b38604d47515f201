//! Which `count(*)` queries a count table can answer: filters that are time ranges and label
//! equalities, groups that are labels or functions of `ts` constant within a minute.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::{AggregateFunction, InList};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use crate::index::{LabelFilter, LABELS, MINUTE_US};

/// The filters of a countable query: a `ts` range (inclusive, in µs) and label values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CountSpec {
    pub lo: Option<i64>,
    pub hi: Option<i64>,
    pub labels: LabelFilter,
}

impl CountSpec {
    /// The spec of `filters` (AND-ed), or `None` if one of them is not a time bound or a label
    /// equality / IN list on literals.
    pub fn from_filters<'a>(filters: impl IntoIterator<Item = &'a Expr>) -> Option<CountSpec> {
        let mut spec = CountSpec::default();
        for f in filters {
            if !spec.add(f) {
                return None;
            }
        }
        Some(spec)
    }

    fn add(&mut self, e: &Expr) -> bool {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => self.add(left) && self.add(right),
            // `label = a OR label = b` (how IN lists of two or three come out of the planner).
            Expr::BinaryExpr(BinaryExpr {
                op: Operator::Or, ..
            }) => match label_values(e) {
                Some((column, values)) => self.restrict(&column, values),
                None => false,
            },
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (column, value, op) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) => (c, v, *op),
                    (Expr::Literal(v, _), Expr::Column(c)) => match op.swap() {
                        Some(op) => (c, v, op),
                        None => return false,
                    },
                    _ => return false,
                };
                if column.name == "ts" {
                    return self.bound(value, op);
                }
                match (op, value.try_as_str()) {
                    (Operator::Eq, Some(Some(v))) => self.restrict(&column.name, vec![v.into()]),
                    _ => false,
                }
            }
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) => {
                let Expr::Column(column) = expr.as_ref() else {
                    return false;
                };
                let values: Option<Vec<String>> = list
                    .iter()
                    .map(|v| match v {
                        Expr::Literal(v, _) => v.try_as_str().flatten().map(str::to_string),
                        _ => None,
                    })
                    .collect();
                values.is_some_and(|v| self.restrict(&column.name, v))
            }
            _ => false,
        }
    }

    fn bound(&mut self, value: &ScalarValue, op: Operator) -> bool {
        let ScalarValue::TimestampMicrosecond(Some(v), _) = value else {
            return false;
        };
        let v = *v;
        let (lo, hi) = match op {
            Operator::Eq => (Some(v), Some(v)),
            Operator::Gt => (v.checked_add(1), None),
            Operator::GtEq => (Some(v), None),
            Operator::Lt => (None, v.checked_sub(1)),
            Operator::LtEq => (None, Some(v)),
            _ => return false,
        };
        // A bound past the end of time leaves nothing (`ts > i64::MAX`): let the scan say so.
        if matches!(op, Operator::Gt) && lo.is_none() || matches!(op, Operator::Lt) && hi.is_none()
        {
            return false;
        }
        if let Some(lo) = lo {
            self.lo = Some(self.lo.map_or(lo, |x| x.max(lo)));
        }
        if let Some(hi) = hi {
            self.hi = Some(self.hi.map_or(hi, |x| x.min(hi)));
        }
        true
    }

    fn restrict(&mut self, column: &str, values: Vec<String>) -> bool {
        let Some(l) = LABELS.iter().position(|c| *c == column) else {
            return false;
        };
        let kept = match self.labels.0[l].take() {
            Some(before) => values.into_iter().filter(|v| before.contains(v)).collect(),
            None => values,
        };
        self.labels.0[l] = Some(kept);
        true
    }

    /// The minutes wholly inside the time range, as a range of minute numbers (may be empty).
    pub fn whole_minutes(&self) -> std::ops::Range<i64> {
        let first = match self.lo {
            None => i64::MIN,
            Some(lo) => lo.div_euclid(MINUTE_US) + i64::from(lo.rem_euclid(MINUTE_US) != 0),
        };
        let end = match self.hi {
            None => i64::MAX,
            // Minute m is whole when its last microsecond, (m + 1) · MINUTE_US − 1, is ≤ hi.
            Some(hi) => hi.saturating_add(1).div_euclid(MINUTE_US),
        };
        first..end.max(first)
    }
}

/// The column and values of a disjunction of equalities of one label column with literals.
fn label_values(e: &Expr) -> Option<(String, Vec<String>)> {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (column, mut values) = label_values(left)?;
            let (other, more) = label_values(right)?;
            (column == other).then(|| {
                values.extend(more);
                (column, values)
            })
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                Some((c.name.clone(), vec![v.try_as_str().flatten()?.to_string()]))
            }
            _ => None,
        },
        _ => None,
    }
}

/// True if `e` is `count(*)`, `count(1)` or another `count` of a non-null literal.
pub fn is_count_star(e: &Expr) -> bool {
    let e = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = e else {
        return false;
    };
    func.name() == "count"
        && !params.distinct
        && params.filter.is_none()
        && params.order_by.is_empty()
        && matches!(params.args.as_slice(), [Expr::Literal(v, _)] if !v.is_null())
}

/// True if `e` can group counted rows: it reads only labels, and `ts` only through functions
/// whose value is the same for every instant of a minute (a count table knows the minute of
/// each row, not its instant).
pub fn groups_by_minute_or_label(e: &Expr) -> bool {
    match e {
        Expr::Column(c) => LABELS.contains(&c.name.as_str()),
        Expr::Literal(..) => true,
        e if minute_constant(e) => true,
        e => {
            let mut ok = true;
            let _ = e.apply_children(|child| {
                ok = groups_by_minute_or_label(child);
                Ok(if ok {
                    TreeNodeRecursion::Continue
                } else {
                    TreeNodeRecursion::Stop
                })
            });
            ok && !matches!(
                e,
                Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
            )
        }
    }
}

/// Units of `date_trunc`/`date_part` whose value does not change within a minute.
const MINUTE_OR_COARSER: [&str; 14] = [
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "quarter",
    "year",
    "decade",
    "century",
    "millennium",
    "dow",
    "doy",
    "isodow",
    "isoyear",
];

/// `ts`, or `ts` cast to another timestamp type (exact: `date_bin` takes nanoseconds).
fn is_ts(e: &Expr) -> bool {
    match e {
        Expr::Column(c) => c.name == "ts",
        Expr::Cast(c) => matches!(c.field.data_type(), DataType::Timestamp(..)) && is_ts(&c.expr),
        _ => false,
    }
}

fn literal_str(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(v, _) => v.try_as_str().flatten().map(str::to_lowercase),
        _ => None,
    }
}

/// `date_trunc(unit, ts)`, `date_part(unit, ts)` with a unit of a minute or more,
/// `date_bin(whole minutes, ts [, origin on a minute])`, or `floor(date_part('epoch', ts) / k)`
/// with k a multiple of 60 (Grafana's `$__timeGroup`).
fn minute_constant(e: &Expr) -> bool {
    let Expr::ScalarFunction(f) = e else {
        return false;
    };
    let args = f.args.as_slice();
    match (f.func.name(), args) {
        ("date_trunc" | "date_part", [unit, ts]) if is_ts(ts) => {
            literal_str(unit).is_some_and(|u| MINUTE_OR_COARSER.contains(&u.as_str()))
        }
        ("date_bin", [stride, ts, rest @ ..]) if is_ts(ts) && rest.len() <= 1 => {
            let origin_ok = match rest.first() {
                None => true,
                Some(Expr::Literal(v, _)) => {
                    timestamp_micros(v).is_some_and(|o| o % MINUTE_US == 0)
                }
                Some(_) => false,
            };
            origin_ok && whole_minute_stride(stride)
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
            let divisor = match right.as_ref() {
                Expr::Literal(ScalarValue::Float64(Some(k)), _) => Some(*k),
                Expr::Literal(ScalarValue::Int64(Some(k)), _) => Some(*k as f64),
                _ => None,
            };
            epoch && divisor.is_some_and(|k| k >= 60.0 && k % 60.0 == 0.0)
        }
        _ => false,
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

fn whole_minute_stride(stride: &Expr) -> bool {
    let Expr::Literal(v, _) = stride else {
        return false;
    };
    const MINUTE_NS: i64 = MINUTE_US * 1_000;
    match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) => {
            let ns = i128::from(i.days) * 86_400_000_000_000 + i128::from(i.nanoseconds);
            if i.months != 0 {
                i.months > 0 && i.days == 0 && i.nanoseconds == 0
            } else {
                ns > 0 && ns % i128::from(MINUTE_NS) == 0
            }
        }
        ScalarValue::IntervalDayTime(Some(i)) => {
            let ms = i64::from(i.days) * 86_400_000 + i64::from(i.milliseconds);
            ms > 0 && ms % 60_000 == 0
        }
        _ => false,
    }
}
