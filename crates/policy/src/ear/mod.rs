//! Attestation results as EAR (EAT Attestation Results): claims from an [`Appraisal`], signed as a
//! JWT (ES256/ES384) or a CWT (COSE_Sign1), and verified back with a caller-pinned key.
//!
//! ```text
//! Appraisal ──EarClaims::from_appraisal──▶ EarClaims ──issue_jwt / issue_cwt──▶ token
//! token ──verify_jwt / verify_cwt(key, at)──▶ EarClaims
//! ```
//!
//! # Which EAR
//!
//! The EAR draft renamed its claims in 2026. Tessera emits the names of draft-fv-rats-ear-05
//! (§3, §3.1, §4.5, §9.1), the form that Project Veraison's libraries and Trustee (CoCo
//! attestation service and KBS) produce and read — Trustee's KBS finds the TEE key at
//! `/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey`:
//!
//! | claim                             | JWT name                          | CWT key | value |
//! |-----------------------------------|-----------------------------------|--------:|-------|
//! | profile                           | `eat_profile`                     |     265 | [`EAR_PROFILE`] |
//! | issued at                         | `iat`                             |       6 | integer seconds |
//! | expires                           | `exp`                             |       4 | integer seconds (required here) |
//! | not before (read only)            | `nbf`                             |       5 | integer seconds |
//! | nonce                             | `eat_nonce`                       |      10 | 8-64 bytes; base64url in JSON |
//! | verifier                          | `ear.verifier-id`                 |    1004 | `{developer (0), build (1)}` |
//! | appraisals                        | `submods`                         |     266 | text label → appraisal |
//! | status (in a submod)              | `ear.status`                      |    1000 | tier: names in JSON, 0/2/32/96 in CBOR |
//! | trustworthiness vector            | `ear.trustworthiness-vector`      |    1001 | claim → i8; CBOR keys 0-7 |
//! | appraisal policy                  | `ear.appraisal-policy-id`         |    1003 | text |
//! | TEE claims (Veraison extension)   | `ear.veraison.annotated-evidence` |  -70000 | JSON object |
//!
//! Vector claims (draft-ietf-rats-ar4si §2.3.4; CBOR key): `instance-identity` 0,
//! `configuration` 1, `executables` 2, `file-system` 3, `hardware` 4, `runtime-opaque` 5,
//! `storage-opaque` 6, `sourced-data` 7. Tiers (§2.3.2): none 0, affirming 2, warning 32,
//! contraindicated 96.
//!
//! draft-ietf-rats-ear-03 and -04 keep these integer keys but rename the JSON claims with
//! underscores (`ear_status`, `ear_trustworthiness_vector`, `ear_verifier_id`,
//! `ear_appraisal_policy_ids` as an array, `ear_veraison_annotated_evidence`) under a new profile
//! (`tag:ietf.org,2026:rats/ear#03`, `#04`); no deployed relying party reads those yet. Tokens
//! carry the profile, so a later profile can be added beside this one.
//!
//! # Verification
//!
//! The caller names the key; nothing in a token (`jwk`, `kid`, `x5c`) chooses it. Each key is
//! pinned to one algorithm ([`Alg`]), so `none`, HMAC and cross-curve tokens fail before any
//! crypto. Time is a parameter, with no leeway. Inputs are bounded ([`MAX_TOKEN_LEN`]) and every
//! failure is a [`TokenError`] naming the check; nothing panics on untrusted input.
//!
//! [`Appraisal`]: crate::Appraisal

mod claims;
mod cwt;
mod jwt;
mod keys;
#[cfg(test)]
mod token_tests;
mod vector;

use tessera_pki::UnixTime;

pub use claims::{EarClaims, MAX_EVIDENCE_DEPTH, Nonce, RUNTIME_DATA_CLAIMS, Submod, VerifierId};
pub use cwt::{issue_cwt, verify_cwt};
pub use jwt::{issue_jwt, verify_jwt};
pub use keys::{Alg, SigningKey, VerifyingKey};
pub use vector::{Status, TrustVector};

/// The EAR profile (`eat_profile`) of draft-fv-rats-ear-05 §3: "It MUST be the following tag
/// URI".
pub const EAR_PROFILE: &str = "tag:github.com,2023:veraison/ear";

/// The submod label of the CPU TEE's appraisal, as Trustee names it.
pub const CPU_SUBMOD: &str = "cpu0";

/// Most bytes accepted for a token (JWT text or CWT bytes), checked before any parsing.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Issuing or verifying an EAR token, or reading a key, failed. Each variant names the check;
/// none carries key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The input is larger than allowed ([`MAX_TOKEN_LEN`] for tokens, 16 KiB for PEM keys):
    /// refused before parsing.
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// `token` or `PEM key`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not a token of the expected form: not three unpadded base64url parts (JWT), not one
    /// COSE_Sign1 with tag 18 (CWT), a header or claims-set that is not a JSON object / CBOR
    /// map. Likely a truncated or re-encoded token, or a JWT given to the CWT verifier.
    #[error("token format: {what}")]
    Format {
        /// What is wrong.
        what: &'static str,
    },
    /// The header asks for something this verifier refuses: `crit`, a `typ` other than `JWT`,
    /// a missing `alg`, `alg` outside the COSE protected header.
    #[error("token header: {what}")]
    Header {
        /// What is wrong.
        what: &'static str,
    },
    /// The header's algorithm is not the key's: `none`, HS256, or a token for the other curve.
    /// Likely the wrong key, or an algorithm-confusion attempt.
    #[error("token algorithm {found} is not the key's {expected}")]
    Algorithm {
        /// The key's algorithm.
        expected: &'static str,
        /// The token's (cut to 32 characters).
        found: String,
    },
    /// The signature does not verify with the key: the token was altered or signed by another
    /// key.
    #[error("token signature does not verify with the given key")]
    Signature,
    /// The token is expired: `at >= exp`.
    #[error("token expired at {exp} (checked at {at})")]
    Expired {
        /// The token's `exp`.
        exp: UnixTime,
        /// The verification time.
        at: UnixTime,
    },
    /// The token is not valid yet: `at < iat` (or `nbf`). Likely clock skew between issuer and
    /// relying party.
    #[error("token not valid before {not_before} (checked at {at})")]
    NotYetValid {
        /// The token's `iat` or `nbf`.
        not_before: UnixTime,
        /// The verification time.
        at: UnixTime,
    },
    /// A claim is missing, of the wrong type, or breaks a draft rule (profile, vector range,
    /// status more trusting than the vector, nonce length, ...).
    #[error("token claim `{claim}`: {reason}")]
    Claims {
        /// The claim (`exp`, `submods.cpu0.ear.status`).
        claim: String,
        /// Why.
        reason: &'static str,
    },
    /// A key could not be read (PEM, PKCS#8, SubjectPublicKeyInfo or JWK).
    #[error("key: {what}")]
    Key {
        /// What is wrong.
        what: &'static str,
    },
    /// The crypto library or an encoder failed while issuing (no entropy, internal error).
    #[error("issuing failed: {what}")]
    Signing {
        /// The step.
        what: &'static str,
    },
}

/// An algorithm name from a token, for an error: escaped, at most 32 characters.
fn shown_alg(found: &str) -> String {
    found
        .chars()
        .take(32)
        .flat_map(char::escape_debug)
        .collect()
}

/// The time checks shared by JWT and CWT: `at < exp`, `iat <= at`, `nbf <= at`; no leeway.
fn check_time(parsed: &claims::Parsed, at: UnixTime) -> Result<(), TokenError> {
    let c = &parsed.claims;
    if at >= c.exp {
        return Err(TokenError::Expired { exp: c.exp, at });
    }
    for not_before in core::iter::once(c.iat).chain(parsed.nbf) {
        if at < not_before {
            return Err(TokenError::NotYetValid { not_before, at });
        }
    }
    Ok(())
}

/// The public key of RFC 7515 appendix A.3 (P-256), the fixed key of the fuzz harness.
const FUZZ_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7
6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==
-----END PUBLIC KEY-----
";

/// Fuzz harness: [`verify_jwt`] on the input as text and [`verify_cwt`] on the bytes, with a
/// fixed key; then the claims parsers that sit behind the signature, on the input as JSON and
/// as CBOR, asserting that what parses re-encodes to the same claims.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_token(data: &[u8]) {
    let key = match VerifyingKey::from_spki_pem(FUZZ_KEY) {
        Ok(k) => k,
        Err(e) => panic!("fixed fuzz key: {e}"),
    };
    let at = UnixTime::from_secs(1_700_000_000);
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = verify_jwt(text, &key, at);
    }
    let _ = verify_cwt(data, &key, at);
    if data.len() > MAX_TOKEN_LEN {
        return;
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(parsed) = EarClaims::from_json(&json)
    {
        let again = EarClaims::from_json(&parsed.claims.to_json());
        assert_eq!(again.map(|p| p.claims).as_ref(), Ok(&parsed.claims));
    }
    if let Ok(cbor) = claims::read_cbor(data)
        && let Ok(parsed) = EarClaims::from_cbor(&cbor)
    {
        let c = &parsed.claims;
        let again = c.to_cbor().and_then(|v| EarClaims::from_cbor(&v));
        assert_eq!(again.map(|p| p.claims).as_ref(), Ok(c));
        let via_json = EarClaims::from_json(&c.to_json());
        assert_eq!(via_json.map(|p| p.claims).as_ref(), Ok(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_harness_runs() {
        fuzz_token(b"");
        fuzz_token(b"a.b.c");
        fuzz_token(&[0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40]);
        fuzz_token(br#"{"eat_profile":"tag:github.com,2023:veraison/ear"}"#);
        let key = SigningKey::generate(Alg::Es256).unwrap();
        let mut claims = EarClaims {
            iat: UnixTime::from_secs(1),
            exp: UnixTime::from_secs(2),
            nonce: None,
            verifier_id: VerifierId::tessera(),
            submods: Default::default(),
        };
        claims.submods.insert(
            CPU_SUBMOD.into(),
            Submod {
                status: Status::Affirming,
                trust_vector: None,
                appraisal_policy_id: None,
                annotated_evidence: None,
            },
        );
        fuzz_token(issue_jwt(&claims, &key).unwrap().as_bytes());
        fuzz_token(&issue_cwt(&claims, &key).unwrap());
        fuzz_token(serde_json::to_string(&claims).unwrap().as_bytes());
    }

    #[test]
    fn time_checks() {
        let mk = |iat: i64, exp: i64, nbf: Option<i64>| claims::Parsed {
            claims: EarClaims {
                iat: UnixTime::from_secs(iat),
                exp: UnixTime::from_secs(exp),
                nonce: None,
                verifier_id: VerifierId::tessera(),
                submods: Default::default(),
            },
            nbf: nbf.map(UnixTime::from_secs),
        };
        let at = UnixTime::from_secs;
        check_time(&mk(10, 20, None), at(10)).unwrap();
        check_time(&mk(10, 20, None), at(19)).unwrap();
        assert!(matches!(
            check_time(&mk(10, 20, None), at(20)),
            Err(TokenError::Expired { .. })
        ));
        assert!(matches!(
            check_time(&mk(10, 20, None), at(9)),
            Err(TokenError::NotYetValid { .. })
        ));
        assert!(matches!(
            check_time(&mk(10, 20, Some(15)), at(14)),
            Err(TokenError::NotYetValid { .. })
        ));
        check_time(&mk(10, 20, Some(15)), at(15)).unwrap();
    }
}
