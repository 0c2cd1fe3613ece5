//! The appraisal: every rule of a policy applied to verified evidence, each with its outcome,
//! the field, the expected and the actual value (hex for bytes), and the verdict.

use core::fmt;

use serde::Serialize;
use tessera_pki::UnixTime;

use crate::model::Policy;
use crate::value::{AllowList, Bit, Hex, RefList, Setting};

/// A rule's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The evidence satisfies the rule.
    Pass,
    /// The evidence does not satisfy the rule.
    Fail,
    /// The policy does not check this (absent, or `"any"`).
    NotChecked,
}

/// The verdict: pass only when no rule failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every checked rule passed.
    Pass,
    /// At least one rule failed.
    Fail,
}

/// The TEE the evidence came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tee {
    /// AMD SEV-SNP.
    Snp,
    /// Intel TDX.
    Tdx,
    /// Intel SGX.
    Sgx,
}

impl Tee {
    /// `snp`, `tdx` or `sgx`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snp => "snp",
            Self::Tdx => "tdx",
            Self::Sgx => "sgx",
        }
    }
}

/// The AR4SI trustworthiness claim a rule bears on (draft-ietf-rats-ar4si), so a failed rule
/// lowers the right entry of an EAR trustworthiness vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustClaim {
    /// The attesting instance's identity (signer, chip, keys).
    InstanceIdentity,
    /// Configuration (debug, policy bits, attributes, VMPL, host data).
    Configuration,
    /// The measured code (measurement, MRTD, RTMRs, MRENCLAVE).
    Executables,
    /// The hardware and firmware TCB.
    Hardware,
    /// Data the workload supplied (REPORT_DATA).
    SourcedData,
}

/// One rule's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    /// The rule, as the policy names it (`snp.measurement`, `tdx.tcb.accepted_statuses`).
    pub rule: String,
    /// The evidence field it reads, in the specification's words (`MEASUREMENT`, `MRTD`).
    pub field: &'static str,
    /// Pass, fail or not checked.
    pub outcome: Outcome,
    /// What the policy expects (empty when not checked).
    pub expected: String,
    /// What the evidence has (hex for bytes).
    pub actual: String,
    /// The trust claim the rule bears on.
    pub claim: TrustClaim,
    /// Why, when the outcome needs more than expected/actual (e.g. "not in the policy").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl RuleResult {
    /// The rule in one line, `RULE: expected E, got A`, with its note in parentheses when it
    /// has one (a reference file that was not loaded says so, instead of reading as a value
    /// mismatch).
    #[must_use]
    pub fn message(&self) -> String {
        let note = self
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        format!(
            "{}: expected {}, got {}{note}",
            self.rule, self.expected, self.actual
        )
    }
}

/// A component below the policy's floor (or Intel's newest level): what to update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Behind {
    /// The component (`microcode`, `SNP firmware`, `TDX module`, an Intel component name).
    pub component: String,
    /// The value the evidence has.
    pub actual: String,
    /// The value required.
    pub required: String,
}

/// The result of appraising verified evidence against a policy.
///
/// Only [`appraise`] makes one, from verified evidence (the fields are private and there is no
/// constructor or `Deserialize`), so nothing that vouches for evidence — an EAR token, a
/// released secret — can be built from an appraisal a caller wrote by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Appraisal {
    /// The policy's `id`.
    pub(crate) policy_id: String,
    /// The evidence's TEE.
    pub(crate) tee: Tee,
    /// Pass only when no rule failed.
    pub(crate) verdict: Verdict,
    /// Every rule, in policy order.
    pub(crate) rules: Vec<RuleResult>,
    /// Components behind, when a TCB rule failed (or Intel's status says so).
    pub(crate) behind: Vec<Behind>,
    /// Intel advisory IDs of the matched TCB levels (TDX/SGX).
    pub(crate) advisory_ids: Vec<String>,
    /// Intel's converged TCB status (TDX/SGX).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tcb_status: Option<String>,
    /// The time the rules were applied at: the verification time.
    #[serde(serialize_with = "ser_time")]
    pub(crate) appraised_at: UnixTime,
    /// The evidence chained to a root trusted only as a test root (`dangerous_test_root`:
    /// a simulator's), not to the vendor's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) dangerous_test_root: bool,
}

fn ser_time<S: serde::Serializer>(t: &UnixTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

impl Appraisal {
    /// The policy's `id`.
    #[must_use]
    pub fn policy_id(&self) -> &str {
        &self.policy_id
    }

    /// The evidence's TEE.
    #[must_use]
    pub fn tee(&self) -> Tee {
        self.tee
    }

    /// Pass only when no rule failed.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Every rule, in policy order.
    #[must_use]
    pub fn rules(&self) -> &[RuleResult] {
        &self.rules
    }

    /// Components behind, when a TCB rule failed (or Intel's status says so).
    #[must_use]
    pub fn behind(&self) -> &[Behind] {
        &self.behind
    }

    /// Intel advisory IDs of the matched TCB levels (TDX/SGX).
    #[must_use]
    pub fn advisory_ids(&self) -> &[String] {
        &self.advisory_ids
    }

    /// Intel's converged TCB status (TDX/SGX).
    #[must_use]
    pub fn tcb_status(&self) -> Option<&str> {
        self.tcb_status.as_deref()
    }

    /// The time the rules were applied at: the verification time.
    #[must_use]
    pub fn appraised_at(&self) -> UnixTime {
        self.appraised_at
    }

    /// Whether the evidence chained to a root trusted only as a test root (a simulator's),
    /// not to the vendor's: the trustworthiness vector made from this appraisal does not
    /// recognize its hardware or its instance (AR4SI 97), so an EAR token for it is never
    /// `affirming` or `warning`.
    #[must_use]
    pub fn dangerous_test_root(&self) -> bool {
        self.dangerous_test_root
    }

    /// Whether the policy accepted the evidence.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    /// The failed rules.
    pub fn failures(&self) -> impl Iterator<Item = &RuleResult> {
        self.rules.iter().filter(|r| r.outcome == Outcome::Fail)
    }

    /// The rules in display order: failures first, then passes, then not checked.
    #[must_use]
    pub fn ordered(&self) -> Vec<&RuleResult> {
        let mut v: Vec<&RuleResult> = self.rules.iter().collect();
        v.sort_by_key(|r| match r.outcome {
            Outcome::Fail => 0u8,
            Outcome::Pass => 1,
            Outcome::NotChecked => 2,
        });
        v
    }

    /// Whether every rule bearing on `claim` that was checked passed, and how many were checked.
    #[must_use]
    pub fn claim_result(&self, claim: TrustClaim) -> (bool, usize) {
        let mut checked = 0;
        let mut ok = true;
        for r in self.rules.iter().filter(|r| r.claim == claim) {
            match r.outcome {
                Outcome::Pass => checked += 1,
                Outcome::Fail => {
                    checked += 1;
                    ok = false;
                }
                Outcome::NotChecked => {}
            }
        }
        (ok, checked)
    }
}

/// Verified evidence a policy can appraise: implemented for the verified types of
/// `tessera-snp` and `tessera-tdx`, so only verified evidence reaches a policy.
pub trait Appraise {
    /// Apply `policy`.
    fn appraise_with(&self, policy: &Policy) -> Appraisal;
}

/// Apply every rule of `policy` to `verified`. Appraisal never errors: every outcome is a
/// rule result, and the verdict is `Pass` only when no rule failed.
pub fn appraise<E: Appraise + ?Sized>(verified: &E, policy: &Policy) -> Appraisal {
    verified.appraise_with(policy)
}

/// Rule results an appraisal makes room for at once.
const RULES_CAPACITY: usize = 48;

/// Collects rule results for one piece of evidence.
pub(crate) struct Rules {
    prefix: &'static str,
    out: Vec<RuleResult>,
    pub(crate) behind: Vec<Behind>,
}

impl Rules {
    pub(crate) fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            // An SEV-SNP appraisal has 37 rules: room for them without growing the vector
            // five times (which copied each result along).
            out: Vec::with_capacity(RULES_CAPACITY),
            behind: Vec::new(),
        }
    }

    fn name(&self, rule: &str) -> String {
        // Joined by hand: `format!` took a tenth of an appraisal here.
        let mut name = String::with_capacity(self.prefix.len() + 1 + rule.len());
        name.push_str(self.prefix);
        name.push('.');
        name.push_str(rule);
        name
    }

    /// Record a result.
    pub(crate) fn push(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        outcome: Outcome,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> &mut RuleResult {
        let r = RuleResult {
            rule: self.name(rule),
            field,
            outcome,
            expected: expected.into(),
            actual: actual.into(),
            claim,
            note: None,
        };
        self.out.push(r);
        let last = self.out.len() - 1;
        #[allow(clippy::indexing_slicing)] // just pushed
        &mut self.out[last]
    }

    /// A rule the policy leaves out (`absent`) or sets to `any`.
    pub(crate) fn not_checked(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        actual: impl Into<String>,
        any: bool,
    ) {
        let note = if any {
            "\"any\" in the policy"
        } else {
            "not in the policy"
        };
        self.push(rule, field, claim, Outcome::NotChecked, "", actual)
            .note = Some(note.to_owned());
    }

    /// A rule the policy must state in this case (`why`) but leaves out: it fails, expecting
    /// "a RULE rule (WHY)", with `note` saying what to write.
    pub(crate) fn unstated(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        why: &str,
        actual: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.push(
            rule,
            field,
            claim,
            Outcome::Fail,
            format!("a {rule} rule ({why})"),
            actual,
        )
        .note = Some(note.into());
    }

    /// A pass/fail rule.
    pub(crate) fn check(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        ok: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> &mut RuleResult {
        let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
        self.push(rule, field, claim, outcome, expected, actual)
    }

    /// An allow-list of byte strings (required setting).
    pub(crate) fn allow_list<const N: usize>(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        setting: &AllowList<N>,
        actual: &[u8; N],
    ) {
        match setting {
            Setting::Any => self.not_checked(rule, field, claim, tessera_pki::to_hex(actual), true),
            Setting::Is(list) => self.in_list(rule, field, claim, list, actual),
        }
    }

    /// An optional allow-list of byte strings.
    pub(crate) fn opt_allow_list<const N: usize>(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        setting: Option<&AllowList<N>>,
        actual: &[u8; N],
    ) {
        match setting {
            None => self.not_checked(rule, field, claim, tessera_pki::to_hex(actual), false),
            Some(s) => self.allow_list(rule, field, claim, s, actual),
        }
    }

    /// `actual` must be one of `list`'s values.
    pub(crate) fn in_list<const N: usize>(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        list: &RefList<Hex<N>>,
        actual: &[u8; N],
    ) {
        let actual_hex = tessera_pki::to_hex(actual);
        match list.values() {
            None => {
                let file = list.file().map(|f| f.display().to_string());
                self.check(rule, field, claim, false, describe_list(list), actual_hex)
                    .note = Some(format!(
                    "reference file {} was not loaded",
                    file.unwrap_or_default()
                ));
            }
            Some(values) => {
                let ok = values.iter().any(|v| &v.0 == actual);
                self.check(rule, field, claim, ok, describe_list(list), actual_hex);
            }
        }
    }

    /// `actual` must not be one of `list`'s values.
    pub(crate) fn not_in_list<const N: usize>(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        list: Option<&RefList<Hex<N>>>,
        actual: &[u8; N],
    ) {
        let actual_hex = tessera_pki::to_hex(actual);
        let Some(list) = list else {
            self.not_checked(rule, field, claim, actual_hex, false);
            return;
        };
        let expected = format!("not {}", describe_list(list));
        match list.values() {
            None => {
                self.check(rule, field, claim, false, expected, actual_hex)
                    .note = Some(String::from("reference file was not loaded"));
            }
            Some(values) => {
                let ok = !values.iter().any(|v| &v.0 == actual);
                self.check(rule, field, claim, ok, expected, actual_hex);
            }
        }
    }

    /// A flag bit.
    pub(crate) fn bit(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        setting: Option<Bit>,
        actual: bool,
    ) {
        let shown = if actual { "set" } else { "clear" };
        match setting {
            None => self.not_checked(rule, field, claim, shown, false),
            Some(Bit::Any) => self.not_checked(rule, field, claim, shown, true),
            Some(Bit::Must) => {
                self.check(rule, field, claim, actual, "set", shown);
            }
            Some(Bit::MustNot) => {
                self.check(rule, field, claim, !actual, "clear", shown);
            }
        }
    }

    /// A floor: `actual >= min`.
    pub(crate) fn min<T: PartialOrd + fmt::Display + Copy>(
        &mut self,
        rule: &str,
        field: &'static str,
        claim: TrustClaim,
        min: Option<T>,
        actual: T,
    ) -> bool {
        match min {
            None => {
                self.not_checked(rule, field, claim, actual.to_string(), false);
                true
            }
            Some(m) => {
                let ok = actual >= m;
                self.check(
                    rule,
                    field,
                    claim,
                    ok,
                    format!(">= {m}"),
                    actual.to_string(),
                );
                ok
            }
        }
    }

    /// The result pushed last.
    pub(crate) fn last_mut(&mut self) -> Option<&mut RuleResult> {
        self.out.last_mut()
    }

    /// The results, and the components behind.
    pub(crate) fn finish(self) -> (Vec<RuleResult>, Vec<Behind>) {
        (self.out, self.behind)
    }
}

/// How an allow-list shows as `expected`: the value itself when one, else the count (and file).
pub(crate) fn describe_list<T: fmt::Debug>(list: &RefList<T>) -> String {
    match list {
        RefList::Values(v) if v.len() == 1 => {
            v.first().map(|x| format!("{x:?}")).unwrap_or_default()
        }
        RefList::Values(v) => format!("one of {} values", v.len()),
        RefList::File(f) => format!("one of the values in {}", f.display()),
        RefList::Loaded { file, values } => {
            format!("one of {} values in {}", values.len(), file.display())
        }
    }
}

/// The verdict of a rule list.
pub(crate) fn verdict_of(rules: &[RuleResult]) -> Verdict {
    if rules.iter().any(|r| r.outcome == Outcome::Fail) {
        Verdict::Fail
    } else {
        Verdict::Pass
    }
}

/// An appraisal for evidence whose TEE has no section in the policy.
pub(crate) fn no_section(
    policy: &Policy,
    tee: Tee,
    at: UnixTime,
    dangerous_test_root: bool,
) -> Appraisal {
    let rules = vec![RuleResult {
        rule: tee.as_str().to_owned(),
        field: "TEE",
        outcome: Outcome::Fail,
        expected: format!("a [{}] section in the policy", tee.as_str()),
        actual: String::from("none"),
        claim: TrustClaim::Configuration,
        note: Some(String::from(
            "the policy has no rules for this TEE, so it accepts nothing from it",
        )),
    }];
    Appraisal {
        policy_id: policy.id.clone(),
        tee,
        verdict: Verdict::Fail,
        rules,
        behind: Vec::new(),
        advisory_ids: Vec::new(),
        tcb_status: None,
        appraised_at: at,
        dangerous_test_root,
    }
}
