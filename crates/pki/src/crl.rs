//! Certificate revocation lists: parsed owned views, signature by the issuer, freshness window.
//!
//! A CRL is read by a strict DER walker (RFC 5280 5.1): the structure is checked element by
//! element, and the revoked serials are taken straight from the bytes. x509-parser, which reads
//! certificates here, builds a big-integer, a date and an extension list for every entry; Intel's
//! PCK CRLs have hundreds of entries and are parsed for every uncached verification.

use std::sync::{Arc, OnceLock};

use crate::cert::{Certificate, SignatureScheme, name_text};
use crate::der::{
    self, ExtensionsError, MAX_EXTENSIONS, Reader, SignedPart, TAG_GENERALIZED_TIME, TAG_INTEGER,
    TAG_SEQUENCE, TAG_UTC_TIME, check_name, x509_time,
};
use crate::{
    Budget, MAX_INPUT_LEN, MAX_OBJECT_LEN, MAX_OBJECTS_PER_INPUT, PkiError, UnixTime, chain, pem,
};

/// `[0] EXPLICIT`, the tag of `crlExtensions`.
const TAG_CRL_EXTENSIONS: u8 = 0xA0;

/// A parsed CRL (owned). Parsing checks structure only; [`Crl::verify_signed_by`] checks trust.
///
/// Two CRLs are equal when their DER is: everything else is read from it. Clones share the
/// parsed view (a reference count).
#[derive(Clone, Debug)]
pub struct Crl {
    inner: Arc<CrlInner>,
}

/// What a [`Crl`] holds.
#[derive(Debug)]
struct CrlInner {
    der: Box<[u8]>,
    tbs: Box<[u8]>,
    issuer: Box<[u8]>,
    /// The issuer as text, made when first asked for (messages).
    issuer_text: OnceLock<String>,
    this_update: UnixTime,
    next_update: Option<UnixTime>,
    revoked: Vec<Box<[u8]>>,
    scheme: SignatureScheme,
    signature: Box<[u8]>,
}

/// A malformed CRL: `field` is the RFC 5280 name of the element at fault.
fn malformed(field: &str) -> PkiError {
    PkiError::Der {
        what: "CRL",
        detail: format!("{field}: malformed or missing"),
    }
}

/// A `Time` element (UTCTime or GeneralizedTime) read from `r`, if the next element is one.
fn take_time(r: &mut Reader<'_>, field: &str) -> Result<Option<UnixTime>, PkiError> {
    let Some(tag) = r
        .peek_tag()
        .filter(|t| matches!(*t, TAG_UTC_TIME | TAG_GENERALIZED_TIME))
    else {
        return Ok(None);
    };
    let contents = r.take(tag).ok_or_else(|| malformed(field))?;
    x509_time(tag, contents)
        .map(|secs| Some(UnixTime::from_secs(secs)))
        .ok_or_else(|| malformed(field))
}

/// issuingDistributionPoint, 2.5.29.28 (a CRL whose scope it narrows, e.g. to some reasons).
const DER_ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1D, 0x1C];
/// deltaCRLIndicator, 2.5.29.27 (a CRL that lists only changes since a base CRL).
const DER_DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1D, 0x1B];

/// `Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension`, each
/// `SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`:
/// checked for structure, at most [`MAX_EXTENSIONS`] and none twice. No extension's value is
/// used, so one that would change what the CRL means makes it unusable (RFC 5280 5.2, 5.3): any
/// marked critical, and (critical or not) a delta-CRL indicator or an issuing distribution point,
/// since reading a delta or a partial CRL as complete would miss revocations.
fn check_extensions(contents: &[u8], field: &str, issuer: &[u8]) -> Result<(), PkiError> {
    let unusable = |dotted: String, detail: &'static str| PkiError::CrlUnusable {
        issuer: name_text(issuer),
        field: field.to_owned(),
        oid: dotted,
        detail,
    };
    let list = der::extensions(contents).map_err(|e| match e {
        ExtensionsError::Malformed(_) => malformed(field),
        ExtensionsError::TooMany => PkiError::TooLarge {
            what: "CRL extensions",
            limit: MAX_EXTENSIONS,
            actual: MAX_EXTENSIONS + 1,
        },
        ExtensionsError::Duplicate(dotted) => unusable(dotted, "present more than once"),
    })?;
    for ext in list {
        if ext.oid == DER_DELTA_CRL_INDICATOR {
            return Err(unusable(
                ext.dotted,
                "marks a delta CRL, which is not a complete list",
            ));
        }
        if ext.oid == DER_ISSUING_DISTRIBUTION_POINT {
            return Err(unusable(
                ext.dotted,
                "limits the CRL's scope, which is not processed",
            ));
        }
        if ext.critical {
            return Err(unusable(ext.dotted, "is critical and not processed"));
        }
    }
    Ok(())
}

impl PartialEq for Crl {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.der == other.inner.der
    }
}

impl Eq for Crl {}

impl Crl {
    /// Parse one DER CRL; trailing bytes are an error.
    ///
    /// ```text
    /// CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
    /// TBSCertList ::= SEQUENCE {
    ///     version INTEGER (v2) OPTIONAL, signature AlgorithmIdentifier, issuer Name,
    ///     thisUpdate Time, nextUpdate Time OPTIONAL,
    ///     revokedCertificates SEQUENCE OF SEQUENCE {
    ///         userCertificate INTEGER, revocationDate Time, crlEntryExtensions Extensions OPTIONAL
    ///     } OPTIONAL,
    ///     crlExtensions [0] EXPLICIT Extensions OPTIONAL }
    /// ```
    ///
    /// Every element is checked (DER lengths, tags, dates that exist, extension structure, no
    /// bytes left over at any level); `version`, when present, must be v2; the outer
    /// `signatureAlgorithm` must be byte-identical to the TBS `signature` (it is not signed).
    ///
    /// # Errors
    /// [`PkiError::Der`] naming the element at fault, [`PkiError::TooLarge`], or an unsupported
    /// signature algorithm.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        if der.len() > MAX_OBJECT_LEN {
            return Err(PkiError::TooLarge {
                what: "CRL",
                limit: MAX_OBJECT_LEN,
                actual: der.len(),
            });
        }
        let mut outer = Reader::new(der);
        let list = outer
            .take(TAG_SEQUENCE)
            .ok_or_else(|| malformed("CertificateList"))?;
        if outer.finish().is_none() {
            return Err(PkiError::Der {
                what: "CRL",
                detail: String::from("trailing bytes after the CertificateList"),
            });
        }
        let der::Signed {
            tbs_contents,
            tbs,
            algorithm: outer_alg,
            signature,
        } = der::signed(list).map_err(|part| {
            malformed(match part {
                SignedPart::Tbs => "tbsCertList",
                SignedPart::Algorithm => "signatureAlgorithm",
                SignedPart::Signature => "signatureValue",
                SignedPart::Trailing => "CertificateList (trailing elements)",
            })
        })?;

        let mut t = Reader::new(tbs_contents);
        if let Some(version) = t.take_if(TAG_INTEGER)
            && version != [1]
        {
            return Err(PkiError::Der {
                what: "CRL",
                detail: String::from("version: only v2 (1) is defined"),
            });
        }
        let (_, tbs_alg) = t
            .take_whole(TAG_SEQUENCE)
            .ok_or_else(|| malformed("signature"))?;
        let (_, issuer) = t
            .take_whole(TAG_SEQUENCE)
            .filter(|(contents, _)| check_name(contents).is_some())
            .ok_or_else(|| malformed("issuer"))?;
        if outer_alg != tbs_alg {
            return Err(PkiError::UnsupportedSignatureAlgorithm {
                subject: name_text(issuer),
                oid: String::from("outer and TBS signature algorithms differ"),
            });
        }
        let scheme =
            SignatureScheme::from_der(tbs_alg, || name_text(issuer)).map_err(|e| match e {
                PkiError::Der { .. } => malformed("signature"),
                other => other,
            })?;
        let this_update =
            take_time(&mut t, "thisUpdate")?.ok_or_else(|| malformed("thisUpdate"))?;
        let next_update = take_time(&mut t, "nextUpdate")?;
        let mut revoked = Vec::new();
        if let Some(entries) = t.take_if(TAG_SEQUENCE) {
            let mut entries = Reader::new(entries);
            while !entries.is_empty() {
                let at = |field: &str| format!("revokedCertificates[{}]{field}", revoked.len());
                let entry = entries
                    .take(TAG_SEQUENCE)
                    .ok_or_else(|| malformed(&at("")))?;
                let mut e = Reader::new(entry);
                let serial = e
                    .take(TAG_INTEGER)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| malformed(&at(".userCertificate")))?;
                let date = take_time(&mut e, "").map_err(|_| malformed(&at(".revocationDate")))?;
                date.ok_or_else(|| malformed(&at(".revocationDate")))?;
                if let Some(extensions) = e.take_if(TAG_SEQUENCE) {
                    check_extensions(extensions, &at(".crlEntryExtensions"), issuer)?;
                }
                e.finish()
                    .ok_or_else(|| malformed(&at(" (trailing elements)")))?;
                revoked.push(crate::normalize_serial(serial).into());
            }
        }
        if let Some(extensions) = t.take_if(TAG_CRL_EXTENSIONS) {
            let mut wrapper = Reader::new(extensions);
            let list = wrapper
                .take(TAG_SEQUENCE)
                .ok_or_else(|| malformed("crlExtensions"))?;
            wrapper.finish().ok_or_else(|| malformed("crlExtensions"))?;
            check_extensions(list, "crlExtensions", issuer)?;
        }
        t.finish()
            .ok_or_else(|| malformed("tbsCertList (trailing elements)"))?;
        Ok(Self {
            inner: Arc::new(CrlInner {
                der: der.into(),
                tbs: tbs.into(),
                issuer: issuer.into(),
                issuer_text: OnceLock::new(),
                this_update,
                next_update,
                revoked,
                scheme,
                signature: signature.into(),
            }),
        })
    }

    /// The whole CRL, DER.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.inner.der
    }
    /// The issuer name, raw DER.
    #[must_use]
    pub fn issuer_der(&self) -> &[u8] {
        &self.inner.issuer
    }
    /// The issuer name as text.
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.inner
            .issuer_text
            .get_or_init(|| name_text(&self.inner.issuer))
    }
    /// thisUpdate.
    #[must_use]
    pub fn this_update(&self) -> UnixTime {
        self.inner.this_update
    }
    /// nextUpdate, when present.
    #[must_use]
    pub fn next_update(&self) -> Option<UnixTime> {
        self.inner.next_update
    }
    /// Revoked serial numbers (normalised big-endian bytes).
    #[must_use]
    pub fn revoked_serials(&self) -> &[Box<[u8]>] {
        &self.inner.revoked
    }

    /// Whether a certificate with this serial (raw DER INTEGER content) is listed.
    #[must_use]
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        let s = crate::normalize_serial(serial);
        self.inner.revoked.iter().any(|r| r.as_ref() == s)
    }

    /// Check that `issuer` issued this CRL: names equal, its keyUsage (when present) allows
    /// cRLSign, and the signature verifies under its key.
    ///
    /// # Errors
    /// [`PkiError::CrlBadSignature`], [`PkiError::CrlIssuerKeyUsage`] (or the algorithm/budget
    /// errors).
    pub fn verify_signed_by(
        &self,
        issuer: &Certificate,
        budget: &mut Budget,
    ) -> Result<(), PkiError> {
        if self.inner.issuer.as_ref() != issuer.subject_der() {
            return Err(PkiError::CrlBadSignature {
                issuer: self.issuer().to_owned(),
            });
        }
        // RFC 5280 4.2.1.3: a key whose keyUsage lacks cRLSign does not sign CRLs.
        if issuer.crl_sign() == Some(false) {
            return Err(PkiError::CrlIssuerKeyUsage {
                issuer: self.issuer().to_owned(),
            });
        }
        chain::verify_signature(
            &self.inner.tbs,
            self.inner.scheme,
            &self.inner.signature,
            || self.issuer().to_owned(),
            issuer,
            budget,
        )
        .map_err(|e| match e {
            PkiError::BadSignature { .. } | PkiError::AlgorithmKeyMismatch { .. } => {
                PkiError::CrlBadSignature {
                    issuer: self.issuer().to_owned(),
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
        let Some(next) = self.inner.next_update else {
            return Err(PkiError::CrlNoNextUpdate {
                issuer: self.issuer().to_owned(),
            });
        };
        if at < self.inner.this_update || at > next {
            return Err(PkiError::CrlNotCurrent {
                issuer: self.issuer().to_owned(),
                this_update: self.inner.this_update,
                next_update: next,
                at,
            });
        }
        Ok(())
    }
}

/// Certificates and CRLs from one input that may hold either or both (a file of endorsements):
/// PEM with `CERTIFICATE` and `X509 CRL` blocks, every block of either label parsed (blocks of
/// other labels are skipped); or DER, certificates, else CRLs. [`load_certificates`] and
/// [`load_crls`] each skip the other's blocks, so neither alone would notice a CRL (and the
/// revocations in it) left behind in a file of certificates.
///
/// # Errors
/// As [`load_certificates`] and [`load_crls`] (a malformed block of either label fails the
/// whole input); [`PkiError::Pem`] for PEM with neither label.
///
/// [`load_certificates`]: crate::load_certificates
pub fn load_certificates_and_crls(bytes: &[u8]) -> Result<(Vec<Certificate>, Vec<Crl>), PkiError> {
    let text = match core::str::from_utf8(bytes) {
        Ok(text) if crate::pem::is_pem(bytes) => text,
        // DER (or not PEM text at all): one kind or the other, as the loaders read it.
        _ => {
            return match crate::cert::load_certificates(bytes) {
                Ok(certs) => Ok((certs, Vec::new())),
                Err(cert_error) => load_crls(bytes)
                    .map(|crls| (Vec::new(), crls))
                    .map_err(|_| cert_error),
            };
        }
    };
    let certs = if text.contains("-----BEGIN CERTIFICATE-----") {
        crate::cert::load_certificates(bytes)?
    } else {
        Vec::new()
    };
    let crls = crls_among_pem(bytes)?;
    if certs.is_empty() && crls.is_empty() {
        return Err(PkiError::Pem {
            what: "certificates or CRLs",
            detail: String::from("no CERTIFICATE or X509 CRL block"),
        });
    }
    Ok((certs, crls))
}

/// The CRLs among a PEM input's blocks (a chain and its CRL in one file); none for DER, for
/// text that is not PEM, or for PEM without an `X509 CRL` block. A reader of certificates
/// calls it so that a CRL bundled with them is applied, not skipped unseen.
///
/// # Errors
/// As [`load_crls`]: a malformed `X509 CRL` block fails the whole input.
pub fn crls_among_pem(bytes: &[u8]) -> Result<Vec<Crl>, PkiError> {
    match core::str::from_utf8(bytes) {
        Ok(text) if crate::pem::is_pem(bytes) && text.contains("-----BEGIN X509 CRL-----") => {
            load_crls(bytes)
        }
        _ => Ok(Vec::new()),
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
        let mut reader = Reader::new(rest);
        let (_, first) = reader
            .take_whole(TAG_SEQUENCE)
            .ok_or_else(|| malformed("CertificateList"))?;
        out.push(Crl::from_der(first)?);
        rest = rest.get(first.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(PkiError::Der {
            what: "CRL",
            detail: String::from("empty input"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PublicKeyKind;
    use crate::builder::{IssuerKey, name};
    use crate::der::{self, TAG_BIT_STRING, TAG_BOOLEAN};
    use proptest::prelude::*;
    use std::path::{Path, PathBuf};
    use x509_parser::prelude::FromDer;
    use x509_parser::revocation_list::CertificateRevocationList;

    /// What a CRL parse yields, for comparing two parsers.
    type Fields = (
        Vec<u8>,
        Vec<u8>,
        String,
        i64,
        Option<i64>,
        Vec<Vec<u8>>,
        SignatureScheme,
        Vec<u8>,
    );

    fn fields(c: &Crl) -> Fields {
        (
            c.inner.tbs.to_vec(),
            c.inner.issuer.to_vec(),
            c.issuer().to_owned(),
            c.inner.this_update.as_secs(),
            c.inner.next_update.map(UnixTime::as_secs),
            c.inner.revoked.iter().map(|r| r.to_vec()).collect(),
            c.inner.scheme,
            c.inner.signature.to_vec(),
        )
    }

    /// The parse the walker replaced (x509-parser, with the checks `from_der` made on top), as
    /// the oracle: whatever the walker accepts, it must accept with the same values.
    fn reference(der: &[u8]) -> Option<Fields> {
        let (rest, crl) = CertificateRevocationList::from_der(der).ok()?;
        if !rest.is_empty() || der.len() > MAX_OBJECT_LEN {
            return None;
        }
        let tbs = &crl.tbs_cert_list;
        if crl.signature_algorithm != tbs.signature {
            return None;
        }
        let issuer_text = tbs.issuer.to_string();
        let scheme =
            SignatureScheme::from_algorithm(&crl.signature_algorithm, &issuer_text).ok()?;
        Some((
            tbs.as_ref().to_vec(),
            tbs.issuer.as_raw().to_vec(),
            issuer_text,
            crl.last_update().timestamp(),
            crl.next_update().map(|t| t.timestamp()),
            crl.iter_revoked_certificates()
                .map(|r| crate::normalize_serial(r.raw_serial()).to_vec())
                .collect(),
            scheme,
            crl.signature_value.data.to_vec(),
        ))
    }

    fn collect_crls(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                collect_crls(&path, out);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_lowercase();
            if !name.contains("crl") || name.ends_with(".json") || name.contains("chain") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let ders = if pem::is_pem(&bytes) {
                pem::decode_all(&bytes, "X509 CRL", "CRL").unwrap()
            } else {
                vec![bytes]
            };
            for der in ders {
                out.push((path.display().to_string(), der));
            }
        }
    }

    /// Every CRL among the real vectors (Intel PCK and root CA CRLs, AMD's), DER.
    fn real_crls() -> &'static [(String, Vec<u8>)] {
        static CRLS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
        CRLS.get_or_init(|| {
            let mut out = Vec::new();
            if let Some(dir) = crate::tests::vectors_dir() {
                collect_crls(&dir, &mut out);
            }
            out
        })
    }

    #[test]
    fn real_crls_parse_as_x509_parser_reads_them() {
        let crls = real_crls();
        for (name, der) in crls {
            let ours = Crl::from_der(der).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(Some(fields(&ours)), reference(der), "{name}");
            assert_eq!(ours.der(), &der[..]);
        }
        if crate::tests::vectors_dir().is_some() {
            assert!(crls.len() >= 20, "only {} CRLs found", crls.len());
            assert!(
                crls.iter()
                    .any(|(_, d)| reference(d).is_some_and(|f| f.5.len() > 50))
            );
        }
    }

    fn key() -> &'static IssuerKey {
        static KEY: std::sync::OnceLock<IssuerKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap())
    }

    /// A CRL with `tbs_parts` as the TBS elements, signed by the test key.
    fn crl_from_tbs(tbs_parts: &[Vec<u8>]) -> Vec<u8> {
        let alg = der::seq(&[&der::oid("1.2.840.10045.4.3.2").unwrap()]);
        let p: Vec<&[u8]> = tbs_parts.iter().map(Vec::as_slice).collect();
        let tbs = der::seq(&p);
        let sig = key().sign_x509(&tbs).unwrap();
        der::seq(&[&tbs, &alg, &der::bits(&sig)])
    }

    #[test]
    fn one_input_of_certificates_and_crls_yields_both() {
        use crate::builder::{CertificateSpec, issue_certificate};
        let spec = CertificateSpec {
            serial: vec![0x42],
            issuer: name(&[("2.5.4.3", "CA")]).unwrap(),
            subject: name(&[("2.5.4.3", "Leaf")]).unwrap(),
            not_before: UnixTime::from_secs(1_700_000_000),
            not_after: UnixTime::from_secs(1_800_000_000),
            ca: None,
            extensions: Vec::new(),
            pss_explicit_trailer: false,
        };
        let cert = issue_certificate(&spec, &key().spki_der().unwrap(), key()).unwrap();
        let crl = crl_from_tbs(&valid_tbs());
        let cert_pem = crate::to_pem("CERTIFICATE", &cert);
        let crl_pem = crate::to_pem("X509 CRL", &crl);
        let counts = |bytes: &[u8]| {
            load_certificates_and_crls(bytes).map(|(c, r)| {
                assert!(c.iter().all(|c| c.der() == &cert[..]));
                assert!(r.iter().all(|r| r.der() == &crl[..]));
                (c.len(), r.len())
            })
        };
        // Mixed PEM, in either order, with a block of another label between.
        let other = crate::to_pem("PUBLIC KEY", &[0x30, 0x00]);
        let mixed = format!("{cert_pem}{other}{crl_pem}{cert_pem}");
        assert_eq!(counts(mixed.as_bytes()).unwrap(), (2, 1));
        assert_eq!(crate::load_certificates(mixed.as_bytes()).unwrap().len(), 2);
        assert_eq!(load_crls(mixed.as_bytes()).unwrap().len(), 1);
        let mixed = format!("{crl_pem}{cert_pem}");
        assert_eq!(counts(mixed.as_bytes()).unwrap(), (1, 1));
        // One kind alone, PEM or DER.
        assert_eq!(counts(cert_pem.as_bytes()).unwrap(), (1, 0));
        assert_eq!(counts(crl_pem.as_bytes()).unwrap(), (0, 1));
        assert_eq!(counts(&cert).unwrap(), (1, 0));
        assert_eq!(counts(&crl).unwrap(), (0, 1));
        // A broken block of either kind fails the whole input, as does PEM holding neither.
        let broken_crl = crate::to_pem("X509 CRL", &crl[..crl.len() - 1]);
        assert!(counts(format!("{cert_pem}{broken_crl}").as_bytes()).is_err());
        let broken_cert = crate::to_pem("CERTIFICATE", &cert[..cert.len() - 1]);
        assert!(counts(format!("{broken_cert}{crl_pem}").as_bytes()).is_err());
        assert!(matches!(
            counts(other.as_bytes()),
            Err(PkiError::Pem { .. })
        ));
        assert!(counts(b"neither").is_err());
        assert!(counts(b"").is_err());
    }

    fn utc(s: &str) -> Vec<u8> {
        der::tlv(TAG_UTC_TIME, s.as_bytes())
    }

    fn extension(critical: Option<&[u8]>) -> Vec<u8> {
        let mut parts = vec![der::oid("2.5.29.20").unwrap()];
        if let Some(b) = critical {
            parts.push(der::tlv(TAG_BOOLEAN, b));
        }
        parts.push(der::octets(&der::uint_u64(7)));
        let p: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        der::seq(&p)
    }

    /// TBS elements of a valid CRL with one revoked entry and CRL extensions.
    fn valid_tbs() -> Vec<Vec<u8>> {
        vec![
            der::uint_u64(1),
            der::seq(&[&der::oid("1.2.840.10045.4.3.2").unwrap()]),
            name(&[("2.5.4.3", "CA")]).unwrap(),
            utc("250902070351Z"),
            utc("251002070351Z"),
            der::seq(&[&der::seq(&[
                &der::uint(&[0x6f, 0xc3]),
                &utc("250902070351Z"),
                &der::seq(&[&extension(None)]),
            ])]),
            der::explicit(0, &der::seq(&[&extension(Some(&[0x00]))])),
        ]
    }

    /// An extension with `oid`, optionally critical, and an arbitrary value.
    fn extension_with(oid: &str, critical: bool) -> Vec<u8> {
        let value = der::octets(&der::seq(&[]));
        if critical {
            der::seq(&[
                &der::oid(oid).unwrap(),
                &der::tlv(TAG_BOOLEAN, &[0xff]),
                &value,
            ])
        } else {
            der::seq(&[&der::oid(oid).unwrap(), &value])
        }
    }

    #[test]
    fn extensions_that_change_the_meaning_make_the_crl_unusable() {
        let crl_extensions = |exts: &[Vec<u8>]| {
            let mut tbs = valid_tbs();
            let e: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
            tbs[6] = der::explicit(0, &der::seq(&e));
            Crl::from_der(&crl_from_tbs(&tbs))
        };
        let entry_extensions = |exts: &[Vec<u8>]| {
            let mut tbs = valid_tbs();
            let e: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
            let entry = der::seq(&[&der::uint(&[1]), &utc("250901000000Z"), &der::seq(&e)]);
            tbs[5] = der::seq(&[&entry]);
            Crl::from_der(&crl_from_tbs(&tbs))
        };
        let unusable = |r: Result<Crl, PkiError>, want_field: &str, want_oid: &str| match r {
            Err(PkiError::CrlUnusable { field, oid, .. }) => {
                assert_eq!((field.as_str(), oid.as_str()), (want_field, want_oid));
            }
            other => panic!("{want_field} {want_oid}: {other:?}"),
        };
        // Non-critical extensions that do not change the meaning are accepted (as in Intel's
        // and AMD's CRLs: cRLNumber, authorityKeyIdentifier, reasonCode).
        let fine = [
            extension_with("2.5.29.20", false),
            extension_with("2.5.29.35", false),
        ];
        assert!(crl_extensions(&fine).is_ok());
        assert!(entry_extensions(&[extension_with("2.5.29.21", false)]).is_ok());
        // Critical: CRL level (even a known-harmless OID) and entry level (certificateIssuer).
        unusable(
            crl_extensions(&[extension_with("2.5.29.20", true)]),
            "crlExtensions",
            "2.5.29.20",
        );
        unusable(
            crl_extensions(&[fine[0].clone(), extension_with("1.2.3.4", true)]),
            "crlExtensions",
            "1.2.3.4",
        );
        unusable(
            entry_extensions(&[extension_with("2.5.29.29", true)]),
            "revokedCertificates[0].crlEntryExtensions",
            "2.5.29.29",
        );
        // Delta CRLs and scoped CRLs, critical or not.
        for critical in [false, true] {
            unusable(
                crl_extensions(&[extension_with("2.5.29.27", critical)]),
                "crlExtensions",
                "2.5.29.27",
            );
            unusable(
                crl_extensions(&[extension_with("2.5.29.28", critical)]),
                "crlExtensions",
                "2.5.29.28",
            );
        }
        // Duplicates, and the bound on the count.
        unusable(
            crl_extensions(&[fine[0].clone(), fine[1].clone(), fine[0].clone()]),
            "crlExtensions",
            "2.5.29.20",
        );
        let many: Vec<Vec<u8>> = (0..=MAX_EXTENSIONS)
            .map(|i| extension_with(&format!("1.2.3.{i}"), false))
            .collect();
        assert!(crl_extensions(&many[..MAX_EXTENSIONS]).is_ok());
        assert!(matches!(
            crl_extensions(&many),
            Err(PkiError::TooLarge { .. })
        ));
    }

    #[test]
    fn walker_reads_every_element() {
        let der = crl_from_tbs(&valid_tbs());
        let crl = Crl::from_der(&der).unwrap();
        assert_eq!(Some(fields(&crl)), reference(&der));
        assert_eq!(crl.issuer(), "CN=CA");
        assert_eq!(crl.this_update().as_secs(), 1_756_796_631);
        assert_eq!(
            crl.next_update().map(UnixTime::as_secs),
            Some(1_759_388_631)
        );
        assert!(crl.is_revoked(&[0x00, 0x6f, 0xc3]));
        assert!(!crl.is_revoked(&[0x6f]));
        crl.verify_signed_by_key_for_tests();
        // Optional elements may be left out: version, nextUpdate, revokedCertificates,
        // crlExtensions, entry extensions.
        let mut minimal = valid_tbs();
        minimal.remove(6);
        minimal.remove(5);
        minimal.remove(4);
        minimal.remove(0);
        let crl = Crl::from_der(&crl_from_tbs(&minimal)).unwrap();
        assert_eq!(crl.next_update(), None);
        assert!(crl.revoked_serials().is_empty());
    }

    impl Crl {
        /// The signature is over the exact TBS bytes.
        fn verify_signed_by_key_for_tests(&self) {
            let key = key().public_key();
            crate::backend::IssuerKey::default()
                .verify(
                    self.inner.scheme,
                    &key,
                    &self.inner.tbs,
                    &self.inner.signature,
                )
                .unwrap();
        }
    }

    #[test]
    fn walker_rejects_malformed_elements() {
        type Edit = fn(&mut Vec<Vec<u8>>);
        let cases: [(Edit, &str); 14] = [
            (|t| t[0] = der::uint_u64(2), "version"),
            (|t| t[0] = der::uint_u64(0), "version"),
            (|t| t[3] = utc("250230070351Z"), "thisUpdate"),
            (|t| t[3] = utc("2509020703Z"), "thisUpdate"),
            (|t| t[4] = utc("251002070351+0000"), "nextUpdate"),
            (|t| t[3] = der::octets(b"250902070351Z"), "thisUpdate"),
            (
                |t| t[5] = der::seq(&[&der::seq(&[&der::uint(&[1]), &utc("250931000000Z")])]),
                "revokedCertificates[0].revocationDate",
            ),
            (
                |t| {
                    t[5] = der::seq(&[&der::seq(&[
                        &der::tlv(TAG_INTEGER, &[]),
                        &utc("250901000000Z"),
                    ])])
                },
                "revokedCertificates[0].userCertificate",
            ),
            (
                |t| {
                    let ok = der::seq(&[&der::uint(&[1]), &utc("250901000000Z")]);
                    let extra = der::seq(&[&der::uint(&[2]), &utc("250901000000Z"), &der::null()]);
                    t[5] = der::seq(&[&ok, &extra]);
                },
                "revokedCertificates[1] (trailing elements)",
            ),
            (
                |t| {
                    let entry = der::seq(&[
                        &der::uint(&[1]),
                        &utc("250901000000Z"),
                        &der::seq(&[&der::seq(&[&der::oid("2.5.29.21").unwrap()])]),
                    ]);
                    t[5] = der::seq(&[&entry]);
                },
                "revokedCertificates[0].crlEntryExtensions",
            ),
            (
                |t| t[6] = der::explicit(0, &der::seq(&[&extension(Some(&[0xff, 0xff]))])),
                "crlExtensions",
            ),
            (
                |t| t[6] = der::explicit(0, &[der::seq(&[&extension(None)]), der::null()].concat()),
                "crlExtensions",
            ),
            (|t| t.push(der::null()), "tbsCertList (trailing elements)"),
            (|t| t[2] = der::seq(&[&der::null()]), "issuer"),
        ];
        for (edit, field) in cases {
            let mut tbs = valid_tbs();
            edit(&mut tbs);
            let err = Crl::from_der(&crl_from_tbs(&tbs)).unwrap_err();
            assert!(
                matches!(&err, PkiError::Der { detail, .. } if detail.starts_with(field)),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn outer_structure_and_signature_algorithm() {
        let good = crl_from_tbs(&valid_tbs());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            Crl::from_der(&trailing),
            Err(PkiError::Der { .. })
        ));
        // Rebuild the outer SEQUENCE with a changed element.
        let mut outer = der::Reader::new(&good);
        let list = outer.take(TAG_SEQUENCE).unwrap();
        let mut list = der::Reader::new(list);
        let (_, tbs) = list.take_whole(TAG_SEQUENCE).unwrap();
        let (_, alg) = list.take_whole(TAG_SEQUENCE).unwrap();
        let (_, bits) = list.take_whole(TAG_BIT_STRING).unwrap();
        let rebuild = |parts: &[&[u8]]| der::seq(parts);
        assert_eq!(
            Crl::from_der(&rebuild(&[tbs, alg, bits])).unwrap().der(),
            &good[..]
        );
        // The unsigned outer algorithm must be the signed one, byte for byte (here NULL
        // parameters added, which names the same algorithm to a lenient reader).
        let alg_with_null = der::seq(&[&der::oid("1.2.840.10045.4.3.2").unwrap(), &der::null()]);
        assert!(matches!(
            Crl::from_der(&rebuild(&[tbs, &alg_with_null, bits])),
            Err(PkiError::UnsupportedSignatureAlgorithm { .. })
        ));
        // A BIT STRING with unused bits is not a signature.
        let mut odd_bits = bits.to_vec();
        odd_bits[if bits[1] & 0x80 != 0 { 3 } else { 2 }] = 1;
        assert!(matches!(
            Crl::from_der(&rebuild(&[tbs, alg, &odd_bits])),
            Err(PkiError::Der { detail, .. }) if detail.starts_with("signatureValue")
        ));
        for (parts, field) in [
            (&[tbs, alg][..], "signatureValue"),
            (
                &[tbs, alg, bits, &der::null()],
                "CertificateList (trailing elements)",
            ),
            (&[tbs], "signatureAlgorithm"),
            (&[], "tbsCertList"),
        ] {
            assert!(
                matches!(Crl::from_der(&rebuild(parts)), Err(PkiError::Der { detail, .. }) if detail.starts_with(field)),
                "{field}"
            );
        }
        // An unsupported algorithm is named.
        let md5 = der::seq(&[&der::oid("1.2.840.113549.1.1.4").unwrap(), &der::null()]);
        let mut tbs_md5 = valid_tbs();
        tbs_md5[1] = md5.clone();
        let p: Vec<&[u8]> = tbs_md5.iter().map(Vec::as_slice).collect();
        let signed_md5 = der::seq(&p);
        assert!(matches!(
            Crl::from_der(&rebuild(&[&signed_md5, &md5, bits])),
            Err(PkiError::UnsupportedSignatureAlgorithm { .. })
        ));
        assert!(matches!(
            Crl::from_der(&vec![0u8; MAX_OBJECT_LEN + 1]),
            Err(PkiError::TooLarge { .. })
        ));
    }

    #[test]
    fn concatenated_der_crls_load() {
        let one = crl_from_tbs(&valid_tbs());
        let mut minimal = valid_tbs();
        minimal.truncate(4);
        let two = crl_from_tbs(&minimal);
        let both = [one.clone(), two.clone()].concat();
        let crls = load_crls(&both).unwrap();
        assert_eq!(crls.len(), 2);
        assert_eq!((crls[0].der(), crls[1].der()), (&one[..], &two[..]));
        assert!(load_crls(&both[..both.len() - 1]).is_err());
        assert!(load_crls(b"").is_err());
    }

    proptest! {
        /// Real CRLs with a few bytes changed: the walker never panics, and whatever it accepts
        /// x509-parser (the parser it replaced) accepts with the same values, so no check was lost.
        #[test]
        fn mutated_real_crls_are_read_no_more_leniently(
            pick in any::<proptest::sample::Index>(),
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let crls = real_crls();
            if crls.is_empty() {
                return Ok(());
            }
            let mut der = crls[pick.index(crls.len())].1.clone();
            for (at, value) in &edits {
                let i = at.index(der.len());
                der[i] = *value;
            }
            if let Ok(ours) = Crl::from_der(&der) {
                prop_assert_eq!(Some(fields(&ours)), reference(&der));
            }
        }

        /// Arbitrary structure from the builder's pieces: never a panic, never more lenient.
        #[test]
        fn generated_crls_are_read_no_more_leniently(
            serials in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..5), 0..4),
            drop_next in any::<bool>(),
            junk in proptest::collection::vec(any::<u8>(), 0..6),
            junk_at in 0usize..8,
        ) {
            let mut tbs = valid_tbs();
            let entries: Vec<Vec<u8>> = serials
                .iter()
                .map(|s| der::seq(&[&der::tlv(TAG_INTEGER, s), &utc("250901000000Z")]))
                .collect();
            let e: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
            tbs[5] = der::seq(&e);
            if drop_next {
                tbs.remove(4);
            }
            let at = junk_at.min(tbs.len());
            if !junk.is_empty() {
                tbs.insert(at, junk);
            }
            let der = crl_from_tbs(&tbs);
            if let Ok(ours) = Crl::from_der(&der) {
                prop_assert_eq!(Some(fields(&ours)), reference(&der));
            }
        }
    }
}
