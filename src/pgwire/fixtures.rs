//! Session and transaction statements answered as a read-only PostgreSQL database would: `SET`,
//! `RESET`, `SHOW` and `DISCARD` act on the connection's settings, transaction control is
//! acknowledged, and statements that would write are refused (25006).

use std::sync::Arc;

use futures::stream;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::Type;
use pgwire::error::{ErrorInfo, PgWireResult};
use timberline_udfs::pg_compat::{canonical_name, PgSession};
use timberline_udfs::sqlstate;

use super::error::user_error;

/// What a fixture statement answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Fixture {
    Begin,
    Commit,
    Rollback,
    /// A command that changes nothing here, answered with its tag.
    Tag(&'static str),
    /// `SET name = value`; `None` is `DEFAULT`.
    Set {
        name: String,
        value: Option<String>,
    },
    /// `RESET name`, or `RESET ALL` / `DISCARD ALL` (`None`).
    Reset(Option<String>, &'static str),
    /// `SHOW name` or `SHOW ALL`.
    Show(String),
    /// A statement we cannot honour, with its SQLSTATE.
    Refuse(&'static str, String),
}

/// Recognises a fixture from a statement's text (as printed by the SQL parser).
pub fn classify(sql: &str) -> Option<Fixture> {
    let text = sql.trim().trim_end_matches(';').trim();
    let upper = text.to_ascii_uppercase();
    let mut words = upper.split_whitespace();
    let first = words.next().unwrap_or("");
    let rest = text.get(first.len()..).unwrap_or("").trim();
    let fixture = match first {
        "BEGIN" | "START" => Fixture::Begin,
        "COMMIT" | "END" => Fixture::Commit,
        "ROLLBACK" | "ABORT" => Fixture::Rollback,
        "SET" => classify_set(rest),
        "RESET" if rest.eq_ignore_ascii_case("ALL") => Fixture::Reset(None, "RESET"),
        "RESET" => Fixture::Reset(Some(unquote_name(rest)), "RESET"),
        "DISCARD" => Fixture::Reset(None, "DISCARD ALL"),
        "DEALLOCATE" => Fixture::Tag("DEALLOCATE"),
        "UNLISTEN" => Fixture::Tag("UNLISTEN"),
        "CLOSE" => Fixture::Tag("CLOSE CURSOR ALL"),
        "CHECKPOINT" => Fixture::Tag("CHECKPOINT"),
        "SHOW" => Fixture::Show(unquote_name(rest)),
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "CREATE" | "DROP" | "ALTER" | "TRUNCATE"
        | "COPY" | "GRANT" | "REVOKE" | "VACUUM" | "LOCK" => Fixture::Refuse(
            sqlstate::READ_ONLY_SQL_TRANSACTION,
            format!("cannot execute {first} in a read-only transaction"),
        ),
        _ => return None,
    };
    Some(fixture)
}

fn classify_set(rest: &str) -> Fixture {
    let mut rest = rest;
    for scope in ["SESSION ", "LOCAL "] {
        // `get`, not indexing: the cut may fall inside a multibyte character.
        if let (Some(head), Some(tail)) = (rest.get(..scope.len()), rest.get(scope.len()..)) {
            if head.eq_ignore_ascii_case(scope) {
                rest = tail.trim_start();
            }
        }
    }
    let upper = rest.to_ascii_uppercase();
    if upper.starts_with("TRANSACTION") || upper.starts_with("CHARACTERISTICS") {
        return Fixture::Tag("SET");
    }
    if upper.starts_with("ROLE") || upper.starts_with("AUTHORIZATION") {
        return Fixture::Refuse(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("SET {rest} is not supported"),
        );
    }
    let (name, value) = if let Some(v) = strip_words(rest, &["TIME", "ZONE"]) {
        ("TimeZone".to_string(), v)
    } else if let Some(v) = strip_words(rest, &["NAMES"]) {
        ("client_encoding".to_string(), v)
    } else if let Some(v) = strip_words(rest, &["SCHEMA"]) {
        ("search_path".to_string(), v)
    } else {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let (name, tail) = rest.split_at(end);
        let tail = tail.trim_start();
        let tail = tail
            .strip_prefix('=')
            .or_else(|| strip_words(tail, &["TO"]))
            .unwrap_or(tail);
        (unquote_name(name), tail.trim())
    };
    let value = if value.eq_ignore_ascii_case("DEFAULT") || value.eq_ignore_ascii_case("LOCAL") {
        None
    } else {
        Some(set_value(value))
    };
    Fixture::Set { name, value }
}

/// `text` without the leading keywords `words` (any case), if it starts with them.
fn strip_words<'a>(text: &'a str, words: &[&str]) -> Option<&'a str> {
    let mut rest = text.trim_start();
    for w in words {
        let head = rest.get(..w.len())?;
        if !head.eq_ignore_ascii_case(w) {
            return None;
        }
        rest = rest.get(w.len()..)?;
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            return None;
        }
        rest = rest.trim_start();
    }
    Some(rest)
}

fn unquote_name(name: &str) -> String {
    name.trim().trim_matches('"').to_string()
}

/// A SET value list as PostgreSQL stores it: string literals unquoted, items joined by `, `.
fn set_value(value: &str) -> String {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, ',') => items.push(std::mem::take(&mut cur)),
            (None, '\'') => quote = Some('\''),
            (None, '"') => {
                quote = Some('"');
                cur.push(c);
            }
            (Some('\''), '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
            }
            (Some('\''), '\'') => quote = None,
            (Some('"'), '"') => {
                quote = None;
                cur.push(c);
            }
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items
        .iter()
        .map(|s| s.trim())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The result columns of a fixture (empty: no rows).
pub fn fields(f: &Fixture) -> Vec<FieldInfo> {
    let text = |name: &str| FieldInfo::new(name.into(), None, None, Type::TEXT, FieldFormat::Text);
    match f {
        Fixture::Show(name) if name.eq_ignore_ascii_case("ALL") => {
            vec![text("name"), text("setting"), text("description")]
        }
        Fixture::Show(name) => vec![text(&column_name(name))],
        _ => Vec::new(),
    }
}

/// `SHOW`'s column: PostgreSQL's spelling of the setting.
fn column_name(show: &str) -> String {
    match show.to_ascii_lowercase().as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "TimeZone".into(),
        other => canonical_name(other).map_or_else(|| other.replace(' ', "_"), str::to_string),
    }
}

/// Settings whose changes PostgreSQL reports to the client (ParameterStatus, `GUC_REPORT`).
const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "standard_conforming_strings",
];

/// The reported settings' values, to compare before and after a statement.
pub fn reported(session: &PgSession) -> Vec<(&'static str, String)> {
    REPORTED
        .iter()
        .map(|n| (*n, session.get(n).unwrap_or_default()))
        .collect()
}

/// A fixture's answer, and the notice (a WARNING) to send before it, if any.
pub struct Answer {
    pub response: Response,
    pub notice: Option<ErrorInfo>,
}

/// Answers a fixture against the connection's settings.
pub fn answer(f: &Fixture, session: &mut PgSession, format: FieldFormat) -> PgWireResult<Answer> {
    let plain = |response| Answer {
        response,
        notice: None,
    };
    Ok(match f {
        Fixture::Begin => plain(Response::TransactionStart(Tag::new("BEGIN"))),
        Fixture::Commit => plain(Response::TransactionEnd(Tag::new("COMMIT"))),
        Fixture::Rollback => plain(Response::TransactionEnd(Tag::new("ROLLBACK"))),
        Fixture::Tag(tag) => plain(Response::Execution(Tag::new(tag))),
        Fixture::Refuse(code, msg) => return Err(user_error(code, msg.clone())),
        Fixture::Set { name, value: None } => {
            session.reset(name);
            plain(Response::Execution(Tag::new("SET")))
        }
        Fixture::Set {
            name,
            value: Some(value),
        } => {
            let known = session
                .set(name, value)
                .map_err(|e| user_error(e.sqlstate(), e.to_string()))?;
            Answer {
                response: Response::Execution(Tag::new("SET")),
                notice: (!known).then(|| {
                    ErrorInfo::new(
                        "WARNING".into(),
                        sqlstate::UNDEFINED_OBJECT.into(),
                        format!(
                            "unrecognized configuration parameter \"{name}\"; its value is \
                             remembered but has no effect"
                        ),
                    )
                }),
            }
        }
        Fixture::Reset(name, tag) => {
            match name {
                Some(n) => session.reset(n),
                None => session.reset_all(),
            }
            plain(Response::Execution(Tag::new(tag)))
        }
        Fixture::Show(name) => {
            let rows: Vec<Vec<String>> = if name.eq_ignore_ascii_case("ALL") {
                session
                    .all()
                    .into_iter()
                    .map(|(n, v)| vec![n, v, String::new()])
                    .collect()
            } else {
                let key = column_name(name);
                let value = session.get(&key).ok_or_else(|| {
                    user_error(
                        sqlstate::UNDEFINED_OBJECT,
                        format!("unrecognized configuration parameter \"{name}\""),
                    )
                })?;
                vec![vec![value]]
            };
            let schema = Arc::new(
                fields(f)
                    .into_iter()
                    .map(|fi| FieldInfo::new(fi.name().into(), None, None, Type::TEXT, format))
                    .collect::<Vec<_>>(),
            );
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let mut enc = DataRowEncoder::new(schema.clone());
                for v in row {
                    enc.encode_field(&Some(v))?;
                }
                out.push(Ok(enc.take_row()));
            }
            plain(Response::Query(QueryResponse::new(
                schema,
                stream::iter(out),
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn set_statements_are_recognised_in_every_spelling() {
        use super::{classify, Fixture};
        let set = |name: &str, value: Option<&str>| {
            Some(Fixture::Set {
                name: name.into(),
                value: value.map(str::to_string),
            })
        };
        assert_eq!(
            classify("SET statement_timeout = '5s'"),
            set("statement_timeout", Some("5s"))
        );
        assert_eq!(
            classify("set LOCAL statement_timeout TO 100"),
            set("statement_timeout", Some("100"))
        );
        assert_eq!(
            classify("SET TIME ZONE 'Europe/Paris'"),
            set("TimeZone", Some("Europe/Paris"))
        );
        assert_eq!(
            classify("SET NAMES 'UTF8'"),
            set("client_encoding", Some("UTF8"))
        );
        assert_eq!(
            classify("SET search_path TO public, \"$user\""),
            set("search_path", Some("public, \"$user\""))
        );
        assert_eq!(
            classify("SET application_name = 'it''s'"),
            set("application_name", Some("it's"))
        );
        assert_eq!(classify("SET x.y = DEFAULT"), set("x.y", None));
        assert_eq!(
            classify("SET TRANSACTION READ ONLY"),
            Some(Fixture::Tag("SET"))
        );
        assert_eq!(
            classify("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"),
            Some(Fixture::Tag("SET"))
        );
        assert!(matches!(
            classify("SET ROLE admin"),
            Some(Fixture::Refuse("0A000", _))
        ));
        assert_eq!(classify("RESET ALL"), Some(Fixture::Reset(None, "RESET")));
        assert_eq!(
            classify("SHOW \"TimeZone\""),
            Some(Fixture::Show("TimeZone".into()))
        );
        assert_eq!(classify("SELECT 1"), None);
    }
}
