//! Key broker core: the parts of Tessera's KBS 0.4.0 broker that need no HTTP.
//!
//! - [`jcs`]: RFC 8785 canonical JSON.
//! - [`jwk`]: the guest's `tee-pubkey`, parsed strictly.
//! - [`jwe`]: the released secret encrypted to that key (flattened JWE).
//! - [`binding`]: REPORT_DATA and init-data binding checks.
//! - [`resource`]: resource paths and policy digests.
//! - [`seal`]: envelope encryption of secrets at rest, KEK keyring and rotation.
//! - [`audit`]: the hash-chained audit log.
//! - [`store`]: the `Store` trait (secrets, policies, challenges, sessions, audit) and SQLite.
//!
//! Evidence verification and appraisal come from the `tessera` facade; the release engine
//! that joins them to these parts builds on the pieces below.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_broker::binding::{self, HashAlgorithm};
//! use tessera_broker::keyfile::Symlinks;
//! use tessera_broker::jwk::TeePublicKey;
//! use tessera_broker::resource::ResourcePath;
//! use tessera_broker::seal::{KeyringFile, SecretValue};
//! use tessera_broker::store::{self, AttestedSession, Challenge, SessionId, SqliteStore, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let db = SqliteStore::open(dir.path()).await?;
//! let keys = KeyringFile::open_or_create(&dir.path().join("kek"), Symlinks::Refuse)?;
//! let now_ms = 1_764_750_000_000;
//!
//! // Admin: seal a secret under a policy.
//! let r = ResourcePath::parse("tenant/key/db")?;
//! // The version is stored with the audit entry recording it, in one transaction.
//! let by = store::ChangeBy { actor: "admin:alice", note: "", origin: None };
//! store::put_secret(&db, &keys.current(), &r, Some("policy text"),
//!                   &SecretValue::new(b"s3cret".to_vec()), now_ms, by).await?;
//!
//! // /auth: a challenge for a new session. Nothing is stored: the session id (the cookie)
//! // carries it, and its nonce is derived from the id with the KEK.
//! let ch = Challenge::generate("snp", HashAlgorithm::Sha384, now_ms)?;
//! let nonce = ch.nonce(keys.current().active()?, db.identity())?;
//!
//! // /attest: the guest's key and REPORT_DATA (here computed as a guest would).
//! // (This key is the P-256 base point: a valid point, with a well-known private key.)
//! let jwk = serde_json::json!({"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW",
//!     "x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
//!     "y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"});
//! let key = TeePublicKey::from_json(&jwk)?;
//! let report_data = binding::expected_report_data(ch.hash, &nonce, key.as_sent(), "")?;
//! // The broker reads the challenge back from the cookie and checks the nonce the guest sent.
//! let got = Challenge::from_session(&SessionId::parse(ch.session_id.as_str()).ok_or("id")?)
//!     .ok_or("not a session id")?;
//! assert!(now_ms + 1 < got.expires_ms && got.nonce_matches(&keys.current(), db.identity(), &nonce, now_ms + 1));
//! binding::check_report_data(&report_data, got.hash, &nonce, key.as_sent(), "")?;
//! // ... verify the evidence and appraise the policy (tessera facade) ...
//! // Then the challenge's single use, the session and its audit entry, in one commit:
//! let session = AttestedSession { session_id: got.session_id.clone(), tee: got.tee.clone(),
//!     tee_pubkey: key.as_sent().to_string(), token_digest: store::token_digest("the token"),
//!     claims: "{}".into(), evidence_digest: "sha384:..".into(), attested_ms: now_ms + 1,
//!     expires_ms: now_ms + 300_000 };
//! use tessera_broker::audit::{AuditAction, AuditEvent, AuditVerdict};
//! let event = AuditEvent { time_ms: now_ms + 1, actor: "guest".into(),
//!     action: AuditAction::Attest, resource: None, evidence_digest: None,
//!     policy_digest: None, verdict: AuditVerdict::Pass, reason: "snp evidence verified".into() };
//! assert!(db.put_session_audited(&got, &session, event.clone()).await?.is_some());
//! // A second answer to the same challenge is refused.
//! assert!(db.put_session_audited(&got, &session, event).await?.is_none());
//!
//! // /resource: open the sealed version and encrypt it to the TEE key.
//! let (rec, _policy) = store::version_with_policy(&db, &r, None).await?.ok_or("missing")?;
//! let secret = store::open_stored(&keys.current(), &rec)?;
//! let jwe = tessera_broker::jwe::encrypt(&key, secret.expose())?;
//! assert!(!jwe.ciphertext.is_empty());
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #     .block_on(demo()).unwrap();
//! ```
#![forbid(unsafe_code)]

pub mod audit;
pub mod binding;
/// The compact evidence encoding of the session record, which lives in the facade
/// ([`tessera::compact`]) beside the decoder that reads it.
pub use tessera::compact;
pub mod engine;
pub mod gitseal;
pub mod jcs;
pub mod jwe;
pub mod jwk;
pub mod keyfile;
pub mod protocol;
pub mod resource;
pub mod seal;
pub mod store;
