//! Verify evidence of any form (SEV-SNP report, extended report, HCL report, KBS evidence JSON,
//! TDX/SGX quote) through the facade, with endorsements from a directory (VCEKs, certificates,
//! CRLs, Intel collateral), and appraise it when a policy is given.
//!
//! ```text
//! cargo run --example verify -- EVIDENCE ENDORSEMENT_DIR [POLICY] [RFC3339_TIME]
//! ```
#![allow(clippy::print_stdout)]

use std::path::Path;

use tessera::{Evidence, Policy, UnixTime, Verifier};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(evidence), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: verify EVIDENCE ENDORSEMENT_DIR [POLICY] [RFC3339_TIME]");
        std::process::exit(2);
    };
    let policy = args
        .next()
        .map(|p| Policy::load(Path::new(&p)))
        .transpose()?;
    let at = match args.next() {
        Some(t) => UnixTime::parse_rfc3339(&t)?,
        None => UnixTime::now(),
    };
    let evidence = Evidence::from_bytes(&std::fs::read(evidence)?)?;
    println!("{} evidence ({})", evidence.tee().as_str(), evidence.form());

    // Build the verifier once and keep it: the directory is read now, and it caches verified
    // chains and collateral.
    let verifier = Verifier::builder()
        .endorsement_dir(Path::new(&dir))?
        .build()?;
    if let Some(missing) = verifier.needed_endorsements(&evidence) {
        println!("not held (a fetcher would get it): {missing:?}");
    }
    let verified = verifier.verify(&evidence, at)?;
    println!("verified: digest {}", verified.digest());
    println!("claims: {}", verified.claims());
    if let Some(policy) = policy {
        let appraisal = verified.appraise(&policy);
        println!(
            "policy {:?}: {:?}",
            appraisal.policy_id(),
            appraisal.verdict()
        );
        for r in appraisal.failures() {
            println!(
                "  FAIL {}: expected {}, actual {}",
                r.rule, r.expected, r.actual
            );
        }
    }
    Ok(())
}
