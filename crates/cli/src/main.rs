//! The `tessera` command: verify and simulate attestation evidence, run the key broker, administer
//! it, fetch secrets from it.
//!
//! A thin shell: arguments become a validated request, the crates do the work. Exit status:
//! 0 success (verified, done), 1 rejected (evidence rejected, the broker refused, an audit chain
//! broken, a demo outcome not as expected), 2 usage, I/O or connection error.
#![forbid(unsafe_code)]

mod admin;
mod collateral;
mod demo;
mod get_secret;
mod gitops;
mod guest;
mod output;
mod policy;
mod sealed_policy;
mod serve;
mod sim;
mod tdx;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tessera::{Evidence, EvidenceError, Form, Tee, VerifiedEvidence, Verifier, VerifyError};
use tessera_pki::{Certificate, Crl, UnixTime, load_certificates, load_crls};
use tessera_snp::SnpError;
use tessera_snp::abi::{CertTable, Product};
use tessera_snp::certs::ProductRoots;
use tessera_tdx::TdxError;

/// mimalloc instead of the system allocator: the broker allocates and frees many small,
/// short-lived buffers per request on two or more threads, where glibc's malloc spent about a
/// tenth of the server's CPU (the `broker` bench: about 4% less server CPU per flow with it).
/// Built with `no_thp` (the workspace's dependency): with transparent huge pages, each 2 MiB
/// region mimalloc touched counted whole in the resident set, 27 MB idle against 18 MB without,
/// and no difference in CPU per flow above the noise (interleaved bench rounds).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Largest evidence or certificate file read (bytes).
const MAX_FILE: u64 = 16 * 1024 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "tessera",
    version,
    about = "Verify confidential-computing attestation evidence and release secrets to attested workloads"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify evidence against the vendor chain (exit 0 verified, 1 rejected, 2 usage/I/O error).
    Verify(VerifyArgs),
    /// Decode evidence without verifying it: an SEV-SNP report (raw, extended, Azure HCL,
    /// configfs-tsm, KBS JSON) or an Intel TDX / SGX DCAP quote (raw or KBS JSON).
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
    /// Run the key broker (KBS 0.4.0 and the admin API).
    Serve(serve::ServeArgs),
    /// Manage the broker's secrets over its admin API.
    #[command(subcommand)]
    Secret(admin::SecretCommand),
    /// Read and verify the broker's audit log.
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Fetch a secret from a broker (for scripts): attest with evidence printed by a command.
    GetSecret(get_secret::GetSecretArgs),
    /// Inside a confidential VM: the TEE, its evidence, secrets and LUKS disks unlocked by
    /// attestation (`--simulate PKI_DIR` on any machine).
    #[command(subcommand)]
    Guest(guest::GuestCommand),
    /// Show the broker end to end: a temporary broker, simulated guests, refusals, the audit log.
    Demo(demo::DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) of tessera, or of one subcommand, to standard output.
    Man {
        /// The command, its words repeatable (`verify`, `secret put`, ...); the top-level page
        /// without it.
        command: Vec<String>,
    },
    /// Fetch, cache and bundle endorsements and collateral (AMD KDS, Intel PCS / a PCCS) for
    /// offline and air-gapped verification.
    #[command(subcommand)]
    Collateral(collateral::CollateralCommand),
}

/// The evidence and what verifies it (shared by `verify` and `policy from-evidence`).
#[derive(Args, Debug)]
pub(crate) struct EvidenceArgs {
    /// The evidence: a raw SNP report (1184 bytes), an extended report (report + certificate
    /// table), an Azure HCL report, a configfs-tsm report folder (outblob, auxblob), an Intel
    /// TDX / SGX DCAP quote, or the evidence JSON a KBS guest sends; `-` reads standard input.
    evidence: PathBuf,
    /// Certificates: DER or PEM (VCEK/VLEK, ASK/ASVK, ARK, bundles) or a certificate table.
    /// Repeatable.
    #[arg(long = "certs", value_name = "FILE")]
    certs: Vec<PathBuf>,
    /// CRLs (DER or PEM) to apply to the chain; each must be issued by a certificate on it.
    /// Repeatable.
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
    /// Verification time: RFC 3339 (`2025-06-05T03:45:00Z`), a date (`2025-06-05`, midnight
    /// UTC), Unix seconds, or `now` (the default).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The product; must agree with the chain and the report.
    #[arg(long, value_name = "PRODUCT", value_parser = product_parser(), ignore_case = true)]
    product: Option<Product>,
    /// DANGEROUS: also trust this root (PEM/DER) besides the embedded vendor roots (an ARK for
    /// SEV-SNP, a root CA for TDX/SGX). For simulator output and tests only. Repeatable.
    #[arg(long = "dangerous-test-root", value_name = "FILE")]
    dangerous_test_roots: Vec<PathBuf>,
    /// Endorsements and collateral fetched (`--fetch`) or from a cache or bundle
    /// (`--collateral-dir`) when the evidence and the files above lack them.
    #[command(flatten)]
    sources: collateral::VerifyCollateralArgs,
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
    /// The evidence: an SEV-SNP report (raw, extended, Azure HCL), a configfs-tsm report folder,
    /// an Intel TDX / SGX DCAP quote, or the evidence JSON a KBS guest sends; `-` reads stdin.
    evidence: PathBuf,
    /// The product used to decode TCB values when the report does not say (v2 reports).
    #[arg(long, value_name = "PRODUCT", value_parser = product_parser(), ignore_case = true)]
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

/// Whether `-` (standard input) was read already: a pipe can be read once only.
static STDIN_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The whole of `path` (`-` is standard input), read once, at most [`MAX_FILE`] bytes: the cap
/// applies while reading, so a pipe or a device with no size on disk cannot make it read more.
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    let limit = MAX_FILE.saturating_add(1);
    if path.as_os_str() == "-" {
        if STDIN_TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
            bail!("-: standard input can be given once only");
        }
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", path.display()))?;
    }
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE {
        bail!("{}: larger than {MAX_FILE} bytes", path.display());
    }
    Ok(bytes)
}

/// A key or other secret at `path` (`-` is standard input), at most `max` bytes, read once into
/// a buffer zeroized on drop that never grows by reallocation (see
/// [`tessera_broker::keyfile::read_zeroizing`]): no copy of it is left behind.
pub(crate) fn read_secret(path: &Path, max: u64) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    if path.as_os_str() != "-" {
        return admin::read_capped(path, max);
    }
    if STDIN_TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        bail!("-: standard input can be given once only");
    }
    let bytes = admin::read_stdin_zeroizing(max).context("reading standard input")?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        bail!("-: larger than {max} bytes");
    }
    Ok(bytes)
}

/// Read and detect the evidence at `path` (a file, `-` for standard input, or a configfs-tsm
/// folder), reading it once: `Ok(Err(..))` is the rejection when it is no evidence form (exit
/// 1), `Err` an I/O error (exit 2).
fn load_evidence(path: &Path) -> Result<Result<Evidence, Checked>> {
    let (bytes, parsed) = if path.as_os_str() != "-" && path.is_dir() {
        let outblob = read_bounded(&path.join("outblob"))?;
        let aux = path.join("auxblob");
        let auxblob = if aux.is_file() {
            Some(read_bounded(&aux)?)
        } else {
            None
        };
        let parsed = Evidence::from_tsm(&outblob, auxblob.as_deref());
        (outblob, parsed)
    } else {
        let bytes = read_bounded(path)?;
        let parsed = Evidence::from_bytes(&bytes);
        (bytes, parsed)
    };
    Ok(parsed.map_err(|err| undetected(&bytes, err)))
}

/// Certificates from a PEM/DER file, or from an extended-report certificate table.
pub(crate) fn load_cert_file(flag: &str, path: &Path) -> Result<Vec<Certificate>> {
    let (certs, _) = load_cert_file_and_crls(flag, path)?;
    Ok(certs)
}

/// Certificates from a PEM/DER file, or from an extended-report certificate table, and the
/// CRLs among a PEM file's blocks (a bundle of a chain and its CRL, as
/// `Endorsements::from_dir` reads it): a CRL there is applied, never dropped unseen.
pub(crate) fn load_cert_file_and_crls(
    flag: &str,
    path: &Path,
) -> Result<(Vec<Certificate>, Vec<Crl>)> {
    let bytes = read_bounded(path)?;
    let certs = certificates_in(path, &bytes)?;
    let crls = tessera_pki::crls_among_pem(&bytes)
        .with_context(|| format!("{flag} {}: a CRL block that is no CRL", path.display()))?;
    if certs.is_empty() {
        bail!(
            "{flag} {}: holds no certificate{}; give DER or PEM certificates or a certificate table",
            path.display(),
            if bytes.is_empty() {
                " (the file is empty)"
            } else {
                ""
            }
        );
    }
    Ok((certs, crls))
}

fn certificates_in(path: &Path, bytes: &[u8]) -> Result<Vec<Certificate>> {
    match load_certificates(bytes) {
        Ok(certs) => Ok(certs),
        Err(pem_der) => {
            let table = CertTable::parse(bytes)
                .map_err(|_| pem_der)
                .with_context(|| {
                    format!(
                        "{}: not PEM/DER certificates or a certificate table",
                        path.display()
                    )
                })?;
            Ok(table.certificates().into_iter().map(|(_, c)| c).collect())
        }
    }
}

fn load_crl_file(path: &Path) -> Result<Vec<Crl>> {
    let bytes = read_bounded(path)?;
    if bytes.is_empty() {
        bail!(
            "--crl {}: the file is empty; give DER or PEM CRLs",
            path.display()
        );
    }
    let crls = load_crls(&bytes).with_context(|| format!("--crl {}: not a CRL", path.display()))?;
    if crls.is_empty() {
        bail!(
            "--crl {}: holds no CRL; give DER or PEM CRLs",
            path.display()
        );
    }
    Ok(crls)
}

/// `--product`: the SEV-SNP products, listed in `--help` and in the error for any other value
/// (any ASCII case).
pub(crate) fn product_parser() -> impl clap::builder::TypedValueParser<Value = Product> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["milan", "genoa", "turin"])
        .try_map(|s: String| s.parse::<Product>())
}

/// `--at`: RFC 3339 (`2025-01-16T21:41:55Z`), a date (`2025-01-16`, midnight UTC), Unix
/// seconds (`1737063715`) or `now` (the default).
pub(crate) fn parse_at(at: Option<&str>) -> Result<UnixTime> {
    let Some(s) = at.map(str::trim) else {
        return Ok(UnixTime::now());
    };
    if s.eq_ignore_ascii_case("now") {
        return Ok(UnixTime::now());
    }
    if let Some(secs) = s
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| s.parse::<i64>().ok())
        .flatten()
    {
        return Ok(UnixTime::from_secs(secs));
    }
    let is_date = s.len() == 10 && s.bytes().filter(|b| *b == b'-').count() == 2;
    let text = if is_date {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    };
    UnixTime::parse_rfc3339(&text).with_context(|| {
        format!(
            "--at {s:?}: expected RFC 3339 (2025-01-16T21:41:55Z), a date (2025-01-16), Unix \
             seconds (1737063715) or now"
        )
    })
}

/// The SEV-SNP test roots `--dangerous-test-root` named, each ARK's product from its subject
/// (`ARK-Genoa`) or `--product`.
fn test_roots(
    roots: Vec<(&Path, Vec<Certificate>)>,
    product: Option<Product>,
) -> Result<Vec<ProductRoots>> {
    let mut out = Vec::new();
    let ark_product = |c: &Certificate| {
        c.subject()
            .contains("ARK-")
            .then(|| c.subject().rsplit("ARK-").next())
            .flatten()
            .and_then(|rest| rest.split([',', ' ']).next())
            .and_then(|p| p.parse::<Product>().ok())
    };
    for (path, certs) in roots {
        // A file of several roots (`tessera sim --pki DIR`'s root.pem holds the fake ARKs and
        // the fake Intel root): its ARKs are the SEV-SNP roots; the rest is for quotes.
        let holds_arks = certs.iter().any(|c| ark_product(c).is_some());
        for ark in certs {
            let named = ark_product(&ark);
            if named.is_none() && holds_arks {
                continue;
            }
            let Some(p) = named.or(product) else {
                bail!(
                    "{}: cannot tell the product of {}; pass --product",
                    path.display(),
                    ark.subject()
                );
            };
            out.push(ProductRoots {
                product: p,
                ark,
                asks: Vec::new(),
                asvks: Vec::new(),
            });
        }
    }
    eprintln!(
        "WARNING: --dangerous-test-root: trusting test roots besides AMD's; never use in production"
    );
    Ok(out)
}

/// Why evidence was rejected: it is no evidence form, it is not what the options are for, or a
/// verification check failed.
pub(crate) enum Rejection {
    /// Detection failed (check `parse`); the TEE when a quote header said.
    Evidence(Option<&'static str>, EvidenceError),
    /// `--collateral` was given for evidence that is not a quote.
    NotAQuote(Form),
    /// A verification check failed; with a hint on what to do (where to get a missing VCEK).
    Verify(Form, Tee, VerifyError, Option<String>),
}

/// The result of verifying evidence: verified, or rejected with the failed check.
pub(crate) enum Checked {
    Verified(Box<VerifiedEvidence>),
    Rejected(Rejection),
}

impl Checked {
    /// The rejection, in both of its forms; `None` when the evidence verified.
    pub(crate) fn rejection(&self) -> Option<output::Rejected> {
        let Self::Rejected(rejection) = self else {
            return None;
        };
        Some(match rejection {
            Rejection::Evidence(_, EvidenceError::Snp { form, source }) => {
                let kind = (*form == Form::SnpTsm).then_some(form.name());
                output::snp_rejection(kind, &SnpError::from(source.clone()), None)
            }
            Rejection::Evidence(tee, EvidenceError::Quote { source, form }) => tdx::rejection(
                tee.unwrap_or("tdx"),
                form.name(),
                &TdxError::from(source.clone()),
            ),
            Rejection::Evidence(tee, err) => {
                output::failure(*tee, None, (err.check(), err.field()), &err.to_string())
            }
            Rejection::NotAQuote(form) => output::failure(
                Some("snp"),
                Some(form.name()),
                ("parse", "evidence"),
                &format!(
                    "--collateral is Intel collateral for a TDX/SGX quote, but the evidence is \
                     SEV-SNP ({form}), not a quote"
                ),
            ),
            Rejection::Verify(form, _, VerifyError::Snp(err), hint) => {
                output::snp_rejection(Some(form.name()), err, hint.as_deref())
            }
            Rejection::Verify(form, tee, VerifyError::Tdx(err), _) => {
                tdx::rejection(tee.as_str(), form.name(), err)
            }
            Rejection::Verify(form, tee, err, _) => output::failure(
                Some(tee.as_str()),
                Some(form.name()),
                (err.check(), err.field()),
                &err.to_string(),
            ),
        })
    }

    /// Print the rejection on standard output (as JSON or as text); `false` when the evidence
    /// verified.
    pub(crate) fn print_rejection(&self, as_json: bool) -> bool {
        let Some(rejection) = self.rejection() else {
            return false;
        };
        rejection.print(as_json);
        true
    }
}

/// The TEE a quote header claims (`TEE Type` 0 SGX, else TDX), for a quote that did not parse.
fn tee_of_header(bytes: &[u8]) -> &'static str {
    match bytes.get(4..8) {
        Some([0, 0, 0, 0]) => "sgx",
        _ => "tdx",
    }
}

/// The rejection for evidence that is no form Tessera reads.
fn undetected(bytes: &[u8], err: EvidenceError) -> Checked {
    let tee = match &err {
        EvidenceError::Quote { .. } => Some(tee_of_header(bytes)),
        _ => None,
    };
    Checked::Rejected(Rejection::Evidence(tee, err))
}

/// Verify the evidence `args` name. Every file an option names is read first, so an I/O or
/// usage error (exit 2) is found before the evidence is judged (exit 1).
pub(crate) fn check_evidence(args: &EvidenceArgs) -> Result<Checked> {
    // Before anything is read: otherwise the first `-` read takes what was meant for another
    // (a report piped in but read as `--certs -`), and the error names the wrong input.
    let from_stdin = std::iter::once(&args.evidence)
        .chain(&args.certs)
        .chain(&args.crls)
        .chain(&args.collateral)
        .chain(&args.dangerous_test_roots)
        .filter(|p| p.as_os_str() == "-")
        .count();
    if from_stdin > 1 {
        bail!("-: standard input can be given once only ({from_stdin} arguments name it)");
    }
    let at = parse_at(args.at.as_deref())?;
    let mut certs = Vec::new();
    let mut crls = Vec::new();
    for path in &args.certs {
        let (found, bundled) = load_cert_file_and_crls("--certs", path)?;
        certs.extend(found);
        crls.extend(bundled);
    }
    for path in &args.crls {
        crls.extend(load_crl_file(path)?);
    }
    let collateral = args
        .collateral
        .as_deref()
        .map(tdx::load_collateral)
        .transpose()?;
    let mut roots = Vec::new();
    for path in &args.dangerous_test_roots {
        roots.push((
            path.as_path(),
            load_cert_file("--dangerous-test-root", path)?,
        ));
    }
    let evidence = match load_evidence(&args.evidence)? {
        Ok(e) => e,
        Err(rejection) => return Ok(rejection),
    };
    let (form, tee) = (evidence.form(), evidence.tee());
    let verifier = if evidence.quote().is_some() {
        if !args.certs.is_empty() || !args.crls.is_empty() || args.product.is_some() {
            bail!(
                "--certs, --crl and --product are for SEV-SNP; a quote carries its PCK chain and takes CRLs from --collateral"
            );
        }
        let root = match roots.as_slice() {
            [] => None,
            [(path, certs)] => Some(tdx::one_test_root(path, certs)?),
            _ => bail!("--dangerous-test-root: a quote takes one root"),
        };
        // What vets fetched collateral before the cache stores it: the same roots.
        let mut vetting = Verifier::builder();
        if let Some(root) = &root {
            vetting = vetting.dangerous_tdx_test_root(root.clone());
        }
        let vetting = vetting.build()?;
        let (collateral, fetched) = match (collateral, evidence.quote()) {
            (Some(c), _) => (Some(c), None),
            (None, Some(quote)) => {
                match collateral::tdx_collateral(
                    &args.sources,
                    quote,
                    &vetting,
                    args.allow_missing_crls,
                )? {
                    Some((c, fetched)) => (Some(c), fetched),
                    None => (None, None),
                }
            }
            (None, None) => (None, None),
        };
        let Some(collateral) = collateral else {
            bail!(
                "a TDX/SGX quote needs --collateral FILE|DIR, --collateral-dir DIR or --fetch (Intel collateral for its FMSPC)"
            );
        };
        let mut builder = Verifier::builder()
            .collateral(collateral)
            .allow_missing_crls(args.allow_missing_crls);
        if let Some(root) = root {
            builder = builder.dangerous_tdx_test_root(root);
        }
        if let Some(fetched) = fetched {
            fetched.vet();
        }
        builder.build()?
    } else {
        // Collateral for evidence that is not a quote: the evidence is not what the caller
        // meant to verify (a rejection, like evidence of no form).
        if collateral.is_some() {
            return Ok(Checked::Rejected(Rejection::NotAQuote(form)));
        }
        if args.allow_missing_crls {
            bail!("--allow-missing-crls is for TDX/SGX quotes");
        }
        let snp_roots = if roots.is_empty() {
            None
        } else {
            Some(test_roots(roots, args.product)?)
        };
        // What vets fetched endorsements before the cache stores them: the same roots.
        let vetting = Verifier::builder()
            .snp_product(args.product)
            .dangerous_snp_test_roots(snp_roots.clone().unwrap_or_default())
            .build()?;
        let mut fetched = None;
        if let Some(report) = evidence.snp_report() {
            // What the command line and the evidence supply is not asked for. With the
            // report's own VEK supplied, an item that is not there (the service's 404, a
            // directory without it) is a note and the verifier judges what there is; any other
            // failure (transport, a 503, a 429, a refused copy) is an error (exit 2), never a
            // verification without the CRL (see collateral::snp_endorsements).
            // (A VEK counts only when it is this report's: its kind, TCB and hwID. A stale VCEK
            // in a host's certificate table, or another chip's, does not stop the fetch.)
            let carried: Vec<Certificate> = evidence
                .certificates()
                .iter()
                .filter_map(|der| load_certificates(der).ok())
                .flatten()
                .collect();
            let supplied = collateral::Supplied {
                vek: certs.iter().chain(&carried).any(|c| {
                    tessera_snp::certs::is_vek_candidate(c)
                        && tessera_snp::certs::VekExtensions::from_certificate(c)
                            .is_ok_and(|ext| tessera::vek_is_for(&ext, report))
                }),
                crl: !crls.is_empty(),
            };
            if let Some((found, from_fetch)) = collateral::snp_endorsements(
                &args.sources,
                report,
                args.product,
                &vetting,
                supplied,
            )? {
                certs.extend(found.certificates);
                crls.extend(found.crls);
                fetched = from_fetch;
            }
        }
        let mut builder = Verifier::builder()
            .certificates(certs)
            .crls(crls)
            .snp_product(args.product);
        if let Some(snp_roots) = snp_roots {
            builder = builder.dangerous_snp_test_roots(snp_roots);
        }
        if let Some(fetched) = fetched {
            fetched.vet();
        }
        builder.build()?
    };
    Ok(match verifier.verify(&evidence, at) {
        Ok(v) => Checked::Verified(Box::new(v)),
        Err(err) => {
            let hint = match (&err, evidence.snp_report()) {
                (VerifyError::Snp(SnpError::MissingEndorsementKey { .. }), Some(report)) => Some(
                    collateral::missing_vek_hint(&args.sources, report, args.product),
                ),
                _ => None,
            };
            Checked::Rejected(Rejection::Verify(form, tee, err, hint))
        }
    })
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
    let Checked::Verified(v) = &checked else {
        checked.print_rejection(args.json);
        return Ok(ExitCode::from(1));
    };
    let appraisal = policy.as_ref().map(|p| v.appraise(p));
    // The token is written before anything is printed: when writing it fails, the one
    // outcome printed is that error (exit 2), not a verdict followed by it.
    if let (Some(ear), Some(appraisal)) = (ear, appraisal.as_ref()) {
        ear.issue(appraisal, v.claims())?;
    }
    if let Some(snp) = v.snp() {
        output::print_verified(snp, v.form().name(), appraisal.as_ref(), args.json);
    } else if let Some(quote) = v.quote() {
        tdx::print_verified(quote, v.form().name(), appraisal.as_ref(), args.json);
    }
    let Some(appraisal) = appraisal else {
        return Ok(ExitCode::SUCCESS);
    };
    Ok(if appraisal.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn show(args: &ShowArgs) -> Result<ExitCode> {
    let evidence = match load_evidence(&args.evidence)? {
        Ok(e) => e,
        Err(rejection) => {
            rejection.print_rejection(args.json);
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        // One builder, shared with the C API's decode (tessera::Evidence::show_json).
        say!("{}", evidence.show_json(args.product));
    } else if let Some(quote) = evidence.quote() {
        tdx::show(quote);
    } else if let Some(snp) = evidence.snp() {
        output::print_show(snp, evidence.form().name(), args.product);
    }
    Ok(ExitCode::SUCCESS)
}

/// `tessera man [COMMAND]`: the roff page of tessera or of one of its subcommands.
fn man(command: &[String]) -> Result<ExitCode> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // `secret put` and `secret-put` both name the page `tessera-secret-put(1)`.
    let words: Vec<&str> = command
        .iter()
        .flat_map(|w| w.split(['-', ' ']))
        .filter(|w| !w.is_empty())
        .collect();
    let mut path: Vec<String> = Vec::new();
    let mut rest = words.as_slice();
    while !rest.is_empty() {
        // A subcommand's own name may hold a dash (`rotate-kek`): the longest that names one.
        let found = (1..=rest.len()).rev().find_map(|n| {
            let name = rest.get(..n)?.join("-");
            cmd.find_subcommand(&name).cloned().map(|c| (n, c))
        });
        let Some((n, sub)) = found else {
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|c| c.get_name().to_owned())
                .collect();
            let under = std::iter::once("tessera")
                .chain(path.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            bail!(
                "no command {:?} in `{under}`; the commands there: {}",
                rest.join(" "),
                names.join(", ")
            );
        };
        path.push(sub.get_name().to_owned());
        rest = rest.get(n..).unwrap_or_default();
        cmd = sub;
    }
    if !path.is_empty() {
        cmd = cmd
            .display_name(format!("tessera-{}", path.join("-")))
            .bin_name(format!("tessera {}", path.join(" ")))
            .version(env!("CARGO_PKG_VERSION"));
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("rendering the manual page")?;
    write_stdout(&out).context("writing the manual page")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to standard output; a reader that stopped early (`| head`: a closed pipe)
/// is not an error.
fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    match std::io::Write::write_all(&mut std::io::stdout(), bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Whether `--json` is among the arguments (before a `--`): then every outcome, usage and I/O
/// errors included, is one JSON object on standard output.
fn wants_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// The one JSON object of an error (exit 2): `{"tee": null, "verdict": "error", "claims":
/// null, "errors": [{"check", "field", "message"}]}`, `check` being `usage` for a command line
/// clap refused (`field`: `arguments`) and `input` otherwise (a file that cannot be read,
/// options that do not fit together; `field`: `input`). `policy check` and `token verify`,
/// whose objects have a shape of their own, say it in theirs (`{"valid": false, "error"}`,
/// with `"warnings": []` for `policy check`), a command line clap refused included.
fn print_json_error(check: &str, message: &str) {
    let message = message.trim_end();
    let words: Vec<std::ffi::OsString> = std::env::args_os().skip(1).take(2).collect();
    // The top-level command takes no option but --help and --version: a subcommand's path is
    // the first words.
    let out = match words.iter().map(|w| w.to_str()).collect::<Vec<_>>()[..] {
        [Some("policy"), Some("check")] => {
            serde_json::json!({ "valid": false, "error": message, "warnings": [] })
        }
        [Some("token"), Some("verify")] => serde_json::json!({ "valid": false, "error": message }),
        _ => {
            let field = if check == "usage" {
                "arguments"
            } else {
                "input"
            };
            serde_json::json!({
                "tee": null,
                "verdict": "error",
                "claims": null,
                "errors": [{ "check": check, "field": field, "message": message }],
            })
        }
    };
    say!("{out}");
}

fn main() -> ExitCode {
    let code = run();
    // What the command printed went out whole, or the outcome is an I/O error (exit 2): a
    // policy or a sealed secret cut short on a full disk must not look written.
    match output::stdout_failure() {
        Some(e) => {
            eprintln!("error: writing standard output: {}", printable(&e));
            ExitCode::from(2)
        }
        None => code,
    }
}

fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let printed = e.print();
            if !e.use_stderr() {
                // `--help` and `--version` go to standard output.
                output::note_stdout(printed);
            }
            return if e.use_stderr() {
                if wants_json() {
                    let text = e.render().to_string();
                    print_json_error("usage", &text);
                }
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
        Command::Serve(args) => serve::run(args),
        Command::Secret(cmd) => admin::run_secret(cmd),
        Command::Audit(cmd) => admin::run_audit(cmd),
        Command::GetSecret(args) => get_secret::run(args),
        Command::Guest(cmd) => guest::run(cmd),
        Command::Demo(args) => demo::run(args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "tessera", &mut out);
            write_stdout(&out)
                .context("writing the completion script")
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Man { command } => man(command),
        Command::Collateral(cmd) => collateral::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", printable(&format!("{e:#}")));
            // A refusal by the broker is an answer (exit 1), not a usage or I/O error.
            if e.downcast_ref::<admin::Refused>().is_some() {
                ExitCode::from(1)
            } else {
                if wants_json() {
                    print_json_error("input", &format!("{e:#}"));
                }
                ExitCode::from(2)
            }
        }
    }
}

/// An error's text for a terminal: it can quote what a file held (a bundle's unknown variant,
/// a policy's field), so control characters other than a line break are written escaped, and
/// a hostile file cannot send escape sequences to the operator's terminal.
pub(crate) fn printable(text: &str) -> String {
    tessera::text::escape_controls(text, true)
}

#[cfg(test)]
mod help_tests {
    use super::Cli;

    /// Every option that may be given more than once says so in its help, in every subcommand.
    #[test]
    fn repeatable_options_say_so() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>, seen: &mut usize) {
            for arg in cmd.get_arguments() {
                let repeats = matches!(arg.get_action(), clap::ArgAction::Append);
                *seen += usize::from(repeats);
                let help = arg
                    .get_long_help()
                    .or_else(|| arg.get_help())
                    .map(ToString::to_string)
                    .unwrap_or_default();
                if repeats && !help.to_ascii_lowercase().contains("repeatable") {
                    missing.push(format!("{path} --{}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing, seen);
            }
        }
        let cmd = <Cli as clap::CommandFactory>::command();
        let (mut missing, mut seen) = (Vec::new(), 0);
        walk(&cmd, "tessera", &mut missing, &mut seen);
        assert!(
            missing.is_empty(),
            "no 'repeatable' in the help of: {missing:?}"
        );
        // --certs, --crl, --dangerous-test-root (verify, policy, serve...), --rtmr, --chip...
        assert!(seen >= 8, "only {seen} repeatable options found");
    }
}
