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
//!   [`Appraisal`]. [`EarClaims::from_appraisal`] takes its status, trustworthiness vector and
//!   policy id from the appraisal alone; what the caller adds besides (annotated evidence,
//!   runtime-data claims) is carried as given, not checked.
//!
//! # Verify SEV-SNP evidence, appraise it, issue a token
//!
//! A simulated AMD PKI stands in for the hardware here; with real evidence, drop the
//! `dangerous_` line (AMD's roots are built in) and give the VCEK with `certificates` or
//! `endorsement_dir` when the evidence does not carry it.
//!
//! ```
//! use tessera::policy::ear::{Alg, SigningKey, Status, issue_jwt, verify_jwt};
//! use tessera::snp::abi::Product;
//! use tessera::snp::sim::{SimPki, VekSpec};
//! use tessera::{EarClaims, Evidence, Policy, Tee, UnixTime, Verifier};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A report signed by a simulated VCEK (a guest gets one from /dev/sev-guest or configfs-tsm).
//! let pki = SimPki::new(Product::Genoa)?;
//! let vcek = pki.issue_vek(&VekSpec::vcek(Product::Genoa))?;
//! let mut raw = pki.report_template(&vcek);
//! raw.report_data = [7; 64];
//! let report = vcek.sign(raw)?;
//!
//! // Any form is detected: raw bytes here, `Evidence::from_kbs` for a KBS guest's JSON.
//! let evidence = Evidence::from_bytes(report.as_bytes())?;
//! assert_eq!(evidence.tee(), Tee::Snp);
//!
//! let verifier = Verifier::builder()
//!     .certificates([vcek.certificate().clone()])
//!     .dangerous_snp_test_roots([pki.roots()]) // simulator only
//!     .build()?;
//! let at = UnixTime::from_secs(1_767_225_600); // a parameter: verify never reads the clock
//! let verified = verifier.verify(&evidence, at)?;
//! assert_eq!(verified.report_data(), &[7; 64]);
//!
//! // Appraise against a policy (examples/policies/ in the repository).
//! let policy = Policy::from_toml_str(include_str!("../examples/policies/development.toml"))?;
//! let appraisal = verified.appraise(&policy);
//! assert!(appraisal.passed(), "{:?}", appraisal.failures().collect::<Vec<_>>());
//!
//! // An EAR attestation result, signed ES256, carrying the claims and the TEE's key.
//! let claims = EarClaims::from_appraisal(&appraisal, verified.claims().as_object().cloned(), at, 300, None)
//!     .with_runtime_data_claims(serde_json::json!({"tee-pubkey": {"kty": "EC", "crv": "P-256"}}));
//! let key = SigningKey::generate(Alg::Es256)?;
//! let token = issue_jwt(&claims, &key)?;
//! let back = verify_jwt(&token, key.verifying_key(), at)?;
//! // Genuine hardware under this policy would be `Affirming`; a simulator's test root is
//! // never recognized as hardware, so its token is contraindicated whatever the policy said.
//! assert!(appraisal.dangerous_test_root());
//! assert_eq!(back.cpu().map(|c| c.status()), Some(Status::Contraindicated));
//! # Ok(())
//! # }
//! ```
//!
//! # Verify a TDX quote from a KBS guest's JSON
//!
//! ```
//! use tessera::tdx::collateral::TcbStatus;
//! use tessera::tdx::sim::{CollateralSpec, PlatformSpec, QuoteSpec, SIM_VERIFY_AT, SimPcs};
//! use tessera::{Evidence, EvidenceError, Policy, Tee, Verifier};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A simulated Intel PCS: a PCK, a quote, and the collateral for its FMSPC.
//! let pcs = SimPcs::new()?;
//! let platform = PlatformSpec::default();
//! let spec = QuoteSpec::tdx();
//! let quote = pcs.quote(&pcs.issue_pck(&platform)?, &spec)?;
//! let collateral = pcs.collateral(&CollateralSpec::matching(&platform, &spec, TcbStatus::UpToDate))?;
//!
//! // What the guest posts as `primary_evidence`: {"quote": base64, "cc_eventlog": ..}.
//! let json = Evidence::from_bytes(&quote.to_bytes())?.to_kbs_json();
//! let evidence = Evidence::from_kbs("tdx", &json)?;
//! assert_eq!(evidence.init_data_field().map(<[u8]>::len), Some(48)); // MR_CONFIG_ID
//! // Evidence of another TEE than the one the guest named is refused.
//! assert!(matches!(Evidence::from_kbs("snp", &json), Err(EvidenceError::WrongTee { .. })));
//!
//! let verifier = Verifier::builder()
//!     .collateral(collateral) // or .endorsement_dir(..): read once, when built
//!     .dangerous_test_root(pcs.root().clone())? // simulator only
//!     .build()?;
//! let verified = verifier.verify(&evidence, SIM_VERIFY_AT)?;
//! assert_eq!(verified.tee(), Tee::Tdx);
//! assert_eq!(verified.verification()["tcb_status"], "UpToDate");
//!
//! let policy = Policy::from_toml_str(include_str!("../examples/policies/development.toml"))?;
//! assert!(verified.appraise(&policy).passed());
//! # Ok(())
//! # }
//! ```
//!
//! # Keeping KBS evidence
//!
//! [`compact`] writes KBS evidence JSON compactly (its byte arrays as base64 runs) and exactly
//! reversibly; [`Evidence::from_kbs_compact`] decodes evidence from that form straight into its
//! fields. The key broker encodes the text of each `/attest` evidence once, decodes the
//! evidence from the result and keeps the same result in the attested session's record.
//!
//! The per-TEE crates stay reachable for what this facade does not cover ([`snp`], [`tdx`],
//! [`pki`], [`policy`]); their `Verifier`/`TrustAnchors` are the building blocks of this one.
#![forbid(unsafe_code)]

pub mod compact;
mod endorsements;
mod evidence;
mod kbs;
pub mod text;
mod verifier;

pub use tessera_pki as pki;
pub use tessera_policy as policy;
pub use tessera_snp as snp;
pub use tessera_tdx as tdx;

pub use endorsements::{
    EndorsementError, EndorsementRequest, Endorsements, MAX_DIR_BYTES, MAX_DIR_FILES, MAX_FILE_LEN,
    read_regular_file, vek_is_for,
};
pub use evidence::{
    Attempt, Evidence, EvidenceError, Form, MAX_EVIDENCE_JSON_VALUES, MAX_EVIDENCE_LEN,
    MAX_JSON_LEN, fuzz_evidence, tsm_agrees_with_bytes,
};
pub use kbs::{
    MAX_CERT_CHAIN_ENTRIES, MAX_CERT_LEN, MAX_EVENTLOG_LEN, MAX_QUOTE_LEN, MAX_REPORT_LEN,
    fuzz_kbs_json,
};
pub use tessera_pki::UnixTime;
pub use tessera_policy::ear::EarClaims;
pub use tessera_policy::{Appraisal, Policy, Tee, Verdict, appraise};
pub use verifier::{BuildError, VerifiedEvidence, Verifier, VerifierBuilder, VerifyError};
