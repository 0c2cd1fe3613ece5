//! Negative tests for every TDX and SGX DCAP verification check, on quotes and collateral
//! signed by the simulator's fake Intel PKI, plus the positive paths they start from: every
//! TCB status, Intel's convergence rules, collateral windows, revocation, byte flips in the
//! signed parts, and the verifier's caches.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::ops::Range;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tessera::pki::builder::IssuerKey;
use tessera::pki::{PkiError, PublicKeyKind, UnixTime, sha256, to_pem};
use tessera::tdx::abi::{Quote, QuoteSignatureData, TeeType};
use tessera::tdx::collateral::{Collateral, TcbInfoId, TcbStatus};
use tessera::tdx::pck::{PckError, PckExtensions, PckTcb, SgxType};
use tessera::tdx::sim::{
    CollateralSpec, IsvLevelSpec, PlatformSpec, QuoteSpec, SIM_ISSUE_DATE, SIM_NEXT_UPDATE,
    SIM_NOT_AFTER, SIM_PCK_CA_SERIAL, SIM_TCB_SIGNING_SERIAL, SIM_VERIFY_AT, SimBody,
    SimConstraints, SimPck, SimPcs,
};
use tessera::tdx::tcb::TcbError;
use tessera::tdx::{TdxError, TrustAnchors, Verification, Verified, Verifier, VerifyOptions};

const AT: UnixTime = SIM_VERIFY_AT;
const DAY: i64 = 86_400;

fn secs(t: UnixTime, delta: i64) -> UnixTime {
    UnixTime::from_secs(t.as_secs() + delta)
}

/// The simulated Intel PKI every test trusts (through the dangerous anchors).
fn pcs() -> &'static SimPcs {
    static PCS: OnceLock<SimPcs> = OnceLock::new();
    PCS.get_or_init(|| SimPcs::new().unwrap())
}

/// Another simulated PKI: the same names, other keys.
fn other_pcs() -> &'static SimPcs {
    static PCS: OnceLock<SimPcs> = OnceLock::new();
    PCS.get_or_init(|| SimPcs::new().unwrap())
}

/// The PCK certificate of the default platform.
fn pck() -> &'static SimPck {
    static PCK: OnceLock<SimPck> = OnceLock::new();
    PCK.get_or_init(|| pcs().issue_pck(&PlatformSpec::default()).unwrap())
}

fn verifier() -> Verifier {
    Verifier::new(pcs().dangerous_trust_anchors())
}

fn allow_missing() -> VerifyOptions {
    VerifyOptions::default().allow_missing_crls(true)
}

/// Verify with a fresh verifier at [`AT`], strict options.
fn verify(quote: &Quote, collateral: &Collateral) -> Result<Verified<Quote>, TdxError> {
    verifier().verify(quote, collateral, AT, &VerifyOptions::default())
}

/// The error, asserting its check name.
#[track_caller]
fn rejected(result: Result<Verified<Quote>, TdxError>, check: &str) -> TdxError {
    let err = result.expect_err("verified, expected a rejection");
    assert_eq!(err.check(), check, "{err}");
    err
}

/// A simulated quote with its spec and the collateral spec it verifies UpToDate under.
struct Case {
    spec: QuoteSpec,
    quote: Quote,
    coll: CollateralSpec,
}

impl Case {
    fn new(spec: QuoteSpec) -> Self {
        let quote = pcs().quote(pck(), &spec).unwrap();
        let coll = CollateralSpec::matching(&pck().platform, &spec, TcbStatus::UpToDate);
        Self { spec, quote, coll }
    }

    fn td10() -> Self {
        Self::new(QuoteSpec::tdx())
    }

    fn td15() -> Self {
        Self::new(QuoteSpec::tdx15())
    }

    fn td15ex() -> Self {
        Self::new(QuoteSpec::tdx15ex())
    }

    fn sgx() -> Self {
        Self::new(QuoteSpec::sgx())
    }

    fn all() -> [Self; 4] {
        [Self::td10(), Self::td15(), Self::td15ex(), Self::sgx()]
    }

    fn name(&self) -> &'static str {
        match self.spec.body {
            SimBody::Td10 => "TD 1.0 (v4)",
            SimBody::Td15 => "TD 1.5 (v5)",
            SimBody::Td15Ex => "TD 1.5ex (v5, type 4)",
            SimBody::Sgx => "SGX (v3)",
        }
    }

    fn is_tdx(&self) -> bool {
        self.spec.body != SimBody::Sgx
    }

    fn collateral(&self) -> Collateral {
        pcs().collateral(&self.coll).unwrap()
    }

    /// Collateral for `self.coll` edited by `edit`.
    fn collateral_with(&self, edit: impl FnOnce(&mut CollateralSpec)) -> Collateral {
        let mut coll = self.coll.clone();
        edit(&mut coll);
        pcs().collateral(&coll).unwrap()
    }

    /// The collateral bundle JSON, as a map of its string fields.
    fn bundle(&self) -> Map<String, Value> {
        bundle_of(pcs(), &self.coll)
    }

    /// The positive case a negative test starts from: verifies UpToDate.
    #[track_caller]
    fn assert_verifies(&self) -> Verification {
        let v = verify(&self.quote, &self.collateral())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name()));
        let v = v.into_parts().1;
        assert_eq!(v.tcb.status, TcbStatus::UpToDate, "{}", self.name());
        v
    }
}

fn bundle_of(pcs: &SimPcs, spec: &CollateralSpec) -> Map<String, Value> {
    match serde_json::from_str(&pcs.collateral_json(spec).unwrap()).unwrap() {
        Value::Object(map) => map,
        other => panic!("bundle is not an object: {other}"),
    }
}

fn from_bundle(bundle: &Map<String, Value>) -> Collateral {
    Collateral::from_bundle_json(Value::Object(bundle.clone()).to_string().as_bytes()).unwrap()
}

fn field(bundle: &Map<String, Value>, key: &str) -> String {
    bundle[key].as_str().unwrap().to_owned()
}

fn set(bundle: &mut Map<String, Value>, key: &str, value: String) {
    bundle.insert(key.to_owned(), Value::String(value));
}

/// `quote` with its signature data edited (the signed header and body unchanged).
fn with_signature_data(quote: &Quote, edit: impl FnOnce(&mut QuoteSignatureData)) -> Quote {
    let mut sig = quote.signature_data().clone();
    edit(&mut sig);
    Quote::new(quote.header().clone(), quote.body().clone(), sig).unwrap()
}

/// The raw `x || y` of a P-256 key.
fn raw_point(key: &IssuerKey) -> [u8; 64] {
    key.public_key().raw()[1..].try_into().unwrap()
}

/// Make the QE report bind the signature data's attestation key and QE auth data, as the QE
/// does: REPORTDATA = SHA-256(attestation key || QE auth data) || 32 zero bytes.
fn bind_attestation_key(sig: &mut QuoteSignatureData) {
    let mut bound = sig.attestation_key.to_vec();
    bound.extend_from_slice(&sig.certification.qe_auth_data);
    let report_data = &mut sig.certification.qe_report.report_data;
    report_data[..32].copy_from_slice(&sha256(&bound));
    report_data[32..].fill(0);
}

/// Sign the QE report of `sig` with `pck`'s key.
fn sign_qe_report(sig: &mut QuoteSignatureData, pck: &SimPck) {
    sig.certification.qe_report_signature = pck.sign(&sig.certification.qe_report_bytes()).unwrap();
}

/// Sign the quote's header and body with `key`.
fn sign_quote(quote: Quote, key: &IssuerKey) -> Quote {
    let signature = key.sign_fixed(quote.signed_bytes()).unwrap();
    let signature: [u8; 64] = signature.as_slice().try_into().unwrap();
    quote.with_signature(signature)
}

fn pem_chain(certs: &[&tessera::pki::Certificate]) -> Vec<u8> {
    certs
        .iter()
        .map(|c| to_pem("CERTIFICATE", c.der()))
        .collect::<String>()
        .into_bytes()
}

fn level(isvsvn: u16, status: TcbStatus, days_before_issue: i64, sa: &[&str]) -> IsvLevelSpec {
    IsvLevelSpec {
        isvsvn,
        status,
        date: UnixTime::from_secs(SIM_ISSUE_DATE.as_secs() - days_before_issue * DAY),
        advisories: sa.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn advisories(sa: &[&str]) -> Vec<String> {
    sa.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Positive paths and trust anchors
// ---------------------------------------------------------------------------------------------

#[test]
fn simulated_quotes_verify_up_to_date_only_under_the_dangerous_root() {
    let intel = Verifier::new(TrustAnchors::intel().unwrap());
    let other = Verifier::new(other_pcs().dangerous_trust_anchors());
    for (case, version, tee) in [
        (Case::td10(), 4, TeeType::TDX),
        (Case::td15(), 5, TeeType::TDX),
        (Case::td15ex(), 5, TeeType::TDX),
        (Case::sgx(), 3, TeeType::SGX),
    ] {
        let name = case.name();
        assert_eq!(case.quote.version(), version, "{name}");
        let collateral = case.collateral();
        let v = case.assert_verifies();
        assert_eq!(v.tee, tee, "{name}");
        assert!(v.tcb.advisory_ids.is_empty(), "{name}");
        assert_eq!(v.tcb.platform.index, 0, "{name}");
        assert_eq!(v.tcb.tdx_module.is_some(), case.is_tdx(), "{name}");
        assert!(v.revocation_checked, "{name}");
        assert!(v.dangerous_root, "{name}");
        assert_eq!(v.pck.fmspc, PlatformSpec::default().fmspc, "{name}");
        assert_eq!(
            v.pck.tcb.comp_svn,
            PlatformSpec::default().comp_svn,
            "{name}"
        );
        assert_eq!(v.pck_chain.len(), 3, "{name}");
        assert_eq!(v.pck_chain[2].subject, pcs().root().subject(), "{name}");
        assert_eq!(v.tcb_info_issue_date, SIM_ISSUE_DATE, "{name}");
        assert_eq!(v.valid_until, SIM_NEXT_UPDATE, "{name}");
        assert_eq!(v.tcb.tcb_evaluation_data_number, 17, "{name}");

        // The bytes round-trip and verify the same.
        let bytes = case.quote.to_bytes();
        let again = verifier()
            .verify_bytes(&bytes, &collateral, AT, &VerifyOptions::default())
            .unwrap();
        assert_eq!(again.verification(), &v, "{name}");
        assert_eq!(again.quote(), &case.quote, "{name}");

        // Intel's root does not know the simulator; nor does another simulated PKI.
        let err = rejected(
            intel.verify(&case.quote, &collateral, AT, &VerifyOptions::default()),
            "pck_chain",
        );
        assert!(matches!(err, TdxError::Pki { .. }), "{err:?}");
        rejected(
            other.verify(&case.quote, &collateral, AT, &allow_missing()),
            "pck_chain",
        );
    }
    assert!(!TrustAnchors::intel().unwrap().is_dangerous());
    assert!(pcs().dangerous_trust_anchors().is_dangerous());
}

#[test]
fn report_data_and_measurements_are_carried() {
    let mut spec = QuoteSpec::tdx15();
    spec.report_data = [0xab; 64];
    spec.mr_td = [0x42; 48];
    let case = Case::new(spec);
    case.assert_verifies();
    assert_eq!(case.quote.report_data(), &[0xab; 64]);
    assert_eq!(case.quote.body().td().unwrap().mr_td, [0x42; 48]);
}

#[test]
fn sgx_tcb_info_version_2_verifies() {
    let case = Case::sgx();
    case.assert_verifies();
    let collateral = case.collateral_with(|c| c.version = 2);
    assert_eq!(collateral.tcb_info().value().version, 2);
    let v = verify(&case.quote, &collateral).unwrap();
    assert_eq!(v.verification().tcb.status, TcbStatus::UpToDate);
}

#[test]
fn a_forged_attestation_key_verifies_only_when_the_pck_binds_it() {
    // The hooks the negative tests below use: re-binding and re-signing by hand gives a quote
    // that verifies, so their rejections come from the single change each makes.
    let case = Case::td10();
    case.assert_verifies();
    let key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
    let forged = with_signature_data(&case.quote, |sig| {
        sig.attestation_key = raw_point(&key);
        bind_attestation_key(sig);
        sign_qe_report(sig, pck());
    });
    let forged = sign_quote(forged, &key);
    let v = verify(&forged, &case.collateral()).unwrap();
    assert_eq!(v.verification().tcb.status, TcbStatus::UpToDate);
}

// ---------------------------------------------------------------------------------------------
// TCB status: every status, Revoked, no level
// ---------------------------------------------------------------------------------------------

#[test]
fn every_tcb_status_is_reported_exactly_for_tdx_and_sgx() {
    for case in Case::all() {
        let collateral_for = |status| {
            pcs()
                .collateral(&CollateralSpec::matching(
                    &pck().platform,
                    &case.spec,
                    status,
                ))
                .unwrap()
        };
        for status in TcbStatus::ALL {
            let name = format!("{} {}", case.name(), status.as_str());
            let result = verify(&case.quote, &collateral_for(status));
            if status == TcbStatus::Revoked {
                let err = rejected(result, "tcb_revoked");
                assert_eq!(err.tcb_status_name(), Some("Revoked"), "{name}");
                assert!(
                    matches!(
                        &err,
                        TdxError::Tcb(TcbError::Revoked { what: "platform", advisory_ids })
                            if advisory_ids == &advisories(&["INTEL-SA-00001"])
                    ),
                    "{name}: {err:?}"
                );
                continue;
            }
            let v = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let tcb = &v.verification().tcb;
            assert_eq!(tcb.status, status, "{name}");
            assert_eq!(tcb.platform.status, status, "{name}");
            if status == TcbStatus::UpToDate {
                assert_eq!(tcb.platform.index, 0, "{name}");
                assert!(tcb.advisory_ids.is_empty(), "{name}");
                assert!(tcb.behind.is_empty(), "{name}: {:?}", tcb.behind);
            } else {
                assert_eq!(tcb.platform.index, 1, "{name}");
                assert_eq!(tcb.advisory_ids, advisories(&["INTEL-SA-00001"]), "{name}");
                assert!(!tcb.behind.is_empty(), "{name}");
            }
            assert!(!tcb.td_relaunch_advised, "{name}");
        }
    }
}

#[test]
fn a_platform_below_every_level_is_not_supported() {
    for case in Case::all() {
        case.assert_verifies();
        let collateral = case.collateral();
        // SGX component 2 below every level (the newest level differs in component 1 only),
        // or the PCE SVN below.
        let mut low_comp = PlatformSpec::default();
        low_comp.comp_svn[1] -= 1;
        let mut low_pce = PlatformSpec::default();
        low_pce.pce_svn -= 1;
        for platform in [low_comp, low_pce] {
            let low = pcs().issue_pck(&platform).unwrap();
            let quote = pcs().quote(&low, &case.spec).unwrap();
            let err = rejected(verify(&quote, &collateral), "tcb_level");
            assert_eq!(
                err.tcb_status_name(),
                Some("TcbLevelNotSupported"),
                "{}",
                case.name()
            );
            assert!(
                matches!(
                    err,
                    TdxError::Tcb(TcbError::NotSupported {
                        what: "platform",
                        ..
                    })
                ),
                "{}: {err:?}",
                case.name()
            );
        }
    }
}

#[test]
fn tdx_components_below_every_level_are_not_supported() {
    for case in [Case::td10(), Case::td15(), Case::td15ex()] {
        case.assert_verifies();
        let mut spec = case.spec.clone();
        spec.tee_tcb_svn[2] -= 1;
        let quote = pcs().quote(pck(), &spec).unwrap();
        let err = rejected(verify(&quote, &case.collateral()), "tcb_level");
        assert_eq!(err.tcb_status_name(), Some("TcbLevelNotSupported"));
        assert!(
            matches!(
                err,
                TdxError::Tcb(TcbError::NotSupported {
                    what: "platform",
                    ..
                })
            ),
            "{err:?}"
        );
    }
}

/// Intel's `getMatchingTcbLevel` selects the first level meeting the SGX components, the
/// PCESVN and the TDX components in that same level. Here level 0 meets the SGX components
/// but not the TDX ones, and level 1 meets the TDX components but has an SGX component above
/// the platform's: no level matches, whatever level 1 says.
#[test]
fn a_level_meeting_only_the_tdx_components_is_not_supported() {
    for case in [Case::td10(), Case::td15(), Case::td15ex()] {
        case.assert_verifies();
        let platform = pck().platform.comp_svn;
        let collateral = case.collateral_with(|c| {
            let current = c.levels[0].clone();
            let mut newest = current.clone();
            newest.tdx.as_mut().unwrap()[2] += 1; // microcode the TD does not have
            let mut sgx_above = current.clone();
            sgx_above.sgx[7] = platform[7] + 1; // an SGX component the PCK does not have
            sgx_above.status = TcbStatus::SwHardeningNeeded;
            sgx_above.advisories = advisories(&["INTEL-SA-00615"]);
            c.levels = vec![newest, sgx_above];
        });
        let err = rejected(verify(&case.quote, &collateral), "tcb_level");
        assert_eq!(err.tcb_status_name(), Some("TcbLevelNotSupported"));
        assert!(
            matches!(
                err,
                TdxError::Tcb(TcbError::NotSupported {
                    what: "platform",
                    ..
                })
            ),
            "{}: {err:?}",
            case.name()
        );

        // A third level that the platform meets in full is selected, not level 1.
        let collateral = case.collateral_with(|c| {
            let current = c.levels[0].clone();
            let mut newest = current.clone();
            newest.tdx.as_mut().unwrap()[2] += 1;
            let mut sgx_above = current.clone();
            sgx_above.sgx[7] = platform[7] + 1;
            sgx_above.status = TcbStatus::SwHardeningNeeded;
            sgx_above.advisories = advisories(&["INTEL-SA-00615"]);
            let mut met = current;
            met.status = TcbStatus::OutOfDate;
            met.advisories = advisories(&["INTEL-SA-00837"]);
            c.levels = vec![newest, sgx_above, met];
        });
        let v = verify(&case.quote, &collateral).unwrap();
        let tcb = &v.verification().tcb;
        assert_eq!(tcb.status, TcbStatus::OutOfDate, "{}", case.name());
        assert_eq!(tcb.advisory_ids, ["INTEL-SA-00837"], "{}", case.name());
    }
}

#[test]
fn a_tdx_module_or_qe_below_every_level_is_not_supported() {
    for case in Case::all() {
        case.assert_verifies();
        if case.is_tdx() {
            let collateral = case.collateral_with(|c| {
                c.module_identities[0].levels = vec![level(4, TcbStatus::UpToDate, 10, &[])];
            });
            let err = rejected(verify(&case.quote, &collateral), "tcb_level");
            assert_eq!(err.tcb_status_name(), Some("TcbLevelNotSupported"));
            assert!(
                matches!(
                    err,
                    TdxError::Tcb(TcbError::NotSupported {
                        what: "tdx_module",
                        ..
                    })
                ),
                "{err:?}"
            );
        }
        let svn = case.spec.qe.isv_svn;
        let collateral = case.collateral_with(|c| {
            c.qe_levels = vec![level(svn + 1, TcbStatus::UpToDate, 10, &[])];
        });
        let err = rejected(verify(&case.quote, &collateral), "tcb_level");
        assert_eq!(err.tcb_status_name(), Some("TcbLevelNotSupported"));
        assert!(
            matches!(
                err,
                TdxError::Tcb(TcbError::NotSupported { what: "qe", .. })
            ),
            "{}: {err:?}",
            case.name()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Intel's status convergence (through the whole verifier)
// ---------------------------------------------------------------------------------------------

/// Intel's rule for a module or QE level that is OutOfDate, by platform status.
const OUT_OF_DATE_CONVERGENCE: [(TcbStatus, TcbStatus); 6] = [
    (TcbStatus::UpToDate, TcbStatus::OutOfDate),
    (TcbStatus::SwHardeningNeeded, TcbStatus::OutOfDate),
    (
        TcbStatus::ConfigurationNeeded,
        TcbStatus::OutOfDateConfigurationNeeded,
    ),
    (
        TcbStatus::ConfigurationAndSwHardeningNeeded,
        TcbStatus::OutOfDateConfigurationNeeded,
    ),
    (TcbStatus::OutOfDate, TcbStatus::OutOfDate),
    (
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::OutOfDateConfigurationNeeded,
    ),
];

/// Module identity levels: a newer UpToDate level the quote (module SVN 3) does not reach,
/// and its own level with `status`.
fn module_levels(status: TcbStatus, sa: &[&str]) -> Vec<IsvLevelSpec> {
    vec![
        level(5, TcbStatus::UpToDate, 30, &[]),
        level(3, status, 400, sa),
    ]
}

fn qe_levels(svn: u16, status: TcbStatus, sa: &[&str]) -> Vec<IsvLevelSpec> {
    vec![
        level(svn + 1, TcbStatus::UpToDate, 30, &[]),
        level(svn, status, 400, sa),
    ]
}

#[test]
fn an_out_of_date_tdx_module_converges_by_intels_rule() {
    for case in [Case::td10(), Case::td15(), Case::td15ex()] {
        case.assert_verifies();
        for (platform, expected) in OUT_OF_DATE_CONVERGENCE {
            let mut coll = CollateralSpec::matching(&pck().platform, &case.spec, platform);
            coll.module_identities[0].levels =
                module_levels(TcbStatus::OutOfDate, &["INTEL-SA-00002"]);
            let v = verify(&case.quote, &pcs().collateral(&coll).unwrap()).unwrap();
            let tcb = &v.verification().tcb;
            let name = format!("{} platform {platform:?}", case.name());
            assert_eq!(tcb.status, expected, "{name}");
            assert_eq!(tcb.platform.status, platform, "{name}");
            let module = tcb.tdx_module.as_ref().unwrap();
            assert_eq!(module.status, TcbStatus::OutOfDate, "{name}");
            assert_eq!(module.index, 1, "{name}");
            assert!(tcb.advisory_ids.contains(&String::from("INTEL-SA-00002")));
            assert!(
                tcb.behind
                    .iter()
                    .any(|b| b.component == "TDX module TDX_01 SVN"
                        && b.actual == 3
                        && b.latest == 5),
                "{name}: {:?}",
                tcb.behind
            );
            // TEE_TCB_SVN2 equals TEE_TCB_SVN: a relaunch would not help.
            assert!(!tcb.td_relaunch_advised, "{name}");
        }
    }
}

#[test]
fn an_out_of_date_qe_converges_by_intels_rule() {
    for case in Case::all() {
        case.assert_verifies();
        for (platform, expected) in OUT_OF_DATE_CONVERGENCE {
            let mut coll = CollateralSpec::matching(&pck().platform, &case.spec, platform);
            coll.qe_levels = qe_levels(
                case.spec.qe.isv_svn,
                TcbStatus::OutOfDate,
                &["INTEL-SA-00003"],
            );
            let v = verify(&case.quote, &pcs().collateral(&coll).unwrap()).unwrap();
            let tcb = &v.verification().tcb;
            let name = format!("{} platform {platform:?}", case.name());
            assert_eq!(tcb.status, expected, "{name}");
            assert_eq!(tcb.qe.status, TcbStatus::OutOfDate, "{name}");
            assert_eq!(tcb.qe.index, 1, "{name}");
            assert!(tcb.advisory_ids.contains(&String::from("INTEL-SA-00003")));
        }
    }
}

#[test]
fn module_and_qe_levels_carry_only_enclave_statuses() {
    // An enclave's level (a TDX module's, the QE's) is UpToDate, OutOfDate or Revoked in
    // Intel's schema; a platform-only status there is refused with the collateral rather than
    // left out of the convergence.
    let case = Case::td10();
    case.assert_verifies();
    for other in [
        TcbStatus::SwHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::OutOfDateConfigurationNeeded,
    ] {
        let mut module = case.coll.clone();
        module.module_identities[0].levels = module_levels(other, &[]);
        let mut qe = case.coll.clone();
        qe.qe_levels = qe_levels(case.spec.qe.isv_svn, other, &[]);
        for (what, spec) in [("module", module), ("qe", qe)] {
            let err = pcs().collateral(&spec).unwrap_err().to_string();
            assert!(err.contains("tcbStatus"), "{what} {other:?}: {err}");
        }
    }
}

#[test]
fn out_of_date_module_and_qe_together_with_configuration_needed() {
    let case = Case::td15();
    case.assert_verifies();
    let mut coll =
        CollateralSpec::matching(&pck().platform, &case.spec, TcbStatus::ConfigurationNeeded);
    coll.module_identities[0].levels = module_levels(TcbStatus::OutOfDate, &[]);
    coll.qe_levels = qe_levels(case.spec.qe.isv_svn, TcbStatus::OutOfDate, &[]);
    let v = verify(&case.quote, &pcs().collateral(&coll).unwrap()).unwrap();
    let tcb = &v.verification().tcb;
    assert_eq!(tcb.status, TcbStatus::OutOfDateConfigurationNeeded);
    // The QE is out of date too: a TD relaunch cannot reach the newest level.
    assert!(!tcb.td_relaunch_advised);
}

#[test]
fn a_revoked_module_or_qe_level_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        if case.is_tdx() {
            let collateral = case.collateral_with(|c| {
                c.module_identities[0].levels =
                    module_levels(TcbStatus::Revoked, &["INTEL-SA-00009"]);
            });
            let err = rejected(verify(&case.quote, &collateral), "tcb_revoked");
            assert_eq!(err.tcb_status_name(), Some("Revoked"));
            assert!(
                matches!(
                    &err,
                    TdxError::Tcb(TcbError::Revoked { what: "tdx_module", advisory_ids })
                        if advisory_ids == &advisories(&["INTEL-SA-00009"])
                ),
                "{err:?}"
            );
        }
        let collateral = case.collateral_with(|c| {
            c.qe_levels = qe_levels(case.spec.qe.isv_svn, TcbStatus::Revoked, &[]);
        });
        let err = rejected(verify(&case.quote, &collateral), "tcb_revoked");
        assert_eq!(err.tcb_status_name(), Some("Revoked"));
        assert!(
            matches!(err, TdxError::Tcb(TcbError::Revoked { what: "qe", .. })),
            "{}: {err:?}",
            case.name()
        );
    }
}

#[test]
fn td_relaunch_is_advised_when_tee_tcb_svn2_reaches_the_newest_module_level() {
    // TD 1.5 (type 3) and TD 1.5ex (type 4) bodies both carry TEE_TCB_SVN2.
    for td15 in [QuoteSpec::tdx15, QuoteSpec::tdx15ex] {
        let mut spec = td15();
        spec.tee_tcb_svn2[0] = 5; // the module SVN a relaunched TD would get
        let case = Case::new(spec);
        case.assert_verifies();
        let collateral = case.collateral_with(|c| {
            c.module_identities[0].levels = module_levels(TcbStatus::OutOfDate, &[])
        });
        let v = verify(&case.quote, &collateral).unwrap();
        let tcb = &v.verification().tcb;
        assert_eq!(tcb.status, TcbStatus::OutOfDate);
        assert!(tcb.td_relaunch_advised);

        // Not when TEE_TCB_SVN2 stays below the newest module level.
        let mut spec = td15();
        spec.tee_tcb_svn2[0] = 4;
        let quote = pcs().quote(pck(), &spec).unwrap();
        let v = verify(&quote, &collateral).unwrap();
        assert_eq!(v.verification().tcb.status, TcbStatus::OutOfDate);
        assert!(!v.verification().tcb.td_relaunch_advised);

        // Not when the TDX components a relaunch would get are below the newest level.
        let mut spec = td15();
        spec.tee_tcb_svn2[0] = 5;
        spec.tee_tcb_svn2[2] = 1;
        let quote = pcs().quote(pck(), &spec).unwrap();
        assert!(
            !verify(&quote, &collateral)
                .unwrap()
                .verification()
                .tcb
                .td_relaunch_advised
        );

        // Not when the QE is out of date as well.
        let collateral = case.collateral_with(|c| {
            c.module_identities[0].levels = module_levels(TcbStatus::OutOfDate, &[]);
            c.qe_levels = qe_levels(case.spec.qe.isv_svn, TcbStatus::OutOfDate, &[]);
        });
        let v = verify(&case.quote, &collateral).unwrap();
        assert_eq!(v.verification().tcb.status, TcbStatus::OutOfDate);
        assert!(!v.verification().tcb.td_relaunch_advised);
    }

    // A TD 1.0 quote has no TEE_TCB_SVN2: never advised.
    let td10 = Case::td10();
    let collateral = td10.collateral_with(|c| {
        c.module_identities[0].levels = module_levels(TcbStatus::OutOfDate, &[])
    });
    let v = verify(&td10.quote, &collateral).unwrap();
    assert_eq!(v.verification().tcb.status, TcbStatus::OutOfDate);
    assert!(!v.verification().tcb.td_relaunch_advised);
}

#[test]
fn advisory_ids_are_the_union_of_the_selected_levels() {
    let case = Case::td10();
    case.assert_verifies();
    let mut coll =
        CollateralSpec::matching(&pck().platform, &case.spec, TcbStatus::SwHardeningNeeded);
    coll.levels[1].advisories = advisories(&["INTEL-SA-00002", "INTEL-SA-00001"]);
    coll.module_identities[0].levels =
        module_levels(TcbStatus::OutOfDate, &["INTEL-SA-00003", "INTEL-SA-00001"]);
    coll.qe_levels = vec![level(
        case.spec.qe.isv_svn,
        TcbStatus::UpToDate,
        500,
        &["INTEL-SA-00004"],
    )];
    let v = verify(&case.quote, &pcs().collateral(&coll).unwrap()).unwrap();
    let tcb = &v.verification().tcb;
    assert_eq!(tcb.status, TcbStatus::OutOfDate);
    assert_eq!(
        tcb.advisory_ids,
        advisories(&[
            "INTEL-SA-00001",
            "INTEL-SA-00002",
            "INTEL-SA-00003",
            "INTEL-SA-00004"
        ])
    );
    // The earliest tcbDate of the selected levels (the QE's, 500 days before issue).
    assert_eq!(tcb.tcb_date.as_secs(), SIM_ISSUE_DATE.as_secs() - 500 * DAY);
    // Advisories of levels that were not selected do not count.
    assert_eq!(tcb.platform.index, 1);
    assert!(coll.levels[0].advisories.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Quote-level checks: vendor, PCK chain and extensions, QE report, attestation key, signature
// ---------------------------------------------------------------------------------------------

#[test]
fn parse_errors_are_reported_as_parse() {
    let case = Case::td10();
    case.assert_verifies();
    let bytes = case.quote.to_bytes();
    let collateral = case.collateral();
    let v = verifier();
    for bad in [
        bytes[..bytes.len() - 1].to_vec(),
        bytes[..100].to_vec(),
        Vec::new(),
        [bytes.as_slice(), b"x"].concat(),
    ] {
        rejected(
            v.verify_bytes(&bad, &collateral, AT, &VerifyOptions::default()),
            "parse",
        );
    }
    // Zero padding after the quote is tolerated.
    v.verify_bytes(
        &[bytes.as_slice(), &[0; 16]].concat(),
        &collateral,
        AT,
        &VerifyOptions::default(),
    )
    .unwrap();
}

#[test]
fn a_quote_of_another_quoting_enclave_vendor_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        let mut spec = case.spec.clone();
        spec.qe_vendor_id[15] ^= 1;
        let quote = pcs().quote(pck(), &spec).unwrap();
        let err = rejected(verify(&quote, &case.collateral()), "qe_vendor_id");
        assert!(matches!(err, TdxError::QeVendorId(_)), "{err:?}");
    }
}

#[test]
fn pck_chains_that_do_not_reach_the_trusted_root_are_rejected() {
    let case = Case::td10();
    case.assert_verifies();
    let collateral = case.collateral();
    let certs = case
        .quote
        .signature_data()
        .certification
        .pck_certificates()
        .unwrap();
    let [leaf, ca, root] = certs.as_slice() else {
        panic!("expected PCK, PCK CA, root");
    };

    // A quote of another simulated PKI (same names, other keys).
    let other_pck = other_pcs().issue_pck(&PlatformSpec::default()).unwrap();
    let other_quote = other_pcs().quote(&other_pck, &case.spec).unwrap();
    rejected(verify(&other_quote, &collateral), "pck_chain");

    let chain_check = |chain: Vec<u8>| {
        let quote =
            with_signature_data(&case.quote, |sig| sig.certification.pck_cert_chain = chain);
        verify(&quote, &collateral).unwrap_err()
    };
    // The leaf only, the leaf and the root (no CA), or the leaf with the other PKI's CA.
    let other_certs = other_quote
        .signature_data()
        .certification
        .pck_certificates()
        .unwrap();
    for chain in [
        pem_chain(&[leaf]),
        pem_chain(&[leaf, root]),
        pem_chain(&[leaf, &other_certs[1], &other_certs[2]]),
        pem_chain(&[&other_certs[0], ca, root]),
    ] {
        let err = chain_check(chain);
        assert_eq!(err.check(), "pck_chain", "{err}");
        assert!(matches!(err, TdxError::Pki { .. }), "{err:?}");
    }
    // The root as the PCK certificate.
    let err = chain_check(pem_chain(&[root]));
    assert_eq!(err.check(), "pck_chain", "{err}");
    assert!(matches!(err, TdxError::PckChain(_)), "{err:?}");
    // No certificate at all, or not PEM.
    for chain in [Vec::new(), b"not a certificate".to_vec()] {
        let err = chain_check(chain);
        assert_eq!(err.check(), "pck_chain", "{err}");
    }
    // The CA first: it chains, but one certificate from the root (PCK -> CA -> root only).
    let err = chain_check(pem_chain(&[ca, leaf, root]));
    assert_eq!(err.check(), "pck_chain", "{err}");
    assert!(
        matches!(err, TdxError::PckChain(_) | TdxError::Pki { .. }),
        "{err:?}"
    );
    // In order without the root, and with a trailing NUL as real quotes have: still fine.
    verify(
        &with_signature_data(&case.quote, |sig| {
            sig.certification.pck_cert_chain = pem_chain(&[leaf, ca]);
        }),
        &collateral,
    )
    .unwrap();
    verify(
        &with_signature_data(&case.quote, |sig| sig.certification.pck_cert_chain.push(0)),
        &collateral,
    )
    .unwrap();
}

#[test]
fn a_pck_certificate_without_valid_sgx_extensions_is_rejected() {
    let case = Case::td10();
    case.assert_verifies();
    let collateral = case.collateral();
    let platform = PlatformSpec::default();
    let good = PckExtensions {
        ppid: [0x99; 16],
        tcb: PckTcb {
            comp_svn: platform.comp_svn,
            pce_svn: platform.pce_svn,
            cpu_svn: platform.comp_svn,
        },
        pce_id: platform.pce_id,
        fmspc: platform.fmspc,
        sgx_type: SgxType::Scalable,
        platform_instance_id: None,
        configuration: None,
    }
    .to_der();
    // The hook itself: the same extension given explicitly verifies.
    let explicit = pcs()
        .issue_pck_with_sgx_extension(&platform, Some(&good))
        .unwrap();
    verify(&pcs().quote(&explicit, &case.spec).unwrap(), &collateral).unwrap();

    let truncated = &good[..good.len() - 3];
    type Expect = fn(&PckError) -> bool;
    let cases: [(Option<&[u8]>, Expect); 4] = [
        (None, |e| matches!(e, PckError::MissingExtension)),
        (Some(b"garbage"), |e| {
            matches!(e, PckError::Malformed { .. })
        }),
        (Some(truncated), |e| matches!(e, PckError::Malformed { .. })),
        (Some(&[0x30, 0x00]), |e| {
            matches!(e, PckError::Missing { .. })
        }),
    ];
    for (ext, expected) in cases {
        let bad = pcs().issue_pck_with_sgx_extension(&platform, ext).unwrap();
        let quote = pcs().quote(&bad, &case.spec).unwrap();
        let err = rejected(verify(&quote, &collateral), "pck_extension");
        match &err {
            TdxError::PckExtension(e) => assert!(expected(e), "{ext:?}: {e:?}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn pck_and_signer_certificates_are_held_to_their_constraints() {
    let case = Case::td10();
    let collateral = case.collateral();
    let platform = PlatformSpec::default();
    let pck_with = |key_usage: u8, extra: Vec<(String, bool, Vec<u8>)>| {
        let sgx = pck()
            .certificate()
            .extension(tessera::tdx::pck::OID_SGX_EXTENSIONS)
            .unwrap();
        let bad = pcs()
            .issue_pck_with_extensions(&platform, Some(&sgx.value), key_usage, extra)
            .unwrap();
        verify(&pcs().quote(&bad, &case.spec).unwrap(), &collateral)
    };
    // The hook itself: Intel's keyUsage (digitalSignature, nonRepudiation) verifies.
    pck_with(0xC0, vec![]).unwrap();
    // A PCK whose keyUsage does not allow digitalSignature signs no QE report.
    let err = rejected(pck_with(0x04, vec![]), "pck_chain");
    assert!(
        matches!(
            &err,
            TdxError::Pki {
                source: PkiError::NotForSigning { .. },
                ..
            }
        ),
        "{err:?}"
    );
    // A critical extension that is not processed refuses the PCK certificate.
    let err = rejected(
        pck_with(
            0xC0,
            vec![(String::from("2.5.29.30"), true, vec![0x30, 0x00])],
        ),
        "pck_chain",
    );
    assert!(
        matches!(
            &err,
            TdxError::Pki {
                source: PkiError::UnhandledCriticalExtension { .. },
                ..
            }
        ),
        "{err:?}"
    );

    // A PKI whose certificates carry other constraints: the default quote and collateral it
    // signs, verified under its root.
    let verify_under = |constraints: SimConstraints| {
        let pcs = SimPcs::with_constraints(constraints).unwrap();
        let pck = pcs.issue_pck(&platform).unwrap();
        let quote = pcs.quote(&pck, &case.spec).unwrap();
        let coll = pcs.collateral(&case.coll).unwrap();
        Verifier::new(pcs.dangerous_trust_anchors()).verify(
            &quote,
            &coll,
            AT,
            &VerifyOptions::default(),
        )
    };
    verify_under(SimConstraints::default()).unwrap();
    // A root whose pathLenConstraint is 0 may not have issued the PCK CA.
    let err = rejected(
        verify_under(SimConstraints {
            root_path_len: Some(0),
            ..SimConstraints::default()
        }),
        "pck_chain",
    );
    assert!(
        matches!(
            &err,
            TdxError::Pki {
                source: PkiError::NotCa {
                    detail: "pathLenConstraint exceeded",
                    ..
                },
                ..
            }
        ),
        "{err:?}"
    );
    // A TCB Signing certificate whose keyUsage does not allow digitalSignature signs no
    // collateral.
    let err = verify_under(SimConstraints {
        tcb_signer_key_usage: 0x04,
        ..SimConstraints::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            &err,
            TdxError::Pki {
                source: PkiError::NotForSigning { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.check().ends_with("_chain"), "{}", err.check());
}

#[test]
fn a_qe_report_not_signed_by_the_pck_key_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        let collateral = case.collateral();
        // The QE report changed after signing (its ISVSVN raised, its REPORTDATA altered).
        let raised =
            with_signature_data(&case.quote, |sig| sig.certification.qe_report.isv_svn += 1);
        let err = rejected(verify(&raised, &collateral), "qe_report_signature");
        assert_eq!(err, TdxError::QeReportSignature);
        let altered = with_signature_data(&case.quote, |sig| {
            sig.certification.qe_report.report_data[0] ^= 1;
        });
        rejected(verify(&altered, &collateral), "qe_report_signature");
        // Signed by another PCK key of the same platform (same CA, same extensions).
        let other = pcs().issue_pck(&PlatformSpec::default()).unwrap();
        let resigned = with_signature_data(&case.quote, |sig| sign_qe_report(sig, &other));
        rejected(verify(&resigned, &collateral), "qe_report_signature");
        // The signature zeroed.
        let zero = with_signature_data(&case.quote, |sig| {
            sig.certification.qe_report_signature = [0; 64];
        });
        rejected(verify(&zero, &collateral), "qe_report_signature");
    }
}

#[test]
fn a_qe_report_that_does_not_bind_the_attestation_key_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        let collateral = case.collateral();
        let hash_part = TdxError::QeReportData {
            field: "report_data[0..32]",
        };
        // Other QE authentication data (not covered by the QE report signature itself).
        let auth = with_signature_data(&case.quote, |sig| sig.certification.qe_auth_data[0] ^= 1);
        let err = rejected(verify(&auth, &collateral), "qe_report_data");
        assert_eq!(err, hash_part);
        let no_auth =
            with_signature_data(&case.quote, |sig| sig.certification.qe_auth_data.clear());
        assert_eq!(verify(&no_auth, &collateral).unwrap_err(), hash_part);
        // The hash part changed and the report re-signed by the PCK key.
        let hash = with_signature_data(&case.quote, |sig| {
            sig.certification.qe_report.report_data[31] ^= 1;
            sign_qe_report(sig, pck());
        });
        assert_eq!(verify(&hash, &collateral).unwrap_err(), hash_part);
        // An attacker's own attestation key signing the quote, under the genuine QE report.
        let key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let swapped = sign_quote(
            with_signature_data(&case.quote, |sig| sig.attestation_key = raw_point(&key)),
            &key,
        );
        assert_eq!(verify(&swapped, &collateral).unwrap_err(), hash_part);
        // The upper half not zero (the hash part still right), re-signed by the PCK key.
        for i in [32, 63] {
            let upper = with_signature_data(&case.quote, |sig| {
                sig.certification.qe_report.report_data[i] = 1;
                sign_qe_report(sig, pck());
            });
            let err = rejected(verify(&upper, &collateral), "qe_report_data");
            assert_eq!(
                err,
                TdxError::QeReportData {
                    field: "report_data[32..64]"
                }
            );
        }
    }
}

#[test]
fn an_attestation_key_off_the_curve_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        let collateral = case.collateral();
        let mut one_one = [0u8; 64];
        one_one[31] = 1;
        one_one[63] = 1;
        for point in [[0u8; 64], one_one, [0xff; 64]] {
            // Bound by a QE report the PCK key signed, so only the point itself is wrong.
            let quote = with_signature_data(&case.quote, |sig| {
                sig.attestation_key = point;
                bind_attestation_key(sig);
                sign_qe_report(sig, pck());
            });
            let err = rejected(verify(&quote, &collateral), "attestation_key");
            assert_eq!(err, TdxError::AttestationKey);
        }
    }
}

#[test]
fn a_quote_not_signed_by_its_attestation_key_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        let collateral = case.collateral();
        // One byte of REPORTDATA flipped in the quote's bytes.
        let mut bytes = case.quote.to_bytes();
        let offset = match case.spec.body {
            SimBody::Td10 => 48 + 520,
            SimBody::Td15 | SimBody::Td15Ex => 48 + 6 + 520,
            SimBody::Sgx => 48 + 320,
        };
        assert_eq!(&bytes[offset..offset + 64], case.quote.report_data());
        bytes[offset + 5] ^= 0x20;
        let flipped = Quote::parse(&bytes).unwrap();
        assert_eq!(flipped.report_data()[5], case.quote.report_data()[5] ^ 0x20);
        let err = rejected(verify(&flipped, &collateral), "quote_signature");
        assert_eq!(err, TdxError::QuoteSignature);
        // Signed by another key bound in no QE report: the binding fails first; bound and
        // signed by the PCK, but the quote signed by a third key: the signature fails.
        let bound = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let stranger = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let quote = with_signature_data(&case.quote, |sig| {
            sig.attestation_key = raw_point(&bound);
            bind_attestation_key(sig);
            sign_qe_report(sig, pck());
        });
        rejected(
            verify(&sign_quote(quote.clone(), &stranger), &collateral),
            "quote_signature",
        );
        verify(&sign_quote(quote, &bound), &collateral).unwrap();
        // A zero signature, and the signature halves swapped.
        rejected(
            verify(&case.quote.clone().with_signature([0; 64]), &collateral),
            "quote_signature",
        );
        let sig = case.quote.signature_data().signature;
        let mut swapped = [0u8; 64];
        swapped[..32].copy_from_slice(&sig[32..]);
        swapped[32..].copy_from_slice(&sig[..32]);
        rejected(
            verify(&case.quote.clone().with_signature(swapped), &collateral),
            "quote_signature",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Collateral: signatures, issuer chains, windows, binding to the platform and TEE
// ---------------------------------------------------------------------------------------------

#[test]
fn an_edited_signed_collateral_body_is_rejected() {
    let case = Case::td10();
    case.assert_verifies();
    for (item, check) in [
        ("tcb_info", "tcb_info_signature"),
        ("qe_identity", "qe_identity_signature"),
    ] {
        // One digit of tcbEvaluationDataNumber changed: still parseable, no longer signed.
        let mut bundle = case.bundle();
        let body = field(&bundle, item);
        let edited = body.replace(
            "\"tcbEvaluationDataNumber\":17",
            "\"tcbEvaluationDataNumber\":18",
        );
        assert_ne!(edited, body, "{item}: the number was not found");
        assert_eq!(edited.len(), body.len());
        set(&mut bundle, item, edited);
        let collateral = from_bundle(&bundle);
        let err = rejected(verify(&case.quote, &collateral), check);
        assert_eq!(err, TdxError::CollateralSignature { item }, "{err}");

        // One hex digit of the signature changed.
        let mut bundle = case.bundle();
        let key = format!("{item}_signature");
        let mut sig = field(&bundle, &key).into_bytes();
        sig[10] = if sig[10] == b'0' { b'1' } else { b'0' };
        set(&mut bundle, &key, String::from_utf8(sig).unwrap());
        rejected(verify(&case.quote, &from_bundle(&bundle)), check);
    }
    // The parsed values do follow the edit (the signature check is what rejects).
    let mut bundle = case.bundle();
    let body = field(&bundle, "tcb_info").replace(
        "\"tcbEvaluationDataNumber\":17",
        "\"tcbEvaluationDataNumber\":18",
    );
    set(&mut bundle, "tcb_info", body);
    assert_eq!(
        from_bundle(&bundle)
            .tcb_info()
            .value()
            .tcb_evaluation_data_number,
        18
    );
}

#[test]
fn collateral_signed_by_another_pki_is_rejected() {
    let case = Case::td10();
    case.assert_verifies();
    let ours = case.bundle();
    let theirs = bundle_of(other_pcs(), &case.coll);
    let splice = |keys: &[&str]| {
        let mut bundle = ours.clone();
        for key in keys {
            set(&mut bundle, key, field(&theirs, key));
        }
        verify(&case.quote, &from_bundle(&bundle)).unwrap_err()
    };
    // The whole collateral of the other PKI: its TCB Signing certificate signed the TCB info
    // but does not chain to the trusted root.
    let err = verify(&case.quote, &other_pcs().collateral(&case.coll).unwrap()).unwrap_err();
    assert_eq!(err.check(), "tcb_info_chain", "{err}");
    assert!(matches!(err, TdxError::Pki { .. }), "{err:?}");
    // Signed by the other TCB Signing key, offered with our issuer chain.
    let err = splice(&["tcb_info", "tcb_info_signature"]);
    assert_eq!(err, TdxError::CollateralSignature { item: "tcb_info" });
    let err = splice(&["qe_identity", "qe_identity_signature"]);
    assert_eq!(
        err,
        TdxError::CollateralSignature {
            item: "qe_identity"
        }
    );
    // Our signed bodies with the other issuer chain: no certificate of it signed them.
    let err = splice(&["tcb_info_issuer_chain"]);
    assert_eq!(err.check(), "tcb_info_signature", "{err}");
    let err = splice(&["qe_identity_issuer_chain"]);
    assert_eq!(err.check(), "qe_identity_signature", "{err}");
    // The other QE identity with its own chain.
    let err = splice(&[
        "qe_identity",
        "qe_identity_signature",
        "qe_identity_issuer_chain",
    ]);
    assert_eq!(err.check(), "qe_identity_chain", "{err}");
    assert!(matches!(err, TdxError::Pki { .. }), "{err:?}");
}

#[test]
fn a_collateral_issuer_chain_without_the_signer_is_rejected() {
    let case = Case::td10();
    case.assert_verifies();
    let root_only = to_pem("CERTIFICATE", pcs().root().der());
    for (item, check) in [
        ("tcb_info", "tcb_info_signature"),
        ("qe_identity", "qe_identity_signature"),
    ] {
        let mut bundle = case.bundle();
        set(
            &mut bundle,
            &format!("{item}_issuer_chain"),
            root_only.clone(),
        );
        rejected(verify(&case.quote, &from_bundle(&bundle)), check);
    }
}

#[test]
fn collateral_signed_by_a_pck_key_is_rejected() {
    // A PCK key lives in a platform: it chains to the root, but must never vouch for TCB
    // levels. Only a certificate the root issued directly signs collateral.
    let case = Case::td10();
    case.assert_verifies();
    let pck_chain = String::from_utf8(
        case.quote
            .signature_data()
            .certification
            .pck_cert_chain
            .clone(),
    )
    .unwrap();
    for (item, check) in [
        ("tcb_info", "tcb_info_chain"),
        ("qe_identity", "qe_identity_chain"),
    ] {
        let mut bundle = case.bundle();
        let body = field(&bundle, item);
        let signature = pck().sign(body.as_bytes()).unwrap();
        set(
            &mut bundle,
            &format!("{item}_signature"),
            tessera::pki::to_hex(&signature),
        );
        set(
            &mut bundle,
            &format!("{item}_issuer_chain"),
            pck_chain.clone(),
        );
        let err = rejected(verify(&case.quote, &from_bundle(&bundle)), check);
        assert!(
            matches!(err, TdxError::SignerPath { check: c, .. } if c == check),
            "{err:?}"
        );
    }
}

#[test]
fn a_long_collateral_issuer_chain_exhausts_the_budget() {
    let case = Case::td10();
    case.assert_verifies();
    let certs = case
        .quote
        .signature_data()
        .certification
        .pck_certificates()
        .unwrap();
    let chain = field(&case.bundle(), "tcb_info_issuer_chain");
    let with_decoys = |decoy: &tessera::pki::Certificate| {
        let mut bundle = case.bundle();
        let decoys: String = (0..40)
            .map(|_| to_pem("CERTIFICATE", decoy.der()))
            .collect();
        set(&mut bundle, "tcb_info_issuer_chain", decoys + &chain);
        from_bundle(&bundle)
    };
    // CA certificates are never collateral signers: skipped without cost.
    verify(&case.quote, &with_decoys(&certs[1])).unwrap();
    // Many end-entity certificates that do not sign the TCB info before the one that does.
    let err = verify(&case.quote, &with_decoys(&certs[0])).unwrap_err();
    assert!(
        matches!(
            err,
            TdxError::Pki {
                source: PkiError::BudgetExhausted,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.check(), "tcb_info_chain", "{err}");
}

#[test]
fn expired_or_not_yet_valid_collateral_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        let collateral = case.collateral();
        let v = verifier();
        let options = VerifyOptions::default();
        // The last second of the window, and the first second after it.
        v.verify(&case.quote, &collateral, SIM_NEXT_UPDATE, &options)
            .unwrap();
        let late = secs(SIM_NEXT_UPDATE, 1);
        let err = rejected(
            v.verify(&case.quote, &collateral, late, &options),
            "collateral_window",
        );
        assert_eq!(
            err,
            TdxError::CollateralWindow {
                item: "tcb_info",
                field: "nextUpdate",
                bound: SIM_NEXT_UPDATE,
                at: late,
            }
        );
        // A fresh verifier says the same.
        assert_eq!(
            verifier()
                .verify(&case.quote, &collateral, late, &options)
                .unwrap_err(),
            err
        );
        // The issue date, and one second before it.
        v.verify(&case.quote, &collateral, SIM_ISSUE_DATE, &options)
            .unwrap();
        let early = secs(SIM_ISSUE_DATE, -1);
        let err = rejected(
            verifier().verify(&case.quote, &collateral, early, &options),
            "collateral_window",
        );
        assert_eq!(
            err,
            TdxError::CollateralWindow {
                item: "tcb_info",
                field: "issueDate",
                bound: SIM_ISSUE_DATE,
                at: early,
            }
        );
    }
}

#[test]
fn a_qe_identity_that_expires_first_bounds_the_window() {
    let case = Case::td10();
    case.assert_verifies();
    let short_next = secs(SIM_ISSUE_DATE, 10 * DAY);
    let mut short = case.coll.clone();
    short.next_update = short_next;
    let short = bundle_of(pcs(), &short);
    let mut bundle = case.bundle();
    for key in ["qe_identity", "qe_identity_signature"] {
        set(&mut bundle, key, field(&short, key));
    }
    let collateral = from_bundle(&bundle);
    let v = verify(&case.quote, &collateral).unwrap();
    assert_eq!(v.verification().valid_until, short_next);
    let late = secs(short_next, 1);
    let err = rejected(
        verifier().verify(&case.quote, &collateral, late, &VerifyOptions::default()),
        "collateral_window",
    );
    assert!(
        matches!(
            err,
            TdxError::CollateralWindow {
                item: "qe_identity",
                field: "nextUpdate",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn crls_outside_their_window_are_rejected() {
    let case = Case::td10();
    case.assert_verifies();
    let crl_next = secs(SIM_ISSUE_DATE, 10 * DAY);
    let collateral = case.collateral_with(|c| c.crl_dates = Some((SIM_ISSUE_DATE, Some(crl_next))));
    let v = verify(&case.quote, &collateral).unwrap();
    assert_eq!(v.verification().valid_until, crl_next);
    let late = secs(crl_next, 1);
    let err = rejected(
        verifier().verify(&case.quote, &collateral, late, &VerifyOptions::default()),
        "collateral_window",
    );
    assert!(
        matches!(
            err,
            TdxError::CollateralWindow {
                item: "root_ca_crl",
                field: "nextUpdate",
                ..
            }
        ),
        "{err:?}"
    );
    // Without the Root CA CRL, the PCK CRL's window.
    let pck_only = case.collateral_with(|c| {
        c.crl_dates = Some((SIM_ISSUE_DATE, Some(crl_next)));
        c.root_ca_crl = false;
    });
    verifier()
        .verify(&case.quote, &pck_only, crl_next, &allow_missing())
        .unwrap();
    let err = rejected(
        verifier().verify(&case.quote, &pck_only, late, &allow_missing()),
        "collateral_window",
    );
    assert!(
        matches!(
            err,
            TdxError::CollateralWindow {
                item: "pck_crl",
                field: "nextUpdate",
                ..
            }
        ),
        "{err:?}"
    );
    // CRLs issued after the verification time.
    let future =
        case.collateral_with(|c| c.crl_dates = Some((secs(AT, 3600), Some(SIM_NEXT_UPDATE))));
    let err = rejected(verify(&case.quote, &future), "collateral_window");
    assert!(
        matches!(
            err,
            TdxError::CollateralWindow {
                field: "thisUpdate",
                ..
            }
        ),
        "{err:?}"
    );
    // A CRL without nextUpdate (Intel always sets it).
    let open = case.collateral_with(|c| c.crl_dates = Some((SIM_ISSUE_DATE, None)));
    let err = rejected(verify(&case.quote, &open), "revocation");
    assert!(
        matches!(
            err,
            TdxError::Pki {
                source: PkiError::CrlNoNextUpdate { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

/// Identity before windows: collateral for another platform, verified when it has also expired,
/// says `tcb_info: fmspc`, the specific cause, not `collateral_window`.
#[test]
fn another_platforms_expired_collateral_says_fmspc_first() {
    let case = Case::td10();
    case.assert_verifies();
    let late = secs(SIM_NEXT_UPDATE, DAY);
    let options = VerifyOptions::default();
    // The right collateral at that time: a window failure.
    let err = rejected(
        verifier().verify(&case.quote, &case.collateral(), late, &options),
        "collateral_window",
    );
    assert!(matches!(err, TdxError::CollateralWindow { .. }), "{err:?}");
    // Another platform's: the FMSPC.
    let other = case.collateral_with(|c| c.fmspc = [1, 2, 3, 4, 5, 6]);
    let err = rejected(
        verifier().verify(&case.quote, &other, late, &options),
        "tcb_info",
    );
    assert!(
        matches!(err, TdxError::TcbInfoMismatch { field: "fmspc", .. }),
        "{err:?}"
    );
}

#[test]
fn tcb_info_of_another_platform_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        let err = rejected(
            verify(
                &case.quote,
                &case.collateral_with(|c| c.fmspc = [1, 2, 3, 4, 5, 6]),
            ),
            "tcb_info",
        );
        assert!(
            matches!(&err, TdxError::TcbInfoMismatch { field: "fmspc", expected, actual }
                if expected == "00806f050000" && actual == "010203040506"),
            "{err:?}"
        );
        let err = rejected(
            verify(&case.quote, &case.collateral_with(|c| c.pce_id = [1, 0])),
            "tcb_info",
        );
        assert!(
            matches!(err, TdxError::TcbInfoMismatch { field: "pceId", .. }),
            "{err:?}"
        );
        // The platform differs from the collateral's, the other way round.
        let platform = PlatformSpec {
            fmspc: [0x00, 0x90, 0xc0, 0x6f, 0x00, 0x00],
            ..PlatformSpec::default()
        };
        let other = pcs().issue_pck(&platform).unwrap();
        let quote = pcs().quote(&other, &case.spec).unwrap();
        let err = rejected(verify(&quote, &case.collateral()), "tcb_info");
        assert!(
            matches!(err, TdxError::TcbInfoMismatch { field: "fmspc", .. }),
            "{err:?}"
        );
        let platform = PlatformSpec {
            pce_id: [0, 1],
            ..PlatformSpec::default()
        };
        let other = pcs().issue_pck(&platform).unwrap();
        let quote = pcs().quote(&other, &case.spec).unwrap();
        let err = rejected(verify(&quote, &case.collateral()), "tcb_info");
        assert!(
            matches!(err, TdxError::TcbInfoMismatch { field: "pceId", .. }),
            "{err:?}"
        );
    }
}

#[test]
fn tcb_info_of_the_other_tee_is_rejected() {
    let platform = &pck().platform;
    let sgx_coll = pcs()
        .collateral(&CollateralSpec::matching(
            platform,
            &QuoteSpec::sgx(),
            TcbStatus::UpToDate,
        ))
        .unwrap();
    let tdx_coll = pcs()
        .collateral(&CollateralSpec::matching(
            platform,
            &QuoteSpec::tdx(),
            TcbStatus::UpToDate,
        ))
        .unwrap();
    assert_eq!(sgx_coll.tcb_info().value().id, TcbInfoId::Sgx);
    assert_eq!(tdx_coll.tcb_info().value().id, TcbInfoId::Tdx);
    for case in Case::all() {
        case.assert_verifies();
        let (wrong, expected, actual) = if case.is_tdx() {
            (&sgx_coll, "TDX", "SGX")
        } else {
            (&tdx_coll, "SGX", "TDX")
        };
        let err = rejected(verify(&case.quote, wrong), "tcb_info");
        assert!(
            matches!(&err, TdxError::TcbInfoMismatch { field: "id", expected: e, actual: a }
                if e == expected && a == actual),
            "{}: {err:?}",
            case.name()
        );
    }
}

#[test]
fn a_quoting_enclave_that_is_not_the_qe_identity_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        let qe_check = |edit: fn(&mut CollateralSpec)| {
            let err = rejected(
                verify(&case.quote, &case.collateral_with(edit)),
                "qe_identity",
            );
            match err {
                TdxError::Tcb(TcbError::QeIdentity { field, .. }) => field,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(qe_check(|c| c.qe.mr_signer[0] ^= 1), "mrsigner");
        assert_eq!(qe_check(|c| c.qe.isv_prod_id += 10), "isvprodid");
        assert_eq!(qe_check(|c| c.qe.misc_select ^= 1), "miscselect");
        assert_eq!(qe_check(|c| c.qe.attributes[0] ^= 0x02), "attributes");
        // As Intel's QVL compares (`report & mask == expected`): an identity expecting a bit
        // outside its attributesMask (the upper 8 bytes) matches no QE.
        assert_eq!(qe_check(|c| c.qe.attributes[12] ^= 0x02), "attributes");
    }
    // The QE identity of the other TEE's quoting enclave (TD_QE vs QE), correctly signed.
    let tdx = Case::td10();
    let sgx = Case::sgx();
    for (case, donor) in [(&tdx, &sgx), (&sgx, &tdx)] {
        let theirs = donor.bundle();
        let mut bundle = case.bundle();
        for key in ["qe_identity", "qe_identity_signature"] {
            set(&mut bundle, key, field(&theirs, key));
        }
        let err = rejected(verify(&case.quote, &from_bundle(&bundle)), "qe_identity");
        assert!(
            matches!(err, TdxError::Tcb(TcbError::QeIdentity { field: "id", .. })),
            "{}: {err:?}",
            case.name()
        );
    }
}

#[test]
fn a_tdx_module_that_is_not_its_identity_is_rejected() {
    for case in [Case::td10(), Case::td15(), Case::td15ex()] {
        case.assert_verifies();
        let module_check = |collateral: Collateral| {
            let err = rejected(verify(&case.quote, &collateral), "tdx_module");
            match err {
                TdxError::Tcb(TcbError::TdxModule { field, .. }) => field,
                other => panic!("{other:?}"),
            }
        };
        // No identity for the quote's module version (TDX_01).
        assert_eq!(
            module_check(case.collateral_with(|c| c.module_identities[0].id = "TDX_02".into())),
            "id"
        );
        assert_eq!(
            module_check(case.collateral_with(|c| {
                let mut second = c.module_identities[0].clone();
                second.id = String::from("TDX_03");
                c.module_identities = vec![second];
            })),
            "id"
        );
        assert_eq!(
            module_check(case.collateral_with(|c| c.module_identities[0].mrsigner[47] ^= 1)),
            "mrsigner"
        );
        assert_eq!(
            module_check(case.collateral_with(|c| c.module_identities[0].attributes[0] = 1)),
            "seam_attributes"
        );
        // A narrower mask whose expected value lies inside it still matches...
        let masked = case.collateral_with(|c| c.module_identities[0].attributes_mask[0] = 0xfe);
        verify(&case.quote, &masked).unwrap();
        // ...but, as Intel's QVL compares (`report & mask == expected`), an identity expecting
        // a bit outside its own mask matches no module.
        assert_eq!(
            module_check(case.collateral_with(|c| {
                c.module_identities[0].attributes[0] = 1;
                c.module_identities[0].attributes_mask[0] = 0xfe;
            })),
            "seam_attributes"
        );
    }
}

#[test]
fn a_version_0_tdx_module_is_matched_against_tdx_module() {
    let mut spec = QuoteSpec::tdx();
    spec.tee_tcb_svn[1] = 0;
    let case = Case::new(spec);
    let v = case.assert_verifies();
    assert!(v.tcb.tdx_module.is_none());
    let err = rejected(
        verify(
            &case.quote,
            &case.collateral_with(|c| c.tdx_module.as_mut().unwrap().mrsigner[0] ^= 1),
        ),
        "tdx_module",
    );
    assert!(
        matches!(
            err,
            TdxError::Tcb(TcbError::TdxModule {
                field: "mrsigner",
                ..
            })
        ),
        "{err:?}"
    );
    let err = rejected(
        verify(
            &case.quote,
            &case.collateral_with(|c| c.tdx_module.as_mut().unwrap().attributes[7] = 0x80),
        ),
        "tdx_module",
    );
    assert!(
        matches!(
            err,
            TdxError::Tcb(TcbError::TdxModule {
                field: "seam_attributes",
                ..
            })
        ),
        "{err:?}"
    );
    // With module version 0 the TDX components 0 and 1 are compared by the platform level.
    let mut low = case.spec.clone();
    low.tee_tcb_svn[0] -= 1;
    let quote = pcs().quote(pck(), &low).unwrap();
    rejected(verify(&quote, &case.collateral()), "tcb_level");
}

// ---------------------------------------------------------------------------------------------
// Revocation
// ---------------------------------------------------------------------------------------------

#[test]
fn a_revoked_pck_is_rejected() {
    for case in Case::all() {
        case.assert_verifies();
        let serial = pck().platform.serial;
        let collateral = case.collateral_with(|c| c.revoked_pcks = vec![serial]);
        let err = rejected(verify(&case.quote, &collateral), "revocation");
        assert!(
            matches!(&err, TdxError::Revoked { crl: "pck_crl", serial: s, .. } if s == "1000"),
            "{err:?}"
        );
        // Allowing missing CRLs does not skip a CRL that is present.
        rejected(
            verifier().verify(&case.quote, &collateral, AT, &allow_missing()),
            "revocation",
        );
        // A CRL that lists other serials only.
        let others = case.collateral_with(|c| c.revoked_pcks = vec![serial + 1, 7]);
        verify(&case.quote, &others).unwrap();
    }
}

#[test]
fn a_revoked_pck_ca_or_tcb_signing_certificate_is_rejected() {
    let case = Case::td10();
    case.assert_verifies();
    let err = rejected(
        verify(
            &case.quote,
            &case.collateral_with(|c| c.revoked_cas = vec![SIM_PCK_CA_SERIAL]),
        ),
        "revocation",
    );
    assert!(
        matches!(&err, TdxError::Revoked { crl: "root_ca_crl", subject, .. }
            if subject.contains("PCK Platform CA")),
        "{err:?}"
    );
    let err = rejected(
        verify(
            &case.quote,
            &case.collateral_with(|c| c.revoked_cas = vec![SIM_TCB_SIGNING_SERIAL]),
        ),
        "revocation",
    );
    assert!(
        matches!(&err, TdxError::Revoked { crl: "root_ca_crl", subject, .. }
            if subject.contains("TCB Signing")),
        "{err:?}"
    );
    // Another serial on the Root CA CRL.
    verify(
        &case.quote,
        &case.collateral_with(|c| c.revoked_cas = vec![99]),
    )
    .unwrap();
}

#[test]
fn missing_crls_need_the_explicit_option() {
    for case in Case::all() {
        case.assert_verifies();
        for (pck_crl, root_ca_crl) in [(false, true), (true, false), (false, false)] {
            let collateral = case.collateral_with(|c| {
                c.pck_crl = pck_crl;
                c.root_ca_crl = root_ca_crl;
            });
            assert!(collateral.is_partial());
            let err = rejected(verify(&case.quote, &collateral), "revocation");
            let missing = if pck_crl { "root_ca_crl" } else { "pck_crl" };
            assert_eq!(err, TdxError::MissingCrl { missing });
            let v = verifier()
                .verify(&case.quote, &collateral, AT, &allow_missing())
                .unwrap();
            assert!(!v.verification().revocation_checked);
            assert_eq!(v.verification().tcb.status, TcbStatus::UpToDate);
        }
        // Complete collateral under the option: revocation is checked.
        let v = verifier()
            .verify(&case.quote, &case.collateral(), AT, &allow_missing())
            .unwrap();
        assert!(v.verification().revocation_checked);
    }
}

#[test]
fn a_pck_crl_of_another_ca_is_rejected() {
    let case = Case::td10();
    case.assert_verifies();
    let ours = case.bundle();
    let theirs = bundle_of(other_pcs(), &case.coll);
    // The PCK CRL of the Processor CA, a sibling of the PCK's issuer under the same root:
    // valid, but it cannot revoke this PCK.
    let processor = case.collateral_with(|c| {
        c.processor_ca_crl = true;
        c.revoked_pcks = vec![7];
    });
    let err = rejected(verify(&case.quote, &processor), "revocation");
    assert!(
        matches!(&err, TdxError::CrlIssuer { crl_issuer, pck_issuer }
            if crl_issuer.contains("PCK Processor CA") && pck_issuer.contains("PCK Platform CA")),
        "{err:?}"
    );
    // The Root CA CRL offered as the PCK CRL: its issuer is the root, not a CA under it.
    let mut bundle = ours.clone();
    set(&mut bundle, "pck_crl", field(&ours, "root_ca_crl"));
    let err = rejected(verify(&case.quote, &from_bundle(&bundle)), "pck_crl_chain");
    assert!(
        matches!(
            err,
            TdxError::SignerPath {
                check: "pck_crl_chain",
                ..
            }
        ),
        "{err:?}"
    );
    // The other PKI's PCK CRL (same issuer name): its signature does not verify.
    let mut bundle = ours.clone();
    set(&mut bundle, "pck_crl", field(&theirs, "pck_crl"));
    let err = rejected(verify(&case.quote, &from_bundle(&bundle)), "revocation");
    assert!(
        matches!(
            err,
            TdxError::Pki {
                source: PkiError::CrlBadSignature { .. },
                ..
            }
        ),
        "{err:?}"
    );
    // A PCK CRL without its issuer chain: its signer would be looked for in no certificate,
    // so the bundle is refused when read, naming the chain, instead of every quote failing
    // its revocation check as if the CRL were forged. Without the CRL too, it is partial.
    let mut bundle = ours.clone();
    bundle.remove("pck_crl_issuer_chain");
    let text = Value::Object(bundle.clone()).to_string();
    assert_eq!(
        Collateral::from_bundle_json(text.as_bytes()).unwrap_err(),
        tessera::tdx::collateral::CollateralError::Missing {
            item: "pck_crl_issuer_chain"
        }
    );
    bundle.remove("pck_crl");
    assert!(from_bundle(&bundle).is_partial());
    // Collateral built from parts with the PCK CRL and no chain: verification names the
    // missing chain, not a forged CRL.
    let mut parts = from_bundle(&ours).into_parts();
    parts.pck_crl_issuer_chain.clear();
    let err = rejected(
        verify(&case.quote, &Collateral::from_parts(parts)),
        "collateral",
    );
    assert_eq!(
        err,
        TdxError::Collateral(tessera::tdx::collateral::CollateralError::Missing {
            item: "pck_crl_issuer_chain"
        })
    );
    let mut bundle = ours.clone();
    set(&mut bundle, "pck_crl", field(&theirs, "pck_crl"));
    // ... nor with its issuer chain: that chain does not reach the trusted root.
    set(
        &mut bundle,
        "pck_crl_issuer_chain",
        field(&theirs, "pck_crl_issuer_chain"),
    );
    let err = rejected(verify(&case.quote, &from_bundle(&bundle)), "pck_crl_chain");
    assert!(matches!(err, TdxError::Pki { .. }), "{err:?}");
    // The other PKI's Root CA CRL.
    let mut bundle = ours.clone();
    set(&mut bundle, "root_ca_crl", field(&theirs, "root_ca_crl"));
    let err = rejected(verify(&case.quote, &from_bundle(&bundle)), "revocation");
    assert!(matches!(err, TdxError::Pki { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Byte flips
// ---------------------------------------------------------------------------------------------

/// The byte ranges of a quote's encoding that are signed or bound: header+body, quote
/// signature, attestation key, QE report, QE report signature, QE auth data (with its length).
fn signed_regions(quote: &Quote, bytes: &[u8]) -> Vec<(&'static str, Range<usize>)> {
    let sd = quote.signature_data();
    let cert = &sd.certification;
    let signed = quote.signed_bytes().len();
    let signature = signed + 4;
    let attestation_key = signature + 64;
    let qe_report = attestation_key + 64 + if quote.version() == 3 { 0 } else { 6 };
    let qe_report_signature = qe_report + 384;
    let auth = qe_report_signature + 64;
    let auth_end = auth + 2 + cert.qe_auth_data.len();
    assert_eq!(&bytes[..signed], quote.signed_bytes());
    assert_eq!(&bytes[signature..attestation_key], &sd.signature);
    assert_eq!(
        &bytes[attestation_key..attestation_key + 64],
        &sd.attestation_key
    );
    assert_eq!(
        &bytes[qe_report..qe_report_signature],
        &cert.qe_report_bytes()
    );
    assert_eq!(&bytes[qe_report_signature..auth], &cert.qe_report_signature);
    assert_eq!(&bytes[auth + 2..auth_end], cert.qe_auth_data.as_slice());
    vec![
        ("header+body", 0..signed),
        ("quote signature", signature..attestation_key),
        ("attestation key", attestation_key..attestation_key + 64),
        ("QE report", qe_report..qe_report_signature),
        ("QE report signature", qe_report_signature..auth),
        ("QE auth data", auth..auth_end),
    ]
}

#[test]
fn every_byte_flip_in_the_signed_parts_is_rejected() {
    let v = verifier();
    let options = VerifyOptions::default();
    for case in Case::all() {
        let collateral = case.collateral();
        let bytes = case.quote.to_bytes();
        let good = v.verify_bytes(&bytes, &collateral, AT, &options).unwrap();
        let regions = signed_regions(&case.quote, &bytes);
        let mut flips = 0;
        for (region, range) in &regions {
            for offset in range.clone() {
                for mask in [0x01u8, 0x80] {
                    let mut flipped = bytes.clone();
                    flipped[offset] ^= mask;
                    let result = v.verify_bytes(&flipped, &collateral, AT, &options);
                    assert!(
                        result.is_err(),
                        "{}: flip {mask:#04x} at {offset} ({region}) verified",
                        case.name()
                    );
                    flips += 1;
                }
            }
        }
        assert!(flips > 2 * 1000, "{}: {flips} flips", case.name());
        // Every other byte (size fields, certification data headers, the PEM chain): never a
        // panic. What still verifies is a flip in the quote's copy of the root certificate
        // (the chain is built to the trust anchor, never to a root the quote brings) or a PEM
        // line break turned into other whitespace, and it verifies exactly as the original.
        let chain = &case.quote.signature_data().certification.pck_cert_chain;
        let chain_start = bytes.len() - chain.len();
        let root_start = chain_start
            + String::from_utf8_lossy(chain)
                .match_indices("-----BEGIN")
                .nth(2)
                .unwrap()
                .0;
        let covered: Vec<Range<usize>> = regions.into_iter().map(|(_, r)| r).collect();
        let mut accepted = 0;
        for offset in (0..bytes.len()).filter(|o| !covered.iter().any(|r| r.contains(o))) {
            let mut flipped = bytes.clone();
            flipped[offset] ^= 0x01;
            if let Ok(other) = v.verify_bytes(&flipped, &collateral, AT, &options) {
                assert!(
                    offset >= root_start || bytes[offset] == b'\n',
                    "{}: flip at {offset} ({:?}) verified",
                    case.name(),
                    char::from(bytes[offset])
                );
                assert_eq!(
                    other.verification(),
                    good.verification(),
                    "{}: flip at {offset}",
                    case.name()
                );
                accepted += 1;
            }
        }
        assert!(accepted < bytes.len() - root_start + 8, "{}", case.name());
    }
}

// ---------------------------------------------------------------------------------------------
// The verifier's caches
// ---------------------------------------------------------------------------------------------

#[test]
fn a_warm_verifier_agrees_with_a_cold_one() {
    for case in Case::all() {
        let v = verifier();
        let collateral = case.collateral();
        let options = VerifyOptions::default();
        let first = v.verify(&case.quote, &collateral, AT, &options).unwrap();
        let again = v.verify(&case.quote, &collateral, AT, &options).unwrap();
        assert_eq!(first, again, "{}", case.name());
        assert_eq!(first, verify(&case.quote, &collateral).unwrap());

        // Another quote of the same PCK (other REPORTDATA, other attestation key).
        let mut spec = case.spec.clone();
        spec.report_data = [0x5a; 64];
        let second = pcs().quote(pck(), &spec).unwrap();
        assert_eq!(
            second.signature_data().certification.pck_cert_chain,
            case.quote.signature_data().certification.pck_cert_chain
        );
        let warm = v.verify(&second, &collateral, AT, &options).unwrap();
        assert_eq!(warm.quote().report_data(), &[0x5a; 64]);
        assert_eq!(warm.verification(), first.verification());

        // Warm, a tampered quote is still rejected.
        let tampered = with_signature_data(&second, |sig| {
            sig.signature = case.quote.signature_data().signature
        });
        rejected(
            v.verify(&tampered, &collateral, AT, &options),
            "quote_signature",
        );
    }
}

#[test]
fn the_caches_never_extend_validity() {
    let case = Case::td15();
    let v = verifier();
    let options = VerifyOptions::default();
    let collateral = case.collateral();
    v.verify(&case.quote, &collateral, AT, &options).unwrap();
    // After the collateral window: rejected, and again after a verification in the window.
    let late = secs(SIM_NEXT_UPDATE, 1);
    for _ in 0..2 {
        rejected(
            v.verify(&case.quote, &collateral, late, &options),
            "collateral_window",
        );
        v.verify(&case.quote, &collateral, AT, &options).unwrap();
    }
    rejected(
        v.verify(&case.quote, &collateral, secs(SIM_ISSUE_DATE, -1), &options),
        "collateral_window",
    );
    // A second quote of the same PCK, late, on the warm verifier.
    let mut spec = case.spec.clone();
    spec.report_data = [1; 64];
    let second = pcs().quote(pck(), &spec).unwrap();
    rejected(
        v.verify(&second, &collateral, late, &options),
        "collateral_window",
    );

    // The cached PCK chain is not reused past its certificates' notAfter, even with
    // collateral valid then.
    let mut coll = case.coll.clone();
    coll.issue_date = secs(SIM_NOT_AFTER, -10 * DAY);
    coll.next_update = secs(SIM_NOT_AFTER, 20 * DAY);
    let far = pcs().collateral(&coll).unwrap();
    v.verify(&case.quote, &far, secs(SIM_NOT_AFTER, -DAY), &options)
        .unwrap();
    v.verify(&case.quote, &far, SIM_NOT_AFTER, &options)
        .unwrap();
    let err = rejected(
        v.verify(&case.quote, &far, secs(SIM_NOT_AFTER, 1), &options),
        "pck_chain",
    );
    assert!(
        matches!(
            err,
            TdxError::Pki {
                source: PkiError::Expired { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_warm_pck_chain_is_still_checked_for_revocation_and_binding() {
    let case = Case::td10();
    let v = verifier();
    let options = VerifyOptions::default();
    v.verify(&case.quote, &case.collateral(), AT, &options)
        .unwrap();
    // The same (cached) PCK chain against collateral that revokes the PCK.
    let serial = pck().platform.serial;
    rejected(
        v.verify(
            &case.quote,
            &case.collateral_with(|c| c.revoked_pcks = vec![serial]),
            AT,
            &options,
        ),
        "revocation",
    );
    // ... or that belongs to another FMSPC, or is missing a CRL.
    rejected(
        v.verify(
            &case.quote,
            &case.collateral_with(|c| c.fmspc = [9; 6]),
            AT,
            &options,
        ),
        "tcb_info",
    );
    rejected(
        v.verify(
            &case.quote,
            &case.collateral_with(|c| c.pck_crl = false),
            AT,
            &options,
        ),
        "revocation",
    );
    // And the cache still serves the good collateral.
    v.verify(&case.quote, &case.collateral(), AT, &options)
        .unwrap();
}

#[test]
fn one_verifier_serves_many_threads() {
    let v = verifier();
    let cases = Case::all();
    let collaterals: Vec<Collateral> = cases.iter().map(Case::collateral).collect();
    let expected: Vec<Verified<Quote>> = cases
        .iter()
        .zip(&collaterals)
        .map(|(c, coll)| verify(&c.quote, coll).unwrap())
        .collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (v, cases, collaterals, expected) = (&v, &cases, &collaterals, &expected);
            s.spawn(move || {
                for i in 0..12 {
                    let k = (i + t) % cases.len();
                    let got = v
                        .verify(
                            &cases[k].quote,
                            &collaterals[k],
                            AT,
                            &VerifyOptions::default(),
                        )
                        .unwrap();
                    assert_eq!(got, expected[k]);
                }
            });
        }
    });
}
