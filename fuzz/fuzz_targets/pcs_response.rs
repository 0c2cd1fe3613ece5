#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_collateral::fuzz_pcs_response(data);
});
