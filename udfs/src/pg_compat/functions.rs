//! The PostgreSQL functions drivers and tools call: `version()`, `current_setting(name [, missing_ok])`
//! (which sees the session's `SET`s), `pg_get_serial_sequence` and `pg_advisory_unlock_all()`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use super::settings::{default_setting, PgSession, PG_VERSION};
use crate::{sqlstate, QueryError};

/// The text of `SELECT version()`.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {PG_VERSION} (Timberline {}) on {}-linux, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
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

/// A function of any arguments that answers a NULL text, as PostgreSQL does where we have
/// nothing to report (`pg_get_serial_sequence`: no column is serial) or nothing to do
/// (`pg_advisory_unlock_all()`: a read-only database holds no locks).
fn null_text_udf(name: &str, args: Vec<DataType>) -> ScalarUDF {
    null_udf(name, vec![args], DataType::Utf8)
}

/// A function answering NULL of `returns` for any arguments of the given shapes.
pub(super) fn null_udf(name: &str, shapes: Vec<Vec<DataType>>, returns: DataType) -> ScalarUDF {
    let signature = match <[Vec<DataType>; 1]>::try_from(shapes) {
        Ok([one]) => Signature::exact(one, Volatility::Stable),
        Err(many) => Signature::one_of(
            many.into_iter().map(TypeSignature::Exact).collect(),
            Volatility::Stable,
        ),
    };
    let null = ScalarValue::try_from(&returns).unwrap_or(ScalarValue::Null);
    ScalarUDF::new_from_impl(Null {
        name: name.to_string(),
        signature,
        returns,
        null,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Null {
    name: String,
    signature: Signature,
    returns: DataType,
    null: ScalarValue,
}

impl ScalarUDFImpl for Null {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.null.clone()))
    }
}

/// `session_user` / `current_user` / `user`: the session's authenticated user. (`current_user`
/// is renamed to `session_user` by the parser; bare `user` arrives as a call of `user`.)
pub fn session_user_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(SessionUser {
        signature: Signature::exact(vec![], Volatility::Stable),
    })
    .with_aliases(["user"])
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionUser {
    signature: Signature,
}

impl ScalarUDFImpl for SessionUser {
    fn name(&self) -> &str {
        "session_user"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let user = args
            .config_options
            .extensions
            .get::<PgSession>()
            .map(|s| s.user.clone());
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(user)))
    }
}

/// `pg_collation_is_visible(oid)`, `pg_type_is_visible(oid)` and the rest of the family: every
/// such object is visible on the search path (one schema of tables; functions, types,
/// operators and text-search objects all built into `pg_catalog`).
pub fn is_visible_udfs() -> Vec<ScalarUDF> {
    [
        "pg_collation_is_visible",
        "pg_conversion_is_visible",
        "pg_function_is_visible",
        "pg_opclass_is_visible",
        "pg_operator_is_visible",
        "pg_opfamily_is_visible",
        "pg_statistics_obj_is_visible",
        "pg_ts_config_is_visible",
        "pg_ts_dict_is_visible",
        "pg_ts_parser_is_visible",
        "pg_ts_template_is_visible",
        "pg_type_is_visible",
    ]
    .into_iter()
    .map(|name| {
        create_udf(
            name,
            vec![DataType::Int64],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(|_args: &[ColumnarValue]| {
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
            }),
        )
    })
    .collect()
}

/// `pg_get_serial_sequence(table, column)`: always NULL, no column is backed by a sequence.
pub fn pg_get_serial_sequence_udf() -> ScalarUDF {
    null_text_udf(
        "pg_get_serial_sequence",
        vec![DataType::Utf8, DataType::Utf8],
    )
}

/// `pg_advisory_unlock_all()`: nothing to release.
pub fn advisory_unlock_all_udf() -> ScalarUDF {
    null_text_udf("pg_advisory_unlock_all", vec![])
}

/// `current_setting(name [, missing_ok])`: the session's value; an unknown name is an error
/// unless `missing_ok`, as in PostgreSQL.
pub fn current_setting_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(CurrentSetting {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
            ],
            Volatility::Stable,
        ),
    })
}

/// `set_config(name, value, is_local)` cannot change a session from inside a query, so it is
/// refused with the hint to use `SET`.
pub fn set_config_udf() -> ScalarUDF {
    create_udf(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(|args: &[ColumnarValue]| match args {
            // Setting a value to what it already is changes nothing (drivers do this).
            [ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))), ColumnarValue::Scalar(ScalarValue::Utf8(Some(value))), _]
                if default_setting(name) == Some(value.as_str()) =>
            {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                    value.clone(),
                ))))
            }
            _ => Err(QueryError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "set_config() is not supported inside a query; use SET name = value",
            )
            .into_df()),
        }),
    )
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSetting {
    signature: Signature,
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let session = args.config_options.extensions.get::<PgSession>();
        let missing_ok = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(b))) => b.unwrap_or(false),
            Some(ColumnarValue::Array(a)) => {
                let b = a.as_any().downcast_ref::<BooleanArray>();
                b.is_some_and(|b| !b.is_empty() && !b.is_null(0) && b.value(0))
            }
            _ => false,
        };
        let lookup = |name: &str| -> Result<Option<String>> {
            let value = match session {
                Some(s) => s.get(name),
                None => default_setting(name).map(str::to_string),
            };
            match value {
                Some(v) => Ok(Some(v)),
                None if missing_ok => Ok(None),
                None => Err(QueryError::new(
                    sqlstate::UNDEFINED_OBJECT,
                    format!("unrecognized configuration parameter \"{name}\""),
                )
                .into_df()),
            }
        };
        match args.args.first() {
            Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name)))) => {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(lookup(name)?)))
            }
            Some(ColumnarValue::Scalar(_)) => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            Some(ColumnarValue::Array(arr)) => {
                let names = arr.as_string::<i32>();
                let mut out = StringBuilder::with_capacity(names.len(), names.len() * 8);
                for i in 0..names.len() {
                    match names.is_null(i) {
                        true => out.append_null(),
                        false => out.append_option(lookup(names.value(i))?),
                    }
                }
                Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
            }
            None => crate::query_err!(
                sqlstate::UNDEFINED_FUNCTION,
                "current_setting takes one or two arguments"
            ),
        }
    }
}
