//! The `tessera` command: inspect, verify and simulate attestation evidence.
//!
//! A thin shell: arguments become a validated request, the crates do the work. Exit status:
//! 0 verified, 1 evidence rejected, 2 usage or I/O error.
#![forbid(unsafe_code)]

mod output;
mod policy;
mod sim;
mod tdx;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tessera_pki::{Certificate, Crl, UnixTime, load_certificates, load_crls};
use tessera_snp::abi::{CertTable, Product, SnpEvidence};
use tessera_snp::certs::ProductRoots;
use tessera_snp::{TrustAnchors, Verifier};

/// Largest evidence or certificate file read (bytes).
const MAX_FILE: u64 = 16 * 1024 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "tessera",
    version,
    about = "Verify confidential-computing attestation evidence"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify evidence against the vendor chain (exit 0 verified, 1 rejected, 2 usage/I/O error).
    Verify(VerifyArgs),
    /// Decode evidence without verifying it.
    Show(ShowArgs),
    /// Simulate evidence signed by a generated fake vendor PKI.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Check policies and generate them from evidence.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// EAR attestation-result tokens: make a signing key, verify a token.
    #[command(subcommand)]
    Token(policy::TokenCommand),
}

/// The evidence and what verifies it (shared by `verify` and `policy from-evidence`).
#[derive(Args, Debug)]
pub(crate) struct EvidenceArgs {
    /// The evidence: a raw SNP report (1184 bytes), an extended report (report + certificate
    /// table), an Azure HCL report, a configfs-tsm report folder (outblob, auxblob), or an
    /// Intel TDX / SGX DCAP quote.
    evidence: PathBuf,
    /// Certificates: DER or PEM (VCEK/VLEK, ASK/ASVK, ARK, bundles) or a certificate table.
    #[arg(long = "certs", value_name = "FILE")]
    certs: Vec<PathBuf>,
    /// CRLs (DER or PEM) to apply to the chain; each must be issued by a certificate on it.
    #[arg(long = "crl", value_name = "FILE")]
    crls: Vec<PathBuf>,
    /// TDX/SGX: Intel collateral, a bundle JSON (dcap-qvl `QuoteCollateralV3` layout) or a
    /// folder of Intel PCS responses (TCB info, QE identity, CRLs, issuer chains).
    #[arg(long, value_name = "FILE|DIR")]
    collateral: Option<PathBuf>,
    /// TDX/SGX: verify collateral that lacks the PCK CRL or Root CA CRL (the result then says
    /// revocation was not checked).
    #[arg(long)]
    allow_missing_crls: bool,
    /// Verification time (RFC 3339); default: now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// The product (milan, genoa, turin); must agree with the chain and the report.
    #[arg(long, value_name = "PRODUCT")]
    product: Option<Product>,
    /// DANGEROUS: trust this root (PEM/DER) instead of the embedded vendor roots (an ARK for
    /// SEV-SNP, a root CA for TDX/SGX). For simulator output and tests only.
    #[arg(long = "dangerous-test-root", value_name = "FILE")]
    dangerous_test_roots: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    input: EvidenceArgs,
    /// Appraise the verified evidence against this policy (TOML or JSON): exit 0 only when it
    /// passes; failing rules are listed first.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ear: policy::EarArgs,
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// The evidence file or configfs-tsm folder.
    evidence: PathBuf,
    /// The product used to decode TCB values when the report does not say (v2 reports).
    #[arg(long, value_name = "PRODUCT")]
    product: Option<Product>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum SimCommand {
    /// Write a simulated SEV-SNP report with its VEK, chain and fake root.
    Snp(sim::SnpSimArgs),
    /// Write a simulated TDX (or SGX) quote with its collateral and fake root.
    Tdx(tdx::TdxSimArgs),
}

pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > MAX_FILE {
        bail!("{}: larger than {MAX_FILE} bytes", path.display());
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Evidence bytes as read: either a parsed value, or the parse failure (a rejection, exit 1).
enum LoadedEvidence {
    Parsed(SnpEvidence, &'static str),
    Malformed(tessera_snp::SnpError),
}

fn load_evidence(path: &Path) -> Result<LoadedEvidence> {
    let parsed = if path.is_dir() {
        let outblob = read_bounded(&path.join("outblob"))?;
        let aux = path.join("auxblob");
        let auxblob = if aux.is_file() {
            Some(read_bounded(&aux)?)
        } else {
            None
        };
        SnpEvidence::from_tsm(&outblob, auxblob.as_deref()).map(|e| (e, "configfs-tsm"))
    } else {
        let bytes = read_bounded(path)?;
        SnpEvidence::parse(&bytes).map(|e| {
            let kind = match e {
                SnpEvidence::Report(_) => "report",
                SnpEvidence::Extended { .. } => "extended-report",
                SnpEvidence::Hcl(_) => "azure-hcl",
            };
            (e, kind)
        })
    };
    Ok(match parsed {
        Ok((e, kind)) => LoadedEvidence::Parsed(e, kind),
        Err(e) => LoadedEvidence::Malformed(e.into()),
    })
}

/// Certificates from a PEM/DER file, or from an extended-report certificate table.
pub(crate) fn load_cert_file(path: &Path) -> Result<Vec<Certificate>> {
    let bytes = read_bounded(path)?;
    match load_certificates(&bytes) {
        Ok(certs) => Ok(certs),
        Err(pem_der) => {
            let table = CertTable::parse(&bytes)
                .map_err(|_| pem_der)
                .with_context(|| {
                    format!(
                        "{}: not PEM/DER certificates or a certificate table",
                        path.display()
                    )
                })?;
            let mut out = Vec::new();
            for entry in &table.entries {
                if let Ok(mut certs) = load_certificates(&entry.data) {
                    out.append(&mut certs);
                }
            }
            Ok(out)
        }
    }
}

fn load_crl_file(path: &Path) -> Result<Vec<Crl>> {
    load_crls(&read_bounded(path)?).with_context(|| format!("{}: not a CRL", path.display()))
}

fn parse_at(at: Option<&str>) -> Result<UnixTime> {
    match at {
        Some(s) => UnixTime::parse_rfc3339(s).with_context(|| format!("--at {s:?}")),
        None => Ok(UnixTime::now()),
    }
}

fn test_anchors(paths: &[PathBuf], product: Option<Product>) -> Result<TrustAnchors> {
    let mut roots = Vec::new();
    for path in paths {
        for ark in load_cert_file(path)? {
            let named = ark
                .subject()
                .rsplit("ARK-")
                .next()
                .and_then(|rest| rest.split([',', ' ']).next())
                .and_then(|p| p.parse::<Product>().ok());
            let Some(p) = named.or(product) else {
                bail!(
                    "{}: cannot tell the product of {}; pass --product",
                    path.display(),
                    ark.subject()
                );
            };
            roots.push(ProductRoots {
                product: p,
                ark,
                asks: Vec::new(),
                asvks: Vec::new(),
            });
        }
    }
    eprintln!(
        "WARNING: --dangerous-test-root: trusting test roots instead of AMD's; never use in production"
    );
    Ok(TrustAnchors::dangerous_custom(roots))
}

/// The evidence file's bytes when it is a DCAP quote.
fn read_quote(path: &Path) -> Result<Option<Vec<u8>>> {
    if path.is_dir() {
        return Ok(None);
    }
    let bytes = read_bounded(path)?;
    Ok(tdx::is_quote(&bytes).then_some(bytes))
}

/// The result of verifying evidence: verified (SNP or quote) or rejected with the failed check.
pub(crate) enum Checked {
    Snp(Box<tessera_snp::Verified<SnpEvidence>>, &'static str),
    Quote(Box<tessera_tdx::Verified<tessera_tdx::abi::Quote>>),
    SnpRejected(Option<&'static str>, tessera_snp::SnpError),
    QuoteRejected(&'static str, tessera_tdx::TdxError),
}

impl Checked {
    /// Print a rejection; `false` when the evidence verified.
    pub(crate) fn print_rejection(&self, as_json: bool) -> bool {
        match self {
            Self::SnpRejected(kind, err) => output::print_rejection(*kind, err, as_json),
            Self::QuoteRejected(tee, err) => tdx::print_rejection(tee, err, as_json),
            Self::Snp(..) | Self::Quote(_) => return false,
        }
        true
    }
}

/// Verify the evidence `args` name.
pub(crate) fn check_evidence(args: &EvidenceArgs) -> Result<Checked> {
    let at = parse_at(args.at.as_deref())?;
    if let Some(quote) = read_quote(&args.evidence)? {
        if !args.certs.is_empty() || !args.crls.is_empty() || args.product.is_some() {
            bail!(
                "--certs, --crl and --product are for SEV-SNP; a quote carries its PCK chain and takes CRLs from --collateral"
            );
        }
        let root = match args.dangerous_test_roots.as_slice() {
            [] => None,
            [root] => Some(root.as_path()),
            _ => bail!("--dangerous-test-root: a quote takes one root"),
        };
        return tdx::check(
            &quote,
            args.collateral.as_deref(),
            root,
            args.allow_missing_crls,
            at,
        );
    }
    if args.collateral.is_some() || args.allow_missing_crls {
        bail!("--collateral and --allow-missing-crls are for TDX/SGX quotes");
    }
    let mut certs = Vec::new();
    for path in &args.certs {
        certs.extend(load_cert_file(path)?);
    }
    let mut crls = Vec::new();
    for path in &args.crls {
        crls.extend(load_crl_file(path)?);
    }
    let anchors = if args.dangerous_test_roots.is_empty() {
        TrustAnchors::amd()?
    } else {
        test_anchors(&args.dangerous_test_roots, args.product)?
    };
    let (evidence, kind) = match load_evidence(&args.evidence)? {
        LoadedEvidence::Parsed(e, kind) => (e, kind),
        LoadedEvidence::Malformed(err) => return Ok(Checked::SnpRejected(None, err)),
    };
    let verifier = Verifier::new(anchors);
    Ok(
        match verifier.verify_evidence(evidence, &certs, &crls, at, args.product) {
            Ok(verified) => Checked::Snp(Box::new(verified), kind),
            Err(err) => Checked::SnpRejected(Some(kind), err),
        },
    )
}

fn verify(args: &VerifyArgs) -> Result<ExitCode> {
    // A policy that does not load is a usage error, found before any verification.
    let policy = args
        .policy
        .as_deref()
        .map(tessera_policy::Policy::load)
        .transpose()?;
    let ear = args.ear.prepare(policy.is_some())?;
    let checked = check_evidence(&args.input)?;
    let appraised = match &checked {
        Checked::Snp(v, kind) => {
            let a = policy
                .as_ref()
                .map(|p| tessera_policy::appraise(v.as_ref(), p));
            output::print_verified(v, kind, a.as_ref(), args.json);
            a.map(|a| (a, output::claims_json(v)))
        }
        Checked::Quote(v) => {
            let a = policy
                .as_ref()
                .map(|p| tessera_policy::appraise(v.as_ref(), p));
            tdx::print_verified(v, a.as_ref(), args.json);
            a.map(|a| (a, tdx::claims_json(v)))
        }
        Checked::SnpRejected(..) | Checked::QuoteRejected(..) => {
            checked.print_rejection(args.json);
            return Ok(ExitCode::from(1));
        }
    };
    let Some((appraisal, claims)) = appraised else {
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(ear) = ear {
        ear.issue(&appraisal, claims)?;
    }
    Ok(if appraisal.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn show(args: &ShowArgs) -> Result<ExitCode> {
    if let Some(quote) = read_quote(&args.evidence)? {
        return Ok(tdx::show(&quote, args.json));
    }
    match load_evidence(&args.evidence)? {
        LoadedEvidence::Parsed(e, kind) => {
            output::print_show(&e, kind, args.product, args.json);
            Ok(ExitCode::SUCCESS)
        }
        LoadedEvidence::Malformed(err) => {
            output::print_rejection(None, &err, args.json);
            Ok(ExitCode::from(1))
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match &cli.command {
        Command::Verify(args) => verify(args),
        Command::Show(args) => show(args),
        Command::Sim(SimCommand::Snp(args)) => sim::snp(args),
        Command::Sim(SimCommand::Tdx(args)) => tdx::sim(args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Token(cmd) => policy::token(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
