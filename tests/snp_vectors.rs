//! Conformance over the real-hardware SEV-SNP vectors: every case's verdict at its `at` time,
//! the facts it lists, and single-byte changes to real reports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use tessera::pki::{Certificate, Crl, UnixTime, load_certificates, load_crls};
use tessera::snp::abi::{AttestationReport, HclReport, Product, SnpEvidence};
use tessera::snp::{SnpError, TrustAnchors, Verifier};

struct Case {
    name: String,
    json: serde_json::Value,
    dir: std::path::PathBuf,
}

impl Case {
    fn certs(&self) -> Vec<Certificate> {
        self.json["certs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| {
                load_certificates(&std::fs::read(self.dir.join(f.as_str().unwrap())).unwrap())
                    .unwrap()
            })
            .collect()
    }
    fn crls(&self) -> Vec<Crl> {
        self.json["crls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| {
                load_crls(&std::fs::read(self.dir.join(f.as_str().unwrap())).unwrap()).unwrap()
            })
            .collect()
    }
    fn at(&self) -> UnixTime {
        UnixTime::parse_rfc3339(self.json["at"].as_str().unwrap()).unwrap()
    }
    fn verdict(&self) -> &str {
        self.json["expect"]["verdict"].as_str().unwrap()
    }
    fn evidence(&self) -> Option<Vec<u8>> {
        self.json["evidence"]
            .as_str()
            .map(|f| std::fs::read(self.dir.join(f)).unwrap())
    }
}

fn snp_cases(vectors: &Path) -> Vec<Case> {
    common::cases(vectors, "snp")
        .into_iter()
        .map(|dir| Case {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            json: common::case(&dir),
            dir,
        })
        .collect()
}

fn product_of(case: &Case) -> Option<Product> {
    case.json["facts"]["product"]
        .as_str()
        .and_then(|p| p.parse().ok())
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn every_snp_case_meets_its_expected_verdict() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let verifier = Verifier::new(TrustAnchors::amd().unwrap());
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for case in snp_cases(&vectors) {
        let verdict = case.verdict().to_owned();
        *counts.entry(verdict.clone()).or_default() += 1;
        match verdict.as_str() {
            "accept" => {
                let evidence = SnpEvidence::parse(&case.evidence().unwrap())
                    .unwrap_or_else(|e| panic!("{}: parse: {e}", case.name));
                let v = verifier
                    .verify_evidence(evidence, &case.certs(), &case.crls(), case.at(), None)
                    .unwrap_or_else(|e| panic!("{}: expected accept, got {e}", case.name));
                let facts = &case.json["facts"];
                let ver = v.verification();
                assert_eq!(
                    Some(ver.product),
                    product_of(&case),
                    "{}: product",
                    case.name
                );
                assert_eq!(
                    ver.signer.name(),
                    facts["signing_key"].as_str().unwrap(),
                    "{}: signer",
                    case.name
                );
                assert_eq!(
                    u64::from(v.report().vmpl()),
                    facts["vmpl"].as_u64().unwrap()
                );
                assert_eq!(
                    u64::from(v.report().version()),
                    facts["report_version"].as_u64().unwrap()
                );
                let tcb = &facts["reported_tcb"];
                assert_eq!(
                    u64::from(ver.reported_tcb.bootloader),
                    tcb["bl"].as_u64().unwrap(),
                    "{}",
                    case.name
                );
                assert_eq!(
                    u64::from(ver.reported_tcb.snp),
                    tcb["snp"].as_u64().unwrap(),
                    "{}",
                    case.name
                );
                assert_eq!(
                    u64::from(ver.reported_tcb.microcode),
                    tcb["ucode"].as_u64().unwrap(),
                    "{}",
                    case.name
                );
                // The same case verifies with the product named by the caller, and not with another.
                let p = ver.product;
                let report = v.report().clone();
                let certs = case.certs();
                verifier
                    .verify(&report, &certs, &[], case.at(), Some(p))
                    .unwrap();
                let other = if p == Product::Milan {
                    Product::Genoa
                } else {
                    Product::Milan
                };
                let err = verifier
                    .verify(&report, &certs, &[], case.at(), Some(other))
                    .unwrap_err();
                assert_eq!(err.check(), "product", "{}", case.name);
            }
            "reject" => {
                let result = match case.evidence() {
                    Some(bytes) => {
                        SnpEvidence::parse(&bytes)
                            .map_err(SnpError::from)
                            .and_then(|ev| {
                                verifier
                                    .verify_evidence(
                                        ev,
                                        &case.certs(),
                                        &case.crls(),
                                        case.at(),
                                        None,
                                    )
                                    .map(|_| ())
                            })
                    }
                    None => verifier
                        .verify_chain(&case.certs(), &case.crls(), case.at(), None)
                        .map(|_| ()),
                };
                let err = result.expect_err(&case.name);
                eprintln!("{}: rejected as expected: {err}", case.name);
            }
            "parse" => {
                let ev = SnpEvidence::parse(&case.evidence().unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                assert!(matches!(ev, SnpEvidence::Report(_)));
            }
            "certs" => {
                let chain = verifier
                    .verify_chain(&case.certs(), &case.crls(), case.at(), None)
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                assert_eq!(Some(chain.product), product_of(&case), "{}", case.name);
                let vek = chain.vek.expect("leaf is a VEK");
                assert_eq!(
                    vek.kind().name(),
                    case.json["facts"]["signing_key"].as_str().unwrap()
                );
            }
            other => panic!("{}: unknown verdict {other}", case.name),
        }
    }
    eprintln!("SNP cases by verdict: {counts:?}");
    assert!(
        counts.get("accept").copied().unwrap_or(0) >= 40,
        "{counts:?}"
    );
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn negative_cases_fail_at_the_named_check() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let verifier = Verifier::new(TrustAnchors::amd().unwrap());
    let by_name: std::collections::HashMap<String, Case> = snp_cases(&vectors)
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let check_of = |name: &str| -> &'static str {
        let case = &by_name[name];
        let result = match case.evidence() {
            Some(bytes) => SnpEvidence::parse(&bytes)
                .map_err(SnpError::from)
                .and_then(|ev| {
                    verifier
                        .verify_evidence(ev, &case.certs(), &case.crls(), case.at(), None)
                        .map(|_| ())
                }),
            None => verifier
                .verify_chain(&case.certs(), &case.crls(), case.at(), None)
                .map(|_| ()),
        };
        result.unwrap_err().check()
    };
    assert_eq!(
        check_of("neg_constellation_azure-report-sig-mismatch"),
        "report_signature"
    );
    assert_eq!(
        check_of("neg_constellation_vlek-report-byte-flipped"),
        "report_signature"
    );
    assert_eq!(check_of("neg_lit_report-truncated-793"), "parse");
    assert_eq!(check_of("neg_lit_report-bad-sig-1185"), "parse");
    assert_eq!(check_of("neg_steward_genoa-revoked-ask"), "revocation");
    assert_eq!(
        check_of("neg_trustee_vcek-tampered-legacy-hwid"),
        "vek_chain"
    );
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn azure_hcl_reports_bind_their_runtime_data() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let verifier = Verifier::new(TrustAnchors::amd().unwrap());
    let mut seen = 0;
    for case in snp_cases(&vectors) {
        let Ok(bytes) = std::fs::read(case.dir.join("hcl_report.bin")) else {
            continue;
        };
        if case.verdict() != "accept" {
            continue;
        }
        seen += 1;
        let hcl = HclReport::parse(&bytes).unwrap();
        let certs = case.certs();
        verifier
            .verify_evidence(SnpEvidence::Hcl(hcl.clone()), &certs, &[], case.at(), None)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // Changing the runtime data (unsigned by the report) breaks the binding.
        let mut data = hcl.runtime_data().to_vec();
        data[10] ^= 1;
        let tampered = HclReport::new(hcl.report.clone(), hcl.hash_type, data);
        let err = verifier
            .verify_evidence(SnpEvidence::Hcl(tampered), &certs, &[], case.at(), None)
            .unwrap_err();
        assert_eq!(err.check(), "hcl_report_data", "{}", case.name);
    }
    assert!(seen >= 4, "expected the Azure HCL cases, saw {seen}");
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn configfs_tsm_outblob_and_auxblob_verify_without_extra_certs() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let dir = vectors.join("snp/genoa-v3_veraison-tsm");
    let case = common::case(&dir);
    let at = UnixTime::parse_rfc3339(case["at"].as_str().unwrap()).unwrap();
    let ev = SnpEvidence::from_tsm(
        &std::fs::read(dir.join("report.bin")).unwrap(),
        Some(&std::fs::read(dir.join("auxblob.bin")).unwrap()),
    )
    .unwrap();
    let verifier = Verifier::new(TrustAnchors::amd().unwrap());
    let v = verifier.verify_evidence(ev, &[], &[], at, None).unwrap();
    assert_eq!(v.verification().product, Product::Genoa);
    // Without the auxblob there is no VCEK.
    let bare =
        SnpEvidence::from_tsm(&std::fs::read(dir.join("report.bin")).unwrap(), None).unwrap();
    assert_eq!(
        verifier
            .verify_evidence(bare, &[], &[], at, None)
            .unwrap_err()
            .check(),
        "endorsement"
    );
}

/// Flip every byte of the signed part and of R and S: each change must be rejected.
#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn any_single_byte_change_of_a_real_report_is_rejected() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let verifier = Verifier::new(TrustAnchors::amd().unwrap());
    for name in [
        "milan-v3_oak-rk_20241205-4bf52c",
        "genoa-v5_oak-genoa_oc-6d1cef",
        "milan-v2-vlek_aws_trustee-2024",
    ] {
        let case = snp_cases(&vectors)
            .into_iter()
            .find(|c| c.name == name)
            .unwrap();
        let bytes = case.evidence().unwrap();
        let certs = case.certs();
        let report = AttestationReport::from_bytes(&bytes).unwrap();
        verifier
            .verify(&report, &certs, &[], case.at(), None)
            .unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let rejected = match AttestationReport::from_bytes(&b) {
                Err(_) => true,
                Ok(r) => verifier.verify(&r, &certs, &[], case.at(), None).is_err(),
            };
            assert!(rejected, "{name}: flipping byte {i:#x} was accepted");
        }
    }
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn vlek_reports_are_rejected_after_the_vlek_expired() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let verifier = Verifier::new(TrustAnchors::amd().unwrap());
    let case = snp_cases(&vectors)
        .into_iter()
        .find(|c| c.name == "milan-v2-vlek_aws_trustee-2024")
        .unwrap();
    let report = AttestationReport::from_bytes(&case.evidence().unwrap()).unwrap();
    let certs = case.certs();
    verifier
        .verify(&report, &certs, &[], case.at(), None)
        .unwrap();
    // Today (2026-11-23) the one-year VLEK has expired; the cached chain must not hide that.
    let today = UnixTime::parse_rfc3339("2026-11-23T00:00:00Z").unwrap();
    let err = verifier
        .verify(&report, &certs, &[], today, None)
        .unwrap_err();
    assert_eq!(err.check(), "vek_chain");
    assert!(err.to_string().contains("expired"), "{err}");
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn the_revoked_genoa_ask_is_rejected_with_and_without_its_crl() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let dir = vectors.join("snp/neg_steward_genoa-revoked-ask");
    let case = common::case(&dir);
    let at = UnixTime::parse_rfc3339(case["at"].as_str().unwrap()).unwrap();
    let ask = load_certificates(&std::fs::read(dir.join("ask_revoked.pem")).unwrap()).unwrap();
    let crl = load_crls(&std::fs::read(dir.join("crl.der")).unwrap()).unwrap();
    let verifier = Verifier::new(TrustAnchors::amd().unwrap());
    // Correctly signed by ARK-Genoa, but listed in the ARK-signed CRL: the embedded
    // revocation list rejects it with no CRL supplied, at the case's time and today, ...
    for t in [at, UnixTime::parse_rfc3339("2026-12-03T00:00:00Z").unwrap()] {
        let err = verifier.verify_chain(&ask, &[], t, None).unwrap_err();
        assert!(
            matches!(err, SnpError::RevokedIntermediate { ref serial, .. } if serial == "020001"),
            "{err:?}"
        );
        assert_eq!(err.check(), "revocation");
    }
    // ... and with its CRL.
    let err = verifier.verify_chain(&ask, &crl, at, None).unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    // The CRL outside its window is rejected too (stale CRL replay).
    let late = UnixTime::from_secs(crl[0].next_update().unwrap().as_secs() + 1);
    let current_ask = TrustAnchors::amd().unwrap().products()[1].asks.clone();
    let err = verifier
        .verify_chain(&current_ask, &crl, late, None)
        .unwrap_err();
    assert_eq!(err.check(), "revocation");
    // The current ASK passes the same CRL inside its window, and without it.
    let chain = verifier.verify_chain(&current_ask, &crl, at, None).unwrap();
    assert_eq!(chain.product, Product::Genoa);
    assert!(chain.revocation_checked);
    let chain = verifier.verify_chain(&current_ask, &[], at, None).unwrap();
    assert!(!chain.revocation_checked);
}

/// The embedded AMD roots are the ones in the vector set's `roots/amd` (AMD KDS copies).
#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn embedded_roots_equal_the_published_kds_certificates() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    for r in TrustAnchors::amd().unwrap().products() {
        let dir = vectors
            .join("roots/amd")
            .join(r.product.name().to_lowercase());
        for (file, cert) in [
            ("ark.pem", &r.ark),
            ("ask.pem", &r.asks[0]),
            ("asvk.pem", &r.asvks[0]),
        ] {
            let published = load_certificates(&std::fs::read(dir.join(file)).unwrap()).unwrap();
            assert_eq!(
                published[0].der(),
                cert.der(),
                "{}/{file}",
                r.product.name()
            );
        }
    }
}
