//! Limits every shipper request is checked against before its records are built: how many
//! records, and how many bytes they take once shared parts (OTLP resources and scopes, Loki
//! stream labels) are copied into each — so a small body cannot become a large allocation.
//! [`Budget`] counts both as a request is measured, refusing the moment either is exceeded.

/// Most records one shipper request may carry.
pub const MAX_RECORDS: usize = 100_000;

/// Most bytes one request's records may take once decoded, shared parts copied into each.
pub const MAX_EXPANDED_BYTES: usize = 128 << 20;

/// Bytes each record costs in memory for its fixed fields.
const RECORD_BYTES: usize = 96;

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
    let bytes = expanded_bytes.saturating_add(records.saturating_mul(RECORD_BYTES));
    if bytes > MAX_EXPANDED_BYTES {
        return Err(LimitError::Expanded { bytes });
    }
    Ok(())
}

/// Records and bytes a request would build, counted as it is measured (before anything is
/// built) and checked against [`MAX_RECORDS`] and [`MAX_EXPANDED_BYTES`] at every step.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Budget {
    records: usize,
    bytes: usize,
}

impl Budget {
    /// Counts one more record.
    pub fn record(&mut self) -> Result<(), LimitError> {
        self.records = self.records.saturating_add(1);
        check(self.records, self.bytes)
    }

    /// Counts `n` more bytes.
    pub fn bytes(&mut self, n: usize) -> Result<(), LimitError> {
        self.bytes = self.bytes.saturating_add(n);
        check(self.records, self.bytes)
    }

    /// Records counted so far.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Bytes counted so far (without each record's fixed cost).
    pub fn total_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_refuses_the_step_that_crosses_a_limit() {
        let mut b = Budget::default();
        for _ in 0..MAX_RECORDS {
            assert_eq!(b.record(), Ok(()));
        }
        assert_eq!(
            b.record(),
            Err(LimitError::Records {
                records: MAX_RECORDS + 1
            })
        );
        let mut b = Budget::default();
        assert_eq!(b.bytes(MAX_EXPANDED_BYTES), Ok(()));
        assert!(matches!(b.bytes(1), Err(LimitError::Expanded { .. })));
        assert!(matches!(
            Budget::default().bytes(usize::MAX),
            Err(LimitError::Expanded { .. })
        ));
    }
}
