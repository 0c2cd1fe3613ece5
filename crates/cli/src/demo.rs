//! `tessera demo`: the whole broker story in one command, with nothing to set up: a broker in a
//! temporary directory trusting simulator roots, a secret sealed under a policy, simulated SNP
//! and TDX guests that receive it over real HTTP, three guests that are refused, and the audit
//! log that recorded it all.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use tessera::snp::abi::Product;
use tessera_broker::audit::{AuditAction, AuditEntry, AuditVerdict};
use tessera_broker::resource::ResourcePath;
use tessera_guest::client::{
    AuthMode, Client, ClientError, ClientOptions, RetryPolicy, TeeKey, TeeKeyAlg, attest_request,
    report_data,
};
use tessera_guest::sim::{Measurements, SimSnp, SimTdx};
use tessera_server::ServerConfig;
use zeroize::Zeroizing;

use crate::admin::{AdminClient, SecretInput, entry_line, verify_remote};

/// The resource the demo seals.
const RESOURCE: &str = "demo/key/db-password";
/// The secret the demo seals (shown: it is a demo).
const SECRET: &[u8] = b"correct horse battery staple";
/// The measurement (SNP MEASUREMENT, TDX MRTD) the policy pins: what the simulated guests run.
const MEASUREMENT: [u8; 48] = [0x4D; 48];

/// The policy the secret is sealed under: the one measurement, no debug guests.
const POLICY: &str = r#"# Release only to the workload measured 4d4d...4d, never to a debuggable guest.
version = 1
id = "demo"

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

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {}

/// Counts the outcomes that were and were not as expected.
#[derive(Default)]
struct Score {
    passed: usize,
    failed: Vec<String>,
}

impl Score {
    fn check(&mut self, what: &str, ok: bool, detail: &str) {
        if ok {
            self.passed += 1;
            crate::say!("    ok: {what}: {detail}");
        } else {
            self.failed.push(what.to_owned());
            crate::say!("    UNEXPECTED: {what}: {detail}");
        }
    }

    /// Expects a refusal with `status` and one of the KBS error `kinds`.
    fn refused<T>(
        &mut self,
        what: &str,
        result: Result<T, ClientError>,
        status: u16,
        kinds: &[&str],
    ) {
        match result {
            Ok(_) => self.check(what, false, "the broker did not refuse"),
            Err(e) => self.check(
                what,
                e.status() == Some(status) && e.kind().is_some_and(|k| kinds.contains(&k)),
                &format!("refused: {e}"),
            ),
        }
    }
}

fn step(n: usize, text: &str) {
    crate::say!();
    crate::say!("[{n}] {text}");
}

fn client(url: &str, auth: AuthMode) -> Result<Client> {
    Client::new(
        url,
        ClientOptions {
            auth,
            key_alg: TeeKeyAlg::P256,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::ONCE,
            ..ClientOptions::default()
        },
    )
    .context("guest client")
}

fn write_pem(path: &Path, der: &[u8]) -> Result<()> {
    std::fs::write(path, tessera_pki::to_pem("CERTIFICATE", der))
        .with_context(|| format!("{}", path.display()))
}

/// The broker's configuration in `dir`: simulator roots trusted, the TDX collateral held.
fn broker_config(dir: &Path, snp: &SimSnp, tdx: &SimTdx) -> Result<ServerConfig> {
    let roots = dir.join("roots");
    let endorsements = dir.join("endorsements");
    for d in [&roots, &endorsements] {
        std::fs::create_dir_all(d).with_context(|| format!("{}", d.display()))?;
    }
    let snp_root = roots.join("sim-amd-ark.pem");
    let tdx_root = roots.join("sim-intel-root.pem");
    write_pem(&snp_root, snp.root().der())?;
    write_pem(&tdx_root, tdx.root().der())?;
    let collateral = endorsements.join("sim-tdx-collateral.json");
    std::fs::write(&collateral, tdx.collateral_json()?)
        .with_context(|| format!("{}", collateral.display()))?;
    let mut config = ServerConfig::with_data_dir(dir.join("data"));
    // The demo's store is SQLite in its temporary directory, whatever the environment names:
    // it must never write into a database of a real broker.
    config.store = Some(String::from("sqlite"));
    config.ignore_database_url_env = true;
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.verifier.dangerous_test_roots = vec![snp_root, tdx_root];
    config.verifier.endorsements = vec![endorsements];
    Ok(config)
}

fn received(score: &mut Score, what: &str, result: Result<Zeroizing<Vec<u8>>, ClientError>) {
    match result {
        Ok(secret) => score.check(
            what,
            secret.as_slice() == SECRET,
            &format!(
                "received {} bytes: {:?}",
                secret.len(),
                String::from_utf8_lossy(&secret)
            ),
        ),
        Err(e) => score.check(what, false, &format!("refused: {e}")),
    }
}

/// Whether the log holds an entry with this action and verdict.
fn logged(entries: &[AuditEntry], action: AuditAction, verdict: AuditVerdict) -> usize {
    entries
        .iter()
        .filter(|e| e.event.action == action && e.event.verdict == verdict)
        .count()
}

pub(crate) fn run(_args: &DemoArgs) -> Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("tessera-demo-")
        .tempdir()
        .context("a temporary directory")?;
    let mut score = Score::default();

    step(
        1,
        "Starting a broker in a temporary directory, trusting simulator roots",
    );
    let snp = SimSnp::new(Product::Genoa).context("SNP simulator")?;
    let tdx = SimTdx::new().context("TDX simulator")?;
    let config = broker_config(dir.path(), &snp, &tdx)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (server, info) = runtime
        .block_on(tessera_server::start(&config))
        .context("starting the broker")?;
    let addr = server.local_addr().context("the bound address")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(server.run(async {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}");
    let token_file = info
        .admin_token_file
        .context("the broker made no admin token")?;
    crate::say!("    broker at {url}, data in {}", config.data_dir.display());
    crate::say!(
        "    DANGEROUS test roots trusted: the simulators' fake AMD ARK and Intel root (demo only)"
    );
    let token = Zeroizing::new(
        std::fs::read_to_string(&token_file)
            .with_context(|| format!("{}", token_file.display()))?,
    );
    let admin = AdminClient::with_token(&url, &token)?;

    step(
        2,
        &format!("Sealing a secret at {RESOURCE} under this policy:"),
    );
    for line in POLICY.lines() {
        crate::say!("    | {line}");
    }
    let resource = ResourcePath::parse(RESOURCE).context("resource")?;
    let put = admin.put(
        "put",
        &resource,
        Some(POLICY),
        &SecretInput::Bytes(Zeroizing::new(SECRET.to_vec())),
    )?;
    crate::say!(
        "    sealed version {} (policy {})",
        put.get("version")
            .map_or_else(String::new, ToString::to_string),
        put.get("policy_digest")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
    );

    let good = Measurements {
        measurement: MEASUREMENT,
        ..Measurements::default()
    };

    step(
        3,
        "A simulated SEV-SNP guest (measurement 4d4d...) attests and asks for the secret (cookie)",
    );
    let c = client(&url, AuthMode::Cookie)?;
    received(
        &mut score,
        "SNP guest receives the secret",
        c.get_secret("snp", RESOURCE, None, &mut |rd| snp.evidence(rd, &good)),
    );

    step(
        4,
        "A simulated TDX guest (MRTD 4d4d...) attests and asks for the secret (bearer token)",
    );
    let c = client(&url, AuthMode::Bearer)?;
    received(
        &mut score,
        "TDX guest receives the secret",
        c.get_secret("tdx", RESOURCE, None, &mut |rd| tdx.evidence(rd, &good)),
    );

    step(
        5,
        "An SEV-SNP guest running other code (measurement 1111...) asks",
    );
    let other = Measurements {
        measurement: [0x11; 48],
        ..Measurements::default()
    };
    let c = client(&url, AuthMode::Cookie)?;
    score.refused(
        "another measurement is refused",
        c.get_secret("snp", RESOURCE, None, &mut |rd| snp.evidence(rd, &other)),
        403,
        &["PolicyDeny"],
    );

    step(
        6,
        "A debuggable TDX guest (right MRTD, TD_ATTRIBUTES.DEBUG set) asks",
    );
    let debug = Measurements {
        debug: true,
        ..good.clone()
    };
    score.refused(
        "a debug guest is refused",
        c.get_secret("tdx", RESOURCE, None, &mut |rd| tdx.evidence(rd, &debug)),
        403,
        &["PolicyDeny"],
    );

    step(
        7,
        "An SEV-SNP guest attests, then its attestation (same nonce, same evidence) is replayed",
    );
    let key = TeeKey::generate(TeeKeyAlg::P256).context("TEE key")?;
    let challenge = c.auth("snp").context("auth")?;
    let rd = report_data(challenge.hash, &challenge.nonce, key.jwk()).context("REPORT_DATA")?;
    let evidence = snp.evidence(&rd, &good).context("evidence")?;
    let first = c.attest(&challenge, &key, None, evidence.clone());
    score.check(
        "the first attestation is accepted",
        first.is_ok(),
        &first
            .as_ref()
            .map_or_else(ToString::to_string, |_| "token issued".to_owned()),
    );
    score.refused(
        "the nonce replayed on its session is refused",
        c.attest(&challenge, &key, None, evidence.clone()),
        401,
        // The challenge is single use: the session has none left to answer.
        &["InvalidSession", "AttestationFailed"],
    );
    let fresh = c.auth("snp").context("auth")?;
    let replayed = attest_request(&challenge.nonce, key.jwk(), None, evidence);
    score.refused(
        "the nonce replayed on another session is refused",
        c.attest_with_body(&fresh.session, &replayed),
        401,
        &["AttestationFailed"],
    );

    step(8, "What the audit log recorded");
    let mut entries = Vec::new();
    loop {
        let after = entries.last().map_or(0, |e: &AuditEntry| e.seq);
        let page = admin.audit_page(after, 1000)?.entries;
        if page.is_empty() {
            break;
        }
        entries.extend(page);
    }
    for e in &entries {
        crate::say!("    {}", entry_line(e));
    }
    score.check(
        "the log records two releases",
        logged(&entries, AuditAction::Release, AuditVerdict::Pass) == 2,
        "release/pass entries",
    );
    score.check(
        "the log records the refusals",
        logged(&entries, AuditAction::Deny, AuditVerdict::Fail)
            + logged(&entries, AuditAction::Attest, AuditVerdict::Fail)
            >= 4,
        "deny/fail and attest/fail entries",
    );
    match verify_remote(&admin, None) {
        Ok(head) => score.check(
            "the audit chain verifies",
            entries
                .last()
                .is_some_and(|e| e.seq == head.seq && e.hash == head.hash),
            &format!("{} entries, each hashing its predecessor", head.seq),
        ),
        Err(e) => score.check("the audit chain verifies", false, &format!("{e:#}")),
    }

    let _ = stop.send(());
    let _ = runtime.block_on(serving);
    drop(runtime);

    crate::say!();
    if score.failed.is_empty() {
        crate::say!(
            "demo: all {} expected outcomes happened: released to the measured SNP and TDX \
             guests, refused to another measurement, a debug guest and a replayed nonce",
            score.passed
        );
        Ok(ExitCode::SUCCESS)
    } else {
        crate::say!(
            "demo: {} outcome(s) NOT as expected: {}",
            score.failed.len(),
            score.failed.join("; ")
        );
        Ok(ExitCode::from(1))
    }
}
