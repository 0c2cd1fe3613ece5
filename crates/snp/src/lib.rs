//! AMD SEV-SNP attestation: parse reports (`abi`), verify them against AMD's chains (`verify`).
#![forbid(unsafe_code)]

pub mod abi;
