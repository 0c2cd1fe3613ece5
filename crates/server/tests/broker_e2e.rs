//! The broker end to end over real HTTP on loopback: simulated SNP and TDX guests through the
//! independent guest client (its JWE/JCS code shares nothing with the broker's), every refusal of
//! the release protocol, the admin API's credentials and scopes, the public error vocabulary, the
//! audit log, the metrics, and that no secret, token or session id reaches a log line or an error
//! body.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tessera::UnixTime;
use tessera::snp::abi::Product;
use tessera_broker::engine::EndorsementSource;
use tessera_guest::client::{
    Attestation, AuthMode, Client, ClientError, ClientOptions, Credential, RetryPolicy, Session,
    TeeKey, TeeKeyAlg, Token, report_data,
};
use tessera_guest::sim::{Measurements, SimSnp, SimTdx};
use tessera_server::config::StaticTokenConfig;
use tessera_server::{AppState, Metrics, Server, ServerConfig};

/// Pins the simulators' default measurement, refuses debug guests.
const POLICY: &str = r#"
version = 1
id = "e2e"
[snp]
measurement = ["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"]
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
[tdx]
mr_td = ["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"]
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
debug = "must-not"
[tdx.tcb]
accepted_statuses = ["UpToDate"]
"#;

const SECRET: &[u8] = b"e2e-secret-0b4f9a-never-logged";
const TENANT_TOKEN: &str = "tenant-b-token-0123456789abcdef-0123456789";

fn snp() -> &'static SimSnp {
    static S: OnceLock<SimSnp> = OnceLock::new();
    S.get_or_init(|| SimSnp::new(Product::Genoa).unwrap())
}

fn tdx() -> &'static SimTdx {
    static S: OnceLock<SimTdx> = OnceLock::new();
    S.get_or_init(|| SimTdx::new().unwrap())
}

/// Every log line the test process writes (the broker runs in-process).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static L: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    L.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buf);
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .try_init();
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Broker {
    url: String,
    /// The `metrics_listen` address's URL, when one is configured.
    metrics_url: Option<String>,
    admin_token: String,
    /// Seconds added to the broker's clock.
    skew: Arc<AtomicI64>,
    data: PathBuf,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start() -> Broker {
    start_with(|_| {})
}

fn start_with(edit: impl FnOnce(&mut ServerConfig)) -> Broker {
    start_full(edit, |_| None)
}

/// A broker as [`start_with`] makes it, with the endorsement source `source` makes from the
/// broker's clock skew (seconds added to the real clock).
fn start_full(
    edit: impl FnOnce(&mut ServerConfig),
    source: impl FnOnce(Arc<AtomicI64>) -> Option<EndorsementSource>,
) -> Broker {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("roots.pem");
    let mut pem = Vec::new();
    for cert in [snp().root(), tdx().root()] {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in STANDARD.encode(cert.der()).as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    std::fs::write(&roots, pem).unwrap();
    let endorsements = dir.path().join("endorsements");
    std::fs::create_dir_all(&endorsements).unwrap();
    std::fs::write(
        endorsements.join("tdx-collateral.json"),
        tdx().collateral_json().unwrap(),
    )
    .unwrap();
    std::fs::write(endorsements.join("vcek.der"), snp().vcek().der()).unwrap();
    let tenant = dir.path().join("tenant.token");
    std::fs::write(&tenant, TENANT_TOKEN).unwrap();
    let root_token = dir.path().join("root.token");
    std::fs::write(&root_token, "root-token-0123456789abcdef-0123456789abcdef").unwrap();
    // Secret files: others may not read them.
    for f in [&tenant, &root_token] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }

    let data = dir.path().join("data");
    let mut config = ServerConfig::with_data_dir(data.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.verifier.dangerous_test_roots.push(roots);
    config.verifier.endorsements.push(endorsements);
    config.admin.tokens = vec![
        StaticTokenConfig {
            name: "root".into(),
            file: root_token,
            repos: None,
        },
        StaticTokenConfig {
            name: "tenant-b".into(),
            file: tenant,
            repos: Some(vec!["tenant-b".into()]),
        },
    ];
    edit(&mut config);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let skew = Arc::new(AtomicI64::new(0));
    let clock_skew = Arc::clone(&skew);
    let server = rt.block_on(async {
        let (broker, admin, _) = tessera_server::startup::assemble(&config).await.unwrap();
        let mut broker = broker.with_clock(Arc::new(move || {
            let now = UnixTime::now().as_secs();
            UnixTime::from_secs(now + clock_skew.load(Ordering::SeqCst))
        }));
        if let Some(source) = source(Arc::clone(&skew)) {
            broker = broker.with_endorsement_source(source);
        }
        let state = AppState {
            broker,
            admin: Arc::new(admin),
            metrics: Arc::new(Metrics::default()),
            secure_cookies: config.secure_cookies(),
            request_timeout: Duration::from_secs(config.request_timeout_secs),
        };
        Server::bind(&config, state).await.unwrap()
    });
    let url = format!("http://{}", server.local_addr().unwrap());
    let metrics_url = server
        .metrics_addr()
        .unwrap()
        .map(|a| format!("http://{a}"));
    rt.spawn(server.run(std::future::pending()));
    let b = Broker {
        url,
        metrics_url,
        admin_token: "root-token-0123456789abcdef-0123456789abcdef".into(),
        skew,
        data,
        _rt: rt,
        _dir: dir,
    };
    for path in ["default/key/one", "tenant-b/key/db"] {
        b.put_secret(path);
    }
    b
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

impl Broker {
    /// Puts `SECRET` at `path` under `POLICY` with the root token (a new version).
    fn put_secret(&self, path: &str) {
        let (status, body) = self.admin(
            "POST",
            &format!("/kbs/v0/resource/{path}"),
            Some(&self.admin_token),
            Some(json!({"policy": POLICY, "value": STANDARD.encode(SECRET)})),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Puts version 2 of `default/key/one` (the value `v2`) under a policy that accepts
    /// measurement 01.. only, not the default measurement version 1's policy accepts.
    fn put_stricter_version_two(&self) {
        let strict = POLICY.replace(&"4d".repeat(48), &"01".repeat(48));
        let (status, body) = self.admin(
            "POST",
            "/kbs/v0/resource/default/key/one",
            Some(&self.admin_token),
            Some(json!({"policy": strict, "value": STANDARD.encode(b"v2")})),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Each of `queries` on `path`, with the root token: 400.
    fn refuses_queries(&self, method: &str, path: &str, queries: &[&str]) {
        for query in queries {
            let (status, body) = self.admin(
                method,
                &format!("{path}?{query}"),
                Some(&self.admin_token),
                None,
            );
            assert_eq!(status, 400, "{method} {path}?{query}: {body}");
        }
    }

    fn admin(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let a = agent();
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut resp = match (method, body) {
            ("POST", Some(b)) => {
                let mut r = a.post(&url);
                if let Some(h) = &auth {
                    r = r.header("Authorization", h);
                }
                r.send_json(b).unwrap()
            }
            ("POST", None) => {
                let mut r = a.post(&url);
                if let Some(h) = &auth {
                    r = r.header("Authorization", h);
                }
                r.send_empty().unwrap()
            }
            ("DELETE", _) => {
                let mut r = a.delete(&url);
                if let Some(h) = &auth {
                    r = r.header("Authorization", h);
                }
                r.call().unwrap()
            }
            _ => {
                let mut r = a.get(&url);
                if let Some(h) = &auth {
                    r = r.header("Authorization", h);
                }
                r.call().unwrap()
            }
        };
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// `method` (POST or PUT) with a text body.
    fn admin_text(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let a = agent();
        let mut r = if method == "PUT" {
            a.put(&url)
        } else {
            a.post(&url)
        };
        if let Some(t) = token {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = r.send(body.as_bytes()).unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    fn client(&self, alg: TeeKeyAlg, auth: AuthMode) -> Client {
        Client::new(
            &self.url,
            ClientOptions {
                key_alg: alg,
                auth,
                retry: RetryPolicy::ONCE,
                ..ClientOptions::default()
            },
        )
        .unwrap()
    }
}

fn snp_evidence(rd: &[u8; 64], m: &Measurements) -> Result<Value, ClientError> {
    snp().evidence(rd, m)
}

/// The kind and detail of a broker refusal, checking the fixed vocabulary.
/// A handshake of `c` with the simulators' default SNP guest.
fn attested(c: &Client) -> Attestation {
    c.handshake("snp", None, &mut |rd| {
        snp_evidence(rd, &Measurements::default())
    })
    .unwrap()
}

/// The secret at `path` for the attested `att`, with `mode`'s credential.
fn fetched(
    c: &Client,
    att: &Attestation,
    mode: AuthMode,
    path: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ClientError> {
    c.resource(att.credential(mode), &att.key, path)
}

fn refusal(e: &ClientError) -> (u16, String) {
    let status = e
        .status()
        .unwrap_or_else(|| panic!("not a broker answer: {e}"));
    let kind = e
        .kind()
        .unwrap_or_else(|| panic!("no error type: {e}"))
        .to_owned();
    (status, kind)
}

#[test]
fn snp_and_tdx_guests_receive_the_secret_with_every_key_and_mode() {
    let b = start();
    for alg in [TeeKeyAlg::P256, TeeKeyAlg::P521, TeeKeyAlg::Rsa] {
        for auth in [AuthMode::Cookie, AuthMode::Bearer] {
            let c = b.client(alg, auth);
            let s = c
                .get_secret("snp", "default/key/one", None, &mut |rd| {
                    snp_evidence(rd, &Measurements::default())
                })
                .unwrap();
            assert_eq!(&s[..], SECRET, "snp {alg:?} {auth:?}");
            let t = c
                .get_secret("tdx", "default/key/one", None, &mut |rd| {
                    tdx().evidence(rd, &Measurements::default())
                })
                .unwrap();
            assert_eq!(&t[..], SECRET, "tdx {alg:?} {auth:?}");
        }
    }
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    // The sev-crate report JSON (what CoCo guests send), and `cert_chain: null` (the VCEK comes
    // from the broker's endorsement directory).
    for form in ["sev", "no-chain"] {
        let s = c
            .get_secret("snp", "default/key/one", None, &mut |rd| {
                let raw = snp().report(rd, &Measurements::default(), |_| {}).unwrap();
                Ok(match form {
                    "sev" => tessera::Evidence::from_bytes(&raw).unwrap().to_kbs_json(),
                    _ => snp().evidence_json(&raw, false),
                })
            })
            .unwrap();
        assert_eq!(&s[..], SECRET, "{form}");
    }
    // A pinned version, and a deleted one.
    let (status, _) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/one",
        Some(&b.admin_token),
        Some(json!({"policy": POLICY, "value": STANDARD.encode(b"v2")})),
    );
    assert_eq!(status, 200);
    let att = attested(&c);
    // The token vouches for verification alone: no configuration or executables claim (each
    // release appraises the resource's own policy); genuine hardware's is a warning, and this
    // simulator's, trusted only as a test root, is contraindicated (hardware and instance not
    // recognized), which the bearer path does not read: it releases on the policy.
    let payload = att.token.as_str().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let cpu = &claims["submods"]["cpu0"];
    assert_eq!(cpu["ear.status"], "contraindicated", "{cpu}");
    let vector = cpu["ear.trustworthiness-vector"].as_object().unwrap();
    assert!(!vector.contains_key("configuration") && !vector.contains_key("executables"));
    assert_eq!(vector["instance-identity"], 97);
    assert_eq!(vector["hardware"], 97);
    let cred = att.credential(AuthMode::Cookie);
    assert_eq!(
        &c.resource(cred, &att.key, "default/key/one").unwrap()[..],
        b"v2"
    );
    assert_eq!(
        &c.resource(cred, &att.key, "default/key/one?version=1")
            .unwrap()[..],
        SECRET
    );
    // Its release entry names both policies it passed: its own and the newest version's.
    let (_, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    assert!(
        log["entries"].as_array().unwrap().iter().any(|e| {
            e["action"] == "release"
                && e["resource"] == "default/key/one@1"
                && e["reason"].as_str().is_some_and(|r| {
                    r.starts_with("policy e2e passed, and policy e2e of the newest version (2,")
                })
        }),
        "{log}"
    );
    // Every attestation and release here rested on the simulator's root, a dangerous test
    // root: each entry says so.
    for e in log["entries"].as_array().unwrap() {
        if (e["action"] == "release" || e["action"] == "attest") && e["verdict"] == "pass" {
            assert!(
                e["reason"]
                    .as_str()
                    .unwrap()
                    .ends_with(" (anchored by a dangerous test root, not a vendor's)"),
                "{e}"
            );
        }
    }
    // A delete query that is not exactly version=N is refused, not taken for "every version".
    b.refuses_queries(
        "DELETE",
        "/kbs/v0/resource/default/key/one",
        &[
            "versions=1",
            "Version=1",
            "%76ersion=1",
            "version=1&x=2",
            "version=0",
            "x",
        ],
    );
    let (_, list) = b.admin("GET", "/kbs/v0/admin/resources", Some(&b.admin_token), None);
    let live = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["resource"] == "default/key/one")
        .count();
    assert_eq!(live, 2, "{list}");
    let (status, _) = b.admin(
        "DELETE",
        "/kbs/v0/resource/default/key/one?version=1",
        Some(&b.admin_token),
        None,
    );
    assert_eq!(status, 200);
    let e = c
        .resource(cred, &att.key, "default/key/one?version=1")
        .unwrap_err();
    assert_eq!(refusal(&e), (404, "ResourceNotFound".into()));
    let e = c
        .resource(cred, &att.key, "default/key/missing")
        .unwrap_err();
    assert_eq!(refusal(&e), (404, "ResourceNotFound".into()));
}

/// PROTOCOL.md's interop trap: CoCo guests rebuild the JWE's AAD from the parsed header, so the
/// `protected` bytes on the wire must be `alg`, `enc`, then the rest sorted, with no whitespace —
/// for every TEE key type. Read from the raw HTTP answer, not through this project's client
/// (which uses the string as received and would not notice).
#[test]
fn resource_answers_carry_the_protected_header_in_coco_order() {
    let b = start();
    for alg in [TeeKeyAlg::P256, TeeKeyAlg::P521, TeeKeyAlg::Rsa] {
        let c = b.client(alg, AuthMode::Bearer);
        let att = attested(&c);
        let mut resp = agent()
            .get(format!("{}/kbs/v0/resource/default/key/one", b.url))
            .header("Authorization", format!("Bearer {}", att.token.as_str()))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{alg:?}");
        let body = resp.body_mut().read_to_vec().unwrap();
        assert!(
            tessera_guest::client::protected_header_in_coco_order(&body).unwrap(),
            "{alg:?}: {}",
            String::from_utf8_lossy(&body)
        );
        // And it opens with the TEE key bound into the evidence.
        assert_eq!(
            &fetched(&c, &att, AuthMode::Bearer, "default/key/one").unwrap()[..],
            SECRET
        );
    }
}

#[test]
fn policy_refusals_are_403() {
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let other = Measurements {
        measurement: [1; 48],
        ..Measurements::default()
    };
    let e = c
        .get_secret("snp", "default/key/one", None, &mut |rd| {
            snp_evidence(rd, &other)
        })
        .unwrap_err();
    assert_eq!(refusal(&e), (403, "PolicyDeny".into()));
    let debug = Measurements {
        debug: true,
        ..Measurements::default()
    };
    for tee in ["snp", "tdx"] {
        let e = c
            .get_secret(tee, "default/key/one", None, &mut |rd| match tee {
                "snp" => snp_evidence(rd, &debug),
                _ => tdx().evidence(rd, &debug),
            })
            .unwrap_err();
        assert_eq!(refusal(&e), (403, "PolicyDeny".into()), "{tee} debug");
    }
}

/// A version put under a stricter policy withdraws the older versions from the workloads it
/// excludes: a pinned older version is released only when the newest version's policy accepts
/// too (and its own policy still applies).
#[test]
fn a_stricter_newer_version_withdraws_the_older_ones() {
    let b = start();
    let one = Measurements {
        measurement: [1; 48],
        ..Measurements::default()
    };
    b.put_stricter_version_two();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let fetch = |m: &Measurements, path: &str| {
        let att = c
            .handshake("snp", None, &mut |rd| snp_evidence(rd, m))
            .unwrap();
        c.resource(att.credential(AuthMode::Cookie), &att.key, path)
    };
    // The default measurement: accepted by version 1's policy, not by version 2's.
    for path in ["default/key/one", "default/key/one?version=1"] {
        let e = fetch(&Measurements::default(), path).unwrap_err();
        assert_eq!(refusal(&e), (403, "PolicyDeny".into()), "{path}");
    }
    // Measurement 01..: version 2's policy accepts it, version 1's own policy does not.
    assert_eq!(&fetch(&one, "default/key/one").unwrap()[..], b"v2");
    let e = fetch(&one, "default/key/one?version=1").unwrap_err();
    assert_eq!(refusal(&e), (403, "PolicyDeny".into()));
    let (status, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    assert_eq!(status, 200);
    let newest_refused = log["entries"].as_array().unwrap().iter().any(|e| {
        e["action"] == "deny"
            && e["resource"] == "default/key/one@1"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("of the newest version (2)"))
    });
    assert!(newest_refused, "{log}");
    // Deleting the stricter version gives version 1 back to what its own policy accepts.
    let (status, _) = b.admin(
        "DELETE",
        "/kbs/v0/resource/default/key/one?version=2",
        Some(&b.admin_token),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(
        &fetch(&Measurements::default(), "default/key/one?version=1").unwrap()[..],
        SECRET
    );
}

/// Runs `/auth` then `/attest` with evidence from `evidence` for REPORT_DATA `rd_of`.
fn attest_with(
    c: &Client,
    tee: &str,
    edit: impl FnOnce(&mut Value),
    evidence: impl FnOnce(&[u8; 64]) -> Value,
) -> Result<Token, ClientError> {
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    let ch = c.auth(tee).unwrap();
    let rd = report_data(ch.hash, &ch.nonce, key.jwk()).unwrap();
    let mut body = tessera_guest::client::attest_request(&ch.nonce, key.jwk(), None, evidence(&rd));
    edit(&mut body);
    c.attest_with_body(&ch.session, &body)
}

#[test]
fn expired_challenges_and_sessions_are_purged_from_the_store() {
    use tessera_broker::store::{Challenge, SessionId, SqliteStore, Store as _};
    let b = start_with(|c| c.purge_interval_secs = 1);
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    // One attested session (its challenge's use is recorded), one challenge nobody answered
    // (nothing is stored for it).
    let attested = c.auth("snp").unwrap();
    let rd = report_data(attested.hash, &attested.nonce, key.jwk()).unwrap();
    let ev = snp_evidence(&rd, &Measurements::default()).unwrap();
    c.attest(&attested, &key, None, ev).unwrap();
    let unanswered = c.auth("snp").unwrap();
    let session = SessionId::parse(attested.session.cookie_value()).unwrap();
    let used = Challenge::from_session(&session).unwrap();
    assert!(
        Challenge::from_session(&SessionId::parse(unanswered.session.cookie_value()).unwrap())
            .is_some()
    );
    let db = rusqlite::Connection::open(b.data.join("tessera.db")).unwrap();
    let challenge_rows = || -> i64 {
        db.query_row("SELECT count(*) FROM challenges", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        challenge_rows(),
        1,
        "only the answered challenge is recorded"
    );

    // The same database file, opened beside the server (as a second process would).
    let store = SqliteStore::open_blocking(&b.data).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now_ms = UnixTime::now().as_secs() * 1000;
    // Rows that have not expired survive the purges the server runs every second.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        rt.block_on(store.get_session(&session, now_ms))
            .unwrap()
            .is_some()
    );
    // The record of the challenge's use is there: using it again is refused.
    assert!(!rt.block_on(store.use_challenge(&used)).unwrap());

    // The broker's clock moves an hour on: both have expired, and the next purge deletes them.
    // (`get_session` is asked at the old time, so only a deletion makes it answer `None`.)
    b.skew.store(3600, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while rt
        .block_on(store.get_session(&session, now_ms))
        .unwrap()
        .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired session is still in the store"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    while challenge_rows() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired challenge record is still in the store"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    b.skew.store(0, Ordering::SeqCst);
}

#[test]
fn no_release_and_no_admin_change_goes_unaudited() {
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let att = attested(&c);
    // The audit table refuses new entries (a trigger added from outside, as a full disk or a
    // broken database would make appends fail).
    let db = rusqlite::Connection::open(b.data.join("tessera.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit \
         BEGIN SELECT RAISE(ABORT, 'audit refused for the test'); END;",
    )
    .unwrap();
    // The policy passes, but the release cannot be recorded: no secret leaves.
    let e = fetched(&c, &att, AuthMode::Cookie, "default/key/one").unwrap_err();
    let (status, _) = refusal(&e);
    assert!(status >= 500, "{e}");
    // An admin change that cannot be recorded fails, and is not made.
    let (status, _) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/unaudited",
        Some(&b.admin_token),
        Some(json!({"policy": POLICY, "value": STANDARD.encode(b"x")})),
    );
    assert!(status >= 500, "{status}");
    let versions: i64 = db
        .query_row(
            "SELECT count(*) FROM secrets WHERE resource = 'default/key/unaudited'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(versions, 0, "a put stored without its audit entry");
    let (status, _) = b.admin(
        "DELETE",
        "/kbs/v0/resource/default/key/one",
        Some(&b.admin_token),
        None,
    );
    assert!(status >= 500, "{status}");
    let kek = std::fs::read(b.data.join("kek")).unwrap();
    let (status, _) = b.admin(
        "POST",
        "/kbs/v0/admin/kek/rotate",
        Some(&b.admin_token),
        None,
    );
    assert!(status >= 500, "{status}");
    assert_eq!(
        std::fs::read(b.data.join("kek")).unwrap(),
        kek,
        "a KEK rotation started without its audit entry"
    );
    // Once entries can be written again, the same session receives its secret (the refused
    // delete deleted nothing).
    db.execute_batch("DROP TRIGGER audit_refuses").unwrap();
    let s = fetched(&c, &att, AuthMode::Cookie, "default/key/one").unwrap();
    assert_eq!(&s[..], SECRET);
}

/// An audit row changed in the database so that it does not read as an entry (a verdict the
/// broker never writes): a page stops before it, and the page that starts at it is refused
/// with the fixed `AuditEntryDamaged` words and the entry's sequence number (500), which
/// `tessera audit verify` names; the damaged column goes to the log only.
#[test]
fn a_damaged_audit_entry_is_named_by_the_admin_api() {
    let b = start();
    let (status, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    assert_eq!(status, 200, "{log}");
    assert!(log["entries"].as_array().unwrap().len() >= 2, "{log}");
    let db = rusqlite::Connection::open(b.data.join("tessera.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET verdict = 'maybe' WHERE seq = 2;",
    )
    .unwrap();
    let (status, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    assert_eq!(status, 200, "{log}");
    let seqs: Vec<_> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(seqs, [Some(1)], "{log}");
    assert_eq!(log["next_after"], 1, "{log}");
    let (status, body) = b.admin(
        "GET",
        "/kbs/v0/admin/audit?after=1",
        Some(&b.admin_token),
        None,
    );
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body,
        json!({
            "type": "https://github.com/confidential-containers/kbs/errors/AuditEntryDamaged",
            "detail": tessera_broker::protocol::PublicError::AuditEntryDamaged { seq: 2 }.detail(),
            "seq": 2,
        })
    );
}

/// Sends `request` (an HTTP/1.1 request, or only its beginning) on a connection of its own and
/// returns the broker's answer up to the end of its headers.
fn raw_answer(b: &Broker, request: &str) -> String {
    use std::io::{Read as _, Write as _};
    let addr = b.url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_body_sent_too_slowly_is_refused_with_408() {
    let b = start_with(|c| c.request_timeout_secs = 1);
    let started = std::time::Instant::now();
    // Headers promising 1,000 bytes, then one byte, then nothing.
    let head = raw_answer(
        &b,
        "POST /kbs/v0/attest HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{",
    );
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A guest that received its challenge before a KEK rotation and attests after it finished
/// (the challenge's nonce was derived with the KEK the rotation retired) is still answered; a
/// guest whose challenge comes after the rotation is too.
#[test]
fn a_challenge_issued_before_a_kek_rotation_is_answered_after_it() {
    let b = start();
    let c = Client::new(&b.url, ClientOptions::default()).unwrap();
    let kek_before = std::fs::read(b.data.join("kek")).unwrap();
    let mut rotated = None;
    // The client calls this between /auth and /attest: the rotation runs to its end there.
    let att = c
        .handshake("snp", None, &mut |rd| {
            let (status, body) = b.admin(
                "POST",
                "/kbs/v0/admin/kek/rotate",
                Some(&b.admin_token),
                None,
            );
            rotated = Some((status, body));
            snp_evidence(rd, &Measurements::default())
        })
        .unwrap();
    let (status, body) = rotated.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retired"].as_array().map(Vec::len), Some(1), "{body}");
    assert_ne!(std::fs::read(b.data.join("kek")).unwrap(), kek_before);
    let s = fetched(&c, &att, AuthMode::Cookie, "default/key/one").unwrap();
    assert_eq!(&s[..], SECRET);
    let att = attested(&c);
    let s = fetched(&c, &att, AuthMode::Bearer, "default/key/one").unwrap();
    assert_eq!(&s[..], SECRET);
}

/// The newest version's policy gates a pinned older version only as the broker sealed it: a
/// database writer who changes the newest row's policy digest (to the older, looser one) does
/// not open the gate; no secret leaves.
#[test]
fn a_newest_version_whose_policy_was_changed_in_the_database_gates_nothing() {
    let b = start();
    b.put_stricter_version_two();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let att = attested(&c);
    let e = fetched(&c, &att, AuthMode::Cookie, "default/key/one?version=1").unwrap_err();
    assert_eq!(refusal(&e), (403, "PolicyDeny".into()));
    let db = rusqlite::Connection::open(b.data.join("tessera.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE secrets SET policy_digest =
                 (SELECT policy_digest FROM secrets WHERE resource = 'default/key/one'
                  AND version = 1)
             WHERE resource = 'default/key/one' AND version = 2",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    for path in ["default/key/one?version=1", "default/key/one"] {
        let e = fetched(&c, &att, AuthMode::Cookie, path).unwrap_err();
        assert!(refusal(&e).0 >= 500, "{path}: {e}");
    }
    // Each refusal is audited, naming the row that did not open.
    let (status, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    assert_eq!(status, 200);
    let unopened = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "deny"
                && e["resource"] == "default/key/one@2"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("does not open"))
        })
        .count();
    assert_eq!(unopened, 2, "{log}");
}

/// A repository's default policy written into the database by anyone but the broker (here a
/// policy accepting another measurement, through a direct connection) is never sealed under:
/// an admin put naming no policy is refused (400) and stores nothing. Set again through the
/// admin API, the default serves puts, also after a KEK rotation.
#[test]
fn a_default_policy_changed_in_the_database_is_not_sealed_under() {
    let b = start();
    let root = Some(b.admin_token.as_str());
    let (status, body) = b.admin_text("PUT", "/kbs/v0/admin/policy/default", root, POLICY);
    assert_eq!(status, 200, "{body}");
    let put = |path: &str| {
        b.admin(
            "POST",
            &format!("/kbs/v0/resource/{path}"),
            root,
            Some(json!({"value": STANDARD.encode(b"from-default")})),
        )
    };
    let (status, body) = put("default/key/d1");
    assert_eq!(status, 200, "{body}");
    // The database's writer: another policy, made the repository's default.
    let other = POLICY.replace(&"4d".repeat(48), &"01".repeat(48));
    let digest = tessera_broker::resource::PolicyDigest::of(other.as_bytes());
    let db = rusqlite::Connection::open(b.data.join("tessera.db")).unwrap();
    db.execute(
        "INSERT INTO policies(digest, text, created_ms) VALUES (?1, ?2, 0)",
        rusqlite::params![digest.as_str(), other],
    )
    .unwrap();
    db.execute(
        "UPDATE repo_policies SET digest = ?1 WHERE repo = 'default'",
        rusqlite::params![digest.as_str()],
    )
    .unwrap();
    let (status, body) = put("default/key/d2");
    assert_eq!(status, 400, "{body}");
    let one = Measurements {
        measurement: [1; 48],
        ..Measurements::default()
    };
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let att = c
        .handshake("snp", None, &mut |rd| snp_evidence(rd, &one))
        .unwrap();
    let e = fetched(&c, &att, AuthMode::Cookie, "default/key/d2").unwrap_err();
    assert_eq!(refusal(&e).0, 404, "nothing was stored");
    let e = fetched(&c, &att, AuthMode::Cookie, "default/key/d1").unwrap_err();
    assert_eq!(refusal(&e), (403, "PolicyDeny".into()));
    // Set again through the broker, the default serves puts, before and after a rotation.
    let (status, body) = b.admin_text("PUT", "/kbs/v0/admin/policy/default", root, POLICY);
    assert_eq!(status, 200, "{body}");
    let (status, body) = put("default/key/d2");
    assert_eq!(status, 200, "{body}");
    let (status, body) = b.admin("POST", "/kbs/v0/admin/kek/rotate", root, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["repo_policies"], 1, "{body}");
    assert_eq!(body["repo_policies_unauthentic"], 0, "{body}");
    let (status, body) = put("default/key/d3");
    assert_eq!(status, 200, "{body}");
    let att = attested(&c);
    assert_eq!(
        &fetched(&c, &att, AuthMode::Cookie, "default/key/d3").unwrap()[..],
        b"from-default"
    );
}

/// A KEK rotation that outlasts the request's deadline is not cut off: the admin is answered
/// 202 and the rotation goes on to its end, which the audit log records; a second one is
/// refused meanwhile. (Another process holding SQLite's write lock keeps the rotation waiting
/// past the 1 s deadline.)
#[test]
fn a_kek_rotation_outlives_the_request_deadline() {
    let b = start_with(|c| c.request_timeout_secs = 1);
    let outside = rusqlite::Connection::open(b.data.join("tessera.db")).unwrap();
    outside.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/admin/kek/rotate",
        Some(&b.admin_token),
        None,
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "rotating", "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/admin/kek/rotate",
        Some(&b.admin_token),
        None,
    );
    assert_eq!(status, 400, "{body}");
    std::thread::sleep(Duration::from_millis(500));
    outside.execute_batch("COMMIT").unwrap();
    // The rotation finishes in the background: both versions put at the start re-wrapped, the
    // first KEK retired.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let (status, audit) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
        assert_eq!(status, 200, "{audit}");
        let last = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["action"] == "admin_kek_rotate")
            .cloned();
        if let Some(e) = last
            && e["reason"] != "KEK rotation started"
        {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "{audit}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["verdict"], "pass", "{done}");
    let reason = done["reason"].as_str().unwrap();
    assert!(
        reason.ends_with(", 2 versions re-wrapped, 1 retired"),
        "{reason}"
    );
    // The secrets still open for a measured guest.
    let c = Client::new(&b.url, ClientOptions::default()).unwrap();
    let att = attested(&c);
    let s = fetched(&c, &att, AuthMode::Cookie, "default/key/one").unwrap();
    assert_eq!(&s[..], SECRET);
}

/// The `Set-Cookie` of a fresh `/auth` at `b`.
fn session_cookie(b: &Broker) -> String {
    let resp = agent()
        .post(&format!("{}/kbs/v0/auth", b.url))
        .send_json(json!({"version": "0.4.0", "tee": "snp", "extra-params": ""}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("kbs-session-id="), "{cookie}");
    cookie
}

#[test]
fn the_session_cookie_lives_as_long_as_the_session() {
    let max_age = |b: &Broker| {
        session_cookie(b)
            .split(';')
            .find_map(|p| p.trim().strip_prefix("Max-Age="))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    // Default: challenges and sessions both live 5 minutes.
    assert_eq!(max_age(&start()), 300);
    // Sessions of an hour: the cookie that names one is kept as long.
    assert_eq!(max_age(&start_with(|c| c.token_ttl_secs = 3600)), 3600);
}

/// The simulator's VCEK and chain, as an endorsement lookup returns them.
fn sim_chain() -> tessera::Endorsements {
    let mut e = tessera::Endorsements::new();
    e.add_certificates(vec![
        snp().vcek().clone(),
        snp().pki().ask().clone(),
        snp().pki().ark().clone(),
    ]);
    e
}

/// Simulated SEV-SNP evidence without its certificate chain (`cert_chain: null`): the broker
/// needs an endorsement lookup for it.
fn without_chain(rd: &[u8; 64]) -> Result<Value, ClientError> {
    let raw = snp().report(rd, &Measurements::default(), |_| {})?;
    Ok(snp().evidence_json(&raw, false))
}

/// Evidence that needs an endorsement lookup, which takes until after the challenge expired:
/// refused, and no session is made. The same lookup inside the challenge's life is served.
#[test]
fn a_challenge_that_expired_during_an_endorsement_lookup_is_refused() {
    let slow = Arc::new(AtomicI64::new(0));
    let lookup_takes = Arc::clone(&slow);
    let b = start_full(
        // Nothing from files: the VCEK and its chain come from the lookup.
        |c| c.verifier.endorsements.clear(),
        move |skew| {
            Some(Arc::new(move |_: &tessera::Evidence, _: &_| {
                // The lookup "takes" `lookup_takes` seconds of the broker's clock.
                skew.fetch_add(lookup_takes.load(Ordering::SeqCst), Ordering::SeqCst);
                Ok(sim_chain())
            }) as EndorsementSource)
        },
    );
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    // Six minutes: past the challenge's five.
    slow.store(360, Ordering::SeqCst);
    let e = c
        .get_secret("snp", "default/key/one", None, &mut without_chain)
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    let (_, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    let entries = log["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "attest" && e["reason"] == "the challenge expired"),
        "{log}"
    );
    assert!(
        !entries
            .iter()
            .any(|e| e["action"] == "attest" && e["verdict"] == "pass"),
        "{log}"
    );
    // A quick lookup: served (the verifier now holds the VCEK, so none is needed again).
    slow.store(0, Ordering::SeqCst);
    b.skew.store(0, Ordering::SeqCst);
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    assert_eq!(
        &c.get_secret("snp", "default/key/one", None, &mut without_chain)
            .unwrap()[..],
        SECRET
    );
}

/// Endorsement lookups are capped: while `MAX_ENDORSEMENT_LOOKUPS` of them run (here, held
/// until released), evidence that needs another is refused (401) without calling the source,
/// and once they return, the waiting guests get their secrets.
#[test]
fn endorsement_lookups_running_at_once_are_capped() {
    use tessera_broker::engine::MAX_ENDORSEMENT_LOOKUPS;
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let (source_calls, source_gate) = (Arc::clone(&calls), Arc::clone(&gate));
    let b = start_full(
        |c| c.verifier.endorsements.clear(),
        move |_| {
            Some(Arc::new(move |_: &tessera::Evidence, _: &_| {
                source_calls.fetch_add(1, Ordering::SeqCst);
                let (open, cv) = &*source_gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
                Ok(sim_chain())
            }) as EndorsementSource)
        },
    );
    std::thread::scope(|scope| {
        let waiting: Vec<_> = (0..MAX_ENDORSEMENT_LOOKUPS)
            .map(|_| {
                let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
                scope
                    .spawn(move || c.get_secret("snp", "default/key/one", None, &mut without_chain))
            })
            .collect();
        let all_running = (0..600).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            calls.load(Ordering::SeqCst) == MAX_ENDORSEMENT_LOOKUPS
        });
        assert!(all_running, "{} lookups", calls.load(Ordering::SeqCst));
        // One more: refused at once, the source not asked.
        let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
        let e = c
            .get_secret("snp", "default/key/one", None, &mut without_chain)
            .unwrap_err();
        assert_eq!(e.status(), Some(401), "{e}");
        assert_eq!(calls.load(Ordering::SeqCst), MAX_ENDORSEMENT_LOOKUPS);
        // The lookups return: every guest that waited gets its secret.
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        for t in waiting {
            assert_eq!(&t.join().unwrap().unwrap()[..], SECRET);
        }
    });
    // The refused guest, trying again: served (the verifier holds the VCEK now).
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    assert_eq!(
        &c.get_secret("snp", "default/key/one", None, &mut without_chain)
            .unwrap()[..],
        SECRET
    );
}

/// HEAD on a resource would run a release (audited as one) whose body is dropped: 405, and
/// nothing is released or audited as released.
#[test]
fn head_on_a_resource_is_refused_and_releases_nothing() {
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Bearer);
    let att = attested(&c);
    let resp = agent()
        .head(&format!("{}/kbs/v0/resource/default/key/one", b.url))
        .header("Authorization", &format!("Bearer {}", att.token.as_str()))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    // Every 405 of the path says what it takes, and that is not HEAD.
    let allow = |resp: &ureq::http::Response<ureq::Body>| {
        resp.headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(allow(&resp).as_deref(), Some("GET,POST,DELETE"));
    let put = agent()
        .put(&format!("{}/kbs/v0/resource/default/key/one", b.url))
        .send_empty()
        .unwrap();
    assert_eq!(put.status().as_u16(), 405);
    assert_eq!(allow(&put).as_deref(), Some("GET,POST,DELETE"));
    let released = |b: &Broker| {
        let (_, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "release")
            .count()
    };
    assert_eq!(released(&b), 0);
    // GET with the same token releases, once.
    assert_eq!(
        &fetched(&c, &att, AuthMode::Bearer, "default/key/one").unwrap()[..],
        SECRET
    );
    assert_eq!(released(&b), 1);
}

/// Plain HTTP: no `Secure` (a client would not send the cookie back); behind a TLS proxy,
/// `cookie_secure = true` adds it.
#[test]
fn the_session_cookie_is_secure_when_configured() {
    let attributes = |cookie: String| -> Vec<String> {
        cookie
            .split(';')
            .skip(1)
            .map(|p| p.trim().to_owned())
            .collect()
    };
    let plain = attributes(session_cookie(&start()));
    assert!(plain.iter().any(|a| a == "HttpOnly"), "{plain:?}");
    assert!(plain.iter().any(|a| a == "SameSite=Strict"), "{plain:?}");
    assert!(!plain.iter().any(|a| a == "Secure"), "{plain:?}");
    let proxied = attributes(session_cookie(&start_with(|c| {
        c.cookie_secure = Some(true)
    })));
    assert!(proxied.iter().any(|a| a == "Secure"), "{proxied:?}");
}

#[test]
fn unreadable_paths_queries_and_wrong_methods_answer_in_the_public_vocabulary() {
    let b = start();
    let kbs_error = |body: &Value, name: &str| {
        assert_eq!(
            body["type"],
            format!("https://github.com/confidential-containers/kbs/errors/{name}"),
            "{body}"
        );
        assert!(body["detail"].is_string(), "{body}");
    };
    // A query that does not parse.
    let (status, body) = b.admin(
        "GET",
        "/kbs/v0/admin/audit?after=not-a-number",
        Some(&b.admin_token),
        None,
    );
    assert_eq!(status, 400);
    kbs_error(&body, "InvalidRequest");
    // A path segment that is not UTF-8 once decoded.
    let (status, body) = b.admin("GET", "/kbs/v0/resource/%FF/key/one", None, None);
    assert_eq!(status, 400);
    kbs_error(&body, "InvalidRequest");
    // A method the path does not take.
    let mut resp = agent()
        .put(&format!("{}/kbs/v0/auth", b.url))
        .send_empty()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    kbs_error(&body, "InvalidRequest");
}

#[test]
fn a_configured_binding_hash_is_selected_and_used() {
    let b = start_with(|c| {
        c.binding_hash = Some(tessera_broker::binding::HashAlgorithm::Sha512);
    });
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let ch = c.auth("snp").unwrap();
    assert_eq!(ch.hash, tessera_guest::client::HashAlg::Sha512);
    // The whole flow binds REPORT_DATA with SHA-512 and receives the secret.
    let s = c
        .get_secret("snp", "default/key/one", None, &mut |rd| {
            snp_evidence(rd, &Measurements::default())
        })
        .unwrap();
    assert_eq!(&s[..], SECRET);
    // Evidence bound with SHA-384 (the default) to a SHA-512 challenge is refused.
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    let ch = c.auth("snp").unwrap();
    let rd = report_data(tessera_guest::client::HashAlg::Sha384, &ch.nonce, key.jwk()).unwrap();
    let e = c
        .attest(
            &ch,
            &key,
            None,
            snp_evidence(&rd, &Measurements::default()).unwrap(),
        )
        .unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));
}

#[test]
fn connections_beyond_max_connections_wait_for_a_free_slot() {
    let b = start_with(|c| c.max_connections = 2);
    let addr = b.url.trim_start_matches("http://").to_owned();
    let healthz = |wait_ms: u64| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(wait_ms)))
            .build()
            .into();
        agent
            .get(&format!("{}/healthz", b.url))
            .call()
            .map(|r| r.status().as_u16())
    };
    assert_eq!(healthz(10_000).unwrap(), 200);
    // Two idle connections take both slots (setup's connections have closed by now).
    std::thread::sleep(Duration::from_millis(200));
    let first = std::net::TcpStream::connect(&addr).unwrap();
    let second = std::net::TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(healthz(1500).is_err(), "a third connection was served");
    // One ends: the waiting connection is served.
    drop(first);
    assert_eq!(healthz(10_000).unwrap(), 200);
    drop(second);
}

/// With `max_connections_per_address`, a client address over its cap has its connection
/// closed at once (not queued); when one of its connections ends, it is served again.
#[test]
fn connections_beyond_the_per_address_cap_are_closed() {
    use std::io::Read as _;
    let b = start_with(|c| c.max_connections_per_address = Some(2));
    let addr = b.url.trim_start_matches("http://").to_owned();
    let healthz = || {
        agent()
            .get(&format!("{}/healthz", b.url))
            .call()
            .map(|r| r.status().as_u16())
    };
    assert_eq!(healthz().unwrap(), 200);
    std::thread::sleep(Duration::from_millis(200));
    let first = std::net::TcpStream::connect(&addr).unwrap();
    let _second = std::net::TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // A third from 127.0.0.1: accepted and closed at once (end of stream, no waiting).
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = third.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the third connection got an answer");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "it was held, not closed"
    );
    assert!(healthz().is_err(), "served over the cap");
    // One ends: the address is served again.
    drop(first);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(healthz().unwrap(), 200);
}

/// The session cookie carries the challenge; the nonce is derived from it with the KEK. A
/// cookie edited to keep a challenge alive, or from the future, or used once already, is
/// refused, and none of them takes the genuine challenge away from its guest.
#[test]
fn forged_and_reused_session_cookies_are_refused() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    let good = |rd: &[u8; 64]| snp_evidence(rd, &Measurements::default()).unwrap();
    // The issue time sits after the 32 random bytes (big-endian Unix ms).
    let moved = |session: &Session, by_ms: i64| {
        let mut id = URL_SAFE_NO_PAD.decode(session.cookie_value()).unwrap();
        let t = i64::from_be_bytes(id[32..40].try_into().unwrap()) + by_ms;
        id[32..40].copy_from_slice(&t.to_be_bytes());
        Session::from_cookie_value(&URL_SAFE_NO_PAD.encode(id)).unwrap()
    };
    let ch = c.auth("snp").unwrap();
    let rd = report_data(ch.hash, &ch.nonce, key.jwk()).unwrap();
    let body = tessera_guest::client::attest_request(&ch.nonce, key.jwk(), None, good(&rd));
    // A later issue time (an old challenge kept alive) with the nonce issued for the real one.
    let e = c
        .attest_with_body(&moved(&ch.session, 60_000), &body)
        .unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));
    // An issue time an hour ahead: no challenge the broker issued.
    let e = c
        .attest_with_body(&moved(&ch.session, 3_600_000), &body)
        .unwrap_err();
    assert_eq!(refusal(&e).0, 401, "{e}");
    // Not a session id at all.
    let junk = Session::from_cookie_value("not-a-session").unwrap();
    let e = c.attest_with_body(&junk, &body).unwrap_err();
    assert_eq!(refusal(&e).0, 401, "{e}");
    // The forgeries did not use the genuine challenge up; answered once, it is used.
    c.attest_with_body(&ch.session, &body).unwrap();
    let e = c.attest_with_body(&ch.session, &body).unwrap_err();
    assert_eq!(refusal(&e).0, 401, "{e}");

    // A refused answer uses the challenge up too: a good answer after it is refused.
    let ch = c.auth("snp").unwrap();
    let rd = report_data(ch.hash, &ch.nonce, key.jwk()).unwrap();
    let mut padded = rd;
    padded[63] = 1;
    let e = c.attest(&ch, &key, None, good(&padded)).unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));
    let e = c.attest(&ch, &key, None, good(&rd)).unwrap_err();
    assert_eq!(refusal(&e).0, 401, "{e}");

    // A cookie issued by a broker whose clock runs up to a minute ahead is answered; one
    // issued further ahead is not.
    for (ahead_secs, ok) in [(55, true), (65, false)] {
        b.skew.store(ahead_secs, Ordering::SeqCst);
        let ch = c.auth("snp").unwrap();
        b.skew.store(0, Ordering::SeqCst);
        let rd = report_data(ch.hash, &ch.nonce, key.jwk()).unwrap();
        let got = c.attest(&ch, &key, None, good(&rd));
        assert_eq!(got.is_ok(), ok, "{ahead_secs} s ahead: {:?}", got.err());
    }

    // Each refusal is in the audit log, with its reason; only challenges answered with their
    // nonce left a record of their use (a forged cookie leaves none).
    let db = rusqlite::Connection::open(b.data.join("tessera.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM audit WHERE reason = 'the challenge was already used'"),
        2
    );
    assert_eq!(
        count("SELECT count(*) FROM audit WHERE reason = 'no challenge for this session'"),
        2
    );
    assert_eq!(
        count("SELECT count(*) FROM audit WHERE reason LIKE 'snp: the nonce is not%'"),
        1
    );
    assert_eq!(count("SELECT count(*) FROM challenges"), 3);
    assert_eq!(count("SELECT count(*) FROM sessions"), 2);
}

#[test]
fn attestation_refusals_are_401() {
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let good = |rd: &[u8; 64]| snp_evidence(rd, &Measurements::default()).unwrap();
    attest_with(&c, "snp", |_| {}, good).unwrap();

    // Replayed nonce: the same session's challenge used twice.
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    let ch = c.auth("snp").unwrap();
    let rd = report_data(ch.hash, &ch.nonce, key.jwk()).unwrap();
    let ev = good(&rd);
    c.attest(&ch, &key, None, ev.clone()).unwrap();
    let e = c.attest(&ch, &key, None, ev).unwrap_err();
    assert_eq!(refusal(&e).0, 401, "{e}");

    // The nonce of another session.
    let first = c.auth("snp").unwrap();
    let second = c.auth("snp").unwrap();
    let rd = report_data(first.hash, &first.nonce, key.jwk()).unwrap();
    let body = tessera_guest::client::attest_request(&first.nonce, key.jwk(), None, good(&rd));
    let e = c.attest_with_body(&second.session, &body).unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));

    // An expired challenge (the broker's clock moves six minutes on).
    let ch = c.auth("snp").unwrap();
    let rd = report_data(ch.hash, &ch.nonce, key.jwk()).unwrap();
    b.skew.store(360, Ordering::SeqCst);
    let e = c.attest(&ch, &key, None, good(&rd)).unwrap_err();
    b.skew.store(0, Ordering::SeqCst);
    assert_eq!(refusal(&e).0, 401, "{e}");

    // REPORT_DATA bound to another key.
    let other = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    let e = attest_with(
        &c,
        "snp",
        |_| {},
        |_| {
            let ch_rd = [0u8; 64];
            good(&ch_rd)
        },
    )
    .unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));
    let ch = c.auth("snp").unwrap();
    let rd = report_data(ch.hash, &ch.nonce, other.jwk()).unwrap();
    let e = c.attest(&ch, &key, None, good(&rd)).unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));

    // Non-zero padding after the SHA-384 digest.
    let e = attest_with(
        &c,
        "snp",
        |_| {},
        |rd| {
            let mut padded = *rd;
            padded[63] = 1;
            good(&padded)
        },
    )
    .unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));

    // Tampered evidence: a signed byte flipped.
    let e = attest_with(
        &c,
        "snp",
        |_| {},
        |rd| {
            let mut raw = snp().report(rd, &Measurements::default(), |_| {}).unwrap();
            raw[0x90] ^= 1;
            snp().evidence_json(&raw, true)
        },
    )
    .unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));

    // Evidence of another TEE than the session's.
    let e = attest_with(&c, "tdx", |_| {}, good).unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));

    // Init data: its digest in HOST_DATA passes; another digest fails.
    let init = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, init.as_bytes());
    let with_init = |rd: &[u8; 64], host: &[u8]| {
        snp_evidence(
            rd,
            &Measurements {
                init_data_digest: host.to_vec(),
                ..Measurements::default()
            },
        )
        .unwrap()
    };
    let s = c
        .get_secret("snp", "default/key/one", Some(init), &mut |rd| {
            Ok(with_init(rd, &digest.as_ref()[..32]))
        })
        .unwrap();
    assert_eq!(&s[..], SECRET);
    let e = c
        .get_secret("snp", "default/key/one", Some(init), &mut |rd| {
            Ok(with_init(rd, &[9; 32]))
        })
        .unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));
    // Init data with an SGX quote, which has no field to carry its digest: refused before the
    // quote is verified, whatever the quote says.
    let e = c
        .get_secret("sgx", "default/key/one", Some(init), &mut |rd| {
            let quote = tdx().quote(rd, &Measurements::default(), |spec| {
                let report_data = spec.report_data;
                *spec = tessera::tdx::sim::QuoteSpec::sgx();
                spec.report_data = report_data;
            })?;
            Ok(json!({ "quote": STANDARD.encode(quote), "cc_eventlog": null }))
        })
        .unwrap_err();
    assert_eq!(refusal(&e), (401, "AttestationFailed".into()));
    assert!(logged("init-data: this evidence has no init-data field") >= 1);

    // Another protocol version.
    let e = c
        .auth_with_body(&json!({"version": "0.1.1", "tee": "snp", "extra-params": ""}))
        .unwrap_err();
    assert_eq!(refusal(&e), (401, "ProtocolVersion".into()));
}

#[test]
fn tokens_on_the_bearer_path() {
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Bearer);
    let att = attested(&c);
    let cred = att.credential(AuthMode::Bearer);
    assert_eq!(
        &c.resource(cred, &att.key, "default/key/one").unwrap()[..],
        SECRET
    );
    // Expired: the broker's clock past the token's five minutes.
    b.skew.store(301, Ordering::SeqCst);
    let e = c.resource(cred, &att.key, "default/key/one").unwrap_err();
    b.skew.store(0, Ordering::SeqCst);
    assert_eq!(refusal(&e), (401, "TokenInvalid".into()));
    // Foreign: a token of another broker (its own key).
    let other = start();
    let foreign = other
        .client(TeeKeyAlg::P256, AuthMode::Bearer)
        .handshake("snp", None, &mut |rd| {
            snp_evidence(rd, &Measurements::default())
        })
        .unwrap();
    let e = c
        .resource(
            foreign.credential(AuthMode::Bearer),
            &att.key,
            "default/key/one",
        )
        .unwrap_err();
    assert_eq!(refusal(&e), (401, "TokenInvalid".into()));
    // The token twice (two Authorization headers), or the session cookie twice: neither
    // counts (which one would depend on their order), so no credential (401).
    {
        let bearer = att.credential(AuthMode::Bearer);
        let cookie = att.credential(AuthMode::Cookie);
        let (
            tessera_guest::client::Credential::Bearer(token),
            tessera_guest::client::Credential::Cookie(session),
        ) = (bearer, cookie)
        else {
            panic!("credentials of the wrong kind");
        };
        let twice = [
            format!(
                "Authorization: Bearer {0}\r\nAuthorization: Bearer {0}",
                token.as_str()
            ),
            format!("Cookie: {0}\r\nCookie: {0}", &*session.cookie_header()),
            format!("Cookie: {0}; {0}", &*session.cookie_header()),
        ];
        for headers in twice {
            let answer = raw_answer(
                &b,
                &format!(
                    "GET /kbs/v0/resource/default/key/one HTTP/1.1\r\nHost: t\r\n{headers}\r\n\r\n"
                ),
            );
            assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        }
    }
    // No credential at all.
    let (status, body) = b.admin("GET", "/kbs/v0/resource/default/key/one", None, None);
    assert_eq!(status, 401);
    assert_eq!(
        body["type"],
        "https://github.com/confidential-containers/kbs/errors/UnAuthenticated"
    );
}

/// Counts of `text` in the captured log lines (every test of this binary logs there).
fn logged(text: &str) -> usize {
    logs()
        .lock()
        .map(|l| String::from_utf8_lossy(&l).matches(text).count())
        .unwrap()
}

/// A resource request needs an attested, unexpired session: a challenge not yet answered, a
/// cookie that is no session id, and a session past its lifetime are each 401.
#[test]
fn resource_requests_without_a_live_session_are_401() {
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    let before = logged("session: no attested session");
    let ch = c.auth("snp").unwrap();
    let e = c
        .resource(Credential::Cookie(&ch.session), &key, "default/key/one")
        .unwrap_err();
    assert_eq!(refusal(&e), (401, "InvalidSession".into()));
    assert!(logged("session: no attested session") > before);
    let before = logged("session: malformed session id");
    let junk = Session::from_cookie_value("not-a-session").unwrap();
    let e = c
        .resource(Credential::Cookie(&junk), &key, "default/key/one")
        .unwrap_err();
    assert_eq!(refusal(&e), (401, "InvalidSession".into()));
    assert!(logged("session: malformed session id") > before);
    // Attested and used, then past its five minutes (the broker's clock moved on).
    let att = attested(&c);
    let cred = att.credential(AuthMode::Cookie);
    assert_eq!(
        &c.resource(cred, &att.key, "default/key/one").unwrap()[..],
        SECRET
    );
    let before = logged("session: the attested session expired");
    b.skew.store(301, Ordering::SeqCst);
    let e = c.resource(cred, &att.key, "default/key/one").unwrap_err();
    b.skew.store(0, Ordering::SeqCst);
    assert_eq!(refusal(&e), (401, "InvalidSession".into()));
    assert!(logged("session: the attested session expired") > before);
}

/// A bearer token stands only for the session the store holds with that token's digest: a
/// replica that rebuilds the session refuses the token when the row names another token, or
/// when the row is gone.
#[test]
fn a_bearer_token_needs_its_own_session_row() {
    let a = start();
    let b = start_with(|c| c.data_dir = a.data.clone());
    let ca = a.client(TeeKeyAlg::P256, AuthMode::Bearer);
    let cb = b.client(TeeKeyAlg::P256, AuthMode::Bearer);
    let db = rusqlite::Connection::open(a.data.join("tessera.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let attested = || attested(&ca);
    // Untouched, `b` rebuilds the session and releases.
    let att = attested();
    assert_eq!(
        &fetched(&cb, &att, AuthMode::Bearer, "default/key/one").unwrap()[..],
        SECRET
    );
    // The row names another token.
    let att = attested();
    db.execute("UPDATE sessions SET token = ?1", [&"0".repeat(64)])
        .unwrap();
    let before = logged("token: not the token issued to this session");
    let e = fetched(&cb, &att, AuthMode::Bearer, "default/key/one").unwrap_err();
    assert_eq!(refusal(&e), (401, "TokenInvalid".into()));
    assert!(logged("token: not the token issued to this session") > before);
    // The row is gone.
    let att = attested();
    db.execute("DELETE FROM sessions", []).unwrap();
    let before = logged("token: no attested session");
    let e = fetched(&cb, &att, AuthMode::Bearer, "default/key/one").unwrap_err();
    assert_eq!(refusal(&e), (401, "TokenInvalid".into()));
    assert!(logged("token: no attested session") > before);
}

/// Admin requests whose path, version or body cannot be what they name: a repository or
/// resource path that is none, `version=0`, and bodies that are not UTF-8 are 400, and
/// change nothing.
#[test]
fn admin_requests_with_unusable_paths_versions_and_bodies_are_400() {
    let b = start();
    let root = Some(b.admin_token.as_str());
    let put = json!({"policy": POLICY, "value": STANDARD.encode(b"x")});
    for path in [
        "/kbs/v0/resource/.hidden/key/one",
        "/kbs/v0/resource/default/key/..",
        "/kbs/v0/resource/a%20b/key/one",
    ] {
        let (status, body) = b.admin("POST", path, root, Some(put.clone()));
        assert_eq!(status, 400, "{path}: {body}");
    }
    let (status, _) = b.admin_text("PUT", "/kbs/v0/admin/policy/a%20b", root, POLICY);
    assert_eq!(status, 400);
    // A policy naming a reference file, which the broker cannot read (no release could ever
    // pass its rule): refused at upload, as a put's policy and as a repository's default, and
    // nothing is stored.
    let naming = POLICY.replacen(
        "measurement = [\"",
        "measurement = { file = \"/etc/passwd\" }\n#[\"",
        1,
    );
    assert_ne!(naming, POLICY);
    let files = json!({"policy": naming, "value": STANDARD.encode(b"x")});
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/files",
        root,
        Some(files),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = b.admin_text("PUT", "/kbs/v0/admin/policy/files", root, &naming);
    assert_eq!(status, 400, "{body}");
    // The same as a sealed file's policy; the file sealed with the values is imported.
    let (status, keys) = b.admin("GET", "/kbs/v0/sealing-key", None, None);
    assert_eq!(status, 200);
    let path = tessera_broker::resource::ResourcePath::parse("default/key/sealed").unwrap();
    for (policy, want) in [(naming.as_str(), 400), (POLICY, 200)] {
        let sealed = tessera_broker::gitseal::seal(&keys, &path, policy, b"v").unwrap();
        let (status, body) = b.admin_text("POST", "/kbs/v0/admin/sealed", root, &sealed);
        assert_eq!(status, want, "{body}");
    }
    let (_, list) = b.admin("GET", "/kbs/v0/admin/resources", root, None);
    assert!(!list.to_string().contains("default/key/files"), "{list}");
    assert!(list.to_string().contains("default/key/sealed"), "{list}");
    let (status, _) = b.admin(
        "DELETE",
        "/kbs/v0/resource/default/key/one?version=0",
        root,
        None,
    );
    assert_eq!(status, 400);
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let att = attested(&c);
    // (Sent by hand: this project's client refuses to ask for version 0.) A second or
    // misspelt pin is refused too, not answered with another version.
    for query in [
        "version=0",
        "Version=1",
        "%76ersion=1",
        "version=1&version=2",
    ] {
        let mut resp = agent()
            .get(&format!(
                "{}/kbs/v0/resource/default/key/one?{query}",
                b.url
            ))
            .header(
                "Cookie",
                &format!("kbs-session-id={}", att.session.cookie_value()),
            )
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{query}");
        let body = resp.body_mut().read_to_string().unwrap();
        assert!(body.contains("errors/InvalidRequest"), "{query}: {body}");
    }
    // Bodies that are not UTF-8.
    for path in ["/kbs/v0/admin/policy/default", "/kbs/v0/admin/sealed"] {
        let url = format!("{}{path}", b.url);
        let a = agent();
        let r = if path.contains("policy") {
            a.put(&url)
        } else {
            a.post(&url)
        };
        let resp = r
            .header("Authorization", &format!("Bearer {}", b.admin_token))
            .send(&[0xffu8, 0xfe, 0x00][..])
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{path}");
    }
    // Nothing changed: the secret is still version 1 and still opens.
    assert_eq!(
        &fetched(&c, &att, AuthMode::Cookie, "default/key/one").unwrap()[..],
        SECRET
    );
}

/// Bodies and credentials over their limits: `/auth` bodies over 64 KiB and admin bodies over
/// 4 MiB are 413, an admin credential over 8 KiB is 401, each before anything is done.
#[test]
fn bodies_and_credentials_over_their_limits_are_refused() {
    let b = start();
    let big_auth = format!(
        r#"{{"version":"0.4.0","tee":"snp","pad":"{}"}}"#,
        "a".repeat(65 * 1024)
    );
    let (status, body) = b.admin_text("POST", "/kbs/v0/auth", None, &big_auth);
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        body["type"],
        "https://github.com/confidential-containers/kbs/errors/PayloadTooLarge"
    );
    let big_put = format!(
        r#"{{"policy":"","value":"{}"}}"#,
        "A".repeat(4 * 1024 * 1024 + 1)
    );
    let (status, _) = b.admin_text(
        "POST",
        "/kbs/v0/resource/default/key/big",
        Some(&b.admin_token),
        &big_put,
    );
    assert_eq!(status, 413);
    let long_token = "t".repeat(8 * 1024 + 1);
    let (status, body) = b.admin("GET", "/kbs/v0/admin/resources", Some(&long_token), None);
    assert_eq!(status, 401, "{body}");
    let (status, list) = b.admin("GET", "/kbs/v0/admin/resources", Some(&b.admin_token), None);
    assert_eq!(status, 200);
    assert!(!list.to_string().contains("default/key/big"));
}

/// The admin listing comes in pages: following `next_after` reads every version once, in
/// order; a tenant's pages hold only its repositories; a half-given start is refused.
#[test]
fn the_admin_listing_pages() {
    let b = start();
    for path in ["default/key/one", "default/key/two", "tenant-b/key/db"] {
        b.put_secret(path);
    }
    let rows = |list: &Value| -> Vec<(String, u64)> {
        list["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["resource"].as_str().unwrap().to_owned(),
                    v["version"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let paged = |token: &str, limit: u32| {
        let mut all = Vec::new();
        let mut query = String::new();
        loop {
            let (status, page) = b.admin(
                "GET",
                &format!("/kbs/v0/admin/resources?limit={limit}{query}"),
                Some(token),
                None,
            );
            assert_eq!(status, 200, "{page}");
            assert!(page["versions"].as_array().unwrap().len() <= limit as usize);
            all.extend(rows(&page));
            if page["next_after"].is_null() {
                return all;
            }
            // Where the next page starts is one of the token's own rows, never another
            // repository's resource.
            if token == TENANT_TOKEN {
                assert!(
                    page["next_after"]["resource"]
                        .as_str()
                        .unwrap()
                        .starts_with("tenant-b/"),
                    "{page}"
                );
            }
            query = format!(
                "&after={}&after_version={}",
                page["next_after"]["resource"].as_str().unwrap(),
                page["next_after"]["version"]
            );
        }
    };
    let (_, whole) = b.admin("GET", "/kbs/v0/admin/resources", Some(&b.admin_token), None);
    assert!(whole["next_after"].is_null(), "{whole}");
    let whole = rows(&whole);
    let own = |r: &str, v: u64| (r.to_owned(), v);
    assert_eq!(
        whole,
        vec![
            own("default/key/one", 1),
            own("default/key/one", 2),
            own("default/key/two", 1),
            own("tenant-b/key/db", 1),
            own("tenant-b/key/db", 2),
        ]
    );
    for limit in [1, 2, 4] {
        assert_eq!(paged(&b.admin_token, limit), whole, "limit {limit}");
    }
    assert_eq!(
        paged(TENANT_TOKEN, 1),
        vec![own("tenant-b/key/db", 1), own("tenant-b/key/db", 2)]
    );
    // A limit past the most is the most, however large (past a u32 too), 0 is 1.
    for limit in ["1000", "4294967295", "4294967296", "18446744073709551615"] {
        let (status, page) = b.admin(
            "GET",
            &format!("/kbs/v0/admin/resources?limit={limit}"),
            Some(&b.admin_token),
            None,
        );
        assert_eq!(status, 200, "{limit}: {page}");
        assert_eq!(rows(&page), whole, "{limit}");
        let (status, page) = b.admin(
            "GET",
            &format!("/kbs/v0/admin/audit?limit={limit}"),
            Some(&b.admin_token),
            None,
        );
        assert_eq!(status, 200, "{limit}: {page}");
    }
    let (_, page) = b.admin(
        "GET",
        "/kbs/v0/admin/resources?limit=0",
        Some(&b.admin_token),
        None,
    );
    assert_eq!(rows(&page).len(), 1, "{page}");
    b.refuses_queries(
        "GET",
        "/kbs/v0/admin/resources",
        &["after=default/key/one", "after_version=1", "limit=x"],
    );
}

/// With `metrics_listen`, `/metrics` moves to that address (with the health endpoints): the
/// broker's own port answers it 404, the metrics port serves nothing of the broker's API.
#[test]
fn metrics_can_have_an_address_of_their_own() {
    let get = |url: &str| -> (u16, String) {
        let mut r = agent().get(url).call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let b = start();
    assert!(b.metrics_url.is_none());
    assert_eq!(get(&format!("{}/metrics", b.url)).0, 200);
    let b = start_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap()));
    let metrics = b.metrics_url.clone().unwrap();
    assert_ne!(metrics, b.url);
    // A flow on the broker's port, counted on the metrics port.
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    assert_eq!(
        &c.get_secret("snp", "default/key/one", None, &mut |rd| {
            snp_evidence(rd, &Measurements::default())
        })
        .unwrap()[..],
        SECRET
    );
    let (status, body) = get(&format!("{metrics}/metrics"));
    assert_eq!(status, 200);
    assert!(
        body.contains("tessera_requests_total{endpoint=\"/kbs/v0/attest\",status=\"200\"} 1"),
        "{body}"
    );
    assert_eq!(get(&format!("{}/metrics", b.url)).0, 404);
    for path in ["/healthz", "/readyz"] {
        assert_eq!(get(&format!("{metrics}{path}")).0, 200, "{path}");
        assert_eq!(get(&format!("{}{path}", b.url)).0, 200, "{path}");
    }
    // Nothing of the broker's API on the metrics port.
    assert_eq!(get(&format!("{metrics}/kbs/v0/admin/resources")).0, 404);
    let auth = agent()
        .post(&format!("{metrics}/kbs/v0/auth"))
        .send("{}")
        .unwrap();
    assert_eq!(auth.status().as_u16(), 404);
    // (Its connection stays open while the answer is held: let it go.)
    drop(auth);
    // One address holds at most MAX_OPS_CONNECTIONS_PER_ADDRESS of its connections: one more
    // is closed at once; when one ends, the address is served again.
    use std::io::Read as _;
    let addr = metrics.trim_start_matches("http://").to_owned();
    std::thread::sleep(Duration::from_millis(200));
    let mut held: Vec<_> = (0..tessera_server::MAX_OPS_CONNECTIONS_PER_ADDRESS)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = std::net::TcpStream::connect(&addr).unwrap();
    over.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(over.read(&mut [0u8; 16]).unwrap_or(0), 0);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "held, not closed"
    );
    held.pop();
    // Served again once the broker has seen that connection end (polled: a loaded machine may
    // take a while to run the task that notices).
    let served = (0..150).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        agent()
            .get(&format!("{metrics}/metrics"))
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200)
    });
    assert!(served, "not served after one of its connections ended");
}

/// Every admin endpoint a tenant's token reaches stays inside its repositories, and the global
/// operations refuse it.
#[test]
fn a_tenant_token_stays_inside_its_repositories_on_every_endpoint() {
    let b = start();
    let tenant = Some(TENANT_TOKEN);
    let (status, _) = b.admin("GET", "/kbs/v0/admin/resources?repo=default", tenant, None);
    assert_eq!(status, 403);
    let (status, _) = b.admin("GET", "/kbs/v0/admin/resources?repo=tenant-b", tenant, None);
    assert_eq!(status, 200);
    // A repository name that is not one (here a NUL, a line break) is malformed, for anyone.
    for token in [tenant, Some(b.admin_token.as_str())] {
        for repo in ["%00", "a%0Ab", "a%2Fb", ""] {
            let (status, body) = b.admin(
                "GET",
                &format!("/kbs/v0/admin/resources?repo={repo}"),
                token,
                None,
            );
            assert_eq!(status, 400, "{repo}: {body}");
        }
        // A misspelt parameter is refused, not ignored (a global token's `?Repo=x` would list
        // every repository).
        for path in [
            "/kbs/v0/admin/resources?Repo=tenant-b",
            "/kbs/v0/admin/audit?after=0&limits=5",
            "/kbs/v0/admin/audit?from=0",
        ] {
            let (status, body) = b.admin("GET", path, token, None);
            assert_eq!(status, 400, "{path}: {body}");
        }
    }
    let (status, _) = b.admin_text("PUT", "/kbs/v0/admin/policy/default", tenant, POLICY);
    assert_eq!(status, 403);
    let (status, _) = b.admin_text("PUT", "/kbs/v0/admin/policy/tenant-b", tenant, POLICY);
    assert_eq!(status, 200);
    let (status, _) = b.admin("POST", "/kbs/v0/admin/sealing-key/rotate", tenant, None);
    assert_eq!(status, 403);
    let (status, _) = b.admin(
        "POST",
        "/kbs/v0/admin/coco-sealed/default/key/one",
        tenant,
        None,
    );
    assert_eq!(status, 403);
    // A secret sealed offline for another repository: not imported with the tenant's token.
    let (status, keys) = b.admin("GET", "/kbs/v0/sealing-key", None, None);
    assert_eq!(status, 200);
    let sealed = tessera_broker::gitseal::seal(
        &keys,
        &tessera_broker::resource::ResourcePath::parse("default/key/one").unwrap(),
        POLICY,
        b"imported",
    )
    .unwrap();
    let (status, _) = b.admin_text("POST", "/kbs/v0/admin/sealed", tenant, &sealed);
    assert_eq!(status, 403);
    // Also when the tenant names a path of its own as the one expected: refused for scope
    // (403, audited as a denial), not for the mismatch.
    let (status, _) = b.admin_text(
        "POST",
        "/kbs/v0/admin/sealed?resource=tenant-b/key/x",
        tenant,
        &sealed,
    );
    assert_eq!(status, 403);
    let (_, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    let denials = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "admin_deny"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("import a sealed secret for default/key/one"))
        })
        .count();
    assert_eq!(denials, 2, "{log}");
    // A put into another repository, or setting its policy, is refused and audited before the
    // body is read: a body that never arrives (or one too large) does not keep it from the log.
    {
        for (method, path) in [
            ("POST", "/kbs/v0/resource/default/key/slow"),
            ("PUT", "/kbs/v0/admin/policy/default"),
        ] {
            let head = raw_answer(
                &b,
                &format!(
                    "{method} {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TENANT_TOKEN}\r\n\
                     Content-Length: 1000000\r\n\r\n{{"
                ),
            );
            assert!(head.starts_with("HTTP/1.1 403"), "{path}: {head}");
        }
        let (_, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
        // Each denial names what it reached for as its resource (the repository alone when
        // refused before the body is read), so that the admins of the repository probed see
        // it on their own audit pages; one that names none has none.
        for (what, resource) in [
            ("put default/key/slow", Some("default")),
            ("set the policy of default", Some("default")),
            (
                "import a sealed secret for default/key/one",
                Some("default/key/one"),
            ),
            ("rotate the sealing key", None),
        ] {
            assert!(
                log["entries"].as_array().unwrap().iter().any(|e| {
                    e["action"] == "admin_deny"
                        && e["reason"].as_str() == Some(what)
                        && e["resource"].as_str() == resource
                }),
                "{what}: {log}"
            );
        }
    }
    // Expected at another path than the one it was sealed for: refused (400), not imported,
    // whatever the token may touch.
    let (status, body) = b.admin_text(
        "POST",
        "/kbs/v0/admin/sealed?resource=default/key/two",
        Some(&b.admin_token),
        &sealed,
    );
    assert_eq!(status, 400, "{body}");
    let (_, list) = b.admin(
        "GET",
        "/kbs/v0/admin/resources?repo=default",
        Some(&b.admin_token),
        None,
    );
    assert!(!list.to_string().contains("default/key/two"), "{list}");
    // The audit log the tenant reads holds its repository's entries only.
    let (status, log) = b.admin("GET", "/kbs/v0/admin/audit", tenant, None);
    assert_eq!(status, 200);
    let entries = log["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    // One page holds them all: there is no next one. The page says it is a scoped view (so
    // that `tessera audit verify` does not take it for the whole chain); the root's does not.
    assert!(log["next_after"].is_null(), "{log}");
    assert_eq!(log["scoped"], true, "{log}");
    let (_, root_log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    assert_eq!(root_log["scoped"], false);
    // Without hashes: around another repository's entry they would let it be guessed.
    assert!(
        entries
            .iter()
            .all(|e| e["hash"] == "" && e["prev_hash"] == ""),
        "{log}"
    );
    let hashed = |e: &serde_json::Value| e["hash"].as_str().is_some_and(|h| h.len() == 96);
    assert!(root_log["entries"].as_array().unwrap().iter().all(hashed));
    assert!(
        entries.iter().all(|e| e["resource"]
            .as_str()
            .is_some_and(|r| r == "tenant-b" || r.starts_with("tenant-b/"))),
        "{log}"
    );
    // Paged one entry at a time, the tenant moves past the pages that held only other
    // repositories' entries (empty for it) by next_after, and sees the same entries.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = b.admin(
            "GET",
            &format!("/kbs/v0/admin/audit?after={after}&limit=1"),
            tenant,
            None,
        );
        assert_eq!(status, 200, "{page}");
        paged.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_u64() {
            Some(next) => {
                assert!(next > after);
                after = next;
            }
            None => break,
        }
    }
    assert!(after > u64::try_from(entries.len()).unwrap(), "{after}");
    assert_eq!(&paged, entries);
    // The root token rotates the sealing key: a new current key is served.
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/admin/sealing-key/rotate",
        Some(&b.admin_token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (_, after) = b.admin("GET", "/kbs/v0/sealing-key", None, None);
    assert_ne!(after["current"], keys["current"]);
    // Nothing the tenant was refused changed the secret.
    let s = b
        .client(TeeKeyAlg::P256, AuthMode::Cookie)
        .get_secret("snp", "default/key/one", None, &mut |rd| {
            snp_evidence(rd, &Measurements::default())
        })
        .unwrap();
    assert_eq!(&s[..], SECRET);
}

#[test]
fn admin_credentials_and_scopes() {
    let b = start();
    let put = json!({"policy": POLICY, "value": STANDARD.encode(b"x")});
    // Missing and wrong credentials: 401.
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/x",
        None,
        Some(put.clone()),
    );
    assert_eq!(status, 401);
    assert_eq!(
        body["type"],
        "https://github.com/confidential-containers/kbs/errors/AdminUnauthorized"
    );
    let (status, _) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/x",
        Some("wrong-token-0123456789abcdef-0123456789"),
        Some(put.clone()),
    );
    assert_eq!(status, 401);
    // Two Authorization headers, however good either is: none counts (401), rather than
    // whichever came first.
    {
        for (first, second) in [
            (
                b.admin_token.as_str(),
                "wrong-token-0123456789abcdef-0123456789",
            ),
            (b.admin_token.as_str(), b.admin_token.as_str()),
        ] {
            let answer = raw_answer(
                &b,
                &format!(
                    "GET /kbs/v0/admin/resources HTTP/1.1\r\nHost: t\r\n\
                     Authorization: Bearer {first}\r\nAuthorization: Bearer {second}\r\n\r\n"
                ),
            );
            assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        }
    }
    // A tenant token: its own repository only.
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/resource/tenant-b/key/x",
        Some(TENANT_TOKEN),
        Some(put.clone()),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/x",
        Some(TENANT_TOKEN),
        Some(put.clone()),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["type"],
        "https://github.com/confidential-containers/kbs/errors/AdminForbidden"
    );
    let (status, _) = b.admin(
        "DELETE",
        "/kbs/v0/resource/default/key/one",
        Some(TENANT_TOKEN),
        None,
    );
    assert_eq!(status, 403);
    let (status, _) = b.admin("POST", "/kbs/v0/admin/kek/rotate", Some(TENANT_TOKEN), None);
    assert_eq!(status, 403);
    let (status, list) = b.admin("GET", "/kbs/v0/admin/resources", Some(TENANT_TOKEN), None);
    assert_eq!(status, 200);
    let listed: Vec<&str> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["resource"].as_str().unwrap())
        .collect();
    assert!(
        listed.iter().all(|r| r.starts_with("tenant-b/")),
        "{listed:?}"
    );
    assert!(
        !list.to_string().contains(&STANDARD.encode(SECRET)),
        "a listing never holds values"
    );
    // The root token rotates the KEK; the secret still opens afterwards.
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/admin/kek/rotate",
        Some(&b.admin_token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let s = b
        .client(TeeKeyAlg::P256, AuthMode::Cookie)
        .get_secret("snp", "default/key/one", None, &mut |rd| {
            snp_evidence(rd, &Measurements::default())
        })
        .unwrap();
    assert_eq!(&s[..], SECRET);
}

#[test]
fn the_audit_log_records_verdicts_and_the_chain_verifies() {
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    c.get_secret("snp", "default/key/one", None, &mut |rd| {
        snp_evidence(rd, &Measurements::default())
    })
    .unwrap();
    let _ = c.get_secret("snp", "default/key/one", None, &mut |rd| {
        snp_evidence(
            rd,
            &Measurements {
                measurement: [2; 48],
                ..Measurements::default()
            },
        )
    });
    let (status, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    assert_eq!(status, 200);
    let entries = log["entries"].as_array().unwrap();
    let has = |action: &str, verdict: &str| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["verdict"] == verdict
                && (action == "admin_put" || e["evidence_digest"].is_string())
        })
    };
    assert!(has("admin_put", "pass"));
    assert!(has("attest", "pass"));
    assert!(has("release", "pass"));
    assert!(has("deny", "fail"));
    assert!(
        entries
            .iter()
            .filter(|e| e["action"] == "release")
            .all(|e| e["policy_digest"].is_string())
    );
    let mut v = tessera_broker::audit::ChainVerifier::new();
    for e in entries {
        v.push(&serde_json::from_value(e.clone()).unwrap()).unwrap();
    }
    assert_eq!(usize::try_from(v.verified()).unwrap(), entries.len());
    assert!(
        !log.to_string()
            .contains(std::str::from_utf8(SECRET).unwrap())
    );
    assert!(b.data.join("tessera.db").exists());
}

#[test]
fn health_readiness_and_metrics() {
    let b = start();
    let (status, _) = b.admin("GET", "/healthz", None, None);
    assert_eq!(status, 200);
    let (status, _) = b.admin("GET", "/readyz", None, None);
    assert_eq!(status, 200);
    b.client(TeeKeyAlg::P256, AuthMode::Cookie)
        .get_secret("snp", "default/key/one", None, &mut |rd| {
            snp_evidence(rd, &Measurements::default())
        })
        .unwrap();
    let (status, metrics) = b.admin("GET", "/metrics", None, None);
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("tessera_requests_total{endpoint=\"/kbs/v0/attest\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tessera_attestations_total{tee=\"snp\",verdict=\"pass\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tessera_verification_seconds_count 1"),
        "{text}"
    );
    let (status, body) = b.admin("GET", "/kbs/v0/no/such/endpoint", None, None);
    assert_eq!(status, 404);
    assert_eq!(
        body["type"],
        "https://github.com/confidential-containers/kbs/errors/ResourceNotFound"
    );
}

#[test]
fn no_secret_token_or_session_reaches_a_log_line_or_an_error_body() {
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Bearer);
    let att = attested(&c);
    let s = fetched(&c, &att, AuthMode::Bearer, "default/key/one").unwrap();
    assert_eq!(&s[..], SECRET);
    // Failures too: a policy denial, a bad admin token, a tampered token.
    let denied = c.get_secret("snp", "default/key/one", None, &mut |rd| {
        snp_evidence(
            rd,
            &Measurements {
                measurement: [3; 48],
                ..Measurements::default()
            },
        )
    });
    assert_eq!(refusal(&denied.unwrap_err()), (403, "PolicyDeny".into()));
    let (status1, body1) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/x",
        Some("not-the-admin-token-0123456789abcdef-01"),
        Some(json!({"value": "eA=="})),
    );
    let mut bad = att.token.as_str().to_owned();
    bad.push('x');
    let (status2, body2) = b.admin("GET", "/kbs/v0/resource/default/key/one", Some(&bad), None);
    assert_eq!((status1, status2), (401, 401), "{body1} {body2}");
    std::io::stderr().flush().unwrap();
    let logged = String::from_utf8(logs().lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("request refused"),
        "the test captured the broker's logs"
    );
    let forbidden = [
        std::str::from_utf8(SECRET).unwrap().to_owned(),
        STANDARD.encode(SECRET),
        b.admin_token.clone(),
        TENANT_TOKEN.to_owned(),
        att.token.as_str().to_owned(),
        att.session.cookie_value().to_owned(),
        "not-the-admin-token-0123456789abcdef-01".to_owned(),
    ];
    for f in &forbidden {
        assert!(
            !logged.contains(f.as_str()),
            "a log line holds {:.12}...",
            f
        );
        for body in [&body1, &body2] {
            assert!(!body.to_string().contains(f.as_str()));
        }
    }
    // Nor is the token in the database: sessions keep its SHA-256 only (the signature, the
    // part no one else can make, is looked for in the database file and its WAL).
    let signature = att.token.as_str().rsplit('.').next().unwrap().to_owned();
    assert!(signature.len() > 40);
    let mut stored = Vec::new();
    for file in ["tessera.db", "tessera.db-wal"] {
        if let Ok(bytes) = std::fs::read(b.data.join(file)) {
            stored.extend_from_slice(&bytes);
        }
    }
    assert!(stored.len() > 4096, "read the database");
    assert!(
        !stored
            .windows(signature.len())
            .any(|w| w == signature.as_bytes()),
        "the token is stored in the database"
    );
}

/// HTTP/1 request headers larger than the connection's 64 KiB read buffer are refused (431)
/// instead of being buffered up to hyper's default of about 400 KiB; smaller ones are served.
#[test]
fn oversized_http1_headers_are_refused() {
    use std::io::{Read as _, Write as _};
    let b = start();
    let addr = b.url.trim_start_matches("http://").to_owned();
    let status_of = |header_len: usize| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(header_len)
        );
        // The server may answer and close before it has read everything.
        let _ = s.write_all(head.as_bytes());
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap_or(0)
    };
    assert_eq!(status_of(16 * 1024), 200);
    // 431, or (when the server's close resets the connection before the answer was read,
    // since it leaves the rest of the headers unread) no answer at all; never served.
    let refused = status_of(100 * 1024);
    assert!(refused == 431 || refused == 0, "{refused}");
}

/// HTTP/2 has no header-read timeout of its own: a client that opens a connection (here with
/// prior knowledge, on plain HTTP) and never completes a request is closed after
/// `idle_timeout_secs`, and its slot freed, instead of holding them for ever.
#[test]
fn idle_http2_connections_are_closed() {
    use std::io::{Read as _, Write as _};
    let b = start_with(|c| {
        c.idle_timeout_secs = 1;
        c.max_connections = 1;
    });
    let addr = b.url.trim_start_matches("http://").to_owned();
    let mut h2 = std::net::TcpStream::connect(&addr).unwrap();
    // The connection preface, an empty SETTINGS frame, and the first 3 bytes of a HEADERS frame.
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    h2.write_all(&[0, 0, 40]).unwrap();
    h2.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let closed = loop {
        match h2.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    assert!(
        closed,
        "the idle HTTP/2 connection was still open after 15 s"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed before the idle timeout: {waited:?}"
    );
    // The server said GOAWAY (frame type 7) before closing.
    let mut frames = Vec::new();
    let mut rest = got.as_slice();
    while let [l0, l1, l2, kind, _flags, _s0, _s1, _s2, _s3, tail @ ..] = rest {
        let len = usize::from(*l0) << 16 | usize::from(*l1) << 8 | usize::from(*l2);
        frames.push(*kind);
        rest = tail.get(len..).unwrap_or_default();
    }
    assert!(frames.contains(&7), "no GOAWAY among the frames {frames:?}");
    // Its slot is free: a request is served.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let status = agent
        .get(&format!("{}/healthz", b.url))
        .call()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
}

/// Admin JWTs over HTTP, with `jwt_audience` and `jwt_issuer` configured: the audience, the
/// issuer and the `repos` scope each decide, and an out-of-scope or global request is refused.
#[test]
fn admin_jwts_over_http() {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let pem = tessera_policy::ear::VerifyingKey::from_jwk(&json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }))
    .unwrap()
    .to_spki_pem();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("admin-jwt.pub.pem");
    std::fs::write(&key_file, pem).unwrap();
    let b = start_with(|c| {
        c.admin.jwt_keys = vec![key_file.clone()];
        c.admin.jwt_audience = Some("kbs.test".into());
        c.admin.jwt_issuer = Some("https://ci.test".into());
    });
    let exp = UnixTime::now().as_secs() + 600;
    let jwt = |claims: Value| {
        let mut t = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
        t.push('.');
        t.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = pair.sign(&rng, t.as_bytes()).unwrap();
        t.push('.');
        t.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        t
    };
    let claims = |aud: &str, iss: &str, repos: Value| {
        let mut c = json!({"sub": "ci", "exp": exp, "aud": aud, "iss": iss});
        if !repos.is_null() {
            c["repos"] = repos;
        }
        jwt(c)
    };
    let put = json!({"policy": POLICY, "value": STANDARD.encode(b"from-a-jwt")});
    let scoped = claims("kbs.test", "https://ci.test", json!(["tenant-b"]));
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/resource/tenant-b/key/j",
        Some(&scoped),
        Some(put.clone()),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/j",
        Some(&scoped),
        Some(put.clone()),
    );
    assert_eq!(status, 403);
    let (status, _) = b.admin("POST", "/kbs/v0/admin/kek/rotate", Some(&scoped), None);
    assert_eq!(status, 403);
    // Another audience (the default one, not configured here), another issuer, no scope, valid
    // for longer than a day (admin.jwt_max_lifetime_secs): 401.
    let long_lived = jwt(json!({"sub": "ci", "exp": exp + 86_400, "aud": "kbs.test",
        "iss": "https://ci.test", "repos": "*"}));
    for refused in [
        claims("tessera-admin", "https://ci.test", json!("*")),
        claims("kbs.test", "https://other.test", json!("*")),
        claims("kbs.test", "https://ci.test", Value::Null),
        long_lived,
    ] {
        let (status, body) = b.admin(
            "POST",
            "/kbs/v0/resource/tenant-b/key/j",
            Some(&refused),
            Some(put.clone()),
        );
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            body["type"],
            "https://github.com/confidential-containers/kbs/errors/AdminUnauthorized"
        );
    }
    // "*": every repository and the global operations.
    let global = claims("kbs.test", "https://ci.test", json!("*"));
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/j",
        Some(&global),
        Some(put),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = b.admin("POST", "/kbs/v0/admin/kek/rotate", Some(&global), None);
    assert_eq!(status, 200, "{body}");
    // The audit log names the JWT's subject.
    let (status, audit) = b.admin("GET", "/kbs/v0/admin/audit", Some(&global), None);
    assert_eq!(status, 200);
    let actors: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(actors.contains(&"jwt:ci"), "{actors:?}");
}

/// A resource whose policy has no section for the guest's TEE is refused (403), and the
/// audit entry says that, not just the TEE's name.
#[test]
fn a_policy_without_a_section_for_the_tee_is_denied_and_says_so() {
    let b = start();
    let tdx_only = POLICY.replace(
        &POLICY[POLICY.find("[snp]").unwrap()..POLICY.find("[tdx]").unwrap()],
        "",
    );
    let put = json!({"policy": tdx_only, "value": STANDARD.encode(b"x")});
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/tdxonly",
        Some(&b.admin_token),
        Some(put),
    );
    assert_eq!(status, 200, "{body}");
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let att = attested(&c);
    let e = fetched(&c, &att, AuthMode::Cookie, "default/key/tdxonly").unwrap_err();
    assert_eq!(refusal(&e).0, 403, "{e}");
    assert!(audited(&b, "deny", "a [snp] section in the policy"));
}

/// Whether the audit log holds an entry of `action` whose reason contains `text`.
fn audited(b: &Broker, action: &str, text: &str) -> bool {
    let (_, log) = b.admin("GET", "/kbs/v0/admin/audit", Some(&b.admin_token), None);
    let found =
        log["entries"].as_array().unwrap().iter().any(|e| {
            e["action"] == action && e["reason"].as_str().is_some_and(|r| r.contains(text))
        });
    if !found {
        eprintln!("no {action} entry with {text:?} in {log}");
    }
    found
}

/// Two brokers on one data directory: a sealing-key rotation at one makes the other's
/// refused (400 with the public words; it would write its keys over the first one's new key)
/// until it is restarted, and the first one's key stays in the file.
#[test]
fn a_sealing_key_rotation_another_broker_got_ahead_of_is_refused() {
    let a = start();
    let b = start_with(|c| c.data_dir = a.data.clone());
    let rotate = |x: &Broker| {
        x.admin(
            "POST",
            "/kbs/v0/admin/sealing-key/rotate",
            Some(&x.admin_token),
            None,
        )
    };
    let (status, keys) = rotate(&a);
    assert_eq!(status, 200, "{keys}");
    let newest = keys["current"].as_str().unwrap().to_owned();
    let (status, body) = rotate(&b);
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("errors/InvalidRequest"), "{body}");
    let file = std::fs::read_to_string(a.data.join("sealing.keys")).unwrap();
    assert!(file.contains(&newest), "the first broker's new key is kept");
    // Restarted (read again), it rotates.
    let c = start_with(|c| c.data_dir = a.data.clone());
    assert_eq!(rotate(&c).0, 200);
}

/// An `/attest` body for simulated SNP evidence whose REPORT_DATA binds `key` and
/// `additional` (sent as the additional evidence) to `nonce`, with SHA-384.
fn body_with_additional(nonce: &str, key: &TeeKey, additional: &str) -> serde_json::Value {
    use tessera_broker::binding::{HashAlgorithm, expected_report_data};
    let rd = expected_report_data(HashAlgorithm::Sha384, nonce, key.jwk(), additional).unwrap();
    let mut body = tessera_guest::client::attest_request(
        nonce,
        key.jwk(),
        None,
        snp_evidence(&rd, &Measurements::default()).unwrap(),
    );
    body["tee-evidence"]["additional_evidence"] = additional.into();
    body
}

/// What a session record keeps is bounded: evidence whose additional evidence (bound into
/// REPORT_DATA, so from a genuine TEE) would make it larger than a session keeps is refused
/// (401) and audited, and its challenge is used up; just under the bound, it is attested.
#[test]
fn oversized_additional_evidence_is_not_kept() {
    use tessera_broker::protocol::MAX_SESSION_EVIDENCE;
    let b = start();
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    let attest = |additional: &str| {
        let ch = c.auth("snp").unwrap();
        let body = body_with_additional(&ch.nonce, &key, additional);
        (c.attest_with_body(&ch.session, &body), ch.session, body)
    };
    let (e, session, body) = attest(&"a".repeat(MAX_SESSION_EVIDENCE));
    let e = e.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(e.to_string().contains("AttestationFailed"), "{e}");
    // Its challenge is used up: the same body again is refused as a replay.
    assert_eq!(
        c.attest_with_body(&session, &body).unwrap_err().status(),
        Some(401)
    );
    // Measured as the record keeps it: a control character takes six bytes there.
    let (e, _, _) = attest(&"\u{1}".repeat(MAX_SESSION_EVIDENCE / 4));
    assert_eq!(e.unwrap_err().status(), Some(401));
    let (ok, _, _) = attest(&"a".repeat(MAX_SESSION_EVIDENCE - 64 * 1024));
    ok.unwrap();
    assert!(audited(&b, "attest", "more than a session keeps"));
}

/// A session that a broker rebuilds from the store (another process on the same data directory
/// here; a replica or a restart in production) is held to what `/attest` checked, so write
/// access to the database is not a way to secrets: genuine evidence under a swapped TEE key,
/// or copied under another session id, or a session kept alive past its lifetime, releases
/// nothing. Additional evidence, bound into REPORT_DATA, is kept with the session and bound
/// again. A session refused this way is answered 401, so that the guest attests again.
#[test]
fn a_session_rebuilt_from_the_store_keeps_its_binding() {
    let a = start();
    let b = start_with(|c| c.data_dir = a.data.clone());
    let ca = a.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let cb = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    let thief = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    // A session attested at `a` with `additional` bound into its REPORT_DATA.
    let attested = |additional: &str| -> Session {
        let ch = ca.auth("snp").unwrap();
        assert_eq!(ch.hash, tessera_guest::client::HashAlg::Sha384);
        let body = body_with_additional(&ch.nonce, &key, additional);
        ca.attest_with_body(&ch.session, &body).unwrap();
        ch.session
    };
    let db = rusqlite::Connection::open(a.data.join("tessera.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    // The SQLite store's row key: the challenge's issue time (16 hex digits), then the
    // digest of the session id.
    let cookie_key = |s: &Session| {
        let id = tessera_broker::store::SessionId::parse(s.cookie_value()).unwrap();
        let issued = tessera_broker::store::Challenge::from_session(&id)
            .unwrap()
            .issued_ms;
        format!("{issued:016x}{}", id.storage_key())
    };

    // `b` refuses the session (401, so that the guest attests again).
    let refused = |s: &Session, k: &TeeKey| {
        let e = cb
            .resource(Credential::Cookie(s), k, "default/key/one")
            .unwrap_err();
        assert_eq!(e.status(), Some(401), "{e}");
    };
    let logged = |text: &str| {
        logs()
            .lock()
            .map(|l| String::from_utf8_lossy(&l).matches(text).count())
            .unwrap()
    };

    // Untouched, with and without additional evidence: `b` rebuilds the session and releases.
    let plain = attested("");
    let with_more = attested(r#"{"gpu":"evidence"}"#);
    for s in [&plain, &with_more] {
        assert_eq!(
            &cb.resource(Credential::Cookie(s), &key, "default/key/one")
                .unwrap()[..],
            SECRET
        );
    }

    // The row's TEE key replaced by the thief's: `b` refuses to rebuild it.
    let swapped = attested("");
    let n = db
        .execute(
            "UPDATE sessions SET tee_pubkey = ?1 WHERE session_key = ?2",
            rusqlite::params![thief.jwk().to_string(), cookie_key(&swapped)],
        )
        .unwrap();
    assert_eq!(n, 1);
    refused(&swapped, &thief);

    // The whole row copied under a session id of the thief's own (a challenge `b` issued,
    // never answered), with the thief's key: refused too.
    let source = attested("");
    let stolen = cb.auth("snp").unwrap().session;
    let n = db
        .execute(
            "INSERT INTO sessions SELECT ?1, tee, ?2, token, claims, evidence_digest, \
             attested_ms, expires_ms FROM sessions WHERE session_key = ?3",
            rusqlite::params![
                cookie_key(&stolen),
                thief.jwk().to_string(),
                cookie_key(&source)
            ],
        )
        .unwrap();
    assert_eq!(n, 1);
    refused(&stolen, &thief);

    // A row copied, key and all, under a session id whose challenge named another TEE (SGX):
    // the stored TEE is not the one the id carries.
    let source = attested("");
    let other_tee = cb.auth("sgx").unwrap().session;
    let n = db
        .execute(
            "INSERT INTO sessions SELECT ?1, tee, tee_pubkey, token, claims, evidence_digest, \
             attested_ms, expires_ms FROM sessions WHERE session_key = ?2",
            rusqlite::params![cookie_key(&other_tee), cookie_key(&source)],
        )
        .unwrap();
    assert_eq!(n, 1);
    let before = logged("the session id names another TEE");
    refused(&other_tee, &key);
    assert!(logged("the session id names another TEE") > before);

    // The additional evidence dropped from a record: its binding no longer holds.
    let trimmed = attested("more");
    let claims: String = db
        .query_row(
            "SELECT claims FROM sessions WHERE session_key = ?1",
            [cookie_key(&trimmed)],
            |r| r.get(0),
        )
        .unwrap();
    let without = claims.replace(r#","additional_evidence":"more""#, "");
    assert_ne!(without, claims);
    db.execute(
        "UPDATE sessions SET claims = ?1 WHERE session_key = ?2",
        rusqlite::params![without, cookie_key(&trimmed)],
    )
    .unwrap();
    refused(&trimmed, &key);
    // A session whose stored expiry was pushed past the challenge's lifetime and one token
    // lifetime.
    let prolonged = attested("");
    db.execute(
        "UPDATE sessions SET expires_ms = expires_ms + 86400000 WHERE session_key = ?1",
        [cookie_key(&prolonged)],
    )
    .unwrap();
    refused(&prolonged, &key);
    assert!(logged("its times do not fit the challenge it answered") >= 1);
    // Each refused rebuild is logged with its reason.
    assert!(logged("does not bind this session's nonce and TEE key") >= 3);

    // Each column of a row edited on its own: refused, for that column's reason.
    let claims_of = |s: &Session| -> Value {
        let text: String = db
            .query_row(
                "SELECT claims FROM sessions WHERE session_key = ?1",
                [cookie_key(s)],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let edited = |column: &str, value: &str, why: &str| {
        let s = attested("");
        let n = db
            .execute(
                &format!("UPDATE sessions SET {column} = ?1 WHERE session_key = ?2"),
                rusqlite::params![value, cookie_key(&s)],
            )
            .unwrap();
        assert_eq!(n, 1);
        let before = logged(why);
        refused(&s, &key);
        assert!(logged(why) > before, "{column}: {why}");
    };
    // (SNP evidence under `tdx` does not even decode: refused before the TEE named by the
    // session id is compared.)
    edited("tee", "tdx", "stored session: evidence:");
    edited("claims", "{}", "record is malformed");
    edited("tee_pubkey", "x", "stored session: tee-pubkey");
    // Verified an hour before its challenge was issued.
    let early = attested("");
    let mut record = claims_of(&early);
    record["verified_at"] = (record["verified_at"].as_i64().unwrap() - 3600).into();
    edited_record(&db, &cookie_key(&early), &record);
    let before = logged("its times do not fit the challenge it answered");
    refused(&early, &key);
    assert!(logged("its times do not fit the challenge it answered") > before);
    // A byte of the signed report outside REPORT_DATA flipped (its guest policy): the binding
    // still holds, the signature does not.
    let flipped = attested("");
    let mut record = claims_of(&flipped);
    let mut report = STANDARD
        .decode(record["evidence_c"]["report"].as_str().unwrap())
        .unwrap();
    report[0x08] ^= 0x01;
    record["evidence_c"]["report"] = STANDARD.encode(&report).into();
    edited_record(&db, &cookie_key(&flipped), &record);
    let before = logged("evidence no longer verifies");
    refused(&flipped, &key);
    assert!(logged("evidence no longer verifies") > before);
}

/// Replaces the `claims` record of the session row `key`.
fn edited_record(db: &rusqlite::Connection, key: &str, record: &Value) {
    let n = db
        .execute(
            "UPDATE sessions SET claims = ?1 WHERE session_key = ?2",
            rusqlite::params![record.to_string(), key],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// A bearer token issued by a replica whose clock runs ahead (by up to the minute replicas may
/// differ) is honoured at once by another replica, though its `iat` is in that replica's
/// future: the guest's agent would hand the same token again. Further ahead, it is refused.
#[test]
fn bearer_tokens_from_a_replica_whose_clock_runs_ahead() {
    let a = start();
    let b = start_with(|c| c.data_dir = a.data.clone());
    let ca = a.client(TeeKeyAlg::P256, AuthMode::Bearer);
    for (ahead_secs, ok) in [(0, true), (30, true), (55, true), (120, false)] {
        a.skew.store(ahead_secs, Ordering::SeqCst);
        let att = attested(&ca);
        let got = b.client(TeeKeyAlg::P256, AuthMode::Bearer).resource(
            att.credential(AuthMode::Bearer),
            &att.key,
            "default/key/one",
        );
        match got {
            Ok(s) => {
                assert!(ok, "{ahead_secs} s ahead: released");
                assert_eq!(&s[..], SECRET);
            }
            Err(e) => {
                assert!(!ok, "{ahead_secs} s ahead: {e}");
                assert_eq!(e.status(), Some(401), "{e}");
            }
        }
    }
}

/// What an endorsement source returns is vetted before the broker's verifier holds it: a forged
/// VCEK (another PKI's, naming this chip and TCB) is refused and not held, so the next lookup
/// asks the source again, and its genuine answer serves the guest. (Held, the forgery would
/// count as present and the source would never be asked again.)
#[test]
fn a_forged_vcek_from_the_source_is_not_held() {
    let forger = SimSnp::new(Product::Genoa).unwrap();
    let forging = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let (switch, source_calls) = (Arc::clone(&forging), Arc::clone(&calls));
    let b = start_full(
        |c| c.verifier.endorsements.clear(),
        move |_| {
            Some(Arc::new(move |_: &tessera::Evidence, _: &_| {
                source_calls.fetch_add(1, Ordering::SeqCst);
                if switch.load(Ordering::SeqCst) {
                    let mut e = tessera::Endorsements::new();
                    e.add_certificates([forger.vcek().clone(), snp().pki().ask().clone()]);
                    Ok(e)
                } else {
                    Ok(sim_chain())
                }
            }) as EndorsementSource)
        },
    );
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    let e = c
        .get_secret("snp", "default/key/one", None, &mut without_chain)
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    forging.store(false, Ordering::SeqCst);
    let c = b.client(TeeKeyAlg::P256, AuthMode::Cookie);
    assert_eq!(
        &c.get_secret("snp", "default/key/one", None, &mut without_chain)
            .unwrap()[..],
        SECRET
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the source was not asked again"
    );
}

/// Evidence verified without a current CRL waits for its recheck of the endorsement source,
/// but not for long: a source that hangs (a KDS down, every fetch running to its timeout)
/// does not hold the answer, which is given as verified after a bounded wait; the next guest
/// within the recheck period does not ask it again.
#[test]
fn a_hanging_source_does_not_hold_a_verified_answer() {
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let (source_calls, source_gate) = (Arc::clone(&calls), Arc::clone(&gate));
    let b = start_full(
        |_| {},
        move |_| {
            Some(Arc::new(move |_: &tessera::Evidence, _: &_| {
                source_calls.fetch_add(1, Ordering::SeqCst);
                let (open, cv) = &*source_gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    let (next, timeout) = cv.wait_timeout(open, Duration::from_secs(60)).unwrap();
                    open = next;
                    if timeout.timed_out() {
                        break;
                    }
                }
                Err(String::from("no CRL here"))
            }) as EndorsementSource)
        },
    );
    let get = || {
        b.client(TeeKeyAlg::P256, AuthMode::Cookie)
            .get_secret("snp", "default/key/one", None, &mut |rd| {
                snp_evidence(rd, &Measurements::default())
            })
            .unwrap()
    };
    let started = std::time::Instant::now();
    assert_eq!(&get()[..], SECRET);
    // Far below the source's minute: the answer did not wait for it.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(&get()[..], SECRET);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "asked again within the period"
    );
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
}

/// The largest secret the broker seals (1 MiB) reaches the guest: the client's cap on the
/// resource answer fits the JWE of one (its ciphertext in base64url is a third larger).
#[test]
fn the_largest_secret_sealed_is_released_whole() {
    let b = start();
    let big = vec![0x5a; tessera_broker::seal::MAX_SECRET_LEN];
    let (status, body) = b.admin(
        "POST",
        "/kbs/v0/resource/default/key/big",
        Some(&b.admin_token),
        Some(json!({"policy": POLICY, "value": STANDARD.encode(&big)})),
    );
    assert_eq!(status, 200, "{body}");
    for auth in [AuthMode::Cookie, AuthMode::Bearer] {
        let c = b.client(TeeKeyAlg::P256, auth);
        let got = c
            .get_secret("snp", "default/key/big", None, &mut |rd| {
                snp_evidence(rd, &Measurements::default())
            })
            .unwrap();
        assert!(got[..] == big[..], "{auth:?}: {} bytes", got.len());
    }
}
