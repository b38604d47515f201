//! `CREATE MATERIALIZED VIEW … AS SELECT <bucket of ts>, <dimensions>, <measures> FROM logs
//! [WHERE …] GROUP BY …`: what a view may be, checked on its optimized plan (the same form the
//! rewrite later sees queries in), and its compilation into a [`RollupPlan`]. A definition that
//! cannot be rolled up is refused with the expression at fault, never accepted.

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{lit, Aggregate, Expr, LogicalPlan, TableScan, Volatility};
use datafusion::physical_plan::aggregates::PhysicalGroupBy;
#[allow(deprecated)]
use datafusion::physical_planner::create_aggregate_expr_and_maybe_filter;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement};
use timberline_udfs::{sqlstate, QueryError};

use super::bucket::bucket_of;
use crate::index::rollup::{Bucket, RollupPlan, RollupShape, BUCKET};
use crate::model::logs_schema;
use crate::query::LogTable;

/// Columns a view may group by (besides the time bucket) as they are.
const DIMENSION_COLUMNS: [&str; 4] = ["service", "host", "level", "tenant"];
/// Aggregates whose partial states merge exactly (approximate ones within their own error).
const MEASURES: [&str; 7] = [
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "approx_distinct",
    "approx_percentile_cont",
];

/// The name of the `i`th dimension column of partials.
pub fn dim_name(i: usize) -> String {
    format!("__dim{i}")
}

fn refuse(reason: impl Into<String>) -> DataFusionError {
    QueryError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("cannot roll up this view: {}", reason.into()),
    )
    .into_df()
}

/// `e` with column qualifiers and aliases removed: how view and query expressions compare.
pub fn normalized(e: &Expr) -> Expr {
    e.clone()
        .transform(|x| match x {
            Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
                Column::new_unqualified(c.name),
            ))),
            Expr::Alias(a) => Ok(Transformed::yes(*a.expr)),
            x => Ok(Transformed::no(x)),
        })
        .map_or_else(|_| e.clone(), |t| t.data)
}

/// The parts of a view: its bucket and its shape.
#[derive(Debug, Clone)]
pub struct ViewParts {
    pub bucket: Bucket,
    pub shape: RollupShape,
}

/// Plans `query` and checks it is a view that can be rolled up.
pub async fn view_parts(state: &SessionState, query: &Query) -> Result<ViewParts> {
    let plan = state
        .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(
            Box::new(query.clone()),
        ))))
        .await?;
    // Before simplification folds them: a view must mean the same at every flush.
    let mut unstable = None;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|x| {
                match x {
                    Expr::ScalarFunction(f)
                        if f.func.signature().volatility != Volatility::Immutable =>
                    {
                        unstable = Some(format!(
                            "{}() changes from one call to the next; a view's definition must not",
                            f.func.name()
                        ));
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    // The optimizer turns these into two aggregations: say why first.
                    Expr::AggregateFunction(f) if f.params.distinct => {
                        unstable = Some(format!(
                            "{x}: DISTINCT states do not merge; use approx_distinct"
                        ));
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    if let Some(why) = unstable {
        return Err(refuse(why));
    }
    let optimized = state.optimize(&plan)?;
    parts_of(&optimized)
}

/// The parts of an optimized view plan; see [`view_parts`].
fn parts_of(plan: &LogicalPlan) -> Result<ViewParts> {
    let mut aggregates = Vec::new();
    let mut scans = 0;
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Aggregate(a) => aggregates.push(a.clone()),
            LogicalPlan::TableScan(_) => scans += 1,
            LogicalPlan::Join(_) | LogicalPlan::Union(_) => scans += 2,
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let [agg] = aggregates.as_slice() else {
        return Err(refuse("a view is one GROUP BY over logs"));
    };
    let Some(flat) = flatten(agg)? else {
        return Err(refuse(
            "a view aggregates rows of logs directly (no subqueries or joins below its GROUP BY)",
        ));
    };
    let scan = &flat.scan;
    if !source_as_provider(&scan.source).is_ok_and(|p| p.is::<LogTable>()) {
        return Err(refuse("a view reads the logs table"));
    }
    if scan.fetch.is_some() {
        return Err(refuse("a view aggregates every row (no LIMIT below it)"));
    }
    let mut filters: Vec<Expr> = Vec::new();
    for f in flat.filters.iter().map(normalized) {
        // A filter pushed into the scan is also kept above it: one is enough.
        if !filters.contains(&f) {
            filters.push(f);
        }
    }
    if flat.group.iter().any(|g| matches!(g, Expr::GroupingSet(_))) {
        return Err(refuse("GROUPING SETS, CUBE and ROLLUP"));
    }
    let mut bucket = None;
    let mut dims = Vec::new();
    for g in flat.group.iter().map(normalized) {
        if dimension(&g) {
            dims.push(g);
            continue;
        }
        match bucket_of(&g) {
            Ok(b) if bucket.is_none() => bucket = Some(b),
            Ok(_) => return Err(refuse(format!("{g}: a view has one time bucket"))),
            Err(why) => {
                return Err(refuse(format!(
                    "{g} is neither a time bucket nor a dimension (service, host, level, tenant, attrs->>'key'): {why}"
                )))
            }
        }
    }
    let Some(bucket) = bucket else {
        return Err(refuse(
            "a view groups by a time bucket of ts (date_bin, date_trunc, floor(extract(epoch from ts)/k))",
        ));
    };
    let mut measures = Vec::new();
    for m in flat.aggr.iter().map(normalized) {
        measure(&m)?;
        measures.push(m);
    }
    if measures.is_empty() {
        return Err(refuse("a view has at least one aggregate"));
    }
    Ok(ViewParts {
        bucket,
        shape: RollupShape {
            dims,
            measures,
            filters,
        },
    })
}

/// An aggregate seen through what the optimizer put between it and its scan: its groups,
/// aggregates and filters over the scan's columns (projections, which common-subexpression
/// elimination and pushdown make, folded in), and the scan.
#[derive(Debug, Clone)]
pub struct Flat {
    pub group: Vec<Expr>,
    pub aggr: Vec<Expr>,
    pub filters: Vec<Expr>,
    pub scan: TableScan,
}

/// `agg` flattened, if only projections and filters lie between it and one scan.
pub fn flatten(agg: &Aggregate) -> Result<Option<Flat>> {
    let (mut group, mut aggr) = (agg.group_expr.clone(), agg.aggr_expr.clone());
    let mut filters: Vec<Expr> = Vec::new();
    let mut node = agg.input.as_ref();
    loop {
        match node {
            LogicalPlan::Projection(p) => {
                let columns: Vec<(Column, Expr)> = (0..p.expr.len())
                    .map(|i| {
                        let (q, f) = p.schema.qualified_field(i);
                        (
                            Column::new(q.cloned(), f.name()),
                            p.expr[i].clone().unalias_nested().data,
                        )
                    })
                    .collect();
                let fold = |e: &Expr| -> Result<Expr> {
                    e.clone()
                        .transform(|x| match &x {
                            Expr::Column(c) => match columns.iter().find(|(k, _)| k == c) {
                                Some((_, v)) => Ok(Transformed::yes(v.clone())),
                                None => Ok(Transformed::no(x)),
                            },
                            _ => Ok(Transformed::no(x)),
                        })
                        .map(|t| t.data)
                };
                group = group.iter().map(fold).collect::<Result<_>>()?;
                aggr = aggr.iter().map(fold).collect::<Result<_>>()?;
                filters = filters.iter().map(fold).collect::<Result<_>>()?;
                node = p.input.as_ref();
            }
            LogicalPlan::Filter(f) => {
                filters.extend(split_conjunction(&f.predicate).into_iter().cloned());
                node = f.input.as_ref();
            }
            LogicalPlan::TableScan(s) => {
                filters.extend(s.filters.iter().cloned());
                return Ok(Some(Flat {
                    group,
                    aggr,
                    filters,
                    scan: s.clone(),
                }));
            }
            _ => return Ok(None),
        }
    }
}

/// A dimension: a label column, or `attrs->>'key'` (a JSON accessor of `attrs` by literals).
pub(super) fn dimension(e: &Expr) -> bool {
    match e {
        Expr::Column(c) => DIMENSION_COLUMNS.contains(&c.name.as_str()),
        Expr::ScalarFunction(f) => {
            f.func.name().starts_with("json_")
                && matches!(f.args.first(), Some(Expr::Column(c)) if c.name == "attrs")
                && f.args[1..]
                    .iter()
                    .all(|a| matches!(a, Expr::Literal(v, _) if !v.is_null()))
                && !f.args[1..].is_empty()
        }
        _ => false,
    }
}

/// Checks `e` is an aggregate a rollup keeps.
pub(super) fn measure(e: &Expr) -> Result<()> {
    let Expr::AggregateFunction(f) = e else {
        return Err(refuse(format!("{e} is not an aggregate")));
    };
    let name = f.func.name();
    if !MEASURES.contains(&name) {
        return Err(refuse(format!(
            "{name}() has no mergeable state here (rollups keep count, sum, min, max, avg, approx_distinct, approx_percentile_cont)"
        )));
    }
    let p = &f.params;
    if p.distinct {
        return Err(refuse(format!(
            "{e}: DISTINCT states do not merge; use approx_distinct"
        )));
    }
    if p.filter.is_some() {
        return Err(refuse(format!(
            "{e}: FILTER clauses; put the filter in WHERE"
        )));
    }
    if !p.order_by.is_empty() && name != "approx_percentile_cont" {
        return Err(refuse(format!("{e}: ordered aggregates")));
    }
    let mut bad = None;
    for arg in p.args.iter().chain(p.order_by.iter().map(|s| &s.expr)) {
        arg.apply(|x| {
            if let Expr::Column(c) = x {
                if c.name == "msg" {
                    bad = Some(format!("{e} reads msg"));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
    }
    match bad {
        Some(why) => Err(refuse(why)),
        None => Ok(()),
    }
}

/// Compiles a view's parts over the `logs` schema.
pub fn compile(
    state: &SessionState,
    id: u64,
    name: String,
    sql: String,
    parts: ViewParts,
) -> Result<RollupPlan> {
    let schema = logs_schema();
    let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
    // The bucket's first instant in integer microseconds, ts − ((ts − origin) mod⁺ width):
    // exact for every timestamp ingest accepts (`date_bin` counts in nanoseconds and turns
    // instants past 2262 into NULL).
    let ts_type = schema.field_with_name("ts")?.data_type().clone();
    let micros = Expr::Cast(datafusion::logical_expr::Cast::new(
        Box::new(Expr::Column(Column::new_unqualified("ts"))),
        datafusion::arrow::datatypes::DataType::Int64,
    ));
    let (width, origin) = (lit(parts.bucket.width), lit(parts.bucket.origin));
    let offset = ((micros.clone() - origin) % width.clone() + width.clone()) % width;
    let bucket_start = Expr::Cast(datafusion::logical_expr::Cast::new(
        Box::new(micros - offset),
        ts_type,
    ));
    let mut group = vec![(
        state.create_physical_expr(bucket_start, &df_schema)?,
        BUCKET.to_string(),
    )];
    for (i, d) in parts.shape.dims.iter().enumerate() {
        group.push((
            state.create_physical_expr(d.clone(), &df_schema)?,
            dim_name(i),
        ));
    }
    let mut measures = Vec::new();
    for m in &parts.shape.measures {
        #[allow(deprecated)]
        let (agg, _, _) = create_aggregate_expr_and_maybe_filter(
            m,
            &df_schema,
            &schema,
            state.execution_props(),
        )?;
        measures.push(agg);
    }
    let filter = datafusion::logical_expr::utils::conjunction(parts.shape.filters.clone())
        .map(|f| state.create_physical_expr(f, &df_schema))
        .transpose()?;
    RollupPlan::new(
        id,
        name,
        sql,
        parts.bucket,
        parts.shape,
        PhysicalGroupBy::new_single(group),
        measures,
        filter,
    )
}

/// Plans and compiles the view `name` defined by `sql` (its `SELECT`).
pub async fn compile_sql(
    state: &SessionState,
    id: u64,
    name: &str,
    sql: &str,
) -> Result<RollupPlan> {
    let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    let statements = datafusion::sql::sqlparser::parser::Parser::parse_sql(&dialect, sql)
        .map_err(|e| DataFusionError::Plan(format!("view {name}: {e}")))?;
    let [Statement::Query(query)] = statements.as_slice() else {
        return Err(DataFusionError::Plan(format!(
            "view {name} is not one SELECT"
        )));
    };
    let parts = view_parts(state, query).await?;
    compile(state, id, name.to_string(), sql.to_string(), parts)
}

/// The count tables seen as a view: each segment's sidecar counts rows per minute and
/// (service, host, level), which is this view's partials.
pub const COUNT_VIEW: &str = "logs_per_minute";
/// Its definition.
pub const COUNT_VIEW_SQL: &str = "SELECT date_trunc('minute', ts) AS minute, service, host, level, count(*) AS n FROM logs GROUP BY 1, 2, 3, 4";
