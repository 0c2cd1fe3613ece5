//! TDX and SGX appraisal: every rule passing and failing on quotes signed by the simulator's
//! fake Intel PKI, the "not checked" listing, a policy without the quote's section, and strict
//! policies generated from the real vectors (accept their own quote, survive a TOML round trip,
//! reject a quote with another measurement).
//!
//! Most cases start from the strict policy generated from the evidence — it passes every rule
//! it states — and change one rule, so each failure is exactly the rule under test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tessera_pki::builder::IssuerKey;
use tessera_pki::{PublicKeyKind, UnixTime, sha256};
use tessera_policy::value::{AllowList, Bit, Duration, Hex, RefList, Setting, U64Hex};
use tessera_policy::{
    Appraisal, MaskedValue, Outcome, Policy, RuleResult, SgxAttributesRule, SgxPolicy, StatusName,
    TdAttribute, TdAttributeRules, TdxPolicy, Tee, TrustClaim, Verdict, appraise,
    policy_from_evidence,
};
use tessera_tdx::abi::{Quote, QuoteBody};
use tessera_tdx::collateral::{Collateral, TcbStatus};
use tessera_tdx::sim::{
    CollateralSpec, IsvLevelSpec, PlatformSpec, QuoteSpec, SIM_ISSUE_DATE, SIM_VERIFY_AT, SimPck,
    SimPcs,
};
use tessera_tdx::{TrustAnchors, Verified, Verifier, VerifyOptions};

const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------------------------
// Simulator evidence.

fn pcs() -> &'static SimPcs {
    static PCS: OnceLock<SimPcs> = OnceLock::new();
    PCS.get_or_init(|| SimPcs::new().unwrap())
}

fn pck() -> &'static SimPck {
    static PCK: OnceLock<SimPck> = OnceLock::new();
    PCK.get_or_init(|| pcs().issue_pck(&PlatformSpec::default()).unwrap())
}

/// `days` before the simulated collateral's issue date.
fn days_before_issue(days: i64) -> UnixTime {
    UnixTime::from_secs(SIM_ISSUE_DATE.as_secs() - days * DAY)
}

fn isv(isvsvn: u16, status: TcbStatus, days: i64, advisories: &[&str]) -> IsvLevelSpec {
    IsvLevelSpec {
        isvsvn,
        status,
        date: days_before_issue(days),
        advisories: advisories.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// A quote spec and the collateral spec it is verified under.
struct Sim {
    spec: QuoteSpec,
    coll: CollateralSpec,
}

impl Sim {
    fn new(spec: QuoteSpec) -> Self {
        let coll = CollateralSpec::matching(&pck().platform, &spec, TcbStatus::UpToDate);
        Self { spec, coll }
    }

    /// Collateral under which the platform level has `status` (a newer UpToDate level exists).
    fn status(mut self, status: TcbStatus) -> Self {
        self.coll = CollateralSpec::matching(&pck().platform, &self.spec, status);
        self
    }

    fn verify(&self) -> Verified<Quote> {
        let quote = pcs().quote(pck(), &self.spec).unwrap();
        let collateral: Collateral = pcs().collateral(&self.coll).unwrap();
        Verifier::new(pcs().dangerous_trust_anchors())
            .verify(
                &quote,
                &collateral,
                SIM_VERIFY_AT,
                &VerifyOptions::default(),
            )
            .expect("simulated evidence verifies")
    }
}

fn td10() -> &'static Verified<Quote> {
    static V: OnceLock<Verified<Quote>> = OnceLock::new();
    V.get_or_init(|| Sim::new(QuoteSpec::tdx()).verify())
}

fn td15() -> &'static Verified<Quote> {
    static V: OnceLock<Verified<Quote>> = OnceLock::new();
    V.get_or_init(|| Sim::new(QuoteSpec::tdx15()).verify())
}

fn td15ex() -> &'static Verified<Quote> {
    static V: OnceLock<Verified<Quote>> = OnceLock::new();
    V.get_or_init(|| Sim::new(QuoteSpec::tdx15ex()).verify())
}

fn sgx() -> &'static Verified<Quote> {
    static V: OnceLock<Verified<Quote>> = OnceLock::new();
    V.get_or_init(|| Sim::new(QuoteSpec::sgx()).verify())
}

/// The SGX quote spec of an enclave with key separation and sharing (ATTRIBUTES.KSS).
fn kss_spec() -> QuoteSpec {
    let mut spec = QuoteSpec::sgx();
    spec.sgx_attributes[0] |= 0x80;
    spec
}

/// `spec`'s quote with its body changed by `edit` (fields the simulator does not set: an SGX
/// report's KSS fields, a TD 1.5ex body's VMID), signed again as a quoting enclave would: a
/// fresh attestation key, bound by the QE report, which the PCK key signs. It verifies.
fn edited(spec: QuoteSpec, edit: impl FnOnce(&mut QuoteBody)) -> Verified<Quote> {
    let sim = Sim::new(spec);
    let quote = pcs().quote(pck(), &sim.spec).unwrap();
    let mut body = quote.body().clone();
    edit(&mut body);
    let key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
    let mut sig = quote.signature_data().clone();
    sig.attestation_key = key.public_key().raw()[1..].try_into().unwrap();
    let mut bound = sig.attestation_key.to_vec();
    bound.extend_from_slice(&sig.certification.qe_auth_data);
    let qe_report_data = &mut sig.certification.qe_report.report_data;
    qe_report_data[..32].copy_from_slice(&sha256(&bound));
    qe_report_data[32..].fill(0);
    sig.certification.qe_report_signature =
        pck().sign(&sig.certification.qe_report_bytes()).unwrap();
    let unsigned = Quote::new(quote.header().clone(), body, sig).unwrap();
    let signature = key.sign_fixed(unsigned.signed_bytes()).unwrap();
    let quote = unsigned.with_signature(signature.as_slice().try_into().unwrap());
    Verifier::new(pcs().dangerous_trust_anchors())
        .verify(
            &quote,
            &pcs().collateral(&sim.coll).unwrap(),
            SIM_VERIFY_AT,
            &VerifyOptions::default(),
        )
        .expect("the edited quote verifies")
}

/// A TD 1.5ex quote from VMID `vmid`.
fn td15ex_from(vmid: u8) -> Verified<Quote> {
    edited(QuoteSpec::tdx15ex(), |body| match body {
        QuoteBody::Td15Ex(td) => td.vmid = vmid,
        other => panic!("not a TD 1.5ex body: {other:?}"),
    })
}

/// A KSS enclave's quote with these ISVEXTPRODID, ISVFAMILYID, CONFIGID and CONFIGSVN.
fn kss_enclave(ext: [u8; 16], family: [u8; 16], config: [u8; 64], svn: u16) -> Verified<Quote> {
    edited(kss_spec(), |body| match body {
        QuoteBody::Sgx(report) => {
            report.set_isv_ext_prod_id(ext);
            report.set_isv_family_id(family);
            report.set_config_id(config);
            report.set_config_svn(svn);
        }
        other => panic!("not an SGX body: {other:?}"),
    })
}

/// Evidence whose platform level is OutOfDate (advisory INTEL-SA-00001, tcbDate 400 days
/// before issue, verified one day after issue).
fn out_of_date(spec: QuoteSpec) -> Verified<Quote> {
    Sim::new(spec).status(TcbStatus::OutOfDate).verify()
}

// ---------------------------------------------------------------------------------------------
// Policies and assertions.

fn strict(v: &Verified<Quote>) -> Policy {
    policy_from_evidence(v, "strict")
}

fn tdx(p: &mut Policy) -> &mut TdxPolicy {
    p.tdx.as_mut().expect("a [tdx] section")
}

fn sgx_section(p: &mut Policy) -> &mut SgxPolicy {
    p.sgx.as_mut().expect("an [sgx] section")
}

/// The TCB controls of whichever section the policy has.
fn tcb(p: &mut Policy) -> &mut tessera_policy::IntelTcbPolicy {
    match (&mut p.tdx, &mut p.sgx) {
        (Some(t), _) => &mut t.tcb,
        (None, Some(s)) => &mut s.tcb,
        (None, None) => panic!("no TDX or SGX section"),
    }
}

fn pin<const N: usize>(v: [u8; N]) -> AllowList<N> {
    Setting::Is(RefList::Values(vec![Hex(v)]))
}

fn names(a: &Appraisal) -> Vec<&str> {
    a.rules().iter().map(|r| r.rule.as_str()).collect()
}

#[track_caller]
fn rule<'a>(a: &'a Appraisal, name: &str) -> &'a RuleResult {
    a.rules()
        .iter()
        .find(|r| r.rule == name)
        .unwrap_or_else(|| panic!("no rule {name} in {:?}", names(a)))
}

/// `name` passed and so did the appraisal.
#[track_caller]
fn passes(a: &Appraisal, name: &str) -> RuleResult {
    let r = rule(a, name);
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    let failed: Vec<&RuleResult> = a.failures().collect();
    assert!(failed.is_empty(), "unexpected failures: {failed:#?}");
    assert_eq!(a.verdict(), Verdict::Pass);
    assert!(a.passed());
    r.clone()
}

/// `name` failed, no other rule did, and the verdict is Fail.
#[track_caller]
fn fails_only(a: &Appraisal, name: &str) -> RuleResult {
    let r = rule(a, name);
    assert_eq!(r.outcome, Outcome::Fail, "{r:#?}");
    let failed: Vec<&str> = a.failures().map(|r| r.rule.as_str()).collect();
    assert_eq!(failed, [name]);
    assert_eq!(a.verdict(), Verdict::Fail);
    assert!(!a.passed());
    r.clone()
}

/// `name` is listed as not checked, with the note saying whether the policy said `any`.
#[track_caller]
fn not_checked(a: &Appraisal, name: &str, any: bool) -> RuleResult {
    let r = rule(a, name);
    assert_eq!(r.outcome, Outcome::NotChecked, "{r:#?}");
    let note = r.note.as_deref().unwrap_or_default();
    if any {
        assert!(note.contains("\"any\" in the policy"), "{r:#?}");
    } else {
        assert!(note.contains("not in the policy"), "{r:#?}");
    }
    r.clone()
}

// ---------------------------------------------------------------------------------------------
// Whole appraisals.

const TDX_RULES: [&str; 30] = [
    "tdx.mr_td",
    "tdx.debug",
    "tdx.tcb.accepted_statuses",
    "tdx.tcb.grace_period",
    "tdx.tcb.denied_advisories",
    "tdx.tcb.min_evaluation_data_number",
    "tdx.tcb.max_collateral_age",
    "tdx.tcb.min_qe_svn",
    "tdx.tcb.min_pce_svn",
    "tdx.tcb.revocation",
    "tdx.rtmr0",
    "tdx.rtmr1",
    "tdx.rtmr2",
    "tdx.rtmr3",
    "tdx.mr_config_id",
    "tdx.mr_owner",
    "tdx.mr_owner_config",
    "tdx.mr_seam",
    "tdx.mr_signer_seam",
    "tdx.mr_service_td",
    "tdx.report_data",
    "tdx.td_attributes.debug",
    "tdx.td_attributes.sept_ve_disable",
    "tdx.td_attributes.migratable",
    "tdx.td_attributes.pks",
    "tdx.td_attributes.kl",
    "tdx.td_attributes.perfmon",
    "tdx.xfam",
    "tdx.min_tee_tcb_svn",
    "tdx.vmids",
];

const SGX_RULES: [&str; 19] = [
    "sgx.mr_enclave",
    "sgx.mr_signer",
    "sgx.debug",
    "sgx.tcb.accepted_statuses",
    "sgx.tcb.grace_period",
    "sgx.tcb.denied_advisories",
    "sgx.tcb.min_evaluation_data_number",
    "sgx.tcb.max_collateral_age",
    "sgx.tcb.min_qe_svn",
    "sgx.tcb.min_pce_svn",
    "sgx.tcb.revocation",
    "sgx.isv_prod_id",
    "sgx.min_isv_svn",
    "sgx.isv_ext_prod_id",
    "sgx.isv_family_id",
    "sgx.config_id",
    "sgx.min_config_svn",
    "sgx.attributes",
    "sgx.report_data",
];

/// The KSS identity rules, which a strict policy leaves out for an enclave without KSS.
const KSS_RULES: [&str; 4] = [
    "sgx.isv_ext_prod_id",
    "sgx.isv_family_id",
    "sgx.config_id",
    "sgx.min_config_svn",
];

/// Rules a strict policy leaves to the operator.
const LEFT_TO_OPERATOR: [&str; 5] = [
    "tcb.grace_period",
    "tcb.denied_advisories",
    "tcb.max_collateral_age",
    "report_data",
    "td_attributes.debug",
];

fn left_to_operator(rule: &str) -> bool {
    let local = rule.split_once('.').map_or(rule, |(_, r)| r);
    LEFT_TO_OPERATOR.contains(&local)
}

#[test]
fn strict_tdx_policy_lists_every_rule_in_field_order_and_accepts_its_quote() {
    for (v, name) in [
        (td10(), "TD 1.0"),
        (td15(), "TD 1.5"),
        (td15ex(), "TD 1.5ex"),
    ] {
        let p = strict(v);
        let a = appraise(v, &p);
        assert_eq!(names(&a), TDX_RULES, "{name}");
        assert_eq!(a.tee(), Tee::Tdx);
        assert_eq!(a.policy_id(), "strict");
        assert_eq!(a.appraised_at(), SIM_VERIFY_AT);
        assert_eq!(a.tcb_status(), Some("UpToDate"));
        assert!(a.advisory_ids().is_empty());
        assert!(a.behind().is_empty());
        assert_eq!(a.verdict(), Verdict::Pass, "{name}: {:#?}", a.rules());
        for r in a.rules() {
            let want = if left_to_operator(&r.rule)
                || (r.rule == "tdx.mr_service_td" && v.quote().body().td15().is_none())
            {
                Outcome::NotChecked
            } else {
                Outcome::Pass
            };
            assert_eq!(r.outcome, want, "{name}: {r:#?}");
        }
    }
    // TD 1.5 pins MRSERVICETD, TD 1.0 has none to pin.
    assert!(strict(td15()).tdx.unwrap().mr_service_td.is_some());
    assert!(strict(td10()).tdx.unwrap().mr_service_td.is_none());
    // TD 1.5ex pins its VMID; the others have none, and the default accepts the TD itself.
    assert_eq!(strict(td15ex()).tdx.unwrap().vmids, Some(vec![0]));
    assert_eq!(strict(td15()).tdx.unwrap().vmids, None);
    assert_eq!(
        rule(&appraise(td15ex(), &strict(td15ex())), "tdx.vmids").actual,
        "0"
    );
}

#[test]
fn strict_sgx_policy_lists_every_rule_in_field_order_and_accepts_its_quote() {
    let kss = kss_enclave([0xe1; 16], [0xf1; 16], [0xc1; 64], 3);
    for (v, with_kss) in [(sgx(), false), (&kss, true)] {
        let p = strict(v);
        assert!(p.tdx.is_none() && p.snp.is_none());
        let a = appraise(v, &p);
        assert_eq!(names(&a), SGX_RULES);
        assert_eq!(a.tee(), Tee::Sgx);
        assert_eq!(a.appraised_at(), SIM_VERIFY_AT);
        assert_eq!(a.verdict(), Verdict::Pass, "{:#?}", a.rules());
        for r in a.rules() {
            let want = if left_to_operator(&r.rule)
                || (!with_kss && KSS_RULES.contains(&r.rule.as_str()))
            {
                Outcome::NotChecked
            } else {
                Outcome::Pass
            };
            assert_eq!(r.outcome, want, "KSS {with_kss}: {r:#?}");
        }
    }
    // The KSS identity is pinned (CONFIGSVN as the floor) only for a KSS enclave.
    let g = strict(&kss).sgx.unwrap();
    assert_eq!(g.isv_ext_prod_id, Some(pin([0xe1; 16])));
    assert_eq!(g.isv_family_id, Some(pin([0xf1; 16])));
    assert_eq!(g.config_id, Some(pin([0xc1; 64])));
    assert_eq!(g.min_config_svn, Some(3));
    let g = strict(sgx()).sgx.unwrap();
    assert_eq!(
        (
            g.isv_ext_prod_id,
            g.isv_family_id,
            g.config_id,
            g.min_config_svn
        ),
        (None, None, None, None)
    );
}

/// A quote verified without the PCK and Root CA CRLs (a verifier told to allow missing CRLs):
/// `tcb.revocation` fails it when absent (fail closed) or `"required"`, and passes it only
/// with `"if-given"`; a policy made from it says `"if-given"`, from evidence with CRLs
/// `"required"`.
#[test]
fn a_quote_verified_without_crls_fails_tcb_revocation_unless_if_given() {
    let spec = QuoteSpec::tdx15();
    let quote = pcs().quote(pck(), &spec).unwrap();
    let coll = CollateralSpec::matching(&pck().platform, &spec, TcbStatus::UpToDate);
    let mut bundle: serde_json::Value =
        serde_json::from_str(&pcs().collateral_json(&coll).unwrap()).unwrap();
    for key in ["pck_crl", "root_ca_crl", "pck_crl_issuer_chain"] {
        bundle.as_object_mut().unwrap().remove(key);
    }
    let collateral = Collateral::from_bundle_json(bundle.to_string().as_bytes()).unwrap();
    let v = Verifier::new(pcs().dangerous_trust_anchors())
        .verify(
            &quote,
            &collateral,
            SIM_VERIFY_AT,
            &VerifyOptions::default().allow_missing_crls(true),
        )
        .expect("verifies with missing CRLs allowed");
    assert!(!v.verification().revocation_checked);
    let mut p = strict(td15());
    assert_eq!(
        tdx(&mut p).tcb.revocation,
        Some(tessera_policy::Revocation::Required)
    );
    for setting in [None, Some(tessera_policy::Revocation::Required)] {
        tdx(&mut p).tcb.revocation = setting;
        let a = appraise(&v, &p);
        assert_eq!(a.verdict(), Verdict::Fail, "{setting:?}");
        let r = rule(&a, "tdx.tcb.revocation");
        assert_eq!(r.outcome, Outcome::Fail, "{setting:?}: {r:#?}");
        assert!(r.actual.contains("without CRLs"), "{r:#?}");
    }
    // "if-given" accepts it, and says the CRLs were not checked (not a pass).
    tdx(&mut p).tcb.revocation = Some(tessera_policy::Revocation::IfGiven);
    let a = appraise(&v, &p);
    assert_eq!(a.verdict(), Verdict::Pass);
    let r = rule(&a, "tdx.tcb.revocation");
    assert_eq!(r.outcome, Outcome::NotChecked, "{r:#?}");
    assert!(
        r.note.as_deref().unwrap().contains("not supplied"),
        "{r:#?}"
    );
    let mut own = strict(&v);
    assert_eq!(
        tdx(&mut own).tcb.revocation,
        Some(tessera_policy::Revocation::IfGiven)
    );
}

#[test]
fn absent_and_any_rules_are_listed_as_not_checked() {
    let p = Policy::from_toml_str(
        r#"
version = 1
id = "minimal"
[tdx]
mr_td = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
debug = "any"
[tdx.tcb]
accepted_statuses = "any"
[sgx]
mr_enclave = "any"
mr_signer = "any"
debug = "any"
[sgx.tcb]
accepted_statuses = "any"
"#,
    )
    .unwrap();
    let a = appraise(td15(), &p);
    // Without td_attributes the bits are one rule.
    let mut want: Vec<&str> = TDX_RULES[..21].to_vec();
    want.extend([
        "tdx.td_attributes",
        "tdx.xfam",
        "tdx.min_tee_tcb_svn",
        "tdx.vmids",
    ]);
    assert_eq!(names(&a), want);
    // Every rule is unchecked but tcb.revocation and vmids, which fail closed when absent:
    // the CRLs were applied here, and a TD 1.5 body is the TD's own (VMID 0), so they pass.
    let fail_closed = ["tdx.tcb.revocation", "tdx.vmids"];
    assert!(
        a.rules()
            .iter()
            .all(|r| (r.outcome == Outcome::NotChecked) != fail_closed.contains(&r.rule.as_str()))
    );
    passes(&a, "tdx.tcb.revocation");
    passes(&a, "tdx.vmids");
    assert_eq!(a.verdict(), Verdict::Pass);
    let stated_any = [
        "tdx.mr_td",
        "tdx.rtmr0",
        "tdx.rtmr1",
        "tdx.rtmr2",
        "tdx.rtmr3",
        "tdx.debug",
        "tdx.tcb.accepted_statuses",
    ];
    for any in stated_any {
        not_checked(&a, any, true);
    }
    for absent in want.iter().filter(|n| !stated_any.contains(n)) {
        if ![
            "tdx.debug",
            "tdx.tcb.accepted_statuses",
            "tdx.tcb.revocation",
            "tdx.vmids",
        ]
        .contains(absent)
        {
            not_checked(&a, absent, false);
        }
    }
    // With `debug = "any"` as well, the td_attributes row says nothing checks DEBUG.
    assert!(
        rule(&a, "tdx.td_attributes")
            .note
            .as_deref()
            .unwrap()
            .contains("nothing checks TD_ATTRIBUTES.DEBUG"),
        "{:#?}",
        rule(&a, "tdx.td_attributes")
    );
    // With `debug = "must-not"`, it points at that rule instead.
    let mut strict_debug = p.clone();
    tdx(&mut strict_debug).debug = Bit::MustNot;
    let b = appraise(td15(), &strict_debug);
    passes(&b, "tdx.debug");
    let note = rule(&b, "tdx.td_attributes").note.clone().unwrap();
    assert!(
        note.contains("not in the policy") && note.contains("checked by the tdx.debug rule"),
        "{note}"
    );
    // The actual value is still shown.
    assert_eq!(rule(&a, "tdx.mr_td").actual, "7d".repeat(48));
    assert_eq!(rule(&a, "tdx.td_attributes").actual, "0x0000000010000000");

    let a = appraise(sgx(), &p);
    assert_eq!(names(&a), SGX_RULES);
    assert!(
        a.rules()
            .iter()
            .all(|r| (r.outcome == Outcome::NotChecked) != (r.rule == "sgx.tcb.revocation"))
    );
    passes(&a, "sgx.tcb.revocation");
    for any in [
        "sgx.mr_enclave",
        "sgx.mr_signer",
        "sgx.debug",
        "sgx.tcb.accepted_statuses",
    ] {
        not_checked(&a, any, true);
    }
    not_checked(&a, "sgx.isv_prod_id", false);
    not_checked(&a, "sgx.attributes", false);
    for kss in KSS_RULES {
        not_checked(&a, kss, false);
    }
}

#[test]
fn a_quote_without_its_section_fails() {
    let only_sgx = strict(sgx());
    let a = appraise(td10(), &only_sgx);
    assert_eq!(a.tee(), Tee::Tdx);
    assert_eq!(names(&a), ["tdx"]);
    assert_eq!(a.rules()[0].outcome, Outcome::Fail);
    assert_eq!(a.verdict(), Verdict::Fail);
    assert_eq!(a.appraised_at(), SIM_VERIFY_AT);

    let only_tdx = strict(td10());
    let a = appraise(sgx(), &only_tdx);
    assert_eq!(a.tee(), Tee::Sgx);
    assert_eq!(names(&a), ["sgx"]);
    assert_eq!(a.verdict(), Verdict::Fail);
}

// ---------------------------------------------------------------------------------------------
// TDX measurements and configuration.

#[test]
fn mr_td() {
    let v = td10();
    let mut p = strict(v);
    let r = passes(&appraise(v, &p), "tdx.mr_td");
    assert_eq!(r.field, "MRTD");
    assert_eq!(r.claim, TrustClaim::Executables);
    assert_eq!(r.expected, "7d".repeat(48));

    tdx(&mut p).mr_td = pin([0xee; 48]);
    let a = appraise(v, &p);
    let r = fails_only(&a, "tdx.mr_td");
    assert_eq!(r.expected, "ee".repeat(48));
    assert_eq!(r.actual, "7d".repeat(48));

    tdx(&mut p).mr_td = Setting::Is(RefList::Values(vec![Hex([0xee; 48]), Hex([0x7d; 48])]));
    let a = appraise(v, &p);
    assert_eq!(passes(&a, "tdx.mr_td").expected, "one of 2 values");

    tdx(&mut p).mr_td = Setting::Any;
    not_checked(&appraise(v, &p), "tdx.mr_td", true);
}

/// The RTMRs, required allow-lists (`"any"` on purpose), with the value the simulator puts there.
type Rtmr = fn(&mut TdxPolicy) -> &mut AllowList<48>;

#[test]
fn every_rtmr() {
    let spec = QuoteSpec::tdx15();
    let cases: [(&str, &str, Rtmr, [u8; 48]); 4] = [
        ("tdx.rtmr0", "RTMR0", |p| &mut p.rtmr0, spec.rtmr[0]),
        ("tdx.rtmr1", "RTMR1", |p| &mut p.rtmr1, spec.rtmr[1]),
        ("tdx.rtmr2", "RTMR2", |p| &mut p.rtmr2, spec.rtmr[2]),
        ("tdx.rtmr3", "RTMR3", |p| &mut p.rtmr3, spec.rtmr[3]),
    ];
    let v = td15();
    for (name, field, get, actual) in cases {
        let mut p = strict(v);
        *get(tdx(&mut p)) = pin(actual);
        let r = passes(&appraise(v, &p), name);
        assert_eq!(
            (r.field, r.claim),
            (field, TrustClaim::Executables),
            "{name}"
        );
        assert_eq!(r.actual, hex::encode(actual), "{name}");

        *get(tdx(&mut p)) = pin([0xee; 48]);
        let a = appraise(v, &p);
        let r = fails_only(&a, name);
        assert_eq!(r.expected, "ee".repeat(48), "{name}");
        assert_eq!(r.actual, hex::encode(actual), "{name}");

        *get(tdx(&mut p)) = Setting::Any;
        not_checked(&appraise(v, &p), name, true);
    }
}

/// MRTD measures TDVF alone; what it boots (RTMR0 to RTMR2) and what runs later (RTMR3) must be
/// stated too: a policy without them is refused at load, naming each, and `"any"` is accepted
/// on purpose (with a warning from `policy check` for RTMR0 to RTMR2 beside a pinned MRTD).
#[test]
fn the_rtmrs_must_be_stated() {
    let text = |rtmrs: &str| {
        format!(
            "version = 1\nid = \"r\"\n[tdx]\nmr_td = \"{}\"\n{rtmrs}debug = \"must-not\"\n\
             td_attributes = {{ must_set = [\"sept_ve_disable\"] }}\n\
             [tdx.tcb]\naccepted_statuses = [\"UpToDate\"]\n",
            "7d".repeat(48)
        )
    };
    let e = Policy::from_toml_str(&text("")).unwrap_err().to_string();
    assert!(
        e.contains("tdx.rtmr0, tdx.rtmr1, tdx.rtmr2, tdx.rtmr3"),
        "{e}"
    );
    let e = Policy::from_toml_str(&text("rtmr0 = \"any\"\nrtmr1 = \"any\"\nrtmr3 = \"any\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rtmr2"), "{e}");
    let p = Policy::from_toml_str(&text(
        "rtmr0 = \"any\"\nrtmr1 = \"any\"\nrtmr2 = \"any\"\nrtmr3 = \"any\"\n",
    ))
    .unwrap();
    let warned: Vec<String> = p.warnings().into_iter().map(|w| w.field).collect();
    for field in ["tdx.rtmr0", "tdx.rtmr1", "tdx.rtmr2"] {
        assert!(warned.iter().any(|w| w == field), "{field}: {warned:?}");
    }
    assert!(!warned.iter().any(|w| w == "tdx.rtmr3"), "{warned:?}");
    let pinned = format!(
        "rtmr0 = \"{x}\"\nrtmr1 = \"{x}\"\nrtmr2 = \"{x}\"\nrtmr3 = \"any\"\n",
        x = "ab".repeat(48)
    );
    let p = Policy::from_toml_str(&text(&pinned)).unwrap();
    assert!(
        !p.warnings().iter().any(|w| w.field.starts_with("tdx.rtmr")),
        "{:?}",
        p.warnings()
    );
}

/// The optional 48-byte allow-lists of the TD body, with the value the simulator puts there.
type Field48 = fn(&mut TdxPolicy) -> &mut Option<AllowList<48>>;

#[test]
fn every_optional_td_register() {
    let spec = QuoteSpec::tdx15();
    let cases: [(&str, &str, TrustClaim, Field48, [u8; 48]); 6] = [
        (
            "tdx.mr_config_id",
            "MRCONFIGID",
            TrustClaim::Configuration,
            |p| &mut p.mr_config_id,
            spec.mr_config_id,
        ),
        (
            "tdx.mr_owner",
            "MROWNER",
            TrustClaim::InstanceIdentity,
            |p| &mut p.mr_owner,
            spec.mr_owner,
        ),
        (
            "tdx.mr_owner_config",
            "MROWNERCONFIG",
            TrustClaim::Configuration,
            |p| &mut p.mr_owner_config,
            spec.mr_owner_config,
        ),
        (
            "tdx.mr_seam",
            "MRSEAM",
            TrustClaim::Hardware,
            |p| &mut p.mr_seam,
            spec.mr_seam,
        ),
        (
            "tdx.mr_signer_seam",
            "MRSIGNERSEAM",
            TrustClaim::Hardware,
            |p| &mut p.mr_signer_seam,
            spec.mr_signer_seam,
        ),
        (
            "tdx.mr_service_td",
            "MRSERVICETD",
            TrustClaim::Configuration,
            |p| &mut p.mr_service_td,
            spec.mr_service_td,
        ),
    ];
    let v = td15();
    for (name, field, claim, get, actual) in cases {
        let mut p = strict(v);
        *get(tdx(&mut p)) = Some(pin(actual));
        let r = passes(&appraise(v, &p), name);
        assert_eq!((r.field, r.claim), (field, claim), "{name}");
        assert_eq!(r.actual, hex::encode(actual), "{name}");

        *get(tdx(&mut p)) = Some(pin([0xee; 48]));
        let a = appraise(v, &p);
        let r = fails_only(&a, name);
        assert_eq!(r.expected, "ee".repeat(48), "{name}");
        assert_eq!(r.actual, hex::encode(actual), "{name}");

        *get(tdx(&mut p)) = Some(Setting::Any);
        not_checked(&appraise(v, &p), name, true);
        *get(tdx(&mut p)) = None;
        not_checked(&appraise(v, &p), name, false);
    }
}

#[test]
fn mr_service_td_on_a_td10_quote_fails_unless_any() {
    let v = td10();
    let mut p = strict(v);
    not_checked(&appraise(v, &p), "tdx.mr_service_td", false);
    // Even "no service TD" (all zeros) cannot be confirmed from a TD 1.0 body.
    tdx(&mut p).mr_service_td = Some(pin([0; 48]));
    let a = appraise(v, &p);
    let r = fails_only(&a, "tdx.mr_service_td");
    assert_eq!(r.actual, "absent (TD 1.0 body)");
    assert!(r.note.as_deref().unwrap().contains("v5 quote"), "{r:#?}");
    tdx(&mut p).mr_service_td = Some(Setting::Any);
    not_checked(&appraise(v, &p), "tdx.mr_service_td", true);
}

#[test]
fn report_data() {
    for v in [td10(), sgx()] {
        let prefix = if v.quote().body().is_td() {
            "tdx"
        } else {
            "sgx"
        };
        let name = format!("{prefix}.report_data");
        let mut p = strict(v);
        not_checked(&appraise(v, &p), &name, false);
        let set = |p: &mut Policy, list| match (&mut p.tdx, &mut p.sgx) {
            (Some(t), _) => t.report_data = list,
            (_, Some(s)) => s.report_data = list,
            _ => unreachable!(),
        };
        set(&mut p, Some(pin([0; 64])));
        let r = passes(&appraise(v, &p), &name);
        assert_eq!((r.field, r.claim), ("REPORTDATA", TrustClaim::SourcedData));
        set(&mut p, Some(pin([1; 64])));
        let a = appraise(v, &p);
        let r = fails_only(&a, &name);
        assert_eq!(r.expected, "01".repeat(64));
        assert_eq!(r.actual, "00".repeat(64));
    }
}

#[test]
fn unloaded_reference_file_fails() {
    let v = td10();
    let mut p = strict(v);
    tdx(&mut p).rtmr0 = Setting::Is(RefList::File(PathBuf::from("rtmr0.txt")));
    let a = appraise(v, &p);
    let r = fails_only(&a, "tdx.rtmr0");
    assert!(r.note.as_deref().unwrap().contains("rtmr0.txt"), "{r:#?}");
}

#[test]
fn td_debug() {
    let v = td10();
    let mut p = strict(v);
    assert_eq!(tdx(&mut p).debug, Bit::MustNot);
    let r = passes(&appraise(v, &p), "tdx.debug");
    assert_eq!(
        (r.field, r.claim, r.actual.as_str()),
        ("TD_ATTRIBUTES.DEBUG", TrustClaim::Configuration, "clear")
    );
    tdx(&mut p).debug = Bit::Must;
    let a = appraise(v, &p);
    fails_only(&a, "tdx.debug");
    tdx(&mut p).debug = Bit::Any;
    not_checked(&appraise(v, &p), "tdx.debug", true);

    // A debug TD: the strict policy pins it, "must-not" rejects it.
    let mut spec = QuoteSpec::tdx();
    spec.td_attributes |= 1;
    let debug_td = Sim::new(spec).verify();
    let mut p = strict(&debug_td);
    assert_eq!(tdx(&mut p).debug, Bit::Must);
    passes(&appraise(&debug_td, &p), "tdx.debug");
    tdx(&mut p).debug = Bit::MustNot;
    let a = appraise(&debug_td, &p);
    assert_eq!(fails_only(&a, "tdx.debug").actual, "set");

    // A reserved TUD bit (7:1) also means "under debug".
    let mut spec = QuoteSpec::tdx();
    spec.td_attributes |= 1 << 3;
    let tud = Sim::new(spec).verify();
    let mut p = strict(&tud);
    assert_eq!(tdx(&mut p).debug, Bit::MustNot);
    let a = appraise(&tud, &p);
    let r = fails_only(&a, "tdx.debug");
    assert!(r.note.as_deref().unwrap().contains("TUD"), "{r:#?}");
}

#[test]
fn td_attribute_bits() {
    // The simulated TD has SEPT_VE_DISABLE (bit 28) set and every other named bit clear.
    let v = td10();
    let bits = [
        (TdAttribute::Debug, "tdx.td_attributes.debug", false),
        (
            TdAttribute::SeptVeDisable,
            "tdx.td_attributes.sept_ve_disable",
            true,
        ),
        (
            TdAttribute::Migratable,
            "tdx.td_attributes.migratable",
            false,
        ),
        (TdAttribute::Pks, "tdx.td_attributes.pks", false),
        (TdAttribute::Kl, "tdx.td_attributes.kl", false),
        (TdAttribute::Perfmon, "tdx.td_attributes.perfmon", false),
    ];
    for (bit, name, set) in bits {
        let (good, bad) = if set {
            (
                TdAttributeRules {
                    must_set: vec![bit],
                    must_clear: vec![],
                },
                TdAttributeRules {
                    must_set: vec![],
                    must_clear: vec![bit],
                },
            )
        } else {
            (
                TdAttributeRules {
                    must_set: vec![],
                    must_clear: vec![bit],
                },
                TdAttributeRules {
                    must_set: vec![bit],
                    must_clear: vec![],
                },
            )
        };
        let mut p = strict(v);
        tdx(&mut p).td_attributes = Some(good);
        let a = appraise(v, &p);
        let r = passes(&a, name);
        assert_eq!(r.claim, TrustClaim::Configuration);
        assert!(r.field.starts_with("TD_ATTRIBUTES."), "{r:#?}");
        // The other bits are listed, not checked; DEBUG, when td_attributes leaves it out,
        // points at the `debug` rule that does check it (must-not in a strict policy).
        for (other_bit, other, _) in bits.iter().filter(|(b, _, _)| *b != bit) {
            if *other_bit == TdAttribute::Debug {
                let r = rule(&a, other);
                assert_eq!(r.outcome, Outcome::NotChecked, "{r:#?}");
                assert!(
                    r.note
                        .as_deref()
                        .unwrap()
                        .contains("checked by the tdx.debug rule"),
                    "{r:#?}"
                );
                passes(&a, "tdx.debug");
            } else {
                not_checked(&a, other, false);
            }
        }
        tdx(&mut p).td_attributes = Some(bad);
        let a = appraise(v, &p);
        let r = fails_only(&a, name);
        assert_eq!(r.actual, if set { "set" } else { "clear" });

        tdx(&mut p).td_attributes = Some(TdAttributeRules {
            must_set: vec![bit],
            must_clear: vec![bit],
        });
        let a = appraise(v, &p);
        let r = fails_only(&a, name);
        assert!(r.note.as_deref().unwrap().contains("both"), "{r:#?}");
    }
}

#[test]
fn xfam() {
    let v = td10();
    let actual = QuoteSpec::tdx().xfam;
    let mut p = strict(v);
    let r = passes(&appraise(v, &p), "tdx.xfam");
    assert_eq!((r.field, r.claim), ("XFAM", TrustClaim::Configuration));
    assert_eq!(r.actual, format!("{actual:#018x}"));

    let cet = (1 << 11) | (1 << 12);
    tdx(&mut p).xfam = Some(MaskedValue {
        value: U64Hex(actual | cet),
        ignore_mask: U64Hex(0),
    });
    let a = appraise(v, &p);
    let r = fails_only(&a, "tdx.xfam");
    assert!(
        r.note.as_deref().unwrap().contains("0x0000000000001800"),
        "{r:#?}"
    );

    tdx(&mut p).xfam = Some(MaskedValue {
        value: U64Hex(actual | cet),
        ignore_mask: U64Hex(cet),
    });
    passes(&appraise(v, &p), "tdx.xfam");

    tdx(&mut p).xfam = None;
    not_checked(&appraise(v, &p), "tdx.xfam", false);
}

#[test]
fn min_tee_tcb_svn() {
    let v = td10();
    let actual = QuoteSpec::tdx().tee_tcb_svn;
    let mut p = strict(v);
    let r = passes(&appraise(v, &p), "tdx.min_tee_tcb_svn");
    assert_eq!((r.field, r.claim), ("TEE_TCB_SVN", TrustClaim::Hardware));

    let mut lower = actual;
    lower[0] -= 1;
    tdx(&mut p).min_tee_tcb_svn = Some(Hex(lower));
    passes(&appraise(v, &p), "tdx.min_tee_tcb_svn");

    // One component above the quote's (and one below): fails, and says which.
    let mut floor = lower;
    floor[2] += 1;
    tdx(&mut p).min_tee_tcb_svn = Some(Hex(floor));
    let a = appraise(v, &p);
    let r = fails_only(&a, "tdx.min_tee_tcb_svn");
    assert_eq!(r.note.as_deref(), Some("component 2: 2 < 3"));
    assert_eq!(a.behind().len(), 1, "{:#?}", a.behind());
    assert_eq!(a.behind()[0].component, "TEE_TCB_SVN[2]");
    assert_eq!(
        (
            a.behind()[0].actual.as_str(),
            a.behind()[0].required.as_str()
        ),
        ("2", "3")
    );

    tdx(&mut p).min_tee_tcb_svn = None;
    not_checked(&appraise(v, &p), "tdx.min_tee_tcb_svn", false);
}

// ---------------------------------------------------------------------------------------------
// TD partitioning: VMID.

/// A TD 1.5ex quote from an L2 VM (VMID 1 to 3) fails unless `vmids` lists its VMID; absent,
/// only VMID 0 (the TD itself) is accepted.
#[test]
fn vmids() {
    let l1 = td15ex();
    let l2 = td15ex_from(1);
    let mut p = strict(l1);
    // The strict policy pins VMID 0, and the default (absent) accepts only 0 as well.
    let r = passes(&appraise(l1, &p), "tdx.vmids");
    assert_eq!(
        (r.field, r.expected.as_str(), r.actual.as_str(), r.claim),
        ("VMID", "0", "0", TrustClaim::InstanceIdentity)
    );
    let r = fails_only(&appraise(&l2, &p), "tdx.vmids");
    assert_eq!(r.actual, "1");
    tdx(&mut p).vmids = None;
    let r = passes(&appraise(l1, &p), "tdx.vmids");
    assert!(r.expected.contains("not in the policy"), "{r:#?}");
    let r = fails_only(&appraise(&l2, &p), "tdx.vmids");
    assert!(r.expected.starts_with("0 ("), "{r:#?}");
    assert!(
        r.note
            .as_deref()
            .unwrap()
            .contains("L2 VM of a partitioned TD"),
        "{r:#?}"
    );
    // Listed, it passes; another L2 VM's does not.
    tdx(&mut p).vmids = Some(vec![0, 1]);
    let r = passes(&appraise(&l2, &p), "tdx.vmids");
    assert_eq!(r.expected, "one of [0, 1]");
    passes(&appraise(l1, &p), "tdx.vmids");
    let r = fails_only(&appraise(&td15ex_from(3), &p), "tdx.vmids");
    assert_eq!(r.actual, "3");
    // Only an L2 VM: the TD itself fails.
    tdx(&mut p).vmids = Some(vec![1]);
    passes(&appraise(&l2, &p), "tdx.vmids");
    fails_only(&appraise(l1, &p), "tdx.vmids");
    // A policy generated from the L2 VM's quote pins its VMID (what was measured).
    assert_eq!(strict(&l2).tdx.unwrap().vmids, Some(vec![1]));
    passes(&appraise(&l2, &strict(&l2)), "tdx.vmids");
}

/// TD 1.0 and 1.5 bodies have no VMID: they are judged as VMID 0, with a note saying so.
#[test]
fn vmids_on_bodies_without_one() {
    for v in [td10(), td15()] {
        let mut p = strict(v);
        assert_eq!(tdx(&mut p).vmids, None);
        let r = passes(&appraise(v, &p), "tdx.vmids");
        assert!(r.actual.contains("none in a TD 1.0 or 1.5 body"), "{r:#?}");
        assert!(
            r.note.as_deref().unwrap().contains("judged as VMID 0"),
            "{r:#?}"
        );
        tdx(&mut p).vmids = Some(vec![0, 2]);
        passes(&appraise(v, &p), "tdx.vmids");
        tdx(&mut p).vmids = Some(vec![2]);
        fails_only(&appraise(v, &p), "tdx.vmids");
    }
}

// ---------------------------------------------------------------------------------------------
// Intel TCB controls, for TDX and SGX alike.

/// (evidence kind, prefix, a QuoteSpec for it, the QE's ISVSVN in the simulator)
fn both() -> [(&'static Verified<Quote>, &'static str, QuoteSpec, u16); 2] {
    [
        (td10(), "tdx", QuoteSpec::tdx(), 4),
        (sgx(), "sgx", QuoteSpec::sgx(), 8),
    ]
}

fn statuses(list: &[TcbStatus]) -> Setting<Vec<StatusName>> {
    Setting::Is(list.iter().copied().map(StatusName).collect())
}

#[test]
fn accepted_statuses() {
    for (v, prefix, spec, _) in both() {
        let name = format!("{prefix}.tcb.accepted_statuses");
        let mut p = strict(v);
        let r = passes(&appraise(v, &p), &name);
        assert_eq!(
            (r.field, r.claim, r.expected.as_str(), r.actual.as_str()),
            ("tcbStatus", TrustClaim::Hardware, "UpToDate", "UpToDate")
        );
        tcb(&mut p).accepted_statuses =
            statuses(&[TcbStatus::OutOfDate, TcbStatus::SwHardeningNeeded]);
        let a = appraise(v, &p);
        let r = fails_only(&a, &name);
        assert_eq!(r.expected, "one of [OutOfDate, SWHardeningNeeded]");
        // Nothing is behind Intel's newest level, so nothing to list.
        assert!(a.behind().is_empty());
        tcb(&mut p).accepted_statuses = Setting::Any;
        not_checked(&appraise(v, &p), &name, true);

        // OutOfDate evidence: the strict policy pins OutOfDate; UpToDate rejects it and the
        // appraisal names what to update (the SGX TCB component the newer level raises).
        let old = out_of_date(spec);
        let mut p = strict(&old);
        let a = appraise(&old, &p);
        passes(&a, &name);
        assert_eq!(a.tcb_status(), Some("OutOfDate"));
        assert_eq!(a.advisory_ids(), ["INTEL-SA-00001"]);
        assert!(a.behind().is_empty(), "nothing failed: {:#?}", a.behind());
        tcb(&mut p).accepted_statuses = statuses(&[TcbStatus::UpToDate]);
        let a = appraise(&old, &p);
        assert_eq!(fails_only(&a, &name).actual, "OutOfDate");
        assert_eq!(a.advisory_ids(), ["INTEL-SA-00001"]);
        assert!(
            a.behind()
                .iter()
                .any(|b| b.component.starts_with("SGX TCB component 0")
                    && b.actual == "7"
                    && b.required == "8"),
            "{:#?}",
            a.behind()
        );
    }
}

#[test]
fn accepted_statuses_notes_td_relaunch_advised() {
    // The module runs SVN 3 (OutOfDate), a relaunch would run SVN 4 (UpToDate).
    let mut spec = QuoteSpec::tdx15();
    spec.tee_tcb_svn[0] = 3;
    spec.tee_tcb_svn2[0] = 4;
    let mut sim = Sim::new(spec);
    sim.coll.module_identities[0].levels = vec![
        isv(4, TcbStatus::UpToDate, 30, &[]),
        isv(3, TcbStatus::OutOfDate, 400, &["INTEL-SA-00002"]),
    ];
    let v = sim.verify();
    assert!(v.verification().tcb.td_relaunch_advised);
    let p = strict(&v);
    let a = appraise(&v, &p);
    let r = passes(&a, "tdx.tcb.accepted_statuses");
    assert_eq!(r.actual, "OutOfDate");
    assert!(
        r.note.as_deref().unwrap().contains("TD_RELAUNCH_ADVISED"),
        "{r:#?}"
    );
}

#[test]
fn grace_period_for_an_out_of_date_platform() {
    for (_, prefix, spec, _) in both() {
        let name = format!("{prefix}.tcb.grace_period");
        // tcbDate is 400 days before issue; verification is one day after issue.
        let old = out_of_date(spec);
        let mut p = strict(&old);
        not_checked(&appraise(&old, &p), &name, false);
        tcb(&mut p).grace_period = Some(Duration::from_secs(401 * 86_400));
        let r = passes(&appraise(&old, &p), &name);
        assert_eq!((r.field, r.claim), ("tcbDate", TrustClaim::Hardware));
        assert!(r.actual.contains("platform OutOfDate"), "{r:#?}");
        tcb(&mut p).grace_period = Some(Duration::from_secs(400 * 86_400));
        let a = appraise(&old, &p);
        let r = fails_only(&a, &name);
        assert!(r.note.as_deref().unwrap().contains("platform"), "{r:#?}");
        assert!(!a.behind().is_empty());
    }
}

#[test]
fn grace_period_passes_when_nothing_is_out_of_date() {
    for (v, prefix, _, _) in both() {
        let name = format!("{prefix}.tcb.grace_period");
        let mut p = strict(v);
        tcb(&mut p).grace_period = Some(Duration::from_secs(1));
        let r = passes(&appraise(v, &p), &name);
        assert_eq!(r.note.as_deref(), Some("not out of date"));
    }
}

#[test]
fn grace_period_for_an_out_of_date_qe() {
    for (_, prefix, spec, qe_svn) in both() {
        let name = format!("{prefix}.tcb.grace_period");
        let mut sim = Sim::new(spec);
        sim.coll.qe_levels = vec![
            isv(qe_svn + 1, TcbStatus::UpToDate, 10, &[]),
            isv(qe_svn, TcbStatus::OutOfDate, 100, &["INTEL-SA-00003"]),
        ];
        let v = sim.verify();
        assert_eq!(v.verification().tcb.status, TcbStatus::OutOfDate);
        let mut p = strict(&v);
        tcb(&mut p).grace_period = Some(Duration::from_secs(101 * 86_400));
        let r = passes(&appraise(&v, &p), &name);
        assert!(r.actual.contains("QE OutOfDate"), "{r:#?}");
        tcb(&mut p).grace_period = Some(Duration::from_secs(100 * 86_400));
        let a = appraise(&v, &p);
        let r = fails_only(&a, &name);
        assert!(r.note.as_deref().unwrap().contains("QE"), "{r:#?}");
        assert!(
            a.behind()
                .iter()
                .any(|b| b.component == "quoting enclave ISVSVN"),
            "{:#?}",
            a.behind()
        );
    }
}

#[test]
fn grace_period_for_an_out_of_date_tdx_module() {
    let mut spec = QuoteSpec::tdx();
    spec.tee_tcb_svn[0] = 3;
    let mut sim = Sim::new(spec);
    sim.coll.module_identities[0].levels = vec![
        isv(4, TcbStatus::UpToDate, 30, &[]),
        isv(3, TcbStatus::OutOfDate, 200, &[]),
    ];
    let v = sim.verify();
    assert_eq!(v.verification().tcb.status, TcbStatus::OutOfDate);
    assert_eq!(v.verification().tcb.platform.status, TcbStatus::UpToDate);
    let mut p = strict(&v);
    tcb(&mut p).grace_period = Some(Duration::from_secs(201 * 86_400));
    passes(&appraise(&v, &p), "tdx.tcb.grace_period");
    tcb(&mut p).grace_period = Some(Duration::from_secs(200 * 86_400));
    let a = appraise(&v, &p);
    let r = fails_only(&a, "tdx.tcb.grace_period");
    assert!(r.note.as_deref().unwrap().contains("TDX module"), "{r:#?}");
}

#[test]
fn denied_advisories() {
    for (_, prefix, spec, _) in both() {
        let name = format!("{prefix}.tcb.denied_advisories");
        let old = out_of_date(spec);
        let mut p = strict(&old);
        let r = not_checked(&appraise(&old, &p), &name, false);
        assert_eq!(r.actual, "INTEL-SA-00001");
        tcb(&mut p).denied_advisories = Some(vec![String::from("INTEL-SA-09999")]);
        let r = passes(&appraise(&old, &p), &name);
        assert_eq!((r.field, r.claim), ("advisoryIDs", TrustClaim::Hardware));
        // Case-insensitive.
        tcb(&mut p).denied_advisories = Some(vec![
            String::from("INTEL-SA-09999"),
            String::from("intel-sa-00001"),
        ]);
        let a = appraise(&old, &p);
        let r = fails_only(&a, &name);
        assert_eq!(r.note.as_deref(), Some("denied: INTEL-SA-00001"));
        assert!(!a.behind().is_empty());
    }
}

/// SGX TCB info version 2 need not list the platform's advisory IDs (Intel's own version 2
/// bodies list none for a level whose version 3 twin names INTEL-SA-00615): a deny list cannot
/// be judged under it and fails, where the same quote under version 3 passes it. Without a deny
/// list nothing changes.
#[test]
fn denied_advisories_fail_closed_under_sgx_tcb_info_version_2() {
    const RULE: &str = "sgx.tcb.denied_advisories";
    let mut sim = Sim::new(QuoteSpec::sgx()).status(TcbStatus::OutOfDate);
    let v3 = sim.verify();
    sim.coll.version = 2;
    let v2 = sim.verify();
    assert!(v3.verification().tcb.platform_advisories_listed);
    assert!(!v2.verification().tcb.platform_advisories_listed);
    assert_eq!(v3.verification().tcb.advisory_ids, ["INTEL-SA-00001"]);
    assert!(v2.verification().tcb.advisory_ids.is_empty());

    let mut p = strict(&v3);
    assert_eq!(appraise(&v2, &p).verdict(), Verdict::Pass);
    let r = not_checked(&appraise(&v2, &p), RULE, false);
    assert!(r.actual.contains("are not listed"), "{r:#?}");

    tcb(&mut p).denied_advisories = Some(vec![String::from("INTEL-SA-09999")]);
    passes(&appraise(&v3, &p), RULE);
    let a = appraise(&v2, &p);
    let r = fails_only(&a, RULE);
    assert_eq!(
        r.actual,
        "none (SGX TCB info version 2: the platform level's are not listed)"
    );
    assert!(
        r.note.as_deref().unwrap().contains("version 3 TCB info"),
        "{r:#?}"
    );
}

/// An advisory ID that is not one (a typo), or an empty list, would deny nothing: refused at
/// load, in either section; well-formed IDs load in either case.
#[test]
fn misspelt_denied_advisories_are_refused_at_load() {
    let policy = |section: &str, ids: &str| {
        let body = if section == "tdx" {
            "mr_td = \"any\"\nrtmr0 = \"any\"\nrtmr1 = \"any\"\nrtmr2 = \"any\"\nrtmr3 = \"any\"\ndebug = \"any\""
        } else {
            "mr_enclave = \"any\"\nmr_signer = \"any\"\ndebug = \"any\""
        };
        Policy::from_toml_str(&format!(
            "version = 1\nid = \"p\"\n[{section}]\n{body}\n[{section}.tcb]\n\
             accepted_statuses = \"any\"\ndenied_advisories = {ids}\n"
        ))
    };
    for section in ["tdx", "sgx"] {
        for good in [
            r#"["INTEL-SA-00837"]"#,
            r#"["intel-sa-00001", "INTEL-SA-123456"]"#,
        ] {
            policy(section, good).unwrap_or_else(|e| panic!("{section} {good}: {e}"));
        }
        // Empty, it would deny nothing and read as a deny list in force, as `[]` is refused
        // for the other deny lists.
        let e = policy(section, "[]").unwrap_err().to_string();
        assert!(
            e.contains(&format!("{section}.tcb.denied_advisories")) && e.contains("deny nothing"),
            "{section}: {e}"
        );
        for bad in [
            r#"["INTEL_SA_00001"]"#,
            r#"["INTEL-SA-0001"]"#,
            r#"[" INTEL-SA-00001"]"#,
            r#"["INTEL-SA-00001 "]"#,
            r#"["INTEL-SA-0000x"]"#,
            r#"["INTEL-SA-00837", "SA-00615"]"#,
            r#"[""]"#,
            r#"["INTEL-SA-000001"]"#,
            r#"["INTEL-SA-0012345"]"#,
        ] {
            let e = policy(section, bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{section}.tcb.denied_advisories"))
                    && e.contains("not an Intel advisory ID"),
                "{section} {bad}: {e}"
            );
        }
    }
}

/// A policy that trusts a signer (`mr_enclave = "any"`, `mr_signer` pinned) accepts whatever
/// that key signed, so it must name the products and the lowest version: the loader refuses it
/// without `isv_prod_id` or `min_isv_svn`, and a policy built in code fails those rules. With
/// both set it passes; with both MR fields `"any"` nothing is required (the policy says it
/// accepts every enclave).
#[test]
fn a_signer_based_sgx_policy_must_pin_product_and_version() {
    let v = sgx();
    let QuoteBody::Sgx(report) = v.evidence().body() else {
        panic!("an SGX body")
    };
    let signer = tessera_pki::to_hex(&report.mr_signer);
    let text = |extra: &str| {
        format!(
            "version = 1\nid = \"signer\"\n[sgx]\nmr_enclave = \"any\"\nmr_signer = \"{signer}\"\n\
             debug = \"must-not\"\n{extra}[sgx.tcb]\naccepted_statuses = \"any\"\n"
        )
    };
    let e = Policy::from_toml_str(&text("")).unwrap_err().to_string();
    assert!(e.contains("sgx.isv_prod_id") && e.contains("signer"), "{e}");
    let e = Policy::from_toml_str(&text(&format!("isv_prod_id = {}\n", report.isv_prod_id)))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sgx.min_isv_svn") && e.contains("write 0"),
        "{e}"
    );
    let full = format!("isv_prod_id = {}\nmin_isv_svn = 0\n", report.isv_prod_id);
    let p = Policy::from_toml_str(&text(&full)).unwrap();
    assert_eq!(appraise(v, &p).verdict(), Verdict::Pass);
    // Another product of the same signer fails.
    let other = format!(
        "isv_prod_id = {}\nmin_isv_svn = 0\n",
        report.isv_prod_id + 1
    );
    let p = Policy::from_toml_str(&text(&other)).unwrap();
    fails_only(&appraise(v, &p), "sgx.isv_prod_id");
    // Both MR fields "any": nothing more is required (the policy accepts every enclave).
    let open = "version = 1\nid = \"open\"\n[sgx]\nmr_enclave = \"any\"\nmr_signer = \"any\"\n\
                debug = \"any\"\n[sgx.tcb]\naccepted_statuses = \"any\"\n";
    Policy::from_toml_str(open).unwrap();

    // Built in code, past the loader: both rules fail, with the reason.
    let mut p = strict(v);
    {
        let s = sgx_section(&mut p);
        s.mr_enclave = Setting::Any;
        s.isv_prod_id = None;
        s.min_isv_svn = None;
    }
    let a = appraise(v, &p);
    assert_eq!(a.verdict(), Verdict::Fail);
    for rule in ["sgx.isv_prod_id", "sgx.min_isv_svn"] {
        let r = a.rules().iter().find(|r| r.rule == rule).unwrap();
        assert_eq!(r.outcome, Outcome::Fail, "{r:#?}");
        assert!(
            r.note.as_deref().unwrap().contains("trusts a signer"),
            "{r:#?}"
        );
    }
    sgx_section(&mut p).min_isv_svn = Some(0);
    sgx_section(&mut p).isv_prod_id = Some(RefList::Values(vec![report.isv_prod_id]));
    assert_eq!(appraise(v, &p).verdict(), Verdict::Pass);
    // The same policy with MRENCLAVE pinned needs neither.
    let mut p = strict(v);
    sgx_section(&mut p).isv_prod_id = None;
    sgx_section(&mut p).min_isv_svn = None;
    assert_eq!(appraise(v, &p).verdict(), Verdict::Pass);
}

/// A KSS enclave under a policy that trusts a signer: ISVEXTPRODID and ISVFAMILYID tell the
/// signer's products apart, so each fails when left out (`"any"` accepts any on purpose), and
/// stays optional under a policy that pins MRENCLAVE.
#[test]
fn a_signer_based_policy_pins_a_kss_enclaves_product_ids() {
    let v = kss_enclave([0x11; 16], [0x22; 16], [0x33; 64], 1);
    let mut p = strict(&v);
    {
        let s = sgx_section(&mut p);
        s.mr_enclave = Setting::Any;
        s.isv_ext_prod_id = None;
        s.isv_family_id = None;
    }
    let a = appraise(&v, &p);
    assert_eq!(a.verdict(), Verdict::Fail);
    for (rule, field) in [
        ("sgx.isv_ext_prod_id", "ISVEXTPRODID"),
        ("sgx.isv_family_id", "ISVFAMILYID"),
    ] {
        let r = a.rules().iter().find(|r| r.rule == rule).unwrap();
        assert_eq!(r.outcome, Outcome::Fail, "{r:#?}");
        assert!(r.note.as_deref().unwrap().contains(field), "{r:#?}");
    }
    sgx_section(&mut p).isv_ext_prod_id = Some(Setting::Any);
    fails_only(&appraise(&v, &p), "sgx.isv_family_id");
    sgx_section(&mut p).isv_family_id = Some(Setting::Any);
    assert_eq!(appraise(&v, &p).verdict(), Verdict::Pass);
    // MRENCLAVE pinned: optional.
    let mut p = strict(&v);
    sgx_section(&mut p).isv_ext_prod_id = None;
    sgx_section(&mut p).isv_family_id = None;
    assert_eq!(appraise(&v, &p).verdict(), Verdict::Pass);
}

#[test]
fn min_evaluation_data_number() {
    for (v, prefix, _, _) in both() {
        let name = format!("{prefix}.tcb.min_evaluation_data_number");
        let mut p = strict(v);
        assert_eq!(tcb(&mut p).min_evaluation_data_number, Some(17));
        let r = passes(&appraise(v, &p), &name);
        assert_eq!(r.actual, "TCB info 17, QE identity 17");
        tcb(&mut p).min_evaluation_data_number = Some(18);
        let a = appraise(v, &p);
        assert_eq!(fails_only(&a, &name).expected, ">= 18 (both)");
        tcb(&mut p).min_evaluation_data_number = None;
        not_checked(&appraise(v, &p), &name, false);
    }
    // The QE identity's number counts too.
    let mut sim = Sim::new(QuoteSpec::tdx());
    sim.coll.tcb_evaluation_data_number = 18;
    let v = sim.verify();
    let mut p = strict(&v);
    tcb(&mut p).min_evaluation_data_number = Some(18);
    passes(&appraise(&v, &p), "tdx.tcb.min_evaluation_data_number");
}

#[test]
fn max_collateral_age() {
    for (v, prefix, _, _) in both() {
        let name = format!("{prefix}.tcb.max_collateral_age");
        // Issued one day before the verification time.
        let mut p = strict(v);
        not_checked(&appraise(v, &p), &name, false);
        tcb(&mut p).max_collateral_age = Some(Duration::from_secs(86_400));
        let r = passes(&appraise(v, &p), &name);
        assert_eq!((r.field, r.claim), ("issueDate", TrustClaim::Hardware));
        assert!(r.actual.contains("1d before"), "{r:#?}");
        tcb(&mut p).max_collateral_age = Some(Duration::from_secs(23 * 3_600));
        let a = appraise(v, &p);
        assert_eq!(fails_only(&a, &name).expected, "at most 23h old");
    }
}

#[test]
fn min_qe_svn() {
    for (v, prefix, _, qe_svn) in both() {
        let name = format!("{prefix}.tcb.min_qe_svn");
        let mut p = strict(v);
        assert_eq!(tcb(&mut p).min_qe_svn, Some(qe_svn));
        let r = passes(&appraise(v, &p), &name);
        assert_eq!(
            (r.field, r.claim, r.actual.clone()),
            ("QE ISVSVN", TrustClaim::Hardware, qe_svn.to_string())
        );
        tcb(&mut p).min_qe_svn = Some(qe_svn + 1);
        let a = appraise(v, &p);
        fails_only(&a, &name);
        let b = a
            .behind()
            .iter()
            .find(|b| b.component == "quoting enclave ISVSVN")
            .unwrap();
        assert_eq!(
            (b.actual.clone(), b.required.clone()),
            (qe_svn.to_string(), (qe_svn + 1).to_string())
        );
        tcb(&mut p).min_qe_svn = None;
        not_checked(&appraise(v, &p), &name, false);
    }
}

#[test]
fn min_pce_svn() {
    let pce_svn = PlatformSpec::default().pce_svn;
    for (v, prefix, _, _) in both() {
        let name = format!("{prefix}.tcb.min_pce_svn");
        let mut p = strict(v);
        assert_eq!(tcb(&mut p).min_pce_svn, Some(pce_svn));
        let r = passes(&appraise(v, &p), &name);
        assert_eq!((r.field, r.claim), ("PCESVN", TrustClaim::Hardware));
        tcb(&mut p).min_pce_svn = Some(pce_svn + 1);
        let a = appraise(v, &p);
        fails_only(&a, &name);
        assert!(a.behind().iter().any(|b| b.component == "PCE SVN"));
        tcb(&mut p).min_pce_svn = None;
        not_checked(&appraise(v, &p), &name, false);
    }
}

// ---------------------------------------------------------------------------------------------
// SGX enclave rules.

#[test]
fn mr_enclave_and_mr_signer() {
    let v = sgx();
    for (name, field, claim, actual) in [
        (
            "sgx.mr_enclave",
            "MRENCLAVE",
            TrustClaim::Executables,
            [0xe1; 32],
        ),
        (
            "sgx.mr_signer",
            "MRSIGNER",
            TrustClaim::InstanceIdentity,
            [0xe2; 32],
        ),
    ] {
        let set = |p: &mut Policy, list: AllowList<32>| {
            let s = sgx_section(p);
            if name.ends_with("mr_enclave") {
                s.mr_enclave = list;
            } else {
                s.mr_signer = list;
            }
        };
        let mut p = strict(v);
        let r = passes(&appraise(v, &p), name);
        assert_eq!((r.field, r.claim), (field, claim));
        assert_eq!(r.actual, hex::encode(actual));
        set(&mut p, pin([0xee; 32]));
        let a = appraise(v, &p);
        assert_eq!(fails_only(&a, name).expected, "ee".repeat(32));
        set(&mut p, Setting::Any);
        not_checked(&appraise(v, &p), name, true);
    }
}

#[test]
fn sgx_debug() {
    let v = sgx();
    let mut p = strict(v);
    assert_eq!(sgx_section(&mut p).debug, Bit::MustNot);
    let r = passes(&appraise(v, &p), "sgx.debug");
    assert_eq!(
        (r.field, r.claim),
        ("ATTRIBUTES.DEBUG", TrustClaim::Configuration)
    );
    sgx_section(&mut p).debug = Bit::Must;
    let a = appraise(v, &p);
    fails_only(&a, "sgx.debug");

    let mut spec = QuoteSpec::sgx();
    spec.sgx_attributes[0] |= 0x02;
    let debug = Sim::new(spec).verify();
    let mut p = strict(&debug);
    assert_eq!(sgx_section(&mut p).debug, Bit::Must);
    passes(&appraise(&debug, &p), "sgx.debug");
    sgx_section(&mut p).debug = Bit::MustNot;
    let a = appraise(&debug, &p);
    assert_eq!(fails_only(&a, "sgx.debug").actual, "set");
    sgx_section(&mut p).debug = Bit::Any;
    not_checked(&appraise(&debug, &p), "sgx.debug", true);
}

#[test]
fn isv_prod_id() {
    let v = sgx();
    let mut p = strict(v);
    let r = passes(&appraise(v, &p), "sgx.isv_prod_id");
    assert_eq!(
        (r.field, r.expected.as_str(), r.actual.as_str()),
        ("ISVPRODID", "1", "1")
    );
    sgx_section(&mut p).isv_prod_id = Some(RefList::Values(vec![2, 3]));
    let a = appraise(v, &p);
    assert_eq!(
        fails_only(&a, "sgx.isv_prod_id").expected,
        "one of 2 values"
    );
    sgx_section(&mut p).isv_prod_id = Some(RefList::File(PathBuf::from("prod.txt")));
    let a = appraise(v, &p);
    assert!(
        fails_only(&a, "sgx.isv_prod_id")
            .note
            .as_deref()
            .unwrap()
            .contains("prod.txt")
    );
    sgx_section(&mut p).isv_prod_id = None;
    not_checked(&appraise(v, &p), "sgx.isv_prod_id", false);
}

#[test]
fn min_isv_svn() {
    let v = sgx();
    let mut p = strict(v);
    let r = passes(&appraise(v, &p), "sgx.min_isv_svn");
    assert_eq!((r.field, r.expected.as_str()), ("ISVSVN", ">= 1"));
    sgx_section(&mut p).min_isv_svn = Some(2);
    let a = appraise(v, &p);
    assert_eq!(fails_only(&a, "sgx.min_isv_svn").actual, "1");
    // ISVSVN is the enclave's version, not the platform's TCB: nothing is listed as behind.
    assert!(a.behind().is_empty());
    sgx_section(&mut p).min_isv_svn = None;
    not_checked(&appraise(v, &p), "sgx.min_isv_svn", false);
}

#[test]
fn sgx_attributes() {
    let v = sgx();
    let actual = QuoteSpec::sgx().sgx_attributes;
    let mut p = strict(v);
    let r = passes(&appraise(v, &p), "sgx.attributes");
    assert_eq!(
        (r.field, r.claim),
        ("ATTRIBUTES", TrustClaim::Configuration)
    );
    assert_eq!(r.actual, hex::encode(actual));

    // KSS (FLAGS bit 7) expected but not set.
    let mut value = actual;
    value[0] |= 0x80;
    sgx_section(&mut p).attributes = Some(SgxAttributesRule {
        value: Hex(value),
        mask: Hex([0xff; 16]),
    });
    let a = appraise(v, &p);
    fails_only(&a, "sgx.attributes");
    // Outside the mask, the difference does not count.
    let mut mask = [0xff; 16];
    mask[0] = 0x7f;
    sgx_section(&mut p).attributes = Some(SgxAttributesRule {
        value: Hex(value),
        mask: Hex(mask),
    });
    passes(&appraise(v, &p), "sgx.attributes");
    sgx_section(&mut p).attributes = None;
    not_checked(&appraise(v, &p), "sgx.attributes", false);
}

/// An enclave with KSS: CONFIGID, chosen by its loader, must be pinned or stated `"any"`; a
/// policy that leaves `config_id` out fails it. Without KSS, left out is "not checked".
#[test]
fn config_id() {
    let v = kss_enclave([0; 16], [0; 16], [0xc1; 64], 2);
    let mut p = strict(&v);
    let r = passes(&appraise(&v, &p), "sgx.config_id");
    assert_eq!(
        (r.field, r.actual.clone(), r.claim),
        ("CONFIGID", "c1".repeat(64), TrustClaim::Configuration)
    );
    sgx_section(&mut p).config_id = Some(pin([0xc2; 64]));
    fails_only(&appraise(&v, &p), "sgx.config_id");
    // Left out, with KSS set: fails, saying what to write.
    sgx_section(&mut p).config_id = None;
    let r = fails_only(&appraise(&v, &p), "sgx.config_id");
    assert_eq!(r.expected, "a config_id rule (ATTRIBUTES.KSS is set)");
    let note = r.note.unwrap();
    assert!(
        note.contains("pin it with config_id") && note.contains("\"any\""),
        "{note}"
    );
    // "any" accepts any configuration on purpose.
    sgx_section(&mut p).config_id = Some(Setting::Any);
    not_checked(&appraise(&v, &p), "sgx.config_id", true);
    assert_eq!(appraise(&v, &p).verdict(), Verdict::Pass);
    // The same quote's KSS bit is what makes it required: the simulator's KSS enclave (all its
    // KSS fields zero) fails too, a plain enclave does not.
    let zero_config = Sim::new(kss_spec()).verify();
    let mut p = strict(&zero_config);
    assert_eq!(sgx_section(&mut p).config_id, Some(pin([0; 64])));
    passes(&appraise(&zero_config, &p), "sgx.config_id");
    sgx_section(&mut p).config_id = None;
    fails_only(&appraise(&zero_config, &p), "sgx.config_id");
    let mut p = strict(sgx());
    assert_eq!(sgx_section(&mut p).config_id, None);
    not_checked(&appraise(sgx(), &p), "sgx.config_id", false);
    sgx_section(&mut p).config_id = Some(pin([0xc1; 64]));
    fails_only(&appraise(sgx(), &p), "sgx.config_id");
}

#[test]
fn min_config_svn() {
    let v = kss_enclave([0; 16], [0; 16], [0xc1; 64], 5);
    let mut p = strict(&v);
    let r = passes(&appraise(&v, &p), "sgx.min_config_svn");
    assert_eq!(
        (r.field, r.expected.as_str(), r.actual.as_str()),
        ("CONFIGSVN", ">= 5", "5")
    );
    sgx_section(&mut p).min_config_svn = Some(6);
    assert_eq!(
        fails_only(&appraise(&v, &p), "sgx.min_config_svn").actual,
        "5"
    );
    // A configuration's version is not the platform's TCB: nothing is listed as behind.
    assert!(appraise(&v, &p).behind().is_empty());
    sgx_section(&mut p).min_config_svn = Some(4);
    passes(&appraise(&v, &p), "sgx.min_config_svn");
    sgx_section(&mut p).min_config_svn = None;
    not_checked(&appraise(&v, &p), "sgx.min_config_svn", false);
}

#[test]
fn isv_ext_prod_id_and_isv_family_id() {
    let v = kss_enclave([0xe1; 16], [0xf1; 16], [0; 64], 0);
    for (rule_name, field, value) in [
        ("sgx.isv_ext_prod_id", "ISVEXTPRODID", [0xe1u8; 16]),
        ("sgx.isv_family_id", "ISVFAMILYID", [0xf1; 16]),
    ] {
        let set = |p: &mut Policy, to: Option<AllowList<16>>| {
            let g = sgx_section(p);
            if rule_name.ends_with("isv_ext_prod_id") {
                g.isv_ext_prod_id = to;
            } else {
                g.isv_family_id = to;
            }
        };
        let mut p = strict(&v);
        let r = passes(&appraise(&v, &p), rule_name);
        assert_eq!(
            (r.field, r.actual.clone(), r.claim),
            (
                field,
                tessera_pki::to_hex(&value),
                TrustClaim::InstanceIdentity
            )
        );
        set(&mut p, Some(pin([0x99; 16])));
        fails_only(&appraise(&v, &p), rule_name);
        set(
            &mut p,
            Some(Setting::Is(RefList::Values(vec![
                Hex([0x99; 16]),
                Hex(value),
            ]))),
        );
        passes(&appraise(&v, &p), rule_name);
        set(&mut p, Some(Setting::Any));
        not_checked(&appraise(&v, &p), rule_name, true);
        set(&mut p, None);
        not_checked(&appraise(&v, &p), rule_name, false);
    }
}

/// A policy generated from a KSS enclave rejects the same enclave under another loader's
/// configuration, an older CONFIGSVN, or another extended product or family id.
#[test]
fn strict_kss_policy_rejects_another_configuration() {
    let own = kss_enclave([0xe1; 16], [0xf1; 16], [0xc1; 64], 3);
    let p = strict(&own);
    assert!(appraise(&own, &p).passed());
    for (other, rule_name) in [
        (
            kss_enclave([0xe1; 16], [0xf1; 16], [0xc2; 64], 3),
            "sgx.config_id",
        ),
        (
            kss_enclave([0xe1; 16], [0xf1; 16], [0xc1; 64], 2),
            "sgx.min_config_svn",
        ),
        (
            kss_enclave([0xe2; 16], [0xf1; 16], [0xc1; 64], 3),
            "sgx.isv_ext_prod_id",
        ),
        (
            kss_enclave([0xe1; 16], [0xf2; 16], [0xc1; 64], 3),
            "sgx.isv_family_id",
        ),
    ] {
        fails_only(&appraise(&other, &p), rule_name);
    }
    // A newer configuration version passes.
    assert!(appraise(&kss_enclave([0xe1; 16], [0xf1; 16], [0xc1; 64], 4), &p).passed());
}

/// The KSS and VMID fields parse from TOML and JSON, survive a round trip (as do policies
/// generated from a KSS enclave and an L2 VM's quote), and are refused when malformed.
#[test]
fn kss_and_vmid_fields_parse_and_round_trip() {
    let text = format!(
        r#"
version = 1
id = "kss"
[tdx]
mr_td = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
debug = "must-not"
vmids = [0, 1]
[tdx.tcb]
accepted_statuses = ["UpToDate"]
[sgx]
mr_enclave = "any"
mr_signer = "any"
debug = "must-not"
isv_ext_prod_id = "{ext}"
isv_family_id = ["{family}", "{ext}"]
config_id = "{config}"
min_config_svn = 2
[sgx.tcb]
accepted_statuses = ["UpToDate"]
"#,
        ext = "e1".repeat(16),
        family = "F1".repeat(16),
        config = "c1".repeat(64),
    );
    let p = Policy::from_toml_str(&text).unwrap();
    let mut q = p.clone();
    assert_eq!(tdx(&mut q).vmids, Some(vec![0, 1]));
    let g = sgx_section(&mut q);
    assert_eq!(g.isv_ext_prod_id, Some(pin([0xe1; 16])));
    assert_eq!(
        g.isv_family_id,
        Some(Setting::Is(RefList::Values(vec![
            Hex([0xf1; 16]),
            Hex([0xe1; 16])
        ])))
    );
    assert_eq!(g.config_id, Some(pin([0xc1; 64])));
    assert_eq!(g.min_config_svn, Some(2));
    let toml = p.to_toml().unwrap();
    assert_eq!(Policy::from_toml_str(&toml).unwrap(), p, "{toml}");
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(Policy::from_text(&json).unwrap(), p, "{json}");
    // "any" where an allow-list may say it.
    let any = text.replace(&format!("\"{}\"", "c1".repeat(64)), "\"any\"");
    let mut a = Policy::from_toml_str(&any).unwrap();
    assert_eq!(sgx_section(&mut a).config_id, Some(Setting::Any));

    // Generated policies round-trip with what they pin.
    for v in [
        kss_enclave([0xe1; 16], [0xf1; 16], [0xc1; 64], 3),
        td15ex_from(2),
    ] {
        let p = strict(&v);
        let toml = p.to_toml().unwrap();
        let back = Policy::from_toml_str(&toml).unwrap();
        assert_eq!(back, p, "{toml}");
        assert!(appraise(&v, &back).passed());
    }

    // Malformed: wrong lengths, an empty or out-of-range VMID list, a misspelt field.
    for (from, to) in [
        (
            format!("\"{}\"", "c1".repeat(64)),
            format!("\"{}\"", "c1".repeat(48)),
        ),
        (
            format!("\"{}\"\n", "e1".repeat(16)),
            format!("\"{}\"\n", "e1".repeat(32)),
        ),
        (String::from("vmids = [0, 1]"), String::from("vmids = []")),
        (
            String::from("vmids = [0, 1]"),
            String::from("vmids = [256]"),
        ),
        (String::from("vmids = [0, 1]"), String::from("vmids = [-1]")),
        (String::from("vmids = [0, 1]"), String::from("vmids = 0")),
        (
            String::from("min_config_svn = 2"),
            String::from("min_config_svn = 65536"),
        ),
        (
            String::from("min_config_svn = 2"),
            String::from("config_svn = 2"),
        ),
    ] {
        let bad = text.replacen(&from, &to, 1);
        assert_ne!(bad, text, "{to}");
        let err = Policy::from_toml_str(&bad).unwrap_err();
        if to == "vmids = []" {
            assert!(err.to_string().contains("empty vmids"), "{err}");
        }
    }
    let json = serde_json::to_string(&p).unwrap().replace("[0,1]", "null");
    assert!(json.contains("\"vmids\":null"), "{json}");
    assert!(Policy::from_text(&json).is_err());
}

// ---------------------------------------------------------------------------------------------
// Real vectors.

/// Every case of `vectors/<tee>` that verifies (at its `at`, with Intel's root), by name.
fn verified_cases(vectors: &Path, tee: &str) -> Vec<(String, Verified<Quote>)> {
    let dirs = common::cases(vectors, tee);
    let verifier = Verifier::new(TrustAnchors::intel().unwrap());
    let mut out = Vec::new();
    for dir in dirs {
        let case = common::case(&dir);
        let (Some(evidence), Some(collateral), Some(at)) = (
            case["evidence"].as_str(),
            case["collateral"].as_str(),
            case["at"].as_str(),
        ) else {
            continue;
        };
        let quote = std::fs::read(dir.join(evidence)).unwrap();
        let Ok(collateral) =
            Collateral::from_bundle_json(&std::fs::read(dir.join(collateral)).unwrap())
        else {
            continue;
        };
        let options = VerifyOptions::default().allow_missing_crls(collateral_is_partial(&case));
        let at = UnixTime::parse_rfc3339(at).unwrap();
        if let Ok(v) = verifier.verify_bytes(&quote, &collateral, at, &options) {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, v));
        }
    }
    out
}

fn collateral_is_partial(case: &serde_json::Value) -> bool {
    case["collateral"]
        .as_str()
        .is_some_and(|c| c.contains("partial"))
}

/// Generate a strict policy from each case; it accepts the case before and after a TOML round
/// trip, and rejects (on `measurement`) every other case whose measurement differs. Returns how
/// many such rejections were checked.
fn strict_policies_accept_own_and_reject_others(
    cases: &[(String, Verified<Quote>)],
    measurement: &str,
    measured: fn(&Verified<Quote>) -> Vec<u8>,
) -> usize {
    let mut rejections = 0;
    for (name, v) in cases {
        let p = policy_from_evidence(v, name);
        let a = appraise(v, &p);
        assert!(
            a.passed(),
            "{name}: the strict policy rejects its own quote: {:#?}",
            a.failures().collect::<Vec<_>>()
        );
        assert_eq!(a.appraised_at(), v.verification().verified_at);
        assert_eq!(a.tcb_status(), Some(v.verification().tcb.status.as_str()));
        assert_eq!(a.advisory_ids(), v.verification().tcb.advisory_ids);

        let text = p.to_toml().unwrap();
        let back = Policy::from_toml_str(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(back, p, "{name}: TOML round trip\n{text}");
        assert!(appraise(v, &back).passed(), "{name}: after the round trip");

        for (other_name, other) in cases {
            if measured(other) == measured(v) {
                continue;
            }
            let a = appraise(other, &back);
            assert!(!a.passed(), "{name}'s policy accepts {other_name}");
            assert_eq!(
                rule(&a, measurement).outcome,
                Outcome::Fail,
                "{name}'s policy on {other_name}"
            );
            rejections += 1;
        }
    }
    eprintln!(
        "{} verified cases, {rejections} rejections on {measurement}",
        cases.len()
    );
    rejections
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn strict_policies_from_real_tdx_quotes() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let cases = verified_cases(&vectors, "tdx");
    assert!(
        cases.len() >= 8,
        "expected the accepted TDX vectors, got {}",
        cases.len()
    );
    // A TD 1.5 quote pins MRSERVICETD.
    let (name, td15) = cases
        .iter()
        .find(|(_, v)| v.quote().body().td15().is_some())
        .expect("a TD 1.5 vector");
    let p = policy_from_evidence(td15, name);
    assert!(p.tdx.as_ref().unwrap().mr_service_td.is_some());
    let rejections = strict_policies_accept_own_and_reject_others(&cases, "tdx.mr_td", |v| {
        v.quote().body().td().unwrap().mr_td.to_vec()
    });
    assert!(rejections > 0, "no two TDX vectors with different MRTDs");
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn strict_policies_from_real_sgx_quotes() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let cases = verified_cases(&vectors, "sgx");
    assert!(
        cases.len() >= 4,
        "expected the accepted SGX vectors, got {}",
        cases.len()
    );
    let rejections = strict_policies_accept_own_and_reject_others(&cases, "sgx.mr_enclave", |v| {
        v.quote().body().sgx().unwrap().mr_enclave.to_vec()
    });
    assert!(
        rejections > 0,
        "no two SGX vectors with different MRENCLAVEs"
    );
}

#[cfg_attr(
    not(tessera_vectors),
    ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
)]
#[test]
fn a_real_debug_enclave_gets_a_policy_that_pins_debug() {
    let Some(vectors) = common::vectors() else {
        return;
    };
    let cases = verified_cases(&vectors, "sgx");
    let Some((name, v)) = cases
        .iter()
        .find(|(_, v)| v.quote().body().sgx().unwrap().attributes.debug())
    else {
        eprintln!("NOTICE: no debug enclave among the SGX vectors");
        return;
    };
    let mut p = policy_from_evidence(v, name);
    assert_eq!(p.sgx.as_ref().unwrap().debug, Bit::Must);
    sgx_section(&mut p).debug = Bit::MustNot;
    let a = appraise(v, &p);
    fails_only(&a, "sgx.debug");
}

/// A policy generated on an OutOfDate platform keeps accepting the same platform once it is
/// updated (issue 11: "firmware updates pass"): today's status and every better one, but no
/// configuration need the platform did not have.
#[test]
fn generated_policies_accept_the_platform_after_an_update() {
    use TcbStatus as S;
    for (spec, prefix) in [
        (QuoteSpec::tdx(), "tdx"),
        (QuoteSpec::tdx15(), "tdx"),
        (QuoteSpec::sgx(), "sgx"),
    ] {
        let rule_name = format!("{prefix}.tcb.accepted_statuses");
        let at = |status: S| Sim::new(spec.clone()).status(status).verify();
        let statuses = |p: &Policy| -> Vec<S> {
            let tcb = p
                .tdx
                .as_ref()
                .map(|t| &t.tcb)
                .or_else(|| p.sgx.as_ref().map(|s| &s.tcb))
                .unwrap();
            tcb.accepted_statuses
                .rule()
                .unwrap()
                .iter()
                .map(|s| s.0)
                .collect()
        };
        let expected: [(S, &[S]); 6] = [
            (S::UpToDate, &[S::UpToDate]),
            (S::SwHardeningNeeded, &[S::UpToDate, S::SwHardeningNeeded]),
            (
                S::ConfigurationNeeded,
                &[S::UpToDate, S::ConfigurationNeeded],
            ),
            (
                S::ConfigurationAndSwHardeningNeeded,
                &[
                    S::UpToDate,
                    S::SwHardeningNeeded,
                    S::ConfigurationNeeded,
                    S::ConfigurationAndSwHardeningNeeded,
                ],
            ),
            (
                S::OutOfDate,
                &[S::UpToDate, S::SwHardeningNeeded, S::OutOfDate],
            ),
            (
                S::OutOfDateConfigurationNeeded,
                &[
                    S::UpToDate,
                    S::SwHardeningNeeded,
                    S::ConfigurationNeeded,
                    S::ConfigurationAndSwHardeningNeeded,
                    S::OutOfDate,
                    S::OutOfDateConfigurationNeeded,
                ],
            ),
        ];
        for (status, accepted) in expected {
            let v = at(status);
            let p = strict(&v);
            assert_eq!(statuses(&p), accepted, "{prefix} {status}");
            passes(&appraise(&v, &p), &rule_name);
        }
        // Made on an OutOfDate platform: the updated platform passes (UpToDate, or
        // SWHardeningNeeded), one that now needs a configuration change does not.
        let p = strict(&at(S::OutOfDate));
        passes(&appraise(&at(S::UpToDate), &p), &rule_name);
        passes(&appraise(&at(S::SwHardeningNeeded), &p), &rule_name);
        fails_only(&appraise(&at(S::ConfigurationNeeded), &p), &rule_name);
        // Made on an UpToDate platform: nothing worse passes.
        let p = strict(&at(S::UpToDate));
        fails_only(&appraise(&at(S::SwHardeningNeeded), &p), &rule_name);
        fails_only(&appraise(&at(S::OutOfDate), &p), &rule_name);
    }
}
