//! Ingest: decoders that turn shipper payloads (JSON batches, OTLP, Loki push, Elasticsearch
//! `_bulk`, syslog) into records — each payload measured first ([`measure`]) so that nothing
//! is built past the limits — the syslog listener, and the durable accept path (the file
//! loader behind `timberline ingest` is a client, in `cli::load`).

pub mod bulk;
pub mod decode;
pub mod encoding;
mod fast_event;
pub mod limits;
pub mod loki;
pub mod loki_push;
pub mod measure;
pub mod otlp;
pub mod syslog;

use std::sync::Arc;

use crate::buffer::{HotBuffer, Pressure};
use crate::metrics::metrics;
use crate::model::{records_to_batch, LogRecord};
use crate::wal::{format::encode_records, Wal, WalError};

/// Errors of accepting a batch.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the hot buffer is full ({bytes} bytes); retry shortly")]
    BufferFull { bytes: usize },
    #[error("the batch takes {bytes} bytes in memory, more than the hot buffer's {max}; send smaller batches")]
    TooLarge { bytes: usize, max: usize },
    #[error("write-ahead log unavailable: {0}")]
    Wal(Arc<WalError>),
    #[error("building the batch: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

impl IngestError {
    /// A short name of the refusal, for the metrics' `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::BufferFull { .. } => "buffer_full",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::Wal(_) => "wal",
            IngestError::Arrow(_) => "batch",
        }
    }
}

/// The one durable way into Timberline: WAL append (group-committed, fsynced), then the hot
/// buffer, then the caller may acknowledge.
#[derive(Clone)]
pub struct Ingestor {
    wal: Wal,
    buffer: Arc<HotBuffer>,
    max_label_bytes: usize,
}

impl Ingestor {
    /// `max_label_bytes`: longest `service`, `host`, `level` or `trace_id` kept.
    pub fn new(wal: Wal, buffer: Arc<HotBuffer>, max_label_bytes: usize) -> Ingestor {
        Ingestor {
            wal,
            buffer,
            max_label_bytes,
        }
    }

    /// Makes `records` (sent over `protocol`, one tenant's) durable and visible; returns the WAL
    /// sequence number. Labels over the limit are cut first; a batch is taken only if it fits
    /// the hot buffer's headroom whole. Counted in the metrics, accepted or refused.
    pub async fn accept(
        &self,
        records: &mut [LogRecord],
        protocol: &'static str,
    ) -> Result<u64, IngestError> {
        for r in records.iter_mut() {
            r.enforce_label_limit(self.max_label_bytes);
        }
        let bytes: usize = records.iter().map(LogRecord::approx_bytes).sum();
        let accepted = self.make_durable(records, bytes).await;
        let m = metrics();
        match &accepted {
            Ok(_) => {
                let tenant = records.first().map_or("", |r| r.tenant.as_str());
                m.ingested(tenant, protocol, records.len(), bytes);
            }
            Err(e) => m.refused(protocol, e.reason()),
        }
        accepted
    }

    /// WAL append, then the hot buffer, for `records` taking `bytes` in memory.
    async fn make_durable(&self, records: &[LogRecord], bytes: usize) -> Result<u64, IngestError> {
        if bytes > self.buffer.max_bytes {
            return Err(IngestError::TooLarge {
                bytes,
                max: self.buffer.max_bytes,
            });
        }
        let Some(_room) = self.buffer.reserve(bytes) else {
            self.buffer.want_room();
            return Err(IngestError::BufferFull {
                bytes: self.buffer.bytes(),
            });
        };
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
