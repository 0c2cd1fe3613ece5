//! Tessera's appraisal policy: one typed policy language for SEV-SNP, TDX and SGX, an appraisal
//! that lists every rule's outcome, and attestation results signed as EAR tokens (JWT and CWT).
//!
//! ```text
//! Verified<..> ──appraise(&Policy)──▶ Appraisal ──ear::issue_jwt / issue_cwt──▶ EAR token
//! ```
//!
//! Policies are TOML (JSON is accepted): see `examples/policies/` in the repository and
//! [`Policy`]. Loading is strict — unknown fields, missing security-relevant fields and
//! malformed values are errors ([`PolicyError`]); appraisal never errors.
#![forbid(unsafe_code)]

mod appraisal;
mod check;
pub mod ear;
mod error;
mod generate;
mod load;
mod model;
mod snp;
mod tdx;
pub mod value;

pub use appraisal::{
    Appraisal, Appraise, Behind, Outcome, RuleResult, Tee, TrustClaim, Verdict, appraise,
};
pub use check::Warning;
pub use error::PolicyError;
pub use generate::{FromEvidence, policy_from_evidence};
pub use load::{MAX_POLICY_LEN, MAX_REFERENCE_FILE_LEN, fuzz_policy};
pub use model::{
    FirmwareFloor, GuestPolicyRules, IntelTcbPolicy, MaskedValue, POLICY_VERSION, PerProductTcb,
    PlatformInfoRules, Policy, Revocation, SgxAttributesRule, SgxPolicy, SignerRule, SnpPolicy,
    StatusName, TcbFloor, TdAttribute, TdAttributeRules, TdxPolicy,
};
