//! The KBS 0.4.0 wire messages: request bodies decoded strictly and within bounds, resource paths,
//! and the fixed public error vocabulary that every non-200 answer carries.
//!
//! The shapes follow guest-components' `kbs_protocol` and the `kbs-types` crate 0.18 (what guests
//! really send), as written down in the project's protocol notes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

use crate::seal::SecretValue;

/// The only protocol version the broker speaks.
pub const PROTOCOL_VERSION: &str = "0.4.0";

/// Largest `/attest` body (TDX evidence with an event log can exceed 2 MiB).
pub const MAX_ATTEST_BODY: usize = 8 * 1024 * 1024;

/// Largest body of every other request (auth, admin uploads are bounded separately).
pub const MAX_SMALL_BODY: usize = 64 * 1024;

/// A TEE named by the guest in `/auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TeeName {
    /// AMD SEV-SNP.
    Snp,
    /// Intel TDX.
    Tdx,
    /// Intel SGX.
    Sgx,
}

impl TeeName {
    /// The name as the protocol spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snp => "snp",
            Self::Tdx => "tdx",
            Self::Sgx => "sgx",
        }
    }

    /// The TEE named by `s` (`snp`, `tdx`, `sgx`).
    pub fn from_wire(s: &str) -> Option<Self> {
        match s {
            "snp" => Some(Self::Snp),
            "tdx" => Some(Self::Tdx),
            "sgx" => Some(Self::Sgx),
            _ => None,
        }
    }
}

impl std::fmt::Display for TeeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request, in the words the broker may say in public.
///
/// Every variant maps to one HTTP status, one error type name and one fixed `detail` text; the
/// full reason (which check, which field) goes to the audit log and the server log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicError {
    /// The request body is not a well-formed request of this endpoint.
    InvalidRequest,
    /// The guest asked for another protocol version.
    ProtocolVersion,
    /// The guest named a TEE the broker does not verify.
    UnsupportedTee,
    /// No session, an expired session, or a challenge already used.
    UnknownSession,
    /// The evidence did not verify or is not bound to the challenge.
    AttestationFailed,
    /// The bearer token is not the broker's, or has expired.
    TokenInvalid,
    /// Neither a session cookie nor a bearer token came with a resource request.
    UnAuthenticated,
    /// The resource's policy denied the request.
    PolicyDeny,
    /// No such resource (or version).
    ResourceNotFound,
    /// The body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// The body did not arrive within the request deadline.
    RequestTimeout,
    /// An admin request without valid credentials.
    AdminUnauthorized,
    /// An admin credential that does not reach this repository or operation.
    AdminForbidden,
    /// The store is unreachable; the request may be retried.
    Unavailable,
    /// Anything else: nothing more is said.
    Internal,
    /// An audit entry does not read as one (its row was changed in the broker's database): the
    /// answer names it by its sequence number, which is not secret, so that `tessera audit
    /// verify` can name it too; which column is damaged goes to the server log only.
    AuditEntryDamaged {
        /// The entry.
        seq: u64,
    },
}

impl PublicError {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::ProtocolVersion
            | Self::UnsupportedTee
            | Self::UnknownSession
            | Self::AttestationFailed
            | Self::TokenInvalid
            | Self::UnAuthenticated
            | Self::AdminUnauthorized => 401,
            Self::PolicyDeny | Self::AdminForbidden => 403,
            Self::ResourceNotFound => 404,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::Unavailable => 503,
            Self::Internal | Self::AuditEntryDamaged { .. } => 500,
        }
    }

    /// The error name in the `type` URL.
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidRequest => "InvalidRequest",
            Self::ProtocolVersion => "ProtocolVersion",
            Self::UnsupportedTee => "UnsupportedTee",
            Self::UnknownSession => "InvalidSession",
            Self::AttestationFailed => "AttestationFailed",
            Self::TokenInvalid => "TokenInvalid",
            Self::UnAuthenticated => "UnAuthenticated",
            Self::PolicyDeny => "PolicyDeny",
            Self::ResourceNotFound => "ResourceNotFound",
            Self::PayloadTooLarge => "PayloadTooLarge",
            Self::RequestTimeout => "RequestTimeout",
            Self::AdminUnauthorized => "AdminUnauthorized",
            Self::AdminForbidden => "AdminForbidden",
            Self::Unavailable => "Unavailable",
            Self::Internal => "InternalError",
            Self::AuditEntryDamaged { .. } => "AuditEntryDamaged",
        }
    }

    /// The fixed public `detail` text.
    pub fn detail(self) -> &'static str {
        match self {
            Self::InvalidRequest => "the request is malformed",
            Self::ProtocolVersion => "unsupported protocol version: this broker speaks KBS 0.4.0",
            Self::UnsupportedTee => "unsupported TEE: this broker verifies snp, tdx and sgx",
            Self::UnknownSession => "no valid session: repeat the handshake",
            Self::AttestationFailed => "attestation failed: the evidence was not accepted",
            Self::TokenInvalid => "the token is invalid or expired",
            Self::UnAuthenticated => "a session cookie or a bearer token is required",
            Self::PolicyDeny => "the resource policy denied the request",
            Self::ResourceNotFound => "no such resource",
            Self::PayloadTooLarge => "the request body is too large",
            Self::RequestTimeout => "the request body arrived too slowly",
            Self::AdminUnauthorized => "admin credentials are missing or invalid",
            Self::AdminForbidden => "the admin credential does not cover this request",
            Self::Unavailable => "the broker is temporarily unavailable: retry",
            Self::Internal => "internal error",
            Self::AuditEntryDamaged { .. } => {
                "an audit entry was changed in the broker's database: it does not read as an entry"
            }
        }
    }

    /// The JSON body of the answer (with `seq`, the entry, for
    /// [`PublicError::AuditEntryDamaged`]).
    pub fn body(self) -> String {
        let mut body = serde_json::json!({
            "type": format!(
                "https://github.com/confidential-containers/kbs/errors/{}",
                self.name()
            ),
            "detail": self.detail(),
        });
        if let (Self::AuditEntryDamaged { seq }, Some(members)) = (self, body.as_object_mut()) {
            members.insert("seq".into(), seq.into());
        }
        body.to_string()
    }
}

/// Why a request body was refused (for logs; the guest sees [`PublicError::InvalidRequest`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not JSON of the expected shape.
    #[error("{endpoint} body: {reason}")]
    Malformed {
        /// The endpoint whose body it was.
        endpoint: &'static str,
        /// What serde said (never includes the body).
        reason: String,
    },
    /// The body is larger than the endpoint allows.
    #[error("{endpoint} body: {len} bytes, more than {max}")]
    TooLarge {
        /// The endpoint.
        endpoint: &'static str,
        /// Bytes received.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("{endpoint} body: field `{field}`: {reason}")]
    Field {
        /// The endpoint.
        endpoint: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `version` is not 0.4.0.
    #[error("auth body: version {0:?} is not {PROTOCOL_VERSION}")]
    Version(String),
    /// `tee` names a TEE the broker does not verify.
    #[error("auth body: tee {0:?} is not snp, tdx or sgx")]
    Tee(String),
}

impl RequestError {
    /// What the guest is told.
    pub fn public(&self) -> PublicError {
        match self {
            Self::Version(_) => PublicError::ProtocolVersion,
            Self::Tee(_) => PublicError::UnsupportedTee,
            Self::TooLarge { .. } => PublicError::PayloadTooLarge,
            Self::Malformed { .. } | Self::Field { .. } => PublicError::InvalidRequest,
        }
    }
}

fn decode<'a, T: Deserialize<'a>>(
    endpoint: &'static str,
    body: &'a [u8],
    max: usize,
) -> Result<T, RequestError> {
    if body.len() > max {
        return Err(RequestError::TooLarge {
            endpoint,
            len: body.len(),
            max,
        });
    }
    serde_json::from_slice(body).map_err(|e| RequestError::Malformed {
        endpoint,
        reason: bounded_reason(&e),
    })
}

/// Most characters of serde_json's message a [`RequestError::Malformed`] keeps.
const MAX_REASON_CHARS: usize = 96;

/// serde_json's message, cut to [`MAX_REASON_CHARS`] characters, then its position. The
/// message may quote the value it refused (`invalid type: string "..."`), which the guest
/// chose and which may be megabytes long: the reason is logged, so it is bounded (serde
/// escapes what it quotes, so no line break gets through).
fn bounded_reason(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let position = if e.line() == 0 {
        String::new()
    } else {
        format!(" at line {} column {}", e.line(), e.column())
    };
    let message = full.strip_suffix(position.as_str()).unwrap_or(&full);
    let mut cut: String = message.chars().take(MAX_REASON_CHARS).collect();
    if message.chars().nth(MAX_REASON_CHARS).is_some() {
        cut.push_str("...");
    }
    cut + &position
}

#[derive(Deserialize)]
struct AuthWire {
    version: String,
    tee: String,
    #[serde(rename = "extra-params", default)]
    extra_params: Value,
}

/// `POST /kbs/v0/auth`: the guest's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The TEE the guest says it is.
    pub tee: TeeName,
    /// Hash algorithms the guest offers for the binding (`supported-hash-algorithms`); empty
    /// when it named none (the guest then uses SHA-384).
    pub supported_hashes: Vec<String>,
}

impl AuthRequest {
    /// Decodes an `/auth` body.
    ///
    /// # Errors
    /// A body over [`MAX_SMALL_BODY`], not JSON of the right shape, another protocol version, or an
    /// unknown TEE.
    pub fn decode(body: &[u8]) -> Result<Self, RequestError> {
        let wire: AuthWire = decode("auth", body, MAX_SMALL_BODY)?;
        if wire.version != PROTOCOL_VERSION {
            return Err(RequestError::Version(truncate(&wire.version)));
        }
        let tee =
            TeeName::from_wire(&wire.tee).ok_or_else(|| RequestError::Tee(truncate(&wire.tee)))?;
        let mut supported_hashes = Vec::new();
        if let Some(list) = wire
            .extra_params
            .get("supported-hash-algorithms")
            .and_then(Value::as_array)
        {
            for name in list.iter().filter_map(Value::as_str).take(16) {
                supported_hashes.push(name.to_ascii_lowercase());
            }
        }
        Ok(Self {
            tee,
            supported_hashes,
        })
    }
}

/// Keeps at most 32 characters of a guest-chosen string for a log line.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

/// Init data sent with `/attest`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct InitData {
    /// The format; only `toml` is accepted.
    pub format: String,
    /// The raw TOML text.
    pub body: String,
}

/// `runtime-data` of `/attest`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RuntimeData {
    /// The nonce of the challenge, as issued (standard base64).
    pub nonce: String,
    /// The TEE's public key (a JWK), exactly as sent: the binding hashes its canonical form.
    /// At most [`MAX_TEE_PUBKEY_TEXT`] bytes of JSON.
    #[serde(rename = "tee-pubkey", deserialize_with = "tee_pubkey_json")]
    pub tee_pubkey: Value,
}

/// Most bytes of JSON text a `tee-pubkey` may take (an RSA-8192 JWK takes under 3 KiB).
pub const MAX_TEE_PUBKEY_TEXT: usize = 64 * 1024;

/// Most bytes of JSON text an `additional_evidence` that is not a string may take. A parsed
/// JSON array or object takes many times its text in memory (`[0,0,..]`: 16 bytes of tree per
/// byte of text), so an 8 MiB body made of one would hold over 100 MiB while it waits for the
/// store; a string (what Confidential Containers guests send) takes its length once, and is
/// bounded with the evidence by [`MAX_SESSION_EVIDENCE`].
pub const MAX_ADDITIONAL_EVIDENCE_TREE: usize = 256 * 1024;

/// Most bytes of evidence (its text, in compact form when it has one) and additional
/// evidence together that an attested session's record keeps: larger evidence is refused at
/// `/attest`. Real evidence is tens of KiB (a TDX quote with a long event log, hundreds).
pub const MAX_SESSION_EVIDENCE: usize = 2 * 1024 * 1024;

pub use tessera::MAX_EVIDENCE_JSON_VALUES;
pub use tessera::compact::json_values_at_most;

/// The JSON value at hand, parsed only when its text is at most `max` bytes (or, with
/// `strings_exempt`, is a string).
fn bounded_json<'de, D: serde::Deserializer<'de>>(
    d: D,
    max: usize,
    strings_exempt: bool,
    what: &str,
) -> Result<Value, D::Error> {
    let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
    let text = raw.get();
    if text.len() > max && !(strings_exempt && text.starts_with('"')) {
        return Err(serde::de::Error::custom(format_args!(
            "{what}: {} bytes of JSON, at most {max}",
            text.len()
        )));
    }
    serde_json::from_str(text).map_err(serde::de::Error::custom)
}

fn tee_pubkey_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    bounded_json(d, MAX_TEE_PUBKEY_TEXT, false, "tee-pubkey")
}

fn additional_evidence_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    bounded_json(d, MAX_ADDITIONAL_EVIDENCE_TREE, true, "additional_evidence")
}

/// `tee-evidence` of `/attest`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompositeEvidence {
    /// The TEE's evidence JSON (SNP report JSON or TDX quote JSON), as its text: as sent, or,
    /// from [`AttestRequest::decode_compacted`] when it says so, already in its compact form
    /// ([`tessera::compact::encode_text`] of the text as sent). The broker decodes the evidence
    /// from the compact form ([`tessera::Evidence::from_kbs_compact`]) and keeps that in the
    /// session record.
    pub primary_evidence: Box<serde_json::value::RawValue>,
    /// Device evidence; bound through the runtime data but not verified by Tessera. A string
    /// (bounded with the evidence by [`MAX_SESSION_EVIDENCE`], at `/attest`), or other JSON of
    /// at most [`MAX_ADDITIONAL_EVIDENCE_TREE`] bytes of text.
    #[serde(default, deserialize_with = "additional_evidence_json")]
    pub additional_evidence: Value,
}

/// `POST /kbs/v0/attest`: the guest's evidence and runtime data.
#[derive(Debug, Clone, Deserialize)]
pub struct AttestRequest {
    /// Optional init data whose digest the evidence must carry.
    #[serde(rename = "init-data", default)]
    pub init_data: Option<InitData>,
    /// The nonce and TEE key the evidence binds.
    #[serde(rename = "runtime-data")]
    pub runtime_data: RuntimeData,
    /// The evidence.
    #[serde(rename = "tee-evidence")]
    pub tee_evidence: CompositeEvidence,
}

impl AttestRequest {
    /// Decodes an `/attest` body.
    ///
    /// # Errors
    /// A body over [`MAX_ATTEST_BODY`], or not JSON of the right shape, or a non-`toml` init data.
    pub fn decode(body: &[u8]) -> Result<Self, RequestError> {
        Self::checked(decode("attest", body, MAX_ATTEST_BODY)?)
    }

    /// [`Self::decode`], reading the evidence's byte arrays once: the whole body is put in
    /// compact form first ([`tessera::compact::encode_text`]) and decoded from that, so the
    /// thousands of numbers of an SEV-SNP certificate chain are read by the encoder alone, not
    /// also skipped over by the JSON parser. With `true`, `primary_evidence` holds the compact
    /// form of the evidence as sent, and every other member is what [`Self::decode`] gives.
    /// With `false` (the body cannot be put in compact form, or a member other than the
    /// evidence held a byte array the encoder rewrote), it is [`Self::decode`]'s result.
    ///
    /// # Errors
    /// As [`Self::decode`].
    pub fn decode_compacted(body: &[u8]) -> Result<(Self, bool), RequestError> {
        if body.len() <= MAX_ATTEST_BODY
            && let Ok(text) = std::str::from_utf8(body)
            && let Some(compact) = tessera::compact::encode_text(text)
            && compact.len() < text.len()
            && let Ok(req) = Self::decode(compact.as_bytes())
            && !tessera::compact::holds_run(&req.runtime_data.tee_pubkey)
            && !tessera::compact::holds_run(&req.tee_evidence.additional_evidence)
        {
            return Ok((req, true));
        }
        Self::decode(body).map(|req| (req, false))
    }

    fn checked(req: Self) -> Result<Self, RequestError> {
        if let Some(init) = &req.init_data
            && init.format != "toml"
        {
            return Err(RequestError::Field {
                endpoint: "attest",
                field: "init-data.format",
                reason: "only \"toml\" is accepted",
            });
        }
        if !req.runtime_data.tee_pubkey.is_object() {
            return Err(RequestError::Field {
                endpoint: "attest",
                field: "runtime-data.tee-pubkey",
                reason: "not a JSON object",
            });
        }
        Ok(req)
    }

    /// The `additional-evidence` string the binding covers (a string on the wire; anything else
    /// is bound through its JSON text, as the guest serialises it).
    pub fn additional_evidence(&self) -> String {
        match &self.tee_evidence.additional_evidence {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// A resource query's `version` member that is not a positive number.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("resource query: version must be a positive integer")]
pub struct VersionError;

/// The version a resource query pins (`version=N`), if any. Other members are ignored (a
/// client may add its own), but never one that reads as a second or misspelt pin: `version`
/// twice, or written in another case or percent-encoded (`Version=1`, `%76ersion=1`), or
/// without a value, is refused rather than answered with the newest version.
///
/// # Errors
/// `version` present but not a positive integer, given twice, or spelt otherwise.
pub fn pinned_version(query: Option<&str>) -> Result<Option<u32>, VersionError> {
    let Some(query) = query else { return Ok(None) };
    let mut pinned = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !names_version(key) {
            continue;
        }
        if key != "version" || pinned.is_some() {
            return Err(VersionError);
        }
        match value.parse::<u32>() {
            Ok(n) if n > 0 && !value.starts_with('+') => pinned = Some(n),
            _ => return Err(VersionError),
        }
    }
    Ok(pinned)
}

/// Whether a query key reads as `version` once percent escapes are decoded and case is
/// ignored (a key of any other length is not read further).
fn names_version(key: &str) -> bool {
    const WORD: &[u8] = b"version";
    key.len() <= WORD.len() * 3 && percent_decoded(key).eq_ignore_ascii_case(WORD)
}

/// `text` with its `%XX` escapes decoded, leniently (as URL parameters are read by the
/// servers and drivers that read them: a malformed escape stays as it is).
#[must_use]
pub fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    decoded
}

/// The version an admin delete names: none for no query (or an empty one), `Some(N)` for
/// exactly `version=N`. Any other query is refused rather than ignored, since ignoring it
/// would delete every version (`?versions=3`, `?Version=3` and `?version=3&x` are errors).
///
/// # Errors
/// Any query other than nothing or a single positive `version=N`.
pub fn delete_version(query: Option<&str>) -> Result<Option<u32>, VersionError> {
    match query {
        None | Some("") => Ok(None),
        Some(q) => match q
            .strip_prefix("version=")
            .filter(|v| !v.starts_with('+'))
            .map(str::parse::<u32>)
        {
            Some(Ok(n)) if n > 0 => Ok(Some(n)),
            _ => Err(VersionError),
        },
    }
}

/// Largest secret the broker generates on request.
pub const MAX_GENERATED_LEN: usize = 4096;

/// What an admin put body asks to store.
pub enum PutSecret {
    /// The secret given, decoded from its base64 (`value`).
    Value(SecretValue),
    /// A secret of this many random bytes, 1..=[`MAX_GENERATED_LEN`] (`generate`).
    Generate(usize),
}

/// An admin put body (`PUT /kbs/v0/resource/...`): `{"policy"?, "value" | "generate"}`.
pub struct PutBody {
    /// The policy text to store with the secret, unchecked, if the body names one.
    pub policy: Option<String>,
    /// The secret, or how much of one to generate.
    pub secret: PutSecret,
}

/// Why an admin put body is refused: a fixed text naming the member at fault, never quoting
/// the body (a wrongly typed `value` may be the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PutBodyError(pub String);

/// Decodes an admin put body: JSON with no members but `policy`, `value` (standard base64,
/// surrounding blanks ignored) and `generate` (1..=[`MAX_GENERATED_LEN`]), exactly one of the
/// last two.
///
/// # Errors
/// [`PutBodyError`] for a body that is not such JSON, a `value` that is not base64, a
/// `generate` out of range, or both or neither of `value` and `generate`.
pub fn decode_put(body: &[u8]) -> Result<PutBody, PutBodyError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Put {
        #[serde(default)]
        policy: Option<String>,
        #[serde(default)]
        value: Option<String>,
        #[serde(default)]
        generate: Option<usize>,
    }
    // Not serde's message: for a value of the wrong type it quotes the value, which may be
    // the secret.
    let put: Put = serde_json::from_slice(body).map_err(|e| {
        PutBodyError(format!(
            "body: not a put request ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    // The base64 of the secret, overwritten when dropped.
    let b64 = put.value.map(zeroize::Zeroizing::new);
    let secret = match (b64, put.generate) {
        (Some(b64), None) => PutSecret::Value(SecretValue::new(
            STANDARD
                .decode(b64.trim())
                .map_err(|_| PutBodyError("value: not standard base64".into()))?,
        )),
        (None, Some(n)) if (1..=MAX_GENERATED_LEN).contains(&n) => PutSecret::Generate(n),
        (None, Some(_)) => {
            return Err(PutBodyError(format!(
                "generate: must be 1..={MAX_GENERATED_LEN} bytes"
            )));
        }
        _ => {
            return Err(PutBodyError(
                "give exactly one of value and generate".into(),
            ));
        }
    };
    Ok(PutBody {
        policy: put.policy,
        secret,
    })
}

/// [`decode_put`] is sound on `body`: an accepted body is JSON with exactly one of `value`
/// and `generate`, `generate` in range, `value` decoding to the bytes returned, and the
/// policy as given; a refusal is one of the fixed texts and never quotes the `value` text.
///
/// An oracle, not a decoder: only the fuzz harness [`fuzz_requests`] and the tests call it.
#[doc(hidden)]
#[allow(clippy::panic, clippy::expect_used)] // oracle: a failed check is the finding
pub fn put_decodes_soundly(body: &[u8]) {
    let tree = serde_json::from_slice::<Value>(body).ok();
    let member = |name: &str| {
        tree.as_ref()
            .and_then(|t| t.get(name))
            .filter(|v| !v.is_null())
    };
    match decode_put(body) {
        Ok(put) => {
            assert!(tree.as_ref().is_some_and(Value::is_object));
            assert_eq!(
                put.policy.as_deref(),
                member("policy").map(|p| p.as_str().expect("policy is text"))
            );
            match put.secret {
                PutSecret::Value(value) => {
                    assert!(member("generate").is_none());
                    let text = member("value").and_then(Value::as_str).expect("value text");
                    let bytes = STANDARD.decode(text.trim()).expect("value is base64");
                    assert_eq!(value.expose(), bytes.as_slice());
                }
                PutSecret::Generate(n) => {
                    assert!(member("value").is_none());
                    assert!((1..=MAX_GENERATED_LEN).contains(&n));
                    let given = member("generate").and_then(Value::as_u64);
                    assert_eq!(given, u64::try_from(n).ok());
                }
            }
        }
        Err(PutBodyError(message)) => {
            let fixed = [
                "value: not standard base64".to_owned(),
                format!("generate: must be 1..={MAX_GENERATED_LEN} bytes"),
                "give exactly one of value and generate".to_owned(),
            ];
            let serde_message = message
                .strip_prefix("body: not a put request (")
                .and_then(|m| m.strip_suffix(')'))
                .is_some_and(|m| m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' '));
            assert!(fixed.contains(&message) || serde_message, "{message}");
            // A value text with a character no fixed text holds cannot be in one by chance.
            if let Some(text) = member("value").and_then(Value::as_str)
                && text
                    .chars()
                    .any(|c| !(c.is_ascii_alphanumeric() || " :.=()".contains(c)))
            {
                assert!(!message.contains(text), "{message} quotes the value");
            }
        }
    }
}

/// Fuzz harness: every decoder of this module, and the session cookie's, on arbitrary bytes
/// must return, never panic; the admin put body's decoder must be sound
/// ([`put_decodes_soundly`]).
#[doc(hidden)]
#[allow(clippy::panic)]
pub fn fuzz_requests(data: &[u8]) {
    let _ = AuthRequest::decode(data);
    if let Ok(req) = AttestRequest::decode(data) {
        let _ = req.additional_evidence();
    }
    compacted_agrees(data);
    put_decodes_soundly(data);
    if let Ok(s) = std::str::from_utf8(data) {
        // The value count bounds what a parse makes (an oracle: the assertion is the finding).
        if let Ok(v) = serde_json::from_str::<Value>(s) {
            assert!(!json_values_at_most(s, json_nodes(&v) - 1));
        }
        // The session cookie, and the challenge it carries: whatever it says, a challenge read
        // from it holds what it was read from.
        if let Some(id) = crate::store::SessionId::parse(s)
            && let Some(ch) = crate::store::Challenge::from_session(&id)
        {
            assert_eq!(ch.session_id.as_str(), s);
            assert_eq!(
                ch.expires_ms,
                ch.issued_ms.saturating_add(crate::store::CHALLENGE_TTL_MS)
            );
        }
        let (path, query) = s.split_once('?').map_or((s, None), |(p, q)| (p, Some(q)));
        let _ = crate::resource::ResourcePath::parse(path);
        let _ = pinned_version(query);
        let _ = delete_version(query);
        // An audit anchor (`tessera audit verify --anchor`): what parses writes back the same.
        if let Ok(a) = s.parse::<crate::audit::AuditAnchor>() {
            assert_eq!(a.to_string(), s);
        }
    }
}

/// Values and object keys in `v` (for the fuzz harness's check of [`json_values_at_most`]).
fn json_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(json_nodes).sum(),
        Value::Object(map) => map.values().map(|v| 1 + json_nodes(v)).sum(),
        _ => 0,
    }
}

/// [`AttestRequest::decode_compacted`] agrees with [`AttestRequest::decode`] on `body`: both
/// accept it or both refuse it; every member but the evidence is the same; the evidence is the
/// same text, or, when compacted, the compact form of the same text.
///
/// An oracle, not a decoder: only the fuzz harness [`fuzz_requests`] and the tests call it,
/// and its panic is the finding they look for; no request path reaches it.
#[allow(clippy::panic)]
fn compacted_agrees(body: &[u8]) {
    match (
        AttestRequest::decode(body),
        AttestRequest::decode_compacted(body),
    ) {
        (Ok(plain), Ok((fused, compacted))) => {
            assert_eq!(plain.runtime_data, fused.runtime_data);
            assert_eq!(plain.init_data, fused.init_data);
            assert_eq!(
                plain.tee_evidence.additional_evidence,
                fused.tee_evidence.additional_evidence
            );
            let sent = plain.tee_evidence.primary_evidence.get();
            let got = fused.tee_evidence.primary_evidence.get();
            if compacted {
                assert_eq!(tessera::compact::encode_text(sent).as_deref(), Some(got));
            } else {
                assert_eq!(sent, got);
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("decode: {:?}, decode_compacted: {:?}", a.is_ok(), b.is_ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn auth_request_as_guests_send_it() {
        let body = br#"{"version":"0.4.0","tee":"snp","extra-params":{"supported-hash-algorithms":["sha256","sha384","sha512","sm3"]}}"#;
        let req = AuthRequest::decode(body).unwrap();
        assert_eq!(req.tee, TeeName::Snp);
        assert_eq!(req.supported_hashes, ["sha256", "sha384", "sha512", "sm3"]);
        // extra-params may be a string (older guests) or absent.
        let req =
            AuthRequest::decode(br#"{"version":"0.4.0","tee":"tdx","extra-params":""}"#).unwrap();
        assert_eq!(req.tee, TeeName::Tdx);
        assert!(req.supported_hashes.is_empty());
    }

    #[test]
    fn auth_request_rejects_other_versions_and_tees() {
        let e = AuthRequest::decode(br#"{"version":"0.1.1","tee":"snp","extra-params":""}"#)
            .unwrap_err();
        assert_eq!(e.public(), PublicError::ProtocolVersion);
        assert_eq!(e.public().status(), 401);
        let e = AuthRequest::decode(br#"{"version":"0.4.0","tee":"sample","extra-params":""}"#)
            .unwrap_err();
        assert_eq!(e.public(), PublicError::UnsupportedTee);
        let e = AuthRequest::decode(b"not json").unwrap_err();
        assert_eq!(e.public(), PublicError::InvalidRequest);
        let big = vec![b' '; MAX_SMALL_BODY + 1];
        assert_eq!(
            AuthRequest::decode(&big).unwrap_err().public(),
            PublicError::PayloadTooLarge
        );
    }

    #[test]
    fn attest_request_as_guests_send_it() {
        let body = br#"{"init-data":{"format":"toml","body":"algorithm = \"sha384\"\nversion = \"0.1.0\"\n"},
            "runtime-data":{"nonce":"AAAA","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"x","y":"y"}},
            "tee-evidence":{"primary_evidence":{"quote":"AA==","cc_eventlog":null},"additional_evidence":""}}"#;
        let req = AttestRequest::decode(body).unwrap();
        assert_eq!(req.runtime_data.nonce, "AAAA");
        assert_eq!(req.init_data.as_ref().unwrap().format, "toml");
        assert_eq!(req.additional_evidence(), "");
    }

    #[test]
    fn attest_request_refusals() {
        let json_init = br#"{"init-data":{"format":"json","body":"{}"},"runtime-data":{"nonce":"A","tee-pubkey":{}},"tee-evidence":{"primary_evidence":{}}}"#;
        assert!(matches!(
            AttestRequest::decode(json_init),
            Err(RequestError::Field {
                field: "init-data.format",
                ..
            })
        ));
        let key_not_object = br#"{"runtime-data":{"nonce":"A","tee-pubkey":"k"},"tee-evidence":{"primary_evidence":{}}}"#;
        assert!(matches!(
            AttestRequest::decode(key_not_object),
            Err(RequestError::Field {
                field: "runtime-data.tee-pubkey",
                ..
            })
        ));
        let no_runtime = br#"{"tee-evidence":{"primary_evidence":{}}}"#;
        assert!(matches!(
            AttestRequest::decode(no_runtime),
            Err(RequestError::Malformed { .. })
        ));
        // A refused value is quoted by serde_json: the reason (which is logged) keeps a short
        // prefix of it and the position, not the whole of it.
        let long = format!(r#"{{"runtime-data": "{}"}}"#, "A".repeat(100_000));
        let Err(RequestError::Malformed { reason, .. }) = AttestRequest::decode(long.as_bytes())
        else {
            panic!("accepted");
        };
        assert!(reason.len() < 160, "{reason}");
        assert!(reason.starts_with("invalid type: string \"AAA"), "{reason}");
        assert!(reason.ends_with("... at line 1 column 100019"), "{reason}");
        let Err(RequestError::Malformed { reason, .. }) = AuthRequest::decode(b"{") else {
            panic!("accepted");
        };
        assert_eq!(reason, "EOF while parsing an object at line 1 column 1");
    }

    /// JSON trees that would take many times their text in memory are bounded; a string of
    /// additional evidence (what guests send) is not.
    #[test]
    fn attest_json_trees_are_bounded() {
        let key = r#"{"kty":"EC","crv":"P-256","x":"x","y":"y"}"#;
        let zeros = |n: usize| format!("[{}0]", "0,".repeat(n));
        let tree = zeros(MAX_ADDITIONAL_EVIDENCE_TREE / 2);
        assert!(tree.len() > MAX_ADDITIONAL_EVIDENCE_TREE);
        let refused = body(r#"{"quote":"AA=="}"#, key, &tree);
        assert!(matches!(
            AttestRequest::decode(refused.as_bytes()),
            Err(RequestError::Malformed { .. })
        ));
        assert!(AttestRequest::decode_compacted(refused.as_bytes()).is_err());
        let fits = zeros(MAX_ADDITIONAL_EVIDENCE_TREE / 2 - 8);
        assert!(fits.len() <= MAX_ADDITIONAL_EVIDENCE_TREE);
        let req =
            AttestRequest::decode(body(r#"{"quote":"AA=="}"#, key, &fits).as_bytes()).unwrap();
        assert!(req.tee_evidence.additional_evidence.is_array());
        let long = format!("\"{}\"", "a".repeat(2 * MAX_ADDITIONAL_EVIDENCE_TREE));
        let req =
            AttestRequest::decode(body(r#"{"quote":"AA=="}"#, key, &long).as_bytes()).unwrap();
        assert_eq!(
            req.additional_evidence().len(),
            2 * MAX_ADDITIONAL_EVIDENCE_TREE
        );
        let padded = format!(
            r#"{{"kty":"EC","crv":"P-256","x":"x","y":"y","pad":"{}"}}"#,
            "p".repeat(MAX_TEE_PUBKEY_TEXT)
        );
        assert!(matches!(
            AttestRequest::decode(body(r#"{"quote":"AA=="}"#, &padded, "\"\"").as_bytes()),
            Err(RequestError::Malformed { .. })
        ));
    }

    #[test]
    fn pinned_versions() {
        assert_eq!(pinned_version(Some("version=3")), Ok(Some(3)));
        assert_eq!(pinned_version(Some("foo=1&version=2")), Ok(Some(2)));
        assert_eq!(pinned_version(Some("version=0")), Err(VersionError));
        assert_eq!(pinned_version(Some("version=x")), Err(VersionError));
        assert_eq!(pinned_version(None), Ok(None));
        assert_eq!(pinned_version(Some("other=1")), Ok(None));
        assert_eq!(pinned_version(Some("versions=1&x")), Ok(None));
        // A second or misspelt pin is refused, not answered with the newest version.
        for bad in [
            "version=1&version=2",
            "version=1&version=1",
            "Version=1",
            "VERSION=1",
            "%76ersion=1",
            "%56ERSION=1",
            "version",
            "version=",
            "x=1&Version=2",
            "version=+1",
            "version=1&%76ersion=2",
        ] {
            assert_eq!(pinned_version(Some(bad)), Err(VersionError), "{bad}");
        }
        assert_eq!(delete_version(None), Ok(None));
        assert_eq!(delete_version(Some("")), Ok(None));
        assert_eq!(delete_version(Some("version=7")), Ok(Some(7)));
        for bad in [
            "other=1",
            "versions=1",
            "Version=1",
            "%76ersion=1",
            "version=1&x=2",
            "x&version=1",
            "version=0",
            "version=",
            "version=-1",
            "version=+1",
            "version=4294967296",
        ] {
            assert_eq!(delete_version(Some(bad)), Err(VersionError), "{bad}");
        }
    }

    #[test]
    fn public_errors_carry_fixed_words() {
        for e in [
            PublicError::InvalidRequest,
            PublicError::AttestationFailed,
            PublicError::PolicyDeny,
            PublicError::ResourceNotFound,
            PublicError::Internal,
        ] {
            let body: Value = serde_json::from_str(&e.body()).unwrap();
            assert_eq!(
                body["type"],
                format!(
                    "https://github.com/confidential-containers/kbs/errors/{}",
                    e.name()
                )
            );
            assert_eq!(body["detail"], e.detail());
        }
        assert_eq!(PublicError::PolicyDeny.status(), 403);
        assert_eq!(PublicError::ResourceNotFound.status(), 404);
        assert_eq!(PublicError::AttestationFailed.status(), 401);
        // A damaged audit entry: the fixed words and its sequence number, nothing else.
        let damaged = PublicError::AuditEntryDamaged { seq: 7 };
        let body: Value = serde_json::from_str(&damaged.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "https://github.com/confidential-containers/kbs/errors/AuditEntryDamaged",
                "detail": damaged.detail(),
                "seq": 7,
            })
        );
        assert_eq!(damaged.status(), 500);
    }

    fn body(evidence: &str, key: &str, additional: &str) -> String {
        format!(
            r#"{{"init-data":{{"format":"toml","body":"a = [1, 2]"}},"runtime-data":{{"nonce":"AAAA","tee-pubkey":{key}}},"tee-evidence":{{"primary_evidence":{evidence},"additional_evidence":{additional}}}}}"#
        )
    }

    fn bytes(n: usize) -> String {
        let list: Vec<String> = (0..n).map(|i| (i % 256).to_string()).collect();
        format!("[{}]", list.join(", "))
    }

    #[test]
    fn the_body_is_compacted_once_and_only_where_that_is_the_same() {
        let key = r#"{"kty":"EC","crv":"P-256","x":"x","y":"y"}"#;
        let evidence = format!(
            r#"{{"report":"AA==","cert_chain":[{{"cert_type":"VCEK","data":{}}}]}}"#,
            bytes(100)
        );
        // The evidence's byte array is read once, into the compact form.
        let b = body(&evidence, key, r#""""#);
        let (req, compacted) = AttestRequest::decode_compacted(b.as_bytes()).unwrap();
        assert!(compacted);
        assert_eq!(
            Some(req.tee_evidence.primary_evidence.get()),
            tessera::compact::encode_text(&evidence).as_deref()
        );
        compacted_agrees(b.as_bytes());
        // A byte array in another member would be rewritten: the body is decoded as sent.
        for b in [
            body(&evidence, key, &bytes(40)),
            body(&evidence, key, &format!(r#"{{"device":{}}}"#, bytes(32))),
            body(
                &evidence,
                &format!(r#"{{"kty":"EC","x5c":{}}}"#, bytes(64)),
                r#""""#,
            ),
        ] {
            let (req, compacted) = AttestRequest::decode_compacted(b.as_bytes()).unwrap();
            assert!(!compacted, "{b}");
            assert_eq!(req.tee_evidence.primary_evidence.get(), evidence);
            compacted_agrees(b.as_bytes());
        }
        // Short arrays stay arrays, and a body without byte arrays is decoded once, as sent.
        let b = body(&evidence, key, &bytes(31));
        assert!(AttestRequest::decode_compacted(b.as_bytes()).unwrap().1);
        compacted_agrees(b.as_bytes());
        let plain = body(r#"{"quote":"AA=="}"#, key, r#""""#);
        assert!(!AttestRequest::decode_compacted(plain.as_bytes()).unwrap().1);
        // Text the encoder refuses (`b64`, `\u`) and refused bodies agree too.
        for b in [
            body(&evidence, key, r#""b64""#),
            body(&evidence, key, r#""\u0041""#),
            body(&evidence, r#""not an object""#, r#""""#),
            "{".to_owned(),
        ] {
            compacted_agrees(b.as_bytes());
        }
    }

    proptest! {
        /// Any bytes, as the base64 `value` of a put body (with a policy or not, blanks
        /// around the base64 or not, padded or not), decode to the same bytes; a `generate`
        /// in range is that many bytes to generate, out of range refused; and the decoder is
        /// sound on the body and on a few bytes of it changed ([`put_decodes_soundly`]).
        #[test]
        fn put_bodies_decode_to_the_bytes_encoded(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            policy in proptest::option::of("[ -~]{0,16}"),
            blanks in ("[ \t\n]{0,2}", "[ \t\n]{0,2}"),
            generate in prop_oneof![0usize..=2, 4094usize..=4098, 0usize..5000],
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..3),
        ) {
            let b64 = format!("{}{}{}", blanks.0, STANDARD.encode(&bytes), blanks.1);
            let mut members = serde_json::Map::new();
            if let Some(p) = &policy {
                members.insert("policy".into(), Value::from(p.as_str()));
            }
            let mut with_value = members.clone();
            with_value.insert("value".into(), Value::from(b64));
            let body = serde_json::to_vec(&with_value).unwrap();
            let put = decode_put(&body).unwrap();
            prop_assert_eq!(put.policy.as_ref(), policy.as_ref());
            match put.secret {
                PutSecret::Value(v) => prop_assert_eq!(v.expose(), bytes.as_slice()),
                PutSecret::Generate(_) => prop_assert!(false, "value read as generate"),
            }
            let mut with_generate = members;
            with_generate.insert("generate".into(), Value::from(generate));
            let gen_body = serde_json::to_vec(&with_generate).unwrap();
            match decode_put(&gen_body) {
                Ok(PutBody { secret: PutSecret::Generate(n), .. }) => prop_assert_eq!(n, generate),
                Ok(_) => prop_assert!(false, "generate read as value"),
                Err(e) => {
                    prop_assert!(!(1..=MAX_GENERATED_LEN).contains(&generate), "{}", e);
                }
            }
            let mut changed = body.clone();
            for (at, b) in edits {
                let i = at.index(changed.len());
                changed[i] = b;
            }
            for body in [&body, &gen_body, &changed] {
                put_decodes_soundly(body);
            }
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_requests(&data);
        }

        /// The compacting decoder agrees with the plain one on bodies with byte arrays of every
        /// length anywhere, short and long, and on arbitrary bytes (the fuzz target runs the
        /// same check).
        #[test]
        fn the_compacting_decoder_agrees(
            lens in proptest::collection::vec(0usize..80, 3),
            where_ in 0usize..4,
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let arr = |i: usize| bytes(lens[i]);
            let evidence = format!(r#"{{"a":{},"b":[{}, "s"]}}"#, arr(0), arr(1));
            let key = if where_ == 1 {
                format!(r#"{{"kty":"EC","k":{}}}"#, arr(2))
            } else {
                r#"{"kty":"EC"}"#.to_owned()
            };
            let additional = match where_ {
                2 => arr(2),
                3 => format!(r#"{{"x":[{}]}}"#, arr(2)),
                _ => r#""""#.to_owned(),
            };
            let b = body(&evidence, &key, &additional);
            compacted_agrees(b.as_bytes());
            let mut cut = b.into_bytes();
            cut.truncate(cut.len().saturating_sub(junk.len()));
            cut.extend_from_slice(&junk);
            compacted_agrees(&cut);
        }

        /// The count is an upper bound of the values and keys a parse makes: text holding N
        /// never passes with a limit below N.
        #[test]
        fn json_values_are_never_undercounted(value in json_value()) {
            let text = value.to_string();
            let made = json_nodes(&value);
            prop_assert!(!json_values_at_most(&text, made - 1), "{text}");
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            prop_assert!(!json_values_at_most(&pretty, made - 1), "{pretty}");
        }

        /// In compact form too: a run counts as the byte values it decodes to.
        #[test]
        fn compact_runs_count_as_their_bytes(lens in proptest::collection::vec(0usize..300, 1..4)) {
            let runs: Vec<Value> = lens
                .iter()
                .map(|&n| Value::Array((0..n).map(|i| Value::from(i % 256)).collect()))
                .collect();
            let value = serde_json::json!({ "a": runs });
            let compact = tessera::compact::encode_text(&value.to_string()).unwrap();
            let made = json_nodes(&value);
            prop_assert!(!json_values_at_most(&compact, made - 1), "{compact}");
        }
    }

    /// JSON values of every kind, strings holding the characters the count skips.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[\\[\\]{}:,\"\\\\a-z ]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[,:{\\[a-z\"]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn json_values_are_counted_outside_strings_only() {
        assert!(json_values_at_most("1", 1));
        assert!(json_values_at_most(
            r#"{"quote":"a,b:[{","cc_eventlog":"\",:"}"#,
            5
        ));
        assert!(!json_values_at_most(
            r#"{"quote":"a","cc_eventlog":"b"}"#,
            4
        ));
        // What an attacker would send instead of evidence: refused well before the end.
        let wide = format!("[{}[]]", "[],".repeat(MAX_EVIDENCE_JSON_VALUES));
        assert!(!json_values_at_most(&wide, MAX_EVIDENCE_JSON_VALUES));
        let deep = "[".repeat(MAX_EVIDENCE_JSON_VALUES + 1);
        assert!(!json_values_at_most(&deep, MAX_EVIDENCE_JSON_VALUES));
        // A string never ends: nothing after its quote counts, and the scan still returns.
        assert!(json_values_at_most(format!("\"{}", "[,".repeat(1000)), 1));
    }
}
