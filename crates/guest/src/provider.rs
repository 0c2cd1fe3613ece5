//! Where a guest's evidence comes from: the hardware (configfs-tsm) or the project's simulators,
//! behind one [`Provider`] trait, and the detection of which TEE this machine is.
//!
//! Supported for collection: SEV-SNP and TDX through configfs-tsm (Linux 6.7+), and SEV-SNP
//! through `/dev/sev-guest` on older kernels (feature `sev-guest`: [`crate::sev_guest`]).
//! Detected and refused with a reason: `/dev/tdx_guest` without configfs-tsm (a TDX quote needs
//! the host's quoting service besides the TDREPORT ioctl; a kernel with configfs-tsm does both),
//! `/dev/sev-guest` in a build without the `sev-guest` feature, and Azure confidential VMs, whose
//! SNP report is wrapped by the vTPM (HCL report) and read through the TPM (such evidence
//! verifies with `tessera verify`; collecting it is not supported here).

use std::path::PathBuf;

use serde_json::Value;

use crate::client::ClientError;
use crate::sim::{Measurements, SimSnp, SimTdx};
use crate::tsm::{ConfigfsTsm, DEFAULT_ROOT, TsmError};

/// The TEE a provider's evidence comes from, by its KBS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tee {
    /// AMD SEV-SNP (`snp`).
    Snp,
    /// Intel TDX (`tdx`).
    Tdx,
}

impl Tee {
    /// The KBS TEE name.
    #[must_use]
    pub fn kbs_name(self) -> &'static str {
        match self {
            Self::Snp => "snp",
            Self::Tdx => "tdx",
        }
    }
}

/// A source of evidence bound to a REPORT_DATA.
pub trait Provider {
    /// The TEE.
    fn tee(&self) -> Tee;
    /// What it is, for people (`configfs-tsm (sev_guest) at /sys/...`, `simulator ...`).
    fn describe(&self) -> String;
    /// Evidence carrying `report_data`, in the KBS JSON form of its TEE (what a guest sends as
    /// `primary_evidence`).
    ///
    /// # Errors
    /// [`ClientError::Evidence`] naming what failed.
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Value, ClientError>;
}

fn evidence_error(reason: impl Into<String>) -> ClientError {
    ClientError::Evidence {
        reason: reason.into(),
    }
}

/// The hardware back end: configfs-tsm.
#[derive(Debug, Clone)]
pub struct TsmProvider {
    tsm: ConfigfsTsm,
    tee: Tee,
    provider: String,
    /// SEV-SNP: the VMPL asked for (written to `privlevel`), which the report must carry.
    vmpl: Option<u8>,
}

impl TsmProvider {
    /// The provider the kernel named at `root`, if it is one this crate knows.
    ///
    /// # Errors
    /// [`TsmError`] when the interface cannot be used; `Ok(None)` for an unknown provider.
    pub fn open(root: impl Into<PathBuf>, vmpl: u8) -> Result<Option<Self>, TsmError> {
        let tsm = ConfigfsTsm::new(root);
        let provider = tsm.provider()?;
        let tee = match provider.as_str() {
            "sev_guest" => Tee::Snp,
            "tdx_guest" => Tee::Tdx,
            _ => return Ok(None),
        };
        let (tsm, vmpl) = if tee == Tee::Snp {
            (tsm.with_privlevel(vmpl), Some(vmpl))
        } else {
            (tsm, None)
        };
        Ok(Some(Self {
            tsm,
            tee,
            provider,
            vmpl,
        }))
    }
}

impl Provider for TsmProvider {
    fn tee(&self) -> Tee {
        self.tee
    }

    fn describe(&self) -> String {
        format!(
            "configfs-tsm ({}) at {}",
            self.provider,
            self.tsm.root().display()
        )
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Value, ClientError> {
        let r = self
            .tsm
            .report(report_data)
            .map_err(|e| evidence_error(e.to_string()))?;
        let parsed = match self.tee {
            Tee::Snp => tessera::Evidence::from_tsm(&r.outblob, r.auxblob.as_deref()),
            Tee::Tdx => tessera::Evidence::from_bytes(&r.outblob),
        }
        .map_err(|e| evidence_error(format!("configfs-tsm outblob: {e}")))?;
        check_tsm_evidence(&parsed, report_data, self.vmpl)?;
        Ok(parsed.to_kbs_json())
    }
}

/// Evidence configfs-tsm returned for `report_data` (and, SEV-SNP, asked at `vmpl`): refused
/// when it answers another REPORT_DATA, or a report of another VMPL than the one written to
/// `privlevel`, as `/dev/sev-guest`'s is.
fn check_tsm_evidence(
    parsed: &tessera::Evidence,
    report_data: &[u8; 64],
    vmpl: Option<u8>,
) -> Result<(), ClientError> {
    if parsed.report_data() != report_data {
        return Err(evidence_error(
            "configfs-tsm returned evidence for another REPORT_DATA",
        ));
    }
    if let Some(vmpl) = vmpl {
        let reported = parsed.snp_report().map(|r| r.vmpl());
        if reported != Some(u32::from(vmpl)) {
            return Err(evidence_error(format!(
                "configfs-tsm returned a report for VMPL {reported:?}, not the {vmpl} asked for"
            )));
        }
    }
    Ok(())
}

/// The simulator back end: evidence signed by the fake vendor PKI of
/// [`crate::sim::PkiDir`] (or a fresh one), with chosen measurements.
pub enum SimProvider {
    /// Simulated SEV-SNP.
    Snp(Box<SimSnp>, Measurements),
    /// Simulated TDX.
    Tdx(Box<SimTdx>, Measurements),
}

impl Provider for SimProvider {
    fn tee(&self) -> Tee {
        match self {
            Self::Snp(..) => Tee::Snp,
            Self::Tdx(..) => Tee::Tdx,
        }
    }

    fn describe(&self) -> String {
        format!(
            "simulator ({}, fake vendor PKI: no hardware)",
            self.tee().kbs_name()
        )
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Value, ClientError> {
        match self {
            Self::Snp(sim, m) => sim.evidence(report_data, m),
            Self::Tdx(sim, m) => sim.evidence(report_data, m),
        }
    }
}

/// Where detection looks (parameters, so tests can point it at a directory).
#[derive(Debug, Clone)]
pub struct Paths {
    /// The configfs-tsm report root.
    pub tsm_root: PathBuf,
    /// The SEV-SNP guest device.
    pub sev_guest: PathBuf,
    /// The TDX guest device.
    pub tdx_guest: PathBuf,
    /// The TPM resource manager (Azure CVMs read their HCL report through it).
    pub tpm: PathBuf,
    /// DMI `sys_vendor` (`Microsoft Corporation` on Azure).
    pub sys_vendor: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            tsm_root: PathBuf::from(DEFAULT_ROOT),
            sev_guest: PathBuf::from("/dev/sev-guest"),
            tdx_guest: PathBuf::from("/dev/tdx_guest"),
            tpm: PathBuf::from("/dev/tpmrm0"),
            sys_vendor: PathBuf::from("/sys/class/dmi/id/sys_vendor"),
        }
    }
}

/// What this machine is, for evidence collection.
#[derive(Debug)]
pub enum Detected {
    /// configfs-tsm with a known provider: supported.
    Tsm(TsmProvider),
    /// `/dev/sev-guest` without configfs-tsm, collected through the `sev` crate: supported.
    #[cfg(all(feature = "sev-guest", target_os = "linux"))]
    SevGuest(crate::sev_guest::SevGuestProvider<crate::sev_guest::SevDevice>),
    /// Unsupported for collection, with the TEE (when known) and why.
    Unsupported {
        /// The TEE, when known.
        tee: Option<Tee>,
        /// What was found and what to do.
        reason: String,
    },
    /// No TEE interface found.
    None,
}

impl Detected {
    /// The provider to collect with, when one is supported; else `self` back (unsupported, with
    /// the reason, or no TEE).
    ///
    /// # Errors
    /// `self`, when it is [`Detected::Unsupported`] or [`Detected::None`].
    pub fn into_provider(self) -> Result<Box<dyn Provider>, Self> {
        match self {
            Self::Tsm(p) => Ok(Box::new(p)),
            #[cfg(all(feature = "sev-guest", target_os = "linux"))]
            Self::SevGuest(p) => Ok(Box::new(p)),
            other => Err(other),
        }
    }
}

/// Detects the TEE and how to collect its evidence.
#[must_use]
pub fn detect(paths: &Paths, vmpl: u8) -> Detected {
    if paths.tsm_root.is_dir() {
        match TsmProvider::open(&paths.tsm_root, vmpl) {
            Ok(Some(p)) => return Detected::Tsm(p),
            Ok(None) => {
                return Detected::Unsupported {
                    tee: None,
                    reason: format!(
                        "configfs-tsm at {} has a provider this tool does not know",
                        paths.tsm_root.display()
                    ),
                };
            }
            Err(e) => {
                return Detected::Unsupported {
                    tee: None,
                    reason: e.to_string(),
                };
            }
        }
    }
    let vendor = std::fs::read(&paths.sys_vendor).unwrap_or_default();
    if paths.tpm.exists() && String::from_utf8_lossy(&vendor).contains("Microsoft Corporation") {
        return Detected::Unsupported {
            tee: Some(Tee::Snp),
            reason: "an Azure confidential VM: the SEV-SNP report is wrapped by the vTPM (HCL \
                     report) and read through the TPM, which this tool does not collect; such \
                     evidence verifies with `tessera verify`"
                .into(),
        };
    }
    if paths.sev_guest.exists() {
        #[cfg(all(feature = "sev-guest", target_os = "linux"))]
        return Detected::SevGuest(crate::sev_guest::SevGuestProvider::new(
            crate::sev_guest::SevDevice,
            vmpl,
        ));
        #[cfg(not(all(feature = "sev-guest", target_os = "linux")))]
        return Detected::Unsupported {
            tee: Some(Tee::Snp),
            reason: format!(
                "{} without configfs-tsm, and this build lacks the `sev-guest` feature: use a \
                 kernel with configfs-tsm (Linux 6.7+, CONFIG_TSM_REPORTS) mounted at {}, or a \
                 build with the feature",
                paths.sev_guest.display(),
                paths.tsm_root.display()
            ),
        };
    }
    if paths.tdx_guest.exists() {
        return Detected::Unsupported {
            tee: Some(Tee::Tdx),
            reason: format!(
                "{} without configfs-tsm: a TDX quote needs the host's quoting service as well \
                 as the TDREPORT ioctl; use a kernel with configfs-tsm (Linux 6.7+, \
                 CONFIG_TSM_REPORTS) mounted at {}",
                paths.tdx_guest.display(),
                paths.tsm_root.display()
            ),
        };
    }
    Detected::None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &std::path::Path) -> Paths {
        Paths {
            tsm_root: dir.join("tsm"),
            sev_guest: dir.join("sev-guest"),
            tdx_guest: dir.join("tdx_guest"),
            tpm: dir.join("tpmrm0"),
            sys_vendor: dir.join("sys_vendor"),
        }
    }

    /// configfs-tsm evidence is checked as `/dev/sev-guest`'s is: the REPORT_DATA asked for,
    /// and (SEV-SNP) the VMPL written to `privlevel`.
    #[test]
    fn tsm_evidence_must_answer_the_report_data_and_vmpl_asked_for() {
        let sim = crate::sim::SimSnp::new(tessera::snp::abi::Product::Genoa).unwrap();
        let rd = [7u8; 64];
        let m = crate::sim::Measurements::default();
        let at_vmpl = |vmpl: u32| {
            let report = sim.report(&rd, &m, |r| r.vmpl.set(vmpl)).unwrap();
            tessera::Evidence::from_bytes(&report).unwrap()
        };
        check_tsm_evidence(&at_vmpl(0), &rd, Some(0)).unwrap();
        check_tsm_evidence(&at_vmpl(1), &rd, Some(1)).unwrap();
        let e = check_tsm_evidence(&at_vmpl(1), &rd, Some(0)).unwrap_err();
        assert!(e.to_string().contains("VMPL Some(1), not the 0"), "{e}");
        let e = check_tsm_evidence(&at_vmpl(0), &[8u8; 64], Some(0)).unwrap_err();
        assert!(e.to_string().contains("another REPORT_DATA"), "{e}");
        // No VMPL asked (TDX): only the REPORT_DATA is checked.
        check_tsm_evidence(&at_vmpl(2), &rd, None).unwrap();
    }

    #[test]
    fn detection_names_what_it_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        assert!(matches!(detect(&p, 0), Detected::None));
        std::fs::write(&p.tdx_guest, b"").unwrap();
        match detect(&p, 0) {
            Detected::Unsupported { tee, reason } => {
                assert_eq!(tee, Some(Tee::Tdx));
                assert!(reason.contains("configfs-tsm"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&p.sev_guest, b"").unwrap();
        std::fs::remove_file(&p.tdx_guest).unwrap();
        // /dev/sev-guest: collected through the `sev` crate when built with it, else refused
        // naming the feature.
        match detect(&p, 2) {
            #[cfg(all(feature = "sev-guest", target_os = "linux"))]
            Detected::SevGuest(provider) => {
                assert_eq!(provider.tee(), Tee::Snp);
                assert!(
                    provider.describe().contains("VMPL 2"),
                    "{}",
                    provider.describe()
                );
            }
            #[cfg(not(all(feature = "sev-guest", target_os = "linux")))]
            Detected::Unsupported {
                tee: Some(Tee::Snp),
                reason,
            } => {
                assert!(reason.contains("sev-guest"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Azure: the TPM and Microsoft's DMI vendor.
        std::fs::write(&p.tpm, b"").unwrap();
        std::fs::write(&p.sys_vendor, b"Microsoft Corporation\n").unwrap();
        match detect(&p, 0) {
            Detected::Unsupported { reason, .. } => assert!(reason.contains("Azure"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // A configfs-tsm root without a kernel behind it: unsupported, with the reason.
        std::fs::create_dir(&p.tsm_root).unwrap();
        assert!(matches!(
            detect(&p, 0),
            Detected::Unsupported { tee: None, .. }
        ));
    }

    #[test]
    fn the_simulator_binds_the_report_data() {
        let sim = SimProvider::Snp(
            Box::new(SimSnp::new(tessera::snp::abi::Product::Genoa).unwrap()),
            Measurements::default(),
        );
        let rd = [0x5a; 64];
        let ev = sim.evidence(&rd).unwrap();
        let parsed = tessera::Evidence::from_kbs("snp", &ev).unwrap();
        assert_eq!(parsed.report_data(), &rd);
        assert_eq!(sim.tee(), Tee::Snp);
    }
}
