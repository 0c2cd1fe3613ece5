//! Reading Intel's signed JSON bodies: a strict parse (no duplicate keys) and a field reader that
//! names the JSON path of every error.
//!
//! The signed body is kept as bytes elsewhere; this tree only serves to read values. Duplicate
//! keys are rejected because parsers disagree on them (Intel's QVL, on rapidjson, takes the first
//! occurrence; `serde_json` would keep the last), and a verifier must not read a different value
//! from the same signed bytes than the reference does.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use tessera_pki::UnixTime;

use super::error::{detail, quote};
use super::{CollateralError, MAX_STRING_LEN, TcbStatus};

/// A JSON value parsed with duplicate keys rejected.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(Number::from(v))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(Number::from(v))))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {:?}",
                    quote(&key)
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

/// Parse `bytes` as one JSON value (trailing data rejected, duplicate keys rejected).
pub(crate) fn parse_strict(item: &'static str, bytes: &[u8]) -> Result<Value, CollateralError> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|Strict(v)| v)
        .map_err(|e| CollateralError::Json {
            item,
            detail: detail(&e.to_string()),
        })
}

/// A JSON object being read, with the item it belongs to and its path for error messages.
pub(crate) struct Obj<'a> {
    item: &'static str,
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    /// The top-level object of an item.
    pub(crate) fn root(item: &'static str, value: &'a Value) -> Result<Self, CollateralError> {
        Self::at(item, String::new(), value)
    }

    /// `value` as an object found at `path`.
    pub(crate) fn at(
        item: &'static str,
        path: String,
        value: &'a Value,
    ) -> Result<Self, CollateralError> {
        match value {
            Value::Object(map) => Ok(Self { item, path, map }),
            other => Err(CollateralError::Field {
                item,
                field: if path.is_empty() {
                    String::from("(body)")
                } else {
                    path
                },
                detail: format!("expected an object, got {}", kind(other)),
            }),
        }
    }

    pub(crate) fn item(&self) -> &'static str {
        self.item
    }

    /// The JSON path of `key` inside this object.
    pub(crate) fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn error(&self, key: &str, detail: impl Into<String>) -> CollateralError {
        CollateralError::Field {
            item: self.item,
            field: self.path(key),
            detail: detail.into(),
        }
    }

    /// Whether `key` is present with a value other than `null`.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The value of `key`; `null` counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn req(&self, key: &str) -> Result<&'a Value, CollateralError> {
        self.get(key).ok_or_else(|| CollateralError::MissingField {
            item: self.item,
            field: self.path(key),
        })
    }

    /// A non-negative integer.
    pub(crate) fn u64(&self, key: &str) -> Result<u64, CollateralError> {
        let v = self.req(key)?;
        v.as_u64().ok_or_else(|| {
            self.error(
                key,
                format!("expected a non-negative integer, got {}", kind(v)),
            )
        })
    }

    /// A non-negative integer that fits `T` (`u8`, `u16`, `u32`).
    pub(crate) fn uint<T: TryFrom<u64>>(&self, key: &str) -> Result<T, CollateralError> {
        let v = self.u64(key)?;
        T::try_from(v).map_err(|_| {
            self.error(
                key,
                format!("{v} is out of range (at most {} bits)", bits::<T>()),
            )
        })
    }

    /// A string (at most [`MAX_STRING_LEN`] bytes).
    pub(crate) fn str(&self, key: &str) -> Result<&'a str, CollateralError> {
        let v = self.req(key)?;
        as_bounded_str(v).map_err(|d| self.error(key, d))
    }

    /// An optional string.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, CollateralError> {
        if self.has(key) {
            self.str(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A hex string of exactly `N` bytes (either case).
    pub(crate) fn hex<const N: usize>(&self, key: &str) -> Result<[u8; N], CollateralError> {
        let v = self.req(key)?;
        let Some(s) = v.as_str() else {
            return Err(self.error(key, format!("expected a hex string, got {}", kind(v))));
        };
        decode_hex::<N>(s).map_err(|actual| CollateralError::Hex {
            item: self.item,
            field: self.path(key),
            expected: 2 * N,
            actual,
        })
    }

    /// An RFC 3339 date-time.
    pub(crate) fn date(&self, key: &str) -> Result<UnixTime, CollateralError> {
        let s = self.str(key)?;
        UnixTime::parse_rfc3339(s)
            .map_err(|_| self.error(key, format!("{:?} is not an RFC 3339 date", quote(s))))
    }

    /// One of Intel's TCB status names.
    pub(crate) fn status(&self, key: &str) -> Result<TcbStatus, CollateralError> {
        let v = self.req(key)?;
        let Some(s) = v.as_str() else {
            return Err(self.error(key, format!("expected a string, got {}", kind(v))));
        };
        TcbStatus::parse_in(self.item, s)
    }

    /// An array of at most `max` elements, each with its path.
    pub(crate) fn array(
        &self,
        key: &str,
        max: usize,
    ) -> Result<Vec<(String, &'a Value)>, CollateralError> {
        let v = self.req(key)?;
        let Some(items) = v.as_array() else {
            return Err(self.error(key, format!("expected an array, got {}", kind(v))));
        };
        if items.len() > max {
            return Err(CollateralError::TooLarge {
                item: self.item,
                what: "array",
                limit: max,
                actual: items.len(),
            });
        }
        let base = self.path(key);
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{base}[{i}]"), v))
            .collect())
    }

    /// An optional array of strings (e.g. `advisoryIDs`); absent gives an empty list.
    pub(crate) fn opt_strings(
        &self,
        key: &str,
        max: usize,
    ) -> Result<Vec<String>, CollateralError> {
        if !self.has(key) {
            return Ok(Vec::new());
        }
        self.array(key, max)?
            .into_iter()
            .map(|(path, v)| {
                as_bounded_str(v)
                    .map(str::to_owned)
                    .map_err(|detail| CollateralError::Field {
                        item: self.item,
                        field: path,
                        detail,
                    })
            })
            .collect()
    }

    /// The object under `key`.
    pub(crate) fn obj(&self, key: &str) -> Result<Obj<'a>, CollateralError> {
        let v = self.req(key)?;
        Obj::at(self.item, self.path(key), v)
    }
}

fn as_bounded_str(v: &Value) -> Result<&str, String> {
    let Some(s) = v.as_str() else {
        return Err(format!("expected a string, got {}", kind(v)));
    };
    if s.len() > MAX_STRING_LEN {
        return Err(format!(
            "string of {} bytes (at most {MAX_STRING_LEN})",
            s.len()
        ));
    }
    Ok(s)
}

/// Decode exactly `N` bytes of hex (either case). On failure, the number of characters found.
pub(crate) fn decode_hex<const N: usize>(s: &str) -> Result<[u8; N], usize> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return Err(s.chars().count());
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| s.chars().count())?;
    Ok(out)
}

fn bits<T>() -> usize {
    8 * core::mem::size_of::<T>()
}

/// The JSON type of a value, for messages (never the value itself).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "an integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth() {
        assert!(parse_strict("t", br#"{"a":1,"b":{"c":1,"d":2}}"#).is_ok());
        for bad in [
            &br#"{"a":1,"a":1}"#[..],
            br#"{"a":{"c":1,"c":2}}"#,
            br#"{"a":[{"x":1,"x":1}]}"#,
        ] {
            let err = parse_strict("t", bad).unwrap_err();
            assert!(
                matches!(&err, CollateralError::Json { detail, .. } if detail.contains("duplicate key")),
                "{err}"
            );
        }
    }

    #[test]
    fn trailing_data_and_garbage_are_rejected() {
        for bad in [&b"{} {}"[..], b"{", b"", b"\xff", b"<html>", b"{\"a\":1}x"] {
            assert!(parse_strict("t", bad).is_err());
        }
        assert!(parse_strict("t", b" {} \n").is_ok());
        let deep = "[".repeat(100_000);
        assert!(parse_strict("t", deep.as_bytes()).is_err());
    }

    #[test]
    fn reader_names_paths_and_types() {
        let v = parse_strict(
            "t",
            br#"{"n":300,"s":"x","h":"0aFF","a":[{"k":-1}],"z":null,"f":1.5}"#,
        )
        .unwrap();
        let o = Obj::root("t", &v).unwrap();
        assert_eq!(o.uint::<u16>("n").unwrap(), 300);
        assert!(
            matches!(o.uint::<u8>("n"), Err(CollateralError::Field { field, .. }) if field == "n")
        );
        assert!(matches!(o.u64("f"), Err(CollateralError::Field { .. })));
        assert!(
            matches!(o.u64("z"), Err(CollateralError::MissingField { field, .. }) if field == "z")
        );
        assert!(!o.has("z"));
        assert_eq!(o.hex::<2>("h").unwrap(), [0x0a, 0xff]);
        assert!(matches!(
            o.hex::<3>("h"),
            Err(CollateralError::Hex {
                expected: 6,
                actual: 4,
                ..
            })
        ));
        assert!(matches!(o.hex::<1>("s"), Err(CollateralError::Hex { .. })));
        let items = o.array("a", 1).unwrap();
        let (path, first) = &items[0];
        let inner = Obj::at("t", path.clone(), first).unwrap();
        assert!(
            matches!(inner.u64("k"), Err(CollateralError::Field { field, .. }) if field == "a[0].k")
        );
        assert!(matches!(
            o.array("a", 0),
            Err(CollateralError::TooLarge { .. })
        ));
        assert_eq!(o.opt_strings("missing", 4).unwrap(), Vec::<String>::new());
        assert!(o.opt_str("s").unwrap() == Some("x"));
        assert!(Obj::root("t", &Value::Bool(true)).is_err());
    }

    #[test]
    fn decode_hex_is_exact_and_case_insensitive() {
        assert_eq!(decode_hex::<2>("abCD"), Ok([0xab, 0xcd]));
        assert_eq!(decode_hex::<2>("abc"), Err(3));
        assert_eq!(decode_hex::<2>("abcdef"), Err(6));
        assert_eq!(decode_hex::<2>("zzzz"), Err(4));
        assert_eq!(decode_hex::<1>("é"), Err(1));
    }
}
