//! Memory budgets of queries: one pool for all running queries (DataFusion's, with its top
//! consumers named in the error), and per query a [`QueryPool`] that refuses growth past the
//! query's own budget. Operators that can spill (sort, grouped aggregation, repartition) spill
//! when refused; the others fail the query with SQLSTATE 53200 and the server goes on.
//! Functions and aggregates that build values larger than their input hold them in the same
//! pool ([`GuardFunctions`]).

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
    TrackConsumersPool,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionState;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan, WindowFunctionDefinition};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use timberline_udfs::aggregate_limits::guard_aggregate;
use timberline_udfs::limits::{guard_call, max_value_bytes, QueryBudget, QueryMemoryPool};

/// The pool every query draws from: `total` bytes.
pub fn shared_pool(total: usize) -> Arc<dyn MemoryPool> {
    let top = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
    Arc::new(TrackConsumersPool::new(GreedyMemoryPool::new(total), top))
}

/// `state` with a pool of its own: the session's [`QueryBudget`] over the shared pool.
pub fn scoped(state: SessionState) -> Result<SessionState> {
    let budget = state
        .config_options()
        .extensions
        .get::<QueryBudget>()
        .copied()
        .unwrap_or_default();
    let base = state.runtime_env().clone();
    let pool: Arc<dyn MemoryPool> = Arc::new(QueryPool {
        shared: base.memory_pool.clone(),
        limit: usize::try_from(budget.bytes).unwrap_or(usize::MAX),
        used: AtomicUsize::new(0),
    });
    let runtime = RuntimeEnvBuilder::from_runtime_env(&base)
        .with_memory_pool(pool.clone())
        .build_arc()?;
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_runtime_env(runtime)
        .build();
    // Functions that build large values reserve them here while they do (see GuardFunctions).
    state
        .config_mut()
        .options_mut()
        .extensions
        .insert(QueryMemoryPool(pool));
    Ok(state)
}

/// One query's share of the shared pool.
#[derive(Debug)]
struct QueryPool {
    shared: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "query pool ({} of {} bytes)",
            self.reserved(),
            self.limit
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.shared.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.shared.shrink(reservation, shrink);
        self.release(shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let grown = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(additional).filter(|n| *n <= self.limit)
            });
        if grown.is_err() {
            // The bare variant: operators that can spill recognise it and spill.
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the query needs more than its memory budget of {} bytes ({} in use, {additional} more asked by {}); \
                 raise --query-memory or narrow the query",
                self.limit,
                self.reserved(),
                reservation.consumer().name(),
            )));
        }
        self.shared
            .try_grow(reservation, additional)
            .inspect_err(|_| self.release(additional))
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

impl QueryPool {
    fn release(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_pool_refuses_past_its_budget_and_frees_on_drop() {
        let shared = shared_pool(1000);
        let pool: Arc<dyn MemoryPool> = Arc::new(QueryPool {
            shared: shared.clone(),
            limit: 100,
            used: AtomicUsize::new(0),
        });
        let r = MemoryConsumer::new("t").register(&pool);
        r.try_grow(60).unwrap();
        let e = r.try_grow(60).unwrap_err();
        assert!(matches!(e, DataFusionError::ResourcesExhausted(_)), "{e}");
        assert_eq!((pool.reserved(), shared.reserved()), (60, 60));
        drop(r);
        assert_eq!((pool.reserved(), shared.reserved()), (0, 0));
        // The shared pool's own limit applies too.
        let other: Arc<dyn MemoryPool> = Arc::new(QueryPool {
            shared: shared.clone(),
            limit: 5000,
            used: AtomicUsize::new(0),
        });
        let big = MemoryConsumer::new("big").register(&other);
        assert!(big.try_grow(1001).is_err());
        assert_eq!(other.reserved(), 0);
    }
}

/// The plan's last optimizer rule: calls of the functions and aggregates whose output grows
/// with their input (`guard_scalar`, [`guard_aggregate`]) are replaced by guarded ones that
/// size their output first and hold it in the query's pool (see `timberline_udfs::limits`).
#[derive(Debug)]
pub struct GuardFunctions;

impl OptimizerRule for GuardFunctions {
    fn name(&self) -> &str {
        "guard_functions"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let options = config.options();
        let pool = options
            .extensions
            .get::<QueryMemoryPool>()
            .map(|p| p.0.clone());
        let budget = options
            .extensions
            .get::<QueryBudget>()
            .copied()
            .unwrap_or_default();
        let max_value = usize::try_from(max_value_bytes(budget)).unwrap_or(usize::MAX);
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|e| e.transform_up(|e| guard_expr(e, pool.as_ref(), max_value)))
        })
    }
}

fn guard_expr(
    expr: Expr,
    pool: Option<&Arc<dyn MemoryPool>>,
    max_value: usize,
) -> Result<Transformed<Expr>> {
    Ok(match expr {
        e @ Expr::ScalarFunction(_) => guard_call(e),
        Expr::AggregateFunction(mut a) => {
            match pool.and_then(|p| guard_aggregate(&a.func, p, max_value)) {
                Some(guarded) => {
                    a.func = Arc::new(guarded);
                    Transformed::yes(Expr::AggregateFunction(a))
                }
                None => Transformed::no(Expr::AggregateFunction(a)),
            }
        }
        Expr::WindowFunction(mut w) => {
            let guarded = match (&w.fun, pool) {
                (WindowFunctionDefinition::AggregateUDF(udaf), Some(p)) => {
                    guard_aggregate(udaf, p, max_value)
                }
                _ => None,
            };
            match guarded {
                Some(g) => {
                    w.fun = WindowFunctionDefinition::AggregateUDF(Arc::new(g));
                    Transformed::yes(Expr::WindowFunction(w))
                }
                None => Transformed::no(Expr::WindowFunction(w)),
            }
        }
        other => Transformed::no(other),
    })
}
