//! Assembling a broker from its configuration: the data directory, the KEK and the token signing
//! key (created 0600 on first start), the store, the verifier's trust anchors and endorsements,
//! and the admin credentials (a token created on first start when none is configured).
//!
//! Nothing others could have written or planted is trusted: a data directory the broker keeps
//! files in must not be writable by group or others, and an existing key or token file must not
//! be either, nor a symbolic link where the broker keeps its own files (its data directory).

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tessera::{EndorsementRequest, Endorsements, Evidence, Verifier};
use tessera_broker::engine::EndorsementSource;
use tessera_broker::engine::{Broker, BrokerOptions};
use tessera_broker::gitseal::{CocoSigner, GitSealError, SealingKeys};
use tessera_broker::keyfile::{KeyFileError, Symlinks};
use tessera_broker::seal::{KeyringFile, SealError};
use tessera_broker::store::{KeyCheckError, PostgresStore, SqliteStore, Store, StoreError};
use tessera_collateral::assemble::{
    intel_item, snp_endorsements_from_entries, tdx_collateral_from_entries,
};
use tessera_collateral::item::{Item, items_for_quote, items_for_snp_report};
use tessera_collateral::{
    ApiKey, Cache, CollateralError, Entry, FetchConfig, Fetcher, KdsSource, PcsSource, UpdateType,
    Vetter,
};
use tessera_pki::{load_certificates, load_crls};
use tessera_policy::ear::{Alg, SigningKey};
use zeroize::Zeroizing;

use crate::admin_auth::AdminAuth;
use crate::config::{CollateralConfig, ServerConfig, UpdateSchedule};
use crate::metrics::Metrics;
use crate::{AppState, Server, ServerError};

/// Largest key, token or certificate file read at start.
const MAX_KEY_FILE: u64 = 1024 * 1024;

/// Errors assembling the broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A file or directory could not be read or created.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A key file holds no usable key.
    #[error("{path}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A data directory, key or token file that others could have written or planted.
    #[error("{path}: refused: {problem}")]
    Insecure {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong with it, and how to mend it.
        problem: &'static str,
    },
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(String),
    /// The keyring is not the one the store was made with (its key check, see
    /// `tessera_broker::store::KeyCheck`): serving would seal what the other brokers on the
    /// store cannot open, and refuse what they sealed.
    #[error(
        "{path}: refused: {check}; every broker on a store must use the KEK file the store \
         was made with (the `kek_file` setting, default DATA_DIR/kek): give this broker that \
         file{}",
        match (*created, *removed) {
            (false, _) => "",
            (true, true) => " (there was no file at this path: the one this start made, with a \
                 new KEK, is removed again; put the store's KEK file there)",
            (true, false) => " (there was no file at this path, so this start made one with a \
                 new KEK, which nothing is sealed under and which could not be removed: put the \
                 store's KEK file in its place)",
        }
    )]
    KeyCheck {
        /// The keyring file (`kek_file`).
        path: PathBuf,
        /// Which check failed, naming the KEK the store was made with and the ones held (in
        /// the message already: not a `source`, which would print it twice).
        check: KeyCheckError,
        /// Whether this start made the keyring file (there was none): its KEK is new, and a
        /// store made before has nothing sealed under it.
        created: bool,
        /// Whether the file this start made was removed again (so that the next start, given
        /// no file either, is refused the same way instead of finding a stray KEK).
        removed: bool,
    },
    /// The verifier could not be built.
    #[error("verifier: {0}")]
    Verifier(String),
    /// The broker could not be built.
    #[error("broker: {0}")]
    Broker(String),
    /// The server could not bind or load TLS.
    #[error(transparent)]
    Server(#[from] ServerError),
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> StartError {
    StartError::File {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn insecure(path: &Path, problem: &'static str) -> StartError {
    StartError::Insecure {
        path: path.to_owned(),
        problem,
    }
}

/// A key-file error of the broker crate, its refusals kept apart.
fn gitseal_error(path: &Path, e: GitSealError) -> StartError {
    match e {
        GitSealError::Refused { path, problem } => StartError::Insecure { path, problem },
        other => file_error(path, other),
    }
}

fn read_small(path: &Path) -> Result<Zeroizing<Vec<u8>>, StartError> {
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, e))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(file_error(path, "larger than 1 MiB"));
    }
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| file_error(path, e))
}

/// The contents of a secret key or token file: a regular file that group and others cannot
/// write and others cannot read, reached through a symbolic link only when `symlinks` allows
/// it (files the configuration names: Kubernetes mounts each file of a Secret volume as a
/// link), at most 1 MiB. Its group may read it (the Helm chart mounts Secret files 0440).
///
/// # Errors
/// [`StartError::Insecure`]: writable by group or others, readable by others, a refused link,
/// not a regular file; [`StartError::File`]: unreadable or too large.
fn read_key_file(path: &Path, symlinks: Symlinks) -> Result<Zeroizing<Vec<u8>>, StartError> {
    Ok(tessera_broker::keyfile::read(
        path,
        symlinks,
        SECRET_FILE_FORBIDDEN,
        SECRET_FILE_EXPOSED,
        MAX_KEY_FILE,
    )?)
}

/// A public key file (an admin JWT key): as [`read_key_file`], but anyone may read it.
fn read_public_key_file(path: &Path, symlinks: Symlinks) -> Result<Zeroizing<Vec<u8>>, StartError> {
    Ok(tessera_broker::keyfile::read(
        path,
        symlinks,
        0o022,
        KEY_FILE_WRITABLE,
        MAX_KEY_FILE,
    )?)
}

/// Mode bits a secret key or token file may not have: group write, and any access by others.
pub(crate) const SECRET_FILE_FORBIDDEN: u32 = 0o027;

/// Why a secret key or token file others can reach is refused.
pub(crate) const SECRET_FILE_EXPOSED: &str = "writable by group or others, or readable by others, who could \
     replace or read the key or token (chmod g-w,o-rwx)";

/// Why a public key file others can write is refused.
const KEY_FILE_WRITABLE: &str =
    "writable by group or others, who could replace the key (chmod go-w)";

/// [`read_key_file`]'s bytes, or, when there is no file, `make`'s, put in place first
/// ([`tessera_broker::keyfile::read_or_create`]).
fn read_or_create_key_file(
    path: &Path,
    symlinks: Symlinks,
    make: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, StartError>,
) -> Result<Zeroizing<Vec<u8>>, StartError> {
    tessera_broker::keyfile::read_or_create(
        path,
        symlinks,
        SECRET_FILE_FORBIDDEN,
        SECRET_FILE_EXPOSED,
        MAX_KEY_FILE,
        make,
    )
}

/// A key-file error of the broker crate, its refusals kept apart.
impl From<KeyFileError> for StartError {
    fn from(e: KeyFileError) -> Self {
        match e {
            KeyFileError::Refused { path, problem } => StartError::Insecure { path, problem },
            KeyFileError::Io { path, source } => file_error(&path, source),
            KeyFileError::TooLarge { path, max } => {
                file_error(&path, format!("larger than {max} bytes"))
            }
            other => StartError::File {
                path: PathBuf::new(),
                message: other.to_string(),
            },
        }
    }
}

/// Creates the data directory (0700) if it does not exist.
fn ensure_dir(dir: &Path) -> Result<(), StartError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| file_error(dir, e))
}

/// Refuses a data directory that group or others can write: they could plant a key or an
/// admin token in it before the broker creates its own, or replace one.
fn check_data_dir(dir: &Path) -> Result<(), StartError> {
    let meta = std::fs::metadata(dir).map_err(|e| file_error(dir, e))?;
    if !meta.is_dir() {
        return Err(insecure(dir, "the data directory is not a directory"));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(insecure(
            dir,
            "the data directory is writable by group or others, who could plant a key or an \
             admin token in it (chmod 700, or name a subdirectory: the broker creates it 0700)",
        ));
    }
    if !tessera_broker::keyfile::owned_by_us_or_root(std::os::unix::fs::MetadataExt::uid(&meta)) {
        return Err(insecure(
            dir,
            "the data directory is owned by another user, who could plant a key or an admin \
             token in it",
        ));
    }
    Ok(())
}

/// Whether the broker keeps anything in its data directory: the SQLite store, or a key or token
/// file there (their default places). With PostgreSQL and every file named elsewhere (the Helm
/// chart, the compose trial) it is scratch space holding nothing the broker trusts, which
/// Kubernetes and Docker make world-writable (an emptyDir is 0777, a tmpfs 1777).
fn keeps_files_in_data_dir(config: &ServerConfig, sqlite: bool) -> bool {
    let default_admin_token = config.admin.tokens.is_empty() && config.admin.jwt_keys.is_empty();
    sqlite
        || default_admin_token
        || [
            config.kek_path(),
            config.token_key_path(),
            config.sealing_key_path(),
            config.coco_signing_key_path(),
        ]
        .iter()
        .any(|p| p.starts_with(&config.data_dir))
}

/// Symbolic links are refused for the broker's own files (at their default place, in the data
/// directory) and followed for files the configuration names.
fn symlinks_for(configured: Option<&PathBuf>) -> Symlinks {
    if configured.is_some() {
        Symlinks::Follow
    } else {
        Symlinks::Refuse
    }
}

/// The token signing key at `path`, created (ES256, 0600, written atomically) if absent. An
/// existing file must be a regular file that group and others cannot write and others cannot
/// read (its group may), reached through a symbolic link only when `symlinks` allows it.
///
/// # Errors
/// An unreadable or refused file ([`StartError::Insecure`]), or one that holds no ES256 PKCS#8
/// key.
pub fn load_or_create_token_key(path: &Path, symlinks: Symlinks) -> Result<SigningKey, StartError> {
    let key_error = |e: &dyn std::fmt::Display| StartError::Key {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let pem = read_or_create_key_file(path, symlinks, || {
        let key = SigningKey::generate(Alg::Es256).map_err(|e| key_error(&e))?;
        let pem = key.to_pkcs8_pem().map_err(|e| key_error(&e))?;
        Ok(Zeroizing::new(pem.as_bytes().to_vec()))
    })?;
    let text = std::str::from_utf8(&pem).map_err(|e| key_error(&e))?;
    let key = SigningKey::from_pkcs8_pem(text).map_err(|e| key_error(&e))?;
    // PROTOCOL.md: the attestation token is ES256, whatever key a file holds.
    if key.alg() != Alg::Es256 {
        return Err(key_error(
            &"not a P-256 (ES256) key: attestation tokens are ES256",
        ));
    }
    Ok(key)
}

/// The admin token at `path`, created (32 random bytes, hex, 0600, written atomically) if
/// absent. An existing file is checked as the token signing key is.
///
/// # Errors
/// An unreadable or refused file ([`StartError::Insecure`]), or randomness that failed.
pub fn load_or_create_admin_token(
    path: &Path,
    symlinks: Symlinks,
) -> Result<Zeroizing<String>, StartError> {
    let bytes = read_or_create_key_file(path, symlinks, || {
        let mut raw = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(raw.as_mut()).map_err(|_| file_error(path, "no randomness"))?;
        Ok(Zeroizing::new(
            format!("{}\n", hex_encode(raw.as_ref())).into_bytes(),
        ))
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| file_error(path, e))?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    // Sized once: no reallocation leaves a copy of a token behind.
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// What a started broker tells its operator.
#[derive(Debug, Clone)]
pub struct StartInfo {
    /// The admin token file created or used when no admin credential is configured.
    pub admin_token_file: Option<PathBuf>,
    /// The number of dangerous test roots trusted.
    pub dangerous_test_roots: usize,
    /// The collateral cache the broker asks for missing endorsements (its counters feed
    /// `/metrics`); `None` without a `[collateral]` directory or `fetch`.
    pub collateral_cache: Option<Arc<Cache>>,
}

/// The collateral cache `config` names: `None` when it names no directory and may not fetch;
/// offline unless `fetch` (then a memory cache when no directory is named).
///
/// # Errors
/// A cache directory that cannot be created, an unreadable API key file, a malformed URL.
pub fn collateral_cache(config: &CollateralConfig) -> Result<Option<Cache>, StartError> {
    let cache = match &config.dir {
        Some(dir) => Cache::open(dir)
            .map_err(|e| file_error(dir, e))?
            // Half the broker's period: each of its rechecks then finds the file looked at
            // again, so a change is applied within one period, not two.
            .with_disk_recheck(Duration::from_secs(config.recheck_secs) / 2),
        None if config.fetch => Cache::in_memory(),
        None => return Ok(None),
    };
    if !config.fetch {
        return Ok(Some(cache));
    }
    let cache =
        cache.with_retry_after_failure(Duration::from_secs(config.retry_after_failure_secs));
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        StartError::Verifier(format!("collateral.{what}: {e}"))
    };
    let mut fetcher = Fetcher::online(FetchConfig {
        timeout: Duration::from_secs(config.timeout_secs),
        ..FetchConfig::default()
    })
    .map_err(|e| invalid("fetch", &e))?;
    if let Some(url) = &config.kds_url {
        fetcher = fetcher.with_kds(KdsSource::new(url).map_err(|e| invalid("kds_url", &e))?);
    }
    let mut pcs = match &config.pcs_url {
        Some(url) => PcsSource::new(url).map_err(|e| invalid("pcs_url", &e))?,
        None => PcsSource::intel(),
    };
    if let Some(path) = &config.pcs_api_key_file {
        // A credential: checked as the admin token files are (not writable by others).
        let bytes = read_key_file(path, Symlinks::Follow)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| file_error(path, e))?;
        // Checked as the CLI checks its key (trimmed, one word of printable ASCII): an empty
        // file, or a key of two lines, is refused at start, not sent.
        pcs = pcs.with_api_key(ApiKey::new(text).map_err(|e| file_error(path, e))?);
    }
    Ok(Some(cache.with_fetcher(fetcher.with_pcs(pcs))))
}

/// The broker's [`EndorsementSource`] over `cache`: the VCEK, chain and CRL of an SEV-SNP
/// report, or the collateral of a quote, each read (or fetched) through the cache, vetted by
/// `verifier` ([`Verifier::vet_endorsements`]) and handed to it, which then checks them like
/// any other endorsement. What the verifier refuses is refused in the cache too
/// ([`Cache::refuse`], only the items at fault: see [`items_at_fault`]): a forged entry that
/// looks fresh is not handed out again, and (when fetching) the genuine one is fetched after
/// the retry-after-failure wait.
pub fn cache_source(
    cache: Arc<Cache>,
    update: UpdateSchedule,
    verifier: Verifier,
) -> EndorsementSource {
    let update = match update {
        UpdateSchedule::Standard => UpdateType::Standard,
        UpdateSchedule::Early => UpdateType::Early,
    };
    let vet = entry_vetter(verifier.clone());
    Arc::new(
        move |evidence: &Evidence, needed: &EndorsementRequest| -> Result<Endorsements, String> {
            let now = tessera_pki::UnixTime::now();
            let text = |e: CollateralError| e.to_string();
            let items: Vec<Item> = match needed {
                EndorsementRequest::SnpVek { product, .. } => {
                    let report = evidence
                        .snp_report()
                        .ok_or("the evidence is not an SEV-SNP report")?;
                    let product = product.ok_or("the report does not say its product")?;
                    items_for_snp_report(report, product).map_err(text)?
                }
                EndorsementRequest::SnpCrl { kind, product } => {
                    let product = product.ok_or("the report does not say its product")?;
                    vec![Item::AmdCrl {
                        product,
                        signer: (*kind).into(),
                    }]
                }
                EndorsementRequest::TdxCollateral { .. } => {
                    let quote = evidence.quote().ok_or("the evidence is not a quote")?;
                    items_for_quote(quote, update).map_err(text)?
                }
                _ => return Err("an endorsement the cache does not hold".to_owned()),
            };
            let entries: Vec<(Item, Arc<Entry>)> = items
                .into_iter()
                .map(|item| cache.get(&item, now).map(|entry| (item, entry)))
                .collect::<Result<_, _>>()
                .map_err(text)?;
            let out = endorsements_of(&entries).map_err(text)?;
            if let Err(e) = verifier.vet_endorsements(&out, now) {
                let reason = e.with_check();
                for (entry, why) in items_at_fault(&verifier, &vet, &entries, now) {
                    tracing::warn!(item = %entry.item().key(), reason = %why, "collateral entry refused");
                    if let Err(evict) = cache.refuse(entry, &why) {
                        tracing::warn!(error = %evict, "a refused collateral entry stays on disk");
                    }
                }
                return Err(format!(
                    "the collateral cache's endorsements are refused: {reason}"
                ));
            }
            Ok(out)
        },
    )
}

/// The verifier's inputs from cache entries: AMD items' certificates and CRLs, or the TDX/SGX
/// collateral that Intel items form.
fn endorsements_of(entries: &[(Item, Arc<Entry>)]) -> Result<Endorsements, CollateralError> {
    let amd = entries.iter().all(|(item, _)| {
        matches!(
            item,
            Item::Vcek { .. } | Item::AmdChain { .. } | Item::AmdCrl { .. }
        )
    });
    let bare: Vec<Arc<Entry>> = entries.iter().map(|(_, e)| Arc::clone(e)).collect();
    let mut out = Endorsements::new();
    if amd {
        let got = snp_endorsements_from_entries(&bare)?;
        out.add_certificates(got.certificates);
        out.add_crls(got.crls);
    } else {
        out.add_collateral(tdx_collateral_from_entries(&bare)?);
    }
    Ok(out)
}

/// The cache's [`Vetter`]: every CRL and Intel collateral item it fetches must be signed
/// under `verifier`'s roots before it is stored ([`Verifier::vet_endorsements`] for an AMD
/// CRL, [`Verifier::vet_collateral_item`] for an Intel item). A forged copy then counts as a
/// failed fetch: the held copy stays in use, and a forged copy claiming a later issue time can
/// neither replace it nor, once removed, let an older genuine copy back in (the rollback that
/// newer-only storing prevents). A VCEK and the AMD chain are vetted with the rest of their
/// lookup by [`cache_source`] instead (a VCEK needs the chain, another item, when the roots
/// do not hold its ASK); an older copy of them revokes nothing.
pub fn entry_vetter(verifier: Verifier) -> Vetter {
    Arc::new(move |entry: &Entry, now: tessera_pki::UnixTime| {
        let vetted = match entry.item() {
            Item::Vcek { .. } | Item::AmdChain { .. } => return Ok(()),
            Item::AmdCrl { .. } => {
                // Read as `snp_endorsements_from_entries` reads an AMD CRL entry.
                let crls = load_crls(entry.body()).map_err(|e| e.to_string())?;
                let mut alone = Endorsements::new();
                alone.add_crls(crls);
                verifier.vet_endorsements(&alone, now)
            }
            _ => {
                let item = intel_item(entry).map_err(|e| e.to_string())?;
                verifier.vet_collateral_item(&item, now)
            }
        };
        vetted.map_err(|e| e.with_check())
    })
}

/// Which of a refused lookup's items are at fault, each with its reason, so that the cache
/// forgets those only: the AMD chain and CRL, the QE identity and Intel's CRLs serve many
/// chips and platforms, and refusing them with a forged VCEK or TCB info would hold back
/// every guest that needs them for the retry wait. CRLs and Intel items are vetted on their
/// own (`vet`); the AMD chain on its own, then each VCEK with the chain certificates that
/// passed. What only fails together (a collateral signer revoked by the Root CA CRL that
/// comes with it) is genuine Intel data: none is refused (removed, the held copies would no
/// longer keep older ones out; verification refuses them anyway).
pub fn items_at_fault<'i>(
    verifier: &Verifier,
    vet: &Vetter,
    entries: &'i [(Item, Arc<Entry>)],
    now: tessera_pki::UnixTime,
) -> Vec<(&'i Entry, String)> {
    let mut faults: Vec<(&Entry, String)> = entries
        .iter()
        .filter_map(|(_, entry)| vet(entry, now).err().map(|why| (entry.as_ref(), why)))
        .collect();
    let certs = |entry: &Arc<Entry>| {
        snp_endorsements_from_entries(std::slice::from_ref(entry)).map(|got| got.certificates)
    };
    let mut passed: Vec<tessera_pki::Certificate> = Vec::new();
    let chains = entries
        .iter()
        .filter(|(item, _)| matches!(item, Item::AmdChain { .. }));
    let veks = entries
        .iter()
        .filter(|(item, _)| matches!(item, Item::Vcek { .. }));
    for (item, entry) in chains.chain(veks) {
        let mine = match certs(entry) {
            Ok(mine) => mine,
            Err(e) => {
                faults.push((entry.as_ref(), format!("parse: {e}")));
                continue;
            }
        };
        let mut alone = Endorsements::new();
        alone.add_certificates(mine.iter().cloned());
        alone.add_certificates(passed.iter().cloned());
        match verifier.vet_endorsements(&alone, now) {
            Ok(()) if matches!(item, Item::AmdChain { .. }) => passed.extend(mine),
            Ok(()) => {}
            Err(e) => faults.push((entry.as_ref(), e.with_check())),
        }
    }
    faults
}

/// Which of `entries` (a bundle being fetched or imported) `verifier` refuses, by index, each
/// with the reason: each is vetted as the broker vets what it fetches ([`entry_vetter`], then
/// [`items_at_fault`]: each VCEK with a chain that passed, from `entries` or from `held`, the
/// chains a cache already holds). An entry still valid is vetted at `now`; one already past
/// its validity at the last second of it, so that it too must have been signed under the
/// roots (an import keeps expired entries for `verify --at` a past time, and one that a forger
/// dated to have just expired must not displace a genuine copy unvetted). A refused entry of
/// `held` is not reported.
#[must_use]
pub fn refused_entries(
    verifier: &Verifier,
    entries: &[Arc<Entry>],
    held: &[Arc<Entry>],
    now: tessera_pki::UnixTime,
) -> Vec<(usize, String)> {
    use std::collections::{BTreeMap, HashMap};
    let vet = entry_vetter(verifier.clone());
    let when = |e: &Entry| {
        if e.check_not_expired(now).is_ok() {
            now
        } else {
            tessera_pki::UnixTime::from_secs(e.valid_until().as_secs().saturating_sub(1))
        }
    };
    // Where each entry is in `entries` (an `Arc` given twice is reported at both places).
    let mut places: HashMap<*const Entry, Vec<usize>> = HashMap::new();
    let mut by_time: BTreeMap<tessera_pki::UnixTime, Vec<&Arc<Entry>>> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let place = places.entry(Arc::as_ptr(entry)).or_default();
        if place.is_empty() {
            by_time.entry(when(entry)).or_default().push(entry);
        }
        place.push(i);
    }
    // Every chain of the bundle and of the cache helps judge a VCEK (one that passes is
    // enough: a forged chain in the bundle does not make a genuine VCEK fail).
    let chains: Vec<&Arc<Entry>> = entries
        .iter()
        .chain(held)
        .filter(|e| matches!(e.item(), Item::AmdChain { .. }))
        .collect();
    let mut refused: BTreeMap<usize, String> = BTreeMap::new();
    for (at, members) in by_time {
        let mut all: Vec<(Item, Arc<Entry>)> = members
            .iter()
            .map(|e| (e.item().clone(), Arc::clone(e)))
            .collect();
        // Helpers only where a VCEK needs them (each chain is checked again in each group).
        if members
            .iter()
            .any(|m| matches!(m.item(), Item::Vcek { .. }))
        {
            for chain in &chains {
                if when(chain) != at || !places.contains_key(&Arc::as_ptr(chain)) {
                    all.push((chain.item().clone(), Arc::clone(chain)));
                }
            }
        }
        for (entry, why) in items_at_fault(verifier, &vet, &all, at) {
            let is_member = when(entry) == at;
            if let Some(place) = places.get(&std::ptr::from_ref(entry)).filter(|_| is_member) {
                for &i in place {
                    refused.entry(i).or_insert_with(|| why.clone());
                }
            }
        }
    }
    refused.into_iter().collect()
}

/// The PostgreSQL URL the broker's store is at: `TESSERA_DATABASE_URL` (unless
/// `ignore_database_url_env`), else `store` when it is not `sqlite`; `None`: SQLite.
pub(crate) fn database_url(config: &ServerConfig) -> Option<String> {
    std::env::var("TESSERA_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty() && !config.ignore_database_url_env)
        .or_else(|| config.store.clone().filter(|s| s != "sqlite"))
}

/// The broker and admin credentials for `config` (no socket yet).
///
/// # Errors
/// [`StartError`].
pub async fn assemble(config: &ServerConfig) -> Result<(Broker, AdminAuth, StartInfo), StartError> {
    let database_url = database_url(config);
    ensure_dir(&config.data_dir)?;
    if keeps_files_in_data_dir(config, database_url.is_none()) {
        check_data_dir(&config.data_dir)?;
    }
    let keyring =
        KeyringFile::open_or_create(&config.kek_path(), symlinks_for(config.kek_file.as_ref()))
            .map_err(|e| match e {
                SealError::KeyringRefused { path, problem } => {
                    StartError::Insecure { path, problem }
                }
                other => file_error(&config.kek_path(), other),
            })?;
    let token_key = load_or_create_token_key(
        &config.token_key_path(),
        symlinks_for(config.token_key_file.as_ref()),
    )?;
    let store: Arc<dyn Store> = match database_url {
        Some(url) => Arc::new(PostgresStore::connect(&url).await.map_err(store_error)?),
        None => Arc::new(
            SqliteStore::open(&config.data_dir)
                .await
                .map_err(store_error)?,
        ),
    };
    // The keyring must be the one the store was made with (recorded by the first broker).
    match tessera_broker::store::check_keyring(store.as_ref(), &keyring.current()).await {
        Ok(_) => {}
        Err(StoreError::KeyCheck(source)) => {
            // A KEK file made by this start holds a key nothing is sealed under (the broker
            // never served; another process that read it meanwhile is refused by the same
            // check): it goes again, so that every start without the store's file says so.
            let created = keyring.created();
            let path = keyring.path().to_owned();
            drop(keyring);
            let removed = created && std::fs::remove_file(&path).is_ok();
            return Err(StartError::KeyCheck {
                path,
                check: source,
                created,
                removed,
            });
        }
        Err(e) => return Err(store_error(e)),
    }
    let mut builder = Verifier::builder();
    for path in &config.verifier.dangerous_test_roots {
        let bytes = read_small(path)?;
        let certs = load_certificates(&bytes).map_err(|e| file_error(path, e))?;
        for cert in certs {
            builder = builder
                .dangerous_test_root(cert)
                .map_err(|e| file_error(path, e))?;
        }
    }
    for dir in &config.verifier.endorsements {
        builder = builder
            .endorsement_dir(dir)
            .map_err(|e| file_error(dir, e))?;
    }
    let verifier = builder
        .build()
        .map_err(|e| StartError::Verifier(e.to_string()))?;
    let mut admin = AdminAuth::default();
    for token in &config.admin.tokens {
        let text = read_key_file(&token.file, Symlinks::Follow)?;
        let text = std::str::from_utf8(&text).map_err(|e| file_error(&token.file, e))?;
        admin
            .add_static(&token.name, text, token.repos.clone())
            .map_err(|e| file_error(&token.file, e))?;
    }
    admin.set_jwt_audience(
        config
            .admin
            .jwt_audience
            .as_deref()
            .unwrap_or(crate::admin_auth::DEFAULT_JWT_AUDIENCE),
        config.admin.jwt_issuer.as_deref(),
    );
    admin.set_jwt_max_lifetime(config.admin.jwt_max_lifetime_secs);
    for path in &config.admin.jwt_keys {
        // A public key, but whoever can replace it can mint admin credentials.
        let pem = read_public_key_file(path, Symlinks::Follow)?;
        let text = std::str::from_utf8(&pem).map_err(|e| file_error(path, e))?;
        admin
            .add_jwt_key_pem(text)
            .map_err(|e| file_error(path, e))?;
    }
    let mut admin_token_file = None;
    if !admin.is_configured() {
        let path = config.default_admin_token_path();
        let token = load_or_create_admin_token(&path, Symlinks::Refuse)?;
        admin
            .add_static("admin", &token, None)
            .map_err(|e| file_error(&path, e))?;
        admin_token_file = Some(path);
    }
    let broker = Broker::new(
        store,
        Arc::new(keyring),
        verifier.clone(),
        token_key,
        BrokerOptions {
            token_ttl_secs: config.token_ttl_secs,
            hash: config.binding_hash,
        },
    )
    .map_err(|e| StartError::Broker(e.to_string()))?;
    let now_ms = tessera_pki::UnixTime::now().as_secs().saturating_mul(1000);
    let sealing_path = config.sealing_key_path();
    let sealing = SealingKeys::open_or_create(
        &sealing_path,
        symlinks_for(config.sealing_key_file.as_ref()),
        now_ms,
    )
    .map_err(|e| gitseal_error(&sealing_path, e))?;
    let coco_path = config.coco_signing_key_path();
    let coco = CocoSigner::open_or_create(
        &coco_path,
        symlinks_for(config.coco_signing_key_file.as_ref()),
    )
    .map_err(|e| gitseal_error(&coco_path, e))?;
    let mut broker = broker.with_git_sealing(sealing, coco);
    // Fetched entries are vetted before they are stored (see `entry_vetter`).
    let collateral = collateral_cache(&config.collateral)?
        .map(|cache| Arc::new(cache.with_vetter(entry_vetter(verifier.clone()))));
    if let Some(cache) = &collateral {
        broker = broker
            .with_endorsement_source(cache_source(
                Arc::clone(cache),
                config.collateral.update,
                verifier,
            ))
            .with_endorsement_recheck(Duration::from_secs(config.collateral.recheck_secs));
    }
    Ok((
        broker,
        admin,
        StartInfo {
            admin_token_file,
            dangerous_test_roots: config.verifier.dangerous_test_roots.len(),
            collateral_cache: collateral,
        },
    ))
}

/// Assembles the broker and binds its socket: what `tessera serve` runs.
///
/// # Errors
/// [`StartError`].
pub async fn start(config: &ServerConfig) -> Result<(Server, StartInfo), StartError> {
    // Refused before anything is made: a start that cannot serve leaves no data directory,
    // key or database behind. (`Server::bind` checks it again for library callers.)
    if config.tls.is_none() && !config.listen.ip().is_loopback() && !config.insecure_http {
        return Err(crate::ServerError::PlainHttpNotLoopback(config.listen).into());
    }
    // TLS files that cannot be loaded likewise (`Server::bind` loads them again, to serve),
    // and addresses that cannot be bound (taken, or a port below 1024 without the right): each
    // is tried and let go, then bound for good once the broker is made.
    if let Some(files) = &config.tls {
        crate::tls::acceptor(&files.cert, &files.key)?;
    }
    for addr in std::iter::once(config.listen).chain(config.metrics_listen) {
        std::net::TcpListener::bind(addr)
            .map(drop)
            .map_err(|source| crate::ServerError::Bind { addr, source })?;
    }
    let (broker, admin, info) = assemble(config).await?;
    let metrics = Metrics::default();
    if let Some(cache) = &info.collateral_cache {
        metrics.set_collateral_cache(Arc::clone(cache));
    }
    let state = AppState {
        broker,
        admin: Arc::new(admin),
        metrics: Arc::new(metrics),
        secure_cookies: config.secure_cookies(),
        request_timeout: Duration::from_secs(config.request_timeout_secs),
    };
    let mut server = Server::bind(config, state).await?;
    if let Some(cache) = info
        .collateral_cache
        .as_ref()
        .filter(|c| c.fetcher().is_some())
    {
        server = server.with_collateral_refresh(
            Arc::clone(cache),
            Duration::from_secs(config.collateral.refresh_interval_secs),
        );
    }
    warn_if_few_descriptors(config.max_connections);
    Ok((server, info))
}

/// Descriptors the broker needs beside its connections: the store, the listener, key and
/// collateral files, PostgreSQL connections, the runtime's own.
const DESCRIPTOR_HEADROOM: u64 = 128;

/// Logs a warning when the process's soft limit on open files (from `/proc/self/limits`) is
/// below `max_connections` plus [`DESCRIPTOR_HEADROOM`]: connections past the limit would be
/// refused by the kernel, and the store's or a collateral fetch's files with them.
fn warn_if_few_descriptors(max_connections: usize) {
    let Some(soft) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| soft_open_files(&text))
    else {
        return;
    };
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(DESCRIPTOR_HEADROOM);
    if soft < needed {
        tracing::warn!(
            soft_limit = soft,
            needed,
            "the open-files limit is below max_connections plus headroom: raise it \
             (ulimit -n, systemd LimitNOFILE=) or lower max_connections"
        );
    }
}

/// The soft limit of the `Max open files` line of a `/proc/PID/limits` text (none when
/// unlimited or absent).
fn soft_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

/// A store that could not be opened, said once as "store: ..." (most store errors already
/// begin so).
fn store_error(e: tessera_broker::store::StoreError) -> StartError {
    let text = e.to_string();
    StartError::Store(
        text.strip_prefix("store: ")
            .map_or(text.clone(), str::to_owned),
    )
}

// Intel cache entries from a collateral bundle, shared with the CLI's tests.
#[cfg(test)]
#[path = "../tests/common/intel_entries.rs"]
mod intel_entries;

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::config::StaticTokenConfig;

    /// Two simulated Genoa PKIs (a guest's and a forger's), the cache items the guest's report
    /// needs, and a cache entry for an item with its body from a given PKI.
    fn amd_sims() -> (
        tessera_guest::sim::SimSnp,
        tessera_guest::sim::SimSnp,
        Vec<Item>,
    ) {
        use tessera::snp::abi::Product;
        use tessera_guest::sim::{Measurements, SimSnp};
        let guest = SimSnp::new(Product::Genoa).unwrap();
        let forger = SimSnp::new(Product::Genoa).unwrap();
        let raw = guest
            .report(&[0u8; 64], &Measurements::default(), |_| {})
            .unwrap();
        let report = Evidence::from_bytes(&raw).unwrap();
        let items = items_for_snp_report(report.snp_report().unwrap(), Product::Genoa).unwrap();
        (guest, forger, items)
    }

    /// The cache entry for AMD `item` with its body from `sim`'s PKI (a CRL current for a day
    /// either side of `now`).
    fn amd_entry(
        sim: &tessera_guest::sim::SimSnp,
        item: &Item,
        now: tessera_pki::UnixTime,
    ) -> Entry {
        let day = 86_400;
        let body = match item {
            Item::Vcek { .. } => sim.vcek().der().to_vec(),
            Item::AmdChain { .. } => (tessera_pki::to_pem("CERTIFICATE", sim.pki().ask().der())
                + &tessera_pki::to_pem("CERTIFICATE", sim.pki().ark().der()))
                .into_bytes(),
            _ => sim
                .pki()
                .ark_crl(
                    &[],
                    tessera_pki::UnixTime::from_secs(now.as_secs() - day),
                    tessera_pki::UnixTime::from_secs(now.as_secs() + day),
                )
                .unwrap()
                .der()
                .to_vec(),
        };
        Entry::new(item.clone(), "test", now, body, None).unwrap()
    }

    /// A refused AMD lookup forgets only the item at fault: a forged VCEK, CRL or chain takes
    /// none of the others (which other chips need) with it.
    #[test]
    fn only_the_amd_item_at_fault_is_refused() {
        use tessera_guest::sim::SimSnp;
        let (guest, forger, items) = amd_sims();
        let now = tessera_pki::UnixTime::now();
        let entries = |vcek: &SimSnp, chain_of: &SimSnp, crl_of: &SimSnp| {
            items
                .iter()
                .map(|item| {
                    let from = match item {
                        Item::Vcek { .. } => vcek,
                        Item::AmdChain { .. } => chain_of,
                        _ => crl_of,
                    };
                    (item.clone(), Arc::new(amd_entry(from, item, now)))
                })
                .collect::<Vec<_>>()
        };
        let verifier = Verifier::builder()
            .dangerous_snp_test_roots([guest.pki().roots()])
            .build()
            .unwrap();
        let faults = |entries: &[(Item, Arc<Entry>)]| -> Vec<String> {
            let out = endorsements_of(entries).unwrap();
            let Err(_) = verifier.vet_endorsements(&out, now) else {
                return Vec::new();
            };
            items_at_fault(&verifier, &entry_vetter(verifier.clone()), entries, now)
                .into_iter()
                .map(|(entry, _)| entry.item().key())
                .collect()
        };
        assert!(faults(&entries(&guest, &guest, &guest)).is_empty());
        let kind = |pred: fn(&Item) -> bool| -> Vec<String> {
            items.iter().filter(|i| pred(i)).map(Item::key).collect()
        };
        assert_eq!(
            faults(&entries(&forger, &guest, &guest)),
            kind(|i| matches!(i, Item::Vcek { .. }))
        );
        assert_eq!(
            faults(&entries(&guest, &guest, &forger)),
            kind(|i| matches!(i, Item::AmdCrl { .. }))
        );
        // The forger's ASK and ARK in the chain item: the genuine VCEK still vets under the
        // embedded intermediates, so the chain alone is at fault.
        assert_eq!(
            faults(&entries(&guest, &forger, &guest)),
            kind(|i| matches!(i, Item::AmdChain { .. }))
        );
    }

    /// What `collateral fetch` and `import` keep: of a bundle, the entries the verifier
    /// refuses, by index; a VCEK alone is judged with the chain the cache holds; an entry past
    /// its validity is not judged; a refused chain the cache holds is not reported.
    #[test]
    fn refused_entries_names_the_bundle_entries_at_fault() {
        let (guest, forger, items) = amd_sims();
        let now = tessera_pki::UnixTime::now();
        // The ARK alone (as `--dangerous-test-root ark.pem`): a VCEK needs an ASK from somewhere.
        let verifier = Verifier::builder()
            .dangerous_test_root(guest.pki().ark().clone())
            .unwrap()
            .build()
            .unwrap();
        let find = |pred: fn(&Item) -> bool| items.iter().find(|i| pred(i)).unwrap();
        let vcek = find(|i| matches!(i, Item::Vcek { .. }));
        let chain = find(|i| matches!(i, Item::AmdChain { .. }));
        let crl = find(|i| matches!(i, Item::AmdCrl { .. }));
        let of = |sim, item| Arc::new(amd_entry(sim, item, now));
        let refused = |entries: &[Arc<Entry>], held: &[Arc<Entry>]| -> Vec<usize> {
            refused_entries(&verifier, entries, held, now)
                .into_iter()
                .map(|(i, why)| {
                    assert!(!why.is_empty());
                    i
                })
                .collect()
        };
        let genuine = [of(&guest, chain), of(&guest, crl), of(&guest, vcek)];
        assert!(refused(&genuine, &[]).is_empty());
        let forged_vcek = [of(&guest, chain), of(&guest, crl), of(&forger, vcek)];
        assert_eq!(refused(&forged_vcek, &[]), [2]);
        let forged_crl = [of(&forger, crl), of(&guest, chain), of(&guest, vcek)];
        assert_eq!(refused(&forged_crl, &[]), [0]);
        // A VCEK alone: judged with the held chain; refused with none, or a forged one (which
        // is not the bundle's to report).
        let alone = [of(&guest, vcek)];
        assert!(refused(&alone, &[of(&guest, chain)]).is_empty());
        assert_eq!(refused(&alone, &[]), [0]);
        assert_eq!(refused(&alone, &[of(&forger, chain)]), [0]);
        // The bundle's own chain comes first: a forged held one does not matter then.
        assert!(refused(&genuine, &[of(&forger, chain)]).is_empty());
        // A chain of the bundle that is forged is refused; the genuine VCEK beside it passes
        // with the chain the cache holds.
        let bad_chain = [of(&forger, chain), of(&guest, vcek)];
        assert_eq!(refused(&bad_chain, &[of(&guest, chain)]), [0]);
        assert_eq!(refused(&bad_chain, &[]), [0, 1]);
        // One entry given twice is reported at both places.
        let twice = of(&forger, vcek);
        assert_eq!(
            refused(&[of(&guest, chain), Arc::clone(&twice), twice], &[]),
            [1, 2]
        );
        // An entry already past its validity is judged too, at the last second of it: a
        // forged CRL dated to have just expired is refused, a genuine one is not.
        let day = 86_400;
        let stale = |sim: &tessera_guest::sim::SimSnp| {
            let list = sim
                .pki()
                .ark_crl(
                    &[],
                    tessera_pki::UnixTime::from_secs(now.as_secs() - 3 * day),
                    tessera_pki::UnixTime::from_secs(now.as_secs() - day),
                )
                .unwrap();
            Arc::new(Entry::new(crl.clone(), "test", now, list.der().to_vec(), None).unwrap())
        };
        let forged = stale(&forger);
        assert!(forged.check_not_expired(now).is_err());
        assert_eq!(refused(&[forged], &[]), [0]);
        assert!(refused(&[stale(&guest)], &[]).is_empty());
    }

    /// The cache's vetter (what a fetched entry must pass before it is stored): every kind of
    /// item from the trusted (simulated) vendor passes; the same CRL or Intel item from another
    /// PKI or PCS is refused, naming the check.
    #[test]
    fn the_entry_vetter_refuses_items_not_signed_under_the_roots() {
        use tessera_guest::sim::SimTdx;
        let now = tessera_pki::UnixTime::now();
        let (genuine, forger, items) = amd_sims();
        let tdx = SimTdx::new().unwrap();
        let other_tdx = SimTdx::new().unwrap();
        let verifier = Verifier::builder()
            .dangerous_snp_test_roots([genuine.pki().roots()])
            .dangerous_tdx_test_root(tdx.root().clone())
            .build()
            .unwrap();
        let vet = entry_vetter(verifier);
        for item in &items {
            vet(&amd_entry(&genuine, item, now), now).unwrap();
            // A VCEK or chain is vetted with the rest of its lookup (see
            // `only_the_amd_item_at_fault_is_refused`): the vetter passes it on.
            let forged = vet(&amd_entry(&forger, item, now), now);
            if matches!(item, Item::AmdCrl { .. }) {
                let refused = forged.unwrap_err();
                assert!(refused.starts_with("revocation:"), "{refused}");
            } else {
                forged.unwrap();
            }
        }
        let intel_entries = |sim: &SimTdx| {
            super::intel_entries::intel_entries(&sim.collateral_json().unwrap(), now)
        };
        // The simulator's collateral is dated around its own fixed time.
        let at = tessera::tdx::sim::SIM_VERIFY_AT;
        let expected = ["tcb_info_", "qe_identity_", "pck_crl_chain:", "revocation:"];
        for ((good, bad), check) in intel_entries(&tdx)
            .iter()
            .zip(intel_entries(&other_tdx).iter())
            .zip(expected)
        {
            vet(good, at).unwrap();
            let refused = vet(bad, at).unwrap_err();
            assert!(refused.starts_with(check), "{:?}: {refused}", good.item());
        }
    }

    #[test]
    fn the_open_files_soft_limit_is_read_from_proc() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             95469                95469                processes\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(soft_open_files(text), Some(1024));
        assert_eq!(
            soft_open_files("Max open files            unlimited            unlimited  files"),
            None
        );
        assert_eq!(soft_open_files("Max processes 1 1 processes"), None);
        // This process's own limits parse (Linux).
        assert!(soft_open_files(&fs::read_to_string("/proc/self/limits").unwrap()).is_some());
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A token signing key that is not an ES256 PKCS#8 key, or is over 1 MiB, is refused
    /// (never replaced by a new one); a PCS API key file others can write is refused too.
    #[test]
    fn unusable_key_files_are_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("token.key");
        let private = |path: &Path, bytes: &[u8]| {
            fs::write(path, bytes).unwrap();
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
        };
        private(
            &key,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        assert!(matches!(
            load_or_create_token_key(&key, Symlinks::Refuse),
            Err(StartError::Key { .. })
        ));
        let p384 = SigningKey::generate(Alg::Es384)
            .unwrap()
            .to_pkcs8_pem()
            .unwrap();
        private(&key, p384.as_bytes());
        assert!(matches!(
            load_or_create_token_key(&key, Symlinks::Refuse),
            Err(StartError::Key { .. })
        ));
        private(&key, &vec![b'a'; 1024 * 1024 + 1]);
        match load_or_create_token_key(&key, Symlinks::Refuse) {
            Err(StartError::File { message, .. }) => {
                assert!(message.contains("larger"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            fs::metadata(&key).unwrap().len(),
            1024 * 1024 + 1,
            "left as it was"
        );
        let api_key = dir.path().join("pcs.key");
        fs::write(&api_key, "k").unwrap();
        fs::set_permissions(&api_key, fs::Permissions::from_mode(0o666)).unwrap();
        let config = CollateralConfig {
            dir: Some(dir.path().join("cache")),
            fetch: true,
            pcs_api_key_file: Some(api_key.clone()),
            ..CollateralConfig::default()
        };
        assert_insecure(
            collateral_cache(&config),
            &api_key,
            "writable by group or others",
        );
        // A private file, but no key in it: refused at start, the key never quoted.
        fs::set_permissions(&api_key, fs::Permissions::from_mode(0o600)).unwrap();
        for bad in ["", "\n", "first-key\nsecond-key\n", "k\u{7}y"] {
            fs::write(&api_key, bad).unwrap();
            match collateral_cache(&config) {
                Err(StartError::File { path, message }) => {
                    assert_eq!(path, api_key);
                    assert!(message.starts_with("PCS subscription key: "), "{message}");
                    assert!(
                        !message.contains("key\n") && !message.contains("second"),
                        "{message}"
                    );
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        fs::write(&api_key, "0123abcd\n").unwrap();
        assert!(collateral_cache(&config).unwrap().is_some());
    }

    #[track_caller]
    fn assert_insecure<T: std::fmt::Debug>(got: Result<T, StartError>, file: &Path, why: &str) {
        match got {
            Err(StartError::Insecure { path, problem }) => {
                assert_eq!(path, file);
                assert!(problem.contains(why), "{problem}");
            }
            other => panic!("expected {file:?} refused ({why}), got {other:?}"),
        }
    }

    /// Whether the store would be PostgreSQL (these tests need the SQLite default).
    fn postgres_selected() -> bool {
        std::env::var_os("TESSERA_DATABASE_URL").is_some_and(|u| !u.is_empty())
    }

    #[tokio::test]
    async fn a_first_start_creates_private_files_and_a_restart_reads_them() {
        if postgres_selected() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = ServerConfig::with_data_dir(data.clone());
        let (_, _, info) = assemble(&config).await.unwrap();
        assert_eq!(mode(&data), 0o700);
        let token_file = info.admin_token_file.unwrap();
        assert_eq!(token_file, data.join("admin.token"));
        for file in [
            "admin.token",
            "token.key",
            "coco-signing.key",
            "sealing.keys",
            "kek",
        ] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
        assert!(
            names(&data).iter().all(|n| !n.contains(".tmp")),
            "no temporary file is left: {:?}",
            names(&data)
        );
        let token = fs::read_to_string(&token_file).unwrap();
        let pem = fs::read(data.join("token.key")).unwrap();
        // A restart reads them back, unchanged.
        assemble(&config).await.unwrap();
        assert_eq!(fs::read_to_string(&token_file).unwrap(), token);
        assert_eq!(fs::read(data.join("token.key")).unwrap(), pem);
        assert_eq!(
            load_or_create_admin_token(&token_file, Symlinks::Refuse)
                .unwrap()
                .as_str(),
            token.trim()
        );
    }

    #[tokio::test]
    async fn a_data_directory_others_can_write_is_refused() {
        for bad in [0o777, 0o770, 0o707, 0o1777] {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            fs::create_dir(&data).unwrap();
            set_mode(&data, bad);
            let config = ServerConfig::with_data_dir(data.clone());
            assert_insecure(
                assemble(&config).await,
                &data,
                "writable by group or others",
            );
            assert!(names(&data).is_empty(), "nothing is written in it");
        }
        // Readable by others is not a danger to the broker's trust (its files are 0600).
        let dir = tempfile::tempdir().unwrap();
        set_mode(dir.path(), 0o755);
        check_data_dir(dir.path()).unwrap();
        // A volume Kubernetes mounts with an fsGroup (setgid, group-writable): a subdirectory
        // of it, made by the broker, is its own (0700, setgid inherited) and accepted.
        let volume = tempfile::tempdir().unwrap();
        set_mode(volume.path(), 0o2770);
        let data = volume.path().join("tessera");
        ensure_dir(&data).unwrap();
        assert_eq!(
            fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
        check_data_dir(&data).unwrap();
        // Owned by another (non-root) user, even 0700: refused (root can hand it over).
        if tessera_broker::keyfile::effective_uid() == Some(0) {
            std::os::unix::fs::chown(dir.path(), Some(4242), None).unwrap();
            assert_insecure(check_data_dir(dir.path()), dir.path(), "another user");
        }
    }

    #[test]
    fn the_data_directory_is_checked_only_when_the_broker_keeps_files_in_it() {
        let mut c = ServerConfig::with_data_dir("/scratch".into());
        assert!(keeps_files_in_data_dir(&c, false), "every default is in it");
        // The Helm chart and the compose trial: PostgreSQL, every file named elsewhere, admin
        // tokens configured; their data directory is a world-writable emptyDir or tmpfs.
        c.kek_file = Some("/keys/kek".into());
        c.token_key_file = Some("/keys/token.key".into());
        c.sealing_key_file = Some("/keys/sealing.keys".into());
        c.coco_signing_key_file = Some("/keys/coco-signing.key".into());
        c.admin.tokens = vec![StaticTokenConfig {
            name: "admin".into(),
            file: "/keys/admin.token".into(),
            repos: None,
        }];
        assert!(!keeps_files_in_data_dir(&c, false));
        assert!(keeps_files_in_data_dir(&c, true), "the SQLite store");
        let mut inside = c.clone();
        inside.token_key_file = Some("/scratch/sub/token.key".into());
        assert!(keeps_files_in_data_dir(&inside, false));
        let mut no_admin = c.clone();
        no_admin.admin.tokens.clear();
        assert!(
            keeps_files_in_data_dir(&no_admin, false),
            "the default admin token"
        );
        for clear in 0..4 {
            let mut d = c.clone();
            *[
                &mut d.kek_file,
                &mut d.token_key_file,
                &mut d.sealing_key_file,
                &mut d.coco_signing_key_file,
            ][clear] = None;
            assert!(keeps_files_in_data_dir(&d, false), "{clear}");
        }
    }

    #[tokio::test]
    async fn planted_or_writable_files_in_the_data_directory_are_refused() {
        if postgres_selected() {
            return;
        }
        for file in ["admin.token", "token.key", "coco-signing.key"] {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            let config = ServerConfig::with_data_dir(data.clone());
            assemble(&config).await.unwrap();
            let path = data.join(file);
            for bad in [0o620, 0o602, 0o666] {
                set_mode(&path, bad);
                assert_insecure(
                    assemble(&config).await,
                    &path,
                    "writable by group or others",
                );
            }
            // Secret files others can read are refused too (a 0644 key or token).
            for bad in [0o604, 0o644] {
                set_mode(&path, bad);
                assert_insecure(assemble(&config).await, &path, "readable by others");
            }
            // Group-readable is fine (the Helm chart mounts Secret files 0440).
            set_mode(&path, 0o440);
            assemble(&config).await.unwrap();
            // A symbolic link in its place, even to a private file, is refused.
            let elsewhere = dir.path().join("elsewhere");
            fs::rename(&path, &elsewhere).unwrap();
            set_mode(&elsewhere, 0o600);
            std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
            assert_insecure(assemble(&config).await, &path, "symbolic link");
            refuses_dangling_links_and_directories(&config, dir.path(), &path).await;
        }
    }

    /// With a symbolic link at `path` (which is removed): a link to nowhere in its place is
    /// refused (and not followed to create a file there), and so is a directory.
    async fn refuses_dangling_links_and_directories(
        config: &ServerConfig,
        dir: &Path,
        path: &Path,
    ) {
        fs::remove_file(path).unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), path).unwrap();
        assert_insecure(assemble(config).await, path, "symbolic link");
        assert!(!dir.join("nowhere").exists());
        fs::remove_file(path).unwrap();
        fs::create_dir(path).unwrap();
        assert_insecure(assemble(config).await, path, "not a regular file");
    }

    /// The KEK and the sealing keys at their default places (which group and others may not
    /// read at all) are refused as links, dangling links and non-regular files too.
    #[tokio::test]
    async fn planted_keys_in_the_data_directory_are_refused() {
        if postgres_selected() {
            return;
        }
        for file in ["kek", "sealing.keys"] {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            let config = ServerConfig::with_data_dir(data.clone());
            assemble(&config).await.unwrap();
            let path = data.join(file);
            let elsewhere = dir.path().join("elsewhere");
            fs::rename(&path, &elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
            assert_insecure(assemble(&config).await, &path, "symbolic link");
            // The same file named in the configuration is followed.
            let mut named = config.clone();
            match file {
                "kek" => named.kek_file = Some(path.clone()),
                _ => named.sealing_key_file = Some(path.clone()),
            }
            assemble(&named).await.unwrap();
            refuses_dangling_links_and_directories(&config, dir.path(), &path).await;
        }
    }

    #[test]
    fn configured_files_may_be_links_to_files_others_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        // How Kubernetes mounts a Secret: `token.key -> ..data/token.key`, mode 0440.
        let real = dir.path().join("..data");
        fs::create_dir(&real).unwrap();
        let key = SigningKey::generate(Alg::Es256).unwrap();
        fs::write(
            real.join("token.key"),
            key.to_pkcs8_pem().unwrap().as_bytes(),
        )
        .unwrap();
        fs::write(real.join("admin.token"), "a".repeat(64)).unwrap();
        for file in ["token.key", "admin.token"] {
            set_mode(&real.join(file), 0o440);
            std::os::unix::fs::symlink(Path::new("..data").join(file), dir.path().join(file))
                .unwrap();
        }
        let token_key = dir.path().join("token.key");
        let admin_token = dir.path().join("admin.token");
        load_or_create_token_key(&token_key, Symlinks::Follow).unwrap();
        read_key_file(&admin_token, Symlinks::Follow).unwrap();
        // The default place refuses the same link.
        assert_insecure(
            load_or_create_token_key(&token_key, Symlinks::Refuse),
            &token_key,
            "symbolic link",
        );
        // A link to a file others can write is refused.
        for file in ["token.key", "admin.token"] {
            set_mode(&real.join(file), 0o660);
        }
        assert_insecure(
            load_or_create_token_key(&token_key, Symlinks::Follow),
            &token_key,
            "writable by group or others",
        );
        assert_insecure(
            read_key_file(&admin_token, Symlinks::Follow),
            &admin_token,
            "writable by group or others",
        );
    }

    #[tokio::test]
    async fn configured_admin_credentials_others_can_write_are_refused() {
        if postgres_selected() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("ops.token");
        fs::write(&token, "b".repeat(64)).unwrap();
        let mut config = ServerConfig::with_data_dir(dir.path().join("data"));
        config.admin.tokens = vec![StaticTokenConfig {
            name: "ops".into(),
            file: token.clone(),
            repos: None,
        }];
        set_mode(&token, 0o440);
        let (_, admin, info) = assemble(&config).await.unwrap();
        assert!(admin.is_configured());
        assert!(info.admin_token_file.is_none());
        set_mode(&token, 0o664);
        assert_insecure(
            assemble(&config).await,
            &token,
            "writable by group or others",
        );
        set_mode(&token, 0o600);
        // An admin JWT key: public, but whoever replaces it mints admin credentials.
        let jwt_key = dir.path().join("jwt.pub.pem");
        let pair = SigningKey::generate(Alg::Es256).unwrap();
        fs::write(&jwt_key, pair.verifying_key().to_spki_pem()).unwrap();
        config.admin.jwt_keys = vec![jwt_key.clone()];
        set_mode(&jwt_key, 0o444);
        assemble(&config).await.unwrap();
        set_mode(&jwt_key, 0o646);
        assert_insecure(
            assemble(&config).await,
            &jwt_key,
            "writable by group or others",
        );
    }

    /// A new key or token file, as startup writes it ([`tessera_broker::keyfile::persist`]).
    fn create_private(path: &Path, bytes: &[u8]) -> Result<bool, StartError> {
        Ok(tessera_broker::keyfile::persist(path, bytes, true)?)
    }

    #[test]
    fn a_new_file_is_placed_whole_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        // A temporary file a crash left behind blocks nothing.
        fs::write(dir.path().join("admin.token.tmp-0011223344556677"), b"x").unwrap();
        assert!(create_private(&path, b"first").unwrap());
        assert_eq!(mode(&path), 0o600);
        assert!(!create_private(&path, b"second").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(
            names(dir.path()),
            ["admin.token", "admin.token.tmp-0011223344556677"]
        );
        // Another process's token, created meanwhile, is the one used.
        fs::remove_file(&path).unwrap();
        fs::write(&path, "c".repeat(64)).unwrap();
        set_mode(&path, 0o600);
        assert_eq!(
            load_or_create_admin_token(&path, Symlinks::Refuse)
                .unwrap()
                .as_str(),
            "c".repeat(64)
        );
    }
}
