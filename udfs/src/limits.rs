//! Output limits for the built-in functions whose result can be larger than their input
//! (`repeat`, `lpad`, `rpad`, `array_repeat`, `array_resize`, `range`, `generate_series`,
//! `replace`, `regexp_replace`, and — see [`guard_scalar`] — `concat`, `translate`, `upper`
//! and the other functions that build text or arrays from their arguments): each call's output
//! is sized from its arguments *before* it is built, and refused past the per-value limit
//! (SQLSTATE 54000, as PostgreSQL does past 1 GB) or past what the query's memory pool can
//! still give (53200), which holds the size while the call runs. Without this, one expression
//! allocates by a number the client sent, and the allocation either overflows Arrow's 32-bit
//! offsets (a panic) or fails outright (an abort of the server).

use crate::sqlstate;
use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::logical_expr::simplify::ExprSimplifyResult;
use datafusion::logical_expr::udf_eq::UdfEq;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use crate::QueryError;

/// The largest value one call may produce: PostgreSQL's 1 GB field limit, or an eighth of the
/// query's budget when that is smaller (a value is copied a few times on its way to the client).
pub const MAX_VALUE_BYTES: u128 = 1 << 30;

/// The per-value limit of a query with `budget` bytes.
pub fn max_value_bytes(budget: QueryBudget) -> u128 {
    MAX_VALUE_BYTES.min(u128::from(budget.bytes / 8).max(1 << 20))
}

/// The query's own memory pool, which function outputs are reserved from while they are built
/// (a session config extension the server sets per query; absent: only the budget is checked).
#[derive(Debug, Clone)]
pub struct QueryMemoryPool(pub Arc<dyn MemoryPool>);

impl ConfigExtension for QueryMemoryPool {
    const PREFIX: &'static str = "timberline_pool";
}

impl ExtensionOptions for QueryMemoryPool {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }
    fn set(&mut self, key: &str, _value: &str) -> Result<()> {
        Err(DataFusionError::Configuration(format!(
            "{key} is set by the server, not by a session"
        )))
    }
    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
}

/// The memory budget of the query running (a session config extension; absent: none beyond
/// [`MAX_VALUE_BYTES`] per value and 2 GiB per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryBudget {
    pub bytes: u64,
}

impl Default for QueryBudget {
    fn default() -> QueryBudget {
        QueryBudget { bytes: 2 << 30 }
    }
}

impl ConfigExtension for QueryBudget {
    const PREFIX: &'static str = "timberline_budget";
}

impl ExtensionOptions for QueryBudget {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(*self)
    }
    fn set(&mut self, key: &str, _value: &str) -> Result<()> {
        Err(DataFusionError::Configuration(format!(
            "{key} is set by the server, not by a session"
        )))
    }
    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
}

/// How a function's output grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`: `len(text) × n`.
    Repeat,
    /// `lpad/rpad(text, n [, fill])`: `len(text) + n × widest char of fill`.
    Pad,
    /// `array_repeat(x, n)`: `n` copies of `x`.
    ArrayRepeat,
    /// `array_resize(array, n [, v])`: `n` elements as large as the array's or `v`.
    Resize,
    /// `range/generate_series([start,] stop [, step])`: `(stop − start) / step` elements.
    Series,
    /// `replace(text, from, to)`: every `from` (or, when it is empty, every gap) becomes `to`.
    Replace,
    /// `regexp_replace(text, pattern, replacement [, flags])`: each match (at most one per
    /// byte and gap) becomes the replacement, whose group references copy at most the text.
    RegexpReplace,
    /// At most this many times the bytes of all arguments together (`concat`: 1; `translate`,
    /// whose characters may each become a 4-byte one: 4), plus [`ELEMENT_BYTES`] a row.
    Inputs(u8),
}

/// Functions that build their output from their arguments, and how much larger it can be.
const FROM_INPUTS: &[(&str, u8)] = &[
    ("textcat", 1),
    ("concat", 1),
    ("concat_ws", 2),
    ("translate", 4),
    ("upper", 3),
    ("lower", 3),
    ("initcap", 3),
    ("overlay", 1),
    ("reverse", 1),
    ("to_hex", 2),
    ("encode", 2),
    ("decode", 1),
    ("string_to_array", 2),
    ("regexp_match", 2),
    ("array_append", 1),
    ("array_prepend", 1),
    ("array_concat", 1),
    ("make_array", 2),
    ("array_to_string", 2),
    ("array_union", 1),
    ("array_distinct", 1),
    ("flatten", 1),
    ("json_build_object", 2),
    ("to_char", 2),
    ("split_part", 1),
    ("substr", 1),
    ("left", 1),
    ("right", 1),
    ("btrim", 1),
    ("ltrim", 1),
    ("rtrim", 1),
];

/// `expr` with every call [`guard_scalar`] guards replaced by its guarded form.
pub fn guard_tree(expr: Expr) -> Result<Expr> {
    expr.transform_up(|e| Ok(guard_call(e))).map(|t| t.data)
}

/// One call [`guard_scalar`] guards, replaced by its guarded form; any other expression as it is.
pub fn guard_call(expr: Expr) -> Transformed<Expr> {
    match expr {
        Expr::ScalarFunction(mut f) => match guard_scalar(&f.func) {
            Some(g) => {
                f.func = Arc::new(g);
                Transformed::yes(Expr::ScalarFunction(f))
            }
            None => Transformed::no(Expr::ScalarFunction(f)),
        },
        other => Transformed::no(other),
    }
}

/// The functions [`guard_scalar`] guards, wrapped, to register over DataFusion's (so that
/// constants folded while planning are guarded too).
pub fn guarded_from_inputs(registered: &dyn Fn(&str) -> Option<Arc<ScalarUDF>>) -> Vec<ScalarUDF> {
    FROM_INPUTS
        .iter()
        .filter_map(|(name, _)| guard_scalar(registered(name)?.as_ref()))
        .collect()
}

/// `udf` wrapped so that its output is sized from its arguments and reserved in the query's
/// pool before it is built, if it is one of the functions that build text or arrays from their
/// arguments (and not guarded already); `None` otherwise.
pub fn guard_scalar(udf: &ScalarUDF) -> Option<ScalarUDF> {
    let inner = udf.inner();
    if (inner.as_ref() as &dyn Any).is::<Guarded>() {
        return None;
    }
    let name = inner.name().to_ascii_lowercase();
    let factor = FROM_INPUTS
        .iter()
        .find(|(n, _)| *n == name || inner.aliases().iter().any(|a| a == n))?
        .1;
    Some(ScalarUDF::new_from_impl(Guarded {
        inner: inner.clone().into(),
        growth: Growth::Inputs(factor),
    }))
}

/// Bytes one list element is counted as.
const ELEMENT_BYTES: u128 = 16;

/// The guarded replacements of DataFusion's functions, to register over them.
pub fn guarded_udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::{regex, string, unicode};
    use datafusion::functions_nested::{range, repeat, resize};
    [
        (string::repeat(), Growth::Repeat),
        (unicode::lpad(), Growth::Pad),
        (unicode::rpad(), Growth::Pad),
        (repeat::array_repeat_udf(), Growth::ArrayRepeat),
        (resize::array_resize_udf(), Growth::Resize),
        (range::range_udf(), Growth::Series),
        (range::gen_series_udf(), Growth::Series),
        (string::replace(), Growth::Replace),
        (
            Arc::new(crate::regex_limits::one_pattern_at_a_time(
                &regex::regexp_replace(),
            )),
            Growth::RegexpReplace,
        ),
    ]
    .into_iter()
    .map(|(udf, growth)| {
        ScalarUDF::new_from_impl(Guarded {
            inner: udf.inner().clone().into(),
            growth,
        })
    })
    .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Guarded {
    inner: UdfEq<Arc<dyn ScalarUDFImpl>>,
    growth: Growth,
}

impl Guarded {
    /// Refuses the call if its output, sized from `args`, is too large; else reserves that
    /// size in the query's pool for as long as the returned reservation lives.
    fn check(&self, args: &ScalarFunctionArgs) -> Result<Option<MemoryReservation>> {
        let rows = args.number_rows.max(1);
        let (largest, total) = self.sizes(&args.args, rows)?;
        let name = self.inner.name();
        let budget = args
            .config_options
            .extensions
            .get::<QueryBudget>()
            .copied()
            .unwrap_or_default();
        let max_value = max_value_bytes(budget);
        if largest > max_value {
            return Err(limit_error(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                format!("{name}: requested length too large ({largest} bytes; at most {max_value} per value)"),
            ));
        }
        if total > u128::from(budget.bytes) {
            return Err(limit_error(
                sqlstate::OUT_OF_MEMORY,
                format!(
                    "{name}: its output would take {total} bytes, more than the query's memory budget of {} bytes",
                    budget.bytes
                ),
            ));
        }
        // Arrow's text and list arrays address their values with 32-bit offsets.
        if total > i32::MAX as u128 {
            return Err(limit_error(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                format!("{name}: its output would take {total} bytes, more than one batch can hold ({} bytes)", i32::MAX),
            ));
        }
        let Some(pool) = args.config_options.extensions.get::<QueryMemoryPool>() else {
            return Ok(None);
        };
        let reservation = MemoryConsumer::new(format!("{name}() output")).register(&pool.0);
        reservation.try_grow(usize::try_from(total).unwrap_or(usize::MAX))?;
        Ok(Some(reservation))
    }

    /// (largest value, all values) in bytes, an upper bound. Scalar arguments are read once;
    /// array ones row by row without copying their values.
    fn sizes(&self, args: &[ColumnarValue], rows: usize) -> Result<(u128, u128)> {
        if let Growth::Inputs(factor) = self.growth {
            return from_inputs(args, rows, u128::from(factor));
        }
        let (mut largest, mut total) = (0u128, 0u128);
        let ints = Ints::of(args.get(1))?;
        let lens = Lens::of(args.first())?;
        let (second, third) = (Lens::of(args.get(1))?, Lens::of(args.get(2))?);
        // What is the same on every row is read once: a fill's widest character, a
        // replacement's group references.
        let width_once = match args.get(2) {
            Some(fill @ ColumnarValue::Scalar(_)) => Some(widest_char(text_at(fill, 0))),
            _ => None,
        };
        let refs_once = match args.get(2) {
            Some(r @ ColumnarValue::Scalar(_)) => Some(group_refs(text_at(r, 0))),
            _ => None,
        };
        for i in 0..rows {
            let size = match self.growth {
                Growth::Repeat => lens.at(i) * nonneg(ints.at(i)),
                Growth::Pad => {
                    let width = match (width_once, args.get(2)) {
                        (Some(w), _) => w,
                        (None, Some(fill)) => widest_char(text_at(fill, i)),
                        (None, None) => 1,
                    };
                    lens.at(i) + nonneg(ints.at(i)) * width
                }
                Growth::ArrayRepeat => nonneg(ints.at(i)) * element_bytes(args.first(), i)?,
                Growth::Resize => {
                    let element =
                        element_bytes_of_list(args.first(), i)?.max(element_bytes(args.get(2), i)?);
                    nonneg(ints.at(i)) * element
                }
                Growth::Series => series_len(args, i)? * ELEMENT_BYTES,
                Growth::Replace => {
                    let text = lens.at(i);
                    text + (text / second.at(i).max(1) + 1) * third.at(i)
                }
                Growth::RegexpReplace => {
                    let text = lens.at(i);
                    let refs = match (&refs_once, args.get(2)) {
                        (Some(n), _) => *n,
                        (None, Some(r)) => group_refs(text_at(r, i)),
                        (None, None) => 0,
                    };
                    text + (text + 1) * (third.at(i) + refs * text)
                }
                Growth::Inputs(_) => 0,
            };
            largest = largest.max(size);
            total = total.saturating_add(size);
        }
        Ok((largest, total))
    }
}

/// (largest value, all values) of a function whose output is at most `factor` times its
/// arguments: text arguments by their values' lengths, others by their buffers.
fn from_inputs(args: &[ColumnarValue], rows: usize, factor: u128) -> Result<(u128, u128)> {
    let (mut largest, mut total) = (0u128, 0u128);
    for arg in args {
        let (arg_largest, arg_total) = match arg {
            ColumnarValue::Scalar(s) => {
                let size = s.size() as u128;
                (size, size * rows as u128)
            }
            ColumnarValue::Array(a) => match Lens::of(Some(arg))? {
                // Text: its values' lengths (a slice or a view array shares buffers far larger
                // than the rows it holds).
                Lens::Column(l) => {
                    let lens = l.iter().flatten().map(|n| n.max(0) as u128);
                    let (widest, sum) = lens.fold((0, 0), |(w, t), n| (w.max(n), t + n));
                    (widest, sum + 4 * l.len() as u128)
                }
                // Not text: each value counted as all of it would be wrong for lists of many
                // rows; the buffers bound the call, the output check the value.
                Lens::Const(_) => (0, a.get_array_memory_size() as u128),
            },
        };
        largest = largest.saturating_add(arg_largest);
        total = total.saturating_add(arg_total);
    }
    Ok((
        largest.saturating_mul(factor),
        total
            .saturating_mul(factor)
            .saturating_add(rows as u128 * ELEMENT_BYTES),
    ))
}

fn limit_error(code: &'static str, message: String) -> DataFusionError {
    QueryError::new(code, message).into_df()
}

fn nonneg(v: Option<i64>) -> u128 {
    v.map_or(0, |n| n.max(0) as u128)
}

/// Row `i` of an argument (a scalar is the same on every row).
fn value_at(arg: &ColumnarValue, i: usize) -> Result<ScalarValue> {
    match arg {
        ColumnarValue::Scalar(s) => Ok(s.clone()),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(a, i),
    }
}

/// An integer argument, cast once for the whole batch.
enum Ints {
    Const(Option<i64>),
    Column(Int64Array),
}

impl Ints {
    fn of(arg: Option<&ColumnarValue>) -> Result<Ints> {
        Ok(match arg {
            None => Ints::Const(None),
            Some(ColumnarValue::Scalar(v)) if v.is_null() || !v.data_type().is_integer() => {
                Ints::Const(None)
            }
            Some(ColumnarValue::Scalar(v)) => match v.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(n) => Ints::Const(n),
                _ => Ints::Const(None),
            },
            Some(ColumnarValue::Array(a)) if a.data_type().is_integer() => Ints::Column(
                cast(a, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            Some(ColumnarValue::Array(_)) => Ints::Const(None),
        })
    }

    fn at(&self, i: usize) -> Option<i64> {
        match self {
            Ints::Const(n) => *n,
            Ints::Column(a) => (a.len() > i && !a.is_null(i)).then(|| a.value(i)),
        }
    }
}

/// Byte lengths of a text argument (0 for NULL or a non-text one), computed once per batch.
enum Lens {
    Const(u128),
    Column(Int64Array),
}

impl Lens {
    fn of(arg: Option<&ColumnarValue>) -> Result<Lens> {
        Ok(match arg {
            Some(ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)),
            )) => Lens::Const(s.len() as u128),
            Some(ColumnarValue::Array(a))
                if matches!(
                    a.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ) =>
            {
                let lens = length(a)?;
                Lens::Column(
                    cast(&lens, &DataType::Int64)?
                        .as_primitive::<Int64Type>()
                        .clone(),
                )
            }
            _ => Lens::Const(0),
        })
    }

    fn at(&self, i: usize) -> u128 {
        match self {
            Lens::Const(n) => *n,
            Lens::Column(a) => {
                if a.len() > i && !a.is_null(i) {
                    a.value(i).max(0) as u128
                } else {
                    0
                }
            }
        }
    }
}

/// Bytes of the widest character of a fill string (1 when empty).
fn widest_char(fill: &str) -> u128 {
    fill.chars().map(char::len_utf8).max().unwrap_or(1) as u128
}

/// Group references (`\\1`, `$1`, `${name}`) a replacement may copy matched text with.
fn group_refs(replacement: &str) -> u128 {
    replacement.matches(['\\', '$']).count() as u128
}

/// Row `i` of a text argument, borrowed (empty for NULL or a non-text argument).
fn text_at(arg: &ColumnarValue, i: usize) -> &str {
    match arg {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => s,
        ColumnarValue::Array(a) if i < a.len() && !a.is_null(i) => match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(i),
            DataType::LargeUtf8 => a.as_string::<i64>().value(i),
            DataType::Utf8View => a.as_string_view().value(i),
            _ => "",
        },
        _ => "",
    }
}

/// Bytes one copy of row `i` of an argument takes (at least [`ELEMENT_BYTES`]).
fn element_bytes(arg: Option<&ColumnarValue>, i: usize) -> Result<u128> {
    let bytes = match arg {
        None => 0,
        Some(ColumnarValue::Scalar(v)) => v.size(),
        Some(ColumnarValue::Array(a)) if i < a.len() => {
            a.slice(i, 1).to_data().get_slice_memory_size().unwrap_or(0)
        }
        Some(ColumnarValue::Array(_)) => 0,
    };
    Ok((bytes as u128).max(ELEMENT_BYTES))
}

/// Bytes one element of the list at row `i` takes on average (at least [`ELEMENT_BYTES`]).
fn element_bytes_of_list(arg: Option<&ColumnarValue>, i: usize) -> Result<u128> {
    let Some(arg) = arg else {
        return Ok(ELEMENT_BYTES);
    };
    let list = value_at(arg, i)?;
    let (bytes, len) = match &list {
        ScalarValue::List(l) => (list.size(), l.value_length(0).max(0) as usize),
        ScalarValue::LargeList(l) => (list.size(), l.value_length(0).max(0) as usize),
        _ => (list.size(), 1),
    };
    Ok(((bytes / len.max(1)) as u128).max(ELEMENT_BYTES))
}

/// Elements of `range/generate_series` at row `i`: integers, dates or timestamps.
fn series_len(args: &[ColumnarValue], i: usize) -> Result<u128> {
    let values: Vec<ScalarValue> = args.iter().map(|a| value_at(a, i)).collect::<Result<_>>()?;
    if values.iter().any(ScalarValue::is_null) {
        return Ok(0);
    }
    let as_i128 = |v: &ScalarValue| -> Option<i128> {
        match v {
            ScalarValue::Date32(Some(d)) => Some(i128::from(*d) * 86_400_000_000_000),
            ScalarValue::Date64(Some(ms)) => Some(i128::from(*ms) * 1_000_000),
            ScalarValue::TimestampSecond(Some(t), _) => Some(i128::from(*t) * 1_000_000_000),
            ScalarValue::TimestampMillisecond(Some(t), _) => Some(i128::from(*t) * 1_000_000),
            ScalarValue::TimestampMicrosecond(Some(t), _) => Some(i128::from(*t) * 1_000),
            ScalarValue::TimestampNanosecond(Some(t), _) => Some(i128::from(*t)),
            ScalarValue::IntervalMonthDayNano(Some(iv)) => Some(
                i128::from(iv.months) * 28 * 86_400_000_000_000
                    + i128::from(iv.days) * 86_400_000_000_000
                    + i128::from(iv.nanoseconds),
            ),
            ScalarValue::IntervalDayTime(Some(iv)) => Some(
                i128::from(iv.days) * 86_400_000_000_000 + i128::from(iv.milliseconds) * 1_000_000,
            ),
            ScalarValue::IntervalYearMonth(Some(m)) => {
                Some(i128::from(*m) * 28 * 86_400_000_000_000)
            }
            v if v.data_type().is_integer() => match v.cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(n))) => Some(i128::from(n)),
                _ => None,
            },
            _ => None,
        }
    };
    let nums: Vec<i128> = values.iter().filter_map(as_i128).collect();
    if nums.len() != values.len() {
        return Ok(0);
    }
    let (start, stop, step) = match nums.as_slice() {
        [stop] => (0, *stop, 1),
        [start, stop] => (*start, *stop, 1),
        [start, stop, step, ..] => (*start, *stop, *step),
        [] => return Ok(0),
    };
    let step = step.unsigned_abs().max(1);
    Ok(start.abs_diff(stop) / step + 1)
}

impl ScalarUDFImpl for Guarded {
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
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn schema_name(&self, args: &[datafusion::logical_expr::Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }
    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }
    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.inner.documentation()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let _held = self.check(&args)?;
        self.inner.invoke_with_args(args)
    }
    fn simplify(
        &self,
        args: Vec<datafusion::logical_expr::Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        // What the function simplifies to is guarded as well (constants are folded next).
        Ok(match self.inner.simplify(args, info)? {
            ExprSimplifyResult::Simplified(e) => ExprSimplifyResult::Simplified(guard_tree(e)?),
            original => original,
        })
    }
}

/// PostgreSQL's `textcat(a, b)`: what `a || b` means on text (NULL when either is NULL),
/// guarded like `concat`. The analyzer plans text `||` as this function.
pub fn textcat_udf() -> ScalarUDF {
    let plain = ScalarUDF::new_from_impl(TextCat {
        signature: Signature::uniform(
            2,
            vec![DataType::Utf8],
            datafusion::logical_expr::Volatility::Immutable,
        ),
    });
    guard_scalar(&plain).unwrap_or(plain)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TextCat {
    signature: Signature,
}

impl ScalarUDFImpl for TextCat {
    fn name(&self) -> &str {
        "textcat"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalars = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (Some(left), Some(right)) = (arrays.first(), arrays.get(1)) else {
            return Err(DataFusionError::Internal(
                "textcat takes two arguments".into(),
            ));
        };
        // Planned after type coercion: its arguments may be any text type (views, dictionaries).
        let (left, right) = (cast(left, &DataType::Utf8)?, cast(right, &DataType::Utf8)?);
        let (Some(l), Some(r)) = (left.as_string_opt::<i32>(), right.as_string_opt::<i32>()) else {
            return Err(DataFusionError::Internal(
                "textcat: arguments are not text".into(),
            ));
        };
        let joined: datafusion::arrow::array::ArrayRef = Arc::new(
            datafusion::arrow::compute::kernels::concat_elements::concat_elements_utf8(l, r)?,
        );
        Ok(if scalars {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&joined, 0)?)
        } else {
            ColumnarValue::Array(joined)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_upper_bounds_from_the_arguments() {
        let g = |growth| Guarded {
            inner: datafusion::functions::string::repeat()
                .inner()
                .clone()
                .into(),
            growth,
        };
        let text = |s: &str| ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.into())));
        let int = |n: i64| ColumnarValue::Scalar(ScalarValue::Int64(Some(n)));
        assert_eq!(
            g(Growth::Repeat).sizes(&[text("abc"), int(4)], 2).unwrap(),
            (12, 24)
        );
        assert_eq!(
            g(Growth::Repeat).sizes(&[text("abc"), int(-4)], 1).unwrap(),
            (0, 0)
        );
        assert_eq!(
            g(Growth::Pad)
                .sizes(&[text("ab"), int(10), text("é")], 1)
                .unwrap(),
            (22, 22)
        );
        assert_eq!(
            g(Growth::Series).sizes(&[int(1), int(10)], 1).unwrap().0,
            10 * ELEMENT_BYTES
        );
        assert_eq!(
            g(Growth::Series)
                .sizes(&[int(10), int(0), int(-5)], 1)
                .unwrap()
                .0,
            3 * ELEMENT_BYTES
        );
        let array: datafusion::arrow::array::ArrayRef =
            Arc::new(datafusion::arrow::array::Int32Array::from(vec![
                Some(2),
                None,
                Some(3),
            ]));
        assert_eq!(
            g(Growth::Repeat)
                .sizes(&[text("xy"), ColumnarValue::Array(array)], 3)
                .unwrap(),
            (6, 10)
        );
    }
}
