//! `tessera guest`: the inside of a confidential VM. Which TEE this is, its evidence, a secret
//! from a KBS 0.4.0 broker, and a LUKS disk unlocked with a secret — from the hardware through
//! configfs-tsm, or from the simulator (`--simulate PKI_DIR`) on any machine.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tessera_guest::provider::{self, Detected, Paths, Provider, SimProvider, Tee};
use tessera_guest::sim::{Measurements, PkiDir};
use tessera_snp::abi::Product;

use crate::get_secret::{Fetch, fetch, fetch_and_emit, read_init_data};
use crate::say;

#[derive(Subcommand, Debug)]
pub(crate) enum GuestCommand {
    /// Say which TEE this is and whether its evidence can be collected.
    Tee(SourceArgs),
    /// Print evidence bound to a REPORT_DATA (the KBS JSON form a guest sends).
    Evidence(EvidenceArgs),
    /// Attest to a broker with this TEE's evidence and print or write the secret.
    GetSecret(GuestSecretArgs),
    /// Fetch a disk key from a broker and open a LUKS device with it (through cryptsetup's
    /// standard input: never on a command line, never on disk).
    UnlockLuks(UnlockArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum SimTee {
    Snp,
    Tdx,
}

/// Where evidence comes from.
#[derive(Args, Debug)]
pub(crate) struct SourceArgs {
    /// Use the simulator with the fake vendor PKI kept in PKI_DIR (`tessera sim ... --pki`),
    /// instead of the hardware; a broker trusting `PKI_DIR/root.pem` (and, for TDX,
    /// `--endorsements PKI_DIR/endorsements`) accepts its evidence.
    #[arg(long, value_name = "PKI_DIR")]
    simulate: Option<PathBuf>,
    /// The simulated TEE (with --simulate).
    #[arg(long, value_enum, default_value = "snp", requires = "simulate")]
    tee: SimTee,
    /// The simulated SEV-SNP product (with --simulate and --tee snp; default genoa).
    #[arg(long, requires = "simulate", value_parser = crate::product_parser(),
          ignore_case = true)]
    product: Option<Product>,
    /// The simulated MEASUREMENT / MRTD, 96 hex digits (with --simulate; default 4d..4d).
    #[arg(long, value_name = "HEX", requires = "simulate")]
    measurement: Option<String>,
    /// Simulate a debuggable guest (with --simulate).
    #[arg(long, requires = "simulate")]
    debug: bool,
    /// The configfs-tsm report directory.
    #[arg(long, value_name = "DIR", default_value = tessera_guest::tsm::DEFAULT_ROOT)]
    tsm_root: PathBuf,
    /// SEV-SNP: the VMPL the report is requested for (configfs-tsm `privlevel`).
    #[arg(long, default_value = "0", value_parser = clap::value_parser!(u8).range(0..=3))]
    vmpl: u8,
}

#[derive(Args, Debug)]
pub(crate) struct EvidenceArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// REPORT_DATA, up to 128 hex digits (zero-padded to 64 bytes).
    #[arg(long, value_name = "HEX", conflicts_with = "nonce")]
    report_data: Option<String>,
    /// REPORT_DATA = SHA-512 of this text (a verifier's nonce).
    #[arg(long, value_name = "TEXT")]
    nonce: Option<String>,
    /// What to print: `kbs`, the evidence JSON a KBS guest sends (one line); `raw`, the signed
    /// bytes (the 1184-byte SEV-SNP report or the TDX quote, binary: needs --out or a
    /// redirect); `json`, `{tee, source, report_data, evidence}`.
    #[arg(long, value_enum, default_value = "kbs")]
    format: EvidenceFormat,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Write the evidence to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// SEV-SNP: also write the certificates that came with the evidence (the host's VCEK/VLEK,
    /// ASK, ARK) to FILE as PEM, for `tessera verify REPORT --certs FILE`.
    #[arg(long, value_name = "FILE")]
    certs_out: Option<PathBuf>,
    /// With --simulate: the raw init-data (TOML; `-` for standard input) whose digest the
    /// simulated evidence carries in HOST_DATA / MR_CONFIG_ID, as a TEE launched with it
    /// would (for `get-secret --init-data FILE --evidence-cmd ...`).
    #[arg(long, value_name = "FILE", requires = "simulate")]
    init_data: Option<PathBuf>,
}

/// The forms `tessera guest evidence` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum EvidenceFormat {
    /// The evidence JSON a KBS guest sends.
    Kbs,
    /// The signed report or quote bytes.
    Raw,
    /// The evidence with what it is and where it came from.
    Json,
}

#[derive(Args, Debug)]
pub(crate) struct GuestSecretArgs {
    /// The broker's base URL (https://host[:port]; plain http only to loopback).
    url: String,
    /// The resource, REPO/TYPE/TAG (with ?version=N to pin a version).
    resource: String,
    #[command(flatten)]
    source: SourceArgs,
    /// The raw init-data (TOML) whose digest the evidence carries in HOST_DATA / MR_CONFIG_ID.
    #[arg(long, value_name = "FILE")]
    init_data: Option<PathBuf>,
    /// Write the secret to FILE (created with mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Trust this CA (PEM) for the broker's TLS certificate instead of the Mozilla roots.
    #[arg(long, value_name = "PEM")]
    cacert: Option<PathBuf>,
    /// Present the token as `Authorization: Bearer` (default: the session cookie).
    #[arg(long)]
    bearer: bool,
}

#[derive(Args, Debug)]
pub(crate) struct UnlockArgs {
    /// The LUKS device or image file.
    device: PathBuf,
    /// The broker's base URL.
    #[arg(long)]
    url: String,
    /// The disk key's resource, REPO/TYPE/TAG.
    #[arg(long, value_name = "REPO/TYPE/TAG")]
    resource: String,
    /// The device-mapper name to open it as (default: luks-<file name>, or luks-<value> for a
    /// UUID=, LABEL=, PARTUUID= or PARTLABEL= tag).
    #[arg(long)]
    name: Option<String>,
    /// Only test that the key opens the device (`cryptsetup open --test-passphrase`); nothing
    /// is mapped.
    #[arg(long)]
    check: bool,
    /// The cryptsetup program.
    #[arg(long, value_name = "PATH", default_value = "cryptsetup")]
    cryptsetup: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
    /// The raw init-data (TOML) whose digest the evidence carries.
    #[arg(long, value_name = "FILE")]
    init_data: Option<PathBuf>,
    /// Trust this CA (PEM) for the broker's TLS certificate.
    #[arg(long, value_name = "PEM")]
    cacert: Option<PathBuf>,
}

/// The provider `args` select; `init_data` (raw TOML) sets the simulator's HOST_DATA /
/// MR_CONFIG_ID to its digest.
fn provider_for(args: &SourceArgs, init_data: Option<&str>) -> Result<Box<dyn Provider>> {
    let Some(dir) = &args.simulate else {
        return match provider::detect(
            &Paths {
                tsm_root: args.tsm_root.clone(),
                ..Paths::default()
            },
            args.vmpl,
        )
        .into_provider()
        {
            Ok(p) => Ok(p),
            Err(Detected::Unsupported { reason, .. }) => bail!("evidence collection: {reason}"),
            Err(_) => bail!(
                "no TEE found (no configfs-tsm at {}, no /dev/sev-guest or /dev/tdx_guest); \
                 --simulate PKI_DIR uses the simulator",
                args.tsm_root.display()
            ),
        };
    };
    let pki =
        PkiDir::open_or_create(dir).with_context(|| format!("--simulate {}", dir.display()))?;
    let mut m = Measurements {
        debug: args.debug,
        ..Measurements::default()
    };
    if let Some(h) = &args.measurement {
        let bytes = hex::decode(h).context("--measurement: not hex")?;
        m.measurement = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("--measurement: 48 bytes (96 hex digits)"))?;
    }
    if let Some(text) = init_data {
        m.init_data_digest = tessera_broker::binding::init_data_digest("toml", text)
            .context("--init-data")?
            .digest;
    }
    Ok(match args.tee {
        SimTee::Snp => Box::new(SimProvider::Snp(
            Box::new(
                pki.snp(args.product.unwrap_or(Product::Genoa))
                    .context("the simulated SEV-SNP PKI")?,
            ),
            m,
        )),
        SimTee::Tdx if args.product.is_some() => {
            bail!("--product names a SEV-SNP product: not with --tee tdx")
        }
        SimTee::Tdx => Box::new(SimProvider::Tdx(
            Box::new(pki.tdx().context("the simulated Intel PKI")?),
            m,
        )),
    })
}

pub(crate) fn run(cmd: &GuestCommand) -> Result<ExitCode> {
    match cmd {
        GuestCommand::Tee(args) => tee(args),
        GuestCommand::Evidence(args) => evidence(args),
        GuestCommand::GetSecret(args) => {
            let init_data = read_init_data(args.init_data.as_deref())?;
            let p = provider_for(&args.source, init_data.as_deref())?;
            fetch_and_emit(
                &Fetch {
                    url: &args.url,
                    resource: &args.resource,
                    cacert: args.cacert.as_deref(),
                    init_data: init_data.as_deref(),
                    bearer: args.bearer,
                    out: args.out.as_deref(),
                },
                p.tee().kbs_name(),
                &mut |rd| p.evidence(rd),
            )
        }
        GuestCommand::UnlockLuks(args) => unlock(args),
    }
}

fn tee(args: &SourceArgs) -> Result<ExitCode> {
    if args.simulate.is_some() {
        let p = provider_for(args, None)?;
        say!("{} ({})", p.tee().kbs_name(), p.describe());
        return Ok(ExitCode::SUCCESS);
    }
    match provider::detect(
        &Paths {
            tsm_root: args.tsm_root.clone(),
            ..Paths::default()
        },
        args.vmpl,
    )
    .into_provider()
    {
        Ok(p) => {
            say!("{} ({})", p.tee().kbs_name(), p.describe());
            Ok(ExitCode::SUCCESS)
        }
        Err(Detected::Unsupported { tee, reason }) => {
            say!(
                "{} (unsupported for collection: {reason})",
                tee.map_or("unknown", Tee::kbs_name)
            );
            Ok(ExitCode::from(1))
        }
        Err(_) => {
            say!("none (no configfs-tsm, /dev/sev-guest or /dev/tdx_guest)");
            Ok(ExitCode::from(1))
        }
    }
}

fn evidence(args: &EvidenceArgs) -> Result<ExitCode> {
    // Where the evidence and certificates go is checked before any is collected: a new or a
    // regular file, replaced whole (a link there is refused, never written through).
    if let Some(path) = &args.out {
        crate::get_secret::check_kind("--out", path)?;
    }
    if let Some(path) = &args.certs_out {
        crate::get_secret::check_kind("--certs-out", path)?;
    }
    let mut rd = [0u8; 64];
    if let Some(h) = &args.report_data {
        let bytes = hex::decode(h).context("--report-data: not hex")?;
        if bytes.len() > 64 {
            bail!("--report-data: at most 64 bytes (128 hex digits)");
        }
        for (dst, src) in rd.iter_mut().zip(&bytes) {
            *dst = *src;
        }
    } else if let Some(n) = &args.nonce {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, n.as_bytes());
        rd.copy_from_slice(d.as_ref());
    }
    let init_data = read_init_data(args.init_data.as_deref())?;
    let p = provider_for(&args.source, init_data.as_deref())?;
    let ev = p.evidence(&rd).context("collecting evidence")?;
    let parsed = tessera::Evidence::from_kbs(p.tee().kbs_name(), &ev)
        .context("the collected evidence does not parse")?;
    eprintln!(
        "{} evidence from {}: {} form, REPORT_DATA {}, {} certificate(s) with it",
        p.tee().kbs_name(),
        p.describe(),
        parsed.form().name(),
        hex::encode(parsed.report_data()),
        parsed.cert_chain_len()
    );
    let format = if args.json {
        EvidenceFormat::Json
    } else {
        args.format
    };
    let bytes = match format {
        EvidenceFormat::Kbs => format!("{ev}\n").into_bytes(),
        EvidenceFormat::Raw => parsed.signed_evidence(),
        EvidenceFormat::Json => format!(
            "{}\n",
            json!({
                "tee": p.tee().kbs_name(),
                "source": p.describe(),
                "report_data": hex::encode(rd),
                "evidence": ev,
            })
        )
        .into_bytes(),
    };
    if let Some(path) = &args.certs_out {
        let certs = parsed.certificates();
        if certs.is_empty() {
            bail!(
                "--certs-out: no certificates came with this evidence (a TDX quote carries its \
                 PCK chain inside the quote)"
            );
        }
        let pem: String = certs
            .iter()
            .map(|der| tessera_pki::to_pem("CERTIFICATE", der))
            .collect();
        crate::get_secret::write_output("--certs-out", path, pem.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {} certificate(s) to {}", certs.len(), path.display());
    }
    match &args.out {
        Some(path) => {
            crate::get_secret::write_output("--out", path, &bytes, 0o644)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            use std::io::IsTerminal as _;
            let mut stdout = std::io::stdout().lock();
            if format == EvidenceFormat::Raw && stdout.is_terminal() {
                bail!("--format raw is binary: give --out FILE or redirect standard output");
            }
            stdout
                .write_all(&bytes)
                .context("writing standard output")?;
            stdout.flush().context("writing standard output")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The path to hand cryptsetup for `device`: `UUID=`, `LABEL=`, `PARTUUID=` and `PARTLABEL=`
/// resolved through udev's `/dev/disk/by-*` links (cryptsetup itself looks up only `UUID=`, by
/// the same link), their values escaped as udev names the links; any other `TAG=` is refused; a
/// path is itself.
fn luks_device(device: &Path) -> Result<PathBuf> {
    let Some((tag, value)) = device.to_str().and_then(|d| d.split_once('=')) else {
        return Ok(device.to_path_buf());
    };
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_uppercase()) {
        return Ok(device.to_path_buf());
    }
    let folder = match tag {
        "UUID" => "by-uuid",
        "LABEL" => "by-label",
        "PARTUUID" => "by-partuuid",
        "PARTLABEL" => "by-partlabel",
        _ => bail!(
            "{}: unknown tag {tag}= (UUID=, LABEL=, PARTUUID= or PARTLABEL=, or a path)",
            device.display()
        ),
    };
    if value.is_empty() {
        bail!("{}: no {tag} given", device.display());
    }
    Ok(Path::new("/dev/disk")
        .join(folder)
        .join(udev_escaped(value)))
}

/// The device-mapper name `unlock-luks` opens `device` as without `--name`: `luks-VALUE` for a
/// tag (`UUID=abcd` → `luks-abcd`, as crypttab names them; the value escaped as udev does, so
/// a `/` never reaches the name), else `luks-` and the path's file name.
fn default_mapping_name(device: &Path) -> String {
    let tagged = device
        .to_str()
        .and_then(|d| d.split_once('='))
        .filter(|(tag, v)| {
            !tag.is_empty() && !v.is_empty() && tag.bytes().all(|b| b.is_ascii_uppercase())
        });
    match tagged {
        Some((_, value)) => format!("luks-{}", udev_escaped(value)),
        None => format!(
            "luks-{}",
            device
                .file_name()
                .map_or_else(|| "disk".into(), |n| n.to_string_lossy().into_owned())
        ),
    }
}

/// `value` as udev writes it in a `/dev/disk/by-*` link's name (`encode_devnode_name`): ASCII
/// letters, digits and `#+-.:=@_`, and characters beyond ASCII that udev takes as valid, as
/// they are; every other byte as `\\xHH` (so a `/` never leaves the folder; `.` and `..`, which
/// udev never names a link, are escaped too).
fn udev_escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let kept = if c.is_ascii() {
            c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c)
        } else {
            let u = u32::from(c);
            !(0xFDD0..=0xFDEF).contains(&u) && (u & 0xFFFE) != 0xFFFE
        };
        if kept {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    if out == "." || out == ".." {
        return out.replace('.', "\\x2e");
    }
    out
}

fn unlock(args: &UnlockArgs) -> Result<ExitCode> {
    // What the key would be used with is checked before it is asked for: a key released
    // (and audited) only to find no device or no cryptsetup helps nobody.
    let device = luks_device(&args.device)?;
    if device == args.device {
        std::fs::metadata(&args.device)
            .with_context(|| format!("{}: the device", args.device.display()))?;
    } else {
        std::fs::metadata(&device).with_context(|| {
            format!(
                "{}: the device ({})",
                args.device.display(),
                device.display()
            )
        })?;
    }
    // Found once, and that very file is what runs.
    let Some(cryptsetup) = find_program(&args.cryptsetup) else {
        bail!(
            "{}: no such program (give --cryptsetup PATH); nothing was asked of the broker",
            args.cryptsetup.display()
        );
    };
    let init_data = read_init_data(args.init_data.as_deref())?;
    let p = provider_for(&args.source, init_data.as_deref())?;
    let key = fetch(
        &Fetch {
            url: &args.url,
            resource: &args.resource,
            cacert: args.cacert.as_deref(),
            init_data: init_data.as_deref(),
            bearer: false,
            out: None,
        },
        p.tee().kbs_name(),
        &mut |rd| p.evidence(rd),
    )?;
    let mut cmd = Command::new(&cryptsetup);
    cmd.arg("open");
    if args.check {
        cmd.arg("--test-passphrase");
    }
    // `--`: a device path starting with `-` is not read as an option.
    cmd.arg("--key-file=-").arg("--").arg(&device);
    if !args.check {
        let name = match &args.name {
            Some(n) => n.clone(),
            None => default_mapping_name(&args.device),
        };
        cmd.arg(name);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("running {}", args.cryptsetup.display()))?;
    let handed = {
        // The key goes through the pipe only; dropping the handle closes it (end of key).
        let mut stdin = child.stdin.take().context("cryptsetup's standard input")?;
        stdin.write_all(&key)
    };
    drop(key);
    // cryptsetup is always waited for: one that fails before it reads the key (not a LUKS
    // device, no device-mapper) closes the pipe, and its own status says why, not the
    // broken pipe.
    let status = child.wait().context("waiting for cryptsetup")?;
    if let Err(e) = handed
        && (status.success() || e.kind() != std::io::ErrorKind::BrokenPipe)
    {
        return Err(anyhow::Error::new(e).context("handing the key to cryptsetup"));
    }
    if status.success() {
        eprintln!(
            "{} {}",
            args.device.display(),
            if args.check {
                "opens with the key from the broker (checked only; nothing mapped)"
            } else {
                "unlocked"
            }
        );
        Ok(ExitCode::SUCCESS)
    } else if status.code() == Some(CRYPTSETUP_BAD_PASSPHRASE) {
        eprintln!(
            "cryptsetup refused the key for {} ({status})",
            args.device.display()
        );
        Ok(ExitCode::from(1))
    } else {
        // Not the key: the device, device-mapper, memory, a mapping of that name already
        // there (cryptsetup's message above says which).
        bail!(
            "cryptsetup failed for {} ({status}; not a refusal of the key, see its message above)",
            args.device.display()
        )
    }
}

/// cryptsetup's exit status for a passphrase or key that opens no key slot ("no permission
/// (bad passphrase)", cryptsetup(8), RETURN CODES); 1 is wrong parameters, 3 out of memory,
/// 4 a wrong device, 5 a device that exists already or is busy.
const CRYPTSETUP_BAD_PASSPHRASE: i32 = 2;

/// The executable file `program` names: itself when it has a `/`, else the first in one of
/// `PATH`'s directories (`/bin:/usr/bin` when `PATH` is unset, as `execvp` falls back).
fn find_program(program: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_os_str().as_encoded_bytes().contains(&b'/') {
        return runnable(program).then(|| program.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| runnable(p))
}

#[cfg(test)]
mod tests {
    use super::{default_mapping_name, find_program, luks_device};
    use std::path::Path;

    /// Tags udev names are resolved through /dev/disk/by-*; UUID= is cryptsetup's; another
    /// tag, or a value that is not one name, is refused; a path is itself.
    #[test]
    fn luks_devices_by_tag() {
        let dev = |d: &str| luks_device(Path::new(d)).map(|p| p.display().to_string());
        assert_eq!(dev("LABEL=data").unwrap(), "/dev/disk/by-label/data");
        assert_eq!(dev("PARTUUID=0a-1").unwrap(), "/dev/disk/by-partuuid/0a-1");
        assert_eq!(
            dev("PARTLABEL=root").unwrap(),
            "/dev/disk/by-partlabel/root"
        );
        assert_eq!(
            dev("UUID=1234-abcd").unwrap(),
            "/dev/disk/by-uuid/1234-abcd"
        );
        assert_eq!(dev("/dev/vdb").unwrap(), "/dev/vdb");
        assert_eq!(dev("./a=b.img").unwrap(), "./a=b.img");
        // As udev escapes them: never a way out of the folder.
        assert_eq!(
            dev("LABEL=my disk").unwrap(),
            "/dev/disk/by-label/my\\x20disk"
        );
        assert_eq!(dev("LABEL=a/b").unwrap(), "/dev/disk/by-label/a\\x2fb");
        assert_eq!(dev("LABEL=..").unwrap(), "/dev/disk/by-label/\\x2e\\x2e");
        // Beyond ASCII as udev keeps it; its noncharacters escaped byte by byte.
        assert_eq!(dev("LABEL=données").unwrap(), "/dev/disk/by-label/données");
        assert_eq!(
            dev("LABEL=a\u{fdd0}").unwrap(),
            "/dev/disk/by-label/a\\xef\\xb7\\x90"
        );
        // Without --name: luks- and the tag's value, or the path's file name.
        let name = |d: &str| default_mapping_name(Path::new(d));
        assert_eq!(name("UUID=1234-abcd"), "luks-1234-abcd");
        assert_eq!(name("LABEL=a/b"), "luks-a\\x2fb");
        assert_eq!(name("/dev/vdb"), "luks-vdb");
        assert_eq!(name("/srv/disk=1.img"), "luks-disk=1.img");
        assert_eq!(name("/"), "luks-disk");
        for bad in ["SERIAL=1", "LABEL=", "UUID="] {
            assert!(dev(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn programs_are_found_as_exec_would_find_them() {
        let sh = find_program(Path::new("sh")).expect("sh on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(
            find_program(Path::new("/bin/sh")).as_deref(),
            Some(Path::new("/bin/sh"))
        );
        assert!(find_program(Path::new("/nonexistent/cryptsetup")).is_none());
        assert!(find_program(Path::new("no-such-program-7f3a")).is_none());
        // A file that is not executable is no program.
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"#!/bin/sh\n").unwrap();
        assert!(find_program(&plain).is_none());
    }
}
