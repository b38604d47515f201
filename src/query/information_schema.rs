//! `information_schema` the way PostgreSQL answers it: `schemata`, `tables`, `columns` (with
//! PostgreSQL type spellings such as `timestamp with time zone` and `udt_name` such as
//! `timestamptz`), `views`, `table_constraints`, `key_column_usage` and `table_privileges`,
//! built from the live catalog on every query. Grafana's query builder, SQLAlchemy, Metabase
//! and BI tools read column types and keys from here.

use std::sync::Arc;

use super::audit_log::{is_administrator, session_user, AUDIT_TABLE};
use arrow_pg::datatypes::into_pg_type;
use async_trait::async_trait;

use crate::query::session_table::{SessionRows, SessionTable};
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use pgwire::api::Type;

use crate::auth::BOOTSTRAP_USER;

/// The schema provider.
#[derive(Debug)]
pub struct InformationSchema {
    catalogs: Arc<dyn CatalogProviderList>,
}

impl InformationSchema {
    pub fn new(catalogs: Arc<dyn CatalogProviderList>) -> InformationSchema {
        InformationSchema { catalogs }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Schemata,
    Tables,
    Columns,
    Views,
    /// A `CHECK` constraint per NOT NULL column (PostgreSQL 15 lists them so); no keys.
    TableConstraints,
    /// No rows: no table here has a primary, unique or foreign key.
    KeyColumnUsage,
    /// `SELECT` on each table of `public` for the session's user, the one privilege there is.
    TablePrivileges,
}

const KINDS: [(&str, Kind); 7] = [
    ("columns", Kind::Columns),
    ("key_column_usage", Kind::KeyColumnUsage),
    ("schemata", Kind::Schemata),
    ("table_constraints", Kind::TableConstraints),
    ("table_privileges", Kind::TablePrivileges),
    ("tables", Kind::Tables),
    ("views", Kind::Views),
];

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        KINDS.iter().map(|(n, _)| n.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(KINDS.iter().find(|(n, _)| *n == name).map(|(_, kind)| {
            Arc::new(SessionTable(InfoTable {
                kind: *kind,
                catalogs: self.catalogs.clone(),
            })) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        KINDS.iter().any(|(n, _)| *n == name)
    }
}

#[derive(Debug)]
struct InfoTable {
    kind: Kind,
    catalogs: Arc<dyn CatalogProviderList>,
}

/// Text columns typed as PostgreSQL's domains type them on the wire: identifiers
/// (`sql_identifier`) are `name`, every other text (`character_data`, `yes_or_no`) `varchar`.
fn text_fields(names: &[&str]) -> Vec<Field> {
    names
        .iter()
        .map(|n| {
            let identifier = n.ends_with("_catalog")
                || n.ends_with("_schema")
                || n.ends_with("_name")
                || matches!(*n, "schema_owner" | "grantor" | "grantee");
            let pg_type = if identifier { "name" } else { "varchar" };
            super::pg_types::typed(Field::new(*n, DataType::Utf8, true), pg_type)
        })
        .collect()
}

fn schema_of(kind: Kind) -> SchemaRef {
    let fields = match kind {
        Kind::Schemata => text_fields(&[
            "catalog_name",
            "schema_name",
            "schema_owner",
            "default_character_set_catalog",
            "default_character_set_schema",
            "default_character_set_name",
            "sql_path",
        ]),
        Kind::Tables => text_fields(&[
            "table_catalog",
            "table_schema",
            "table_name",
            "table_type",
            "self_referencing_column_name",
            "reference_generation",
            "user_defined_type_catalog",
            "user_defined_type_schema",
            "user_defined_type_name",
            "is_insertable_into",
            "is_typed",
            "commit_action",
        ]),
        Kind::Views => text_fields(&[
            "table_catalog",
            "table_schema",
            "table_name",
            "view_definition",
            "check_option",
            "is_updatable",
            "is_insertable_into",
        ]),
        Kind::Columns => {
            let mut f =
                text_fields(&["table_catalog", "table_schema", "table_name", "column_name"]);
            f.push(Field::new("ordinal_position", DataType::Int32, false));
            f.extend(text_fields(&["column_default", "is_nullable", "data_type"]));
            for n in [
                "character_maximum_length",
                "character_octet_length",
                "numeric_precision",
                "numeric_precision_radix",
                "numeric_scale",
                "datetime_precision",
            ] {
                f.push(Field::new(n, DataType::Int32, true));
            }
            f.extend(text_fields(&[
                "interval_type",
                "udt_catalog",
                "udt_schema",
                "udt_name",
                "is_identity",
                "is_generated",
                "is_updatable",
            ]));
            f
        }
        Kind::TableConstraints => text_fields(&[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "constraint_type",
            "is_deferrable",
            "initially_deferred",
            "enforced",
            "nulls_distinct",
        ]),
        Kind::KeyColumnUsage => {
            let mut f = text_fields(&[
                "constraint_catalog",
                "constraint_schema",
                "constraint_name",
                "table_catalog",
                "table_schema",
                "table_name",
                "column_name",
            ]);
            f.push(Field::new("ordinal_position", DataType::Int32, true));
            f.push(Field::new(
                "position_in_unique_constraint",
                DataType::Int32,
                true,
            ));
            f
        }
        Kind::TablePrivileges => text_fields(&[
            "grantor",
            "grantee",
            "table_catalog",
            "table_schema",
            "table_name",
            "privilege_type",
            "is_grantable",
            "with_hierarchy",
        ]),
    };
    Arc::new(Schema::new(fields))
}

/// PostgreSQL's `data_type` spelling, numeric precision/radix/scale and datetime precision.
fn pg_column_type(pg: &Type) -> (String, [Option<i32>; 4]) {
    let none = [None; 4];
    let (name, extra) = match pg.oid() {
        16 => ("boolean", none),
        21 => ("smallint", [Some(16), Some(2), Some(0), None]),
        23 => ("integer", [Some(32), Some(2), Some(0), None]),
        20 => ("bigint", [Some(64), Some(2), Some(0), None]),
        700 => ("real", [Some(24), Some(2), None, None]),
        701 => ("double precision", [Some(53), Some(2), None, None]),
        1700 => ("numeric", [None, Some(10), None, None]),
        25 => ("text", none),
        1043 => ("character varying", none),
        1042 => ("character", none),
        17 => ("bytea", none),
        1082 => ("date", [None, None, None, Some(0)]),
        1083 => ("time without time zone", [None, None, None, Some(6)]),
        1114 => ("timestamp without time zone", [None, None, None, Some(6)]),
        1184 => ("timestamp with time zone", [None, None, None, Some(6)]),
        1186 => ("interval", [None, None, None, Some(6)]),
        114 => ("json", none),
        3802 => ("jsonb", none),
        2950 => ("uuid", none),
        _ if pg.name().starts_with('_') => ("ARRAY", none),
        _ => ("USER-DEFINED", none),
    };
    (name.to_string(), extra)
}

impl InfoTable {
    /// The rows `user` sees; `audit_log` only for the administrator (`admin`).
    async fn batch(&self, user: &str, admin: bool) -> Result<RecordBatch> {
        let schema = schema_of(self.kind);
        let mut rows: Vec<Vec<Value>> = Vec::new();
        for cat_name in self.catalogs.catalog_names() {
            let Some(catalog) = self.catalogs.catalog(&cat_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                if self.kind == Kind::Schemata {
                    rows.push(vec![
                        Value::T(Some(cat_name.clone())),
                        Value::T(Some(schema_name.clone())),
                        Value::T(Some("timberline".into())),
                        Value::T(None),
                        Value::T(None),
                        Value::T(None),
                        Value::T(None),
                    ]);
                    continue;
                }
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                let mut names = schema.table_names();
                names.sort();
                for table_name in names {
                    if (!admin && table_name == AUDIT_TABLE)
                        || super::UNLISTED.contains(&table_name.as_str())
                    {
                        continue;
                    }
                    let Some(table) = schema.table(&table_name).await? else {
                        continue;
                    };
                    let is_view = table.table_type() == TableType::View;
                    let t = |s: &str| Value::T(Some(s.to_string()));
                    match self.kind {
                        Kind::Tables => rows.push(vec![
                            t(&cat_name),
                            t(&schema_name),
                            t(&table_name),
                            t(if is_view { "VIEW" } else { "BASE TABLE" }),
                            Value::T(None),
                            Value::T(None),
                            Value::T(None),
                            Value::T(None),
                            Value::T(None),
                            t("NO"),
                            t("NO"),
                            Value::T(None),
                        ]),
                        Kind::Views if is_view => rows.push(vec![
                            t(&cat_name),
                            t(&schema_name),
                            t(&table_name),
                            Value::T(None),
                            t("NONE"),
                            t("NO"),
                            t("NO"),
                        ]),
                        Kind::Columns => {
                            for (i, f) in table.schema().fields().iter().enumerate() {
                                let pg = into_pg_type(f.data_type()).unwrap_or(Type::TEXT);
                                let (data_type, [prec, radix, scale, dt_prec]) =
                                    pg_column_type(&pg);
                                rows.push(vec![
                                    t(&cat_name),
                                    t(&schema_name),
                                    t(&table_name),
                                    t(f.name()),
                                    Value::I(Some(i as i32 + 1)),
                                    Value::T(None),
                                    t(if f.is_nullable() { "YES" } else { "NO" }),
                                    Value::T(Some(data_type)),
                                    Value::I(None),
                                    Value::I(None),
                                    Value::I(prec),
                                    Value::I(radix),
                                    Value::I(scale),
                                    Value::I(dt_prec),
                                    Value::T(None),
                                    t(&cat_name),
                                    t("pg_catalog"),
                                    t(pg.name()),
                                    t("NO"),
                                    t("NEVER"),
                                    t("NO"),
                                ]);
                            }
                        }
                        Kind::TableConstraints if schema_name == "public" => {
                            for (i, f) in table.schema().fields().iter().enumerate() {
                                if f.is_nullable() {
                                    continue;
                                }
                                rows.push(vec![
                                    t(&cat_name),
                                    t(&schema_name),
                                    Value::T(Some(format!("{table_name}_{}_not_null", i + 1))),
                                    t(&cat_name),
                                    t(&schema_name),
                                    t(&table_name),
                                    t("CHECK"),
                                    t("NO"),
                                    t("NO"),
                                    t("YES"),
                                    Value::T(None),
                                ]);
                            }
                        }
                        Kind::TablePrivileges if schema_name == "public" => rows.push(vec![
                            t(BOOTSTRAP_USER),
                            t(user),
                            t(&cat_name),
                            t(&schema_name),
                            t(&table_name),
                            t("SELECT"),
                            t("NO"),
                            t("YES"),
                        ]),
                        _ => {}
                    }
                }
            }
        }
        // Rows into columns, in schema order.
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(j, f)| -> ArrayRef {
                match f.data_type() {
                    DataType::Int32 => {
                        Arc::new(Int32Array::from_iter(rows.iter().map(|r| match r.get(j) {
                            Some(Value::I(n)) => *n,
                            _ => None,
                        })))
                    }
                    _ => Arc::new(StringArray::from_iter(rows.iter().map(
                        |r| match r.get(j) {
                            Some(Value::T(t)) => t.as_deref(),
                            _ => None,
                        },
                    ))),
                }
            })
            .collect();
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

enum Value {
    T(Option<String>),
    I(Option<i32>),
}

#[async_trait]
impl SessionRows for InfoTable {
    fn schema(&self) -> SchemaRef {
        schema_of(self.kind)
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let user = session_user(state);
        self.batch(&user, is_administrator(state)).await
    }
}
