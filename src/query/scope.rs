//! The tenant scope a query runs in, read from its pg session; none bound means refused.

use datafusion::error::DataFusionError;
use timberline_udfs::pg_compat::Tenant;
use timberline_udfs::{sqlstate, QueryError};

/// The tenant scope of the session a query runs in. A query planned without a session bound
/// to a tenant is refused: no scope never means "every tenant".
pub fn session_tenant(state: &dyn datafusion::catalog::Session) -> Result<Tenant, DataFusionError> {
    state
        .config_options()
        .extensions
        .get::<timberline_udfs::pg_compat::PgSession>()
        .map(|s| s.tenant.clone())
        .ok_or_else(|| {
            QueryError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "no tenant is bound to this session; the query is refused",
            )
            .into_df()
        })
}
