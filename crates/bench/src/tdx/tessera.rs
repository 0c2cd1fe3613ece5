//! Tessera, the code under test: `tessera_tdx::Verifier` with the embedded Intel SGX Root CA.
//!
//! Both scenarios parse the quote from bytes on every call (`tessera_tdx::abi::Quote::parse`),
//! like the peer does, so that the per-request input is treated alike. `tdx_warm` calls one
//! long-lived `Verifier` that has verified this collateral and this PCK chain once already (its
//! caches leave the QE report and quote signatures, the QE report data hash, the QE identity
//! policy and the TCB status), with the collateral parsed once and passed by reference.
//! `tdx_cold` parses the collateral bundle JSON (`Collateral::from_bundle_json`) and builds a fresh
//! `Verifier::new(anchors.clone())` per call, so it verifies the PCK chain to the root, both CRLs,
//! the TCB info and QE identity issuer chains and signatures and everything `tdx_warm` does. The
//! anchors are made once, outside the loop, as in `snp_cold`.

use tessera_pki::UnixTime;
use tessera_tdx::abi::Quote;
use tessera_tdx::collateral::{Collateral, TcbStatus};
use tessera_tdx::{TdxError, TrustAnchors, Verifier, VerifyOptions};

use crate::tdx::TdxCase;

/// Why tessera could not be set up on the case.
#[derive(Debug)]
#[non_exhaustive]
pub enum TesseraTdxError {
    /// Loading the anchors, parsing or verifying the case failed.
    Tdx(&'static str, Box<TdxError>),
    /// Tessera accepted the quote with another TCB status than the case expects.
    Status {
        /// What tessera says.
        got: String,
        /// What the case says.
        want: String,
    },
}

impl std::fmt::Display for TesseraTdxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tdx(what, e) => write!(f, "tessera {what}: {e}"),
            Self::Status { got, want } => {
                write!(f, "tessera says TCB status {got}, the case expects {want}")
            }
        }
    }
}

impl std::error::Error for TesseraTdxError {}

/// Tessera's state for both TDX scenarios.
#[derive(Debug)]
pub struct TesseraTdx {
    quote: Vec<u8>,
    collateral_json: Vec<u8>,
    /// The collateral, parsed once (warm).
    collateral: Collateral,
    at: UnixTime,
    options: VerifyOptions,
    anchors: TrustAnchors,
    /// The verifier that has seen this collateral and PCK chain (warm caches).
    warm: Verifier,
    /// The status the case expects, as tessera's type (checked on every call).
    status: TcbStatus,
}

impl TesseraTdx {
    /// Load the anchors, verify the case once (filling the warm verifier's caches), check that
    /// the TCB status is the case's, check cold.
    ///
    /// # Errors
    /// [`TesseraTdxError`] when the anchors do not load, tessera rejects the case or reports
    /// another TCB status.
    pub fn new(case: &TdxCase) -> Result<Self, TesseraTdxError> {
        let anchors =
            TrustAnchors::intel().map_err(|e| TesseraTdxError::Tdx("anchors", Box::new(e)))?;
        let quote = Quote::parse(&case.quote)
            .map_err(|e| TesseraTdxError::Tdx("quote parse", Box::new(e.into())))?;
        let collateral = Collateral::from_bundle_json(&case.collateral_json)
            .map_err(|e| TesseraTdxError::Tdx("collateral parse", Box::new(e.into())))?;
        let options = VerifyOptions::default();
        let warm = Verifier::new(anchors.clone());
        let verified = warm
            .verify(&quote, &collateral, case.at, &options)
            .map_err(|e| TesseraTdxError::Tdx("first verification", Box::new(e)))?;
        // The status name is compared once, here; the timed calls compare the enum.
        let status = verified.verification().tcb.status;
        let got = format!("{status:?}");
        if got != case.tcb_status {
            return Err(TesseraTdxError::Status {
                got,
                want: case.tcb_status.clone(),
            });
        }
        let tessera = Self {
            quote: case.quote.clone(),
            collateral_json: case.collateral_json.clone(),
            collateral,
            at: case.at,
            options,
            anchors,
            warm,
            status,
        };
        tessera.cold_checked()?;
        Ok(tessera)
    }

    /// Parse the quote (criterion's `tdx_parse`).
    #[must_use]
    pub fn parse(&self) -> bool {
        Quote::parse(&self.quote).is_ok()
    }

    /// `tdx_warm`: parse the quote, verify it with the warm verifier and the parsed collateral.
    #[must_use]
    pub fn warm(&self) -> bool {
        Quote::parse(&self.quote).is_ok_and(|q| {
            self.warm
                .verify(&q, &self.collateral, self.at, &self.options)
                .is_ok_and(|v| v.verification().tcb.status == self.status)
        })
    }

    /// `tdx_cold`: parse the quote and the collateral JSON, verify with a fresh verifier.
    #[must_use]
    pub fn cold(&self) -> bool {
        self.cold_checked().is_ok()
    }

    fn cold_checked(&self) -> Result<(), TesseraTdxError> {
        let quote = Quote::parse(&self.quote)
            .map_err(|e| TesseraTdxError::Tdx("quote parse", Box::new(e.into())))?;
        let collateral = Collateral::from_bundle_json(&self.collateral_json)
            .map_err(|e| TesseraTdxError::Tdx("collateral parse", Box::new(e.into())))?;
        let verified = Verifier::new(self.anchors.clone())
            .verify(&quote, &collateral, self.at, &self.options)
            .map_err(|e| TesseraTdxError::Tdx("cold verification", Box::new(e)))?;
        let status = verified.verification().tcb.status;
        if status != self.status {
            return Err(TesseraTdxError::Status {
                got: format!("{status:?}"),
                want: format!("{:?}", self.status),
            });
        }
        Ok(())
    }
}
