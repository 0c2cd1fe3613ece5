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

/// The items the fuzz harness [`fuzz_pcs_response`] asks for, picked by its first byte: one
/// of each kind; the VCEK is the one the AMD simulator issues by default
/// ([`tessera_snp::sim::VekSpec::vcek`]), so that its certificates can seed the target.
fn fuzz_items() -> Vec<Item> {
    use tessera_snp::abi::Product;
    let vcek = tessera_snp::sim::VekSpec::vcek(Product::Milan);
    vec![
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
        Item::Vcek {
            product: Product::Milan,
            hwid: tessera_pki::to_hex(&vcek.hwid),
            fmc: vcek.tcb.fmc,
            bl: vcek.tcb.bootloader,
            tee: vcek.tcb.tee,
            snp: vcek.tcb.snp,
            ucode: vcek.tcb.microcode,
        },
    ]
}

/// The time the fuzz harnesses judge validity at.
const FUZZ_NOW: tessera_pki::UnixTime = tessera_pki::UnixTime::from_secs(1_700_000_000);

/// What every accepted entry must survive: its stored form ([`Entry::to_json`]) and a bundle
/// file, each read back as the same entries.
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
fn fuzz_round_trip(entries: &[Entry]) {
    for entry in entries {
        let again = Entry::from_json(&entry.to_json(), "fuzz")
            .unwrap_or_else(|e| panic!("stored form does not load: {e}"));
        assert_eq!(&again, entry);
    }
    let packed = bundle::pack_entries(entries, FUZZ_NOW)
        .unwrap_or_else(|e| panic!("bundle does not pack: {e}"));
    let unpacked =
        bundle::unpack(&packed, "fuzz").unwrap_or_else(|e| panic!("bundle does not unpack: {e}"));
    assert_eq!(unpacked, entries);
}

/// Fuzz harness: a PCS/KDS response for an item. The first byte picks the item
/// (`fuzz_items`); then `Name: value` header lines up to an empty line; then the body.
/// `Entry::from_response` must not panic, and an entry it accepts must survive its stored
/// form and a bundle. Returns whether an entry was accepted (and so round-tripped), so that a
/// test can tell a seed that reaches the round trip from one refused early.
#[doc(hidden)]
pub fn fuzz_pcs_response(data: &[u8]) -> bool {
    let Some((&selector, rest)) = data.split_first() else {
        return false;
    };
    let items = fuzz_items();
    let Some(item) = items.get(usize::from(selector) % items.len()) else {
        return false;
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
    let mut accepted = false;
    for status in [200u16, 429] {
        let response = HttpResponse {
            status,
            headers: Vec::clone(&headers),
            body: body.to_vec(),
        };
        if let Ok(entry) = Entry::from_response(item, "http://fuzz", &response, FUZZ_NOW) {
            fuzz_round_trip(std::slice::from_ref(&entry));
            accepted = true;
        }
    }
    let _ = response::parse_retry_after(
        &String::from_utf8_lossy(body),
        tessera_pki::UnixTime::from_secs(0),
    );
    let _ = response::decode_issuer_chain(&String::from_utf8_lossy(body));
    let _ = bundle::unpack(body, "fuzz");
    let _ = Entry::from_json(body, "fuzz");
    accepted
}

/// Fuzz harness: what crosses an air gap into a cache — a bundle file
/// (`tessera-collateral-bundle/1`, [`bundle::unpack`]) or one stored entry
/// ([`Entry::from_json`], a file of a cache or bundle directory). The whole input goes to
/// both; neither may panic, and what either accepts must survive its stored form and a
/// bundle file (read back as the same entries). Returns whether either accepted the input.
#[doc(hidden)]
pub fn fuzz_bundle_file(data: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(entries) = bundle::unpack(data, "fuzz") {
        fuzz_round_trip(&entries);
        accepted = true;
    }
    if let Ok(entry) = Entry::from_json(data, "fuzz") {
        fuzz_round_trip(std::slice::from_ref(&entry));
        accepted = true;
    }
    accepted
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use tessera_pki::{UnixTime, to_pem};
    use tessera_snp::abi::Product;
    use tessera_snp::sim::{SimPki, VekSpec};
    use tessera_tdx::collateral::{CollateralBundle, TcbStatus};
    use tessera_tdx::sim::{CollateralSpec, PlatformSpec, QuoteSpec, SimPcs};

    /// `%XX` for every byte but the unreserved ones, as a header value is sent.
    fn percent_encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    /// A `pcs_response` input: the selector of `item`, the issuer-chain header when there is
    /// one, `\n\n` and the body.
    fn pcs_input(item: &Item, chain: Option<&str>, body: &[u8]) -> Vec<u8> {
        let selector = fuzz_items().iter().position(|i| i == item).unwrap();
        let mut input = vec![u8::try_from(selector).unwrap()];
        if let (Some(chain), Some(name)) = (chain, response::issuer_chain_headers(item).first()) {
            input.extend_from_slice(format!("{name}: {}", percent_encode(chain)).as_bytes());
        }
        input.extend_from_slice(b"\n\n");
        input.extend_from_slice(body);
        input
    }

    /// Seeds for the `pcs_response` and `offline_bundle` fuzz targets, made from the AMD and
    /// Intel simulators (`fuzz/seed.sh` writes them out through
    /// `fuzz_seeds_reach_the_round_trips`): one response per item of `fuzz_items`, a bundle
    /// file of all their entries, and a stored entry of each kind. (Target, name, bytes.)
    fn fuzz_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
        let items = fuzz_items();
        let issued = UnixTime::from_secs(FUZZ_NOW.as_secs() - 86_400);
        let next = UnixTime::from_secs(FUZZ_NOW.as_secs() + 30 * 86_400);
        // AMD: a Milan chain and VCEK, a Genoa CRL.
        let milan = SimPki::new(Product::Milan).unwrap();
        let genoa = SimPki::new(Product::Genoa).unwrap();
        let vcek = milan.issue_vek(&VekSpec::vcek(Product::Milan)).unwrap();
        let chain =
            to_pem("CERTIFICATE", milan.ask().der()) + &to_pem("CERTIFICATE", milan.ark().der());
        let crl = genoa.ark_crl(&[], issued, next).unwrap();
        // Intel: TDX and SGX collateral; the SGX TCB info for the FMSPC `fuzz_items` asks.
        let pcs = SimPcs::new().unwrap();
        let platform = PlatformSpec::default();
        let tdx = CollateralSpec::matching(&platform, &QuoteSpec::tdx(), TcbStatus::UpToDate);
        let mut processor = tdx.clone();
        processor.processor_ca_crl = true;
        let mut sgx = CollateralSpec::matching(&platform, &QuoteSpec::sgx(), TcbStatus::UpToDate);
        sgx.fmspc = [0x00, 0x60, 0x6A, 0x00, 0x00, 0x00];
        let json = |s: &CollateralSpec| -> CollateralBundle {
            serde_json::from_str(&pcs.collateral_json(s).unwrap()).unwrap()
        };
        let (tdx, processor, sgx) = (json(&tdx), json(&processor), json(&sgx));
        let tcb = |b: &CollateralBundle| {
            format!(
                "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
                b.tcb_info, b.tcb_info_signature
            )
            .into_bytes()
        };
        let qe = |b: &CollateralBundle| {
            format!(
                "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
                b.qe_identity, b.qe_identity_signature
            )
            .into_bytes()
        };
        let hex =
            |h: &Option<String>| tessera_pki::from_hex(h.as_deref().unwrap().as_bytes()).unwrap();
        let responses: Vec<(Option<String>, Vec<u8>)> = vec![
            (Some(tdx.tcb_info_issuer_chain.clone()), tcb(&tdx)),
            (Some(sgx.tcb_info_issuer_chain.clone()), tcb(&sgx)),
            (Some(tdx.qe_identity_issuer_chain.clone()), qe(&tdx)),
            (Some(sgx.qe_identity_issuer_chain.clone()), qe(&sgx)),
            (tdx.pck_crl_issuer_chain.clone(), hex(&tdx.pck_crl)),
            (
                processor.pck_crl_issuer_chain.clone(),
                hex(&processor.pck_crl),
            ),
            (None, hex(&tdx.root_ca_crl)),
            (None, chain.into_bytes()),
            (None, crl.der().to_vec()),
            (None, vcek.certificate().der().to_vec()),
        ];
        assert_eq!(responses.len(), items.len(), "one response per item");
        let mut seeds = Vec::new();
        let mut entries = Vec::new();
        for (item, (chain, body)) in items.iter().zip(responses) {
            seeds.push((
                "pcs_response",
                format!("sim__{}.bin", item.key()),
                pcs_input(item, chain.as_deref(), &body),
            ));
            entries.push(Entry::new(item.clone(), "http://sim", issued, body, chain).unwrap());
        }
        seeds.push((
            "offline_bundle",
            String::from("sim__bundle.json"),
            bundle::pack_entries(&entries, FUZZ_NOW).unwrap(),
        ));
        for entry in &entries {
            seeds.push((
                "offline_bundle",
                format!("sim__entry-{}.json", entry.item().key()),
                entry.to_json(),
            ));
        }
        seeds
    }

    /// Every seed reaches its harness's round trip; with `TESSERA_FUZZ_SEED_DIR` set (by
    /// `fuzz/seed.sh`) they are written to `<dir>/<target>/`.
    #[test]
    fn fuzz_seeds_reach_the_round_trips() {
        let seeds = fuzz_seeds();
        for (target, name, bytes) in &seeds {
            let accepted = match *target {
                "pcs_response" => fuzz_pcs_response(bytes),
                _ => fuzz_bundle_file(bytes),
            };
            assert!(accepted, "{target}/{name} is refused by its harness");
        }
        // What either harness refuses (so that `true` above says something).
        let (_, _, bundle) = seeds
            .iter()
            .find(|(_, n, _)| n == "sim__bundle.json")
            .unwrap();
        let mut twice: serde_json::Value = serde_json::from_slice(bundle).unwrap();
        let first = twice["entries"][0].clone();
        twice["entries"][1] = first;
        assert!(!fuzz_bundle_file(&serde_json::to_vec(&twice).unwrap()));
        assert!(!fuzz_bundle_file(b"{}"));
        let (_, _, vcek) = seeds
            .iter()
            .rfind(|(t, _, _)| *t == "pcs_response")
            .unwrap();
        let mut other = vcek.clone();
        other[0] = 0; // the VCEK's body for TDX TCB info
        assert!(!fuzz_pcs_response(&other));
        assert!(!fuzz_pcs_response(b""));
        if let Some(dir) = std::env::var_os("TESSERA_FUZZ_SEED_DIR") {
            let dir = std::path::PathBuf::from(dir);
            for (target, name, bytes) in &seeds {
                std::fs::create_dir_all(dir.join(target)).unwrap();
                std::fs::write(dir.join(target).join(name), bytes).unwrap();
            }
        }
    }
}
