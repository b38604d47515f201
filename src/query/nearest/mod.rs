//! `nearest(ts, T [, k])` and `log_context(…)`: the rows around a moment, without a full scan.
//!
//! Semantics (also in the README and pinned by `sql/nearest.slt`):
//! - `WHERE nearest(ts, T, k) AND <other conditions>` keeps the `k` rows (default 1) closest to `T`
//!   *among the rows that satisfy the other conditions*, from both sides of `T`, ordered by
//!   distance. Ties: the earlier `ts` first (so `T - d` before `T + d`), then rows with the same
//!   `ts` in (service, host, msg) order — the same answer whether a row is hot or in a segment.
//! - `log_context(ts, host, service [, before [, after]])` returns the `before` (default 50) rows
//!   just before `ts`, every row at exactly `ts`, and the `after` (default 50) rows just after it,
//!   of that host and service (`service` NULL: any), in time order.
//!
//! How ([`search`]): a window around `T` grows in rings until it holds enough matching rows. Each
//! ring reads only what it adds: segments outside it are skipped by their catalog `ts` range,
//! and inside a segment the `ts` page index names the pages that can hold it; there only `ts`
//! and the conditions' columns are decoded ([`segment_read`]). Full rows are decoded at the end,
//! for the winners alone. Each hot-buffer batch (kept sorted by `ts`) is cut to the ring by
//! binary search. Empty stretches of time are jumped over.

mod context;
mod exec;
mod search;
mod segment_read;
mod spec;

pub use context::LogContextFn;
pub use exec::NearestExec;
pub use search::{search, SearchMetrics};
pub use spec::{invalid_argument, is_nearest, target_micros, NearestSpec, Selection};
