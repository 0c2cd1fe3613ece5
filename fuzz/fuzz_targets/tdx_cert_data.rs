#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_tdx::abi::fuzz_certification_data(data));
