//! Rollup views: their definition (`CREATE MATERIALIZED VIEW`, [`define`]) and the optimizer
//! rule that answers aggregates over `logs` from them. A query
//!
//! ```text
//! Aggregate: groupBy=[functions of the view's bucket and dimensions], aggr=[view measures]
//!   Filter: ts range AND the view's filters AND filters on its dimensions   (optional)
//!     TableScan: logs
//! ```
//! becomes a scan of [`answer::RollupAnswer`] named after the view (so `EXPLAIN` names it),
//! which merges the view's partial states with states computed at query time for what they do
//! not hold. The count tables are the built-in view `logs_per_minute` (count by minute,
//! service, host and level), one case of the same rule. `SET timberline.rollups = off | on |
//! require` disables the rule, allows it (the default), or makes an aggregate over `logs` that
//! no view answers an error.

mod answer;
mod bucket;
mod cached;
pub mod ddl;
pub mod define;
mod partials;
pub mod pg_class;
mod pg_matviews;
pub mod system;

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, TableReference};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{
    col, lit, Aggregate, Expr, LogicalPlan, Projection, TableScanBuilder,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use timberline_udfs::pg_compat::PgSession;
use timberline_udfs::{sqlstate, QueryError};

use answer::{Fit, RollupAnswer};
use bucket::{constant_within, ts_bound};
use cached::CachedAnswer;
use define::{dim_name, normalized, Flat, ViewParts};
use partials::Source;

use super::LogTable;
use crate::index::rollup::{Bucket, RollupPlan, RollupShape, BUCKET};
use crate::query::result_cache::ResultCache;
use crate::store::Store;

pub use define::{COUNT_VIEW, COUNT_VIEW_SQL};

/// The session setting that turns the rewrite off, on, or makes it required.
pub const SETTING: &str = "timberline.rollups";
/// The session setting that keeps an aggregate no view answers out of the result cache.
pub const CACHE_SETTING: &str = "timberline.result_cache";

/// What [`SETTING`] asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Off,
    On,
    Require,
}

fn mode(config: &dyn OptimizerConfig, setting: &str) -> Result<Mode> {
    let options = config.options();
    let value = options
        .extensions
        .get::<PgSession>()
        .and_then(|s| s.get(setting))
        .unwrap_or_else(|| "on".into());
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "" => Ok(Mode::On),
        "off" | "false" | "0" => Ok(Mode::Off),
        "require" if setting == SETTING => Ok(Mode::Require),
        other => Err(QueryError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!(
                "invalid value for parameter \"{setting}\": \"{other}\" ({})",
                if setting == SETTING {
                    "off, on or require"
                } else {
                    "off or on"
                }
            ),
        )
        .into_df()),
    }
}

/// True if `e` is `count(*)` (or `count` of another non-null literal).
pub fn is_count_star(e: &Expr) -> bool {
    let Expr::AggregateFunction(f) = e else {
        return false;
    };
    f.func.name() == "count"
        && !f.params.distinct
        && f.params.filter.is_none()
        && matches!(f.params.args.as_slice(), [Expr::Literal(v, _)] if !v.is_null())
}

/// The optimizer rule; see the module docs.
#[derive(Debug)]
pub struct RollupRewrite {
    store: Arc<Store>,
    /// The count tables as a view.
    counts: Arc<RollupPlan>,
    /// Where aggregates no view answers keep their states.
    cache: Arc<ResultCache>,
    /// What compiles those aggregates as views of their own.
    plain: SessionState,
}

impl RollupRewrite {
    pub fn new(
        store: Arc<Store>,
        state: &SessionState,
        cache: Arc<ResultCache>,
    ) -> Result<RollupRewrite> {
        let parts = ViewParts {
            bucket: Bucket {
                width: crate::index::MINUTE_US,
                origin: 0,
            },
            shape: RollupShape {
                dims: [col("service"), col("host"), col("level")]
                    .iter()
                    .map(normalized)
                    .collect(),
                measures: vec![count(lit(1i64))],
                filters: Vec::new(),
            },
        };
        let counts = define::compile(
            state,
            0,
            COUNT_VIEW.to_string(),
            COUNT_VIEW_SQL.to_string(),
            parts,
        )?;
        Ok(RollupRewrite {
            store,
            counts: Arc::new(counts),
            cache,
            plain: state.clone(),
        })
    }

    /// The views to try, coarsest and narrowest first, the count tables last.
    fn candidates(&self) -> Vec<(Arc<RollupPlan>, Source)> {
        let mut views: Vec<(Arc<RollupPlan>, Source)> = self
            .store
            .rollups
            .plans()
            .into_iter()
            .map(|p| (p, Source::Files))
            .collect();
        views.sort_by_key(|(p, _)| (std::cmp::Reverse(p.bucket.width), p.shape.dims.len()));
        views.push((self.counts.clone(), Source::CountTables));
        views
    }

    /// How `view` answers `agg` (with `filters`), if it can.
    fn fit(view: &Arc<RollupPlan>, source: Source, agg: &Flat) -> Option<Fit> {
        if agg.group.iter().any(|g| matches!(g, Expr::GroupingSet(_))) {
            return None;
        }
        let shape = &view.shape;
        let mut aggs = Vec::with_capacity(agg.aggr.len());
        for a in &agg.aggr {
            let a = normalized(a);
            let m = shape.measures.iter().position(|m| *m == a)?;
            aggs.push((a, m));
        }
        let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
        let mut covered = vec![false; shape.filters.len()];
        let mut partial_filters = Vec::new();
        let mut all = Vec::with_capacity(agg.filters.len());
        for f in agg.filters.iter().map(normalized) {
            all.push(f.clone());
            if let Some((l, h)) = ts_bound(&f) {
                if let Some(l) = l {
                    lo = Some(lo.map_or(l, |x| x.max(l)));
                }
                if let Some(h) = h {
                    hi = Some(hi.map_or(h, |x| x.min(h)));
                }
                continue;
            }
            if shape.filters.contains(&f) {
                for (i, v) in shape.filters.iter().enumerate() {
                    covered[i] |= *v == f;
                }
                continue;
            }
            partial_filters.push(on_partials(&f, view)?);
        }
        if covered.iter().any(|c| !c) {
            return None;
        }
        let groups = agg
            .group
            .iter()
            .map(|g| on_partials(&normalized(g), view))
            .collect::<Option<Vec<_>>>()?;
        Some(Fit {
            view: view.clone(),
            source,
            groups,
            aggs,
            filters: all,
            partial_filters,
            lo,
            hi,
        })
    }

    /// The columns `c0…` of a table answering `agg`.
    fn answer_schema(agg: &Aggregate) -> Arc<Schema> {
        let fields: Vec<Field> = agg
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Field::new(format!("c{i}"), f.data_type().clone(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// `agg` as a scan of `provider` (named `name` in `EXPLAIN`), its columns renamed back.
    fn rewritten(
        &self,
        agg: &Aggregate,
        name: String,
        provider: Arc<dyn datafusion::catalog::TableProvider>,
    ) -> Result<LogicalPlan> {
        let table = TableReference::bare(name);
        let scan = TableScanBuilder::new(table.clone(), provider_as_source(provider)).build()?;
        let exprs = (0..agg.schema.fields().len())
            .map(|i| {
                let (qualifier, field) = agg.schema.qualified_field(i);
                Expr::Column(Column::new(Some(table.clone()), format!("c{i}")))
                    .alias_qualified(qualifier.cloned(), field.name())
            })
            .collect();
        Ok(LogicalPlan::Projection(Projection::try_new(
            exprs,
            Arc::new(LogicalPlan::TableScan(scan)),
        )?))
    }
}

/// `e` over a view's partials: its dimensions become their columns, and `ts` — where `e`
/// reads it only through functions constant within a bucket — the bucket's first instant.
/// `None` if `e` reads anything else.
fn on_partials(e: &Expr, view: &RollupPlan) -> Option<Expr> {
    let dims = &view.shape.dims;
    let replaced = e
        .clone()
        .transform_down(|x| {
            if let Some(i) = dims.iter().position(|d| *d == x) {
                return Ok(Transformed::new(
                    Expr::Column(Column::new_unqualified(dim_name(i))),
                    true,
                    datafusion::common::tree_node::TreeNodeRecursion::Jump,
                ));
            }
            Ok(Transformed::no(x))
        })
        .ok()?
        .data;
    if !constant_within(&replaced, view.bucket) {
        return None;
    }
    let mut ok = true;
    let out = replaced
        .transform(|x| match x {
            Expr::Column(c) if c.name == "ts" => Ok(Transformed::yes(Expr::Column(
                Column::new_unqualified(BUCKET),
            ))),
            Expr::Column(c) => {
                ok &= c.name.starts_with("__dim");
                Ok(Transformed::no(Expr::Column(c)))
            }
            x => Ok(Transformed::no(x)),
        })
        .ok()?
        .data;
    ok.then_some(out)
}

impl OptimizerRule for RollupRewrite {
    fn name(&self) -> &str {
        "rollup_rewrite"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let original = agg;
        let Ok(Some(flat)) = define::flatten(agg) else {
            return Ok(Transformed::no(plan));
        };
        let is_logs = source_as_provider(&flat.scan.source).is_ok_and(|p| p.is::<LogTable>());
        if !is_logs || flat.scan.fetch.is_some() {
            return Ok(Transformed::no(plan));
        }
        let mode = mode(config, SETTING)?;
        if mode == Mode::Off {
            return Ok(Transformed::no(plan));
        }
        for (view, source) in self.candidates() {
            if let Some(fit) = Self::fit(&view, source, &flat) {
                let name = fit.view.name.clone();
                let answer = RollupAnswer::new(self.store.clone(), fit, Self::answer_schema(agg));
                return Ok(Transformed::yes(self.rewritten(
                    original,
                    name,
                    Arc::new(answer),
                )?));
            }
        }
        if mode == Mode::On
            && self.cache.enabled()
            && self::mode(config, CACHE_SETTING)? == Mode::On
        {
            if let Some((fit, parts)) = cached::adhoc_fit(&self.plain, &flat) {
                let answer = CachedAnswer::new(
                    self.store.clone(),
                    self.cache.clone(),
                    fit,
                    parts,
                    Self::answer_schema(agg),
                );
                let name = "logs".to_string();
                return Ok(Transformed::yes(self.rewritten(
                    original,
                    name,
                    Arc::new(answer),
                )?));
            }
        }
        if mode == Mode::Require {
            return Err(QueryError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!(
                    "no rollup view answers this aggregate ({SETTING} = require): groups [{}], aggregates [{}]",
                    original.group_expr.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", "),
                    original.aggr_expr.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
                ),
            )
            .into_df());
        }
        Ok(Transformed::no(plan))
    }
}
