//! The query path shared by the simple and the extended protocol: parse with the
//! PostgreSQL-compatibility parser, answer fixtures, plan read-only SQL, stream Arrow as pg rows.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use arrow_pg::datatypes::arrow_schema_to_pg_fields;
use arrow_pg::datatypes::df::deserialize_parameters;
use arrow_pg::datatypes::encode_recordbatch;
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::sink::{Sink, SinkExt};
use futures::{Stream, StreamExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse, Response,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::PgWireBackendMessage;
use timberline_udfs::pg_compat::PgSession;
use timberline_udfs::sqlstate;
use tracing::Instrument;

use super::audit::{sqlstate_of, StatementAudit};
use super::error::{df_error, user_error};
use super::fixtures::{self, Fixture};
use super::params;
use super::session::{connection, stoppable, Connection};
use super::text_out::TextOutput;
use crate::metrics::metrics;
use crate::query::pg_types::PG_TYPE_KEY;
use crate::query::runtime::QueryRuntime;
use crate::query::statement::{Rows, SqlError, SqlRunner};

/// A parsed statement, ready to bind and run, with its text for the audit trail.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: Arc<str>,
    pub step: Step,
}

/// What running a statement takes.
#[derive(Debug, Clone)]
pub enum Step {
    Fixture(Fixture),
    /// A plan, and the (1-based) placeholders the SQL casts to `oid[]`: they are described
    /// to clients as `oid[]` (asyncpg's type introspection binds one) and decoded as `int4[]`.
    /// The third part: PostgreSQL's names of the columns the SQL leaves unnamed.
    Plan(Box<LogicalPlan>, Arc<[usize]>, Arc<[Option<String>]>),
    /// A rollup view statement.
    Ddl(super::ddl::Ddl),
}

/// Plans statements against the shared session.
pub struct Planner {
    ctx: SessionContext,
    store: Arc<crate::store::Store>,
    options: SQLOptions,
    runtime: Arc<QueryRuntime>,
    /// Longest SQL text parsed; longer is refused before any parsing (54000).
    max_query_bytes: usize,
}

impl Planner {
    /// Parses SQL text into statements (none for a comment-only text).
    fn parse(&self, sql: &str) -> PgWireResult<Vec<Statement>> {
        if sql.len() > self.max_query_bytes {
            return Err(user_error(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "statement too long: {} bytes of SQL, at most {} (--pg-max-query-bytes)",
                    sql.len(),
                    self.max_query_bytes
                ),
            ));
        }
        if super::depth::depth(sql).is_some_and(|d| d > super::depth::MAX_DEPTH) {
            return Err(user_error(
                sqlstate::STATEMENT_TOO_COMPLEX,
                format!(
                    "statement too complex: its expressions nest deeper than {} levels",
                    super::depth::MAX_DEPTH
                ),
            ));
        }
        super::passes::parse(sql)
            .map_err(|e| user_error(sqlstate::SYNTAX_ERROR, format!("syntax error: {e}")))
    }

    /// The shared session state with this connection's identity and settings in its config,
    /// where the `logs` table (tenant) and `current_setting` read them.
    fn state_for(&self, session: &PgSession) -> SessionState {
        let mut state = self.ctx.state();
        state
            .config_mut()
            .options_mut()
            .extensions
            .insert(session.clone());
        // Functions read the config captured here, at run time too.
        state.mark_start_execution();
        state
    }

    async fn prepare(&self, stmt: Statement, session: &PgSession) -> PgWireResult<Prepared> {
        let sql: Arc<str> = stmt.to_string().into();
        let step = self.plan_step(stmt, session).await?;
        Ok(Prepared { sql, step })
    }

    async fn plan_step(&self, stmt: Statement, session: &PgSession) -> PgWireResult<Step> {
        // PostgreSQL's names of unnamed columns, from the statement as the client wrote it.
        let names = super::column_names::unaliased(&stmt);
        // Every statement, a materialized view's SELECT too, goes through every pass.
        let stmt = super::passes::apply(stmt);
        if let Some(d) = super::ddl::classify(&stmt)? {
            return Ok(Step::Ddl(d));
        }
        if let Some(f) = fixtures::classify(&stmt) {
            return Ok(Step::Fixture(f));
        }
        let oid_arrays = params::oid_array_params(&stmt);
        let state = self.state_for(session);
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
            .await
            .map_err(df_error)?;
        let plan = super::text_out::signed_counts(plan).map_err(df_error)?;
        self.options.verify_plan(&plan).map_err(|e| {
            user_error(
                sqlstate::READ_ONLY_SQL_TRANSACTION,
                format!("read-only database: {}", e.message()),
            )
        })?;
        params::check_placeholders(&plan)?;
        Ok(Step::Plan(Box::new(plan), oid_arrays, names.into()))
    }

    /// Runs a prepared statement on `conn`, sending any notice it raises to `client` first;
    /// `audit` is finished when the statement ends (its last row, or its error).
    async fn run<C>(
        &self,
        client: &mut C,
        conn: &Connection,
        prepared: &Prepared,
        plan: Option<LogicalPlan>,
        format: &Format,
        audit: StatementAudit,
    ) -> PgWireResult<Response>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Step::Plan(p, _, names) = &prepared.step {
            return self.run_plan(conn, p, names, plan, format, audit).await;
        }
        let answered = self.run_step(client, conn, &prepared.step, format).await;
        match &answered {
            Ok(_) => audit.finish("ok", 0, 0, ""),
            Err(e) => audit.failed(e),
        }
        answered
    }

    /// Runs a fixture or a DDL statement.
    async fn run_step<C>(
        &self,
        client: &mut C,
        conn: &Connection,
        step: &Step,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match step {
            Step::Fixture(f) => {
                let (answer, changed) = {
                    let mut session = conn.session();
                    let before = fixtures::reported(&session);
                    let answer = fixtures::answer(f, &mut session, format.format_for(0))?;
                    let after = fixtures::reported(&session);
                    let changed: Vec<_> =
                        after.into_iter().filter(|a| !before.contains(a)).collect();
                    (answer, changed)
                };
                if let Some(notice) = answer.notice {
                    client
                        .send(PgWireBackendMessage::NoticeResponse(notice.into()))
                        .await?;
                }
                // Drivers track these (pgjdbc checks DateStyle and client_encoding).
                for (name, value) in changed {
                    client
                        .send(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                            name.to_string(),
                            value,
                        )))
                        .await?;
                }
                Ok(answer.response)
            }
            Step::Ddl(d) => {
                let session = conn.session().clone();
                let state = self.state_for(&session);
                super::ddl::run(d, &session, &self.ctx, &state, &self.store).await
            }
            Step::Plan(..) => Err(user_error(
                sqlstate::INTERNAL_ERROR,
                "a plan is run by run_plan",
            )),
        }
    }

    /// Runs a plan (`bound`: the plan with its parameters' values, when it has any).
    async fn run_plan(
        &self,
        conn: &Connection,
        p: &LogicalPlan,
        names: &[Option<String>],
        bound: Option<LogicalPlan>,
        format: &Format,
        audit: StatementAudit,
    ) -> PgWireResult<Response> {
        {
            {
                let started = Instant::now();
                let plan = bound.unwrap_or_else(|| p.clone());
                let kind = query_kind(&plan);
                // Its spans (plan, prune, scan, encode) are exported with `--otlp-traces-endpoint`.
                let span = tracing::info_span!("query", kind, tenant = tracing::field::Empty);
                let session = conn.session().clone();
                let stop = conn.start_query();
                let state = match crate::query::memory::scoped(self.state_for(&session)) {
                    Ok(s) => s,
                    Err(e) => {
                        let e = df_error(e);
                        audit.failed(&e);
                        return Err(e);
                    }
                };
                let df = DataFrame::new(state, plan);
                let fields = match pg_fields(df.schema().as_arrow(), format, names) {
                    Ok(f) => Arc::new(f),
                    Err(e) => {
                        audit.failed(&e);
                        return Err(e);
                    }
                };
                let zone = session.get("TimeZone").unwrap_or_default();
                let output = TextOutput::new(&zone, &fields);
                let tenant = session.tenant.name().unwrap_or_default().to_string();
                let budget = session.max_scan_bytes();
                span.record("tenant", tenant.as_str());
                let running = self.runtime.execute(&tenant, df, budget);
                let (scanned, batches) = match running.instrument(span.clone()).await {
                    Ok(b) => b,
                    Err(e) => {
                        metrics().query(kind, "error", started.elapsed());
                        let e = df_error(e);
                        audit.failed(&e);
                        return Err(e);
                    }
                };
                let encode_fields = output.encoding_fields(&fields);
                let query_span = span.clone();
                let rows = batches.flat_map(move |batch| {
                    let encoded: Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> =
                        match batch.and_then(|b| Ok(output.apply(b)?)) {
                            Ok(b) => {
                                // Open while the batch's rows are encoded and sent, one at a time.
                                let span = tracing::info_span!(parent: &query_span, "encode", rows = b.num_rows());
                                Box::new(encode_recordbatch(encode_fields.clone(), b).map(move |row| {
                                    let _open = &span;
                                    row
                                }))
                            }
                            Err(e) => Box::new(std::iter::once(Err(df_error(e)))),
                        };
                    futures::stream::iter(encoded)
                });
                // Errors raised while rows stream (casts, division by zero, …) get SQLSTATEs too.
                let rows = stoppable(rows.map(|r| r.map_err(with_sqlstate)), stop);
                // An aggregate a rollup view answered is timed as its own kind.
                let kind = match kind {
                    "aggregate" if scanned.rollup => "rollup",
                    kind => kind,
                };
                let timer = QueryTimer::new(kind, started, audit, scanned.bytes, span);
                let rows = timed(Box::pin(rows), timer);
                Ok(Response::Query(QueryResponse::new(fields, rows)))
            }
        }
    }
}

/// What a statement is, for the metrics: `point` (`nearest()`, `log_context()`), `search`
/// (`match()`, `LIKE`), `aggregate`, or `select`; found by walking its plan (subqueries too).
/// An aggregate that a rollup view answers is counted as `rollup` once its plan is known.
fn query_kind(plan: &LogicalPlan) -> &'static str {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::Expr;
    let (mut point, mut search, mut aggregate) = (false, false, false);
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Aggregate(_) => aggregate = true,
            LogicalPlan::TableScan(scan) if scan.table_name.table().starts_with("log_context") => {
                point = true
            }
            _ => {}
        }
        node.apply_expressions(|e| {
            e.apply(|x| {
                match x {
                    Expr::ScalarFunction(f) if f.name() == timberline_udfs::nearest::NEAREST => {
                        point = true
                    }
                    Expr::ScalarFunction(f) if f.name() == timberline_udfs::text::MATCH => {
                        search = true
                    }
                    Expr::Like(_) => search = true,
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    match (point, search, aggregate) {
        (true, _, _) => "point",
        (_, true, _) => "search",
        (_, _, true) => "aggregate",
        _ => "select",
    }
}

/// Counts a statement in the metrics when its rows are done: `ok` at their end, `error` if one
/// failed, `cancelled` if they were dropped first (deadline, cancel, disconnect).
struct QueryTimer {
    kind: &'static str,
    started: Instant,
    outcome: &'static str,
    audit: Option<StatementAudit>,
    rows: u64,
    bytes_scanned: u64,
    sqlstate: String,
    /// The statement's span: it ends, and the statement's log line is written, with the rows.
    span: tracing::Span,
}

impl QueryTimer {
    fn new(
        kind: &'static str,
        started: Instant,
        audit: StatementAudit,
        bytes_scanned: u64,
        span: tracing::Span,
    ) -> QueryTimer {
        QueryTimer {
            kind,
            started,
            outcome: "cancelled",
            audit: Some(audit),
            rows: 0,
            bytes_scanned,
            sqlstate: String::new(),
            span,
        }
    }
}

impl QueryTimer {
    /// The rows ended: counted now, `ok` unless one failed.
    fn end(mut self) {
        if self.outcome == "cancelled" {
            self.outcome = "ok";
        }
        drop(self);
    }
}

impl Drop for QueryTimer {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        metrics().query(self.kind, self.outcome, took);
        tracing::info!(
            parent: &self.span,
            kind = self.kind,
            outcome = self.outcome,
            rows = self.rows,
            bytes_scanned = self.bytes_scanned,
            duration_ms = took.as_secs_f64() * 1000.0,
            trace_id = %crate::telemetry::trace_id_of(&self.span),
            "query"
        );
        if let Some(audit) = self.audit.take() {
            let sqlstate = match self.outcome {
                "cancelled" => "57014",
                _ => self.sqlstate.as_str(),
            };
            audit.finish(self.outcome, self.rows, self.bytes_scanned, sqlstate);
        }
    }
}

/// `rows`, counted by `timer` when they end or are dropped.
fn timed<S>(rows: S, timer: QueryTimer) -> impl Stream<Item = PgWireResult<DataRow>> + Send
where
    S: Stream<Item = PgWireResult<DataRow>> + Send + Unpin,
{
    futures::stream::unfold((rows, timer), |(mut rows, mut timer)| async move {
        match rows.next().await {
            Some(Ok(row)) => {
                timer.rows += 1;
                Some((Ok(row), (rows, timer)))
            }
            Some(Err(e)) => {
                timer.outcome = "error";
                timer.sqlstate = sqlstate_of(&e);
                Some((Err(e), (rows, timer)))
            }
            None => {
                timer.end();
                None
            }
        }
    })
}

/// The row description of `schema`: columns named as PostgreSQL names them, `names` (from the
/// statement, see `column_names`) where the SQL left a column unnamed; when the names cannot be
/// lined up with the columns (`*`), a column DataFusion named after a whole function call takes
/// the function's name (`count(*)` → `count`). A column marked with a PostgreSQL type
/// ([`PG_TYPE_KEY`]: catalog identifiers are `name`) is reported as that type. A column of
/// untyped NULLs is `text`, as PostgreSQL resolves it, never `unknown` (drivers such as asyncpg
/// would try to introspect `unknown`, and loop).
fn pg_fields(
    schema: &Schema,
    format: &Format,
    names: &[Option<String>],
) -> PgWireResult<Vec<FieldInfo>> {
    let fields = arrow_schema_to_pg_fields(schema, format, None)?;
    let lined_up = names.len() == fields.len();
    Ok(fields
        .into_iter()
        .zip(schema.fields())
        .enumerate()
        .map(|(i, (f, arrow))| {
            // An alias the client wrote stands as written, even `"avg(x)"`.
            let given = if lined_up {
                names.get(i).cloned().flatten()
            } else {
                function_name(f.name())
            };
            // `SELECT n.oid, n.*`: the first `oid` was aliased apart from the second.
            let given = given.or_else(|| {
                (!lined_up)
                    .then(|| f.name().strip_prefix("__alias_").map(str::to_string))
                    .flatten()
            });
            let text = matches!(
                arrow.data_type(),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            );
            let list = matches!(arrow.data_type(), DataType::List(_));
            let declared = match arrow.metadata().get(PG_TYPE_KEY).map(String::as_str) {
                Some("name") if text => Some(Type::NAME),
                Some("varchar") if text => Some(Type::VARCHAR),
                Some("json") if text => Some(Type::JSON),
                Some("int2vector") if list => Some(Type::INT2_VECTOR),
                Some("oidvector") if list => Some(Type::OID_VECTOR),
                Some("_oid") if list => Some(Type::OID_ARRAY),
                _ => None,
            };
            let datatype = match declared {
                Some(t) => t,
                None if *f.datatype() == Type::UNKNOWN => Type::TEXT,
                None => f.datatype().clone(),
            };
            FieldInfo::new(
                given.unwrap_or_else(|| f.name().to_string()),
                f.table_id(),
                f.column_id(),
                datatype,
                f.format(),
            )
            .with_format_options(f.format_options().clone())
        })
        .collect())
}

fn function_name(column: &str) -> Option<String> {
    let open = column.find('(')?;
    let func = &column[..open];
    let simple = !func.is_empty() && func.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (simple && column.ends_with(')')).then(|| func.to_ascii_lowercase())
}

/// Gives a DataFusion error carried inside a pgwire error its SQLSTATE.
fn with_sqlstate(e: PgWireError) -> PgWireError {
    match e {
        PgWireError::ApiError(inner) => {
            match inner.downcast::<datafusion::error::DataFusionError>() {
                Ok(dfe) => df_error(*dfe),
                Err(other) => PgWireError::ApiError(other),
            }
        }
        other => other,
    }
}

/// Simple and extended query handler.
pub struct QueryEngine {
    planner: Arc<Planner>,
}

impl QueryEngine {
    /// The planner as the server's own clients use it (alert rules, MCP tools).
    pub fn runner(&self) -> Arc<dyn SqlRunner> {
        self.planner.clone()
    }

    pub fn new(
        ctx: SessionContext,
        store: Arc<crate::store::Store>,
        runtime: Arc<QueryRuntime>,
        max_query_bytes: usize,
    ) -> QueryEngine {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        QueryEngine {
            planner: Arc::new(Planner {
                ctx,
                store,
                options,
                runtime,
                max_query_bytes,
            }),
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for QueryEngine {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let peer = client.socket_addr();
        let statements = match super::ddl::refresh_of(query) {
            Some(refresh) => {
                let conn = connection(client)?;
                let audit = StatementAudit::new(&conn.session(), peer, query);
                let prepared = Prepared {
                    sql: query.into(),
                    step: Step::Ddl(refresh),
                };
                return match self
                    .planner
                    .run(client, &conn, &prepared, None, &Format::UnifiedText, audit)
                    .await
                {
                    Ok(r) => Ok(vec![r]),
                    Err(PgWireError::UserError(info)) => Ok(vec![Response::Error(info)]),
                    Err(e) => Err(e),
                };
            }
            None => match self.planner.parse(query) {
                Ok(statements) => statements,
                Err(e) => {
                    if let Ok(conn) = connection(client) {
                        StatementAudit::new(&conn.session(), peer, query).failed(&e);
                    }
                    return Err(e);
                }
            },
        };
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let conn = connection(client)?;
        let mut out = Vec::with_capacity(statements.len());
        for stmt in statements {
            // PostgreSQL stops a multi-statement query at its first error.
            let session = conn.session().clone();
            let audit = StatementAudit::new(&session, peer, &stmt.to_string());
            let step = match self.planner.prepare(stmt, &session).await {
                Ok(prepared) => {
                    self.planner
                        .run(client, &conn, &prepared, None, &Format::UnifiedText, audit)
                        .await
                }
                Err(e) => {
                    audit.failed(&e);
                    Err(e)
                }
            };
            match step {
                Ok(r) => out.push(r),
                Err(PgWireError::UserError(info)) => {
                    out.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl QueryParser for Planner {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        if let Some(refresh) = super::ddl::refresh_of(sql) {
            return Ok(Some(Prepared {
                sql: sql.into(),
                step: Step::Ddl(refresh),
            }));
        }
        let session = connection(client)?.session().clone();
        // A statement that fails to parse or plan never runs: it is audited here.
        let parsed = match self.parse(sql) {
            Ok(mut statements) => match statements.len() {
                0 => return Ok(None),
                1 => self.prepare(statements.remove(0), &session).await,
                _ => Err(user_error(
                    sqlstate::SYNTAX_ERROR,
                    "cannot insert multiple commands into a prepared statement",
                )),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &parsed {
            StatementAudit::new(&session, client.socket_addr(), sql).failed(e);
        }
        parsed.map(Some)
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        match &stmt.step {
            Step::Plan(plan, oid_arrays, _) => params::described_types(plan, oid_arrays),
            Step::Fixture(_) | Step::Ddl(_) => Ok(Vec::new()),
        }
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = format.cloned().unwrap_or(Format::UnifiedText);
        match &stmt.step {
            Step::Fixture(f) => Ok(fixtures::fields(f)
                .into_iter()
                .enumerate()
                .map(|(i, fi)| {
                    FieldInfo::new(
                        fi.name().into(),
                        None,
                        None,
                        fi.datatype().clone(),
                        format.format_for(i),
                    )
                })
                .collect()),
            Step::Plan(plan, _, names) => pg_fields(plan.schema().as_arrow(), &format, names),
            Step::Ddl(_) => Ok(Vec::new()),
        }
    }
}

/// A Bind's format codes must number 0, 1 or one per parameter (and per result column), as
/// PostgreSQL checks; other counts are refused before any code is looked up by index.
fn check_formats(portal: &Portal<Prepared>) -> PgWireResult<()> {
    if let Format::Individual(codes) = &portal.parameter_format {
        if codes.len() != portal.parameter_len() {
            return Err(user_error(
                sqlstate::PROTOCOL_VIOLATION,
                format!(
                    "bind message has {} parameter formats but {} parameters",
                    codes.len(),
                    portal.parameter_len()
                ),
            ));
        }
    }
    if let Format::Individual(codes) = &portal.result_column_format {
        let columns = match &portal.statement.statement.step {
            Step::Plan(plan, ..) => plan.schema().fields().len(),
            Step::Fixture(f) => fixtures::fields(f).len(),
            Step::Ddl(_) => 0,
        };
        if codes.len() != columns {
            return Err(user_error(
                sqlstate::PROTOCOL_VIOLATION,
                format!(
                    "bind message has {} result formats but query has {columns} columns",
                    codes.len()
                ),
            ));
        }
    }
    Ok(())
}

#[async_trait]
impl ExtendedQueryHandler for QueryEngine {
    type Statement = Prepared;
    type QueryParser = Planner;

    fn query_parser(&self) -> Arc<Planner> {
        self.planner.clone()
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Prepared>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let inferred = self.planner.get_parameter_types(&target.statement)?;
        let n = inferred.len().max(target.parameter_types.len());
        let params = (0..n)
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .filter(|t| *t != Type::UNKNOWN)
                    .or_else(|| inferred.get(i).cloned())
                    .unwrap_or(Type::UNKNOWN)
            })
            .collect();
        let fields = self.planner.get_result_schema(&target.statement, None)?;
        Ok(DescribeStatementResponse::new(params, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        check_formats(portal)?;
        let fields = self.planner.get_result_schema(
            &portal.statement.statement,
            Some(&portal.result_column_format),
        )?;
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = connection(client)?;
        let prepared = &portal.statement.statement;
        let audit = StatementAudit::new(&conn.session(), client.socket_addr(), &prepared.sql);
        if let Err(e) = check_formats(portal) {
            audit.failed(&e);
            return Err(e);
        }
        let bound = match bind(portal) {
            Ok(b) => b,
            Err(e) => {
                audit.failed(&e);
                return Err(e);
            }
        };
        self.planner
            .run(
                client,
                &conn,
                prepared,
                bound,
                &portal.result_column_format,
                audit,
            )
            .await
    }
}

/// The portal's plan with its parameters' values, when it has parameters.
fn bind(portal: &Portal<Prepared>) -> PgWireResult<Option<LogicalPlan>> {
    {
        let bound = match &portal.statement.statement.step {
            Step::Plan(plan, ..) if portal.parameter_len() > 0 => {
                let types = params::placeholder_types(plan)?;
                let inferred: Vec<Option<&DataType>> = (1..=portal.parameter_len())
                    .map(|i| types.get(&format!("${i}")))
                    .collect();
                let params = deserialize_parameters(portal, &inferred)?;
                Some(
                    (**plan)
                        .clone()
                        .with_param_values(params)
                        .map_err(df_error)?,
                )
            }
            _ => None,
        };
        Ok(bound)
    }
}

#[async_trait]
impl SqlRunner for Planner {
    async fn run(
        &self,
        user: &str,
        tenant: &str,
        sql: &str,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<Rows, SqlError> {
        let session = PgSession::new(
            user,
            timberline_udfs::pg_compat::Tenant::One(tenant.to_string()),
        );
        let mut statements = self.parse(sql).map_err(sql_error)?;
        let (Some(stmt), None) = (statements.pop(), statements.pop()) else {
            return Err(SqlError {
                sqlstate: sqlstate::SYNTAX_ERROR.into(),
                message: "give exactly one SQL statement".into(),
            });
        };
        let Step::Plan(plan, ..) = self.plan_step(stmt, &session).await.map_err(sql_error)? else {
            return Err(SqlError {
                sqlstate: sqlstate::FEATURE_NOT_SUPPORTED.into(),
                message: "only a query (SELECT, WITH, VALUES, EXPLAIN) can be run here".into(),
            });
        };
        let state = crate::query::memory::scoped(self.state_for(&session))
            .map_err(|e| sql_error(df_error(e)))?;
        let df = DataFrame::new(state, *plan);
        let schema = Arc::new(df.schema().as_arrow().clone());
        let (_, batches) = self
            .runtime
            .execute(tenant, df, None)
            .await
            .map_err(|e| sql_error(df_error(e)))?;
        let mut batches = std::pin::pin!(batches);
        let mut rows = Rows {
            schema,
            batches: Vec::new(),
            truncated: false,
        };
        let (mut kept, mut bytes) = (0usize, 0usize);
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| sql_error(df_error(e)))?;
            let room = max_rows.saturating_sub(kept);
            bytes += batch.get_array_memory_size();
            if batch.num_rows() > room || bytes > max_bytes {
                rows.batches
                    .push(batch.slice(0, room.min(batch.num_rows())));
                rows.truncated = true;
                break;
            }
            kept += batch.num_rows();
            rows.batches.push(batch);
        }
        Ok(rows)
    }
}

/// A front-end error as the server's own clients see it.
fn sql_error(e: PgWireError) -> SqlError {
    match e {
        PgWireError::UserError(info) => SqlError {
            sqlstate: info.code.clone(),
            message: info.message.clone(),
        },
        other => SqlError {
            sqlstate: sqlstate::INTERNAL_ERROR.into(),
            message: other.to_string(),
        },
    }
}
