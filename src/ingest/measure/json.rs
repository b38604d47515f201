//! The JSON side of [`measure`](super): serde_json's parser driving visitors that build
//! nothing, led by a [`Shape`] (typed decoding: known keys are fields, the rest skipped) or by
//! none (generic decoding into `serde_json::Value`: every node counts).

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{charge, text, Field, Kind, MeasureError, Open, Shape, Tally, NODE_BYTES};
use crate::ingest::limits::{Budget, LimitError};

/// Measures a JSON body decoded as `kind`, `generic` times held as a generic tree as well (0
/// for a typed decoder, 1 for a body decoded into `serde_json::Value`).
pub fn measure(body: &[u8], kind: Kind, generic: usize) -> Result<Budget, MeasureError> {
    let mut budget = Budget::default();
    let mut walk = Walk {
        budget: &mut budget,
        refused: None,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = Seed::new(&mut walk, Expect::One(kind), generic);
    let result = seed.deserialize(&mut de).and_then(|_| de.end());
    match (result, walk.refused) {
        (_, Some(limit)) => Err(MeasureError::Limit(limit)),
        (Err(e), None) => Err(MeasureError::Json(e.to_string())),
        (Ok(()), None) => Ok(budget),
    }
}

/// Measures JSON text decoded into a `serde_json::Value` (an event, a `_bulk` line).
pub fn measure_value(text: &str) -> Result<Budget, MeasureError> {
    measure(text.as_bytes(), Kind::Any, 1)
}

struct Walk<'b> {
    budget: &'b mut Budget,
    /// The limit crossed, if one was (serde's error then only says the walk stopped).
    refused: Option<LimitError>,
}

impl Walk<'_> {
    fn refuse<E: de::Error>(&mut self, e: LimitError) -> E {
        let text = e.to_string();
        self.refused = Some(e);
        E::custom(text)
    }

    fn charge<E: de::Error>(&mut self, n: usize) -> Result<Tally, E> {
        charge(self.budget, n).map_err(|e| self.refuse(e))
    }

    fn text<E: de::Error>(&mut self, len: usize) -> Result<Tally, E> {
        text(self.budget, len).map_err(|e| self.refuse(e))
    }

    fn open<E: de::Error>(&mut self, shape: &Shape) -> Result<Open, E> {
        Open::start(shape, self.budget).map_err(|e| self.refuse(e))
    }

    fn close<E: de::Error>(&mut self, open: Open) -> Result<Tally, E> {
        open.close(self.budget).map_err(|e| self.refuse(e))
    }
}

/// What the decoder makes of a value.
#[derive(Clone, Copy)]
enum Expect {
    /// One value of a kind.
    One(Kind),
    /// An array of values of a kind (a lone value counts as one).
    Many(Kind),
    /// Nothing: skipped by a typed decoder, a generic node otherwise.
    Other,
}

impl Expect {
    fn of(field: Option<&Field>) -> Expect {
        match field {
            Some(f) if f.repeated => Expect::Many(f.kind),
            Some(f) => Expect::One(f.kind),
            None => Expect::Other,
        }
    }
}

/// Measures one value.
struct Seed<'w, 'b> {
    walk: &'w mut Walk<'b>,
    expect: Expect,
    /// How many generic copies of this value are held.
    generic: usize,
}

impl<'w, 'b> Seed<'w, 'b> {
    fn new(walk: &'w mut Walk<'b>, expect: Expect, generic: usize) -> Seed<'w, 'b> {
        let (expect, generic) = match expect {
            Expect::One(Kind::Any) | Expect::Many(Kind::Any) => (Expect::Other, generic.max(1)),
            other => (other, generic),
        };
        Seed {
            walk,
            expect,
            generic,
        }
    }

    /// The generic node this value is, and its message instance if it is one that is not an
    /// object (a Loki `values` tuple, a bare value where a message was expected).
    fn leaf<E: de::Error>(self, text_len: Option<usize>) -> Result<Tally, E> {
        let g = self.generic;
        let node = NODE_BYTES.saturating_add(text_len.unwrap_or(0));
        let mut t = self.walk.charge(g.saturating_mul(node))?;
        match (self.expect, text_len) {
            (Expect::One(Kind::Text) | Expect::Many(Kind::Text), Some(len)) => {
                t.add(self.walk.text(len)?)
            }
            (Expect::One(Kind::Message(shape)) | Expect::Many(Kind::Message(shape)), _) => {
                let mut open = self.walk.open(shape)?;
                open.add(None, t);
                t = self.walk.close(open)?;
            }
            _ => {}
        }
        Ok(t)
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Tally;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Tally, D::Error> {
        if matches!(self.expect, Expect::Other) && self.generic == 0 {
            IgnoredAny::deserialize(d)?;
            return Ok(Tally::default());
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Tally;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Tally, E> {
        self.leaf(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Tally, E> {
        self.leaf(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Tally, E> {
        self.leaf(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Tally, E> {
        self.leaf(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Tally, E> {
        self.leaf(None)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tally, E> {
        self.leaf(Some(v.len()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tally, A::Error> {
        let g = self.generic;
        let walk = self.walk;
        let mut t = walk.charge(g.saturating_mul(NODE_BYTES))?;
        match self.expect {
            Expect::Many(kind) => {
                while let Some(item) =
                    seq.next_element_seed(Seed::new(walk, Expect::One(kind), g))?
                {
                    t.add(item);
                }
            }
            Expect::One(Kind::Message(shape)) => {
                let mut open = walk.open(shape)?;
                open.add(None, t);
                while let Some(item) = seq.next_element_seed(Seed::new(walk, Expect::Other, g))? {
                    open.add(None, item);
                }
                t = walk.close(open)?;
            }
            _ => {
                while let Some(item) = seq.next_element_seed(Seed::new(walk, Expect::Other, g))? {
                    t.add(item);
                }
            }
        }
        Ok(t)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tally, A::Error> {
        let g = self.generic;
        let walk = self.walk;
        let node = walk.charge(g.saturating_mul(NODE_BYTES))?;
        let shape = match self.expect {
            Expect::One(Kind::Message(shape)) | Expect::Many(Kind::Message(shape)) => Some(shape),
            _ => None,
        };
        let Some(shape) = shape else {
            let mut t = node;
            while let Some(key) = map.next_key_seed(Key::new(walk, None, g))? {
                t.add(key.1);
                t.add(map.next_value_seed(Seed::new(walk, Expect::Other, g))?);
            }
            return Ok(t);
        };
        let g = g.saturating_add(usize::from(shape.buffered));
        let mut open = walk.open(shape)?;
        open.add(None, node);
        while let Some((field, key)) = map.next_key_seed(Key::new(walk, Some(shape), g))? {
            open.add(None, key);
            let value = map.next_value_seed(Seed::new(walk, Expect::of(field), g))?;
            open.add(field, value);
        }
        walk.close(open)
    }
}

/// Measures a key and finds the field it names.
struct Key<'w, 'b> {
    walk: &'w mut Walk<'b>,
    shape: Option<&'static Shape>,
    generic: usize,
}

impl<'w, 'b> Key<'w, 'b> {
    fn new(walk: &'w mut Walk<'b>, shape: Option<&'static Shape>, generic: usize) -> Self {
        Key {
            walk,
            shape,
            generic,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = (Option<&'static Field>, Tally);

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_> {
    type Value = (Option<&'static Field>, Tally);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = self.walk.charge(self.generic.saturating_mul(v.len()))?;
        Ok((self.shape.and_then(|s| s.named(v)), t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::limits::MAX_RECORDS;
    use crate::ingest::measure::shapes::{LOKI_JSON, OTLP_LOGS};

    fn otlp(records: &str) -> String {
        format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"api"}}}}]}},"scopeLogs":[{{"logRecords":[{records}]}}]}}]}}"#
        )
    }

    #[test]
    fn otlp_records_are_counted_and_unknown_keys_skipped() {
        let body = otlp(r#"{"body":{"stringValue":"a"}},{"junk":[[],[],[]]},{}"#);
        let b = measure(body.as_bytes(), Kind::Message(&OTLP_LOGS), 0).unwrap_or_default();
        assert_eq!(b.records(), 3);
        let empty: Vec<&str> = vec!["{}"; MAX_RECORDS + 1];
        let body = otlp(&empty.join(","));
        assert!(matches!(
            measure(body.as_bytes(), Kind::Message(&OTLP_LOGS), 0),
            Err(MeasureError::Limit(LimitError::Records { .. }))
        ));
    }

    #[test]
    fn generic_values_count_every_node() {
        let many = format!("[{}]", vec!["[]"; 3_000_000].join(","));
        assert!(matches!(
            measure_value(&many),
            Err(MeasureError::Limit(LimitError::Expanded { .. }))
        ));
        let b = measure_value(r#"{"a":[1,2,{"b":"xyz"}]}"#).unwrap_or_default();
        assert_eq!(b.total_bytes(), 6 * NODE_BYTES + 2 + 3);
        assert!(matches!(measure_value("[1,"), Err(MeasureError::Json(_))));
        assert!(matches!(measure_value("[1] x"), Err(MeasureError::Json(_))));
    }

    #[test]
    fn loki_entries_are_records_and_stream_labels_are_copied_into_each() {
        let body = br#"{"streams":[{"stream":{"job":"x"},"values":[["1","a"],["2","b",{"k":"v"}],"three"]},{"labels":"{a=\"b\"}","entries":[{"ts":"t","line":"l"}]}]}"#;
        let b = measure(body, Kind::Message(&LOKI_JSON), 1).unwrap_or_default();
        assert_eq!(b.records(), 4);
        let label = "l".repeat(100_000);
        let values = vec![r#"["1","a"]"#; 1000].join(",");
        let body =
            format!(r#"{{"streams":[{{"stream":{{"job":"{label}"}},"values":[{values}]}}]}}"#);
        assert!(matches!(
            measure(body.as_bytes(), Kind::Message(&LOKI_JSON), 1),
            Err(MeasureError::Limit(LimitError::Expanded { .. }))
        ));
    }
}
