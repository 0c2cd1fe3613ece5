//! SEV-SNP evidence from `/dev/sev-guest` (SNP_GET_EXT_REPORT), for kernels without configfs-tsm.
//!
//! The ioctl itself is the `sev` crate's (virtee, `Firmware::get_ext_report`): this crate forbids
//! `unsafe`, and that crate is the one the Confidential Containers attester uses. Everything
//! above the ioctl — bounds on what the device returns, the REPORT_DATA and VMPL it must echo,
//! the certificate table's kinds, the KBS JSON form — is here, behind [`SevGuestDevice`], so it
//! is tested without hardware; the device back end ([`SevDevice`], feature `sev-guest`, Linux)
//! is the only part that needs an SEV-SNP guest.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::client::ClientError;
use crate::provider::{Provider, Tee};

/// The largest report the device may return (the kernel's response buffer is 4000 bytes; a
/// report is 1184).
pub const MAX_REPORT_LEN: usize = 4000;

/// The largest certificate the device may return in its table (AMD's are about 1.5 KiB).
pub const MAX_CERT_LEN: usize = 64 * 1024;

/// The most certificates taken from one table (VCEK/VLEK, ASK/ASVK, ARK and a few spare).
pub const MAX_CERTS: usize = 16;

/// What the device returned for one request.
#[derive(Debug, Clone, Default)]
pub struct DeviceReport {
    /// The attestation report bytes.
    pub report: Vec<u8>,
    /// The certificate table, each entry's kind as the KBS names it (`VCEK`, `VLEK`, `ASK`,
    /// `ASVK`, `ARK`) or `None` for kinds the KBS form does not carry (CRLs, other GUIDs).
    pub certs: Vec<(Option<&'static str>, Vec<u8>)>,
}

/// The SEV-SNP guest device: one extended report for a REPORT_DATA at a VMPL.
pub trait SevGuestDevice {
    /// Where it is, for people.
    fn describe(&self) -> String;
    /// SNP_GET_EXT_REPORT (or SNP_GET_REPORT when the host has no certificates).
    ///
    /// # Errors
    /// The device's or firmware's error, as text.
    fn extended_report(&self, report_data: &[u8; 64], vmpl: u8) -> Result<DeviceReport, String>;
}

/// SEV-SNP evidence from a [`SevGuestDevice`].
#[derive(Debug, Clone)]
pub struct SevGuestProvider<D> {
    device: D,
    vmpl: u8,
}

impl<D: SevGuestDevice> SevGuestProvider<D> {
    /// Reports from `device`, requested for `vmpl` (0..=3).
    pub fn new(device: D, vmpl: u8) -> Self {
        Self { device, vmpl }
    }
}

fn evidence_error(reason: impl Into<String>) -> ClientError {
    ClientError::Evidence {
        reason: reason.into(),
    }
}

impl<D: SevGuestDevice> Provider for SevGuestProvider<D> {
    fn tee(&self) -> Tee {
        Tee::Snp
    }

    fn describe(&self) -> String {
        format!(
            "{} (SNP_GET_EXT_REPORT, VMPL {})",
            self.device.describe(),
            self.vmpl
        )
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Value, ClientError> {
        let got = self
            .device
            .extended_report(report_data, self.vmpl)
            .map_err(|e| evidence_error(format!("/dev/sev-guest: {e}")))?;
        kbs_evidence(&got, report_data, self.vmpl)
    }
}

/// The KBS JSON form of what the device returned, after checking it: bounded sizes, a report
/// that parses, and the REPORT_DATA and VMPL that were asked for.
///
/// # Errors
/// [`ClientError::Evidence`] naming what is wrong.
pub fn kbs_evidence(
    got: &DeviceReport,
    report_data: &[u8; 64],
    vmpl: u8,
) -> Result<Value, ClientError> {
    if got.report.len() > MAX_REPORT_LEN {
        return Err(evidence_error(format!(
            "/dev/sev-guest returned {} bytes of report, more than {MAX_REPORT_LEN}",
            got.report.len()
        )));
    }
    let mut chain = Vec::new();
    for (kind, der) in &got.certs {
        let Some(kind) = kind else { continue };
        if der.len() > MAX_CERT_LEN {
            return Err(evidence_error(format!(
                "/dev/sev-guest returned a {kind} certificate of {} bytes, more than \
                 {MAX_CERT_LEN}",
                der.len()
            )));
        }
        if chain.len() == MAX_CERTS {
            return Err(evidence_error(format!(
                "/dev/sev-guest returned more than {MAX_CERTS} certificates"
            )));
        }
        // The table pads entries with zeros; the KBS form carries the DER itself (cut where
        // its outer TLV ends: a certificate's own last byte may be zero).
        let der = tessera::snp::abi::trim_padding(der);
        chain.push(json!({ "cert_type": kind, "data": der }));
    }
    let form = json!({
        "report": base64::engine::general_purpose::STANDARD.encode(&got.report),
        "cert_chain": if chain.is_empty() { Value::Null } else { Value::Array(chain) },
    });
    let parsed = tessera::Evidence::from_kbs("snp", &form)
        .map_err(|e| evidence_error(format!("/dev/sev-guest report: {e}")))?;
    if parsed.report_data() != report_data {
        return Err(evidence_error(
            "/dev/sev-guest returned a report for another REPORT_DATA",
        ));
    }
    let reported_vmpl = parsed.snp_report().map(|r| r.vmpl());
    if reported_vmpl != Some(u32::from(vmpl)) {
        return Err(evidence_error(format!(
            "/dev/sev-guest returned a report for VMPL {reported_vmpl:?}, not the {vmpl} asked for"
        )));
    }
    Ok(parsed.to_kbs_json())
}

/// Fuzz entry point: device output of any shape (a report, then certificates of every kind,
/// split from `data`) is checked without panicking.
#[doc(hidden)]
pub fn fuzz_device_report(data: &[u8]) {
    const KINDS: [Option<&str>; 6] = [
        Some("VCEK"),
        Some("VLEK"),
        Some("ASK"),
        Some("ASVK"),
        Some("ARK"),
        None,
    ];
    let (head, rest) = data.split_at(data.len().min(2));
    let report_len = usize::from(head.first().copied().unwrap_or(0)) * 16;
    let (report, rest) = rest.split_at(rest.len().min(report_len));
    let mut got = DeviceReport {
        report: report.to_vec(),
        certs: Vec::new(),
    };
    for (i, chunk) in rest.chunks(512).enumerate() {
        let kind = KINDS
            .get(usize::from(head.get(1).copied().unwrap_or(0)).wrapping_add(i) % KINDS.len())
            .copied()
            .flatten();
        got.certs.push((kind, chunk.to_vec()));
    }
    let report_data = got
        .report
        .get(0x50..0x90)
        .and_then(|rd| <[u8; 64]>::try_from(rd).ok());
    let _ = kbs_evidence(&got, &report_data.unwrap_or([0; 64]), 0);
}

/// The real device through the `sev` crate (`/dev/sev-guest`, the path that crate opens).
#[cfg(all(feature = "sev-guest", target_os = "linux"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct SevDevice;

#[cfg(all(feature = "sev-guest", target_os = "linux"))]
impl SevGuestDevice for SevDevice {
    fn describe(&self) -> String {
        String::from("/dev/sev-guest")
    }

    fn extended_report(&self, report_data: &[u8; 64], vmpl: u8) -> Result<DeviceReport, String> {
        use sev::firmware::guest::Firmware;
        use sev::firmware::host::CertType;
        let mut fw = Firmware::open().map_err(|e| format!("opening: {e}"))?;
        let vmpl = Some(u32::from(vmpl));
        // A host that serves no certificates through the extended request (or a kernel that
        // refuses it) still gives the plain report; the broker's endorsements cover the VCEK.
        let (report, table) = match fw.get_ext_report(None, Some(*report_data), vmpl) {
            Ok(got) => got,
            Err(ext) => match fw.get_report(None, Some(*report_data), vmpl) {
                Ok(report) => (report, None),
                Err(plain) => {
                    return Err(format!(
                        "SNP_GET_EXT_REPORT: {ext}; SNP_GET_REPORT: {plain}"
                    ));
                }
            },
        };
        let certs = table
            .unwrap_or_default()
            .into_iter()
            .map(|entry| {
                let kind = match entry.cert_type {
                    CertType::VCEK => Some("VCEK"),
                    CertType::VLEK => Some("VLEK"),
                    CertType::ASK => Some("ASK"),
                    CertType::ARK => Some("ARK"),
                    _ => None,
                };
                (kind, entry.data)
            })
            .collect();
        Ok(DeviceReport { report, certs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Measurements, SimSnp};

    /// A device that answers with the simulator's reports (or a chosen edit of them): the
    /// logic above the ioctl, without hardware.
    struct SimDevice {
        sim: SimSnp,
        edit: fn(&mut DeviceReport),
    }

    impl SevGuestDevice for SimDevice {
        fn describe(&self) -> String {
            String::from("simulated /dev/sev-guest")
        }

        fn extended_report(
            &self,
            report_data: &[u8; 64],
            vmpl: u8,
        ) -> Result<DeviceReport, String> {
            let report = self
                .sim
                .report(report_data, &Measurements::default(), |raw| {
                    raw.vmpl = u32::from(vmpl).into();
                })
                .map_err(|e| e.to_string())?;
            let chain = [
                ("VCEK", self.sim.vcek()),
                ("ASK", self.sim.pki().ask()),
                ("ARK", self.sim.pki().ark()),
            ];
            let mut got = DeviceReport {
                report,
                certs: chain
                    .iter()
                    .map(|(kind, cert)| {
                        // Entries come padded with zeros, as the table's are.
                        let mut padded = cert.der().to_vec();
                        padded.extend_from_slice(&[0; 16]);
                        (Some(*kind), padded)
                    })
                    .collect(),
            };
            (self.edit)(&mut got);
            Ok(got)
        }
    }

    fn provider(edit: fn(&mut DeviceReport)) -> SevGuestProvider<SimDevice> {
        let sim = SimSnp::new(tessera::snp::abi::Product::Genoa).unwrap();
        SevGuestProvider::new(SimDevice { sim, edit }, 0)
    }

    fn refused(edit: fn(&mut DeviceReport)) -> String {
        match provider(edit).evidence(&[7; 64]) {
            Err(ClientError::Evidence { reason }) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn device_reports_become_kbs_evidence() {
        let p = provider(|_| {});
        assert_eq!(p.tee(), Tee::Snp);
        assert!(p.describe().contains("VMPL 0"), "{}", p.describe());
        let ev = p.evidence(&[7; 64]).unwrap();
        let parsed = tessera::Evidence::from_kbs("snp", &ev).unwrap();
        assert_eq!(parsed.report_data(), &[7; 64]);
        // The certificates, padding trimmed, travel in cert_chain.
        assert_eq!(parsed.certificates().len(), 3);
        assert_eq!(ev["cert_chain"][0]["cert_type"], "VCEK");
        // Kinds the KBS form does not carry (a CRL) are left out, not sent mislabelled.
        let ev = provider(|g| g.certs.push((None, vec![0x30, 0x00])))
            .evidence(&[7; 64])
            .unwrap();
        assert_eq!(ev["cert_chain"].as_array().unwrap().len(), 3);
        // Padding goes where the certificate's DER ends: a certificate whose own last byte is
        // zero (a signature ends in 0x00 one time in 256) keeps it.
        let ev = provider(|g| {
            g.certs[0].1 = [&[0x30, 0x04, 0x04, 0x02, 0x01, 0x00][..], &[0; 16]].concat();
        })
        .evidence(&[7; 64])
        .unwrap();
        assert_eq!(
            ev["cert_chain"][0]["data"],
            serde_json::json!([0x30, 0x04, 0x04, 0x02, 0x01, 0x00])
        );
        // The simulator's padded certificates arrive as whole DER, nothing after it.
        let ev = provider(|_| {}).evidence(&[7; 64]).unwrap();
        for cert in ev["cert_chain"].as_array().unwrap() {
            let der: Vec<u8> = serde_json::from_value(cert["data"].clone()).unwrap();
            let (_, _, rest) = tessera::pki::der::take_tlv(&der).unwrap();
            assert!(rest.is_empty(), "{} bytes after the DER", rest.len());
            tessera::pki::load_certificates(&der).unwrap();
        }
        // No table at all: `cert_chain` is null.
        let ev = provider(|g| g.certs.clear()).evidence(&[7; 64]).unwrap();
        assert!(ev["cert_chain"].is_null(), "{ev}");
    }

    #[test]
    fn what_the_device_returns_is_checked() {
        // Another REPORT_DATA (a replayed or foreign report).
        let reason = refused(|g| {
            let sim = SimSnp::new(tessera::snp::abi::Product::Genoa).unwrap();
            let ev = sim.evidence(&[8; 64], &Measurements::default()).unwrap();
            g.report = tessera::Evidence::from_kbs("snp", &ev)
                .unwrap()
                .signed_evidence();
        });
        assert!(reason.contains("another REPORT_DATA"), "{reason}");
        // Not a report.
        assert!(refused(|g| g.report.truncate(100)).contains("report"));
        // More than the kernel's buffer.
        let reason = refused(|g| g.report.resize(MAX_REPORT_LEN + 1, 0));
        assert!(reason.contains("more than"), "{reason}");
        // An oversized certificate, or too many of them.
        let reason = refused(|g| g.certs[0].1.resize(MAX_CERT_LEN + 1, 1));
        assert!(reason.contains("certificate of"), "{reason}");
        let reason = refused(|g| {
            let first = g.certs[0].clone();
            g.certs.resize(MAX_CERTS + 1, first);
        });
        assert!(reason.contains("more than 16 certificates"), "{reason}");
    }

    proptest::proptest! {
        /// Whatever the device returns, the checks answer (evidence or a refusal) without
        /// panicking.
        #[test]
        fn any_device_output_is_checked_without_panicking(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..6000)
        ) {
            fuzz_device_report(&data);
        }
    }

    #[test]
    fn the_vmpl_asked_for_is_the_vmpl_reported() {
        // A device that ignores the VMPL asked for (always reports VMPL 0).
        struct Vmpl0(SimDevice);
        impl SevGuestDevice for Vmpl0 {
            fn describe(&self) -> String {
                self.0.describe()
            }
            fn extended_report(
                &self,
                report_data: &[u8; 64],
                _vmpl: u8,
            ) -> Result<DeviceReport, String> {
                self.0.extended_report(report_data, 0)
            }
        }
        let sim = SimSnp::new(tessera::snp::abi::Product::Genoa).unwrap();
        let p = SevGuestProvider::new(Vmpl0(SimDevice { sim, edit: |_| {} }), 2);
        match p.evidence(&[7; 64]) {
            Err(ClientError::Evidence { reason }) => {
                assert!(reason.contains("VMPL Some(0), not the 2"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Honoured, it passes.
        let p = provider(|_| {});
        let p = SevGuestProvider::new(p.device, 2);
        let ev = p.evidence(&[7; 64]).unwrap();
        let parsed = tessera::Evidence::from_kbs("snp", &ev).unwrap();
        assert_eq!(parsed.snp_report().map(|r| r.vmpl()), Some(2));
    }
}
