//! `match(text, 'query')`: full-text search over a text column, e.g.
//! `WHERE match(msg, '"card declined" AND timeout -retry')`, also written `msg @@ 'query'`.
//!
//! This is the executable form: it tokenizes each row ([`tokenize`]) and evaluates the parsed
//! [`query::Query`] — over the hot buffer, segments without an index, anywhere. An index may only
//! ever make it faster, never change its answer. The query must be a constant; it is parsed
//! while planning, so a bad query is a plan error (SQLSTATE 22023) before any row is read.

mod at_at;
mod fields;
mod prefilter;
pub mod query;
pub mod tokenize;

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::error::Result;

use crate::{sqlstate, QueryError};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub use at_at::AtAtPlanner;
pub use query::{MatchSyntaxError, Query};

/// Name of the search function.
pub const MATCH: &str = "match";

/// `match(text, query) -> boolean`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MatchUdf {
    signature: Signature,
}

impl Default for MatchUdf {
    fn default() -> Self {
        MatchUdf {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The `match` function.
pub fn match_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(MatchUdf::default())
}

fn invalid(e: impl std::fmt::Display) -> DataFusionError {
    QueryError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        format!("invalid argument: {e}"),
    )
    .into_df()
}

/// The query of a constant argument.
fn constant_query(v: &ScalarValue) -> Result<Query> {
    match v {
        ScalarValue::Utf8(Some(q))
        | ScalarValue::LargeUtf8(Some(q))
        | ScalarValue::Utf8View(Some(q)) => Query::parse(q).map_err(invalid),
        v if v.is_null() => Err(invalid("match() query is NULL")),
        v => Err(invalid(format!("match() query must be text, got {v}"))),
    }
}

impl ScalarUDFImpl for MatchUdf {
    fn name(&self) -> &str {
        MATCH
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let texty = |t: &DataType| {
            matches!(
                t,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
            )
        };
        match args {
            [a, b] if texty(a) && texty(b) => Ok(vec![DataType::Utf8, DataType::Utf8]),
            [a, b] => crate::query_err!(
                sqlstate::UNDEFINED_FUNCTION,
                "match(text, query) takes two text arguments, got ({a}, {b})"
            ),
            _ => crate::query_err!(
                sqlstate::UNDEFINED_FUNCTION,
                "match(text, query) takes 2 arguments, got {}",
                args.len()
            ),
        }
    }

    /// Parses a literal query while planning, so a bad one fails before any scan starts, and
    /// turns its `field:value` terms into column comparisons.
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        match args.get(1) {
            Some(Expr::Literal(v, _)) => {
                let q = constant_query(v)?;
                if q.has_fields() {
                    let text = args[0].clone();
                    return Ok(ExprSimplifyResult::Simplified(fields::plan(
                        &q.to_parts(),
                        &text,
                        info.schema(),
                    )?));
                }
            }
            Some(e) if !e.column_refs().is_empty() => {
                return Err(invalid(format!(
                    "match() query must be a constant, got {e}"
                )));
            }
            _ => {}
        }
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text, query] = args.args.as_slice() else {
            return crate::query_err!(
                sqlstate::UNDEFINED_FUNCTION,
                "match(text, query) takes 2 arguments"
            );
        };
        let ColumnarValue::Scalar(q) = query else {
            return Err(invalid("match() query must be a constant"));
        };
        let q = constant_query(q)?;
        if q.has_fields() {
            return Err(invalid(
                "match() with field:value terms must be planned over a table's columns",
            ));
        }
        match text {
            ColumnarValue::Scalar(s) => {
                let hit = match s {
                    ScalarValue::Utf8(Some(t))
                    | ScalarValue::LargeUtf8(Some(t))
                    | ScalarValue::Utf8View(Some(t)) => Some(q.matches_text(t)),
                    _ => None,
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(hit)))
            }
            ColumnarValue::Array(a) => {
                let a = cast(a, &DataType::Utf8)?;
                let strings = a.as_string::<i32>();
                let matcher = prefilter::Matcher::new(&q);
                let out: BooleanArray = strings
                    .iter()
                    .map(|t| t.map(|t| matcher.matches_text(t)))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out) as Arc<dyn Array>))
            }
        }
    }
}
