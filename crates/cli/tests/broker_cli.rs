//! The broker commands as a user runs them: `tessera demo`, `tessera serve` in its own process,
//! the admin commands and `tessera get-secret` against it over real HTTP on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::zombie_processes
)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tessera::snp::abi::Product;
use tessera_guest::sim::{Measurements, SimSnp};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

#[path = "../../../tests/common/own_postgres.rs"]
mod own_postgres;

/// A policy that pins the simulator's default measurement and forbids debug guests.
const POLICY: &str = r#"
version = 1
id = "cli-test"
[snp]
measurement = ["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"]
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
"#;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `tessera serve` process; killed (SIGTERM, then SIGKILL) on drop.
struct Served {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
    /// The lines printed up to "listening on".
    early: Vec<String>,
}

impl Served {
    fn start(data_dir: &Path, extra: &[&str]) -> Served {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// [`Served::start`] with more environment variables (`TESSERA_DATABASE_URL`).
    fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("TESSERA_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let url = rest.split_whitespace().next().unwrap().to_owned();
                        seen.push(line);
                        return Served {
                            child,
                            url,
                            stderr: rx,
                            early: seen,
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("serve did not start: {seen:#?}");
                }
            }
        }
    }

    /// Runs `tessera ARGS` against this broker with the admin token of `data_dir`.
    fn admin(&self, data_dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(
            Command::new(BIN)
                .args(args)
                .env("TESSERA_URL", &self.url)
                .env("TESSERA_ADMIN_TOKEN_FILE", data_dir.join("admin.token")),
            stdin,
        )
    }

    /// Stops the broker with SIGTERM and waits for it.
    fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "serve exited with {status}");
                return self.stderr.try_iter().collect();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("serve did not stop on SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        // A command that refuses its arguments exits without reading its input: the pipe may
        // be closed before the write (then the exit status tells).
        match child.stdin.take().unwrap().write_all(bytes) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => panic!("writing the command's input: {e}"),
        }
    }
    child.wait_with_output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

#[test]
fn demo_releases_to_measured_guests_and_shows_the_refusals() {
    // A database named in the environment (a broker host's) is not the demo's: it keeps to
    // SQLite in its temporary directory (this URL would fail to connect).
    let o = run(
        Command::new(BIN).arg("demo").env(
            "TESSERA_DATABASE_URL",
            "postgres://tessera@127.0.0.1:1/nowhere",
        ),
        None,
    );
    let out = text(&o.stdout);
    assert_eq!(code(&o), 0, "{out}\n{}", text(&o.stderr));
    for expected in [
        "ok: SNP guest receives the secret",
        "ok: TDX guest receives the secret",
        "ok: another measurement is refused: refused: resource: broker answered 403 PolicyDeny",
        "ok: a debug guest is refused: refused: resource: broker answered 403 PolicyDeny",
        "ok: the nonce replayed on its session is refused",
        "ok: the nonce replayed on another session is refused",
        "reason=\"policy demo failed: snp.measurement\"",
        "reason=\"policy demo failed: tdx.debug\"",
        "ok: the audit chain verifies",
        "demo: all 10 expected outcomes happened",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        out.contains("measurement = [\"4d4d"),
        "the policy is printed"
    );
    assert!(!out.contains("UNEXPECTED"), "{out}");
}

#[test]
fn admin_commands_against_a_served_broker() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let p = policy.to_str().unwrap();
    let served = Served::start(&data, &[]);
    assert!(
        served.early.iter().any(|l| l.contains("admin token in")
            && l.contains(data.join("admin.token").to_str().unwrap())),
        "{:?}",
        served.early
    );
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for f in ["admin.token", "kek"] {
            let mode = std::fs::metadata(data.join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} is private");
        }
    }
    assert!(
        !served.early.iter().any(|l| l.contains(token.trim())),
        "the token is never printed"
    );

    let secret = b"s3cret value that must not be echoed";
    let o = served.admin(
        &data,
        &["secret", "put", "team-a/key/db", "--policy", p],
        Some(secret),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("team-a/key/db version 1 sealed"));
    let o = served.admin(
        &data,
        &[
            "secret",
            "put",
            "team-a/key/gen",
            "--policy",
            p,
            "--generate",
            "32",
        ],
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // Rotation: a new version of an existing resource; an unknown one is refused (exit 1).
    let file = dir.path().join("v2");
    std::fs::write(&file, b"second").unwrap();
    let f = file.to_str().unwrap();
    let o = served.admin(
        &data,
        &[
            "secret",
            "rotate",
            "team-a/key/db",
            "--from",
            f,
            "--policy",
            p,
        ],
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("team-a/key/db version 2 sealed"));
    let o = served.admin(
        &data,
        &[
            "secret",
            "rotate",
            "team-a/key/none",
            "--from",
            f,
            "--policy",
            p,
        ],
        None,
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    // Without --policy the repository's default applies, and there is none.
    let o = served.admin(
        &data,
        &["secret", "rotate", "team-a/key/db", "--from", f],
        None,
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--policy"), "{}", text(&o.stderr));
    // Input checks before anything is sent (exit 2).
    let o = served.admin(
        &data,
        &["secret", "put", "team-a/key/x", "--policy", p],
        Some(b""),
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let o = served.admin(
        &data,
        &["secret", "put", "team-a/x", "--policy", p],
        Some(b"v"),
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let big = vec![b'a'; 1024 * 1024 + 1];
    let o = served.admin(
        &data,
        &["secret", "put", "team-a/key/x", "--policy", p],
        Some(&big),
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("larger than"));

    let o = served.admin(&data, &["secret", "list"], None);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(out.matches("team-a/key/db\t").count(), 2, "{out}");
    assert!(out.contains("team-a/key/gen\t1\t"), "{out}");
    let o = served.admin(
        &data,
        &["secret", "list", "--repo", "team-a", "--json"],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["versions"].as_array().unwrap().len(), 3);
    let o = served.admin(&data, &["secret", "list", "--repo", "other"], None);
    assert!(text(&o.stdout).contains("no secrets"));

    let o = served.admin(
        &data,
        &["secret", "delete", "team-a/key/db", "--version", "1"],
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("deleted versions [1]"));
    let o = served.admin(&data, &["secret", "delete", "team-a/key/nothing"], None);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("404"));
    let o = served.admin(&data, &["secret", "rotate-kek"], None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("2 versions re-wrapped"),
        "{}",
        text(&o.stdout)
    );
    // With a second broker on the data directory a KEK rotation is refused (400, the fixed
    // public words): the CLI says where the reason is.
    let second = Served::start(&data, &[]);
    let o = served.admin(&data, &["secret", "rotate-kek"], None);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("the broker's log says why"),
        "{}",
        text(&o.stderr)
    );
    drop(second);

    // A policy naming a reference file is sent with the file's values inlined.
    std::fs::write(
        dir.path().join("m.txt"),
        format!("{}  firmware 1\n", "4d".repeat(48)),
    )
    .unwrap();
    let referring = dir.path().join("referring.toml");
    std::fs::write(
        &referring,
        POLICY.replace(
            &format!("measurement = [\"{}\"]", "4d".repeat(48)),
            "measurement = { file = \"m.txt\" }",
        ),
    )
    .unwrap();
    assert!(
        std::fs::read_to_string(&referring)
            .unwrap()
            .contains("m.txt")
    );
    let o = served.admin(
        &data,
        &[
            "secret",
            "put",
            "team-b/key/r",
            "--policy",
            referring.to_str().unwrap(),
        ],
        Some(b"v"),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("inlined"), "{}", text(&o.stderr));

    let o = served.admin(&data, &["audit", "show"], None);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        out.contains("#1 ") && out.contains("admin_put pass token:admin"),
        "{out}"
    );
    assert!(
        out.contains("admin_delete") && out.contains("admin_kek_rotate"),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "no secret in the audit log");
    let o = served.admin(
        &data,
        &["audit", "show", "--after", "2", "--limit", "1", "--json"],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert_eq!(v["entries"][0]["seq"], 3);
    assert_eq!(v["next_after"], 3, "a full page: more may follow");
    assert_eq!(v["scoped"], false);
    let o = served.admin(&data, &["audit", "show", "--limit", "2"], None);
    assert_eq!(text(&o.stdout).lines().count(), 2, "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("more: --after 2"),
        "{}",
        text(&o.stderr)
    );
    let o = served.admin(&data, &["audit", "verify"], None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("audit chain verified"), "{out}");
    assert!(!text(&o.stderr).contains("warning"), "{}", text(&o.stderr));
    // The head it prints is an anchor for later runs: it holds, a wrong hash or an entry past
    // the end does not (exit 1), and a malformed one is a usage error (exit 2).
    let head = out
        .split("; head ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no head in {out}"))
        .to_owned();
    let (seq, hash) = head.split_once(':').unwrap();
    let o = served.admin(&data, &["audit", "verify", "--anchor", &head], None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let earlier = format!("1:{hash}");
    let o = served.admin(&data, &["audit", "verify", "--anchor", &earlier], None);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("rewritten"), "{}", text(&o.stderr));
    let past = format!("{}:{hash}", seq.parse::<u64>().unwrap() + 1000);
    let o = served.admin(&data, &["audit", "verify", "--anchor", &past], None);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("removed"), "{}", text(&o.stderr));
    let o = served.admin(&data, &["audit", "verify", "--anchor", "1:xyz"], None);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));

    // A wrong token is refused by the broker (exit 1) and the refusal is audited.
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let o = served.admin(
        &data,
        &["secret", "list", "--token-file", wrong.to_str().unwrap()],
        None,
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("401 AdminUnauthorized"));
    // That file is 0644: the CLI says others can read it; the
    // broker's own token file (0600) drew no such warning above.
    assert!(
        text(&o.stderr).contains("can be read by other users (mode 0644)"),
        "{}",
        text(&o.stderr)
    );
    // Nothing secret on any output of the broker.
    let logs = served.stop();
    assert!(logs.iter().any(|l| l.contains("shutting down")), "{logs:?}");
    for l in &logs {
        assert!(!l.contains("s3cret") && !l.contains(token.trim()), "{l}");
    }

    // The stopped broker's store verifies offline; an altered entry is named.
    let o = run(
        Command::new(BIN).args(["audit", "verify", "--data-dir", data.to_str().unwrap()]),
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let db = rusqlite::Connection::open(data.join("tessera.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET reason = 'forged' WHERE seq = 2;",
    )
    .unwrap();
    drop(db);
    let o = run(
        Command::new(BIN).args(["audit", "verify", "--data-dir", data.to_str().unwrap()]),
        None,
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("entry 2 was altered"),
        "{}",
        text(&o.stderr)
    );
    // A row after it that does not read (a verdict the broker never writes): entry 2 is still
    // the one named, offline and over the admin API (a page is read up to the damaged row).
    let db = rusqlite::Connection::open(data.join("tessera.db")).unwrap();
    db.execute_batch("UPDATE audit SET verdict = 'maybe' WHERE seq = 3;")
        .unwrap();
    drop(db);
    let o = run(
        Command::new(BIN).args(["audit", "verify", "--data-dir", data.to_str().unwrap()]),
        None,
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("entry 2 was altered"),
        "{}",
        text(&o.stderr)
    );
    // The same over the admin API of a broker restarted on the altered store.
    let served = Served::start(&data, &[]);
    let o = served.admin(&data, &["audit", "verify"], None);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("entry 2 was altered"),
        "{}",
        text(&o.stderr)
    );
    drop(served);
    let o = run(
        Command::new(BIN).args([
            "audit",
            "verify",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ]),
        None,
    );
    assert_eq!(code(&o), 2, "no store there: {}", text(&o.stderr));
}

/// `tessera audit verify` over the admin API when an audit row was changed in the broker's
/// database so that it no longer reads as an entry: the damaged entry is named and the command
/// exits 1 (a broken chain is a rejection), as with `--data-dir`.
#[test]
fn remote_verify_names_an_entry_that_does_not_read_and_rejects_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let served = Served::start(&data, &[]);
    for _ in 0..2 {
        let o = served.admin(
            &data,
            &[
                "secret",
                "put",
                "team-a/key/db",
                "--policy",
                policy.to_str().unwrap(),
            ],
            Some(b"value"),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let o = served.admin(&data, &["audit", "verify"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // The last entry is edited so that it does not read (a verdict the broker never writes).
    let db = rusqlite::Connection::open(data.join("tessera.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let last: i64 = db
        .query_row("SELECT max(seq) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert!(last >= 2);
    db.execute_batch(&format!(
        "DROP TRIGGER audit_no_update; UPDATE audit SET verdict = 'maybe' WHERE seq = {last};"
    ))
    .unwrap();
    drop(db);

    let o = served.admin(&data, &["audit", "verify"], None);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("entry {last} was altered")), "{err}");
    assert!(
        err.contains("verified up to there") && err.contains(&format!("entry {}", last - 1)),
        "{err}"
    );
    // `audit show` over the same page names it too.
    let o = served.admin(
        &data,
        &["audit", "show", "--after", &(last - 1).to_string()],
        None,
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("entry {last} was altered")), "{err}");
}

#[test]
fn plain_http_off_loopback_needs_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        Command::new(BIN)
            .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path().join("d")),
        None,
    );
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("refusing plain HTTP on 0.0.0.0:0"),
        "{}",
        text(&o.stderr)
    );
    // Refused before anything is made: no key, token or database is left behind.
    assert!(
        !dir.path().join("d").join("kek").exists()
            && !dir.path().join("d").join("tessera.db").exists(),
        "{:?}",
        std::fs::read_dir(dir.path().join("d")).map(|d| d.count())
    );
    // So are TLS files that cannot be loaded.
    let o = run(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(dir.path().join("missing.crt"))
            .arg("--tls-key")
            .arg(dir.path().join("missing.key"))
            .arg("--data-dir")
            .arg(dir.path().join("t")),
        None,
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(!dir.path().join("t").join("kek").exists());
    // And an address that cannot be bound (taken here).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(
        Command::new(BIN)
            .args(["serve", "--listen", &addr, "--data-dir"])
            .arg(dir.path().join("b")),
        None,
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(!dir.path().join("b").join("kek").exists());
    drop(taken);
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--insecure-http",
            "--data-dir",
        ])
        .arg(dir.path().join("d"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = lines.any(|l| l.is_ok_and(|l| l.contains("listening on http://0.0.0.0:")));
    let _ = child.kill();
    let _ = child.wait();
    assert!(started);
    // Unknown configuration keys are refused.
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "listen_address = \"127.0.0.1:1\"\n").unwrap();
    let o = run(
        Command::new(BIN).args(["serve", "--config", config.to_str().unwrap()]),
        None,
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
}

/// `metrics_listen` in the configuration: `tessera serve` says where /metrics went, serves it
/// there, and no longer on its own address.
#[test]
fn serve_with_a_metrics_address_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "metrics_listen = \"127.0.0.1:0\"\n").unwrap();
    let served = Served::start(
        &dir.path().join("d"),
        &["--config", config.to_str().unwrap()],
    );
    let line = served.stderr.recv_timeout(Duration::from_secs(10)).unwrap();
    let metrics = line
        .strip_prefix("tessera serve: metrics on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = |url: &str| agent.get(url).call().unwrap().status().as_u16();
    assert_eq!(status(&metrics), 200);
    assert_eq!(status(&format!("{}/metrics", served.url)), 404);
    assert_eq!(status(&format!("{}/healthz", served.url)), 200);
}

/// `secret rotate-kek` against a rotation that outlasts the request deadline (another
/// connection holds SQLite's write lock past the 1 s `request_timeout_secs`): the broker
/// answers 202, the CLI says the rotation goes on and exits 0, and the rotation ends in the
/// audit log once the lock is let go.
#[test]
fn rotate_kek_past_the_request_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "request_timeout_secs = 1\n").unwrap();
    let data = dir.path().join("d");
    let served = Served::start(&data, &["--config", config.to_str().unwrap()]);
    let db = rusqlite::Connection::open(data.join("tessera.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let o = served.admin(&data, &["secret", "rotate-kek"], None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("the KEK rotation goes on in the broker"),
        "{}",
        text(&o.stdout)
    );
    db.execute_batch("COMMIT").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = served.admin(&data, &["audit", "show"], None);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        if text(&o.stdout).contains("retired") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", text(&o.stdout));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Serves one evidence request of an `--evidence-cmd` that hands its REPORT_DATA over in
/// `dir/rd` and waits for `dir/ev.json`.
fn evidence_server(
    dir: PathBuf,
    sim: std::sync::Arc<SimSnp>,
    m: Measurements,
) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(hex) = std::fs::read_to_string(dir.join("rd"))
                && hex.trim().len() == 128
            {
                let _ = std::fs::remove_file(dir.join("rd"));
                let rd: [u8; 64] = hex::decode(hex.trim()).unwrap().try_into().unwrap();
                let ev = sim.evidence(&rd, &m).unwrap();
                std::fs::write(dir.join("ev.tmp"), ev.to_string()).unwrap();
                std::fs::rename(dir.join("ev.tmp"), dir.join("ev.json")).unwrap();
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    })
}

#[test]
fn get_secret_runs_the_evidence_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sim = std::sync::Arc::new(SimSnp::new(Product::Genoa).unwrap());
    let root = dir.path().join("ark.pem");
    std::fs::write(&root, tessera_pki::to_pem("CERTIFICATE", sim.root().der())).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let served = Served::start(&data, &["--dangerous-test-root", root.to_str().unwrap()]);
    assert!(
        served.early.iter().any(|l| l.contains("DANGER")),
        "{:?}",
        served.early
    );
    let o = served.admin(
        &data,
        &[
            "secret",
            "put",
            "app/key/k",
            "--policy",
            policy.to_str().unwrap(),
        ],
        Some(b"the app key"),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));

    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let xs = x.to_str().unwrap();
    let cmd = format!(
        "f() {{ echo \"$1\" > {xs}/rd; while [ ! -s {xs}/ev.json ]; do sleep 0.02; done; cat {xs}/ev.json; rm -f {xs}/ev.json; }}; f"
    );
    let get = |extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args([
            "get-secret",
            &served.url,
            "app/key/k",
            "--evidence-cmd",
            &cmd,
        ])
        .args(extra);
        run(&mut c, None)
    };

    // Cookie mode to stdout.
    let helper = evidence_server(x.clone(), sim.clone(), Measurements::default());
    let o = get(&[]);
    assert!(helper.join().unwrap());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(o.stdout, b"the app key");
    // Bearer mode to a 0600 file.
    let out = dir.path().join("secret.out");
    let helper = evidence_server(x.clone(), sim.clone(), Measurements::default());
    let o = get(&["--bearer", "--out", out.to_str().unwrap()]);
    assert!(helper.join().unwrap());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), b"the app key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Another measurement: the broker refuses (exit 1, 403), nothing is written.
    let helper = evidence_server(
        x.clone(),
        sim.clone(),
        Measurements {
            measurement: [1; 48],
            ..Measurements::default()
        },
    );
    let o = get(&[]);
    assert!(helper.join().unwrap());
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("403 PolicyDeny"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    // A failing evidence command is a local error (exit 2), and so is a bad resource path.
    let mut c = Command::new(BIN);
    c.args([
        "get-secret",
        &served.url,
        "app/key/k",
        "--evidence-cmd",
        "exit 7",
    ]);
    let o = run(&mut c, None);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--evidence-cmd exited"),
        "{}",
        text(&o.stderr)
    );
    let mut c = Command::new(BIN);
    c.args(["get-secret", &served.url, "app/k", "--evidence-cmd", "true"]);
    assert_eq!(code(&run(&mut c, None)), 2);
    drop(served);
}

/// A CA (PEM) and a server certificate for 127.0.0.1 signed by it, with its PKCS#8 key (PEM).
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    tls_files_valid(dir, -3600, 86_400)
}

/// [`tls_files`] whose leaf is valid from `from` to `until` seconds from now.
fn tls_files_valid(dir: &Path, from: i64, until: i64) -> (PathBuf, PathBuf, PathBuf) {
    use tessera_pki::PublicKeyKind;
    use tessera_pki::builder::{
        CertificateSpec, IssuerKey, basic_constraints_extension, issue_certificate,
        key_usage_extension, name,
    };
    let now = tessera_pki::UnixTime::now().as_secs();
    let spec = |serial: u8, issuer: Vec<u8>, subject: Vec<u8>, ca: bool| CertificateSpec {
        serial: vec![serial],
        issuer,
        subject,
        not_before: tessera_pki::UnixTime::from_secs(if ca { now - 3600 } else { now + from }),
        not_after: tessera_pki::UnixTime::from_secs(if ca { now + 86_400 } else { now + until }),
        ca: None,
        extensions: if ca {
            vec![
                basic_constraints_extension(true, None),
                key_usage_extension(0x06),
            ]
        } else {
            // subjectAltName: iPAddress 127.0.0.1.
            vec![(
                "2.5.29.17".to_owned(),
                false,
                vec![0x30, 0x06, 0x87, 0x04, 127, 0, 0, 1],
            )]
        },
        pss_explicit_trailer: false,
    };
    let ca_key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
    let ca_name = name(&[("2.5.4.3", "tessera test CA")]).unwrap();
    let ca = issue_certificate(
        &spec(1, ca_name.clone(), ca_name.clone(), true),
        &ca_key.spki_der().unwrap(),
        &ca_key,
    )
    .unwrap();
    let leaf_key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
    let leaf = issue_certificate(
        &spec(
            2,
            ca_name,
            name(&[("2.5.4.3", "127.0.0.1")]).unwrap(),
            false,
        ),
        &leaf_key.spki_der().unwrap(),
        &ca_key,
    )
    .unwrap();
    let IssuerKey::EcdsaP256 { asn1, .. } = &leaf_key else {
        unreachable!()
    };
    let pkcs8 = asn1.to_pkcs8v1().unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, tessera_pki::to_pem("CERTIFICATE", &ca)).unwrap();
    std::fs::write(&paths.1, tessera_pki::to_pem("CERTIFICATE", &leaf)).unwrap();
    std::fs::write(&paths.2, tessera_pki::to_pem("PRIVATE KEY", pkcs8.as_ref())).unwrap();
    // A private key others can read is refused, as every key file is.
    std::fs::set_permissions(
        &paths.2,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    paths
}

#[test]
fn tls_with_a_pinned_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ca, cert, key) = tls_files(dir.path());
    let sim = std::sync::Arc::new(SimSnp::new(Product::Genoa).unwrap());
    let root = dir.path().join("ark.pem");
    std::fs::write(&root, tessera_pki::to_pem("CERTIFICATE", sim.root().der())).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let served = Served::start(
        &data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--dangerous-test-root",
            root.to_str().unwrap(),
        ],
    );
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let ca = ca.to_str().unwrap();
    let put = [
        "secret",
        "put",
        "tls/key/k",
        "--policy",
        policy.to_str().unwrap(),
    ];
    // Without the CA the broker's certificate is not trusted: a connection error (exit 2).
    let o = served.admin(&data, &put, Some(b"over tls"));
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).to_lowercase().contains("certificate")
            && text(&o.stderr).contains("give its CA with --cacert"),
        "{}",
        text(&o.stderr)
    );
    let mut with_ca = put.to_vec();
    with_ca.extend(["--cacert", ca]);
    let o = served.admin(&data, &with_ca, Some(b"over tls"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = served.admin(&data, &["audit", "verify", "--cacert", ca], None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));

    // get-secret without the CA: exit 2, with the same advice (no evidence is asked for: the
    // connection fails first).
    let o = run(
        Command::new(BIN).args([
            "get-secret",
            &served.url,
            "tls/key/k",
            "--evidence-cmd",
            "false",
        ]),
        None,
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("give its CA with --cacert"),
        "{}",
        text(&o.stderr)
    );

    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let xs = x.to_str().unwrap();
    let cmd = format!(
        "f() {{ echo \"$1\" > {xs}/rd; while [ ! -s {xs}/ev.json ]; do sleep 0.02; done; cat {xs}/ev.json; }}; f"
    );
    let helper = evidence_server(x.clone(), sim.clone(), Measurements::default());
    let mut c = Command::new(BIN);
    c.args([
        "get-secret",
        &served.url,
        "tls/key/k",
        "--evidence-cmd",
        &cmd,
    ])
    .args(["--cacert", ca, "--bearer"]);
    let o = run(&mut c, None);
    assert!(helper.join().unwrap());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(o.stdout, b"over tls");
    drop(served);
}

/// A renewed certificate is served without a restart: `[tls] reload_secs` reads the files
/// again. A certificate written before its key (a pair that does not match) is not taken,
/// and the broker goes on serving the one before; once the key follows, the new pair is
/// served and the old CA no longer verifies the broker.
#[test]
fn a_renewed_tls_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (old_ca, cert, key) = tls_files(dir.path());
    let renewed = dir.path().join("renewed");
    std::fs::create_dir(&renewed).unwrap();
    let (new_ca, new_cert, new_key) = tls_files(&renewed);
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nreload_secs = 1\n",
            cert.to_str().unwrap(),
            key.to_str().unwrap()
        ),
    )
    .unwrap();
    let served = Served::start(&data, &["--config", config.to_str().unwrap()]);
    assert!(served.url.starts_with("https://"), "{}", served.url);
    // A certificate valid now draws no warning at start.
    assert!(
        !served.early.iter().any(|l| l.contains("not valid now")),
        "{:#?}",
        served.early
    );
    let verify_with = |ca: &Path| {
        served.admin(
            &data,
            &["audit", "verify", "--cacert", ca.to_str().unwrap()],
            None,
        )
    };
    assert_eq!(code(&verify_with(&old_ca)), 0);
    assert_eq!(code(&verify_with(&new_ca)), 2);
    // The certificate first: it does not match the key, so the old pair stays.
    std::fs::copy(&new_cert, &cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let warned = loop {
        match served.stderr.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains("not reloaded") => break line,
            Ok(_) => {}
            Err(_) => assert!(Instant::now() < deadline, "no reload warning"),
        }
    };
    assert!(
        warned.contains("serving the ones loaded before"),
        "{warned}"
    );
    // A pair that stays wrong is said once, not at every period.
    let quiet_until = Instant::now() + Duration::from_millis(3500);
    while let Some(left) = quiet_until.checked_duration_since(Instant::now()) {
        if let Ok(line) = served.stderr.recv_timeout(left) {
            assert!(!line.contains("not reloaded"), "said again: {line}");
        }
    }
    assert_eq!(code(&verify_with(&old_ca)), 0);
    // Then the key: within a few periods the renewed pair is served.
    std::fs::write(&key, std::fs::read(&new_key).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while code(&verify_with(&new_ca)) != 0 {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate is not served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = verify_with(&old_ca);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).to_lowercase().contains("certificate"),
        "{}",
        text(&o.stderr)
    );
    let log = served.stop().join("\n");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

/// A certificate that is not valid now (expired, or not yet valid) is served all the same,
/// there being no other, but the start says that clients will refuse it, with its dates.
#[test]
fn a_tls_certificate_not_valid_now_is_said_at_start() {
    for (name, from, until) in [("expired", -7200, -3600), ("early", 3600, 7200)] {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = tls_files_valid(dir.path(), from, until);
        let served = Served::start(
            &dir.path().join("data"),
            &[
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
        );
        let said = served.early.join("\n");
        assert!(
            said.contains("the TLS certificate is not valid now: clients will refuse it")
                && said.contains("not_after"),
            "{name}: {said}"
        );
        served.stop();
    }
}

#[test]
fn secrets_sealed_for_git_are_imported_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let p = policy.to_str().unwrap();
    let served = Served::start(&data, &[]);

    // Seal offline against the broker's public key (fetched without credentials).
    let repo_dir = dir.path().join("git");
    std::fs::create_dir_all(repo_dir.join("team-a/key")).unwrap();
    let sealed_file = repo_dir.join("team-a/key/db.sealed");
    let seal_to = |out: &std::path::Path| {
        run(
            Command::new(BIN).args([
                "secret",
                "seal",
                "team-a/key/db",
                "--policy",
                p,
                "--broker-key",
                &served.url,
                "--out",
                out.to_str().unwrap(),
            ]),
            Some(b"from git"),
        )
    };
    let o = seal_to(&sealed_file);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // A broker address that answers something other than 200 is named with its status, not
    // read as a key set.
    let o = run(
        Command::new(BIN).args([
            "secret",
            "seal",
            "team-a/key/db",
            "--policy",
            p,
            "--broker-key",
            &format!("{}/not-here", served.url),
            "--out",
            dir.path().join("never.sealed").to_str().unwrap(),
        ]),
        Some(b"from git"),
    );
    assert_ne!(code(&o), 0);
    assert!(
        text(&o.stderr).contains("answered 404"),
        "{}",
        text(&o.stderr)
    );
    assert!(!dir.path().join("never.sealed").exists());
    let sealed = std::fs::read_to_string(&sealed_file).unwrap();
    assert!(!sealed.contains("from git"));
    // A link at --out is refused, not written through: its target stays as it was.
    let target = dir.path().join("target");
    std::fs::write(&target, b"someone else's file").unwrap();
    let link = dir.path().join("link.sealed");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = seal_to(&link);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not a regular file"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"someone else's file");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());

    // A directory import, twice: the second changes nothing.
    let dir_arg = repo_dir.to_str().unwrap();
    let o = served.admin(&data, &["secret", "import", dir_arg], None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("team-a/key/db version 1 (imported)"),
        "{}",
        text(&o.stdout)
    );
    let o = served.admin(&data, &["secret", "import", dir_arg], None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("version 1 (unchanged)"),
        "{}",
        text(&o.stdout)
    );

    // A directory that holds no sealed file (a README only) imports nothing: refused (exit 2),
    // not a sync that found everything in place.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("team-a")).unwrap();
    std::fs::write(empty.join("team-a/README.md"), b"secrets go here").unwrap();
    let o = served.admin(&data, &["secret", "import", empty.to_str().unwrap()], None);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("holds no *.sealed file: nothing to import"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));

    // The same file moved to another path: refused (exit 1).
    std::fs::create_dir_all(repo_dir.join("team-b/key")).unwrap();
    std::fs::rename(&sealed_file, repo_dir.join("team-b/key/db.sealed")).unwrap();
    let o = served.admin(&data, &["secret", "import", dir_arg], None);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("sealed for team-a/key/db, at team-b/key/db"),
        "{}",
        text(&o.stderr)
    );
    // One file given another resource: the same, naming the flag.
    let moved = repo_dir.join("team-b/key/db.sealed");
    let o = served.admin(
        &data,
        &[
            "secret",
            "import",
            moved.to_str().unwrap(),
            "--resource",
            "team-b/key/db",
        ],
        None,
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("given as --resource team-b/key/db"),
        "{}",
        text(&o.stderr)
    );

    // Names that would skip or fool the broker's path check (no name; a percent-encoded
    // `team-a`, which the query string would decode; `#`, which would end the URL) are each
    // refused by the CLI, and the file at its own path beside them still goes through.
    let tricks = dir.path().join("tricks");
    for rel in [
        ".sealed",
        "%74eam-a/key/db.sealed",
        "team-a/key/db#old.sealed",
    ] {
        let path = tricks.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &sealed).unwrap();
    }
    std::fs::write(tricks.join("team-a/key/db.sealed"), &sealed).unwrap();
    // A link, even to the file beside it, is not followed: refused on its own too.
    std::os::unix::fs::symlink("db.sealed", tricks.join("team-a/key/link.sealed")).unwrap();
    let o = served.admin(&data, &["secret", "import", tricks.to_str().unwrap()], None);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert_eq!(
        err.matches("not at a REPO/TYPE/TAG path").count(),
        3,
        "{err}"
    );
    assert_eq!(err.matches("a symbolic link").count(), 1, "{err}");
    assert!(
        err.contains("4 of 5 sealed files and links refused"),
        "{err}"
    );
    assert!(
        text(&o.stdout).contains("team-a/key/db version 1 (unchanged)"),
        "{}",
        text(&o.stdout)
    );

    // File names and what a header claims are anyone's text: an ESC in either reaches the
    // operator's terminal escaped, never raw.
    let hostile = dir.path().join("hostile");
    std::fs::create_dir_all(hostile.join("team-a/key")).unwrap();
    std::fs::write(hostile.join("team-a/key/\u{1b}[2J.sealed"), &sealed).unwrap();
    let header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"tessera-resource": "\u001b[2Jteam-z/key/db"}"#,
    );
    std::fs::write(
        hostile.join("team-a/key/db.sealed"),
        format!("{header}.a.b.c.d"),
    )
    .unwrap();
    let o = served.admin(
        &data,
        &["secret", "import", hostile.to_str().unwrap()],
        None,
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(
        err.contains("\\u{1b}[2J.sealed: not at a REPO/TYPE/TAG path"),
        "{err}"
    );
    assert!(
        err.contains("sealed for \\u{1b}[2Jteam-z/key/db, at team-a/key/db"),
        "{err}"
    );

    // A repository default policy, then a rotation that names none.
    let o = served.admin(
        &data,
        &["secret", "set-policy", "team-a", "--policy", p],
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = served.admin(&data, &["secret", "rotate", "team-a/key/db"], Some(b"v2"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("team-a/key/db version 2 sealed"),
        "{}",
        text(&o.stdout)
    );

    // The CoCo sealed-secret form.
    let o = served.admin(&data, &["secret", "coco-sealed", "team-a/key/db"], None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("sealed."),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stderr).contains("kbs:///team-a/sealed-secret/signing-jwk-"));
    served.stop();
}

#[test]
fn kill_9_during_a_burst_of_uploads_loses_no_acknowledged_secret() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = Served::start(&data, &[]);
    let token = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let url = served.url.clone();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (url, token, acked) = (url.clone(), token.clone(), acknowledged.clone());
        writers.push(std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            for i in 0..10_000 {
                let value = format!("secret-{w}-{i}");
                let body = serde_json::json!({
                    "policy": POLICY,
                    "value": base64::engine::general_purpose::STANDARD.encode(&value),
                });
                let sent = agent
                    .post(&format!("{url}/kbs/v0/resource/burst/key/w{w}-{i}"))
                    .header("Authorization", &format!("Bearer {token}"))
                    .send_json(body);
                match sent {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push((w, i, value)),
                    _ => return,
                }
            }
        }));
    }
    // Let the burst run, then kill the broker without warning.
    while acknowledged.lock().unwrap().len() < 40 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = served.child.id().to_string();
    let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(killed.success());
    for w in writers {
        w.join().unwrap();
    }
    drop(served);
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() >= 40);

    // Restarted on the same data directory: every acknowledged secret is listed and opens for
    // a measured guest; the audit chain verifies.
    let served = Served::start(&data, &[]);
    let o = served.admin(
        &data,
        &["secret", "list", "--repo", "burst", "--json"],
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: std::collections::BTreeSet<String> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["resource"].as_str().unwrap().to_owned())
        .collect();
    for (w, i, _) in &acked {
        assert!(
            names.contains(&format!("burst/key/w{w}-{i}")),
            "w{w}-{i} lost"
        );
    }
    let sim = SimSnp::new(Product::Genoa).unwrap();
    drop(served);
    let root = dir.path().join("root.der");
    std::fs::write(&root, sim.root().der()).unwrap();
    let served = Served::start(&data, &["--dangerous-test-root", root.to_str().unwrap()]);
    let client = tessera_guest::client::Client::new(
        &served.url,
        tessera_guest::client::ClientOptions::default(),
    )
    .unwrap();
    for (w, i, value) in acked.iter().step_by(7) {
        let got = client
            .get_secret("snp", &format!("burst/key/w{w}-{i}"), None, &mut |rd| {
                sim.evidence(rd, &Measurements::default())
            })
            .unwrap();
        assert_eq!(&got[..], value.as_bytes());
    }
    let o = served.admin(&data, &["audit", "verify"], None);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    served.stop();
}

/// `tessera sim --pki DIR`: the fake PKI is made once and kept, so a broker started with
/// `--dangerous-test-root DIR/root.pem` before a report is simulated accepts it, and `verify`
/// takes the same root file for reports and quotes. `--out` never overwrites without `--force`.
#[test]
fn sim_pki_dir_outlives_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let ps = pki.to_str().unwrap();
    let root = pki.join("root.pem");
    let sim = |args: &[&str]| run(Command::new(BIN).arg("sim").args(args), None);
    let a = dir.path().join("a");
    let o = sim(&["snp", "--pki", ps, "--out", a.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("the fake PKI stays in"),
        "{}",
        text(&o.stdout)
    );
    let roots_then = std::fs::read(&root).unwrap();
    let vcek_then = std::fs::read(a.join("vcek.der")).unwrap();

    // A second run into the same --out refuses, changing nothing; --force overwrites.
    let report_then = std::fs::read(a.join("report.bin")).unwrap();
    let o = sim(&[
        "snp",
        "--pki",
        ps,
        "--out",
        a.to_str().unwrap(),
        "--vmpl",
        "1",
    ]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("refusing to overwrite"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read(a.join("report.bin")).unwrap(), report_then);
    let o = sim(&["snp", "--pki", ps, "--out", a.to_str().unwrap(), "--force"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_ne!(std::fs::read(a.join("report.bin")).unwrap(), report_then);
    assert_eq!(
        std::fs::read(&root).unwrap(),
        roots_then,
        "the PKI is reused"
    );
    // So is the VCEK: a broker or cache holding it verifies later reports sent without it.
    assert_eq!(std::fs::read(a.join("vcek.der")).unwrap(), vcek_then);

    // `verify` with DIR/root.pem: a Milan report and a TDX quote made from the same directory.
    let m = dir.path().join("m");
    let o = sim(&[
        "snp",
        "--pki",
        ps,
        "--out",
        m.to_str().unwrap(),
        "--product",
        "milan",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let ms = |f: &str| m.join(f).to_str().unwrap().to_owned();
    let o = run(
        Command::new(BIN).args([
            "verify",
            &ms("report.bin"),
            "--certs",
            &ms("vcek.der"),
            "--certs",
            &ms("chain.pem"),
            "--dangerous-test-root",
            root.to_str().unwrap(),
        ]),
        None,
    );
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    let t = dir.path().join("t");
    let o = sim(&["tdx", "--pki", ps, "--out", t.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = sim(&["tdx", "--pki", ps, "--out", t.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let o = run(
        Command::new(BIN).args([
            "verify",
            t.join("quote.bin").to_str().unwrap(),
            "--collateral",
            pki.join("endorsements/sim-tdx-collateral.json")
                .to_str()
                .unwrap(),
            "--dangerous-test-root",
            root.to_str().unwrap(),
        ]),
        None,
    );
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    // A fresh PKI's quote is refused under this root.
    let u = dir.path().join("u");
    let o = sim(&["tdx", "--out", u.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = run(
        Command::new(BIN).args([
            "verify",
            u.join("quote.bin").to_str().unwrap(),
            "--collateral",
            u.join("collateral.json").to_str().unwrap(),
            "--dangerous-test-root",
            root.to_str().unwrap(),
        ]),
        None,
    );
    assert_eq!(code(&o), 1, "{}{}", text(&o.stdout), text(&o.stderr));

    // A broker started now, on the directory's root and endorsements, releases to a guest whose
    // evidence is simulated afterwards from the directory (a separate opening of it).
    let data = dir.path().join("data");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let served = Served::start(
        &data,
        &[
            "--dangerous-test-root",
            root.to_str().unwrap(),
            "--endorsements",
            pki.join("endorsements").to_str().unwrap(),
        ],
    );
    let o = served.admin(
        &data,
        &[
            "secret",
            "put",
            "app/key/k",
            "--policy",
            policy.to_str().unwrap(),
        ],
        Some(b"kept pki"),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let later = tessera_guest::sim::PkiDir::open_or_create(&pki).unwrap();
    let guest = std::sync::Arc::new(later.snp(Product::Turin).unwrap());
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let xs = x.to_str().unwrap();
    let cmd = format!(
        "f() {{ echo \"$1\" > {xs}/rd; while [ ! -s {xs}/ev.json ]; do sleep 0.02; done; cat {xs}/ev.json; rm -f {xs}/ev.json; }}; f"
    );
    let helper = evidence_server(x.clone(), guest, Measurements::default());
    let o = run(
        Command::new(BIN).args([
            "get-secret",
            &served.url,
            "app/key/k",
            "--evidence-cmd",
            &cmd,
        ]),
        None,
    );
    assert!(helper.join().unwrap());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(o.stdout, b"kept pki");
    drop(served);
}

/// Two `tessera serve` replicas over one PostgreSQL cluster (owned by the test) and one data
/// directory (the shared KEK, token signing key and admin token); replica A is killed with
/// SIGKILL in the middle of a burst of secret puts while replica B is in use. B answers every
/// request during and after the kill, every put A acknowledged is listed by B and opens for a
/// measured guest at B, and `tessera audit verify` through B passes over the PostgreSQL audit log.
#[test]
fn kill_9_of_one_postgres_replica_mid_burst_loses_no_acknowledged_secret() {
    use base64::Engine as _;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let Some(pg) = own_postgres::OwnPostgres::start() else {
        return;
    };
    let db = pg.url();
    let env = [("TESSERA_DATABASE_URL", db.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sim = SimSnp::new(Product::Genoa).unwrap();
    let root = dir.path().join("root.der");
    std::fs::write(&root, sim.root().der()).unwrap();
    let flags = ["--dangerous-test-root", root.to_str().unwrap()];
    // One after the other: the first creates the shared key files, the second reads them.
    let a = Served::start_with_env(&data, &flags, &env);
    let b = Served::start_with_env(&data, &flags, &env);
    let token = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let put_body = |value: &str| {
        serde_json::json!({
            "policy": POLICY,
            "value": base64::engine::general_purpose::STANDARD.encode(value),
        })
    };

    // The burst at A: four writers, each stops at its first failure (the kill).
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (url, token, acked) = (a.url.clone(), token.clone(), acknowledged.clone());
        writers.push(std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            for i in 0..10_000 {
                let value = format!("secret-{w}-{i}");
                let sent = agent
                    .post(&format!("{url}/kbs/v0/resource/burst/key/w{w}-{i}"))
                    .header("Authorization", &format!("Bearer {token}"))
                    .send_json(put_body(&value));
                match sent {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push((w, i, value)),
                    _ => return,
                }
            }
        }));
    }
    // B in use all along: puts and readiness, each must succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let served_by_b = Arc::new(AtomicUsize::new(0));
    let b_user = {
        let (url, token, stop, served) = (
            b.url.clone(),
            token.clone(),
            stop.clone(),
            served_by_b.clone(),
        );
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(20)))
                .build()
                .into();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let value = format!("b-{i}");
                let r = agent
                    .post(&format!("{url}/kbs/v0/resource/burst/key/b-{i}"))
                    .header("Authorization", &format!("Bearer {token}"))
                    .send_json(put_body(&value))
                    .unwrap();
                assert_eq!(r.status(), 200, "B refused put {i}");
                let r = agent.get(&format!("{url}/readyz")).call().unwrap();
                assert_eq!(r.status(), 200, "B not ready");
                served.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        })
    };

    while acknowledged.lock().unwrap().len() < 40 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = a.child.id().to_string();
    let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(killed.success());
    for w in writers {
        w.join().unwrap();
    }
    drop(a);
    // B keeps serving after the kill.
    let at_kill = served_by_b.load(Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(20);
    while served_by_b.load(Ordering::SeqCst) < at_kill + 10 {
        assert!(
            Instant::now() < until && !b_user.is_finished(),
            "B stopped serving after A was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    b_user.join().unwrap();
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() >= 40);

    // Every put A acknowledged is listed by B, and a sample opens for a measured guest at B.
    let o = b.admin(
        &data,
        &["secret", "list", "--repo", "burst", "--json"],
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: std::collections::BTreeSet<String> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["resource"].as_str().unwrap().to_owned())
        .collect();
    for (w, i, _) in &acked {
        assert!(
            names.contains(&format!("burst/key/w{w}-{i}")),
            "w{w}-{i} lost"
        );
    }
    let client =
        tessera_guest::client::Client::new(&b.url, tessera_guest::client::ClientOptions::default())
            .unwrap();
    for (w, i, value) in acked.iter().step_by(7) {
        let got = client
            .get_secret("snp", &format!("burst/key/w{w}-{i}"), None, &mut |rd| {
                sim.evidence(rd, &Measurements::default())
            })
            .unwrap();
        assert_eq!(&got[..], value.as_bytes());
    }
    // The audit chain in PostgreSQL, appended to by both replicas and cut by the kill, verifies.
    let o = b.admin(&data, &["audit", "verify"], None);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    b.stop();
}

/// Both TEEs' sections: the simulators' default measurement, no debug guests.
const GUEST_POLICY: &str = r#"
version = 1
id = "guest-test"
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

/// `tessera guest evidence` forms: the KBS JSON a guest sends (default, one line), the raw
/// signed bytes with the certificates beside them as PEM (which `tessera verify` accepts), and
/// a raw quote; `--json` and `--format` together are a usage error.
#[test]
fn guest_evidence_prints_kbs_raw_and_json_forms() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let ps = pki.to_str().unwrap().to_owned();
    let guest = |extra: &[&str]| {
        let mut args = vec![
            "guest",
            "evidence",
            "--simulate",
            ps.as_str(),
            "--nonce",
            "n-1",
        ];
        args.extend_from_slice(extra);
        run(Command::new(BIN).args(&args), None)
    };
    // Default: the KBS evidence JSON on one line.
    let o = guest(&[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let kbs: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ev = tessera::Evidence::from_kbs("snp", &kbs).unwrap();
    let nonce = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, b"n-1");
    assert_eq!(ev.report_data().as_slice(), nonce.as_ref());

    // Raw: the 1184-byte report, and the certificates that came with it as PEM.
    let (raw, certs) = (dir.path().join("report.bin"), dir.path().join("certs.pem"));
    let o = guest(&[
        "--format",
        "raw",
        "--out",
        raw.to_str().unwrap(),
        "--certs-out",
        certs.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let bytes = std::fs::read(&raw).unwrap();
    assert_eq!(bytes.len(), 1184);
    let o = run(
        Command::new(BIN).args([
            "verify",
            raw.to_str().unwrap(),
            "--certs",
            certs.to_str().unwrap(),
            "--dangerous-test-root",
            pki.join("root.pem").to_str().unwrap(),
            "--json",
        ]),
        None,
    );
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        j["claims"]["report_data"],
        hex::encode(nonce.as_ref()),
        "{j}"
    );
    // Without the certificates the report alone does not verify.
    let o = run(
        Command::new(BIN).args([
            "verify",
            raw.to_str().unwrap(),
            "--dangerous-test-root",
            pki.join("root.pem").to_str().unwrap(),
        ]),
        None,
    );
    assert_eq!(code(&o), 1);

    // A raw TDX quote on standard output (not a terminal here) is a quote `show` reads.
    let o = guest(&["--tee", "tdx", "--format", "raw"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let quote = dir.path().join("quote.bin");
    std::fs::write(&quote, &o.stdout).unwrap();
    let o = run(
        Command::new(BIN).args(["show", quote.to_str().unwrap(), "--json"]),
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["tee"], "tdx");
    assert_eq!(
        j["claims"]["td"]["report_data"],
        hex::encode(nonce.as_ref())
    );
    // A link at --out or --certs-out is refused, not written through: its target stays as it
    // was. A regular file there is replaced.
    let target = dir.path().join("target");
    std::fs::write(&target, b"someone else's file").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for flag in ["--out", "--certs-out"] {
        let o = guest(&[flag, link.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{flag}");
        assert!(
            text(&o.stderr).contains("not a regular file"),
            "{flag}: {}",
            text(&o.stderr)
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"someone else's file");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }
    let o = guest(&["--format", "raw", "--out", target.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&target).unwrap().len(), 1184);
    // A quote brings no certificates to write: refused naming the option; the file there (the
    // SEV-SNP certificates written above) is left as it was and no evidence is printed.
    let before = std::fs::read(&certs).unwrap();
    let o = guest(&["--tee", "tdx", "--certs-out", certs.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    let err = text(&o.stderr);
    assert!(
        err.contains("--certs-out: no certificates") && err.contains("PCK chain"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    assert_eq!(std::fs::read(&certs).unwrap(), before);
    // --json is --format json; both at once is a usage error.
    let o = guest(&["--json"]);
    assert_eq!(code(&o), 0);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["tee"], "snp");
    assert!(j["evidence"].is_object(), "{j}");
    assert_eq!(code(&guest(&["--json", "--format", "raw"])), 2);
}

/// Simulator options that do not fit together are refused, naming the option (exit 2), before
/// any evidence is printed or a broker asked: `--product` (a SEV-SNP product) with `--tee tdx`,
/// and a `--measurement` that is not 48 bytes (never padded or cut) or not hex. The same
/// options where they fit are taken.
#[test]
fn guest_simulator_options_that_do_not_fit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ps = dir.path().join("pki").to_str().unwrap().to_owned();
    // Nothing listens there: a refusal that came only after asking the broker would be a
    // connection error instead.
    let url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let (short, long) = ("4d".repeat(47), "4d".repeat(49));
    let not_hex = "zz".repeat(48);
    let refused: [(&[&str], &str); 5] = [
        (
            &["--tee", "tdx", "--product", "milan"],
            "--product names a SEV-SNP product: not with --tee tdx",
        ),
        (&["--measurement", &short], "--measurement: 48 bytes"),
        (&["--measurement", &long], "--measurement: 48 bytes"),
        (
            &["--tee", "tdx", "--measurement", &short],
            "--measurement: 48 bytes",
        ),
        (&["--measurement", &not_hex], "--measurement: not hex"),
    ];
    let evidence = ["guest", "evidence", "--simulate", &ps];
    let get_secret = ["guest", "get-secret", &url, "a/b/c", "--simulate", &ps];
    for (extra, message) in refused {
        for command in [&evidence[..], &get_secret[..]] {
            let o = run(Command::new(BIN).args(command).args(extra), None);
            let err = text(&o.stderr);
            assert_eq!(code(&o), 2, "{command:?} {extra:?}: {err}");
            assert!(err.contains(message), "{command:?} {extra:?}: {err}");
            assert!(o.stdout.is_empty(), "{command:?} {extra:?}");
        }
    }
    let good = "ee".repeat(48);
    for extra in [
        &["--tee", "snp", "--product", "milan"][..],
        &["--tee", "tdx", "--measurement", &good][..],
        &["--measurement", &good][..],
    ] {
        let o = run(Command::new(BIN).args(evidence).args(extra), None);
        assert_eq!(code(&o), 0, "{extra:?}: {}", text(&o.stderr));
    }
}

/// `tessera guest` with the simulator back end against a broker started before the evidence
/// exists: `tee`, `evidence` and `get-secret` for SEV-SNP and TDX; a guest with another
/// measurement or a debug guest is refused (exit 1) and gets nothing.
#[test]
fn guest_commands_with_the_simulator_against_a_served_broker() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let ps = pki.to_str().unwrap().to_owned();
    // The PKI directory first (as an operator would, with `tessera sim ... --pki`).
    let o = run(
        Command::new(BIN).args(["guest", "tee", "--simulate", &ps]),
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("snp (simulator"),
        "{}",
        text(&o.stdout)
    );
    let data = dir.path().join("data");
    let served = Served::start(
        &data,
        &[
            "--dangerous-test-root",
            pki.join("root.pem").to_str().unwrap(),
            "--endorsements",
            pki.join("endorsements").to_str().unwrap(),
        ],
    );
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, GUEST_POLICY).unwrap();
    let o = served.admin(
        &data,
        &[
            "secret",
            "put",
            "guest/key/app",
            "--policy",
            policy.to_str().unwrap(),
        ],
        Some(b"guest-secret-value"),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));

    // evidence: the KBS JSON form, bound to the REPORT_DATA asked for.
    let o = run(
        Command::new(BIN).args([
            "guest",
            "evidence",
            "--simulate",
            &ps,
            "--report-data",
            "abcd",
            "--json",
        ]),
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["tee"], "snp");
    assert!(j["report_data"].as_str().unwrap().starts_with("abcd0000"));
    let ev = tessera::Evidence::from_kbs("snp", &j["evidence"]).unwrap();
    assert_eq!(&ev.report_data()[..2], &[0xab, 0xcd]);

    // `guest get-secret` of the sealed secret with the simulated guest, and `extra` arguments.
    let get_secret = |tee: &str, extra: &[&str], stdin: Option<&[u8]>| {
        run(
            Command::new(BIN)
                .args([
                    "guest",
                    "get-secret",
                    &served.url,
                    "guest/key/app",
                    "--simulate",
                    &ps,
                    "--tee",
                    tee,
                ])
                .args(extra),
            stdin,
        )
    };
    for tee in ["snp", "tdx"] {
        let out = dir.path().join(format!("secret-{tee}"));
        let o = get_secret(tee, &["--out", out.to_str().unwrap()], None);
        assert_eq!(code(&o), 0, "{tee}: {}", text(&o.stderr));
        assert_eq!(std::fs::read(&out).unwrap(), b"guest-secret-value", "{tee}");
        // Init data from standard input, read once: it sets the simulator's HOST_DATA /
        // MR_CONFIG_ID and goes with the request, which the broker checks against it.
        let o = get_secret(
            tee,
            &["--init-data", "-"],
            Some(b"algorithm = \"sha384\"\nversion = \"0.1.0\"\n"),
        );
        assert_eq!(code(&o), 0, "{tee} --init-data -: {}", text(&o.stderr));
        assert_eq!(o.stdout, b"guest-secret-value", "{tee}");
        // The same through `get-secret --evidence-cmd`, the simulator made to carry the
        // init-data's digest by `guest evidence --init-data`; without it the broker refuses.
        let init = dir.path().join(format!("init-{tee}.toml"));
        std::fs::write(&init, "algorithm = \"sha384\"\nversion = \"0.1.0\"\n").unwrap();
        let inits = init.to_str().unwrap();
        for (with, want) in [(true, 0), (false, 1)] {
            let cmd = format!(
                "{BIN} guest evidence --simulate {ps} --tee {tee} {} --report-data",
                if with {
                    format!("--init-data {inits}")
                } else {
                    String::new()
                }
            );
            let o = run(
                Command::new(BIN).args([
                    "get-secret",
                    &served.url,
                    "guest/key/app",
                    "--tee",
                    tee,
                    "--init-data",
                    inits,
                    "--evidence-cmd",
                    &cmd,
                ]),
                None,
            );
            assert_eq!(code(&o), want, "{tee} {with}: {}", text(&o.stderr));
            if with {
                assert_eq!(o.stdout, b"guest-secret-value", "{tee}");
            }
        }
        // Another measurement, or a debug guest: refused by the policy, nothing written.
        for extra in [&["--measurement", &"ee".repeat(48)][..], &["--debug"][..]] {
            let o = get_secret(tee, extra, None);
            assert_eq!(code(&o), 1, "{tee} {extra:?}: {}", text(&o.stderr));
            assert!(o.stdout.is_empty());
        }
    }
    // Standard output a terminal (`script` gives the command a pseudo-terminal): the secret,
    // and raw evidence, are refused there (exit 2); the secret before the broker is asked.
    if Path::new("/usr/bin/script").is_file() {
        let on_terminal = |args: &str| {
            let o = run(
                Command::new("/usr/bin/script").args([
                    "-qec",
                    &format!("{BIN} guest {args} --simulate {ps}"),
                    "/dev/null",
                ]),
                None,
            );
            (code(&o), text(&o.stdout))
        };
        let (rc, shown) = on_terminal(&format!("get-secret {} guest/key/app", served.url));
        assert_eq!(rc, 2, "{shown}");
        assert!(shown.contains("would go to a terminal"), "{shown}");
        assert!(!shown.contains("guest-secret-value"), "{shown}");
        let (rc, shown) = on_terminal("evidence --format raw");
        assert_eq!(rc, 2, "{shown}");
        assert!(shown.contains("--format raw is binary"), "{shown}");
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "script (util-linux) is missing in CI"
        );
        eprintln!("NOTICE: script not found; the terminal refusals were not tested");
    }
    served.stop();
}

/// The cryptsetup program, or `None` with a notice outside CI (a failure in CI, where
/// `.ci/run` installs it).
fn cryptsetup() -> Option<PathBuf> {
    for p in [
        "/usr/sbin/cryptsetup",
        "/sbin/cryptsetup",
        "/usr/bin/cryptsetup",
    ] {
        if Path::new(p).is_file() {
            return Some(PathBuf::from(p));
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "cryptsetup is missing in CI (.ci/run installs cryptsetup-bin)"
    );
    eprintln!("NOTICE: cryptsetup not found; LUKS test skipped");
    None
}

/// A real LUKS2 image unlocked by attestation: the broker generates the disk key (the operator
/// never sees it), the measured guest fetches it once and enrols it in a key slot, then
/// `guest unlock-luks --check` opens the image with it through cryptsetup's standard input; a
/// guest with another measurement is refused before cryptsetup runs, and a key that is not in
/// the header is refused by cryptsetup (exit 1).
#[test]
fn unlock_luks_with_a_key_released_by_attestation() {
    let Some(cs) = cryptsetup() else { return };
    let cs_s = cs.to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let ps = pki.to_str().unwrap().to_owned();
    tessera_guest::sim::PkiDir::open_or_create(&pki).unwrap();
    let data = dir.path().join("data");
    let served = Served::start(
        &data,
        &[
            "--dangerous-test-root",
            pki.join("root.pem").to_str().unwrap(),
        ],
    );
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, GUEST_POLICY).unwrap();
    let put = |resource: &str, extra: &[&str], stdin: Option<&[u8]>| {
        let mut args = vec![
            "secret",
            "put",
            resource,
            "--policy",
            policy.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = served.admin(&data, &args, stdin);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    };
    put("host/disk/data", &["--generate", "64"], None);
    put("host/disk/other", &[], Some(b"not-the-disk-key"));

    // The image: LUKS2 with a setup passphrase (cheap PBKDF for the test).
    let img = dir.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(32 * 1024 * 1024)
        .unwrap();
    let setup_key = dir.path().join("setup.key");
    std::fs::write(&setup_key, b"setup-passphrase-for-the-test").unwrap();
    let cheap = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];
    let o = run(
        Command::new(&cs)
            .args(["luksFormat", "--type", "luks2", "--batch-mode"])
            .args(cheap)
            .arg(&img)
            .arg(&setup_key),
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));

    // First boot: the measured guest fetches the generated key and enrols it.
    let key = dir.path().join("disk.key");
    let o = run(
        Command::new(BIN).args([
            "guest",
            "get-secret",
            &served.url,
            "host/disk/data",
            "--simulate",
            &ps,
            "--out",
            key.to_str().unwrap(),
        ]),
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&key).unwrap().len(), 64);
    let o = run(
        Command::new(&cs)
            .arg("luksAddKey")
            .args(cheap)
            .arg("--key-file")
            .arg(&setup_key)
            .arg(&img)
            .arg(&key),
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    std::fs::remove_file(&key).unwrap();

    // `unlock-luks --check` of `device` with `program` as cryptsetup.
    let unlock_with = |device: &Path, program: &str, resource: &str, extra: &[&str]| {
        run(
            Command::new(BIN)
                .args(["guest", "unlock-luks", device.to_str().unwrap()])
                .args(["--url", &served.url, "--resource", resource, "--check"])
                .args(["--cryptsetup", program, "--simulate", &ps])
                .args(extra),
            None,
        )
    };
    let unlock = |resource: &str, extra: &[&str]| unlock_with(&img, &cs_s, resource, extra);
    // Every later boot: unlocked by attestation alone.
    let o = unlock("host/disk/data", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("opens with the key"),
        "{}",
        text(&o.stderr)
    );
    // Another measurement: the broker refuses; cryptsetup never runs.
    let o = unlock("host/disk/data", &["--measurement", &"ee".repeat(48)]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        !text(&o.stderr).contains("cryptsetup"),
        "{}",
        text(&o.stderr)
    );
    // A released secret that is not this disk's key: cryptsetup refuses it.
    let o = unlock("host/disk/other", &[]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cryptsetup refused"),
        "{}",
        text(&o.stderr)
    );
    // cryptsetup failing for another reason (not a LUKS device) is an error (exit 2), not a
    // refusal of the key.
    let plain = dir.path().join("plain.img");
    std::fs::File::create(&plain)
        .unwrap()
        .set_len(4 * 1024 * 1024)
        .unwrap();
    let o = unlock_with(&plain, &cs_s, "host/disk/data", &[]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("cryptsetup failed") && !err.contains("refused the key"),
        "{err}"
    );
    // No device, or no cryptsetup: said before the broker is asked (no release is audited).
    let entries = || {
        let o = served.admin(&data, &["audit", "show", "--json", "--limit", "1000"], None);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        let page: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        page["entries"].as_array().unwrap().len()
    };
    let before = entries();
    for (device, program) in [
        (dir.path().join("missing.img"), cs_s.clone()),
        (
            img.clone(),
            dir.path().join("no-cryptsetup").display().to_string(),
        ),
        // A label udev does not know (resolved through /dev/disk/by-label, as cryptsetup
        // itself looks up only UUID=), and a tag nobody resolves.
        (PathBuf::from("LABEL=tessera-no-such-label"), cs_s.clone()),
        (PathBuf::from("SERIAL=1234"), cs_s.clone()),
    ] {
        let o = unlock_with(&device, &program, "host/disk/data", &[]);
        assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    }
    assert_eq!(entries(), before, "nothing was asked of the broker");
    served.stop();
}

/// `unlock-luks` with programs in cryptsetup's place that do not take the key: one that closes
/// its standard input at once and exits 0 is not taken for a success (exit 2, "handing the key
/// to cryptsetup"); one that closes it and fails is reported by its own status; one that reads
/// the key and exits 0 is a success (so the fakes do run). The key is the largest secret (1
/// MiB), more than a pipe holds, so the write meets the closed pipe whatever the timing. A key
/// the pipe holds whole is usually written before the program closes it, and `unlock-luks`
/// does not see that it was never read: it then reports success on the exit status alone.
/// Needs no cryptsetup.
#[test]
fn unlock_luks_with_a_cryptsetup_that_does_not_take_the_key() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let ps = pki.to_str().unwrap().to_owned();
    tessera_guest::sim::PkiDir::open_or_create(&pki).unwrap();
    let data = dir.path().join("data");
    let served = Served::start(
        &data,
        &[
            "--dangerous-test-root",
            pki.join("root.pem").to_str().unwrap(),
        ],
    );
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, GUEST_POLICY).unwrap();
    let big = dir.path().join("big.key");
    std::fs::write(&big, vec![0x5a; 1024 * 1024]).unwrap();
    let o = served.admin(
        &data,
        &[
            "secret",
            "put",
            "host/disk/big",
            "--policy",
            policy.to_str().unwrap(),
            "--from",
            big.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let device = dir.path().join("disk.img");
    std::fs::write(&device, vec![0; 4096]).unwrap();

    for (name, body, want, message) in [
        (
            "reads",
            "cat > /dev/null\nexit 0\n",
            0,
            "opens with the key",
        ),
        (
            "closes",
            "exec 0<&-\nexit 0\n",
            2,
            "handing the key to cryptsetup",
        ),
        (
            "closes-fails",
            "exec 0<&-\nexit 4\n",
            2,
            "cryptsetup failed",
        ),
    ] {
        let ran = dir.path().join(format!("{name}.ran"));
        let program = dir.path().join(name);
        std::fs::write(
            &program,
            format!("#!/bin/sh\n: > '{}'\n{body}", ran.display()),
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let o = run(
            Command::new(BIN)
                .args(["guest", "unlock-luks", device.to_str().unwrap()])
                .args([
                    "--url",
                    &served.url,
                    "--resource",
                    "host/disk/big",
                    "--check",
                ])
                .args(["--cryptsetup", program.to_str().unwrap(), "--simulate", &ps]),
            None,
        );
        let err = text(&o.stderr);
        assert_eq!(code(&o), want, "{name}: {err}");
        assert!(err.contains(message), "{name}: {err}");
        assert!(ran.exists(), "{name} ran");
        if want != 0 {
            assert!(!err.contains("opens with the key"), "{name}: {err}");
        }
        if name == "closes-fails" {
            assert!(!err.contains("handing the key"), "{name}: {err}");
        }
    }
    served.stop();
}

/// The Clevis pin in examples/guest/clevis (what `clevis luks bind ... tessera CONFIG` runs):
/// a key encrypted with the broker's generated secret as content key decrypts again only through
/// a guest the policy accepts. `tessera` is a shim on PATH that adds `--simulate PKI_DIR`, so the
/// pin scripts run unchanged. Needs `jose` (`.ci/run` installs it); skipped with a notice
/// elsewhere, a failure in CI.
#[test]
fn clevis_pin_round_trips_through_attestation() {
    if !Path::new("/usr/bin/jose").is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "jose is missing in CI (.ci/run installs it)"
        );
        eprintln!("NOTICE: jose not found; Clevis pin test skipped");
        return;
    }
    let pins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/guest/clevis");
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    tessera_guest::sim::PkiDir::open_or_create(&pki).unwrap();
    let data = dir.path().join("data");
    let served = Served::start(
        &data,
        &[
            "--dangerous-test-root",
            pki.join("root.pem").to_str().unwrap(),
        ],
    );
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, GUEST_POLICY).unwrap();
    // A known content key (in use the broker generates it: `--generate 32`), so that the test
    // can look for it on the command lines the pin runs.
    let key: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let o = served.admin(
        &data,
        &[
            "secret",
            "put",
            "hosts/disk/clevis",
            "--policy",
            policy.to_str().unwrap(),
        ],
        Some(&key),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let argv_log = dir.path().join("jose-argv.log");
    let shim = |name: &str, extra: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        let bin = dir.path().join(name);
        std::fs::create_dir_all(&bin).unwrap();
        let path = bin.join("tessera");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nexec {BIN} \"$@\" --simulate {} {extra}\n",
                pki.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Every `jose` command line the pins run is recorded: what is on one is readable by
        // any local user in /proc/PID/cmdline.
        let jose = bin.join("jose");
        std::fs::write(
            &jose,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec /usr/bin/jose \"$@\"\n",
                argv_log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&jose, std::fs::Permissions::from_mode(0o755)).unwrap();
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    };
    let good = shim("good", "");
    let other = shim("other", &format!("--measurement {}", "ee".repeat(48)));
    let config = format!(
        r#"{{"url":"{}","resource":"hosts/disk/clevis"}}"#,
        served.url
    );
    let o = run(
        Command::new(pins.join("clevis-encrypt-tessera"))
            .arg(&config)
            .env("PATH", &good),
        Some(b"the LUKS key clevis protects"),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let jwe = o.stdout;
    assert_eq!(jwe.iter().filter(|b| **b == b'.').count(), 4, "compact JWE");
    let o = run(
        Command::new(pins.join("clevis-decrypt-tessera")).env("PATH", &good),
        Some(&jwe),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(o.stdout, b"the LUKS key clevis protects");
    // A guest with another measurement gets no content key, so nothing decrypts.
    let o = run(
        Command::new(pins.join("clevis-decrypt-tessera")).env("PATH", &other),
        Some(&jwe),
    );
    assert_ne!(code(&o), 0);
    assert!(o.stdout.is_empty());
    // The content key was on no command line, in either encoding.
    let argv = std::fs::read_to_string(&argv_log).unwrap();
    assert!(
        argv.contains("jwe enc") && argv.contains("jwe dec"),
        "{argv}"
    );
    use base64::Engine as _;
    for encoded in [
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key),
        base64::engine::general_purpose::STANDARD.encode(&key),
        key.iter().map(|b| format!("{b:02x}")).collect(),
    ] {
        assert!(
            !argv.contains(&encoded),
            "the content key is on a jose command line"
        );
    }
    served.stop();
}

/// `audit verify` with a token scoped to repositories refuses (exit 1): its view leaves out
/// other repositories' entries, so it cannot be taken for the whole chain (an empty view
/// would look like an empty log). A global token verifies.
#[test]
fn audit_verify_with_a_scoped_token_refuses() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let root = dir.path().join("root.token");
    let team = dir.path().join("team.token");
    for (f, t) in [
        (&root, "root-token-0123456789abcdef-0123456789abcdef"),
        (&team, "team-token-0123456789abcdef-0123456789abcdef"),
    ] {
        std::fs::write(f, t).unwrap();
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[[admin.tokens]]\nname = \"root\"\nfile = {:?}\n\
             [[admin.tokens]]\nname = \"team-a\"\nfile = {:?}\nrepos = [\"team-a\"]\n",
            root.to_str().unwrap(),
            team.to_str().unwrap()
        ),
    )
    .unwrap();
    let served = Served::start(&data, &["--config", config.to_str().unwrap()]);
    let verify = |token: &Path| {
        run(
            Command::new(BIN)
                .args(["audit", "verify"])
                .env("TESSERA_URL", &served.url)
                .env("TESSERA_ADMIN_TOKEN_FILE", token),
            None,
        )
    };
    let o = verify(&team);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("scoped"), "{}", text(&o.stderr));
    // `audit show` with it says that its view leaves entries out, and its JSON carries where
    // the next page starts even when the page shows nothing (entry 1 is another
    // repository's).
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let o = run(
        Command::new(BIN)
            .args(["secret", "put", "team-b/key/x", "--policy"])
            .arg(&policy)
            .env("TESSERA_URL", &served.url)
            .env("TESSERA_ADMIN_TOKEN_FILE", &root),
        Some(b"b's"),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let show = |extra: &[&str]| {
        run(
            Command::new(BIN)
                .args(["audit", "show", "--limit", "1"])
                .args(extra)
                .env("TESSERA_URL", &served.url)
                .env("TESSERA_ADMIN_TOKEN_FILE", &team),
            None,
        )
    };
    let o = show(&[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("other repositories' entries are left out"),
        "{}",
        text(&o.stderr)
    );
    let o = show(&["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scoped"], true, "{v}");
    assert_eq!(v["entries"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["next_after"], 1, "{v}");
    let o = verify(&root);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("audit chain verified"));
}

/// A stop is not held up by a collateral refresh stuck on a KDS that accepts and never
/// answers: the refresh runs one item per blocking task, the loop is aborted when serving
/// stops, and `tessera serve` gives what still runs a moment, not its fetch timeout (here
/// 120 s), so SIGTERM ends the broker within the drain a deployment allows.
#[test]
fn a_stop_is_not_held_by_a_stuck_collateral_refresh() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A cache holding an ARK CRL that is due for refresh at once (current for ten more
    // seconds, fetched a minute ago: past half its life).
    let cache_dir = dir.path().join("collateral");
    let pki = tessera::snp::sim::SimPki::new(Product::Milan).unwrap();
    let now = tessera_pki::UnixTime::now().as_secs();
    let crl = pki
        .ark_crl(
            &[],
            tessera_pki::UnixTime::from_secs(now - 60),
            tessera_pki::UnixTime::from_secs(now + 10),
        )
        .unwrap();
    let item = tessera_collateral::Item::AmdCrl {
        product: Product::Milan,
        signer: tessera_collateral::AmdSigner::Vcek,
    };
    let entry = tessera_collateral::Entry::new(
        item,
        "test",
        tessera_pki::UnixTime::from_secs(now - 60),
        crl.der().to_vec(),
        None,
    )
    .unwrap();
    tessera_collateral::Cache::open(&cache_dir)
        .unwrap()
        .put(entry)
        .unwrap();
    // The KDS: accepts, holds every connection, answers nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let kds = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            held.push(conn);
        }
    });
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[collateral]\ndir = {:?}\nfetch = true\nkds_url = {kds:?}\ntimeout_secs = 120\n\
             refresh_interval_secs = 1\n",
            cache_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let served = Served::start(&data, &["--config", config.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        accepted.load(Ordering::SeqCst) > 0,
        "the refresh never asked the KDS"
    );
    let stopping = Instant::now();
    served.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "stopped after {:?}",
        stopping.elapsed()
    );
}
