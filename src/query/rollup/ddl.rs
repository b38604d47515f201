//! Creating, dropping and refreshing rollup views, and bringing the saved ones back at start:
//! each is saved in the store's registry and registered as a view of the session, so
//! `SELECT … FROM name` plans its definition over `logs`, which the rewrite answers from it.

use std::sync::Arc;

use datafusion::catalog::view::ViewTable;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement};
use timberline_udfs::pg_compat::{PgSession, Tenant};
use timberline_udfs::{sqlstate, QueryError};

use super::define::{compile, view_parts, COUNT_VIEW, COUNT_VIEW_SQL};
use super::SETTING;
use crate::store::rollups::RollupError;
use crate::store::Store;

const DUPLICATE_TABLE: &str = "42P07";

/// `state` with the rewrite off: a view's own aggregate must be seen over `logs`.
fn defining(state: &SessionState) -> SessionState {
    let mut state = state.clone();
    let options = state.config_mut().options_mut();
    let mut session = options
        .extensions
        .get::<PgSession>()
        .cloned()
        .unwrap_or_else(|| PgSession::new("timberline", Tenant::All));
    let _ = session.set(SETTING, "off");
    // A view means the same whoever defines it and after every restart: UTC calendars.
    let _ = session.set("TimeZone", "UTC");
    options.extensions.insert(session);
    state
}

fn registry_error(e: RollupError) -> DataFusionError {
    let code = match e {
        RollupError::Exists(_) => DUPLICATE_TABLE,
        RollupError::Missing(_) => sqlstate::UNDEFINED_TABLE,
        RollupError::TooMany(_) => sqlstate::PROGRAM_LIMIT_EXCEEDED,
        _ => sqlstate::IO_ERROR,
    };
    QueryError::new(code, e.to_string()).into_df()
}

/// Registers `sql` (a `SELECT`) as the view `name` of the session.
async fn register(
    ctx: &SessionContext,
    state: &SessionState,
    name: &str,
    query: &Query,
) -> Result<()> {
    let plan = state
        .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(
            Box::new(query.clone()),
        ))))
        .await?;
    ctx.register_table(
        TableReference::bare(name),
        Arc::new(ViewTable::new(plan, Some(query.to_string()))),
    )?;
    Ok(())
}

/// `CREATE MATERIALIZED VIEW name AS query`.
pub async fn create(
    ctx: &SessionContext,
    state: &SessionState,
    store: &Store,
    name: &str,
    query: &Query,
    if_not_exists: bool,
) -> Result<()> {
    let state = defining(state);
    if ctx.table_exist(TableReference::bare(name))? {
        if if_not_exists {
            return Ok(());
        }
        return Err(QueryError::new(
            DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        )
        .into_df());
    }
    let parts = view_parts(&state, query).await?;
    // The registry gives the id, under its lock; the name is a table once it is saved.
    let plan = compile(&state, 0, name.to_string(), query.to_string(), parts)?;
    store
        .rollups
        .create(plan, crate::model::now_micros())
        .map_err(registry_error)?;
    if let Err(e) = register(ctx, &state, name, query).await {
        let _ = store.rollups.drop_view(name);
        return Err(e);
    }
    Ok(())
}

/// `DROP MATERIALIZED VIEW [IF EXISTS] name`.
pub fn drop(ctx: &SessionContext, store: &Store, name: &str, if_exists: bool) -> Result<()> {
    if name == COUNT_VIEW {
        return Err(QueryError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("{COUNT_VIEW} is built in (the segments' count tables) and cannot be dropped"),
        )
        .into_df());
    }
    match store.rollups.drop_view(name) {
        Ok(()) => {
            ctx.deregister_table(TableReference::bare(name))?;
            Ok(())
        }
        Err(RollupError::Missing(_)) if if_exists => Ok(()),
        Err(e) => Err(registry_error(e)),
    }
}

/// `REFRESH MATERIALIZED VIEW name`: views are always current; this wakes the backfill (which
/// recomputes partials that were lost).
pub fn refresh(store: &Store, name: &str) -> Result<()> {
    let known = store.rollups.plans().iter().any(|p| p.name == name);
    if !known {
        return Err(registry_error(RollupError::Missing(name.to_string())));
    }
    store.rollups.wake.notify_one();
    Ok(())
}

/// At start: the built-in view over the count tables, and every saved view (one that no
/// longer compiles is logged and left out, its definition kept).
pub async fn install_saved(ctx: &SessionContext, store: &Store) -> Result<()> {
    let state = defining(&ctx.state());
    let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    let parse = |sql: &str| -> Result<Box<Query>> {
        match datafusion::sql::sqlparser::parser::Parser::parse_sql(&dialect, sql)
            .map_err(|e| DataFusionError::Plan(e.to_string()))?
            .pop()
        {
            Some(Statement::Query(q)) => Ok(q),
            _ => Err(DataFusionError::Plan(format!("not a SELECT: {sql}"))),
        }
    };
    register(ctx, &state, COUNT_VIEW, &*parse(COUNT_VIEW_SQL)?).await?;
    let defs = store
        .rollups
        .definitions()
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    for def in defs {
        let compiled = async {
            let query = parse(&def.sql)?;
            let parts = view_parts(&state, &query).await?;
            let plan = compile(&state, def.id, def.name.clone(), def.sql.clone(), parts)?;
            register(ctx, &state, &def.name, &query).await?;
            Ok::<_, DataFusionError>(plan)
        };
        match compiled.await {
            Ok(plan) => store.rollups.install(plan),
            Err(e) => {
                tracing::error!(view = %def.name, error = %e, "a saved rollup view no longer compiles; it is not answered from")
            }
        }
    }
    Ok(())
}
