//! Claims: a quote's fields and its verification results as a flat, JSON-ready view (hex for
//! bytes), for operators and policy.

use serde::Serialize;

use crate::abi::{EnclaveReport, Quote, QuoteBody, TdReport10};
use crate::tcb::TcbEvaluation;
use crate::verify::Verification;

fn hex(bytes: &[u8]) -> String {
    tessera_pki::to_hex(bytes)
}

/// TD_ATTRIBUTES decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[allow(clippy::struct_excessive_bools)] // one bool per attribute bit, as the spec defines them
pub struct TdAttributeClaims {
    /// Raw value (hex, as the little-endian u64 reads).
    pub raw: String,
    /// DEBUG (bit 0): the TD is debuggable; its memory is not confidential.
    pub debug: bool,
    /// SEPT_VE_DISABLE (bit 28).
    pub sept_ve_disable: bool,
    /// MIGRATABLE (bit 29).
    pub migratable: bool,
    /// PKS (bit 30).
    pub pks: bool,
    /// KL (bit 31).
    pub kl: bool,
    /// PERFMON (bit 63).
    pub perfmon: bool,
}

/// The fields of a TD report body (TD 1.0, and TD 1.5's additions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TdClaims {
    /// TEE_TCB_SVN (hex, 16 bytes).
    pub tee_tcb_svn: String,
    /// MRSEAM.
    pub mr_seam: String,
    /// MRSIGNERSEAM.
    pub mr_signer_seam: String,
    /// SEAMATTRIBUTES.
    pub seam_attributes: String,
    /// TD_ATTRIBUTES.
    pub td_attributes: TdAttributeClaims,
    /// XFAM (hex u64).
    pub xfam: String,
    /// MRTD.
    pub mr_td: String,
    /// MRCONFIGID.
    pub mr_config_id: String,
    /// MROWNER.
    pub mr_owner: String,
    /// MROWNERCONFIG.
    pub mr_owner_config: String,
    /// RTMR0..3.
    pub rtmr: [String; 4],
    /// REPORTDATA.
    pub report_data: String,
    /// TEE_TCB_SVN2 (TD 1.5).
    pub tee_tcb_svn2: Option<String>,
    /// MRSERVICETD (TD 1.5).
    pub mr_service_td: Option<String>,
    /// VMID (TD 1.5ex, body type 4): 0 for the TD itself (or its L1 VMM), 1 to 3 for an L2 VM
    /// of a partitioned TD, whose REPORTDATA is the L2's while MRTD and the RTMRs are the L1's.
    pub vmid: Option<u8>,
}

impl TdClaims {
    fn new(td: &TdReport10, body: &QuoteBody) -> Self {
        let a = td.td_attributes;
        Self {
            tee_tcb_svn: hex(&td.tee_tcb_svn),
            mr_seam: hex(&td.mr_seam),
            mr_signer_seam: hex(&td.mr_signer_seam),
            seam_attributes: hex(&td.seam_attributes),
            td_attributes: TdAttributeClaims {
                raw: format!("{:016x}", a.0),
                debug: a.debug(),
                sept_ve_disable: a.sept_ve_disable(),
                migratable: a.migratable(),
                pks: a.pks(),
                kl: a.kl(),
                perfmon: a.perfmon(),
            },
            xfam: format!("{:016x}", td.xfam.0),
            mr_td: hex(&td.mr_td),
            mr_config_id: hex(&td.mr_config_id),
            mr_owner: hex(&td.mr_owner),
            mr_owner_config: hex(&td.mr_owner_config),
            rtmr: td.rtmr.each_ref().map(|r| hex(r)),
            report_data: hex(&td.report_data),
            tee_tcb_svn2: body.td15().map(|t| hex(&t.tee_tcb_svn2)),
            mr_service_td: body.td15().map(|t| hex(&t.mr_service_td)),
            vmid: body.td15_ex().map(|t| t.vmid),
        }
    }
}

/// The fields of an SGX enclave report body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnclaveClaims {
    /// CPUSVN.
    pub cpu_svn: String,
    /// MISCSELECT (hex u32).
    pub misc_select: String,
    /// ATTRIBUTES (hex, 16 bytes).
    pub attributes: String,
    /// ATTRIBUTES.DEBUG.
    pub debug: bool,
    /// ATTRIBUTES.MODE64BIT.
    pub mode64bit: bool,
    /// ATTRIBUTES.KSS (key separation and sharing): the four fields below are part of the
    /// enclave's identity.
    pub kss: bool,
    /// MRENCLAVE.
    pub mr_enclave: String,
    /// MRSIGNER.
    pub mr_signer: String,
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// ISVEXTPRODID (hex, 16 bytes; KSS): the signer's extended product id.
    pub isv_ext_prod_id: String,
    /// ISVFAMILYID (hex, 16 bytes; KSS): the signer's product family id.
    pub isv_family_id: String,
    /// CONFIGID (hex, 64 bytes; KSS): the configuration the enclave's loader chose.
    pub config_id: String,
    /// CONFIGSVN (KSS): the security version of that configuration.
    pub config_svn: u16,
    /// REPORTDATA.
    pub report_data: String,
}

impl EnclaveClaims {
    fn new(r: &EnclaveReport) -> Self {
        Self {
            cpu_svn: hex(&r.cpu_svn),
            misc_select: format!("{:08x}", r.misc_select),
            attributes: hex(&r.attributes.to_bytes()),
            debug: r.attributes.debug(),
            mode64bit: r.attributes.mode64bit(),
            kss: r.attributes.kss(),
            mr_enclave: hex(&r.mr_enclave),
            mr_signer: hex(&r.mr_signer),
            isv_prod_id: r.isv_prod_id,
            isv_svn: r.isv_svn,
            isv_ext_prod_id: hex(&r.isv_ext_prod_id()),
            isv_family_id: hex(&r.isv_family_id()),
            config_id: hex(&r.config_id()),
            config_svn: r.config_svn(),
            report_data: hex(&r.report_data),
        }
    }
}

/// Every field of a quote, decoded. Made from any quote (`show`) or a verified one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuoteClaims {
    /// `tdx` or `sgx`.
    pub tee: &'static str,
    /// Quote version (3, 4, 5).
    pub version: u16,
    /// Body type (1 SGX, 2 TD 1.0, 3 TD 1.5, 4 TD 1.5ex).
    pub body_type: u16,
    /// QE vendor ID (hex).
    pub qe_vendor_id: String,
    /// User data from the header (hex).
    pub user_data: String,
    /// TD body fields (TDX).
    pub td: Option<TdClaims>,
    /// Enclave body fields (SGX).
    pub enclave: Option<EnclaveClaims>,
    /// The quoting enclave's report.
    pub qe: EnclaveClaims,
    /// Trailing zero bytes after the signature data.
    pub trailing_padding: usize,
}

impl QuoteClaims {
    /// Decode `quote`.
    #[must_use]
    pub fn new(quote: &Quote) -> Self {
        let body = quote.body();
        Self {
            tee: if body.td().is_some() { "tdx" } else { "sgx" },
            version: quote.version(),
            body_type: body.body_type(),
            qe_vendor_id: hex(&quote.header().qe_vendor_id),
            user_data: hex(&quote.header().user_data),
            td: body.td().map(|td| TdClaims::new(td, body)),
            enclave: body.sgx().map(EnclaveClaims::new),
            qe: EnclaveClaims::new(&quote.signature_data().certification.qe_report),
            trailing_padding: quote.trailing_padding(),
        }
    }
}

/// A TCB component below the newest level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BehindClaim {
    /// The component.
    pub component: String,
    /// The platform's value.
    pub actual: u16,
    /// The value required to be up to date: the newest TCB level's. Named `required`, like the
    /// `behind` entries of an appraisal, so scripts read one shape.
    pub required: u16,
}

/// What verification established, JSON-ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerificationClaims {
    /// Intel's converged TCB status name.
    pub tcb_status: &'static str,
    /// The platform level's own status.
    pub platform_tcb_status: &'static str,
    /// The TDX module level's status (module version > 0).
    pub tdx_module_tcb_status: Option<&'static str>,
    /// The QE level's status.
    pub qe_tcb_status: &'static str,
    /// TD 1.5: relaunching would reach the newest TCB.
    pub td_relaunch_advised: bool,
    /// Advisory IDs of the selected levels.
    pub advisory_ids: Vec<String>,
    /// Whether the platform level's advisory IDs are known (false with SGX TCB info version 2,
    /// which need not list them: then `advisory_ids` holds the QE level's alone).
    pub platform_advisories_listed: bool,
    /// The earliest tcbDate of the selected levels (RFC 3339).
    pub tcb_date: String,
    /// TCB info tcbEvaluationDataNumber.
    pub tcb_evaluation_data_number: u32,
    /// Components below the newest level.
    pub behind: Vec<BehindClaim>,
    /// FMSPC (hex).
    pub fmspc: String,
    /// PCE-ID (hex).
    pub pce_id: String,
    /// PCK CPUSVN components (hex).
    pub pck_cpu_svn: String,
    /// PCK PCESVN.
    pub pck_pce_svn: u16,
    /// PPID (hex).
    pub ppid: String,
    /// Whether both CRLs were applied.
    pub revocation_checked: bool,
    /// Until when the collateral and certificates used stay valid (RFC 3339).
    pub valid_until: String,
    /// PCK chain subjects, leaf first.
    pub pck_chain: Vec<String>,
    /// A test root was trusted.
    pub dangerous_test_root: bool,
}

impl VerificationClaims {
    /// Summarise `v`.
    #[must_use]
    pub fn new(v: &Verification) -> Self {
        let t: &TcbEvaluation = &v.tcb;
        Self {
            tcb_status: t.status.as_str(),
            platform_tcb_status: t.platform.status.as_str(),
            tdx_module_tcb_status: t.tdx_module.as_ref().map(|m| m.status.as_str()),
            qe_tcb_status: t.qe.status.as_str(),
            td_relaunch_advised: t.td_relaunch_advised,
            advisory_ids: t.advisory_ids.clone(),
            platform_advisories_listed: t.platform_advisories_listed,
            tcb_date: t.tcb_date.to_string(),
            tcb_evaluation_data_number: t.tcb_evaluation_data_number,
            behind: t
                .behind
                .iter()
                .map(|b| BehindClaim {
                    component: b.component.clone(),
                    actual: b.actual,
                    required: b.latest,
                })
                .collect(),
            fmspc: hex(&v.pck.fmspc),
            pce_id: hex(&v.pck.pce_id),
            pck_cpu_svn: hex(&v.pck.tcb.comp_svn),
            pck_pce_svn: v.pck.tcb.pce_svn,
            ppid: hex(&v.pck.ppid),
            revocation_checked: v.revocation_checked,
            valid_until: v.valid_until.to_string(),
            pck_chain: v.pck_chain.iter().map(|l| l.subject.clone()).collect(),
            dangerous_test_root: v.dangerous_root,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{PlatformSpec, QuoteSpec, SimPcs};

    fn quote_of(spec: &QuoteSpec) -> Quote {
        let pcs = SimPcs::new().unwrap();
        let pck = pcs.issue_pck(&PlatformSpec::default()).unwrap();
        pcs.quote(&pck, spec).unwrap()
    }

    /// The same quote with another body (its signature no longer verifies; claims do not care).
    fn with_body(quote: &Quote, body: QuoteBody) -> Quote {
        Quote::new(quote.header().clone(), body, quote.signature_data().clone()).unwrap()
    }

    #[test]
    fn kss_identity_is_claimed() {
        let mut spec = QuoteSpec::sgx();
        spec.sgx_attributes[0] |= 0x80; // KSS
        let quote = quote_of(&spec);
        let mut report = quote.body().sgx().unwrap().clone();
        report.set_isv_ext_prod_id([0xE1; 16]);
        report.set_isv_family_id([0xF1; 16]);
        report.set_config_id([0xC1; 64]);
        report.set_config_svn(7);
        let claims = QuoteClaims::new(&with_body(&quote, QuoteBody::Sgx(report)));
        let enclave = claims.enclave.unwrap();
        assert!(enclave.kss);
        assert_eq!(enclave.isv_ext_prod_id, "e1".repeat(16));
        assert_eq!(enclave.isv_family_id, "f1".repeat(16));
        assert_eq!(enclave.config_id, "c1".repeat(64));
        assert_eq!(enclave.config_svn, 7);
        // The QE is no KSS enclave.
        assert!(!claims.qe.kss);
        assert_eq!(claims.qe.config_id, "00".repeat(64));
        assert!(claims.td.is_none());
    }

    #[test]
    fn vmid_is_claimed_for_td15ex_bodies_only() {
        let quote = quote_of(&QuoteSpec::tdx15ex());
        let mut td = quote.body().td15_ex().unwrap().clone();
        td.vmid = 2;
        let claims = QuoteClaims::new(&with_body(&quote, QuoteBody::Td15Ex(Box::new(td))));
        assert_eq!(claims.body_type, 4);
        assert_eq!(claims.td.unwrap().vmid, Some(2));
        let td15 = QuoteClaims::new(&quote_of(&QuoteSpec::tdx15()));
        assert_eq!(td15.td.unwrap().vmid, None);
    }
}
