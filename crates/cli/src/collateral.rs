//! `tessera collateral fetch|pack|import|show`, and the `verify --fetch` /
//! `--collateral-dir` options: argument parsing over `tessera-collateral`.
//!
//! Wiring (in main.rs): a `Collateral` variant `#[command(subcommand)] Collateral(collateral::CollateralCommand)`
//! dispatched to [`run`]; `#[command(flatten)] collateral: collateral::VerifyCollateralArgs`
//! in `EvidenceArgs`, with [`snp_endorsements`] / [`tdx_collateral`] supplying the verifier's
//! inputs when `--fetch` or `--collateral-dir` is given.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tessera::{Endorsements, Verifier};
use tessera_collateral::assemble::{snp_endorsements_from_entries, tdx_collateral_from_entries};
use tessera_collateral::bundle;
use tessera_collateral::item::{
    items_for_chip, items_for_fmspc, items_for_quote, items_for_snp_report, parse_fmspc,
};
use tessera_collateral::{
    AmdSigner, ApiKey, Cache, Entry, FetchConfig, Fetcher, IntelTee, Item, KdsSource, PcsSource,
    SnpEndorsements, UpdateType,
};
use tessera_pki::UnixTime;
use tessera_server::startup::{entry_vetter, items_at_fault, refused_entries};
use tessera_snp::abi::{AttestationReport, Product, TcbParts};
use tessera_tdx::abi::Quote;
use tessera_tdx::collateral::Collateral;

/// Largest `--pcs-api-key-file` read (a key is 32 hex digits).
const MAX_API_KEY_FILE: u64 = 4096;

#[derive(Subcommand, Debug)]
pub(crate) enum CollateralCommand {
    /// Fetch what evidence (or an FMSPC, or a chip) needs into a bundle directory; only what
    /// is signed under the vendors' roots is kept (exit 0 all fetched, 1 some items failed,
    /// were refused or are stale, or --out holds refused entries, 2 usage or I/O error).
    Fetch(FetchArgs),
    /// Pack a bundle (or cache) directory into one file for transfer.
    Pack(PackArgs),
    /// Fill a cache from a bundle file or directory; an item not signed under the vendors'
    /// roots is refused, the rest imported (exit 0 all imported, 1 some refused, 2 usage or
    /// I/O error).
    Import(ImportArgs),
    /// List what a cache or bundle holds and when each item expires (with --check, exit 1
    /// when an item is expired or due for refresh, an entry file is unreadable, an item the
    /// manifest lists is missing from entries/, or nothing is held).
    Show(ShowArgs),
}

/// Where items come from and where the cache lives.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct SourceArgs {
    /// AMD KDS base URL (default: $TESSERA_KDS_URL, else AMD's service).
    #[arg(long, value_name = "URL")]
    kds_url: Option<String>,
    /// Intel PCS or PCCS base URL (default: $TESSERA_PCS_URL, else Intel's PCS).
    #[arg(long, value_name = "URL")]
    pcs_url: Option<String>,
    /// PCS subscription key (default: $TESSERA_PCS_API_KEY); sent to the PCS only. On the
    /// command line it is visible to other users (ps, /proc): prefer --pcs-api-key-file.
    #[arg(long, value_name = "KEY")]
    pcs_api_key: Option<String>,
    /// Read the PCS subscription key from FILE (surrounding whitespace trimmed); sent to the
    /// PCS only.
    #[arg(long, value_name = "FILE", conflicts_with = "pcs_api_key")]
    pcs_api_key_file: Option<PathBuf>,
    /// Per-request timeout in seconds, 1 to 300 (as the broker's `collateral.timeout_secs`).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=300)
    )]
    timeout: u64,
    /// Cache directory (default: $TESSERA_CACHE_DIR, else $XDG_CACHE_HOME/tessera/collateral).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl SourceArgs {
    fn fetcher(&self) -> Result<Fetcher> {
        let config = FetchConfig {
            timeout: Duration::from_secs(self.timeout),
            ..FetchConfig::default()
        };
        let mut fetcher = Fetcher::online(config)?;
        if let Some(url) = self.kds_url.clone().or_else(|| env("TESSERA_KDS_URL")) {
            fetcher = fetcher.with_kds(KdsSource::new(&url)?);
        }
        let mut pcs = match self.pcs_url.clone().or_else(|| env("TESSERA_PCS_URL")) {
            Some(url) => PcsSource::new(&url)?,
            None => PcsSource::intel(),
        };
        if let Some(key) = self.pcs_api_key()? {
            pcs = pcs.with_api_key(key);
        }
        Ok(fetcher.with_pcs(pcs))
    }

    /// The PCS subscription key: `--pcs-api-key-file` (read bounded into a zeroized buffer),
    /// `--pcs-api-key`, or `$TESSERA_PCS_API_KEY`; each checked by [`ApiKey::new`] (trimmed,
    /// one word of printable ASCII), as the broker checks its key file.
    fn pcs_api_key(&self) -> Result<Option<ApiKey>> {
        if let Some(path) = &self.pcs_api_key_file {
            let bytes = crate::read_secret(path, MAX_API_KEY_FILE)
                .with_context(|| format!("--pcs-api-key-file {}", path.display()))?;
            let key = std::str::from_utf8(&bytes)
                .map_err(|_| anyhow::anyhow!("not UTF-8"))
                .and_then(|text| ApiKey::new(text).map_err(anyhow::Error::from))
                .with_context(|| {
                    format!(
                        "--pcs-api-key-file {}: not a subscription key (one word of printable \
                         ASCII)",
                        path.display()
                    )
                })?;
            return Ok(Some(key));
        }
        match (&self.pcs_api_key, env("TESSERA_PCS_API_KEY")) {
            (Some(key), _) => Ok(Some(ApiKey::new(key).context("--pcs-api-key")?)),
            (None, Some(key)) => Ok(Some(ApiKey::new(&key).context("TESSERA_PCS_API_KEY")?)),
            (None, None) => Ok(None),
        }
    }

    fn cache_dir(&self) -> Result<PathBuf> {
        match self.cache_dir.clone().or_else(bundle::default_cache_dir) {
            Some(dir) => Ok(dir),
            None => bail!("no cache directory: pass --cache-dir or set TESSERA_CACHE_DIR"),
        }
    }

    /// The cache, online.
    fn online_cache(&self) -> Result<Cache> {
        Ok(Cache::open(&self.cache_dir()?)?.with_fetcher(self.fetcher()?))
    }
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub(crate) enum UpdateArg {
    /// Intel's standard TCB recovery schedule.
    #[default]
    Standard,
    /// Intel's early schedule.
    Early,
}

impl From<UpdateArg> for UpdateType {
    fn from(u: UpdateArg) -> Self {
        match u {
            UpdateArg::Standard => Self::Standard,
            UpdateArg::Early => Self::Early,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum TeeArg {
    /// Intel TDX.
    Tdx,
    /// Intel SGX.
    Sgx,
}

#[derive(Args, Debug)]
pub(crate) struct FetchArgs {
    /// An evidence file (SEV-SNP report, extended report, Azure HCL report, or DCAP quote).
    /// Repeatable.
    #[arg(long = "evidence", value_name = "FILE")]
    evidence: Vec<PathBuf>,
    /// An FMSPC (12 hex digits): TCB info, QE identity, both PCK CRLs and the Root CA CRL.
    /// Repeatable.
    #[arg(long = "fmspc", value_name = "HEX")]
    fmspc: Vec<String>,
    /// For --fmspc: TDX or SGX collateral.
    #[arg(long, value_enum, default_value = "tdx")]
    tee: TeeArg,
    /// A chip: PRODUCT:HWID:fmc=N,bl=N,tee=N,snp=N,ucode=N (fmc on Turin only). Repeatable.
    #[arg(long = "chip", value_name = "SPEC")]
    chip: Vec<String>,
    /// The product of SEV-SNP reports that do not say (version 2).
    #[arg(long, value_name = "PRODUCT", value_parser = crate::product_parser(), ignore_case = true)]
    product: Option<Product>,
    /// Intel's update schedule.
    #[arg(long, value_enum, default_value = "standard")]
    update: UpdateArg,
    /// The bundle directory to write.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Also trust this test root (a simulator's, `tessera sim --pki DIR`'s `DIR/root.pem`)
    /// when vetting what is fetched. Repeatable. Never in production.
    #[arg(long = "dangerous-test-root", value_name = "FILE")]
    dangerous_test_roots: Vec<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct PackArgs {
    /// The bundle (or cache) directory.
    dir: PathBuf,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    /// A bundle file or directory.
    bundle: PathBuf,
    /// Cache directory (default: $TESSERA_CACHE_DIR, else $XDG_CACHE_HOME/tessera/collateral).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Replace what the cache holds for each item of the bundle, even an entry issued later
    /// (by the issue time in its body: CRL thisUpdate, TCB info or identity issueDate,
    /// certificate notBefore), to recover from a damaged or forged entry; this can roll TCB
    /// info and CRLs back to the bundle's, so use a bundle you trust.
    #[arg(long)]
    replace: bool,
    /// Also trust this test root (a simulator's, `tessera sim --pki DIR`'s `DIR/root.pem`)
    /// when vetting what is imported. Repeatable. Never in production.
    #[arg(long = "dangerous-test-root", value_name = "FILE")]
    dangerous_test_roots: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct ShowArgs {
    /// A cache or bundle directory, or a bundle file.
    path: PathBuf,
    /// Judge expiry at this time: RFC 3339, a date (midnight UTC), Unix seconds, or `now`
    /// (the default).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// For monitoring: exit 1 when an item is expired or due for refresh (from a day before it
    /// expires, but not before half its life since it was fetched), an entry file is
    /// unreadable, an item the manifest lists is missing from entries/, or nothing is held; 0
    /// when every item is valid.
    #[arg(long)]
    check: bool,
}

/// Where `verify` gets endorsements and collateral when the evidence and files lack them.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct VerifyCollateralArgs {
    /// Fetch missing endorsements/collateral (AMD KDS, Intel PCS/PCCS) through the cache.
    #[arg(long, conflicts_with = "collateral_dir")]
    fetch: bool,
    /// Offline: take endorsements/collateral from this cache or bundle directory (one that
    /// holds no entry, such as an empty directory or a volume that did not mount, is refused).
    #[arg(long, value_name = "DIR")]
    collateral_dir: Option<PathBuf>,
    /// Intel's update schedule for fetched TCB info and QE identity.
    #[arg(long, value_enum, default_value = "standard")]
    update: UpdateArg,
    #[command(flatten)]
    source: SourceArgs,
}

impl VerifyCollateralArgs {
    /// The cache to read, `None` when neither `--fetch` nor `--collateral-dir` was given;
    /// online, it stores only what `vetting` accepts (see
    /// [`tessera_server::startup::entry_vetter`]).
    fn cache(&self, vetting: &Verifier) -> Result<Option<Cache>> {
        if self.fetch {
            let cache = self.source.online_cache()?;
            return Ok(Some(cache.with_vetter(entry_vetter(vetting.clone()))));
        }
        match &self.collateral_dir {
            // A directory holding no entry (empty, a volume that did not mount) is refused
            // (exit 2), as `pack` and `import` refuse one; a bundle's manifest gaps are said.
            Some(dir) => {
                let cache = Cache::open_existing(dir)?;
                warn_manifest_gaps(dir)?;
                Ok(Some(cache))
            }
            None => Ok(None),
        }
    }
}

/// What `--fetch` read through the online cache, for [`Fetched::vet`].
pub(crate) struct Fetched {
    cache: Cache,
    entries: Vec<(Item, Arc<Entry>)>,
    endorsements: Endorsements,
    vetting: Verifier,
}

impl Fetched {
    fn new(
        cache: Cache,
        entries: Vec<(Item, Arc<Entry>)>,
        endorsements: Endorsements,
        vetting: &Verifier,
    ) -> Self {
        Self {
            cache,
            entries,
            endorsements,
            vetting: vetting.clone(),
        }
    }

    /// Vet what was fetched as the broker does ([`Verifier::vet_endorsements`], at the time of
    /// the fetch: whether it is genuine, not whether it verifies at `--at`). Each CRL and
    /// Intel item was vetted before the cache stored it; a VCEK and the chain are vetted here,
    /// together. When they are refused, the items at fault are removed from the cache
    /// directory, so the next `--fetch` asks the service again instead of reading a forgery
    /// for as long as it looks valid (a VCEK: years). Verification then fails on its own.
    pub(crate) fn vet(&self) {
        let now = UnixTime::now();
        let Err(e) = self.vetting.vet_endorsements(&self.endorsements, now) else {
            return;
        };
        let vet = entry_vetter(self.vetting.clone());
        let faults = items_at_fault(&self.vetting, &vet, &self.entries, now);
        if faults.is_empty() {
            eprintln!(
                "tessera: note: the fetched endorsements are refused ({}); nothing removed",
                e.with_check()
            );
        } else {
            eprintln!(
                "tessera: note: the fetched endorsements are refused ({}); {} item(s) not kept",
                e.with_check(),
                faults.len()
            );
        }
        for (entry, why) in faults {
            if let Err(e) = self.cache.refuse(entry, &why) {
                eprintln!("tessera: warning: {e}");
            }
        }
    }
}

/// Whether `e` is a miss: the item is not there (not in the cache or bundle offline, or the
/// service answered 404, it has no such item). Only a miss may leave an item out: a transport
/// failure, another status (a 503, a 429), a refused copy or anything else stays an error. A
/// 404 is not authenticated (an intercepting proxy can answer it): a CRL left out so shows as
/// `revocation_checked: false`, which a policy's `snp.revocation = "required"` fails.
fn is_miss(e: &tessera_collateral::CollateralError) -> bool {
    matches!(
        e,
        tessera_collateral::CollateralError::NotCached { .. }
            | tessera_collateral::CollateralError::Status { status: 404, .. }
    )
}

/// Each of `items` from `cache`. An item for which `optional` gives a note (a reason) is left
/// out with that note when it is a miss ([`is_miss`]); any other failure is an error.
fn entries_of(
    cache: &Cache,
    items: Vec<Item>,
    now: UnixTime,
    optional: impl Fn(&Item) -> Option<&'static str>,
) -> Result<Vec<(Item, Arc<Entry>)>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match cache.get(&item, now) {
            Ok(entry) => out.push((item, entry)),
            Err(e) => match optional(&item) {
                Some(note) if is_miss(&e) => eprintln!("tessera: note: {e}; {note}"),
                Some(_) => {
                    return Err(anyhow::Error::from(e).context(format!(
                        "{} could not be had, and is left out only when it is not there (a \
                         404, or not in the directory)",
                        item.key()
                    )));
                }
                None => return Err(e.into()),
            },
        }
    }
    Ok(out)
}

/// What the command line and the evidence already supply, which `--fetch` and
/// `--collateral-dir` do not ask for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Supplied {
    /// A VCEK or VLEK (`--certs`, or carried by the evidence).
    pub(crate) vek: bool,
    /// A CRL (`--crl`).
    pub(crate) crl: bool,
}

/// What a note says when an SEV-SNP report's own VEK was supplied and an endorsement could not
/// be had.
const WITH_THE_VEK: &str =
    "endorsements not fetched, verifying with those given (the report's VEK among them)";

/// The SEV-SNP endorsements for `report` from `--fetch` / `--collateral-dir`, less what
/// `supplied` has (the VCEK, the CRL; the chain is always read: test roots may not hold the
/// ASK); `None` when neither flag was given or nothing is lacking. With `--fetch` (what is
/// fetched vetted by `vetting` before it is stored), what to vet them with
/// ([`Fetched::vet`]). With the report's own VEK supplied, an item that is not there (a 404,
/// or not in the directory) is left out with a note.
///
/// # Errors
/// When the product is unknown, or an item cannot be fetched or is not in the directory (with
/// the VEK supplied: any failure but a miss, such as a transport error, a 503, a 429 or a
/// refused copy).
pub(crate) fn snp_endorsements(
    args: &VerifyCollateralArgs,
    report: &AttestationReport,
    product: Option<Product>,
    vetting: &Verifier,
    supplied: Supplied,
) -> Result<Option<(SnpEndorsements, Option<Fetched>)>> {
    let Some(cache) = args.cache(vetting)? else {
        return Ok(None);
    };
    // A version-2 report names no product: with its VEK supplied, nothing can be asked for
    // (as for a miss: a note, and the verifier judges what there is); a product given that
    // the report's CPUID contradicts stays an error.
    if supplied.vek && product.is_none() && report.cpuid().is_none() {
        eprintln!(
            "tessera: note: the report does not say its product (version 2) and no --product \
             was given; {WITH_THE_VEK}"
        );
        return Ok(None);
    }
    let product = report_product(report, product)?;
    // With the VEK supplied, the chain and CRL are named without it (a masked CHIP_ID
    // cannot name a VCEK, and is no reason not to read the chain).
    let all = if supplied.vek {
        let signer = match report.signer_info().signing_key() {
            tessera_snp::abi::SigningKey::Vlek => AmdSigner::Vlek,
            _ => AmdSigner::Vcek,
        };
        vec![
            Item::AmdChain { product, signer },
            Item::AmdCrl { product, signer },
        ]
    } else {
        items_for_snp_report(report, product)?
    };
    let items: Vec<Item> = all
        .into_iter()
        .filter(|item| !(supplied.crl && matches!(item, Item::AmdCrl { .. })))
        .collect();
    let now = UnixTime::now();
    // With the report's own VEK supplied, an item that is not there (a chain or CRL the
    // directory lacks, one the service does not have) is a note and the verifier judges what
    // there is; any other failure (a transport error, a 503, a 429, a refused forgery) is an
    // error, not a verification without the CRL.
    let entries = entries_of(&cache, items, now, |_| supplied.vek.then_some(WITH_THE_VEK))?;
    let bare: Vec<Arc<Entry>> = entries.iter().map(|(_, e)| Arc::clone(e)).collect();
    let found = snp_endorsements_from_entries(&bare)?;
    let fetched = args.fetch.then(|| {
        let mut endorsements = Endorsements::new();
        endorsements.add_certificates(found.certificates.iter().cloned());
        endorsements.add_crls(found.crls.iter().cloned());
        Fetched::new(cache, entries, endorsements, vetting)
    });
    Ok(Some((found, fetched)))
}

/// The TDX/SGX collateral for `quote` from `--fetch` / `--collateral-dir`; `None` when
/// neither was given. With `crls_optional` (`--allow-missing-crls`) a CRL that cannot be had
/// is left out. With `--fetch` (what is fetched vetted by `vetting` before it is stored), what
/// to vet it with ([`Fetched::vet`]).
///
/// # Errors
/// When an item cannot be fetched or is not in the directory.
pub(crate) fn tdx_collateral(
    args: &VerifyCollateralArgs,
    quote: &Quote,
    vetting: &Verifier,
    crls_optional: bool,
) -> Result<Option<(Collateral, Option<Fetched>)>> {
    let Some(cache) = args.cache(vetting)? else {
        return Ok(None);
    };
    let update = args.update.into();
    let now = UnixTime::now();
    let entries = entries_of(&cache, items_for_quote(quote, update)?, now, |item| {
        (crls_optional && matches!(item, Item::PckCrl { .. } | Item::RootCaCrl))
            .then_some("verifying without it (--allow-missing-crls)")
    })?;
    let bare: Vec<Arc<Entry>> = entries.iter().map(|(_, e)| Arc::clone(e)).collect();
    let found = tdx_collateral_from_entries(&bare)?;
    let fetched = args.fetch.then(|| {
        let mut endorsements = Endorsements::new();
        endorsements.add_collateral(found.clone());
        Fetched::new(cache, entries, endorsements, vetting)
    });
    Ok(Some((found, fetched)))
}

/// Where to get the endorsement key a report needs when none was supplied: for a VCEK, the
/// AMD KDS URL for this chip and REPORTED_TCB (from `--kds-url` / `$TESSERA_KDS_URL`, else
/// AMD's); for a VLEK, that the cloud provider holds it.
pub(crate) fn missing_vek_hint(
    args: &VerifyCollateralArgs,
    report: &AttestationReport,
    product: Option<Product>,
) -> String {
    use tessera_snp::abi::SigningKey;
    if report.signer_info().signing_key() == SigningKey::Vlek {
        return String::from(
            "a VLEK is issued to the cloud provider, not served per chip by AMD KDS: take it \
             from the provider (often in the extended report's certificate table) and pass it \
             with --certs",
        );
    }
    let Ok(product) = report_product(report, product) else {
        return String::from(
            "the report does not say its product (version 2): pass --product to verify with \
             --fetch, or get the VCEK from AMD KDS (https://kdsintf.amd.com/vcek/v1/PRODUCT/\
             CHIP_ID?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..) and pass it with --certs",
        );
    };
    let kds = args
        .source
        .kds_url
        .clone()
        .or_else(|| env("TESSERA_KDS_URL"))
        .and_then(|url| KdsSource::new(&url).ok())
        .unwrap_or_else(KdsSource::amd);
    let tcb = report.reported_tcb().decode(product);
    match Item::vcek(product, &report.raw().chip_id, tcb)
        .ok()
        .and_then(|item| kds.url(&item))
    {
        Some(url) => format!(
            "get this chip's VCEK for its REPORTED_TCB from {url} and pass it with --certs, \
             or verify with --fetch (or --collateral-dir DIR offline)"
        ),
        None => String::from(
            "the report's CHIP_ID is masked, so AMD KDS cannot be asked for its VCEK: take the \
             VCEK from the host (the extended report's certificate table) and pass it with --certs",
        ),
    }
}

fn report_product(report: &AttestationReport, given: Option<Product>) -> Result<Product> {
    match (report.cpuid().and_then(Product::from_cpuid), given) {
        (Some(p), Some(g)) if p != g => bail!("--product {g} but the report's CPUID says {p}"),
        (Some(p), _) | (None, Some(p)) => Ok(p),
        (None, None) => bail!("the report does not say its product (version 2): pass --product"),
    }
}

/// Run a `collateral` subcommand.
///
/// # Errors
/// Usage and I/O errors (exit 2 in main).
pub(crate) fn run(cmd: &CollateralCommand) -> Result<ExitCode> {
    match cmd {
        CollateralCommand::Fetch(args) => fetch(args),
        CollateralCommand::Pack(args) => {
            warn_manifest_gaps(&args.dir)?;
            refuse_empty(&args.dir, "pack")?;
            let n = bundle::pack_to_file(&args.dir, &args.out, UnixTime::now())?;
            eprintln!("wrote {} ({n} bytes)", args.out.display());
            Ok(ExitCode::SUCCESS)
        }
        CollateralCommand::Import(args) => {
            let dir = SourceArgs {
                cache_dir: args.cache_dir.clone(),
                ..SourceArgs::default()
            }
            .cache_dir()?;
            // Before the cache is made: a bundle that is not there leaves nothing behind.
            if !args
                .bundle
                .try_exists()
                .with_context(|| args.bundle.display().to_string())?
            {
                bail!(
                    "{}: no such bundle file or directory",
                    args.bundle.display()
                );
            }
            // A file that is no JSON at all (a PEM, a report) is named as not a bundle, not by
            // the JSON parser's first complaint.
            if args.bundle.is_file() && !starts_like_json(&args.bundle) {
                bail!(
                    "{}: not a collateral bundle (a JSON file made by `tessera collateral pack`, \
                     or a bundle directory made by `tessera collateral fetch --out`)",
                    args.bundle.display()
                );
            }
            warn_manifest_gaps(&args.bundle)?;
            refuse_empty(&args.bundle, "import")?;
            let vetting = vetting_verifier(&args.dangerous_test_roots)?;
            let cache = Cache::open(&dir)?;
            let now = UnixTime::now();
            let report = bundle::import_vetted(
                &args.bundle,
                &cache,
                now,
                args.replace,
                &vetter(&vetting, &cache, now),
            )?;
            // One line per item on stdout, as `fetch` prints them; the summary on stderr.
            for key in &report.imported {
                if report.expired.contains(key) {
                    crate::say!("imported {key}  (already expired)");
                } else {
                    crate::say!("imported {key}");
                }
            }
            for key in &report.unchanged {
                crate::say!("held     {key}  (the very copy: unchanged)");
            }
            for key in &report.kept_newer {
                crate::say!(
                    "KEPT     {key}: the cache holds newer collateral for it (--replace replaces it)"
                );
            }
            for (key, why) in &report.refused {
                crate::say!("REFUSED  {key}: {why}");
            }
            eprintln!(
                "imported {} items into {} ({} already expired; {} held already, unchanged)",
                report.imported.len(),
                dir.display(),
                report.expired.len(),
                report.unchanged.len()
            );
            Ok(if report.refused.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        CollateralCommand::Show(args) => show(args),
    }
}

fn items_of_evidence(
    path: &Path,
    product: Option<Product>,
    update: UpdateType,
) -> Result<Vec<Item>> {
    let bytes = crate::read_bounded(path)?;
    let evidence = tessera::Evidence::from_bytes(&bytes)
        .with_context(|| format!("{}: not evidence Tessera reads", path.display()))?;
    if let Some(quote) = evidence.quote() {
        return Ok(items_for_quote(quote, update)?);
    }
    let report = evidence.snp_report().with_context(|| {
        format!(
            "{}: neither an SEV-SNP report nor a DCAP quote",
            path.display()
        )
    })?;
    let product = report_product(report, product).with_context(|| path.display().to_string())?;
    Ok(items_for_snp_report(report, product)?)
}

/// `PRODUCT:HWID:fmc=N,bl=N,tee=N,snp=N,ucode=N`.
fn items_of_chip(spec: &str) -> Result<Vec<Item>> {
    let mut parts = spec.splitn(3, ':');
    let (Some(product), Some(hwid), Some(spls)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("--chip {spec:?}: expected PRODUCT:HWID:bl=N,tee=N,snp=N,ucode=N[,fmc=N]");
    };
    let product: Product = product
        .parse()
        .with_context(|| format!("--chip {spec:?}"))?;
    let hwid = tessera_pki::from_hex(hwid.as_bytes())
        .with_context(|| format!("--chip {spec:?}: the hwID is not hex"))?;
    let mut tcb = TcbParts {
        fmc: None,
        bootloader: 0,
        tee: 0,
        snp: 0,
        microcode: 0,
    };
    // Each SPL given once; bl, tee, snp and ucode always (a left-out one is not 0: the VCEK
    // asked for would be another TCB's).
    let mut seen: Vec<&str> = Vec::new();
    for field in spls.split(',') {
        let (name, value) = field
            .split_once('=')
            .with_context(|| format!("--chip {spec:?}: {field:?} is not NAME=N"))?;
        let value: u8 = value
            .parse()
            .with_context(|| format!("--chip {spec:?}: {field:?}"))?;
        if seen.contains(&name) {
            bail!("--chip {spec:?}: {name} given twice");
        }
        match name {
            "fmc" => tcb.fmc = Some(value),
            "bl" => tcb.bootloader = value,
            "tee" => tcb.tee = value,
            "snp" => tcb.snp = value,
            "ucode" => tcb.microcode = value,
            _ => bail!("--chip {spec:?}: unknown SPL {name:?} (fmc, bl, tee, snp, ucode)"),
        }
        seen.push(name);
    }
    let missing: Vec<&str> = ["bl", "tee", "snp", "ucode"]
        .into_iter()
        .filter(|n| !seen.contains(n))
        .collect();
    if !missing.is_empty() {
        bail!("--chip {spec:?}: {} missing", missing.join(", "));
    }
    Ok(items_for_chip(product, &hwid, tcb)?)
}

fn fetch(args: &FetchArgs) -> Result<ExitCode> {
    let update = UpdateType::from(args.update);
    let mut items: Vec<Item> = Vec::new();
    let mut add = |more: Vec<Item>| {
        for item in more {
            if !items.contains(&item) {
                items.push(item);
            }
        }
    };
    for path in &args.evidence {
        add(items_of_evidence(path, args.product, update)?);
    }
    let tee = match args.tee {
        TeeArg::Tdx => IntelTee::Tdx,
        TeeArg::Sgx => IntelTee::Sgx,
    };
    for hex in &args.fmspc {
        add(items_for_fmspc(tee, parse_fmspc(hex)?, update));
    }
    for spec in &args.chip {
        add(items_of_chip(spec)?);
    }
    if items.is_empty() {
        bail!("nothing to fetch: give --evidence, --fmspc or --chip");
    }
    let vetting = vetting_verifier(&args.dangerous_test_roots)?;
    let cache = args
        .source
        .online_cache()?
        .with_vetter(entry_vetter(vetting.clone()));
    let now = UnixTime::now();
    let (report, manifest) = bundle::fetch_into_bundle_vetted(
        &cache,
        &items,
        &args.out,
        now,
        &vetter(&vetting, &cache, now),
    )?;
    if args.json {
        let failed: Vec<_> = report
            .failed
            .iter()
            .map(|(item, e)| json!({ "key": item.key(), "error": e.to_string() }))
            .collect();
        let pairs = |list: &[(String, String)]| -> Vec<serde_json::Value> {
            list.iter()
                .map(|(key, why)| json!({ "key": key, "reason": why }))
                .collect()
        };
        let items = manifest.as_ref().map(|m| &m.items);
        crate::say!(
            "{}",
            json!({
                "bundle": args.out.display().to_string(),
                "written": manifest.is_some(),
                "items": items,
                "cached": report.cached,
                "stale": pairs(&report.stale),
                "failed": failed,
                "refused_held": pairs(&report.refused_held),
                "replaced_held": pairs(&report.replaced_held),
                "kept_held": report.kept_held,
            })
        );
    } else {
        for entry in &report.fetched {
            let key = entry.item().key();
            let until = entry.valid_until();
            if let Some((_, why)) = report.stale.iter().find(|(k, _)| *k == key) {
                crate::say!(
                    "STALE    {key}  valid until {until}: due, but no newer copy could be had ({why}); the held one is in the bundle"
                );
            } else if report.cached.contains(&key) {
                crate::say!("cached   {key}  valid until {until}");
            } else {
                crate::say!("fetched  {key}  valid until {until}");
            }
        }
        for (_, e) in &report.failed {
            crate::say!("FAILED   {e}");
        }
        for (key, why) in &report.refused_held {
            crate::say!("REFUSED  {key}, held by {}: {why}", args.out.display());
        }
        for key in &report.kept_held {
            match report.stale.iter().find(|(k, _)| k == key) {
                Some((_, why)) => crate::say!(
                    "KEPT     {key}: {} holds a copy issued later than the one this run got; it stays, but the refresh failed ({why})",
                    args.out.display()
                ),
                None => crate::say!(
                    "KEPT     {key}: {} holds a copy issued later than the one this run got; it stays",
                    args.out.display()
                ),
            }
        }
        for (key, why) in &report.replaced_held {
            crate::say!(
                "REPLACED {key}: the copy {} held was refused ({why})",
                args.out.display()
            );
        }
        match &manifest {
            Some(manifest) => {
                let others = manifest.items.len().saturating_sub(report.fetched.len());
                if others > 0 {
                    eprintln!(
                        "the bundle also holds {others} item(s) fetched into it before (vetted again)"
                    );
                }
                eprintln!("bundle: {}", args.out.display());
            }
            None if report.refused_held.is_empty() => eprintln!(
                "nothing written: nothing could be fetched (above), and {} was not made",
                args.out.display()
            ),
            None => eprintln!(
                "nothing written: {} holds entries the verifier refuses (above); delete them \
                 or fetch into another directory (a simulator's root needs --dangerous-test-root)",
                args.out.display()
            ),
        }
    }
    Ok(
        if report.failed.is_empty() && report.refused_held.is_empty() && report.stale.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

/// What vets the collateral `fetch` and `import` keep, as the broker vets what it fetches:
/// the vendors' roots built into Tessera, and the test roots named.
fn vetting_verifier(test_roots: &[PathBuf]) -> Result<Verifier> {
    let mut builder = Verifier::builder();
    for path in test_roots {
        for cert in crate::load_cert_file("--dangerous-test-root", path)? {
            builder = builder
                .dangerous_test_root(cert)
                .with_context(|| path.display().to_string())?;
        }
    }
    if !test_roots.is_empty() {
        eprintln!(
            "WARNING: --dangerous-test-root: trusting test roots besides the vendors'; never use in production"
        );
    }
    Ok(builder.build()?)
}

/// The entries of a bundle `vetting` refuses (see
/// [`tessera_server::startup::refused_entries`]); a VCEK whose chain the bundle lacks is
/// judged with the chain `cache` holds for its product.
fn vetter<'a>(
    vetting: &'a Verifier,
    cache: &'a Cache,
    now: UnixTime,
) -> impl Fn(&[Arc<Entry>]) -> Vec<(usize, String)> + 'a {
    move |entries: &[Arc<Entry>]| {
        let mut held: Vec<Arc<Entry>> = Vec::new();
        for entry in entries {
            if let Item::Vcek { product, .. } = entry.item() {
                let chain = Item::AmdChain {
                    product: *product,
                    signer: AmdSigner::Vcek,
                };
                if let Ok(Some(found)) = cache.lookup(&chain)
                    && !held.iter().any(|h| h.item() == found.item())
                {
                    held.push(found);
                }
            }
        }
        let chained = |product: &Product| {
            entries.iter().chain(&held).any(|e| {
                matches!(
                    e.item(),
                    Item::AmdChain { product: p, signer: AmdSigner::Vcek } if p == product
                )
            })
        };
        refused_entries(vetting, entries, &held, now)
            .into_iter()
            .map(|(i, why)| match entries.get(i).map(|e| e.item()) {
                // Say what is missing, not only that no chain was found.
                Some(Item::Vcek { product, .. })
                    if !chained(product) && why.contains("no chain to a trusted root") =>
                {
                    (
                        i,
                        format!(
                            "{why}; neither the bundle nor the cache holds the {product} ASK/ARK \
                         chain (amd-chain-{}-vcek) to judge it with",
                            product.to_string().to_ascii_lowercase()
                        ),
                    )
                }
                _ => (i, why),
            })
            .collect()
    }
}

/// An error when `path` holds no entry at all (an empty directory, a mount that failed, an
/// empty bundle file): there is nothing to `what`, and saying so beats "0 items".
/// Whether the file's first non-blank byte (within its first 4 KiB) opens a JSON object; a
/// file that cannot be read counts as one (the reader then says why).
fn starts_like_json(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 4096];
    let Ok(n) = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) else {
        return true;
    };
    head.get(..n)
        .and_then(|h| h.trim_ascii_start().first().copied())
        .is_none_or(|b| b == b'{')
}

fn refuse_empty(path: &Path, what: &str) -> Result<()> {
    let (entries, unreadable) = bundle::read_entries_and_faults(path)?;
    if entries.is_empty() && unreadable.is_empty() {
        bail!(
            "{}: holds no collateral entries: nothing to {what}",
            path.display()
        );
    }
    Ok(())
}

/// A warning on stderr for each item a bundle directory's manifest lists that its `entries/`
/// does not hold; those keys.
fn warn_manifest_gaps(path: &Path) -> Result<Vec<String>> {
    match bundle::manifest_gaps(path) {
        Ok(keys) => {
            for key in &keys {
                eprintln!(
                    "tessera: warning: {}: the manifest lists {key}, which entries/ does not hold",
                    path.display()
                );
            }
            Ok(keys)
        }
        // The entries are what is read; a manifest that cannot be compared is only said.
        Err(e) => {
            eprintln!("tessera: warning: {e}");
            Ok(Vec::new())
        }
    }
}

fn show(args: &ShowArgs) -> Result<ExitCode> {
    let at = crate::parse_at(args.at.as_deref())?;
    let gaps = warn_manifest_gaps(&args.path)?;
    let (summaries, unreadable) = bundle::show_with_faults(&args.path, at)?;
    if args.json {
        let unreadable: Vec<String> = unreadable.iter().map(ToString::to_string).collect();
        crate::say!(
            "{}",
            json!({ "at": at.to_string(), "items": summaries, "unreadable": unreadable, "missing": gaps })
        );
    } else {
        for s in &summaries {
            let state = match s.freshness {
                bundle::Freshness::Valid => "valid",
                bundle::Freshness::RefreshDue => "refresh-due",
                bundle::Freshness::Expired => "EXPIRED",
            };
            crate::say!(
                "{:<11} {}  until {} ({})  fetched {} from {}",
                state,
                s.manifest.key,
                s.manifest.valid_until,
                s.manifest.valid_until_field,
                s.manifest.fetched_at,
                crate::printable(&s.manifest.source)
            );
        }
        for e in &unreadable {
            crate::say!("UNREADABLE  {}", crate::printable(&e.to_string()));
        }
        if summaries.is_empty() && unreadable.is_empty() {
            crate::say!("(empty)");
        }
    }
    if !args.check {
        return Ok(ExitCode::SUCCESS);
    }
    let count = |f: bundle::Freshness| summaries.iter().filter(|s| s.freshness == f).count();
    let (expired, due) = (
        count(bundle::Freshness::Expired),
        count(bundle::Freshness::RefreshDue),
    );
    let mut failed = Vec::new();
    if summaries.is_empty() {
        failed.push(String::from("nothing is held"));
    }
    if expired + due > 0 {
        failed.push(format!(
            "{expired} item(s) expired, {due} due for refresh (fetch and import a new bundle)"
        ));
    }
    if !unreadable.is_empty() {
        failed.push(format!(
            "{} entry file(s) unreadable (delete them or import over them)",
            unreadable.len()
        ));
    }
    if !gaps.is_empty() {
        failed.push(format!(
            "{} item(s) the manifest lists are missing from entries/",
            gaps.len()
        ));
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("tessera: check failed: {}", failed.join("; "));
    Ok(ExitCode::from(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The long help of `collateral SUB`, flags included.
    fn long_help(sub: &str) -> String {
        let mut cmd = CollateralCommand::augment_subcommands(clap::Command::new("collateral"));
        cmd.find_subcommand_mut(sub)
            .unwrap()
            .render_long_help()
            .to_string()
    }

    /// The help says the rules the code follows: `import --replace` is about the issue time
    /// (the rule `import` keeps newer copies by), and `show --check` fails on unreadable
    /// files and manifest gaps too, and counts an item due from a day before its end but not
    /// before half its life.
    #[test]
    fn the_help_says_what_the_code_does() {
        let import = long_help("import");
        assert!(import.contains("issued later"), "{import}");
        assert!(!import.contains("valid for longer"), "{import}");
        let show = long_help("show");
        for said in ["unreadable", "manifest", "half its life", "nothing is held"] {
            assert!(show.contains(said), "{said}: {show}");
        }
        let top = CollateralCommand::augment_subcommands(clap::Command::new("collateral"))
            .render_long_help()
            .to_string();
        assert!(top.contains("unreadable"), "{top}");
    }

    /// `--pcs-api-key-file`: the key trimmed; an empty file, a key of several words or lines,
    /// or a missing file refused.
    #[test]
    fn the_pcs_api_key_comes_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pcs.key");
        let args = SourceArgs {
            pcs_api_key_file: Some(path.clone()),
            ..SourceArgs::default()
        };
        std::fs::write(&path, "  0123abcd\n").unwrap();
        assert!(args.pcs_api_key().unwrap() == Some(ApiKey::new("0123abcd").unwrap()));
        for bad in ["", " \n", "ab cd", "ab\ncd\n", "\u{1b}[2J"] {
            std::fs::write(&path, bad).unwrap();
            let e = args.pcs_api_key().unwrap_err();
            assert!(
                format!("{e:#}").contains("not a subscription key"),
                "{bad:?}: {e:#}"
            );
            // Nor is what the file held echoed.
            assert!(bad.trim().is_empty() || !format!("{e:#}").contains(bad.trim()));
        }
        std::fs::write(&path, "k".repeat(4097)).unwrap();
        assert!(args.pcs_api_key().is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(args.pcs_api_key().is_err());
        // The flag, when no file is named.
        let args = SourceArgs {
            pcs_api_key: Some("from-argv".to_owned()),
            ..SourceArgs::default()
        };
        assert!(args.pcs_api_key().unwrap() == Some(ApiKey::new("from-argv").unwrap()));
        // Checked as a file's key is.
        let args = SourceArgs {
            pcs_api_key: Some("two\nlines".to_owned()),
            ..SourceArgs::default()
        };
        let e = args.pcs_api_key().unwrap_err();
        assert!(
            format!("{e:#}").contains("--pcs-api-key: PCS subscription key"),
            "{e:#}"
        );
    }
}
