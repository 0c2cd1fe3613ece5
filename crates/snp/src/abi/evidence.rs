//! Telling which form of SEV-SNP evidence a file holds, and parsing it.
//!
//! Forms recognised (layouts in the sibling modules):
//!
//! - a bare `ATTESTATION_REPORT` (spec 56860): exactly 0x4A0 bytes;
//! - an extended report: the report followed by the GHCB (spec 56421) certificate table, the
//!   file form go-sev-guest and snpguest write; the configfs-tsm `outblob`/`auxblob` pair
//!   carries the same two parts separately ([`SnpEvidence::from_tsm`]);
//! - an Azure HCL report: starts with `"HCLA"`.
//!
//! Any other length is rejected: a 793-byte (truncated) or 1185-byte (one stray byte) file is
//! not a report, and one stray byte cannot be a certificate table.

use super::cert_table::CertTable;
use super::hcl::HclReport;
use super::report::AttestationReport;
use super::{ParseError, REPORT_SIZE};

/// Parsed SEV-SNP evidence. Unverified.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SnpEvidence {
    /// A bare report.
    Report(AttestationReport),
    /// A report with the certificate table the host supplied.
    Extended {
        /// The report.
        report: AttestationReport,
        /// The certificate table (possibly empty).
        certs: CertTable,
    },
    /// An Azure HCL report wrapping the SNP report and its runtime data.
    Hcl(HclReport),
}

impl SnpEvidence {
    /// Parses a file: an HCL report if it starts with `"HCLA"`, a bare report if it is
    /// exactly [`REPORT_SIZE`] bytes, an extended report (report then certificate table) if
    /// it is longer.
    ///
    /// # Errors
    ///
    /// [`ParseError::Length`] for a file shorter than a report; otherwise the error of
    /// [`HclReport::parse`], [`AttestationReport::from_bytes`] or [`CertTable::parse`].
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if HclReport::is_hcl(bytes) {
            return HclReport::parse(bytes).map(SnpEvidence::Hcl);
        }
        match bytes.split_at_checked(REPORT_SIZE) {
            Some((report, [])) => AttestationReport::from_bytes(report).map(SnpEvidence::Report),
            Some((report, certs)) => Ok(SnpEvidence::Extended {
                report: AttestationReport::from_bytes(report)?,
                certs: CertTable::parse(certs)?,
            }),
            None => Err(ParseError::Length {
                what: "ATTESTATION_REPORT",
                expected: REPORT_SIZE,
                actual: bytes.len(),
            }),
        }
    }

    /// Parses a configfs-tsm report: `outblob` is the report, `auxblob` (when the provider
    /// gave one) the certificate table.
    ///
    /// # Errors
    ///
    /// The error of [`AttestationReport::from_bytes`] for `outblob` or of
    /// [`CertTable::parse`] for `auxblob`.
    pub fn from_tsm(outblob: &[u8], auxblob: Option<&[u8]>) -> Result<Self, ParseError> {
        let report = AttestationReport::from_bytes(outblob)?;
        Ok(match auxblob {
            Some(aux) => SnpEvidence::Extended {
                report,
                certs: CertTable::parse(aux)?,
            },
            None => SnpEvidence::Report(report),
        })
    }

    /// The SNP report, whatever the form.
    pub fn report(&self) -> &AttestationReport {
        match self {
            SnpEvidence::Report(report) | SnpEvidence::Extended { report, .. } => report,
            SnpEvidence::Hcl(hcl) => &hcl.report,
        }
    }

    /// The certificate table, for an extended report.
    pub fn certs(&self) -> Option<&CertTable> {
        match self {
            SnpEvidence::Extended { certs, .. } => Some(certs),
            SnpEvidence::Report(_) | SnpEvidence::Hcl(_) => None,
        }
    }

    /// The evidence in the file form [`Self::parse`] reads (certificate table and HCL report
    /// in canonical form, without padding).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SnpEvidence::Report(report) => report.as_bytes().to_vec(),
            SnpEvidence::Extended { report, certs } => {
                let mut out = report.as_bytes().to_vec();
                out.extend_from_slice(&certs.to_bytes());
                out
            }
            SnpEvidence::Hcl(hcl) => hcl.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::cert_table::{CertKind, CertTableEntry, Guid};
    use crate::abi::report::tests::{snp_cases, vectors_dir};
    use proptest::prelude::*;

    #[cfg_attr(
        not(tessera_vectors),
        ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
    )]
    #[test]
    fn real_files() {
        let mut counts = [0usize; 3];
        for case in snp_cases() {
            for name in ["report.bin", "hcl_report.bin"] {
                let Ok(bytes) = std::fs::read(case.join(name)) else {
                    continue;
                };
                let result = SnpEvidence::parse(&bytes);
                match (bytes.len(), &result) {
                    (REPORT_SIZE, Ok(SnpEvidence::Report(r))) => {
                        assert_eq!(r.as_bytes(), bytes.as_slice());
                        counts[0] += 1;
                    }
                    (_, Ok(SnpEvidence::Hcl(h))) => {
                        assert_eq!(name, "hcl_report.bin");
                        assert!(h.report.version() >= 2);
                        counts[1] += 1;
                    }
                    (len @ (793 | 1185), Err(_)) => {
                        assert!(case.display().to_string().contains(&len.to_string()));
                        counts[2] += 1;
                    }
                    (len, other) => panic!("{}/{name} ({len} bytes): {other:?}", case.display()),
                }
            }
        }
        if vectors_dir().is_some() {
            assert_eq!(counts[1], 5, "HCL reports");
            assert_eq!(counts[2], 3, "odd-sized files rejected");
            assert!(counts[0] >= 50);
        }
    }

    #[cfg_attr(
        not(tessera_vectors),
        ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
    )]
    #[test]
    fn extended_forms() {
        let Some(dir) = vectors_dir() else { return };
        let case = dir.join("snp/genoa-v3_veraison-tsm");
        let out = std::fs::read(case.join("report.bin")).unwrap();
        let aux = std::fs::read(case.join("auxblob.bin")).unwrap();

        let tsm = SnpEvidence::from_tsm(&out, Some(&aux)).unwrap();
        assert!(tsm.certs().unwrap().get(CertKind::Vcek).is_some());
        assert_eq!(tsm.report().as_bytes(), out.as_slice());
        assert_eq!(
            SnpEvidence::from_tsm(&out, None).unwrap(),
            SnpEvidence::parse(&out).unwrap()
        );
        assert!(SnpEvidence::parse(&out).unwrap().certs().is_none());

        let mut file = out.clone();
        file.extend_from_slice(&aux);
        assert_eq!(SnpEvidence::parse(&file).unwrap(), tsm);
        assert_eq!(SnpEvidence::parse(&tsm.to_bytes()).unwrap(), tsm);

        let case = dir.join("snp/milan-v2-vlek_aws_constellation-cc-test");
        let mut file = std::fs::read(case.join("report.bin")).unwrap();
        file.extend(std::fs::read(case.join("certs_table.bin")).unwrap());
        let ev = SnpEvidence::parse(&file).unwrap();
        assert!(ev.certs().unwrap().get(CertKind::Vlek).is_some());

        // Constellation's report + 20-byte runtime-data header is no known form.
        let blob = std::fs::read(dir.join("snp/milan-v2_azure_constellation/attestation_raw.bin"))
            .unwrap();
        assert!(SnpEvidence::parse(&blob).is_err());

        let hcl = std::fs::read(dir.join("snp/milan-v3_azure_trustee-evidence-v1/hcl_report.bin"))
            .unwrap();
        let ev = SnpEvidence::parse(&hcl).unwrap();
        assert!(matches!(ev, SnpEvidence::Hcl(_)) && ev.certs().is_none());
        let report =
            std::fs::read(dir.join("snp/milan-v3_azure_trustee-evidence-v1/report.bin")).unwrap();
        assert_eq!(ev.report().as_bytes(), report.as_slice());
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut raw = vec![0u8; REPORT_SIZE];
        raw[0] = 2;
        assert!(matches!(
            SnpEvidence::parse(&raw),
            Ok(SnpEvidence::Report(_))
        ));
        for len in [0, 4, 793, REPORT_SIZE - 1] {
            assert!(matches!(
                SnpEvidence::parse(&raw[..len]),
                Err(ParseError::Length { actual, .. }) if actual == len
            ));
        }
        let mut long = raw.clone();
        long.push(0);
        assert_eq!(
            SnpEvidence::parse(&long),
            Err(ParseError::CertTableUnterminated)
        );
        long.resize(REPORT_SIZE + 24, 0);
        assert!(matches!(
            SnpEvidence::parse(&long),
            Ok(SnpEvidence::Extended { .. })
        ));
        assert!(SnpEvidence::from_tsm(&raw[..100], None).is_err());
        assert!(SnpEvidence::from_tsm(&raw, Some(&[1])).is_err());
        assert!(SnpEvidence::parse(b"HCLA").is_err());
    }

    /// A certificate table with one entry per data blob, each under its own GUID.
    fn table_of(blobs: &[Vec<u8>]) -> CertTable {
        let guids = [Guid::VCEK, Guid::VLEK, Guid::ASK, Guid::ARK, Guid::CRL];
        CertTable {
            entries: blobs
                .iter()
                .zip(guids)
                .map(|(data, guid)| CertTableEntry {
                    guid,
                    data: data.clone(),
                })
                .collect(),
        }
    }

    proptest! {
        /// A report (version 2, 3 or 5, or a few bytes changed) and a certificate table
        /// (built, built then changed, or arbitrary bytes), as configfs-tsm gives them apart:
        /// `from_tsm` reads them as the file form reads them joined
        /// ([`crate::abi::tsm_agrees_with_parse`]), and an unchanged pair is accepted with the
        /// table built.
        #[test]
        fn tsm_parts_read_as_the_extended_file(
            version in prop::sample::select(vec![2u8, 3, 5]),
            report_edits in prop::collection::vec((0..REPORT_SIZE, any::<u8>()), 0..3),
            blobs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..5),
            aux_edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            arbitrary in prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..120)),
            short in prop::option::weighted(0.1, 0..REPORT_SIZE),
            hcl in prop::bool::weighted(0.05),
        ) {
            let mut report = vec![0u8; REPORT_SIZE];
            report[0] = version;
            let table = table_of(&blobs);
            let mut aux = arbitrary.clone().unwrap_or_else(|| table.to_bytes());
            for &(at, b) in &report_edits {
                report[at] = b;
            }
            for (at, b) in &aux_edits {
                if !aux.is_empty() {
                    let i = at.index(aux.len());
                    aux[i] = *b;
                }
            }
            if report_edits.is_empty() && aux_edits.is_empty() && arbitrary.is_none() {
                let e = SnpEvidence::from_tsm(&report, Some(&aux));
                prop_assert_eq!(e.as_ref().map(SnpEvidence::certs), Ok(Some(&table)));
            }
            let mut data = report;
            if hcl {
                data[..4].copy_from_slice(b"HCLA");
            }
            data.extend_from_slice(&aux);
            if let Some(n) = short {
                data.truncate(n);
            }
            crate::abi::tsm_agrees_with_parse(&data);
        }
    }
}
