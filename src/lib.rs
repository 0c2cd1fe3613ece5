//! Tessera: verify confidential-computing attestation evidence (AMD SEV-SNP, Intel TDX and SGX).
#![forbid(unsafe_code)]
pub use tessera_pki as pki;
pub use tessera_snp as snp;
pub use tessera_tdx as tdx;
