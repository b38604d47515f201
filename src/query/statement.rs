//! One read-only SQL statement run for a tenant by the server's own clients (alert rules, the
//! MCP tools): the contract they use, which the PostgreSQL front end fulfils, so their SQL means
//! what it means in `psql` and runs on the query threads within the tenant's limits.

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

/// The rows a statement answered, cut at the caller's cap.
#[derive(Debug, Clone)]
pub struct Rows {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// More rows (or bytes) than the cap: the statement was stopped there.
    pub truncated: bool,
}

impl Rows {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// Why a statement was refused or failed: its SQLSTATE and PostgreSQL-worded message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} (SQLSTATE {sqlstate})")]
pub struct SqlError {
    pub sqlstate: String,
    pub message: String,
}

/// Runs one read-only statement (a `SELECT`, `WITH`, `VALUES`, `EXPLAIN`) as `user` of `tenant`.
#[async_trait]
pub trait SqlRunner: Send + Sync + 'static {
    /// At most `max_rows` rows and `max_bytes` bytes of Arrow memory are kept; past either the
    /// statement is stopped and the answer says `truncated`.
    async fn run(
        &self,
        user: &str,
        tenant: &str,
        sql: &str,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<Rows, SqlError>;
}
