//! Where the broker keeps its state: the [`Store`] trait and its operations on top.
//!
//! A store holds sealed secret versions, policies, challenges, attested sessions and the audit
//! log. It never sees a plaintext secret: values are sealed ([`crate::seal`]) before they reach
//! it. The trait is written so that a shared SQL database (PostgreSQL, for replicas) can
//! implement it with the same guarantees as the embedded [`SqliteStore`] (and
//! [`PostgresStore`] does):
//!
//! - Single use of a challenge is one conditional statement
//!   (`UPDATE .. SET used = true WHERE session = $1 AND used = false AND expires > $now
//!   RETURNING ..`), so two replicas racing on one nonce cannot both win.
//! - Versions come from a per-resource counter bumped by one upsert
//!   (`INSERT .. ON CONFLICT DO UPDATE SET last = last + 1 RETURNING last`); a crash between
//!   taking a number and inserting leaves a gap, never a reused number (the number is sealed
//!   into the ciphertext's AAD).
//! - Audit appends are serialised: one transaction reads the last entry and inserts the next.
//! - Times are inputs (`now_ms`, Unix milliseconds), so expiry is testable and every replica
//!   judges by the caller's clock.
//!
//! Policies: every secret version is sealed together with one policy (the AAD binds its
//! digest). Policies are stored by digest. A repository may have a default policy; a put without
//! a policy of its own takes the repository's default *at put time* (the resource override is
//! simply giving a policy with the put). Changing a repository's default therefore never
//! silently changes what an existing version is released under: put a new version to apply it.
//! There is no global policy, so one tenant cannot change another's.
//!
//! Session ids are stored only as SHA-256 digests, so a copy of the database does not hold live
//! session cookies.

use std::collections::BTreeSet;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::audit::{AuditChainError, AuditEntry, AuditEvent, ChainVerifier};
use crate::binding::HashAlgorithm;
use crate::resource::{NameError, PolicyDigest, ResourcePath};
use crate::seal::{
    self, KekId, Keyring, KeyringFile, SealBinding, SealError, SealedSecret, SecretValue,
};

mod postgres;
mod sqlite;
pub use postgres::{POSTGRES_SCHEMA_VERSION, PostgresOptions, PostgresStore};
pub use sqlite::{DB_FILE, SqliteStore};

/// How long a challenge can be answered (5 minutes).
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;
/// Longest policy text stored.
pub const MAX_POLICY_LEN: usize = 256 * 1024;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused an operation (the message is the database's, without values).
    #[error("store: {op}: {message}")]
    Database {
        /// The operation.
        op: &'static str,
        /// The database's message.
        message: String,
    },
    /// The data directory or file could not be used.
    #[error("store: {path}: {kind}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// What went wrong.
        kind: std::io::ErrorKind,
    },
    /// A version with this number already exists.
    #[error("store: {resource} version {version} already exists")]
    VersionExists {
        /// The resource.
        resource: String,
        /// The version.
        version: u64,
    },
    /// A challenge for this session already exists.
    #[error("store: a challenge for this session already exists")]
    ChallengeExists,
    /// A stored value does not parse (the database was changed outside the broker).
    #[error("store: stored {field} is malformed")]
    Corrupt {
        /// `table.column`.
        field: &'static str,
    },
    /// A policy digest a version names is not stored, or the text does not hash to it.
    #[error("store: policy {digest} is missing or does not match its digest")]
    PolicyMissing {
        /// The digest.
        digest: String,
    },
    /// A put gave no policy and the repository has no default policy.
    #[error("store: no policy given and repository `{repo}` has no default policy")]
    NoPolicy {
        /// The repository.
        repo: String,
    },
    /// A policy text is empty or longer than [`MAX_POLICY_LEN`].
    #[error("store: policy text must be 1..={max} bytes, got {len}")]
    PolicySize {
        /// Length given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A name is malformed.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Sealing, opening or the keyring failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The audit chain does not verify.
    #[error(transparent)]
    AuditChain(#[from] AuditChainError),
    /// KEK rotation met the same record twice without re-wrapping it.
    #[error("store: KEK rotation could not re-wrap {resource} version {version}")]
    RotationStuck {
        /// The resource.
        resource: String,
        /// The version.
        version: u64,
    },
    /// The blocking worker running the operation failed.
    #[error("store: the worker thread failed")]
    Worker,
}

/// A session id (the `kbs-session-id` cookie): 32 random bytes, unpadded base64url.
/// `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(..)")
    }
}

impl SessionId {
    /// A fresh random id.
    ///
    /// # Errors
    /// [`StoreError::Seal`] (crypto) if the system RNG fails.
    pub fn generate() -> Result<Self, StoreError> {
        let mut b = [0u8; 32];
        SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| SealError::Crypto { step: "random" })?;
        Ok(Self(URL_SAFE_NO_PAD.encode(b)))
    }

    /// Takes a cookie value; `None` unless it is 43 characters of base64url (what
    /// [`SessionId::generate`] makes).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 43
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(s.to_owned()))
    }

    /// The cookie value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key the store files the session under (hex SHA-256 of the id).
    #[must_use]
    pub fn storage_key(&self) -> String {
        hex::encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.0.as_bytes()).as_ref(),
        )
    }
}

/// What a session keeps of the token issued to it: the hex SHA-256 of the token's text.
#[must_use]
pub fn token_digest(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

/// A challenge issued by `/auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// The nonce: standard padded base64 of 32 random bytes.
    pub nonce: String,
    /// The TEE the guest announced (`snp`, `tdx`, ...).
    pub tee: String,
    /// The hash the REPORT_DATA binding uses.
    pub hash: HashAlgorithm,
    /// When it was issued (Unix ms).
    pub issued_ms: i64,
    /// When it stops being answerable (Unix ms).
    pub expires_ms: i64,
}

impl Challenge {
    /// A fresh challenge with a new session id and nonce, valid for [`CHALLENGE_TTL_MS`].
    ///
    /// # Errors
    /// [`StoreError::Seal`] (crypto) if the system RNG fails.
    pub fn generate(tee: &str, hash: HashAlgorithm, now_ms: i64) -> Result<Self, StoreError> {
        let mut n = [0u8; 32];
        SystemRandom::new()
            .fill(&mut n)
            .map_err(|_| SealError::Crypto { step: "random" })?;
        Ok(Self {
            session_id: SessionId::generate()?,
            nonce: STANDARD.encode(n),
            tee: tee.to_owned(),
            hash,
            issued_ms: now_ms,
            expires_ms: now_ms.saturating_add(CHALLENGE_TTL_MS),
        })
    }
}

impl Challenge {
    /// Whether `sent` is this challenge's nonce (constant-time comparison). The store consumes
    /// a challenge by session; the caller then checks the nonce the guest sent with this, so a
    /// nonce of another session (or a replayed one) is refused.
    #[must_use]
    pub fn nonce_matches(&self, sent: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.nonce.as_bytes(), sent.as_bytes())
            .is_ok()
    }
}

/// The result of trying to use a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumeOutcome {
    /// This call used it (no other call ever will).
    Consumed(Challenge),
    /// No challenge for this session.
    Unknown,
    /// It expired unused.
    Expired,
    /// It was already used.
    AlreadyUsed,
}

/// An attested session: what `/attest` established, for the resource requests that follow.
/// `Debug` leaves out the session id and the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AttestedSession {
    /// The session.
    pub session_id: SessionId,
    /// The TEE.
    pub tee: String,
    /// The `tee-pubkey` JWK as sent (JSON text).
    pub tee_pubkey: String,
    /// The hex SHA-256 of the attestation token issued ([`token_digest`]), not the token: a
    /// copy of the database yields no token a guest could present. (The `token` column of the
    /// `sessions` table holds it; a session written by an older broker, with the token itself
    /// there, matches no token and its guest attests again.)
    pub token_digest: String,
    /// The verified claims / appraisal data the release engine appraises policies against (JSON).
    pub claims: String,
    /// Digest of the evidence.
    pub evidence_digest: String,
    /// When it was attested (Unix ms).
    pub attested_ms: i64,
    /// When it expires (Unix ms).
    pub expires_ms: i64,
}

impl std::fmt::Debug for AttestedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestedSession")
            .field("tee", &self.tee)
            .field("evidence_digest", &self.evidence_digest)
            .field("attested_ms", &self.attested_ms)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// A sealed secret version to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecretVersion {
    /// The resource.
    pub resource: ResourcePath,
    /// The version (from [`Store::next_version`]).
    pub version: u64,
    /// The policy sealed with it (must be stored already).
    pub policy_digest: PolicyDigest,
    /// The sealed value.
    pub sealed: SealedSecret,
    /// When it was put (Unix ms).
    pub created_ms: i64,
}

/// A stored sealed secret version.
pub type StoredSecret = NewSecretVersion;

/// What a listing shows of a version: never its value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretVersionInfo {
    /// The resource.
    pub resource: String,
    /// The version.
    pub version: u64,
    /// The policy sealed with it.
    pub policy_digest: PolicyDigest,
    /// When it was put (Unix ms).
    pub created_ms: i64,
    /// The KEK wrapping its data key.
    pub kek_id: String,
}

impl From<&NewSecretVersion> for SecretVersionInfo {
    fn from(v: &NewSecretVersion) -> Self {
        Self {
            resource: v.resource.to_string(),
            version: v.version,
            policy_digest: v.policy_digest.clone(),
            created_ms: v.created_ms,
            kek_id: v.sealed.kek_id.clone(),
        }
    }
}

/// The broker's storage. Async and object-safe (`Arc<dyn Store>`); implementations run
/// blocking work off the async runtime.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    // ---- policies ----

    /// Stores a policy text under its digest (idempotent) and returns the digest.
    async fn put_policy(&self, text: &str, now_ms: i64) -> Result<PolicyDigest, StoreError>;
    /// The policy text with this digest.
    async fn get_policy(&self, digest: &PolicyDigest) -> Result<Option<String>, StoreError>;
    /// Sets (or with `None` clears) a repository's default policy (stored already).
    async fn set_repo_policy(
        &self,
        repo: &str,
        digest: Option<&PolicyDigest>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// A repository's default policy.
    async fn repo_policy(&self, repo: &str) -> Result<Option<PolicyDigest>, StoreError>;

    // ---- secret versions ----

    /// Takes the next version number of a resource (never reused, even after deletes).
    async fn next_version(&self, resource: &ResourcePath) -> Result<u64, StoreError>;
    /// Inserts a sealed version; acknowledged means durable.
    async fn insert_version(&self, v: &NewSecretVersion) -> Result<(), StoreError>;
    /// A pinned version, or (`None`) the newest live one.
    async fn get_version(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
    ) -> Result<Option<StoredSecret>, StoreError>;
    /// [`Store::get_version`] and the text of the policy its row names (not yet checked against
    /// the digest), in one round trip where the store can.
    async fn get_version_and_policy(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
    ) -> Result<Option<(StoredSecret, Option<String>)>, StoreError> {
        let Some(rec) = self.get_version(resource, version).await? else {
            return Ok(None);
        };
        let text = self.get_policy(&rec.policy_digest).await?;
        Ok(Some((rec, text)))
    }
    /// Deletes one version or (`None`) all; returns the versions deleted.
    async fn delete_versions(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
    ) -> Result<Vec<u64>, StoreError>;
    /// Every live version (of one repository, or all), ordered by resource then version.
    async fn list_versions(&self, repo: Option<&str>)
    -> Result<Vec<SecretVersionInfo>, StoreError>;

    // ---- KEK rotation ----

    /// Up to `limit` versions whose data key is wrapped by a KEK other than `kek_id`.
    async fn versions_not_wrapped_by(
        &self,
        kek_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredSecret>, StoreError>;
    /// Replaces a version's wrapping if it is still wrapped by `old_kek_id`; `false` if the
    /// version is gone or was changed meanwhile.
    async fn replace_wrapping(
        &self,
        resource: &ResourcePath,
        version: u64,
        old_kek_id: &str,
        new: &SealedSecret,
    ) -> Result<bool, StoreError>;

    // ---- challenges and sessions ----

    /// Records a challenge issued by `/auth`.
    async fn insert_challenge(&self, c: &Challenge) -> Result<(), StoreError>;
    /// Uses a session's challenge: atomically, once, and only before it expires. Any attest
    /// attempt uses it up, whatever its outcome; compare the nonce the guest sent with
    /// [`Challenge::nonce_matches`].
    async fn consume_challenge(
        &self,
        session: &SessionId,
        now_ms: i64,
    ) -> Result<ConsumeOutcome, StoreError>;
    /// Records (or replaces) a session's attestation together with the audit entry of
    /// `event`, which records it: both or neither (a session without its entry would be usable
    /// with its cookie although its attestation is not in the log). Committed when it returns;
    /// the embedded store may leave its fsync to the next durable commit, which a release
    /// always makes (see `store::sqlite`).
    async fn put_session_audited(
        &self,
        s: &AttestedSession,
        event: AuditEvent,
    ) -> Result<AuditEntry, StoreError>;
    /// A session's attestation if it has not expired.
    async fn get_session(
        &self,
        session: &SessionId,
        now_ms: i64,
    ) -> Result<Option<AttestedSession>, StoreError>;
    /// Deletes up to `limit` challenges and up to `limit` sessions that expired at or before
    /// `now_ms`, the longest expired first; returns how many rows it deleted. A bounded delete
    /// keeps each call short, so it never holds up the flows sharing the store; call again
    /// until it returns 0.
    async fn purge_expired(&self, now_ms: i64, limit: u32) -> Result<u64, StoreError>;

    // ---- audit log ----

    /// Appends an event, chained to the last entry, in one serialised transaction.
    async fn append_audit(&self, event: AuditEvent) -> Result<AuditEntry, StoreError>;
    /// Up to `limit` entries with `seq > after`, in order.
    async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    // ---- health ----

    /// One cheap round trip to the store (the readiness probe); by default a one-entry read of
    /// the audit log.
    ///
    /// # Errors
    /// The store's error when it does not answer ([`StoreError::Database`] for PostgreSQL).
    async fn ping(&self) -> Result<(), StoreError> {
        self.audit_entries(0, 1).await.map(|_| ())
    }
}

/// What [`put_secret`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The resource.
    pub resource: ResourcePath,
    /// The new version.
    pub version: u64,
    /// The policy sealed with it.
    pub policy_digest: PolicyDigest,
    /// The KEK wrapping it.
    pub kek_id: String,
}

/// Puts a new version of a secret: stores the policy (or takes the repository's default when
/// `policy_text` is `None`), takes a version number, seals and inserts.
///
/// # Errors
/// [`StoreError::PolicySize`], [`StoreError::NoPolicy`], [`StoreError::Seal`], and the
/// store's errors.
pub async fn put_secret(
    store: &dyn Store,
    keyring: &Keyring,
    resource: &ResourcePath,
    policy_text: Option<&str>,
    value: &SecretValue,
    now_ms: i64,
) -> Result<PutOutcome, StoreError> {
    let policy_digest = match policy_text {
        Some(t) => {
            if t.is_empty() || t.len() > MAX_POLICY_LEN {
                return Err(StoreError::PolicySize {
                    len: t.len(),
                    max: MAX_POLICY_LEN,
                });
            }
            store.put_policy(t, now_ms).await?
        }
        None => store
            .repo_policy(resource.repo())
            .await?
            .ok_or_else(|| StoreError::NoPolicy {
                repo: resource.repo().to_owned(),
            })?,
    };
    let version = store.next_version(resource).await?;
    let sealed = seal::seal(
        keyring,
        &SealBinding {
            resource,
            version,
            policy_digest: &policy_digest,
        },
        value,
    )?;
    let kek_id = sealed.kek_id.clone();
    store
        .insert_version(&NewSecretVersion {
            resource: resource.clone(),
            version,
            policy_digest: policy_digest.clone(),
            sealed,
            created_ms: now_ms,
        })
        .await?;
    Ok(PutOutcome {
        resource: resource.clone(),
        version,
        policy_digest,
        kek_id,
    })
}

/// A version and the text of the policy sealed with it (checked against its digest), without
/// opening the secret: appraise the policy first, then [`open_stored`].
///
/// # Errors
/// [`StoreError::PolicyMissing`], and the store's errors.
pub async fn version_with_policy(
    store: &dyn Store,
    resource: &ResourcePath,
    version: Option<u64>,
) -> Result<Option<(StoredSecret, String)>, StoreError> {
    let Some((rec, text)) = store.get_version_and_policy(resource, version).await? else {
        return Ok(None);
    };
    let text = text
        .filter(|t| PolicyDigest::of(t.as_bytes()) == rec.policy_digest)
        .ok_or_else(|| StoreError::PolicyMissing {
            digest: rec.policy_digest.to_string(),
        })?;
    Ok(Some((rec, text)))
}

/// Opens a stored version (its path, version and policy digest are checked by the AAD).
///
/// # Errors
/// [`SealError`] from [`seal::open`].
pub fn open_stored(keyring: &Keyring, rec: &StoredSecret) -> Result<SecretValue, SealError> {
    seal::open(
        keyring,
        &SealBinding {
            resource: &rec.resource,
            version: rec.version,
            policy_digest: &rec.policy_digest,
        },
        &rec.sealed,
    )
}

/// What a KEK rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The new active KEK.
    pub kek_id: KekId,
    /// Versions re-wrapped.
    pub rewrapped: u64,
    /// KEKs dropped from the keyring at the end.
    pub retired: Vec<KekId>,
}

/// Rotates the KEK: a new active KEK (old ones stay readable), every version re-wrapped to it
/// (puts during the rotation already use it), then the old KEKs are dropped. Serialise calls
/// (one rotation at a time). If it fails midway, the keyring keeps every KEK and a later
/// rotation finishes the job.
///
/// # Errors
/// [`StoreError::Seal`] (keyring file, unwrap), [`StoreError::RotationStuck`], store errors.
pub async fn rotate_kek(
    store: &dyn Store,
    keyring: &KeyringFile,
) -> Result<RotationReport, StoreError> {
    let new = keyring.begin_rotation()?;
    let mut rewrapped = 0u64;
    let mut seen = BTreeSet::new();
    loop {
        let batch = store.versions_not_wrapped_by(new.as_str(), 256).await?;
        if batch.is_empty() {
            break;
        }
        let ring = keyring.current();
        for rec in batch {
            if !seen.insert((rec.resource.to_string(), rec.version)) {
                return Err(StoreError::RotationStuck {
                    resource: rec.resource.to_string(),
                    version: rec.version,
                });
            }
            let next = seal::rewrap(&ring, &rec.resource, rec.version, &rec.sealed)?;
            if store
                .replace_wrapping(&rec.resource, rec.version, &rec.sealed.kek_id, &next)
                .await?
            {
                rewrapped += 1;
            }
        }
    }
    let retired = keyring.finish_rotation(&new)?;
    Ok(RotationReport {
        kek_id: new,
        rewrapped,
        retired,
    })
}

/// Verifies the store's whole audit chain, page by page; returns the number of entries.
///
/// # Errors
/// [`StoreError::AuditChain`] naming the first broken entry, store errors.
pub async fn verify_audit_chain(store: &dyn Store) -> Result<u64, StoreError> {
    let mut v = ChainVerifier::new();
    loop {
        let page = store.audit_entries(v.verified(), 1000).await?;
        if page.is_empty() {
            return Ok(v.verified());
        }
        for e in &page {
            v.push(e)?;
        }
    }
}
