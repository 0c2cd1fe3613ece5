//! SEV-SNP appraisal: every rule passing and failing on simulator reports, "not checked" listing,
//! and strict policies generated from the real-hardware vectors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::sync::OnceLock;

use tessera_pki::{Crl, UnixTime, load_certificates, load_crls};
use tessera_policy::value::{Bit, Hex, RefList, Setting, U64Hex};
use tessera_policy::{
    Appraisal, FirmwareFloor, Outcome, Policy, Revocation, SignerRule, SnpPolicy, TcbFloor,
    TrustClaim, Verdict, appraise, policy_from_evidence,
};
use tessera_snp::abi::{AttestationReport, Product, RawReport, SnpEvidence};
use tessera_snp::sim::{SimPki, SimVek, VekSpec};
use tessera_snp::{TrustAnchors, Verified, Verifier};
use zerocopy::little_endian::{U32, U64};

const AT: UnixTime = UnixTime::from_secs(1_767_225_600); // 2026-01-01

fn genoa() -> &'static SimPki {
    static PKI: OnceLock<SimPki> = OnceLock::new();
    PKI.get_or_init(|| SimPki::new(Product::Genoa).unwrap())
}

fn vcek() -> &'static SimVek {
    static VEK: OnceLock<SimVek> = OnceLock::new();
    VEK.get_or_init(|| genoa().issue_vek(&VekSpec::vcek(Product::Genoa)).unwrap())
}

/// A current CRL of the simulated ARK (revokes nothing).
fn crl(pki: &SimPki) -> Crl {
    pki.ark_crl(
        &[],
        UnixTime::from_secs(AT.as_secs() - 86_400),
        UnixTime::from_secs(AT.as_secs() + 30 * 86_400),
    )
    .unwrap()
}

/// The base report, edited by `edit`, verified with the ARK's current CRL.
fn verified(edit: impl FnOnce(&mut RawReport)) -> Verified<AttestationReport> {
    verified_with_crls(edit, &[crl(genoa())])
}

fn verified_with_crls(
    edit: impl FnOnce(&mut RawReport),
    crls: &[Crl],
) -> Verified<AttestationReport> {
    let vek = vcek();
    let mut raw = genoa().report_template(vek);
    raw.host_data = [0x48; 32];
    raw.family_id = [0xFA; 16];
    raw.image_id = [0x1A; 16];
    raw.id_key_digest = [0x1D; 48];
    raw.author_key_digest = [0xAD; 48];
    raw.report_data = [0x52; 64];
    edit(&mut raw);
    let report = vek.sign(raw).unwrap();
    Verifier::new(genoa().dangerous_trust_anchors())
        .verify(&report, &[vek.certificate().clone()], crls, AT, None)
        .unwrap()
}

fn base() -> &'static Verified<AttestationReport> {
    static V: OnceLock<Verified<AttestationReport>> = OnceLock::new();
    V.get_or_init(|| verified(|_| {}))
}

/// The strict policy generated from the base report.
fn strict() -> Policy {
    policy_from_evidence(base(), "strict")
}

fn with(edit: impl FnOnce(&mut SnpPolicy)) -> Policy {
    let mut p = strict();
    edit(p.snp.as_mut().unwrap());
    p
}

fn rule<'a>(a: &'a Appraisal, name: &str) -> &'a tessera_policy::RuleResult {
    a.rules()
        .iter()
        .find(|r| r.rule == name)
        .unwrap_or_else(|| panic!("no rule {name} in {:#?}", a.rules()))
}

/// Exactly `name` failed (and the verdict is Fail).
fn fails_only(a: &Appraisal, name: &str) {
    let failed: Vec<&str> = a.failures().map(|r| r.rule.as_str()).collect();
    assert_eq!(failed, vec![name], "{:#?}", a.rules());
    assert_eq!(a.verdict(), Verdict::Fail);
}

fn other48() -> Setting<RefList<Hex<48>>> {
    Setting::Is(RefList::Values(vec![Hex([0x99; 48])]))
}

#[test]
fn strict_policy_from_evidence_passes_every_rule() {
    let a = appraise(base(), &strict());
    assert_eq!(a.verdict(), Verdict::Pass, "{:#?}", a.rules());
    let not_checked: Vec<&str> = a
        .rules()
        .iter()
        .filter(|r| r.outcome == Outcome::NotChecked)
        .map(|r| r.rule.as_str())
        .collect();
    // Generated policies leave out only REPORT_DATA (per request), CHIP_ID (one machine) and the
    // denied sets.
    assert_eq!(
        not_checked,
        vec![
            "snp.report_data",
            "snp.denied_id_key_digests",
            "snp.denied_author_key_digests",
            "snp.chip_ids"
        ]
    );
    assert_eq!(a.tee().as_str(), "snp");
    assert_eq!(a.appraised_at(), AT);
    // Every rule of the policy language is listed, once.
    assert_eq!(a.rules().len(), 37);
    let mut names: Vec<&str> = a.rules().iter().map(|r| r.rule.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 37);
    // The policy survives TOML and JSON.
    let p = strict();
    let toml = p.to_toml().unwrap();
    assert_eq!(Policy::from_toml_str(&toml).unwrap(), p);
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(Policy::from_json_str(&json).unwrap(), p);
}

#[test]
fn any_and_absent_are_listed_as_not_checked() {
    let p = Policy::from_toml_str(
        r#"
version = 1
id = "lenient"
[snp]
measurement = "any"
debug = "any"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
"#,
    )
    .unwrap();
    let a = appraise(base(), &p);
    // Provisional firmware is checked by default (committed == current holds here).
    assert_eq!(a.verdict(), Verdict::Pass);
    for name in [
        "snp.measurement",
        "snp.debug",
        "snp.min_tcb",
        "snp.signer",
        "snp.vmpl",
    ] {
        let r = rule(&a, name);
        assert_eq!(r.outcome, Outcome::NotChecked, "{name}");
        assert_eq!(r.note.as_deref(), Some("\"any\" in the policy"), "{name}");
        assert!(!r.actual.is_empty(), "{name} shows the actual value");
    }
    let r = rule(&a, "snp.host_data");
    assert_eq!(r.outcome, Outcome::NotChecked);
    assert_eq!(r.note.as_deref(), Some("not in the policy"));
    assert_eq!(r.actual, "48".repeat(32));
    assert_eq!(
        rule(&a, "snp.permit_provisional_firmware").outcome,
        Outcome::Pass
    );
}

#[test]
fn measurement() {
    let a = appraise(base(), &with(|s| s.measurement = other48()));
    fails_only(&a, "snp.measurement");
    let r = rule(&a, "snp.measurement");
    assert_eq!(r.field, "MEASUREMENT");
    assert_eq!(r.expected, "99".repeat(48));
    assert_eq!(r.actual, "4d".repeat(48));
    assert_eq!(r.claim, TrustClaim::Executables);
    // A list with the actual value among others passes.
    let a = appraise(
        base(),
        &with(|s| {
            s.measurement = Setting::Is(RefList::Values(vec![Hex([0x99; 48]), Hex([0x4D; 48])]));
        }),
    );
    assert_eq!(a.verdict(), Verdict::Pass);
    assert_eq!(rule(&a, "snp.measurement").expected, "one of 2 values");
    // A reference file that was never loaded fails closed.
    let a = appraise(
        base(),
        &with(|s| s.measurement = Setting::Is(RefList::File("m.txt".into()))),
    );
    fails_only(&a, "snp.measurement");
}

#[test]
fn debug() {
    fails_only(
        &appraise(base(), &with(|s| s.debug = Bit::Must)),
        "snp.debug",
    );
    let debuggable = verified(|r| r.policy = U64::new(0x3_0000 | 1 << 19));
    let a = appraise(&debuggable, &strict());
    fails_only(&a, "snp.debug");
    assert_eq!(rule(&a, "snp.debug").actual, "set");
    assert_eq!(rule(&a, "snp.debug").expected, "clear");
}

#[test]
fn min_tcb() {
    let a = appraise(
        base(),
        &with(|s| {
            let Setting::Is(t) = &mut s.min_tcb else {
                panic!()
            };
            t.genoa.as_mut().unwrap().microcode = 73;
            t.genoa.as_mut().unwrap().snp = 24;
        }),
    );
    fails_only(&a, "snp.min_tcb");
    let behind: Vec<&str> = a.behind().iter().map(|b| b.component.as_str()).collect();
    assert_eq!(
        behind,
        vec!["SNP firmware (REPORTED_TCB)", "microcode (REPORTED_TCB)"]
    );
    assert_eq!(a.behind()[1].actual, "72");
    assert_eq!(a.behind()[1].required, "73");
    // A floor for another product only: Genoa evidence has no floor, so it fails.
    let a = appraise(
        base(),
        &with(|s| {
            let Setting::Is(t) = &mut s.min_tcb else {
                panic!()
            };
            t.milan = t.genoa.take();
        }),
    );
    fails_only(&a, "snp.min_tcb");
    // Lower floor passes.
    let a = appraise(
        base(),
        &with(|s| {
            let Setting::Is(t) = &mut s.min_tcb else {
                panic!()
            };
            t.genoa.as_mut().unwrap().microcode = 1;
        }),
    );
    assert!(a.passed());
}

#[test]
fn signer() {
    let vlek_only = |csps: &[&str]| {
        with(|s| {
            s.signer = Setting::Is(SignerRule {
                vcek: false,
                vlek_csps: csps.iter().map(|c| (*c).to_owned()).collect(),
            });
        })
    };
    fails_only(&appraise(base(), &vlek_only(&["aws"])), "snp.signer");

    let vlek = genoa()
        .issue_vek(&VekSpec::vlek(Product::Genoa, "aws"))
        .unwrap();
    let mut raw = genoa().report_template(&vlek);
    raw.measurement = [0x4D; 48];
    let report = vlek.sign(raw).unwrap();
    let v = Verifier::new(genoa().dangerous_trust_anchors())
        .verify(
            &report,
            &[vlek.certificate().clone()],
            &[crl(genoa())],
            AT,
            None,
        )
        .unwrap();
    let p = policy_from_evidence(&v, "vlek");
    assert!(appraise(&v, &p).passed(), "{:#?}", appraise(&v, &p).rules());
    let mut p2 = p.clone();
    p2.snp.as_mut().unwrap().signer = Setting::Is(SignerRule {
        vcek: true,
        vlek_csps: vec!["gcp".into()],
    });
    let a = appraise(&v, &p2);
    fails_only(&a, "snp.signer");
    assert_eq!(rule(&a, "snp.signer").actual, "VLEK of aws");
    assert_eq!(rule(&a, "snp.signer").expected, "VCEK or VLEK of gcp");
    // A VCEK-signed report passes a policy that accepts VCEKs too.
    let a = appraise(
        base(),
        &with(|s| {
            s.signer = Setting::Is(SignerRule {
                vcek: true,
                vlek_csps: vec!["aws".into()],
            });
        }),
    );
    assert!(a.passed());
}

#[test]
fn revocation() {
    // Verified with the ARK's current CRL: "required" passes (the generated policy).
    assert_eq!(
        strict().snp.as_ref().unwrap().revocation,
        Revocation::Required
    );
    let r = appraise(base(), &strict());
    assert_eq!(rule(&r, "snp.revocation").outcome, Outcome::Pass);
    assert_eq!(rule(&r, "snp.revocation").claim, TrustClaim::Hardware);
    // Verified without a CRL: "required" fails, "if-given" lists the rule as not checked.
    let no_crl = verified_with_crls(|_| {}, &[]);
    assert!(!no_crl.verification().revocation_checked);
    let a = appraise(&no_crl, &strict());
    fails_only(&a, "snp.revocation");
    assert!(rule(&a, "snp.revocation").actual.contains("no ARK CRL"));
    let lenient = with(|s| s.revocation = Revocation::IfGiven);
    let a = appraise(&no_crl, &lenient);
    assert!(a.passed(), "{:#?}", a.rules());
    assert_eq!(rule(&a, "snp.revocation").outcome, Outcome::NotChecked);
    // "if-given" with a CRL given: it was applied, and the rule says so.
    let a = appraise(base(), &lenient);
    assert_eq!(rule(&a, "snp.revocation").outcome, Outcome::Pass);
    // The generated policy of evidence verified without a CRL still requires one.
    let p = policy_from_evidence(&no_crl, "no-crl");
    assert_eq!(p.snp.as_ref().unwrap().revocation, Revocation::Required);
    fails_only(&appraise(&no_crl, &p), "snp.revocation");
}

#[test]
fn report_versions() {
    fails_only(
        &appraise(base(), &with(|s| s.report_versions = Some(vec![2, 3]))),
        "snp.report_versions",
    );
    assert!(appraise(base(), &with(|s| s.report_versions = Some(vec![3, 5]))).passed());
}

#[test]
fn min_launch_tcb() {
    let a = appraise(
        base(),
        &with(|s| {
            s.min_launch_tcb
                .as_mut()
                .unwrap()
                .genoa
                .as_mut()
                .unwrap()
                .bootloader = 10;
        }),
    );
    fails_only(&a, "snp.min_launch_tcb");
    assert_eq!(a.behind()[0].component, "boot loader (LAUNCH_TCB)");
}

#[test]
fn provisional_firmware() {
    // Committed firmware behind the current one: provisional firmware is running.
    let provisional = verified(|r| r.committed_build = 39);
    let mut p = strict();
    let a = appraise(&provisional, &p);
    fails_only(&a, "snp.permit_provisional_firmware");
    p.snp.as_mut().unwrap().permit_provisional_firmware = None; // default: denied
    fails_only(
        &appraise(&provisional, &p),
        "snp.permit_provisional_firmware",
    );
    p.snp.as_mut().unwrap().permit_provisional_firmware = Some(true);
    assert!(appraise(&provisional, &p).passed());
    // Committed ahead of current is never consistent.
    let odd = verified(|r| r.committed_build = 41);
    fails_only(&appraise(&odd, &p), "snp.permit_provisional_firmware");
    // The generated policy of provisional evidence permits it, explicitly.
    let gen_p = policy_from_evidence(&provisional, "p");
    assert_eq!(
        gen_p.snp.as_ref().unwrap().permit_provisional_firmware,
        Some(true)
    );
}

/// The firmware floor is one version (major, minor, build): issue 11 found a policy made on
/// firmware 1.42.42 rejecting 1.55.16 because the build was compared on its own.
#[test]
fn firmware_version_is_compared_as_one_version() {
    let floor = |v: &str| -> Option<FirmwareFloor> { Some(v.to_owned().try_into().unwrap()) };
    // The base report runs 1.55.40.
    for below in ["1.55", "1.55.40", "1.42.42", "0.99.255", "1.54.255"] {
        let a = appraise(base(), &with(|s| s.min_firmware_version = floor(below)));
        assert!(
            a.passed(),
            "{below}: {:#?}",
            a.failures().collect::<Vec<_>>()
        );
        assert_eq!(rule(&a, "snp.min_firmware_version").actual, "1.55.40");
    }
    for above in ["1.55.41", "1.56", "1.56.0", "2.0.0"] {
        let a = appraise(base(), &with(|s| s.min_firmware_version = floor(above)));
        fails_only(&a, "snp.min_firmware_version");
    }
    // Made on 1.42.42, the policy accepts an update to 1.55.16 and refuses a rollback.
    let old = verified(|r| {
        r.current_minor = 42;
        r.current_build = 42;
        r.committed_minor = 42;
        r.committed_build = 42;
    });
    let p = policy_from_evidence(&old, "old");
    assert_eq!(
        p.snp.as_ref().unwrap().min_firmware_version,
        floor("1.42.42")
    );
    assert!(appraise(&old, &p).passed());
    let updated = verified(|r| {
        r.current_build = 16;
        r.committed_build = 16;
    });
    let a = appraise(&updated, &p);
    assert_eq!(
        rule(&a, "snp.min_firmware_version").outcome,
        Outcome::Pass,
        "{:#?}",
        a.rules()
    );
    let rollback = verified(|r| {
        r.current_minor = 42;
        r.current_build = 41;
        r.committed_minor = 42;
        r.committed_build = 41;
    });
    fails_only(&appraise(&rollback, &p), "snp.min_firmware_version");
    // The text forms: MAJOR.MINOR and MAJOR.MINOR.BUILD; anything else does not load.
    let text = |v: &str| {
        let mut p = strict();
        p.snp.as_mut().unwrap().min_firmware_version = None;
        p.to_toml().unwrap().replace(
            "[snp]\n",
            &format!("[snp]\nmin_firmware_version = \"{v}\"\n"),
        )
    };
    assert_eq!(
        Policy::from_toml_str(&text("1.55"))
            .unwrap()
            .snp
            .unwrap()
            .min_firmware_version,
        floor("1.55.0")
    );
    for bad in ["1", "1.55.16.2", "1.256", "1.55.x", ""] {
        assert!(Policy::from_toml_str(&text(bad)).is_err(), "{bad}");
    }
    // The old separate build floor is gone: naming it is an unknown field.
    let old_field = text("1.55").replace("min_firmware_version", "min_firmware_build");
    assert!(Policy::from_toml_str(&old_field).is_err());
}

fn flip(b: &mut Option<Bit>) {
    *b = match b {
        Some(Bit::Must) => Some(Bit::MustNot),
        _ => Some(Bit::Must),
    };
}

#[test]
fn guest_policy_bits() {
    type Get = fn(&mut tessera_policy::GuestPolicyRules) -> &mut Option<Bit>;
    let cases: [(&str, Get); 8] = [
        ("smt", |g| &mut g.smt),
        ("migration_agent", |g| &mut g.migration_agent),
        ("single_socket", |g| &mut g.single_socket),
        ("cxl", |g| &mut g.cxl),
        ("aes_256_xts", |g| &mut g.aes_256_xts),
        ("rapl_disabled", |g| &mut g.rapl_disabled),
        ("ciphertext_hiding", |g| &mut g.ciphertext_hiding),
        ("page_swap_disabled", |g| &mut g.page_swap_disabled),
    ];
    for (name, get) in cases {
        let a = appraise(
            base(),
            &with(|s| flip(get(s.guest_policy.as_mut().unwrap()))),
        );
        fails_only(&a, &format!("snp.guest_policy.{name}"));
        assert_eq!(
            rule(&a, &format!("snp.guest_policy.{name}")).claim,
            TrustClaim::Configuration
        );
        let a = appraise(
            base(),
            &with(|s| *get(s.guest_policy.as_mut().unwrap()) = Some(Bit::Any)),
        );
        assert!(a.passed());
        assert_eq!(
            rule(&a, &format!("snp.guest_policy.{name}")).outcome,
            Outcome::NotChecked
        );
    }
    // Evidence side: SMT allowed (bit 16) set in the template; a report without it fails the
    // generated "must".
    let no_smt = verified(|r| r.policy = U64::new(0x2_0000));
    fails_only(&appraise(&no_smt, &strict()), "snp.guest_policy.smt");
}

#[test]
fn platform_info_bits() {
    type Get = fn(&mut tessera_policy::PlatformInfoRules) -> &mut Option<Bit>;
    let cases: [(&str, Get); 7] = [
        ("smt", |g| &mut g.smt),
        ("tsme", |g| &mut g.tsme),
        ("ecc", |g| &mut g.ecc),
        ("rapl_disabled", |g| &mut g.rapl_disabled),
        ("ciphertext_hiding", |g| &mut g.ciphertext_hiding),
        ("alias_check_complete", |g| &mut g.alias_check_complete),
        ("tio", |g| &mut g.tio),
    ];
    for (name, get) in cases {
        let a = appraise(
            base(),
            &with(|s| flip(get(s.platform_info.as_mut().unwrap()))),
        );
        fails_only(&a, &format!("snp.platform_info.{name}"));
    }
}

#[test]
fn vmpl_and_guest_svn() {
    fails_only(
        &appraise(
            base(),
            &with(|s| s.vmpl = Setting::Is(RefList::Values(vec![1, 2]))),
        ),
        "snp.vmpl",
    );
    let vmpl1 = verified(|r| r.vmpl = U32::new(1));
    fails_only(&appraise(&vmpl1, &strict()), "snp.vmpl");
    // "any" is the only way to accept every guest VMPL: listed as not checked on purpose.
    let a = appraise(&vmpl1, &with(|s| s.vmpl = Setting::Any));
    assert!(a.passed());
    assert_eq!(rule(&a, "snp.vmpl").outcome, Outcome::NotChecked);
    assert_eq!(rule(&a, "snp.vmpl").actual, "1");
    // A report the host asked for (SNP_HV_REPORT_REQ: VMPL 0xFFFFFFFF, no guest behind its
    // REPORT_DATA) is no guest VMPL's: "any" refuses it, as every list does.
    let from_host = verified(|r| r.vmpl = U32::new(u32::MAX));
    let a = appraise(&from_host, &with(|s| s.vmpl = Setting::Any));
    fails_only(&a, "snp.vmpl");
    assert_eq!(rule(&a, "snp.vmpl").actual, "4294967295");
    let four = verified(|r| r.vmpl = U32::new(4));
    fails_only(
        &appraise(&four, &with(|s| s.vmpl = Setting::Any)),
        "snp.vmpl",
    );
    let three = verified(|r| r.vmpl = U32::new(3));
    assert!(appraise(&three, &with(|s| s.vmpl = Setting::Any)).passed());
    fails_only(
        &appraise(base(), &with(|s| s.min_guest_svn = Some(2))),
        "snp.min_guest_svn",
    );
    assert!(appraise(base(), &with(|s| s.min_guest_svn = Some(0))).passed());
}

#[test]
fn byte_fields() {
    let one = |b: u8, n: usize| -> String { format!("{b:02x}").repeat(n) };
    fails_only(
        &appraise(
            base(),
            &with(|s| s.host_data = Some(Setting::Is(RefList::Values(vec![Hex([0; 32])])))),
        ),
        "snp.host_data",
    );
    let a = appraise(
        base(),
        &with(|s| s.report_data = Some(Setting::Is(RefList::Values(vec![Hex([0; 64])])))),
    );
    fails_only(&a, "snp.report_data");
    assert_eq!(rule(&a, "snp.report_data").claim, TrustClaim::SourcedData);
    assert_eq!(rule(&a, "snp.report_data").actual, one(0x52, 64));
    assert!(
        appraise(
            base(),
            &with(|s| s.report_data = Some(Setting::Is(RefList::Values(vec![Hex([0x52; 64])]))))
        )
        .passed()
    );
    fails_only(
        &appraise(
            base(),
            &with(|s| s.family_id = Some(Setting::Is(RefList::Values(vec![Hex([0; 16])])))),
        ),
        "snp.family_id",
    );
    fails_only(
        &appraise(
            base(),
            &with(|s| s.image_id = Some(Setting::Is(RefList::Values(vec![Hex([0; 16])])))),
        ),
        "snp.image_id",
    );
    fails_only(
        &appraise(base(), &with(|s| s.id_key_digests = Some(other48()))),
        "snp.id_key_digests",
    );
    fails_only(
        &appraise(base(), &with(|s| s.author_key_digests = Some(other48()))),
        "snp.author_key_digests",
    );
    fails_only(
        &appraise(
            base(),
            &with(|s| s.chip_ids = Some(Setting::Is(RefList::Values(vec![Hex([0; 64])])))),
        ),
        "snp.chip_ids",
    );
    let chip: [u8; 64] = core::array::from_fn(|i| 0xA0 ^ u8::try_from(i).unwrap());
    assert!(
        appraise(
            base(),
            &with(|s| s.chip_ids = Some(Setting::Is(RefList::Values(vec![Hex(chip)]))))
        )
        .passed()
    );
}

/// A policy that trusts an ID block signer (`measurement = "any"`, an ID or author key pinned)
/// accepts every image that key signed, so it must name the images and the lowest version: the
/// loader refuses it without `family_id`, `image_id` or `min_guest_svn`, and a policy built in
/// code fails those rules. Pinned (or `"any"` on purpose), it passes; with the measurement
/// pinned, none of the three is needed.
#[test]
fn a_policy_trusting_an_id_key_must_pin_images_and_version() {
    let v = base();
    let key = tessera_pki::to_hex(v.report().id_key_digest());
    for key_field in ["id_key_digests", "author_key_digests"] {
        let text = |extra: &str| {
            format!(
                "version = 1\nid = \"signer\"\n[snp]\nmeasurement = \"any\"\n\
                 debug = \"must-not\"\nmin_tcb = \"any\"\nsigner = \"any\"\nvmpl = \"any\"\n\
                 revocation = \"if-given\"\n{key_field} = \"{key}\"\n{extra}"
            )
        };
        let e = Policy::from_toml_str(&text("")).unwrap_err().to_string();
        assert!(
            e.contains("snp.family_id") && e.contains("ID or author key"),
            "{e}"
        );
        let e = Policy::from_toml_str(&text("family_id = \"any\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("snp.image_id"), "{e}");
        let e = Policy::from_toml_str(&text("family_id = \"any\"\nimage_id = \"any\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("snp.min_guest_svn") && e.contains("write 0"),
            "{e}"
        );
        let p = Policy::from_toml_str(&text(
            "family_id = \"any\"\nimage_id = \"any\"\nmin_guest_svn = 0\n",
        ))
        .unwrap();
        let w = p.warnings();
        let m = w.iter().find(|w| w.field == "snp.measurement").unwrap();
        assert!(m.message.contains("ID or author key signed"), "{w:?}");
    }

    // Built in code, past the loader: the three rules fail, with the reason.
    let p = with(|s| {
        s.measurement = Setting::Any;
        s.family_id = None;
        s.image_id = None;
        s.min_guest_svn = None;
    });
    let a = appraise(v, &p);
    assert_eq!(a.verdict(), Verdict::Fail);
    for name in ["snp.family_id", "snp.image_id", "snp.min_guest_svn"] {
        let r = rule(&a, name);
        assert_eq!(r.outcome, Outcome::Fail, "{r:#?}");
        assert!(
            r.note.as_deref().unwrap().contains("ID block signer"),
            "{r:#?}"
        );
    }
    let p = with(|s| {
        s.measurement = Setting::Any;
        s.family_id = Some(Setting::Any);
        s.image_id = Some(Setting::Any);
        s.min_guest_svn = Some(0);
    });
    assert!(appraise(v, &p).passed());
    // The author key alone pinned is signer trust too.
    let p = with(|s| {
        s.measurement = Setting::Any;
        s.id_key_digests = None;
        s.family_id = None;
        s.image_id = None;
        s.min_guest_svn = None;
    });
    assert!(matches!(
        p.snp.as_ref().unwrap().author_key_digests,
        Some(Setting::Is(_))
    ));
    let a = appraise(v, &p);
    for name in ["snp.family_id", "snp.image_id", "snp.min_guest_svn"] {
        assert_eq!(rule(&a, name).outcome, Outcome::Fail, "{name}");
    }
    // The keys trusted as "any" (or not judged) is no signer trust: nothing more is needed.
    let p = with(|s| {
        s.measurement = Setting::Any;
        s.id_key_digests = Some(Setting::Any);
        s.author_key_digests = None;
        s.family_id = None;
        s.image_id = None;
        s.min_guest_svn = None;
    });
    assert!(appraise(v, &p).passed(), "{:#?}", appraise(v, &p).rules());
    // The measurement pinned: none of them is needed.
    let p = with(|s| {
        s.family_id = None;
        s.image_id = None;
        s.min_guest_svn = None;
    });
    assert!(appraise(v, &p).passed());
}

#[test]
fn denied_key_digests() {
    // Denied sets apply even when the trusted set is "any".
    let a = appraise(
        base(),
        &with(|s| {
            s.id_key_digests = Some(Setting::Any);
            s.denied_id_key_digests = Some(RefList::Values(vec![Hex([0x99; 48]), Hex([0x1D; 48])]));
        }),
    );
    fails_only(&a, "snp.denied_id_key_digests");
    assert_eq!(
        rule(&a, "snp.denied_id_key_digests").expected,
        "not one of 2 values"
    );
    fails_only(
        &appraise(
            base(),
            &with(|s| s.denied_author_key_digests = Some(RefList::Values(vec![Hex([0xAD; 48])]))),
        ),
        "snp.denied_author_key_digests",
    );
    assert!(
        appraise(
            base(),
            &with(|s| s.denied_author_key_digests = Some(RefList::Values(vec![Hex([0x99; 48])])))
        )
        .passed()
    );
}

#[test]
fn mitigation_vectors() {
    fails_only(
        &appraise(
            base(),
            &with(|s| s.min_launch_mit_vector = Some(U64Hex(0b11))),
        ),
        "snp.min_launch_mit_vector",
    );
    fails_only(
        &appraise(
            base(),
            &with(|s| s.min_current_mit_vector = Some(U64Hex(0b10))),
        ),
        "snp.min_current_mit_vector",
    );
    // A v3 report has no mitigation vectors: a floor on them fails with a note.
    let v3 = verified(|r| {
        r.version = U32::new(3);
        (r.launch_mit_vector, r.current_mit_vector) = (U64::new(0), U64::new(0));
    });
    let mut p = strict();
    p.snp.as_mut().unwrap().report_versions = Some(vec![3, 5]);
    let a = appraise(&v3, &p);
    let failed: Vec<&str> = a.failures().map(|r| r.rule.as_str()).collect();
    assert_eq!(
        failed,
        vec!["snp.min_launch_mit_vector", "snp.min_current_mit_vector"]
    );
    assert!(
        rule(&a, "snp.min_launch_mit_vector")
            .note
            .as_deref()
            .unwrap()
            .contains("version 3")
    );
}

#[test]
fn turin_floors_include_fmc() {
    let pki = SimPki::new(Product::Turin).unwrap();
    let vek = pki.issue_vek(&VekSpec::vcek(Product::Turin)).unwrap();
    let report = vek.sign(pki.report_template(&vek)).unwrap();
    let v = Verifier::new(pki.dangerous_trust_anchors())
        .verify(
            &report,
            &[vek.certificate().clone()],
            &[crl(&pki)],
            AT,
            None,
        )
        .unwrap();
    let p = policy_from_evidence(&v, "turin");
    let toml = p.to_toml().unwrap();
    assert!(toml.contains("fmc = 1"), "{toml}");
    assert!(appraise(&v, &p).passed());
    let mut p2 = p.clone();
    let Setting::Is(t) = &mut p2.snp.as_mut().unwrap().min_tcb else {
        panic!()
    };
    t.turin = Some(TcbFloor {
        fmc: Some(2),
        ..t.turin.unwrap()
    });
    let a = appraise(&v, &p2);
    fails_only(&a, "snp.min_tcb");
    assert_eq!(a.behind()[0].component, "FMC firmware (REPORTED_TCB)");
    // A Turin floor without fmc (a policy made in code: the loader refuses one) accepts no
    // Turin TCB, rather than taking the missing component as 0.
    let mut p3 = p.clone();
    let Setting::Is(t) = &mut p3.snp.as_mut().unwrap().min_tcb else {
        panic!()
    };
    t.turin = Some(TcbFloor {
        fmc: None,
        ..t.turin.unwrap()
    });
    let a = appraise(&v, &p3);
    fails_only(&a, "snp.min_tcb");
    let rule = a.failures().next().unwrap();
    assert!(
        rule.note
            .as_deref()
            .is_some_and(|n| n.contains("names no fmc")),
        "{rule:?}"
    );
}

#[test]
fn a_policy_without_an_snp_section_fails() {
    let p = Policy::from_toml_str(
        r#"
version = 1
id = "tdx-only"
[tdx]
mr_td = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
debug = "must-not"
[tdx.tcb]
accepted_statuses = ["UpToDate"]
"#,
    )
    .unwrap();
    let a = appraise(base(), &p);
    assert_eq!(a.verdict(), Verdict::Fail);
    assert_eq!(a.rules().len(), 1);
    assert_eq!(a.rules()[0].rule, "snp");
}

#[test]
fn failures_are_listed_first() {
    let a = appraise(base(), &with(|s| s.min_guest_svn = Some(9)));
    let ordered = a.ordered();
    assert_eq!(ordered[0].rule, "snp.min_guest_svn");
    assert_eq!(ordered.last().unwrap().outcome, Outcome::NotChecked);
}

/// Real evidence: a policy generated from each accepted vector accepts it (also after a TOML
/// round trip), and rejects every other vector with another measurement on `snp.measurement`.
#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn generated_policies_on_real_vectors() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let verifier = Verifier::new(TrustAnchors::amd().unwrap());
    let mut verified = Vec::new();
    for dir in common::cases(&vectors, "snp") {
        let case = common::case(&dir);
        if case["expect"]["verdict"] != "accept" {
            continue;
        }
        let Some(evidence) = case["evidence"].as_str() else {
            continue;
        };
        let read = |key: &str| -> Vec<Vec<u8>> {
            case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| std::fs::read(dir.join(f.as_str().unwrap())).unwrap())
                .collect()
        };
        let certs: Vec<_> = read("certs")
            .iter()
            .flat_map(|b| load_certificates(b).unwrap())
            .collect();
        let crls: Vec<_> = read("crls")
            .iter()
            .flat_map(|b| load_crls(b).unwrap())
            .collect();
        let at = UnixTime::parse_rfc3339(case["at"].as_str().unwrap()).unwrap();
        let ev = SnpEvidence::parse(&std::fs::read(dir.join(evidence)).unwrap()).unwrap();
        let v = verifier
            .verify_evidence(ev, &certs, &crls, at, None)
            .unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut p = policy_from_evidence(&v, &name);
        // Generated policies require the ARK's CRL; the vectors' CRLs are not current at the
        // cases' times, so only snp.revocation fails, and "if-given" accepts.
        let a = appraise(&v, &p);
        assert!(!v.verification().revocation_checked, "{name}");
        fails_only(&a, "snp.revocation");
        p.snp.as_mut().unwrap().revocation = Revocation::IfGiven;
        let a = appraise(&v, &p);
        assert!(
            a.passed(),
            "{name}: {:#?}",
            a.failures().collect::<Vec<_>>()
        );
        let back = Policy::from_toml_str(&p.to_toml().unwrap()).unwrap();
        assert!(appraise(&v, &back).passed(), "{name} after TOML");
        verified.push((name, v, p));
    }
    assert!(
        verified.len() >= 10,
        "only {} accepted SNP vectors",
        verified.len()
    );
    let mut rejections = 0;
    for (name, _, p) in &verified {
        for (other, v, _) in &verified {
            if v.report().measurement() == verified_measurement(&verified, name) {
                continue;
            }
            let a = appraise(v, p);
            assert_eq!(
                a.verdict(),
                Verdict::Fail,
                "{name}'s policy accepted {other}"
            );
            assert_eq!(rule(&a, "snp.measurement").outcome, Outcome::Fail);
            rejections += 1;
        }
    }
    assert!(rejections > 0);
}

fn verified_measurement<'a>(
    all: &'a [(String, Verified<SnpEvidence>, Policy)],
    name: &str,
) -> &'a [u8; 48] {
    all.iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, v, _)| v.report().measurement())
        .unwrap()
}
