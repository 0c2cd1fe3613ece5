//! The policy document: one typed structure for SEV-SNP, TDX and SGX, read from TOML or JSON.
//!
//! Fail closed: the security-relevant fields of each section (what was measured, debug, the TCB
//! floor or accepted TCB statuses, the signer; for SEV-SNP also the VMPL and whether AMD's CRL is
//! required) have no default — leaving one out is a load error, and the operator writes `"any"`
//! (for `snp.revocation`: `"if-given"`) to leave it unchecked on purpose. Every other field is optional
//! and, when absent, the appraisal lists its rule as "not checked" — except three that fail
//! closed when absent: `tcb.revocation` (absent means `"required"`), `tdx.vmids` (absent means
//! only VMID 0) and `sgx.config_id`, which an enclave with `ATTRIBUTES.KSS` set fails without
//! (its loader chose CONFIGID: pin it, or write `"any"`). Unknown fields are load errors.

use serde::{Deserialize, Serialize};
use tessera_tdx::collateral::TcbStatus;

use crate::value::{AllowList, Bit, Duration, Hex, RefList, Setting, U64Hex};

/// The only policy format version this crate reads.
pub const POLICY_VERSION: u32 = 1;

/// An appraisal policy. A section per TEE; evidence from a TEE without a section fails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Format version; must be 1.
    pub version: u32,
    /// The policy's identifier (EAR `ear.appraisal-policy-id`).
    pub id: String,
    /// Rules for SEV-SNP reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snp: Option<SnpPolicy>,
    /// Rules for TDX quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tdx: Option<TdxPolicy>,
    /// Rules for SGX quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgx: Option<SgxPolicy>,
}

/// SEV-SNP rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpPolicy {
    /// MEASUREMENT allow-list. Required.
    pub measurement: AllowList<48>,
    /// Guest policy DEBUG bit. Required (`"must-not"` in production).
    pub debug: Bit,
    /// Minimum REPORTED_TCB per product. Required.
    pub min_tcb: Setting<PerProductTcb>,
    /// Which key may sign. Required.
    pub signer: Setting<SignerRule>,
    /// Accepted VMPLs of the requester (0 = the most privileged). Required (`"any"` when any
    /// guest VMPL, 0 to 3, may ask: a report requested from VMPL 1–3 comes from less
    /// privileged guest code; one the host requested, VMPL 0xFFFFFFFF, fails every setting).
    pub vmpl: Setting<RefList<u32>>,
    /// Whether the AMD ARK's CRL must have been applied. Required: `"required"` fails the
    /// appraisal when no current ARK-signed CRL was supplied; `"if-given"` accepts evidence
    /// verified without one (the revocations embedded in Tessera still apply).
    pub revocation: Revocation,

    /// Accepted report versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_versions: Option<Vec<u32>>,
    /// Minimum LAUNCH_TCB per product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_launch_tcb: Option<PerProductTcb>,
    /// Accept COMMITTED_TCB/version behind CURRENT (provisional firmware). Default `false`: the
    /// committed TCB and firmware version must equal the current ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_provisional_firmware: Option<bool>,
    /// Minimum current SEV-SNP firmware, `"MAJOR.MINOR"` or `"MAJOR.MINOR.BUILD"`, compared as
    /// one version (CURRENT_MAJOR, CURRENT_MINOR, CURRENT_BUILD): 1.55.16 is above 1.42.42.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_firmware_version: Option<FirmwareFloor>,
    /// Guest policy bits other than DEBUG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_policy: Option<GuestPolicyRules>,
    /// Platform info bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_info: Option<PlatformInfoRules>,
    /// Minimum GUEST_SVN. Required, as `family_id` and `image_id` are, when the policy trusts
    /// an ID block signer (`measurement = "any"` with an ID or author key pinned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_guest_svn: Option<u32>,
    /// HOST_DATA allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_data: Option<AllowList<32>>,
    /// REPORT_DATA allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_data: Option<AllowList<64>>,
    /// FAMILY_ID allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_id: Option<AllowList<16>>,
    /// IMAGE_ID allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<AllowList<16>>,
    /// ID_KEY_DIGEST trusted set (SHA-384 of the ID public key in AMD's format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_key_digests: Option<AllowList<48>>,
    /// ID_KEY_DIGEST denied set (checked even when the trusted set is `any`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_id_key_digests: Option<RefList<Hex<48>>>,
    /// AUTHOR_KEY_DIGEST trusted set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_key_digests: Option<AllowList<48>>,
    /// AUTHOR_KEY_DIGEST denied set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_author_key_digests: Option<RefList<Hex<48>>>,
    /// CHIP_ID allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_ids: Option<AllowList<64>>,
    /// Bits that must be set in LAUNCH_MIT_VECTOR (report v5+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_launch_mit_vector: Option<U64Hex>,
    /// Bits that must be set in CURRENT_MIT_VECTOR (report v5+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_current_mit_vector: Option<U64Hex>,
}

/// Whether evidence must have been verified with its vendor's current CRLs: for SEV-SNP the
/// ARK's CRL (`snp.revocation`), for TDX and SGX the PCK CRL and the Root CA CRL
/// (`tcb.revocation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Revocation {
    /// The current CRLs were applied (`revocation_checked`: for SEV-SNP one signed by the
    /// chain's ARK); otherwise the rule fails.
    Required,
    /// CRLs are applied when supplied; evidence verified without them passes (for SEV-SNP
    /// only the revocations embedded in Tessera were then checked).
    IfGiven,
}

/// A TCB floor for each product; evidence from a product without a floor fails the rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerProductTcb {
    /// Milan (family 19h, model 0h–Fh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milan: Option<TcbFloor>,
    /// Genoa (family 19h, model 10h–1Fh, A0h–AFh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genoa: Option<TcbFloor>,
    /// Turin (family 1Ah); requires `fmc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turin: Option<TcbFloor>,
}

/// Component-wise minimum SPLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcbFloor {
    /// FMC SPL (Turin only, where it is required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    pub bootloader: u8,
    /// PSP OS (TEE) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

/// Which VEK may sign: `"vcek"`, or a table `{ vcek = BOOL, vlek_csps = ["CSP", ...] }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SignerRepr", into = "SignerRepr")]
pub struct SignerRule {
    /// A VCEK (chip key) may sign.
    pub vcek: bool,
    /// A VLEK from one of these cloud providers (the VLEK's cspID) may sign.
    pub vlek_csps: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum SignerRepr {
    Name(SignerName),
    Table(SignerTable),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SignerName {
    Vcek,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerTable {
    #[serde(default)]
    vcek: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vlek_csps: Vec<String>,
}

impl TryFrom<SignerRepr> for SignerRule {
    type Error = String;
    fn try_from(r: SignerRepr) -> Result<Self, String> {
        match r {
            SignerRepr::Name(SignerName::Vcek) => Ok(Self {
                vcek: true,
                vlek_csps: Vec::new(),
            }),
            SignerRepr::Table(t) if !t.vcek && t.vlek_csps.is_empty() => Err(String::from(
                "signer accepts no key: set vcek = true or name vlek_csps",
            )),
            SignerRepr::Table(t) => Ok(Self {
                vcek: t.vcek,
                vlek_csps: t.vlek_csps,
            }),
        }
    }
}

impl From<SignerRule> for SignerRepr {
    fn from(r: SignerRule) -> Self {
        if r.vcek && r.vlek_csps.is_empty() {
            Self::Name(SignerName::Vcek)
        } else {
            Self::Table(SignerTable {
                vcek: r.vcek,
                vlek_csps: r.vlek_csps,
            })
        }
    }
}

/// A firmware version floor, `"MAJOR.MINOR"` or `"MAJOR.MINOR.BUILD"` (build 0 when left out).
/// Ordered as one version: major first, then minor, then build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FirmwareFloor {
    /// Major (API major version).
    pub major: u8,
    /// Minor (API minor version).
    pub minor: u8,
    /// Build.
    pub build: u8,
}

impl TryFrom<String> for FirmwareFloor {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut parts = s.split('.');
        let mut next = |what: &str| -> Result<u8, String> {
            parts
                .next()
                .ok_or_else(|| format!("{s:?} is not MAJOR.MINOR or MAJOR.MINOR.BUILD"))?
                .parse()
                .map_err(|_| format!("{s:?}: bad {what} (0 to 255)"))
        };
        let major = next("major")?;
        let minor = next("minor")?;
        let build = match parts.next() {
            None => 0,
            Some(b) => b
                .parse()
                .map_err(|_| format!("{s:?}: bad build (0 to 255)"))?,
        };
        if parts.next().is_some() {
            return Err(format!("{s:?} is not MAJOR.MINOR or MAJOR.MINOR.BUILD"));
        }
        Ok(Self {
            major,
            minor,
            build,
        })
    }
}

impl From<FirmwareFloor> for String {
    fn from(v: FirmwareFloor) -> Self {
        format!("{}.{}.{}", v.major, v.minor, v.build)
    }
}

/// Rules for the guest policy bits (DEBUG is the section's required `debug`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestPolicyRules {
    /// SMT allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smt: Option<Bit>,
    /// Migration agent allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_agent: Option<Bit>,
    /// Single socket only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_socket: Option<Bit>,
    /// CXL allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cxl: Option<Bit>,
    /// AES-256-XTS required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aes_256_xts: Option<Bit>,
    /// RAPL disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rapl_disabled: Option<Bit>,
    /// Ciphertext hiding required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_hiding: Option<Bit>,
    /// Page swap disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_swap_disabled: Option<Bit>,
}

/// Rules for the platform info bits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformInfoRules {
    /// SMT enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smt: Option<Bit>,
    /// TSME enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsme: Option<Bit>,
    /// ECC memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc: Option<Bit>,
    /// RAPL disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rapl_disabled: Option<Bit>,
    /// Ciphertext hiding enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_hiding: Option<Bit>,
    /// Alias check complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_check_complete: Option<Bit>,
    /// SEV-TIO enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tio: Option<Bit>,
}

/// TDX rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxPolicy {
    /// MRTD allow-list. Required.
    pub mr_td: AllowList<48>,
    /// TD_ATTRIBUTES.DEBUG. Required (`"must-not"` in production).
    pub debug: Bit,
    /// Intel TCB controls; `accepted_statuses` is required.
    pub tcb: IntelTcbPolicy,

    /// RTMR0 allow-list (TDVF's configuration: the TD HOB and the ACPI tables, which the host
    /// supplies). Required (`"any"` when not judged on purpose): MRTD measures the firmware
    /// alone, so the RTMRs are what the policy says of the rest of the boot.
    pub rtmr0: AllowList<48>,
    /// RTMR1 allow-list (the boot loader or kernel). Required, as `rtmr0`.
    pub rtmr1: AllowList<48>,
    /// RTMR2 allow-list (the kernel command line and initrd). Required, as `rtmr0`.
    pub rtmr2: AllowList<48>,
    /// RTMR3 allow-list (extended at run time, e.g. by the guest's agent). Required, as `rtmr0`.
    pub rtmr3: AllowList<48>,
    /// MRCONFIGID allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mr_config_id: Option<AllowList<48>>,
    /// MROWNER allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mr_owner: Option<AllowList<48>>,
    /// MROWNERCONFIG allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mr_owner_config: Option<AllowList<48>>,
    /// MRSEAM allow-list (the TDX module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mr_seam: Option<AllowList<48>>,
    /// MRSIGNERSEAM allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mr_signer_seam: Option<AllowList<48>>,
    /// MRSERVICETD allow-list (TD 1.5 quotes; all zeros = no service TD bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mr_service_td: Option<AllowList<48>>,
    /// REPORTDATA allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_data: Option<AllowList<64>>,
    /// TD_ATTRIBUTES bits other than DEBUG that must be set or clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub td_attributes: Option<TdAttributeRules>,
    /// XFAM value, compared outside an ignore mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xfam: Option<MaskedValue>,
    /// Component-wise minimum TEE_TCB_SVN (16 bytes, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tee_tcb_svn: Option<Hex<16>>,
    /// Accepted VMIDs of a TD 1.5ex quote (v5 body type 4): 0 is the TD itself, 1 to 3 an L2 VM
    /// of a partitioned TD, whose REPORTDATA the L2 chose while MRTD and the RTMRs are the
    /// L1's. Absent: only 0. A TD 1.0 or 1.5 body has no VMID and counts as VMID 0 (an L2 VM
    /// cannot ask the TDX modules that make those bodies for a report: the L1 TD asks).
    #[serde(
        default,
        deserialize_with = "non_empty_vmids",
        skip_serializing_if = "Option::is_none"
    )]
    pub vmids: Option<Vec<u8>>,
}

/// `tdx.vmids`: a list, never empty (it would accept no quote).
fn non_empty_vmids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let ids = Vec::<u8>::deserialize(d)?;
    if ids.is_empty() {
        return Err(serde::de::Error::custom(
            "an empty vmids (it would accept no quote): leave it out to accept only VMID 0",
        ));
    }
    Ok(Some(ids))
}

/// Named TD_ATTRIBUTES bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TdAttribute {
    /// Bit 0.
    Debug,
    /// Bit 28.
    SeptVeDisable,
    /// Bit 29.
    Migratable,
    /// Bit 30.
    Pks,
    /// Bit 31.
    Kl,
    /// Bit 63.
    Perfmon,
}

/// TD_ATTRIBUTES bits that must be set and bits that must be clear.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdAttributeRules {
    /// Bits that must be set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_set: Vec<TdAttribute>,
    /// Bits that must be clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_clear: Vec<TdAttribute>,
}

/// A 64-bit value compared outside `ignore_mask`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskedValue {
    /// The expected value.
    pub value: U64Hex,
    /// Bits not compared (e.g. XFAM's CET bits 11 and 12).
    #[serde(default = "zero_mask")]
    pub ignore_mask: U64Hex,
}

fn zero_mask() -> U64Hex {
    U64Hex(0)
}

/// An Intel TCB status name as Intel writes it (`"UpToDate"`, `"SWHardeningNeeded"`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StatusName(pub TcbStatus);

impl TryFrom<String> for StatusName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse::<TcbStatus>()
            .map(Self)
            .map_err(|_| format!("{s:?} is not an Intel TCB status"))
    }
}

impl From<StatusName> for String {
    fn from(s: StatusName) -> Self {
        s.0.as_str().to_owned()
    }
}

/// Intel TCB controls shared by TDX and SGX.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelTcbPolicy {
    /// Accepted converged TCB statuses. Required (`"any"` accepts every non-terminal status).
    pub accepted_statuses: Setting<Vec<StatusName>>,
    /// An OutOfDate platform or QE level is accepted only until its `tcbDate` plus this period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<Duration>,
    /// Advisory IDs (`INTEL-SA-00615`, ...) that reject the evidence when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_advisories: Option<Vec<String>>,
    /// Minimum `tcbEvaluationDataNumber` of the TCB info and the QE identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_evaluation_data_number: Option<u32>,
    /// Maximum age of the TCB info and QE identity (`issueDate`) at the verification time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_collateral_age: Option<Duration>,
    /// Minimum QE ISVSVN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_qe_svn: Option<u16>,
    /// Minimum PCE SVN (the PCK certificate's PCESVN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pce_svn: Option<u16>,
    /// Whether the PCK CRL and the Root CA CRL must have been applied. Absent: `"required"`
    /// (fail closed: a quote verified without them, which only a verifier told to allow
    /// missing CRLs does, fails); `"if-given"` accepts such a quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
}

/// SGX rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgxPolicy {
    /// MRENCLAVE allow-list. Required.
    pub mr_enclave: AllowList<32>,
    /// MRSIGNER allow-list (the enclave signer). Required.
    pub mr_signer: AllowList<32>,
    /// ATTRIBUTES.DEBUG. Required (`"must-not"` in production).
    pub debug: Bit,
    /// Intel TCB controls; `accepted_statuses` is required.
    pub tcb: IntelTcbPolicy,

    /// ISVPRODID allow-list. Required, as `min_isv_svn` is, when the policy trusts a signer
    /// (`mr_enclave = "any"` with `mr_signer` pinned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isv_prod_id: Option<RefList<u16>>,
    /// Minimum ISVSVN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_isv_svn: Option<u16>,
    /// ISVEXTPRODID allow-list (16 bytes; the signer's extended product id, KSS enclaves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isv_ext_prod_id: Option<AllowList<16>>,
    /// ISVFAMILYID allow-list (16 bytes; the signer's product family id, KSS enclaves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isv_family_id: Option<AllowList<16>>,
    /// CONFIGID allow-list (64 bytes). With `ATTRIBUTES.KSS` set the enclave's (untrusted)
    /// loader chose CONFIGID, so an enclave with KSS fails the rule when the policy leaves it
    /// out: pin it, or write `"any"` to accept any configuration on purpose. Without KSS,
    /// absent is "not checked".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_id: Option<AllowList<64>>,
    /// Minimum CONFIGSVN (the security version the loader gave the configuration). The
    /// untrusted loader chooses CONFIGSVN as it chooses CONFIGID, so the floor does not tell
    /// configurations apart: with several CONFIGIDs allowed, an old one can be started with a
    /// high CONFIGSVN and pass. It means something only beside a single pinned CONFIGID (remove
    /// a configuration from `config_id` to stop accepting it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_config_svn: Option<u16>,
    /// ATTRIBUTES (16 bytes) compared under a mask: `(attributes & mask) == (value & mask)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<SgxAttributesRule>,
    /// REPORTDATA allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_data: Option<AllowList<64>>,
}

/// ATTRIBUTES under a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgxAttributesRule {
    /// Expected value.
    pub value: Hex<16>,
    /// Bits compared.
    pub mask: Hex<16>,
}
