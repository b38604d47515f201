//! The `segments` system table: the catalog, one row per segment. A tenant's session sees its
//! own segments under opaque ids (the catalog's ids are one sequence across tenants, so they
//! would tell how much every other tenant writes).

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use timberline_udfs::pg_compat::Tenant;

use crate::store::Store;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("segment_id", DataType::Int64, false),
        Field::new("tenant", DataType::Utf8, false),
        Field::new("tier", DataType::Utf8, false),
        Field::new("min_ts", ts.clone(), false),
        Field::new("max_ts", ts.clone(), false),
        Field::new("rows", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("created_at", ts, false),
    ]))
});

/// The `segments` table.
#[derive(Debug)]
pub struct SegmentsTable {
    store: Arc<Store>,
}

impl SegmentsTable {
    pub fn new(store: Arc<Store>) -> SegmentsTable {
        SegmentsTable { store }
    }

    fn batch(&self, tenant: &Tenant) -> Result<RecordBatch> {
        let mut segs = (*self.store.catalog.segments()).clone();
        segs.retain(|s| tenant.sees(&s.tenant));
        let ts = |f: fn(&crate::catalog::SegmentMeta) -> i64| -> ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from(segs.iter().map(|s| f(s)).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            )
        };
        let opaque = matches!(tenant, Tenant::One(_));
        let id = |s: &crate::catalog::SegmentMeta| -> i64 {
            if opaque {
                opaque_id(s.id)
            } else {
                s.id as i64
            }
        };
        let path = |s: &crate::catalog::SegmentMeta| -> String {
            let key = s.location.key.as_str();
            if opaque {
                key.replace(&format!("seg-{:012}", s.id), &format!("seg-{:016x}", id(s)))
            } else {
                key.to_string()
            }
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(
                segs.iter().map(|s| id(s)).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from_iter_values(
                segs.iter().map(|s| s.tenant.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                segs.iter().map(|s| s.location.tier.as_str()),
            )),
            ts(|s| s.min_ts),
            ts(|s| s.max_ts),
            Arc::new(Int64Array::from(
                segs.iter().map(|s| s.rows as i64).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                segs.iter().map(|s| s.bytes as i64).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from_iter_values(segs.iter().map(|s| path(s)))),
            ts(|s| s.created_at),
        ];
        Ok(RecordBatch::try_new(SCHEMA.clone(), columns)?)
    }
}

/// A segment id as a tenant sees it: the same for the same segment while the server runs,
/// unrelated to the ids of the segments made before and after it.
fn opaque_id(id: u64) -> i64 {
    use std::hash::BuildHasher;
    static KEY: LazyLock<std::collections::hash_map::RandomState> =
        LazyLock::new(std::collections::hash_map::RandomState::new);
    (KEY.hash_one(id) >> 1) as i64
}

#[async_trait]
impl TableProvider for SegmentsTable {
    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let tenant = crate::query::session_tenant(state)?;
        let table = MemTable::try_new(SCHEMA.clone(), vec![vec![self.batch(&tenant)?]])?;
        table.scan(state, projection, filters, limit).await
    }
}
