//! `pg_catalog` as Timberline shows it, over the bundled catalog:
//! - rollup views are materialized views (`pg_class.relkind` `'m'`, which psql's `\dm` and
//!   pgjdbc's `getTables` type `MATERIALIZED VIEW` read; their columns nullable), listed in
//!   `pg_matviews` ([`super::pg_matviews`]);
//! - `pg_catalog`'s own relations are kinded as PostgreSQL 15 kinds them (tables, system views),
//!   its tables under PostgreSQL's fixed oids (`pg_proc` is 1255), which the bundled rows use
//!   (`pg_description.classoid`), in `pg_class` and `pg_attribute` alike;
//! - Timberline's own functions stand in `pg_proc` and `pg_description` ([`own_functions`]),
//!   and `pg_aggregate.aggfnoid` names functions by oid ([`pg_aggregate`]);
//! - the system views the bundled catalog lacks are there, empty ([`EMPTY_VIEWS`]);
//! - its tables have PostgreSQL 15's shape ([`crate::query::pg_types`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, BooleanArray, Int32Array, StringArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::{collect, ExecutionPlan};

use super::COUNT_VIEW;
use crate::query::audit_log::{is_administrator, AUDIT_TABLE};
use crate::query::session_table::SessionTable;
use crate::query::{own_functions, pg_aggregate, pg_types};
use crate::store::Store;

/// PostgreSQL 15's system views the bundled catalog lacks, empty here as on a server with
/// no user mappings, extensions to install or security labels (psql's `\deu`, pgAdmin,
/// DBeaver): their columns, each `oid`
/// (an `integer` typed `oid`), `int` or `text` (typed by PostgreSQL 15's catalog).
const EMPTY_VIEWS: &[(&str, &[(&str, DataType)])] = &[
    (
        "pg_user_mappings",
        &[
            ("umid", DataType::Int32),
            ("srvid", DataType::Int32),
            ("srvname", DataType::Utf8),
            ("umuser", DataType::Int32),
            ("usename", DataType::Utf8),
            ("umoptions", DataType::Utf8),
        ],
    ),
    (
        "pg_available_extensions",
        &[
            ("name", DataType::Utf8),
            ("default_version", DataType::Utf8),
            ("installed_version", DataType::Utf8),
            ("comment", DataType::Utf8),
        ],
    ),
    (
        "pg_seclabels",
        &[
            ("objoid", DataType::Int32),
            ("classoid", DataType::Int32),
            ("objsubid", DataType::Int32),
            ("objtype", DataType::Utf8),
            ("objnamespace", DataType::Int32),
            ("objname", DataType::Utf8),
            ("provider", DataType::Utf8),
            ("label", DataType::Utf8),
        ],
    ),
];

/// The empty system view `name` with `columns`, typed as PostgreSQL 15 types them.
fn empty_view(name: &str, columns: &[(&str, DataType)]) -> Result<Arc<dyn TableProvider>> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(c, t)| Field::new(*c, t.clone(), true))
        .collect();
    let schema = pg_types::schema(name, &Schema::new(fields));
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?))
}

/// `pg_catalog`'s namespace oid, as in PostgreSQL.
const PG_CATALOG_NAMESPACE: i32 = 11;

/// `pg_catalog`, its tables wrapped (`pg_class`, the reshaped ones, `pg_attribute`, `pg_proc`,
/// `pg_description`, `pg_aggregate`) or added; see the module docs.
#[derive(Debug)]
pub struct WithMatviews {
    inner: Arc<dyn SchemaProvider>,
    store: Arc<Store>,
}

impl WithMatviews {
    pub fn new(inner: Arc<dyn SchemaProvider>, store: Arc<Store>) -> WithMatviews {
        WithMatviews { inner, store }
    }
}

#[async_trait]
impl SchemaProvider for WithMatviews {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.extend(EMPTY_VIEWS.iter().map(|(v, _)| v.to_string()));
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match name {
            "pg_settings" => {
                return Ok(Some(Arc::new(SessionTable(
                    crate::query::pg_settings::PgSettings::new(),
                ))))
            }
            "pg_matviews" => return Ok(Some(super::pg_matviews::pg_matviews(&self.store)?)),
            "pg_roles" => {
                return Ok(Some(Arc::new(SessionTable(
                    crate::query::pg_roles::PgRoles::new(self.store.clone()),
                ))))
            }
            _ => {}
        }
        if let Some(columns) = EMPTY_VIEWS
            .iter()
            .find_map(|(view, columns)| (*view == name).then_some(columns))
        {
            return Ok(Some(empty_view(name, columns)?));
        }
        let table = self.inner.table(name).await?;
        Ok(match table {
            Some(t)
                if name == "pg_class"
                    || pg_types::reshapes(name)
                    || own_functions::adds_rows(name) =>
            {
                let lookup = match name {
                    "pg_attribute" => self.inner.table("pg_class").await?,
                    "pg_proc" => self.inner.table("pg_namespace").await?,
                    "pg_aggregate" => self.inner.table("pg_proc").await?,
                    _ => None,
                };
                let mut schema = pg_types::schema(name, &t.schema());
                if name == "pg_aggregate" {
                    schema = pg_aggregate::schema(&schema);
                }
                Some(Arc::new(PgClass {
                    schema,
                    inner: t,
                    name: name.to_string(),
                    store: self.store.clone(),
                    lookup,
                }))
            }
            t => t,
        })
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name) || EMPTY_VIEWS.iter().any(|(v, _)| *v == name)
    }
}

/// A catalog table, reshaped; `pg_class` also relabelled.
#[derive(Debug)]
struct PgClass {
    inner: Arc<dyn TableProvider>,
    name: String,
    schema: SchemaRef,
    store: Arc<Store>,
    /// The catalog table this one's rows are read against: for `pg_attribute`, `pg_class` (the
    /// views' columns); for `pg_proc`, `pg_namespace` (`public`'s oid); for `pg_aggregate`,
    /// `pg_proc` (the functions' oids).
    lookup: Option<Arc<dyn TableProvider>>,
}

impl PgClass {
    /// The rollup views' names.
    fn view_names(&self) -> Vec<String> {
        let mut views: Vec<String> = self
            .store
            .rollups
            .plans()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        views.push(COUNT_VIEW.to_string());
        views
    }

    /// `public`'s oid in `pg_namespace` (for `pg_proc`), or PostgreSQL's (2200).
    async fn public_namespace(&self, state: &dyn Session) -> Result<i32> {
        const POSTGRESQLS: i32 = 2200;
        let Some(namespaces) = self.lookup.as_ref().filter(|_| self.name == "pg_proc") else {
            return Ok(POSTGRESQLS);
        };
        let plan = namespaces.scan(state, None, &[], None).await?;
        for batch in collect(plan, state.task_ctx()).await? {
            let schema = batch.schema();
            let (Ok(oid_at), Ok(name_at)) = (schema.index_of("oid"), schema.index_of("nspname"))
            else {
                continue;
            };
            let (Some(oids), Some(names)) = (
                batch.column(oid_at).as_primitive_opt::<Int32Type>(),
                batch.column(name_at).as_string_opt::<i32>(),
            ) else {
                continue;
            };
            if let Some(i) = (0..batch.num_rows()).find(|&i| names.value(i) == "public") {
                return Ok(oids.value(i));
            }
        }
        Ok(POSTGRESQLS)
    }

    /// For `pg_attribute` (nothing for another table): the oids the bundled `pg_class` gives
    /// the rollup views, and each catalog table's oid there with PostgreSQL's fixed one.
    async fn class_oids(&self, state: &dyn Session) -> Result<(Vec<i32>, HashMap<i32, i32>)> {
        let mut view_oids = Vec::new();
        let mut catalog_oids = HashMap::new();
        let Some(classes) = self.lookup.as_ref().filter(|_| self.name == "pg_attribute") else {
            return Ok((view_oids, catalog_oids));
        };
        let views = self.view_names();
        let plan = classes.scan(state, None, &[], None).await?;
        for class in collect(plan, state.task_ctx()).await? {
            let cs = class.schema();
            let (Ok(oid_at), Ok(name_at), Ok(ns_at)) = (
                cs.index_of("oid"),
                cs.index_of("relname"),
                cs.index_of("relnamespace"),
            ) else {
                continue;
            };
            let (Some(oids), Some(names), Some(namespaces)) = (
                class.column(oid_at).as_primitive_opt::<Int32Type>(),
                class.column(name_at).as_string_opt::<i32>(),
                class.column(ns_at).as_primitive_opt::<Int32Type>(),
            ) else {
                continue;
            };
            for i in 0..class.num_rows() {
                if !oids.is_valid(i) || !namespaces.is_valid(i) || names.is_null(i) {
                    continue;
                }
                if namespaces.value(i) == PG_CATALOG_NAMESPACE {
                    if let Some(fixed) = pg_types::catalog_table_oid(names.value(i)) {
                        catalog_oids.insert(oids.value(i), fixed);
                    }
                } else if views.iter().any(|v| v == names.value(i)) {
                    view_oids.push(oids.value(i));
                }
            }
        }
        Ok((view_oids, catalog_oids))
    }

    /// `pg_attribute`'s `batch` with the columns of the relations `view_oids` nullable, as a
    /// materialized view's columns are in PostgreSQL, and the catalog tables' columns under
    /// their fixed oids (`catalog_oids`), as `pg_class` lists them, typed as PostgreSQL 15
    /// types them.
    fn attributes(
        batch: RecordBatch,
        view_oids: &[i32],
        catalog_oids: &HashMap<i32, i32>,
    ) -> Result<RecordBatch> {
        let schema = batch.schema();
        let (Ok(rel_at), Ok(notnull_at)) =
            (schema.index_of("attrelid"), schema.index_of("attnotnull"))
        else {
            return Ok(batch);
        };
        let (Some(rels), Some(notnull)) = (
            batch.column(rel_at).as_primitive_opt::<Int32Type>(),
            batch.column(notnull_at).as_boolean_opt(),
        ) else {
            return Ok(batch);
        };
        let relaxed: BooleanArray = (0..batch.num_rows())
            .map(|i| {
                let in_view = rels.is_valid(i) && view_oids.contains(&rels.value(i));
                (!notnull.is_null(i)).then(|| notnull.value(i) && !in_view)
            })
            .collect();
        let relations: Int32Array = rels
            .iter()
            .map(|r| r.map(|r| catalog_oids.get(&r).copied().unwrap_or(r)))
            .collect();
        let mut columns = batch.columns().to_vec();
        // A catalog table's column has PostgreSQL 15's type (`relname` is `name`, not `text`).
        let names = schema
            .index_of("attname")
            .ok()
            .and_then(|at| batch.column(at).as_string_opt::<i32>());
        if let (Ok(type_at), Some(names)) = (schema.index_of("atttypid"), names) {
            if let Some(types) = columns[type_at].as_primitive_opt::<Int32Type>() {
                let typed: Int32Array = (0..batch.num_rows())
                    .map(|i| {
                        let pg15 = (relations.is_valid(i) && names.is_valid(i))
                            .then(|| pg_types::catalog_table_name(relations.value(i)))
                            .flatten()
                            .and_then(|t| pg_types::pg15_type_oid(t, names.value(i)));
                        pg15.or_else(|| types.is_valid(i).then(|| types.value(i)))
                    })
                    .collect();
                columns[type_at] = Arc::new(typed);
            }
        }
        columns[notnull_at] = Arc::new(relaxed);
        columns[rel_at] = Arc::new(relations);
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// `batch` with views marked `m`, `pg_catalog`'s relations kinded as in PostgreSQL 15 and
    /// its tables under their fixed oids, and without `audit_log` unless `admin`.
    fn relabel(&self, batch: RecordBatch, admin: bool) -> Result<RecordBatch> {
        let schema = batch.schema();
        let (Ok(name_at), Ok(kind_at)) = (schema.index_of("relname"), schema.index_of("relkind"))
        else {
            return Ok(batch);
        };
        let views = self.view_names();
        let names = batch.column(name_at).as_string::<i32>();
        let kinds = batch.column(kind_at).as_string::<i32>();
        let namespaces = schema
            .index_of("relnamespace")
            .ok()
            .and_then(|at| batch.column(at).as_primitive_opt::<Int32Type>());
        let relabelled: StringArray = (0..batch.num_rows())
            .map(|i| {
                if kinds.is_null(i) {
                    return None;
                }
                let in_pg_catalog =
                    namespaces.is_some_and(|n| n.is_valid(i) && n.value(i) == PG_CATALOG_NAMESPACE);
                if in_pg_catalog {
                    return Some(pg_types::system_relkind(names.value(i)));
                }
                let view = kinds.value(i) == "v" && views.iter().any(|v| v == names.value(i));
                Some(if view { "m" } else { kinds.value(i) })
            })
            .collect();
        let mut columns = batch.columns().to_vec();
        columns[kind_at] = Arc::new(relabelled);
        // A catalog table under PostgreSQL's fixed oid, which the bundled rows refer to it by.
        if let (Ok(oid_at), Some(namespaces)) = (schema.index_of("oid"), namespaces) {
            if let Some(oids) = columns[oid_at].as_primitive_opt::<Int32Type>() {
                let fixed: Int32Array = (0..batch.num_rows())
                    .map(|i| {
                        let catalog = namespaces.is_valid(i)
                            && namespaces.value(i) == PG_CATALOG_NAMESPACE
                            && !names.is_null(i);
                        let fixed = catalog
                            .then(|| pg_types::catalog_table_oid(names.value(i)))
                            .flatten();
                        fixed.or_else(|| oids.is_valid(i).then(|| oids.value(i)))
                    })
                    .collect();
                columns[oid_at] = Arc::new(fixed);
            }
        }
        // Timberline's relations belong to the administrator (oid 10, as `pg_roles` lists it).
        if let Ok(owner_at) = schema.index_of("relowner") {
            if let Some(owners) = columns[owner_at].as_primitive_opt::<Int32Type>() {
                let owned: Int32Array = owners
                    .iter()
                    .map(|o| o.map(|o| if o == 0 { 10 } else { o }))
                    .collect();
                columns[owner_at] = Arc::new(owned);
            }
        }
        let batch = RecordBatch::try_new(schema, columns)?;
        let names = batch.column(name_at).as_string::<i32>();
        let listed: BooleanArray = names
            .iter()
            .map(|n| {
                let hidden = n.is_some_and(|n| {
                    crate::query::UNLISTED.contains(&n) || (!admin && n == AUDIT_TABLE)
                });
                Some(!hidden)
            })
            .collect();
        Ok(filter_record_batch(&batch, &listed)?)
    }
}

#[async_trait]
impl TableProvider for PgClass {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let all = self.inner.scan(state, None, &[], None).await?;
        let batches = collect(all, state.task_ctx()).await?;
        let mut reshaped = Vec::with_capacity(batches.len());
        let mut aggregates = HashMap::new();
        if let (Some(procs), "pg_aggregate") = (&self.lookup, self.name.as_str()) {
            let plan = procs.scan(state, None, &[], None).await?;
            aggregates = pg_aggregate::aggregate_oids(&collect(plan, state.task_ctx()).await?);
        }
        let named = pg_types::schema(&self.name, &self.inner.schema());
        let (view_oids, catalog_oids) = self.class_oids(state).await?;
        for b in batches {
            let b = if self.name == "pg_aggregate" {
                let b = pg_types::reshape(&self.name, &b, &named)?;
                pg_aggregate::resolve(b, &self.schema, &aggregates)?
            } else {
                pg_types::reshape(&self.name, &b, &self.schema)?
            };
            reshaped.push(match self.name.as_str() {
                "pg_class" => self.relabel(b, is_administrator(state))?,
                "pg_attribute" => Self::attributes(b, &view_oids, &catalog_oids)?,
                _ => b,
            });
        }
        let public = self.public_namespace(state).await?;
        if let Some(own) = own_functions::rows(&self.name, &self.schema, public)? {
            reshaped.push(own);
        }
        let batches = reshaped;
        let table = MemTable::try_new(self.schema(), vec![batches])?;
        table.scan(state, projection, filters, limit).await
    }
}
