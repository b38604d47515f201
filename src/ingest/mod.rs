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
pub mod otlp_traces;
pub mod quota;
pub mod redact;
pub mod syslog;
pub mod tenant_rules;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use crate::buffer::{HotBuffer, Pressure};
use crate::metrics::metrics;
use crate::model::{records_to_batch, LogRecord};
use crate::wal::{format::encode_records, Wal, WalError};
use quota::Verdict;
use tenant_rules::TenantRules;

/// Longest a batch's redaction may take before the batch is refused (the regex engine is
/// linear in the text, so only a rule set far too costly for its tenant's traffic gets here).
const REDACTION_BUDGET: Duration = Duration::from_secs(2);

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
    #[error("tenant {tenant} is over its ingest quota ({quota}); retry in {} ms", retry_after.as_millis())]
    OverQuota {
        tenant: String,
        quota: String,
        retry_after: Duration,
    },
    #[error("redacting the batch took over {} s: tenant {tenant}'s redaction rules are too costly for its logs", REDACTION_BUDGET.as_secs())]
    RedactionTimeout { tenant: String },
}

/// What a quota shed from a batch: the records' indices in the batch as sent, and the count
/// by level.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Shed {
    pub indices: Vec<usize>,
    pub by_level: BTreeMap<String, usize>,
}

impl Shed {
    pub fn count(&self) -> usize {
        self.indices.len()
    }

    /// What a response says of it: `over the tenant's ingest quota: shed 12 (DEBUG 10, INFO 2)`.
    pub fn describe(&self) -> String {
        let levels: Vec<String> = self
            .by_level
            .iter()
            .map(|(l, n)| format!("{l} {n}"))
            .collect();
        format!(
            "over the tenant's ingest quota: shed {} records, lowest levels first ({})",
            self.count(),
            levels.join(", ")
        )
    }
}

impl IngestError {
    /// A short name of the refusal, for the metrics' `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::BufferFull { .. } => "buffer_full",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::Wal(_) => "wal",
            IngestError::Arrow(_) => "batch",
            IngestError::OverQuota { .. } => "quota",
            IngestError::RedactionTimeout { .. } => "redaction_timeout",
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
    rules: Arc<TenantRules>,
}

impl Ingestor {
    /// `max_label_bytes`: longest `service`, `host`, `level` or `trace_id` kept; `rules`: the
    /// tenants' quotas and redaction rules.
    pub fn new(
        wal: Wal,
        buffer: Arc<HotBuffer>,
        max_label_bytes: usize,
        rules: Arc<TenantRules>,
    ) -> Ingestor {
        Ingestor {
            wal,
            buffer,
            max_label_bytes,
            rules,
        }
    }

    /// Charges `records` (one tenant's, sent over `protocol`) to the tenant's ingest quota and
    /// removes those it sheds, lowest levels first. With `may_shed` false the batch is taken or
    /// refused whole. Refused: [`IngestError::OverQuota`] with the time after which it fits.
    pub fn admit(
        &self,
        records: &mut Vec<LogRecord>,
        protocol: &'static str,
        may_shed: bool,
    ) -> Result<Shed, IngestError> {
        let Some(tenant) = records.first().map(|r| r.tenant.clone()) else {
            return Ok(Shed::default());
        };
        let m = metrics();
        match self.rules.admit(&tenant, records, may_shed) {
            Verdict::Take { shed } if shed.is_empty() => Ok(Shed::default()),
            Verdict::Take { shed } => {
                let mut by_level: BTreeMap<String, usize> = BTreeMap::new();
                let mut drop = vec![false; records.len()];
                for &i in &shed {
                    drop[i] = true;
                    *by_level.entry(records[i].level.clone()).or_default() += 1;
                }
                let mut i = 0;
                records.retain(|_| {
                    i += 1;
                    !drop[i - 1]
                });
                for (level, n) in &by_level {
                    m.shed(&tenant, level, *n);
                }
                Ok(Shed {
                    indices: shed,
                    by_level,
                })
            }
            Verdict::Refuse { retry_after } => Err(self.over_quota(tenant, retry_after, protocol)),
        }
    }

    /// Charges the longest prefix of `records` (one tenant's) that fits its quota and says how
    /// long it is; refused when not even one fits: for listeners that can make their senders
    /// wait (syslog over TCP) instead of shedding.
    pub fn admit_prefix(
        &self,
        records: &[LogRecord],
        protocol: &'static str,
    ) -> Result<usize, IngestError> {
        let Some(tenant) = records.first().map(|r| r.tenant.clone()) else {
            return Ok(0);
        };
        match self.rules.admit(&tenant, records, false) {
            Verdict::Take { shed } => Ok(records.len() - shed.len()),
            Verdict::Refuse { retry_after } => Err(self.over_quota(tenant, retry_after, protocol)),
        }
    }

    fn over_quota(&self, tenant: String, retry_after: Duration, protocol: &str) -> IngestError {
        let e = IngestError::OverQuota {
            quota: self.rules.describe_quota(&tenant),
            tenant,
            retry_after,
        };
        metrics().refused(protocol, e.reason());
        e
    }

    /// Makes `records` (sent over `protocol`, one tenant's) durable and visible; returns the WAL
    /// sequence number. Labels over the limit are cut and the tenant's redaction rules applied
    /// first ([`Ingestor::prepare`]); a batch is taken only if it fits the hot buffer's
    /// headroom whole. Counted in the metrics, accepted or refused.
    pub async fn accept(
        &self,
        records: &mut [LogRecord],
        protocol: &'static str,
    ) -> Result<u64, IngestError> {
        {
            let _prepare = tracing::info_span!("prepare", events = records.len()).entered();
            self.prepare(records, protocol)?;
        }
        let wal = tracing::info_span!("wal", events = records.len());
        self.accept_prepared(records, protocol)
            .instrument(wal)
            .await
    }

    /// Cuts labels over the limit and applies the tenant's redaction rules, once: a caller
    /// that retries [`Ingestor::accept_prepared`] (syslog, the audit trail) calls this first.
    pub fn prepare(
        &self,
        records: &mut [LogRecord],
        protocol: &'static str,
    ) -> Result<(), IngestError> {
        for r in records.iter_mut() {
            r.enforce_label_limit(self.max_label_bytes);
        }
        self.redact(records)
            .inspect_err(|e| metrics().refused(protocol, e.reason()))
    }

    /// Stores prepared `records` for a caller that can wait (syslog, the audit trail): waits
    /// while the hot buffer is full, stores a batch larger than the whole buffer in halves (a
    /// single record always fits: labels and messages are capped), and retries any other
    /// failure a second apart — forever, or `tries` times. Returns how many records were not
    /// stored (logged).
    pub async fn accept_waiting(
        &self,
        records: &mut [LogRecord],
        protocol: &'static str,
        tries: Option<u32>,
    ) -> usize {
        let mut wait = Duration::from_millis(5);
        let mut failures = 0;
        loop {
            match self.accept_prepared(records, protocol).await {
                Ok(_) => return 0,
                Err(IngestError::BufferFull { .. }) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(500));
                }
                Err(IngestError::TooLarge { .. }) if records.len() > 1 => {
                    let (a, b) = records.split_at_mut(records.len() / 2);
                    let lost = Box::pin(self.accept_waiting(a, protocol, tries)).await;
                    return lost + Box::pin(self.accept_waiting(b, protocol, tries)).await;
                }
                Err(e) if tries.is_none_or(|t| failures < t) => {
                    failures += 1;
                    tracing::error!(error = %e, protocol, rows = records.len(), "batch not stored; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, protocol, rows = records.len(), "batch dropped");
                    return records.len();
                }
            }
        }
    }

    /// [`Ingestor::accept`] of records already prepared.
    pub async fn accept_prepared(
        &self,
        records: &mut [LogRecord],
        protocol: &'static str,
    ) -> Result<u64, IngestError> {
        let m = metrics();
        let bytes: usize = records.iter().map(LogRecord::approx_bytes).sum();
        let accepted = self.make_durable(records, bytes).await;
        match &accepted {
            Ok(_) => {
                let tenant = records.first().map_or("", |r| r.tenant.as_str());
                m.ingested(tenant, protocol, records.len(), bytes);
            }
            Err(e) => m.refused(protocol, e.reason()),
        }
        accepted
    }

    /// Applies the tenant's redaction rules to `records` (one tenant's), counting the findings.
    fn redact(&self, records: &mut [LogRecord]) -> Result<(), IngestError> {
        let Some(tenant) = records.first().map(|r| r.tenant.clone()) else {
            return Ok(());
        };
        let redactor = self.rules.redactor(&tenant);
        if redactor.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut found: BTreeMap<String, u64> = BTreeMap::new();
        for r in records.iter_mut() {
            for kind in redactor.redact_record(r) {
                let kind = if redact::DETECTORS.contains(&kind.as_str()) {
                    kind
                } else {
                    "custom".to_string()
                };
                *found.entry(kind).or_default() += 1;
            }
            if started.elapsed() > REDACTION_BUDGET {
                tracing::error!(tenant, "a batch's redaction ran out of time; batch refused");
                return Err(IngestError::RedactionTimeout { tenant });
            }
        }
        let m = metrics();
        for (kind, n) in found {
            m.redacted(&tenant, &kind, n);
        }
        Ok(())
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
