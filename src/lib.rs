//! Tessera: verify confidential-computing attestation evidence (AMD SEV-SNP, Intel TDX and SGX)
//! and appraise it against a policy. This crate is the front door: what a user meets first.
//!
//! ```text
//! bytes / KBS JSON ──Evidence::from_*──▶ Evidence ──Verifier::verify(at)──▶ VerifiedEvidence
//!     ──appraise(&Policy)──▶ Appraisal ──EarClaims::from_appraisal──▶ EAR token (JWT / CWT)
//! ```
//!
//! - [`Evidence`] detects every form: a raw SEV-SNP report, an extended report with its
//!   certificate table, configfs-tsm `outblob`/`auxblob`, an Azure HCL report, the KBS JSON forms
//!   (the `sev`-crate report JSON with `cert_chain`, `{"report": base64}`), and TDX/SGX quotes
//!   (raw or `{"quote", "cc_eventlog"}`). When nothing matches, the error lists what was tried.
//! - [`Verifier`] holds both TEEs' verifiers (the vendors' embedded roots by default; test roots
//!   only through `dangerous_` methods), their caches, and the [`Endorsements`] (certificates,
//!   CRLs, Intel collateral — given, or read from a directory when it is built). `verify` does no
//!   I/O and takes the time as a parameter.
//! - [`VerifiedEvidence`] is TEE-neutral (TEE, REPORT_DATA, init-data field, claims as JSON);
//!   only the verifier makes one, and only [`appraise`] of verified evidence makes an
//!   [`Appraisal`], the only input EAR claims are made from.
//!
//! The per-TEE crates stay reachable for what this facade does not cover ([`snp`], [`tdx`],
//! [`pki`], [`policy`]); their `Verifier`/`TrustAnchors` are the building blocks of this one.
#![forbid(unsafe_code)]

mod endorsements;
mod evidence;
mod kbs;
mod verifier;

pub use tessera_pki as pki;
pub use tessera_policy as policy;
pub use tessera_snp as snp;
pub use tessera_tdx as tdx;

pub use endorsements::{
    EndorsementError, EndorsementRequest, Endorsements, MAX_DIR_BYTES, MAX_DIR_FILES, MAX_FILE_LEN,
};
pub use evidence::{
    Attempt, Evidence, EvidenceError, Form, MAX_EVIDENCE_LEN, MAX_JSON_LEN, fuzz_evidence,
};
pub use kbs::{
    MAX_CERT_CHAIN_ENTRIES, MAX_CERT_LEN, MAX_EVENTLOG_LEN, MAX_QUOTE_LEN, MAX_REPORT_LEN,
    fuzz_kbs_json,
};
pub use tessera_pki::UnixTime;
pub use tessera_policy::ear::EarClaims;
pub use tessera_policy::{Appraisal, Policy, Tee, Verdict, appraise};
pub use verifier::{BuildError, VerifiedEvidence, Verifier, VerifierBuilder, VerifyError};
