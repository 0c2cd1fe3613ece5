//! The errors of SEV-SNP verification: each names the check that failed and the field it read.

use tessera_pki::PkiError;

use crate::abi::{ParseError, Product, SigningKey, TcbParts};

/// Why SEV-SNP evidence was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnpError {
    /// The evidence bytes could not be read (wrong length, unknown version, bad table...).
    #[error("parse: {0}")]
    Parse(#[from] ParseError),
    /// A certificate or CRL check failed; `check` names the step (`vek_chain`, `revocation`,
    /// `certificate_parse`, `embedded_roots`).
    #[error("{check}: {source}")]
    Pki {
        /// The verification step.
        check: &'static str,
        /// What the PKI layer found.
        #[source]
        source: PkiError,
    },
    /// `SIGNATURE_ALGO` is not 1 (ECDSA P-384 with SHA-384).
    #[error("signature_algo: {0} is not supported (only 1, ECDSA P-384 SHA-384)")]
    UnsupportedSignatureAlgo(u32),
    /// The report carries no signature to check (`SIGNING_KEY` none, or `MASK_CHIP_KEY` set).
    #[error("signer_info: report is not signed ({0})")]
    NotSigned(&'static str),
    /// `SIGNER_INFO.SIGNING_KEY` holds a reserved value.
    #[error("signer_info: SIGNING_KEY {0} is reserved")]
    ReservedSigningKey(u8),
    /// The signature's R or S has non-zero bytes above the 48 that P-384 uses.
    #[error("signature: R or S has non-zero bytes above bit 383")]
    SignatureEncoding,
    /// The reserved bytes after S in the signature field are not zero.
    #[error("signature: reserved bytes after S are not zero")]
    SignatureReserved,
    /// A field the specification reserves holds another value than it prescribes (zero, or
    /// one for POLICY bit 17): a firmware that gave it a meaning is one this verifier does not
    /// know, so the report is refused rather than read without it.
    #[error("reserved: {field} {detail}")]
    Reserved {
        /// The field, in the specification's words (`POLICY`, `SIGNER_INFO`, `0x4C`...).
        field: &'static str,
        /// What it holds.
        detail: String,
    },
    /// The report signature does not verify under the VCEK/VLEK key.
    #[error("report_signature: does not verify under the {signer} key")]
    ReportSignature {
        /// VCEK or VLEK.
        signer: &'static str,
    },
    /// No certificate of the kind `SIGNER_INFO` names was supplied.
    #[error("endorsement: no {signer} certificate supplied (SIGNER_INFO names the {signer})")]
    MissingEndorsementKey {
        /// VCEK or VLEK.
        signer: &'static str,
    },
    /// `SIGNER_INFO` names one key kind and the certificate is the other.
    #[error(
        "signer_info: the report says {report:?} signed it, the certificate is a {certificate}"
    )]
    SignerMismatch {
        /// What SIGNER_INFO says.
        report: SigningKey,
        /// What the certificate is.
        certificate: &'static str,
    },
    /// The VCEK/VLEK was issued by the wrong kind of intermediate (a VCEK must chain through
    /// an ASK, a VLEK through an ASVK).
    #[error("vek_chain: a {vek} must be issued by an {expected}, not {issuer}")]
    IssuerKind {
        /// VCEK or VLEK.
        vek: &'static str,
        /// ASK or ASVK.
        expected: &'static str,
        /// The issuer's subject.
        issuer: String,
    },
    /// The chain's intermediate is none of the ASKs and ASVKs the trust anchors hold, so its
    /// kind is unknown; a VEK is accepted only under an ASK or ASVK known by its bytes.
    #[error(
        "vek_chain: the intermediate {subject} (serial {serial}) is none of the embedded ASKs or ASVKs"
    )]
    UnknownIntermediate {
        /// Its subject.
        subject: String,
        /// Its serial (hex).
        serial: String,
    },
    /// A certificate on the chain is one the embedded revocation list names (AMD revoked it in
    /// an ARK-signed CRL); rejected whether or not a CRL was supplied.
    #[error("revocation: {subject} (serial {serial}) is revoked: {source_crl}")]
    RevokedIntermediate {
        /// Its subject.
        subject: String,
        /// Its serial (hex).
        serial: String,
        /// The CRL that revoked it.
        source_crl: &'static str,
    },
    /// A TCB component of CURRENT_TCB is below REPORTED_TCB: the platform would report a TCB
    /// newer than the one it runs.
    #[error("current_tcb: CURRENT_TCB {current:?} is below REPORTED_TCB {reported:?} ({product})")]
    CurrentBelowReported {
        /// Product layout used.
        product: Product,
        /// CURRENT_TCB decoded.
        current: TcbParts,
        /// REPORTED_TCB decoded.
        reported: TcbParts,
    },
    /// The VCEK/VLEK is not an ECDSA P-384 key.
    #[error("vek_key: {0}")]
    VekKey(String),
    /// An AMD extension of the VCEK/VLEK is missing or malformed.
    #[error("vek_extension {oid} ({name}): {detail}")]
    VekExtension {
        /// The extension OID.
        oid: &'static str,
        /// Its meaning.
        name: &'static str,
        /// What was wrong.
        detail: &'static str,
    },
    /// Two sources disagree on the product (Milan/Genoa/Turin).
    #[error("product: the {source_a} says {a}, the {source_b} says {b}")]
    ProductMismatch {
        /// The first source (e.g. `certificate chain`).
        source_a: &'static str,
        /// Its product.
        a: Product,
        /// The second source (`report CPUID`, `VEK productName`, `caller`).
        source_b: &'static str,
        /// Its product.
        b: Product,
    },
    /// A v3+ report's CPUID names no product Tessera knows, so the product the chain
    /// endorses cannot be confirmed (and the TCB layout read by it could be another's).
    #[error(
        "product: the report CPUID (family {family:#04x}, model {model:#04x}) is no known product"
    )]
    UnknownCpuid {
        /// `CPUID_FAM_ID`.
        family: u8,
        /// `CPUID_MOD_ID`.
        model: u8,
    },
    /// `REPORTED_TCB` differs from the TCB the VCEK/VLEK was issued for.
    #[error(
        "reported_tcb: report has {report:?}, the {signer} certifies {certificate:?} ({product})"
    )]
    ReportedTcbMismatch {
        /// VCEK or VLEK.
        signer: &'static str,
        /// Product layout used.
        product: Product,
        /// REPORTED_TCB decoded.
        report: TcbParts,
        /// The certificate's TCB.
        certificate: TcbParts,
    },
    /// `CHIP_ID` differs from the VCEK's hwID.
    #[error("chip_id: report has {report}, the VCEK hwID is {certificate}")]
    ChipIdMismatch {
        /// CHIP_ID (hex, the compared prefix).
        report: String,
        /// hwID (hex).
        certificate: String,
    },
    /// The Azure HCL runtime data is not what REPORT_DATA binds.
    #[error("hcl_report_data: REPORT_DATA does not bind the HCL runtime data ({detail})")]
    HclBinding {
        /// Which part differs.
        detail: &'static str,
    },
    /// The embedded AMD roots failed to load (a build defect; never caused by input).
    #[error("embedded_roots: {0}")]
    EmbeddedRoots(String),
    /// A certificates-only check was given no certificate.
    #[error("vek_chain: no certificate given")]
    NoCertificate,
}

impl SnpError {
    /// The name of the check that failed, stable for scripts (`report_signature`, `reported_tcb`, ...).
    #[must_use]
    pub fn check(&self) -> &'static str {
        match self {
            Self::Parse(_) => "parse",
            Self::Pki { check, .. } => check,
            Self::UnsupportedSignatureAlgo(_) => "signature_algo",
            Self::NotSigned(_) | Self::ReservedSigningKey(_) | Self::SignerMismatch { .. } => {
                "signer_info"
            }
            Self::SignatureEncoding | Self::SignatureReserved => "signature",
            Self::Reserved { .. } => "reserved",
            Self::ReportSignature { .. } => "report_signature",
            Self::MissingEndorsementKey { .. } => "endorsement",
            Self::IssuerKind { .. } | Self::UnknownIntermediate { .. } | Self::NoCertificate => {
                "vek_chain"
            }
            Self::RevokedIntermediate { .. } => "revocation",
            Self::CurrentBelowReported { .. } => "current_tcb",
            Self::VekKey(_) => "vek_key",
            Self::VekExtension { .. } => "vek_extension",
            Self::ProductMismatch { .. } | Self::UnknownCpuid { .. } => "product",
            Self::ReportedTcbMismatch { .. } => "reported_tcb",
            Self::ChipIdMismatch { .. } => "chip_id",
            Self::HclBinding { .. } => "hcl_report_data",
            Self::EmbeddedRoots(_) => "embedded_roots",
        }
    }

    /// The field the failed check read: a report field (`SIGNATURE`, `REPORTED_TCB`,
    /// `CHIP_ID`, ...), a VCEK/VLEK extension, or the certificates.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::Parse(e) => e.field(),
            Self::Pki { .. }
            | Self::IssuerKind { .. }
            | Self::UnknownIntermediate { .. }
            | Self::NoCertificate
            | Self::MissingEndorsementKey { .. } => "certificates",
            Self::UnsupportedSignatureAlgo(_) => "SIGNATURE_ALGO",
            Self::NotSigned(_) | Self::ReservedSigningKey(_) | Self::SignerMismatch { .. } => {
                "SIGNER_INFO"
            }
            Self::SignatureEncoding | Self::SignatureReserved | Self::ReportSignature { .. } => {
                "SIGNATURE"
            }
            Self::Reserved { field, .. } => field,
            Self::RevokedIntermediate { .. } => "serialNumber",
            Self::CurrentBelowReported { .. } => "CURRENT_TCB",
            Self::VekKey(_) => "subjectPublicKeyInfo",
            Self::VekExtension { name, .. } => name,
            Self::ProductMismatch { .. } => "product",
            Self::UnknownCpuid { .. } => "CPUID_FAM_ID",
            Self::ReportedTcbMismatch { .. } => "REPORTED_TCB",
            Self::ChipIdMismatch { .. } => "CHIP_ID",
            Self::HclBinding { .. } => "REPORT_DATA",
            Self::EmbeddedRoots(_) => "embedded roots",
        }
    }

    pub(crate) fn pki(check: &'static str) -> impl FnOnce(PkiError) -> Self {
        move |source| Self::Pki { check, source }
    }
}
