//! AMD's certificates: the embedded per-product roots and the VCEK/VLEK TCB extensions.
//!
//! Extension OIDs (arc 1.3.6.1.4.1.3704.1) are from AMD's "Versioned Chip Endorsement Key (VCEK)
//! Certificate and KDS Interface Specification" (57230); values may be DER INTEGERs or an
//! OCTET STRING wrapping one, and both are accepted.

use tessera_pki::{Certificate, PublicKeyKind, der, load_certificates};

use crate::SnpError;
use crate::abi::{Product, TcbParts};

/// structVersion.
pub const OID_STRUCT_VERSION: &str = "1.3.6.1.4.1.3704.1.1";
/// productName (e.g. `Milan-B0`).
pub const OID_PRODUCT_NAME: &str = "1.3.6.1.4.1.3704.1.2";
/// blSPL.
pub const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
/// teeSPL.
pub const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
/// snpSPL.
pub const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
/// ucodeSPL.
pub const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
/// fmcSPL (Turin).
pub const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
/// hwID (VCEK only): 64 bytes, or 8 on Turin.
pub const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";
/// cspID (VLEK only).
pub const OID_CSP_ID: &str = "1.3.6.1.4.1.3704.1.5";

/// Which versioned endorsement key a certificate holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VekKind {
    /// Versioned Chip Endorsement Key: one per chip and TCB, carries the hwID.
    Vcek,
    /// Versioned Loaded Endorsement Key: provisioned by a cloud provider, carries its cspID.
    Vlek,
}

impl VekKind {
    /// `VCEK` or `VLEK`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
        }
    }
}

/// The AMD extensions of a VCEK or VLEK certificate, decoded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VekExtensions {
    /// structVersion, when present.
    pub struct_version: Option<u64>,
    /// productName, when present (`Milan-B0`, `Genoa`, ...).
    pub product_name: Option<String>,
    /// The TCB the key was derived for (fmc only when the certificate has fmcSPL).
    pub tcb: TcbParts,
    /// hwID (VCEK): 64 bytes, or 8 on Turin.
    #[serde(serialize_with = "crate::claims::hex_opt")]
    pub hwid: Option<Vec<u8>>,
    /// cspID (VLEK).
    pub csp_id: Option<String>,
}

type ExtError = (&'static str, &'static str, &'static str);

fn spl(cert: &Certificate, oid: &'static str, name: &'static str) -> Result<Option<u8>, ExtError> {
    integer_ext(cert, oid, name)?
        .map(|value| u8::try_from(value).map_err(|_| (oid, name, "SPL above 255")))
        .transpose()
}

/// A non-negative INTEGER extension, bare or wrapped in an OCTET STRING (as the module says).
fn integer_ext(
    cert: &Certificate,
    oid: &'static str,
    name: &'static str,
) -> Result<Option<u64>, ExtError> {
    let Some(ext) = cert.extension(oid) else {
        return Ok(None);
    };
    let int = der::expect_tlv(&ext.value, 0x02)
        .or_else(|| der::expect_tlv(&ext.value, 0x04).and_then(|i| der::expect_tlv(i, 0x02)))
        .ok_or((oid, name, "not a DER INTEGER"))?;
    int_value(int)
        .map(Some)
        .ok_or((oid, name, "not a non-negative integer"))
}

fn int_value(content: &[u8]) -> Option<u64> {
    if content.is_empty() || content.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let trimmed = tessera_pki::normalize_serial(content);
    if trimmed.len() > 8 {
        return None;
    }
    Some(
        trimmed
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    )
}

fn string_ext(
    cert: &Certificate,
    oid: &'static str,
    name: &'static str,
) -> Result<Option<String>, ExtError> {
    let Some(ext) = cert.extension(oid) else {
        return Ok(None);
    };
    let read = |v: &[u8]| -> Option<String> {
        let (tag, body, rest) = der::take_tlv(v)?;
        if !rest.is_empty() || !matches!(tag, 0x0C | 0x13 | 0x16) || body.len() > 256 {
            return None;
        }
        String::from_utf8(body.to_vec()).ok()
    };
    read(&ext.value)
        .or_else(|| der::expect_tlv(&ext.value, 0x04).and_then(read))
        .map(Some)
        .ok_or((oid, name, "not a DER string"))
}

impl VekExtensions {
    /// Decode the AMD extensions of `cert`.
    ///
    /// # Errors
    /// [`SnpError::VekExtension`] when a TCB SPL is missing or any extension is malformed, or
    /// when the certificate has both or neither of hwID and cspID.
    pub fn from_certificate(cert: &Certificate) -> Result<Self, SnpError> {
        Self::decode(cert).map_err(|(oid, name, detail)| SnpError::VekExtension {
            oid,
            name,
            detail,
        })
    }

    fn decode(cert: &Certificate) -> Result<Self, ExtError> {
        let required = |oid, name| spl(cert, oid, name)?.ok_or((oid, name, "missing"));
        let tcb = TcbParts {
            fmc: spl(cert, OID_FMC_SPL, "fmcSPL")?,
            bootloader: required(OID_BL_SPL, "blSPL")?,
            tee: required(OID_TEE_SPL, "teeSPL")?,
            snp: required(OID_SNP_SPL, "snpSPL")?,
            microcode: required(OID_UCODE_SPL, "ucodeSPL")?,
        };
        let struct_version = integer_ext(cert, OID_STRUCT_VERSION, "structVersion")?;
        let hwid = match cert.extension(OID_HWID) {
            None => None,
            Some(ext) => {
                // KDS writes the 64 (Turin: 8) bytes as the extnValue itself; other issuers
                // wrap them in an OCTET STRING. The lengths tell the two apart.
                let raw: &[u8] = &ext.value;
                let id = match raw.len() {
                    64 | 8 => raw,
                    _ => der::expect_tlv(raw, 0x04)
                        .filter(|id| id.len() == 64 || id.len() == 8)
                        .ok_or((
                            OID_HWID,
                            "hwID",
                            "neither 64 nor 8 bytes, raw or in an OCTET STRING",
                        ))?,
                };
                Some(id.to_vec())
            }
        };
        let csp_id = string_ext(cert, OID_CSP_ID, "cspID")?;
        match (&hwid, &csp_id) {
            (Some(_), Some(_)) => return Err((OID_CSP_ID, "cspID", "present beside hwID")),
            (None, None) => {
                return Err((
                    OID_HWID,
                    "hwID",
                    "missing (and no cspID: neither VCEK nor VLEK)",
                ));
            }
            _ => {}
        }
        Ok(Self {
            struct_version,
            product_name: string_ext(cert, OID_PRODUCT_NAME, "productName")?,
            tcb,
            hwid,
            csp_id,
        })
    }

    /// VCEK when the certificate carries a hwID, VLEK when it carries a cspID.
    #[must_use]
    pub fn kind(&self) -> VekKind {
        if self.hwid.is_some() {
            VekKind::Vcek
        } else {
            VekKind::Vlek
        }
    }

    /// The product the productName extension names, if any.
    #[must_use]
    pub fn product(&self) -> Option<Product> {
        self.product_name
            .as_deref()
            .and_then(Product::from_vcek_product_name)
    }
}

/// Whether `cert` holds an ECDSA P-384 key (as every VCEK and VLEK does).
#[must_use]
pub fn is_vek_candidate(cert: &Certificate) -> bool {
    cert.public_key().kind() == PublicKeyKind::EcP384
}

/// The roots of one product: its ARK and the intermediates it signed.
#[derive(Clone, Debug)]
pub struct ProductRoots {
    /// The product.
    pub product: Product,
    /// AMD Root Key (self-signed): the trust anchor.
    pub ark: Certificate,
    /// AMD SEV Signing Keys (sign VCEKs).
    pub asks: Vec<Certificate>,
    /// AMD SEV VLEK Signing Keys (sign VLEKs).
    pub asvks: Vec<Certificate>,
}

/// One product's embedded PEM files: product, ARK, ASK, ASVK.
type EmbeddedPems = (Product, &'static [u8], &'static [u8], &'static [u8]);

const EMBEDDED: [EmbeddedPems; 3] = [
    (
        Product::Milan,
        include_bytes!("../roots/milan/ark.pem"),
        include_bytes!("../roots/milan/ask.pem"),
        include_bytes!("../roots/milan/asvk.pem"),
    ),
    (
        Product::Genoa,
        include_bytes!("../roots/genoa/ark.pem"),
        include_bytes!("../roots/genoa/ask.pem"),
        include_bytes!("../roots/genoa/asvk.pem"),
    ),
    (
        Product::Turin,
        include_bytes!("../roots/turin/ark.pem"),
        include_bytes!("../roots/turin/ask.pem"),
        include_bytes!("../roots/turin/asvk.pem"),
    ),
];

fn one_cert(pem: &[u8]) -> Result<Certificate, SnpError> {
    let mut certs = load_certificates(pem).map_err(|e| SnpError::EmbeddedRoots(e.to_string()))?;
    match (certs.pop(), certs.is_empty()) {
        (Some(c), true) => Ok(c),
        _ => Err(SnpError::EmbeddedRoots(String::from(
            "expected one certificate per file",
        ))),
    }
}

/// The embedded AMD roots for Milan, Genoa and Turin (see `roots/README.md`).
///
/// # Errors
/// [`SnpError::EmbeddedRoots`] if an embedded file fails to parse (a build defect, tested).
pub fn embedded_roots() -> Result<Vec<ProductRoots>, SnpError> {
    EMBEDDED
        .iter()
        .map(|(product, ark, ask, asvk)| {
            Ok(ProductRoots {
                product: *product,
                ark: one_cert(ark)?,
                asks: vec![one_cert(ask)?],
                asvks: vec![one_cert(asvk)?],
            })
        })
        .collect()
}

/// An AMD intermediate (ASK or ASVK) that its ARK revoked, as AMD's ARK-signed CRL lists it.
///
/// CRL semantics: the ARK (the CRL's issuer) and the serial identify the certificate. The
/// default verification path rejects a chain through any of these with no CRL supplied, so a
/// stale or missing CRL never lets a revoked intermediate through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevokedIntermediate {
    /// The product whose ARK revoked it.
    pub product: Product,
    /// SHA-256 of the DER of the ARK that issued the certificate and signed the CRL.
    pub ark_sha256: [u8; 32],
    /// The serial number (big-endian, no leading zeros), as the CRL lists it.
    pub serial: &'static [u8],
    /// SHA-256 of the revoked certificate's DER, when the certificate itself is known.
    pub certificate_sha256: Option<[u8; 32]>,
    /// Where the revocation was read: the CRL, its `thisUpdate` and CRL number.
    pub source: &'static str,
}

/// The revoked AMD intermediates known today, from AMD's ARK-signed CRLs (KDS
/// `https://kdsintf.amd.com/vcek/v1/{product}/crl`) as this build had them on 2026-12-03; the
/// copies are in `roots/revoked/` and the test `embedded_revocations_match_the_crls` checks this
/// table against them:
///
/// - Genoa: ARK-Genoa CRL number 2, thisUpdate 2022-10-31T13:34:46Z, revokes serial 0x020001
///   (the first SEV-Genoa ASK; current Genoa VCEKs chain to ASK 0x020002).
/// - Milan: ARK-Milan CRLs number 3 (2022-05-09) and 4 (2023-05-09) revoke nothing.
/// - Turin: no revocation known.
pub const REVOKED_INTERMEDIATES: &[RevokedIntermediate] = &[RevokedIntermediate {
    product: Product::Genoa,
    ark_sha256: [
        0x4c, 0x65, 0x98, 0xd1, 0x9c, 0x18, 0x71, 0x9c, 0x5d, 0xfd, 0x4a, 0x7d, 0x33, 0x5f, 0x67,
        0x4e, 0x5b, 0xfe, 0x1d, 0x8f, 0x80, 0x0c, 0xea, 0x2c, 0xf2, 0x70, 0xc1, 0x0d, 0x10, 0x3d,
        0xb2, 0xf1,
    ],
    serial: &[0x02, 0x00, 0x01],
    certificate_sha256: Some([
        0x54, 0x46, 0x7b, 0x96, 0xb8, 0xba, 0xf2, 0x1d, 0xd4, 0x2e, 0xf7, 0x16, 0x2a, 0x62, 0xec,
        0x78, 0x12, 0xc5, 0x23, 0x1e, 0xf3, 0x01, 0x79, 0x0e, 0x37, 0xa8, 0x4b, 0x82, 0x2a, 0xe6,
        0xf4, 0x59,
    ]),
    source: "ARK-Genoa CRL number 2, thisUpdate 2022-10-31T13:34:46Z (KDS /vcek/v1/Genoa/crl)",
}];

/// The embedded revocation that lists `cert` when `ark` issued it, if any.
#[must_use]
pub fn embedded_revocation(
    cert: &Certificate,
    ark: &Certificate,
) -> Option<&'static RevokedIntermediate> {
    if cert.issuer_der() != ark.subject_der() {
        return None;
    }
    let serial = tessera_pki::normalize_serial(cert.serial());
    let ark_fp = ark.sha256();
    REVOKED_INTERMEDIATES
        .iter()
        .find(|r| r.serial == serial && r.ark_sha256 == ark_fp)
}

/// Fuzz harness: parse certificates from arbitrary bytes and decode their AMD extensions.
/// Must not panic.
#[doc(hidden)]
pub fn fuzz_vek_certificate(data: &[u8]) {
    if let Ok(certs) = load_certificates(data) {
        for c in &certs {
            if let Ok(ext) = VekExtensions::from_certificate(c) {
                let _ = (ext.kind(), ext.product());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_pki::{Budget, verify_issued_by};

    #[test]
    fn embedded_roots_match_fingerprints() {
        let readme = include_str!("../roots/README.md");
        let roots = embedded_roots().unwrap();
        assert_eq!(roots.len(), 3);
        for r in &roots {
            let dir = r.product.name().to_lowercase();
            for (file, cert) in [("ark", &r.ark), ("ask", &r.asks[0]), ("asvk", &r.asvks[0])] {
                let fp = hex::encode(tessera_pki::sha256(cert.der()));
                let row = format!("| {dir}/{file}.pem |");
                let line = readme
                    .lines()
                    .find(|l| l.starts_with(&row))
                    .expect("README row");
                assert!(
                    line.ends_with(&format!("| {fp} |")),
                    "{dir}/{file}: {fp} not in {line}"
                );
            }
            let mut budget = Budget::default();
            verify_issued_by(&r.ark, &r.ark, &mut budget).expect("ARK self-signed");
            verify_issued_by(&r.asks[0], &r.ark, &mut budget).expect("ASK under ARK");
            verify_issued_by(&r.asvks[0], &r.ark, &mut budget).expect("ASVK under ARK");
            assert!(
                r.ark
                    .subject()
                    .contains(&format!("ARK-{}", r.product.name()))
            );
            // Cross-product: no ASK verifies under another product's ARK.
            for other in roots.iter().filter(|o| o.product != r.product) {
                assert!(verify_issued_by(&r.asks[0], &other.ark, &mut Budget::default()).is_err());
            }
        }
    }

    /// The embedded revocation table is exactly what AMD's ARK-signed CRLs (copies in
    /// `roots/revoked/`) list, and the revoked certificate it names is the one it describes.
    #[test]
    fn embedded_revocations_match_the_crls() {
        let roots = embedded_roots().unwrap();
        let ark_of = |p: Product| roots.iter().find(|r| r.product == p).unwrap().ark.clone();
        let crls: [(Product, &[u8]); 2] = [
            (
                Product::Genoa,
                include_bytes!("../roots/revoked/genoa_ark_crl_2022-10-31.der"),
            ),
            (
                Product::Milan,
                include_bytes!("../roots/revoked/milan_ark_crl_2023-05-09.der"),
            ),
        ];
        let mut listed = Vec::new();
        for (product, der) in crls {
            let crl = tessera_pki::Crl::from_der(der).unwrap();
            let ark = ark_of(product);
            // Signed by the embedded ARK (its window has passed: the serials stay revoked).
            crl.verify_signed_by(&ark, &mut Budget::default()).unwrap();
            for serial in crl.revoked_serials() {
                listed.push((ark.sha256(), serial.to_vec()));
            }
        }
        let table: Vec<([u8; 32], Vec<u8>)> = REVOKED_INTERMEDIATES
            .iter()
            .map(|r| (r.ark_sha256, r.serial.to_vec()))
            .collect();
        assert_eq!(table, listed);
        for r in REVOKED_INTERMEDIATES {
            assert_eq!(ark_of(r.product).sha256(), r.ark_sha256, "{}", r.source);
        }

        // The revoked Genoa ASK: its fingerprint and serial, signed by ARK-Genoa, found by
        // `embedded_revocation`; the current Genoa ASK is not.
        let revoked = one_cert(include_bytes!("../roots/revoked/genoa_ask_0x20001.pem")).unwrap();
        let entry = &REVOKED_INTERMEDIATES[0];
        assert_eq!(Some(revoked.sha256()), entry.certificate_sha256);
        assert_eq!(revoked.serial_hex(), "020001");
        let genoa = ark_of(Product::Genoa);
        verify_issued_by(&revoked, &genoa, &mut Budget::default()).unwrap();
        assert_eq!(embedded_revocation(&revoked, &genoa), Some(entry));
        let current = &roots[1].asks[0];
        assert_eq!(embedded_revocation(current, &genoa), None);
        // Keyed by the issuing ARK: the same serial under another ARK is not listed.
        assert_eq!(embedded_revocation(&revoked, &ark_of(Product::Milan)), None);

        // The default verifier refuses it with no CRL supplied.
        let verifier = crate::Verifier::new(crate::TrustAnchors::amd().unwrap());
        let at = tessera_pki::UnixTime::parse_rfc3339("2022-11-01T13:34:46Z").unwrap();
        let err = verifier
            .verify_chain(std::slice::from_ref(&revoked), &[], at, None)
            .unwrap_err();
        assert!(
            matches!(err, SnpError::RevokedIntermediate { .. }),
            "{err:?}"
        );
        assert_eq!(err.check(), "revocation");
        verifier
            .verify_chain(std::slice::from_ref(current), &[], at, None)
            .unwrap();
    }

    /// A certificate carrying `extensions` (dotted OID, extnValue), all non-critical.
    fn with_extensions(extensions: &[(&'static str, Vec<u8>)]) -> Certificate {
        use tessera_pki::builder::{CertificateSpec, IssuerKey, issue_certificate, name};
        static KEY: std::sync::OnceLock<IssuerKey> = std::sync::OnceLock::new();
        let key = KEY.get_or_init(|| IssuerKey::generate_ec(PublicKeyKind::EcP384).unwrap());
        let spec = CertificateSpec {
            serial: vec![1],
            issuer: name(&[("2.5.4.3", "SEV-Test")]).unwrap(),
            subject: name(&[("2.5.4.3", "SEV-VCEK")]).unwrap(),
            not_before: tessera_pki::UnixTime::from_secs(1_700_000_000),
            not_after: tessera_pki::UnixTime::from_secs(1_800_000_000),
            ca: None,
            extensions: extensions
                .iter()
                .map(|(oid, value)| ((*oid).to_owned(), false, value.clone()))
                .collect(),
            pss_explicit_trailer: false,
        };
        let der = issue_certificate(&spec, &key.spki_der().unwrap(), key).unwrap();
        Certificate::from_der(&der).unwrap()
    }

    /// A VCEK's extensions (as KDS writes them) with `changes` applied: `Some` replaces the
    /// extension (or adds it), `None` removes it.
    fn vcek_extensions_with(
        changes: &[(&'static str, Option<Vec<u8>>)],
    ) -> Vec<(&'static str, Vec<u8>)> {
        let mut exts = vec![
            (OID_STRUCT_VERSION, der::uint_u64(1)),
            (OID_PRODUCT_NAME, der::ia5("Genoa-B0")),
            (OID_BL_SPL, der::uint_u64(9)),
            (OID_TEE_SPL, der::uint_u64(0)),
            (OID_SNP_SPL, der::uint_u64(23)),
            (OID_UCODE_SPL, der::uint_u64(72)),
            (OID_HWID, vec![0xA5; 64]),
        ];
        for (oid, value) in changes {
            exts.retain(|(o, _)| o != oid);
            if let Some(value) = value {
                exts.push((oid, value.clone()));
            }
        }
        exts
    }

    fn decode_with(changes: &[(&'static str, Option<Vec<u8>>)]) -> Result<VekExtensions, SnpError> {
        VekExtensions::from_certificate(&with_extensions(&vcek_extensions_with(changes)))
    }

    #[test]
    fn vek_extensions_decode_what_amd_writes() {
        let ext = decode_with(&[]).unwrap();
        assert_eq!(ext.kind(), VekKind::Vcek);
        assert_eq!(ext.struct_version, Some(1));
        assert_eq!(ext.product(), Some(Product::Genoa));
        let tcb = TcbParts {
            fmc: None,
            bootloader: 9,
            tee: 0,
            snp: 23,
            microcode: 72,
        };
        assert_eq!(ext.tcb, tcb);
        assert_eq!(ext.hwid.as_deref(), Some(&[0xA5; 64][..]));
        // The accepted variants: values wrapped in an OCTET STRING, an 8-byte hwID (Turin) with
        // fmcSPL, a VLEK's cspID instead of a hwID, productName as UTF8String or
        // PrintableString, no structVersion and no productName.
        let ext = decode_with(&[
            (OID_BL_SPL, Some(der::octets(&der::uint_u64(255)))),
            (OID_STRUCT_VERSION, Some(der::octets(&der::uint_u64(1)))),
            (OID_FMC_SPL, Some(der::uint_u64(3))),
            (OID_HWID, Some(der::octets(&[0x11; 8]))),
            (OID_PRODUCT_NAME, Some(der::utf8("Turin"))),
        ])
        .unwrap();
        assert_eq!(
            (ext.tcb.bootloader, ext.tcb.fmc, ext.hwid.as_deref()),
            (255, Some(3), Some(&[0x11; 8][..]))
        );
        assert_eq!(ext.struct_version, Some(1));
        assert_eq!(ext.product(), Some(Product::Turin));
        let ext = decode_with(&[
            (OID_HWID, None),
            (OID_CSP_ID, Some(der::ia5("csp.example"))),
            (OID_PRODUCT_NAME, Some(der::tlv(0x13, b"Milan-B0"))),
        ])
        .unwrap();
        assert_eq!(ext.kind(), VekKind::Vlek);
        assert_eq!(ext.csp_id.as_deref(), Some("csp.example"));
        assert_eq!(ext.product(), Some(Product::Milan));
        let ext = decode_with(&[(OID_STRUCT_VERSION, None), (OID_PRODUCT_NAME, None)]).unwrap();
        assert_eq!((ext.struct_version, ext.product_name), (None, None));
    }

    /// Every check of the decoding rejects, naming the extension and what is wrong with it;
    /// each case changes one extension of a VCEK that decodes.
    #[test]
    fn vek_extensions_decode_rejects_each_malformed_extension() {
        const NOT_INT: &str = "not a DER INTEGER";
        const NEGATIVE: &str = "not a non-negative integer";
        const ABOVE: &str = "SPL above 255";
        const HWID_LEN: &str = "neither 64 nor 8 bytes, raw or in an OCTET STRING";
        const NOT_STRING: &str = "not a DER string";
        let int = |bytes: &[u8]| der::tlv(0x02, bytes);
        type Case = (
            Vec<(&'static str, Option<Vec<u8>>)>,
            (&'static str, &'static str, &'static str),
        );
        let mut cases: Vec<Case> = Vec::new();
        // Each required SPL: missing, negative, empty, above 255, not an INTEGER.
        for (oid, name) in [
            (OID_BL_SPL, "blSPL"),
            (OID_TEE_SPL, "teeSPL"),
            (OID_SNP_SPL, "snpSPL"),
            (OID_UCODE_SPL, "ucodeSPL"),
        ] {
            for (value, detail) in [
                (None, "missing"),
                (Some(int(&[0xFF])), NEGATIVE),
                (Some(int(&[0x80, 0x00])), NEGATIVE),
                (Some(int(&[])), NEGATIVE),
                (Some(der::uint_u64(256)), ABOVE),
                (Some(der::uint_u64(u64::MAX)), ABOVE),
                (Some(int(&[0x01; 9])), NEGATIVE),
                (Some(der::ia5("23")), NOT_INT),
                (Some(der::tlv(0x01, &[0xFF])), NOT_INT),
                (Some(der::octets(&[23])), NOT_INT),
                (Some([der::uint_u64(23), der::null()].concat()), NOT_INT),
            ] {
                cases.push((vec![(oid, value)], (oid, name, detail)));
            }
            // Inside an OCTET STRING the same value checks apply.
            cases.push((
                vec![(oid, Some(der::octets(&der::uint_u64(256))))],
                (oid, name, ABOVE),
            ));
            cases.push((
                vec![(oid, Some(der::octets(&int(&[0xFF]))))],
                (oid, name, NEGATIVE),
            ));
        }
        // fmcSPL is optional, but checked when present.
        for (value, detail) in [
            (der::uint_u64(300), ABOVE),
            (int(&[0xFF]), NEGATIVE),
            (der::utf8("1"), NOT_INT),
        ] {
            cases.push((
                vec![(OID_FMC_SPL, Some(value))],
                (OID_FMC_SPL, "fmcSPL", detail),
            ));
        }
        // structVersion: a non-negative DER INTEGER of at most 64 bits (bare or wrapped).
        for (value, detail) in [
            (der::ia5("1"), NOT_INT),
            ([der::uint_u64(1), der::null()].concat(), NOT_INT),
            (int(&[0xFF]), NEGATIVE),
            (int(&[]), NEGATIVE),
            (int(&[0x01; 9]), NEGATIVE),
            (der::octets(&int(&[0xFF])), NEGATIVE),
        ] {
            cases.push((
                vec![(OID_STRUCT_VERSION, Some(value))],
                (OID_STRUCT_VERSION, "structVersion", detail),
            ));
        }
        // hwID: 64 or 8 bytes, raw or in an OCTET STRING; anything else is refused.
        for value in [
            vec![],
            vec![0xA5; 7],
            vec![0xA5; 9],
            vec![0xA5; 32],
            vec![0xA5; 63],
            vec![0xA5; 65],
            der::octets(&[0xA5; 32]),
            der::octets(&[0xA5; 63]),
            der::octets(&[0xA5; 65]),
            [der::octets(&[0xA5; 8]), vec![0]].concat(),
        ] {
            cases.push((vec![(OID_HWID, Some(value))], (OID_HWID, "hwID", HWID_LEN)));
        }
        // A VCEK's hwID and a VLEK's cspID together; neither.
        cases.push((
            vec![(OID_CSP_ID, Some(der::ia5("csp.example")))],
            (OID_CSP_ID, "cspID", "present beside hwID"),
        ));
        cases.push((
            vec![(OID_HWID, None)],
            (
                OID_HWID,
                "hwID",
                "missing (and no cspID: neither VCEK nor VLEK)",
            ),
        ));
        // productName and cspID: a DER UTF8String, PrintableString or IA5String of at most
        // 256 bytes (raw or in an OCTET STRING), valid UTF-8.
        let not_strings = || {
            [
                der::uint_u64(1),
                der::tlv(0x1E, &[0, b'G']),
                der::tlv(0x0C, &[0xC3, 0x28]),
                der::ia5(&"G".repeat(257)),
                [der::ia5("Genoa"), der::null()].concat(),
                der::octets(&der::uint_u64(1)),
                b"Genoa".to_vec(),
            ]
        };
        for value in not_strings() {
            cases.push((
                vec![(OID_PRODUCT_NAME, Some(value))],
                (OID_PRODUCT_NAME, "productName", NOT_STRING),
            ));
        }
        for value in not_strings() {
            cases.push((
                vec![(OID_HWID, None), (OID_CSP_ID, Some(value))],
                (OID_CSP_ID, "cspID", NOT_STRING),
            ));
        }

        for (changes, (oid, name, detail)) in cases {
            let err = decode_with(&changes).unwrap_err();
            assert_eq!(
                err,
                SnpError::VekExtension { oid, name, detail },
                "{changes:02x?}"
            );
            assert_eq!((err.check(), err.field()), ("vek_extension", name));
        }
    }

    #[test]
    fn int_values() {
        assert_eq!(int_value(&[0]), Some(0));
        assert_eq!(int_value(&[0, 0xFF]), Some(255));
        assert_eq!(int_value(&[0x80]), None);
        assert_eq!(int_value(&[]), None);
    }

    /// The simulated AMD PKI of each product, made once.
    fn sim_pki(product: crate::abi::Product) -> &'static crate::sim::SimPki {
        use crate::abi::Product;
        use std::sync::OnceLock;
        static PKIS: [OnceLock<crate::sim::SimPki>; 3] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let i = match product {
            Product::Milan => 0,
            Product::Genoa => 1,
            Product::Turin => 2,
        };
        PKIS[i].get_or_init(|| crate::sim::SimPki::new(product).unwrap())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// A simulated VCEK or VLEK with any TCB, hwID, cspID and productName decodes to
        /// exactly those; its DER with bytes of the AMD extensions (or anywhere) changed, or
        /// cut short, decodes or is refused, never panics.
        #[test]
        fn sim_veks_decode_to_their_spec_and_mutants_never_panic(
            which in 0usize..3,
            spls in proptest::prelude::any::<[u8; 5]>(),
            hwid in proptest::collection::vec(proptest::prelude::any::<u8>(), 64),
            vlek in proptest::prelude::any::<bool>(),
            csp in "[A-Za-z0-9 ._-]{1,40}",
            name in proptest::option::of("[A-Za-z0-9-]{1,20}"),
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()),
                1..4,
            ),
            near_amd in proptest::prelude::any::<bool>(),
            cut in proptest::option::weighted(0.2, proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            use crate::abi::{Product, TcbParts};
            use crate::sim::VekSpec;
            let product = [Product::Milan, Product::Genoa, Product::Turin][which];
            let mut spec = if vlek {
                VekSpec::vlek(product, &csp)
            } else {
                VekSpec::vcek(product)
            };
            spec.tcb = TcbParts {
                fmc: product.has_fmc().then_some(spls[0]),
                bootloader: spls[1],
                tee: spls[2],
                snp: spls[3],
                microcode: spls[4],
            };
            if !vlek {
                spec.hwid = hwid[..spec.hwid.len()].to_vec();
            }
            spec.product_name.clone_from(&name);
            let vek = sim_pki(product).issue_vek(&spec).unwrap();
            let ext = VekExtensions::from_certificate(vek.certificate()).unwrap();
            proptest::prop_assert_eq!(ext.tcb, spec.tcb);
            proptest::prop_assert_eq!(&ext.hwid, &(!vlek).then(|| spec.hwid.clone()));
            proptest::prop_assert_eq!(&ext.csp_id, &vlek.then(|| csp.clone()));
            proptest::prop_assert_eq!(&ext.product_name, &name);

            let mut der = vek.certificate().der().to_vec();
            // The AMD arc 1.3.6.1.4.1.3704 as DER OID content: the extensions start there.
            const AMD_ARC: [u8; 7] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78];
            let amd = der.windows(AMD_ARC.len()).position(|w| w == AMD_ARC);
            proptest::prop_assert!(amd.is_some());
            let start = if near_amd { amd.unwrap_or(0).saturating_sub(4) } else { 0 };
            for (at, b) in edits {
                let i = start + at.index(der.len() - start);
                der[i] = b;
            }
            if let Some(at) = cut {
                der.truncate(at.index(der.len()));
            }
            if let Ok(cert) = Certificate::from_der(&der) {
                let _ = VekExtensions::from_certificate(&cert).map(|e| (e.kind(), e.product()));
            }
            fuzz_vek_certificate(&der);
        }
    }
}
