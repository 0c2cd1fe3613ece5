//! Fetching items from their sources: the HTTP transport (feature `fetch`: ureq over rustls
//! with aws-lc-rs), per-source backoff after 429, and the timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_pki::UnixTime;

use crate::CollateralError;
use crate::entry::Entry;
use crate::item::Item;
use crate::response::{self, HttpResponse, Outcome};
use crate::source::{KdsSource, PCS_API_KEY_HEADER, PcsSource};

/// Sends one GET request. The `fetch` feature provides [`UreqTransport`]; a service with its
/// own HTTP stack can implement this instead.
pub trait Transport: Send + Sync + core::fmt::Debug {
    /// GET `url` with `headers`; any status is a response, not an error.
    ///
    /// # Errors
    /// A message when no response was received (connection, TLS, timeout, body too large).
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, String>;
}

/// The pause before a 502, 503 or 504 answer is asked once more.
pub const SERVER_ERROR_PAUSE: Duration = Duration::from_millis(250);

/// How patient a [`Fetcher`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchConfig {
    /// Per request, connection to last body byte.
    pub timeout: Duration,
    /// Requests per item, the first included, when the service answers 429.
    pub max_attempts: u32,
    /// Longest wait for a `Retry-After` before giving up with [`CollateralError::RateLimited`]
    /// (later calls also fail fast until the service's time has passed).
    pub max_wait: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_attempts: 3,
            max_wait: Duration::from_secs(30),
        }
    }
}

/// Fetches items from an AMD KDS and an Intel PCS / PCCS.
#[derive(Debug)]
pub struct Fetcher {
    kds: KdsSource,
    pcs: PcsSource,
    transport: Arc<dyn Transport>,
    config: FetchConfig,
    /// Per origin: no request before this instant (429 backoff).
    blocked: Mutex<HashMap<String, Instant>>,
    requests: AtomicU64,
}

impl Fetcher {
    /// A fetcher over `transport`, asking AMD's KDS and Intel's PCS.
    #[must_use]
    pub fn new(transport: Arc<dyn Transport>, config: FetchConfig) -> Self {
        Self {
            kds: KdsSource::amd(),
            pcs: PcsSource::intel(),
            transport,
            config,
            blocked: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        }
    }

    /// A fetcher over HTTPS (ureq, rustls, Mozilla's roots) with `config`'s timeout.
    ///
    /// # Errors
    /// None today; kept fallible for the TLS set-up.
    #[cfg(feature = "fetch")]
    pub fn online(config: FetchConfig) -> Result<Self, CollateralError> {
        let transport = UreqTransport::new(config.timeout)?;
        Ok(Self::new(Arc::new(transport), config))
    }

    /// Ask `kds` for AMD items.
    #[must_use]
    pub fn with_kds(mut self, kds: KdsSource) -> Self {
        self.kds = kds;
        self
    }

    /// Ask `pcs` for Intel items.
    #[must_use]
    pub fn with_pcs(mut self, pcs: PcsSource) -> Self {
        self.pcs = pcs;
        self
    }

    /// Requests sent so far (for metrics and tests).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The URL `item` is fetched from.
    #[must_use]
    pub fn url(&self, item: &Item) -> String {
        self.kds
            .url(item)
            .or_else(|| self.pcs.url(item))
            .unwrap_or_default()
    }

    /// Fetch `item` and check its shape; `now` is the wall-clock time (for `fetched_at` and
    /// the expiry check).
    ///
    /// # Errors
    /// [`CollateralError::RateLimited`] when the service keeps answering 429 or asks for a
    /// wait longer than [`FetchConfig::max_wait`]; [`CollateralError::Transport`],
    /// [`CollateralError::Status`], [`CollateralError::Response`],
    /// [`CollateralError::Expired`] otherwise.
    pub fn fetch(&self, item: &Item, now: UnixTime) -> Result<Entry, CollateralError> {
        let key = item.key();
        let url = self.url(item);
        // Backoff is per origin (scheme and authority): Intel's Root CA CRL host is not its PCS.
        let base = origin(&url).to_owned();
        let api_key = if item.is_amd() {
            None
        } else {
            self.pcs.api_key_for(&url)
        };
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(k) = api_key {
            headers.push((PCS_API_KEY_HEADER, k.expose()));
        }
        let started = Instant::now();
        let mut last_retry_at = now;
        let mut retried_server_error = false;
        let mut attempts = 0;
        // Attempts count 429s; the one repeat of a 502-504 is besides them.
        while attempts < self.config.max_attempts.max(1) {
            attempts += 1;
            if let Some(until) = self.blocked_until(&base) {
                let wait = until.saturating_duration_since(Instant::now());
                if wait > self.config.max_wait {
                    return Err(CollateralError::RateLimited {
                        key,
                        retry_at: later(now, started.elapsed() + wait),
                    });
                }
                std::thread::sleep(wait);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let response = self.transport.get(&url, &headers).map_err(|detail| {
                CollateralError::Transport {
                    key: key.clone(),
                    detail: format!("{base}: {}", crate::error::sanitise(&detail, 512)),
                }
            })?;
            let outcome = match response::classify(item, &response, now) {
                // A gateway's or an overloaded service's passing error: asked once more after
                // a short pause, so one blip does not refuse the item for the failure wait.
                Err(CollateralError::Status {
                    status: 502..=504, ..
                }) if !retried_server_error => {
                    retried_server_error = true;
                    attempts -= 1;
                    std::thread::sleep(SERVER_ERROR_PAUSE);
                    continue;
                }
                other => other?,
            };
            match outcome {
                Outcome::RateLimited { retry_after_secs } => {
                    let wait = Duration::from_secs(retry_after_secs);
                    self.block(&base, wait);
                    last_retry_at = later(now, started.elapsed() + wait);
                }
                Outcome::Ok { issuer_chain } => {
                    let entry = Entry::new(item.clone(), &url, now, response.body, issuer_chain)?;
                    entry.check_not_expired(now)?;
                    return Ok(entry);
                }
            }
        }
        Err(CollateralError::RateLimited {
            key,
            retry_at: last_retry_at,
        })
    }

    fn blocked_until(&self, base: &str) -> Option<Instant> {
        let map = self.blocked.lock().ok()?;
        map.get(base).copied().filter(|t| *t > Instant::now())
    }

    fn block(&self, base: &str, wait: Duration) {
        if let Ok(mut map) = self.blocked.lock() {
            let until = Instant::now() + wait;
            let slot = map.entry(base.to_owned()).or_insert(until);
            if *slot < until {
                *slot = until;
            }
        }
    }
}

/// `scheme://authority` of `url`.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url
        .get(after_scheme..)
        .and_then(|rest| rest.find(['/', '?', '#']))
        .map_or(url.len(), |i| after_scheme + i);
    url.get(..end).unwrap_or(url)
}

fn later(now: UnixTime, wait: Duration) -> UnixTime {
    let secs = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX);
    UnixTime::from_secs(now.as_secs().saturating_add(secs))
}

/// HTTP(S) with ureq 3 over rustls (aws-lc-rs provider, Mozilla's roots); plain `http://` is
/// allowed for mirrors inside the operator's network. Redirects are not followed (a 3xx is
/// an error naming its status).
#[cfg(feature = "fetch")]
#[derive(Debug)]
pub struct UreqTransport {
    agent: ureq::Agent,
}

#[cfg(feature = "fetch")]
impl UreqTransport {
    /// A client whose requests time out after `timeout`.
    ///
    /// # Errors
    /// None today; kept fallible for the TLS set-up.
    pub fn new(timeout: Duration) -> Result<Self, CollateralError> {
        use ureq::tls::{TlsConfig, TlsProvider};
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(provider)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // No redirects: a redirect could carry the PCS key header to another host, and
            // the vendors' endpoints answer directly; point a source at the final URL.
            .max_redirects(0)
            .user_agent(concat!("tessera-collateral/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Ok(Self { agent })
    }
}

#[cfg(feature = "fetch")]
impl Transport for UreqTransport {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, String> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .take(response::MAX_HEADERS)
            .filter_map(|(name, value)| {
                let value = value.to_str().ok()?;
                (value.len() <= response::MAX_HEADER_LEN)
                    .then(|| (name.as_str().to_owned(), value.to_owned()))
            })
            .collect();
        let limit = u64::try_from(response::MAX_BODY_LEN).unwrap_or(u64::MAX);
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins() {
        assert_eq!(
            super::origin("https://kdsintf.amd.com/vcek/v1/Milan/crl"),
            "https://kdsintf.amd.com"
        );
        assert_eq!(
            super::origin("http://127.0.0.1:8080?x=1"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(super::origin("http://h"), "http://h");
        assert_eq!(super::origin("weird"), "weird");
    }
}
