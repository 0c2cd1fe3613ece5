//! The crate's one error type: which step failed (source, response, cache, bundle) and on what.

use tessera_pki::UnixTime;

/// What went wrong while fetching, caching, bundling or assembling collateral.
///
/// Messages name the item (its cache key) and the field or step, and never carry an API key
/// or a whole response body. The parser messages that `Response::detail` and `Format::detail`
/// wrap (serde_json's, the certificate and CRL parsers') can quote a short fragment of a
/// received body or file (an unexpected value, a field name) as it was, control characters
/// included: a caller that prints them to a terminal escapes them (the CLI does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollateralError {
    /// A base URL is not `http://` or `https://` followed by a host, or carries a query.
    #[error("source: base URL {url:?} {detail}")]
    BaseUrl {
        /// The URL as given (truncated).
        url: String,
        /// What is wrong with it.
        detail: &'static str,
    },
    /// An item cannot be asked for as given (wrong hwID length, missing FMC SPL on Turin, a
    /// masked CHIP_ID, a VLEK...).
    #[error("item: {field}: {detail}")]
    Item {
        /// The field of the request.
        field: &'static str,
        /// Why it cannot be asked for.
        detail: String,
    },
    /// A PCS subscription key is empty, or not one word of printable ASCII (a key file of
    /// two lines, a control character).
    #[error("PCS subscription key: {detail}")]
    ApiKey {
        /// What is wrong with it (never the key).
        detail: &'static str,
    },
    /// The transport failed (connection, TLS, timeout, body too large).
    #[error("{key}: transport: {detail}")]
    Transport {
        /// The item's cache key.
        key: String,
        /// What the client reported.
        detail: String,
    },
    /// The service answered 429 Too Many Requests; no request is sent for this source before
    /// `retry_at`.
    #[error("{key}: rate limited by the service until {retry_at}")]
    RateLimited {
        /// The item's cache key.
        key: String,
        /// When the service said to try again (Retry-After), capped by the configuration.
        retry_at: UnixTime,
    },
    /// The service answered with a status other than 200 (404: it has no such item).
    #[error("{key}: HTTP status {status}{}", error_code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        /// The item's cache key.
        key: String,
        /// The HTTP status.
        status: u16,
        /// Intel's `Error-Code` header, when present (sanitised, truncated).
        error_code: Option<String>,
    },
    /// The response (or a stored copy of it) is not what was asked for, or does not parse.
    #[error("{key}: response: {field}: {detail}")]
    Response {
        /// The item's cache key.
        key: String,
        /// The header, body part or field that is wrong.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The item was already past its validity (notAfter, nextUpdate) when it arrived or was
    /// imported: it is not stored.
    #[error("{key}: expired: {field} {valid_until} is not after {now}")]
    Expired {
        /// The item's cache key.
        key: String,
        /// The field that bounds its validity.
        field: &'static str,
        /// The end of its validity.
        valid_until: UnixTime,
        /// The time it was checked at.
        now: UnixTime,
    },
    /// Offline, and the cache or bundle does not hold the item.
    #[error("{key}: not in the cache or bundle (offline: nothing is fetched)")]
    NotCached {
        /// The item's cache key.
        key: String,
    },
    /// A cache or bundle file could not be read or written.
    #[error("{path}: {detail}")]
    Io {
        /// The file or directory.
        path: String,
        /// The operating system's message.
        detail: String,
    },
    /// A stored entry, manifest or bundle file is malformed.
    #[error("{path}: {detail}")]
    Format {
        /// The file (or bundle entry).
        path: String,
        /// What is malformed.
        detail: String,
    },
    /// Evidence from which the items to fetch are read is malformed.
    #[error("evidence: {detail}")]
    Evidence {
        /// What could not be read.
        detail: String,
    },
    /// The verifier refused the item (a signature that does not chain to the verifier's
    /// roots, a certificate not valid): it is not kept, and (with a fetcher) not fetched again
    /// for the retry-after-failure wait.
    #[error("{key}: refused by the verifier ({reason}); not kept")]
    Refused {
        /// The item's cache key.
        key: String,
        /// The verifier's reason.
        reason: String,
    },
    /// The cached items do not form verifier inputs (the TDX collateral loader refused them).
    #[error("assembling collateral: {detail}")]
    Assemble {
        /// The loader's error.
        detail: String,
    },
}

impl CollateralError {
    pub(crate) fn io(path: &std::path::Path, e: &std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    }

    pub(crate) fn response(key: &str, field: &'static str, detail: impl Into<String>) -> Self {
        Self::Response {
            key: key.to_owned(),
            field,
            detail: detail.into(),
        }
    }
}

/// `text` cut to `max` characters, control characters replaced: for values from a server that
/// end up in messages.
pub(crate) fn sanitise(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    /// As the type's documentation says: a parser's message quotes what was received as it
    /// was (here a bundle entry's item kind, an escape sequence), so callers escape it.
    #[test]
    fn parser_messages_can_quote_what_was_received() {
        let bundle = br#"{"format": "tessera-collateral-bundle/1", "created": "x",
            "entries": [{"item": {"kind": "\u001b[2J"}}]}"#;
        let e = crate::bundle::unpack(bundle, "b").unwrap_err();
        assert!(e.to_string().contains("\u{1b}[2J"), "{e}");
    }
}
