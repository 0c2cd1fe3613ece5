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
        return;
    };
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

        /// Decoding arbitrary stored JSON never panics.
        #[test]
        fn decode_never_panics(v in arb_json()) {
            let _ = decode(v);
        }
    }
}
