//! `tessera get-secret`: fetch one secret from a broker for a script, with evidence from a
//! command (the KBS handshake of tessera-guest's client).

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tessera_guest::client::{AuthMode, Client, ClientError, ClientOptions, RetryPolicy};
use zeroize::Zeroizing;

use crate::admin::Refused;

/// Largest evidence JSON read from the command.
const MAX_EVIDENCE: u64 = 8 * 1024 * 1024;
/// How long the evidence command may run (a TEE report takes well under a second; a vTPM
/// quote or a remote collector a few).
const EVIDENCE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest CA or init-data file read.
const MAX_SMALL_FILE: u64 = 1024 * 1024;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum TeeArg {
    Snp,
    Tdx,
}

#[derive(Args, Debug)]
pub(crate) struct GetSecretArgs {
    /// The broker's base URL (https://host[:port]; plain http only to loopback).
    url: String,
    /// The resource, REPO/TYPE/TAG (with ?version=N to pin a version).
    resource: String,
    /// A shell command (run with `sh -c`) that prints the evidence JSON; the REPORT_DATA to
    /// bind, 128 hex digits, is appended as its last argument.
    #[arg(long, value_name = "CMD")]
    evidence_cmd: String,
    /// The TEE the evidence comes from.
    #[arg(long, value_enum, default_value = "snp")]
    tee: TeeArg,
    /// Trust this CA (PEM) for the broker's TLS certificate instead of the Mozilla roots.
    #[arg(long, value_name = "PEM")]
    cacert: Option<PathBuf>,
    /// Present the attestation token as `Authorization: Bearer` (default: the session cookie).
    #[arg(long)]
    bearer: bool,
    /// The raw init-data (TOML) whose digest the evidence carries in HOST_DATA / MR_CONFIG_ID.
    #[arg(long, value_name = "FILE")]
    init_data: Option<PathBuf>,
    /// Write the secret to FILE (created with mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `path` read once, the limit applied while reading (a FIFO or a device reports no size).
fn read_small(path: &Path) -> Result<Vec<u8>> {
    let bytes = crate::read_bounded(path)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_SMALL_FILE {
        bail!("{}: larger than 1 MiB", path.display());
    }
    Ok(bytes)
}

/// The init-data file (`-`: standard input), read once: the simulator's HOST_DATA and the
/// request both come from this one reading.
pub(crate) fn read_init_data(path: Option<&Path>) -> Result<Option<String>> {
    path.map(|path| {
        String::from_utf8(read_small(path)?)
            .with_context(|| format!("{}: not UTF-8", path.display()))
    })
    .transpose()
}

/// Kills the evidence command's process group (the shell and whatever it started that stayed
/// in the group: a collector it ran, a child it left behind), then the shell itself should
/// the group be gone already, and reaps it. Through `kill` of the shell, which takes a
/// negative process id for a group, so no `unsafe` signal call is needed here.
fn kill_group(child: &mut std::process::Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("sh")
        .args(["-c", "kill -s KILL -- \"$1\" 2>/dev/null", "sh", &group])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `cmd` with the REPORT_DATA hex appended and parses what it prints, within
/// [`EVIDENCE_TIMEOUT`].
pub(crate) fn evidence_from_command(
    cmd: &str,
    report_data: &[u8; 64],
) -> Result<serde_json::Value, ClientError> {
    evidence_from_command_within(cmd, report_data, EVIDENCE_TIMEOUT)
}

/// [`evidence_from_command`] with its deadline. A command still running (or whose output is
/// still open, held by a child it left behind) at the deadline is killed and the evidence
/// refused: a hung collector must not hang a boot that waits for its disk key.
fn evidence_from_command_within(
    cmd: &str,
    report_data: &[u8; 64],
    timeout: Duration,
) -> Result<serde_json::Value, ClientError> {
    let fail = |reason: String| ClientError::Evidence { reason };
    let deadline = Instant::now() + timeout;
    let hex = hex::encode(report_data);
    let mut child = Command::new("sh")
        .arg("-c")
        // The hex digits need no quoting.
        .arg(format!("{cmd} {hex}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // A process group of its own, so that what it starts is killed with it.
        .process_group(0)
        .spawn()
        .map_err(|e| fail(format!("--evidence-cmd: cannot run sh: {e}")))?;
    // The output is read on a thread of its own, so that the deadline holds while it blocks.
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let read = stdout
                .take(MAX_EVIDENCE.saturating_add(1))
                .read_to_end(&mut out)
                .map(|_| out);
            let _ = tx.send(read);
        });
    } else {
        let _ = tx.send(Ok(Vec::new()));
    }
    let late = || fail(format!("--evidence-cmd did not finish within {timeout:?}"));
    let read = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    let (out, read) = match read {
        Ok(Ok(out)) => (out, Ok(())),
        Ok(Err(e)) => (Vec::new(), Err(e)),
        Err(_) => {
            kill_group(&mut child);
            return Err(late());
        }
    };
    let too_long = u64::try_from(out.len()).unwrap_or(u64::MAX) > MAX_EVIDENCE;
    if too_long || read.is_err() {
        // It may be blocked writing output nobody reads.
        kill_group(&mut child);
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                kill_group(&mut child);
                return Err(late());
            }
            Err(e) => return Err(fail(format!("--evidence-cmd: {e}"))),
        }
    };
    read.map_err(|e| fail(format!("--evidence-cmd: reading its output: {e}")))?;
    if too_long {
        return Err(fail(format!(
            "--evidence-cmd printed more than {MAX_EVIDENCE} bytes"
        )));
    }
    if !status.success() {
        return Err(fail(format!("--evidence-cmd exited with {status}")));
    }
    serde_json::from_slice(&out)
        .map_err(|e| fail(format!("--evidence-cmd did not print JSON: {e}")))
}

/// `--out`, before the broker is asked: [`check_kind`], and its directory takes a new file.
fn check_out(path: &Path) -> Result<()> {
    check_kind("--out", path)?;
    // Absent or a regular file: the secret is written beside it and renamed over it, so its
    // directory must take a new file. Tried now (a file made and removed), so that a directory
    // that is missing or read-only is said before the broker releases anything, not after.
    probe_directory(path)
}

/// An output option (`flag`, such as `--out`) names a new file or a regular file. Anything
/// else at it is refused, not replaced: the rename would put the output in place of a link
/// (`/dev/stdout` is one), a device (`/dev/null`), a pipe or a socket, where whatever reads or
/// writes that path next would meet a file holding it; and a link is never written through.
pub(crate) fn check_kind(flag: &str, path: &Path) -> Result<()> {
    if path.file_name().is_none() {
        bail!("{flag} {}: not a file name", path.display());
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => bail!(
            "{flag} {}: not a regular file (a link, a device, a pipe, a socket or a directory), \
             so not replaced; give a new or a regular file{}",
            path.display(),
            if flag == "--out" {
                ", or leave --out out for standard output"
            } else {
                ""
            }
        ),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        // Not a place a file can be written (a parent that is a file, no search permission):
        // said before the broker releases anything.
        Err(e) => Err(anyhow::Error::new(e).context(format!("{flag} {}", path.display()))),
    }
}

/// A name for a file of this process beside `path`, hidden and unique:
/// `.NAME.PID.NANOS.SUFFIX`.
fn beside(path: &Path, suffix: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.{nanos}.{suffix}", std::process::id()));
    Ok(path.with_file_name(temp_name))
}

/// Whether a new file can be made in `path`'s directory: one is created and removed.
fn probe_directory(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let probe = beside(path, "probe")?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(file) => {
            drop(file);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(
            "--out {}: no file can be made in {} ({e}), so nothing was asked of the broker",
            path.display(),
            dir.display()
        )),
    }
}

/// Writes the secret to `path` with mode 0600: into a new file beside it (created exclusively,
/// so never through a symbolic link planted there, and never a file someone already holds
/// open), synced, then renamed over `path`, which must be absent or a regular file
/// ([`check_out`]).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    // (Its directory was tried before the broker was asked; what is at the path is looked
    // at again now.)
    write_output("--out", path, bytes, 0o600)
}

/// Writes an output file named by `flag`: [`check_kind`] (a new or a regular file; a link,
/// device, pipe or directory is refused and left as it was), then [`replace_file`].
pub(crate) fn write_output(flag: &str, path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    check_kind(flag, path)?;
    replace_file(path, bytes, mode)
}

/// Writes `bytes` to `path` with mode `mode` through a new file beside it (created
/// exclusively), synced, then renamed over `path`: whatever was at `path`, a link included, is
/// replaced, never written through.
pub(crate) fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    Staged::write(path, bytes, mode)?.commit()
}

/// An output written in full to a new file beside its path, not yet renamed into place:
/// [`Staged::commit`] renames it over the path; dropped uncommitted, it is removed (what was at
/// the path stays as it was).
pub(crate) struct Staged {
    temp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// Writes `bytes` into a new file beside `path` (created exclusively, so never through a
    /// link), and syncs it. Its mode is at most `mode`: a file it replaces keeps its own mode
    /// when narrower (a token the user made 0600 stays so); a new file with a mode for others
    /// (0644) takes the umask, one for its owner alone (0600) is set so whatever the umask.
    pub(crate) fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<Self> {
        let shown = || format!("{}", path.display());
        #[cfg(unix)]
        let (mode, exact) = {
            use std::os::unix::fs::PermissionsExt as _;
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.is_file() => (m.permissions().mode() & mode & 0o777, true),
                _ => (mode, mode & 0o077 == 0),
            }
        };
        let temp = beside(path, "tmp")?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(mode);
        }
        let mut file = options.open(&temp).with_context(shown)?;
        // From here on the temporary file is removed should anything fail.
        let staged = Self {
            temp,
            path: path.to_path_buf(),
            committed: false,
        };
        (|| {
            #[cfg(unix)]
            if exact {
                use std::os::unix::fs::PermissionsExt as _;
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            file.write_all(bytes)?;
            file.sync_all()
        })()
        .with_context(shown)?;
        Ok(staged)
    }

    /// Renames the file over its path (a link there is replaced, not followed), durably.
    pub(crate) fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.temp, &self.path)
            .with_context(|| format!("{}", self.path.display()))?;
        self.committed = true;
        // The rename itself, durable (best effort: some file systems refuse to sync a
        // directory).
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Where to fetch from and how: what `get-secret` and `guest get-secret` share.
pub(crate) struct Fetch<'a> {
    pub(crate) url: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) cacert: Option<&'a Path>,
    /// The init-data TOML (see [`read_init_data`]).
    pub(crate) init_data: Option<&'a str>,
    pub(crate) bearer: bool,
    pub(crate) out: Option<&'a Path>,
}

/// Attests with `evidence_for` (retrying fewer times than CoCo guests, whose agent makes five
/// handshakes and three GETs: three handshakes a second apart, the resource GET twice) and
/// writes the secret to `out` (0600) or standard output. A final refusal by the broker (a 4xx
/// other than 408 and 429) is [`Refused`] (exit 1); a server error, a busy broker or a proxy's
/// 5xx is an error (exit 2), which a script may retry.
pub(crate) fn fetch_and_emit(
    f: &Fetch<'_>,
    tee: &str,
    evidence_for: &mut dyn FnMut(&[u8; 64]) -> Result<serde_json::Value, ClientError>,
) -> Result<ExitCode> {
    // Checked before the broker is asked: a secret on a terminal stays in its scrollback.
    if f.out.is_none() && std::io::stdout().is_terminal() {
        bail!("the secret would go to a terminal: give --out FILE or redirect standard output");
    }
    if let Some(path) = f.out {
        check_out(path)?;
    }
    let secret = fetch(f, tee, evidence_for)?;
    match f.out {
        Some(path) => write_private(path, &secret)?,
        None => {
            // Straight to the file descriptor: Rust's stdout buffer would keep a copy of the
            // secret's tail, never zeroized, until the process exits.
            use std::os::fd::AsFd as _;
            let stdout = std::io::stdout();
            let _lock = stdout.lock();
            let mut out = std::fs::File::from(
                stdout
                    .as_fd()
                    .try_clone_to_owned()
                    .context("standard output")?,
            );
            out.write_all(&secret)
                .context("writing the secret to standard output")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The secret, fetched as [`fetch_and_emit`] does, kept in memory.
pub(crate) fn fetch(
    f: &Fetch<'_>,
    tee: &str,
    evidence_for: &mut dyn FnMut(&[u8; 64]) -> Result<serde_json::Value, ClientError>,
) -> Result<Zeroizing<Vec<u8>>> {
    let ca_pem = f.cacert.map(read_small).transpose()?;
    let client = Client::new(
        f.url,
        ClientOptions {
            ca_pem,
            auth: if f.bearer {
                AuthMode::Bearer
            } else {
                AuthMode::Cookie
            },
            retry: RetryPolicy {
                handshake_attempts: 3,
                handshake_delay: Duration::from_secs(1),
                resource_attempts: 2,
            },
            ..ClientOptions::default()
        },
    )
    // (A URL refused for its `user:password@` is named without it.)
    .with_context(|| format!("{:?}", crate::admin::redacted_url(f.url)))?;
    match client.get_secret(tee, f.resource, f.init_data, evidence_for) {
        Ok(s) => Ok(s),
        // The broker refused for good (a 4xx with its error body): exit 1. A 5xx, 408 or 429,
        // a 4xx without that body (a proxy's, an ingress's during a redeploy), and anything
        // else (ours, the network's) is not: exit 2, which a script may retry.
        Err(e @ ClientError::Broker { status, .. }) if is_final_refusal(status) => {
            Err(Refused(format!("get-secret {}: {e}", f.resource)).into())
        }
        Err(e) => {
            let hint = match &e {
                ClientError::Transport { .. } => crate::admin::transport_hint(&e.to_string()),
                _ => "",
            };
            Err(anyhow::Error::new(e).context(format!("get-secret {}{hint}", f.resource)))
        }
    }
}

/// Whether an HTTP status is the broker's final refusal (a 4xx that retrying does not change).
fn is_final_refusal(status: u16) -> bool {
    (400..500).contains(&status) && status != 408 && status != 429
}

pub(crate) fn run(args: &GetSecretArgs) -> Result<ExitCode> {
    let tee = match args.tee {
        TeeArg::Snp => "snp",
        TeeArg::Tdx => "tdx",
    };
    let cmd = args.evidence_cmd.as_str();
    let init_data = read_init_data(args.init_data.as_deref())?;
    fetch_and_emit(
        &Fetch {
            url: &args.url,
            resource: &args.resource,
            cacert: args.cacert.as_deref(),
            init_data: init_data.as_deref(),
            bearer: args.bearer,
            out: args.out.as_deref(),
        },
        tee,
        &mut |rd| evidence_from_command(cmd, rd),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_gets_the_report_data_last_and_must_print_json() {
        let rd = [0xAB; 64];
        let v = evidence_from_command("printf '{\"rd\":\"%s\"}'", &rd).unwrap();
        assert_eq!(v["rd"], "ab".repeat(64));
        assert!(evidence_from_command("echo not json", &rd).is_err());
        assert!(evidence_from_command("exit 3", &rd).is_err());
        // Endless output is cut at the cap (the command is killed, not waited for forever).
        let e = evidence_from_command("yes", &rd).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
    }

    #[test]
    fn the_secret_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "old, longer content").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_secret_file_never_goes_through_a_planted_link_or_an_open_handle() {
        use std::io::Read as _;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "someone else's file").unwrap();
        let path = dir.path().join("key");
        // A link at the path is refused: neither written through nor replaced.
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = write_private(&path, b"disk key").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"someone else's file");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
        std::fs::remove_file(&path).unwrap();
        write_private(&path, b"disk key").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"disk key");
        // A handle opened on the old file does not see the new secret.
        let mut old = std::fs::File::open(&path).unwrap();
        write_private(&path, b"second key").unwrap();
        let mut seen = String::new();
        old.read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "disk key");
        // Nothing left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    /// A pipe, a device, a directory or a link to standard output at `--out` is refused and
    /// left as it was (as root, the rename would have replaced `/dev/stdout` or `/dev/null`).
    #[test]
    fn out_is_never_put_in_place_of_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let stdout_link = dir.path().join("stdout");
        std::os::unix::fs::symlink("/proc/self/fd/1", &stdout_link).unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for path in [&fifo, &stdout_link, &sub, &PathBuf::from("/dev/null")] {
            let before = std::fs::symlink_metadata(path).unwrap().file_type();
            let e = write_private(path, b"secret").unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
            assert_eq!(std::fs::symlink_metadata(path).unwrap().file_type(), before);
        }
        assert!(check_out(&dir.path().join("new")).is_ok());
        // Where no file can be made (below a regular file), or no name at all: refused too,
        // before anything is asked of the broker.
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(check_out(&file).is_ok());
        assert!(check_out(&file.join("below")).is_err());
        // A directory that is not there, or that takes no new file: refused too.
        let e = check_out(&dir.path().join("nodir").join("x.out")).unwrap_err();
        assert!(e.to_string().contains("no file can be made"), "{e}");
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o500)).unwrap();
        // (Root is not stopped by permission bits: checked only for others.)
        if std::fs::File::create(ro.join("p")).is_err() {
            assert!(check_out(&ro.join("x.out")).is_err());
        }
        let _ = std::fs::remove_file(ro.join("p"));
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        std::fs::remove_dir(&ro).unwrap();
        assert!(check_out(Path::new("")).is_err());
        assert!(check_out(Path::new("/")).is_err());
        std::fs::remove_file(&file).unwrap();
        // Nothing was left beside them.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn a_hung_evidence_command_is_killed_at_its_deadline() {
        let rd = [1; 64];
        let short = Duration::from_millis(300);
        for cmd in [
            "sleep 30",
            // It exits, but a child it left behind holds its output open.
            "sleep 30 & printf '{}'",
        ] {
            let started = Instant::now();
            let e = evidence_from_command_within(cmd, &rd, short).unwrap_err();
            assert!(e.to_string().contains("did not finish"), "{cmd}: {e}");
            assert!(started.elapsed() < Duration::from_secs(10), "{cmd}");
        }
        assert!(evidence_from_command_within("printf '{}'", &rd, Duration::from_secs(20)).is_ok());
        // What the command started is killed with it, not left running.
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let cmd = format!("sleep 30 & echo $! > {}; wait; true", pid_file.display());
        let e = evidence_from_command_within(&cmd, &rd, short).unwrap_err();
        assert!(e.to_string().contains("did not finish"), "{e}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = std::path::Path::new("/proc").join(pid.trim()).join("stat");
        let gone = (0..100).any(|_| {
            // Gone, or a zombie waiting for init to reap it.
            let alive = std::fs::read_to_string(&stat).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| !r.trim_start().starts_with('Z'))
            });
            if alive {
                std::thread::sleep(Duration::from_millis(50));
            }
            !alive
        });
        assert!(gone, "the collector's child {} still runs", pid.trim());
    }

    #[test]
    fn only_final_4xx_answers_are_refusals() {
        for status in [400, 401, 403, 404, 413] {
            assert!(is_final_refusal(status), "{status}");
        }
        for status in [408, 429, 500, 502, 503, 504, 302] {
            assert!(!is_final_refusal(status), "{status}");
        }
    }
}
