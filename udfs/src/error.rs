//! [`QueryError`]: a failure of ours raised while planning or running a query, carrying the
//! SQLSTATE a PostgreSQL client should see. It travels inside `DataFusionError::External`; the
//! pg front end finds it by downcasting, never by reading message text.

/// A query failure with its SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// The five-character SQLSTATE (e.g. `53200`).
    pub sqlstate: &'static str,
    pub message: String,
}

impl QueryError {
    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> QueryError {
        QueryError {
            sqlstate,
            message: message.into(),
        }
    }

    /// As a DataFusion error (`External`), to return from a UDF, rule or plan.
    pub fn into_df(self) -> datafusion::error::DataFusionError {
        datafusion::error::DataFusionError::External(Box::new(self))
    }

    /// The `QueryError` inside a DataFusion error, however deeply it was wrapped.
    pub fn find(e: &datafusion::error::DataFusionError) -> Option<&QueryError> {
        match e.find_root() {
            datafusion::error::DataFusionError::External(inner) => inner.downcast_ref(),
            _ => None,
        }
    }
}
