//! Reading Intel's signed JSON bodies: a strict parse (no duplicate keys) into a tree that
//! borrows from the body, and a field reader that names the JSON path of every error.
//!
//! The signed body is kept as bytes elsewhere; this tree only serves to read values. Duplicate
//! keys are rejected because parsers disagree on them (Intel's QVL, on rapidjson, takes the first
//! occurrence; `serde_json` would keep the last), and a verifier must not read a different value
//! from the same signed bytes than the reference does.
//!
//! The tree borrows every string without escapes from the body, keeps object members in order
//! in a `Vec` (objects here have a handful of keys), and paths for error messages are a chain
//! of references rendered only when an error is made: reading a TCB info allocates little more
//! than the vectors of the tree.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use tessera_pki::UnixTime;

use super::error::{detail, quote};
use super::{CollateralError, MAX_STRING_LEN, TcbStatus};

/// A JSON number, as `serde_json` reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    /// A non-negative integer that fits `u64`.
    Unsigned(u64),
    /// A negative integer that fits `i64`.
    Negative(i64),
    /// Anything else (fraction, exponent, or out of the integer ranges).
    Float(f64),
}

/// A JSON value whose strings borrow from the parsed text where they have no escapes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in the order given; keys are unique (checked while parsing).
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(Number::Unsigned(n)) => Some(*n),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }
}

/// Objects up to this many keys are checked for duplicates by comparing with every earlier key;
/// larger ones through a hash set, so a hostile body cannot make the check quadratic.
const LINEAR_KEY_CHECK: usize = 16;

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

/// A key or string: borrowed when the text has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(match u64::try_from(v) {
            Ok(n) => Number::Unsigned(n),
            Err(_) => Number::Negative(v),
        }))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(Number::Unsigned(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        if v.is_finite() {
            Ok(Json::Number(Number::Float(v)))
        } else {
            Err(E::custom("number out of range"))
        }
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut out: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        // Filled only once the object outgrows the linear check.
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let duplicate = if out.len() < LINEAR_KEY_CHECK {
                out.iter().any(|(k, _)| *k == key)
            } else {
                if seen.is_empty() {
                    seen.extend(out.iter().map(|(k, _)| k.clone()));
                }
                !seen.insert(key.clone())
            };
            if duplicate {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {:?}",
                    quote(&key)
                )));
            }
            let value = map.next_value()?;
            out.push((key, value));
        }
        Ok(Json::Object(out))
    }
}

/// Parse `bytes` as one JSON value (trailing data rejected, duplicate keys rejected).
pub(crate) fn parse_strict<'a>(
    item: &'static str,
    bytes: &'a [u8],
) -> Result<Json<'a>, CollateralError> {
    serde_json::from_slice::<Json<'a>>(bytes).map_err(|e| CollateralError::Json {
        item,
        detail: detail(&e.to_string()),
    })
}

/// Where a value is in the body, as a chain of references rendered only for error messages
/// (`tcbLevels[2].tcb.sgxtcbcomponents[5].svn`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Path<'p> {
    /// The body itself.
    Root,
    /// Member `key` of the object at the parent path.
    Key(&'p Path<'p>, &'p str),
    /// Element `index` of the array at the parent path.
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    /// The path in Intel's notation; empty for the body itself.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Self::Root => {}
            Self::Key(parent, key) => {
                parent.render_into(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Self::Index(parent, index) => {
                parent.render_into(out);
                out.push_str(&format!("[{index}]"));
            }
        }
    }
}

/// A JSON object being read, with the item it belongs to and its path for error messages.
pub(crate) struct Obj<'a, 'p> {
    item: &'static str,
    path: Path<'p>,
    map: &'a [(Cow<'a, str>, Json<'a>)],
}

/// A JSON array being read (see [`Obj::array`]).
pub(crate) struct Arr<'a, 'p> {
    item: &'static str,
    path: Path<'p>,
    items: &'a [Json<'a>],
}

impl<'a> Arr<'a, '_> {
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Each element with its path.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Path<'_>, &'a Json<'a>)> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, v)| (Path::Index(&self.path, i), v))
    }

    /// Each element read as an object.
    pub(crate) fn objects(&self) -> impl Iterator<Item = Result<Obj<'a, '_>, CollateralError>> {
        let item = self.item;
        self.iter().map(move |(path, v)| Obj::at(item, path, v))
    }
}

impl<'a, 'p> Obj<'a, 'p> {
    /// The top-level object of an item.
    pub(crate) fn root(item: &'static str, value: &'a Json<'a>) -> Result<Self, CollateralError> {
        Self::at(item, Path::Root, value)
    }

    /// `value` as an object found at `path`.
    pub(crate) fn at(
        item: &'static str,
        path: Path<'p>,
        value: &'a Json<'a>,
    ) -> Result<Self, CollateralError> {
        match value {
            Json::Object(map) => Ok(Self { item, path, map }),
            other => {
                let field = path.render();
                Err(CollateralError::Field {
                    item,
                    field: if field.is_empty() {
                        String::from("(body)")
                    } else {
                        field
                    },
                    detail: format!("expected an object, got {}", kind(other)),
                })
            }
        }
    }

    /// The JSON path of `key` inside this object.
    pub(crate) fn path(&self, key: &str) -> String {
        Path::Key(&self.path, key).render()
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
    pub(crate) fn get(&self, key: &str) -> Option<&'a Json<'a>> {
        self.map
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn req(&self, key: &str) -> Result<&'a Json<'a>, CollateralError> {
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

    /// The array under `key`, of at most `max` elements.
    pub(crate) fn array<'s>(
        &'s self,
        key: &'s str,
        max: usize,
    ) -> Result<Arr<'a, 's>, CollateralError> {
        let v = self.req(key)?;
        let Json::Array(items) = v else {
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
        Ok(Arr {
            item: self.item,
            path: Path::Key(&self.path, key),
            items,
        })
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
        let arr = self.array(key, max)?;
        arr.iter()
            .map(|(path, v)| {
                as_bounded_str(v)
                    .map(str::to_owned)
                    .map_err(|detail| CollateralError::Field {
                        item: self.item,
                        field: path.render(),
                        detail,
                    })
            })
            .collect()
    }

    /// The object under `key`.
    pub(crate) fn obj<'s>(&'s self, key: &'s str) -> Result<Obj<'a, 's>, CollateralError> {
        let v = self.req(key)?;
        Obj::at(self.item, Path::Key(&self.path, key), v)
    }
}

fn as_bounded_str<'a>(v: &'a Json<'_>) -> Result<&'a str, String> {
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
fn kind(v: &Json<'_>) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(Number::Unsigned(_)) => "an integer",
        Json::Number(Number::Negative(_)) => "a negative integer",
        Json::Number(Number::Float(_)) => "a fractional number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
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
    fn duplicates_are_found_in_large_objects_and_through_escapes() {
        for n in [
            LINEAR_KEY_CHECK - 1,
            LINEAR_KEY_CHECK,
            LINEAR_KEY_CHECK + 1,
            200,
        ] {
            let keys: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            let unique = format!("{{{}}}", keys.join(","));
            assert!(parse_strict("t", unique.as_bytes()).is_ok(), "{n}");
            for dup in [0, n / 2, n - 1] {
                let with_dup = format!("{{{},\"k{dup}\":null}}", keys.join(","));
                assert!(parse_strict("t", with_dup.as_bytes()).is_err(), "{n} {dup}");
            }
        }
        // Keys are compared as decoded strings, not as escaped text.
        assert!(parse_strict("t", br#"{"a":1,"\u0061":2}"#).is_err());
        assert!(parse_strict("t", br#"{"\n":1,"\u000a":2}"#).is_err());
        assert!(parse_strict("t", br#"{"a":1,"\u0062":2}"#).is_ok());
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let text = br#"{"plain":"abc","esc\"aped":"x\ty","n":[1,-2,3.5]}"#;
        let v = parse_strict("t", text).unwrap();
        let Json::Object(members) = &v else {
            panic!("{v:?}")
        };
        assert!(matches!(
            &members[0],
            (Cow::Borrowed("plain"), Json::String(Cow::Borrowed("abc")))
        ));
        assert!(
            matches!(&members[1], (Cow::Owned(k), Json::String(Cow::Owned(s))) if k == "esc\"aped" && s == "x\ty")
        );
        assert_eq!(
            members[2].1,
            Json::Array(vec![
                Json::Number(Number::Unsigned(1)),
                Json::Number(Number::Negative(-2)),
                Json::Number(Number::Float(3.5)),
            ])
        );
    }

    /// The tree as `serde_json` would read it, for comparing.
    fn to_value(j: &Json<'_>) -> serde_json::Value {
        use serde_json::Value;
        match j {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(Number::Unsigned(n)) => Value::from(*n),
            Json::Number(Number::Negative(n)) => Value::from(*n),
            Json::Number(Number::Float(f)) => Value::from(*f),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(to_value).collect()),
            Json::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), to_value(v)))
                    .collect(),
            ),
        }
    }

    fn arb_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-c\\\"\n\u{e9}]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c\"\\\\]{0,3}", inner, 0..20)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Without duplicate keys, the tree holds what `serde_json` reads, compact or pretty.
        #[test]
        fn reads_what_serde_json_reads(value in arb_value()) {
            for text in [serde_json::to_vec(&value).unwrap(), serde_json::to_vec_pretty(&value).unwrap()] {
                let parsed = parse_strict("t", &text).unwrap();
                let expected: serde_json::Value = serde_json::from_slice(&text).unwrap();
                proptest::prop_assert_eq!(to_value(&parsed), expected);
            }
        }

        /// An object written with members `keys` parses exactly when the keys are distinct.
        #[test]
        fn rejects_exactly_the_duplicates(
            keys in proptest::collection::vec("[a-d]{1,2}", 0..40),
            nested in proptest::prelude::any::<bool>(),
        ) {
            let members: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{}:{i}", serde_json::to_string(k).unwrap()))
                .collect();
            let object = format!("{{{}}}", members.join(","));
            let text = if nested { format!("{{\"x\":[1,{object}]}}") } else { object };
            let distinct = keys.iter().collect::<std::collections::BTreeSet<_>>().len() == keys.len();
            proptest::prop_assert_eq!(parse_strict("t", text.as_bytes()).is_ok(), distinct);
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
        assert_eq!(items.len(), 1);
        let inner = items.objects().next().unwrap().unwrap();
        assert!(
            matches!(inner.u64("k"), Err(CollateralError::Field { field, .. }) if field == "a[0].k")
        );
        assert_eq!(inner.path("x"), "a[0].x");
        assert_eq!(
            o.obj("a").err().map(|e| e.to_string()).unwrap_or_default(),
            "t: field a: expected an object, got an array"
        );
        assert!(matches!(
            o.array("a", 0),
            Err(CollateralError::TooLarge { .. })
        ));
        assert_eq!(o.opt_strings("missing", 4).unwrap(), Vec::<String>::new());
        assert!(o.opt_str("s").unwrap() == Some("x"));
        assert!(matches!(
            Obj::root("t", &Json::Bool(true)),
            Err(CollateralError::Field { field, .. }) if field == "(body)"
        ));
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
