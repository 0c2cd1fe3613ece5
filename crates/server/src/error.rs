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
        let reason = one_line(&reason.to_string());
        match public {
            PublicError::Internal | PublicError::Unavailable => {
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

/// `text` with its control characters (line breaks included) written as escapes.
fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasons_are_one_line() {
        assert_eq!(super::one_line("plain"), "plain");
        assert_eq!(
            super::one_line("TOML parse error\n1 | x\r\u{1b}[2J"),
            "TOML parse error\\n1 | x\\r\\u{1b}[2J"
        );
    }
}
