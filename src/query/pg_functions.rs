//! The bundled catalog functions answered as PostgreSQL 15 answers them: `current_database()`,
//! `current_user`, `pg_get_userbyid()` and their kin are typed `name`, `json_build_object()`
//! `json`, and `pg_get_expr(NULL, …)` is NULL (the
//! bundled one answers `''`). Each wraps the registered function.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
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

/// `inner`, its result marked as PostgreSQL's `pg_type` (`crate::query::pg_types::PG_TYPE_KEY`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Typed {
    inner: Arc<ScalarUDF>,
    pg_type: &'static str,
}

impl ScalarUDFImpl for Typed {
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
        Ok(Arc::new(typed(field.as_ref().clone(), self.pg_type)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(args)
    }
}

/// Re-registers the wrapped functions of `ctx`.
pub fn register(ctx: &SessionContext) {
    let functions = ctx.state().scalar_functions().clone();
    for (name, pg_type) in TYPED_FUNCTIONS {
        if let Some(f) = functions.get(*name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Typed {
                inner: f.clone(),
                pg_type,
            }));
        }
    }
    if let Some(f) = functions.get("pg_get_expr") {
        ctx.register_udf(ScalarUDF::new_from_impl(NullOnNull { inner: f.clone() }));
    }
}

/// `inner`, NULL wherever its first argument is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NullOnNull {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for NullOnNull {
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
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let first = args.args.first().map(|a| a.to_array(rows)).transpose()?;
        let out = self.inner.invoke_with_args(args)?.to_array(rows)?;
        let Some(first) = first else {
            return Ok(ColumnarValue::Array(out));
        };
        if first.null_count() == 0 {
            return Ok(ColumnarValue::Array(out));
        }
        let nulls: ArrayRef = datafusion::arrow::array::new_null_array(out.data_type(), out.len());
        let answer = zip(&is_null(&first)?, &nulls, &out)?;
        Ok(ColumnarValue::Array(answer))
    }
}
