//! Verifying SEV-SNP evidence: the AMD chain, revocation, the report signature, and the checks
//! that bind a report to its endorsement key (signer kind, REPORTED_TCB, CHIP_ID, product).
//!
//! Time, trust anchors, certificates and CRLs are inputs; nothing here does I/O or reads the
//! clock. Success returns [`Verified`], which only this module can make, so later stages
//! (claims, policy) cannot be handed unverified evidence.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tessera_pki::{
    Budget, Certificate, ChainBuilder, Crl, PreparedKey, RawSignatureScheme, UnixTime,
    check_revocation,
};

use crate::SnpError;
use crate::abi::{
    AttestationReport, CertKind, HclHashType, HclReport, Product, SignatureAlgo, SigningKey,
    SnpEvidence, TcbParts,
};
use crate::certs::{
    ProductRoots, VekExtensions, VekKind, embedded_revocation, embedded_roots, is_vek_candidate,
};

/// The AMD roots a [`Verifier`] trusts: the embedded ones, or (dangerously) a caller's.
#[derive(Clone, Debug)]
pub struct TrustAnchors {
    roots: Arc<[ProductRoots]>,
    dangerous: bool,
}

impl TrustAnchors {
    /// AMD's published ARK, ASK and ASVK for Milan, Genoa and Turin, built in.
    ///
    /// # Errors
    /// [`SnpError::EmbeddedRoots`] only if the build's embedded files are broken (tested).
    pub fn amd() -> Result<Self, SnpError> {
        let roots = embedded_roots()?;
        let checked = Self::checked(roots);
        // Every embedded ASK/ASVK must verify under its ARK (a build defect otherwise).
        if checked
            .roots
            .iter()
            .any(|r| r.asks.is_empty() || r.asvks.is_empty())
        {
            return Err(SnpError::EmbeddedRoots(String::from(
                "an embedded ASK/ASVK does not verify",
            )));
        }
        Ok(checked)
    }

    /// Trust the given roots instead of AMD's — for simulators and tests only. Anything these
    /// roots sign verifies, so never feed this from untrusted configuration. Intermediates that
    /// do not verify under their product's ARK are dropped. A product given as a bare ARK (no
    /// ASK and no ASVK) accepts any supplied intermediate that ARK signed, as either kind; with
    /// an ASK or ASVK given, only those are intermediates (as with AMD's roots).
    #[must_use]
    pub fn dangerous_custom(roots: Vec<ProductRoots>) -> Self {
        Self {
            dangerous: true,
            ..Self::checked(roots)
        }
    }

    /// Keep only the intermediates their ARK signed (checked once here, so a chain through a
    /// built-in intermediate costs one signature check per VEK).
    fn checked(mut roots: Vec<ProductRoots>) -> Self {
        for r in &mut roots {
            let ark = r.ark.clone();
            let signed = |c: &Certificate| {
                tessera_pki::verify_issued_by(c, &ark, &mut Budget::default()).is_ok()
            };
            r.asks.retain(signed);
            r.asvks.retain(signed);
        }
        Self {
            roots: roots.into(),
            dangerous: false,
        }
    }

    /// Whether these are caller-supplied (non-AMD) roots.
    #[must_use]
    pub fn is_dangerous(&self) -> bool {
        self.dangerous
    }

    /// The roots, per product.
    #[must_use]
    pub fn products(&self) -> &[ProductRoots] {
        &self.roots
    }

    fn product_of_ark(&self, ark: &Certificate) -> Option<&ProductRoots> {
        self.roots.iter().find(|r| r.ark.der() == ark.der())
    }
}

/// One certificate of a verified chain, summarised.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChainLink {
    /// Subject name.
    pub subject: String,
    /// Serial number (hex).
    pub serial: String,
    /// notBefore (RFC 3339).
    pub not_before: String,
    /// notAfter (RFC 3339).
    pub not_after: String,
}

impl ChainLink {
    fn of(c: &Certificate) -> Self {
        Self {
            subject: c.subject().to_owned(),
            serial: c.serial_hex(),
            not_before: c.not_before().to_string(),
            not_after: c.not_after().to_string(),
        }
    }
}

/// What verification established, beyond the evidence bytes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// The product whose ARK anchors the chain (and which the report and VEK agree with).
    pub product: Product,
    /// Which key signed the report.
    pub signer: VekKind,
    /// REPORTED_TCB decoded in the product's layout (equal to the VEK's TCB).
    pub reported_tcb: TcbParts,
    /// The VEK's AMD extensions.
    pub vek: VekExtensions,
    /// The chain, VEK first, ARK last.
    pub chain: Vec<ChainLink>,
    /// Whether the ARK's CRL (the one that covers the ASK/ASVK) was supplied, current at the
    /// verification time, and applied. The embedded list of revoked intermediates
    /// ([`crate::certs::REVOKED_INTERMEDIATES`]) is applied either way.
    pub revocation_checked: bool,
    /// Whether CHIP_ID was all zeros (masked by the host), so a VCEK's hwID was not compared.
    /// (A VLEK carries no hwID: it is never compared with CHIP_ID, whatever this says.)
    pub chip_id_masked: bool,
    /// Whether the roots were caller-supplied test roots rather than AMD's.
    pub dangerous_test_root: bool,
    /// The verification time (RFC 3339 in JSON).
    #[serde(serialize_with = "ser_display")]
    pub verified_at: UnixTime,
}

fn ser_display<S: serde::Serializer>(t: &UnixTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

/// Evidence that passed verification, with what verification established. Only this module
/// makes values of this type.
#[derive(Clone, Debug)]
pub struct Verified<T> {
    evidence: T,
    verification: Verification,
}

impl<T> Verified<T> {
    /// The verified evidence.
    pub fn evidence(&self) -> &T {
        &self.evidence
    }
    /// What verification established.
    pub fn verification(&self) -> &Verification {
        &self.verification
    }
    /// Both halves.
    pub fn into_parts(self) -> (T, Verification) {
        (self.evidence, self.verification)
    }
}

impl Verified<AttestationReport> {
    /// The verified report.
    #[must_use]
    pub fn report(&self) -> &AttestationReport {
        &self.evidence
    }
}

impl Verified<SnpEvidence> {
    /// The verified report inside the evidence.
    #[must_use]
    pub fn report(&self) -> &AttestationReport {
        self.evidence.report()
    }
}

/// A certificates-only verification result: the chain from a leaf to a pinned ARK.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedChain {
    /// The product of the anchoring ARK.
    pub product: Product,
    /// The chain, leaf first, ARK last.
    pub chain: Vec<ChainLink>,
    /// The leaf's AMD extensions, when the leaf is a VCEK or VLEK.
    pub vek: Option<VekExtensions>,
    /// Whether the ARK's CRL was supplied, current and applied (the embedded list of revoked
    /// intermediates is applied either way).
    pub revocation_checked: bool,
}

/// A VEK whose chain to a pinned ARK has been verified, kept for later reports from the chip.
#[derive(Debug)]
struct Endorsement {
    ext: VekExtensions,
    key: PreparedKey,
    product: Product,
    /// VEK, intermediate, ARK.
    path: [Certificate; 3],
    /// The window in which every certificate of the path is valid.
    valid_from: UnixTime,
    valid_until: UnixTime,
}

const CACHE_CAPACITY: usize = 4096;

/// Verifies SEV-SNP reports; caches verified VEK chains so that many reports from one chip
/// cost one ECDSA verification each. Cheap to share across threads.
#[derive(Debug)]
pub struct Verifier {
    anchors: TrustAnchors,
    cache: RwLock<HashMap<[u8; 32], Arc<Endorsement>>>,
}

fn signer_of(report: &AttestationReport) -> Result<VekKind, SnpError> {
    let info = report.signer_info();
    if info.mask_chip_key() {
        return Err(SnpError::NotSigned("MASK_CHIP_KEY is set"));
    }
    match info.signing_key() {
        SigningKey::Vcek => Ok(VekKind::Vcek),
        SigningKey::Vlek => Ok(VekKind::Vlek),
        SigningKey::None => Err(SnpError::NotSigned("SIGNING_KEY is 7 (none)")),
        SigningKey::Reserved(v) => Err(SnpError::ReservedSigningKey(v)),
    }
}

fn check_product(
    chain: Product,
    other: Option<Product>,
    source: &'static str,
) -> Result<(), SnpError> {
    check_product_of("certificate chain", chain, other, source)
}

/// `a` (what `source_a` says) agrees with `other` (what `source_b` says), when that says.
fn check_product_of(
    source_a: &'static str,
    a: Product,
    other: Option<Product>,
    source_b: &'static str,
) -> Result<(), SnpError> {
    match other {
        Some(b) if b != a => Err(SnpError::ProductMismatch {
            source_a,
            a,
            source_b,
            b,
        }),
        _ => Ok(()),
    }
}

impl Verifier {
    /// A verifier trusting `anchors`.
    #[must_use]
    pub fn new(anchors: TrustAnchors) -> Self {
        Self {
            anchors,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The trust anchors.
    #[must_use]
    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Verify a report against its VCEK or VLEK at time `at`.
    ///
    /// `certs` must hold the VEK (the P-384 certificate of the kind SIGNER_INFO names) and may
    /// hold ASKs/ASVKs (accepted only when a pinned ARK signed them) and ARKs (ignored: only
    /// the pinned ARK anchors). `crls` are applied to the chain; each must be issued by a
    /// certificate on it. `product`, when given, must agree with the chain.
    ///
    /// # Errors
    /// The first failed check, as [`SnpError`] (see [`SnpError::check`]).
    pub fn verify(
        &self,
        report: &AttestationReport,
        certs: &[Certificate],
        crls: &[Crl],
        at: UnixTime,
        product: Option<Product>,
    ) -> Result<Verified<AttestationReport>, SnpError> {
        let verification = self.verify_report(report, certs, crls, at, product)?;
        Ok(Verified {
            evidence: report.clone(),
            verification,
        })
    }

    /// Verify any SNP evidence form: a raw report, an extended report (its certificate table
    /// adds to `certs`), or an Azure HCL report (whose runtime data must be what REPORT_DATA
    /// binds).
    ///
    /// # Errors
    /// As [`Verifier::verify`], plus certificate-table entries that are not certificates and
    /// [`SnpError::HclBinding`].
    pub fn verify_evidence(
        &self,
        evidence: SnpEvidence,
        certs: &[Certificate],
        crls: &[Crl],
        at: UnixTime,
        product: Option<Product>,
    ) -> Result<Verified<SnpEvidence>, SnpError> {
        let mut all: Vec<Certificate> = certs.to_vec();
        if let Some(table) = evidence.certs() {
            for entry in &table.entries {
                if matches!(
                    entry.kind(),
                    CertKind::Vcek
                        | CertKind::Vlek
                        | CertKind::Ask
                        | CertKind::Asvk
                        | CertKind::Ark
                ) {
                    // Entries hold DER (KDS, the SEV firmware) or PEM (configfs-tsm tools);
                    // DER entries may be zero-padded.
                    let mut found = tessera_pki::load_certificates(entry.trimmed())
                        .map_err(SnpError::pki("certificate_table"))?;
                    let cert = match (found.pop(), found.is_empty()) {
                        (Some(c), true) => c,
                        _ => {
                            return Err(SnpError::Pki {
                                check: "certificate_table",
                                source: tessera_pki::PkiError::Der {
                                    what: "certificate table entry",
                                    detail: String::from("expected exactly one certificate"),
                                },
                            });
                        }
                    };
                    all.push(cert);
                }
            }
        }
        let verification = self.verify_report(evidence.report(), &all, crls, at, product)?;
        if let SnpEvidence::Hcl(hcl) = &evidence {
            check_hcl_binding(hcl)?;
        }
        Ok(Verified {
            evidence,
            verification,
        })
    }

    fn verify_report(
        &self,
        report: &AttestationReport,
        certs: &[Certificate],
        crls: &[Crl],
        at: UnixTime,
        product: Option<Product>,
    ) -> Result<Verification, SnpError> {
        // Checks on the report alone.
        let algo = report.signature_algo();
        if algo != SignatureAlgo::ECDSA_P384_SHA384 {
            return Err(SnpError::UnsupportedSignatureAlgo(algo.0));
        }
        let signer = signer_of(report)?;
        let signature = report.signature();
        let sig = signature.to_p1363_be().ok_or(SnpError::SignatureEncoding)?;
        if signature.reserved.iter().any(|b| *b != 0) {
            return Err(SnpError::SignatureReserved);
        }

        // Each VEK held of the kind SIGNER_INFO names is tried, the first that endorses the
        // report wins (several are held when CHIP_ID is masked, or for VLEKs of several
        // providers); when none does, the first one's error is the answer.
        let mut first_error = None;
        for vek in select_veks(certs, signer)?.into_iter().take(MAX_VEKS_TRIED) {
            match self.verify_with_vek(report, vek, certs, crls, at, product, signer, &sig) {
                Ok(verification) => {
                    // Judged once the firmware is known to have signed the bytes: a flipped
                    // byte is first a signature failure.
                    check_reserved(report, verification.product)?;
                    return Ok(verification);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(SnpError::MissingEndorsementKey {
            signer: signer.name(),
        }))
    }

    /// [`Self::verify_report`] with one VEK: its chain, the report's signature under it, and
    /// the report's agreement with it.
    #[allow(clippy::too_many_arguments)] // the parts of one verification, split by the VEK
    fn verify_with_vek(
        &self,
        report: &AttestationReport,
        vek: &Certificate,
        certs: &[Certificate],
        crls: &[Crl],
        at: UnixTime,
        product: Option<Product>,
        signer: VekKind,
        sig: &[u8],
    ) -> Result<Verification, SnpError> {
        // The endorsement key and its chain (cached per VEK). Identity comes first: a report
        // of one product endorsed by another product's key is a product mismatch, reported
        // as such rather than as the signature or validity failure that would follow.
        // A v3+ report says which product it comes from: one that names none known is not
        // taken as agreeing with whatever the chain endorses.
        let report_product = match report.cpuid() {
            Some(cpuid) => Some(Product::from_cpuid(cpuid).ok_or(SnpError::UnknownCpuid {
                family: cpuid.family,
                model: cpuid.model,
            })?),
            None => None,
        };
        let endorsement = self.endorse(vek, certs, at, report_product, product)?;
        let ext = &endorsement.ext;
        let chain_product = endorsement.product;
        check_product(chain_product, product, "caller")?;
        check_product(chain_product, report_product, "report CPUID")?;
        check_product(chain_product, ext.product(), "VEK productName")?;
        if ext.kind() != signer {
            return Err(SnpError::SignerMismatch {
                report: report.signer_info().signing_key(),
                certificate: ext.kind().name(),
            });
        }
        let path: Vec<&Certificate> = endorsement.path.iter().collect();
        let revocation_checked = apply_crls(&path, crls, at)?;

        // Authenticity of the report bytes.
        if !endorsement.key.verify(report.signed_bytes(), sig) {
            return Err(SnpError::ReportSignature {
                signer: signer.name(),
            });
        }

        // The report agrees with its endorsement.
        let cert_tcb = TcbParts {
            fmc: if chain_product.has_fmc() {
                ext.tcb.fmc
            } else {
                None
            },
            ..ext.tcb
        };
        if chain_product.has_fmc() && cert_tcb.fmc.is_none() {
            return Err(SnpError::VekExtension {
                oid: crate::certs::OID_FMC_SPL,
                name: "fmcSPL",
                detail: "missing on a product whose TCB has an FMC SPL",
            });
        }
        let reported = report.reported_tcb();
        if reported != cert_tcb.encode(chain_product) {
            return Err(SnpError::ReportedTcbMismatch {
                signer: signer.name(),
                product: chain_product,
                report: reported.decode(chain_product),
                certificate: cert_tcb,
            });
        }

        // CURRENT_TCB >= REPORTED_TCB, component by component in the product's layout: the
        // host may report an older TCB than it runs (SNP_SET_REPORTED_TCB), never a newer one.
        let current = report.current_tcb().decode(chain_product);
        let reported_parts = reported.decode(chain_product);
        if !tcb_at_least(&current, &reported_parts) {
            return Err(SnpError::CurrentBelowReported {
                product: chain_product,
                current,
                reported: reported_parts,
            });
        }

        let chip_id = report.chip_id();
        let chip_id_masked = chip_id.iter().all(|b| *b == 0);
        // The hwID is 64 bytes, 8 only on Turin: a shorter one on another product would
        // compare a prefix of CHIP_ID alone.
        if let Some(hwid) = &ext.hwid
            && hwid.len() != 64
            && chain_product != Product::Turin
        {
            return Err(SnpError::VekExtension {
                oid: crate::certs::OID_HWID,
                name: "hwID",
                detail: "8 bytes, which only a Turin VCEK has",
            });
        }
        if let (VekKind::Vcek, Some(hwid), false) = (signer, &ext.hwid, chip_id_masked) {
            let prefix = chip_id.get(..hwid.len()).unwrap_or_default();
            if prefix != hwid.as_slice() {
                return Err(SnpError::ChipIdMismatch {
                    report: hex_lower(prefix),
                    certificate: hex_lower(hwid),
                });
            }
        }

        Ok(Verification {
            product: chain_product,
            signer,
            reported_tcb: cert_tcb,
            vek: ext.clone(),
            chain: endorsement.path.iter().map(ChainLink::of).collect(),
            revocation_checked,
            chip_id_masked,
            dangerous_test_root: self.anchors.dangerous,
            verified_at: at,
        })
    }

    /// The verified endorsement for `vek`, from the cache when its chain was verified before
    /// and every link is valid at `at`, else verified now.
    fn endorse(
        &self,
        vek: &Certificate,
        certs: &[Certificate],
        at: UnixTime,
        report_product: Option<Product>,
        caller: Option<Product>,
    ) -> Result<Arc<Endorsement>, SnpError> {
        let key = tessera_pki::sha256(vek.der());
        let cached = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(e) = cached
            && at >= e.valid_from
            && at <= e.valid_until
        {
            return Ok(e);
        }
        let endorsement =
            Arc::new(self.build_endorsement(vek, certs, at, report_product, caller)?);
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&endorsement));
        Ok(endorsement)
    }

    fn build_endorsement(
        &self,
        vek: &Certificate,
        certs: &[Certificate],
        at: UnixTime,
        report_product: Option<Product>,
        caller: Option<Product>,
    ) -> Result<Endorsement, SnpError> {
        let ext = VekExtensions::from_certificate(vek)?;
        // The VEK names its product: a mismatch with the report or the caller is the most
        // specific cause, so it is reported before the chain's signatures and windows.
        if let Some(named) = ext.product() {
            check_product_of("VEK productName", named, report_product, "report CPUID")?;
            check_product_of("VEK productName", named, caller, "caller")?;
        }
        let (path, roots) = self.build_chain(vek, certs, at)?;
        let [_, issuer, ark] = &path;
        check_not_revoked(issuer, ark)?;
        check_issuer_kind(roots, self.anchors.dangerous, issuer, ext.kind())?;
        // The VEK signs reports: a keyUsage, when present, must allow digitalSignature.
        vek.check_signs_data().map_err(SnpError::pki("vek_chain"))?;
        let key = PreparedKey::new(RawSignatureScheme::EcdsaP384Sha384, vek.public_key())
            .map_err(|e| SnpError::VekKey(e.to_string()))?;
        let valid_from = path.iter().map(Certificate::not_before).max().unwrap_or(at);
        let valid_until = path.iter().map(Certificate::not_after).min().unwrap_or(at);
        let product = roots.product;
        let path = [vek.clone(), issuer.clone(), ark.clone()];
        Ok(Endorsement {
            ext,
            key,
            product,
            path,
            valid_from,
            valid_until,
        })
    }

    /// Build `[leaf, intermediate, ARK]` to a pinned ARK. Supplied certificates serve only as
    /// candidate intermediates; the embedded ASKs and ASVKs are always candidates.
    fn build_chain(
        &self,
        leaf: &Certificate,
        certs: &[Certificate],
        at: UnixTime,
    ) -> Result<([Certificate; 3], &ProductRoots), SnpError> {
        let roots = self.anchors.products();
        // Fast path: the VEK's issuer is a built-in intermediate, already verified under its
        // ARK when the anchors were made; one signature check and the validity windows remain.
        for r in roots.iter() {
            for ask in r.asks.iter().chain(r.asvks.iter()) {
                if ask.subject_der() == leaf.issuer_der()
                    && tessera_pki::verify_issued_by(leaf, ask, &mut Budget::new(1)).is_ok()
                {
                    for c in [leaf, ask, &r.ark] {
                        c.check_validity(at).map_err(SnpError::pki("vek_chain"))?;
                    }
                    return Ok(([leaf.clone(), ask.clone(), r.ark.clone()], r));
                }
            }
        }
        let anchors = roots.iter().map(|r| &r.ark);
        let intermediates = roots
            .iter()
            .flat_map(|r| r.asks.iter().chain(r.asvks.iter()))
            .chain(
                certs
                    .iter()
                    .filter(|c| !is_vek_candidate(c) && c.der() != leaf.der()),
            );
        let path = ChainBuilder::new(anchors, intermediates)
            .build(leaf, at, &mut Budget::default())
            .map_err(SnpError::pki("vek_chain"))?;
        let [vek, issuer, ark] = path.as_slice() else {
            return Err(SnpError::IssuerKind {
                vek: "VEK",
                expected: "ASK or ASVK under the ARK",
                issuer: leaf.issuer().to_owned(),
            });
        };
        let product = self.anchors.product_of_ark(ark).ok_or_else(|| {
            SnpError::EmbeddedRoots(String::from("chain ended at an unknown ARK"))
        })?;
        Ok(([(*vek).clone(), (*issuer).clone(), (*ark).clone()], product))
    }

    /// Verify certificates alone (no report): `certs[0]` is the leaf (a VCEK/VLEK, or an
    /// ASK/ASVK), the rest candidate intermediates. The chain must reach a pinned ARK at `at`
    /// and survive `crls`.
    ///
    /// # Errors
    /// [`SnpError::NoCertificate`], chain and revocation failures, malformed VEK extensions.
    pub fn verify_chain(
        &self,
        certs: &[Certificate],
        crls: &[Crl],
        at: UnixTime,
        product: Option<Product>,
    ) -> Result<VerifiedChain, SnpError> {
        let leaf = certs.first().ok_or(SnpError::NoCertificate)?;
        let roots = self.anchors.products();
        let anchors = roots.iter().map(|r| &r.ark);
        // AMD's shape: VEK → ASK/ASVK → ARK. A VEK-like certificate (P-384 leaf) is never a
        // candidate intermediate; the ASKs' pathLenConstraint 0 keeps anything else out.
        let intermediates = roots
            .iter()
            .flat_map(|r| r.asks.iter().chain(r.asvks.iter()))
            .chain(certs.iter().skip(1).filter(|c| !is_vek_candidate(c)));
        let path = ChainBuilder::new(anchors, intermediates)
            .build(leaf, at, &mut Budget::default())
            .map_err(SnpError::pki("vek_chain"))?;
        if is_vek_candidate(leaf) {
            leaf.check_signs_data()
                .map_err(SnpError::pki("vek_chain"))?;
        }
        let ark = path.last().copied().ok_or(SnpError::NoCertificate)?;
        let roots = self.anchors.product_of_ark(ark).ok_or_else(|| {
            SnpError::EmbeddedRoots(String::from("chain ended at an unknown ARK"))
        })?;
        // The certificate the ARK issued (the intermediate, or the leaf when it is one).
        if let [.., issued, _] = path.as_slice() {
            check_not_revoked(issued, ark)?;
        }
        let revocation_checked = apply_crls(&path, crls, at)?;
        check_product(roots.product, product, "caller")?;
        // The same shape and issuer-kind rule as reports: a VEK under an embedded ASK (VCEK)
        // or ASVK (VLEK); anything else under an intermediate is refused; an intermediate
        // (leaf of a two-certificate path) is checked on its own.
        let vek = match path.as_slice() {
            [leaf, issuer, _] => {
                if !is_vek_candidate(leaf) {
                    return Err(SnpError::IssuerKind {
                        vek: "certificate other than a VCEK or VLEK",
                        expected: "ARK (an ASK or ASVK issues only VCEKs or VLEKs)",
                        issuer: issuer.subject().to_owned(),
                    });
                }
                let ext = VekExtensions::from_certificate(leaf)?;
                check_issuer_kind(roots, self.anchors.dangerous, issuer, ext.kind())?;
                check_product(roots.product, ext.product(), "VEK productName")?;
                Some(ext)
            }
            [leaf, ark] if is_vek_candidate(leaf) => {
                return Err(SnpError::IssuerKind {
                    vek: "VEK",
                    expected: "ASK or ASVK",
                    issuer: ark.subject().to_owned(),
                });
            }
            _ => None,
        };
        Ok(VerifiedChain {
            product: roots.product,
            chain: path.iter().map(|c| ChainLink::of(c)).collect(),
            vek,
            revocation_checked,
        })
    }
}

/// Apply `crls` to a verified `path` (`[.., ARK]`); whether one of them was the ARK's own CRL,
/// the one that covers the intermediates (a current CRL: `check_revocation` refuses stale
/// ones and CRLs that apply to nothing on the path).
fn apply_crls(path: &[&Certificate], crls: &[Crl], at: UnixTime) -> Result<bool, SnpError> {
    if crls.is_empty() {
        return Ok(false);
    }
    check_revocation(path, crls, at, &mut Budget::default())
        .map_err(SnpError::pki("revocation"))?;
    let ark_name = path.last().map(|ark| ark.subject_der());
    Ok(crls.iter().any(|c| Some(c.issuer_der()) == ark_name))
}

/// Refuse a certificate the ARK issued that the embedded revocation list names.
fn check_not_revoked(cert: &Certificate, ark: &Certificate) -> Result<(), SnpError> {
    match embedded_revocation(cert, ark) {
        Some(r) => Err(SnpError::RevokedIntermediate {
            subject: cert.subject().to_owned(),
            serial: cert.serial_hex(),
            source_crl: r.source,
        }),
        None => Ok(()),
    }
}

/// A VCEK must be issued by an ASK, a VLEK by an ASVK. The intermediate's kind is known only
/// by its bytes: equal to an ASK or ASVK of the trust anchors. Subject text decides nothing,
/// and an intermediate the anchors do not hold is refused — except under dangerous test
/// anchors that give a bare ARK (no ASK, no ASVK: `--dangerous-test-root`), which trust every
/// intermediate that ARK signed, of either kind.
fn check_issuer_kind(
    roots: &ProductRoots,
    dangerous: bool,
    issuer: &Certificate,
    vek: VekKind,
) -> Result<(), SnpError> {
    if dangerous && roots.asks.is_empty() && roots.asvks.is_empty() {
        return Ok(());
    }
    let is = |list: &[Certificate]| list.iter().any(|c| c.der() == issuer.der());
    let kind = if is(&roots.asks) {
        VekKind::Vcek
    } else if is(&roots.asvks) {
        VekKind::Vlek
    } else {
        return Err(SnpError::UnknownIntermediate {
            subject: issuer.subject().to_owned(),
            serial: issuer.serial_hex(),
        });
    };
    if kind != vek {
        return Err(SnpError::IssuerKind {
            vek: vek.name(),
            expected: match vek {
                VekKind::Vcek => "ASK",
                VekKind::Vlek => "ASVK",
            },
            issuer: issuer.subject().to_owned(),
        });
    }
    Ok(())
}

/// Every component of `a` is at least `b`'s (FMC compared when either has one).
fn tcb_at_least(a: &TcbParts, b: &TcbParts) -> bool {
    a.fmc.unwrap_or(0) >= b.fmc.unwrap_or(0)
        && a.bootloader >= b.bootloader
        && a.tee >= b.tee
        && a.snp >= b.snp
        && a.microcode >= b.microcode
}

/// Most VEKs [`Verifier::verify_report`] tries for one report: bounds the signature checks a
/// report that verifies under none of them costs.
const MAX_VEKS_TRIED: usize = 8;

/// The VEKs to try: the P-384 certificates of the kind SIGNER_INFO names, in the order held.
fn select_veks(certs: &[Certificate], signer: VekKind) -> Result<Vec<&Certificate>, SnpError> {
    let mut candidates = certs.iter().filter(|c| is_vek_candidate(c));
    let first = candidates.next();
    let second = candidates.next();
    match (first, second) {
        (None, _) => Err(SnpError::MissingEndorsementKey {
            signer: signer.name(),
        }),
        // One candidate: its kind is checked against SIGNER_INFO after its chain is verified.
        (Some(only), None) => Ok(vec![only]),
        (Some(_), Some(_)) => {
            let mut other_kind = None;
            let mut of_kind = Vec::new();
            for c in certs.iter().filter(|c| is_vek_candidate(c)) {
                match VekExtensions::from_certificate(c) {
                    Ok(ext) if ext.kind() == signer => of_kind.push(c),
                    Ok(ext) => other_kind = Some(ext.kind()),
                    Err(_) => {}
                }
            }
            if !of_kind.is_empty() {
                return Ok(of_kind);
            }
            Err(match other_kind {
                Some(k) => SnpError::SignerMismatch {
                    report: match signer {
                        VekKind::Vcek => SigningKey::Vcek,
                        VekKind::Vlek => SigningKey::Vlek,
                    },
                    certificate: k.name(),
                },
                None => SnpError::MissingEndorsementKey {
                    signer: signer.name(),
                },
            })
        }
    }
}

/// Azure HCL: REPORT_DATA must be the hash of the runtime data, zero-padded to 64 bytes.
fn check_hcl_binding(hcl: &HclReport) -> Result<(), SnpError> {
    let data = hcl.runtime_data();
    let digest: Vec<u8> = match hcl.hash_type {
        HclHashType::Sha256 => tessera_pki::sha256(data).to_vec(),
        HclHashType::Sha384 => tessera_pki::sha384(data).to_vec(),
        HclHashType::Sha512 => tessera_pki::sha512(data).to_vec(),
        HclHashType::Unknown(_) => {
            return Err(SnpError::HclBinding {
                detail: "unknown report_data_hash_type",
            });
        }
    };
    let report_data = hcl.report.report_data();
    let (head, tail) = report_data.split_at(digest.len().min(report_data.len()));
    if head != digest.as_slice() {
        return Err(SnpError::HclBinding {
            detail: "digest differs",
        });
    }
    if tail.iter().any(|b| *b != 0) {
        return Err(SnpError::HclBinding {
            detail: "bytes after the digest are not zero",
        });
    }
    Ok(())
}

pub(crate) use tessera_pki::to_hex as hex_lower;

/// The report's reserved fields hold what spec 56860 prescribes for its version (as
/// go-sev-guest's `ReportToProto` and `ParseSnpPolicy` require): POLICY bit 17 one and bits
/// 63:26 zero, SIGNER_INFO bits 31:5 zero, the reserved bytes zero (0x04C, 0x188 or 0x18B to
/// 0x19F, 0x1EB, 0x1EF, 0x1F8 or 0x208 to 0x29F), and the reserved bytes of CURRENT_TCB,
/// COMMITTED_TCB and LAUNCH_TCB zero in `product`'s layout (REPORTED_TCB is compared with
/// the VEK's whole). A firmware that gives one of them a meaning (a new POLICY permission,
/// say) is one this verifier does not know, so it refuses the report rather than ignore it.
fn check_reserved(report: &AttestationReport, product: Product) -> Result<(), SnpError> {
    let raw = report.raw();
    let reserved = |field: &'static str, detail: String| Err(SnpError::Reserved { field, detail });
    let policy = report.policy();
    if !policy.reserved_bit17() {
        return reserved("POLICY", String::from("bit 17 is zero (must be one)"));
    }
    if !policy.reserved_bits_zero() {
        return reserved(
            "POLICY",
            format!("bits 63:26 are not zero ({:#018x})", policy.bits()),
        );
    }
    let signer = report.signer_info();
    if !signer.reserved_bits_zero() {
        return reserved(
            "SIGNER_INFO",
            format!("bits 31:5 are not zero ({:#010x})", signer.0),
        );
    }
    let v3 = report.version() >= 3;
    let v5 = report.version() >= 5;
    let (fam, model, step) = ([raw.cpuid_fam_id], [raw.cpuid_mod_id], [raw.cpuid_step]);
    let launch_mit = raw.launch_mit_vector.get().to_le_bytes();
    let current_mit = raw.current_mit_vector.get().to_le_bytes();
    let after_versions = [raw.reserved2, raw.reserved3];
    // The field, when reserved (always, or before the version that defines it) yet not zero.
    let nonzero_unless =
        |defined: bool, field: &'static str, value: &[u8]| -> Option<&'static str> {
            (!defined && value.iter().any(|b| *b != 0)).then_some(field)
        };
    let found = [
        nonzero_unless(false, "0x04C", &raw.reserved0),
        nonzero_unless(v3, "CPUID_FAM_ID (reserved before version 3)", &fam),
        nonzero_unless(v3, "CPUID_MOD_ID (reserved before version 3)", &model),
        nonzero_unless(v3, "CPUID_STEP (reserved before version 3)", &step),
        nonzero_unless(false, "0x18B", &raw.reserved1),
        nonzero_unless(false, "0x1EB, 0x1EF", &after_versions),
        nonzero_unless(
            v5,
            "LAUNCH_MIT_VECTOR (reserved before version 5)",
            &launch_mit,
        ),
        nonzero_unless(
            v5,
            "CURRENT_MIT_VECTOR (reserved before version 5)",
            &current_mit,
        ),
        nonzero_unless(false, "0x208", &raw.reserved4),
    ];
    if let Some(field) = found.into_iter().flatten().next() {
        return reserved(field, String::from("reserved bytes are not zero"));
    }
    for (field, tcb) in [
        ("CURRENT_TCB", report.current_tcb()),
        ("COMMITTED_TCB", report.committed_tcb()),
        ("LAUNCH_TCB", report.launch_tcb()),
    ] {
        if !tcb.reserved_bits_zero(product) {
            return reserved(
                field,
                format!(
                    "has non-zero reserved bytes in the {product} layout ({:#018x})",
                    tcb.0
                ),
            );
        }
    }
    Ok(())
}
