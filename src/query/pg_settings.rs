//! `pg_catalog.pg_settings` with PostgreSQL 15's standard rows
//! (`timberline_udfs::pg_compat::standard_settings`), each showing the session's value (what
//! it `SET`, else Timberline's default, else PostgreSQL's), changed ones with source
//! `session`; also the table function `pg_show_all_settings()`. pgjdbc reads
//! `max_index_keys` from it, DBeaver and pgAdmin every row, psql's `\dconfig` the changed ones.

use std::sync::Arc;

use async_trait::async_trait;

use crate::query::session_table::{SessionRows, SessionTable};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::Result;
use timberline_udfs::pg_compat::{default_setting, standard_settings, PgSession, StandardSetting};

/// The `pg_settings` table.
#[derive(Debug)]
pub struct PgSettings {
    schema: SchemaRef,
}

impl PgSettings {
    pub fn new() -> PgSettings {
        let text = |n: &str| Field::new(n, DataType::Utf8, true);
        let mut fields: Vec<Field> = [
            "name",
            "setting",
            "unit",
            "category",
            "short_desc",
            "extra_desc",
            "context",
            "vartype",
            "source",
            "min_val",
            "max_val",
        ]
        .iter()
        .map(|n| text(n))
        .collect();
        fields.push(Field::new(
            "enumvals",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ));
        fields.extend(
            ["boot_val", "reset_val", "sourcefile"]
                .iter()
                .map(|n| text(n)),
        );
        fields.push(Field::new("sourceline", DataType::Int32, true));
        fields.push(Field::new("pending_restart", DataType::Boolean, true));
        PgSettings {
            schema: Arc::new(Schema::new(fields)),
        }
    }

    fn batch(&self, session: Option<&PgSession>) -> Result<RecordBatch> {
        let rows = standard_settings();
        let current: Vec<Option<String>> = rows
            .iter()
            .map(|s| {
                session
                    .and_then(|p| p.get(&s.name))
                    .or_else(|| s.boot_val.clone())
            })
            .collect();
        // A fresh session's value: Timberline's default, else PostgreSQL's.
        let reset: Vec<Option<String>> = rows
            .iter()
            .map(|s| default_setting(&s.name).map(str::to_string))
            .collect();
        let source: StringArray = reset
            .iter()
            .zip(&current)
            .map(|(r, v)| Some(if v == r { "default" } else { "session" }))
            .collect();
        let text = |f: &dyn Fn(&StandardSetting) -> Option<String>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        let mut enumvals = ListBuilder::new(StringBuilder::new());
        for s in rows {
            match &s.enumvals {
                Some(v) => {
                    for e in v {
                        enumvals.values().append_value(e);
                    }
                    enumvals.append(true);
                }
                None => enumvals.append(false),
            }
        }
        let columns: Vec<ArrayRef> = vec![
            text(&|s| Some(s.name.clone())),
            Arc::new(current.iter().cloned().collect::<StringArray>()),
            text(&|s| s.unit.clone()),
            text(&|s| s.category.clone()),
            text(&|s| s.short_desc.clone()),
            text(&|s| s.extra_desc.clone()),
            text(&|s| s.context.clone()),
            text(&|s| s.vartype.clone()),
            Arc::new(source),
            text(&|s| s.min_val.clone()),
            text(&|s| s.max_val.clone()),
            Arc::new(enumvals.finish()),
            text(&|s| s.boot_val.clone()),
            Arc::new(reset.iter().cloned().collect::<StringArray>()),
            text(&|_| None),
            Arc::new(Int32Array::new_null(rows.len())),
            Arc::new(BooleanArray::from(vec![false; rows.len()])),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings::new()
    }
}

#[async_trait]
impl SessionRows for PgSettings {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        self.batch(state.config_options().extensions.get::<PgSession>())
    }
}

/// `pg_show_all_settings()` (pgAdmin's connect), the function behind `pg_settings`.
#[derive(Debug)]
pub struct ShowAllSettings;

impl TableFunctionImpl for ShowAllSettings {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return timberline_udfs::query_err!(
                timberline_udfs::sqlstate::UNDEFINED_FUNCTION,
                "function pg_show_all_settings takes no arguments"
            );
        }
        Ok(Arc::new(SessionTable(PgSettings::new())))
    }
}
