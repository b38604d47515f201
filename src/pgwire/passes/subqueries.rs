//! Rewrites of client SQL that DataFusion cannot plan as written but whose answer we know.
//!
//! - Grafana's table list expands `search_path` with `generate_series(...) AS i,
//!   string_to_array(...) s` and the bare keyword `user`; it becomes an `unnest` over the
//!   session's `search_path` (before parsing, so the parser's own stand-in does not apply).
//! - pgjdbc's getPrimaryKeys (`_pg_expandarray(indkey)`, record field access) is answered
//!   with its columns and no rows: no table here has a primary key.
//! - `'pg_catalog.array_in'::regproc` (pgjdbc's type cache) becomes `'array_in'`: the
//!   `typinput` it is compared with holds function names.
//! - A correlated scalar subquery over `pg_catalog` in a WHERE clause is a key lookup
//!   (pgjdbc's getTypeInfo asks `(SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid =
//!   t.typrelid)`); DataFusion wants it aggregated, so its one value becomes `max(value)`, the
//!   same answer for the zero or one row a lookup finds.
//! - A correlated scalar subquery over `pg_catalog` inside a select list (SQLAlchemy's column
//!   reflection asks for column defaults, identity options and collations this way) becomes
//!   NULL: no column of ours has a default, an identity or a non-default collation. Over any
//!   other table it is kept as written ([`DataSubqueries`]): DataFusion answers it, or refuses
//!   it with an error, never with a NULL that is not the answer.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, visit_relations, Expr, GroupByExpr, ObjectNamePart,
    Query, SelectItem, SetExpr, Statement, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Grafana's `search_path` expansion, whitespace and case as it comes.
static GRAFANA_SEARCH_PATH: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?is)SELECT\s+CASE\s+WHEN\s+trim\(s\[i\]\)\s*=\s*'"\$user"'\s+THEN\s+user\s+ELSE\s+trim\(s\[i\]\)\s+END\s+FROM\s+generate_series\(\s*array_lower\(\s*string_to_array\(\s*current_setting\(\s*'search_path'\s*\)\s*,\s*','\s*\)\s*,\s*1\s*\)\s*,\s*array_upper\(\s*string_to_array\(\s*current_setting\(\s*'search_path'\s*\)\s*,\s*','\s*\)\s*,\s*1\s*\)\s*\)\s+as\s+i\s*,\s*string_to_array\(\s*current_setting\(\s*'search_path'\s*\)\s*,\s*','\s*\)\s+s"#,
    )
    .ok()
});

const SEARCH_PATH_ITEMS: &str = "SELECT CASE WHEN trim(s) = '\"$user\"' THEN current_user ELSE trim(s) END \
     FROM (SELECT unnest(string_to_array(current_setting('search_path'), ',')) AS s) AS search_path_items";

/// `'pg_catalog.array_in'::regproc` and the like.
static REGPROC_LITERAL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)'(?:pg_catalog\.)?([a-z_][a-z0-9_]*)'\s*::\s*(?:pg_catalog\.)?regproc\b").ok()
});

/// Primary-key lookups (pgjdbc's getPrimaryKeys expands `pg_index.indkey` with
/// `information_schema._pg_expandarray`): no table of ours has a primary key.
const NO_PRIMARY_KEYS: &str = "SELECT NULL::text AS table_cat, ''::text AS table_schem, \
     ''::text AS table_name, ''::text AS column_name, 0::smallint AS key_seq, ''::text AS pk_name \
     WHERE false";

/// Rewrites applied to the SQL text before it is parsed.
pub fn rewrite_text(sql: &str) -> Cow<'_, str> {
    if sql.contains("_pg_expandarray") && sql.contains("indisprimary") {
        return Cow::Borrowed(NO_PRIMARY_KEYS);
    }
    let mut out = Cow::Borrowed(sql);
    if let Some(re) = GRAFANA_SEARCH_PATH.as_ref() {
        if let Cow::Owned(s) = re.replace_all(&out, regex::NoExpand(SEARCH_PATH_ITEMS)) {
            out = Cow::Owned(s);
        }
    }
    // pg_type.typinput holds function names, so a regproc literal compares as its name.
    if let Some(re) = REGPROC_LITERAL.as_ref() {
        if let Cow::Owned(s) = re.replace_all(&out, "'$1'") {
            out = Cow::Owned(s);
        }
    }
    out
}

/// Subqueries that read data tables (`logs`, `segments`), kept out of the pg-compatibility
/// parser's reach: it replaces a correlated select-list subquery by NULL and gives an
/// uncorrelated one `LIMIT 1` (hiding PostgreSQL's "more than one row" error), which is right
/// for `pg_catalog` lookups and a wrong answer over logs. [`DataSubqueries::hide`] swaps each for
/// a marker call before that parser sees the text; [`DataSubqueries::put_back`] swaps them back.
#[derive(Debug, Default)]
pub struct DataSubqueries(Vec<Expr>);

const MARKER: &str = "__timberline_subquery_";

impl DataSubqueries {
    /// `statements` with their data subqueries replaced by markers, as SQL text (`None` if
    /// there are none).
    pub fn hide(statements: &mut [Statement]) -> Option<(String, DataSubqueries)> {
        let mut hidden = DataSubqueries::default();
        for stmt in statements.iter_mut() {
            let _ = stmt.visit(&mut hidden);
        }
        if hidden.0.is_empty() {
            return None;
        }
        let text = statements
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(";\n");
        Some((text, hidden))
    }

    /// Puts the hidden subqueries back in place of their markers.
    pub fn put_back(&self, statements: &mut [Statement]) {
        for stmt in statements.iter_mut() {
            let _ = visit_expressions_mut(stmt, |e| {
                if let Expr::Function(f) = e {
                    let name = f.name.to_string();
                    let index = name
                        .strip_prefix(MARKER)
                        .and_then(|n| n.parse::<usize>().ok());
                    if let Some(original) = index.and_then(|i| self.0.get(i)) {
                        *e = original.clone();
                    }
                }
                ControlFlow::<()>::Continue(())
            });
        }
    }
}

impl VisitorMut for DataSubqueries {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Subquery(q) = expr {
            if reads_data_tables(q) {
                let marker = Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(&format!("{MARKER}{}()", self.0.len()))
                    .and_then(|mut p| p.parse_expr());
                if let Ok(marker) = marker {
                    self.0.push(std::mem::replace(expr, marker));
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Applies every rewrite to `stmt`.
pub fn rewrite(stmt: &mut Statement) {
    let _ = stmt.visit(&mut CatalogSubqueries);
}

struct CatalogSubqueries;

impl VisitorMut for CatalogSubqueries {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            if let Some(selection) = select.selection.as_mut() {
                let _ = visit_expressions_mut(selection, |e| {
                    if let Expr::Subquery(q) = e {
                        if is_correlated_catalog_lookup(q) {
                            aggregate_single_value(q);
                        }
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
            for item in &mut select.projection {
                let expr = match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
                    _ => continue,
                };
                let _ = visit_expressions_mut(expr, |e| {
                    if let Expr::Subquery(q) = e {
                        if is_correlated_catalog_lookup(q) {
                            *e = Expr::Value(Value::Null.with_empty_span());
                        }
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
        }
        ControlFlow::Continue(())
    }
}

/// `SELECT v FROM …` → `SELECT max(v) FROM …` (left alone if it is not that shape).
fn aggregate_single_value(q: &mut Query) {
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    if select.projection.len() != 1
        || !matches!(select.group_by, GroupByExpr::Expressions(ref v, _) if v.is_empty())
    {
        return;
    }
    let Some(item) = select.projection.first_mut() else {
        return;
    };
    let expr = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return,
    };
    let wrapped = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&format!("max({expr})"))
        .and_then(|mut p| p.parse_expr());
    if let Ok(w) = wrapped {
        *expr = w;
    }
}

/// A subquery reading only `pg_catalog` tables that names a column of an outer table.
fn is_correlated_catalog_lookup(q: &Query) -> bool {
    let Some(own) = catalog_tables(q) else {
        return false;
    };
    let mut correlated = false;
    let _ = visit_expressions(q, |e| {
        if let Expr::CompoundIdentifier(ids) = e {
            // schema.table.column or table.column
            let table = match ids.len() {
                3 => ids.get(1),
                2 => ids.first(),
                _ => None,
            };
            if let Some(t) = table {
                if !own.contains(&t.value.to_ascii_lowercase()) {
                    correlated = true;
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    correlated
}

/// Whether a query reads one of our data tables (`logs`, `segments`), at any depth.
fn reads_data_tables(q: &Query) -> bool {
    let mut found = false;
    let _ = visit_relations(q, |name| {
        let table = name.0.last().and_then(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i.value.to_ascii_lowercase()),
            _ => None,
        });
        found |= matches!(table.as_deref(), Some("logs" | "segments"));
        ControlFlow::<()>::Continue(())
    });
    found
}

/// The names and aliases of a select's tables, if every one is a `pg_catalog` table.
fn catalog_tables(q: &Query) -> Option<HashSet<String>> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let mut own: HashSet<String> = HashSet::new();
    let mut all_catalog = !select.from.is_empty();
    let relations = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for rel in relations {
        match rel {
            TableFactor::Table { name, alias, .. } => {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| match p {
                        ObjectNamePart::Identifier(i) => Some(i.value.to_ascii_lowercase()),
                        _ => None,
                    })
                    .collect();
                let table = parts.last().cloned().unwrap_or_default();
                all_catalog &= table.starts_with("pg_")
                    && parts.len() <= 2
                    && parts
                        .first()
                        .is_some_and(|s| s == "pg_catalog" || s.starts_with("pg_"));
                own.insert(table);
                if let Some(a) = alias {
                    own.insert(a.name.value.to_ascii_lowercase());
                }
            }
            _ => all_catalog = false,
        }
    }
    all_catalog.then_some(own)
}
