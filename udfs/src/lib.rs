//! Timberline's SQL functions for DataFusion.
//!
//! # Brief overview
//! [`register`] installs every function into a `SessionContext`:
//! - [`pg_compat`]: `version()` and `current_setting(name)`, answered as PostgreSQL 16.6 would, so
//!   that drivers and Grafana's version auto-detection work.
//! - [`nearest`]: `nearest(ts, T [, k])` and `ts_distance(ts, T)`.
//! - [`text`]: `match(text, 'query')` and `text @@ 'query'`, full-text search with the tokenizer the index shares.

pub mod nearest;
pub mod pg_compat;
pub mod text;

use datafusion::prelude::SessionContext;

/// Registers every Timberline function (replacing DataFusion's `version()`).
pub fn register(ctx: &mut SessionContext) -> datafusion::error::Result<()> {
    datafusion::execution::FunctionRegistry::register_expr_planner(
        ctx,
        std::sync::Arc::new(text::AtAtPlanner),
    )?;
    ctx.register_udf(pg_compat::version_udf());
    ctx.register_udf(pg_compat::current_setting_udf());
    ctx.register_udf(nearest::nearest_udf());
    ctx.register_udf(nearest::ts_distance_udf());
    ctx.register_udf(text::match_udf());
    Ok(())
}
