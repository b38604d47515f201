//! `log_context(ts, host, service [, before [, after]])`: the lines around one line, as a table.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{col, lit, Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use timberline_udfs::nearest::MAX_K;
use timberline_udfs::sqlstate;

use super::exec::NearestExec;
use super::spec::{constant, invalid_argument, target_micros, NearestSpec, Selection};
use crate::model::logs_schema;
use crate::store::Store;

/// Lines before and after when the call does not say.
pub const DEFAULT_CONTEXT: usize = 50;

/// The `log_context` table function.
#[derive(Debug)]
pub struct LogContextFn {
    store: Arc<Store>,
}

impl LogContextFn {
    pub fn new(store: Arc<Store>) -> LogContextFn {
        LogContextFn { store }
    }
}

impl TableFunctionImpl for LogContextFn {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let state = args.session();
        let args = args.exprs();
        if !(3..=5).contains(&args.len()) {
            return timberline_udfs::query_err!(
                sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
                "log_context(ts, host, service [, before [, after]]) takes 3 to 5 arguments, got {}",
                args.len()
            );
        }
        let target = target_micros(&constant(&args[0], state, "ts")?)?;
        let text = |i: usize, what: &str| -> Result<Option<String>> {
            match constant(&args[i], state, what)? {
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                    Ok(v)
                }
                ScalarValue::Null => Ok(None),
                v => Err(invalid_argument(format!(
                    "log_context(): {what} must be text, got {v}"
                ))),
            }
        };
        let count = |i: usize, what: &str| -> Result<usize> {
            let Some(e) = args.get(i) else {
                return Ok(DEFAULT_CONTEXT);
            };
            match constant(e, state, what)?.cast_to(&datafusion::arrow::datatypes::DataType::Int64)
            {
                Ok(ScalarValue::Int64(Some(n))) if (0..=MAX_K).contains(&n) => Ok(n as usize),
                _ => Err(invalid_argument(format!(
                    "log_context(): {what} must be an integer between 0 and {MAX_K}, got {e}"
                ))),
            }
        };
        let Some(host) = text(1, "host")? else {
            return Err(invalid_argument("log_context(): host must not be NULL"));
        };
        let service = text(2, "service")?;
        let mut filters = vec![col("host").eq(lit(host))];
        if let Some(service) = service {
            filters.push(col("service").eq(lit(service)));
        }
        let df_schema = DFSchema::try_from(logs_schema())?;
        let predicate = conjunction(filters.clone())
            .map(|e| state.create_physical_expr(e, &df_schema))
            .transpose()?;
        let spec = NearestSpec {
            target,
            selection: Selection::Context {
                before: count(3, "before")?,
                after: count(4, "after")?,
            },
            filters,
            predicate,
        };
        Ok(Arc::new(ContextTable {
            store: self.store.clone(),
            spec,
        }))
    }
}

/// The rows one `log_context` call selects.
#[derive(Debug)]
struct ContextTable {
    store: Arc<Store>,
    spec: NearestSpec,
}

#[async_trait]
impl TableProvider for ContextTable {
    fn schema(&self) -> SchemaRef {
        logs_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(NearestExec::new(
            self.store.clone(),
            self.spec.clone(),
            projection.cloned(),
            crate::query::session_tenant(state)?,
        )?))
    }
}
