//! The one place internal errors become SQLSTATEs.

use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};
use timberline_udfs::{sqlstate, QueryError};

/// The SQLSTATE and client-facing message of a DataFusion error.
pub fn sqlstate_of(e: &DataFusionError) -> (&'static str, String) {
    if let Some(q) = QueryError::find(e) {
        return (q.sqlstate, q.message.clone());
    }
    if let Some(why) = object_store_failure(e) {
        return (
            sqlstate::IO_ERROR,
            format!("the object store holding cold segments could not be read: {why}"),
        );
    }
    let root = e.find_root();
    let msg = client_message(&root.to_string());
    if matches!(root, DataFusionError::NotImplemented(_))
        && msg.contains("does not support logical expression")
        && msg.contains("Subquery")
    {
        return (
            sqlstate::FEATURE_NOT_SUPPORTED,
            "this correlated subquery is not supported (only correlations by equality are); \
             rewrite it as a join"
                .into(),
        );
    }
    // The regexp kernels report a pattern that does not parse, or compiles past 10 MiB, as text.
    if msg.contains("Regular expression did not compile") || msg.contains("regex parse error") {
        return (sqlstate::INVALID_REGULAR_EXPRESSION, msg);
    }
    // DataFusion turns a UDF's argument check (`coerce_types`) into text.
    if msg.contains("user-defined coercion failed") {
        return (sqlstate::UNDEFINED_FUNCTION, msg);
    }
    let code = match root {
        DataFusionError::SQL(..) => sqlstate::SYNTAX_ERROR,
        DataFusionError::SchemaError(se, _) => match se.as_ref() {
            SchemaError::FieldNotFound { .. } => sqlstate::UNDEFINED_COLUMN,
            SchemaError::AmbiguousReference { .. } => sqlstate::AMBIGUOUS_COLUMN,
            SchemaError::DuplicateQualifiedField { .. }
            | SchemaError::DuplicateUnqualifiedField { .. } => sqlstate::DUPLICATE_COLUMN,
        },
        DataFusionError::Plan(m) if m.contains("table") && m.contains("not found") => {
            sqlstate::UNDEFINED_TABLE
        }
        DataFusionError::Plan(m)
            if m.contains("Invalid function") || m.contains("No function matches") =>
        {
            sqlstate::UNDEFINED_FUNCTION
        }
        DataFusionError::Plan(m) if m.contains("not allowed") || m.contains("not supported") => {
            sqlstate::FEATURE_NOT_SUPPORTED
        }
        DataFusionError::Plan(_) => sqlstate::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
        DataFusionError::NotImplemented(_) => sqlstate::FEATURE_NOT_SUPPORTED,
        DataFusionError::ResourcesExhausted(_) => sqlstate::OUT_OF_MEMORY,
        DataFusionError::ArrowError(ae, _) => match ae.as_ref() {
            datafusion::arrow::error::ArrowError::DivideByZero => sqlstate::DIVISION_BY_ZERO,
            datafusion::arrow::error::ArrowError::CastError(_)
            | datafusion::arrow::error::ArrowError::ParseError(_) => {
                sqlstate::INVALID_TEXT_REPRESENTATION
            }
            _ => sqlstate::INTERNAL_ERROR,
        },
        DataFusionError::Execution(m)
            if m.contains("Cannot cast") || m.contains("Error parsing") =>
        {
            sqlstate::INVALID_TEXT_REPRESENTATION
        }
        _ => sqlstate::INTERNAL_ERROR,
    };
    (code, msg)
}

/// The object-store failure (cold tier unreachable, slow, or missing an object) behind `e`, if
/// that is what it is: PostgreSQL's `io_error` (58030) rather than an internal error.
fn object_store_failure(e: &DataFusionError) -> Option<String> {
    use datafusion::arrow::error::ArrowError;
    use datafusion::object_store::Error as StoreError;
    use datafusion::parquet::errors::ParquetError;
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut depth = 0;
    while let Some(err) = at {
        depth += 1;
        if depth > 32 {
            return None;
        }
        if let Some(store) = err.downcast_ref::<StoreError>() {
            return Some(store.to_string());
        }
        if let Some(ParquetError::External(inner)) = err.downcast_ref::<ParquetError>() {
            at = Some(inner.as_ref());
            continue;
        }
        if let Some(ArrowError::ExternalError(inner)) = err.downcast_ref::<ArrowError>() {
            at = Some(inner.as_ref());
            continue;
        }
        at = match err.downcast_ref::<DataFusionError>() {
            Some(DataFusionError::ObjectStore(store)) => return Some(store.to_string()),
            Some(DataFusionError::ParquetError(p)) => Some(p.as_ref()),
            Some(DataFusionError::ArrowError(a, _)) => Some(a.as_ref()),
            Some(DataFusionError::Shared(shared)) => Some(shared.as_ref()),
            Some(DataFusionError::Context(_, inner)) => Some(inner.as_ref()),
            Some(DataFusionError::External(inner)) => Some(inner.as_ref()),
            _ => err.source(),
        };
    }
    // Parquet's metadata fetch keeps only the text of the store's error.
    let text = e.to_string();
    text.contains("Object Store error")
        .then(|| client_message(&e.find_root().to_string()))
}

/// A DataFusion error as a pg ErrorResponse, worded as PostgreSQL words it where it has a
/// counterpart ([`postgresql_wording`]).
pub fn df_error(e: DataFusionError) -> PgWireError {
    let (code, msg) = sqlstate_of(&e);
    if let Some((code, message, hint)) = postgresql_wording(&msg) {
        let mut info = ErrorInfo::new("ERROR".into(), code.into(), message);
        info.hint = Some(hint.into());
        return PgWireError::UserError(Box::new(info));
    }
    user_error(code, without_paths(&msg))
}

const NO_FUNCTION: &str =
    "No function matches the given name and argument types. You might need to add explicit type casts.";
const NO_OPERATOR: &str =
    "No operator matches the given name and argument types. You might need to add explicit type casts.";

/// The planner's "no such function" and "no such operator for these types" in PostgreSQL's
/// words, SQLSTATE and HINT: `function array(…) does not exist`, `operator does not exist:
/// timestamp with time zone - text`.
fn postgresql_wording(msg: &str) -> Option<(&'static str, String, &'static str)> {
    if let Some(rest) = msg.strip_prefix("Invalid function '") {
        let name = rest.split('\'').next()?;
        return Some((
            sqlstate::UNDEFINED_FUNCTION,
            format!("function {name}(…) does not exist"),
            NO_FUNCTION,
        ));
    }
    const OPERATOR_ERRORS: [&str; 2] = [
        "Cannot coerce arithmetic expression ",
        "Cannot infer common argument type for comparison operation ",
    ];
    let operands = OPERATOR_ERRORS
        .iter()
        .find_map(|p| msg.find(p).map(|i| &msg[i + p.len()..]))?;
    let operands = operands.lines().next()?;
    let operands = operands.split(" to valid types").next()?.trim();
    for op in [
        " - ", " + ", " * ", " / ", " % ", " = ", " != ", " <> ", " < ", " > ", " <= ", " >= ",
    ] {
        if let Some((left, right)) = operands.split_once(op) {
            let (left, right) = (pg_type_name(left.trim())?, pg_type_name(right.trim())?);
            let op = if op.trim() == "!=" { "<>" } else { op.trim() };
            return Some((
                sqlstate::UNDEFINED_FUNCTION,
                format!("operator does not exist: {left} {op} {right}"),
                NO_OPERATOR,
            ));
        }
    }
    None
}

/// PostgreSQL's name of an Arrow type as DataFusion prints it (`Timestamp(µs, "UTC")` is
/// `timestamp with time zone`).
fn pg_type_name(arrow: &str) -> Option<String> {
    let base = arrow.split('(').next()?.trim();
    Some(
        match base {
            "Timestamp" if arrow.contains('"') => "timestamp with time zone",
            "Timestamp" => "timestamp without time zone",
            "Utf8" | "Utf8View" | "LargeUtf8" => "text",
            "Int16" => "smallint",
            "Int32" => "integer",
            "Int64" => "bigint",
            "Float32" => "real",
            "Float64" => "double precision",
            "Decimal128" | "Decimal256" => "numeric",
            "Boolean" => "boolean",
            "Date32" | "Date64" => "date",
            "Interval" => "interval",
            "Time64" | "Time32" => "time without time zone",
            "Null" => "unknown",
            "List" | "LargeList" => {
                let inner = arrow.split_once("List(")?.1;
                let element = inner.split([',', ')']).next()?.trim();
                let element = element
                    .strip_prefix("Field { data_type: ")
                    .unwrap_or(element);
                return Some(format!("{}[]", pg_type_name(element)?));
            }
            _ => return None,
        }
        .to_string(),
    )
}

/// `text` with the directories of every absolute path taken out (`/srv/data/segments/x.parquet`
/// → `x.parquet`): a client learns which file, never where the server keeps its data.
pub fn without_paths(text: &str) -> String {
    static DIRECTORIES: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| {
            regex::Regex::new(r#"(?:file://)?(?:/[^\s/'"()\[\],;]+)+/"#).ok()
        });
    let Some(directories) = DIRECTORIES.as_ref() else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in directories.find_iter(text) {
        // Not the path of a URL (`http://host/…`, `s3://bucket/…`) nor a relative one.
        let before = text[..m.start()].chars().next_back();
        if matches!(before, Some(c) if c == ':' || c == '/' || c.is_alphanumeric() || c == '.') {
            continue;
        }
        out.push_str(&text[last..m.start()]);
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

/// An ERROR-severity response with `code`.
pub fn user_error(code: &str, msg: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        msg.into(),
    )))
}

/// DataFusion prefixes messages with its phase ("Error during planning: …"); PostgreSQL clients
/// expect the bare message.
fn client_message(text: &str) -> String {
    const PREFIXES: [&str; 8] = [
        "Error during planning: ",
        "Execution error: ",
        "Schema error: ",
        "SQL error: ",
        "This feature is not implemented: ",
        "Arrow error: ",
        "Resources exhausted: ",
        "External error: ",
    ];
    let mut m = text.trim();
    while let Some(rest) = PREFIXES.iter().find_map(|p| m.strip_prefix(p)) {
        m = rest.trim();
    }
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::{postgresql_wording, without_paths};

    #[test]
    fn planner_errors_read_as_postgresqls() {
        let (code, msg, hint) =
            postgresql_wording("Invalid function 'array'.\nDid you mean 'rpad'?")
                .expect("function");
        assert_eq!(
            (code, msg.as_str()),
            ("42883", "function array(…) does not exist")
        );
        assert!(hint.starts_with("No function matches"));
        let (code, msg, _) = postgresql_wording(
            "Cannot coerce arithmetic expression Timestamp(µs, \"UTC\") - Utf8 to valid types",
        )
        .expect("operator");
        assert_eq!(
            (code, msg.as_str()),
            (
                "42883",
                "operator does not exist: timestamp with time zone - text"
            )
        );
        assert!(postgresql_wording("division by zero").is_none());
    }

    #[test]
    fn absolute_paths_lose_their_directories() {
        assert_eq!(
            without_paths(
                "cannot open /srv/tl/segments/tenant=a/date=2024-01-15/x.parquet: No such file"
            ),
            "cannot open x.parquet: No such file"
        );
        assert_eq!(
            without_paths("Object at location file:///tmp/cold/seg.parquet not found"),
            "Object at location seg.parquet not found"
        );
        // URLs, relative paths and plain text stay as they are.
        for kept in [
            "GET http://127.0.0.1:8333/bucket/key failed",
            "s3://bucket/prefix/x.parquet",
            "tenant=a/date=2024-01-15/x.parquet",
            "a/b division by zero",
            "invalid match() query \"(card\": unbalanced '('",
        ] {
            assert_eq!(without_paths(kept), kept);
        }
    }
}
