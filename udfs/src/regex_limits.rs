//! One compiled regular expression at a time. DataFusion's and Arrow's regexp kernels, given a
//! pattern per row, compile every distinct pattern of a batch and keep them all until the batch
//! is done: up to 8,192 regexps of up to 10 MiB each (the `regex` crate's compile limit), plus
//! their lazy DFA caches — `regexp_like(msg, '(\w{20}' || md5(msg) || '){1,8}')` took a server
//! past 24 GB. The wrapper here hands the kernel one run of rows sharing a pattern at a time,
//! so one compiled pattern is alive per call; a constant pattern is passed through whole.
//! The `~` operators and `SIMILAR TO` with a pattern that names a column are planned as the
//! wrapped `regexp_like` (see [`regex_match_call`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};

/// The regexp functions DataFusion has, wrapped to register over them.
pub fn one_pattern_at_a_time_udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::regex;
    [
        regex::regexp_like(),
        regex::regexp_match(),
        regex::regexp_count(),
        regex::regexp_instr(),
    ]
    .into_iter()
    .map(|udf| one_pattern_at_a_time(&udf))
    .collect()
}

/// `udf` evaluated one run of rows sharing their pattern (every argument but the first) at a
/// time.
pub fn one_pattern_at_a_time(udf: &ScalarUDF) -> ScalarUDF {
    ScalarUDF::new_from_impl(PatternRuns {
        inner: udf.inner().clone().into(),
    })
}

/// `left ~ right` (`~*` when `insensitive`, `!~` when `negated`; DataFusion plans `SIMILAR TO`
/// the same way) as the wrapped `regexp_like`: for a pattern that names a column (a constant
/// one is better left to the operator's kernel, which compiles it once).
pub fn regex_match_call(
    left: Expr,
    right: Expr,
    (negated, insensitive): (bool, bool),
    regexp_like: &Arc<ScalarUDF>,
) -> Expr {
    let mut args = vec![left, right];
    if insensitive {
        args.push(Expr::Literal(ScalarValue::Utf8(Some("i".into())), None));
    }
    let call = Expr::ScalarFunction(ScalarFunction::new_udf(regexp_like.clone(), args));
    match negated {
        true => Expr::Not(Box::new(call)),
        false => call,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PatternRuns {
    inner: UdfEq<Arc<dyn ScalarUDFImpl>>,
}

impl PatternRuns {
    /// Where each run of rows with the same pattern arguments starts, or `None` when they are
    /// constants (one call does).
    fn runs(args: &[ColumnarValue], rows: usize) -> Result<Option<Vec<usize>>> {
        let patterns: Vec<&ArrayRef> = args
            .iter()
            .skip(1)
            .filter_map(|a| match a {
                ColumnarValue::Array(a) => Some(a),
                ColumnarValue::Scalar(_) => None,
            })
            .collect();
        if patterns.is_empty() || rows <= 1 {
            return Ok(None);
        }
        let mut starts = vec![0];
        let mut previous: Vec<ScalarValue> = patterns
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect::<Result<_>>()?;
        for row in 1..rows {
            let here: Vec<ScalarValue> = patterns
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<Result<_>>()?;
            if here != previous {
                starts.push(row);
                previous = here;
            }
        }
        Ok(Some(starts))
    }
}

impl ScalarUDFImpl for PatternRuns {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn is_nullable(&self, args: &[Expr], schema: &dyn datafusion::common::ExprSchema) -> bool {
        #[allow(deprecated)]
        self.inner.is_nullable(args, schema)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
    // No `simplify`: DataFusion's turns `regexp_like` into the `~` operator, whose kernel
    // caches every pattern of a batch.
    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        // DataFusion's kernels want the pattern in the text type of the values (a `Utf8View`
        // column against a `Utf8` pattern built by `||` failed with XX000).
        if let Some(text) = args.args.first().map(|a| a.data_type()).filter(is_text) {
            for (arg, field) in args.args.iter_mut().zip(args.arg_fields.iter_mut()).skip(1) {
                if is_text(&arg.data_type()) && arg.data_type() != text {
                    *arg = arg.cast_to(&text, None)?;
                    *field = Arc::new(field.as_ref().clone().with_data_type(text.clone()));
                }
            }
        }
        let Some(starts) = Self::runs(&args.args, rows)? else {
            return self.inner.invoke_with_args(args);
        };
        let mut parts: Vec<ArrayRef> = Vec::with_capacity(starts.len());
        for (i, &start) in starts.iter().enumerate() {
            let len = starts.get(i + 1).unwrap_or(&rows) - start;
            let slice = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Array(a) => ColumnarValue::Array(a.slice(start, len)),
                    scalar => scalar.clone(),
                })
                .collect();
            let part = self.inner.invoke_with_args(ScalarFunctionArgs {
                args: slice,
                arg_fields: args.arg_fields.clone(),
                number_rows: len,
                return_field: args.return_field.clone(),
                config_options: args.config_options.clone(),
            })?;
            parts.push(part.into_array(len)?);
        }
        let parts: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
        Ok(ColumnarValue::Array(concat(&parts)?))
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, StringArray};
    use datafusion::arrow::datatypes::Field;

    #[test]
    fn per_row_patterns_answer_as_one_call_does() {
        let udf = datafusion::functions::regex::regexp_like();
        let wrapped = one_pattern_at_a_time(&udf);
        let values: ArrayRef = Arc::new(StringArray::from(vec!["abc", "abd", "xyz", "x", "abc"]));
        let patterns: ArrayRef = Arc::new(StringArray::from(vec!["^ab", "^ab", "z$", "^ab", "c$"]));
        let field = |n: &str| Arc::new(Field::new(n, DataType::Utf8, true));
        let call = |f: &ScalarUDF| {
            f.invoke_with_args(ScalarFunctionArgs {
                args: vec![
                    ColumnarValue::Array(values.clone()),
                    ColumnarValue::Array(patterns.clone()),
                ],
                arg_fields: vec![field("v"), field("p")],
                number_rows: 5,
                return_field: Arc::new(Field::new("r", DataType::Boolean, true)),
                config_options: Default::default(),
            })
            .and_then(|r| r.into_array(5))
            .expect("call")
        };
        let want: ArrayRef = Arc::new(BooleanArray::from(vec![true, true, true, false, true]));
        assert_eq!(&call(&udf), &want);
        assert_eq!(&call(&wrapped), &want);
        let runs = PatternRuns::runs(
            &[ColumnarValue::Array(values), ColumnarValue::Array(patterns)],
            5,
        )
        .expect("runs");
        assert_eq!(runs, Some(vec![0, 2, 3, 4]));
    }
}
