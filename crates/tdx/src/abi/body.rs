//! Quote bodies: the SGX enclave report and the TD reports (1.0, 1.5, 1.5ex), one layout each.
//!
//! Layouts: Intel "TDX DCAP Quote Generation Library and Quote Verification Library API",
//! appendix "Quote Format", tables "Enclave Report" (`sgx_report_body_t`, 384 bytes),
//! "TD Quote Body" (`sgx_report2_body_t`, TD 1.0, 584 bytes) and, for v5, "TD Quote Body for
//! TDX 1.5" (`sgx_report2_body_v1_5_t`, 648 bytes). The 1.5ex body (v5 body type 4,
//! `sgx_report2_body_v1_5_ex_t`, 885 bytes) is not in the API document yet: its layout is
//! Intel's `sgx_quote_5.h` (SGX SDK / DCAP `common/inc`), with every offset listed there
//! asserted below. Each `Raw*` struct is the only description of a byte layout in this crate;
//! the public structs are its typed view, and `parse`/`to_bytes` convert between the two.
//!
//! Bit fields: `TDATTRIBUTES` per the Intel TDX Module ABI specification ("TD Attributes");
//! SGX `ATTRIBUTES` per the Intel SDM vol. 3D ("SECS", `ATTRIBUTES` field).

use core::fmt;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{HexBytes, ParseError};

/// `sgx_report_body_t` as it appears in a quote (all integers little-endian). Three spans hold
/// the key separation and sharing (KSS) fields between reserved bytes, as Intel's table lists
/// them; each span is one array of the public [`EnclaveReport`].
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawEnclaveReport {
    cpu_svn: [u8; 16],
    misc_select: U32,
    ext_prod_id_span: RawExtProdIdSpan,
    attributes: [u8; 16],
    mr_enclave: [u8; 32],
    reserved2: [u8; 32],
    mr_signer: [u8; 32],
    config_id_span: RawConfigIdSpan,
    isv_prod_id: U16,
    isv_svn: U16,
    config_svn_span: RawConfigSvnSpan,
    report_data: [u8; 64],
}

/// Enclave report bytes 20..48: `reserved1` (12 bytes), then `isv_ext_prod_id`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawExtProdIdSpan {
    reserved1: [u8; 12],
    isv_ext_prod_id: [u8; 16],
}

/// Enclave report bytes 160..256: `reserved3` (32 bytes), then `config_id`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawConfigIdSpan {
    reserved3: [u8; 32],
    config_id: [u8; 64],
}

/// Enclave report bytes 260..320: `config_svn`, `reserved4` (42 bytes), then `isv_family_id`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawConfigSvnSpan {
    config_svn: U16,
    reserved4: [u8; 42],
    isv_family_id: [u8; 16],
}

/// `sgx_report2_body_t`: the TD 1.0 quote body.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawTdReport10 {
    tee_tcb_svn: [u8; 16],
    mr_seam: [u8; 48],
    mr_signer_seam: [u8; 48],
    seam_attributes: [u8; 8],
    td_attributes: U64,
    xfam: U64,
    mr_td: [u8; 48],
    mr_config_id: [u8; 48],
    mr_owner: [u8; 48],
    mr_owner_config: [u8; 48],
    rtmr: [[u8; 48]; 4],
    report_data: [u8; 64],
}

/// `sgx_report2_body_v1_5_t`: the TD 1.5 quote body.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawTdReport15 {
    base: RawTdReport10,
    tee_tcb_svn2: [u8; 16],
    mr_service_td: [u8; 48],
}

/// `sgx_report2_body_v1_5_ex_t`: the TD 1.5 "extended" quote body (v5 body type 4).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct RawTdReport15Ex {
    base: RawTdReport15,
    vmid: u8,
    td_id: [u8; 32],
    dev_info: [u8; 48],
    init_servtd_hash: [u8; 48],
    init_servtd_attributes: [u8; 8],
    init_cpu_svn: [u8; 16],
    init_tee_tcb_svn: [u8; 16],
    init_tee_fmspc: [u8; 12],
    current_servtd_hash: [u8; 48],
    current_servtd_attributes: [u8; 8],
}

const _: () = {
    use core::mem::{offset_of, size_of};
    // Enclave report, offsets from the "Enclave Report" table.
    assert!(size_of::<RawEnclaveReport>() == EnclaveReport::SIZE);
    // The KSS fields and the reserved spans around them as in Intel's `sgx_report_body_t`
    // (`sgx_report.h`: reserved1 12 bytes, reserved3 32, reserved4 42).
    assert!(offset_of!(RawEnclaveReport, misc_select) == 16);
    assert!(offset_of!(RawEnclaveReport, ext_prod_id_span.reserved1) == 20);
    assert!(offset_of!(RawEnclaveReport, ext_prod_id_span.isv_ext_prod_id) == 32);
    assert!(offset_of!(RawEnclaveReport, attributes) == 48);
    assert!(offset_of!(RawEnclaveReport, mr_enclave) == 64);
    assert!(offset_of!(RawEnclaveReport, reserved2) == 96);
    assert!(offset_of!(RawEnclaveReport, mr_signer) == 128);
    assert!(offset_of!(RawEnclaveReport, config_id_span.reserved3) == 160);
    assert!(offset_of!(RawEnclaveReport, config_id_span.config_id) == 192);
    assert!(offset_of!(RawEnclaveReport, isv_prod_id) == 256);
    assert!(offset_of!(RawEnclaveReport, isv_svn) == 258);
    assert!(offset_of!(RawEnclaveReport, config_svn_span.config_svn) == 260);
    assert!(offset_of!(RawEnclaveReport, config_svn_span.reserved4) == 262);
    assert!(offset_of!(RawEnclaveReport, config_svn_span.isv_family_id) == 304);
    assert!(offset_of!(RawEnclaveReport, report_data) == 320);
    // Each span is exactly the public array that holds it.
    assert!(size_of::<RawExtProdIdSpan>() == 28);
    assert!(size_of::<RawConfigIdSpan>() == 96);
    assert!(size_of::<RawConfigSvnSpan>() == 60);
    // TD 1.0, offsets from `sgx_report2_body_t`.
    assert!(size_of::<RawTdReport10>() == TdReport10::SIZE);
    assert!(offset_of!(RawTdReport10, mr_seam) == 16);
    assert!(offset_of!(RawTdReport10, mr_signer_seam) == 64);
    assert!(offset_of!(RawTdReport10, seam_attributes) == 112);
    assert!(offset_of!(RawTdReport10, td_attributes) == 120);
    assert!(offset_of!(RawTdReport10, xfam) == 128);
    assert!(offset_of!(RawTdReport10, mr_td) == 136);
    assert!(offset_of!(RawTdReport10, mr_config_id) == 184);
    assert!(offset_of!(RawTdReport10, mr_owner) == 232);
    assert!(offset_of!(RawTdReport10, mr_owner_config) == 280);
    assert!(offset_of!(RawTdReport10, rtmr) == 328);
    assert!(offset_of!(RawTdReport10, report_data) == 520);
    // TD 1.5, `sgx_report2_body_v1_5_t`.
    assert!(size_of::<RawTdReport15>() == TdReport15::SIZE);
    assert!(offset_of!(RawTdReport15, tee_tcb_svn2) == 584);
    assert!(offset_of!(RawTdReport15, mr_service_td) == 600);
    // TD 1.5ex, `sgx_report2_body_v1_5_ex_t`.
    assert!(size_of::<RawTdReport15Ex>() == TdReport15Ex::SIZE);
    assert!(offset_of!(RawTdReport15Ex, vmid) == 648);
    assert!(offset_of!(RawTdReport15Ex, td_id) == 649);
    assert!(offset_of!(RawTdReport15Ex, dev_info) == 681);
    assert!(offset_of!(RawTdReport15Ex, init_servtd_hash) == 729);
    assert!(offset_of!(RawTdReport15Ex, init_servtd_attributes) == 777);
    assert!(offset_of!(RawTdReport15Ex, init_cpu_svn) == 785);
    assert!(offset_of!(RawTdReport15Ex, init_tee_tcb_svn) == 801);
    assert!(offset_of!(RawTdReport15Ex, init_tee_fmspc) == 817);
    assert!(offset_of!(RawTdReport15Ex, current_servtd_hash) == 829);
    assert!(offset_of!(RawTdReport15Ex, current_servtd_attributes) == 877);
};

/// `TDATTRIBUTES`: the TD's attributes (Intel TDX Module ABI, "TD Attributes").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TdAttributes(pub u64);

impl TdAttributes {
    fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }
    /// The raw 64-bit value.
    pub fn bits(self) -> u64 {
        self.0
    }
    /// Bits 7:0, the TUD ("TD under debug") group: any bit set means the TD is not trusted.
    pub fn tud(self) -> u8 {
        let [tud, ..] = self.0.to_le_bytes();
        tud
    }
    /// Bits 31:8, the SEC group (attributes that may affect the TD's security), shifted down.
    pub fn sec(self) -> u32 {
        let [_, b1, b2, b3, ..] = self.0.to_le_bytes();
        u32::from_le_bytes([b1, b2, b3, 0])
    }
    /// Bits 63:32, the OTHER group (attributes that do not affect security), shifted down.
    pub fn other(self) -> u32 {
        let [_, _, _, _, b4, b5, b6, b7] = self.0.to_le_bytes();
        u32::from_le_bytes([b4, b5, b6, b7])
    }
    /// Bit 0, `DEBUG`: the TD runs in debug mode (the host can read its state and memory).
    pub fn debug(self) -> bool {
        self.bit(0)
    }
    /// Bit 28, `SEPT_VE_DISABLE`: EPT violations on pending pages do not become #VE.
    pub fn sept_ve_disable(self) -> bool {
        self.bit(28)
    }
    /// Bit 29, `MIGRATABLE`: the TD may be migrated.
    pub fn migratable(self) -> bool {
        self.bit(29)
    }
    /// Bit 30, `PKS`: the TD may use supervisor protection keys.
    pub fn pks(self) -> bool {
        self.bit(30)
    }
    /// Bit 31, `KL`: the TD may use Key Locker.
    pub fn kl(self) -> bool {
        self.bit(31)
    }
    /// Bit 63, `PERFMON`: the TD may use perfmon and `PERF_METRICS`.
    pub fn perfmon(self) -> bool {
        self.bit(63)
    }
}

/// `XFAM`: the extended features (XCR0/IA32_XSS bits) the TD may use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Xfam(pub u64);

impl Xfam {
    /// The raw 64-bit value.
    pub fn bits(self) -> u64 {
        self.0
    }
}

/// SGX `ATTRIBUTES` (16 bytes: `FLAGS` u64, then `XFRM` u64, little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SgxAttributes(pub [u8; 16]);

impl SgxAttributes {
    fn flag(self, n: u32) -> bool {
        (self.flags() >> n) & 1 == 1
    }
    /// The attributes from their 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
    /// The 16 bytes (`FLAGS` then `XFRM`, little-endian), as the report carries them.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }
    /// The first 8 bytes, `FLAGS`.
    pub fn flags(self) -> u64 {
        let [f0, f1, f2, f3, f4, f5, f6, f7, ..] = self.0;
        u64::from_le_bytes([f0, f1, f2, f3, f4, f5, f6, f7])
    }
    /// The last 8 bytes, `XFRM`.
    pub fn xfrm(self) -> u64 {
        let [.., x0, x1, x2, x3, x4, x5, x6, x7] = self.0;
        u64::from_le_bytes([x0, x1, x2, x3, x4, x5, x6, x7])
    }
    /// `FLAGS` bit 0, `INIT`: the enclave was initialized.
    pub fn init(self) -> bool {
        self.flag(0)
    }
    /// `FLAGS` bit 1, `DEBUG`: the enclave is a debug enclave (its memory is readable).
    pub fn debug(self) -> bool {
        self.flag(1)
    }
    /// `FLAGS` bit 2, `MODE64BIT`: the enclave runs in 64-bit mode.
    pub fn mode64bit(self) -> bool {
        self.flag(2)
    }
    /// `FLAGS` bit 4, `PROVISIONKEY`: the enclave may request the provisioning key.
    pub fn provision_key(self) -> bool {
        self.flag(4)
    }
    /// `FLAGS` bit 5, `EINITTOKEN_KEY`: the enclave may request the EINIT token key.
    pub fn einittoken_key(self) -> bool {
        self.flag(5)
    }
    /// `FLAGS` bit 7, `KSS`: key separation and sharing is enabled.
    pub fn kss(self) -> bool {
        self.flag(7)
    }
}

impl fmt::Debug for SgxAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SgxAttributes {{ flags: {:#x}, xfrm: {:#x} }}",
            self.flags(),
            self.xfrm()
        )
    }
}

/// An SGX enclave report (`sgx_report_body_t`): the body of an SGX quote, and the QE report
/// inside every quote's certification data.
///
/// The key separation and sharing (KSS) fields `ISVEXTPRODID`, `CONFIGID`, `CONFIGSVN` and
/// `ISVFAMILYID` lie inside the three byte arrays `reserved1`, `reserved3` and `reserved4`
/// (each spanning Intel's reserved field and the KSS fields beside it, kept byte for byte);
/// read them with [`Self::isv_ext_prod_id`], [`Self::config_id`], [`Self::config_svn`] and
/// [`Self::isv_family_id`]. With `ATTRIBUTES.KSS` set they are part of the enclave's identity:
/// the signer chose `ISVEXTPRODID` and `ISVFAMILYID` (SIGSTRUCT), the untrusted loader chose
/// `CONFIGID` and `CONFIGSVN` (at ECREATE).
#[derive(Clone, PartialEq, Eq)]
pub struct EnclaveReport {
    /// `CPUSVN`: the CPU's security version.
    pub cpu_svn: [u8; 16],
    /// `MISCSELECT`: extended SSA frame features.
    pub misc_select: u32,
    /// Bytes 20..48: Intel's `reserved1` (12 bytes, 20..32), then `ISVEXTPRODID` (16 bytes,
    /// 32..48; [`Self::isv_ext_prod_id`]).
    pub reserved1: [u8; 28],
    /// `ATTRIBUTES`.
    pub attributes: SgxAttributes,
    /// `MRENCLAVE`: SHA-256 of the enclave's initial contents.
    pub mr_enclave: [u8; 32],
    /// Reserved.
    pub reserved2: [u8; 32],
    /// `MRSIGNER`: SHA-256 of the enclave signer's public key modulus.
    pub mr_signer: [u8; 32],
    /// Bytes 160..256: Intel's `reserved3` (32 bytes, 160..192), then `CONFIGID` (64 bytes,
    /// 192..256; [`Self::config_id`]).
    pub reserved3: [u8; 96],
    /// `ISVPRODID`: product id the signer assigned.
    pub isv_prod_id: u16,
    /// `ISVSVN`: security version the signer assigned.
    pub isv_svn: u16,
    /// Bytes 260..320: `CONFIGSVN` (u16, 260..262; [`Self::config_svn`]), Intel's `reserved4`
    /// (42 bytes, 262..304), then `ISVFAMILYID` (16 bytes, 304..320; [`Self::isv_family_id`]).
    pub reserved4: [u8; 60],
    /// `REPORTDATA`: the 64 bytes the enclave supplied.
    pub report_data: [u8; 64],
}

impl EnclaveReport {
    /// Size in bytes.
    pub const SIZE: usize = 384;
    /// v5 `Quote Body Type` of an SGX enclave report.
    pub const BODY_TYPE: u16 = 1;

    /// Reads an enclave report from exactly [`Self::SIZE`] bytes.
    ///
    /// # Errors
    ///
    /// [`ParseError::Length`] unless `bytes` is exactly 384 bytes long.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let raw = RawEnclaveReport::ref_from_bytes(bytes).map_err(|_| ParseError::Length {
            what: "enclave report",
            expected: Self::SIZE,
            actual: bytes.len(),
        })?;
        Ok(Self::from_raw(raw))
    }

    /// The 384 bytes of the report, exactly as a quote carries them.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        zerocopy::transmute!(self.to_raw())
    }

    /// `ISVEXTPRODID` (bytes 32..48): the extended product id the signer assigned in the
    /// SIGSTRUCT. Meaningful with `ATTRIBUTES.KSS`.
    pub fn isv_ext_prod_id(&self) -> [u8; 16] {
        self.ext_prod_id_span().isv_ext_prod_id
    }

    /// `CONFIGID` (bytes 192..256): the configuration id the enclave's loader chose at ECREATE
    /// (with `ATTRIBUTES.KSS`; zero otherwise).
    pub fn config_id(&self) -> [u8; 64] {
        self.config_id_span().config_id
    }

    /// `CONFIGSVN` (bytes 260..262): the security version of the configuration, chosen by the
    /// loader with `CONFIGID` (with `ATTRIBUTES.KSS`; zero otherwise).
    pub fn config_svn(&self) -> u16 {
        self.config_svn_span().config_svn.get()
    }

    /// `ISVFAMILYID` (bytes 304..320): the product family id the signer assigned in the
    /// SIGSTRUCT. Meaningful with `ATTRIBUTES.KSS`.
    pub fn isv_family_id(&self) -> [u8; 16] {
        self.config_svn_span().isv_family_id
    }

    /// Set `ISVEXTPRODID` (bytes 32..48 of `reserved1`), leaving the reserved bytes as they are.
    pub fn set_isv_ext_prod_id(&mut self, value: [u8; 16]) {
        let mut span = self.ext_prod_id_span();
        span.isv_ext_prod_id = value;
        self.reserved1 = zerocopy::transmute!(span);
    }

    /// Set `CONFIGID` (bytes 192..256 of `reserved3`), leaving the reserved bytes as they are.
    pub fn set_config_id(&mut self, value: [u8; 64]) {
        let mut span = self.config_id_span();
        span.config_id = value;
        self.reserved3 = zerocopy::transmute!(span);
    }

    /// Set `CONFIGSVN` (bytes 260..262 of `reserved4`), leaving the other bytes as they are.
    pub fn set_config_svn(&mut self, value: u16) {
        let mut span = self.config_svn_span();
        span.config_svn = U16::new(value);
        self.reserved4 = zerocopy::transmute!(span);
    }

    /// Set `ISVFAMILYID` (bytes 304..320 of `reserved4`), leaving the other bytes as they are.
    pub fn set_isv_family_id(&mut self, value: [u8; 16]) {
        let mut span = self.config_svn_span();
        span.isv_family_id = value;
        self.reserved4 = zerocopy::transmute!(span);
    }

    fn ext_prod_id_span(&self) -> RawExtProdIdSpan {
        zerocopy::transmute!(self.reserved1)
    }

    fn config_id_span(&self) -> RawConfigIdSpan {
        zerocopy::transmute!(self.reserved3)
    }

    fn config_svn_span(&self) -> RawConfigSvnSpan {
        zerocopy::transmute!(self.reserved4)
    }

    fn from_raw(raw: &RawEnclaveReport) -> Self {
        Self {
            cpu_svn: raw.cpu_svn,
            misc_select: raw.misc_select.get(),
            reserved1: zerocopy::transmute!(raw.ext_prod_id_span),
            attributes: SgxAttributes(raw.attributes),
            mr_enclave: raw.mr_enclave,
            reserved2: raw.reserved2,
            mr_signer: raw.mr_signer,
            reserved3: zerocopy::transmute!(raw.config_id_span),
            isv_prod_id: raw.isv_prod_id.get(),
            isv_svn: raw.isv_svn.get(),
            reserved4: zerocopy::transmute!(raw.config_svn_span),
            report_data: raw.report_data,
        }
    }

    fn to_raw(&self) -> RawEnclaveReport {
        RawEnclaveReport {
            cpu_svn: self.cpu_svn,
            misc_select: U32::new(self.misc_select),
            ext_prod_id_span: self.ext_prod_id_span(),
            attributes: self.attributes.0,
            mr_enclave: self.mr_enclave,
            reserved2: self.reserved2,
            mr_signer: self.mr_signer,
            config_id_span: self.config_id_span(),
            isv_prod_id: U16::new(self.isv_prod_id),
            isv_svn: U16::new(self.isv_svn),
            config_svn_span: self.config_svn_span(),
            report_data: self.report_data,
        }
    }
}

impl fmt::Debug for EnclaveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnclaveReport")
            .field("cpu_svn", &HexBytes(&self.cpu_svn))
            .field("misc_select", &format_args!("{:#x}", self.misc_select))
            .field("attributes", &self.attributes)
            .field("mr_enclave", &HexBytes(&self.mr_enclave))
            .field("mr_signer", &HexBytes(&self.mr_signer))
            .field("isv_prod_id", &self.isv_prod_id)
            .field("isv_svn", &self.isv_svn)
            .field("isv_ext_prod_id", &HexBytes(&self.isv_ext_prod_id()))
            .field("config_id", &HexBytes(&self.config_id()))
            .field("config_svn", &self.config_svn())
            .field("isv_family_id", &HexBytes(&self.isv_family_id()))
            .field("report_data", &HexBytes(&self.report_data))
            .finish_non_exhaustive()
    }
}

/// The TD 1.0 quote body (`sgx_report2_body_t`): the TD's measurements and its TCB.
#[derive(Clone, PartialEq, Eq)]
pub struct TdReport10 {
    /// `TEE_TCB_SVN`: the TDX module's TCB SVNs (byte 0 module SVN, byte 1 module major
    /// version, ...), compared against the TCB info's `tdxtcbcomponents`.
    pub tee_tcb_svn: [u8; 16],
    /// `MRSEAM`: measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// `MRSIGNERSEAM`: measurement of the TDX module's signer (zero for Intel's module).
    pub mr_signer_seam: [u8; 48],
    /// `SEAMATTRIBUTES`: the TDX module's attributes (zero for TDX 1.0 and 1.5).
    pub seam_attributes: [u8; 8],
    /// `TDATTRIBUTES`.
    pub td_attributes: TdAttributes,
    /// `XFAM`.
    pub xfam: Xfam,
    /// `MRTD`: measurement of the TD's initial contents.
    pub mr_td: [u8; 48],
    /// `MRCONFIGID`: software-defined id of the TD's non-owner configuration.
    pub mr_config_id: [u8; 48],
    /// `MROWNER`: software-defined id of the TD's owner.
    pub mr_owner: [u8; 48],
    /// `MROWNERCONFIG`: software-defined id of the owner's configuration.
    pub mr_owner_config: [u8; 48],
    /// `RTMR0` to `RTMR3`: the runtime measurement registers.
    pub rtmr: [[u8; 48]; 4],
    /// `REPORTDATA`: the 64 bytes the TD supplied.
    pub report_data: [u8; 64],
}

impl TdReport10 {
    /// Size in bytes.
    pub const SIZE: usize = 584;
    /// v5 `Quote Body Type` of a TD 1.0 report.
    pub const BODY_TYPE: u16 = 2;

    /// Reads a TD 1.0 report from exactly [`Self::SIZE`] bytes.
    ///
    /// # Errors
    ///
    /// [`ParseError::Length`] unless `bytes` is exactly 584 bytes long.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let raw = RawTdReport10::ref_from_bytes(bytes).map_err(|_| ParseError::Length {
            what: "TD 1.0 report",
            expected: Self::SIZE,
            actual: bytes.len(),
        })?;
        Ok(Self::from_raw(raw))
    }

    /// The 584 bytes of the report, exactly as a quote carries them.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        zerocopy::transmute!(self.to_raw())
    }

    fn from_raw(raw: &RawTdReport10) -> Self {
        Self {
            tee_tcb_svn: raw.tee_tcb_svn,
            mr_seam: raw.mr_seam,
            mr_signer_seam: raw.mr_signer_seam,
            seam_attributes: raw.seam_attributes,
            td_attributes: TdAttributes(raw.td_attributes.get()),
            xfam: Xfam(raw.xfam.get()),
            mr_td: raw.mr_td,
            mr_config_id: raw.mr_config_id,
            mr_owner: raw.mr_owner,
            mr_owner_config: raw.mr_owner_config,
            rtmr: raw.rtmr,
            report_data: raw.report_data,
        }
    }

    fn to_raw(&self) -> RawTdReport10 {
        RawTdReport10 {
            tee_tcb_svn: self.tee_tcb_svn,
            mr_seam: self.mr_seam,
            mr_signer_seam: self.mr_signer_seam,
            seam_attributes: self.seam_attributes,
            td_attributes: U64::new(self.td_attributes.0),
            xfam: U64::new(self.xfam.0),
            mr_td: self.mr_td,
            mr_config_id: self.mr_config_id,
            mr_owner: self.mr_owner,
            mr_owner_config: self.mr_owner_config,
            rtmr: self.rtmr,
            report_data: self.report_data,
        }
    }
}

impl fmt::Debug for TdReport10 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r0, r1, r2, r3] = &self.rtmr;
        f.debug_struct("TdReport10")
            .field("tee_tcb_svn", &HexBytes(&self.tee_tcb_svn))
            .field("mr_seam", &HexBytes(&self.mr_seam))
            .field("mr_signer_seam", &HexBytes(&self.mr_signer_seam))
            .field("seam_attributes", &HexBytes(&self.seam_attributes))
            .field(
                "td_attributes",
                &format_args!("{:#018x}", self.td_attributes.0),
            )
            .field("xfam", &format_args!("{:#018x}", self.xfam.0))
            .field("mr_td", &HexBytes(&self.mr_td))
            .field("mr_config_id", &HexBytes(&self.mr_config_id))
            .field("mr_owner", &HexBytes(&self.mr_owner))
            .field("mr_owner_config", &HexBytes(&self.mr_owner_config))
            .field("rtmr0", &HexBytes(r0))
            .field("rtmr1", &HexBytes(r1))
            .field("rtmr2", &HexBytes(r2))
            .field("rtmr3", &HexBytes(r3))
            .field("report_data", &HexBytes(&self.report_data))
            .finish()
    }
}

/// The TD 1.5 quote body (`sgx_report2_body_v1_5_t`): TD 1.0 plus two fields.
#[derive(Clone, PartialEq, Eq)]
pub struct TdReport15 {
    /// The TD 1.0 fields (the first 584 bytes).
    pub base: TdReport10,
    /// `TEE_TCB_SVN2`: TCB SVNs of the TDX module after a TD-preserving update.
    pub tee_tcb_svn2: [u8; 16],
    /// `MRSERVICETD`: SHA-384 of the `TDINFO_STRUCT`s of the service TDs bound to this TD
    /// (zero when none is bound).
    pub mr_service_td: [u8; 48],
}

impl TdReport15 {
    /// Size in bytes.
    pub const SIZE: usize = 648;
    /// v5 `Quote Body Type` of a TD 1.5 report.
    pub const BODY_TYPE: u16 = 3;

    /// Reads a TD 1.5 report from exactly [`Self::SIZE`] bytes.
    ///
    /// # Errors
    ///
    /// [`ParseError::Length`] unless `bytes` is exactly 648 bytes long.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let raw = RawTdReport15::ref_from_bytes(bytes).map_err(|_| ParseError::Length {
            what: "TD 1.5 report",
            expected: Self::SIZE,
            actual: bytes.len(),
        })?;
        Ok(Self::from_raw(raw))
    }

    /// The 648 bytes of the report, exactly as a quote carries them.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        zerocopy::transmute!(self.to_raw())
    }

    fn from_raw(raw: &RawTdReport15) -> Self {
        Self {
            base: TdReport10::from_raw(&raw.base),
            tee_tcb_svn2: raw.tee_tcb_svn2,
            mr_service_td: raw.mr_service_td,
        }
    }

    fn to_raw(&self) -> RawTdReport15 {
        RawTdReport15 {
            base: self.base.to_raw(),
            tee_tcb_svn2: self.tee_tcb_svn2,
            mr_service_td: self.mr_service_td,
        }
    }
}

impl fmt::Debug for TdReport15 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TdReport15")
            .field("base", &self.base)
            .field("tee_tcb_svn2", &HexBytes(&self.tee_tcb_svn2))
            .field("mr_service_td", &HexBytes(&self.mr_service_td))
            .finish()
    }
}

/// The TD 1.5 "extended" quote body (v5 body type 4, `sgx_report2_body_v1_5_ex_t` in Intel's
/// `sgx_quote_5.h`): TD 1.5 plus the TD's identity and migration history. Service-TD and
/// migration quotes carry it; no real quote with this body is among the test vectors.
#[derive(Clone, PartialEq, Eq)]
pub struct TdReport15Ex {
    /// The TD 1.5 fields (the first 648 bytes).
    pub base: TdReport15,
    /// `VMID`: 0 for an unpartitioned TD (or the L1 VMM), 1 to 3 for TD VMs 1 to 3.
    pub vmid: u8,
    /// `TD_ID`: statistically unique id of the TD instance (new on relaunch, kept across
    /// TD-preserving updates and migration; zero when the host did not enable it).
    pub td_id: [u8; 32],
    /// `DEVINFO`: hash of the device information CBOR.
    pub dev_info: [u8; 48],
    /// `INIT_SERVTD_HASH`: initial `SERVTD_HASH` (or migration policy hash).
    pub init_servtd_hash: [u8; 48],
    /// `INIT_SERVTD_ATTR`: initial service-TD attributes.
    pub init_servtd_attributes: [u8; 8],
    /// `INIT_CPUSVN`: the CPUSVN when the TD was created.
    pub init_cpu_svn: [u8; 16],
    /// `INIT_TEE_TCB_SVN`: the `TEE_TCB_SVN` when the TD was created.
    pub init_tee_tcb_svn: [u8; 16],
    /// `INIT_TEE_FMSPC`: model information of the platform `INIT_TEE_TCB_SVN` was taken on.
    pub init_tee_fmspc: [u8; 12],
    /// `CURR_SERVTD_HASH`: current `SERVTD_HASH` (or migration policy hash).
    pub current_servtd_hash: [u8; 48],
    /// `CURR_SERVTD_ATTR`: current service-TD attributes.
    pub current_servtd_attributes: [u8; 8],
}

impl TdReport15Ex {
    /// Size in bytes.
    pub const SIZE: usize = 885;
    /// v5 `Quote Body Type` of a TD 1.5ex report.
    pub const BODY_TYPE: u16 = 4;

    /// Reads a TD 1.5ex report from exactly [`Self::SIZE`] bytes.
    ///
    /// # Errors
    ///
    /// [`ParseError::Length`] unless `bytes` is exactly 885 bytes long.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let raw = RawTdReport15Ex::ref_from_bytes(bytes).map_err(|_| ParseError::Length {
            what: "TD 1.5ex report",
            expected: Self::SIZE,
            actual: bytes.len(),
        })?;
        Ok(Self::from_raw(raw))
    }

    /// The 885 bytes of the report, exactly as a quote carries them.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        zerocopy::transmute!(self.to_raw())
    }

    fn from_raw(raw: &RawTdReport15Ex) -> Self {
        Self {
            base: TdReport15::from_raw(&raw.base),
            vmid: raw.vmid,
            td_id: raw.td_id,
            dev_info: raw.dev_info,
            init_servtd_hash: raw.init_servtd_hash,
            init_servtd_attributes: raw.init_servtd_attributes,
            init_cpu_svn: raw.init_cpu_svn,
            init_tee_tcb_svn: raw.init_tee_tcb_svn,
            init_tee_fmspc: raw.init_tee_fmspc,
            current_servtd_hash: raw.current_servtd_hash,
            current_servtd_attributes: raw.current_servtd_attributes,
        }
    }

    fn to_raw(&self) -> RawTdReport15Ex {
        RawTdReport15Ex {
            base: self.base.to_raw(),
            vmid: self.vmid,
            td_id: self.td_id,
            dev_info: self.dev_info,
            init_servtd_hash: self.init_servtd_hash,
            init_servtd_attributes: self.init_servtd_attributes,
            init_cpu_svn: self.init_cpu_svn,
            init_tee_tcb_svn: self.init_tee_tcb_svn,
            init_tee_fmspc: self.init_tee_fmspc,
            current_servtd_hash: self.current_servtd_hash,
            current_servtd_attributes: self.current_servtd_attributes,
        }
    }
}

impl fmt::Debug for TdReport15Ex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TdReport15Ex")
            .field("base", &self.base)
            .field("vmid", &self.vmid)
            .field("td_id", &HexBytes(&self.td_id))
            .field("dev_info", &HexBytes(&self.dev_info))
            .field("init_servtd_hash", &HexBytes(&self.init_servtd_hash))
            .field(
                "init_servtd_attributes",
                &HexBytes(&self.init_servtd_attributes),
            )
            .field("init_cpu_svn", &HexBytes(&self.init_cpu_svn))
            .field("init_tee_tcb_svn", &HexBytes(&self.init_tee_tcb_svn))
            .field("init_tee_fmspc", &HexBytes(&self.init_tee_fmspc))
            .field("current_servtd_hash", &HexBytes(&self.current_servtd_hash))
            .field(
                "current_servtd_attributes",
                &HexBytes(&self.current_servtd_attributes),
            )
            .finish()
    }
}

/// The report a quote attests to, by kind.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum QuoteBody {
    /// An SGX enclave report (v3, v4 with TEE type SGX, v5 body type 1).
    Sgx(EnclaveReport),
    /// A TD 1.0 report (v4 with TEE type TDX, v5 body type 2).
    Td10(TdReport10),
    /// A TD 1.5 report (v5 body type 3).
    Td15(TdReport15),
    /// A TD 1.5ex report (v5 body type 4), boxed: it is the largest body by far.
    Td15Ex(Box<TdReport15Ex>),
}

impl QuoteBody {
    /// Reads the body a v5 descriptor declares (`Quote Body Type` and the body bytes, whose
    /// length is the descriptor's `Size`).
    ///
    /// # Errors
    ///
    /// [`ParseError::UnsupportedBodyType`] for a type other than 1 to 4;
    /// [`ParseError::BodySize`] when `bytes` is not that type's size.
    pub fn parse(body_type: u16, bytes: &[u8]) -> Result<Self, ParseError> {
        let expected =
            Self::size_of_type(body_type).ok_or(ParseError::UnsupportedBodyType(body_type))?;
        if bytes.len() != expected {
            return Err(ParseError::BodySize {
                body_type,
                expected,
                actual: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            });
        }
        Ok(match body_type {
            EnclaveReport::BODY_TYPE => Self::Sgx(EnclaveReport::parse(bytes)?),
            TdReport10::BODY_TYPE => Self::Td10(TdReport10::parse(bytes)?),
            TdReport15::BODY_TYPE => Self::Td15(TdReport15::parse(bytes)?),
            _ => Self::Td15Ex(Box::new(TdReport15Ex::parse(bytes)?)),
        })
    }

    /// The size in bytes of a body of v5 `Quote Body Type` `body_type`, if it is known.
    pub fn size_of_type(body_type: u16) -> Option<usize> {
        match body_type {
            EnclaveReport::BODY_TYPE => Some(EnclaveReport::SIZE),
            TdReport10::BODY_TYPE => Some(TdReport10::SIZE),
            TdReport15::BODY_TYPE => Some(TdReport15::SIZE),
            TdReport15Ex::BODY_TYPE => Some(TdReport15Ex::SIZE),
            _ => None,
        }
    }

    /// The v5 `Quote Body Type`: 1 SGX, 2 TD 1.0, 3 TD 1.5, 4 TD 1.5ex (v3 and v4 quotes
    /// carry no descriptor; their bodies report 1 or 2).
    pub fn body_type(&self) -> u16 {
        match self {
            Self::Sgx(_) => EnclaveReport::BODY_TYPE,
            Self::Td10(_) => TdReport10::BODY_TYPE,
            Self::Td15(_) => TdReport15::BODY_TYPE,
            Self::Td15Ex(_) => TdReport15Ex::BODY_TYPE,
        }
    }

    /// Size of the body in bytes.
    pub fn size(&self) -> usize {
        match self {
            Self::Sgx(_) => EnclaveReport::SIZE,
            Self::Td10(_) => TdReport10::SIZE,
            Self::Td15(_) => TdReport15::SIZE,
            Self::Td15Ex(_) => TdReport15Ex::SIZE,
        }
    }

    /// Whether the body is a TD report (of any version).
    pub fn is_td(&self) -> bool {
        !matches!(self, Self::Sgx(_))
    }

    /// The TD 1.0 fields of any TD report (the 1.5 bodies extend 1.0); `None` for SGX.
    pub fn td(&self) -> Option<&TdReport10> {
        match self {
            Self::Sgx(_) => None,
            Self::Td10(td) => Some(td),
            Self::Td15(td) => Some(&td.base),
            Self::Td15Ex(td) => Some(&td.base.base),
        }
    }

    /// The TD 1.5 fields of a TD 1.5 or 1.5ex report.
    pub fn td15(&self) -> Option<&TdReport15> {
        match self {
            Self::Td15(td) => Some(td),
            Self::Td15Ex(td) => Some(&td.base),
            Self::Sgx(_) | Self::Td10(_) => None,
        }
    }

    /// The TD 1.5ex report, if that is the body.
    pub fn td15_ex(&self) -> Option<&TdReport15Ex> {
        match self {
            Self::Td15Ex(td) => Some(td),
            _ => None,
        }
    }

    /// The SGX enclave report, if that is the body.
    pub fn sgx(&self) -> Option<&EnclaveReport> {
        match self {
            Self::Sgx(report) => Some(report),
            _ => None,
        }
    }

    /// `REPORTDATA` of whichever report this is.
    pub fn report_data(&self) -> &[u8; 64] {
        match self {
            Self::Sgx(report) => &report.report_data,
            Self::Td10(td) => &td.report_data,
            Self::Td15(td) => &td.base.report_data,
            Self::Td15Ex(td) => &td.base.base.report_data,
        }
    }

    /// The body's bytes, exactly as a quote carries them.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Sgx(report) => report.to_bytes().to_vec(),
            Self::Td10(td) => td.to_bytes().to_vec(),
            Self::Td15(td) => td.to_bytes().to_vec(),
            Self::Td15Ex(td) => td.to_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An enclave report whose every byte is arbitrary.
    pub(crate) fn arb_enclave_report() -> impl Strategy<Value = EnclaveReport> {
        proptest::collection::vec(any::<u8>(), EnclaveReport::SIZE)
            .prop_map(|b| EnclaveReport::parse(&b).unwrap())
    }

    /// Any body (SGX, TD 1.0, TD 1.5, TD 1.5ex) with arbitrary bytes.
    pub(crate) fn arb_body() -> impl Strategy<Value = QuoteBody> {
        (1u16..=4).prop_flat_map(|body_type| {
            let size = QuoteBody::size_of_type(body_type).unwrap();
            proptest::collection::vec(any::<u8>(), size)
                .prop_map(move |b| QuoteBody::parse(body_type, &b).unwrap())
        })
    }

    #[test]
    fn sizes_and_types() {
        for (t, size) in [(1u16, 384usize), (2, 584), (3, 648), (4, 885)] {
            assert_eq!(QuoteBody::size_of_type(t), Some(size));
            let body = QuoteBody::parse(t, &vec![0; size]).unwrap();
            assert_eq!(body.body_type(), t);
            assert_eq!(body.size(), size);
            assert_eq!(body.to_bytes(), vec![0; size]);
            assert_eq!(body.is_td(), t != 1);
        }
        for t in [0u16, 5, 0xFFFF] {
            assert_eq!(QuoteBody::size_of_type(t), None);
            assert_eq!(
                QuoteBody::parse(t, &[0; 584]),
                Err(ParseError::UnsupportedBodyType(t))
            );
        }
        assert_eq!(
            QuoteBody::parse(3, &[0; 584]),
            Err(ParseError::BodySize {
                body_type: 3,
                expected: 648,
                actual: 584
            })
        );
    }

    #[test]
    fn lengths_checked() {
        for len in [0, 383, 385] {
            assert_eq!(
                EnclaveReport::parse(&vec![0; len]),
                Err(ParseError::Length {
                    what: "enclave report",
                    expected: 384,
                    actual: len
                })
            );
        }
        assert!(TdReport10::parse(&[0; 583]).is_err());
        assert!(TdReport15::parse(&[0; 649]).is_err());
        assert!(TdReport15Ex::parse(&[0; 884]).is_err());
    }

    #[test]
    fn field_offsets() {
        let mut bytes = [0u8; TdReport15Ex::SIZE];
        bytes[0] = 0x11; // tee_tcb_svn[0]
        bytes[120] = 0x01; // td_attributes bit 0
        bytes[123] = 0x10; // td_attributes bit 28
        bytes[128] = 0xE7; // xfam
        bytes[328] = 0xAA; // rtmr0[0]
        bytes[520 + 63] = 0x5D; // report_data[63]
        bytes[600] = 0x77; // mr_service_td[0]
        bytes[648] = 2; // vmid
        bytes[649] = 0xA0; // td_id[0]
        bytes[877 + 7] = 0x17; // current_servtd_attributes[7]
        let td = TdReport15Ex::parse(&bytes).unwrap();
        let base = &td.base.base;
        assert_eq!(base.tee_tcb_svn[0], 0x11);
        assert!(base.td_attributes.debug() && base.td_attributes.sept_ve_disable());
        assert_eq!(base.td_attributes.tud(), 1);
        assert_eq!(base.td_attributes.sec(), 0x10_0000);
        assert_eq!(base.xfam, Xfam(0xE7));
        assert_eq!(base.rtmr[0][0], 0xAA);
        assert_eq!(base.report_data[63], 0x5D);
        assert_eq!(td.base.mr_service_td[0], 0x77);
        assert_eq!((td.vmid, td.td_id[0]), (2, 0xA0));
        assert_eq!(td.current_servtd_attributes[7], 0x17);
        assert_eq!(td.to_bytes(), bytes);
        let body = QuoteBody::Td15Ex(Box::new(td));
        assert_eq!(body.td().map(|t| t.tee_tcb_svn[0]), Some(0x11));
        assert!(body.td15().is_some() && body.td15_ex().is_some() && body.sgx().is_none());
        assert_eq!(body.report_data()[63], 0x5D);

        let mut sgx = [0u8; EnclaveReport::SIZE];
        sgx[16] = 0x01; // misc_select
        sgx[48] = 0b1011_0111; // flags: init debug mode64 provision einittoken kss
        sgx[56] = 0x03; // xfrm
        sgx[256] = 0x34; // isv_prod_id
        sgx[258] = 0x02; // isv_svn
        let report = EnclaveReport::parse(&sgx).unwrap();
        assert_eq!(
            (report.misc_select, report.isv_prod_id, report.isv_svn),
            (1, 0x34, 2)
        );
        let a = report.attributes;
        assert!(a.init() && a.debug() && a.mode64bit() && a.provision_key());
        assert!(a.einittoken_key() && a.kss());
        assert_eq!((a.flags(), a.xfrm()), (0b1011_0111, 3));
        assert_eq!(report.to_bytes(), sgx);
        assert!(format!("{report:?}").contains("isv_svn: 2"));
    }

    /// The KSS fields at Intel's offsets (`sgx_report_body_t`): ISVEXTPRODID 32..48, CONFIGID
    /// 192..256, CONFIGSVN 260..262, ISVFAMILYID 304..320; the reserved bytes around them are
    /// neither read as them nor changed by setting them.
    #[test]
    fn kss_field_offsets() {
        let mut sgx = [0u8; EnclaveReport::SIZE];
        for (i, b) in sgx.iter_mut().enumerate() {
            *b = u8::try_from(i % 251).unwrap();
        }
        let report = EnclaveReport::parse(&sgx).unwrap();
        assert_eq!(report.isv_ext_prod_id()[..], sgx[32..48]);
        assert_eq!(report.config_id()[..], sgx[192..256]);
        assert_eq!(
            report.config_svn(),
            u16::from_le_bytes([sgx[260], sgx[261]])
        );
        assert_eq!(report.isv_family_id()[..], sgx[304..320]);
        // The neighbours: ATTRIBUTES at 48, MRSIGNER ends at 160, ISVPRODID at 256,
        // REPORTDATA at 320.
        assert_eq!(report.attributes.to_bytes()[..], sgx[48..64]);
        assert_eq!(report.mr_signer[..], sgx[128..160]);
        assert_eq!(report.isv_prod_id, u16::from_le_bytes([sgx[256], sgx[257]]));
        assert_eq!(report.report_data[..], sgx[320..384]);
        assert_eq!(report.to_bytes(), sgx);

        let mut changed = report.clone();
        changed.set_isv_ext_prod_id([0xE1; 16]);
        changed.set_config_id([0xC1; 64]);
        changed.set_config_svn(0xBEEF);
        changed.set_isv_family_id([0xF1; 16]);
        assert_eq!(
            (
                changed.isv_ext_prod_id(),
                changed.config_id(),
                changed.config_svn(),
                changed.isv_family_id()
            ),
            ([0xE1; 16], [0xC1; 64], 0xBEEF, [0xF1; 16])
        );
        let mut want = sgx;
        want[32..48].fill(0xE1);
        want[192..256].fill(0xC1);
        want[260..262].copy_from_slice(&0xBEEFu16.to_le_bytes());
        want[304..320].fill(0xF1);
        assert_eq!(changed.to_bytes(), want);
        assert_eq!(EnclaveReport::parse(&want).unwrap(), changed);
        let shown = format!("{changed:?}");
        assert!(shown.contains("config_svn: 48879"), "{shown}");
        assert!(shown.contains(&"c1".repeat(64)), "{shown}");
    }

    #[test]
    fn td_attribute_groups() {
        let a = TdAttributes((1 << 63) | (1 << 31) | (1 << 30) | (1 << 29) | (1 << 8) | 0x80);
        assert!(a.perfmon() && a.kl() && a.pks() && a.migratable());
        assert!(!a.debug() && !a.sept_ve_disable());
        assert_eq!(a.tud(), 0x80);
        assert_eq!(a.sec(), (0b1110 << 20) | 1);
        assert_eq!(a.other(), 1 << 31);
        assert_eq!(a.bits() >> 32, u64::from(a.other()));
    }

    proptest! {
        #[test]
        fn enclave_report_round_trip(bytes in proptest::collection::vec(any::<u8>(), 384)) {
            let report = EnclaveReport::parse(&bytes).unwrap();
            prop_assert_eq!(report.to_bytes().to_vec(), bytes);
        }

        #[test]
        fn td_bodies_round_trip(body in arb_body()) {
            let bytes = body.to_bytes();
            prop_assert_eq!(bytes.len(), body.size());
            let again = QuoteBody::parse(body.body_type(), &bytes).unwrap();
            prop_assert_eq!(&again, &body);
            if let Some(td) = body.td() {
                prop_assert_eq!(&td.to_bytes()[..], &bytes[..TdReport10::SIZE]);
                prop_assert_eq!(&td.report_data, body.report_data());
            }
            if let Some(td15) = body.td15() {
                prop_assert_eq!(&td15.to_bytes()[..], &bytes[..TdReport15::SIZE]);
            }
        }
    }
}
