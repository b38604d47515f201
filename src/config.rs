//! One `Config`: defaults, overridden by a TOML file, then by `TIMBERLINE_*` environment
//! variables, then by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

pub use crate::auth::AuthMethod;

/// Errors of loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
}

/// Every setting of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub pg_addr: SocketAddr,
    /// OTLP/gRPC listen address (off when `None`).
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// syslog listen address, UDP and TCP (off when `None`).
    pub syslog_addr: Option<SocketAddr>,
    /// Address serving `GET /metrics` without a key (off when `None`: then the HTTP port
    /// serves it to the admin key).
    pub metrics_addr: Option<SocketAddr>,
    /// Tenant of the rows syslog receives.
    pub syslog_tenant: String,
    /// Flush when the hot buffer holds this many bytes.
    pub flush_bytes: usize,
    /// Flush when the oldest buffered row is this old.
    pub flush_interval_secs: u64,
    /// Hard cap of the hot buffer: reaching it forces a flush.
    pub max_buffer_bytes: usize,
    /// Rotate WAL files at this size.
    pub wal_file_bytes: u64,
    /// Largest ingest body, compressed or decompressed.
    pub max_body_bytes: usize,
    /// How pg clients authenticate.
    pub pg_auth: AuthMethod,
    /// Password of the bootstrap user `timberline` (`TIMBERLINE_PASSWORD`).
    pub password: Option<String>,
    /// The bootstrap HTTP API key, of tenant `default` (`TIMBERLINE_API_KEY`).
    pub api_key: Option<String>,
    /// TLS certificate chain and private key (PEM) for pgwire.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse pg connections that do not use TLS.
    pub require_tls: bool,
    /// Write a sidecar index with each segment.
    pub index: bool,
    /// Rows per block of the index's postings.
    pub index_block_rows: u32,
    /// pg connections open at once, and HTTP connections open at once.
    pub pg_max_connections: usize,
    pub http_max_connections: usize,
    /// pg connections still logging in (a quarter of them from one address).
    pub pg_max_pending_logins: usize,
    /// Connections one client address may hold open, per listener.
    pub max_connections_per_address: usize,
    /// Time an HTTP request's headers may take to arrive (also the keep-alive idle limit).
    pub http_header_timeout: Duration,
    /// Time a new connection has to log in (pg), send an authenticated request (OTLP/gRPC) or
    /// its first byte (syslog TCP) before it is closed.
    pub login_timeout: Duration,
    /// Time a syslog TCP connection may send nothing before it is closed.
    pub syslog_idle_timeout: Duration,
    /// Time an HTTP request's body may take to arrive.
    pub http_body_timeout: Duration,
    /// Bytes of HTTP request bodies held at once, in all requests.
    pub max_inflight_body_bytes: u64,
    /// Wait before answering a failed pg login; doubles per address with each recent failure.
    pub auth_delay: Duration,
    /// Memory one query may use, and all queries together (DataFusion's memory pool).
    pub query_memory: u64,
    pub query_memory_total: u64,
    /// `statement_timeout` of a new pg session (0: none).
    pub statement_timeout: Duration,
    /// Largest message a logged-in pg client may send (a query's text, a Bind's parameters).
    pub pg_max_message: usize,
    /// Longest SQL text one pg message may carry, checked before it is parsed.
    pub pg_max_query_bytes: usize,
    /// Most rollup views, and most bytes of their partials on disk.
    pub max_views: usize,
    pub rollup_bytes: u64,
    /// Where queries spill (none: `<data dir>/spill`), and how much they may spill at once.
    pub spill_dir: Option<PathBuf>,
    pub spill_bytes: u64,
    /// Threads that run queries (apart from those serving ingest, logins and `/health`).
    pub query_threads: usize,
    /// Queries one tenant may run at once; more wait for a place.
    pub tenant_query_concurrency: usize,
    /// Longest `service`, `host` or `level`; longer ones are cut and the row flagged `truncated`.
    pub max_label_bytes: usize,
    /// The PII detectors applied to every tenant without its own (`default`, `none`, a list).
    pub redact: String,
    /// Most bytes one query may scan, for tenants without their own limit (`None`: no limit).
    pub max_scan_bytes: Option<u64>,
    /// Whether statements and API calls are written to the audit log.
    pub audit: bool,
    /// A query planned to scan this many bytes or more is a long scan: only
    /// `long_scan_concurrency` run at once, server-wide, so small queries keep their places.
    pub long_scan_bytes: u64,
    pub long_scan_concurrency: usize,
    /// Live-tail streams one tenant may hold open at once, and all tenants together.
    pub tail_max_per_tenant: usize,
    pub tail_max_streams: usize,
    /// Events one tail stream may have waiting for its client before it drops (and says so).
    pub tail_queue: usize,
    /// Time between heartbeats of an idle tail stream.
    pub tail_heartbeat: Duration,
    /// Bytes of aggregate states the result cache keeps in memory (0: no cache).
    pub result_cache_bytes: u64,
    /// Where alert notifications go: an Alertmanager (its base URL) and/or a webhook, whose
    /// bodies are signed with the secret.
    pub alertmanager_url: Option<String>,
    pub alert_webhook_url: Option<String>,
    pub alert_webhook_secret: Option<String>,
    /// Alert rules one tenant may keep.
    pub alert_max_rules: usize,
    /// The cold tier's object store (`s3://BUCKET[/PREFIX]` or `file:///DIR`; none: local only).
    pub object_store: Option<String>,
    /// The tier policy: ages of a segment's newest event (see `store::policy`).
    pub compact_after: Duration,
    pub cold_after: Option<Duration>,
    pub retention: Option<Duration>,
    /// Largest compacted segment, in bytes of the segments merged into it.
    pub compact_bytes: u64,
    /// Time between maintenance passes (0: only on `POST /v1/maintenance`).
    pub maintenance_interval: Duration,
    /// Bytes of cold data ranges cached in memory.
    pub cache_bytes: u64,
    /// The key of `POST /v1/maintenance` (default: the bootstrap API key).
    pub admin_key: Option<String>,
}

/// The shortest connection timeout (a zero would close every connection at once).
const MIN_TIMEOUT: Duration = Duration::from_millis(100);

/// A size as people write it: `512MiB`, `1GiB`, `64MB`, `4096` (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Size, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size (e.g. 512MiB)"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB)"
                ))
            }
        };
        n.checked_mul(mult)
            .map(Size)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

/// A duration as people write it: `500ms`, `30s`, `5min`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Span, String> {
        if s.trim() == "0" {
            return Ok(Span(Duration::ZERO));
        }
        humantime::parse_duration(s.trim())
            .map(Span)
            .map_err(|e| format!("{s:?} is not a duration (e.g. 30s, 5min): {e}"))
    }
}

macro_rules! deserialize_from_str {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Text(String),
                    Number(u64),
                }
                match Raw::deserialize(d)? {
                    Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
                    Raw::Number(n) => n.to_string().parse().map_err(serde::de::Error::custom),
                }
            }
        }
    };
}
/// An age limit as people write it (`7d`, `12h`), or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age(pub Option<Duration>);

impl FromStr for Age {
    type Err = String;
    fn from_str(s: &str) -> Result<Age, String> {
        // The one reader of ages, shared with the tenants' overrides.
        crate::store::policy::parse_age("age", s)
            .map(Age)
            .map_err(|e| e.to_string())
    }
}

deserialize_from_str!(Size);
deserialize_from_str!(Span);
deserialize_from_str!(Age);

/// Half the memory the server may use (the default budget of all queries): the machine's, or
/// its cgroup's limit when lower (in a container); 4 GiB when neither can be read.
fn half_of_memory() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib.saturating_mul(1024))
    });
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .find_map(|v| v.trim().parse::<u64>().ok());
    let limit = match (machine, cgroup) {
        (Some(m), Some(c)) => m.min(c),
        (m, c) => m.or(c).unwrap_or(8 << 30),
    };
    limit / 2
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./timberline-data"),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            pg_addr: SocketAddr::from(([127, 0, 0, 1], 5433)),
            otlp_grpc_addr: None,
            syslog_addr: None,
            metrics_addr: None,
            syslog_tenant: crate::model::DEFAULT_TENANT.to_string(),
            flush_bytes: 64 << 20,
            flush_interval_secs: 30,
            max_buffer_bytes: 512 << 20,
            wal_file_bytes: 64 << 20,
            max_body_bytes: 64 << 20,
            pg_auth: AuthMethod::ScramSha256,
            password: None,
            api_key: None,
            tls_cert: None,
            tls_key: None,
            require_tls: false,
            index: true,
            index_block_rows: 1024,
            pg_max_connections: 256,
            pg_max_pending_logins: 128,
            http_max_connections: 1024,
            max_connections_per_address: 128,
            http_header_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(5),
            syslog_idle_timeout: Duration::from_secs(300),
            http_body_timeout: Duration::from_secs(60),
            max_inflight_body_bytes: 512 << 20,
            auth_delay: Duration::from_millis(500),
            query_memory: (half_of_memory() / 4).max(64 << 20),
            query_memory_total: half_of_memory(),
            statement_timeout: Duration::from_secs(300),
            pg_max_message: 64 << 20,
            pg_max_query_bytes: 1 << 20,
            max_views: crate::store::rollups::DEFAULT_MAX_VIEWS,
            rollup_bytes: crate::store::rollups::DEFAULT_MAX_BYTES,
            spill_dir: None,
            spill_bytes: 16 << 30,
            query_threads: (4 * num_cpus::get()).max(4),
            tenant_query_concurrency: num_cpus::get().max(1),
            max_label_bytes: 1024,
            redact: "default".to_string(),
            max_scan_bytes: None,
            audit: true,
            long_scan_bytes: 1 << 30,
            result_cache_bytes: 256 << 20,
            long_scan_concurrency: (num_cpus::get() / 2).max(1),
            tail_max_per_tenant: 64,
            tail_max_streams: 1024,
            tail_queue: 4096,
            tail_heartbeat: Duration::from_secs(15),
            alertmanager_url: None,
            alert_webhook_url: None,
            alert_webhook_secret: None,
            alert_max_rules: 100,
            object_store: None,
            compact_after: Duration::from_secs(3600),
            cold_after: Some(Duration::from_secs(7 * 86_400)),
            retention: None,
            compact_bytes: 256 << 20,
            maintenance_interval: Duration::from_secs(60),
            cache_bytes: 1 << 30,
            admin_key: None,
        }
    }
}

/// The optional settings a file or the command line may give.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Data directory (WAL, segments, catalog) [default: ./timberline-data].
    #[arg(long, env = "TIMBERLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "TIMBERLINE_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// PostgreSQL wire listen address [default: 127.0.0.1:5433].
    #[arg(long, env = "TIMBERLINE_PG_ADDR")]
    pub pg_addr: Option<SocketAddr>,
    /// OTLP/gRPC listen address, e.g. 127.0.0.1:4317 [default: off; OTLP/HTTP is on the HTTP port].
    #[arg(long, env = "TIMBERLINE_OTLP_GRPC_ADDR")]
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// syslog listen address, UDP and TCP (RFC 5424/3164), e.g. 127.0.0.1:1514 [default: off].
    #[arg(long, env = "TIMBERLINE_SYSLOG_ADDR")]
    pub syslog_addr: Option<SocketAddr>,
    /// Address serving Prometheus metrics (`GET /metrics`) without a key, e.g. 127.0.0.1:9464
    /// [default: off; the HTTP port serves them to the admin key].
    #[arg(long, env = "TIMBERLINE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Tenant of the rows syslog receives [default: default].
    #[arg(long, env = "TIMBERLINE_SYSLOG_TENANT")]
    pub syslog_tenant: Option<String>,
    /// Flush the hot buffer at this many bytes [default: 64 MiB].
    #[arg(long, env = "TIMBERLINE_FLUSH_BYTES")]
    pub flush_bytes: Option<usize>,
    /// Flush the hot buffer when its oldest row is this many seconds old [default: 30].
    #[arg(long, env = "TIMBERLINE_FLUSH_INTERVAL_SECS")]
    pub flush_interval_secs: Option<u64>,
    /// Memory cap of the hot buffer; reaching it forces an early flush [default: 512 MiB].
    #[arg(long, env = "TIMBERLINE_MAX_BUFFER_BYTES")]
    pub max_buffer_bytes: Option<usize>,
    /// Rotate WAL files at this many bytes [default: 64 MiB].
    #[arg(long, env = "TIMBERLINE_WAL_FILE_BYTES")]
    pub wal_file_bytes: Option<u64>,
    /// Largest accepted ingest body in bytes [default: 64 MiB].
    #[arg(long, env = "TIMBERLINE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// pg authentication: scram-sha-256 (default), md5 or trust.
    #[arg(long, env = "TIMBERLINE_PG_AUTH", value_enum)]
    pub pg_auth: Option<AuthMethod>,
    /// Password of the user `timberline` (default `timberline`, with a warning).
    #[arg(long, env = "TIMBERLINE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// HTTP API key of tenant `default` (default `timberline`, with a warning).
    #[arg(long, env = "TIMBERLINE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// PEM certificate chain for pg TLS (with --tls-key).
    #[arg(long, env = "TIMBERLINE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for pg TLS.
    #[arg(long, env = "TIMBERLINE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Refuse pg connections without TLS: true or false.
    #[arg(long, env = "TIMBERLINE_REQUIRE_TLS")]
    pub require_tls: Option<bool>,
    /// Write a sidecar index (fst + roaring) with each segment: true or false.
    #[arg(long, env = "TIMBERLINE_INDEX")]
    pub index: Option<bool>,
    /// Rows per block of the index's postings (smaller: finer selections, larger indexes).
    #[arg(long, env = "TIMBERLINE_INDEX_BLOCK_ROWS", value_parser = clap::value_parser!(u32).range(1..))]
    pub index_block_rows: Option<u32>,
    /// pg connections open at once (past it: FATAL 53300).
    #[arg(long, env = "TIMBERLINE_PG_MAX_CONNECTIONS")]
    pub pg_max_connections: Option<usize>,
    /// pg connections still logging in, a quarter of them from one address; past it the one
    /// waiting longest is closed (53300) [default: 128].
    #[arg(long, env = "TIMBERLINE_PG_MAX_PENDING_LOGINS")]
    pub pg_max_pending_logins: Option<usize>,
    /// HTTP connections open at once (past it: 503).
    #[arg(long, env = "TIMBERLINE_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,
    /// Connections one client address may hold open on each port.
    #[arg(long, env = "TIMBERLINE_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Time an HTTP request's headers may take (and an idle keep-alive connection may wait), e.g. 10s.
    #[arg(long, env = "TIMBERLINE_HTTP_HEADER_TIMEOUT")]
    pub http_header_timeout: Option<Span>,
    /// Time a new connection has to log in (pg), send an authenticated request (OTLP/gRPC) or its first byte (syslog TCP), e.g. 5s.
    #[arg(long, env = "TIMBERLINE_LOGIN_TIMEOUT")]
    pub login_timeout: Option<Span>,
    /// Time a syslog TCP connection may send nothing before it is closed, e.g. 5min.
    #[arg(long, env = "TIMBERLINE_SYSLOG_IDLE_TIMEOUT")]
    pub syslog_idle_timeout: Option<Span>,
    /// Time an HTTP request's body may take to arrive, e.g. 60s.
    #[arg(long, env = "TIMBERLINE_HTTP_BODY_TIMEOUT")]
    pub http_body_timeout: Option<Span>,
    /// Request-body bytes held at once across all HTTP requests (past it: 503), e.g. 512MiB.
    #[arg(long, env = "TIMBERLINE_MAX_INFLIGHT_BODY_BYTES")]
    pub max_inflight_body_bytes: Option<Size>,
    /// Wait before answering a failed pg login, doubling per address (0 turns it off), e.g. 500ms.
    #[arg(long, env = "TIMBERLINE_AUTH_DELAY")]
    pub auth_delay: Option<Span>,
    /// Memory one query may use before it spills or fails with 53200 (default: a quarter of --query-memory-total).
    #[arg(long, env = "TIMBERLINE_QUERY_MEMORY")]
    pub query_memory: Option<Size>,
    /// Memory all running queries together may use (default: half the machine's).
    #[arg(long, env = "TIMBERLINE_QUERY_MEMORY_TOTAL")]
    pub query_memory_total: Option<Size>,
    /// statement_timeout of new pg sessions (0: none), e.g. 5min.
    #[arg(long, env = "TIMBERLINE_STATEMENT_TIMEOUT")]
    pub statement_timeout: Option<Span>,
    /// Largest message a logged-in pg client may send (past it: FATAL 08P01), e.g. 64MiB.
    #[arg(long, env = "TIMBERLINE_PG_MAX_MESSAGE")]
    pub pg_max_message: Option<Size>,
    /// Longest SQL text of one query (past it: 54000 before parsing), e.g. 1MiB.
    #[arg(long, env = "TIMBERLINE_PG_MAX_QUERY_BYTES")]
    pub pg_max_query_bytes: Option<Size>,
    /// Most rollup views (CREATE MATERIALIZED VIEW past it: 54000) [default: 64].
    #[arg(long, env = "TIMBERLINE_MAX_VIEWS")]
    pub max_views: Option<usize>,
    /// Bytes the views' partials may take on disk; past it segments are aggregated from rows [default: 16GiB].
    #[arg(long, env = "TIMBERLINE_ROLLUP_BYTES")]
    pub rollup_bytes: Option<Size>,
    /// Directory queries spill sorts and aggregations to [default: <data dir>/spill].
    #[arg(long, env = "TIMBERLINE_SPILL_DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Bytes of spill files all queries may hold at once (past it: 53100), e.g. 16GiB [default: 16GiB].
    #[arg(long, env = "TIMBERLINE_SPILL_BYTES")]
    pub spill_bytes: Option<Size>,
    /// Threads that run queries, apart from the ones serving ingest, logins and /health [default: 4 × the cores].
    #[arg(long, env = "TIMBERLINE_QUERY_THREADS")]
    pub query_threads: Option<usize>,
    /// Queries one tenant may run at once; more wait for a place [default: the cores].
    #[arg(long, env = "TIMBERLINE_TENANT_QUERY_CONCURRENCY")]
    pub tenant_query_concurrency: Option<usize>,
    /// Longest service, host or level name kept; longer ones are cut and flagged truncated.
    #[arg(long, env = "TIMBERLINE_MAX_LABEL_BYTES")]
    pub max_label_bytes: Option<usize>,
    /// PII detectors applied at ingest to tenants without their own: default (email, card, jwt, aws_key, bearer, url_password), none, or a list that may add ipv4, ipv6 [default: default].
    #[arg(long, env = "TIMBERLINE_REDACT")]
    pub redact: Option<String>,
    /// Most bytes one query may scan (tenants' own limits and sessions' SET timberline.max_scan_bytes go below it) [default: no limit].
    #[arg(long, env = "TIMBERLINE_MAX_SCAN_BYTES")]
    pub max_scan_bytes: Option<Size>,
    /// Write every statement and API call to the audit_log table (true or false) [default: true].
    #[arg(long, env = "TIMBERLINE_AUDIT")]
    pub audit: Option<bool>,
    /// A query planned to scan this much or more is a long scan [default: 1GiB].
    #[arg(long, env = "TIMBERLINE_LONG_SCAN_BYTES")]
    pub long_scan_bytes: Option<Size>,
    /// Long scans running at once, server-wide; one more waits up to 2 s, then gets 53300 [default: half the cores].
    #[arg(long, env = "TIMBERLINE_LONG_SCAN_CONCURRENCY")]
    pub long_scan_concurrency: Option<usize>,
    /// Live-tail streams one tenant may hold open at once (past it: 429) [default: 64].
    #[arg(long, env = "TIMBERLINE_TAIL_MAX_PER_TENANT")]
    pub tail_max_per_tenant: Option<usize>,
    /// Live-tail streams of all tenants together (past it: 429) [default: 1024].
    #[arg(long, env = "TIMBERLINE_TAIL_MAX_STREAMS")]
    pub tail_max_streams: Option<usize>,
    /// Events a tail stream holds for a slow client before it drops them with a `dropped` event [default: 4096].
    #[arg(long, env = "TIMBERLINE_TAIL_QUEUE")]
    pub tail_queue: Option<usize>,
    /// Heartbeat interval of an idle tail stream, e.g. 15s [default: 15s].
    #[arg(long, env = "TIMBERLINE_TAIL_HEARTBEAT")]
    pub tail_heartbeat: Option<Span>,
    /// Alertmanager to send alerts to (its base URL, e.g. http://127.0.0.1:9093); its silences mute alerts here.
    #[arg(long, env = "TIMBERLINE_ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
    /// A webhook alert notifications are POSTed to (JSON).
    #[arg(long, env = "TIMBERLINE_ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<String>,
    /// Secret the webhook bodies are signed with (HMAC-SHA256, header X-Timberline-Signature).
    #[arg(long, env = "TIMBERLINE_ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    pub alert_webhook_secret: Option<String>,
    /// Alert rules one tenant may keep (a tenant's own max_alert_rules overrides it) [default: 100].
    #[arg(long, env = "TIMBERLINE_ALERT_MAX_RULES")]
    pub alert_max_rules: Option<usize>,
    /// Memory the result cache keeps repeated aggregates' states in; 0 turns it off [default: 256MiB].
    #[arg(long, env = "TIMBERLINE_RESULT_CACHE_BYTES")]
    pub result_cache_bytes: Option<Size>,
    /// Object store of the cold tier: s3://BUCKET[/PREFIX] (AWS_* variables) or file:///DIR [default: none].
    #[arg(long, env = "TIMBERLINE_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// Compact a tenant-hour once its newest event is this old, e.g. 1h [default: 1h].
    #[arg(long, env = "TIMBERLINE_COMPACT_AFTER")]
    pub compact_after: Option<Span>,
    /// Move segments to the object store once their newest event is this old, or never [default: 7d].
    #[arg(long, env = "TIMBERLINE_COLD_AFTER")]
    pub cold_after: Option<Age>,
    /// Delete segments everywhere once their newest event is this old, e.g. 30d [default: never].
    #[arg(long, env = "TIMBERLINE_RETENTION")]
    pub retention: Option<Age>,
    /// Largest compacted segment (bytes of the segments merged), e.g. 256MiB [default: 256MiB].
    #[arg(long, env = "TIMBERLINE_COMPACT_BYTES")]
    pub compact_bytes: Option<Size>,
    /// Time between background maintenance passes (0: only on POST /v1/maintenance) [default: 60s].
    #[arg(long, env = "TIMBERLINE_MAINTENANCE_INTERVAL")]
    pub maintenance_interval: Option<Span>,
    /// Memory for cached ranges of cold segments, e.g. 1GiB [default: 1GiB].
    #[arg(long, env = "TIMBERLINE_CACHE_BYTES")]
    pub cache_bytes: Option<Size>,
    /// Key of the admin endpoints (POST /v1/maintenance) [default: the bootstrap API key].
    #[arg(long, env = "TIMBERLINE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

impl Config {
    /// Defaults ← `file` ← `cli` (which clap already merged with the environment).
    pub fn load(file: Option<&Path>, cli: &Overrides) -> Result<Config, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<Overrides>(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_path_buf(),
                    source,
                })?
            }
            None => Overrides::default(),
        };
        let d = Config::default();
        macro_rules! pick {
            ($f:ident) => {
                cli.$f.clone().or(from_file.$f.clone()).unwrap_or(d.$f)
            };
        }
        macro_rules! pick_with {
            ($f:ident, $map:expr) => {
                cli.$f.or(from_file.$f).map($map).unwrap_or(d.$f)
            };
        }
        let query_memory_total = pick_with!(query_memory_total, |s: Size| s.0);
        let query_memory = cli
            .query_memory
            .or(from_file.query_memory)
            .map_or((query_memory_total / 4).max(64 << 20), |s| s.0)
            .min(query_memory_total);
        Ok(Config {
            data_dir: pick!(data_dir),
            http_addr: pick!(http_addr),
            pg_addr: pick!(pg_addr),
            otlp_grpc_addr: cli.otlp_grpc_addr.or(from_file.otlp_grpc_addr),
            syslog_addr: cli.syslog_addr.or(from_file.syslog_addr),
            metrics_addr: cli.metrics_addr.or(from_file.metrics_addr),
            syslog_tenant: pick!(syslog_tenant),
            flush_bytes: pick!(flush_bytes),
            flush_interval_secs: pick!(flush_interval_secs),
            max_buffer_bytes: pick!(max_buffer_bytes),
            wal_file_bytes: pick!(wal_file_bytes),
            max_body_bytes: pick!(max_body_bytes),
            pg_auth: pick!(pg_auth),
            password: cli.password.clone().or(from_file.password.clone()),
            api_key: cli.api_key.clone().or(from_file.api_key.clone()),
            tls_cert: cli.tls_cert.clone().or(from_file.tls_cert.clone()),
            tls_key: cli.tls_key.clone().or(from_file.tls_key.clone()),
            require_tls: pick!(require_tls),
            index: pick!(index),
            index_block_rows: pick!(index_block_rows),
            pg_max_connections: pick!(pg_max_connections),
            pg_max_pending_logins: pick!(pg_max_pending_logins),
            http_max_connections: pick!(http_max_connections),
            max_connections_per_address: pick!(max_connections_per_address),
            http_header_timeout: pick_with!(http_header_timeout, |s: Span| s.0),
            login_timeout: pick_with!(login_timeout, |s: Span| s.0.max(MIN_TIMEOUT)),
            syslog_idle_timeout: pick_with!(syslog_idle_timeout, |s: Span| s.0.max(MIN_TIMEOUT)),
            http_body_timeout: pick_with!(http_body_timeout, |s: Span| s.0),
            max_inflight_body_bytes: pick_with!(max_inflight_body_bytes, |s: Size| s.0),
            auth_delay: pick_with!(auth_delay, |s: Span| s.0),
            query_memory,
            query_memory_total,
            statement_timeout: pick_with!(statement_timeout, |s: Span| s.0),
            pg_max_message: pick_with!(pg_max_message, |s: Size| {
                usize::try_from(s.0)
                    .unwrap_or(usize::MAX)
                    .clamp(1 << 10, 1 << 30)
            }),
            pg_max_query_bytes: pick_with!(pg_max_query_bytes, |s: Size| {
                usize::try_from(s.0)
                    .unwrap_or(usize::MAX)
                    .clamp(1 << 10, 1 << 30)
            }),
            max_views: pick!(max_views).max(1),
            rollup_bytes: pick_with!(rollup_bytes, |s: Size| s.0),
            spill_dir: cli.spill_dir.clone().or(from_file.spill_dir.clone()),
            spill_bytes: pick_with!(spill_bytes, |s: Size| s.0),
            query_threads: pick!(query_threads).clamp(1, 256),
            tenant_query_concurrency: pick!(tenant_query_concurrency).clamp(1, 4096),
            max_label_bytes: pick!(max_label_bytes).max(16),
            redact: pick!(redact),
            max_scan_bytes: cli
                .max_scan_bytes
                .or(from_file.max_scan_bytes)
                .map(|s| s.0)
                .filter(|b| *b > 0),
            audit: pick!(audit),
            long_scan_bytes: pick_with!(long_scan_bytes, |s: Size| s.0.max(1)),
            result_cache_bytes: pick_with!(result_cache_bytes, |s: Size| s.0),
            long_scan_concurrency: pick!(long_scan_concurrency).clamp(1, 4096),
            tail_max_per_tenant: pick!(tail_max_per_tenant).clamp(1, 1 << 16),
            tail_max_streams: pick!(tail_max_streams).clamp(1, 1 << 16),
            tail_queue: pick!(tail_queue).clamp(16, 1 << 20),
            tail_heartbeat: pick_with!(tail_heartbeat, |s: Span| s
                .0
                .max(Duration::from_millis(100))),
            alertmanager_url: cli
                .alertmanager_url
                .clone()
                .or(from_file.alertmanager_url.clone()),
            alert_webhook_url: cli
                .alert_webhook_url
                .clone()
                .or(from_file.alert_webhook_url.clone()),
            alert_webhook_secret: cli
                .alert_webhook_secret
                .clone()
                .or(from_file.alert_webhook_secret.clone()),
            alert_max_rules: pick!(alert_max_rules).clamp(1, 100_000),
            object_store: cli.object_store.clone().or(from_file.object_store.clone()),
            compact_after: pick_with!(compact_after, |s: Span| s.0),
            cold_after: pick_with!(cold_after, |a: Age| a.0),
            retention: pick_with!(retention, |a: Age| a.0),
            compact_bytes: pick_with!(compact_bytes, |s: Size| s.0.max(1)),
            maintenance_interval: pick_with!(maintenance_interval, |s: Span| s.0),
            cache_bytes: pick_with!(cache_bytes, |s: Size| s.0),
            admin_key: cli.admin_key.clone().or(from_file.admin_key.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        assert_eq!("512MiB".parse::<Size>(), Ok(Size(512 << 20)));
        assert_eq!("1 GiB".parse::<Size>(), Ok(Size(1 << 30)));
        assert_eq!("64MB".parse::<Size>(), Ok(Size(64_000_000)));
        assert_eq!("4096".parse::<Size>(), Ok(Size(4096)));
        assert!("12 parsecs".parse::<Size>().is_err());
        assert!("99999999999TiB".parse::<Size>().is_err());
        assert_eq!(
            "500ms".parse::<Span>(),
            Ok(Span(Duration::from_millis(500)))
        );
        assert_eq!("5min".parse::<Span>(), Ok(Span(Duration::from_secs(300))));
        assert_eq!("0".parse::<Span>(), Ok(Span(Duration::ZERO)));
        let file: Overrides =
            toml::from_str("query_memory = \"2GiB\"\nauth_delay = \"1s\"").unwrap();
        assert_eq!(file.query_memory, Some(Size(2 << 30)));
        assert_eq!(file.auth_delay, Some(Span(Duration::from_secs(1))));
        assert_eq!("never".parse::<Age>(), Ok(Age(None)));
        assert_eq!(
            "7d".parse::<Age>(),
            Ok(Age(Some(Duration::from_secs(7 * 86_400))))
        );
        assert!("soon".parse::<Age>().is_err());
    }
}
