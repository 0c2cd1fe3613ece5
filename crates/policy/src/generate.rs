//! Policies generated from verified evidence: pin what the evidence measured, for an operator
//! to review (`tessera policy from-evidence`).

use crate::model::Policy;

/// Verified evidence a strict policy can be generated from.
pub trait FromEvidence {
    /// A strict policy that pins this evidence's measurements, configuration and TCB: it accepts
    /// this evidence (at its verification time) and little else. `id` becomes the policy's id.
    fn strict_policy(&self, id: &str) -> Policy;
}

/// A strict policy pinning what `verified` measured. See [`FromEvidence`].
pub fn policy_from_evidence<E: FromEvidence + ?Sized>(verified: &E, id: &str) -> Policy {
    verified.strict_policy(id)
}
