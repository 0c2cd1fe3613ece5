//! AR4SI trust tiers and the trustworthiness vector, and how an [`Appraisal`] maps onto them.
//!
//! Values are those of draft-ietf-rats-ar4si §2.3 ("Trustworthiness Claims"): §2.3.2 partitions
//! the signed 8-bit claim space into the four tiers, §2.3.4 defines each claim's values. The
//! mapping from an appraisal is documented on [`TrustVector::from_appraisal`].

use crate::{Appraisal, Outcome, Tee, TrustClaim};

/// An AR4SI trustworthiness tier: the value of `ear.status`, and the class of every
/// trustworthiness-claim value (draft-ietf-rats-ar4si §2.3.2, CDDL `trustworthiness-tier`).
///
/// JSON names `none`, `affirming`, `warning`, `contraindicated`; CBOR values 0, 2, 32, 96.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The verifier makes no assertion (claim values 0, 1, -1).
    None,
    /// The verifier affirms the attester's trustworthiness (2..=31, -2..=-32).
    Affirming,
    /// The verifier warns about the attester (32..=95, -33..=-96).
    Warning,
    /// The verifier asserts the attester is untrustworthy (96..=127, -97..=-128).
    Contraindicated,
}

impl Status {
    /// The JSON name (`affirming`, ...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Affirming => "affirming",
            Self::Warning => "warning",
            Self::Contraindicated => "contraindicated",
        }
    }

    /// The CBOR value (0, 2, 32, 96): the lowest standard claim value of the tier.
    #[must_use]
    pub const fn value(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Affirming => 2,
            Self::Warning => 32,
            Self::Contraindicated => 96,
        }
    }

    /// The tier named `name` in JSON.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::None,
            Self::Affirming,
            Self::Warning,
            Self::Contraindicated,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// The tier whose CBOR value is `value`.
    #[must_use]
    pub fn from_value(value: i64) -> Option<Self> {
        [
            Self::None,
            Self::Affirming,
            Self::Warning,
            Self::Contraindicated,
        ]
        .into_iter()
        .find(|s| i64::from(s.value()) == value)
    }

    /// The tier a trustworthiness-claim value falls in (draft-ietf-rats-ar4si §2.3.2).
    #[must_use]
    pub const fn of_claim(value: i8) -> Self {
        match value {
            -1..=1 => Self::None,
            2..=31 | -32..=-2 => Self::Affirming,
            32..=95 | -96..=-33 => Self::Warning,
            _ => Self::Contraindicated,
        }
    }

    /// Rank by distrust: `None` 0, `Affirming` 1, `Warning` 2, `Contraindicated` 3.
    const fn distrust(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Affirming => 1,
            Self::Warning => 2,
            Self::Contraindicated => 3,
        }
    }

    /// Whether `ear.status` = `self` is allowed with a vector whose worst claim is in `worst`:
    /// the status "MUST be set to a tier of no higher trust than the tier corresponding to the
    /// worst trustworthiness claim" (draft-ietf-rats-ear §3.1). `none` asserts nothing, so it
    /// goes with any vector.
    pub(crate) fn allowed_with(self, worst: Self) -> bool {
        match self {
            Self::None | Self::Contraindicated => true,
            Self::Affirming | Self::Warning => self.distrust() >= worst.distrust(),
        }
    }
}

/// An AR4SI trustworthiness vector (draft-ietf-rats-ar4si §2.3.4-2.3.5, CDDL
/// `trustworthiness-vector`): one optional signed 8-bit value per claim. An absent entry means the
/// verifier makes no claim about that facet. JSON names are the claim names (`instance-identity`,
/// ...); CBOR keys are 0..=7 in the order of the fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrustVector {
    /// `instance-identity` (CBOR 0).
    pub instance_identity: Option<i8>,
    /// `configuration` (CBOR 1).
    pub configuration: Option<i8>,
    /// `executables` (CBOR 2).
    pub executables: Option<i8>,
    /// `file-system` (CBOR 3).
    pub file_system: Option<i8>,
    /// `hardware` (CBOR 4).
    pub hardware: Option<i8>,
    /// `runtime-opaque` (CBOR 5).
    pub runtime_opaque: Option<i8>,
    /// `storage-opaque` (CBOR 6).
    pub storage_opaque: Option<i8>,
    /// `sourced-data` (CBOR 7).
    pub sourced_data: Option<i8>,
}

/// The claim names in CBOR key order (the key is the index).
pub(crate) const CLAIM_NAMES: [&str; 8] = [
    "instance-identity",
    "configuration",
    "executables",
    "file-system",
    "hardware",
    "runtime-opaque",
    "storage-opaque",
    "sourced-data",
];

// The AR4SI values this verifier assigns (draft-ietf-rats-ar4si §2.3.4), by claim.
/// instance-identity 2: "The Attesting Environment is recognized, and the associated instance of
/// the Attester is not known to be compromised."
const IDENTITY_RECOGNIZED: i8 = 2;
/// instance-identity 96: "recognized, but its unique private key indicates a device which is not
/// trustworthy."
const IDENTITY_UNTRUSTWORTHY: i8 = 96;
/// instance-identity 97: "The Attesting Environment is not recognized; however the Verifier
/// believes it should be."
const IDENTITY_UNRECOGNIZED: i8 = 97;
/// configuration 2: "The configuration is a known and approved config."
const CONFIG_APPROVED: i8 = 2;
/// configuration 96: "The configuration is unsupportable as it exposes unacceptable security
/// vulnerabilities."
const CONFIG_UNSUPPORTABLE: i8 = 96;
/// executables 2: "Only a recognized genuine set of approved executables, scripts, files, and/or
/// objects have been loaded during and after the boot process."
const EXEC_APPROVED_ALL: i8 = 2;
/// executables 3: "Only a recognized genuine set of approved executables have been loaded during
/// the boot process."
const EXEC_APPROVED_BOOT: i8 = 3;
/// executables 33: "Runtime memory includes executables, scripts, files, and/or objects which are
/// not recognized."
const EXEC_UNRECOGNIZED: i8 = 33;
/// executables 96: "Runtime memory includes executables, scripts, files, and/or object which are
/// contraindicated."
const EXEC_CONTRAINDICATED: i8 = 96;
/// hardware 2: "An Attester has passed its hardware and/or firmware verifications needed to
/// demonstrate that these are genuine/supported."
const HW_GENUINE: i8 = 2;
/// hardware 32: "An Attester contains only genuine/supported hardware and/or firmware, but there
/// are known security vulnerabilities."
const HW_VULNERABLE: i8 = 32;
/// hardware 96: "Attester hardware and/or firmware is recognized, but its trustworthiness is
/// contraindicated."
const HW_CONTRAINDICATED: i8 = 96;
/// hardware 97: "A Verifier does not recognize an Attester's hardware or firmware, but it
/// should be recognized."
const HW_UNRECOGNIZED: i8 = 97;
/// sourced-data 2: the data the attester supplied is what the relying party's policy expects.
const SOURCED_ACCEPTED: i8 = 2;
/// sourced-data 96: "Attester source data objects come from contraindicated sources."
const SOURCED_CONTRAINDICATED: i8 = 96;

/// Intel's name of the one TCB status that needs nothing (`tcbStatus` in the PCS TCB info).
const INTEL_UP_TO_DATE: &str = "UpToDate";
/// Intel's name of a revoked TCB level.
const INTEL_REVOKED: &str = "Revoked";

/// How the rules bearing on one claim came out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checked {
    /// No rule bearing on the claim was checked.
    No,
    /// At least one was checked and none failed.
    Passed,
    /// At least one failed.
    Failed,
}

fn checked(appraisal: &Appraisal, claim: TrustClaim) -> Checked {
    match appraisal.claim_result(claim) {
        (_, 0) => Checked::No,
        (true, _) => Checked::Passed,
        (false, _) => Checked::Failed,
    }
}

/// Whether a failed executables rule is a deny list (`snp.denied_id_key_digests`, ...): the
/// evidence matched a value the policy names as bad, which AR4SI calls contraindicated rather
/// than unrecognized.
fn failed_deny_list(appraisal: &Appraisal, claim: TrustClaim) -> bool {
    appraisal.rules.iter().any(|r| {
        r.claim == claim
            && r.outcome == Outcome::Fail
            && r.rule
                .rsplit('.')
                .next()
                .is_some_and(|last| last.starts_with("denied_"))
    })
}

impl TrustVector {
    /// The vector for `appraisal`. Each claim follows draft-ietf-rats-ar4si §2.3.4; where a claim
    /// has several fitting values the contraindicated one wins, then warning, then affirming
    /// (§2.3.3). Claims no rule bears on are absent ("no claim"), except instance-identity.
    ///
    /// - `instance-identity`: 96 when an identity rule failed (signer kind, CHIP_ID allow-list):
    ///   the platform is genuine but this instance is not one the policy trusts. Otherwise 2, even
    ///   when no identity rule was checked: an appraisal exists only for evidence whose signature
    ///   chains to the vendor root (AMD ARK, Intel SGX root CA), so the attesting environment is
    ///   recognized and, its certificates not being revoked, not known to be compromised.
    /// - `configuration`: 96 when a configuration rule failed — a debuggable guest, a policy bit
    ///   or attribute outside the policy, or a TEE the policy has no section for; 2 when every
    ///   checked configuration rule passed.
    /// - `executables`: 96 when a deny-list rule (`denied_*`) failed, else 33 ("not recognized")
    ///   when an allow-list failed. When all passed: 3 ("approved executables loaded during the
    ///   boot process") for SEV-SNP and TDX, whose launch measurements (MEASUREMENT, MRTD, RTMRs)
    ///   cover the boot chain but not what the guest loads later; 2 ("during and after the boot
    ///   process") for SGX, whose MRENCLAVE covers all enclave code.
    /// - `hardware`: 96 when a TCB rule failed or Intel's status is `Revoked`; else 32 when Intel's
    ///   TCB status is not `UpToDate`, Intel lists advisories, or a component is behind — the
    ///   policy accepted a platform with known vulnerabilities (this is what makes `ear.status`
    ///   `warning`); else 2 when a TCB rule passed or Intel's status is `UpToDate`. SEV-SNP
    ///   evidence carries no vendor status: a TCB that meets the policy's floors is 2.
    /// - `sourced-data`: 96 when the REPORT_DATA rule failed, 2 when it passed. AR4SI defines 2 as
    ///   data provided by affirmed attesters; the nearest a single-report appraisal comes is that
    ///   the data the workload bound into the report is the value the policy expects.
    /// - Evidence that chained to a test root (`dangerous_test_root`: a simulator's) rather
    ///   than the vendor's: `instance-identity` and `hardware` 97 (not recognized), whatever
    ///   the rules say, so the status is `contraindicated`: a token for a simulator's evidence
    ///   never reads as one for genuine hardware, whichever key signed it.
    /// - `file-system`, `storage-opaque`: absent — nothing in SEV-SNP, TDX or SGX evidence
    ///   appraises them. `runtime-opaque`: absent — AR4SI appendix "Supportable Trustworthiness
    ///   Claims" makes it implicit in the signature of process- and VM-based TEEs, and a relying
    ///   party should not read it as checked (a debuggable guest is not opaque).
    #[must_use]
    pub fn from_appraisal(appraisal: &Appraisal) -> Self {
        let instance_identity = Some(match checked(appraisal, TrustClaim::InstanceIdentity) {
            Checked::Failed => IDENTITY_UNTRUSTWORTHY,
            Checked::No | Checked::Passed => IDENTITY_RECOGNIZED,
        });
        let configuration = match checked(appraisal, TrustClaim::Configuration) {
            Checked::No => None,
            Checked::Passed => Some(CONFIG_APPROVED),
            Checked::Failed => Some(CONFIG_UNSUPPORTABLE),
        };
        let executables = match checked(appraisal, TrustClaim::Executables) {
            Checked::No => None,
            Checked::Passed => Some(match appraisal.tee {
                Tee::Sgx => EXEC_APPROVED_ALL,
                Tee::Snp | Tee::Tdx => EXEC_APPROVED_BOOT,
            }),
            Checked::Failed if failed_deny_list(appraisal, TrustClaim::Executables) => {
                Some(EXEC_CONTRAINDICATED)
            }
            Checked::Failed => Some(EXEC_UNRECOGNIZED),
        };
        let intel = appraisal.tcb_status.as_deref();
        let hardware = match checked(appraisal, TrustClaim::Hardware) {
            Checked::Failed => Some(HW_CONTRAINDICATED),
            _ if intel == Some(INTEL_REVOKED) => Some(HW_CONTRAINDICATED),
            outcome => {
                let flagged = intel.is_some_and(|s| s != INTEL_UP_TO_DATE)
                    || !appraisal.advisory_ids.is_empty()
                    || !appraisal.behind.is_empty();
                if flagged {
                    Some(HW_VULNERABLE)
                } else if outcome == Checked::Passed || intel == Some(INTEL_UP_TO_DATE) {
                    Some(HW_GENUINE)
                } else {
                    None
                }
            }
        };
        let sourced_data = match checked(appraisal, TrustClaim::SourcedData) {
            Checked::No => None,
            Checked::Passed => Some(SOURCED_ACCEPTED),
            Checked::Failed => Some(SOURCED_CONTRAINDICATED),
        };
        // Not the vendor's root: neither the platform nor the instance is recognized.
        let (instance_identity, hardware) = if appraisal.dangerous_test_root {
            (Some(IDENTITY_UNRECOGNIZED), Some(HW_UNRECOGNIZED))
        } else {
            (instance_identity, hardware)
        };
        Self {
            instance_identity,
            configuration,
            executables,
            file_system: None,
            hardware,
            runtime_opaque: None,
            storage_opaque: None,
            sourced_data,
        }
    }

    /// The entries in CBOR key order (the index is the key; see [`CLAIM_NAMES`]).
    pub(crate) const fn entries(&self) -> [Option<i8>; 8] {
        [
            self.instance_identity,
            self.configuration,
            self.executables,
            self.file_system,
            self.hardware,
            self.runtime_opaque,
            self.storage_opaque,
            self.sourced_data,
        ]
    }

    /// The entry with CBOR key `key` (0..=7), for parsing.
    pub(crate) fn slot(&mut self, key: usize) -> Option<&mut Option<i8>> {
        Some(match key {
            0 => &mut self.instance_identity,
            1 => &mut self.configuration,
            2 => &mut self.executables,
            3 => &mut self.file_system,
            4 => &mut self.hardware,
            5 => &mut self.runtime_opaque,
            6 => &mut self.storage_opaque,
            7 => &mut self.sourced_data,
            _ => return None,
        })
    }

    /// Whether no claim is made (the draft requires at least one entry when the vector is sent).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries().iter().all(Option::is_none)
    }

    /// The tier of the worst claim: `Contraindicated` over `Warning` over `Affirming`; `None`
    /// when every present claim is in the "none" tier or the vector is empty.
    #[must_use]
    pub fn worst_tier(&self) -> Status {
        self.entries()
            .into_iter()
            .flatten()
            .map(Status::of_claim)
            .max_by_key(|s| s.distrust())
            .unwrap_or(Status::None)
    }
}

/// The `ear.status` for `appraisal` with its vector: contraindicated when the verdict is fail;
/// otherwise the worst tier of the vector (warning when the policy accepted a platform Intel
/// flags), affirming when nothing is worse.
pub(crate) fn status_of(appraisal: &Appraisal, vector: &TrustVector) -> Status {
    if !appraisal.passed() {
        return Status::Contraindicated;
    }
    match vector.worst_tier() {
        Status::Contraindicated => Status::Contraindicated,
        Status::Warning => Status::Warning,
        Status::None | Status::Affirming => Status::Affirming,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_partition_the_claim_space() {
        assert_eq!(Status::of_claim(0), Status::None);
        assert_eq!(Status::of_claim(1), Status::None);
        assert_eq!(Status::of_claim(-1), Status::None);
        assert_eq!(Status::of_claim(2), Status::Affirming);
        assert_eq!(Status::of_claim(31), Status::Affirming);
        assert_eq!(Status::of_claim(-2), Status::Affirming);
        assert_eq!(Status::of_claim(-32), Status::Affirming);
        assert_eq!(Status::of_claim(32), Status::Warning);
        assert_eq!(Status::of_claim(95), Status::Warning);
        assert_eq!(Status::of_claim(-33), Status::Warning);
        assert_eq!(Status::of_claim(-96), Status::Warning);
        assert_eq!(Status::of_claim(96), Status::Contraindicated);
        assert_eq!(Status::of_claim(127), Status::Contraindicated);
        assert_eq!(Status::of_claim(-97), Status::Contraindicated);
        assert_eq!(Status::of_claim(-128), Status::Contraindicated);
        for v in i8::MIN..=i8::MAX {
            // Every tier's CBOR value is in the tier it names.
            let s = Status::of_claim(v);
            assert_eq!(Status::from_value(i64::from(s.value())), Some(s));
        }
    }

    #[test]
    fn names_and_values() {
        for s in [
            Status::None,
            Status::Affirming,
            Status::Warning,
            Status::Contraindicated,
        ] {
            assert_eq!(Status::from_name(s.as_str()), Some(s));
            assert_eq!(Status::of_claim(i8::try_from(s.value()).unwrap()), s);
        }
        assert_eq!(Status::from_name("Affirming"), None);
        assert_eq!(Status::from_value(1), None);
    }

    #[test]
    fn status_never_more_trusting_than_the_vector() {
        assert!(Status::Affirming.allowed_with(Status::Affirming));
        assert!(Status::Affirming.allowed_with(Status::None));
        assert!(!Status::Affirming.allowed_with(Status::Warning));
        assert!(!Status::Warning.allowed_with(Status::Contraindicated));
        assert!(Status::Warning.allowed_with(Status::Warning));
        assert!(Status::Contraindicated.allowed_with(Status::Affirming));
        assert!(Status::None.allowed_with(Status::Contraindicated));
    }

    #[test]
    fn worst_tier() {
        let mut v = TrustVector::default();
        assert!(v.is_empty());
        assert_eq!(v.worst_tier(), Status::None);
        v.instance_identity = Some(2);
        v.file_system = Some(0);
        assert_eq!(v.worst_tier(), Status::Affirming);
        v.hardware = Some(32);
        assert_eq!(v.worst_tier(), Status::Warning);
        v.executables = Some(-100);
        assert_eq!(v.worst_tier(), Status::Contraindicated);
        for (i, name) in CLAIM_NAMES.iter().enumerate() {
            let mut w = TrustVector::default();
            *w.slot(i).unwrap() = Some(7);
            assert_eq!(w.entries()[i], Some(7), "{name}");
        }
        assert!(v.slot(8).is_none());
    }
}
