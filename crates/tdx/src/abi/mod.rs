//! Byte layouts of Intel DCAP quotes (SGX and TDX): parsing and serialization, no crypto.
//!
//! Specification: Intel "TDX DCAP Quote Generation Library and Quote Verification Library API"
//! (appendix "Quote Format": A.3 version 4, A.4 version 5) and Intel "SGX ECDSA Quote Library
//! API" (appendix "Quote Format", version 3), cross-checked against Intel's headers
//! `sgx_quote_3.h`, `sgx_quote_4.h` and `sgx_quote_5.h` and the real quotes under
//! `shared/vectors/{tdx,sgx}`. One module per layout:
//!
//! - [`quote`]: the 48-byte [`QuoteHeader`], the version framing (v3, v4, v5 body descriptor)
//!   and [`Quote`] itself.
//! - [`body`]: the report bodies, SGX [`EnclaveReport`] (384 bytes), [`TdReport10`] (584),
//!   [`TdReport15`] (648) and [`TdReport15Ex`] (885), and [`QuoteBody`].
//! - [`signature`]: the ECDSA-P256 signature data, QE report certification data (type 6) and
//!   the PCK certificate chain it nests (type 5).
//!
//! Nothing here checks a signature, a chain, the QE vendor id or a policy: `verify` does.
//! Parsing rejects what makes a quote unreadable or ambiguous: unknown versions, attestation
//! key types, TEE types and body types (their layouts are unknown), sizes that disagree with
//! each other, truncation, and non-zero bytes after the signature data.
//!
//! Untrusted bytes are read through a bounds-checked `Reader` and zerocopy views; no
//! function here indexes untrusted data, panics on it, or allocates more than its length.

pub mod body;
pub mod quote;
pub mod signature;

pub use body::{
    EnclaveReport, QuoteBody, SgxAttributes, TdAttributes, TdReport10, TdReport15, TdReport15Ex,
    Xfam,
};
pub use quote::{Quote, QuoteHeader};
pub use signature::{QeCertificationData, QuoteSignatureData};

use core::fmt;

/// `Attestation Key Type` 2: ECDSA-256-with-P-256 curve, the only type whose signature data
/// layout this crate reads (the specification also names 3, ECDSA-384-with-P-384, as not
/// supported by Intel's Quoting Enclave).
pub const ATTESTATION_KEY_TYPE_ECDSA_P256: u16 = 2;

/// `QE Vendor ID` of Intel's Quoting Enclave, `939A7233-F79C-4CA9-940A-0DB3957F0607`.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9, 0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07,
];

/// Certification data type 5: the PCK certificate chain, PEM, leaf first.
pub const CERTIFICATION_DATA_PCK_CHAIN: u16 = 5;
/// Certification data type 6: QE report certification data (QE report, its PCK signature,
/// QE authentication data and nested certification data).
pub const CERTIFICATION_DATA_QE_REPORT: u16 = 6;

/// The header's `TEE Type`: an integer newtype so an unknown value is kept in errors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TeeType(pub u32);

impl TeeType {
    /// `0x00000000`: SGX.
    pub const SGX: Self = Self(0);
    /// `0x00000081`: TDX.
    pub const TDX: Self = Self(0x81);
}

impl fmt::Display for TeeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SGX => write!(f, "SGX ({:#04x})", self.0),
            Self::TDX => write!(f, "TDX ({:#04x})", self.0),
            Self(other) => write!(f, "{other:#x}"),
        }
    }
}

/// Why bytes could not be read as a DCAP quote (or one of its parts).
///
/// Each variant names the structure and field at fault. None of them says anything about
/// authenticity: that is `verify`'s job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A fixed-size structure was handed another number of bytes (e.g. an enclave report
    /// that is not 384 bytes).
    #[error("{what}: expected {expected} bytes, got {actual}")]
    Length {
        /// The structure.
        what: &'static str,
        /// The size the layout requires.
        expected: usize,
        /// The size found.
        actual: usize,
    },
    /// The input ends before a field, or before the data a length field declares (a cut
    /// quote, or a length field overwritten with garbage).
    #[error("{what}: needs {needed} bytes, only {available} available")]
    Truncated {
        /// The structure or field being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left in the input (or in the enclosing structure).
        available: usize,
    },
    /// A nested structure's size field disagrees with the room its container gives it: the
    /// type-6 certification data must end exactly where the signature data ends, and the
    /// nested type-5 data exactly where the type-6 data ends.
    #[error("{what}: declares {declared} bytes but its container holds {available}")]
    SizeMismatch {
        /// The structure whose size field is wrong.
        what: &'static str,
        /// The size it declares.
        declared: usize,
        /// The bytes its container holds for it.
        available: usize,
    },
    /// A value is too large to be encoded in its length field (only when building a quote).
    #[error("{what}: at most {max} bytes can be encoded, got {actual}")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// The largest encodable size.
        max: usize,
        /// The size given.
        actual: usize,
    },
    /// Header `Version` is not 3, 4 or 5: the layout is unknown.
    #[error("quote header: version {0} is not supported (3, 4 and 5 are)")]
    UnsupportedVersion(u16),
    /// Header `Attestation Key Type` is not 2 (ECDSA P-256): the signature data layout
    /// depends on it, so nothing after the body can be read.
    #[error("quote header: attestation key type {0} is not supported (2, ECDSA P-256, is)")]
    UnsupportedAttestationKeyType(u16),
    /// Header `TEE Type` is neither SGX (0x00) nor TDX (0x81).
    #[error("quote header: TEE type {0:#x} is not supported (0x00 SGX, 0x81 TDX)")]
    UnsupportedTeeType(u32),
    /// A v5 `Quote Body Type` other than 1 (SGX), 2 (TD 1.0), 3 (TD 1.5) or 4 (TD 1.5ex).
    #[error("quote body descriptor: body type {0} is not supported (1 to 4 are)")]
    UnsupportedBodyType(u16),
    /// A v5 `Size` that is not the size of the declared body type.
    #[error("quote body descriptor: body type {body_type} is {expected} bytes, size says {actual}")]
    BodySize {
        /// The declared body type.
        body_type: u16,
        /// That type's size.
        expected: usize,
        /// The `Size` field.
        actual: u32,
    },
    /// The header's TEE type disagrees with the body (an SGX header over a TD report, a TDX
    /// header over an enclave report, or a v3 quote, which is SGX only, with a TDX header).
    #[error("quote version {version}: TEE type {tee_type} does not match body type {body_type}")]
    TeeTypeMismatch {
        /// Header `Version`.
        version: u16,
        /// Header `TEE Type`.
        tee_type: TeeType,
        /// The body type (1 SGX, 2 TD 1.0, 3 TD 1.5, 4 TD 1.5ex).
        body_type: u16,
    },
    /// A body that the quote version cannot carry (v3: SGX only; v4: SGX or TD 1.0; the TD 1.5
    /// bodies need v5's body descriptor).
    #[error("quote version {version} cannot carry body type {body_type}")]
    BodyVersionMismatch {
        /// Header `Version`.
        version: u16,
        /// The body type.
        body_type: u16,
    },
    /// A certification data type this parser does not read: v4/v5 signature data must carry
    /// type 6 (QE report certification data), and the data nested in it (or a v3 quote's
    /// certification data) must be type 5 (PCK certificate chain).
    #[error("{what}: certification data type {found} is not supported")]
    UnsupportedCertificationDataType {
        /// Which certification data.
        what: &'static str,
        /// The type found.
        found: u16,
    },
    /// Non-zero bytes follow the signature data. Zero bytes (a quote copied out of a larger
    /// buffer) are accepted; anything else is a different or tampered input.
    #[error("quote: non-zero byte at offset {offset}, after the end of the signature data")]
    TrailingData {
        /// Offset of the first non-zero byte after the signature data.
        offset: usize,
    },
    /// The PCK certificate chain (certification data type 5) is not PEM certificates.
    #[error("PCK certificate chain: {0}")]
    Pem(tessera_pki::PkiError),
}

impl ParseError {
    /// The field or structure that could not be read.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::Length { what, .. }
            | Self::Truncated { what, .. }
            | Self::SizeMismatch { what, .. }
            | Self::TooLarge { what, .. } => what,
            Self::UnsupportedVersion(_) => "header.version",
            Self::UnsupportedAttestationKeyType(_) => "header.attestation_key_type",
            Self::UnsupportedTeeType(_) => "header.tee_type",
            Self::UnsupportedBodyType(_) | Self::BodySize { .. } => "quote body descriptor",
            Self::TeeTypeMismatch { .. } => "header.tee_type",
            _ => "quote",
        }
    }
}

/// A bounds-checked cursor over untrusted bytes: every read either returns the bytes it asked
/// for or a [`ParseError::Truncated`] naming the field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Number of bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(ParseError::Truncated {
            what,
            needed: n,
            available: self.rest.len(),
        })?;
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], ParseError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(ParseError::Truncated {
                what,
                needed: N,
                available: self.rest.len(),
            })?;
        self.rest = tail;
        Ok(*head)
    }

    /// A little-endian `u16`.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, ParseError> {
        self.array::<2>(what).map(u16::from_le_bytes)
    }

    /// A little-endian `u32`.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ParseError> {
        self.array::<4>(what).map(u32::from_le_bytes)
    }

    /// A `u32` length field followed by that many bytes. `what` names the data.
    pub(crate) fn u32_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], ParseError> {
        let len = self.u32(what)?;
        self.take(usize_from(len), what)
    }

    /// A `u16` length field followed by that many bytes. `what` names the data.
    pub(crate) fn u16_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], ParseError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }
}

/// A `u32` as `usize`. Every supported target has at least 32-bit pointers; saturating keeps
/// a hypothetical 16-bit target safe (the length then fails the bounds check that follows).
pub(crate) fn usize_from(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A length as the `u32` a length field holds, or [`ParseError::TooLarge`].
pub(crate) fn u32_len(len: usize, what: &'static str) -> Result<u32, ParseError> {
    u32::try_from(len).map_err(|_| ParseError::TooLarge {
        what,
        max: usize_from(u32::MAX),
        actual: len,
    })
}

/// Lower-case hex rendering of bytes for `Debug` output.
pub(crate) struct HexBytes<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

// The functions below are fuzz harnesses: the `fuzz/` targets are three-line shims over them.
// A failed assertion is the finding a fuzzer reports, so they may panic, unlike the parsers.

/// Fuzz harness: `Quote::parse`; on success the serialization is the input minus its zero
/// padding, parses back to the same quote, and `Quote::new` rebuilds the same quote.
#[doc(hidden)]
#[allow(clippy::panic, clippy::indexing_slicing)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_quote(data: &[u8]) {
    if let Ok(quote) = Quote::parse(data) {
        let bytes = quote.to_bytes();
        assert_eq!(bytes.len() + quote.trailing_padding(), data.len());
        assert_eq!(bytes.as_slice(), &data[..bytes.len()]);
        assert!(bytes.starts_with(quote.signed_bytes()));
        let again = Quote::parse(&bytes);
        assert_eq!(again.as_ref(), Ok(&quote));
        let rebuilt = Quote::new(
            quote.header().clone(),
            quote.body().clone(),
            quote.signature_data().clone(),
        );
        assert_eq!(rebuilt.as_ref(), Ok(&quote));
        let (prefix, rest) = Quote::parse_prefix(data).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(prefix, quote);
        assert_eq!(rest.len(), quote.trailing_padding());
        let _ = format!("{quote:?}");
    }
    let _ = Quote::parse_prefix(data);
}

/// Fuzz harness: `QeCertificationData::parse` (type-6 certification data alone); on success
/// the serialization is the input and the QE report bytes are the input's.
#[doc(hidden)]
#[allow(clippy::panic, clippy::indexing_slicing)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_certification_data(data: &[u8]) {
    if let Ok(cert) = QeCertificationData::parse(data) {
        assert_eq!(cert.to_bytes().as_slice(), data);
        assert_eq!(
            &cert.qe_report_bytes()[..],
            &data[6..6 + EnclaveReport::SIZE]
        );
        let again = QeCertificationData::parse(&cert.to_bytes());
        assert_eq!(again.as_ref(), Ok(&cert));
        let _ = format!("{cert:?}");
    }
}
