//! Claims: the report's fields as a flat, JSON-ready view (hex for bytes), for operators and policy.

use serde::Serialize;

use crate::abi::{AttestationReport, Product, TcbParts, TcbVersion};
use crate::verify::hex_lower;

pub(crate) fn hex_opt<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex_lower(b)),
        None => s.serialize_none(),
    }
}

/// A TCB value: the raw 64-bit form and, when the product is known, its components.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TcbClaim {
    /// The raw TCB_VERSION (hex, as the little-endian u64 reads).
    pub raw: String,
    /// Decoded components, when the product is known.
    #[serde(flatten)]
    pub parts: Option<TcbParts>,
}

impl TcbClaim {
    fn new(v: TcbVersion, product: Option<Product>) -> Self {
        Self {
            raw: format!("{:016x}", v.0),
            parts: product.map(|p| v.decode(p)),
        }
    }
}

/// The guest policy bits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[allow(clippy::struct_excessive_bools)] // one bool per policy bit, as the spec defines them
pub struct PolicyClaims {
    /// Raw value (hex).
    pub raw: String,
    /// Minimum ABI major.
    pub abi_major: u8,
    /// Minimum ABI minor.
    pub abi_minor: u8,
    /// SMT allowed.
    pub smt_allowed: bool,
    /// Migration agent allowed.
    pub migrate_ma: bool,
    /// Debugging allowed.
    pub debug_allowed: bool,
    /// Single socket only.
    pub single_socket: bool,
    /// CXL allowed.
    pub cxl_allowed: bool,
    /// AES-256-XTS required.
    pub mem_aes_256_xts: bool,
    /// RAPL must be disabled.
    pub rapl_dis: bool,
    /// Ciphertext hiding required.
    pub ciphertext_hiding: bool,
    /// Page swap disabled.
    pub page_swap_disable: bool,
}

/// The platform info bits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[allow(clippy::struct_excessive_bools)] // one bool per platform bit
pub struct PlatformClaims {
    /// Raw value (hex).
    pub raw: String,
    /// SMT enabled.
    pub smt_enabled: bool,
    /// TSME enabled.
    pub tsme_enabled: bool,
    /// ECC memory in use.
    pub ecc_enabled: bool,
    /// RAPL disabled.
    pub rapl_disabled: bool,
    /// Ciphertext hiding enabled.
    pub ciphertext_hiding_enabled: bool,
    /// Alias check complete.
    pub alias_check_complete: bool,
    /// SEV-TIO enabled.
    pub tio_enabled: bool,
}

/// Every field of an SNP report, decoded. Made from any report (`show`) or a verified one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportClaims {
    /// Report version.
    pub version: u32,
    /// The product used to decode TCB values (from CPUID, the chain, or the caller).
    pub product: Option<Product>,
    /// Guest SVN.
    pub guest_svn: u32,
    /// Guest policy.
    pub policy: PolicyClaims,
    /// VMPL of the requester.
    pub vmpl: u32,
    /// Signature algorithm (1 = ECDSA P-384 SHA-384).
    pub signature_algo: u32,
    /// Which key signed: `vcek`, `vlek`, `none` or `reserved`.
    pub signing_key: &'static str,
    /// Author key enabled in the ID block.
    pub author_key_en: bool,
    /// MASK_CHIP_KEY.
    pub mask_chip_key: bool,
    /// Platform info.
    pub platform_info: PlatformClaims,
    /// Launch measurement (hex, 48 bytes).
    pub measurement: String,
    /// REPORT_DATA (hex, 64 bytes).
    pub report_data: String,
    /// HOST_DATA (hex, 32 bytes).
    pub host_data: String,
    /// FAMILY_ID (hex).
    pub family_id: String,
    /// IMAGE_ID (hex).
    pub image_id: String,
    /// ID_KEY_DIGEST (hex).
    pub id_key_digest: String,
    /// AUTHOR_KEY_DIGEST (hex).
    pub author_key_digest: String,
    /// REPORT_ID (hex).
    pub report_id: String,
    /// REPORT_ID_MA (hex).
    pub report_id_ma: String,
    /// CHIP_ID (hex, 64 bytes; zeros when masked).
    pub chip_id: String,
    /// REPORTED_TCB.
    pub reported_tcb: TcbClaim,
    /// CURRENT_TCB.
    pub current_tcb: TcbClaim,
    /// COMMITTED_TCB.
    pub committed_tcb: TcbClaim,
    /// LAUNCH_TCB.
    pub launch_tcb: TcbClaim,
    /// Current firmware version `major.minor.build`.
    pub current_version: String,
    /// Committed firmware version.
    pub committed_version: String,
    /// CPUID family/model/stepping (v3+), as `19h/11h/1`.
    pub cpuid: Option<String>,
    /// LAUNCH_MIT_VECTOR (v5, hex).
    pub launch_mit_vector: Option<String>,
    /// CURRENT_MIT_VECTOR (v5, hex).
    pub current_mit_vector: Option<String>,
}

impl ReportClaims {
    /// Decode `report`, using `product` (or the report's CPUID) for TCB layouts.
    #[must_use]
    pub fn new(report: &AttestationReport, product: Option<Product>) -> Self {
        let product = product.or_else(|| report.cpuid().and_then(Product::from_cpuid));
        let p = report.policy();
        let pi = report.platform_info();
        let si = report.signer_info();
        Self {
            version: report.version(),
            product,
            guest_svn: report.guest_svn(),
            policy: PolicyClaims {
                raw: format!("{:#x}", p.bits()),
                abi_major: p.abi_major(),
                abi_minor: p.abi_minor(),
                smt_allowed: p.smt_allowed(),
                migrate_ma: p.migrate_ma(),
                debug_allowed: p.debug_allowed(),
                single_socket: p.single_socket(),
                cxl_allowed: p.cxl_allowed(),
                mem_aes_256_xts: p.mem_aes_256_xts(),
                rapl_dis: p.rapl_dis(),
                ciphertext_hiding: p.ciphertext_hiding(),
                page_swap_disable: p.page_swap_disable(),
            },
            vmpl: report.vmpl(),
            signature_algo: report.signature_algo().0,
            signing_key: match si.signing_key() {
                crate::abi::SigningKey::Vcek => "vcek",
                crate::abi::SigningKey::Vlek => "vlek",
                crate::abi::SigningKey::None => "none",
                crate::abi::SigningKey::Reserved(_) => "reserved",
            },
            author_key_en: si.author_key_en(),
            mask_chip_key: si.mask_chip_key(),
            platform_info: PlatformClaims {
                raw: format!("{:#x}", pi.bits()),
                smt_enabled: pi.smt_enabled(),
                tsme_enabled: pi.tsme_enabled(),
                ecc_enabled: pi.ecc_enabled(),
                rapl_disabled: pi.rapl_disabled(),
                ciphertext_hiding_enabled: pi.ciphertext_hiding_enabled(),
                alias_check_complete: pi.alias_check_complete(),
                tio_enabled: pi.tio_enabled(),
            },
            measurement: hex_lower(report.measurement()),
            report_data: hex_lower(report.report_data()),
            host_data: hex_lower(report.host_data()),
            family_id: hex_lower(report.family_id()),
            image_id: hex_lower(report.image_id()),
            id_key_digest: hex_lower(report.id_key_digest()),
            author_key_digest: hex_lower(report.author_key_digest()),
            report_id: hex_lower(report.report_id()),
            report_id_ma: hex_lower(report.report_id_ma()),
            chip_id: hex_lower(report.chip_id()),
            reported_tcb: TcbClaim::new(report.reported_tcb(), product),
            current_tcb: TcbClaim::new(report.current_tcb(), product),
            committed_tcb: TcbClaim::new(report.committed_tcb(), product),
            launch_tcb: TcbClaim::new(report.launch_tcb(), product),
            current_version: report.current_version().to_string(),
            committed_version: report.committed_version().to_string(),
            cpuid: report
                .cpuid()
                .map(|c| format!("{:02x}h/{:02x}h/{}", c.family, c.model, c.stepping)),
            launch_mit_vector: report.launch_mit_vector().map(|v| format!("{v:#x}")),
            current_mit_vector: report.current_mit_vector().map(|v| format!("{v:#x}")),
        }
    }
}
