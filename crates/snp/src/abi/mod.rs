//! Byte layouts of SEV-SNP evidence: parsing and serialization, no crypto.
//!
//! What lives here, one module per layout:
//!
//! - [`report`]: the 0x4A0-byte `ATTESTATION_REPORT` (AMD SEV-SNP Firmware ABI specification
//!   56860, Table "ATTESTATION_REPORT Structure"), described once as [`RawReport`].
//! - [`tcb`]: `TCB_VERSION` and the product (Milan, Genoa, Turin) that decides its byte order.
//! - [`cert_table`]: the extended-report certificate table (GHCB specification 56421,
//!   `SNP_GUEST_REQUEST` / `MSG_REPORT_REQ` certificate table).
//! - [`hcl`]: the Azure paravisor (HCL) report that wraps an SNP report and its runtime data.
//! - [`evidence`]: telling which of the above a file holds.
//!
//! Nothing here checks a signature, a chain or a policy: those belong to `verify`. Parsing
//! rejects only what makes a structure unreadable (wrong length, unknown report version,
//! certificate-table offsets outside the input, ...). Values a verifier must judge (signature
//! algorithm, reserved bytes, policy bits) are kept as they are.
//!
//! Untrusted bytes are read through zerocopy views and checked splits; no function here
//! indexes untrusted data, panics on it, or allocates more than the input's length.

pub mod cert_table;
pub mod evidence;
pub mod hcl;
pub mod report;
pub mod tcb;

pub use cert_table::{CertKind, CertTable, CertTableEntry, Guid, trim_padding};
pub use evidence::SnpEvidence;
pub use hcl::{HclHashType, HclReport};
pub use report::{
    AttestationReport, Cpuid, EcdsaSignature, FirmwareVersion, GuestPolicy, PlatformInfo,
    RawReport, SignatureAlgo, SignerInfo, SigningKey,
};
pub use tcb::{Product, TcbParts, TcbVersion};

/// Size in bytes of an `ATTESTATION_REPORT` (every report version so far).
pub const REPORT_SIZE: usize = 0x4A0;

/// Length of the signed part of the report: every byte before `SIGNATURE`.
pub const SIGNED_LEN: usize = core::mem::offset_of!(RawReport, signature);

const _: () = assert!(SIGNED_LEN == 0x2A0);

/// Why bytes could not be read as SEV-SNP evidence.
///
/// Each variant names the structure and the field at fault. None of them says anything about
/// authenticity: that is `verify`'s job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A structure has a fixed size and the input has another (a truncated or padded report,
    /// a 1185-byte file, ...).
    #[error("{what}: expected {expected} bytes, got {actual}")]
    Length {
        /// The structure or field.
        what: &'static str,
        /// The size the layout requires.
        expected: usize,
        /// The size found.
        actual: usize,
    },
    /// The input ends before a structure or a field it declares is complete.
    #[error("{what}: needs at least {needed} bytes, only {actual} available")]
    Truncated {
        /// The structure or field.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        actual: usize,
    },
    /// The input is larger than this parser accepts (a bound against resource exhaustion).
    #[error("{what}: at most {max} bytes accepted, got {actual}")]
    TooLarge {
        /// The structure.
        what: &'static str,
        /// The limit.
        max: usize,
        /// The size found.
        actual: usize,
    },
    /// `ATTESTATION_REPORT.VERSION` is not 2, 3, 4 or 5: the layout is unknown, so no field
    /// can be trusted to be where this parser looks.
    #[error("ATTESTATION_REPORT.VERSION {0} is not supported (2, 3, 4 and 5 are)")]
    UnsupportedVersion(u32),
    /// A product name (`milan`, `Genoa`, ...) was not recognised.
    #[error("unknown SEV-SNP product name {0:?} (known: Milan, Genoa, Turin)")]
    UnknownProduct(String),
    /// The certificate table has no all-zero terminating entry within the input.
    #[error("certificate table: no all-zero terminator entry")]
    CertTableUnterminated,
    /// The certificate table has more entries than this parser accepts.
    #[error("certificate table: more than {max} entries")]
    CertTableTooManyEntries {
        /// The limit.
        max: usize,
    },
    /// A certificate-table entry has an all-zero GUID but a non-zero offset or length.
    #[error("certificate table entry {index}: all-zero GUID in a non-terminator entry")]
    CertTableNullGuid {
        /// Index of the entry.
        index: usize,
    },
    /// A certificate-table entry's `[offset, offset + length)` is not inside the input.
    #[error(
        "certificate table entry {index}: offset {offset} + length {length} is outside the \
         {table_len}-byte table"
    )]
    CertTableEntryOutOfRange {
        /// Index of the entry.
        index: usize,
        /// The entry's `offset` field.
        offset: u32,
        /// The entry's `length` field.
        length: u32,
        /// Length of the whole table input.
        table_len: usize,
    },
    /// A certificate-table entry's data starts inside the entry array itself.
    #[error(
        "certificate table entry {index}: offset {offset} points into the {header_len}-byte \
         entry array"
    )]
    CertTableEntryOverlapsHeader {
        /// Index of the entry.
        index: usize,
        /// The entry's `offset` field.
        offset: u32,
        /// Length of the entry array including its terminator.
        header_len: usize,
    },
    /// Two certificate-table entries' data ranges overlap.
    #[error("certificate table entries {first} and {second}: data ranges overlap")]
    CertTableEntriesOverlap {
        /// Index of the earlier entry.
        first: usize,
        /// Index of the later entry.
        second: usize,
    },
    /// Two certificate-table entries carry the same GUID.
    #[error("certificate table: GUID {0} appears more than once")]
    CertTableDuplicateGuid(Guid),
    /// The HCL report does not start with the `HCLA` signature.
    #[error("HCL report: signature {0:02x?} is not \"HCLA\"")]
    HclSignature([u8; 4]),
    /// The HCL report's IGVM request data says the hardware report is not an SNP report
    /// (2); a TDX HCL report (4) carries a TD report instead.
    #[error("HCL report: IGVM request report_type {0} is not 2 (SEV-SNP)")]
    HclReportType(u32),
    /// The HCL report's IGVM request `data_size` disagrees with `variable_data_size`.
    #[error(
        "HCL report: IGVM request data_size {data_size} != {fixed} + variable_data_size \
         {variable_data_size}"
    )]
    HclDataSize {
        /// The `data_size` field.
        data_size: u32,
        /// Size of the fixed IGVM request fields.
        fixed: usize,
        /// The `variable_data_size` field.
        variable_data_size: u32,
    },
}

impl ParseError {
    /// The field or structure that could not be read (`ATTESTATION_REPORT.VERSION`, the
    /// certificate table, ...).
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::Length { what, .. }
            | Self::Truncated { what, .. }
            | Self::TooLarge { what, .. } => what,
            Self::UnsupportedVersion(_) => "ATTESTATION_REPORT.VERSION",
            Self::UnknownProduct(_) => "product",
            Self::HclSignature(_) | Self::HclReportType(_) | Self::HclDataSize { .. } => {
                "HCL report"
            }
            _ => "certificate table",
        }
    }
}

/// Lower-case hex rendering of bytes for `Debug` and `Display` output.
pub(crate) struct HexBytes<'a>(pub(crate) &'a [u8]);

impl core::fmt::Display for HexBytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl core::fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

// The functions below are fuzz harnesses: the `fuzz/` targets are three-line shims over them.
// A failed assertion is the finding a fuzzer reports, so they may panic, unlike the parsers.

/// Fuzz harness: `AttestationReport::from_bytes`, and on success the serialization is the
/// input and parses back to the same value.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_report(data: &[u8]) {
    if let Ok(report) = AttestationReport::from_bytes(data) {
        assert_eq!(report.as_bytes(), data);
        assert_eq!(report.signed_bytes().len(), SIGNED_LEN);
        let again = AttestationReport::from_bytes(report.as_bytes());
        assert_eq!(again.as_ref(), Ok(&report));
        let _ = format!("{report:?}");
    }
}

/// Fuzz harness: `CertTable::parse`, and on success `to_bytes` parses back to the same table.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_cert_table(data: &[u8]) {
    if let Ok(table) = CertTable::parse(data) {
        let bytes = table.to_bytes();
        assert_eq!(CertTable::parse(&bytes).as_ref(), Ok(&table));
        for entry in &table.entries {
            assert_eq!(table.get(entry.kind()), Some(entry.data.as_slice()));
        }
    }
}

/// Fuzz harness: `HclReport::parse`, and on success `to_bytes` parses back to the same value.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_hcl(data: &[u8]) {
    if let Ok(hcl) = HclReport::parse(data) {
        assert!(HclReport::is_hcl(data));
        let bytes = hcl.to_bytes();
        assert_eq!(HclReport::parse(&bytes).as_ref(), Ok(&hcl));
    }
}

/// Fuzz harness: `SnpEvidence::parse`, and on success the re-serialized evidence parses back
/// to the same value; then [`tsm_agrees_with_parse`] on the same bytes.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_evidence(data: &[u8]) {
    if let Ok(evidence) = SnpEvidence::parse(data) {
        let bytes = evidence.to_bytes();
        assert_eq!(SnpEvidence::parse(&bytes).as_ref(), Ok(&evidence));
    }
    tsm_agrees_with_parse(data);
}

/// Oracle (fuzz harness and tests): `data` split at [`REPORT_SIZE`] into a configfs-tsm
/// `outblob` and `auxblob` reads as the file form reads `data` joined. An HCL report (which
/// only the file form reads) is never a TSM report: its `"HCLA"` is no report version. For
/// other input: with a non-empty `auxblob`, `from_tsm(out, Some(aux))` is exactly
/// `parse(data)` (value or error, the report checked first); with an empty one (`data` is a
/// bare report) it is that report with an empty certificate table; `from_tsm(out, None)` is
/// `parse(out)`; input shorter than a report is refused by both with the same error.
#[doc(hidden)]
#[allow(clippy::panic)] // oracle: an assertion failure is the finding
pub fn tsm_agrees_with_parse(data: &[u8]) {
    let hcl = HclReport::is_hcl(data);
    let Some((out, aux)) = data.split_at_checked(REPORT_SIZE) else {
        let none = SnpEvidence::from_tsm(data, None);
        assert!(none.is_err());
        assert_eq!(SnpEvidence::from_tsm(data, Some(&[])), none);
        if !hcl {
            assert_eq!(SnpEvidence::parse(data), none);
        }
        return;
    };
    let tsm = SnpEvidence::from_tsm(out, Some(aux));
    if hcl {
        assert!(tsm.is_err(), "an HCL report read as a TSM report");
        assert!(SnpEvidence::from_tsm(out, None).is_err());
        return;
    }
    let file = SnpEvidence::parse(data);
    if aux.is_empty() {
        let bare = file.map(|e| match e {
            SnpEvidence::Report(report) => SnpEvidence::Extended {
                report,
                certs: CertTable::default(),
            },
            other => panic!("{REPORT_SIZE} bytes read as {other:?}"),
        });
        assert_eq!(tsm, bare);
    } else {
        assert_eq!(tsm, file);
    }
    assert_eq!(SnpEvidence::from_tsm(out, None), SnpEvidence::parse(out));
}
