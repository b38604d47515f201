//! Timberline's own SQL functions as PostgreSQL's catalog describes an extension's: their
//! `pg_proc` facts ([`OWN_FUNCTIONS`]), and the catalog functions that print them
//! (`pg_get_function_result`, `pg_get_function_arguments`,
//! `pg_get_function_identity_arguments`, `obj_description`), so psql's `\df` lists them and
//! `\df+` and pgjdbc's `getFunctions` show what each does. Other oids answer NULL, as before.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::pg_compat::columnar::{answer, arrays};

/// `pg_catalog.pg_type` oids of the types the functions take and give.
pub mod type_oid {
    pub const BOOL: i32 = 16;
    pub const INT8: i32 = 20;
    pub const TEXT: i32 = 25;
    pub const RECORD: i32 = 2249;
    pub const TIMESTAMPTZ: i32 = 1184;
    pub const INTERVAL: i32 = 1186;
}

/// One argument: its name, `pg_type` oid and PostgreSQL's spelling of that type.
#[derive(Debug, Clone, Copy)]
pub struct Argument {
    pub name: &'static str,
    pub type_oid: i32,
    pub type_name: &'static str,
    /// The default, as `pg_get_function_arguments` prints it (`DEFAULT 50`).
    pub default: Option<&'static str>,
}

/// A function's `pg_proc` facts.
#[derive(Debug, Clone, Copy)]
pub struct OwnFunction {
    /// Its oid: fixed, below the user range (16384) and above PostgreSQL's own.
    pub oid: i32,
    pub name: &'static str,
    pub arguments: &'static [Argument],
    /// The result type's oid (`record` for a table function).
    pub result_oid: i32,
    /// The result type as `format_type` prints it (a table function's is its `columns`).
    pub result_type: &'static str,
    /// A table function's columns (`RETURNS TABLE(…)`, `proretset`); empty for a scalar one.
    pub columns: &'static [Argument],
    /// `provolatile`: `i`mmutable, `s`table or `v`olatile.
    pub volatility: &'static str,
    pub description: &'static str,
}

const fn arg(name: &'static str, type_oid: i32, type_name: &'static str) -> Argument {
    Argument {
        name,
        type_oid,
        type_name,
        default: None,
    }
}

const TIMESTAMPTZ: &str = "timestamp with time zone";

/// `logs`' columns, `log_context`'s result.
const LOG_ROW: &[Argument] = &[
    arg("ts", type_oid::TIMESTAMPTZ, TIMESTAMPTZ),
    arg("ingest_ts", type_oid::TIMESTAMPTZ, TIMESTAMPTZ),
    arg("tenant", type_oid::TEXT, "text"),
    arg("service", type_oid::TEXT, "text"),
    arg("host", type_oid::TEXT, "text"),
    arg("level", type_oid::TEXT, "text"),
    arg("msg", type_oid::TEXT, "text"),
    arg("trace_id", type_oid::TEXT, "text"),
    arg("attrs", type_oid::TEXT, "text"),
    arg("parse_failed", type_oid::BOOL, "boolean"),
    arg("truncated", type_oid::BOOL, "boolean"),
];

/// Timberline's own functions, in `pg_proc`'s `public` schema.
pub const OWN_FUNCTIONS: &[OwnFunction] = &[
    OwnFunction {
        oid: 16001,
        name: "nearest",
        arguments: &[
            arg("ts", type_oid::TIMESTAMPTZ, TIMESTAMPTZ),
            arg("target", type_oid::TIMESTAMPTZ, TIMESTAMPTZ),
            Argument {
                default: Some("DEFAULT 1"),
                ..arg("k", type_oid::INT8, "bigint")
            },
        ],
        result_oid: type_oid::BOOL,
        result_type: "boolean",
        columns: &[],
        volatility: "i",
        description: "keeps the k rows of logs whose ts is closest to target, among the rows \
                      meeting the other conditions, closest first",
    },
    OwnFunction {
        oid: 16002,
        name: "ts_distance",
        arguments: &[
            arg("ts", type_oid::TIMESTAMPTZ, TIMESTAMPTZ),
            arg("target", type_oid::TIMESTAMPTZ, TIMESTAMPTZ),
        ],
        result_oid: type_oid::INTERVAL,
        result_type: "interval",
        columns: &[],
        volatility: "i",
        description: "how far ts is from target, as an interval",
    },
    OwnFunction {
        oid: 16003,
        name: "match",
        arguments: &[
            arg("document", type_oid::TEXT, "text"),
            arg("query", type_oid::TEXT, "text"),
        ],
        result_oid: type_oid::BOOL,
        result_type: "boolean",
        columns: &[],
        volatility: "i",
        description: "full-text search: whether the text's tokens satisfy the query (terms, \
                      \"phrases\", prefix*, field:value, AND, OR, NOT, -term)",
    },
    OwnFunction {
        oid: 16004,
        name: "log_context",
        arguments: &[
            arg("ts", type_oid::TIMESTAMPTZ, TIMESTAMPTZ),
            arg("host", type_oid::TEXT, "text"),
            arg("service", type_oid::TEXT, "text"),
            Argument {
                default: Some("DEFAULT 50"),
                ..arg("before", type_oid::INT8, "bigint")
            },
            Argument {
                default: Some("DEFAULT 50"),
                ..arg("after", type_oid::INT8, "bigint")
            },
        ],
        result_oid: type_oid::RECORD,
        result_type: "record",
        columns: LOG_ROW,
        volatility: "s",
        description: "the rows of a host (and service) at ts, with the before rows just before \
                      it and the after rows just after it, in time order",
    },
];

/// The function whose oid is `oid`.
pub fn by_oid(oid: i64) -> Option<&'static OwnFunction> {
    OWN_FUNCTIONS.iter().find(|f| i64::from(f.oid) == oid)
}

impl OwnFunction {
    /// `pg_get_function_arguments`: `name type [DEFAULT …]`, comma-separated.
    pub fn arguments_text(&self) -> String {
        self.arguments
            .iter()
            .map(|a| match a.default {
                Some(d) => format!("{} {} {d}", a.name, a.type_name),
                None => format!("{} {}", a.name, a.type_name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `pg_get_function_identity_arguments`: the arguments without their defaults.
    pub fn identity_arguments(&self) -> String {
        self.arguments
            .iter()
            .map(|a| format!("{} {}", a.name, a.type_name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `pg_get_function_result`: the result type, or `TABLE(name type, …)`.
    pub fn result(&self) -> String {
        if self.columns.is_empty() {
            return self.result_type.to_string();
        }
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.type_name))
            .collect();
        format!("TABLE({})", columns.join(", "))
    }

    /// Whether it returns a set of rows (`proretset`).
    pub fn returns_set(&self) -> bool {
        !self.columns.is_empty()
    }

    /// How many arguments have defaults (`pronargdefaults`).
    pub fn defaults(&self) -> usize {
        self.arguments
            .iter()
            .filter(|a| a.default.is_some())
            .count()
    }
}

/// Which fact a catalog function prints.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Fact {
    Result,
    Arguments,
    IdentityArguments,
    Description,
}

impl Fact {
    fn of(self, f: &OwnFunction) -> String {
        match self {
            Fact::Result => f.result(),
            Fact::Arguments => f.arguments_text(),
            Fact::IdentityArguments => f.identity_arguments(),
            Fact::Description => f.description.to_string(),
        }
    }
}

/// `pg_get_function_result(oid)`, `pg_get_function_arguments(oid)`,
/// `pg_get_function_identity_arguments(oid)` and `obj_description(oid [, catalog])`.
pub fn own_function_udfs() -> Vec<ScalarUDF> {
    [
        ("pg_get_function_result", Fact::Result),
        ("pg_get_function_arguments", Fact::Arguments),
        (
            "pg_get_function_identity_arguments",
            Fact::IdentityArguments,
        ),
        ("obj_description", Fact::Description),
    ]
    .into_iter()
    .map(|(name, fact)| {
        ScalarUDF::new_from_impl(FactOf {
            name,
            fact,
            signature: Signature::user_defined(Volatility::Stable),
        })
    })
    .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FactOf {
    name: &'static str,
    fact: Fact,
    signature: Signature,
}

impl ScalarUDFImpl for FactOf {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    /// An oid of any integer type (or text, as some catalogs here hold it), then for
    /// `obj_description` the catalog's name.
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let most = if self.fact == Fact::Description { 2 } else { 1 };
        if args.is_empty() || args.len() > most {
            return datafusion::common::plan_err!(
                "function {}({}) does not exist",
                self.name,
                args.iter()
                    .map(|_| "unknown")
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(args
            .iter()
            .enumerate()
            .map(|(i, t)| match (i, t) {
                (0, t) if t.is_integer() || t.is_null() => DataType::Int64,
                _ => DataType::Utf8,
            })
            .collect())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = arrays(&args.args, args.number_rows)?;
        let Some(oids) = arrays.first() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let oids = cast(oids, &DataType::Int64)?;
        let oids = oids.as_primitive::<Int64Type>();
        let catalogs = arrays.get(1).map(|c| c.as_string::<i32>());
        let out: StringArray = (0..oids.len())
            .map(|i| {
                if oids.is_null(i) {
                    return None;
                }
                // obj_description(oid, catalog): only pg_proc describes functions.
                if let Some(c) = catalogs {
                    if c.is_null(i) || c.value(i) != "pg_proc" {
                        return None;
                    }
                }
                by_oid(oids.value(i)).map(|f| self.fact.of(f))
            })
            .collect();
        answer(&args.args, Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_print_as_postgresql_prints_them() {
        let nearest = by_oid(16001).map(OwnFunction::arguments_text);
        assert_eq!(
            nearest.as_deref(),
            Some(
                "ts timestamp with time zone, target timestamp with time zone, k bigint DEFAULT 1"
            )
        );
        let context = by_oid(16004).map(OwnFunction::identity_arguments);
        assert_eq!(
            context.as_deref(),
            Some(
                "ts timestamp with time zone, host text, service text, before bigint, after bigint"
            )
        );
        assert_eq!(by_oid(16004).map(OwnFunction::defaults), Some(2));
        let row = by_oid(16004).map(OwnFunction::result).unwrap_or_default();
        assert!(
            row.starts_with("TABLE(ts timestamp with time zone, ingest_ts"),
            "{row}"
        );
        assert!(
            row.ends_with("parse_failed boolean, truncated boolean)"),
            "{row}"
        );
        assert!(by_oid(1).is_none());
    }

    #[test]
    fn oids_are_unique_and_outside_postgresqls_and_the_users() {
        for (i, f) in OWN_FUNCTIONS.iter().enumerate() {
            assert!((13_700..16_384).contains(&f.oid), "{}", f.name);
            assert!(OWN_FUNCTIONS[i + 1..].iter().all(|g| g.oid != f.oid));
            assert_eq!(
                f.returns_set(),
                f.result_oid == type_oid::RECORD,
                "{}",
                f.name
            );
        }
    }
}
