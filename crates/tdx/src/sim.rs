//! A simulated Intel DCAP PKI that signs TDX and SGX quotes and collateral with chosen fields
//! and TCB levels — for negative tests and for users without hardware.
//!
//! Like Intel's: a P-256 root, a PCK CA, PCK certificates with the SGX extensions, a TCB
//! Signing certificate that signs TCB info and QE identity JSON, and CRLs from the root and the
//! PCK CA. Its root is trusted only through [`SimPcs::dangerous_trust_anchors`] (or the CLI's
//! `--dangerous-test-root`). Collateral comes out in the dcap-qvl bundle layout, so the same
//! parser that reads real collateral reads it.

use serde_json::{Value, json};
use tessera_pki::builder::{
    CertificateSpec, CrlSpec, IssuerKey, KeyedCertificate, basic_constraints_extension,
    issue_certificate, issue_crl, key_usage_extension, name,
};
use tessera_pki::{Certificate, PublicKeyKind, UnixTime, sha256, to_hex, to_pem};

use crate::TdxError;
use crate::abi::{
    ATTESTATION_KEY_TYPE_ECDSA_P256, EnclaveReport, INTEL_QE_VENDOR_ID, QeCertificationData, Quote,
    QuoteBody, QuoteHeader, QuoteSignatureData, SgxAttributes, TdAttributes, TdReport10,
    TdReport15, TdReport15Ex, TeeType, Xfam,
};
use crate::collateral::{Collateral, TcbInfoId, TcbStatus};
use crate::pck::{PckExtensions, PckTcb, SgxType};
use crate::verify::TrustAnchors;

/// 2020-01-01T00:00:00Z: the simulated certificates' notBefore.
pub const SIM_NOT_BEFORE: UnixTime = UnixTime::from_secs(1_577_836_800);
/// 2049-12-31T23:59:59Z: the simulated certificates' notAfter.
pub const SIM_NOT_AFTER: UnixTime = UnixTime::from_secs(2_524_607_999);
/// 2026-01-01T00:00:00Z: the default issue date of simulated collateral.
pub const SIM_ISSUE_DATE: UnixTime = UnixTime::from_secs(1_767_225_600);
/// 30 days after [`SIM_ISSUE_DATE`]: the default nextUpdate.
pub const SIM_NEXT_UPDATE: UnixTime = UnixTime::from_secs(1_767_225_600 + 30 * 86_400);
/// A time inside every default window: verify simulated quotes at this time.
pub const SIM_VERIFY_AT: UnixTime = UnixTime::from_secs(1_767_225_600 + 86_400);

/// MRSIGNER of the simulated quoting enclave.
pub const SIM_QE_MRSIGNER: [u8; 32] = [0x5e; 32];

/// Serial number of the simulated PCK Platform CA certificate.
pub const SIM_PCK_CA_SERIAL: u64 = 2;
/// Serial number of the simulated TCB Signing certificate.
pub const SIM_TCB_SIGNING_SERIAL: u64 = 3;
/// Serial number of the simulated PCK Processor CA certificate (it issues no PCK certificate;
/// see [`CollateralSpec::processor_ca_crl`]).
pub const SIM_PROCESSOR_CA_SERIAL: u64 = 4;

fn sim_err(e: tessera_pki::PkiError) -> TdxError {
    TdxError::Pki {
        check: "simulator",
        source: e,
    }
}

fn intel_style_name(cn: &str) -> Result<Vec<u8>, TdxError> {
    name(&[
        ("2.5.4.3", cn),
        ("2.5.4.10", "Tessera Simulator (not Intel)"),
        ("2.5.4.7", "Santa Clara"),
        ("2.5.4.8", "CA"),
        ("2.5.4.6", "US"),
    ])
    .map_err(sim_err)
}

fn cert_spec(
    serial: u64,
    issuer: &str,
    subject: &str,
    ca: bool,
) -> Result<CertificateSpec, TdxError> {
    Ok(CertificateSpec {
        serial: serial.to_be_bytes().to_vec(),
        issuer: intel_style_name(issuer)?,
        subject: intel_style_name(subject)?,
        not_before: SIM_NOT_BEFORE,
        not_after: SIM_NOT_AFTER,
        ca: Some(ca),
        extensions: Vec::new(),
        pss_explicit_trailer: false,
    })
}

/// A certificate spec with Intel's constraints: `path_len` for a CA (`None`: a leaf).
fn constrained_spec(
    serial: u64,
    issuer: &str,
    subject: &str,
    ca_path_len: Option<Option<u64>>,
    usage: u8,
) -> Result<CertificateSpec, TdxError> {
    let mut spec = cert_spec(serial, issuer, subject, false)?;
    spec.ca = None;
    spec.extensions = vec![
        basic_constraints_extension(ca_path_len.is_some(), ca_path_len.flatten()),
        key_usage_extension(usage),
    ];
    Ok(spec)
}

/// What the simulated PKI's certificates constrain, for negative tests of those checks. The
/// default is Intel's: root pathLenConstraint 1, the CAs 0, the TCB Signing certificate's
/// keyUsage digitalSignature and nonRepudiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimConstraints {
    /// The root's pathLenConstraint (`None` omits it).
    pub root_path_len: Option<u64>,
    /// The first byte of the TCB Signing certificate's keyUsage bits.
    pub tcb_signer_key_usage: u8,
}

impl Default for SimConstraints {
    fn default() -> Self {
        Self {
            root_path_len: Some(1),
            tcb_signer_key_usage: 0xC0,
        }
    }
}

fn issue(
    spec: &CertificateSpec,
    subject_key: &IssuerKey,
    issuer_key: &IssuerKey,
) -> Result<Certificate, TdxError> {
    let der = issue_certificate(spec, &subject_key.spki_der().map_err(sim_err)?, issuer_key)
        .map_err(sim_err)?;
    Certificate::from_der(&der).map_err(sim_err)
}

fn p256() -> Result<IssuerKey, TdxError> {
    IssuerKey::generate_ec(PublicKeyKind::EcP256).map_err(sim_err)
}

fn sign64(key: &IssuerKey, msg: &[u8]) -> Result<[u8; 64], TdxError> {
    let sig = key.sign_fixed(msg).map_err(sim_err)?;
    <[u8; 64]>::try_from(sig.as_slice())
        .map_err(|_| TdxError::Simulator(String::from("P-256 signature is not 64 bytes")))
}

const ROOT_CN: &str = "Tessera Sim SGX Root CA";
const PCK_CA_CN: &str = "Tessera Sim SGX PCK Platform CA";
const PROCESSOR_CA_CN: &str = "Tessera Sim SGX PCK Processor CA";
const TCB_CN: &str = "Tessera Sim SGX TCB Signing";

/// The platform a simulated PCK certificate describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSpec {
    /// FMSPC.
    pub fmspc: [u8; 6],
    /// PCE-ID.
    pub pce_id: [u8; 2],
    /// SGX TCB components.
    pub comp_svn: [u8; 16],
    /// PCE SVN.
    pub pce_svn: u16,
    /// PCK serial number.
    pub serial: u64,
}

impl Default for PlatformSpec {
    fn default() -> Self {
        Self {
            fmspc: [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00],
            pce_id: [0, 0],
            comp_svn: [7, 7, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
            pce_svn: 13,
            serial: 0x1000,
        }
    }
}

/// The quoting enclave a simulated quote carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QeSpec {
    /// MRSIGNER.
    pub mr_signer: [u8; 32],
    /// ISVPRODID (2 for the TD QE, 1 for the SGX QE).
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// MISCSELECT.
    pub misc_select: u32,
    /// ATTRIBUTES.
    pub attributes: [u8; 16],
}

impl QeSpec {
    /// The QE of a TDX quote.
    #[must_use]
    pub fn td_qe() -> Self {
        let mut attributes = [0u8; 16];
        attributes[0] = 0x11;
        Self {
            mr_signer: SIM_QE_MRSIGNER,
            isv_prod_id: 2,
            isv_svn: 4,
            misc_select: 0,
            attributes,
        }
    }

    /// The QE of an SGX quote.
    #[must_use]
    pub fn sgx_qe() -> Self {
        Self {
            isv_prod_id: 1,
            isv_svn: 8,
            ..Self::td_qe()
        }
    }
}

/// Which body a simulated quote has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimBody {
    /// v4 quote, TD 1.0 body.
    Td10,
    /// v5 quote, TD 1.5 body.
    Td15,
    /// v5 quote, TD 1.5ex body (type 4: TD partitioning and migration fields).
    Td15Ex,
    /// v3 quote, SGX enclave body.
    Sgx,
}

/// The fields of a simulated quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteSpec {
    /// The body kind (and so the version).
    pub body: SimBody,
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// MRTD.
    pub mr_td: [u8; 48],
    /// RTMR0..3.
    pub rtmr: [[u8; 48]; 4],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// TD_ATTRIBUTES.
    pub td_attributes: u64,
    /// XFAM.
    pub xfam: u64,
    /// TEE_TCB_SVN (\[0\] module SVN, \[1\] module version).
    pub tee_tcb_svn: [u8; 16],
    /// TEE_TCB_SVN2 (TD 1.5).
    pub tee_tcb_svn2: [u8; 16],
    /// MRSEAM.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM.
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// MRSERVICETD (TD 1.5).
    pub mr_service_td: [u8; 48],
    /// SGX: MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// SGX: MRSIGNER.
    pub mr_signer: [u8; 32],
    /// SGX: ISVPRODID.
    pub isv_prod_id: u16,
    /// SGX: ISVSVN.
    pub isv_svn: u16,
    /// SGX: ATTRIBUTES.
    pub sgx_attributes: [u8; 16],
    /// The quoting enclave.
    pub qe: QeSpec,
    /// QE vendor ID in the header.
    pub qe_vendor_id: [u8; 16],
    /// QE authentication data.
    pub qe_auth_data: Vec<u8>,
}

impl QuoteSpec {
    /// A TD 1.0 quote (v4) with a TDX module 1.x and SEPT_VE_DISABLE set.
    #[must_use]
    pub fn tdx() -> Self {
        Self {
            body: SimBody::Td10,
            report_data: [0; 64],
            mr_td: [0x7d; 48],
            rtmr: [[0x10; 48], [0x11; 48], [0x12; 48], [0x13; 48]],
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            td_attributes: 1 << 28,
            xfam: 0x0006_02e7,
            tee_tcb_svn: [3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            tee_tcb_svn2: [3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            mr_seam: [0x5a; 48],
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            mr_service_td: [0; 48],
            mr_enclave: [0; 32],
            mr_signer: [0; 32],
            isv_prod_id: 0,
            isv_svn: 0,
            sgx_attributes: [0; 16],
            qe: QeSpec::td_qe(),
            qe_vendor_id: INTEL_QE_VENDOR_ID,
            qe_auth_data: (0u8..32).collect(),
        }
    }

    /// A TD 1.5 quote (v5, body type 3).
    #[must_use]
    pub fn tdx15() -> Self {
        Self {
            body: SimBody::Td15,
            ..Self::tdx()
        }
    }

    /// A TD 1.5ex quote (v5, body type 4).
    #[must_use]
    pub fn tdx15ex() -> Self {
        Self {
            body: SimBody::Td15Ex,
            ..Self::tdx()
        }
    }

    /// An SGX quote (v3) of a production enclave.
    #[must_use]
    pub fn sgx() -> Self {
        let mut sgx_attributes = [0u8; 16];
        sgx_attributes[0] = 0x04; // MODE64BIT
        Self {
            body: SimBody::Sgx,
            mr_enclave: [0xe1; 32],
            mr_signer: [0xe2; 32],
            isv_prod_id: 1,
            isv_svn: 1,
            sgx_attributes,
            qe: QeSpec::sgx_qe(),
            ..Self::tdx()
        }
    }

    fn td10(&self) -> TdReport10 {
        TdReport10 {
            tee_tcb_svn: self.tee_tcb_svn,
            mr_seam: self.mr_seam,
            mr_signer_seam: self.mr_signer_seam,
            seam_attributes: self.seam_attributes,
            td_attributes: TdAttributes(self.td_attributes),
            xfam: Xfam(self.xfam),
            mr_td: self.mr_td,
            mr_config_id: self.mr_config_id,
            mr_owner: self.mr_owner,
            mr_owner_config: self.mr_owner_config,
            rtmr: self.rtmr,
            report_data: self.report_data,
        }
    }

    fn td15(&self) -> TdReport15 {
        TdReport15 {
            base: self.td10(),
            tee_tcb_svn2: self.tee_tcb_svn2,
            mr_service_td: self.mr_service_td,
        }
    }

    fn header_and_body(&self) -> (QuoteHeader, QuoteBody) {
        let (version, tee_type, body) = match self.body {
            SimBody::Td10 => (4, TeeType::TDX, QuoteBody::Td10(self.td10())),
            SimBody::Td15 => (5, TeeType::TDX, QuoteBody::Td15(self.td15())),
            SimBody::Td15Ex => (
                5,
                TeeType::TDX,
                QuoteBody::Td15Ex(Box::new(TdReport15Ex {
                    base: self.td15(),
                    vmid: 0,
                    td_id: [0x1d; 32],
                    dev_info: [0; 48],
                    init_servtd_hash: [0; 48],
                    init_servtd_attributes: [0; 8],
                    init_cpu_svn: [0; 16],
                    init_tee_tcb_svn: self.tee_tcb_svn,
                    init_tee_fmspc: [0; 12],
                    current_servtd_hash: [0; 48],
                    current_servtd_attributes: [0; 8],
                })),
            ),
            SimBody::Sgx => (
                3,
                TeeType::SGX,
                QuoteBody::Sgx(enclave_report(
                    [0; 16],
                    0,
                    self.sgx_attributes,
                    self.mr_enclave,
                    self.mr_signer,
                    self.isv_prod_id,
                    self.isv_svn,
                    self.report_data,
                )),
            ),
        };
        let header = QuoteHeader {
            version,
            attestation_key_type: ATTESTATION_KEY_TYPE_ECDSA_P256,
            tee_type,
            qe_svn: 0,
            pce_svn: 0,
            qe_vendor_id: self.qe_vendor_id,
            user_data: [0; 20],
        };
        (header, body)
    }
}

#[allow(clippy::too_many_arguments)] // one argument per report field
fn enclave_report(
    cpu_svn: [u8; 16],
    misc_select: u32,
    attributes: [u8; 16],
    mr_enclave: [u8; 32],
    mr_signer: [u8; 32],
    isv_prod_id: u16,
    isv_svn: u16,
    report_data: [u8; 64],
) -> EnclaveReport {
    EnclaveReport {
        cpu_svn,
        misc_select,
        reserved1: [0; 28],
        attributes: SgxAttributes::from_bytes(attributes),
        mr_enclave,
        reserved2: [0; 32],
        mr_signer,
        reserved3: [0; 96],
        isv_prod_id,
        isv_svn,
        reserved4: [0; 60],
        report_data,
    }
}

/// One platform TCB level of simulated TCB info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelSpec {
    /// SGX components.
    pub sgx: [u8; 16],
    /// PCE SVN.
    pub pce_svn: u16,
    /// TDX components (TDX TCB info).
    pub tdx: Option<[u8; 16]>,
    /// Status.
    pub status: TcbStatus,
    /// tcbDate.
    pub date: UnixTime,
    /// Advisory IDs.
    pub advisories: Vec<String>,
}

/// One ISV-SVN level (TDX module identity or QE identity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsvLevelSpec {
    /// ISVSVN.
    pub isvsvn: u16,
    /// Status.
    pub status: TcbStatus,
    /// tcbDate.
    pub date: UnixTime,
    /// Advisory IDs.
    pub advisories: Vec<String>,
}

/// A TDX module identity of simulated TCB info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleSpec {
    /// `TDX_01`, ...
    pub id: String,
    /// mrsigner.
    pub mrsigner: [u8; 48],
    /// attributes.
    pub attributes: [u8; 8],
    /// attributesMask.
    pub attributes_mask: [u8; 8],
    /// Levels, newest first.
    pub levels: Vec<IsvLevelSpec>,
}

/// Everything simulated collateral says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollateralSpec {
    /// TCB info id.
    pub id: TcbInfoId,
    /// TCB info version (3; 2 for old SGX TCB info).
    pub version: u32,
    /// issueDate of the TCB info and QE identity; thisUpdate of the CRLs (unless `crl_dates`).
    pub issue_date: UnixTime,
    /// nextUpdate of all of them (of the CRLs unless `crl_dates`).
    pub next_update: UnixTime,
    /// tcbEvaluationDataNumber.
    pub tcb_evaluation_data_number: u32,
    /// FMSPC.
    pub fmspc: [u8; 6],
    /// PCE-ID.
    pub pce_id: [u8; 2],
    /// Platform levels, newest first.
    pub levels: Vec<LevelSpec>,
    /// `tdxModule` (module version 0).
    pub tdx_module: Option<ModuleSpec>,
    /// `tdxModuleIdentities`.
    pub module_identities: Vec<ModuleSpec>,
    /// QE identity (its `id` follows `id`: TD_QE or QE).
    pub qe: QeSpec,
    /// QE identity levels, newest first.
    pub qe_levels: Vec<IsvLevelSpec>,
    /// Include the PCK CRL.
    pub pck_crl: bool,
    /// Include the Root CA CRL.
    pub root_ca_crl: bool,
    /// PCK serials the PCK CRL revokes.
    pub revoked_pcks: Vec<u64>,
    /// Serials the Root CA CRL revokes ([`SIM_PCK_CA_SERIAL`], [`SIM_TCB_SIGNING_SERIAL`]).
    pub revoked_cas: Vec<u64>,
    /// thisUpdate and nextUpdate of both CRLs when they differ from `issue_date` and
    /// `next_update`; a `None` nextUpdate is omitted from the CRLs.
    pub crl_dates: Option<(UnixTime, Option<UnixTime>)>,
    /// Give the PCK CRL (and its issuer chain) of the PCK Processor CA, a CA the simulated PCK
    /// certificates are not issued by.
    pub processor_ca_crl: bool,
}

fn date(days_before_issue: i64) -> UnixTime {
    UnixTime::from_secs(SIM_ISSUE_DATE.as_secs() - days_before_issue * 86_400)
}

impl CollateralSpec {
    /// Collateral under which `platform` and `quote` get exactly `status`: one UpToDate level
    /// matching them, or (for another status) a newer UpToDate level they do not reach and a
    /// level matching them with `status` and an advisory.
    #[must_use]
    pub fn matching(platform: &PlatformSpec, quote: &QuoteSpec, status: TcbStatus) -> Self {
        let tdx = quote.body != SimBody::Sgx;
        let tdx_levels = tdx.then_some(quote.tee_tcb_svn);
        let current = LevelSpec {
            sgx: platform.comp_svn,
            pce_svn: platform.pce_svn,
            tdx: tdx_levels,
            status,
            date: date(400),
            advisories: if status == TcbStatus::UpToDate {
                Vec::new()
            } else {
                vec![String::from("INTEL-SA-00001")]
            },
        };
        let mut levels = Vec::new();
        if status != TcbStatus::UpToDate {
            let mut newer = current.clone();
            if let Some(c) = newer.sgx.first_mut() {
                *c = c.saturating_add(1);
            }
            newer.status = TcbStatus::UpToDate;
            newer.date = date(30);
            newer.advisories = Vec::new();
            levels.push(newer);
        }
        levels.push(current);
        let [module_svn, module_version, ..] = quote.tee_tcb_svn;
        let module_identities = if tdx && module_version > 0 {
            vec![ModuleSpec {
                id: format!("TDX_{module_version:02X}"),
                mrsigner: quote.mr_signer_seam,
                attributes: [0; 8],
                attributes_mask: [0xff; 8],
                levels: vec![IsvLevelSpec {
                    isvsvn: u16::from(module_svn),
                    status: TcbStatus::UpToDate,
                    date: date(400),
                    advisories: Vec::new(),
                }],
            }]
        } else {
            Vec::new()
        };
        Self {
            id: if tdx { TcbInfoId::Tdx } else { TcbInfoId::Sgx },
            version: 3,
            issue_date: SIM_ISSUE_DATE,
            next_update: SIM_NEXT_UPDATE,
            tcb_evaluation_data_number: 17,
            fmspc: platform.fmspc,
            pce_id: platform.pce_id,
            levels,
            tdx_module: tdx.then(|| ModuleSpec {
                id: String::from("TDX"),
                mrsigner: quote.mr_signer_seam,
                attributes: [0; 8],
                attributes_mask: [0xff; 8],
                levels: Vec::new(),
            }),
            module_identities,
            qe: quote.qe,
            qe_levels: vec![IsvLevelSpec {
                isvsvn: quote.qe.isv_svn,
                status: TcbStatus::UpToDate,
                date: date(400),
                advisories: Vec::new(),
            }],
            pck_crl: true,
            root_ca_crl: true,
            revoked_pcks: Vec::new(),
            revoked_cas: Vec::new(),
            crl_dates: None,
            processor_ca_crl: false,
        }
    }
}

fn date_json(t: UnixTime) -> String {
    t.to_string()
}

fn components_json(svns: &[u8; 16]) -> Value {
    Value::Array(svns.iter().map(|s| json!({ "svn": s })).collect())
}

fn isv_levels_json(levels: &[IsvLevelSpec]) -> Value {
    Value::Array(
        levels
            .iter()
            .map(|l| {
                json!({
                    "tcb": { "isvsvn": l.isvsvn },
                    "tcbDate": date_json(l.date),
                    "tcbStatus": l.status.as_str(),
                    "advisoryIDs": l.advisories,
                })
            })
            .collect(),
    )
}

fn module_json(m: &ModuleSpec, with_levels: bool) -> Value {
    let mut v = json!({
        "mrsigner": to_hex(&m.mrsigner).to_uppercase(),
        "attributes": to_hex(&m.attributes).to_uppercase(),
        "attributesMask": to_hex(&m.attributes_mask).to_uppercase(),
    });
    if with_levels && let Some(obj) = v.as_object_mut() {
        obj.insert(String::from("id"), Value::String(m.id.clone()));
        obj.insert(String::from("tcbLevels"), isv_levels_json(&m.levels));
    }
    v
}

/// The TCB info JSON body for `spec` (exactly the bytes that get signed).
fn tcb_info_json(spec: &CollateralSpec) -> String {
    let levels: Vec<Value> = spec
        .levels
        .iter()
        .map(|l| {
            let mut tcb = json!({
                "sgxtcbcomponents": components_json(&l.sgx),
                "pcesvn": l.pce_svn,
            });
            if spec.version == 2 {
                let mut flat = serde_json::Map::new();
                for (i, s) in l.sgx.iter().enumerate() {
                    flat.insert(format!("sgxtcbcomp{:02}svn", i + 1), json!(s));
                }
                flat.insert(String::from("pcesvn"), json!(l.pce_svn));
                tcb = Value::Object(flat);
            } else if let (Some(tdx), Some(obj)) = (&l.tdx, tcb.as_object_mut()) {
                obj.insert(String::from("tdxtcbcomponents"), components_json(tdx));
            }
            let mut level = json!({
                "tcb": tcb,
                "tcbDate": date_json(l.date),
                "tcbStatus": l.status.as_str(),
            });
            if spec.version >= 3
                && let Some(obj) = level.as_object_mut()
            {
                obj.insert(String::from("advisoryIDs"), json!(l.advisories));
            }
            level
        })
        .collect();
    let mut info = serde_json::Map::new();
    if spec.version >= 3 {
        let id = match spec.id {
            TcbInfoId::Tdx => "TDX",
            TcbInfoId::Sgx => "SGX",
        };
        info.insert(String::from("id"), json!(id));
    }
    info.insert(String::from("version"), json!(spec.version));
    info.insert(String::from("issueDate"), json!(date_json(spec.issue_date)));
    info.insert(
        String::from("nextUpdate"),
        json!(date_json(spec.next_update)),
    );
    info.insert(String::from("fmspc"), json!(to_hex(&spec.fmspc)));
    info.insert(String::from("pceId"), json!(to_hex(&spec.pce_id)));
    info.insert(String::from("tcbType"), json!(0));
    info.insert(
        String::from("tcbEvaluationDataNumber"),
        json!(spec.tcb_evaluation_data_number),
    );
    if let Some(m) = &spec.tdx_module {
        info.insert(String::from("tdxModule"), module_json(m, false));
    }
    if !spec.module_identities.is_empty() {
        info.insert(
            String::from("tdxModuleIdentities"),
            Value::Array(
                spec.module_identities
                    .iter()
                    .map(|m| module_json(m, true))
                    .collect(),
            ),
        );
    }
    info.insert(String::from("tcbLevels"), Value::Array(levels));
    Value::Object(info).to_string()
}

/// The QE identity JSON body for `spec`.
fn qe_identity_json(spec: &CollateralSpec) -> String {
    let id = match spec.id {
        TcbInfoId::Tdx => "TD_QE",
        TcbInfoId::Sgx => "QE",
    };
    let mut attributes_mask = [0xffu8; 16];
    if let Some(b) = attributes_mask.get_mut(8..) {
        b.fill(0);
    }
    json!({
        "id": id,
        "version": 2,
        "issueDate": date_json(spec.issue_date),
        "nextUpdate": date_json(spec.next_update),
        "tcbEvaluationDataNumber": spec.tcb_evaluation_data_number,
        "miscselect": format!("{:08X}", spec.qe.misc_select),
        "miscselectMask": "FFFFFFFF",
        "attributes": to_hex(&spec.qe.attributes).to_uppercase(),
        "attributesMask": to_hex(&attributes_mask).to_uppercase(),
        "mrsigner": to_hex(&spec.qe.mr_signer).to_uppercase(),
        "isvprodid": spec.qe.isv_prod_id,
        "tcbLevels": isv_levels_json(&spec.qe_levels),
    })
    .to_string()
}

/// A simulated Intel DCAP PKI: root, PCK CA and TCB Signing certificate with their keys.
#[derive(Debug)]
pub struct SimPcs {
    root_key: IssuerKey,
    root: Certificate,
    pck_ca_key: IssuerKey,
    pck_ca: Certificate,
    processor_ca_key: IssuerKey,
    processor_ca: Certificate,
    tcb_key: IssuerKey,
    tcb_cert: Certificate,
}

/// A simulated PCK certificate and its key.
#[derive(Debug)]
pub struct SimPck {
    /// The platform it describes.
    pub platform: PlatformSpec,
    key: IssuerKey,
    cert: Certificate,
}

impl SimPck {
    /// The PCK certificate.
    #[must_use]
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// Sign `msg` with the PCK key (ECDSA P-256, `r || s`) — for tests that re-sign a changed
    /// QE report (as the PCE does), or that make a PCK key sign what it must not (collateral).
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) on backend failure.
    pub fn sign(&self, msg: &[u8]) -> Result<[u8; 64], TdxError> {
        sign64(&self.key, msg)
    }
}

impl SimPcs {
    /// Generate a fresh PKI.
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) on backend failure.
    pub fn new() -> Result<Self, TdxError> {
        Self::with_constraints(SimConstraints::default())
    }

    /// Generate a fresh PKI whose certificates carry `constraints`.
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) on backend failure.
    pub fn with_constraints(constraints: SimConstraints) -> Result<Self, TdxError> {
        let ca = |path_len| Some(Some(path_len));
        let root_key = p256()?;
        let root = issue(
            &constrained_spec(1, ROOT_CN, ROOT_CN, Some(constraints.root_path_len), 0x06)?,
            &root_key,
            &root_key,
        )?;
        let pck_ca_key = p256()?;
        let pck_ca = issue(
            &constrained_spec(SIM_PCK_CA_SERIAL, ROOT_CN, PCK_CA_CN, ca(0), 0x06)?,
            &pck_ca_key,
            &root_key,
        )?;
        let processor_ca_key = p256()?;
        let processor_ca = issue(
            &constrained_spec(
                SIM_PROCESSOR_CA_SERIAL,
                ROOT_CN,
                PROCESSOR_CA_CN,
                ca(0),
                0x06,
            )?,
            &processor_ca_key,
            &root_key,
        )?;
        let tcb_key = p256()?;
        let tcb_cert = issue(
            &constrained_spec(
                SIM_TCB_SIGNING_SERIAL,
                ROOT_CN,
                TCB_CN,
                None,
                constraints.tcb_signer_key_usage,
            )?,
            &tcb_key,
            &root_key,
        )?;
        Ok(Self {
            root_key,
            root,
            pck_ca_key,
            pck_ca,
            processor_ca_key,
            processor_ca,
            tcb_key,
            tcb_cert,
        })
    }

    /// The root, PCK CA, Processor CA and TCB Signing certificates with their private keys, to
    /// keep this fake PKI on disk (`tessera sim --pki DIR`); [`SimPcs::import`] reads them back.
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) on backend failure.
    pub fn export(&self) -> Result<[KeyedCertificate; 4], TdxError> {
        Ok([
            KeyedCertificate::new(&self.root, &self.root_key).map_err(sim_err)?,
            KeyedCertificate::new(&self.pck_ca, &self.pck_ca_key).map_err(sim_err)?,
            KeyedCertificate::new(&self.processor_ca, &self.processor_ca_key).map_err(sim_err)?,
            KeyedCertificate::new(&self.tcb_cert, &self.tcb_key).map_err(sim_err)?,
        ])
    }

    /// A fake PKI from what [`SimPcs::export`] wrote (`[root, pck_ca, processor_ca, tcb]`):
    /// each key must be its certificate's, the root self-signed, the others signed by it.
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) naming what does not fit.
    pub fn import(parts: &[KeyedCertificate; 4]) -> Result<Self, TdxError> {
        let [root, pck_ca, processor_ca, tcb] = parts;
        if !root.certificate.is_self_issued() {
            return Err(sim_err(tessera_pki::PkiError::Builder(
                "the root is not self-issued",
            )));
        }
        let mut budget = tessera_pki::Budget::default();
        for c in parts {
            tessera_pki::verify_issued_by(&c.certificate, &root.certificate, &mut budget)
                .map_err(sim_err)?;
        }
        Ok(Self {
            root_key: root.key().map_err(sim_err)?,
            root: root.certificate.clone(),
            pck_ca_key: pck_ca.key().map_err(sim_err)?,
            pck_ca: pck_ca.certificate.clone(),
            processor_ca_key: processor_ca.key().map_err(sim_err)?,
            processor_ca: processor_ca.certificate.clone(),
            tcb_key: tcb.key().map_err(sim_err)?,
            tcb_cert: tcb.certificate.clone(),
        })
    }

    /// The simulated root certificate.
    #[must_use]
    pub fn root(&self) -> &Certificate {
        &self.root
    }

    /// Trust anchors that accept this simulator's root — dangerous outside tests.
    #[must_use]
    pub fn dangerous_trust_anchors(&self) -> TrustAnchors {
        TrustAnchors::dangerous_custom(self.root.clone())
    }

    /// Issue a PCK certificate for `platform`.
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) on backend failure.
    pub fn issue_pck(&self, platform: &PlatformSpec) -> Result<SimPck, TdxError> {
        let ext = PckExtensions {
            ppid: [0x99; 16],
            tcb: PckTcb {
                comp_svn: platform.comp_svn,
                pce_svn: platform.pce_svn,
                cpu_svn: platform.comp_svn,
            },
            pce_id: platform.pce_id,
            fmspc: platform.fmspc,
            sgx_type: SgxType::Scalable,
            platform_instance_id: None,
            configuration: None,
        };
        self.issue_pck_with_sgx_extension(platform, Some(&ext.to_der()))
    }

    /// Issue a PCK certificate for `platform` whose SGX extension value is `sgx_extension`
    /// as given (`None` omits the extension) — for negative tests of the PCK extensions.
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) on backend failure.
    pub fn issue_pck_with_sgx_extension(
        &self,
        platform: &PlatformSpec,
        sgx_extension: Option<&[u8]>,
    ) -> Result<SimPck, TdxError> {
        self.issue_pck_with_extensions(platform, sgx_extension, 0xC0, Vec::new())
    }

    /// Issue a PCK certificate for `platform` with `sgx_extension` (as in
    /// [`SimPcs::issue_pck_with_sgx_extension`]), keyUsage bits `key_usage` (first byte) and
    /// `extra` extensions (dotted OID, critical, value) — for negative tests of the path checks.
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) on backend failure.
    pub fn issue_pck_with_extensions(
        &self,
        platform: &PlatformSpec,
        sgx_extension: Option<&[u8]>,
        key_usage: u8,
        extra: Vec<(String, bool, Vec<u8>)>,
    ) -> Result<SimPck, TdxError> {
        let key = p256()?;
        let mut spec = constrained_spec(
            platform.serial,
            PCK_CA_CN,
            "Tessera Sim SGX PCK Certificate",
            None,
            key_usage,
        )?;
        spec.extensions.extend(extra);
        if let Some(ext) = sgx_extension {
            spec.extensions.push((
                String::from(crate::pck::OID_SGX_EXTENSIONS),
                false,
                ext.to_vec(),
            ));
        }
        let cert = issue(&spec, &key, &self.pck_ca_key)?;
        Ok(SimPck {
            platform: platform.clone(),
            key,
            cert,
        })
    }

    /// Sign a quote with the fields of `spec`, certified by `pck`.
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) on backend failure; [`TdxError::Parse`] when the spec
    /// makes an inconsistent quote.
    pub fn quote(&self, pck: &SimPck, spec: &QuoteSpec) -> Result<Quote, TdxError> {
        let attestation = p256()?;
        let public = attestation.public_key();
        let attestation_key: [u8; 64] = public
            .raw()
            .get(1..)
            .and_then(|xy| <[u8; 64]>::try_from(xy).ok())
            .ok_or_else(|| TdxError::Simulator(String::from("P-256 point is not 65 bytes")))?;
        let mut bound = attestation_key.to_vec();
        bound.extend_from_slice(&spec.qe_auth_data);
        let mut qe_report_data = [0u8; 64];
        if let Some(first) = qe_report_data.get_mut(..32) {
            first.copy_from_slice(&sha256(&bound));
        }
        let qe_report = enclave_report(
            pck.platform.comp_svn,
            spec.qe.misc_select,
            spec.qe.attributes,
            [0xc0; 32],
            spec.qe.mr_signer,
            spec.qe.isv_prod_id,
            spec.qe.isv_svn,
            qe_report_data,
        );
        let qe_report_signature = sign64(&pck.key, &qe_report.to_bytes())?;
        let mut chain = to_pem("CERTIFICATE", pck.cert.der());
        chain.push_str(&to_pem("CERTIFICATE", self.pck_ca.der()));
        chain.push_str(&to_pem("CERTIFICATE", self.root.der()));
        let certification = QeCertificationData {
            qe_report,
            qe_report_signature,
            qe_auth_data: spec.qe_auth_data.clone(),
            pck_cert_chain: chain.into_bytes(),
        };
        let (header, body) = spec.header_and_body();
        let unsigned = Quote::new(
            header,
            body,
            QuoteSignatureData {
                signature: [0; 64],
                attestation_key,
                certification,
            },
        )?;
        let signature = sign64(&attestation, unsigned.signed_bytes())?;
        Ok(unsigned.with_signature(signature))
    }

    /// Collateral for `spec`, in the dcap-qvl bundle JSON layout.
    ///
    /// # Errors
    /// [`TdxError::Pki`] (`simulator`) on backend failure.
    pub fn collateral_json(&self, spec: &CollateralSpec) -> Result<String, TdxError> {
        let tcb_info = tcb_info_json(spec);
        let qe_identity = qe_identity_json(spec);
        let tcb_sig = sign64(&self.tcb_key, tcb_info.as_bytes())?;
        let qe_sig = sign64(&self.tcb_key, qe_identity.as_bytes())?;
        let mut tcb_chain = to_pem("CERTIFICATE", self.tcb_cert.der());
        tcb_chain.push_str(&to_pem("CERTIFICATE", self.root.der()));
        let (crl_ca_cn, crl_ca_key, crl_ca) = if spec.processor_ca_crl {
            (PROCESSOR_CA_CN, &self.processor_ca_key, &self.processor_ca)
        } else {
            (PCK_CA_CN, &self.pck_ca_key, &self.pck_ca)
        };
        let mut pck_chain = to_pem("CERTIFICATE", crl_ca.der());
        pck_chain.push_str(&to_pem("CERTIFICATE", self.root.der()));
        let mut bundle = serde_json::Map::new();
        bundle.insert(String::from("tcb_info_issuer_chain"), json!(tcb_chain));
        bundle.insert(String::from("tcb_info"), json!(tcb_info));
        bundle.insert(String::from("tcb_info_signature"), json!(to_hex(&tcb_sig)));
        bundle.insert(String::from("qe_identity_issuer_chain"), json!(tcb_chain));
        bundle.insert(String::from("qe_identity"), json!(qe_identity));
        bundle.insert(
            String::from("qe_identity_signature"),
            json!(to_hex(&qe_sig)),
        );
        bundle.insert(String::from("pck_crl_issuer_chain"), json!(pck_chain));
        let (this_update, next_update) = spec
            .crl_dates
            .unwrap_or((spec.issue_date, Some(spec.next_update)));
        let serials = |s: &[u64]| s.iter().map(|s| s.to_be_bytes().to_vec()).collect();
        if spec.root_ca_crl {
            let crl = issue_crl(
                &CrlSpec {
                    issuer: intel_style_name(ROOT_CN)?,
                    this_update,
                    next_update,
                    revoked: serials(&spec.revoked_cas),
                },
                &self.root_key,
            )
            .map_err(sim_err)?;
            bundle.insert(String::from("root_ca_crl"), json!(to_hex(&crl)));
        }
        if spec.pck_crl {
            let crl = issue_crl(
                &CrlSpec {
                    issuer: intel_style_name(crl_ca_cn)?,
                    this_update,
                    next_update,
                    revoked: serials(&spec.revoked_pcks),
                },
                crl_ca_key,
            )
            .map_err(sim_err)?;
            bundle.insert(String::from("pck_crl"), json!(to_hex(&crl)));
        }
        Ok(Value::Object(bundle).to_string())
    }

    /// Collateral for `spec`, parsed.
    ///
    /// # Errors
    /// As [`SimPcs::collateral_json`], and [`TdxError::Collateral`] if the result does not
    /// parse (a simulator defect).
    pub fn collateral(&self, spec: &CollateralSpec) -> Result<Collateral, TdxError> {
        Ok(Collateral::from_bundle_json(
            self.collateral_json(spec)?.as_bytes(),
        )?)
    }
}
