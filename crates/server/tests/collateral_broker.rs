//! The broker's `[collateral]` section over real HTTP on loopback: a simulated SEV-SNP guest that
//! sends `cert_chain: null` is served when the broker may fetch its VCEK from a (fake) KDS, or
//! holds it in its collateral directory (imported from a bundle); refused (401) otherwise, and
//! when the KDS serves a forged VCEK. The cache's counters appear on `/metrics`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::fake_kds::{FakeKds, KdsItems, Reply};
use serde_json::{Value, json};
use tessera::snp::abi::Product;
use tessera_collateral::item::{Item, items_for_snp_report};
use tessera_collateral::{
    AmdSigner, Cache, Entry, FetchConfig, Fetcher, KdsSource, UreqTransport, bundle,
};
use tessera_guest::client::{AuthMode, Client, ClientError, ClientOptions, RetryPolicy};
use tessera_guest::sim::{Measurements, SimSnp};
use tessera_pki::{UnixTime, to_pem};
use tessera_server::ServerConfig;
use tessera_server::config::StaticTokenConfig;

const POLICY: &str = r#"
version = 1
id = "collateral"
[snp]
measurement = "any"
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
"#;

const SECRET: &[u8] = b"collateral-secret-5d1c";
const ADMIN: &str = "admin-token-0123456789abcdef-0123456789abcdef";

fn guest() -> &'static SimSnp {
    static S: OnceLock<SimSnp> = OnceLock::new();
    S.get_or_init(|| SimSnp::new(Product::Genoa).unwrap())
}

/// A report of the guest (any REPORT_DATA: only its chip and TCB matter to the KDS).
fn sample_report() -> Vec<u8> {
    guest()
        .report(&[0u8; 64], &Measurements::default(), |_| {})
        .unwrap()
}

fn items() -> KdsItems {
    KdsItems::new(guest().pki(), &sample_report(), guest().vcek())
}

struct Broker {
    url: String,
    _rt: tokio::runtime::Runtime,
}

/// A broker trusting the guest's simulated ARK, with `edit` applied to its configuration.
fn start(dir: &Path, edit: impl FnOnce(&mut ServerConfig)) -> Broker {
    let roots = dir.join("roots.pem");
    std::fs::write(&roots, to_pem("CERTIFICATE", guest().root().der())).unwrap();
    let token = dir.join("admin.token");
    std::fs::write(&token, ADMIN).unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut config = ServerConfig::with_data_dir(dir.join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.verifier.dangerous_test_roots.push(roots);
    config.admin.tokens = vec![StaticTokenConfig {
        name: "root".into(),
        file: token,
        repos: None,
    }];
    edit(&mut config);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async { tessera_server::start(&config).await.unwrap().0 });
    let url = format!("http://{}", server.local_addr().unwrap());
    rt.spawn(server.run(std::future::pending()));
    let b = Broker { url, _rt: rt };
    let (status, body) = b.call(
        "/kbs/v0/resource/default/key/one",
        Some(json!({"policy": POLICY, "value": STANDARD.encode(SECRET)})),
    );
    assert_eq!(status, 200, "{body}");
    b
}

impl Broker {
    /// POST `body` (when given) or GET `path` with the admin token.
    fn call(&self, path: &str, body: Option<Value>) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {ADMIN}");
        let mut resp = match body {
            Some(b) => agent
                .post(&url)
                .header("authorization", &auth)
                .send_json(b)
                .unwrap(),
            None => agent
                .get(&url)
                .header("authorization", &auth)
                .call()
                .unwrap(),
        };
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    }

    /// The guest asks for the secret at `path` sending its VCEK (`cert_chain`).
    fn carrying(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let client = Client::new(&self.url, options(AuthMode::Cookie)).unwrap();
        client
            .get_secret("snp", path, None, &mut |rd| {
                let raw = guest().report(rd, &Measurements::default(), |_| {})?;
                Ok(guest().evidence_json(&raw, true))
            })
            .map(|s| s.to_vec())
    }

    /// The guest asks for the secret sending `cert_chain: null`.
    fn get_secret(&self) -> Result<Vec<u8>, ClientError> {
        let client = Client::new(&self.url, options(AuthMode::Cookie)).unwrap();
        client
            .get_secret("snp", "default/key/one", None, &mut |rd| {
                let raw = guest().report(rd, &Measurements::default(), |_| {})?;
                Ok(guest().evidence_json(&raw, false))
            })
            .map(|s| s.to_vec())
    }

    fn metric(&self, name: &str) -> u64 {
        let (status, text) = self.call("/metrics", None);
        assert_eq!(status, 200);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
    }
}

/// A client that tries each step once.
fn options(auth: AuthMode) -> ClientOptions {
    ClientOptions {
        auth,
        retry: RetryPolicy::ONCE,
        ..ClientOptions::default()
    }
}

fn assert_refused(result: Result<Vec<u8>, ClientError>) {
    match result {
        Err(e) => assert_eq!(e.status(), Some(401), "{e}"),
        Ok(_) => panic!("the secret was released"),
    }
}

#[test]
fn fetching_broker_serves_a_guest_without_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let kds = items().serve();
    let cache_dir = dir.path().join("collateral");
    let b = start(dir.path(), |c| {
        c.collateral.dir = Some(cache_dir.clone());
        c.collateral.fetch = true;
        c.collateral.kds_url = Some(kds.base.clone());
    });
    assert_eq!(b.get_secret().unwrap(), SECRET);
    // VCEK, chain and CRL were fetched once, then the verifier holds them.
    assert_eq!(kds.total(), 3);
    assert_eq!(b.metric("tessera_collateral_cache_misses_total"), 3);
    assert_eq!(b.metric("tessera_collateral_cache_fetch_errors_total"), 0);
    assert_eq!(b.metric("tessera_collateral_cache_fetches_total"), 3);
    assert_eq!(b.get_secret().unwrap(), SECRET);
    assert_eq!(kds.total(), 3);
    // What was fetched is in the cache directory (a restarted broker would find it).
    let listed = bundle::show(&cache_dir, UnixTime::now()).unwrap();
    assert_eq!(listed.len(), 3);
}

/// With `fetch`, what is due in the cache is fetched again in the background, with no guest
/// asking, while the held copy is still valid: here a CRL current for ten seconds is due after
/// five (half its life), and `refresh_interval_secs = 1` looks every second.
#[test]
fn due_collateral_is_fetched_again_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut items = items();
    let now = UnixTime::now().as_secs();
    items.crl_der = guest()
        .pki()
        .ark_crl(
            &[],
            UnixTime::from_secs(now - 60),
            UnixTime::from_secs(now + 10),
        )
        .unwrap()
        .der()
        .to_vec();
    let kds = items.serve();
    let b = start(dir.path(), |c| {
        c.collateral.dir = Some(dir.path().join("collateral"));
        c.collateral.fetch = true;
        c.collateral.kds_url = Some(kds.base.clone());
        c.collateral.refresh_interval_secs = 1;
    });
    assert_eq!(b.get_secret().unwrap(), SECRET);
    assert_eq!(kds.total(), 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while kds.total() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(kds.total() >= 4, "nothing was fetched again");
    assert!(b.metric("tessera_collateral_cache_fetches_total") >= 4);
}

/// A guest that sends its VCEK, while the CRL the broker holds for its chain (from its
/// endorsements directory) has gone stale: the broker asks the cache for the CRL alone, so a
/// KDS that does not know the chip (404 for the VCEK; likewise a masked CHIP_ID) does not keep
/// the current CRL out, and the guest is served again.
#[test]
fn a_stale_crl_is_fetched_alone_when_the_vcek_is_carried() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::now().as_secs();
    let pki = guest().pki();
    let endorsements = dir.path().join("endorsements");
    std::fs::create_dir_all(&endorsements).unwrap();
    let short = pki
        .ark_crl(
            &[],
            UnixTime::from_secs(now - 60),
            UnixTime::from_secs(now + 5),
        )
        .unwrap();
    std::fs::write(endorsements.join("ark.crl"), short.der()).unwrap();
    let current = pki
        .ark_crl(
            &[],
            UnixTime::from_secs(now - 60),
            UnixTime::from_secs(now + 86_400),
        )
        .unwrap()
        .der()
        .to_vec();
    let product = pki.product();
    // A KDS that knows no chip: only the CRL, and that not at the first request (the recheck
    // the first guest sets off), so that the broker still holds only the short-lived CRL when
    // it goes stale.
    let crl_requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&crl_requests);
    let kds = FakeKds::start(move |t| {
        if t == format!("/vcek/v1/{product}/crl") && counted.fetch_add(1, Ordering::SeqCst) > 0 {
            Reply::ok("application/pkix-crl", current.clone())
        } else {
            Reply::status(404)
        }
    });
    let b = start(dir.path(), |c| {
        c.verifier.endorsements = vec![endorsements.clone()];
        c.collateral.dir = Some(dir.path().join("collateral"));
        c.collateral.fetch = true;
        c.collateral.kds_url = Some(kds.base.clone());
        c.collateral.retry_after_failure_secs = 1;
    });
    let carrying = || {
        let client = Client::new(&b.url, options(AuthMode::Cookie)).unwrap();
        client
            .get_secret("snp", "default/key/one", None, &mut |rd| {
                let raw = guest().report(rd, &Measurements::default(), |_| {})?;
                Ok(guest().evidence_json(&raw, true))
            })
            .map(|s| s.to_vec())
    };
    assert_eq!(carrying().unwrap(), SECRET);
    // Nothing is missing while the held CRL is current, but the first evidence of its kind
    // sets off a recheck (after its answer), which asks for the CRL alone (and gets a 404).
    let rechecked = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        kds.total() == 1
    });
    assert!(rechecked, "{} requests to the KDS", kds.total());
    // Past the held CRL's nextUpdate (and the failure's wait).
    std::thread::sleep(Duration::from_millis(
        u64::try_from(now + 6 - UnixTime::now().as_secs()).unwrap_or(0) * 1000 + 500,
    ));
    assert_eq!(carrying().unwrap(), SECRET);
    assert_eq!(kds.total(), 2, "the CRL alone was fetched");
    assert_eq!(crl_requests.load(Ordering::SeqCst), 2);
}

/// Evidence that does not bind the challenge and key sets off no fetch (replayed or made-up
/// evidence that binds nothing never makes the broker call AMD; a report bound to a fresh
/// challenge still can, once per challenge).
#[test]
fn unbound_evidence_sets_off_no_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let kds = items().serve();
    let b = start(dir.path(), |c| {
        c.collateral.dir = Some(dir.path().join("collateral"));
        c.collateral.fetch = true;
        c.collateral.kds_url = Some(kds.base.clone());
    });
    let client = Client::new(&b.url, options(AuthMode::Cookie)).unwrap();
    for _ in 0..3 {
        assert_refused(
            client
                .get_secret("snp", "default/key/one", None, &mut |_| {
                    let raw = guest().report(&[7u8; 64], &Measurements::default(), |_| {})?;
                    Ok(guest().evidence_json(&raw, false))
                })
                .map(|s| s.to_vec()),
        );
    }
    assert_eq!(kds.total(), 0);
    assert_eq!(b.metric("tessera_collateral_cache_fetches_total"), 0);
    // Bound evidence of the same chip is served, fetching what it needs.
    assert_eq!(b.get_secret().unwrap(), SECRET);
    assert_eq!(kds.total(), 3);
}

#[test]
fn a_session_rebuilt_elsewhere_gets_its_vcek_from_the_cache() {
    // Broker A fetches the VCEK for a guest that sends none, and the guest attests there.
    let dir = tempfile::tempdir().unwrap();
    let kds = items().serve();
    let cache_dir = dir.path().join("collateral");
    let a = start(dir.path(), |c| {
        c.collateral.dir = Some(cache_dir.clone());
        c.collateral.fetch = true;
        c.collateral.kds_url = Some(kds.base.clone());
    });
    let att = Client::new(&a.url, options(AuthMode::Bearer))
        .unwrap()
        .handshake("snp", None, &mut |rd| {
            let raw = guest().report(rd, &Measurements::default(), |_| {})?;
            Ok(guest().evidence_json(&raw, false))
        })
        .unwrap();
    assert_eq!(kds.total(), 3);
    // Broker B shares the data directory and the cache, never fetches, and has verified
    // nothing yet: the bearer token's session is rebuilt there, its VCEK read from the cache.
    let b = start(dir.path(), |c| {
        c.collateral.dir = Some(cache_dir.clone());
    });
    let secret = Client::new(&b.url, options(AuthMode::Bearer))
        .unwrap()
        .resource(
            att.credential(AuthMode::Bearer),
            &att.key,
            "default/key/one",
        )
        .unwrap();
    assert_eq!(&secret[..], SECRET);
    assert_eq!(kds.total(), 3, "broker B went to the KDS");
    assert!(b.metric("tessera_collateral_cache_hits_total") >= 1);
}

#[test]
fn broker_without_fetch_refuses_unless_its_directory_holds_the_vcek() {
    // No [collateral] at all, and a directory that is empty: refused, and no KDS asked.
    let kds = items().serve();
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), |_| {});
    assert_refused(b.get_secret());
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("collateral");
    let b = start(dir.path(), |c| {
        c.collateral.dir = Some(empty.clone());
        c.collateral.kds_url = Some(kds.base.clone());
    });
    assert_refused(b.get_secret());
    assert_eq!(b.metric("tessera_collateral_cache_misses_total"), 1);
    assert_eq!(kds.total(), 0, "a broker without fetch asked the KDS");

    // A bundle made with the library on a "connected" machine, then the KDS gone.
    let report = tessera::Evidence::from_bytes(&sample_report()).unwrap();
    let wanted = items_for_snp_report(report.snp_report().unwrap(), Product::Genoa).unwrap();
    let transport = std::sync::Arc::new(UreqTransport::new(Duration::from_secs(10)).unwrap());
    let fetcher = Fetcher::new(transport, FetchConfig::default())
        .with_kds(KdsSource::new(&kds.base).unwrap());
    let staging = Cache::in_memory().with_fetcher(fetcher);
    let bundle_dir: PathBuf = dir.path().join("bundle");
    let (fetched, _) =
        bundle::fetch_into_bundle(&staging, &wanted, &bundle_dir, UnixTime::now()).unwrap();
    assert!(fetched.failed.is_empty());
    drop(kds);
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("collateral");
    let imported = bundle::import(
        &bundle_dir,
        &Cache::open(&cache_dir).unwrap(),
        UnixTime::now(),
    )
    .unwrap();
    assert_eq!(imported.imported.len(), 3);
    let b = start(dir.path(), |c| c.collateral.dir = Some(cache_dir.clone()));
    assert_eq!(b.get_secret().unwrap(), SECRET);
    assert_eq!(b.metric("tessera_collateral_cache_hits_total"), 3);
}

/// A chip the KDS does not know (404): the guest is refused, and its retries within
/// `retry_after_failure_secs` are refused without asking the KDS again.
#[test]
fn a_failed_lookup_is_not_repeated_for_each_retry() {
    let kds = FakeKds::start(|_| Reply::status(404));
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), |c| {
        c.collateral.fetch = true;
        c.collateral.kds_url = Some(kds.base.clone());
    });
    assert_refused(b.get_secret());
    let asked = kds.total();
    assert!(asked >= 1);
    for _ in 0..3 {
        assert_refused(b.get_secret());
    }
    assert_eq!(kds.total(), asked, "retries asked the KDS again");
    assert_eq!(
        b.metric("tessera_collateral_cache_failures_reused_total"),
        3
    );
}

#[test]
fn forged_vcek_from_the_kds_is_refused() {
    // Another chip's PKI signs a certificate served at this chip's URL.
    let forger = SimSnp::new(Product::Genoa).unwrap();
    let mut forged = items();
    forged.vcek_der = forger.vcek().der().to_vec();
    let kds = forged.serve();
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), |c| {
        c.collateral.fetch = true;
        c.collateral.kds_url = Some(kds.base.clone());
    });
    assert_refused(b.get_secret());
    assert!(kds.total() >= 1);
}

/// A forged VCEK that names this chip's hwID and TCB (so it would answer the chip's lookups
/// for as long as it looks fresh) is not held: the verifier refuses it on arrival, the cache
/// forgets it (memory and directory, and only it) and does not ask the KDS again within
/// `retry_after_failure_secs`; after that the genuine VCEK is fetched and the guest is served.
#[test]
fn a_forged_vcek_is_not_kept_and_the_genuine_one_is_fetched_after_the_wait() {
    let forger = SimSnp::new(Product::Genoa).unwrap();
    let genuine = items();
    let forged_der = forger.vcek().der().to_vec();
    let forging = Arc::new(AtomicBool::new(true));
    let switch = Arc::clone(&forging);
    let vcek = genuine.vcek_der.clone();
    let kds = genuine.serve_vcek(move || {
        if switch.load(Ordering::SeqCst) {
            forged_der.clone()
        } else {
            vcek.clone()
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("collateral");
    let b = start(dir.path(), |c| {
        c.collateral.dir = Some(cache_dir.clone());
        c.collateral.fetch = true;
        c.collateral.kds_url = Some(kds.base.clone());
        c.collateral.retry_after_failure_secs = 2;
    });
    assert_refused(b.get_secret());
    let asked = kds.total();
    assert!(asked >= 1);
    // The forged VCEK is gone from the directory; the chain and CRL, which every chip of the
    // product needs, stay.
    let kept = bundle::show(&cache_dir, UnixTime::now()).unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept.iter()
            .all(|e| !matches!(e.manifest.item, Item::Vcek { .. })),
        "{kept:?}"
    );
    // Within the wait: refused without asking the KDS.
    assert_refused(b.get_secret());
    assert_eq!(kds.total(), asked);
    forging.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(b.get_secret().unwrap(), SECRET);
    assert_eq!(bundle::show(&cache_dir, UnixTime::now()).unwrap().len(), 3);
}

/// The guest sends its VCEK (`cert_chain`), under a policy requiring revocation checked with a
/// current ARK CRL, which the broker's collateral directory holds: the CRL is read from the
/// cache though the VCEK is not missing, and the secret released. (Verified without it, the
/// policy would deny at every retry.)
#[test]
fn a_crl_the_cache_holds_is_applied_to_a_guest_that_sends_its_vcek() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::now().as_secs();
    let pki = guest().pki();
    let collateral = dir.path().join("collateral");
    let crl = pki
        .ark_crl(
            &[],
            UnixTime::from_secs(now - 60),
            UnixTime::from_secs(now + 86_400),
        )
        .unwrap();
    put_crl(&collateral, crl.der());
    let b = start(dir.path(), |c| {
        c.collateral.dir = Some(collateral.clone());
    });
    let required = POLICY.replace("\"if-given\"", "\"required\"");
    let (status, body) = b.call(
        "/kbs/v0/resource/default/key/required",
        Some(json!({"policy": required, "value": STANDARD.encode(SECRET)})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(b.carrying("default/key/required").unwrap(), SECRET);
    assert!(b.metric("tessera_collateral_cache_hits_total") >= 1);
}

/// A CRL revoking the guest's ASK, put into the running broker's cache directory (as
/// `tessera collateral import` does) while the CRL it holds is current for a day yet: the
/// broker asks the cache again after an attestation (`recheck_secs`), reads the newer file,
/// and refuses the guest from then on, instead of when the held CRL expires.
#[test]
fn a_crl_put_into_the_cache_is_applied_without_waiting_for_the_held_one_to_expire() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::now().as_secs();
    let pki = guest().pki();
    let collateral = dir.path().join("collateral");
    let clean = pki
        .ark_crl(
            &[],
            UnixTime::from_secs(now - 120),
            UnixTime::from_secs(now + 86_400),
        )
        .unwrap();
    put_crl(&collateral, clean.der());
    let b = start(dir.path(), |c| {
        c.collateral.dir = Some(collateral.clone());
        c.collateral.recheck_secs = 0;
    });
    assert_eq!(b.carrying("default/key/one").unwrap(), SECRET);
    assert_eq!(b.carrying("default/key/one").unwrap(), SECRET);
    let revoking = pki
        .ark_crl(
            &[pki.ask()],
            UnixTime::from_secs(now - 60),
            UnixTime::from_secs(now + 86_400),
        )
        .unwrap();
    put_crl(&collateral, revoking.der());
    // The attestation that finds the newer file may still pass (the cache is asked after its
    // answer): within a few, the guest is refused, and stays refused.
    let mut released_after = 0;
    loop {
        match b.carrying("default/key/one") {
            Ok(_) => {
                released_after += 1;
                assert!(released_after < 20, "the revoking CRL was never applied");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                assert_eq!(e.status(), Some(401), "{e}");
                break;
            }
        }
    }
    for _ in 0..3 {
        assert_refused(b.carrying("default/key/one"));
    }
}

/// `crl` as the cache directory's ARK CRL entry for the guest's product (VCEK chain).
fn put_crl(collateral: &Path, crl: &[u8]) {
    let item = Item::AmdCrl {
        product: guest().pki().product(),
        signer: AmdSigner::Vcek,
    };
    let entry = Entry::new(item, "test", UnixTime::now(), crl.to_vec(), None).unwrap();
    Cache::open(collateral).unwrap().put(entry).unwrap();
}
