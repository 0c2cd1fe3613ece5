#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_snp::certs::fuzz_vek_certificate(data));
