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
#![forbid(unsafe_code)]

pub mod audit;
pub mod binding;
pub mod jcs;
pub mod jwe;
pub mod jwk;
pub mod resource;
pub mod seal;
pub mod store;
