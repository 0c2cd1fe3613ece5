//! `tessera verify` / `show` for Intel TDX and SGX DCAP quotes, and `tessera sim tdx`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use tessera_pki::UnixTime;
use tessera_policy::Appraisal;
use tessera_tdx::abi::Quote;
use tessera_tdx::claims::{QuoteClaims, VerificationClaims};
use tessera_tdx::collateral::{Collateral, TcbStatus};
use tessera_tdx::sim::{CollateralSpec, PlatformSpec, QuoteSpec, SimPcs};
use tessera_tdx::{TdxError, Verified};

use crate::output::Rejected;
use crate::say;

/// Largest number of files read from a collateral folder.
const MAX_COLLATERAL_FILES: usize = 64;

/// Collateral from a bundle JSON file or a folder of Intel PCS responses.
pub(crate) fn load_collateral(path: &Path) -> Result<Collateral> {
    if path.is_dir() {
        let mut files = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        if entries.len() > MAX_COLLATERAL_FILES {
            bail!("{}: more than {MAX_COLLATERAL_FILES} files", path.display());
        }
        for p in entries {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, crate::read_bounded(&p)?));
        }
        Collateral::from_pcs_files(&files)
            .with_context(|| format!("{}: not a collateral folder", path.display()))
    } else {
        let bytes = crate::read_bounded(path)?;
        Collateral::from_bundle_json(&bytes)
            .with_context(|| format!("{}: not a collateral bundle", path.display()))
    }
}

/// The one root certificate `--dangerous-test-root` named for a quote.
pub(crate) fn one_test_root(
    path: &Path,
    certs: &[tessera_pki::Certificate],
) -> Result<tessera_pki::Certificate> {
    // A file of several roots (`tessera sim --pki DIR`'s root.pem) also holds fake ARKs, which
    // are SEV-SNP roots: the quote's root is what remains.
    let not_arks: Vec<&tessera_pki::Certificate> = certs
        .iter()
        .filter(|c| !c.subject().contains("CN=ARK-"))
        .collect();
    let [root] = not_arks.as_slice() else {
        bail!(
            "{}: expected one root certificate, got {}",
            path.display(),
            not_arks.len()
        );
    };
    eprintln!(
        "WARNING: --dangerous-test-root: trusting a test root besides Intel's; never use in production"
    );
    Ok((*root).clone())
}

fn print_td(c: &QuoteClaims) {
    if let Some(td) = &c.td {
        say!("  mr_td          {}", td.mr_td);
        for (i, r) in td.rtmr.iter().enumerate() {
            say!("  rtmr{i}          {r}");
        }
        say!("  report_data    {}", td.report_data);
        say!(
            "  td_attributes  {} (debug {}, sept_ve_disable {})",
            td.td_attributes.raw,
            yes(td.td_attributes.debug),
            yes(td.td_attributes.sept_ve_disable)
        );
        say!("  xfam           {}", td.xfam);
        say!("  mr_config_id   {}", td.mr_config_id);
        say!("  mr_owner       {}", td.mr_owner);
        say!("  mr_seam        {}", td.mr_seam);
        say!("  tee_tcb_svn    {}", td.tee_tcb_svn);
        if let Some(s) = &td.tee_tcb_svn2 {
            say!("  tee_tcb_svn2   {s}");
        }
        if let Some(s) = &td.mr_service_td {
            say!("  mr_service_td  {s}");
        }
    }
    if let Some(e) = &c.enclave {
        say!("  mr_enclave     {}", e.mr_enclave);
        say!("  mr_signer      {}", e.mr_signer);
        say!("  isv_prod_id    {}  isv_svn {}", e.isv_prod_id, e.isv_svn);
        say!("  attributes     {} (debug {})", e.attributes, yes(e.debug));
        say!("  report_data    {}", e.report_data);
    }
    say!(
        "  qe             isv_svn {} mr_signer {}",
        c.qe.isv_svn,
        c.qe.mr_signer
    );
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub(crate) fn print_verified(
    v: &Verified<Quote>,
    kind: &str,
    appraisal: Option<&Appraisal>,
    as_json: bool,
) {
    let at = v.verification().verified_at;
    let claims = QuoteClaims::new(v.quote());
    let ver = VerificationClaims::new(v.verification());
    if as_json {
        let mut out = json!({
            "tee": claims.tee,
            "verdict": "pass",
            "evidence_kind": kind,
            "tcb_status": ver.tcb_status,
            "advisory_ids": ver.advisory_ids,
            "claims": claims,
            "verification": ver,
            "errors": [],
        });
        // As in the SEV-SNP output: the time the evidence was verified at.
        if let Some(map) = out.get_mut("verification").and_then(Value::as_object_mut) {
            map.insert(String::from("verified_at"), Value::from(at.to_string()));
        }
        if let Some(a) = appraisal {
            crate::policy::extend_json(&mut out, a);
        }
        say!("{out}");
        return;
    }
    say!(
        "PASS  {} quote v{} verified, TCB status {}{}",
        claims.tee.to_uppercase(),
        claims.version,
        ver.tcb_status,
        if ver.td_relaunch_advised {
            " (TD relaunch advised)"
        } else {
            ""
        }
    );
    print_td(&claims);
    say!(
        "  tcb            platform {}, module {}, qe {}; tcbDate {}; evaluation data {}",
        ver.platform_tcb_status,
        ver.tdx_module_tcb_status.unwrap_or("-"),
        ver.qe_tcb_status,
        ver.tcb_date,
        ver.tcb_evaluation_data_number
    );
    if !ver.platform_advisories_listed {
        say!(
            "  advisories     {} (SGX TCB info version 2 does not list the platform level's)",
            if ver.advisory_ids.is_empty() {
                String::from("none listed")
            } else {
                ver.advisory_ids.join(", ")
            }
        );
    } else if !ver.advisory_ids.is_empty() {
        say!("  advisories     {}", ver.advisory_ids.join(", "));
    }
    for b in &ver.behind {
        say!(
            "  behind         {} is {}, newest level has {}",
            b.component,
            b.actual,
            b.required
        );
    }
    say!("  fmspc          {}  pce_id {}", ver.fmspc, ver.pce_id);
    say!("  pck chain      {}", ver.pck_chain.join("  <-  "));
    say!(
        "  revocation     {}",
        if ver.revocation_checked {
            "checked (PCK CRL and Root CA CRL applied)"
        } else {
            "NOT checked (collateral without CRLs, --allow-missing-crls)"
        }
    );
    if ver.dangerous_test_root {
        say!("  WARNING        verified under a TEST root, not Intel's");
    }
    say!("  collateral     valid until {}", ver.valid_until);
    say!("  verified at    {at}");
    if let Some(a) = appraisal {
        crate::policy::print_appraisal(a);
    }
}

/// `--tcb-status`: Intel's seven names, listed in `--help` and in the error for another value.
fn tcb_status_parser() -> impl clap::builder::TypedValueParser<Value = TcbStatus> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(TcbStatus::ALL.map(TcbStatus::as_str))
        .try_map(|s: String| TcbStatus::parse(&s))
}

/// The message for `err` in the CLI's words (its flags rather than the library's options).
fn message(err: &TdxError) -> String {
    match err {
        TdxError::MissingCrl { missing } => format!(
            "revocation: the collateral has no {missing}; pass --allow-missing-crls to verify \
             without revocation checking"
        ),
        _ => err.to_string(),
    }
}

/// A TDX/SGX rejection: the failed check, and Intel's TCB status when it decided.
pub(crate) fn rejection(tee: &str, kind: &str, err: &TdxError) -> Rejected {
    let text = message(err);
    let tcb_status = err.tcb_status_name();
    let advisories: Vec<String> = match err {
        TdxError::Tcb(tessera_tdx::tcb::TcbError::Revoked { advisory_ids, .. }) => {
            advisory_ids.clone()
        }
        _ => Vec::new(),
    };
    let json = json!({
        "tee": tee,
        "verdict": "fail",
        "evidence_kind": kind,
        "tcb_status": tcb_status,
        "advisory_ids": advisories,
        "claims": Value::Null,
        "errors": [{ "check": err.check(), "field": err.field(), "message": text }],
    });
    let mut lines = vec![text];
    lines.extend(
        tcb_status.map(|status| format!("tcb status     {status} (Intel's terminal result)")),
    );
    Rejected {
        json,
        text: crate::output::failed_text(err.check(), &lines),
    }
}

/// Decode a quote without verifying it.
pub(crate) fn show(quote: &Quote) {
    let claims = QuoteClaims::new(quote);
    say!(
        "{} quote v{} body type {} (NOT verified: use `tessera verify --collateral ...`)",
        claims.tee.to_uppercase(),
        claims.version,
        claims.body_type
    );
    print_td(&claims);
    if claims.trailing_padding > 0 {
        say!(
            "  padding        {} zero bytes after the signature data",
            claims.trailing_padding
        );
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Body {
    /// v4 quote, TD 1.0 body.
    Td10,
    /// v5 quote, TD 1.5 body.
    Td15,
    /// v3 SGX quote.
    Sgx,
}

#[derive(Args, Debug)]
pub(crate) struct TdxSimArgs {
    /// Output folder (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// REPORTDATA, exactly 64 bytes as hex.
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// MRTD, exactly 48 bytes as hex.
    #[arg(long, value_name = "HEX")]
    mr_td: Option<String>,
    /// RTMR value, `N=HEX` with N in 0..=3 and 48 bytes of hex; repeatable.
    #[arg(long, value_name = "N=HEX")]
    rtmr: Vec<String>,
    /// The TCB status the collateral gives the platform (Intel's names).
    #[arg(long, value_name = "STATUS", default_value = "UpToDate", value_parser = tcb_status_parser())]
    tcb_status: TcbStatus,
    /// Quote body.
    #[arg(long, value_enum, default_value = "td10")]
    body: Body,
    /// Keep the fake Intel PKI (keys included) in DIR: created on first use, reused after, so a
    /// broker started with `--dangerous-test-root DIR/root.pem --endorsements DIR/endorsements`
    /// accepts quotes made later. Without it every run makes a new PKI.
    #[arg(long, value_name = "DIR")]
    pki: Option<PathBuf>,
    /// Overwrite files already in --out.
    #[arg(long)]
    force: bool,
}

fn hex_exact<const N: usize>(name: &str, s: &str) -> Result<[u8; N]> {
    let bytes =
        hex::decode(s.trim_start_matches("0x")).with_context(|| format!("--{name}: not hex"))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("--{name}: expected {N} bytes, got {len}"))
}

/// `tessera sim tdx`.
pub(crate) fn sim(args: &TdxSimArgs) -> Result<ExitCode> {
    let mut spec = match args.body {
        Body::Td10 => QuoteSpec::tdx(),
        Body::Td15 => QuoteSpec::tdx15(),
        Body::Sgx => QuoteSpec::sgx(),
    };
    if matches!(args.body, Body::Sgx) && (args.mr_td.is_some() || !args.rtmr.is_empty()) {
        bail!("--mr-td and --rtmr are TD measurements; --body sgx has neither");
    }
    if let Some(h) = &args.report_data {
        spec.report_data = hex_exact::<64>("report-data", h)?;
    }
    if let Some(h) = &args.mr_td {
        spec.mr_td = hex_exact::<48>("mr-td", h)?;
    }
    for r in &args.rtmr {
        let (n, h) = r
            .split_once('=')
            .with_context(|| format!("--rtmr {r:?}: want N=HEX"))?;
        let n: usize = n
            .parse()
            .with_context(|| format!("--rtmr {r:?}: N is 0..=3"))?;
        let slot = spec
            .rtmr
            .get_mut(n)
            .with_context(|| format!("--rtmr {r:?}: N is 0..=3"))?;
        *slot = hex_exact::<48>("rtmr", h)?;
    }
    let status = args.tcb_status;
    let pcs = match &args.pki {
        Some(dir) => tessera_guest::sim::PkiDir::open_or_create(dir)?.pcs()?,
        None => SimPcs::new()?,
    };
    let platform = PlatformSpec::default();
    let pck = pcs.issue_pck(&platform)?;
    let quote = pcs.quote(&pck, &spec)?;
    // Collateral issued a day ago and valid for 30 days, so `verify` works without --at.
    let mut collateral_spec = CollateralSpec::matching(&platform, &spec, status);
    let now = UnixTime::now().as_secs();
    collateral_spec.issue_date = UnixTime::from_secs(now - 86_400);
    collateral_spec.next_update = UnixTime::from_secs(now + 29 * 86_400);
    let collateral = pcs.collateral_json(&collateral_spec)?;
    crate::sim::check_overwrite(
        &args.out,
        &["quote.bin", "collateral.json", "root.pem"],
        args.force,
    )?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let write = |name: &str, data: &[u8]| -> Result<()> {
        let path = args.out.join(name);
        std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))
    };
    write("quote.bin", &quote.to_bytes())?;
    write("collateral.json", collateral.as_bytes())?;
    write(
        "root.pem",
        tessera_pki::to_pem("CERTIFICATE", pcs.root().der()).as_bytes(),
    )?;
    let dir = args.out.display();
    say!("wrote {dir}/quote.bin, {dir}/collateral.json, {dir}/root.pem");
    say!(
        "verify with: tessera verify {dir}/quote.bin --collateral {dir}/collateral.json --dangerous-test-root {dir}/root.pem"
    );
    if let Some(pki) = &args.pki {
        say!(
            "the fake PKI stays in {}: a broker started with --dangerous-test-root {} --endorsements {} accepts what it signs",
            pki.display(),
            pki.join("root.pem").display(),
            pki.join("endorsements").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
