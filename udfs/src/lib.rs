//! Timberline's SQL functions for DataFusion.
//!
//! # Brief overview
//! [`register`] installs every function into a `SessionContext`:
//! - [`pg_compat`]: `version()`, `current_setting(name)` (seeing the session's `SET`s) and the
//!   other functions drivers call, answered as PostgreSQL 16.6 would.
//! - [`nearest`]: `nearest(ts, T [, k])` and `ts_distance(ts, T)`.
//! - [`own_functions`]: those functions as the catalog describes them (psql's `\df`).
//! - [`text`]: `match(text, 'query')` and `text @@ 'query'`, full-text search with the tokenizer the index shares.
//! - [`limits`]: `repeat`, `lpad`, … sized before they run, refused past a value or the query's budget.
//! - [`QueryError`]: our failures with their SQLSTATE.

pub mod aggregate_limits;
mod error;
#[cfg(debug_assertions)]
mod failpoint;
pub mod limits;
pub mod nearest;
pub mod own_functions;
pub mod pg_compat;
pub mod regex_limits;
pub mod text;

pub use error::{sqlstate, QueryError};

use datafusion::prelude::SessionContext;

/// Registers every Timberline function (replacing DataFusion's `version()`).
pub fn register(ctx: &mut SessionContext) -> datafusion::error::Result<()> {
    datafusion::execution::FunctionRegistry::register_expr_planner(
        ctx,
        std::sync::Arc::new(text::AtAtPlanner),
    )?;
    datafusion::execution::FunctionRegistry::register_expr_planner(
        ctx,
        std::sync::Arc::new(pg_compat::PgOperatorPlanner),
    )?;
    ctx.register_udf(pg_compat::version_udf());
    ctx.register_udf(pg_compat::to_char_udf());
    ctx.register_udf(pg_compat::at_time_zone_udf());
    ctx.register_udf(pg_compat::expand_array_udf());
    ctx.register_udf(pg_compat::like_escape_udf());
    for udf in pg_compat::catalog_function_udfs()
        .into_iter()
        .chain(pg_compat::text_function_udfs())
    {
        ctx.register_udf(udf);
    }
    register_aliases(ctx)?;
    ctx.register_udf(pg_compat::current_setting_udf());
    ctx.register_udf(pg_compat::set_config_udf());
    ctx.register_udf(pg_compat::pg_get_serial_sequence_udf());
    ctx.register_udf(pg_compat::advisory_unlock_all_udf());
    ctx.register_udf(pg_compat::json_build_object_udf());
    for udf in pg_compat::is_visible_udfs()
        .into_iter()
        .chain(own_functions::own_function_udfs())
    {
        ctx.register_udf(udf);
    }
    ctx.register_udf(pg_compat::session_user_udf());
    ctx.register_udf(nearest::nearest_udf());
    ctx.register_udf(nearest::ts_distance_udf());
    ctx.register_udf(text::match_udf());
    for udf in regex_limits::one_pattern_at_a_time_udfs() {
        ctx.register_udf(udf);
    }
    for udf in limits::guarded_udfs() {
        ctx.register_udf(udf);
    }
    let state = ctx.state();
    for udf in limits::guarded_from_inputs(&|name| state.scalar_functions().get(name).cloned()) {
        ctx.register_udf(udf);
    }
    #[cfg(debug_assertions)]
    ctx.register_udf(failpoint::panic_udf());
    Ok(())
}

/// PostgreSQL's names for functions DataFusion has under another: `sign` (`signum`),
/// `variance` (`var_samp`), `jsonb_array_length` (`json_length`).
fn register_aliases(ctx: &mut SessionContext) -> datafusion::error::Result<()> {
    let state = ctx.state();
    let scalar = [("signum", "sign"), ("json_length", "jsonb_array_length")];
    for (name, alias) in scalar {
        if let Some(udf) = state.scalar_functions().get(name) {
            ctx.register_udf(udf.as_ref().clone().with_aliases([alias]));
        }
    }
    if let Some(udaf) = state.aggregate_functions().get("var_samp") {
        ctx.register_udaf(udaf.as_ref().clone().with_aliases(["variance"]));
    }
    Ok(())
}
