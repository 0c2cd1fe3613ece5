//! Test support for the C and Go tests of the C API (not part of the library): a real broker
//! (`tessera_server`) on 127.0.0.1 with a simulated SEV-SNP guest's root trusted, two secrets,
//! and that guest's evidence on demand.
//!
//! Prints, one per line, then serves until stdin closes:
//! ```text
//! url http://127.0.0.1:PORT
//! resource default/key/ffi        (released to the simulator's measurement)
//! denied default/key/denied       (its policy wants another measurement: 403)
//! secret <hex of the first secret>
//! root <hex of the simulator's ARK, DER>
//! ready
//! ```
//! Then for each stdin line `json <128 hex chars of REPORT_DATA>` it prints the KBS evidence JSON
//! (report and certificate chain) on one line, and for `raw <hex>` the hex of the raw 1184-byte
//! report (the broker holds the VCEK in its endorsement directory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

use std::io::{BufRead as _, Write as _};

use tessera::snp::abi::Product;
use tessera_guest::sim::{Measurements, SimSnp};
use tessera_server::ServerConfig;

const SECRET: &[u8] = b"tessera-ffi secret\x00\x01\x02";

fn policy(measurement: &str) -> String {
    format!(
        r#"
version = 1
id = "ffi-test"
[snp]
measurement = ["{measurement}"]
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
[tdx]
mr_td = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
debug = "any"
[tdx.tcb]
accepted_statuses = "any"
[sgx]
mr_enclave = "any"
mr_signer = "any"
debug = "any"
[sgx.tcb]
accepted_statuses = "any"
"#
    )
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimSnp::new(Product::Genoa).unwrap();
    let root = dir.path().join("root.der");
    std::fs::write(&root, sim.root().der()).unwrap();
    let endorsements = dir.path().join("endorsements");
    std::fs::create_dir(&endorsements).unwrap();
    std::fs::write(endorsements.join("vcek.der"), sim.vcek().der()).unwrap();
    std::fs::write(endorsements.join("ask.der"), sim.pki().ask().der()).unwrap();

    let mut config = ServerConfig::with_data_dir(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.verifier.dangerous_test_roots.push(root);
    config.verifier.endorsements.push(endorsements);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, info) = rt.block_on(tessera_server::start(&config)).unwrap();
    let addr = server.local_addr().unwrap();
    rt.spawn(server.run(std::future::pending()));
    let token = std::fs::read_to_string(info.admin_token_file.unwrap()).unwrap();
    let url = format!("http://{addr}");

    let agent = ureq::Agent::new_with_defaults();
    use base64::Engine as _;
    let value = base64::engine::general_purpose::STANDARD.encode(SECRET);
    for (path, measurement) in [
        ("default/key/ffi", hex::encode([0x4D; 48])),
        ("default/key/denied", hex::encode([0x11; 48])),
    ] {
        let put = agent
            .post(&format!("{url}/kbs/v0/resource/{path}"))
            .header("Authorization", &format!("Bearer {}", token.trim()))
            .send_json(serde_json::json!({"policy": policy(&measurement), "value": value}))
            .unwrap();
        assert_eq!(put.status(), 200);
    }

    let mut out = std::io::stdout().lock();
    writeln!(out, "url {url}").unwrap();
    writeln!(out, "resource default/key/ffi").unwrap();
    writeln!(out, "denied default/key/denied").unwrap();
    writeln!(out, "secret {}", hex::encode(SECRET)).unwrap();
    writeln!(out, "root {}", hex::encode(sim.root().der())).unwrap();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();

    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let (mode, rd) = line.trim().split_once(' ').unwrap_or(("", ""));
        let rd: [u8; 64] = hex::decode(rd)
            .ok()
            .and_then(|b| b.try_into().ok())
            .unwrap_or_else(|| panic!("expected `json|raw <128 hex chars>`, got {line:?}"));
        match mode {
            "json" => {
                let json = sim.evidence(&rd, &Measurements::default()).unwrap();
                writeln!(out, "{json}").unwrap();
            }
            "raw" => {
                let report = sim.report(&rd, &Measurements::default(), |_| {}).unwrap();
                writeln!(out, "{}", hex::encode(report)).unwrap();
            }
            _ => panic!("unknown mode {mode:?}"),
        }
        out.flush().unwrap();
    }
}
