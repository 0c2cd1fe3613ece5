//! A throwaway PostgreSQL cluster for the fault tests: `initdb` in a temporary directory with the
//! newest `/usr/lib/postgresql/<version>/bin`, trust auth, a free loopback port below the
//! ephemeral range, started and stopped (`-m immediate`) at will. Included with `#[path]` by the tests that own their
//! database (crates/server/tests/pg_faults.rs, crates/cli/tests/broker_cli.rs).
#![allow(dead_code, unreachable_pub)]

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A PostgreSQL cluster in a temporary directory, stopped on drop.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Held while the cluster lives: no other cluster of these tests takes `port`.
    _port_lock: Option<std::fs::File>,
    /// PostgreSQL refuses to run as root: then every command runs as the `postgres` user.
    as_postgres: bool,
    /// Started by [`OwnPostgres::start_tls`]: TLS only, on 127.0.0.1 and 127.0.0.2.
    tls: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` and `pg_ctl`.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A free loopback port below the kernel's ephemeral range, and the lock that keeps it ours.
///
/// The fault tests stop the cluster and start it again on the same port. A port from the
/// ephemeral range (what binding port 0 gives) could meanwhile be handed to any other test's
/// server or outgoing connection; a port below that range is taken only by an explicit bind,
/// and another cluster of these tests (in this process or another) skips a port whose lock
/// file in the temporary directory is locked. Falls back to port 0's pick (and no lock) when
/// nothing below the range is free.
fn free_port() -> (u16, Option<std::fs::File>) {
    use std::hash::{BuildHasher as _, Hasher as _};
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const FIRST: u16 = 10_000;
    if low > FIRST + 100 {
        let span = u64::from(low - FIRST);
        let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
        seed.write_u32(std::process::id());
        let start = seed.finish() % span;
        for i in 0..256 {
            let offset = u16::try_from((start + i) % span).unwrap();
            let port = FIRST + offset;
            let Ok(lock) = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(std::env::temp_dir().join(format!("tessera-own-postgres-{port}.lock")))
            else {
                continue;
            };
            if lock.try_lock().is_ok() && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return (port, Some(lock));
            }
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (port, None)
}

impl OwnPostgres {
    /// `None` (with a notice) when the binaries are missing outside CI.
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// [`OwnPostgres::start`] with TLS: the server's certificate chain and key (PEM), `ssl = on`,
    /// and connections over TCP accepted only with TLS (`hostssl`), on 127.0.0.1 and 127.0.0.2.
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> Option<Self> {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&[u8], &[u8])>) -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL's server binaries are not in /usr/lib/postgresql/<version>/bin in CI \
                 (.ci/run installs Debian's postgresql package)"
            );
            eprintln!(
                "NOTICE: no /usr/lib/postgresql/<version>/bin/initdb; PostgreSQL fault test skipped"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // The effective uid of this process.
        let as_postgres = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        if as_postgres {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {out:?}");
        }
        let (port, port_lock) = free_port();
        let mut pg = Self {
            dir,
            bin,
            port,
            _port_lock: port_lock,
            as_postgres,
            tls: tls.is_some(),
        };
        let data = pg.data();
        pg.run_ok(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        if let Some((cert, key)) = tls {
            use std::io::Write as _;
            use std::os::unix::fs::PermissionsExt as _;
            let key_file = data.join("server.key");
            std::fs::write(data.join("server.crt"), cert).unwrap();
            std::fs::write(&key_file, key).unwrap();
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.0/8 trust\n",
            )
            .unwrap();
            let mut conf = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))
                .unwrap();
            conf.write_all(
                b"ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            )
            .unwrap();
            if pg.as_postgres {
                let out = Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(data.join("server.crt"))
                    .arg(&key_file)
                    .arg(data.join("pg_hba.conf"))
                    .output()
                    .unwrap();
                assert!(out.status.success(), "chown: {out:?}");
            }
        }
        // The port was free when picked, but another process may have bound it while initdb
        // ran: a start that fails is tried again on another free port.
        for _ in 0..4 {
            if pg.start_cluster().status.success() {
                return Some(pg);
            }
            (pg.port, pg._port_lock) = free_port();
        }
        pg.up();
        Some(pg)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        // Run from a directory the postgres user can read.
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    fn run_ok(&self, program: &str, args: &[&str]) {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn up(&self) {
        let out = self.start_cluster();
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
        );
    }

    /// `pg_ctl start`, waiting until the cluster accepts connections or has failed.
    fn start_cluster(&self) -> Output {
        let data = self.data();
        let log = self.dir.path().join("postgres.log");
        let listen = if self.tls {
            "127.0.0.1,127.0.0.2"
        } else {
            "127.0.0.1"
        };
        let opts = format!(
            "-p {} -c listen_addresses={listen} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
    }

    /// Stops the cluster at once (`-m immediate`: the backends are killed, connections drop).
    pub fn down(&self) {
        let data = self.data();
        self.run_ok(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
        );
    }
}
