//! Fixtures, contestants and the interleaving timer for the tessera peer comparison.
//!
//! Three contestants run on the same real SEV-SNP report:
//! - **tessera** ([`tessera`]): `tessera_snp::verify::Verifier`, the code under test;
//! - **the peer** ([`peer`]): VirTEE's `sev` crate 8 over the system OpenSSL;
//! - **the floor** ([`floor`]): the bare aws-lc-rs signature checks the scenario cannot avoid.
//!
//! [`timing::interleave`] alternates them in short rounds so that noise from other processes on a
//! small shared machine lands on all three alike; the medians over rounds are compared.
#![forbid(unsafe_code)]

pub mod case;
pub mod floor;
pub mod peer;
pub mod tessera;
pub mod timing;

pub use case::{Case, CaseError};

/// Name of the peer in the output.
pub const PEER_NAME: &str = "sev-8-openssl";

/// The scenarios, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// The VEK chain was verified before: one report signature check (plus parsing the report).
    SnpWarm,
    /// Everything from bytes: parse the report and the VCEK, verify VCEK -> ASK -> ARK and the report.
    SnpCold,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Self; 2] = [Self::SnpWarm, Self::SnpCold];

    /// The name printed in the output (also the criterion benchmark name).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::SnpWarm => "snp_warm",
            Self::SnpCold => "snp_cold",
        }
    }
}
