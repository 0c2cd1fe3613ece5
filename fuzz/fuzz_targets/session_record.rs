#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_broker::compact::fuzz_record(data));
