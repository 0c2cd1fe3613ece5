#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_policy::ear::fuzz_token(data));
