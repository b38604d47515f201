//! Live tail: every batch the WAL makes durable is published here ([`Hub`], a WAL sink after
//! the hot buffer), and each open tail stream ([`stream`]) filters it and queues the matching
//! rows for its client — after a backfill from the store that ends exactly where the live part
//! begins (both are cut at one WAL sequence number).
//!
//! - [`filter`]: what a stream asks for (`service`, `host`, `level`, `q`, `since`) as one
//!   expression over `logs`; [`event`]: a row as JSON and the event ids a client resumes from.
//! - A slow client never slows ingest: publishing never waits, and a stream's queue is bounded;
//!   what does not fit is counted and told to the client in a `dropped` event.
//! - [`backfill`]: the rows a stream sends before it goes live, bounded in rows and bytes.

mod backfill;
pub mod event;
pub mod filter;
pub mod stream;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use tokio::runtime::Handle;
use tokio::sync::broadcast;

use crate::buffer::one_tenant;
use crate::tenants::{TenantSettings, WatchedSettings};
use crate::wal::WalSink;

/// Batches a lagging stream may fall behind before it catches up from the hot buffer.
const RING: usize = 1024;

/// One durable batch as announced to the streams: they read it from the hot buffer, so the
/// ring holds no rows of its own (memory stays within the buffer's cap).
#[derive(Debug, Clone)]
pub struct Published {
    pub seq: u64,
    /// The tenant of every row, when they share one: other tenants' streams skip the batch.
    pub tenant: Option<Arc<str>>,
}

/// Why a stream cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TailRefused {
    #[error("tenant {tenant} has {open} live-tail streams open, its limit ({set_by}); close one or raise the limit")]
    TenantLimit {
        tenant: String,
        open: usize,
        set_by: &'static str,
    },
    #[error(
        "the server has {open} live-tail streams open, its limit (--tail-max-streams); retry later"
    )]
    ServerLimit { open: usize },
}

/// The limits of live tail.
#[derive(Debug, Clone, Copy)]
pub struct TailLimits {
    pub per_tenant: usize,
    pub streams: usize,
    /// Events a stream holds for its client.
    pub queue: usize,
}

/// The fan-out of durable batches to the open tail streams, and their count per tenant.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Published>,
    open: Mutex<HashMap<String, usize>>,
    pub limits: TailLimits,
    /// The tenants' own stream limits (`timberline tenant set … --max-tail-streams`).
    settings: Option<WatchedSettings>,
    /// Where streams read their backfill and filter live batches: the query threads, not the
    /// runtime serving `/health`, logins and ingest.
    pub work: Handle,
}

/// A tenant's stream limit as its settings give it (`None`: the server's).
pub fn tenant_limit(settings: &TenantSettings) -> Result<Option<usize>, String> {
    match settings.max_tail_streams.as_deref().map(str::trim) {
        None => Ok(None),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1 << 16).contains(n))
            .map(Some)
            .ok_or_else(|| format!("max_tail_streams {v:?}: use a count from 1 to 65536")),
    }
}

/// A stream's place among the open ones, given back when it drops.
#[derive(Debug)]
pub struct Place {
    hub: Arc<Hub>,
    tenant: String,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.hub.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.tenant);
            }
        }
        crate::metrics::metrics().tail_stream(&self.tenant, -1);
    }
}

impl Hub {
    /// `data_dir`: where the tenants' settings are (none: the server's limits for all);
    /// `work`: the runtime streams run on.
    pub fn new(limits: TailLimits, data_dir: Option<&Path>, work: Handle) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(RING);
        Arc::new(Hub {
            tx,
            open: Mutex::new(HashMap::new()),
            limits,
            settings: data_dir.map(WatchedSettings::new),
            work,
        })
    }

    /// `tenant`'s stream limit and where it comes from.
    fn limit_of(&self, tenant: &str) -> (usize, &'static str) {
        let server = (self.limits.per_tenant, "--tail-max-per-tenant");
        let Some(watched) = &self.settings else {
            return server;
        };
        match watched.own_limit(tenant, tenant_limit) {
            Some(n) => (n, "the tenant's max_tail_streams"),
            None => server,
        }
    }

    /// Takes a place for a stream of `tenant`, within the limits.
    pub fn open(self: &Arc<Self>, tenant: &str) -> Result<Place, TailRefused> {
        let (limit, source) = self.limit_of(tenant);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = open.values().sum();
        if total >= self.limits.streams {
            return Err(TailRefused::ServerLimit { open: total });
        }
        let mine = open.entry(tenant.to_string()).or_default();
        if *mine >= limit {
            return Err(TailRefused::TenantLimit {
                tenant: tenant.to_string(),
                open: *mine,
                set_by: source,
            });
        }
        *mine += 1;
        crate::metrics::metrics().tail_stream(tenant, 1);
        Ok(Place {
            hub: self.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// Streams open now, of all tenants.
    pub fn streams(&self) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.values().sum()
    }

    /// Every batch published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.tx.subscribe()
    }
}

impl WalSink for Hub {
    fn publish(&self, seq: u64, batch: RecordBatch) {
        // Never waits: a stream that falls behind the ring catches up from the hot buffer.
        if self.tx.receiver_count() == 0 {
            return;
        }
        let tenant = one_tenant(&batch);
        let _ = self.tx.send(Published { seq, tenant });
    }
}
