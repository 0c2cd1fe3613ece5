//! Issuing certificates and CRLs with generated keys, for simulators and tests — never for trust.
//!
//! A small DER writer and the few structures a fake vendor PKI needs (RSASSA-PSS roots, ECDSA
//! leaves, custom extensions, CRLs). Whatever it issues is trusted only where a caller passes
//! it through an API named `dangerous`/`test`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};

use crate::Certificate;
use crate::cert::{PublicKey, PublicKeyKind};
use crate::der;
use crate::{PkiError, UnixTime};

fn oid(dotted: &str) -> Result<Vec<u8>, PkiError> {
    der::oid(dotted).ok_or(PkiError::Builder("malformed OID"))
}

fn time(t: UnixTime) -> Result<Vec<u8>, PkiError> {
    let dt = ::time::OffsetDateTime::from_unix_timestamp(t.as_secs())
        .map_err(|_| PkiError::Builder("time out of range"))?;
    let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
    let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
    Ok(if (1950..2050).contains(&y) {
        der::tlv(
            0x17,
            format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100).as_bytes(),
        )
    } else {
        der::tlv(
            0x18,
            format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z").as_bytes(),
        )
    })
}

/// A distinguished name from `(attribute OID, UTF8String value)` pairs, one RDN each.
///
/// # Errors
/// [`PkiError::Builder`] for a malformed OID.
pub fn name(attrs: &[(&str, &str)]) -> Result<Vec<u8>, PkiError> {
    let mut rdns = Vec::new();
    for (o, v) in attrs {
        rdns.push(der::set(&[&der::seq(&[&oid(o)?, &der::utf8(v)])]));
    }
    let parts: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
    Ok(der::seq(&parts))
}

/// A generated signing key of a fake CA or endorsement key.
pub enum IssuerKey {
    /// RSA, signing with RSASSA-PSS SHA-384 (salt 48), as AMD's ARK and ASK do.
    RsaPss(RsaKeyPair),
    /// ECDSA P-256 (SHA-256).
    EcdsaP256 {
        /// The key, set up for ASN.1 (X.509) signatures.
        asn1: EcdsaKeyPair,
        /// The same key, set up for fixed-width `r || s` signatures.
        fixed: EcdsaKeyPair,
    },
    /// ECDSA P-384 (SHA-384).
    EcdsaP384 {
        /// The key, set up for ASN.1 (X.509) signatures.
        asn1: EcdsaKeyPair,
        /// The same key, set up for fixed-width `r || s` signatures.
        fixed: EcdsaKeyPair,
    },
}

impl core::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::RsaPss(_) => "IssuerKey::RsaPss",
            Self::EcdsaP256 { .. } => "IssuerKey::EcdsaP256",
            Self::EcdsaP384 { .. } => "IssuerKey::EcdsaP384",
        })
    }
}

const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";

impl IssuerKey {
    /// Generate an RSA key of 2048, 3072 or 4096 bits.
    ///
    /// # Errors
    /// [`PkiError::Builder`] for another size or a backend failure.
    pub fn generate_rsa(bits: usize) -> Result<Self, PkiError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => return Err(PkiError::Builder("RSA size must be 2048, 3072 or 4096")),
        };
        RsaKeyPair::generate(size)
            .map(Self::RsaPss)
            .map_err(|_| PkiError::Builder("RSA keygen"))
    }

    /// Generate an ECDSA key on P-256 or P-384.
    ///
    /// # Errors
    /// [`PkiError::Builder`] for another curve or a backend failure.
    pub fn generate_ec(kind: PublicKeyKind) -> Result<Self, PkiError> {
        let (asn1_alg, fixed_alg) = match kind {
            PublicKeyKind::EcP256 => (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            ),
            PublicKeyKind::EcP384 => (
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            ),
            PublicKeyKind::Rsa { .. } => return Err(PkiError::Builder("not an EC kind")),
        };
        let asn1 = EcdsaKeyPair::generate(asn1_alg).map_err(|_| PkiError::Builder("EC keygen"))?;
        let pkcs8 = asn1
            .to_pkcs8v1()
            .map_err(|_| PkiError::Builder("EC export"))?;
        let fixed = EcdsaKeyPair::from_pkcs8(fixed_alg, pkcs8.as_ref())
            .map_err(|_| PkiError::Builder("EC import"))?;
        Ok(match kind {
            PublicKeyKind::EcP256 => Self::EcdsaP256 { asn1, fixed },
            _ => Self::EcdsaP384 { asn1, fixed },
        })
    }

    /// The private key as PKCS#8 DER, to keep a simulator's fake PKI on disk between runs
    /// (`tessera sim --pki DIR`). Only simulator keys are ever built here.
    ///
    /// # Errors
    /// [`PkiError::Builder`] on a backend failure.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, PkiError> {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        match self {
            Self::RsaPss(k) => AsDer::<Pkcs8V1Der<'static>>::as_der(k)
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| PkiError::Builder("RSA export")),
            Self::EcdsaP256 { asn1, .. } | Self::EcdsaP384 { asn1, .. } => asn1
                .to_pkcs8v1()
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| PkiError::Builder("EC export")),
        }
    }

    /// A key from PKCS#8 DER written by [`IssuerKey::to_pkcs8_der`]: RSA (2048 to 4096 bits),
    /// ECDSA P-256 or P-384.
    ///
    /// # Errors
    /// [`PkiError::Builder`] when the bytes are no such key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
            return Ok(Self::RsaPss(k));
        }
        let pair = |asn1_alg, fixed_alg| -> Option<(EcdsaKeyPair, EcdsaKeyPair)> {
            let asn1 = EcdsaKeyPair::from_pkcs8(asn1_alg, der).ok()?;
            let fixed = EcdsaKeyPair::from_pkcs8(fixed_alg, der).ok()?;
            Some((asn1, fixed))
        };
        if let Some((asn1, fixed)) = pair(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ) {
            return Ok(Self::EcdsaP256 { asn1, fixed });
        }
        if let Some((asn1, fixed)) = pair(
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        ) {
            return Ok(Self::EcdsaP384 { asn1, fixed });
        }
        Err(PkiError::Builder("not a PKCS#8 RSA, P-256 or P-384 key"))
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::RsaPss(k) => PublicKey::from_raw(
                PublicKeyKind::Rsa {
                    bits: k.public_modulus_len() * 8,
                },
                k.public_key().as_ref(),
            ),
            Self::EcdsaP256 { asn1, .. } => {
                PublicKey::from_raw(PublicKeyKind::EcP256, asn1.public_key().as_ref())
            }
            Self::EcdsaP384 { asn1, .. } => {
                PublicKey::from_raw(PublicKeyKind::EcP384, asn1.public_key().as_ref())
            }
        }
    }

    /// The SubjectPublicKeyInfo, DER.
    ///
    /// # Errors
    /// [`PkiError::Builder`] (malformed OID constant; does not happen).
    pub fn spki_der(&self) -> Result<Vec<u8>, PkiError> {
        let key = self.public_key();
        let alg = match key.kind() {
            PublicKeyKind::Rsa { .. } => der::seq(&[&oid("1.2.840.113549.1.1.1")?, &der::null()]),
            PublicKeyKind::EcP256 => {
                der::seq(&[&oid("1.2.840.10045.2.1")?, &oid("1.2.840.10045.3.1.7")?])
            }
            PublicKeyKind::EcP384 => der::seq(&[&oid("1.2.840.10045.2.1")?, &oid("1.3.132.0.34")?]),
        };
        Ok(der::seq(&[&alg, &der::bits(key.raw())]))
    }

    /// The AlgorithmIdentifier this key signs certificates and CRLs with.
    fn algorithm_der(&self, pss_explicit_trailer: bool) -> Result<Vec<u8>, PkiError> {
        Ok(match self {
            Self::RsaPss(_) => {
                let sha384 = der::seq(&[&oid("2.16.840.1.101.3.4.2.2")?]);
                let mgf = der::seq(&[&oid("1.2.840.113549.1.1.8")?, &sha384]);
                let mut params = vec![
                    der::explicit(0, &sha384),
                    der::explicit(1, &mgf),
                    der::explicit(2, &der::uint_u64(48)),
                ];
                if pss_explicit_trailer {
                    params.push(der::explicit(3, &der::uint_u64(1)));
                }
                let p: Vec<&[u8]> = params.iter().map(Vec::as_slice).collect();
                der::seq(&[&oid(OID_RSASSA_PSS)?, &der::seq(&p)])
            }
            Self::EcdsaP256 { .. } => der::seq(&[&oid("1.2.840.10045.4.3.2")?]),
            Self::EcdsaP384 { .. } => der::seq(&[&oid("1.2.840.10045.4.3.3")?]),
        })
    }

    pub(crate) fn sign_x509(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        let rng = SystemRandom::new();
        match self {
            Self::RsaPss(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PSS_SHA384, &rng, msg, &mut sig)
                    .map_err(|_| PkiError::Builder("RSA-PSS sign"))?;
                Ok(sig)
            }
            Self::EcdsaP256 { asn1, .. } | Self::EcdsaP384 { asn1, .. } => asn1
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| PkiError::Builder("ECDSA sign")),
        }
    }

    /// Sign `msg` with a fixed-width big-endian `r || s` ECDSA signature (evidence style).
    ///
    /// # Errors
    /// [`PkiError::Builder`] for an RSA key or a backend failure.
    pub fn sign_fixed(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        let rng = SystemRandom::new();
        match self {
            Self::EcdsaP256 { fixed, .. } | Self::EcdsaP384 { fixed, .. } => fixed
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| PkiError::Builder("ECDSA sign")),
            Self::RsaPss(_) => Err(PkiError::Builder("fixed signatures need an EC key")),
        }
    }
}

/// A simulator CA's certificate with its private key (PKCS#8 DER), as a simulator exports it to
/// keep its fake PKI on disk, and imports it again.
pub struct KeyedCertificate {
    /// The certificate.
    pub certificate: Certificate,
    /// The private key, PKCS#8 DER (zeroized on drop).
    pub key_pkcs8: zeroize::Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for KeyedCertificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyedCertificate")
            .field("certificate", &self.certificate.subject())
            .finish_non_exhaustive()
    }
}

impl KeyedCertificate {
    /// Pair `certificate` with `key`.
    ///
    /// # Errors
    /// [`PkiError::Builder`] when the key cannot be exported.
    pub fn new(certificate: &Certificate, key: &IssuerKey) -> Result<Self, PkiError> {
        Ok(Self {
            certificate: certificate.clone(),
            key_pkcs8: zeroize::Zeroizing::new(key.to_pkcs8_der()?),
        })
    }

    /// The key, checked to be the certificate's: a directory whose files were mixed up or
    /// replaced one by one is refused here.
    ///
    /// # Errors
    /// [`PkiError::Builder`] when the key does not parse or is not the certificate's key.
    pub fn key(&self) -> Result<IssuerKey, PkiError> {
        let key = IssuerKey::from_pkcs8_der(&self.key_pkcs8)?;
        if key.public_key().raw() != self.certificate.public_key().raw() {
            return Err(PkiError::Builder(
                "the private key is not the certificate's key",
            ));
        }
        Ok(key)
    }
}

/// What goes into an issued certificate.
#[derive(Clone, Debug)]
pub struct CertificateSpec {
    /// Serial number, unsigned big-endian (may be zero, as AMD's VCEKs are).
    pub serial: Vec<u8>,
    /// Issuer name DER (see [`name`]).
    pub issuer: Vec<u8>,
    /// Subject name DER.
    pub subject: Vec<u8>,
    /// notBefore.
    pub not_before: UnixTime,
    /// notAfter.
    pub not_after: UnixTime,
    /// `Some(ca)` adds a critical basicConstraints; `None` omits it.
    pub ca: Option<bool>,
    /// Extensions: dotted OID, critical, extnValue contents.
    pub extensions: Vec<(String, bool, Vec<u8>)>,
    /// With RSASSA-PSS, write the (default) trailerField explicitly, as Azure THIM does.
    pub pss_explicit_trailer: bool,
}

/// A critical basicConstraints for [`CertificateSpec::extensions`]: cA and, when given, a
/// pathLenConstraint (as Intel's and AMD's CAs carry).
#[must_use]
pub fn basic_constraints_extension(ca: bool, path_len: Option<u64>) -> (String, bool, Vec<u8>) {
    let mut parts = vec![der::boolean(ca)];
    parts.extend(path_len.map(der::uint_u64));
    let p: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    (String::from("2.5.29.19"), true, der::seq(&p))
}

/// A critical keyUsage for [`CertificateSpec::extensions`] with bits 0 to 7 given as one byte
/// (bit 0, digitalSignature, is 0x80; keyCertSign 0x04; cRLSign 0x02). Intel's CAs carry 0x06,
/// its PCK and TCB Signing certificates 0xC0.
#[must_use]
pub fn key_usage_extension(bits: u8) -> (String, bool, Vec<u8>) {
    // DER: the unused trailing bits are counted (at most 7; an empty usage is one zero byte).
    let unused = if bits == 0 {
        7
    } else {
        u8::try_from(bits.trailing_zeros()).unwrap_or(0)
    };
    (
        String::from("2.5.29.15"),
        true,
        der::tlv(0x03, &[unused, bits]),
    )
}

/// Issue a certificate for the subject key `subject_spki` (DER), signed by `issuer_key`.
///
/// # Errors
/// [`PkiError::Builder`] on backend failure or malformed OIDs.
pub fn issue_certificate(
    spec: &CertificateSpec,
    subject_spki: &[u8],
    issuer_key: &IssuerKey,
) -> Result<Vec<u8>, PkiError> {
    let alg = issuer_key.algorithm_der(spec.pss_explicit_trailer)?;
    let mut exts = Vec::new();
    if let Some(ca) = spec.ca {
        let bc = if ca {
            der::seq(&[&der::boolean(true)])
        } else {
            der::seq(&[])
        };
        exts.push(der::seq(&[
            &oid("2.5.29.19")?,
            &der::boolean(true),
            &der::octets(&bc),
        ]));
    }
    for (o, critical, value) in &spec.extensions {
        let mut parts = vec![oid(o)?];
        if *critical {
            parts.push(der::boolean(true));
        }
        parts.push(der::octets(value));
        let p: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        exts.push(der::seq(&p));
    }
    let ext_refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
    let validity = der::seq(&[&time(spec.not_before)?, &time(spec.not_after)?]);
    let mut tbs_parts: Vec<Vec<u8>> = vec![
        der::explicit(0, &der::uint_u64(2)),
        der::uint(&spec.serial),
        alg.clone(),
        spec.issuer.clone(),
        validity,
        spec.subject.clone(),
        subject_spki.to_vec(),
    ];
    if !exts.is_empty() {
        tbs_parts.push(der::explicit(3, &der::seq(&ext_refs)));
    }
    let t: Vec<&[u8]> = tbs_parts.iter().map(Vec::as_slice).collect();
    let tbs = der::seq(&t);
    let sig = issuer_key.sign_x509(&tbs)?;
    Ok(der::seq(&[&tbs, &alg, &der::bits(&sig)]))
}

/// What goes into an issued CRL.
#[derive(Clone, Debug)]
pub struct CrlSpec {
    /// Issuer name DER.
    pub issuer: Vec<u8>,
    /// thisUpdate.
    pub this_update: UnixTime,
    /// nextUpdate (`None` omits it).
    pub next_update: Option<UnixTime>,
    /// Revoked serial numbers, unsigned big-endian.
    pub revoked: Vec<Vec<u8>>,
}

/// Issue a CRL signed by `issuer_key`.
///
/// # Errors
/// [`PkiError::Builder`] on backend failure.
pub fn issue_crl(spec: &CrlSpec, issuer_key: &IssuerKey) -> Result<Vec<u8>, PkiError> {
    let alg = issuer_key.algorithm_der(false)?;
    let mut parts = vec![
        der::uint_u64(1),
        alg.clone(),
        spec.issuer.clone(),
        time(spec.this_update)?,
    ];
    if let Some(next) = spec.next_update {
        parts.push(time(next)?);
    }
    if !spec.revoked.is_empty() {
        let mut entries = Vec::new();
        for serial in &spec.revoked {
            entries.push(der::seq(&[&der::uint(serial), &time(spec.this_update)?]));
        }
        let e: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        parts.push(der::seq(&e));
    }
    let p: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let tbs = der::seq(&p);
    let sig = issuer_key.sign_x509(&tbs)?;
    Ok(der::seq(&[&tbs, &alg, &der::bits(&sig)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Budget, Certificate, Crl, verify_issued_by};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn key() -> &'static IssuerKey {
        static KEY: OnceLock<IssuerKey> = OnceLock::new();
        KEY.get_or_init(|| IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap())
    }

    /// The outer signatureAlgorithm is not signed: a certificate whose outer copy differs from
    /// the TBS `signature` field (here its OID tag rewritten, which a lenient parser reads as
    /// the same OID) must not parse, so one certificate has one encoding.
    #[test]
    fn outer_signature_algorithm_must_equal_the_tbs_one() {
        let subject = name(&[("2.5.4.3", "Outer")]).unwrap();
        let spec = CertificateSpec {
            serial: vec![1],
            issuer: subject.clone(),
            subject,
            not_before: UnixTime::from_secs(0),
            not_after: UnixTime::from_secs(1_000_000),
            ca: Some(true),
            extensions: vec![],
            pss_explicit_trailer: false,
        };
        let der = issue_certificate(&spec, &key().spki_der().unwrap(), key()).unwrap();
        Certificate::from_der(&der).unwrap();
        // The outer AlgorithmIdentifier is the last `30 0a 06 08` (ecdsa-with-SHA256).
        let at = der
            .windows(4)
            .rposition(|w| w == [0x30, 0x0a, 0x06, 0x08])
            .unwrap();
        for (offset, value) in [(at + 2, 0x05u8), (at + 11, 0x03)] {
            let mut bad = der.clone();
            bad[offset] = value;
            assert!(Certificate::from_der(&bad).is_err(), "offset {offset}");
        }
    }

    /// A key written with `to_pkcs8_der` comes back as the same key of the same kind, and
    /// bytes that are no key are refused.
    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        for key in [
            IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap(),
            IssuerKey::generate_ec(PublicKeyKind::EcP384).unwrap(),
            IssuerKey::generate_rsa(2048).unwrap(),
        ] {
            let der = key.to_pkcs8_der().unwrap();
            let back = IssuerKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(back.spki_der().unwrap(), key.spki_der().unwrap());
            assert_eq!(format!("{back:?}"), format!("{key:?}"));
        }
        assert!(IssuerKey::from_pkcs8_der(b"").is_err());
        let mut der = key().to_pkcs8_der().unwrap();
        der.truncate(der.len() / 2);
        assert!(IssuerKey::from_pkcs8_der(&der).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Issue then parse: serial, names, validity and signature survive the round trip.
        #[test]
        fn certificate_round_trip(
            serial in proptest::collection::vec(any::<u8>(), 1..20),
            nb in -631_152_000i64..4_102_444_800,
            span in 0i64..1_000_000_000,
            cn in "[A-Za-z0-9 -]{1,40}",
        ) {
            let subject = name(&[("2.5.4.3", &cn)]).unwrap();
            let spec = CertificateSpec {
                serial: serial.clone(),
                issuer: subject.clone(),
                subject,
                not_before: UnixTime::from_secs(nb),
                not_after: UnixTime::from_secs(nb + span),
                ca: Some(true),
                extensions: vec![(String::from("1.3.6.1.4.1.3704.1.2"), false, der::ia5("x"))],
                pss_explicit_trailer: false,
            };
            let der = issue_certificate(&spec, &key().spki_der().unwrap(), key()).unwrap();
            let cert = Certificate::from_der(&der).unwrap();
            prop_assert_eq!(crate::normalize_serial(cert.serial()), crate::normalize_serial(&serial));
            prop_assert_eq!(cert.not_before().as_secs(), nb);
            prop_assert_eq!(cert.not_after().as_secs(), nb + span);
            prop_assert_eq!(cert.subject(), format!("CN={cn}"));
            prop_assert_eq!(cert.der(), &der[..]);
            prop_assert!(verify_issued_by(&cert, &cert, &mut Budget::default()).is_ok());
            let ext = cert.extension("1.3.6.1.4.1.3704.1.2").unwrap();
            prop_assert_eq!(&ext.value[..], &der::ia5("x")[..]);
        }

        /// Issue then parse a CRL: window and revoked serials survive.
        #[test]
        fn crl_round_trip(
            serials in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..10), 0..8),
            this in 0i64..2_000_000_000,
        ) {
            let spec = CrlSpec {
                issuer: name(&[("2.5.4.3", "CA")]).unwrap(),
                this_update: UnixTime::from_secs(this),
                next_update: Some(UnixTime::from_secs(this + 86_400)),
                revoked: serials.clone(),
            };
            let crl = Crl::from_der(&issue_crl(&spec, key()).unwrap()).unwrap();
            prop_assert_eq!(crl.this_update().as_secs(), this);
            prop_assert_eq!(crl.revoked_serials().len(), serials.len());
            for s in &serials {
                prop_assert!(crl.is_revoked(s));
            }
        }
    }
}
