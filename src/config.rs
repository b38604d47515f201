//! One `Config`: defaults, overridden by a TOML file, then by `TIMBERLINE_*` environment
//! variables, then by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::pgwire::AuthMethod;

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
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./timberline-data"),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            pg_addr: SocketAddr::from(([127, 0, 0, 1], 5433)),
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
        }
    }
}

/// The optional settings a file or the command line may give.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Data directory (WAL, segments, catalog).
    #[arg(long, env = "TIMBERLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long, env = "TIMBERLINE_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// PostgreSQL wire listen address.
    #[arg(long, env = "TIMBERLINE_PG_ADDR")]
    pub pg_addr: Option<SocketAddr>,
    /// Flush the hot buffer at this many bytes.
    #[arg(long, env = "TIMBERLINE_FLUSH_BYTES")]
    pub flush_bytes: Option<usize>,
    /// Flush the hot buffer when its oldest row is this many seconds old.
    #[arg(long, env = "TIMBERLINE_FLUSH_INTERVAL_SECS")]
    pub flush_interval_secs: Option<u64>,
    /// Memory cap of the hot buffer; reaching it forces an early flush.
    #[arg(long, env = "TIMBERLINE_MAX_BUFFER_BYTES")]
    pub max_buffer_bytes: Option<usize>,
    /// Rotate WAL files at this many bytes.
    #[arg(long, env = "TIMBERLINE_WAL_FILE_BYTES")]
    pub wal_file_bytes: Option<u64>,
    /// Largest accepted ingest body in bytes.
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
        Ok(Config {
            data_dir: pick!(data_dir),
            http_addr: pick!(http_addr),
            pg_addr: pick!(pg_addr),
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
        })
    }
}
