//! EAR as a JWT: JWS compact serialization (RFC 7515 §7.1) with ES256/ES384 (RFC 7518 §3.4).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use tessera_pki::UnixTime;

use super::claims::EarClaims;
use super::keys::{Alg, SigningKey, VerifyingKey};
use super::{MAX_TOKEN_LEN, TokenError, check_time, shown_alg};

/// Sign `claims` as a JWT with `key`.
///
/// The protected header is `{"alg", "typ": "JWT", "kid", "jwk"}`: `kid` is the RFC 7638
/// thumbprint of the public key and `jwk` the public key itself (with `alg` and `kid`), as
/// Trustee's attestation service does, so a KBS configured with `insecure_header_jwk` or a JWK set
/// keyed by `kid` finds it. Verifiers must not trust the header key: [`verify_jwt`] ignores it.
///
/// # Errors
/// [`TokenError::Claims`] when the claims break a draft rule (no submod, an empty vector, a
/// status more trusting than its vector, annotated evidence empty or too deep);
/// [`TokenError::Signing`] if the crypto library fails.
pub fn issue_jwt(claims: &EarClaims, key: &SigningKey) -> Result<String, TokenError> {
    claims.validate()?;
    let encoding = |_| TokenError::Signing {
        what: "JSON-encoding the token",
    };
    // The same claims as `EarClaims::to_json`, written without copying them into a `Value`.
    let payload = serde_json::to_vec(&claims.json_view()).map_err(encoding)?;
    let mut token = String::with_capacity(512 + payload.len() * 4 / 3);
    token.push_str(key.jwt_header(jwt_header));
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// The base64url protected header of `key`'s tokens.
fn jwt_header(key: &SigningKey) -> String {
    let public = key.verifying_key();
    let mut header = Map::new();
    header.insert("alg".into(), key.alg().name().into());
    header.insert("typ".into(), "JWT".into());
    header.insert("kid".into(), public.thumbprint().into());
    header.insert("jwk".into(), public.to_jwk());
    // A map of strings and a JWK object: serializing it cannot fail.
    URL_SAFE_NO_PAD.encode(Value::Object(header).to_string())
}

fn decode_part(part: &str, what: &'static str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Format { what })
}

/// Check the protected header: a JSON object whose `alg` is `key`'s algorithm, no `crit` (no
/// extension is understood, so none may be critical), and `typ`, when present, `JWT`.
fn check_header(header: &Value, alg: Alg) -> Result<(), TokenError> {
    let header = header.as_object().ok_or(TokenError::Format {
        what: "the JWT header is not a JSON object",
    })?;
    match header.get("alg") {
        Some(Value::String(found)) if found == alg.name() => {}
        Some(Value::String(found)) => {
            return Err(TokenError::Algorithm {
                expected: alg.name(),
                found: shown_alg(found),
            });
        }
        Some(_) => {
            return Err(TokenError::Header {
                what: "alg is not a string",
            });
        }
        None => return Err(TokenError::Header { what: "no alg" }),
    }
    if header.contains_key("crit") {
        return Err(TokenError::Header {
            what: "crit names extensions this verifier does not understand",
        });
    }
    if let Some(typ) = header.get("typ")
        && !typ.as_str().is_some_and(|t| t.eq_ignore_ascii_case("JWT"))
    {
        return Err(TokenError::Header {
            what: "typ is not JWT",
        });
    }
    Ok(())
}

/// Verify a JWT EAR against `key` at time `at` and return its claims.
///
/// In order: size (at most [`MAX_TOKEN_LEN`]); three unpadded, canonical base64url parts; the
/// header (`alg` equal to the key's — `none`, HMAC and the other curve are refused before any
/// crypto —, no `crit`, `typ` `JWT` if present; `kid`, `jwk` and `x5c` are ignored: the key is the
/// caller's); the signature, fixed-width `r || s` (RFC 7518 §3.4); the claims (`eat_profile` the
/// EAR profile, integer `iat` and `exp`, the draft's types, unknown claims ignored); then time:
/// `at < exp` and `iat <= at` (and `nbf <= at` if present), with no leeway — a caller that
/// allows clock skew passes an adjusted `at`.
///
/// # Errors
/// The [`TokenError`] variant naming the first check that failed.
pub fn verify_jwt(token: &str, key: &VerifyingKey, at: UnixTime) -> Result<EarClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge {
            what: "token",
            len: token.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Format {
            what: "a JWT is three base64url parts separated by dots",
        });
    };
    let header = decode_part(h, "the JWT header is not unpadded base64url")?;
    let header = parse_unique(&header).map_err(|_| TokenError::Format {
        what: "the JWT header is not JSON without duplicate keys",
    })?;
    check_header(&header, key.alg())?;
    let signature = decode_part(s, "the JWT signature is not unpadded base64url")?;
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(TokenError::Format {
            what: "a JWT is three base64url parts separated by dots",
        })?;
    key.verify(signing_input.as_bytes(), &signature)?;
    let payload = decode_part(p, "the JWT payload is not unpadded base64url")?;
    let payload = parse_unique(&payload).map_err(|_| TokenError::Format {
        what: "the JWT payload is not JSON without duplicate keys",
    })?;
    let parsed = EarClaims::from_json(&payload)?;
    check_time(&parsed, at)?;
    Ok(parsed.claims)
}

/// `bytes` as one JSON value, refusing a duplicate object key at any depth: JSON parsers
/// disagree on which of two `exp` (or `alg`) counts, some taking the first and `serde_json`
/// the last, and a relying party must not read other claims from the signed bytes than this
/// verifier did (COSE's CBOR is refused the same way). The keys are checked in a pass of their
/// own, which keeps no value, and the value is then read as `serde_json` reads it (whatever
/// features a dependent build turns on for it).
fn parse_unique(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<UniqueKeys>(bytes)?;
    serde_json::from_slice(bytes)
}

/// Proof that a JSON text repeats no object key ([`parse_unique`]).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn header_rules() {
        let ok = json!({"alg": "ES256", "typ": "JWT", "kid": "x", "jwk": {}});
        check_header(&ok, Alg::Es256).unwrap();
        check_header(&json!({"alg": "ES256", "typ": "jwt"}), Alg::Es256).unwrap();
        check_header(&json!({"alg": "ES256"}), Alg::Es256).unwrap();
        for (h, alg) in [
            (json!({"alg": "none"}), Alg::Es256),
            (json!({"alg": "HS256"}), Alg::Es256),
            (json!({"alg": "ES256"}), Alg::Es384),
            (json!({"alg": "es256"}), Alg::Es256),
        ] {
            assert!(
                matches!(check_header(&h, alg), Err(TokenError::Algorithm { .. })),
                "{h}"
            );
        }
        for h in [
            json!({}),
            json!({"alg": 1}),
            json!({"alg": "ES256", "crit": ["b64"], "b64": false}),
            json!({"alg": "ES256", "typ": "JWE"}),
        ] {
            assert!(
                matches!(check_header(&h, Alg::Es256), Err(TokenError::Header { .. })),
                "{h}"
            );
        }
        assert!(matches!(
            check_header(&json!([1]), Alg::Es256),
            Err(TokenError::Format { .. })
        ));
    }

    #[test]
    fn base64url_is_strict() {
        assert!(decode_part("eyJ9", "x").is_ok());
        // Padding, the standard alphabet, non-canonical trailing bits and whitespace are refused.
        for bad in ["eyJ9==", "e+J9", "e/J9", "eyK", "ey J9", "eyJ9\n"] {
            assert!(decode_part(bad, "x").is_err(), "{bad}");
        }
    }
}
