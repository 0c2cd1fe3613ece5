//! Weak settings in a valid policy: what `tessera policy check` warns about.

use serde::Serialize;
use tessera_tdx::collateral::TcbStatus;

use crate::model::{IntelTcbPolicy, Policy, Revocation, TdAttribute};
use crate::value::{Bit, Setting};

/// A weak setting: valid, but probably not what a production policy wants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The field (`snp.debug`, `tdx.tcb.accepted_statuses`).
    pub field: String,
    /// What it allows.
    pub message: String,
}

fn warn(out: &mut Vec<Warning>, field: &str, message: &str) {
    out.push(Warning {
        field: field.to_owned(),
        message: message.to_owned(),
    });
}

fn debug_bit(out: &mut Vec<Warning>, field: &str, bit: Bit) {
    match bit {
        Bit::MustNot => {}
        Bit::Any => warn(
            out,
            field,
            "debug is allowed: a debuggable guest's memory is not confidential",
        ),
        Bit::Must => warn(
            out,
            field,
            "debug is REQUIRED: only debuggable guests pass, whose memory is not confidential",
        ),
    }
}

fn intel_tcb(out: &mut Vec<Warning>, prefix: &str, tcb: &IntelTcbPolicy) {
    let field = format!("{prefix}.tcb.accepted_statuses");
    match &tcb.accepted_statuses {
        Setting::Any => warn(
            out,
            &field,
            "every TCB status is accepted, including OutOfDate platforms with known vulnerabilities",
        ),
        Setting::Is(list) => {
            let ood = list.iter().any(|s| {
                matches!(
                    s.0,
                    TcbStatus::OutOfDate | TcbStatus::OutOfDateConfigurationNeeded
                )
            });
            if ood && tcb.grace_period.is_none() {
                warn(
                    out,
                    &field,
                    "OutOfDate platforms are accepted with no grace_period: they stay accepted however old their TCB gets",
                );
            }
        }
    }
    if tcb.revocation == Some(Revocation::IfGiven) {
        warn(
            out,
            &format!("{prefix}.tcb.revocation"),
            "a quote verified without the PCK and Root CA CRLs passes: a revoked PCK is not caught",
        );
    }
}

impl Policy {
    /// The weak settings of this policy (empty for a strict one).
    #[must_use]
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        if let Some(s) = &self.snp {
            if crate::load::snp_signer_based(s) {
                warn(
                    &mut out,
                    "snp.measurement",
                    "no measurement is pinned: any image the pinned ID or author key signed passes",
                );
            } else if matches!(s.measurement, Setting::Any) {
                warn(
                    &mut out,
                    "snp.measurement",
                    "no measurement is pinned: any guest image passes",
                );
            }
            debug_bit(&mut out, "snp.debug", s.debug);
            if matches!(s.min_tcb, Setting::Any) {
                warn(
                    &mut out,
                    "snp.min_tcb",
                    "no TCB floor: firmware and microcode with known vulnerabilities pass",
                );
            }
            if matches!(s.signer, Setting::Any) {
                warn(
                    &mut out,
                    "snp.signer",
                    "any VCEK or VLEK from any cloud provider may sign",
                );
            }
            if s.permit_provisional_firmware == Some(true) {
                warn(
                    &mut out,
                    "snp.permit_provisional_firmware",
                    "provisional (uncommitted) firmware is accepted: the host can roll it back",
                );
            }
            if matches!(s.vmpl, Setting::Any) {
                warn(
                    &mut out,
                    "snp.vmpl",
                    "VMPL is not checked: reports requested from a less privileged VMPL pass",
                );
            }
            if s.revocation == Revocation::IfGiven {
                warn(
                    &mut out,
                    "snp.revocation",
                    "evidence verified without AMD's current CRL passes: an intermediate AMD revoked after this Tessera build is not caught",
                );
            }
        }
        if let Some(t) = &self.tdx {
            let rtmrs = [&t.rtmr0, &t.rtmr1, &t.rtmr2, &t.rtmr3];
            let no_rtmr = rtmrs.iter().all(|r| matches!(r, Setting::Any));
            if matches!(t.mr_td, Setting::Any) && no_rtmr {
                warn(
                    &mut out,
                    "tdx.mr_td",
                    "neither MRTD nor any RTMR is pinned: any TD passes",
                );
            } else if matches!(t.mr_td, Setting::Any) {
                warn(
                    &mut out,
                    "tdx.mr_td",
                    "MRTD (the TD's firmware) is not pinned",
                );
            } else {
                // MRTD pinned: the firmware is; what it boots is measured in the RTMRs.
                for (field, rtmr, what) in [
                    (
                        "tdx.rtmr0",
                        &t.rtmr0,
                        "the firmware's configuration and the host's ACPI tables",
                    ),
                    ("tdx.rtmr1", &t.rtmr1, "the kernel (or boot loader)"),
                    ("tdx.rtmr2", &t.rtmr2, "the kernel command line and initrd"),
                ] {
                    if matches!(rtmr, Setting::Any) {
                        warn(
                            &mut out,
                            field,
                            &format!("\"any\": {what} as the host chooses passes"),
                        );
                    }
                }
            }
            debug_bit(&mut out, "tdx.debug", t.debug);
            let sept = t
                .td_attributes
                .as_ref()
                .is_some_and(|a| a.must_set.contains(&TdAttribute::SeptVeDisable));
            if !sept {
                warn(
                    &mut out,
                    "tdx.td_attributes",
                    "SEPT_VE_DISABLE is not required: the host can inject #VE on EPT violations",
                );
            }
            // Rules that contradict each other accept nothing: likely not what was meant.
            if let Some(a) = &t.td_attributes {
                let both: Vec<String> = a
                    .must_set
                    .iter()
                    .filter(|b| a.must_clear.contains(b))
                    // As the policy spells it (`pks`).
                    .map(|b| {
                        serde_json::to_value(b)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_else(|| format!("{b:?}"))
                    })
                    .collect();
                let debug_clash = (t.debug == Bit::Must
                    && a.must_clear.contains(&TdAttribute::Debug))
                    || (t.debug == Bit::MustNot && a.must_set.contains(&TdAttribute::Debug));
                if !both.is_empty() || debug_clash {
                    let what = if both.is_empty() {
                        String::from("tdx.debug and the DEBUG bit in td_attributes")
                    } else {
                        format!("{} both in must_set and in must_clear", both.join(", "))
                    };
                    warn(
                        &mut out,
                        "tdx.td_attributes",
                        &format!("{what} contradict: the policy accepts no TD"),
                    );
                }
            }
            if t.xfam.as_ref().is_some_and(|x| x.ignore_mask.0 == u64::MAX) {
                warn(
                    &mut out,
                    "tdx.xfam",
                    "the ignore_mask is all ones: no XFAM bit is compared",
                );
            }
            if t.vmids
                .as_ref()
                .is_some_and(|v| v.iter().any(|&id| id != 0))
            {
                warn(
                    &mut out,
                    "tdx.vmids",
                    "an L2 VM's quote passes: its REPORTDATA is the L2's, while MRTD and the RTMRs measure the L1 TD",
                );
            }
            intel_tcb(&mut out, "tdx", &t.tcb);
        }
        if let Some(g) = &self.sgx {
            if matches!(g.mr_enclave, Setting::Any) && matches!(g.mr_signer, Setting::Any) {
                warn(
                    &mut out,
                    "sgx.mr_enclave",
                    "neither MRENCLAVE nor MRSIGNER is pinned: any enclave passes",
                );
            }
            debug_bit(&mut out, "sgx.debug", g.debug);
            if g.attributes.as_ref().is_some_and(|a| a.mask.0 == [0; 16]) {
                warn(
                    &mut out,
                    "sgx.attributes",
                    "the mask is all zeros: no ATTRIBUTES bit is compared",
                );
            }
            if matches!(g.config_id, Some(Setting::Any)) {
                warn(
                    &mut out,
                    "sgx.config_id",
                    "a KSS enclave passes under any CONFIGID its untrusted loader chooses",
                );
            }
            intel_tcb(&mut out, "sgx", &g.tcb);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<String> {
        Policy::from_toml_str(text)
            .expect("valid")
            .warnings()
            .into_iter()
            .map(|w| w.field)
            .collect()
    }

    /// An L2 VM's VMID allowed, and any CONFIGID for a KSS enclave, are said; VMID 0 alone and
    /// a pinned CONFIGID are not.
    #[test]
    fn l2_vmids_and_any_config_id_warn() {
        let policy = |vmids: &str, config_id: &str| {
            format!(
                "version = 1\nid = \"w\"\n[tdx]\nmr_td = \"any\"\nrtmr0 = \"any\"\nrtmr1 = \"any\"\nrtmr2 = \"any\"\nrtmr3 = \"any\"\ndebug = \"must-not\"\n{vmids}\n\
                 [tdx.tcb]\naccepted_statuses = [\"UpToDate\"]\n[sgx]\nmr_enclave = \"any\"\n\
                 mr_signer = \"{}\"\ndebug = \"must-not\"\nisv_prod_id = 1\nmin_isv_svn = 0\n\
                 {config_id}\n[sgx.tcb]\naccepted_statuses = [\"UpToDate\"]\n",
                "ab".repeat(32)
            )
        };
        let loud = fields(&policy("vmids = [0, 2]", "config_id = \"any\""));
        assert!(loud.iter().any(|f| f == "tdx.vmids"), "{loud:?}");
        assert!(loud.iter().any(|f| f == "sgx.config_id"), "{loud:?}");
        let pinned = format!("config_id = \"{}\"", "cd".repeat(64));
        let quiet = fields(&policy("vmids = [0]", &pinned));
        assert!(
            !quiet
                .iter()
                .any(|f| f == "tdx.vmids" || f == "sgx.config_id"),
            "{quiet:?}"
        );
    }

    /// Rules that contradict each other (so that nothing passes) and an SGX mask that compares
    /// nothing are said.
    #[test]
    fn contradictions_and_empty_masks_warn() {
        let base = |tdx: &str, sgx_attrs: &str| {
            format!(
                "version = 1\nid = \"c\"\n[tdx]\nmr_td = \"any\"\nrtmr0 = \"any\"\nrtmr1 = \"any\"\nrtmr2 = \"any\"\nrtmr3 = \"any\"\n{tdx}\n\
                 [tdx.tcb]\naccepted_statuses = [\"UpToDate\"]\n\
                 [sgx]\nmr_enclave = \"any\"\nmr_signer = \"any\"\ndebug = \"must-not\"\n\
                 {sgx_attrs}\n[sgx.tcb]\naccepted_statuses = [\"UpToDate\"]\n"
            )
        };
        let messages = |text: &str| -> Vec<String> {
            Policy::from_toml_str(text)
                .expect("valid")
                .warnings()
                .into_iter()
                .map(|w| format!("{}: {}", w.field, w.message))
                .collect()
        };
        let zeros = "0".repeat(32);
        let cases = [
            (
                "debug = \"must-not\"\ntd_attributes = { must_set = [\"sept_ve_disable\", \"pks\"], must_clear = [\"pks\"] }",
                String::new(),
                "pks both in must_set and in must_clear",
            ),
            (
                "debug = \"must\"\ntd_attributes = { must_set = [\"sept_ve_disable\"], must_clear = [\"debug\"] }",
                String::new(),
                "tdx.debug and the DEBUG bit",
            ),
            (
                "debug = \"must-not\"\ntd_attributes = { must_set = [\"sept_ve_disable\", \"debug\"] }",
                String::new(),
                "tdx.debug and the DEBUG bit",
            ),
            (
                "debug = \"must-not\"\ntd_attributes = { must_set = [\"sept_ve_disable\"] }",
                format!("attributes = {{ value = \"{zeros}\", mask = \"{zeros}\" }}"),
                "sgx.attributes: the mask is all zeros",
            ),
            (
                "debug = \"must-not\"\nxfam = { value = \"0x0\", ignore_mask = \"0xffffffffffffffff\" }",
                String::new(),
                "tdx.xfam: the ignore_mask is all ones",
            ),
        ];
        for (tdx, sgx, want) in &cases {
            let got = messages(&base(tdx, sgx));
            assert!(got.iter().any(|m| m.contains(want)), "{want}: {got:#?}");
        }
        // Consistent rules draw none of them.
        let fine = base(
            "debug = \"must-not\"\ntd_attributes = { must_set = [\"sept_ve_disable\"], must_clear = [\"debug\"] }",
            &format!(
                "attributes = {{ value = \"{zeros}\", mask = \"{}\" }}",
                "0".repeat(31) + "2"
            ),
        );
        let got = messages(&fine);
        assert!(
            !got.iter()
                .any(|m| m.contains("contradict") || m.contains("all zeros")),
            "{got:#?}"
        );
    }

    #[test]
    fn weak_settings_warn_and_strict_ones_do_not() {
        let weak = r#"
version = 1
id = "w"
[snp]
measurement = "any"
debug = "any"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
[tdx]
mr_td = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
debug = "must"
[tdx.tcb]
accepted_statuses = ["UpToDate", "OutOfDate"]
revocation = "if-given"
[sgx]
mr_enclave = "any"
mr_signer = "any"
debug = "any"
[sgx.tcb]
accepted_statuses = "any"
"#;
        assert_eq!(
            fields(weak),
            vec![
                "snp.measurement",
                "snp.debug",
                "snp.min_tcb",
                "snp.signer",
                "snp.permit_provisional_firmware",
                "snp.vmpl",
                "snp.revocation",
                "tdx.mr_td",
                "tdx.debug",
                "tdx.td_attributes",
                "tdx.tcb.accepted_statuses",
                "tdx.tcb.revocation",
                "sgx.mr_enclave",
                "sgx.debug",
                "sgx.tcb.accepted_statuses",
            ]
        );
        let strict = format!(
            r#"
version = 1
id = "s"
[snp]
measurement = "{m}"
debug = "must-not"
min_tcb = {{ genoa = {{ bootloader = 9, tee = 0, snp = 23, microcode = 72 }} }}
signer = "vcek"
vmpl = 0
revocation = "required"
[tdx]
mr_td = "{m}"
rtmr0 = "{m}"
rtmr1 = "{m}"
rtmr2 = "{m}"
rtmr3 = "any"
debug = "must-not"
td_attributes = {{ must_set = ["sept_ve_disable"] }}
[tdx.tcb]
accepted_statuses = ["UpToDate", "OutOfDate"]
grace_period = "90d"
"#,
            m = "ab".repeat(48)
        );
        assert!(fields(&strict).is_empty(), "{:?}", fields(&strict));
    }
}
