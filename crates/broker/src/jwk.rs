//! Parses the guest's `tee-pubkey` JWK strictly into a key the broker can encrypt to.
//!
//! Accepted (PROTOCOL.md, `kbs-types` 0.18 `TeePubKey`):
//! - `{"kty":"EC","crv":"P-256"|"P-521","alg":"ECDH-ES+A256KW","x":..,"y":..}`
//! - `{"kty":"RSA","alg":"RSA-OAEP-256","n":..,"e":..}`
//!
//! plus the optional members `kid` (a short string) and `use` (only `"enc"`). Every other member is
//! rejected, private-key members (`d`, `p`, `q`, ...) with their own error. Coordinates are
//! unpadded base64url of exactly the curve's field size; the point is built into an aws-lc-rs
//! public key here, so a point not on the curve is rejected at parse time, not at release.
//! RSA moduli are 2048..=8192 bits without a leading zero octet (RFC 7518 section 6.3.1), the
//! exponent is odd, at least 3 and fits in 32 bits. Every string is length-checked before it is
//! decoded, and a JSON document is at most [`MAX_JWK_JSON_LEN`] bytes.
//!
//! The JWK is also kept exactly as sent (as a `serde_json::Value`): the REPORT_DATA binding hashes
//! the JCS form of the key *as sent*, not a re-encoding of what was parsed.

use aws_lc_rs::agreement::{ECDH_P256, ECDH_P521, ParsedPublicKey, UnparsedPublicKey};
use aws_lc_rs::rsa::{PublicEncryptingKey, PublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// Largest JWK document [`TeePublicKey::from_slice`] reads (an 8192-bit RSA key is ~1.5 KiB).
pub const MAX_JWK_JSON_LEN: usize = 16 * 1024;
/// Longest `kid` accepted.
pub const MAX_KID_LEN: usize = 256;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// The JWE key-management algorithm name for EC keys.
pub const ALG_ECDH_ES_A256KW: &str = "ECDH-ES+A256KW";
/// The JWE key-management algorithm name for RSA keys.
pub const ALG_RSA_OAEP_256: &str = "RSA-OAEP-256";

/// Members that carry private key material; a JWK holding one is refused outright.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// How much of an attacker-chosen string an error repeats.
const ECHO_MAX: usize = 40;

/// An elliptic curve the broker encrypts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Curve {
    /// NIST P-256 (the CoCo guest's default).
    P256,
    /// NIST P-521.
    P521,
}

impl Curve {
    /// The JWK `crv` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P521 => "P-521",
        }
    }

    /// Bytes in one coordinate (the field size).
    #[must_use]
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P521 => 66,
        }
    }

    pub(crate) fn agreement(self) -> &'static aws_lc_rs::agreement::Algorithm {
        match self {
            Curve::P256 => &ECDH_P256,
            Curve::P521 => &ECDH_P521,
        }
    }
}

/// The JWE key-management algorithm a [`TeePublicKey`] is used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// `ECDH-ES+A256KW` on the given curve.
    EcdhEsA256Kw(Curve),
    /// `RSA-OAEP-256` with a modulus of the given size in bits.
    RsaOaep256 {
        /// Modulus size in bits.
        bits: usize,
    },
}

/// Why a `tee-pubkey` JWK was refused. Each variant names the member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// The JSON document is longer than [`MAX_JWK_JSON_LEN`].
    #[error("jwk: document is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Length received.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The bytes are not JSON.
    #[error("jwk: not valid JSON")]
    NotJson,
    /// The JWK is not a JSON object.
    #[error("jwk: not a JSON object")]
    NotAnObject,
    /// A required member is absent.
    #[error("jwk: member `{member}` is missing")]
    MissingMember {
        /// The member.
        member: &'static str,
    },
    /// A member that must be a string is not.
    #[error("jwk: member `{member}` is not a string")]
    NotAString {
        /// The member.
        member: &'static str,
    },
    /// A member is longer than its encoding allows.
    #[error("jwk: member `{member}` is {len} characters, more than the {max} allowed")]
    MemberTooLong {
        /// The member.
        member: &'static str,
        /// Characters received.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The JWK carries private key material.
    #[error("jwk: member `{member}` is private key material; send the public key only")]
    PrivateKeyMember {
        /// The member.
        member: &'static str,
    },
    /// A member the broker does not know (the name is cut to 40 characters).
    #[error("jwk: unknown member `{member}`")]
    UnknownMember {
        /// The member's name.
        member: String,
    },
    /// `kty` is neither `EC` nor `RSA`.
    #[error("jwk: kty `{kty}` is not supported (EC or RSA)")]
    UnsupportedKty {
        /// The value received (cut to 40 characters).
        kty: String,
    },
    /// `crv` is neither `P-256` nor `P-521`.
    #[error("jwk: crv `{crv}` is not supported (P-256 or P-521)")]
    UnsupportedCurve {
        /// The value received (cut to 40 characters).
        crv: String,
    },
    /// `alg` does not match the key type.
    #[error("jwk: alg `{found}` is not {expected}")]
    WrongAlg {
        /// The algorithm the key type requires.
        expected: &'static str,
        /// The value received (cut to 40 characters).
        found: String,
    },
    /// `use` is present and not `enc`.
    #[error("jwk: use `{found}` is not enc")]
    WrongUse {
        /// The value received (cut to 40 characters).
        found: String,
    },
    /// A member is not unpadded base64url (or has non-zero trailing bits).
    #[error("jwk: member `{member}` is not unpadded base64url")]
    Base64 {
        /// The member.
        member: &'static str,
    },
    /// An EC coordinate has the wrong length for the curve.
    #[error("jwk: coordinate `{member}` is {found} bytes; {curve} needs {expected}")]
    CoordinateLength {
        /// `x` or `y`.
        member: &'static str,
        /// The curve.
        curve: &'static str,
        /// Required length.
        expected: usize,
        /// Decoded length.
        found: usize,
    },
    /// The point (x, y) is not on the curve (or a coordinate is not below the field prime).
    #[error("jwk: (x, y) is not a point on {curve}")]
    NotOnCurve {
        /// The curve.
        curve: &'static str,
    },
    /// An RSA integer has a leading zero octet or is empty.
    #[error("jwk: member `{member}` is not a minimal big-endian integer")]
    NonMinimalInteger {
        /// `n` or `e`.
        member: &'static str,
    },
    /// The RSA modulus size is outside 2048..=8192 bits.
    #[error("jwk: RSA modulus is {bits} bits; 2048..=8192 accepted")]
    ModulusSize {
        /// Bits in the modulus.
        bits: usize,
    },
    /// The RSA public exponent is even, below 3 or above 2^32 - 1.
    #[error("jwk: RSA exponent is not an odd value in 3..2^32")]
    Exponent,
    /// The RSA modulus is even (not a product of two odd primes).
    #[error("jwk: RSA modulus is even")]
    EvenModulus,
    /// aws-lc-rs refused the RSA public key.
    #[error("jwk: the RSA public key was rejected by the crypto library")]
    RsaKeyRejected,
}

#[derive(Clone)]
enum Material {
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Rsa {
        key: PublicEncryptingKey,
        bits: usize,
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

/// A validated TEE public key, with the JWK exactly as the guest sent it.
#[derive(Clone)]
pub struct TeePublicKey {
    as_sent: Value,
    material: Material,
}

impl std::fmt::Debug for TeePublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeePublicKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl TeePublicKey {
    /// Parses a JWK from JSON bytes (at most [`MAX_JWK_JSON_LEN`]).
    ///
    /// # Errors
    /// [`JwkError::TooLarge`], [`JwkError::NotJson`], or any error of [`TeePublicKey::from_json`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, JwkError> {
        if bytes.len() > MAX_JWK_JSON_LEN {
            return Err(JwkError::TooLarge {
                len: bytes.len(),
                max: MAX_JWK_JSON_LEN,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|_| JwkError::NotJson)?;
        Self::from_json(&value)
    }

    /// Parses and validates a JWK given as JSON (the `tee-pubkey` member of the attest request).
    ///
    /// # Errors
    /// A [`JwkError`] naming the member that is missing, unknown, malformed, or describes a key
    /// the broker does not encrypt to.
    pub fn from_json(value: &Value) -> Result<Self, JwkError> {
        let obj = value.as_object().ok_or(JwkError::NotAnObject)?;
        for name in obj.keys() {
            if let Some(p) = PRIVATE_MEMBERS.iter().find(|p| **p == name.as_str()) {
                return Err(JwkError::PrivateKeyMember { member: p });
            }
        }
        let kty = string_member(obj, "kty", 16)?;
        let material = match kty {
            "EC" => {
                allow_only(obj, &["kty", "crv", "alg", "x", "y", "kid", "use"])?;
                check_common(obj, ALG_ECDH_ES_A256KW)?;
                let crv = string_member(obj, "crv", 16)?;
                let curve = match crv {
                    "P-256" => Curve::P256,
                    "P-521" => Curve::P521,
                    other => return Err(JwkError::UnsupportedCurve { crv: echo(other) }),
                };
                let x = coordinate(obj, "x", curve)?;
                let y = coordinate(obj, "y", curve)?;
                let mut point = Vec::with_capacity(1 + 2 * curve.coordinate_len());
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                ParsedPublicKey::try_from(UnparsedPublicKey::new(curve.agreement(), &point))
                    .map_err(|_| JwkError::NotOnCurve {
                        curve: curve.name(),
                    })?;
                Material::Ec { curve, point }
            }
            "RSA" => {
                allow_only(obj, &["kty", "alg", "n", "e", "kid", "use"])?;
                check_common(obj, ALG_RSA_OAEP_256)?;
                // 8192 bits = 1024 bytes = 1366 base64url characters.
                let n = b64_member(obj, "n", 1366)?;
                let first = *n
                    .first()
                    .ok_or(JwkError::NonMinimalInteger { member: "n" })?;
                if first == 0 {
                    return Err(JwkError::NonMinimalInteger { member: "n" });
                }
                let bits = n.len() * 8 - first.leading_zeros() as usize;
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(JwkError::ModulusSize { bits });
                }
                if n.last().is_some_and(|b| b % 2 == 0) {
                    return Err(JwkError::EvenModulus);
                }
                let e = b64_member(obj, "e", 8)?;
                let e_first = *e
                    .first()
                    .ok_or(JwkError::NonMinimalInteger { member: "e" })?;
                if e_first == 0 {
                    return Err(JwkError::NonMinimalInteger { member: "e" });
                }
                if e.len() > 4 {
                    return Err(JwkError::Exponent);
                }
                let e_value = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                if e_value < 3 || e_value % 2 == 0 {
                    return Err(JwkError::Exponent);
                }
                let key: PublicEncryptingKey = PublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                }
                .try_into()
                .map_err(|_| JwkError::RsaKeyRejected)?;
                Material::Rsa { key, bits, n, e }
            }
            other => return Err(JwkError::UnsupportedKty { kty: echo(other) }),
        };
        Ok(TeePublicKey {
            as_sent: value.clone(),
            material,
        })
    }

    /// The JWE key-management algorithm this key is used with.
    #[must_use]
    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.material {
            Material::Ec { curve, .. } => KeyAlgorithm::EcdhEsA256Kw(*curve),
            Material::Rsa { bits, .. } => KeyAlgorithm::RsaOaep256 { bits: *bits },
        }
    }

    /// The JWK exactly as the guest sent it (what the REPORT_DATA binding hashes).
    #[must_use]
    pub fn as_sent(&self) -> &Value {
        &self.as_sent
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, unpadded base64url): a stable short name for the
    /// key, independent of member order and optional members.
    #[must_use]
    pub fn thumbprint_sha256(&self) -> String {
        let canonical = match &self.material {
            Material::Ec { curve, point } => {
                let (x, y) = split_point(point, *curve);
                format!(
                    r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                    curve.name(),
                    URL_SAFE_NO_PAD.encode(x),
                    URL_SAFE_NO_PAD.encode(y)
                )
            }
            Material::Rsa { n, e, .. } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(e),
                URL_SAFE_NO_PAD.encode(n)
            ),
        };
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    pub(crate) fn ec_point(&self) -> Option<(Curve, &[u8])> {
        match &self.material {
            Material::Ec { curve, point } => Some((*curve, point)),
            Material::Rsa { .. } => None,
        }
    }

    pub(crate) fn rsa_key(&self) -> Option<&PublicEncryptingKey> {
        match &self.material {
            Material::Rsa { key, .. } => Some(key),
            Material::Ec { .. } => None,
        }
    }
}

/// Splits an uncompressed SEC1 point into its coordinates (empty slices on a malformed point,
/// which the parser never produces).
pub(crate) fn split_point(point: &[u8], curve: Curve) -> (&[u8], &[u8]) {
    let body = point.get(1..).unwrap_or_default();
    let (x, y) = body.split_at(curve.coordinate_len().min(body.len()));
    (x, y)
}

fn echo(s: &str) -> String {
    s.chars().take(ECHO_MAX).collect()
}

fn allow_only(obj: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), JwkError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(JwkError::UnknownMember { member: echo(k) }),
        None => Ok(()),
    }
}

fn check_common(
    obj: &serde_json::Map<String, Value>,
    expected_alg: &'static str,
) -> Result<(), JwkError> {
    let alg = string_member(obj, "alg", 32)?;
    if alg != expected_alg {
        return Err(JwkError::WrongAlg {
            expected: expected_alg,
            found: echo(alg),
        });
    }
    if obj.contains_key("use") {
        let u = string_member(obj, "use", 16)?;
        if u != "enc" {
            return Err(JwkError::WrongUse { found: echo(u) });
        }
    }
    if obj.contains_key("kid") {
        string_member(obj, "kid", MAX_KID_LEN)?;
    }
    Ok(())
}

fn string_member<'a>(
    obj: &'a serde_json::Map<String, Value>,
    member: &'static str,
    max: usize,
) -> Result<&'a str, JwkError> {
    let s = obj
        .get(member)
        .ok_or(JwkError::MissingMember { member })?
        .as_str()
        .ok_or(JwkError::NotAString { member })?;
    if s.len() > max {
        return Err(JwkError::MemberTooLong {
            member,
            len: s.len(),
            max,
        });
    }
    Ok(s)
}

fn b64_member(
    obj: &serde_json::Map<String, Value>,
    member: &'static str,
    max_chars: usize,
) -> Result<Vec<u8>, JwkError> {
    let s = string_member(obj, member, max_chars)?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwkError::Base64 { member })
}

fn coordinate(
    obj: &serde_json::Map<String, Value>,
    member: &'static str,
    curve: Curve,
) -> Result<Vec<u8>, JwkError> {
    let expected = curve.coordinate_len();
    // Base64url of `expected` bytes is at most 4*ceil(n/3) characters; allow a little more so a
    // slightly long coordinate gets the precise length error.
    let v = b64_member(obj, member, 4 * expected.div_ceil(3) + 8)?;
    if v.len() != expected {
        return Err(JwkError::CoordinateLength {
            member,
            curve: curve.name(),
            expected,
            found: v.len(),
        });
    }
    Ok(v)
}

/// Fuzz harness: parse arbitrary bytes as a JWK and, when that succeeds, encrypt to the key.
#[doc(hidden)]
pub fn fuzz_tee_pubkey(data: &[u8]) {
    if let Ok(key) = TeePublicKey::from_slice(data) {
        let _ = key.thumbprint_sha256();
        let _ = crate::jwe::encrypt(&key, b"fuzz");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsBigEndian;
    use aws_lc_rs::encoding::EcPublicKeyUncompressedBin;
    use proptest::prelude::*;
    use serde_json::json;

    /// A fresh static EC key pair and its JWK.
    pub(crate) fn ec_jwk(curve: Curve) -> (aws_lc_rs::agreement::PrivateKey, Value) {
        let sk = aws_lc_rs::agreement::PrivateKey::generate(curve.agreement()).unwrap();
        let pk = sk.compute_public_key().unwrap();
        let bin: EcPublicKeyUncompressedBin<'static> = pk.as_be_bytes().unwrap();
        let (x, y) = split_point(bin.as_ref(), curve);
        let jwk = json!({"kty":"EC","crv":curve.name(),"alg":"ECDH-ES+A256KW",
                         "x":URL_SAFE_NO_PAD.encode(x),"y":URL_SAFE_NO_PAD.encode(y)});
        (sk, jwk)
    }

    /// A fresh RSA key pair and its JWK.
    pub(crate) fn rsa_jwk(
        size: aws_lc_rs::rsa::KeySize,
    ) -> (aws_lc_rs::rsa::PrivateDecryptingKey, Value) {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        let sk = aws_lc_rs::rsa::PrivateDecryptingKey::generate(size).unwrap();
        let der: PublicKeyX509Der<'static> = sk.public_key().as_der().unwrap();
        let (_, spki) =
            <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(
                der.as_ref(),
            )
            .unwrap();
        let Ok(x509_parser::public_key::PublicKey::RSA(pk)) = spki.parsed() else {
            panic!("rsa")
        };
        let strip = |b: &[u8]| {
            b.iter()
                .skip_while(|x| **x == 0)
                .copied()
                .collect::<Vec<u8>>()
        };
        let jwk = json!({"kty":"RSA","alg":"RSA-OAEP-256",
                         "n":URL_SAFE_NO_PAD.encode(strip(pk.modulus)),
                         "e":URL_SAFE_NO_PAD.encode(strip(pk.exponent))});
        (sk, jwk)
    }

    fn with(mut v: Value, k: &str, val: Value) -> Value {
        v.as_object_mut().unwrap().insert(k.into(), val);
        v
    }
    fn without(mut v: Value, k: &str) -> Value {
        v.as_object_mut().unwrap().remove(k);
        v
    }

    #[test]
    fn accepts_p256_p521_rsa_and_keeps_as_sent() {
        for curve in [Curve::P256, Curve::P521] {
            let (_, jwk) = ec_jwk(curve);
            let k = TeePublicKey::from_json(&jwk).unwrap();
            assert_eq!(k.algorithm(), KeyAlgorithm::EcdhEsA256Kw(curve));
            assert_eq!(k.as_sent(), &jwk);
            let with_opt = with(with(jwk, "kid", json!("k1")), "use", json!("enc"));
            let k2 = TeePublicKey::from_json(&with_opt).unwrap();
            assert_eq!(k2.thumbprint_sha256(), k.thumbprint_sha256());
        }
        let (_, jwk) = rsa_jwk(aws_lc_rs::rsa::KeySize::Rsa2048);
        let k = TeePublicKey::from_slice(jwk.to_string().as_bytes()).unwrap();
        assert_eq!(k.algorithm(), KeyAlgorithm::RsaOaep256 { bits: 2048 });
        assert_eq!(k.thumbprint_sha256().len(), 43);
    }

    #[test]
    fn rfc7638_thumbprint_vector() {
        // RFC 7638 section 3.1 example key and thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk = json!({"kty":"RSA","alg":"RSA-OAEP-256","n":n,"e":"AQAB"});
        let k = TeePublicKey::from_json(&jwk).unwrap();
        assert_eq!(
            k.thumbprint_sha256(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    fn err(v: &Value) -> JwkError {
        TeePublicKey::from_json(v).unwrap_err()
    }

    #[test]
    fn every_check_rejects() {
        let (_, ec) = ec_jwk(Curve::P256);
        let (_, rsa) = rsa_jwk(aws_lc_rs::rsa::KeySize::Rsa2048);
        assert_eq!(err(&json!([1])), JwkError::NotAnObject);
        assert_eq!(
            TeePublicKey::from_slice(b"{\"kty\":").unwrap_err(),
            JwkError::NotJson
        );
        let big = vec![b' '; MAX_JWK_JSON_LEN + 1];
        assert!(matches!(
            TeePublicKey::from_slice(&big),
            Err(JwkError::TooLarge { .. })
        ));
        assert_eq!(
            err(&without(ec.clone(), "kty")),
            JwkError::MissingMember { member: "kty" }
        );
        assert_eq!(
            err(&with(ec.clone(), "kty", json!(1))),
            JwkError::NotAString { member: "kty" }
        );
        assert!(matches!(
            err(&with(ec.clone(), "kty", json!("OKP"))),
            JwkError::UnsupportedKty { .. }
        ));
        assert!(matches!(
            err(&with(ec.clone(), "crv", json!("P-384"))),
            JwkError::UnsupportedCurve { .. }
        ));
        assert!(matches!(
            err(&with(ec.clone(), "alg", json!("ECDH-ES"))),
            JwkError::WrongAlg { .. }
        ));
        assert!(matches!(
            err(&with(rsa.clone(), "alg", json!("RSA1_5"))),
            JwkError::WrongAlg { .. }
        ));
        assert!(matches!(
            err(&with(ec.clone(), "use", json!("sig"))),
            JwkError::WrongUse { .. }
        ));
        assert_eq!(
            err(&with(ec.clone(), "d", json!("AAAA"))),
            JwkError::PrivateKeyMember { member: "d" }
        );
        assert_eq!(
            err(&with(rsa.clone(), "p", json!("AAAA"))),
            JwkError::PrivateKeyMember { member: "p" }
        );
        assert!(matches!(
            err(&with(ec.clone(), "n", json!("AQAB"))),
            JwkError::UnknownMember { .. }
        ));
        assert!(matches!(
            err(&with(rsa.clone(), "x", json!("AQAB"))),
            JwkError::UnknownMember { .. }
        ));
        assert!(matches!(
            err(&with(ec.clone(), "kid", json!("k".repeat(MAX_KID_LEN + 1)))),
            JwkError::MemberTooLong { member: "kid", .. }
        ));
        // Padding, standard alphabet and bad trailing bits are all refused.
        let x = ec["x"].as_str().unwrap().to_string();
        assert_eq!(
            err(&with(ec.clone(), "x", json!(format!("{x}=")))),
            JwkError::Base64 { member: "x" }
        );
        let y43 = format!("{}+", &ec["y"].as_str().unwrap()[..42]);
        assert_eq!(
            err(&with(ec.clone(), "y", json!(y43))),
            JwkError::Base64 { member: "y" }
        );
        let trailing = format!("{}B", &x[..42]); // last char must encode zero low bits
        // (Refused for its encoding, not later for the point a lenient decoder would make.)
        assert_eq!(
            err(&with(ec.clone(), "x", json!(trailing))),
            JwkError::Base64 { member: "x" }
        );
        assert!(matches!(
            err(&with(
                ec.clone(),
                "x",
                json!(URL_SAFE_NO_PAD.encode([1u8; 31]))
            )),
            JwkError::CoordinateLength {
                member: "x",
                expected: 32,
                found: 31,
                ..
            }
        ));
        assert!(matches!(
            err(&with(
                ec.clone(),
                "y",
                json!(URL_SAFE_NO_PAD.encode([1u8; 33]))
            )),
            JwkError::CoordinateLength {
                member: "y",
                found: 33,
                ..
            }
        ));
        // A P-256 key labelled P-521 has the wrong coordinate length.
        assert!(matches!(
            err(&with(ec.clone(), "crv", json!("P-521"))),
            JwkError::CoordinateLength { .. }
        ));
        // Off-curve point: y + 1.
        let mut y = URL_SAFE_NO_PAD.decode(ec["y"].as_str().unwrap()).unwrap();
        *y.last_mut().unwrap() ^= 1;
        assert_eq!(
            err(&with(ec.clone(), "y", json!(URL_SAFE_NO_PAD.encode(&y)))),
            JwkError::NotOnCurve { curve: "P-256" }
        );
        // Coordinates not below p (all 0xff) and the all-zero "point".
        assert!(matches!(
            err(&with(
                with(ec.clone(), "x", json!(URL_SAFE_NO_PAD.encode([0xff; 32]))),
                "y",
                json!(URL_SAFE_NO_PAD.encode([0xff; 32]))
            )),
            JwkError::NotOnCurve { .. }
        ));
        assert!(matches!(
            err(&with(
                with(ec, "x", json!(URL_SAFE_NO_PAD.encode([0; 32]))),
                "y",
                json!(URL_SAFE_NO_PAD.encode([0; 32]))
            )),
            JwkError::NotOnCurve { .. }
        ));
        // RSA: leading zero, sizes, exponents.
        let n = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();
        let mut n0 = vec![0u8];
        n0.extend_from_slice(&n);
        assert_eq!(
            err(&with(rsa.clone(), "n", json!(URL_SAFE_NO_PAD.encode(&n0)))),
            JwkError::NonMinimalInteger { member: "n" }
        );
        assert_eq!(
            err(&with(rsa.clone(), "n", json!(""))),
            JwkError::NonMinimalInteger { member: "n" }
        );
        assert!(matches!(
            err(&with(
                rsa.clone(),
                "n",
                // One byte short at the end: the top byte keeps its high bit, so the
                // shorter modulus is still minimal (dropping the first byte instead left a
                // leading zero, a NonMinimalInteger, one run in 256).
                json!(URL_SAFE_NO_PAD.encode(&n[..n.len() - 1]))
            )),
            JwkError::ModulusSize { bits: 2033..=2040 }
        ));
        assert!(matches!(
            err(&with(
                rsa.clone(),
                "n",
                json!(URL_SAFE_NO_PAD.encode([0xc5u8; 1025]))
            )),
            JwkError::MemberTooLong { member: "n", .. }
        ));
        let mut n1023 = vec![0x01u8];
        n1023.extend_from_slice(&[0xc5; 1024]);
        assert!(matches!(
            err(&with(
                rsa.clone(),
                "n",
                json!(URL_SAFE_NO_PAD.encode(&n1023))
            )),
            JwkError::MemberTooLong { .. } | JwkError::ModulusSize { .. }
        ));
        for e in [
            &[0x01, 0x00, 0x00][..],
            &[0x02],
            &[0x01],
            &[0x01, 0, 0, 0, 1],
        ] {
            assert!(
                matches!(
                    err(&with(rsa.clone(), "e", json!(URL_SAFE_NO_PAD.encode(e)))),
                    JwkError::Exponent
                        | JwkError::NonMinimalInteger { .. }
                        | JwkError::MemberTooLong { .. }
                ),
                "{e:?}"
            );
        }
        assert_eq!(
            err(&with(
                rsa.clone(),
                "e",
                json!(URL_SAFE_NO_PAD.encode([0, 1, 0, 1]))
            )),
            JwkError::NonMinimalInteger { member: "e" }
        );
        assert_eq!(
            err(&with(
                rsa.clone(),
                "e",
                json!(URL_SAFE_NO_PAD.encode([1, 0, 0]))
            )),
            JwkError::Exponent
        );
        // An even modulus is not an RSA key.
        let mut even = n.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert_eq!(
            err(&with(rsa, "n", json!(URL_SAFE_NO_PAD.encode(&even)))),
            JwkError::EvenModulus
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_tee_pubkey(&data);
        }

        #[test]
        fn arbitrary_coordinates_are_rejected_or_on_curve(
            x in proptest::collection::vec(any::<u8>(), 0..80),
            y in proptest::collection::vec(any::<u8>(), 0..80),
            p521 in any::<bool>(),
        ) {
            let curve = if p521 { Curve::P521 } else { Curve::P256 };
            let jwk = json!({"kty":"EC","crv":curve.name(),"alg":"ECDH-ES+A256KW",
                             "x":URL_SAFE_NO_PAD.encode(&x),"y":URL_SAFE_NO_PAD.encode(&y)});
            match TeePublicKey::from_json(&jwk) {
                Ok(_) => prop_assert!(false, "random coordinates accepted"),
                Err(JwkError::CoordinateLength { .. } | JwkError::NotOnCurve { .. }
                    | JwkError::MemberTooLong { .. }) => {}
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }

        #[test]
        fn member_order_and_optional_members_do_not_matter(seed in any::<u8>(), kid in "[a-z0-9]{0,16}") {
            let curve = if seed % 2 == 0 { Curve::P256 } else { Curve::P521 };
            let (_, jwk) = ec_jwk(curve);
            let a = TeePublicKey::from_json(&jwk).unwrap();
            let b = TeePublicKey::from_json(&with(jwk, "kid", json!(kid))).unwrap();
            prop_assert_eq!(a.thumbprint_sha256(), b.thumbprint_sha256());
        }
    }
}
