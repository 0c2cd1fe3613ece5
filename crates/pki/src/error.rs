//! The errors of certificate, CRL and chain processing, each naming the object and the check.

use crate::UnixTime;

/// Why a certificate, CRL or chain was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The bytes are not a well-formed DER certificate or CRL (or have trailing data).
    #[error("{what}: malformed DER: {detail}")]
    Der {
        /// Which object was being parsed.
        what: &'static str,
        /// The parser's description.
        detail: String,
    },
    /// A PEM input could not be decoded, or had no object of the expected label.
    #[error("{what}: malformed PEM: {detail}")]
    Pem {
        /// Which object was being parsed.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// An input exceeded a size or count bound.
    #[error("{what}: too large ({actual} > {limit})")]
    TooLarge {
        /// What was being counted.
        what: &'static str,
        /// The bound.
        limit: usize,
        /// The value seen.
        actual: usize,
    },
    /// A signature algorithm that is not supported (or has unsupported parameters).
    #[error("{subject}: unsupported signature algorithm {oid}")]
    UnsupportedSignatureAlgorithm {
        /// The object's subject (or issuer for CRLs).
        subject: String,
        /// Algorithm OID (dotted) and parameter note.
        oid: String,
    },
    /// RSASSA-PSS parameters other than SHA-384/SHA-256 with matching MGF1, salt = hash length, trailer 1.
    #[error("{subject}: unsupported RSASSA-PSS parameters: {detail}")]
    PssParameters {
        /// The object's subject.
        subject: String,
        /// Which parameter was wrong.
        detail: String,
    },
    /// The public key is not RSA or ECDSA P-256/P-384, or is malformed.
    #[error("{subject}: unsupported or malformed public key: {detail}")]
    UnsupportedKey {
        /// The certificate's subject.
        subject: String,
        /// What was wrong.
        detail: String,
    },
    /// The signature algorithm does not fit the signer's key (e.g. ECDSA signature, RSA key).
    #[error("{subject}: signature algorithm does not match the issuer key {issuer}")]
    AlgorithmKeyMismatch {
        /// The signed object's subject.
        subject: String,
        /// The issuer's subject.
        issuer: String,
    },
    /// The signature did not verify under the issuer's key.
    #[error("{subject}: signature does not verify under the key of {issuer}")]
    BadSignature {
        /// The signed object's subject.
        subject: String,
        /// The issuer's subject.
        issuer: String,
    },
    /// The certificate is not yet valid at the verification time.
    #[error("{subject}: not valid before {not_before} (verification time {at})")]
    NotYetValid {
        /// The certificate's subject.
        subject: String,
        /// Its notBefore.
        not_before: UnixTime,
        /// The verification time.
        at: UnixTime,
    },
    /// The certificate expired before the verification time.
    #[error("{subject}: expired at {not_after} (verification time {at})")]
    Expired {
        /// The certificate's subject.
        subject: String,
        /// Its notAfter.
        not_after: UnixTime,
        /// The verification time.
        at: UnixTime,
    },
    /// A would-be issuer is marked as not a CA, or may not sign certificates.
    #[error("{issuer}: not allowed to issue certificates ({detail})")]
    NotCa {
        /// The would-be issuer's subject.
        issuer: String,
        /// basicConstraints or keyUsage.
        detail: &'static str,
    },
    /// A certificate on a path carries a critical extension this verifier does not process
    /// (RFC 5280 4.2: such a certificate must be rejected). Only basicConstraints and keyUsage
    /// are processed.
    #[error("{subject}: critical extension {oid} is not processed, so the certificate is not used")]
    UnhandledCriticalExtension {
        /// The certificate's subject.
        subject: String,
        /// The extension's OID, dotted.
        oid: String,
    },
    /// No chain from the certificate to a trust anchor could be built.
    #[error("{subject}: no chain to a trusted root (issuer {issuer})")]
    UnknownIssuer {
        /// The certificate whose issuer was not found.
        subject: String,
        /// Its issuer name.
        issuer: String,
    },
    /// The signature-check budget ran out while building a chain.
    #[error("signature-check budget exhausted while building a chain")]
    BudgetExhausted,
    /// A CRL was issued before the verification time's window or is past its nextUpdate.
    #[error(
        "CRL of {issuer}: not current at {at} (thisUpdate {this_update}, nextUpdate {next_update})"
    )]
    CrlNotCurrent {
        /// The CRL issuer.
        issuer: String,
        /// thisUpdate.
        this_update: UnixTime,
        /// nextUpdate (the epoch when absent).
        next_update: UnixTime,
        /// The verification time.
        at: UnixTime,
    },
    /// A CRL has no nextUpdate, so its freshness cannot be judged.
    #[error("CRL of {issuer}: no nextUpdate")]
    CrlNoNextUpdate {
        /// The CRL issuer.
        issuer: String,
    },
    /// A CRL carries an extension that would change what it means and is not processed (a
    /// critical one, a delta-CRL indicator, an issuing distribution point) or one extension
    /// twice: the CRL is not used (RFC 5280 5.2, 5.3).
    #[error("CRL of {issuer}: {field}: extension {oid} {detail}, so the CRL is not used")]
    CrlUnusable {
        /// The CRL issuer.
        issuer: String,
        /// `crlExtensions` or `revokedCertificates[i].crlEntryExtensions`.
        field: String,
        /// The extension's OID, dotted.
        oid: String,
        /// Why it makes the CRL unusable.
        detail: &'static str,
    },
    /// The certificate named as a CRL's issuer has a keyUsage without cRLSign.
    #[error("CRL of {issuer}: the issuer's keyUsage does not allow cRLSign")]
    CrlIssuerKeyUsage {
        /// The CRL issuer.
        issuer: String,
    },
    /// A certificate whose key signs evidence or collateral has a keyUsage without
    /// digitalSignature.
    #[error("{subject}: keyUsage does not allow digitalSignature, so its key signs no data")]
    NotForSigning {
        /// The certificate's subject.
        subject: String,
    },
    /// A CRL did not verify under the key of the certificate named as its issuer.
    #[error("CRL of {issuer}: signature does not verify under the issuer's key")]
    CrlBadSignature {
        /// The CRL issuer.
        issuer: String,
    },
    /// A CRL offered on its own (a cache's, a bundle's) is issued by none of the trusted
    /// roots and intermediates it may come from.
    #[error("CRL of {issuer}: its issuer is none of the trusted roots and intermediates")]
    CrlUntrustedIssuer {
        /// The CRL issuer.
        issuer: String,
    },
    /// A CRL applies to no certificate of the chain (its issuer is not in the chain).
    #[error("CRL of {issuer}: issued by no certificate of the chain")]
    CrlUnrelated {
        /// The CRL issuer.
        issuer: String,
    },
    /// A certificate of the chain is listed as revoked.
    #[error("{subject}: revoked (serial {serial}) by the CRL of {issuer}")]
    Revoked {
        /// The revoked certificate's subject.
        subject: String,
        /// Its serial number (hex).
        serial: String,
        /// The CRL issuer.
        issuer: String,
    },
    /// A timestamp could not be parsed as RFC 3339.
    #[error("invalid RFC 3339 time {value:?}")]
    Time {
        /// The text given (truncated).
        value: String,
    },
    /// Building a certificate or CRL (simulator) failed in the crypto backend.
    #[error("simulator: {0}")]
    Builder(&'static str),
}
