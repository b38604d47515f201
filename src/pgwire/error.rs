//! The one place internal errors become SQLSTATEs.

use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};
use timberline_udfs::QueryError;

/// The SQLSTATE and client-facing message of a DataFusion error.
pub fn sqlstate_of(e: &DataFusionError) -> (&'static str, String) {
    if let Some(q) = QueryError::find(e) {
        return (q.sqlstate, q.message.clone());
    }
    let root = e.find_root();
    let msg = client_message(&root.to_string());
    if matches!(root, DataFusionError::NotImplemented(_))
        && msg.contains("does not support logical expression")
        && msg.contains("Subquery")
    {
        return (
            "0A000",
            "this correlated subquery is not supported (only correlations by equality are); \
             rewrite it as a join"
                .into(),
        );
    }
    if msg.contains("unrecognized configuration parameter") {
        return ("42704", msg);
    }
    let code = match root {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(se, _) => match se.as_ref() {
            SchemaError::FieldNotFound { .. } => "42703",
            SchemaError::AmbiguousReference { .. } => "42702",
            SchemaError::DuplicateQualifiedField { .. }
            | SchemaError::DuplicateUnqualifiedField { .. } => "42701",
        },
        DataFusionError::Plan(m) if m.starts_with("invalid argument:") => "22023",
        DataFusionError::Plan(m) if m.contains("table") && m.contains("not found") => "42P01",
        DataFusionError::Plan(m)
            if m.contains("Invalid function") || m.contains("No function matches") =>
        {
            "42883"
        }
        DataFusionError::Plan(m) if m.contains("not allowed") || m.contains("not supported") => {
            "0A000"
        }
        DataFusionError::Plan(_) => "42000",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::ArrowError(ae, _) => match ae.as_ref() {
            datafusion::arrow::error::ArrowError::DivideByZero => "22012",
            datafusion::arrow::error::ArrowError::CastError(_)
            | datafusion::arrow::error::ArrowError::ParseError(_) => "22P02",
            _ => "XX000",
        },
        DataFusionError::Execution(m)
            if m.contains("Cannot cast") || m.contains("Error parsing") =>
        {
            "22P02"
        }
        _ => "XX000",
    };
    (code, msg)
}

/// A DataFusion error as a pg ErrorResponse.
pub fn df_error(e: DataFusionError) -> PgWireError {
    let (code, msg) = sqlstate_of(&e);
    user_error(code, msg)
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
