//! The `segments` system table: the catalog, one row per segment.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;

use crate::query::session_table::SessionRows;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::logical_expr::TableType;
use timberline_udfs::pg_compat::Tenant;

use crate::storage::layout::public_segment_id;
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
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(
                segs.iter()
                    .map(|s| public_segment_id(&s.location.key, s.id))
                    .collect::<Vec<_>>(),
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
            Arc::new(StringArray::from_iter_values(
                segs.iter().map(|s| s.location.key.as_str()),
            )),
            ts(|s| s.created_at),
        ];
        Ok(RecordBatch::try_new(SCHEMA.clone(), columns)?)
    }
}

#[async_trait]
impl SessionRows for SegmentsTable {
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
