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
//! use tessera_broker::jwk::TeePublicKey;
//! use tessera_broker::resource::ResourcePath;
//! use tessera_broker::seal::{KeyringFile, SecretValue};
//! use tessera_broker::store::{self, Challenge, ConsumeOutcome, SqliteStore, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let db = SqliteStore::open(dir.path()).await?;
//! let keys = KeyringFile::open_or_create(&dir.path().join("kek"))?;
//! let now_ms = 1_764_750_000_000;
//!
//! // Admin: seal a secret under a policy.
//! let r = ResourcePath::parse("tenant/key/db")?;
//! store::put_secret(&db, &keys.current(), &r, Some("policy text"),
//!                   &SecretValue::new(b"s3cret".to_vec()), now_ms).await?;
//!
//! // /auth: a challenge for a new session.
//! let ch = Challenge::generate("snp", HashAlgorithm::Sha384, now_ms)?;
//! db.insert_challenge(&ch).await?;
//!
//! // /attest: the guest's key and REPORT_DATA (here computed as a guest would).
//! // (This key is the P-256 base point: a valid point, with a well-known private key.)
//! let jwk = serde_json::json!({"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW",
//!     "x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
//!     "y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"});
//! let key = TeePublicKey::from_json(&jwk)?;
//! let report_data = binding::expected_report_data(ch.hash, &ch.nonce, key.as_sent(), "")?;
//! let ConsumeOutcome::Consumed(used) = db.consume_challenge(&ch.session_id, now_ms + 1).await?
//! else { return Ok(()) };
//! assert!(used.nonce_matches(&ch.nonce));
//! binding::check_report_data(&report_data, used.hash, &used.nonce, key.as_sent(), "")?;
//! // ... verify the evidence and appraise the policy (tessera facade) ...
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
pub mod protocol;
pub mod resource;
pub mod seal;
pub mod store;
