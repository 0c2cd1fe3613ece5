//! The facade over simulator evidence (no hardware vectors needed): KBS JSON round trips that
//! verify, every JSON check failing on purpose, test roots only through `dangerous_` methods,
//! appraisal and EAR claims, and property tests that decoders never panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde_json::{Value, json};
use tessera::pki::UnixTime;
use tessera::snp::abi::{AttestationReport, Product, RawReport};
use tessera::snp::sim::{SimPki, SimVek, VekSpec};
use tessera::tdx::sim::{CollateralSpec, PlatformSpec, QuoteSpec, SIM_VERIFY_AT, SimPcs};
use tessera::{Evidence, EvidenceError, Form, Tee, Verifier, VerifyError};

const AT: UnixTime = UnixTime::from_secs(1_767_225_600);

struct Snp {
    pki: SimPki,
    vcek: SimVek,
}

fn genoa() -> &'static Snp {
    static S: OnceLock<Snp> = OnceLock::new();
    S.get_or_init(|| {
        let pki = SimPki::new(Product::Genoa).unwrap();
        let vcek = pki.issue_vek(&VekSpec::vcek(Product::Genoa)).unwrap();
        Snp { pki, vcek }
    })
}

fn turin() -> &'static Snp {
    static S: OnceLock<Snp> = OnceLock::new();
    S.get_or_init(|| {
        let pki = SimPki::new(Product::Turin).unwrap();
        let vcek = pki.issue_vek(&VekSpec::vcek(Product::Turin)).unwrap();
        Snp { pki, vcek }
    })
}

fn report(s: &Snp, edit: impl FnOnce(&mut RawReport)) -> AttestationReport {
    let mut raw = s.pki.report_template(&s.vcek);
    edit(&mut raw);
    s.vcek.sign(raw).unwrap()
}

/// A verifier trusting the simulator's roots (besides AMD's) and holding its VCEK.
fn sim_verifier(s: &Snp) -> Verifier {
    Verifier::builder()
        .dangerous_snp_test_roots([s.pki.roots()])
        .certificates([s.vcek.certificate().clone()])
        .build()
        .unwrap()
}

fn sev_json(r: &AttestationReport) -> Value {
    Evidence::from_bytes(r.as_bytes()).unwrap().to_kbs_json()
}

#[test]
fn sev_json_round_trips_and_verifies_for_genoa_and_turin() {
    for s in [genoa(), turin()] {
        let r = report(s, |raw| raw.report_data = [7; 64]);
        let value = sev_json(&r);
        assert!(value["cert_chain"].is_null());
        let e = Evidence::from_kbs("snp", &value).unwrap();
        assert_eq!(e.form(), Form::KbsSnpReportJson);
        assert_eq!(e.snp_report().unwrap(), &r);
        assert_eq!(e.report_data(), &[7; 64]);
        let fmc = &value["attestation_report"]["reported_tcb"]["fmc"];
        assert_eq!(fmc.is_null(), s.pki.product() != Product::Turin);
        let v = sim_verifier(s).verify(&e, AT).unwrap();
        assert!(v.dangerous_test_root());
        assert_eq!(v.report_data(), &[7; 64]);
        // The raw-report form and the VCEK carried in cert_chain.
        let b64 = json!({
            "report": STANDARD.encode(r.as_bytes()),
            "cert_chain": [{"cert_type": "VCEK", "data": s.vcek.certificate().der()}],
        });
        let e2 = Evidence::from_kbs("snp", &b64).unwrap();
        assert_eq!((e2.form(), e2.cert_chain_len()), (Form::KbsSnpReport, 1));
        assert_eq!(e2.digest(), e.digest());
        let roots_only = Verifier::builder()
            .dangerous_snp_test_roots([s.pki.roots()])
            .build()
            .unwrap();
        roots_only.verify(&e2, AT).unwrap();
        // Without the VCEK anywhere: rejected, naming the endorsement.
        assert_eq!(
            roots_only.verify(&e, AT).unwrap_err().check(),
            "endorsement"
        );
        // Tessera's guest form names the list `certs`; both names at once are refused.
        let mut certs = b64.clone();
        certs["certs"] = certs["cert_chain"].take();
        certs.as_object_mut().unwrap().remove("cert_chain");
        roots_only
            .verify(&Evidence::from_kbs("snp", &certs).unwrap(), AT)
            .unwrap();
        let mut both = b64.clone();
        both["certs"] = Value::Null;
        assert!(Evidence::from_kbs("snp", &both).is_err());
    }
}

#[test]
fn sim_evidence_verifies_only_under_a_dangerous_root() {
    let s = genoa();
    let e = Evidence::from_bytes(report(s, |_| {}).as_bytes()).unwrap();
    let vendor_only = Verifier::builder()
        .certificates([s.vcek.certificate().clone()])
        .build()
        .unwrap();
    assert_eq!(vendor_only.verify(&e, AT).unwrap_err().check(), "vek_chain");
    // The kind-detecting entry point: an ARK-named root is an SEV-SNP root.
    let by_root = Verifier::builder()
        .certificates([s.vcek.certificate().clone(), s.pki.ask().clone()])
        .dangerous_test_root(s.pki.ark().clone())
        .unwrap()
        .build()
        .unwrap();
    by_root.verify(&e, AT).unwrap();
    // A certificate that is not self-issued is no root.
    assert!(
        Verifier::builder()
            .dangerous_test_root(s.vcek.certificate().clone())
            .is_err()
    );
    // Nor is one with a root's names that its own key did not sign.
    use tessera::pki::builder::{CertificateSpec, IssuerKey, issue_certificate};
    let ark = s.pki.ark();
    let (own, other) = (
        IssuerKey::generate_rsa(2048).unwrap(),
        IssuerKey::generate_rsa(2048).unwrap(),
    );
    let spec = CertificateSpec {
        serial: vec![1],
        issuer: ark.subject_der().to_vec(),
        subject: ark.subject_der().to_vec(),
        not_before: UnixTime::from_secs(AT.as_secs() - 86_400),
        not_after: UnixTime::from_secs(AT.as_secs() + 86_400),
        ca: Some(true),
        extensions: Vec::new(),
        pss_explicit_trailer: false,
    };
    let named = |signer: &IssuerKey| {
        let der = issue_certificate(&spec, &own.spki_der().unwrap(), signer).unwrap();
        tessera::pki::Certificate::from_der(&der).unwrap()
    };
    let err = Verifier::builder()
        .dangerous_test_root(named(&other))
        .err()
        .unwrap();
    assert!(err.to_string().contains("signed by its own key"), "{err}");
    Verifier::builder()
        .dangerous_test_root(named(&own))
        .unwrap()
        .build()
        .unwrap();
}

/// A CRL's validity: from a week before [`AT`] to a week after.
fn week_around_at() -> (UnixTime, UnixTime) {
    let week = 7 * 86_400;
    (
        UnixTime::from_secs(AT.as_secs() - week),
        UnixTime::from_secs(AT.as_secs() + week),
    )
}

#[test]
fn a_held_crl_revoking_the_ask_rejects() {
    let s = genoa();
    let e = Evidence::from_bytes(report(s, |_| {}).as_bytes()).unwrap();
    let (from, until) = week_around_at();
    let mut held = tessera::Endorsements::new();
    held.add_crls([s.pki.ark_crl(&[s.pki.ask()], from, until).unwrap()]);
    let revoking = Verifier::builder()
        .dangerous_snp_test_roots([s.pki.roots()])
        .certificates([s.vcek.certificate().clone()])
        .endorsements(held)
        .build()
        .unwrap();
    assert_eq!(revoking.verify(&e, AT).unwrap_err().check(), "revocation");
    let mut clean = tessera::Endorsements::new();
    clean.add_crls([s.pki.ark_crl(&[], from, until).unwrap()]);
    let checked = sim_verifier(s);
    checked.add_endorsements(clean);
    let v = checked.verify(&e, AT).unwrap();
    assert_eq!(v.verification()["revocation_checked"], true);
}

/// Hosts pad a table entry's DER with zeros: the held CRLs are still picked for a VCEK that
/// comes only from the evidence's certificate table in that form (they were once skipped, so
/// a revoked ASK passed a policy that checks revocation when a CRL is held).
#[test]
fn a_held_crl_applies_to_a_vcek_padded_in_the_certificate_table() {
    use tessera::snp::abi::{CertKind, CertTable, CertTableEntry};
    let s = genoa();
    let mut data = s.vcek.certificate().der().to_vec();
    data.extend_from_slice(&[0; 700]);
    let table = CertTable {
        entries: vec![CertTableEntry {
            guid: CertKind::Vcek.guid(),
            data,
        }],
    };
    let mut bytes = report(s, |_| {}).as_bytes().to_vec();
    bytes.extend_from_slice(&table.to_bytes());
    let e = Evidence::from_bytes(&bytes).unwrap();
    let (from, until) = week_around_at();
    let verifier = |crl| {
        let mut held = tessera::Endorsements::new();
        held.add_crls([crl]);
        Verifier::builder()
            .dangerous_snp_test_roots([s.pki.roots()])
            .endorsements(held)
            .build()
            .unwrap()
    };
    let revoking = verifier(s.pki.ark_crl(&[s.pki.ask()], from, until).unwrap());
    assert_eq!(revoking.verify(&e, AT).unwrap_err().check(), "revocation");
    let clean = verifier(s.pki.ark_crl(&[], from, until).unwrap());
    let v = clean.verify(&e, AT).unwrap();
    assert_eq!(v.verification()["revocation_checked"], true);
}

/// One PEM file of an endorsement directory holding certificates and a CRL: the CRL is read
/// too (it was left behind once, so a revoked ASK passed a policy that checks revocation only
/// when a CRL is given).
#[test]
fn a_crl_in_a_pem_file_of_certificates_is_applied() {
    let s = genoa();
    let e = Evidence::from_bytes(report(s, |_| {}).as_bytes()).unwrap();
    let (from, until) = week_around_at();
    let pem = |label: &str, der: &[u8]| tessera::pki::to_pem(label, der);
    let file = |crl: &tessera::pki::Crl| {
        let dir = tempfile::tempdir().unwrap();
        let text = pem("CERTIFICATE", s.vcek.certificate().der())
            + &pem("X509 CRL", crl.der())
            + &pem("CERTIFICATE", s.pki.ask().der());
        std::fs::write(dir.path().join("endorsements.pem"), text).unwrap();
        dir
    };
    let verifier = |dir: &std::path::Path| {
        Verifier::builder()
            .dangerous_snp_test_roots([s.pki.roots()])
            .endorsement_dir(dir)
            .unwrap()
            .build()
            .unwrap()
    };
    let revoking = file(&s.pki.ark_crl(&[s.pki.ask()], from, until).unwrap());
    let held = tessera::Endorsements::from_dir(revoking.path()).unwrap();
    assert_eq!((held.crls().len(), held.certificates().len()), (1, 2));
    assert_eq!(
        verifier(revoking.path())
            .verify(&e, AT)
            .unwrap_err()
            .check(),
        "revocation"
    );
    let clean = file(&s.pki.ark_crl(&[], from, until).unwrap());
    let v = verifier(clean.path()).verify(&e, AT).unwrap();
    assert_eq!(v.verification()["revocation_checked"], true);
}

#[test]
fn a_stale_crl_is_asked_for_again_and_a_newer_one_supersedes_it() {
    let s = genoa();
    let e = Evidence::from_bytes(report(s, |_| {}).as_bytes()).unwrap();
    let day = 86_400;
    let secs = |d: i64| UnixTime::from_secs(AT.as_secs() + d * day);
    // Current a month ago, stale by AT.
    let stale = s.pki.ark_crl(&[], secs(-40), secs(-10)).unwrap();
    let verifier = sim_verifier(s);
    let mut held = tessera::Endorsements::new();
    held.add_crls([stale.clone()]);
    verifier.add_endorsements(held);
    assert_eq!(verifier.verify(&e, AT).unwrap_err().check(), "revocation");
    // The VEK is held, yet the stale CRL makes the verifier ask for the chain's CRL (only).
    assert!(verifier.needed_endorsements(&e).is_none());
    assert!(verifier.needed_endorsements_at(&e, secs(-20)).is_none());
    assert_eq!(
        verifier.needed_endorsements_at(&e, AT),
        Some(tessera::EndorsementRequest::SnpCrl {
            kind: tessera::snp::certs::VekKind::Vcek,
            product: Some(Product::Genoa),
        })
    );
    // The source answers with a current CRL: it supersedes the stale one.
    let current = s.pki.ark_crl(&[], secs(-1), secs(30)).unwrap();
    let mut fresh = tessera::Endorsements::new();
    fresh.add_crls([current.clone()]);
    verifier.add_endorsements(fresh);
    let v = verifier.verify(&e, AT).unwrap();
    assert_eq!(v.verification()["revocation_checked"], true);
    assert!(verifier.needed_endorsements_at(&e, AT).is_none());
    // A newer CRL that revokes the ASK still rejects: the newest current CRL is applied.
    let revoking = s.pki.ark_crl(&[s.pki.ask()], secs(0), secs(30)).unwrap();
    let mut newer = tessera::Endorsements::new();
    newer.add_crls([revoking]);
    verifier.add_endorsements(newer);
    assert_eq!(verifier.verify(&e, AT).unwrap_err().check(), "revocation");
    // Nothing missing at a time the current CRL covers, but a recheck still names the CRL; and
    // adding what is held already says nothing new.
    let current_held = verifier.needed_endorsements_at(&e, secs(5)).is_none();
    assert!(current_held);
    assert_eq!(
        verifier.endorsements_to_recheck(&e),
        Some(tessera::EndorsementRequest::SnpCrl {
            kind: tessera::snp::certs::VekKind::Vcek,
            product: Some(Product::Genoa),
        })
    );
    let mut same = tessera::Endorsements::new();
    same.add_crls([current.clone()]);
    assert!(!verifier.add_endorsements(same));
    // The same CRL handed back again is held once.
    let mut twice = tessera::Endorsements::new();
    twice.add_crls([current.clone()]);
    let mut again = tessera::Endorsements::new();
    again.add_crls([current]);
    twice.extend(again);
    assert_eq!(twice.crls().len(), 1);
}

#[test]
fn a_tampered_sev_json_report_fails_its_signature() {
    let s = genoa();
    let verifier = sim_verifier(s);
    let mut value = sev_json(&report(s, |_| {}));
    for (field, index) in [
        ("measurement", 0),
        ("report_data", 63),
        ("host_data", 5),
        ("chip_id", 1),
    ] {
        let mut v = value.clone();
        let x = v["attestation_report"][field][index].as_u64().unwrap();
        v["attestation_report"][field][index] = json!((x + 1) % 256);
        let e = Evidence::from_kbs("snp", &v).unwrap();
        assert_eq!(
            verifier.verify(&e, AT).unwrap_err().check(),
            "report_signature",
            "{field}"
        );
    }
    // Debug policy bit set: still decodes, signature fails.
    value["attestation_report"]["policy"] = json!(0x3_0000 | (1 << 19));
    let e = Evidence::from_kbs("snp", &value).unwrap();
    assert!(verifier.verify(&e, AT).is_err());
}

/// The JSON error for `edit` applied to a good sev JSON.
fn sev_json_error(edit: impl FnOnce(&mut Value)) -> EvidenceError {
    let mut value = sev_json(&report(genoa(), |_| {}));
    edit(&mut value);
    let err = Evidence::from_kbs("snp", &value).unwrap_err();
    // The compact path refuses it with the same error.
    if let Some(compact) = tessera::compact::encode_text(&value.to_string()) {
        assert_eq!(
            Evidence::from_kbs_compact("snp", &compact).unwrap_err(),
            err
        );
    }
    err
}

/// What the compact path decodes: evidence equal to the general path's in everything
/// verification reads.
fn assert_same(a: &Evidence, b: &Evidence) {
    assert_eq!(a.form(), b.form());
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.to_kbs_json(), b.to_kbs_json());
    assert_eq!(
        a.snp_report().map(|r| r.as_bytes().to_vec()),
        b.snp_report().map(|r| r.as_bytes().to_vec())
    );
}

/// The compact path (`compact::encode_text`, then `from_kbs_compact`) reads both SEV-SNP forms
/// directly and gives what the general path gives; whatever it cannot read directly (duplicate
/// members, `certs` beside `cert_chain`, a quote) still decodes, or is refused, exactly as the
/// general path does.
#[test]
fn the_compact_path_decodes_as_the_general_path_does() {
    let compact = |v: &Value| tessera::compact::encode_text(&v.to_string()).unwrap();
    let der: Vec<u8> = (0..=255).cycle().take(900).collect();
    let mut value = sev_json(&report(genoa(), |_| {}));
    let general = Evidence::from_kbs("snp", &value).unwrap();
    let direct = Evidence::from_kbs_compact("snp", &compact(&value)).unwrap();
    assert_same(&direct, &general);
    assert!(sim_verifier(genoa()).verify(&direct, AT).is_ok());
    // With a chain, the certificates come back from their base64 runs.
    value["cert_chain"] =
        json!([{"cert_type": "VCEK", "data": der}, {"cert_type": "ARK", "data": [48, 0]}]);
    let c = compact(&value);
    assert!(c.contains(r#""data":{"b64":"#), "{c}");
    let direct = Evidence::from_kbs_compact("snp", &c).unwrap();
    assert_same(&direct, &Evidence::from_kbs("snp", &value).unwrap());
    assert_eq!(direct.to_kbs_json(), value);
    // Tessera's own form, `report` as base64.
    let raw_form = json!({
        "report": STANDARD.encode(general.snp_report().unwrap().as_bytes()),
        "cert_chain": [{"cert_type": "VCEK", "data": (0..=255).collect::<Vec<u8>>()}],
    });
    let direct = Evidence::from_kbs_compact("snp", &compact(&raw_form)).unwrap();
    assert_eq!(direct.form(), Form::KbsSnpReport);
    assert_same(&direct, &Evidence::from_kbs("snp", &raw_form).unwrap());
    // `attestation_report` wins over `report`, as in the general path.
    let mut both_forms = raw_form.clone();
    both_forms["attestation_report"] = value["attestation_report"].clone();
    assert_eq!(
        Evidence::from_kbs_compact("snp", &compact(&both_forms))
            .unwrap()
            .form(),
        Form::KbsSnpReportJson
    );
    // Refused alike: a null report, `certs` beside `cert_chain`, another TEE named.
    for bad in [json!({"report": null}), {
        let mut v = value.clone();
        v["certs"] = Value::Null;
        v
    }] {
        assert_eq!(
            Evidence::from_kbs_compact("snp", &compact(&bad)).unwrap_err(),
            Evidence::from_kbs("snp", &bad).unwrap_err()
        );
    }
    assert!(matches!(
        Evidence::from_kbs_compact("tdx", &compact(&value)),
        Err(EvidenceError::WrongTee { .. })
    ));
    assert!(matches!(
        Evidence::from_kbs_compact("nope", &compact(&value)),
        Err(EvidenceError::UnsupportedTee(_))
    ));
    // Not JSON, and a run that is not base64.
    assert!(matches!(
        Evidence::from_kbs_compact("snp", "{not json"),
        Err(EvidenceError::Unrecognized { .. })
    ));
    let broken = compact(&value).replacen("\"b64\":\"", "\"b64\":\"!", 1);
    assert!(matches!(
        Evidence::from_kbs_compact("snp", &broken),
        Err(EvidenceError::Unrecognized { .. })
    ));
    // Compact text with an unknown member: a good one is ignored by both paths, one the
    // expansion refuses (a run that is not base64) is refused by both.
    let c = compact(&value);
    let body = c.strip_suffix('}').unwrap();
    let extra = format!(r#"{body},"x":{{"b64":"AAAA"}}}}"#);
    assert_same(
        &Evidence::from_kbs_compact("snp", &extra).unwrap(),
        &Evidence::from_kbs("snp", &value).unwrap(),
    );
    let bad_extra = format!(r#"{body},"x":{{"b64":"!"}}}}"#);
    assert!(matches!(
        Evidence::from_kbs_compact("snp", &bad_extra),
        Err(EvidenceError::Unrecognized { .. })
    ));
    // A duplicated member: the general path keeps the last, and so does the compact path.
    let text = value.to_string();
    let dup = format!("{},\"cert_chain\":null}}", text.strip_suffix('}').unwrap());
    let mut last = value.clone();
    last["cert_chain"] = Value::Null;
    let from_dup = Evidence::from_kbs_compact("snp", &tessera::compact::encode_text(&dup).unwrap());
    assert_same(
        &from_dup.unwrap(),
        &Evidence::from_kbs("snp", &last).unwrap(),
    );
    // Objects only, in both paths: serde's positional form of a struct (its fields as an array,
    // in order) is refused wherever it stands, naming where; a positional `cert_chain` entry
    // over MAX_CERT_LEN cannot slip past the length check.
    const REPORT_FIELDS: [&str; 29] = [
        "version",
        "guest_svn",
        "policy",
        "family_id",
        "image_id",
        "vmpl",
        "sig_algo",
        "current_tcb",
        "plat_info",
        "key_info",
        "report_data",
        "measurement",
        "host_data",
        "id_key_digest",
        "author_key_digest",
        "report_id",
        "report_id_ma",
        "reported_tcb",
        "cpuid_fam_id",
        "cpuid_mod_id",
        "cpuid_step",
        "chip_id",
        "committed_tcb",
        "current",
        "committed",
        "launch_tcb",
        "launch_mit_vector",
        "current_mit_vector",
        "signature",
    ];
    let positional =
        |v: &Value, fields: &[&str]| -> Value { fields.iter().map(|f| v[*f].clone()).collect() };
    let ar = &value["attestation_report"];
    let mut cases = vec![
        (json!([ar]), None),
        (json!([ar, "", value["cert_chain"]]), None),
        (
            json!({"attestation_report": positional(ar, &REPORT_FIELDS)}),
            Some("attestation_report"),
        ),
    ];
    for (member, fields) in [
        (
            "reported_tcb",
            &["fmc", "bootloader", "tee", "snp", "microcode"][..],
        ),
        ("current", &["major", "minor", "build"][..]),
        ("signature", &["r", "s"][..]),
    ] {
        let mut v = value.clone();
        v["attestation_report"][member] = positional(&ar[member], fields);
        cases.push((v, Some("attestation_report")));
    }
    for len in [900, tessera::MAX_CERT_LEN + 1] {
        let mut v = value.clone();
        v["cert_chain"] = json!([["VCEK", vec![48u8; len]]]);
        cases.push((v, Some("cert_chain[0]")));
    }
    for (v, at) in &cases {
        let general = Evidence::from_kbs("snp", v).unwrap_err();
        match (at, &general) {
            (Some(at), EvidenceError::Json { field, .. }) => assert_eq!(field, at),
            (None, EvidenceError::Unrecognized { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Evidence::from_kbs_compact("snp", &compact(v)).unwrap_err(),
            general,
            "{at:?}"
        );
    }
    // A run's key written with escapes is a run in both paths, and counted as the bytes it
    // decodes to: a run too large to expand is refused however its key is written.
    let c = compact(&value);
    let escaped = c.replace(r#""b64""#, r#""\u0062\u00364""#);
    assert_ne!(escaped, c);
    assert_same(
        &Evidence::from_kbs_compact("snp", &escaped).unwrap(),
        &Evidence::from_kbs("snp", &value).unwrap(),
    );
    let big = STANDARD.encode(vec![0u8; tessera::MAX_EVIDENCE_JSON_VALUES]);
    let body = c.strip_suffix('}').unwrap();
    for key in ["b64", r"\u0062\u00364", r"b6\u0034"] {
        let text = format!(r#"{body},"x":{{"{key}":"{big}"}}}}"#);
        let err = Evidence::from_kbs_compact("snp", &text).unwrap_err();
        assert!(
            matches!(err, EvidenceError::Unrecognized { .. })
                && err.to_string().contains("JSON values"),
            "{key}: {err}"
        );
    }
}

#[test]
fn every_json_check_rejects() {
    let field = |e: EvidenceError| match e {
        EvidenceError::Json { field, .. } => field,
        other => panic!("{other:?}"),
    };
    fn r(v: &mut Value) -> &mut Value {
        &mut v["attestation_report"]
    }
    assert_eq!(
        field(sev_json_error(|v| r(v)["measurement"] = json!([1, 2]))),
        "attestation_report.measurement"
    );
    assert!(
        field(sev_json_error(|v| r(v)["report_data"][0] = json!(256)))
            .starts_with("attestation_report")
    );
    assert!(
        field(sev_json_error(|v| r(v)["report_data"][0] = json!(1.5)))
            .starts_with("attestation_report")
    );
    assert!(
        field(sev_json_error(|v| r(v)["report_data"][0] = json!(-1)))
            .starts_with("attestation_report")
    );
    assert!(
        field(sev_json_error(|v| r(v)["unknown"] = json!(1))).starts_with("attestation_report")
    );
    assert!(
        field(sev_json_error(|v| {
            r(v).as_object_mut().unwrap().remove("chip_id");
        }))
        .starts_with("attestation_report")
    );
    assert_eq!(
        field(sev_json_error(
            |v| r(v)["signature"]["r"] = json!(vec![0; 48])
        )),
        "attestation_report.signature.r"
    );
    assert!(
        field(sev_json_error(|v| r(v)["current"]["patch"] = json!(1)))
            .starts_with("attestation_report")
    );
    assert!(
        field(sev_json_error(|v| r(v)["reported_tcb"]["snp"] = json!(300)))
            .starts_with("attestation_report")
    );
    // An unknown report version is a parse error of the rebuilt report.
    assert!(matches!(
        sev_json_error(|v| r(v)["version"] = json!(9)),
        EvidenceError::Snp { .. }
    ));
    // cert_chain: not an array, an unknown type, empty data, too many.
    assert_eq!(
        field(sev_json_error(|v| v["cert_chain"] = json!("VCEK"))),
        "cert_chain"
    );
    assert_eq!(
        field(sev_json_error(
            |v| v["cert_chain"] = json!([{"cert_type": "CRL", "data": [1]}])
        )),
        "cert_chain[0].cert_type"
    );
    assert_eq!(
        field(sev_json_error(
            |v| v["cert_chain"] = json!([{"cert_type": "VCEK", "data": []}])
        )),
        "cert_chain[0].data"
    );
    let many: Vec<Value> = (0..17)
        .map(|_| json!({"cert_type": "ASK", "data": [48]}))
        .collect();
    assert_eq!(
        field(sev_json_error(|v| v["cert_chain"] = Value::Array(many))),
        "cert_chain"
    );
    assert!(matches!(
        sev_json_error(
            |v| v["cert_chain"] = json!([{"cert_type": "VCEK", "data": vec![0; 70_000]}])
        ),
        EvidenceError::TooLarge { .. }
    ));
    // The raw-report and quote forms.
    let bad = |v: Value, tee: &str| Evidence::from_kbs(tee, &v).unwrap_err();
    assert!(matches!(
        bad(json!({"report": "!!!"}), "snp"),
        EvidenceError::Json { .. }
    ));
    assert!(matches!(
        bad(json!({"report": 5}), "snp"),
        EvidenceError::Json { .. }
    ));
    assert!(matches!(
        bad(json!({"report": STANDARD.encode([0u8; 100])}), "snp"),
        EvidenceError::Snp { .. }
    ));
    assert!(matches!(
        bad(
            json!({"quote": STANDARD.encode([4u8, 0, 2, 0, 0x81])}),
            "tdx"
        ),
        EvidenceError::Quote { .. }
    ));
    assert!(matches!(
        bad(json!({"quote": "AAAA", "cc_eventlog": 1}), "tdx"),
        EvidenceError::Json { .. } | EvidenceError::Quote { .. }
    ));
    assert!(matches!(
        bad(json!({"quote": "A".repeat(2 * 1024 * 1024)}), "tdx"),
        EvidenceError::TooLarge { .. }
    ));
    // Nothing recognisable: every JSON form is named.
    let err = bad(json!({"tdx": 1}), "tdx");
    let EvidenceError::Unrecognized { tried } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(tried.len(), 3);
    assert!(err.to_string().contains("quote"), "{err}");
    assert!(matches!(
        bad(json!([1]), "snp"),
        EvidenceError::Unrecognized { .. }
    ));
    assert!(matches!(
        Evidence::from_json(b"{not json"),
        Err(EvidenceError::Unrecognized { .. })
    ));
    assert!(matches!(
        Evidence::from_json(&vec![b' '; tessera::MAX_JSON_LEN + 1]),
        Err(EvidenceError::TooLarge { .. })
    ));
}

/// Each length bound of a base64 member and of configfs-tsm evidence refuses one step past it,
/// naming what it refused, and lets its bound through to the next check.
#[test]
fn every_size_bound_rejects() {
    // Base64 of `n` bytes: at a bound, it decodes to the bound exactly.
    let b64 = |n: usize| STANDARD.encode(vec![0u8; n]);
    let too_large = |r: Result<Evidence, EvidenceError>, field: &str, len: usize, max: usize| {
        match r {
            Err(EvidenceError::TooLarge {
                what,
                len: l,
                max: m,
            }) => {
                assert_eq!((what, l, m), (field, len, max));
            }
            // The form only: accepted evidence here holds megabytes.
            other => panic!("{field}: {:?}", other.map(|e| e.form())),
        }
    };
    // `report`: MAX_REPORT_LEN decoded bytes, in both paths (at the bound: not a report, but
    // not too large either).
    let max = tessera::MAX_REPORT_LEN;
    let at = json!({"report": b64(max)});
    let over = json!({"report": b64(max + 1)});
    assert!(matches!(
        Evidence::from_kbs("snp", &at),
        Err(EvidenceError::Snp { .. })
    ));
    assert!(!matches!(
        Evidence::from_kbs_compact("snp", &at.to_string()),
        Err(EvidenceError::TooLarge { .. })
    ));
    too_large(Evidence::from_kbs("snp", &over), "report", max + 1, max);
    too_large(
        Evidence::from_kbs_compact("snp", &over.to_string()),
        "report",
        max + 1,
        max,
    );
    // Unpadded text counts the same.
    let unpadded = json!({"report": b64(max + 1).trim_end_matches('=')});
    too_large(Evidence::from_kbs("snp", &unpadded), "report", max + 1, max);
    // `quote`: MAX_QUOTE_LEN decoded bytes.
    let max = tessera::MAX_QUOTE_LEN;
    assert!(!matches!(
        Evidence::from_kbs("tdx", &json!({"quote": b64(max)})),
        Err(EvidenceError::TooLarge { .. })
    ));
    too_large(
        Evidence::from_kbs("tdx", &json!({"quote": b64(max + 1)})),
        "quote",
        max + 1,
        max,
    );
    // `cc_eventlog`: MAX_EVENTLOG_LEN decoded bytes beside a good quote.
    let (quote, _, _) = sim_quote(&QuoteSpec::tdx());
    let quote = STANDARD.encode(quote);
    let max = tessera::MAX_EVENTLOG_LEN;
    let at = json!({"quote": quote, "cc_eventlog": b64(max)});
    let e = Evidence::from_kbs("tdx", &at).unwrap();
    assert_eq!(e.cc_eventlog().unwrap().len(), max);
    let over = json!({"quote": quote, "cc_eventlog": b64(max + 1)});
    too_large(
        Evidence::from_kbs("tdx", &over),
        "cc_eventlog",
        max + 1,
        max,
    );
    // configfs-tsm: outblob and auxblob together, at most MAX_EVIDENCE_LEN.
    let max = tessera::MAX_EVIDENCE_LEN;
    let blob = vec![0u8; max + 1];
    assert!(matches!(
        Evidence::from_tsm(&blob[..max], None),
        Err(EvidenceError::Snp { .. })
    ));
    too_large(
        Evidence::from_tsm(&blob, None),
        "configfs-tsm outblob + auxblob",
        max + 1,
        max,
    );
    too_large(
        Evidence::from_tsm(&blob[..1184], Some(&blob[..max - 1183])),
        "configfs-tsm outblob + auxblob",
        max + 1,
        max,
    );
}

#[test]
fn raw_detection_names_what_it_tried() {
    let err = Evidence::from_bytes(b"hello").unwrap_err();
    let EvidenceError::Unrecognized { tried } = &err else {
        panic!("{err:?}")
    };
    let forms: Vec<Form> = tried.iter().map(|a| a.form).collect();
    assert_eq!(
        forms,
        [
            Form::KbsSnpReportJson,
            Form::Quote,
            Form::SnpHcl,
            Form::SnpReport
        ]
    );
    assert_eq!(err.check(), "parse");
    let text = err.to_string();
    for what in ["JSON", "DCAP quote", "HCL", "SEV-SNP report"] {
        assert!(text.contains(what), "{text}");
    }
    // Longer than a report: tried as an extended report.
    let err = Evidence::from_bytes(&[1u8; 2000]).unwrap_err();
    assert!(err.to_string().contains("extended"), "{err}");
    assert!(matches!(
        Evidence::from_bytes(&vec![0u8; tessera::MAX_EVIDENCE_LEN + 1]),
        Err(EvidenceError::TooLarge { .. })
    ));
}

fn sim_quote(spec: &QuoteSpec) -> (Vec<u8>, tessera::tdx::collateral::Collateral, SimPcs) {
    let pcs = SimPcs::new().unwrap();
    let platform = PlatformSpec::default();
    let pck = pcs.issue_pck(&platform).unwrap();
    let quote = pcs.quote(&pck, spec).unwrap();
    let collateral = pcs
        .collateral(&CollateralSpec::matching(
            &platform,
            spec,
            tessera::tdx::collateral::TcbStatus::UpToDate,
        ))
        .unwrap();
    (quote.to_bytes(), collateral, pcs)
}

#[test]
fn tdx_and_sgx_quotes_verify_from_kbs_json_under_a_dangerous_root() {
    for (spec, tee) in [(QuoteSpec::tdx(), Tee::Tdx), (QuoteSpec::sgx(), Tee::Sgx)] {
        let (bytes, collateral, pcs) = sim_quote(&spec);
        let raw = Evidence::from_bytes(&bytes).unwrap();
        assert_eq!(raw.tee(), tee);
        assert_eq!(raw.init_data_field().is_some(), tee == Tee::Tdx);
        let value = raw.to_kbs_json();
        let e = Evidence::from_kbs(tee.as_str(), &value).unwrap();
        assert_eq!(e.digest(), raw.digest());
        let other = if tee == Tee::Tdx { "sgx" } else { "tdx" };
        assert!(matches!(
            Evidence::from_kbs(other, &value),
            Err(EvidenceError::WrongTee { .. })
        ));
        let intel_only = Verifier::builder()
            .collateral(collateral.clone())
            .build()
            .unwrap();
        assert_eq!(
            intel_only.verify(&e, SIM_VERIFY_AT).unwrap_err().check(),
            "pck_chain"
        );
        let verifier = Verifier::builder()
            .collateral(collateral)
            .dangerous_test_root(pcs.root().clone())
            .unwrap()
            .build()
            .unwrap();
        let v = verifier.verify(&e, SIM_VERIFY_AT).unwrap();
        assert_eq!(v.tee(), tee);
        assert!(v.dangerous_test_root());
        assert_eq!(v.report_data(), e.report_data());
        assert_eq!(v.claims()["tee"], tee.as_str());
    }
}

#[test]
fn appraisal_and_ear_claims_come_from_verified_evidence() {
    let s = genoa();
    let r = report(s, |raw| raw.host_data = [0xAB; 32]);
    let e = Evidence::from_bytes(r.as_bytes()).unwrap();
    // A strict policy requires a current ARK CRL (snp.revocation = "required").
    let crl = s
        .pki
        .ark_crl(
            &[],
            UnixTime::from_secs(AT.as_secs() - 86_400),
            UnixTime::from_secs(AT.as_secs() + 30 * 86_400),
        )
        .unwrap();
    let with_crl = |s: &Snp| {
        Verifier::builder()
            .dangerous_snp_test_roots([s.pki.roots()])
            .certificates([s.vcek.certificate().clone()])
            .crls([crl.clone()])
            .build()
            .unwrap()
    };
    let v = with_crl(s).verify(&e, AT).unwrap();
    assert_eq!(v.init_data_field(), Some(&[0xAB; 32][..]));
    let strict = tessera::policy::policy_from_evidence(&v, "strict");
    let a = v.appraise(&strict);
    assert!(a.passed(), "{:#?}", a.rules());
    assert_eq!(a.tee(), Tee::Snp);
    assert_eq!(a.policy_id(), "strict");
    // Another measurement fails the same policy.
    let other = report(s, |raw| raw.measurement = [1; 48]);
    let v2 = with_crl(s)
        .verify(&Evidence::from_bytes(other.as_bytes()).unwrap(), AT)
        .unwrap();
    let failed = tessera::appraise(&v2, &strict);
    assert!(!failed.passed());
    assert!(failed.failures().any(|r| r.rule == "snp.measurement"));
    // EAR claims from the appraisal carry the TEE key without changing the verdict. The
    // evidence chains to the simulator's root, trusted only as a test root: the appraisal
    // says so, and the token never reads as one for genuine hardware.
    assert!(a.dangerous_test_root() && failed.dangerous_test_root());
    let key = json!({"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": "eA", "y": "eQ"});
    for (appraisal, status) in [(&a, "contraindicated"), (&failed, "contraindicated")] {
        let claims = tessera::EarClaims::from_appraisal(appraisal, None, AT, 300, None)
            .with_runtime_data_claims(json!({"tee-pubkey": key}));
        let j = claims.to_json();
        assert_eq!(j["submods"]["cpu0"]["ear.status"], status);
        assert_eq!(
            j["submods"]["cpu0"]["ear.trustworthiness-vector"]["hardware"],
            97
        );
        assert_eq!(
            j.pointer(
                "/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey"
            ),
            Some(&key)
        );
    }
}

fn arb_tcb(turin: bool) -> impl Strategy<Value = tessera::snp::abi::TcbParts> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(
            move |(fmc, bootloader, tee, snp, microcode)| tessera::snp::abi::TcbParts {
                fmc: turin.then_some(fmc),
                bootloader,
                tee,
                snp,
                microcode,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any report whose reserved bytes are zero survives the `sev` JSON byte for byte (the
    /// fields below are every field the JSON carries).
    #[test]
    fn sev_json_rebuilds_any_report(
        version in 2u32..=5,
        product in prop_oneof![Just(Product::Milan), Just(Product::Genoa), Just(Product::Turin)],
        words in any::<[u64; 4]>(),
        bytes in any::<[u8; 64]>(),
        small in any::<[u8; 12]>(),
        tcbs in (arb_tcb(true), arb_tcb(true), arb_tcb(true), arb_tcb(true)),
    ) {
        let turin = product == Product::Turin && version >= 3;
        let enc = |mut t: tessera::snp::abi::TcbParts| {
            if !turin { t.fmc = None; }
            zerocopy::little_endian::U64::new(
                t.encode(if turin { Product::Turin } else { Product::Genoa }).0,
            )
        };
        let mut raw: RawReport = zerocopy::FromZeros::new_zeroed();
        raw.version = version.into();
        raw.guest_svn = u32::from(small[0]).into();
        raw.policy = words[0].into();
        raw.family_id.copy_from_slice(&bytes[..16]);
        raw.image_id.copy_from_slice(&bytes[16..32]);
        raw.vmpl = u32::from(small[1] % 4).into();
        raw.signature_algo = 1u32.into();
        raw.current_tcb = enc(tcbs.0);
        raw.platform_info = words[1].into();
        raw.signer_info = u32::from(small[2]).into();
        raw.report_data = bytes;
        raw.measurement.copy_from_slice(&bytes[..48]);
        raw.host_data.copy_from_slice(&bytes[32..]);
        raw.id_key_digest.copy_from_slice(&bytes[16..]);
        raw.author_key_digest.copy_from_slice(&bytes[..48]);
        raw.report_id.copy_from_slice(&bytes[..32]);
        raw.report_id_ma.copy_from_slice(&bytes[32..]);
        raw.reported_tcb = enc(tcbs.1);
        if version >= 3 {
            let (fam, model, step) = match product {
                Product::Turin => (0x1A, 0x02, 0),
                Product::Genoa => (0x19, 0x11, small[3] % 16),
                Product::Milan => (0x19, 0x01, small[3] % 16),
            };
            raw.cpuid_fam_id = fam;
            raw.cpuid_mod_id = model;
            raw.cpuid_step = step;
        }
        raw.chip_id = bytes;
        raw.committed_tcb = enc(tcbs.2);
        raw.current_build = small[4];
        raw.current_minor = small[5];
        raw.current_major = small[6];
        raw.committed_build = small[7];
        raw.committed_minor = small[8];
        raw.committed_major = small[9];
        raw.launch_tcb = enc(tcbs.3);
        if version >= 5 {
            raw.launch_mit_vector = words[2].into();
            raw.current_mit_vector = words[3].into();
        }
        raw.signature.r[..48].copy_from_slice(&bytes[..48]);
        raw.signature.s[..48].copy_from_slice(&bytes[16..]);
        let report = AttestationReport::from_raw(raw).unwrap();
        let value = Evidence::from_bytes(report.as_bytes()).unwrap().to_kbs_json();
        let text = serde_json::to_vec(&value).unwrap();
        let back = Evidence::from_json(&text).unwrap();
        prop_assert_eq!(back.snp_report().unwrap().as_bytes(), report.as_bytes());
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        tessera::fuzz_evidence(&data);
        tessera::fuzz_kbs_json(&data);
    }

    /// Compact evidence text, as it is and with a few bytes changed, decodes as its expansion
    /// does, or is refused alike (`fuzz_kbs_json` compares the compact path with the general
    /// one, bounds what either accepts and checks the value count against the expansion). Shapes
    /// that once got past those: the evidence as a positional array (the direct path accepted
    /// it), a positional `cert_chain` entry over MAX_CERT_LEN (its length went unchecked), runs
    /// whose key is written with escapes (not counted as what they expand to).
    #[test]
    fn mutated_compact_text_decodes_as_its_expansion(
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(b"{}[]\",:0123456789AZaz+/=!. ".to_vec())),
            1..4,
        ),
        with_chain in any::<bool>(),
        shape in 0..4u8,
    ) {
        let mut value = sev_json(&report(genoa(), |_| {}));
        if with_chain {
            value["cert_chain"] = json!([{"cert_type": "VCEK", "data": vec![48u8; 64]}]);
        }
        match shape {
            1 => value = json!([value["attestation_report"], "", value["cert_chain"]]),
            2 => {
                value["cert_chain"] = json!([["VCEK", vec![48u8; tessera::MAX_CERT_LEN + 1]]]);
            }
            _ => {}
        }
        let mut text = tessera::compact::encode_text(&value.to_string()).unwrap();
        if shape == 3 {
            text = text.replace(r#""b64""#, r#""\u0062\u00364""#);
        }
        tessera::fuzz_kbs_json(text.as_bytes());
        let mut text = text.into_bytes();
        for (at, byte) in &edits {
            let i = at.index(text.len());
            text[i] = *byte;
        }
        tessera::fuzz_kbs_json(&text);
    }

    /// Mutated evidence JSON (a value replaced anywhere in the tree) never panics.
    #[test]
    fn mutated_json_never_panics(
        path in proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
        replacement in prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "\\PC{0,40}".prop_map(Value::from),
            Just(json!([])),
            Just(json!({})),
            Just(json!([300, -1, 2.5])),
        ],
    ) {
        let mut value = sev_json(&report(genoa(), |_| {}));
        let mut pointer = String::new();
        let mut slot = &value;
        for index in &path {
            match slot {
                Value::Object(m) if !m.is_empty() => {
                    let key = m.keys().nth(index.index(m.len())).unwrap();
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    slot = &m[key];
                }
                Value::Array(a) if !a.is_empty() => {
                    let i = index.index(a.len());
                    pointer.push_str(&format!("/{i}"));
                    slot = &a[i];
                }
                _ => break,
            }
        }
        *value.pointer_mut(&pointer).unwrap() = replacement;
        let text = serde_json::to_vec(&value).unwrap();
        tessera::fuzz_kbs_json(&text);
        tessera::fuzz_evidence(&text);
    }
}

#[test]
fn the_facade_types_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<Verifier>();
    shared::<Evidence>();
    shared::<tessera::VerifiedEvidence>();
    shared::<tessera::Endorsements>();
    // One verifier, many threads: clones share the caches and endorsements.
    let s = genoa();
    let verifier = sim_verifier(s);
    let e = Evidence::from_bytes(report(s, |_| {}).as_bytes()).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (v, e) = (verifier.clone(), e.clone());
            scope.spawn(move || v.verify(&e, AT).unwrap());
        }
    });
}

/// The verifier that accepted evidence last is tried first (see `first_success`); no answer
/// changes with it: tampered evidence gets the error a fresh verifier gives, and real AMD
/// evidence after simulator evidence is still accepted under AMD's roots, not marked as
/// test-root evidence.
#[test]
fn the_last_accepting_verifier_goes_first_without_changing_any_answer() {
    let s = genoa();
    let milan =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/evidence/snp-milan");
    let vcek = tessera::pki::Certificate::from_der(&std::fs::read(milan.join("vcek.der")).unwrap())
        .unwrap();
    let verifier = Verifier::builder()
        .dangerous_snp_test_roots([s.pki.roots()])
        .certificates([s.vcek.certificate().clone(), vcek])
        .build()
        .unwrap();
    let good = Evidence::from_kbs("snp", &sev_json(&report(s, |_| {}))).unwrap();
    for _ in 0..3 {
        assert!(verifier.verify(&good, AT).unwrap().dangerous_test_root());
    }
    let mut tampered = sev_json(&report(s, |_| {}));
    let x = tampered["attestation_report"]["measurement"][0]
        .as_u64()
        .unwrap();
    tampered["attestation_report"]["measurement"][0] = json!((x + 1) % 256);
    let tampered = Evidence::from_kbs("snp", &tampered).unwrap();
    let err = verifier.verify(&tampered, AT).unwrap_err();
    assert_eq!(err.check(), "report_signature");
    assert_eq!(
        err.to_string(),
        sim_verifier(s)
            .verify(&tampered, AT)
            .unwrap_err()
            .to_string()
    );
    let real = Evidence::from_bytes(&std::fs::read(milan.join("report.bin")).unwrap()).unwrap();
    let at = UnixTime::from_secs(1_664_067_328);
    let v = verifier.verify(&real, at).unwrap();
    assert!(!v.dangerous_test_root(), "AMD's roots accept real evidence");
    // Its appraisal and token are the genuine hardware's; the simulator's are not (the
    // generated policy wants a CRL, which is not given here: what differs is the instance).
    let policy = tessera::policy::policy_from_evidence(&v, "real");
    let cpu = |a: &tessera::Appraisal| {
        tessera::EarClaims::from_appraisal(a, None, at, 300, None).to_json()["submods"]["cpu0"]
            .clone()
    };
    let genuine = v.appraise(&policy);
    assert!(!genuine.dangerous_test_root());
    assert_eq!(
        cpu(&genuine)["ear.trustworthiness-vector"]["instance-identity"],
        2
    );
    let simulated = verifier.verify(&good, AT).unwrap();
    let sim_appraisal = simulated.appraise(&tessera::policy::policy_from_evidence(&simulated, "s"));
    assert!(sim_appraisal.dangerous_test_root());
    let sim_cpu = cpu(&sim_appraisal);
    assert_eq!(sim_cpu["ear.status"], "contraindicated");
    assert_eq!(sim_cpu["ear.trustworthiness-vector"]["hardware"], 97);
    assert_eq!(
        sim_cpu["ear.trustworthiness-vector"]["instance-identity"],
        97
    );
    // And the simulator's evidence is accepted again after it.
    assert!(verifier.verify(&good, AT).unwrap().dangerous_test_root());
}

/// Carried certificates are kept parsed by their exact bytes once their evidence verified: the
/// same evidence verifies again, and a carried VCEK differing in one byte is parsed and judged
/// anew (rejected as a fresh verifier rejects it).
#[test]
fn carried_certificates_are_reused_only_for_the_same_bytes() {
    let s = genoa();
    let verifier = Verifier::builder()
        .dangerous_snp_test_roots([s.pki.roots()])
        .build()
        .unwrap();
    let report = report(s, |_| {});
    let with_vcek = |der: Vec<u8>| {
        json!({
            "report": STANDARD.encode(report.as_bytes()),
            "cert_chain": [{"cert_type": "VCEK", "data": der}],
        })
    };
    let der = s.vcek.certificate().der().to_vec();
    let good = Evidence::from_kbs("snp", &with_vcek(der.clone())).unwrap();
    for _ in 0..3 {
        verifier.verify(&good, AT).unwrap();
    }
    let mut flipped = der;
    let last = flipped.len() - 1;
    flipped[last] ^= 1; // in the certificate's signature
    let bad = Evidence::from_kbs("snp", &with_vcek(flipped)).unwrap();
    let fresh = Verifier::builder()
        .dangerous_snp_test_roots([s.pki.roots()])
        .build()
        .unwrap();
    let err = verifier.verify(&bad, AT).unwrap_err();
    assert_eq!(
        err.to_string(),
        fresh.verify(&bad, AT).unwrap_err().to_string()
    );
    verifier.verify(&good, AT).unwrap();
}

/// An endorsement directory holding a FIFO (nothing ever written to it) or a link to a device
/// is refused at once instead of blocking or reading for ever; a file over the bound is refused.
#[test]
fn endorsement_files_that_are_not_regular_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("x.pem");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let started = std::time::Instant::now();
    let err = tessera::Endorsements::from_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(matches!(
        tessera::read_regular_file(&fifo, 10),
        Err(tessera::EndorsementError::Io { .. })
    ));
    std::fs::remove_file(&fifo).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.der")).unwrap();
    let err = tessera::Endorsements::from_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let big = dir.path().join("big.bin");
    std::fs::write(&big, [0u8; 11]).unwrap();
    assert!(matches!(
        tessera::read_regular_file(&big, 10),
        Err(tessera::EndorsementError::TooLarge { .. })
    ));
    assert_eq!(tessera::read_regular_file(&big, 11).unwrap().len(), 11);
}

/// A directory file larger than what its name says it is may be (certificates and CRLs over
/// the PKI parser's bound, a bundle over its own) is refused as too large; one within the
/// bound that is not what it says, as malformed.
#[test]
fn endorsement_dir_files_past_their_kinds_bound_are_too_large() {
    let pki = tessera::pki::MAX_INPUT_LEN;
    let bundle = tessera::tdx::collateral::MAX_BUNDLE_LEN;
    for (name, len, too_large) in [
        ("a.pem", pki + 1, true),
        ("a.der", pki + 1, true),
        ("a.crl", pki + 1, true),
        ("a.json", bundle + 1, true),
        ("a.pem", pki, false),
        ("a.crl", 1024, false),
        ("a.json", pki + 1, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![b' '; len];
        bytes[0] = b'{';
        std::fs::write(dir.path().join(name), &bytes).unwrap();
        let err = tessera::Endorsements::from_dir(dir.path()).unwrap_err();
        assert_eq!(
            matches!(err, tessera::EndorsementError::TooLarge { .. }),
            too_large,
            "{name} of {len} bytes: {err}"
        );
        assert!(
            matches!(
                err,
                tessera::EndorsementError::TooLarge { .. }
                    | tessera::EndorsementError::Format { .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
    // In a PCS folder too: a file over the folder's bound is too large, a small one that is no
    // collateral is malformed.
    for (len, too_large) in [
        (tessera::tdx::collateral::MAX_PCS_FILE_LEN + 1, true),
        (64, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("pcs");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("tcbinfo.json"), vec![b' '; len]).unwrap();
        let err = tessera::Endorsements::from_dir(dir.path()).unwrap_err();
        assert_eq!(
            matches!(err, tessera::EndorsementError::TooLarge { .. }),
            too_large,
            "{len}: {err}"
        );
    }
}

/// Endorsements from a source are vetted before a service holds them: held, a forged VCEK
/// with this chip's hwID and TCB would count as present, so the genuine one would never be
/// asked for again. Genuine endorsements pass; another PKI's VCEK, ASK or CRL, and another
/// PCS's collateral, are each refused, naming the check.
#[test]
fn vetting_refuses_endorsements_that_do_not_chain_to_the_roots() {
    let s = genoa();
    let verifier = Verifier::builder()
        .dangerous_snp_test_roots([s.pki.roots()])
        .build()
        .unwrap();
    let (from, until) = week_around_at();
    let mut genuine = tessera::Endorsements::new();
    genuine.add_certificates([
        s.vcek.certificate().clone(),
        s.pki.ask().clone(),
        s.pki.ark().clone(),
    ]);
    genuine.add_crls([s.pki.ark_crl(&[], from, until).unwrap()]);
    verifier.vet_endorsements(&genuine, AT).unwrap();

    let other = SimPki::new(Product::Genoa).unwrap();
    let forged_vcek = other.issue_vek(&VekSpec::vcek(Product::Genoa)).unwrap();
    let refused = |certs: Vec<tessera::pki::Certificate>, crls: Vec<tessera::pki::Crl>| {
        let mut e = tessera::Endorsements::new();
        e.add_certificates(certs);
        e.add_crls(crls);
        verifier.vet_endorsements(&e, AT).unwrap_err().check()
    };
    assert_eq!(
        refused(vec![forged_vcek.certificate().clone()], vec![]),
        "vek_chain"
    );
    // With the forger's ASK beside it, the chain still has to end at a trusted ARK.
    assert_eq!(
        refused(
            vec![forged_vcek.certificate().clone(), other.ask().clone()],
            vec![]
        ),
        "vek_chain"
    );
    assert_eq!(refused(vec![other.ask().clone()], vec![]), "vek_chain");
    assert_eq!(
        refused(vec![], vec![other.ark_crl(&[], from, until).unwrap()]),
        "revocation"
    );
    // A genuine VCEK issued for another time: not valid at AT.
    let mut late = VekSpec::vcek(Product::Genoa);
    late.not_before = UnixTime::from_secs(AT.as_secs() + 86_400);
    let late = s.pki.issue_vek(&late).unwrap();
    assert_eq!(
        refused(vec![late.certificate().clone()], vec![]),
        "vek_chain"
    );

    // Why it matters: held, the forged VCEK answers the chip's lookups.
    let e = Evidence::from_bytes(report(s, |_| {}).as_bytes()).unwrap();
    let holding = Verifier::builder()
        .dangerous_snp_test_roots([s.pki.roots()])
        .build()
        .unwrap();
    assert!(holding.needed_endorsements(&e).is_some());
    let mut forged = tessera::Endorsements::new();
    forged.add_certificates([forged_vcek.certificate().clone()]);
    holding.add_endorsements(forged);
    assert!(holding.needed_endorsements(&e).is_none());
    assert_eq!(holding.verify(&e, AT).unwrap_err().check(), "vek_chain");

    let (_, collateral, pcs) = sim_quote(&QuoteSpec::tdx());
    let (_, foreign, _) = sim_quote(&QuoteSpec::tdx());
    let tdx = Verifier::builder()
        .dangerous_test_root(pcs.root().clone())
        .unwrap()
        .build()
        .unwrap();
    let mut good = tessera::Endorsements::new();
    good.add_collateral(collateral);
    tdx.vet_endorsements(&good, SIM_VERIFY_AT).unwrap();
    let mut bad = tessera::Endorsements::new();
    bad.add_collateral(foreign);
    assert_eq!(
        tdx.vet_endorsements(&bad, SIM_VERIFY_AT)
            .unwrap_err()
            .check(),
        "tcb_info_chain"
    );
}

/// A v2 report does not name its product (no CPUID): where to ask for its CRL, or its VEK,
/// comes from a held or carried VEK's productName, else the configured product. With none of
/// them nothing can be asked for.
#[test]
fn a_v2_report_asks_for_its_endorsements_by_the_veks_or_configured_product() {
    let s = genoa();
    let v2 = report(s, |raw| {
        raw.version = 2u32.into();
        (raw.cpuid_fam_id, raw.cpuid_mod_id, raw.cpuid_step) = (0, 0, 0);
    });
    let e = Evidence::from_bytes(v2.as_bytes()).unwrap();
    let day = 86_400;
    let stale = s
        .pki
        .ark_crl(
            &[],
            UnixTime::from_secs(AT.as_secs() - 40 * day),
            UnixTime::from_secs(AT.as_secs() - 10 * day),
        )
        .unwrap();
    let crl_request = |product| tessera::EndorsementRequest::SnpCrl {
        kind: tessera::snp::certs::VekKind::Vcek,
        product,
    };
    // The VEK held (productName Genoa-B0) and the CRL stale.
    let held = sim_verifier(s);
    let mut crls = tessera::Endorsements::new();
    crls.add_crls([stale.clone()]);
    held.add_endorsements(crls);
    assert_eq!(
        held.needed_endorsements_at(&e, AT),
        Some(crl_request(Some(Product::Genoa)))
    );
    // The VEK carried in the KBS cert_chain, none held.
    let carried = Evidence::from_kbs(
        "snp",
        &json!({
            "report": STANDARD.encode(v2.as_bytes()),
            "cert_chain": [{"cert_type": "VCEK", "data": s.vcek.certificate().der()}],
        }),
    )
    .unwrap();
    let bare = |product| {
        let mut crls = tessera::Endorsements::new();
        crls.add_crls([stale.clone()]);
        Verifier::builder()
            .dangerous_snp_test_roots([s.pki.roots()])
            .snp_product(product)
            .endorsements(crls)
            .build()
            .unwrap()
    };
    assert_eq!(
        bare(None).needed_endorsements_at(&carried, AT),
        Some(crl_request(Some(Product::Genoa)))
    );
    // Nothing held or carried: the VEK is asked for under the configured product, if any.
    let vek_request = |v: &Verifier| match v.needed_endorsements(&e) {
        Some(tessera::EndorsementRequest::SnpVek { product, .. }) => product,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        vek_request(&bare(Some(Product::Genoa))),
        Some(Product::Genoa)
    );
    assert_eq!(vek_request(&bare(None)), None);
}

/// Of two collaterals held for one FMSPC, the one of the higher TCB evaluation is used, not the
/// one issued last: Intel signs TCB info for earlier evaluations with current dates too, and an
/// older evaluation may still rate a platform up to date that the newest rates out of date.
/// One that is no longer current gives way to one that is.
#[test]
fn held_collateral_is_chosen_by_evaluation_number_before_issue_date() {
    use tessera::tdx::collateral::TcbStatus;
    let spec = QuoteSpec::tdx();
    let pcs = SimPcs::new().unwrap();
    let platform = PlatformSpec::default();
    let pck = pcs.issue_pck(&platform).unwrap();
    let quote = pcs.quote(&pck, &spec).unwrap();
    let e = Evidence::from_bytes(&quote.to_bytes()).unwrap();
    let mut newest = CollateralSpec::matching(&platform, &spec, TcbStatus::OutOfDate);
    newest.tcb_evaluation_data_number = 19;
    let mut older = CollateralSpec::matching(&platform, &spec, TcbStatus::UpToDate);
    older.tcb_evaluation_data_number = 17;
    older.issue_date = UnixTime::from_secs(newest.issue_date.as_secs() + 1);
    let status_with = |specs: &[&CollateralSpec]| {
        let mut builder = Verifier::builder();
        for s in specs {
            builder = builder.collateral(pcs.collateral(s).unwrap());
        }
        let verifier = builder
            .dangerous_test_root(pcs.root().clone())
            .unwrap()
            .build()
            .unwrap();
        let v = verifier.verify(&e, SIM_VERIFY_AT).unwrap();
        v.quote().unwrap().verification().tcb.status.as_str()
    };
    assert_eq!(status_with(&[&older]), "UpToDate");
    assert_eq!(status_with(&[&newest]), "OutOfDate");
    // Either order of holding: the evaluation decides, not the later issue date.
    assert_eq!(status_with(&[&older, &newest]), "OutOfDate");
    assert_eq!(status_with(&[&newest, &older]), "OutOfDate");
    // The higher evaluation no longer current at the time of verification: the current one.
    let mut lapsed = newest.clone();
    lapsed.next_update = UnixTime::from_secs(SIM_VERIFY_AT.as_secs() - 1);
    lapsed.issue_date = UnixTime::from_secs(lapsed.next_update.as_secs() - 86_400);
    assert_eq!(status_with(&[&lapsed, &older]), "UpToDate");
    // Held and current, the quote's collateral is still what a recheck asks for.
    let verifier = Verifier::builder()
        .collateral(pcs.collateral(&newest).unwrap())
        .build()
        .unwrap();
    assert!(verifier.needed_endorsements_at(&e, SIM_VERIFY_AT).is_none());
    assert!(matches!(
        verifier.endorsements_to_recheck(&e),
        Some(tessera::EndorsementRequest::TdxCollateral { tee: "TDX", .. })
    ));
}

/// An SGX quote with only TDX collateral held is refused for the wrong type of collateral
/// (which names the mistake, as the real `sgxcoll-neg` vector expects); and of two SGX TCB
/// infos of one evaluation, version 3 (which lists advisory IDs) is chosen before version 2,
/// whichever was issued later.
#[test]
fn held_collateral_of_the_wrong_tee_is_named_and_version_3_goes_first() {
    use tessera::tdx::collateral::TcbStatus;
    let pcs = SimPcs::new().unwrap();
    let platform = PlatformSpec::default();
    let pck = pcs.issue_pck(&platform).unwrap();
    let sgx = QuoteSpec::sgx();
    let e = Evidence::from_bytes(&pcs.quote(&pck, &sgx).unwrap().to_bytes()).unwrap();
    let tdx_only = pcs
        .collateral(&CollateralSpec::matching(
            &platform,
            &QuoteSpec::tdx(),
            TcbStatus::UpToDate,
        ))
        .unwrap();
    let verifier = Verifier::builder()
        .collateral(tdx_only)
        .dangerous_test_root(pcs.root().clone())
        .unwrap()
        .build()
        .unwrap();
    let err = verifier.verify(&e, SIM_VERIFY_AT).unwrap_err();
    assert_eq!(err.check(), "tcb_info", "{err}");
    assert!(
        !matches!(err, VerifyError::MissingCollateral { .. }),
        "{err:?}"
    );

    let v3 = CollateralSpec::matching(&platform, &sgx, TcbStatus::OutOfDate);
    let mut v2 = v3.clone();
    v2.version = 2;
    v2.issue_date = UnixTime::from_secs(v3.issue_date.as_secs() + 1);
    for order in [[&v2, &v3], [&v3, &v2]] {
        let mut builder = Verifier::builder();
        for s in order {
            builder = builder.collateral(pcs.collateral(s).unwrap());
        }
        let verifier = builder
            .dangerous_test_root(pcs.root().clone())
            .unwrap()
            .build()
            .unwrap();
        let v = verifier.verify(&e, SIM_VERIFY_AT).unwrap();
        let tcb = &v.quote().unwrap().verification().tcb;
        assert!(tcb.platform_advisories_listed);
        assert_eq!(tcb.advisory_ids, ["INTEL-SA-00001"]);
    }
}

/// Endorsements added again and again (a source asked every minute whose CRLs are reissued)
/// do not pile up: a CRL that had expired two days before another of its issuer was issued is
/// dropped; one current within that margin stays, for evidence verified again at an earlier
/// time. Every current CRL of an issuer is applied, not only the newest: AMD's VCEK and VLEK
/// CRLs are both the ARK's, and a newer CRL of one must not hide what the other revokes.
#[test]
fn held_crls_are_dropped_only_long_after_they_were_replaced_and_all_current_apply() {
    let s = genoa();
    let e = Evidence::from_bytes(report(s, |_| {}).as_bytes()).unwrap();
    let day = 86_400;
    let secs = |d: i64| UnixTime::from_secs(AT.as_secs() + d * day);
    let crl = |revoked: &[&tessera::pki::Certificate], from: i64, to: i64| {
        s.pki.ark_crl(revoked, secs(from), secs(to)).unwrap()
    };
    let ders = |e: &tessera::Endorsements| -> Vec<Vec<u8>> {
        e.crls().iter().map(|c| c.der().to_vec()).collect()
    };
    // Ten CRLs of a day each, five days apart: only the newest is kept.
    let mut held = tessera::Endorsements::new();
    let mut all = Vec::new();
    for k in 0..10 {
        let c = crl(&[], -5 * (9 - k), -5 * (9 - k) + 1);
        let mut more = tessera::Endorsements::new();
        more.add_crls([c.clone()]);
        held.extend(more);
        all.push(c);
    }
    assert_eq!(ders(&held), vec![all[9].der().to_vec()]);
    // One that expired a day before the newest was issued stays (within the margin).
    let recent = crl(&[], -10, -1);
    let newest = crl(&[], 0, 30);
    let mut both = tessera::Endorsements::new();
    both.add_crls([recent.clone(), newest.clone()]);
    both.extend(tessera::Endorsements::new());
    assert_eq!(ders(&both).len(), 2);
    // Two current CRLs of the ARK, the older revoking the ASK: it is applied too.
    let verifier = sim_verifier(s);
    let mut two = tessera::Endorsements::new();
    two.add_crls([crl(&[s.pki.ask()], -2, 30), crl(&[], -1, 30)]);
    verifier.add_endorsements(two);
    assert_eq!(verifier.verify(&e, AT).unwrap_err().check(), "revocation");
    // Neither revoking: verified with revocation checked.
    let verifier = sim_verifier(s);
    let mut clean = tessera::Endorsements::new();
    clean.add_crls([crl(&[], -2, 30), crl(&[], -1, 30)]);
    verifier.add_endorsements(clean);
    let v = verifier.verify(&e, AT).unwrap();
    assert_eq!(v.verification()["revocation_checked"], true);
}

/// The collateral of the higher TCB evaluation is used, but not its CRLs when another held
/// collateral has newer ones: a PCK CRL revoking the PCK, brought by a recheck with the
/// standard evaluation's collateral while a bundle's early one is held, is applied.
#[test]
fn the_newest_pck_crl_held_is_applied_whichever_collateral_is_chosen() {
    use tessera::tdx::collateral::TcbStatus;
    let spec = QuoteSpec::tdx();
    let pcs = SimPcs::new().unwrap();
    let platform = PlatformSpec::default();
    let pck = pcs.issue_pck(&platform).unwrap();
    let platform_serial = platform.serial;
    let quote = pcs.quote(&pck, &spec).unwrap();
    let e = Evidence::from_bytes(&quote.to_bytes()).unwrap();
    let day = 86_400;
    let at = |d: i64| UnixTime::from_secs(SIM_VERIFY_AT.as_secs() + d * day);
    // Chosen (evaluation 19), with a CRL from ten days before.
    let mut early = CollateralSpec::matching(&platform, &spec, TcbStatus::UpToDate);
    early.tcb_evaluation_data_number = 19;
    early.crl_dates = Some((at(-10), Some(at(20))));
    // Evaluation 17, with a CRL of yesterday that revokes the PCK.
    let mut standard = early.clone();
    standard.tcb_evaluation_data_number = 17;
    standard.crl_dates = Some((at(-1), Some(at(29))));
    standard.revoked_pcks = vec![platform.serial];
    let build = |specs: &[&CollateralSpec], allow_missing_crls: bool| {
        let mut builder = Verifier::builder().allow_missing_crls(allow_missing_crls);
        for s in specs {
            builder = builder.collateral(pcs.collateral(s).unwrap());
        }
        builder
            .dangerous_test_root(pcs.root().clone())
            .unwrap()
            .build()
            .unwrap()
    };
    let verifier = |specs: &[&CollateralSpec]| build(specs, false);
    verifier(&[&early]).verify(&e, SIM_VERIFY_AT).unwrap();
    for held in [[&early, &standard], [&standard, &early]] {
        assert_eq!(
            verifier(&held)
                .verify(&e, SIM_VERIFY_AT)
                .unwrap_err()
                .check(),
            "revocation"
        );
    }
    // Chosen without CRLs (a partial bundle of the higher evaluation): the other's are used,
    // so missing CRLs allowed does not mean a revocation held is missed.
    let mut partial = early.clone();
    (partial.pck_crl, partial.root_ca_crl) = (false, false);
    let allowing = |specs: &[&CollateralSpec]| build(specs, true);
    let v = allowing(&[&partial]).verify(&e, SIM_VERIFY_AT).unwrap();
    assert!(!v.quote().unwrap().verification().revocation_checked);
    assert_eq!(
        allowing(&[&partial, &standard])
            .verify(&e, SIM_VERIFY_AT)
            .unwrap_err()
            .check(),
        "revocation"
    );
    // Chosen with the other CA's PCK CRL (the Processor CA's, newer): the PCK's own CA's
    // CRL, which another collateral holds, is the one applied.
    let mut processor = early.clone();
    processor.processor_ca_crl = true;
    processor.crl_dates = Some((at(-1), Some(at(29))));
    let mut own_ca = early.clone();
    own_ca.tcb_evaluation_data_number = 17;
    verifier(&[&processor])
        .verify(&e, SIM_VERIFY_AT)
        .unwrap_err();
    verifier(&[&processor, &own_ca])
        .verify(&e, SIM_VERIFY_AT)
        .unwrap();
    own_ca.revoked_pcks = vec![platform_serial];
    assert_eq!(
        verifier(&[&processor, &own_ca])
            .verify(&e, SIM_VERIFY_AT)
            .unwrap_err()
            .check(),
        "revocation"
    );
    // A CRL older than the chosen one's is not used (though it lists the PCK): the newest is
    // the one in force.
    let mut older = early.clone();
    older.tcb_evaluation_data_number = 17;
    older.crl_dates = Some((at(-20), Some(at(10))));
    older.revoked_pcks = vec![platform_serial];
    verifier(&[&early, &older])
        .verify(&e, SIM_VERIFY_AT)
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A simulator report and a certificate table holding its VCEK, a few bytes of either
    /// changed, the table cut or dropped: the configfs-tsm parts read as the joined file does
    /// (`tessera::tsm_agrees_with_bytes`), and unchanged parts are accepted as `SnpTsm`.
    #[test]
    fn tsm_parts_read_as_the_joined_file(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in prop::option::weighted(0.2, any::<prop::sample::Index>()),
    ) {
        let s = genoa();
        let report = report(s, |_| ());
        let table = tessera::snp::abi::CertTable {
            entries: vec![tessera::snp::abi::CertTableEntry {
                guid: tessera::snp::abi::Guid::VCEK,
                data: s.vcek.certificate().der().to_vec(),
            }],
        };
        let mut data = report.as_bytes().to_vec();
        data.extend_from_slice(&table.to_bytes());
        if edits.is_empty() && cut.is_none() {
            let (out, aux) = data.split_at(tessera::snp::abi::REPORT_SIZE);
            let e = Evidence::from_tsm(out, Some(aux)).unwrap();
            prop_assert_eq!(e.form(), Form::SnpTsm);
        }
        for (at, b) in edits {
            let i = at.index(data.len());
            data[i] = b;
        }
        if let Some(at) = cut {
            data.truncate(at.index(data.len()));
        }
        tessera::tsm_agrees_with_bytes(&data);
    }
}
