//! Encrypts a released secret to the guest's TEE key as a flattened JWE (PROTOCOL.md).
//!
//! Output: `{"protected","encrypted_key","iv","ciphertext","tag"}`, all unpadded base64url, no
//! `aad` member. Content encryption is A256GCM with a random 32-byte content key (CEK) and a
//! random 12-byte IV; the AAD is the ASCII of the `protected` string (RFC 7516 section 5.1).
//!
//! Key management:
//! - EC (P-256, P-521): `ECDH-ES+A256KW` (RFC 7518 section 4.6): an ephemeral key on the same
//!   curve (`epk`), Z = ECDH x-coordinate, KEK = Concat KDF (SHA-256, AlgorithmID
//!   `"ECDH-ES+A256KW"`, empty PartyUInfo/PartyVInfo, SuppPubInfo = 256), CEK wrapped with AES-KW.
//! - RSA: `RSA-OAEP-256` (SHA-256, MGF1-SHA-256, empty label).
//!
//! Guests rebuild the AAD by re-serializing the header they parsed, so the header is written as
//! compact JSON with `alg`, `enc`, then the other members sorted, nested members sorted:
//! `{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":"..","y":".."}}`
//! or `{"alg":"RSA-OAEP-256","enc":"A256GCM"}`. All crypto is aws-lc-rs; the JOSE framing is
//! ours because no maintained crate offers ECDH-ES+A256KW on P-521 over aws-lc-rs.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyUncompressedBin};
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::jwk::{ALG_ECDH_ES_A256KW, ALG_RSA_OAEP_256, TeePublicKey, split_point};

/// The JWE content-encryption algorithm name.
pub const ENC_A256GCM: &str = "A256GCM";
/// Largest plaintext [`encrypt`] accepts (1 MiB; secrets are far smaller).
pub const MAX_PLAINTEXT_LEN: usize = 1 << 20;

/// A flattened JWE JSON serialization, every member unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlattenedJwe {
    /// The protected header.
    pub protected: String,
    /// The wrapped or encrypted content key.
    pub encrypted_key: String,
    /// The 12-byte GCM IV.
    pub iv: String,
    /// The A256GCM ciphertext.
    pub ciphertext: String,
    /// The 16-byte GCM tag.
    pub tag: String,
}

/// Encryption failed. None of these is caused by the guest once its key parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JweError {
    /// The plaintext is longer than [`MAX_PLAINTEXT_LEN`].
    #[error("jwe: plaintext is {len} bytes, more than {max}")]
    PlaintextTooLarge {
        /// Length given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The crypto library failed at the named step.
    #[error("jwe: {step} failed")]
    Crypto {
        /// `random`, `ecdh`, `key wrap`, `rsa-oaep` or `aes-gcm`.
        step: &'static str,
    },
}

fn crypto(step: &'static str) -> impl Fn(aws_lc_rs::error::Unspecified) -> JweError {
    move |_| JweError::Crypto { step }
}

/// Encrypts `plaintext` to `key` as a flattened JWE.
///
/// # Errors
/// [`JweError::PlaintextTooLarge`], or [`JweError::Crypto`] naming the step the crypto library
/// refused.
pub fn encrypt(key: &TeePublicKey, plaintext: &[u8]) -> Result<FlattenedJwe, JweError> {
    encrypt_with_members(key, &serde_json::Map::new(), plaintext)
}

/// The protected header: `alg`, `enc`, then every other member (`epk` and `extra`) in sorted
/// order, each value in canonical (sorted, compact) JSON — the order CoCo guests rebuild.
fn protected_header(
    alg: &str,
    epk: Option<String>,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, JweError> {
    let mut members: Vec<(String, String)> = Vec::with_capacity(extra.len() + 1);
    if let Some(epk) = epk {
        members.push(("epk".to_owned(), epk));
    }
    for (name, value) in extra {
        if matches!(name.as_str(), "alg" | "enc" | "epk") {
            return Err(JweError::Crypto {
                step: "header member names a reserved parameter",
            });
        }
        let text = crate::jcs::to_string(value).map_err(|_| JweError::Crypto {
            step: "header canonicalization",
        })?;
        members.push((name.clone(), text));
    }
    members.sort();
    let mut header = format!(r#"{{"alg":"{alg}","enc":"{ENC_A256GCM}""#);
    for (name, text) in members {
        let name = serde_json::to_string(&name).map_err(|_| JweError::Crypto {
            step: "header canonicalization",
        })?;
        header.push(',');
        header.push_str(&name);
        header.push(':');
        header.push_str(&text);
    }
    header.push('}');
    Ok(header)
}

/// [`encrypt`] with more protected header members (authenticated by the AAD), e.g. what a
/// secret sealed for Git is bound to. `extra` must not name `alg`, `enc` or `epk`.
///
/// # Errors
/// As [`encrypt`]; a reserved member name.
pub fn encrypt_with_members(
    key: &TeePublicKey,
    extra: &serde_json::Map<String, serde_json::Value>,
    plaintext: &[u8],
) -> Result<FlattenedJwe, JweError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(JweError::PlaintextTooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT_LEN,
        });
    }
    let rng = SystemRandom::new();
    let mut cek = Zeroizing::new([0u8; 32]);
    rng.fill(cek.as_mut()).map_err(crypto("random"))?;
    let mut iv = [0u8; 12];
    rng.fill(&mut iv).map_err(crypto("random"))?;

    let (protected_json, encrypted_key) = if let Some((curve, point)) = key.ec_point() {
        let eph = EphemeralPrivateKey::generate(curve.agreement(), &rng).map_err(crypto("ecdh"))?;
        let eph_pub = eph.compute_public_key().map_err(crypto("ecdh"))?;
        let eph_bin: EcPublicKeyUncompressedBin<'static> =
            eph_pub.as_be_bytes().map_err(crypto("ecdh"))?;
        let (ex, ey) = split_point(eph_bin.as_ref(), curve);
        let epk = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            curve.name(),
            URL_SAFE_NO_PAD.encode(ex),
            URL_SAFE_NO_PAD.encode(ey),
        );
        let header = protected_header(ALG_ECDH_ES_A256KW, Some(epk), extra)?;
        let kek = agreement::agree_ephemeral(
            eph,
            UnparsedPublicKey::new(curve.agreement(), point),
            JweError::Crypto { step: "ecdh" },
            |z| Ok(concat_kdf_a256kw(z)),
        )?;
        let wrapper = AesKek::new(&AES_256, kek.as_ref()).map_err(crypto("key wrap"))?;
        let mut wrapped = [0u8; 40];
        let out = wrapper
            .wrap(cek.as_ref(), &mut wrapped)
            .map_err(crypto("key wrap"))?;
        (header, out.to_vec())
    } else if let Some(rsa) = key.rsa_key() {
        let header = protected_header(ALG_RSA_OAEP_256, None, extra)?;
        let oaep = OaepPublicEncryptingKey::new(rsa.clone()).map_err(crypto("rsa-oaep"))?;
        let mut out = vec![0u8; oaep.ciphertext_size()];
        let ct = oaep
            .encrypt(&OAEP_SHA256_MGF1SHA256, cek.as_ref(), &mut out, None)
            .map_err(crypto("rsa-oaep"))?;
        (header, ct.to_vec())
    } else {
        return Err(JweError::Crypto { step: "key type" });
    };

    let protected = URL_SAFE_NO_PAD.encode(protected_json.as_bytes());
    let gcm =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek.as_ref()).map_err(crypto("aes-gcm"))?);
    // Holds the plaintext until it is encrypted in place; zeroized on every path.
    let mut buf = Zeroizing::new(plaintext.to_vec());
    let tag = gcm
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            buf.as_mut_slice(),
        )
        .map_err(crypto("aes-gcm"))?;
    Ok(FlattenedJwe {
        encrypted_key: URL_SAFE_NO_PAD.encode(&encrypted_key),
        iv: URL_SAFE_NO_PAD.encode(iv),
        ciphertext: URL_SAFE_NO_PAD.encode(buf.as_slice()),
        tag: URL_SAFE_NO_PAD.encode(tag.as_ref()),
        protected,
    })
}

/// Concat KDF (NIST SP 800-56A, RFC 7518 section 4.6.2) for a 256-bit `ECDH-ES+A256KW` key:
/// one SHA-256 round over counter 1, Z, AlgorithmID, empty PartyUInfo and PartyVInfo, and
/// SuppPubInfo = 256.
pub(crate) fn concat_kdf_a256kw(z: &[u8]) -> Zeroizing<[u8; 32]> {
    let alg = ALG_ECDH_ES_A256KW.as_bytes();
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(&1u32.to_be_bytes());
    ctx.update(z);
    // The algorithm name is a 14-byte constant; its length always fits in u32.
    ctx.update(&u32::try_from(alg.len()).unwrap_or(0).to_be_bytes());
    ctx.update(alg);
    ctx.update(&0u32.to_be_bytes()); // PartyUInfo: empty
    ctx.update(&0u32.to_be_bytes()); // PartyVInfo: empty
    ctx.update(&256u32.to_be_bytes()); // SuppPubInfo: key data length in bits
    let d = ctx.finish();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::Curve;
    use crate::jwk::tests::{ec_jwk, rsa_jwk};
    use aws_lc_rs::agreement::PrivateKey;
    use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey};
    use serde_json::Value;

    /// An independent decryptor written from RFC 7516/7518: it shares no code with `encrypt`
    /// (its own Concat KDF, its own header parsing), so a mistake on one side does not hide.
    enum Recipient {
        Ec(PrivateKey),
        Rsa(PrivateDecryptingKey),
    }

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    fn decrypt(rcpt: &Recipient, jwe: &Value) -> Result<Vec<u8>, &'static str> {
        let obj = jwe.as_object().ok_or("not an object")?;
        let mut names: Vec<&str> = obj.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names != ["ciphertext", "encrypted_key", "iv", "protected", "tag"] {
            return Err("members");
        }
        let get = |k: &str| obj[k].as_str().ok_or("member not a string");
        let protected = get("protected")?;
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected).map_err(|_| "b64")?)
                .map_err(|_| "header json")?;
        if header["enc"] != "A256GCM" {
            return Err("enc");
        }
        let ek = URL_SAFE_NO_PAD
            .decode(get("encrypted_key")?)
            .map_err(|_| "b64")?;
        let cek: Vec<u8> = match (rcpt, header["alg"].as_str()) {
            (Recipient::Ec(sk), Some("ECDH-ES+A256KW")) => {
                let epk = &header["epk"];
                let x = b64(epk["x"].as_str().ok_or("epk")?);
                let y = b64(epk["y"].as_str().ok_or("epk")?);
                let mut pt = vec![4u8];
                pt.extend(x);
                pt.extend(y);
                let z = agreement::agree(
                    sk,
                    UnparsedPublicKey::new(sk.algorithm(), &pt),
                    "ecdh",
                    |z| Ok(z.to_vec()),
                )?;
                // Concat KDF, written out long-hand.
                let mut info = Vec::new();
                info.extend_from_slice(&[0, 0, 0, 1]);
                info.extend_from_slice(&z);
                info.extend_from_slice(&[0, 0, 0, 14]);
                info.extend_from_slice(b"ECDH-ES+A256KW");
                info.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
                let kek = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &info);
                let unwrapper = AesKek::new(&AES_256, kek.as_ref()).unwrap();
                let mut out = [0u8; 32];
                let cek = unwrapper.unwrap(&ek, &mut out).map_err(|_| "unwrap")?;
                cek.to_vec()
            }
            (Recipient::Rsa(sk), Some("RSA-OAEP-256")) => {
                let k = OaepPrivateDecryptingKey::new(sk.clone()).unwrap();
                let mut out = vec![0u8; k.min_output_size()];
                let cek = k
                    .decrypt(&OAEP_SHA256_MGF1SHA256, &ek, &mut out, None)
                    .map_err(|_| "oaep")?;
                cek.to_vec()
            }
            _ => return Err("alg"),
        };
        if cek.len() != 32 {
            return Err("cek length");
        }
        let iv: [u8; 12] = b64(get("iv")?).try_into().map_err(|_| "iv length")?;
        let mut ct = b64(get("ciphertext")?);
        ct.extend(b64(get("tag")?));
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).unwrap());
        let pt = key
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(protected.as_bytes()),
                &mut ct,
            )
            .map_err(|_| "gcm")?;
        Ok(pt.to_vec())
    }

    fn recipients() -> Vec<(Recipient, Value)> {
        let (p256, j256) = ec_jwk(Curve::P256);
        let (p521, j521) = ec_jwk(Curve::P521);
        let (rsa, jrsa) = rsa_jwk(aws_lc_rs::rsa::KeySize::Rsa2048);
        vec![
            (Recipient::Ec(p256), j256),
            (Recipient::Ec(p521), j521),
            (Recipient::Rsa(rsa), jrsa),
        ]
    }

    #[test]
    fn independent_decryptor_opens_p256_p521_rsa() {
        for (rcpt, jwk) in recipients() {
            let key = TeePublicKey::from_json(&jwk).unwrap();
            for msg in [&b""[..], b"s3cret", &[7u8; 5000]] {
                let jwe = serde_json::to_value(encrypt(&key, msg).unwrap()).unwrap();
                assert_eq!(decrypt(&rcpt, &jwe).unwrap(), msg);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        #[test]
        fn any_plaintext_round_trips(msg in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000), p521 in proptest::prelude::any::<bool>()) {
            let (sk, jwk) = ec_jwk(if p521 { Curve::P521 } else { Curve::P256 });
            let jwe = serde_json::to_value(encrypt(&TeePublicKey::from_json(&jwk).unwrap(), &msg).unwrap()).unwrap();
            proptest::prop_assert_eq!(decrypt(&Recipient::Ec(sk), &jwe).unwrap(), msg);
        }
    }

    /// Extra header members may not name `alg`, `enc` or `epk` (they would override what the
    /// JWE really is); other members are carried, sorted, after them.
    #[test]
    fn extra_members_cannot_override_the_algorithm() {
        let (rcpt, jwk) = ec_jwk(Curve::P256);
        let key = TeePublicKey::from_json(&jwk).unwrap();
        for name in ["alg", "enc", "epk"] {
            let mut extra = serde_json::Map::new();
            extra.insert(name.into(), Value::String("dir".into()));
            assert!(
                matches!(
                    encrypt_with_members(&key, &extra, b"x"),
                    Err(JweError::Crypto {
                        step: "header member names a reserved parameter"
                    })
                ),
                "{name}"
            );
        }
        let mut extra = serde_json::Map::new();
        extra.insert("kid".into(), Value::String("k1".into()));
        let jwe = encrypt_with_members(&key, &extra, b"x").unwrap();
        let jwe = serde_json::to_value(jwe).unwrap();
        assert_eq!(decrypt(&Recipient::Ec(rcpt), &jwe).unwrap(), b"x");
    }

    #[test]
    fn a_different_key_cannot_open() {
        let (_, jwk) = ec_jwk(Curve::P256);
        let (other, _) = ec_jwk(Curve::P256);
        let jwe =
            serde_json::to_value(encrypt(&TeePublicKey::from_json(&jwk).unwrap(), b"x").unwrap())
                .unwrap();
        assert_eq!(decrypt(&Recipient::Ec(other), &jwe), Err("unwrap"));
    }

    #[test]
    fn header_bytes_are_exactly_as_specified() {
        for (_, jwk) in recipients() {
            let key = TeePublicKey::from_json(&jwk).unwrap();
            let jwe = encrypt(&key, b"x").unwrap();
            let header = String::from_utf8(b64(&jwe.protected)).unwrap();
            let parsed: Value = serde_json::from_str(&header).unwrap();
            match jwk["kty"].as_str().unwrap() {
                "EC" => {
                    let crv = jwk["crv"].as_str().unwrap();
                    let epk = &parsed["epk"];
                    let expected = format!(
                        r#"{{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}}}"#,
                        epk["x"].as_str().unwrap(),
                        epk["y"].as_str().unwrap()
                    );
                    assert_eq!(header, expected);
                    let len = if crv == "P-256" { 32 } else { 66 };
                    assert_eq!(b64(epk["x"].as_str().unwrap()).len(), len);
                    assert_eq!(b64(epk["y"].as_str().unwrap()).len(), len);
                    assert_eq!(b64(&jwe.encrypted_key).len(), 40);
                }
                _ => {
                    assert_eq!(header, r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#);
                    assert_eq!(b64(&jwe.encrypted_key).len(), 256);
                }
            }
            // What a guest does: re-serialize the parsed header (serde_json sorts members).
            assert_eq!(
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&parsed).unwrap()),
                jwe.protected
            );
            assert_eq!(b64(&jwe.iv).len(), 12);
            assert_eq!(b64(&jwe.tag).len(), 16);
            // Wire form: exactly the five members, in this order, no `aad`.
            let wire = serde_json::to_string(&jwe).unwrap();
            assert!(wire.starts_with(r#"{"protected":""#));
            let order: Vec<usize> = [
                "\"protected\"",
                "\"encrypted_key\"",
                "\"iv\"",
                "\"ciphertext\"",
                "\"tag\"",
            ]
            .iter()
            .map(|m| wire.find(m).unwrap())
            .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]));
            assert!(!wire.contains("\"aad\""));
        }
    }

    #[test]
    fn fresh_cek_iv_and_epk_each_time() {
        let (_, jwk) = ec_jwk(Curve::P256);
        let key = TeePublicKey::from_json(&jwk).unwrap();
        let a = encrypt(&key, b"same").unwrap();
        let b = encrypt(&key, b"same").unwrap();
        assert_ne!(a.protected, b.protected);
        assert_ne!(a.iv, b.iv);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn tampering_any_member_fails_to_open() {
        for (rcpt, jwk) in recipients() {
            let key = TeePublicKey::from_json(&jwk).unwrap();
            let jwe = serde_json::to_value(encrypt(&key, b"tamper me please").unwrap()).unwrap();
            for member in ["protected", "encrypted_key", "iv", "ciphertext", "tag"] {
                let mut bytes = b64(jwe[member].as_str().unwrap());
                let i = bytes.len() / 2;
                if member == "protected" {
                    // Change the header but keep it valid JSON: swap "A256GCM" for "A256GCm"
                    // would fail the enc check; flip the case of a base64url letter of epk
                    // instead, or for RSA add a member.
                    let mut h: Value = serde_json::from_slice(&bytes).unwrap();
                    h.as_object_mut()
                        .unwrap()
                        .insert("zip".into(), Value::from("DEF"));
                    bytes = serde_json::to_vec(&h).unwrap();
                } else {
                    bytes[i] ^= 0x01;
                }
                let mut t = jwe.clone();
                t[member] = Value::from(URL_SAFE_NO_PAD.encode(&bytes));
                assert!(decrypt(&rcpt, &t).is_err(), "tampered {member} opened");
            }
        }
    }

    #[test]
    fn concat_kdf_byte_layout() {
        // The Concat KDF input for our parameters, written byte by byte.
        let z = [0x42u8; 32];
        let mut info = vec![0, 0, 0, 1];
        info.extend_from_slice(&z);
        info.extend_from_slice(&[0, 0, 0, 14]);
        info.extend_from_slice(b"ECDH-ES+A256KW");
        info.extend_from_slice(&[0; 8]);
        info.extend_from_slice(&[0, 0, 1, 0]);
        let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &info);
        assert_eq!(concat_kdf_a256kw(&z).as_ref(), expected.as_ref());
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let (_, jwk) = ec_jwk(Curve::P256);
        let key = TeePublicKey::from_json(&jwk).unwrap();
        assert!(matches!(
            encrypt(&key, &vec![0u8; MAX_PLAINTEXT_LEN + 1]),
            Err(JweError::PlaintextTooLarge { .. })
        ));
    }
}
