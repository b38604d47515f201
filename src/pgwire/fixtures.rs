//! Canned answers to the session and transaction statements drivers send, answered as a
//! read-only PostgreSQL database would; statements that would write are refused (25006).

use std::sync::Arc;

use futures::stream;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use timberline_udfs::pg_compat::setting;

use super::error::user_error;

/// What a fixture statement answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Fixture {
    Begin,
    Commit,
    Rollback,
    /// A command that changes nothing here, answered with its tag.
    Tag(&'static str),
    /// `SHOW name`.
    Show(String),
    /// A statement a read-only database refuses.
    ReadOnly(String),
}

/// Recognises a fixture from a statement's text (as printed by the SQL parser).
pub fn classify(sql: &str) -> Option<Fixture> {
    let upper = sql.trim().trim_end_matches(';').to_ascii_uppercase();
    let first = upper.split_whitespace().next().unwrap_or("");
    let fixture = match first {
        "BEGIN" | "START" => Fixture::Begin,
        "COMMIT" | "END" => Fixture::Commit,
        "ROLLBACK" | "ABORT" => Fixture::Rollback,
        "SET" => Fixture::Tag("SET"),
        "RESET" => Fixture::Tag("RESET"),
        "DISCARD" => Fixture::Tag("DISCARD ALL"),
        "DEALLOCATE" => Fixture::Tag("DEALLOCATE"),
        "UNLISTEN" => Fixture::Tag("UNLISTEN"),
        "SHOW" => {
            let name = sql
                .trim()
                .trim_end_matches(';')
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ");
            Fixture::Show(name.trim_matches('"').to_string())
        }
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "CREATE" | "DROP" | "ALTER" | "TRUNCATE"
        | "COPY" | "GRANT" | "REVOKE" | "VACUUM" => Fixture::ReadOnly(first.to_string()),
        _ => return None,
    };
    Some(fixture)
}

/// The result columns of a fixture (empty: no rows).
pub fn fields(f: &Fixture) -> Vec<FieldInfo> {
    match f {
        Fixture::Show(name) => vec![FieldInfo::new(
            column_name(name),
            None,
            None,
            Type::TEXT,
            FieldFormat::Text,
        )],
        _ => Vec::new(),
    }
}

fn column_name(show: &str) -> String {
    match show.to_ascii_lowercase().as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        other => other.replace(' ', "_"),
    }
}

/// Answers a fixture.
pub fn answer(f: &Fixture, format: FieldFormat) -> PgWireResult<Response> {
    Ok(match f {
        Fixture::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        Fixture::Commit => Response::TransactionEnd(Tag::new("COMMIT")),
        Fixture::Rollback => Response::TransactionEnd(Tag::new("ROLLBACK")),
        Fixture::Tag(tag) => Response::Execution(Tag::new(tag)),
        Fixture::ReadOnly(what) => {
            return Err(user_error(
                "25006",
                format!("cannot execute {what} in a read-only transaction"),
            ));
        }
        Fixture::Show(name) => {
            let key = column_name(name);
            let value = setting(&key).ok_or_else(|| {
                user_error(
                    "42704",
                    format!("unrecognized configuration parameter \"{name}\""),
                )
            })?;
            let mut field = fields(f);
            if let Some(first) = field.first_mut() {
                *first = FieldInfo::new(key, None, None, Type::TEXT, format);
            }
            let schema = Arc::new(field);
            let mut enc = DataRowEncoder::new(schema.clone());
            enc.encode_field(&Some(value))?;
            let row = enc.take_row();
            Response::Query(QueryResponse::new(schema, stream::iter(vec![Ok(row)])))
        }
    })
}
