//! The Azure paravisor (HCL) report: an SNP report plus the runtime data its REPORT_DATA binds.
//!
//! Azure confidential VMs expose this blob in vTPM NV index 0x01400001. Layout, all integers
//! little-endian (from Microsoft's IGVM attestation definitions as mirrored by
//! kinvolk/azure-cvm-tooling `az-cvm-vtpm/src/hcl/mod.rs`, `AttestationHeader` and
//! `IgvmRequestData`, and by OpenHCL `openhcl_attestation_protocol` `igvm_attest`):
//!
//! | offset | size  | field |
//! |--------|-------|-------|
//! | 0x000  | 4     | signature `"HCLA"` |
//! | 0x004  | 4     | version (1 and 2 seen) |
//! | 0x008  | 4     | report_size: 0x20 + 0x4A0 + `data_size` in every sample |
//! | 0x00C  | 4     | request_type (2 seen) |
//! | 0x010  | 4     | status |
//! | 0x014  | 12    | reserved |
//! | 0x020  | 0x4A0 | hardware report: the SNP `ATTESTATION_REPORT` (the slot is sized for it) |
//! | 0x4C0  | 4     | IGVM request data: data_size = 20 + variable_data_size |
//! | 0x4C4  | 4     | version (1) |
//! | 0x4C8  | 4     | report_type: 2 SEV-SNP, 4 TDX |
//! | 0x4CC  | 4     | report_data_hash_type: 1 SHA-256, 2 SHA-384, 3 SHA-512 |
//! | 0x4D0  | 4     | variable_data_size |
//! | 0x4D4  | var   | variable_data: the runtime data (JSON with the vTPM AK and user data) |
//!
//! Anything after the variable data is padding (the NV index is read whole). The SNP report's
//! REPORT_DATA is `hash(variable_data)` zero-extended; checking that needs a hash and lives in
//! `verify`. Nothing in the HCL wrapper itself is signed.

use core::fmt;

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::report::AttestationReport;
use super::{HexBytes, ParseError, REPORT_SIZE};

/// The HCL header signature.
const HCL_SIGNATURE: [u8; 4] = *b"HCLA";
/// `report_type` of an SNP hardware report.
const SNP_REPORT_TYPE: u32 = 2;

/// The 32-byte attestation header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawHclHeader {
    signature: [u8; 4],
    version: U32,
    report_size: U32,
    request_type: U32,
    status: U32,
    reserved: [u8; 12],
}

/// The fixed part of the IGVM request data that follows the hardware report.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawIgvmRequestData {
    data_size: U32,
    version: U32,
    report_type: U32,
    report_data_hash_type: U32,
    variable_data_size: U32,
}

const HEADER_LEN: usize = core::mem::size_of::<RawHclHeader>();
const IGVM_FIXED_LEN: usize = core::mem::size_of::<RawIgvmRequestData>();
const _: () = assert!(HEADER_LEN == 0x20 && IGVM_FIXED_LEN == 20);

/// `report_data_hash_type`: how the runtime data is hashed into REPORT_DATA.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum HclHashType {
    /// 1: SHA-256 (what Azure uses).
    Sha256,
    /// 2: SHA-384.
    Sha384,
    /// 3: SHA-512.
    Sha512,
    /// Any other value (0 is "invalid" in the IGVM definitions), kept for `verify` to reject.
    Unknown(u32),
}

impl From<u32> for HclHashType {
    fn from(v: u32) -> Self {
        match v {
            1 => HclHashType::Sha256,
            2 => HclHashType::Sha384,
            3 => HclHashType::Sha512,
            other => HclHashType::Unknown(other),
        }
    }
}

impl From<HclHashType> for u32 {
    fn from(h: HclHashType) -> Self {
        match h {
            HclHashType::Sha256 => 1,
            HclHashType::Sha384 => 2,
            HclHashType::Sha512 => 3,
            HclHashType::Unknown(v) => v,
        }
    }
}

/// A parsed HCL report carrying an SNP report. Unverified.
#[derive(Clone, PartialEq, Eq)]
pub struct HclReport {
    /// Header `version`.
    pub version: u32,
    /// Header `report_size`, kept as found (not checked: nothing reads by it).
    pub report_size: u32,
    /// Header `request_type`.
    pub request_type: u32,
    /// Header `status`.
    pub status: u32,
    /// Header reserved bytes.
    pub reserved: [u8; 12],
    /// The SNP report at offset 0x20.
    pub report: AttestationReport,
    /// IGVM request data `version`.
    pub request_data_version: u32,
    /// IGVM request data `report_type` (always 2, SEV-SNP, once parsed).
    pub report_type: u32,
    /// IGVM request data `report_data_hash_type`.
    pub hash_type: HclHashType,
    runtime_data: Vec<u8>,
}

impl HclReport {
    /// A new HCL report around `report` with the header values Azure writes (version 2,
    /// request type 2, status 0, IGVM request data version 1).
    pub fn new(report: AttestationReport, hash_type: HclHashType, runtime_data: Vec<u8>) -> Self {
        let total = HEADER_LEN + REPORT_SIZE + IGVM_FIXED_LEN + runtime_data.len();
        Self {
            version: 2,
            report_size: u32::try_from(total).unwrap_or(u32::MAX),
            request_type: 2,
            status: 0,
            reserved: [0; 12],
            report,
            request_data_version: 1,
            report_type: SNP_REPORT_TYPE,
            hash_type,
            runtime_data,
        }
    }

    /// Whether `bytes` starts with the HCL signature `"HCLA"`.
    pub fn is_hcl(bytes: &[u8]) -> bool {
        bytes.starts_with(&HCL_SIGNATURE)
    }

    /// Parses an HCL report; bytes after the variable data are ignored as padding.
    ///
    /// # Errors
    ///
    /// [`ParseError::HclSignature`] when the input does not start with `"HCLA"`;
    /// [`ParseError::Truncated`] when it ends inside the header, the SNP report, the IGVM
    /// request data or the `variable_data_size` bytes of runtime data;
    /// [`ParseError::HclReportType`] unless `report_type` is 2 (SEV-SNP);
    /// [`ParseError::HclDataSize`] when `data_size` != 20 + `variable_data_size`;
    /// any [`AttestationReport::from_bytes`] error for the embedded report.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if !Self::is_hcl(bytes) {
            let mut found = [0u8; 4];
            for (dst, src) in found.iter_mut().zip(bytes) {
                *dst = *src;
            }
            return Err(ParseError::HclSignature(found));
        }
        let truncated = |what, needed| ParseError::Truncated {
            what,
            needed,
            actual: bytes.len(),
        };
        let (header, rest) = RawHclHeader::read_from_prefix(bytes)
            .map_err(|_| truncated("HCL report header", HEADER_LEN))?;
        let (report_bytes, rest) = rest
            .split_at_checked(REPORT_SIZE)
            .ok_or_else(|| truncated("HCL report hardware report", HEADER_LEN + REPORT_SIZE))?;
        let (igvm, rest) = RawIgvmRequestData::read_from_prefix(rest).map_err(|_| {
            truncated(
                "HCL report IGVM request data",
                HEADER_LEN + REPORT_SIZE + IGVM_FIXED_LEN,
            )
        })?;

        let report_type = igvm.report_type.get();
        if report_type != SNP_REPORT_TYPE {
            return Err(ParseError::HclReportType(report_type));
        }
        let (data_size, variable_data_size) = (igvm.data_size.get(), igvm.variable_data_size.get());
        let consistent = usize::try_from(variable_data_size)
            .ok()
            .and_then(|v| v.checked_add(IGVM_FIXED_LEN))
            .is_some_and(|sum| usize::try_from(data_size).is_ok_and(|d| d == sum));
        if !consistent {
            return Err(ParseError::HclDataSize {
                data_size,
                fixed: IGVM_FIXED_LEN,
                variable_data_size,
            });
        }
        let var_len = usize::try_from(variable_data_size).unwrap_or(usize::MAX);
        let runtime_data = rest.get(..var_len).ok_or(ParseError::Truncated {
            what: "HCL report variable_data",
            needed: var_len,
            actual: rest.len(),
        })?;
        let report = AttestationReport::from_bytes(report_bytes)?;

        Ok(Self {
            version: header.version.get(),
            report_size: header.report_size.get(),
            request_type: header.request_type.get(),
            status: header.status.get(),
            reserved: header.reserved,
            report,
            request_data_version: igvm.version.get(),
            report_type,
            hash_type: HclHashType::from(igvm.report_data_hash_type.get()),
            runtime_data: runtime_data.to_vec(),
        })
    }

    /// The runtime data (IGVM `variable_data`) whose hash REPORT_DATA carries.
    pub fn runtime_data(&self) -> &[u8] {
        &self.runtime_data
    }

    /// The HCL report without trailing padding; `data_size` and `variable_data_size` are
    /// computed from the runtime data, every other field written as held.
    pub fn to_bytes(&self) -> Vec<u8> {
        let var_len = u32::try_from(self.runtime_data.len()).unwrap_or(u32::MAX);
        let fixed = u32::try_from(IGVM_FIXED_LEN).unwrap_or(u32::MAX);
        let header = RawHclHeader {
            signature: HCL_SIGNATURE,
            version: U32::new(self.version),
            report_size: U32::new(self.report_size),
            request_type: U32::new(self.request_type),
            status: U32::new(self.status),
            reserved: self.reserved,
        };
        let igvm = RawIgvmRequestData {
            data_size: U32::new(var_len.saturating_add(fixed)),
            version: U32::new(self.request_data_version),
            report_type: U32::new(self.report_type),
            report_data_hash_type: U32::new(self.hash_type.into()),
            variable_data_size: U32::new(var_len),
        };
        let mut out =
            Vec::with_capacity(HEADER_LEN + REPORT_SIZE + IGVM_FIXED_LEN + self.runtime_data.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(self.report.as_bytes());
        out.extend_from_slice(igvm.as_bytes());
        out.extend_from_slice(&self.runtime_data);
        out
    }
}

impl fmt::Debug for HclReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.runtime_data.get(..64).unwrap_or(&self.runtime_data);
        f.debug_struct("HclReport")
            .field("version", &self.version)
            .field("report_size", &self.report_size)
            .field("request_type", &self.request_type)
            .field("status", &self.status)
            .field("report", &self.report)
            .field("report_type", &self.report_type)
            .field("hash_type", &self.hash_type)
            .field("runtime_data_len", &self.runtime_data.len())
            .field("runtime_data_prefix", &HexBytes(shown))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::report::RawReport;
    use proptest::prelude::*;
    use zerocopy::FromZeros;

    fn sample() -> HclReport {
        let mut raw = RawReport::new_zeroed();
        raw.version = U32::new(3);
        let report = AttestationReport::from_raw(raw).unwrap();
        HclReport::new(report, HclHashType::Sha256, br#"{"keys":[]}"#.to_vec())
    }

    #[cfg_attr(
        not(tessera_vectors),
        ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
    )]
    #[test]
    fn real_hcl_reports() {
        let mut seen = 0;
        for case in crate::abi::report::tests::snp_cases() {
            let Ok(bytes) = std::fs::read(case.join("hcl_report.bin")) else {
                continue;
            };
            seen += 1;
            assert!(HclReport::is_hcl(&bytes));
            let hcl =
                HclReport::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
            let report = std::fs::read(case.join("report.bin")).unwrap();
            assert_eq!(
                hcl.report.as_bytes(),
                report.as_slice(),
                "{}",
                case.display()
            );
            assert_eq!(hcl.hash_type, HclHashType::Sha256);
            assert_eq!(hcl.report_type, 2);
            assert!(hcl.runtime_data().starts_with(b"{\""), "{}", case.display());
            assert!(hcl.runtime_data().ends_with(b"}"), "{}", case.display());
            let total = HEADER_LEN + REPORT_SIZE + IGVM_FIXED_LEN + hcl.runtime_data().len();
            assert_eq!(usize::try_from(hcl.report_size).unwrap(), total);
            // Canonical form is the input without its padding.
            let canonical = hcl.to_bytes();
            assert_eq!(canonical.as_slice(), &bytes[..canonical.len()]);
            assert!(bytes[canonical.len()..].iter().all(|&b| b == 0));
            assert_eq!(HclReport::parse(&canonical).unwrap(), hcl);
        }
        if crate::abi::report::tests::vectors_dir().is_some() {
            assert_eq!(seen, 5);
        }
    }

    #[cfg_attr(
        not(tessera_vectors),
        ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
    )]
    #[test]
    fn runtime_data_bound_matches_constellation_blob() {
        // Constellation stored the runtime-data header after a bare report: no HCL header.
        let Some(dir) = crate::abi::report::tests::vectors_dir() else {
            return;
        };
        let blob = std::fs::read(dir.join("snp/milan-v2_azure_constellation/attestation_raw.bin"))
            .unwrap();
        assert!(!HclReport::is_hcl(&blob));
        assert!(matches!(
            HclReport::parse(&blob),
            Err(ParseError::HclSignature(_))
        ));
    }

    #[test]
    fn rejects_wrong_signature() {
        let mut bytes = sample().to_bytes();
        bytes[3] = b'B';
        assert_eq!(
            HclReport::parse(&bytes),
            Err(ParseError::HclSignature(*b"HCLB"))
        );
        assert_eq!(
            HclReport::parse(b"HC"),
            Err(ParseError::HclSignature([b'H', b'C', 0, 0]))
        );
        assert_eq!(HclReport::parse(&[]), Err(ParseError::HclSignature([0; 4])));
    }

    #[test]
    fn rejects_variable_data_past_end() {
        let bytes = sample().to_bytes();
        let short = &bytes[..bytes.len() - 1];
        assert!(matches!(
            HclReport::parse(short),
            Err(ParseError::Truncated {
                what: "HCL report variable_data",
                ..
            })
        ));
        // A huge declared size with a consistent data_size.
        let mut huge = bytes.clone();
        let igvm = HEADER_LEN + REPORT_SIZE;
        huge[igvm..igvm + 4].copy_from_slice(&(u32::MAX).to_le_bytes());
        huge[igvm + 16..igvm + 20].copy_from_slice(&(u32::MAX - 20).to_le_bytes());
        assert!(matches!(
            HclReport::parse(&huge),
            Err(ParseError::Truncated { .. })
        ));
    }

    #[test]
    fn rejects_truncation_everywhere() {
        let bytes = sample().to_bytes();
        for len in [
            4,
            HEADER_LEN - 1,
            HEADER_LEN,
            HEADER_LEN + REPORT_SIZE,
            bytes.len() - 12,
        ] {
            assert!(
                matches!(
                    HclReport::parse(&bytes[..len]),
                    Err(ParseError::Truncated { .. })
                ),
                "len {len}"
            );
        }
    }

    #[test]
    fn rejects_inconsistent_fields() {
        let bytes = sample().to_bytes();
        let igvm = HEADER_LEN + REPORT_SIZE;
        let mut tdx = bytes.clone();
        tdx[igvm + 8..igvm + 12].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(HclReport::parse(&tdx), Err(ParseError::HclReportType(4)));
        let mut size = bytes.clone();
        size[igvm..igvm + 4].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            HclReport::parse(&size),
            Err(ParseError::HclDataSize { data_size: 0, .. })
        ));
        let mut version = bytes;
        version[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(
            HclReport::parse(&version),
            Err(ParseError::UnsupportedVersion(9))
        );
    }

    #[test]
    fn hash_type_values() {
        for v in 0..6u32 {
            assert_eq!(u32::from(HclHashType::from(v)), v);
        }
        assert_eq!(HclHashType::from(2), HclHashType::Sha384);
        assert_eq!(HclHashType::from(3), HclHashType::Sha512);
        assert_eq!(HclHashType::from(0), HclHashType::Unknown(0));
    }

    proptest! {
        #[test]
        fn round_trip(
            report_version in 2u32..=5,
            report_bytes in proptest::collection::vec(any::<u8>(), REPORT_SIZE),
            header in any::<(u32, u32, u32, u32, [u8; 12])>(),
            request_data_version: u32,
            hash in any::<u32>(),
            runtime_data in proptest::collection::vec(any::<u8>(), 0..600),
            padding in 0usize..100,
        ) {
            let mut raw = RawReport::read_from_bytes(&report_bytes).unwrap();
            raw.version = U32::new(report_version);
            let report = AttestationReport::from_raw(raw).unwrap();
            let mut hcl = HclReport::new(report, HclHashType::from(hash), runtime_data);
            (hcl.version, hcl.report_size, hcl.request_type, hcl.status, hcl.reserved) = header;
            hcl.request_data_version = request_data_version;
            let mut bytes = hcl.to_bytes();
            bytes.resize(bytes.len() + padding, 0);
            prop_assert_eq!(HclReport::parse(&bytes).unwrap(), hcl);
            crate::abi::fuzz_hcl(&bytes);
            crate::abi::fuzz_evidence(&bytes);
        }
    }
}
