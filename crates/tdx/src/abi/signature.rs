//! The quote's signature data for attestation key type 2 (ECDSA P-256), and the QE
//! certification data it carries.
//!
//! Layout: Intel "TDX DCAP Quote Generation Library and Quote Verification Library API",
//! appendix "Quote Format", tables "ECDSA 256-bit Quote Signature Data Structure", "QE
//! Certification Data" and "QE Report Certification Data" (v4, v5); Intel "SGX ECDSA Quote
//! Library API", table "ECDSA 256-bit Quote Signature Data Structure" (v3). All integers
//! little-endian.
//!
//! ```text
//! v4/v5: signature r||s [64] | attestation key x||y [64] | certification data:
//!          type u16 = 6 | size u32 | QE report certification data (exactly `size` bytes)
//! v3:    signature r||s [64] | attestation key x||y [64] | QE report certification data
//!
//! QE report certification data:
//!   QE report [384] | QE report signature r||s [64] | QE auth data: size u16, data |
//!   certification data: type u16 = 5 | size u32 | PCK certificate chain, PEM, leaf first
//! ```
//!
//! So the v3 signature data is the v4 one without the type-6 wrapper, and both decode into
//! [`QuoteSignatureData`]. Every size field must match its container exactly: the nested
//! type-5 data ends where the type-6 data ends, which ends where the signature data ends.
//! Only types 6 and 5 are read (the other certification data types carry no PCK chain to
//! verify against). The PEM text is kept byte for byte (Intel's QE appends a NUL to it).

use core::fmt;

use super::body::EnclaveReport;
use super::{
    CERTIFICATION_DATA_PCK_CHAIN, CERTIFICATION_DATA_QE_REPORT, HexBytes, ParseError, Reader,
    u32_len, usize_from,
};

/// Certification data type 6: the QE report, signed by the PCK key, and the PCK certificate
/// chain (nested certification data type 5).
#[derive(Clone, PartialEq, Eq)]
pub struct QeCertificationData {
    /// The Quoting Enclave's report. Its `REPORTDATA` is `SHA-256(attestation key || QE
    /// authentication data) || 32 zero bytes`.
    pub qe_report: EnclaveReport,
    /// ECDSA P-256 signature r||s (big-endian) by the PCK key over the 384 QE report bytes.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data (at most `u16::MAX` bytes).
    pub qe_auth_data: Vec<u8>,
    /// The PCK certificate chain as found: PEM, leaf (PCK) first, then the PCK platform or
    /// processor CA, then the root; often NUL-terminated.
    pub pck_cert_chain: Vec<u8>,
}

/// Size of the type/size header of a certification data structure.
const CERT_DATA_HEADER: usize = 2 + 4;

impl QeCertificationData {
    /// Reads type-6 certification data alone: `type u16 = 6 | size u32 | data`, where `size`
    /// is exactly the rest of `bytes`.
    ///
    /// # Errors
    ///
    /// [`ParseError::UnsupportedCertificationDataType`] unless the type is 6 and the nested
    /// type is 5; [`ParseError::SizeMismatch`] when a size field does not match the bytes it
    /// describes; [`ParseError::Truncated`] when a fixed field or the QE authentication data
    /// runs past the end.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let cert_type = r.u16("certification data: type")?;
        if cert_type != CERTIFICATION_DATA_QE_REPORT {
            return Err(ParseError::UnsupportedCertificationDataType {
                what: "signature data: certification data",
                found: cert_type,
            });
        }
        let size = r.u32("certification data: size")?;
        if usize_from(size) != r.remaining() {
            return Err(ParseError::SizeMismatch {
                what: "QE report certification data (type 6)",
                declared: usize_from(size),
                available: r.remaining(),
            });
        }
        Self::parse_contents(
            r.rest(),
            "QE report certification data: nested certification data",
        )
    }

    /// Reads the QE report certification data contents: the v3 signature data after the
    /// attestation key, or the data of a type-6 structure. `nested_what` names the type-5
    /// certification data in errors.
    pub(crate) fn parse_contents(
        bytes: &[u8],
        nested_what: &'static str,
    ) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let qe_report = EnclaveReport::parse(r.take(EnclaveReport::SIZE, "QE report")?)?;
        let qe_report_signature = r.array::<64>("QE report signature")?;
        let qe_auth_data = r.u16_prefixed("QE authentication data")?.to_vec();
        let nested_type = r.u16("PCK certification data: type")?;
        if nested_type != CERTIFICATION_DATA_PCK_CHAIN {
            return Err(ParseError::UnsupportedCertificationDataType {
                what: nested_what,
                found: nested_type,
            });
        }
        let size = r.u32("PCK certification data: size")?;
        if usize_from(size) != r.remaining() {
            return Err(ParseError::SizeMismatch {
                what: "PCK certificate chain (certification data type 5)",
                declared: usize_from(size),
                available: r.remaining(),
            });
        }
        Ok(Self {
            qe_report,
            qe_report_signature,
            qe_auth_data,
            pck_cert_chain: r.rest().to_vec(),
        })
    }

    /// The type-6 certification data: `6 | size | contents`, the inverse of [`Self::parse`].
    ///
    /// A value whose authentication data or chain is too long for its size field (which
    /// [`Self::check_sizes`] reports) is written with saturated sizes and does not parse back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let contents = self.contents_bytes();
        let mut out = Vec::with_capacity(CERT_DATA_HEADER + contents.len());
        out.extend_from_slice(&CERTIFICATION_DATA_QE_REPORT.to_le_bytes());
        out.extend_from_slice(&saturating_u32(contents.len()).to_le_bytes());
        out.extend_from_slice(&contents);
        out
    }

    /// The QE report certification data contents (what a v3 quote carries after the
    /// attestation key).
    pub(crate) fn contents_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.contents_len());
        out.extend_from_slice(&self.qe_report.to_bytes());
        out.extend_from_slice(&self.qe_report_signature);
        let auth_len = u16::try_from(self.qe_auth_data.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&auth_len.to_le_bytes());
        out.extend_from_slice(&self.qe_auth_data);
        out.extend_from_slice(&CERTIFICATION_DATA_PCK_CHAIN.to_le_bytes());
        out.extend_from_slice(&saturating_u32(self.pck_cert_chain.len()).to_le_bytes());
        out.extend_from_slice(&self.pck_cert_chain);
        out
    }

    /// Length of [`Self::contents_bytes`].
    fn contents_len(&self) -> usize {
        EnclaveReport::SIZE
            .saturating_add(64 + 2 + CERT_DATA_HEADER)
            .saturating_add(self.qe_auth_data.len())
            .saturating_add(self.pck_cert_chain.len())
    }

    /// Checks that every length fits its size field (QE authentication data in a `u16`, the
    /// chain and the whole signature data in a `u32`), so that [`Self::to_bytes`] parses back.
    ///
    /// # Errors
    ///
    /// [`ParseError::TooLarge`] naming the field that does not fit.
    pub fn check_sizes(&self) -> Result<(), ParseError> {
        if u16::try_from(self.qe_auth_data.len()).is_err() {
            return Err(ParseError::TooLarge {
                what: "QE authentication data",
                max: usize::from(u16::MAX),
                actual: self.qe_auth_data.len(),
            });
        }
        // The signature data length (a u32) covers this plus 128 + 6 bytes.
        u32_len(
            self.contents_len().saturating_add(128 + CERT_DATA_HEADER),
            "signature data",
        )?;
        Ok(())
    }

    /// The exact 384 bytes the PCK key signed (the QE report as the quote carries it).
    pub fn qe_report_bytes(&self) -> [u8; EnclaveReport::SIZE] {
        self.qe_report.to_bytes()
    }

    /// The PCK certificate chain decoded (leaf first). The chain is not verified here.
    ///
    /// # Errors
    ///
    /// [`ParseError::Pem`] when the chain is not PEM certificates `tessera-pki` can read.
    pub fn pck_certificates(&self) -> Result<Vec<tessera_pki::Certificate>, ParseError> {
        tessera_pki::load_certificates(&self.pck_cert_chain).map_err(ParseError::Pem)
    }
}

impl fmt::Debug for QeCertificationData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QeCertificationData")
            .field("qe_report", &self.qe_report)
            .field("qe_report_signature", &HexBytes(&self.qe_report_signature))
            .field("qe_auth_data", &HexBytes(&self.qe_auth_data))
            .field("pck_cert_chain_len", &self.pck_cert_chain.len())
            .finish()
    }
}

/// The signature data of a quote with attestation key type 2 (ECDSA P-256).
#[derive(Clone, PartialEq, Eq)]
pub struct QuoteSignatureData {
    /// ECDSA P-256 signature r||s (big-endian) by the attestation key over the quote's signed
    /// bytes ([`super::Quote::signed_bytes`]).
    pub signature: [u8; 64],
    /// The attestation public key, x||y (big-endian, no SEC1 prefix).
    pub attestation_key: [u8; 64],
    /// The QE report, its PCK signature, QE authentication data and PCK certificate chain.
    pub certification: QeCertificationData,
}

impl QuoteSignatureData {
    /// Reads signature data (exactly `bytes`, the quote's `Quote Signature Data` field) as a
    /// quote of `version` lays it out (3: no type-6 wrapper; 4 and 5: type 6).
    ///
    /// # Errors
    ///
    /// As [`QeCertificationData::parse`], and [`ParseError::Truncated`] when the signature or
    /// attestation key is cut.
    pub fn parse(version: u16, bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let signature = r.array::<64>("signature data: ECDSA signature")?;
        let attestation_key = r.array::<64>("signature data: attestation key")?;
        let certification = if version == 3 {
            QeCertificationData::parse_contents(r.rest(), "signature data: certification data")?
        } else {
            QeCertificationData::parse(r.rest())?
        };
        Ok(Self {
            signature,
            attestation_key,
            certification,
        })
    }

    /// The signature data as a quote of `version` carries it (without the length field
    /// before it), the inverse of [`Self::parse`].
    pub fn to_bytes(&self, version: u16) -> Vec<u8> {
        let certification = if version == 3 {
            self.certification.contents_bytes()
        } else {
            self.certification.to_bytes()
        };
        let mut out = Vec::with_capacity(128 + certification.len());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.attestation_key);
        out.extend_from_slice(&certification);
        out
    }
}

impl fmt::Debug for QuoteSignatureData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuoteSignatureData")
            .field("signature", &HexBytes(&self.signature))
            .field("attestation_key", &HexBytes(&self.attestation_key))
            .field("certification", &self.certification)
            .finish()
    }
}

/// `len` as a size field; [`QeCertificationData::check_sizes`] reports values that do not fit.
fn saturating_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::abi::body::tests::arb_enclave_report;
    use proptest::prelude::*;

    /// Certification data with a small fake chain.
    pub(crate) fn sample_certification() -> QeCertificationData {
        QeCertificationData {
            qe_report: EnclaveReport::parse(&[7; 384]).unwrap(),
            qe_report_signature: [9; 64],
            qe_auth_data: (0u8..32).collect(),
            pck_cert_chain: b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n\0"
                .to_vec(),
        }
    }

    pub(crate) fn arb_certification() -> impl Strategy<Value = QeCertificationData> {
        (
            arb_enclave_report(),
            any::<[u8; 64]>(),
            proptest::collection::vec(any::<u8>(), 0..80),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(
                |(qe_report, qe_report_signature, qe_auth_data, pck_cert_chain)| {
                    QeCertificationData {
                        qe_report,
                        qe_report_signature,
                        qe_auth_data,
                        pck_cert_chain,
                    }
                },
            )
    }

    #[test]
    fn layout_of_type_6() {
        let cert = sample_certification();
        let bytes = cert.to_bytes();
        assert_eq!(&bytes[..2], &[6, 0]);
        let size = u32::from_le_bytes(bytes[2..6].try_into().unwrap()) as usize;
        assert_eq!(size, bytes.len() - 6);
        assert_eq!(&bytes[6..390], &[7; 384][..]);
        assert_eq!(&bytes[390..454], &[9; 64][..]);
        assert_eq!(&bytes[454..456], &[32, 0]);
        assert_eq!(&bytes[488..490], &[5, 0]);
        let chain_len = u32::from_le_bytes(bytes[490..494].try_into().unwrap()) as usize;
        assert_eq!(&bytes[494..], &cert.pck_cert_chain[..]);
        assert_eq!(chain_len, cert.pck_cert_chain.len());
        assert_eq!(QeCertificationData::parse(&bytes), Ok(cert.clone()));
        assert_eq!(cert.qe_report_bytes(), [7; 384]);
        assert!(cert.check_sizes().is_ok());
        crate::abi::fuzz_certification_data(&bytes);
    }

    #[test]
    fn wrong_types_rejected() {
        let mut bytes = sample_certification().to_bytes();
        bytes[0] = 7;
        assert_eq!(
            QeCertificationData::parse(&bytes),
            Err(ParseError::UnsupportedCertificationDataType {
                what: "signature data: certification data",
                found: 7
            })
        );
        let mut bytes = sample_certification().to_bytes();
        bytes[488] = 4;
        assert_eq!(
            QeCertificationData::parse(&bytes),
            Err(ParseError::UnsupportedCertificationDataType {
                what: "QE report certification data: nested certification data",
                found: 4
            })
        );
    }

    #[test]
    fn sizes_must_fit_exactly() {
        let good = sample_certification().to_bytes();
        // Extra byte after the nested chain: both sizes now disagree with the container.
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(
            QeCertificationData::parse(&longer),
            Err(ParseError::SizeMismatch {
                what: "QE report certification data (type 6)",
                ..
            })
        ));
        // Type-6 size grown to cover it: the nested chain no longer ends at the end.
        let size = u32::from_le_bytes(longer[2..6].try_into().unwrap()) + 1;
        longer[2..6].copy_from_slice(&size.to_le_bytes());
        assert!(matches!(
            QeCertificationData::parse(&longer),
            Err(ParseError::SizeMismatch { declared, available, .. })
                if declared + 1 == available
        ));
        // QE auth data size past the end.
        let mut bad = good.clone();
        bad[454..456].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            QeCertificationData::parse(&bad),
            Err(ParseError::Truncated {
                what: "QE authentication data",
                ..
            })
        ));
        for cut in 0..good.len() {
            assert!(
                QeCertificationData::parse(&good[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn oversized_fields_reported() {
        let mut cert = sample_certification();
        cert.qe_auth_data = vec![0; 70_000];
        assert!(matches!(
            cert.check_sizes(),
            Err(ParseError::TooLarge {
                what: "QE authentication data",
                ..
            })
        ));
    }

    #[test]
    fn v3_layout_has_no_wrapper() {
        let sig = QuoteSignatureData {
            signature: [1; 64],
            attestation_key: [2; 64],
            certification: sample_certification(),
        };
        let v3 = sig.to_bytes(3);
        let v4 = sig.to_bytes(4);
        assert_eq!(v4.len(), v3.len() + 6);
        assert_eq!(&v3[128..], &v4[134..]);
        assert_eq!(QuoteSignatureData::parse(3, &v3), Ok(sig.clone()));
        assert_eq!(QuoteSignatureData::parse(5, &v4), Ok(sig.clone()));
        assert!(QuoteSignatureData::parse(4, &v3).is_err());
        assert!(QuoteSignatureData::parse(3, &v4).is_err());
        assert!(format!("{sig:?}").contains("pck_cert_chain_len"));
    }

    proptest! {
        #[test]
        fn certification_round_trip(cert in arb_certification()) {
            let bytes = cert.to_bytes();
            prop_assert_eq!(QeCertificationData::parse(&bytes), Ok(cert.clone()));
            prop_assert_eq!(&cert.qe_report_bytes()[..], &bytes[6..390]);
            crate::abi::fuzz_certification_data(&bytes);
        }

        #[test]
        fn arbitrary_certification_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..700)
        ) {
            crate::abi::fuzz_certification_data(&bytes);
        }
    }
}
