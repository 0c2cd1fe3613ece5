//! Signing and verifying keys for EAR tokens: ECDSA P-256/SHA-256 (ES256) and P-384/SHA-384
//! (ES384) over aws-lc-rs, each key pinned to its one algorithm.
//!
//! Formats: PKCS#8 (DER or PEM `PRIVATE KEY`) for signing keys; SubjectPublicKeyInfo (DER or PEM
//! `PUBLIC KEY`, RFC 5480 named curve, uncompressed point) and JWK (RFC 7517/7518 §6.2, `kty`
//! `EC`) for verifying keys. The key ID is the RFC 7638 JWK thumbprint (SHA-256).

use core::fmt;

use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair, ParsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::TokenError;

/// Most bytes accepted for a PEM key file.
const MAX_PEM_LEN: usize = 16 * 1024;

/// A JWS/COSE signature algorithm: the curve and hash are fixed by the key (RFC 7518 §3.4,
/// RFC 9053 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Alg {
    /// ECDSA P-256 with SHA-256: JWS `ES256`, COSE -7.
    Es256,
    /// ECDSA P-384 with SHA-384: JWS `ES384`, COSE -35.
    Es384,
}

impl Alg {
    /// The JWS name (`ES256`, `ES384`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    /// The JWK curve name (`P-256`, `P-384`).
    #[must_use]
    pub const fn curve(self) -> &'static str {
        match self {
            Self::Es256 => "P-256",
            Self::Es384 => "P-384",
        }
    }

    /// The COSE algorithm.
    pub(crate) const fn cose(self) -> coset::iana::Algorithm {
        match self {
            Self::Es256 => coset::iana::Algorithm::ES256,
            Self::Es384 => coset::iana::Algorithm::ES384,
        }
    }

    /// Bytes of one coordinate, and of `r` and `s` in a signature.
    const fn coordinate_len(self) -> usize {
        match self {
            Self::Es256 => 32,
            Self::Es384 => 48,
        }
    }

    /// The DER of a SubjectPublicKeyInfo up to the uncompressed point (RFC 5480: id-ecPublicKey
    /// with the named curve, BIT STRING with no unused bits). DER is canonical, so every such
    /// key starts with exactly these bytes.
    const fn spki_prefix(self) -> &'static [u8] {
        match self {
            // SEQUENCE(89) { SEQUENCE(19) { 1.2.840.10045.2.1, 1.2.840.10045.3.1.7 }, BIT STRING(66) 00 }
            Self::Es256 => &[
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ],
            // SEQUENCE(118) { SEQUENCE(16) { 1.2.840.10045.2.1, 1.3.132.0.34 }, BIT STRING(98) 00 }
            Self::Es384 => &[
                0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
            ],
        }
    }

    fn signing(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            Self::Es256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Self::Es384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        }
    }

    fn verification(self) -> &'static EcdsaVerificationAlgorithm {
        match self {
            Self::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Self::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
        }
    }

    const ALL: [Self; 2] = [Self::Es256, Self::Es384];
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn key_error(what: &'static str) -> TokenError {
    TokenError::Key { what }
}

/// A public key that verifies EAR tokens of exactly one algorithm: an ES384 key never verifies
/// an ES256 token, whatever the token's header says.
#[derive(Clone)]
pub struct VerifyingKey {
    alg: Alg,
    /// SEC 1 uncompressed point `04 || x || y`.
    point: Box<[u8]>,
    parsed: ParsedPublicKey,
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg && self.point == other.point
    }
}

impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.thumbprint())
            .finish()
    }
}

impl VerifyingKey {
    /// The key for `alg` with SEC 1 uncompressed point `point`, checked to be on the curve.
    fn from_point(alg: Alg, point: &[u8]) -> Result<Self, TokenError> {
        let len = 1 + 2 * alg.coordinate_len();
        if point.len() != len || point.first() != Some(&0x04) {
            return Err(key_error(
                "the public key is not an uncompressed point of its curve",
            ));
        }
        let parsed = ParsedPublicKey::new(alg.verification(), point)
            .map_err(|_| key_error("the public key is not a point on its curve"))?;
        Ok(Self {
            alg,
            point: point.into(),
            parsed,
        })
    }

    /// The algorithm this key verifies (and the only one it accepts).
    #[must_use]
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Read a DER SubjectPublicKeyInfo for a P-256 or P-384 key (named curve, uncompressed
    /// point).
    ///
    /// # Errors
    /// [`TokenError::Key`] when the DER is not such a key (other curves, RSA, compressed points
    /// and explicit curve parameters are refused) or the point is not on the curve.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, TokenError> {
        for alg in Alg::ALL {
            if let Some(point) = der.strip_prefix(alg.spki_prefix()) {
                return Self::from_point(alg, point);
            }
        }
        Err(key_error(
            "not a SubjectPublicKeyInfo of a P-256 or P-384 key (named curve, uncompressed point)",
        ))
    }

    /// Read a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    ///
    /// # Errors
    /// [`TokenError::Key`] when there is no `PUBLIC KEY` block or it does not hold a P-256 or
    /// P-384 key; [`TokenError::TooLarge`] above 16 KiB.
    pub fn from_spki_pem(pem: &str) -> Result<Self, TokenError> {
        let der = pem_block(pem, "PUBLIC KEY")?;
        Self::from_spki_der(&der)
    }

    /// The DER SubjectPublicKeyInfo.
    #[must_use]
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut der = self.alg.spki_prefix().to_vec();
        der.extend_from_slice(&self.point);
        der
    }

    /// The PEM `PUBLIC KEY`.
    #[must_use]
    pub fn to_spki_pem(&self) -> String {
        tessera_pki::to_pem("PUBLIC KEY", &self.to_spki_der())
    }

    /// Read a JWK (`{"kty":"EC","crv":"P-256","x":..,"y":..}`, RFC 7518 §6.2.1). `alg`, when
    /// present, must be the curve's algorithm; `use`, when present, must be `sig`; `kid` and
    /// other members are ignored.
    ///
    /// # Errors
    /// [`TokenError::Key`] naming the member at fault: not an object, `kty` not `EC`, `crv` not
    /// `P-256`/`P-384`, `x`/`y` not unpadded base64url of the coordinate length, an `alg` or
    /// `use` that contradicts the key, a private key (`d` present: give only the public part),
    /// or a point not on the curve.
    pub fn from_jwk(jwk: &Value) -> Result<Self, TokenError> {
        let jwk = jwk
            .as_object()
            .ok_or_else(|| key_error("the JWK is not a JSON object"))?;
        let text = |name: &'static str| jwk.get(name).and_then(Value::as_str);
        if text("kty") != Some("EC") {
            return Err(key_error("JWK kty is not \"EC\""));
        }
        let alg = match text("crv") {
            Some("P-256") => Alg::Es256,
            Some("P-384") => Alg::Es384,
            _ => return Err(key_error("JWK crv is not \"P-256\" or \"P-384\"")),
        };
        if jwk.contains_key("d") {
            return Err(key_error(
                "the JWK holds a private key (d): give the public key only",
            ));
        }
        if jwk
            .get("alg")
            .is_some_and(|a| a.as_str() != Some(alg.name()))
        {
            return Err(key_error("JWK alg does not match its crv"));
        }
        if jwk.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
            return Err(key_error("JWK use is not \"sig\""));
        }
        let mut point = Vec::with_capacity(1 + 2 * alg.coordinate_len());
        point.push(0x04);
        for name in ["x", "y"] {
            let coordinate = text(name)
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .filter(|c| c.len() == alg.coordinate_len())
                .ok_or_else(|| {
                    key_error("JWK x or y is not unpadded base64url of the coordinate length")
                })?;
            point.extend_from_slice(&coordinate);
        }
        Self::from_point(alg, &point)
    }

    /// The coordinates `(x, y)`.
    fn coordinates(&self) -> (&[u8], &[u8]) {
        let body = self.point.get(1..).unwrap_or_default();
        body.split_at(body.len() / 2)
    }

    /// The public JWK: `kty`, `crv`, `x`, `y`, plus `alg` (the pinned algorithm; Trustee's KBS
    /// needs it to pick a verifier) and `kid` (the thumbprint).
    #[must_use]
    pub fn to_jwk(&self) -> Value {
        let (x, y) = self.coordinates();
        let mut jwk = Map::new();
        jwk.insert("kty".into(), "EC".into());
        jwk.insert("crv".into(), self.alg.curve().into());
        jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
        jwk.insert("y".into(), URL_SAFE_NO_PAD.encode(y).into());
        jwk.insert("alg".into(), self.alg.name().into());
        jwk.insert("kid".into(), self.thumbprint().into());
        Value::Object(jwk)
    }

    /// SHA-256 of the RFC 7638 canonical JWK: the required members `crv`, `kty`, `x`, `y` in
    /// lexicographic order, no whitespace.
    pub(crate) fn thumbprint_bytes(&self) -> [u8; 32] {
        let (x, y) = self.coordinates();
        let canonical = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            self.alg.curve(),
            URL_SAFE_NO_PAD.encode(x),
            URL_SAFE_NO_PAD.encode(y)
        );
        tessera_pki::sha256(canonical.as_bytes())
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, unpadded base64url): the `kid` of issued tokens.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.thumbprint_bytes())
    }

    /// Check a fixed-width `r || s` signature (RFC 7518 §3.4) over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), TokenError> {
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| TokenError::Signature)
    }
}

/// A private key that signs EAR tokens with its one algorithm.
///
/// The private scalar lives only inside aws-lc (an `EVP_PKEY`), which clears it when the key is
/// dropped; no copy is kept on the Rust side. PKCS#8 exports come back in [`Zeroizing`] buffers.
/// There is no `Clone` and `Debug` shows only the algorithm and the public key ID.
pub struct SigningKey {
    alg: Alg,
    pair: EcdsaKeyPair,
    public: VerifyingKey,
    /// The base64url JWT protected header of this key, made at the first token: it is the same
    /// for every token (`alg`, `typ`, `kid`, `jwk`).
    jwt_header: std::sync::OnceLock<String>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.public.thumbprint())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_pair(alg: Alg, pair: EcdsaKeyPair) -> Result<Self, TokenError> {
        let public = VerifyingKey::from_point(alg, pair.public_key().as_ref())?;
        Ok(Self {
            alg,
            pair,
            public,
            jwt_header: std::sync::OnceLock::new(),
        })
    }

    /// A new random key for `alg`.
    ///
    /// # Errors
    /// [`TokenError::Signing`] if the crypto library fails (no entropy).
    pub fn generate(alg: Alg) -> Result<Self, TokenError> {
        let pair = EcdsaKeyPair::generate(alg.signing()).map_err(|_| TokenError::Signing {
            what: "generating a key",
        })?;
        Self::from_pair(alg, pair)
    }

    /// Read a PKCS#8 (v1 or v2) DER private key on P-256 (ES256) or P-384 (ES384).
    ///
    /// # Errors
    /// [`TokenError::Key`] when the DER is not a PKCS#8 EC private key on one of the two curves,
    /// or its public key does not match the private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, TokenError> {
        for alg in Alg::ALL {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(alg.signing(), der) {
                return Self::from_pair(alg, pair);
            }
        }
        Err(key_error(
            "not a PKCS#8 private key on P-256 or P-384 (or its public key does not match)",
        ))
    }

    /// Read a PEM `PRIVATE KEY` (PKCS#8). The decoded text and DER are zeroized after use.
    ///
    /// # Errors
    /// [`TokenError::Key`] when there is no `PRIVATE KEY` block (an OpenSSL `EC PRIVATE KEY` is
    /// not PKCS#8: convert it with `openssl pkcs8 -topk8 -nocrypt`) or it is not a P-256/P-384
    /// key; [`TokenError::TooLarge`] above 16 KiB.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, TokenError> {
        let der = pem_block(pem, "PRIVATE KEY")?;
        Self::from_pkcs8_der(&der)
    }

    /// The key as a PEM `PRIVATE KEY` (PKCS#8 v1), in a buffer zeroized on drop.
    ///
    /// # Errors
    /// [`TokenError::Signing`] if the crypto library fails to serialize the key.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, TokenError> {
        let doc = self.pair.to_pkcs8v1().map_err(|_| TokenError::Signing {
            what: "serializing the key",
        })?;
        pem_encode_secret("PRIVATE KEY", doc.as_ref())
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public key, for relying parties (as JWK, SPKI or PEM).
    #[must_use]
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The JWT protected header of this key's tokens, base64url-encoded, made once by `make`.
    pub(crate) fn jwt_header(&self, make: impl FnOnce(&Self) -> String) -> &str {
        self.jwt_header.get_or_init(|| make(self))
    }

    /// Sign `message`: a fixed-width `r || s` signature (RFC 7518 §3.4, RFC 9053 §2.1).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self
            .pair
            .sign(&rng, message)
            .map_err(|_| TokenError::Signing { what: "signing" })?;
        Ok(sig.as_ref().to_vec())
    }
}

/// The DER of the first `label` block of `pem`, in a buffer zeroized on drop (so is the base64
/// text on the way: a private key's PEM is as secret as the key).
fn pem_block(pem: &str, label: &str) -> Result<Zeroizing<Vec<u8>>, TokenError> {
    if pem.len() > MAX_PEM_LEN {
        return Err(TokenError::TooLarge {
            what: "PEM key",
            len: pem.len(),
            max: MAX_PEM_LEN,
        });
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let (_, after_begin) = pem
        .split_once(begin.as_str())
        .ok_or_else(|| key_error("no PEM block with the expected label"))?;
    let (body, _) = after_begin
        .split_once(end.as_str())
        .ok_or_else(|| key_error("PEM block without its END line"))?;
    // Capacity covers every character, so pushing never reallocates (and leaves no copy behind).
    let mut b64 = Zeroizing::new(String::with_capacity(body.len()));
    b64.extend(body.chars().filter(|c| !c.is_ascii_whitespace()));
    let mut der = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(b64.len())]);
    let len = STANDARD
        .decode_slice(b64.as_bytes(), der.as_mut_slice())
        .map_err(|_| key_error("PEM body is not base64"))?;
    der.truncate(len);
    Ok(der)
}

/// PEM armour for secret DER, built in zeroizing buffers sized up front (no reallocation).
fn pem_encode_secret(label: &str, der: &[u8]) -> Result<Zeroizing<String>, TokenError> {
    let encoding = || TokenError::Signing {
        what: "PEM-encoding the key",
    };
    let b64_len = base64::encoded_len(der.len(), true).ok_or_else(encoding)?;
    let mut b64 = Zeroizing::new(vec![0u8; b64_len]);
    let written = STANDARD
        .encode_slice(der, b64.as_mut_slice())
        .map_err(|_| encoding())?;
    b64.truncate(written);
    let lines = b64.len().div_ceil(64);
    // "-----BEGIN " label "-----\n", the lines with their newlines, "-----END " label "-----\n".
    let capacity = (11 + label.len() + 6) + b64.len() + lines + (9 + label.len() + 6);
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.chunks(64) {
        out.push_str(core::str::from_utf8(line).map_err(|_| encoding())?);
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;

    use super::*;

    #[test]
    fn spki_prefixes_match_aws_lc() {
        for alg in Alg::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let der = key.pair.public_key().as_der().unwrap();
            assert_eq!(key.verifying_key().to_spki_der(), der.as_ref(), "{alg}");
            assert_eq!(
                VerifyingKey::from_spki_der(der.as_ref()).unwrap(),
                *key.verifying_key()
            );
        }
    }

    #[test]
    fn pem_round_trip_and_capacity() {
        let key = SigningKey::generate(Alg::Es384).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        // The buffer was sized exactly: no reallocation left a copy behind.
        assert_eq!(pem.capacity(), pem.len());
        let again = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(again.verifying_key(), key.verifying_key());
        assert_eq!(again.alg(), Alg::Es384);
    }

    #[test]
    fn pem_errors() {
        assert!(matches!(
            SigningKey::from_pkcs8_pem("nothing"),
            Err(TokenError::Key { .. })
        ));
        assert!(matches!(
            SigningKey::from_pkcs8_pem("-----BEGIN PRIVATE KEY-----\nAAAA"),
            Err(TokenError::Key { .. })
        ));
        assert!(matches!(
            SigningKey::from_pkcs8_pem(
                "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----"
            ),
            Err(TokenError::Key { .. })
        ));
        let big = "A".repeat(MAX_PEM_LEN + 1);
        assert!(matches!(
            VerifyingKey::from_spki_pem(&big),
            Err(TokenError::TooLarge { .. })
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = SigningKey::generate(Alg::Es256).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("ES256") || shown.contains("Es256"));
        let pem = key.to_pkcs8_pem().unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!shown.contains(&body[..16]));
    }

    #[test]
    fn point_must_be_on_the_curve() {
        let key = SigningKey::generate(Alg::Es256).unwrap();
        let mut der = key.verifying_key().to_spki_der();
        let last = der.len() - 1;
        der[last] ^= 1;
        assert!(matches!(
            VerifyingKey::from_spki_der(&der),
            Err(TokenError::Key { .. })
        ));
        der.truncate(last);
        assert!(VerifyingKey::from_spki_der(&der).is_err());
    }
}
