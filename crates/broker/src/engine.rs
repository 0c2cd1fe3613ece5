//! The release protocol and the admin operations: challenges, attestation (binding, init data,
//! verification, token), the policy-gated release of sealed secrets, and one audit entry for each
//! verdict, release, denial and admin change.
//!
//! What a token vouches for comes only from [`tessera::Verifier::verify`] and
//! [`tessera::appraise`]: the broker never builds an appraisal itself. A secret is released only
//! when the evidence of the session (or of the session a bearer token names) passes the policy
//! sealed with that secret version, at release time, and then only inside a JWE for the TEE key
//! that the evidence bound.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use tessera::{
    EndorsementRequest, Endorsements, Evidence, Policy, UnixTime, VerifiedEvidence, Verifier,
};
use tessera_policy::ear::{EarClaims, Nonce, SigningKey, TokenError, issue_jwt, verify_jwt};

use crate::audit::{AuditAction, AuditEvent, AuditVerdict};
use crate::binding::{self, BindingError, HashAlgorithm, InitDataField};
use crate::gitseal::{COCO_SIGNING_JWK_TYPE_TAG, CocoSigner, GitSealError, SealingKeys};
use crate::jwe;
use crate::jwk::TeePublicKey;
use crate::protocol::{
    AttestRequest, AuthRequest, MAX_SESSION_EVIDENCE, PublicError, PutSecret, RequestError,
    TeeName, decode_put, delete_version, pinned_version,
};
use crate::resource::{PolicyDigest, ResourcePath, check_repo};
use crate::seal::{KeyringFile, SealError, SecretValue};
use crate::store::{
    self, AttestedSession, CHALLENGE_TTL_MS, Challenge, ChangeBy, ReleaseBasis, RepoPolicy,
    SessionId, Store, StoreError,
};

/// Largest number of attested sessions kept in memory (the store keeps them all): with their
/// verified evidence about 5 KB each for SEV-SNP, so at most about 80 MB. The oldest leave
/// first; a session is mostly used right after it was attested, and one that left is rebuilt
/// from the store when it is used again (its evidence verified again).
const MAX_CACHED_SESSIONS: usize = 16_384;

/// Largest number of parsed policies kept in memory.
const MAX_CACHED_POLICIES: usize = 4_096;

/// Most policy text (bytes) the parsed policies kept in memory were made from: a policy may be
/// 256 KiB of text, and parses into about as much or less, so this bounds the cache's memory
/// to tens of MB whatever the admins put.
const MAX_CACHED_POLICY_TEXT: usize = 32 * 1024 * 1024;

/// Parsed policies by digest, and how much text they were made from.
#[derive(Default)]
struct PolicyCache {
    parsed: HashMap<String, Arc<Policy>>,
    text_bytes: usize,
}

impl PolicyCache {
    /// Keeps `policy`, parsed from `text_len` bytes; emptied first when it would hold more
    /// than [`MAX_CACHED_POLICIES`] policies or [`MAX_CACHED_POLICY_TEXT`] bytes of text.
    fn insert(&mut self, digest: &str, policy: Arc<Policy>, text_len: usize) {
        if self.parsed.contains_key(digest) {
            return;
        }
        if self.parsed.len() >= MAX_CACHED_POLICIES
            || self.text_bytes.saturating_add(text_len) > MAX_CACHED_POLICY_TEXT
        {
            *self = Self::default();
        }
        self.parsed.insert(digest.to_owned(), policy);
        self.text_bytes = self.text_bytes.saturating_add(text_len);
    }
}
/// How far ahead of this broker's clock a challenge's issue time may be (another replica's
/// clock may run ahead): a session id from further in the future was not issued by a broker.
const MAX_CLOCK_SKEW_MS: i64 = 60_000;

/// Endorsement lookups ([`EndorsementSource`]) running at once. Evidence that needs one costs
/// its sender only a challenge, and each lookup may hold a blocking thread for a fetch's whole
/// timeout; past this many, evidence that needs a lookup is refused as lacking endorsements
/// (401, and a warning in the log) until one finishes, instead of queueing without bound.
pub const MAX_ENDORSEMENT_LOOKUPS: usize = 8;

/// By default, how often the endorsements evidence is verified with are checked against the
/// [`EndorsementSource`] for newer ones (see [`Broker::with_endorsement_recheck`]).
pub const ENDORSEMENT_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// How many endorsement requests [`Broker::with_endorsement_recheck`] keeps the time of (one
/// per product and signer, or per FMSPC: a few); past it the oldest is forgotten.
const MAX_RECHECKED: usize = 256;

/// How long an attestation verified without a current CRL waits for its recheck (see
/// [`Broker::with_endorsement_recheck`]) before it is answered as verified.
const RECHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How many rechecks run at once (besides the [`MAX_ENDORSEMENT_LOOKUPS`] for what is missing).
const MAX_RECHECK_LOOKUPS: usize = 2;

/// A duration in whole milliseconds, saturating.
fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Why an `/attest` for an already answered challenge is refused.
const USED: &str = "the challenge was already used";

pub use crate::protocol::MAX_GENERATED_LEN;

/// Largest page of audit entries an admin request returns.
const MAX_AUDIT_PAGE: u32 = 1000;

/// Most versions in one page of the admin listing (and its default).
pub const MAX_LIST_PAGE: u32 = 1000;

/// Most expired rows of each table one store call of [`Broker::purge_expired`] deletes.
pub const PURGE_CHUNK: u32 = 500;

/// Most store calls one [`Broker::purge_expired`] makes.
pub const PURGE_MAX_CHUNKS: u32 = 200;

/// The policy a token's EAR appraisal is made against: verification alone. What a resource
/// demands is appraised at release time against the policy sealed with it.
const TOKEN_POLICY: &str = r#"
version = 1
id = "tessera-broker-verification"

[snp]
measurement = "any"
debug = "any"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true

[tdx]
mr_td = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
debug = "any"
vmids = [0, 1, 2, 3]

[tdx.tcb]
accepted_statuses = "any"

[sgx]
mr_enclave = "any"
mr_signer = "any"
debug = "any"
config_id = "any"

[sgx.tcb]
accepted_statuses = "any"
"#;

/// Who makes an admin request: a name for the audit log and the repositories it may manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    repos: Option<Vec<String>>,
}

impl Actor {
    /// An actor named `name`, limited to `repos` (`None`: every repository and the global
    /// operations).
    pub fn new(name: String, repos: Option<Vec<String>>) -> Self {
        Self { name, repos }
    }

    /// The name written to the audit log.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the actor may manage `repo`.
    pub fn may_use(&self, repo: &str) -> bool {
        self.repos
            .as_ref()
            .is_none_or(|repos| repos.iter().any(|r| r == repo))
    }

    /// The repositories the actor is limited to (`None`: every one).
    pub fn repos(&self) -> Option<&[String]> {
        self.repos.as_deref()
    }

    /// Whether the actor may use the operations that span repositories (KEK rotation).
    pub fn is_global(&self) -> bool {
        self.repos.is_none()
    }
}

/// How a resource request is authenticated. `Debug` names the kind, never the credential.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// The `kbs-session-id` cookie of an attested session.
    Session(&'a str),
    /// An attestation token issued by this broker (`Authorization: Bearer`).
    Bearer(&'a str),
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Session(_) => "Session(..)",
            Self::Bearer(_) => "Bearer(..)",
        })
    }
}

/// The answer to `/auth`. `Debug` leaves out the session id (it is the cookie).
#[derive(Clone)]
pub struct ChallengeAnswer {
    /// The session id for the `kbs-session-id` cookie.
    pub session_id: String,
    /// The JSON body: `{"nonce", "extra-params"}`.
    pub response: Value,
    /// The cookie's lifetime: the longer of the challenge's and the attested session's (the
    /// cookie names both in turn).
    pub max_age_secs: u64,
}

impl std::fmt::Debug for ChallengeAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeAnswer")
            .field("response", &self.response)
            .field("max_age_secs", &self.max_age_secs)
            .finish_non_exhaustive()
    }
}

/// The answer to a successful `/attest`. `Debug` leaves out the token.
#[derive(Clone)]
pub struct Attested {
    /// The EAR token (JWT).
    pub token: String,
    /// The TEE that attested.
    pub tee: TeeName,
}

impl std::fmt::Debug for Attested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attested")
            .field("tee", &self.tee)
            .finish_non_exhaustive()
    }
}

/// Why a request failed. `Display` is the full reason, for the log and the audit entry; the
/// client only ever sees [`BrokerError::public`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The body is not a request of this endpoint.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// No usable challenge or attested session.
    #[error("session: {0}")]
    Session(&'static str),
    /// The evidence was refused (binding, init data, format, verification).
    #[error("attestation ({tee}): {reason}")]
    Attestation {
        /// The TEE.
        tee: TeeName,
        /// The check that failed.
        reason: String,
    },
    /// A bearer token that is not this broker's or has expired.
    #[error("token: {0}")]
    Token(String),
    /// The resource's policy refused the evidence.
    #[error("policy {policy_id} denied {resource}: {failed}")]
    PolicyDeny {
        /// The resource.
        resource: String,
        /// The policy's id.
        policy_id: String,
        /// The rules that failed.
        failed: String,
    },
    /// No such resource or version.
    #[error("resource {0}: not found")]
    NotFound(String),
    /// An admin request whose body or path is wrong.
    #[error("admin request: {0}")]
    AdminRequest(String),
    /// An admin actor outside its scope.
    #[error("admin: {actor} may not {what}")]
    AdminScope {
        /// The actor.
        actor: String,
        /// What it tried.
        what: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret could not be opened or encrypted.
    #[error("release: {0}")]
    Release(String),
    /// The request took longer than allowed.
    #[error("the request timed out")]
    Timeout,
    /// The resource changed during every attempt to release it (versions put or deleted, a
    /// KEK rotation): it exists, so the guest is told to retry, not that it is unknown.
    #[error("resource {0}: changed during every attempt to release it")]
    Contended(String),
    /// Issuing the token failed.
    #[error("token issue: {0}")]
    Issue(String),
}

impl BrokerError {
    /// What the client is told.
    pub fn public(&self) -> PublicError {
        match self {
            Self::Request(e) => e.public(),
            Self::Session(_) => PublicError::UnknownSession,
            Self::Attestation { .. } => PublicError::AttestationFailed,
            Self::Token(_) => PublicError::TokenInvalid,
            Self::PolicyDeny { .. } => PublicError::PolicyDeny,
            Self::NotFound(_) => PublicError::ResourceNotFound,
            Self::AdminRequest(_) => PublicError::InvalidRequest,
            Self::AdminScope { .. } => PublicError::AdminForbidden,
            // A KEK rotation while another broker uses the keyring: the admin's to resolve.
            Self::Store(StoreError::Seal(crate::seal::SealError::KeyringShared { .. })) => {
                PublicError::InvalidRequest
            }
            Self::Store(
                StoreError::Database { .. } | StoreError::Worker | StoreError::Io { .. },
            )
            | Self::Timeout
            | Self::Contended(_) => PublicError::Unavailable,
            // A row of the audit log that does not read (only the admin audit page reads
            // them): the entry is named, so that `tessera audit verify` names it as it does
            // offline (its column goes to the log).
            Self::Store(StoreError::AuditChain(crate::audit::AuditChainError::Malformed {
                seq,
                ..
            })) => PublicError::AuditEntryDamaged { seq: *seq },
            Self::Store(_) | Self::Release(_) | Self::Issue(_) => PublicError::Internal,
        }
    }

    /// The TEE of a failed attestation, for the verdict metrics.
    pub fn tee(&self) -> Option<TeeName> {
        match self {
            Self::Attestation { tee, .. } => Some(*tee),
            _ => None,
        }
    }
}

/// How long [`Broker::ready`] waits for the store: less than a probe's usual timeout, so an
/// unreachable database (a black-holed address) answers not-ready instead of no answer.
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// How long a readiness answer is reused.
pub const READY_CACHE: std::time::Duration = std::time::Duration::from_secs(1);

/// The broker's settings.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Lifetime of tokens and attested sessions, seconds.
    pub token_ttl_secs: u64,
    /// The binding hash to select when the guest offers it; `None` answers `""` (SHA-384, what
    /// every guest uses by default).
    pub hash: Option<HashAlgorithm>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            token_ttl_secs: 300,
            hash: None,
        }
    }
}

/// The clock the broker reads (a parameter so tests can move time).
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// The first 64 characters of a path a guest sent, for the log: control characters (a `%0A`
/// the router decoded) become U+FFFD, so the path cannot start a log line of its own.
fn printable_prefix(path: &str) -> String {
    path.chars()
        .take(64)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Why `check_attestation` refused evidence: the evidence's digest when it got that far, the
/// reason, and whether it was the verification itself (the binding and init data held).
struct Refused {
    digest: Option<String>,
    reason: String,
    at_verification: bool,
}

/// A map of at most `cap` entries from which the oldest inserted leaves first.
struct Fifo<V> {
    map: HashMap<String, V>,
    /// The keys in the order they were inserted (some may have left the map through
    /// [`Fifo::retain`] until it prunes them too).
    order: VecDeque<String>,
    cap: usize,
}

impl<V> Fifo<V> {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    /// Inserts (or replaces) `key`, first making room by removing the oldest entries.
    fn insert(&mut self, key: String, value: V) {
        if let Some(v) = self.map.get_mut(&key) {
            *v = value;
            return;
        }
        while self.map.len() >= self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => self.map.clear(),
            }
        }
        self.order.push_back(key.clone());
        self.map.insert(key, value);
    }

    /// Keeps the entries `keep` accepts.
    fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.map.retain(|_, v| keep(v));
        let map = &self.map;
        self.order.retain(|k| map.contains_key(k));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// An attested session as the release path needs it.
struct AttestedRecord {
    verified: VerifiedEvidence,
    tee_key: TeePublicKey,
    /// [`store::token_digest`] of the token issued.
    token_digest: String,
    evidence_digest: String,
    expires_ms: i64,
}

struct Inner {
    store: Arc<dyn Store>,
    keyring: Arc<KeyringFile>,
    verifier: Verifier,
    token_key: SigningKey,
    token_policy: Policy,
    options: BrokerOptions,
    clock: Clock,
    sessions: Mutex<Fifo<Arc<AttestedRecord>>>,
    policies: Mutex<PolicyCache>,
    /// Puts hold it shared from taking the active KEK until their version is stored; a KEK
    /// rotation holds it alone, so it never retires a KEK that a put in flight is sealing
    /// under (its version would stay unopenable, and every later rotation would fail on it).
    rotation: tokio::sync::RwLock<()>,
    /// Held by the KEK rotation that runs (see [`Broker::admin_rotate_kek`]): a second one is
    /// refused.
    kek_rotating: tokio::sync::Mutex<()>,
    sealing: Option<Mutex<SealingKeys>>,
    coco: Option<CocoSigner>,
    endorsement_source: Option<EndorsementSource>,
    /// [`MAX_ENDORSEMENT_LOOKUPS`] permits, one held by each lookup until it returns.
    endorsement_lookups: Arc<tokio::sync::Semaphore>,
    /// How often a request's endorsements are checked for newer ones, milliseconds.
    endorsement_recheck_ms: i64,
    /// When each request was last checked for newer endorsements (broker clock, ms).
    rechecked: Mutex<Vec<(EndorsementRequest, i64)>>,
    /// [`MAX_RECHECK_LOOKUPS`] permits, one held by each recheck until it returns.
    recheck_lookups: Arc<tokio::sync::Semaphore>,
    /// The last readiness answer and when it was found (monotonic; see [`Broker::ready`]).
    readiness: Mutex<Option<(std::time::Instant, bool)>>,
}

/// Where the broker gets the endorsements a verifier lacks for a piece of evidence (the VCEK
/// of an SEV-SNP guest that sent none, the collateral of a quote's FMSPC): a collateral cache,
/// offline or fetching. It may block (disk and network I/O): the broker calls it off the async
/// runtime. What it returns is vetted first ([`Verifier::vet_endorsements`]: held, a forged
/// VEK or collateral would count as present and never be asked for again) and then verified
/// like any other endorsement; the error is a reason for the logs.
pub type EndorsementSource =
    Arc<dyn Fn(&Evidence, &EndorsementRequest) -> Result<Endorsements, String> + Send + Sync>;

/// The key broker: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

fn store_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl Broker {
    /// A broker over `store`, sealing with `keyring`, verifying with `verifier` and signing
    /// tokens with `token_key` (ES256).
    ///
    /// # Errors
    /// [`BrokerError::Issue`] if the built-in token policy does not load (a defect caught by the
    /// tests).
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<KeyringFile>,
        verifier: Verifier,
        token_key: SigningKey,
        options: BrokerOptions,
    ) -> Result<Self, BrokerError> {
        let token_policy = Policy::from_toml_str(TOKEN_POLICY)
            .map_err(|e| BrokerError::Issue(format!("built-in token policy: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                keyring,
                verifier,
                token_key,
                token_policy,
                options,
                clock: Arc::new(UnixTime::now),
                sessions: Mutex::new(Fifo::new(MAX_CACHED_SESSIONS)),
                policies: Mutex::new(PolicyCache::default()),
                rotation: tokio::sync::RwLock::new(()),
                kek_rotating: tokio::sync::Mutex::new(()),
                sealing: None,
                coco: None,
                endorsement_source: None,
                endorsement_lookups: Arc::new(tokio::sync::Semaphore::new(MAX_ENDORSEMENT_LOOKUPS)),
                endorsement_recheck_ms: millis(ENDORSEMENT_RECHECK),
                rechecked: Mutex::new(Vec::new()),
                recheck_lookups: Arc::new(tokio::sync::Semaphore::new(MAX_RECHECK_LOOKUPS)),
                readiness: Mutex::new(None),
            }),
        })
    }

    /// The same broker asking `source` for the endorsements its verifier lacks (see
    /// [`EndorsementSource`]).
    #[must_use]
    pub fn with_endorsement_source(self, source: EndorsementSource) -> Self {
        self.configure("with_endorsement_source", |inner| {
            inner.endorsement_source = Some(source);
        })
    }

    /// How often (default [`ENDORSEMENT_RECHECK`]) the source is asked whether it holds newer
    /// endorsements than those evidence was just verified with: the ARK's CRL of an SEV-SNP
    /// report's product and signer, or the collateral of a quote's FMSPC, at most once per
    /// period for each. Held endorsements that are still current are never asked for again
    /// otherwise, so a CRL revoking a chip (imported into the cache, or fetched by it) would
    /// not be applied until the one held expired, up to a year for AMD's. The first evidence
    /// of each kind after a start sets off a recheck too (what the broker loaded at start may
    /// be older than what its cache holds). When the evidence was verified without a CRL, the
    /// answer waits for the source (at most two seconds) and the evidence is verified again
    /// with what it gave; otherwise the source is asked after the answer, so that no answer
    /// waits. At most two rechecks run at once. Zero asks after every attestation (for
    /// tests).
    #[must_use]
    pub fn with_endorsement_recheck(self, every: std::time::Duration) -> Self {
        self.configure("with_endorsement_recheck", |inner| {
            inner.endorsement_recheck_ms = millis(every);
        })
    }

    /// The same broker changed by `change`. The `with_*` builders are for a broker not yet
    /// cloned (clones share one state): on a shared broker the change cannot be made for the
    /// other clones, so it is not made at all, and the error is logged (a debug build panics,
    /// so that tests catch the misuse).
    fn configure(self, what: &'static str, change: impl FnOnce(&mut Inner)) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                change(&mut inner);
                Self {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => {
                tracing::error!(what, "broker already cloned: the configuration is ignored");
                debug_assert!(
                    Arc::strong_count(&inner) == 1,
                    "Broker::{what} on a broker that is already cloned"
                );
                Self { inner }
            }
        }
    }

    /// The same broker reading time from `clock` (tests of expiry).
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        self.configure("with_clock", |inner| inner.clock = clock)
    }

    /// The same broker with its keys for secrets sealed in Git: the sealing keys (offline seals
    /// to them are imported by [`Broker::admin_put_sealed`]) and the key that signs Confidential
    /// Containers sealed secrets.
    #[must_use]
    pub fn with_git_sealing(self, keys: SealingKeys, coco: CocoSigner) -> Self {
        self.configure("with_git_sealing", |inner| {
            inner.sealing = Some(Mutex::new(keys));
            inner.coco = Some(coco);
        })
    }

    /// The public keys that secrets are sealed to (`GET /kbs/v0/sealing-key`), if configured.
    pub fn sealing_public_keys(&self) -> Option<Value> {
        let keys = self.inner.sealing.as_ref()?.lock().ok()?;
        Some(keys.public_keys())
    }

    /// The public key that verifies this broker's tokens.
    pub fn token_verifying_key(&self) -> &tessera_policy::ear::VerifyingKey {
        self.inner.token_key.verifying_key()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    fn now(&self) -> UnixTime {
        (self.inner.clock)()
    }

    fn now_ms(&self) -> i64 {
        self.now().as_secs().saturating_mul(1000)
    }

    /// Audits a refusal: best effort (the refusal stands whether or not its entry is written).
    async fn audit(&self, event: AuditEvent) {
        if let Err(e) = self.inner.store.append_audit(event.bounded()).await {
            tracing::error!(error = %e, "audit append failed");
        }
    }

    /// Audits a release or the start of a rotation, which must not go unrecorded: a release
    /// whose entry cannot be written is not answered (the secret never leaves), and a rotation
    /// whose start cannot be recorded does not start. (Puts, deletes and policy changes are
    /// written with their entry in one transaction by the store.)
    async fn record(&self, event: AuditEvent) -> Result<(), BrokerError> {
        self.inner
            .store
            .append_audit(event.bounded())
            .await
            .map(drop)
            .map_err(|e| {
                tracing::error!(error = %e, "audit append failed");
                BrokerError::Store(e)
            })
    }

    /// Runs a rotation (not one transaction) between its audit entries: "`what` started" before
    /// `rotate` changes anything (a rotation whose start cannot be recorded does not start),
    /// then "`what` failed: .." (best effort: its start is in the log either way) or the
    /// outcome `done` describes, which must be written for the request to succeed.
    async fn audited_rotation<T, E>(
        &self,
        actor: &Actor,
        action: AuditAction,
        what: &str,
        rotate: impl Future<Output = Result<T, E>>,
        done: impl FnOnce(&T) -> String,
    ) -> Result<T, BrokerError>
    where
        E: Into<BrokerError> + std::fmt::Display,
    {
        let mut ev = self.event(actor.name(), action, AuditVerdict::Pass);
        ev.reason = format!("{what} started");
        self.record(ev).await?;
        match rotate.await {
            Ok(out) => {
                let mut ev = self.event(actor.name(), action, AuditVerdict::Pass);
                ev.reason = done(&out);
                self.record(ev).await?;
                Ok(out)
            }
            Err(e) => {
                let mut ev = self.event(actor.name(), action, AuditVerdict::Fail);
                ev.reason = format!("{what} failed: {e}");
                self.audit(ev).await;
                Err(e.into())
            }
        }
    }

    fn event(&self, actor: &str, action: AuditAction, verdict: AuditVerdict) -> AuditEvent {
        AuditEvent {
            time_ms: self.now_ms(),
            actor: actor.to_owned(),
            action,
            resource: None,
            evidence_digest: None,
            policy_digest: None,
            verdict,
            reason: String::new(),
        }
    }

    /// Whether the store answers (the readiness probe): one [`Store::ping`] bounded by
    /// [`READY_TIMEOUT`], its answer reused for [`READY_CACHE`] so that frequent probes from
    /// several kubelets and load balancers cost the database one query a second at most. A
    /// probe that fails logs why, at warn (the store's error: no secret or credential).
    pub async fn ready(&self) -> bool {
        let now = std::time::Instant::now();
        if let Ok(cached) = self.inner.readiness.lock()
            && let Some((at, ready)) = *cached
            && now.saturating_duration_since(at) < READY_CACHE
        {
            return ready;
        }
        let ready = match tokio::time::timeout(READY_TIMEOUT, self.inner.store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "not ready: the store did not answer the probe");
                false
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = u64::try_from(READY_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
                    "not ready: the store did not answer the probe in time"
                );
                false
            }
        };
        if let Ok(mut cached) = self.inner.readiness.lock() {
            *cached = Some((std::time::Instant::now(), ready));
        }
        ready
    }

    /// Deletes expired challenges and sessions: from the store, in chunks of at most
    /// [`PURGE_CHUNK`] rows a table (at most [`PURGE_MAX_CHUNKS`] chunks a call, the rest waits
    /// for the next call), so that no single transaction holds up the flows that share the
    /// store; and from this broker's memory. Returns how many rows left the store. `tessera
    /// serve` calls it once at start and then every `purge_interval_secs`.
    ///
    /// # Errors
    /// [`BrokerError::Store`]; the rows deleted before it stay deleted.
    pub async fn purge_expired(&self) -> Result<u64, BrokerError> {
        let now_ms = self.now_ms();
        if let Ok(mut cache) = self.inner.sessions.lock() {
            cache.retain(|r| r.expires_ms > now_ms);
        }
        self.inner.keyring.forget_retired(now_ms);
        let mut total = 0u64;
        for _ in 0..PURGE_MAX_CHUNKS {
            let n = self.inner.store.purge_expired(now_ms, PURGE_CHUNK).await?;
            total = total.saturating_add(n);
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }

    // ---------------------------------------------------------------------------------------
    // The release protocol.

    fn select_hash(&self, req: &AuthRequest) -> HashAlgorithm {
        match self.inner.options.hash {
            Some(h) if req.supported_hashes.iter().any(|s| s == h.name()) => h,
            _ => HashAlgorithm::Sha384,
        }
    }

    /// `POST /kbs/v0/auth`: a fresh challenge for a new session.
    ///
    /// # Errors
    /// A malformed request, another protocol version, an unknown TEE, a store failure.
    pub async fn auth(&self, body: &[u8]) -> Result<ChallengeAnswer, BrokerError> {
        let req = AuthRequest::decode(body)?;
        let hash = self.select_hash(&req);
        // Nothing is stored: the session id carries the challenge, and its nonce is derived
        // from the id with the active KEK (see `store::Challenge`).
        let challenge = Challenge::generate(req.tee.as_str(), hash, self.now_ms())?;
        let keyring = self.inner.keyring.current();
        let kek = keyring.active().map_err(StoreError::Seal)?;
        let nonce = challenge.nonce(kek, self.inner.store.identity())?;
        let extra = if self.inner.options.hash.is_some() && hash != HashAlgorithm::Sha384 {
            json!({ "selected-hash-algorithm": hash.name() })
        } else {
            json!("")
        };
        Ok(ChallengeAnswer {
            session_id: challenge.session_id.as_str().to_owned(),
            response: json!({ "nonce": nonce, "extra-params": extra }),
            // The cookie names the challenge and then the attested session, which lives
            // token_ttl_secs: whichever is longer (the server enforces both lifetimes).
            max_age_secs: u64::try_from(CHALLENGE_TTL_MS / 1000)
                .unwrap_or(300)
                .max(self.inner.options.token_ttl_secs),
        })
    }

    /// `POST /kbs/v0/attest`: verifies evidence bound to the session's challenge and returns a
    /// token. Once the guest has shown it knows the challenge's nonce (the cookie is one this
    /// broker issued, unexpired, and the nonce sent is its nonce), the challenge is used up
    /// by every verdict, pass or fail; before that nothing is recorded but the audit entry, so
    /// a forged cookie writes no record of use. A request that ends without a verdict (the
    /// store fails, the token cannot be signed, the request deadline passes) leaves it unused:
    /// answering it again still needs evidence bound to the same nonce and key.
    ///
    /// # Errors
    /// [`BrokerError::Session`] without a usable challenge; [`BrokerError::Attestation`] naming
    /// the failed check; store failures.
    pub async fn attest(
        &self,
        session: Option<&str>,
        body: &[u8],
    ) -> Result<Attested, BrokerError> {
        let (req, compacted) = AttestRequest::decode_compacted(body)?;
        let session = session
            .and_then(SessionId::parse)
            .ok_or(BrokerError::Session("no session cookie"))?;
        let now = self.now();
        let now_ms = self.now_ms();
        // The challenge the session id carries. An id from the future (beyond the clock skew
        // replicas may have) is none the broker issued; refusing it here also bounds how long
        // the record of its use would be kept.
        let challenge = Challenge::from_session(&session)
            .filter(|c| c.issued_ms <= now_ms.saturating_add(MAX_CLOCK_SKEW_MS));
        let Some(challenge) = challenge else {
            return Err(self.refuse_session("no challenge for this session").await);
        };
        if now_ms >= challenge.expires_ms {
            return Err(self.refuse_session("the challenge expired").await);
        }
        let Some(tee) = TeeName::from_wire(&challenge.tee) else {
            return Err(self.refuse_session("no challenge for this session").await);
        };
        if !challenge.nonce_matches(
            &self.inner.keyring.current(),
            self.inner.store.identity(),
            &req.runtime_data.nonce,
            now_ms,
        ) {
            let reason = "the nonce is not this session's challenge".to_owned();
            let mut ev = self.event("guest", AuditAction::Attest, AuditVerdict::Fail);
            ev.reason = format!("{}: {reason}", tee.as_str());
            self.audit(ev).await;
            return Err(BrokerError::Attestation { tee, reason });
        }
        // The evidence's text in compact form (see `tessera::compact`), when it has one: the
        // evidence is decoded from it, and the session record keeps it.
        let evidence_text = req.tee_evidence.primary_evidence.get();
        let compact = if compacted {
            Some(std::borrow::Cow::Borrowed(evidence_text))
        } else {
            tessera::compact::encode_text(evidence_text).map(std::borrow::Cow::Owned)
        };
        // The additional evidence as the session record keeps it (JSON text, escaped again),
        // when there is any: a replica rebuilding the session checks the REPORT_DATA binding
        // again, and it is part of the bound data.
        let additional = req.additional_evidence();
        let additional = if additional.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&additional)
                .map_err(|_| BrokerError::Issue("session record".into()))?
        };
        // What the session record would keep is bounded: a genuine TEE could otherwise leave
        // up to a whole body (8 MiB) in the store per attestation, for the token's lifetime.
        // Measured as stored (escapes count as written, not as decoded).
        let kept = compact.as_deref().map_or(evidence_text.len(), str::len) + additional.len();
        if kept > MAX_SESSION_EVIDENCE {
            let reason = format!(
                "evidence and additional evidence take {kept} bytes, more than a session keeps \
                 ({MAX_SESSION_EVIDENCE})"
            );
            return Err(self.refuse_attestation(&challenge, tee, None, reason).await);
        }
        let evidence = decode_evidence(tee, evidence_text, compact.as_deref());
        let mut outcome = self.check_attestation(&req, &evidence, &challenge, tee, now);
        // Endorsements are looked up only for evidence that failed its verification, after its
        // binding to this challenge and key held: evidence that binds nothing (replayed, or
        // made up without a challenge) never sets off a fetch; one bound to a fresh challenge
        // still can, once per challenge.
        let filling = outcome.as_ref().is_err_and(|r| r.at_verification);
        if filling
            && let Ok(parsed) = &evidence
            && self.fill_endorsements(parsed, tee).await
        {
            // The lookup may have taken long (a slow service, the fetch timeout): the
            // challenge must still be open when it is answered.
            if self.now_ms() >= challenge.expires_ms {
                return Err(self.refuse_session("the challenge expired").await);
            }
            outcome = self.check_attestation(&req, &evidence, &challenge, tee, now);
        }
        // Verified with what is held: the source may hold newer endorsements (a CRL revoking
        // this chip) that the verifier would otherwise not ask for while its own are current.
        // (Just asked to fill what was missing, it is not asked again now.)
        if let Ok((_, verified, _)) = &outcome
            && let Ok(parsed) = &evidence
            && self
                .recheck_endorsements(parsed, tee, verified.revocation_checked(), filling)
                .await
        {
            if self.now_ms() >= challenge.expires_ms {
                return Err(self.refuse_session("the challenge expired").await);
            }
            outcome = self.check_attestation(&req, &evidence, &challenge, tee, now);
        }
        let (evidence_digest, checked) = match outcome {
            Ok((digest, verified, key)) => (digest.clone(), Ok((verified, key))),
            Err(Refused { digest, reason, .. }) => (digest.unwrap_or_default(), Err(reason)),
        };
        let (verified, tee_key) = match checked {
            Ok(pair) => pair,
            Err(reason) => {
                return Err(self
                    .refuse_attestation(&challenge, tee, Some(evidence_digest), reason)
                    .await);
            }
        };
        let appraisal = tessera::appraise(&verified, &self.inner.token_policy);
        if !appraisal.passed() {
            let reason = "verification appraisal failed".to_owned();
            return Err(self
                .refuse_attestation(&challenge, tee, Some(evidence_digest), reason)
                .await);
        }
        let session_bytes = URL_SAFE_NO_PAD
            .decode(session.as_str())
            .map_err(|_| BrokerError::Session("malformed session id"))?;
        let nonce = Nonce::new(&session_bytes).map_err(|e| BrokerError::Issue(e.to_string()))?;
        let annotated = match verified.claims() {
            Value::Object(map) => Some(map),
            _ => None,
        };
        let ttl = self.inner.options.token_ttl_secs;
        // The token vouches for verification alone (TOKEN_POLICY appraises neither the guest's
        // configuration nor its code; each release appraises the resource's policy): its
        // status says so to a relying party that reads nothing else.
        let claims = EarClaims::from_appraisal(&appraisal, annotated, now, ttl, Some(nonce))
            .with_runtime_data_claims(json!({ "tee-pubkey": tee_key.as_sent() }))
            .warning_unless_workload_appraised();
        let token = issue_jwt(&claims, &self.inner.token_key)
            .map_err(|e| BrokerError::Issue(e.to_string()))?;
        let expires_ms =
            now_ms.saturating_add(i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX));
        let token_digest = store::token_digest(&token);
        // The evidence in compact form when it has one, else as it came; both are JSON text,
        // which the record embeds as it is.
        let verified_at = verified.verified_at().as_secs();
        // The additional evidence, when there is any, goes with it (measured above).
        let record = session_record(evidence_text, compact.as_deref(), verified_at, &additional);
        let mut ev = self.event("guest", AuditAction::Attest, AuditVerdict::Pass);
        ev.evidence_digest = Some(evidence_digest.clone());
        ev.reason = format!(
            "{} evidence verified{}",
            tee.as_str(),
            test_root_note(&verified)
        );
        // The challenge's use, the session and the entry recording it together (one commit).
        let stored = self
            .inner
            .store
            .put_session_audited(
                &challenge,
                &AttestedSession {
                    session_id: session.clone(),
                    tee: tee.as_str().to_owned(),
                    tee_pubkey: tee_key.as_sent().to_string(),
                    token_digest: token_digest.clone(),
                    claims: record,
                    evidence_digest: evidence_digest.clone(),
                    attested_ms: now_ms,
                    expires_ms,
                },
                ev.bounded(),
            )
            .await?;
        if stored.is_none() {
            return Err(self.refuse_session(USED).await);
        }
        self.cache_session(
            &session,
            Arc::new(AttestedRecord {
                verified,
                tee_key,
                token_digest,
                evidence_digest,
                expires_ms,
            }),
        );
        Ok(Attested { token, tee })
    }

    /// Records the single use of a challenge whose answer is refused; an error (audited) when
    /// it was already used.
    async fn use_up(&self, challenge: &Challenge) -> Result<(), BrokerError> {
        if self.inner.store.use_challenge(challenge).await? {
            Ok(())
        } else {
            Err(self.refuse_session(USED).await)
        }
    }

    /// An `/attest` refused once its nonce matched (its evidence, or what a session would
    /// keep): the challenge is used up and the refusal audited, with the evidence's digest
    /// when there is one; the error to answer.
    async fn refuse_attestation(
        &self,
        challenge: &Challenge,
        tee: TeeName,
        evidence_digest: Option<String>,
        reason: String,
    ) -> BrokerError {
        if let Err(e) = self.use_up(challenge).await {
            return e;
        }
        let mut ev = self.event("guest", AuditAction::Attest, AuditVerdict::Fail);
        ev.evidence_digest = evidence_digest.filter(|d| !d.is_empty());
        ev.reason = format!("{}: {reason}", tee.as_str());
        self.audit(ev).await;
        BrokerError::Attestation { tee, reason }
    }

    /// Audits a refused `/attest` whose session or challenge is unusable; the error to answer.
    async fn refuse_session(&self, reason: &'static str) -> BrokerError {
        let mut ev = self.event("guest", AuditAction::Attest, AuditVerdict::Fail);
        ev.reason = reason.to_owned();
        self.audit(ev).await;
        BrokerError::Session(reason)
    }

    /// After a failed attestation: when the verifier lacks endorsements for the evidence and an
    /// [`EndorsementSource`] is set, get them from it on a blocking thread and add them to the
    /// verifier. Whether any were added (then the caller checks the evidence again; the verify
    /// path itself stays free of I/O).
    async fn fill_endorsements(&self, evidence: &Evidence, tee: TeeName) -> bool {
        if self.inner.endorsement_source.is_none() {
            return false;
        }
        let Some(needed) = self
            .inner
            .verifier
            .needed_endorsements_at(evidence, self.now())
        else {
            return false;
        };
        self.lookup_endorsements(evidence, needed, tee, None).await
    }

    /// After a verification that needed nothing from the [`EndorsementSource`]: ask it for the
    /// endorsements `evidence` is verified with, at most once per
    /// [`Broker::with_endorsement_recheck`] period for each request, and hold what is newer.
    /// Evidence verified without revocation checked waits for the answer (at most
    /// [`RECHECK_WAIT`]): whether the source gave anything (the caller verifies the evidence
    /// again). Otherwise the lookup runs after the answer, for later evidence, and this says
    /// `false`. `just_asked`: this attestation already asked the source (for what was
    /// missing): the period starts again, and nothing is asked.
    async fn recheck_endorsements(
        &self,
        evidence: &Evidence,
        tee: TeeName,
        revocation_checked: bool,
        just_asked: bool,
    ) -> bool {
        if self.inner.endorsement_source.is_none() {
            return false;
        }
        let Some(request) = self.inner.verifier.endorsements_to_recheck(evidence) else {
            return false;
        };
        let now = self.now_ms();
        if just_asked {
            // The period starts again; nothing is asked.
            let _ = self.recheck_due(&request, now, true);
            return false;
        }
        // Rechecks have permits of their own: with `recheck_secs = 0` under load they would
        // otherwise take every lookup slot from guests whose VCEK is missing. Taken before the
        // period is, so that a recheck skipped because both run already (slow sources) is
        // asked by the next attestation, not a period later.
        let Ok(permit) = Arc::clone(&self.inner.recheck_lookups).try_acquire_owned() else {
            tracing::debug!(
                tee = tee.as_str(),
                "endorsement recheck skipped: as many as allowed are running"
            );
            return false;
        };
        if !self.recheck_due(&request, now, false) {
            return false;
        }
        let (broker, evidence) = (self.clone(), evidence.clone());
        let lookup = tokio::spawn(async move {
            broker
                .lookup_endorsements(&evidence, request, tee, Some(permit))
                .await
        });
        if revocation_checked {
            return false;
        }
        // Verified without a current CRL: the answer waits for the source, but not longer
        // than RECHECK_WAIT (a source that is down could hold it for every fetch timeout);
        // past it the lookup goes on, for later evidence.
        matches!(
            tokio::time::timeout(RECHECK_WAIT, lookup).await,
            Ok(Ok(true))
        )
    }

    /// Whether `request` is due for a recheck at `now` (broker clock, ms): never asked since
    /// the start, or last asked a period ago or more (or at a time still to come). When due,
    /// or `just_asked` (never due then), the period starts at `now`.
    fn recheck_due(&self, request: &EndorsementRequest, now: i64, just_asked: bool) -> bool {
        let Ok(mut seen) = self.inner.rechecked.lock() else {
            return false;
        };
        let period = self.inner.endorsement_recheck_ms;
        let last = seen.iter_mut().find(|(r, _)| r == request);
        let due = last
            .as_ref()
            .is_none_or(|(_, at)| now.saturating_sub(*at) >= period || now < *at);
        if due || just_asked {
            match last {
                Some((_, at)) => *at = now,
                None => {
                    if seen.len() >= MAX_RECHECKED {
                        seen.remove(0);
                    }
                    seen.push((request.clone(), now));
                }
            }
        }
        due && !just_asked
    }

    /// Ask the [`EndorsementSource`] for `needed` on a blocking thread, vet what it gives, and
    /// hold it. Whether the source gave anything (held already or not: the caller verifies the
    /// evidence again).
    async fn lookup_endorsements(
        &self,
        evidence: &Evidence,
        needed: EndorsementRequest,
        tee: TeeName,
        held: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> bool {
        let Some(source) = self.inner.endorsement_source.clone() else {
            return false;
        };
        // The permit goes with the blocking call, so it is held until the lookup returns even
        // when this request is dropped first (its client gone). A recheck brings its own.
        let permit = match held {
            Some(permit) => permit,
            None => {
                let Ok(permit) = Arc::clone(&self.inner.endorsement_lookups).try_acquire_owned()
                else {
                    tracing::warn!(
                        tee = tee.as_str(),
                        limit = MAX_ENDORSEMENT_LOOKUPS,
                        "endorsements unavailable: as many lookups as allowed are running"
                    );
                    return false;
                };
                permit
            }
        };
        let evidence = evidence.clone();
        let (verifier, now) = (self.inner.verifier.clone(), self.now());
        let lookup = move || {
            // Held endorsements count as present: a forged one would never be asked for
            // again, so only what chains to the verifier's roots is held (checked here, off
            // the async runtime: signature checks).
            let got = source(&evidence, &needed).and_then(|more| {
                verifier
                    .vet_endorsements(&more, now)
                    .map(|()| more)
                    .map_err(|e| format!("refused, not held: {}", e.with_check()))
            });
            drop(permit);
            got
        };
        match tokio::task::spawn_blocking(lookup).await {
            // Whether new or not: another lookup may have added the same ones meanwhile, after
            // this evidence was verified without them.
            Ok(Ok(more)) if !more.is_empty() => {
                self.inner.verifier.add_endorsements(more);
                true
            }
            Ok(Ok(_)) => false,
            Ok(Err(reason)) => {
                tracing::warn!(tee = tee.as_str(), %reason, "endorsements unavailable");
                false
            }
            Err(e) => {
                tracing::warn!(tee = tee.as_str(), error = %e, "endorsement lookup failed");
                false
            }
        }
    }

    /// Every check of `/attest` that needs no store: the nonce, the TEE key, the evidence form and
    /// TEE, the REPORT_DATA binding, the init data, and verification. On failure, the evidence
    /// digest (when the evidence parsed) and the reason.
    fn check_attestation(
        &self,
        req: &AttestRequest,
        evidence: &Result<Evidence, String>,
        challenge: &Challenge,
        tee: TeeName,
        now: UnixTime,
    ) -> Result<(String, VerifiedEvidence, TeePublicKey), Refused> {
        let early = |reason: String| Refused {
            digest: None,
            reason,
            at_verification: false,
        };
        let tee_key = TeePublicKey::from_json(&req.runtime_data.tee_pubkey)
            .map_err(|e| early(format!("tee-pubkey: {e}")))?;
        let evidence = evidence
            .as_ref()
            .map_err(|e| early(format!("evidence: {e}")))?;
        let digest = evidence.digest();
        let with_digest = |reason: String| Refused {
            digest: Some(digest.clone()),
            reason,
            at_verification: false,
        };
        binding::check_report_data(
            evidence.report_data(),
            challenge.hash,
            &req.runtime_data.nonce,
            &req.runtime_data.tee_pubkey,
            &req.additional_evidence(),
        )
        .map_err(|e: BindingError| with_digest(format!("report_data: {e}")))?;
        if let Some(init) = &req.init_data {
            let field = match (tee, evidence.init_data_field()) {
                (TeeName::Snp, Some(f)) => f.try_into().ok().map(InitDataField::SnpHostData),
                (TeeName::Tdx, Some(f)) => f.try_into().ok().map(InitDataField::TdxMrConfigId),
                _ => None,
            }
            .ok_or_else(|| with_digest("init-data: this evidence has no init-data field".into()))?;
            binding::check_init_data(&init.format, &init.body, field)
                .map_err(|e| with_digest(format!("init-data: {e}")))?;
        }
        let verified = self
            .inner
            .verifier
            .verify(evidence, now)
            .map_err(|e| Refused {
                at_verification: true,
                ..with_digest(format!("verification ({}): {e}", e.check()))
            })?;
        Ok((digest, verified, tee_key))
    }

    fn cache_session(&self, session: &SessionId, record: Arc<AttestedRecord>) {
        if let Ok(mut cache) = self.inner.sessions.lock() {
            cache.insert(session.storage_key(), record);
        }
    }

    /// The attested session: from memory, or rebuilt from the store (another replica attested
    /// it, or this one restarted) by verifying its evidence again at the original time.
    async fn attested(&self, session: &SessionId) -> Result<Arc<AttestedRecord>, BrokerError> {
        let now_ms = self.now_ms();
        let key = session.storage_key();
        let cached = self
            .inner
            .sessions
            .lock()
            .ok()
            .and_then(|cache| cache.get(&key).cloned());
        if let Some(record) = cached {
            if record.expires_ms > now_ms {
                return Ok(record);
            }
            return Err(BrokerError::Session("the attested session expired"));
        }
        let stored = self
            .inner
            .store
            .get_session(session, now_ms)
            .await?
            .ok_or(BrokerError::Session("no attested session"))?;
        let saved = match stored_evidence(&stored) {
            Ok(saved) => saved,
            Err(e) => return Err(unusable_session(&e)),
        };
        let mut record = self.rebuild(session, &stored, &saved);
        // The evidence may need endorsements this broker has not got yet: another replica (or
        // this one before a restart) may have read its VCEK or collateral from the cache.
        if record.is_err()
            && let Some(tee) = TeeName::from_wire(&stored.tee)
            && self.fill_endorsements(&saved.evidence, tee).await
        {
            record = self.rebuild(session, &stored, &saved);
        }
        let record = Arc::new(record.map_err(|e| unusable_session(&e))?);
        self.cache_session(session, Arc::clone(&record));
        Ok(record)
    }

    /// The attested record of `session` from its stored row. The row is not trusted more than
    /// evidence sent over the network: whoever can write to the database must not be able to
    /// pair genuine evidence with a key of their own. So the evidence is verified again, and
    /// its REPORT_DATA must bind this session's nonce (derived from the session id with a KEK,
    /// which the database does not hold), the stored TEE key and additional evidence, exactly
    /// as `/attest` checked them.
    fn rebuild(
        &self,
        session: &SessionId,
        stored: &AttestedSession,
        saved: &SavedEvidence,
    ) -> Result<AttestedRecord, BrokerError> {
        let challenge = Challenge::from_session(session)
            .filter(|c| c.tee == stored.tee)
            .ok_or_else(|| corrupt("the session id names another TEE"))?;
        // Its times, against the issue time its id carries (bound to its nonce): answered
        // while the challenge was open (on a replica whose clock may differ by the skew
        // allowed), verified then, and lasting one token lifetime from then at most.
        let ttl_ms =
            i64::try_from(self.inner.options.token_ttl_secs.saturating_mul(1000)).unwrap_or(0);
        // (`verified_at` is in whole seconds: a second earlier than the issue time allowed.)
        let opened_ms = challenge.issued_ms.saturating_sub(MAX_CLOCK_SKEW_MS + 1000);
        let closed_ms = challenge.expires_ms.saturating_add(MAX_CLOCK_SKEW_MS);
        let verified_ms = saved.verified_at.saturating_mul(1000);
        if !(opened_ms..=closed_ms).contains(&verified_ms)
            || stored.expires_ms > closed_ms.saturating_add(ttl_ms)
        {
            return Err(corrupt("its times do not fit the challenge it answered"));
        }
        let jwk: Value =
            serde_json::from_str(&stored.tee_pubkey).map_err(|_| corrupt("tee-pubkey"))?;
        let tee_key = TeePublicKey::from_json(&jwk).map_err(|_| corrupt("tee-pubkey"))?;
        let ring = self.inner.keyring.current();
        let bound = challenge
            .nonces(&ring, self.inner.store.identity(), self.now_ms())
            .iter()
            .any(|nonce| {
                binding::check_report_data(
                    saved.evidence.report_data(),
                    challenge.hash,
                    nonce,
                    &jwk,
                    &saved.additional_evidence,
                )
                .is_ok()
            });
        if !bound {
            return Err(corrupt(
                "the evidence does not bind this session's nonce and TEE key",
            ));
        }
        let verified = self
            .inner
            .verifier
            .verify(&saved.evidence, UnixTime::from_secs(saved.verified_at))
            .map_err(|e| corrupt(&format!("evidence no longer verifies: {e}")))?;
        // As `/attest` judged it: a row is trusted no more than evidence sent over the network.
        if !tessera::appraise(&verified, &self.inner.token_policy).passed() {
            return Err(corrupt("the evidence fails the verification appraisal"));
        }
        Ok(AttestedRecord {
            verified,
            tee_key,
            token_digest: stored.token_digest.clone(),
            evidence_digest: stored.evidence_digest.clone(),
            expires_ms: stored.expires_ms,
        })
    }

    /// The session a bearer token names, after checking that this broker signed it and that it
    /// has not expired.
    async fn session_of_token(&self, token: &str) -> Result<Arc<AttestedRecord>, BrokerError> {
        let now = self.now();
        let key = self.inner.token_key.verifying_key();
        // A token issued by a replica whose clock is ahead (by up to the skew replicas may
        // have) is not refused as not yet valid: guests use it at once, and a guest whose
        // token is refused while it has not expired asks its agent again and gets the same
        // one. It is checked at its issue time instead, where its expiry is checked too.
        let claims = match verify_jwt(token, key, now) {
            Err(TokenError::NotYetValid { not_before, .. })
                if not_before.as_secs()
                    <= now.as_secs().saturating_add(MAX_CLOCK_SKEW_MS / 1000) =>
            {
                verify_jwt(token, key, not_before)
            }
            other => other,
        }
        .map_err(|e| BrokerError::Token(e.to_string()))?;
        let nonce = claims
            .nonce()
            .ok_or_else(|| BrokerError::Token("no session in the token".into()))?;
        let session = SessionId::parse(&URL_SAFE_NO_PAD.encode(nonce.as_bytes()))
            .ok_or_else(|| BrokerError::Token("no session in the token".into()))?;
        let record = self.attested(&session).await.map_err(|e| match e {
            BrokerError::Session(reason) => BrokerError::Token(reason.into()),
            other => other,
        })?;
        verify_slices_are_equal(
            record.token_digest.as_bytes(),
            store::token_digest(token).as_bytes(),
        )
        .map_err(|_| BrokerError::Token("not the token issued to this session".into()))?;
        Ok(record)
    }

    fn policy(&self, digest: &PolicyDigest, text: &str) -> Result<Arc<Policy>, BrokerError> {
        if let Some(p) = self
            .inner
            .policies
            .lock()
            .ok()
            .and_then(|m| m.parsed.get(digest.as_str()).cloned())
        {
            return Ok(p);
        }
        let policy = Arc::new(
            Policy::from_text(text)
                .map_err(|e| BrokerError::Release(format!("stored policy {digest}: {e}")))?,
        );
        if let Ok(mut m) = self.inner.policies.lock() {
            m.insert(digest.as_str(), Arc::clone(&policy), text.len());
        }
        Ok(policy)
    }

    /// `GET /kbs/v0/resource/...`: the newest (or pinned) version of a resource, as a JWE for
    /// the session's TEE key, when the policy sealed with it accepts the session's evidence now
    /// (and, for a pinned version other than the newest, the newest version's policy too).
    ///
    /// # Errors
    /// Session or token errors; [`BrokerError::NotFound`]; [`BrokerError::PolicyDeny`]; store and
    /// release failures.
    pub async fn resource(
        &self,
        credential: Credential<'_>,
        path: &str,
        query: Option<&str>,
    ) -> Result<Value, BrokerError> {
        let record = match credential {
            Credential::Session(id) => {
                let session =
                    SessionId::parse(id).ok_or(BrokerError::Session("malformed session id"))?;
                self.attested(&session).await?
            }
            Credential::Bearer(token) => self.session_of_token(token).await?,
        };
        let resource =
            ResourcePath::parse(path).map_err(|_| BrokerError::NotFound(printable_prefix(path)))?;
        let version = pinned_version(query)
            .map_err(|_| {
                BrokerError::Request(RequestError::Field {
                    endpoint: "resource",
                    field: "version",
                    reason: "must be a positive integer",
                })
            })?
            .map(u64::from);
        // What the release reads can change before its entry is written (a delete, a new
        // version): then it is judged again on what the store holds now.
        for _ in 0..RELEASE_ATTEMPTS {
            if let Some(answer) = self.release_once(&record, &resource, version).await? {
                return Ok(answer);
            }
        }
        let mut ev = self.event("guest", AuditAction::Deny, AuditVerdict::Fail);
        ev.resource = Some(resource.to_string());
        ev.evidence_digest = Some(record.evidence_digest.clone());
        ev.reason = "the resource changed during every attempt to release it".into();
        self.audit(ev).await;
        Err(BrokerError::Contended(resource.to_string()))
    }

    /// One attempt at a release: the version's (and the newest version's) policies judge the
    /// session's evidence, and the release entry is written with a check that what was read
    /// still holds ([`Store::append_release`]); `None` when it no longer does.
    async fn release_once(
        &self,
        record: &AttestedRecord,
        resource: &ResourcePath,
        version: Option<u64>,
    ) -> Result<Option<Value>, BrokerError> {
        let store = self.inner.store.as_ref();
        let newest = store::version_with_policy(store, resource, None).await?;
        // A pinned version other than the newest is released only when the newest version's
        // policy accepts the evidence too: putting a version under a stricter policy withdraws
        // the older versions from the workloads it excludes (its own policy still applies, so
        // pinning never loosens anything).
        let (found, newer) = match (version, newest) {
            (Some(v), Some(newest)) if newest.0.version != v => (
                store::version_with_policy(store, resource, Some(v)).await?,
                Some(newest),
            ),
            (_, newest) => (newest, None),
        };
        let Some((stored, policy_text)) = found else {
            let mut ev = self.event("guest", AuditAction::Deny, AuditVerdict::Fail);
            ev.resource = Some(resource.to_string());
            ev.evidence_digest = Some(record.evidence_digest.clone());
            ev.reason = "no such resource or version".into();
            self.audit(ev).await;
            return Err(BrokerError::NotFound(resource.to_string()));
        };
        let shown = format!("{resource}@{}", stored.version);
        // The policies the release needs, in order: the version's own, then (for a pinned
        // older version) the newest version's, named as such in the audit entry.
        let judges = std::iter::once((&stored, &policy_text, false))
            .chain(newer.as_ref().map(|(n, text)| (n, text, true)));
        let mut passed = Vec::new();
        for (judge, text, is_newest) in judges {
            let policy = self.policy(&judge.policy_digest, text)?;
            let appraisal = tessera::appraise(&record.verified, &policy);
            let policy_id = appraisal.policy_id();
            let whose = if is_newest {
                format!(" of the newest version ({})", judge.version)
            } else {
                String::new()
            };
            if appraisal.passed() {
                passed.push(if is_newest {
                    format!(
                        "policy {policy_id} of the newest version ({}, {}) passed",
                        judge.version, judge.policy_digest
                    )
                } else {
                    format!("policy {policy_id} passed")
                });
                continue;
            }
            // Each failed rule by name; a rule on the TEE itself (a policy with no section for
            // it) in full, since its name alone (`snp`) says nothing of why.
            let failed: Vec<String> = appraisal
                .failures()
                .map(|r| {
                    if r.field == "TEE" {
                        r.message()
                    } else {
                        r.rule.to_string()
                    }
                })
                .collect();
            let failed = failed.join(", ");
            let mut ev = self.event("guest", AuditAction::Deny, AuditVerdict::Fail);
            ev.resource = Some(shown.clone());
            ev.evidence_digest = Some(record.evidence_digest.clone());
            ev.policy_digest = Some(judge.policy_digest.to_string());
            ev.reason = format!("policy {policy_id}{whose} failed: {failed}");
            self.audit(ev).await;
            return Err(BrokerError::PolicyDeny {
                resource: shown,
                policy_id: policy_id.to_owned(),
                failed,
            });
        }
        let ring = self.inner.keyring.current();
        // The newest version's policy gated a pinned older one: it counts only if that row
        // opens (its AAD binds the digest), so that a database writer who changes the newest
        // row's policy digest does not open the gate. (Deleting that row is a rollback the
        // README names.)
        if let Some((n, _)) = &newer {
            match store::open_stored(&ring, n) {
                Ok(value) => drop(value),
                Err(e) => return self.unopened(record, resource, n.version, &e).await,
            }
        }
        let value = match store::open_stored(&ring, &stored) {
            Ok(value) => value,
            Err(e) => return self.unopened(record, resource, stored.version, &e).await,
        };
        let sealed = jwe::encrypt(&record.tee_key, value.expose())
            .map_err(|e| BrokerError::Release(e.to_string()))?;
        drop(value);
        let basis = ReleaseBasis {
            resource: resource.clone(),
            version: stored.version,
            policy_digest: stored.policy_digest.clone(),
            newest: newer.as_ref().map_or(stored.version, |(n, _)| n.version),
        };
        let mut ev = self.event("guest", AuditAction::Release, AuditVerdict::Pass);
        ev.resource = Some(shown);
        ev.evidence_digest = Some(record.evidence_digest.clone());
        ev.policy_digest = Some(stored.policy_digest.to_string());
        ev.reason = format!(
            "{}{}",
            passed.join(", and "),
            test_root_note(&record.verified)
        );
        let recorded = self
            .inner
            .store
            .append_release(ev.bounded(), &basis)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "audit append failed");
                BrokerError::Store(e)
            })?;
        Ok(recorded.map(|_| store_json(&sealed)))
    }

    /// A version a release read did not open. Under a KEK this broker's rotation retired after
    /// the read (the rotation re-wrapped it meanwhile), or while this broker's keyring is in a
    /// rotation: `None`, so that the release reads it again. Under a KEK this broker does not
    /// hold and never retired (put by a broker with another KEK file, which its start refuses
    /// since the store keeps a key check, or its KEK id changed in the database), or changed
    /// in the database otherwise (its AAD binds its resource, version and policy digest): the
    /// release is refused, with an audit entry that says which.
    async fn unopened(
        &self,
        record: &AttestedRecord,
        resource: &ResourcePath,
        version: u64,
        e: &SealError,
    ) -> Result<Option<Value>, BrokerError> {
        let reason = match e {
            SealError::UnknownKek { kek_id } => {
                // Only this broker's own rotation retires a KEK while it runs (a rotation
                // holds the keyring file alone, and is refused on a store replicas share).
                let ring = self.inner.keyring.current();
                // (While it rotates, the keyring holds the old KEK and the new: a KEK it
                // does not hold then was never its own.)
                if ring.retired_recently(kek_id) {
                    return Ok(None);
                }
                format!(
                    "the stored version is sealed under KEK `{kek_id}`, which this broker does \
                     not hold (its keyring holds {}): put by a broker with another KEK \
                     file, or changed in the database",
                    crate::store::held_ids(&ring)
                )
            }
            _ => format!("the stored version does not open: {e}"),
        };
        let mut ev = self.event("guest", AuditAction::Deny, AuditVerdict::Fail);
        ev.resource = Some(format!("{resource}@{version}"));
        ev.evidence_digest = Some(record.evidence_digest.clone());
        ev.reason = reason;
        self.audit(ev).await;
        Err(BrokerError::Release(e.to_string()))
    }

    // ---------------------------------------------------------------------------------------
    // Admin operations.

    /// Audits and returns the refusal of `what` to `actor`. `target` is the repository or
    /// resource the request reached for, when it names one: the entry carries it as its
    /// resource, so that the audit pages of that repository's own admins show the probe.
    async fn refuse(&self, actor: &Actor, what: String, target: Option<String>) -> BrokerError {
        let mut ev = self.event(actor.name(), AuditAction::AdminDeny, AuditVerdict::Fail);
        ev.resource = target;
        ev.reason = what.clone();
        self.audit(ev).await;
        BrokerError::AdminScope {
            actor: actor.name().to_owned(),
            what,
        }
    }

    /// Admin: whether `actor` may do `what` (`put REPO/TYPE/TAG`, `set the policy of REPO`) in
    /// repository `repo`, asked before the request's body is read: a refusal is audited even
    /// when the body would have been too large or too slow, so that a probe of another
    /// repository cannot avoid the log. A repo that is no repository's name is left for the
    /// operation to refuse.
    ///
    /// # Errors
    /// [`BrokerError::AdminScope`] (audited).
    pub async fn admin_scope(
        &self,
        actor: &Actor,
        repo: &str,
        what: &str,
    ) -> Result<(), BrokerError> {
        if crate::resource::check_repo(repo).is_ok() && !actor.may_use(repo) {
            return Err(self
                .refuse(actor, what.to_owned(), Some(repo.to_owned()))
                .await);
        }
        Ok(())
    }

    async fn admin_resource(
        &self,
        actor: &Actor,
        path: &str,
        op: &str,
    ) -> Result<ResourcePath, BrokerError> {
        let resource =
            ResourcePath::parse(path).map_err(|e| BrokerError::AdminRequest(e.to_string()))?;
        if !actor.may_use(resource.repo()) {
            return Err(self
                .refuse(
                    actor,
                    format!("{op} {resource}"),
                    Some(resource.to_string()),
                )
                .await);
        }
        Ok(resource)
    }

    /// Admin: puts a new version of a secret (`{"policy", "value"}` or `{"policy", "generate"}`;
    /// without `policy`, the repository's default policy).
    ///
    /// # Errors
    /// A malformed body or policy, a scope violation, store failures.
    pub async fn admin_put(
        &self,
        actor: &Actor,
        path: &str,
        body: &[u8],
    ) -> Result<Value, BrokerError> {
        let resource = self.admin_resource(actor, path, "put").await?;
        let put = decode_put(body).map_err(|e| BrokerError::AdminRequest(e.0))?;
        let value = match put.secret {
            PutSecret::Value(value) => value,
            PutSecret::Generate(n) => {
                SecretValue::generate(n).map_err(|e| BrokerError::Release(e.to_string()))?
            }
        };
        if let Some(text) = &put.policy {
            admitted_policy(text, "policy")?;
        }
        let by = ChangeBy {
            actor: actor.name(),
            note: "",
            origin: None,
        };
        let outcome = self
            .put_secret(&resource, put.policy.as_deref(), &value, by)
            .await
            .map_err(put_error)?;
        Ok(json!({
            "resource": resource.to_string(),
            "version": outcome.version,
            "policy_digest": outcome.policy_digest,
            "kek_id": outcome.kek_id,
        }))
    }

    /// Admin: sets a repository's default policy (used by puts that name none).
    ///
    /// # Errors
    /// A malformed policy, a scope violation, store failures.
    pub async fn admin_set_repo_policy(
        &self,
        actor: &Actor,
        repo: &str,
        policy: &str,
    ) -> Result<Value, BrokerError> {
        check_repo(repo).map_err(|e| BrokerError::AdminRequest(e.to_string()))?;
        if !actor.may_use(repo) {
            return Err(self
                .refuse(
                    actor,
                    format!("set the policy of {repo}"),
                    Some(repo.to_owned()),
                )
                .await);
        }
        store::check_policy_size(policy).map_err(|e| BrokerError::AdminRequest(e.to_string()))?;
        admitted_policy(policy, "policy")?;
        let now_ms = self.now_ms();
        let digest = self.inner.store.put_policy(policy, now_ms).await?;
        let mut ev = self.event(actor.name(), AuditAction::AdminPolicy, AuditVerdict::Pass);
        ev.resource = Some(repo.to_owned());
        ev.policy_digest = Some(digest.to_string());
        ev.reason = "repository default policy set".into();
        // Under the active KEK, with no rotation in between (see `Inner::rotation`): the
        // rotation re-makes the MACs it finds before it retires the old KEK.
        let _no_rotation = self.inner.rotation.read().await;
        let record = RepoPolicy::new(
            &self.inner.keyring.current(),
            self.inner.store.identity(),
            repo,
            digest.clone(),
        )?;
        self.inner
            .store
            .set_repo_policy(repo, Some(&record), now_ms, ev)
            .await?;
        Ok(json!({ "repo": repo, "policy_digest": digest }))
    }

    /// Admin: deletes one version (`?version=N`) or every version of a resource.
    ///
    /// # Errors
    /// A malformed path, a scope violation, no such resource, store failures.
    pub async fn admin_delete(
        &self,
        actor: &Actor,
        path: &str,
        query: Option<&str>,
    ) -> Result<Value, BrokerError> {
        let resource = self.admin_resource(actor, path, "delete").await?;
        let version = delete_version(query)
            .map_err(|_| {
                BrokerError::AdminRequest(
                    "delete query: version=N (a positive integer) or none, which deletes \
                     every version"
                        .into(),
                )
            })?
            .map(u64::from);
        let mut ev = self.event(actor.name(), AuditAction::AdminDelete, AuditVerdict::Pass);
        ev.resource = Some(resource.to_string());
        let deleted = self
            .inner
            .store
            .delete_versions(&resource, version, ev)
            .await?;
        if deleted.is_empty() {
            return Err(BrokerError::NotFound(resource.to_string()));
        }
        Ok(json!({ "resource": resource.to_string(), "deleted_versions": deleted }))
    }

    /// Admin: a page of the live versions (never values), of one repository or of every
    /// repository the actor may manage: up to `limit` ([`MAX_LIST_PAGE`] at most and by
    /// default) after the resource and version `after`, with `next_after`, where the next page
    /// starts (null once a page comes back short: the end).
    ///
    /// # Errors
    /// A scope violation, store failures.
    pub async fn admin_list(
        &self,
        actor: &Actor,
        repo: Option<&str>,
        after: Option<(&str, u64)>,
        limit: Option<u32>,
    ) -> Result<Value, BrokerError> {
        if let Some(repo) = repo {
            check_repo(repo).map_err(|e| BrokerError::AdminRequest(e.to_string()))?;
            if !actor.may_use(repo) {
                return Err(self
                    .refuse(actor, format!("list {repo}"), Some(repo.to_owned()))
                    .await);
            }
        }
        let limit = limit.unwrap_or(MAX_LIST_PAGE).clamp(1, MAX_LIST_PAGE);
        // The scope is part of the query: every row read is the actor's to see, so a page's
        // `next_after` never names another tenant's resource.
        let scope = match repo {
            Some(repo) => Some(vec![repo.to_owned()]),
            None => actor.repos().map(<[String]>::to_vec),
        };
        let versions = self
            .inner
            .store
            .list_versions(scope.as_deref(), after, limit)
            .await?;
        let next_after = last_of_full_page(&versions, limit)
            .map(|v| json!({ "resource": v.resource, "version": v.version }));
        Ok(json!({ "versions": versions, "next_after": next_after }))
    }

    /// Seals and stores a new version under the active KEK, with its audit entry and no KEK
    /// rotation in between (see `Inner::rotation`).
    async fn put_secret(
        &self,
        resource: &ResourcePath,
        policy_text: Option<&str>,
        value: &SecretValue,
        by: ChangeBy<'_>,
    ) -> Result<store::PutOutcome, StoreError> {
        let _no_rotation = self.inner.rotation.read().await;
        store::put_secret(
            self.inner.store.as_ref(),
            &self.inner.keyring.current(),
            resource,
            policy_text,
            value,
            self.now_ms(),
            by,
        )
        .await
    }

    /// Admin: rotates the key-encryption key, re-wrapping every data key (global actors only;
    /// not on a store replicas share, see [`Store::shared_by_replicas`]).
    ///
    /// # Errors
    /// A scoped actor; a shared store; store and keyring failures.
    pub async fn admin_rotate_kek(&self, actor: &Actor) -> Result<Value, BrokerError> {
        if !actor.is_global() {
            return Err(self.refuse(actor, "rotate the KEK".into(), None).await);
        }
        if self.inner.store.shared_by_replicas() {
            return Err(BrokerError::AdminRequest(KEK_ROTATION_SHARED.into()));
        }
        // One at a time: a rotation may outlive the request that started it (the server
        // answers 202 past its deadline), and a second request then would only queue another
        // whole rotation behind it.
        let Ok(_running) = self.inner.kek_rotating.try_lock() else {
            return Err(BrokerError::AdminRequest(
                "a KEK rotation is already running; the audit log records its end".into(),
            ));
        };
        let _no_put_in_flight = self.inner.rotation.write().await;
        let report = self
            .audited_rotation(
                actor,
                AuditAction::AdminKekRotate,
                "KEK rotation",
                store::rotate_kek(self.inner.store.as_ref(), &self.inner.keyring, || {
                    self.now()
                }),
                |report| {
                    let mut text = format!(
                        "active KEK {}, {} versions re-wrapped, {} retired",
                        report.kek_id.as_str(),
                        report.rewrapped,
                        report.retired.len(),
                    );
                    if report.repo_policies_unauthentic > 0 {
                        text.push_str(&format!(
                            ", {} repository default policies left without a valid MAC",
                            report.repo_policies_unauthentic
                        ));
                    }
                    if report.resumed {
                        text.push_str(" (an unfinished rotation finished)");
                    }
                    text
                },
            )
            .await?;
        Ok(json!({
            "kek_id": report.kek_id.as_str(),
            "rewrapped": report.rewrapped,
            "retired": report.retired.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "resumed": report.resumed,
            "repo_policies": report.repo_policies,
            "repo_policies_unauthentic": report.repo_policies_unauthentic,
        }))
    }

    /// Admin: audit entries after `after` (global actors see all; scoped actors the entries of
    /// their repositories), and `next_after`: the `after` of the next page (null at the end).
    ///
    /// # Errors
    /// Store failures.
    pub async fn admin_audit(
        &self,
        actor: &Actor,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Value, BrokerError> {
        let limit = limit.unwrap_or(MAX_AUDIT_PAGE).clamp(1, MAX_AUDIT_PAGE);
        let (entries, damaged) = crate::store::audit_entries_until_damage(
            self.inner.store.as_ref(),
            after.unwrap_or(0),
            limit,
        )
        .await?;
        // Where the next page starts: the last entry read, shown or not, so that a scoped
        // actor whose page was all other repositories' entries still moves on; none once a
        // page comes back short (the end). A page cut short by a row that does not read (see
        // `audit_entries_until_damage`) is not the end: the next page starts at that row, and
        // its error.
        let next_after = if damaged {
            entries.last()
        } else {
            last_of_full_page(&entries, limit)
        }
        .map(|e| e.seq);
        let visible: Vec<_> = entries
            .into_iter()
            .filter(|e| {
                actor.is_global()
                    || e.event
                        .resource
                        .as_deref()
                        .and_then(|r| r.split(['/', '@']).next())
                        .is_some_and(|repo| actor.may_use(repo))
            })
            .map(|mut e| {
                // A scoped page carries no hashes: an entry's hash is a keyless digest of its
                // fields and its predecessor's hash, so the hashes around another
                // repository's entry would let it be guessed offline (its resource, actor,
                // policy digest, the length of its value). Nor could they be checked, with
                // entries left out.
                if !actor.is_global() {
                    e.prev_hash.clear();
                    e.hash.clear();
                }
                e
            })
            .collect();
        // `scoped`: the entries of other repositories are left out, so the page cannot be
        // verified as a chain (`tessera audit verify` refuses to try).
        Ok(json!({
            "entries": visible,
            "next_after": next_after,
            "scoped": !actor.is_global(),
        }))
    }

    // ---------------------------------------------------------------------------------------
    // Secrets sealed for Git.

    /// Admin: imports a secret sealed offline to the broker's sealing key (a compact JWE naming
    /// its resource and policy). Idempotent: the same sealed file again, when the newest
    /// version came from it, changes nothing (a file sealed anew, even of the same value, makes
    /// a new version). With `expected`, the sealed resource must be that path.
    ///
    /// # Errors
    /// A malformed, tampered or foreign sealed secret; another path than `expected`; a scope
    /// violation; store failures.
    pub async fn admin_put_sealed(
        &self,
        actor: &Actor,
        expected: Option<&str>,
        sealed: &[u8],
    ) -> Result<Value, BrokerError> {
        let text = std::str::from_utf8(sealed)
            .map_err(|_| BrokerError::AdminRequest("sealed secret: not UTF-8 text".into()))?;
        let unsealed = {
            let keys = self
                .inner
                .sealing
                .as_ref()
                .ok_or_else(|| BrokerError::AdminRequest("this broker has no sealing key".into()))?
                .lock()
                .map_err(|_| BrokerError::Release("sealing keys unavailable".into()))?;
            keys.unseal(text)
                .map_err(|e: GitSealError| BrokerError::AdminRequest(e.to_string()))?
        };
        let resource = unsealed.resource.clone();
        // Scope first: an attempt on another tenant's resource is refused and audited as such,
        // whatever path the caller expected.
        if !actor.may_use(resource.repo()) {
            return Err(self
                .refuse(
                    actor,
                    format!("import a sealed secret for {resource}"),
                    Some(resource.to_string()),
                )
                .await);
        }
        if let Some(expected) = expected
            && expected != resource.to_string()
        {
            return Err(BrokerError::AdminRequest(format!(
                "sealed for {resource}, not {}",
                expected.chars().take(400).collect::<String>()
            )));
        }
        admitted_policy(&unsealed.policy, "sealed policy")?;
        // Idempotent by the file, not the value: a newest version imported from this very
        // file (its text's digest) is kept. Comparing values instead would tell whoever
        // imports whether a value they sealed equals the stored secret, one guess at a time.
        let origin = unsealed.file_digest.as_str();
        let answer = |version: u64, policy_digest: &PolicyDigest, unchanged: bool| {
            json!({
                "resource": resource.to_string(),
                "version": version,
                "policy_digest": policy_digest,
                "unchanged": unchanged,
            })
        };
        if let Some(current) = self.inner.store.get_version(&resource, None).await?
            && store::holds_import(
                current.origin.as_deref(),
                current.policy_digest.as_str(),
                origin,
                unsealed.policy_digest.as_str(),
            )
        {
            return Ok(answer(current.version, &current.policy_digest, true));
        }
        let note = format!("sealed secret imported (sealing key {})", unsealed.kid);
        let by = ChangeBy {
            actor: actor.name(),
            note: &note,
            origin: Some(origin),
        };
        match self
            .put_secret(&resource, Some(&unsealed.policy), &unsealed.value, by)
            .await
        {
            Ok(outcome) => Ok(answer(outcome.version, &outcome.policy_digest, false)),
            // Another import of this file got in between the check above and this put.
            Err(StoreError::SameOrigin { version, .. }) => {
                Ok(answer(version, &unsealed.policy_digest, true))
            }
            Err(e) => Err(put_error(e)),
        }
    }

    /// Admin: a new sealing key (new seals use it; older ones still open). Global actors only;
    /// not on a store replicas share (each reads its sealing keys once, at start: one
    /// replica's rotation would go unseen by the others, and a second replica's would write
    /// its own set over the file, losing the first's key).
    ///
    /// # Errors
    /// A scoped actor; a shared store; no sealing keys; the key file.
    pub async fn admin_rotate_sealing_key(&self, actor: &Actor) -> Result<Value, BrokerError> {
        if !actor.is_global() {
            return Err(self
                .refuse(actor, "rotate the sealing key".into(), None)
                .await);
        }
        if self.inner.store.shared_by_replicas() {
            return Err(BrokerError::AdminRequest(SEALING_ROTATION_SHARED.into()));
        }
        let sealing =
            self.inner.sealing.as_ref().ok_or_else(|| {
                BrokerError::AdminRequest("this broker has no sealing key".into())
            })?;
        let rotate = async {
            let mut keys = sealing
                .lock()
                .map_err(|_| BrokerError::Release("sealing keys unavailable".into()))?;
            // Another broker's change is a refusal (400, the reason in the log), not a fault.
            let kid = keys.rotate(self.now_ms()).map_err(|e| match e {
                e @ GitSealError::ChangedByAnother { .. } => {
                    BrokerError::AdminRequest(e.to_string())
                }
                e => BrokerError::Release(e.to_string()),
            })?;
            Ok::<_, BrokerError>((kid, keys.public_keys()))
        };
        let (_, public) = self
            .audited_rotation(
                actor,
                AuditAction::AdminSealingKeyRotate,
                "sealing key rotation",
                rotate,
                |(kid, _)| format!("sealing key rotated: new key {kid}"),
            )
            .await?;
        Ok(public)
    }

    /// Admin: the Confidential Containers sealed secret (`sealed.` + a signed `vault` pointer)
    /// for a resource, so a Kubernetes Secret can carry it and an unchanged confidential-data-hub
    /// resolves it. The public key verifying it is kept as the resource
    /// `REPO/sealed-secret/signing-jwk-<first 24 hex digits of the policy digest>` under the
    /// same policy as the resource's newest version: one per policy, so sealing a resource under
    /// another policy never takes the key away from the workloads of the first.
    ///
    /// # Errors
    /// A scope violation, an unknown resource, no signing key, store failures.
    pub async fn admin_coco_sealed(&self, actor: &Actor, path: &str) -> Result<Value, BrokerError> {
        let resource = self.admin_resource(actor, path, "seal for CoCo").await?;
        let signer = self.inner.coco.as_ref().ok_or_else(|| {
            BrokerError::AdminRequest("this broker has no CoCo signing key".into())
        })?;
        let (current, policy) =
            store::version_with_policy(self.inner.store.as_ref(), &resource, None)
                .await?
                .ok_or_else(|| BrokerError::NotFound(resource.to_string()))?;
        // The version's policy digest is taken for the key's own version only once the row
        // opens (its AAD binds the digest): a row written into the database by anyone but the
        // broker does not choose the policy the key is stored under.
        drop(
            store::open_stored(&self.inner.keyring.current(), &current)
                .map_err(|e| BrokerError::Release(e.to_string()))?,
        );
        let (kind, tag) = COCO_SIGNING_JWK_TYPE_TAG;
        let digest = current.policy_digest.as_str();
        let short = digest
            .strip_prefix("sha384:")
            .and_then(|hex| hex.get(..24))
            .unwrap_or(digest);
        let jwk_path = ResourcePath::new(resource.repo(), kind, &format!("{tag}-{short}"))
            .map_err(|e| BrokerError::AdminRequest(e.to_string()))?;
        let jwk = signer.public_jwk().to_string();
        let stored = store::version_with_policy(self.inner.store.as_ref(), &jwk_path, None).await?;
        let up_to_date = match &stored {
            Some((rec, _)) if rec.policy_digest == current.policy_digest => {
                let value = store::open_stored(&self.inner.keyring.current(), rec)
                    .map_err(|e| BrokerError::Release(e.to_string()))?;
                value.expose() == jwk.as_bytes()
            }
            _ => false,
        };
        if !up_to_date {
            let by = ChangeBy {
                actor: actor.name(),
                note: "CoCo sealed-secret verification key",
                origin: None,
            };
            self.put_secret(
                &jwk_path,
                Some(&policy),
                &SecretValue::new(jwk.into_bytes()),
                by,
            )
            .await?;
        }
        let kid = format!("kbs:///{jwk_path}");
        let sealed = signer
            .sealed_pointer(&resource, &kid)
            .map_err(|e| BrokerError::Release(e.to_string()))?;
        Ok(json!({ "resource": resource.to_string(), "sealed": sealed, "kid": kid }))
    }
}

/// The last row of a page that holds `limit` rows, where the next page starts; none for a
/// shorter page (the last).
fn last_of_full_page<T>(rows: &[T], limit: u32) -> Option<&T> {
    rows.last()
        .filter(|_| u32::try_from(rows.len()).is_ok_and(|n| n == limit))
}

/// What an audit reason adds when a `dangerous_` test root (a simulator's, configured with
/// `--dangerous-test-root`) anchored the evidence instead of a vendor's root, so that the log
/// shows which attestations and releases rested on one.
fn test_root_note(verified: &VerifiedEvidence) -> &'static str {
    if verified.dangerous_test_root() {
        " (anchored by a dangerous test root, not a vendor's)"
    } else {
        ""
    }
}

/// How many times a release is judged again when what it read changed before its entry was
/// written (a delete or a new version committing at that moment).
const RELEASE_ATTEMPTS: usize = 3;

/// Why the admin sealing-key rotation is refused on a store replicas share, and what to do
/// instead.
const SEALING_ROTATION_SHARED: &str = "the sealing keys of brokers sharing a PostgreSQL \
    store are not rotated online (each replica reads the key file once, at start): add the \
    new key as the last entry of the file every replica reads, keep the old ones, and restart \
    the replicas";

/// Why the admin KEK rotation is refused on a store replicas share, and what to do instead.
const KEK_ROTATION_SHARED: &str = "the KEK of brokers sharing a PostgreSQL store is not \
    rotated online (each replica keeps its own copy of the keyring): add a key to the keyring \
    file every replica reads, name it active, keep the old keys, and restart the replicas";

/// A put's error as the admin sees it: what the request got wrong (no policy, a policy or a
/// value of the wrong size) is the caller's (400); the rest is the store's (500).
fn put_error(e: StoreError) -> BrokerError {
    match e {
        StoreError::NoPolicy { .. } | StoreError::PolicySize { .. } => {
            BrokerError::AdminRequest(e.to_string())
        }
        StoreError::RepoPolicyUnauthenticated { ref repo } => {
            tracing::warn!(
                repo = %printable_prefix(repo),
                "a repository's default policy in the store does not carry a MAC this keyring \
                 confirms; the put that would have used it was refused"
            );
            BrokerError::AdminRequest(e.to_string())
        }
        StoreError::Seal(s) => BrokerError::AdminRequest(s.to_string()),
        other => BrokerError::Store(other),
    }
}

/// A stored session that cannot be rebuilt: logged with its reason, and refused as a session
/// that is not attested (401), so that the guest attests again (guests give up on a 500).
fn unusable_session(e: &BrokerError) -> BrokerError {
    tracing::warn!(reason = %e, "a stored session was refused");
    BrokerError::Session("the stored session could not be rebuilt")
}

/// A stored session record that cannot be used as it is.
fn corrupt(what: &str) -> BrokerError {
    BrokerError::Release(format!("stored session: {what}"))
}

/// What a stored session record holds.
struct SavedEvidence {
    evidence: Evidence,
    /// When it was verified (Unix seconds).
    verified_at: i64,
    /// The `additional-evidence` of the request (bound in REPORT_DATA; empty when none).
    additional_evidence: String,
}

/// The session record `/attest` stores: the evidence in compact form when it has one, else as
/// it came (both JSON text, embedded as they are), when it was verified, and the additional
/// evidence as a JSON string (`additional_json`; empty when there is none). Read back by
/// [`stored_evidence`].
fn session_record(
    evidence_text: &str,
    compact: Option<&str>,
    verified_at: i64,
    additional_json: &str,
) -> String {
    let additional = if additional_json.is_empty() {
        String::new()
    } else {
        format!(r#","additional_evidence":{additional_json}"#)
    };
    match compact {
        Some(c) => format!(r#"{{"evidence_c":{c},"verified_at":{verified_at}{additional}}}"#),
        None => {
            format!(r#"{{"evidence":{evidence_text},"verified_at":{verified_at}{additional}}}"#)
        }
    }
}

/// Fuzz harness (target `session_record`): [`tessera::compact::fuzz_record`] on the input,
/// then [`stored_agrees_with_attest`].
#[doc(hidden)]
pub fn fuzz_session_record(data: &[u8]) {
    tessera::compact::fuzz_record(data);
    stored_agrees_with_attest(data);
}

/// Oracle (fuzz harness and tests): `data`, when it is one JSON value (all `/attest` takes as
/// evidence), stored as a session's evidence by [`session_record`] as it came and in compact
/// form, reads back through [`stored_evidence`] as `/attest` decodes it
/// ([`decode_evidence`]) for each TEE: the same evidence or a refusal in both, the time and
/// the additional evidence as written.
#[doc(hidden)]
#[allow(clippy::panic)] // oracle: a failed check is the finding
pub fn stored_agrees_with_attest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if serde_json::from_str::<&serde_json::value::RawValue>(text).is_err() {
        return;
    }
    let Some(session_id) = SessionId::parse(&"A".repeat(56)) else {
        panic!("a well-formed session id refused");
    };
    let compact = tessera::compact::encode_text(text);
    let additional = text.get(..text.len().min(12)).unwrap_or("");
    let additional_json = serde_json::to_string(additional).unwrap_or_default();
    for tee in [TeeName::Snp, TeeName::Tdx, TeeName::Sgx] {
        for c in [None, compact.as_deref()] {
            let stored = AttestedSession {
                session_id: session_id.clone(),
                tee: tee.as_str().into(),
                tee_pubkey: "{}".into(),
                token_digest: String::new(),
                claims: session_record(text, c, 7, &additional_json),
                evidence_digest: String::new(),
                attested_ms: 0,
                expires_ms: 1,
            };
            match (stored_evidence(&stored), decode_evidence(tee, text, c)) {
                (Ok(saved), Ok(fresh)) => {
                    let e = &saved.evidence;
                    assert_eq!(
                        (e.tee(), e.form(), e.digest(), e.signed_evidence()),
                        (
                            fresh.tee(),
                            fresh.form(),
                            fresh.digest(),
                            fresh.signed_evidence()
                        ),
                        "a stored session reads other evidence than /attest"
                    );
                    assert_eq!(saved.verified_at, 7);
                    assert_eq!(saved.additional_evidence, additional);
                }
                (Err(_), Err(_)) => {}
                (stored, fresh) => panic!(
                    "stored {:?} but /attest {:?}",
                    stored.map(|_| ()),
                    fresh.map(|_| ())
                ),
            }
        }
    }
}

/// The evidence a stored session record holds, when it was verified, and the additional
/// evidence bound with it. The evidence is decoded as `/attest` decodes it (see
/// `decode_evidence`): a JSON tree is built only when its text holds at most
/// `MAX_EVIDENCE_JSON_VALUES` values, so a record edited in the database cannot make one of
/// any size.
fn stored_evidence(stored: &AttestedSession) -> Result<SavedEvidence, BrokerError> {
    #[derive(Deserialize)]
    struct Saved {
        evidence: Option<Box<serde_json::value::RawValue>>,
        evidence_c: Option<Box<serde_json::value::RawValue>>,
        verified_at: i64,
        #[serde(default)]
        additional_evidence: String,
    }
    let saved: Saved =
        serde_json::from_str(&stored.claims).map_err(|_| corrupt("record is malformed"))?;
    let evidence = match (saved.evidence, saved.evidence_c) {
        (Some(text), None) => Evidence::from_kbs_text(&stored.tee, text.get()),
        (None, Some(c)) => Evidence::from_kbs_compact(&stored.tee, c.get()),
        _ => return Err(corrupt("record is malformed")),
    }
    .map_err(|e| corrupt(&format!("evidence: {e}")))?;
    Ok(SavedEvidence {
        evidence,
        verified_at: saved.verified_at,
        additional_evidence: saved.additional_evidence,
    })
}

/// The evidence of `/attest`, for the TEE its challenge names: from its compact text when it has
/// one (`tessera::compact`; the same evidence or error as from the text), else from the text.
/// Failures are the reason, for the audit log.
fn decode_evidence(tee: TeeName, text: &str, compact: Option<&str>) -> Result<Evidence, String> {
    // Either path builds a JSON tree only when the text's value count is bounded
    // (`tessera::MAX_EVIDENCE_JSON_VALUES`; the body's size alone does not bound the tree).
    match compact {
        Some(c) => Evidence::from_kbs_compact(tee.as_str(), c),
        None => Evidence::from_kbs_text(tee.as_str(), text),
    }
    .map_err(|e| e.to_string())
}

/// A policy an admin gives the broker to keep: one that loads, and holds its values rather
/// than naming reference files, which the broker cannot read (the rule would fail every
/// release; `tessera secret put` inlines them). `what` names it in the refusal.
fn admitted_policy(text: &str, what: &str) -> Result<Policy, BrokerError> {
    let policy =
        Policy::from_text(text).map_err(|e| BrokerError::AdminRequest(format!("{what}: {e}")))?;
    if policy.names_reference_files() {
        return Err(BrokerError::AdminRequest(format!(
            "{what}: names a reference file, which the broker cannot read: give the values \
             (tessera secret put inlines its files)"
        )));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    /// A broker in a temporary directory, a global admin and a current-thread runtime.
    fn on_one_thread() -> (tempfile::TempDir, Broker, Actor, tokio::runtime::Runtime) {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (dir, b, Actor::new("root".into(), None), rt)
    }

    fn broker(dir: &std::path::Path) -> Broker {
        let store = crate::store::SqliteStore::open_blocking(dir).unwrap();
        let keyring =
            KeyringFile::open_or_create(&dir.join("kek"), crate::keyfile::Symlinks::Refuse)
                .unwrap();
        Broker::new(
            Arc::new(store),
            Arc::new(keyring),
            Verifier::new().unwrap(),
            SigningKey::generate(tessera_policy::ear::Alg::Es256).unwrap(),
            BrokerOptions::default(),
        )
        .unwrap()
    }

    /// The parsed-policy cache is bounded by its policies' text as well as by their number.
    #[test]
    fn the_policy_cache_is_bounded_by_text() {
        let policy = Arc::new(Policy::from_toml_str(TOKEN_POLICY).unwrap());
        let mut c = PolicyCache::default();
        let half = MAX_CACHED_POLICY_TEXT / 2;
        c.insert("a", Arc::clone(&policy), half);
        c.insert("b", Arc::clone(&policy), half);
        assert_eq!((c.parsed.len(), c.text_bytes), (2, MAX_CACHED_POLICY_TEXT));
        // Again under a digest it holds: nothing changes.
        c.insert("b", Arc::clone(&policy), half);
        assert_eq!(c.parsed.len(), 2);
        // One byte more than the bound: emptied first.
        c.insert("c", Arc::clone(&policy), 1);
        assert_eq!((c.parsed.len(), c.text_bytes), (1, 1));
        assert!(c.parsed.contains_key("c"));
        for i in 0..MAX_CACHED_POLICIES {
            c.insert(&format!("n{i}"), Arc::clone(&policy), 1);
        }
        assert!(c.parsed.len() <= MAX_CACHED_POLICIES);
    }

    /// The session cache: bounded, oldest out first, purged of expired entries in both its
    /// map and its order (which would otherwise grow with every session ever cached).
    #[test]
    fn the_session_cache_is_bounded_and_drops_the_oldest_first() {
        let mut c = Fifo::new(3);
        for (k, v) in [("a", 1), ("b", 2), ("c", 3)] {
            c.insert(k.into(), v);
        }
        c.insert("d".into(), 4);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("a"), None, "the oldest left");
        assert_eq!(c.get("b"), Some(&2));
        // Replacing an entry keeps one place for it.
        c.insert("b".into(), 20);
        assert_eq!((c.len(), c.order.len()), (3, 3));
        assert_eq!(c.get("b"), Some(&20));
        // Purged: both halves shrink, and the next insertions evict in order.
        c.retain(|v| *v != 3);
        assert_eq!((c.len(), c.order.len()), (2, 2));
        c.insert("e".into(), 5);
        c.insert("f".into(), 6);
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("d"), Some(&4));
        assert_eq!((c.len(), c.order.len()), (3, 3));
        // Many purges of a small cache: the order never outgrows the map.
        for i in 0..1000 {
            c.insert(format!("k{i}"), i);
            c.retain(|v| *v % 2 == 0);
        }
        assert!(c.order.len() <= 3 && c.order.len() == c.len());
    }

    /// Evidence whose JSON would become a huge tree is refused before it is parsed; real
    /// forms, compacted or not, are far below the bound.
    #[test]
    fn evidence_with_too_many_json_values_is_refused_before_parsing() {
        let max = crate::protocol::MAX_EVIDENCE_JSON_VALUES;
        let wide = format!(r#"{{"quote":[{}0],"b64":1}}"#, "[],".repeat(max));
        assert_eq!(
            tessera::compact::encode_text(&wide),
            None,
            "kept as it came"
        );
        for tee in [TeeName::Snp, TeeName::Tdx] {
            let err = decode_evidence(tee, &wide, None).unwrap_err();
            assert!(err.contains("JSON values"), "{err}");
        }
        // Byte arrays the compact form collapses count as the bytes they decode to: a long
        // one is refused in compact form too (decoding it would make a value per byte).
        let bytes = format!("[{}0]", "7,".repeat(2 * max));
        let long = format!(r#"{{"report":{bytes}}}"#);
        let compact = tessera::compact::encode_text(&long).unwrap();
        assert!(compact.contains("b64") && compact.len() < long.len());
        for tee in [TeeName::Snp, TeeName::Tdx] {
            let err = decode_evidence(tee, &long, Some(&compact)).unwrap_err();
            assert!(err.contains("JSON values"), "{err}");
        }
        // Real evidence in compact form passes the count (and fails later, here, as made up).
        let short = format!(r#"{{"report":[{}0]}}"#, "7,".repeat(4000));
        let compact = tessera::compact::encode_text(&short).unwrap();
        let err = decode_evidence(TeeName::Snp, &short, Some(&compact)).unwrap_err();
        assert!(!err.contains("JSON values"), "{err}");
    }

    /// A session record edited in the database to hold evidence whose JSON would become a
    /// huge tree is refused as corrupt before it is parsed, in either form, as `/attest`
    /// refuses it.
    #[test]
    fn a_stored_session_with_too_many_json_values_is_refused_before_parsing() {
        let max = crate::protocol::MAX_EVIDENCE_JSON_VALUES;
        let wide = format!(r#"{{"quote":[{}0],"b64":1}}"#, "[],".repeat(max));
        let bytes = format!("[{}0]", "7,".repeat(2 * max));
        let long = tessera::compact::encode_text(&format!(r#"{{"report":{bytes}}}"#)).unwrap();
        for (tee, claims) in [
            ("snp", format!(r#"{{"evidence":{wide},"verified_at":1}}"#)),
            ("tdx", format!(r#"{{"evidence":{wide},"verified_at":1}}"#)),
            ("snp", format!(r#"{{"evidence_c":{long},"verified_at":1}}"#)),
        ] {
            let stored = AttestedSession {
                session_id: SessionId::parse(&"A".repeat(56)).unwrap(),
                tee: tee.into(),
                tee_pubkey: "{}".into(),
                token_digest: String::new(),
                claims,
                evidence_digest: String::new(),
                attested_ms: 0,
                expires_ms: 1,
            };
            let Err(e) = stored_evidence(&stored) else {
                panic!("{tee}: taken");
            };
            let text = e.to_string();
            assert!(
                text.contains("stored session: evidence") && text.contains("JSON values"),
                "{text}"
            );
        }
    }

    /// Credentials, cookies and tokens stay out of `Debug` (a `{:?}` in a log line one day).
    #[test]
    fn debug_forms_leave_credentials_out() {
        let secret = "c2VjcmV0LWNyZWRlbnRpYWwtdmFsdWU";
        for shown in [
            format!("{:?}", Credential::Session(secret)),
            format!("{:?}", Credential::Bearer(secret)),
            format!(
                "{:?}",
                ChallengeAnswer {
                    session_id: secret.into(),
                    response: Value::Null,
                    max_age_secs: 1,
                }
            ),
            format!(
                "{:?}",
                Attested {
                    token: secret.into(),
                    tee: TeeName::Snp,
                }
            ),
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn logged_paths_cannot_break_a_line() {
        let shown = printable_prefix("a/b/c\n2026-12-05 INFO forged\r\u{1b}[0m");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.starts_with("a/b/c\u{fffd}2026"));
        assert_eq!(printable_prefix(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn builders_configure_a_broker_not_yet_cloned() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path()).with_clock(Arc::new(|| UnixTime::from_secs(42)));
        assert_eq!(b.now().as_secs(), 42);
    }

    /// A KEK rotation started while a put is in flight (its version not yet stored) waits for
    /// it: the version is sealed under a KEK the keyring still holds, so it opens, and a later
    /// rotation finds nothing it cannot re-wrap. (Without the wait, the rotation found nothing
    /// to re-wrap and retired the KEK the put was sealing under.)
    #[test]
    fn a_kek_rotation_waits_for_the_puts_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path());
        let root = Actor::new("root".into(), None);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let body = serde_json::to_vec(&json!({
            "policy": TOKEN_POLICY,
            "value": STANDARD.encode("in flight"),
        }))
        .unwrap();
        rt.block_on(async {
            // Another process holds the write lock: the put takes the active KEK, then waits
            // for the database.
            let outside =
                rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
            outside.execute_batch("BEGIN IMMEDIATE").unwrap();
            let put = {
                let (b, root) = (b.clone(), root.clone());
                tokio::spawn(async move { b.admin_put(&root, "race/key/one", &body).await })
            };
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let rotation = {
                let (b, root) = (b.clone(), root.clone());
                tokio::spawn(async move { b.admin_rotate_kek(&root).await })
            };
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            outside.execute_batch("COMMIT").unwrap();
            put.await.unwrap().unwrap();
            rotation.await.unwrap().unwrap();
            b.admin_rotate_kek(&root).await.unwrap();
            let ring = b.inner.keyring.current();
            let resource = ResourcePath::parse("race/key/one").unwrap();
            let (rec, _) = store::version_with_policy(b.store().as_ref(), &resource, None)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                store::open_stored(&ring, &rec).unwrap().expose(),
                b"in flight"
            );
        });
    }

    /// The token's policy judges verification alone: the rules that fail closed when left out
    /// (an L2 VM's VMID, a KSS enclave's CONFIGID) are given as accepting everything, so that
    /// only a resource's policy decides on them.
    #[test]
    fn the_token_policy_leaves_nothing_to_fail_closed() {
        let p = Policy::from_toml_str(TOKEN_POLICY).unwrap();
        assert_eq!(
            p.tdx.as_ref().unwrap().vmids.as_deref(),
            Some(&[0, 1, 2, 3][..])
        );
        assert!(matches!(
            p.sgx.as_ref().unwrap().config_id,
            Some(tessera_policy::value::Setting::Any)
        ));
    }

    /// A release given up because the resource changed during every attempt is a retry
    /// (503), not an unknown resource (404, which the KBS protocol keeps for one that does not
    /// exist), and its detail names no resource.
    #[test]
    fn a_contended_release_is_unavailable_not_not_found() {
        let e = BrokerError::Contended(String::from("tenant/key/one"));
        assert_eq!(e.public(), PublicError::Unavailable);
        assert_eq!(e.public().status(), 503);
        assert!(!e.public().detail().contains("tenant"));
        assert_eq!(
            BrokerError::NotFound(String::from("tenant/key/one")).public(),
            PublicError::ResourceNotFound
        );
    }

    /// Two brokers on one data directory (a restart overlapping the old process, or two
    /// processes on a shared volume) share its keyring: neither rotates the KEK while the
    /// other runs (the other would go on sealing under the KEK the rotation retires), and the
    /// refusal is the admin's to resolve (400). Once the other is gone, the rotation runs.
    #[test]
    fn the_kek_is_not_rotated_while_another_broker_uses_the_keyring() {
        let (dir, a, root, rt) = on_one_thread();
        let other = broker(dir.path());
        rt.block_on(async {
            let e = a.admin_rotate_kek(&root).await.unwrap_err();
            assert_eq!(e.public(), PublicError::InvalidRequest, "{e}");
            assert!(e.to_string().contains("another broker"), "{e}");
            // Refused before anything changed: one KEK, the same, for both.
            assert_eq!(a.inner.keyring.current().ids().len(), 1);
            drop(other);
            a.admin_rotate_kek(&root).await.unwrap();
            // The rotation let go of the lock: another broker starts on the rotated keyring.
            let next = broker(dir.path());
            assert_eq!(
                next.inner.keyring.current().ids(),
                a.inner.keyring.current().ids()
            );
        });
    }

    /// A KEK rotation is in the log before it changes anything, and so is its failure midway
    /// (here a version whose wrapped data key was damaged in the database, which cannot be
    /// re-wrapped).
    #[test]
    fn a_failed_kek_rotation_is_in_the_log() {
        let (dir, b, root, rt) = on_one_thread();
        let body = serde_json::to_vec(&json!({
            "policy": TOKEN_POLICY,
            "value": STANDARD.encode("x"),
        }))
        .unwrap();
        rt.block_on(async {
            b.admin_put(&root, "r/key/one", &body).await.unwrap();
            let outside =
                rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
            outside
                .execute_batch("UPDATE secrets SET wrapped_key = zeroblob(40)")
                .unwrap();
            assert!(b.admin_rotate_kek(&root).await.is_err());
            let log = b.store().audit_entries(0, 100).await.unwrap();
            let last: Vec<_> = log
                .iter()
                .rev()
                .take(2)
                .map(|e| (e.event.action, e.event.verdict, e.event.reason.as_str()))
                .collect();
            assert_eq!(
                last[1],
                (
                    AuditAction::AdminKekRotate,
                    AuditVerdict::Pass,
                    "KEK rotation started"
                )
            );
            assert_eq!(
                (last[0].0, last[0].1),
                (AuditAction::AdminKekRotate, AuditVerdict::Fail)
            );
            assert!(
                last[0].2.starts_with("KEK rotation failed: "),
                "{}",
                last[0].2
            );
            // The failed rotation's KEK stays active beside the old one; once the damaged
            // version is gone, the next rotation finishes that one instead of adding a third.
            let ring = b.inner.keyring.current();
            assert_eq!(ring.ids().len(), 2);
            let active = ring.active_id().clone();
            outside.execute_batch("DELETE FROM secrets").unwrap();
            let answer = b.admin_rotate_kek(&root).await.unwrap();
            assert_eq!(answer["resumed"], true, "{answer}");
            assert_eq!(answer["kek_id"], active.as_str(), "{answer}");
            assert_eq!(b.inner.keyring.current().ids(), vec![&active]);
            let log = b.store().audit_entries(0, 100).await.unwrap();
            let done = &log.last().unwrap().event;
            assert_eq!(done.verdict, AuditVerdict::Pass);
            assert!(
                done.reason
                    .ends_with("1 retired (an unfinished rotation finished)"),
                "{}",
                done.reason
            );
            // A rotation after a finished one starts afresh, with a new KEK.
            let answer = b.admin_rotate_kek(&root).await.unwrap();
            assert_eq!(answer["resumed"], false, "{answer}");
            assert_ne!(answer["kek_id"], active.as_str(), "{answer}");
        });
    }

    /// A put body of the wrong shape is refused without quoting it (serde's messages quote a
    /// value of the wrong type, which may be the secret), and a repository's default policy is
    /// held to the same size limit as a resource's.
    #[test]
    fn admin_refusals_quote_no_value_and_bound_repo_policies() {
        let (_dir, b, root, rt) = on_one_thread();
        rt.block_on(async {
            for body in [
                r#"{"value":918273645}"#,
                r#"{"value":["918273645"]}"#,
                r#"{"generate":"918273645"}"#,
            ] {
                let e = b
                    .admin_put(&root, "a/key/one", body.as_bytes())
                    .await
                    .unwrap_err();
                assert!(matches!(e, BrokerError::AdminRequest(_)), "{e:?}");
                assert!(!format!("{e} {e:?}").contains("918273645"), "{e:?}");
            }
            let long = format!("{TOKEN_POLICY}\n#{}", "x".repeat(store::MAX_POLICY_LEN));
            let e = b
                .admin_set_repo_policy(&root, "a", &long)
                .await
                .unwrap_err();
            assert!(
                matches!(&e, BrokerError::AdminRequest(m) if m.contains("policy")),
                "{e:?}"
            );
            b.admin_set_repo_policy(&root, "a", TOKEN_POLICY)
                .await
                .unwrap();
        });
    }

    /// Each check of a put body refuses on its own, with its own reason, and writes nothing;
    /// a policy that does not parse is refused at put, at repository default and at import.
    #[test]
    fn admin_put_bodies_are_checked_member_by_member() {
        let (_dir, b, root, rt) = on_one_thread();
        rt.block_on(async {
            let policy = serde_json::to_string(TOKEN_POLICY).unwrap();
            for (body, why) in [
                (
                    format!(r#"{{"policy":{policy},"value":"not base64!"}}"#),
                    "base64",
                ),
                (format!(r#"{{"policy":{policy},"generate":0}}"#), "generate"),
                (
                    format!(r#"{{"policy":{policy},"generate":4097}}"#),
                    "generate",
                ),
                (format!(r#"{{"policy":{policy}}}"#), "exactly one"),
                (
                    format!(r#"{{"policy":{policy},"value":"eA==","generate":1}}"#),
                    "exactly one",
                ),
                (
                    r#"{"policy":"nonsense = [","value":"eA=="}"#.to_owned(),
                    "policy",
                ),
            ] {
                let e = b
                    .admin_put(&root, "a/key/one", body.as_bytes())
                    .await
                    .unwrap_err();
                assert!(
                    matches!(&e, BrokerError::AdminRequest(m) if m.contains(why)),
                    "{body}: {e:?}"
                );
            }
            let e = b
                .admin_set_repo_policy(&root, "a", "nonsense = [")
                .await
                .unwrap_err();
            assert!(matches!(&e, BrokerError::AdminRequest(m) if m.contains("policy")));
            let listed = b.admin_list(&root, None, None, None).await.unwrap();
            assert_eq!(listed["versions"], json!([]), "nothing was put");
            // Within bounds, the same members are accepted.
            let ok = format!(r#"{{"policy":{policy},"generate":4096}}"#);
            b.admin_put(&root, "a/key/one", ok.as_bytes())
                .await
                .unwrap();
        });
    }

    /// A clone shares the state the builder would change: the misuse is caught (debug builds
    /// panic) rather than silently configuring nothing.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "already cloned")]
    fn builders_refuse_a_shared_broker() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path());
        let _other = b.clone();
        let _ = b.with_clock(Arc::new(|| UnixTime::from_secs(42)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// SEV-SNP evidence JSON of a made-up report (compact or pretty, sometimes a few
        /// bytes changed), stored as a session's evidence as it came and in compact form,
        /// reads back as `/attest` decodes it ([`stored_agrees_with_attest`]).
        #[test]
        fn stored_sessions_read_back_as_attest_decodes(
            version in 2u8..=5,
            fill in proptest::prelude::any::<u8>(),
            pretty in proptest::prelude::any::<bool>(),
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), 0x20u8..0x7f),
                0..3,
            ),
        ) {
            let mut raw = vec![fill; tessera::snp::abi::REPORT_SIZE];
            raw[0] = version;
            raw[1..4].fill(0);
            let json = Evidence::from_bytes(&raw).unwrap().to_kbs_json();
            let mut text = if pretty {
                serde_json::to_string_pretty(&json).unwrap()
            } else {
                json.to_string()
            }
            .into_bytes();
            let unchanged = edits.is_empty();
            for (at, b) in edits {
                let i = at.index(text.len());
                text[i] = b;
            }
            if unchanged {
                let text = std::str::from_utf8(&text).unwrap();
                proptest::prop_assert!(decode_evidence(TeeName::Snp, text, None).is_ok());
            }
            stored_agrees_with_attest(&text);
        }
    }
}
