//! A blocking client for the KBS 0.4.0 protocol: handshake, attestation and resource fetch.
//!
//! Written from Tessera's PROTOCOL.md alone, sharing no code with the broker, so the two are
//! independent implementations that must interoperate. One flow:
//!
//! ```text
//! TeeKey::generate ─▶ POST /kbs/v0/auth ─▶ Challenge {session cookie, nonce, hash}
//!   ─▶ report_data = H(JCS({"additional-evidence":"","nonce","tee-pubkey"})) ‖ 0…
//!   ─▶ evidence_for(&report_data) ─▶ POST /kbs/v0/attest ─▶ Token
//!   ─▶ GET /kbs/v0/resource/repo/type/tag (cookie or Bearer) ─▶ JWE ─▶ TeeKey::decrypt
//! ```
//!
//! [`Client::get_secret`] runs the flow with the retries CoCo guests use: the handshake is
//! tried up to [`RetryPolicy::handshake_attempts`] times (default 5) [`RetryPolicy::handshake_delay`]
//! apart (default 1 s) while the error [is retryable](ClientError::is_retryable); a 401 on the
//! resource GET redoes the whole handshake (a fresh TEE key and evidence) and retries, up to
//! [`RetryPolicy::resource_attempts`] GETs in all (default 3); a 403 (`PolicyDeny`) or any other
//! answer ends it at once. The steps are public too ([`Client::auth`], [`Client::attest`],
//! [`Client::resource`]) so tests can drive the protocol's bad paths.
//!
//! Transport: `ureq` 3 over rustls with the aws-lc-rs provider; Mozilla's roots, or only the
//! pinned CA when [`ClientOptions::ca_pem`] is set; no proxy, no redirects, no compression;
//! every answer's body is read under a cap. Plain `http://` is accepted for loopback hosts only,
//! unless [`ClientOptions::dangerous_plain_http`].

mod binding;
mod error;
mod jwe;
mod key;
mod wire;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ureq::http::{Response, Uri};
use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Agent, Body};
use zeroize::Zeroizing;

pub use binding::{HashAlg, binding_json, report_data};
pub use error::{ClientError, Step};
pub use jwe::{MAX_RESOURCE_RESPONSE, protected_header_in_coco_order};
pub use key::{TeeKey, TeeKeyAlg};
pub use wire::{
    Challenge, Credential, ERROR_TYPE_PREFIX, MAX_ATTEST_RESPONSE, MAX_AUTH_RESPONSE,
    MAX_ERROR_RESPONSE, MAX_NONCE_LEN, MAX_SEGMENT_LEN, MAX_SESSION_ID_LEN, PROTOCOL_VERSION,
    ResourcePath, SESSION_COOKIE, Session, Token, attest_request, auth_request, check_tee,
    parse_challenge, parse_error, parse_set_cookie, parse_token,
};

/// How the resource GET proves the attestation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// The attested session's `kbs-session-id` cookie (what the attestation agent does).
    #[default]
    Cookie,
    /// `Authorization: Bearer <token from /attest>` (what the CDH does).
    Bearer,
}

/// Retry counts and delay (CoCo's: 5 handshakes 1 s apart, 3 resource GETs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Handshake attempts in all (at least 1 is made).
    pub handshake_attempts: u32,
    /// Pause between two handshake attempts.
    pub handshake_delay: Duration,
    /// Resource GETs in all; each 401 before the last one redoes the handshake.
    pub resource_attempts: u32,
}

impl RetryPolicy {
    /// One attempt at each step and no pause: for callers that retry on their own terms (the
    /// demo, tests, benchmarks), and to see every refusal as it is.
    pub const ONCE: Self = Self {
        handshake_attempts: 1,
        handshake_delay: Duration::ZERO,
        resource_attempts: 1,
    };
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            handshake_attempts: 5,
            handshake_delay: Duration::from_secs(1),
            resource_attempts: 3,
        }
    }
}

/// Client settings. `ClientOptions::default()`: Mozilla roots, 60 s per request, P-256 key,
/// cookie authentication, CoCo's retries, https only (plain http to loopback is allowed).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// PEM certificates to trust instead of Mozilla's roots (a private KBS CA).
    pub ca_pem: Option<Vec<u8>>,
    /// Time allowed for one request, from connecting to the last body byte.
    pub timeout: Duration,
    /// The ephemeral TEE key kind.
    pub key_alg: TeeKeyAlg,
    /// How the resource GET authenticates.
    pub auth: AuthMode,
    /// Retries.
    pub retry: RetryPolicy,
    /// Allow plain `http://` to hosts that are not loopback. The broker's answers then travel
    /// unauthenticated (the secret is still encrypted to the TEE key, but the token and session
    /// can be stolen and the answers forged): for tests and closed networks only.
    pub dangerous_plain_http: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ca_pem: None,
            timeout: Duration::from_secs(60),
            key_alg: TeeKeyAlg::P256,
            auth: AuthMode::Cookie,
            retry: RetryPolicy::default(),
            dangerous_plain_http: false,
        }
    }
}

/// The result of one handshake: the key the broker will encrypt to, the attested session and
/// the token.
#[derive(Debug)]
pub struct Attestation {
    /// The ephemeral TEE key bound into the evidence.
    pub key: TeeKey,
    /// The session cookie.
    pub session: Session,
    /// The attestation token.
    pub token: Token,
}

impl Attestation {
    /// The credential for a resource GET in `mode`.
    #[must_use]
    pub fn credential(&self, mode: AuthMode) -> Credential<'_> {
        match mode {
            AuthMode::Cookie => Credential::Cookie(&self.session),
            AuthMode::Bearer => Credential::Bearer(&self.token),
        }
    }
}

/// A KBS client bound to one broker.
pub struct Client {
    base: String,
    agent: Agent,
    key_alg: TeeKeyAlg,
    auth: AuthMode,
    retry: RetryPolicy,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("key_alg", &self.key_alg)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// ureq's resolver, except that a URL naming an IP address is answered at once. With a timeout
/// set (the client always sets one), ureq's own resolver starts a thread for every request to
/// run the lookup in, even for `127.0.0.1`; `ureq`'s resolver API is its `unversioned` one (the
/// lock file pins the version).
#[derive(Debug, Default)]
struct LiteralFirst(DefaultResolver);

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = literal_addr(uri) {
            let mut out = self.empty();
            out.push(addr);
            return Ok(out);
        }
        // `localhost` is loopback (RFC 6761), never a lookup: plain HTTP is allowed to it, and
        // a resolver that asked DNS (no `/etc/hosts` entry) would let the network choose
        // where a guest's requests go.
        if let Some(port) = localhost_port(uri) {
            let mut out = self.empty();
            out.push(std::net::SocketAddr::new(
                IpAddr::from([127, 0, 0, 1]),
                port,
            ));
            out.push(std::net::SocketAddr::new(
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                port,
            ));
            return Ok(out);
        }
        self.0.resolve(uri, config, timeout)
    }
}

/// The port of a URL: its own, or its scheme's; none for an unknown scheme.
fn port_of(uri: &Uri) -> Option<u16> {
    match (uri.port_u16(), uri.scheme_str()) {
        (Some(p), _) => Some(p),
        (None, Some("https")) => Some(443),
        (None, Some("http")) => Some(80),
        _ => None,
    }
}

/// The socket address of a URL whose host is an IP address (IPv6 in brackets), with the
/// scheme's port when the URL names none; none for a name (or an unknown scheme).
fn literal_addr(uri: &Uri) -> Option<std::net::SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    Some(std::net::SocketAddr::new(ip, port_of(uri)?))
}

/// The port of a URL whose host is `localhost` (any case, with or without the root's dot).
fn localhost_port(uri: &Uri) -> Option<u16> {
    let host = uri.host()?;
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        .then(|| port_of(uri))
        .flatten()
}

/// Parses and normalizes the base URL: `http(s)://host[:port][/prefix]`, trailing `/` removed.
fn normalize_base(base_url: &str, dangerous_plain_http: bool) -> Result<String, ClientError> {
    let bad = |reason| ClientError::InvalidBaseUrl { reason };
    let uri: Uri = base_url.parse().map_err(|_| bad("not a URL"))?;
    let scheme = uri.scheme_str().ok_or(bad("no scheme"))?;
    let authority = uri.authority().ok_or(bad("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("user information is not allowed"));
    }
    if uri.query().is_some() || base_url.contains('#') {
        return Err(bad("a query or fragment is not allowed"));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    match scheme {
        "https" => {}
        "http" => {
            let h = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = h.eq_ignore_ascii_case("localhost")
                || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback && !dangerous_plain_http {
                return Err(ClientError::PlainHttpRefused);
            }
        }
        _ => return Err(bad("the scheme is neither https nor http")),
    }
    let path = uri.path().trim_end_matches('/');
    Ok(format!("{scheme}://{}{path}", authority.as_str()))
}

fn root_certs(ca_pem: Option<&[u8]>) -> Result<RootCerts, ClientError> {
    let Some(pem) = ca_pem else {
        return Ok(RootCerts::WebPki);
    };
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {
                return Err(ClientError::InvalidCaPem {
                    reason: "holds something other than certificates",
                });
            }
            Err(_) => {
                return Err(ClientError::InvalidCaPem {
                    reason: "malformed PEM",
                });
            }
        }
    }
    if certs.is_empty() {
        return Err(ClientError::InvalidCaPem {
            reason: "no certificate",
        });
    }
    Ok(RootCerts::new_with_certs(&certs))
}

impl Client {
    /// A client for the broker at `base_url` (`https://host[:port][/prefix]`).
    ///
    /// # Errors
    /// [`ClientError::InvalidBaseUrl`], [`ClientError::PlainHttpRefused`],
    /// [`ClientError::InvalidCaPem`].
    pub fn new(base_url: &str, opts: ClientOptions) -> Result<Client, ClientError> {
        let base = normalize_base(base_url, opts.dangerous_plain_http)?;
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(root_certs(opts.ca_pem.as_deref())?)
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build();
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .accept_encoding("identity")
            .accept("application/json")
            .user_agent(concat!("tessera-guest/", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(opts.timeout))
            .tls_config(tls)
            .build();
        Ok(Client {
            base,
            agent: Agent::with_parts(config, DefaultConnector::new(), LiteralFirst::default()),
            key_alg: opts.key_alg,
            auth: opts.auth,
            retry: opts.retry,
        })
    }

    /// The normalized base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, target: &str) -> String {
        format!("{}{target}", self.base)
    }

    fn post_json(
        &self,
        step: Step,
        target: &str,
        session: Option<&Session>,
        body: &serde_json::Value,
    ) -> Result<Response<Body>, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|_| ClientError::Crypto {
            what: "JSON encoding",
        })?;
        let mut req = self
            .agent
            .post(self.url(target))
            .header("content-type", "application/json");
        if let Some(s) = session {
            req = req.header("cookie", s.cookie_header().as_str());
        }
        req.send(&bytes[..]).map_err(|e| transport(step, e))
    }

    /// Reads a 200 body under `limit`, or turns a non-200 answer into its error.
    fn read_ok(step: Step, mut resp: Response<Body>, limit: usize) -> Result<Vec<u8>, ClientError> {
        let status = resp.status().as_u16();
        if status != 200 {
            let body = read_capped(step, &mut resp, MAX_ERROR_RESPONSE);
            return Err(match body {
                Ok(b) => wire::parse_error(step, status, &b),
                Err(_) => ClientError::Status { step, status },
            });
        }
        read_capped(step, &mut resp, limit)
    }

    /// `POST /kbs/v0/auth` for `tee`: opens a session and returns its challenge.
    ///
    /// # Errors
    /// [`ClientError::InvalidTee`], transport and broker errors, a malformed challenge or a
    /// missing session cookie.
    pub fn auth(&self, tee: &str) -> Result<Challenge, ClientError> {
        check_tee(tee)?;
        self.auth_with_body(&auth_request(tee))
    }

    /// `POST /kbs/v0/auth` with any body (for tests of the broker's request checks).
    ///
    /// # Errors
    /// As [`Client::auth`].
    pub fn auth_with_body(&self, body: &serde_json::Value) -> Result<Challenge, ClientError> {
        let step = Step::Auth;
        let resp = self.post_json(step, "/kbs/v0/auth", None, body)?;
        let cookies: Vec<Vec<u8>> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect();
        let body = Self::read_ok(step, resp, MAX_AUTH_RESPONSE)?;
        let (nonce, hash) = parse_challenge(&body)?;
        let session = parse_set_cookie(cookies.iter().map(Vec::as_slice))?;
        Ok(Challenge {
            session,
            nonce,
            hash,
        })
    }

    /// `POST /kbs/v0/attest` on the challenge's session with `key`'s JWK, the challenge nonce,
    /// optional raw init-data TOML and the TEE evidence (whose REPORT_DATA the caller computed
    /// with [`report_data`]).
    ///
    /// # Errors
    /// Transport and broker errors, a malformed token.
    pub fn attest(
        &self,
        challenge: &Challenge,
        key: &TeeKey,
        init_data: Option<&str>,
        evidence: serde_json::Value,
    ) -> Result<Token, ClientError> {
        let body = attest_request(&challenge.nonce, key.jwk(), init_data, evidence);
        self.attest_with_body(&challenge.session, &body)
    }

    /// `POST /kbs/v0/attest` with any body on `session` (for tests).
    ///
    /// # Errors
    /// As [`Client::attest`].
    pub fn attest_with_body(
        &self,
        session: &Session,
        body: &serde_json::Value,
    ) -> Result<Token, ClientError> {
        let step = Step::Attest;
        let resp = self.post_json(step, "/kbs/v0/attest", Some(session), body)?;
        parse_token(&Self::read_ok(step, resp, MAX_ATTEST_RESPONSE)?)
    }

    /// `GET /kbs/v0/resource/...` with `credential`; the JWE is opened with `key`.
    ///
    /// # Errors
    /// [`ClientError::InvalidResourcePath`], transport and broker errors, JWE errors.
    pub fn resource(
        &self,
        credential: Credential<'_>,
        key: &TeeKey,
        resource: &str,
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let step = Step::Resource;
        let path = ResourcePath::parse(resource)?;
        let mut req = self.agent.get(self.url(&path.request_target()));
        req = match credential {
            Credential::Cookie(s) => req.header("cookie", s.cookie_header().as_str()),
            Credential::Bearer(t) => req.header("authorization", t.authorization_header().as_str()),
        };
        let resp = req.call().map_err(|e| transport(step, e))?;
        let body = Self::read_ok(step, resp, MAX_RESOURCE_RESPONSE)?;
        key.decrypt(&body)
    }

    /// One handshake: a fresh TEE key, `/auth`, REPORT_DATA, `evidence_for`, `/attest`.
    ///
    /// # Errors
    /// The first failing step's error (the callback's own error as it returned it).
    pub fn handshake(
        &self,
        tee: &str,
        init_data: Option<&str>,
        evidence_for: &mut dyn FnMut(&[u8; 64]) -> Result<serde_json::Value, ClientError>,
    ) -> Result<Attestation, ClientError> {
        check_tee(tee)?;
        let key = TeeKey::generate(self.key_alg)?;
        let challenge = self.auth(tee)?;
        let rd = report_data(challenge.hash, &challenge.nonce, key.jwk())?;
        let evidence = evidence_for(&rd)?;
        let token = self.attest(&challenge, &key, init_data, evidence)?;
        Ok(Attestation {
            key,
            session: challenge.session,
            token,
        })
    }

    /// [`Client::handshake`] retried per the [`RetryPolicy`] while the error is retryable.
    ///
    /// # Errors
    /// The last attempt's error, or the first non-retryable one.
    pub fn handshake_with_retries(
        &self,
        tee: &str,
        init_data: Option<&str>,
        evidence_for: &mut dyn FnMut(&[u8; 64]) -> Result<serde_json::Value, ClientError>,
    ) -> Result<Attestation, ClientError> {
        let attempts = self.retry.handshake_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.handshake(tee, init_data, evidence_for) {
                Ok(a) => return Ok(a),
                Err(e) if e.is_retryable() && attempt < attempts => {
                    attempt += 1;
                    std::thread::sleep(self.retry.handshake_delay);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The full flow: handshake (with retries), then the resource GET in the configured
    /// [`AuthMode`], redoing the handshake after a 401; returns the plaintext secret.
    ///
    /// `tee` is the KBS TEE name (`snp`, `tdx`, ...), `resource` is `repo/type/tag[?version=N]`,
    /// `init_data` the raw init-data TOML, and `evidence_for` turns the 64-byte REPORT_DATA into
    /// the TEE evidence JSON sent as `primary_evidence`.
    ///
    /// # Errors
    /// [`ClientError::InvalidResourcePath`] or [`ClientError::InvalidTee`] before anything is
    /// sent; then the handshake's error, or the resource GET's (a 403 `PolicyDeny` at once,
    /// the third 401 after two re-handshakes), or a JWE error.
    pub fn get_secret(
        &self,
        tee: &str,
        resource: &str,
        init_data: Option<&str>,
        evidence_for: &mut dyn FnMut(&[u8; 64]) -> Result<serde_json::Value, ClientError>,
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        ResourcePath::parse(resource)?;
        check_tee(tee)?;
        let attempts = self.retry.resource_attempts.max(1);
        let mut attestation = self.handshake_with_retries(tee, init_data, evidence_for)?;
        let mut attempt = 1;
        loop {
            let cred = attestation.credential(self.auth);
            match self.resource(cred, &attestation.key, resource) {
                Err(e) if e.status() == Some(401) && attempt < attempts => {
                    attempt += 1;
                    attestation = self.handshake_with_retries(tee, init_data, evidence_for)?;
                }
                other => return other,
            }
        }
    }
}

fn transport(step: Step, e: ureq::Error) -> ClientError {
    ClientError::Transport {
        step,
        error: Box::new(e),
    }
}

fn read_capped(
    step: Step,
    resp: &mut Response<Body>,
    limit: usize,
) -> Result<Vec<u8>, ClientError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX);
    resp.body_mut()
        .with_config()
        .limit(cap)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => ClientError::ResponseTooLarge { step, limit },
            other => transport(step, other),
        })
}

/// Fuzz harness for every decoder of broker answers: the first byte picks the decoder (JWE for
/// a P-256, P-521 or RSA key, challenge, token, error body, `Set-Cookie`, resource path), the
/// rest is the input. Never panics on any input; what the challenge, `Set-Cookie`, token and
/// error-body decoders accept meets their oracles in `wire` (`check_parse_*`).
#[doc(hidden)]
pub fn fuzz_response(data: &[u8]) {
    use std::sync::OnceLock;
    static KEYS: OnceLock<Vec<TeeKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [TeeKeyAlg::P256, TeeKeyAlg::P521, TeeKeyAlg::Rsa]
            .into_iter()
            .filter_map(|a| TeeKey::generate(a).ok())
            .collect()
    });
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        n @ 0..=2 => {
            if let Some(k) = keys.get(usize::from(n)) {
                let _ = k.decrypt(rest);
            }
        }
        3 => {
            wire::check_parse_challenge(rest);
            wire::check_parse_set_cookie(rest);
        }
        4 => {
            wire::check_parse_token(rest);
        }
        _ => {
            wire::check_parse_error(Step::Resource, 401, rest);
            if let Ok(s) = core::str::from_utf8(rest) {
                let _ = ResourcePath::parse(s);
                let _ = normalize_base(s, false);
            }
        }
    }
}

#[cfg(test)]
mod tests;
