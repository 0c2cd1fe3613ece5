//! TDX and SGX rules applied to a verified DCAP quote, and strict policies generated from one.
//!
//! A TDX quote (header TEE type 0x81) is appraised against the policy's `[tdx]` section, an SGX
//! quote (TEE type 0) against `[sgx]`; evidence whose section is missing fails. Every rule of
//! the section is evaluated, in the order of the section's fields, and yields one
//! [`RuleResult`](crate::RuleResult) named `tdx.<field>` / `sgx.<field>` (`tdx.tcb.<field>` for
//! the Intel TCB controls) whose `field` is the quote field in Intel's words (Intel TDX DCAP
//! Quote Library API, appendix "Quote Format"; Intel PCS API for the collateral's names).
//!
//! Decisions worth knowing:
//!
//! - **Which SVNs.** `min_qe_svn` reads ISVSVN of the QE report in the quote's certification
//!   data: the PCK key signs that report, so it is authenticated. `min_pce_svn` reads the PCK
//!   certificate's PCESVN: Intel certified it, and it is the value Intel's TCB level was matched
//!   on. The quote header's `QE_SVN` and `PCE_SVN` are not used: they exist only in v3 quotes
//!   (reserved in v4 and v5), and even there they are what the quoting software wrote rather than
//!   what Intel certified; a v3 header value that differs is shown in the rule's note.
//! - **Grace period.** As dcap-qvl 0.7's `SimplePolicy`: an OutOfDate (or
//!   OutOfDateConfigurationNeeded) platform level, and an OutOfDate QE level, pass only while
//!   `tcbDate + grace_period >= verification time`. Tessera also holds an OutOfDate TDX module
//!   level to the same deadline (dcap-qvl does not look at it), since it alone can make the
//!   converged status OutOfDate. The status must still be listed in `accepted_statuses`: the
//!   grace period shortens what that list allows, it never widens it.
//! - **MRSERVICETD on TD 1.0 quotes.** A TD 1.0 body (v4 quote) has no MRSERVICETD, and a TDX
//!   1.5 module can still be asked for a v4 quote, so a bound service TD would be invisible.
//!   The rule therefore fails for a TD 1.0 quote whatever its allow-list holds (all zeros
//!   included), with a note asking for a v5 quote; `"any"` leaves it unchecked.
//! - **DEBUG.** The section's `debug` judges TD_ATTRIBUTES.DEBUG (bit 0). Intel calls bits 7:0
//!   the TUD group — any bit set means the TD is under debug — so `"must-not"` also fails when
//!   one of the reserved TUD bits 7:1 is set. For SGX it is ATTRIBUTES.DEBUG (FLAGS bit 1).
//! - **VMID (TD partitioning).** A TD 1.5ex body (v5 body type 4) carries VMID: 0 for the TD
//!   itself, 1 to 3 for an L2 VM of a partitioned TD. An L2 VM chose its report's REPORTDATA,
//!   while MRTD and the RTMRs measure the L1 TD that runs it, so such a quote does not say what
//!   an unpartitioned TD's would. `vmids` lists the VMIDs accepted; absent, only 0 is (the rule
//!   fails closed, like `tcb.revocation`). A TD 1.0 or 1.5 body has no VMID and is judged as
//!   VMID 0: the TDX modules that make those bodies let only the TD itself call TDG.MR.REPORT
//!   (an L2 VM's TDCALL for it exits to the L1, which asks with REPORTDATA it chose).
//! - **SGX key separation and sharing (KSS).** With `ATTRIBUTES.KSS` set, CONFIGID and
//!   CONFIGSVN are chosen by the enclave's untrusted loader and ISVEXTPRODID and ISVFAMILYID
//!   by its signer; all four are part of the enclave's identity. `config_id` has no default
//!   for such an enclave: left out, the rule fails (pin it, or write `"any"` to accept any
//!   configuration on purpose); without KSS it is "not checked" when left out.
//!   `min_config_svn` is optional; `isv_ext_prod_id` and `isv_family_id` are too, except under
//!   a policy that trusts a signer (below), where a KSS enclave fails them when left out.
//! - **A policy that trusts a signer** (`mr_enclave = "any"` with `mr_signer` pinned) accepts
//!   whatever that signer's key signed: every product, every version. So it must pin
//!   `isv_prod_id` and `min_isv_svn` (0 accepts every version, on purpose): the loader refuses
//!   it otherwise, and a policy built in code fails both rules. With `"any"` for both MR fields
//!   the policy accepts every enclave anyway, and says so.
//! - **Behind.** When a TCB rule (`tcb.*` or `min_tee_tcb_svn`) fails, the appraisal lists the
//!   components below the policy's floor and then those Intel's newest TCB level is ahead of
//!   (`Verification::tcb.behind`), so an operator sees what to update. Advisory IDs and Intel's
//!   converged status are always copied.
//! - **Generated policies** accept today's status and every better one (fewer of the problems
//!   "out of date", "configuration needed", "SW hardening needed"; OutOfDate counts as possibly
//!   needing SW hardening), so a platform that updates keeps passing and one that degrades fails.
//!   They pin a TD 1.5ex quote's VMID, and a KSS enclave's CONFIGID, ISVEXTPRODID and
//!   ISVFAMILYID (with its CONFIGSVN as the floor).

use tessera_pki::UnixTime;
use tessera_tdx::Verified;
use tessera_tdx::abi::{
    EnclaveReport, Quote, QuoteBody, TdAttributes, TdReport10, TdReport15, TeeType,
};
use tessera_tdx::collateral::TcbStatus;

use crate::appraisal::{
    Appraisal, Appraise, Behind, Outcome, RuleResult, Rules, Tee, TrustClaim, Verdict,
    describe_list, no_section, verdict_of,
};
use crate::generate::FromEvidence;
use crate::model::{
    IntelTcbPolicy, MaskedValue, POLICY_VERSION, Policy, Revocation, SgxAttributesRule, SgxPolicy,
    StatusName, TdAttribute, TdAttributeRules, TdxPolicy,
};
use crate::value::{AllowList, Bit, Duration, Hex, RefList, Setting, U64Hex};

/// The report a quote carries, by kind (exhaustive, so nothing below needs an `Option`).
enum Body<'a> {
    /// A TD report: its TD 1.0 fields, for TD 1.5 bodies the 1.5 additions, and for TD 1.5ex
    /// bodies the VMID.
    Td(&'a TdReport10, Option<&'a TdReport15>, Option<u8>),
    /// An SGX enclave report.
    Sgx(&'a EnclaveReport),
}

impl<'a> Body<'a> {
    fn of(quote: &'a Quote) -> Self {
        match quote.body() {
            QuoteBody::Sgx(report) => Self::Sgx(report),
            QuoteBody::Td10(td) => Self::Td(td, None, None),
            QuoteBody::Td15(td) => Self::Td(&td.base, Some(td), None),
            QuoteBody::Td15Ex(td) => Self::Td(&td.base.base, Some(&td.base), Some(td.vmid)),
        }
    }
}

impl Appraise for Verified<Quote> {
    fn appraise_with(&self, policy: &Policy) -> Appraisal {
        let v = self.verification();
        let at = v.verified_at;
        let dangerous = v.dangerous_root;
        match (v.tee, Body::of(self.quote())) {
            (TeeType::TDX, Body::Td(td, td15, vmid)) => match &policy.tdx {
                Some(section) => appraise_tdx(self, policy, section, (td, td15, vmid)),
                None => no_section(policy, Tee::Tdx, at, dangerous),
            },
            (TeeType::SGX, Body::Sgx(report)) => match &policy.sgx {
                Some(section) => appraise_sgx(self, policy, section, report),
                None => no_section(policy, Tee::Sgx, at, dangerous),
            },
            (tee, body) => tee_mismatch(policy, tee, &body, at, dangerous),
        }
    }
}

/// The verified TEE type disagrees with the body. The parser rejects such quotes, so this
/// cannot happen for a `Verified<Quote>`; it fails closed rather than trusting either side.
fn tee_mismatch(
    policy: &Policy,
    tee: TeeType,
    body: &Body<'_>,
    at: UnixTime,
    dangerous_test_root: bool,
) -> Appraisal {
    let (kind, shown) = match body {
        Body::Td(..) => (Tee::Tdx, "a TD report"),
        Body::Sgx(_) => (Tee::Sgx, "an SGX enclave report"),
    };
    let mut a = no_section(policy, kind, at, dangerous_test_root);
    a.rules = vec![RuleResult {
        rule: kind.as_str().to_owned(),
        field: "TEE Type",
        outcome: Outcome::Fail,
        expected: String::from("the header's TEE type to match the body"),
        actual: format!("TEE type {tee} with {shown}"),
        claim: TrustClaim::Configuration,
        note: Some(String::from("inconsistent quote")),
    }];
    a.verdict = Verdict::Fail;
    a
}

/// A TD report's parts: its TD 1.0 fields, its TD 1.5 fields, its VMID (TD 1.5ex).
type TdParts<'a> = (&'a TdReport10, Option<&'a TdReport15>, Option<u8>);

fn appraise_tdx(
    verified: &Verified<Quote>,
    policy: &Policy,
    p: &TdxPolicy,
    (td, td15, vmid): TdParts<'_>,
) -> Appraisal {
    use TrustClaim::{Configuration, Executables, Hardware, InstanceIdentity, SourcedData};
    let mut r = Rules::new("tdx");
    r.allow_list("mr_td", "MRTD", Executables, &p.mr_td, &td.mr_td);
    td_debug(&mut r, p.debug, td.td_attributes);
    intel_tcb(&mut r, &p.tcb, verified);
    let [rtmr0, rtmr1, rtmr2, rtmr3] = &td.rtmr;
    r.allow_list("rtmr0", "RTMR0", Executables, &p.rtmr0, rtmr0);
    r.allow_list("rtmr1", "RTMR1", Executables, &p.rtmr1, rtmr1);
    r.allow_list("rtmr2", "RTMR2", Executables, &p.rtmr2, rtmr2);
    r.allow_list("rtmr3", "RTMR3", Executables, &p.rtmr3, rtmr3);
    r.opt_allow_list(
        "mr_config_id",
        "MRCONFIGID",
        Configuration,
        p.mr_config_id.as_ref(),
        &td.mr_config_id,
    );
    r.opt_allow_list(
        "mr_owner",
        "MROWNER",
        InstanceIdentity,
        p.mr_owner.as_ref(),
        &td.mr_owner,
    );
    r.opt_allow_list(
        "mr_owner_config",
        "MROWNERCONFIG",
        Configuration,
        p.mr_owner_config.as_ref(),
        &td.mr_owner_config,
    );
    // The TDX module is part of the platform TCB, so its identity bears on `hardware`.
    r.opt_allow_list(
        "mr_seam",
        "MRSEAM",
        Hardware,
        p.mr_seam.as_ref(),
        &td.mr_seam,
    );
    r.opt_allow_list(
        "mr_signer_seam",
        "MRSIGNERSEAM",
        Hardware,
        p.mr_signer_seam.as_ref(),
        &td.mr_signer_seam,
    );
    mr_service_td(&mut r, p.mr_service_td.as_ref(), td15);
    r.opt_allow_list(
        "report_data",
        "REPORTDATA",
        SourcedData,
        p.report_data.as_ref(),
        &td.report_data,
    );
    td_attributes(&mut r, p.td_attributes.as_ref(), p.debug, td.td_attributes);
    xfam(&mut r, p.xfam.as_ref(), td.xfam.bits());
    min_tee_tcb_svn(&mut r, p.min_tee_tcb_svn.as_ref(), &td.tee_tcb_svn);
    vmids(&mut r, p.vmids.as_deref(), vmid);
    finish(r, verified, policy, Tee::Tdx)
}

fn appraise_sgx(
    verified: &Verified<Quote>,
    policy: &Policy,
    p: &SgxPolicy,
    report: &EnclaveReport,
) -> Appraisal {
    use TrustClaim::{Configuration, Executables, InstanceIdentity, SourcedData};
    let mut r = Rules::new("sgx");
    r.allow_list(
        "mr_enclave",
        "MRENCLAVE",
        Executables,
        &p.mr_enclave,
        &report.mr_enclave,
    );
    r.allow_list(
        "mr_signer",
        "MRSIGNER",
        InstanceIdentity,
        &p.mr_signer,
        &report.mr_signer,
    );
    r.bit(
        "debug",
        "ATTRIBUTES.DEBUG",
        Configuration,
        Some(p.debug),
        report.attributes.debug(),
    );
    intel_tcb(&mut r, &p.tcb, verified);
    // A policy that trusts a signer must say which of its products and versions (the loader
    // refuses one that does not; a policy built in code is judged the same way here).
    let signer_based = crate::load::sgx_signer_based(p);
    isv_prod_id(
        &mut r,
        p.isv_prod_id.as_ref(),
        report.isv_prod_id,
        signer_based,
    );
    match p.min_isv_svn {
        None if signer_based => r.unstated(
            "min_isv_svn",
            "ISVSVN",
            Executables,
            SIGNER_WHY,
            report.isv_svn.to_string(),
            SIGNER_NOTE,
        ),
        floor => {
            r.min("min_isv_svn", "ISVSVN", Executables, floor, report.isv_svn);
        }
    }
    // With KSS the signer tells its products apart by ISVEXTPRODID and ISVFAMILYID too.
    let kss_signer = signer_based && report.attributes.kss();
    kss_identity(
        &mut r,
        ("isv_ext_prod_id", "ISVEXTPRODID"),
        p.isv_ext_prod_id.as_ref(),
        &report.isv_ext_prod_id(),
        kss_signer,
    );
    kss_identity(
        &mut r,
        ("isv_family_id", "ISVFAMILYID"),
        p.isv_family_id.as_ref(),
        &report.isv_family_id(),
        kss_signer,
    );
    config_id(&mut r, p.config_id.as_ref(), report);
    r.min(
        "min_config_svn",
        "CONFIGSVN",
        Configuration,
        p.min_config_svn,
        report.config_svn(),
    );
    sgx_attributes(&mut r, p.attributes.as_ref(), report.attributes.to_bytes());
    r.opt_allow_list(
        "report_data",
        "REPORTDATA",
        SourcedData,
        p.report_data.as_ref(),
        &report.report_data,
    );
    finish(r, verified, policy, Tee::Sgx)
}

/// Whether `rule` (a full rule name) judges the TCB, so its failure lists what is behind.
fn is_tcb_rule(rule: &str) -> bool {
    let local = rule.split_once('.').map_or(rule, |(_, rest)| rest);
    local.starts_with("tcb.") || local == "min_tee_tcb_svn"
}

fn finish(r: Rules, verified: &Verified<Quote>, policy: &Policy, tee: Tee) -> Appraisal {
    let v = verified.verification();
    let (rules, mut behind) = r.finish();
    let tcb_failed = rules
        .iter()
        .any(|x| x.outcome == Outcome::Fail && is_tcb_rule(&x.rule));
    // The policy's own floors (QE, PCE, TEE_TCB_SVN) first, then what Intel's newest level
    // is ahead of; a component both name is listed once, with the policy's requirement.
    if tcb_failed {
        for b in &v.tcb.behind {
            if !behind.iter().any(|have| have.component == b.component) {
                behind.push(Behind {
                    component: b.component.clone(),
                    actual: b.actual.to_string(),
                    required: b.latest.to_string(),
                });
            }
        }
    }
    Appraisal {
        policy_id: policy.id.clone(),
        tee,
        verdict: verdict_of(&rules),
        rules,
        behind,
        advisory_ids: v.tcb.advisory_ids.clone(),
        tcb_status: Some(v.tcb.status.as_str().to_owned()),
        appraised_at: v.verified_at,
        dangerous_test_root: v.dangerous_root,
    }
}

/// TD_ATTRIBUTES.DEBUG, with the reserved TUD bits 7:1 counted as debug for `must-not`.
fn td_debug(r: &mut Rules, setting: Bit, attrs: TdAttributes) {
    const RULE: &str = "debug";
    const FIELD: &str = "TD_ATTRIBUTES.DEBUG";
    let debug = attrs.debug();
    let other_tud = attrs.tud() & 0xfe;
    let shown = if debug { "set" } else { "clear" };
    let tud_note = (other_tud != 0).then(|| {
        format!("TUD bits 7:1 are {other_tud:#04x}: any TUD bit set means the TD is under debug")
    });
    match setting {
        Bit::Any => r.not_checked(RULE, FIELD, TrustClaim::Configuration, shown, true),
        Bit::Must => {
            r.check(RULE, FIELD, TrustClaim::Configuration, debug, "set", shown)
                .note = tud_note;
        }
        Bit::MustNot => {
            let ok = !debug && other_tud == 0;
            r.check(RULE, FIELD, TrustClaim::Configuration, ok, "clear", shown)
                .note = tud_note;
        }
    }
}

/// The Intel TCB controls, shared by TDX and SGX, in the order of [`IntelTcbPolicy`]'s fields.
fn intel_tcb(r: &mut Rules, p: &IntelTcbPolicy, verified: &Verified<Quote>) {
    let v = verified.verification();
    let tcb = &v.tcb;
    let at = v.verified_at;
    accepted_statuses(r, &p.accepted_statuses, tcb.status, tcb.td_relaunch_advised);
    grace_period(r, p.grace_period, verified);
    denied_advisories(
        r,
        p.denied_advisories.as_deref(),
        &tcb.advisory_ids,
        tcb.platform_advisories_listed,
    );

    // tcbEvaluationDataNumber: both the TCB info's and the QE identity's.
    let numbers = format!(
        "TCB info {}, QE identity {}",
        tcb.tcb_evaluation_data_number, tcb.qe_tcb_evaluation_data_number
    );
    match p.min_evaluation_data_number {
        None => r.not_checked(
            "tcb.min_evaluation_data_number",
            "tcbEvaluationDataNumber",
            TrustClaim::Hardware,
            numbers,
            false,
        ),
        Some(floor) => {
            let ok = tcb.tcb_evaluation_data_number >= floor
                && tcb.qe_tcb_evaluation_data_number >= floor;
            r.check(
                "tcb.min_evaluation_data_number",
                "tcbEvaluationDataNumber",
                TrustClaim::Hardware,
                ok,
                format!(">= {floor} (both)"),
                numbers,
            );
        }
    }

    // Collateral age: the older of the two issueDates.
    let oldest = v.tcb_info_issue_date.min(v.qe_identity_issue_date);
    let age = age_between(oldest, at);
    let shown = format!("oldest issueDate {oldest}, {age} before {at}");
    match p.max_collateral_age {
        None => r.not_checked(
            "tcb.max_collateral_age",
            "issueDate",
            TrustClaim::Hardware,
            shown,
            false,
        ),
        Some(max) => {
            r.check(
                "tcb.max_collateral_age",
                "issueDate",
                TrustClaim::Hardware,
                age <= max,
                format!("at most {max} old"),
                shown,
            );
        }
    }

    let quote = verified.quote();
    let header = quote.header();
    let v3 = quote.version() == 3;
    let qe_svn = quote.signature_data().certification.qe_report.isv_svn;
    if !r.min(
        "tcb.min_qe_svn",
        "QE ISVSVN",
        TrustClaim::Hardware,
        p.min_qe_svn,
        qe_svn,
    ) {
        r.behind.push(Behind {
            component: String::from("quoting enclave ISVSVN"),
            actual: qe_svn.to_string(),
            required: p.min_qe_svn.map(|m| m.to_string()).unwrap_or_default(),
        });
    }
    if v3 && header.qe_svn != qe_svn {
        annotate_last(
            r,
            format!(
                "the v3 header's QE_SVN is {}; the PCK-signed QE report's ISVSVN is used",
                header.qe_svn
            ),
        );
    }
    let pce_svn = v.pck.tcb.pce_svn;
    if !r.min(
        "tcb.min_pce_svn",
        "PCESVN",
        TrustClaim::Hardware,
        p.min_pce_svn,
        pce_svn,
    ) {
        r.behind.push(Behind {
            component: String::from("PCE SVN"),
            actual: pce_svn.to_string(),
            required: p.min_pce_svn.map(|m| m.to_string()).unwrap_or_default(),
        });
    }
    if v3 && header.pce_svn != pce_svn {
        annotate_last(
            r,
            format!(
                "the v3 header's PCE_SVN is {}; the PCK certificate's PCESVN is used",
                header.pce_svn
            ),
        );
    }
    revocation(r, p.revocation, v.revocation_checked);
}

/// Add `note` to the last rule recorded (appending to a note it has).
fn annotate_last(r: &mut Rules, note: String) {
    if let Some(last) = r.last_mut() {
        last.note = Some(match last.note.take() {
            Some(old) => format!("{old}; {note}"),
            None => note,
        });
    }
}

fn status_list(list: &[StatusName]) -> String {
    match list {
        [one] => one.0.as_str().to_owned(),
        many => format!(
            "one of [{}]",
            many.iter()
                .map(|s| s.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn accepted_statuses(
    r: &mut Rules,
    setting: &Setting<Vec<StatusName>>,
    status: TcbStatus,
    relaunch: bool,
) {
    const RULE: &str = "tcb.accepted_statuses";
    const FIELD: &str = "tcbStatus";
    let relaunch_note = relaunch.then_some(
        "Intel advises relaunching the TD (TD_RELAUNCH_ADVISED): TEE_TCB_SVN2 reaches the newest \
         TDX module level",
    );
    let (outcome, expected, mut note) = match setting {
        Setting::Any => (
            Outcome::NotChecked,
            String::new(),
            Some(String::from("\"any\" in the policy")),
        ),
        Setting::Is(list) => {
            let ok = list.iter().any(|s| s.0 == status);
            let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
            (outcome, status_list(list), None)
        }
    };
    if let Some(extra) = relaunch_note {
        note = Some(match note {
            Some(n) => format!("{n}; {extra}"),
            None => extra.to_owned(),
        });
    }
    r.push(
        RULE,
        FIELD,
        TrustClaim::Hardware,
        outcome,
        expected,
        status.as_str(),
    )
    .note = note;
}

/// Seconds from `from` to `to` as a [`Duration`] (zero when `to` is earlier).
fn age_between(from: UnixTime, to: UnixTime) -> Duration {
    let secs = to.as_secs().saturating_sub(from.as_secs());
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn grace_period(r: &mut Rules, grace: Option<Duration>, verified: &Verified<Quote>) {
    const RULE: &str = "tcb.grace_period";
    const FIELD: &str = "tcbDate";
    let v = verified.verification();
    let tcb = &v.tcb;
    let at = v.verified_at;
    // The levels that are out of date, each with its tcbDate.
    let mut levels = Vec::new();
    if matches!(
        tcb.platform.status,
        TcbStatus::OutOfDate | TcbStatus::OutOfDateConfigurationNeeded
    ) {
        levels.push(("platform", tcb.platform.status, tcb.platform.tcb_date));
    }
    if let Some(m) = tcb
        .tdx_module
        .as_ref()
        .filter(|m| m.status == TcbStatus::OutOfDate)
    {
        levels.push(("TDX module", m.status, m.tcb_date));
    }
    if tcb.qe.status == TcbStatus::OutOfDate {
        levels.push(("QE", tcb.qe.status, tcb.qe.tcb_date));
    }
    let Some(grace) = grace else {
        let shown = if levels.is_empty() {
            String::from("no level out of date")
        } else {
            describe_levels(&levels)
        };
        r.not_checked(RULE, FIELD, TrustClaim::Hardware, shown, false);
        return;
    };
    let expected = format!("an OutOfDate level's tcbDate + {grace} >= {at}");
    if levels.is_empty() {
        r.check(
            RULE,
            FIELD,
            TrustClaim::Hardware,
            true,
            expected,
            format!("platform {}, QE {}", tcb.platform.status, tcb.qe.status),
        )
        .note = Some(String::from("not out of date"));
        return;
    }
    let mut expired = Vec::new();
    for &(what, _, date) in &levels {
        let deadline = UnixTime::from_secs(date.as_secs().saturating_add(grace.as_secs_i64()));
        if deadline < at {
            expired.push(format!(
                "the {what} level's grace period ended at {deadline}"
            ));
        }
    }
    let ok = expired.is_empty();
    r.check(
        RULE,
        FIELD,
        TrustClaim::Hardware,
        ok,
        expected,
        describe_levels(&levels),
    )
    .note = (!ok).then(|| expired.join("; "));
}

fn describe_levels(levels: &[(&str, TcbStatus, UnixTime)]) -> String {
    levels
        .iter()
        .map(|(what, status, date)| format!("{what} {status} since tcbDate {date}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `tcb.revocation`: absent means `"required"` (fail closed).
fn revocation(r: &mut Rules, setting: Option<Revocation>, checked: bool) {
    const RULE: &str = "tcb.revocation";
    const FIELD: &str = "revocation_checked";
    let actual = if checked {
        "the PCK CRL and the Root CA CRL were applied"
    } else {
        "verified without CRLs (missing CRLs allowed)"
    };
    match setting.unwrap_or(Revocation::Required) {
        Revocation::Required => {
            r.check(
                RULE,
                FIELD,
                TrustClaim::Hardware,
                checked,
                "CRLs applied (\"required\")",
                actual,
            );
        }
        Revocation::IfGiven if checked => {
            r.check(
                RULE,
                FIELD,
                TrustClaim::Hardware,
                true,
                "applied when given (\"if-given\")",
                actual,
            );
        }
        // Accepted, but nothing was checked: listed as such (as SEV-SNP's is), not as a pass.
        Revocation::IfGiven => {
            r.push(
                RULE,
                FIELD,
                TrustClaim::Hardware,
                Outcome::NotChecked,
                "",
                actual,
            )
            .note = Some(String::from(
                "\"if-given\" in the policy and the CRLs were not supplied",
            ));
        }
    }
}

/// The deny list against the selected levels' advisory IDs. With TCB info that need not list
/// the platform's (SGX version 2), finding none of the denied IDs proves nothing: the rule
/// fails (a deny list fails closed, as its other checks at load do), unless a denied ID is
/// listed anyway, which fails it as usual.
fn denied_advisories(
    r: &mut Rules,
    denied: Option<&[String]>,
    present: &[String],
    platform_listed: bool,
) {
    const RULE: &str = "tcb.denied_advisories";
    const FIELD: &str = "advisoryIDs";
    let mut actual = if present.is_empty() {
        String::from("none")
    } else {
        present.join(", ")
    };
    if !platform_listed {
        actual.push_str(" (SGX TCB info version 2: the platform level's are not listed)");
    }
    let Some(denied) = denied else {
        r.not_checked(RULE, FIELD, TrustClaim::Hardware, actual, false);
        return;
    };
    let hits: Vec<&str> = present
        .iter()
        .filter(|id| denied.iter().any(|d| d.eq_ignore_ascii_case(id)))
        .map(String::as_str)
        .collect();
    let ok = hits.is_empty() && platform_listed;
    r.check(
        RULE,
        FIELD,
        TrustClaim::Hardware,
        ok,
        format!("none of [{}]", denied.join(", ")),
        actual,
    )
    .note = if !hits.is_empty() {
        Some(format!("denied: {}", hits.join(", ")))
    } else if !platform_listed {
        Some(String::from(
            "SGX TCB info version 2 need not list advisory IDs, so the deny list cannot be \
             judged: use version 3 TCB info (Intel PCS API v4)",
        ))
    } else {
        None
    };
}

/// MRSERVICETD: TD 1.5 bodies only; see the module documentation for TD 1.0 quotes.
fn mr_service_td(r: &mut Rules, setting: Option<&AllowList<48>>, td15: Option<&TdReport15>) {
    const RULE: &str = "mr_service_td";
    const FIELD: &str = "MRSERVICETD";
    const CLAIM: TrustClaim = TrustClaim::Configuration;
    match td15 {
        Some(td15) => r.opt_allow_list(RULE, FIELD, CLAIM, setting, &td15.mr_service_td),
        None => {
            let absent = "absent (TD 1.0 body)";
            match setting {
                None => r.not_checked(RULE, FIELD, CLAIM, absent, false),
                Some(Setting::Any) => r.not_checked(RULE, FIELD, CLAIM, absent, true),
                Some(Setting::Is(list)) => {
                    r.check(RULE, FIELD, CLAIM, false, describe_list(list), absent)
                        .note = Some(String::from(
                        "a TD 1.0 quote (v4) does not show whether a service TD is bound: \
                         request a v5 quote (TD 1.5 body)",
                    ));
                }
            }
        }
    }
}

/// Each named TD_ATTRIBUTES bit, its rule name and its field.
const TD_ATTRIBUTE_BITS: [(TdAttribute, &str, &str); 6] = [
    (
        TdAttribute::Debug,
        "td_attributes.debug",
        "TD_ATTRIBUTES.DEBUG",
    ),
    (
        TdAttribute::SeptVeDisable,
        "td_attributes.sept_ve_disable",
        "TD_ATTRIBUTES.SEPT_VE_DISABLE",
    ),
    (
        TdAttribute::Migratable,
        "td_attributes.migratable",
        "TD_ATTRIBUTES.MIGRATABLE",
    ),
    (TdAttribute::Pks, "td_attributes.pks", "TD_ATTRIBUTES.PKS"),
    (TdAttribute::Kl, "td_attributes.kl", "TD_ATTRIBUTES.KL"),
    (
        TdAttribute::Perfmon,
        "td_attributes.perfmon",
        "TD_ATTRIBUTES.PERFMON",
    ),
];

fn td_attribute_bit(attrs: TdAttributes, bit: TdAttribute) -> bool {
    match bit {
        TdAttribute::Debug => attrs.debug(),
        TdAttribute::SeptVeDisable => attrs.sept_ve_disable(),
        TdAttribute::Migratable => attrs.migratable(),
        TdAttribute::Pks => attrs.pks(),
        TdAttribute::Kl => attrs.kl(),
        TdAttribute::Perfmon => attrs.perfmon(),
    }
}

/// Where the DEBUG bit is judged when `td_attributes` does not name it: by the `debug` rule,
/// unless that is `"any"` too. Said in the note, so the two rows never seem to disagree.
fn debug_elsewhere(debug: Bit) -> &'static str {
    if debug == Bit::Any {
        "`debug` is \"any\" too: nothing checks TD_ATTRIBUTES.DEBUG"
    } else {
        "its DEBUG bit is checked by the tdx.debug rule"
    }
}

/// One result per named bit when the policy has `td_attributes`, one "not checked" otherwise.
fn td_attributes(r: &mut Rules, rules: Option<&TdAttributeRules>, debug: Bit, attrs: TdAttributes) {
    let Some(rules) = rules else {
        r.push(
            "td_attributes",
            "TD_ATTRIBUTES",
            TrustClaim::Configuration,
            Outcome::NotChecked,
            "",
            format!("{:#018x}", attrs.bits()),
        )
        .note = Some(format!("not in the policy; {}", debug_elsewhere(debug)));
        return;
    };
    for (bit, rule, field) in TD_ATTRIBUTE_BITS {
        let set = td_attribute_bit(attrs, bit);
        let must_set = rules.must_set.contains(&bit);
        let must_clear = rules.must_clear.contains(&bit);
        if must_set && must_clear {
            let shown = if set { "set" } else { "clear" };
            r.check(
                rule,
                field,
                TrustClaim::Configuration,
                false,
                "set and clear",
                shown,
            )
            .note = Some(String::from(
                "listed in both must_set and must_clear: no TD can satisfy it",
            ));
            continue;
        }
        let setting = if must_set {
            Some(Bit::Must)
        } else if must_clear {
            Some(Bit::MustNot)
        } else {
            None
        };
        if bit == TdAttribute::Debug && setting.is_none() {
            let shown = if set { "set" } else { "clear" };
            r.push(
                rule,
                field,
                TrustClaim::Configuration,
                Outcome::NotChecked,
                "",
                shown,
            )
            .note = Some(format!("not in td_attributes; {}", debug_elsewhere(debug)));
            continue;
        }
        r.bit(rule, field, TrustClaim::Configuration, setting, set);
    }
}

fn xfam(r: &mut Rules, rule: Option<&MaskedValue>, xfam: u64) {
    let actual = format!("{xfam:#018x}");
    let Some(rule) = rule else {
        r.not_checked("xfam", "XFAM", TrustClaim::Configuration, actual, false);
        return;
    };
    let keep = !rule.ignore_mask.0;
    let ok = xfam & keep == rule.value.0 & keep;
    let expected = if rule.ignore_mask.0 == 0 {
        format!("{:#018x}", rule.value.0)
    } else {
        format!(
            "{:#018x} ignoring {:#018x}",
            rule.value.0, rule.ignore_mask.0
        )
    };
    r.check(
        "xfam",
        "XFAM",
        TrustClaim::Configuration,
        ok,
        expected,
        actual,
    )
    .note = (!ok).then(|| format!("differing bits {:#018x}", (xfam ^ rule.value.0) & keep));
}

/// The name of TEE_TCB_SVN component `i` (Intel TDX DCAP quote format, "TEE_TCB_SVN").
fn tee_tcb_svn_component(i: usize) -> String {
    match i {
        0 => String::from("TEE_TCB_SVN[0] (TDX module SVN)"),
        1 => String::from("TEE_TCB_SVN[1] (TDX module major version)"),
        _ => format!("TEE_TCB_SVN[{i}]"),
    }
}

fn min_tee_tcb_svn(r: &mut Rules, floor: Option<&Hex<16>>, actual: &[u8; 16]) {
    const RULE: &str = "min_tee_tcb_svn";
    const FIELD: &str = "TEE_TCB_SVN";
    let shown = tessera_pki::to_hex(actual);
    let Some(floor) = floor else {
        r.not_checked(RULE, FIELD, TrustClaim::Hardware, shown, false);
        return;
    };
    let low: Vec<(usize, u8, u8)> = actual
        .iter()
        .zip(floor.0.iter())
        .enumerate()
        .filter(|(_, (have, want))| have < want)
        .map(|(i, (&have, &want))| (i, have, want))
        .collect();
    let ok = low.is_empty();
    r.check(
        RULE,
        FIELD,
        TrustClaim::Hardware,
        ok,
        format!(">= {floor} (each byte)"),
        shown,
    )
    .note = (!ok).then(|| {
        low.iter()
            .map(|(i, have, want)| format!("component {i}: {have} < {want}"))
            .collect::<Vec<_>>()
            .join(", ")
    });
    for (i, have, want) in low {
        r.behind.push(Behind {
            component: tee_tcb_svn_component(i),
            actual: have.to_string(),
            required: want.to_string(),
        });
    }
}

/// The case in which a signer-based SGX policy must state a product field, and what to write;
/// see [`appraise_sgx`].
const SIGNER_WHY: &str = "the policy trusts a signer";
/// See [`SIGNER_WHY`].
const SIGNER_NOTE: &str = "the policy trusts a signer (mr_enclave = \"any\", mr_signer pinned), \
     whose key signs all of its products and versions: pin isv_prod_id and min_isv_svn (0 \
     accepts every version on purpose)";

fn isv_prod_id(r: &mut Rules, list: Option<&RefList<u16>>, actual: u16, signer_based: bool) {
    const RULE: &str = "isv_prod_id";
    const FIELD: &str = "ISVPRODID";
    const CLAIM: TrustClaim = TrustClaim::InstanceIdentity;
    let Some(list) = list else {
        if signer_based {
            r.unstated(
                RULE,
                FIELD,
                CLAIM,
                SIGNER_WHY,
                actual.to_string(),
                SIGNER_NOTE,
            );
        } else {
            r.not_checked(RULE, FIELD, CLAIM, actual.to_string(), false);
        }
        return;
    };
    match list.values() {
        None => {
            let file = list
                .file()
                .map(|f| f.display().to_string())
                .unwrap_or_default();
            r.check(
                RULE,
                FIELD,
                CLAIM,
                false,
                describe_list(list),
                actual.to_string(),
            )
            .note = Some(format!("reference file {file} was not loaded"));
        }
        Some(values) => {
            r.check(
                RULE,
                FIELD,
                CLAIM,
                values.contains(&actual),
                describe_list(list),
                actual.to_string(),
            );
        }
    }
}

/// VMID, TD 1.5ex bodies (others count as VMID 0); see the module documentation.
fn vmids(r: &mut Rules, allowed: Option<&[u8]>, vmid: Option<u8>) {
    const RULE: &str = "vmids";
    const FIELD: &str = "VMID";
    // Another VM than the one measured would be answering: an identity, not a configuration.
    const CLAIM: TrustClaim = TrustClaim::InstanceIdentity;
    let listed = allowed.unwrap_or(&[0]);
    let judged = vmid.unwrap_or(0);
    let ok = listed.contains(&judged);
    let mut expected = match listed {
        [one] => one.to_string(),
        many => format!(
            "one of [{}]",
            many.iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if allowed.is_none() {
        expected.push_str(" (vmids not in the policy: the TD itself only)");
    }
    let actual = match vmid {
        Some(v) => v.to_string(),
        None => String::from("none in a TD 1.0 or 1.5 body: 0"),
    };
    let mut notes = Vec::new();
    if vmid.is_none() {
        notes.push(String::from(
            "a TD 1.0 or 1.5 body has no VMID and is judged as VMID 0: only the TD itself can \
             ask the TDX module for such a report (an L2 VM's request goes through the L1 TD, \
             which chooses the REPORTDATA)",
        ));
    }
    if !ok && judged != 0 {
        notes.push(format!(
            "VMID {judged} is an L2 VM of a partitioned TD: the L2 chose REPORTDATA, while MRTD \
             and the RTMRs measure the L1 TD; list {judged} in vmids to accept its quotes"
        ));
    }
    r.check(RULE, FIELD, CLAIM, ok, expected, actual).note =
        (!notes.is_empty()).then(|| notes.join("; "));
}

/// ISVEXTPRODID or ISVFAMILYID (`rule`, `field`): required in effect for a KSS enclave under
/// a policy that trusts a signer (`required`), which tells its products apart by them; else
/// optional.
fn kss_identity(
    r: &mut Rules,
    (rule, field): (&str, &'static str),
    setting: Option<&AllowList<16>>,
    actual: &[u8; 16],
    required: bool,
) {
    const CLAIM: TrustClaim = TrustClaim::InstanceIdentity;
    match setting {
        None if required => r.unstated(
            rule,
            field,
            CLAIM,
            "ATTRIBUTES.KSS is set and the policy trusts a signer",
            tessera_pki::to_hex(actual),
            format!(
                "ATTRIBUTES.KSS is set: the signer tells its products apart by {field} too; \
                 pin it with {rule}, or write {rule} = \"any\" to accept any on purpose"
            ),
        ),
        setting => r.opt_allow_list(rule, field, CLAIM, setting, actual),
    }
}

/// CONFIGID: required in effect for a KSS enclave; see the module documentation.
fn config_id(r: &mut Rules, setting: Option<&AllowList<64>>, report: &EnclaveReport) {
    const RULE: &str = "config_id";
    const FIELD: &str = "CONFIGID";
    const CLAIM: TrustClaim = TrustClaim::Configuration;
    let actual = report.config_id();
    match setting {
        Some(s) => r.allow_list(RULE, FIELD, CLAIM, s, &actual),
        None if report.attributes.kss() => r.unstated(
            RULE,
            FIELD,
            CLAIM,
            "ATTRIBUTES.KSS is set",
            tessera_pki::to_hex(&actual),
            "ATTRIBUTES.KSS is set: the enclave's loader chose CONFIGID, which is part of its \
             identity; pin it with config_id, or write config_id = \"any\" to accept any \
             configuration",
        ),
        None => r.not_checked(RULE, FIELD, CLAIM, tessera_pki::to_hex(&actual), false),
    }
}

fn sgx_attributes(r: &mut Rules, rule: Option<&SgxAttributesRule>, actual: [u8; 16]) {
    const RULE: &str = "attributes";
    const FIELD: &str = "ATTRIBUTES";
    let shown = tessera_pki::to_hex(&actual);
    let Some(rule) = rule else {
        r.not_checked(RULE, FIELD, TrustClaim::Configuration, shown, false);
        return;
    };
    let masked = |bytes: &[u8; 16]| -> [u8; 16] {
        let mut out = [0u8; 16];
        for ((o, b), m) in out.iter_mut().zip(bytes).zip(rule.mask.0.iter()) {
            *o = b & m;
        }
        out
    };
    let ok = masked(&actual) == masked(&rule.value.0);
    r.check(
        RULE,
        FIELD,
        TrustClaim::Configuration,
        ok,
        format!("{} under mask {}", rule.value, rule.mask),
        shown,
    )
    .note = (!ok).then(|| format!("masked: {}", tessera_pki::to_hex(&masked(&actual))));
}

// ---------------------------------------------------------------------------------------------
// Strict policies from evidence.

fn pin<const N: usize>(value: &[u8; N]) -> AllowList<N> {
    Setting::Is(RefList::Values(vec![Hex(*value)]))
}

fn pinned_bit(set: bool) -> Bit {
    if set { Bit::Must } else { Bit::MustNot }
}

/// What an Intel status says is wrong with the platform: bit 0 SW hardening needed, bit 1
/// configuration needed, bit 2 out of date. OutOfDate shows only the most severe problem, so it
/// may hide a SW-hardening need that remains after the update: it counts as both.
fn problems(status: TcbStatus) -> Option<u8> {
    Some(match status {
        TcbStatus::UpToDate => 0b000,
        TcbStatus::SwHardeningNeeded => 0b001,
        TcbStatus::ConfigurationNeeded => 0b010,
        TcbStatus::ConfigurationAndSwHardeningNeeded => 0b011,
        TcbStatus::OutOfDate => 0b101,
        TcbStatus::OutOfDateConfigurationNeeded => 0b111,
        TcbStatus::Revoked => return None,
    })
}

/// `status` and every status at least as good: whose problems are a subset of its problems. A
/// policy generated on an OutOfDate platform keeps accepting it once updated (UpToDate or
/// SWHardeningNeeded), but never a configuration the platform did not need.
fn statuses_at_least_as_good(status: TcbStatus) -> Vec<TcbStatus> {
    let Some(have) = problems(status) else {
        return Vec::new();
    };
    TcbStatus::ALL
        .into_iter()
        .filter(|s| problems(*s).is_some_and(|p| p & !have == 0))
        .collect()
}

/// The TCB controls that accept what `verified` has or better: its status and every better
/// one, its QE and PCE SVNs or higher, its evaluation data numbers or newer. No grace period,
/// advisory deny-list or age limit: those are the operator's choices, not facts of the evidence.
fn strict_tcb(verified: &Verified<Quote>) -> IntelTcbPolicy {
    let v = verified.verification();
    IntelTcbPolicy {
        accepted_statuses: Setting::Is(
            statuses_at_least_as_good(v.tcb.status)
                .into_iter()
                .map(StatusName)
                .collect(),
        ),
        grace_period: None,
        denied_advisories: None,
        // What the evidence was verified with: CRLs applied, or (a verifier told to allow
        // missing CRLs) not; "required" is then the stricter choice left to the operator.
        revocation: Some(if v.revocation_checked {
            Revocation::Required
        } else {
            Revocation::IfGiven
        }),
        min_evaluation_data_number: Some(
            v.tcb
                .tcb_evaluation_data_number
                .min(v.tcb.qe_tcb_evaluation_data_number),
        ),
        max_collateral_age: None,
        min_qe_svn: Some(
            verified
                .quote()
                .signature_data()
                .certification
                .qe_report
                .isv_svn,
        ),
        min_pce_svn: Some(v.pck.tcb.pce_svn),
    }
}

fn strict_tdx(verified: &Verified<Quote>, (td, td15, vmid): TdParts<'_>) -> TdxPolicy {
    let attrs = td.td_attributes;
    let mut must_set = Vec::new();
    let mut must_clear = Vec::new();
    // DEBUG is pinned by the section's `debug`; the other named bits here.
    for (bit, _, _) in TD_ATTRIBUTE_BITS
        .iter()
        .filter(|(b, _, _)| *b != TdAttribute::Debug)
    {
        if td_attribute_bit(attrs, *bit) {
            must_set.push(*bit);
        } else {
            must_clear.push(*bit);
        }
    }
    let [rtmr0, rtmr1, rtmr2, rtmr3] = &td.rtmr;
    TdxPolicy {
        mr_td: pin(&td.mr_td),
        debug: pinned_bit(attrs.debug()),
        tcb: strict_tcb(verified),
        rtmr0: pin(rtmr0),
        rtmr1: pin(rtmr1),
        rtmr2: pin(rtmr2),
        rtmr3: pin(rtmr3),
        mr_config_id: Some(pin(&td.mr_config_id)),
        mr_owner: Some(pin(&td.mr_owner)),
        mr_owner_config: Some(pin(&td.mr_owner_config)),
        mr_seam: Some(pin(&td.mr_seam)),
        mr_signer_seam: Some(pin(&td.mr_signer_seam)),
        mr_service_td: td15.map(|t| pin(&t.mr_service_td)),
        report_data: None,
        td_attributes: Some(TdAttributeRules {
            must_set,
            must_clear,
        }),
        xfam: Some(MaskedValue {
            value: U64Hex(td.xfam.bits()),
            ignore_mask: U64Hex(0),
        }),
        min_tee_tcb_svn: Some(Hex(td.tee_tcb_svn)),
        // A TD 1.5ex quote's VMID (an L2 VM's too: the policy pins what was measured); other
        // bodies have none, and the default accepts the TD itself.
        vmids: vmid.map(|v| vec![v]),
    }
}

fn strict_sgx(verified: &Verified<Quote>, report: &EnclaveReport) -> SgxPolicy {
    // The KSS identity, pinned when the enclave has KSS (zero and meaningless otherwise, and
    // the pinned ATTRIBUTES then refuse a KSS enclave anyway).
    let kss = report.attributes.kss();
    SgxPolicy {
        mr_enclave: pin(&report.mr_enclave),
        mr_signer: pin(&report.mr_signer),
        debug: pinned_bit(report.attributes.debug()),
        tcb: strict_tcb(verified),
        isv_prod_id: Some(RefList::Values(vec![report.isv_prod_id])),
        min_isv_svn: Some(report.isv_svn),
        isv_ext_prod_id: kss.then(|| pin(&report.isv_ext_prod_id())),
        isv_family_id: kss.then(|| pin(&report.isv_family_id())),
        config_id: kss.then(|| pin(&report.config_id())),
        min_config_svn: kss.then(|| report.config_svn()),
        attributes: Some(SgxAttributesRule {
            value: Hex(report.attributes.to_bytes()),
            mask: Hex([0xff; 16]),
        }),
        report_data: None,
    }
}

/// A strict policy pinning the quote's measurements, configuration and TCB. REPORTDATA is not
/// pinned (it changes with every request), nor are the grace period, advisory deny-list and
/// collateral age (operator choices). A debug TD or enclave gets `debug = "must"`: the policy
/// pins what was measured, and `tessera policy check` warns about it. The section is chosen by
/// the body (the parser guarantees the header's TEE type agrees).
impl FromEvidence for Verified<Quote> {
    fn strict_policy(&self, id: &str) -> Policy {
        let (tdx, sgx) = match Body::of(self.quote()) {
            Body::Td(td, td15, vmid) => (Some(strict_tdx(self, (td, td15, vmid))), None),
            Body::Sgx(report) => (None, Some(strict_sgx(self, report))),
        };
        Policy {
            version: POLICY_VERSION,
            id: id.to_owned(),
            snp: None,
            tdx,
            sgx,
        }
    }
}
