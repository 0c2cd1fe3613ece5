#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_guest::sev_guest::fuzz_device_report(data));
