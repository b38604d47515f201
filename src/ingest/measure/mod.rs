//! Measures what a shipper request will build before it is decoded: a walk over the protobuf
//! wire format ([`proto`]) or the JSON text ([`json`]), led by the request's [`Shape`]
//! ([`shapes`]), that builds nothing and counts records and bytes (structs, strings, generic
//! JSON values, shared parts copied into each record) into a [`Budget`], refusing the moment a
//! limit is crossed. One mechanism for OTLP (protobuf over HTTP and gRPC, JSON), Loki
//! (protobuf and JSON) and the generic JSON values `/v1/ingest` and `_bulk` build.

pub mod json;
pub mod proto;
pub mod shapes;

use super::limits::{Budget, LimitError};

/// A message of a request's schema: what one instance costs once built, and its fields.
#[derive(Debug)]
pub struct Shape {
    /// Bytes one instance takes once built (its struct, or its slot in its parent's `Vec`).
    pub size: usize,
    /// Each instance becomes one record.
    pub record: bool,
    /// In JSON, the decoder holds an instance's entries as a generic tree while it decodes it
    /// (serde's `flatten`, as OTLP's `AnyValue`): everything under it is built once more.
    pub buffered: bool,
    pub fields: &'static [Field],
}

impl Shape {
    fn field(&self, number: u64) -> Option<&'static Field> {
        self.fields.iter().find(|f| u64::from(f.number) == number)
    }

    fn named(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.names.contains(&name))
    }
}

/// A field of a [`Shape`].
#[derive(Debug)]
pub struct Field {
    /// Its protobuf field number (0 for a field only JSON has).
    pub number: u32,
    /// Its JSON keys.
    pub names: &'static [&'static str],
    pub kind: Kind,
    /// In JSON, its value is an array of instances (in protobuf each occurrence is one).
    pub repeated: bool,
    /// Copied into every record under the message holding it (OTLP resources and scopes, Loki
    /// stream labels).
    pub shared: bool,
}

/// What a field holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Message(&'static Shape),
    /// A string or bytes: held once decoded and once more in the record built from it.
    Text,
    /// A number or a bool: part of its message's struct (packed in protobuf: up to 8 bytes per
    /// byte sent).
    Scalar,
    /// Built as a generic JSON value (`serde_json::Value`), every node of it.
    Any,
}

/// Why a request was refused while being measured.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum MeasureError {
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error("malformed protobuf: {0}")]
    Wire(&'static str),
    #[error("{0}")]
    Json(String),
}

/// Times a decoded string's bytes are held: as decoded, and in the record built from it.
const TEXT_COPIES: usize = 2;

/// Times a shared part is held per record: as its pairs, and in the record's `attrs` text.
const SHARED_COPIES: usize = 2;

/// Bytes of one generic JSON value (a `serde_json::Value` or serde's buffered content) with its
/// slot in its parent array or map.
pub const NODE_BYTES: usize = 64;

/// What was counted under one value: records, and bytes charged.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    records: usize,
    bytes: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.records = self.records.saturating_add(other.records);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Charges `n` bytes, returning them as a tally.
fn charge(budget: &mut Budget, n: usize) -> Result<Tally, LimitError> {
    budget.bytes(n)?;
    Ok(Tally {
        records: 0,
        bytes: n,
    })
}

/// Charges a decoded string of `len` bytes.
fn text(budget: &mut Budget, len: usize) -> Result<Tally, LimitError> {
    charge(budget, len.saturating_mul(TEXT_COPIES))
}

/// One message instance being measured: what is under it, and which part of that is shared.
struct Open {
    under: Tally,
    shared: usize,
}

impl Open {
    /// Charges an instance of `shape` (and its record, if it is one).
    fn start(shape: &Shape, budget: &mut Budget) -> Result<Open, LimitError> {
        let mut under = charge(budget, shape.size)?;
        if shape.record {
            budget.record()?;
            under.records = 1;
        }
        Ok(Open { under, shared: 0 })
    }

    /// Adds what a field's value counted.
    fn add(&mut self, field: Option<&Field>, t: Tally) {
        self.under.add(t);
        if field.is_some_and(|f| f.shared) {
            self.shared = self.shared.saturating_add(t.bytes);
        }
    }

    /// Charges the shared parts' copies into every record under the instance.
    fn close(self, budget: &mut Budget) -> Result<Tally, LimitError> {
        let copies = self
            .under
            .records
            .saturating_mul(self.shared)
            .saturating_mul(SHARED_COPIES);
        let mut t = self.under;
        t.add(charge(budget, copies)?);
        Ok(t)
    }
}
