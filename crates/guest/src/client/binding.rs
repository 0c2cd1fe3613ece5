//! The REPORT_DATA binding: `H(JCS({"additional-evidence", "nonce", "tee-pubkey"}))` ‖ zeros.
//!
//! JCS (RFC 8785) is the `serde_json_canonicalizer` crate, the one CoCo guests use, so the
//! broker's own canonicalizer is checked against the guests' implementation whenever the two talk.

use aws_lc_rs::digest;

use super::error::ClientError;

/// The hash the challenge selected for the binding (`extra-params` `""` means SHA-384).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HashAlg {
    /// `sha256`
    Sha256,
    /// `sha384` (the default when the challenge selects nothing)
    #[default]
    Sha384,
    /// `sha512`
    Sha512,
}

impl HashAlg {
    /// The algorithms this client offers in `supported-hash-algorithms`, in that order.
    pub const SUPPORTED: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];

    /// The protocol name (`sha256`, `sha384`, `sha512`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// The algorithm with this protocol name (exact, lower case).
    #[must_use]
    pub fn from_name(name: &str) -> Option<HashAlg> {
        HashAlg::SUPPORTED.into_iter().find(|h| h.name() == name)
    }

    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        }
    }

    /// `H(data)`.
    #[must_use]
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.algorithm(), data).as_ref().to_vec()
    }
}

/// The JSON object whose canonical form is hashed into REPORT_DATA.
#[must_use]
pub fn binding_json(nonce: &str, tee_pubkey: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "additional-evidence": "",
        "nonce": nonce,
        "tee-pubkey": tee_pubkey,
    })
}

/// REPORT_DATA for a challenge: `hash(JCS(binding_json(nonce, tee_pubkey)))` followed by zero
/// bytes up to 64 (no padding for SHA-512).
///
/// # Errors
/// [`ClientError::Crypto`] when the JSON cannot be canonicalized (a JWK holding a number that
/// JCS cannot represent; the JWKs this client makes hold only strings).
pub fn report_data(
    hash: HashAlg,
    nonce: &str,
    tee_pubkey: &serde_json::Value,
) -> Result<[u8; 64], ClientError> {
    let canonical =
        serde_json_canonicalizer::to_vec(&binding_json(nonce, tee_pubkey)).map_err(|_| {
            ClientError::Crypto {
                what: "JCS canonicalization",
            }
        })?;
    let h = hash.digest(&canonical);
    let mut out = [0u8; 64];
    let dst = out.get_mut(..h.len()).ok_or(ClientError::Crypto {
        what: "digest longer than REPORT_DATA",
    })?;
    dst.copy_from_slice(&h);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed offline with Python 3 (no Rust involved):
    //   import hashlib, json
    //   jwk = {"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW",
    //          "x":"gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
    //          "y":"SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"}
    //   o = {"additional-evidence":"", "nonce":"q1w2e3r4t5y6u7i8o9p0AAAAAAAAAAAAAAAAAAAAAAA=", "tee-pubkey":jwk}
    //   s = json.dumps(o, sort_keys=True, separators=(',',':'), ensure_ascii=False).encode()
    //   hashlib.sha384(s).hexdigest(); hashlib.sha256(s).hexdigest(); hashlib.sha512(s).hexdigest()
    // (For ASCII-only objects of strings, sorted compact json.dumps is exactly RFC 8785 JCS.)
    const NONCE: &str = "q1w2e3r4t5y6u7i8o9p0AAAAAAAAAAAAAAAAAAAAAAA=";
    const CANONICAL: &str = r#"{"additional-evidence":"","nonce":"q1w2e3r4t5y6u7i8o9p0AAAAAAAAAAAAAAAAAAAAAAA=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0","y":"SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"}}"#;
    const SHA384_HEX: &str = "9859b1513a3c4a60ffc4907ab958fa487e761ad856acc7f5966d4c06c9fb402c779ebe4c311fea4d3369fedbcf829da4";
    const SHA256_HEX: &str = "df722689f38fc5f3e96159324d853d57fd1b544748c69fa5368a3ae621b839f7";
    const SHA512_HEX: &str = "d66715c24ea867895204778ff96fccc2e6bab473974fb353ac0093d0294ac2d8e16b486ee481b74eef6287f3afe362ad3987a587383ba17d312df33dc242e8ab";

    fn jwk() -> serde_json::Value {
        // Deliberately not in sorted order: canonicalization must sort.
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW",
            "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
            "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps",
        })
    }

    #[test]
    fn canonical_form_is_sorted_compact() {
        let c = serde_json_canonicalizer::to_vec(&binding_json(NONCE, &jwk())).unwrap();
        assert_eq!(core::str::from_utf8(&c).unwrap(), CANONICAL);
    }

    #[test]
    fn report_data_matches_python_hashlib() {
        let rd = report_data(HashAlg::Sha384, NONCE, &jwk()).unwrap();
        assert_eq!(hex::encode(&rd[..48]), SHA384_HEX);
        assert_eq!(rd[48..], [0u8; 16]);
        let rd = report_data(HashAlg::Sha256, NONCE, &jwk()).unwrap();
        assert_eq!(hex::encode(&rd[..32]), SHA256_HEX);
        assert_eq!(rd[32..], [0u8; 32]);
        let rd = report_data(HashAlg::Sha512, NONCE, &jwk()).unwrap();
        assert_eq!(hex::encode(rd), SHA512_HEX);
    }

    #[test]
    fn binding_changes_with_every_input() {
        let base = report_data(HashAlg::Sha384, NONCE, &jwk()).unwrap();
        assert_ne!(base, report_data(HashAlg::Sha384, "other", &jwk()).unwrap());
        let mut k = jwk();
        k["x"] = serde_json::json!("AAAA");
        assert_ne!(base, report_data(HashAlg::Sha384, NONCE, &k).unwrap());
        assert_ne!(base, report_data(HashAlg::Sha512, NONCE, &jwk()).unwrap());
    }

    #[test]
    fn hash_names_round_trip() {
        for h in HashAlg::SUPPORTED {
            assert_eq!(HashAlg::from_name(h.name()), Some(h));
        }
        assert_eq!(HashAlg::from_name("SHA384"), None);
        assert_eq!(HashAlg::from_name("sm3"), None);
        assert_eq!(HashAlg::default(), HashAlg::Sha384);
    }
}
