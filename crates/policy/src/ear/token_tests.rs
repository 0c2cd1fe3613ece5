//! EAR tokens (unit tests: they build appraisals by hand, which only this crate can): JWT and
//! CWT round trips for ES256 and ES384, every verification check failing on
//! purpose (tampering, algorithm swaps, wrong key, time), key formats, the AR4SI mapping from an
//! appraisal, an RFC 7515 interop vector, and random input never panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::{
    Alg, CPU_SUBMOD, EAR_PROFILE, EarClaims, MAX_TOKEN_LEN, Nonce, SigningKey, Status, TokenError,
    TrustVector, VerifyingKey, issue_cwt, issue_jwt, verify_cwt, verify_jwt,
};
use crate::{Appraisal, Behind, Outcome, RuleResult, Tee, TrustClaim, Verdict};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tessera_pki::UnixTime;

const T0: UnixTime = UnixTime::from_secs(1_767_225_600); // 2026-01-01
const TTL: u64 = 300;

fn at(offset: i64) -> UnixTime {
    UnixTime::from_secs(T0.as_secs() + offset)
}

fn rule(name: &str, claim: TrustClaim, outcome: Outcome) -> RuleResult {
    RuleResult {
        rule: name.to_owned(),
        field: "FIELD",
        outcome,
        expected: String::new(),
        actual: String::new(),
        claim,
        note: None,
    }
}

fn appraisal(tee: Tee, rules: Vec<RuleResult>) -> Appraisal {
    let verdict = if rules.iter().any(|r| r.outcome == Outcome::Fail) {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    Appraisal {
        policy_id: String::from("prod-2026"),
        tee,
        verdict,
        rules,
        behind: Vec::new(),
        advisory_ids: Vec::new(),
        tcb_status: None,
        appraised_at: T0,
        dangerous_test_root: false,
    }
}

/// An SEV-SNP appraisal with every rule family checked and passing.
fn snp_pass() -> Appraisal {
    appraisal(
        Tee::Snp,
        vec![
            rule("snp.measurement", TrustClaim::Executables, Outcome::Pass),
            rule("snp.debug", TrustClaim::Configuration, Outcome::Pass),
            rule("snp.min_tcb", TrustClaim::Hardware, Outcome::Pass),
            rule("snp.signer", TrustClaim::InstanceIdentity, Outcome::Pass),
            rule(
                "snp.report_data",
                TrustClaim::SourcedData,
                Outcome::NotChecked,
            ),
            rule(
                "snp.chip_ids",
                TrustClaim::InstanceIdentity,
                Outcome::NotChecked,
            ),
        ],
    )
}

fn evidence() -> Map<String, Value> {
    let Value::Object(m) = json!({
        "snp": {"measurement": "ab".repeat(48), "reported_tcb_snp": 23},
        "runtime_data_claims": {
            "nonce": "c2FtcGxl",
            "tee-pubkey": {"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": "AA", "y": "AA"}
        }
    }) else {
        unreachable!()
    };
    m
}

fn claims() -> EarClaims {
    EarClaims::from_appraisal(
        &snp_pass(),
        Some(evidence()),
        T0,
        TTL,
        Some(Nonce::new(b"0123456789abcdef").unwrap()),
    )
}

fn key(alg: Alg) -> SigningKey {
    SigningKey::generate(alg).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// `header.payload`, signed by `sign_with` (or with an empty signature).
fn assemble(header: &Value, payload: &Value, sign_with: Option<&SigningKey>) -> String {
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(payload).unwrap())
    );
    let sig = sign_with.map_or_else(Vec::new, |k| sign_raw(k, input.as_bytes()));
    format!("{input}.{}", b64(&sig))
}

/// Sign raw bytes with the PKCS#8 of `key` through aws-lc-rs, independently of the crate's
/// signer.
fn sign_raw(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    };
    let pem = key.to_pkcs8_pem().unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let alg = match key.alg() {
        Alg::Es256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
        Alg::Es384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
    };
    let pair = EcdsaKeyPair::from_pkcs8(alg, &der).unwrap();
    pair.sign(&aws_lc_rs::rand::SystemRandom::new(), message)
        .unwrap()
        .as_ref()
        .to_vec()
}

fn parts(token: &str) -> (Value, Value, Vec<u8>) {
    let p: Vec<&str> = token.split('.').collect();
    assert_eq!(p.len(), 3);
    (
        serde_json::from_slice(&unb64(p[0])).unwrap(),
        serde_json::from_slice(&unb64(p[1])).unwrap(),
        unb64(p[2]),
    )
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn jwt_round_trip_both_algorithms() {
    for alg in [Alg::Es256, Alg::Es384] {
        let k = key(alg);
        let c = claims();
        let token = issue_jwt(&c, &k).unwrap();
        let back = verify_jwt(&token, k.verifying_key(), at(0)).unwrap();
        assert_eq!(back, c, "{alg}");
        let (header, payload, sig) = parts(&token);
        assert_eq!(header["alg"], alg.name());
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], k.verifying_key().thumbprint());
        assert_eq!(header["jwk"], k.verifying_key().to_jwk());
        assert_eq!(header["jwk"]["alg"], alg.name());
        // r || s, fixed width.
        assert_eq!(sig.len(), if alg == Alg::Es256 { 64 } else { 96 });
        assert_eq!(payload["eat_profile"], EAR_PROFILE);
        // Where Trustee's KBS looks for the TEE key.
        assert_eq!(
            payload.pointer(
                "/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey/kty"
            ),
            Some(&json!("EC"))
        );
        assert_eq!(payload["submods"]["cpu0"]["ear.status"], "affirming");
        assert_eq!(payload["eat_nonce"], b64(b"0123456789abcdef"));
        assert_eq!(payload["exp"], T0.as_secs() + 300);
    }
}

#[test]
fn runtime_data_claims_ride_along_without_changing_the_verdict() {
    let tee_key =
        json!({"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": "eA", "y": "eQ"});
    let runtime = json!({"nonce": "bm9uY2U=", "tee-pubkey": tee_key});
    let pointer = "/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey";
    let mut failing = snp_pass();
    failing
        .rules
        .push(rule("snp.debug", TrustClaim::Configuration, Outcome::Fail));
    failing.verdict = Verdict::Fail;
    for (a, evidence) in [
        (snp_pass(), Some(evidence())),
        (snp_pass(), None),
        (failing, None),
    ] {
        let plain = EarClaims::from_appraisal(&a, evidence.clone(), T0, TTL, None);
        let with = plain.clone().with_runtime_data_claims(runtime.clone());
        let (p, w) = (plain.cpu().unwrap(), with.cpu().unwrap());
        assert_eq!(w.status(), p.status());
        assert_eq!(w.trust_vector(), p.trust_vector());
        assert_eq!(w.appraisal_policy_id(), p.appraisal_policy_id());
        assert_eq!(with.runtime_data_claims(), Some(&runtime));
        // The TEE claims already there stay.
        if evidence.is_some() {
            assert!(w.annotated_evidence().unwrap().contains_key("snp"));
        }
        let k = key(Alg::Es256);
        let token = issue_jwt(&with, &k).unwrap();
        let back = verify_jwt(&token, k.verifying_key(), at(0)).unwrap();
        assert_eq!(back.to_json().pointer(pointer), Some(&tee_key));
        assert_eq!(back, with);
    }
}

#[test]
fn cwt_round_trip_both_algorithms() {
    for alg in [Alg::Es256, Alg::Es384] {
        let k = key(alg);
        let c = claims();
        let token = issue_cwt(&c, &k).unwrap();
        // Tag 18 (0xd2), then a four-element array.
        assert_eq!(&token[..2], &[0xd2, 0x84]);
        let back = verify_cwt(&token, k.verifying_key(), at(0)).unwrap();
        assert_eq!(back, c, "{alg}");
    }
}

#[test]
fn jwt_and_cwt_carry_the_same_claims() {
    let k = key(Alg::Es256);
    let c = claims();
    let from_jwt = verify_jwt(&issue_jwt(&c, &k).unwrap(), k.verifying_key(), at(1)).unwrap();
    let from_cwt = verify_cwt(&issue_cwt(&c, &k).unwrap(), k.verifying_key(), at(1)).unwrap();
    assert_eq!(from_jwt, from_cwt);
}

// ---------------------------------------------------------------------------------------------
// Tampering

/// A claims-set or header with a key twice (a second `exp`, one deep inside the submods, a
/// second `alg`) is refused even when signed by the right key: parsers disagree on which one
/// counts. Without the duplicate the same token verifies.
#[test]
fn jwt_duplicate_keys_are_rejected() {
    let k = key(Alg::Es256);
    let token = issue_jwt(&claims(), &k).unwrap();
    let (header, payload, _) = parts(&token);
    let vk = k.verifying_key();
    let signed = |h: &str, p: &str| {
        let input = format!("{}.{}", b64(h.as_bytes()), b64(p.as_bytes()));
        let sig = sign_raw(&k, input.as_bytes());
        format!("{input}.{}", b64(&sig))
    };
    let h = serde_json::to_string(&header).unwrap();
    let p = serde_json::to_string(&payload).unwrap();
    assert!(verify_jwt(&signed(&h, &p), vk, at(0)).is_ok());
    let far = payload["exp"].as_i64().unwrap() + 1_000_000_000;
    let twice_exp = format!("{},\"exp\":{far}}}", p.strip_suffix('}').unwrap());
    let deep = p.replacen(
        "\"ear.status\":",
        "\"ear.status\":\"affirming\",\"ear.status\":",
        1,
    );
    assert_ne!(deep, p);
    let twice_alg = format!("{},\"alg\":\"ES256\"}}", h.strip_suffix('}').unwrap());
    for (h, p, what) in [
        (&h, &twice_exp, "payload"),
        (&h, &deep, "payload"),
        (&twice_alg, &p, "header"),
    ] {
        match verify_jwt(&signed(h, p), vk, at(0)) {
            Err(TokenError::Format { what: w }) => {
                assert!(w.contains(what) && w.contains("duplicate"), "{w}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn jwt_tampering_is_rejected() {
    let k = key(Alg::Es256);
    let token = issue_jwt(&claims(), &k).unwrap();
    let (header, mut payload, sig) = parts(&token);
    let vk = k.verifying_key();

    // Payload changed (status raised), old signature kept.
    payload["submods"]["cpu0"]["ear.appraisal-policy-id"] = json!("other");
    let forged = format!(
        "{}.{}.{}",
        token.split('.').next().unwrap(),
        b64(&serde_json::to_vec(&payload).unwrap()),
        b64(&sig)
    );
    assert_eq!(verify_jwt(&forged, vk, at(0)), Err(TokenError::Signature));

    // Header changed (kid), old signature kept.
    let mut h2 = header.clone();
    h2["kid"] = json!("attacker");
    let forged = format!(
        "{}.{}.{}",
        b64(&serde_json::to_vec(&h2).unwrap()),
        token.split('.').nth(1).unwrap(),
        b64(&sig)
    );
    assert_eq!(verify_jwt(&forged, vk, at(0)), Err(TokenError::Signature));

    // Signature bit flipped.
    let mut sig2 = sig.clone();
    sig2[10] ^= 1;
    let forged = format!("{}.{}", token.rsplit_once('.').unwrap().0, b64(&sig2));
    assert_eq!(verify_jwt(&forged, vk, at(0)), Err(TokenError::Signature));

    // Signature truncated, or DER-encoded instead of r || s.
    let forged = format!("{}.{}", token.rsplit_once('.').unwrap().0, b64(&sig[..63]));
    assert_eq!(verify_jwt(&forged, vk, at(0)), Err(TokenError::Signature));

    // Every single-character change anywhere is rejected.
    let bytes = token.as_bytes();
    for i in (0..bytes.len()).step_by(7) {
        let mut t = bytes.to_vec();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).unwrap();
        if t != token {
            assert!(verify_jwt(&t, vk, at(0)).is_err(), "change at {i}");
        }
    }

    // Structure.
    for bad in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        &format!("{token}."),
        &format!("{token}=="),
        &token.replace('.', ".\n"),
    ] {
        assert!(
            matches!(verify_jwt(bad, vk, at(0)), Err(TokenError::Format { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn cwt_tampering_is_rejected() {
    let k = key(Alg::Es384);
    let token = issue_cwt(&claims(), &k).unwrap();
    let vk = k.verifying_key();
    for i in 0..token.len() {
        let mut t = token.clone();
        t[i] ^= 0x01;
        assert!(verify_cwt(&t, vk, at(0)).is_err(), "flip at {i}");
    }
    // Truncated at every length.
    for n in 0..token.len() {
        assert!(
            verify_cwt(&token[..n], vk, at(0)).is_err(),
            "truncated to {n}"
        );
    }
    // A JWT is not a CWT and vice versa.
    let jwt = issue_jwt(&claims(), &k).unwrap();
    assert!(matches!(
        verify_cwt(jwt.as_bytes(), vk, at(0)),
        Err(TokenError::Format { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Algorithm confusion and keys

#[test]
fn algorithm_swaps_are_rejected() {
    let k256 = key(Alg::Es256);
    let k384 = key(Alg::Es384);
    let token = issue_jwt(&claims(), &k256).unwrap();
    let (header, payload, _) = parts(&token);

    // "none" with an empty signature, and with the old signature.
    for alg in [
        "none", "None", "NONE", "HS256", "RS256", "ES512", "EdDSA", "ES384",
    ] {
        let mut h = header.clone();
        h["alg"] = json!(alg);
        let unsigned = assemble(&h, &payload, None);
        let err = verify_jwt(&unsigned, k256.verifying_key(), at(0)).unwrap_err();
        assert!(
            matches!(err, TokenError::Algorithm { .. }),
            "{alg}: {err:?}"
        );
    }
    // A token genuinely signed with ES384 is refused by an ES256 key before any crypto, and
    // the other way round.
    let t384 = issue_jwt(&claims(), &k384).unwrap();
    assert!(matches!(
        verify_jwt(&t384, k256.verifying_key(), at(0)),
        Err(TokenError::Algorithm { .. })
    ));
    assert!(matches!(
        verify_jwt(&token, k384.verifying_key(), at(0)),
        Err(TokenError::Algorithm { .. })
    ));
    // An ES384 signature under an "ES256" header, verified by the ES384 key: still refused.
    let mut h = header.clone();
    h["alg"] = json!("ES256");
    let lying = assemble(&h, &payload, Some(&k384));
    assert!(matches!(
        verify_jwt(&lying, k384.verifying_key(), at(0)),
        Err(TokenError::Algorithm { .. })
    ));
    // Missing alg.
    let mut h = header.clone();
    h.as_object_mut().unwrap().remove("alg");
    assert!(matches!(
        verify_jwt(
            &assemble(&h, &payload, Some(&k256)),
            k256.verifying_key(),
            at(0)
        ),
        Err(TokenError::Header { .. })
    ));
    // CWT: an ES384 token and an ES256 key.
    let c384 = issue_cwt(&claims(), &k384).unwrap();
    assert!(matches!(
        verify_cwt(&c384, k256.verifying_key(), at(0)),
        Err(TokenError::Algorithm { .. })
    ));
}

#[test]
fn header_key_is_not_trusted() {
    // A token signed by an attacker who put their own key in the header is still checked against
    // the caller's key.
    let ours = key(Alg::Es256);
    let theirs = key(Alg::Es256);
    let token = issue_jwt(&claims(), &theirs).unwrap();
    assert_eq!(
        verify_jwt(&token, ours.verifying_key(), at(0)),
        Err(TokenError::Signature)
    );
    let cwt = issue_cwt(&claims(), &theirs).unwrap();
    assert_eq!(
        verify_cwt(&cwt, ours.verifying_key(), at(0)),
        Err(TokenError::Signature)
    );
}

#[test]
fn resigned_modified_claims_verify_only_with_the_signer() {
    // Sanity check of the test helper: a re-signed token verifies, so the rejections above are
    // about the alg, not the helper.
    let k = key(Alg::Es256);
    let token = issue_jwt(&claims(), &k).unwrap();
    let (header, payload, _) = parts(&token);
    let again = assemble(&header, &payload, Some(&k));
    assert_eq!(
        verify_jwt(&again, k.verifying_key(), at(0)).unwrap(),
        claims()
    );
}

#[test]
fn jwk_round_trip_and_refusals() {
    for alg in [Alg::Es256, Alg::Es384] {
        let vk = key(alg).verifying_key().clone();
        let jwk = vk.to_jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], alg.curve());
        assert_eq!(jwk["kid"], vk.thumbprint());
        assert_eq!(VerifyingKey::from_jwk(&jwk).unwrap(), vk);
        // Through text, and without the optional members.
        let text = serde_json::to_string(&jwk).unwrap();
        let mut minimal: Value = serde_json::from_str(&text).unwrap();
        for m in ["alg", "kid"] {
            minimal.as_object_mut().unwrap().remove(m);
        }
        let back = VerifyingKey::from_jwk(&minimal).unwrap();
        assert_eq!(back, vk);
        assert_eq!(back.alg(), alg);
        // The thumbprint covers only the required members.
        assert_eq!(back.thumbprint(), vk.thumbprint());
    }
    let good = key(Alg::Es256).verifying_key().to_jwk();
    let edits: [(&str, Value); 9] = [
        ("kty", json!("RSA")),
        ("crv", json!("P-521")),
        ("crv", json!("secp256k1")),
        ("alg", json!("ES384")),
        ("use", json!("enc")),
        ("d", json!("AAAA")),
        ("x", json!("AAAA")),
        ("y", json!(good["y"].as_str().unwrap().to_owned() + "A")),
        ("x", json!(1)),
    ];
    for (member, value) in edits {
        let mut j = good.clone();
        j[member] = value;
        assert!(
            matches!(VerifyingKey::from_jwk(&j), Err(TokenError::Key { .. })),
            "{member}"
        );
    }
    // An ES384 JWK (right length, wrong curve for the point) and a point off the curve.
    let mut off = good.clone();
    off["y"] = json!(b64(&[0u8; 32]));
    assert!(VerifyingKey::from_jwk(&off).is_err());
    assert!(VerifyingKey::from_jwk(&json!("not an object")).is_err());
}

#[test]
fn rfc7638_thumbprint_is_of_the_canonical_members() {
    // The thumbprint is SHA-256 of {"crv","kty","x","y"} in that order, no whitespace.
    let vk = key(Alg::Es384).verifying_key().clone();
    let jwk = vk.to_jwk();
    let canonical = format!(
        r#"{{"crv":"P-384","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    assert_eq!(
        vk.thumbprint(),
        b64(&tessera_pki::sha256(canonical.as_bytes()))
    );
}

#[test]
fn pkcs8_and_spki_pem_round_trip() {
    for alg in [Alg::Es256, Alg::Es384] {
        let k = key(alg);
        let pem = k.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let again = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(again.alg(), alg);
        assert_eq!(again.verifying_key(), k.verifying_key());
        // A token from the reloaded key verifies with the original public key.
        let token = issue_jwt(&claims(), &again).unwrap();
        verify_jwt(&token, k.verifying_key(), at(0)).unwrap();

        let spki = k.verifying_key().to_spki_pem();
        assert!(spki.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(
            &VerifyingKey::from_spki_pem(&spki).unwrap(),
            k.verifying_key()
        );
        assert_eq!(
            &VerifyingKey::from_spki_der(&k.verifying_key().to_spki_der()).unwrap(),
            k.verifying_key()
        );
    }
    // Debug never shows key material.
    let k = key(Alg::Es256);
    let pem = k.to_pkcs8_pem().unwrap();
    let shown = format!("{k:?}");
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(&line[..20]));
    }
    assert!(SigningKey::from_pkcs8_pem(&k.verifying_key().to_spki_pem()).is_err());
    assert!(VerifyingKey::from_spki_pem(&pem).is_err());
    assert!(SigningKey::from_pkcs8_der(b"\x30\x03\x02\x01\x00").is_err());
}

#[test]
fn rfc7515_appendix_a3_es256_vector() {
    // RFC 7515 A.3: an ES256 JWS over a non-EAR payload. The signature must verify (raw r || s,
    // base64url), so the first failure is the claims, not the signature.
    const TOKEN: &str = concat!(
        "eyJhbGciOiJFUzI1NiJ9",
        ".",
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt",
        "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
        ".",
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA",
        "pmWQxfKTUJqPP3-Kg6NU1Q"
    );
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    });
    let pem = "-----BEGIN PUBLIC KEY-----\n\
               MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n\
               6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n\
               -----END PUBLIC KEY-----\n";
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    assert_eq!(VerifyingKey::from_spki_pem(pem).unwrap(), key);
    let err = verify_jwt(TOKEN, &key, UnixTime::from_secs(1_300_000_000)).unwrap_err();
    assert_eq!(
        err,
        TokenError::Claims {
            claim: String::from("eat_profile"),
            reason: "missing"
        }
    );
    // One bit off in the signature and it is the signature that fails.
    let broken = TOKEN.replace("DtEhU3", "DtEhU4");
    assert_eq!(
        verify_jwt(&broken, &key, UnixTime::from_secs(1_300_000_000)),
        Err(TokenError::Signature)
    );
}

// ---------------------------------------------------------------------------------------------
// Time and claims

#[test]
fn expiry_and_not_yet_valid() {
    let k = key(Alg::Es256);
    let c = claims();
    let jwt = issue_jwt(&c, &k).unwrap();
    let cwt = issue_cwt(&c, &k).unwrap();
    let vk = k.verifying_key();
    let exp = c.exp;
    assert_eq!(exp.as_secs(), T0.as_secs() + 300);
    let before_exp = UnixTime::from_secs(exp.as_secs() - 1);
    verify_jwt(&jwt, vk, before_exp).unwrap();
    verify_cwt(&cwt, vk, before_exp).unwrap();
    let expired = TokenError::Expired { exp, at: exp };
    assert_eq!(verify_jwt(&jwt, vk, exp), Err(expired.clone()));
    assert_eq!(verify_cwt(&cwt, vk, exp), Err(expired));
    // At iat is fine, one second before is not.
    verify_jwt(&jwt, vk, T0).unwrap();
    let early = TokenError::NotYetValid {
        not_before: T0,
        at: at(-1),
    };
    assert_eq!(verify_jwt(&jwt, vk, at(-1)), Err(early.clone()));
    assert_eq!(verify_cwt(&cwt, vk, at(-1)), Err(early));
    // The message names both times.
    let msg = verify_jwt(&jwt, vk, exp).unwrap_err().to_string();
    assert!(msg.contains("2026-01-01T00:05:00Z"), "{msg}");
}

#[test]
fn required_claims_and_profile() {
    let k = key(Alg::Es256);
    let token = issue_jwt(&claims(), &k).unwrap();
    let (header, payload, _) = parts(&token);
    let check = |edit: &dyn Fn(&mut Value), claim: &str| {
        let mut p = payload.clone();
        edit(&mut p);
        let t = assemble(&header, &p, Some(&k));
        match verify_jwt(&t, k.verifying_key(), at(0)) {
            Err(TokenError::Claims { claim: c, .. }) => {
                assert!(c.contains(claim), "{c} vs {claim}")
            }
            other => panic!("{claim}: {other:?}"),
        }
    };
    check(
        &|p| p["eat_profile"] = json!("tag:ietf.org,2026:rats/ear#04"),
        "eat_profile",
    );
    check(
        &|p| {
            p.as_object_mut().unwrap().remove("eat_profile");
        },
        "eat_profile",
    );
    check(
        &|p| {
            p.as_object_mut().unwrap().remove("exp");
        },
        "exp",
    );
    check(&|p| p["exp"] = json!(1.767_225_9e9), "exp");
    check(
        &|p| {
            p.as_object_mut().unwrap().remove("iat");
        },
        "iat",
    );
    check(
        &|p| {
            p.as_object_mut().unwrap().remove("ear.verifier-id");
        },
        "ear.verifier-id",
    );
    check(&|p| p["submods"] = json!({}), "submods");
    check(&|p| p["eat_nonce"] = json!(b64(b"short")), "eat_nonce");
    check(
        &|p| p["submods"]["cpu0"]["ear.status"] = json!("AFFIRMING"),
        "submods.cpu0.ear.status",
    );
    check(
        &|p| p["submods"]["cpu0"]["ear.trustworthiness-vector"]["configuration"] = json!(96),
        "submods.cpu0.ear.status",
    );
    // nbf in the future is honoured.
    let mut p = payload.clone();
    p["nbf"] = json!(T0.as_secs() + 10);
    let t = assemble(&header, &p, Some(&k));
    assert!(matches!(
        verify_jwt(&t, k.verifying_key(), at(5)),
        Err(TokenError::NotYetValid { .. })
    ));
    verify_jwt(&t, k.verifying_key(), at(10)).unwrap();
}

#[test]
fn issuing_refuses_claims_a_verifier_would_refuse() {
    let k = key(Alg::Es256);
    let mut c = claims();
    c.submods.get_mut(CPU_SUBMOD).unwrap().status = Status::Affirming;
    c.submods
        .get_mut(CPU_SUBMOD)
        .unwrap()
        .trust_vector
        .as_mut()
        .unwrap()
        .hardware = Some(96);
    assert!(matches!(issue_jwt(&c, &k), Err(TokenError::Claims { .. })));
    assert!(matches!(issue_cwt(&c, &k), Err(TokenError::Claims { .. })));
    let mut c = claims();
    c.submods.clear();
    assert!(matches!(issue_jwt(&c, &k), Err(TokenError::Claims { .. })));
    assert!(Nonce::new(&[0; 7]).is_err());
    assert!(Nonce::new(&[0; 65]).is_err());
    assert_eq!(Nonce::new(&[1; 64]).unwrap().as_bytes(), &[1; 64]);
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let k = key(Alg::Es256);
    let big = "a".repeat(MAX_TOKEN_LEN + 1);
    assert!(matches!(
        verify_jwt(&big, k.verifying_key(), at(0)),
        Err(TokenError::TooLarge { .. })
    ));
    assert!(matches!(
        verify_cwt(big.as_bytes(), k.verifying_key(), at(0)),
        Err(TokenError::TooLarge { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// The AR4SI mapping

fn vector_of(a: &Appraisal) -> (Status, TrustVector) {
    let c = EarClaims::from_appraisal(a, None, T0, TTL, None);
    let cpu = c.cpu().unwrap().clone();
    (cpu.status, cpu.trust_vector.unwrap())
}

#[test]
fn passing_snp_is_affirming() {
    let (status, v) = vector_of(&snp_pass());
    assert_eq!(status, Status::Affirming);
    assert_eq!(
        v,
        TrustVector {
            instance_identity: Some(2),
            configuration: Some(2),
            executables: Some(3),
            hardware: Some(2),
            ..TrustVector::default()
        }
    );
    let c = EarClaims::from_appraisal(&snp_pass(), Some(Map::new()), T0, TTL, None);
    let cpu = c.cpu().unwrap();
    assert_eq!(cpu.annotated_evidence, None);
    assert_eq!(cpu.appraisal_policy_id.as_deref(), Some("prod-2026"));
    assert_eq!(c.verifier_id.developer, "tessera");
    assert_eq!(
        c.verifier_id.build,
        format!("tessera {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Evidence anchored in a test root (a simulator's): the policy passed, but neither the
/// instance nor the hardware is recognized, so the token is contraindicated, never affirming
/// (a token for a simulator must not read as one for genuine hardware).
#[test]
fn a_test_root_is_never_affirming() {
    let mut a = snp_pass();
    a.dangerous_test_root = true;
    assert!(a.passed());
    let (status, v) = vector_of(&a);
    assert_eq!(status, Status::Contraindicated);
    assert_eq!(v.instance_identity, Some(97));
    assert_eq!(v.hardware, Some(97));
    // The rest is what the rules gave.
    assert_eq!(v.configuration, Some(2));
    assert_eq!(v.executables, Some(3));
    // Also when Intel flagged the platform (which alone would be a warning).
    a.tcb_status = Some(String::from("OutOfDate"));
    a.tee = Tee::Tdx;
    assert_eq!(vector_of(&a).0, Status::Contraindicated);
}

#[test]
fn failures_map_to_their_claims() {
    let with = |name: &str, claim: TrustClaim| {
        let mut a = snp_pass();
        a.rules.push(rule(name, claim, Outcome::Fail));
        a.verdict = Verdict::Fail;
        vector_of(&a)
    };
    let (s, v) = with("snp.debug", TrustClaim::Configuration);
    assert_eq!(s, Status::Contraindicated);
    assert_eq!(v.configuration, Some(96));
    let (s, v) = with("snp.measurement", TrustClaim::Executables);
    assert_eq!(s, Status::Contraindicated);
    assert_eq!(v.executables, Some(33));
    let (_, v) = with("snp.denied_id_key_digests", TrustClaim::Executables);
    assert_eq!(v.executables, Some(96));
    let (_, v) = with("snp.min_tcb", TrustClaim::Hardware);
    assert_eq!(v.hardware, Some(96));
    let (_, v) = with("snp.chip_ids", TrustClaim::InstanceIdentity);
    assert_eq!(v.instance_identity, Some(96));
    let (_, v) = with("snp.report_data", TrustClaim::SourcedData);
    assert_eq!(v.sourced_data, Some(96));
    // The other claims keep their values.
    assert_eq!(v.configuration, Some(2));
}

#[test]
fn intel_status_other_than_up_to_date_is_a_warning() {
    let mut a = appraisal(
        Tee::Tdx,
        vec![
            rule("tdx.mr_td", TrustClaim::Executables, Outcome::Pass),
            rule(
                "tdx.tcb.accepted_statuses",
                TrustClaim::Hardware,
                Outcome::Pass,
            ),
        ],
    );
    a.tcb_status = Some(String::from("UpToDate"));
    let (s, v) = vector_of(&a);
    assert_eq!(
        (s, v.hardware, v.executables),
        (Status::Affirming, Some(2), Some(3))
    );

    a.tcb_status = Some(String::from("SWHardeningNeeded"));
    a.advisory_ids = vec![String::from("INTEL-SA-00615")];
    let (s, v) = vector_of(&a);
    assert_eq!((s, v.hardware), (Status::Warning, Some(32)));

    a.tcb_status = Some(String::from("OutOfDate"));
    a.advisory_ids.clear();
    a.behind = vec![Behind {
        component: String::from("TDX module"),
        actual: String::from("3"),
        required: String::from("5"),
    }];
    let (s, v) = vector_of(&a);
    assert_eq!((s, v.hardware), (Status::Warning, Some(32)));

    a.tcb_status = Some(String::from("Revoked"));
    a.behind.clear();
    let (s, v) = vector_of(&a);
    assert_eq!((s, v.hardware), (Status::Contraindicated, Some(96)));

    // Intel's status alone (no hardware rule) still makes the claim.
    let mut b = appraisal(
        Tee::Sgx,
        vec![rule(
            "sgx.mr_enclave",
            TrustClaim::Executables,
            Outcome::Pass,
        )],
    );
    b.tcb_status = Some(String::from("UpToDate"));
    let (s, v) = vector_of(&b);
    assert_eq!(
        (s, v.hardware, v.executables),
        (Status::Affirming, Some(2), Some(2))
    );
}

#[test]
fn unchecked_claims_are_absent() {
    let a = appraisal(
        Tee::Snp,
        vec![
            rule(
                "snp.measurement",
                TrustClaim::Executables,
                Outcome::NotChecked,
            ),
            rule(
                "snp.report_data",
                TrustClaim::SourcedData,
                Outcome::NotChecked,
            ),
        ],
    );
    let (s, v) = vector_of(&a);
    assert_eq!(s, Status::Affirming);
    assert_eq!(
        v,
        TrustVector {
            instance_identity: Some(2),
            ..TrustVector::default()
        }
    );
    // Sourced data, when checked.
    let a = appraisal(
        Tee::Snp,
        vec![rule(
            "snp.report_data",
            TrustClaim::SourcedData,
            Outcome::Pass,
        )],
    );
    assert_eq!(vector_of(&a).1.sourced_data, Some(2));
}

#[test]
fn ttl_saturates() {
    let c = EarClaims::from_appraisal(&snp_pass(), None, T0, u64::MAX, None);
    assert_eq!(c.exp, UnixTime::from_secs(i64::MAX));
}

// ---------------------------------------------------------------------------------------------
// Random input

fn fixed_key() -> &'static SigningKey {
    static K: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    K.get_or_init(|| key(Alg::Es256))
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let vk = fixed_key().verifying_key();
        let _ = verify_cwt(&data, vk, at(0));
        if let Ok(s) = std::str::from_utf8(&data) {
            let _ = verify_jwt(s, vk, at(0));
        }
        super::fuzz_token(&data);
    }

    #[test]
    fn random_strings_never_panic(s in "\\PC{0,600}") {
        let _ = verify_jwt(&s, fixed_key().verifying_key(), at(0));
    }

    #[test]
    fn random_jwt_shapes_never_panic(
        h in "[A-Za-z0-9_-]{0,80}",
        p in "[A-Za-z0-9_-]{0,400}",
        s in "[A-Za-z0-9_-]{0,120}",
    ) {
        let _ = verify_jwt(&format!("{h}.{p}.{s}"), fixed_key().verifying_key(), at(0));
    }

    #[test]
    fn mutated_cwts_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        static TOKEN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let token = TOKEN.get_or_init(|| issue_cwt(&claims(), fixed_key()).unwrap());
        let mut t = token.clone();
        for (i, b) in flips {
            let i = i % t.len();
            t[i] = b;
        }
        let _ = verify_cwt(&t, fixed_key().verifying_key(), at(0));
    }

    #[test]
    fn mutated_jwt_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        // A correctly signed token over arbitrary payload bytes exercises the claims parser.
        let k = fixed_key();
        let input = format!("{}.{}", b64(br#"{"alg":"ES256"}"#), b64(&payload));
        let token = format!("{input}.{}", b64(&sign_raw(k, input.as_bytes())));
        let r = verify_jwt(&token, k.verifying_key(), at(0));
        prop_assert!(r.is_err());
        prop_assert!(!matches!(r, Err(TokenError::Signature)));
    }
}

/// The JWT payload is written from borrowed fields (`EarClaims::json_view`); it must be the
/// same text as `to_json`, with and without each optional member, for every verdict.
#[test]
fn the_jwt_payload_is_the_claims_json() {
    let failing = appraisal(
        Tee::Snp,
        vec![
            rule("snp.measurement", TrustClaim::Executables, Outcome::Fail),
            rule("snp.debug", TrustClaim::Configuration, Outcome::Pass),
        ],
    );
    let mut unnamed = snp_pass();
    unnamed.policy_id = String::new();
    let cases = [
        claims(),
        EarClaims::from_appraisal(&snp_pass(), None, T0, TTL, None),
        EarClaims::from_appraisal(&failing, Some(evidence()), T0, 1, None),
        EarClaims::from_appraisal(&unnamed, Some(evidence()), at(-5), TTL, None),
        claims().with_runtime_data_claims(json!({"tee-pubkey": {"kty": "RSA", "n": "AQ"}})),
    ];
    for c in &cases {
        let view = serde_json::to_string(&c.json_view()).unwrap();
        assert_eq!(view, c.to_json().to_string());
        let jwt = issue_jwt(c, &key(Alg::Es256)).unwrap();
        let payload = jwt.split('.').nth(1).unwrap();
        assert_eq!(unb64(payload), view.as_bytes());
    }
    // The cached header is the key's, token after token.
    let k = key(Alg::Es384);
    let a = issue_jwt(&claims(), &k).unwrap();
    let b = issue_jwt(&cases[1], &k).unwrap();
    assert_eq!(a.split('.').next(), b.split('.').next());
    let header: Value = serde_json::from_slice(&unb64(a.split('.').next().unwrap())).unwrap();
    assert_eq!(header["alg"], "ES384");
    assert_eq!(header["kid"], k.verifying_key().thumbprint());
    assert_eq!(header["jwk"], k.verifying_key().to_jwk());
    assert_eq!(verify_jwt(&b, k.verifying_key(), T0).unwrap(), cases[1]);
}
