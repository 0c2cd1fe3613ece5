//! Intel's TCB status names, as they appear in TCB info and enclave identity levels.

use core::fmt;
use core::str::FromStr;

use super::CollateralError;
use super::error::quote;

/// The status Intel assigns to a TCB level (Intel PCS API, TCB info `tcbLevels[].tcbStatus`;
/// enclave identities use `UpToDate`, `OutOfDate` and `Revoked`).
///
/// Ordered by declaration, which is not a severity order for the combined statuses: combining
/// statuses follows Intel's convergence rules, not `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcbStatus {
    /// The TCB level is current.
    UpToDate,
    /// Current, but software mitigations for the listed advisories are needed.
    SwHardeningNeeded,
    /// Current, but the platform configuration needs a change (e.g. disable hyper-threading).
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSwHardeningNeeded,
    /// A newer TCB level exists: the platform or enclave must be updated.
    OutOfDate,
    /// Out of date, and the configuration needs a change.
    OutOfDateConfigurationNeeded,
    /// The TCB level is revoked: never trust it.
    Revoked,
}

impl TcbStatus {
    /// Every status, in declaration order.
    pub const ALL: [Self; 7] = [
        Self::UpToDate,
        Self::SwHardeningNeeded,
        Self::ConfigurationNeeded,
        Self::ConfigurationAndSwHardeningNeeded,
        Self::OutOfDate,
        Self::OutOfDateConfigurationNeeded,
        Self::Revoked,
    ];

    /// Intel's exact name (`"SWHardeningNeeded"`, ...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "UpToDate",
            Self::SwHardeningNeeded => "SWHardeningNeeded",
            Self::ConfigurationNeeded => "ConfigurationNeeded",
            Self::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            Self::OutOfDate => "OutOfDate",
            Self::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            Self::Revoked => "Revoked",
        }
    }

    /// Read Intel's name of a status (exact, case-sensitive).
    ///
    /// # Errors
    /// [`CollateralError::UnknownStatus`] (item `tcb_status`) naming the string when it is not one
    /// of the seven names.
    pub fn parse(s: &str) -> Result<Self, CollateralError> {
        Self::parse_in("tcb_status", s)
    }

    pub(crate) fn parse_in(item: &'static str, s: &str) -> Result<Self, CollateralError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| CollateralError::UnknownStatus {
                item,
                status: quote(s),
            })
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TcbStatus {
    type Err = CollateralError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for TcbStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for TcbStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_seven_names_round_trip() {
        let names = [
            "UpToDate",
            "SWHardeningNeeded",
            "ConfigurationNeeded",
            "ConfigurationAndSWHardeningNeeded",
            "OutOfDate",
            "OutOfDateConfigurationNeeded",
            "Revoked",
        ];
        for (status, name) in TcbStatus::ALL.into_iter().zip(names) {
            assert_eq!(status.as_str(), name);
            assert_eq!(status.to_string(), name);
            assert_eq!(TcbStatus::parse(name), Ok(status));
            assert_eq!(name.parse::<TcbStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<TcbStatus>(&json).unwrap(), status);
        }
    }

    #[test]
    fn unknown_names_are_rejected_and_named() {
        for bad in [
            "",
            "uptodate",
            "SwHardeningNeeded",
            "UpToDate ",
            "TCBLevelNotSupported",
        ] {
            let err = TcbStatus::parse(bad).unwrap_err();
            assert_eq!(
                err,
                CollateralError::UnknownStatus {
                    item: "tcb_status",
                    status: bad.to_owned()
                }
            );
        }
        assert!(serde_json::from_str::<TcbStatus>("\"Fine\"").is_err());
        let long = "A".repeat(100_000);
        // Truncated: the message stays short however long the input (the list of valid names
        // adds a fixed 160 bytes or so).
        assert!(TcbStatus::parse(&long).unwrap_err().to_string().len() < 400);
    }

    #[test]
    fn order_is_declaration_order() {
        let mut sorted = TcbStatus::ALL;
        sorted.reverse();
        sorted.sort();
        assert_eq!(sorted, TcbStatus::ALL);
        assert!(TcbStatus::UpToDate < TcbStatus::Revoked);
    }
}
