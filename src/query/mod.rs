//! SQL over the store: the DataFusion session, the `logs` and `segments` tables, `nearest`,
//! and PostgreSQL's meaning for what DataFusion reads otherwise.

mod audit_log;
pub mod budget;
mod index_select;
mod information_schema;
mod interrupt;
pub mod memory;
pub mod nearest;
mod own_functions;
mod pg_aggregate;
mod pg_functions;
mod pg_roles;
mod pg_semantics;
mod pg_settings;
pub mod pg_types;
pub mod pinned;
mod prune;
pub mod result_cache;
pub mod rollup;
pub mod runtime;
mod scan;
mod scope;
pub mod seed_api;
mod segments_table;
pub mod session_table;
mod source;
pub mod statement;
mod table;
mod time_order;

use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use timberline_udfs::limits::QueryBudget;

pub use prune::SegmentStats;
pub use scan::LogScanExec;
pub use scope::session_tenant;
pub use segments_table::SegmentsTable;
pub use table::LogTable;

use crate::store::Store;

/// Tables the server registers beside `logs` that the catalogs do not list (queryable by name,
/// as PostgreSQL's statistics views are): the alert rules' `alerts` and `alert_events`, so the
/// table lists BI tools read stay those of the log store.
pub const UNLISTED: &[&str] = &["alerts", "alert_events"];

/// The database (catalog) name clients connect to.
pub const DATABASE: &str = "timberline";
/// The schema our tables live in.
pub const SCHEMA: &str = "public";

/// Room for the footers and page indexes of the segments queries touch: a time lookup must find
/// them decoded in memory, not re-read and re-parsed (a segment's is ~100 KiB).
const METADATA_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// How much memory queries may use.
#[derive(Debug, Clone)]
pub struct QueryMemory {
    /// One query's budget.
    pub per_query: u64,
    /// All running queries together.
    pub total: u64,
    /// Where sorts and aggregations spill, and how many bytes of spill all queries may hold.
    pub spill_dir: std::path::PathBuf,
    pub spill_bytes: u64,
    /// Bytes of aggregate states the result cache keeps (0: none).
    pub result_cache: u64,
}

/// Builds the session every query runs in: `logs`, `segments`, pg_catalog, information_schema
/// and Timberline's SQL functions, with a memory pool of `memory.total` bytes that each query
/// draws from within its own budget ([`memory::scoped`]).
pub fn new_context(
    store: Arc<Store>,
    memory: QueryMemory,
) -> Result<SessionContext, DataFusionError> {
    let budget = QueryBudget {
        bytes: memory.per_query,
    };
    let config = SessionConfig::new()
        .with_option_extension(budget)
        .with_default_catalog_and_schema(DATABASE, SCHEMA)
        .with_create_default_catalog_and_schema(true)
        // Ours (PostgreSQL's spellings), registered below, replaces DataFusion's.
        .with_information_schema(false)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_bool("datafusion.execution.parquet.reorder_filters", true)
        // `timestamptz` is a zoned instant (not DataFusion's zoneless default).
        .set_str("datafusion.execution.time_zone", pg_semantics::ENGINE_ZONE);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(memory::shared_pool(
            usize::try_from(memory.total).unwrap_or(usize::MAX),
        ))
        .with_metadata_cache_limit(METADATA_CACHE_BYTES)
        .with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![memory.spill_dir.clone()]))
                .with_max_temp_directory_size(memory.spill_bytes),
        )
        .build_arc()?;
    // The rewrite compiles its built-in view (the count tables) with a plain session.
    let plain = SessionStateBuilder::new().with_default_features().build();
    let cache = result_cache::ResultCache::new(memory.result_cache);
    let rollups = rollup::RollupRewrite::new(store.clone(), &plain, cache)?;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_optimizer_rule(Arc::new(rollups))
        // Last, so no later rewrite can put back an unguarded function.
        .with_optimizer_rule(Arc::new(memory::GuardFunctions))
        .with_physical_optimizer_rule(Arc::new(time_order::TopKReadOrder))
        .build();
    source::register_segments_store(state.runtime_env(), &store.files);
    let mut ctx = SessionContext::new_with_state(state);
    ctx.add_analyzer_rule(Arc::new(pg_semantics::PgSemantics::new()));
    ctx.register_table("logs", Arc::new(LogTable::new(store.clone())))?;
    ctx.register_table(
        "segments",
        Arc::new(session_table::SessionTable(SegmentsTable::new(
            store.clone(),
        ))),
    )?;
    ctx.register_table(
        "audit_log",
        Arc::new(audit_log::audit_log(LogTable::new(store.clone()))?),
    )?;
    ctx.register_table(
        "rollups",
        Arc::new(session_table::SessionTable(
            rollup::system::RollupsTable::new(store.clone()),
        )),
    )?;
    ctx.register_udtf(
        "pg_show_all_settings",
        Arc::new(pg_settings::ShowAllSettings),
    );
    ctx.register_udtf(
        "log_context",
        Arc::new(nearest::LogContextFn::new(store.clone())),
    );
    datafusion_pg_catalog::setup_pg_catalog(&ctx, DATABASE, EmptyContextProvider)
        .map_err(|e| *e)?;
    if let Some(catalog) = ctx.catalog(DATABASE) {
        if let Some(pg) = catalog.schema("pg_catalog") {
            catalog.register_schema(
                "pg_catalog",
                Arc::new(rollup::pg_class::WithMatviews::new(pg, store.clone())),
            )?;
        }
        catalog.register_schema(
            "information_schema",
            Arc::new(information_schema::InformationSchema::new(
                ctx.state().catalog_list().clone(),
            )),
        )?;
    }
    datafusion_functions_json::register_all(&mut ctx)?;
    timberline_udfs::register(&mut ctx)?;
    pg_functions::register(&ctx);
    ctx.register_udf(pg_roles::get_userbyid_udf(store.clone()));
    Ok(ctx)
}
