//! Cache entries made from a TDX collateral bundle JSON (the `dcap-qvl` layout that `tessera sim
//! tdx` writes): TCB info, QE identity, the PCK CRL and the Root CA CRL, as a PCS or PCCS would
//! have answered them. Shared by the server's unit tests and the CLI's tests.
#![allow(dead_code, unreachable_pub)]

use tessera::tdx::collateral::{Collateral, CollateralBundle};
use tessera_collateral::{Entry, IntelTee, Item, PckCa, UpdateType};
use tessera_pki::UnixTime;

/// TCB info, QE identity, PCK (platform) CRL and Root CA CRL entries of `collateral_json`,
/// fetched at `now`, in that order.
pub fn intel_entries(collateral_json: &str, now: UnixTime) -> [Entry; 4] {
    let b: CollateralBundle = serde_json::from_str(collateral_json).unwrap();
    let parsed = Collateral::from_bundle_json(collateral_json.as_bytes()).unwrap();
    let (tee, update) = (IntelTee::Tdx, UpdateType::Standard);
    let fmspc = tessera_pki::to_hex(&parsed.tcb_info().value().fmspc).to_ascii_uppercase();
    let der = |hex: &str| tessera_pki::from_hex(hex.as_bytes()).unwrap();
    [
        Entry::new(
            Item::TcbInfo { tee, fmspc, update },
            "test",
            now,
            format!(
                "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
                b.tcb_info, b.tcb_info_signature
            )
            .into_bytes(),
            Some(b.tcb_info_issuer_chain.clone()),
        ),
        Entry::new(
            Item::QeIdentity { tee, update },
            "test",
            now,
            format!(
                "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
                b.qe_identity, b.qe_identity_signature
            )
            .into_bytes(),
            Some(b.qe_identity_issuer_chain.clone()),
        ),
        Entry::new(
            Item::PckCrl {
                ca: PckCa::Platform,
            },
            "test",
            now,
            der(b.pck_crl.as_deref().unwrap()),
            b.pck_crl_issuer_chain.clone(),
        ),
        Entry::new(
            Item::RootCaCrl,
            "test",
            now,
            der(b.root_ca_crl.as_deref().unwrap()),
            None,
        ),
    ]
    .map(Result::unwrap)
}
