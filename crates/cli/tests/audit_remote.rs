//! `tessera audit verify` over the admin API of a `tessera serve` on loopback, when an audit row
//! was changed in the broker's database so that it no longer reads as an entry: the damaged
//! entry is named and the command exits 1 (a broken chain is a rejection), as with
//! `--data-dir`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::zombie_processes
)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

const POLICY: &str = r#"
version = 1
id = "audit-remote-test"
[snp]
measurement = ["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"]
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
"#;

/// A `tessera serve` process, killed on drop.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .env("TESSERA_LOG", "warn")
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
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let url = rest.split_whitespace().next().unwrap().to_owned();
                        // Keeps reading the broker's log, so that it never blocks on a full pipe.
                        std::thread::spawn(move || for _ in rx {});
                        return Self { child, url };
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
        let mut child = Command::new(BIN)
            .args(args)
            .env("TESSERA_URL", &self.url)
            .env("TESSERA_ADMIN_TOKEN_FILE", data_dir.join("admin.token"))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(bytes) = stdin {
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn remote_verify_names_an_entry_that_does_not_read_and_rejects_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let served = Served::start(&data);
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
