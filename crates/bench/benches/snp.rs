//! Criterion benches of tessera's SNP paths alone (the peer comparison is `src/main.rs`).
//!
//! - `snp_parse`: `AttestationReport::from_bytes` on the real report;
//! - `snp_warm`: parse + verify with a `Verifier` that has verified this VEK before;
//! - `snp_cold`: parse the report and the VEK DER, verify with a fresh `Verifier`.
//!
//! `cargo bench --manifest-path crates/bench/Cargo.toml --bench snp`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_bench::Case;
use tessera_bench::case::DEFAULT_CASE;
use tessera_bench::tessera::Tessera;

fn setup() -> Result<Tessera, Box<dyn std::error::Error>> {
    Ok(Tessera::new(&Case::load(DEFAULT_CASE)?)?)
}

fn snp(c: &mut Criterion) {
    // A bench without its input cannot measure anything: stop at set-up, with the reason.
    let tessera = match setup() {
        Ok(tessera) => tessera,
        Err(e) => {
            eprintln!("cannot set up {DEFAULT_CASE}: {e}");
            std::process::exit(1);
        }
    };
    c.bench_function("snp_parse", |b| b.iter(|| black_box(tessera.parse())));
    c.bench_function("snp_warm", |b| b.iter(|| black_box(tessera.warm())));
    c.bench_function("snp_cold", |b| b.iter(|| black_box(tessera.cold())));
}

criterion_group!(benches, snp);
criterion_main!(benches);
