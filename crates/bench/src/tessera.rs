//! Tessera, the code under test: `tessera_snp::verify::Verifier` with the embedded AMD anchors.
//!
//! Both scenarios parse the report from bytes on every call, like the peer does, so that the
//! per-request input is treated alike. `snp_warm` calls a `Verifier` that has verified this VEK
//! once already (its cache leaves one ECDSA check); `snp_cold` builds a fresh `Verifier` per call
//! and parses the VEK DER, so it verifies VEK -> ASK (pinned in the anchors) and the report.

use tessera_pki::{Certificate, PkiError, UnixTime};
use tessera_snp::SnpError;
use tessera_snp::abi::AttestationReport;
use tessera_snp::verify::{TrustAnchors, Verifier};

use crate::Case;

/// Why tessera could not be set up on the case.
#[derive(Debug)]
#[non_exhaustive]
pub enum TesseraError {
    /// Loading the anchors or verifying the case failed.
    Snp(&'static str, SnpError),
    /// Parsing the VEK failed.
    Pki(&'static str, PkiError),
}

impl std::fmt::Display for TesseraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Snp(what, e) => write!(f, "tessera {what}: {e}"),
            Self::Pki(what, e) => write!(f, "tessera {what}: {e}"),
        }
    }
}

impl std::error::Error for TesseraError {}

/// Tessera's state for both scenarios.
#[derive(Debug)]
pub struct Tessera {
    report: Vec<u8>,
    vek_der: Vec<u8>,
    /// The certificates a caller hands over: the VEK alone (ASK and ARK are embedded).
    certs: Vec<Certificate>,
    at: UnixTime,
    anchors: TrustAnchors,
    /// The verifier that has seen this VEK (warm cache).
    warm: Verifier,
}

impl Tessera {
    /// Load the anchors, verify the case once (filling the warm verifier's cache), check cold.
    ///
    /// # Errors
    /// [`TesseraError`] when the anchors do not load or tessera rejects the case.
    pub fn new(case: &Case) -> Result<Self, TesseraError> {
        let anchors = TrustAnchors::amd().map_err(|e| TesseraError::Snp("anchors", e))?;
        let report = AttestationReport::from_bytes(&case.report)
            .map_err(|e| TesseraError::Snp("report parse", e.into()))?;
        let certs = vec![case.vek.clone()];
        let warm = Verifier::new(anchors.clone());
        warm.verify(&report, &certs, &[], case.at, None)
            .map_err(|e| TesseraError::Snp("first verification", e))?;
        let tessera = Self {
            report: case.report.clone(),
            vek_der: case.vek_der.clone(),
            certs,
            at: case.at,
            anchors,
            warm,
        };
        tessera.cold_checked()?;
        Ok(tessera)
    }

    /// Parse the report (criterion's `snp_parse`).
    #[must_use]
    pub fn parse(&self) -> bool {
        AttestationReport::from_bytes(&self.report).is_ok()
    }

    /// `snp_warm`: parse the report, verify it with the warm verifier.
    #[must_use]
    pub fn warm(&self) -> bool {
        AttestationReport::from_bytes(&self.report).is_ok_and(|r| {
            self.warm
                .verify(&r, &self.certs, &[], self.at, None)
                .is_ok()
        })
    }

    /// `snp_cold`: parse the report and the VEK DER, verify with a fresh verifier.
    #[must_use]
    pub fn cold(&self) -> bool {
        self.cold_checked().is_ok()
    }

    fn cold_checked(&self) -> Result<(), TesseraError> {
        let report = AttestationReport::from_bytes(&self.report)
            .map_err(|e| TesseraError::Snp("report parse", e.into()))?;
        let vek =
            Certificate::from_der(&self.vek_der).map_err(|e| TesseraError::Pki("VEK parse", e))?;
        Verifier::new(self.anchors.clone())
            .verify(&report, std::slice::from_ref(&vek), &[], self.at, None)
            .map_err(|e| TesseraError::Snp("cold verification", e))?;
        Ok(())
    }
}
