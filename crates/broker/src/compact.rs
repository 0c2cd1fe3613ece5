//! A compact, exactly reversible encoding of evidence JSON for the attested-session record.
//!
//! The KBS evidence forms carry certificates as JSON arrays of byte values (`"data": [48, 130,
//! ...]`), close to four characters per byte: a session record of simulator SNP evidence was
//! 15 KB, and writing it was the largest single cost of `/attest` in both stores. [`encode`]
//! turns every array of at least [`MIN_RUN`] integers in `0..=255` into `{"b64": "<base64>"}`;
//! [`decode`] turns such objects back. The session's evidence is verified again from the
//! decoded record when another replica (or a restarted broker) serves the session, so the
//! decoded value must be exactly the value verified at `/attest`: [`encode`] refuses (returns
//! `None`) evidence that already holds an object [`decode`] would rewrite, and the caller then
//! stores the evidence as it came.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeSeed as _;
use serde_json::{Map, Value};

/// Shortest array of byte values that is encoded (short arrays gain nothing).
pub const MIN_RUN: usize = 32;

/// The key of an encoded run.
const KEY: &str = "b64";

/// Deepest nesting walked; evidence is far shallower, and deeper values are refused.
const MAX_DEPTH: usize = 64;

fn as_bytes(items: &[Value]) -> Option<Vec<u8>> {
    if items.len() < MIN_RUN {
        return None;
    }
    items
        .iter()
        .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
        .collect()
}

fn is_run(map: &Map<String, Value>) -> bool {
    map.len() == 1 && map.get(KEY).is_some_and(Value::is_string)
}

fn enc(v: &Value, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    Some(match v {
        Value::Array(items) => match as_bytes(items) {
            Some(bytes) => {
                let mut m = Map::new();
                m.insert(KEY.to_owned(), Value::String(STANDARD.encode(bytes)));
                Value::Object(m)
            }
            None => Value::Array(
                items
                    .iter()
                    .map(|i| enc(i, depth + 1))
                    .collect::<Option<_>>()?,
            ),
        },
        Value::Object(map) => {
            if is_run(map) {
                return None;
            }
            let mut out = Map::new();
            for (k, item) in map {
                out.insert(k.clone(), enc(item, depth + 1)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// The compact form of `v`, or `None` when `v` cannot be encoded reversibly (it holds an object
/// of the encoded form, or nests deeper than 64 levels).
#[must_use]
pub fn encode(v: &Value) -> Option<Value> {
    enc(v, 0)
}

/// [`encode`] of JSON text, without first building the arrays of byte values as `Value`s (one
/// per byte): the same result as `encode(&serde_json::from_str(text)?)`, and `None` where that is
/// `None` or the text is not JSON (a property test checks this).
#[must_use]
pub fn encode_text(text: &str) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Seed { depth: 0 }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// One value at `depth`, compacted as [`enc`] would; an error (then `None`) where [`enc`]
/// refuses.
#[derive(Clone, Copy)]
struct Seed {
    depth: usize,
}

/// An array element: a byte value (maybe part of a run), or anything else, already compacted.
enum Item {
    Byte(u8),
    Other(Value),
}

/// An array element at `depth`; a scalar too deep is kept (its array may be a run, which
/// [`enc`] does not walk into) and judged by the array.
struct ItemSeed {
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for ItemSeed {
    type Value = Item;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V(usize);
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(u8::try_from(n).map_or(Item::Other(n.into()), Item::Byte))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(u8::try_from(n).map_or(Item::Other(n.into()), Item::Byte))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Ok(Item::Other(ScalarVisitor.visit_f64(n)?))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Item::Other(Value::Bool(b)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Item::Other(Value::String(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Item::Other(Value::String(s)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Item::Other(Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Ok(Item::Other(Seed { depth: self.0 }.visit_seq(seq)?))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                Ok(Item::Other(Seed { depth: self.0 }.visit_map(map)?))
            }
        }
        d.deserialize_any(V(self.depth))
    }
}

/// Scalars as `serde_json` reads them into a `Value`.
struct ScalarVisitor;

impl ScalarVisitor {
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }
}

impl Seed {
    fn too_deep<E: serde::de::Error>(self) -> Result<(), E> {
        if self.depth > MAX_DEPTH {
            Err(E::custom("nested too deep"))
        } else {
            Ok(())
        }
    }

    fn visit_seq<'de, A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.too_deep()?;
        let mut bytes: Vec<u8> = Vec::new();
        let mut items: Option<Vec<Value>> = None;
        while let Some(item) = seq.next_element_seed(ItemSeed {
            depth: self.depth + 1,
        })? {
            match (item, &mut items) {
                (Item::Byte(b), None) => bytes.push(b),
                (Item::Byte(b), Some(list)) => list.push(Value::from(b)),
                (Item::Other(v), list) => {
                    let list = list.get_or_insert_with(|| {
                        bytes.iter().map(|b| Value::from(*b)).collect::<Vec<_>>()
                    });
                    list.push(v);
                }
            }
        }
        match items {
            None if bytes.len() >= MIN_RUN => {
                let mut m = Map::new();
                m.insert(KEY.to_owned(), Value::String(STANDARD.encode(&bytes)));
                Ok(Value::Object(m))
            }
            None => {
                // Not a run: [`enc`] walks the elements, which must not be too deep.
                if !bytes.is_empty() {
                    Seed {
                        depth: self.depth + 1,
                    }
                    .too_deep()?;
                }
                Ok(Value::Array(bytes.into_iter().map(Value::from).collect()))
            }
            Some(list) => {
                if !list.is_empty() {
                    Seed {
                        depth: self.depth + 1,
                    }
                    .too_deep()?;
                }
                Ok(Value::Array(list))
            }
        }
    }

    fn visit_map<'de, A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.too_deep()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Seed {
                depth: self.depth + 1,
            })?;
            out.insert(key, value);
        }
        if is_run(&out) {
            // Evidence already holding the encoded shape: [`encode`] refuses it.
            return Err(serde::de::Error::custom("holds the encoded shape"));
        }
        Ok(Value::Object(out))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Seed {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        struct V(Seed);
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Value, E> {
                self.0.too_deep()?;
                Ok(n.into())
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Value, E> {
                self.0.too_deep()?;
                Ok(n.into())
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
                self.0.too_deep()?;
                ScalarVisitor.visit_f64(n)
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
                self.0.too_deep()?;
                Ok(Value::Bool(b))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
                self.0.too_deep()?;
                Ok(Value::String(s.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Value, E> {
                self.0.too_deep()?;
                Ok(Value::String(s))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
                self.0.too_deep()?;
                Ok(Value::Null)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
                self.0.visit_seq(seq)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
                self.0.visit_map(map)
            }
        }
        d.deserialize_any(V(self))
    }
}

fn dec(v: Value, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    Some(match v {
        Value::Object(map) if is_run(&map) => {
            let text = map.get(KEY).and_then(Value::as_str)?;
            let bytes = STANDARD.decode(text).ok()?;
            Value::Array(bytes.into_iter().map(Value::from).collect())
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, item) in map {
                out.insert(k, dec(item, depth + 1)?);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| dec(i, depth + 1))
                .collect::<Option<_>>()?,
        ),
        other => other,
    })
}

/// The value [`encode`] was given, or `None` for a malformed run (bad base64) or nesting deeper
/// than 64 levels.
#[must_use]
pub fn decode(v: Value) -> Option<Value> {
    dec(v, 0)
}

/// Fuzz entry point: any JSON text as a stored record's compact evidence. Decoding never
/// panics, and whatever [`encode`] accepts decodes to exactly itself.
#[doc(hidden)]
pub fn fuzz_record(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        if let Ok(text) = std::str::from_utf8(data) {
            assert_eq!(
                encode_text(text),
                None,
                "encode_text of text that is not JSON"
            );
        }
        return;
    };
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(
            encode_text(text),
            encode(&v),
            "encode_text and encode disagree"
        );
    }
    if let Some(e) = encode(&v) {
        assert_eq!(decode(e).as_ref(), Some(&v), "compact round trip");
    }
    let _ = decode(v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn certificate_arrays_shrink_and_come_back() {
        let der: Vec<u8> = (0..=255).cycle().take(1300).collect();
        let v = json!({"report": "AAAA", "cert_chain": [{"cert_type": "VCEK", "data": der}]});
        let e = encode(&v).unwrap();
        assert!(e.to_string().len() * 2 < v.to_string().len());
        assert_eq!(
            e["cert_chain"][0]["data"]["b64"].as_str().unwrap().len(),
            1736
        );
        assert_eq!(decode(e).unwrap(), v);
    }

    #[test]
    fn short_arrays_and_non_bytes_stay() {
        let v = json!({"a": [1, 2, 3], "b": vec![256; 40], "c": vec![-1; 40], "d": vec![1.5; 40]});
        assert_eq!(encode(&v).unwrap(), v);
    }

    #[test]
    fn evidence_that_looks_encoded_is_refused() {
        assert_eq!(encode(&json!({"x": {"b64": "AAAA"}})), None);
        // Not the encoded shape: two keys, or a non-string value.
        let v = json!({"x": {"b64": "AAAA", "y": 1}, "z": {"b64": 3}});
        assert_eq!(decode(encode(&v).unwrap()).unwrap(), v);
    }

    #[test]
    fn encode_text_agrees_at_the_edges() {
        let run = |n: usize| serde_json::to_string(&vec![7u8; n]).unwrap();
        let mut cases = vec![
            run(MIN_RUN - 1),
            run(MIN_RUN),
            format!("{{\"a\": {}, \"a\": 1}}", run(40)),
            r#"{"x": {"b64": "AAAA"}}"#.to_owned(),
            r#"{"b64": "AAAA", "b64": 1}"#.to_owned(),
            r#"{"b64": [1, 2]}"#.to_owned(),
            "[-0, 0.0, 1.0, 255, 256, -1, 1e3]".to_owned(),
            "not json".to_owned(),
            "[1] trailing".to_owned(),
        ];
        // Nesting around the limit: a run just inside it, short arrays and scalars beyond it.
        for depth in [62, 63, 64, 65, 66] {
            for inner in [
                run(40),
                run(3),
                "1".to_owned(),
                "[]".to_owned(),
                "{}".to_owned(),
            ] {
                cases.push(format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth)));
                cases.push(format!(
                    "{}{inner}{}",
                    "{\"k\":".repeat(depth),
                    "}".repeat(depth)
                ));
            }
        }
        for text in &cases {
            let by_value = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| encode(&v));
            assert_eq!(encode_text(text), by_value, "{text:.80}");
        }
    }

    #[test]
    fn malformed_runs_and_deep_nesting_are_refused() {
        assert_eq!(decode(json!({"b64": "!!!"})), None);
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        assert_eq!(encode(&deep), None);
        assert_eq!(decode(deep), None);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u8>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z0-9]{0,6}".prop_map(Value::from),
            proptest::collection::vec(any::<u8>(), 0..80).prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z0-9]{1,4}|b64", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever is encoded decodes to exactly itself.
        #[test]
        fn round_trip_is_exact(v in arb_json()) {
            if let Some(e) = encode(&v) {
                prop_assert_eq!(decode(e).unwrap(), v);
            }
        }

        /// Encoding the text gives what encoding the parsed value gives.
        #[test]
        fn encode_text_is_encode_of_the_parsed_text(v in arb_json()) {
            prop_assert_eq!(encode_text(&v.to_string()), encode(&v));
        }

        /// Decoding arbitrary stored JSON never panics.
        #[test]
        fn decode_never_panics(v in arb_json()) {
            let _ = decode(v);
        }
    }
}
