//! The SEV-SNP `ATTESTATION_REPORT`: one layout for parsing, serializing and the signed bytes.
//!
//! Layout: AMD SEV-SNP Firmware ABI specification 56860, Table "ATTESTATION_REPORT Structure"
//! (section 7.3, "Attestation"), and Table "ECDSA P-384 with SHA-384 Signature" for the
//! `SIGNATURE` field. [`RawReport`] is the only description of the byte layout in this crate;
//! its size and the offsets that changed between versions are asserted at compile time.
//!
//! Versions:
//!
//! - 2: `CPUID_FAM_ID`/`CPUID_MOD_ID`/`CPUID_STEP` (0x188..0x18A) are reserved.
//! - 3: adds the CPUID bytes.
//! - 4: same layout as 3 (no report field was added with it; virtee's `sev` crate decodes
//!   `3 | 4` with its v3 layout, go-sev-guest reads CPUID for every version >= 3).
//! - 5 (ABI 1.58): adds `LAUNCH_MIT_VECTOR` (0x1F8) and `CURRENT_MIT_VECTOR` (0x200).
//!
//! Any other version is rejected: with an unknown layout no field can be trusted. The
//! signature algorithm and reserved bytes are *not* judged here; `verify` does that.

use core::fmt;

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::tcb::TcbVersion;
use super::{HexBytes, ParseError, REPORT_SIZE, SIGNED_LEN};

/// `ATTESTATION_REPORT` exactly as the firmware writes it (all integers little-endian).
///
/// Field names follow the specification. Reserved fields are kept so that a report
/// round-trips byte for byte and `verify` can inspect them.
#[derive(Clone, PartialEq, Eq, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawReport {
    /// `VERSION`: layout version of this report (2, 3, 4 or 5 accepted).
    pub version: U32,
    /// `GUEST_SVN`: the guest's security version number (from the ID block).
    pub guest_svn: U32,
    /// `POLICY`: the guest policy, see [`GuestPolicy`].
    pub policy: U64,
    /// `FAMILY_ID`: from the ID block.
    pub family_id: [u8; 16],
    /// `IMAGE_ID`: from the ID block.
    pub image_id: [u8; 16],
    /// `VMPL`: the VM privilege level that requested the report.
    pub vmpl: U32,
    /// `SIGNATURE_ALGO`: see [`SignatureAlgo`].
    pub signature_algo: U32,
    /// `CURRENT_TCB`: the platform's current TCB version.
    pub current_tcb: U64,
    /// `PLATFORM_INFO`: see [`PlatformInfo`].
    pub platform_info: U64,
    /// `SIGNER_INFO` (called `KEY_INFO`/flags in older revisions): see [`SignerInfo`].
    pub signer_info: U32,
    /// Reserved.
    pub reserved0: [u8; 4],
    /// `REPORT_DATA`: the 64 bytes the guest supplied.
    pub report_data: [u8; 64],
    /// `MEASUREMENT`: the launch digest.
    pub measurement: [u8; 48],
    /// `HOST_DATA`: data the host supplied at launch.
    pub host_data: [u8; 32],
    /// `ID_KEY_DIGEST`: SHA-384 of the ID public key that signed the ID block.
    pub id_key_digest: [u8; 48],
    /// `AUTHOR_KEY_DIGEST`: SHA-384 of the author public key, if any.
    pub author_key_digest: [u8; 48],
    /// `REPORT_ID`: the guest's report ID.
    pub report_id: [u8; 32],
    /// `REPORT_ID_MA`: the report ID of the guest's migration agent.
    pub report_id_ma: [u8; 32],
    /// `REPORTED_TCB`: the TCB version the report is signed under (the VCEK's TCB).
    pub reported_tcb: U64,
    /// `CPUID_FAM_ID` (v3+; reserved in v2): combined family (base + extended).
    pub cpuid_fam_id: u8,
    /// `CPUID_MOD_ID` (v3+; reserved in v2): combined model.
    pub cpuid_mod_id: u8,
    /// `CPUID_STEP` (v3+; reserved in v2): stepping.
    pub cpuid_step: u8,
    /// Reserved.
    pub reserved1: [u8; 21],
    /// `CHIP_ID`: unique chip identifier (zero when the host masks it).
    pub chip_id: [u8; 64],
    /// `COMMITTED_TCB`: the committed TCB version.
    pub committed_tcb: U64,
    /// `CURRENT_BUILD`: build number of the running firmware.
    pub current_build: u8,
    /// `CURRENT_MINOR`: minor version of the running firmware.
    pub current_minor: u8,
    /// `CURRENT_MAJOR`: major version of the running firmware.
    pub current_major: u8,
    /// Reserved.
    pub reserved2: u8,
    /// `COMMITTED_BUILD`: build number of the committed firmware.
    pub committed_build: u8,
    /// `COMMITTED_MINOR`: minor version of the committed firmware.
    pub committed_minor: u8,
    /// `COMMITTED_MAJOR`: major version of the committed firmware.
    pub committed_major: u8,
    /// Reserved.
    pub reserved3: u8,
    /// `LAUNCH_TCB`: the committed TCB version when the guest was launched or imported.
    pub launch_tcb: U64,
    /// `LAUNCH_MIT_VECTOR` (v5; reserved before).
    pub launch_mit_vector: U64,
    /// `CURRENT_MIT_VECTOR` (v5; reserved before).
    pub current_mit_vector: U64,
    /// Reserved.
    pub reserved4: [u8; 0x98],
    /// `SIGNATURE`: covers every byte before it.
    pub signature: EcdsaSignature,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RawReport>() == REPORT_SIZE);
    // Offsets from the specification table, checked against the one layout above.
    assert!(offset_of!(RawReport, signer_info) == 0x48);
    assert!(offset_of!(RawReport, report_data) == 0x50);
    assert!(offset_of!(RawReport, reported_tcb) == 0x180);
    assert!(offset_of!(RawReport, cpuid_fam_id) == 0x188);
    assert!(offset_of!(RawReport, chip_id) == 0x1A0);
    assert!(offset_of!(RawReport, committed_tcb) == 0x1E0);
    assert!(offset_of!(RawReport, launch_tcb) == 0x1F0);
    assert!(offset_of!(RawReport, launch_mit_vector) == 0x1F8);
    assert!(offset_of!(RawReport, current_mit_vector) == 0x200);
    assert!(offset_of!(RawReport, signature) == SIGNED_LEN);
    assert!(size_of::<EcdsaSignature>() == 0x200);
};

/// Length of one ECDSA P-384 signature component in the report (little-endian, zero-extended).
const ECDSA_COMPONENT_LEN: usize = 72;
/// Length of a P-384 scalar.
const P384_SCALAR_LEN: usize = 48;

/// `SIGNATURE` for `SIGNATURE_ALGO` 1: ECDSA P-384 with SHA-384 (spec 56860, Table
/// "ECDSA P-384 with SHA-384 Signature").
#[derive(Clone, PartialEq, Eq, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EcdsaSignature {
    /// `R`, little-endian, zero-extended to 72 bytes.
    pub r: [u8; ECDSA_COMPONENT_LEN],
    /// `S`, little-endian, zero-extended to 72 bytes.
    pub s: [u8; ECDSA_COMPONENT_LEN],
    /// Reserved (zero for algorithm 1).
    pub reserved: [u8; 368],
}

impl EcdsaSignature {
    /// The signature as big-endian `r || s`, 48 bytes each (IEEE P1363), as crypto libraries
    /// take it. `None` when `r` or `s` does not fit in 48 bytes (a non-zero byte among the
    /// upper 24 of either component): no valid P-384 signature looks like that.
    pub fn to_p1363_be(&self) -> Option<[u8; 2 * P384_SCALAR_LEN]> {
        let mut out = [0u8; 2 * P384_SCALAR_LEN];
        let (out_r, out_s) = out.split_at_mut(P384_SCALAR_LEN);
        component_to_be(&self.r, out_r)?;
        component_to_be(&self.s, out_s)?;
        Some(out)
    }
}

/// Writes the low 48 bytes of a 72-byte little-endian component into `out` big-endian.
fn component_to_be(le: &[u8; ECDSA_COMPONENT_LEN], out: &mut [u8]) -> Option<()> {
    let (low, high) = le.split_at(P384_SCALAR_LEN);
    if high.iter().any(|&b| b != 0) {
        return None;
    }
    for (dst, src) in out.iter_mut().zip(low.iter().rev()) {
        *dst = *src;
    }
    Some(())
}

/// `SIGNATURE_ALGO`: an integer newtype so an unknown value is kept (and rejected by
/// `verify`) rather than lost at parse time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SignatureAlgo(pub u32);

impl SignatureAlgo {
    /// ECDSA P-384 with SHA-384, the only algorithm the specification defines.
    pub const ECDSA_P384_SHA384: Self = Self(1);
}

/// `POLICY`: the guest policy the guest was launched with (spec 56860, Table
/// "Guest Policy Structure").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    const SMT: u32 = 16;
    const RESERVED_MBO: u32 = 17;
    const MIGRATE_MA: u32 = 18;
    const DEBUG: u32 = 19;
    const SINGLE_SOCKET: u32 = 20;
    const CXL_ALLOW: u32 = 21;
    const MEM_AES_256_XTS: u32 = 22;
    const RAPL_DIS: u32 = 23;
    const CIPHERTEXT_HIDING: u32 = 24;
    const PAGE_SWAP_DISABLE: u32 = 25;

    fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }

    /// The raw 64-bit value.
    pub fn bits(self) -> u64 {
        self.0
    }
    /// Bits 7:0, `ABI_MINOR`: minimum firmware ABI minor version.
    pub fn abi_minor(self) -> u8 {
        let [minor, ..] = self.0.to_le_bytes();
        minor
    }
    /// Bits 15:8, `ABI_MAJOR`: minimum firmware ABI major version.
    pub fn abi_major(self) -> u8 {
        let [_, major, ..] = self.0.to_le_bytes();
        major
    }
    /// Bit 16, `SMT`: simultaneous multithreading allowed.
    pub fn smt_allowed(self) -> bool {
        self.bit(Self::SMT)
    }
    /// Bit 17: reserved, must be one.
    pub fn reserved_bit17(self) -> bool {
        self.bit(Self::RESERVED_MBO)
    }
    /// Bit 18, `MIGRATE_MA`: association with a migration agent allowed.
    pub fn migrate_ma(self) -> bool {
        self.bit(Self::MIGRATE_MA)
    }
    /// Bit 19, `DEBUG`: debugging (host decryption) allowed.
    pub fn debug_allowed(self) -> bool {
        self.bit(Self::DEBUG)
    }
    /// Bit 20, `SINGLE_SOCKET`: guest may run on one socket only.
    pub fn single_socket(self) -> bool {
        self.bit(Self::SINGLE_SOCKET)
    }
    /// Bit 21, `CXL_ALLOW`: CXL may be populated with devices or memory.
    pub fn cxl_allowed(self) -> bool {
        self.bit(Self::CXL_ALLOW)
    }
    /// Bit 22, `MEM_AES_256_XTS`: AES-256-XTS required for memory encryption.
    pub fn mem_aes_256_xts(self) -> bool {
        self.bit(Self::MEM_AES_256_XTS)
    }
    /// Bit 23, `RAPL_DIS`: Running Average Power Limit must be disabled.
    pub fn rapl_dis(self) -> bool {
        self.bit(Self::RAPL_DIS)
    }
    /// Bit 24, `CIPHERTEXT_HIDING`: ciphertext hiding (DRAM) must be enabled.
    pub fn ciphertext_hiding(self) -> bool {
        self.bit(Self::CIPHERTEXT_HIDING)
    }
    /// Bit 25, `PAGE_SWAP_DISABLE`: guest page move/swap commands disabled.
    pub fn page_swap_disable(self) -> bool {
        self.bit(Self::PAGE_SWAP_DISABLE)
    }
    /// Bits 63:26 are reserved: true when all of them are zero.
    pub fn reserved_bits_zero(self) -> bool {
        self.0 >> (Self::PAGE_SWAP_DISABLE + 1) == 0
    }
}

/// `PLATFORM_INFO`: facts about the platform the report came from (spec 56860, Table
/// "PLATFORM_INFO Field").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }

    /// The raw 64-bit value.
    pub fn bits(self) -> u64 {
        self.0
    }
    /// Bit 0, `SMT_EN`: SMT is enabled.
    pub fn smt_enabled(self) -> bool {
        self.bit(0)
    }
    /// Bit 1, `TSME_EN`: transparent SME is enabled.
    pub fn tsme_enabled(self) -> bool {
        self.bit(1)
    }
    /// Bit 2, `ECC_EN`: the platform uses error-correcting memory.
    pub fn ecc_enabled(self) -> bool {
        self.bit(2)
    }
    /// Bit 3, `RAPL_DIS`: RAPL is disabled.
    pub fn rapl_disabled(self) -> bool {
        self.bit(3)
    }
    /// Bit 4, `CIPHERTEXT_HIDING_EN`: DRAM ciphertext hiding is enabled.
    pub fn ciphertext_hiding_enabled(self) -> bool {
        self.bit(4)
    }
    /// Bit 5, `ALIAS_CHECK_COMPLETE`: the memory alias check (BadRAM mitigation) completed.
    pub fn alias_check_complete(self) -> bool {
        self.bit(5)
    }
    /// Bit 7, `TIO_EN`: SEV-TIO is enabled.
    pub fn tio_enabled(self) -> bool {
        self.bit(7)
    }
}

/// `SIGNER_INFO` bits 4:2, `SIGNING_KEY`: which key signed the report.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SigningKey {
    /// 0: the VCEK.
    Vcek,
    /// 1: the VLEK.
    Vlek,
    /// 7: the report is not signed.
    None,
    /// 2 to 6: reserved.
    Reserved(u8),
}

/// `SIGNER_INFO`: how the report was signed (spec 56860, ATTESTATION_REPORT offset 0x48).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SignerInfo(pub u32);

impl SignerInfo {
    /// The raw 32-bit value.
    pub fn bits(self) -> u32 {
        self.0
    }
    /// Bit 0, `AUTHOR_KEY_EN`: the ID block carried an author key.
    pub fn author_key_en(self) -> bool {
        self.0 & 1 == 1
    }
    /// Bit 1, `MASK_CHIP_KEY`: the firmware's MaskChipKey setting: the report is not signed
    /// with the chip's key (its signature is zeros), so it proves nothing and is refused. Not to
    /// be confused with MaskChipId (a separate setting, not in the report), with which CHIP_ID
    /// reads as zeros and the VCEK's hwID cannot be compared.
    pub fn mask_chip_key(self) -> bool {
        (self.0 >> 1) & 1 == 1
    }
    /// Bits 4:2, `SIGNING_KEY`.
    pub fn signing_key(self) -> SigningKey {
        let [low, ..] = self.0.to_le_bytes();
        match (low >> 2) & 0b111 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => SigningKey::Reserved(other),
        }
    }
    /// Bits 31:5 are reserved: true when all of them are zero.
    pub fn reserved_bits_zero(self) -> bool {
        self.0 >> 5 == 0
    }
}

/// CPUID family, model and stepping from a v3+ report (combined values, e.g. family 0x19).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Cpuid {
    /// `CPUID_FAM_ID`: base family + extended family.
    pub family: u8,
    /// `CPUID_MOD_ID`: extended model << 4 | base model.
    pub model: u8,
    /// `CPUID_STEP`.
    pub stepping: u8,
}

/// A firmware version as the report states it (`CURRENT_*` / `COMMITTED_*`). Orders by
/// major, then minor, then build.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct FirmwareVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// A parsed `ATTESTATION_REPORT` of a known version. Unverified: it says what the bytes say.
#[derive(Clone, PartialEq, Eq)]
pub struct AttestationReport {
    raw: Box<RawReport>,
}

impl AttestationReport {
    /// Version 2: no CPUID bytes.
    const FIRST_VERSION: u32 = 2;
    /// Version 3 added CPUID family, model and stepping.
    const CPUID_SINCE: u32 = 3;
    /// Version 5 added the mitigation vectors.
    const MIT_VECTOR_SINCE: u32 = 5;
    /// The newest version whose layout is known.
    const LAST_VERSION: u32 = 5;

    /// Parses a report from exactly [`REPORT_SIZE`] bytes.
    ///
    /// # Errors
    ///
    /// [`ParseError::Length`] unless `bytes` is exactly `REPORT_SIZE` long;
    /// [`ParseError::UnsupportedVersion`] unless `VERSION` is 2, 3, 4 or 5.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ParseError> {
        let raw = RawReport::read_from_bytes(bytes).map_err(|_| ParseError::Length {
            what: "ATTESTATION_REPORT",
            expected: REPORT_SIZE,
            actual: bytes.len(),
        })?;
        Self::from_raw(raw)
    }

    /// Wraps a [`RawReport`] after the same checks as [`Self::from_bytes`].
    ///
    /// # Errors
    ///
    /// [`ParseError::UnsupportedVersion`] unless `VERSION` is 2, 3, 4 or 5.
    pub fn from_raw(raw: RawReport) -> Result<Self, ParseError> {
        let version = raw.version.get();
        if !(Self::FIRST_VERSION..=Self::LAST_VERSION).contains(&version) {
            return Err(ParseError::UnsupportedVersion(version));
        }
        Ok(Self { raw: Box::new(raw) })
    }

    /// The report's fields as laid out in the specification.
    pub fn raw(&self) -> &RawReport {
        &self.raw
    }

    /// All [`REPORT_SIZE`] bytes of the report.
    pub fn as_bytes(&self) -> &[u8] {
        self.raw.as_bytes()
    }

    /// The bytes the signature covers: offsets `0..SIGNED_LEN`.
    pub fn signed_bytes(&self) -> &[u8] {
        // Cannot fail: SIGNED_LEN < REPORT_SIZE is asserted at compile time.
        self.as_bytes().get(..SIGNED_LEN).unwrap_or_default()
    }

    /// `VERSION`.
    pub fn version(&self) -> u32 {
        self.raw.version.get()
    }
    /// `GUEST_SVN`.
    pub fn guest_svn(&self) -> u32 {
        self.raw.guest_svn.get()
    }
    /// `POLICY`.
    pub fn policy(&self) -> GuestPolicy {
        GuestPolicy(self.raw.policy.get())
    }
    /// `FAMILY_ID`.
    pub fn family_id(&self) -> &[u8; 16] {
        &self.raw.family_id
    }
    /// `IMAGE_ID`.
    pub fn image_id(&self) -> &[u8; 16] {
        &self.raw.image_id
    }
    /// `VMPL`.
    pub fn vmpl(&self) -> u32 {
        self.raw.vmpl.get()
    }
    /// `SIGNATURE_ALGO` (unknown values kept; `verify` rejects them).
    pub fn signature_algo(&self) -> SignatureAlgo {
        SignatureAlgo(self.raw.signature_algo.get())
    }
    /// `CURRENT_TCB`.
    pub fn current_tcb(&self) -> TcbVersion {
        TcbVersion(self.raw.current_tcb.get())
    }
    /// `PLATFORM_INFO`.
    pub fn platform_info(&self) -> PlatformInfo {
        PlatformInfo(self.raw.platform_info.get())
    }
    /// `SIGNER_INFO`.
    pub fn signer_info(&self) -> SignerInfo {
        SignerInfo(self.raw.signer_info.get())
    }
    /// `REPORT_DATA`.
    pub fn report_data(&self) -> &[u8; 64] {
        &self.raw.report_data
    }
    /// `MEASUREMENT`.
    pub fn measurement(&self) -> &[u8; 48] {
        &self.raw.measurement
    }
    /// `HOST_DATA`.
    pub fn host_data(&self) -> &[u8; 32] {
        &self.raw.host_data
    }
    /// `ID_KEY_DIGEST`.
    pub fn id_key_digest(&self) -> &[u8; 48] {
        &self.raw.id_key_digest
    }
    /// `AUTHOR_KEY_DIGEST`.
    pub fn author_key_digest(&self) -> &[u8; 48] {
        &self.raw.author_key_digest
    }
    /// `REPORT_ID`.
    pub fn report_id(&self) -> &[u8; 32] {
        &self.raw.report_id
    }
    /// `REPORT_ID_MA`.
    pub fn report_id_ma(&self) -> &[u8; 32] {
        &self.raw.report_id_ma
    }
    /// `REPORTED_TCB`.
    pub fn reported_tcb(&self) -> TcbVersion {
        TcbVersion(self.raw.reported_tcb.get())
    }
    /// `CPUID_FAM_ID`, `CPUID_MOD_ID`, `CPUID_STEP`; `None` for a v2 report, where those
    /// bytes are reserved.
    pub fn cpuid(&self) -> Option<Cpuid> {
        (self.version() >= Self::CPUID_SINCE).then_some(Cpuid {
            family: self.raw.cpuid_fam_id,
            model: self.raw.cpuid_mod_id,
            stepping: self.raw.cpuid_step,
        })
    }
    /// `CHIP_ID`.
    pub fn chip_id(&self) -> &[u8; 64] {
        &self.raw.chip_id
    }
    /// `COMMITTED_TCB`.
    pub fn committed_tcb(&self) -> TcbVersion {
        TcbVersion(self.raw.committed_tcb.get())
    }
    /// `CURRENT_MAJOR`, `CURRENT_MINOR`, `CURRENT_BUILD`.
    pub fn current_version(&self) -> FirmwareVersion {
        FirmwareVersion {
            major: self.raw.current_major,
            minor: self.raw.current_minor,
            build: self.raw.current_build,
        }
    }
    /// `COMMITTED_MAJOR`, `COMMITTED_MINOR`, `COMMITTED_BUILD`.
    pub fn committed_version(&self) -> FirmwareVersion {
        FirmwareVersion {
            major: self.raw.committed_major,
            minor: self.raw.committed_minor,
            build: self.raw.committed_build,
        }
    }
    /// `LAUNCH_TCB`.
    pub fn launch_tcb(&self) -> TcbVersion {
        TcbVersion(self.raw.launch_tcb.get())
    }
    /// `LAUNCH_MIT_VECTOR`; `None` before version 5.
    pub fn launch_mit_vector(&self) -> Option<u64> {
        (self.version() >= Self::MIT_VECTOR_SINCE).then(|| self.raw.launch_mit_vector.get())
    }
    /// `CURRENT_MIT_VECTOR`; `None` before version 5.
    pub fn current_mit_vector(&self) -> Option<u64> {
        (self.version() >= Self::MIT_VECTOR_SINCE).then(|| self.raw.current_mit_vector.get())
    }
    /// `SIGNATURE`, read as ECDSA P-384 (the only layout defined; check
    /// [`Self::signature_algo`] before relying on it).
    pub fn signature(&self) -> &EcdsaSignature {
        &self.raw.signature
    }
}

impl fmt::Debug for AttestationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AttestationReport");
        d.field("version", &self.version())
            .field("guest_svn", &self.guest_svn())
            .field("policy", &format_args!("{:#x}", self.policy().bits()))
            .field("vmpl", &self.vmpl())
            .field("signature_algo", &self.signature_algo().0)
            .field("signing_key", &self.signer_info().signing_key())
            .field(
                "platform_info",
                &format_args!("{:#x}", self.platform_info().bits()),
            )
            .field("current_tcb", &self.current_tcb())
            .field("reported_tcb", &self.reported_tcb())
            .field("committed_tcb", &self.committed_tcb())
            .field("launch_tcb", &self.launch_tcb())
            .field(
                "current_version",
                &format_args!("{}", self.current_version()),
            )
            .field(
                "committed_version",
                &format_args!("{}", self.committed_version()),
            )
            .field("cpuid", &self.cpuid())
            .field("measurement", &HexBytes(self.measurement()))
            .field("report_data", &HexBytes(self.report_data()))
            .field("host_data", &HexBytes(self.host_data()))
            .field("chip_id", &HexBytes(self.chip_id()));
        if let (Some(launch), Some(current)) = (self.launch_mit_vector(), self.current_mit_vector())
        {
            d.field("launch_mit_vector", &format_args!("{launch:#x}"))
                .field("current_mit_vector", &format_args!("{current:#x}"));
        }
        d.finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::abi::tcb::Product;
    use proptest::prelude::*;
    use std::path::PathBuf;
    use zerocopy::FromZeros;

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

    /// Every `snp/<case>/` folder.
    pub(crate) fn snp_cases() -> Vec<PathBuf> {
        let Some(dir) = vectors_dir() else {
            return Vec::new();
        };
        let mut cases: Vec<PathBuf> = std::fs::read_dir(dir.join("snp"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        cases.sort();
        cases
    }

    /// The integer after `"key":` in a JSON text (first occurrence), without a JSON parser.
    fn json_int(json: &str, key: &str) -> Option<u64> {
        let pat = format!("\"{key}\":");
        let rest = json[json.find(&pat)? + pat.len()..].trim_start();
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    }

    /// The string after `"key":` in a JSON text (first occurrence).
    fn json_str<'a>(json: &'a str, key: &str) -> Option<&'a str> {
        let pat = format!("\"{key}\":");
        let rest = json[json.find(&pat)? + pat.len()..].trim_start();
        let rest = rest.strip_prefix('"')?;
        Some(&rest[..rest.find('"')?])
    }

    fn valid_raw() -> RawReport {
        let mut raw = RawReport::new_zeroed();
        raw.version = U32::new(2);
        raw
    }

    #[cfg_attr(
        not(tessera_vectors),
        ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
    )]
    #[test]
    fn real_reports_parse_and_match_facts() {
        let mut parsed = 0;
        let mut rejected = 0;
        let mut checked_tcb = 0;
        for case in snp_cases() {
            let path = case.join("report.bin");
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let json = std::fs::read_to_string(case.join("case.json")).unwrap();
            let result = AttestationReport::from_bytes(&bytes);
            if bytes.len() != REPORT_SIZE {
                assert!(
                    matches!(result, Err(ParseError::Length { .. })),
                    "{}: {} bytes must be rejected",
                    path.display(),
                    bytes.len()
                );
                rejected += 1;
                continue;
            }
            let report = result.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            parsed += 1;
            assert_eq!(report.as_bytes(), bytes.as_slice());
            assert_eq!(report.signed_bytes(), &bytes[..0x2A0]);
            let name = case.display();
            if let Some(v) = json_int(&json, "report_version") {
                assert_eq!(u64::from(report.version()), v, "{name}: version");
            }
            if let Some(v) = json_int(&json, "vmpl") {
                assert_eq!(u64::from(report.vmpl()), v, "{name}: vmpl");
            }
            if let Some(p) = json_str(&json, "policy") {
                let p = u64::from_str_radix(p.trim_start_matches("0x"), 16).unwrap();
                assert_eq!(report.policy().bits(), p, "{name}: policy");
            }
            if let Some(k) = json_str(&json, "signing_key") {
                let expect = match k {
                    "VCEK" => Some(SigningKey::Vcek),
                    "VLEK" => Some(SigningKey::Vlek),
                    _ => None,
                };
                if let Some(expect) = expect {
                    assert_eq!(report.signer_info().signing_key(), expect, "{name}: signer");
                }
            }
            let product = json_str(&json, "product").and_then(|p| p.parse::<Product>().ok());
            let tcb_json = json.find("\"reported_tcb\"").map(|at| &json[at..]);
            if let (Some(product), Some(tcb_json)) = (product, tcb_json) {
                let tcb = report.reported_tcb().decode(product);
                let fact = |key| json_int(tcb_json, key);
                assert_eq!(Some(u64::from(tcb.bootloader)), fact("bl"), "{name}: bl");
                assert_eq!(Some(u64::from(tcb.tee)), fact("tee"), "{name}: tee");
                assert_eq!(Some(u64::from(tcb.snp)), fact("snp"), "{name}: snp");
                assert_eq!(
                    Some(u64::from(tcb.microcode)),
                    fact("ucode"),
                    "{name}: ucode"
                );
                checked_tcb += 1;
            }
            if let (Some(product), Some(cpuid)) = (product, report.cpuid()) {
                assert_eq!(Product::from_cpuid(cpuid), Some(product), "{name}: cpuid");
            }
            assert_eq!(report.cpuid().is_some(), report.version() >= 3);
            assert_eq!(report.launch_mit_vector().is_some(), report.version() >= 5);
            assert!(format!("{report:?}").contains(&format!("version: {}", report.version())));
        }
        if vectors_dir().is_some() {
            assert!(parsed >= 50, "only {parsed} reports parsed");
            assert_eq!(rejected, 3, "the 1185-, 1185- and 793-byte files");
            assert!(
                checked_tcb >= 40,
                "only {checked_tcb} reported_tcb facts checked"
            );
        }
    }

    #[cfg_attr(
        not(tessera_vectors),
        ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
    )]
    #[test]
    fn odd_sized_files_rejected() {
        let Some(dir) = vectors_dir() else { return };
        for (case, len) in [
            ("neg_lit_report-bad-sig-1185", 1185),
            ("neg_lit_report-bad-sig-1185-b", 1185),
            ("neg_lit_report-truncated-793", 793),
        ] {
            let bytes = std::fs::read(dir.join("snp").join(case).join("report.bin")).unwrap();
            assert_eq!(bytes.len(), len);
            assert_eq!(
                AttestationReport::from_bytes(&bytes),
                Err(ParseError::Length {
                    what: "ATTESTATION_REPORT",
                    expected: REPORT_SIZE,
                    actual: len
                })
            );
        }
    }

    #[test]
    fn length_checked() {
        let raw = valid_raw();
        let bytes = raw.as_bytes();
        assert!(AttestationReport::from_bytes(bytes).is_ok());
        for len in [0, 1, REPORT_SIZE - 1, REPORT_SIZE + 1, 2 * REPORT_SIZE] {
            let mut v = bytes.to_vec();
            v.resize(len, 0);
            assert!(matches!(
                AttestationReport::from_bytes(&v),
                Err(ParseError::Length { actual, .. }) if actual == len
            ));
        }
    }

    #[test]
    fn unknown_versions_rejected() {
        for v in [0, 1, 6, 0xFFFF_FFFF] {
            let mut raw = valid_raw();
            raw.version = U32::new(v);
            assert_eq!(
                AttestationReport::from_bytes(raw.as_bytes()),
                Err(ParseError::UnsupportedVersion(v))
            );
            assert_eq!(
                AttestationReport::from_raw(raw),
                Err(ParseError::UnsupportedVersion(v))
            );
        }
        for v in 2..=5 {
            let mut raw = valid_raw();
            raw.version = U32::new(v);
            assert_eq!(AttestationReport::from_raw(raw).unwrap().version(), v);
        }
    }

    #[test]
    fn algo_and_reserved_not_judged_at_parse() {
        let mut raw = valid_raw();
        raw.signature_algo = U32::new(7);
        raw.reserved0 = [0xFF; 4];
        raw.reserved4 = [0xAA; 0x98];
        raw.signature.reserved = [1; 368];
        let report = AttestationReport::from_raw(raw).unwrap();
        assert_eq!(report.signature_algo(), SignatureAlgo(7));
        assert_ne!(report.signature_algo(), SignatureAlgo::ECDSA_P384_SHA384);
    }

    #[test]
    fn version_dependent_fields() {
        let mut raw = valid_raw();
        raw.cpuid_fam_id = 0x19;
        raw.cpuid_mod_id = 0x11;
        raw.cpuid_step = 1;
        raw.launch_mit_vector = U64::new(3);
        raw.current_mit_vector = U64::new(7);
        let v2 = AttestationReport::from_raw(raw.clone()).unwrap();
        assert_eq!(v2.cpuid(), None);
        assert_eq!(v2.launch_mit_vector(), None);
        raw.version = U32::new(4);
        let v4 = AttestationReport::from_raw(raw.clone()).unwrap();
        let cpuid = Cpuid {
            family: 0x19,
            model: 0x11,
            stepping: 1,
        };
        assert_eq!(v4.cpuid(), Some(cpuid));
        assert_eq!(v4.current_mit_vector(), None);
        raw.version = U32::new(5);
        let v5 = AttestationReport::from_raw(raw).unwrap();
        assert_eq!(v5.launch_mit_vector(), Some(3));
        assert_eq!(v5.current_mit_vector(), Some(7));
    }

    #[test]
    fn bit_fields() {
        let p = GuestPolicy(0x3_0000 | (1 << 19) | (1 << 25) | 0x0203);
        assert!(p.smt_allowed() && p.reserved_bit17() && p.debug_allowed());
        assert!(p.page_swap_disable() && !p.migrate_ma() && !p.single_socket());
        assert!(!p.cxl_allowed() && !p.mem_aes_256_xts() && !p.rapl_dis());
        assert!(!p.ciphertext_hiding() && p.reserved_bits_zero());
        assert_eq!((p.abi_major(), p.abi_minor()), (2, 3));
        assert!(!GuestPolicy(1 << 26).reserved_bits_zero());

        let pi = PlatformInfo(0b1010_0101);
        assert!(pi.smt_enabled() && !pi.tsme_enabled() && pi.ecc_enabled());
        assert!(!pi.rapl_disabled() && !pi.ciphertext_hiding_enabled());
        assert!(pi.alias_check_complete() && pi.tio_enabled());

        assert_eq!(SignerInfo(0).signing_key(), SigningKey::Vcek);
        assert_eq!(SignerInfo(1 << 2).signing_key(), SigningKey::Vlek);
        assert_eq!(SignerInfo(7 << 2).signing_key(), SigningKey::None);
        assert_eq!(SignerInfo(3 << 2).signing_key(), SigningKey::Reserved(3));
        let s = SignerInfo(0b11 | (1 << 2));
        assert!(s.author_key_en() && s.mask_chip_key() && s.reserved_bits_zero());
        assert!(!SignerInfo(1 << 5).reserved_bits_zero());
    }

    #[test]
    fn firmware_versions() {
        let mut raw = valid_raw();
        (raw.current_major, raw.current_minor, raw.current_build) = (1, 55, 21);
        (
            raw.committed_major,
            raw.committed_minor,
            raw.committed_build,
        ) = (1, 55, 20);
        let r = AttestationReport::from_raw(raw).unwrap();
        assert_eq!(r.current_version().to_string(), "1.55.21");
        assert!(r.current_version() > r.committed_version());
    }

    #[test]
    fn signature_to_p1363() {
        let mut sig = EcdsaSignature::new_zeroed();
        for i in 0..48u8 {
            sig.r[usize::from(i)] = i + 1;
            sig.s[usize::from(i)] = 0x80 + i;
        }
        let be = sig.to_p1363_be().unwrap();
        assert_eq!(be[0], 48);
        assert_eq!(be[47], 1);
        assert_eq!(be[48], 0x80 + 47);
        assert_eq!(be[95], 0x80);
        let mut high_r = sig.clone();
        high_r.r[48] = 1;
        assert_eq!(high_r.to_p1363_be(), None);
        let mut high_s = sig;
        high_s.s[71] = 1;
        assert_eq!(high_s.to_p1363_be(), None);
    }

    fn arb_raw() -> impl Strategy<Value = RawReport> {
        (
            2u32..=5,
            proptest::collection::vec(any::<u8>(), REPORT_SIZE),
        )
            .prop_map(|(version, bytes)| {
                let mut raw = RawReport::read_from_bytes(&bytes).unwrap();
                raw.version = U32::new(version);
                raw
            })
    }

    proptest! {
        #[test]
        fn raw_round_trip(raw in arb_raw()) {
            let report = AttestationReport::from_raw(raw.clone()).unwrap();
            prop_assert_eq!(report.raw(), &raw);
            let again = AttestationReport::from_bytes(report.as_bytes()).unwrap();
            prop_assert_eq!(&again, &report);
            prop_assert_eq!(again.as_bytes(), raw.as_bytes());
            crate::abi::fuzz_report(raw.as_bytes());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1300)) {
            crate::abi::fuzz_report(&bytes);
        }
    }
}
