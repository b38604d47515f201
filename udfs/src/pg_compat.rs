//! `version()` and `current_setting(name)` with the values a PostgreSQL 16.6 server reports.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};

/// The PostgreSQL version we speak.
pub const PG_VERSION: &str = "16.6";
/// `server_version_num` of [`PG_VERSION`].
pub const PG_VERSION_NUM: &str = "160006";

/// The text of `SELECT version()`.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {PG_VERSION} (Timberline {}) on {}-linux, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// Settings `current_setting` answers, with PostgreSQL's names and values.
pub fn setting(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "server_version" => PG_VERSION,
        "server_version_num" => PG_VERSION_NUM,
        "server_encoding" | "client_encoding" => "UTF8",
        "search_path" => "\"$user\", public",
        "timezone" => "UTC",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "integer_datetimes" | "standard_conforming_strings" => "on",
        "transaction_isolation" | "default_transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "on",
        "max_identifier_length" => "63",
        "max_index_keys" => "32",
        "lc_collate" | "lc_ctype" => "C.UTF-8",
        "is_superuser" => "off",
        "application_name" => "",
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => "0",
        "extra_float_digits" => "1",
        "bytea_output" => "hex",
        _ => return None,
    })
}

/// `version()`.
pub fn version_udf() -> ScalarUDF {
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                version_string(),
            ))))
        }),
    )
}

/// `current_setting(name)`; an unknown name is an error, as in PostgreSQL.
pub fn current_setting_udf() -> ScalarUDF {
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let lookup = |name: &str| -> Result<String> {
                match setting(name) {
                    Some(v) => Ok(v.to_string()),
                    None => exec_err!("unrecognized configuration parameter \"{name}\""),
                }
            };
            match args.first() {
                Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name)))) => Ok(
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some(lookup(name)?))),
                ),
                Some(ColumnarValue::Scalar(_)) => {
                    Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
                }
                Some(ColumnarValue::Array(arr)) => {
                    let names = arr.as_string::<i32>();
                    let mut out = StringBuilder::with_capacity(names.len(), names.len() * 8);
                    for i in 0..names.len() {
                        if names.is_null(i) {
                            out.append_null();
                        } else {
                            out.append_value(lookup(names.value(i))?);
                        }
                    }
                    Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
                }
                None => exec_err!("current_setting takes one argument"),
            }
        }),
    )
}
