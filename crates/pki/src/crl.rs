//! Certificate revocation lists: parsed owned views, signature by the issuer, freshness window.

use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::cert::{Certificate, SignatureScheme};
use crate::{
    Budget, MAX_INPUT_LEN, MAX_OBJECT_LEN, MAX_OBJECTS_PER_INPUT, PkiError, UnixTime, chain, pem,
};

/// A parsed CRL (owned). Parsing checks structure only; [`Crl::verify_signed_by`] checks trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crl {
    der: Box<[u8]>,
    tbs: Box<[u8]>,
    issuer: Box<[u8]>,
    issuer_text: String,
    this_update: UnixTime,
    next_update: Option<UnixTime>,
    revoked: Vec<Box<[u8]>>,
    scheme: SignatureScheme,
    signature: Box<[u8]>,
}

impl Crl {
    /// Parse one DER CRL; trailing bytes are an error.
    ///
    /// # Errors
    /// [`PkiError::Der`], [`PkiError::TooLarge`], or an unsupported signature algorithm.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        if der.len() > MAX_OBJECT_LEN {
            return Err(PkiError::TooLarge {
                what: "CRL",
                limit: MAX_OBJECT_LEN,
                actual: der.len(),
            });
        }
        let (rest, crl) = CertificateRevocationList::from_der(der).map_err(|e| PkiError::Der {
            what: "CRL",
            detail: e.to_string(),
        })?;
        if !rest.is_empty() {
            return Err(PkiError::Der {
                what: "CRL",
                detail: format!("{} trailing bytes", rest.len()),
            });
        }
        let tbs = &crl.tbs_cert_list;
        let issuer_text = tbs.issuer.to_string();
        if crl.signature_algorithm != tbs.signature {
            return Err(PkiError::UnsupportedSignatureAlgorithm {
                subject: issuer_text,
                oid: String::from("outer and TBS signature algorithms differ"),
            });
        }
        let scheme = SignatureScheme::from_algorithm(&crl.signature_algorithm, &issuer_text)?;
        let revoked = crl
            .iter_revoked_certificates()
            .map(|r| crate::normalize_serial(r.raw_serial()).into())
            .collect();
        Ok(Self {
            der: der.into(),
            tbs: tbs.as_ref().into(),
            issuer: tbs.issuer.as_raw().into(),
            issuer_text,
            this_update: UnixTime::from_secs(crl.last_update().timestamp()),
            next_update: crl
                .next_update()
                .map(|t| UnixTime::from_secs(t.timestamp())),
            revoked,
            scheme,
            signature: crl.signature_value.data.as_ref().into(),
        })
    }

    /// The whole CRL, DER.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The issuer name, raw DER.
    #[must_use]
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer
    }
    /// The issuer name as text.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer_text
    }
    /// thisUpdate.
    #[must_use]
    pub fn this_update(&self) -> UnixTime {
        self.this_update
    }
    /// nextUpdate, when present.
    #[must_use]
    pub fn next_update(&self) -> Option<UnixTime> {
        self.next_update
    }
    /// Revoked serial numbers (normalised big-endian bytes).
    #[must_use]
    pub fn revoked_serials(&self) -> &[Box<[u8]>] {
        &self.revoked
    }

    /// Whether a certificate with this serial (raw DER INTEGER content) is listed.
    #[must_use]
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        let s = crate::normalize_serial(serial);
        self.revoked.iter().any(|r| r.as_ref() == s)
    }

    /// Check that `issuer` issued this CRL: names equal and the signature verifies under its key.
    ///
    /// # Errors
    /// [`PkiError::CrlBadSignature`] (or the algorithm/budget errors).
    pub fn verify_signed_by(
        &self,
        issuer: &Certificate,
        budget: &mut Budget,
    ) -> Result<(), PkiError> {
        if self.issuer.as_ref() != issuer.subject_der() {
            return Err(PkiError::CrlBadSignature {
                issuer: self.issuer_text.clone(),
            });
        }
        chain::verify_signature(
            &self.tbs,
            self.scheme,
            &self.signature,
            &self.issuer_text,
            issuer,
            budget,
        )
        .map_err(|e| match e {
            PkiError::BadSignature { .. } | PkiError::AlgorithmKeyMismatch { .. } => {
                PkiError::CrlBadSignature {
                    issuer: self.issuer_text.clone(),
                }
            }
            other => other,
        })
    }

    /// Check thisUpdate ≤ `at` ≤ nextUpdate. A CRL without nextUpdate is rejected.
    ///
    /// # Errors
    /// [`PkiError::CrlNotCurrent`] or [`PkiError::CrlNoNextUpdate`].
    pub fn check_current(&self, at: UnixTime) -> Result<(), PkiError> {
        let Some(next) = self.next_update else {
            return Err(PkiError::CrlNoNextUpdate {
                issuer: self.issuer_text.clone(),
            });
        };
        if at < self.this_update || at > next {
            return Err(PkiError::CrlNotCurrent {
                issuer: self.issuer_text.clone(),
                this_update: self.this_update,
                next_update: next,
                at,
            });
        }
        Ok(())
    }
}

/// Load CRLs from PEM (`X509 CRL` blocks) or DER (one or several concatenated).
///
/// # Errors
/// Any parse error; [`PkiError::TooLarge`] past the input bounds.
pub fn load_crls(bytes: &[u8]) -> Result<Vec<Crl>, PkiError> {
    if bytes.len() > MAX_INPUT_LEN {
        return Err(PkiError::TooLarge {
            what: "CRL input",
            limit: MAX_INPUT_LEN,
            actual: bytes.len(),
        });
    }
    if pem::is_pem(bytes) {
        return pem::decode_all(bytes, "X509 CRL", "CRL")?
            .iter()
            .map(|d| Crl::from_der(d))
            .collect();
    }
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if out.len() >= MAX_OBJECTS_PER_INPUT {
            return Err(PkiError::TooLarge {
                what: "CRLs in one input",
                limit: MAX_OBJECTS_PER_INPUT,
                actual: out.len() + 1,
            });
        }
        let (next, _) = CertificateRevocationList::from_der(rest).map_err(|e| PkiError::Der {
            what: "CRL",
            detail: e.to_string(),
        })?;
        let used = rest.len().saturating_sub(next.len());
        out.push(Crl::from_der(rest.get(..used).unwrap_or_default())?);
        rest = next;
    }
    if out.is_empty() {
        return Err(PkiError::Der {
            what: "CRL",
            detail: String::from("empty input"),
        });
    }
    Ok(out)
}
