//! The TDX floor: the bare aws-lc-rs ECDSA P-256 / SHA-256 checks (and the one extra SHA-256) a
//! scenario cannot avoid, on inputs extracted once.
//!
//! Nothing is parsed per iteration, and every check builds an `UnparsedPublicKey` per call, as a
//! one-shot verifier would (the SNP floor does the same). What each floor counts:
//!
//! `tdx_warm` (collateral and PCK chain verified before): 2 ECDSA verifications + 1 SHA-256:
//! 1. the QE report signature (`r‖s`) under the PCK leaf key, over the 384-byte QE report;
//! 2. SHA-256(attestation key ‖ QE authentication data), compared with the first 32 bytes of the
//!    QE report's REPORT_DATA (the last 32 must be zero);
//! 3. the quote signature (`r‖s`) under the attestation key, over header ‖ body.
//!
//! `tdx_cold` (everything from bytes): the warm floor + 7 ECDSA verifications, 9 in all:
//! 4. the PCK leaf certificate under the PCK (Platform or Processor) CA key;
//! 5. the PCK CA certificate under the Intel SGX Root CA key;
//! 6. the TCB signing certificate under the root key (it signs both the TCB info and the QE
//!    identity; their two issuer chains are the same certificate, counted once);
//! 7. the TCB info signature (`r‖s`) under the TCB signing key, over the exact `tcbInfo` JSON;
//! 8. the QE identity signature (`r‖s`) under the TCB signing key, over the exact
//!    `enclaveIdentity` JSON;
//! 9. the PCK CRL under the PCK CA key;
//! 10. the root CA CRL under the root key.
//!
//! The root is pinned: its self-signature is not counted. Each ECDSA verification includes the
//! SHA-256 of its message. Not counted: parsing (quote, PEM, DER, JSON), dates, CRL look-ups, the
//! QE identity policy and the TCB level matching — real work, but not signature or hash work.
//!
//! Quote layout (Intel TDX DCAP Quoting Library API, "Quote Format", v4 and v5), restated here on
//! purpose so the floor does not share tessera's parser:
//! - header, 48 bytes: version u16 LE at 0, attestation key type u16 at 2 (2 = ECDSA P-256),
//!   TEE type u32 at 4 (0x81 = TDX);
//! - v4: the TD report body, 584 bytes (TDX 1.0); v5: body type u16, body size u32, then the body
//!   (type 2 = TDX 1.0, 584 bytes; type 3 = TDX 1.5, 648 bytes). The quote signature covers
//!   everything before the signature-data length;
//! - signature-data length u32, then: the quote signature `r‖s` (64), the attestation key `x‖y`
//!   (64), certification data type u16 (6 = QE report certification data) and size u32, then the QE
//!   report (384), the QE report signature `r‖s` (64), the QE authentication data length u16 and
//!   data, and a nested certification data type u16 (5 = PCK chain, PEM) and size u32 and the PEM
//!   chain: PCK leaf, PCK CA, root. Anything after the signature data (padding) is ignored.
//! - QE report (SGX REPORT body): REPORT_DATA is its last 64 bytes, at offset 320.

use aws_lc_rs::digest::{Context, SHA256};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, UnparsedPublicKey, VerificationAlgorithm,
};
use tessera_pki::{Certificate, PkiError, PublicKeyKind, load_certificates};

use crate::case::vectors_dir;
use crate::tdx::TdxCase;

/// Header length.
const HEADER_LEN: usize = 48;
/// TD report body length, TDX 1.0.
const TD10_BODY_LEN: usize = 584;
/// TD report body length, TDX 1.5.
const TD15_BODY_LEN: usize = 648;
/// TEE type of a TDX quote.
const TEE_TDX: u32 = 0x81;
/// Attestation key type: ECDSA P-256.
const AK_ECDSA_P256: u16 = 2;
/// Certification data type: QE report certification data.
const CERT_QE_REPORT: u16 = 6;
/// Certification data type: PCK certificate chain, PEM.
const CERT_PCK_CHAIN: u16 = 5;
/// An ECDSA P-256 `r‖s` signature, or a P-256 point `x‖y`.
const P256_PAIR_LEN: usize = 64;
/// QE report (SGX REPORT body) length.
const QE_REPORT_LEN: usize = 384;
/// Offset of REPORT_DATA in the QE report.
const QE_REPORT_DATA: usize = 320;
/// The root's file in the vectors folder (the Intel SGX Root CA, which the contestants embed).
const INTEL_ROOT: &str = "roots/intel/Intel_SGX_Root_CA.der";

/// Why the floor's inputs could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum TdxFloorError {
    /// The quote does not have the layout the floor reads.
    Quote(String),
    /// The collateral bundle is not the JSON the floor reads.
    Collateral(String),
    /// A certificate or the root file does not load.
    Pki(&'static str, PkiError),
    /// A key is not P-256, or a chain is not leaf, CA, root.
    Shape(String),
    /// The floor rejected the real data (wrong case, or the extraction is wrong).
    Rejected(&'static str),
}

impl std::fmt::Display for TdxFloorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Quote(what) => write!(f, "TDX floor cannot read the quote: {what}"),
            Self::Collateral(what) => write!(f, "TDX floor cannot read the collateral: {what}"),
            Self::Pki(what, e) => write!(f, "TDX floor cannot load the {what}: {e}"),
            Self::Shape(what) => write!(f, "TDX floor: unexpected case shape: {what}"),
            Self::Rejected(what) => write!(f, "TDX floor rejects the case: {what}"),
        }
    }
}

impl std::error::Error for TdxFloorError {}

/// The fields of the collateral bundle the floor reads (dcap-qvl's `QuoteCollateralV3` layout).
#[derive(serde::Deserialize)]
struct Bundle {
    root_ca_crl: String,
    pck_crl: String,
    tcb_info_issuer_chain: String,
    tcb_info: String,
    tcb_info_signature: String,
    qe_identity_issuer_chain: String,
    qe_identity: String,
    qe_identity_signature: String,
}

/// A signed message and its signature, with the algorithm that checks it.
#[derive(Clone, Debug)]
struct Signed {
    message: Vec<u8>,
    signature: Vec<u8>,
    alg: &'static dyn VerificationAlgorithm,
}

impl Signed {
    /// Whether the signature verifies under `point` (uncompressed P-256).
    fn verify(&self, point: &[u8]) -> bool {
        UnparsedPublicKey::new(self.alg, point)
            .verify(&self.message, &self.signature)
            .is_ok()
    }

    /// A certificate's TBS and DER signature.
    fn cert(cert: &Certificate) -> Self {
        Self {
            message: cert.tbs().to_vec(),
            signature: cert.signature().to_vec(),
            alg: &ECDSA_P256_SHA256_ASN1,
        }
    }

    /// A CRL's TBSCertList and DER signature: `SEQUENCE { tbs, algorithm, BIT STRING }`.
    fn crl(der: &[u8]) -> Option<Self> {
        use tessera_pki::der::{expect_tlv, take_tlv};
        let outer = expect_tlv(der, 0x30)?;
        let (0x30, _, after_tbs) = take_tlv(outer)? else {
            return None;
        };
        let tbs = outer.get(..outer.len() - after_tbs.len())?;
        let (0x30, _, after_alg) = take_tlv(after_tbs)? else {
            return None;
        };
        let bits = expect_tlv(after_alg, 0x03)?;
        let (0, signature) = bits.split_first()? else {
            return None;
        };
        Some(Self {
            message: tbs.to_vec(),
            signature: signature.to_vec(),
            alg: &ECDSA_P256_SHA256_ASN1,
        })
    }

    /// A collateral item: the exact JSON text and its hex `r‖s`.
    fn raw(message: &str, signature_hex: &str, what: &str) -> Result<Self, TdxFloorError> {
        Ok(Self {
            message: message.as_bytes().to_vec(),
            signature: hex_field(signature_hex, what)?,
            alg: &ECDSA_P256_SHA256_FIXED,
        })
    }
}

fn hex_field(text: &str, what: &str) -> Result<Vec<u8>, TdxFloorError> {
    hex::decode(text).map_err(|e| TdxFloorError::Collateral(format!("{what}: {e}")))
}

/// A little cursor over the quote: fixed-width reads that fail instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], TdxFloorError> {
        let end = self.pos.checked_add(len);
        let out = end
            .and_then(|end| self.bytes.get(self.pos..end))
            .ok_or_else(|| TdxFloorError::Quote(format!("truncated at the {what}")))?;
        self.pos += len;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], TdxFloorError> {
        let bytes = self.take(N, what)?;
        bytes
            .try_into()
            .map_err(|_| TdxFloorError::Quote(format!("truncated at the {what}")))
    }

    fn u16(&mut self, what: &str) -> Result<u16, TdxFloorError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &str) -> Result<u32, TdxFloorError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn len32(&mut self, what: &str) -> Result<usize, TdxFloorError> {
        usize::try_from(self.u32(what)?).map_err(|_| TdxFloorError::Quote(format!("{what} size")))
    }
}

/// The quote's parts the floor checks.
struct QuoteParts {
    signed: Vec<u8>,
    signature: Vec<u8>,
    /// `04 ‖ x ‖ y`.
    attestation_key: Vec<u8>,
    qe_report: Vec<u8>,
    qe_report_signature: Vec<u8>,
    qe_auth_data: Vec<u8>,
    pck_chain_pem: Vec<u8>,
}

fn quote_parts(quote: &[u8]) -> Result<QuoteParts, TdxFloorError> {
    let bad = |what: String| Err(TdxFloorError::Quote(what));
    let mut r = Reader {
        bytes: quote,
        pos: 0,
    };
    let version = r.u16("version")?;
    let ak_type = r.u16("attestation key type")?;
    let tee_type = r.u32("TEE type")?;
    if ak_type != AK_ECDSA_P256 || tee_type != TEE_TDX {
        return bad(format!(
            "want an ECDSA P-256 TDX quote, got key type {ak_type}, TEE type {tee_type:#x}"
        ));
    }
    r.take(HEADER_LEN - 8, "header")?;
    match version {
        4 => {
            r.take(TD10_BODY_LEN, "TD report body")?;
        }
        5 => {
            let body_type = r.u16("body type")?;
            let size = r.len32("body size")?;
            let want = match body_type {
                2 => TD10_BODY_LEN,
                3 => TD15_BODY_LEN,
                other => return bad(format!("v5 body type {other}")),
            };
            if size != want {
                return bad(format!("v5 body type {body_type} of {size} bytes"));
            }
            r.take(size, "TD report body")?;
        }
        other => return bad(format!("quote version {other}")),
    }
    let signed = quote.get(..r.pos).unwrap_or_default().to_vec();
    let sig_data_len = r.len32("signature data length")?;
    let mut s = Reader {
        bytes: r.take(sig_data_len, "signature data")?,
        pos: 0,
    };
    let signature = s.take(P256_PAIR_LEN, "quote signature")?.to_vec();
    let mut attestation_key = vec![0x04];
    attestation_key.extend_from_slice(s.take(P256_PAIR_LEN, "attestation key")?);
    let cert_type = s.u16("certification data type")?;
    let cert_len = s.len32("certification data size")?;
    if cert_type != CERT_QE_REPORT {
        return bad(format!("certification data type {cert_type}, want 6"));
    }
    let mut c = Reader {
        bytes: s.take(cert_len, "certification data")?,
        pos: 0,
    };
    let qe_report = c.take(QE_REPORT_LEN, "QE report")?.to_vec();
    let qe_report_signature = c.take(P256_PAIR_LEN, "QE report signature")?.to_vec();
    let auth_len = usize::from(c.u16("QE authentication data length")?);
    let qe_auth_data = c.take(auth_len, "QE authentication data")?.to_vec();
    let nested_type = c.u16("nested certification data type")?;
    let nested_len = c.len32("nested certification data size")?;
    if nested_type != CERT_PCK_CHAIN {
        return bad(format!(
            "nested certification data type {nested_type}, want 5"
        ));
    }
    let pck_chain_pem = c.take(nested_len, "PCK chain")?.to_vec();
    Ok(QuoteParts {
        signed,
        signature,
        attestation_key,
        qe_report,
        qe_report_signature,
        qe_auth_data,
        pck_chain_pem,
    })
}

/// The uncompressed P-256 point of `cert`.
fn p256_point(cert: &Certificate) -> Result<Vec<u8>, TdxFloorError> {
    if cert.public_key().kind() != PublicKeyKind::EcP256 {
        return Err(TdxFloorError::Shape(format!(
            "{}: key is not P-256",
            cert.subject()
        )));
    }
    Ok(cert.public_key().raw().to_vec())
}

/// A PEM chain of exactly `N` certificates.
fn chain<const N: usize>(
    pem: &[u8],
    what: &'static str,
) -> Result<[Certificate; N], TdxFloorError> {
    let certs = load_certificates(pem).map_err(|e| TdxFloorError::Pki(what, e))?;
    certs.try_into().map_err(|certs: Vec<Certificate>| {
        TdxFloorError::Shape(format!(
            "{what}: want {N} certificates, got {}",
            certs.len()
        ))
    })
}

/// Inputs of the floor, extracted once from a [`TdxCase`].
#[derive(Clone, Debug)]
pub struct TdxFloor {
    /// The quote signature over header ‖ body.
    quote: Signed,
    /// `04 ‖ x ‖ y` of the attestation key.
    attestation_key: Vec<u8>,
    /// The QE report signature over the QE report.
    qe_report: Signed,
    /// The QE authentication data.
    qe_auth_data: Vec<u8>,
    /// REPORT_DATA of the QE report (64 bytes).
    qe_report_data: Vec<u8>,
    /// Keys, uncompressed points.
    pck_key: Vec<u8>,
    pck_ca_key: Vec<u8>,
    tcb_signing_key: Vec<u8>,
    root_key: Vec<u8>,
    /// The PCK leaf under the PCK CA.
    pck_leaf: Signed,
    /// The PCK CA under the root.
    pck_ca: Signed,
    /// The TCB signing certificate under the root.
    tcb_signing: Signed,
    /// The TCB info under the TCB signing key.
    tcb_info: Signed,
    /// The QE identity under the TCB signing key.
    qe_identity: Signed,
    /// The PCK CRL under the PCK CA.
    pck_crl: Signed,
    /// The root CA CRL under the root.
    root_ca_crl: Signed,
}

impl TdxFloor {
    /// Extract the floor's inputs and check that both floors accept them.
    ///
    /// # Errors
    /// [`TdxFloorError`] when the case does not have the expected shape or a floor rejects it.
    pub fn new(case: &TdxCase) -> Result<Self, TdxFloorError> {
        let parts = quote_parts(&case.quote)?;
        let bundle: Bundle = serde_json::from_slice(&case.collateral_json)
            .map_err(|e| TdxFloorError::Collateral(e.to_string()))?;
        let [leaf, pck_ca, root] = chain::<3>(&parts.pck_chain_pem, "PCK chain")?;
        let [tcb_signing, tcb_root] = chain::<2>(
            bundle.tcb_info_issuer_chain.as_bytes(),
            "TCB info issuer chain",
        )?;
        let [qe_signing, qe_root] = chain::<2>(
            bundle.qe_identity_issuer_chain.as_bytes(),
            "QE identity issuer chain",
        )?;
        let root_path = vectors_dir().join(INTEL_ROOT);
        let pinned = std::fs::read(&root_path).map_err(|e| {
            TdxFloorError::Shape(format!("cannot read {}: {e}", root_path.display()))
        })?;
        if root.der() != pinned || tcb_root.der() != pinned || qe_root.der() != pinned {
            return Err(TdxFloorError::Shape(String::from(
                "a chain does not end at the Intel SGX Root CA",
            )));
        }
        if qe_signing.der() != tcb_signing.der() {
            return Err(TdxFloorError::Shape(String::from(
                "TCB info and QE identity are signed by different certificates",
            )));
        }
        let crl = |text: &str, what: &'static str| {
            Signed::crl(&hex_field(text, what)?)
                .ok_or_else(|| TdxFloorError::Collateral(format!("{what}: not a CRL")))
        };
        let floor = Self {
            quote: Signed {
                message: parts.signed,
                signature: parts.signature,
                alg: &ECDSA_P256_SHA256_FIXED,
            },
            attestation_key: parts.attestation_key,
            qe_report_data: parts
                .qe_report
                .get(QE_REPORT_DATA..)
                .unwrap_or_default()
                .to_vec(),
            qe_report: Signed {
                message: parts.qe_report,
                signature: parts.qe_report_signature,
                alg: &ECDSA_P256_SHA256_FIXED,
            },
            qe_auth_data: parts.qe_auth_data,
            pck_key: p256_point(&leaf)?,
            pck_ca_key: p256_point(&pck_ca)?,
            tcb_signing_key: p256_point(&tcb_signing)?,
            root_key: p256_point(&root)?,
            pck_leaf: Signed::cert(&leaf),
            pck_ca: Signed::cert(&pck_ca),
            tcb_signing: Signed::cert(&tcb_signing),
            tcb_info: Signed::raw(&bundle.tcb_info, &bundle.tcb_info_signature, "TCB info")?,
            qe_identity: Signed::raw(
                &bundle.qe_identity,
                &bundle.qe_identity_signature,
                "QE identity",
            )?,
            pck_crl: crl(&bundle.pck_crl, "PCK CRL")?,
            root_ca_crl: crl(&bundle.root_ca_crl, "root CA CRL")?,
        };
        let checks: [(&'static str, bool); 10] = [
            (
                "QE report signature under the PCK key",
                floor.qe_report.verify(&floor.pck_key),
            ),
            ("QE report data hash", floor.qe_report_data_matches()),
            (
                "quote signature under the attestation key",
                floor.quote.verify(&floor.attestation_key),
            ),
            (
                "PCK leaf under the PCK CA",
                floor.pck_leaf.verify(&floor.pck_ca_key),
            ),
            (
                "PCK CA under the root",
                floor.pck_ca.verify(&floor.root_key),
            ),
            (
                "TCB signing certificate under the root",
                floor.tcb_signing.verify(&floor.root_key),
            ),
            (
                "TCB info signature",
                floor.tcb_info.verify(&floor.tcb_signing_key),
            ),
            (
                "QE identity signature",
                floor.qe_identity.verify(&floor.tcb_signing_key),
            ),
            (
                "PCK CRL under the PCK CA",
                floor.pck_crl.verify(&floor.pck_ca_key),
            ),
            (
                "root CA CRL under the root",
                floor.root_ca_crl.verify(&floor.root_key),
            ),
        ];
        if let Some((what, _)) = checks.iter().find(|(_, ok)| !ok) {
            return Err(TdxFloorError::Rejected(what));
        }
        if !floor.warm() || !floor.cold() {
            return Err(TdxFloorError::Rejected("the scenario floors"));
        }
        Ok(floor)
    }

    /// SHA-256(attestation key `x‖y` ‖ QE authentication data) ‖ 32 zero bytes == REPORT_DATA.
    fn qe_report_data_matches(&self) -> bool {
        let mut ctx = Context::new(&SHA256);
        ctx.update(self.attestation_key.get(1..).unwrap_or_default());
        ctx.update(&self.qe_auth_data);
        let digest = ctx.finish();
        let (hash, zeros) = self.qe_report_data.split_at_checked(32).unwrap_or_default();
        hash == digest.as_ref() && zeros.len() == 32 && zeros.iter().all(|b| *b == 0)
    }

    /// `tdx_warm` floor: QE report signature, QE report data hash, quote signature.
    #[must_use]
    pub fn warm(&self) -> bool {
        self.qe_report.verify(&self.pck_key)
            && self.qe_report_data_matches()
            && self.quote.verify(&self.attestation_key)
    }

    /// `tdx_cold` floor: PCK leaf, PCK CA, TCB signing certificate, TCB info, QE identity, both
    /// CRLs, then the warm floor: 9 ECDSA P-256 verifications and one extra SHA-256.
    #[must_use]
    pub fn cold(&self) -> bool {
        self.pck_leaf.verify(&self.pck_ca_key)
            && self.pck_ca.verify(&self.root_key)
            && self.tcb_signing.verify(&self.root_key)
            && self.tcb_info.verify(&self.tcb_signing_key)
            && self.qe_identity.verify(&self.tcb_signing_key)
            && self.pck_crl.verify(&self.pck_ca_key)
            && self.root_ca_crl.verify(&self.root_key)
            && self.warm()
    }
}
