//! Ingest: decoders that turn shipper payloads into records, the durable accept path, the HTTP
//! API, and the file loader behind `timberline ingest`.

pub mod decode;
mod fast_event;
pub mod file;
pub mod http;

use std::sync::Arc;

use crate::buffer::{HotBuffer, Pressure};
use crate::model::{records_to_batch, LogRecord};
use crate::wal::{format::encode_records, Wal, WalError};

/// Errors of accepting a batch.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the hot buffer is full ({bytes} bytes); retry shortly")]
    BufferFull { bytes: usize },
    #[error("write-ahead log unavailable: {0}")]
    Wal(Arc<WalError>),
    #[error("building the batch: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

/// The one durable way into Timberline: WAL append (group-committed, fsynced), then the hot
/// buffer, then the caller may acknowledge.
#[derive(Clone)]
pub struct Ingestor {
    wal: Wal,
    buffer: Arc<HotBuffer>,
}

impl Ingestor {
    pub fn new(wal: Wal, buffer: Arc<HotBuffer>) -> Ingestor {
        Ingestor { wal, buffer }
    }

    /// Makes `records` durable and visible; returns the WAL sequence number.
    pub async fn accept(&self, records: &[LogRecord]) -> Result<u64, IngestError> {
        if self.buffer.is_full() {
            self.buffer.flush_wanted.notify_one();
            return Err(IngestError::BufferFull {
                bytes: self.buffer.bytes(),
            });
        }
        let payload = encode_records(records);
        let batch = records_to_batch(records)?;
        self.wal
            .append(payload, batch)
            .await
            .map_err(IngestError::Wal)
    }

    /// How full the hot buffer is.
    pub fn pressure(&self) -> Pressure {
        self.buffer.pressure()
    }
}
