//! The `audit_log` table: the rows of the audit tenant (see [`crate::audit`]) as columns, for
//! the administrator only — a view over the `logs` scan of tenant `_audit`, so time filters
//! prune its segments as they do any tenant's.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{provider_as_source, ViewTable};
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{
    col, lit, Expr, LogicalPlanBuilder, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_functions_json::udfs::{json_get_float_udf, json_get_int_udf, json_get_str_udf};
use timberline_udfs::pg_compat::{PgSession, Tenant};
use timberline_udfs::{query_err, sqlstate};

use super::table::LogTable;
use crate::audit::AUDIT_TENANT;
use crate::auth::BOOTSTRAP_USER;

/// The table's name; catalogs list it to the administrator only.
pub const AUDIT_TABLE: &str = "audit_log";

/// True if `state` is the administrator's session (the one that reads the audit trail).
pub fn is_administrator(state: &dyn Session) -> bool {
    state
        .config_options()
        .extensions
        .get::<PgSession>()
        .is_some_and(|s| s.user == BOOTSTRAP_USER)
}

/// The user of `state`'s session (empty outside a pg session).
pub fn session_user(state: &dyn Session) -> String {
    state
        .config_options()
        .extensions
        .get::<PgSession>()
        .map(|s| s.user.clone())
        .unwrap_or_default()
}

/// The `logs` of the audit tenant, whoever's session asks — once it is the administrator's.
#[derive(Debug)]
struct AuditRows {
    logs: LogTable,
}

#[async_trait]
impl TableProvider for AuditRows {
    fn schema(&self) -> SchemaRef {
        self.logs.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.logs.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let session = state
            .config_options()
            .extensions
            .get::<PgSession>()
            .cloned();
        let Some(mut session) = session.filter(|s| s.user == BOOTSTRAP_USER) else {
            return query_err!(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "permission denied for table audit_log: only the administrator ({BOOTSTRAP_USER}) reads it"
            );
        };
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return query_err!(sqlstate::INTERNAL_ERROR, "audit_log needs a server session");
        };
        let mut audit = state.clone();
        session.tenant = Tenant::One(AUDIT_TENANT.to_string());
        audit.config_mut().options_mut().extensions.insert(session);
        self.logs.scan(&audit, projection, filters, limit).await
    }
}

/// The `audit_log` view: `ts` (when the statement or call arrived), `user_name`, `tenant`,
/// `client_addr`, `kind` (`sql`, `http`), `query_text`, `duration_ms`, `rows`,
/// `bytes_scanned`, `outcome` (`ok`, `error`, `cancelled`), `sqlstate` (an API call's HTTP
/// status).
pub fn audit_log(logs: LogTable) -> Result<ViewTable> {
    let rows = Arc::new(AuditRows { logs });
    let text = |name: &str| {
        json_get_str_udf()
            .call(vec![col("attrs"), lit(name)])
            .alias(name)
    };
    let int = |name: &str| {
        json_get_int_udf()
            .call(vec![col("attrs"), lit(name)])
            .alias(name)
    };
    let plan = LogicalPlanBuilder::scan("audit_rows", provider_as_source(rows), None)?
        .project(vec![
            col("ts"),
            text("user_name"),
            text("tenant"),
            text("client_addr"),
            text("kind"),
            col("msg").alias("query_text"),
            json_get_float_udf()
                .call(vec![col("attrs"), lit("duration_ms")])
                .alias("duration_ms"),
            int("rows"),
            int("bytes_scanned"),
            text("outcome"),
            text("sqlstate"),
        ])?
        .build()?;
    Ok(ViewTable::new(plan, None))
}
