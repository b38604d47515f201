//! What one `nearest`/`log_context` search asks for, taken from the query's expressions: the
//! target moment, the selection around it, and the other conditions rows must meet.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatchOptions;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{ColumnarValue, Expr};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::PhysicalExpr;
use timberline_udfs::nearest::{ts_type, MAX_K, NEAREST};
use timberline_udfs::{sqlstate, QueryError};

use crate::model::logs_schema;

/// What to select around the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The `k` closest rows, closest first.
    Nearest { k: usize },
    /// `before` rows before, all rows at the target, `after` rows after, in time order.
    Context { before: usize, after: usize },
}

/// One search: target, selection, and the other conditions rows must meet.
#[derive(Debug, Clone)]
pub struct NearestSpec {
    /// Microseconds since the epoch.
    pub target: i64,
    pub selection: Selection,
    /// The other conditions (for display).
    pub filters: Vec<Expr>,
    /// The same, planned against the full `logs` schema.
    pub predicate: Option<Arc<dyn PhysicalExpr>>,
}

/// True for a `nearest(…)` call.
pub fn is_nearest(expr: &&Expr) -> bool {
    matches!(expr, Expr::ScalarFunction(f) if f.name() == NEAREST)
}

/// An argument error of `nearest`/`log_context` (SQLSTATE 22023).
pub fn invalid_argument(msg: impl std::fmt::Display) -> DataFusionError {
    QueryError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        format!("invalid argument: {msg}"),
    )
    .into_df()
}

/// A `nearest`/`log_context` call written where it cannot apply (SQLSTATE 42000).
pub fn misused(msg: impl std::fmt::Display) -> DataFusionError {
    QueryError::new(
        sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
        msg.to_string(),
    )
    .into_df()
}

impl NearestSpec {
    /// The search a `logs` scan was pushed `filters` for (one of them a `nearest` call).
    pub fn from_filters(filters: &[Expr], state: &dyn Session) -> Result<NearestSpec> {
        let (calls, others): (Vec<&Expr>, Vec<&Expr>) = filters.iter().partition(is_nearest);
        let [Expr::ScalarFunction(call)] = calls.as_slice() else {
            return Err(misused(
                "only one nearest() condition may apply to one scan of logs",
            ));
        };
        let args = &call.args;
        match args.first() {
            Some(Expr::Column(c)) if c.name == "ts" => {}
            _ => {
                return Err(misused(
                    "nearest() searches the ts column: write nearest(ts, …)",
                ))
            }
        }
        let target = match args.get(1) {
            Some(e) => target_micros(&constant(e, state, "the target")?)?,
            None => return Err(misused("nearest() needs a target timestamp")),
        };
        let k = match args.get(2) {
            None => 1,
            Some(e) => match constant(e, state, "k")? {
                ScalarValue::Int64(Some(k)) if (1..=MAX_K).contains(&k) => k as usize,
                v => {
                    return Err(invalid_argument(format!(
                        "nearest(): k must be between 1 and {MAX_K}, got {v}"
                    )))
                }
            },
        };
        let others: Vec<Expr> = others.into_iter().cloned().collect();
        let df_schema = DFSchema::try_from(logs_schema())?;
        let predicate = conjunction(others.clone())
            .map(|e| state.create_physical_expr(e, &df_schema))
            .transpose()?;
        Ok(NearestSpec {
            target,
            selection: Selection::Nearest { k },
            filters: others,
            predicate,
        })
    }
}

impl NearestSpec {
    /// A search built outside SQL: `filters` must already have `logs` column types.
    pub fn new(target: i64, selection: Selection, filters: Vec<Expr>) -> Result<NearestSpec> {
        let df_schema = DFSchema::try_from(logs_schema())?;
        let predicate = conjunction(filters.clone())
            .map(|e| {
                create_physical_expr(
                    &e,
                    &df_schema,
                    &ExecutionProps::new(),
                    &PhysicalPlanningContext::default(),
                )
            })
            .transpose()?;
        Ok(NearestSpec {
            target,
            selection,
            filters,
            predicate,
        })
    }
}

/// Evaluates an argument that must not depend on any row.
pub(super) fn constant(expr: &Expr, state: &dyn Session, what: &str) -> Result<ScalarValue> {
    let planned = state
        .create_physical_expr(expr.clone(), &DFSchema::empty())
        .map_err(|_| invalid_argument(format!("{what} must be a constant, got {expr}")))?;
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    match planned.evaluate(&one_row)? {
        ColumnarValue::Scalar(v) => Ok(v),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(&a, 0),
    }
}

/// A target timestamp value (a timestamp of any unit, or RFC 3339 text) as microseconds.
pub fn target_micros(v: &ScalarValue) -> Result<i64> {
    if v.is_null() {
        return Err(invalid_argument("the target timestamp is NULL"));
    }
    let cast = v
        .cast_to(&ts_type())
        .map_err(|_| invalid_argument(format!("not a timestamp: {v}")))?;
    match cast {
        ScalarValue::TimestampMicrosecond(Some(t), _) => Ok(t),
        _ => Err(invalid_argument(format!("not a timestamp: {v}"))),
    }
}
