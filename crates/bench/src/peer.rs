//! The peer: VirTEE's `sev` crate, version 8, with its `openssl` backend (system OpenSSL).
//!
//! API used (sev 8.0.0):
//! - `sev::firmware::guest::AttestationReport::from_bytes(&[u8])` through the
//!   `sev::parser::ByteParser` trait (decodes the 0x4A0-byte report into an owned struct);
//! - `sev::certs::snp::Certificate::from_der` / `from_pem` (an `openssl::x509::X509` inside);
//! - `sev::certs::snp::Verifiable`: `(&vek, &report).verify()` re-serializes the report, hashes
//!   `0..0x2A0` with SHA-384 and checks the ECDSA signature; `(&chain, &report).verify()` first
//!   checks the chain (ARK self-signature, ARK -> ASK, ASK -> VEK: three RSA-PSS-4096 checks).
//!
//! sev checks no validity dates, TCB extensions or key usage; it only checks signatures.

use sev::certs::snp::{Certificate, Chain, Verifiable, ca};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;

use crate::Case;

/// Why the peer could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum PeerError {
    /// sev rejected a certificate or the report while loading.
    Load(&'static str, std::io::Error),
    /// sev rejected the real case: this is a finding about the peer (or the case), not the bench.
    Rejected(&'static str, std::io::Error),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Load(what, e) => write!(f, "sev cannot load the {what}: {e}"),
            Self::Rejected(what, e) => write!(f, "sev rejects the {what}: {e}"),
        }
    }
}

impl std::error::Error for PeerError {}

/// The peer's state: certificates parsed once (the ARK and ASK are embedded by tessera too).
pub struct Peer {
    report: Vec<u8>,
    vek_der: Vec<u8>,
    vek: Certificate,
    ask: Certificate,
    ark: Certificate,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").finish_non_exhaustive()
    }
}

impl Peer {
    /// Load the case into sev types and check that sev accepts it both ways.
    ///
    /// # Errors
    /// [`PeerError`] when sev cannot parse the inputs or rejects the report or chain.
    pub fn new(case: &Case) -> Result<Self, PeerError> {
        let cert =
            |what, der: &[u8]| Certificate::from_der(der).map_err(|e| PeerError::Load(what, e));
        let peer = Self {
            report: case.report.clone(),
            vek_der: case.vek_der.clone(),
            vek: cert("VEK", &case.vek_der)?,
            ask: cert("ASK", case.ask.der())?,
            ark: cert("ARK", case.ark.der())?,
        };
        let report = AttestationReport::from_bytes(&peer.report)
            .map_err(|e| PeerError::Load("report", e))?;
        (&peer.vek, &report)
            .verify()
            .map_err(|e| PeerError::Rejected("report under the VEK", e))?;
        peer.cold()
            .map_err(|e| PeerError::Rejected("chain and report", e))?;
        Ok(peer)
    }

    /// `snp_warm`: parse the report, verify it under the already-parsed VEK (no chain).
    ///
    /// # Errors
    /// sev's error when parsing or verification fails.
    pub fn warm(&self) -> std::io::Result<()> {
        let report = AttestationReport::from_bytes(&self.report)?;
        (&self.vek, &report).verify()
    }

    /// `snp_cold`: parse the report and the VEK DER, verify ARK -> ASK -> VEK and the report.
    ///
    /// # Errors
    /// sev's error when parsing or verification fails.
    pub fn cold(&self) -> std::io::Result<()> {
        let report = AttestationReport::from_bytes(&self.report)?;
        let chain = Chain {
            ca: ca::Chain {
                ark: self.ark.clone(),
                ask: self.ask.clone(),
            },
            vek: Certificate::from_der(&self.vek_der)?,
        };
        (&chain, &report).verify()
    }
}
