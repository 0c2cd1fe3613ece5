//! The broker's configuration: the TOML file of production deployments, with the defaults that
//! `tessera serve` uses when it is given none.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default listening address: loopback, so a first start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Largest configuration file read.
const MAX_CONFIG: u64 = 1024 * 1024;

/// TLS files.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// How often the two files are read again, in seconds: a changed pair that loads (a
    /// certificate renewed by cert-manager or certbot) serves the next handshakes, with no
    /// restart; a pair that does not load (half written, a key of another certificate) is
    /// logged and the pair before stays. 0: read at start only. Default 60.
    #[serde(default = "default_tls_reload_secs")]
    pub reload_secs: u64,
}

fn default_tls_reload_secs() -> u64 {
    60
}

impl TlsFiles {
    /// The certificate chain at `cert` and the key at `key`, read again every minute.
    #[must_use]
    pub fn new(cert: PathBuf, key: PathBuf) -> Self {
        Self {
            cert,
            key,
            reload_secs: default_tls_reload_secs(),
        }
    }
}

/// A static admin token.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaticTokenConfig {
    /// A name for the audit log (`token:<name>`).
    pub name: String,
    /// The file holding the token (read once at start).
    pub file: PathBuf,
    /// Repositories the token may manage; absent: all, and the global operations.
    #[serde(default)]
    pub repos: Option<Vec<String>>,
}

/// Admin credentials.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Static tokens.
    #[serde(default)]
    pub tokens: Vec<StaticTokenConfig>,
    /// ES256 public keys (PEM) whose JWTs are admin credentials (`repos` claim scopes them).
    #[serde(default)]
    pub jwt_keys: Vec<PathBuf>,
    /// The `aud` admin JWTs must name (default `tessera-admin`).
    #[serde(default)]
    pub jwt_audience: Option<String>,
    /// The `iss` admin JWTs must carry (default: not checked).
    #[serde(default)]
    pub jwt_issuer: Option<String>,
    /// The longest an admin JWT may be valid for, from now or from its `iat` (default a day).
    #[serde(default = "default_jwt_max_lifetime")]
    pub jwt_max_lifetime_secs: u64,
}

fn default_jwt_max_lifetime() -> u64 {
    crate::admin_auth::DEFAULT_JWT_MAX_LIFETIME_SECS
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            jwt_keys: Vec::new(),
            jwt_audience: None,
            jwt_issuer: None,
            jwt_max_lifetime_secs: default_jwt_max_lifetime(),
        }
    }
}

/// Where evidence is verified against.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VerifierConfig {
    /// DANGEROUS: roots trusted besides the vendors' (simulator roots, for development).
    #[serde(default)]
    pub dangerous_test_roots: Vec<PathBuf>,
    /// Directories of endorsements (VCEKs, CRLs, TDX collateral) read at start.
    #[serde(default)]
    pub endorsements: Vec<PathBuf>,
}

/// Intel's TCB recovery schedule for fetched TCB info and QE identity.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UpdateSchedule {
    /// `update=standard`.
    #[default]
    Standard,
    /// `update=early`.
    Early,
}

/// Where the broker gets endorsements and collateral that evidence and the verifier's
/// endorsement directories lack: a collateral cache, offline unless `fetch` is set.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CollateralConfig {
    /// The cache directory (filled by `tessera collateral import`, or by fetching).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Whether the broker may fetch missing items (AMD KDS, Intel PCS/PCCS). Off by default:
    /// the broker then never calls a foreign service.
    #[serde(default)]
    pub fetch: bool,
    /// AMD KDS base URL (default: AMD's service; used only with `fetch`).
    #[serde(default)]
    pub kds_url: Option<String>,
    /// Intel PCS or PCCS base URL (default: Intel's PCS; used only with `fetch`).
    #[serde(default)]
    pub pcs_url: Option<String>,
    /// A file holding the PCS subscription key (sent to the PCS only).
    #[serde(default)]
    pub pcs_api_key_file: Option<PathBuf>,
    /// Intel's update schedule.
    #[serde(default)]
    pub update: UpdateSchedule,
    /// Per-request fetch timeout, seconds.
    #[serde(default = "default_fetch_timeout")]
    pub timeout_secs: u64,
    /// After a fetch of an item fails, seconds before that item is fetched again (meanwhile
    /// lookups get the same error, or the stored copy while it is valid).
    #[serde(default = "default_retry_after_failure")]
    pub retry_after_failure_secs: u64,
    /// With `fetch`: every this many seconds, items in the cache that are due (a day before
    /// they expire, not before half their life) are fetched again in the background, so that
    /// a KDS or PCS outage at the moment held collateral expires refuses nobody.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval_secs: u64,
    /// At most every this many seconds for each product and signer (SEV-SNP) or FMSPC
    /// (TDX/SGX), the cache is asked whether it holds newer endorsements than those a guest's
    /// evidence was just verified with, and a cache directory's file for an item held in
    /// memory is looked at again: a CRL imported or fetched into the cache is applied within
    /// about this long, not when the one held expires. 0: at every attestation.
    #[serde(default = "default_recheck")]
    pub recheck_secs: u64,
}

fn default_fetch_timeout() -> u64 {
    10
}

fn default_retry_after_failure() -> u64 {
    60
}

fn default_refresh_interval() -> u64 {
    3600
}

fn default_recheck() -> u64 {
    60
}

impl Default for CollateralConfig {
    fn default() -> Self {
        Self {
            dir: None,
            fetch: false,
            kds_url: None,
            pcs_url: None,
            pcs_api_key_file: None,
            update: UpdateSchedule::default(),
            timeout_secs: default_fetch_timeout(),
            retry_after_failure_secs: default_retry_after_failure(),
            refresh_interval_secs: default_refresh_interval(),
            recheck_secs: default_recheck(),
        }
    }
}

/// The whole configuration. Its `Debug` form hides the password of a `postgres://` URL.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The listening address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where `/metrics` is served, with `/healthz` and `/readyz`, instead of `listen`: plain
    /// HTTP (it answers counters and health only, never a credential or a secret), so that
    /// the guest and admin port answers `/metrics` with 404 and scrapers need not reach it.
    /// Unset: all three on `listen`.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The data directory (SQLite store, KEK, token key, admin token).
    pub data_dir: PathBuf,
    /// Serve plain HTTP on a non-loopback address (behind a TLS-terminating proxy only).
    #[serde(default)]
    pub insecure_http: bool,
    /// TLS; without it the broker serves plain HTTP (loopback only unless `insecure_http`).
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Whether the session cookie carries `Secure` (browsers and HTTP clients then send it over
    /// HTTPS only). Default: when `tls` is set. Set it behind a TLS-terminating proxy.
    #[serde(default)]
    pub cookie_secure: Option<bool>,
    /// The store: `sqlite` (the default: a file in the data directory) or a `postgres://` URL
    /// (replicas sharing one database; `TESSERA_DATABASE_URL` overrides it, keeping the password
    /// out of the file). TLS to PostgreSQL: `?sslmode=verify-full&sslrootcert=CA.pem` (the path
    /// as the process sees it; see the README's table of modes).
    #[serde(default)]
    pub store: Option<String>,
    /// Ignore `TESSERA_DATABASE_URL` and use `store` alone (not read from the file: for a
    /// broker that must stay self-contained whatever the environment, such as `tessera demo`).
    #[serde(skip)]
    pub ignore_database_url_env: bool,
    /// The key-encryption key file (default `DATA_DIR/kek`, created 0600 on first start).
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
    /// The attestation-token signing key (default `DATA_DIR/token.key`, created on first start):
    /// a P-256 PKCS#8 PEM (the token is ES256; another key is refused at start).
    #[serde(default)]
    pub token_key_file: Option<PathBuf>,
    /// The keys that secrets sealed for Git are sealed to (default `DATA_DIR/sealing.keys`).
    #[serde(default)]
    pub sealing_key_file: Option<PathBuf>,
    /// The key that signs Confidential Containers sealed secrets (default
    /// `DATA_DIR/coco-signing.key`).
    #[serde(default)]
    pub coco_signing_key_file: Option<PathBuf>,
    /// Lifetime of attestation tokens and sessions, seconds.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// Time allowed to handle one request, seconds.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// The REPORT_DATA binding hash to select when the guest offers it (`sha256`, `sha384` or
    /// `sha512`; the `/auth` answer names it in `selected-hash-algorithm`). Unset, the broker
    /// answers `""` and guests use SHA-384, the protocol default.
    #[serde(default)]
    pub binding_hash: Option<tessera_broker::binding::HashAlgorithm>,
    /// Most connections served at once; further ones wait in the listen backlog until one
    /// ends.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections served at once from one client address (an IPv6 client: its /64);
    /// further ones are closed at once. Unset: no cap. Leave it unset behind a proxy or load
    /// balancer, whose address every client then shares.
    #[serde(default)]
    pub max_connections_per_address: Option<usize>,
    /// A connection with no request in flight for this long is closed, seconds (HTTP/2
    /// included; a connection that has not begun its first request, and an idle HTTP/1
    /// connection, are closed sooner, after 10 s).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Threads that serve connections, each a single-threaded runtime that serves a
    /// connection from its first request to its last (connections are handed out round
    /// robin); 0: connections are tasks of the runtime that runs the server. Unset: one per CPU
    /// with the SQLite store, 0 with PostgreSQL (see the README's performance notes).
    #[serde(default)]
    pub connection_threads: Option<usize>,
    /// How often expired challenges and sessions are deleted from the store, seconds (also
    /// once at start).
    #[serde(default = "default_purge_interval")]
    pub purge_interval_secs: u64,
    /// Admin credentials; with none configured, `DATA_DIR/admin.token` is created and used.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Verification inputs.
    #[serde(default)]
    pub verifier: VerifierConfig,
    /// The collateral cache and whether the broker may fetch.
    #[serde(default)]
    pub collateral: CollateralConfig,
}

fn default_listen() -> SocketAddr {
    // A constant that parses; a failure here would be a typo caught by the tests.
    DEFAULT_LISTEN
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
}

fn default_token_ttl() -> u64 {
    300
}

fn default_request_timeout() -> u64 {
    30
}

fn default_purge_interval() -> u64 {
    60
}

fn default_max_connections() -> usize {
    1024
}

/// Most `connection_threads`.
const MAX_CONNECTION_THREADS: usize = 1024;

fn default_idle_timeout() -> u64 {
    60
}

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than any configuration.
    #[error("{0}: larger than 1 MiB")]
    TooLarge(PathBuf),
    /// The TOML is invalid or has unknown keys.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A value is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The key.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A static admin token (`admin.tokens`) whose `repos` lists `*`, which would scope it to
    /// a repository named `*`: a global static token leaves `repos` out (`"*"` is the wildcard
    /// only of an admin JWT's `repos` claim).
    #[error("admin.tokens.repos: {}", crate::admin_auth::wildcard_message(name))]
    WildcardRepos {
        /// The token's name.
        name: String,
    },
}

impl ServerConfig {
    /// Whether the session cookie carries `Secure`: `cookie_secure`, else whether TLS is set.
    #[must_use]
    pub fn secure_cookies(&self) -> bool {
        self.cookie_secure.unwrap_or(self.tls.is_some())
    }

    /// The threads that serve connections: `connection_threads`, else none with PostgreSQL
    /// (`postgres`) and one per CPU with SQLite (one when the OS cannot say); at most 1024.
    #[must_use]
    pub fn connection_threads(&self, postgres: bool) -> usize {
        let default = || {
            if postgres {
                0
            } else {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }
        };
        self.connection_threads
            .unwrap_or_else(default)
            .min(MAX_CONNECTION_THREADS)
    }

    /// The defaults for a data directory (what `tessera serve` runs with no configuration).
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            listen: default_listen(),
            metrics_listen: None,
            data_dir,
            insecure_http: false,
            tls: None,
            cookie_secure: None,
            store: None,
            ignore_database_url_env: false,
            kek_file: None,
            token_key_file: None,
            sealing_key_file: None,
            coco_signing_key_file: None,
            token_ttl_secs: default_token_ttl(),
            request_timeout_secs: default_request_timeout(),
            binding_hash: None,
            max_connections: default_max_connections(),
            max_connections_per_address: None,
            idle_timeout_secs: default_idle_timeout(),
            connection_threads: None,
            purge_interval_secs: default_purge_interval(),
            admin: AdminConfig::default(),
            verifier: VerifierConfig::default(),
            collateral: CollateralConfig::default(),
        }
    }

    /// Reads a TOML configuration file; relative paths in it are relative to its directory.
    ///
    /// # Errors
    /// [`ConfigError`]: unreadable, invalid TOML, unknown keys, values out of range.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_data_dir(path, || None)
    }

    /// Reads a TOML configuration file as [`Self::load`] does; a file without `data_dir` takes
    /// the directory `default` gives (asked only then; with none, the file is refused for
    /// lacking `data_dir`).
    ///
    /// # Errors
    /// [`ConfigError`]: unreadable, invalid TOML, unknown keys, values out of range, no data
    /// directory.
    pub fn load_with_data_dir(
        path: &Path,
        default: impl FnOnce() -> Option<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        if std::fs::metadata(path).map_err(read)?.len() > MAX_CONFIG {
            return Err(ConfigError::TooLarge(path.to_owned()));
        }
        let original = std::fs::read_to_string(path).map_err(read)?;
        let mut text = original.clone();
        let syntax = |message: String| ConfigError::Syntax {
            path: path.to_owned(),
            message,
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| syntax(e.to_string()))?;
        if !table.contains_key("data_dir")
            && let Some(dir) = default()
        {
            let dir = dir
                .to_str()
                .ok_or_else(|| syntax(format!("{}: not UTF-8", dir.display())))?
                .to_owned();
            table.insert("data_dir".into(), toml::Value::String(dir));
            text = toml::to_string(&table).map_err(|e| syntax(e.to_string()))?;
        }
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_toml(&text, base).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => {
                // The text read was written anew with `data_dir` in it: its lines are not the
                // file's. The file's own text fails at the same place (a missing field is
                // reported after every other error), so its error names the operator's line.
                let message = match toml::from_str::<Self>(&original) {
                    Err(own)
                        if text != original
                            && !own.message().contains("missing field `data_dir`") =>
                    {
                        own.to_string()
                    }
                    _ => message,
                };
                ConfigError::Syntax {
                    path: path.to_owned(),
                    message,
                }
            }
            other => other,
        })
    }

    /// Parses TOML text; relative paths are taken relative to `base`.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.rebase(base);
        config.validate()?;
        Ok(config)
    }

    fn rebase(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        if let Some(tls) = &mut self.tls {
            fix(&mut tls.cert);
            fix(&mut tls.key);
        }
        for p in [
            &mut self.kek_file,
            &mut self.token_key_file,
            &mut self.sealing_key_file,
            &mut self.coco_signing_key_file,
            &mut self.collateral.dir,
            &mut self.collateral.pcs_api_key_file,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        for t in &mut self.admin.tokens {
            fix(&mut t.file);
        }
        self.admin.jwt_keys.iter_mut().for_each(fix);
        self.verifier.dangerous_test_roots.iter_mut().for_each(fix);
        self.verifier.endorsements.iter_mut().for_each(fix);
    }

    /// Checks value ranges, and that no static admin token lists `*` in its `repos`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`], [`ConfigError::WildcardRepos`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls.as_ref().is_some_and(|t| t.reload_secs > 86_400) {
            return Err(ConfigError::Invalid {
                field: "tls.reload_secs",
                reason: "must be at most 86400 (0: read at start only)",
            });
        }
        if !(10..=86_400).contains(&self.token_ttl_secs) {
            return Err(ConfigError::Invalid {
                field: "token_ttl_secs",
                reason: "must be between 10 and 86400",
            });
        }
        if self
            .metrics_listen
            .is_some_and(|m| m == self.listen && m.port() != 0)
        {
            return Err(ConfigError::Invalid {
                field: "metrics_listen",
                reason: "must differ from listen",
            });
        }
        if !(1..=600).contains(&self.request_timeout_secs) {
            return Err(ConfigError::Invalid {
                field: "request_timeout_secs",
                reason: "must be between 1 and 600",
            });
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(ConfigError::Invalid {
                field: "max_connections",
                reason: "must be between 1 and 1000000",
            });
        }
        if self
            .max_connections_per_address
            .is_some_and(|n| !(1..=1_000_000).contains(&n))
        {
            return Err(ConfigError::Invalid {
                field: "max_connections_per_address",
                reason: "must be between 1 and 1000000",
            });
        }
        if self
            .connection_threads
            .is_some_and(|n| n > MAX_CONNECTION_THREADS)
        {
            return Err(ConfigError::Invalid {
                field: "connection_threads",
                reason: "must be between 0 and 1024",
            });
        }
        if !(1..=3600).contains(&self.idle_timeout_secs) {
            return Err(ConfigError::Invalid {
                field: "idle_timeout_secs",
                reason: "must be between 1 and 3600",
            });
        }
        if !(1..=3600).contains(&self.purge_interval_secs) {
            return Err(ConfigError::Invalid {
                field: "purge_interval_secs",
                reason: "must be between 1 and 3600",
            });
        }
        if !(1..=300).contains(&self.collateral.timeout_secs) {
            return Err(ConfigError::Invalid {
                field: "collateral.timeout_secs",
                reason: "must be between 1 and 300",
            });
        }
        if !(60..=2_592_000).contains(&self.admin.jwt_max_lifetime_secs) {
            return Err(ConfigError::Invalid {
                field: "admin.jwt_max_lifetime_secs",
                reason: "must be between 60 and 2592000 (30 days)",
            });
        }
        if !(1..=3600).contains(&self.collateral.retry_after_failure_secs) {
            return Err(ConfigError::Invalid {
                field: "collateral.retry_after_failure_secs",
                reason: "must be between 1 and 3600",
            });
        }
        if !(1..=86_400).contains(&self.collateral.refresh_interval_secs) {
            return Err(ConfigError::Invalid {
                field: "collateral.refresh_interval_secs",
                reason: "must be between 1 and 86400",
            });
        }
        if self.collateral.recheck_secs > 86_400 {
            return Err(ConfigError::Invalid {
                field: "collateral.recheck_secs",
                reason: "must be between 0 and 86400",
            });
        }
        for (field, value) in [
            ("admin.jwt_audience", &self.admin.jwt_audience),
            ("admin.jwt_issuer", &self.admin.jwt_issuer),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "must not be empty",
                });
            }
        }
        if let Some(token) = self.admin.tokens.iter().find(|t| {
            t.repos
                .as_ref()
                .is_some_and(|list| list.iter().any(|r| r.trim() == "*"))
        }) {
            return Err(ConfigError::WildcardRepos {
                name: token.name.clone(),
            });
        }
        match self.store.as_deref() {
            None | Some("sqlite") => {}
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {}
            Some(_) => {
                return Err(ConfigError::Invalid {
                    field: "store",
                    reason: "must be \"sqlite\" or a postgres:// URL",
                });
            }
        }
        Ok(())
    }

    /// The key-encryption key file.
    pub fn kek_path(&self) -> PathBuf {
        self.kek_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("kek"))
    }

    /// The token signing key file.
    pub fn token_key_path(&self) -> PathBuf {
        self.token_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("token.key"))
    }

    /// The sealing keys file.
    pub fn sealing_key_path(&self) -> PathBuf {
        self.sealing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sealing.keys"))
    }

    /// The CoCo sealed-secret signing key file.
    pub fn coco_signing_key_path(&self) -> PathBuf {
        self.coco_signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("coco-signing.key"))
    }

    /// The admin token created on first start when no credential is configured.
    pub fn default_admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin.token")
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            listen,
            metrics_listen,
            data_dir,
            insecure_http,
            tls,
            cookie_secure,
            store,
            ignore_database_url_env,
            kek_file,
            token_key_file,
            sealing_key_file,
            coco_signing_key_file,
            token_ttl_secs,
            request_timeout_secs,
            binding_hash,
            max_connections,
            max_connections_per_address,
            idle_timeout_secs,
            connection_threads,
            purge_interval_secs,
            admin,
            verifier,
            collateral,
        } = self;
        f.debug_struct("ServerConfig")
            .field("listen", listen)
            .field("metrics_listen", metrics_listen)
            .field("data_dir", data_dir)
            .field("insecure_http", insecure_http)
            .field("tls", tls)
            .field("cookie_secure", cookie_secure)
            .field("store", &store.as_deref().map(without_password))
            .field("ignore_database_url_env", ignore_database_url_env)
            .field("kek_file", kek_file)
            .field("token_key_file", token_key_file)
            .field("sealing_key_file", sealing_key_file)
            .field("coco_signing_key_file", coco_signing_key_file)
            .field("token_ttl_secs", token_ttl_secs)
            .field("request_timeout_secs", request_timeout_secs)
            .field("binding_hash", binding_hash)
            .field("max_connections", max_connections)
            .field("max_connections_per_address", max_connections_per_address)
            .field("idle_timeout_secs", idle_timeout_secs)
            .field("connection_threads", connection_threads)
            .field("purge_interval_secs", purge_interval_secs)
            .field("admin", admin)
            .field("verifier", verifier)
            .field("collateral", collateral)
            .finish()
    }
}

/// A store setting with every password in it replaced by `***`: the password of a URL's user
/// information, and the value of every parameter whose name contains `password` in any case
/// (`password`, `sslpassword`), compared after percent-decoding as the driver decodes keys: each
/// of them in a URL's query, or in a `key=value` connection string.
fn without_password(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            // The driver ends the user information at the first `@` (a `/` or `?` before it is
            // part of the password); a password with an `@` in it goes on to a later one, so
            // everything up to the last `@` is masked (more than needed only when the query
            // holds an `@`).
            match rest.rsplit_once('@') {
                Some((userinfo, after)) => {
                    let userinfo = match userinfo.split_once(':') {
                        Some((user, _)) => format!("{user}:***"),
                        None => without_query_passwords(userinfo),
                    };
                    format!("{scheme}://{userinfo}@{}", without_query_passwords(after))
                }
                None => format!("{scheme}://{}", without_query_passwords(rest)),
            }
        }
        _ => without_keyword_passwords(url),
    }
}

/// Whether a parameter name names a password: it contains `password` in any case once
/// `%XX` escapes are decoded (leniently, as `tokio-postgres` decodes URL parameters: a
/// malformed escape stays as it is).
fn is_password_key(key: &str) -> bool {
    String::from_utf8_lossy(&tessera_broker::protocol::percent_decoded(key))
        .to_lowercase()
        .contains("password")
}

/// `part` with the value of every password parameter masked. The pairs are split as the
/// driver splits them, a value running to the next `&`; within a pair, a name may also start
/// after a `?` or an `=` (a query's first pair, a pair the driver would read as part of another
/// value), and from the first password name on the rest of the pair is masked.
fn without_query_passwords(part: &str) -> String {
    part.split('&')
        .map(|pair| {
            let mut name_start = 0;
            for (i, c) in pair.char_indices() {
                match c {
                    '?' => name_start = i + 1,
                    '=' => {
                        let (head, _) = pair.split_at(i);
                        if is_password_key(head.split_at(name_start).1) {
                            return format!("{head}=***");
                        }
                        name_start = i + 1;
                    }
                    _ => {}
                }
            }
            pair.to_owned()
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A `key=value` connection string with the value of every password parameter masked: after
/// each word containing `password` (in any case) and an `=` (whitespace around it allowed, as
/// the driver allows), the value, read as the driver reads it (quoted with `'` or not, `\`
/// escaping the next character; an unterminated quoted value runs to the end). Found wherever
/// it is, even inside another value, so that no malformed string shows one.
fn without_keyword_passwords(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut from = 0;
    while let Some(found) = lower.get(from..).and_then(|l| l.find("password")) {
        let after_word = from + found + "password".len();
        from = after_word;
        let rest = text.split_at(after_word).1;
        // The rest of the word, whitespace, `=`, whitespace.
        let word_end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let rest = rest.split_at(word_end).1;
        let spaces = rest.len() - rest.trim_start().len();
        let Some(rest) = rest.split_at(spaces).1.strip_prefix('=') else {
            continue;
        };
        let value = rest.trim_start();
        let value_start = text.len() - value.len();
        let value_end = value_start + keyword_value_len(value);
        out.push_str(text.split_at(value_start).0.split_at(done).1);
        out.push_str("***");
        done = value_end;
        from = value_end;
    }
    out.push_str(text.split_at(done).1);
    out
}

/// The length of the value at the start of `s` in a `key=value` connection string.
fn keyword_value_len(s: &str) -> usize {
    let quoted = s.starts_with('\'');
    let mut chars = s.char_indices().skip(usize::from(quoted));
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '\'' if quoted => return i + 1,
            c if !quoted && c.is_whitespace() => return i,
            _ => {}
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_relative_paths() {
        let c = ServerConfig::from_toml(
            "data_dir = \"data\"\n[tls]\ncert = \"c.pem\"\nkey = \"/abs/k.pem\"\n",
            Path::new("/etc/tessera"),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, Path::new("/etc/tessera/data"));
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, Path::new("/etc/tessera/c.pem"));
        assert_eq!(tls.key, Path::new("/abs/k.pem"));
        assert_eq!(tls.reload_secs, 60, "read again every minute unless told");
        assert_eq!(c.token_ttl_secs, 300);
        assert_eq!(c.purge_interval_secs, 60);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.idle_timeout_secs, 60);
    }

    #[test]
    fn refusals() {
        let base = Path::new("/");
        assert!(matches!(
            ServerConfig::from_toml("data_dir = \"d\"\nlisten_addr = \"x\"\n", base),
            Err(ConfigError::Syntax { .. })
        ));
        assert!(matches!(
            ServerConfig::from_toml("listen = \"127.0.0.1:1\"\n", base),
            Err(ConfigError::Syntax { .. })
        ));
        assert!(matches!(
            ServerConfig::from_toml("data_dir = \"d\"\ntoken_ttl_secs = 1\n", base),
            Err(ConfigError::Invalid {
                field: "token_ttl_secs",
                ..
            })
        ));
        for bad in ["0", "3601"] {
            assert!(matches!(
                ServerConfig::from_toml(
                    &format!("data_dir = \"d\"\npurge_interval_secs = {bad}\n"),
                    base
                ),
                Err(ConfigError::Invalid {
                    field: "purge_interval_secs",
                    ..
                })
            ));
        }
        let c =
            ServerConfig::from_toml("data_dir = \"d\"\npurge_interval_secs = 5\n", base).unwrap();
        assert_eq!(c.purge_interval_secs, 5);
        // The metrics address: its own, not the broker's.
        assert!(matches!(
            ServerConfig::from_toml(
                "data_dir = \"d\"\nlisten = \"127.0.0.1:8080\"\nmetrics_listen = \"127.0.0.1:8080\"\n",
                base
            ),
            Err(ConfigError::Invalid {
                field: "metrics_listen",
                ..
            })
        ));
        let c = ServerConfig::from_toml(
            "data_dir = \"d\"\nmetrics_listen = \"0.0.0.0:9090\"\n",
            base,
        )
        .unwrap();
        assert_eq!(c.metrics_listen, Some("0.0.0.0:9090".parse().unwrap()));
        let c =
            ServerConfig::from_toml("data_dir = \"d\"\nbinding_hash = \"sha512\"\n", base).unwrap();
        assert_eq!(
            c.binding_hash,
            Some(tessera_broker::binding::HashAlgorithm::Sha512)
        );
        assert!(matches!(
            ServerConfig::from_toml("data_dir = \"d\"\nbinding_hash = \"sm3\"\n", base),
            Err(ConfigError::Syntax { .. })
        ));
        let c = ServerConfig::from_toml(
            "data_dir = \"d\"\n[admin]\njwt_audience = \"kbs\"\njwt_issuer = \"https://ci\"\n",
            base,
        )
        .unwrap();
        assert_eq!(c.admin.jwt_audience.as_deref(), Some("kbs"));
        assert_eq!(c.admin.jwt_issuer.as_deref(), Some("https://ci"));
        for field in ["jwt_audience", "jwt_issuer"] {
            let got = ServerConfig::from_toml(
                &format!("data_dir = \"d\"\n[admin]\n{field} = \" \"\n"),
                base,
            );
            assert!(
                matches!(got, Err(ConfigError::Invalid { field: f, .. }) if f.ends_with(field)),
                "{field}"
            );
        }
    }

    /// `[tls] reload_secs` takes 0 (read at start only) to a day, and refuses more.
    #[test]
    fn tls_reload_secs_is_at_most_a_day() {
        let at = |v: u64| {
            ServerConfig::from_toml(
                &format!("data_dir = \"d\"\n[tls]\ncert = \"c\"\nkey = \"k\"\nreload_secs = {v}\n"),
                Path::new("/"),
            )
        };
        for inside in [0, 1, 86_400] {
            assert_eq!(at(inside).unwrap().tls.unwrap().reload_secs, inside);
        }
        assert!(matches!(
            at(86_401),
            Err(ConfigError::Invalid {
                field: "tls.reload_secs",
                ..
            })
        ));
    }

    /// Each range check refuses just outside its bounds, naming its field, and accepts at them.
    #[test]
    fn every_range_refuses_just_outside_its_bounds() {
        let base = Path::new("/");
        for (setting, low, high, field) in [
            ("token_ttl_secs", 10, 86_400, "token_ttl_secs"),
            ("request_timeout_secs", 1, 600, "request_timeout_secs"),
            ("max_connections", 1, 1_000_000, "max_connections"),
            (
                "max_connections_per_address",
                1,
                1_000_000,
                "max_connections_per_address",
            ),
            ("idle_timeout_secs", 1, 3600, "idle_timeout_secs"),
            ("purge_interval_secs", 1, 3600, "purge_interval_secs"),
            (
                "[collateral]\ntimeout_secs",
                1,
                300,
                "collateral.timeout_secs",
            ),
            (
                "[admin]\njwt_max_lifetime_secs",
                60,
                2_592_000,
                "admin.jwt_max_lifetime_secs",
            ),
            (
                "[collateral]\nretry_after_failure_secs",
                1,
                3600,
                "collateral.retry_after_failure_secs",
            ),
            (
                "[collateral]\nrefresh_interval_secs",
                1,
                86_400,
                "collateral.refresh_interval_secs",
            ),
            (
                "[collateral]\nrecheck_secs",
                0,
                86_400,
                "collateral.recheck_secs",
            ),
        ] {
            let at = |v: u64| {
                ServerConfig::from_toml(&format!("data_dir = \"d\"\n{setting} = {v}\n"), base)
            };
            for inside in [low, high] {
                assert!(at(inside).is_ok(), "{setting} = {inside}");
            }
            for outside in [low.checked_sub(1), Some(high + 1)].into_iter().flatten() {
                assert!(
                    matches!(at(outside), Err(ConfigError::Invalid { field: f, .. }) if f == field),
                    "{setting} = {outside}"
                );
            }
        }
        // Unsigned, from 0: only the upper bound can be crossed (-1 is not a usize).
        let threads = |v: &str| {
            ServerConfig::from_toml(
                &format!("data_dir = \"d\"\nconnection_threads = {v}\n"),
                base,
            )
        };
        assert_eq!(threads("0").unwrap().connection_threads(false), 0);
        assert_eq!(threads("1024").unwrap().connection_threads(true), 1024);
        assert!(matches!(
            threads("1025"),
            Err(ConfigError::Invalid {
                field: "connection_threads",
                ..
            })
        ));
        assert!(threads("-1").is_err());
        let unset = ServerConfig::from_toml("data_dir = \"d\"\n", base).unwrap();
        assert_eq!(unset.connection_threads(true), 0, "PostgreSQL: none");
        assert!(unset.connection_threads(false) >= 1, "SQLite: one per CPU");
        for store in ["mysql://db", "sqlite3", "postgres:/db"] {
            assert!(
                matches!(
                    ServerConfig::from_toml(
                        &format!("data_dir = \"d\"\nstore = \"{store}\"\n"),
                        base
                    ),
                    Err(ConfigError::Invalid { field: "store", .. })
                ),
                "{store}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any store setting is masked without panicking, and a password parameter appended
        /// to a URL never shows, whatever comes before it.
        #[test]
        fn a_password_parameter_never_shows(
            text in "\\PC{0,80}",
            secret in "[a-z]{16}",
        ) {
            let _ = without_password(&text);
            let url = format!("postgres://{text}&password=S{secret}");
            proptest::prop_assert!(!without_password(&url).contains(&secret), "{url}");
            let url = format!("postgres://{text}?password=S{secret}");
            proptest::prop_assert!(!without_password(&url).contains(&secret), "{url}");
        }

        /// So is a password in a key=value string after any words and pairs.
        #[test]
        fn a_password_keyword_never_shows(
            text in "[a-z =']{0,60}",
            secret in "[a-z]{16}",
        ) {
            let s = format!("{text} password=S{secret}");
            proptest::prop_assert!(!without_password(&s).contains(&secret), "{s}");
        }
    }

    #[test]
    fn a_static_admin_token_scoped_to_star_is_refused_at_load() {
        let base = Path::new("/etc/t");
        for repos in ["[\"*\"]", "[\"team-a\", \"*\"]"] {
            let got = ServerConfig::from_toml(
                &format!(
                    "data_dir = \"d\"\n[admin]\ntokens = [\
                     {{ name = \"ops\", file = \"ops.token\", repos = {repos} }}]\n"
                ),
                base,
            );
            match got {
                Err(e @ ConfigError::WildcardRepos { .. }) => {
                    let message = e.to_string();
                    assert!(message.contains("\"ops\""), "{message}");
                    assert!(message.contains("leave repos out"), "{message}");
                }
                other => panic!("{repos}: {other:?}"),
            }
        }
        // Global (repos left out) and scoped tokens load.
        let c = ServerConfig::from_toml(
            "data_dir = \"d\"\n[admin]\ntokens = [\
             { name = \"root\", file = \"root.token\" },\
             { name = \"ops\", file = \"ops.token\", repos = [\"team-a\"] }]\n",
            base,
        )
        .unwrap();
        assert_eq!(c.admin.tokens[0].repos, None);
        assert_eq!(c.admin.tokens[1].repos, Some(vec!["team-a".to_owned()]));
    }

    #[test]
    fn cookie_secure_follows_tls_unless_set() {
        let base = Path::new("/");
        let with = |extra: &str| {
            ServerConfig::from_toml(&format!("data_dir = \"d\"\n{extra}"), base)
                .unwrap()
                .secure_cookies()
        };
        let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        assert!(!with(""));
        assert!(with(tls));
        assert!(with("cookie_secure = true\n"));
        assert!(!with(&format!("cookie_secure = false\n{tls}")));
    }

    #[test]
    fn collateral_section() {
        let c = ServerConfig::from_toml("data_dir = \"d\"\n", Path::new("/etc/t")).unwrap();
        assert_eq!(c.collateral, CollateralConfig::default());
        assert!(!c.collateral.fetch);
        let c = ServerConfig::from_toml(
            "data_dir = \"d\"\n[collateral]\ndir = \"cache\"\nfetch = true\n\
             kds_url = \"http://kds.internal\"\npcs_url = \"https://pccs.internal/sgx/certification/v4\"\n\
             pcs_api_key_file = \"pcs.key\"\nupdate = \"early\"\n",
            Path::new("/etc/t"),
        )
        .unwrap();
        assert_eq!(c.collateral.dir.as_deref(), Some(Path::new("/etc/t/cache")));
        assert_eq!(
            c.collateral.pcs_api_key_file.as_deref(),
            Some(Path::new("/etc/t/pcs.key"))
        );
        assert!(c.collateral.fetch);
        assert_eq!(c.collateral.update, UpdateSchedule::Early);
        let base = Path::new("/");
        assert!(matches!(
            ServerConfig::from_toml("data_dir = \"d\"\n[collateral]\nupdate = \"late\"\n", base),
            Err(ConfigError::Syntax { .. })
        ));
        assert!(matches!(
            ServerConfig::from_toml("data_dir = \"d\"\n[collateral]\nfetch_url = \"x\"\n", base),
            Err(ConfigError::Syntax { .. })
        ));
        assert!(matches!(
            ServerConfig::from_toml("data_dir = \"d\"\n[collateral]\ntimeout_secs = 0\n", base),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn a_file_without_data_dir_takes_the_default_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n").unwrap();
        let c = ServerConfig::load_with_data_dir(&file, || Some(PathBuf::from("/var/t"))).unwrap();
        assert_eq!(c.data_dir, Path::new("/var/t"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert!(matches!(
            ServerConfig::load(&file),
            Err(ConfigError::Syntax { ref path, ref message })
                if path == &file && message.contains("data_dir")
        ));
        std::fs::write(&file, "data_dir = \"own\"\n").unwrap();
        let c = ServerConfig::load_with_data_dir(&file, || panic!("not asked")).unwrap();
        assert_eq!(c.data_dir, dir.path().join("own"));
        // An error names the file's own line, though the text parsed was given `data_dir`.
        std::fs::write(
            &file,
            "# a comment\n\nlisten = \"127.0.0.1:9000\"\nfoo = 1\n[tls]\ncert = \"c\"\n",
        )
        .unwrap();
        match ServerConfig::load_with_data_dir(&file, || Some(PathBuf::from("/d"))) {
            Err(ConfigError::Syntax { message, .. }) => {
                assert!(
                    message.contains("line 4") && message.contains("foo"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(
            &file,
            "# a comment\n\n\n[tls]\ncert = \"c\"\nkey = \"k\"\nreload_secs = -1\n",
        )
        .unwrap();
        match ServerConfig::load_with_data_dir(&file, || Some(PathBuf::from("/d"))) {
            Err(ConfigError::Syntax { message, .. }) => {
                assert!(message.contains("line 7"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&file, "[[[").unwrap();
        assert!(matches!(
            ServerConfig::load_with_data_dir(&file, || Some(PathBuf::from("/d"))),
            Err(ConfigError::Syntax { .. })
        ));
        std::fs::write(&file, "#".repeat(1024 * 1024 + 1)).unwrap();
        assert!(matches!(
            ServerConfig::load(&file),
            Err(ConfigError::TooLarge(_))
        ));
    }

    #[test]
    fn key_paths() {
        let c = ServerConfig::with_data_dir(PathBuf::from("/d"));
        assert_eq!(c.kek_path(), Path::new("/d/kek"));
        assert_eq!(c.token_key_path(), Path::new("/d/token.key"));
    }

    #[test]
    fn the_debug_form_hides_the_store_password() {
        let mut c = ServerConfig::with_data_dir("/d".into());
        for (url, shown) in [
            (
                "postgres://tessera:s3cr3t-pw@db.example:5432/tessera?sslmode=disable",
                "postgres://tessera:***@db.example:5432/tessera?sslmode=disable",
            ),
            (
                "postgres://db.example/tessera?user=t&password=s3cr3t-pw&x=1",
                "postgres://db.example/tessera?user=t&password=***&x=1",
            ),
            (
                "postgres://tessera:s3cr3t-pw?x/y@db.example/tessera?sslmode=disable",
                "postgres://tessera:***@db.example/tessera?sslmode=disable",
            ),
            (
                "host=db user=t password=s3cr3t-pw",
                "host=db user=t password=***",
            ),
            ("sqlite", "sqlite"),
        ] {
            c.store = Some(url.into());
            let debug = format!("{c:?}");
            assert!(!debug.contains("s3cr3t-pw"), "{debug}");
            assert!(debug.contains(shown), "{debug}");
        }
    }

    #[test]
    fn every_password_in_a_store_setting_is_masked() {
        for (url, shown) in [
            // Not only the first `password=`: a key ending in it comes first, or a second one.
            (
                "postgres://db/t?sslpassword=x&password=s3cr3t-pw",
                "postgres://db/t?sslpassword=***&password=***",
            ),
            (
                "postgres://db/t?password=s3cr3t-pw&sslmode=disable&password=s3cr3t-pw2",
                "postgres://db/t?password=***&sslmode=disable&password=***",
            ),
            (
                "postgres://u:s3cr3t-pw@db/t?password=s3cr3t-pw2",
                "postgres://u:***@db/t?password=***",
            ),
            // Keys compared as the driver decodes them (`%77` is `w`, `%70` is `p`).
            (
                "postgres://db/t?pass%77ord=s3cr3t-pw&%70assword=s3cr3t-pw2",
                "postgres://db/t?pass%77ord=***&%70assword=***",
            ),
            (
                "postgres://db/t?PassWord=s3cr3t-pw",
                "postgres://db/t?PassWord=***",
            ),
            // The driver reads a key up to `=`, so `flag&password` is one key.
            (
                "postgres://db/t?flag&password=s3cr3t-pw",
                "postgres://db/t?flag&password=***",
            ),
            // A `?` or `@` in a value or a password.
            (
                "postgresql://db/t?password=s3cr3t-pw?x&sslmode=disable",
                "postgresql://db/t?password=***&sslmode=disable",
            ),
            ("postgres://u:p@s3cr3t-pw@db/t", "postgres://u:***@db/t"),
            (
                "postgres://db/t?password=s3cr3t-pw@x&sslmode=disable",
                "postgres://db/t?password=***@x&sslmode=disable",
            ),
            // The key=value form: every password, spaces around `=`, quoted values.
            (
                "host=db password=s3cr3t-pw sslpassword = s3cr3t-pw2 user=t",
                "host=db password=*** sslpassword = *** user=t",
            ),
            (
                "host=db password='s3cr3t-pw \\' more' user=t",
                "host=db password=*** user=t",
            ),
            (
                "host=db password=s3cr3t\\ -pw user=t",
                "host=db password=*** user=t",
            ),
            ("host=db password='s3cr3t-pw", "host=db password=***"),
            // A password inside another value, as a malformed string may have it.
            ("host='db password=s3cr3t-pw", "host='db password=***"),
            ("= password=s3cr3t-pw", "= password=***"),
            (
                "postgres://db/t?=?password=s3cr3t-pw",
                "postgres://db/t?=?password=***",
            ),
            // An `@` before the query: the driver reads a host, but the password is masked.
            (
                "postgres://db/t?x@y&password=s3cr3t-pw",
                "postgres://db/t?x@y&password=***",
            ),
            (
                "stray host=db password=s3cr3t-pw",
                "stray host=db password=***",
            ),
        ] {
            let masked = without_password(url);
            assert_eq!(masked, shown, "{url}");
            assert!(!masked.contains("s3cr3t"), "{masked}");
        }
        // Nothing else is changed.
        for url in [
            "sqlite",
            "postgres://db:5432/t?sslmode=verify-full&sslrootcert=/ca.pem",
            "host=db user=t",
            "",
        ] {
            assert_eq!(without_password(url), url);
        }
    }
}
