//! The `alerts` table (one row per rule and label set: state, last value, last fired) and the
//! `alert_events` table (the history), each showing the session's tenant's rules only.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::logical_expr::TableType;

use super::state::{Labels, Phase};
use super::{now_ms, Alerts};
use crate::query::session_table::SessionRows;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static RULES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("labels", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("threshold", DataType::Utf8, false),
        Field::new("since", ts(), true),
        Field::new("last_fired", ts(), true),
        Field::new("last_notified", ts(), true),
        Field::new("last_eval", ts(), true),
        Field::new("muted", DataType::Boolean, false),
        Field::new("silenced_by", DataType::Utf8, true),
        Field::new("last_error", DataType::Utf8, true),
        Field::new("every_secs", DataType::Float64, false),
        Field::new("for_secs", DataType::Float64, false),
        Field::new("cooldown_secs", DataType::Float64, false),
        Field::new("sql", DataType::Utf8, false),
    ]))
});

static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("ts", ts(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("labels", DataType::Utf8, false),
        Field::new("event", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("detail", DataType::Utf8, false),
    ]))
});

/// The `alerts` table.
#[derive(Debug)]
pub struct AlertsTable(pub Arc<Alerts>);

/// The `alert_events` table.
#[derive(Debug)]
pub struct AlertEventsTable(pub Arc<Alerts>);

fn labels_text(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_default()
}

#[async_trait]
impl SessionRows for AlertsTable {
    fn schema(&self) -> SchemaRef {
        RULES.clone()
    }

    /// A table, as `segments` and `rollups` are (PostgreSQL would keep them as tables).
    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let tenant = crate::query::session_tenant(state)?;
        let now = now_ms();
        let mut name = StringBuilder::new();
        let mut labels = StringBuilder::new();
        let mut phase = StringBuilder::new();
        let mut value = Float64Builder::new();
        let mut threshold = StringBuilder::new();
        let stamp = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let (mut since, mut fired, mut notified, mut eval) = (stamp(), stamp(), stamp(), stamp());
        let mut muted = BooleanBuilder::new();
        let (mut silenced, mut error, mut sql) = (
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        let (mut every, mut hold, mut cooldown) = (
            Float64Builder::new(),
            Float64Builder::new(),
            Float64Builder::new(),
        );
        let micros = |ms: Option<i64>| ms.map(|t| t.saturating_mul(1000));
        for e in self.0.all().into_iter().filter(|e| tenant.sees(&e.tenant)) {
            // A rule whose answer has no label set yet still has its row.
            let none = super::state::Series::new(Labels::new());
            let series: Vec<_> = if e.series.is_empty() {
                vec![&none]
            } else {
                e.series.values().collect()
            };
            for s in series {
                name.append_value(&e.rule.name);
                labels.append_value(labels_text(&s.labels));
                phase.append_value(match (&e.last_error, s.phase) {
                    (Some(_), Phase::Ok) => "error",
                    (_, p) => p.as_str(),
                });
                value.append_option(s.value);
                threshold.append_value(e.rule.threshold());
                since.append_option(micros(s.since));
                fired.append_option(micros(s.last_fired));
                notified.append_option(micros(s.last_notified));
                eval.append_option(micros(e.last_eval_ms));
                muted.append_value(e.muted(now));
                silenced.append_option(e.silenced_by.as_deref());
                error.append_option(e.last_error.as_deref());
                every.append_value(e.rule.every.as_secs_f64());
                hold.append_value(e.rule.hold.as_secs_f64());
                cooldown.append_value(e.rule.cooldown.as_secs_f64());
                sql.append_value(&e.rule.sql);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(name.finish()),
            Arc::new(labels.finish()),
            Arc::new(phase.finish()),
            Arc::new(value.finish()),
            Arc::new(threshold.finish()),
            Arc::new(since.finish()),
            Arc::new(fired.finish()),
            Arc::new(notified.finish()),
            Arc::new(eval.finish()),
            Arc::new(muted.finish()),
            Arc::new(silenced.finish()),
            Arc::new(error.finish()),
            Arc::new(every.finish()),
            Arc::new(hold.finish()),
            Arc::new(cooldown.finish()),
            Arc::new(sql.finish()),
        ];
        Ok(RecordBatch::try_new(RULES.clone(), columns)?)
    }
}

#[async_trait]
impl SessionRows for AlertEventsTable {
    fn schema(&self) -> SchemaRef {
        EVENTS.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let tenant = crate::query::session_tenant(state)?;
        let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let (mut name, mut labels, mut event, mut detail) = (
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        let mut value = Float64Builder::new();
        for e in self
            .0
            .events(None)
            .into_iter()
            .filter(|e| tenant.sees(&e.tenant))
        {
            at.append_value(e.at_ms.saturating_mul(1000));
            name.append_value(&e.rule);
            labels.append_value(labels_text(&e.labels));
            event.append_value(&e.event);
            value.append_option(e.value);
            detail.append_value(&e.detail);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(at.finish()),
            Arc::new(name.finish()),
            Arc::new(labels.finish()),
            Arc::new(event.finish()),
            Arc::new(value.finish()),
            Arc::new(detail.finish()),
        ];
        Ok(RecordBatch::try_new(EVENTS.clone(), columns)?)
    }
}
