//! The errors of reading Intel collateral: each names the collateral item and the field at fault.

use tessera_pki::PkiError;

/// Why collateral (TCB info, QE identity, issuer chains, CRLs) could not be read.
///
/// `item` is one of `tcb_info`, `qe_identity`, `tcb_info_issuer_chain`,
/// `qe_identity_issuer_chain`, `pck_crl_issuer_chain`, `pck_crl`, `root_ca_crl`,
/// `collateral_bundle`, `pcs_files` or `tcb_status`; `field` is the JSON path inside the item in
/// Intel's own names (`tcbLevels[2].tcb.sgxtcbcomponents[5].svn`). Values quoted from the input
/// are truncated, so a message never reproduces a whole input.
///
/// Nothing here says anything about authenticity: signatures, chains and freshness are checked by
/// the verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollateralError {
    /// The bytes are not JSON (syntax error, trailing data, duplicate key, not UTF-8, nesting too
    /// deep). Likely cause: a truncated download or an HTML error page saved as the collateral.
    #[error("{item}: malformed JSON: {detail}")]
    Json {
        /// The collateral item.
        item: &'static str,
        /// The parser's description (position, duplicate key), truncated.
        detail: String,
    },
    /// A required collateral item is absent (no TCB info among the files, no QE identity,
    /// no issuer chain).
    #[error("{item}: missing")]
    Missing {
        /// The collateral item.
        item: &'static str,
    },
    /// A required JSON field is absent or `null`.
    #[error("{item}: field {field} is missing")]
    MissingField {
        /// The collateral item.
        item: &'static str,
        /// The JSON path of the field.
        field: String,
    },
    /// A field has the wrong JSON type, is out of range, or violates a structural rule of
    /// Intel's schema (16 components per level, `tdxModule` in TDX TCB info only, ...).
    #[error("{item}: field {field}: {detail}")]
    Field {
        /// The collateral item.
        item: &'static str,
        /// The JSON path of the field.
        field: String,
        /// What was wrong.
        detail: String,
    },
    /// A hex field does not have the exact length its schema fixes, or is not hex.
    /// Likely cause: a field from another structure (e.g. a 48-byte MRSIGNER where 32 are expected).
    #[error("{item}: field {field}: expected {expected} hex characters, got {actual}")]
    Hex {
        /// The collateral item.
        item: &'static str,
        /// The JSON path of the field.
        field: String,
        /// Hex characters required (twice the byte length).
        expected: usize,
        /// Characters found (the same as `expected` when a character is not hex).
        actual: usize,
    },
    /// The structure's `version` is not one this parser reads (TCB info 2 or 3, enclave
    /// identity 2).
    #[error("{item}: version {version} is not supported (supported: {supported})")]
    UnsupportedVersion {
        /// The collateral item.
        item: &'static str,
        /// The version found.
        version: u64,
        /// The versions accepted.
        supported: &'static str,
    },
    /// The `id` names no known structure (TCB info `SGX`/`TDX`, identity `QE`/`QVE`/`TD_QE`),
    /// or does not fit the version (`TDX` needs TCB info version 3).
    #[error("{item}: id {id:?} is not supported ({detail})")]
    UnknownId {
        /// The collateral item.
        item: &'static str,
        /// The id found (truncated).
        id: String,
        /// What was expected.
        detail: &'static str,
    },
    /// `tcbType` is not 0, the only TCB type Intel defines.
    #[error("tcb_info: tcbType {tcb_type} is not supported (only 0)")]
    UnsupportedTcbType {
        /// The value found.
        tcb_type: u64,
    },
    /// A `tcbStatus` string is not one of Intel's seven statuses.
    #[error(
        "{item}: unknown TCB status {status:?} (Intel's statuses: UpToDate, SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked)"
    )]
    UnknownStatus {
        /// The collateral item.
        item: &'static str,
        /// The status found (truncated).
        status: String,
    },
    /// An input exceeds a size or count bound (a guard against resource exhaustion).
    #[error("{item}: {what} too large ({actual} > {limit})")]
    TooLarge {
        /// The collateral item.
        item: &'static str,
        /// What was counted (`bytes`, `tcbLevels`, ...).
        what: &'static str,
        /// The bound.
        limit: usize,
        /// The value seen.
        actual: usize,
    },
    /// A certificate chain or CRL could not be parsed.
    #[error("{item}: {source}")]
    Pki {
        /// The collateral item.
        item: &'static str,
        /// What the PKI layer found.
        #[source]
        source: PkiError,
    },
    /// A file given to [`super::Collateral::from_pcs_files`] is none of the PCS formats
    /// (TCB info JSON, enclave identity JSON, collateral bundle, certificates, CRLs).
    #[error("{name}: not recognised as collateral ({detail})")]
    UnrecognisedFile {
        /// The file name.
        name: String,
        /// Why it was not recognised.
        detail: String,
    },
    /// Two files supply different values for the same collateral item (two TCB infos, two
    /// root CA CRLs, a platform and a processor PCK CRL, ...).
    #[error("{item}: supplied twice with different contents ({first} and {second})")]
    Conflict {
        /// The collateral item.
        item: &'static str,
        /// The first file.
        first: String,
        /// The second file.
        second: String,
    },
    /// A file given to [`super::Collateral::from_pcs_files`] was recognised but is malformed.
    #[error("{name}: {source}")]
    InFile {
        /// The file name.
        name: String,
        /// What was wrong with it.
        #[source]
        source: Box<CollateralError>,
    },
}

/// At most this many characters of an input value are quoted in an error.
const QUOTE_LIMIT: usize = 64;
/// At most this many characters of a parser message are kept.
const DETAIL_LIMIT: usize = 200;

/// `s` cut to [`QUOTE_LIMIT`] characters (with an ellipsis when cut), for quoting input in errors.
pub(crate) fn quote(s: &str) -> String {
    truncate(s, QUOTE_LIMIT)
}

/// A parser message cut to [`DETAIL_LIMIT`] characters.
pub(crate) fn detail(s: &str) -> String {
    truncate(s, DETAIL_LIMIT)
}

fn truncate(s: &str, limit: usize) -> String {
    let mut chars = s.chars();
    let mut out: String = chars.by_ref().take(limit).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

impl CollateralError {
    pub(crate) fn pki(item: &'static str) -> impl FnOnce(PkiError) -> Self {
        move |source| Self::Pki { item, source }
    }

    pub(crate) fn in_file(name: &str) -> impl FnOnce(Self) -> Self {
        let name = quote(name);
        move |source| Self::InFile {
            name,
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_truncated() {
        let long = "x".repeat(10_000);
        assert_eq!(quote(&long).chars().count(), QUOTE_LIMIT + 1);
        assert_eq!(quote("short"), "short");
        let e = CollateralError::UnknownStatus {
            item: "tcb_info",
            status: quote(&long),
        };
        let text = e.to_string();
        assert!(text.len() < 400, "{text}");
        // The message lists every status the parser accepts.
        for status in super::super::TcbStatus::ALL {
            assert!(text.contains(status.as_str()), "{status} missing: {text}");
        }
    }
}
