//! Endorsements and collateral for the verifiers, fetched from AMD's KDS and Intel's PCS (or
//! a PCCS or mirror), cached on disk, and carried offline in bundles.
//!
//! This crate is never on the verify path: it produces the *inputs* that
//! `tessera_snp::Verifier` and `tessera_tdx::Verifier` take (certificates, CRLs, a
//! `Collateral`), and what it produces — fresh or from a cache or bundle — is verified by
//! them exactly like collateral given by hand.
//!
//! ```text
//! evidence ──items_for_*──▶ [Item] ──Cache::get──▶ Entry (memory → disk → Fetcher) ──assemble──▶ verifier inputs
//!                                                      │
//!                                   bundle: write_bundle_dir / pack / unpack / import / show
//! ```
//!
//! - [`item`]: what can be asked for, cache keys, the items a report or quote needs.
//! - [`source`]: base URLs (AMD KDS, Intel PCS, a PCCS) and each item's URL.
//! - [`response`]: status codes, `Retry-After`, issuer-chain headers.
//! - [`entry`]: a fetched item, checked for shape, with its validity.
//! - [`fetch`]: the HTTP transport (feature `fetch`), 429 backoff, timeout.
//! - [`cache`]: memory and disk, refresh before expiry, one fetch in flight per key.
//! - [`bundle`]: offline bundles (directory with manifest; one-file JSON form).
//! - [`assemble`]: entries to verifier inputs.
#![forbid(unsafe_code)]

pub mod assemble;
pub mod bundle;
pub mod cache;
pub mod entry;
mod error;
pub mod fetch;
pub mod item;
pub mod response;
pub mod source;

pub use assemble::{SnpEndorsements, snp_crl, snp_endorsements, tdx_collateral};
pub use cache::{Cache, CacheStats, Vetter};
pub use entry::Entry;
pub use error::CollateralError;
#[cfg(feature = "fetch")]
pub use fetch::UreqTransport;
pub use fetch::{FetchConfig, Fetcher, Transport};
pub use item::{AmdSigner, IntelTee, Item, PckCa, UpdateType};
pub use response::HttpResponse;
pub use source::{ApiKey, KdsSource, PcsSource};

/// Fuzz harness: a PCS/KDS response for an item. The first byte picks the item; then
/// `Name: value` header lines up to an empty line; then the body. `Entry::from_response`
/// must not panic, and an entry it accepts must survive its stored form and a bundle.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_pcs_response(data: &[u8]) {
    use tessera_snp::abi::Product;
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let items = [
        Item::tcb_info(
            IntelTee::Tdx,
            [0x00, 0x80, 0x6F, 0x05, 0x00, 0x00],
            UpdateType::Standard,
        ),
        Item::tcb_info(
            IntelTee::Sgx,
            [0x00, 0x60, 0x6A, 0x00, 0x00, 0x00],
            UpdateType::Early,
        ),
        Item::QeIdentity {
            tee: IntelTee::Tdx,
            update: UpdateType::Standard,
        },
        Item::QeIdentity {
            tee: IntelTee::Sgx,
            update: UpdateType::Standard,
        },
        Item::PckCrl {
            ca: PckCa::Platform,
        },
        Item::PckCrl {
            ca: PckCa::Processor,
        },
        Item::RootCaCrl,
        Item::AmdChain {
            product: Product::Milan,
            signer: AmdSigner::Vcek,
        },
        Item::AmdCrl {
            product: Product::Genoa,
            signer: AmdSigner::Vcek,
        },
    ];
    let Some(item) = items.get(usize::from(selector) % items.len()) else {
        return;
    };
    let split = rest.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            rest.get(i + 2..).unwrap_or_default(),
        ),
        None => (&[][..], rest),
    };
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    for status in [200u16, 429] {
        let response = HttpResponse {
            status,
            headers: Vec::clone(&headers),
            body: body.to_vec(),
        };
        let now = tessera_pki::UnixTime::from_secs(1_700_000_000);
        if let Ok(entry) = Entry::from_response(item, "http://fuzz", &response, now) {
            let again = Entry::from_json(&entry.to_json(), "fuzz")
                .unwrap_or_else(|e| panic!("stored form does not load: {e}"));
            assert_eq!(again, entry);
            let packed = bundle::pack_entries(std::slice::from_ref(&entry), now)
                .unwrap_or_else(|e| panic!("bundle does not pack: {e}"));
            let unpacked = bundle::unpack(&packed, "fuzz")
                .unwrap_or_else(|e| panic!("bundle does not unpack: {e}"));
            assert_eq!(unpacked, vec![entry]);
        }
    }
    let _ = response::parse_retry_after(
        &String::from_utf8_lossy(body),
        tessera_pki::UnixTime::from_secs(0),
    );
    let _ = response::decode_issuer_chain(&String::from_utf8_lossy(body));
    let _ = bundle::unpack(body, "fuzz");
    let _ = Entry::from_json(body, "fuzz");
}
