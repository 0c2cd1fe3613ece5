//! `tessera sim snp`: write a report signed by a freshly generated fake AMD PKI.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tessera_snp::abi::Product;
use tessera_snp::sim::{SimPki, VekSpec};
use zerocopy::little_endian::{U32, U64};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Signer {
    Vcek,
    Vlek,
}

#[derive(Args, Debug)]
pub(crate) struct SnpSimArgs {
    /// Output folder (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// REPORT_DATA, exactly 64 bytes as hex.
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// MEASUREMENT, exactly 48 bytes as hex.
    #[arg(long, value_name = "HEX")]
    measurement: Option<String>,
    /// HOST_DATA, exactly 32 bytes as hex.
    #[arg(long, value_name = "HEX")]
    host_data: Option<String>,
    /// Guest POLICY as hex (e.g. 0x30000).
    #[arg(long, value_name = "HEX")]
    policy: Option<String>,
    /// VMPL.
    #[arg(long, default_value_t = 0)]
    vmpl: u32,
    /// Product.
    #[arg(long, default_value = "genoa", value_parser = crate::product_parser(), ignore_case = true)]
    product: Product,
    /// Which key signs.
    #[arg(long, value_enum, default_value = "vcek")]
    signer: Signer,
    /// Keep the fake AMD PKI (keys included) in DIR: created on first use, reused after, so a
    /// broker started with `--dangerous-test-root DIR/root.pem` accepts reports made later.
    /// Without it every run makes a new PKI.
    #[arg(long, value_name = "DIR")]
    pki: Option<PathBuf>,
    /// Overwrite files already in --out.
    #[arg(long)]
    force: bool,
}

/// Refuse to overwrite any of `names` in `dir` unless `force`: `sim --out` once destroyed a real
/// evidence sample.
pub(crate) fn check_overwrite(dir: &std::path::Path, names: &[&str], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    for name in names {
        let path = dir.join(name);
        if path.exists() {
            bail!(
                "{} exists; refusing to overwrite it (use --force, or another --out)",
                path.display()
            );
        }
    }
    Ok(())
}

fn hex_exact<const N: usize>(name: &str, s: &str) -> Result<[u8; N]> {
    let bytes =
        hex::decode(s.trim_start_matches("0x")).with_context(|| format!("--{name}: not hex"))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("--{name}: expected {N} bytes, got {len}"))
}

fn pem(der: &[u8]) -> String {
    tessera_pki::to_pem("CERTIFICATE", der)
}

pub(crate) fn snp(args: &SnpSimArgs) -> Result<ExitCode> {
    // With --pki, the VCEK is the directory's own (kept, as its PKI is), so a broker or cache
    // that holds it verifies every report simulated later; a VLEK is issued afresh.
    let kept = match (&args.pki, args.signer) {
        (Some(dir), Signer::Vcek) => {
            Some(tessera_guest::sim::PkiDir::open_or_create(dir)?.snp(args.product)?)
        }
        _ => None,
    };
    let (fresh_pki, fresh_vek);
    let (pki, vek) = match &kept {
        Some(kept) => (kept.pki(), kept.vek()),
        None => {
            fresh_pki = match &args.pki {
                Some(dir) => {
                    tessera_guest::sim::PkiDir::open_or_create(dir)?.snp_pki(args.product)?
                }
                None => SimPki::new(args.product)?,
            };
            let spec = match args.signer {
                Signer::Vcek => VekSpec::vcek(args.product),
                Signer::Vlek => VekSpec::vlek(args.product, "simulated-csp.example"),
            };
            fresh_vek = fresh_pki.issue_vek(&spec)?;
            (&fresh_pki, &fresh_vek)
        }
    };
    let mut raw = pki.report_template(vek);
    if let Some(h) = &args.report_data {
        raw.report_data = hex_exact::<64>("report-data", h)?;
    }
    if let Some(h) = &args.measurement {
        raw.measurement = hex_exact::<48>("measurement", h)?;
    }
    if let Some(h) = &args.host_data {
        raw.host_data = hex_exact::<32>("host-data", h)?;
    }
    if let Some(p) = &args.policy {
        let v = u64::from_str_radix(p.trim_start_matches("0x"), 16).context("--policy: not hex")?;
        // What SNP_LAUNCH_START refuses, no firmware would sign (and `verify` refuses it).
        let policy = tessera::snp::abi::GuestPolicy(v);
        if !policy.reserved_bit17() || !policy.reserved_bits_zero() {
            bail!("--policy {p}: bit 17 must be set and bits 63:26 clear (e.g. 0x30000)");
        }
        raw.policy = U64::new(v);
    }
    if args.vmpl > 3 {
        bail!("--vmpl: must be 0..=3");
    }
    raw.vmpl = U32::new(args.vmpl);
    if matches!(args.signer, Signer::Vlek) {
        raw.chip_id = [0; 64];
    }
    let report = vek.sign(raw)?;
    let (vek_name, intermediate) = match args.signer {
        Signer::Vcek => ("vcek.der", pki.ask()),
        Signer::Vlek => ("vlek.der", pki.asvk()),
    };
    check_overwrite(
        &args.out,
        &["report.bin", vek_name, "chain.pem", "root.pem", "crl.der"],
        args.force,
    )?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let write = |name: &str, data: &[u8]| -> Result<()> {
        let path = args.out.join(name);
        std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))
    };
    write("report.bin", report.as_bytes())?;
    write(vek_name, vek.certificate().der())?;
    write(
        "chain.pem",
        format!("{}{}", pem(intermediate.der()), pem(pki.ark().der())).as_bytes(),
    )?;
    write("root.pem", pem(pki.ark().der()).as_bytes())?;
    // The fake ARK's CRL (revokes nothing), current for a week from now, for policies with
    // snp.revocation = "required".
    let now = tessera_pki::UnixTime::now().as_secs();
    let crl = pki.ark_crl(
        &[],
        tessera_pki::UnixTime::from_secs(now - 86_400),
        tessera_pki::UnixTime::from_secs(now + 7 * 86_400),
    )?;
    write("crl.der", crl.der())?;
    let dir = args.out.display();
    crate::say!(
        "wrote {dir}/report.bin, {dir}/{vek_name}, {dir}/chain.pem, {dir}/root.pem, {dir}/crl.der"
    );
    crate::say!(
        "verify with: tessera verify {dir}/report.bin --certs {dir}/{vek_name} --certs {dir}/chain.pem --crl {dir}/crl.der --dangerous-test-root {dir}/root.pem"
    );
    if let Some(pki) = &args.pki {
        crate::say!(
            "the fake PKI stays in {}: a broker started with --dangerous-test-root {} accepts what it signs",
            pki.display(),
            pki.join("root.pem").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
