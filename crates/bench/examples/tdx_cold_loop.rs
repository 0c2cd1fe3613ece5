//! Profiling aid: run tessera's `tdx_cold` in a loop (`perf record` this binary).
use tessera_bench::tdx::case::TdxCase;
use tessera_bench::tdx::tessera::TesseraTdx as Tessera;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let case = TdxCase::load(tessera_bench::tdx::case::DEFAULT_TDX_CASE)?;
    let t = Tessera::new(&case)?;
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    for _ in 0..n {
        if !t.cold() {
            return Err("cold failed".into());
        }
    }
    Ok(())
}
