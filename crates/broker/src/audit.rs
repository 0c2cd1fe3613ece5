//! The append-only, hash-chained audit log: entry format, hashing and chain verification.
//!
//! Each entry holds the hash of the previous one (`prev_hash`; 48 zero bytes for the first) and
//! its own `hash` = SHA-384 over the RFC 8785 (JCS) form of the entry's JSON without `hash`:
//!
//! ```json
//! {"action":"release","actor":"..","evidence_digest":null|"..","policy_digest":null|"..",
//!  "prev_hash":"<hex>","reason":"..","resource":null|"r/t/t"|"r","seq":1,"time_ms":1764750000000,
//!  "verdict":"pass"}
//! ```
//!
//! so anyone holding an export can recompute the chain with any JCS library. Entries carry no
//! secret material: time, actor, action, resource, evidence digest, policy digest, verdict and a
//! public reason. Stores append entries with [`next_entry`] inside one serialised transaction
//! that reads the last entry; [`ChainVerifier`] re-checks them and names the first broken one.

use aws_lc_rs::digest::{SHA384, digest};
use serde::{Deserialize, Serialize};

use crate::jcs;

/// Longest `actor` kept (longer ones are cut).
pub const MAX_ACTOR_LEN: usize = 256;
/// Longest `reason` kept (longer ones are cut).
pub const MAX_REASON_LEN: usize = 2048;
/// Longest resource, evidence digest or policy digest kept.
pub const MAX_FIELD_LEN: usize = 512;
/// The `prev_hash` of the first entry: 48 zero bytes, hex.
pub const GENESIS_HASH: &str = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// An attestation was appraised (verdict pass or fail).
    Attest,
    /// A secret was released to an attested guest.
    Release,
    /// An attested session's resource request was refused (its policy, or an unknown resource).
    /// Requests without a valid session or token are not audited: anyone can send them, and
    /// they would let anyone grow the log; they go to the server log and the request metrics.
    Deny,
    /// An admin uploaded a secret version.
    AdminPut,
    /// An admin deleted secret versions.
    AdminDelete,
    /// An admin changed a policy.
    AdminPolicy,
    /// An admin rotated the KEK.
    AdminKekRotate,
    /// An admin rotated the key that secrets sealed for Git are sealed to.
    AdminSealingKeyRotate,
    /// An admin request with valid credentials was refused for its scope (another repository,
    /// or a global operation with a repository-scoped credential). Requests with missing or
    /// wrong credentials are not audited (anyone can send them); the server logs them.
    AdminDeny,
}

impl AuditAction {
    /// The name used in the log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attest => "attest",
            Self::Release => "release",
            Self::Deny => "deny",
            Self::AdminPut => "admin_put",
            Self::AdminDelete => "admin_delete",
            Self::AdminPolicy => "admin_policy",
            Self::AdminKekRotate => "admin_kek_rotate",
            Self::AdminSealingKeyRotate => "admin_sealing_key_rotate",
            Self::AdminDeny => "admin_deny",
        }
    }

    /// Parses a name written by [`AuditAction::as_str`].
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        [
            Self::Attest,
            Self::Release,
            Self::Deny,
            Self::AdminPut,
            Self::AdminDelete,
            Self::AdminPolicy,
            Self::AdminKekRotate,
            Self::AdminSealingKeyRotate,
            Self::AdminDeny,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// The outcome recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditVerdict {
    /// The check passed / the operation was done.
    Pass,
    /// The check failed / the operation was refused.
    Fail,
}

impl AuditVerdict {
    /// The name used in the log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
        }
    }

    /// Parses `pass` or `fail`.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "pass" => Some(Self::Pass),
            "fail" => Some(Self::Fail),
            _ => None,
        }
    }
}

/// An event to append (the caller fills it; the store numbers and chains it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When, in Unix milliseconds.
    pub time_ms: i64,
    /// Who: `guest:<session or key thumbprint>`, `admin:<token subject>`, ...
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// Which resource (`repo/type/tag`, with `@N` for one version) or repository (a
    /// repository's policy, an admin refusal reaching for one), if any.
    pub resource: Option<String>,
    /// Digest of the evidence appraised, if any.
    pub evidence_digest: Option<String>,
    /// Digest of the policy applied, if any.
    pub policy_digest: Option<String>,
    /// The outcome.
    pub verdict: AuditVerdict,
    /// A public reason (the failed check's name, never an internal error chain or a secret).
    pub reason: String,
}

fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Replaces control characters (NUL, line breaks, escapes, C1 controls) with U+FFFD: text a
/// guest or an admin chose (a key's member name, a JWT's `sub`, a query) must not end a log
/// line when the log is printed, and PostgreSQL's `text` refuses NUL, which would fail the
/// whole batch of appends committed with it.
fn clean(s: &mut String) {
    if s.chars().any(char::is_control) {
        *s = s
            .chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
    }
}

impl AuditEvent {
    /// Replaces control characters in every text field (see `clean`), then cuts each to its
    /// maximum length (on a character boundary).
    #[must_use]
    pub fn bounded(mut self) -> Self {
        for (f, max) in [
            (&mut self.actor, MAX_ACTOR_LEN),
            (&mut self.reason, MAX_REASON_LEN),
        ] {
            clean(f);
            cut(f, max);
        }
        for f in [
            &mut self.resource,
            &mut self.evidence_digest,
            &mut self.policy_digest,
        ]
        .into_iter()
        .flatten()
        {
            clean(f);
            cut(f, MAX_FIELD_LEN);
        }
        self
    }
}

/// A chained entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hex SHA-384 of the previous entry ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Hex SHA-384 of this entry's JCS form without `hash`.
    pub hash: String,
}

/// Why an audit chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditChainError {
    /// An entry's number is not the one after the previous entry's.
    #[error("audit: entry {seq} follows entry {expected_prev}: entries are missing or reordered")]
    SequenceGap {
        /// The entry found.
        seq: u64,
        /// The previous entry's number.
        expected_prev: u64,
    },
    /// An entry's `prev_hash` is not the previous entry's hash.
    #[error("audit: entry {seq} does not link to the entry before it (prev_hash differs)")]
    BrokenLink {
        /// The first broken entry.
        seq: u64,
    },
    /// An entry's content does not hash to its `hash`: it was changed after it was written.
    #[error("audit: entry {seq} was altered (its hash does not match its content)")]
    Altered {
        /// The first broken entry.
        seq: u64,
    },
    /// An entry's stored `field` holds a value the broker never writes: it was changed after
    /// it was written.
    #[error("audit: entry {seq} was altered (its {field} is not one the broker writes)")]
    Malformed {
        /// The first broken entry.
        seq: u64,
        /// The member: `action` or `verdict` (a name the broker does not write), or, in
        /// SQLite, any column holding a value of another type.
        field: &'static str,
    },
    /// An entry cannot be canonicalized.
    #[error("audit: entry {seq} cannot be canonicalized")]
    Unhashable {
        /// The entry.
        seq: u64,
    },
    /// An entry's hash is not the one recorded for it earlier ([`AuditAnchor`]): the log was
    /// rewritten from that entry on, or before it, with every hash recomputed.
    #[error(
        "audit: entry {seq} is not the entry recorded earlier (its hash differs from the anchor): \
         the log was rewritten"
    )]
    AnchorMismatch {
        /// The anchored entry.
        seq: u64,
    },
    /// The log ends before the entry recorded earlier ([`AuditAnchor`]): entries were removed.
    #[error(
        "audit: the log ends at entry {len}, before entry {seq} recorded earlier: entries were removed"
    )]
    Truncated {
        /// The anchored entry.
        seq: u64,
        /// The last entry found.
        len: u64,
    },
}

/// An entry's number and hash, recorded outside the store (what `tessera audit verify` prints
/// as the head): verifying against it later tells the recorded log from one whose entries up
/// to it were rewritten (every later hash recomputed) or that was cut short before it. The
/// chain alone cannot, since recomputing its hashes needs no key; entries after the anchor
/// are covered by the next one kept. Written `SEQ:HASH` (96 lowercase hex digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAnchor {
    /// The entry's number (0: the empty log, whose hash is [`GENESIS_HASH`]).
    pub seq: u64,
    /// The entry's hash.
    pub hash: String,
}

impl std::fmt::Display for AuditAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for AuditAnchor {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "an anchor is SEQ:HASH (an entry's number, 96 lowercase hex digits)";
        let (seq, hash) = s.split_once(':').ok_or(FORM)?;
        // Digits only (no sign), no leading zero: one text per anchor; `parse` bounds it.
        if seq.is_empty()
            || !seq.bytes().all(|b| b.is_ascii_digit())
            || (seq.len() > 1 && seq.starts_with('0'))
            || !crate::resource::is_sha384_hex(hash)
        {
            return Err(FORM);
        }
        let seq: u64 = seq.parse().map_err(|_| FORM)?;
        Ok(Self {
            seq,
            hash: hash.to_owned(),
        })
    }
}

#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    #[serde(flatten)]
    event: &'a AuditEvent,
    prev_hash: &'a str,
}

/// The hash of an entry with this number, event and previous hash.
///
/// # Errors
/// [`AuditChainError::Unhashable`] if the entry cannot be canonicalized.
pub fn entry_hash(
    seq: u64,
    event: &AuditEvent,
    prev_hash: &str,
) -> Result<String, AuditChainError> {
    let bytes = match canonical_direct(seq, event, prev_hash) {
        Some(b) => b,
        None => jcs::to_vec(&Hashed {
            seq,
            event,
            prev_hash,
        })
        .map_err(|_| AuditChainError::Unhashable { seq })?,
    };
    Ok(tessera::pki::to_hex(digest(&SHA384, &bytes).as_ref()))
}

/// Largest integer JCS writes as itself (2^53): above it, numbers go through an IEEE double.
const JCS_EXACT_INT: u64 = 1 << 53;

/// The JCS form of an entry written member by member, in JCS order (its keys are ASCII, so
/// UTF-16 order is byte order), without building and sorting a map: what
/// `jcs::to_vec(&Hashed{..})` gives, byte for byte (a property test holds them together).
/// Strings are written by `serde_json`, whose escaping is RFC 8785's (section 3.2.2.2: `"`,
/// `\\` and the control characters, those with a short form as `\b \t \n \f \r`, the rest as
/// `\u00xx` in lowercase; everything else as itself). `None` for numbers that JCS would write
/// through a double (never for real times and sequence numbers); the caller then takes the
/// general path.
fn canonical_direct(seq: u64, event: &AuditEvent, prev_hash: &str) -> Option<Vec<u8>> {
    if seq > JCS_EXACT_INT || event.time_ms.unsigned_abs() > JCS_EXACT_INT {
        return None;
    }
    let mut out = Vec::with_capacity(512 + event.actor.len() + event.reason.len());
    let members: [(&str, Option<&str>); 6] = [
        ("actor", Some(&event.actor)),
        ("evidence_digest", event.evidence_digest.as_deref()),
        ("policy_digest", event.policy_digest.as_deref()),
        ("prev_hash", Some(prev_hash)),
        ("reason", Some(&event.reason)),
        ("resource", event.resource.as_deref()),
    ];
    out.extend_from_slice(b"{\"action\":\"");
    out.extend_from_slice(event.action.as_str().as_bytes());
    out.push(b'"');
    for (name, value) in members {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match value {
            Some(v) => serde_json::to_writer(&mut out, v).ok()?,
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(format!(",\"seq\":{seq},\"time_ms\":{}", event.time_ms).as_bytes());
    out.extend_from_slice(b",\"verdict\":\"");
    out.extend_from_slice(event.verdict.as_str().as_bytes());
    out.extend_from_slice(b"\"}");
    Some(out)
}

/// The entry that follows `last` (`None` for an empty log), chained to it.
///
/// # Errors
/// [`AuditChainError::Unhashable`].
pub fn next_entry(
    last: Option<(u64, &str)>,
    event: AuditEvent,
) -> Result<AuditEntry, AuditChainError> {
    let event = event.bounded();
    let (seq, prev_hash) = match last {
        Some((s, h)) => (s.saturating_add(1), h.to_owned()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = entry_hash(seq, &event, &prev_hash)?;
    Ok(AuditEntry {
        seq,
        event,
        prev_hash,
        hash,
    })
}

/// Checks entries one at a time, in order, from the first (so a long log can be streamed).
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    last_seq: u64,
    last_hash: String,
    anchor: Option<AuditAnchor>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting entry 1.
    #[must_use]
    pub fn new() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS_HASH.to_owned(),
            anchor: None,
        }
    }

    /// A verifier expecting entry 1 that also checks the entry `anchor` names against it
    /// (see [`ChainVerifier::finish`] for a log that ends before it).
    #[must_use]
    pub fn with_anchor(anchor: AuditAnchor) -> Self {
        Self {
            anchor: Some(anchor),
            ..Self::new()
        }
    }

    /// The last entry verified (entry 0 with [`GENESIS_HASH`] before any), after checking
    /// that the log reached the anchored entry.
    ///
    /// # Errors
    /// [`AuditChainError::Truncated`] when the log ended before it, or
    /// [`AuditChainError::AnchorMismatch`] when it anchors the empty log with another hash.
    pub fn finish(&self) -> Result<AuditAnchor, AuditChainError> {
        if let Some(a) = &self.anchor {
            if a.seq > self.last_seq {
                return Err(AuditChainError::Truncated {
                    seq: a.seq,
                    len: self.last_seq,
                });
            }
            if a.seq == 0 && a.hash != GENESIS_HASH {
                return Err(AuditChainError::AnchorMismatch { seq: 0 });
            }
        }
        Ok(AuditAnchor {
            seq: self.last_seq,
            hash: self.last_hash.clone(),
        })
    }

    /// Checks the next entry.
    ///
    /// # Errors
    /// [`AuditChainError::SequenceGap`], [`AuditChainError::BrokenLink`],
    /// [`AuditChainError::Altered`], naming the entry.
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), AuditChainError> {
        if Some(e.seq) != self.last_seq.checked_add(1) {
            return Err(AuditChainError::SequenceGap {
                seq: e.seq,
                expected_prev: self.last_seq,
            });
        }
        if e.prev_hash != self.last_hash {
            return Err(AuditChainError::BrokenLink { seq: e.seq });
        }
        if entry_hash(e.seq, &e.event, &e.prev_hash)? != e.hash {
            return Err(AuditChainError::Altered { seq: e.seq });
        }
        if let Some(a) = &self.anchor
            && a.seq == e.seq
            && a.hash != e.hash
        {
            return Err(AuditChainError::AnchorMismatch { seq: e.seq });
        }
        self.last_seq = e.seq;
        self.last_hash.clone_from(&e.hash);
        Ok(())
    }

    /// How many entries verified so far.
    #[must_use]
    pub fn verified(&self) -> u64 {
        self.last_seq
    }
}

/// Verifies a whole chain from entry 1; returns the number of entries.
///
/// # Errors
/// The first [`AuditChainError`], naming the first broken entry.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<u64, AuditChainError> {
    let mut v = ChainVerifier::new();
    for e in entries {
        v.push(e)?;
    }
    Ok(v.verified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: i64) -> AuditEvent {
        AuditEvent {
            time_ms: 1_764_750_000_000 + i,
            actor: format!("guest:{i}"),
            action: AuditAction::Release,
            resource: Some("t/key/a".into()),
            evidence_digest: Some("sha384:ab".into()),
            policy_digest: None,
            verdict: AuditVerdict::Pass,
            reason: "released".into(),
        }
    }

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let last = out.last().map(|e| (e.seq, e.hash.as_str()));
            out.push(next_entry(last, ev(i)).unwrap());
        }
        out
    }

    fn via_library(seq: u64, e: &AuditEvent, prev: &str) -> Vec<u8> {
        jcs::to_vec(&Hashed {
            seq,
            event: e,
            prev_hash: prev,
        })
        .unwrap()
    }

    fn verify_with(
        anchor: &AuditAnchor,
        entries: &[AuditEntry],
    ) -> Result<AuditAnchor, AuditChainError> {
        let mut v = ChainVerifier::with_anchor(anchor.clone());
        for e in entries {
            v.push(e)?;
        }
        v.finish()
    }

    /// A head recorded earlier tells the recorded log from one rewritten with every hash
    /// recomputed (which the chain alone accepts) and from one cut short before it.
    #[test]
    fn an_anchor_refuses_a_rewritten_or_shortened_log() {
        let log = chain(5);
        let head = verify_with(
            &AuditAnchor {
                seq: 0,
                hash: GENESIS_HASH.into(),
            },
            &log,
        )
        .unwrap();
        assert_eq!((head.seq, head.hash.as_str()), (5, log[4].hash.as_str()));
        let at3 = AuditAnchor {
            seq: 3,
            hash: log[2].hash.clone(),
        };
        assert_eq!(verify_with(&at3, &log).unwrap(), head);
        assert_eq!(verify_with(&head, &log).unwrap(), head);
        // Entry 2 rewritten and the chain recomputed from there: whole, but not the one
        // recorded.
        let mut forged: Vec<AuditEntry> = log[..1].to_vec();
        for i in 1..5 {
            let mut e = ev(i);
            if i == 1 {
                e.verdict = AuditVerdict::Fail;
            }
            let last = forged.last().map(|x| (x.seq, x.hash.as_str()));
            forged.push(next_entry(last, e).unwrap());
        }
        assert_eq!(verify_chain(&forged).unwrap(), 5);
        assert_eq!(
            verify_with(&at3, &forged),
            Err(AuditChainError::AnchorMismatch { seq: 3 })
        );
        // Only entries before the anchor rewritten: the anchored entry's hash changes too.
        assert!(verify_with(&head, &forged).is_err());
        // Cut short before the anchor, or emptied.
        assert_eq!(
            verify_with(&head, &log[..4]),
            Err(AuditChainError::Truncated { seq: 5, len: 4 })
        );
        assert_eq!(
            verify_with(&at3, &[]),
            Err(AuditChainError::Truncated { seq: 3, len: 0 })
        );
        let wrong_empty = AuditAnchor {
            seq: 0,
            hash: "1".repeat(96),
        };
        assert_eq!(
            verify_with(&wrong_empty, &[]),
            Err(AuditChainError::AnchorMismatch { seq: 0 })
        );
        // Written and read back as SEQ:HASH; anything else is refused.
        assert_eq!(head.to_string().parse::<AuditAnchor>().unwrap(), head);
        let hash = &log[0].hash;
        for bad in [
            String::new(),
            hash.clone(),
            format!(":{hash}"),
            format!("-1:{hash}"),
            format!("+1:{hash}"),
            format!("1:{}", hash.to_uppercase()),
            format!("1:{}", &hash[1..]),
            format!("1:{hash}0"),
            format!("1:sha384:{hash}"),
            format!("99999999999999999999999:{hash}"),
            format!("1 :{hash}"),
            format!("01:{hash}"),
        ] {
            assert!(bad.parse::<AuditAnchor>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn direct_form_matches_the_library_on_edges() {
        let mut e = ev(0);
        // Every control character, quotes, backslashes, DEL, non-ASCII and astral characters.
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        e.actor = format!("{all_controls}\"\\/\u{7f}\u{80}\u{2028}é\u{10000}");
        e.reason = String::new();
        e.resource = None;
        e.policy_digest = Some("\\u0000".into());
        for (seq, time) in [
            (1, 0),
            (1, -1),
            (u64::from(u32::MAX), i64::MIN + 1),
            (JCS_EXACT_INT, -(1 << 53)),
        ] {
            e.time_ms = time;
            let direct = canonical_direct(seq, &e, GENESIS_HASH);
            if let Some(d) = direct {
                assert_eq!(
                    d,
                    via_library(seq, &e, GENESIS_HASH),
                    "seq {seq} time {time}"
                );
            } else {
                // Out of the exact range: the general path hashes it.
                assert!(seq > JCS_EXACT_INT || time.unsigned_abs() > JCS_EXACT_INT);
                assert!(entry_hash(seq, &e, GENESIS_HASH).is_ok());
            }
        }
        // Beyond 2^53 the direct form declines.
        assert!(canonical_direct(JCS_EXACT_INT + 1, &e, GENESIS_HASH).is_none());
        e.time_ms = i64::MAX;
        assert!(canonical_direct(1, &e, GENESIS_HASH).is_none());
    }

    proptest::proptest! {
        /// Any text parses to an anchor that writes back as the same text, or is refused.
        #[test]
        fn anchors_parse_and_write_back(s in "[0-9]{0,22}:?[0-9a-fA-F:]{0,100}") {
            if let Ok(a) = s.parse::<AuditAnchor>() {
                proptest::prop_assert_eq!(a.to_string(), s);
            }
        }

        #[test]
        fn any_anchor_round_trips(seq in proptest::prelude::any::<u64>(), h in "[0-9a-f]{96}") {
            let a = AuditAnchor { seq, hash: h };
            proptest::prop_assert_eq!(a.to_string().parse::<AuditAnchor>().unwrap(), a);
        }

        #[test]
        fn direct_form_matches_the_library(
            seq in 0u64..(1 << 54),
            time_ms in -(1i64 << 54)..(1i64 << 54),
            actor in ".{0,40}",
            reason in "[\\x00-\\x7f]{0,40}",
            resource in proptest::option::of(".{0,20}"),
            evidence in proptest::option::of("[\\x00-\\x20\"\\\\a-z]{0,20}"),
            policy in proptest::option::of(".{0,20}"),
            prev in ".{0,10}",
            action in 0usize..9,
            pass in proptest::bool::ANY,
        ) {
            let actions = [
                AuditAction::Attest, AuditAction::Release, AuditAction::Deny,
                AuditAction::AdminPut, AuditAction::AdminDelete, AuditAction::AdminPolicy,
                AuditAction::AdminKekRotate, AuditAction::AdminSealingKeyRotate,
                AuditAction::AdminDeny,
            ];
            let e = AuditEvent {
                time_ms,
                actor,
                action: actions[action],
                resource,
                evidence_digest: evidence,
                policy_digest: policy,
                verdict: if pass { AuditVerdict::Pass } else { AuditVerdict::Fail },
                reason,
            };
            match canonical_direct(seq, &e, &prev) {
                Some(d) => proptest::prop_assert_eq!(d, via_library(seq, &e, &prev)),
                None => proptest::prop_assert!(
                    seq > JCS_EXACT_INT || time_ms.unsigned_abs() > JCS_EXACT_INT
                ),
            }
        }
    }

    #[test]
    fn hash_is_sha384_of_the_jcs_form() {
        let e = next_entry(None, ev(0)).unwrap();
        let text = format!(
            r#"{{"action":"release","actor":"guest:0","evidence_digest":"sha384:ab","policy_digest":null,"prev_hash":"{GENESIS_HASH}","reason":"released","resource":"t/key/a","seq":1,"time_ms":1764750000000,"verdict":"pass"}}"#
        );
        assert_eq!(
            e.hash,
            tessera::pki::to_hex(digest(&SHA384, text.as_bytes()).as_ref())
        );
        // The exported JSON is that plus `hash`.
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["hash"], e.hash.as_str());
        assert_eq!(serde_json::from_value::<AuditEntry>(json).unwrap(), e);
    }

    #[test]
    fn a_good_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)).unwrap(), 5);
        assert_eq!(verify_chain(&[]).unwrap(), 0);
    }

    #[test]
    fn tampering_names_the_first_broken_entry() {
        let good = chain(5);
        let mut c = good.clone();
        c[2].event.verdict = AuditVerdict::Fail;
        assert_eq!(verify_chain(&c), Err(AuditChainError::Altered { seq: 3 }));
        let mut c = good.clone();
        c[3].event.reason = "x".into();
        c[3].hash = entry_hash(4, &c[3].event, &c[3].prev_hash).unwrap(); // re-hashed, but 5 links to the old hash
        assert_eq!(
            verify_chain(&c),
            Err(AuditChainError::BrokenLink { seq: 5 })
        );
        let mut c = good.clone();
        c.remove(1);
        assert_eq!(
            verify_chain(&c),
            Err(AuditChainError::SequenceGap {
                seq: 3,
                expected_prev: 1
            })
        );
        let mut c = good.clone();
        c[0].prev_hash = "00".into();
        assert_eq!(
            verify_chain(&c),
            Err(AuditChainError::BrokenLink { seq: 1 })
        );
        let mut c = good;
        c.swap(1, 2);
        assert!(matches!(
            verify_chain(&c),
            Err(AuditChainError::SequenceGap { seq: 3, .. })
        ));
    }

    #[test]
    fn fields_are_bounded() {
        let mut e = ev(0);
        e.reason = "é".repeat(MAX_REASON_LEN);
        e.actor = "a".repeat(MAX_ACTOR_LEN + 5);
        let b = e.bounded();
        assert!(b.reason.len() <= MAX_REASON_LEN);
        assert_eq!(b.actor.len(), MAX_ACTOR_LEN);
        // Control characters (NUL, line breaks, C1) become U+FFFD in every text field.
        let mut e = ev(0);
        e.actor = "jwt:a\nb".into();
        e.reason = "kty \u{0} \r\n\u{1b}[2J\u{85}".into();
        e.resource = Some("r\u{0}".into());
        e.evidence_digest = Some("\t".into());
        e.policy_digest = Some("p\u{7f}".into());
        let b = e.bounded();
        assert_eq!(b.actor, "jwt:a\u{fffd}b");
        assert_eq!(b.reason, "kty \u{fffd} \u{fffd}\u{fffd}\u{fffd}[2J\u{fffd}");
        assert_eq!(b.resource.as_deref(), Some("r\u{fffd}"));
        assert_eq!(b.evidence_digest.as_deref(), Some("\u{fffd}"));
        assert_eq!(b.policy_digest.as_deref(), Some("p\u{fffd}"));
        // Cleaning may lengthen a field (U+FFFD is 3 bytes); the cut still bounds it.
        let mut e = ev(0);
        e.reason = "\u{0}".repeat(MAX_REASON_LEN);
        assert!(e.bounded().reason.len() <= MAX_REASON_LEN);
        for a in [
            AuditAction::Attest,
            AuditAction::AdminKekRotate,
            AuditAction::AdminDeny,
        ] {
            assert_eq!(AuditAction::from_name(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::from_name("x"), None);
        assert_eq!(AuditVerdict::from_name("fail"), Some(AuditVerdict::Fail));
        assert_eq!(AuditVerdict::from_name("maybe"), None);
    }

    /// One way of tampering with a stored log.
    #[derive(Debug, Clone)]
    enum Tamper {
        /// Entry `.0`'s member `.1` changed (reason, actor, time, hash, prev_hash, seq to
        /// `.2`).
        Edit(proptest::sample::Index, u8, u64),
        /// Two entries trade places.
        Swap(proptest::sample::Index, proptest::sample::Index),
        /// An entry dropped.
        Drop(proptest::sample::Index),
    }

    fn tamper() -> impl proptest::strategy::Strategy<Value = Tamper> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (any::<proptest::sample::Index>(), 0u8..6, any::<u64>())
                .prop_map(|(i, m, v)| Tamper::Edit(i, m, v)),
            1 => (any::<proptest::sample::Index>(), any::<proptest::sample::Index>())
                .prop_map(|(i, j)| Tamper::Swap(i, j)),
            1 => any::<proptest::sample::Index>().prop_map(Tamper::Drop),
        ]
    }

    fn apply(log: &mut Vec<AuditEntry>, t: Tamper) {
        if log.is_empty() {
            return;
        }
        match t {
            Tamper::Edit(i, member, v) => {
                let at = i.index(log.len());
                let e = &mut log[at];
                match member {
                    0 => e.event.reason.push('x'),
                    1 => e.event.actor = format!("admin:{v}"),
                    2 => e.event.time_ms = i64::try_from(v >> 1).unwrap(),
                    3 => e.hash = format!("{v:096x}"),
                    4 => e.prev_hash = format!("{v:096x}"),
                    _ => e.seq = v % 16,
                }
            }
            Tamper::Swap(i, j) => {
                let (i, j) = (i.index(log.len()), j.index(log.len()));
                log.swap(i, j);
            }
            Tamper::Drop(i) => {
                log.remove(i.index(log.len()));
            }
        }
    }

    proptest::proptest! {
        /// A log tampered with (entries edited, swapped, dropped) fails verification at the
        /// first entry that is not the one written there, with the reason that entry shows:
        /// a number out of sequence, a link to another entry, or content that does not hash
        /// to its hash; a log only cut short verifies (as far as it goes). `verify_chain` and
        /// a streaming `ChainVerifier` agree, and neither panics.
        #[test]
        fn tampering_is_reported_at_the_first_broken_entry(
            n in 1i64..12,
            tampers in proptest::collection::vec(tamper(), 1..4),
        ) {
            let original = chain(n);
            let mut log = original.clone();
            for t in tampers {
                apply(&mut log, t);
            }
            let first = log.iter().zip(&original).position(|(a, b)| a != b);
            let whole = verify_chain(&log);
            let mut v = ChainVerifier::new();
            let streamed = log.iter().position(|e| v.push(e).is_err());
            proptest::prop_assert_eq!(streamed, first);
            match first {
                None => {
                    proptest::prop_assert_eq!(whole, Ok(log.len() as u64));
                    proptest::prop_assert_eq!(v.verified(), log.len() as u64);
                }
                Some(p) => {
                    let e = &log[p];
                    let at = p as u64;
                    proptest::prop_assert_eq!(v.verified(), at);
                    let expected = if e.seq != at + 1 {
                        AuditChainError::SequenceGap { seq: e.seq, expected_prev: at }
                    } else if e.prev_hash != original[p].prev_hash {
                        AuditChainError::BrokenLink { seq: e.seq }
                    } else {
                        AuditChainError::Altered { seq: e.seq }
                    };
                    proptest::prop_assert_eq!(whole, Err(expected));
                }
            }
        }
    }
}
