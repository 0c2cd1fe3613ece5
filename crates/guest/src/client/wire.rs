//! The KBS 0.4.0 messages: request bodies, answer parsers and the credentials they carry.
//!
//! Parsers take the capped body bytes, read them as a `serde_json::Value` (serde_json's
//! recursion limit bounds nesting; the caps bound size) and pick the named members by hand, so a
//! wrong answer is reported by the field's name and never by echoing its value.

use core::fmt;

use zeroize::Zeroizing;

use super::binding::HashAlg;
use super::error::{ClientError, Step};

/// The protocol version this client speaks.
pub const PROTOCOL_VERSION: &str = "0.4.0";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kbs-session-id";
/// Prefix of the KBS error `type` URIs.
pub const ERROR_TYPE_PREFIX: &str = "https://github.com/confidential-containers/kbs/errors/";
/// Cap on the `/auth` answer.
pub const MAX_AUTH_RESPONSE: usize = 16 * 1024;
/// Cap on the `/attest` answer (the EAR token with its header JWK and claims).
pub const MAX_ATTEST_RESPONSE: usize = 256 * 1024;
/// Cap on a non-200 answer's error body.
pub const MAX_ERROR_RESPONSE: usize = 16 * 1024;
/// The longest nonce accepted from a challenge.
pub const MAX_NONCE_LEN: usize = 512;
/// The longest session id accepted from `Set-Cookie`.
pub const MAX_SESSION_ID_LEN: usize = 512;
const MAX_DETAIL_LEN: usize = 512;
const MAX_KIND_LEN: usize = 128;

/// The KBS session: the value of the `kbs-session-id` cookie. It is a credential: its `Debug`
/// hides it and it is zeroized on drop.
#[derive(Clone)]
pub struct Session(Zeroizing<String>);

impl Session {
    /// A session from a cookie value (1..=512 cookie-octets, RFC 6265 §4.1.1).
    ///
    /// # Errors
    /// [`ClientError::MalformedResponse`] (step auth, field `set-cookie kbs-session-id`).
    pub fn from_cookie_value(value: &str) -> Result<Session, ClientError> {
        let ok = !value.is_empty()
            && value.len() <= MAX_SESSION_ID_LEN
            && value
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E));
        if ok {
            Ok(Session(Zeroizing::new(value.to_owned())))
        } else {
            Err(ClientError::MalformedResponse {
                step: Step::Auth,
                field: "set-cookie kbs-session-id",
            })
        }
    }

    /// The cookie value.
    #[must_use]
    pub fn cookie_value(&self) -> &str {
        &self.0
    }

    /// The `Cookie` request header value, `kbs-session-id=<value>`.
    #[must_use]
    pub fn cookie_header(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{SESSION_COOKIE}={}", self.cookie_value()))
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Session(..)")
    }
}

/// The attestation token from `/attest`. A bearer credential: hidden from `Debug`, zeroized on
/// drop.
#[derive(Clone)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// A token from its text: 1..=`MAX_ATTEST_RESPONSE` characters of RFC 6750 `b64token`
    /// (`[A-Za-z0-9._~+/-]` then `=`*), so it can go into `Authorization: Bearer` as is.
    ///
    /// # Errors
    /// [`ClientError::MalformedResponse`] (step attest, field `token`).
    pub fn from_string(text: &str) -> Result<Token, ClientError> {
        let body = text.trim_end_matches('=');
        let ok = !body.is_empty()
            && text.len() <= MAX_ATTEST_RESPONSE
            && body.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'-')
            });
        if ok {
            Ok(Token(Zeroizing::new(text.to_owned())))
        } else {
            Err(ClientError::MalformedResponse {
                step: Step::Attest,
                field: "token",
            })
        }
    }

    /// The token text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `Authorization` request header value, `Bearer <token>`.
    #[must_use]
    pub fn authorization_header(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("Bearer {}", self.as_str()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// The broker's challenge: the session it opened, the nonce and the hash for REPORT_DATA.
/// Fields are public so tests can replay or mix challenges on purpose.
#[derive(Clone, Debug)]
pub struct Challenge {
    /// The session the `/auth` answer opened.
    pub session: Session,
    /// The nonce, exactly as received (it is bound into REPORT_DATA as this string).
    pub nonce: String,
    /// The hash the challenge selected (SHA-384 when `extra-params` is `""`).
    pub hash: HashAlg,
}

/// How the resource GET is authenticated.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// The attested session's cookie.
    Cookie(&'a Session),
    /// `Authorization: Bearer <token>`.
    Bearer(&'a Token),
}

/// The `/auth` request body for `tee`.
#[must_use]
pub fn auth_request(tee: &str) -> serde_json::Value {
    let hashes: Vec<&str> = HashAlg::SUPPORTED.iter().map(|h| h.name()).collect();
    serde_json::json!({
        "version": PROTOCOL_VERSION,
        "tee": tee,
        "extra-params": { "supported-hash-algorithms": hashes },
    })
}

/// Checks a TEE name: 1..=64 characters of `[A-Za-z0-9_-]`.
///
/// # Errors
/// [`ClientError::InvalidTee`].
pub fn check_tee(tee: &str) -> Result<(), ClientError> {
    let ok = (1..=64).contains(&tee.len())
        && tee
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ClientError::InvalidTee)
    }
}

/// The `/attest` request body.
#[must_use]
pub fn attest_request(
    nonce: &str,
    tee_pubkey: &serde_json::Value,
    init_data: Option<&str>,
    evidence: serde_json::Value,
) -> serde_json::Value {
    // `evidence` is moved in: `json!` would copy it (its certificates byte by byte).
    let mut tee_evidence = serde_json::Map::new();
    tee_evidence.insert("primary_evidence".to_owned(), evidence);
    tee_evidence.insert("additional_evidence".to_owned(), "".into());
    let mut body = serde_json::json!({
        "runtime-data": { "nonce": nonce, "tee-pubkey": tee_pubkey },
    });
    if let Some(obj) = body.as_object_mut() {
        obj.insert(
            "tee-evidence".to_owned(),
            serde_json::Value::Object(tee_evidence),
        );
    }
    if let (Some(toml), Some(obj)) = (init_data, body.as_object_mut()) {
        obj.insert(
            "init-data".to_owned(),
            serde_json::json!({ "format": "toml", "body": toml }),
        );
    }
    body
}

fn malformed(step: Step, field: &'static str) -> ClientError {
    ClientError::MalformedResponse { step, field }
}

fn json_object(
    step: Step,
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, ClientError> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(malformed(step, "body is not a JSON object")),
        Err(_) => Err(malformed(step, "body is not JSON")),
    }
}

/// Parses a 200 `/auth` body: the nonce and the selected hash.
///
/// # Errors
/// [`ClientError::MalformedResponse`] naming `nonce` or `extra-params`;
/// [`ClientError::UnsupportedHash`] for a selected algorithm other than sha256/384/512.
pub fn parse_challenge(body: &[u8]) -> Result<(String, HashAlg), ClientError> {
    let step = Step::Auth;
    if body.len() > MAX_AUTH_RESPONSE {
        return Err(ClientError::ResponseTooLarge {
            step,
            limit: MAX_AUTH_RESPONSE,
        });
    }
    let obj = json_object(step, body)?;
    let nonce = obj
        .get("nonce")
        .and_then(serde_json::Value::as_str)
        .ok_or(malformed(step, "nonce missing or not a string"))?;
    if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN || nonce.chars().any(char::is_control) {
        return Err(malformed(
            step,
            "nonce empty, too long or with control characters",
        ));
    }
    let hash = match obj.get("extra-params") {
        None | Some(serde_json::Value::Null) => HashAlg::Sha384,
        Some(serde_json::Value::String(s)) if s.is_empty() => HashAlg::Sha384,
        Some(serde_json::Value::Object(params)) => match params.get("selected-hash-algorithm") {
            None => HashAlg::Sha384,
            Some(serde_json::Value::String(name)) => {
                HashAlg::from_name(name).ok_or_else(|| ClientError::UnsupportedHash {
                    name: clean_text(name, 32),
                })?
            }
            Some(_) => {
                return Err(malformed(
                    step,
                    "extra-params selected-hash-algorithm not a string",
                ));
            }
        },
        Some(_) => return Err(malformed(step, "extra-params neither \"\" nor an object")),
    };
    Ok((nonce.to_owned(), hash))
}

/// Finds the `kbs-session-id` cookie among `Set-Cookie` header values (the first one wins;
/// attributes are ignored, a quoted value is unquoted).
///
/// # Errors
/// [`ClientError::MalformedResponse`] when none is present or its value is not a cookie value.
pub fn parse_set_cookie<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Session, ClientError> {
    for raw in values {
        let Ok(text) = core::str::from_utf8(raw) else {
            continue;
        };
        let pair = text.split(';').next().unwrap_or_default();
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        if name.trim() != SESSION_COOKIE {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        return Session::from_cookie_value(value);
    }
    Err(malformed(Step::Auth, "set-cookie kbs-session-id missing"))
}

/// Parses a 200 `/attest` body `{"token": "<JWT>"}`.
///
/// # Errors
/// [`ClientError::MalformedResponse`] naming `token`.
pub fn parse_token(body: &[u8]) -> Result<Token, ClientError> {
    let step = Step::Attest;
    if body.len() > MAX_ATTEST_RESPONSE {
        return Err(ClientError::ResponseTooLarge {
            step,
            limit: MAX_ATTEST_RESPONSE,
        });
    }
    let obj = json_object(step, body)?;
    let text = obj
        .get("token")
        .and_then(serde_json::Value::as_str)
        .ok_or(malformed(step, "token missing or not a string"))?;
    Token::from_string(text)
}

/// Turns a non-200 answer into [`ClientError::Broker`] (a KBS error body: a `type` under the
/// KBS errors prefix) or [`ClientError::Status`] (anything else: a proxy's or a gateway's
/// answer, an RFC 9457 problem of another `type` included).
#[must_use]
pub fn parse_error(step: Step, status: u16, body: &[u8]) -> ClientError {
    if body.len() <= MAX_ERROR_RESPONSE
        && let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice(body)
        && let Some(kind) = obj.get("type").and_then(serde_json::Value::as_str)
        && let Some(name) = kind.strip_prefix(ERROR_TYPE_PREFIX)
    {
        let detail = obj
            .get("detail")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        return ClientError::Broker {
            step,
            status,
            kind: clean_text(name, MAX_KIND_LEN),
            detail: clean_text(detail, MAX_DETAIL_LEN),
        };
    }
    ClientError::Status { step, status }
}

/// Removes control characters and cuts to at most `max` bytes on a character boundary.
fn clean_text(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`, written
/// out from the RFC apart from [`Token::from_string`] (an oracle for the fuzz harness and tests).
fn is_b64token(s: &str) -> bool {
    let head = s.trim_end_matches('=');
    !head.is_empty()
        && head.chars().all(|c| {
            c.is_ascii_uppercase()
                || c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || "-._~+/".contains(c)
        })
}

/// RFC 6265 §4.1.1 `cookie-octet`: US-ASCII visible characters but `"`, `,`, `;` and `\`
/// (an oracle for the fuzz harness and tests, apart from [`Session::from_cookie_value`]).
fn is_cookie_octet(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\')
}

/// Text an error may carry to a terminal or a log: no control character, at most `max` bytes.
fn is_clean_text(s: &str, max: usize) -> bool {
    s.len() <= max && !s.chars().any(char::is_control)
}

/// Oracle of [`parse_token`] (fuzz harness and tests): a token is accepted exactly when the
/// capped body is a JSON object whose `token` is a string that is a `b64token`; it is then
/// that string and makes an `Authorization: Bearer` value of visible ASCII and one space.
#[allow(clippy::panic)]
pub(crate) fn check_parse_token(body: &[u8]) {
    let expected = (body.len() <= MAX_ATTEST_RESPONSE)
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten()
        .and_then(|v| v.get("token")?.as_str().map(str::to_owned))
        .filter(|t| is_b64token(t));
    match (parse_token(body), expected) {
        (Ok(token), Some(text)) => {
            assert_eq!(token.as_str(), text);
            assert!((1..=MAX_ATTEST_RESPONSE).contains(&token.as_str().len()));
            let header = token.authorization_header();
            let value = header.strip_prefix("Bearer ").unwrap_or_default();
            assert!(is_b64token(value), "not a Bearer b64token");
            assert!(header.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
            assert_eq!(header.bytes().filter(|&b| b == b' ').count(), 1);
        }
        (Err(_), None) => {}
        (got, expected) => panic!(
            "parse_token: accepted {}, a b64token string member {}",
            got.is_ok(),
            expected.is_some()
        ),
    }
}

/// Oracle of [`parse_set_cookie`] (fuzz harness and tests) on the `\n`-separated header values
/// in `data`: a session is 1..=[`MAX_SESSION_ID_LEN`] cookie-octets, found in one of the values
/// after `kbs-session-id=`, and its `Cookie` header is that pair.
#[allow(clippy::panic)]
pub(crate) fn check_parse_set_cookie(data: &[u8]) {
    let Ok(session) = parse_set_cookie(data.split(|&b| b == b'\n')) else {
        return;
    };
    let v = session.cookie_value();
    assert!((1..=MAX_SESSION_ID_LEN).contains(&v.len()));
    assert!(v.bytes().all(is_cookie_octet), "not cookie-octets");
    assert_eq!(*session.cookie_header(), format!("{SESSION_COOKIE}={v}"));
    assert!(
        data.split(|&b| b == b'\n')
            .filter_map(|l| core::str::from_utf8(l).ok())
            .any(|l| l.contains(SESSION_COOKIE) && l.contains(v))
    );
}

/// Oracle of [`parse_challenge`] (fuzz harness and tests): an accepted nonce is within its cap
/// and free of control characters; an unsupported hash's name is cut to 32 clean bytes.
#[allow(clippy::panic)]
pub(crate) fn check_parse_challenge(body: &[u8]) {
    match parse_challenge(body) {
        Ok((nonce, _)) => {
            assert!(body.len() <= MAX_AUTH_RESPONSE);
            assert!(!nonce.is_empty() && is_clean_text(&nonce, MAX_NONCE_LEN));
        }
        Err(ClientError::UnsupportedHash { name }) => assert!(is_clean_text(&name, 32)),
        Err(_) => {}
    }
}

/// Oracle of [`parse_error`] (fuzz harness and tests): the step and status are kept; a KBS
/// error's kind and detail are within their caps and free of control characters, as is the
/// whole message; a body over the cap or without a KBS `type` is a bare status.
#[allow(clippy::panic)]
pub(crate) fn check_parse_error(step: Step, status: u16, body: &[u8]) {
    let err = parse_error(step, status, body);
    assert_eq!(err.status(), Some(status));
    assert!(!err.to_string().chars().any(char::is_control));
    let kbs_type = (body.len() <= MAX_ERROR_RESPONSE)
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten()
        .and_then(|v| v.get("type")?.as_str().map(str::to_owned))
        .is_some_and(|t| t.starts_with(ERROR_TYPE_PREFIX));
    match err {
        ClientError::Broker {
            step: s,
            kind,
            detail,
            ..
        } => {
            assert!(kbs_type);
            assert_eq!(s, step);
            assert!(
                is_clean_text(&kind, MAX_KIND_LEN),
                "kind over its cap or unclean"
            );
            assert!(
                is_clean_text(&detail, MAX_DETAIL_LEN),
                "detail over its cap or unclean"
            );
        }
        ClientError::Status { step: s, .. } => {
            assert!(!kbs_type);
            assert_eq!(s, step);
        }
        other => panic!("parse_error gave {other:?}"),
    }
}

/// A validated resource: `repo/type/tag` and an optional pinned version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    path: String,
    version: Option<u64>,
}

/// The longest path segment.
pub const MAX_SEGMENT_LEN: usize = 128;

impl ResourcePath {
    /// Parses `repo/type/tag[?version=N]`: three segments each matching
    /// `[A-Za-z0-9_\-]+[A-Za-z0-9_\-.]*` and at most 128 bytes; `N` a decimal integer ≥ 1
    /// without sign or leading zeros.
    ///
    /// # Errors
    /// [`ClientError::InvalidResourcePath`] naming the rule broken.
    pub fn parse(s: &str) -> Result<ResourcePath, ClientError> {
        let bad = |reason| ClientError::InvalidResourcePath { reason };
        let (path, query) = match s.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (s, None),
        };
        let segments: Vec<&str> = path.split('/').collect();
        if segments.len() != 3 {
            return Err(bad("not three segments repo/type/tag"));
        }
        for seg in segments {
            let mut bytes = seg.bytes();
            let first_ok = bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !first_ok {
                return Err(bad(
                    "a segment is empty or starts with a character outside [A-Za-z0-9_-]",
                ));
            }
            if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
                return Err(bad("a segment has a character outside [A-Za-z0-9_.-]"));
            }
            if seg.len() > MAX_SEGMENT_LEN {
                return Err(bad("a segment is longer than 128 bytes"));
            }
        }
        let version = match query {
            None => None,
            Some(q) => {
                let n = q
                    .strip_prefix("version=")
                    .ok_or(bad("the query is not version=N"))?;
                let digits_ok = !n.is_empty()
                    && n.len() <= 20
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && !n.starts_with('0');
                let v: u64 = if digits_ok {
                    n.parse().map_err(|_| bad("version is not a number"))?
                } else {
                    return Err(bad(
                        "version is not a decimal integer >= 1 without leading zeros",
                    ));
                };
                Some(v)
            }
        };
        Ok(ResourcePath {
            path: path.to_owned(),
            version,
        })
    }

    /// `repo/type/tag`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The pinned version, if any.
    #[must_use]
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The request target below the base URL: `/kbs/v0/resource/repo/type/tag[?version=N]`.
    #[must_use]
    pub fn request_target(&self) -> String {
        match self.version {
            Some(v) => format!("/kbs/v0/resource/{}?version={v}", self.path),
            None => format!("/kbs/v0/resource/{}", self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn auth_request_has_the_protocol_shape() {
        let v = auth_request("snp");
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"extra-params":{"supported-hash-algorithms":["sha256","sha384","sha512"]},"tee":"snp","version":"0.4.0"}"#
        );
    }

    #[test]
    fn tee_names() {
        for ok in ["snp", "tdx", "az-snp-vtpm", "sample_1"] {
            check_tee(ok).unwrap();
        }
        for bad in ["", "snp tdx", "s\"", &"a".repeat(65)] {
            assert!(
                matches!(check_tee(bad), Err(ClientError::InvalidTee)),
                "{bad}"
            );
        }
    }

    #[test]
    fn attest_request_shape() {
        let jwk = serde_json::json!({"kty":"EC"});
        let v = attest_request("n", &jwk, None, serde_json::json!({"quote":"AA=="}));
        assert_eq!(
            v,
            serde_json::json!({
                "runtime-data": {"nonce":"n","tee-pubkey":{"kty":"EC"}},
                "tee-evidence": {"primary_evidence":{"quote":"AA=="},"additional_evidence":""}
            })
        );
        let v = attest_request(
            "n",
            &jwk,
            Some("algorithm = \"sha384\"\n"),
            serde_json::json!(null),
        );
        assert_eq!(
            v["init-data"],
            serde_json::json!({"format":"toml","body":"algorithm = \"sha384\"\n"})
        );
    }

    #[test]
    fn challenge_hash_selection() {
        let p = |s: &str| parse_challenge(s.as_bytes());
        assert_eq!(
            p(r#"{"nonce":"abc","extra-params":""}"#).unwrap(),
            ("abc".into(), HashAlg::Sha384)
        );
        assert_eq!(p(r#"{"nonce":"abc"}"#).unwrap().1, HashAlg::Sha384);
        assert_eq!(
            p(r#"{"nonce":"abc","extra-params":{}}"#).unwrap().1,
            HashAlg::Sha384
        );
        for h in HashAlg::SUPPORTED {
            let body = format!(
                r#"{{"nonce":"abc","extra-params":{{"selected-hash-algorithm":"{}"}}}}"#,
                h.name()
            );
            assert_eq!(p(&body).unwrap().1, h);
        }
        match p(r#"{"nonce":"abc","extra-params":{"selected-hash-algorithm":"sm3"}}"#) {
            Err(ClientError::UnsupportedHash { name }) => assert_eq!(name, "sm3"),
            other => panic!("{other:?}"),
        }
        for (body, field) in [
            (r#"{"extra-params":""}"#, "nonce missing or not a string"),
            (r#"{"nonce":5}"#, "nonce missing or not a string"),
            (
                r#"{"nonce":""}"#,
                "nonce empty, too long or with control characters",
            ),
            (
                r#"{"nonce":"a\nb"}"#,
                "nonce empty, too long or with control characters",
            ),
            (
                r#"{"nonce":"a","extra-params":"sha512"}"#,
                "extra-params neither \"\" nor an object",
            ),
            (
                r#"{"nonce":"a","extra-params":7}"#,
                "extra-params neither \"\" nor an object",
            ),
            (
                r#"{"nonce":"a","extra-params":{"selected-hash-algorithm":1}}"#,
                "extra-params selected-hash-algorithm not a string",
            ),
            ("[]", "body is not a JSON object"),
            ("nonce", "body is not JSON"),
        ] {
            match p(body) {
                Err(ClientError::MalformedResponse {
                    step: Step::Auth,
                    field: f,
                }) => assert_eq!(f, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let long = format!(r#"{{"nonce":"{}"}}"#, "a".repeat(MAX_NONCE_LEN + 1));
        assert!(p(&long).is_err());
        let huge = format!(
            r#"{{"nonce":"a","pad":"{}"}}"#,
            "a".repeat(MAX_AUTH_RESPONSE)
        );
        assert!(matches!(
            p(&huge),
            Err(ClientError::ResponseTooLarge { .. })
        ));
    }

    #[test]
    fn set_cookie_parsing() {
        let s = parse_set_cookie([
            &b"other=1; Path=/"[..],
            b"kbs-session-id=abc-123; Path=/; HttpOnly; Max-Age=300",
        ])
        .unwrap();
        assert_eq!(s.cookie_value(), "abc-123");
        assert_eq!(&*s.cookie_header(), "kbs-session-id=abc-123");
        assert_eq!(format!("{s:?}"), "Session(..)");
        let s = parse_set_cookie([&b"kbs-session-id=\"q\""[..]]).unwrap();
        assert_eq!(s.cookie_value(), "q");
        assert!(parse_set_cookie([&b"other=1"[..]]).is_err());
        assert!(parse_set_cookie(Vec::<&[u8]>::new()).is_err());
        for bad in [
            &b"kbs-session-id="[..],
            b"kbs-session-id=a b",
            b"kbs-session-id=a,b",
            b"kbs-session-id=\xff",
        ] {
            assert!(parse_set_cookie([bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_session_id_longer_than_512_bytes_is_refused() {
        let at_cap = "a".repeat(MAX_SESSION_ID_LEN);
        let s = Session::from_cookie_value(&at_cap).unwrap();
        assert_eq!(s.cookie_value(), at_cap);
        let over = "a".repeat(MAX_SESSION_ID_LEN + 1);
        assert!(matches!(
            Session::from_cookie_value(&over),
            Err(ClientError::MalformedResponse {
                step: Step::Auth,
                field: "set-cookie kbs-session-id"
            })
        ));
    }

    #[test]
    fn token_parsing() {
        let t = parse_token(br#"{"token":"eyJh.eyJi.c2ln"}"#).unwrap();
        assert_eq!(t.as_str(), "eyJh.eyJi.c2ln");
        assert_eq!(&*t.authorization_header(), "Bearer eyJh.eyJi.c2ln");
        assert_eq!(format!("{t:?}"), "Token(..)");
        for bad in [
            r#"{"token":""}"#,
            r#"{"token":"a b"}"#,
            r#"{"token":"a\r\nX: y"}"#,
            r#"{"token":1}"#,
            r#"{}"#,
            "x",
        ] {
            assert!(
                matches!(
                    parse_token(bad.as_bytes()),
                    Err(ClientError::MalformedResponse {
                        step: Step::Attest,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn error_bodies() {
        let e = parse_error(Step::Resource, 403, br#"{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"policy denied\u0007 the request"}"#);
        match &e {
            ClientError::Broker {
                step: Step::Resource,
                status: 403,
                kind,
                detail,
            } => {
                assert_eq!(kind, "PolicyDeny");
                assert_eq!(detail, "policy denied the request");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.kind(), Some("PolicyDeny"));
        assert_eq!(e.status(), Some(403));
        assert!(!e.is_retryable());
        let e = parse_error(Step::Auth, 502, b"<html>bad gateway</html>");
        assert!(matches!(
            e,
            ClientError::Status {
                step: Step::Auth,
                status: 502
            }
        ));
        assert!(e.is_retryable());
        let e = parse_error(
            Step::Auth,
            401,
            br#"{"type":"https://github.com/confidential-containers/kbs/errors/Other","detail":7}"#,
        );
        assert!(
            matches!(&e, ClientError::Broker { kind, detail, .. } if kind == "Other" && detail.is_empty())
        );
        // A JSON problem of another type (a gateway's RFC 9457 answer) is not the broker's.
        let e = parse_error(
            Step::Resource,
            403,
            br#"{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.4","title":"Forbidden"}"#,
        );
        assert!(
            matches!(e, ClientError::Status { status: 403, .. }),
            "{e:?}"
        );
        let long = format!(
            r#"{{"type":"https://github.com/confidential-containers/kbs/errors/x","detail":"{}"}}"#,
            "é".repeat(600)
        );
        match parse_error(Step::Auth, 400, long.as_bytes()) {
            ClientError::Broker { detail, .. } => {
                assert!(detail.len() <= 512 && detail.len() >= 510)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let r = ResourcePath::parse("default/key/tag.v1").unwrap();
        assert_eq!(r.request_target(), "/kbs/v0/resource/default/key/tag.v1");
        let r = ResourcePath::parse("a-b/c_d/e?version=12").unwrap();
        assert_eq!(r.version(), Some(12));
        assert_eq!(r.request_target(), "/kbs/v0/resource/a-b/c_d/e?version=12");
        ResourcePath::parse(&format!("{}/b/c", "a".repeat(128))).unwrap();
        for bad in [
            "",
            "a/b",
            "a/b/c/d",
            "a//c",
            ".a/b/c",
            "a/b/c?version=0",
            "a/b/c?version=01",
            "a/b/c?version=",
            "a/b/c?version=-1",
            "a/b/c?v=1",
            "a/b/c?version=1&x=2",
            "a/b/c d",
            "a/b/../c",
            "a/b/%2e",
            "a/b/c?version=99999999999999999999",
            &format!("{}/b/c", "a".repeat(129)),
        ] {
            assert!(
                matches!(
                    ResourcePath::parse(bad),
                    Err(ClientError::InvalidResourcePath { .. })
                ),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn parsers_meet_their_oracles_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..256), status in 100u16..600) {
            check_parse_challenge(&data);
            check_parse_token(&data);
            check_parse_error(Step::Resource, status, &data);
            check_parse_set_cookie(&data);
            if let Ok(s) = core::str::from_utf8(&data) {
                let _ = ResourcePath::parse(s);
            }
        }

        /// Token bodies near the grammar: b64token characters mixed with others (space, `"`,
        /// controls, non-ASCII, `=` inside), some past the cap.
        #[test]
        fn generated_tokens_meet_the_oracle(
            parts in proptest::collection::vec(prop_oneof![
                8 => "[A-Za-z0-9._~+/-]{1,12}",
                2 => "={1,3}",
                1 => "[ \"\\\\,;:\t\r\n\u{0}\u{7f}é€]",
            ], 0..8),
            long in proptest::option::of(MAX_ATTEST_RESPONSE - 40..MAX_ATTEST_RESPONSE + 10),
            as_number in any::<bool>(),
        ) {
            let mut text = parts.concat();
            if let Some(n) = long {
                text = format!("{text}{}", "a".repeat(n.saturating_sub(text.len())));
            }
            let body = if as_number {
                serde_json::json!({"token": 1, "t": text})
            } else {
                serde_json::json!({"token": text})
            };
            check_parse_token(body.to_string().as_bytes());
        }

        /// `Set-Cookie` values near the grammar: the cookie among others, quoted or not, with
        /// attributes and characters outside cookie-octet, some past the cap.
        #[test]
        fn generated_set_cookies_meet_the_oracle(
            values in proptest::collection::vec((
                prop_oneof![3 => Just(SESSION_COOKIE.to_owned()), 1 => "[a-z-]{1,16}".prop_map(|s| s)],
                proptest::collection::vec(prop_oneof![
                    6 => "[!#-+\\--:<-\\[\\]-~]{1,16}",
                    1 => "[ \"\\\\,\t\u{0}\u{7f}é]",
                    1 => "[\"\\\\,]",
                ], 0..4),
                any::<bool>(),
                proptest::option::weighted(0.2, MAX_SESSION_ID_LEN - 2..MAX_SESSION_ID_LEN + 2),
                "(; Path=/| ; HttpOnly|; Secure){0,2}",
            ), 1..3),
        ) {
            let mut lines = Vec::new();
            for (name, value, quoted, long, attrs) in values {
                let mut v = value.concat();
                if let Some(n) = long {
                    v = format!("{v}{}", "x".repeat(n.saturating_sub(v.len())));
                }
                let v = if quoted { format!("\"{v}\"") } else { v };
                lines.push(format!("{name}={v}{attrs}"));
            }
            check_parse_set_cookie(lines.join("\n").as_bytes());
        }

        /// KBS error bodies with kind and detail holding control characters, multi-byte
        /// characters at the cap's edge and text past the caps.
        #[test]
        fn generated_error_bodies_meet_the_oracle(
            kind in proptest::collection::vec(prop_oneof![
                4 => "[a-z_-]{1,40}", 1 => "[\u{0}-\u{1f}\u{7f}-\u{9f}]", 1 => "[é€😀]{1,40}",
            ], 0..8),
            detail in proptest::collection::vec(prop_oneof![
                4 => ".{1,200}", 1 => "[\u{0}-\u{1f}\u{7f}-\u{9f}]", 1 => "[é€😀]{1,80}",
            ], 0..8),
            kbs in any::<bool>(),
            status in 100u16..600,
        ) {
            let prefix = if kbs { ERROR_TYPE_PREFIX } else { "about:" };
            let body = serde_json::json!({
                "type": format!("{prefix}{}", kind.concat()),
                "detail": detail.concat(),
            });
            check_parse_error(Step::Resource, status, body.to_string().as_bytes());
        }

        #[test]
        fn valid_paths_round_trip(segs in proptest::collection::vec("[A-Za-z0-9_-][A-Za-z0-9_.-]{0,20}", 3), v in proptest::option::of(1u64..)) {
            let text = match v { Some(v) => format!("{}?version={v}", segs.join("/")), None => segs.join("/") };
            let r = ResourcePath::parse(&text).unwrap();
            prop_assert_eq!(r.path(), segs.join("/"));
            prop_assert_eq!(r.version(), v);
            prop_assert_eq!(r.request_target(), format!("/kbs/v0/resource/{text}"));
        }
    }
}
