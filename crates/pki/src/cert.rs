//! X.509 certificates: parsed once into an owned view holding exactly what verification needs.

use core::fmt;

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::signature_algorithm::SignatureAlgorithm;
use x509_parser::x509::AlgorithmIdentifier;

use crate::{MAX_INPUT_LEN, MAX_OBJECT_LEN, MAX_OBJECTS_PER_INPUT, PkiError, UnixTime, pem};

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const OID_SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
const OID_MGF1: &str = "1.2.840.113549.1.1.8";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";

/// The signature algorithms accepted on certificates and CRLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48 (AMD ARK/ASK/VCEK), trailerField explicit or not.
    RsaPssSha384,
    /// RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32.
    RsaPssSha256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    RsaPkcs1Sha384,
    /// ECDSA with SHA-256 (Intel PCK chain, collateral).
    EcdsaSha256,
    /// ECDSA with SHA-384.
    EcdsaSha384,
}

impl SignatureScheme {
    /// Read the scheme from an AlgorithmIdentifier, checking RSASSA-PSS parameters.
    pub(crate) fn from_algorithm(
        alg: &AlgorithmIdentifier<'_>,
        subject: &str,
    ) -> Result<Self, PkiError> {
        let oid = alg.algorithm.to_id_string();
        let unsupported = || PkiError::UnsupportedSignatureAlgorithm {
            subject: subject.to_owned(),
            oid: oid.clone(),
        };
        match oid.as_str() {
            OID_SHA256_WITH_RSA => Ok(Self::RsaPkcs1Sha256),
            OID_SHA384_WITH_RSA => Ok(Self::RsaPkcs1Sha384),
            OID_ECDSA_SHA256 => Ok(Self::EcdsaSha256),
            OID_ECDSA_SHA384 => Ok(Self::EcdsaSha384),
            OID_RSASSA_PSS => {
                let pss = |detail: String| PkiError::PssParameters {
                    subject: subject.to_owned(),
                    detail,
                };
                let Ok(SignatureAlgorithm::RSASSA_PSS(params)) = SignatureAlgorithm::try_from(alg)
                else {
                    return Err(pss(String::from("parameters missing or malformed")));
                };
                let hash = params.hash_algorithm_oid().to_id_string();
                let (scheme, hash_len) = match hash.as_str() {
                    OID_SHA384 => (Self::RsaPssSha384, 48),
                    OID_SHA256 => (Self::RsaPssSha256, 32),
                    _ => return Err(pss(format!("hash {hash}"))),
                };
                let mgf = params
                    .mask_gen_algorithm()
                    .map_err(|_| pss(String::from("maskGenAlgorithm malformed")))?;
                if mgf.mgf.to_id_string() != OID_MGF1 || mgf.hash.to_id_string() != hash {
                    return Err(pss(format!(
                        "maskGenAlgorithm {} with {}",
                        mgf.mgf, mgf.hash
                    )));
                }
                if params.salt_length() != hash_len {
                    return Err(pss(format!("saltLength {}", params.salt_length())));
                }
                if params.trailer_field() != 1 {
                    return Err(pss(format!("trailerField {}", params.trailer_field())));
                }
                Ok(scheme)
            }
            _ => Err(unsupported()),
        }
    }
}

/// The kind of a subject public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublicKeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
}

/// A subject public key: its kind and the key bytes the backend takes (the RSAPublicKey DER for
/// RSA, the uncompressed point for EC).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    kind: PublicKeyKind,
    raw: Box<[u8]>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({:?}, {} bytes)", self.kind, self.raw.len())
    }
}

impl PublicKey {
    /// A public key from its kind and raw bytes (RSAPublicKey DER, or uncompressed EC point).
    #[must_use]
    pub fn from_raw(kind: PublicKeyKind, raw: &[u8]) -> Self {
        Self {
            kind,
            raw: raw.into(),
        }
    }

    /// The kind of key.
    #[must_use]
    pub fn kind(&self) -> PublicKeyKind {
        self.kind
    }

    /// The key bytes: RSAPublicKey DER for RSA, `04 || x || y` for EC.
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    fn from_spki(
        spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
        subject: &str,
    ) -> Result<Self, PkiError> {
        let unsupported = |detail: String| PkiError::UnsupportedKey {
            subject: subject.to_owned(),
            detail,
        };
        let key_bytes: &[u8] = &spki.subject_public_key.data;
        let oid = spki.algorithm.algorithm.to_id_string();
        let kind = match oid.as_str() {
            OID_RSA_ENCRYPTION | OID_RSASSA_PSS => {
                let bits = match spki.parsed() {
                    Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa.key_size(),
                    _ => return Err(unsupported(String::from("malformed RSA key"))),
                };
                if !(2048..=8192).contains(&bits) {
                    return Err(unsupported(format!("RSA modulus of {bits} bits")));
                }
                PublicKeyKind::Rsa { bits }
            }
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                let (kind, len) = match curve.as_str() {
                    OID_P256 => (PublicKeyKind::EcP256, 65),
                    OID_P384 => (PublicKeyKind::EcP384, 97),
                    other => return Err(unsupported(format!("EC curve {other:?}"))),
                };
                if key_bytes.len() != len || key_bytes.first() != Some(&4) {
                    return Err(unsupported(String::from("EC point not uncompressed")));
                }
                kind
            }
            other => return Err(unsupported(format!("algorithm {other}"))),
        };
        Ok(Self {
            kind,
            raw: key_bytes.into(),
        })
    }
}

/// An X.509 extension, kept raw for the TEE crates to interpret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// The extension OID, dotted.
    pub oid: String,
    /// Whether it is marked critical.
    pub critical: bool,
    /// The extnValue contents (inside the OCTET STRING).
    pub value: Box<[u8]>,
}

/// A parsed X.509 certificate (owned). Parsing checks structure and algorithms, not trust.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Box<[u8]>,
    tbs: Box<[u8]>,
    serial: Box<[u8]>,
    issuer: Box<[u8]>,
    subject: Box<[u8]>,
    subject_text: String,
    issuer_text: String,
    not_before: UnixTime,
    not_after: UnixTime,
    scheme: SignatureScheme,
    signature: Box<[u8]>,
    public_key: PublicKey,
    extensions: Vec<Extension>,
    ca: Option<bool>,
    key_cert_sign: Option<bool>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_text)
            .field("issuer", &self.issuer_text)
            .field("serial", &hex_string(&self.serial))
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key", &self.public_key)
            .finish_non_exhaustive()
    }
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        String::from("00")
    } else {
        crate::to_hex(bytes)
    }
}

impl Certificate {
    /// Parse one DER certificate; trailing bytes are an error.
    ///
    /// # Errors
    /// [`PkiError::Der`] for malformed DER, [`PkiError::TooLarge`] past [`MAX_OBJECT_LEN`], and
    /// the algorithm/key errors for signature algorithms or keys that are not supported.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (rest, cert) = Self::from_der_prefix(der)?;
        if !rest.is_empty() {
            return Err(PkiError::Der {
                what: "certificate",
                detail: format!("{} trailing bytes", rest.len()),
            });
        }
        Ok(cert)
    }

    fn from_der_prefix(der: &[u8]) -> Result<(&[u8], Self), PkiError> {
        let (rest, x) = X509Certificate::from_der(der).map_err(|e| PkiError::Der {
            what: "certificate",
            detail: e.to_string(),
        })?;
        let used = der.len().saturating_sub(rest.len());
        if used > MAX_OBJECT_LEN {
            return Err(PkiError::TooLarge {
                what: "certificate",
                limit: MAX_OBJECT_LEN,
                actual: used,
            });
        }
        let tbs = &x.tbs_certificate;
        let subject_text = tbs.subject.to_string();
        if x.signature_algorithm != tbs.signature
            || !algorithm_fields_identical(der.get(..used).unwrap_or_default())
        {
            return Err(PkiError::UnsupportedSignatureAlgorithm {
                subject: subject_text,
                oid: String::from("outer and TBS signature algorithms differ"),
            });
        }
        let scheme = SignatureScheme::from_algorithm(&x.signature_algorithm, &subject_text)?;
        let public_key = PublicKey::from_spki(&tbs.subject_pki, &subject_text)?;
        let ca = match tbs.basic_constraints() {
            Ok(bc) => bc.map(|b| b.value.ca),
            Err(e) => {
                return Err(PkiError::Der {
                    what: "basicConstraints",
                    detail: e.to_string(),
                });
            }
        };
        let key_cert_sign = match tbs.key_usage() {
            Ok(ku) => ku.map(|k| k.value.key_cert_sign()),
            Err(e) => {
                return Err(PkiError::Der {
                    what: "keyUsage",
                    detail: e.to_string(),
                });
            }
        };
        let extensions = tbs
            .extensions()
            .iter()
            .map(|e| Extension {
                oid: e.oid.to_id_string(),
                critical: e.critical,
                value: e.value.into(),
            })
            .collect();
        let cert = Self {
            der: der.get(..used).unwrap_or_default().into(),
            tbs: tbs.as_ref().into(),
            serial: tbs.raw_serial().into(),
            issuer: tbs.issuer.as_raw().into(),
            subject: tbs.subject.as_raw().into(),
            issuer_text: tbs.issuer.to_string(),
            subject_text,
            not_before: UnixTime::from_secs(tbs.validity.not_before.timestamp()),
            not_after: UnixTime::from_secs(tbs.validity.not_after.timestamp()),
            scheme,
            signature: x.signature_value.data.as_ref().into(),
            public_key,
            extensions,
            ca,
            key_cert_sign,
        };
        Ok((rest, cert))
    }

    /// The whole certificate, DER.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The signed part (TBSCertificate), DER.
    #[must_use]
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }
    /// The serial number's content bytes, as encoded (big-endian, may be `00`).
    #[must_use]
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }
    /// The serial number in hex (normalised: no leading zeros; `00` for zero).
    #[must_use]
    pub fn serial_hex(&self) -> String {
        hex_string(crate::normalize_serial(&self.serial))
    }
    /// The issuer name, raw DER.
    #[must_use]
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer
    }
    /// The subject name, raw DER.
    #[must_use]
    pub fn subject_der(&self) -> &[u8] {
        &self.subject
    }
    /// The subject name as text (RFC 4514 style), for messages.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject_text
    }
    /// The issuer name as text, for messages.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer_text
    }
    /// notBefore.
    #[must_use]
    pub fn not_before(&self) -> UnixTime {
        self.not_before
    }
    /// notAfter.
    #[must_use]
    pub fn not_after(&self) -> UnixTime {
        self.not_after
    }
    /// The algorithm this certificate was signed with.
    #[must_use]
    pub fn signature_scheme(&self) -> SignatureScheme {
        self.scheme
    }
    /// The signature value.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
    /// The subject public key.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    /// All extensions, raw.
    #[must_use]
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }
    /// The extension with the given dotted OID.
    #[must_use]
    pub fn extension(&self, oid: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.oid == oid)
    }
    /// basicConstraints cA, when the extension is present.
    #[must_use]
    pub fn basic_constraints_ca(&self) -> Option<bool> {
        self.ca
    }
    /// keyUsage keyCertSign, when the extension is present.
    #[must_use]
    pub fn key_cert_sign(&self) -> Option<bool> {
        self.key_cert_sign
    }
    /// Whether subject and issuer names are equal (a self-issued certificate).
    #[must_use]
    pub fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    /// Check notBefore ≤ `at` ≤ notAfter.
    ///
    /// # Errors
    /// [`PkiError::NotYetValid`] or [`PkiError::Expired`].
    pub fn check_validity(&self, at: UnixTime) -> Result<(), PkiError> {
        if at < self.not_before {
            return Err(PkiError::NotYetValid {
                subject: self.subject_text.clone(),
                not_before: self.not_before,
                at,
            });
        }
        if at > self.not_after {
            return Err(PkiError::Expired {
                subject: self.subject_text.clone(),
                not_after: self.not_after,
                at,
            });
        }
        Ok(())
    }
}

/// RFC 5280 4.1.1.2: the outer `signatureAlgorithm` must be byte-identical to the TBS
/// `signature` field. (Parsers that compare only the decoded OID let the unsigned outer copy
/// be rewritten, so two encodings of one certificate would both verify.)
fn algorithm_fields_identical(cert_der: &[u8]) -> bool {
    use crate::der::take_tlv;
    // The whole TLV of the first element of `input`.
    fn first_tlv(input: &[u8]) -> Option<(&[u8], u8, &[u8])> {
        let (tag, _, rest) = take_tlv(input)?;
        let whole = input.get(..input.len().checked_sub(rest.len())?)?;
        Some((whole, tag, rest))
    }
    let check = || -> Option<bool> {
        let (_, cert, _) = take_tlv(cert_der)?;
        let (_, tbs, after_tbs) = take_tlv(cert)?;
        let (outer_alg, _, _) = first_tlv(after_tbs)?;
        // TBSCertificate: [0] version (optional), serialNumber, signature, ...
        let (_, tag, mut rest) = first_tlv(tbs)?;
        if tag == 0xA0 {
            rest = take_tlv(rest)?.2; // skip the serial number after the version
        }
        let (inner_alg, _, _) = first_tlv(rest)?;
        Some(inner_alg == outer_alg)
    };
    check().unwrap_or(false)
}

/// Load certificates from PEM (one or many `CERTIFICATE` blocks) or DER (one or several
/// concatenated certificates).
///
/// # Errors
/// Any parse error of any certificate; [`PkiError::TooLarge`] past the input bounds.
pub fn load_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, PkiError> {
    load_certificates_reusing(bytes, &[])
}

/// [`load_certificates`], except that a certificate whose DER is byte-identical to one of
/// `known` is that (already parsed) certificate instead of a new parse of the same bytes.
///
/// Chains in attestation collateral repeat the same CA and root certificates; a caller that
/// holds them parsed (a trust anchor, another chain of the same collateral) skips their parse.
/// The result is the same as [`load_certificates`]: parsing is deterministic, so equal bytes give
/// an equal certificate.
///
/// # Errors
/// As [`load_certificates`].
pub fn load_certificates_reusing(
    bytes: &[u8],
    known: &[&Certificate],
) -> Result<Vec<Certificate>, PkiError> {
    let reuse = |der: &[u8]| known.iter().find(|k| k.der() == der).map(|k| (*k).clone());
    if bytes.len() > MAX_INPUT_LEN {
        return Err(PkiError::TooLarge {
            what: "certificate input",
            limit: MAX_INPUT_LEN,
            actual: bytes.len(),
        });
    }
    if pem::is_pem(bytes) {
        return pem::decode_all(bytes, "CERTIFICATE", "certificate")?
            .iter()
            .map(|der| reuse(der).map_or_else(|| Certificate::from_der(der), Ok))
            .collect();
    }
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if out.len() >= MAX_OBJECTS_PER_INPUT {
            return Err(PkiError::TooLarge {
                what: "certificates in one input",
                limit: MAX_OBJECTS_PER_INPUT,
                actual: out.len() + 1,
            });
        }
        // The first TLV's extent, to look it up among the known certificates.
        let known_cert = crate::der::take_tlv(rest).and_then(|(_, _, next)| {
            let der = rest.get(..rest.len().checked_sub(next.len())?)?;
            Some((next, reuse(der)?))
        });
        let (next, cert) = match known_cert {
            Some(found) => found,
            None => Certificate::from_der_prefix(rest)?,
        };
        out.push(cert);
        rest = next;
    }
    if out.is_empty() {
        return Err(PkiError::Der {
            what: "certificate",
            detail: String::from("empty input"),
        });
    }
    Ok(out)
}
