//! The crypto backend: the only module that calls aws-lc-rs for verification and hashing.

use aws_lc_rs::{digest, signature};

use crate::cert::{PublicKey, PublicKeyKind, SignatureScheme};

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-384 of `data`.
#[must_use]
pub fn sha384(data: &[u8]) -> [u8; 48] {
    let d = digest::digest(&digest::SHA384, data);
    let mut out = [0u8; 48];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-512 of `data`.
#[must_use]
pub fn sha512(data: &[u8]) -> [u8; 64] {
    let d = digest::digest(&digest::SHA512, data);
    let mut out = [0u8; 64];
    out.copy_from_slice(d.as_ref());
    out
}

fn x509_algorithm(
    scheme: SignatureScheme,
    key: PublicKeyKind,
) -> Option<&'static dyn signature::VerificationAlgorithm> {
    use PublicKeyKind::{EcP256, EcP384, Rsa};
    use SignatureScheme as S;
    Some(match (scheme, key) {
        (S::RsaPssSha384, Rsa { .. }) => &signature::RSA_PSS_2048_8192_SHA384,
        (S::RsaPssSha256, Rsa { .. }) => &signature::RSA_PSS_2048_8192_SHA256,
        (S::RsaPkcs1Sha256, Rsa { .. }) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (S::RsaPkcs1Sha384, Rsa { .. }) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (S::EcdsaSha256, EcP256) => &signature::ECDSA_P256_SHA256_ASN1,
        (S::EcdsaSha384, EcP256) => &signature::ECDSA_P256_SHA384_ASN1,
        (S::EcdsaSha256, EcP384) => &signature::ECDSA_P384_SHA256_ASN1,
        (S::EcdsaSha384, EcP384) => &signature::ECDSA_P384_SHA384_ASN1,
        _ => return None,
    })
}

/// An issuer's key parsed once for the X.509 signatures it verifies (certificates and CRLs it
/// issued). Kept with the issuer's certificate, so a CA or root that signs several objects has
/// its key decoded and checked once, not once per signature.
#[derive(Default)]
pub(crate) struct IssuerKey {
    /// The key, parsed for the first scheme it was used with (`None` if it did not parse).
    parsed: std::sync::OnceLock<Option<(SignatureScheme, signature::ParsedPublicKey)>>,
}

impl IssuerKey {
    /// Verify an X.509-style signature (ASN.1 ECDSA or RSA) with this key, parsed on first use
    /// (a signature of another scheme than the first one is checked with a one-off parse).
    /// `Err(true)` means the algorithm does not fit the key; `Err(false)` that the signature
    /// is invalid.
    pub(crate) fn verify(
        &self,
        scheme: SignatureScheme,
        key: &PublicKey,
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), bool> {
        let alg = x509_algorithm(scheme, key.kind()).ok_or(true)?;
        let parsed = self.parsed.get_or_init(|| {
            signature::ParsedPublicKey::new(alg, key.raw())
                .ok()
                .map(|k| (scheme, k))
        });
        match parsed {
            Some((first, k)) if *first == scheme => k.verify_sig(message, sig).map_err(|_| false),
            _ => signature::UnparsedPublicKey::new(alg, key.raw())
                .verify(message, sig)
                .map_err(|_| false),
        }
    }
}

/// Signature formats outside X.509: fixed-width big-endian `r || s`, as attestation evidence uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawSignatureScheme {
    /// ECDSA P-384 with SHA-384, `r || s` 48 bytes each (SEV-SNP reports, after byte reversal).
    EcdsaP384Sha384,
    /// ECDSA P-256 with SHA-256, `r || s` 32 bytes each (DCAP quotes).
    EcdsaP256Sha256,
}

/// A public key parsed once for repeated verification of raw (fixed-width) signatures.
#[derive(Clone)]
pub struct PreparedKey {
    key: signature::ParsedPublicKey,
    scheme: RawSignatureScheme,
}

impl core::fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedKey")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl PreparedKey {
    /// Prepare `key` for `scheme`.
    ///
    /// # Errors
    /// [`crate::PkiError::UnsupportedKey`] when the key's curve does not fit the scheme or the
    /// point is invalid.
    pub fn new(scheme: RawSignatureScheme, key: &PublicKey) -> Result<Self, crate::PkiError> {
        Self::from_point(scheme, key.kind(), key.raw())
    }

    /// Prepare an uncompressed EC point (`04 || x || y`) of the given kind for `scheme`.
    ///
    /// # Errors
    /// [`crate::PkiError::UnsupportedKey`] when the curve does not fit or the point is invalid.
    pub fn from_point(
        scheme: RawSignatureScheme,
        kind: PublicKeyKind,
        point: &[u8],
    ) -> Result<Self, crate::PkiError> {
        let alg: &'static dyn signature::VerificationAlgorithm = match (scheme, kind) {
            (RawSignatureScheme::EcdsaP384Sha384, PublicKeyKind::EcP384) => {
                &signature::ECDSA_P384_SHA384_FIXED
            }
            (RawSignatureScheme::EcdsaP256Sha256, PublicKeyKind::EcP256) => {
                &signature::ECDSA_P256_SHA256_FIXED
            }
            _ => {
                return Err(crate::PkiError::UnsupportedKey {
                    subject: String::from("raw signature key"),
                    detail: format!("{kind:?} key cannot verify {scheme:?}"),
                });
            }
        };
        let key = signature::ParsedPublicKey::new(alg, point).map_err(|e| {
            crate::PkiError::UnsupportedKey {
                subject: String::from("raw signature key"),
                detail: e.to_string(),
            }
        })?;
        Ok(Self { key, scheme })
    }

    /// The scheme this key verifies.
    #[must_use]
    pub fn scheme(&self) -> RawSignatureScheme {
        self.scheme
    }

    /// Whether `sig` (fixed-width `r || s`) is a valid signature of `message`.
    #[must_use]
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        self.key.verify_sig(message, sig).is_ok()
    }
}
