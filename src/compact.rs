//! A compact, exactly reversible encoding of KBS evidence JSON, for keeping evidence (the key
//! broker's attested-session record) and for decoding it quickly.
//!
//! The KBS evidence forms carry certificates as JSON arrays of byte values (`"data": [48, 130,
//! ...]`), close to four characters per byte, about 4,000 numbers for an SEV-SNP chain: a
//! session record of simulator SNP evidence was 15 KB, and writing it was the largest single
//! cost of `/attest` in both of the broker's stores. [`encode`] (on a value) and
//! [`encode_text`] (on JSON text, without building a value) turn every array of at least
//! [`MIN_RUN`] integers in `0..=255` into `{"b64": "<base64>"}`; [`decode`] turns such objects
//! back. The decoded value must be exactly the value encoded (evidence is verified again from
//! it): both encoders refuse (return `None`) evidence that could already hold an object
//! [`decode`] would rewrite, and the caller then keeps the evidence as it came.
//!
//! [`crate::Evidence::from_kbs_compact`] decodes evidence from its compact text directly, which
//! is several times faster than parsing the original's thousands of numbers: the broker encodes
//! the text of `/attest`'s evidence once, decodes the evidence from the result and stores the
//! same result.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// Shortest array of byte values that is encoded (short arrays gain nothing).
pub const MIN_RUN: usize = 32;

/// The key of an encoded run.
pub(crate) const KEY: &str = "b64";

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

/// JSON's insignificant whitespace.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while text.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

/// At `open` (a `[`), an array of at least [`MIN_RUN`] integers in `0..=255` written plainly
/// (no sign, fraction, exponent or leading zero): its bytes, in `bytes` (cleared first), and the
/// index just past its `]`.
fn byte_run(text: &[u8], open: usize, bytes: &mut Vec<u8>) -> Option<usize> {
    bytes.clear();
    let mut i = open + 1;
    loop {
        i = skip_ws(text, i);
        // One to three digits, no leading zero, at most 255.
        let first = text.get(i).copied().filter(u8::is_ascii_digit)?;
        let mut n = u32::from(first - b'0');
        i += 1;
        if first != b'0' {
            for _ in 0..2 {
                match text.get(i).copied().filter(u8::is_ascii_digit) {
                    Some(d) => {
                        n = n * 10 + u32::from(d - b'0');
                        i += 1;
                    }
                    None => break,
                }
            }
        }
        if text.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        bytes.push(u8::try_from(n).ok()?);
        i = skip_ws(text, i);
        match text.get(i) {
            Some(b',') => i += 1,
            Some(b']') => break,
            _ => return None,
        }
    }
    (bytes.len() >= MIN_RUN).then_some(i + 1)
}

/// The index of the quote closing the JSON string opened at `open` (over escaped
/// characters), or at least `text.len()` when it never closes.
fn string_end(text: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while let Some(&c) = text.get(i) {
        i += match c {
            b'\\' => 2,
            b'"' => break,
            _ => 1,
        };
    }
    i
}

/// Whether the JSON string `quoted` (its quotes included) reads `b64`, written plainly or with
/// escapes (`"\u0062\u00364"`): [`decode`] and the direct path of
/// [`crate::Evidence::from_kbs_compact`] act on the parsed key, so the count must too.
fn is_run_key(quoted: &[u8]) -> bool {
    // `b64` with each character escaped as `\uXXXX` is 18 characters.
    const LONGEST: usize = 2 + 3 * 6;
    quoted == b"\"b64\""
        || (quoted.len() <= LONGEST
            && quoted.contains(&b'\\')
            && serde_json::from_slice::<String>(quoted).is_ok_and(|k| k == KEY))
}

/// Whether JSON text `text` holds at most `max` values, counted without parsing: one per
/// array or object opened and one per `,` or `:` outside strings, an upper bound of the
/// values and keys a parse would make (one more than the separators). The string of a
/// `"b64"` member (a compact run, see [`decode`]; its key written plainly or with escapes)
/// counts as the byte values it decodes to, so compact text is counted as what [`decode`]
/// makes of it. Text that is not JSON is counted
/// all the same; the parse that follows refuses it. A tree costs tens of bytes per value, so a
/// caller about to parse untrusted text into one can bound it first.
#[must_use]
pub fn json_values_at_most(text: impl AsRef<[u8]>, max: usize) -> bool {
    let b = text.as_ref();
    let (mut i, mut n) = (0usize, 1usize);
    if n > max {
        return false;
    }
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                let end = string_end(b, i);
                if b.get(i..=end).is_some_and(is_run_key) {
                    let colon = skip_ws(b, end + 1);
                    let open = skip_ws(b, colon + 1);
                    if b.get(colon) == Some(&b':') && b.get(open) == Some(&b'"') {
                        // At most three bytes per four characters of base64.
                        let chars = string_end(b, open).saturating_sub(open + 1);
                        n = n.saturating_add(chars / 4 * 3 + 3);
                        if n > max {
                            return false;
                        }
                    }
                }
                i = end;
            }
            b'[' | b'{' | b',' | b':' => {
                n += 1;
                if n > max {
                    return false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    true
}

/// [`encode`] on JSON text, without building a value: the text with every array of at least
/// [`MIN_RUN`] plainly written byte values replaced by `{"b64": "<base64>"}`, everything else
/// as it was; `decode` of the result, parsed, is exactly the text's value. `None` (store the
/// text as it is) when the text holds `b64` or a `\u` escape anywhere (it could then already
/// hold an object of the encoded form), or nests deeper than 64 levels. `text` must be JSON
/// (for example a parsed `RawValue`'s text); on other input the result is unspecified but the
/// function still returns.
#[must_use]
pub fn encode_text(text: &str) -> Option<String> {
    if text.contains(KEY) || text.contains("\\u") {
        return None;
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() / 2);
    let mut bytes = Vec::with_capacity(2048);
    let (mut i, mut copied, mut depth) = (0usize, 0usize, 0usize);
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => i = string_end(b, i),
            b'[' => {
                if let Some(end) = byte_run(b, i, &mut bytes) {
                    out.push_str(text.get(copied..i)?);
                    out.push_str("{\"b64\":\"");
                    STANDARD.encode_string(&bytes, &mut out);
                    out.push_str("\"}");
                    (i, copied) = (end, end);
                    continue;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return None;
                }
            }
            b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return None;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    out.push_str(text.get(copied..)?);
    Some(out)
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

/// Whether `v` may hold an object the encoders made (one with a `b64` member), or nests deeper
/// than 64 levels (then it cannot be told, and the answer is `true`). JSON that [`encode_text`]
/// accepted held none, so in its result any such object is a rewritten byte array.
#[must_use]
pub fn holds_run(v: &Value) -> bool {
    fn walk(v: &Value, depth: usize) -> bool {
        match v {
            Value::Object(m) => {
                depth > MAX_DEPTH || m.contains_key(KEY) || m.values().any(|x| walk(x, depth + 1))
            }
            Value::Array(a) => depth > MAX_DEPTH || a.iter().any(|x| walk(x, depth + 1)),
            _ => false,
        }
    }
    walk(v, 0)
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
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(e) = encode_text(text)
    {
        let parsed = serde_json::from_str::<Value>(&e);
        assert!(parsed.is_ok(), "text encoding is not JSON");
        let back = parsed.ok().and_then(decode);
        assert_eq!(back.as_ref(), Some(&v), "text compact round trip");
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
    fn encoded_runs_are_found_where_they_are() {
        let v = json!({"k": {"x": [1, {"y": vec![7; 40]}]}});
        assert!(!holds_run(&v));
        let e: Value = serde_json::from_str(&encode_text(&v.to_string()).unwrap()).unwrap();
        assert!(holds_run(&e));
        assert!(!holds_run(&json!({"k": vec![7; 31]})));
        let mut deep = json!(1);
        for _ in 0..70 {
            deep = json!([deep]);
        }
        assert!(holds_run(&deep), "too deep to tell");
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

    /// `decode` of the parsed text encoding.
    fn text_round_trip(text: &str) -> Option<Value> {
        let e = encode_text(text)?;
        decode(serde_json::from_str(&e).unwrap())
    }

    #[test]
    fn text_encoding_shrinks_certificates_and_comes_back() {
        let der: Vec<u8> = (0..=255).cycle().take(1300).collect();
        let v = json!({"report": "AAAA", "cert_chain": [{"cert_type": "VCEK", "data": der}],
            "nested": [[1, 2], vec![7u8; 40], "[1,2,3]"]});
        for text in [v.to_string(), serde_json::to_string_pretty(&v).unwrap()] {
            let e = encode_text(&text).unwrap();
            assert!(e.len() * 2 < text.len(), "{e}");
            // The same compact form as the value encoding.
            assert_eq!(
                serde_json::from_str::<Value>(&e).unwrap(),
                encode(&v).unwrap()
            );
            assert_eq!(text_round_trip(&text).unwrap(), v);
        }
    }

    #[test]
    fn text_encoding_leaves_what_is_not_a_plain_byte_run() {
        let bytes = |s: &str| format!("[{}]", vec![s; 40].join(","));
        for item in [
            "256", "-1", "1.0", "1e2", "01", "\"1\"", "true", "null", "[1]",
        ] {
            let text = format!(r#"{{"a":{}}}"#, bytes(item));
            let e = encode_text(&text).unwrap();
            assert!(!e.contains("b64"), "{item}: {e}");
        }
        // Short runs, runs inside strings and the empty array stay too.
        let text = format!(r#"{{"a":[1,2,3],"s":"{}","e":[]}}"#, bytes("1"));
        assert_eq!(encode_text(&text).unwrap(), text);
    }

    #[test]
    fn text_that_could_hold_an_encoded_run_or_nests_deeply_is_refused() {
        assert_eq!(encode_text(r#"{"x":{"b64":"AAAA"}}"#), None);
        assert_eq!(encode_text(r#"{"x":{"\u0062\u00364":"AAAA"}}"#), None);
        let deep = format!("{}1{}", "[".repeat(70), "]".repeat(70));
        assert_eq!(encode_text(&deep), None);
        let ok = format!("{}1{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(encode_text(&ok).unwrap(), ok);
    }

    #[test]
    fn a_run_is_counted_as_its_bytes_however_its_key_is_written() {
        let run = STANDARD.encode([0u8; 300]);
        for key in [
            "b64",
            r"\u0062\u00364",
            r"\u0062\u0036\u0034",
            r"b6\u0034",
            r"\u006264",
        ] {
            let text = format!(r#"{{"{key}" : "{run}"}}"#);
            let expanded = decode(serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(expanded.as_array().map(Vec::len), Some(300), "{key}");
            // `{`, `:` and the run's 303 at most.
            assert!(json_values_at_most(&text, 306), "{key}");
            assert!(!json_values_at_most(&text, 305), "{key}");
        }
        // A key that reads otherwise, escaped or not, is one value like any other.
        for key in [r"\u0062\u00365", "b65", r"\\b64"] {
            let text = format!(r#"{{"{key}":"{run}"}}"#);
            assert!(json_values_at_most(&text, 3), "{key}");
        }
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

        /// Whatever the text encoding accepts decodes to exactly the text's value, compact or
        /// pretty-printed.
        #[test]
        fn text_round_trip_is_exact(v in arb_json()) {
            for text in [v.to_string(), serde_json::to_string_pretty(&v).unwrap()] {
                if encode_text(&text).is_some() {
                    prop_assert_eq!(text_round_trip(&text).unwrap(), v.clone());
                }
            }
            crate::compact::fuzz_record(v.to_string().as_bytes());
        }

        /// Decoding arbitrary stored JSON never panics.
        #[test]
        fn decode_never_panics(v in arb_json()) {
            let _ = decode(v);
        }
    }
}
