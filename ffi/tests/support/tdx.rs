//! Test support for the C tests of the C API (not part of the library): a TDX quote from the
//! simulated Intel PKI (`tessera::tdx::sim`), its collateral and the simulator's root.
//!
//! `test-tdx <dir>` writes into `<dir>`:
//! ```text
//! quote.bin        a TDX quote (version 4), signed by a simulated PCK
//! collateral.json  matching collateral (TCB status UpToDate), the dcap-qvl bundle layout
//! root.der         the simulated Intel root (DER): trust it as a dangerous test root
//! at.txt           a Unix time inside every validity window, in decimal
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

use tessera::tdx::collateral::TcbStatus;
use tessera::tdx::sim::{CollateralSpec, PlatformSpec, QuoteSpec, SIM_VERIFY_AT, SimPcs};

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args_os()
            .nth(1)
            .unwrap_or_else(|| panic!("usage: test-tdx <dir>")),
    );
    let pcs = SimPcs::new().unwrap();
    let platform = PlatformSpec::default();
    let spec = QuoteSpec::tdx();
    let pck = pcs.issue_pck(&platform).unwrap();
    let quote = pcs.quote(&pck, &spec).unwrap();
    let collateral = pcs
        .collateral_json(&CollateralSpec::matching(
            &platform,
            &spec,
            TcbStatus::UpToDate,
        ))
        .unwrap();
    std::fs::write(dir.join("quote.bin"), quote.to_bytes()).unwrap();
    std::fs::write(dir.join("collateral.json"), collateral).unwrap();
    std::fs::write(dir.join("root.der"), pcs.root().der()).unwrap();
    std::fs::write(dir.join("at.txt"), SIM_VERIFY_AT.as_secs().to_string()).unwrap();
}
