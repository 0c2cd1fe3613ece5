//! Verify an Intel TDX or SGX quote against the embedded Intel SGX Root CA and Intel's
//! collateral, and print Intel's TCB status.
//!
//! ```text
//! cargo run --example verify_tdx -- QUOTE COLLATERAL_JSON [RFC3339_TIME]
//! ```
#![allow(clippy::print_stdout)]

use tessera::pki::UnixTime;
use tessera::tdx::abi::Quote;
use tessera::tdx::claims::QuoteClaims;
use tessera::tdx::collateral::Collateral;
use tessera::tdx::{TrustAnchors, Verifier, VerifyOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(quote), Some(collateral)) = (args.next(), args.next()) else {
        eprintln!("usage: verify_tdx QUOTE COLLATERAL_JSON [RFC3339_TIME]");
        std::process::exit(2);
    };
    let at = match args.next() {
        Some(t) => UnixTime::parse_rfc3339(&t)?,
        None => UnixTime::now(),
    };
    let quote = Quote::parse(&std::fs::read(quote)?)?;
    // The dcap-qvl `QuoteCollateralV3` JSON layout; `Collateral::from_pcs_files` reads a
    // folder of raw Intel PCS responses instead.
    let collateral = Collateral::from_bundle_json(&std::fs::read(collateral)?)?;

    // Build the verifier once and keep it: it caches verified collateral and PCK chains.
    let verifier = Verifier::new(TrustAnchors::intel()?);
    let verified = verifier.verify(&quote, &collateral, at, &VerifyOptions::default())?;

    let v = verified.verification();
    let claims = QuoteClaims::new(verified.quote());
    println!("verified: {} quote v{}", claims.tee, claims.version);
    println!(
        "tcb status: {} (advisories: {:?})",
        v.tcb.status, v.tcb.advisory_ids
    );
    if let Some(td) = &claims.td {
        println!("mr_td: {}", td.mr_td);
    }
    for b in &v.tcb.behind {
        println!(
            "behind: {} is {}, newest level has {}",
            b.component, b.actual, b.latest
        );
    }
    Ok(())
}
