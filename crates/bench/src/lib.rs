//! Fixtures, contestants and the interleaving timer for the tessera peer comparison.
//!
//! SEV-SNP: three contestants run on the same real SEV-SNP report:
//! - **tessera** ([`tessera`]): `tessera_snp::verify::Verifier`, the code under test;
//! - **the peer** ([`peer`]): VirTEE's `sev` crate 8 over the system OpenSSL;
//! - **the floor** ([`floor`]): the bare aws-lc-rs signature checks the scenario cannot avoid.
//!
//! Intel TDX ([`tdx`]): the same three roles on one real TDX quote and its collateral bundle:
//! `tessera_tdx::Verifier`, Phala's `dcap-qvl` 0.7 (pure Rust, `ring`), and the aws-lc-rs
//! ECDSA P-256 checks (plus the one extra hash) the scenario cannot avoid.
//!
//! [`timing::interleave`] alternates them in short rounds so that noise from other processes on a
//! small shared machine lands on all three alike; the medians over rounds are compared.
#![forbid(unsafe_code)]

pub mod broker;
pub mod case;
pub mod floor;
pub mod peer;
pub mod tdx;
pub mod tessera;
pub mod timing;

pub use case::{Case, CaseError};

/// Name of the SNP peer in the output.
pub const PEER_NAME: &str = "sev-8-openssl";

/// Name of the TDX peer in the output.
pub const TDX_PEER_NAME: &str = "dcap-qvl-0.7";

/// The scenarios, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// The VEK chain was verified before: one report signature check (plus parsing the report).
    SnpWarm,
    /// Everything from bytes: parse the report and the VCEK, verify VCEK -> ASK -> ARK and the report.
    SnpCold,
    /// The collateral and the PCK chain were verified before: parse the quote, check the QE report
    /// and quote signatures, the QE report data, the QE identity and the TCB status.
    TdxWarm,
    /// Everything from bytes: parse the quote and the collateral JSON, verify the PCK chain, the
    /// CRLs, the TCB info and QE identity signatures, the quote, and compute the TCB status.
    TdxCold,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Self; 4] = [Self::SnpWarm, Self::SnpCold, Self::TdxWarm, Self::TdxCold];

    /// The name printed in the output (also the criterion benchmark name).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::SnpWarm => "snp_warm",
            Self::SnpCold => "snp_cold",
            Self::TdxWarm => "tdx_warm",
            Self::TdxCold => "tdx_cold",
        }
    }

    /// The peer this scenario compares against ([`PEER_NAME`] or [`TDX_PEER_NAME`]).
    #[must_use]
    pub fn peer(self) -> &'static str {
        match self {
            Self::SnpWarm | Self::SnpCold => PEER_NAME,
            Self::TdxWarm | Self::TdxCold => TDX_PEER_NAME,
        }
    }
}
