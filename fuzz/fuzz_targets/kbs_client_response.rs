#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_guest::client::fuzz_response(data));
