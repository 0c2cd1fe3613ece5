#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_broker::engine::fuzz_session_record(data));
