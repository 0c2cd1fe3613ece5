//! The value types a policy is written in: `any`, hex byte strings, allow-lists (inline or in a
//! reference file), bit rules, durations and 64-bit masks.

use core::fmt;
use core::marker::PhantomData;
use std::path::PathBuf;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A security-relevant setting: the operator must state it, and states `"any"` to leave it
/// unchecked on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting<T> {
    /// `"any"`: deliberately not checked.
    Any,
    /// The rule.
    Is(T),
}

impl<T> Setting<T> {
    /// The rule, unless `any`.
    pub fn rule(&self) -> Option<&T> {
        match self {
            Self::Any => None,
            Self::Is(t) => Some(t),
        }
    }
}

impl<T: Serialize> Serialize for Setting<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Any => s.serialize_str("any"),
            Self::Is(t) => t.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Setting<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Setting<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"any\" or a value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "any" {
                    Ok(Setting::Any)
                } else {
                    T::deserialize(v.into_deserializer()).map(Setting::Is)
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Setting::Is)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Setting::Is)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Setting::Is)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                T::deserialize(SeqAccessDeserializer::new(seq)).map(Setting::Is)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Setting::Is)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Exactly `N` bytes, written as `2N` hex digits (either case; no prefix).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&tessera_pki::to_hex(&self.0))
    }
}

impl<const N: usize> fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&tessera_pki::to_hex(&self.0))
    }
}

impl<const N: usize> core::str::FromStr for Hex<N> {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() != 2 * N {
            return Err(format!(
                "expected {N} bytes ({} hex digits), got {} characters",
                2 * N,
                s.len()
            ));
        }
        let mut out = [0u8; N];
        hex::decode_to_slice(s, &mut out).map_err(|_| String::from("not hex"))?;
        Ok(Self(out))
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&tessera_pki::to_hex(&self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> Visitor<'_> for V<N> {
            type Value = Hex<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{N} bytes as {} hex digits", 2 * N)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Hex<N>, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V::<N>)
    }
}

/// The most values one list (inline or in a reference file) may hold.
pub const MAX_LIST_LEN: usize = 65_536;

/// An allow-list: values written inline, or a reference file the policy names (resolved when
/// the policy is loaded from a file, so the values can change without the policy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefList<T> {
    /// Values written in the policy.
    Values(Vec<T>),
    /// A reference file not loaded yet (policy parsed from text without a base directory).
    /// Appraisal fails a rule that uses it.
    File(PathBuf),
    /// A reference file and the values loaded from it.
    Loaded {
        /// The file, as the policy names it.
        file: PathBuf,
        /// Its values.
        values: Vec<T>,
    },
}

impl<T> RefList<T> {
    /// The values, when known.
    pub fn values(&self) -> Option<&[T]> {
        match self {
            Self::Values(v) | Self::Loaded { values: v, .. } => Some(v),
            Self::File(_) => None,
        }
    }

    /// The reference file, if the values come from one.
    pub fn file(&self) -> Option<&PathBuf> {
        match self {
            Self::Values(_) => None,
            Self::File(f) | Self::Loaded { file: f, .. } => Some(f),
        }
    }
}

#[derive(Serialize)]
struct FileRef<'a> {
    file: &'a PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRefOwned {
    file: PathBuf,
}

impl<T: Serialize> Serialize for RefList<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Values(v) => v.serialize(s),
            Self::File(file) | Self::Loaded { file, .. } => FileRef { file }.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for RefList<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = RefList<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value, a list of values, or { file = \"PATH\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|t| RefList::Values(vec![t]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|t| RefList::Values(vec![t]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|t| RefList::Values(vec![t]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element::<T>()? {
                    if out.len() == MAX_LIST_LEN {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_LIST_LEN} values in a list"
                        )));
                    }
                    out.push(t);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "an empty list (an allow list would accept nothing: write \"any\" to \
                         leave it unchecked; a deny list would deny nothing: leave it out)",
                    ));
                }
                Ok(RefList::Values(out))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                FileRefOwned::deserialize(MapAccessDeserializer::new(map))
                    .map(|f| RefList::File(f.file))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An allow-list of `N`-byte values (`"any"`, one hex value, a list, or a reference file).
pub type AllowList<const N: usize> = Setting<RefList<Hex<N>>>;

/// A rule for one flag bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bit {
    /// The bit must be set.
    Must,
    /// The bit must be clear.
    MustNot,
    /// Either (stated, so the appraisal lists it as not checked on purpose).
    Any,
}

/// A 64-bit value written as an integer or as a `0x`-prefixed hex string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct U64Hex(pub u64);

impl Serialize for U64Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:#018x}", self.0))
    }
}

impl<'de> Deserialize<'de> for U64Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = U64Hex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned integer or a \"0x\"-prefixed hex string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<U64Hex, E> {
                Ok(U64Hex(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<U64Hex, E> {
                u64::try_from(v)
                    .map(U64Hex)
                    .map_err(|_| E::custom("negative value"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<U64Hex, E> {
                let digits = v
                    .strip_prefix("0x")
                    .or_else(|| v.strip_prefix("0X"))
                    .ok_or_else(|| E::custom("hex strings start with 0x"))?;
                let digits = digits.replace('_', "");
                if digits.is_empty() || digits.len() > 16 {
                    return Err(E::custom("1 to 16 hex digits expected"));
                }
                u64::from_str_radix(&digits, 16)
                    .map(U64Hex)
                    .map_err(|_| E::custom("not hex"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A length of time: whole seconds, or a string such as `"90d"`, `"12h"`, `"30m"`, `"45s"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration {
    secs: u64,
}

impl Duration {
    /// `secs` seconds.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self { secs }
    }

    /// In seconds.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.secs
    }

    /// In seconds, as a signed value for time arithmetic (saturating).
    #[must_use]
    pub fn as_secs_i64(self) -> i64 {
        i64::try_from(self.secs).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.secs;
        if s != 0 && s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s != 0 && s.is_multiple_of(3_600) {
            write!(f, "{}h", s / 3_600)
        } else if s != 0 && s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl core::str::FromStr for Duration {
    type Err = String;
    fn from_str(v: &str) -> Result<Self, String> {
        let unit_at = v
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| String::from("a unit (d, h, m or s) is required"))?;
        let (num, unit) = v.split_at(unit_at);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{v:?} does not start with a number"))?;
        let mult = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return Err(format!("unknown unit {unit:?} (d, h, m or s)")),
        };
        n.checked_mul(mult)
            .map(Self::from_secs)
            .ok_or_else(|| String::from("too long"))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds, or a string such as \"90d\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom("negative duration"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        m: AllowList<4>,
        b: Bit,
        d: Duration,
        x: U64Hex,
    }

    #[test]
    fn parses_each_form() {
        let d: Doc = toml::from_str("m = \"any\"\nb = \"must-not\"\nd = \"90d\"\nx = \"0x10\"")
            .expect("parses");
        assert_eq!(d.m, Setting::Any);
        assert_eq!(d.b, Bit::MustNot);
        assert_eq!(d.d.as_secs(), 90 * 86_400);
        assert_eq!(d.x, U64Hex(16));
        let d: Doc = toml::from_str("m = \"0A0b0c0d\"\nb = \"any\"\nd = 5\nx = 3").expect("parses");
        assert_eq!(
            d.m,
            Setting::Is(RefList::Values(vec![Hex([10, 11, 12, 13])]))
        );
        let d: Doc = toml::from_str("m = { file = \"r.txt\" }\nb = \"must\"\nd = \"1h\"\nx = 0")
            .expect("parses");
        assert_eq!(d.m, Setting::Is(RefList::File(PathBuf::from("r.txt"))));
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            "m = \"0a0b0c\"\nb = \"any\"\nd = 1\nx = 0",   // 3 bytes
            "m = \"zz0b0c0d\"\nb = \"any\"\nd = 1\nx = 0", // not hex
            "m = []\nb = \"any\"\nd = 1\nx = 0",           // empty list
            "m = \"any\"\nb = \"maybe\"\nd = 1\nx = 0",    // bad bit
            "m = \"any\"\nb = \"any\"\nd = \"5y\"\nx = 0", // bad unit
            "m = \"any\"\nb = \"any\"\nd = 1\nx = \"10\"", // hex without 0x
            "m = \"any\"\nb = \"any\"\nd = 1\nx = -1",     // negative
            "m = { path = \"a\" }\nb = \"any\"\nd = 1\nx = 0", // unknown key
            "m = \"any\"\nb = \"any\"\nd = 1\nx = 0\ny = 1", // unknown field
            "b = \"any\"\nd = 1\nx = 0",                   // missing field
        ] {
            assert!(toml::from_str::<Doc>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<[u8; 4]>(), 1..8),
                       secs in any::<u32>(), x in any::<u64>()) {
            let doc = Doc {
                m: Setting::Is(RefList::Values(bytes.into_iter().map(Hex).collect())),
                b: Bit::Must,
                d: Duration::from_secs(u64::from(secs)),
                x: U64Hex(x),
            };
            let text = toml::to_string(&doc).expect("serializes");
            let back: Doc = toml::from_str(&text).expect("parses back");
            prop_assert_eq!(&back, &doc);
            let json = serde_json::to_string(&doc).expect("json");
            let back: Doc = serde_json::from_str(&json).expect("json back");
            prop_assert_eq!(back, doc);
        }
    }
}
