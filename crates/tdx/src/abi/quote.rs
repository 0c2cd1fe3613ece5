//! The DCAP quote: header, version framing, body and signature data.
//!
//! Layout: Intel "TDX DCAP Quote Generation Library and Quote Verification Library API",
//! appendix "Quote Format" (A.3 "Version 4 Quote Format", A.4 "Version 5 Quote Format"), and
//! Intel "SGX ECDSA Quote Library API", "Quote Format" (version 3); Intel headers
//! `sgx_quote_3.h`, `sgx_quote_4.h`, `sgx_quote_5.h`. All integers little-endian.
//!
//! ```text
//! v3: header [48] | enclave report [384]                        | sig data len u32 | sig data
//! v4: header [48] | enclave report [384] or TD 1.0 report [584] | sig data len u32 | sig data
//! v5: header [48] | body type u16 | body size u32 | body         | sig data len u32 | sig data
//! ```
//!
//! The attestation key signs every byte from the start of the header to the end of the body
//! (in v5 including the body type and size): [`Quote::signed_bytes`]. Versions: 3 is SGX only
//! (TEE type 0); 4 carries an enclave report under TEE type 0 or a TD 1.0 report under TEE
//! type 0x81; 5 declares its body (1 SGX, 2 TD 1.0, 3 TD 1.5, 4 TD 1.5ex), whose size must be
//! that type's size and whose kind must agree with the TEE type. Other versions, attestation
//! key types and TEE types are rejected: their layouts are unknown.
//!
//! Real quotes are often copied out of a larger buffer, so zero bytes after the signature
//! data are accepted and counted ([`Quote::trailing_padding`]); any other trailing byte is an
//! error from [`Quote::parse`]. [`Quote::parse_prefix`] returns such bytes to the caller
//! instead (one go-tdx-guest test quote carries an ASCII note there).

use core::fmt;

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::body::{EnclaveReport, QuoteBody, TdReport10};
use super::signature::QuoteSignatureData;
use super::{
    ATTESTATION_KEY_TYPE_ECDSA_P256, HexBytes, ParseError, Reader, TeeType, u32_len, usize_from,
};

/// The 48-byte quote header (`sgx_quote_header_t` / `sgx_quote4_header_t`).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawHeader {
    version: U16,
    attestation_key_type: U16,
    tee_type: U32,
    qe_svn: U16,
    pce_svn: U16,
    qe_vendor_id: [u8; 16],
    user_data: [u8; 20],
}

/// The v5 body descriptor between the header and the body.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawBodyDescriptor {
    body_type: U16,
    size: U32,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RawHeader>() == QuoteHeader::SIZE);
    assert!(offset_of!(RawHeader, tee_type) == 4);
    assert!(offset_of!(RawHeader, qe_svn) == 8);
    assert!(offset_of!(RawHeader, pce_svn) == 10);
    assert!(offset_of!(RawHeader, qe_vendor_id) == 12);
    assert!(offset_of!(RawHeader, user_data) == 28);
    assert!(size_of::<RawBodyDescriptor>() == BODY_DESCRIPTOR_SIZE);
};

/// Size of the v5 body descriptor (type u16, size u32).
const BODY_DESCRIPTOR_SIZE: usize = 6;

/// The quote header.
#[derive(Clone, PartialEq, Eq)]
pub struct QuoteHeader {
    /// `Version`: 3, 4 or 5.
    pub version: u16,
    /// `Attestation Key Type`: 2 (ECDSA P-256) is the only one accepted.
    pub attestation_key_type: u16,
    /// `TEE Type`: SGX (0) or TDX (0x81).
    pub tee_type: TeeType,
    /// `QE_SVN` in v3; reserved in v4 and v5 (kept as found).
    pub qe_svn: u16,
    /// `PCE_SVN` in v3; reserved in v4 and v5 (kept as found).
    pub pce_svn: u16,
    /// `QE Vendor ID`: [`super::INTEL_QE_VENDOR_ID`] for Intel's QE (checked by `verify`).
    pub qe_vendor_id: [u8; 16],
    /// `User Data`: custom data of the quoting enclave (the first 16 bytes are the QE id
    /// for Intel's QE).
    pub user_data: [u8; 20],
}

impl QuoteHeader {
    /// Size in bytes.
    pub const SIZE: usize = 48;

    /// Reads a header from exactly [`Self::SIZE`] bytes. Values are not judged here.
    ///
    /// # Errors
    ///
    /// [`ParseError::Length`] unless `bytes` is exactly 48 bytes long.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let raw = RawHeader::ref_from_bytes(bytes).map_err(|_| ParseError::Length {
            what: "quote header",
            expected: Self::SIZE,
            actual: bytes.len(),
        })?;
        Ok(Self {
            version: raw.version.get(),
            attestation_key_type: raw.attestation_key_type.get(),
            tee_type: TeeType(raw.tee_type.get()),
            qe_svn: raw.qe_svn.get(),
            pce_svn: raw.pce_svn.get(),
            qe_vendor_id: raw.qe_vendor_id,
            user_data: raw.user_data,
        })
    }

    /// The header's 48 bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        zerocopy::transmute!(RawHeader {
            version: U16::new(self.version),
            attestation_key_type: U16::new(self.attestation_key_type),
            tee_type: U32::new(self.tee_type.0),
            qe_svn: U16::new(self.qe_svn),
            pce_svn: U16::new(self.pce_svn),
            qe_vendor_id: self.qe_vendor_id,
            user_data: self.user_data,
        })
    }

    /// Checks the values that decide the layout: version, attestation key type, TEE type.
    fn check(&self) -> Result<(), ParseError> {
        if !(Quote::FIRST_VERSION..=Quote::LAST_VERSION).contains(&self.version) {
            return Err(ParseError::UnsupportedVersion(self.version));
        }
        if self.attestation_key_type != ATTESTATION_KEY_TYPE_ECDSA_P256 {
            return Err(ParseError::UnsupportedAttestationKeyType(
                self.attestation_key_type,
            ));
        }
        if self.tee_type != TeeType::SGX && self.tee_type != TeeType::TDX {
            return Err(ParseError::UnsupportedTeeType(self.tee_type.0));
        }
        Ok(())
    }
}

impl fmt::Debug for QuoteHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuoteHeader")
            .field("version", &self.version)
            .field("attestation_key_type", &self.attestation_key_type)
            .field("tee_type", &format_args!("{}", self.tee_type))
            .field("qe_svn", &self.qe_svn)
            .field("pce_svn", &self.pce_svn)
            .field("qe_vendor_id", &HexBytes(&self.qe_vendor_id))
            .field("user_data", &HexBytes(&self.user_data))
            .finish()
    }
}

/// A parsed DCAP quote of a known layout. Unverified: it says what the bytes say.
///
/// Two quotes are equal when header, body and signature data are; the zero padding a
/// transport added after the signature data ([`Self::trailing_padding`]) is not part of the
/// quote.
#[derive(Clone)]
pub struct Quote {
    header: QuoteHeader,
    body: QuoteBody,
    signature_data: QuoteSignatureData,
    /// Header through body (with the v5 descriptor), computed once from the fields above.
    signed: Vec<u8>,
    trailing_padding: usize,
}

impl PartialEq for Quote {
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header
            && self.body == other.body
            && self.signature_data == other.signature_data
    }
}

impl Eq for Quote {}

impl Quote {
    /// The first quote version whose layout is known (SGX ECDSA).
    const FIRST_VERSION: u16 = 3;
    /// Version 5 added the body descriptor.
    const DESCRIPTOR_SINCE: u16 = 5;
    /// The newest version whose layout is known.
    const LAST_VERSION: u16 = 5;

    /// Builds a quote from its parts, checking that they agree (version, attestation key
    /// type, TEE type against body kind, encodable sizes) and computing the signed bytes.
    ///
    /// A simulator builds the quote with any signature, signs [`Self::signed_bytes`], then
    /// sets the signature with [`Self::with_signature`] (the signed bytes do not cover it).
    ///
    /// # Errors
    ///
    /// [`ParseError::UnsupportedVersion`], [`ParseError::UnsupportedAttestationKeyType`],
    /// [`ParseError::UnsupportedTeeType`]; [`ParseError::BodyVersionMismatch`] for a body the
    /// version cannot carry (v3: SGX only; v4: SGX or TD 1.0); [`ParseError::TeeTypeMismatch`]
    /// when the TEE type is not the body's; [`ParseError::TooLarge`] when the QE
    /// authentication data or signature data does not fit its size field.
    pub fn new(
        header: QuoteHeader,
        body: QuoteBody,
        signature_data: QuoteSignatureData,
    ) -> Result<Self, ParseError> {
        header.check()?;
        let version = header.version;
        let body_type = body.body_type();
        let carried = match version {
            3 => body_type == EnclaveReport::BODY_TYPE,
            4 => body_type == EnclaveReport::BODY_TYPE || body_type == TdReport10::BODY_TYPE,
            _ => true,
        };
        if !carried {
            return Err(ParseError::BodyVersionMismatch { version, body_type });
        }
        if (header.tee_type == TeeType::TDX) != body.is_td() {
            return Err(ParseError::TeeTypeMismatch {
                version,
                tee_type: header.tee_type,
                body_type,
            });
        }
        signature_data.certification.check_sizes()?;

        let body_bytes = body.to_bytes();
        let mut signed =
            Vec::with_capacity(QuoteHeader::SIZE + BODY_DESCRIPTOR_SIZE + body_bytes.len());
        signed.extend_from_slice(&header.to_bytes());
        if version >= Self::DESCRIPTOR_SINCE {
            let descriptor = RawBodyDescriptor {
                body_type: U16::new(body_type),
                size: U32::new(u32_len(body_bytes.len(), "quote body")?),
            };
            signed.extend_from_slice(descriptor.as_bytes());
        }
        signed.extend_from_slice(&body_bytes);
        Ok(Self {
            header,
            body,
            signature_data,
            signed,
            trailing_padding: 0,
        })
    }

    /// Parses a quote. Zero bytes after the signature data are accepted and counted in
    /// [`Self::trailing_padding`].
    ///
    /// # Errors
    ///
    /// Everything [`Self::parse_prefix`] reports, and [`ParseError::TrailingData`] when a
    /// byte after the signature data is not zero.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let (mut quote, rest) = Self::parse_prefix(bytes)?;
        if let Some(pos) = rest.iter().position(|b| *b != 0) {
            return Err(ParseError::TrailingData {
                offset: bytes.len() - rest.len() + pos,
            });
        }
        quote.trailing_padding = rest.len();
        Ok(quote)
    }

    /// Parses the quote at the start of `bytes` and returns it with the bytes after its
    /// signature data, whatever they are (the returned quote's [`Self::trailing_padding`]
    /// is 0).
    ///
    /// # Errors
    ///
    /// [`ParseError::Truncated`] when the input ends inside the header, body descriptor,
    /// body, signature data length or the signature data it declares;
    /// [`ParseError::UnsupportedVersion`], [`ParseError::UnsupportedAttestationKeyType`],
    /// [`ParseError::UnsupportedTeeType`], [`ParseError::UnsupportedBodyType`],
    /// [`ParseError::BodySize`], [`ParseError::TeeTypeMismatch`] for header and body values
    /// whose layout is unknown or inconsistent; the signature data errors of
    /// [`super::QeCertificationData::parse`].
    pub fn parse_prefix(bytes: &[u8]) -> Result<(Self, &[u8]), ParseError> {
        let mut r = Reader::new(bytes);
        let header = QuoteHeader::parse(r.take(QuoteHeader::SIZE, "quote header")?)?;
        header.check()?;
        let body = match header.version {
            3 => QuoteBody::Sgx(EnclaveReport::parse(
                r.take(EnclaveReport::SIZE, "quote body (enclave report)")?,
            )?),
            4 if header.tee_type == TeeType::SGX => QuoteBody::Sgx(EnclaveReport::parse(
                r.take(EnclaveReport::SIZE, "quote body (enclave report)")?,
            )?),
            4 => QuoteBody::Td10(TdReport10::parse(
                r.take(TdReport10::SIZE, "quote body (TD 1.0 report)")?,
            )?),
            _ => {
                let descriptor: RawBodyDescriptor =
                    zerocopy::transmute!(r.array::<BODY_DESCRIPTOR_SIZE>("quote body descriptor")?);
                let body_type = descriptor.body_type.get();
                let size = descriptor.size.get();
                let expected = QuoteBody::size_of_type(body_type)
                    .ok_or(ParseError::UnsupportedBodyType(body_type))?;
                if usize_from(size) != expected {
                    return Err(ParseError::BodySize {
                        body_type,
                        expected,
                        actual: size,
                    });
                }
                QuoteBody::parse(body_type, r.take(expected, "quote body")?)?
            }
        };
        let signature_data = r.u32_prefixed("quote signature data")?;
        let signature_data = QuoteSignatureData::parse(header.version, signature_data)?;
        let quote = Self::new(header, body, signature_data)?;
        Ok((quote, r.rest()))
    }

    /// The same quote with `signature` as the attestation key's signature (the signed bytes
    /// do not change).
    #[must_use]
    pub fn with_signature(mut self, signature: [u8; 64]) -> Self {
        self.signature_data.signature = signature;
        self
    }

    /// The header.
    pub fn header(&self) -> &QuoteHeader {
        &self.header
    }

    /// The body.
    pub fn body(&self) -> &QuoteBody {
        &self.body
    }

    /// The signature data.
    pub fn signature_data(&self) -> &QuoteSignatureData {
        &self.signature_data
    }

    /// The bytes the attestation key signed: the header through the end of the body (in v5
    /// including the body type and size).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }

    /// Header `TEE Type`.
    pub fn tee_type(&self) -> TeeType {
        self.header.tee_type
    }

    /// Header `Version`.
    pub fn version(&self) -> u16 {
        self.header.version
    }

    /// `REPORTDATA` of the body.
    pub fn report_data(&self) -> &[u8; 64] {
        self.body.report_data()
    }

    /// How many zero bytes followed the signature data in the parsed input.
    pub fn trailing_padding(&self) -> usize {
        self.trailing_padding
    }

    /// The quote's bytes without trailing padding: `Quote::parse(&q.to_bytes()) == Ok(q)`,
    /// and for an input without padding the bytes are the input.
    pub fn to_bytes(&self) -> Vec<u8> {
        let signature_data = self.signature_data.to_bytes(self.header.version);
        // `new` checked that the signature data length fits in a u32.
        let len = u32::try_from(signature_data.len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(self.signed.len() + 4 + signature_data.len());
        out.extend_from_slice(&self.signed);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&signature_data);
        out
    }
}

impl fmt::Debug for Quote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quote")
            .field("header", &self.header)
            .field("body", &self.body)
            .field("signature_data", &self.signature_data)
            .field("trailing_padding", &self.trailing_padding)
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::abi::INTEL_QE_VENDOR_ID;
    use crate::abi::body::tests::arb_body;
    use crate::abi::signature::tests::{arb_certification, sample_certification};
    use crate::abi::{QeCertificationData, TdReport15};
    use proptest::prelude::*;
    use std::path::{Path, PathBuf};

    /// The shared vectors folder, or `None` (with a notice) when it is absent outside CI.
    pub(crate) fn vectors_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("TESSERA_VECTORS").map_or_else(
            || {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../../shared/vectors"
                ))
            },
            PathBuf::from,
        );
        if dir.is_dir() {
            Some(dir)
        } else if std::env::var_os("CI").is_some() {
            panic!(
                "vectors folder {} missing (set TESSERA_VECTORS)",
                dir.display()
            );
        } else {
            // Once per test binary, not once per test or generated case.
            static NOTICE: std::sync::Once = std::sync::Once::new();
            NOTICE.call_once(|| {
                eprintln!("notice: vectors folder {} missing; skipping", dir.display());
            });
            None
        }
    }

    /// One real quote: its case folder, the file, and the case's `facts`.
    pub(crate) struct QuoteCase {
        pub(crate) dir: PathBuf,
        pub(crate) file: PathBuf,
        pub(crate) facts: serde_json::Value,
    }

    /// Every quote under `tdx/` and `sgx/` (each case's evidence and the files in `extra/`).
    pub(crate) fn quote_cases() -> Vec<QuoteCase> {
        let Some(root) = vectors_dir() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for tee in ["tdx", "sgx"] {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(tee))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.join("case.json").is_file())
                .collect();
            dirs.sort();
            for dir in dirs {
                let case: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap())
                        .unwrap();
                let facts = case["facts"].clone();
                if let Some(evidence) = case["evidence"].as_str() {
                    out.push(QuoteCase {
                        dir: dir.clone(),
                        file: dir.join(evidence),
                        facts: facts.clone(),
                    });
                }
                if let Ok(extra) = std::fs::read_dir(dir.join("extra")) {
                    let mut files: Vec<PathBuf> = extra
                        .map(|e| e.unwrap().path())
                        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
                        .collect();
                    files.sort();
                    for file in files {
                        out.push(QuoteCase {
                            dir: dir.clone(),
                            file,
                            facts: facts.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Reads a quote the way the verifier will: strictly, or, for the one vector with a
    /// non-zero note after its signature data, with `parse_prefix`.
    pub(crate) fn read_quote(path: &Path) -> Quote {
        let bytes = std::fs::read(path).unwrap();
        match Quote::parse(&bytes) {
            Ok(q) => q,
            Err(ParseError::TrailingData { .. }) => Quote::parse_prefix(&bytes).unwrap().0,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }

    fn header(version: u16, tee_type: TeeType) -> QuoteHeader {
        QuoteHeader {
            version,
            attestation_key_type: 2,
            tee_type,
            qe_svn: 0,
            pce_svn: 0,
            qe_vendor_id: INTEL_QE_VENDOR_ID,
            user_data: [0xAB; 20],
        }
    }

    fn signature_data() -> QuoteSignatureData {
        QuoteSignatureData {
            signature: [0x51; 64],
            attestation_key: [0x4B; 64],
            certification: sample_certification(),
        }
    }

    fn td10() -> QuoteBody {
        QuoteBody::Td10(TdReport10::parse(&[3; 584]).unwrap())
    }

    /// A synthetic v4 TD quote.
    fn sample_v4() -> Quote {
        Quote::new(header(4, TeeType::TDX), td10(), signature_data()).unwrap()
    }

    /// A synthetic v5 TD 1.5 quote.
    fn sample_v5() -> Quote {
        let body = QuoteBody::Td15(TdReport15::parse(&[5; 648]).unwrap());
        Quote::new(header(5, TeeType::TDX), body, signature_data()).unwrap()
    }

    #[cfg_attr(
        not(tessera_vectors),
        ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
    )]
    #[test]
    fn real_quotes_parse_and_match_facts() {
        let mut parsed = 0;
        let mut padded = 0;
        let mut noted = 0;
        for case in quote_cases() {
            let name = case.file.display().to_string();
            let bytes = std::fs::read(&case.file).unwrap();
            let quote = match Quote::parse(&bytes) {
                Ok(quote) => quote,
                Err(ParseError::TrailingData { offset }) => {
                    // go-tdx-guest's tdx_prod_quote_SPR_E4.dat: an ASCII note follows.
                    let (quote, rest) = Quote::parse_prefix(&bytes).unwrap();
                    assert_eq!(bytes.len() - rest.len(), offset, "{name}");
                    assert_eq!(rest, b"\nextra bytes(only for testing purpose)\n", "{name}");
                    noted += 1;
                    quote
                }
                Err(e) => panic!("{name}: {e}"),
            };
            parsed += 1;
            let facts = &case.facts;
            assert_eq!(
                Some(u64::from(quote.version())),
                facts["quote_version"].as_u64(),
                "{name}: version"
            );
            assert_eq!(
                Some(u64::from(quote.body().body_type())),
                facts["body_type"].as_u64(),
                "{name}: body type"
            );
            let tee = facts["tee_type"].as_str().unwrap();
            let tee = u32::from_str_radix(tee.trim_start_matches("0x"), 16).unwrap();
            assert_eq!(quote.tee_type(), TeeType(tee), "{name}: TEE type");
            assert_eq!(quote.header().qe_vendor_id, INTEL_QE_VENDOR_ID, "{name}");

            // Exact serialization, signed bytes, QE report bytes.
            let out = quote.to_bytes();
            assert_eq!(out.as_slice(), &bytes[..out.len()], "{name}");
            let body_end =
                QuoteHeader::SIZE + if quote.version() == 5 { 6 } else { 0 } + quote.body().size();
            assert_eq!(quote.signed_bytes(), &bytes[..body_end], "{name}");
            let cert = &quote.signature_data().certification;
            let qe_at = body_end + 4 + 128 + if quote.version() == 3 { 0 } else { 6 };
            assert_eq!(
                &cert.qe_report_bytes()[..],
                &bytes[qe_at..qe_at + 384],
                "{name}"
            );
            if quote.trailing_padding() > 0 {
                padded += 1;
                assert_eq!(out.len() + quote.trailing_padding(), bytes.len());
            }
            let again = Quote::parse(&out).unwrap();
            assert_eq!(again, quote);
            assert_eq!(again.trailing_padding(), 0);

            // Structure the verifier relies on.
            let chain = cert
                .pck_certificates()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(chain.len(), 3, "{name}: PCK, intermediate CA, root");
            assert_eq!(cert.qe_report.report_data[32..], [0; 32], "{name}");
            assert!(case.dir.is_dir());
        }
        if vectors_dir().is_some() {
            assert!(parsed >= 21, "only {parsed} quotes parsed");
            assert!(padded >= 9, "only {padded} padded quotes");
            assert_eq!(noted, 1, "one quote carries a non-zero trailing note");
        }
    }

    #[cfg_attr(
        not(tessera_vectors),
        ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
    )]
    #[test]
    fn every_cut_of_a_real_quote_is_rejected() {
        for case in quote_cases().iter().filter(|c| {
            let n = c.file.to_string_lossy();
            n.contains("auto-tdx-v5-td15-90c06f-2025-06/")
                || n.contains("edgeless-tdx-v4-00806f-2023-02/")
                || n.contains("trustee-occlum-sgx")
        }) {
            let bytes = std::fs::read(&case.file).unwrap();
            let end = Quote::parse(&bytes).unwrap().to_bytes().len();
            for cut in 0..end {
                assert!(
                    Quote::parse(&bytes[..cut]).is_err(),
                    "{}: cut at {cut}",
                    case.file.display()
                );
            }
            assert!(Quote::parse(&bytes[..end]).is_ok());
        }
    }

    #[test]
    fn trailing_bytes() {
        let mut bytes = sample_v4().to_bytes();
        let end = bytes.len();
        bytes.extend_from_slice(&[0; 100]);
        let q = Quote::parse(&bytes).unwrap();
        assert_eq!(q.trailing_padding(), 100);
        assert_eq!(q, sample_v4());
        bytes[end + 57] = 1;
        assert_eq!(
            Quote::parse(&bytes),
            Err(ParseError::TrailingData { offset: end + 57 })
        );
        let (q, rest) = Quote::parse_prefix(&bytes).unwrap();
        assert_eq!((q.trailing_padding(), rest.len()), (0, 100));
        fuzz(&bytes);
    }

    #[test]
    fn unknown_versions_and_key_types_rejected() {
        for v in [0u16, 1, 2, 6, 0xFFFF] {
            let mut bytes = sample_v4().to_bytes();
            bytes[..2].copy_from_slice(&v.to_le_bytes());
            assert_eq!(Quote::parse(&bytes), Err(ParseError::UnsupportedVersion(v)));
        }
        for t in [0u16, 1, 3, 4] {
            let mut bytes = sample_v4().to_bytes();
            bytes[2..4].copy_from_slice(&t.to_le_bytes());
            assert_eq!(
                Quote::parse(&bytes),
                Err(ParseError::UnsupportedAttestationKeyType(t))
            );
        }
        let mut bytes = sample_v4().to_bytes();
        bytes[4] = 0x80;
        assert_eq!(
            Quote::parse(&bytes),
            Err(ParseError::UnsupportedTeeType(0x80))
        );
    }

    #[test]
    fn v5_body_descriptor_checked() {
        let good = sample_v5().to_bytes();
        assert_eq!(&good[48..54], &[3, 0, 0x88, 2, 0, 0]); // type 3, 648 bytes
        let mut bytes = good.clone();
        bytes[50..54].copy_from_slice(&584u32.to_le_bytes());
        assert_eq!(
            Quote::parse(&bytes),
            Err(ParseError::BodySize {
                body_type: 3,
                expected: 648,
                actual: 584
            })
        );
        let mut bytes = good.clone();
        bytes[48] = 7;
        assert_eq!(
            Quote::parse(&bytes),
            Err(ParseError::UnsupportedBodyType(7))
        );
        // SGX body type under a TDX header.
        let sgx = QuoteBody::Sgx(EnclaveReport::parse(&[0; 384]).unwrap());
        let mut q = Quote::new(header(5, TeeType::SGX), sgx, signature_data())
            .unwrap()
            .to_bytes();
        q[4] = 0x81;
        assert_eq!(
            Quote::parse(&q),
            Err(ParseError::TeeTypeMismatch {
                version: 5,
                tee_type: TeeType::TDX,
                body_type: 1
            })
        );
    }

    #[test]
    fn version_body_and_tee_consistency() {
        let td15 = QuoteBody::Td15(TdReport15::parse(&[0; 648]).unwrap());
        let sgx = QuoteBody::Sgx(EnclaveReport::parse(&[0; 384]).unwrap());
        assert_eq!(
            Quote::new(header(4, TeeType::TDX), td15.clone(), signature_data()),
            Err(ParseError::BodyVersionMismatch {
                version: 4,
                body_type: 3
            })
        );
        assert_eq!(
            Quote::new(header(3, TeeType::SGX), td10(), signature_data()),
            Err(ParseError::BodyVersionMismatch {
                version: 3,
                body_type: 2
            })
        );
        assert_eq!(
            Quote::new(header(4, TeeType::SGX), td10(), signature_data()),
            Err(ParseError::TeeTypeMismatch {
                version: 4,
                tee_type: TeeType::SGX,
                body_type: 2
            })
        );
        assert!(Quote::new(header(4, TeeType::SGX), sgx.clone(), signature_data()).is_ok());
        assert!(Quote::new(header(5, TeeType::TDX), td10(), signature_data()).is_ok());
        // A v3 header with a TDX TEE type: v3 is SGX only.
        let mut v3 = Quote::new(header(3, TeeType::SGX), sgx, signature_data())
            .unwrap()
            .to_bytes();
        v3[4] = 0x81;
        assert_eq!(
            Quote::parse(&v3),
            Err(ParseError::TeeTypeMismatch {
                version: 3,
                tee_type: TeeType::TDX,
                body_type: 1
            })
        );
    }

    #[test]
    fn certification_types_rejected_in_quotes() {
        let good = sample_v4().to_bytes();
        let cert_at = 48 + 584 + 4 + 128;
        let mut bytes = good.clone();
        bytes[cert_at] = 7;
        assert_eq!(
            Quote::parse(&bytes),
            Err(ParseError::UnsupportedCertificationDataType {
                what: "signature data: certification data",
                found: 7
            })
        );
        let mut bytes = good;
        let nested_at = cert_at + 6 + 384 + 64 + 2 + 32;
        assert_eq!(bytes[nested_at], 5);
        bytes[nested_at] = 4;
        assert!(matches!(
            Quote::parse(&bytes),
            Err(ParseError::UnsupportedCertificationDataType { found: 4, .. })
        ));
    }

    #[test]
    fn signature_data_length_checked() {
        let good = sample_v4().to_bytes();
        let at = 48 + 584;
        let len = u32::from_le_bytes(good[at..at + 4].try_into().unwrap());
        let mut bytes = good.clone();
        bytes[at..at + 4].copy_from_slice(&(len + 1).to_le_bytes());
        assert!(matches!(
            Quote::parse(&bytes),
            Err(ParseError::Truncated {
                what: "quote signature data",
                ..
            })
        ));
        // Shorter: the certification data no longer fits what remains of it, and the
        // byte cut off becomes non-zero trailing data if it were accepted.
        let mut bytes = good;
        bytes[at..at + 4].copy_from_slice(&(len - 1).to_le_bytes());
        assert!(matches!(
            Quote::parse(&bytes),
            Err(ParseError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn signing_flow() {
        let unsigned = sample_v5();
        let signed_bytes = unsigned.signed_bytes().to_vec();
        assert_eq!(signed_bytes.len(), 48 + 6 + 648);
        let signed = unsigned.with_signature([0xEE; 64]);
        assert_eq!(signed.signed_bytes(), signed_bytes.as_slice());
        assert_eq!(signed.signature_data().signature, [0xEE; 64]);
        let bytes = signed.to_bytes();
        assert_eq!(Quote::parse(&bytes).unwrap(), signed);
        assert_eq!(signed.report_data(), &[5; 64]);
    }

    #[test]
    fn too_large_parts_rejected_by_new() {
        let mut sig = signature_data();
        sig.certification.qe_auth_data = vec![0; usize::from(u16::MAX) + 1];
        assert!(matches!(
            Quote::new(header(4, TeeType::TDX), td10(), sig),
            Err(ParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn debug_output_is_hex() {
        let text = format!("{:?}", sample_v4());
        assert!(text.contains("tee_type: TDX (0x81)"), "{text}");
        assert!(text.contains(&"03".repeat(48)), "{text}");
    }

    fn fuzz(bytes: &[u8]) {
        crate::abi::fuzz_quote(bytes);
    }

    fn arb_quote() -> impl Strategy<Value = Quote> {
        (
            arb_body(),
            prop_oneof![Just(3u16), Just(4), Just(5)],
            any::<[u8; 20]>(),
            any::<(u16, u16)>(),
            any::<[u8; 64]>(),
            any::<[u8; 64]>(),
            arb_certification(),
        )
            .prop_map(
                |(body, version, user_data, svns, sig, key, certification)| {
                    // Pick a version that can carry the body.
                    let version = match body.body_type() {
                        1 => version,
                        2 => version.max(4),
                        _ => 5,
                    };
                    let tee_type = if body.is_td() {
                        TeeType::TDX
                    } else {
                        TeeType::SGX
                    };
                    let header = QuoteHeader {
                        version,
                        attestation_key_type: 2,
                        tee_type,
                        qe_svn: svns.0,
                        pce_svn: svns.1,
                        qe_vendor_id: INTEL_QE_VENDOR_ID,
                        user_data,
                    };
                    let signature_data = QuoteSignatureData {
                        signature: sig,
                        attestation_key: key,
                        certification,
                    };
                    Quote::new(header, body, signature_data).unwrap()
                },
            )
    }

    proptest! {
        #[test]
        fn quote_round_trip(quote in arb_quote()) {
            let bytes = quote.to_bytes();
            let again = Quote::parse(&bytes).unwrap();
            prop_assert_eq!(&again, &quote);
            prop_assert_eq!(again.to_bytes(), bytes.clone());
            prop_assert!(bytes.starts_with(quote.signed_bytes()));
            let cert = QeCertificationData::parse(&quote.signature_data().certification.to_bytes());
            prop_assert_eq!(cert.as_ref(), Ok(&quote.signature_data().certification));
            fuzz(&bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            fuzz(&bytes);
        }

        #[test]
        fn mutated_quotes_never_panic(
            quote in arb_quote(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = quote.to_bytes();
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            fuzz(&bytes);
        }
    }
}
