//! EAR as a CWT: a tagged COSE_Sign1 (RFC 9052 §4.2, CBOR tag 18) over the CBOR claims-set
//! (RFC 8392), ES256 (-7) or ES384 (-35) (RFC 9053 §2.1).

use coset::{
    Algorithm, CoseSign1, CoseSign1Builder, HeaderBuilder, RegisteredLabelWithPrivate,
    TaggedCborSerializable as _,
};
use tessera_pki::UnixTime;

use super::claims::{EarClaims, read_cbor};
use super::keys::{Alg, SigningKey, VerifyingKey};
use super::{MAX_TOKEN_LEN, TokenError, check_time, shown_alg};

/// Sign `claims` as a CWT with `key`: a COSE_Sign1 tagged 18, protected header `alg` and `kid`
/// (the 32-byte SHA-256 RFC 7638 thumbprint of the public key), no external AAD, the claims-set
/// with the draft's integer keys as payload.
///
/// # Errors
/// [`TokenError::Claims`] when the claims break a draft rule (see [`super::issue_jwt`]);
/// [`TokenError::Signing`] if the crypto library or the CBOR encoder fails.
pub fn issue_cwt(claims: &EarClaims, key: &SigningKey) -> Result<Vec<u8>, TokenError> {
    claims.validate()?;
    let encoding = || TokenError::Signing {
        what: "CBOR-encoding the token",
    };
    let mut payload = Vec::new();
    ciborium::ser::into_writer(&claims.to_cbor()?, &mut payload).map_err(|_| encoding())?;
    let protected = HeaderBuilder::new()
        .algorithm(key.alg().cose())
        .key_id(key.verifying_key().thumbprint_bytes().to_vec())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .try_create_signature(&[], |tbs| key.sign(tbs))?
        .build()
        .to_tagged_vec()
        .map_err(|_| encoding())
}

fn shown_cose_alg(alg: &Algorithm) -> String {
    match alg {
        RegisteredLabelWithPrivate::Assigned(a) => shown_alg(&format!("{a:?} ({})", *a as i64)),
        RegisteredLabelWithPrivate::PrivateUse(i) => i.to_string(),
        RegisteredLabelWithPrivate::Text(t) => shown_alg(t),
    }
}

/// Check the headers: the protected `alg` is `key`'s algorithm; no `alg` outside the protected
/// header; no `crit` anywhere.
fn check_headers(sign1: &CoseSign1, alg: Alg) -> Result<(), TokenError> {
    let protected = &sign1.protected.header;
    if sign1.unprotected.alg.is_some() {
        return Err(TokenError::Header {
            what: "alg in the unprotected header",
        });
    }
    if !protected.crit.is_empty() || !sign1.unprotected.crit.is_empty() {
        return Err(TokenError::Header {
            what: "crit names parameters this verifier does not understand",
        });
    }
    match &protected.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) if *a == alg.cose() => Ok(()),
        Some(other) => Err(TokenError::Algorithm {
            expected: alg.name(),
            found: shown_cose_alg(other),
        }),
        None => Err(TokenError::Header {
            what: "no alg in the protected header",
        }),
    }
}

/// Verify a CWT EAR against `key` at time `at` and return its claims.
///
/// In order: size (at most [`MAX_TOKEN_LEN`]); one COSE_Sign1 with tag 18 and nothing after it
/// (untagged objects and the CWT tag 61 are refused); headers (see [`verify_jwt`]'s rules: the
/// protected `alg` must be the key's, no `crit`, `kid` ignored); an attached payload; the
/// signature (`r || s`, no external AAD); the claims-set, one CBOR map filling the payload, with
/// the draft's integer keys and types; then time, as for [`verify_jwt`].
///
/// [`verify_jwt`]: super::verify_jwt
///
/// # Errors
/// The [`TokenError`] variant naming the first check that failed.
pub fn verify_cwt(bytes: &[u8], key: &VerifyingKey, at: UnixTime) -> Result<EarClaims, TokenError> {
    if bytes.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge {
            what: "token",
            len: bytes.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    let sign1 = CoseSign1::from_tagged_slice(bytes).map_err(|_| TokenError::Format {
        what: "not a COSE_Sign1 with CBOR tag 18",
    })?;
    check_headers(&sign1, key.alg())?;
    let Some(payload) = &sign1.payload else {
        return Err(TokenError::Format {
            what: "the COSE_Sign1 payload is detached",
        });
    };
    sign1.verify_signature(&[], |signature, tbs| key.verify(tbs, signature))?;
    let parsed = EarClaims::from_cbor(&read_cbor(payload)?)?;
    check_time(&parsed, at)?;
    Ok(parsed.claims)
}

#[cfg(test)]
mod tests {
    use coset::{CborSerializable as _, Header, ProtectedHeader, iana};

    use super::*;

    fn sign1(protected: Header, unprotected: Header) -> CoseSign1 {
        CoseSign1 {
            protected: ProtectedHeader {
                original_data: None,
                header: protected,
            },
            unprotected,
            payload: Some(vec![0xa0]),
            signature: vec![],
        }
    }

    #[test]
    fn header_rules() {
        let es256 = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES256)
            .build();
        check_headers(&sign1(es256.clone(), Header::default()), Alg::Es256).unwrap();
        assert!(matches!(
            check_headers(&sign1(es256.clone(), Header::default()), Alg::Es384),
            Err(TokenError::Algorithm { .. })
        ));
        let eddsa = HeaderBuilder::new()
            .algorithm(iana::Algorithm::EdDSA)
            .build();
        assert!(matches!(
            check_headers(&sign1(eddsa, Header::default()), Alg::Es256),
            Err(TokenError::Algorithm { .. })
        ));
        assert!(matches!(
            check_headers(&sign1(Header::default(), es256.clone()), Alg::Es256),
            Err(TokenError::Header { .. })
        ));
        let crit = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES256)
            .add_critical(iana::HeaderParameter::ContentType)
            .build();
        assert!(matches!(
            check_headers(&sign1(crit, Header::default()), Alg::Es256),
            Err(TokenError::Header { .. })
        ));
        assert!(matches!(
            check_headers(&sign1(Header::default(), Header::default()), Alg::Es256),
            Err(TokenError::Header { .. })
        ));
    }

    #[test]
    fn untagged_and_trailing_bytes_are_refused() {
        let es256 = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES256)
            .build();
        let s = sign1(es256, Header::default());
        let untagged = s.clone().to_vec().unwrap();
        let key = super::super::SigningKey::generate(Alg::Es256).unwrap();
        let at = UnixTime::from_secs(0);
        assert!(matches!(
            verify_cwt(&untagged, key.verifying_key(), at),
            Err(TokenError::Format { .. })
        ));
        let mut tagged = s.to_tagged_vec().unwrap();
        tagged.push(0);
        assert!(matches!(
            verify_cwt(&tagged, key.verifying_key(), at),
            Err(TokenError::Format { .. })
        ));
    }
}
