//! Criterion benches of the TDX contestants (the interleaved comparison is `src/main.rs`).
//!
//! - `tdx_parse`: tessera's `Quote::parse` on the real quote;
//! - `tdx_warm/{tessera,dcap-qvl,floor}`: tessera parses the quote and verifies it with a
//!   `Verifier` that has verified this collateral and PCK chain before; dcap-qvl runs its full
//!   `verify` with the collateral deserialized once; the floor is 2 ECDSA P-256 checks + 1 SHA-256;
//! - `tdx_cold/{tessera,dcap-qvl,floor}`: everything from bytes (quote, collateral JSON, fresh
//!   verifier); the floor is 9 ECDSA P-256 checks + 1 SHA-256 (see `src/tdx/floor.rs`).
//!
//! `cargo bench --manifest-path crates/bench/Cargo.toml --bench tdx`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_bench::TDX_PEER_NAME;
use tessera_bench::tdx::floor::TdxFloor;
use tessera_bench::tdx::peer::DcapQvl;
use tessera_bench::tdx::{DEFAULT_TDX_CASE, TdxCase};

/// The contestants, set up on the default TDX case (each has accepted it once).
struct Contestants {
    tessera: tessera_bench::tdx::tessera::TesseraTdx,
    peer: DcapQvl,
    floor: TdxFloor,
}

fn setup() -> Result<Contestants, Box<dyn std::error::Error>> {
    let case = TdxCase::load(DEFAULT_TDX_CASE)?;
    Ok(Contestants {
        tessera: tessera_bench::tdx::tessera::TesseraTdx::new(&case)?,
        peer: DcapQvl::new(&case)?,
        floor: TdxFloor::new(&case)?,
    })
}

fn tdx(c: &mut Criterion) {
    // A bench without its input cannot measure anything: stop at set-up, with the reason.
    let all = match setup() {
        Ok(all) => all,
        Err(e) => {
            eprintln!("cannot set up {DEFAULT_TDX_CASE}: {e}");
            std::process::exit(1);
        }
    };
    c.bench_function("tdx_parse", |b| b.iter(|| black_box(all.tessera.parse())));

    let mut warm = c.benchmark_group("tdx_warm");
    warm.bench_function("tessera", |b| b.iter(|| black_box(all.tessera.warm())));
    warm.bench_function(TDX_PEER_NAME, |b| {
        b.iter(|| black_box(all.peer.accepts(&all.peer.warm())));
    });
    warm.bench_function("floor", |b| b.iter(|| black_box(all.floor.warm())));
    warm.finish();

    let mut cold = c.benchmark_group("tdx_cold");
    cold.bench_function("tessera", |b| b.iter(|| black_box(all.tessera.cold())));
    cold.bench_function(TDX_PEER_NAME, |b| {
        b.iter(|| black_box(all.peer.accepts(&all.peer.cold())));
    });
    cold.bench_function("floor", |b| b.iter(|| black_box(all.floor.cold())));
    cold.finish();
}

criterion_group!(benches, tdx);
criterion_main!(benches);
