//! SEV-SNP rules applied to a verified report, and strict policies generated from one.

use tessera_snp::Verification;
use tessera_snp::Verified;
use tessera_snp::abi::{AttestationReport, FirmwareVersion, Product, SnpEvidence, TcbParts};
use tessera_snp::certs::VekKind;

use crate::appraisal::{
    Appraisal, Appraise, Behind, Outcome, Rules, Tee, TrustClaim, no_section, verdict_of,
};
use crate::generate::FromEvidence;
use crate::model::{
    FirmwareFloor, GuestPolicyRules, POLICY_VERSION, PerProductTcb, PlatformInfoRules, Policy,
    Revocation, SignerRule, SnpPolicy, TcbFloor,
};
use crate::value::{Bit, Hex, RefList, Setting, U64Hex};

impl Appraise for Verified<AttestationReport> {
    fn appraise_with(&self, policy: &Policy) -> Appraisal {
        appraise_report(self.report(), self.verification(), policy)
    }
}

impl Appraise for Verified<SnpEvidence> {
    fn appraise_with(&self, policy: &Policy) -> Appraisal {
        appraise_report(self.report(), self.verification(), policy)
    }
}

impl FromEvidence for Verified<AttestationReport> {
    fn strict_policy(&self, id: &str) -> Policy {
        strict_policy(self.report(), self.verification(), id)
    }
}

impl FromEvidence for Verified<SnpEvidence> {
    fn strict_policy(&self, id: &str) -> Policy {
        strict_policy(self.report(), self.verification(), id)
    }
}

/// The highest VMPL a guest runs at; a report's VMPL above it was requested by the host.
const MAX_GUEST_VMPL: u32 = 3;

/// Why a policy that trusts an ID block signer must pin an image field; see
/// [`crate::load`]'s signer check.
const SIGNER_NOTE: &str = "the policy trusts an ID block signer (measurement = \"any\", an ID \
     or author key pinned), whose key signs all of its images and versions: pin family_id and \
     image_id (or write \"any\" on purpose) and min_guest_svn (0 accepts every version on \
     purpose)";

fn floor_for(t: &PerProductTcb, product: Product) -> Option<&TcbFloor> {
    match product {
        Product::Milan => t.milan.as_ref(),
        Product::Genoa => t.genoa.as_ref(),
        Product::Turin => t.turin.as_ref(),
    }
}

fn show_parts(p: &TcbParts) -> String {
    let mut s = String::new();
    if let Some(f) = p.fmc {
        s.push_str(&format!("fmc={f} "));
    }
    s.push_str(&format!(
        "bootloader={} tee={} snp={} microcode={}",
        p.bootloader, p.tee, p.snp, p.microcode
    ));
    s
}

fn show_floor(f: &TcbFloor) -> String {
    let mut s = String::new();
    if let Some(v) = f.fmc {
        s.push_str(&format!("fmc>={v} "));
    }
    s.push_str(&format!(
        "bootloader>={} tee>={} snp>={} microcode>={}",
        f.bootloader, f.tee, f.snp, f.microcode
    ));
    s
}

/// The components of `actual` below `floor`, named as operators update them.
fn below(floor: &TcbFloor, actual: &TcbParts, what: &str) -> Vec<Behind> {
    let mut out = Vec::new();
    let mut cmp = |name: &str, need: u8, have: u8| {
        if have < need {
            out.push(Behind {
                component: format!("{name} ({what})"),
                actual: have.to_string(),
                required: need.to_string(),
            });
        }
    };
    if let Some(need) = floor.fmc {
        cmp("FMC firmware", need, actual.fmc.unwrap_or(0));
    }
    cmp("boot loader", floor.bootloader, actual.bootloader);
    cmp("PSP OS (TEE)", floor.tee, actual.tee);
    cmp("SNP firmware", floor.snp, actual.snp);
    cmp("microcode", floor.microcode, actual.microcode);
    out
}

/// A TCB floor rule that fails because the policy's floor cannot judge this product's TCB,
/// with `note` saying why.
fn refuse_floor(
    rules: &mut Rules,
    (rule, field): (&str, &'static str),
    expected: &str,
    shown: String,
    note: String,
) {
    rules
        .check(rule, field, TrustClaim::Hardware, false, expected, shown)
        .note = Some(note);
}

/// A TCB floor rule for one TCB field.
fn tcb_floor(
    rules: &mut Rules,
    rule: &str,
    field: &'static str,
    floors: Option<&Setting<PerProductTcb>>,
    product: Product,
    actual: &TcbParts,
) {
    let shown = format!("{} {}", product.name(), show_parts(actual));
    match floors {
        None => rules.not_checked(rule, field, TrustClaim::Hardware, shown, false),
        Some(Setting::Any) => rules.not_checked(rule, field, TrustClaim::Hardware, shown, true),
        Some(Setting::Is(t)) => match floor_for(t, product) {
            None => refuse_floor(
                rules,
                (rule, field),
                "a floor for this product",
                shown,
                format!(
                    "the policy names no {} floor, so it accepts no {} TCB",
                    product.name().to_ascii_lowercase(),
                    product.name()
                ),
            ),
            // A Turin floor without its FMC component (a policy made in code, not loaded: the
            // loader refuses it) checks no FMC at all: refused, not taken as FMC 0.
            Some(floor) if product == Product::Turin && floor.fmc.is_none() => refuse_floor(
                rules,
                (rule, field),
                "a turin floor with fmc",
                shown,
                String::from("the policy's turin floor names no fmc, so it accepts no Turin TCB"),
            ),
            Some(floor) => {
                let behind = below(floor, actual, field);
                rules.check(
                    rule,
                    field,
                    TrustClaim::Hardware,
                    behind.is_empty(),
                    show_floor(floor),
                    shown,
                );
                rules.behind.extend(behind);
            }
        },
    }
}

fn show_version(v: FirmwareVersion) -> String {
    format!("{}.{}.{}", v.major, v.minor, v.build)
}

fn parts_le(a: &TcbParts, b: &TcbParts) -> bool {
    a.fmc.unwrap_or(0) <= b.fmc.unwrap_or(0)
        && a.bootloader <= b.bootloader
        && a.tee <= b.tee
        && a.snp <= b.snp
        && a.microcode <= b.microcode
}

fn version_key(v: FirmwareVersion) -> (u8, u8, u8) {
    (v.major, v.minor, v.build)
}

#[allow(clippy::too_many_lines)] // one rule after the other, in the policy's order
fn appraise_report(report: &AttestationReport, ver: &Verification, policy: &Policy) -> Appraisal {
    let at = ver.verified_at;
    let Some(p) = &policy.snp else {
        return no_section(policy, Tee::Snp, at, ver.dangerous_test_root);
    };
    let product = ver.product;
    let mut r = Rules::new("snp");
    use TrustClaim::{Configuration, Executables, Hardware, InstanceIdentity, SourcedData};

    // Required rules.
    r.allow_list(
        "measurement",
        "MEASUREMENT",
        Executables,
        &p.measurement,
        report.measurement(),
    );
    let gp = report.policy();
    r.bit(
        "debug",
        "POLICY.DEBUG",
        Configuration,
        Some(p.debug),
        gp.debug_allowed(),
    );
    tcb_floor(
        &mut r,
        "min_tcb",
        "REPORTED_TCB",
        Some(&p.min_tcb),
        product,
        &ver.reported_tcb,
    );
    let signer_shown = match ver.signer {
        VekKind::Vcek => String::from("VCEK"),
        VekKind::Vlek => format!(
            "VLEK of {}",
            ver.vek.csp_id.as_deref().unwrap_or("an unnamed provider")
        ),
    };
    match &p.signer {
        Setting::Any => r.not_checked(
            "signer",
            "SIGNER_INFO.SIGNING_KEY",
            InstanceIdentity,
            signer_shown,
            true,
        ),
        Setting::Is(rule) => {
            let ok = match ver.signer {
                VekKind::Vcek => rule.vcek,
                VekKind::Vlek => ver
                    .vek
                    .csp_id
                    .as_deref()
                    .is_some_and(|csp| rule.vlek_csps.iter().any(|c| c == csp)),
            };
            let mut expected = Vec::new();
            if rule.vcek {
                expected.push(String::from("VCEK"));
            }
            if !rule.vlek_csps.is_empty() {
                expected.push(format!("VLEK of {}", rule.vlek_csps.join(", ")));
            }
            r.check(
                "signer",
                "SIGNER_INFO.SIGNING_KEY",
                InstanceIdentity,
                ok,
                expected.join(" or "),
                signer_shown,
            );
        }
    }

    revocation(&mut r, p.revocation, ver);

    // Optional rules.
    match &p.report_versions {
        None => r.not_checked(
            "report_versions",
            "VERSION",
            Configuration,
            report.version().to_string(),
            false,
        ),
        Some(v) => {
            let ok = v.contains(&report.version());
            let expected = v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            r.check(
                "report_versions",
                "VERSION",
                Configuration,
                ok,
                format!("one of {expected}"),
                report.version().to_string(),
            );
        }
    }
    let launch = report.launch_tcb().decode(product);
    let launch_floor = p.min_launch_tcb.clone().map(Setting::Is);
    tcb_floor(
        &mut r,
        "min_launch_tcb",
        "LAUNCH_TCB",
        launch_floor.as_ref(),
        product,
        &launch,
    );

    let current = report.current_tcb().decode(product);
    let committed = report.committed_tcb().decode(product);
    let (cur_v, com_v) = (report.current_version(), report.committed_version());
    let shown = format!(
        "committed {} ({}), current {} ({})",
        show_version(com_v),
        show_parts(&committed),
        show_version(cur_v),
        show_parts(&current)
    );
    if p.permit_provisional_firmware == Some(true) {
        let ok = parts_le(&committed, &current) && version_key(com_v) <= version_key(cur_v);
        r.check(
            "permit_provisional_firmware",
            "COMMITTED_TCB",
            Hardware,
            ok,
            "committed <= current",
            shown,
        );
    } else {
        let ok = committed == current && com_v == cur_v;
        let res = r.check(
            "permit_provisional_firmware",
            "COMMITTED_TCB",
            Hardware,
            ok,
            "committed == current (no provisional firmware)",
            shown,
        );
        if p.permit_provisional_firmware.is_none() {
            res.note = Some(String::from(
                "checked by default; permit_provisional_firmware = true relaxes it",
            ));
        }
    }
    // One version: (major, minor, build) compared in that order, so 1.55.16 >= 1.42.42.
    let cur_fw = FirmwareFloor {
        major: cur_v.major,
        minor: cur_v.minor,
        build: cur_v.build,
    };
    match p.min_firmware_version {
        None => r.not_checked(
            "min_firmware_version",
            "CURRENT_MAJOR.CURRENT_MINOR.CURRENT_BUILD",
            Hardware,
            String::from(cur_fw),
            false,
        ),
        Some(min) => {
            r.check(
                "min_firmware_version",
                "CURRENT_MAJOR.CURRENT_MINOR.CURRENT_BUILD",
                Hardware,
                cur_fw >= min,
                format!(">= {}", String::from(min)),
                String::from(cur_fw),
            );
        }
    }

    let g = p.guest_policy.clone().unwrap_or_default();
    r.bit(
        "guest_policy.smt",
        "POLICY.SMT",
        Configuration,
        g.smt,
        gp.smt_allowed(),
    );
    r.bit(
        "guest_policy.migration_agent",
        "POLICY.MIGRATE_MA",
        Configuration,
        g.migration_agent,
        gp.migrate_ma(),
    );
    r.bit(
        "guest_policy.single_socket",
        "POLICY.SINGLE_SOCKET",
        Configuration,
        g.single_socket,
        gp.single_socket(),
    );
    r.bit(
        "guest_policy.cxl",
        "POLICY.CXL_ALLOW",
        Configuration,
        g.cxl,
        gp.cxl_allowed(),
    );
    r.bit(
        "guest_policy.aes_256_xts",
        "POLICY.MEM_AES_256_XTS",
        Configuration,
        g.aes_256_xts,
        gp.mem_aes_256_xts(),
    );
    r.bit(
        "guest_policy.rapl_disabled",
        "POLICY.RAPL_DIS",
        Configuration,
        g.rapl_disabled,
        gp.rapl_dis(),
    );
    r.bit(
        "guest_policy.ciphertext_hiding",
        "POLICY.CIPHERTEXT_HIDING_DRAM",
        Configuration,
        g.ciphertext_hiding,
        gp.ciphertext_hiding(),
    );
    r.bit(
        "guest_policy.page_swap_disabled",
        "POLICY.PAGE_SWAP_DISABLE",
        Configuration,
        g.page_swap_disabled,
        gp.page_swap_disable(),
    );

    let pi = report.platform_info();
    let q = p.platform_info.clone().unwrap_or_default();
    r.bit(
        "platform_info.smt",
        "PLATFORM_INFO.SMT_EN",
        Configuration,
        q.smt,
        pi.smt_enabled(),
    );
    r.bit(
        "platform_info.tsme",
        "PLATFORM_INFO.TSME_EN",
        Configuration,
        q.tsme,
        pi.tsme_enabled(),
    );
    r.bit(
        "platform_info.ecc",
        "PLATFORM_INFO.ECC_EN",
        Configuration,
        q.ecc,
        pi.ecc_enabled(),
    );
    r.bit(
        "platform_info.rapl_disabled",
        "PLATFORM_INFO.RAPL_DIS",
        Configuration,
        q.rapl_disabled,
        pi.rapl_disabled(),
    );
    r.bit(
        "platform_info.ciphertext_hiding",
        "PLATFORM_INFO.CIPHERTEXT_HIDING_DRAM_EN",
        Configuration,
        q.ciphertext_hiding,
        pi.ciphertext_hiding_enabled(),
    );
    r.bit(
        "platform_info.alias_check_complete",
        "PLATFORM_INFO.ALIAS_CHECK_COMPLETE",
        Configuration,
        q.alias_check_complete,
        pi.alias_check_complete(),
    );
    r.bit(
        "platform_info.tio",
        "PLATFORM_INFO.TIO_EN",
        Configuration,
        q.tio,
        pi.tio_enabled(),
    );

    match &p.vmpl {
        // A VMPL past 3 is no guest's: the report was asked for by the host
        // (SNP_HV_REPORT_REQ, VMPL 0xFFFFFFFF), with no guest behind its REPORT_DATA. "any"
        // is any guest VMPL, not that.
        Setting::Any if report.vmpl() > MAX_GUEST_VMPL => {
            r.check(
                "vmpl",
                "VMPL",
                Configuration,
                false,
                String::from("a VMPL a guest asks from (0 to 3): \"any\""),
                report.vmpl().to_string(),
            );
        }
        Setting::Any => r.not_checked(
            "vmpl",
            "VMPL",
            Configuration,
            report.vmpl().to_string(),
            true,
        ),
        Setting::Is(list) => {
            let ok = list.values().is_some_and(|v| v.contains(&report.vmpl()));
            let expected = match list.values() {
                Some(v) => format!(
                    "one of {}",
                    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                ),
                None => String::from("values from an unloaded reference file"),
            };
            r.check(
                "vmpl",
                "VMPL",
                Configuration,
                ok,
                expected,
                report.vmpl().to_string(),
            );
        }
    }
    // A policy that trusts an ID block signer must say which of its images and versions (the
    // loader refuses one that does not; a policy built in code is judged the same way here).
    let signer_based = crate::load::snp_signer_based(p);
    let unpinned = |r: &mut Rules, rule: &str, field: &'static str, actual: String| {
        r.unstated(
            rule,
            field,
            Executables,
            "the policy trusts an ID block signer",
            actual,
            SIGNER_NOTE,
        );
    };
    if signer_based && p.min_guest_svn.is_none() {
        unpinned(
            &mut r,
            "min_guest_svn",
            "GUEST_SVN",
            report.guest_svn().to_string(),
        );
    } else {
        r.min(
            "min_guest_svn",
            "GUEST_SVN",
            Executables,
            p.min_guest_svn,
            report.guest_svn(),
        );
    }
    r.opt_allow_list(
        "host_data",
        "HOST_DATA",
        Configuration,
        p.host_data.as_ref(),
        report.host_data(),
    );
    r.opt_allow_list(
        "report_data",
        "REPORT_DATA",
        SourcedData,
        p.report_data.as_ref(),
        report.report_data(),
    );
    for (rule, field, setting, actual) in [
        (
            "family_id",
            "FAMILY_ID",
            p.family_id.as_ref(),
            report.family_id(),
        ),
        (
            "image_id",
            "IMAGE_ID",
            p.image_id.as_ref(),
            report.image_id(),
        ),
    ] {
        if signer_based && setting.is_none() {
            unpinned(&mut r, rule, field, tessera_pki::to_hex(actual));
        } else {
            r.opt_allow_list(rule, field, Executables, setting, actual);
        }
    }
    r.opt_allow_list(
        "id_key_digests",
        "ID_KEY_DIGEST",
        Executables,
        p.id_key_digests.as_ref(),
        report.id_key_digest(),
    );
    r.not_in_list(
        "denied_id_key_digests",
        "ID_KEY_DIGEST",
        Executables,
        p.denied_id_key_digests.as_ref(),
        report.id_key_digest(),
    );
    r.opt_allow_list(
        "author_key_digests",
        "AUTHOR_KEY_DIGEST",
        Executables,
        p.author_key_digests.as_ref(),
        report.author_key_digest(),
    );
    r.not_in_list(
        "denied_author_key_digests",
        "AUTHOR_KEY_DIGEST",
        Executables,
        p.denied_author_key_digests.as_ref(),
        report.author_key_digest(),
    );
    r.opt_allow_list(
        "chip_ids",
        "CHIP_ID",
        InstanceIdentity,
        p.chip_ids.as_ref(),
        report.chip_id(),
    );
    if let Some(res) = r.last_mut().filter(|_| ver.chip_id_masked) {
        res.note = Some(String::from(
            "CHIP_ID is all zeros: the host masked it (MASK_CHIP_ID)",
        ));
    }
    mit_vector(
        &mut r,
        "min_launch_mit_vector",
        "LAUNCH_MIT_VECTOR",
        p.min_launch_mit_vector,
        report.launch_mit_vector(),
        report.version(),
    );
    mit_vector(
        &mut r,
        "min_current_mit_vector",
        "CURRENT_MIT_VECTOR",
        p.min_current_mit_vector,
        report.current_mit_vector(),
        report.version(),
    );

    let (rules, behind) = r.finish();
    Appraisal {
        policy_id: policy.id.clone(),
        tee: Tee::Snp,
        verdict: verdict_of(&rules),
        rules,
        behind,
        advisory_ids: Vec::new(),
        tcb_status: None,
        appraised_at: at,
        dangerous_test_root: ver.dangerous_test_root,
    }
}

/// `snp.revocation`: whether the ARK's CRL must have been applied.
fn revocation(r: &mut Rules, rule: Revocation, ver: &Verification) {
    let actual = if ver.revocation_checked {
        "the ARK's CRL was applied (current at the verification time)"
    } else {
        "no ARK CRL was supplied (embedded revocations only)"
    };
    match rule {
        Revocation::Required => {
            r.check(
                "revocation",
                "ARK CRL",
                TrustClaim::Hardware,
                ver.revocation_checked,
                "a current ARK-signed CRL applied",
                actual,
            );
        }
        Revocation::IfGiven if ver.revocation_checked => {
            r.check(
                "revocation",
                "ARK CRL",
                TrustClaim::Hardware,
                true,
                "the CRL applied when one is given",
                actual,
            );
        }
        Revocation::IfGiven => {
            r.push(
                "revocation",
                "ARK CRL",
                TrustClaim::Hardware,
                Outcome::NotChecked,
                "",
                actual,
            )
            .note = Some(String::from(
                "\"if-given\" in the policy and no CRL was supplied",
            ));
        }
    }
}

fn mit_vector(
    r: &mut Rules,
    rule: &str,
    field: &'static str,
    min: Option<U64Hex>,
    actual: Option<u64>,
    version: u32,
) {
    let shown = actual.map_or_else(|| String::from("absent"), |v| format!("{v:#018x}"));
    match (min, actual) {
        (None, _) => r.not_checked(rule, field, TrustClaim::Hardware, shown, false),
        (Some(m), None) => {
            r.check(
                rule,
                field,
                TrustClaim::Hardware,
                false,
                format!("bits {:#018x} set", m.0),
                shown,
            )
            .note = Some(format!(
                "report version {version} has no mitigation vectors (v5+)"
            ));
        }
        (Some(m), Some(v)) => {
            r.check(
                rule,
                field,
                TrustClaim::Hardware,
                v & m.0 == m.0,
                format!("bits {:#018x} set", m.0),
                shown,
            );
        }
    }
}

fn bit_of(set: bool) -> Option<Bit> {
    Some(if set { Bit::Must } else { Bit::MustNot })
}

fn floor_of(p: &TcbParts) -> TcbFloor {
    TcbFloor {
        fmc: p.fmc,
        bootloader: p.bootloader,
        tee: p.tee,
        snp: p.snp,
        microcode: p.microcode,
    }
}

fn per_product(product: Product, floor: TcbFloor) -> PerProductTcb {
    let mut t = PerProductTcb::default();
    match product {
        Product::Milan => t.milan = Some(floor),
        Product::Genoa => t.genoa = Some(floor),
        Product::Turin => t.turin = Some(floor),
    }
    t
}

fn one<const N: usize>(v: &[u8; N]) -> Setting<RefList<Hex<N>>> {
    Setting::Is(RefList::Values(vec![Hex(*v)]))
}

/// Pins everything the report measured and configured, except REPORT_DATA (fresh per request)
/// and CHIP_ID (pinning it would accept one machine only; add `chip_ids` to do so).
fn strict_policy(report: &AttestationReport, ver: &Verification, id: &str) -> Policy {
    let product = ver.product;
    let gp = report.policy();
    let pi = report.platform_info();
    let cur = report.current_version();
    let provisional =
        report.committed_tcb() != report.current_tcb() || report.committed_version() != cur;
    let signer = match ver.signer {
        VekKind::Vcek => SignerRule {
            vcek: true,
            vlek_csps: Vec::new(),
        },
        VekKind::Vlek => SignerRule {
            vcek: false,
            vlek_csps: ver.vek.csp_id.iter().cloned().collect(),
        },
    };
    let signer = if signer.vcek || !signer.vlek_csps.is_empty() {
        Setting::Is(signer)
    } else {
        // A VLEK without a cspID cannot be pinned by provider; accept VCEKs only.
        Setting::Is(SignerRule {
            vcek: true,
            vlek_csps: Vec::new(),
        })
    };
    let snp = SnpPolicy {
        measurement: one(report.measurement()),
        debug: if gp.debug_allowed() {
            Bit::Must
        } else {
            Bit::MustNot
        },
        min_tcb: Setting::Is(per_product(product, floor_of(&ver.reported_tcb))),
        signer,
        vmpl: Setting::Is(RefList::Values(vec![report.vmpl()])),
        revocation: Revocation::Required,
        report_versions: Some(vec![report.version()]),
        min_launch_tcb: Some(per_product(
            product,
            floor_of(&report.launch_tcb().decode(product)),
        )),
        permit_provisional_firmware: Some(provisional),
        min_firmware_version: Some(FirmwareFloor {
            major: cur.major,
            minor: cur.minor,
            build: cur.build,
        }),
        guest_policy: Some(GuestPolicyRules {
            smt: bit_of(gp.smt_allowed()),
            migration_agent: bit_of(gp.migrate_ma()),
            single_socket: bit_of(gp.single_socket()),
            cxl: bit_of(gp.cxl_allowed()),
            aes_256_xts: bit_of(gp.mem_aes_256_xts()),
            rapl_disabled: bit_of(gp.rapl_dis()),
            ciphertext_hiding: bit_of(gp.ciphertext_hiding()),
            page_swap_disabled: bit_of(gp.page_swap_disable()),
        }),
        platform_info: Some(PlatformInfoRules {
            smt: bit_of(pi.smt_enabled()),
            tsme: bit_of(pi.tsme_enabled()),
            ecc: bit_of(pi.ecc_enabled()),
            rapl_disabled: bit_of(pi.rapl_disabled()),
            ciphertext_hiding: bit_of(pi.ciphertext_hiding_enabled()),
            alias_check_complete: bit_of(pi.alias_check_complete()),
            tio: bit_of(pi.tio_enabled()),
        }),
        min_guest_svn: Some(report.guest_svn()),
        host_data: Some(one(report.host_data())),
        report_data: None,
        family_id: Some(one(report.family_id())),
        image_id: Some(one(report.image_id())),
        id_key_digests: Some(one(report.id_key_digest())),
        denied_id_key_digests: None,
        author_key_digests: Some(one(report.author_key_digest())),
        denied_author_key_digests: None,
        chip_ids: None,
        min_launch_mit_vector: report.launch_mit_vector().map(U64Hex),
        min_current_mit_vector: report.current_mit_vector().map(U64Hex),
    };
    Policy {
        version: POLICY_VERSION,
        id: id.to_owned(),
        snp: Some(snp),
        tdx: None,
        sgx: None,
    }
}
