#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_tdx::collateral::fuzz_qe_identity(data));
