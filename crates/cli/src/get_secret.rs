//! `tessera get-secret`: fetch one secret from a broker for a script, with evidence from a
//! command (the KBS handshake of tessera-guest's client).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tessera_guest::client::{AuthMode, Client, ClientError, ClientOptions, RetryPolicy};
use zeroize::Zeroizing;

use crate::admin::Refused;

/// Largest evidence JSON read from the command.
const MAX_EVIDENCE: u64 = 8 * 1024 * 1024;
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

fn read_small(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.len() > MAX_SMALL_FILE {
        bail!("{}: larger than 1 MiB", path.display());
    }
    std::fs::read(path).with_context(|| format!("{}", path.display()))
}

/// Runs `cmd` with the REPORT_DATA hex appended and parses what it prints.
pub(crate) fn evidence_from_command(
    cmd: &str,
    report_data: &[u8; 64],
) -> Result<serde_json::Value, ClientError> {
    let fail = |reason: String| ClientError::Evidence { reason };
    let hex = hex::encode(report_data);
    let mut child = Command::new("sh")
        .arg("-c")
        // The hex digits need no quoting.
        .arg(format!("{cmd} {hex}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| fail(format!("--evidence-cmd: cannot run sh: {e}")))?;
    let mut out = Vec::new();
    let read = match child.stdout.take() {
        Some(stdout) => stdout
            .take(MAX_EVIDENCE.saturating_add(1))
            .read_to_end(&mut out)
            .map(|_| ()),
        None => Ok(()),
    };
    let too_long = u64::try_from(out.len()).unwrap_or(u64::MAX) > MAX_EVIDENCE;
    if too_long || read.is_err() {
        // It may be blocked writing output nobody reads.
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("--evidence-cmd: {e}")))?;
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

/// Writes the secret to `path`, created (or truncated) with mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("{}", path.display()))?;
    }
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("{}", path.display()))
}

/// Where to fetch from and how: what `get-secret` and `guest get-secret` share.
pub(crate) struct Fetch<'a> {
    pub(crate) url: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) cacert: Option<&'a Path>,
    pub(crate) init_data: Option<&'a Path>,
    pub(crate) bearer: bool,
    pub(crate) out: Option<&'a Path>,
}

/// Attests with `evidence_for` (retrying as CoCo guests do: three handshakes a second apart,
/// the resource GET twice) and writes the secret to `out` (0600) or standard output. A refusal
/// by the broker is [`Refused`] (exit 1).
pub(crate) fn fetch_and_emit(
    f: &Fetch<'_>,
    tee: &str,
    evidence_for: &mut dyn FnMut(&[u8; 64]) -> Result<serde_json::Value, ClientError>,
) -> Result<ExitCode> {
    let secret = fetch(f, tee, evidence_for)?;
    match f.out {
        Some(path) => write_private(path, &secret)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&secret)
                .and_then(|()| stdout.flush())
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
    let init_data = match f.init_data {
        Some(path) => Some(
            String::from_utf8(read_small(path)?)
                .with_context(|| format!("{}: not UTF-8", path.display()))?,
        ),
        None => None,
    };
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
    .with_context(|| format!("{:?}", f.url))?;
    match client.get_secret(tee, f.resource, init_data.as_deref(), evidence_for) {
        Ok(s) => Ok(s),
        // The broker answered: a refusal (exit 1). Anything else is ours or the network's.
        Err(e @ (ClientError::Broker { .. } | ClientError::Status { .. })) => {
            Err(Refused(format!("get-secret {}: {e}", f.resource)).into())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("get-secret {}", f.resource))),
    }
}

pub(crate) fn run(args: &GetSecretArgs) -> Result<ExitCode> {
    let tee = match args.tee {
        TeeArg::Snp => "snp",
        TeeArg::Tdx => "tdx",
    };
    let cmd = args.evidence_cmd.as_str();
    fetch_and_emit(
        &Fetch {
            url: &args.url,
            resource: &args.resource,
            cacert: args.cacert.as_deref(),
            init_data: args.init_data.as_deref(),
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
}
