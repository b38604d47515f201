//! Session and transaction statements answered as a read-only PostgreSQL database would: `SET`,
//! `RESET`, `SHOW` and `DISCARD` act on the connection's settings, transaction control is
//! acknowledged, and statements that would write are refused (25006).

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    DiscardObject, DollarQuotedString, Expr, ObjectName, Reset, ResetStatement, Set, Statement,
    Value,
};
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

/// Recognises a fixture from a parsed statement; `None` sends it to the planner.
pub fn classify(stmt: &Statement) -> Option<Fixture> {
    let fixture = match stmt {
        Statement::StartTransaction { .. } => Fixture::Begin,
        Statement::Commit { .. } => Fixture::Commit,
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Fixture::Tag("ROLLBACK"),
        Statement::Rollback { .. } => Fixture::Rollback,
        Statement::Savepoint { .. } => Fixture::Tag("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => Fixture::Tag("RELEASE"),
        Statement::Set(set) => classify_set(set),
        Statement::Reset(ResetStatement { reset }) => match reset {
            Reset::ALL => Fixture::Reset(None, "RESET"),
            Reset::ConfigurationParameter(name) => {
                Fixture::Reset(Some(setting_name(name)), "RESET")
            }
        },
        Statement::Discard { object_type } => match object_type {
            DiscardObject::ALL => Fixture::Reset(None, "DISCARD ALL"),
            DiscardObject::PLANS => Fixture::Tag("DISCARD PLANS"),
            DiscardObject::SEQUENCES => Fixture::Tag("DISCARD SEQUENCES"),
            DiscardObject::TEMP => Fixture::Tag("DISCARD TEMP"),
        },
        Statement::Deallocate { .. } => Fixture::Tag("DEALLOCATE"),
        Statement::UNLISTEN { .. } => Fixture::Tag("UNLISTEN"),
        Statement::Close { .. } => Fixture::Tag("CLOSE CURSOR ALL"),
        Statement::ShowVariable { variable } => Fixture::Show(
            variable
                .iter()
                .map(|i| i.value.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        s if writes(s) => {
            let text = s.to_string();
            let verb = text.split_whitespace().next().unwrap_or("this statement");
            Fixture::Refuse(
                sqlstate::READ_ONLY_SQL_TRANSACTION,
                format!(
                    "cannot execute {} in a read-only transaction",
                    verb.to_ascii_uppercase()
                ),
            )
        }
        _ => return None,
    };
    Some(fixture)
}

/// Whether a statement would change data, schema or grants.
fn writes(stmt: &Statement) -> bool {
    use Statement as S;
    matches!(
        stmt,
        S::Insert(_)
            | S::Update { .. }
            | S::Delete(_)
            | S::Merge { .. }
            | S::Truncate { .. }
            | S::Copy { .. }
            | S::CopyIntoSnowflake { .. }
            | S::CreateView { .. }
            | S::CreateTable(_)
            | S::CreateVirtualTable { .. }
            | S::CreateIndex(_)
            | S::CreateRole(_)
            | S::CreateSecret { .. }
            | S::CreateServer(_)
            | S::CreatePolicy { .. }
            | S::CreateConnector(_)
            | S::CreateOperator(_)
            | S::CreateOperatorFamily(_)
            | S::CreateOperatorClass(_)
            | S::CreateExtension(_)
            | S::CreateCollation(_)
            | S::CreateSchema { .. }
            | S::CreateDatabase { .. }
            | S::CreateFunction(_)
            | S::CreateTrigger(_)
            | S::CreateProcedure { .. }
            | S::CreateMacro { .. }
            | S::CreateStage { .. }
            | S::CreateSequence { .. }
            | S::CreateDomain(_)
            | S::CreateType { .. }
            | S::CreateUser(_)
            | S::AlterTable(_)
            | S::AlterSchema(_)
            | S::AlterIndex { .. }
            | S::AlterView { .. }
            | S::AlterFunction(_)
            | S::AlterType(_)
            | S::AlterCollation(_)
            | S::AlterOperator(_)
            | S::AlterOperatorFamily(_)
            | S::AlterOperatorClass(_)
            | S::AlterRole { .. }
            | S::AlterPolicy(_)
            | S::AlterConnector { .. }
            | S::AlterUser(_)
            | S::Drop { .. }
            | S::DropFunction(_)
            | S::DropDomain(_)
            | S::DropProcedure { .. }
            | S::DropSecret { .. }
            | S::DropPolicy(_)
            | S::DropConnector { .. }
            | S::DropExtension(_)
            | S::DropOperator(_)
            | S::DropOperatorFamily(_)
            | S::DropOperatorClass(_)
            | S::DropTrigger(_)
            | S::Comment { .. }
            | S::Grant(_)
            | S::Revoke(_)
            | S::Deny(_)
            | S::Vacuum(_)
            | S::Lock(_)
            | S::LockTables { .. }
            | S::RenameTable(_)
            | S::LoadData { .. }
    )
}

fn classify_set(set: &Set) -> Fixture {
    match set {
        Set::SetTransaction { .. } => Fixture::Tag("SET"),
        Set::SetRole { .. } | Set::SetSessionAuthorization(_) => Fixture::Refuse(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("{set} is not supported"),
        ),
        Set::SingleAssignment {
            variable, values, ..
        } => Fixture::Set {
            name: setting_name(variable),
            value: set_value(values),
        },
        Set::SetTimeZone { value, .. } => Fixture::Set {
            name: "TimeZone".into(),
            value: set_value(std::slice::from_ref(value)),
        },
        Set::SetNames { charset_name, .. } => Fixture::Set {
            name: "client_encoding".into(),
            value: Some(charset_name.value.clone()),
        },
        Set::SetNamesDefault {} => Fixture::Set {
            name: "client_encoding".into(),
            value: None,
        },
        Set::ParenthesizedAssignments { .. }
        | Set::MultipleAssignments { .. }
        | Set::SetSessionParam(_) => Fixture::Refuse(
            sqlstate::SYNTAX_ERROR,
            format!("syntax error: {set} is not PostgreSQL's SET"),
        ),
    }
}

/// A setting's name as written, without quotes: `"TimeZone"` is `TimeZone`, `x.y` stays dotted.
fn setting_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) => ident.value.clone(),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A SET value list as PostgreSQL stores it: string literals unquoted, items joined by `, `;
/// `None` for `DEFAULT` (and `LOCAL`, `SET TIME ZONE LOCAL`).
fn set_value(values: &[Expr]) -> Option<String> {
    if let [Expr::Identifier(ident)] = values {
        if ident.quote_style.is_none()
            && (ident.value.eq_ignore_ascii_case("DEFAULT")
                || ident.value.eq_ignore_ascii_case("LOCAL"))
        {
            return None;
        }
    }
    let item = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::DollarQuotedString(DollarQuotedString { value: s, .. }) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) if ident.quote_style.is_none() => ident.value.clone(),
        other => other.to_string(),
    };
    Some(values.iter().map(item).collect::<Vec<_>>().join(", "))
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
    use datafusion::sql::sqlparser::ast::Statement;

    /// Parses as the server does.
    fn parse(sql: &str) -> Statement {
        let mut statements =
            crate::pgwire::passes::parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(statements.len(), 1, "{sql}");
        statements.remove(0)
    }

    #[test]
    fn set_statements_are_recognised_in_every_spelling() {
        use super::Fixture;
        let classify = |sql: &str| super::classify(&parse(sql));
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
        assert_eq!(classify("SET TIME ZONE LOCAL"), set("TimeZone", None));
        assert_eq!(
            classify("SET TIME ZONE 'UTC'"),
            set("TimeZone", Some("UTC"))
        );
        assert_eq!(
            classify("SET extra_float_digits = 3"),
            set("extra_float_digits", Some("3"))
        );
        assert_eq!(
            classify("SET \"TimeZone\" = 'Asia/Tokyo'"),
            set("TimeZone", Some("Asia/Tokyo"))
        );
        assert_eq!(
            classify("SET application_name = 'münchen'"),
            set("application_name", Some("münchen"))
        );
    }

    #[test]
    fn transaction_and_session_statements_are_recognised_from_the_ast() {
        use super::Fixture;
        let classify = |sql: &str| super::classify(&parse(sql));
        assert_eq!(classify("BEGIN"), Some(Fixture::Begin));
        assert_eq!(
            classify("START TRANSACTION READ ONLY"),
            Some(Fixture::Begin)
        );
        assert_eq!(classify("COMMIT"), Some(Fixture::Commit));
        assert_eq!(classify("END"), Some(Fixture::Commit));
        assert_eq!(classify("ROLLBACK"), Some(Fixture::Rollback));
        assert_eq!(classify("SAVEPOINT s1"), Some(Fixture::Tag("SAVEPOINT")));
        assert_eq!(
            classify("RELEASE SAVEPOINT s1"),
            Some(Fixture::Tag("RELEASE"))
        );
        assert_eq!(
            classify("ROLLBACK TO SAVEPOINT s1"),
            Some(Fixture::Tag("ROLLBACK"))
        );
        assert_eq!(
            classify("DISCARD ALL"),
            Some(Fixture::Reset(None, "DISCARD ALL"))
        );
        assert_eq!(
            classify("DISCARD PLANS"),
            Some(Fixture::Tag("DISCARD PLANS"))
        );
        assert_eq!(
            classify("RESET statement_timeout"),
            Some(Fixture::Reset(Some("statement_timeout".into()), "RESET"))
        );
        assert_eq!(
            classify("SHOW TIME ZONE"),
            Some(Fixture::Show("TIME ZONE".into()))
        );
        assert_eq!(
            classify("SHOW transaction isolation level"),
            Some(Fixture::Show("transaction isolation level".into()))
        );
        assert_eq!(classify("DEALLOCATE ALL"), Some(Fixture::Tag("DEALLOCATE")));
        assert_eq!(classify("UNLISTEN *"), Some(Fixture::Tag("UNLISTEN")));
        assert_eq!(
            classify("CLOSE ALL"),
            Some(Fixture::Tag("CLOSE CURSOR ALL"))
        );
        for (sql, verb) in [
            ("INSERT INTO logs (msg) VALUES ('x')", "INSERT"),
            ("update logs set msg = 'é'", "UPDATE"),
            ("DELETE FROM logs", "DELETE"),
            ("CREATE TABLE t (a int)", "CREATE"),
            ("DROP TABLE logs", "DROP"),
            ("ALTER TABLE logs ADD COLUMN x int", "ALTER"),
            ("TRUNCATE logs", "TRUNCATE"),
            ("COPY logs FROM STDIN", "COPY"),
            ("GRANT SELECT ON logs TO bob", "GRANT"),
            ("COMMENT ON TABLE logs IS 'x'", "COMMENT"),
        ] {
            match classify(sql) {
                Some(Fixture::Refuse(code, msg)) => {
                    assert_eq!(code, "25006", "{sql}");
                    assert_eq!(
                        msg,
                        format!("cannot execute {verb} in a read-only transaction")
                    );
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
        // Statements that only mention a keyword are not fixtures.
        assert_eq!(classify("SELECT 'SET x = 1', 'INSERT'"), None);
        assert_eq!(classify("EXPLAIN SELECT 1"), None);
    }
}
