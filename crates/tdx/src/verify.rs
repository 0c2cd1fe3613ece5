//! Verifying DCAP quotes: the PCK chain to the Intel SGX Root CA, revocation, the QE report and
//! its binding of the attestation key, the quote signature, the collateral's signatures and
//! windows, and Intel's TCB status rules.
//!
//! Time, trust anchors and collateral are inputs; nothing here does I/O or reads the clock.
//! Success returns [`Verified`], which only this module can make.
//!
//! A [`Verifier`] caches what does not change from quote to quote: verified collateral (keyed by
//! [`Collateral::digest`]) and verified PCK chains (keyed by the SHA-256 of the chain's bytes), each
//! with the time window in which every certificate, CRL and collateral item of it is valid.
//! A repeated quote then costs the two ECDSA verifications it cannot avoid (the QE report by
//! the PCK key, the quote by the attestation key) plus hashing.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use tessera_pki::{
    Budget, Certificate, Crl, PreparedKey, PublicKeyKind, RawSignatureScheme, UnixTime, sha256,
};

use crate::TdxError;
use crate::abi::{INTEL_QE_VENDOR_ID, Quote, QuoteBody, TeeType};
use crate::collateral::{Collateral, EnclaveIdentity, Signed, TcbInfo, TcbInfoId};
use crate::pck::PckExtensions;
use crate::tcb::{self, PlatformTcb, QeTcb, TcbEvaluation, TdTcb};

const INTEL_ROOT_PEM: &[u8] = include_bytes!("../roots/intel_sgx_root_ca.pem");

/// SHA-256 of the embedded Intel SGX Root CA's DER encoding (see `roots/README.md`).
pub const INTEL_ROOT_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// The embedded Intel SGX Root CA, parsed and checked against [`INTEL_ROOT_SHA256`] once per
/// process. Collateral parsing uses it too: Intel's issuer chains end in this certificate, and
/// a chain certificate with its exact DER is this one, not a new parse of the same bytes.
///
/// # Errors
/// [`TdxError::EmbeddedRoots`] only if the build's embedded file is broken (tested).
pub(crate) fn intel_root() -> Result<&'static Certificate, TdxError> {
    static ROOT: OnceLock<Result<Certificate, String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let certs = tessera_pki::load_certificates(INTEL_ROOT_PEM).map_err(|e| e.to_string())?;
        let [root] = <[Certificate; 1]>::try_from(certs)
            .map_err(|_| String::from("expected one certificate"))?;
        if tessera_pki::to_hex(&root.sha256()) != INTEL_ROOT_SHA256 {
            return Err(String::from(
                "the embedded Intel root does not match its fingerprint",
            ));
        }
        Ok(root)
    })
    .as_ref()
    .map_err(|e| TdxError::EmbeddedRoots(e.clone()))
}

/// The root a [`Verifier`] trusts: the embedded Intel SGX Root CA, or (dangerously) a caller's.
#[derive(Clone, Debug)]
pub struct TrustAnchors {
    root: Arc<Certificate>,
    dangerous: bool,
}

impl TrustAnchors {
    /// The Intel SGX Root CA, built in.
    ///
    /// # Errors
    /// [`TdxError::EmbeddedRoots`] only if the build's embedded file is broken (tested).
    pub fn intel() -> Result<Self, TdxError> {
        Ok(Self {
            root: Arc::new(intel_root()?.clone()),
            dangerous: false,
        })
    }

    /// Trust `root` instead of Intel's — for simulators and tests only. Anything this root
    /// signs verifies, so never feed this from untrusted configuration.
    #[must_use]
    pub fn dangerous_custom(root: Certificate) -> Self {
        Self {
            root: Arc::new(root),
            dangerous: true,
        }
    }

    /// The root certificate.
    #[must_use]
    pub fn root(&self) -> &Certificate {
        &self.root
    }

    /// Whether this is a caller-supplied (non-Intel) root.
    #[must_use]
    pub fn is_dangerous(&self) -> bool {
        self.dangerous
    }
}

/// Choices a caller makes per verification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Verify collateral that lacks the PCK CRL or the Root CA CRL. The result then says
    /// `revocation_checked: false`; a CRL that is present is still checked.
    pub allow_missing_crls: bool,
}

impl VerifyOptions {
    /// Set [`VerifyOptions::allow_missing_crls`].
    #[must_use]
    pub fn allow_missing_crls(mut self, allow: bool) -> Self {
        self.allow_missing_crls = allow;
        self
    }
}

/// One certificate of a verified chain, summarised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainLink {
    /// Subject name.
    pub subject: String,
    /// Serial number (hex).
    pub serial: String,
    /// notBefore.
    pub not_before: UnixTime,
    /// notAfter.
    pub not_after: UnixTime,
}

impl ChainLink {
    fn of(c: &Certificate) -> Self {
        Self {
            subject: c.subject().to_owned(),
            serial: c.serial_hex(),
            not_before: c.not_before(),
            not_after: c.not_after(),
        }
    }
}

/// What verification established, beyond the quote bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// TDX or SGX.
    pub tee: TeeType,
    /// Intel's TCB status and what it rests on.
    pub tcb: TcbEvaluation,
    /// The PCK certificate's SGX extensions (FMSPC, PCE-ID, platform TCB, ...).
    pub pck: PckExtensions,
    /// The PCK chain, leaf first, ending in the trusted root.
    pub pck_chain: Vec<ChainLink>,
    /// Whether both the PCK CRL and the Root CA CRL were applied.
    pub revocation_checked: bool,
    /// The TCB info's issueDate.
    pub tcb_info_issue_date: UnixTime,
    /// The QE identity's issueDate.
    pub qe_identity_issue_date: UnixTime,
    /// The end of the window in which all collateral and certificates used are valid.
    pub valid_until: UnixTime,
    /// Whether the root is a caller-supplied test root.
    pub dangerous_root: bool,
    /// The verification time the caller gave.
    pub verified_at: UnixTime,
}

/// Evidence that passed verification, with what was established. Only [`Verifier`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
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

    /// Both parts.
    pub fn into_parts(self) -> (T, Verification) {
        (self.evidence, self.verification)
    }
}

impl Verified<Quote> {
    /// The verified quote.
    #[must_use]
    pub fn quote(&self) -> &Quote {
        &self.evidence
    }
}

/// A time window `[from, until]` with the item that bounds each side, for exact errors.
#[derive(Clone, Copy, Debug)]
struct Window {
    item: &'static str,
    from_field: &'static str,
    from: UnixTime,
    until_field: &'static str,
    until: UnixTime,
}

impl Window {
    fn check(&self, at: UnixTime) -> Result<(), TdxError> {
        if at < self.from {
            return Err(TdxError::CollateralWindow {
                item: self.item,
                field: self.from_field,
                bound: self.from,
                at,
            });
        }
        if at > self.until {
            return Err(TdxError::CollateralWindow {
                item: self.item,
                field: self.until_field,
                bound: self.until,
                at,
            });
        }
        Ok(())
    }
}

/// A verified PCK chain.
#[derive(Debug)]
struct PckEntry {
    leaf_key: PreparedKey,
    pck: PckExtensions,
    /// The PCK certificate (shared with the parsed chain; its names are read only for errors).
    leaf: Certificate,
    /// The certificate that issued the PCK (Platform or Processor CA).
    ca: Certificate,
    /// The CA's name and key.
    ca_identity: IssuerIdentity,
    links: Vec<ChainLink>,
    valid_from: UnixTime,
    valid_until: UnixTime,
}

/// A CRL whose signature and issuer chain were verified.
#[derive(Debug)]
struct VerifiedCrl {
    crl: Crl,
    issuer: IssuerIdentity,
}

/// A CA as a CRL or a certificate names it: subject and key. Two encodings of one CA (Intel
/// re-issuing its PCK CA certificate with the same key) are the same issuer.
#[derive(Debug, PartialEq, Eq)]
struct IssuerIdentity {
    subject_der: Box<[u8]>,
    key: Box<[u8]>,
}

impl IssuerIdentity {
    fn of(c: &Certificate) -> Self {
        Self {
            subject_der: c.subject_der().into(),
            key: c.public_key().raw().into(),
        }
    }
}

/// Verified collateral.
#[derive(Debug)]
struct CollateralEntry {
    windows: Vec<Window>,
    pck_crl: Option<VerifiedCrl>,
    root_crl: Option<VerifiedCrl>,
}

const CACHE_CAPACITY: usize = 4096;

/// Verifies DCAP quotes; caches verified collateral and PCK chains. Cheap to share across threads.
#[derive(Debug)]
pub struct Verifier {
    anchors: TrustAnchors,
    pck_cache: RwLock<HashMap<[u8; 32], Arc<PckEntry>>>,
    collateral_cache: RwLock<HashMap<[u8; 32], Arc<CollateralEntry>>>,
    /// SHA-256 of certificates whose signature by the root verified (TCB Signing, PCK CAs):
    /// each is checked once, not once per chain that contains it.
    root_issued: RwLock<HashMap<[u8; 32], ()>>,
}

fn cached<V: Clone>(cache: &RwLock<HashMap<[u8; 32], V>>, key: &[u8; 32]) -> Option<V> {
    cache.read().ok().and_then(|m| m.get(key).cloned())
}

/// Insert into a bounded cache (cleared when full: entries are cheap to recompute).
fn remember<V>(cache: &RwLock<HashMap<[u8; 32], V>>, key: [u8; 32], value: V) {
    if let Ok(mut m) = cache.write() {
        if m.len() >= CACHE_CAPACITY {
            m.clear();
        }
        m.insert(key, value);
    }
}

fn cert_window(item: &'static str, certs: &[&Certificate]) -> Window {
    let from = certs
        .iter()
        .map(|c| c.not_before())
        .max()
        .unwrap_or(UnixTime::from_secs(i64::MIN));
    let until = certs
        .iter()
        .map(|c| c.not_after())
        .min()
        .unwrap_or(UnixTime::from_secs(i64::MAX));
    Window {
        item,
        from_field: "notBefore",
        from,
        until_field: "notAfter",
        until,
    }
}

impl Verifier {
    /// A verifier trusting `anchors`.
    #[must_use]
    pub fn new(anchors: TrustAnchors) -> Self {
        Self {
            anchors,
            pck_cache: RwLock::new(HashMap::new()),
            collateral_cache: RwLock::new(HashMap::new()),
            root_issued: RwLock::new(HashMap::new()),
        }
    }

    /// The trust anchors.
    #[must_use]
    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Parse and verify quote bytes (see [`Verifier::verify`]).
    ///
    /// # Errors
    /// [`TdxError::Parse`], or as [`Verifier::verify`].
    pub fn verify_bytes(
        &self,
        quote: &[u8],
        collateral: &Collateral,
        at: UnixTime,
        options: &VerifyOptions,
    ) -> Result<Verified<Quote>, TdxError> {
        let quote = Quote::parse(quote)?;
        self.verify(&quote, collateral, at, options)
    }

    /// Verify a TDX or SGX quote against `collateral` at time `at`.
    ///
    /// # Errors
    /// The first failed check, as [`TdxError`] (see [`TdxError::check`]). A TCB level that is
    /// not found or Revoked is an error; other TCB statuses verify and are reported in
    /// [`Verification::tcb`] for the policy to judge.
    pub fn verify(
        &self,
        quote: &Quote,
        collateral: &Collateral,
        at: UnixTime,
        options: &VerifyOptions,
    ) -> Result<Verified<Quote>, TdxError> {
        let verification = self.verify_quote(quote, collateral, at, options)?;
        Ok(Verified {
            evidence: quote.clone(),
            verification,
        })
    }

    /// Check `collateral` on its own, before a service holds it: the TCB info and QE identity
    /// signed by a certificate the root issued (valid at `at`), the CRLs signed by the root or
    /// a CA it issued. The dates of the items themselves are not judged here (verification
    /// judges them against each quote); what passes is cached as verified.
    ///
    /// # Errors
    /// The signature or signer-path check that failed, as [`Verifier::verify`] reports it.
    pub fn check_collateral(&self, collateral: &Collateral, at: UnixTime) -> Result<(), TdxError> {
        self.collateral_entry(collateral, at, &mut Budget::new(24))
            .map(|_| ())
    }

    fn verify_quote(
        &self,
        quote: &Quote,
        collateral: &Collateral,
        at: UnixTime,
        options: &VerifyOptions,
    ) -> Result<Verification, TdxError> {
        let header = quote.header();
        if header.qe_vendor_id != INTEL_QE_VENDOR_ID {
            return Err(TdxError::QeVendorId(tessera_pki::to_hex(
                &header.qe_vendor_id,
            )));
        }
        let sig = quote.signature_data();
        let cert_data = &sig.certification;
        let mut budget = Budget::new(24);

        // Identity before authenticity and windows: collateral for another TEE type or another
        // platform is reported as that, not as the signature or window failure it may also have.
        // (Every check below still runs; only the order of the reports is chosen.)
        let tcb_info = collateral.tcb_info().value();
        let qe_identity = collateral.qe_identity().value();
        check_tcb_info_binding(quote, tcb_info.id, tcb_info.version)?;

        // The PCK chain, then the collateral (both cached), then revocation of this PCK.
        let pck = self.pck_entry(&cert_data.pck_cert_chain, collateral, at, &mut budget)?;
        // The collateral belongs to this platform.
        if tcb_info.fmspc != pck.pck.fmspc {
            return Err(TdxError::TcbInfoMismatch {
                field: "fmspc",
                expected: tessera_pki::to_hex(&pck.pck.fmspc),
                actual: tessera_pki::to_hex(&tcb_info.fmspc),
            });
        }
        if tcb_info.pce_id != pck.pck.pce_id {
            return Err(TdxError::TcbInfoMismatch {
                field: "pceId",
                expected: tessera_pki::to_hex(&pck.pck.pce_id),
                actual: tessera_pki::to_hex(&tcb_info.pce_id),
            });
        }
        let coll = self.collateral_entry(collateral, at, &mut budget)?;
        for w in &coll.windows {
            w.check(at)?;
        }

        let revocation_checked = check_pck_revocation(&pck, &coll, options)?;

        // The QE report: signed by the PCK key, binding the attestation key.
        if !pck
            .leaf_key
            .verify(&cert_data.qe_report_bytes(), &cert_data.qe_report_signature)
        {
            return Err(TdxError::QeReportSignature);
        }
        let mut bound = Vec::with_capacity(64 + cert_data.qe_auth_data.len());
        bound.extend_from_slice(&sig.attestation_key);
        bound.extend_from_slice(&cert_data.qe_auth_data);
        let (hash_part, zero_part) = cert_data.qe_report.report_data.split_at(32);
        if sha256(&bound) != hash_part {
            return Err(TdxError::QeReportData {
                field: "report_data[0..32]",
            });
        }
        if zero_part.iter().any(|&b| b != 0) {
            return Err(TdxError::QeReportData {
                field: "report_data[32..64]",
            });
        }

        // The quote: signed by the attestation key.
        let mut point = [0u8; 65];
        let (tag, xy) = point.split_at_mut(1);
        tag.copy_from_slice(&[0x04]);
        xy.copy_from_slice(&sig.attestation_key);
        let key = PreparedKey::from_point(
            RawSignatureScheme::EcdsaP256Sha256,
            PublicKeyKind::EcP256,
            &point,
        )
        .map_err(|_| TdxError::AttestationKey)?;
        if !key.verify(quote.signed_bytes(), &sig.signature) {
            return Err(TdxError::QuoteSignature);
        }

        // Intel's TCB status.
        let platform = PlatformTcb {
            comp_svn: pck.pck.tcb.comp_svn,
            pce_svn: pck.pck.tcb.pce_svn,
        };
        let td = td_tcb(quote.body());
        let qe_report = &cert_data.qe_report;
        let qe = QeTcb {
            mr_signer: qe_report.mr_signer,
            isv_prod_id: qe_report.isv_prod_id,
            isv_svn: qe_report.isv_svn,
            misc_select: qe_report.misc_select,
            attributes: qe_report.attributes.to_bytes(),
        };
        let tcb = tcb::evaluate(tcb_info, qe_identity, &platform, td.as_ref(), &qe)?;

        let valid_until = coll
            .windows
            .iter()
            .map(|w| w.until)
            .chain(core::iter::once(pck.valid_until))
            .min()
            .unwrap_or(pck.valid_until);
        Ok(Verification {
            tee: quote.tee_type(),
            tcb,
            pck: pck.pck.clone(),
            pck_chain: pck.links.clone(),
            revocation_checked,
            tcb_info_issue_date: tcb_info.issue_date,
            qe_identity_issue_date: qe_identity.issue_date,
            valid_until,
            dangerous_root: self.anchors.dangerous,
            verified_at: at,
        })
    }

    /// The PCK chain of a quote, verified (or from the cache when valid at `at`).
    fn pck_entry(
        &self,
        chain: &[u8],
        collateral: &Collateral,
        at: UnixTime,
        budget: &mut Budget,
    ) -> Result<Arc<PckEntry>, TdxError> {
        let key = sha256(chain);
        if let Some(entry) = cached(&self.pck_cache, &key)
            && entry.valid_from <= at
            && at <= entry.valid_until
        {
            return Ok(entry);
        }
        let entry = Arc::new(self.verify_pck_chain(chain, collateral, at, budget)?);
        remember(&self.pck_cache, key, Arc::clone(&entry));
        Ok(entry)
    }

    fn verify_pck_chain(
        &self,
        chain: &[u8],
        collateral: &Collateral,
        at: UnixTime,
        budget: &mut Budget,
    ) -> Result<PckEntry, TdxError> {
        // The quote's chain ends in the root and its PCK CA is usually also the PCK CRL's
        // issuer in the collateral: those are taken as already parsed, not parsed again.
        let known: Vec<&Certificate> = core::iter::once(self.anchors.root())
            .chain(collateral.pck_crl_issuer_chain())
            .collect();
        let certs = tessera_pki::load_certificates_reusing(chain, &known)
            .map_err(TdxError::pki("pck_chain"))?;
        let (leaf, rest) = certs
            .split_first()
            .ok_or_else(|| TdxError::PckChain(String::from("no certificate")))?;
        let root = self.anchors.root();
        if leaf.is_self_issued() {
            return Err(TdxError::PckChain(format!(
                "the PCK certificate {} is self-issued (a root)",
                leaf.subject()
            )));
        }
        // Intel's shape: PCK → PCK Platform/Processor CA → root, nothing shorter or longer.
        let ca = self
            .issuer_under_root(leaf, rest, at, budget)
            .map_err(TdxError::pki("pck_chain"))?;
        let path = [leaf, ca, root];
        // The PCK key signs the QE report.
        leaf.check_signs_data()
            .map_err(TdxError::pki("pck_chain"))?;
        let pck = PckExtensions::from_certificate(leaf)?;
        let leaf_key = PreparedKey::new(RawSignatureScheme::EcdsaP256Sha256, leaf.public_key())
            .map_err(|e| TdxError::PckChain(format!("PCK key: {e}")))?;
        let window = cert_window("pck_chain", &path);
        Ok(PckEntry {
            leaf_key,
            pck,
            leaf: leaf.clone(),
            ca: ca.clone(),
            ca_identity: IssuerIdentity::of(ca),
            links: path.iter().map(|c| ChainLink::of(c)).collect(),
            valid_from: window.from,
            valid_until: window.until,
        })
    }

    /// Verified collateral (or from the cache). Windows are checked by the caller at `at`.
    fn collateral_entry(
        &self,
        collateral: &Collateral,
        at: UnixTime,
        budget: &mut Budget,
    ) -> Result<Arc<CollateralEntry>, TdxError> {
        let key = collateral.digest();
        if let Some(entry) = cached(&self.collateral_cache, &key)
            && entry.windows.iter().all(|w| w.check(at).is_ok())
        {
            return Ok(entry);
        }
        let entry = Arc::new(self.verify_collateral(collateral, at, budget)?);
        remember(&self.collateral_cache, key, Arc::clone(&entry));
        Ok(entry)
    }

    fn verify_collateral(
        &self,
        collateral: &Collateral,
        at: UnixTime,
        budget: &mut Budget,
    ) -> Result<CollateralEntry, TdxError> {
        let root = self.anchors.root();
        let mut windows = Vec::with_capacity(8);
        let mut signers: Vec<(&'static str, Certificate)> = Vec::with_capacity(2);

        let items = [
            (
                "tcb_info",
                "tcb_info_chain",
                collateral.tcb_info().body(),
                collateral.tcb_info().signature(),
                collateral.tcb_info_issuer_chain(),
                collateral.tcb_info().value().issue_date,
                collateral.tcb_info().value().next_update,
            ),
            (
                "qe_identity",
                "qe_identity_chain",
                collateral.qe_identity().body(),
                collateral.qe_identity().signature(),
                collateral.qe_identity_issuer_chain(),
                collateral.qe_identity().value().issue_date,
                collateral.qe_identity().value().next_update,
            ),
        ];
        // Both items are usually signed by the same certificate: its key is prepared once.
        let mut keys: Vec<(Certificate, PreparedKey)> = Vec::with_capacity(1);
        for (item, chain_check, body, signature, chain, issue, next) in items {
            let signer = self.collateral_signer(
                (item, chain_check),
                JsonSignature { body, signature },
                chain,
                at,
                &mut keys,
                budget,
            )?;
            let path = [signer, root];
            windows.push(Window {
                item,
                from_field: "issueDate",
                from: issue,
                until_field: "nextUpdate",
                until: next,
            });
            windows.push(cert_window(chain_check, &path));
            signers.push((item, signer.clone()));
        }

        let root_crl = match collateral.root_ca_crl() {
            None => None,
            Some(crl) => {
                self.check_root_crl_signature(crl, budget)?;
                windows.push(crl_window("root_ca_crl", crl)?);
                Some(VerifiedCrl {
                    crl: crl.clone(),
                    issuer: IssuerIdentity::of(root),
                })
            }
        };
        let pck_crl = match collateral.pck_crl() {
            None => None,
            Some(crl) => {
                let issuer =
                    self.pck_crl_issuer(crl, collateral.pck_crl_issuer_chain(), at, budget)?;
                let path = [issuer, root];
                windows.push(crl_window("pck_crl", crl)?);
                windows.push(cert_window("pck_crl_chain", &path));
                Some(VerifiedCrl {
                    crl: crl.clone(),
                    issuer: IssuerIdentity::of(issuer),
                })
            }
        };
        // The collateral signers themselves must not be revoked by the root.
        if let Some(root_crl) = &root_crl {
            for (_, signer) in &signers {
                if root_crl.crl.is_revoked(signer.serial()) {
                    return Err(TdxError::Revoked {
                        subject: signer.subject().to_owned(),
                        serial: signer.serial_hex(),
                        crl: "root_ca_crl",
                    });
                }
            }
        }
        Ok(CollateralEntry {
            windows,
            pck_crl,
            root_crl,
        })
    }
}

/// One item of Intel's collateral on its own, as a cache fetches them one at a time (see
/// [`Verifier::check_collateral_item`]).
#[derive(Clone, Debug)]
pub enum CollateralItem {
    /// TCB info and the issuer chain that came with it.
    TcbInfo(Signed<TcbInfo>, Vec<Certificate>),
    /// QE identity and the issuer chain that came with it.
    QeIdentity(Signed<EnclaveIdentity>, Vec<Certificate>),
    /// The PCK CRL and the issuer chain that came with it.
    PckCrl(Crl, Vec<Certificate>),
    /// The Root CA CRL (signed by the root).
    RootCaCrl(Crl),
}

impl Verifier {
    /// Check one collateral item on its own, before a service stores it: TCB info and QE
    /// identity signed by a certificate the root issued (valid at `at`), the PCK CRL by a CA
    /// the root issued, the Root CA CRL by the root. As [`Verifier::check_collateral`], the
    /// items' own dates are not judged here, nor is a signer's revocation by the Root CA CRL
    /// (verification judges both).
    ///
    /// # Errors
    /// The signature or signer-path check that failed, named as [`Verifier::verify`] names it.
    pub fn check_collateral_item(
        &self,
        item: &CollateralItem,
        at: UnixTime,
    ) -> Result<(), TdxError> {
        let mut budget = Budget::new(24);
        let json_item = |names, body, signature, chain| {
            self.collateral_signer(
                names,
                JsonSignature { body, signature },
                chain,
                at,
                &mut Vec::with_capacity(1),
                &mut Budget::new(24),
            )
            .map(|_| ())
        };
        match item {
            CollateralItem::TcbInfo(signed, chain) => json_item(
                ("tcb_info", "tcb_info_chain"),
                signed.body(),
                signed.signature(),
                chain,
            ),
            CollateralItem::QeIdentity(signed, chain) => json_item(
                ("qe_identity", "qe_identity_chain"),
                signed.body(),
                signed.signature(),
                chain,
            ),
            CollateralItem::PckCrl(crl, chain) => {
                self.pck_crl_issuer(crl, chain, at, &mut budget).map(|_| ())
            }
            CollateralItem::RootCaCrl(crl) => self.check_root_crl_signature(crl, &mut budget),
        }
    }

    /// The certificate in `chain` that signed a collateral JSON body: one the root issued
    /// directly (Intel's TCB Signing certificate), valid with the root at `at`.
    fn collateral_signer<'c>(
        &self,
        (item, chain_check): (&'static str, &'static str),
        signed: JsonSignature<'_>,
        chain: &'c [Certificate],
        at: UnixTime,
        keys: &mut Vec<(Certificate, PreparedKey)>,
        budget: &mut Budget,
    ) -> Result<&'c Certificate, TdxError> {
        let root = self.anchors.root();
        let signer = find_json_signer(item, chain_check, signed, chain, root, keys, budget)?;
        // Only a certificate the root issued directly signs collateral: a PCK key, which lives
        // in a platform, must never be able to vouch for TCB levels.
        if signer.issuer_der() != root.subject_der() {
            return Err(TdxError::SignerPath {
                check: chain_check,
                detail: format!(
                    "{} is issued by {}, not by the trusted root {}, which issues collateral \
                     signers itself",
                    signer.subject(),
                    signer.issuer(),
                    root.subject()
                ),
            });
        }
        self.root_issued(signer, at, budget)
            .and_then(|()| signer.check_signs_data())
            .map_err(TdxError::pki(chain_check))?;
        Ok(signer)
    }

    /// The Root CA CRL is signed by the root.
    fn check_root_crl_signature(&self, crl: &Crl, budget: &mut Budget) -> Result<(), TdxError> {
        crl.verify_signed_by(self.anchors.root(), budget)
            .map_err(TdxError::pki("revocation"))
    }

    /// The CA in `chain` that signed the PCK CRL: a CA the root issued, valid with the root at
    /// `at`.
    fn pck_crl_issuer<'c>(
        &self,
        crl: &Crl,
        chain: &'c [Certificate],
        at: UnixTime,
        budget: &mut Budget,
    ) -> Result<&'c Certificate, TdxError> {
        let root = self.anchors.root();
        // Collateral read from a bundle or a PCS folder never gets here without the chain (see
        // `refuse_pck_crl_without_chain`); built from parts, it is named as missing rather
        // than taken for a forged CRL.
        if chain.is_empty() {
            return Err(TdxError::Collateral(
                crate::collateral::CollateralError::Missing {
                    item: "pck_crl_issuer_chain",
                },
            ));
        }
        let issuer = chain
            .iter()
            .filter(|c| c.subject_der() == crl.issuer_der())
            .find(|c| crl.verify_signed_by(c, budget).is_ok())
            .ok_or_else(|| TdxError::Pki {
                check: "revocation",
                source: tessera_pki::PkiError::CrlBadSignature {
                    issuer: crl.issuer().to_owned(),
                },
            })?;
        if issuer.issuer_der() != root.subject_der() || issuer.is_self_issued() {
            return Err(TdxError::SignerPath {
                check: "pck_crl_chain",
                detail: format!(
                    "the PCK CRL issuer {} is issued by {}, not by the trusted root {}",
                    issuer.subject(),
                    issuer.issuer(),
                    root.subject()
                ),
            });
        }
        self.root_issued(issuer, at, budget)
            .map_err(TdxError::pki("pck_crl_chain"))?;
        Ok(issuer)
    }

    /// Check that the root issued `cert` (names, CA constraints, signature) and that both are
    /// valid at `at`. The signature check is done once per certificate and remembered.
    fn root_issued(
        &self,
        cert: &Certificate,
        at: UnixTime,
        budget: &mut Budget,
    ) -> Result<(), tessera_pki::PkiError> {
        let root = self.anchors.root();
        cert.check_validity(at)?;
        root.check_validity(at)?;
        let key = cert.sha256();
        if cached(&self.root_issued, &key).is_some() {
            return Ok(());
        }
        tessera_pki::verify_issued_by(cert, root, budget)?;
        remember(&self.root_issued, key, ());
        Ok(())
    }

    /// The certificate among `candidates` that issued `leaf` and that the root issued, both
    /// valid at `at` (chosen by signature, not by name alone).
    fn issuer_under_root<'c>(
        &self,
        leaf: &Certificate,
        candidates: &'c [Certificate],
        at: UnixTime,
        budget: &mut Budget,
    ) -> Result<&'c Certificate, tessera_pki::PkiError> {
        use tessera_pki::PkiError;
        leaf.check_validity(at)?;
        let root = self.anchors.root();
        let mut best: Option<PkiError> = None;
        for ca in candidates
            .iter()
            .filter(|c| c.subject_der() == leaf.issuer_der() && c.der() != root.der())
        {
            // The root stands above one intermediate (the CA): its pathLenConstraint must allow it.
            let checked = tessera_pki::verify_issued_by(leaf, ca, budget)
                .and_then(|()| tessera_pki::check_path_len(root, 1))
                .and_then(|()| self.root_issued(ca, at, budget));
            match checked {
                Ok(()) => return Ok(ca),
                Err(PkiError::BudgetExhausted) => return Err(PkiError::BudgetExhausted),
                Err(e) => {
                    if best.is_none()
                        || matches!(e, PkiError::Expired { .. } | PkiError::NotYetValid { .. })
                    {
                        best = Some(e);
                    }
                }
            }
        }
        Err(best.unwrap_or_else(|| PkiError::UnknownIssuer {
            subject: leaf.subject().to_owned(),
            issuer: leaf.issuer().to_owned(),
        }))
    }
}

fn crl_window(item: &'static str, crl: &Crl) -> Result<Window, TdxError> {
    let until = crl.next_update().ok_or_else(|| TdxError::Pki {
        check: "revocation",
        source: tessera_pki::PkiError::CrlNoNextUpdate {
            issuer: crl.issuer().to_owned(),
        },
    })?;
    Ok(Window {
        item,
        from_field: "thisUpdate",
        from: crl.this_update(),
        until_field: "nextUpdate",
        until,
    })
}

/// A signed collateral body and its `r ‖ s` signature.
struct JsonSignature<'b> {
    body: &'b [u8],
    signature: &'b [u8; 64],
}

/// The certificate of `chain` whose key verifies the JSON signature (by key, not by name).
/// Keys prepared for an earlier item are in `keys` and reused. Running out of budget is a
/// failure of the item's issuer chain (`chain_check`).
fn find_json_signer<'c>(
    item: &'static str,
    chain_check: &'static str,
    signed: JsonSignature<'_>,
    chain: &'c [Certificate],
    root: &Certificate,
    keys: &mut Vec<(Certificate, PreparedKey)>,
    budget: &mut Budget,
) -> Result<&'c Certificate, TdxError> {
    for cert in chain {
        if cert.der() == root.der()
            || cert.is_self_issued()
            || cert.basic_constraints_ca() == Some(true)
            || cert.public_key().kind() != PublicKeyKind::EcP256
        {
            continue;
        }
        budget.spend().map_err(TdxError::pki(chain_check))?;
        let verified = match keys.iter().find(|(c, _)| c == cert) {
            Some((_, key)) => key.verify(signed.body, signed.signature),
            None => {
                let Ok(key) =
                    PreparedKey::new(RawSignatureScheme::EcdsaP256Sha256, cert.public_key())
                else {
                    continue;
                };
                let verified = key.verify(signed.body, signed.signature);
                keys.push((cert.clone(), key));
                verified
            }
        };
        if verified {
            return Ok(cert);
        }
    }
    Err(TdxError::CollateralSignature { item })
}

/// Revocation of the quote's PCK chain by the verified CRLs. Returns whether both were applied.
fn check_pck_revocation(
    pck: &PckEntry,
    coll: &CollateralEntry,
    options: &VerifyOptions,
) -> Result<bool, TdxError> {
    match &coll.pck_crl {
        Some(v) => {
            if v.issuer != pck.ca_identity {
                return Err(TdxError::CrlIssuer {
                    crl_issuer: v.crl.issuer().to_owned(),
                    pck_issuer: pck.leaf.issuer().to_owned(),
                });
            }
            if v.crl.is_revoked(pck.leaf.serial()) {
                return Err(TdxError::Revoked {
                    subject: pck.leaf.subject().to_owned(),
                    serial: tessera_pki::to_hex(tessera_pki::normalize_serial(pck.leaf.serial())),
                    crl: "pck_crl",
                });
            }
        }
        None if !options.allow_missing_crls => {
            return Err(TdxError::MissingCrl { missing: "pck_crl" });
        }
        None => {}
    }
    match &coll.root_crl {
        Some(v) if v.crl.is_revoked(pck.ca.serial()) => {
            return Err(TdxError::Revoked {
                subject: pck.ca.subject().to_owned(),
                serial: tessera_pki::to_hex(tessera_pki::normalize_serial(pck.ca.serial())),
                crl: "root_ca_crl",
            });
        }
        Some(_) => {}
        None if !options.allow_missing_crls => {
            return Err(TdxError::MissingCrl {
                missing: "root_ca_crl",
            });
        }
        None => {}
    }
    Ok(coll.pck_crl.is_some() && coll.root_crl.is_some())
}

/// The TCB info must be for this TEE: "TDX" version 3 for TDX quotes, SGX for SGX quotes.
fn check_tcb_info_binding(quote: &Quote, id: TcbInfoId, version: u32) -> Result<(), TdxError> {
    let tdx = quote.body().td().is_some();
    let (expected, ok) = if tdx {
        ("TDX", id == TcbInfoId::Tdx)
    } else {
        ("SGX", id == TcbInfoId::Sgx)
    };
    if !ok {
        return Err(TdxError::TcbInfoMismatch {
            field: "id",
            expected: expected.to_owned(),
            actual: format!("{id:?}").to_uppercase(),
        });
    }
    // Defence in depth: `TcbInfo::parse_json` yields a TDX id with version 3 only, so no
    // parsed TCB info reaches this; it stays for TCB info built some other way.
    if tdx && version != 3 {
        return Err(TdxError::TcbInfoMismatch {
            field: "version",
            expected: String::from("3"),
            actual: version.to_string(),
        });
    }
    Ok(())
}

fn td_tcb(body: &QuoteBody) -> Option<TdTcb> {
    let td = body.td()?;
    Some(TdTcb {
        tee_tcb_svn: td.tee_tcb_svn,
        mr_signer_seam: td.mr_signer_seam,
        seam_attributes: td.seam_attributes,
        tee_tcb_svn2: body.td15().map(|t| t.tee_tcb_svn2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_root_matches_fingerprint() {
        let anchors = TrustAnchors::intel().unwrap();
        let root = anchors.root();
        assert_eq!(tessera_pki::to_hex(&sha256(root.der())), INTEL_ROOT_SHA256);
        assert!(root.is_self_issued());
        assert_eq!(root.subject(), root.issuer());
        assert!(root.subject().contains("Intel SGX Root CA"));
        tessera_pki::verify_issued_by(root, root, &mut Budget::default()).unwrap();
        assert!(!anchors.is_dangerous());
    }
}
