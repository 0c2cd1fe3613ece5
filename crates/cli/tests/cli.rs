//! The `tessera` command's contract: exit codes 0/1/2, `--json` shape, simulator round trip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{code, json, s, tempdir, tessera, vectors};

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn verifies_a_real_report_and_reports_claims() {
    let Some(v) = vectors() else { return };
    let case = v.join("snp/milan-v3_oak-rk_20241205-4bf52c");
    let o = tessera(&[
        "verify",
        s(&case.join("report.bin")),
        "--certs",
        s(&case.join("vcek.der")),
        "--at",
        "2025-01-16T21:41:55Z",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let j = json(&o);
    assert_eq!(j["tee"], "snp");
    assert_eq!(j["verdict"], "pass");
    assert_eq!(j["claims"]["vmpl"], 0);
    assert_eq!(j["claims"]["reported_tcb"]["microcode"], 219);
    assert_eq!(j["verification"]["product"], "Milan");
    assert_eq!(j["errors"].as_array().unwrap().len(), 0);
    // Human output names the fields an operator checks.
    let o = tessera(&[
        "verify",
        s(&case.join("report.bin")),
        "--certs",
        s(&case.join("vcek.der")),
        "--at",
        "2025-01-16T21:41:55Z",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    for field in [
        "PASS",
        "measurement",
        "reported_tcb",
        "policy",
        "vmpl",
        "VCEK",
        "ARK-Milan",
    ] {
        assert!(text.contains(field), "{field} missing in:\n{text}");
    }
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn rejections_exit_one_and_name_the_check() {
    let Some(v) = vectors() else { return };
    let case = v.join("snp/neg_constellation_vlek-report-byte-flipped");
    let o = tessera(&[
        "verify",
        s(&case.join("report.bin")),
        "--certs",
        s(&case.join("vlek.der")),
        "--at",
        "2023-04-21T18:30:16Z",
        "--json",
    ]);
    assert_eq!(code(&o), 1);
    let j = json(&o);
    assert_eq!(j["verdict"], "fail");
    // Each error names the check and the field it read (DESIGN.md's contract).
    assert_eq!(j["errors"][0]["check"], "report_signature");
    assert_eq!(j["errors"][0]["field"], "SIGNATURE");
    let o = tessera(&[
        "verify",
        s(&v.join("snp/neg_lit_report-truncated-793/report.bin")),
        "--json",
    ]);
    let j = json(&o);
    assert_eq!(
        (
            j["errors"][0]["check"].as_str(),
            j["errors"][0]["field"].as_str()
        ),
        (Some("parse"), Some("evidence")),
        "{j}"
    );

    let o = tessera(&[
        "verify",
        s(&v.join("snp/neg_lit_report-truncated-793/report.bin")),
    ]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stdout).contains("parse"));

    // A VLEK that expired: rejected at today's date, accepted at the case's time.
    let case = v.join("snp/milan-v2-vlek_aws_trustee-2024");
    let (report, vlek) = (case.join("report.bin"), case.join("vlek.der"));
    let args = ["verify", s(&report), "--certs", s(&vlek)];
    assert_eq!(code(&tessera(&args)), 1);
    let mut at = args.to_vec();
    at.extend(["--at", "2024-05-06T21:14:27Z"]);
    assert_eq!(code(&tessera(&at)), 0);
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn crls_are_applied_when_given() {
    let Some(v) = vectors() else { return };
    let case = v.join("snp/milan-v2_steward-csr");
    let (report, vcek) = (case.join("report.bin"), case.join("vcek.der"));
    let base = [
        "verify",
        s(&report),
        "--certs",
        s(&vcek),
        "--at",
        "2022-09-30T12:48:56Z",
        "--json",
    ];
    let mut with_crl = base.to_vec();
    let milan_crl = v.join("roots/amd/crls/ark-milan_crl_2022-05-09.der");
    with_crl.extend(["--crl", s(&milan_crl)]);
    let o = tessera(&with_crl);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(json(&o)["verification"]["revocation_checked"], true);
    // A Genoa CRL does not apply to a Milan chain: rejected rather than silently ignored.
    let mut wrong = base.to_vec();
    let genoa_crl = v.join("roots/amd/crls/ark-genoa_crl_2022-10-31.der");
    wrong.extend(["--crl", s(&genoa_crl)]);
    let o = tessera(&wrong);
    assert_eq!(code(&o), 1);
    assert_eq!(json(&o)["errors"][0]["check"], "revocation");

    // A CRL in a `--certs` PEM bundle (the VCEK and the ARK's CRL in one file) is applied as
    // `--crl` would apply it, never dropped unseen: the Milan CRL checks revocation, the Genoa
    // one is refused.
    let pem = |label: &str, der: &[u8]| {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let dir = tempdir("cli-bundled-crl");
    let vcek_pem = pem("CERTIFICATE", &std::fs::read(&vcek).unwrap());
    for (crl, expected) in [(&milan_crl, 0), (&genoa_crl, 1)] {
        let bundle = dir.join("bundle.pem");
        let text = vcek_pem.clone() + &pem("X509 CRL", &std::fs::read(crl).unwrap());
        std::fs::write(&bundle, text).unwrap();
        let o = tessera(&[
            "verify",
            s(&report),
            "--certs",
            s(&bundle),
            "--at",
            "2022-09-30T12:48:56Z",
            "--json",
        ]);
        assert_eq!(code(&o), expected, "{}", String::from_utf8_lossy(&o.stdout));
        if expected == 0 {
            assert_eq!(json(&o)["verification"]["revocation_checked"], true);
        } else {
            assert_eq!(json(&o)["errors"][0]["check"], "revocation");
        }
    }
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn kbs_evidence_json_verifies_like_the_raw_report() {
    let Some(v) = vectors() else { return };
    let case = v.join("snp/genoa-v3_trustee-e2e");
    let o = tessera(&[
        "verify",
        s(&case.join("evidence.json")),
        "--at",
        "2025-05-28T17:57:03Z",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let j = json(&o);
    assert_eq!(j["evidence_kind"], "kbs-snp-report-json");
    let raw = tessera(&[
        "verify",
        s(&case.join("report.bin")),
        "--certs",
        s(&case.join("vcek.der")),
        "--at",
        "2025-05-28T17:57:03Z",
        "--json",
    ]);
    assert_eq!(json(&raw)["claims"], j["claims"]);
    let o = tessera(&["show", s(&case.join("evidence.json")), "--json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(json(&o)["evidence_kind"], "kbs-snp-report-json");
}

#[test]
fn usage_and_io_errors_exit_two() {
    assert_eq!(code(&tessera(&["verify", "/nonexistent/report.bin"])), 2);
    // With --json, one object of the contract's shape: tee and claims null, verdict "error",
    // each error with its check and field.
    for (args, check, field) in [
        (
            &["verify", "/nonexistent/report.bin", "--json"][..],
            "input",
            "input",
        ),
        (
            &["verify", "--json", "--frobnicate"][..],
            "usage",
            "arguments",
        ),
    ] {
        let o = tessera(args);
        assert_eq!(code(&o), 2);
        let j = json(&o);
        assert!(j["tee"].is_null() && j["claims"].is_null(), "{j}");
        assert_eq!(j["verdict"], "error");
        assert_eq!(j["errors"][0]["check"], check, "{j}");
        assert_eq!(j["errors"][0]["field"], field, "{j}");
    }
    assert_eq!(code(&tessera(&["verify"])), 2);
    assert_eq!(code(&tessera(&["frobnicate"])), 2);
    assert_eq!(code(&tessera(&["verify", "x", "--product", "zen9"])), 2);
    let dir = tempdir("usage");
    let report = dir.join("r.bin");
    std::fs::write(&report, [0u8; 1184]).unwrap();
    assert_eq!(
        code(&tessera(&["verify", s(&report), "--at", "yesterday"])),
        2
    );
    assert_eq!(
        code(&tessera(&[
            "verify",
            s(&report),
            "--certs",
            "/nonexistent.pem"
        ])),
        2
    );
    assert_eq!(
        code(&tessera(&[
            "sim",
            "snp",
            "--out",
            s(&dir),
            "--report-data",
            "00"
        ])),
        2
    );
    assert_eq!(code(&tessera(&["--help"])), 0);
}

#[test]
fn simulator_output_verifies_only_with_the_dangerous_flag() {
    for (product, signer, vek) in [
        ("genoa", "vcek", "vcek.der"),
        ("turin", "vcek", "vcek.der"),
        ("milan", "vlek", "vlek.der"),
    ] {
        let dir = tempdir(&format!("sim-{product}-{signer}"));
        let rd = "ab".repeat(64);
        let o = tessera(&[
            "sim",
            "snp",
            "--out",
            s(&dir),
            "--product",
            product,
            "--signer",
            signer,
            "--report-data",
            &rd,
            "--vmpl",
            "2",
        ]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let report = dir.join("report.bin");
        let vek = dir.join(vek);
        let chain = dir.join("chain.pem");
        let root = dir.join("root.pem");
        let args = [
            "verify",
            s(&report),
            "--certs",
            s(&vek),
            "--certs",
            s(&chain),
            "--json",
        ];
        let o = tessera(&args);
        assert_eq!(code(&o), 1, "AMD's roots must not accept the simulator");
        assert_eq!(json(&o)["errors"][0]["check"], "vek_chain");
        let mut dangerous = args.to_vec();
        dangerous.extend(["--dangerous-test-root", s(&root)]);
        let o = tessera(&dangerous);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
        let j = json(&o);
        assert_eq!(j["claims"]["report_data"], rd);
        assert_eq!(j["claims"]["vmpl"], 2);
        assert_eq!(j["verification"]["dangerous_test_root"], true);
        assert_eq!(j["verification"]["signer"], signer);
        assert!(String::from_utf8_lossy(&o.stderr).contains("WARNING"));
    }
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn show_decodes_every_evidence_form() {
    let Some(v) = vectors() else { return };
    let hcl = v.join("snp/genoa-v3_azure_trustee-evidence-genoa/hcl_report.bin");
    let o = tessera(&["show", s(&hcl), "--json"]);
    assert_eq!(code(&o), 0);
    let j = json(&o);
    assert_eq!(j["evidence_kind"], "azure-hcl");
    assert_eq!(j["verified"], false);
    assert!(j["hcl_runtime_data"].as_str().unwrap().contains("HCLAkPub"));
    // A configfs-tsm folder (outblob + auxblob).
    let dir = tempdir("tsm");
    let src = v.join("snp/genoa-v3_veraison-tsm");
    std::fs::copy(src.join("report.bin"), dir.join("outblob")).unwrap();
    std::fs::copy(src.join("auxblob.bin"), dir.join("auxblob")).unwrap();
    let o = tessera(&["show", s(&dir), "--json"]);
    assert_eq!(json(&o)["certificate_table"].as_array().unwrap().len(), 3);
    let o = tessera(&["verify", s(&dir), "--at", "2025-04-21T18:31:36Z"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    // v2 report: TCB decoded only when the product is named.
    let r = v.join("snp/milan-v2_go-sev-guest/report.bin");
    assert!(
        json(&tessera(&["show", s(&r), "--json"]))["claims"]["reported_tcb"]["bootloader"]
            .is_null()
    );
    assert_eq!(
        json(&tessera(&["show", s(&r), "--json", "--product", "milan"]))["claims"]["reported_tcb"]
            ["bootloader"],
        2
    );
}

/// Issue 11: a Genoa report with a Milan VCEK reports the product mismatch, the specific cause,
/// not the signature failure that follows from it.
#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn a_genoa_report_with_a_milan_vcek_says_product() {
    let Some(v) = vectors() else { return };
    let o = tessera(&[
        "verify",
        s(&v.join("snp/genoa-v3_trustee-e2e/report.bin")),
        "--certs",
        s(&v.join("snp/certs-only_milan-vcek_spire/vcek.pem")),
        "--at",
        "2025-05-28T17:57:03Z",
        "--json",
    ]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let j = json(&o);
    assert_eq!(j["errors"][0]["check"], "product", "{j}");
    let message = j["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("Milan") && message.contains("Genoa"),
        "{message}"
    );
}
