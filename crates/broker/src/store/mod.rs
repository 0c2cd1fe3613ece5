//! Where the broker keeps its state: the [`Store`] trait and its operations on top.
//!
//! A store holds sealed secret versions, policies, challenges, attested sessions and the audit
//! log. It never sees a plaintext secret: values are sealed ([`crate::seal`]) before they reach
//! it. The trait is written so that a shared SQL database (PostgreSQL, for replicas) can
//! implement it with the same guarantees as the embedded [`SqliteStore`] (and
//! [`PostgresStore`] does):
//!
//! - A challenge is not stored when `/auth` issues it: its session id carries it, and its
//!   nonce is derived from the id with the KEK ([`Challenge`]), so any replica can check an
//!   answer and an unauthenticated `/auth` writes nothing. Its single use is recorded when it
//!   is answered, by one insert keyed by the session (`INSERT .. ON CONFLICT DO NOTHING`), so
//!   two replicas racing on one nonce cannot both win.
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
//! silently changes what an existing version is released under: put a new version to apply it
//! (the release engine also holds a pinned older version to the newest version's policy, so the
//! new version withdraws the older ones from the workloads its policy excludes).
//! There is no global policy, so one tenant cannot change another's.
//!
//! Session ids are stored only as SHA-256 digests, so a copy of the database does not hold live
//! session cookies.

use std::collections::BTreeSet;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::audit::{
    AuditAction, AuditAnchor, AuditChainError, AuditEntry, AuditEvent, AuditVerdict, ChainVerifier,
};
use crate::binding::HashAlgorithm;
use crate::resource::{NameError, PolicyDigest, ResourcePath};
use crate::seal::{
    self, Kek, KekId, Keyring, KeyringFile, SealBinding, SealError, SealedSecret, SecretValue,
};

mod pg_tls;
mod postgres;
mod sqlite;
pub use postgres::{POSTGRES_SCHEMA_VERSION, PostgresOptions, PostgresStore};

/// What a release relied on, checked again in the transaction that records it
/// ([`Store::append_release`]): the version it opened still exists, sealed with the same
/// policy, and the newest version of the resource (whose policy the release also passed) is
/// still the same one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseBasis {
    /// The resource.
    pub resource: ResourcePath,
    /// The version released.
    pub version: u64,
    /// The policy sealed with that version.
    pub policy_digest: PolicyDigest,
    /// The newest version when the release was appraised.
    pub newest: u64,
}
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
    /// The newest other version of the resource came from the same sealed file, under the
    /// same policy ([`NewSecretVersion::origin`]): nothing was inserted.
    #[error("store: {resource} version {version} already holds this sealed file")]
    SameOrigin {
        /// The resource.
        resource: String,
        /// The version that holds it.
        version: u64,
    },
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
    /// A put gave no policy and the repository's default policy does not carry a MAC this
    /// broker's keyring confirms ([`RepoPolicy`]): changed in the database, set before
    /// defaults carried one, or under a KEK no longer held. Nothing was stored; setting the
    /// default again mends it.
    #[error(
        "store: the default policy of repository `{repo}` is not one an admin set through this \
         broker's keyring (changed in the database, or set before defaults were authenticated): \
         set it again"
    )]
    RepoPolicyUnauthenticated {
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
    /// Online KEK rotation was asked of a store replicas share ([`Store::shared_by_replicas`]):
    /// the other replicas would keep sealing under the KEK it retires.
    #[error(
        "store: the KEK of a store shared by replicas is not rotated online (see rotate_kek_exclusive)"
    )]
    RotationShared,
    /// The keyring is not the one the store was made with ([`KeyCheck`]).
    #[error(transparent)]
    KeyCheck(#[from] KeyCheckError),
    /// The blocking worker running the operation failed.
    #[error("store: the worker thread failed")]
    Worker,
}

/// The ids a keyring holds, for a message: `a, b`.
pub(crate) fn held_ids(keyring: &Keyring) -> String {
    keyring
        .ids()
        .iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A keyring refused by a store's key check ([`KeyCheck`], [`check_keyring`]). Names KEK ids,
/// never key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyCheckError {
    /// The store's key check names a KEK this keyring does not hold.
    #[error(
        "key check: the store was made with KEK `{store_kek}` (key_check.kek_id), which this \
         keyring does not hold (it holds {held})"
    )]
    NotHeld {
        /// The KEK the store's key check names.
        store_kek: String,
        /// The ids this keyring holds, as a list.
        held: String,
    },
    /// This keyring holds a KEK of the id the key check names, but the check's MAC does not
    /// verify under it: another key under the same id.
    #[error(
        "key check: the store was made with KEK `{store_kek}`, and the key check \
         (key_check.mac) does not verify under this keyring's KEK of that id: another key \
         (this keyring holds {held})"
    )]
    Mismatch {
        /// The KEK the store's key check names.
        store_kek: String,
        /// The ids this keyring holds, as a list.
        held: String,
    },
    /// The store holds secret versions under a KEK this keyring does not hold (a store made
    /// by an older broker, with no check yet; or a KEK rotated to, which a keyring restored
    /// from before the rotation lacks).
    #[error(
        "key check: the store holds secrets sealed under KEK `{store_kek}` (secrets.kek_id), \
         which this keyring does not hold (it holds {held})"
    )]
    Unopenable {
        /// A KEK the store's data names that this keyring does not hold.
        store_kek: String,
        /// The ids this keyring holds, as a list.
        held: String,
    },
    /// The key check changed while a KEK rotation re-made it (compare-and-swap failed):
    /// another broker wrote it meanwhile. The rotation did not finish; the keyring keeps its
    /// old KEK.
    #[error("key check: key_check changed while the KEK rotation re-made it; rotate again")]
    Changed,
}

/// The key check a store keeps: which KEK it was made with (the first broker to open it
/// records its active KEK), and a MAC under that KEK of a fixed label and the store's
/// [`Store::identity`] ([`Kek::key_check_mac`](crate::seal::Kek::key_check_mac)). A broker
/// whose keyring does not hold that KEK, or holds another key under its id, is refused at
/// start ([`check_keyring`]): what it sealed could not be opened by the others, nor theirs by
/// it. A KEK rotation re-makes it under the new KEK before it retires the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// The KEK the MAC is under.
    pub kek_id: String,
    /// The MAC, lowercase hex.
    pub mac: String,
}

impl KeyCheck {
    /// The key check of the store `store` (its [`Store::identity`]) under the keyring's active
    /// KEK.
    ///
    /// # Errors
    /// [`StoreError::Seal`] without an active KEK or if the MAC cannot be made.
    pub fn new(keyring: &Keyring, store: &[u8]) -> Result<Self, StoreError> {
        let kek = keyring.active()?;
        Ok(Self {
            kek_id: kek.id().as_str().to_owned(),
            mac: kek.key_check_mac(store)?,
        })
    }

    /// Whether `keyring` holds the KEK this check names and the MAC verifies under it for the
    /// store `store` (compared in constant time).
    ///
    /// # Errors
    /// [`KeyCheckError::NotHeld`], [`KeyCheckError::Mismatch`].
    pub fn verify(&self, keyring: &Keyring, store: &[u8]) -> Result<(), KeyCheckError> {
        let Some(kek) = keyring.get(&self.kek_id) else {
            return Err(KeyCheckError::NotHeld {
                store_kek: self.kek_id.clone(),
                held: held_ids(keyring),
            });
        };
        let ok = kek.key_check_mac(store).is_ok_and(|expected| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                self.mac.as_bytes(),
            )
            .is_ok()
        });
        if ok {
            Ok(())
        } else {
            Err(KeyCheckError::Mismatch {
                store_kek: self.kek_id.clone(),
                held: held_ids(keyring),
            })
        }
    }
}

/// Checks that `keyring` is the one the store was made with ([`KeyCheck`]), recording the
/// check first when the store has none: a new store, or one made before stores kept a check.
/// Every KEK the store's sealed versions name must be in the keyring (one bounded query), with
/// a check or without; two brokers doing
/// this at once on one store agree on one check (set once, then read back), and the other's
/// keyring must verify it. Returns the recorded check. Call it at start, once the store and
/// the keyring are open, and refuse to serve on an error.
///
/// # Errors
/// [`StoreError::KeyCheck`] when the keyring is refused, [`StoreError::Seal`], and the
/// store's errors.
pub async fn check_keyring(store: &dyn Store, keyring: &Keyring) -> Result<KeyCheck, StoreError> {
    let recorded = store.key_check().await?;
    if let Some(check) = &recorded {
        check.verify(keyring, store.identity())?;
    }
    // Every KEK the store's secret versions name, whether or not it has a check yet: the
    // check names the KEK the store was made with (or last rotated to), and after a rotation
    // left unfinished, or one done in two rollouts on PostgreSQL, versions are sealed under a
    // KEK the check does not name; a keyring restored without it would answer 500 for each.
    // Every id the store names is in the keyring only if no more ids than the keyring holds
    // come back, so one more is all the query needs to read.
    let limit = u32::try_from(keyring.ids().len())
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let used = store.sealed_kek_ids(limit).await?;
    if let Some(unknown) = used.iter().find(|id| keyring.get(id).is_none()) {
        return Err(KeyCheckError::Unopenable {
            store_kek: unknown.clone(),
            held: held_ids(keyring),
        }
        .into());
    }
    match recorded {
        Some(check) => Ok(check),
        None => {
            let check = store
                .set_key_check_once(&KeyCheck::new(keyring, store.identity())?)
                .await?;
            check.verify(keyring, store.identity())?;
            Ok(check)
        }
    }
}

/// Re-makes the store's key check under the keyring's active KEK (a rotation's, before it
/// retires the old KEK), replacing `checked` (what the rotation's `check_keyring` found) only
/// if the store still holds it.
async fn remake_key_check(
    store: &dyn Store,
    checked: &KeyCheck,
    ring: &Keyring,
) -> Result<(), StoreError> {
    let fresh = KeyCheck::new(ring, store.identity())?;
    if *checked == fresh || store.replace_key_check(checked, &fresh).await? {
        Ok(())
    } else {
        Err(KeyCheckError::Changed.into())
    }
}

/// A session id (the `kbs-session-id` cookie). It carries its challenge: 32 random bytes, the
/// issue time (Unix ms, big-endian), the hash code and the TEE's name, as unpadded base64url
/// (56 to 76 characters). The nonce is not in it: it is derived from the id with the KEK
/// ([`Challenge::nonce`]), so only the broker can tell it, and an id changed in any byte (an
/// earlier time, another TEE) has a nonce nobody was told. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(..)")
    }
}

/// Random bytes at the start of a session id.
const SESSION_RANDOM_LEN: usize = 32;
/// Longest TEE name a session id carries.
const SESSION_TEE_MAX: usize = 16;
/// Shortest and longest session id in bytes (before base64url).
const SESSION_MIN_LEN: usize = SESSION_RANDOM_LEN + 8 + 1 + 1;
const SESSION_MAX_LEN: usize = SESSION_RANDOM_LEN + 8 + 1 + SESSION_TEE_MAX;

impl SessionId {
    /// Takes a cookie value; `None` unless it is base64url of a length a session id has. What
    /// it carries is read by [`Challenge::from_session`].
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let ok = ((4 * SESSION_MIN_LEN).div_ceil(3)..=(4 * SESSION_MAX_LEN).div_ceil(3))
            .contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(s.to_owned()))
    }

    /// The cookie value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex SHA-256 of the id: the key the PostgreSQL store files the session (and its
    /// challenge's use) under, and the end of the SQLite store's key, which puts the
    /// challenge's issue time in front (`store::sqlite::row_key`).
    #[must_use]
    pub fn storage_key(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

/// The hex SHA-256 of `data`: how the broker names a token, a session id or a sealed file
/// in its store without keeping the text.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    tessera::pki::to_hex(&tessera::pki::sha256(data))
}

/// What a session keeps of the token issued to it: the hex SHA-256 of the token's text.
#[must_use]
pub fn token_digest(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Whether a version whose origin and policy digest are `held_*` already holds the import of
/// the sealed file `origin` under `policy_digest`: the one rule behind an import that changes
/// nothing, applied by the engine before it puts and by [`Store::insert_version`] atomically
/// with the insert.
#[must_use]
pub(crate) fn holds_import(
    held_origin: Option<&str>,
    held_policy_digest: &str,
    origin: &str,
    policy_digest: &str,
) -> bool {
    held_origin == Some(origin) && held_policy_digest == policy_digest
}

/// A challenge issued by `/auth`, as its session id carries it. The broker keeps no record of
/// it until it is answered: then [`Store::put_session_audited`] (or, when the answer is
/// refused, [`Store::use_challenge`]) records its single use, and a second answer is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// The TEE the guest announced (`snp`, `tdx`, ...).
    pub tee: String,
    /// The hash the REPORT_DATA binding uses.
    pub hash: HashAlgorithm,
    /// When it was issued (Unix ms).
    pub issued_ms: i64,
    /// When it stops being answerable (Unix ms).
    pub expires_ms: i64,
}

fn hash_code(h: HashAlgorithm) -> u8 {
    match h {
        HashAlgorithm::Sha256 => 1,
        HashAlgorithm::Sha384 => 2,
        HashAlgorithm::Sha512 => 3,
    }
}

fn hash_of_code(c: u8) -> Option<HashAlgorithm> {
    match c {
        1 => Some(HashAlgorithm::Sha256),
        2 => Some(HashAlgorithm::Sha384),
        3 => Some(HashAlgorithm::Sha512),
        _ => None,
    }
}

fn tee_name_ok(tee: &[u8]) -> bool {
    (1..=SESSION_TEE_MAX).contains(&tee.len())
        && tee
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl Challenge {
    /// A fresh challenge (a new session id with 32 random bytes), valid for
    /// [`CHALLENGE_TTL_MS`]. `tee` is 1 to 16 characters of `[a-z0-9]`.
    ///
    /// # Errors
    /// [`StoreError::Seal`] (crypto) if the system RNG fails; [`StoreError::Corrupt`] for a
    /// TEE name a session id cannot carry.
    pub fn generate(tee: &str, hash: HashAlgorithm, now_ms: i64) -> Result<Self, StoreError> {
        if !tee_name_ok(tee.as_bytes()) {
            return Err(StoreError::Corrupt {
                field: "challenge.tee",
            });
        }
        let mut id = Vec::with_capacity(SESSION_MAX_LEN);
        id.resize(SESSION_RANDOM_LEN, 0);
        SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| SealError::Crypto { step: "random" })?;
        id.extend_from_slice(&now_ms.to_be_bytes());
        id.push(hash_code(hash));
        id.extend_from_slice(tee.as_bytes());
        Ok(Self {
            session_id: SessionId(URL_SAFE_NO_PAD.encode(&id)),
            tee: tee.to_owned(),
            hash,
            issued_ms: now_ms,
            expires_ms: now_ms.saturating_add(CHALLENGE_TTL_MS),
        })
    }

    /// What a session id says of its challenge; `None` when it is not one
    /// [`Challenge::generate`] could have made. Nothing here is authenticated yet: an id is
    /// the broker's only if the guest knows its nonce ([`Challenge::nonce_matches`]).
    #[must_use]
    pub fn from_session(session: &SessionId) -> Option<Self> {
        let id = URL_SAFE_NO_PAD.decode(session.as_str()).ok()?;
        // One text per id: the store files a use under the text's digest, and the nonce is
        // derived from the bytes, so two texts of one id would be two challenges.
        if !(SESSION_MIN_LEN..=SESSION_MAX_LEN).contains(&id.len())
            || URL_SAFE_NO_PAD.encode(&id) != session.as_str()
        {
            return None;
        }
        let (_, rest) = id.split_at(SESSION_RANDOM_LEN);
        let (time, rest) = rest.split_first_chunk::<8>()?;
        let (code, tee) = rest.split_first()?;
        let hash = hash_of_code(*code)?;
        if !tee_name_ok(tee) {
            return None;
        }
        let issued_ms = i64::from_be_bytes(*time);
        Some(Self {
            session_id: session.clone(),
            tee: String::from_utf8(tee.to_vec()).ok()?,
            hash,
            issued_ms,
            expires_ms: issued_ms.saturating_add(CHALLENGE_TTL_MS),
        })
    }

    /// The nonce under `kek` for the store whose [`Store::identity`] is `store` (standard
    /// padded base64 of 32 bytes): what `/auth` answers.
    ///
    /// # Errors
    /// [`StoreError::Seal`] if the derivation fails.
    pub fn nonce(&self, kek: &Kek, store: &[u8]) -> Result<String, StoreError> {
        Ok(STANDARD.encode(kek.challenge_nonce(store, &self.id_bytes()?)?))
    }

    /// Whether `sent` is this challenge's nonce for the store `store` under any KEK of
    /// `keyring`, checked at `now_ms` (constant-time comparisons; every KEK, so challenges
    /// issued before a KEK rotation stay answerable while it runs, and for one challenge
    /// lifetime after it began under the KEKs it retired: [`Keyring::challenge_nonces`]). A
    /// session id the broker did not issue has a nonce no guest was told. Whether the
    /// challenge has expired is the caller's check.
    #[must_use]
    pub fn nonce_matches(&self, keyring: &Keyring, store: &[u8], sent: &str, now_ms: i64) -> bool {
        self.nonces(keyring, store, now_ms).iter().any(|n| {
            aws_lc_rs::constant_time::verify_slices_are_equal(n.as_bytes(), sent.as_bytes()).is_ok()
        })
    }

    /// Every nonce this challenge may have been given for the store `store` under `keyring`,
    /// checked at `now_ms` (as [`Challenge::nonce`] writes them): the active KEK's first, then
    /// the other KEKs', then those of KEKs a rotation retired after it was issued, while one
    /// may be needed ([`Keyring::challenge_nonces`]). None for an id that does not decode.
    #[must_use]
    pub fn nonces(&self, keyring: &Keyring, store: &[u8], now_ms: i64) -> Vec<String> {
        let Ok(id) = self.id_bytes() else {
            return Vec::new();
        };
        keyring
            .challenge_nonces(store, &id, self.issued_ms, now_ms)
            .map(|n| STANDARD.encode(n))
            .collect()
    }

    /// Until when the store keeps the record of its single use: its expiry plus one more
    /// lifetime, so that a replica whose clock is behind cannot take it for unused after the
    /// record was purged.
    #[must_use]
    pub fn retain_until_ms(&self) -> i64 {
        self.expires_ms.saturating_add(CHALLENGE_TTL_MS)
    }

    fn id_bytes(&self) -> Result<Vec<u8>, StoreError> {
        URL_SAFE_NO_PAD
            .decode(self.session_id.as_str())
            .map_err(|_| StoreError::Corrupt {
                field: "challenge.session_id",
            })
    }
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
    /// Where its value came from, when that was a sealed file ([`ChangeBy::origin`]): the
    /// hex SHA-256 of the file's text. What makes importing the same file again change
    /// nothing, without comparing values (which would tell an admin whether a guess equals
    /// the stored secret). [`Store::insert_version`] refuses a version whose origin and
    /// policy the newest other version already has.
    pub origin: Option<String>,
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

    /// Stores a policy text under its digest (idempotent; a text stored under the digest that
    /// does not hash to it, written into the database, is replaced) and returns the digest.
    async fn put_policy(&self, text: &str, now_ms: i64) -> Result<PolicyDigest, StoreError>;
    /// The policy text with this digest.
    async fn get_policy(&self, digest: &PolicyDigest) -> Result<Option<String>, StoreError>;
    /// Sets (or with `None` clears) a repository's default policy (its text stored already),
    /// together with the audit entry of `event`, which records it: both or neither.
    async fn set_repo_policy(
        &self,
        repo: &str,
        policy: Option<&RepoPolicy>,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<(), StoreError>;
    /// A repository's default policy, as stored (its MAC not checked: see [`RepoPolicy`]).
    async fn repo_policy(&self, repo: &str) -> Result<Option<RepoPolicy>, StoreError>;
    /// Up to `limit` repositories named after `after` (in byte order) whose default policy's
    /// MAC is not under the KEK `kek_id`, with their defaults (`None` for one whose digest
    /// does not parse: changed in the database, it is never used, and must not stop a KEK
    /// rotation).
    async fn repo_policies_not_under(
        &self,
        kek_id: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Option<RepoPolicy>)>, StoreError>;
    /// Replaces `repo`'s default policy with `new` if it is still `old`; `false` if it is not
    /// (changed or cleared meanwhile).
    async fn replace_repo_policy(
        &self,
        repo: &str,
        old: &RepoPolicy,
        new: &RepoPolicy,
    ) -> Result<bool, StoreError>;

    // ---- secret versions ----

    /// Takes the next version number of a resource (never reused, even after deletes).
    async fn next_version(&self, resource: &ResourcePath) -> Result<u64, StoreError>;
    /// Inserts a sealed version together with the audit entry of `event`, which records it:
    /// both or neither (a version whose entry failed would be released although its upload
    /// is not in the log). Acknowledged means durable.
    ///
    /// With an [`NewSecretVersion::origin`], nothing is inserted when the newest other version
    /// of the resource has that origin and the same policy digest
    /// ([`StoreError::SameOrigin`]), decided atomically with the insert: of concurrent imports
    /// of one sealed file, one makes a version and the others find it, whichever took the
    /// higher version number.
    async fn insert_version(
        &self,
        v: &NewSecretVersion,
        event: AuditEvent,
    ) -> Result<(), StoreError>;
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
    /// Deletes one version or (`None`) all, together with the audit entry of `event`, whose
    /// reason becomes [`deletion_reason`] of what was deleted: both or neither. Returns the
    /// versions deleted; when there were none, no entry is written.
    async fn delete_versions(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
        event: AuditEvent,
    ) -> Result<Vec<u64>, StoreError>;
    /// Up to `limit` live versions (of the repositories `repos`, or of all) that come after
    /// `after` (a resource and a version of it; none: from the first), ordered by resource
    /// (byte order) then version: a page of the listing, the next one starting after its last
    /// row.
    async fn list_versions(
        &self,
        repos: Option<&[String]>,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<SecretVersionInfo>, StoreError>;

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

    // ---- key check ----

    /// The store's key check ([`KeyCheck`]), if one is recorded.
    async fn key_check(&self) -> Result<Option<KeyCheck>, StoreError>;
    /// Records `check` unless a key check is recorded already (`INSERT .. ON CONFLICT DO
    /// NOTHING`), then returns the one recorded: of callers racing on a store with none, all
    /// get the same one.
    async fn set_key_check_once(&self, check: &KeyCheck) -> Result<KeyCheck, StoreError>;
    /// Replaces the key check with `new` if it is still `old`; `false` if it is not.
    async fn replace_key_check(&self, old: &KeyCheck, new: &KeyCheck) -> Result<bool, StoreError>;
    /// Up to `limit` distinct KEK ids (in byte order) that the stored secret versions wrap
    /// their data keys under. (Not the repository defaults' MACs: a rotation leaves a default
    /// it did not set, unauthentic, under the KEK it named, and a put refuses it anyway.)
    async fn sealed_kek_ids(&self, limit: u32) -> Result<Vec<String>, StoreError>;

    // ---- challenges and sessions ----

    /// What tells this store from every other: random bytes made when the store was created
    /// and kept in it. Challenge nonces are derived with it ([`Challenge::nonce`]), so a
    /// challenge is answerable only at brokers sharing the store that records its use, even
    /// when another store shares the keyring.
    fn identity(&self) -> &[u8];

    /// Whether several broker processes (replicas) are meant to serve from this store at
    /// once. Each holds its own copy of the keyring in memory, so an online KEK rotation by
    /// one of them would re-wrap rows the others cannot open, and retire a KEK they still seal
    /// new versions under: the engine refuses it on such a store.
    fn shared_by_replicas(&self) -> bool {
        false
    }

    /// Records the single use of a challenge whose answer was refused: `false` when it was
    /// already used (then nothing changes). Atomic: of two callers racing on one challenge
    /// (here or in [`Store::put_session_audited`], on any replica), exactly one gets `true`.
    /// The record is kept until [`Challenge::retain_until_ms`].
    async fn use_challenge(&self, c: &Challenge) -> Result<bool, StoreError>;
    /// Uses the session's challenge and records its attestation together with the audit
    /// entry of `event`, which records it: all three or none (a session without its entry
    /// would be usable with its cookie although its attestation is not in the log).
    /// `Ok(None)`, with neither session nor entry written, when the challenge was already
    /// used or a session with this id exists (a session is written once, never replaced). Committed when
    /// it returns; the embedded store may leave its fsync to the next durable commit, which a
    /// release always makes (see `store::sqlite`).
    async fn put_session_audited(
        &self,
        c: &Challenge,
        s: &AttestedSession,
        event: AuditEvent,
    ) -> Result<Option<AuditEntry>, StoreError>;
    /// A session's attestation if it has not expired.
    async fn get_session(
        &self,
        session: &SessionId,
        now_ms: i64,
    ) -> Result<Option<AttestedSession>, StoreError>;
    /// Deletes up to `limit` records of used challenges whose retention
    /// ([`Challenge::retain_until_ms`], kept in their `expires_ms` column) ended and up to
    /// `limit` sessions that expired, at or before `now_ms`, the longest expired first; returns how many rows it deleted. A bounded delete
    /// keeps each call short, so it never holds up the flows sharing the store; call again
    /// until it returns 0.
    async fn purge_expired(&self, now_ms: i64, limit: u32) -> Result<u64, StoreError>;

    // ---- audit log ----

    /// Appends an event, chained to the last entry, in one serialised transaction.
    async fn append_audit(&self, event: AuditEvent) -> Result<AuditEntry, StoreError>;
    /// Appends the entry of a release (durable, as [`Store::append_audit`]) in one transaction
    /// with a check that what the release relied on still holds ([`ReleaseBasis`]): `Ok(None)`,
    /// with nothing written, when a delete or a new version committed after the release read
    /// the store. So no secret leaves after a delete or a stricter version was acknowledged.
    async fn append_release(
        &self,
        event: AuditEvent,
        basis: &ReleaseBasis,
    ) -> Result<Option<AuditEntry>, StoreError>;
    /// Up to `limit` entries with `seq > after`, in order.
    async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    // ---- health ----

    /// One cheap round trip to the store (the readiness probe): a query that reads no row
    /// (`SELECT 1`) and writes nothing, so that a damaged row (an audit entry edited in the
    /// database, which `tessera audit verify` names) never makes the broker unready, and a
    /// probe costs no write lock or sync.
    ///
    /// # Errors
    /// The store's error when it does not answer ([`StoreError::Database`]; on SQLite also
    /// [`StoreError::Worker`], and the refusal of a store whose WAL could not be synced).
    async fn ping(&self) -> Result<(), StoreError>;
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

/// Who makes a change through [`put_secret`], for the audit entry written with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeBy<'a> {
    /// The actor (`admin:<subject>`, ...).
    pub actor: &'a str,
    /// A public note appended to the entry's reason (may be empty); never secret material.
    pub note: &'a str,
    /// The digest of the sealed file the value came from, if it did
    /// ([`NewSecretVersion::origin`]).
    pub origin: Option<&'a str>,
}

/// The reason an audit entry of a deletion gives: the versions deleted, in order.
#[must_use]
pub fn deletion_reason(deleted: &[u64]) -> String {
    format!("deleted versions {deleted:?}")
}

/// Refuses a policy text that is empty or longer than [`MAX_POLICY_LEN`] (a resource's or a
/// repository's default).
///
/// # Errors
/// [`StoreError::PolicySize`].
pub fn check_policy_size(text: &str) -> Result<(), StoreError> {
    if text.is_empty() || text.len() > MAX_POLICY_LEN {
        return Err(StoreError::PolicySize {
            len: text.len(),
            max: MAX_POLICY_LEN,
        });
    }
    Ok(())
}

/// A repository's default policy as stored: the policy's digest, and a MAC under a KEK
/// ([`Kek::repo_policy_mac`](crate::seal::Kek::repo_policy_mac)) binding it to the repository
/// and the store. A put that names no policy uses the default only if the keyring confirms
/// the MAC ([`repo_policy_digest`]): a default written into the database by anyone but the
/// broker is refused, not sealed under. KEK rotation re-makes the MACs under the new KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPolicy {
    /// The policy's digest (its text is in the policies).
    pub digest: PolicyDigest,
    /// The KEK the MAC is under (empty for a default set before defaults carried a MAC).
    pub kek_id: String,
    /// The MAC, lowercase hex.
    pub mac: String,
}

impl RepoPolicy {
    /// The default policy `digest` for `repo` in the store `store`, with its MAC under the
    /// keyring's active KEK.
    ///
    /// # Errors
    /// [`StoreError::Seal`] without an active KEK or if the MAC cannot be made.
    pub fn new(
        keyring: &Keyring,
        store: &[u8],
        repo: &str,
        digest: PolicyDigest,
    ) -> Result<Self, StoreError> {
        let kek = keyring.active()?;
        let mac = kek.repo_policy_mac(store, repo, digest.as_str())?;
        Ok(Self {
            digest,
            kek_id: kek.id().as_str().to_owned(),
            mac,
        })
    }

    /// A default as a store read it: its digest column parsed, the KEK id and MAC as they are.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the digest is not one.
    pub fn from_stored(digest: &str, kek_id: String, mac: String) -> Result<Self, StoreError> {
        Ok(Self {
            digest: PolicyDigest::parse(digest).map_err(|_| StoreError::Corrupt {
                field: "repo_policies.digest",
            })?,
            kek_id,
            mac,
        })
    }

    /// Whether the keyring confirms this default's MAC for `repo` in the store `store`
    /// (compared in constant time); never under a KEK the keyring does not hold (retired, or
    /// none for a default set before defaults carried a MAC).
    #[must_use]
    pub fn authentic(&self, keyring: &Keyring, store: &[u8], repo: &str) -> bool {
        keyring
            .get(&self.kek_id)
            .and_then(|k| k.repo_policy_mac(store, repo, self.digest.as_str()).ok())
            .is_some_and(|expected| {
                aws_lc_rs::constant_time::verify_slices_are_equal(
                    expected.as_bytes(),
                    self.mac.as_bytes(),
                )
                .is_ok()
            })
    }
}

/// The digest of `repo`'s default policy, if its MAC holds ([`RepoPolicy`]).
///
/// # Errors
/// [`StoreError::NoPolicy`] without a default, [`StoreError::RepoPolicyUnauthenticated`] if
/// its MAC does not hold, and the store's errors.
pub async fn repo_policy_digest(
    store: &dyn Store,
    keyring: &Keyring,
    repo: &str,
) -> Result<PolicyDigest, StoreError> {
    let policy = store
        .repo_policy(repo)
        .await?
        .ok_or_else(|| StoreError::NoPolicy {
            repo: repo.to_owned(),
        })?;
    if !policy.authentic(keyring, store.identity(), repo) {
        return Err(StoreError::RepoPolicyUnauthenticated {
            repo: repo.to_owned(),
        });
    }
    Ok(policy.digest)
}

/// Puts a new version of a secret: stores the policy (or takes the repository's default when
/// `policy_text` is `None`), takes a version number, seals, and inserts the version with the
/// audit entry recording it (`AdminPut` by `by.actor`, naming the version, its policy, size
/// and KEK).
///
/// # Errors
/// [`StoreError::PolicySize`], [`StoreError::NoPolicy`],
/// [`StoreError::RepoPolicyUnauthenticated`], [`StoreError::Seal`], and the store's errors.
pub async fn put_secret(
    store: &dyn Store,
    keyring: &Keyring,
    resource: &ResourcePath,
    policy_text: Option<&str>,
    value: &SecretValue,
    now_ms: i64,
    by: ChangeBy<'_>,
) -> Result<PutOutcome, StoreError> {
    // Refused before anything is stored or a version number taken.
    seal::check_secret_size(value)?;
    let policy_digest = match policy_text {
        Some(t) => {
            check_policy_size(t)?;
            store.put_policy(t, now_ms).await?
        }
        None => repo_policy_digest(store, keyring, resource.repo()).await?,
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
    let mut reason = format!("{} bytes sealed under {kek_id}", value.len());
    if !by.note.is_empty() {
        reason = format!("{reason}; {}", by.note);
    }
    let event = AuditEvent {
        time_ms: now_ms,
        actor: by.actor.to_owned(),
        action: AuditAction::AdminPut,
        resource: Some(format!("{resource}@{version}")),
        evidence_digest: None,
        policy_digest: Some(policy_digest.to_string()),
        verdict: AuditVerdict::Pass,
        reason,
    };
    store
        .insert_version(
            &NewSecretVersion {
                resource: resource.clone(),
                version,
                policy_digest: policy_digest.clone(),
                sealed,
                created_ms: now_ms,
                origin: by.origin.map(str::to_owned),
            },
            event,
        )
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
    /// Repository default policies whose MAC was made again under the new KEK.
    pub repo_policies: u64,
    /// Repository default policies left as they were because their MAC does not hold (see
    /// [`RepoPolicy`]): puts naming no policy stay refused there until the default is set
    /// again.
    pub repo_policies_unauthentic: u64,
    /// It went on with a rotation that had not finished (its KEK was already active; see
    /// [`KeyringFile::begin_rotation`]) instead of starting a new one.
    pub resumed: bool,
}

/// Rotates the KEK: a new active KEK (old ones stay readable), every version re-wrapped to it
/// (puts during the rotation already use it), then the old KEKs are dropped (challenges issued
/// under them stay answerable until they expire: [`KeyringFile::finish_rotation`]; `now` is
/// the broker's clock). Serialise calls
/// (one rotation at a time). If it fails or is dropped midway, the keyring keeps every KEK,
/// and the next call finishes that rotation (to the same new KEK, re-wrapping only what is
/// left) instead of starting another.
///
/// Refused on a store replicas share ([`Store::shared_by_replicas`]): each replica holds its
/// own copy of the keyring, so the others would go on sealing new versions under the KEK this
/// retires, and could not open what it re-wrapped. [`rotate_kek_exclusive`] is the same
/// rotation for a caller that has stopped every other user of the store.
///
/// # Errors
/// [`StoreError::RotationShared`], and as [`rotate_kek_exclusive`].
pub async fn rotate_kek(
    store: &dyn Store,
    keyring: &KeyringFile,
    now: impl Fn() -> tessera::UnixTime,
) -> Result<RotationReport, StoreError> {
    if store.shared_by_replicas() {
        return Err(StoreError::RotationShared);
    }
    rotate_kek_exclusive(store, keyring, now).await
}

/// Ends the keyring's rotation when dropped ([`KeyringFile::end_rotation`]).
struct EndRotation<'a>(&'a KeyringFile);

impl Drop for EndRotation<'_> {
    fn drop(&mut self) {
        self.0.end_rotation();
    }
}

/// [`rotate_kek`] without its check that no replica shares the store: for a caller that
/// knows this process is the store's only user (every other replica stopped, and restarted
/// only with the keyring file this rotation leaves).
///
/// # Errors
/// [`StoreError::Seal`] (keyring file, unwrap), [`StoreError::RotationStuck`], store errors.
pub async fn rotate_kek_exclusive(
    store: &dyn Store,
    keyring: &KeyringFile,
    now: impl Fn() -> tessera::UnixTime,
) -> Result<RotationReport, StoreError> {
    let before = keyring.current();
    // A keyring the store was not made with is refused before anything changes.
    let checked = check_keyring(store, &before).await?;
    let new = keyring.begin_rotation()?;
    // Read once the new KEK is active: every challenge an old KEK derived was issued by then.
    // (In whole seconds, as the broker dates its challenges.)
    let began_ms = now().as_secs().saturating_mul(1000);
    // Done, failed or dropped, other brokers may open the keyring again.
    let _rotating = EndRotation(keyring);
    let resumed = before.get(new.as_str()).is_some();
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
    let (repo_policies, repo_policies_unauthentic) =
        remake_repo_policy_macs(store, &keyring.current()).await?;
    // Under the new KEK before the old one is retired: a rotation interrupted before this
    // leaves the check under the old KEK, which the keyring still holds.
    remake_key_check(store, &checked, &keyring.current()).await?;
    let retired = keyring.finish_rotation(&new, began_ms)?;
    Ok(RotationReport {
        kek_id: new,
        rewrapped,
        retired,
        resumed,
        repo_policies,
        repo_policies_unauthentic,
    })
}

/// Makes the MAC of every repository default policy that holds again under the keyring's
/// active KEK (those that do not hold are left, and counted). Returns both counts.
async fn remake_repo_policy_macs(
    store: &dyn Store,
    ring: &Keyring,
) -> Result<(u64, u64), StoreError> {
    let active = ring.active_id().as_str();
    let (mut remade, mut unauthentic) = (0u64, 0u64);
    let mut after = String::new();
    loop {
        let batch = store.repo_policies_not_under(active, &after, 256).await?;
        let Some((last, _)) = batch.last() else {
            break;
        };
        let next = last.clone();
        for (repo, old) in batch {
            let Some(old) = old.filter(|p| p.authentic(ring, store.identity(), &repo)) else {
                unauthentic += 1;
                continue;
            };
            let fresh = RepoPolicy::new(ring, store.identity(), &repo, old.digest.clone())?;
            if store.replace_repo_policy(&repo, &old, &fresh).await? {
                remade += 1;
            }
        }
        // Repository names only grow: a batch never ends where it began.
        after = next;
    }
    Ok((remade, unauthentic))
}

/// Verifies the store's whole audit chain, page by page; returns the number of entries.
///
/// # Errors
/// [`StoreError::AuditChain`] naming the first broken entry, store errors.
pub async fn verify_audit_chain(store: &dyn Store) -> Result<u64, StoreError> {
    Ok(verify_audit_chain_from(store, None).await?.seq)
}

/// Verifies the store's whole audit chain, page by page, and the entry `anchor` names
/// against it ([`AuditAnchor`]); returns the last entry (the head).
///
/// # Errors
/// [`StoreError::AuditChain`] naming the first broken entry, or the anchor's, and the store's
/// errors.
pub async fn verify_audit_chain_from(
    store: &dyn Store,
    anchor: Option<AuditAnchor>,
) -> Result<AuditAnchor, StoreError> {
    let mut v = anchor.map_or_else(ChainVerifier::new, ChainVerifier::with_anchor);
    loop {
        let (page, _) = audit_entries_until_damage(store, v.verified(), 1000).await?;
        if page.is_empty() {
            return Ok(v.finish()?);
        }
        for e in &page {
            v.push(e)?;
        }
    }
}

/// The longest text a column of an audit row holds as the broker writes it: what
/// [`AuditEvent::bounded`](crate::audit::AuditEvent::bounded) cuts the actor, the reason, the
/// resource and the digests to (every entry is cut before it is hashed), and
/// [`MAX_FIELD_LEN`](crate::audit::MAX_FIELD_LEN) for the action and verdict names and the
/// hashes, which are far shorter. A longer one was written into the database by someone else:
/// the stores refuse it as that entry's damage ([`AuditChainError::Malformed`], naming the
/// column) before keeping it, so a page of audit entries stays a few MiB at most whatever the
/// database holds (SQLite checks the length before it copies the value out; PostgreSQL has sent
/// the page's rows by then, so there it bounds what is kept, not what is read).
pub(crate) fn audit_column_max(field: &str) -> usize {
    match field {
        "actor" => crate::audit::MAX_ACTOR_LEN,
        "reason" => crate::audit::MAX_REASON_LEN,
        _ => crate::audit::MAX_FIELD_LEN,
    }
}

/// Up to `limit` audit entries after `after`, as [`Store::audit_entries`] reads them, except
/// that a page holding a row that does not read as an entry (edited in the database: an unknown
/// verdict, text in a number's column) gives the entries before that row, read one at a time,
/// and `true`: a verifier checks them first, so an entry edited earlier is the one it names,
/// not the damaged row after it. The damaged row's own error comes when it is the first one
/// asked for. `false` with an undamaged page.
///
/// # Errors
/// The store's errors; [`AuditChainError::Malformed`] when the first row after `after` is the
/// damaged one.
pub async fn audit_entries_until_damage(
    store: &dyn Store,
    after: u64,
    limit: u32,
) -> Result<(Vec<AuditEntry>, bool), StoreError> {
    let damage = match store.audit_entries(after, limit).await {
        Ok(page) => return Ok((page, false)),
        Err(e @ StoreError::AuditChain(AuditChainError::Malformed { .. })) => e,
        Err(e) => return Err(e),
    };
    let mut read = Vec::new();
    let mut from = after;
    while read.len() < usize::try_from(limit).unwrap_or(usize::MAX) {
        match store.audit_entries(from, 1).await {
            Ok(one) => match one.into_iter().next() {
                Some(entry) => {
                    from = entry.seq;
                    read.push(entry);
                }
                // The damaged row is gone (deleted meanwhile): the end, as it reads now.
                None => return Ok((read, false)),
            },
            Err(e) if read.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    if read.is_empty() {
        return Err(damage);
    }
    Ok((read, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const URL_SAFE_NO_PAD_ALPHABET: &str =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    const STORE: &[u8] = b"store-one";
    /// When the nonces are checked (the challenges of these tests are issued at 1,000 at most).
    const T: i64 = 1_000;

    fn keyring() -> Keyring {
        Keyring::new(Kek::generate().unwrap())
    }

    #[test]
    fn a_session_id_carries_its_challenge() {
        for (tee, hash) in [
            ("snp", HashAlgorithm::Sha384),
            ("tdx", HashAlgorithm::Sha256),
            ("sgx", HashAlgorithm::Sha512),
            ("abcdefghijklmnop", HashAlgorithm::Sha384),
        ] {
            let ch = Challenge::generate(tee, hash, 1_764_750_000_000).unwrap();
            let id = SessionId::parse(ch.session_id.as_str()).unwrap();
            assert_eq!(Challenge::from_session(&id), Some(ch));
        }
        for tee in ["", "SNP", "sn-p", "abcdefghijklmnopq"] {
            assert!(matches!(
                Challenge::generate(tee, HashAlgorithm::Sha384, 0),
                Err(StoreError::Corrupt { .. })
            ));
        }
    }

    /// Rewrites a session id's bytes (then base64url again).
    fn edited(id: &SessionId, f: impl FnOnce(&mut Vec<u8>)) -> Option<SessionId> {
        let mut b = URL_SAFE_NO_PAD.decode(id.as_str()).unwrap();
        f(&mut b);
        SessionId::parse(&URL_SAFE_NO_PAD.encode(b))
    }

    #[test]
    fn malformed_session_ids_carry_no_challenge() {
        let ch = Challenge::generate("snp", HashAlgorithm::Sha384, 5).unwrap();
        let id = &ch.session_id;
        let hash_at = SESSION_RANDOM_LEN + 8;
        for bad in [
            edited(id, |b| b[hash_at] = 0),
            edited(id, |b| b[hash_at] = 4),
            edited(id, |b| b[hash_at + 1] = b'S'),
            edited(id, |b| b.extend_from_slice(b"\xff")),
        ] {
            let bad = bad.expect("a cookie of a session id's length");
            assert_eq!(Challenge::from_session(&bad), None);
        }
        // A TEE name too long is not even a cookie.
        assert!(
            edited(id, |b| {
                b.truncate(hash_at + 1);
                b.extend_from_slice(&[b'a'; SESSION_TEE_MAX + 1]);
            })
            .is_none()
        );
        // One text per id: base64url with trailing bits set decodes to the same bytes but is
        // another text (and would be another record of use).
        let text = id.as_str();
        let last = text.chars().last().unwrap();
        let pos = URL_SAFE_NO_PAD_ALPHABET.find(last).unwrap();
        // An `snp` id is 44 bytes: its last character carries 4 bits and 2 unused ones,
        // which base64url leaves zero.
        assert_ne!((URL_SAFE_NO_PAD.decode(text).unwrap().len() * 8) % 6, 0);
        assert_eq!(pos & 1, 0, "canonical: the unused bits are zero");
        let twin = format!(
            "{}{}",
            &text[..text.len() - 1],
            URL_SAFE_NO_PAD_ALPHABET.as_bytes()[pos | 1] as char
        );
        let twin = SessionId::parse(&twin).unwrap();
        assert_eq!(Challenge::from_session(&twin), None);
        // Lengths a session id cannot have are not even a cookie.
        assert!(edited(id, |b| b.truncate(SESSION_MIN_LEN - 1)).is_none());
        assert!(edited(id, |b| b.resize(SESSION_MAX_LEN + 1, b'a')).is_none());
        assert!(
            SessionId::parse(&"A".repeat(43)).is_none(),
            "the old 32-byte form"
        );
    }

    #[test]
    fn the_nonce_is_bound_to_every_byte_of_the_id_and_to_the_kek() {
        let ring = keyring();
        let kek = ring.active().unwrap();
        let ch = Challenge::generate("snp", HashAlgorithm::Sha384, 1_000).unwrap();
        let nonce = ch.nonce(kek, STORE).unwrap();
        assert_eq!(STANDARD.decode(&nonce).unwrap().len(), 32);
        assert!(ch.nonce_matches(&ring, STORE, &nonce, T));
        assert_eq!(
            ch.nonce(kek, STORE).unwrap(),
            nonce,
            "derived, so the same every time"
        );
        let n = URL_SAFE_NO_PAD
            .decode(ch.session_id.as_str())
            .unwrap()
            .len();
        for i in 0..n {
            // An id changed in any byte (an earlier time, another hash or TEE, other random
            // bytes) does not answer to the nonce issued for the original.
            let id = edited(&ch.session_id, |b| b[i] ^= 1).expect("same length, still a cookie");
            let forged = Challenge::from_session(&id).unwrap_or(Challenge {
                session_id: id,
                ..ch.clone()
            });
            assert!(!forged.nonce_matches(&ring, STORE, &nonce, T), "byte {i}");
        }
        // Another store sharing the keyring: another nonce (the use is recorded in one store).
        assert!(!ch.nonce_matches(&ring, b"store-two", &nonce, T));
        assert_ne!(ch.nonce(kek, b"store-two").unwrap(), nonce);
        assert!(ch.nonce(kek, &[0u8; 256]).is_err(), "an identity too long");
        // Another KEK: another nonce.
        assert!(!ch.nonce_matches(&keyring(), STORE, &nonce, T));
        assert_ne!(ch.nonce(keyring().active().unwrap(), STORE).unwrap(), nonce);
    }

    #[test]
    fn challenges_issued_before_a_kek_rotation_are_still_answerable() {
        let dir = tempfile::tempdir().unwrap();
        let file =
            KeyringFile::open_or_create(&dir.path().join("kek"), crate::keyfile::Symlinks::Refuse)
                .unwrap();
        let ch = Challenge::generate("tdx", HashAlgorithm::Sha512, 7).unwrap();
        let nonce = ch.nonce(file.current().active().unwrap(), STORE).unwrap();
        let old = file.current().active_id().clone();
        let new = file.begin_rotation().unwrap();
        let rotated = file.current();
        assert_eq!(
            rotated.keks().next().unwrap().id(),
            &new,
            "the active KEK first"
        );
        assert!(ch.nonce_matches(&rotated, STORE, &nonce, T));
        // New challenges are derived with the new KEK.
        assert_ne!(ch.nonce(rotated.active().unwrap(), STORE).unwrap(), nonce);
        // A challenge the old KEK derived for a time after the rotation began: no broker
        // issued it (the new KEK was active by then), so the retired KEK will not answer it.
        let old_kek = || rotated.get(old.as_str()).unwrap();
        let late = Challenge::generate("tdx", HashAlgorithm::Sha512, 11).unwrap();
        let late_nonce = late.nonce(old_kek(), STORE).unwrap();
        assert!(
            late.nonce_matches(&rotated, STORE, &late_nonce, T),
            "while it runs"
        );
        let edge = Challenge::generate("tdx", HashAlgorithm::Sha512, 10).unwrap();
        let edge_nonce = edge.nonce(old_kek(), STORE).unwrap();
        // The rotation began at 10: once it retires the old KEK, the KEK itself is gone, the
        // challenges issued at 7 and 10 are still answerable (until they expire), the one of
        // 11 is not.
        file.finish_rotation(&new, 10).unwrap();
        let after = file.current();
        assert!(after.get(old.as_str()).is_none());
        assert_eq!(after.keks().count(), 1);
        assert!(ch.nonce_matches(&after, STORE, &nonce, T));
        assert!(edge.nonce_matches(&after, STORE, &edge_nonce, T));
        assert!(!late.nonce_matches(&after, STORE, &late_nonce, T));
        // Nor for another store, or with another nonce.
        assert!(!ch.nonce_matches(&after, b"store-two", &nonce, T));
        assert!(!ch.nonce_matches(&after, STORE, &edge_nonce, T));
        // Only while a challenge it answers may be unexpired: one lifetime after the start.
        assert!(edge.nonce_matches(&after, STORE, &edge_nonce, 10 + CHALLENGE_TTL_MS - 1));
        assert!(!edge.nonce_matches(&after, STORE, &edge_nonce, 10 + CHALLENGE_TTL_MS));
        // Kept in memory only: the file names the new KEK alone, and a broker restarted now
        // refuses the old challenges (the guest attests again).
        let text = std::fs::read_to_string(dir.path().join("kek")).unwrap();
        assert!(!text.contains(old.as_str()), "{text}");
        let restarted = KeyringFile::open(&dir.path().join("kek")).unwrap();
        assert!(!ch.nonce_matches(&restarted.current(), STORE, &nonce, T));
        drop(restarted);
        // A challenge issued under the second KEK just before the third rotation begins.
        let mid = Challenge::generate("tdx", HashAlgorithm::Sha512, 9 + CHALLENGE_TTL_MS).unwrap();
        let mid_nonce = mid.nonce(after.active().unwrap(), STORE).unwrap();
        // The next rotation keeps the first key while a challenge of 10 may be unexpired (it
        // began within one lifetime of the first); one that begins when those have expired
        // drops it, and keeps the second.
        let third = file.begin_rotation().unwrap();
        file.finish_rotation(&third, 9 + CHALLENGE_TTL_MS).unwrap();
        assert!(edge.nonce_matches(&file.current(), STORE, &edge_nonce, T));
        let fourth = file.begin_rotation().unwrap();
        file.finish_rotation(&fourth, 10 + CHALLENGE_TTL_MS)
            .unwrap();
        assert!(!edge.nonce_matches(&file.current(), STORE, &edge_nonce, T));
        let at = 10 + CHALLENGE_TTL_MS;
        assert!(mid.nonce_matches(&file.current(), STORE, &mid_nonce, at));
        // Between rotations, the purge drops what no challenge can need any more.
        file.forget_retired(8 + 2 * CHALLENGE_TTL_MS);
        assert!(mid.nonce_matches(&file.current(), STORE, &mid_nonce, at));
        file.forget_retired(9 + 2 * CHALLENGE_TTL_MS);
        assert!(!mid.nonce_matches(&file.current(), STORE, &mid_nonce, at));
        assert_eq!(file.current().active_id(), &fourth);
        assert_eq!(file.current().keks().count(), 1);
    }

    proptest! {
        #[test]
        fn any_cookie_parses_or_is_refused(s in "[A-Za-z0-9_-]{0,90}") {
            if let Some(id) = SessionId::parse(&s)
                && let Some(ch) = Challenge::from_session(&id)
            {
                prop_assert_eq!(ch.session_id.as_str(), s.as_str());
                prop_assert!(tee_name_ok(ch.tee.as_bytes()));
                prop_assert_eq!(ch.expires_ms, ch.issued_ms.saturating_add(CHALLENGE_TTL_MS));
            }
        }

        #[test]
        fn any_id_round_trips(tee in "[a-z0-9]{1,16}", t in any::<i64>(), h in 0u8..3) {
            let hash = [HashAlgorithm::Sha256, HashAlgorithm::Sha384, HashAlgorithm::Sha512][usize::from(h)];
            let ch = Challenge::generate(&tee, hash, t).unwrap();
            let id = SessionId::parse(ch.session_id.as_str()).unwrap();
            prop_assert_eq!(Challenge::from_session(&id), Some(ch));
        }
    }
}
