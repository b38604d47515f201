//! [`QueryError`]: a failure of ours raised while planning or running a query, carrying the
//! SQLSTATE a PostgreSQL client should see. It travels inside `DataFusionError::External`; the
//! pg front end finds it by downcasting, never by reading message text.

/// The SQLSTATEs Timberline's own failures carry, by PostgreSQL's names: the one place their
/// literals live.
pub mod sqlstate {
    /// Misuse the planner catches (a `nearest()` out of place, a wrong argument kind).
    pub const SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION: &str = "42000";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const NULL_VALUE_NOT_ALLOWED: &str = "22004";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const INVALID_ESCAPE_SEQUENCE: &str = "22025";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const UNDEFINED_PARAMETER: &str = "42P02";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const QUERY_CANCELED: &str = "57014";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    pub const IO_ERROR: &str = "58030";
    pub const UNDEFINED_FILE: &str = "58P01";
    pub const DATA_CORRUPTED: &str = "XX001";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const DATETIME_VALUE_OUT_OF_RANGE: &str = "22008";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INVALID_REGULAR_EXPRESSION: &str = "2201B";
}

/// `Err(QueryError)` as a DataFusion error: `query_err!(sqlstate::X, "format {}", args)`.
#[macro_export]
macro_rules! query_err {
    ($code:expr, $($arg:tt)*) => {
        Err($crate::QueryError::new($code, format!($($arg)*)).into_df())
    };
}

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
