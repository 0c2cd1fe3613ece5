//! Intel TDX contestants: one real TDX quote and its collateral bundle, three ways.
//!
//! - **tessera** ([`tessera`]): `tessera_tdx::Verifier` with the embedded Intel SGX Root CA;
//! - **the peer** ([`peer`]): Phala's `dcap-qvl` 0.7, `dcap_qvl::verify::verify` (pure Rust over
//!   `ring` and `webpki`);
//! - **the floor** ([`floor`]): the aws-lc-rs ECDSA P-256 checks and the one extra SHA-256 the
//!   scenario cannot avoid, on inputs extracted once.
//!
//! The case ([`case`]) is a `tdx/<case>` folder of the shared vectors: `quote.bin`, the
//! collateral bundle in dcap-qvl's `QuoteCollateralV3` JSON layout and the time `at`.

pub mod case;
pub mod floor;
pub mod peer;
pub mod tessera;

pub use case::{DEFAULT_TDX_CASE, TdxCase};
