//! The dcap-qvl crate's own sample quotes, verified at the time its tests use ("one second before
//! the earliest nextUpdate of the collateral"), with the statuses its tests assert.
//!
//! The samples are read from the dcap-qvl 0.7 source that cargo downloads for the peer bench
//! (`cargo fetch --manifest-path crates/bench/Cargo.toml`), located through `DCAP_QVL_SAMPLES`
//! (the crate's `sample/` folder) or found in `$CARGO_HOME/registry/src`. When `DCAP_QVL_SAMPLES`
//! is set (as `.ci/run` does) a missing folder fails the test; otherwise it skips with a notice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use tessera::pki::UnixTime;
use tessera::tdx::collateral::{Collateral, TcbStatus};
use tessera::tdx::{TrustAnchors, Verifier, VerifyOptions};

fn samples() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DCAP_QVL_SAMPLES") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("tdx_quote").is_file(),
            "DCAP_QVL_SAMPLES={} holds no dcap-qvl samples",
            dir.display()
        );
        return Some(dir);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let registry = cargo_home.join("registry/src");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&registry)
        .ok()?
        .filter_map(Result::ok)
        .flat_map(|index| std::fs::read_dir(index.path()).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("dcap-qvl-0.7"))
        })
        .map(|p| p.join("sample"))
        .filter(|p| p.join("tdx_quote").is_file())
        .collect();
    found.sort();
    let dir = found.pop();
    if dir.is_none() {
        eprintln!(
            "NOTICE: dcap-qvl 0.7 samples not found (run `cargo fetch --manifest-path crates/bench/Cargo.toml` or set DCAP_QVL_SAMPLES); skipping"
        );
    }
    dir
}

/// dcap-qvl's `now_from_collateral`: one second before the earliest nextUpdate.
fn documented_time(c: &Collateral) -> UnixTime {
    let next = [
        Some(c.tcb_info().value().next_update),
        Some(c.qe_identity().value().next_update),
        c.pck_crl().and_then(tessera::pki::Crl::next_update),
        c.root_ca_crl().and_then(tessera::pki::Crl::next_update),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap();
    UnixTime::from_secs(next.as_secs() - 1)
}

fn try_verify(
    dir: &std::path::Path,
    name: &str,
) -> Result<tessera::tdx::Verification, tessera::tdx::TdxError> {
    let quote = std::fs::read(dir.join(name)).unwrap();
    let collateral = Collateral::from_bundle_json(
        &std::fs::read(dir.join(format!("{name}_collateral.json"))).unwrap(),
    )
    .unwrap();
    let at = documented_time(&collateral);
    Verifier::new(TrustAnchors::intel().unwrap())
        .verify_bytes(&quote, &collateral, at, &VerifyOptions::default())
        .map(|v| v.into_parts().1)
}

fn verify(dir: &std::path::Path, name: &str) -> tessera::tdx::Verification {
    try_verify(dir, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[cfg_attr(
    not(tessera_dcap_samples),
    ignore = "needs the dcap-qvl 0.7 samples (cargo fetch --manifest-path crates/bench/Cargo.toml, or DCAP_QVL_SAMPLES)"
)]
#[test]
fn dcap_qvl_samples_verify_with_the_statuses_its_tests_assert() {
    let Some(dir) = samples() else { return };

    let tdx = verify(&dir, "tdx_quote");
    assert_eq!(tdx.tcb.status, TcbStatus::UpToDate);
    assert!(tdx.tcb.advisory_ids.is_empty());

    let sgx = verify(&dir, "sgx_quote");
    assert_eq!(sgx.tcb.status, TcbStatus::ConfigurationAndSwHardeningNeeded);
    assert_eq!(sgx.tcb.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);

    // Quote v5 with body type 4 (TD 1.5ex).
    let td15ex = verify(&dir, "tdx_quote_td15ex");
    assert_eq!(td15ex.tcb.status, TcbStatus::UpToDate);

    // dcap-qvl's tests verify this one only through `dangerous_verify_with_tcb_override`: its
    // PCK's SGX component 7 (3) is below every level's (5), so Intel's rules find no level.
    let err = try_verify(&dir, "tdx_quote_outdated").unwrap_err();
    assert_eq!(err.tcb_status_name(), Some("TcbLevelNotSupported"), "{err}");
}
