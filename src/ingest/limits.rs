//! Limits every shipper request is checked against before its records are built: how many
//! records, and how many bytes they take once shared parts (OTLP resources and scopes, Loki
//! stream labels) are copied into each — so a small body cannot become a large allocation.

/// Most records one shipper request may carry.
pub const MAX_RECORDS: usize = 100_000;

/// Most bytes one request's records may take once decoded, shared parts copied into each.
pub const MAX_EXPANDED_BYTES: usize = super::decode::MAX_EXPANDED_BYTES;

/// Why a request is too big to decode (answered 413).
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LimitError {
    #[error("the request carries {records} records; at most {MAX_RECORDS} are accepted per request: send smaller batches")]
    Records { records: usize },
    #[error("the request's records would take {bytes} bytes once their shared labels are copied into each; at most {MAX_EXPANDED_BYTES}: send smaller batches")]
    Expanded { bytes: usize },
}

/// Checks a request's record count and expanded size.
pub fn check(records: usize, expanded_bytes: usize) -> Result<(), LimitError> {
    if records > MAX_RECORDS {
        return Err(LimitError::Records { records });
    }
    // Each record also costs its fixed fields in memory.
    let bytes = expanded_bytes.saturating_add(records.saturating_mul(96));
    if bytes > MAX_EXPANDED_BYTES {
        return Err(LimitError::Expanded { bytes });
    }
    Ok(())
}
