//! Tessera: verify confidential-computing attestation evidence.
#![forbid(unsafe_code)]
pub use tessera_pki as pki;
pub use tessera_snp as snp;
