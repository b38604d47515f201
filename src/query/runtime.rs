//! The threads queries run on: a tokio runtime of their own, at a lower CPU priority than the
//! threads serving `/health`, logins, ingest and syslog, so that no query — a cross join, a
//! regexp over every row — can hold those up; and per tenant a cap on the queries running at
//! once, so one tenant's long scans cannot take every query thread from another's.
//!
//! A query is planned and executed there; its batches come back through a small channel, and
//! while that channel is full (the client is not reading) the query gives its tenant's place
//! to the next query until the client reads again. When
//! the client's side of the stream is dropped (the rows were sent, the client cancelled, or
//! `statement_timeout` fired), the query's [`Cancel`] is set and its task aborted: it stops at
//! its next yield point (DataFusion's cooperative scheduling puts one between any two batches
//! of a scan) or at the next cancellation point of a join ([`super::interrupt`]), whichever
//! comes first.
//!
//! Before a query runs, the bytes its plan will scan are checked against its scan budget
//! ([`super::budget`], `54000` over it), and a long scan (over `--long-scan-bytes`) also needs
//! one of the few server-wide long-scan places: small interactive queries never wait behind
//! long scans, and a long scan that finds no place within [`LONG_SCAN_QUEUE`] gets `53300`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use futures::{Stream, StreamExt};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::budget::{check, ScanBudgets};
use super::interrupt::{interruptible, Cancel};
use crate::metrics::{metrics, CacheOutcome, SegmentFate, TierLabels, SEGMENT_FATES};

/// Niceness of the query threads: the kernel gives the serving threads the CPU first.
const QUERY_NICENESS: i32 = 10;

/// Batches a query may have computed ahead of the client reading them.
const AHEAD: usize = 2;

/// Longest a long scan waits for a place before it is refused with `53300`.
pub const LONG_SCAN_QUEUE: std::time::Duration = std::time::Duration::from_secs(2);

/// What makes a scan long, and how many run at once.
pub struct LongScans {
    pub bytes: u64,
    places: Arc<Semaphore>,
    concurrency: usize,
}

impl LongScans {
    pub fn new(bytes: u64, concurrency: usize) -> LongScans {
        LongScans {
            bytes,
            places: Arc::new(Semaphore::new(concurrency.max(1))),
            concurrency: concurrency.max(1),
        }
    }
}

/// The query threads and the per-tenant caps.
pub struct QueryRuntime {
    handle: Handle,
    _runtime: Owned,
    per_tenant: usize,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
    budgets: ScanBudgets,
    long: LongScans,
}

/// Errors of starting the query threads.
#[derive(Debug, thiserror::Error)]
#[error("starting the query threads: {0}")]
pub struct RuntimeError(#[from] std::io::Error);

impl QueryRuntime {
    /// `threads` query threads; each tenant may run `per_tenant` queries at once; scans are
    /// held to `budgets`, and long ones to `long`'s places.
    pub fn new(
        threads: usize,
        per_tenant: usize,
        budgets: ScanBudgets,
        long: LongScans,
    ) -> Result<QueryRuntime, RuntimeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("tl-query")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(QueryRuntime {
            handle: runtime.handle().clone(),
            _runtime: Owned(Some(runtime)),
            per_tenant: per_tenant.max(1),
            tenants: Mutex::new(HashMap::new()),
            budgets,
            long,
        })
    }

    /// The query threads, for other work that must not run beside `/health` and logins (a
    /// live tail's backfill and filtering).
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Runs `df` for `tenant` on the query threads: planned now (errors are returned here),
    /// executed once one of the tenant's places is free; dropping the stream stops it. Also
    /// returns the bytes its scans planned to read. `session_budget`: the session's own
    /// `timberline.max_scan_bytes`.
    pub async fn execute(
        &self,
        tenant: &str,
        df: DataFrame,
        session_budget: Option<u64>,
    ) -> Result<(
        Scanned,
        impl Stream<Item = Result<RecordBatch>> + Send + 'static,
    )> {
        let task_ctx = Arc::new(df.task_ctx());
        let planning = AbortOnDrop(self.handle.spawn(
            async move { df.create_physical_plan().await }.instrument(tracing::info_span!("plan")),
        ));
        let cancel = Cancel::default();
        let plan = interruptible(planning.join().await??, &cancel)?;
        let scanned = count_scans(&plan);
        let bytes_scanned = scanned.bytes;
        check(
            bytes_scanned,
            self.budgets.budget(tenant, session_budget).as_ref(),
        )?;
        let long = bytes_scanned >= self.long.bytes;
        let long_places = self.long.places.clone();
        let mut long_place = if long {
            let wait = self.long.places.clone().acquire_owned();
            match tokio::time::timeout(LONG_SCAN_QUEUE, wait).await {
                Ok(Ok(p)) => Some(p),
                _ => {
                    return Err(timberline_udfs::QueryError::new(
                        timberline_udfs::sqlstate::TOO_MANY_CONNECTIONS,
                        format!(
                            "too many long scans are running ({} at once, each over {} bytes; this one would scan {bytes_scanned}); retry shortly, or narrow its time range",
                            self.long.concurrency, self.long.bytes
                        ),
                    )
                    .into_df())
                }
            }
        } else {
            None
        };
        let places = self.places(tenant);
        let (tx, rx) = mpsc::channel(AHEAD);
        let task = self.handle.spawn(
            async move {
                let Ok(mut place) = places.clone().acquire_owned().await else {
                    return;
                };
                let mut batches = match execute_stream(plan, task_ctx) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                while let Some(batch) = batches.next().await {
                    match tx.try_send(batch) {
                        Ok(()) => {}
                        Err(TrySendError::Closed(_)) => return,
                        // The client is not reading (a suspended portal, a slow network): the
                        // tenant's place goes to its next query until this one can go on.
                        // A long scan gives its long-scan place back too, and takes both again.
                        Err(TrySendError::Full(batch)) => {
                            drop(place);
                            long_place = None;
                            if tx.send(batch).await.is_err() {
                                return;
                            }
                            if long {
                                long_place = match long_places.clone().acquire_owned().await {
                                    Ok(p) => Some(p),
                                    Err(_) => return,
                                };
                            }
                            place = match places.clone().acquire_owned().await {
                                Ok(p) => p,
                                Err(_) => return,
                            };
                        }
                    }
                }
                drop(place);
                drop(long_place);
            }
            .instrument(tracing::info_span!("scan", bytes = bytes_scanned)),
        );
        let running = Some(Running {
            task: AbortOnDrop(task),
            _cancel: CancelOnDrop(cancel),
        });
        Ok((
            scanned,
            futures::stream::unfold((rx, running), |(mut rx, running)| async move {
                if let Some(batch) = rx.recv().await {
                    return Some((batch, (rx, running)));
                }
                // The task ended: its result says whether it finished or panicked.
                match running?.task.join().await {
                    Ok(()) => None,
                    Err(e) => Some((Err(e), (rx, None))),
                }
            }),
        ))
    }

    /// The semaphore of `tenant`'s running queries.
    fn places(&self, tenant: &str) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the idle ones now and then, so the map does not grow with every tenant seen.
        if tenants.len() > 1024 {
            let per_tenant = self.per_tenant;
            tenants.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < per_tenant);
        }
        tenants
            .entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone()
    }
}

/// What a query's plan will scan, found before it runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scanned {
    /// Bytes of the segments its scans read.
    pub bytes: u64,
    /// Whether a rollup view answers (some of) it.
    pub rollup: bool,
}

/// Adds what the plan's scans decided while planning (segments pruned, counted, scanned;
/// bytes per tier; index fallbacks; rollup and result-cache answers) to the server's metrics;
/// returns what the plan will scan.
fn count_scans(plan: &Arc<dyn ExecutionPlan>) -> Scanned {
    let m = metrics();
    let mut bytes = 0;
    let mut rollups = 0;
    let _ = plan.apply(|node| {
        if let Some(set) = node.metrics() {
            let sum = |name: &str| set.sum_by_name(name).map_or(0, |v| v.as_usize() as u64);
            for fate in SEGMENT_FATES {
                let name = match fate {
                    "scanned" => "segments_scanned".to_string(),
                    "counted" => "segments_counted".to_string(),
                    pruned => format!("segments_{pruned}"),
                };
                m.scan_segments
                    .get_or_create(&SegmentFate { fate: fate.into() })
                    .inc_by(sum(&name));
            }
            for tier in ["hot", "warm", "cold"] {
                let b = sum(&format!("bytes_{tier}"));
                bytes += b;
                m.scan_bytes
                    .get_or_create(&TierLabels { tier: tier.into() })
                    .inc_by(b);
            }
            m.index_fallbacks.inc_by(sum("index_fallbacks"));
            m.rows_counted.inc_by(sum("rows_counted"));
            rollups += sum("rollup_answers");
            for (name, outcome) in [("cache_hits", "hit"), ("cache_misses", "miss")] {
                m.result_cache_segments
                    .get_or_create(&CacheOutcome {
                        outcome: outcome.into(),
                    })
                    .inc_by(sum(name));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    m.rollup_rewrites.inc_by(rollups);
    Scanned {
        bytes,
        rollup: rollups > 0,
    }
}

/// A query's execution: dropped with its stream, it sets the query's [`Cancel`] (the plan's
/// cancellation points see it at once) and aborts the task (which stops at its next yield).
struct Running {
    task: AbortOnDrop<()>,
    _cancel: CancelOnDrop,
}

/// Sets its [`Cancel`] when dropped.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// The task's output; a panic or an abort becomes an error of the query.
    async fn join(mut self) -> Result<T> {
        (&mut self.0).await.map_err(|e| {
            let why = if e.is_panic() {
                "panicked"
            } else {
                "was cancelled"
            };
            DataFusionError::Execution(format!("internal error: the query {why}"))
        })
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The runtime, shut down without waiting when the server is dropped (a runtime may not be
/// dropped inside another's async context).
struct Owned(Option<Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Lowers the calling thread's CPU priority (Linux: per thread). Failing is harmless.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, QUERY_NICENESS);
    }
}
