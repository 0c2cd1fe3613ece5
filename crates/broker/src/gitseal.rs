//! Secrets sealed for Git: the broker's sealing key pair (P-256, rotating), its public key set,
//! sealing a secret offline to it, and opening a sealed secret on import.
//!
//! A sealed secret is a compact JWE (ECDH-ES+A256KW, A256GCM) whose protected header — covered by
//! the AES-GCM tag — carries the key id, the resource path, the policy text and its digest. Only
//! the broker's private key opens it; changing the path or the policy in the header breaks the tag,
//! so a sealed file cannot be moved to another resource or given another policy. It does not
//! say who sealed it (the sealing key is public): the importer's admin credential is what
//! authorises the change. Once imported the secret is sealed at rest like any other (a data
//! key per version under the KEK).

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P256, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin, EcPublicKeyUncompressedBin};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zeroize::{Zeroize as _, Zeroizing};

use crate::jwe::{self, concat_kdf_a256kw};
use crate::jwk::TeePublicKey;
use crate::keyfile::{self, KeyFileError};
use crate::resource::{PolicyDigest, ResourcePath};
use crate::seal::SecretValue;

/// Header member: the resource the secret belongs to.
pub const HEADER_RESOURCE: &str = "tessera-resource";
/// Header member: the policy text sealed with it.
pub const HEADER_POLICY: &str = "tessera-policy";
/// Header member: the policy's digest (`sha384:<hex>`).
pub const HEADER_POLICY_DIGEST: &str = "tessera-policy-digest";

/// Largest sealed secret accepted (the secret, its policy, and the JWE overhead).
pub const MAX_SEALED_LEN: usize = 4 * 1024 * 1024;

/// Sealing or opening failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitSealError {
    /// A key file (the sealing keys, the CoCo signing key) could not be read or written.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A key file is refused: others could read it (the sealing keys), write it, or have
    /// planted it (a symbolic link where none is allowed, not a regular file).
    #[error("key file {path}: refused: {problem}")]
    Refused {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The key file changed since this handle read it (another broker on the same file
    /// rotated or retired a key): a change now would write over that one.
    #[error(
        "key file {path}: changed since this broker read it (another broker rotated or retired \
         a key): restart this broker to read it again"
    )]
    ChangedByAnother {
        /// The file.
        path: PathBuf,
    },
    /// The sealed text is not a compact JWE of the expected shape.
    #[error("sealed secret: {0}")]
    Format(&'static str),
    /// The header names a key this broker does not hold (retired, or another broker's).
    #[error("sealed secret: key id {0:?} is not one of this broker's sealing keys")]
    UnknownKey(String),
    /// The JWE does not open: tampered, or the header was changed.
    #[error("sealed secret: it does not open (tampered, or its header was changed)")]
    Open,
    /// The policy in the header does not match its digest.
    #[error("sealed secret: the policy does not match its digest")]
    PolicyDigest,
    /// The public key given for sealing is not a broker sealing key.
    #[error("sealing key: {0}")]
    PublicKey(String),
    /// A crypto step failed.
    #[error("sealed secret: {0} failed")]
    Crypto(&'static str),
}

fn crypto(step: &'static str) -> impl Fn(aws_lc_rs::error::Unspecified) -> GitSealError {
    move |_| GitSealError::Crypto(step)
}

#[derive(Serialize, Deserialize)]
struct KeyDoc {
    kid: String,
    created_ms: i64,
    /// The P-256 private scalar, standard base64.
    key: String,
}

impl Drop for KeyDoc {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// Largest key file read (a sealing keys file, or a CoCo signing key).
const MAX_KEY_FILE_LEN: u64 = 1024 * 1024;

/// Why a sealing keys file others can read is refused.
const SEALING_KEYS_READABLE: &str = "readable by group or others (chmod 600)";

#[derive(Serialize, Deserialize)]
struct KeysDoc {
    version: u32,
    keys: Vec<KeyDoc>,
}

struct SealingKey {
    kid: String,
    created_ms: i64,
    key: PrivateKey,
    public: Value,
}

/// The broker's sealing keys, newest last; new seals use the newest, every held key opens.
pub struct SealingKeys {
    path: PathBuf,
    keys: Vec<SealingKey>,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKeys")
            .field("path", &self.path)
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn key_file(path: &Path, reason: impl std::fmt::Display) -> GitSealError {
    GitSealError::KeyFile {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

pub use crate::keyfile::Symlinks;

/// A key file read with the shared checks ([`keyfile::read`]), its refusals kept apart.
fn read_key_file(
    path: &Path,
    symlinks: Symlinks,
    forbidden_mode: u32,
    problem: &'static str,
) -> Result<Zeroizing<Vec<u8>>, GitSealError> {
    keyfile::read(path, symlinks, forbidden_mode, problem, MAX_KEY_FILE_LEN).map_err(from_keyfile)
}

/// [`keyfile::persist`]'s answer: `Ok(false)` when a first creation found a file there.
fn persist(path: &Path, bytes: &[u8], create_new: bool) -> Result<bool, GitSealError> {
    keyfile::persist(path, bytes, create_new).map_err(from_keyfile)
}

impl From<KeyFileError> for GitSealError {
    fn from(e: KeyFileError) -> Self {
        from_keyfile(e)
    }
}

fn from_keyfile(e: KeyFileError) -> GitSealError {
    match e {
        KeyFileError::Refused { path, problem } => GitSealError::Refused { path, problem },
        KeyFileError::Io { path, source } => key_file(&path, source),
        KeyFileError::TooLarge { path, max } => key_file(&path, format!("larger than {max} bytes")),
    }
}

fn public_jwk(key: &PrivateKey, kid: &str) -> Result<Value, GitSealError> {
    let public = key.compute_public_key().map_err(crypto("public key"))?;
    let bin: EcPublicKeyUncompressedBin<'static> =
        public.as_be_bytes().map_err(crypto("public key"))?;
    let point = bin.as_ref();
    let (x, y) = point
        .get(1..33)
        .zip(point.get(33..65))
        .ok_or(GitSealError::Crypto("public key"))?;
    Ok(json!({
        "kty": "EC",
        "crv": "P-256",
        "alg": "ECDH-ES+A256KW",
        "use": "enc",
        "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    }))
}

fn new_key(created_ms: i64) -> Result<SealingKey, GitSealError> {
    let key = PrivateKey::generate(&ECDH_P256).map_err(crypto("key generation"))?;
    let mut id = [0u8; 8];
    aws_lc_rs::rand::fill(&mut id).map_err(crypto("random"))?;
    let kid = format!("seal-{}", hex::encode(id));
    let public = public_jwk(&key, &kid)?;
    Ok(SealingKey {
        kid,
        created_ms,
        key,
        public,
    })
}

/// The file text of `keys` (JSON; the private scalars in it, so zeroized when dropped).
fn encode<'a>(
    path: &Path,
    keys: impl IntoIterator<Item = &'a SealingKey>,
) -> Result<Zeroizing<Vec<u8>>, GitSealError> {
    let mut docs = Vec::new();
    for k in keys {
        let bin: EcPrivateKeyBin<'static> = k.key.as_be_bytes().map_err(crypto("key export"))?;
        docs.push(KeyDoc {
            kid: k.kid.clone(),
            created_ms: k.created_ms,
            key: STANDARD.encode(bin.as_ref()),
        });
    }
    // Written into a buffer large enough from the start (a key takes under 200 bytes of
    // pretty JSON): one that grew by doubling would leave copies of the keys behind.
    let mut json = Zeroizing::new(Vec::with_capacity(256 + 256 * docs.len()));
    serde_json::to_writer_pretty(
        &mut *json,
        &KeysDoc {
            version: 1,
            keys: docs,
        },
    )
    .map_err(|_| key_file(path, "serialization"))?;
    Ok(json)
}

impl SealingKeys {
    /// The keys in `path`, created (one key, file mode 0600, written atomically) if the file
    /// does not exist. `symlinks`: whether `path` may be a symbolic link ([`Symlinks::Refuse`]
    /// for the broker's own file in its data directory).
    ///
    /// # Errors
    /// [`GitSealError::KeyFile`]: unreadable or malformed; [`GitSealError::Refused`]: readable
    /// by others, or a refused link.
    pub fn open_or_create(
        path: &Path,
        symlinks: Symlinks,
        now_ms: i64,
    ) -> Result<Self, GitSealError> {
        // Resolved first, then read: the keys held are those of the file a rotation rewrites.
        // A file still to be made has nothing to resolve.
        let path = &match symlinks {
            Symlinks::Follow if std::fs::symlink_metadata(path).is_ok() => {
                Self::resolved(path, symlinks)?
            }
            _ => path.to_owned(),
        };
        let text = keyfile::read_or_create(
            path,
            symlinks,
            0o077,
            SEALING_KEYS_READABLE,
            MAX_KEY_FILE_LEN,
            || encode(path, &[new_key(now_ms)?]),
        )?;
        Self::from_text(path, &text)
    }

    /// The file a rotation rewrites (and locks beside): the one a followed link names.
    fn resolved(path: &Path, symlinks: Symlinks) -> Result<PathBuf, GitSealError> {
        keyfile::resolved(path, symlinks).map_err(|e| key_file(path, e))
    }

    /// The keys in `path`: a regular file (or a symbolic link to one) that group and others
    /// cannot read.
    ///
    /// # Errors
    /// [`GitSealError::KeyFile`]; [`GitSealError::Refused`].
    pub fn open(path: &Path) -> Result<Self, GitSealError> {
        let path = &Self::resolved(path, Symlinks::Follow)?;
        let text = read_key_file(path, Symlinks::Follow, 0o077, SEALING_KEYS_READABLE)?;
        Self::from_text(path, &text)
    }

    /// The keys of a file's text.
    fn from_text(path: &Path, text: &[u8]) -> Result<Self, GitSealError> {
        // serde_json's message may quote the value it refused (a key, in a damaged file): only
        // its position is kept.
        let doc: KeysDoc = serde_json::from_slice(text).map_err(|e| {
            key_file(
                path,
                format!(
                    "not a sealing-keys JSON document (line {} column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if doc.version != 1 || doc.keys.is_empty() {
            return Err(key_file(path, "unsupported version or no key"));
        }
        let mut keys = Vec::with_capacity(doc.keys.len());
        for (i, k) in doc.keys.iter().enumerate() {
            // A kid names one key: with two, files would open under the first while the last
            // is advertised as current.
            if doc.keys.iter().take(i).any(|earlier| earlier.kid == k.kid) {
                return Err(key_file(path, "two keys with one kid"));
            }
            let scalar = Zeroizing::new(
                STANDARD
                    .decode(k.key.as_bytes())
                    .map_err(|_| key_file(path, "key is not base64"))?,
            );
            let key = PrivateKey::from_private_key(&ECDH_P256, &scalar)
                .map_err(|_| key_file(path, "not a P-256 private key"))?;
            let public = public_jwk(&key, &k.kid)?;
            keys.push(SealingKey {
                kid: k.kid.clone(),
                created_ms: k.created_ms,
                key,
                public,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            keys,
        })
    }

    /// Saves `keys` over the file, atomically. Callers change the held keys only once this
    /// succeeded: a key set that could not be saved is never used or advertised.
    fn save<'a>(&self, keys: impl IntoIterator<Item = &'a SealingKey>) -> Result<(), GitSealError> {
        persist(&self.path, &encode(&self.path, keys)?, false).map(drop)
    }

    /// Adds a new newest key (new seals use it; older keys still open) once the file holding
    /// it is saved; if saving fails, nothing changes.
    ///
    /// # Errors
    /// [`GitSealError::KeyFile`].
    pub fn rotate(&mut self, now_ms: i64) -> Result<String, GitSealError> {
        let _lock = self.check_unchanged()?;
        let key = new_key(now_ms)?;
        let kid = key.kid.clone();
        self.save(self.keys.iter().chain(std::iter::once(&key)))?;
        self.keys.push(key);
        Ok(kid)
    }

    /// Drops a key that is not the newest (what it sealed no longer opens) once the file
    /// without it is saved; if saving fails, nothing changes.
    ///
    /// # Errors
    /// [`GitSealError::UnknownKey`] for a key not held or the newest one; [`GitSealError::KeyFile`].
    pub fn retire(&mut self, kid: &str) -> Result<(), GitSealError> {
        let newest = self.keys.last().map(|k| k.kid.as_str());
        if newest == Some(kid) || !self.keys.iter().any(|k| k.kid == kid) {
            return Err(GitSealError::UnknownKey(kid.chars().take(64).collect()));
        }
        let _lock = self.check_unchanged()?;
        self.save(self.keys.iter().filter(|k| k.kid != kid))?;
        self.keys.retain(|k| k.kid != kid);
        Ok(())
    }

    /// Before a change is saved: the file still holds the keys this handle read, under a lock
    /// (`PATH.lock`, held until the returned file is dropped) that every change takes. Another
    /// broker on the same file that rotated or retired a key meanwhile would otherwise have
    /// its key written over and lost.
    fn check_unchanged(&self) -> Result<std::fs::File, GitSealError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(std::path::PathBuf::from(name))
            .map_err(|e| key_file(&self.path, format_args!("its lock file: {e}")))?;
        lock.lock()
            .map_err(|e| key_file(&self.path, format_args!("its lock file: {e}")))?;
        let on_disk = Self::open(&self.path).map_err(|e| match e {
            e @ GitSealError::KeyFile { .. } => e,
            other => key_file(
                &self.path,
                format_args!("read again before the change: {other}"),
            ),
        })?;
        let kids = |keys: &[SealingKey]| keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
        if kids(&on_disk.keys) != kids(&self.keys) {
            return Err(GitSealError::ChangedByAnother {
                path: self.path.clone(),
            });
        }
        Ok(lock)
    }

    /// The public key set: `{"keys": [JWK...], "current": kid}` (newest key is `current`).
    pub fn public_keys(&self) -> Value {
        json!({
            "keys": self.keys.iter().map(|k| k.public.clone()).collect::<Vec<_>>(),
            "current": self.keys.last().map(|k| k.kid.clone()),
        })
    }

    /// Opens a sealed secret.
    ///
    /// # Errors
    /// [`GitSealError`]: malformed, unknown key, tampered, policy digest mismatch.
    pub fn unseal(&self, sealed: &str) -> Result<Unsealed, GitSealError> {
        let sealed = sealed.trim();
        if sealed.len() > MAX_SEALED_LEN {
            return Err(GitSealError::Format("larger than 4 MiB"));
        }
        // At most six pieces are split off (a sixth says there were too many): a file of
        // dots does not become a list of millions.
        let parts: Vec<&str> = sealed.splitn(6, '.').collect();
        let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
            return Err(GitSealError::Format("not five dot-separated parts"));
        };
        let b64 = |part: &str, what: &'static str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| GitSealError::Format(what))
        };
        let header = protected_header(protected)?;
        let text = |name: &'static str| {
            header
                .get(name)
                .and_then(Value::as_str)
                .ok_or(GitSealError::Format(name))
        };
        if text("alg")? != "ECDH-ES+A256KW" || text("enc")? != "A256GCM" {
            return Err(GitSealError::Format(
                "alg must be ECDH-ES+A256KW and enc A256GCM",
            ));
        }
        // A compressed plaintext would be stored and released compressed, and an extension
        // marked critical must be understood (RFC 7516, 4.1.13): neither is.
        if header.contains_key("zip") || header.contains_key("crit") {
            return Err(GitSealError::Format(
                "zip and crit are not supported in a sealed file's header",
            ));
        }
        let kid = text("kid")?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| GitSealError::UnknownKey(kid.chars().take(64).collect()))?;
        let epk = header
            .get("epk")
            .and_then(Value::as_object)
            .ok_or(GitSealError::Format("epk"))?;
        let coord = |name: &str| -> Result<Vec<u8>, GitSealError> {
            let v = epk
                .get(name)
                .and_then(Value::as_str)
                .ok_or(GitSealError::Format("epk coordinates"))?;
            let bytes = b64(v, "epk coordinates")?;
            if bytes.len() == 32 {
                Ok(bytes)
            } else {
                Err(GitSealError::Format("epk coordinates"))
            }
        };
        if epk.get("crv").and_then(Value::as_str) != Some("P-256")
            || epk.get("kty").and_then(Value::as_str) != Some("EC")
        {
            return Err(GitSealError::Format("epk must be an EC P-256 key"));
        }
        let mut point = vec![4u8];
        point.extend(coord("x")?);
        point.extend(coord("y")?);
        let kek = agreement::agree(
            &key.key,
            UnparsedPublicKey::new(&ECDH_P256, &point),
            GitSealError::Open,
            |z| Ok(concat_kdf_a256kw(z)),
        )?;
        let wrapped = b64(encrypted_key, "encrypted key encoding")?;
        let unwrapper = AesKek::new(&AES_256, kek.as_ref()).map_err(crypto("key unwrap"))?;
        let mut cek = Zeroizing::new([0u8; 32]);
        let unwrapped = unwrapper
            .unwrap(&wrapped, cek.as_mut())
            .map_err(|_| GitSealError::Open)?;
        if unwrapped.len() != 32 {
            return Err(GitSealError::Open);
        }
        let iv: [u8; 12] = b64(iv, "iv encoding")?
            .try_into()
            .map_err(|_| GitSealError::Format("iv must be 12 bytes"))?;
        // The tag is A256GCM's full 16 bytes (RFC 7518, 5.3): split elsewhere, the same
        // content would be many files, each with its own digest.
        let tag = b64(tag, "tag encoding")?;
        if tag.len() != 16 {
            return Err(GitSealError::Format("tag must be 16 bytes"));
        }
        let mut buf = Zeroizing::new(b64(ciphertext, "ciphertext encoding")?);
        buf.extend(tag);
        let gcm = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, cek.as_ref()).map_err(crypto("aes-gcm"))?,
        );
        let plain = gcm
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(protected.as_bytes()),
                buf.as_mut_slice(),
            )
            .map_err(|_| GitSealError::Open)?;
        let value = SecretValue::new(plain.to_vec());
        // Only now, authenticated: what the header binds.
        let resource = ResourcePath::parse(text(HEADER_RESOURCE)?)
            .map_err(|_| GitSealError::Format("tessera-resource is not REPO/TYPE/TAG"))?;
        let policy = text(HEADER_POLICY)?.to_owned();
        let digest = PolicyDigest::parse(text(HEADER_POLICY_DIGEST)?)
            .map_err(|_| GitSealError::Format("tessera-policy-digest"))?;
        if PolicyDigest::of(policy.as_bytes()) != digest {
            return Err(GitSealError::PolicyDigest);
        }
        Ok(Unsealed {
            kid: kid.to_owned(),
            resource,
            policy,
            policy_digest: digest,
            value,
            file_digest: crate::store::sha256_hex(sealed.as_bytes()),
        })
    }
}

/// An opened sealed secret.
pub struct Unsealed {
    /// The sealing key that opened it.
    pub kid: String,
    /// The resource it belongs to.
    pub resource: ResourcePath,
    /// The policy sealed with it.
    pub policy: String,
    /// The policy's digest.
    pub policy_digest: PolicyDigest,
    /// The secret.
    pub value: SecretValue,
    /// The hex SHA-256 of the sealed text as read (without the whitespace around it): what
    /// tells one sealed file from another, the same value sealed anew included.
    pub file_digest: String,
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed")
            .field("kid", &self.kid)
            .field("resource", &self.resource)
            .field("policy_digest", &self.policy_digest)
            .finish_non_exhaustive()
    }
}

/// The current sealing key of a public key set (`{"keys", "current"}`) or a single JWK.
///
/// # Errors
/// [`GitSealError::PublicKey`]: no usable P-256 key, or no key id.
pub fn current_public_key(keys: &Value) -> Result<(String, TeePublicKey), GitSealError> {
    let jwk = match (
        keys.get("keys"),
        keys.get("current").and_then(Value::as_str),
    ) {
        (Some(Value::Array(list)), Some(current)) => list
            .iter()
            .find(|k| k.get("kid").and_then(Value::as_str) == Some(current))
            .ok_or_else(|| GitSealError::PublicKey("the current key is not in the set".into()))?,
        (Some(_), _) => {
            return Err(GitSealError::PublicKey(
                "a key set needs `keys` and `current`".into(),
            ));
        }
        (None, _) => keys,
    };
    let kid = jwk
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| GitSealError::PublicKey("no kid".into()))?
        .to_owned();
    let mut bare = jwk.clone();
    if let Some(obj) = bare.as_object_mut() {
        obj.remove("kid");
        obj.remove("use");
    }
    let key = TeePublicKey::from_json(&bare).map_err(|e| GitSealError::PublicKey(e.to_string()))?;
    if !matches!(
        key.algorithm(),
        crate::jwk::KeyAlgorithm::EcdhEsA256Kw(crate::jwk::Curve::P256)
    ) {
        return Err(GitSealError::PublicKey(
            "a broker sealing key is EC P-256 (ECDH-ES+A256KW)".into(),
        ));
    }
    Ok((kid, key))
}

/// The resource a sealed file's protected header names, read without opening it and so
/// unauthenticated (only the broker, which opens it, can tell that it is the one sealed): for
/// a client to say that a file is at another path than it was sealed for before sending it.
/// None when the header cannot be read (the broker then says what is wrong).
#[must_use]
pub fn claimed_resource(sealed: &str) -> Option<String> {
    let sealed = sealed.trim();
    if sealed.len() > MAX_SEALED_LEN {
        return None;
    }
    protected_header(sealed.split('.').next()?)
        .ok()?
        .get(HEADER_RESOURCE)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A sealed file's protected header (its first part): base64url of a JSON object. Read so by
/// [`SealingKeys::unseal`] and, without the key, by [`claimed_resource`].
fn protected_header(protected: &str) -> Result<Map<String, Value>, GitSealError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(protected)
        .map_err(|_| GitSealError::Format("protected header encoding"))?;
    // Counted before it is parsed: a header of millions of tiny values (`[0,0,...]`) would
    // make a tree of tens of bytes each before anything is authenticated.
    if !tessera::compact::json_values_at_most(&bytes, MAX_HEADER_VALUES) {
        return Err(GitSealError::Format(
            "protected header holds too many values",
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|_| GitSealError::Format("protected header is not a JSON object"))
}

/// The most JSON values (and keys) a sealed file's protected header may hold: a header Tessera
/// writes has about a dozen; the policy text in it is one string.
const MAX_HEADER_VALUES: usize = 256;

/// For the fuzz target `sealed_file`: [`SealingKeys::unseal`] under a fixed key and
/// [`claimed_resource`] of the input, which must agree with what unsealing authenticated;
/// then the input sealed to that key (as the secret, its start as the policy text) must open
/// again as it was, under the resource its header claims (so the oracle runs on every input,
/// not only on the rare mutation that still opens).
#[doc(hidden)]
pub fn fuzz_sealed(data: &[u8]) {
    let Some(keys) = fuzz_keys() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(data) {
        let claimed = claimed_resource(text);
        if let Ok(opened) = keys.unseal(text) {
            assert_eq!(
                claimed.as_deref(),
                Some(opened.resource.to_string().as_str())
            );
        }
    }
    let policy = String::from_utf8_lossy(data.get(..data.len().min(256)).unwrap_or_default());
    let Ok(resource) = ResourcePath::parse("fuzz/key/one") else {
        return;
    };
    if let Ok(sealed) = seal(&keys.public_keys(), &resource, &policy, data) {
        assert_eq!(claimed_resource(&sealed).as_deref(), Some("fuzz/key/one"));
        let opened = keys.unseal(&sealed);
        assert!(
            opened.as_ref().is_ok_and(|o| o.value.expose() == data
                && o.policy == policy
                && o.resource == resource),
            "a sealed input did not open as it was"
        );
        // The sealed file with one byte changed (where the input's first bytes say): it is
        // refused, or (a change nothing reads, such as surrounding space) opens as it was,
        // never as something else; what its header claims is what it authenticated.
        let mut bytes = sealed.into_bytes();
        let at = data
            .iter()
            .take(4)
            .fold(0usize, |a, &b| a * 251 + usize::from(b));
        if let Some(len) = std::num::NonZeroUsize::new(bytes.len()) {
            let i = at % len;
            if let Some(b) = bytes.get_mut(i) {
                *b ^= data.get(4).copied().unwrap_or(1) | 1;
            }
        }
        if let Ok(text) = String::from_utf8(bytes)
            && let Ok(o) = keys.unseal(&text)
        {
            assert!(
                o.value.expose() == data && o.policy == policy && o.resource == resource,
                "a changed sealed file opened as something else"
            );
            assert_eq!(claimed_resource(&text).as_deref(), Some("fuzz/key/one"));
        }
    }
}

/// A fixed sealing key (scalar 1…1, kid `fuzz`), for [`fuzz_sealed`] and its seed (a unit
/// test checks that it loads and opens what is sealed to it).
fn fuzz_keys() -> Option<&'static SealingKeys> {
    static KEYS: std::sync::OnceLock<Option<SealingKeys>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let doc = format!(
            r#"{{"version":1,"keys":[{{"kid":"fuzz","created_ms":0,"key":"{}"}}]}}"#,
            STANDARD.encode([1u8; 32])
        );
        SealingKeys::from_text(Path::new("fuzz"), doc.as_bytes()).ok()
    })
    .as_ref()
}

/// Seals `secret` for `resource` under `policy` to the broker's current sealing key (offline; the
/// result is one line of text, safe to commit).
///
/// # Errors
/// [`GitSealError`]: an unusable public key, a secret over 1 MiB, crypto failures.
pub fn seal(
    broker_keys: &Value,
    resource: &ResourcePath,
    policy: &str,
    secret: &[u8],
) -> Result<String, GitSealError> {
    let (kid, key) = current_public_key(broker_keys)?;
    let mut members = Map::new();
    members.insert("kid".into(), Value::String(kid));
    members.insert(HEADER_RESOURCE.into(), Value::String(resource.to_string()));
    members.insert(HEADER_POLICY.into(), Value::String(policy.to_owned()));
    members.insert(
        HEADER_POLICY_DIGEST.into(),
        Value::String(PolicyDigest::of(policy.as_bytes()).to_string()),
    );
    let jwe = jwe::encrypt_with_members(&key, &members, secret)
        .map_err(|_| GitSealError::Crypto("encryption"))?;
    Ok(format!(
        "{}.{}.{}.{}.{}",
        jwe.protected, jwe.encrypted_key, jwe.iv, jwe.ciphertext, jwe.tag
    ))
}

/// The path (under the resource's repository) where the broker keeps the public JWK that verifies
/// its Confidential Containers sealed secrets: the tag is followed by `-` and the first 24 hex
/// digits of the policy digest it is kept under (one copy per policy).
pub const COCO_SIGNING_JWK_TYPE_TAG: (&str, &str) = ("sealed-secret", "signing-jwk");

/// The key that signs Confidential Containers sealed secrets (ES256): `sealed.` + a JWS of a
/// `vault` pointer to `kbs:///REPO/TYPE/TAG`, which an unchanged confidential-data-hub resolves by
/// fetching the named resource from the broker.
pub struct CocoSigner {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
}

impl std::fmt::Debug for CocoSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CocoSigner(..)")
    }
}

impl CocoSigner {
    /// The key in `path` (PKCS#8 DER), created (file mode 0600, written atomically) if absent.
    /// An existing file must be a regular file that group and others cannot write and others
    /// cannot read (its group may: Kubernetes mounts Secret files 0440), reached through a
    /// symbolic link only when `symlinks` allows it.
    ///
    /// # Errors
    /// [`GitSealError::Refused`]: writable by group or others, a refused symbolic link, not a
    /// regular file. [`GitSealError::KeyFile`]: unreadable, not a key, or a new file that cannot
    /// be written.
    pub fn open_or_create(path: &Path, symlinks: Symlinks) -> Result<Self, GitSealError> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let der = keyfile::read_or_create(
            path,
            symlinks,
            0o027,
            "writable by group or others, or readable by others (chmod g-w,o-rwx)",
            MAX_KEY_FILE_LEN,
            || {
                let doc = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &aws_lc_rs::rand::SystemRandom::new(),
                )
                .map_err(crypto("key generation"))?;
                Ok::<_, GitSealError>(Zeroizing::new(doc.as_ref().to_vec()))
            },
        )?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|_| key_file(path, "not an ES256 PKCS#8 key"))?;
        Ok(Self { pair })
    }

    /// The public JWK (what the broker serves as the `signing-jwk` resource).
    pub fn public_jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair as _;
        let point = self.pair.public_key().as_ref();
        let coord = |range: std::ops::Range<usize>| {
            point
                .get(range)
                .map(|c| URL_SAFE_NO_PAD.encode(c))
                .unwrap_or_default()
        };
        json!({ "kty": "EC", "crv": "P-256", "alg": "ES256", "x": coord(1..33), "y": coord(33..65) })
    }

    /// `sealed.<JWS>` of a `vault` pointer to `kbs:///RESOURCE`, signed with `kid` = the KBS URI
    /// of the public JWK resource.
    ///
    /// # Errors
    /// [`GitSealError::Crypto`] if signing fails.
    pub fn sealed_pointer(
        &self,
        resource: &ResourcePath,
        kid: &str,
    ) -> Result<String, GitSealError> {
        let header = json!({ "alg": "ES256", "kid": kid });
        let payload = json!({
            "version": "0.1.0",
            "type": "vault",
            "name": format!("kbs:///{resource}"),
            "provider": "kbs",
            "provider_settings": {},
            "annotations": {},
        });
        let mut signing_input = URL_SAFE_NO_PAD.encode(header.to_string());
        signing_input.push('.');
        signing_input.push_str(&URL_SAFE_NO_PAD.encode(payload.to_string()));
        let signature = self
            .pair
            .sign(
                &aws_lc_rs::rand::SystemRandom::new(),
                signing_input.as_bytes(),
            )
            .map_err(crypto("signing"))?;
        Ok(format!(
            "sealed.{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const POLICY: &str = "version = 1\nid = \"p\"\n";

    fn keys(dir: &Path) -> SealingKeys {
        SealingKeys::open_or_create(&dir.join("sealing.keys"), Symlinks::Refuse, 1000).unwrap()
    }

    fn path(s: &str) -> ResourcePath {
        ResourcePath::parse(s).unwrap()
    }

    #[test]
    fn seal_then_open() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let sealed = seal(&k.public_keys(), &path("a/key/one"), POLICY, b"s3cret").unwrap();
        assert!(!sealed.contains('\n'));
        let u = k.unseal(&sealed).unwrap();
        assert_eq!(u.resource, path("a/key/one"));
        assert_eq!(u.policy, POLICY);
        assert_eq!(u.value.expose(), b"s3cret");
        // Reloaded from the file, the same key opens it.
        let again = SealingKeys::open(&dir.path().join("sealing.keys")).unwrap();
        assert_eq!(again.unseal(&sealed).unwrap().value.expose(), b"s3cret");
    }

    /// The resource a header names is read without the key; a moved header is read as it says
    /// (unauthenticated: the broker refuses to open it), and unreadable text gives none.
    #[test]
    fn the_claimed_resource_is_the_headers() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let sealed = seal(&k.public_keys(), &path("a/key/one"), POLICY, b"s3cret").unwrap();
        assert_eq!(claimed_resource(&sealed).as_deref(), Some("a/key/one"));
        assert_eq!(
            claimed_resource(&format!("  {sealed}\n")).as_deref(),
            Some("a/key/one")
        );
        let moved = edit_header(&sealed, |h| {
            h.insert(HEADER_RESOURCE.into(), Value::String("b/key/one".into()));
        });
        assert_eq!(claimed_resource(&moved).as_deref(), Some("b/key/one"));
        assert!(k.unseal(&moved).is_err());
        for bad in ["", "not base64!.x", "e30", "W10.a.b.c.d"] {
            assert_eq!(claimed_resource(bad), None, "{bad}");
        }
        // The fuzz harness's seed: a file sealed to its fixed key opens, and its oracle holds.
        let fixed = fuzz_keys().unwrap();
        let seed = seal(&fixed.public_keys(), &path("a/key/one"), POLICY, b"x").unwrap();
        assert!(fixed.unseal(&seed).is_ok());
        fuzz_sealed(seed.as_bytes());
    }

    fn edit_header(sealed: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut parts: Vec<String> = sealed.split('.').map(str::to_owned).collect();
        let mut header: Map<String, Value> =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[0]).unwrap()).unwrap();
        edit(&mut header);
        parts[0] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
        parts.join(".")
    }

    #[test]
    fn a_moved_or_repolicied_secret_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let sealed = seal(&k.public_keys(), &path("a/key/one"), POLICY, b"x").unwrap();
        let moved = edit_header(&sealed, |h| {
            h.insert(HEADER_RESOURCE.into(), "b/key/one".into());
        });
        assert!(matches!(k.unseal(&moved), Err(GitSealError::Open)));
        let other_policy = "version = 1\nid = \"open\"\n";
        let repolicied = edit_header(&sealed, |h| {
            h.insert(HEADER_POLICY.into(), other_policy.into());
            h.insert(
                HEADER_POLICY_DIGEST.into(),
                PolicyDigest::of(other_policy.as_bytes()).to_string().into(),
            );
        });
        assert!(matches!(k.unseal(&repolicied), Err(GitSealError::Open)));
        let mut parts: Vec<&str> = sealed.split('.').collect();
        let flipped = {
            let mut ct = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
            ct[0] ^= 1;
            URL_SAFE_NO_PAD.encode(ct)
        };
        parts[3] = &flipped;
        assert!(matches!(
            k.unseal(&parts.join(".")),
            Err(GitSealError::Open)
        ));
    }

    #[test]
    fn a_digest_that_does_not_match_its_policy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let (kid, key) = current_public_key(&k.public_keys()).unwrap();
        let mut m = Map::new();
        m.insert("kid".into(), kid.into());
        m.insert(HEADER_RESOURCE.into(), "a/key/one".into());
        m.insert(HEADER_POLICY.into(), POLICY.into());
        m.insert(
            HEADER_POLICY_DIGEST.into(),
            PolicyDigest::of(b"something else").to_string().into(),
        );
        let jwe = jwe::encrypt_with_members(&key, &m, b"x").unwrap();
        let sealed = format!(
            "{}.{}.{}.{}.{}",
            jwe.protected, jwe.encrypted_key, jwe.iv, jwe.ciphertext, jwe.tag
        );
        assert!(matches!(k.unseal(&sealed), Err(GitSealError::PolicyDigest)));
    }

    /// Each check of a seal's form refuses on its own, with its own reason: the size cap, the
    /// algorithms, the ephemeral key's type, curve and coordinates, the IV's length, and, once
    /// it opens, the resource path and the policy digest's form.
    #[test]
    fn each_form_check_refuses_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let sealed = seal(&k.public_keys(), &path("a/key/one"), POLICY, b"x").unwrap();
        let parts: Vec<String> = sealed.split('.').map(str::to_owned).collect();
        let header: Map<String, Value> =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[0]).unwrap()).unwrap();
        let with_header = |edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut h = header.clone();
            edit(&mut h);
            let mut p = parts.clone();
            p[0] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).unwrap());
            p.join(".")
        };
        let refused = |text: &str, why: &str| match k.unseal(text) {
            Err(GitSealError::Format(m)) => assert_eq!(m, why),
            other => panic!("{why}: {other:?}"),
        };
        refused(&"a".repeat(MAX_SEALED_LEN + 1), "larger than 4 MiB");
        let alg_and_enc = "alg must be ECDH-ES+A256KW and enc A256GCM";
        refused(
            &with_header(&|h| drop(h.insert("alg".into(), "dir".into()))),
            alg_and_enc,
        );
        refused(
            &with_header(&|h| drop(h.insert("enc".into(), "A128GCM".into()))),
            alg_and_enc,
        );
        refused(&with_header(&|h| drop(h.remove("epk"))), "epk");
        let on_curve = "epk must be an EC P-256 key";
        refused(
            &with_header(&|h| h["epk"]["crv"] = "P-384".into()),
            on_curve,
        );
        refused(&with_header(&|h| h["epk"]["kty"] = "OKP".into()), on_curve);
        let short = URL_SAFE_NO_PAD.encode([1u8; 31]);
        refused(
            &with_header(&|h| h["epk"]["x"] = short.clone().into()),
            "epk coordinates",
        );
        let mut p = parts.clone();
        p[2] = URL_SAFE_NO_PAD.encode([0u8; 16]);
        refused(&p.join("."), "iv must be 12 bytes");
        // The same bytes split elsewhere between ciphertext and tag: one file, not many.
        let (ct, tag) = (
            URL_SAFE_NO_PAD.decode(&parts[3]).unwrap(),
            URL_SAFE_NO_PAD.decode(&parts[4]).unwrap(),
        );
        for cut in [8, 0] {
            let mut joined = ct.clone();
            joined.extend_from_slice(&tag[..cut]);
            let mut p = parts.clone();
            p[3] = URL_SAFE_NO_PAD.encode(&joined);
            p[4] = URL_SAFE_NO_PAD.encode(&tag[cut..]);
            if cut == 0 {
                // Nothing moved: the file itself, which opens.
                assert!(k.unseal(&p.join(".")).is_ok());
            } else {
                refused(&p.join("."), "tag must be 16 bytes");
            }
        }
        let zip_crit = "zip and crit are not supported in a sealed file's header";
        refused(
            &with_header(&|h| drop(h.insert("zip".into(), "DEF".into()))),
            zip_crit,
        );
        refused(
            &with_header(&|h| drop(h.insert("crit".into(), json!(["exp"])))),
            zip_crit,
        );
        // A header of very many values is refused before it is parsed; too many parts are
        // refused without splitting them all.
        refused(
            &with_header(&|h| drop(h.insert("x".into(), json!(vec![0; 300])))),
            "protected header holds too many values",
        );
        refused(&".".repeat(1 << 20), "not five dot-separated parts");
        // A seal made (by the broker's public key) for a path that is none: opens, then refused.
        let (kid, key) = current_public_key(&k.public_keys()).unwrap();
        let sealed_with = |resource: &str, digest: &str| {
            let mut m = Map::new();
            m.insert("kid".into(), kid.clone().into());
            m.insert(HEADER_RESOURCE.into(), resource.into());
            m.insert(HEADER_POLICY.into(), POLICY.into());
            m.insert(HEADER_POLICY_DIGEST.into(), digest.into());
            let jwe = jwe::encrypt_with_members(&key, &m, b"x").unwrap();
            format!(
                "{}.{}.{}.{}.{}",
                jwe.protected, jwe.encrypted_key, jwe.iv, jwe.ciphertext, jwe.tag
            )
        };
        let digest = PolicyDigest::of(POLICY.as_bytes()).to_string();
        refused(
            &sealed_with("a/../one", &digest),
            "tessera-resource is not REPO/TYPE/TAG",
        );
        refused(
            &sealed_with("a/key/one", "sha384:zz"),
            "tessera-policy-digest",
        );
        assert!(k.unseal(&sealed_with("a/key/one", &digest)).is_ok());
    }

    #[test]
    fn rotation_keeps_old_seals_until_retired() {
        let dir = tempfile::tempdir().unwrap();
        let mut k = keys(dir.path());
        let old = seal(&k.public_keys(), &path("a/key/one"), POLICY, b"old").unwrap();
        let first = k.public_keys()["current"].as_str().unwrap().to_owned();
        let second = k.rotate(2000).unwrap();
        assert_eq!(k.public_keys()["current"], second.as_str());
        let new = seal(&k.public_keys(), &path("a/key/one"), POLICY, b"new").unwrap();
        assert!(new.starts_with(
            &URL_SAFE_NO_PAD.encode(r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk""#)[..40]
        ));
        assert_eq!(k.unseal(&old).unwrap().value.expose(), b"old");
        assert_eq!(k.unseal(&new).unwrap().kid, second);
        assert!(
            k.retire(&second).is_err(),
            "the newest key cannot be retired"
        );
        k.retire(&first).unwrap();
        assert!(matches!(k.unseal(&old), Err(GitSealError::UnknownKey(_))));
        let reloaded = SealingKeys::open(&dir.path().join("sealing.keys")).unwrap();
        assert!(matches!(
            reloaded.unseal(&old),
            Err(GitSealError::UnknownKey(_))
        ));
        assert_eq!(reloaded.unseal(&new).unwrap().value.expose(), b"new");
    }

    /// Makes every later write of the key file in `dir` fail, in a way that stops root too:
    /// the file's place taken by a directory (a rename cannot replace it).
    fn block_the_key_file(dir: &Path) {
        let file = dir.join("sealing.keys");
        fs::remove_file(&file).unwrap();
        fs::create_dir(&file).unwrap();
    }

    #[test]
    fn a_rotation_that_cannot_be_saved_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut k = keys(dir.path());
        let before = k.public_keys();
        let old = seal(&before, &path("a/key/one"), POLICY, b"old").unwrap();
        block_the_key_file(dir.path());
        assert!(matches!(k.rotate(2000), Err(GitSealError::KeyFile { .. })));
        assert_eq!(k.public_keys(), before, "the unsaved key is not advertised");
        // New seals still go to the saved key, which still opens.
        let new = seal(&k.public_keys(), &path("a/key/one"), POLICY, b"new").unwrap();
        assert_eq!(
            k.unseal(&new).unwrap().kid,
            before["current"].as_str().unwrap()
        );
        assert_eq!(k.unseal(&old).unwrap().value.expose(), b"old");
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n == "sealing.keys" || n == "sealing.keys.lock"),
            "{names:?}"
        );
    }

    /// Two handles on one file (two brokers on one data directory): a change by one that the
    /// other has not read makes the other's rotation and retirement fail, rather than write
    /// its own set over the file and lose the first one's key.
    #[test]
    fn a_change_by_another_handle_is_not_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = keys(dir.path());
        let first = a.public_keys()["current"].as_str().unwrap().to_owned();
        a.rotate(1500).unwrap();
        let mut b = SealingKeys::open(&dir.path().join("sealing.keys")).unwrap();
        let second = a.rotate(2000).unwrap();
        let sealed = seal(&a.public_keys(), &path("a/key/one"), POLICY, b"v").unwrap();
        for result in [b.rotate(3000).map(drop), b.retire(&first)] {
            assert!(
                matches!(result, Err(GitSealError::ChangedByAnother { .. })),
                "{result:?}"
            );
        }
        let on_disk = SealingKeys::open(&dir.path().join("sealing.keys")).unwrap();
        assert_eq!(on_disk.public_keys()["current"], second.as_str());
        assert_eq!(on_disk.unseal(&sealed).unwrap().value.expose(), b"v");
        // Read again, it rotates.
        let mut b = SealingKeys::open(&dir.path().join("sealing.keys")).unwrap();
        b.rotate(3000).unwrap();
        assert_eq!(
            SealingKeys::open(&dir.path().join("sealing.keys"))
                .unwrap()
                .public_keys()["keys"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn a_rotation_into_a_directory_that_is_gone_or_read_only_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("keys");
        fs::create_dir(&keys_dir).unwrap();
        let mut k = keys(&keys_dir);
        let before = k.public_keys();
        // The directory made read-only (0500): stops a writer without privileges; root is
        // not stopped by permission bits, so for it the case is checked with the next one.
        fs::set_permissions(&keys_dir, fs::Permissions::from_mode(0o500)).unwrap();
        let privileged = fs::File::create(keys_dir.join("probe")).is_ok();
        if !privileged {
            assert!(matches!(k.rotate(2000), Err(GitSealError::KeyFile { .. })));
            assert_eq!(k.public_keys(), before);
        }
        fs::set_permissions(&keys_dir, fs::Permissions::from_mode(0o700)).unwrap();
        // The directory replaced by a regular file: no temporary file can be made in it.
        fs::remove_dir_all(&keys_dir).unwrap();
        fs::write(&keys_dir, b"not a directory").unwrap();
        assert!(matches!(k.rotate(3000), Err(GitSealError::KeyFile { .. })));
        assert_eq!(k.public_keys(), before);
    }

    #[test]
    fn a_retirement_that_cannot_be_saved_keeps_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut k = keys(dir.path());
        let first = k.public_keys()["current"].as_str().unwrap().to_owned();
        let old = seal(&k.public_keys(), &path("a/key/one"), POLICY, b"old").unwrap();
        k.rotate(2000).unwrap();
        let before = k.public_keys();
        block_the_key_file(dir.path());
        assert!(matches!(
            k.retire(&first),
            Err(GitSealError::KeyFile { .. })
        ));
        assert_eq!(k.public_keys(), before);
        assert_eq!(k.unseal(&old).unwrap().value.expose(), b"old");
    }

    #[test]
    fn a_stale_temporary_file_does_not_block_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut k = keys(dir.path());
        // What a crash in the middle of an earlier write leaves (the fixed name older versions
        // used, and a name of the current form).
        for stale in ["sealing.keys.tmp", "sealing.keys.tmp-0123456789abcdef"] {
            fs::write(dir.path().join(stale), b"{").unwrap();
        }
        let kid = k.rotate(2000).unwrap();
        let reloaded = SealingKeys::open(&dir.path().join("sealing.keys")).unwrap();
        assert_eq!(reloaded.public_keys()["current"], kid.as_str());
        assert_eq!(reloaded.public_keys(), k.public_keys());
        let kid = k.rotate(3000).unwrap();
        assert_eq!(k.public_keys()["current"], kid.as_str());
    }

    #[test]
    fn malformed_input_is_refused_not_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        for bad in ["", "a.b.c", "....", "x.y.z.w.v", &"A".repeat(100)] {
            assert!(k.unseal(bad).is_err());
        }
        assert!(current_public_key(&json!({"kty": "EC"})).is_err());
    }

    /// A damaged keys file is refused without its contents in the error: serde_json's message
    /// would quote the value it refused, here a private key.
    /// One kid, two keys: refused (files would open under the first while the last is
    /// advertised as current).
    #[test]
    fn a_keys_file_naming_one_kid_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        drop(k);
        let file = dir.path().join("sealing.keys");
        let text = std::fs::read_to_string(&file).unwrap();
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        let first = doc["keys"][0].clone();
        doc["keys"].as_array_mut().unwrap().push(first);
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        let e = SealingKeys::open(&file).err().unwrap().to_string();
        assert!(e.contains("two keys with one kid"), "{e}");
    }

    #[test]
    fn a_damaged_keys_file_is_refused_without_quoting_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sealing.keys");
        let secret = "c2VjcmV0LXNjYWxhci1ub3QtdG8tYmUtc2hvd24tYW55d2hlcmU=";
        for text in [
            format!(r#"{{"version":1,"keys":["{secret}"]}}"#),
            format!(r#"{{"version":1,"keys":[{{"kid":"k","created_ms":"{secret}"}}]}}"#),
        ] {
            std::fs::write(&file, text).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            let e = SealingKeys::open(&file).err().unwrap().to_string();
            assert!(!e.contains(secret), "{e}");
            assert!(
                e.contains("not a sealing-keys JSON document (line 1 column"),
                "{e}"
            );
        }
    }

    #[test]
    fn coco_sealed_pointer_verifies_with_the_served_jwk() {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
        let dir = tempfile::tempdir().unwrap();
        let signer =
            CocoSigner::open_or_create(&dir.path().join("coco.key"), Symlinks::Refuse).unwrap();
        let sealed = signer
            .sealed_pointer(&path("a/key/one"), "kbs:///a/sealed-secret/signing-jwk")
            .unwrap();
        let rest = sealed.strip_prefix("sealed.").unwrap();
        let parts: Vec<&str> = rest.split('.').collect();
        assert_eq!(parts.len(), 3);
        let payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["type"], "vault");
        assert_eq!(payload["name"], "kbs:///a/key/one");
        assert_eq!(payload["provider"], "kbs");
        let jwk = signer.public_jwk();
        let mut point = vec![4u8];
        point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(input.as_bytes(), &sig)
            .unwrap();
        // The same key after a reload.
        let again =
            CocoSigner::open_or_create(&dir.path().join("coco.key"), Symlinks::Refuse).unwrap();
        assert_eq!(again.public_jwk(), jwk);
    }

    #[test]
    fn coco_key_files_others_could_write_or_plant_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("coco.key");
        let jwk = CocoSigner::open_or_create(&file, Symlinks::Refuse)
            .unwrap()
            .public_jwk();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["coco.key"], "no temporary file is left: {names:?}");
        let refused = |path: &Path, symlinks, why: &str| {
            let err = CocoSigner::open_or_create(path, symlinks).unwrap_err();
            assert!(
                matches!(&err, GitSealError::Refused { problem, .. } if problem.contains(why)),
                "{err}"
            );
        };
        // Group-readable (how Kubernetes mounts a Secret with an fsGroup): accepted.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o440)).unwrap();
        assert_eq!(
            CocoSigner::open_or_create(&file, Symlinks::Refuse)
                .unwrap()
                .public_jwk(),
            jwk
        );
        for mode in [0o620, 0o602, 0o666] {
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
            refused(&file, Symlinks::Refuse, "writable by group or others");
            refused(&file, Symlinks::Follow, "writable by group or others");
        }
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        // A symbolic link: refused where the broker keeps its own files, followed (and its
        // target checked) for a file the configuration names.
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        refused(&link, Symlinks::Refuse, "symbolic link");
        assert_eq!(
            CocoSigner::open_or_create(&link, Symlinks::Follow)
                .unwrap()
                .public_jwk(),
            jwk
        );
        fs::set_permissions(&file, fs::Permissions::from_mode(0o622)).unwrap();
        refused(&link, Symlinks::Follow, "writable by group or others");
        // A link to nowhere is not replaced by a new key.
        let dangling = dir.path().join("dangling.key");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        refused(&dangling, Symlinks::Refuse, "symbolic link");
        assert!(!dir.path().join("nowhere").exists());
        // Not a regular file.
        refused(dir.path(), Symlinks::Follow, "not a regular file");
    }

    #[test]
    fn sealing_keys_others_can_read_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sealing.keys");
        keys(dir.path());
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for mode in [0o640, 0o604, 0o610] {
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
            let err = SealingKeys::open_or_create(&file, Symlinks::Follow, 1).unwrap_err();
            assert!(
                matches!(&err, GitSealError::Refused { problem, .. } if problem.contains("readable by group or others")),
                "{err}"
            );
        }
    }

    /// Sealing keys named through a link (a mounted file) are rotated in the file the link
    /// names: the link stays, and the file holds the new key.
    #[test]
    fn a_rotation_through_a_link_writes_the_linked_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = keys(dir.path());
        let link = dir.path().join("linked.keys");
        std::os::unix::fs::symlink(dir.path().join("sealing.keys"), &link).unwrap();
        let mut through = SealingKeys::open_or_create(&link, Symlinks::Follow, 2000).unwrap();
        assert_eq!(through.keys.len(), real.keys.len());
        let kid = through.rotate(3000).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let reread = SealingKeys::open(&dir.path().join("sealing.keys")).unwrap();
        assert!(reread.keys.iter().any(|k| k.kid == kid), "{kid}");
        assert!(!dir.path().join("linked.keys.lock").exists());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,300}") {
            let dir = tempfile::tempdir().unwrap();
            let k = keys(dir.path());
            let _ = k.unseal(&s);
            let _ = claimed_resource(&s);
            fuzz_sealed(s.as_bytes());
        }
    }
}
