//! Verify an SEV-SNP report against AMD's embedded roots and print what was established.
//!
//! ```text
//! cargo run --example verify_snp -- REPORT VCEK_OR_VLEK [RFC3339_TIME]
//! ```
#![allow(clippy::print_stdout)]

use tessera::pki::{UnixTime, load_certificates};
use tessera::snp::abi::SnpEvidence;
use tessera::snp::claims::ReportClaims;
use tessera::snp::{TrustAnchors, Verifier};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(report), Some(vek)) = (args.next(), args.next()) else {
        eprintln!("usage: verify_snp REPORT VCEK_OR_VLEK [RFC3339_TIME]");
        std::process::exit(2);
    };
    let at = match args.next() {
        Some(t) => UnixTime::parse_rfc3339(&t)?,
        None => UnixTime::now(),
    };
    let evidence = SnpEvidence::parse(&std::fs::read(report)?)?;
    let certs = load_certificates(&std::fs::read(vek)?)?;

    // Build the verifier once and keep it: it caches verified VCEK/VLEK chains.
    let verifier = Verifier::new(TrustAnchors::amd()?);
    let verified = verifier.verify_evidence(evidence, &certs, &[], at, None)?;

    let v = verified.verification();
    let claims = ReportClaims::new(verified.report(), Some(v.product));
    println!(
        "verified: {} report signed by its {}",
        v.product,
        v.signer.name()
    );
    println!("measurement: {}", claims.measurement);
    println!("reported TCB: {:?}", v.reported_tcb);
    Ok(())
}
