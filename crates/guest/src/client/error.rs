//! The client's one error type: every failure names the protocol step and the check or field.
//!
//! No variant ever carries a secret, a token, a session id, a key or response bytes: broker
//! answers are reduced to their status, error `type` name and public `detail`, and malformed
//! responses to the name of the field that was wrong.

use core::fmt;

/// The protocol step a failure happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// `POST /kbs/v0/auth` (Request → Challenge).
    Auth,
    /// `POST /kbs/v0/attest` (Attestation → token).
    Attest,
    /// `GET /kbs/v0/resource/...`.
    Resource,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Auth => "auth",
            Step::Attest => "attest",
            Step::Resource => "resource",
        })
    }
}

/// Why a KBS exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The base URL is not `http(s)://host[:port][/prefix]`, or it has a query or fragment.
    #[error("base URL: {reason}")]
    InvalidBaseUrl {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Plain `http://` to a host that is not loopback, without
    /// [`ClientOptions::dangerous_plain_http`](crate::client::ClientOptions::dangerous_plain_http).
    #[error("base URL: plain http is allowed only to loopback (use https)")]
    PlainHttpRefused,
    /// The pinned CA PEM holds no certificate or a malformed one.
    #[error("CA PEM: {reason}")]
    InvalidCaPem {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The TEE name is empty, too long or not `[A-Za-z0-9_-]`.
    #[error("tee name: must be 1..=64 characters of [A-Za-z0-9_-]")]
    InvalidTee,
    /// The resource is not `repo/type/tag[?version=N]` with valid segments.
    #[error("resource path: {reason}")]
    InvalidResourcePath {
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Generating the ephemeral TEE key or a crypto primitive failed locally.
    #[error("crypto: {what} failed")]
    Crypto {
        /// The operation.
        what: &'static str,
    },
    /// The caller's evidence callback failed.
    #[error("evidence: {reason}")]
    Evidence {
        /// The callback's reason.
        reason: String,
    },
    /// The request could not be sent or the answer not received (connection, TLS, timeout).
    #[error("{step}: transport: {error}")]
    Transport {
        /// The step.
        step: Step,
        /// The HTTP client's error (it carries the URL, never a body). In the message, not
        /// also a source: an error chain printed whole would say it twice.
        error: Box<ureq::Error>,
    },
    /// The broker answered a non-200 status with a KBS error body.
    #[error("{step}: broker answered {status} {kind}: {detail}")]
    Broker {
        /// The step.
        step: Step,
        /// The HTTP status.
        status: u16,
        /// The error `type` name after `.../kbs/errors/` (for example `PolicyDeny`).
        kind: String,
        /// The broker's public `detail` text (control characters removed, at most 512 bytes).
        detail: String,
    },
    /// The broker answered a non-200 status without a parsable KBS error body.
    #[error("{step}: broker answered status {status} without a KBS error body")]
    Status {
        /// The step.
        step: Step,
        /// The HTTP status.
        status: u16,
    },
    /// The answer's body is larger than the step's cap.
    #[error("{step}: response larger than {limit} bytes")]
    ResponseTooLarge {
        /// The step.
        step: Step,
        /// The cap in bytes.
        limit: usize,
    },
    /// The 200 answer does not have the shape PROTOCOL.md gives; `field` names what is wrong.
    #[error("{step}: malformed response: {field}")]
    MalformedResponse {
        /// The step.
        step: Step,
        /// The field or check.
        field: &'static str,
    },
    /// The challenge selected a hash algorithm this client does not implement.
    #[error("auth: selected-hash-algorithm {name:?} is not supported")]
    UnsupportedHash {
        /// The algorithm name as the broker sent it (at most 32 bytes).
        name: String,
    },
    /// The resource JWE is malformed or not what this client's key can open; `check` names it.
    #[error("resource JWE: {check}")]
    Jwe {
        /// The field or check.
        check: &'static str,
    },
    /// The resource JWE did not decrypt (wrong key, tampered header, key, IV, ciphertext or tag).
    /// Deliberately says nothing more.
    #[error("resource JWE: decryption failed")]
    DecryptFailed,
}

impl ClientError {
    /// The HTTP status of a broker answer, if this error is one.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Broker { status, .. } | ClientError::Status { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The KBS error `type` name of a broker answer (for example `PolicyDeny`), if any.
    #[must_use]
    pub fn kind(&self) -> Option<&str> {
        match self {
            ClientError::Broker { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// Whether the handshake is worth retrying after this error: transport failures and the
    /// statuses 401, 408, 429 and 5xx. Local errors, 400, 403, 404, 413 and malformed answers
    /// are final.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            _ => matches!(self.status(), Some(401 | 408 | 429 | 500..=599)),
        }
    }
}
