#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_broker::jwk::fuzz_tee_pubkey(data));
