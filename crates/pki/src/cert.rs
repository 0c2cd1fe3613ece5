//! X.509 certificates: parsed once into an owned view holding exactly what verification needs.
//!
//! A certificate is read by a strict DER walker (RFC 5280 4.1), like CRLs: tags, lengths,
//! names, dates, the key and every extension's structure are checked, basicConstraints and
//! keyUsage read, and nothing may be left over at any level. x509-parser is kept for what is
//! rare or only for people: RSASSA-PSS parameters and names as text (made when first asked for).

use core::fmt;

use std::sync::{Arc, OnceLock};

use x509_parser::prelude::FromDer;
use x509_parser::signature_algorithm::SignatureAlgorithm;
use x509_parser::x509::{AlgorithmIdentifier, X509Name};

use crate::backend::IssuerKey;
use crate::der::{
    self, ExtensionsError, MAX_EXTENSIONS, RawExtension, Reader, SignedPart, TAG_BIT_STRING,
    TAG_BOOLEAN, TAG_GENERALIZED_TIME, TAG_INTEGER, TAG_OID, TAG_SEQUENCE, TAG_UTC_TIME,
    check_name, whole_bytes, x509_time,
};
use crate::{MAX_INPUT_LEN, MAX_OBJECT_LEN, MAX_OBJECTS_PER_INPUT, PkiError, UnixTime, pem};

/// `version [0] EXPLICIT`.
const TAG_VERSION: u8 = 0xA0;
/// `issuerUniqueID [1] IMPLICIT BIT STRING`.
const TAG_ISSUER_UID: u8 = 0x81;
/// `subjectUniqueID [2] IMPLICIT BIT STRING`.
const TAG_SUBJECT_UID: u8 = 0x82;
/// `extensions [3] EXPLICIT`.
const TAG_EXTENSIONS: u8 = 0xA3;

// OBJECT IDENTIFIER contents the walker compares against (checked against the dotted
// constants in the tests).
/// rsaEncryption, 1.2.840.113549.1.1.1.
const DER_RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
/// id-RSASSA-PSS, 1.2.840.113549.1.1.10.
const DER_RSASSA_PSS: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A];
/// id-ecPublicKey, 1.2.840.10045.2.1.
const DER_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// secp256r1, 1.2.840.10045.3.1.7.
const DER_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// secp384r1, 1.3.132.0.34.
const DER_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
/// id-ce-basicConstraints, 2.5.29.19.
const DER_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];
/// id-ce-keyUsage, 2.5.29.15.
const DER_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x0F];
/// The whole AlgorithmIdentifier of ecdsa-with-SHA256 (1.2.840.10045.4.3.2, no parameters).
const DER_ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02,
];
/// The whole AlgorithmIdentifier of ecdsa-with-SHA384 (1.2.840.10045.4.3.3, no parameters).
const DER_ALG_ECDSA_SHA384: &[u8] = &[
    0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03,
];

/// A `Time` (UTCTime or GeneralizedTime) taken from `r`.
fn take_time(r: &mut Reader<'_>) -> Option<UnixTime> {
    let tag = r
        .peek_tag()
        .filter(|t| matches!(*t, TAG_UTC_TIME | TAG_GENERALIZED_TIME))?;
    let secs = x509_time(tag, r.take(tag)?)?;
    Some(UnixTime::from_secs(secs))
}

#[cfg(test)]
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const OID_SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
const OID_MGF1: &str = "1.2.840.113549.1.1.8";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
#[cfg(test)]
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
#[cfg(test)]
const OID_P256: &str = "1.2.840.10045.3.1.7";
#[cfg(test)]
const OID_P384: &str = "1.3.132.0.34";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_KEY_USAGE: &str = "2.5.29.15";
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
    /// Read the scheme from a whole AlgorithmIdentifier (DER). The two ECDSA encodings Intel
    /// and AMD use are recognised by their bytes; anything else goes through
    /// [`SignatureScheme::from_algorithm`]. `subject` names the object in errors.
    pub(crate) fn from_der(alg: &[u8], subject: impl Fn() -> String) -> Result<Self, PkiError> {
        if alg == DER_ALG_ECDSA_SHA256 {
            return Ok(Self::EcdsaSha256);
        }
        if alg == DER_ALG_ECDSA_SHA384 {
            return Ok(Self::EcdsaSha384);
        }
        match AlgorithmIdentifier::from_der(alg) {
            Ok(([], parsed)) => Self::from_algorithm(&parsed, &subject()),
            _ => Err(PkiError::Der {
                what: "AlgorithmIdentifier",
                detail: String::from("malformed"),
            }),
        }
    }

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

    /// The key of a `SubjectPublicKeyInfo` (contents of the SEQUENCE given): RSA
    /// (`rsaEncryption`, 2048 to 8192 bits) or ECDSA P-256/P-384 (uncompressed point).
    fn from_spki(spki: &[u8], subject: impl Fn() -> String) -> Result<Self, PkiError> {
        let unsupported = |detail: String| PkiError::UnsupportedKey {
            subject: subject(),
            detail,
        };
        let malformed = || PkiError::Der {
            what: "certificate",
            detail: String::from("subjectPublicKeyInfo: malformed or missing"),
        };
        let mut r = Reader::new(spki);
        let mut alg = Reader::new(r.take(TAG_SEQUENCE).ok_or_else(malformed)?);
        let key_bytes = r
            .take(TAG_BIT_STRING)
            .and_then(whole_bytes)
            .ok_or_else(malformed)?;
        r.finish().ok_or_else(malformed)?;
        let oid = alg.take(TAG_OID).ok_or_else(malformed)?;
        let parameters = match alg.peek_tag() {
            Some(tag) => Some((tag, alg.take(tag).ok_or_else(malformed)?)),
            None => None,
        };
        alg.finish().ok_or_else(malformed)?;
        let kind = if oid == DER_RSA_ENCRYPTION {
            // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
            let rsa_key = (|| {
                let mut outer = Reader::new(key_bytes);
                let mut key = Reader::new(outer.take(TAG_SEQUENCE)?);
                outer.finish()?;
                let modulus = key.take(TAG_INTEGER)?;
                key.take(TAG_INTEGER).filter(|e| !e.is_empty())?;
                key.finish()?;
                Some(modulus)
            })();
            let Some(modulus) = rsa_key else {
                return Err(unsupported(String::from("malformed RSA key")));
            };
            // The size as the DER INTEGER gives it: a positive modulus with its top bit set
            // has one leading zero byte. (Any other encoding counts as 0 bits and is refused.)
            let bits = match modulus.split_first() {
                Some((0, rest)) if rest.first().is_some_and(|b| b & 0x80 != 0) => 8 * rest.len(),
                _ => 0,
            };
            if !(2048..=8192).contains(&bits) {
                return Err(unsupported(format!("RSA modulus of {bits} bits")));
            }
            PublicKeyKind::Rsa { bits }
        } else if oid == DER_RSASSA_PSS {
            // Keys restricted to RSASSA-PSS are not read (the parser used before did not either).
            return Err(unsupported(String::from("malformed RSA key")));
        } else if oid == DER_EC_PUBLIC_KEY {
            let (kind, len) = match parameters {
                Some((TAG_OID, curve)) if curve == DER_P256 => (PublicKeyKind::EcP256, 65),
                Some((TAG_OID, curve)) if curve == DER_P384 => (PublicKeyKind::EcP384, 97),
                Some((TAG_OID, curve)) => {
                    let name = der::oid_text(curve).unwrap_or_default();
                    return Err(unsupported(format!("EC curve {name:?}")));
                }
                _ => return Err(unsupported(format!("EC curve {:?}", ""))),
            };
            if key_bytes.len() != len || key_bytes.first() != Some(&4) {
                return Err(unsupported(String::from("EC point not uncompressed")));
            }
            kind
        } else {
            let name = der::oid_text(oid).ok_or_else(malformed)?;
            return Err(unsupported(format!("algorithm {name}")));
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
///
/// Two certificates are equal when their DER is: everything else is read from it. Clones share
/// the parsed view (a reference count), so chains can hold the same certificate cheaply.
#[derive(Clone)]
pub struct Certificate {
    inner: Arc<CertificateInner>,
}

/// What a [`Certificate`] holds.
struct CertificateInner {
    der: Box<[u8]>,
    tbs: Box<[u8]>,
    serial: Box<[u8]>,
    issuer: Box<[u8]>,
    subject: Box<[u8]>,
    /// The names as text, made when first asked for (messages, chain summaries).
    subject_text: OnceLock<String>,
    issuer_text: OnceLock<String>,
    not_before: UnixTime,
    not_after: UnixTime,
    scheme: SignatureScheme,
    signature: Box<[u8]>,
    public_key: PublicKey,
    extensions: Vec<Extension>,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    /// The public key, parsed once when this certificate is first used as an issuer.
    issuer_key: IssuerKey,
    /// SHA-256 of `der`, computed when first asked for.
    fingerprint: OnceLock<[u8; 32]>,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.der == other.inner.der
    }
}

impl Eq for Certificate {}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("serial", &hex_string(&self.inner.serial))
            .field("not_before", &self.inner.not_before)
            .field("not_after", &self.inner.not_after)
            .field("key", &self.inner.public_key)
            .finish_non_exhaustive()
    }
}

/// A Name (whole DER) as RFC 4514-style text, for messages.
pub(crate) fn name_text(name: &[u8]) -> String {
    match X509Name::from_der(name) {
        Ok((_, name)) => name.to_string(),
        Err(_) => String::from("<malformed name>"),
    }
}

/// A malformed certificate: `field` is the RFC 5280 name of the element at fault.
fn malformed(field: &str) -> PkiError {
    PkiError::Der {
        what: "certificate",
        detail: format!("{field}: malformed or missing"),
    }
}

/// What a certificate's extensions say that verification uses.
struct ReadExtensions {
    list: Vec<Extension>,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
}

/// `BasicConstraints`: cA and pathLenConstraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BasicConstraints {
    ca: bool,
    path_len: Option<u32>,
}

/// `KeyUsage`: bits 0 (digitalSignature) to 8 (decipherOnly), bit 0 the most significant of
/// the first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KeyUsage(u16);

impl KeyUsage {
    const DIGITAL_SIGNATURE: u16 = 1 << 15;
    const KEY_CERT_SIGN: u16 = 1 << (15 - 5);
    const CRL_SIGN: u16 = 1 << (15 - 6);

    fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// `extensions [3] EXPLICIT SEQUENCE SIZE (1..MAX) OF Extension` (the SEQUENCE's contents):
/// each kept raw, with basicConstraints and keyUsage read. No extension may appear twice
/// (RFC 5280 4.2).
fn read_extensions(contents: &[u8]) -> Result<ReadExtensions, PkiError> {
    let list = der::extensions(contents).map_err(|e| match e {
        ExtensionsError::Malformed(i) => malformed(&format!("extensions[{i}]")),
        ExtensionsError::TooMany => PkiError::TooLarge {
            what: "certificate extensions",
            limit: MAX_EXTENSIONS,
            actual: MAX_EXTENSIONS + 1,
        },
        ExtensionsError::Duplicate(dotted) => PkiError::Der {
            what: "certificate",
            detail: format!("extension {dotted} present more than once"),
        },
    })?;
    let mut out = ReadExtensions {
        list: Vec::with_capacity(list.len()),
        basic_constraints: None,
        key_usage: None,
    };
    for RawExtension {
        oid,
        dotted,
        critical,
        value,
    } in list
    {
        if oid == DER_BASIC_CONSTRAINTS {
            out.basic_constraints =
                Some(basic_constraints(value).ok_or_else(|| PkiError::Der {
                    what: "basicConstraints",
                    detail: String::from("malformed"),
                })?);
        } else if oid == DER_KEY_USAGE {
            out.key_usage = Some(key_usage(value).ok_or_else(|| PkiError::Der {
                what: "keyUsage",
                detail: String::from("malformed"),
            })?);
        }
        out.list.push(Extension {
            oid: dotted,
            critical,
            value: value.into(),
        });
    }
    Ok(out)
}

/// `BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }`.
fn basic_constraints(value: &[u8]) -> Option<BasicConstraints> {
    let mut outer = Reader::new(value);
    let mut bc = Reader::new(outer.take(TAG_SEQUENCE)?);
    outer.finish()?;
    let ca = match bc.take_if(TAG_BOOLEAN) {
        None => false,
        Some([0xFF]) => true,
        Some([0x00]) => false,
        Some(_) => return None,
    };
    let path_len = match bc.take_if(TAG_INTEGER) {
        None => None,
        // A non-negative INTEGER, minimally encoded, that fits 32 bits.
        Some(int) => {
            let (&first, rest) = int.split_first()?;
            let padded = first == 0 && rest.first().is_some_and(|b| b & 0x80 == 0);
            if first & 0x80 != 0 || padded || int.len() > 5 || (int.len() == 5 && first != 0) {
                return None;
            }
            let value = int.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            Some(u32::try_from(value).ok()?)
        }
    };
    bc.finish()?;
    Some(BasicConstraints { ca, path_len })
}

/// `KeyUsage ::= BIT STRING` (bits 0 to 8; later ones are not defined and ignored).
fn key_usage(value: &[u8]) -> Option<KeyUsage> {
    let mut outer = Reader::new(value);
    let bits = outer.take(TAG_BIT_STRING)?;
    outer.finish()?;
    let (&unused, bytes) = bits.split_first()?;
    // At most 7 unused bits, none without a byte, and (DER) the unused bits are zero.
    let last = bytes.last().copied().unwrap_or(0);
    if unused > 7 || (bytes.is_empty() && unused != 0) || last & ((1u8 << unused) - 1) != 0 {
        return None;
    }
    let byte = |i: usize| u16::from(bytes.get(i).copied().unwrap_or(0));
    Some(KeyUsage((byte(0) << 8) | byte(1)))
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

    /// Parse the certificate at the front of `der`: `(rest, certificate)`.
    ///
    /// ```text
    /// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
    /// TBSCertificate ::= SEQUENCE {
    ///     version [0] EXPLICIT INTEGER DEFAULT v1, serialNumber INTEGER,
    ///     signature AlgorithmIdentifier, issuer Name, validity SEQUENCE { notBefore, notAfter },
    ///     subject Name, subjectPublicKeyInfo, issuerUniqueID [1] IMPLICIT OPTIONAL,
    ///     subjectUniqueID [2] IMPLICIT OPTIONAL, extensions [3] EXPLICIT Extensions OPTIONAL }
    /// ```
    ///
    /// Read by a strict DER walker: every element is checked (tags, DER lengths, names, dates
    /// that exist, extension structure, no bytes left over at any level).
    fn from_der_prefix(der: &[u8]) -> Result<(&[u8], Self), PkiError> {
        let mut outer = Reader::new(der);
        let (cert, whole) = outer
            .take_whole(TAG_SEQUENCE)
            .ok_or_else(|| malformed("Certificate"))?;
        if whole.len() > MAX_OBJECT_LEN {
            return Err(PkiError::TooLarge {
                what: "certificate",
                limit: MAX_OBJECT_LEN,
                actual: whole.len(),
            });
        }
        let rest = der.get(whole.len()..).unwrap_or_default();
        let der::Signed {
            tbs_contents,
            tbs,
            algorithm: outer_alg,
            signature,
        } = der::signed(cert).map_err(|part| {
            malformed(match part {
                SignedPart::Tbs => "tbsCertificate",
                SignedPart::Algorithm => "signatureAlgorithm",
                SignedPart::Signature => "signatureValue",
                SignedPart::Trailing => "Certificate (trailing elements)",
            })
        })?;

        let mut t = Reader::new(tbs_contents);
        if let Some(version) = t.take_if(TAG_VERSION) {
            // v1 (0), v2 (1) or v3 (2).
            match Reader::new(version).take(TAG_INTEGER) {
                Some([0..=2]) if version.len() == 3 => {}
                _ => return Err(malformed("version")),
            }
        }
        let serial = t
            .take(TAG_INTEGER)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed("serialNumber"))?;
        let (_, tbs_alg) = t
            .take_whole(TAG_SEQUENCE)
            .ok_or_else(|| malformed("signature"))?;
        let (_, issuer) = t
            .take_whole(TAG_SEQUENCE)
            .filter(|(contents, _)| check_name(contents).is_some())
            .ok_or_else(|| malformed("issuer"))?;
        let validity = t.take(TAG_SEQUENCE).ok_or_else(|| malformed("validity"))?;
        let mut validity = Reader::new(validity);
        let not_before = take_time(&mut validity).ok_or_else(|| malformed("notBefore"))?;
        let not_after = take_time(&mut validity).ok_or_else(|| malformed("notAfter"))?;
        validity.finish().ok_or_else(|| malformed("validity"))?;
        let (_, subject) = t
            .take_whole(TAG_SEQUENCE)
            .filter(|(contents, _)| check_name(contents).is_some())
            .ok_or_else(|| malformed("subject"))?;
        let spki = t
            .take(TAG_SEQUENCE)
            .ok_or_else(|| malformed("subjectPublicKeyInfo"))?;
        for (tag, field) in [
            (TAG_ISSUER_UID, "issuerUniqueID"),
            (TAG_SUBJECT_UID, "subjectUniqueID"),
        ] {
            if t.peek_tag() == Some(tag) {
                t.take(tag)
                    .filter(|bits| bits.first().is_some_and(|unused| *unused < 8))
                    .ok_or_else(|| malformed(field))?;
            }
        }
        let extensions = match t.take_if(TAG_EXTENSIONS) {
            None => ReadExtensions {
                list: Vec::new(),
                basic_constraints: None,
                key_usage: None,
            },
            Some(wrapper) => {
                let mut wrapper = Reader::new(wrapper);
                let list = wrapper
                    .take(TAG_SEQUENCE)
                    .ok_or_else(|| malformed("extensions"))?;
                wrapper.finish().ok_or_else(|| malformed("extensions"))?;
                read_extensions(list)?
            }
        };
        t.finish()
            .ok_or_else(|| malformed("tbsCertificate (trailing elements)"))?;

        let subject_text = || name_text(subject);
        // RFC 5280 4.1.1.2: the outer signatureAlgorithm must be byte-identical to the TBS
        // `signature` field. (Parsers that compare only the decoded OID let the unsigned outer
        // copy be rewritten, so two encodings of one certificate would both verify.)
        if outer_alg != tbs_alg {
            return Err(PkiError::UnsupportedSignatureAlgorithm {
                subject: subject_text(),
                oid: String::from("outer and TBS signature algorithms differ"),
            });
        }
        let scheme = SignatureScheme::from_der(tbs_alg, subject_text)?;
        let public_key = PublicKey::from_spki(spki, subject_text)?;
        let certificate = Self {
            inner: Arc::new(CertificateInner {
                der: whole.into(),
                tbs: tbs.into(),
                serial: serial.into(),
                issuer: issuer.into(),
                subject: subject.into(),
                subject_text: OnceLock::new(),
                issuer_text: OnceLock::new(),
                not_before,
                not_after,
                scheme,
                signature: signature.into(),
                public_key,
                extensions: extensions.list,
                basic_constraints: extensions.basic_constraints,
                key_usage: extensions.key_usage,
                issuer_key: IssuerKey::default(),
                fingerprint: OnceLock::new(),
            }),
        };
        Ok((rest, certificate))
    }

    /// The whole certificate, DER.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.inner.der
    }
    /// SHA-256 of the whole certificate's DER (its fingerprint), computed once and shared by
    /// clones: a cache key for a certificate.
    #[must_use]
    pub fn sha256(&self) -> [u8; 32] {
        *self
            .inner
            .fingerprint
            .get_or_init(|| crate::sha256(&self.inner.der))
    }
    /// The signed part (TBSCertificate), DER.
    #[must_use]
    pub fn tbs(&self) -> &[u8] {
        &self.inner.tbs
    }
    /// The serial number's content bytes, as encoded (big-endian, may be `00`).
    #[must_use]
    pub fn serial(&self) -> &[u8] {
        &self.inner.serial
    }
    /// The serial number in hex (normalised: no leading zeros; `00` for zero).
    #[must_use]
    pub fn serial_hex(&self) -> String {
        hex_string(crate::normalize_serial(&self.inner.serial))
    }
    /// The issuer name, raw DER.
    #[must_use]
    pub fn issuer_der(&self) -> &[u8] {
        &self.inner.issuer
    }
    /// The subject name, raw DER.
    #[must_use]
    pub fn subject_der(&self) -> &[u8] {
        &self.inner.subject
    }
    /// The subject name as text (RFC 4514 style), for messages.
    #[must_use]
    pub fn subject(&self) -> &str {
        self.inner
            .subject_text
            .get_or_init(|| name_text(&self.inner.subject))
    }
    /// The issuer name as text, for messages.
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.inner
            .issuer_text
            .get_or_init(|| name_text(&self.inner.issuer))
    }
    /// notBefore.
    #[must_use]
    pub fn not_before(&self) -> UnixTime {
        self.inner.not_before
    }
    /// notAfter.
    #[must_use]
    pub fn not_after(&self) -> UnixTime {
        self.inner.not_after
    }
    /// The algorithm this certificate was signed with.
    #[must_use]
    pub fn signature_scheme(&self) -> SignatureScheme {
        self.inner.scheme
    }
    /// The signature value.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.inner.signature
    }
    /// The subject public key.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.inner.public_key
    }
    /// All extensions, raw.
    #[must_use]
    pub fn extensions(&self) -> &[Extension] {
        &self.inner.extensions
    }
    /// The extension with the given dotted OID.
    #[must_use]
    pub fn extension(&self, oid: &str) -> Option<&Extension> {
        self.inner.extensions.iter().find(|e| e.oid == oid)
    }
    /// The first extension marked critical that this crate does not process (anything but
    /// basicConstraints and keyUsage). Path validation refuses such a certificate (RFC 5280
    /// 4.2); the TEE crates read their vendor extensions, which are not critical.
    #[must_use]
    pub fn unhandled_critical_extension(&self) -> Option<&Extension> {
        self.inner
            .extensions
            .iter()
            .find(|e| e.critical && e.oid != OID_BASIC_CONSTRAINTS && e.oid != OID_KEY_USAGE)
    }
    /// basicConstraints cA, when the extension is present.
    #[must_use]
    pub fn basic_constraints_ca(&self) -> Option<bool> {
        self.inner.basic_constraints.map(|b| b.ca)
    }
    /// basicConstraints pathLenConstraint, when present: how many non-self-issued
    /// intermediates may follow this certificate on a path.
    #[must_use]
    pub fn path_len_constraint(&self) -> Option<u32> {
        self.inner.basic_constraints.and_then(|b| b.path_len)
    }
    /// keyUsage keyCertSign, when the extension is present.
    #[must_use]
    pub fn key_cert_sign(&self) -> Option<bool> {
        self.inner.key_usage.map(|k| k.has(KeyUsage::KEY_CERT_SIGN))
    }
    /// keyUsage cRLSign, when the extension is present.
    #[must_use]
    pub fn crl_sign(&self) -> Option<bool> {
        self.inner.key_usage.map(|k| k.has(KeyUsage::CRL_SIGN))
    }
    /// keyUsage digitalSignature, when the extension is present.
    #[must_use]
    pub fn digital_signature(&self) -> Option<bool> {
        self.inner
            .key_usage
            .map(|k| k.has(KeyUsage::DIGITAL_SIGNATURE))
    }
    /// Check that this certificate's key may sign data (evidence, collateral): its keyUsage,
    /// when present, includes digitalSignature (RFC 5280 4.2.1.3).
    ///
    /// # Errors
    /// [`PkiError::NotForSigning`].
    pub fn check_signs_data(&self) -> Result<(), PkiError> {
        if self.digital_signature() == Some(false) {
            return Err(PkiError::NotForSigning {
                subject: self.subject().to_owned(),
            });
        }
        Ok(())
    }
    /// Whether subject and issuer names are equal (a self-issued certificate).
    #[must_use]
    pub fn is_self_issued(&self) -> bool {
        self.inner.subject == self.inner.issuer
    }

    /// Verify an X.509 signature (of a certificate or CRL this one issued) with this
    /// certificate's key, parsed once per certificate. `Err(true)` when the scheme does not fit
    /// the key, `Err(false)` when the signature is invalid.
    pub(crate) fn verify_issued(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), bool> {
        self.inner
            .issuer_key
            .verify(scheme, &self.inner.public_key, message, sig)
    }

    /// Check notBefore ≤ `at` ≤ notAfter.
    ///
    /// # Errors
    /// [`PkiError::NotYetValid`] or [`PkiError::Expired`].
    pub fn check_validity(&self, at: UnixTime) -> Result<(), PkiError> {
        if at < self.inner.not_before {
            return Err(PkiError::NotYetValid {
                subject: self.subject().to_owned(),
                not_before: self.inner.not_before,
                at,
            });
        }
        if at > self.inner.not_after {
            return Err(PkiError::Expired {
                subject: self.subject().to_owned(),
                not_after: self.inner.not_after,
                at,
            });
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{CertificateSpec, IssuerKey, issue_certificate, name};
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::path::Path;
    use x509_parser::prelude::X509Certificate;

    /// What a certificate parse yields, for comparing two parsers.
    #[derive(Debug, PartialEq)]
    struct Fields {
        der: Vec<u8>,
        tbs: Vec<u8>,
        serial: Vec<u8>,
        issuer: Vec<u8>,
        subject: Vec<u8>,
        issuer_text: String,
        subject_text: String,
        validity: (i64, i64),
        scheme: SignatureScheme,
        signature: Vec<u8>,
        key: (PublicKeyKind, Vec<u8>),
        extensions: Vec<Extension>,
        ca: Option<bool>,
        key_cert_sign: Option<bool>,
    }

    fn fields(c: &Certificate) -> Fields {
        Fields {
            der: c.der().to_vec(),
            tbs: c.tbs().to_vec(),
            serial: c.serial().to_vec(),
            issuer: c.issuer_der().to_vec(),
            subject: c.subject_der().to_vec(),
            issuer_text: c.issuer().to_owned(),
            subject_text: c.subject().to_owned(),
            validity: (c.not_before().as_secs(), c.not_after().as_secs()),
            scheme: c.signature_scheme(),
            signature: c.signature().to_vec(),
            key: (c.public_key().kind(), c.public_key().raw().to_vec()),
            extensions: c.extensions().to_vec(),
            ca: c.basic_constraints_ca(),
            key_cert_sign: c.key_cert_sign(),
        }
    }

    /// The parse the walker replaced (x509-parser, with the checks `from_der` made on top), as
    /// the oracle: whatever the walker accepts, it must accept with the same values.
    fn reference(der: &[u8]) -> Option<Fields> {
        let (rest, x) = X509Certificate::from_der(der).ok()?;
        if !rest.is_empty() || der.len() > MAX_OBJECT_LEN {
            return None;
        }
        let tbs = &x.tbs_certificate;
        let subject_text = tbs.subject.to_string();
        // The outer and TBS AlgorithmIdentifiers, byte for byte.
        let mut cert = Reader::new(Reader::new(der).take(TAG_SEQUENCE)?);
        let (tbs_contents, _) = cert.take_whole(TAG_SEQUENCE)?;
        let (_, outer_alg) = cert.take_whole(TAG_SEQUENCE)?;
        let mut t = Reader::new(tbs_contents);
        t.take_if(TAG_VERSION);
        t.take(TAG_INTEGER)?;
        let (_, inner_alg) = t.take_whole(TAG_SEQUENCE)?;
        if x.signature_algorithm != tbs.signature || outer_alg != inner_alg {
            return None;
        }
        let scheme = SignatureScheme::from_algorithm(&x.signature_algorithm, &subject_text).ok()?;
        let spki = &tbs.subject_pki;
        let key_bytes: &[u8] = &spki.subject_public_key.data;
        let kind = match spki.algorithm.algorithm.to_id_string().as_str() {
            OID_RSA_ENCRYPTION | OID_RSASSA_PSS => {
                let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() else {
                    return None;
                };
                let bits = rsa.key_size();
                (2048..=8192).contains(&bits).then_some(())?;
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
                    _ => return None,
                };
                (key_bytes.len() == len && key_bytes.first() == Some(&4)).then_some(())?;
                kind
            }
            _ => return None,
        };
        let ca = tbs.basic_constraints().ok()?.map(|b| b.value.ca);
        let key_cert_sign = tbs.key_usage().ok()?.map(|k| k.value.key_cert_sign());
        Some(Fields {
            der: der.to_vec(),
            tbs: tbs.as_ref().to_vec(),
            serial: tbs.raw_serial().to_vec(),
            issuer: tbs.issuer.as_raw().to_vec(),
            subject: tbs.subject.as_raw().to_vec(),
            issuer_text: tbs.issuer.to_string(),
            subject_text,
            validity: (
                tbs.validity.not_before.timestamp(),
                tbs.validity.not_after.timestamp(),
            ),
            scheme,
            signature: x.signature_value.data.to_vec(),
            key: (kind, key_bytes.to_vec()),
            // asn1-rs writes a first byte of 120 or more as arcs 3, 4, ... (X.690 8.19.4: the
            // first arc is 2 and the second 40 or more), so the dotted text is compared as X.690
            // defines it.
            extensions: tbs
                .extensions()
                .iter()
                .map(|e| {
                    Some(Extension {
                        oid: der::oid_text(e.oid.as_bytes())?,
                        critical: e.critical,
                        value: e.value.into(),
                    })
                })
                .collect::<Option<_>>()?,
            ca,
            key_cert_sign,
        })
    }

    /// PEM certificate blocks anywhere in `bytes` (also inside quotes and JSON strings).
    fn pem_blocks(bytes: &[u8], out: &mut BTreeSet<Vec<u8>>) {
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let text = String::from_utf8_lossy(bytes).replace("\\n", "\n");
        let mut rest = text.as_str();
        while let Some(start) = rest.find(BEGIN) {
            let after = &rest[start + BEGIN.len()..];
            let Some(end) = after.find(END) else { break };
            let b64: String = after[..end]
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
                .collect();
            if let Ok(der) = data_encoding::BASE64.decode(b64.as_bytes()) {
                out.insert(der);
            }
            rest = &after[end..];
        }
    }

    fn collect(dir: &Path, out: &mut BTreeSet<Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect(&path, out);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            pem_blocks(&bytes, out);
            if bytes.first() == Some(&0x30) && X509Certificate::from_der(&bytes).is_ok() {
                out.insert(bytes);
            }
        }
    }

    /// Every distinct certificate in the real vectors (Intel roots, CAs, PCKs from quotes, TCB
    /// signing; AMD ARKs, ASKs, VCEKs, VLEKs), DER.
    fn real_certificates() -> &'static [Vec<u8>] {
        static CERTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        CERTS.get_or_init(|| {
            let mut out = BTreeSet::new();
            if let Some(dir) = crate::tests::vectors_dir() {
                collect(&dir, &mut out);
            }
            out.into_iter().collect()
        })
    }

    #[test]
    fn oid_constants_are_the_dotted_ones() {
        for (der_form, dotted) in [
            (DER_RSA_ENCRYPTION, OID_RSA_ENCRYPTION),
            (DER_RSASSA_PSS, OID_RSASSA_PSS),
            (DER_EC_PUBLIC_KEY, OID_EC_PUBLIC_KEY),
            (DER_P256, OID_P256),
            (DER_P384, OID_P384),
            (DER_BASIC_CONSTRAINTS, "2.5.29.19"),
            (DER_KEY_USAGE, "2.5.29.15"),
        ] {
            assert_eq!(der::oid(dotted).unwrap()[2..], *der_form, "{dotted}");
            assert_eq!(der::oid_text(der_form).as_deref(), Some(dotted));
        }
        for (alg, dotted) in [
            (DER_ALG_ECDSA_SHA256, OID_ECDSA_SHA256),
            (DER_ALG_ECDSA_SHA384, OID_ECDSA_SHA384),
        ] {
            assert_eq!(der::seq(&[&der::oid(dotted).unwrap()]), alg);
        }
    }

    #[test]
    fn real_certificates_parse_as_x509_parser_reads_them() {
        let certs = real_certificates();
        let mut parsed = 0;
        for der in certs {
            let ours = Certificate::from_der(der).map(|c| fields(&c));
            let theirs = reference(der);
            match (&ours, &theirs) {
                (Ok(a), Some(b)) => {
                    assert_eq!(a, b);
                    parsed += 1;
                }
                (Err(_), None) => {}
                _ => panic!(
                    "{}: ours {ours:?}, x509-parser {theirs:?}",
                    crate::to_hex(der)
                ),
            }
        }
        if crate::tests::vectors_dir().is_some() {
            assert!(
                parsed >= 20,
                "only {parsed} of {} certificates parsed",
                certs.len()
            );
        }
    }

    fn key() -> &'static IssuerKey {
        static KEY: OnceLock<IssuerKey> = OnceLock::new();
        KEY.get_or_init(|| IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap())
    }

    fn spec(extensions: Vec<(&'static str, bool, Vec<u8>)>) -> CertificateSpec {
        CertificateSpec {
            serial: vec![0x42],
            issuer: name(&[("2.5.4.3", "CA"), ("2.5.4.10", "Org")]).unwrap(),
            subject: name(&[("2.5.4.3", "Leaf")]).unwrap(),
            not_before: UnixTime::from_secs(1_700_000_000),
            not_after: UnixTime::from_secs(1_800_000_000),
            ca: None,
            extensions: extensions
                .into_iter()
                .map(|(oid, critical, value)| (oid.to_owned(), critical, value))
                .collect(),
            pss_explicit_trailer: false,
        }
    }

    fn issue(extensions: Vec<(&'static str, bool, Vec<u8>)>) -> Vec<u8> {
        issue_certificate(&spec(extensions), &key().spki_der().unwrap(), key()).unwrap()
    }

    #[test]
    fn fingerprint_is_the_sha256_of_the_der() {
        let c = Certificate::from_der(&issue(vec![])).unwrap();
        let copy = c.clone();
        assert_eq!(c.sha256(), crate::sha256(c.der()));
        assert_eq!(copy.sha256(), c.sha256());
        assert_eq!(copy, c);
    }

    #[test]
    fn extensions_are_read_and_checked() {
        let bc = |ca: bool| der::seq(&[&der::boolean(ca)]);
        let ku = |byte: u8| der::tlv(TAG_BIT_STRING, &[1, byte]);
        let der = issue(vec![
            ("2.5.29.19", true, bc(true)),
            ("2.5.29.15", true, ku(0x06)),
            (
                "1.2.840.113741.1.13.1",
                false,
                der::seq(&[&der::uint_u64(1)]),
            ),
        ]);
        let c = Certificate::from_der(&der).unwrap();
        assert_eq!(Some(fields(&c)), reference(&der));
        assert_eq!(
            (c.basic_constraints_ca(), c.key_cert_sign()),
            (Some(true), Some(true))
        );
        assert_eq!(c.subject(), "CN=Leaf");
        assert_eq!(c.issuer(), "CN=CA, O=Org");
        assert!(
            c.extension("1.2.840.113741.1.13.1")
                .is_some_and(|e| !e.critical)
        );
        let c = Certificate::from_der(&issue(vec![
            ("2.5.29.19", false, der::seq(&[])),
            ("2.5.29.15", false, ku(0x80)),
        ]))
        .unwrap();
        assert_eq!(
            (c.basic_constraints_ca(), c.key_cert_sign()),
            (Some(false), Some(false))
        );

        // Only basicConstraints and keyUsage may be critical for path validation.
        assert_eq!(c.unhandled_critical_extension(), None);
        let c = Certificate::from_der(&issue(vec![
            ("2.5.29.19", true, bc(true)),
            ("2.5.29.30", true, der::seq(&[])),
        ]))
        .unwrap();
        assert_eq!(
            c.unhandled_critical_extension().map(|e| e.oid.as_str()),
            Some("2.5.29.30")
        );

        // No extension may appear twice (any OID), and there is a bound on their number.
        let sgx = || ("1.2.840.113741.1.13.1", false, der::seq(&[]));
        for extensions in [
            vec![("2.5.29.19", true, bc(true)), ("2.5.29.19", true, bc(true))],
            vec![
                ("2.5.29.15", true, ku(0x04)),
                ("2.5.29.15", false, ku(0x04)),
            ],
            vec![sgx(), ("2.5.29.19", true, bc(false)), sgx()],
        ] {
            let err = Certificate::from_der(&issue(extensions)).unwrap_err();
            assert!(
                matches!(&err, PkiError::Der { what: "certificate", detail } if detail.contains("more than once")),
                "{err}"
            );
        }
        let oids: Vec<&'static str> = (0..=MAX_EXTENSIONS)
            .map(|i| &*format!("1.2.3.{i}").leak())
            .collect();
        let many = |n: usize| {
            oids[..n]
                .iter()
                .map(|o| (*o, false, der::seq(&[])))
                .collect()
        };
        assert!(Certificate::from_der(&issue(many(MAX_EXTENSIONS))).is_ok());
        assert!(matches!(
            Certificate::from_der(&issue(many(MAX_EXTENSIONS + 1))),
            Err(PkiError::TooLarge { .. })
        ));

        // pathLenConstraint is read; it must be a minimal non-negative INTEGER within 32 bits.
        let bc_len = |int: &[u8]| der::seq(&[&der::boolean(true), &der::tlv(TAG_INTEGER, int)]);
        for (int, value) in [
            (&[0u8][..], 0u32),
            (&[0x7F], 127),
            (&[0x00, 0x80], 128),
            (&[0x00, 0xFF, 0xFF, 0xFF, 0xFF], u32::MAX),
        ] {
            let c = Certificate::from_der(&issue(vec![("2.5.29.19", true, bc_len(int))])).unwrap();
            assert_eq!(c.path_len_constraint(), Some(value));
        }
        for int in [
            &[][..],
            &[0x00, 0x01],
            &[0x80],
            &[0xFF, 0x01],
            &[0x01, 0x00, 0x00, 0x00, 0x00],
        ] {
            let err = Certificate::from_der(&issue(vec![("2.5.29.19", true, bc_len(int))]));
            assert!(
                matches!(
                    &err,
                    Err(PkiError::Der {
                        what: "basicConstraints",
                        ..
                    })
                ),
                "{int:?}: {err:?}"
            );
        }

        // Malformed basicConstraints/keyUsage are errors, named.
        for (extensions, what) in [
            (
                vec![("2.5.29.19", true, der::boolean(true))],
                "basicConstraints",
            ),
            (
                vec![("2.5.29.19", true, der::seq(&[&der::tlv(TAG_BOOLEAN, &[1])]))],
                "basicConstraints",
            ),
            (vec![("2.5.29.15", true, der::octets(&[4]))], "keyUsage"),
            (
                vec![("2.5.29.15", true, der::tlv(TAG_BIT_STRING, &[8, 0]))],
                "keyUsage",
            ),
        ] {
            let err = Certificate::from_der(&issue(extensions)).unwrap_err();
            assert!(
                matches!(&err, PkiError::Der { what: w, .. } if *w == what),
                "{what}: {err}"
            );
        }
    }

    /// Re-sign `tbs_parts` (the TBS elements) with the test key.
    fn resign(tbs_parts: &[Vec<u8>]) -> Vec<u8> {
        let p: Vec<&[u8]> = tbs_parts.iter().map(Vec::as_slice).collect();
        let tbs = der::seq(&p);
        let sig = key().sign_x509(&tbs).unwrap();
        der::seq(&[&tbs, DER_ALG_ECDSA_SHA256, &der::bits(&sig)])
    }

    /// The TBS elements of an issued certificate.
    fn tbs_parts(cert: &[u8]) -> Vec<Vec<u8>> {
        let mut c = Reader::new(Reader::new(cert).take(TAG_SEQUENCE).unwrap());
        let mut t = Reader::new(c.take(TAG_SEQUENCE).unwrap());
        let mut out = Vec::new();
        while let Some(tag) = t.peek_tag() {
            out.push(t.take_whole(tag).unwrap().1.to_vec());
        }
        out
    }

    #[test]
    fn walker_rejects_malformed_elements() {
        let base = tbs_parts(&issue(vec![]));
        assert!(Certificate::from_der(&resign(&base)).is_ok());
        type Edit = fn(&mut Vec<Vec<u8>>);
        let cases: [(Edit, &str); 9] = [
            (|t| t[0] = der::explicit(0, &der::uint_u64(3)), "version"),
            (|t| t[1] = der::tlv(TAG_INTEGER, &[]), "serialNumber"),
            (|t| t[3] = der::seq(&[&der::null()]), "issuer"),
            (
                |t| {
                    t[4] = der::seq(&[
                        &der::tlv(TAG_UTC_TIME, b"231131000000Z"),
                        &der::tlv(TAG_UTC_TIME, b"300101000000Z"),
                    ])
                },
                "notBefore",
            ),
            (
                |t| {
                    t[4] = der::seq(&[
                        &der::tlv(TAG_UTC_TIME, b"231130000000Z"),
                        &der::tlv(TAG_UTC_TIME, b"3001010000Z"),
                    ])
                },
                "notAfter",
            ),
            (|t| t[5] = der::set(&[]), "subject"),
            (
                |t| t.insert(7, der::tlv(TAG_ISSUER_UID, &[])),
                "issuerUniqueID",
            ),
            (
                |t| {
                    t.push(der::explicit(
                        3,
                        &der::seq(&[&der::seq(&[&der::oid("2.5.29.99").unwrap()])]),
                    ))
                },
                "extensions[0]",
            ),
            (
                |t| t.push(der::null()),
                "tbsCertificate (trailing elements)",
            ),
        ];
        for (edit, field) in cases {
            let mut parts = base.clone();
            edit(&mut parts);
            let der = resign(&parts);
            let err = Certificate::from_der(&der).unwrap_err();
            assert!(
                matches!(&err, PkiError::Der { detail, .. } if detail.starts_with(field)),
                "{field}: {err}"
            );
        }
        // Unique identifiers are allowed (and read past).
        let mut with_uids = base.clone();
        with_uids.insert(7, der::tlv(TAG_ISSUER_UID, &[0, 1]));
        with_uids.insert(8, der::tlv(TAG_SUBJECT_UID, &[0, 2]));
        let der = resign(&with_uids);
        assert_eq!(
            Some(fields(&Certificate::from_der(&der).unwrap())),
            reference(&der)
        );
    }

    /// An RSASSA-PSS AlgorithmIdentifier (RFC 4055 3.1): `hash`, `mgf` with `mgf_hash`,
    /// `salt` and, when given, an explicit `trailer`.
    fn pss_algorithm(
        hash: &str,
        (mgf, mgf_hash): (&str, &str),
        salt: u64,
        trailer: Option<u64>,
    ) -> Vec<u8> {
        let alg = |o: &str| der::seq(&[&der::oid(o).unwrap()]);
        let mut params = vec![
            der::explicit(0, &alg(hash)),
            der::explicit(1, &der::seq(&[&der::oid(mgf).unwrap(), &alg(mgf_hash)])),
            der::explicit(2, &der::uint_u64(salt)),
        ];
        if let Some(trailer) = trailer {
            params.push(der::explicit(3, &der::uint_u64(trailer)));
        }
        let p: Vec<&[u8]> = params.iter().map(Vec::as_slice).collect();
        der::seq(&[&der::oid(OID_RSASSA_PSS).unwrap(), &der::seq(&p)])
    }

    /// The test certificate with `alg` as both its TBS and outer signature algorithm (the
    /// signature is not a valid one: parsing checks the parameters, not the signature).
    fn with_signature_algorithm(alg: &[u8]) -> Vec<u8> {
        let mut parts = tbs_parts(&issue(vec![]));
        parts[2] = alg.to_vec();
        let p: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        der::seq(&[&der::seq(&p), alg, &der::bits(&[0x5A; 256])])
    }

    #[test]
    fn rsassa_pss_parameters_must_be_the_ones_accepted() {
        const SHA1: &str = "1.3.14.3.2.26";
        const SHA512: &str = "2.16.840.1.101.3.4.2.3";
        let mgf1 = |hash| (OID_MGF1, hash);
        // What AMD writes (trailerField implicit or explicit), and the SHA-256 variant.
        for (alg, scheme) in [
            (
                pss_algorithm(OID_SHA384, mgf1(OID_SHA384), 48, None),
                SignatureScheme::RsaPssSha384,
            ),
            (
                pss_algorithm(OID_SHA384, mgf1(OID_SHA384), 48, Some(1)),
                SignatureScheme::RsaPssSha384,
            ),
            (
                pss_algorithm(OID_SHA256, mgf1(OID_SHA256), 32, None),
                SignatureScheme::RsaPssSha256,
            ),
        ] {
            let c = Certificate::from_der(&with_signature_algorithm(&alg)).unwrap();
            assert_eq!(c.signature_scheme(), scheme);
        }
        // Each parameter off by itself is refused, naming it.
        let cases: [(Vec<u8>, String); 11] = [
            (
                pss_algorithm(SHA1, mgf1(SHA1), 20, None),
                format!("hash {SHA1}"),
            ),
            (
                pss_algorithm(SHA512, mgf1(SHA512), 64, None),
                format!("hash {SHA512}"),
            ),
            (
                pss_algorithm(OID_SHA384, mgf1(OID_SHA256), 48, None),
                format!("maskGenAlgorithm {OID_MGF1} with {OID_SHA256}"),
            ),
            (
                pss_algorithm(OID_SHA256, mgf1(OID_SHA384), 32, None),
                format!("maskGenAlgorithm {OID_MGF1} with {OID_SHA384}"),
            ),
            (
                // Not MGF1 (id-RSAES-OAEP's OID in its place), with the right hash.
                pss_algorithm(OID_SHA384, ("1.2.840.113549.1.1.7", OID_SHA384), 48, None),
                format!("maskGenAlgorithm 1.2.840.113549.1.1.7 with {OID_SHA384}"),
            ),
            (
                pss_algorithm(OID_SHA384, mgf1(OID_SHA384), 32, None),
                String::from("saltLength 32"),
            ),
            (
                pss_algorithm(OID_SHA256, mgf1(OID_SHA256), 48, None),
                String::from("saltLength 48"),
            ),
            (
                pss_algorithm(OID_SHA384, mgf1(OID_SHA384), 0, None),
                String::from("saltLength 0"),
            ),
            (
                pss_algorithm(OID_SHA384, mgf1(OID_SHA384), 48, Some(2)),
                String::from("trailerField 2"),
            ),
            (
                pss_algorithm(OID_SHA256, mgf1(OID_SHA256), 32, Some(0)),
                String::from("trailerField 0"),
            ),
            (
                der::seq(&[&der::oid(OID_RSASSA_PSS).unwrap()]),
                String::from("parameters missing or malformed"),
            ),
        ];
        for (alg, want) in cases {
            let err = Certificate::from_der(&with_signature_algorithm(&alg)).unwrap_err();
            assert!(
                matches!(&err, PkiError::PssParameters { subject, detail }
                    if subject == "CN=Leaf" && *detail == want),
                "{want}: {err:?}"
            );
        }
    }

    proptest! {
        /// Real certificates with a few bytes changed: the walker never panics, and whatever it
        /// accepts x509-parser (the parser it replaced) accepts with the same values.
        #[test]
        fn mutated_real_certificates_are_read_no_more_leniently(
            pick in any::<proptest::sample::Index>(),
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let certs = real_certificates();
            if certs.is_empty() {
                return Ok(());
            }
            let mut der = certs[pick.index(certs.len())].clone();
            for (at, value) in &edits {
                let i = at.index(der.len());
                der[i] = *value;
            }
            if let Ok(ours) = Certificate::from_der(&der) {
                prop_assert_eq!(Some(fields(&ours)), reference(&der));
            }
        }
    }
}
