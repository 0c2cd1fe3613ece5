//! PostgreSQL faults under load: two broker replicas over a PostgreSQL cluster this test owns
//! (initdb in a temporary directory, a free loopback port, trust auth), the cluster stopped
//! (`pg_ctl stop -m immediate`) in the middle of a burst of attestations, releases and secret
//! puts, and started again. While it is down every answer is either right or the fixed
//! `Unavailable` 503 — never a wrong value, never a 500, never a secret released against its
//! policy — `/readyz` answers 503 and `/healthz` 200; once it is back both replicas are ready and
//! serve again without a restart, and every put acknowledged before, during or after the outage
//! is readable.
//!
//! Needs PostgreSQL's server binaries (`/usr/lib/postgresql/<version>/bin`, Debian's
//! `postgresql` package, which `.ci/run` installs): skipped with a notice elsewhere, a failure
//! when `CI` is set.
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tessera::snp::abi::Product;
use tessera_broker::protocol::PublicError;
use tessera_guest::client::{
    Client, ClientError, ClientOptions, Credential, RetryPolicy, TeeKey, TeeKeyAlg, report_data,
};
use tessera_guest::sim::{Measurements, SimSnp};
use tessera_server::ServerConfig;

#[path = "../../../tests/common/own_postgres.rs"]
mod own_postgres;
use own_postgres::OwnPostgres;

const ALLOWED: &str = r#"
version = 1
id = "faults-allowed"
[snp]
measurement = ["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"]
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
"#;

/// A policy the simulated guest does not meet (another measurement).
const DENIED: &str = r#"
version = 1
id = "faults-denied"
[snp]
measurement = ["5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"]
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
"#;

const TOKEN: &str = "faults-admin-token-0123456789abcdef-0123456789";

/// How long the cluster may take to answer again after `pg_ctl start`, and the replicas to
/// notice.
const RECOVERY: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// HTTP.

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn client(url: &str) -> Client {
    Client::new(
        url,
        ClientOptions {
            retry: RetryPolicy::ONCE,
            timeout: Duration::from_secs(20),
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

/// The exact body of the public `Unavailable` answer.
fn unavailable_body() -> Value {
    serde_json::from_str(&PublicError::Unavailable.body()).unwrap()
}

/// `GET path` without credentials: status and body text.
fn get(url: &str, path: &str) -> (u16, String) {
    let mut r = agent().get(&format!("{url}{path}")).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// An admin put: status and JSON body (`Null` when empty or not JSON).
fn put(url: &str, path: &str, policy: &str, value: &[u8]) -> (u16, Value) {
    let mut r = agent()
        .post(&format!("{url}/kbs/v0/resource/{path}"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .send_json(json!({"policy": policy, "value": STANDARD.encode(value)}))
        .unwrap();
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Whether `e` is exactly the broker's public `Unavailable` answer.
fn is_unavailable(e: &ClientError) -> bool {
    matches!(e, ClientError::Broker { status: 503, kind, detail, .. }
        if kind == "Unavailable" && detail == PublicError::Unavailable.detail())
}

fn start_replica(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    replica: usize,
    store: &str,
    root: &Path,
) -> String {
    let shared = dir.join("shared");
    let mut config = ServerConfig::with_data_dir(dir.join(format!("replica{replica}")));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.store = Some(store.to_owned());
    config.verifier.dangerous_test_roots.push(root.to_owned());
    config.kek_file = Some(shared.join("kek"));
    config.token_key_file = Some(shared.join("token.key"));
    config.sealing_key_file = Some(shared.join("sealing.keys"));
    config.coco_signing_key_file = Some(shared.join("coco-signing.key"));
    config.admin.tokens = vec![tessera_server::config::StaticTokenConfig {
        name: "ops".into(),
        file: shared.join("admin.token"),
        repos: None,
    }];
    let (server, _) = rt.block_on(tessera_server::start(&config)).unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    rt.spawn(server.run(std::future::pending()));
    url
}

/// What the burst saw.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    unavailable: AtomicUsize,
    /// Puts answered 200: (path, value).
    acked: Mutex<Vec<(String, Vec<u8>)>>,
}

/// Polls `/readyz` on every replica until each answers `want` (status and body), or panics
/// after `within`.
fn wait_ready(urls: &[String], want: u16, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let answers: Vec<(u16, String)> = urls.iter().map(|u| get(u, "/readyz")).collect();
        if answers.iter().all(|(s, _)| *s == want) {
            for (status, body) in &answers {
                if *status == 503 {
                    assert_eq!(
                        serde_json::from_str::<Value>(body).unwrap(),
                        unavailable_body()
                    );
                } else {
                    assert_eq!(body, "ready\n");
                }
            }
            return;
        }
        assert!(
            Instant::now() < until,
            "/readyz did not answer {want} within {within:?}: {answers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn postgres_restart_mid_burst_gives_clean_503s_not_ready_then_recovery() {
    let Some(pg) = OwnPostgres::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = Arc::new(SimSnp::new(Product::Genoa).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.der");
    std::fs::write(&root, sim.root().der()).unwrap();
    std::fs::create_dir_all(dir.path().join("shared")).unwrap();
    std::fs::write(dir.path().join("shared/admin.token"), TOKEN).unwrap();
    std::fs::set_permissions(
        dir.path().join("shared/admin.token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let urls: Vec<String> = (0..2)
        .map(|i| start_replica(&rt, dir.path(), i, &pg.url(), &root))
        .collect();
    wait_ready(&urls, 200, RECOVERY);

    assert_eq!(
        put(&urls[0], "faults/key/allowed", ALLOWED, b"allowed").0,
        200
    );
    assert_eq!(put(&urls[0], "faults/key/denied", DENIED, b"denied").0, 200);

    // An attested guest: the token from replica 1 is good at both.
    let key = Arc::new(TeeKey::generate(TeeKeyAlg::P256).unwrap());
    let token = {
        let c = client(&urls[1]);
        let ch = c.auth("snp").unwrap();
        let rd = report_data(ch.hash, &ch.nonce, key.jwk()).unwrap();
        let evidence = sim.evidence(&rd, &Measurements::default()).unwrap();
        c.attest(&ch, &key, None, evidence).unwrap()
    };

    // The burst: four workers, each over both replicas, each step one of a fresh handshake and
    // attestation, a release of the allowed secret, a release of the denied one, a put.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, tally, urls) = (stop.clone(), tally.clone(), urls.clone());
            let (sim, key, token) = (sim.clone(), key.clone(), token.clone());
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let url = &urls[(w + n) % 2];
                    let c = client(url);
                    let cred = Credential::Bearer(&token);
                    let ok = match n % 4 {
                        0 => match c.auth("snp") {
                            Ok(ch) => {
                                let rd = report_data(ch.hash, &ch.nonce, key.jwk()).unwrap();
                                let ev = sim.evidence(&rd, &Measurements::default()).unwrap();
                                match c.attest(&ch, &key, None, ev) {
                                    Ok(_) => true,
                                    Err(e) if is_unavailable(&e) => false,
                                    Err(e) => panic!("attest at {url}: {e:?}"),
                                }
                            }
                            Err(e) if is_unavailable(&e) => false,
                            Err(e) => panic!("auth at {url}: {e:?}"),
                        },
                        1 => match c.resource(cred, &key, "faults/key/allowed") {
                            Ok(v) => {
                                assert_eq!(&v[..], b"allowed", "a wrong value at {url}");
                                true
                            }
                            Err(e) if is_unavailable(&e) => false,
                            Err(e) => panic!("release at {url}: {e:?}"),
                        },
                        2 => match c.resource(cred, &key, "faults/key/denied") {
                            Ok(_) => panic!("a secret released against its policy at {url}"),
                            Err(ClientError::Broker {
                                status: 403, kind, ..
                            }) if kind == "PolicyDeny" => true,
                            Err(e) if is_unavailable(&e) => false,
                            Err(e) => panic!("denied release at {url}: {e:?}"),
                        },
                        _ => {
                            let path = format!("faults/burst/w{w}-{n}");
                            let value = format!("value {w} {n}").into_bytes();
                            match put(url, &path, ALLOWED, &value) {
                                (200, _) => {
                                    tally.acked.lock().unwrap().push((path, value));
                                    true
                                }
                                (503, body) => {
                                    assert_eq!(body, unavailable_body(), "put at {url}");
                                    false
                                }
                                other => panic!("put at {url}: {other:?}"),
                            }
                        }
                    };
                    if ok {
                        tally.ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        tally.unavailable.fetch_add(1, Ordering::SeqCst);
                    }
                    n += 1;
                }
            })
        })
        .collect();

    // Load with the database up.
    std::thread::sleep(Duration::from_secs(1));
    let ok_before = tally.ok.load(Ordering::SeqCst);
    assert!(ok_before > 0, "no request succeeded before the fault");
    assert_eq!(tally.unavailable.load(Ordering::SeqCst), 0);

    // PostgreSQL goes away mid-burst.
    pg.down();
    let down_at = Instant::now();
    wait_ready(&urls, 503, Duration::from_secs(15));
    for u in &urls {
        assert_eq!(get(u, "/healthz"), (200, "ok\n".to_owned()));
    }
    // The burst keeps going against the dead database: only clean 503s (the workers assert it).
    let unavailable_at_down = tally.unavailable.load(Ordering::SeqCst);
    while tally.unavailable.load(Ordering::SeqCst) < unavailable_at_down + 20 {
        assert!(
            down_at.elapsed() < Duration::from_secs(20),
            "the burst did not see 503s while PostgreSQL was down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // PostgreSQL comes back: both replicas become ready and serve again, without a restart.
    pg.up();
    wait_ready(&urls, 200, RECOVERY);
    let ok_at_recovery = tally.ok.load(Ordering::SeqCst);
    let until = Instant::now() + RECOVERY;
    while tally.ok.load(Ordering::SeqCst) < ok_at_recovery + 40 {
        assert!(
            Instant::now() < until,
            "the burst did not recover after PostgreSQL came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }

    // After recovery, every replica does each step; every acknowledged put is readable.
    for u in &urls {
        let c = client(u);
        let ch = c.auth("snp").unwrap();
        let rd = report_data(ch.hash, &ch.nonce, key.jwk()).unwrap();
        let evidence = sim.evidence(&rd, &Measurements::default()).unwrap();
        let fresh = c.attest(&ch, &key, None, evidence).unwrap();
        assert_eq!(
            &c.resource(Credential::Bearer(&fresh), &key, "faults/key/allowed")
                .unwrap()[..],
            b"allowed"
        );
        assert_eq!(put(u, "faults/key/after", ALLOWED, b"after").0, 200);
    }
    let acked = tally.acked.lock().unwrap();
    assert!(!acked.is_empty());
    for (i, (path, value)) in acked.iter().enumerate() {
        let c = client(&urls[i % 2]);
        let got = c.resource(Credential::Bearer(&token), &key, path).unwrap();
        assert_eq!(&got[..], &value[..], "{path}");
    }
    eprintln!(
        "burst: {} ok, {} Unavailable, {} puts acknowledged",
        tally.ok.load(Ordering::SeqCst),
        tally.unavailable.load(Ordering::SeqCst),
        acked.len()
    );
}
