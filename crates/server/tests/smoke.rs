//! One complete flow over real HTTP on loopback: a broker started as `tessera serve` starts it,
//! a secret put through the admin API, and a simulated SNP guest that attests and receives it.

use std::sync::Arc;
use std::time::Duration;

use tessera::snp::abi::Product;
use tessera_guest::client::{AuthMode, Client, ClientOptions, RetryPolicy};
use tessera_guest::sim::{Measurements, SimSnp};
use tessera_server::ServerConfig;

const POLICY: &str = r#"
version = 1
id = "smoke"
[snp]
measurement = ["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"]
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
[tdx]
mr_td = "any"
debug = "any"
[tdx.tcb]
accepted_statuses = "any"
[sgx]
mr_enclave = "any"
mr_signer = "any"
debug = "any"
[sgx.tcb]
accepted_statuses = "any"
"#;

#[test]
fn snp_guest_receives_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimSnp::new(Product::Genoa).unwrap());
    let root = dir.path().join("root.pem");
    std::fs::write(&root, sim.root().der()).unwrap();
    let mut config = ServerConfig::with_data_dir(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.verifier.dangerous_test_roots.push(root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, info) = rt.block_on(tessera_server::start(&config)).unwrap();
    let addr = server.local_addr().unwrap();
    rt.spawn(server.run(std::future::pending()));
    let token = std::fs::read_to_string(info.admin_token_file.unwrap()).unwrap();
    let url = format!("http://{addr}");

    let agent = ureq::Agent::new_with_defaults();
    let put = agent
        .post(&format!("{url}/kbs/v0/resource/default/key/one"))
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .send_json(serde_json::json!({"policy": POLICY, "value": "c2VjcmV0"}))
        .unwrap();
    assert_eq!(put.status(), 200);

    for auth in [AuthMode::Cookie, AuthMode::Bearer] {
        let client = Client::new(
            &url,
            ClientOptions {
                auth,
                retry: RetryPolicy {
                    handshake_attempts: 1,
                    handshake_delay: Duration::ZERO,
                    resource_attempts: 1,
                },
                ..ClientOptions::default()
            },
        )
        .unwrap();
        let secret = client
            .get_secret("snp", "default/key/one", None, &mut |rd| {
                sim.evidence(rd, &Measurements::default())
            })
            .unwrap();
        assert_eq!(&secret[..], b"secret");
    }
    // Another measurement: refused by the policy (403).
    let client = Client::new(&url, ClientOptions::default()).unwrap();
    let err = client
        .get_secret("snp", "default/key/one", None, &mut |rd| {
            sim.evidence(
                rd,
                &Measurements {
                    measurement: [1; 48],
                    ..Measurements::default()
                },
            )
        })
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
}
