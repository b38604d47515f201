//! The log record, the Arrow schema of the `logs` table, and line formats.

pub mod epoch;
pub mod fields;
pub mod format;
pub mod level;
mod record;
mod schema;

pub use record::LogRecord;
pub use schema::{logs_schema, records_to_batch, ts_column, ts_values, LOGS_COLUMNS};

/// Microseconds since the Unix epoch, the unit of `ts` and `ingest_ts`.
pub type Micros = i64;

/// The tenant every row belongs to until authentication binds users to tenants.
pub const DEFAULT_TENANT: &str = "default";

/// Longest message body stored; longer ones are truncated and flagged `truncated`.
pub const MAX_MSG_BYTES: usize = 64 * 1024;

/// Current wall-clock time in microseconds.
pub fn now_micros() -> Micros {
    chrono::Utc::now().timestamp_micros()
}
