//! `pg_catalog`'s columns typed as PostgreSQL 15 types them, and the columns clients read that
//! the bundled catalog lacks. Identifiers are `name`, one-letter codes `"char"` and object ids
//! `oid` on the wire (`pg15_catalog_types.tsv`, read from a PostgreSQL 15's own catalog), marked
//! in each field's metadata ([`PG_TYPE_KEY`], and `arrow-pg`'s keys for `"char"` and `oid`). The bundled tables hold arrays as their text
//! (`'{a,b}'`, an `int2vector`'s `'1 2'`): here they are real arrays, so `= ANY(conkey)`,
//! `indoption[i]`, `unnest(indkey)` and `array_to_string(nspacl, …)` answer as in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayBuilder, ArrayRef, AsArray, Int16Builder, Int32Builder,
    ListBuilder, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// Field metadata naming the PostgreSQL type a text column is reported as (`name`, `varchar`):
/// the same text on the wire, the type clients see in a row description.
pub const PG_TYPE_KEY: &str = "timberline.pg_type";

/// `table\tcolumn\ttype` for PostgreSQL 15's `name`, `"char"` and `oid` catalog columns.
const PG15_TYPES: &str = include_str!("pg15_catalog_types.tsv");

/// PostgreSQL 15's type of `table.column`, if it is `name`, `char` or `oid`.
fn pg15_type(table: &str, column: &str) -> Option<&'static str> {
    PG15_TYPES.lines().find_map(|line| {
        let mut parts = line.split('\t');
        (parts.next() == Some(table) && parts.next() == Some(column))
            .then(|| parts.next())
            .flatten()
    })
}

/// `field` marked as PostgreSQL's `pg_type` (`name`, `varchar`, `char`, `oid`), when its
/// Arrow type carries that type's text; otherwise unchanged.
pub fn typed(field: Field, pg_type: &str) -> Field {
    let mut metadata = field.metadata().clone();
    match (pg_type, field.data_type()) {
        ("name" | "varchar", DataType::Utf8) => {
            metadata.insert(PG_TYPE_KEY.into(), pg_type.into());
        }
        ("char", DataType::Utf8) => {
            metadata.insert(arrow_pg::datatypes::PG_CHAR_KEY.into(), String::new());
        }
        ("oid", DataType::Int32) => {
            metadata.insert(arrow_pg::datatypes::PG_OID_ALIAS_KEY.into(), "oid".into());
        }
        _ => return field,
    }
    field.with_metadata(metadata)
}

/// An element type of a catalog array.
#[derive(Debug, Clone, Copy)]
enum Element {
    /// `int2vector`, `int2[]`.
    Int2,
    /// `oidvector`, `oid[]` (oids are `integer` in this catalog).
    Oid,
    /// `text[]`, `"char"[]`, `aclitem[]`, `name[]`.
    Text,
}

impl Element {
    fn data_type(self) -> DataType {
        match self {
            Element::Int2 => DataType::Int16,
            Element::Oid => DataType::Int32,
            Element::Text => DataType::Utf8,
        }
    }
}

/// (table, column, element): the array columns, PostgreSQL 15's catalog.
const ARRAYS: &[(&str, &str, Element)] = &[
    ("pg_attribute", "attacl", Element::Text),
    ("pg_attribute", "attoptions", Element::Text),
    ("pg_class", "relacl", Element::Text),
    ("pg_class", "reloptions", Element::Text),
    ("pg_constraint", "conkey", Element::Int2),
    ("pg_constraint", "confkey", Element::Int2),
    ("pg_constraint", "conpfeqop", Element::Oid),
    ("pg_constraint", "conppeqop", Element::Oid),
    ("pg_constraint", "conffeqop", Element::Oid),
    ("pg_constraint", "conexclop", Element::Oid),
    ("pg_database", "datacl", Element::Text),
    ("pg_index", "indkey", Element::Int2),
    ("pg_index", "indcollation", Element::Oid),
    ("pg_index", "indclass", Element::Oid),
    ("pg_index", "indoption", Element::Int2),
    ("pg_namespace", "nspacl", Element::Text),
    ("pg_policy", "polroles", Element::Oid),
    ("pg_proc", "proargtypes", Element::Oid),
    ("pg_proc", "proallargtypes", Element::Oid),
    ("pg_proc", "proargmodes", Element::Text),
    ("pg_proc", "proargnames", Element::Text),
    ("pg_proc", "proconfig", Element::Text),
    ("pg_proc", "proacl", Element::Text),
    ("pg_statistic_ext", "stxkeys", Element::Int2),
    ("pg_statistic_ext", "stxkind", Element::Text),
    ("pg_type", "typacl", Element::Text),
];

/// Text columns PostgreSQL 15 has and the bundled catalog lacks (NULL here).
const MISSING_TEXT: &[(&str, &str)] = &[("pg_database", "datcollversion")];

/// Whether `table`'s shape or types change here.
pub fn reshapes(table: &str) -> bool {
    ARRAYS.iter().any(|(t, ..)| *t == table)
        || MISSING_TEXT.iter().any(|(t, _)| *t == table)
        || PG15_TYPES
            .lines()
            .any(|l| l.split('\t').next() == Some(table))
}

/// `schema` of the bundled `table` as PostgreSQL 15 has it.
pub fn schema(table: &str, schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match array_of(table, f.name()) {
            Some(e) => Field::new(f.name(), list_type(e), true),
            None => match pg15_type(table, f.name()) {
                Some(t) => typed(f.as_ref().clone(), t),
                None => f.as_ref().clone(),
            },
        })
        .collect();
    for (t, c, e) in ARRAYS {
        if *t == table && schema.index_of(c).is_err() {
            fields.push(Field::new(*c, list_type(*e), true));
        }
    }
    for (t, c) in MISSING_TEXT {
        if *t == table && schema.index_of(c).is_err() {
            fields.push(Field::new(*c, DataType::Utf8, true));
        }
    }
    Arc::new(Schema::new(fields))
}

fn array_of(table: &str, column: &str) -> Option<Element> {
    ARRAYS
        .iter()
        .find(|(t, c, _)| *t == table && *c == column)
        .map(|(.., e)| *e)
}

fn list_type(e: Element) -> DataType {
    DataType::List(Arc::new(Field::new("item", e.data_type(), true)))
}

/// `batch` of the bundled `table` in the shape of [`schema`] (`to`).
pub fn reshape(table: &str, batch: &RecordBatch, to: &SchemaRef) -> Result<RecordBatch> {
    let from = batch.schema();
    let mut columns = Vec::with_capacity(to.fields().len());
    for field in to.fields() {
        let column = match from.index_of(field.name()) {
            Ok(i) => match array_of(table, field.name()) {
                Some(e) if batch.column(i).data_type() != field.data_type() => {
                    arrays(&cast(batch.column(i), &DataType::Utf8)?, e)
                }
                _ => batch.column(i).clone(),
            },
            Err(_) => new_null_array(field.data_type(), batch.num_rows()),
        };
        columns.push(column);
    }
    Ok(RecordBatch::try_new(to.clone(), columns)?)
}

/// PostgreSQL's array text (`{a,"b c"}`, or a vector's `1 2`) as arrays of `e`.
fn arrays(text: &ArrayRef, e: Element) -> ArrayRef {
    let text = text.as_string::<i32>();
    let rows = (0..text.len()).map(|i| (!text.is_null(i)).then(|| elements(text.value(i))));
    match e {
        Element::Text => lists(rows, StringBuilder::new(), |b, v| b.append_option(v)),
        Element::Int2 => lists(rows, Int16Builder::new(), |b, v| {
            b.append_option(v.and_then(|v| v.parse().ok()))
        }),
        Element::Oid => lists(rows, Int32Builder::new(), |b, v| {
            b.append_option(v.and_then(|v| v.parse().ok()))
        }),
    }
}

/// A list array of `rows` (a `None` row is a NULL array), each element put by `push`.
fn lists<B: ArrayBuilder>(
    rows: impl Iterator<Item = Option<Vec<Option<String>>>>,
    values: B,
    mut push: impl FnMut(&mut B, Option<String>),
) -> ArrayRef {
    let mut b = ListBuilder::new(values);
    for row in rows {
        match row {
            Some(items) => {
                for item in items {
                    push(b.values(), item);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// The elements of one array's text; `NULL` (unquoted) is a null element.
fn elements(text: &str) -> Vec<Option<String>> {
    let Some(inner) = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
    else {
        return text
            .split_ascii_whitespace()
            .map(|w| Some(w.to_string()))
            .collect();
    };
    let mut out = Vec::new();
    let mut item = String::new();
    let (mut quoted, mut was_quoted, mut escaped) = (false, false, false);
    let mut push = |item: &mut String, was_quoted: bool| {
        let value = std::mem::take(item);
        out.push((was_quoted || !value.eq_ignore_ascii_case("null")).then_some(value));
    };
    if inner.is_empty() {
        return out;
    }
    for c in inner.chars() {
        match c {
            _ if escaped => {
                item.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                push(&mut item, was_quoted);
                was_quoted = false;
            }
            _ => item.push(c),
        }
    }
    push(&mut item, was_quoted);
    out
}

#[cfg(test)]
mod tests {
    use super::elements;

    #[test]
    fn array_text_and_vectors_split_into_elements() {
        let s = |v: &[&str]| v.iter().map(|x| Some(x.to_string())).collect::<Vec<_>>();
        assert_eq!(elements("{a,b}"), s(&["a", "b"]));
        assert_eq!(elements("1 2 3"), s(&["1", "2", "3"]));
        assert_eq!(elements("{}"), Vec::<Option<String>>::new());
        assert_eq!(
            elements(r#"{"a,b",NULL,"NULL","x\"y"}"#),
            vec![
                Some("a,b".into()),
                None,
                Some("NULL".into()),
                Some("x\"y".into())
            ]
        );
        assert_eq!(
            elements("{=Tc/postgres,postgres=CTc/postgres}"),
            s(&["=Tc/postgres", "postgres=CTc/postgres"])
        );
    }
}

/// The functions whose value PostgreSQL types `name` (`current_database()`, `current_user`, …).
pub const NAME_FUNCTIONS: &[&str] = &[
    "current_database",
    "current_schema",
    "current_user",
    "session_user",
    "current_catalog",
    "user",
];

/// `inner`, its result marked as PostgreSQL's `name` ([`PG_TYPE_KEY`]).
pub fn name_typed(inner: Arc<ScalarUDF>) -> ScalarUDF {
    ScalarUDF::new_from_impl(NameTyped { inner })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct NameTyped {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for NameTyped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let field = self.inner.return_field_from_args(args)?;
        Ok(Arc::new(typed(field.as_ref().clone(), "name")))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(args)
    }
}
