//! Tessera: verify confidential-computing attestation evidence (AMD SEV-SNP, Intel TDX and SGX)
//! and appraise it against a policy.
#![forbid(unsafe_code)]
pub use tessera_pki as pki;
pub use tessera_policy as policy;
pub use tessera_snp as snp;
pub use tessera_tdx as tdx;
