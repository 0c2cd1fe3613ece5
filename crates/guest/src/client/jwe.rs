//! Opens the resource answer: a flattened JWE (RFC 7516) encrypted to the TEE key.
//!
//! Accepted exactly as PROTOCOL.md gives it: members `protected`, `encrypted_key`, `iv`,
//! `ciphertext`, `tag` (base64url without padding, nothing else — no `aad`, no unprotected
//! header); protected header members `alg`, `enc` and, for EC keys, `epk` (nothing else, so no
//! `zip`, `crit`, `apu` or `apv` can change the meaning); `enc` A256GCM; `alg` ECDH-ES+A256KW for
//! EC keys (Concat KDF SHA-256, AlgorithmID "ECDH-ES+A256KW", empty PartyU/PartyV, 256 bits;
//! AES-KW unwrap) or RSA-OAEP-256 for RSA keys. The AES-GCM AAD is the `protected` string as
//! received (RFC 7516 §5.2 step 14), not a re-serialization of the parsed header.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest;
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::error::ClientError;
use super::key::{KeySecret, TeeKey};

/// The largest secret a broker releases (Tessera's broker seals at most 1 MiB).
const MAX_SECRET: usize = 1 << 20;
/// The largest resource answer (the JWE JSON) the client reads: room for the JWE of the
/// largest secret (its ciphertext in base64url, a third larger) and its other members.
pub const MAX_RESOURCE_RESPONSE: usize = MAX_SECRET.div_ceil(3) * 4 + 64 * 1024;
/// The largest `protected` member accepted (base64url characters).
const MAX_PROTECTED_LEN: usize = 4096;
const CEK_LEN: usize = 32;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// AES-KW output for a 32-byte key: the key plus one 8-byte block.
const WRAPPED_CEK_LEN: usize = CEK_LEN + 8;
const ECDH_ES_A256KW: &str = "ECDH-ES+A256KW";

fn err(check: &'static str) -> ClientError {
    ClientError::Jwe { check }
}

/// The object's members must be exactly `allowed` ∖ `optional`-absent; returns nothing else.
fn only_members(
    obj: &Map<String, Value>,
    allowed: &[&str],
    check: &'static str,
) -> Result<(), ClientError> {
    if obj.keys().all(|k| allowed.contains(&k.as_str())) {
        Ok(())
    } else {
        Err(err(check))
    }
}

fn string_member<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    check: &'static str,
) -> Result<&'a str, ClientError> {
    obj.get(name).and_then(Value::as_str).ok_or(err(check))
}

fn b64(s: &str, check: &'static str) -> Result<Vec<u8>, ClientError> {
    URL_SAFE_NO_PAD.decode(s).map_err(|_| err(check))
}

/// Decrypts a flattened JWE answer with the TEE key.
pub(crate) fn decrypt(key: &TeeKey, body: &[u8]) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    if body.len() > MAX_RESOURCE_RESPONSE {
        return Err(err("answer larger than the resource cap"));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| err("answer is not JSON"))?;
    let jwe = value
        .as_object()
        .ok_or(err("answer is not a JSON object"))?;
    only_members(
        jwe,
        &["protected", "encrypted_key", "iv", "ciphertext", "tag"],
        "unexpected member (only protected, encrypted_key, iv, ciphertext, tag)",
    )?;
    let protected = string_member(jwe, "protected", "protected missing or not a string")?;
    let encrypted_key = b64(
        string_member(
            jwe,
            "encrypted_key",
            "encrypted_key missing or not a string",
        )?,
        "encrypted_key is not base64url",
    )?;
    let iv = b64(
        string_member(jwe, "iv", "iv missing or not a string")?,
        "iv is not base64url",
    )?;
    let ciphertext = string_member(jwe, "ciphertext", "ciphertext missing or not a string")?;
    let tag = b64(
        string_member(jwe, "tag", "tag missing or not a string")?,
        "tag is not base64url",
    )?;

    if protected.len() > MAX_PROTECTED_LEN {
        return Err(err("protected header too long"));
    }
    let header_bytes = b64(protected, "protected is not base64url")?;
    let header: Value =
        serde_json::from_slice(&header_bytes).map_err(|_| err("protected header is not JSON"))?;
    let header = header
        .as_object()
        .ok_or(err("protected header is not a JSON object"))?;
    only_members(
        header,
        &["alg", "enc", "epk"],
        "protected header member other than alg, enc, epk",
    )?;
    if string_member(header, "enc", "enc missing")? != "A256GCM" {
        return Err(err("enc is not A256GCM"));
    }
    let alg = string_member(header, "alg", "alg missing")?;
    if alg != key.alg().jwe_alg() {
        return Err(err("alg does not match the TEE key"));
    }

    let cek = match &key.secret {
        KeySecret::Ec { curve, .. } => {
            let epk = header
                .get("epk")
                .and_then(Value::as_object)
                .ok_or(err("epk missing or not an object"))?;
            only_members(
                epk,
                &["kty", "crv", "x", "y"],
                "epk member other than kty, crv, x, y",
            )?;
            if string_member(epk, "kty", "epk kty missing")? != "EC" {
                return Err(err("epk kty is not EC"));
            }
            if string_member(epk, "crv", "epk crv missing")? != curve.name() {
                return Err(err("epk crv differs from the TEE key's curve"));
            }
            let x = b64(
                string_member(epk, "x", "epk x missing")?,
                "epk x is not base64url",
            )?;
            let y = b64(
                string_member(epk, "y", "epk y missing")?,
                "epk y is not base64url",
            )?;
            let n = curve.coordinate_len();
            if x.len() != n || y.len() != n {
                return Err(err("epk coordinate length differs from the curve's"));
            }
            if encrypted_key.len() != WRAPPED_CEK_LEN {
                return Err(err("encrypted_key is not a wrapped 256-bit key"));
            }
            let mut point = Vec::with_capacity(1 + 2 * n);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let kek = key.agree(&point, |z| {
                Ok(concat_kdf_sha256(
                    z,
                    ECDH_ES_A256KW.as_bytes(),
                    b"",
                    b"",
                    256,
                ))
            })?;
            let unwrap_key = AesKek::new(&AES_256, &kek).map_err(|_| ClientError::DecryptFailed)?;
            let mut cek = Zeroizing::new([0u8; CEK_LEN]);
            let len = unwrap_key
                .unwrap(&encrypted_key, cek.as_mut_slice())
                .map_err(|_| ClientError::DecryptFailed)?
                .len();
            if len != CEK_LEN {
                return Err(ClientError::DecryptFailed);
            }
            cek
        }
        KeySecret::Rsa { .. } => {
            if header.contains_key("epk") {
                return Err(err("epk present with RSA-OAEP-256"));
            }
            let raw = key.oaep_decrypt(&encrypted_key)?;
            let mut cek = Zeroizing::new([0u8; CEK_LEN]);
            if raw.len() != CEK_LEN {
                return Err(ClientError::DecryptFailed);
            }
            cek.copy_from_slice(&raw);
            cek
        }
    };

    let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| err("iv is not 12 bytes"))?;
    if tag.len() != TAG_LEN {
        return Err(err("tag is not 16 bytes"));
    }
    let ct_len = base64::decoded_len_estimate(ciphertext.len());
    // Decrypt in place in a buffer allocated once (no reallocation leaves plaintext behind).
    let mut buf = Zeroizing::new(Vec::with_capacity(ct_len + TAG_LEN));
    URL_SAFE_NO_PAD
        .decode_vec(ciphertext, &mut buf)
        .map_err(|_| err("ciphertext is not base64url"))?;
    buf.extend_from_slice(&tag);
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, cek.as_slice()).map_err(|_| ClientError::DecryptFailed)?,
    );
    let plain_len = aead
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            &mut buf,
        )
        .map_err(|_| ClientError::DecryptFailed)?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
}

/// Whether a resource answer's `protected` header is byte for byte the compact serialization
/// CoCo guests rebuild their AAD from (PROTOCOL.md's interop trap): `alg`, then `enc`, then the
/// other members in sorted order, nested members sorted, no whitespace. This client does not
/// need it (its AAD is the string as received); end-to-end tests use it to check that a broker's
/// answers would also open in a CoCo guest.
///
/// # Errors
/// [`ClientError::Jwe`] when the body or the header is not the JSON shape expected.
pub fn protected_header_in_coco_order(body: &[u8]) -> Result<bool, ClientError> {
    if body.len() > MAX_RESOURCE_RESPONSE {
        return Err(err("answer larger than the resource cap"));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| err("answer is not JSON"))?;
    let jwe = value
        .as_object()
        .ok_or(err("answer is not a JSON object"))?;
    let protected = string_member(jwe, "protected", "protected missing or not a string")?;
    let header_bytes = b64(protected, "protected is not base64url")?;
    let header: Value =
        serde_json::from_slice(&header_bytes).map_err(|_| err("protected header is not JSON"))?;
    let header = header
        .as_object()
        .ok_or(err("protected header is not a JSON object"))?;
    let jcs = |v: &Value| {
        serde_json_canonicalizer::to_string(v)
            .map_err(|_| err("protected header not canonicalizable"))
    };
    let mut expected = String::from("{");
    let mut rest: Vec<(&String, &Value)> = header
        .iter()
        .filter(|(k, _)| k.as_str() != "alg" && k.as_str() != "enc")
        .collect();
    rest.sort_by(|a, b| a.0.cmp(b.0));
    let first = ["alg", "enc"]
        .into_iter()
        .filter_map(|k| header.get_key_value(k));
    for (i, (k, v)) in first.chain(rest).enumerate() {
        if i > 0 {
            expected.push(',');
        }
        expected.push_str(&jcs(&Value::String(k.clone()))?);
        expected.push(':');
        expected.push_str(&jcs(v)?);
    }
    expected.push('}');
    Ok(expected.as_bytes() == header_bytes.as_slice())
}

/// NIST SP 800-56A Concat KDF with SHA-256 as JWA (RFC 7518 §4.6.2) uses it: for each round
/// `SHA-256(counter_be32 || Z || len32(alg) || alg || len32(apu) || apu || len32(apv) || apv ||
/// keydatalen_bits_be32)`. `keydatalen_bits` must be a multiple of 8 and at most 512.
pub(crate) fn concat_kdf_sha256(
    z: &[u8],
    alg_id: &[u8],
    apu: &[u8],
    apv: &[u8],
    keydatalen_bits: u32,
) -> Zeroizing<Vec<u8>> {
    let want = usize::try_from(keydatalen_bits.min(512) / 8).unwrap_or(0);
    let mut out = Zeroizing::new(Vec::with_capacity(want + digest::SHA256_OUTPUT_LEN));
    let mut counter: u32 = 1;
    while out.len() < want {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&counter.to_be_bytes());
        ctx.update(z);
        for field in [alg_id, apu, apv] {
            ctx.update(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
            ctx.update(field);
        }
        ctx.update(&keydatalen_bits.to_be_bytes());
        out.extend_from_slice(ctx.finish().as_ref());
        counter = counter.saturating_add(1);
    }
    out.truncate(want);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    //! Vectors come from an independent test-only encryptor below (it builds the JWE from the
    //! JWK alone, the way a broker would) and from RFC 7518 Appendix C for the Concat KDF.
    use super::*;
    use crate::client::key::TeeKeyAlg;
    use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicKeyComponents};
    use proptest::prelude::*;

    fn enc(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }
    fn dec(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// Test-only encryptor: a flattened JWE of `plain` to the JWK `jwk`, header serialized as
    /// PROTOCOL.md's compact sorted form.
    pub(crate) fn encrypt_to_jwk(jwk: &Value, plain: &[u8]) -> Value {
        let rng = SystemRandom::new();
        let mut cek = [0u8; 32];
        rng.fill(&mut cek).unwrap();
        let (header, encrypted_key) = match jwk["kty"].as_str().unwrap() {
            "EC" => {
                let crv = jwk["crv"].as_str().unwrap();
                let alg = if crv == "P-256" {
                    &agreement::ECDH_P256
                } else {
                    &agreement::ECDH_P521
                };
                let eph = EphemeralPrivateKey::generate(alg, &rng).unwrap();
                let eph_pub = eph.compute_public_key().unwrap();
                let n = (eph_pub.as_ref().len() - 1) / 2;
                let (ex, ey) = eph_pub.as_ref()[1..].split_at(n);
                let mut peer = vec![4u8];
                peer.extend(dec(jwk["x"].as_str().unwrap()));
                peer.extend(dec(jwk["y"].as_str().unwrap()));
                let kek =
                    agreement::agree_ephemeral(eph, UnparsedPublicKey::new(alg, &peer), (), |z| {
                        // Independent Concat KDF: one SHA-256 round, fields spelled out.
                        let mut input = Vec::new();
                        input.extend(1u32.to_be_bytes());
                        input.extend(z);
                        input.extend(14u32.to_be_bytes());
                        input.extend(b"ECDH-ES+A256KW");
                        input.extend(0u32.to_be_bytes());
                        input.extend(0u32.to_be_bytes());
                        input.extend(256u32.to_be_bytes());
                        Ok(digest::digest(&digest::SHA256, &input).as_ref().to_vec())
                    })
                    .unwrap();
                let mut wrapped = [0u8; 40];
                AesKek::new(&AES_256, &kek)
                    .unwrap()
                    .wrap(&cek, &mut wrapped)
                    .unwrap();
                let header = format!(
                    r#"{{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}}}"#,
                    enc(ex),
                    enc(ey)
                );
                (header, wrapped.to_vec())
            }
            "RSA" => (RSA_HEADER.to_string(), rsa_oaep_encrypt(jwk, &cek)),
            other => panic!("kty {other}"),
        };
        seal(&enc(header.as_bytes()), &cek, &encrypted_key, plain)
    }

    const RSA_HEADER: &str = r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#;

    /// RSA-OAEP-256 encryption of `data` (any length the key takes) to the RSA JWK `jwk`, built
    /// from its `n` and `e` alone.
    fn rsa_oaep_encrypt(jwk: &Value, data: &[u8]) -> Vec<u8> {
        let n = dec(jwk["n"].as_str().unwrap());
        let e = dec(jwk["e"].as_str().unwrap());
        let public = PublicKeyComponents {
            n: &n[..],
            e: &e[..],
        }
        .try_into()
        .unwrap();
        let oaep = OaepPublicEncryptingKey::new(public).unwrap();
        let mut out = vec![0u8; oaep.ciphertext_size()];
        oaep.encrypt(&OAEP_SHA256_MGF1SHA256, data, &mut out, None)
            .unwrap()
            .to_vec()
    }

    /// A flattened JWE of `plain` sealed with A256GCM under `cek`, the `protected` string (as
    /// given) its AAD, `encrypted_key` as given.
    fn seal(protected: &str, cek: &[u8; 32], encrypted_key: &[u8], plain: &[u8]) -> Value {
        let mut iv = [0u8; 12];
        SystemRandom::new().fill(&mut iv).unwrap();
        let mut buf = plain.to_vec();
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek).unwrap());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(protected.as_bytes()),
                &mut buf,
            )
            .unwrap();
        serde_json::json!({
            "protected": protected,
            "encrypted_key": enc(encrypted_key),
            "iv": enc(&iv),
            "ciphertext": enc(&buf),
            "tag": enc(tag.as_ref()),
        })
    }

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    fn keys() -> Vec<TeeKey> {
        [TeeKeyAlg::P256, TeeKeyAlg::P521, TeeKeyAlg::Rsa]
            .into_iter()
            .map(|a| TeeKey::generate(a).unwrap())
            .collect()
    }

    #[test]
    fn decrypts_p256_p521_rsa() {
        for k in keys() {
            for plain in [
                &b""[..],
                b"s",
                b"a 32-byte secret value.........!",
                &[7u8; 5000],
            ] {
                let jwe = encrypt_to_jwk(k.jwk(), plain);
                let got = k.decrypt(&bytes(&jwe)).unwrap();
                assert_eq!(&got[..], plain, "{:?}", k.alg());
            }
        }
    }

    #[test]
    fn rsa3072_decrypts() {
        let k = TeeKey::generate(TeeKeyAlg::Rsa3072).unwrap();
        let jwe = encrypt_to_jwk(k.jwk(), b"three");
        assert_eq!(&k.decrypt(&bytes(&jwe)).unwrap()[..], b"three");
    }

    #[test]
    fn another_key_cannot_open_it() {
        for alg in [TeeKeyAlg::P256, TeeKeyAlg::P521, TeeKeyAlg::Rsa] {
            let a = TeeKey::generate(alg).unwrap();
            let b = TeeKey::generate(alg).unwrap();
            let jwe = encrypt_to_jwk(a.jwk(), b"secret");
            assert!(matches!(
                b.decrypt(&bytes(&jwe)),
                Err(ClientError::DecryptFailed)
            ));
        }
    }

    /// Flip one bit of each member's decoded bytes: every tamper is rejected.
    #[test]
    fn tampering_any_member_is_rejected() {
        for k in keys() {
            let jwe = encrypt_to_jwk(k.jwk(), b"the secret");
            for member in ["encrypted_key", "iv", "ciphertext", "tag"] {
                let mut t = jwe.clone();
                let mut raw = dec(t[member].as_str().unwrap());
                raw[0] ^= 1;
                t[member] = Value::String(enc(&raw));
                let e = k.decrypt(&bytes(&t)).unwrap_err();
                assert!(matches!(e, ClientError::DecryptFailed), "{member}: {e}");
            }
            // The header is authenticated: an equivalent header with other whitespace fails
            // (the AAD is the protected string as received).
            let mut t = jwe.clone();
            let header = String::from_utf8(dec(t["protected"].as_str().unwrap())).unwrap();
            t["protected"] = Value::String(enc(header.replacen(',', ", ", 1).as_bytes()));
            assert!(matches!(
                k.decrypt(&bytes(&t)),
                Err(ClientError::DecryptFailed)
            ));
        }
    }

    #[test]
    fn tampered_epk_is_rejected() {
        let k = TeeKey::generate(TeeKeyAlg::P256).unwrap();
        let jwe = encrypt_to_jwk(k.jwk(), b"x");
        let header: Value =
            serde_json::from_slice(&dec(jwe["protected"].as_str().unwrap())).unwrap();
        // Another valid point: the KEK differs, so the unwrap fails.
        let other = TeeKey::generate(TeeKeyAlg::P256).unwrap();
        let mut h = header.clone();
        h["epk"]["x"] = other.jwk()["x"].clone();
        h["epk"]["y"] = other.jwk()["y"].clone();
        let mut t = jwe.clone();
        t["protected"] = Value::String(enc(&serde_json::to_vec(&h).unwrap()));
        assert!(matches!(
            k.decrypt(&bytes(&t)),
            Err(ClientError::DecryptFailed)
        ));
        // A point not on the curve.
        let mut h = header.clone();
        h["epk"]["y"] = Value::String(enc(&[1u8; 32]));
        t["protected"] = Value::String(enc(&serde_json::to_vec(&h).unwrap()));
        assert!(matches!(
            k.decrypt(&bytes(&t)),
            Err(ClientError::DecryptFailed)
        ));
    }

    fn check(k: &TeeKey, jwe: &Value) -> &'static str {
        match k.decrypt(&bytes(jwe)) {
            Err(ClientError::Jwe { check }) => check,
            other => panic!("expected a Jwe error, got {other:?}"),
        }
    }

    fn with_header(jwe: &Value, f: impl FnOnce(&mut Value)) -> Value {
        let mut h: Value =
            serde_json::from_slice(&dec(jwe["protected"].as_str().unwrap())).unwrap();
        f(&mut h);
        let mut t = jwe.clone();
        t["protected"] = Value::String(enc(&serde_json::to_vec(&h).unwrap()));
        t
    }

    #[test]
    fn structural_checks_reject_by_name() {
        let k = TeeKey::generate(TeeKeyAlg::P256).unwrap();
        let jwe = encrypt_to_jwk(k.jwk(), b"x");
        let mut t = jwe.clone();
        t["aad"] = Value::String("AAAA".into());
        assert!(check(&k, &t).starts_with("unexpected member"));
        for m in ["protected", "encrypted_key", "iv", "ciphertext", "tag"] {
            let mut t = jwe.clone();
            t.as_object_mut().unwrap().remove(m);
            assert!(check(&k, &t).starts_with(m), "{m}");
            let mut t = jwe.clone();
            t[m] = Value::String(format!("{}=", t[m].as_str().unwrap()));
            assert!(check(&k, &t).contains("base64url"), "{m} padded");
        }
        let t = with_header(&jwe, |h| h["enc"] = "A128GCM".into());
        assert_eq!(check(&k, &t), "enc is not A256GCM");
        let t = with_header(&jwe, |h| h["alg"] = "RSA-OAEP-256".into());
        assert_eq!(check(&k, &t), "alg does not match the TEE key");
        let t = with_header(&jwe, |h| h["alg"] = "ECDH-ES".into());
        assert_eq!(check(&k, &t), "alg does not match the TEE key");
        let t = with_header(&jwe, |h| h["zip"] = "DEF".into());
        assert!(check(&k, &t).starts_with("protected header member"));
        let t = with_header(&jwe, |h| h["epk"]["crv"] = "P-521".into());
        assert_eq!(check(&k, &t), "epk crv differs from the TEE key's curve");
        let t = with_header(&jwe, |h| h["epk"]["kty"] = "OKP".into());
        assert_eq!(check(&k, &t), "epk kty is not EC");
        let t = with_header(&jwe, |h| h["epk"]["d"] = "AAAA".into());
        assert!(check(&k, &t).starts_with("epk member"));
        let t = with_header(&jwe, |h| h["epk"]["x"] = enc(&[1u8; 31]).into());
        assert_eq!(
            check(&k, &t),
            "epk coordinate length differs from the curve's"
        );
        let t = with_header(&jwe, |h| {
            h.as_object_mut().unwrap().remove("epk");
        });
        assert_eq!(check(&k, &t), "epk missing or not an object");
        let mut t = jwe.clone();
        t["iv"] = Value::String(enc(&[0u8; 16]));
        assert_eq!(check(&k, &t), "iv is not 12 bytes");
        let mut t = jwe.clone();
        t["tag"] = Value::String(enc(&[0u8; 15]));
        assert_eq!(check(&k, &t), "tag is not 16 bytes");
        let mut t = jwe.clone();
        t["encrypted_key"] = Value::String(enc(&[0u8; 48]));
        assert_eq!(check(&k, &t), "encrypted_key is not a wrapped 256-bit key");
        assert_eq!(
            check(&k, &Value::Array(vec![])),
            "answer is not a JSON object"
        );
        assert_eq!(check(&k, &Value::Null), "answer is not a JSON object");
        assert!(matches!(
            k.decrypt(b"{"),
            Err(ClientError::Jwe {
                check: "answer is not JSON"
            })
        ));
        let big = vec![b' '; MAX_RESOURCE_RESPONSE + 1];
        assert!(matches!(k.decrypt(&big), Err(ClientError::Jwe { .. })));

        let r = TeeKey::generate(TeeKeyAlg::Rsa).unwrap();
        let jwe = encrypt_to_jwk(r.jwk(), b"x");
        let t = with_header(&jwe, |h| h["epk"] = k.jwk().clone());
        assert_eq!(check(&r, &t), "epk present with RSA-OAEP-256");
        let mut t = jwe.clone();
        t["encrypted_key"] = Value::String(enc(&[0u8; 255]));
        assert_eq!(
            check(&r, &t),
            "encrypted_key length differs from the RSA modulus"
        );
        // A P-256 JWE to an RSA key and vice versa.
        assert_eq!(
            check(&r, &encrypt_to_jwk(k.jwk(), b"x")),
            "alg does not match the TEE key"
        );
        assert_eq!(check(&k, &jwe), "alg does not match the TEE key");
    }

    /// A `protected` member of exactly `MAX_PROTECTED_LEN` characters opens; one past it (the
    /// same valid header with more JSON whitespace, sealed just as well) is refused by name.
    #[test]
    fn a_protected_header_longer_than_the_cap_is_rejected() {
        let k = TeeKey::generate(TeeKeyAlg::Rsa).unwrap();
        let cek = [5u8; 32];
        let encrypted_key = rsa_oaep_encrypt(k.jwk(), &cek);
        // `bytes` header bytes encode to `chars` base64url characters.
        let with_protected_len = |bytes: usize, chars: usize| {
            let padding = " ".repeat(bytes - RSA_HEADER.len());
            let header = format!("{}{padding}}}", &RSA_HEADER[..RSA_HEADER.len() - 1]);
            let protected = enc(header.as_bytes());
            assert_eq!(protected.len(), chars);
            seal(&protected, &cek, &encrypted_key, b"long header")
        };
        let at_cap = with_protected_len(MAX_PROTECTED_LEN / 4 * 3, MAX_PROTECTED_LEN);
        assert_eq!(&k.decrypt(&bytes(&at_cap)).unwrap()[..], b"long header");
        // 4097 characters is no base64 length; 4098 is the next one.
        let over = with_protected_len(MAX_PROTECTED_LEN / 4 * 3 + 1, MAX_PROTECTED_LEN + 2);
        assert_eq!(check(&k, &over), "protected header too long");
    }

    /// RSA-OAEP-256 opening to a content key of another length than 32 bytes is a failed
    /// decryption, while the same JWE with the 32-byte key opens.
    #[test]
    fn an_rsa_content_key_other_than_32_bytes_is_refused() {
        let k = TeeKey::generate(TeeKeyAlg::Rsa).unwrap();
        let cek = [5u8; 32];
        let protected = enc(RSA_HEADER.as_bytes());
        let good = seal(&protected, &cek, &rsa_oaep_encrypt(k.jwk(), &cek), b"x");
        assert_eq!(&k.decrypt(&bytes(&good)).unwrap()[..], b"x");
        for len in [16, 31, 33] {
            let mut t = good.clone();
            t["encrypted_key"] = Value::String(enc(&rsa_oaep_encrypt(k.jwk(), &[5u8; 33][..len])));
            assert!(
                matches!(k.decrypt(&bytes(&t)), Err(ClientError::DecryptFailed)),
                "{len}"
            );
        }
    }

    #[test]
    fn coco_header_order_check() {
        let k = TeeKey::generate(TeeKeyAlg::P256).unwrap();
        let jwe = encrypt_to_jwk(k.jwk(), b"x");
        assert!(protected_header_in_coco_order(&bytes(&jwe)).unwrap());
        let r = TeeKey::generate(TeeKeyAlg::Rsa).unwrap();
        assert!(protected_header_in_coco_order(&bytes(&encrypt_to_jwk(r.jwk(), b"x"))).unwrap());
        let header = String::from_utf8(dec(jwe["protected"].as_str().unwrap())).unwrap();
        for other in [
            // enc before alg
            header.replacen(
                r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM","#,
                r#"{"enc":"A256GCM","alg":"ECDH-ES+A256KW","#,
                1,
            ),
            // epk members unsorted
            header.replacen(
                r#""crv":"P-256","kty":"EC""#,
                r#""kty":"EC","crv":"P-256""#,
                1,
            ),
            // whitespace
            header.replacen(',', ", ", 1),
        ] {
            assert_ne!(other, header);
            let mut t = jwe.clone();
            t["protected"] = Value::String(enc(other.as_bytes()));
            assert!(
                !protected_header_in_coco_order(&bytes(&t)).unwrap(),
                "{other}"
            );
        }
        assert!(protected_header_in_coco_order(b"[]").is_err());
    }

    /// RFC 7518 Appendix C: ECDH-ES with A128GCM, PartyU "Alice", PartyV "Bob".
    #[test]
    fn concat_kdf_matches_rfc7518_appendix_c() {
        let bob_d = dec("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw");
        let mut alice = vec![4u8];
        alice.extend(dec("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0"));
        alice.extend(dec("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"));
        let bob = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, &bob_d).unwrap();
        let z = agreement::agree(
            &bob,
            UnparsedPublicKey::new(&agreement::ECDH_P256, &alice),
            (),
            |z| Ok(z.to_vec()),
        )
        .unwrap();
        assert_eq!(
            z,
            [
                158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
                110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196
            ]
        );
        let k = concat_kdf_sha256(&z, b"A128GCM", b"Alice", b"Bob", 128);
        assert_eq!(enc(&k), "VqqN6vgjbSBcIijNcacQGg");
        // Two rounds for a 512-bit output; the first 256 bits are one round.
        let long = concat_kdf_sha256(&z, b"x", b"", b"", 512);
        assert_eq!(long.len(), 64);
        assert_ne!(long[..32], concat_kdf_sha256(&z, b"x", b"", b"", 256)[..]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn round_trip_any_plaintext(plain in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let k = TeeKey::generate(TeeKeyAlg::P256).unwrap();
            let jwe = encrypt_to_jwk(k.jwk(), &plain);
            prop_assert_eq!(&k.decrypt(&bytes(&jwe)).unwrap()[..], &plain[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let k = TeeKey::generate(TeeKeyAlg::P256).unwrap();
            prop_assert!(k.decrypt(&data).is_err());
        }

        /// Any single-byte change anywhere in the serialized JWE is either rejected or (when
        /// it only touches JSON syntax around the values) still yields exactly the plaintext.
        #[test]
        fn byte_mutations_never_yield_another_plaintext(pos in any::<prop::sample::Index>(), xor in 1u8..) {
            let k = TeeKey::generate(TeeKeyAlg::P256).unwrap();
            let mut data = bytes(&encrypt_to_jwk(k.jwk(), b"the one secret"));
            let i = pos.index(data.len());
            data[i] ^= xor;
            if let Ok(p) = k.decrypt(&data) {
                prop_assert_eq!(&p[..], b"the one secret");
            }
        }
    }
}
