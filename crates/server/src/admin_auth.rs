//! Who may use the admin API: static bearer tokens (compared in constant time) and JWTs signed by a
//! configured admin key, each optionally scoped to repositories. Deny by default: with no
//! credential configured, every admin request is refused.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tessera_broker::engine::Actor;
use tessera_pki::UnixTime;
use zeroize::Zeroizing;

/// Longest admin bearer credential read.
const MAX_ADMIN_TOKEN: usize = 8 * 1024;

/// Shortest static token accepted in configuration (bytes of text).
pub const MIN_STATIC_TOKEN: usize = 32;

/// Why an admin credential was refused (for the log; the client sees `AdminUnauthorized`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminAuthError {
    /// No `Authorization: Bearer` header.
    #[error("admin: no bearer credential")]
    Missing,
    /// Two or more `Authorization` headers: which one counts would be left to their order.
    #[error("admin: two or more Authorization headers")]
    Duplicated,
    /// A static token that matches none configured, and not a JWT.
    #[error("admin: the token matches no configured credential")]
    Unknown,
    /// A JWT that is malformed.
    #[error("admin JWT: {0}")]
    Malformed(&'static str),
    /// A JWT whose signature no admin key verifies.
    #[error("admin JWT: signature not made by a configured admin key")]
    Signature,
    /// A JWT outside its validity.
    #[error("admin JWT: expired or not yet valid")]
    Expired,
    /// A JWT valid for longer than the configured lifetime (from now, or from its `iat`).
    #[error("admin JWT: valid for longer than {max_secs} s (admin.jwt_max_lifetime_secs)")]
    Lifetime {
        /// The longest lifetime accepted.
        max_secs: u64,
    },
    /// A JWT whose `aud` does not name this broker's admin audience, or whose `iss` is not the
    /// configured issuer.
    #[error("admin JWT: {claim} is not {expected:?}")]
    Audience {
        /// `aud` or `iss`.
        claim: &'static str,
        /// What the configuration expects.
        expected: String,
    },
    /// A JWT without a `repos` claim (a list of repositories, or `"*"` for all of them).
    #[error("admin JWT: no repos claim (a list of repositories, or \"*\" for every one)")]
    Unscoped,
    /// A configured key that is not an EC P-256 public key.
    #[error("admin key: {0}")]
    Key(String),
    /// A configured static token that is too short.
    #[error("admin token {name:?}: shorter than {MIN_STATIC_TOKEN} characters")]
    WeakToken {
        /// The token's name.
        name: String,
    },
    /// A configured static token of three dot-separated parts: it would be taken for a JWT
    /// (and checked only as one) once an admin JWT key is configured.
    #[error("admin token {name:?}: three dot-separated parts, the form of a JWT; use another")]
    JwtShapedToken {
        /// The token's name.
        name: String,
    },
    /// A configured static token that cannot be told apart from another (the same name, so
    /// the audit log could not say which acted, or the same token, so one entry would never
    /// be used), or whose `repos` is empty or names no repository that could exist.
    #[error("admin token {name:?}: {problem}")]
    UnusableToken {
        /// The token's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A configured static token whose `repos` lists `*`: not a wildcard there (it would scope
    /// the token to a repository named `*`), unlike the `repos` claim `"*"` of an admin JWT.
    #[error("{}", wildcard_message(name))]
    WildcardRepos {
        /// The token's name.
        name: String,
    },
}

/// Why a static token's `repos` may not list `*`, and how to configure a global token.
pub(crate) fn wildcard_message(name: &str) -> String {
    format!(
        "admin token {name:?}: repos lists \"*\", which is not a wildcard for a static token; \
         leave repos out for a token that manages every repository and the global operations, \
         or list the repositories it may manage"
    )
}

struct StaticToken {
    name: String,
    digest: [u8; 32],
    repos: Option<Vec<String>>,
}

/// The `aud` an admin JWT must carry unless configured otherwise.
pub const DEFAULT_JWT_AUDIENCE: &str = "tessera-admin";

/// The configured admin credentials.
pub struct AdminAuth {
    tokens: Vec<StaticToken>,
    /// Uncompressed P-256 points of the admin JWT keys.
    jwt_keys: Vec<Vec<u8>>,
    /// The `aud` every admin JWT must name.
    jwt_audience: String,
    /// The `iss` every admin JWT must carry, when set.
    jwt_issuer: Option<String>,
    /// The longest an admin JWT may be valid for.
    jwt_max_lifetime_secs: u64,
}

/// The longest an admin JWT may be valid for by default: a day.
pub const DEFAULT_JWT_MAX_LIFETIME_SECS: u64 = 86_400;

/// Clock skew allowed for an admin JWT's `nbf` and `iat` (its issuer's clock may run ahead);
/// `exp` gets none, so skew never lengthens a credential's life.
pub const JWT_LEEWAY_SECS: i64 = 60;

impl Default for AdminAuth {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            jwt_keys: Vec::new(),
            jwt_audience: DEFAULT_JWT_AUDIENCE.to_owned(),
            jwt_issuer: None,
            jwt_max_lifetime_secs: DEFAULT_JWT_MAX_LIFETIME_SECS,
        }
    }
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("static_tokens", &self.tokens.len())
            .field("jwt_keys", &self.jwt_keys.len())
            .finish()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// Equality of two digests in time independent of where they differ.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A string, or a list of them (`aud` may be either, RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(s) => s == wanted,
            Self::Many(list) => list.iter().any(|s| s == wanted),
        }
    }
}

#[derive(Deserialize)]
struct AdminClaims {
    #[serde(default)]
    sub: Option<String>,
    exp: NumericDate,
    #[serde(default)]
    nbf: Option<NumericDate>,
    #[serde(default)]
    iat: Option<NumericDate>,
    #[serde(default)]
    aud: Option<OneOrMany>,
    #[serde(default)]
    iss: Option<String>,
    /// `"*"`: every repository and the global operations; a list: those repositories.
    #[serde(default)]
    repos: Option<OneOrMany>,
}

/// An RFC 7519 NumericDate (§2): seconds since the epoch, which need not be an integer. Kept
/// as the whole seconds on either side, so that each check rounds the way that shortens the
/// credential's life: `exp` down, `nbf` and `iat` up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NumericDate {
    floor: i64,
    ceil: i64,
}

/// Largest NumericDate magnitude accepted when it is not an integer (about 285 million
/// years): every such `f64` rounds to a whole number an `i64` holds exactly.
const MAX_FRACTIONAL_DATE: f64 = 9.0e15;

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        if let Some(i) = n.as_i64() {
            return Ok(Self { floor: i, ceil: i });
        }
        let f = n
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() <= MAX_FRACTIONAL_DATE)
            .ok_or_else(|| serde::de::Error::custom("NumericDate out of range"))?;
        // In range (checked above), and floor/ceil are whole numbers: the casts are exact.
        #[allow(clippy::cast_possible_truncation)]
        Ok(Self {
            floor: f.floor() as i64,
            ceil: f.ceil() as i64,
        })
    }
}

/// The longest name of a static token, in bytes: `token:NAME` fits the audit log's actor
/// (`tessera_broker::audit::MAX_ACTOR_LEN`).
pub const MAX_TOKEN_NAME: usize = 128;

impl AdminAuth {
    /// Adds a static token (its text, trimmed of surrounding whitespace), scoped to `repos`
    /// (`None`: every repository and the global operations).
    ///
    /// # Errors
    /// A token shorter than [`MIN_STATIC_TOKEN`]; one of three dot-separated parts
    /// ([`AdminAuthError::JwtShapedToken`]); `repos` listing `*`
    /// ([`AdminAuthError::WildcardRepos`]: a global token leaves `repos` out); a second token
    /// of the same name or value, a name empty, longer than [`MAX_TOKEN_NAME`] or holding
    /// spaces or control characters, or `repos` empty or naming what cannot be a repository
    /// ([`AdminAuthError::UnusableToken`]).
    pub fn add_static(
        &mut self,
        name: &str,
        token: &str,
        repos: Option<Vec<String>>,
    ) -> Result<(), AdminAuthError> {
        if repos
            .as_ref()
            .is_some_and(|list| list.iter().any(|r| r.trim() == "*"))
        {
            return Err(AdminAuthError::WildcardRepos { name: name.into() });
        }
        let token = token.trim();
        if token.len() < MIN_STATIC_TOKEN {
            return Err(AdminAuthError::WeakToken { name: name.into() });
        }
        if token.split('.').count() == 3 {
            return Err(AdminAuthError::JwtShapedToken { name: name.into() });
        }
        let unusable = |problem: String| AdminAuthError::UnusableToken {
            name: name.into(),
            problem,
        };
        if let Some(list) = &repos {
            if list.is_empty() {
                return Err(unusable(
                    "repos is empty, so the token could manage nothing: leave repos out for a \
                     global token, or list its repositories"
                        .into(),
                ));
            }
            if let Some((repo, e)) = list.iter().find_map(|r| {
                tessera_broker::resource::check_repo(r)
                    .err()
                    .map(|e| (r, e))
            }) {
                return Err(unusable(format!("repos lists {repo:?}: {e}")));
            }
        }
        // The name is the audit log's actor (`token:NAME`), which is kept without control
        // characters and cut at MAX_ACTOR_LEN: two names differing only there would be one
        // actor in the log.
        if name.is_empty()
            || name.len() > MAX_TOKEN_NAME
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(unusable(format!(
                "the name must be 1 to {MAX_TOKEN_NAME} bytes with no spaces or control \
                 characters: it is the actor the audit log records"
            )));
        }
        let digest = sha256(token.as_bytes());
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(unusable(
                "a second token of this name: the audit log could not tell them apart".into(),
            ));
        }
        if let Some(other) = self.tokens.iter().find(|t| t.digest == digest) {
            return Err(unusable(format!(
                "the same token as {:?}: only one of them would ever be used",
                other.name
            )));
        }
        self.tokens.push(StaticToken {
            name: name.to_owned(),
            digest,
            repos,
        });
        Ok(())
    }

    /// Adds an ES256 admin JWT key (SubjectPublicKeyInfo PEM of a P-256 key).
    ///
    /// # Errors
    /// Not a P-256 public key.
    pub fn add_jwt_key_pem(&mut self, pem: &str) -> Result<(), AdminAuthError> {
        let key = tessera_policy::ear::VerifyingKey::from_spki_pem(pem)
            .map_err(|e| AdminAuthError::Key(e.to_string()))?;
        if key.alg() != tessera_policy::ear::Alg::Es256 {
            return Err(AdminAuthError::Key(
                "only ES256 (P-256) admin keys are supported".into(),
            ));
        }
        let jwk = key.to_jwk();
        let coord = |name: &str| {
            jwk.get(name)
                .and_then(serde_json::Value::as_str)
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .ok_or_else(|| AdminAuthError::Key(format!("JWK without {name}")))
        };
        let mut point = vec![4u8];
        point.extend(coord("x")?);
        point.extend(coord("y")?);
        self.jwt_keys.push(point);
        Ok(())
    }

    /// Sets the `aud` admin JWTs must name (default [`DEFAULT_JWT_AUDIENCE`]) and the `iss`
    /// they must carry (default: any).
    pub fn set_jwt_audience(&mut self, audience: &str, issuer: Option<&str>) {
        audience.clone_into(&mut self.jwt_audience);
        self.jwt_issuer = issuer.map(str::to_owned);
    }

    /// Admin JWTs valid for longer than `secs` (from now, or from their `iat`) are refused:
    /// a leaked long-lived token is a standing admin credential.
    pub fn set_jwt_max_lifetime(&mut self, secs: u64) {
        self.jwt_max_lifetime_secs = secs;
    }

    /// Whether any credential is configured (with none, every request is refused).
    pub fn is_configured(&self) -> bool {
        !self.tokens.is_empty() || !self.jwt_keys.is_empty()
    }

    /// The actor an `Authorization` header value authenticates, at time `now`.
    ///
    /// # Errors
    /// No bearer credential, or one that no configured credential accepts.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        now: UnixTime,
    ) -> Result<Actor, AdminAuthError> {
        let token = authorization
            .and_then(bearer_token)
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_ADMIN_TOKEN)
            .ok_or(AdminAuthError::Missing)?;
        let token = Zeroizing::new(token.to_owned());
        if token.split('.').count() == 3 && !self.jwt_keys.is_empty() {
            return self.authenticate_jwt(&token, now);
        }
        let presented = sha256(token.as_bytes());
        // Compare against every configured token, without stopping at the first match.
        let mut found: Option<&StaticToken> = None;
        for candidate in &self.tokens {
            if digests_equal(&candidate.digest, &presented) && found.is_none() {
                found = Some(candidate);
            }
        }
        let found = found.ok_or(AdminAuthError::Unknown)?;
        Ok(Actor::new(
            format!("token:{}", found.name),
            found.repos.clone(),
        ))
    }

    fn authenticate_jwt(&self, token: &str, now: UnixTime) -> Result<Actor, AdminAuthError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AdminAuthError::Malformed("not three parts"));
        };
        let header: JwtHeader = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AdminAuthError::Malformed("header"))?;
        if header.alg != "ES256" {
            return Err(AdminAuthError::Malformed("alg is not ES256"));
        }
        if header.crit.is_some() {
            return Err(AdminAuthError::Malformed("crit is not understood"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| AdminAuthError::Malformed("signature encoding"))?;
        let signed = token
            .get(..h.len() + 1 + p.len())
            .ok_or(AdminAuthError::Malformed("signed part"))?;
        let verified = self.jwt_keys.iter().any(|point| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(signed.as_bytes(), &signature)
                .is_ok()
        });
        if !verified {
            return Err(AdminAuthError::Signature);
        }
        let claims: AdminClaims = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AdminAuthError::Malformed("claims"))?;
        let now = now.as_secs();
        let early = |t: i64| now.saturating_add(JWT_LEEWAY_SECS) < t;
        let exp = claims.exp.floor;
        let (nbf, iat) = (claims.nbf.map(|t| t.ceil), claims.iat.map(|t| t.ceil));
        if now >= exp || nbf.is_some_and(early) || iat.is_some_and(early) {
            return Err(AdminAuthError::Expired);
        }
        let max = i64::try_from(self.jwt_max_lifetime_secs).unwrap_or(i64::MAX);
        // From `iat` rounded down here: the longer the lifetime counted, the sooner refused.
        let longer = |from: i64| exp.saturating_sub(from) > max;
        if longer(now) || claims.iat.is_some_and(|t| longer(t.floor)) {
            return Err(AdminAuthError::Lifetime {
                max_secs: self.jwt_max_lifetime_secs,
            });
        }
        // A token the same key signed for another service is not an admin credential here.
        if !claims
            .aud
            .as_ref()
            .is_some_and(|aud| aud.contains(&self.jwt_audience))
        {
            return Err(AdminAuthError::Audience {
                claim: "aud",
                expected: self.jwt_audience.clone(),
            });
        }
        if let Some(issuer) = &self.jwt_issuer
            && claims.iss.as_deref() != Some(issuer.as_str())
        {
            return Err(AdminAuthError::Audience {
                claim: "iss",
                expected: issuer.clone(),
            });
        }
        // Least privilege: a JWT is global only when it says so.
        let repos = match claims.repos.ok_or(AdminAuthError::Unscoped)? {
            OneOrMany::One(all) if all == "*" => None,
            OneOrMany::One(repo) => Some(vec![repo]),
            OneOrMany::Many(list) => Some(list),
        };
        let name = claims.sub.unwrap_or_else(|| "jwt".into());
        Ok(Actor::new(format!("jwt:{name}"), repos))
    }
}

/// The credentials of an `Authorization` value of the `Bearer` scheme, which is matched
/// without regard to case (RFC 9110 §11.1) and followed by spaces or tabs; none for another
/// scheme or no credentials.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("Bearer")
        .then(|| rest.trim_start_matches([' ', '\t']))
}

/// Fuzz harness: `data` as an `Authorization` value (as it is, and after `Bearer `) against
/// credentials of every kind: a static token, a JWT key, an audience and an issuer. Nothing
/// panics, and nothing but the static token itself authenticates (a fuzzer cannot sign JWTs).
#[doc(hidden)]
#[allow(clippy::panic)] // an assertion failure is the fuzz finding
pub fn fuzz_admin_credential(data: &[u8]) {
    static AUTH: std::sync::OnceLock<Option<AdminAuth>> = std::sync::OnceLock::new();
    const FUZZ_TOKEN: &str = "fuzz-static-token-0123456789abcdef";
    let Some(auth) = AUTH.get_or_init(|| {
        let key =
            tessera_policy::ear::SigningKey::generate(tessera_policy::ear::Alg::Es256).ok()?;
        let mut auth = AdminAuth::default();
        auth.add_static("fuzz", FUZZ_TOKEN, Some(vec!["a".into()]))
            .ok()?;
        auth.add_jwt_key_pem(&key.verifying_key().to_spki_pem())
            .ok()?;
        auth.set_jwt_audience("tessera-admin", Some("https://issuer.example"));
        Some(auth)
    }) else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    for header in [text.to_string(), format!("Bearer {text}")] {
        if let Ok(actor) = auth.authenticate(Some(&header), UnixTime::from_secs(1_800_000_000)) {
            let presented = bearer_token(&header).map(str::trim);
            if presented != Some(FUZZ_TOKEN) || actor.is_global() {
                panic!("authenticated {header:?} as {}", actor.name());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    const TOKEN: &str = "0123456789abcdef0123456789abcdef-admin";

    fn at(secs: i64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    #[test]
    fn deny_by_default() {
        let auth = AdminAuth::default();
        assert!(!auth.is_configured());
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {TOKEN}")), at(0))
                .unwrap_err(),
            AdminAuthError::Unknown
        );
        assert_eq!(
            auth.authenticate(None, at(0)).unwrap_err(),
            AdminAuthError::Missing
        );
    }

    /// Static tokens that could not be told apart, or scoped to nothing, are refused at start.
    #[test]
    fn ambiguous_static_tokens_are_refused() {
        let other = "another-token-0123456789abcdef-012345";
        let refused = |auth: &mut AdminAuth, name: &str, token: &str, repos: Option<Vec<&str>>| {
            let repos = repos.map(|l| l.into_iter().map(String::from).collect());
            match auth.add_static(name, token, repos) {
                Err(e @ AdminAuthError::UnusableToken { .. }) => e.to_string(),
                other => panic!("{name}: {other:?}"),
            }
        };
        let mut auth = AdminAuth::default();
        auth.add_static("root", TOKEN, None).unwrap();
        let e = refused(&mut auth, "root", other, Some(vec!["a"]));
        assert!(e.contains("second token of this name"), "{e}");
        let e = refused(&mut auth, "tenant", TOKEN, Some(vec!["a"]));
        assert!(e.contains("the same token as \"root\""), "{e}");
        let e = refused(&mut auth, "tenant", other, Some(vec![]));
        assert!(e.contains("repos is empty"), "{e}");
        for bad in ["", "team-a/../x", "a b", ".hidden"] {
            let e = refused(&mut auth, "tenant", other, Some(vec!["ok", bad]));
            assert!(e.contains("repos lists"), "{bad:?}: {e}");
        }
        // Names the audit log could not tell apart (its actor drops control characters and
        // stops at 256 bytes), or that say nothing.
        let long = "n".repeat(MAX_TOKEN_NAME + 1);
        for bad in [
            "",
            "ops\u{1}",
            "ops\u{2}",
            "two words",
            "tab\t",
            long.as_str(),
        ] {
            let e = refused(&mut auth, bad, other, Some(vec!["ok"]));
            assert!(
                e.contains("the actor the audit log records"),
                "{bad:?}: {e}"
            );
        }
        auth.add_static(
            "n".repeat(MAX_TOKEN_NAME).as_str(),
            other,
            Some(vec!["ok".into()]),
        )
        .unwrap();
        auth.add_static(
            "tenant",
            "tenant-token-0123456789abcdef-0123456",
            Some(vec!["ok".into()]),
        )
        .unwrap();
    }

    #[test]
    fn static_tokens_and_scopes() {
        let mut auth = AdminAuth::default();
        auth.add_static("root", TOKEN, None).unwrap();
        auth.add_static(
            "tenant",
            "tenant-a-token-0123456789abcdef-0123",
            Some(vec!["a".into()]),
        )
        .unwrap();
        let root = auth
            .authenticate(Some(&format!("Bearer {TOKEN}")), at(0))
            .unwrap();
        assert_eq!(root.name(), "token:root");
        assert!(root.may_use("anything"));
        let tenant = auth
            .authenticate(Some("Bearer tenant-a-token-0123456789abcdef-0123"), at(0))
            .unwrap();
        assert!(tenant.may_use("a"));
        assert!(!tenant.may_use("b"));
        assert!(!tenant.is_global());
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {TOKEN}x")), at(0))
                .unwrap_err(),
            AdminAuthError::Unknown
        );
        assert_eq!(
            auth.authenticate(Some(&format!("Basic {TOKEN}")), at(0))
                .unwrap_err(),
            AdminAuthError::Missing
        );
        // The scheme's case does not matter (RFC 9110), nor a tab or more spaces after it.
        for header in [
            format!("bearer {TOKEN}"),
            format!("BEARER {TOKEN}"),
            format!("Bearer\t{TOKEN}"),
            format!("Bearer   {TOKEN}"),
        ] {
            assert!(auth.authenticate(Some(&header), at(0)).is_ok(), "{header}");
        }
        for header in [format!("Bearer{TOKEN}"), format!("Bearerx {TOKEN}")] {
            assert_eq!(
                auth.authenticate(Some(&header), at(0)).unwrap_err(),
                AdminAuthError::Missing,
                "{header}"
            );
        }
        assert!(matches!(
            auth.add_static("weak", "short", None),
            Err(AdminAuthError::WeakToken { .. })
        ));
        // A token shaped like a JWT would never be compared as a static token once a JWT key
        // is configured: refused when added. Other dotted tokens are fine.
        assert_eq!(
            auth.add_static("dots", "aaaaaaaaaaaa.bbbbbbbbbbbb.cccccccccccc", None),
            Err(AdminAuthError::JwtShapedToken {
                name: "dots".into()
            })
        );
        auth.add_static("dots", "aaaaaaaaaaaa.bbbbbbbbbbbb.cccc.dddddddd", None)
            .unwrap();
    }

    #[test]
    fn a_static_token_scoped_to_star_is_refused() {
        let mut auth = AdminAuth::default();
        for repos in [vec!["*"], vec!["a", "*"], vec![" * "]] {
            let repos = repos.into_iter().map(str::to_owned).collect();
            let err = auth.add_static("ops", TOKEN, Some(repos)).unwrap_err();
            assert_eq!(err, AdminAuthError::WildcardRepos { name: "ops".into() });
            let message = err.to_string();
            assert!(message.contains("leave repos out"), "{message}");
        }
        assert!(!auth.is_configured(), "nothing was added");
        // A name that merely contains a star is not this mistake, but no repository's name.
        assert!(matches!(
            auth.add_static("ops", TOKEN, Some(vec!["a*".into()])),
            Err(AdminAuthError::UnusableToken { .. })
        ));
        auth.add_static("ops", TOKEN, Some(vec!["a".into()]))
            .unwrap();
        // A global token leaves repos out.
        auth.add_static("root", "root-0123456789abcdef-0123456789abcdef", None)
            .unwrap();
        let root = auth
            .authenticate(Some("Bearer root-0123456789abcdef-0123456789abcdef"), at(0))
            .unwrap();
        assert!(root.is_global());
    }

    fn signed_jwt(pair: &EcdsaKeyPair, header: &str, claims: &str) -> String {
        let mut t = URL_SAFE_NO_PAD.encode(header);
        t.push('.');
        t.push_str(&URL_SAFE_NO_PAD.encode(claims));
        let sig = pair.sign(&SystemRandom::new(), t.as_bytes()).unwrap();
        t.push('.');
        t.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        t
    }

    fn key_pair() -> (EcdsaKeyPair, String) {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let vk = tessera_policy::ear::VerifyingKey::from_jwk(&serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&pair.public_key().as_ref()[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&pair.public_key().as_ref()[33..65]),
        }))
        .unwrap();
        (pair, vk.to_spki_pem())
    }

    /// A credential over 8 KiB is refused before it is compared (even one configured that
    /// long), and an admin JWT key that is not a P-256 public key is refused when added.
    #[test]
    fn overlong_credentials_and_other_keys_are_refused() {
        let mut auth = AdminAuth::default();
        let long = "L".repeat(MAX_ADMIN_TOKEN + 1);
        auth.add_static("long", &long, None).unwrap();
        auth.add_static("root", TOKEN, None).unwrap();
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {long}")), at(0))
                .unwrap_err(),
            AdminAuthError::Missing
        );
        let fits = "F".repeat(MAX_ADMIN_TOKEN);
        auth.add_static("fits", &fits, None).unwrap();
        assert!(
            auth.authenticate(Some(&format!("Bearer {fits}")), at(0))
                .is_ok()
        );
        let p384 = tessera_policy::ear::SigningKey::generate(tessera_policy::ear::Alg::Es384)
            .unwrap()
            .verifying_key()
            .to_spki_pem();
        for pem in [p384.as_str(), "not a PEM", ""] {
            assert!(
                matches!(auth.add_jwt_key_pem(pem), Err(AdminAuthError::Key(_))),
                "{pem}"
            );
        }
        let (_, p256) = key_pair();
        auth.add_jwt_key_pem(&p256).unwrap();
    }

    /// A JWT valid for longer than the configured lifetime is refused, from now or from its
    /// `iat`; `nbf` and `iat` get a minute of clock skew, `exp` none.
    #[test]
    fn jwt_lifetime_is_capped_and_skew_allowed_only_before() {
        let (pair, pem) = key_pair();
        let mut auth = AdminAuth::default();
        auth.add_jwt_key_pem(&pem).unwrap();
        let check = |auth: &AdminAuth, claims: &str, now: i64| {
            let jwt = signed_jwt(&pair, r#"{"alg":"ES256"}"#, claims);
            auth.authenticate(Some(&format!("Bearer {jwt}")), at(now))
        };
        let with = |extra: &str| format!(r#"{{"aud":"tessera-admin","repos":"*",{extra}}}"#);
        let day = i64::try_from(DEFAULT_JWT_MAX_LIFETIME_SECS).unwrap();
        // Valid for exactly a day from now: accepted; a second more: refused.
        assert!(check(&auth, &with(&format!(r#""exp":{}"#, 1000 + day)), 1000).is_ok());
        assert_eq!(
            check(&auth, &with(&format!(r#""exp":{}"#, 1001 + day)), 1000).unwrap_err(),
            AdminAuthError::Lifetime {
                max_secs: DEFAULT_JWT_MAX_LIFETIME_SECS
            }
        );
        // Issued two days before it expires: refused even in its last hour.
        let two_days = with(&format!(r#""iat":1000,"exp":{}"#, 1000 + 2 * day));
        assert!(matches!(
            check(&auth, &two_days, 1000 + 2 * day - 3600),
            Err(AdminAuthError::Lifetime { .. })
        ));
        // A configured cap applies instead.
        let mut short = AdminAuth::default();
        short.add_jwt_key_pem(&pem).unwrap();
        short.set_jwt_max_lifetime(300);
        assert!(check(&short, &with(r#""exp":1300"#), 1000).is_ok());
        assert_eq!(
            check(&short, &with(r#""exp":1301"#), 1000).unwrap_err(),
            AdminAuthError::Lifetime { max_secs: 300 }
        );
        // nbf and iat up to a minute ahead (the issuer's clock runs fast): accepted; more: not.
        for claim in ["nbf", "iat"] {
            let ahead = |by: i64| with(&format!(r#""{claim}":{},"exp":2000"#, 1000 + by));
            assert!(
                check(&auth, &ahead(JWT_LEEWAY_SECS), 1000).is_ok(),
                "{claim}"
            );
            assert_eq!(
                check(&auth, &ahead(JWT_LEEWAY_SECS + 1), 1000).unwrap_err(),
                AdminAuthError::Expired,
                "{claim}"
            );
        }
        // No leeway after exp.
        assert_eq!(
            check(&auth, &with(r#""exp":1000"#), 1000).unwrap_err(),
            AdminAuthError::Expired
        );
    }

    /// NumericDates need not be integers (RFC 7519 §2): fractional ones are accepted, each
    /// rounded the way that shortens the credential's life; non-numbers and dates no `i64`
    /// holds are malformed.
    #[test]
    fn jwt_fractional_numeric_dates_round_towards_refusal() {
        let (pair, pem) = key_pair();
        let mut auth = AdminAuth::default();
        auth.add_jwt_key_pem(&pem).unwrap();
        auth.set_jwt_max_lifetime(300);
        let check = |claims: &str, now: i64| {
            let claims = format!(r#"{{"aud":"tessera-admin","repos":"*",{claims}}}"#);
            let jwt = signed_jwt(&pair, r#"{"alg":"ES256"}"#, &claims);
            auth.authenticate(Some(&format!("Bearer {jwt}")), at(now))
        };
        assert!(check(r#""exp":1001.5"#, 1000).is_ok());
        assert!(check(r#""exp":1.0015e3"#, 1000).is_ok());
        // exp rounds down: 1000.9 has passed at second 1000.
        assert_eq!(
            check(r#""exp":1000.9"#, 1000).unwrap_err(),
            AdminAuthError::Expired
        );
        // nbf and iat round up: 1060.1 is more than a minute ahead of second 1000.
        for claim in ["nbf", "iat"] {
            assert!(check(&format!(r#""{claim}":1059.9,"exp":1200"#), 1000).is_ok());
            assert_eq!(
                check(&format!(r#""{claim}":1060.1,"exp":1200"#), 1000).unwrap_err(),
                AdminAuthError::Expired,
                "{claim}"
            );
        }
        // The lifetime from iat counts from iat rounded down: 1300 - 999 > 300.
        assert!(check(r#""iat":999.9,"exp":1299"#, 1000).is_ok());
        assert_eq!(
            check(r#""iat":999.9,"exp":1300"#, 1000).unwrap_err(),
            AdminAuthError::Lifetime { max_secs: 300 }
        );
        for bad in [
            r#""exp":"1200""#,
            r#""exp":1e300"#,
            r#""exp":18446744073709551615"#,
            r#""exp":1200,"nbf":true"#,
            r#""exp":1200,"iat":-1e16"#,
        ] {
            assert_eq!(
                check(bad, 1000).unwrap_err(),
                AdminAuthError::Malformed("claims"),
                "{bad}"
            );
        }
    }

    #[test]
    fn jwt_admin_tokens() {
        let (pair, pem) = key_pair();
        let (other, _) = key_pair();
        let mut auth = AdminAuth::default();
        auth.add_jwt_key_pem(&pem).unwrap();
        let good = signed_jwt(
            &pair,
            r#"{"alg":"ES256"}"#,
            r#"{"sub":"ci","exp":2000,"repos":["a"],"aud":"tessera-admin"}"#,
        );
        let actor = auth
            .authenticate(Some(&format!("Bearer {good}")), at(1000))
            .unwrap();
        assert_eq!(actor.name(), "jwt:ci");
        assert!(actor.may_use("a") && !actor.may_use("b"));
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {good}")), at(2000))
                .unwrap_err(),
            AdminAuthError::Expired
        );
        let foreign = signed_jwt(
            &other,
            r#"{"alg":"ES256"}"#,
            r#"{"exp":2000,"aud":"tessera-admin","repos":"*"}"#,
        );
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {foreign}")), at(1000))
                .unwrap_err(),
            AdminAuthError::Signature
        );
        let none_alg = signed_jwt(&pair, r#"{"alg":"none"}"#, r#"{"exp":2000}"#);
        assert!(matches!(
            auth.authenticate(Some(&format!("Bearer {none_alg}")), at(1000)),
            Err(AdminAuthError::Malformed(_))
        ));
        let crit = signed_jwt(&pair, r#"{"alg":"ES256","crit":["x"]}"#, r#"{"exp":2000}"#);
        assert!(matches!(
            auth.authenticate(Some(&format!("Bearer {crit}")), at(1000)),
            Err(AdminAuthError::Malformed(_))
        ));
        let early = signed_jwt(
            &pair,
            r#"{"alg":"ES256"}"#,
            r#"{"exp":3000,"nbf":1500,"aud":"tessera-admin","repos":"*"}"#,
        );
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {early}")), at(1000))
                .unwrap_err(),
            AdminAuthError::Expired
        );
        // A tampered payload fails the signature.
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged =
            URL_SAFE_NO_PAD.encode(r#"{"sub":"ci","exp":2000,"aud":"tessera-admin","repos":"*"}"#);
        parts[1] = &forged;
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {}", parts.join("."))), at(1000))
                .unwrap_err(),
            AdminAuthError::Signature
        );
    }

    proptest::proptest! {
        /// Arbitrary headers, and JWT-shaped ones, never panic and never authenticate.
        #[test]
        fn arbitrary_credentials_are_refused(
            junk in "\\PC{0,300}",
            parts in proptest::collection::vec("[A-Za-z0-9_-]{0,80}", 3),
        ) {
            fuzz_admin_credential(junk.as_bytes());
            fuzz_admin_credential(parts.join(".").as_bytes());
            let (pair, pem) = key_pair();
            let mut auth = AdminAuth::default();
            auth.add_jwt_key_pem(&pem).unwrap();
            // Signed by the right key, but with arbitrary claims text: refused unless it is a
            // JSON object with every required claim.
            let jwt = signed_jwt(&pair, r#"{"alg":"ES256"}"#, &junk);
            let header = format!("Bearer {jwt}");
            proptest::prop_assert!(auth.authenticate(Some(&header), at(1000)).is_err());
        }
    }

    #[test]
    fn fuzz_harness_accepts_only_its_static_token() {
        fuzz_admin_credential(b"fuzz-static-token-0123456789abcdef");
        fuzz_admin_credential(b"Bearer fuzz-static-token-0123456789abcdef");
        fuzz_admin_credential(b"");
        fuzz_admin_credential(b"a.b.c");
    }

    #[test]
    fn admin_jwts_name_their_audience_issuer_and_scope() {
        let (pair, pem) = key_pair();
        let mut auth = AdminAuth::default();
        auth.add_jwt_key_pem(&pem).unwrap();
        let check = |auth: &AdminAuth, claims: &str| {
            let jwt = signed_jwt(&pair, r#"{"alg":"ES256"}"#, claims);
            auth.authenticate(Some(&format!("Bearer {jwt}")), at(1000))
        };
        // aud: required, as a string or in a list.
        let no_aud = check(&auth, r#"{"exp":2000,"repos":"*"}"#).unwrap_err();
        assert!(matches!(
            no_aud,
            AdminAuthError::Audience { claim: "aud", .. }
        ));
        let other_aud = check(&auth, r#"{"exp":2000,"repos":"*","aud":"git"}"#).unwrap_err();
        assert!(matches!(
            other_aud,
            AdminAuthError::Audience { claim: "aud", .. }
        ));
        let listed = check(
            &auth,
            r#"{"exp":2000,"repos":"*","aud":["git","tessera-admin"]}"#,
        )
        .unwrap();
        assert!(listed.is_global());
        // repos: required; "*" is global, a string one repository, a list those.
        assert_eq!(
            check(&auth, r#"{"exp":2000,"aud":"tessera-admin"}"#).unwrap_err(),
            AdminAuthError::Unscoped
        );
        let one = check(&auth, r#"{"exp":2000,"aud":"tessera-admin","repos":"a"}"#).unwrap();
        assert!(one.may_use("a") && !one.may_use("b") && !one.is_global());
        let star_in_list =
            check(&auth, r#"{"exp":2000,"aud":"tessera-admin","repos":["*"]}"#).unwrap();
        assert!(!star_in_list.is_global() && !star_in_list.may_use("a"));
        // A configured audience and issuer.
        auth.set_jwt_audience("kbs.example", Some("https://ci.example"));
        let good = r#"{"exp":2000,"aud":"kbs.example","iss":"https://ci.example","repos":"*"}"#;
        assert!(check(&auth, good).unwrap().is_global());
        let old_aud =
            r#"{"exp":2000,"aud":"tessera-admin","iss":"https://ci.example","repos":"*"}"#;
        assert!(matches!(
            check(&auth, old_aud).unwrap_err(),
            AdminAuthError::Audience { claim: "aud", .. }
        ));
        for iss in [r#""https://other.example""#, "null"] {
            let claims = format!(r#"{{"exp":2000,"aud":"kbs.example","iss":{iss},"repos":"*"}}"#);
            assert!(matches!(
                check(&auth, &claims).unwrap_err(),
                AdminAuthError::Audience { claim: "iss", .. }
            ));
        }
    }
}
