//! The `rollups` system table: each view's definition, bucket, state and backfill progress
//! (segments with its partials, of all segments; `partial` when some could not be computed),
//! and the bytes its partials take.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;

use crate::query::session_table::SessionRows;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::logical_expr::TableType;

use crate::store::Store;
use timberline_udfs::pg_compat::Tenant;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("definition", DataType::Utf8, false),
        Field::new("bucket_seconds", DataType::Int64, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("segments_done", DataType::Int64, false),
        Field::new("segments_total", DataType::Int64, false),
        Field::new("segments_failed", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
    ]))
});

/// The `rollups` table.
#[derive(Debug)]
pub struct RollupsTable {
    store: Arc<Store>,
}

impl RollupsTable {
    pub fn new(store: Arc<Store>) -> RollupsTable {
        RollupsTable { store }
    }

    /// The views, with the coverage of the segments `tenant` sees.
    fn batch(&self, tenant: &Tenant) -> Result<RecordBatch> {
        let rollups = &self.store.rollups;
        let mut plans = rollups.plans();
        plans.sort_by_key(|p| p.id);
        let (mut name, mut sql, mut bucket, mut state) = (vec![], vec![], vec![], vec![]);
        let (mut done, mut total, mut failed, mut bytes) = (vec![], vec![], vec![], vec![]);
        let mut segments = (*self.store.catalog.segments()).clone();
        segments.retain(|s| tenant.sees(&s.tenant));
        for p in &plans {
            // Coverage as it is now: segments with this view's partials, of all segments.
            let covered = segments
                .iter()
                .filter(|s| rollups.has(p.id, &s.location.key))
                .count();
            let progress = rollups.progress(p.id);
            name.push(p.name.clone());
            sql.push(p.sql.clone());
            bucket.push(p.bucket.width / 1_000_000);
            state.push(match () {
                _ if covered == segments.len() => "ready",
                _ if progress.failed > 0 => "partial",
                _ => "backfilling",
            });
            done.push(covered as i64);
            total.push(segments.len() as i64);
            failed.push(progress.failed as i64);
            bytes.push(
                rollups.bytes_of(p.id, segments.iter().map(|s| s.location.key.as_str())) as i64,
            );
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(name)),
            Arc::new(StringArray::from(sql)),
            Arc::new(Int64Array::from(bucket)),
            Arc::new(StringArray::from(state)),
            Arc::new(Int64Array::from(done)),
            Arc::new(Int64Array::from(total)),
            Arc::new(Int64Array::from(failed)),
            Arc::new(Int64Array::from(bytes)),
        ];
        Ok(RecordBatch::try_new(SCHEMA.clone(), columns)?)
    }
}

#[async_trait]
impl SessionRows for RollupsTable {
    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        self.batch(&crate::query::session_tenant(state)?)
    }
}
