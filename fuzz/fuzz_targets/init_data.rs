#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_broker::binding::fuzz_init_data(data));
