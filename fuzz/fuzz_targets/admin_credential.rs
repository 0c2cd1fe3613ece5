#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_server::admin_auth::fuzz_admin_credential(data);
});
