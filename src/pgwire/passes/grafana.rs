//! Pass `grafana_search_path`: Grafana's table list expands `search_path` with
//! `generate_series(array_lower(…), array_upper(…)) AS i, string_to_array(…) s` and the bare
//! keyword `user`. That subquery becomes an `unnest` of the session's `search_path`, the same
//! list of schemas. It is found by its syntax tree, whatever its spacing or case.

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::{Query, Statement, VisitMut, VisitorMut};

use super::parse;

const EXPANSION: &str = "SELECT CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END \
     FROM generate_series(array_lower(string_to_array(current_setting('search_path'), ','), 1), \
     array_upper(string_to_array(current_setting('search_path'), ','), 1)) AS i, \
     string_to_array(current_setting('search_path'), ',') s";

const SEARCH_PATH_ITEMS: &str = "SELECT CASE WHEN trim(s) = '\"$user\"' THEN current_user ELSE trim(s) END \
     FROM (SELECT unnest(string_to_array(current_setting('search_path'), ',')) AS s) AS search_path_items";

/// The expansion as the parser prints it, and its replacement.
static REWRITE: LazyLock<Option<(String, Query)>> =
    LazyLock::new(|| Some((query(EXPANSION)?.to_string(), query(SEARCH_PATH_ITEMS)?)));

fn query(sql: &str) -> Option<Query> {
    match parse(sql).ok()?.pop()? {
        Statement::Query(q) => Some(*q),
        _ => None,
    }
}

/// Replaces Grafana's expansion of `search_path` wherever it stands in `stmt`.
pub fn search_path(mut stmt: Statement) -> Statement {
    if let Some((pattern, replacement)) = REWRITE.as_ref() {
        let _ = stmt.visit(&mut SearchPath {
            pattern,
            replacement,
        });
    }
    stmt
}

struct SearchPath<'a> {
    pattern: &'a str,
    replacement: &'a Query,
}

impl VisitorMut for SearchPath<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        // Printing is cheap next to planning, and only a query with `generate_series` is printed.
        if q.body.to_string().contains("generate_series")
            && q.to_string().eq_ignore_ascii_case(self.pattern)
        {
            *q = self.replacement.clone();
        }
        ControlFlow::Continue(())
    }
}
