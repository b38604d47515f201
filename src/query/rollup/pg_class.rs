//! `pg_catalog` with rollup views shown as materialized views: their `pg_class.relkind` is
//! `'m'`, which psql's `\dm` and pgjdbc's `getTables` (type `MATERIALIZED VIEW`) read; and
//! with its tables in PostgreSQL 15's shape ([`crate::query::pg_types`]).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, BooleanArray, Int32Array, StringArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::{collect, ExecutionPlan};

use super::COUNT_VIEW;
use crate::query::audit_log::{is_administrator, AUDIT_TABLE};
use crate::query::pg_types;
use crate::store::Store;

/// `pg_catalog`, its `pg_class` wrapped; see the module docs.
#[derive(Debug)]
pub struct WithMatviews {
    inner: Arc<dyn SchemaProvider>,
    store: Arc<Store>,
}

impl WithMatviews {
    pub fn new(inner: Arc<dyn SchemaProvider>, store: Arc<Store>) -> WithMatviews {
        WithMatviews { inner, store }
    }
}

#[async_trait]
impl SchemaProvider for WithMatviews {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match name {
            "pg_settings" => {
                return Ok(Some(Arc::new(crate::query::pg_settings::PgSettings::new())))
            }
            "pg_roles" => {
                return Ok(Some(Arc::new(crate::query::pg_roles::PgRoles::new(
                    self.store.clone(),
                ))))
            }
            _ => {}
        }
        let table = self.inner.table(name).await?;
        Ok(match table {
            Some(t) if name == "pg_class" || pg_types::reshapes(name) => Some(Arc::new(PgClass {
                schema: pg_types::schema(name, &t.schema()),
                inner: t,
                name: name.to_string(),
                store: self.store.clone(),
            })),
            t => t,
        })
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// A catalog table, reshaped; `pg_class` also relabelled.
#[derive(Debug)]
struct PgClass {
    inner: Arc<dyn TableProvider>,
    name: String,
    schema: SchemaRef,
    store: Arc<Store>,
}

impl PgClass {
    /// `batch` with views marked `m`, and without `audit_log` unless `admin`.
    fn relabel(&self, batch: RecordBatch, admin: bool) -> Result<RecordBatch> {
        let schema = batch.schema();
        let (Ok(name_at), Ok(kind_at)) = (schema.index_of("relname"), schema.index_of("relkind"))
        else {
            return Ok(batch);
        };
        let mut views: Vec<String> = self
            .store
            .rollups
            .plans()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        views.push(COUNT_VIEW.to_string());
        let names = batch.column(name_at).as_string::<i32>();
        let kinds = batch.column(kind_at).as_string::<i32>();
        let relabelled: StringArray = (0..batch.num_rows())
            .map(|i| {
                if kinds.is_null(i) {
                    return None;
                }
                let view = kinds.value(i) == "v" && views.iter().any(|v| v == names.value(i));
                Some(if view { "m" } else { kinds.value(i) })
            })
            .collect();
        let mut columns = batch.columns().to_vec();
        columns[kind_at] = Arc::new(relabelled);
        // Timberline's relations belong to the administrator (oid 10, as `pg_roles` lists it).
        if let Ok(owner_at) = schema.index_of("relowner") {
            if let Some(owners) = columns[owner_at].as_primitive_opt::<Int32Type>() {
                let owned: Int32Array = owners
                    .iter()
                    .map(|o| o.map(|o| if o == 0 { 10 } else { o }))
                    .collect();
                columns[owner_at] = Arc::new(owned);
            }
        }
        let batch = RecordBatch::try_new(schema, columns)?;
        if admin {
            return Ok(batch);
        }
        let names = batch.column(name_at).as_string::<i32>();
        let listed: BooleanArray = names.iter().map(|n| Some(n != Some(AUDIT_TABLE))).collect();
        Ok(filter_record_batch(&batch, &listed)?)
    }
}

#[async_trait]
impl TableProvider for PgClass {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let all = self.inner.scan(state, None, &[], None).await?;
        let batches = collect(all, state.task_ctx()).await?;
        let batches = batches
            .into_iter()
            .map(|b| {
                let b = pg_types::reshape(&self.name, &b, &self.schema)?;
                if self.name == "pg_class" {
                    self.relabel(b, is_administrator(state))
                } else {
                    Ok(b)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let table = MemTable::try_new(self.schema(), vec![batches])?;
        table.scan(state, projection, filters, limit).await
    }
}
