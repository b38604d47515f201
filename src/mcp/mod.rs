//! `/mcp`: the Model Context Protocol endpoint (streamable HTTP, the official `rmcp` SDK) with
//! the read-only tools a triage agent needs — `describe_logs`, `log_volume`, `search_logs`,
//! `nearest`, `log_context`, `trace`, `top_patterns`, `run_sql` — each run as SQL for the API
//! key's tenant (so count tables, indexes and the tenant's limits apply), each answer capped in
//! rows and ~100 KB with `truncated` and the offset of the next page; a failure is a tool error
//! with the reason, never a dropped session.
//!
//! - [`sql`]: the tools' arguments checked and turned into SQL; [`answer`]: rows as capped JSON,
//!   and message templates.

pub mod answer;
pub mod sql;

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::schemars::JsonSchema;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::KeyTenant;
use crate::query::statement::{Rows, SqlRunner};
use answer::{page, paged, template};
use sql::{literal, Filters};

/// The pg user the tools' SQL runs as.
pub const MCP_USER: &str = "_mcp";
/// Most rows of a page; most messages `top_patterns` reads.
const MAX_PAGE: usize = 1000;
const PATTERN_SAMPLE: usize = 20_000;
/// Most Arrow bytes a tool's statement may hold before it is cut.
const STATEMENT_BYTES: usize = 64 << 20;
/// Longest a tool's statement may run; past it the call is a tool error.
const STATEMENT_TIME: std::time::Duration = std::time::Duration::from_secs(30);
/// Tool calls running at once, of all clients; more wait for a place.
const CALLS_AT_ONCE: usize = 16;
/// Largest `offset` a page may start at.
const MAX_OFFSET: usize = 1_000_000;
/// The columns a row of `logs` is shown with.
const ROW_COLUMNS: &str = "ts, service, host, level, msg, trace_id";

/// The `/mcp` service, as the HTTP router mounts it.
pub type McpService = StreamableHttpService<Triage, NeverSessionManager>;

/// The service: stateless (no session to keep per client), JSON answers.
pub fn service(runner: Arc<dyn SqlRunner>) -> McpService {
    let places = Arc::new(tokio::sync::Semaphore::new(CALLS_AT_ONCE));
    // Any Host: every request carries an API key, which a rebinding page cannot add.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_sse_keep_alive(None)
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(1 << 20);
    StreamableHttpService::new(
        move || Ok(Triage::new(runner.clone(), places.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// The tools, for one request.
#[derive(Clone)]
pub struct Triage {
    runner: Arc<dyn SqlRunner>,
    /// Places of the tool calls running at once (each may hold [`STATEMENT_BYTES`]).
    places: Arc<tokio::sync::Semaphore>,
    tool_router: ToolRouter<Self>,
}

/// A time range and the row filters the tools share.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct RangeArgs {
    /// From when: an RFC 3339 time, or a duration ago (`15m`, `2h`); default 1h.
    pub since: Option<String>,
    /// Until when (RFC 3339 or a duration ago); default now.
    pub until: Option<String>,
    pub service: Option<String>,
    pub host: Option<String>,
    /// A level: TRACE, DEBUG, INFO, WARN, ERROR, FATAL.
    pub level: Option<String>,
    /// A full-text query over the message, in `match()` syntax: `"card declined" -retry`.
    pub query: Option<String>,
}

impl RangeArgs {
    fn filters(&self, default_since: Option<&'static str>) -> Filters<'_> {
        Filters {
            since: self.since.as_deref().or(default_since),
            until: self.until.as_deref(),
            service: self.service.as_deref(),
            host: self.host.as_deref(),
            level: self.level.as_deref(),
            query: self.query.as_deref(),
        }
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct DescribeArgs {
    /// From when (RFC 3339 or a duration ago); default 24h.
    pub since: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct VolumeArgs {
    #[serde(flatten)]
    pub range: RangeArgs,
    /// Bucket width (`1m`, `1h`); default: about 60 buckets over the range.
    pub bucket: Option<String>,
    /// Split each bucket by `level`, `service` or `host`.
    pub by: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    #[serde(flatten)]
    pub range: RangeArgs,
    /// Rows per page (default 50, at most 1000).
    pub limit: Option<usize>,
    /// Rows to skip: the `next_offset` of the previous page.
    pub offset: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct NearestArgs {
    /// The moment: RFC 3339, or a duration ago.
    pub ts: String,
    pub service: Option<String>,
    pub host: Option<String>,
    pub level: Option<String>,
    /// A full-text query the rows must match.
    pub query: Option<String>,
    /// How many rows (default 10, at most 1000).
    pub count: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ContextArgs {
    /// The moment: RFC 3339, or a duration ago.
    pub ts: String,
    pub host: String,
    pub service: String,
    /// Rows before and after (default 20 each, at most 500).
    pub before: Option<usize>,
    pub after: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct TraceArgs {
    pub trace_id: String,
    /// From when (default 24h).
    pub since: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct PatternsArgs {
    #[serde(flatten)]
    pub range: RangeArgs,
    /// How many templates (default 20, at most 200).
    pub limit: Option<usize>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct SqlArgs {
    /// One read-only statement over `logs` (PostgreSQL syntax, Timberline's functions).
    pub sql: String,
    /// Rows per page (default 200, at most 1000).
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

type ToolResult = Result<String, String>;

fn tenant_of(parts: &axum::http::request::Parts) -> Result<String, String> {
    parts
        .extensions
        .get::<KeyTenant>()
        .map(|t| t.0.clone())
        .ok_or_else(|| "no API key's tenant on this request".to_string())
}

#[tool_router]
impl Triage {
    pub fn new(runner: Arc<dyn SqlRunner>, places: Arc<tokio::sync::Semaphore>) -> Triage {
        Triage {
            runner,
            places,
            tool_router: Self::tool_router(),
        }
    }

    /// Runs `sql` for the request's tenant, keeping at most `max_rows` rows.
    async fn run(
        &self,
        parts: &axum::http::request::Parts,
        sql: &str,
        max_rows: usize,
    ) -> Result<Rows, String> {
        let tenant = tenant_of(parts)?;
        let _place = self
            .places
            .acquire()
            .await
            .map_err(|_| "the server is shutting down".to_string())?;
        let run = self
            .runner
            .run(MCP_USER, &tenant, sql, max_rows, STATEMENT_BYTES);
        match tokio::time::timeout(STATEMENT_TIME, run).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "the statement ran longer than {}s and was stopped; narrow its time range or filters",
                STATEMENT_TIME.as_secs()
            )),
        }
    }

    /// A page of `sql`'s rows from `offset` (the statement reads one more to know if more exist).
    async fn page_of(
        &self,
        parts: &axum::http::request::Parts,
        sql: &str,
        limit: usize,
        offset: usize,
    ) -> ToolResult {
        let rows = self
            .run(
                parts,
                &format!("{sql} LIMIT {} OFFSET {offset}", limit + 1),
                limit + 1,
            )
            .await?;
        Ok(paged(page(&rows.batches, 0, limit, rows.truncated), offset).to_string())
    }

    #[tool(
        description = "What logs there are: rows, first and last time, and the volume by service, host and level (24h unless `since` says otherwise). Start here."
    )]
    async fn describe_logs(
        &self,
        Parameters(args): Parameters<DescribeArgs>,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> ToolResult {
        let f = Filters {
            since: Some(args.since.as_deref().unwrap_or("24h")),
            ..Default::default()
        }
        .sql()
        .map_err(|e| e.to_string())?;
        let totals = self
            .run(
                &parts,
                &format!(
                    "SELECT count(*) AS n, min(ts) AS first, max(ts) AS last FROM logs WHERE {f}"
                ),
                1,
            )
            .await?;
        let mut out = json!({
            "columns": "ts timestamptz, ingest_ts timestamptz, service text, host text, level text, msg text, trace_id text, attrs json text (attrs->>'key')",
            "totals": page(&totals.batches, 0, 1, false).rows.first().cloned().unwrap_or(Value::Null),
        });
        for by in ["service", "host", "level"] {
            let sql = format!(
                "SELECT {by}, count(*) AS n FROM logs WHERE {f} GROUP BY {by} ORDER BY n DESC LIMIT 51"
            );
            let rows = self.run(&parts, &sql, 51).await?;
            let p = page(&rows.batches, 0, 50, false);
            out[by] = json!({ "rows": p.rows, "truncated": p.truncated });
        }
        Ok(out.to_string())
    }

    #[tool(
        description = "Log volume over time: counts per time bucket (answered from count tables where they fit), optionally split by level, service or host."
    )]
    async fn log_volume(
        &self,
        Parameters(args): Parameters<VolumeArgs>,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> ToolResult {
        let f = args
            .range
            .filters(Some(sql::DEFAULT_SINCE))
            .sql()
            .map_err(|e| e.to_string())?;
        let range = sql::range(args.range.since.as_deref(), args.range.until.as_deref())
            .map_err(|e| e.to_string())?;
        let bucket = sql::bucket(range, args.bucket.as_deref()).map_err(|e| e.to_string())?;
        let by = match args.by.as_deref() {
            None => None,
            Some(b @ ("level" | "service" | "host")) => Some(b),
            Some(other) => return Err(format!("by {other:?}: use level, service or host")),
        };
        let (select, group) = match by {
            Some(b) => (format!(", {b}"), ", 2".to_string()),
            None => (String::new(), String::new()),
        };
        let sql = format!(
            "SELECT date_bin(INTERVAL '{} seconds', ts, TIMESTAMPTZ '1970-01-01T00:00:00Z') AS bucket{select}, count(*) AS n \
             FROM logs WHERE {f} GROUP BY 1{group} ORDER BY 1{group}",
            bucket.as_secs()
        );
        let rows = self.run(&parts, &sql, 10_001).await?;
        let mut v = paged(page(&rows.batches, 0, 10_000, rows.truncated), 0);
        v["bucket_seconds"] = json!(bucket.as_secs());
        Ok(v.to_string())
    }

    #[tool(
        description = "Search log rows, newest first: full-text `query` (match() syntax: words, \"phrases\", -not, field:value), service, host, level and a time range (1h unless `since` says otherwise). Pages with `offset`."
    )]
    async fn search_logs(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> ToolResult {
        let f = args
            .range
            .filters(Some(sql::DEFAULT_SINCE))
            .sql()
            .map_err(|e| e.to_string())?;
        let limit = args.limit.unwrap_or(50).clamp(1, MAX_PAGE);
        let sql = format!("SELECT {ROW_COLUMNS} FROM logs WHERE {f} ORDER BY ts DESC, msg");
        self.page_of(&parts, &sql, limit, args.offset.unwrap_or(0))
            .await
    }

    #[tool(
        description = "The rows nearest in time to a moment (before or after), optionally of one service, host or level or matching a full-text query: what happened at 10:30:45?"
    )]
    async fn nearest(
        &self,
        Parameters(args): Parameters<NearestArgs>,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> ToolResult {
        let at = sql::time("ts", &args.ts).map_err(|e| e.to_string())?;
        let count = args.count.unwrap_or(10).clamp(1, MAX_PAGE);
        let f = Filters {
            service: args.service.as_deref(),
            host: args.host.as_deref(),
            level: args.level.as_deref(),
            query: args.query.as_deref(),
            ..Default::default()
        }
        .sql()
        .map_err(|e| e.to_string())?;
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM logs WHERE nearest(ts, {at}, {count}) AND {f} ORDER BY ts"
        );
        let rows = self.run(&parts, &sql, count).await?;
        Ok(paged(page(&rows.batches, 0, count, false), 0).to_string())
    }

    #[tool(
        description = "The rows of one host and service around a moment: `before` rows before it and `after` rows after it, in order."
    )]
    async fn log_context(
        &self,
        Parameters(args): Parameters<ContextArgs>,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> ToolResult {
        let at = sql::time("ts", &args.ts).map_err(|e| e.to_string())?;
        let before = args.before.unwrap_or(20).min(500);
        let after = args.after.unwrap_or(20).min(500);
        let sql = format!(
            "SELECT ts, service, host, level, msg, trace_id FROM log_context({at}, {}, {}, {before}, {after})",
            literal(&args.host),
            literal(&args.service)
        );
        let max = before + after + 1;
        let rows = self.run(&parts, &sql, max).await?;
        Ok(paged(page(&rows.batches, 0, max, false), 0).to_string())
    }

    #[tool(
        description = "Every row of one trace id, in time order (24h unless `since` says otherwise)."
    )]
    async fn trace(
        &self,
        Parameters(args): Parameters<TraceArgs>,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> ToolResult {
        let id = args.trace_id.trim();
        if id.is_empty() || id.len() > 128 {
            return Err("trace_id: give the trace's id (at most 128 characters)".into());
        }
        let f = Filters {
            since: Some(args.since.as_deref().unwrap_or("24h")),
            ..Default::default()
        }
        .sql()
        .map_err(|e| e.to_string())?;
        let limit = args.limit.unwrap_or(500).clamp(1, MAX_PAGE);
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM logs WHERE trace_id = {} AND {f} ORDER BY ts, msg",
            literal(id)
        );
        self.page_of(&parts, &sql, limit, args.offset.unwrap_or(0))
            .await
    }

    #[tool(
        description = "The most frequent message templates in a range (numbers, ids, addresses and quoted values masked), with counts and an example: what is this service saying?"
    )]
    async fn top_patterns(
        &self,
        Parameters(args): Parameters<PatternsArgs>,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> ToolResult {
        let f = args
            .range
            .filters(Some(sql::DEFAULT_SINCE))
            .sql()
            .map_err(|e| e.to_string())?;
        let limit = args.limit.unwrap_or(20).clamp(1, 200);
        let sql = format!("SELECT msg FROM logs WHERE {f} ORDER BY ts DESC LIMIT {PATTERN_SAMPLE}");
        let rows = self.run(&parts, &sql, PATTERN_SAMPLE).await?;
        let mut counts: HashMap<String, (u64, String)> = HashMap::new();
        let mut read = 0usize;
        for batch in &rows.batches {
            let msgs = datafusion::arrow::compute::cast(
                batch.column(0),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .map_err(|e| e.to_string())?;
            let Some(msgs) = msgs
                .as_any()
                .downcast_ref::<datafusion::arrow::array::StringArray>()
            else {
                continue;
            };
            for m in msgs.iter().flatten() {
                read += 1;
                let e = counts
                    .entry(template(m))
                    .or_insert_with(|| (0, m.chars().take(300).collect()));
                e.0 += 1;
            }
        }
        let mut top: Vec<_> = counts.into_iter().collect();
        top.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
        let more = top.len() > limit;
        let patterns: Vec<Value> = top
            .into_iter()
            .take(limit)
            .map(|(t, (n, example))| json!({"template": t, "count": n, "example": example}))
            .collect();
        Ok(json!({
            "patterns": patterns,
            "rows_read": read,
            "sampled": read >= PATTERN_SAMPLE,
            "truncated": more,
        })
        .to_string())
    }

    #[tool(
        description = "Run one read-only SQL statement (PostgreSQL syntax over the `logs` table, with match(), nearest(), log_context()). Answers are capped; page with `offset`."
    )]
    async fn run_sql(
        &self,
        Parameters(args): Parameters<SqlArgs>,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> ToolResult {
        let limit = args.limit.unwrap_or(200).clamp(1, MAX_PAGE);
        let offset = args.offset.unwrap_or(0).min(MAX_OFFSET);
        let rows = self.run(&parts, &args.sql, offset + limit + 1).await?;
        let p = page(&rows.batches, offset, limit, rows.truncated);
        if p.rows.is_empty() && rows.truncated {
            return Err(format!(
                "the answer was cut at {} MiB of memory before row {offset}; select fewer or narrower columns, or filter",
                STATEMENT_BYTES >> 20
            ));
        }
        Ok(paged(p, offset).to_string())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Triage {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("timberline", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Timberline's logs, read-only. Start with describe_logs, then log_volume to find \
                 when something changed, top_patterns and search_logs to see what, nearest and \
                 log_context around a moment, trace for one request. Times are RFC 3339 or a \
                 duration ago (15m). Answers are capped: when `truncated` is true, ask again \
                 with `offset` = `next_offset`.",
            )
    }
}
