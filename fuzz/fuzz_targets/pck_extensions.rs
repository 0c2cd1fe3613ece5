#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_tdx::pck::fuzz_pck_extensions(data));
