//! Intel's TCB status rules: which TCB level a platform, its TDX module and its quoting
//! enclave are at, and the single status Intel's Quote Verification Library reports.
//!
//! The reference is Intel's DCAP Quote Verification Library (`TcbLevelCheck`, `TdxModuleCheck`,
//! `TDRelaunchCheck`, `QuoteVerifier::verify`'s status convergence); the rules are restated in
//! `shared/TCB-RULES.md`:
//!
//! 1. The platform level is the first entry of `tcbLevels` whose SGX components are all ≤ the
//!    PCK certificate's CPUSVN components and whose PCESVN ≤ the PCK's. For TDX the same level
//!    must also have every TDX component ≤ TEE_TCB_SVN (Intel's `getMatchingTcbLevel`: all three
//!    conditions in one level; a later level that meets the TDX components but not the SGX
//!    components or PCESVN is no match); indices 0 and 1 (the TDX module's SVN and version) are
//!    skipped when TEE_TCB_SVN\[1\] > 0, because the module identity judges them. No level: the
//!    TCB is not supported (a rejection). The first level meeting the SGX conditions alone
//!    gives the SGX status that the relaunch rule reads.
//! 2. TDX module: with TEE_TCB_SVN\[1\] = v > 0, the identity `TDX_%02X`(v) must exist, its
//!    `mrsigner` equal MRSIGNERSEAM and SEAMATTRIBUTES match under its mask; the module level is
//!    its first level with `isvsvn` ≤ TEE_TCB_SVN\[0\]. With v = 0 the `tdxModule` entry (when
//!    present) is matched the same way and has no levels.
//! 3. Convergence (module, then QE): a module or QE status OutOfDate turns UpToDate and
//!    SWHardeningNeeded into OutOfDate and the two Configuration statuses into
//!    OutOfDateConfigurationNeeded; Revoked anywhere is Revoked (a rejection). This is Intel's
//!    rule, not "the most severe status wins": that would give OutOfDate where Intel gives
//!    OutOfDateConfigurationNeeded.
//! 4. TD relaunch (TD 1.5 bodies, from TEE_TCB_SVN2): when the result is OutOfDate only
//!    because of the module and a relaunch would reach the newest level, relaunch is advised.
//! 5. Advisory IDs are the union over the selected platform, module and QE levels.
//!
//! Everything here is pure computation over already verified inputs; nothing is fetched.

use std::collections::BTreeSet;

use tessera_pki::UnixTime;

use crate::collateral::{
    EnclaveIdentity, IsvTcbLevel, TcbComponent, TcbInfo, TcbInfoId, TcbLevel, TcbStatus,
};

/// The platform's TCB as its PCK certificate states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformTcb {
    /// SGX TCB components 1..16 (the PCK certificate's `sgxTcbCompNNSvn`).
    pub comp_svn: [u8; 16],
    /// The PCE security version.
    pub pce_svn: u16,
}

/// The TD fields the TDX rules read from a TD report body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdTcb {
    /// TEE_TCB_SVN: \[0\] module SVN, \[1\] module major version, \[2..\] per Intel's table.
    pub tee_tcb_svn: [u8; 16],
    /// MRSIGNERSEAM.
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// TEE_TCB_SVN2 (TD 1.5 bodies only): the SVNs a relaunched TD would get.
    pub tee_tcb_svn2: Option<[u8; 16]>,
}

/// The quoting enclave's identity as its (PCK-signed) report states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QeTcb {
    /// MRSIGNER.
    pub mr_signer: [u8; 32],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// MISCSELECT.
    pub misc_select: u32,
    /// ATTRIBUTES.
    pub attributes: [u8; 16],
}

/// Why the TCB rules reject (terminal results in Intel's terms).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcbError {
    /// The TCB info is for the other TEE, or the wrong version for it.
    #[error("tcb_info: {detail}")]
    WrongTcbInfo {
        /// What disagrees.
        detail: String,
    },
    /// No TCB level matches (Intel: TCB not supported). `what` is `platform`, `tdx_module`
    /// or `qe`.
    #[error("tcb_level: no {what} TCB level matches ({detail})")]
    NotSupported {
        /// Which level set.
        what: &'static str,
        /// The values that matched nothing.
        detail: String,
    },
    /// The matched level is Revoked.
    #[error("tcb_revoked: the {what} TCB level is Revoked")]
    Revoked {
        /// Which level set.
        what: &'static str,
        /// The advisory IDs of the revoked level.
        advisory_ids: Vec<String>,
    },
    /// The TDX module does not match its identity in the TCB info.
    #[error("tdx_module {field}: expected {expected}, got {actual}")]
    TdxModule {
        /// `id`, `mrsigner` or `seam_attributes`.
        field: &'static str,
        /// What the TCB info says (hex for bytes).
        expected: String,
        /// What the quote says.
        actual: String,
    },
    /// The quoting enclave does not match the QE identity.
    #[error("qe_identity {field}: expected {expected}, got {actual}")]
    QeIdentity {
        /// `id`, `mrsigner`, `isvprodid`, `miscselect` or `attributes`.
        field: &'static str,
        /// What the QE identity says (masked, hex for bytes).
        expected: String,
        /// What the QE report says (masked).
        actual: String,
    },
}

impl TcbError {
    /// The name of the check, stable for scripts and JSON output.
    #[must_use]
    pub fn check(&self) -> &'static str {
        match self {
            Self::WrongTcbInfo { .. } => "tcb_info",
            Self::NotSupported { .. } => "tcb_level",
            Self::Revoked { .. } => "tcb_revoked",
            Self::TdxModule { .. } => "tdx_module",
            Self::QeIdentity { .. } => "qe_identity",
        }
    }

    /// The field the failed check read.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::WrongTcbInfo { .. } => "tcbInfo.id",
            Self::NotSupported { .. } | Self::Revoked { .. } => "tcbLevels",
            Self::TdxModule { field, .. } | Self::QeIdentity { field, .. } => field,
        }
    }

    /// Intel's name for a terminal TCB result, when this error is one.
    #[must_use]
    pub fn tcb_status_name(&self) -> Option<&'static str> {
        match self {
            Self::NotSupported { .. } => Some("TcbLevelNotSupported"),
            Self::Revoked { .. } => Some("Revoked"),
            _ => None,
        }
    }
}

/// One selected level: its status, date and advisories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedLevel {
    /// Position in the collateral's level list (0 = newest).
    pub index: usize,
    /// The level's own status.
    pub status: TcbStatus,
    /// The level's `tcbDate`.
    pub tcb_date: UnixTime,
    /// The level's advisory IDs.
    pub advisory_ids: Vec<String>,
}

/// A TCB component that is below the newest level: what to update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behind {
    /// The component's name from the collateral (category / type), or its position.
    pub component: String,
    /// The value the platform has.
    pub actual: u16,
    /// The value the newest level has.
    pub latest: u16,
}

/// The result of Intel's TCB rules for one quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcbEvaluation {
    /// The converged status (platform, TDX module and QE), as Intel's QVL reports it.
    pub status: TcbStatus,
    /// TD 1.5: relaunching the TD would bring it to the newest level (Intel's
    /// `TD_RELAUNCH_ADVISED`; `status` keeps the converged status).
    pub td_relaunch_advised: bool,
    /// The platform level (for TDX, the level matching both the SGX and TDX components).
    pub platform: MatchedLevel,
    /// TDX: the status of the level matching the SGX components alone.
    pub sgx_status: TcbStatus,
    /// TDX with a module version > 0: the module identity's level.
    pub tdx_module: Option<MatchedLevel>,
    /// The quoting enclave's level.
    pub qe: MatchedLevel,
    /// Union of the advisory IDs of the selected levels, sorted.
    pub advisory_ids: Vec<String>,
    /// Whether the platform level's advisory IDs are known: TCB info version 3 and later list
    /// them. SGX TCB info version 2 need not (Intel's version 2 bodies carry a SWHardeningNeeded
    /// level with no `advisoryIDs`, where version 3 lists INTEL-SA-00615 for the same level), so
    /// with it an `advisory_ids` without a platform advisory does not mean there is none.
    pub platform_advisories_listed: bool,
    /// The earliest `tcbDate` among the selected levels (Intel's `tcbLevelDateTag`).
    pub tcb_date: UnixTime,
    /// The TCB info's `tcbEvaluationDataNumber`.
    pub tcb_evaluation_data_number: u32,
    /// The QE identity's `tcbEvaluationDataNumber`.
    pub qe_tcb_evaluation_data_number: u32,
    /// Components below the newest level, so an operator knows what to update.
    pub behind: Vec<Behind>,
}

/// Apply Intel's rules. `td` is `Some` exactly for TDX quotes.
///
/// # Errors
/// [`TcbError`]: a terminal result (no level, Revoked) or an identity mismatch.
pub fn evaluate(
    tcb_info: &TcbInfo,
    qe_identity: &EnclaveIdentity,
    platform: &PlatformTcb,
    td: Option<&TdTcb>,
    qe: &QeTcb,
) -> Result<TcbEvaluation, TcbError> {
    match (td.is_some(), tcb_info.id) {
        (true, TcbInfoId::Tdx) if tcb_info.version >= 3 => {}
        (false, TcbInfoId::Sgx) => {}
        // Not reached from parsed TCB info (`TcbInfo::parse_json` takes TDX version 3 only);
        // kept for TCB info built some other way.
        (true, TcbInfoId::Tdx) => {
            return Err(TcbError::WrongTcbInfo {
                detail: format!("TDX TCB info version {} (3 required)", tcb_info.version),
            });
        }
        (true, TcbInfoId::Sgx) => {
            return Err(TcbError::WrongTcbInfo {
                detail: String::from("SGX TCB info given for a TDX quote"),
            });
        }
        (false, TcbInfoId::Tdx) => {
            return Err(TcbError::WrongTcbInfo {
                detail: String::from("TDX TCB info given for an SGX quote"),
            });
        }
    }

    let sgx_index = tcb_info
        .tcb_levels
        .iter()
        .position(|level| sgx_matches(level, platform))
        .ok_or_else(|| TcbError::NotSupported {
            what: "platform",
            detail: format!(
                "PCK CPUSVN components {} PCESVN {}",
                tessera_pki::to_hex(&platform.comp_svn),
                platform.pce_svn
            ),
        })?;
    let (platform_index, module) = match td {
        None => (sgx_index, None),
        Some(td) => {
            // Intel's `getMatchingTcbLevel`: the first level the platform meets in full (SGX
            // components, PCESVN and TDX components in that same level). A later level that
            // meets the TDX components but not the SGX ones is not a match.
            let index = tcb_info
                .tcb_levels
                .iter()
                .enumerate()
                .skip(sgx_index)
                .find(|(_, level)| {
                    sgx_matches(level, platform) && tdx_matches(level, &td.tee_tcb_svn)
                })
                .map(|(i, _)| i)
                .ok_or_else(|| TcbError::NotSupported {
                    what: "platform",
                    detail: format!(
                        "no level meets PCK CPUSVN components {}, PCESVN {} and TEE_TCB_SVN {} together",
                        tessera_pki::to_hex(&platform.comp_svn),
                        platform.pce_svn,
                        tessera_pki::to_hex(&td.tee_tcb_svn)
                    ),
                })?;
            (index, module_level(tcb_info, td)?)
        }
    };
    let sgx_status = level_at(tcb_info, sgx_index)?.tcb_status;
    let platform_level = level_at(tcb_info, platform_index)?;
    let platform_match = MatchedLevel {
        index: platform_index,
        status: platform_level.tcb_status,
        tcb_date: platform_level.tcb_date,
        advisory_ids: platform_level.advisory_ids.clone(),
    };
    if platform_match.status == TcbStatus::Revoked {
        return Err(TcbError::Revoked {
            what: "platform",
            advisory_ids: platform_match.advisory_ids,
        });
    }

    // Rule 3, first half: the module.
    let mut status = platform_match.status;
    if let Some(m) = &module {
        status = converge(status, m.status, "tdx_module", &m.advisory_ids)?;
    }

    // Rule 4: TD relaunch, decided before the QE can raise the status further.
    let qe_match = qe_level(qe_identity, td.is_some(), qe)?;
    let td_relaunch_advised = match (td, &module) {
        (Some(td), Some(m)) => relaunch_advised(tcb_info, td, sgx_status, status, m, &qe_match)?,
        _ => false,
    };

    // Rule 3, second half: the QE.
    status = converge(status, qe_match.status, "qe", &qe_match.advisory_ids)?;

    let mut advisories: BTreeSet<String> = platform_match.advisory_ids.iter().cloned().collect();
    let mut tcb_date = platform_match.tcb_date;
    for level in module.iter().chain(core::iter::once(&qe_match)) {
        advisories.extend(level.advisory_ids.iter().cloned());
        tcb_date = tcb_date.min(level.tcb_date);
    }
    let behind = behind(tcb_info, qe_identity, platform, td, qe);

    Ok(TcbEvaluation {
        status,
        td_relaunch_advised,
        platform: platform_match,
        sgx_status,
        tdx_module: module,
        qe: qe_match,
        advisory_ids: advisories.into_iter().collect(),
        platform_advisories_listed: tcb_info.version >= 3,
        tcb_date,
        tcb_evaluation_data_number: tcb_info.tcb_evaluation_data_number,
        qe_tcb_evaluation_data_number: qe_identity.tcb_evaluation_data_number,
        behind,
    })
}

fn level_at(tcb_info: &TcbInfo, index: usize) -> Result<&TcbLevel, TcbError> {
    tcb_info
        .tcb_levels
        .get(index)
        .ok_or_else(|| TcbError::NotSupported {
            what: "platform",
            detail: String::from("level index out of range"),
        })
}

fn sgx_matches(level: &TcbLevel, platform: &PlatformTcb) -> bool {
    level.pce_svn <= platform.pce_svn
        && level
            .sgx_components
            .iter()
            .zip(platform.comp_svn.iter())
            .all(|(c, &have)| c.svn <= have)
}

/// The module version (TEE_TCB_SVN\[1\]) decides whether components 0 and 1 are compared here
/// or by the module identity.
fn tdx_skip(tee_tcb_svn: &[u8; 16]) -> usize {
    if tee_tcb_svn.get(1).copied().unwrap_or(0) > 0 {
        2
    } else {
        0
    }
}

fn tdx_matches(level: &TcbLevel, tee_tcb_svn: &[u8; 16]) -> bool {
    let Some(components) = &level.tdx_components else {
        return false;
    };
    let skip = tdx_skip(tee_tcb_svn);
    components
        .iter()
        .zip(tee_tcb_svn.iter())
        .skip(skip)
        .all(|(c, &have)| c.svn <= have)
}

fn hex(bytes: &[u8]) -> String {
    tessera_pki::to_hex(bytes)
}

/// `actual & mask == expected`, as Intel's QVL compares (the expected value is not masked:
/// one with bits outside its mask matches nothing).
fn masked_eq(actual: &[u8], expected: &[u8], mask: &[u8]) -> bool {
    actual.len() == expected.len()
        && actual.len() == mask.len()
        && actual
            .iter()
            .zip(mask)
            .zip(expected)
            .all(|((a, m), e)| a & m == *e)
}

fn masked(actual: &[u8], mask: &[u8]) -> Vec<u8> {
    actual.iter().zip(mask).map(|(a, m)| a & m).collect()
}

/// Rule 2: the module identity and its level (`None` for module version 0).
fn module_level(tcb_info: &TcbInfo, td: &TdTcb) -> Result<Option<MatchedLevel>, TcbError> {
    let [svn, version, ..] = td.tee_tcb_svn;
    if version == 0 {
        if let Some(module) = &tcb_info.tdx_module {
            check_module_signer(
                &module.mrsigner,
                &module.attributes,
                &module.attributes_mask,
                td,
            )?;
        }
        return Ok(None);
    }
    let (wanted, identity) = module_identity(tcb_info, version, "")?;
    check_module_signer(
        &identity.mrsigner,
        &identity.attributes,
        &identity.attributes_mask,
        td,
    )?;
    let (index, level) =
        first_isv_level(&identity.tcb_levels, u16::from(svn)).ok_or_else(|| {
            TcbError::NotSupported {
                what: "tdx_module",
                detail: format!("{wanted} ISVSVN {svn}"),
            }
        })?;
    Ok(Some(matched(index, level)))
}

fn check_module_signer(
    mrsigner: &[u8; 48],
    attributes: &[u8; 8],
    mask: &[u8; 8],
    td: &TdTcb,
) -> Result<(), TcbError> {
    if &td.mr_signer_seam != mrsigner {
        return Err(TcbError::TdxModule {
            field: "mrsigner",
            expected: hex(mrsigner),
            actual: hex(&td.mr_signer_seam),
        });
    }
    if !masked_eq(&td.seam_attributes, attributes, mask) {
        return Err(TcbError::TdxModule {
            field: "seam_attributes",
            expected: hex(attributes),
            actual: hex(&masked(&td.seam_attributes, mask)),
        });
    }
    Ok(())
}

fn first_isv_level(levels: &[IsvTcbLevel], svn: u16) -> Option<(usize, &IsvTcbLevel)> {
    levels.iter().enumerate().find(|(_, l)| l.isvsvn <= svn)
}

fn matched(index: usize, level: &IsvTcbLevel) -> MatchedLevel {
    MatchedLevel {
        index,
        status: level.tcb_status,
        tcb_date: level.tcb_date,
        advisory_ids: level.advisory_ids.clone(),
    }
}

/// Rule 3: Intel's convergence of a platform status with a module or QE status.
fn converge(
    status: TcbStatus,
    other: TcbStatus,
    what: &'static str,
    advisory_ids: &[String],
) -> Result<TcbStatus, TcbError> {
    use TcbStatus as S;
    Ok(match other {
        S::Revoked => {
            return Err(TcbError::Revoked {
                what,
                advisory_ids: advisory_ids.to_vec(),
            });
        }
        S::OutOfDate => match status {
            S::UpToDate | S::SwHardeningNeeded => S::OutOfDate,
            S::ConfigurationNeeded | S::ConfigurationAndSwHardeningNeeded => {
                S::OutOfDateConfigurationNeeded
            }
            other_status => other_status,
        },
        _ => status,
    })
}

/// Rule 5 (QE): identity match and level.
fn qe_level(identity: &EnclaveIdentity, tdx: bool, qe: &QeTcb) -> Result<MatchedLevel, TcbError> {
    use crate::collateral::EnclaveIdentityId as Id;
    let expected_id = if tdx { Id::TdQe } else { Id::Qe };
    if identity.id != expected_id {
        return Err(TcbError::QeIdentity {
            field: "id",
            expected: format!("{expected_id:?}"),
            actual: format!("{:?}", identity.id),
        });
    }
    if qe.mr_signer != identity.mrsigner {
        return Err(TcbError::QeIdentity {
            field: "mrsigner",
            expected: hex(&identity.mrsigner),
            actual: hex(&qe.mr_signer),
        });
    }
    if qe.isv_prod_id != identity.isvprodid {
        return Err(TcbError::QeIdentity {
            field: "isvprodid",
            expected: identity.isvprodid.to_string(),
            actual: qe.isv_prod_id.to_string(),
        });
    }
    if qe.misc_select & identity.miscselect_mask != identity.miscselect {
        return Err(TcbError::QeIdentity {
            field: "miscselect",
            expected: format!("{:08x}", identity.miscselect),
            actual: format!("{:08x}", qe.misc_select & identity.miscselect_mask),
        });
    }
    if !masked_eq(
        &qe.attributes,
        &identity.attributes,
        &identity.attributes_mask,
    ) {
        return Err(TcbError::QeIdentity {
            field: "attributes",
            expected: hex(&identity.attributes),
            actual: hex(&masked(&qe.attributes, &identity.attributes_mask)),
        });
    }
    let (index, level) = first_isv_level(&identity.tcb_levels, qe.isv_svn).ok_or_else(|| {
        TcbError::NotSupported {
            what: "qe",
            detail: format!("QE ISVSVN {}", qe.isv_svn),
        }
    })?;
    Ok(matched(index, level))
}

/// Rule 4: would relaunching the TD (TEE_TCB_SVN2) reach the newest level?
fn relaunch_advised(
    tcb_info: &TcbInfo,
    td: &TdTcb,
    sgx_status: TcbStatus,
    status: TcbStatus,
    module: &MatchedLevel,
    qe: &MatchedLevel,
) -> Result<bool, TcbError> {
    use TcbStatus as S;
    let Some(svn2) = td.tee_tcb_svn2 else {
        return Ok(false);
    };
    let preconditions = module.status == S::OutOfDate
        && matches!(status, S::OutOfDate | S::OutOfDateConfigurationNeeded)
        && matches!(
            sgx_status,
            S::UpToDate
                | S::SwHardeningNeeded
                | S::ConfigurationNeeded
                | S::ConfigurationAndSwHardeningNeeded
        )
        && !matches!(qe.status, S::OutOfDate | S::Revoked);
    if !preconditions {
        return Ok(false);
    }
    let Some(latest) = tcb_info
        .tcb_levels
        .first()
        .and_then(|l| l.tdx_components.as_ref())
    else {
        return Ok(false);
    };
    let latest_svn = |i: usize| latest.get(i).map_or(u8::MAX, |c| c.svn);
    let [svn, version, _, ..] = svn2;
    let module_reaches = if version == 0 {
        svn >= latest_svn(0)
    } else {
        // As Intel's TDRelaunchCheck: a TEE_TCB_SVN2 naming a module the TCB info has no
        // identity for is a module mismatch (the quote is refused), and an identity with no
        // level is not supported; neither is read as "no advice".
        let (wanted, identity) = module_identity(tcb_info, version, " (for TEE_TCB_SVN2)")?;
        let newest = identity
            .tcb_levels
            .first()
            .ok_or_else(|| TcbError::NotSupported {
                what: "tdx_module",
                detail: format!("{wanted} (for TEE_TCB_SVN2) lists no level"),
            })?;
        u16::from(svn) >= newest.isvsvn
    };
    Ok(module_reaches && svn2.get(2).copied().unwrap_or(0) >= latest_svn(2))
}

/// The TCB info's identity of TDX module `version` (`TDX_%02X`), with that name; none is
/// Intel's module mismatch. `whose` follows the expected list in the error.
fn module_identity<'t>(
    tcb_info: &'t TcbInfo,
    version: u8,
    whose: &str,
) -> Result<(String, &'t crate::collateral::tcb_info::TdxModuleIdentity), TcbError> {
    let wanted = format!("TDX_{version:02X}");
    let identity = tcb_info
        .tdx_module_identities
        .iter()
        .find(|m| m.id.eq_ignore_ascii_case(&wanted))
        .ok_or_else(|| TcbError::TdxModule {
            field: "id",
            expected: format!(
                "one of [{}]{whose}",
                tcb_info
                    .tdx_module_identities
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            actual: wanted.clone(),
        })?;
    Ok((wanted, identity))
}

fn component_name(component: &TcbComponent, family: &str, index: usize) -> String {
    match (&component.category, &component.kind) {
        (_, Some(kind)) => format!("{family} component {index} ({kind})"),
        (Some(category), None) => format!("{family} component {index} ({category})"),
        (None, None) => format!("{family} component {index}"),
    }
}

/// Which components are below the newest level.
fn behind(
    tcb_info: &TcbInfo,
    qe_identity: &EnclaveIdentity,
    platform: &PlatformTcb,
    td: Option<&TdTcb>,
    qe: &QeTcb,
) -> Vec<Behind> {
    let mut out = Vec::new();
    if let Some(latest) = tcb_info.tcb_levels.first() {
        for (i, (c, &have)) in latest
            .sgx_components
            .iter()
            .zip(platform.comp_svn.iter())
            .enumerate()
        {
            if have < c.svn {
                out.push(Behind {
                    component: component_name(c, "SGX TCB", i),
                    actual: u16::from(have),
                    latest: u16::from(c.svn),
                });
            }
        }
        if platform.pce_svn < latest.pce_svn {
            out.push(Behind {
                component: String::from("PCE SVN"),
                actual: platform.pce_svn,
                latest: latest.pce_svn,
            });
        }
        if let (Some(td), Some(components)) = (td, &latest.tdx_components) {
            let skip = tdx_skip(&td.tee_tcb_svn);
            for (i, (c, &have)) in components
                .iter()
                .zip(td.tee_tcb_svn.iter())
                .enumerate()
                .skip(skip)
            {
                if have < c.svn {
                    out.push(Behind {
                        component: component_name(c, "TDX TCB", i),
                        actual: u16::from(have),
                        latest: u16::from(c.svn),
                    });
                }
            }
        }
    }
    if let Some(td) = td {
        let [svn, version, ..] = td.tee_tcb_svn;
        if version > 0
            && let Ok((wanted, identity)) = module_identity(tcb_info, version, "")
            && let Some(newest) = identity.tcb_levels.first()
            && u16::from(svn) < newest.isvsvn
        {
            out.push(Behind {
                component: format!("TDX module {wanted} SVN"),
                actual: u16::from(svn),
                latest: newest.isvsvn,
            });
        }
    }
    if let Some(newest) = qe_identity.tcb_levels.first()
        && qe.isv_svn < newest.isvsvn
    {
        out.push(Behind {
            component: String::from("quoting enclave ISVSVN"),
            actual: qe.isv_svn,
            latest: newest.isvsvn,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const DATE_NEW: &str = "2025-03-01T00:00:00Z";
    const DATE_OLD: &str = "2024-03-13T00:00:00Z";

    /// A platform level: SGX components all `sgx`, PCESVN 11, TDX components from `tdx`.
    fn level(sgx: u8, tdx: Option<[u8; 3]>, status: &str, date: &str, sa: &[&str]) -> Value {
        level_with([sgx; 16], tdx, status, date, sa)
    }

    /// A platform level with SGX components `sgx`, PCESVN 11, TDX components from `tdx`.
    fn level_with(
        sgx: [u8; 16],
        tdx: Option<[u8; 3]>,
        status: &str,
        date: &str,
        sa: &[&str],
    ) -> Value {
        let comps = |v: [u8; 16]| Value::Array(v.iter().map(|s| json!({ "svn": s })).collect());
        let mut tcb = json!({ "sgxtcbcomponents": comps(sgx), "pcesvn": 11 });
        if let Some([a, b, c]) = tdx {
            let mut t = [0u8; 16];
            t[0] = a;
            t[1] = b;
            t[2] = c;
            tcb["tdxtcbcomponents"] = comps(t);
        }
        json!({ "tcb": tcb, "tcbDate": date, "tcbStatus": status, "advisoryIDs": sa })
    }

    fn isv(svn: u16, status: &str, date: &str, sa: &[&str]) -> Value {
        json!({ "tcb": { "isvsvn": svn }, "tcbDate": date, "tcbStatus": status, "advisoryIDs": sa })
    }

    fn module(id: &str, levels: Vec<Value>) -> Value {
        json!({
            "id": id,
            "mrsigner": "00".repeat(48),
            "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF",
            "tcbLevels": levels,
        })
    }

    fn tcb_info(id: &str, levels: Vec<Value>, modules: Vec<Value>) -> TcbInfo {
        let mut v = json!({
            "id": id,
            "version": 3,
            "issueDate": "2025-06-04T09:51:38Z",
            "nextUpdate": "2025-07-04T09:51:38Z",
            "fmspc": "00806f050000",
            "pceId": "0000",
            "tcbType": 0,
            "tcbEvaluationDataNumber": 17,
            "tcbLevels": levels,
        });
        if id == "TDX" {
            v["tdxModule"] = json!({
                "mrsigner": "00".repeat(48),
                "attributes": "0000000000000000",
                "attributesMask": "FFFFFFFFFFFFFFFF",
            });
            v["tdxModuleIdentities"] = Value::Array(modules);
        }
        TcbInfo::parse_json(v.to_string().as_bytes()).unwrap()
    }

    fn qe_identity(id: &str, levels: Vec<Value>) -> EnclaveIdentity {
        let v = json!({
            "id": id,
            "version": 2,
            "issueDate": "2025-06-04T09:40:18Z",
            "nextUpdate": "2025-07-04T09:40:18Z",
            "tcbEvaluationDataNumber": 17,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": "11000000000000000000000000000000",
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5",
            "isvprodid": 2,
            "tcbLevels": levels,
        });
        EnclaveIdentity::parse_json(v.to_string().as_bytes()).unwrap()
    }

    fn qe(svn: u16) -> QeTcb {
        let mut attributes = [0u8; 16];
        attributes[0] = 0x11;
        attributes[8] = 0xe7; // outside the mask
        QeTcb {
            mr_signer: <[u8; 32]>::try_from(
                hex::decode("DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5")
                    .unwrap(),
            )
            .unwrap(),
            isv_prod_id: 2,
            isv_svn: svn,
            misc_select: 0,
            attributes,
        }
    }

    fn td_qe_uptodate() -> EnclaveIdentity {
        qe_identity("TD_QE", vec![isv(4, "UpToDate", DATE_NEW, &[])])
    }

    fn platform(sgx: u8) -> PlatformTcb {
        PlatformTcb {
            comp_svn: [sgx; 16],
            pce_svn: 11,
        }
    }

    fn td(svn: [u8; 3], svn2: Option<[u8; 3]>) -> TdTcb {
        let widen = |[a, b, c]: [u8; 3]| {
            let mut t = [0u8; 16];
            t[0] = a;
            t[1] = b;
            t[2] = c;
            t
        };
        TdTcb {
            tee_tcb_svn: widen(svn),
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            tee_tcb_svn2: svn2.map(widen),
        }
    }

    /// Two platform levels (UpToDate at SGX 7 / ucode 7, `old` at SGX 5 / ucode 5) and a
    /// TDX_01 module identity (UpToDate at 4, `module_old` at 2).
    fn tdx_info(old: &str, module_old: &str) -> TcbInfo {
        tcb_info(
            "TDX",
            vec![
                level(7, Some([5, 0, 7]), "UpToDate", DATE_NEW, &[]),
                level(5, Some([3, 0, 5]), old, DATE_OLD, &["INTEL-SA-00960"]),
            ],
            vec![module(
                "TDX_01",
                vec![
                    isv(4, "UpToDate", DATE_NEW, &[]),
                    isv(2, module_old, DATE_OLD, &["INTEL-SA-00982"]),
                ],
            )],
        )
    }

    fn eval_tdx(
        info: &TcbInfo,
        sgx: u8,
        svn: [u8; 3],
        qe_svn: u16,
    ) -> Result<TcbEvaluation, TcbError> {
        evaluate(
            info,
            &td_qe_uptodate(),
            &platform(sgx),
            Some(&td(svn, None)),
            &qe(qe_svn),
        )
    }

    #[test]
    fn newest_level_is_up_to_date() {
        let e = eval_tdx(&tdx_info("OutOfDate", "OutOfDate"), 7, [4, 1, 7], 4).unwrap();
        assert_eq!(e.status, TcbStatus::UpToDate);
        assert_eq!(e.platform.index, 0);
        assert!(e.advisory_ids.is_empty());
        assert!(e.behind.is_empty());
        assert_eq!(e.tcb_evaluation_data_number, 17);
    }

    #[test]
    fn sgx_components_pick_the_older_level() {
        let e = eval_tdx(&tdx_info("OutOfDate", "OutOfDate"), 6, [4, 1, 7], 4).unwrap();
        assert_eq!(e.status, TcbStatus::OutOfDate);
        assert_eq!(e.platform.index, 1);
        assert_eq!(e.advisory_ids, ["INTEL-SA-00960"]);
        assert_eq!(e.tcb_date, UnixTime::parse_rfc3339(DATE_OLD).unwrap());
        assert!(
            e.behind
                .iter()
                .any(|b| b.component.starts_with("SGX TCB component 0"))
        );
    }

    #[test]
    fn no_matching_level_is_rejected() {
        let err = eval_tdx(&tdx_info("OutOfDate", "OutOfDate"), 4, [4, 1, 7], 4).unwrap_err();
        assert_eq!(err.check(), "tcb_level");
        assert_eq!(err.tcb_status_name(), Some("TcbLevelNotSupported"));
        // PCESVN below every level.
        let mut p = platform(7);
        p.pce_svn = 10;
        let err = evaluate(
            &tdx_info("OutOfDate", "OutOfDate"),
            &td_qe_uptodate(),
            &p,
            Some(&td([4, 1, 7], None)),
            &qe(4),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            TcbError::NotSupported {
                what: "platform",
                ..
            }
        ));
    }

    /// SGX components all 5 except component 7 = `c7`.
    fn sgx_c7(c7: u8) -> [u8; 16] {
        let mut sgx = [5; 16];
        sgx[7] = c7;
        sgx
    }

    /// The shape of the issue-16 review: level 0 meets the platform's SGX components but not
    /// its TDX components; level 1 meets the TDX components but has an SGX component (7) above
    /// the platform's. Intel's `getMatchingTcbLevel` matches neither.
    #[test]
    fn a_level_meeting_tdx_but_not_sgx_components_is_no_match() {
        let levels = vec![
            level_with(sgx_c7(5), Some([5, 0, 9]), "UpToDate", DATE_NEW, &[]),
            level_with(
                sgx_c7(8),
                Some([3, 0, 7]),
                "OutOfDate",
                DATE_OLD,
                &["INTEL-SA-00960"],
            ),
        ];
        let modules = vec![module("TDX_01", vec![isv(4, "UpToDate", DATE_NEW, &[])])];
        let info = tcb_info("TDX", levels.clone(), modules.clone());
        // Platform: SGX components all 6 (component 7 = 6 < 8), TDX microcode 7 < 9.
        let err = eval_tdx(&info, 6, [4, 1, 7], 4).unwrap_err();
        assert!(
            matches!(
                err,
                TcbError::NotSupported {
                    what: "platform",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.tcb_status_name(), Some("TcbLevelNotSupported"));
        // The PCESVN counts in the same level too: level 1 with PCESVN above the platform's
        // and SGX components it meets is no match either.
        let mut pce = levels.clone();
        pce[1] = level_with(sgx_c7(5), Some([3, 0, 7]), "OutOfDate", DATE_OLD, &[]);
        pce[1]["tcb"]["pcesvn"] = json!(12);
        let err = eval_tdx(&tcb_info("TDX", pce, modules.clone()), 6, [4, 1, 7], 4).unwrap_err();
        assert_eq!(err.tcb_status_name(), Some("TcbLevelNotSupported"));

        // A third level meeting all three is the match: not level 1, whose status and
        // advisories would otherwise be reported.
        let mut three = levels;
        three.push(level_with(
            sgx_c7(5),
            Some([3, 0, 6]),
            "OutOfDateConfigurationNeeded",
            "2023-01-01T00:00:00Z",
            &["INTEL-SA-00837"],
        ));
        let e = eval_tdx(&tcb_info("TDX", three, modules), 6, [4, 1, 7], 4).unwrap();
        assert_eq!(e.platform.index, 2);
        assert_eq!(e.status, TcbStatus::OutOfDateConfigurationNeeded);
        assert_eq!(e.advisory_ids, ["INTEL-SA-00837"]);
        // The SGX status is the first level meeting the SGX components alone (level 0).
        assert_eq!(e.sgx_status, TcbStatus::UpToDate);
        // What is behind is measured against the newest level: the TDX microcode.
        assert_eq!(e.behind.len(), 1, "{:?}", e.behind);
        assert_eq!((e.behind[0].actual, e.behind[0].latest), (7, 9));
    }

    /// Relaunch is judged on the level that matches in full: a relaunched TD (TEE_TCB_SVN2)
    /// that reaches the newest module and microcode is advised only when the platform level
    /// is OutOfDate because of the module.
    #[test]
    fn relaunch_uses_the_level_matching_in_full() {
        let levels = vec![
            level_with(sgx_c7(5), Some([5, 0, 7]), "UpToDate", DATE_NEW, &[]),
            level_with(sgx_c7(8), Some([3, 0, 5]), "UpToDate", DATE_OLD, &[]),
            level_with(sgx_c7(5), Some([3, 0, 5]), "OutOfDate", DATE_OLD, &[]),
        ];
        let modules = vec![module(
            "TDX_01",
            vec![
                isv(4, "UpToDate", DATE_NEW, &[]),
                isv(2, "OutOfDate", DATE_OLD, &[]),
            ],
        )];
        let info = tcb_info("TDX", levels, modules);
        let run = |tee: [u8; 3], svn2: [u8; 3]| {
            evaluate(
                &info,
                &td_qe_uptodate(),
                &platform(6),
                Some(&td(tee, Some(svn2))),
                &qe(4),
            )
        };
        // Module behind, microcode current: level 0 matches, the module makes it OutOfDate,
        // and a relaunch reaches the newest module.
        let e = run([3, 1, 7], [4, 1, 7]).unwrap();
        assert_eq!((e.platform.index, e.status), (0, TcbStatus::OutOfDate));
        assert!(e.td_relaunch_advised);
        // Microcode 6: level 1 (UpToDate, but SGX component 7 above the platform's) is no
        // match; level 2 is, OutOfDate on its own. The relaunched TD's microcode 6 does not
        // reach the newest level: no advice.
        let e = run([3, 1, 6], [4, 1, 6]).unwrap();
        assert_eq!((e.platform.index, e.status), (2, TcbStatus::OutOfDate));
        assert!(!e.td_relaunch_advised);
    }

    #[test]
    fn tdx_components_below_every_level_are_rejected() {
        let err = eval_tdx(&tdx_info("OutOfDate", "OutOfDate"), 7, [4, 1, 4], 4).unwrap_err();
        assert!(matches!(
            err,
            TcbError::NotSupported {
                what: "platform",
                ..
            }
        ));
    }

    #[test]
    fn module_version_skips_components_zero_and_one() {
        // Module version 1: components 0 and 1 (5, 0) are not compared, ucode 7 matches level 0.
        let e = eval_tdx(&tdx_info("OutOfDate", "OutOfDate"), 7, [4, 1, 7], 4).unwrap();
        assert_eq!(e.platform.index, 0);
        // Module version 0: all components compared, SVN 4 < 5 drops to level 1.
        let e = eval_tdx(&tdx_info("OutOfDate", "OutOfDate"), 7, [4, 0, 7], 4).unwrap();
        assert_eq!(e.platform.index, 1);
        assert_eq!(e.status, TcbStatus::OutOfDate);
        assert!(e.tdx_module.is_none());
    }

    #[test]
    fn module_out_of_date_lowers_up_to_date_and_sw_hardening() {
        for platform_status in ["UpToDate", "SWHardeningNeeded"] {
            let info = tcb_info(
                "TDX",
                vec![level(7, Some([5, 0, 7]), platform_status, DATE_NEW, &[])],
                vec![module(
                    "TDX_01",
                    vec![
                        isv(4, "UpToDate", DATE_NEW, &[]),
                        isv(2, "OutOfDate", DATE_OLD, &["INTEL-SA-00982"]),
                    ],
                )],
            );
            let e = eval_tdx(&info, 7, [3, 1, 7], 4).unwrap();
            assert_eq!(e.status, TcbStatus::OutOfDate, "{platform_status}");
            assert_eq!(e.tdx_module.as_ref().unwrap().status, TcbStatus::OutOfDate);
            assert_eq!(e.advisory_ids, ["INTEL-SA-00982"]);
            assert!(
                e.behind
                    .iter()
                    .any(|b| b.component.contains("TDX module TDX_01"))
            );
        }
    }

    /// Deviation seen in a popular Rust verifier: "most severe wins" gives OutOfDate here.
    #[test]
    fn module_out_of_date_with_configuration_needed_is_out_of_date_configuration_needed() {
        for platform_status in ["ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"] {
            let info = tcb_info(
                "TDX",
                vec![level(7, Some([5, 0, 7]), platform_status, DATE_NEW, &[])],
                vec![module(
                    "TDX_01",
                    vec![
                        isv(4, "UpToDate", DATE_NEW, &[]),
                        isv(2, "OutOfDate", DATE_OLD, &[]),
                    ],
                )],
            );
            let e = eval_tdx(&info, 7, [3, 1, 7], 4).unwrap();
            assert_eq!(
                e.status,
                TcbStatus::OutOfDateConfigurationNeeded,
                "{platform_status}"
            );
        }
    }

    /// Deviation seen in a popular Go verifier: the module level's status alone would say
    /// UpToDate although the platform level is OutOfDate.
    #[test]
    fn platform_out_of_date_with_module_up_to_date_stays_out_of_date() {
        let e = eval_tdx(&tdx_info("OutOfDate", "OutOfDate"), 6, [4, 1, 7], 4).unwrap();
        assert_eq!(e.tdx_module.as_ref().unwrap().status, TcbStatus::UpToDate);
        assert_eq!(e.status, TcbStatus::OutOfDate);
    }

    #[test]
    fn module_revoked_is_rejected() {
        let err = eval_tdx(&tdx_info("OutOfDate", "Revoked"), 7, [3, 1, 7], 4).unwrap_err();
        assert!(matches!(
            err,
            TcbError::Revoked {
                what: "tdx_module",
                ..
            }
        ));
        assert_eq!(err.tcb_status_name(), Some("Revoked"));
    }

    #[test]
    fn platform_revoked_is_rejected() {
        let err = eval_tdx(&tdx_info("Revoked", "OutOfDate"), 6, [4, 1, 7], 4).unwrap_err();
        assert!(matches!(
            err,
            TcbError::Revoked {
                what: "platform",
                ..
            }
        ));
    }

    #[test]
    fn module_svn_below_every_level_is_rejected() {
        let err = eval_tdx(&tdx_info("OutOfDate", "OutOfDate"), 7, [1, 1, 7], 4).unwrap_err();
        assert!(matches!(
            err,
            TcbError::NotSupported {
                what: "tdx_module",
                ..
            }
        ));
    }

    #[test]
    fn module_identity_must_exist_and_match() {
        let info = tdx_info("OutOfDate", "OutOfDate");
        let err = eval_tdx(&info, 7, [4, 3, 7], 4).unwrap_err();
        assert!(
            matches!(err, TcbError::TdxModule { field: "id", .. }),
            "{err}"
        );

        let mut t = td([4, 1, 7], None);
        t.mr_signer_seam = [1; 48];
        let err = evaluate(&info, &td_qe_uptodate(), &platform(7), Some(&t), &qe(4)).unwrap_err();
        assert!(matches!(
            err,
            TcbError::TdxModule {
                field: "mrsigner",
                ..
            }
        ));

        let mut t = td([4, 1, 7], None);
        t.seam_attributes = [0, 0, 0, 0, 0, 0, 0, 1];
        let err = evaluate(&info, &td_qe_uptodate(), &platform(7), Some(&t), &qe(4)).unwrap_err();
        assert!(matches!(
            err,
            TcbError::TdxModule {
                field: "seam_attributes",
                ..
            }
        ));

        // Module version 0 is matched against `tdxModule`.
        let mut t = td([4, 0, 7], None);
        t.mr_signer_seam = [1; 48];
        let err = evaluate(&info, &td_qe_uptodate(), &platform(7), Some(&t), &qe(4)).unwrap_err();
        assert!(matches!(
            err,
            TcbError::TdxModule {
                field: "mrsigner",
                ..
            }
        ));
    }

    #[test]
    fn qe_out_of_date_converges() {
        let identity = qe_identity(
            "TD_QE",
            vec![
                isv(4, "UpToDate", DATE_NEW, &[]),
                isv(2, "OutOfDate", DATE_OLD, &["INTEL-SA-00615"]),
            ],
        );
        let info = tdx_info("OutOfDate", "OutOfDate");
        let e = evaluate(
            &info,
            &identity,
            &platform(7),
            Some(&td([4, 1, 7], None)),
            &qe(3),
        )
        .unwrap();
        assert_eq!(e.status, TcbStatus::OutOfDate);
        assert_eq!(e.qe.status, TcbStatus::OutOfDate);
        assert_eq!(e.advisory_ids, ["INTEL-SA-00615"]);
        assert!(
            e.behind
                .iter()
                .any(|b| b.component == "quoting enclave ISVSVN")
        );

        let config = tcb_info(
            "TDX",
            vec![level(
                7,
                Some([5, 0, 7]),
                "ConfigurationAndSWHardeningNeeded",
                DATE_NEW,
                &[],
            )],
            vec![module("TDX_01", vec![isv(4, "UpToDate", DATE_NEW, &[])])],
        );
        let e = evaluate(
            &config,
            &identity,
            &platform(7),
            Some(&td([4, 1, 7], None)),
            &qe(3),
        )
        .unwrap();
        assert_eq!(e.status, TcbStatus::OutOfDateConfigurationNeeded);
    }

    #[test]
    fn qe_revoked_or_unknown_svn_is_rejected() {
        let identity = qe_identity(
            "TD_QE",
            vec![
                isv(4, "UpToDate", DATE_NEW, &[]),
                isv(2, "Revoked", DATE_OLD, &[]),
            ],
        );
        let info = tdx_info("OutOfDate", "OutOfDate");
        let err = evaluate(
            &info,
            &identity,
            &platform(7),
            Some(&td([4, 1, 7], None)),
            &qe(2),
        )
        .unwrap_err();
        assert!(matches!(err, TcbError::Revoked { what: "qe", .. }));
        let err = evaluate(
            &info,
            &identity,
            &platform(7),
            Some(&td([4, 1, 7], None)),
            &qe(1),
        )
        .unwrap_err();
        assert!(matches!(err, TcbError::NotSupported { what: "qe", .. }));
    }

    #[test]
    fn qe_identity_fields_must_match() {
        let info = tdx_info("OutOfDate", "OutOfDate");
        let identity = td_qe_uptodate();
        let run = |q: QeTcb| {
            evaluate(
                &info,
                &identity,
                &platform(7),
                Some(&td([4, 1, 7], None)),
                &q,
            )
            .unwrap_err()
        };
        let mut q = qe(4);
        q.mr_signer[0] ^= 1;
        assert!(matches!(
            run(q),
            TcbError::QeIdentity {
                field: "mrsigner",
                ..
            }
        ));
        let mut q = qe(4);
        q.isv_prod_id = 1;
        assert!(matches!(
            run(q),
            TcbError::QeIdentity {
                field: "isvprodid",
                ..
            }
        ));
        let mut q = qe(4);
        q.misc_select = 1;
        assert!(matches!(
            run(q),
            TcbError::QeIdentity {
                field: "miscselect",
                ..
            }
        ));
        let mut q = qe(4);
        q.attributes[0] = 0x13; // DEBUG (bit 1) is inside the mask
        assert!(matches!(
            run(q),
            TcbError::QeIdentity {
                field: "attributes",
                ..
            }
        ));
        // The SGX QE identity for a TDX quote.
        let sgx_qe = qe_identity("QE", vec![isv(4, "UpToDate", DATE_NEW, &[])]);
        let err = evaluate(
            &info,
            &sgx_qe,
            &platform(7),
            Some(&td([4, 1, 7], None)),
            &qe(4),
        )
        .unwrap_err();
        assert!(matches!(err, TcbError::QeIdentity { field: "id", .. }));
        // As Intel's QVL compares: `report & mask == expected`, the expected value unmasked,
        // so an identity expecting a bit outside its own mask matches no QE.
        for (field, edit) in [
            (
                "miscselect",
                (|i: &mut EnclaveIdentity| {
                    i.miscselect_mask = 0xFFFF_FFFE;
                    i.miscselect |= 1;
                }) as fn(&mut EnclaveIdentity),
            ),
            ("attributes", |i: &mut EnclaveIdentity| {
                i.attributes_mask[0] &= !0x80;
                i.attributes[0] |= 0x80;
            }),
        ] {
            let mut odd = td_qe_uptodate();
            edit(&mut odd);
            let mut q = qe(4);
            q.misc_select |= odd.miscselect & 1;
            q.attributes[0] |= odd.attributes[0] & 0x80;
            let err =
                evaluate(&info, &odd, &platform(7), Some(&td([4, 1, 7], None)), &q).unwrap_err();
            assert!(
                matches!(err, TcbError::QeIdentity { field: f, .. } if f == field),
                "{field}: {err:?}"
            );
        }
    }

    #[test]
    fn tcb_info_must_be_for_the_quotes_tee() {
        let sgx_info = tcb_info(
            "SGX",
            vec![level(7, None, "UpToDate", DATE_NEW, &[])],
            vec![],
        );
        let err = eval_tdx(&sgx_info, 7, [4, 1, 7], 4).unwrap_err();
        assert_eq!(err.check(), "tcb_info");
        let err = evaluate(
            &tdx_info("OutOfDate", "OutOfDate"),
            &qe_identity("QE", vec![isv(4, "UpToDate", DATE_NEW, &[])]),
            &platform(7),
            None,
            &qe(4),
        )
        .unwrap_err();
        assert_eq!(err.check(), "tcb_info");
    }

    #[test]
    fn sgx_quotes_use_sgx_levels_and_the_qe_identity() {
        let info = tcb_info(
            "SGX",
            vec![
                level(7, None, "UpToDate", DATE_NEW, &[]),
                level(5, None, "SWHardeningNeeded", DATE_OLD, &["INTEL-SA-00615"]),
            ],
            vec![],
        );
        let identity = qe_identity(
            "QE",
            vec![isv(4, "UpToDate", DATE_NEW, &["INTEL-SA-00001"])],
        );
        let mut q = qe(4);
        q.isv_prod_id = 2;
        let e = evaluate(&info, &identity, &platform(6), None, &q).unwrap();
        assert_eq!(e.status, TcbStatus::SwHardeningNeeded);
        assert_eq!(e.advisory_ids, ["INTEL-SA-00001", "INTEL-SA-00615"]);
    }

    #[test]
    fn relaunch_is_advised_when_tee_tcb_svn2_reaches_the_newest_level() {
        let info = tdx_info("OutOfDate", "OutOfDate");
        let identity = td_qe_uptodate();
        let run = |svn2: [u8; 3]| {
            evaluate(
                &info,
                &identity,
                &platform(7),
                Some(&td([3, 1, 7], Some(svn2))),
                &qe(4),
            )
            .unwrap()
        };
        let e = run([4, 1, 7]);
        assert_eq!(e.status, TcbStatus::OutOfDate);
        assert!(e.td_relaunch_advised);
        // A relaunch would still run the old module: no advice.
        assert!(!run([3, 1, 7]).td_relaunch_advised);
        // Microcode behind the newest level.
        assert!(!run([4, 1, 6]).td_relaunch_advised);
        // No TEE_TCB_SVN2 (TD 1.0 body): never advised.
        let e = evaluate(
            &info,
            &identity,
            &platform(7),
            Some(&td([3, 1, 7], None)),
            &qe(4),
        )
        .unwrap();
        assert!(!e.td_relaunch_advised);
        // TEE_TCB_SVN2 naming a module the TCB info has no identity for: refused, as
        // Intel's TDRelaunchCheck does (TDX_MODULE_MISMATCH), not taken as "no advice".
        let e = evaluate(
            &info,
            &identity,
            &platform(7),
            Some(&td([3, 1, 7], Some([4, 9, 7]))),
            &qe(4),
        )
        .unwrap_err();
        assert!(
            matches!(e, TcbError::TdxModule { field: "id", ref actual, .. } if actual == "TDX_09"),
            "{e}"
        );
        // The platform itself out of date: a relaunch does not help.
        let e = evaluate(
            &info,
            &identity,
            &platform(6),
            Some(&td([3, 1, 7], Some([4, 1, 7]))),
            &qe(4),
        )
        .unwrap();
        assert!(!e.td_relaunch_advised);
    }

    #[test]
    fn advisories_are_the_union_and_the_date_the_earliest() {
        let identity = qe_identity(
            "TD_QE",
            vec![isv(
                4,
                "UpToDate",
                "2023-01-01T00:00:00Z",
                &["INTEL-SA-00001"],
            )],
        );
        let e = evaluate(
            &tdx_info("OutOfDate", "OutOfDate"),
            &identity,
            &platform(6),
            Some(&td([3, 1, 7], None)),
            &qe(4),
        )
        .unwrap();
        assert_eq!(
            e.advisory_ids,
            ["INTEL-SA-00001", "INTEL-SA-00960", "INTEL-SA-00982"]
        );
        assert_eq!(
            e.tcb_date,
            UnixTime::parse_rfc3339("2023-01-01T00:00:00Z").unwrap()
        );
    }
}
