//! Negative tests for every SEV-SNP verification check, on reports signed by the simulator's
//! fake AMD PKI, plus the positive paths they start from.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use tessera::pki::{Certificate, UnixTime};
use tessera::snp::abi::{AttestationReport, Product, RawReport, TcbParts};
use tessera::snp::certs::VekKind;
use tessera::snp::sim::{SimPki, SimVek, VekSpec};
use tessera::snp::{SnpError, TrustAnchors, Verifier};
use zerocopy::little_endian::{U32, U64};

const AT: UnixTime = UnixTime::from_secs(1_767_225_600); // 2026-01-01

fn genoa() -> &'static SimPki {
    static PKI: OnceLock<SimPki> = OnceLock::new();
    PKI.get_or_init(|| SimPki::new(Product::Genoa).unwrap())
}

fn turin() -> &'static SimPki {
    static PKI: OnceLock<SimPki> = OnceLock::new();
    PKI.get_or_init(|| SimPki::new(Product::Turin).unwrap())
}

fn genoa_vcek() -> &'static SimVek {
    static VEK: OnceLock<SimVek> = OnceLock::new();
    VEK.get_or_init(|| genoa().issue_vek(&VekSpec::vcek(Product::Genoa)).unwrap())
}

fn verify_with(
    pki: &SimPki,
    report: &AttestationReport,
    certs: &[Certificate],
) -> Result<tessera::snp::Verified<AttestationReport>, SnpError> {
    Verifier::new(pki.dangerous_trust_anchors()).verify(report, certs, &[], AT, None)
}

/// Sign a modified template with the Genoa VCEK and return the failing check.
fn genoa_check(edit: impl FnOnce(&mut RawReport)) -> &'static str {
    let vek = genoa_vcek();
    let mut raw = genoa().report_template(vek);
    edit(&mut raw);
    let report = vek.sign(raw).unwrap();
    verify_with(genoa(), &report, &[vek.certificate().clone()])
        .unwrap_err()
        .check()
}

/// Every field spec 56860 reserves, given a value the firmware did not define (and signed, so
/// only this check can refuse it), is rejected naming the field; the fields a later report
/// version defines are accepted there.
#[test]
fn reserved_fields_must_hold_what_the_specification_prescribes() {
    type Edit = fn(&mut RawReport);
    let reserved: [(&str, Edit); 14] = [
        ("POLICY", |r| {
            r.policy = U64::new(r.policy.get() & !(1 << 17))
        }),
        ("POLICY", |r| r.policy = U64::new(r.policy.get() | 1 << 26)),
        ("POLICY", |r| r.policy = U64::new(r.policy.get() | 1 << 63)),
        ("SIGNER_INFO", |r| {
            r.signer_info = U32::new(r.signer_info.get() | 1 << 5)
        }),
        ("0x04C", |r| r.reserved0[3] = 1),
        ("0x18B", |r| r.reserved1[20] = 0x80),
        ("0x1EB, 0x1EF", |r| r.reserved2 = 1),
        ("0x1EB, 0x1EF", |r| r.reserved3 = 1),
        ("0x208", |r| r.reserved4[0x97] = 1),
        ("CURRENT_TCB", |r| {
            r.current_tcb = U64::new(r.current_tcb.get() | 1 << 16)
        }),
        ("COMMITTED_TCB", |r| {
            r.committed_tcb = U64::new(r.committed_tcb.get() | 1 << 40)
        }),
        ("LAUNCH_TCB", |r| {
            r.launch_tcb = U64::new(r.launch_tcb.get() | 1 << 24)
        }),
        ("LAUNCH_MIT_VECTOR (reserved before version 5)", |r| {
            r.version = U32::new(4);
        }),
        ("CURRENT_MIT_VECTOR (reserved before version 5)", |r| {
            r.version = U32::new(4);
            r.launch_mit_vector = U64::new(0);
        }),
    ];
    let vek = genoa_vcek();
    let certs = [vek.certificate().clone()];
    for (field, edit) in reserved {
        let mut raw = genoa().report_template(vek);
        edit(&mut raw);
        let err = verify_with(genoa(), &vek.sign(raw).unwrap(), &certs).unwrap_err();
        assert_eq!((err.check(), err.field()), ("reserved", field), "{err}");
    }
    // Version 2 reserves the CPUID bytes; from version 5 the mitigation vectors are fields.
    let mut v2 = genoa().report_template(vek);
    v2.version = U32::new(2);
    (v2.launch_mit_vector, v2.current_mit_vector) = (U64::new(0), U64::new(0));
    let err = verify_with(genoa(), &vek.sign(v2.clone()).unwrap(), &certs).unwrap_err();
    assert_eq!(
        err.field(),
        "CPUID_FAM_ID (reserved before version 3)",
        "{err}"
    );
    v2.cpuid_fam_id = 0;
    let err = verify_with(genoa(), &vek.sign(v2.clone()).unwrap(), &certs).unwrap_err();
    assert_eq!(
        err.field(),
        "CPUID_MOD_ID (reserved before version 3)",
        "{err}"
    );
    (v2.cpuid_mod_id, v2.cpuid_step) = (0, 1);
    let err = verify_with(genoa(), &vek.sign(v2).unwrap(), &certs).unwrap_err();
    assert_eq!(
        err.field(),
        "CPUID_STEP (reserved before version 3)",
        "{err}"
    );
    let mut v5 = genoa().report_template(vek);
    assert_eq!(v5.version.get(), 5);
    v5.launch_mit_vector = U64::new(u64::MAX);
    verify_with(genoa(), &vek.sign(v5).unwrap(), &certs).unwrap();
    // Turin reserves other bytes of a TCB_VERSION: its FMC byte is a field, byte 4 is not.
    let turin_vek = turin().issue_vek(&VekSpec::vcek(Product::Turin)).unwrap();
    let turin_certs = [turin_vek.certificate().clone()];
    let mut raw = turin().report_template(&turin_vek);
    raw.launch_tcb = U64::new(raw.launch_tcb.get() | 1 << 32);
    let err = verify_with(turin(), &turin_vek.sign(raw).unwrap(), &turin_certs).unwrap_err();
    assert_eq!(err.field(), "LAUNCH_TCB", "{err}");
    let mut raw = turin().report_template(&turin_vek);
    raw.launch_tcb = U64::new(raw.launch_tcb.get() & !0xff);
    verify_with(turin(), &turin_vek.sign(raw).unwrap(), &turin_certs).unwrap();
}

#[test]
fn simulated_vcek_report_verifies_only_under_the_dangerous_root() {
    let vek = genoa_vcek();
    let report = vek.sign(genoa().report_template(vek)).unwrap();
    let v = verify_with(genoa(), &report, &[vek.certificate().clone()]).unwrap();
    assert_eq!(v.verification().product, Product::Genoa);
    assert_eq!(v.verification().signer, VekKind::Vcek);
    assert!(v.verification().dangerous_test_root);
    assert!(!v.verification().chip_id_masked);
    // AMD's real roots do not know the simulator.
    let real = Verifier::new(TrustAnchors::amd().unwrap());
    let err = real
        .verify(&report, &[vek.certificate().clone()], &[], AT, None)
        .unwrap_err();
    assert_eq!(err.check(), "vek_chain");
    // Nor does another simulated PKI of the same product (same names, other keys).
    let other = SimPki::new(Product::Genoa).unwrap();
    assert_eq!(
        verify_with(&other, &report, &[vek.certificate().clone()])
            .unwrap_err()
            .check(),
        "vek_chain"
    );
}

#[test]
fn report_level_checks_reject() {
    assert_eq!(
        genoa_check(|r| r.signature_algo = U32::new(2)),
        "signature_algo"
    );
    assert_eq!(
        genoa_check(|r| r.signer_info = U32::new(1 << 1)),
        "signer_info"
    ); // MASK_CHIP_KEY
    assert_eq!(
        genoa_check(|r| r.signer_info = U32::new(7 << 2)),
        "signer_info"
    ); // no key
    assert_eq!(
        genoa_check(|r| r.signer_info = U32::new(3 << 2)),
        "signer_info"
    ); // reserved
    // SIGNER_INFO says VLEK but the key is a VCEK.
    assert_eq!(
        genoa_check(|r| r.signer_info = U32::new(1 << 2)),
        "signer_info"
    );
    // An unknown version cannot even be parsed (so it cannot be signed either).
    let vek = genoa_vcek();
    let mut raw = genoa().report_template(vek);
    raw.version = U32::new(6);
    assert!(matches!(vek.sign(raw.clone()), Err(SnpError::Parse(_))));
    assert!(AttestationReport::from_raw(raw).is_err());
}

#[test]
fn signature_encoding_and_value_checks_reject() {
    let vek = genoa_vcek();
    let good = vek.sign(genoa().report_template(vek)).unwrap();
    let certs = [vek.certificate().clone()];
    let check = |edit: &dyn Fn(&mut RawReport)| {
        let mut raw = good.raw().clone();
        edit(&mut raw);
        verify_with(genoa(), &AttestationReport::from_raw(raw).unwrap(), &certs)
            .unwrap_err()
            .check()
    };
    assert_eq!(check(&|r| r.signature.r[60] = 1), "signature"); // above bit 383
    assert_eq!(check(&|r| r.signature.s[71] = 1), "signature");
    assert_eq!(check(&|r| r.signature.reserved[0] = 1), "signature");
    assert_eq!(check(&|r| r.signature.r[0] ^= 1), "report_signature");
    assert_eq!(check(&|r| r.measurement[0] ^= 1), "report_signature");
    assert_eq!(
        check(&|r| {
            r.signature.r = [0; 72];
            r.signature.s = [0; 72];
        }),
        "report_signature"
    );
}

#[test]
fn endorsement_selection_checks_reject() {
    let vek = genoa_vcek();
    let report = vek.sign(genoa().report_template(vek)).unwrap();
    assert_eq!(
        verify_with(genoa(), &report, &[]).unwrap_err().check(),
        "endorsement"
    );
    // Only the ASK: still no VEK.
    assert_eq!(
        verify_with(genoa(), &report, &[genoa().ask().clone()])
            .unwrap_err()
            .check(),
        "endorsement"
    );
    // A VLEK and a VCEK offered; the report names the VCEK, so the VCEK is used.
    let vlek = genoa()
        .issue_vek(&VekSpec::vlek(Product::Genoa, "csp.example"))
        .unwrap();
    verify_with(
        genoa(),
        &report,
        &[vlek.certificate().clone(), vek.certificate().clone()],
    )
    .unwrap();
    // Only a VLEK offered for a VCEK-signed report.
    let err = verify_with(
        genoa(),
        &report,
        &[vlek.certificate().clone(), vlek.certificate().clone()],
    )
    .unwrap_err();
    assert_eq!(err.check(), "signer_info");
    let err = verify_with(genoa(), &report, &[vlek.certificate().clone()]).unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::SignerMismatch { .. } | SnpError::ReportSignature { .. }
        ),
        "{err}"
    );
}

/// Several VEKs of the report's kind held (VLEKs of several providers; VCEKs of several chips
/// when CHIP_ID is masked): each is tried, so a report signed by any of them verifies, and one
/// signed by none is refused with the first one's error.
#[test]
fn every_held_vek_of_the_reports_kind_is_tried() {
    let vlek = |csp: &str| {
        genoa()
            .issue_vek(&VekSpec::vlek(Product::Genoa, csp))
            .unwrap()
    };
    let (a, b, c) = (vlek("a.example"), vlek("b.example"), vlek("c.example"));
    let mut raw = genoa().report_template(&b);
    raw.chip_id = [0; 64];
    let report = b.sign(raw).unwrap();
    let held =
        |v: &[&SimVek]| -> Vec<Certificate> { v.iter().map(|v| v.certificate().clone()).collect() };
    for order in [[&a, &b], [&b, &a]] {
        let v = verify_with(genoa(), &report, &held(&order)).unwrap();
        assert_eq!(v.verification().vek.csp_id.as_deref(), Some("b.example"));
    }
    let err = verify_with(genoa(), &report, &held(&[&a, &c])).unwrap_err();
    assert!(matches!(err, SnpError::ReportSignature { .. }), "{err}");
    // VCEKs of two chips, CHIP_ID masked.
    let other_chip = genoa()
        .issue_vek(&VekSpec {
            hwid: vec![0x5a; 64],
            ..VekSpec::vcek(Product::Genoa)
        })
        .unwrap();
    let vek = genoa_vcek();
    let mut raw = genoa().report_template(vek);
    raw.chip_id = [0; 64];
    let report = vek.sign(raw).unwrap();
    let v = verify_with(
        genoa(),
        &report,
        &[other_chip.certificate().clone(), vek.certificate().clone()],
    )
    .unwrap();
    assert!(v.verification().chip_id_masked);
}

#[test]
fn vlek_reports_verify_and_carry_the_csp() {
    let vlek = genoa()
        .issue_vek(&VekSpec::vlek(Product::Genoa, "csp.example"))
        .unwrap();
    let mut raw = genoa().report_template(&vlek);
    raw.chip_id = [0; 64];
    let report = vlek.sign(raw).unwrap();
    let v = verify_with(genoa(), &report, &[vlek.certificate().clone()]).unwrap();
    assert_eq!(v.verification().signer, VekKind::Vlek);
    assert_eq!(v.verification().vek.csp_id.as_deref(), Some("csp.example"));
}

#[test]
fn issuer_kind_is_enforced() {
    // A VCEK issued by the ASVK, and a VLEK issued by the ASK.
    for mut spec in [
        VekSpec::vcek(Product::Genoa),
        VekSpec::vlek(Product::Genoa, "csp"),
    ] {
        spec.wrong_issuer = true;
        let vek = genoa().issue_vek(&spec).unwrap();
        let report = vek.sign(genoa().report_template(&vek)).unwrap();
        let err = verify_with(genoa(), &report, &[vek.certificate().clone()]).unwrap_err();
        assert!(matches!(err, SnpError::IssuerKind { .. }), "{err}");
        // Certificates alone: the same rule.
        let verifier = Verifier::new(genoa().dangerous_trust_anchors());
        let err = verifier
            .verify_chain(&[vek.certificate().clone()], &[], AT, None)
            .unwrap_err();
        assert!(matches!(err, SnpError::IssuerKind { .. }), "{err}");
        assert_eq!(err.check(), "vek_chain");
    }
    // A VEK straight under the ARK, and a non-VEK leaf under the ASK: refused by both paths.
    let verifier = Verifier::new(genoa().dangerous_trust_anchors());
    let direct = genoa()
        .dangerous_issue_vek_under_ark(&VekSpec::vcek(Product::Genoa))
        .unwrap();
    let err = verifier
        .verify_chain(&[direct.certificate().clone()], &[], AT, None)
        .unwrap_err();
    assert!(matches!(err, SnpError::IssuerKind { .. }), "{err:?}");
    let report = direct.sign(genoa().report_template(&direct)).unwrap();
    let err = verify_with(genoa(), &report, &[direct.certificate().clone()]).unwrap_err();
    assert!(matches!(err, SnpError::IssuerKind { .. }), "{err:?}");
    let other_leaf = genoa().dangerous_issue_non_vek_under_ask().unwrap();
    let err = verifier
        .verify_chain(&[other_leaf], &[], AT, None)
        .unwrap_err();
    assert!(matches!(err, SnpError::IssuerKind { .. }), "{err:?}");
    assert!(
        err.to_string().contains("other than a VCEK or VLEK"),
        "{err}"
    );
    // The right issuers pass both.
    let verifier = Verifier::new(genoa().dangerous_trust_anchors());
    for spec in [
        VekSpec::vcek(Product::Genoa),
        VekSpec::vlek(Product::Genoa, "csp"),
    ] {
        let vek = genoa().issue_vek(&spec).unwrap();
        let chain = verifier
            .verify_chain(&[vek.certificate().clone()], &[], AT, None)
            .unwrap();
        assert_eq!(chain.vek.unwrap().kind(), spec.kind);
    }
}

#[test]
fn product_must_agree_everywhere() {
    // A Milan VCEK (productName) under the Genoa ARK.
    let mut spec = VekSpec::vcek(Product::Genoa);
    spec.product_name = Some(String::from("Milan-B0"));
    let vek = genoa().issue_vek(&spec).unwrap();
    let report = vek.sign(genoa().report_template(&vek)).unwrap();
    let err = verify_with(genoa(), &report, &[vek.certificate().clone()]).unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::ProductMismatch {
                source_a: "VEK productName",
                a: Product::Milan,
                source_b: "report CPUID",
                b: Product::Genoa,
            }
        ),
        "{err}"
    );

    // A report whose CPUID says Milan, signed by a Genoa VCEK.
    assert_eq!(genoa_check(|r| r.cpuid_mod_id = 0x01), "product");
    // A v3+ report whose CPUID names no known product is not taken as agreeing with the chain
    // (family 19h model B0h, family 1Bh, and all zeros).
    for (family, model) in [(0x19, 0xB0), (0x1B, 0x01), (0, 0)] {
        let vek = genoa_vcek();
        let mut raw = genoa().report_template(vek);
        (raw.cpuid_fam_id, raw.cpuid_mod_id) = (family, model);
        let err = verify_with(
            genoa(),
            &vek.sign(raw).unwrap(),
            &[vek.certificate().clone()],
        )
        .unwrap_err();
        assert!(
            matches!(err, SnpError::UnknownCpuid { family: f, model: m } if f == family && m == model),
            "{err}"
        );
        assert_eq!((err.check(), err.field()), ("product", "CPUID_FAM_ID"));
    }
    // Bergamo/Siena (model 0xA0) is certified under Genoa.
    let vek = genoa_vcek();
    let mut raw = genoa().report_template(vek);
    raw.cpuid_mod_id = 0xA0;
    verify_with(
        genoa(),
        &vek.sign(raw).unwrap(),
        &[vek.certificate().clone()],
    )
    .unwrap();
    // The caller names another product.
    let report = vek.sign(genoa().report_template(vek)).unwrap();
    let verifier = Verifier::new(genoa().dangerous_trust_anchors());
    let certs = [vek.certificate().clone()];
    assert_eq!(
        verifier
            .verify(&report, &certs, &[], AT, Some(Product::Turin))
            .unwrap_err()
            .check(),
        "product"
    );
    verifier
        .verify(&report, &certs, &[], AT, Some(Product::Genoa))
        .unwrap();
    // A v2 report (no CPUID) relies on the chain.
    let mut raw = genoa().report_template(vek);
    raw.version = U32::new(2);
    (raw.cpuid_fam_id, raw.cpuid_mod_id, raw.cpuid_step) = (0, 0, 0);
    (raw.launch_mit_vector, raw.current_mit_vector) = (U64::new(0), U64::new(0));
    assert_eq!(
        verifier
            .verify(&vek.sign(raw).unwrap(), &certs, &[], AT, None)
            .unwrap()
            .verification()
            .product,
        Product::Genoa
    );
}

/// Identity before authenticity: a Genoa report endorsed by another product's VCEK is a product
/// mismatch, not a signature failure (nor, when that VCEK has expired, a validity failure).
#[test]
fn a_report_endorsed_by_another_products_key_says_product_first() {
    let anchors = TrustAnchors::dangerous_custom(vec![genoa().roots(), turin().roots()]);
    let verifier = Verifier::new(anchors);
    let vek = genoa_vcek();
    let report = vek.sign(genoa().report_template(vek)).unwrap();
    let turin_vek = turin().issue_vek(&VekSpec::vcek(Product::Turin)).unwrap();
    let certs = [turin_vek.certificate().clone()];
    for at in [AT, UnixTime::from_secs(4_102_444_800 * 2)] {
        let err = verifier.verify(&report, &certs, &[], at, None).unwrap_err();
        assert!(
            matches!(
                err,
                SnpError::ProductMismatch {
                    a: Product::Turin,
                    b: Product::Genoa,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.check(), "product");
    }
    // A second call hits the endorsement cache and must say the same.
    let err = verifier.verify(&report, &certs, &[], AT, None).unwrap_err();
    assert_eq!(err.check(), "product", "{err}");
    // A caller naming another product than the VEK's is told so before the chain is built.
    let err = verifier
        .verify(
            &report,
            &[vek.certificate().clone()],
            &[],
            AT,
            Some(Product::Milan),
        )
        .unwrap_err();
    assert_eq!(err.check(), "product", "{err}");
    // The right key still verifies with the same verifier.
    verifier
        .verify(&report, &[vek.certificate().clone()], &[], AT, None)
        .unwrap();
}

#[test]
fn reported_tcb_must_equal_the_certificate_tcb() {
    let parts = |bl| TcbParts {
        fmc: None,
        bootloader: bl,
        tee: 0,
        snp: 23,
        microcode: 72,
    };
    assert_eq!(
        genoa_check(|r| r.reported_tcb = U64::new(parts(8).encode(Product::Genoa).0)),
        "reported_tcb"
    );
    // A reserved byte set in REPORTED_TCB is a mismatch too.
    assert_eq!(
        genoa_check(|r| r.reported_tcb = U64::new(parts(9).encode(Product::Genoa).0 | (1 << 24))),
        "reported_tcb"
    );
    // CURRENT_TCB above REPORTED_TCB is allowed (the host may report an older TCB).
    let vek = genoa_vcek();
    let mut raw = genoa().report_template(vek);
    raw.current_tcb = U64::new(parts(10).encode(Product::Genoa).0);
    verify_with(
        genoa(),
        &vek.sign(raw).unwrap(),
        &[vek.certificate().clone()],
    )
    .unwrap();
}

/// CURRENT_TCB must be at least REPORTED_TCB in every component, read in the product's layout
/// (Turin: FMC, boot loader, TEE, SNP in bytes 0-3; Milan/Genoa: boot loader, TEE in bytes 0-1,
/// SNP in byte 6).
#[test]
fn current_tcb_below_reported_tcb_is_rejected() {
    for pki in [genoa(), turin()] {
        let product = pki.product();
        let mut spec = VekSpec::vcek(product);
        spec.tcb.tee = 2;
        let vek = pki.issue_vek(&spec).unwrap();
        let reported = vek.spec.tcb;
        let mut lowered = Vec::new();
        let mut push = |edit: &dyn Fn(&mut TcbParts)| {
            let mut t = reported;
            edit(&mut t);
            if t != reported {
                lowered.push(t);
            }
        };
        push(&|t| t.fmc = t.fmc.map(|f| f.saturating_sub(1)));
        push(&|t| t.bootloader = t.bootloader.saturating_sub(1));
        push(&|t| t.tee = t.tee.saturating_sub(1));
        push(&|t| t.snp = t.snp.saturating_sub(1));
        push(&|t| t.microcode = t.microcode.saturating_sub(1));
        let components = if product == Product::Turin { 5 } else { 4 };
        assert_eq!(lowered.len(), components, "{product}: {lowered:?}");
        for current in lowered {
            let mut raw = pki.report_template(&vek);
            raw.current_tcb = U64::new(current.encode(product).0);
            let err = verify_with(pki, &vek.sign(raw).unwrap(), &[vek.certificate().clone()])
                .unwrap_err();
            assert_eq!(err.check(), "current_tcb", "{product} {current:?}: {err}");
            assert!(
                matches!(err, SnpError::CurrentBelowReported { current: c, .. } if c == current),
                "{err:?}"
            );
        }
        // Equal passes (the template), and so does one component above with none below.
        let mut above = reported;
        above.microcode += 1;
        let mut raw = pki.report_template(&vek);
        raw.current_tcb = U64::new(above.encode(product).0);
        verify_with(pki, &vek.sign(raw).unwrap(), &[vek.certificate().clone()]).unwrap();
    }
}

#[test]
fn chip_id_must_equal_hwid_unless_masked() {
    assert_eq!(genoa_check(|r| r.chip_id[63] ^= 1), "chip_id");
    // An 8-byte hwID (Turin's length) on a Genoa VCEK would compare a prefix of CHIP_ID
    // alone: refused, whatever the rest of CHIP_ID holds.
    let mut spec = VekSpec::vcek(Product::Genoa);
    spec.hwid.truncate(8);
    let short = genoa().issue_vek(&spec).unwrap();
    let mut raw = genoa().report_template(&short);
    raw.chip_id[8..].fill(0x55);
    let err = verify_with(
        genoa(),
        &short.sign(raw).unwrap(),
        &[short.certificate().clone()],
    )
    .unwrap_err();
    assert_eq!(
        (err.check(), err.field()),
        ("vek_extension", "hwID"),
        "{err}"
    );
    let vek = genoa_vcek();
    let mut raw = genoa().report_template(vek);
    raw.chip_id = [0; 64];
    let v = verify_with(
        genoa(),
        &vek.sign(raw).unwrap(),
        &[vek.certificate().clone()],
    )
    .unwrap();
    assert!(v.verification().chip_id_masked);
}

#[test]
fn turin_uses_fmc_and_an_eight_byte_hwid() {
    let vek = turin().issue_vek(&VekSpec::vcek(Product::Turin)).unwrap();
    let report = vek.sign(turin().report_template(&vek)).unwrap();
    let v = verify_with(turin(), &report, &[vek.certificate().clone()]).unwrap();
    assert_eq!(v.verification().reported_tcb.fmc, Some(1));
    assert_eq!(v.verification().vek.hwid.as_ref().map(Vec::len), Some(8));
    // The rest of CHIP_ID is not covered by the 8-byte hwID, but its first 8 bytes are.
    let mut raw = turin().report_template(&vek);
    raw.chip_id[3] ^= 1;
    assert_eq!(
        verify_with(
            turin(),
            &vek.sign(raw).unwrap(),
            &[vek.certificate().clone()]
        )
        .unwrap_err()
        .check(),
        "chip_id"
    );
    // FMC differs.
    let mut raw = turin().report_template(&vek);
    raw.reported_tcb = U64::new(raw.reported_tcb.get() ^ 1);
    assert_eq!(
        verify_with(
            turin(),
            &vek.sign(raw).unwrap(),
            &[vek.certificate().clone()]
        )
        .unwrap_err()
        .check(),
        "reported_tcb"
    );
    // A Turin VEK without fmcSPL.
    let mut spec = VekSpec::vcek(Product::Turin);
    spec.tcb.fmc = None;
    let vek = turin().issue_vek(&spec).unwrap();
    let report = vek.sign(turin().report_template(&vek)).unwrap();
    assert_eq!(
        verify_with(turin(), &report, &[vek.certificate().clone()])
            .unwrap_err()
            .check(),
        "vek_extension"
    );
}

#[test]
fn certificate_validity_is_checked_at_the_given_time_even_when_cached() {
    let mut spec = VekSpec::vcek(Product::Genoa);
    spec.not_before = UnixTime::from_secs(AT.as_secs() - 1000);
    spec.not_after = UnixTime::from_secs(AT.as_secs() + 1000);
    let vek = genoa().issue_vek(&spec).unwrap();
    let report = vek.sign(genoa().report_template(&vek)).unwrap();
    let certs = [vek.certificate().clone()];
    let verifier = Verifier::new(genoa().dangerous_trust_anchors());
    verifier.verify(&report, &certs, &[], AT, None).unwrap();
    let late = UnixTime::from_secs(AT.as_secs() + 1001);
    let early = UnixTime::from_secs(AT.as_secs() - 1001);
    for t in [late, early] {
        let err = verifier.verify(&report, &certs, &[], t, None).unwrap_err();
        assert_eq!(err.check(), "vek_chain", "{err}");
    }
    // One second inside the window still verifies (from the cache).
    verifier
        .verify(
            &report,
            &certs,
            &[],
            UnixTime::from_secs(AT.as_secs() + 1000),
            None,
        )
        .unwrap();
}

#[test]
fn revocation_by_the_ark_crl() {
    let vek = genoa_vcek();
    let report = vek.sign(genoa().report_template(vek)).unwrap();
    let certs = [vek.certificate().clone()];
    let verifier = Verifier::new(genoa().dangerous_trust_anchors());
    let window = |a: i64, b: i64| {
        (
            UnixTime::from_secs(AT.as_secs() + a),
            UnixTime::from_secs(AT.as_secs() + b),
        )
    };

    let (t, n) = window(-100, 100);
    let empty = genoa().ark_crl(&[], t, n).unwrap();
    let v = verifier
        .verify(&report, &certs, &[empty], AT, None)
        .unwrap();
    assert!(v.verification().revocation_checked);

    let revoked = genoa().ark_crl(&[genoa().ask()], t, n).unwrap();
    let err = verifier
        .verify(&report, &certs, &[revoked], AT, None)
        .unwrap_err();
    assert_eq!(err.check(), "revocation");
    assert!(err.to_string().contains("revoked"), "{err}");

    // Stale (one second after nextUpdate) and not yet issued.
    let (t, n) = window(-100, -1);
    assert_eq!(
        verifier
            .verify(
                &report,
                &certs,
                &[genoa().ark_crl(&[], t, n).unwrap()],
                AT,
                None
            )
            .unwrap_err()
            .check(),
        "revocation"
    );
    let (t, n) = window(1, 100);
    assert_eq!(
        verifier
            .verify(
                &report,
                &certs,
                &[genoa().ark_crl(&[], t, n).unwrap()],
                AT,
                None
            )
            .unwrap_err()
            .check(),
        "revocation"
    );

    // A CRL from another PKI with the same ARK name: its signature fails.
    let other = SimPki::new(Product::Genoa).unwrap();
    let (t, n) = window(-100, 100);
    let forged = other.ark_crl(&[], t, n).unwrap();
    let err = verifier
        .verify(&report, &certs, &[forged], AT, None)
        .unwrap_err();
    assert_eq!(err.check(), "revocation");
    // A CRL of another product applies to nothing on the chain.
    let turin_crl = turin().ark_crl(&[], t, n).unwrap();
    assert_eq!(
        verifier
            .verify(&report, &certs, &[turin_crl], AT, None)
            .unwrap_err()
            .check(),
        "revocation"
    );
}

#[test]
fn supplied_intermediates_must_be_signed_by_the_pinned_ark() {
    // An impostor PKI's ASK (same subject) supplied beside a VCEK it issued.
    let other = SimPki::new(Product::Genoa).unwrap();
    let vek = other.issue_vek(&VekSpec::vcek(Product::Genoa)).unwrap();
    let report = vek.sign(other.report_template(&vek)).unwrap();
    let certs = [
        vek.certificate().clone(),
        other.ask().clone(),
        other.ark().clone(),
    ];
    assert_eq!(
        verify_with(genoa(), &report, &certs).unwrap_err().check(),
        "vek_chain"
    );
    // An ASK the pinned ARK signed but the anchors do not hold: its kind (ASK or ASVK) is
    // unknown, so it is refused whatever its subject says, for reports and certificate chains.
    let mut roots = genoa().roots();
    roots.asks.clear();
    let verifier = Verifier::new(TrustAnchors::dangerous_custom(vec![roots]));
    let vek = genoa_vcek();
    let report = vek.sign(genoa().report_template(vek)).unwrap();
    assert_eq!(
        verifier
            .verify(&report, &[vek.certificate().clone()], &[], AT, None)
            .unwrap_err()
            .check(),
        "vek_chain"
    );
    let supplied = [vek.certificate().clone(), genoa().ask().clone()];
    let err = verifier
        .verify(&report, &supplied, &[], AT, None)
        .unwrap_err();
    assert!(
        matches!(err, SnpError::UnknownIntermediate { .. }),
        "{err:?}"
    );
    let err = verifier.verify_chain(&supplied, &[], AT, None).unwrap_err();
    assert!(
        matches!(err, SnpError::UnknownIntermediate { .. }),
        "{err:?}"
    );
    // Test anchors given as a bare ARK (`--dangerous-test-root`) trust what that ARK signed.
    let mut bare = genoa().roots();
    bare.asks.clear();
    bare.asvks.clear();
    let verifier = Verifier::new(TrustAnchors::dangerous_custom(vec![bare]));
    verifier.verify(&report, &supplied, &[], AT, None).unwrap();
    // With the ASK among the anchors both verify.
    let verifier = Verifier::new(genoa().dangerous_trust_anchors());
    verifier.verify(&report, &supplied, &[], AT, None).unwrap();
    verifier.verify_chain(&supplied, &[], AT, None).unwrap();
}

#[test]
fn truncated_and_over_long_reports_are_rejected() {
    let vek = genoa_vcek();
    let report = vek.sign(genoa().report_template(vek)).unwrap();
    let bytes = report.as_bytes();
    assert!(AttestationReport::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut long = bytes.to_vec();
    long.push(0);
    assert!(AttestationReport::from_bytes(&long).is_err());
    assert!(AttestationReport::from_bytes(&[]).is_err());
}

#[test]
fn a_vek_never_issues_certificates() {
    // Whoever extracts one VCEK's key can sign a VEK-shaped certificate claiming any TCB; the
    // real VCEK is no CA (no basicConstraints) and the ASK allows no intermediate below it.
    let vek = genoa_vcek();
    let mut spec = VekSpec::vcek(Product::Genoa);
    spec.tcb.snp = 0xFF;
    let forged = genoa().dangerous_issue_vek_under_vek(&spec, vek).unwrap();
    let verifier = Verifier::new(genoa().dangerous_trust_anchors());
    // The genuine VCEK's chain verifies alone.
    verifier
        .verify_chain(&[vek.certificate().clone()], &[], AT, None)
        .unwrap();
    for certs in [
        vec![forged.certificate().clone(), vek.certificate().clone()],
        vec![
            forged.certificate().clone(),
            vek.certificate().clone(),
            genoa().ask().clone(),
            genoa().ark().clone(),
        ],
    ] {
        let err = verifier.verify_chain(&certs, &[], AT, None).unwrap_err();
        assert_eq!(err.check(), "vek_chain", "{err}");
        let report = forged.sign(genoa().report_template(&forged)).unwrap();
        let err = verifier.verify(&report, &certs, &[], AT, None).unwrap_err();
        assert_eq!(err.check(), "vek_chain", "{err}");
    }
}

#[test]
fn a_vek_must_be_usable_for_signatures_and_carry_no_unprocessed_critical_extension() {
    let verifier = Verifier::new(genoa().dangerous_trust_anchors());
    let key_usage = tessera::pki::builder::key_usage_extension;
    for (extra, rejects) in [
        (vec![key_usage(0x80)], false),
        (vec![key_usage(0x04)], true),
        (
            vec![(
                String::from("1.3.6.1.4.1.3704.1.99"),
                true,
                vec![0x05, 0x00],
            )],
            true,
        ),
    ] {
        let mut spec = VekSpec::vcek(Product::Genoa);
        spec.extra_extensions = extra.clone();
        let vek = genoa().issue_vek(&spec).unwrap();
        let report = vek.sign(genoa().report_template(&vek)).unwrap();
        let certs = [vek.certificate().clone()];
        let verified = verifier.verify(&report, &certs, &[], AT, None);
        let chain = verifier.verify_chain(&certs, &[], AT, None);
        if rejects {
            assert_eq!(verified.unwrap_err().check(), "vek_chain", "{extra:?}");
            assert_eq!(chain.unwrap_err().check(), "vek_chain", "{extra:?}");
        } else {
            verified.unwrap();
            chain.unwrap();
        }
    }
}
