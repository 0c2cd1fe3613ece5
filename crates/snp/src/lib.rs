//! AMD SEV-SNP attestation: parse reports (`abi`), verify them against AMD's chains (`verify`),
//! and simulate a fake AMD PKI for tests (`sim`).
//!
//! ```text
//! bytes ──abi──▶ AttestationReport ──verify(certs, CRLs, time)──▶ Verified<..> ──claims──▶ JSON
//! ```
#![forbid(unsafe_code)]

pub mod abi;
pub mod certs;
pub mod claims;
mod error;
pub mod sim;
pub mod verify;

pub use error::SnpError;
pub use verify::{TrustAnchors, Verification, Verified, VerifiedChain, Verifier};
