//! `tessera secret ...` and `tessera audit ...`: the broker's admin API over HTTP (blocking
//! ureq), and the offline audit-chain check of a stopped broker's store.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use serde_json::Value;
use tessera_broker::audit::{AuditAnchor, AuditEntry, ChainVerifier};
use tessera_broker::resource::ResourcePath;
use ureq::http::uri::Authority;
use ureq::http::{Response, Uri};
use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::{Agent, Body};
use zeroize::Zeroizing;

/// Largest secret read from a file or standard input.
pub(crate) const MAX_SECRET: usize = 1024 * 1024;
/// Largest answer read from the admin API (an audit page of 1000 entries fits).
const MAX_ANSWER: u64 = 32 * 1024 * 1024;
/// Largest token or CA file read.
const MAX_SMALL_FILE: u64 = 1024 * 1024;
/// Entries asked for per audit page (the broker's maximum).
const AUDIT_PAGE: u32 = 1000;
/// The broker `tessera serve` listens on by default.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The broker refused a request (a KBS error answer): exit status 1, not a usage error.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Where the admin API is and how to reach it.
#[derive(Args, Debug, Clone)]
pub(crate) struct ConnArgs {
    /// The broker's base URL (default http://127.0.0.1:8080).
    #[arg(long, env = "TESSERA_URL", value_name = "URL")]
    url: Option<String>,
    /// The file holding the admin token (default: admin.token in the default data directory,
    /// the one `tessera serve` creates on first start).
    #[arg(long, env = "TESSERA_ADMIN_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Trust this CA (PEM) for the broker's TLS certificate instead of the Mozilla roots.
    #[arg(long, value_name = "PEM")]
    cacert: Option<PathBuf>,
    /// Allow plain http:// to a host that is not loopback (the admin token then travels in the
    /// clear).
    #[arg(long)]
    insecure_http: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum SecretCommand {
    /// Upload a secret with the policy that guards it (a new version of the resource).
    Put(PutArgs),
    /// List resources and versions (never values).
    List(ListArgs),
    /// Upload a new version of an existing resource.
    Rotate(RotateArgs),
    /// Delete one version, or every version, of a resource.
    Delete(DeleteArgs),
    /// Rotate the key-encryption key: every data key is re-wrapped (global tokens only).
    RotateKek(RotateKekArgs),
    /// Seal a secret offline to the broker's public sealing key, for Git (no credentials).
    Seal(crate::gitops::SealArgs),
    /// Import sealed secrets: one file or a directory of REPO/TYPE/TAG.sealed files (idempotent).
    Import(crate::gitops::ImportArgs),
    /// Print the Confidential Containers sealed secret (`sealed.…`) pointing at a resource.
    CocoSealed(crate::gitops::CocoSealedArgs),
    /// Set a repository's default policy.
    SetPolicy(crate::gitops::SetPolicyArgs),
    /// Add a new sealing key (older ones still open what they sealed; global tokens only).
    RotateSealingKey(crate::gitops::RotateSealingKeyArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCommand {
    /// Print audit entries.
    Show(AuditShowArgs),
    /// Recompute the hash chain of the whole audit log and name the first broken entry.
    Verify(AuditVerifyArgs),
}

/// Where the secret comes from.
#[derive(Args, Debug)]
pub(crate) struct ValueArgs {
    /// Read the secret from FILE (default: standard input, which must not be a terminal).
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    from: Option<PathBuf>,
    /// Let the broker generate N random bytes (1..=4096) instead.
    #[arg(long, value_name = "N")]
    generate: Option<u16>,
}

#[derive(Args, Debug)]
pub(crate) struct PutArgs {
    /// The resource, REPO/TYPE/TAG.
    resource: String,
    /// The policy (TOML or JSON) a guest's evidence must pass to receive the secret.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    #[command(flatten)]
    value: ValueArgs,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RotateArgs {
    /// The resource, REPO/TYPE/TAG (it must have a live version).
    resource: String,
    /// The policy of the new version; without it, the repository's default policy applies
    /// (the broker refuses the rotation when the repository has none).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    value: ValueArgs,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ListArgs {
    /// Only this repository.
    #[arg(long, value_name = "REPO")]
    repo: Option<String>,
    /// Print the versions as JSON (`{"versions": [...]}`, every page of the broker's
    /// listing).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub(crate) struct DeleteArgs {
    /// The resource, REPO/TYPE/TAG.
    resource: String,
    /// Only this version (default: every version).
    #[arg(long, value_name = "N")]
    version: Option<u64>,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RotateKekArgs {
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub(crate) struct AuditShowArgs {
    /// Entries after this sequence number (default: from the first).
    #[arg(long, value_name = "SEQ")]
    after: Option<u64>,
    /// At most this many entries (1..=1000; default 100).
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: u32,
    /// Print the entries as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub(crate) struct AuditVerifyArgs {
    /// Verify the store of a stopped broker in DIR directly instead of asking the admin API.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Also check that entry SEQ still has HASH: a head an earlier `audit verify` printed
    /// and you kept outside the broker. A log whose entries up to SEQ were rewritten (the
    /// chain's hashes need no key to recompute) or that was cut short before it is refused.
    #[arg(long, value_name = "SEQ:HASH")]
    anchor: Option<tessera_broker::audit::AuditAnchor>,
    #[command(flatten)]
    conn: ConnArgs,
}

/// The file at `path`, at most `max` bytes, in a buffer zeroized on drop: it may hold a secret
/// (the admin token, a `--from` secret, a key), so it is read with
/// [`tessera_broker::keyfile::read_zeroizing`], leaving no copy behind.
pub(crate) fn read_capped(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>> {
    let mut file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    // A regular file's size sizes the buffer; a pipe or a device says nothing.
    let size = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let bytes = tessera_broker::keyfile::read_zeroizing(&mut file, size, max, 0)
        .with_context(|| format!("{}", path.display()))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        bail!("{}: larger than {max} bytes", path.display());
    }
    Ok(bytes)
}

/// How much more than a secret's cap is asked of standard input per read: std keeps an 8 KiB
/// buffer in front of it, which a read into a destination at least that large bypasses (so
/// the secret is never copied there).
const STDIN_BUFFER: usize = 8 * 1024;

/// Standard input, at most `max` bytes (more is read only to tell: the caller checks the
/// length), into a buffer zeroized on drop: read with
/// [`tessera_broker::keyfile::read_zeroizing`] into a destination always larger than std's own
/// stdin buffer, which is then bypassed and holds no copy.
pub(crate) fn read_stdin_zeroizing(max: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut stdin = std::io::stdin().lock();
    tessera_broker::keyfile::read_zeroizing(&mut stdin, None, max, STDIN_BUFFER)
}

/// Warns (on stderr) when the admin token file at `path` can be read by other users: whoever
/// reads it administers the broker. A warning, not a refusal: a token mounted from a
/// Kubernetes secret is 0644 unless its volume says otherwise, and the broker is what decides.
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            eprintln!(
                "warning: {} can be read by other users (mode {mode:04o}); whoever reads it \
                 administers the broker: chmod 600 it",
                path.display()
            );
        }
    }
}

/// An admin API client: base URL, bearer token, agent.
pub(crate) struct AdminClient {
    base: String,
    authorization: Zeroizing<String>,
    agent: Agent,
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `authority` as a URL of `scheme` should name it: over plain `http`, a `localhost` host is
/// `127.0.0.1`. The name would go to the system resolver, which (without a hosts entry, or with
/// a search domain) may answer with an address that is not this machine's, and the request
/// would leave it in the clear.
fn pinned_authority(scheme: &str, authority: &Authority) -> String {
    if scheme == "http" && authority.host().eq_ignore_ascii_case("localhost") {
        match authority.port_u16() {
            Some(port) => format!("127.0.0.1:{port}"),
            None => String::from("127.0.0.1"),
        }
    } else {
        authority.as_str().to_owned()
    }
}

/// `url` as an error message may show it: the user information of its authority
/// (`user:password@`), a credential, is replaced by `<redacted>`. A password may hold `/`, `?`
/// or `#` (unescaped, so that the URL does not parse): everything up to the last `@` goes, even
/// when that `@` is in a path, which costs a message some clarity rather than a password.
pub(crate) fn redacted_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i.saturating_add(3));
    let rest = url.get(start..).unwrap_or_default();
    match rest.rfind('@') {
        Some(at) => format!(
            "{}<redacted>{}",
            url.get(..start).unwrap_or_default(),
            rest.get(at..).unwrap_or_default()
        ),
        None => url.to_owned(),
    }
}

/// `url` when it is `https`, or plain `http` to a loopback address (`localhost` pinned to
/// 127.0.0.1); an error for plain `http` to any other host.
pub(crate) fn plain_http_to_loopback_only(url: &str) -> Result<String> {
    let shown = redacted_url(url);
    let uri: Uri = url
        .parse()
        .with_context(|| format!("{shown:?}: not a URL"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("https"), Some(_)) => Ok(url.to_owned()),
        (Some("http"), Some(a)) if is_loopback_host(a.host()) => {
            // What follows the authority, as written (`http://` and the authority's own text
            // come first in a URL that parsed so).
            let rest = url
                .get("http://".len() + a.as_str().len()..)
                .unwrap_or_default();
            Ok(format!("http://{}{rest}", pinned_authority("http", a)))
        }
        (Some("http"), Some(_)) => {
            bail!("{shown:?}: plain http to a host that is not this machine")
        }
        _ => bail!("{shown:?}: give http(s)://host[:port]"),
    }
}

/// Checks and normalizes a base URL (`http(s)://host[:port][/prefix]`).
fn normalize_base(url: &str, insecure_http: bool) -> Result<String> {
    // A URL refused for its `user:password@` is not echoed with the password in it.
    let shown = redacted_url(url);
    let uri: Uri = url
        .parse()
        .with_context(|| format!("--url {shown:?}: not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        bail!("--url {shown:?}: give http(s)://host[:port]");
    };
    if authority.as_str().contains('@') || uri.query().is_some() || url.contains('#') {
        bail!("--url {shown:?}: no user information, query or fragment");
    }
    match scheme {
        "https" => {}
        "http" if is_loopback_host(authority.host()) || insecure_http => {}
        "http" => bail!(
            "--url {shown:?}: plain http sends the admin token in the clear; use https (or \
             --insecure-http on a closed network)"
        ),
        _ => bail!("--url {shown:?}: the scheme is neither https nor http"),
    }
    Ok(format!(
        "{scheme}://{}{}",
        pinned_authority(scheme, authority),
        uri.path().trim_end_matches('/')
    ))
}

/// An agent with the rustls/aws-lc-rs provider, the CA if given, no redirects, no proxy.
pub(crate) fn agent(cacert: Option<&Path>, timeout: Duration) -> Result<Agent> {
    let roots = match cacert {
        None => RootCerts::WebPki,
        Some(path) => {
            let pem = read_capped(path, MAX_SMALL_FILE)?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => bail!(
                        "{}: holds something other than certificates",
                        path.display()
                    ),
                    Err(_) => bail!("{}: malformed PEM", path.display()),
                }
            }
            if certs.is_empty() {
                bail!("{}: no certificate", path.display());
            }
            RootCerts::new_with_certs(&certs)
        }
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .accept_encoding("identity")
        .accept("application/json")
        .user_agent(concat!("tessera-cli/", env!("CARGO_PKG_VERSION")))
        .timeout_global(Some(timeout))
        .tls_config(tls)
        .build();
    Ok(Agent::new_with_config(config))
}

/// The token file: the flag or environment, else the default data directory's.
fn token_file(conn: &ConnArgs) -> Result<PathBuf> {
    match &conn.token_file {
        Some(p) => Ok(p.clone()),
        None => crate::serve::default_data_dir()
            .map(|d| d.join("admin.token"))
            .context("no admin token: give --token-file FILE or set TESSERA_ADMIN_TOKEN_FILE"),
    }
}

/// What to do about a transport error an operator meets often: a broker certificate the
/// client does not trust, or plain HTTP sent to a TLS port.
pub(crate) fn transport_hint(error: &str) -> &'static str {
    if error.contains("UnknownIssuer") || error.contains("invalid peer certificate") {
        " (the broker's certificate is not trusted: give its CA with --cacert PEM)"
    } else if error.contains("invalid HTTP version") {
        " (not an HTTP answer: does the broker serve TLS? then use https://)"
    } else {
        ""
    }
}

/// Whether `body` is a KBS error body (`{"type": ".../kbs/errors/NAME", "detail": ...}`), as
/// the broker answers every refusal.
fn is_broker_error(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .is_some_and(|t| t.starts_with(tessera_guest::client::ERROR_TYPE_PREFIX))
}

/// The entry a broker's `AuditEntryDamaged` answer names (500, `{"type": ...,
/// "detail": ..., "seq": N}`): an audit row changed in its database so that it does not read
/// as an entry.
fn damaged_entry(status: u16, body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let kind = v.get("type")?.as_str()?;
    (status == 500
        && kind.strip_prefix(tessera_guest::client::ERROR_TYPE_PREFIX) == Some("AuditEntryDamaged"))
    .then(|| v.get("seq").and_then(Value::as_u64))
    .flatten()
}

/// The KBS error body's `type` name and `detail`, for a refusal message.
fn error_text(status: u16, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(|s| s.chars().filter(|c| !c.is_control()).take(512).collect())
    };
    let kind: Option<String> =
        field("type").map(|t: String| t.rsplit('/').next().map(str::to_owned).unwrap_or_default());
    match (kind, field("detail")) {
        (Some(k), Some(d)) => format!("the broker answered {status} {k}: {d}"),
        _ => format!("the broker answered {status}"),
    }
}

impl AdminClient {
    pub(crate) fn new(conn: &ConnArgs) -> Result<Self> {
        let url = conn.url.as_deref().unwrap_or(DEFAULT_URL);
        let base = normalize_base(url, conn.insecure_http)?;
        let path = token_file(conn)?;
        warn_if_shared(&path);
        let bytes = read_capped(&path, MAX_SMALL_FILE)
            .with_context(|| "reading the admin token".to_owned())?;
        let text = std::str::from_utf8(&bytes)
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .with_context(|| format!("{}: not an admin token", path.display()))?;
        let mut authorization = Zeroizing::new(String::with_capacity(text.len() + 7));
        authorization.push_str("Bearer ");
        authorization.push_str(text);
        Ok(Self {
            base,
            authorization,
            agent: agent(conn.cacert.as_deref(), Duration::from_secs(120))?,
        })
    }

    /// A client for `base` with `token` (the demo's, in-process).
    pub(crate) fn with_token(base: &str, token: &str) -> Result<Self> {
        let mut authorization = Zeroizing::new(String::with_capacity(token.len() + 7));
        authorization.push_str("Bearer ");
        authorization.push_str(token.trim());
        Ok(Self {
            base: normalize_base(base, false)?,
            authorization,
            agent: agent(None, Duration::from_secs(60))?,
        })
    }

    fn answer(&self, what: &str, sent: Result<Response<Body>, ureq::Error>) -> Result<Value> {
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                let hint = transport_hint(&e.to_string());
                return Err(anyhow::Error::new(e).context(format!("{what}: {}{hint}", self.base)));
            }
        };
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .with_context(|| format!("{what}: reading the answer"))?;
        // A refusal is the broker's: a 4xx with its error body. A 4xx without one is a proxy's
        // (or another server's) answer, an error like a 5xx.
        if (400..500).contains(&status) && is_broker_error(&body) {
            return Err(Refused(format!("{what}: {}", error_text(status, &body))).into());
        }
        if (400..500).contains(&status) {
            bail!(
                "{what}: {} (not the broker's error body: a proxy's or another server's answer?)",
                error_text(status, &body)
            );
        }
        // An audit entry the broker cannot read: the log is damaged, which is the answer to
        // `audit verify` (exit 1, the entry named as offline), not a failure to get one.
        if let Some(seq) = damaged_entry(status, &body) {
            return Err(Refused(format!(
                "{what}: entry {seq} was altered (it does not read as an entry in the broker's \
                 database; the broker's log names the column)"
            ))
            .into());
        }
        if status != 200 && status != 202 {
            // A server error, a busy broker or a proxy's answer: not a refusal (exit 2, which
            // a script may retry).
            bail!("{what}: {}", error_text(status, &body));
        }
        serde_json::from_slice(&body).with_context(|| format!("{what}: the answer is not JSON"))
    }

    fn get(&self, what: &str, target: &str) -> Result<Value> {
        let sent = self
            .agent
            .get(format!("{}{target}", self.base))
            .header("authorization", self.authorization.as_str())
            .call();
        self.answer(what, sent)
    }

    /// POSTs `body` (JSON text, zeroized after).
    fn post(&self, what: &str, target: &str, body: &[u8]) -> Result<Value> {
        let sent = self
            .agent
            .post(format!("{}{target}", self.base))
            .header("authorization", self.authorization.as_str())
            .header("content-type", "application/json")
            .send(body);
        self.answer(what, sent)
    }

    /// POSTs raw bytes (a sealed secret).
    pub(crate) fn post_raw(&self, what: &str, target: &str, body: &[u8]) -> Result<Value> {
        let sent = self
            .agent
            .post(format!("{}{target}", self.base))
            .header("authorization", self.authorization.as_str())
            .header("content-type", "text/plain")
            .send(body);
        self.answer(what, sent)
    }

    /// PUTs raw bytes (a policy text).
    pub(crate) fn put_raw(&self, what: &str, target: &str, body: &[u8]) -> Result<Value> {
        let sent = self
            .agent
            .put(format!("{}{target}", self.base))
            .header("authorization", self.authorization.as_str())
            .header("content-type", "text/plain")
            .send(body);
        self.answer(what, sent)
    }

    fn delete(&self, what: &str, target: &str) -> Result<Value> {
        let sent = self
            .agent
            .delete(format!("{}{target}", self.base))
            .header("authorization", self.authorization.as_str())
            .call();
        self.answer(what, sent)
    }

    /// Uploads a new version of `resource`: `value` sealed (or `generate` bytes made by the
    /// broker) under `policy` (or the repository default). `verb` (`put`, `rotate`) names the
    /// command in errors.
    pub(crate) fn put(
        &self,
        verb: &str,
        resource: &ResourcePath,
        policy: Option<&str>,
        value: &SecretInput,
    ) -> Result<Value> {
        let policy_json = policy.map(serde_json::to_string).transpose()?;
        let member = match value {
            SecretInput::Bytes(bytes) => {
                let b64 = Zeroizing::new(STANDARD.encode(bytes.as_slice()));
                let mut m = Zeroizing::new(String::with_capacity(b64.len() + 16));
                m.push_str("\"value\":\"");
                m.push_str(&b64);
                m.push('"');
                m
            }
            SecretInput::Generate(n) => Zeroizing::new(format!("\"generate\":{n}")),
        };
        // Sized once, so the secret's base64 is never left behind in a reallocated buffer.
        let mut body = Zeroizing::new(String::with_capacity(
            policy_json.as_ref().map_or(0, String::len) + member.len() + 16,
        ));
        body.push('{');
        if let Some(p) = &policy_json {
            body.push_str("\"policy\":");
            body.push_str(p);
            body.push(',');
        }
        body.push_str(&member);
        body.push('}');
        self.post(
            &format!("{verb} {resource}"),
            &format!("/kbs/v0/resource/{resource}"),
            body.as_bytes(),
        )
    }

    /// The live versions (of one repository): every page of the listing, as
    /// `{"versions": [...]}`.
    pub(crate) fn list(&self, repo: Option<&str>) -> Result<Value> {
        let mut versions = Vec::new();
        let mut after: Option<(String, u64)> = None;
        loop {
            let mut target = String::from("/kbs/v0/admin/resources?");
            if let Some(r) = repo {
                target.push_str(&format!("repo={r}&"));
            }
            // Resource paths are ASCII letters, digits, `_-.` and `/`: nothing to escape.
            if let Some((resource, version)) = &after {
                target.push_str(&format!("after={resource}&after_version={version}&"));
            }
            target.push_str("limit=1000");
            let mut answer = self.get("list", &target)?;
            let page = answer
                .get_mut("versions")
                .and_then(Value::as_array_mut)
                .context("list: the answer has no versions")?;
            versions.append(page);
            let next = answer.get("next_after").filter(|n| !n.is_null());
            let Some(next) = next else { break };
            let resource = next.get("resource").and_then(Value::as_str);
            let version = next.get("version").and_then(Value::as_u64);
            let (Some(resource), Some(version)) = (resource, version) else {
                bail!("list: malformed next_after {next}");
            };
            let next = (resource.to_owned(), version);
            // A broker that does not move on would be asked for ever.
            if after.as_ref() >= Some(&next) {
                bail!("list: next_after {next:?} does not follow the page before");
            }
            after = Some(next);
        }
        Ok(serde_json::json!({ "versions": versions }))
    }

    /// A page of the audit log after `after`, as the broker answers it.
    pub(crate) fn audit_page(&self, after: u64, limit: u32) -> Result<AuditPage> {
        let answer = self.get(
            "audit",
            &format!("/kbs/v0/admin/audit?after={after}&limit={limit}"),
        )?;
        let entries = answer
            .get("entries")
            .cloned()
            .context("audit: the answer has no entries")?;
        let scoped = answer
            .get("scoped")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(AuditPage {
            entries: serde_json::from_value(entries).context("audit: malformed entries")?,
            next_after: answer.get("next_after").and_then(Value::as_u64),
            scoped,
        })
    }
}

/// A page of the audit log (`GET /kbs/v0/admin/audit`).
#[derive(serde::Serialize)]
pub(crate) struct AuditPage {
    /// The entries the token may see.
    pub(crate) entries: Vec<AuditEntry>,
    /// Where the next page starts (`--after`); none at the end of the log.
    pub(crate) next_after: Option<u64>,
    /// Other repositories' entries were left out (a token scoped to repositories).
    pub(crate) scoped: bool,
}

/// The secret to upload: bytes read once (zeroized on drop), or a length for the broker.
pub(crate) enum SecretInput {
    Bytes(Zeroizing<Vec<u8>>),
    Generate(u16),
}

/// Reads the secret from `--from FILE` or standard input (at most 1 MiB), or takes `--generate`.
impl ValueArgs {
    /// Input from `--from FILE` or standard input, never generated.
    pub(crate) fn from_file(from: Option<PathBuf>) -> Self {
        Self {
            from,
            generate: None,
        }
    }
}

/// The secret bytes of `--from FILE` or standard input (`--generate` is not allowed here).
pub(crate) fn secret_bytes(args: &ValueArgs) -> Result<Zeroizing<Vec<u8>>> {
    match secret_input(args)? {
        SecretInput::Bytes(b) => Ok(b),
        SecretInput::Generate(_) => bail!("--generate is not possible here: the broker generates"),
    }
}

fn secret_input(args: &ValueArgs) -> Result<SecretInput> {
    if let Some(n) = args.generate {
        if !(1..=4096).contains(&n) {
            bail!("--generate: give 1..=4096 bytes");
        }
        return Ok(SecretInput::Generate(n));
    }
    let max = u64::try_from(MAX_SECRET).unwrap_or(u64::MAX);
    let bytes = match &args.from {
        Some(path) => read_capped(path, max)?,
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!(
                    "the secret is read from standard input, which is a terminal: pipe it in, or \
                     give --from FILE or --generate N"
                );
            }
            let bytes =
                read_stdin_zeroizing(max).context("reading the secret from standard input")?;
            if bytes.len() > MAX_SECRET {
                bail!("the secret is larger than {MAX_SECRET} bytes");
            }
            bytes
        }
    };
    if bytes.is_empty() {
        bail!("the secret is empty");
    }
    Ok(SecretInput::Bytes(bytes))
}

fn parse_resource(s: &str) -> Result<ResourcePath> {
    ResourcePath::parse(s).with_context(|| format!("{s:?}: not REPO/TYPE/TAG"))
}

/// A string field of an answer, or `?`, for a terminal: control characters are written
/// escaped, since the text comes from the broker's store (a row edited in the database could
/// otherwise send escape sequences to the operator's terminal, as `entry_line` guards against
/// for the audit log).
pub(crate) fn text(v: &Value, key: &str) -> String {
    tessera::text::escape_controls(v.get(key).and_then(Value::as_str).unwrap_or("?"), false)
}

/// Any field of an answer as JSON text, or `?`.
fn field(v: &Value, key: &str) -> String {
    v.get(key).map_or_else(|| "?".to_owned(), Value::to_string)
}

fn print_put(answer: &Value) {
    crate::say!(
        "{} version {} sealed (policy {}, KEK {})",
        text(answer, "resource"),
        field(answer, "version"),
        text(answer, "policy_digest"),
        text(answer, "kek_id"),
    );
}

fn put(args: &PutArgs) -> Result<ExitCode> {
    let resource = parse_resource(&args.resource)?;
    let policy = crate::sealed_policy::policy_text(&args.policy)?;
    let client = AdminClient::new(&args.conn)?;
    let value = secret_input(&args.value)?;
    print_put(&client.put("put", &resource, Some(&policy), &value)?);
    Ok(ExitCode::SUCCESS)
}

/// The live versions of `resource` in a list answer.
fn versions_of(list: &Value, resource: &ResourcePath) -> Vec<u64> {
    let name = resource.to_string();
    list.get("versions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|v| v.get("resource").and_then(Value::as_str) == Some(name.as_str()))
                .filter_map(|v| v.get("version").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}

fn rotate(args: &RotateArgs) -> Result<ExitCode> {
    let resource = parse_resource(&args.resource)?;
    let policy = args
        .policy
        .as_deref()
        .map(crate::sealed_policy::policy_text)
        .transpose()?;
    let client = AdminClient::new(&args.conn)?;
    let live = versions_of(&client.list(Some(resource.repo()))?, &resource);
    let Some(newest) = live.iter().max() else {
        return Err(Refused(format!(
            "rotate {resource}: it has no live version; upload it with `tessera secret put`"
        ))
        .into());
    };
    let value = secret_input(&args.value)?;
    let answer = client
        .put("rotate", &resource, policy.as_deref(), &value)
        .map_err(|e| {
            let bad_request = e
                .downcast_ref::<Refused>()
                .is_some_and(|r| r.0.contains(" 400 "));
            if policy.is_none() && bad_request {
                let hint = Refused(format!(
                    "{e:#} (without --policy the repository's default policy applies, and the \
                 repository may have none: give --policy FILE)"
                ));
                anyhow::Error::new(hint)
            } else {
                e
            }
        })?;
    print_put(&answer);
    crate::say!("(version {newest} stays readable until deleted)");
    Ok(ExitCode::SUCCESS)
}

fn time_of(ms: Option<i64>) -> String {
    ms.and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn list(args: &ListArgs) -> Result<ExitCode> {
    if let Some(repo) = &args.repo {
        tessera_broker::resource::check_repo(repo).with_context(|| format!("--repo {repo:?}"))?;
    }
    let client = AdminClient::new(&args.conn)?;
    let answer = client.list(args.repo.as_deref())?;
    if args.json {
        crate::say!("{answer}");
        return Ok(ExitCode::SUCCESS);
    }
    let versions = answer
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        crate::say!("no secrets");
        return Ok(ExitCode::SUCCESS);
    }
    crate::say!("RESOURCE\tVERSION\tCREATED\tPOLICY\tKEK");
    for v in &versions {
        crate::say!(
            "{}\t{}\t{}\t{}\t{}",
            text(v, "resource"),
            field(v, "version"),
            time_of(v.get("created_ms").and_then(Value::as_i64)),
            text(v, "policy_digest"),
            text(v, "kek_id"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn delete(args: &DeleteArgs) -> Result<ExitCode> {
    let resource = parse_resource(&args.resource)?;
    if args.version == Some(0) {
        bail!("--version: versions start at 1");
    }
    let client = AdminClient::new(&args.conn)?;
    let target = match args.version {
        Some(n) => format!("/kbs/v0/resource/{resource}?version={n}"),
        None => format!("/kbs/v0/resource/{resource}"),
    };
    let answer = client.delete(&format!("delete {resource}"), &target)?;
    crate::say!(
        "{}: deleted versions {}",
        text(&answer, "resource"),
        field(&answer, "deleted_versions")
    );
    Ok(ExitCode::SUCCESS)
}

/// A rotation's 400 carries the fixed public words only: say where the reason is.
pub(crate) fn rotation_hint(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<Refused>()
        .is_some_and(|r| r.0.contains(" 400 "))
    {
        anyhow::Error::new(Refused(format!(
            "{e:#} (the broker's log says why: a rotation is refused on a PostgreSQL store, \
             while another broker shares the key file or has rotated it since this one started, \
             and while another rotation runs)"
        )))
    } else {
        e
    }
}

fn rotate_kek(args: &RotateKekArgs) -> Result<ExitCode> {
    let client = AdminClient::new(&args.conn)?;
    let answer = client
        .post("rotate the KEK", "/kbs/v0/admin/kek/rotate", b"")
        .map_err(rotation_hint)?;
    if answer.get("status").and_then(Value::as_str) == Some("rotating") {
        // 202: the broker goes on past the request's deadline.
        crate::say!(
            "the KEK rotation goes on in the broker past the request deadline; \
             `tessera audit show` lists its end"
        );
        return Ok(ExitCode::SUCCESS);
    }
    crate::say!(
        "active KEK {}; {} versions re-wrapped; retired {}{}",
        text(&answer, "kek_id"),
        field(&answer, "rewrapped"),
        field(&answer, "retired"),
        if answer.get("resumed").and_then(Value::as_bool) == Some(true) {
            " (it finished a rotation that had not finished)"
        } else {
            ""
        }
    );
    let unauthentic = answer
        .get("repo_policies_unauthentic")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if unauthentic > 0 {
        crate::say!(
            "warning: {unauthentic} repository default policies do not carry a valid MAC (set \
             in the database, or before defaults carried one); puts naming no policy stay \
             refused there until `tessera secret set-policy` sets them again"
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_secret(cmd: &SecretCommand) -> Result<ExitCode> {
    match cmd {
        SecretCommand::Put(a) => put(a),
        SecretCommand::List(a) => list(a),
        SecretCommand::Rotate(a) => rotate(a),
        SecretCommand::Delete(a) => delete(a),
        SecretCommand::RotateKek(a) => rotate_kek(a),
        SecretCommand::Seal(a) => crate::gitops::seal(a),
        SecretCommand::Import(a) => crate::gitops::import(a),
        SecretCommand::CocoSealed(a) => crate::gitops::coco_sealed(a),
        SecretCommand::SetPolicy(a) => crate::gitops::set_policy(a),
        SecretCommand::RotateSealingKey(a) => crate::gitops::rotate_sealing_key(a),
    }
}

/// One audit entry on one line.
///
/// The actor, resource and digests are the log's text (a hostile store, or a broker of another
/// build, could hold anything): control characters are written escaped, so an entry cannot
/// drive the operator's terminal; the reason is quoted (escaped too).
pub(crate) fn entry_line(e: &AuditEntry) -> String {
    let ev = &e.event;
    let esc = |t: &str| tessera::text::escape_controls(t, false);
    let mut line = format!(
        "#{} {} {} {} {}",
        e.seq,
        time_of(Some(ev.time_ms)),
        ev.action.as_str(),
        ev.verdict.as_str(),
        esc(&ev.actor),
    );
    if let Some(r) = &ev.resource {
        let _ = write!(line, " resource={}", esc(r));
    }
    if let Some(d) = &ev.policy_digest {
        let _ = write!(line, " policy={}", esc(d));
    }
    if let Some(d) = &ev.evidence_digest {
        let _ = write!(line, " evidence={}", esc(d));
    }
    if !ev.reason.is_empty() {
        let _ = write!(line, " reason={:?}", ev.reason);
    }
    line
}

fn audit_show(args: &AuditShowArgs) -> Result<ExitCode> {
    if !(1..=AUDIT_PAGE).contains(&args.limit) {
        bail!("--limit: give 1..={AUDIT_PAGE}");
    }
    let client = AdminClient::new(&args.conn)?;
    let page = client.audit_page(args.after.unwrap_or(0), args.limit)?;
    if args.json {
        // The broker's own shape: a script pages on `next_after`, not on the last entry shown
        // (a scoped token's page may show none of the entries it read, yet not be the end).
        crate::say!("{}", serde_json::to_string(&page)?);
    } else {
        for e in &page.entries {
            crate::say!("{}", entry_line(e));
        }
        if page.scoped {
            eprintln!("(a token scoped to repositories: other repositories' entries are left out)");
        }
        if let Some(next) = page.next_after {
            eprintln!("more: --after {next}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks the chain over the admin API, page by page, and the entry `anchor` names; the head.
pub(crate) fn verify_remote(
    client: &AdminClient,
    anchor: Option<AuditAnchor>,
) -> Result<AuditAnchor> {
    let mut v = anchor.map_or_else(ChainVerifier::new, ChainVerifier::with_anchor);
    loop {
        // A row the broker cannot read (edited in its database) fails the page that starts at
        // it, naming the entry (a refusal, exit 1); the entries before it were verified.
        let page = client
            .audit_page(v.verified(), AUDIT_PAGE)
            .with_context(|| {
                format!(
                    "audit: reading the entries after entry {} (verified up to there)",
                    v.verified()
                )
            })?;
        if page.scoped {
            // Other repositories' entries are left out: the log cannot be verified whole (an
            // empty page would look like its end).
            return Err(Refused(
                "audit: not verified (a token scoped to repositories sees only their entries: \
                 verify with a global token or --data-dir)"
                    .into(),
            )
            .into());
        }
        if page.entries.is_empty() {
            return Ok(v.finish().map_err(|e| Refused(e.to_string()))?);
        }
        for e in &page.entries {
            v.push(e).map_err(|err| Refused(err.to_string()))?;
        }
    }
}

fn verify_offline(dir: &Path, anchor: Option<AuditAnchor>) -> Result<AuditAnchor> {
    let db = dir.join(tessera_broker::store::DB_FILE);
    if !db.is_file() {
        bail!(
            "{}: no broker store here (a broker on PostgreSQL keeps its audit log in the \
             database: verify it over the admin API, without --data-dir)",
            db.display()
        );
    }
    let store = tessera_broker::store::SqliteStore::open_read_only_blocking(dir)
        .with_context(|| format!("opening {}", db.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the async runtime")?;
    runtime
        .block_on(tessera_broker::store::verify_audit_chain_from(
            &store, anchor,
        ))
        .map_err(|e| match e {
            tessera_broker::store::StoreError::AuditChain(c) => Refused(c.to_string()).into(),
            other => anyhow::Error::new(other).context(format!("reading {}", db.display())),
        })
}

fn audit_verify(args: &AuditVerifyArgs) -> Result<ExitCode> {
    let anchor = args.anchor.clone();
    let head = match &args.data_dir {
        Some(dir) => verify_offline(dir, anchor)?,
        None => verify_remote(&AdminClient::new(&args.conn)?, anchor)?,
    };
    crate::say!(
        "audit chain verified: {} entries; head {head} (keep it outside the broker: \
         `--anchor {head}` later refuses a log rewritten up to here or cut short)",
        head.seq
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_audit(cmd: &AuditCommand) -> Result<ExitCode> {
    match cmd {
        AuditCommand::Show(a) => audit_show(a),
        AuditCommand::Verify(a) => audit_verify(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields `secret list`, `put`, `delete` and the gitops commands print from an answer
    /// (resource, digests, KEK id: text from the broker's store) have control characters
    /// escaped; a missing one is `?`.
    #[test]
    fn answer_text_escapes_control_characters() {
        let answer = serde_json::json!({
            "kek_id": "kek-\u{1b}]0;title\u{7}\u{1b}[2J",
            "resource": "a/b/c\r\u{1b}[K",
            "version": 3,
        });
        assert_eq!(
            text(&answer, "kek_id"),
            "kek-\\u{1b}]0;title\\u{7}\\u{1b}[2J"
        );
        assert_eq!(text(&answer, "resource"), "a/b/c\\r\\u{1b}[K");
        assert_eq!(text(&answer, "absent"), "?");
        assert_eq!(text(&answer, "version"), "?");
    }

    /// An audit entry's actor, resource and digests are printed with control characters
    /// escaped: an ESC in the log does not reach the terminal.
    #[test]
    fn audit_lines_escape_control_characters() {
        use tessera_broker::audit::{AuditAction, AuditEvent, AuditVerdict};
        let esc = "\u{1b}[2J";
        let entry = AuditEntry {
            seq: 1,
            event: AuditEvent {
                time_ms: 0,
                actor: format!("admin{esc}"),
                action: AuditAction::Release,
                resource: Some(format!("team-a/key/{esc}")),
                evidence_digest: Some(format!("e{esc}")),
                policy_digest: Some(format!("p{esc}")),
                verdict: AuditVerdict::Pass,
                reason: format!("r{esc}"),
            },
            prev_hash: String::new(),
            hash: String::new(),
        };
        let line = entry_line(&entry);
        assert!(!line.contains('\u{1b}'), "{line:?}");
        assert_eq!(line.matches("\\u{1b}[2J").count(), 5, "{line}");
    }

    #[test]
    fn read_capped_refuses_more_than_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_capped(&path, 10).unwrap().as_slice(), b"0123456789");
        let e = read_capped(&path, 9).unwrap_err();
        assert!(e.to_string().contains("larger than 9 bytes"), "{e}");
    }

    /// A URL's `user:password@` never reaches an error message.
    #[test]
    fn user_information_is_redacted_from_messages() {
        assert_eq!(
            redacted_url("https://admin:s3cret@kbs.example:8443/x?y#z"),
            "https://<redacted>@kbs.example:8443/x?y#z"
        );
        assert_eq!(redacted_url("http://u@h"), "http://<redacted>@h");
        assert_eq!(redacted_url("u:p@h/x"), "<redacted>@h/x");
        assert_eq!(redacted_url("https://h/a@b"), "https://<redacted>@b");
        for url in [
            "https://admin:pa#ss@kbs",
            "https://admin:p/ss@kbs",
            "https://a:p?s@kbs",
        ] {
            assert_eq!(redacted_url(url), "https://<redacted>@kbs", "{url}");
        }
        assert_eq!(redacted_url("https://h"), "https://h");
        for url in [
            "https://admin:s3cret@kbs.example",
            "http://admin:s3cret@10.0.0.1:8080",
            "ftp://admin:s3cret@h",
        ] {
            let e = normalize_base(url, false).unwrap_err();
            assert!(!format!("{e:#}").contains("s3cret"), "{e:#}");
        }
        let e = plain_http_to_loopback_only("http://admin:s3cret@10.0.0.1").unwrap_err();
        assert!(!format!("{e:#}").contains("s3cret"), "{e:#}");
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            normalize_base("http://127.0.0.1:8080/", false).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_base("https://kbs.example/x/", false).unwrap(),
            "https://kbs.example/x"
        );
        assert!(normalize_base("http://kbs.example", false).is_err());
        assert!(normalize_base("http://kbs.example", true).is_ok());
        assert!(normalize_base("ftp://127.0.0.1", false).is_err());
        assert!(normalize_base("http://u:p@127.0.0.1", false).is_err());
        assert!(normalize_base("http://127.0.0.1/?a=1", false).is_err());
        // `localhost` over plain http is pinned to 127.0.0.1 (never left to the resolver).
        assert_eq!(
            normalize_base("http://localhost:8080/", false).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_base("http://LocalHost", false).unwrap(),
            "http://127.0.0.1"
        );
        assert_eq!(
            normalize_base("https://localhost:8443", false).unwrap(),
            "https://localhost:8443"
        );
    }

    #[test]
    fn plain_http_goes_to_this_machine_only() {
        assert_eq!(
            plain_http_to_loopback_only("http://localhost:8080/kbs").unwrap(),
            "http://127.0.0.1:8080/kbs"
        );
        assert_eq!(
            plain_http_to_loopback_only("http://[::1]:8080").unwrap(),
            "http://[::1]:8080"
        );
        assert_eq!(
            plain_http_to_loopback_only("https://kbs.example").unwrap(),
            "https://kbs.example"
        );
        for refused in [
            "http://kbs.example:8080",
            "http://192.0.2.1",
            "http://localhost.example.com",
            "ftp://127.0.0.1",
        ] {
            assert!(plain_http_to_loopback_only(refused).is_err(), "{refused}");
        }
    }

    /// A 4xx with the broker's error body is its refusal (exit 1); a 4xx without one (a
    /// proxy's), a 5xx or anything else but 200 is not (exit 2, which a script may retry).
    #[test]
    fn only_a_4xx_answer_is_a_refusal() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let kbs = r#"{"type":"https://github.com/confidential-containers/kbs/errors/AdminForbidden","detail":"no"}"#;
            for (status, body) in [
                ("403 Forbidden", kbs),
                ("403 Forbidden", "<html>proxy</html>"),
                ("503 Service Unavailable", "{}"),
                ("302 Found", "{}"),
            ] {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).unwrap();
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(answer.as_bytes()).unwrap();
            }
        });
        let client = AdminClient {
            base: format!("http://{addr}"),
            authorization: Zeroizing::new("Bearer t".to_owned()),
            agent: agent(None, Duration::from_secs(10)).unwrap(),
        };
        let refused = client.get("list", "/kbs/v0/admin/resources").unwrap_err();
        assert!(refused.downcast_ref::<Refused>().is_some(), "{refused:#}");
        for _ in 0..3 {
            let e = client.get("list", "/kbs/v0/admin/resources").unwrap_err();
            assert!(e.downcast_ref::<Refused>().is_none(), "{e:#}");
        }
        server.join().unwrap();
    }

    #[test]
    fn error_bodies() {
        let body = br#"{"type":"https://github.com/confidential-containers/kbs/errors/AdminUnauthorized","detail":"bad\ntoken"}"#;
        assert_eq!(
            error_text(401, body),
            "the broker answered 401 AdminUnauthorized: badtoken"
        );
        assert_eq!(error_text(500, b"xx"), "the broker answered 500");
        assert!(transport_hint("io: invalid peer certificate: UnknownIssuer").contains("--cacert"));
        assert!(transport_hint("http parse fail: invalid HTTP version").contains("https://"));
        assert_eq!(transport_hint("io: Connection refused"), "");
        assert!(is_broker_error(
            br#"{"type":"https://github.com/confidential-containers/kbs/errors/AdminUnauthorized","detail":"x"}"#
        ));
        for other in [
            &b"<html>403 Forbidden</html>"[..],
            br#"{"type":"about:blank","detail":"x"}"#,
            b"",
        ] {
            assert!(!is_broker_error(other));
        }
    }

    /// The broker's answer for an audit row that does not read names the entry; nothing else
    /// is taken for one.
    #[test]
    fn a_damaged_audit_entry_is_named() {
        let damaged = br#"{"type":"https://github.com/confidential-containers/kbs/errors/AuditEntryDamaged","detail":"x","seq":3}"#;
        assert_eq!(damaged_entry(500, damaged), Some(3));
        assert_eq!(damaged_entry(503, damaged), None);
        for other in [
            &br#"{"type":"https://github.com/confidential-containers/kbs/errors/InternalError","detail":"x","seq":3}"#[..],
            br#"{"type":"https://github.com/confidential-containers/kbs/errors/AuditEntryDamaged","detail":"x"}"#,
            br#"{"type":"https://github.com/confidential-containers/kbs/errors/AuditEntryDamaged","seq":"3"}"#,
            br#"{"type":"about:AuditEntryDamaged","seq":3}"#,
            b"",
        ] {
            assert_eq!(damaged_entry(500, other), None);
        }
    }
}
