//! Turning the broker's errors into HTTP answers: the fixed public body, the status, and one log
//! line with the full reason (which never reaches the client).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_broker::protocol::PublicError;

/// An answer that failed: the public words and, for the log, the reason.
#[derive(Debug)]
pub struct ApiError {
    public: PublicError,
}

impl ApiError {
    /// An error with only public words (the reason was already logged, or there is none).
    pub fn public(public: PublicError) -> Self {
        Self { public }
    }

    /// Logs `reason` at the level the public error deserves and keeps only the public words.
    pub fn logged(public: PublicError, endpoint: &str, reason: &dyn std::fmt::Display) -> Self {
        // A reason can quote what a client sent (a policy's line in a TOML error): control
        // characters are written escaped, so that it stays one log line and forges none.
        let reason = tessera::text::escape_controls(&reason.to_string(), false);
        match public {
            PublicError::Internal
            | PublicError::Unavailable
            | PublicError::AuditEntryDamaged { .. } => {
                tracing::error!(endpoint, error = %public.name(), reason = %reason, "request failed");
            }
            _ => {
                tracing::info!(endpoint, error = %public.name(), reason = %reason, "request refused");
            }
        }
        Self { public }
    }

    /// The public error.
    pub fn kind(&self) -> PublicError {
        self.public
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.public.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.public.body()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasons_are_one_line() {
        assert_eq!(tessera::text::escape_controls("plain", false), "plain");
        assert_eq!(
            tessera::text::escape_controls("TOML parse error\n1 | x\r\u{1b}[2J", false),
            "TOML parse error\\n1 | x\\r\\u{1b}[2J"
        );
    }
}
