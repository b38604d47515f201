//! Timberline's integration tests: one binary, one module per area. Each test starts the real
//! `timberline` binary on ephemeral ports with its own data directory.

mod abuse;
mod audit;
mod bad_input;
mod budgets;
mod clients;
mod counts;
mod crash;
mod differential;
mod e2e;
mod file_ingest;
mod flaky_store;
mod fuzz;
mod grafana;
mod index;
mod metrics;
mod nearest;
mod parsers;
mod pg;
mod pg_session;
mod query_isolation;
mod quotas;
mod redaction;
mod result_cache;
mod rollups;
mod seaweed;
mod shippers;
mod slt;
mod support;
mod text;
mod tiers;
mod tools;
mod tour;
mod traces;
mod wal;
mod wire;
