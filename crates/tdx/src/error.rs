//! The errors of DCAP quote verification: each names the check that failed and the field it read.

use tessera_pki::{PkiError, UnixTime};

use crate::abi::ParseError;
use crate::collateral::CollateralError;
use crate::pck::PckError;
use crate::tcb::TcbError;

/// Why a TDX or SGX quote was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TdxError {
    /// The quote bytes could not be read (truncated, unknown version, certification data type...).
    #[error("parse: {0}")]
    Parse(#[from] ParseError),
    /// The collateral could not be read.
    #[error("collateral: {0}")]
    Collateral(#[from] CollateralError),
    /// The PCK certificate's SGX extensions are missing or malformed.
    #[error("pck_extension: {0}")]
    PckExtension(#[from] PckError),
    /// A certificate or CRL check failed; `check` names the step (`pck_chain`, `revocation`,
    /// `tcb_info_chain`, `qe_identity_chain`, `embedded_roots`).
    #[error("{check}: {source}")]
    Pki {
        /// The verification step.
        check: &'static str,
        /// What the PKI layer found.
        #[source]
        source: PkiError,
    },
    /// Intel's TCB rules reject the quote (no level, Revoked, module or QE identity mismatch).
    #[error("{0}")]
    Tcb(#[from] TcbError),
    /// The quote was produced by a quoting enclave of another vendor.
    #[error("qe_vendor_id: {0} is not Intel's quoting enclave")]
    QeVendorId(String),
    /// The certification data holds no usable PCK certificate chain.
    #[error("pck_chain: {0}")]
    PckChain(String),
    /// The QE report is not signed by the PCK key.
    #[error("qe_report_signature: the QE report does not verify under the PCK certificate's key")]
    QeReportSignature,
    /// The QE report does not bind the attestation key and QE authentication data.
    #[error(
        "qe_report_data: {field} is not SHA-256(attestation key || QE authentication data) || zeros"
    )]
    QeReportData {
        /// `report_data[0..32]` or `report_data[32..64]`.
        field: &'static str,
    },
    /// The attestation key is not a valid P-256 point.
    #[error("attestation_key: not a valid P-256 public key")]
    AttestationKey,
    /// The quote signature does not verify under the attestation key.
    #[error("quote_signature: the quote does not verify under its attestation key")]
    QuoteSignature,
    /// A collateral signer (TCB Signing certificate, PCK CRL issuer) is not where Intel's PKI
    /// puts it: directly under the root.
    #[error("{check}: {detail}")]
    SignerPath {
        /// `tcb_info_chain`, `qe_identity_chain` or `pck_crl_chain`.
        check: &'static str,
        /// What was found.
        detail: String,
    },
    /// A collateral item's signature does not verify under its issuer chain.
    #[error("{item}_signature: not signed by a certificate of its issuer chain")]
    CollateralSignature {
        /// `tcb_info` or `qe_identity`.
        item: &'static str,
    },
    /// A collateral item is outside its issueDate..nextUpdate window (or a CRL outside
    /// thisUpdate..nextUpdate) at the verification time.
    #[error("collateral_window: {item} {field} is {bound}, verification time is {at}")]
    CollateralWindow {
        /// `tcb_info`, `qe_identity`, `pck_crl`, `root_ca_crl`.
        item: &'static str,
        /// `issueDate` / `nextUpdate` / `thisUpdate`.
        field: &'static str,
        /// The bound crossed.
        bound: UnixTime,
        /// The verification time.
        at: UnixTime,
    },
    /// The TCB info does not belong to this platform or TEE.
    #[error("tcb_info: {field} is {actual}, expected {expected}")]
    TcbInfoMismatch {
        /// `fmspc`, `pceId`, `id`, `version`.
        field: &'static str,
        /// What the quote / PCK certificate needs.
        expected: String,
        /// What the TCB info says.
        actual: String,
    },
    /// CRLs are missing and the caller did not allow verifying without revocation checks.
    #[error(
        "revocation: the collateral has no {missing}; pass allow_missing_crls to verify without revocation checking"
    )]
    MissingCrl {
        /// `pck_crl` or `root_ca_crl`.
        missing: &'static str,
    },
    /// The PCK CRL is not issued by the CA that issued the PCK certificate.
    #[error(
        "revocation: the PCK CRL is issued by {crl_issuer}, the PCK certificate by {pck_issuer}"
    )]
    CrlIssuer {
        /// The CRL's issuer.
        crl_issuer: String,
        /// The PCK certificate's issuer.
        pck_issuer: String,
    },
    /// A certificate is listed on a CRL.
    #[error("revocation: {subject} (serial {serial}) is revoked by {crl}")]
    Revoked {
        /// The revoked certificate's subject.
        subject: String,
        /// Its serial (hex).
        serial: String,
        /// Which CRL lists it.
        crl: &'static str,
    },
    /// The embedded Intel root failed to load (a build defect; never caused by input).
    #[error("embedded_roots: {0}")]
    EmbeddedRoots(String),
    /// The simulator could not build what was asked (never raised by verification).
    #[error("simulator: {0}")]
    Simulator(String),
}

impl TdxError {
    /// The name of the check that failed, stable for scripts (`quote_signature`, `tcb_level`, ...).
    #[must_use]
    pub fn check(&self) -> &'static str {
        match self {
            Self::Parse(_) => "parse",
            Self::Collateral(_) => "collateral",
            Self::PckExtension(_) => "pck_extension",
            Self::Pki { check, .. } | Self::SignerPath { check, .. } => check,
            Self::Tcb(e) => e.check(),
            Self::QeVendorId(_) => "qe_vendor_id",
            Self::PckChain(_) => "pck_chain",
            Self::QeReportSignature => "qe_report_signature",
            Self::QeReportData { .. } => "qe_report_data",
            Self::AttestationKey => "attestation_key",
            Self::QuoteSignature => "quote_signature",
            Self::CollateralSignature { item: "tcb_info" } => "tcb_info_signature",
            Self::CollateralSignature { .. } => "qe_identity_signature",
            Self::CollateralWindow { .. } => "collateral_window",
            Self::TcbInfoMismatch { .. } => "tcb_info",
            Self::MissingCrl { .. } | Self::CrlIssuer { .. } | Self::Revoked { .. } => "revocation",
            Self::EmbeddedRoots(_) => "embedded_roots",
            Self::Simulator(_) => "simulator",
        }
    }

    /// The field the failed check read: a quote field, a collateral member, a PCK certificate
    /// extension, or the certificates.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::Parse(e) => e.field(),
            Self::Collateral(_) => "collateral",
            Self::PckExtension(_) => "PCK certificate SGX extensions",
            Self::Pki { .. } | Self::SignerPath { .. } | Self::PckChain(_) => "certificates",
            Self::Tcb(e) => e.field(),
            Self::QeVendorId(_) => "header.qe_vendor_id",
            Self::QeReportSignature => "qe_report_signature",
            Self::QeReportData { field } => field,
            Self::AttestationKey => "attestation_key",
            Self::QuoteSignature => "quote_signature",
            Self::CollateralSignature { item } => item,
            Self::CollateralWindow { field, .. } | Self::TcbInfoMismatch { field, .. } => field,
            Self::MissingCrl { missing } => missing,
            Self::CrlIssuer { .. } => "PCK CRL issuer",
            Self::Revoked { .. } => "serialNumber",
            Self::EmbeddedRoots(_) => "embedded roots",
            Self::Simulator(_) => "simulator",
        }
    }

    /// Intel's name for a terminal TCB result (`TcbLevelNotSupported`, `Revoked`), when this
    /// error is one.
    #[must_use]
    pub fn tcb_status_name(&self) -> Option<&'static str> {
        match self {
            Self::Tcb(e) => e.tcb_status_name(),
            _ => None,
        }
    }

    pub(crate) fn pki(check: &'static str) -> impl FnOnce(PkiError) -> Self {
        move |source| Self::Pki { check, source }
    }
}
