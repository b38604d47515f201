//! PostgreSQL's meaning for SQL DataFusion reads its own way, as one analyzer rule run after
//! type coercion: text `||` as `textcat` (sized before it is built, see
//! `timberline_udfs::limits`), interval comparisons and sort keys by length, date/time literals in
//! PostgreSQL's input shapes read in the session's `TimeZone`, a `timestamp` (no zone) taken as
//! local time in that zone where it meets a `timestamptz`, `date_trunc`/`date_part` on a
//! `timestamptz` computed on the session zone's calendar, and a timestamp cast to text written
//! as PostgreSQL writes it (`2024-01-15 10:30:00+01`).

mod datetime_input;
mod interval_order;

use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF};
use datafusion::optimizer::AnalyzerRule;
use timberline_udfs::pg_compat::PgSession;
use timberline_udfs::regex_limits::regex_match_call;

/// The zone DataFusion gives `timestamptz` and `now()`: values are instants, and the session's
/// `TimeZone` applies where PostgreSQL applies it (input, calendar functions, text output).
pub const ENGINE_ZONE: &str = "UTC";

/// The analyzer rule; see the module docs.
#[derive(Debug)]
pub struct PgSemantics {
    interval_order: Arc<ScalarUDF>,
    timestamp_text: Arc<ScalarUDF>,
    textcat: Arc<ScalarUDF>,
    regexp_like: Arc<ScalarUDF>,
}

impl PgSemantics {
    pub fn new() -> PgSemantics {
        PgSemantics {
            interval_order: interval_order::udf(),
            timestamp_text: Arc::new(timberline_udfs::pg_compat::timestamp_text_udf()),
            textcat: Arc::new(timberline_udfs::limits::textcat_udf()),
            regexp_like: Arc::new(timberline_udfs::regex_limits::one_pattern_at_a_time(
                &datafusion::functions::regex::regexp_like(),
            )),
        }
    }
}

impl Default for PgSemantics {
    fn default() -> Self {
        PgSemantics::new()
    }
}

/// What one statement's rewrite needs to know.
struct Scope<'a> {
    zone: Tz,
    zone_name: Arc<str>,
    utc: bool,
    rule: &'a PgSemantics,
}

impl AnalyzerRule for PgSemantics {
    fn name(&self) -> &str {
        "pg_semantics"
    }

    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let session_zone = config
            .extensions
            .get::<PgSession>()
            .and_then(PgSession::time_zone);
        let (zone_name, zone) = match session_zone {
            Some(z) => z,
            None => (ENGINE_ZONE.to_string(), Tz::from_str(ENGINE_ZONE)?),
        };
        let utc = matches!(
            zone_name.to_ascii_uppercase().as_str(),
            "UTC" | "ETC/UTC" | "GMT" | "Z" | "+00:00"
        );
        let scope = Scope {
            zone,
            zone_name: zone_name.into(),
            utc,
            rule: self,
        };
        plan.transform_up_with_subqueries(|node| {
            let schema = match &node {
                LogicalPlan::TableScan(_) => node.schema().as_ref().clone(),
                other => merge_schema(&other.inputs()),
            };
            let names = NamePreserver::new(&node);
            let sorts_by_key = matches!(node, LogicalPlan::Sort(_));
            node.map_expressions(|e| {
                let saved = names.save(&e);
                let out = e.transform_up(|e| scope.rewrite(e, &schema))?;
                // A sort key that is an interval sorts by its length. (A Sort's keys are not
                // its output, so the key's name does not matter.)
                if sorts_by_key && is_interval(out.data.get_type(&schema).ok().as_ref()) {
                    return Ok(Transformed::yes(scope.interval_key(out.data)));
                }
                Ok(out.update_data(|e| saved.restore(e)))
            })
        })
        .map(|t| t.data)
    }
}

impl Scope<'_> {
    fn rewrite(&self, expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        let type_of = |e: &Expr| e.get_type(schema).ok();
        match expr {
            // Text `||` as PostgreSQL's textcat, whose output is sized before it is built.
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::StringConcat,
                right,
            }) if is_text(type_of(&left).as_ref()) && is_text(type_of(&right).as_ref()) => {
                Ok(Transformed::yes(Expr::ScalarFunction(
                    ScalarFunction::new_udf(self.rule.textcat.clone(), vec![*left, *right]),
                )))
            }
            // A regexp match whose pattern varies by row: one compiled pattern at a time.
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if !right.column_refs().is_empty() && regex_match_flags(op).is_some() =>
            {
                let flags = regex_match_flags(op).unwrap_or_default();
                let call = regex_match_call(*left, *right, flags, &self.rule.regexp_like);
                Ok(Transformed::yes(call))
            }
            Expr::SimilarTo(like)
                if like.escape_char.is_none() && !like.pattern.column_refs().is_empty() =>
            {
                // DataFusion plans SIMILAR TO as a regexp match of the pattern as it is.
                let flags = (like.negated, like.case_insensitive);
                let call =
                    regex_match_call(*like.expr, *like.pattern, flags, &self.rule.regexp_like);
                Ok(Transformed::yes(call))
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if is_comparison(op)
                    && is_interval(type_of(&left).as_ref())
                    && is_interval(type_of(&right).as_ref()) =>
            {
                let key = |e: Box<Expr>| {
                    Box::new(Expr::ScalarFunction(ScalarFunction::new_udf(
                        self.rule.interval_order.clone(),
                        vec![*e],
                    )))
                };
                Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left: key(left),
                    op,
                    right: key(right),
                })))
            }
            Expr::Between(mut b)
                if is_interval(type_of(&b.expr).as_ref())
                    && is_interval(type_of(&b.low).as_ref())
                    && is_interval(type_of(&b.high).as_ref()) =>
            {
                b.expr = Box::new(self.interval_key(*b.expr));
                b.low = Box::new(self.interval_key(*b.low));
                b.high = Box::new(self.interval_key(*b.high));
                Ok(Transformed::yes(Expr::Between(b)))
            }
            Expr::InList(mut l)
                if is_interval(type_of(&l.expr).as_ref())
                    && l.list.iter().all(|e| is_interval(type_of(e).as_ref())) =>
            {
                l.expr = Box::new(self.interval_key(*l.expr));
                l.list = l.list.into_iter().map(|e| self.interval_key(e)).collect();
                Ok(Transformed::yes(Expr::InList(l)))
            }
            Expr::Cast(Cast { expr: inner, field }) => {
                match self.cast(&inner, field.data_type(), type_of(&inner).as_ref())? {
                    Some(e) => Ok(Transformed::yes(e)),
                    None => Ok(Transformed::no(Expr::Cast(Cast::new_from_field(
                        inner, field,
                    )))),
                }
            }
            Expr::TryCast(TryCast { expr: inner, field }) => {
                match self.literal(&inner, field.data_type()) {
                    Some(e) => Ok(Transformed::yes(e)),
                    None => Ok(Transformed::no(Expr::TryCast(TryCast::new_from_field(
                        inner, field,
                    )))),
                }
            }
            Expr::ScalarFunction(mut f)
                if !self.utc && matches!(f.name(), "date_trunc" | "date_part" | "extract") =>
            {
                let Some(arg) = f.args.get(1) else {
                    return Ok(Transformed::no(Expr::ScalarFunction(f)));
                };
                match type_of(arg) {
                    Some(DataType::Timestamp(unit, Some(tz))) if *tz != *self.zone_name => {
                        let local = DataType::Timestamp(unit, Some(self.zone_name.clone()));
                        f.args[1] = Expr::Cast(Cast::new(Box::new(f.args[1].clone()), local));
                        let truncates = f.name() == "date_trunc";
                        let call = Expr::ScalarFunction(f);
                        // date_trunc answers in its argument's type: keep the original zone so
                        // the plan's types stay as planned.
                        Ok(Transformed::yes(if truncates {
                            let original = DataType::Timestamp(unit, Some(tz));
                            Expr::Cast(Cast::new(Box::new(call), original))
                        } else {
                            call
                        }))
                    }
                    _ => Ok(Transformed::no(Expr::ScalarFunction(f))),
                }
            }
            other => Ok(Transformed::no(other)),
        }
    }

    /// `pg_interval_order(e)`: an interval's ordering key.
    fn interval_key(&self, e: Expr) -> Expr {
        Expr::ScalarFunction(ScalarFunction::new_udf(
            self.rule.interval_order.clone(),
            vec![e],
        ))
    }

    /// A cast's rewrite: a literal read as PostgreSQL reads it, or a `timestamp` given the
    /// session zone before it becomes a `timestamptz`.
    fn cast(&self, inner: &Expr, to: &DataType, from: Option<&DataType>) -> Result<Option<Expr>> {
        if let Some(e) = self.literal(inner, to) {
            return Ok(Some(e));
        }
        match (from, to) {
            (
                Some(DataType::Timestamp(..)),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8,
            ) => {
                let text = Expr::ScalarFunction(ScalarFunction::new_udf(
                    self.rule.timestamp_text.clone(),
                    vec![inner.clone()],
                ));
                Ok(Some(Expr::Cast(Cast::new(Box::new(text), to.clone()))))
            }
            (Some(DataType::Timestamp(unit, None)), DataType::Timestamp(_, Some(_)))
                if !self.utc =>
            {
                let local = DataType::Timestamp(*unit, Some(self.zone_name.clone()));
                Ok(Some(Expr::Cast(Cast::new(
                    Box::new(Expr::Cast(Cast::new(Box::new(inner.clone()), local))),
                    to.clone(),
                ))))
            }
            _ => Ok(None),
        }
    }

    /// A string literal cast to a timestamp or a date, as its value; `None` when it is not one
    /// or not one PostgreSQL would read (the cast then reports it).
    fn literal(&self, inner: &Expr, to: &DataType) -> Option<Expr> {
        let Expr::Literal(value, _) = inner else {
            return None;
        };
        let text = match value {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => s,
            _ => return None,
        };
        let input = datetime_input::parse(text, Utc::now(), &self.zone)?;
        let value = match to {
            DataType::Timestamp(unit, tz) => {
                let nanos = match tz {
                    Some(_) => input.instant_nanos(&self.zone)?,
                    None => input.local_nanos()?,
                };
                timestamp(nanos, *unit, tz.clone())
            }
            DataType::Date32 => {
                let days = input
                    .local
                    .date()
                    .signed_duration_since(chrono::NaiveDate::default())
                    .num_days();
                ScalarValue::Date32(Some(i32::try_from(days).ok()?))
            }
            _ => return None,
        };
        Some(Expr::Literal(value, None))
    }
}

fn timestamp(nanos: i64, unit: TimeUnit, tz: Option<Arc<str>>) -> ScalarValue {
    match unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(Some(nanos.div_euclid(1_000_000_000)), tz),
        TimeUnit::Millisecond => {
            ScalarValue::TimestampMillisecond(Some(nanos.div_euclid(1_000_000)), tz)
        }
        TimeUnit::Microsecond => {
            ScalarValue::TimestampMicrosecond(Some(nanos.div_euclid(1_000)), tz)
        }
        TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(Some(nanos), tz),
    }
}

fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

fn is_interval(t: Option<&DataType>) -> bool {
    matches!(t, Some(DataType::Interval(IntervalUnit::MonthDayNano)))
}

fn is_text(t: Option<&DataType>) -> bool {
    matches!(
        t,
        Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
    )
}

/// `(negated, case insensitive)` of a regexp match operator (`~`, `~*`, `!~`, `!~*`).
fn regex_match_flags(op: Operator) -> Option<(bool, bool)> {
    match op {
        Operator::RegexMatch => Some((false, false)),
        Operator::RegexIMatch => Some((false, true)),
        Operator::RegexNotMatch => Some((true, false)),
        Operator::RegexNotIMatch => Some((true, true)),
        _ => None,
    }
}
