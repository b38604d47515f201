//! Timberline: a log store that speaks PostgreSQL.
//!
//! # Brief overview
//! The modules follow the data flow of one log line:
//!
//! ```text
//! ingest (HTTP, files) → wal (durable, group commit) → buffer (hot Arrow batches)
//!   → segment (Parquet per tenant and hour, or sparse hours) → catalog (one row per segment)
//!   → query (`logs` TableProvider) → pgwire (PostgreSQL front end), http (the HTTP API)
//! ```
//!
//! [`server::Server`] wires them together; [`config::Config`] is the one configuration.

pub mod admission;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod buffer;
pub mod catalog;
pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzz;
pub mod generate;
pub mod http;
pub mod index;
pub mod ingest;
pub mod mcp;
pub mod metrics;
pub mod model;
pub mod pgwire;
pub mod query;
pub mod segment;
pub mod server;
pub mod storage;
pub mod store;
pub mod tail;
pub mod telemetry;
pub mod tenants;
pub mod wal;
