//! The log record, the Arrow schema of the `logs` table, and line formats.

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

/// A shipper's timestamp in µs if it is one a row can carry (1970 to ~9900; the same bound as
/// `/v1/ingest`), else `None` (the receive time is used and the row flagged).
pub fn plausible_ts(us: Micros) -> Option<Micros> {
    (0..250_000_000_000_000_000).contains(&us).then_some(us)
}

/// Current wall-clock time in microseconds.
pub fn now_micros() -> Micros {
    chrono::Utc::now().timestamp_micros()
}
