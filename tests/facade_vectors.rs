//! The facade over real-hardware vectors: every evidence form detected, the CoCo guest's KBS
//! JSON rebuilt to its raw report byte for byte, and verification through `tessera::Verifier`
//! with endorsements carried, configured or missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use serde_json::{Value, json};
use tessera::pki::{UnixTime, load_certificates};
use tessera::{Endorsements, Evidence, EvidenceError, Form, Tee, Verifier};

fn at(case: &Path) -> UnixTime {
    let c = common::case(case);
    UnixTime::parse_rfc3339(c["at"].as_str().unwrap()).unwrap()
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn trustee_e2e_evidence_json_rebuilds_report_bin_byte_for_byte() {
    let Some(v) = common::vectors() else { return };
    let case = v.join("snp/genoa-v3_trustee-e2e");
    let json_bytes = std::fs::read(case.join("evidence.json")).unwrap();
    let raw = std::fs::read(case.join("report.bin")).unwrap();

    let from_json = Evidence::from_json(&json_bytes).unwrap();
    assert_eq!(from_json.form(), Form::KbsSnpReportJson);
    assert_eq!(from_json.snp_report().unwrap().as_bytes(), raw.as_slice());
    assert_eq!(from_json.signed_evidence(), raw);
    assert_eq!(from_json.cert_chain_len(), 1);

    // Detection from bytes finds the same; the KBS entry point with the right TEE too.
    let detected = Evidence::from_bytes(&json_bytes).unwrap();
    assert_eq!(detected.form(), Form::KbsSnpReportJson);
    let value: Value = serde_json::from_slice(&json_bytes).unwrap();
    let kbs = Evidence::from_kbs("snp", &value).unwrap();
    assert_eq!(kbs.tee(), Tee::Snp);
    assert_eq!(kbs.report_data(), from_json.report_data());
    assert_eq!(kbs.init_data_field().unwrap().len(), 32);

    // The broker's path: the text in compact form, decoded straight into the same evidence.
    let compact = tessera::compact::encode_text(std::str::from_utf8(&json_bytes).unwrap())
        .expect("the CoCo evidence has a compact form");
    assert!(compact.len() < json_bytes.len());
    let from_compact = Evidence::from_kbs_compact("snp", &compact).unwrap();
    assert_eq!(from_compact.form(), Form::KbsSnpReportJson);
    assert_eq!(
        from_compact.snp_report().unwrap().as_bytes(),
        raw.as_slice()
    );
    assert_eq!(from_compact.digest(), from_json.digest());
    assert_eq!(from_compact.to_kbs_json(), from_json.to_kbs_json());

    // One digest for the JSON and the raw forms of one report.
    let from_raw = Evidence::from_bytes(&raw).unwrap();
    assert_eq!(from_raw.form(), Form::SnpReport);
    assert_eq!(from_raw.digest(), from_json.digest());
    assert_eq!(from_json.digest().len(), 96);

    // Written back, it is the guest's JSON (this older `sev` omits the v5 mitigation vectors).
    let mut again = from_json.to_kbs_json();
    for absent in ["launch_mit_vector", "current_mit_vector"] {
        let report = again["attestation_report"].as_object_mut().unwrap();
        assert_eq!(report.remove(absent), Some(Value::Null));
    }
    assert_eq!(again, value);

    // The wrong TEE for the JSON is refused.
    for tee in ["tdx", "sgx"] {
        let err = Evidence::from_kbs(tee, &value).unwrap_err();
        assert!(matches!(err, EvidenceError::WrongTee { .. }), "{err}");
        assert_eq!(err.check(), "tee");
    }
    assert!(matches!(
        Evidence::from_kbs("az-snp-vtpm", &value),
        Err(EvidenceError::UnsupportedTee(_))
    ));
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn kbs_snp_json_verifies_with_its_cert_chain_or_the_configured_vcek() {
    let Some(v) = common::vectors() else { return };
    let case = v.join("snp/genoa-v3_trustee-e2e");
    let at = at(&case);
    let mut value: Value =
        serde_json::from_slice(&std::fs::read(case.join("evidence.json")).unwrap()).unwrap();
    let verifier = Verifier::new().unwrap();

    // The VCEK travels in cert_chain; the Genoa ASK and ARK are built in.
    let evidence = Evidence::from_kbs("snp", &value).unwrap();
    let verified = verifier.verify(&evidence, at).unwrap();
    assert_eq!(verified.tee(), Tee::Snp);
    assert_eq!(verified.report_data(), evidence.report_data());
    assert_eq!(verified.digest(), evidence.digest());
    assert!(!verified.dangerous_test_root());
    assert_eq!(verified.claims()["measurement"].as_str().unwrap().len(), 96);

    // cert_chain null: no VCEK anywhere is a rejection naming the endorsement...
    value["cert_chain"] = Value::Null;
    let bare = Evidence::from_kbs("snp", &value).unwrap();
    let err = verifier.verify(&bare, at).unwrap_err();
    assert_eq!(err.check(), "endorsement", "{err}");
    let need = verifier.needed_endorsements(&bare).unwrap();
    assert!(matches!(need, tessera::EndorsementRequest::SnpVek { .. }));

    // ...and the VCEK from the configured endorsements verifies it.
    let vcek = load_certificates(&std::fs::read(case.join("vcek.der")).unwrap()).unwrap();
    let configured = Verifier::builder()
        .certificates(vcek.clone())
        .build()
        .unwrap();
    assert!(configured.needed_endorsements(&bare).is_none());
    configured.verify(&bare, at).unwrap();

    // Added later (the fetcher seam), shared by clones.
    let later = Verifier::new().unwrap();
    let clone = later.clone();
    let mut e = Endorsements::new();
    e.add_certificates(vcek);
    later.add_endorsements(e);
    clone.verify(&bare, at).unwrap();

    // A directory of VCEKs, read when the verifier is built.
    let dir = std::env::temp_dir().join(format!("tessera-facade-vceks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(case.join("vcek.der"), dir.join("genoa.der")).unwrap();
    std::fs::write(dir.join("README"), "not read").unwrap();
    let from_dir = Verifier::builder()
        .endorsement_dir(&dir)
        .unwrap()
        .build()
        .unwrap();
    from_dir.verify(&bare, at).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    // A changed measurement no longer verifies.
    value["attestation_report"]["measurement"][0] = json!(0);
    let tampered = Evidence::from_kbs("snp", &value).unwrap();
    let err = configured.verify(&tampered, at).unwrap_err();
    assert_eq!(err.check(), "report_signature", "{err}");
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn every_raw_form_is_detected() {
    let Some(v) = common::vectors() else { return };
    let tsm = v.join("snp/genoa-v3_veraison-tsm");
    let out = std::fs::read(tsm.join("report.bin")).unwrap();
    let aux = std::fs::read(tsm.join("auxblob.bin")).unwrap();
    let e = Evidence::from_tsm(&out, Some(&aux)).unwrap();
    assert_eq!(e.form(), Form::SnpTsm);
    let mut extended = out.clone();
    extended.extend_from_slice(&aux);
    let e2 = Evidence::from_bytes(&extended).unwrap();
    assert_eq!(e2.form(), Form::SnpExtended);
    assert_eq!(e.digest(), e2.digest());
    // The configfs-tsm report verifies with the VCEK from its auxblob alone.
    Verifier::new().unwrap().verify(&e, at(&tsm)).unwrap();

    let hcl =
        std::fs::read(v.join("snp/milan-v3_azure_trustee-evidence-v1/hcl_report.bin")).unwrap();
    assert_eq!(Evidence::from_bytes(&hcl).unwrap().form(), Form::SnpHcl);

    let case = v.join("tdx/auto-tdx-v4-00806f-2025-06");
    let quote = std::fs::read(case.join("quote.bin")).unwrap();
    let e = Evidence::from_bytes(&quote).unwrap();
    assert_eq!((e.form(), e.tee()), (Form::Quote, Tee::Tdx));
    assert_eq!(e.init_data_field().unwrap().len(), 48);
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn tdx_quote_verifies_through_the_facade_raw_and_as_kbs_json() {
    let Some(v) = common::vectors() else { return };
    use base64::Engine as _;
    let case = v.join("tdx/auto-tdx-v4-00806f-2025-06");
    let quote = std::fs::read(case.join("quote.bin")).unwrap();
    let collateral = tessera::tdx::collateral::Collateral::from_bundle_json(
        &std::fs::read(case.join("collateral.json")).unwrap(),
    )
    .unwrap();
    let at = at(&case);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&quote);
    let value = json!({"quote": b64, "cc_eventlog": base64::engine::general_purpose::STANDARD.encode(b"log")});
    let e = Evidence::from_kbs("tdx", &value).unwrap();
    assert_eq!(e.form(), Form::KbsQuote);
    assert_eq!(e.cc_eventlog(), Some(&b"log"[..]));
    assert!(matches!(
        Evidence::from_kbs("snp", &value),
        Err(EvidenceError::WrongTee { .. })
    ));
    assert!(matches!(
        Evidence::from_kbs("sgx", &value),
        Err(EvidenceError::WrongTee { .. })
    ));

    // No collateral held: a rejection naming it, and the request a fetcher would serve.
    let bare = Verifier::new().unwrap();
    let err = bare.verify(&e, at).unwrap_err();
    assert_eq!(err.check(), "collateral");
    assert!(matches!(
        bare.needed_endorsements(&e),
        Some(tessera::EndorsementRequest::TdxCollateral { tee: "TDX", .. })
    ));

    let verifier = Verifier::builder()
        .collateral(collateral.clone())
        .build()
        .unwrap();
    assert!(verifier.needed_endorsements(&e).is_none());
    // Held collateral is enough while it is current; once its TCB info is past its next update,
    // the verifier asks for collateral again (so a long-running broker refreshes it).
    assert!(verifier.needed_endorsements_at(&e, at).is_none());
    let expired = collateral.tcb_info().value().next_update;
    assert!(matches!(
        verifier.needed_endorsements_at(&e, expired),
        Some(tessera::EndorsementRequest::TdxCollateral { tee: "TDX", .. })
    ));
    assert!(verifier.needed_endorsements(&e).is_none());
    // The same collateral handed back again (an offline cache holding only the expired copy)
    // is not held twice, so repeated refusals do not grow the verifier.
    let mut held = tessera::Endorsements::new();
    held.add_collateral(collateral.clone());
    let mut again = tessera::Endorsements::new();
    again.add_collateral(collateral.clone());
    held.extend(again.clone());
    assert_eq!(held.collateral().len(), 1);
    verifier.add_endorsements(again);
    assert!(verifier.needed_endorsements_at(&e, expired).is_some());
    let verified = verifier.verify(&e, at).unwrap();
    assert_eq!(verified.tee(), Tee::Tdx);
    assert_eq!(
        verified.digest(),
        Evidence::from_bytes(&quote).unwrap().digest()
    );
    assert!(verified.verification()["tcb_status"].is_string());
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn an_endorsement_directory_applies_only_the_crls_of_the_chain() {
    let Some(v) = common::vectors() else { return };
    let case = v.join("snp/milan-v2_steward-csr");
    let dir = std::env::temp_dir().join(format!("tessera-facade-crls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(case.join("vcek.der"), dir.join("vcek.der")).unwrap();
    let crls = v.join("roots/amd/crls");
    for name in [
        "ark-milan_crl_2022-05-09.der",
        "ark-genoa_crl_2022-10-31.der",
    ] {
        std::fs::copy(crls.join(name), dir.join(name.replace(".der", ".crl"))).unwrap();
    }
    // A PCS folder of Intel collateral beside the AMD files.
    let pcs = v.join("tdx/auto-tdx-v4-00806f-2025-06/collateral");
    let sub = dir.join("pcs-00806f050000");
    std::fs::create_dir_all(&sub).unwrap();
    for f in std::fs::read_dir(&pcs).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, sub.join(f.file_name().unwrap())).unwrap();
    }
    let verifier = Verifier::builder()
        .endorsement_dir(&dir)
        .unwrap()
        .build()
        .unwrap();
    let report = Evidence::from_bytes(&std::fs::read(case.join("report.bin")).unwrap()).unwrap();
    let at = UnixTime::parse_rfc3339("2022-09-30T12:48:56Z").unwrap();
    let verified = verifier.verify(&report, at).unwrap();
    // The Milan CRL was applied; the Genoa one, which is not on this chain, was not.
    assert_eq!(verified.verification()["revocation_checked"], true);
    // The quote finds the collateral read from the sub-folder.
    let tdx = v.join("tdx/auto-tdx-v4-00806f-2025-06");
    let quote = Evidence::from_bytes(&std::fs::read(tdx.join("quote.bin")).unwrap()).unwrap();
    assert!(verifier.needed_endorsements(&quote).is_none());
    verifier.verify(&quote, at_of(&tdx)).unwrap();

    // A file that is not what its name says is an error naming it.
    std::fs::write(dir.join("broken.pem"), "not a certificate").unwrap();
    let err = Verifier::builder().endorsement_dir(&dir).unwrap_err();
    assert!(err.to_string().contains("broken.pem"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(Verifier::builder().endorsement_dir(&dir).is_err());
}

fn at_of(case: &Path) -> UnixTime {
    at(case)
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn with_test_roots_configured_real_evidence_still_fails_for_its_own_reason() {
    let Some(v) = common::vectors() else { return };
    let case = v.join("snp/genoa-v3_trustee-e2e");
    let mut value: Value =
        serde_json::from_slice(&std::fs::read(case.join("evidence.json")).unwrap()).unwrap();
    value["attestation_report"]["report_data"][0] = json!(1);
    let tampered = Evidence::from_kbs("snp", &value).unwrap();
    let pki = tessera::snp::sim::SimPki::new(tessera::snp::abi::Product::Genoa).unwrap();
    let verifier = Verifier::builder()
        .dangerous_snp_test_roots([pki.roots()])
        .build()
        .unwrap();
    // AMD's roots anchor the chain; the signature is what fails, not "no chain to the test root".
    let err = verifier.verify(&tampered, at(&case)).unwrap_err();
    assert_eq!(err.check(), "report_signature", "{err}");
}

/// Vetting (what the broker runs before it holds endorsements from its collateral cache) keeps
/// no genuine vendor endorsement out: every real VEK with its chain that verification accepts,
/// AMD's recorded CRLs, and the collateral of every accepted TDX/SGX quote pass it under the
/// vendors' roots; a real VCEK whose signature was tampered with does not.
#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn real_vendor_endorsements_pass_vetting_and_a_tampered_vcek_does_not() {
    let Some(v) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    let endorsements = |case: &Path| {
        let c = common::case(case);
        let mut e = Endorsements::new();
        for f in c["certs"].as_array().into_iter().flatten() {
            let bytes = std::fs::read(case.join(f.as_str().unwrap())).unwrap();
            e.add_certificates(load_certificates(&bytes).unwrap());
        }
        e
    };
    let mut vetted = 0;
    for case in common::cases(&v, "snp") {
        let c = common::case(&case);
        let verdict = c["expect"]["verdict"].as_str().unwrap();
        if !["accept", "certs"].contains(&verdict) {
            continue;
        }
        let e = endorsements(&case);
        verifier
            .vet_endorsements(&e, at(&case))
            .unwrap_or_else(|err| panic!("{}: {err}", case.display()));
        vetted += 1;
    }
    assert!(vetted >= 50, "only {vetted} SNP cases vetted");
    let tampered = v.join("snp/neg_trustee_vcek-tampered-legacy-hwid");
    assert_eq!(
        verifier
            .vet_endorsements(&endorsements(&tampered), at(&tampered))
            .unwrap_err()
            .check(),
        "vek_chain"
    );
    for f in std::fs::read_dir(v.join("roots/amd/crls")).unwrap() {
        let crls = tessera::pki::load_crls(&std::fs::read(f.unwrap().path()).unwrap()).unwrap();
        let at = crls[0].this_update();
        let mut e = Endorsements::new();
        e.add_crls(crls);
        verifier.vet_endorsements(&e, at).unwrap();
    }
    let mut quotes = 0;
    for tee in ["tdx", "sgx"] {
        for case in common::cases(&v, tee) {
            let c = common::case(&case);
            let Some(file) = c["collateral"].as_str() else {
                continue;
            };
            if c["expect"]["verdict"] != "accept" {
                continue;
            }
            let collateral = tessera::tdx::collateral::Collateral::from_bundle_json(
                &std::fs::read(case.join(file)).unwrap(),
            )
            .unwrap();
            let mut e = Endorsements::new();
            e.add_collateral(collateral);
            verifier
                .vet_endorsements(&e, at(&case))
                .unwrap_or_else(|err| panic!("{}: {err}", case.display()));
            quotes += 1;
        }
    }
    assert!(quotes >= 10, "only {quotes} quote cases vetted");
}
