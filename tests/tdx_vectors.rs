//! Conformance over the real TDX and SGX quotes in the shared vectors: verdict, Intel TCB status
//! and advisory IDs as each case.json says, at the case's time; plus byte flips and expiry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use tessera::pki::UnixTime;
use tessera::tdx::abi::Quote;
use tessera::tdx::collateral::Collateral;
use tessera::tdx::{TdxError, TrustAnchors, Verifier, VerifyOptions};

struct Case {
    dir: PathBuf,
    json: serde_json::Value,
}

impl Case {
    fn name(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }
    fn at(&self) -> UnixTime {
        UnixTime::parse_rfc3339(self.json["at"].as_str().unwrap()).unwrap()
    }
    fn quote_bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir.join(self.json["evidence"].as_str().unwrap())).unwrap()
    }
    fn collateral_name(&self) -> &str {
        self.json["collateral"].as_str().unwrap()
    }
    fn collateral(&self) -> Collateral {
        let bytes = std::fs::read(self.dir.join(self.collateral_name())).unwrap();
        Collateral::from_bundle_json(&bytes).unwrap()
    }
    fn options(&self) -> VerifyOptions {
        VerifyOptions::default().allow_missing_crls(self.collateral_name().contains("partial"))
    }
    fn expect(&self, key: &str) -> &serde_json::Value {
        &self.json["expect"][key]
    }
}

fn all_cases(vectors: &Path) -> Vec<Case> {
    ["tdx", "sgx"]
        .iter()
        .flat_map(|tee| common::cases(vectors, tee))
        .map(|dir| Case {
            json: common::case(&dir),
            dir,
        })
        .collect()
}

fn verifier() -> Verifier {
    Verifier::new(TrustAnchors::intel().unwrap())
}

/// Parse strictly; a quote with non-zero trailing bytes is rejected here (`parse` check).
fn verify_case(v: &Verifier, case: &Case) -> Result<tessera::tdx::Verified<Quote>, TdxError> {
    v.verify_bytes(
        &case.quote_bytes(),
        &case.collateral(),
        case.at(),
        &case.options(),
    )
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn every_tdx_and_sgx_case_meets_its_expected_verdict_status_and_advisories() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let cases = all_cases(&vectors);
    assert!(
        cases.len() >= 20,
        "expected the 20 TDX/SGX cases, found {}",
        cases.len()
    );
    let v = verifier();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.name();
        let verdict = case.expect("verdict").as_str().unwrap();
        let result = verify_case(&v, case);
        match (verdict, &result) {
            ("accept", Ok(verified)) => {
                let ver = verified.verification();
                let want = case.expect("tcb_status").as_str().unwrap();
                if ver.tcb.status.as_str() != want {
                    failures.push(format!("{name}: status {} != {want}", ver.tcb.status));
                }
                let want_sa: Vec<String> = case
                    .expect("advisory_ids")
                    .as_array()
                    .map_or_else(Vec::new, |a| {
                        a.iter().map(|s| s.as_str().unwrap().to_owned()).collect()
                    });
                if ver.tcb.advisory_ids != want_sa {
                    failures.push(format!(
                        "{name}: advisories {:?} != {want_sa:?}",
                        ver.tcb.advisory_ids
                    ));
                }
                let partial = case.collateral_name().contains("partial");
                assert_eq!(ver.revocation_checked, !partial, "{name}");
                let fmspc = case.json["facts"]["fmspc"].as_str().unwrap();
                assert_eq!(tessera::pki::to_hex(&ver.pck.fmspc), fmspc, "{name}");
            }
            ("reject", Err(err)) => {
                if let Some(want) = case.expect("tcb_status").as_str() {
                    let got = match err {
                        // A quote with non-zero trailing bytes (gtg-tdx-v4-50806f: ASCII text
                        // appended "for testing purpose") is rejected by the parser; its TCB,
                        // read without the tail, is what the case expects.
                        TdxError::Parse(tessera::tdx::abi::ParseError::TrailingData { .. }) => {
                            let (quote, _) = Quote::parse_prefix(&case.quote_bytes()).unwrap();
                            v.verify(&quote, &case.collateral(), case.at(), &case.options())
                                .unwrap_err()
                                .tcb_status_name()
                        }
                        other => other.tcb_status_name(),
                    };
                    if got != Some(want) {
                        failures.push(format!("{name}: rejected with {err} (want {want})"));
                    }
                }
            }
            (_, Ok(_)) => failures.push(format!("{name}: verified, expected {verdict}")),
            (_, Err(e)) => failures.push(format!(
                "{name}: {e} (check {}), expected {verdict}",
                e.check()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn sgx_collateral_for_a_tdx_quote_is_rejected() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let case = all_cases(&vectors)
        .into_iter()
        .find(|c| c.name().ends_with("sgxcoll-neg"))
        .unwrap();
    let err = verify_case(&verifier(), &case).unwrap_err();
    assert_eq!(err.check(), "tcb_info", "{err}");
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn partial_collateral_needs_the_explicit_option() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    for case in all_cases(&vectors)
        .iter()
        .filter(|c| c.collateral_name().contains("partial"))
    {
        let err = verifier()
            .verify_bytes(
                &case.quote_bytes(),
                &case.collateral(),
                case.at(),
                &VerifyOptions::default(),
            )
            .unwrap_err();
        assert_eq!(err.check(), "revocation", "{}: {err}", case.name());
    }
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn raw_pcs_folders_verify_like_their_bundles() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let v = verifier();
    for case in all_cases(&vectors) {
        let dir = case.dir.join("collateral");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            files.push((
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            ));
        }
        let folder = Collateral::from_pcs_files(&files).unwrap();
        let options = VerifyOptions::default().allow_missing_crls(true);
        let from_folder = v.verify_bytes(&case.quote_bytes(), &folder, case.at(), &options);
        let from_bundle =
            v.verify_bytes(&case.quote_bytes(), &case.collateral(), case.at(), &options);
        match (from_folder, from_bundle) {
            (Ok(a), Ok(b)) => assert_eq!(
                a.verification().tcb,
                b.verification().tcb,
                "{}",
                case.name()
            ),
            (Err(a), Err(b)) => assert_eq!(a.check(), b.check(), "{}", case.name()),
            (a, b) => panic!("{}: folder {a:?} vs bundle {b:?}", case.name()),
        }
    }
}

fn accepted_case(vectors: &Path, name: &str) -> Case {
    all_cases(vectors)
        .into_iter()
        .find(|c| c.name() == name)
        .unwrap()
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn collateral_one_second_after_next_update_is_rejected() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let case = accepted_case(&vectors, "phala-tdx-v4-20a06f-2025-09");
    let collateral = case.collateral();
    let v = verifier();
    let quote = case.quote_bytes();
    // The earliest nextUpdate of any item (here the PCK CRL's) bounds the window.
    let next = v
        .verify_bytes(&quote, &collateral, case.at(), &case.options())
        .unwrap()
        .verification()
        .valid_until;
    assert!(next <= collateral.tcb_info().value().next_update);
    v.verify_bytes(&quote, &collateral, next, &case.options())
        .unwrap();
    let late = UnixTime::from_secs(next.as_secs() + 1);
    let err = v
        .verify_bytes(&quote, &collateral, late, &case.options())
        .unwrap_err();
    assert_eq!(err.check(), "collateral_window", "{err}");
    // A fresh verifier (nothing cached) says the same.
    let err = verifier()
        .verify_bytes(&quote, &collateral, late, &case.options())
        .unwrap_err();
    assert!(
        matches!(err.check(), "collateral_window" | "revocation"),
        "{err}"
    );
    // Before the issue date.
    let issue = collateral.tcb_info().value().issue_date;
    let early = UnixTime::from_secs(issue.as_secs() - 1);
    assert!(
        verifier()
            .verify_bytes(&quote, &collateral, early, &case.options())
            .is_err()
    );
}

/// Flip one bit at a spread of offsets across the signed header and body, the QE report, the
/// QE report signature, the quote signature, the attestation key and the QE auth data: every
/// flip must be rejected (and never panic).
#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn byte_flips_in_signed_parts_are_rejected() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let v = verifier();
    for name in [
        "phala-tdx-v4-20a06f-2025-09",
        "auto-tdx-v5-td15-90c06f-2025-06",
        "auto-sgx-v3-00606a-2025-08",
    ] {
        let case = accepted_case(&vectors, name);
        let collateral = case.collateral();
        let bytes = case.quote_bytes();
        let quote = Quote::parse(&bytes).unwrap();
        let signed = quote.signed_bytes().len();
        v.verify_bytes(&bytes, &collateral, case.at(), &case.options())
            .unwrap();
        // Signed header+body, then the signature data up to the end of the QE auth data.
        let cert = &quote.signature_data().certification;
        let sig_start = signed + 4;
        let qe_end = sig_start
            + 64
            + 64
            + if quote.version() == 3 { 0 } else { 6 }
            + 384
            + 64
            + 2
            + cert.qe_auth_data.len();
        let mut offsets: Vec<usize> = (0..signed).step_by(7).collect();
        offsets.extend((sig_start..qe_end).step_by(5));
        for off in offsets {
            let mut flipped = bytes.clone();
            flipped[off] ^= 0x01;
            let result = v.verify_bytes(&flipped, &collateral, case.at(), &case.options());
            assert!(result.is_err(), "{name}: flip at {off} verified");
        }
    }
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn warm_and_cold_verification_agree() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let v = verifier();
    for case in all_cases(&vectors) {
        let first = verify_case(&v, &case).map(|x| x.into_parts().1);
        let again = verify_case(&v, &case).map(|x| x.into_parts().1);
        assert_eq!(first, again, "{}", case.name());
    }
}
