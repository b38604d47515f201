//! The server: replay the WAL, then open the HTTP, pg, OTLP/gRPC and syslog ports, flush in the
//! background.

mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use demo::run_demo;

use crate::admission::{Admission, Full};
use crate::alerts::outbox::Receivers;
use crate::alerts::tables::{AlertEventsTable, AlertsTable};
use crate::alerts::Alerts;
use crate::auth::{ApiKeys, Users};
use crate::buffer::HotBuffer;
use crate::catalog::{Catalog, CatalogError, FileCatalog};
use crate::config::Config;
use crate::http::guard::BodyLimits;
use crate::http::{router, HttpState};
use crate::ingest::tenant_rules::TenantRules;
use crate::ingest::Ingestor;
use crate::model::records_to_batch;
use crate::pgwire::{
    serve, tls_acceptor, PgCaps, PgHandlers, QueryEngine, SessionLimits, TlsError,
};
use crate::query::budget::ScanBudgets;
use crate::query::runtime::{LongScans, QueryRuntime, RuntimeError};
use crate::query::session_table::SessionTable;
use crate::query::{new_context, QueryMemory};
use crate::storage::{open_cold_store, SegmentFiles};
use crate::store::policy::{Policies, TierPolicy};
use crate::store::Store;
use crate::wal::{replay_dir, Wal, WalError};

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("building the query engine: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("--syslog-tenant {0:?}: names starting with '_' are reserved (the audit log is tenant _audit)")]
    ReservedTenant(String),
    #[error("--redact: {0}")]
    Redact(#[from] crate::ingest::redact::RuleError),
    #[error("TLS needs both --tls-cert and --tls-key (and --require-tls needs TLS)")]
    TlsMissing,
    #[error("segment storage: {0}")]
    Storage(#[from] datafusion::object_store::Error),
    #[error(transparent)]
    ColdStore(#[from] crate::storage::ColdStoreError),
    #[error(transparent)]
    QueryThreads(#[from] RuntimeError),
    #[error("API keys: {0}")]
    Keys(crate::auth::AuthError),
    #[error("alert rules: {0}")]
    Alerts(#[from] crate::alerts::AlertError),
    #[error("rebuilding replayed batches: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

/// A started server.
pub struct Server {
    pub http_addr: SocketAddr,
    pub pg_addr: SocketAddr,
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// Where metrics are served without a key, when asked for.
    pub metrics_addr: Option<SocketAddr>,
    pub syslog_addr: Option<SocketAddr>,
    pub store: Arc<Store>,
    pub wal: Wal,
    pub ingestor: Ingestor,
    pub replayed_rows: usize,
}

impl Server {
    /// Replays the WAL into the hot buffer, then binds and serves both ports.
    pub async fn start(config: &Config) -> Result<Server, StartError> {
        let data_dir = std::fs::create_dir_all(&config.data_dir)
            .and_then(|_| std::fs::canonicalize(&config.data_dir))
            .map_err(|source| StartError::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
        let wal_dir = data_dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|source| StartError::DataDir {
            path: wal_dir.clone(),
            source,
        })?;

        let catalog: Arc<dyn Catalog> = Arc::new(FileCatalog::open(&data_dir)?);
        let buffer = Arc::new(HotBuffer::new(config.flush_bytes, config.max_buffer_bytes));
        let mut files = SegmentFiles::local(&data_dir)?;
        if let Some(url) = &config.object_store {
            files = files.with_cold(open_cold_store(url)?, config.cache_bytes);
        }
        let mut store = Store::new(
            files,
            buffer.clone(),
            catalog.clone(),
            config.index.then_some(config.index_block_rows),
        );
        store.compact_bytes = config.compact_bytes;
        store
            .rollups
            .set_limits(config.max_views, config.rollup_bytes);
        let store = Arc::new(store);
        let orphans = store
            .remove_orphan_segments()
            .map_err(|source| StartError::DataDir {
                path: data_dir.clone(),
                source,
            })?;
        if orphans > 0 {
            tracing::warn!(orphans, "removed segment files that no catalog entry names");
        }
        let tiers = TierPolicy {
            compact_after: config.compact_after,
            cold_after: config.cold_after,
            retention: config.retention,
        };

        // Replay before any port opens: rows not yet in a segment go back to the hot buffer.
        let flushed = catalog.flushed_through();
        let replayed = replay_dir(&wal_dir)?;
        let mut replayed_rows = 0;
        for (seq, records) in &replayed.batches {
            if *seq > flushed && !records.is_empty() {
                replayed_rows += records.len();
                buffer.push(*seq, records_to_batch(records)?);
            }
        }
        tracing::info!(
            replayed_rows,
            cut = replayed.cut.len(),
            flushed,
            "WAL replayed"
        );
        let next_seq = replayed.max_seq.max(flushed) + 1;
        // The query threads: queries, and a live tail's backfill and filtering.
        let query_runtime = Arc::new(QueryRuntime::new(
            config.query_threads,
            config.tenant_query_concurrency,
            ScanBudgets::new(Some(&config.data_dir), config.max_scan_bytes),
            LongScans::new(config.long_scan_bytes, config.long_scan_concurrency),
        )?);
        // Live tail follows each durable batch right after the hot buffer has it.
        let tail = crate::tail::Hub::new(
            crate::tail::TailLimits {
                per_tenant: config.tail_max_per_tenant,
                streams: config.tail_max_streams,
                queue: config.tail_queue,
            },
            Some(&data_dir),
            query_runtime.handle(),
        );
        let wal = Wal::start(
            &wal_dir,
            next_seq,
            config.wal_file_bytes,
            replayed.files,
            vec![buffer.clone(), tail.clone()],
        )?;
        wal.remove_through(flushed)?;
        let rules = TenantRules::new(Some(&config.data_dir), &config.redact)?;
        let ingestor = Ingestor::new(
            wal.clone(),
            buffer.clone(),
            config.max_label_bytes,
            Arc::new(rules),
        );
        if config.audit {
            crate::audit::start(ingestor.clone());
        }

        let ctx = new_context(
            store.clone(),
            QueryMemory {
                per_query: config.query_memory,
                total: config.query_memory_total,
                spill_dir: spill_dir(config)?,
                spill_bytes: config.spill_bytes,
                result_cache: config.result_cache_bytes,
            },
        )?;
        // Saved rollup views answer queries from now on; partials they lack are backfilled.
        crate::query::rollup::ddl::install_saved(&ctx, &store).await?;
        let engine = QueryEngine::new(
            ctx.clone(),
            store.clone(),
            query_runtime.clone(),
            config.pg_max_query_bytes,
        );
        // Alert rules run their SQL as a pg client's would, on the query threads.
        let alerts = Alerts::open(
            &data_dir,
            engine.runner(),
            Receivers {
                alertmanager: config.alertmanager_url.clone(),
                webhook: config.alert_webhook_url.clone(),
                webhook_secret: config.alert_webhook_secret.clone(),
            },
            config.alert_max_rules,
        )?;
        ctx.register_table(
            "alerts",
            Arc::new(SessionTable(AlertsTable(alerts.clone()))),
        )?;
        ctx.register_table(
            "alert_events",
            Arc::new(SessionTable(AlertEventsTable(alerts.clone()))),
        )?;
        alerts.start(&query_runtime.handle());
        store.spawn_backfill();
        let (http, http_addr) = bind(config.http_addr).await?;
        let (pg, pg_addr) = bind(config.pg_addr).await?;
        let api_key = config.api_key.clone().unwrap_or_else(|| {
            tracing::warn!(
                "no TIMBERLINE_API_KEY set: HTTP ingest accepts the demo key '{}'",
                crate::auth::DEMO_API_KEY
            );
            crate::auth::DEMO_API_KEY.to_string()
        });

        let caps = connection_caps(config);
        let per_address = config.max_connections_per_address;
        let http_conns = Admission::new("HTTP", caps.http, per_address, Full::EvictIdlest);
        let pg_sessions = Admission::new("pg", caps.pg, per_address, Full::Refuse);
        let pg_logins = Admission::new(
            "pg login",
            caps.pg_logins,
            (caps.pg_logins / 4).min(per_address),
            Full::EvictIdlest,
        );
        let grpc_conns = Admission::new("OTLP/gRPC", caps.grpc, per_address, Full::EvictIdlest);
        let syslog_conns =
            Admission::new("syslog TCP", caps.syslog, per_address, Full::EvictIdlest);
        let mut listeners = vec![http_conns.clone(), pg_sessions.clone(), pg_logins.clone()];
        if config.otlp_grpc_addr.is_some() {
            listeners.push(grpc_conns.clone());
        }
        if config.syslog_addr.is_some() {
            listeners.push(syslog_conns.clone());
        }
        // Keys are read before any listener serves, so a first request never finds them
        // still loading.
        let keys = Arc::new(ApiKeys::new(&data_dir, &api_key));
        keys.load().await.map_err(StartError::Keys)?;
        let state = HttpState {
            ingestor: ingestor.clone(),
            store: store.clone(),
            wal: wal.clone(),
            task: ctx.task_ctx(),
            body: BodyLimits::new(
                config.max_body_bytes,
                config.http_body_timeout,
                usize::try_from(config.max_inflight_body_bytes).unwrap_or(usize::MAX),
            ),
            keys,
            tiers,
            admin_key: Arc::new(config.admin_key.clone().unwrap_or_else(|| api_key.clone())),
            listeners: Arc::new(listeners),
            tail,
            tail_heartbeat: config.tail_heartbeat,
            alerts,
            mcp: crate::mcp::service(engine.runner()),
        };
        let otlp_grpc_addr = match config.otlp_grpc_addr {
            Some(addr) => {
                let (listener, local) = bind(addr).await?;
                tokio::spawn(crate::http::otlp_grpc::serve(
                    listener,
                    state.clone(),
                    grpc_conns,
                    config.login_timeout,
                ));
                Some(local)
            }
            None => None,
        };
        let syslog_addr = match config.syslog_addr {
            Some(addr) => {
                let (tcp, local) = bind(addr).await?;
                let bind_err = |source| StartError::Bind {
                    addr: local,
                    source,
                };
                if config.syslog_tenant.starts_with('_') {
                    return Err(StartError::ReservedTenant(config.syslog_tenant.clone()));
                }
                let udp = tokio::net::UdpSocket::bind(local).await.map_err(bind_err)?;
                crate::ingest::syslog::listener::spawn(
                    udp,
                    tcp,
                    config.syslog_tenant.clone(),
                    ingestor.clone(),
                    crate::ingest::syslog::listener::TcpLimits {
                        admission: syslog_conns,
                        first_byte: config.login_timeout,
                        idle: config.syslog_idle_timeout,
                    },
                );
                Some(local)
            }
            None => None,
        };
        // Metrics on an address of their own, without a key (for a scraper on a private network).
        let metrics_addr = match config.metrics_addr {
            Some(addr) => {
                let (listener, local) = bind(addr).await?;
                let scrapes = Admission::new("metrics", 64, 64, Full::EvictIdlest);
                tokio::spawn(crate::http::serve::serve(
                    listener,
                    crate::http::metrics_router(state.clone()),
                    scrapes,
                    config.http_header_timeout,
                ));
                Some(local)
            }
            None => None,
        };
        tokio::spawn(crate::http::serve::serve(
            http,
            router(state),
            http_conns,
            config.http_header_timeout,
        ));
        let password = config.password.clone().unwrap_or_else(|| {
            tracing::warn!(
                "no TIMBERLINE_PASSWORD set: pg user '{}' has the demo password '{}'",
                crate::auth::BOOTSTRAP_USER,
                crate::auth::DEMO_PASSWORD
            );
            crate::auth::DEMO_PASSWORD.to_string()
        });
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
            (None, None) if config.require_tls => return Err(StartError::TlsMissing),
            (None, None) => None,
            _ => return Err(StartError::TlsMissing),
        };
        let users = Users::new(&data_dir, &password);
        let handlers = PgHandlers::new(
            engine,
            config.pg_auth,
            users,
            config.require_tls,
            PgCaps {
                sessions: pg_sessions,
                logins: pg_logins,
            },
            SessionLimits {
                statement_timeout: config.statement_timeout,
                max_message: config.pg_max_message,
                login_timeout: config.login_timeout,
                auth_delay: config.auth_delay,
            },
        );
        tokio::spawn(serve(pg, Arc::new(handlers), tls));
        tokio::spawn(flush_loop(
            store.clone(),
            wal.clone(),
            Duration::from_secs(config.flush_interval_secs.max(1)),
        ));
        if !config.maintenance_interval.is_zero() {
            tokio::spawn(maintenance_loop(
                store.clone(),
                tiers,
                config.maintenance_interval,
            ));
        }

        Ok(Server {
            http_addr,
            pg_addr,
            otlp_grpc_addr,
            syslog_addr,
            metrics_addr,
            store,
            wal,
            ingestor,
            replayed_rows,
        })
    }
}

/// Connection caps of every listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Caps {
    pg: usize,
    pg_logins: usize,
    http: usize,
    grpc: usize,
    syslog: usize,
}

/// The connection caps of every listener (OTLP/gRPC and syslog TCP take the HTTP cap each),
/// lowered in proportion (with a warning) to fit the process's open-files limit with room left
/// for the server's own files.
fn connection_caps(config: &Config) -> Caps {
    let budget = crate::admission::connection_budget();
    let http = config.http_max_connections.max(1);
    let wanted = Caps {
        pg: config.pg_max_connections.max(1),
        pg_logins: config.pg_max_pending_logins.max(1),
        http,
        grpc: if config.otlp_grpc_addr.is_some() {
            http
        } else {
            0
        },
        syslog: if config.syslog_addr.is_some() {
            http
        } else {
            0
        },
    };
    fit_caps(wanted, budget)
}

fn fit_caps(wanted: Caps, budget: usize) -> Caps {
    let all = [
        wanted.pg,
        wanted.pg_logins,
        wanted.http,
        wanted.grpc,
        wanted.syslog,
    ];
    let sum = all.iter().fold(0usize, |a, b| a.saturating_add(*b));
    if sum <= budget {
        return wanted;
    }
    // A listener that is off (0) stays at 0; one that is on keeps at least one place.
    let fit = |n: usize| {
        let share = u128::try_from(n).unwrap_or(u128::MAX) * budget as u128 / sum as u128;
        usize::try_from(share).unwrap_or(n).clamp(n.min(1), n)
    };
    let caps = Caps {
        pg: fit(wanted.pg),
        pg_logins: fit(wanted.pg_logins),
        http: fit(wanted.http),
        grpc: fit(wanted.grpc),
        syslog: fit(wanted.syslog),
    };
    tracing::warn!(
        budget,
        ?caps,
        "the open-files limit is too low for the configured connection caps; lowered them"
    );
    caps
}

/// The directory queries spill to, emptied of a previous run's leftovers.
fn spill_dir(config: &Config) -> Result<PathBuf, StartError> {
    let dir = config
        .spill_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("spill"));
    let fail = |source| StartError::DataDir {
        path: dir.clone(),
        source,
    };
    if config.spill_dir.is_none() && dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(fail)?;
    }
    std::fs::create_dir_all(&dir).map_err(fail)?;
    Ok(dir)
}

/// Binds a listener and reads back its address (port 0 picks a free one).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_err = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    Ok((listener, local))
}

/// Flushes when the buffer reaches its byte threshold (woken at once) or its age limit.
async fn flush_loop(store: Arc<Store>, wal: Wal, interval: Duration) {
    let buffer = store.buffer.clone();
    loop {
        tokio::select! {
            _ = buffer.flush_wanted.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let due = buffer.take_room_wanted()
            || buffer.bytes() >= buffer.flush_bytes
            || (buffer.rows() > 0 && buffer.age() >= interval);
        if due {
            if let Err(e) = store.flush(&wal).await {
                tracing::error!(error = %e, "flush failed; rows stay in the hot buffer and WAL");
            }
        }
    }
}

/// Runs a maintenance pass every `interval` (compaction, tier moves, retention), with each
/// tenant's overrides read afresh.
async fn maintenance_loop(store: Arc<Store>, tiers: TierPolicy, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let policies = Policies::load(tiers, &store.data_dir);
        let report = store.maintain(&policies, crate::model::now_micros()).await;
        if report.compacted_segments + report.moved_segments + report.deleted_segments > 0 {
            tracing::info!(
                compacted = report.compacted_segments,
                into = report.compacted_into,
                moved = report.moved_segments,
                deleted = report.deleted_segments,
                ms = report.elapsed_ms,
                "maintenance pass"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_the_descriptor_budget_in_proportion() {
        let wanted = Caps {
            pg: 256,
            pg_logins: 128,
            http: 1024,
            grpc: 1024,
            syslog: 0,
        };
        assert_eq!(fit_caps(wanted, 10_000), wanted);
        let fit = fit_caps(wanted, 1216);
        let sum = fit.pg + fit.pg_logins + fit.http + fit.grpc + fit.syslog;
        assert!(sum <= 1216, "{fit:?}");
        assert_eq!((fit.pg, fit.pg_logins, fit.http), (128, 64, 512));
        assert_eq!(fit.syslog, 0, "a listener that is off takes no share");
    }
}
