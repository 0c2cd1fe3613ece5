//! Envelope encryption of secrets at rest: per-version data keys wrapped by a rotating KEK.
//!
//! Each secret version gets a fresh AES-256-GCM data key (DEK) and a random 96-bit nonce. The
//! DEK is wrapped with AES-KW (RFC 3394) under the active key-encryption key (KEK) of a
//! [`Keyring`]; the record names the KEK by id. The GCM AAD binds the resource path, the version
//! and the digest of the policy sealed with the secret:
//!
//! ```text
//! "tessera-seal-v1" || u32be(len(path)) || path || u64be(version) || u32be(len(digest)) || digest
//! ```
//!
//! so a ciphertext copied to another path or version, or paired with another policy, does not
//! open. The KEK id is deliberately not in the AAD: rotation re-wraps the DEK and leaves the data
//! ciphertext untouched.
//!
//! KEKs live in a keyring file ([`KeyringFile`], JSON, mode 0600, created on first start).
//! Rotation ([`KeyringFile::begin_rotation`]) adds a new active KEK while the old ones stay
//! readable; once every record is re-wrapped ([`rewrap`]), [`KeyringFile::finish_rotation`]
//! drops the old ones ([`KeyringFile::end_rotation`] ends a rotation that failed instead). No
//! other handle on the keyring file may be open meanwhile: a rotation holds its lock file
//! exclusively, and a handle opened during one waits for its end.
//!
//! Plaintext secrets are [`SecretValue`]s: no `Debug`, no `Clone`, zeroized
//! on drop.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap as _};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize as _, Zeroizing};

use crate::keyfile::Symlinks;
use crate::resource::{PolicyDigest, ResourcePath};

/// KEK and DEK length (AES-256).
pub const KEY_LEN: usize = 32;
/// Length of a wrapped DEK (AES-KW adds 8 bytes).
pub const WRAPPED_KEY_LEN: usize = KEY_LEN + 8;
/// Largest secret value sealed (1 MiB).
pub const MAX_SECRET_LEN: usize = 1 << 20;
/// Largest keyring file read.
const MAX_KEYRING_FILE_LEN: u64 = 64 * 1024;
const AAD_LABEL: &[u8] = b"tessera-seal-v1";

/// A sealing, opening or keyring operation failed. Never carries key or secret bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The record names a KEK that is not in the keyring.
    #[error("seal: KEK `{kek_id}` is not in the keyring")]
    UnknownKek {
        /// The KEK id the record names.
        kek_id: String,
    },
    /// The wrapped data key does not unwrap under its KEK (wrong KEK or damaged record).
    #[error(
        "seal: the data key of {resource} version {version} does not unwrap under KEK `{kek_id}`"
    )]
    Unwrap {
        /// The resource.
        resource: String,
        /// The version.
        version: u64,
        /// The KEK.
        kek_id: String,
    },
    /// The ciphertext does not open under its resource path, version and policy digest: it
    /// was moved, tampered with, or its policy was swapped.
    #[error(
        "seal: the ciphertext of {resource} version {version} does not open under its path, version and policy digest"
    )]
    Open {
        /// The resource.
        resource: String,
        /// The version.
        version: u64,
    },
    /// The secret is empty or longer than [`MAX_SECRET_LEN`].
    #[error("seal: a secret must be 1..={max} bytes, got {len}")]
    SecretSize {
        /// Length given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A KEK id is not 1..=64 characters of `[A-Za-z0-9_-]`.
    #[error("seal: KEK id is not 1..=64 characters of [A-Za-z0-9_-]")]
    BadKekId,
    /// The crypto library failed at the named step.
    #[error("seal: {step} failed")]
    Crypto {
        /// `random`, `key wrap`, `aes-gcm`.
        step: &'static str,
    },
    /// The keyring file could not be read or written.
    #[error("seal: keyring file {path}: {kind}")]
    KeyringIo {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        kind: std::io::ErrorKind,
    },
    /// The keyring file is readable or writable by group or others.
    #[error("seal: keyring file {path} has mode {mode:o}; it must be 0600 (or 0400)")]
    KeyringPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The keyring file is owned by another user (not the broker's, not root), who could have
    /// planted it.
    #[error("seal: keyring file {path} is owned by uid {uid}, not the broker's user or root")]
    KeyringOwner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// The keyring file is of a kind the broker refuses: a symbolic link where links are
    /// refused, or not a regular file.
    #[error("seal: keyring file {path}: {problem}")]
    KeyringRefused {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A rotation was asked while another handle on the keyring file (another broker, in this
    /// process or another, sharing the data directory) holds it, or its lock file
    /// (`<keyring>.lock`) could not be made: the other would go on sealing under the KEK the
    /// rotation retires.
    #[error(
        "seal: keyring file {path}: another broker uses it (or its lock file cannot be made); \
         stop the others to rotate the KEK"
    )]
    KeyringShared {
        /// The file.
        path: PathBuf,
    },
    /// The keyring file is not a valid keyring.
    #[error("seal: keyring file {path} is malformed: {reason}")]
    KeyringFormat {
        /// The file.
        path: PathBuf,
        /// Which part is wrong.
        reason: &'static str,
    },
    /// The keyring would lose the KEK it is asked to keep, or has no such KEK.
    #[error("seal: KEK `{kek_id}` is not the active KEK")]
    NotActive {
        /// The KEK id.
        kek_id: String,
    },
}

fn crypto(step: &'static str) -> impl Fn(aws_lc_rs::error::Unspecified) -> SealError {
    move |_| SealError::Crypto { step }
}

/// A plaintext secret value: no `Debug`, no `Clone`, zeroized on drop.
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Takes ownership of secret bytes (the vector is zeroized when this is dropped).
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// `len` random bytes (the admin API's `generate`).
    ///
    /// # Errors
    /// [`SealError::SecretSize`] for 0 or more than [`MAX_SECRET_LEN`], [`SealError::Crypto`].
    pub fn generate(len: usize) -> Result<Self, SealError> {
        check_secret_len(len)?;
        let mut v = Zeroizing::new(vec![0u8; len]);
        SystemRandom::new().fill(&mut v).map_err(crypto("random"))?;
        Ok(Self(v))
    }

    /// The secret bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A KEK id: 1..=64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KekId(String);

impl KekId {
    /// Checks and wraps an id.
    ///
    /// # Errors
    /// [`SealError::BadKekId`].
    pub fn new(id: &str) -> Result<Self, SealError> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(SealError::BadKekId)
        }
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KekId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The HKDF info that derives the challenge-nonce key from a KEK ([`Kek::challenge_nonce`]).
pub const CHALLENGE_NONCE_INFO: &[u8] = b"tessera challenge nonce v1";

/// The HKDF info that derives the repository-policy key from a KEK ([`Kek::repo_policy_mac`]).
pub const REPO_POLICY_INFO: &[u8] = b"tessera repository default policy v1";

/// The HKDF info that derives the store key-check key from a KEK ([`Kek::key_check_mac`]).
pub const KEY_CHECK_INFO: &[u8] = b"tessera store key check v1";

/// The fixed label in front of what a store's key check MACs ([`Kek::key_check_mac`]).
const KEY_CHECK_LABEL: &[u8] = b"tessera-store-key-check-v1";

/// A key-encryption key: an AES-256 key and its id. `Debug` shows the id only.
pub struct Kek {
    id: KekId,
    key: Zeroizing<[u8; KEY_LEN]>,
    /// The challenge-nonce key derived from `key` (see [`Kek::challenge_nonce`]), derived once:
    /// the derivation was three of the four HMAC computations of every nonce. `None` only if
    /// the derivation failed, which makes every nonce an error. Like `key`, it is wiped when
    /// the KEK is dropped (aws-lc's `HMAC_CTX_cleanup` clears the context).
    nonce_key: Option<aws_lc_rs::hmac::Key>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Kek {
    /// A new random KEK with a random id `kek-<16 hex>`.
    ///
    /// # Errors
    /// [`SealError::Crypto`] if the system RNG fails.
    pub fn generate() -> Result<Self, SealError> {
        let rng = SystemRandom::new();
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill(key.as_mut()).map_err(crypto("random"))?;
        let mut idb = [0u8; 8];
        rng.fill(&mut idb).map_err(crypto("random"))?;
        Ok(Self::new(KekId(format!("kek-{}", hex::encode(idb))), key))
    }

    /// A KEK from its id and key bytes.
    #[must_use]
    pub fn from_bytes(id: KekId, key: [u8; KEY_LEN]) -> Self {
        Self::new(id, Zeroizing::new(key))
    }

    /// A KEK from its id and key bytes, copied straight into storage that is zeroized on drop
    /// (not through a plain array first; moving the `Kek` itself still moves its bytes).
    fn from_slice(id: KekId, key: &[u8; KEY_LEN]) -> Self {
        let mut copy = Zeroizing::new([0u8; KEY_LEN]);
        copy.copy_from_slice(key);
        Self::new(id, copy)
    }

    /// This KEK again (for a new keyring), copied into zeroizing storage, not through a plain
    /// array.
    fn duplicate(&self) -> Self {
        Self::from_slice(self.id.clone(), &self.key)
    }

    fn new(id: KekId, key: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let nonce_key = derived_hmac_key(&key, CHALLENGE_NONCE_INFO);
        Self { id, key, nonce_key }
    }

    /// The KEK's id.
    #[must_use]
    pub fn id(&self) -> &KekId {
        &self.id
    }

    /// The challenge nonce for a session id of the store `store` (its
    /// [`crate::store::Store::identity`]; see [`crate::store::Challenge`]): HMAC-SHA256 of the
    /// store's identity (length-prefixed) and the id's bytes, keyed with a key derived from
    /// this KEK by HKDF-SHA256 (info [`CHALLENGE_NONCE_INFO`]), so it is not the KEK itself
    /// that signs. Without the KEK nobody can tell the nonce of an id, any change to an id gives
    /// an unrelated nonce, and so does another store: a challenge is answerable only where its
    /// single use is recorded, even when two stores share a keyring.
    ///
    /// # Errors
    /// [`SealError::Crypto`] if the derivation fails or the identity is longer than 255 bytes.
    pub fn challenge_nonce(&self, store: &[u8], session_id: &[u8]) -> Result<[u8; 32], SealError> {
        challenge_nonce(self.nonce_key.as_ref(), store, session_id)
    }

    /// The MAC that ties a repository's default policy (`digest`) to the repository `repo` of
    /// the store whose [`crate::store::Store::identity`] is `store`: HMAC-SHA256 of the three,
    /// each length-prefixed, keyed with a key derived from this KEK by HKDF-SHA256 (info
    /// [`REPO_POLICY_INFO`]); lowercase hex. The database holds the default but not the KEK,
    /// so whoever can only write to the database cannot make a put that names no policy seal
    /// under a policy of their choosing.
    ///
    /// # Errors
    /// [`SealError::Crypto`] if the derivation fails.
    pub fn repo_policy_mac(
        &self,
        store: &[u8],
        repo: &str,
        digest: &str,
    ) -> Result<String, SealError> {
        let key = derived_hmac_key(&self.key, REPO_POLICY_INFO).ok_or(SealError::Crypto {
            step: "repository policy key",
        })?;
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        for part in [store, repo.as_bytes(), digest.as_bytes()] {
            let len = u32::try_from(part.len()).map_err(|_| SealError::Crypto {
                step: "repository policy mac",
            })?;
            ctx.update(&len.to_be_bytes());
            ctx.update(part);
        }
        Ok(hex::encode(ctx.sign().as_ref()))
    }

    /// The MAC of a store's key check ([`crate::store::KeyCheck`]): HMAC-SHA256 of a fixed
    /// label and the store's [`crate::store::Store::identity`] (length-prefixed), keyed with a
    /// key derived from this KEK by HKDF-SHA256 (info [`KEY_CHECK_INFO`]); lowercase hex. It
    /// tells whether a keyring holds the KEK the store was made with, without the store
    /// holding anything a key could be recovered from.
    ///
    /// # Errors
    /// [`SealError::Crypto`] if the derivation fails or the identity is longer than 255 bytes.
    pub fn key_check_mac(&self, store: &[u8]) -> Result<String, SealError> {
        let key = derived_hmac_key(&self.key, KEY_CHECK_INFO).ok_or(SealError::Crypto {
            step: "key check key",
        })?;
        let len = u8::try_from(store.len()).map_err(|_| SealError::Crypto {
            step: "key check mac",
        })?;
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        ctx.update(KEY_CHECK_LABEL);
        ctx.update(&[len]);
        ctx.update(store);
        Ok(hex::encode(ctx.sign().as_ref()))
    }

    fn wrap(&self, dek: &[u8; KEY_LEN]) -> Result<Vec<u8>, SealError> {
        let kek = AesKek::new(&AES_256, self.key.as_ref()).map_err(crypto("key wrap"))?;
        let mut out = [0u8; WRAPPED_KEY_LEN];
        let w = kek.wrap(dek, &mut out).map_err(crypto("key wrap"))?;
        Ok(w.to_vec())
    }

    fn unwrap_dek(&self, wrapped: &[u8]) -> Option<Zeroizing<[u8; KEY_LEN]>> {
        if wrapped.len() != WRAPPED_KEY_LEN {
            return None;
        }
        let kek = AesKek::new(&AES_256, self.key.as_ref()).ok()?;
        let mut out = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
        let n = kek.unwrap(wrapped, out.as_mut()).ok()?.len();
        if n != KEY_LEN {
            return None;
        }
        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        for (d, s) in dek.iter_mut().zip(out.iter()) {
            *d = *s;
        }
        Some(dek)
    }
}

/// The HMAC-SHA256 key derived from the KEK bytes `kek` by HKDF-SHA256 with `info` (each use
/// of a KEK's bytes other than wrapping has its own `info`); `None` if the derivation fails.
fn derived_hmac_key(kek: &[u8; KEY_LEN], info: &[u8]) -> Option<aws_lc_rs::hmac::Key> {
    use aws_lc_rs::{hkdf, hmac};
    hkdf::Salt::new(hkdf::HKDF_SHA256, &[])
        .extract(kek)
        .expand(&[info], hmac::HMAC_SHA256)
        .ok()
        .map(hmac::Key::from)
}

/// [`Kek::challenge_nonce`] with the challenge-nonce key `key` (`None`: its derivation failed).
fn challenge_nonce(
    key: Option<&aws_lc_rs::hmac::Key>,
    store: &[u8],
    session_id: &[u8],
) -> Result<[u8; 32], SealError> {
    let key = key.ok_or(SealError::Crypto {
        step: "challenge key",
    })?;
    let scope_len = u8::try_from(store.len()).map_err(|_| SealError::Crypto {
        step: "challenge nonce",
    })?;
    let mut ctx = aws_lc_rs::hmac::Context::with_key(key);
    ctx.update(&[scope_len]);
    ctx.update(store);
    ctx.update(session_id);
    ctx.sign()
        .as_ref()
        .try_into()
        .map_err(|_| SealError::Crypto {
            step: "challenge nonce",
        })
}

/// The challenge-nonce key of a KEK a rotation retired, kept in memory (never in the keyring
/// file) so that a challenge issued before the rotation finished stays answerable until it
/// expires, instead of failing the guest that happened to attest across the rotation's end.
#[derive(Clone)]
struct RetiredChallengeKey {
    id: KekId,
    nonce_key: Option<aws_lc_rs::hmac::Key>,
    /// When the rotation that retired it began (the broker's clock, ms): it answers only
    /// challenges issued at or before this, and is dropped once no such challenge is unexpired.
    retired_ms: i64,
}

impl RetiredChallengeKey {
    /// Whether a challenge it answers may still be unexpired at `now_ms`.
    fn needed_at(&self, now_ms: i64) -> bool {
        now_ms
            < self
                .retired_ms
                .saturating_add(crate::store::CHALLENGE_TTL_MS)
    }
}

impl std::fmt::Debug for RetiredChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetiredChallengeKey")
            .field("id", &self.id)
            .field("retired_ms", &self.retired_ms)
            .finish_non_exhaustive()
    }
}

/// The KEKs the broker can unwrap with, one of them active (used for new seals).
#[derive(Debug)]
pub struct Keyring {
    active: KekId,
    keks: Vec<Kek>,
    /// The challenge-nonce keys of KEKs retired by a rotation that began less than a
    /// challenge's lifetime ago (or, until [`KeyringFile::forget_retired`] or the next
    /// rotation drops them, longer ago: they are then no longer used).
    retired: Vec<RetiredChallengeKey>,
}

impl Keyring {
    /// A keyring holding one KEK, active.
    #[must_use]
    pub fn new(active: Kek) -> Self {
        Self {
            active: active.id.clone(),
            keks: vec![active],
            retired: Vec::new(),
        }
    }

    /// The nonces a challenge issued at `issued_ms` (the session id `session_id` of the store
    /// `store`) may have been given, checked at `now_ms`: one per KEK of the keyring, the
    /// active one first, then, while `now_ms` is within one challenge lifetime of a rotation's
    /// start, one per KEK that rotation retired if the challenge was issued by then (see
    /// [`KeyringFile::finish_rotation`]). A derivation that fails yields nothing.
    pub fn challenge_nonces<'a>(
        &'a self,
        store: &'a [u8],
        session_id: &'a [u8],
        issued_ms: i64,
        now_ms: i64,
    ) -> impl Iterator<Item = [u8; 32]> + 'a {
        let live = self.keks().map(|k| k.nonce_key.as_ref());
        let retired = self
            .retired
            .iter()
            .filter(move |r| issued_ms <= r.retired_ms && r.needed_at(now_ms))
            .map(|r| r.nonce_key.as_ref());
        live.chain(retired)
            .filter_map(move |key| challenge_nonce(key, store, session_id).ok())
    }

    /// The active KEK's id.
    #[must_use]
    pub fn active_id(&self) -> &KekId {
        &self.active
    }

    /// Every KEK id in the keyring.
    #[must_use]
    pub fn ids(&self) -> Vec<&KekId> {
        self.keks.iter().map(|k| &k.id).collect()
    }

    /// Whether a rotation of this keyring retired the KEK `id` less than a challenge's lifetime
    /// ago (or, until [`KeyringFile::forget_retired`] drops it, longer ago): a record read
    /// under it before that rotation finished may since have been re-wrapped.
    #[must_use]
    pub fn retired_recently(&self, id: &str) -> bool {
        self.retired.iter().any(|r| r.id.as_str() == id)
    }

    /// The KEK with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Kek> {
        self.keks.iter().find(|k| k.id.as_str() == id)
    }

    /// Every KEK, the active one first.
    pub fn keks(&self) -> impl Iterator<Item = &Kek> {
        let active = self.keks.iter().filter(|k| k.id == self.active);
        active.chain(self.keks.iter().filter(|k| k.id != self.active))
    }

    /// The active KEK.
    ///
    /// # Errors
    /// [`SealError::UnknownKek`] if the keyring does not hold its active KEK.
    pub fn active(&self) -> Result<&Kek, SealError> {
        self.get(self.active.as_str())
            .ok_or_else(|| SealError::UnknownKek {
                kek_id: self.active.0.clone(),
            })
    }
}

/// A sealed secret version as stored: KEK id, wrapped DEK, nonce and GCM ciphertext+tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The KEK that wraps the DEK.
    pub kek_id: String,
    /// The AES-KW-wrapped DEK ([`WRAPPED_KEY_LEN`] bytes).
    pub wrapped_key: Vec<u8>,
    /// The GCM nonce.
    pub nonce: [u8; 12],
    /// The GCM ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// What a sealed secret is bound to (the AAD).
#[derive(Debug, Clone, Copy)]
pub struct SealBinding<'a> {
    /// The resource path.
    pub resource: &'a ResourcePath,
    /// The version (>= 1).
    pub version: u64,
    /// The digest of the policy sealed with the secret.
    pub policy_digest: &'a PolicyDigest,
}

fn aad(b: &SealBinding<'_>) -> Vec<u8> {
    let path = b.resource.to_string();
    let digest = b.policy_digest.as_str();
    let mut out = Vec::with_capacity(AAD_LABEL.len() + 16 + path.len() + digest.len());
    out.extend_from_slice(AAD_LABEL);
    // Path segments are at most 3*128+2 bytes and digests 103: both fit in u32.
    out.extend_from_slice(&u32::try_from(path.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(&b.version.to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(digest.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(digest.as_bytes());
    out
}

/// Whether `secret` can be sealed: 1 to [`MAX_SECRET_LEN`] bytes. Checked by [`seal`], and by
/// a put before it takes a version number, so that a refused put changes nothing.
///
/// # Errors
/// [`SealError::SecretSize`].
pub fn check_secret_size(secret: &SecretValue) -> Result<(), SealError> {
    check_secret_len(secret.len())
}

/// 1 to [`MAX_SECRET_LEN`] bytes: a secret's length, or one to be generated.
fn check_secret_len(len: usize) -> Result<(), SealError> {
    if len == 0 || len > MAX_SECRET_LEN {
        return Err(SealError::SecretSize {
            len,
            max: MAX_SECRET_LEN,
        });
    }
    Ok(())
}

/// Seals `secret` for `binding` under the keyring's active KEK.
///
/// # Errors
/// [`SealError::SecretSize`] (empty or over [`MAX_SECRET_LEN`]), [`SealError::UnknownKek`],
/// [`SealError::Crypto`].
pub fn seal(
    keyring: &Keyring,
    binding: &SealBinding<'_>,
    secret: &SecretValue,
) -> Result<SealedSecret, SealError> {
    check_secret_size(secret)?;
    let kek = keyring.active()?;
    let rng = SystemRandom::new();
    let mut dek = Zeroizing::new([0u8; KEY_LEN]);
    rng.fill(dek.as_mut()).map_err(crypto("random"))?;
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce).map_err(crypto("random"))?;
    let gcm =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, dek.as_ref()).map_err(crypto("aes-gcm"))?);
    // Room for the tag from the start: appending it to a full buffer would move the plaintext
    // to a new allocation and free the old one unzeroized.
    let mut buf = Vec::with_capacity(secret.expose().len() + AES_256_GCM.tag_len());
    buf.extend_from_slice(secret.expose());
    let sealed = gcm.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(binding)),
        &mut buf,
    );
    if sealed.is_err() {
        buf.zeroize();
        return Err(SealError::Crypto { step: "aes-gcm" });
    }
    Ok(SealedSecret {
        kek_id: kek.id.0.clone(),
        wrapped_key: kek.wrap(&dek)?,
        nonce,
        ciphertext: buf,
    })
}

/// Opens a sealed secret, checking it belongs to `binding`.
///
/// # Errors
/// [`SealError::UnknownKek`], [`SealError::Unwrap`], [`SealError::Open`] (moved, tampered, or
/// policy swapped).
pub fn open(
    keyring: &Keyring,
    binding: &SealBinding<'_>,
    sealed: &SealedSecret,
) -> Result<SecretValue, SealError> {
    let dek = unwrap_dek(keyring, binding.resource, binding.version, sealed)?;
    let gcm =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, dek.as_ref()).map_err(crypto("aes-gcm"))?);
    let mut buf = Zeroizing::new(sealed.ciphertext.clone());
    let n = gcm
        .open_in_place(
            Nonce::assume_unique_for_key(sealed.nonce),
            Aad::from(aad(binding)),
            &mut buf,
        )
        .map_err(|_| SealError::Open {
            resource: binding.resource.to_string(),
            version: binding.version,
        })?
        .len();
    let mut out = std::mem::take(&mut *buf);
    out.truncate(n);
    Ok(SecretValue::new(out))
}

fn unwrap_dek(
    keyring: &Keyring,
    resource: &ResourcePath,
    version: u64,
    sealed: &SealedSecret,
) -> Result<Zeroizing<[u8; KEY_LEN]>, SealError> {
    let kek = keyring
        .get(&sealed.kek_id)
        .ok_or_else(|| SealError::UnknownKek {
            kek_id: sealed.kek_id.clone(),
        })?;
    kek.unwrap_dek(&sealed.wrapped_key)
        .ok_or_else(|| SealError::Unwrap {
            resource: resource.to_string(),
            version,
            kek_id: sealed.kek_id.clone(),
        })
}

/// Re-wraps a record's data key under the keyring's active KEK (the data ciphertext is
/// unchanged). Returns the record unchanged if it already uses the active KEK.
///
/// # Errors
/// [`SealError::UnknownKek`], [`SealError::Unwrap`], [`SealError::Crypto`].
pub fn rewrap(
    keyring: &Keyring,
    resource: &ResourcePath,
    version: u64,
    sealed: &SealedSecret,
) -> Result<SealedSecret, SealError> {
    let active = keyring.active()?;
    if sealed.kek_id == active.id.0 {
        return Ok(sealed.clone());
    }
    let dek = unwrap_dek(keyring, resource, version, sealed)?;
    Ok(SealedSecret {
        kek_id: active.id.0.clone(),
        wrapped_key: active.wrap(&dek)?,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext.clone(),
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringDoc {
    version: u32,
    active: String,
    keys: Vec<KeyDoc>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    id: String,
    key: String,
}

impl Drop for KeyDoc {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// A keyring kept in a file (JSON, mode 0600), shared by the broker's tasks.
///
/// Format: `{"version":1,"active":"<id>","keys":[{"id":"<id>","key":"<base64 of 32 bytes>"}]}`.
#[derive(Debug)]
pub struct KeyringFile {
    path: PathBuf,
    current: RwLock<Arc<Keyring>>,
    /// The keyring's lock file (`<keyring>.lock`), locked shared while this handle lives and
    /// exclusively while it rotates, so that no other handle (another broker on the same data
    /// directory, in this process or another) seals under a KEK a rotation retires. `None`
    /// when it cannot be made (a read-only directory, where the keyring cannot be rotated
    /// either): rotations are then refused.
    lock: Option<fs::File>,
    /// Whether this handle made the file (there was none).
    created: bool,
    /// While this handle rotates (or tries to): the exclusive lock on `<keyring>.rotation.lock`,
    /// which a handle must hold to turn its shared lock into the exclusive one. Turning a lock
    /// is not atomic (Linux drops the shared lock before it tries the exclusive one), so
    /// without it a handle whose turn failed could be overtaken, in that gap, by another
    /// handle's rotation.
    rotating: Mutex<Option<fs::File>>,
}

/// The lock file `<keyring><suffix>` (created 0600), or `None` when it cannot be made.
fn lock_file(path: &Path, suffix: &str) -> Option<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(PathBuf::from(name))
        .ok()
}

/// The lock file of the keyring at `path`, locked shared (waiting while another handle
/// rotates); `None` when it cannot be made or locked.
fn shared_lock(path: &Path) -> Option<fs::File> {
    let file = lock_file(path, ".lock")?;
    file.lock_shared().ok()?;
    Some(file)
}

impl KeyringFile {
    /// Opens the keyring at `path`, creating it with one new KEK (mode 0600) if it does not
    /// exist. `symlinks`: whether `path` may be a symbolic link ([`Symlinks::Refuse`] for the
    /// broker's own file in its data directory, [`Symlinks::Follow`] for one the configuration
    /// names).
    ///
    /// # Errors
    /// Any error of [`KeyringFile::open`], [`SealError::KeyringRefused`] for a refused link,
    /// or [`SealError::KeyringIo`] when creating it fails.
    pub fn open_or_create(path: &Path, symlinks: Symlinks) -> Result<Self, SealError> {
        match fs::symlink_metadata(path) {
            Ok(_) => Self::open_with(path, symlinks),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let lock = shared_lock(path);
                let ring = Keyring::new(Kek::generate()?);
                if write_keyring(path, &ring, true)? {
                    Ok(Self {
                        path: path.to_owned(),
                        current: RwLock::new(Arc::new(ring)),
                        lock,
                        created: true,
                        rotating: Mutex::new(None),
                    })
                } else {
                    // Another process created it first: use theirs.
                    drop(lock);
                    Self::open_with(path, symlinks)
                }
            }
            Err(e) => Err(SealError::KeyringIo {
                path: path.to_owned(),
                kind: e.kind(),
            }),
        }
    }

    /// Opens an existing keyring file (a regular file, or a symbolic link to one). It must not
    /// be accessible by group or others.
    ///
    /// # Errors
    /// [`SealError::KeyringIo`], [`SealError::KeyringRefused`],
    /// [`SealError::KeyringPermissions`], [`SealError::KeyringFormat`].
    pub fn open(path: &Path) -> Result<Self, SealError> {
        Self::open_with(path, Symlinks::Follow)
    }

    fn open_with(path: &Path, symlinks: Symlinks) -> Result<Self, SealError> {
        // A link the configuration names is followed once, here (a rotation through the link
        // would replace the link, while every version is re-wrapped under the new KEK).
        let resolved =
            crate::keyfile::resolved(path, symlinks).map_err(|e| SealError::KeyringIo {
                path: path.to_owned(),
                kind: e.kind(),
            })?;
        let path = resolved.as_path();
        // Locked first: a keyring another handle is rotating is read once the rotation ended.
        let lock = shared_lock(path);
        let ring = read_keyring(path, symlinks)?;
        Ok(Self {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(ring)),
            lock,
            created: false,
            rotating: Mutex::new(None),
        })
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether [`KeyringFile::open_or_create`] made the file, with one new KEK, because there
    /// was none.
    #[must_use]
    pub fn created(&self) -> bool {
        self.created
    }

    /// The current keyring (a snapshot: rotation replaces it, holders keep theirs).
    #[must_use]
    pub fn current(&self) -> Arc<Keyring> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Starts a rotation: generates a KEK, makes it active, keeps the old ones readable, and
    /// persists the file (atomically: a new 0600 file renamed over the old) before using it.
    /// It first takes the keyring's lock exclusively, which it keeps until
    /// [`KeyringFile::end_rotation`]: refused while any other handle on the file is open.
    ///
    /// A keyring that still holds more than one KEK is in a rotation that did not finish (it
    /// failed, or its process stopped, before [`KeyringFile::finish_rotation`]): that rotation
    /// goes on, to the KEK already active, and no KEK is added. Otherwise every interrupted
    /// attempt would add a KEK and start the re-wrapping over, and a rotation that takes
    /// longer than whatever bounds one attempt would never finish.
    ///
    /// # Errors
    /// [`SealError::KeyringShared`], [`SealError::Crypto`], [`SealError::KeyringIo`].
    pub fn begin_rotation(&self) -> Result<KekId, SealError> {
        self.lock_exclusively()?;
        let begun = self.begin_rotation_locked();
        if begun.is_err() {
            self.end_rotation();
        }
        begun
    }

    /// Takes the lock file exclusively: first the rotation lock (so no other handle turns its
    /// lock meanwhile), then a turn of this handle's shared lock into the exclusive one, which
    /// fails while any other handle holds the lock file. Never waits.
    fn lock_exclusively(&self) -> Result<(), SealError> {
        let shared = || SealError::KeyringShared {
            path: self.path.clone(),
        };
        let lock = self.lock.as_ref().ok_or_else(shared)?;
        let mut rotating = self
            .rotating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if rotating.is_none() {
            let file = lock_file(&self.path, ".rotation.lock").ok_or_else(shared)?;
            file.try_lock().map_err(|_| shared())?;
            *rotating = Some(file);
        }
        if lock.try_lock().is_ok() {
            return Ok(());
        }
        // A refused turn may have dropped the shared lock (Linux removes it before it tries
        // the exclusive one): taken again. This does not wait: only a handle holding the
        // rotation lock, which this one holds, ever holds the lock file exclusively.
        let _ = lock.lock_shared();
        *rotating = None;
        Err(shared())
    }

    /// Ends a rotation (done or failed): the lock file is shared again, so other brokers may
    /// open the keyring, and the rotation lock is let go. Nothing when this handle does not
    /// rotate. [`KeyringFile::finish_rotation`] calls it when it succeeds.
    pub fn end_rotation(&self) {
        let mut rotating = self
            .rotating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if rotating.take().is_some()
            && let Some(lock) = &self.lock
        {
            let _ = lock.lock_shared();
        }
    }

    fn begin_rotation_locked(&self) -> Result<KekId, SealError> {
        let current = self.current();
        if current.keks.len() > 1 {
            return Ok(current.active.clone());
        }
        let new = Kek::generate()?;
        let id = new.id.clone();
        self.replace(|old| {
            let mut keks: Vec<Kek> = old.keks.iter().map(Kek::duplicate).collect();
            keks.push(new);
            Ok(Keyring {
                active: id.clone(),
                keks,
                retired: old.retired.clone(),
            })
        })?;
        Ok(id)
    }

    /// Finishes a rotation: keeps only `active` (which must be the active KEK) and persists,
    /// then ends the rotation ([`KeyringFile::end_rotation`]). Call it only once no record
    /// names another KEK. Returns the retired ids.
    ///
    /// `began_ms` is when the rotation began, by the broker's clock (or any later time): every
    /// challenge whose nonce a retired KEK derived was issued by then, since
    /// [`KeyringFile::begin_rotation`] made another KEK active. The retired KEKs'
    /// challenge-nonce keys (not the KEKs: nothing they wrapped opens with them) stay in this
    /// handle's memory for those challenges, until they have all expired
    /// ([`crate::store::CHALLENGE_TTL_MS`] after `began_ms`): a guest that received its
    /// challenge before the rotation and attests after it is still answered. They are never
    /// written to the file, so a broker restarted meanwhile refuses those challenges (the
    /// guest attests again). For a rotation taken up again (see
    /// [`KeyringFile::begin_rotation`]), pass when it was taken up: the keyring does not record
    /// when its KEK became active, and a later time only keeps the keys a little longer.
    /// [`KeyringFile::forget_retired`] drops them from memory once they are not needed.
    ///
    /// # Errors
    /// [`SealError::NotActive`], [`SealError::KeyringIo`].
    pub fn finish_rotation(&self, active: &KekId, began_ms: i64) -> Result<Vec<KekId>, SealError> {
        let mut retired = Vec::new();
        self.replace(|old| {
            if &old.active != active {
                return Err(SealError::NotActive {
                    kek_id: active.0.clone(),
                });
            }
            let mut keks = Vec::new();
            // Room for all from the start: growing would move the keys and leave the old
            // copies unwiped.
            let mut keys = Vec::with_capacity(old.retired.len() + old.keks.len());
            keys.extend(
                old.retired
                    .iter()
                    .filter(|r| r.needed_at(began_ms))
                    .cloned(),
            );
            for k in &old.keks {
                if &k.id == active {
                    keks.push(k.duplicate());
                } else {
                    retired.push(k.id.clone());
                    keys.push(RetiredChallengeKey {
                        id: k.id.clone(),
                        nonce_key: k.nonce_key.clone(),
                        retired_ms: began_ms,
                    });
                }
            }
            Ok(Keyring {
                active: active.clone(),
                keks,
                retired: keys,
            })
        })?;
        self.end_rotation();
        Ok(retired)
    }

    /// Drops from memory the challenge-nonce keys of retired KEKs that no unexpired challenge
    /// can need at `now_ms` (see [`KeyringFile::finish_rotation`]); the file is not touched.
    /// [`crate::engine::Broker::purge_expired`] calls it.
    pub fn forget_retired(&self, now_ms: i64) {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.retired.iter().all(|r| r.needed_at(now_ms)) {
            return;
        }
        let next = Keyring {
            active: guard.active.clone(),
            keks: guard.keks.iter().map(Kek::duplicate).collect(),
            retired: guard
                .retired
                .iter()
                .filter(|r| r.needed_at(now_ms))
                .cloned()
                .collect(),
        };
        *guard = Arc::new(next);
    }

    fn replace(
        &self,
        f: impl FnOnce(&Keyring) -> Result<Keyring, SealError>,
    ) -> Result<(), SealError> {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let next = f(&guard)?;
        write_keyring(&self.path, &next, false)?;
        *guard = Arc::new(next);
        Ok(())
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SealError + '_ {
    move |e| SealError::KeyringIo {
        path: path.to_owned(),
        kind: e.kind(),
    }
}

/// Writes the keyring whole ([`crate::keyfile::persist`]); `Ok(false)` when `create_new` found
/// a file there.
fn write_keyring(path: &Path, ring: &Keyring, create_new: bool) -> Result<bool, SealError> {
    let doc = KeyringDoc {
        version: 1,
        active: ring.active.0.clone(),
        keys: ring
            .keks
            .iter()
            .map(|k| KeyDoc {
                id: k.id.0.clone(),
                key: STANDARD.encode(k.key.as_ref()),
            })
            .collect(),
    };
    // Written into a buffer large enough from the start (a key takes under 150 bytes of
    // pretty JSON): one that grew by doubling would leave copies of the keys behind.
    let mut json = Zeroizing::new(Vec::with_capacity(256 + 192 * doc.keys.len()));
    serde_json::to_writer_pretty(&mut *json, &doc).map_err(|_| SealError::KeyringFormat {
        path: path.to_owned(),
        reason: "serialization",
    })?;
    // A uniquely named 0600 temporary file, made durable, then put in place: hard-linked for a
    // first start (never replacing a KEK another process created meanwhile), renamed for a
    // rotation.
    crate::keyfile::persist(path, &json, create_new).map_err(|e| match e {
        crate::keyfile::KeyFileError::Io { path, source } => SealError::KeyringIo {
            path,
            kind: source.kind(),
        },
        // persist fails only with Io; anything else would be a new kind of failure.
        _ => SealError::KeyringIo {
            path: path.to_owned(),
            kind: std::io::ErrorKind::Other,
        },
    })
}

fn read_keyring(path: &Path, symlinks: Symlinks) -> Result<Keyring, SealError> {
    let fmt = |reason| SealError::KeyringFormat {
        path: path.to_owned(),
        reason,
    };
    let (f, meta) = crate::keyfile::open_regular(path, symlinks).map_err(|e| match e {
        crate::keyfile::OpenError::Io(e) => io_err(path)(e),
        crate::keyfile::OpenError::Refused(problem) => SealError::KeyringRefused {
            path: path.to_owned(),
            problem,
        },
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SealError::KeyringPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let uid = std::os::unix::fs::MetadataExt::uid(&meta);
    if !crate::keyfile::owned_by_us_or_root(uid) {
        return Err(SealError::KeyringOwner {
            path: path.to_owned(),
            uid,
        });
    }
    // Sized from the file up front: a buffer that grew by doubling would leave copies of the
    // keys in the blocks it freed, which `Zeroizing` never sees.
    let mut f = f;
    let bytes = crate::keyfile::read_zeroizing(&mut f, Some(meta.len()), MAX_KEYRING_FILE_LEN, 0)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_KEYRING_FILE_LEN {
        return Err(fmt("larger than 64 KiB"));
    }
    let doc: KeyringDoc =
        serde_json::from_slice(&bytes).map_err(|_| fmt("not a keyring JSON document"))?;
    if doc.version != 1 {
        return Err(fmt("unknown version"));
    }
    let mut keks: Vec<Kek> = Vec::with_capacity(doc.keys.len());
    for k in &doc.keys {
        let id = KekId::new(&k.id).map_err(|_| fmt("bad KEK id"))?;
        if keks.iter().any(|e| e.id == id) {
            return Err(fmt("duplicate KEK id"));
        }
        let raw = Zeroizing::new(
            STANDARD
                .decode(&k.key)
                .map_err(|_| fmt("KEK is not base64"))?,
        );
        let key: &[u8; KEY_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| fmt("KEK is not 32 bytes"))?;
        keks.push(Kek::from_slice(id, key));
    }
    let active = KekId::new(&doc.active).map_err(|_| fmt("bad active KEK id"))?;
    if !keks.iter().any(|k| k.id == active) {
        return Err(fmt("the active KEK is not in the file"));
    }
    Ok(Keyring {
        active,
        keks,
        retired: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    fn path(s: &str) -> ResourcePath {
        ResourcePath::parse(s).unwrap()
    }

    #[test]
    fn seal_open_round_trip_and_bindings() {
        let ring = Keyring::new(Kek::generate().unwrap());
        let r = path("t/key/a");
        let pd = PolicyDigest::of(b"policy-a");
        let b = SealBinding {
            resource: &r,
            version: 3,
            policy_digest: &pd,
        };
        let s = seal(&ring, &b, &SecretValue::new(b"hunter2".to_vec())).unwrap();
        assert_eq!(s.wrapped_key.len(), WRAPPED_KEY_LEN);
        assert_eq!(open(&ring, &b, &s).unwrap().expose(), b"hunter2");

        // Moved to another path, another version, or paired with another policy: refused.
        let other = path("t/key/b");
        let pd2 = PolicyDigest::of(b"policy-b");
        for bad in [
            SealBinding {
                resource: &other,
                ..b
            },
            SealBinding { version: 4, ..b },
            SealBinding {
                policy_digest: &pd2,
                ..b
            },
        ] {
            assert!(matches!(open(&ring, &bad, &s), Err(SealError::Open { .. })));
        }
        // Tampered ciphertext, nonce or wrapped key.
        let mut t = s.clone();
        t.ciphertext[0] ^= 1;
        assert!(matches!(open(&ring, &b, &t), Err(SealError::Open { .. })));
        let mut t = s.clone();
        t.nonce[0] ^= 1;
        assert!(matches!(open(&ring, &b, &t), Err(SealError::Open { .. })));
        let mut t = s.clone();
        t.wrapped_key[5] ^= 1;
        assert!(matches!(open(&ring, &b, &t), Err(SealError::Unwrap { .. })));
        let mut t = s.clone();
        t.wrapped_key.pop();
        assert!(matches!(open(&ring, &b, &t), Err(SealError::Unwrap { .. })));
        // Another keyring does not know the KEK; a keyring with another key under the same id
        // cannot unwrap.
        let other_ring = Keyring::new(Kek::generate().unwrap());
        assert!(matches!(
            open(&other_ring, &b, &s),
            Err(SealError::UnknownKek { .. })
        ));
        let same_id = Keyring::new(Kek::from_bytes(KekId::new(&s.kek_id).unwrap(), [7; 32]));
        assert!(matches!(
            open(&same_id, &b, &s),
            Err(SealError::Unwrap { .. })
        ));
        // Swapping wrapped keys between two records fails too.
        let s2 = seal(&ring, &b, &SecretValue::new(b"other".to_vec())).unwrap();
        let mut t = s.clone();
        t.wrapped_key = s2.wrapped_key;
        assert!(matches!(open(&ring, &b, &t), Err(SealError::Open { .. })));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip_and_any_other_binding_fails(
            value in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..2000),
            version in 1u64..u64::MAX,
            other_version in 1u64..u64::MAX,
            tag in "[a-z0-9]{1,12}",
            other_tag in "[a-z0-9]{1,12}",
        ) {
            let ring = Keyring::new(Kek::generate().unwrap());
            let r = path(&format!("t/key/{tag}"));
            let pd = PolicyDigest::of(b"p");
            let b = SealBinding { resource: &r, version, policy_digest: &pd };
            let s = seal(&ring, &b, &SecretValue::new(value.clone())).unwrap();
            let opened = open(&ring, &b, &s).unwrap();
            proptest::prop_assert_eq!(opened.expose(), &value[..]);
            let r2 = path(&format!("t/key/{other_tag}"));
            let moved = SealBinding { resource: &r2, version: other_version, ..b };
            if other_tag != tag || other_version != version {
                proptest::prop_assert!(open(&ring, &moved, &s).is_err());
            }
        }
    }

    /// The nonce is HMAC-SHA256(HKDF-SHA256(KEK, info), len(store) ‖ store ‖ id), recomputed
    /// here step by step: the key derived once per KEK must give the nonces that deriving it
    /// for every nonce gave (nonces of challenges issued before an upgrade stay answerable).
    #[test]
    fn challenge_nonce_known_derivation() {
        use aws_lc_rs::{hkdf, hmac};
        let key = [0x42u8; KEY_LEN];
        let kek = Kek::from_bytes(KekId("k".into()), key);
        let expected = |store: &[u8], id: &[u8]| {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(&key);
            let okm = prk
                .expand(&[CHALLENGE_NONCE_INFO], hmac::HMAC_SHA256)
                .unwrap();
            let mut ctx = hmac::Context::with_key(&hmac::Key::from(okm));
            ctx.update(&[u8::try_from(store.len()).unwrap()]);
            ctx.update(store);
            ctx.update(id);
            ctx.sign().as_ref().to_vec()
        };
        let n = kek.challenge_nonce(b"store-a", b"id-1").unwrap();
        assert_eq!(n.to_vec(), expected(b"store-a", b"id-1"));
        // The store, the id and the KEK each change it; the length prefix separates the two.
        assert_ne!(n, kek.challenge_nonce(b"store-b", b"id-1").unwrap());
        assert_ne!(n, kek.challenge_nonce(b"store-a", b"id-2").unwrap());
        assert_ne!(
            kek.challenge_nonce(b"ab", b"c").unwrap(),
            kek.challenge_nonce(b"a", b"bc").unwrap()
        );
        let other = Kek::from_bytes(KekId("k".into()), [0x43u8; KEY_LEN]);
        assert_ne!(n, other.challenge_nonce(b"store-a", b"id-1").unwrap());
        // A rotation's copies of a KEK derive the same key.
        let ring_copy = Kek::new(KekId("k".into()), Zeroizing::new(key));
        assert_eq!(n, ring_copy.challenge_nonce(b"store-a", b"id-1").unwrap());
        // An identity too long for its length byte is refused.
        assert!(kek.challenge_nonce(&[0u8; 256], b"id").is_err());
    }

    #[test]
    fn sizes_and_ids() {
        let ring = Keyring::new(Kek::generate().unwrap());
        let r = path("t/key/a");
        let pd = PolicyDigest::of(b"p");
        let b = SealBinding {
            resource: &r,
            version: 1,
            policy_digest: &pd,
        };
        assert!(matches!(
            seal(&ring, &b, &SecretValue::new(vec![])),
            Err(SealError::SecretSize { .. })
        ));
        assert!(matches!(
            seal(&ring, &b, &SecretValue::new(vec![0; MAX_SECRET_LEN + 1])),
            Err(SealError::SecretSize { .. })
        ));
        assert!(matches!(
            SecretValue::generate(0),
            Err(SealError::SecretSize { .. })
        ));
        let g = SecretValue::generate(64).unwrap();
        assert_eq!(g.len(), 64);
        assert_ne!(g.expose(), &[0u8; 64][..]);
        assert!(KekId::new("").is_err());
        assert!(KekId::new("a/b").is_err());
        assert!(KekId::new(&"a".repeat(65)).is_err());
        let dbg = format!(
            "{:?}",
            Kek::from_bytes(KekId::new("k1").unwrap(), [0xab; 32])
        );
        assert_eq!(dbg, r#"Kek { id: KekId("k1"), .. }"#);
    }

    #[test]
    fn keyring_file_create_reopen_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kek");
        let kf = KeyringFile::open_or_create(&p, Symlinks::Refuse).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let first = kf.current().active_id().clone();
        let r = path("t/key/a");
        let pd = PolicyDigest::of(b"p");
        let b = SealBinding {
            resource: &r,
            version: 1,
            policy_digest: &pd,
        };
        let s = seal(&kf.current(), &b, &SecretValue::new(b"v".to_vec())).unwrap();

        // Reopening reads the same KEK. While that other handle lives, no rotation.
        let again = KeyringFile::open_or_create(&p, Symlinks::Refuse).unwrap();
        assert_eq!(again.current().active_id(), &first);
        assert_eq!(open(&again.current(), &b, &s).unwrap().expose(), b"v");
        assert!(matches!(
            kf.begin_rotation(),
            Err(SealError::KeyringShared { .. })
        ));
        assert_eq!(
            read_keyring(&p, Symlinks::Refuse).unwrap().ids(),
            vec![&first]
        );
        // The refused handle kept its shared lock: the other cannot rotate either.
        assert!(matches!(
            again.begin_rotation(),
            Err(SealError::KeyringShared { .. })
        ));
        drop(again);
        // Whoever holds the rotation lock (a handle turning its lock) keeps every other
        // handle from turning its own, even alone on the file.
        let turning = fs::File::open(dir.path().join("kek.rotation.lock")).unwrap();
        turning.try_lock().unwrap();
        assert!(matches!(
            kf.begin_rotation(),
            Err(SealError::KeyringShared { .. })
        ));
        drop(turning);

        // Rotation: new active, old still readable, then re-wrap, then retire.
        let new = kf.begin_rotation().unwrap();
        assert_ne!(new, first);
        // A rotation that ended before it finished (a failure, a dropped request) is taken
        // up again by the next one, to the same KEK: the keyring does not grow.
        kf.end_rotation();
        assert_eq!(kf.begin_rotation().unwrap(), new);
        assert_eq!(kf.current().ids().len(), 2);
        let on_disk = read_keyring(&p, Symlinks::Refuse).unwrap();
        assert_eq!(on_disk.ids().len(), 2);
        assert_eq!(open(&on_disk, &b, &s).unwrap().expose(), b"v");
        // Another handle opened meanwhile waits for the rotation's end, then reads its result.
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let waiting = std::thread::spawn({
            let p = p.clone();
            move || {
                let k = KeyringFile::open(&p).unwrap();
                opened_tx.send(k.current().ids().len()).unwrap();
            }
        });
        assert!(
            opened_rx
                .recv_timeout(std::time::Duration::from_millis(300))
                .is_err()
        );
        let s2 = rewrap(&kf.current(), &r, 1, &s).unwrap();
        assert_eq!(s2.kek_id, new.as_str());
        assert_eq!(s2.ciphertext, s.ciphertext);
        assert!(matches!(
            kf.finish_rotation(&first, 0),
            Err(SealError::NotActive { .. })
        ));
        // Finishing ends the rotation: the waiting handle opens.
        assert_eq!(kf.finish_rotation(&new, 0).unwrap(), vec![first]);
        assert_eq!(
            opened_rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap(),
            1
        );
        waiting.join().unwrap();
        let after = KeyringFile::open(&p).unwrap();
        assert_eq!(after.current().ids(), vec![&new]);
        assert_eq!(open(&after.current(), &b, &s2).unwrap().expose(), b"v");
        assert!(matches!(
            open(&after.current(), &b, &s),
            Err(SealError::UnknownKek { .. })
        ));
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_kek() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kek");
        let ids: Vec<KekId> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        KeyringFile::open_or_create(&p, Symlinks::Refuse)
                            .unwrap()
                            .current()
                            .active_id()
                            .clone()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|i| i == &ids[0]));
        assert_eq!(
            KeyringFile::open(&p).unwrap().current().active_id(),
            &ids[0]
        );
        // No temporary files are left behind: the keyring and its lock file.
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["kek", "kek.lock"]);
    }

    /// A link to a keyring is followed only when links are allowed (a file the configuration
    /// names), refused at the broker's own place; a directory or a FIFO is refused without
    /// being opened (a FIFO would block the start).
    #[test]
    fn keyring_links_and_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real-kek");
        let id = KeyringFile::open_or_create(&real, Symlinks::Refuse)
            .unwrap()
            .current()
            .active_id()
            .clone();
        let link = dir.path().join("kek");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            KeyringFile::open_or_create(&link, Symlinks::Refuse),
            Err(SealError::KeyringRefused { problem, .. }) if problem.contains("symbolic link")
        ));
        assert_eq!(
            KeyringFile::open_or_create(&link, Symlinks::Follow)
                .unwrap()
                .current()
                .active_id(),
            &id
        );
        assert_eq!(KeyringFile::open(&link).unwrap().current().active_id(), &id);
        // A rotation through the link writes the file it points at, and leaves the link.
        let through = KeyringFile::open(&link).unwrap();
        assert_eq!(through.path(), real.canonicalize().unwrap());
        let new_id = through.begin_rotation().unwrap();
        through.end_rotation();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            KeyringFile::open_or_create(&real, Symlinks::Refuse)
                .unwrap()
                .current()
                .active_id(),
            &new_id
        );
        assert!(!dir.path().join("kek.rotation.lock").exists());
        // A dangling link at the broker's place is refused, not created through.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(matches!(
            KeyringFile::open_or_create(&dangling, Symlinks::Refuse),
            Err(SealError::KeyringRefused { .. })
        ));
        assert!(!dir.path().join("nowhere").exists());
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        for (path, symlinks) in [
            (&fifo, Symlinks::Follow),
            (&fifo, Symlinks::Refuse),
            (&dir.path().to_path_buf(), Symlinks::Follow),
        ] {
            assert!(
                matches!(
                    KeyringFile::open_or_create(path, symlinks),
                    Err(SealError::KeyringRefused {
                        problem: "not a regular file",
                        ..
                    })
                ),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn keyring_file_rejections() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kek");
        KeyringFile::open_or_create(&p, Symlinks::Refuse).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            KeyringFile::open(&p),
            Err(SealError::KeyringPermissions { mode: 0o644, .. })
        ));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        if crate::keyfile::effective_uid() == Some(0) {
            std::os::unix::fs::chown(&p, Some(4242), None).unwrap();
            assert!(matches!(
                KeyringFile::open(&p),
                Err(SealError::KeyringOwner { uid: 4242, .. })
            ));
        }
        assert!(matches!(
            KeyringFile::open(&dir.path().join("missing")),
            Err(SealError::KeyringIo {
                kind: std::io::ErrorKind::NotFound,
                ..
            })
        ));
        let write = |body: &str| {
            let q = dir.path().join("bad");
            let _ = fs::remove_file(&q);
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&q)
                .unwrap()
                .write_all(body.as_bytes())
                .unwrap();
            KeyringFile::open(&q).unwrap_err()
        };
        let k = STANDARD.encode([1u8; 32]);
        let cases = [
            ("nope".to_string(), "not a keyring JSON document"),
            (
                format!(r#"{{"version":2,"active":"a","keys":[{{"id":"a","key":"{k}"}}]}}"#),
                "unknown version",
            ),
            (
                format!(r#"{{"version":1,"active":"b","keys":[{{"id":"a","key":"{k}"}}]}}"#),
                "the active KEK is not in the file",
            ),
            (
                r#"{"version":1,"active":"a","keys":[{"id":"a","key":"AAAA"}]}"#.to_string(),
                "KEK is not 32 bytes",
            ),
            (
                r#"{"version":1,"active":"a","keys":[{"id":"a","key":"not base64!"}]}"#.to_string(),
                "KEK is not base64",
            ),
            (
                format!(
                    r#"{{"version":1,"active":"a","keys":[{{"id":"a","key":"{k}"}},{{"id":"a","key":"{k}"}}]}}"#
                ),
                "duplicate KEK id",
            ),
            (
                format!(r#"{{"version":1,"active":"a/b","keys":[{{"id":"a/b","key":"{k}"}}]}}"#),
                "bad KEK id",
            ),
            (
                format!(r#"{{"version":1,"active":"a/b","keys":[{{"id":"a","key":"{k}"}}]}}"#),
                "bad active KEK id",
            ),
            (
                format!(r#"{{"version":1,"active":"a","keys":[{{"id":"a","key":"{k}","x":1}}]}}"#),
                "not a keyring JSON document",
            ),
            (" ".repeat(70 * 1024), "larger than 64 KiB"),
        ];
        for (body, why) in cases {
            let got = write(&body);
            assert!(
                matches!(&got, SealError::KeyringFormat { reason, .. } if *reason == why),
                "{body:.80}: {got:?}"
            );
        }
    }
}
