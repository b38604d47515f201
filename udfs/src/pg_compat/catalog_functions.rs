//! The catalog helpers psql's `\d` commands, pgAdmin and analysis SQL call:
//! `pg_size_pretty(bigint)` (PostgreSQL's rounding and units), `pg_typeof(any)` (the PostgreSQL
//! name of a value's type), the encodings (`pg_encoding_to_char`, `pg_char_to_encoding`,
//! `getdatabaseencoding()`), and NULL where nothing here has what is asked: sizes
//! (`pg_table_size`, `pg_tablespace_size`: no PostgreSQL storage), definitions
//! (`pg_get_indexdef`, `pg_get_ruledef`, `pg_get_function_sqlbody`), `pg_tablespace_location`,
//! `pg_describe_object`, comments (`col_description`, `shobj_description`; `obj_description`
//! is in `crate::own_functions`).

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, IntervalUnit, TimeUnit};

use super::columnar::{answer, first};
use super::functions::null_udf;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// PostgreSQL's `pg_size_pretty(bigint)`: bytes below 10 kB, then kB, MB, GB, TB, PB, each
/// rounded half away from zero.
pub fn size_pretty(bytes: i64) -> String {
    const LIMIT: i128 = 10 * 1024;
    const LIMIT2: i128 = LIMIT * 2 - 1;
    let half_rounded = |x: i128| (x + if x < 0 { -1 } else { 1 }) / 2;
    let bytes = i128::from(bytes);
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // One extra bit is kept for rounding; division truncates toward zero as PostgreSQL's does.
    let mut size = bytes / 512;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.abs() < LIMIT2 {
            return format!("{} {unit}", half_rounded(size));
        }
        size /= 1024;
    }
    format!("{} PB", half_rounded(size))
}

/// `pg_size_pretty(bigint)`.
pub fn size_pretty_udf() -> ScalarUDF {
    create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let Some(array) = first(args)? else {
                return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
            };
            let array = cast(&array, &DataType::Int64)?;
            let out: StringArray = array
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(size_pretty))
                .collect();
            answer(args, Arc::new(out))
        }),
    )
}

/// The PostgreSQL name of the type a value of `t` has here.
pub fn pg_type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Null => "unknown",
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint",
        DataType::Float16 | DataType::Float32 => "real",
        DataType::Float64 => "double precision",
        DataType::Decimal128(..) | DataType::Decimal256(..) => "numeric",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone",
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone",
        DataType::Timestamp(_, None) => "timestamp without time zone",
        DataType::Interval(IntervalUnit::MonthDayNano | IntervalUnit::DayTime)
        | DataType::Interval(IntervalUnit::YearMonth)
        | DataType::Duration(TimeUnit::Second | TimeUnit::Millisecond)
        | DataType::Duration(TimeUnit::Microsecond | TimeUnit::Nanosecond) => "interval",
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            match f.data_type() {
                DataType::Int32 => "integer[]",
                DataType::Int64 => "bigint[]",
                DataType::Float64 => "double precision[]",
                DataType::Boolean => "boolean[]",
                DataType::Timestamp(_, Some(_)) => "timestamp with time zone[]",
                _ => "text[]",
            }
        }
        _ => "unknown",
    }
}

/// `pg_typeof(any)`.
pub fn typeof_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(TypeOf {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TypeOf {
    signature: Signature,
}

impl ScalarUDFImpl for TypeOf {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = args
            .arg_fields
            .first()
            .map_or("unknown", |f| pg_type_name(f.data_type()));
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name.into()))))
    }
}

/// PostgreSQL's encodings, by number (`pg_wchar.h`).
const ENCODINGS: &[&str] = &[
    "SQL_ASCII",
    "EUC_JP",
    "EUC_CN",
    "EUC_KR",
    "EUC_TW",
    "EUC_JIS_2004",
    "UTF8",
    "MULE_INTERNAL",
    "LATIN1",
    "LATIN2",
    "LATIN3",
    "LATIN4",
    "LATIN5",
    "LATIN6",
    "LATIN7",
    "LATIN8",
    "LATIN9",
    "LATIN10",
    "WIN1256",
    "WIN1258",
    "WIN866",
    "WIN874",
    "KOI8R",
    "WIN1251",
    "WIN1252",
    "ISO_8859_5",
    "ISO_8859_6",
    "ISO_8859_7",
    "ISO_8859_8",
    "WIN1250",
    "WIN1253",
    "WIN1254",
    "WIN1255",
    "WIN1257",
    "KOI8U",
    "SJIS",
    "BIG5",
    "GBK",
    "UHC",
    "GB18030",
    "JOHAB",
    "SHIFT_JIS_2004",
];

/// An encoding's name as PostgreSQL compares them: letters and digits, lower case.
fn clean(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The number of the encoding `name` (`utf-8`, `Latin1`), or -1.
pub fn encoding_number(name: &str) -> i32 {
    let name = clean(name);
    ENCODINGS
        .iter()
        .position(|e| clean(e) == name)
        .and_then(|i| i32::try_from(i).ok())
        .unwrap_or(-1)
}

/// `pg_char_to_encoding(name)` (psql's `\dO`): PostgreSQL's number of an encoding, -1 for an
/// unknown name.
pub fn char_to_encoding_udf() -> ScalarUDF {
    create_udf(
        "pg_char_to_encoding",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let Some(array) = first(args)? else {
                return Ok(ColumnarValue::Scalar(ScalarValue::Int32(None)));
            };
            let array = cast(&array, &DataType::Utf8)?;
            let out: datafusion::arrow::array::Int32Array = array
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(encoding_number))
                .collect();
            answer(args, Arc::new(out))
        }),
    )
}

/// `pg_encoding_to_char(int)` (pgAdmin's encoding list): the encoding's name, `''` for a number
/// that names none, as in PostgreSQL; any integer type.
pub fn encoding_to_char_udf() -> ScalarUDF {
    create_udf(
        "pg_encoding_to_char",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let Some(array) = first(args)? else {
                return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
            };
            let array = cast(&array, &DataType::Int64)?;
            let out: StringArray = array
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| {
                    v.map(|n| {
                        usize::try_from(n)
                            .ok()
                            .and_then(|i| ENCODINGS.get(i))
                            .copied()
                            .unwrap_or("")
                    })
                })
                .collect();
            answer(args, Arc::new(out))
        }),
    )
}

/// `getdatabaseencoding()`: the database's encoding, UTF8 (psql's `\dO`, `\l`).
pub fn database_encoding_udf() -> ScalarUDF {
    create_udf(
        "getdatabaseencoding",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                "UTF8".into(),
            ))))
        }),
    )
}

/// The functions of the module docs.
pub fn catalog_function_udfs() -> Vec<ScalarUDF> {
    let oid = DataType::Int64;
    let text = DataType::Utf8;
    vec![
        size_pretty_udf(),
        typeof_udf(),
        char_to_encoding_udf(),
        encoding_to_char_udf(),
        database_encoding_udf(),
        null_udf(
            "pg_get_ruledef",
            vec![vec![oid.clone()], vec![oid.clone(), DataType::Boolean]],
            text.clone(),
        ),
        null_udf("pg_table_size", vec![vec![oid.clone()]], DataType::Int64),
        null_udf("pg_indexes_size", vec![vec![oid.clone()]], DataType::Int64),
        // No table of Timberline's has an index; the bundled catalog's own get NULL too.
        null_udf(
            "pg_get_indexdef",
            vec![
                vec![oid.clone()],
                vec![oid.clone(), DataType::Int64, DataType::Boolean],
            ],
            DataType::Utf8,
        ),
        null_udf(
            "pg_database_size",
            vec![vec![oid.clone()], vec![text.clone()]],
            DataType::Int64,
        ),
        // psql's \df+, \db, \dO and \dx+: no function here has an SQL body, no tablespace a
        // location, no object a description of its kind.
        null_udf(
            "pg_get_function_sqlbody",
            vec![vec![oid.clone()]],
            text.clone(),
        ),
        null_udf(
            "pg_tablespace_location",
            vec![vec![oid.clone()]],
            text.clone(),
        ),
        null_udf(
            "pg_tablespace_size",
            vec![vec![oid.clone()], vec![text.clone()]],
            DataType::Int64,
        ),
        null_udf(
            "pg_describe_object",
            vec![vec![oid.clone(), oid.clone(), DataType::Int64]],
            text.clone(),
        ),
        null_udf(
            "col_description",
            vec![
                vec![oid.clone(), DataType::Int32],
                vec![oid.clone(), DataType::Int64],
            ],
            text.clone(),
        ),
        null_udf(
            "shobj_description",
            vec![vec![oid.clone(), text.clone()]],
            text,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_numbered_as_in_postgresql() {
        assert_eq!(encoding_number("utf-8"), 6);
        assert_eq!(encoding_number("UTF8"), 6);
        assert_eq!(encoding_number("Latin1"), 8);
        assert_eq!(encoding_number("SHIFT_JIS_2004"), 41);
        assert_eq!(encoding_number("nope"), -1);
    }

    #[test]
    fn sizes_print_as_postgresql_prints_them() {
        for (bytes, want) in [
            (0, "0 bytes"),
            (10_239, "10239 bytes"),
            (10_240, "10 kB"),
            (1_234_567, "1206 kB"),
            (123_456_789, "118 MB"),
            (20_000_000_000, "19 GB"),
            (-10_240, "-10 kB"),
            (-10_241, "-10 kB"),
            (i64::MIN, "-8192 PB"),
        ] {
            assert_eq!(size_pretty(bytes), want, "{bytes}");
        }
    }
}
