//! One `TableProvider` for the catalog and system tables whose rows are computed for the
//! session that reads them (`pg_roles`, `pg_settings`, `segments`, `rollups`,
//! `information_schema`'s tables): each says only what its rows are ([`SessionRows`]).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// A table's rows as the session `state` sees them.
#[async_trait]
pub trait SessionRows: Debug + Send + Sync + 'static {
    fn schema(&self) -> SchemaRef;

    /// A system view, unless the table says otherwise.
    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch>;
}

/// The table of a [`SessionRows`]: its rows computed at each scan, in memory.
#[derive(Debug)]
pub struct SessionTable<T>(pub T);

#[async_trait]
impl<T: SessionRows> TableProvider for SessionTable<T> {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        self.0.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.0.rows(state).await?;
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}
