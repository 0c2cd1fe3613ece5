//! The floor: the bare aws-lc-rs signature checks a scenario cannot avoid, on pre-extracted inputs.
//!
//! Nothing is parsed per iteration. `snp_warm`'s floor is one ECDSA P-384 / SHA-384 verification
//! of the report (the SHA-384 of the signed part included); `snp_cold`'s adds one RSA-PSS-4096 /
//! SHA-384 verification of the VCEK's TBS under the ASK key (the ASK is pinned, so no ARK check).
//! Both build an `UnparsedPublicKey` per call, as a one-shot verifier would.
//!
//! Report layout (AMD SEV-SNP Firmware ABI specification 56860, Table "ATTESTATION_REPORT
//! Structure" and Table "ECDSA P-384 with SHA-384 Signature"), restated here on purpose so the floor
//! does not share tessera's parser: the
//! signature covers bytes `0..0x2A0`; the signature is `r` then `s`, each 72 bytes little-endian of
//! which the low 48 carry a P-384 scalar.

use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, RSA_PSS_2048_8192_SHA384, UnparsedPublicKey};
use tessera_pki::PublicKeyKind;

use crate::Case;

/// Length of a raw report.
const REPORT_LEN: usize = 0x4A0;
/// End of the signed part (start of SIGNATURE).
const SIGNED_END: usize = 0x2A0;
/// Width of each of `r` and `s` in the report.
const SIG_COMPONENT_LEN: usize = 72;
/// Offset of `r`.
const SIG_R: usize = SIGNED_END;
/// Offset of `s`.
const SIG_S: usize = SIG_R + SIG_COMPONENT_LEN;
/// Significant bytes of a P-384 scalar.
const P384_SCALAR_LEN: usize = 48;

/// Why the floor's inputs could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum FloorError {
    /// The report is not 0x4A0 bytes.
    ReportLength(usize),
    /// The VEK key is not P-384, or the ASK key is not RSA.
    KeyKind(&'static str),
    /// The floor rejected the real data (wrong case, or the extraction is wrong).
    Rejected(&'static str),
}

impl std::fmt::Display for FloorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReportLength(len) => write!(f, "report is {len} bytes, want {REPORT_LEN}"),
            Self::KeyKind(what) => write!(f, "unexpected key kind: {what}"),
            Self::Rejected(what) => write!(f, "floor rejects the case: {what}"),
        }
    }
}

impl std::error::Error for FloorError {}

/// `r || s`, big-endian, 48 bytes each, from the report's little-endian 72-byte fields.
fn fixed_signature(report: &[u8]) -> Option<[u8; 2 * P384_SCALAR_LEN]> {
    let r = report.get(SIG_R..SIG_R + P384_SCALAR_LEN)?;
    let s = report.get(SIG_S..SIG_S + P384_SCALAR_LEN)?;
    let mut out = [0u8; 2 * P384_SCALAR_LEN];
    for (dst, src) in out.iter_mut().zip(r.iter().rev().chain(s.iter().rev())) {
        *dst = *src;
    }
    Some(out)
}

/// Inputs of the floor, extracted once from a [`Case`].
#[derive(Clone, Debug)]
pub struct Floor {
    /// The report's signed part, `0..0x2A0`.
    signed: Vec<u8>,
    /// `r || s` big-endian.
    report_sig: [u8; 2 * P384_SCALAR_LEN],
    /// The VEK's uncompressed P-384 point.
    vek_point: Vec<u8>,
    /// The VEK's TBSCertificate.
    vek_tbs: Vec<u8>,
    /// The VEK's RSA-PSS signature.
    vek_sig: Vec<u8>,
    /// The ASK's RSAPublicKey DER.
    ask_key: Vec<u8>,
}

impl Floor {
    /// Extract the floor's inputs and check that both floors accept them.
    ///
    /// # Errors
    /// [`FloorError`] when the case does not have the expected shape or a floor rejects it.
    pub fn new(case: &Case) -> Result<Self, FloorError> {
        if case.report.len() != REPORT_LEN {
            return Err(FloorError::ReportLength(case.report.len()));
        }
        let signed = case
            .report
            .get(..SIGNED_END)
            .ok_or(FloorError::ReportLength(case.report.len()))?
            .to_vec();
        let report_sig =
            fixed_signature(&case.report).ok_or(FloorError::ReportLength(case.report.len()))?;
        if case.vek.public_key().kind() != PublicKeyKind::EcP384 {
            return Err(FloorError::KeyKind("VEK key is not P-384"));
        }
        if !matches!(case.ask.public_key().kind(), PublicKeyKind::Rsa { .. }) {
            return Err(FloorError::KeyKind("ASK key is not RSA"));
        }
        let floor = Self {
            signed,
            report_sig,
            vek_point: case.vek.public_key().raw().to_vec(),
            vek_tbs: case.vek.tbs().to_vec(),
            vek_sig: case.vek.signature().to_vec(),
            ask_key: case.ask.public_key().raw().to_vec(),
        };
        if !floor.warm() {
            return Err(FloorError::Rejected("report signature under the VEK"));
        }
        if !floor.cold() {
            return Err(FloorError::Rejected("VEK signature under the ASK"));
        }
        Ok(floor)
    }

    /// `snp_warm` floor: one ECDSA P-384 / SHA-384 verification of the report.
    #[must_use]
    pub fn warm(&self) -> bool {
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &self.vek_point)
            .verify(&self.signed, &self.report_sig)
            .is_ok()
    }

    /// `snp_cold` floor: RSA-PSS-4096 / SHA-384 over the VEK's TBS, then the report verification.
    #[must_use]
    pub fn cold(&self) -> bool {
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA384, &self.ask_key)
            .verify(&self.vek_tbs, &self.vek_sig)
            .is_ok()
            && self.warm()
    }
}
