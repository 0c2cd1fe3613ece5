//! The ephemeral TEE key: generated per handshake, sent as a JWK, used once to open the JWE.
//!
//! EC keys are aws-lc-rs `agreement::PrivateKey` (static ECDH keys, P-256 and P-521); RSA keys
//! are `rsa::PrivateDecryptingKey` with OAEP SHA-256 / MGF1-SHA-256. The private halves live in
//! aws-lc's memory, which it clears when the key is freed; this type has no `Clone` and its
//! `Debug` shows only the algorithm.

use core::fmt;

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    self, KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::error::ClientError;

/// The kind of ephemeral key the client generates and sends as `tee-pubkey`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TeeKeyAlg {
    /// EC P-256, `ECDH-ES+A256KW` (the CoCo guests' default).
    #[default]
    P256,
    /// EC P-521, `ECDH-ES+A256KW`.
    P521,
    /// RSA 2048, `RSA-OAEP-256`.
    Rsa,
    /// RSA 3072, `RSA-OAEP-256`.
    Rsa3072,
}

impl TeeKeyAlg {
    /// The JWE `alg` a resource encrypted to this key must name.
    #[must_use]
    pub fn jwe_alg(self) -> &'static str {
        match self {
            TeeKeyAlg::P256 | TeeKeyAlg::P521 => "ECDH-ES+A256KW",
            TeeKeyAlg::Rsa | TeeKeyAlg::Rsa3072 => "RSA-OAEP-256",
        }
    }
}

/// An EC curve of the TEE key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P521,
}

impl Curve {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P521 => "P-521",
        }
    }

    /// Bytes of one affine coordinate.
    pub(crate) fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P521 => 66,
        }
    }

    pub(crate) fn agreement(self) -> &'static agreement::Algorithm {
        match self {
            Curve::P256 => &agreement::ECDH_P256,
            Curve::P521 => &agreement::ECDH_P521,
        }
    }
}

pub(crate) enum KeySecret {
    Ec {
        curve: Curve,
        private: agreement::PrivateKey,
    },
    Rsa {
        private: OaepPrivateDecryptingKey,
        modulus_len: usize,
    },
}

/// An ephemeral TEE key pair and its public JWK.
pub struct TeeKey {
    alg: TeeKeyAlg,
    pub(crate) secret: KeySecret,
    jwk: serde_json::Value,
}

impl fmt::Debug for TeeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeeKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

const CRYPTO_KEYGEN: ClientError = ClientError::Crypto {
    what: "TEE key generation",
};

impl TeeKey {
    /// Generates a fresh key of this kind.
    ///
    /// # Errors
    /// [`ClientError::Crypto`] when the crypto library fails to generate or export the key.
    pub fn generate(alg: TeeKeyAlg) -> Result<TeeKey, ClientError> {
        match alg {
            TeeKeyAlg::P256 => Self::generate_ec(alg, Curve::P256),
            TeeKeyAlg::P521 => Self::generate_ec(alg, Curve::P521),
            TeeKeyAlg::Rsa => Self::generate_rsa(alg, KeySize::Rsa2048),
            TeeKeyAlg::Rsa3072 => Self::generate_rsa(alg, KeySize::Rsa3072),
        }
    }

    fn generate_ec(alg: TeeKeyAlg, curve: Curve) -> Result<TeeKey, ClientError> {
        let private =
            agreement::PrivateKey::generate(curve.agreement()).map_err(|_| CRYPTO_KEYGEN)?;
        let public = private.compute_public_key().map_err(|_| CRYPTO_KEYGEN)?;
        let n = curve.coordinate_len();
        // Uncompressed SEC1 point: 0x04 || x || y.
        let (x, y) = match public.as_ref().split_first() {
            Some((0x04, xy)) if xy.len() == 2 * n => xy.split_at(n),
            _ => return Err(CRYPTO_KEYGEN),
        };
        let jwk = serde_json::json!({
            "kty": "EC",
            "crv": curve.name(),
            "alg": alg.jwe_alg(),
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        });
        Ok(TeeKey {
            alg,
            secret: KeySecret::Ec { curve, private },
            jwk,
        })
    }

    fn generate_rsa(alg: TeeKeyAlg, size: KeySize) -> Result<TeeKey, ClientError> {
        let private = PrivateDecryptingKey::generate(size).map_err(|_| CRYPTO_KEYGEN)?;
        let spki = private.public_key().as_der().map_err(|_| CRYPTO_KEYGEN)?;
        let public = rsa::PublicKey::from_der(spki.as_ref()).map_err(|_| CRYPTO_KEYGEN)?;
        let jwk = serde_json::json!({
            "kty": "RSA",
            "alg": alg.jwe_alg(),
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        });
        let modulus_len = private.key_size_bytes();
        let private = OaepPrivateDecryptingKey::new(private).map_err(|_| CRYPTO_KEYGEN)?;
        Ok(TeeKey {
            alg,
            secret: KeySecret::Rsa {
                private,
                modulus_len,
            },
            jwk,
        })
    }

    /// The kind of key.
    #[must_use]
    pub fn alg(&self) -> TeeKeyAlg {
        self.alg
    }

    /// The public key as the JWK sent in `runtime-data.tee-pubkey` (and bound in REPORT_DATA).
    #[must_use]
    pub fn jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// Opens a KBS resource answer (a flattened JWE) encrypted to this key.
    ///
    /// # Errors
    /// [`ClientError::Jwe`] naming the malformed field or mismatched header member,
    /// [`ClientError::DecryptFailed`] when the key unwrap or AES-GCM fails.
    pub fn decrypt(&self, body: &[u8]) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        super::jwe::decrypt(self, body)
    }

    /// `ECDH(private, peer)` fed into `kdf`; the shared secret never leaves the closure.
    pub(crate) fn agree<R>(
        &self,
        peer_sec1: &[u8],
        kdf: impl FnOnce(&[u8]) -> Result<R, ClientError>,
    ) -> Result<R, ClientError> {
        let KeySecret::Ec { curve, private } = &self.secret else {
            return Err(ClientError::Jwe {
                check: "alg does not match the TEE key",
            });
        };
        let peer = agreement::UnparsedPublicKey::new(curve.agreement(), peer_sec1);
        agreement::agree(private, peer, ClientError::DecryptFailed, kdf)
    }

    /// RSA-OAEP-256 decryption of a wrapped content key.
    pub(crate) fn oaep_decrypt(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let KeySecret::Rsa {
            private,
            modulus_len,
        } = &self.secret
        else {
            return Err(ClientError::Jwe {
                check: "alg does not match the TEE key",
            });
        };
        if wrapped.len() != *modulus_len {
            return Err(ClientError::Jwe {
                check: "encrypted_key length differs from the RSA modulus",
            });
        }
        let mut out = Zeroizing::new(vec![0u8; *modulus_len]);
        let len = private
            .decrypt(&OAEP_SHA256_MGF1SHA256, wrapped, &mut out, None)
            .map_err(|_| ClientError::DecryptFailed)?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &serde_json::Value, k: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(v[k].as_str().unwrap()).unwrap()
    }

    #[test]
    fn ec_jwks_have_the_protocol_members_and_lengths() {
        for (alg, crv, n) in [
            (TeeKeyAlg::P256, "P-256", 32),
            (TeeKeyAlg::P521, "P-521", 66),
        ] {
            let k = TeeKey::generate(alg).unwrap();
            let jwk = k.jwk();
            let keys: Vec<_> = jwk.as_object().unwrap().keys().cloned().collect();
            assert_eq!(keys.len(), 5, "{jwk}");
            assert_eq!(jwk["kty"], "EC");
            assert_eq!(jwk["crv"], crv);
            assert_eq!(jwk["alg"], "ECDH-ES+A256KW");
            assert_eq!(b64(jwk, "x").len(), n);
            assert_eq!(b64(jwk, "y").len(), n);
            assert!(format!("{k:?}").starts_with("TeeKey { alg:"));
        }
    }

    #[test]
    fn keys_are_fresh_each_time() {
        let a = TeeKey::generate(TeeKeyAlg::P256).unwrap();
        let b = TeeKey::generate(TeeKeyAlg::P256).unwrap();
        assert_ne!(a.jwk(), b.jwk());
    }

    #[test]
    fn rsa_jwk_has_minimal_big_endian_n_and_e() {
        let k = TeeKey::generate(TeeKeyAlg::Rsa).unwrap();
        let jwk = k.jwk();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RSA-OAEP-256");
        assert_eq!(jwk["e"], "AQAB");
        let n = b64(jwk, "n");
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0);
        assert_eq!(jwk.as_object().unwrap().len(), 4);
    }
}
