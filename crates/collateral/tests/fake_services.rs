//! A fake AMD KDS and a fake Intel PCS/PCCS on loopback, speaking real HTTP with the vendors'
//! URL shapes, headers (URL-encoded issuer chains) and status codes, serving simulator-made
//! items (always) and the real files of the vector corpus (when `TESSERA_VECTORS` is set).
//! The client side is the crate's own fetcher over ureq, its cache and its bundles; verdicts
//! come from the real verifiers.
#![cfg(feature = "fetch")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_collateral::bundle;
use tessera_collateral::item::{items_for_quote, items_for_snp_report};
use tessera_collateral::{
    AmdSigner, Cache, CollateralError, Entry, FetchConfig, Fetcher, Item, KdsSource, PcsSource,
    UpdateType, UreqTransport, snp_endorsements, tdx_collateral,
};
use tessera_pki::{UnixTime, to_hex, to_pem};
use tessera_snp::abi::{AttestationReport, Product};
use tessera_snp::sim::{SimPki, VekSpec};
use tessera_tdx::VerifyOptions;
use tessera_tdx::collateral::{CollateralBundle, TcbStatus};
use tessera_tdx::sim::{CollateralSpec, PlatformSpec, QuoteSpec, SimPcs};

/// 2026-01-02T00:00:00Z: inside the simulators' validity windows.
const NOW: UnixTime = tessera_tdx::sim::SIM_VERIFY_AT;

// ---------------------------------------------------------------- the fake services

#[derive(Clone, Debug, Default)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            body: body.into(),
            ..Self::default()
        }
    }
    fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Answers one request: (target = path and query, how many times it was asked before).
type Handler = dyn Fn(&str, usize) -> Reply + Send + Sync;

/// The request headers of every request, in arrival order.
type SeenHeaders = Arc<Mutex<Vec<Vec<(String, String)>>>>;

struct FakeService {
    base: String,
    addr: std::net::SocketAddr,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    seen_headers: SeenHeaders,
    stop: Arc<AtomicBool>,
}

impl FakeService {
    fn start(handler: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let seen_headers: SeenHeaders = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (h, s, st) = (
            Arc::clone(&hits),
            Arc::clone(&seen_headers),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, s, handler) = (Arc::clone(&h), Arc::clone(&s), Arc::clone(&handler));
                std::thread::spawn(move || serve(conn, &h, &s, &*handler));
            }
        });
        Self {
            base: format!("http://{addr}"),
            addr,
            hits,
            seen_headers,
            stop,
        }
    }

    fn hits(&self, target: &str) -> usize {
        self.hits.lock().unwrap().get(target).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

impl Drop for FakeService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    mut conn: TcpStream,
    hits: &Mutex<HashMap<String, usize>>,
    seen: &Mutex<Vec<Vec<(String, String)>>>,
    handler: &Handler,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65_536 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let headers: Vec<(String, String)> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    seen.lock().unwrap().push(headers);
    let n = {
        let mut map = hits.lock().unwrap();
        let slot = map.entry(target.to_owned()).or_insert(0);
        *slot += 1;
        *slot - 1
    };
    let reply = if method == "GET" {
        handler(target, n)
    } else {
        Reply::status(405)
    };
    std::thread::sleep(reply.delay);
    let mut out = format!(
        "HTTP/1.1 {} Fake\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.write_all(&reply.body);
}

/// Percent-encode as PCS does for its issuer-chain headers.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn fetcher(kds: &FakeService, pcs: Option<&FakeService>, config: FetchConfig) -> Fetcher {
    let transport = Arc::new(UreqTransport::new(config.timeout).unwrap());
    let mut f = Fetcher::new(transport, config).with_kds(KdsSource::new(&kds.base).unwrap());
    if let Some(pcs) = pcs {
        f = f.with_pcs(PcsSource::new(&pcs.base).unwrap());
    }
    f
}

fn quick() -> FetchConfig {
    FetchConfig {
        timeout: Duration::from_secs(10),
        max_attempts: 3,
        max_wait: Duration::from_secs(5),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tessera-collateral-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------- a simulated AMD chip

struct SnpWorld {
    pki: SimPki,
    report: AttestationReport,
    vcek_der: Vec<u8>,
    chain_pem: String,
    crl_der: Vec<u8>,
    vcek_target: String,
}

fn snp_world(product: Product) -> SnpWorld {
    let pki = SimPki::new(product).unwrap();
    let vek = pki.issue_vek(&VekSpec::vcek(product)).unwrap();
    let report = vek.sign(pki.report_template(&vek)).unwrap();
    let crl = pki
        .ark_crl(
            &[],
            UnixTime::from_secs(NOW.as_secs() - 86_400),
            UnixTime::from_secs(NOW.as_secs() + 7 * 86_400),
        )
        .unwrap();
    let t = vek.spec.tcb;
    // The URL as AMD documents it, written out independently of the crate.
    let vcek_target = match product {
        Product::Turin => format!(
            "/vcek/v1/Turin/{}?fmcSPL={:02}&blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
            to_hex(&vek.spec.hwid[..8]),
            t.fmc.unwrap(),
            t.bootloader,
            t.tee,
            t.snp,
            t.microcode
        ),
        _ => format!(
            "/vcek/v1/{product}/{}?blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
            to_hex(&vek.spec.hwid),
            t.bootloader,
            t.tee,
            t.snp,
            t.microcode
        ),
    };
    SnpWorld {
        vcek_der: vek.certificate().der().to_vec(),
        chain_pem: to_pem("CERTIFICATE", pki.ask().der()) + &to_pem("CERTIFICATE", pki.ark().der()),
        crl_der: crl.der().to_vec(),
        report,
        pki,
        vcek_target,
    }
}

fn kds_for(world: &SnpWorld) -> FakeService {
    let product = world.pki.product();
    let (vcek, chain, crl, target) = (
        world.vcek_der.clone(),
        world.chain_pem.clone(),
        world.crl_der.clone(),
        world.vcek_target.clone(),
    );
    FakeService::start(move |t, _| {
        if t == target {
            Reply::ok(vcek.clone()).header("Content-Type", "application/x-x509-ca-cert")
        } else if t == format!("/vcek/v1/{product}/cert_chain") {
            Reply::ok(chain.clone()).header("Content-Type", "application/x-pem-file")
        } else if t == format!("/vcek/v1/{product}/crl") {
            Reply::ok(crl.clone()).header("Content-Type", "application/pkix-crl")
        } else {
            Reply::status(404)
        }
    })
}

fn verify_snp(
    world: &SnpWorld,
    certs: &[tessera_pki::Certificate],
    crls: &[tessera_pki::Crl],
) -> Result<tessera_snp::Verification, tessera_snp::SnpError> {
    tessera_snp::Verifier::new(world.pki.dangerous_trust_anchors())
        .verify(&world.report, certs, crls, NOW, Some(world.pki.product()))
        .map(|v| v.verification().clone())
}

/// The same verdict as the items handed over directly (the "bundled" way).
fn bundled_snp_verdict(
    world: &SnpWorld,
) -> Result<tessera_snp::Verification, tessera_snp::SnpError> {
    let mut certs = tessera_pki::load_certificates(&world.vcek_der).unwrap();
    certs.extend(tessera_pki::load_certificates(world.chain_pem.as_bytes()).unwrap());
    let crls = tessera_pki::load_crls(&world.crl_der).unwrap();
    verify_snp(world, &certs, &crls)
}

#[test]
fn snp_fetch_cache_verify_matches_the_bundled_verdict() {
    for product in [Product::Milan, Product::Genoa, Product::Turin] {
        let world = snp_world(product);
        let kds = kds_for(&world);
        let dir = temp_dir("snp");
        let cache = Cache::open(&dir)
            .unwrap()
            .with_fetcher(fetcher(&kds, None, quick()));
        let got = snp_endorsements(&cache, &world.report, product, NOW).unwrap();
        let fetched = verify_snp(&world, &got.certificates, &got.crls);
        let bundled = bundled_snp_verdict(&world);
        assert!(bundled.is_ok(), "{product}: {bundled:?}");
        assert_eq!(fetched, bundled, "{product}");
        assert!(fetched.unwrap().revocation_checked);
        assert_eq!(
            kds.hits(&world.vcek_target),
            1,
            "{product}: the VCEK URL shape"
        );
        assert_eq!(kds.total(), 3);

        // Again: from memory, no request.
        snp_endorsements(&cache, &world.report, product, NOW).unwrap();
        assert_eq!(kds.total(), 3);
        let stats = cache.stats();
        assert_eq!((stats.fetches, stats.hits, stats.fetch_errors), (3, 3, 0));

        // A new process over the same directory, its fetcher pointing nowhere: from disk.
        drop(kds);
        let dead = FakeService::start(|_, _| Reply::status(500));
        let cache2 = Cache::open(&dir)
            .unwrap()
            .with_fetcher(fetcher(&dead, None, quick()));
        let again = snp_endorsements(&cache2, &world.report, product, NOW).unwrap();
        assert_eq!(
            verify_snp(&world, &again.certificates, &again.crls),
            bundled
        );
        assert_eq!(dead.total(), 0);

        // Damaged files are misses for a cache that can fetch: fetched again and replaced.
        let damage = || {
            for f in std::fs::read_dir(dir.join("entries")).unwrap() {
                std::fs::write(f.unwrap().path(), b"{\"not\": \"an entry\"").unwrap();
            }
        };
        damage();
        let offline = Cache::open(&dir).unwrap();
        assert!(snp_endorsements(&offline, &world.report, product, NOW).is_err());
        let kds = kds_for(&world);
        let cache3 = Cache::open(&dir)
            .unwrap()
            .with_fetcher(fetcher(&kds, None, quick()));
        let fixed = snp_endorsements(&cache3, &world.report, product, NOW).unwrap();
        assert_eq!(
            verify_snp(&world, &fixed.certificates, &fixed.crls),
            bundled
        );
        assert_eq!(kds.total(), 3, "{product}: each damaged entry fetched once");
        // ... and the files were replaced: readable offline again.
        let offline = Cache::open(&dir).unwrap();
        snp_endorsements(&offline, &world.report, product, NOW).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn rate_limit_with_retry_after_is_honoured() {
    let world = snp_world(Product::Milan);
    let (vcek, target) = (world.vcek_der.clone(), world.vcek_target.clone());
    let kds = FakeService::start(move |t, n| {
        if t == target && n == 0 {
            Reply::status(429).header("Retry-After", "1")
        } else if t == target {
            Reply::ok(vcek.clone())
        } else {
            Reply::status(404)
        }
    });
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    let item = items_for_snp_report(&world.report, Product::Milan)
        .unwrap()
        .remove(0);
    let started = Instant::now();
    let entry = cache.get(&item, NOW).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(entry.body(), &world.vcek_der[..]);
    assert_eq!(kds.hits(&world.vcek_target), 2);

    // A wait longer than the configuration allows: fail fast, and keep failing fast (no
    // request) until the service's time has passed.
    let kds = FakeService::start(|_, _| Reply::status(429).header("Retry-After", "120"));
    let config = FetchConfig {
        max_wait: Duration::from_secs(1),
        ..quick()
    };
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, config));
    let err = cache.get(&item, NOW).unwrap_err();
    match err {
        CollateralError::RateLimited { retry_at, .. } => {
            assert!(retry_at.as_secs() >= NOW.as_secs() + 119)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(kds.total(), 1);
    let chain = Item::AmdChain {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    assert!(matches!(
        cache.get(&chain, NOW),
        Err(CollateralError::RateLimited { .. })
    ));
    assert_eq!(kds.total(), 1, "the backoff holds for the whole source");
    assert_eq!(cache.stats().fetch_errors, 2);
}

#[test]
fn a_failed_fetch_is_not_repeated_until_its_wait_has_passed() {
    let world = snp_world(Product::Milan);
    let (vcek, target) = (world.vcek_der.clone(), world.vcek_target.clone());
    // The service does not know the chip at first (404), then does.
    let kds = FakeService::start(move |t, n| {
        if t == target && n >= 1 {
            Reply::ok(vcek.clone())
        } else {
            Reply::status(404)
        }
    });
    let item = items_for_snp_report(&world.report, Product::Milan)
        .unwrap()
        .remove(0);
    let cache = Cache::in_memory()
        .with_fetcher(fetcher(&kds, None, quick()))
        .with_retry_after_failure(Duration::from_secs(3));
    let first = cache.get(&item, NOW).unwrap_err();
    assert!(matches!(first, CollateralError::Status { status: 404, .. }));
    // A guest retrying in a loop: the same error, no request.
    for _ in 0..5 {
        assert_eq!(cache.get(&item, NOW).unwrap_err(), first);
    }
    assert_eq!(kds.hits(&world.vcek_target), 1);
    let stats = cache.stats();
    assert_eq!((stats.fetch_errors, stats.failures_reused), (1, 5));
    // Another key is not held back by this one's failure.
    let chain = Item::AmdChain {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    assert!(cache.get(&chain, NOW).is_err());
    assert_eq!(kds.total(), 2);
    // Once the wait has passed, the key is fetched again.
    std::thread::sleep(Duration::from_millis(3200));
    let entry = cache.get(&item, NOW).unwrap();
    assert_eq!(entry.body(), &world.vcek_der[..]);
    assert_eq!(kds.hits(&world.vcek_target), 2);

    // With no wait, every call fetches.
    let kds = FakeService::start(|_, _| Reply::status(404));
    let cache = Cache::in_memory()
        .with_fetcher(fetcher(&kds, None, quick()))
        .with_retry_after_failure(Duration::ZERO);
    for _ in 0..3 {
        assert!(cache.get(&item, NOW).is_err());
    }
    assert_eq!(kds.total(), 3);
}

#[test]
fn a_failed_refresh_keeps_the_stored_entry_without_asking_again() {
    let world = snp_world(Product::Milan);
    let (vcek, target) = (world.vcek_der.clone(), world.vcek_target.clone());
    let kds = FakeService::start(move |t, n| {
        if t == target && n == 0 {
            Reply::ok(vcek.clone())
        } else {
            Reply::status(503)
        }
    });
    let item = items_for_snp_report(&world.report, Product::Milan)
        .unwrap()
        .remove(0);
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    let stored = cache.get(&item, NOW).unwrap();
    // Past half its life, every lookup wants a new copy; the service fails.
    let later = UnixTime::from_secs(stored.valid_until().as_secs() - 10);
    for _ in 0..4 {
        let again = cache.get(&item, later).unwrap();
        assert_eq!(again.body(), stored.body());
    }
    // One refresh was tried (503, asked once more) and failed; the other lookups used the
    // stored copy without one.
    assert_eq!(kds.hits(&world.vcek_target), 3);
    assert_eq!(cache.stats().failures_reused, 3);
}

#[test]
fn forged_and_expired_items_fail_and_are_not_kept() {
    let world = snp_world(Product::Genoa);
    // A VCEK with the right hwID and TCB, issued by another (forged) ASK.
    let forger = SimPki::new(Product::Genoa).unwrap();
    let forged = forger.issue_vek(&VekSpec::vcek(Product::Genoa)).unwrap();
    let (forged_der, target, chain) = (
        forged.certificate().der().to_vec(),
        world.vcek_target.clone(),
        world.chain_pem.clone(),
    );
    let kds = FakeService::start(move |t, _| {
        if t == target {
            Reply::ok(forged_der.clone())
        } else if t.ends_with("/cert_chain") {
            Reply::ok(chain.clone())
        } else {
            Reply::status(404)
        }
    });
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    let items = items_for_snp_report(&world.report, Product::Genoa).unwrap();
    let vcek = cache.get(&items[0], NOW).unwrap();
    let chain = cache.get(&items[1], NOW).unwrap();
    let mut certs = tessera_pki::load_certificates(vcek.body()).unwrap();
    certs.extend(tessera_pki::load_certificates(chain.body()).unwrap());
    let err = verify_snp(&world, &certs, &[]).unwrap_err();
    assert!(!err.to_string().is_empty());
    // The missing CRL (404) is an error naming the item, not a silent skip.
    match snp_endorsements(&cache, &world.report, Product::Genoa, NOW) {
        Err(CollateralError::Status {
            status: 404, key, ..
        }) => assert!(key.starts_with("amd-crl-genoa")),
        other => panic!("{other:?}"),
    }

    // An expired VCEK (notAfter before now) is refused at fetch and not stored.
    let mut spec = VekSpec::vcek(Product::Genoa);
    spec.not_after = UnixTime::from_secs(NOW.as_secs() - 1);
    let expired = world
        .pki
        .issue_vek(&spec)
        .unwrap()
        .certificate()
        .der()
        .to_vec();
    // A VCEK for another chip.
    let mut other = VekSpec::vcek(Product::Genoa);
    other.hwid = vec![0x11; 64];
    let other = world
        .pki
        .issue_vek(&other)
        .unwrap()
        .certificate()
        .der()
        .to_vec();
    for (body, want) in [(expired, "expired"), (other, "hwID")] {
        let target = world.vcek_target.clone();
        let kds = FakeService::start(move |t, _| {
            if t == target {
                Reply::ok(body.clone())
            } else {
                Reply::status(404)
            }
        });
        let dir = temp_dir("expired");
        let cache = Cache::open(&dir)
            .unwrap()
            .with_fetcher(fetcher(&kds, None, quick()));
        let err = cache.get(&items[0], NOW).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert_eq!(cache.lookup(&items[0]).unwrap(), None);
        assert!(bundle::read_entries(&dir).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A bundle directory holding refused entries: those this run fetched accepted copies of are
/// replaced; when any other is refused too, nothing is written or deleted, and every refused
/// held entry is reported (none as replaced, since none was).
#[test]
fn refused_held_entries_are_replaced_only_when_all_of_them_can_be() {
    let genoa = snp_world(Product::Genoa);
    let milan = snp_world(Product::Milan);
    let (genoa_kds, milan_kds) = (kds_for(&genoa), kds_for(&milan));
    let genoa_items = items_for_snp_report(&genoa.report, Product::Genoa).unwrap();
    let milan_items = items_for_snp_report(&milan.report, Product::Milan).unwrap();
    let out = temp_dir("held").join("bundle");
    // Both chips' items fetched into the bundle at NOW, unvetted.
    for (kds, items) in [(&genoa_kds, &genoa_items), (&milan_kds, &milan_items)] {
        let cache = Cache::in_memory().with_fetcher(fetcher(kds, None, quick()));
        bundle::fetch_into_bundle(&cache, items, &out, NOW).unwrap();
    }
    let snapshot = |dir: &Path| {
        let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir.join("entries"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        files.sort();
        (files, std::fs::read(dir.join("manifest.json")).unwrap())
    };
    let before = snapshot(&out);
    assert_eq!(before.0.len(), 6);
    // Later, a vetter that refuses what was fetched before `later` for the products named.
    let later = UnixTime::from_secs(NOW.as_secs() + 60);
    let refusing = |products: &'static [&'static str]| {
        move |entries: &[Arc<Entry>]| -> Vec<(usize, String)> {
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    e.fetched_at() < later && products.iter().any(|p| e.item().key().contains(p))
                })
                .map(|(i, _)| (i, String::from("signed by no trusted root")))
                .collect()
        }
    };
    // Genoa's items again: the held Genoa copies could be replaced, the Milan ones not.
    let genoa_cache = || Cache::in_memory().with_fetcher(fetcher(&genoa_kds, None, quick()));
    let (report, manifest) = bundle::fetch_into_bundle_vetted(
        &genoa_cache(),
        &genoa_items,
        &out,
        later,
        &refusing(&["genoa", "milan"]),
    )
    .unwrap();
    assert!(manifest.is_none(), "nothing written");
    assert_eq!(report.refused_held.len(), 6, "{:?}", report.refused_held);
    assert!(
        report.replaced_held.is_empty(),
        "{:?}",
        report.replaced_held
    );
    assert_eq!(report.fetched.len(), 3);
    assert_eq!(snapshot(&out), before, "nothing written or deleted");
    // Only the Genoa copies refused: each is replaced, the Milan ones stay as they were.
    let (report, manifest) = bundle::fetch_into_bundle_vetted(
        &genoa_cache(),
        &genoa_items,
        &out,
        later,
        &refusing(&["genoa"]),
    )
    .unwrap();
    let manifest = manifest.expect("written");
    assert!(report.refused_held.is_empty(), "{:?}", report.refused_held);
    assert_eq!(report.replaced_held.len(), 3, "{:?}", report.replaced_held);
    assert_eq!(manifest.items.len(), 6);
    let after = bundle::read_entries(&out).unwrap();
    assert_eq!(after.len(), 6);
    for e in &after {
        let renewed = e.fetched_at() == later;
        assert_eq!(
            renewed,
            e.item().key().contains("genoa"),
            "{}",
            e.item().key()
        );
    }
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}

#[test]
fn concurrent_fetches_of_one_key_make_one_request() {
    let world = snp_world(Product::Milan);
    let (vcek, target) = (world.vcek_der.clone(), world.vcek_target.clone());
    let kds = FakeService::start(move |t, _| {
        if t == target {
            Reply {
                delay: Duration::from_millis(300),
                ..Reply::ok(vcek.clone())
            }
        } else {
            Reply::status(404)
        }
    });
    let dir = temp_dir("concurrent");
    let cache = Arc::new(
        Cache::open(&dir)
            .unwrap()
            .with_fetcher(fetcher(&kds, None, quick())),
    );
    let item = items_for_snp_report(&world.report, Product::Milan)
        .unwrap()
        .remove(0);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, item) = (Arc::clone(&cache), item.clone());
            std::thread::spawn(move || cache.get(&item, NOW).map(|e| e.body().to_vec()))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), world.vcek_der);
    }
    assert_eq!(kds.hits(&world.vcek_target), 1);
    assert_eq!(cache.stats().fetches, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refresh_before_expiry_and_stale_fallback() {
    let world = snp_world(Product::Milan);
    let kds = kds_for(&world);
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    let crl_item = Item::AmdCrl {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    let crl = cache.get(&crl_item, NOW).unwrap();
    let target = "/vcek/v1/Milan/crl";
    assert_eq!(kds.hits(target), 1);
    // The CRL's nextUpdate is NOW + 7 days; a day before it, it is due for refresh.
    let due = UnixTime::from_secs(crl.valid_until().as_secs() - 3600);
    assert!(due >= crl.refresh_at(tessera_collateral::cache::DEFAULT_REFRESH_BEFORE_SECS, due));
    cache
        .get(&crl_item, UnixTime::from_secs(NOW.as_secs() + 3600))
        .unwrap();
    assert_eq!(kds.hits(target), 1, "fresh: no refresh");
    cache.get(&crl_item, due).unwrap();
    assert_eq!(kds.hits(target), 2, "due: refreshed");
    // The background refresh fetches what is due, and only that.
    let dir = temp_dir("refresh");
    let disk = Cache::open(&dir)
        .unwrap()
        .with_fetcher(fetcher(&kds, None, quick()));
    let chain_item = Item::AmdChain {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    disk.get(&crl_item, NOW).unwrap();
    disk.get(&chain_item, NOW).unwrap();
    let refreshed = disk.refresh_due(due).unwrap();
    assert_eq!(refreshed.len(), 1);
    assert_eq!(refreshed[0].0, crl_item);
    assert!(refreshed[0].1.is_ok());
    assert_eq!(kds.hits(target), 4);
    assert!(
        Cache::open(&dir)
            .unwrap()
            .refresh_due(due)
            .unwrap()
            .is_empty(),
        "offline: nothing"
    );
    let _ = std::fs::remove_dir_all(&dir);
    // The service fails; the stored CRL is still valid, so it is used.
    drop(kds);
    let dead = FakeService::start(|_, _| Reply::status(503));
    let cache = Cache::in_memory().with_fetcher(fetcher(&dead, None, quick()));
    cache.put(crl.as_ref().clone()).unwrap();
    assert_eq!(cache.get(&crl_item, due).unwrap().body(), crl.body());
    assert_eq!(dead.total(), 2, "a 503 is asked once more");
    // Past its validity, the error comes through.
    let after = UnixTime::from_secs(crl.valid_until().as_secs() + 1);
    assert!(matches!(
        cache.get(&crl_item, after),
        Err(CollateralError::Status { status: 503, .. })
    ));
}

/// Online, a CRL (or Intel TCB info, QE identity, PCK or Root CA CRL) is asked for again a day
/// after it was fetched, though it is valid for a year: a revocation AMD publishes meanwhile
/// reaches the cache within a day. A VCEK or chain is asked for again only near its end. The
/// background refresh lists the CRL as due then; an offline cache reads neither again.
#[test]
fn a_status_item_is_asked_for_again_a_day_after_it_was_fetched() {
    let mut world = snp_world(Product::Milan);
    world.crl_der = world
        .pki
        .ark_crl(
            &[],
            UnixTime::from_secs(NOW.as_secs() - 86_400),
            UnixTime::from_secs(NOW.as_secs() + 365 * 86_400),
        )
        .unwrap()
        .der()
        .to_vec();
    let kds = kds_for(&world);
    let dir = temp_dir("status-refresh");
    let cache = Cache::open(&dir)
        .unwrap()
        .with_fetcher(fetcher(&kds, None, quick()));
    let items = items_for_snp_report(&world.report, Product::Milan).unwrap();
    for item in &items {
        cache.get(item, NOW).unwrap();
    }
    let crl_target = "/vcek/v1/Milan/crl";
    assert_eq!((kds.hits(crl_target), kds.total()), (1, 3));
    let at = |secs: i64| UnixTime::from_secs(NOW.as_secs() + secs);
    // Within the day: nothing is asked.
    for item in &items {
        cache.get(item, at(86_400 - 1)).unwrap();
    }
    assert!(cache.due(at(86_400 - 1)).unwrap().is_empty());
    assert_eq!(kds.total(), 3);
    // A day on: the CRL alone is due and asked for; the VCEK and chain are not.
    let day = at(86_400 + 1);
    let due = cache.due(day).unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert!(matches!(due[0], Item::AmdCrl { .. }));
    for item in &items {
        cache.get(item, day).unwrap();
    }
    assert_eq!((kds.hits(crl_target), kds.total()), (2, 4));
    // Fetched again at `day`: fresh for another day.
    assert_eq!(cache.get(&items[2], day).unwrap().fetched_at(), day);
    cache.get(&items[2], at(2 * 86_400)).unwrap();
    assert_eq!(kds.total(), 4);
    // Offline (a bundle's entries are always older than a day) nothing is due, and each
    // lookup is answered from memory.
    let offline = Cache::open(&dir).unwrap();
    for item in &items {
        offline.get(item, at(30 * 86_400)).unwrap();
        offline.get(item, at(30 * 86_400)).unwrap();
    }
    assert_eq!((offline.stats().hits, offline.stats().misses), (6, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An offline broker keeps its cache for its lifetime: an entry due in memory is read again
/// from the directory, so collateral imported by another process (`collateral import` into the
/// running broker's directory) is used without a restart, and a file removed since is gone.
#[test]
fn an_offline_cache_reads_again_what_was_imported_beside_it() {
    let world = snp_world(Product::Milan);
    let kds = kds_for(&world);
    let crl_item = Item::AmdCrl {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    let online = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    let crl = online.get(&crl_item, NOW).unwrap();
    let due = UnixTime::from_secs(crl.valid_until().as_secs() - 3600);
    let dir = temp_dir("offline-reread");
    let broker = Cache::open(&dir).unwrap();
    broker.put(crl.as_ref().clone()).unwrap();
    assert_eq!(broker.get(&crl_item, due).unwrap().fetched_at(), NOW);
    // Another process imports a copy fetched later into the same directory.
    let later = UnixTime::from_secs(NOW.as_secs() + 86_400);
    let imported = Entry::new(
        crl_item.clone(),
        "import",
        later,
        crl.body().to_vec(),
        crl.issuer_chain().map(str::to_owned),
    )
    .unwrap();
    Cache::open(&dir).unwrap().put(imported).unwrap();
    // Fresh in memory: the memory copy answers (no read per lookup).
    assert_eq!(broker.get(&crl_item, NOW).unwrap().fetched_at(), NOW);
    // Due: the directory's copy replaces it.
    assert_eq!(broker.get(&crl_item, due).unwrap().fetched_at(), later);
    // Removed from the directory: offline, nothing is held any more.
    Cache::open(&dir).unwrap().evict(&crl_item).unwrap();
    assert!(matches!(
        broker.get(&crl_item, due),
        Err(CollateralError::NotCached { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A cache over a directory checks an entry fresh in memory against its file every
/// `with_disk_recheck` (a minute by default): a CRL issued later that another process wrote
/// there (`collateral import` into a running broker's directory) replaces the memory copy,
/// though that copy is valid for a year; an older-issued, damaged or expired file does not; a
/// removed file is forgotten. Within the period the memory copy answers.
#[test]
fn a_directory_cache_takes_a_newer_file_while_its_memory_copy_is_fresh() {
    let world = snp_world(Product::Milan);
    let item = Item::AmdCrl {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    let at = |secs: i64| UnixTime::from_secs(NOW.as_secs() + secs);
    let year = at(365 * 86_400);
    let crl = |issued: UnixTime, revoked: &[&tessera_pki::Certificate]| {
        let der = world
            .pki
            .ark_crl(revoked, issued, year)
            .unwrap()
            .der()
            .to_vec();
        Entry::new(item.clone(), "import", NOW, der, None).unwrap()
    };
    let held = crl(at(-86_400), &[]);
    let revoking = crl(at(-3600), &[world.pki.ask()]);
    let older = crl(at(-2 * 86_400), &[]);
    let dir = temp_dir("disk-recheck");
    let importer = || Cache::open(&dir).unwrap();
    importer().put(held.clone()).unwrap();
    // Two brokers over the directory, offline: one with the default period, one checking at
    // every lookup.
    // (An hour for "the default": the test must not depend on finishing within a minute.)
    let default = Cache::open(&dir)
        .unwrap()
        .with_disk_recheck(Duration::from_secs(3600));
    let every = Cache::open(&dir).unwrap().with_disk_recheck(Duration::ZERO);
    for cache in [&default, &every] {
        assert_eq!(cache.get(&item, NOW).unwrap().issued_at(), held.issued_at());
    }
    // Another process imports a CRL issued later (revoking the ASK).
    importer().put(revoking.clone()).unwrap();
    assert_eq!(
        every.get(&item, NOW).unwrap().issued_at(),
        revoking.issued_at()
    );
    assert_eq!(
        default.get(&item, NOW).unwrap().issued_at(),
        held.issued_at(),
        "within the minute: the memory copy"
    );
    // An older copy written there (an `--replace` of an old bundle) is not taken; nor is a
    // damaged file, nor another product's entry: the memory copy stays. Nor once the memory
    // copy is due (offline, a day before its end), when the file is read at every lookup
    // whatever the period: the revoking CRL stays, offline where nothing would correct it.
    let due = Cache::open(&dir)
        .unwrap()
        .with_disk_recheck(Duration::from_secs(3600));
    assert_eq!(
        due.get(&item, NOW).unwrap().issued_at(),
        revoking.issued_at()
    );
    importer().put(older.clone()).unwrap();
    assert_eq!(
        every.get(&item, NOW).unwrap().issued_at(),
        revoking.issued_at()
    );
    let due_at = at(364 * 86_400 + 1);
    for _ in 0..2 {
        assert_eq!(
            due.get(&item, due_at).unwrap().issued_at(),
            revoking.issued_at(),
            "due in memory: the older file is not taken"
        );
    }
    let path = dir
        .join(tessera_collateral::cache::ENTRIES_DIR)
        .join(format!("{}.json", item.key()));
    std::fs::write(&path, b"{\"not\": \"an entry\"}").unwrap();
    assert_eq!(
        every.get(&item, NOW).unwrap().issued_at(),
        revoking.issued_at()
    );
    let chain = Entry::new(
        Item::AmdChain {
            product: Product::Milan,
            signer: AmdSigner::Vcek,
        },
        "import",
        NOW,
        world.chain_pem.clone().into_bytes(),
        None,
    )
    .unwrap();
    std::fs::write(&path, chain.to_json()).unwrap();
    assert_eq!(
        every.get(&item, NOW).unwrap().issued_at(),
        revoking.issued_at()
    );
    // A copy issued at the same time as the one held, fetched later: taken. Then removed:
    // forgotten, and offline nothing is held.
    let refetched = Entry::new(
        item.clone(),
        "import",
        at(60),
        revoking.body().to_vec(),
        None,
    )
    .unwrap();
    importer().put(refetched).unwrap();
    assert_eq!(every.get(&item, NOW).unwrap().fetched_at(), at(60));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        every.get(&item, NOW),
        Err(CollateralError::NotCached { .. })
    ));
    assert_eq!(
        default.get(&item, NOW).unwrap().issued_at(),
        held.issued_at()
    );

    // Online, the same: the newer file is used without asking the service.
    importer().put(held.clone()).unwrap();
    let kds = kds_for(&world);
    let online = Cache::open(&dir)
        .unwrap()
        .with_fetcher(fetcher(&kds, None, quick()))
        .with_disk_recheck(Duration::ZERO);
    assert_eq!(
        online.get(&item, at(60)).unwrap().issued_at(),
        held.issued_at()
    );
    importer().put(revoking.clone()).unwrap();
    assert_eq!(
        online.get(&item, at(60)).unwrap().issued_at(),
        revoking.issued_at()
    );
    assert_eq!(kds.total(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Newer-only on fetch, as on import: a source that answers with a copy issued before the one
/// held (a lagging PCCS, or a replayed CRL the vendor really signed, from before a revocation)
/// does not replace it; the held copy answers while it is valid, and the source is not asked
/// again at once. A copy issued later replaces the held one, whatever its window.
#[test]
fn a_fetched_older_copy_does_not_roll_back_the_held_one() {
    let world = snp_world(Product::Milan);
    let kds = kds_for(&world); // serves a CRL current until NOW + 7 days
    let crl_item = Item::AmdCrl {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    let newer = world
        .pki
        .ark_crl(
            &[world.pki.ask()],
            NOW,
            UnixTime::from_secs(NOW.as_secs() + 7 * 86_400 + 3600),
        )
        .unwrap();
    let newer = Entry::new(crl_item.clone(), "held", NOW, newer.der().to_vec(), None).unwrap();
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    cache.put(newer.clone()).unwrap();
    // Due for refresh (a day before its end), while the source's older copy is still valid.
    let due = UnixTime::from_secs(NOW.as_secs() + 6 * 86_400 + 7200);
    let got = cache.get(&crl_item, due).unwrap();
    assert_eq!(kds.hits("/vcek/v1/Milan/crl"), 1);
    assert_eq!(got.body(), newer.body(), "the held, newer CRL stays");
    assert_eq!(got.valid_until(), newer.valid_until());
    assert_eq!(cache.stats().fetch_errors, 1);
    // Not asked again at once (the failure wait), and still the newer copy.
    assert_eq!(cache.get(&crl_item, due).unwrap().body(), newer.body());
    assert_eq!(kds.hits("/vcek/v1/Milan/crl"), 1);
    // Newer is by issue time, not by window: a copy held from before the source's (issued two
    // days ago) is replaced by the source's even though that one ends an hour earlier.
    let older = world
        .pki
        .ark_crl(
            &[],
            UnixTime::from_secs(NOW.as_secs() - 2 * 86_400),
            UnixTime::from_secs(NOW.as_secs() + 7 * 86_400 + 3600),
        )
        .unwrap();
    let older = Entry::new(crl_item.clone(), "held", NOW, older.der().to_vec(), None).unwrap();
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    cache.put(older.clone()).unwrap();
    let got = cache.get(&crl_item, due).unwrap();
    assert_eq!(
        got.body(),
        &world.crl_der[..],
        "the source's later-issued CRL"
    );
    assert!(got.valid_until() < older.valid_until());
    assert_eq!(kds.hits("/vcek/v1/Milan/crl"), 2);
}

/// Newer-only into a bundle directory too: a fetch whose cache has only the service's older
/// copy (a fresh cache, or one on another machine) keeps the copy issued later that the
/// directory holds, and says so; an older held copy is replaced.
#[test]
fn fetching_into_a_bundle_does_not_roll_it_back() {
    let world = snp_world(Product::Milan);
    let kds = kds_for(&world); // serves a CRL issued before NOW that revokes nothing
    let crl_item = Item::AmdCrl {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    let revoking = world
        .pki
        .ark_crl(
            &[world.pki.ask()],
            NOW,
            UnixTime::from_secs(NOW.as_secs() + 7 * 86_400),
        )
        .unwrap();
    let revoking =
        Entry::new(crl_item.clone(), "held", NOW, revoking.der().to_vec(), None).unwrap();
    let out = temp_dir("bundle-no-rollback").join("bundle");
    bundle::write_bundle_dir(&out, std::slice::from_ref(&revoking), NOW).unwrap();
    let crl_in_bundle = || {
        bundle::read_entries(&out)
            .unwrap()
            .into_iter()
            .find(|e| e.item() == &crl_item)
            .unwrap()
    };
    let fresh_cache = || Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    let (report, manifest) =
        bundle::fetch_into_bundle(&fresh_cache(), std::slice::from_ref(&crl_item), &out, NOW)
            .unwrap();
    assert_eq!(kds.hits("/vcek/v1/Milan/crl"), 1, "the service was asked");
    assert_eq!(report.kept_held, vec![crl_item.key()]);
    assert!(
        report.fetched.is_empty(),
        "the older copy is not reported fetched"
    );
    assert!(report.failed.is_empty());
    assert_eq!(manifest.expect("written").items.len(), 1);
    assert_eq!(
        crl_in_bundle().body(),
        revoking.body(),
        "the revoking CRL stays"
    );
    // The other way round: a held copy issued before the service's is replaced by it.
    let older = world
        .pki
        .ark_crl(
            &[world.pki.ask()],
            UnixTime::from_secs(NOW.as_secs() - 20 * 86_400),
            UnixTime::from_secs(NOW.as_secs() + 7 * 86_400),
        )
        .unwrap();
    let older = Entry::new(crl_item.clone(), "held", NOW, older.der().to_vec(), None).unwrap();
    assert!(
        older.issued_at()
            < Entry::new(crl_item.clone(), "kds", NOW, world.crl_der.clone(), None)
                .unwrap()
                .issued_at()
    );
    bundle::write_bundle_dir(&out, &[older], NOW).unwrap();
    let (report, _) =
        bundle::fetch_into_bundle(&fresh_cache(), std::slice::from_ref(&crl_item), &out, NOW)
            .unwrap();
    assert!(report.kept_held.is_empty(), "{:?}", report.kept_held);
    assert_eq!(report.fetched.len(), 1);
    assert_eq!(crl_in_bundle().body(), &world.crl_der[..]);
    // Kept while the refresh failed (the service down, the cache holding only an older copy
    // that is due): still reported stale, so that the run fails.
    bundle::write_bundle_dir(&out, std::slice::from_ref(&revoking), NOW).unwrap();
    let dead = FakeService::start(|_, _| Reply::status(503));
    let cache = Cache::in_memory().with_fetcher(fetcher(&dead, None, quick()));
    let older_copy = Entry::new(crl_item.clone(), "kds", NOW, world.crl_der.clone(), None).unwrap();
    cache.put(older_copy).unwrap();
    let due = UnixTime::from_secs(NOW.as_secs() + 6 * 86_400 + 3600);
    let (report, _) =
        bundle::fetch_into_bundle(&cache, std::slice::from_ref(&crl_item), &out, due).unwrap();
    assert_eq!(report.kept_held, vec![crl_item.key()]);
    assert_eq!(report.stale.len(), 1, "{:?}", report.stale);
    assert_eq!(crl_in_bundle().body(), revoking.body());
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}

/// A held copy already past its validity that the vetter refuses holds nothing back: one
/// dated to have just expired while claiming a later issue (a forgery placed in the directory)
/// does not keep the source's current copy out; a genuine one still does (no rollback). And
/// nothing is taken that claims to be issued after its own validity ends.
#[test]
fn an_expired_held_copy_does_not_keep_the_current_one_out() {
    let world = snp_world(Product::Milan);
    let forger = SimPki::new(Product::Milan).unwrap();
    let kds = kds_for(&world); // a CRL issued before NOW, current until NOW + 7 days
    let crl_item = Item::AmdCrl {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    let lapsed = |pki: &SimPki| {
        let crl = pki
            .ark_crl(
                &[],
                UnixTime::from_secs(NOW.as_secs() + 3600),
                UnixTime::from_secs(NOW.as_secs() + 7200),
            )
            .unwrap();
        Entry::new(crl_item.clone(), "held", NOW, crl.der().to_vec(), None).unwrap()
    };
    let ark = world.pki.ark().clone();
    let vetter: tessera_collateral::Vetter = Arc::new(move |entry: &Entry, _| {
        let crls = tessera_pki::load_crls(entry.body()).map_err(|e| e.to_string())?;
        crls.iter().try_for_each(|crl| {
            crl.verify_signed_by(&ark, &mut tessera_pki::Budget::default())
                .map_err(|e| e.to_string())
        })
    });
    let later = UnixTime::from_secs(NOW.as_secs() + 7300);
    let current = Entry::new(crl_item.clone(), "kds", NOW, world.crl_der.clone(), None).unwrap();
    // (Without a vetter an expired copy is taken as genuine: newer-only errs towards no
    // rollback.)
    for (held, replaced, vetted) in [
        (lapsed(&forger), true, true),
        (lapsed(&world.pki), false, true),
        (lapsed(&forger), false, false),
    ] {
        assert!(held.check_not_expired(later).is_err());
        assert!(held.issued_at() > current.issued_at());
        let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
        let cache = if vetted {
            cache.with_vetter(Arc::clone(&vetter))
        } else {
            cache
        };
        cache.put(held).unwrap();
        let got = cache.get(&crl_item, later);
        if replaced {
            assert_eq!(got.unwrap().body(), &world.crl_der[..], "the source's CRL");
            assert_eq!(cache.stats().fetch_errors, 0);
        } else {
            assert!(
                got.is_err(),
                "a genuine later-issued copy is not rolled back"
            );
            assert_eq!(cache.stats().fetch_errors, 1);
        }
    }
    // An expired VCEK holds nothing back, whatever the vetter (which does not judge a VCEK
    // alone): an older one revokes nothing, and a forgery dated to have just expired, placed
    // in the directory, would otherwise keep the genuine one out for good.
    let vcek_item = items_for_snp_report(&world.report, Product::Milan)
        .unwrap()
        .into_iter()
        .find(|i| matches!(i, Item::Vcek { .. }))
        .unwrap();
    let forged_vcek = forger
        .issue_vek(&VekSpec {
            not_before: UnixTime::from_secs(NOW.as_secs() + 60),
            not_after: UnixTime::from_secs(NOW.as_secs() + 7200),
            ..VekSpec::vcek(Product::Milan)
        })
        .unwrap();
    let held = Entry::new(
        vcek_item.clone(),
        "held",
        NOW,
        forged_vcek.certificate().der().to_vec(),
        None,
    )
    .unwrap();
    let genuine = Entry::new(vcek_item.clone(), "kds", NOW, world.vcek_der.clone(), None).unwrap();
    assert!(held.issued_at() > genuine.issued_at() && held.check_not_expired(later).is_err());
    let cache = Cache::in_memory()
        .with_fetcher(fetcher(&kds, None, quick()))
        .with_vetter(Arc::new(|_: &Entry, _| Ok(())));
    cache.put(held).unwrap();
    assert_eq!(
        cache.get(&vcek_item, later).unwrap().body(),
        &world.vcek_der[..]
    );
    // A CRL whose thisUpdate is after its nextUpdate is no CRL to hold.
    let inverted = world
        .pki
        .ark_crl(
            &[],
            UnixTime::from_secs(NOW.as_secs() + 7200),
            UnixTime::from_secs(NOW.as_secs() + 3600),
        )
        .unwrap();
    match Entry::new(crl_item, "held", NOW, inverted.der().to_vec(), None) {
        Err(CollateralError::Response { detail, .. }) => {
            assert!(detail.contains("after the end of its validity"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

/// A 502, 503 or 504 is asked once more after a short pause (one blip does not refuse the item
/// for the failure wait); a second one, or another 5xx, is the answer.
#[test]
fn a_passing_server_error_is_asked_once_more() {
    let world = snp_world(Product::Milan);
    let chain_pem = world.chain_pem.clone();
    let blip = FakeService::start(move |_, n| {
        if n == 0 {
            Reply::status(503)
        } else {
            Reply::ok(chain_pem.clone().into_bytes())
        }
    });
    let one_attempt = FetchConfig {
        max_attempts: 1,
        ..quick()
    };
    let cache = Cache::in_memory().with_fetcher(fetcher(&blip, None, one_attempt.clone()));
    let chain = Item::AmdChain {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    assert!(cache.get(&chain, NOW).is_ok());
    assert_eq!(blip.total(), 2);
    for (status, asked) in [(502, 2), (504, 2), (500, 1)] {
        let down = FakeService::start(move |_, _| Reply::status(status));
        let cache = Cache::in_memory().with_fetcher(fetcher(&down, None, one_attempt.clone()));
        match cache.get(&chain, NOW) {
            Err(CollateralError::Status { status: got, .. }) => assert_eq!(got, status),
            other => panic!("{other:?}"),
        }
        assert_eq!(down.total(), asked, "{status}");
    }
}

/// The transport's limits: a body past `MAX_BODY_LEN`, or a response head past 64 KiB (an issuer
/// chain header longer than `MAX_HEADER_LEN`), is a transport error, read no further.
#[test]
fn oversized_bodies_and_headers_are_refused() {
    use tessera_collateral::response::{MAX_BODY_LEN, MAX_HEADER_LEN};
    let big = FakeService::start(|_, _| Reply::ok(vec![b'A'; MAX_BODY_LEN + 1]));
    let cache = Cache::in_memory().with_fetcher(fetcher(&big, None, quick()));
    let chain = Item::AmdChain {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    assert!(matches!(
        cache.get(&chain, NOW),
        Err(CollateralError::Transport { .. })
    ));
    let tdx = tdx_world();
    let bundle: CollateralBundle =
        serde_json::from_str(&tdx.pcs_sim.collateral_json(&tdx.spec).unwrap()).unwrap();
    let body = format!(
        "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
        bundle.tcb_info, bundle.tcb_info_signature
    );
    // The real chain, padded past the limit with text the PEM reader would skip.
    let padded = url_encode(&(bundle.tcb_info_issuer_chain.clone() + &" ".repeat(MAX_HEADER_LEN)));
    let pcs = FakeService::start(move |_, _| {
        Reply::ok(body.clone().into_bytes()).header("TCB-Info-Issuer-Chain", &padded)
    });
    let kds = FakeService::start(|_, _| Reply::status(404));
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, Some(&pcs), quick()));
    let tcb = items_for_quote(&tdx.quote, UpdateType::Standard)
        .unwrap()
        .into_iter()
        .find(|i| matches!(i, Item::TcbInfo { .. }))
        .unwrap();
    // ureq refuses a response head over 64 KiB before our own filter would drop the value.
    match cache.get(&tcb, NOW) {
        Err(CollateralError::Transport { detail, .. }) => {
            assert!(detail.contains("header"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- a simulated Intel platform

struct TdxWorld {
    pcs_sim: SimPcs,
    quote: tessera_tdx::abi::Quote,
    spec: CollateralSpec,
}

fn tdx_world() -> TdxWorld {
    let pcs_sim = SimPcs::new().unwrap();
    let platform = PlatformSpec::default();
    let pck = pcs_sim.issue_pck(&platform).unwrap();
    let qspec = QuoteSpec::tdx();
    let quote = pcs_sim.quote(&pck, &qspec).unwrap();
    let spec = CollateralSpec::matching(&platform, &qspec, TcbStatus::UpToDate);
    TdxWorld {
        pcs_sim,
        quote,
        spec,
    }
}

/// A fake PCCS serving `bundle`'s items as PCS v4 does (the Root CA CRL as hex, as a PCCS).
fn pccs_for(bundle: CollateralBundle, tamper_tcb_signature: bool) -> FakeService {
    let fmspc = "00806F050000";
    let mut tcb_sig = bundle.tcb_info_signature.clone();
    if tamper_tcb_signature {
        let first = if tcb_sig.starts_with('0') { "1" } else { "0" };
        tcb_sig.replace_range(0..1, first);
    }
    let tcb_body = format!(
        "{{\"tcbInfo\":{},\"signature\":\"{tcb_sig}\"}}",
        bundle.tcb_info
    );
    let qe_body = format!(
        "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
        bundle.qe_identity, bundle.qe_identity_signature
    );
    let tcb_chain = url_encode(&bundle.tcb_info_issuer_chain);
    let qe_chain = url_encode(&bundle.qe_identity_issuer_chain);
    let crl_chain = url_encode(bundle.pck_crl_issuer_chain.as_deref().unwrap());
    let pck_crl = tessera_pki::from_hex(bundle.pck_crl.as_deref().unwrap().as_bytes()).unwrap();
    let root_crl_hex = bundle.root_ca_crl.clone().unwrap();
    FakeService::start(move |t, _| match t {
        _ if t == format!("/tdx/certification/v4/tcb?fmspc={fmspc}&update=standard") => {
            Reply::ok(tcb_body.clone()).header("TCB-Info-Issuer-Chain", &tcb_chain)
        }
        "/tdx/certification/v4/qe/identity?update=standard" => {
            Reply::ok(qe_body.clone()).header("SGX-Enclave-Identity-Issuer-Chain", &qe_chain)
        }
        "/sgx/certification/v4/pckcrl?ca=platform&encoding=der" => {
            Reply::ok(pck_crl.clone()).header("SGX-PCK-CRL-Issuer-Chain", &crl_chain)
        }
        "/sgx/certification/v4/rootcacrl" => Reply::ok(root_crl_hex.clone()),
        _ => Reply::status(404).header("Error-Code", "NotFound"),
    })
}

fn verify_tdx(
    world: &TdxWorld,
    collateral: &tessera_tdx::collateral::Collateral,
) -> Result<tessera_tdx::Verification, tessera_tdx::TdxError> {
    tessera_tdx::Verifier::new(world.pcs_sim.dangerous_trust_anchors())
        .verify(&world.quote, collateral, NOW, &VerifyOptions::default())
        .map(|v| v.verification().clone())
}

#[test]
fn tdx_fetch_cache_verify_matches_the_bundled_verdict() {
    let world = tdx_world();
    let json = world.pcs_sim.collateral_json(&world.spec).unwrap();
    let bundle_value: CollateralBundle = serde_json::from_str(&json).unwrap();
    let pccs = pccs_for(bundle_value, false);
    let kds = FakeService::start(|_, _| Reply::status(404));
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, Some(&pccs), quick()));
    let fetched = tdx_collateral(&cache, &world.quote, UpdateType::Standard, NOW).unwrap();
    let bundled = verify_tdx(&world, &world.pcs_sim.collateral(&world.spec).unwrap());
    assert!(bundled.is_ok(), "{bundled:?}");
    let got = verify_tdx(&world, &fetched);
    assert_eq!(got, bundled);
    assert!(got.unwrap().revocation_checked);
    assert_eq!(pccs.total(), 4);
    assert_eq!(kds.total(), 0);
}

#[test]
fn tdx_forged_signature_fails_verification_and_expired_collateral_is_refused() {
    let world = tdx_world();
    let json = world.pcs_sim.collateral_json(&world.spec).unwrap();
    let pccs = pccs_for(serde_json::from_str(&json).unwrap(), true);
    let kds = FakeService::start(|_, _| Reply::status(404));
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, Some(&pccs), quick()));
    let forged = tdx_collateral(&cache, &world.quote, UpdateType::Standard, NOW).unwrap();
    let err = verify_tdx(&world, &forged).unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("signature"),
        "{err}"
    );

    // TCB info whose nextUpdate has passed: refused at fetch, not stored.
    let mut old = world.spec.clone();
    old.next_update = UnixTime::from_secs(NOW.as_secs() - 60);
    let json = world.pcs_sim.collateral_json(&old).unwrap();
    let pccs = pccs_for(serde_json::from_str(&json).unwrap(), false);
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, Some(&pccs), quick()));
    let items = items_for_quote(&world.quote, UpdateType::Standard).unwrap();
    let err = cache.get(&items[0], NOW).unwrap_err();
    assert!(
        matches!(
            err,
            CollateralError::Expired {
                field: "nextUpdate",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(cache.lookup(&items[0]).unwrap(), None);
    // Early TCB info is another URL the fake does not serve: 404 with Intel's Error-Code.
    let err = tdx_collateral(&cache, &world.quote, UpdateType::Early, NOW).unwrap_err();
    assert_eq!(
        err,
        CollateralError::Status {
            key: String::from("intel-tcb-tdx-00806f050000-early"),
            status: 404,
            error_code: Some(String::from("NotFound"))
        }
    );
}

#[test]
fn pcs_api_key_is_sent_only_to_pcs() {
    let world = tdx_world();
    let json = world.pcs_sim.collateral_json(&world.spec).unwrap();
    let pccs = pccs_for(serde_json::from_str(&json).unwrap(), false);
    let snp = snp_world(Product::Milan);
    let kds = kds_for(&snp);
    let transport = Arc::new(UreqTransport::new(Duration::from_secs(10)).unwrap());
    let f = Fetcher::new(transport, quick())
        .with_kds(KdsSource::new(&kds.base).unwrap())
        .with_pcs(
            PcsSource::new(&pccs.base)
                .unwrap()
                .with_api_key(tessera_collateral::ApiKey::new("k-123").unwrap()),
        );
    let cache = Cache::in_memory().with_fetcher(f);
    tdx_collateral(&cache, &world.quote, UpdateType::Standard, NOW).unwrap();
    snp_endorsements(&cache, &snp.report, Product::Milan, NOW).unwrap();
    let key_of = |s: &FakeService| {
        s.seen_headers
            .lock()
            .unwrap()
            .iter()
            .map(|h| {
                h.iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("Ocp-Apim-Subscription-Key"))
                    .map(|(_, v)| v.clone())
            })
            .collect::<Vec<_>>()
    };
    assert!(key_of(&pccs).iter().all(|k| k.as_deref() == Some("k-123")));
    assert!(key_of(&kds).iter().all(Option::is_none));
}

// ---------------------------------------------------------------- offline bundles

#[test]
fn bundle_made_online_verifies_air_gapped() {
    // Connected side: fetch an SNP chip's and a TDX platform's items into a bundle, pack it.
    let snp = snp_world(Product::Turin);
    let tdx = tdx_world();
    let json = tdx.pcs_sim.collateral_json(&tdx.spec).unwrap();
    let pccs = pccs_for(serde_json::from_str(&json).unwrap(), false);
    let kds = kds_for(&snp);
    let online = Cache::open(&temp_dir("online-cache"))
        .unwrap()
        .with_fetcher(fetcher(&kds, Some(&pccs), quick()));
    let mut items = items_for_snp_report(&snp.report, Product::Turin).unwrap();
    items.extend(items_for_quote(&tdx.quote, UpdateType::Standard).unwrap());
    let out = temp_dir("bundle");
    let (report, manifest) = bundle::fetch_into_bundle(&online, &items, &out, NOW).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(manifest.expect("written").items.len(), 7);
    assert!(out.join(bundle::MANIFEST_FILE).is_file());
    let file = out.join("..").join(format!(
        "{}.tcb",
        out.file_name().unwrap().to_string_lossy()
    ));
    bundle::pack_to_file(&out, &file, NOW).unwrap();
    drop((kds, pccs, online));

    // Air-gapped side: no service, no fetcher. Import the file into an empty cache.
    let cache_dir = temp_dir("airgap");
    let offline = Cache::open(&cache_dir).unwrap();
    let imported = bundle::import(&file, &offline, NOW).unwrap();
    assert_eq!(imported.imported.len(), 7);
    assert!(imported.expired.is_empty());
    let got = snp_endorsements(&offline, &snp.report, Product::Turin, NOW).unwrap();
    assert_eq!(
        verify_snp(&snp, &got.certificates, &got.crls),
        bundled_snp_verdict(&snp)
    );
    assert!(verify_snp(&snp, &got.certificates, &got.crls).is_ok());
    let coll = tdx_collateral(&offline, &tdx.quote, UpdateType::Standard, NOW).unwrap();
    assert_eq!(
        verify_tdx(&tdx, &coll),
        verify_tdx(&tdx, &tdx.pcs_sim.collateral(&tdx.spec).unwrap())
    );
    // The bundle directory itself serves as --collateral-dir.
    let as_dir = Cache::open_existing(&out).unwrap();
    assert!(tdx_collateral(&as_dir, &tdx.quote, UpdateType::Standard, NOW).is_ok());
    // What is missing offline is named, not fetched.
    let other = snp_world(Product::Milan);
    match snp_endorsements(&offline, &other.report, Product::Milan, NOW) {
        Err(CollateralError::NotCached { key }) => assert!(key.starts_with("amd-vcek-milan-")),
        r => panic!("{r:?}"),
    }
    // show: the same seven items from the directory, the file and the cache; CRLs expire first.
    let shown = bundle::show(&file, NOW).unwrap();
    assert_eq!(shown.len(), 7);
    assert_eq!(bundle::show(&out, NOW).unwrap(), shown);
    assert_eq!(bundle::show(&cache_dir, NOW).unwrap(), shown);
    assert!(
        shown
            .iter()
            .all(|s| s.freshness == bundle::Freshness::Valid)
    );
    let later = UnixTime::from_secs(NOW.as_secs() + 60 * 86_400);
    assert!(
        bundle::show(&file, later)
            .unwrap()
            .iter()
            .any(|s| s.freshness == bundle::Freshness::Expired)
    );

    // A tampered bundle imports nothing.
    let mut text = std::fs::read_to_string(&file).unwrap();
    text = text.replacen("\"kind\": \"amd_crl\"", "\"kind\": \"root_ca_crl\"", 1);
    std::fs::write(&file, text).unwrap();
    let empty = Cache::open(&temp_dir("airgap2")).unwrap();
    assert!(bundle::import(&file, &empty, NOW).is_err());
    assert!(
        bundle::read_entries(empty.dir().unwrap())
            .unwrap()
            .is_empty()
    );
    for d in [&out, &cache_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_file(&file);
}

// ---------------------------------------------------------------- the real vectors

#[path = "../../../tests/common/mod.rs"]
mod common;

/// The corpus as every corpus-backed test finds it (`TESSERA_VECTORS`, else
/// `../shared/vectors`; in CI a missing corpus fails the test).
fn vectors() -> Option<PathBuf> {
    common::vectors()
}

fn case_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap()
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn vectors_kds_serves_real_genoa_and_turin_vceks() {
    let Some(root) = vectors() else { return };
    let dir = root.join("snp/genoa-v3_tinfoil_teep-20260620");
    let case = case_json(&dir);
    let at = UnixTime::parse_rfc3339(case["at"].as_str().unwrap()).unwrap();
    let report =
        AttestationReport::from_bytes(&std::fs::read(dir.join("report.bin")).unwrap()).unwrap();
    let vcek = std::fs::read(dir.join("vcek.der")).unwrap();
    let chain = std::fs::read(dir.join("cert_chain.pem")).unwrap();
    let f = &case["facts"]["reported_tcb"];
    let target = format!(
        "/vcek/v1/Genoa/{}?blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        to_hex(&report.raw().chip_id),
        f["bl"].as_u64().unwrap(),
        f["tee"].as_u64().unwrap(),
        f["snp"].as_u64().unwrap(),
        f["ucode"].as_u64().unwrap()
    );
    let (v, c, t) = (vcek.clone(), chain.clone(), target.clone());
    let kds = FakeService::start(move |p, _| {
        if p == t {
            Reply::ok(v.clone())
        } else if p == "/vcek/v1/Genoa/cert_chain" {
            Reply::ok(c.clone())
        } else {
            Reply::status(404)
        }
    });
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    let items = items_for_snp_report(&report, Product::Genoa).unwrap();
    let mut certs = Vec::new();
    for item in &items[..2] {
        certs.extend(tessera_pki::load_certificates(cache.get(item, at).unwrap().body()).unwrap());
    }
    let verifier = tessera_snp::Verifier::new(tessera_snp::TrustAnchors::amd().unwrap());
    let fetched = verifier
        .verify(&report, &certs, &[], at, None)
        .map(|v| v.verification().clone());
    let mut given = tessera_pki::load_certificates(&vcek).unwrap();
    given.extend(tessera_pki::load_certificates(&chain).unwrap());
    let bundled = verifier
        .verify(&report, &given, &[], at, None)
        .map(|v| v.verification().clone());
    assert!(bundled.is_ok(), "{bundled:?}");
    assert_eq!(fetched, bundled);
    assert_eq!(kds.hits(&target), 1);

    // A real Turin VCEK: the 8-byte hwID and fmcSPL URL rule.
    let turin = std::fs::read(root.join("snp/certs-only_turin-vcek_virtee-sev/vcek.der")).unwrap();
    let cert = tessera_pki::Certificate::from_der(&turin).unwrap();
    let ext = tessera_snp::certs::VekExtensions::from_certificate(&cert).unwrap();
    let hwid = ext.hwid.clone().unwrap();
    assert_eq!(hwid.len(), 8);
    let t = ext.tcb;
    let target = format!(
        "/vcek/v1/Turin/{}?fmcSPL={:02}&blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        to_hex(&hwid),
        t.fmc.unwrap(),
        t.bootloader,
        t.tee,
        t.snp,
        t.microcode
    );
    let (v, tt) = (turin.clone(), target.clone());
    let kds = FakeService::start(move |p, _| {
        if p == tt {
            Reply::ok(v.clone())
        } else {
            Reply::status(404)
        }
    });
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    let item = Item::vcek(Product::Turin, &hwid, t).unwrap();
    let entry = cache.get(&item, cert.not_before()).unwrap();
    assert_eq!(entry.body(), &turin[..]);
    assert_eq!(entry.valid_until(), cert.not_after());
    assert_eq!(kds.hits(&target), 1);
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn vectors_pcs_serves_real_tdx_collateral() {
    let Some(root) = vectors() else { return };
    let dir = root.join("tdx/auto-tdx-v4-00806f-2025-06");
    let case = case_json(&dir);
    let at = UnixTime::parse_rfc3339(case["at"].as_str().unwrap()).unwrap();
    let quote_bytes = std::fs::read(dir.join("quote.bin")).unwrap();
    let quote = tessera_tdx::abi::Quote::parse(&quote_bytes).unwrap();
    let raw = |name: &str| std::fs::read(dir.join("collateral").join(name)).unwrap();
    let pem = |name: &str| to_pem("CERTIFICATE", &raw(name));
    let tcb_chain = url_encode(&(pem("intel_sgx_tcb_signing.der") + &pem("intel_sgx_root_ca.der")));
    let crl_chain =
        url_encode(&(pem("intel_sgx_pck_platform_ca.der") + &pem("intel_sgx_root_ca.der")));
    let (tcb, qe, pck_crl, root_crl) = (
        raw("tcbinfov3_00806f050000.json"),
        raw("qe_td.json"),
        raw("pck_crl_platform.der"),
        raw("root_ca_crl.der"),
    );
    let pcs = FakeService::start(move |t, _| match t {
        "/tdx/certification/v4/tcb?fmspc=00806F050000&update=standard" => {
            Reply::ok(tcb.clone()).header("TCB-Info-Issuer-Chain", &tcb_chain)
        }
        "/tdx/certification/v4/qe/identity?update=standard" => {
            Reply::ok(qe.clone()).header("SGX-Enclave-Identity-Issuer-Chain", &tcb_chain)
        }
        "/sgx/certification/v4/pckcrl?ca=platform&encoding=der" => {
            Reply::ok(pck_crl.clone()).header("SGX-PCK-CRL-Issuer-Chain", &crl_chain)
        }
        "/IntelSGXRootCA.der" => Reply::ok(root_crl.clone()),
        _ => Reply::status(404),
    });
    let kds = FakeService::start(|_, _| Reply::status(404));
    let source = PcsSource::new(&pcs.base)
        .unwrap()
        .with_root_ca_crl_url(&format!("{}/IntelSGXRootCA.der", pcs.base))
        .unwrap();
    let transport = Arc::new(UreqTransport::new(Duration::from_secs(10)).unwrap());
    let f = Fetcher::new(transport, quick())
        .with_kds(KdsSource::new(&kds.base).unwrap())
        .with_pcs(source);
    let cache = Cache::in_memory().with_fetcher(f);
    let collateral = tdx_collateral(&cache, &quote, UpdateType::Standard, at).unwrap();
    let verifier = tessera_tdx::Verifier::new(tessera_tdx::TrustAnchors::intel().unwrap());
    let fetched = verifier
        .verify(&quote, &collateral, at, &VerifyOptions::default())
        .map(|v| v.verification().clone());
    let bundled_collateral = tessera_tdx::collateral::Collateral::from_bundle_json(
        &std::fs::read(dir.join("collateral.json")).unwrap(),
    )
    .unwrap();
    let bundled = verifier
        .verify(&quote, &bundled_collateral, at, &VerifyOptions::default())
        .map(|v| v.verification().clone());
    let fetched = fetched.unwrap();
    let bundled = bundled.unwrap();
    assert_eq!(fetched.tcb, bundled.tcb);
    assert_eq!(
        format!("{:?}", fetched.tcb.status),
        case["expect"]["tcb_status"].as_str().unwrap()
    );
    assert_eq!(fetched, bundled);
    assert_eq!(pcs.total(), 4);
}

#[test]
fn redirects_are_not_followed_and_timeouts_apply() {
    let target = FakeService::start(|_, _| Reply::ok(b"should not be reached".to_vec()));
    let location = format!("{}/elsewhere", target.base);
    let kds = FakeService::start(move |_, _| Reply::status(302).header("Location", &location));
    let cache = Cache::in_memory().with_fetcher(fetcher(&kds, None, quick()));
    let item = Item::AmdChain {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    assert!(matches!(
        cache.get(&item, NOW),
        Err(CollateralError::Status { status: 302, .. })
    ));
    assert_eq!(target.total(), 0);

    let slow = FakeService::start(|_, _| Reply {
        delay: Duration::from_secs(3),
        ..Reply::status(200)
    });
    let config = FetchConfig {
        timeout: Duration::from_millis(500),
        ..quick()
    };
    let cache = Cache::in_memory().with_fetcher(fetcher(&slow, None, config));
    let started = Instant::now();
    assert!(matches!(
        cache.get(&item, NOW),
        Err(CollateralError::Transport { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// `Cache::refuse` (the verifier refused what a lookup handed out): with a fetcher the entry
/// goes from memory and disk and lookups within the retry wait answer `Refused` without asking
/// the service; after the wait the item is fetched again. Offline only the memory copy goes:
/// the directory's file (the operator's) is read again.
#[test]
fn a_refused_entry_is_forgotten_and_not_fetched_again_at_once() {
    let world = snp_world(Product::Milan);
    let kds = kds_for(&world);
    let item = items_for_snp_report(&world.report, Product::Milan)
        .unwrap()
        .remove(0);
    let dir = temp_dir("refuse-online");
    let cache = Cache::open(&dir)
        .unwrap()
        .with_fetcher(fetcher(&kds, None, quick()))
        .with_retry_after_failure(Duration::from_secs(2));
    let held = cache.get(&item, NOW).unwrap();
    assert_eq!(kds.hits(&world.vcek_target), 1);
    assert_eq!(cache.entries().unwrap().0.len(), 1);
    // Another copy than the one held (a lookup refused what the cache has since replaced):
    // the held copy stays.
    let other = SimPki::new(Product::Milan)
        .unwrap()
        .issue_vek(&VekSpec::vcek(Product::Milan))
        .unwrap();
    let stale = Entry::new(
        item.clone(),
        "test",
        NOW,
        other.certificate().der().to_vec(),
        None,
    )
    .unwrap();
    cache.refuse(&stale, "vek_chain").unwrap();
    assert_eq!(cache.entries().unwrap().0.len(), 1);
    assert_eq!(cache.get(&item, NOW).unwrap().body(), held.body());
    cache.refuse(&held, "vek_chain: forged\n").unwrap();
    assert!(cache.entries().unwrap().0.is_empty(), "the file stayed");
    for _ in 0..3 {
        match cache.get(&item, NOW) {
            Err(CollateralError::Refused { reason, .. }) => {
                assert_eq!(reason, "vek_chain: forged?");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(kds.hits(&world.vcek_target), 1);
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(cache.get(&item, NOW).unwrap().body(), &world.vcek_der[..]);
    assert_eq!(kds.hits(&world.vcek_target), 2);
    let _ = std::fs::remove_dir_all(&dir);

    let dir = temp_dir("refuse-offline");
    Cache::open(&dir)
        .unwrap()
        .put(cache.get(&item, NOW).unwrap().as_ref().clone())
        .unwrap();
    let offline = Cache::open(&dir).unwrap();
    let held = offline.get(&item, NOW).unwrap();
    offline.refuse(&held, "vek_chain").unwrap();
    assert_eq!(offline.entries().unwrap().0.len(), 1);
    assert_eq!(offline.get(&item, NOW).unwrap().body(), &world.vcek_der[..]);
    assert_eq!((offline.stats().hits, offline.stats().misses), (2, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// With a vetter (a service's check that an entry is signed under its roots), a fetched copy it
/// refuses counts as a failed fetch: a forged CRL claiming a later thisUpdate does not replace
/// the genuine one held, which goes on answering (and stays on disk), and the source is not
/// asked again within the retry wait. Without the vetter it would have replaced it, and once
/// refused and removed, an older genuine copy could have come back.
#[test]
fn a_vetted_cache_keeps_the_held_copy_when_a_forged_newer_one_arrives() {
    let world = snp_world(Product::Milan);
    let forger = SimPki::new(Product::Milan).unwrap();
    let forged = forger
        .ark_crl(
            &[],
            UnixTime::from_secs(NOW.as_secs() + 3600),
            UnixTime::from_secs(NOW.as_secs() + 30 * 86_400),
        )
        .unwrap()
        .der()
        .to_vec();
    let (genuine, product) = (world.crl_der.clone(), world.pki.product());
    let kds = FakeService::start(move |t, n| {
        if t == format!("/vcek/v1/{product}/crl") {
            let body = if n == 0 {
                genuine.clone()
            } else {
                forged.clone()
            };
            Reply::ok(body).header("Content-Type", "application/pkix-crl")
        } else {
            Reply::status(404)
        }
    });
    let ark = world.pki.ark().clone();
    let vetter: tessera_collateral::Vetter = Arc::new(move |entry: &Entry, _| {
        if !matches!(entry.item(), Item::AmdCrl { .. }) {
            return Ok(());
        }
        let crls = tessera_pki::load_crls(entry.body()).map_err(|e| e.to_string())?;
        crls.iter().try_for_each(|crl| {
            crl.verify_signed_by(&ark, &mut tessera_pki::Budget::default())
                .map_err(|e| e.to_string())
        })
    });
    let item = Item::AmdCrl {
        product: Product::Milan,
        signer: AmdSigner::Vcek,
    };
    let dir = temp_dir("vetted");
    let cache = Cache::open(&dir)
        .unwrap()
        .with_fetcher(fetcher(&kds, None, quick()))
        .with_vetter(vetter);
    let held = cache.get(&item, NOW).unwrap();
    assert_eq!(held.body(), &world.crl_der[..]);
    // Due: the source answers with the forgery.
    let due = UnixTime::from_secs(held.valid_until().as_secs() - 3600);
    for _ in 0..3 {
        assert_eq!(cache.get(&item, due).unwrap().body(), &world.crl_der[..]);
    }
    assert_eq!(kds.total(), 2, "asked again within the retry wait");
    let stats = cache.stats();
    assert_eq!((stats.fetches, stats.fetch_errors), (1, 1));
    let (on_disk, _) = cache.entries().unwrap();
    assert_eq!(on_disk.len(), 1);
    assert_eq!(on_disk[0].body(), &world.crl_der[..]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fetched entries go to the directory until it holds `MAX_FETCHED_FILES` names; past that
/// they are kept in memory only (counted), so evidence naming made-up TCB values of a real chip
/// cannot fill the directory past what a listing of it accepts. An item that already has a
/// file is still written (a refresh replaces its copy).
#[test]
fn a_full_directory_keeps_further_fetches_in_memory() {
    use tessera_collateral::cache::{ENTRIES_DIR, MAX_FETCHED_FILES};
    let world = snp_world(Product::Milan);
    let kds = kds_for(&world);
    let dir = temp_dir("full");
    let cache = Cache::open(&dir)
        .unwrap()
        .with_fetcher(fetcher(&kds, None, quick()));
    let items = items_for_snp_report(&world.report, Product::Milan).unwrap();
    // The chain, fetched into a directory with room.
    cache.get(&items[1], NOW).unwrap();
    // Filler names up to the cap (not entries a listing would read: only the count matters).
    let entries = dir.join(ENTRIES_DIR);
    for n in 0..MAX_FETCHED_FILES {
        std::fs::write(entries.join(format!(".filler-{n}")), b"").unwrap();
    }
    let vcek = cache.get(&items[0], NOW).unwrap();
    assert_eq!(vcek.body(), &world.vcek_der[..]);
    assert!(!entries.join(format!("{}.json", items[0].key())).exists());
    assert_eq!(cache.stats().not_stored, 1);
    // Held in memory: answered without a fetch.
    cache.get(&items[0], NOW).unwrap();
    assert_eq!(kds.hits(&world.vcek_target), 1);
    // The chain's file exists: a refetch of it is still written.
    cache.evict(&items[1]).unwrap();
    std::fs::write(entries.join(format!("{}.json", items[1].key())), b"{}").unwrap();
    cache.get(&items[1], NOW).unwrap();
    let stored = std::fs::read(entries.join(format!("{}.json", items[1].key()))).unwrap();
    assert_ne!(stored, b"{}");
    assert_eq!(cache.stats().not_stored, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// AMD's real CRLs and chains name their product's ARK as issuer (`CN=ARK-Milan`, ...): each
/// is taken under its own product's key and refused under another's, by its issuer, so that
/// a genuine CRL of one product cannot stand in for (and by newer-only keep out) another's.
#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn vectors_amd_crls_and_chains_are_held_only_under_their_product() {
    let Some(root) = vectors() else { return };
    let snp = root.join("snp");
    let cases = [
        ("certs-only_milan-vcek_spire/crl.der", Product::Milan, true),
        (
            "neg_steward_genoa-revoked-ask/crl.der",
            Product::Genoa,
            true,
        ),
        (
            "milan-v2_go-sev-guest/cert_chain.pem",
            Product::Milan,
            false,
        ),
        (
            "certs-only_turin-vcek_virtee-sev/cert_chain.pem",
            Product::Turin,
            false,
        ),
        (
            "certs-only_milan-vlek_spire/cert_chain.pem",
            Product::Milan,
            false,
        ),
    ];
    for (file, own, is_crl) in cases {
        let body = std::fs::read(snp.join(file)).unwrap();
        for product in [Product::Milan, Product::Genoa, Product::Turin] {
            let item = if is_crl {
                Item::AmdCrl {
                    product,
                    signer: AmdSigner::Vcek,
                }
            } else {
                Item::AmdChain {
                    product,
                    signer: AmdSigner::Vcek,
                }
            };
            let got = Entry::new(item, "vectors", NOW, body.clone(), None);
            if product == own {
                assert!(got.is_ok(), "{file} as {product}: {got:?}");
            } else {
                match got {
                    Err(CollateralError::Response { field, .. }) => {
                        assert_eq!(field, "issuer", "{file} as {product}");
                    }
                    other => panic!("{file} as {product}: {other:?}"),
                }
            }
        }
    }
}
