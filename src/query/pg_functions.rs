//! The bundled catalog functions answered as PostgreSQL 15 answers them: `current_database()`,
//! `current_user` and their kin are typed `name`, `json_build_object()` `json`, and
//! `pg_get_expr(NULL, …)` is NULL (the bundled one answers `''`). Each wraps the registered
//! function.

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array};
use datafusion::arrow::compute::is_null;
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

use super::pg_types::typed;

/// The functions whose value PostgreSQL types other than text, and that type.
const TYPED_FUNCTIONS: &[(&str, &str)] = &[
    ("pg_encoding_to_char", "name"),
    ("current_database", "name"),
    ("current_schema", "name"),
    ("current_user", "name"),
    ("session_user", "name"),
    ("current_catalog", "name"),
    ("user", "name"),
    ("json_build_object", "json"),
];

/// The functions that answer NULL for a NULL first argument, as PostgreSQL's do.
const STRICT_FUNCTIONS: &[&str] = &["pg_get_expr"];

/// Re-registers the wrapped functions of `ctx`.
pub fn register(ctx: &SessionContext) {
    let functions = ctx.state().scalar_functions().clone();
    for (name, pg_type) in TYPED_FUNCTIONS {
        if let Some(f) = functions.get(*name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Wrapped {
                inner: f.clone(),
                pg_type: Some(pg_type),
                strict: false,
            }));
        }
    }
    for name in STRICT_FUNCTIONS {
        if let Some(f) = functions.get(*name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Wrapped {
                inner: f.clone(),
                pg_type: None,
                strict: true,
            }));
        }
    }
}

/// `inner`, its result marked as PostgreSQL's `pg_type`
/// (`crate::query::pg_types::PG_TYPE_KEY`), and NULL wherever its first argument is NULL if
/// `strict`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Wrapped {
    inner: Arc<ScalarUDF>,
    pg_type: Option<&'static str>,
    strict: bool,
}

impl ScalarUDFImpl for Wrapped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let field = self.inner.return_field_from_args(args)?;
        Ok(match self.pg_type {
            Some(t) => Arc::new(typed(field.as_ref().clone(), t)),
            None => field,
        })
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !self.strict {
            return self.inner.invoke_with_args(args);
        }
        let rows = args.number_rows;
        let first = args.args.first().map(|a| a.to_array(rows)).transpose()?;
        let out = self.inner.invoke_with_args(args)?.to_array(rows)?;
        let Some(first) = first.filter(|f| f.null_count() > 0) else {
            return Ok(ColumnarValue::Array(out));
        };
        let nulls = new_null_array(out.data_type(), out.len());
        Ok(ColumnarValue::Array(zip(&is_null(&first)?, &nulls, &out)?))
    }
}
