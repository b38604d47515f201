//! `pg_catalog.pg_roles`: Timberline's users as login roles — the bootstrap administrator as
//! the superuser with PostgreSQL's bootstrap oid 10 (the owner of every relation in this
//! catalog), the others by name — and PostgreSQL 15's predefined roles. psql's `\du`,
//! DBeaver's role cache and pgjdbc's privilege lists read it.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{new_null_array, ArrayRef, BooleanArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::pg_types::typed;
use crate::auth::{user_names, BOOTSTRAP_USER};
use crate::store::Store;

/// PostgreSQL 15's predefined roles and their oids.
const PREDEFINED: &[(&str, i32)] = &[
    ("pg_checkpoint", 4544),
    ("pg_database_owner", 6171),
    ("pg_execute_server_program", 4571),
    ("pg_monitor", 3373),
    ("pg_read_all_data", 6181),
    ("pg_read_all_settings", 3374),
    ("pg_read_all_stats", 3375),
    ("pg_read_server_files", 4569),
    ("pg_signal_backend", 4200),
    ("pg_stat_scan_tables", 3377),
    ("pg_write_all_data", 6182),
    ("pg_write_server_files", 4570),
];

/// The `pg_roles` view.
#[derive(Debug)]
pub struct PgRoles {
    store: Arc<Store>,
    schema: SchemaRef,
}

impl PgRoles {
    pub fn new(store: Arc<Store>) -> PgRoles {
        let flag = |n: &str| Field::new(n, DataType::Boolean, true);
        let schema = Schema::new(vec![
            typed(Field::new("rolname", DataType::Utf8, true), "name"),
            flag("rolsuper"),
            flag("rolinherit"),
            flag("rolcreaterole"),
            flag("rolcreatedb"),
            flag("rolcanlogin"),
            flag("rolreplication"),
            Field::new("rolconnlimit", DataType::Int32, true),
            Field::new("rolpassword", DataType::Utf8, true),
            Field::new(
                "rolvaliduntil",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            flag("rolbypassrls"),
            Field::new(
                "rolconfig",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            typed(Field::new("oid", DataType::Int32, true), "oid"),
        ]);
        PgRoles {
            store,
            schema: Arc::new(schema),
        }
    }

    fn batch(&self) -> Result<RecordBatch> {
        let mut roles: Vec<Role> = user_names(&self.store.data_dir)
            .into_iter()
            .map(|name| {
                let superuser = name == BOOTSTRAP_USER;
                let oid = if superuser { 10 } else { user_oid(&name) };
                Role {
                    name,
                    oid,
                    superuser,
                    login: true,
                }
            })
            .collect();
        roles.extend(PREDEFINED.iter().map(|(n, oid)| Role {
            name: n.to_string(),
            oid: *oid,
            superuser: false,
            login: false,
        }));
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        let n = roles.len();
        let flags = |f: &dyn Fn(&Role) -> bool| -> ArrayRef {
            Arc::new(roles.iter().map(|r| Some(f(r))).collect::<BooleanArray>())
        };
        let names: StringArray = roles.iter().map(|r| Some(r.name.as_str())).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(names),
            flags(&|r| r.superuser),
            flags(&|_| true),
            flags(&|r| r.superuser),
            flags(&|r| r.superuser),
            flags(&|r| r.login),
            flags(&|r| r.superuser),
            Arc::new(Int32Array::from(vec![-1; n])),
            Arc::new(StringArray::from(vec![Some("********"); n])),
            new_null_array(self.schema.field(9).data_type(), n),
            flags(&|r| r.superuser),
            new_null_array(self.schema.field(11).data_type(), n),
            Arc::new(roles.iter().map(|r| Some(r.oid)).collect::<Int32Array>()),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// One role: a user, or one of PostgreSQL's predefined roles.
struct Role {
    name: String,
    oid: i32,
    superuser: bool,
    login: bool,
}

/// A user's oid: stable for its name, in the range PostgreSQL gives objects users create.
fn user_oid(name: &str) -> i32 {
    let hash = name.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    });
    16_384 + (hash % 1_000_000_000) as i32
}

#[async_trait]
impl TableProvider for PgRoles {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = MemTable::try_new(self.schema.clone(), vec![vec![self.batch()?]])?;
        table.scan(state, projection, filters, limit).await
    }
}
