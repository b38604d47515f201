//! The Arrow schema of the `logs` table and the conversion from records to a batch.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

use super::LogRecord;

/// Column names of `logs`, in schema order.
pub const LOGS_COLUMNS: [&str; 11] = [
    "ts",
    "ingest_ts",
    "tenant",
    "service",
    "host",
    "level",
    "msg",
    "trace_id",
    "attrs",
    "parse_failed",
    "truncated",
];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("ts", ts.clone(), false),
        Field::new("ingest_ts", ts, false),
        Field::new("tenant", DataType::Utf8, false),
        Field::new("service", DataType::Utf8, false),
        Field::new("host", DataType::Utf8, false),
        Field::new("level", DataType::Utf8, false),
        Field::new("msg", DataType::Utf8, false),
        Field::new("trace_id", DataType::Utf8, true),
        Field::new("attrs", DataType::Utf8, false),
        Field::new("parse_failed", DataType::Boolean, false),
        Field::new("truncated", DataType::Boolean, false),
    ]))
});

/// The schema of the `logs` table (shared, cheap to clone).
pub fn logs_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Index of `ts` in [`logs_schema`].
pub fn ts_column() -> usize {
    0
}

/// Builds one Arrow batch (schema [`logs_schema`]) from records, in `ts` order (stable), so that
/// every hot-buffer batch is a sorted run that time lookups can binary-search.
pub fn records_to_batch(records: &[LogRecord]) -> Result<RecordBatch, ArrowError> {
    let n = records.len();
    let mut order: Vec<&LogRecord> = records.iter().collect();
    if !records.windows(2).all(|w| w[0].ts <= w[1].ts) {
        order.sort_by_key(|r| r.ts);
    }
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut ingest_ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let text = |f: &dyn Fn(&LogRecord) -> usize| {
        StringBuilder::with_capacity(n, records.iter().map(f).sum())
    };
    let mut tenant = text(&|r| r.tenant.len());
    let mut service = text(&|r| r.service.len());
    let mut host = text(&|r| r.host.len());
    let mut level = text(&|r| r.level.len());
    let mut msg = text(&|r| r.msg.len());
    let mut trace_id = text(&|r| r.trace_id.as_ref().map_or(0, |t| t.len()));
    let mut attrs = text(&|r| r.attrs.len());
    let mut parse_failed = BooleanBuilder::with_capacity(n);
    let mut truncated = BooleanBuilder::with_capacity(n);
    for r in order {
        ts.append_value(r.ts);
        ingest_ts.append_value(r.ingest_ts);
        tenant.append_value(&r.tenant);
        service.append_value(&r.service);
        host.append_value(&r.host);
        level.append_value(&r.level);
        msg.append_value(&r.msg);
        trace_id.append_option(r.trace_id.as_deref());
        attrs.append_value(&r.attrs);
        parse_failed.append_value(r.parse_failed);
        truncated.append_value(r.truncated);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ts.finish()),
        Arc::new(ingest_ts.finish()),
        Arc::new(tenant.finish()),
        Arc::new(service.finish()),
        Arc::new(host.finish()),
        Arc::new(level.finish()),
        Arc::new(msg.finish()),
        Arc::new(trace_id.finish()),
        Arc::new(attrs.finish()),
        Arc::new(parse_failed.finish()),
        Arc::new(truncated.finish()),
    ];
    RecordBatch::try_new(logs_schema(), columns)
}

/// The microsecond values of a `logs` batch's `ts` column.
pub fn ts_values(batch: &RecordBatch) -> &[i64] {
    batch
        .column(0)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .map_or(&[], |a| a.values().as_ref())
}
