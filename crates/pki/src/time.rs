//! Verification time: seconds since the Unix epoch, always given by the caller.

use core::fmt;

/// A point in time, in whole seconds since 1970-01-01T00:00:00Z (UTC).
///
/// Verification never reads the clock; callers pass the time they trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(i64);

impl UnixTime {
    /// The time `secs` seconds after the epoch.
    #[must_use]
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    #[must_use]
    pub const fn as_secs(self) -> i64 {
        self.0
    }

    /// Parse an RFC 3339 timestamp such as `2024-06-26T08:24:40Z`.
    ///
    /// # Errors
    /// [`crate::PkiError::Time`] when `s` is not RFC 3339.
    pub fn parse_rfc3339(s: &str) -> Result<Self, crate::PkiError> {
        let t = ::time::OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339)
            .map_err(|_| crate::PkiError::Time {
                value: s.chars().take(64).collect(),
            })?;
        Ok(Self(t.unix_timestamp()))
    }

    /// The current system time. For callers (CLIs, servers) only: nothing in verification calls it.
    #[must_use]
    pub fn now() -> Self {
        Self(::time::OffsetDateTime::now_utc().unix_timestamp())
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ::time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| {
                t.format(&::time::format_description::well_known::Rfc3339)
                    .ok()
            }) {
            Some(s) => f.write_str(&s),
            None => write!(f, "@{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = UnixTime::parse_rfc3339("2024-06-26T08:24:40Z").unwrap();
        assert_eq!(t.as_secs(), 1_719_390_280);
        assert_eq!(t.to_string(), "2024-06-26T08:24:40Z");
        assert!(UnixTime::parse_rfc3339("yesterday").is_err());
        assert!(UnixTime::parse_rfc3339("2024-06-26").is_err());
    }
}
