//! The collateral set a quote is verified against, and its JSON bundle form (the dcap-qvl
//! `QuoteCollateralV3` layout).

use core::fmt;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tessera_pki::{Certificate, Crl, load_certificates_reusing, load_crls, to_hex, to_pem};

use super::pcs::percent_decode_pem;
use super::signed::signature_from_hex;
use super::{CollateralError, EnclaveIdentity, MAX_BUNDLE_LEN, Signed, TcbInfo, check_body_len};

/// Collateral as JSON, in the layout of the `dcap-qvl` crate's `QuoteCollateralV3`.
///
/// `tcb_info` and `qe_identity` are the exact signed JSON texts; signatures are hex `r ‖ s`;
/// CRLs are hex DER (PEM is accepted on input); issuer chains are PEM. `pck_crl` and
/// `root_ca_crl` may be absent (a partial bundle: revocation cannot be checked);
/// `pck_crl_issuer_chain` may be absent only with `pck_crl` (the CRL's signer is looked for
/// in it alone, so a PCK CRL without it is refused as `pck_crl_issuer_chain: missing`).
/// Unknown fields are ignored on input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollateralBundle {
    /// PEM chain of the PCK CRL issuer (PCK Platform/Processor CA, Root CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pck_crl_issuer_chain: Option<String>,
    /// The Intel SGX Root CA CRL, hex DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_ca_crl: Option<String>,
    /// The PCK CRL (platform or processor CA), hex DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pck_crl: Option<String>,
    /// PEM chain of the TCB info signer (TCB Signing certificate, Root CA).
    pub tcb_info_issuer_chain: String,
    /// The signed TCB info JSON text.
    pub tcb_info: String,
    /// The TCB info signature, hex `r ‖ s`.
    pub tcb_info_signature: String,
    /// PEM chain of the QE identity signer.
    pub qe_identity_issuer_chain: String,
    /// The signed QE identity JSON text.
    pub qe_identity: String,
    /// The QE identity signature, hex `r ‖ s`.
    pub qe_identity_signature: String,
}

/// The same fields, every one optional, so that a missing one is reported by name. Strings
/// without escapes (hex CRLs and signatures) are borrowed from the input, not copied.
#[derive(Deserialize)]
struct LenientBundle<'a> {
    #[serde(borrow)]
    pck_crl_issuer_chain: Option<Cow<'a, str>>,
    #[serde(borrow)]
    root_ca_crl: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pck_crl: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tcb_info_issuer_chain: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tcb_info: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tcb_info_signature: Option<Cow<'a, str>>,
    #[serde(borrow)]
    qe_identity_issuer_chain: Option<Cow<'a, str>>,
    #[serde(borrow)]
    qe_identity: Option<Cow<'a, str>>,
    #[serde(borrow)]
    qe_identity_signature: Option<Cow<'a, str>>,
}

/// The pieces of a [`Collateral`], for building one from parsed parts (simulators, caches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollateralParts {
    /// The signed TCB info.
    pub tcb_info: Signed<TcbInfo>,
    /// The signed QE identity.
    pub qe_identity: Signed<EnclaveIdentity>,
    /// Certificates to verify the TCB info signer with (TCB Signing, Root CA).
    pub tcb_info_issuer_chain: Vec<Certificate>,
    /// Certificates to verify the QE identity signer with.
    pub qe_identity_issuer_chain: Vec<Certificate>,
    /// Certificates to verify the PCK CRL with (empty only without a PCK CRL: the bundle and
    /// PCS folder readers refuse a PCK CRL without them).
    pub pck_crl_issuer_chain: Vec<Certificate>,
    /// The PCK CRL, when known.
    pub pck_crl: Option<Crl>,
    /// The Root CA CRL, when known.
    pub root_ca_crl: Option<Crl>,
}

/// Intel collateral for one platform (FMSPC): TCB info, QE identity, issuer chains and CRLs,
/// parsed but not verified.
///
/// Built by [`Collateral::from_bundle_json`], [`Collateral::from_pcs_files`] or
/// [`Collateral::from_parts`]. Its [`digest`](Collateral::digest) identifies the content and
/// serves as a cache key for verification results.
#[derive(Clone, PartialEq, Eq)]
pub struct Collateral {
    parts: CollateralParts,
    digest: [u8; 32],
}

impl Collateral {
    /// Collateral from parsed parts.
    #[must_use]
    pub fn from_parts(parts: CollateralParts) -> Self {
        let digest = digest_of(&parts);
        Self { parts, digest }
    }

    /// The parts, for rebuilding with one of them changed.
    #[must_use]
    pub fn into_parts(self) -> CollateralParts {
        self.parts
    }

    /// Collateral from a JSON bundle in the dcap-qvl `QuoteCollateralV3` layout (see
    /// [`CollateralBundle`]). Missing or `null` CRL fields give partial collateral; a PCK CRL
    /// without its issuer chain is refused.
    ///
    /// # Errors
    /// [`CollateralError::Json`] when the bundle is not JSON (or not an object of strings),
    /// [`CollateralError::Missing`] for a missing required field, and the errors of the signed
    /// bodies, signatures ([`CollateralError::Hex`]), chains and CRLs
    /// ([`CollateralError::Pki`]), each naming the item.
    pub fn from_bundle_json(bytes: &[u8]) -> Result<Self, CollateralError> {
        const ITEM: &str = "collateral_bundle";
        check_body_len(ITEM, bytes, MAX_BUNDLE_LEN)?;
        let raw: LenientBundle =
            serde_json::from_slice(bytes).map_err(|e| CollateralError::Json {
                item: ITEM,
                detail: super::error::detail(&e.to_string()),
            })?;
        fn required<'a>(
            value: Option<Cow<'a, str>>,
            item: &'static str,
        ) -> Result<Cow<'a, str>, CollateralError> {
            value.ok_or(CollateralError::Missing { item })
        }
        let tcb_info = Signed::tcb_info(
            required(raw.tcb_info, "tcb_info")?
                .into_owned()
                .into_bytes(),
            signature_from_hex(
                "tcb_info",
                "tcb_info_signature",
                &required(raw.tcb_info_signature, "tcb_info_signature")?,
            )?,
        )?;
        let qe_identity = Signed::qe_identity(
            required(raw.qe_identity, "qe_identity")?
                .into_owned()
                .into_bytes(),
            signature_from_hex(
                "qe_identity",
                "qe_identity_signature",
                &required(raw.qe_identity_signature, "qe_identity_signature")?,
            )?,
        )?;
        let tcb_chain_text = required(raw.tcb_info_issuer_chain, "tcb_info_issuer_chain")?;
        let qe_chain_text = required(raw.qe_identity_issuer_chain, "qe_identity_issuer_chain")?;
        let tcb_info_issuer_chain = chain_from_text("tcb_info_issuer_chain", &tcb_chain_text)?;
        // Intel signs both with the TCB Signing certificate: the two chains are usually the
        // same text, parsed once.
        let qe_identity_issuer_chain = if qe_chain_text == tcb_chain_text {
            tcb_info_issuer_chain.clone()
        } else {
            chain_from_text("qe_identity_issuer_chain", &qe_chain_text)?
        };
        let pck_crl_issuer_chain = match raw.pck_crl_issuer_chain {
            Some(text) => chain_from_text("pck_crl_issuer_chain", &text)?,
            None => Vec::new(),
        };
        let pck_crl = raw
            .pck_crl
            .map(|text| crl_from_text("pck_crl", &text))
            .transpose()?;
        refuse_pck_crl_without_chain(pck_crl.as_ref(), &pck_crl_issuer_chain)?;
        let root_ca_crl = raw
            .root_ca_crl
            .map(|text| crl_from_text("root_ca_crl", &text))
            .transpose()?;
        Ok(Self::from_parts(CollateralParts {
            tcb_info,
            qe_identity,
            tcb_info_issuer_chain,
            qe_identity_issuer_chain,
            pck_crl_issuer_chain,
            pck_crl,
            root_ca_crl,
        }))
    }

    /// The bundle form: signed texts as they are, signatures and CRLs in hex, chains in PEM.
    /// An empty PCK CRL issuer chain and absent CRLs are left out.
    #[must_use]
    pub fn to_bundle(&self) -> CollateralBundle {
        let p = &self.parts;
        CollateralBundle {
            pck_crl_issuer_chain: (!p.pck_crl_issuer_chain.is_empty())
                .then(|| chain_to_pem(&p.pck_crl_issuer_chain)),
            root_ca_crl: p.root_ca_crl.as_ref().map(|c| to_hex(c.der())),
            pck_crl: p.pck_crl.as_ref().map(|c| to_hex(c.der())),
            tcb_info_issuer_chain: chain_to_pem(&p.tcb_info_issuer_chain),
            tcb_info: p.tcb_info.body_str().to_owned(),
            tcb_info_signature: to_hex(p.tcb_info.signature()),
            qe_identity_issuer_chain: chain_to_pem(&p.qe_identity_issuer_chain),
            qe_identity: p.qe_identity.body_str().to_owned(),
            qe_identity_signature: to_hex(p.qe_identity.signature()),
        }
    }

    /// The signed TCB info.
    #[must_use]
    pub fn tcb_info(&self) -> &Signed<TcbInfo> {
        &self.parts.tcb_info
    }
    /// The signed QE identity.
    #[must_use]
    pub fn qe_identity(&self) -> &Signed<EnclaveIdentity> {
        &self.parts.qe_identity
    }
    /// Certificates for the TCB info signer (in the order given).
    #[must_use]
    pub fn tcb_info_issuer_chain(&self) -> &[Certificate] {
        &self.parts.tcb_info_issuer_chain
    }
    /// Certificates for the QE identity signer.
    #[must_use]
    pub fn qe_identity_issuer_chain(&self) -> &[Certificate] {
        &self.parts.qe_identity_issuer_chain
    }
    /// Certificates for the PCK CRL issuer (possibly empty).
    #[must_use]
    pub fn pck_crl_issuer_chain(&self) -> &[Certificate] {
        &self.parts.pck_crl_issuer_chain
    }
    /// The PCK CRL, when present.
    #[must_use]
    pub fn pck_crl(&self) -> Option<&Crl> {
        self.parts.pck_crl.as_ref()
    }
    /// The Root CA CRL, when present.
    #[must_use]
    pub fn root_ca_crl(&self) -> Option<&Crl> {
        self.parts.root_ca_crl.as_ref()
    }
    /// Whether a CRL is missing (revocation cannot be fully checked).
    #[must_use]
    pub fn is_partial(&self) -> bool {
        self.parts.pck_crl.is_none() || self.parts.root_ca_crl.is_none()
    }

    /// SHA-256 over a length-prefixed encoding of every part (signed bodies, signatures, the
    /// SHA-256 of every certificate's DER in order, each CRL's DER or its absence). Equal for
    /// equal content, whatever the input encoding (PEM or DER, hex case); different when any
    /// byte of any part differs.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
}

/// A PCK CRL whose signer cannot be found: its signer is looked for in its issuer chain alone
/// (verified collateral does not depend on one quote's PCK chain), so without one every quote
/// would fail its revocation check as if the CRL were forged.
pub(crate) fn refuse_pck_crl_without_chain(
    pck_crl: Option<&Crl>,
    chain: &[Certificate],
) -> Result<(), CollateralError> {
    if pck_crl.is_some() && chain.is_empty() {
        return Err(CollateralError::Missing {
            item: "pck_crl_issuer_chain",
        });
    }
    Ok(())
}

impl fmt::Debug for Collateral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.parts;
        let subjects = |chain: &[Certificate]| {
            chain
                .iter()
                .map(|c| c.subject().to_owned())
                .collect::<Vec<_>>()
        };
        let tcb = p.tcb_info.value();
        let qe = p.qe_identity.value();
        f.debug_struct("Collateral")
            .field(
                "tcb_info",
                &format_args!("{} v{} fmspc {}", tcb.id, tcb.version, to_hex(&tcb.fmspc)),
            )
            .field("qe_identity", &format_args!("{} v{}", qe.id, qe.version))
            .field("tcb_info_issuer_chain", &subjects(&p.tcb_info_issuer_chain))
            .field(
                "qe_identity_issuer_chain",
                &subjects(&p.qe_identity_issuer_chain),
            )
            .field("pck_crl_issuer_chain", &subjects(&p.pck_crl_issuer_chain))
            .field("pck_crl", &p.pck_crl.as_ref().map(Crl::issuer))
            .field("root_ca_crl", &p.root_ca_crl.as_ref().map(Crl::issuer))
            .field("digest", &to_hex(&self.digest))
            .finish()
    }
}

/// Domain separation for [`Collateral::digest`]; bump when the encoding changes.
const DIGEST_DOMAIN: &[u8] = b"tessera-tdx collateral digest v2\0";

fn digest_of(p: &CollateralParts) -> [u8; 32] {
    fn bytes(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(b.len() as u64).to_be_bytes());
        out.extend_from_slice(b);
    }
    fn chain(out: &mut Vec<u8>, tag: u8, certs: &[Certificate]) {
        out.push(tag);
        out.extend_from_slice(&(certs.len() as u64).to_be_bytes());
        // Each certificate by its fingerprint, which it keeps: the chains of one collateral
        // share certificates (and the root is Intel's), so each is hashed once.
        for c in certs {
            bytes(out, tag, &c.sha256());
        }
    }
    fn crl(out: &mut Vec<u8>, tag: u8, crl: Option<&Crl>) {
        match crl {
            Some(c) => bytes(out, tag, c.der()),
            None => out.push(tag | 0x80),
        }
    }
    let mut out = Vec::with_capacity(16 * 1024);
    out.extend_from_slice(DIGEST_DOMAIN);
    bytes(&mut out, 1, p.tcb_info.body());
    bytes(&mut out, 2, p.tcb_info.signature());
    bytes(&mut out, 3, p.qe_identity.body());
    bytes(&mut out, 4, p.qe_identity.signature());
    chain(&mut out, 5, &p.tcb_info_issuer_chain);
    chain(&mut out, 6, &p.qe_identity_issuer_chain);
    chain(&mut out, 7, &p.pck_crl_issuer_chain);
    crl(&mut out, 8, p.pck_crl.as_ref());
    crl(&mut out, 9, p.root_ca_crl.as_ref());
    tessera_pki::sha256(&out)
}

/// Certificates from PEM text (or URL-encoded PEM, as in PCS response headers).
pub(crate) fn chain_from_text(
    item: &'static str,
    text: &str,
) -> Result<Vec<Certificate>, CollateralError> {
    let decoded = percent_decode_pem(text.as_bytes());
    let bytes = decoded.as_deref().unwrap_or(text.as_bytes());
    // Intel's chains end in the embedded root: that one is not parsed again.
    let known: Vec<&Certificate> = crate::verify::intel_root().into_iter().collect();
    load_certificates_reusing(bytes, &known).map_err(CollateralError::pki(item))
}

fn chain_to_pem(chain: &[Certificate]) -> String {
    chain
        .iter()
        .map(|c| to_pem("CERTIFICATE", c.der()))
        .collect()
}

/// One CRL from hex DER or PEM text.
fn crl_from_text(item: &'static str, text: &str) -> Result<Crl, CollateralError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        let mut crls = load_crls(text.as_bytes()).map_err(CollateralError::pki(item))?;
        return match (crls.pop(), crls.is_empty()) {
            (Some(crl), true) => Ok(crl),
            _ => Err(CollateralError::Field {
                item,
                field: item.to_owned(),
                detail: String::from("expected exactly one CRL"),
            }),
        };
    }
    let der = tessera_pki::from_hex(text.as_bytes()).ok_or_else(|| CollateralError::Field {
        item,
        field: item.to_owned(),
        detail: String::from("neither hex DER nor PEM"),
    })?;
    Crl::from_der(&der).map_err(CollateralError::pki(item))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collateral::TcbInfoId;
    use crate::collateral::tests::{collateral_cases, read_json};
    use proptest::prelude::*;
    use tessera_pki::load_certificates;

    /// An edit of a bundle.
    type BundleEdit<'a> = Box<dyn Fn(&mut CollateralBundle) + 'a>;
    /// What error an edit must cause.
    type ErrorCheck = fn(&CollateralError) -> bool;

    #[test]
    fn every_vector_bundle_parses_and_its_id_agrees_with_the_tee() {
        let cases = collateral_cases();
        for case in &cases {
            let bytes = std::fs::read(&case.bundle).unwrap();
            let c = Collateral::from_bundle_json(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let expected = if case.name == "tdx/phala-tdx-v4-b0c06f-2024-09-sgxcoll-neg" {
                // Deliberately SGX collateral for a TDX quote: parses, and says SGX.
                TcbInfoId::Sgx
            } else if case.tee == "tdx" {
                TcbInfoId::Tdx
            } else {
                TcbInfoId::Sgx
            };
            assert_eq!(c.tcb_info().value().id, expected, "{}", case.name);
            let partial = case.bundle.ends_with("collateral.partial.json");
            assert_eq!(c.is_partial(), partial, "{}", case.name);
            assert!(!c.tcb_info_issuer_chain().is_empty());
            assert!(!c.qe_identity_issuer_chain().is_empty());
            let json = read_json(&case.bundle);
            assert_eq!(c.tcb_info().body_str(), json["tcb_info"].as_str().unwrap());
            assert_eq!(
                c.qe_identity().body_str(),
                json["qe_identity"].as_str().unwrap()
            );
            // The round trip through the bundle form keeps every part, so the digest too.
            let again =
                Collateral::from_bundle_json(&serde_json::to_vec(&c.to_bundle()).unwrap()).unwrap();
            assert_eq!(again, c, "{}", case.name);
            assert_eq!(again.digest(), c.digest());
            let debug = format!("{c:?}");
            assert!(debug.contains("fmspc") && !debug.contains("BEGIN"));
        }
        if !cases.is_empty() {
            eprintln!("{} collateral bundles parsed", cases.len());
        }
    }

    #[test]
    fn tcb_info_v2_vector() {
        let Some(case) = collateral_cases()
            .into_iter()
            .find(|c| c.name == "sgx/auto-sgx-v3-00606a-2024-05-tcbinfo-v2")
        else {
            return;
        };
        let c = Collateral::from_bundle_json(&std::fs::read(&case.bundle).unwrap()).unwrap();
        let info = c.tcb_info().value();
        assert_eq!(info.version, 2);
        assert_eq!(info.id, TcbInfoId::Sgx);
        assert_eq!(info.fmspc, [0x00, 0x60, 0x6a, 0, 0, 0]);
        assert_eq!(info.tcb_evaluation_data_number, 16);
        assert_eq!(info.tcb_levels.len(), 9);
        let first = &info.tcb_levels[0];
        assert_eq!(
            first
                .sgx_components
                .iter()
                .map(|c| c.svn)
                .collect::<Vec<_>>(),
            [12, 12, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(first.pce_svn, 13);
        assert_eq!(
            first.tcb_status,
            crate::collateral::TcbStatus::SwHardeningNeeded
        );
        assert!(first.tdx_components.is_none());
        assert_eq!(
            c.qe_identity().value().id,
            crate::collateral::EnclaveIdentityId::Qe
        );
    }

    /// The QE identity's MISCSELECT, ATTRIBUTES, MRSIGNER and ISVPRODID match the QE report of
    /// every real quote (read here with the offsets of the quote format, to check the byte
    /// order chosen for `miscselect`).
    #[test]
    fn qe_identity_matches_real_qe_reports() {
        for case in collateral_cases() {
            let c = Collateral::from_bundle_json(&std::fs::read(&case.bundle).unwrap()).unwrap();
            let quote = std::fs::read(case.dir.join("quote.bin")).unwrap();
            let version = u16::from_le_bytes([quote[0], quote[1]]);
            // Header 48; v5 body has a 6-byte type/size prefix; signature-data length 4,
            // signature 64, attestation key 64; v4/v5 wrap the QE report in a 6-byte
            // certification-data header.
            let offset = match version {
                3 => 48 + 384 + 4 + 64 + 64,
                4 => 48 + 584 + 4 + 64 + 64 + 6,
                5 => {
                    let size = u32::from_le_bytes(quote[50..54].try_into().unwrap()) as usize;
                    48 + 6 + size + 4 + 64 + 64 + 6
                }
                other => panic!("{}: quote version {other}", case.name),
            };
            let report = &quote[offset..offset + 384];
            let misc_select = u32::from_le_bytes(report[16..20].try_into().unwrap());
            let id = c.qe_identity().value();
            assert_eq!(
                misc_select & id.miscselect_mask,
                id.miscselect,
                "{}",
                case.name
            );
            let attributes = &report[48..64];
            assert!(
                attributes
                    .iter()
                    .zip(id.attributes_mask)
                    .zip(id.attributes)
                    .all(|((a, m), e)| a & m == e),
                "{}",
                case.name
            );
            if !case.name.ends_with("-neg") {
                assert_eq!(report[128..160], id.mrsigner, "{}", case.name);
                assert_eq!(
                    u16::from_le_bytes([report[256], report[257]]),
                    id.isvprodid,
                    "{}",
                    case.name
                );
            }
        }
    }

    fn sample_bundle() -> Option<CollateralBundle> {
        let case = collateral_cases()
            .into_iter()
            .find(|c| c.name == "tdx/auto-tdx-v4-00806f-2025-06")?;
        Some(serde_json::from_slice(&std::fs::read(&case.bundle).unwrap()).unwrap())
    }

    #[test]
    fn digest_changes_with_every_part() {
        let Some(bundle) = sample_bundle() else {
            return;
        };
        let parse = |b: &CollateralBundle| {
            Collateral::from_bundle_json(&serde_json::to_vec(b).unwrap()).unwrap()
        };
        let base = parse(&bundle);
        assert_eq!(base.digest(), parse(&bundle).digest());
        let flip_hex = |s: &str| {
            let mut chars: Vec<char> = s.chars().collect();
            chars[10] = if chars[10] == '0' { '1' } else { '0' };
            chars.into_iter().collect::<String>()
        };
        let drop_last_cert = |pem: &str| {
            let certs = load_certificates(pem.as_bytes()).unwrap();
            chain_to_pem(&certs[..certs.len() - 1])
        };
        let variants: Vec<(&str, BundleEdit<'_>)> = vec![
            ("tcb_info", Box::new(|b| b.tcb_info.push(' '))),
            (
                "tcb_info_signature",
                Box::new(|b| b.tcb_info_signature = flip_hex(&b.tcb_info_signature)),
            ),
            ("qe_identity", Box::new(|b| b.qe_identity.insert(0, '\n'))),
            (
                "qe_identity_signature",
                Box::new(|b| b.qe_identity_signature = flip_hex(&b.qe_identity_signature)),
            ),
            (
                "tcb_info_issuer_chain",
                Box::new(|b| b.tcb_info_issuer_chain = drop_last_cert(&b.tcb_info_issuer_chain)),
            ),
            (
                "qe_identity_issuer_chain",
                Box::new(|b| {
                    b.qe_identity_issuer_chain = drop_last_cert(&b.qe_identity_issuer_chain)
                }),
            ),
            (
                "pck_crl_issuer_chain",
                Box::new(|b| {
                    b.pck_crl_issuer_chain = b.pck_crl_issuer_chain.as_deref().map(drop_last_cert);
                }),
            ),
            ("pck_crl", Box::new(|b| b.pck_crl = None)),
            ("root_ca_crl", Box::new(|b| b.root_ca_crl = None)),
            (
                "crls swapped",
                Box::new(|b| core::mem::swap(&mut b.pck_crl, &mut b.root_ca_crl)),
            ),
        ];
        let mut seen = std::collections::BTreeSet::from([base.digest()]);
        for (name, mutate) in variants {
            let mut b = bundle.clone();
            mutate(&mut b);
            let changed = parse(&b);
            assert!(seen.insert(changed.digest()), "{name}: digest unchanged");
        }
        // Encodings that do not change content keep the digest: upper-case hex, PEM CRLs.
        let mut b = bundle.clone();
        b.tcb_info_signature = b.tcb_info_signature.to_uppercase();
        b.pck_crl = b
            .pck_crl
            .map(|h| to_pem("X509 CRL", &hex::decode(h).unwrap()));
        assert_eq!(parse(&b).digest(), base.digest());
    }

    #[test]
    fn partial_and_malformed_bundles() {
        let Some(bundle) = sample_bundle() else {
            return;
        };
        let mut json = serde_json::to_value(&bundle).unwrap();
        json["root_ca_crl"] = serde_json::Value::Null;
        let o = json.as_object_mut().unwrap();
        o.remove("pck_crl");
        o.remove("pck_crl_issuer_chain");
        o.insert(String::from("future_field"), serde_json::json!(1));
        let c = Collateral::from_bundle_json(&serde_json::to_vec(&json).unwrap()).unwrap();
        assert!(c.is_partial());
        assert!(c.pck_crl().is_none() && c.root_ca_crl().is_none());
        assert!(c.pck_crl_issuer_chain().is_empty());
        let b = c.to_bundle();
        assert_eq!(
            (b.pck_crl, b.root_ca_crl, b.pck_crl_issuer_chain),
            (None, None, None)
        );

        for field in [
            "tcb_info",
            "tcb_info_signature",
            "tcb_info_issuer_chain",
            "qe_identity",
            "qe_identity_signature",
            "qe_identity_issuer_chain",
        ] {
            let mut json = serde_json::to_value(&bundle).unwrap();
            json.as_object_mut().unwrap().remove(field);
            assert_eq!(
                Collateral::from_bundle_json(&serde_json::to_vec(&json).unwrap()).unwrap_err(),
                CollateralError::Missing { item: field },
            );
        }
        let bad: Vec<(BundleEdit<'static>, ErrorCheck)> = vec![
            (Box::new(|b| b.tcb_info_signature.truncate(100)), |e| {
                matches!(
                    e,
                    CollateralError::Hex {
                        item: "tcb_info",
                        ..
                    }
                )
            }),
            (Box::new(|b| b.qe_identity = b.tcb_info.clone()), |e| {
                matches!(
                    e,
                    CollateralError::UnsupportedVersion {
                        item: "qe_identity",
                        ..
                    }
                )
            }),
            (Box::new(|b| b.pck_crl = Some(String::from("zz"))), |e| {
                matches!(
                    e,
                    CollateralError::Field {
                        item: "pck_crl",
                        ..
                    }
                )
            }),
            (
                Box::new(|b| b.root_ca_crl = Some(String::from("3000"))),
                |e| {
                    matches!(
                        e,
                        CollateralError::Pki {
                            item: "root_ca_crl",
                            ..
                        }
                    )
                },
            ),
            (
                Box::new(|b| b.tcb_info_issuer_chain = String::from("not pem")),
                |e| {
                    matches!(
                        e,
                        CollateralError::Pki {
                            item: "tcb_info_issuer_chain",
                            ..
                        }
                    )
                },
            ),
            (
                Box::new(|b| b.pck_crl_issuer_chain = Some(String::new())),
                |e| {
                    matches!(
                        e,
                        CollateralError::Pki {
                            item: "pck_crl_issuer_chain",
                            ..
                        }
                    )
                },
            ),
        ];
        for (mutate, expected) in bad {
            let mut b = bundle.clone();
            mutate(&mut b);
            let err = Collateral::from_bundle_json(&serde_json::to_vec(&b).unwrap()).unwrap_err();
            assert!(expected(&err), "{err}");
            assert!(err.to_string().len() < 400, "{err}");
        }
        for junk in [&b""[..], b"[]", b"{\"tcb_info\": 5}", b"<html>"] {
            assert!(matches!(
                Collateral::from_bundle_json(junk),
                Err(CollateralError::Json { .. })
            ));
        }
    }

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(".{0,40}")
    }

    proptest! {
        #[test]
        fn bundle_json_round_trips(
            pck_crl_issuer_chain in opt_text(),
            root_ca_crl in opt_text(),
            pck_crl in opt_text(),
            texts in proptest::collection::vec(".{0,60}", 6),
        ) {
            let bundle = CollateralBundle {
                pck_crl_issuer_chain,
                root_ca_crl,
                pck_crl,
                tcb_info_issuer_chain: texts[0].clone(),
                tcb_info: texts[1].clone(),
                tcb_info_signature: texts[2].clone(),
                qe_identity_issuer_chain: texts[3].clone(),
                qe_identity: texts[4].clone(),
                qe_identity_signature: texts[5].clone(),
            };
            let json = serde_json::to_vec(&bundle).unwrap();
            let back: CollateralBundle = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(&back, &bundle);
            let pretty = serde_json::to_string_pretty(&bundle).unwrap();
            prop_assert_eq!(serde_json::from_str::<CollateralBundle>(&pretty).unwrap(), bundle);
            // Whatever the content, reading it as collateral never panics.
            crate::collateral::fuzz_bundle(&json);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            crate::collateral::fuzz_bundle(&bytes);
            crate::collateral::fuzz_tcb_info(&bytes);
            crate::collateral::fuzz_qe_identity(&bytes);
        }
    }
}
