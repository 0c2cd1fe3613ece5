//! RFC 8785 JSON canonicalization (JCS), a thin wrapper over `serde_json_canonicalizer`.
//!
//! Guests (the CoCo `kbs_protocol` crate) hash the runtime data with that same crate, so the
//! broker uses it too rather than a second implementation that could disagree on number
//! formatting or key ordering (UTF-16 code unit order). The wrapper only adds a typed error.

use serde::Serialize;

/// Canonicalization failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JcsError {
    /// The value holds something JSON cannot represent canonically (a non-finite float, a map
    /// key that is not a string).
    #[error("jcs: the value cannot be canonicalized: {0}")]
    Unrepresentable(String),
}

/// The RFC 8785 canonical form of `value` as UTF-8 bytes.
///
/// # Errors
/// [`JcsError::Unrepresentable`] when `value` cannot be written as canonical JSON.
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, JcsError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| JcsError::Unrepresentable(e.to_string()))
}

/// The RFC 8785 canonical form of `value` as a string.
///
/// # Errors
/// [`JcsError::Unrepresentable`] when `value` cannot be written as canonical JSON.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, JcsError> {
    serde_json_canonicalizer::to_string(value).map_err(|e| JcsError::Unrepresentable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": [1, 2.50, "x"], "a": {"z": null, "y": true} }"#)
                .unwrap();
        assert_eq!(
            to_string(&v).unwrap(),
            r#"{"a":{"y":true,"z":null},"b":[1,2.5,"x"]}"#
        );
    }

    #[test]
    fn rfc8785_numbers_and_strings() {
        // RFC 8785 section 3.2.2.3 / appendix B samples.
        let v = json!({"numbers": [333_333_333.333_333_3_f64, 1e30, 4.5, 0.002, 1e-27],
                       "string": "\u{20ac}$\u{000F}\nA'B\"\\\\\"/"});
        assert_eq!(
            to_string(&v).unwrap(),
            "{\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
    }

    #[test]
    fn keys_sorted_by_utf16_code_units() {
        // RFC 8785 section 3.2.3: "\u{10000}" (surrogates D800 DC00) sorts before "\u{FB33}".
        let v = json!({"\u{FB33}": 1, "\u{10000}": 2, "\u{0080}": 3});
        assert_eq!(
            to_string(&v).unwrap(),
            "{\"\u{0080}\":3,\"\u{10000}\":2,\"\u{FB33}\":1}"
        );
    }

    #[test]
    fn non_string_map_key_is_rejected() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(vec![1u8], 1u8);
        assert!(matches!(to_vec(&m), Err(JcsError::Unrepresentable(_))));
    }
}
