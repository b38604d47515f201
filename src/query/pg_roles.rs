//! `pg_catalog.pg_roles`: Timberline's users as login roles — the bootstrap administrator as
//! the superuser with PostgreSQL's bootstrap oid 10 (the owner of every relation in this
//! catalog), the others by name, each user seeing only itself and the administrator unless it
//! is the administrator — and PostgreSQL 15's predefined roles; and `pg_get_userbyid(oid)`,
//! which names the same roles. psql's `\du` and `\dt`, DBeaver's role cache and pgjdbc's
//! privilege lists read them.

use std::sync::Arc;

use async_trait::async_trait;

use crate::query::session_table::SessionRows;
use datafusion::arrow::array::{
    new_null_array, ArrayRef, AsArray, BooleanArray, Int32Array, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Int64Type, Schema, SchemaRef, TimeUnit,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::audit_log::{is_administrator, session_user};
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

    /// The roles `viewer` sees: every user for the administrator; otherwise itself and the
    /// administrator (who owns every relation), never another tenant's users.
    fn batch(&self, viewer: Option<&str>) -> Result<RecordBatch> {
        let mut roles: Vec<Role> = user_names(&self.store.data_dir)
            .into_iter()
            .filter(|n| viewer.is_none_or(|v| n == v || n == BOOTSTRAP_USER))
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
impl SessionRows for PgRoles {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let user = session_user(state);
        let viewer = (!is_administrator(state)).then_some(user.as_str());
        self.batch(viewer)
    }
}

/// The name of the role with `oid`, as `pg_roles` lists it, or PostgreSQL's
/// `unknown (OID=n)`.
fn role_name(store: &Store, oid: i64) -> String {
    if oid == 10 {
        return BOOTSTRAP_USER.to_string();
    }
    if let Some((name, _)) = PREDEFINED.iter().find(|(_, o)| i64::from(*o) == oid) {
        return name.to_string();
    }
    user_names(&store.data_dir)
        .into_iter()
        .find(|n| i64::from(user_oid(n)) == oid)
        .unwrap_or_else(|| format!("unknown (OID={oid})"))
}

/// `pg_get_userbyid(oid)`, typed `name`.
pub fn get_userbyid_udf(store: Arc<Store>) -> ScalarUDF {
    ScalarUDF::new_from_impl(GetUserById {
        store,
        signature: Signature::uniform(
            1,
            vec![DataType::Int32, DataType::Int64],
            Volatility::Stable,
        ),
    })
}

#[derive(Debug)]
struct GetUserById {
    store: Arc<Store>,
    signature: Signature,
}

impl PartialEq for GetUserById {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.store, &other.store)
    }
}

impl Eq for GetUserById {}

impl std::hash::Hash for GetUserById {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "pg_get_userbyid".hash(state);
    }
}

impl ScalarUDFImpl for GetUserById {
    fn name(&self) -> &str {
        "pg_get_userbyid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(typed(
            Field::new("pg_get_userbyid", DataType::Utf8, true),
            "name",
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(arg) = args.args.first() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let oids = cast(&arg.to_array(args.number_rows)?, &DataType::Int64)?;
        let oids = oids.as_primitive::<Int64Type>();
        let names: StringArray = oids
            .iter()
            .map(|o| o.map(|o| role_name(&self.store, o)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(names)))
    }
}
