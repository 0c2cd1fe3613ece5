//! Intel TDX and SGX DCAP attestation: parse quotes (`abi`), read PCK certificate extensions
//! (`pck`) and Intel's collateral (`collateral`), compute the TCB status as Intel's Quote
//! Verification Library does (`tcb`), verify quotes against the Intel SGX Root CA (`verify`),
//! and simulate a fake Intel PKI for tests (`sim`).
//!
//! ```text
//! bytes ──abi──▶ Quote ──verify(collateral, time)──▶ Verified<Quote> (+ TCB status) ──claims──▶ JSON
//! ```
#![forbid(unsafe_code)]

pub mod abi;
pub mod claims;
pub mod collateral;
mod error;
pub mod pck;
pub mod sim;
pub mod tcb;
pub mod verify;

pub use error::TdxError;
pub use verify::{CollateralItem, TrustAnchors, Verification, Verified, Verifier, VerifyOptions};
