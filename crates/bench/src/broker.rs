//! The `broker` scenario: complete KBS flows (auth, attest with fresh simulator SNP evidence,
//! resource) against `tessera-server` running as its own process, from N concurrent clients over
//! loopback; the server's CPU time per flow is read from /proc so the load generator's own cost
//! (simulated evidence, the client's crypto) does not count, and is compared with the crypto
//! floor of one flow measured in the same run.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::digest::{SHA256, SHA384, digest};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED, ECDSA_P384_SHA384_FIXED_SIGNING,
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey as SigKey,
};
use tessera_guest::client::{AuthMode, Client, ClientError, ClientOptions, RetryPolicy};
use tessera_guest::sim::{Measurements, SimSnp};

/// The policy the benchmark's secret is sealed with (pins the simulator's measurement).
const POLICY: &str = r#"
version = 1
id = "bench"
[snp]
measurement = ["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"]
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
"#;

/// One line of the scenario's output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BrokerRow {
    /// Always `broker_flows`.
    pub scenario: &'static str,
    /// `sqlite` (the default store) or `postgres`.
    pub store: &'static str,
    /// Broker processes; with two, every flow attests at one and fetches at the other.
    pub replicas: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Completed flows per second.
    pub flows_per_s: f64,
    /// Median flow latency.
    pub p50_ms: f64,
    /// 99th percentile flow latency.
    pub p99_ms: f64,
    /// Server CPU time (user + system, all replicas) per flow.
    pub server_cpu_us_per_flow: f64,
    /// The part of `server_cpu_us_per_flow` spent in the kernel (system time): system calls,
    /// loopback TCP for both ends of each connection, thread wake-ups, the store's file I/O.
    pub server_kernel_us_per_flow: f64,
    /// PostgreSQL's CPU time (all its processes) per flow; none for SQLite.
    pub db_cpu_us_per_flow: Option<f64>,
    /// The crypto floor of one flow.
    pub floor_us_per_flow: f64,
    /// Server RSS before load (the largest replica).
    pub rss_idle_kb: u64,
    /// Server RSS at the end of the load (the largest replica).
    pub rss_load_kb: u64,
}

/// How the server process runs: `tessera serve`'s defaults unless set (for experiments).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerShape {
    /// The configuration's `connection_threads` (unset: one per CPU with SQLite, none with
    /// PostgreSQL).
    pub connection_threads: Option<usize>,
    /// Worker threads of the runtime that runs the server (unset: two, one per CPU here).
    pub workers: Option<usize>,
}

impl ServerShape {
    /// As arguments of `__serve DIR`.
    fn args(self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(n) = self.connection_threads {
            args.extend(["--connection-threads".to_owned(), n.to_string()]);
        }
        if let Some(n) = self.workers {
            args.extend(["--workers".to_owned(), n.to_string()]);
        }
        args
    }
}

/// The KEK file of the brokers of every run with a PostgreSQL store, in the bench's `target`.
pub const POSTGRES_KEK_FILE: &str = "tessera-bench-postgres.kek";

/// Runs the server (the hidden `__serve DIR` subcommand): trusts `DIR/root.der`, prints its
/// address and admin token file on stdout, and serves until killed.
///
/// # Errors
/// The server could not start.
pub fn serve(dir: &Path, shape: ServerShape) -> Result<(), String> {
    let mut config = tessera_server::ServerConfig::with_data_dir(dir.join("data"));
    config.connection_threads = shape.connection_threads;
    // A PostgreSQL store outlives the run's directory, and a broker refuses a store made under
    // another KEK (its key check): every run's brokers keep one KEK, in the bench's own build
    // folder (not a shared temporary one another user could put a link in), so that the next
    // run opens the store the last one made.
    if std::env::var_os("TESSERA_DATABASE_URL").is_some_and(|u| !u.is_empty()) {
        config.kek_file = Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join(POSTGRES_KEK_FILE),
        );
    }
    config.listen = "127.0.0.1:0"
        .parse()
        .map_err(|e| format!("listen address: {e}"))?;
    config
        .verifier
        .dangerous_test_roots
        .push(dir.join("root.der"));
    // As `tessera serve` runs it on this machine (a worker per CPU; with SQLite, connections
    // are served on the server's own threads, one per CPU).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(shape.workers.unwrap_or(2).max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (server, info) = tessera_server::start(&config)
            .await
            .map_err(|e| e.to_string())?;
        let addr = server.local_addr().map_err(|e| e.to_string())?;
        let token = info.admin_token_file.ok_or("no admin token file")?;
        println!("ADDR {addr} {}", token.display());
        server
            .run(std::future::pending())
            .await
            .map_err(|e| e.to_string())
    })
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// CPU time of a process, in microseconds (clock ticks of 10 ms on Linux).
#[derive(Debug, Clone, Copy, Default)]
struct CpuTime {
    /// utime + stime.
    total: u64,
    /// stime.
    kernel: u64,
}

impl std::iter::Sum for CpuTime {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |a, b| Self {
            total: a.total + b.total,
            kernel: a.kernel + b.kernel,
        })
    }
}

/// utime and stime of `pid`.
fn cpu_time(pid: u32) -> Option<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(CpuTime {
        total: (utime + stime) * 10_000,
        kernel: stime * 10_000,
    })
}

/// utime + stime of every process named `postgres` (the server and its backends), in
/// microseconds; backends that exit during the run take their time with them, so the pools of
/// the brokers are opened before the first reading.
fn postgres_cpu_us() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|pid| cpu_time(pid).map(|t| t.total))
        .sum()
}

fn mean_us(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
}

/// How many times the floor is timed (its least is reported).
const FLOOR_TIMINGS: usize = 5;

/// The crypto of one flow, measured: one P-384 ECDSA verify (the report), one ES256 sign (the
/// token), one ECDH P-256 + AES-KW + AES-256-GCM (the JWE), and the hashes (SHA-384 of the
/// report and of the binding, SHA-256 of the session).
///
/// # Errors
/// The crypto library failed.
pub fn floor_us_per_flow() -> Result<f64, String> {
    let rng = SystemRandom::new();
    let err = |_| String::from("crypto");
    let p384 = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P384_SHA384_FIXED_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .map_err(err)?
            .as_ref(),
    )
    .map_err(|_| String::from("crypto"))?;
    let report = [0x5au8; 0x2a0];
    let sig = p384.sign(&rng, &report).map_err(err)?;
    let public = p384.public_key().as_ref().to_vec();
    let verify = mean_us(400, || {
        let _ = SigKey::new(&ECDSA_P384_SHA384_FIXED, &public).verify(&report, sig.as_ref());
    });
    let p256 = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(err)?
            .as_ref(),
    )
    .map_err(|_| String::from("crypto"))?;
    let token = [0x41u8; 1500];
    let sign = mean_us(1000, || {
        let _ = p256.sign(&rng, &token);
    });
    let peer = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(err)?;
    let peer_public = peer.compute_public_key().map_err(err)?.as_ref().to_vec();
    let jwe = mean_us(1000, || {
        let Ok(eph) = EphemeralPrivateKey::generate(&ECDH_P256, &rng) else {
            return;
        };
        let kek = agreement::agree_ephemeral(
            eph,
            UnparsedPublicKey::new(&ECDH_P256, &peer_public),
            (),
            |z| Ok(digest(&SHA256, z)),
        );
        let Ok(kek) = kek else { return };
        let Ok(wrapper) = AesKek::new(&AES_256, kek.as_ref()) else {
            return;
        };
        let cek = [7u8; 32];
        let mut wrapped = [0u8; 40];
        let _ = wrapper.wrap(&cek, &mut wrapped);
        if let Ok(key) = UnboundKey::new(&AES_256_GCM, &cek) {
            let mut data = [0u8; 32];
            let _ = LessSafeKey::new(key).seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0u8; 12]),
                Aad::from(&b"header"[..]),
                &mut data,
            );
        }
    });
    let hashes = mean_us(4000, || {
        let _ = digest(&SHA384, &report);
        let _ = digest(&SHA384, &token[..200]);
        let _ = digest(&SHA256, &token[..43]);
    });
    Ok(verify + sign + jwe + hashes)
}

struct ServerProcess {
    child: Child,
    url: String,
    token: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(
    dir: &Path,
    store: Option<&str>,
    shape: ServerShape,
) -> Result<ServerProcess, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    if let Some(url) = store {
        cmd.env("TESSERA_DATABASE_URL", url);
    }
    let mut child = cmd
        .arg("__serve")
        .arg(dir)
        .args(shape.args())
        .env("TESSERA_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the server: {e}"))?;
    let stdout = child.stdout.take().ok_or("no server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let mut parts = line.split_whitespace();
    let (Some("ADDR"), Some(addr), Some(token_file)) = (parts.next(), parts.next(), parts.next())
    else {
        let _ = child.kill();
        return Err(format!("the server said {line:?}"));
    };
    let token = std::fs::read_to_string(token_file)
        .map_err(|e| e.to_string())?
        .trim()
        .to_owned();
    Ok(ServerProcess {
        child,
        url: format!("http://{addr}"),
        token,
    })
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // rank: a whole number in 0..len
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * (sorted.len() - 1) as f64).round();
    sorted
        .get(usize::try_from(rank as u64).unwrap_or(0))
        .copied()
        .unwrap_or(0.0)
}

/// One flow: the handshake at `attest_at`, the resource (bearer token) at `fetch_at`; with one
/// replica, the client's own full flow (cookie session).
fn one_flow(
    attest_at: &Client,
    fetch_at: Option<&Client>,
    sim: &SimSnp,
) -> Result<(), ClientError> {
    let mut evidence = |rd: &[u8; 64]| sim.evidence(rd, &Measurements::default());
    match fetch_at {
        None => attest_at
            .get_secret("snp", "bench/key/one", None, &mut evidence)
            .map(drop),
        Some(other) => {
            let att = attest_at.handshake("snp", None, &mut evidence)?;
            other
                .resource(att.credential(AuthMode::Bearer), &att.key, "bench/key/one")
                .map(drop)
        }
    }
}

/// Where the brokers keep their state: SQLite in the data directory, or a PostgreSQL URL
/// shared by `replicas` broker processes (which also share the data directory's KEK, token
/// key and admin token, as replicas do).
#[derive(Debug, Clone)]
pub struct Setup {
    /// A `postgres://` URL, or none for SQLite.
    pub store: Option<String>,
    /// Broker processes (1 or 2; 2 needs PostgreSQL).
    pub replicas: usize,
    /// How each broker process runs.
    pub shape: ServerShape,
}

/// Runs the scenario for each client count, `seconds` each.
///
/// # Errors
/// The server did not start, a flow failed, or /proc could not be read.
pub fn run(clients: &[usize], seconds: u64, setup: &Setup) -> Result<Vec<BrokerRow>, String> {
    if setup.replicas == 0 || setup.replicas > 2 || (setup.replicas > 1 && setup.store.is_none()) {
        return Err("replicas: 1, or 2 with --store postgres://...".into());
    }
    let dir = std::env::temp_dir().join(format!("tessera-bench-broker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let sim = Arc::new(SimSnp::new(tessera::snp::abi::Product::Genoa).map_err(|e| e.to_string())?);
    std::fs::write(dir.join("root.der"), sim.root().der()).map_err(|e| e.to_string())?;
    let mut servers = Vec::new();
    for _ in 0..setup.replicas {
        servers.push(spawn_server(&dir, setup.store.as_deref(), setup.shape)?);
    }
    let server = servers.first().ok_or("no server")?;
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let servers_cpu = || -> Result<CpuTime, String> {
        pids.iter()
            .map(|&p| cpu_time(p).ok_or_else(|| String::from("no /proc stat")))
            .sum()
    };
    let servers_rss = || -> Result<u64, String> {
        pids.iter()
            .map(|&p| proc_field(p, "status", "VmRSS:").ok_or_else(|| String::from("no VmRSS")))
            .try_fold(0, |m, r| r.map(|v| m.max(v)))
    };
    let put = ureq::Agent::new_with_defaults()
        .post(&format!("{}/kbs/v0/resource/bench/key/one", server.url))
        .header("Authorization", &format!("Bearer {}", server.token))
        .send_json(serde_json::json!({"policy": POLICY, "value": "YmVuY2gtc2VjcmV0"}))
        .map_err(|e| format!("putting the secret: {e}"))?;
    if put.status() != 200 {
        return Err(format!("putting the secret: {}", put.status()));
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle_kb = servers_rss()?;
    // The least of several timings: noise on this VM (another guest, a frequency change) only
    // ever adds time, and one unlucky timing made a whole run's ratios look a third better.
    let mut floor = f64::INFINITY;
    for _ in 0..FLOOR_TIMINGS {
        floor = floor.min(floor_us_per_flow()?);
    }
    let mut rows = Vec::new();
    for &n in clients {
        let stop = Arc::new(AtomicBool::new(false));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let cpu_before = servers_cpu()?;
        let db_before = postgres_cpu_us();
        let started = Instant::now();
        let mut threads = Vec::new();
        for i in 0..n {
            let (stop, latencies, failures, sim) = (
                stop.clone(),
                latencies.clone(),
                failures.clone(),
                sim.clone(),
            );
            // With two replicas, half the clients attest at the first and fetch at the second,
            // the other half the other way round.
            let attest_url = urls.get(i % urls.len()).cloned().unwrap_or_default();
            let fetch_url = urls
                .get((i + 1) % urls.len())
                .filter(|_| urls.len() > 1)
                .cloned();
            threads.push(std::thread::spawn(move || {
                let options = || ClientOptions {
                    retry: RetryPolicy::ONCE,
                    ..ClientOptions::default()
                };
                let Ok(client) = Client::new(&attest_url, options()) else {
                    return;
                };
                let other = match fetch_url.as_deref().map(|u| Client::new(u, options())) {
                    None => None,
                    Some(Ok(c)) => Some(c),
                    Some(Err(_)) => return,
                };
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let got = one_flow(&client, other.as_ref(), &sim);
                    match got {
                        Ok(_) => {
                            if let Ok(mut l) = latencies.lock() {
                                l.push(t.elapsed().as_secs_f64() * 1e3);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failures.lock() {
                                f.push(e.to_string());
                            }
                            return;
                        }
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu_after = servers_cpu()?;
        let db_after = postgres_cpu_us();
        let rss_load_kb = servers_rss()?;
        if let Some(first) = failures.lock().map_err(|_| "poisoned")?.first() {
            return Err(format!("a flow failed with {n} clients: {first}"));
        }
        let mut lat = latencies.lock().map_err(|_| "poisoned")?.clone();
        lat.sort_by(f64::total_cmp);
        let flows = lat.len().max(1) as f64;
        rows.push(BrokerRow {
            scenario: "broker_flows",
            store: if setup.store.is_some() {
                "postgres"
            } else {
                "sqlite"
            },
            replicas: setup.replicas,
            clients: n,
            flows_per_s: lat.len() as f64 / elapsed,
            p50_ms: percentile(&lat, 0.50),
            p99_ms: percentile(&lat, 0.99),
            server_cpu_us_per_flow: cpu_after.total.saturating_sub(cpu_before.total) as f64 / flows,
            server_kernel_us_per_flow: cpu_after.kernel.saturating_sub(cpu_before.kernel) as f64
                / flows,
            db_cpu_us_per_flow: setup
                .store
                .is_some()
                .then(|| db_after.saturating_sub(db_before) as f64 / flows),
            floor_us_per_flow: floor,
            rss_idle_kb,
            rss_load_kb,
        });
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}
