//! The TDX peer: Phala's `dcap-qvl` crate, version 0.7, features `std`, `ring`, `default-x509`.
//!
//! API used (dcap-qvl 0.7.1):
//! - `dcap_qvl::QuoteCollateralV3`, serde-deserialized from the collateral bundle JSON (the case's
//!   `collateral.json` is in this very layout: PEM issuer chains, hex CRLs and signatures, the TCB
//!   info and QE identity as the exact signed JSON strings);
//! - `dcap_qvl::verify::verify(&quote, &collateral, now_secs) -> anyhow::Result<VerifiedReport>`:
//!   `QuoteVerifier::<DefaultConfig>::new_prod()` (the embedded Intel SGX Root CA; `DefaultConfig`
//!   is `RingConfig` when the `ring` feature is on) on a clone of the collateral. Per call it parses
//!   both CRLs (checking the root CA CRL's signature), checks the root against it, decodes the
//!   quote, verifies the TCB info issuer chain (`webpki`) and signature and parses its JSON, the QE
//!   identity signature and JSON (its chain only when it differs from the TCB info's), the PCK
//!   chain from the quote to the root with both CRLs (`webpki` checks the PCK CRL's signature
//!   there), the QE report signature, the QE report data hash, the QE identity policy, the quote
//!   signature, then matches the platform TCB level and merges the statuses: 9 ECDSA P-256
//!   verifications, as the floor counts. `VerifiedReport::status` is the
//!   status name, e.g. `"UpToDate"`.
//!
//! dcap-qvl keeps no state between calls, so it has no warm path: in `tdx_warm` it runs the same
//! full verification as in `tdx_cold`, with the collateral already deserialized.

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::verify::VerifiedReport;

use crate::tdx::TdxCase;

/// Why the peer could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum DcapQvlError {
    /// The collateral bundle does not deserialize into `QuoteCollateralV3`.
    Collateral(serde_json::Error),
    /// The verification time is before 1970.
    Time(i64),
    /// dcap-qvl rejected the real case: a finding about the peer (or the case), not the bench.
    Rejected(anyhow::Error),
    /// dcap-qvl accepted the quote with another TCB status than the case expects.
    Status {
        /// What dcap-qvl says.
        got: String,
        /// What the case says.
        want: String,
    },
}

impl std::fmt::Display for DcapQvlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Collateral(e) => write!(f, "dcap-qvl cannot load the collateral: {e}"),
            Self::Time(secs) => write!(f, "dcap-qvl cannot take the time {secs}"),
            Self::Rejected(e) => write!(f, "dcap-qvl rejects the quote: {e:#}"),
            Self::Status { got, want } => {
                write!(f, "dcap-qvl says TCB status {got}, the case expects {want}")
            }
        }
    }
}

impl std::error::Error for DcapQvlError {}

/// The peer's state: the raw inputs, the collateral deserialized once (warm), the time in seconds.
pub struct DcapQvl {
    quote: Vec<u8>,
    collateral_json: Vec<u8>,
    collateral: QuoteCollateralV3,
    now_secs: u64,
    tcb_status: String,
}

impl std::fmt::Debug for DcapQvl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DcapQvl").finish_non_exhaustive()
    }
}

impl DcapQvl {
    /// Deserialize the collateral and check that dcap-qvl accepts the case with its status.
    ///
    /// # Errors
    /// [`DcapQvlError`] when the collateral does not load, or dcap-qvl rejects the quote or
    /// reports another TCB status than the case expects.
    pub fn new(case: &TdxCase) -> Result<Self, DcapQvlError> {
        let collateral =
            serde_json::from_slice(&case.collateral_json).map_err(DcapQvlError::Collateral)?;
        let secs = case.at.as_secs();
        let peer = Self {
            quote: case.quote.clone(),
            collateral_json: case.collateral_json.clone(),
            collateral,
            now_secs: u64::try_from(secs).map_err(|_| DcapQvlError::Time(secs))?,
            tcb_status: case.tcb_status.clone(),
        };
        peer.check(peer.warm())?;
        peer.check(peer.cold())?;
        Ok(peer)
    }

    fn check(&self, result: anyhow::Result<VerifiedReport>) -> Result<(), DcapQvlError> {
        let report = result.map_err(DcapQvlError::Rejected)?;
        if report.status != self.tcb_status {
            return Err(DcapQvlError::Status {
                got: report.status,
                want: self.tcb_status.clone(),
            });
        }
        Ok(())
    }

    /// Whether `result` is the expected verdict (what the timed closures return).
    #[must_use]
    pub fn accepts(&self, result: &anyhow::Result<VerifiedReport>) -> bool {
        result
            .as_ref()
            .is_ok_and(|report| report.status == self.tcb_status)
    }

    /// `tdx_warm`: `verify` on the quote bytes with the collateral deserialized once.
    ///
    /// # Errors
    /// dcap-qvl's error when verification fails.
    pub fn warm(&self) -> anyhow::Result<VerifiedReport> {
        dcap_qvl::verify::verify(&self.quote, &self.collateral, self.now_secs)
    }

    /// `tdx_cold`: deserialize the collateral JSON, then `verify` on the quote bytes.
    ///
    /// # Errors
    /// The JSON error or dcap-qvl's error when verification fails.
    pub fn cold(&self) -> anyhow::Result<VerifiedReport> {
        let collateral: QuoteCollateralV3 = serde_json::from_slice(&self.collateral_json)?;
        dcap_qvl::verify::verify(&self.quote, &collateral, self.now_secs)
    }
}
