//! The guest side of Tessera's key broker: a KBS 0.4.0 client that attests and fetches secrets.
//!
//! [`client`] speaks the Confidential Containers Key Broker Service protocol (version 0.4.0) as
//! Tessera's broker and Trustee's KBS serve it: a blocking client that opens a session, binds a
//! fresh TEE key into the evidence's REPORT_DATA, attests, and fetches and decrypts a resource.
//! Evidence itself comes from the caller (a callback given the 64-byte REPORT_DATA).
//!
//! ```no_run
//! use tessera_guest::client::{Client, ClientError, ClientOptions};
//!
//! let client = Client::new("https://kbs.example:8080", ClientOptions::default())?;
//! let secret = client.get_secret("snp", "default/key/disk", None, &mut |report_data| {
//!     // Ask the TEE for a report carrying `report_data` (configfs-tsm, /dev/sev-guest, ...).
//!     let _ = report_data;
//!     Err(ClientError::Evidence { reason: "no TEE in this example".into() })
//! })?;
//! # drop(secret);
//! # Ok::<(), ClientError>(())
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod provider;
pub mod sev_guest;
pub mod sim;
pub mod tsm;
