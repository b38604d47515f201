//! The DDL we accept: `CREATE MATERIALIZED VIEW`, `DROP MATERIALIZED VIEW` and
//! `REFRESH MATERIALIZED VIEW`, for the administrator (the bootstrap user) only. Every other
//! DDL stays refused as a read-only database refuses it (25006, in `fixtures`).

use datafusion::sql::sqlparser::ast::{ObjectName, ObjectType, Query, Statement};
use pgwire::api::results::{Response, Tag};
use pgwire::error::PgWireResult;
use timberline_udfs::pg_compat::PgSession;
use timberline_udfs::sqlstate;

use super::error::{df_error, user_error};
use crate::auth::BOOTSTRAP_USER;

/// A rollup view statement.
#[derive(Debug, Clone)]
pub enum Ddl {
    Create {
        name: String,
        query: Box<Query>,
        if_not_exists: bool,
    },
    Drop {
        names: Vec<String>,
        if_exists: bool,
    },
    Refresh(String),
}

/// The view a name designates (`public.x` and `x` are the same; quoted names keep their case,
/// others are folded to lower case as PostgreSQL does).
fn view_name(name: &ObjectName) -> PgWireResult<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| match i.quote_style {
            Some(_) => i.value.clone(),
            None => i.value.to_lowercase(),
        })
        .collect();
    let name = match parts.as_slice() {
        [name] => name.clone(),
        [schema, name] if schema == crate::query::SCHEMA => name.clone(),
        _ => {
            return Err(user_error(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!("materialized views live in schema public, not {name}"),
            ))
        }
    };
    // PostgreSQL's NAMEDATALEN − 1.
    if name.is_empty() || name.len() > 63 {
        return Err(user_error(
            NAME_TOO_LONG,
            format!("a view's name is 1 to 63 bytes, not {}", name.len()),
        ));
    }
    Ok(name)
}

/// SQLSTATE of an identifier over the length limit.
const NAME_TOO_LONG: &str = "42622";

/// Recognises a rollup view statement; `None` leaves it to the rest.
pub fn classify(stmt: &Statement) -> PgWireResult<Option<Ddl>> {
    Ok(match stmt {
        Statement::CreateView(v) if v.materialized => {
            if v.or_replace || v.or_alter || !v.columns.is_empty() {
                return Err(user_error(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "CREATE MATERIALIZED VIEW takes no OR REPLACE and no column list; drop the view and create it again",
                ));
            }
            Some(Ddl::Create {
                name: view_name(&v.name)?,
                query: v.query.clone(),
                if_not_exists: v.if_not_exists,
            })
        }
        Statement::Drop {
            object_type: ObjectType::MaterializedView,
            if_exists,
            names,
            ..
        } => Some(Ddl::Drop {
            names: names.iter().map(view_name).collect::<PgWireResult<_>>()?,
            if_exists: *if_exists,
        }),
        _ => None,
    })
}

/// `REFRESH MATERIALIZED VIEW [CONCURRENTLY] name`, which the SQL parser does not know.
pub fn refresh_of(sql: &str) -> Option<Ddl> {
    let text = sql.trim().trim_end_matches(';').trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let rest = match lower.as_slice() {
        [a, b, c, ..] if a == "refresh" && b == "materialized" && c == "view" => &words[3..],
        _ => return None,
    };
    let rest = match rest {
        [c, more @ ..] if c.eq_ignore_ascii_case("concurrently") => more,
        r => r,
    };
    let [name] = rest else {
        return None;
    };
    let name = name.strip_prefix("public.").unwrap_or(name);
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.to_string(),
        None => name.to_lowercase(),
    };
    Some(Ddl::Refresh(name))
}

/// Runs a view statement for `session`'s user.
pub async fn run(
    ddl: &Ddl,
    session: &PgSession,
    ctx: &datafusion::prelude::SessionContext,
    state: &datafusion::execution::SessionState,
    store: &crate::store::Store,
) -> PgWireResult<Response> {
    if session.user != BOOTSTRAP_USER {
        return Err(user_error(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!(
                "must be the administrator ({BOOTSTRAP_USER}) to create, drop or refresh materialized views"
            ),
        ));
    }
    use crate::query::rollup::ddl;
    let tag = match ddl {
        Ddl::Create {
            name,
            query,
            if_not_exists,
        } => {
            ddl::create(ctx, state, store, name, query, *if_not_exists)
                .await
                .map_err(df_error)?;
            "CREATE MATERIALIZED VIEW"
        }
        Ddl::Drop { names, if_exists } => {
            for name in names {
                ddl::drop(ctx, store, name, *if_exists).map_err(df_error)?;
            }
            "DROP MATERIALIZED VIEW"
        }
        Ddl::Refresh(name) => {
            ddl::refresh(store, name).map_err(df_error)?;
            "REFRESH MATERIALIZED VIEW"
        }
    };
    Ok(Response::Execution(Tag::new(tag)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_names_its_view() {
        assert!(
            matches!(refresh_of("REFRESH MATERIALIZED VIEW x;"), Some(Ddl::Refresh(n)) if n == "x")
        );
        assert!(
            matches!(refresh_of("refresh materialized view concurrently public.Errs"), Some(Ddl::Refresh(n)) if n == "errs")
        );
        assert!(
            matches!(refresh_of("refresh materialized view \"Errs\""), Some(Ddl::Refresh(n)) if n == "Errs")
        );
        assert!(refresh_of("refresh materialized view").is_none());
        assert!(refresh_of("select 1").is_none());
    }
}
