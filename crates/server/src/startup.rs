//! Assembling a broker from its configuration: the data directory, the KEK and the token signing
//! key (created 0600 on first start), the store, the verifier's trust anchors and endorsements,
//! and the admin credentials (a token created on first start when none is configured).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tessera::{EndorsementRequest, Endorsements, Evidence, Verifier};
use tessera_broker::engine::EndorsementSource;
use tessera_broker::engine::{Broker, BrokerOptions};
use tessera_broker::gitseal::{CocoSigner, SealingKeys};
use tessera_broker::seal::KeyringFile;
use tessera_broker::store::{PostgresStore, SqliteStore, Store};
use tessera_collateral::{ApiKey, Cache, FetchConfig, Fetcher, KdsSource, PcsSource, UpdateType};
use tessera_pki::load_certificates;
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
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(String),
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

fn read_small(path: &Path) -> Result<Zeroizing<Vec<u8>>, StartError> {
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, e))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(file_error(path, "larger than 1 MiB"));
    }
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| file_error(path, e))
}

/// Creates `path` with mode 0600 holding `bytes`; fails if it exists.
fn create_private(path: &Path, bytes: &[u8]) -> Result<(), StartError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| file_error(path, e))?;
    file.write_all(bytes).map_err(|e| file_error(path, e))?;
    file.sync_all().map_err(|e| file_error(path, e))
}

/// Creates the data directory (0700) if it does not exist.
fn ensure_dir(dir: &Path) -> Result<(), StartError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| file_error(dir, e))
}

/// The token signing key at `path`, created (ES256, 0600) if absent.
///
/// # Errors
/// An unreadable file or one that holds no ES256 PKCS#8 key.
pub fn load_or_create_token_key(path: &Path) -> Result<SigningKey, StartError> {
    let key_error = |e: &dyn std::fmt::Display| StartError::Key {
        path: path.to_owned(),
        message: e.to_string(),
    };
    if path.exists() {
        let pem = read_small(path)?;
        let text = std::str::from_utf8(&pem).map_err(|e| key_error(&e))?;
        return SigningKey::from_pkcs8_pem(text).map_err(|e| key_error(&e));
    }
    let key = SigningKey::generate(Alg::Es256).map_err(|e| key_error(&e))?;
    let pem = key.to_pkcs8_pem().map_err(|e| key_error(&e))?;
    create_private(path, pem.as_bytes())?;
    Ok(key)
}

/// The admin token at `path`, created (32 random bytes, hex, 0600) if absent.
///
/// # Errors
/// An unreadable file, or randomness that failed.
pub fn load_or_create_admin_token(path: &Path) -> Result<Zeroizing<String>, StartError> {
    if path.exists() {
        let bytes = read_small(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| file_error(path, e))?;
        return Ok(Zeroizing::new(text.trim().to_owned()));
    }
    let mut raw = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(raw.as_mut()).map_err(|_| file_error(path, "no randomness"))?;
    let token = Zeroizing::new(hex_encode(raw.as_ref()));
    create_private(path, format!("{}\n", token.as_str()).as_bytes())?;
    Ok(token)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        Some(dir) => Cache::open(dir).map_err(|e| file_error(dir, e))?,
        None if config.fetch => Cache::in_memory(),
        None => return Ok(None),
    };
    if !config.fetch {
        return Ok(Some(cache));
    }
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
        let bytes = read_small(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| file_error(path, e))?;
        pcs = pcs.with_api_key(ApiKey::new(text.trim().to_owned()));
    }
    Ok(Some(cache.with_fetcher(fetcher.with_pcs(pcs))))
}

/// The broker's [`EndorsementSource`] over `cache`: the VCEK, chain and CRL of an SEV-SNP
/// report, or the collateral of a quote, each read (or fetched) through the cache and handed
/// to the verifier, which checks them like any other endorsement.
pub fn cache_source(cache: Arc<Cache>, update: UpdateSchedule) -> EndorsementSource {
    let update = match update {
        UpdateSchedule::Standard => UpdateType::Standard,
        UpdateSchedule::Early => UpdateType::Early,
    };
    Arc::new(
        move |evidence: &Evidence, needed: &EndorsementRequest| -> Result<Endorsements, String> {
            let now = tessera_pki::UnixTime::now();
            let mut out = Endorsements::new();
            match needed {
                EndorsementRequest::SnpVek { product, .. } => {
                    let report = evidence
                        .snp_report()
                        .ok_or("the evidence is not an SEV-SNP report")?;
                    let product = product.ok_or("the report does not say its product")?;
                    let got = tessera_collateral::snp_endorsements(&cache, report, product, now)
                        .map_err(|e| e.to_string())?;
                    out.add_certificates(got.certificates);
                    out.add_crls(got.crls);
                }
                EndorsementRequest::TdxCollateral { .. } => {
                    let quote = evidence.quote().ok_or("the evidence is not a quote")?;
                    let got = tessera_collateral::tdx_collateral(&cache, quote, update, now)
                        .map_err(|e| e.to_string())?;
                    out.add_collateral(got);
                }
                _ => return Err("an endorsement the cache does not hold".to_owned()),
            }
            Ok(out)
        },
    )
}

/// The broker and admin credentials for `config` (no socket yet).
///
/// # Errors
/// [`StartError`].
pub async fn assemble(config: &ServerConfig) -> Result<(Broker, AdminAuth, StartInfo), StartError> {
    ensure_dir(&config.data_dir)?;
    let keyring = KeyringFile::open_or_create(&config.kek_path())
        .map_err(|e| file_error(&config.kek_path(), e))?;
    let token_key = load_or_create_token_key(&config.token_key_path())?;
    let database_url = std::env::var("TESSERA_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| config.store.clone().filter(|s| s != "sqlite"));
    let store: Arc<dyn Store> = match database_url {
        Some(url) => Arc::new(
            PostgresStore::connect(&url)
                .await
                .map_err(|e| StartError::Store(e.to_string()))?,
        ),
        None => Arc::new(
            SqliteStore::open(&config.data_dir)
                .await
                .map_err(|e| StartError::Store(e.to_string()))?,
        ),
    };
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
        let text = read_small(&token.file)?;
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
    for path in &config.admin.jwt_keys {
        let pem = read_small(path)?;
        let text = std::str::from_utf8(&pem).map_err(|e| file_error(path, e))?;
        admin
            .add_jwt_key_pem(text)
            .map_err(|e| file_error(path, e))?;
    }
    let mut admin_token_file = None;
    if !admin.is_configured() {
        let path = config.default_admin_token_path();
        let token = load_or_create_admin_token(&path)?;
        admin
            .add_static("admin", &token, None)
            .map_err(|e| file_error(&path, e))?;
        admin_token_file = Some(path);
    }
    let broker = Broker::new(
        store,
        Arc::new(keyring),
        verifier,
        token_key,
        BrokerOptions {
            token_ttl_secs: config.token_ttl_secs,
            hash: config.binding_hash,
        },
    )
    .map_err(|e| StartError::Broker(e.to_string()))?;
    let now_ms = tessera_pki::UnixTime::now().as_secs().saturating_mul(1000);
    let sealing_path = config.sealing_key_path();
    let sealing = SealingKeys::open_or_create(&sealing_path, now_ms)
        .map_err(|e| file_error(&sealing_path, e))?;
    let coco_path = config.coco_signing_key_path();
    let coco = CocoSigner::open_or_create(&coco_path).map_err(|e| file_error(&coco_path, e))?;
    let mut broker = broker.with_git_sealing(sealing, coco);
    let collateral = collateral_cache(&config.collateral)?.map(Arc::new);
    if let Some(cache) = &collateral {
        broker = broker
            .with_endorsement_source(cache_source(Arc::clone(cache), config.collateral.update));
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
    let (broker, admin, info) = assemble(config).await?;
    let metrics = Metrics::default();
    if let Some(cache) = &info.collateral_cache {
        metrics.set_collateral_cache(Arc::clone(cache));
    }
    let state = AppState {
        broker,
        admin: Arc::new(admin),
        metrics: Arc::new(metrics),
        secure_cookies: config.tls.is_some(),
        request_timeout: Duration::from_secs(config.request_timeout_secs),
    };
    let server = Server::bind(config, state).await?;
    Ok((server, info))
}
