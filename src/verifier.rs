//! Verifying any [`Evidence`]: one [`Verifier`] holding the SEV-SNP and TDX/SGX verifiers (trust
//! anchors and their caches) and the endorsements, and the TEE-neutral [`VerifiedEvidence`] it
//! makes.
//!
//! Time, anchors and endorsements are inputs; `verify` does no I/O and never reads the clock.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tessera_pki::{Certificate, Crl, UnixTime};
use tessera_policy::{Appraisal, Appraise, FromEvidence, Policy};
use tessera_snp::SnpError;
use tessera_snp::abi::{CertKind, Product, SnpEvidence};
use tessera_snp::certs::{ProductRoots, is_vek_candidate};
use tessera_tdx::TdxError;
use tessera_tdx::abi::Quote;
use tessera_tdx::collateral::{Collateral, TcbInfoId};

use crate::Tee;
use crate::endorsements::{EndorsementError, EndorsementRequest, Endorsements};
use crate::evidence::{Body, Evidence, Form};

/// Building a [`Verifier`] failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The embedded AMD roots did not load (a build defect, never caused by input).
    #[error("SEV-SNP trust anchors: {0}")]
    Snp(#[from] SnpError),
    /// The embedded Intel root did not load (a build defect, never caused by input).
    #[error("TDX trust anchors: {0}")]
    Tdx(#[from] TdxError),
    /// An endorsement directory could not be read.
    #[error("endorsements: {0}")]
    Endorsements(#[from] EndorsementError),
    /// A test root's kind could not be told from its subject.
    #[error("test root {subject:?}: {reason}")]
    TestRoot {
        /// The certificate's subject.
        subject: String,
        /// Why.
        reason: &'static str,
    },
}

/// Verification failed: the first failed check. Nothing here says more about the evidence
/// than which check failed on which field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// An SEV-SNP check failed (see [`SnpError::check`]).
    #[error(transparent)]
    Snp(#[from] SnpError),
    /// A TDX/SGX check failed (see [`TdxError::check`]).
    #[error(transparent)]
    Tdx(#[from] TdxError),
    /// No collateral is held for the quote's platform: configure it, or fetch what
    /// [`Verifier::needed_endorsements`] names.
    #[error("collateral: no {tee} collateral held{}", .fmspc.as_ref().map(|f| format!(" for FMSPC {f}")).unwrap_or_default())]
    MissingCollateral {
        /// `TDX` or `SGX`.
        tee: &'static str,
        /// The quote's FMSPC (hex), when its PCK certificate could be read.
        fmspc: Option<String>,
    },
}

impl VerifyError {
    /// The name of the failed check, stable for scripts (`report_signature`, `pck_chain`,
    /// `collateral`, ...).
    #[must_use]
    pub fn check(&self) -> &'static str {
        match self {
            Self::Snp(e) => e.check(),
            Self::Tdx(e) => e.check(),
            Self::MissingCollateral { .. } => "collateral",
        }
    }

    /// The message led by the check's name (`vek_chain: ...`), for logs and cache entries
    /// refused: most messages already start with it.
    #[must_use]
    pub fn with_check(&self) -> String {
        let text = self.to_string();
        if text.starts_with(self.check()) {
            text
        } else {
            format!("{}: {text}", self.check())
        }
    }

    /// The field the failed check read (see [`SnpError::field`], [`TdxError::field`]).
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::Snp(e) => e.field(),
            Self::Tdx(e) => e.field(),
            Self::MissingCollateral { .. } => "collateral",
        }
    }
}

/// Builds a [`Verifier`]: trust anchors (the vendors' embedded roots; test roots only through
/// the `dangerous_` methods), endorsements and options.
#[derive(Debug, Default)]
#[must_use]
pub struct VerifierBuilder {
    snp_test_roots: Vec<ProductRoots>,
    tdx_test_roots: Vec<Certificate>,
    endorsements: Endorsements,
    crls: Vec<Crl>,
    snp_product: Option<Product>,
    allow_missing_crls: bool,
}

impl VerifierBuilder {
    /// Add endorsements held in memory.
    pub fn endorsements(mut self, endorsements: Endorsements) -> Self {
        self.endorsements.extend(endorsements);
        self
    }

    /// Add certificates (VCEKs, VLEKs, ASKs, ASVKs; ARKs are ignored as anchors). For SEV-SNP
    /// evidence, a VEK given here that is the report's ([`crate::vek_is_for`]: the kind its
    /// SIGNER_INFO names, its reported TCB and, for a VCEK, its chip) is tried first, before any
    /// certificate the evidence carries; when neither those nor the evidence give a VEK, every
    /// VEK given here is offered, so the error names the mismatch.
    pub fn certificates(mut self, certs: impl IntoIterator<Item = Certificate>) -> Self {
        self.endorsements.add_certificates(certs);
        self
    }

    /// Add TDX/SGX collateral (one FMSPC each).
    pub fn collateral(mut self, collateral: Collateral) -> Self {
        self.endorsements.add_collateral(collateral);
        self
    }

    /// CRLs applied to every SEV-SNP chain: each must be issued by a certificate on the chain,
    /// so a CRL of another product rejects the evidence rather than being silently ignored.
    /// (CRLs among [`Endorsements`] are applied only to the chains they belong to.)
    pub fn crls(mut self, crls: impl IntoIterator<Item = Crl>) -> Self {
        self.crls.extend(crls);
        self
    }

    /// Read a directory of VCEKs, certificates, CRLs and collateral now (see
    /// [`Endorsements::from_dir`]); verification never reads it again.
    ///
    /// # Errors
    /// [`BuildError::Endorsements`] naming the file that cannot be read.
    pub fn endorsement_dir(mut self, dir: &Path) -> Result<Self, BuildError> {
        self.endorsements.extend(Endorsements::from_dir(dir)?);
        Ok(self)
    }

    /// SEV-SNP: the product the chain and report must agree with (otherwise any).
    pub fn snp_product(mut self, product: Option<Product>) -> Self {
        self.snp_product = product;
        self
    }

    /// TDX/SGX: verify with collateral that lacks the PCK CRL or Root CA CRL (the result then
    /// says revocation was not checked).
    pub fn allow_missing_crls(mut self, allow: bool) -> Self {
        self.allow_missing_crls = allow;
        self
    }

    /// DANGEROUS: also trust these SEV-SNP roots (simulators, tests). Anything they sign
    /// verifies, flagged `dangerous_test_root`; AMD's roots stay trusted.
    pub fn dangerous_snp_test_roots(
        mut self,
        roots: impl IntoIterator<Item = ProductRoots>,
    ) -> Self {
        self.snp_test_roots.extend(roots);
        self
    }

    /// DANGEROUS: also trust this TDX/SGX root (simulators, tests). Anything it signs verifies,
    /// flagged `dangerous_test_root`; Intel's root stays trusted.
    pub fn dangerous_tdx_test_root(mut self, root: Certificate) -> Self {
        self.tdx_test_roots.push(root);
        self
    }

    /// DANGEROUS: also trust a simulator root of either kind, told apart by its subject: an
    /// AMD-style ARK (`CN=ARK-Milan|Genoa|Turin`) is an SEV-SNP root, anything else a TDX/SGX
    /// root.
    ///
    /// # Errors
    /// [`BuildError::TestRoot`] for a certificate that is not self-issued, or whose signature
    /// its own key does not verify (a leaf or intermediate with a root's names).
    pub fn dangerous_test_root(self, root: Certificate) -> Result<Self, BuildError> {
        let refused = |reason| BuildError::TestRoot {
            subject: root.subject().to_owned(),
            reason,
        };
        if root.subject_der() != root.issuer_der() {
            return Err(refused("a root must be self-issued"));
        }
        tessera_pki::verify_issued_by(&root, &root, &mut tessera_pki::Budget::default())
            .map_err(|_| refused("a root must be signed by its own key"))?;
        let product = root
            .subject()
            .rsplit("ARK-")
            .next()
            .filter(|_| root.subject().contains("ARK-"))
            .and_then(|rest| rest.split([',', ' ']).next())
            .and_then(|p| p.parse::<Product>().ok());
        Ok(match product {
            Some(product) => self.dangerous_snp_test_roots([ProductRoots {
                product,
                ark: root,
                asks: Vec::new(),
                asvks: Vec::new(),
            }]),
            None => self.dangerous_tdx_test_root(root),
        })
    }

    /// The verifier.
    ///
    /// # Errors
    /// [`BuildError::Snp`] / [`BuildError::Tdx`] only if the embedded vendor roots are broken
    /// (a build defect, tested).
    pub fn build(self) -> Result<Verifier, BuildError> {
        let mut snp = vec![tessera_snp::Verifier::new(tessera_snp::TrustAnchors::amd()?)];
        if !self.snp_test_roots.is_empty() {
            snp.push(tessera_snp::Verifier::new(
                tessera_snp::TrustAnchors::dangerous_custom(self.snp_test_roots),
            ));
        }
        let mut tdx = vec![tessera_tdx::Verifier::new(
            tessera_tdx::TrustAnchors::intel()?,
        )];
        for root in self.tdx_test_roots {
            tdx.push(tessera_tdx::Verifier::new(
                tessera_tdx::TrustAnchors::dangerous_custom(root),
            ));
        }
        Ok(Verifier {
            inner: Arc::new(Inner {
                snp,
                tdx,
                carried: RwLock::new(Vec::new()),
                snp_last: AtomicUsize::new(0),
                tdx_last: AtomicUsize::new(0),
                endorsements: RwLock::new(Arc::new(self.endorsements)),
                crls: self.crls,
                snp_product: self.snp_product,
                tdx_options: tessera_tdx::VerifyOptions::default()
                    .allow_missing_crls(self.allow_missing_crls),
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    /// AMD's roots first, then test roots (if any).
    snp: Vec<tessera_snp::Verifier>,
    /// Intel's root first, then test roots (one verifier each).
    tdx: Vec<tessera_tdx::Verifier>,
    /// Certificates that evidence carried, parsed (reused by `load_certificates_reusing`:
    /// parsing the same VCEK and chain on every report was a tenth of a warm verification).
    carried: RwLock<Vec<Certificate>>,
    /// Which of `snp` and `tdx` accepted evidence last (see [`first_success`]).
    snp_last: AtomicUsize,
    tdx_last: AtomicUsize,
    endorsements: RwLock<Arc<Endorsements>>,
    crls: Vec<Crl>,
    snp_product: Option<Product>,
    tdx_options: tessera_tdx::VerifyOptions,
}

/// Verifies evidence of any TEE. Holds the SEV-SNP and TDX/SGX verifiers (their trust anchors
/// and caches of verified chains and collateral) and the endorsements. Cheap to clone and share
/// across threads (an `Arc` inside).
#[derive(Clone, Debug)]
pub struct Verifier {
    inner: Arc<Inner>,
}

/// Most carried certificates kept parsed (a few chips' VCEKs and their chains).
const MAX_CARRIED_CERTS: usize = 64;

fn lock_read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a failure means "not anchored in this verifier's roots" (so another verifier with
/// other roots may still accept the evidence).
fn is_anchor_failure(check: &str) -> bool {
    check.contains("chain")
}

/// Run `verify` with each verifier in order: the first success, else the vendor's error unless
/// it only says the evidence is not anchored in the vendor's roots.
///
/// `last` remembers which verifier succeeded last and is tried first: with test roots beside
/// the vendor's, evidence under a test root would otherwise build (and fail) the vendor chain
/// every time, which is most of a flow's work. Order decides only which error is reported (the
/// ordered pass below runs when the remembered verifier fails), and which verifier accepts
/// when two would: one of them then has test roots, whose results are marked
/// `dangerous_test_root`, the stricter answer.
fn first_success<V, T, E>(
    verifiers: &[V],
    last: &AtomicUsize,
    check: impl Fn(&E) -> &'static str,
    verify: impl Fn(&V) -> Result<T, E>,
) -> Option<Result<T, E>> {
    let hint = last.load(Ordering::Relaxed);
    if hint != 0
        && let Some(v) = verifiers.get(hint)
        && let Ok(t) = verify(v)
    {
        return Some(Ok(t));
    }
    let mut first_err: Option<E> = None;
    for (i, v) in verifiers.iter().enumerate() {
        match verify(v) {
            Ok(t) => {
                last.store(i, Ordering::Relaxed);
                return Some(Ok(t));
            }
            Err(e) => match &first_err {
                None => first_err = Some(e),
                Some(prev) if is_anchor_failure(check(prev)) && !is_anchor_failure(check(&e)) => {
                    first_err = Some(e);
                }
                Some(_) => {}
            },
        }
    }
    first_err.map(Err)
}

impl Verifier {
    /// A builder, starting from the vendors' embedded roots and no endorsements.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// A verifier with the vendors' embedded roots and no endorsements: SEV-SNP evidence must
    /// carry its VCEK/VLEK, and no quote verifies until collateral is added.
    ///
    /// # Errors
    /// As [`VerifierBuilder::build`].
    pub fn new() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    fn endorsements(&self) -> Arc<Endorsements> {
        Arc::clone(
            &self
                .inner
                .endorsements
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Add endorsements (for a fetcher: see [`Self::needed_endorsements`]). Clones of this
    /// verifier share them. Whether any of them was not held yet (the same bytes are held
    /// once).
    pub fn add_endorsements(&self, more: Endorsements) -> bool {
        let mut slot = self
            .inner
            .endorsements
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = Endorsements::clone(&slot);
        next.extend(more);
        if next.same_as(&slot) {
            return false;
        }
        *slot = Arc::new(next);
        true
    }

    /// Check endorsements from a source (a fetcher, a cache) before they are held with
    /// [`Self::add_endorsements`]: each certificate must chain to a trusted ARK at `at` (a
    /// VCEK/VLEK through an ASK/ASVK; a copy of a trusted root or intermediate passes as it
    /// is), each CRL must be signed by a trusted ARK, ASK or ASVK, and each collateral's TCB
    /// info, QE identity and CRLs must be signed under a trusted Intel root. Certificates must
    /// be valid at `at`, and the revocations built into Tessera apply (for collateral, also a
    /// signer revoked by the Root CA CRL that comes with it); whether a CRL or a collateral
    /// item is current is not judged here: verification judges that for each piece of
    /// evidence.
    ///
    /// Why: a held VEK or collateral counts as present, so one that is forged but looks fresh
    /// (a source reached through a broken TLS path, a writable cache directory) would refuse
    /// every guest it applies to, and [`Self::needed_endorsements_at`] would never ask for
    /// the genuine one. Vetted endorsements can still fail verification, but not for their
    /// signatures.
    ///
    /// # Errors
    /// The first endorsement that fails, as verification would report it (`vek_chain`,
    /// `revocation`, `tcb_info_chain`, ...).
    pub fn vet_endorsements(&self, more: &Endorsements, at: UnixTime) -> Result<(), VerifyError> {
        let roots: Vec<&Certificate> = self
            .inner
            .snp
            .iter()
            .flat_map(|v| v.anchors().products())
            .flat_map(|r| {
                std::iter::once(&r.ark)
                    .chain(r.asks.iter())
                    .chain(r.asvks.iter())
            })
            .collect();
        let intermediates: Vec<&Certificate> = more
            .certificates()
            .iter()
            .filter(|c| !is_vek_candidate(c))
            .collect();
        for cert in more.certificates() {
            if roots.iter().any(|r| r.der() == cert.der()) {
                continue;
            }
            let mut chain = vec![cert.clone()];
            chain.extend(
                intermediates
                    .iter()
                    .filter(|c| c.der() != cert.der())
                    .map(|c| (*c).clone()),
            );
            let last = AtomicUsize::new(0);
            first_success(&self.inner.snp, &last, SnpError::check, |v| {
                v.verify_chain(&chain, &[], at, None)
            })
            .unwrap_or(Err(SnpError::NoCertificate))
            .map_err(VerifyError::Snp)?;
        }
        for crl in more.crls() {
            let mut budget = tessera_pki::Budget::default();
            let mut refused = None;
            let signed = roots
                .iter()
                .filter(|r| r.subject_der() == crl.issuer_der())
                .any(|r| match crl.verify_signed_by(r, &mut budget) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                });
            if !signed {
                return Err(VerifyError::Snp(SnpError::Pki {
                    check: "revocation",
                    // A trusted certificate of that name whose key did not sign it, or none.
                    source: refused.unwrap_or_else(|| tessera_pki::PkiError::CrlUntrustedIssuer {
                        issuer: crl.issuer().to_owned(),
                    }),
                }));
            }
        }
        for collateral in more.collateral() {
            let last = AtomicUsize::new(0);
            first_success(&self.inner.tdx, &last, TdxError::check, |v| {
                v.check_collateral(collateral, at)
            })
            .unwrap_or_else(|| Err(TdxError::EmbeddedRoots(String::from("no TDX verifier"))))
            .map_err(VerifyError::Tdx)?;
        }
        Ok(())
    }

    /// [`Self::vet_endorsements`] for one item of Intel's collateral on its own, as a cache
    /// fetches them one at a time (a [`Self::vet_endorsements`] collateral needs all of them):
    /// TCB info and QE identity signed by a certificate a trusted Intel root issued, valid at
    /// `at`; the PCK CRL by a CA such a root issued; the Root CA CRL by the root.
    ///
    /// # Errors
    /// The check that failed (`tcb_info_chain`, `qe_identity_signature`, `revocation`, ...).
    pub fn vet_collateral_item(
        &self,
        item: &tessera_tdx::CollateralItem,
        at: UnixTime,
    ) -> Result<(), VerifyError> {
        let last = AtomicUsize::new(0);
        first_success(&self.inner.tdx, &last, TdxError::check, |v| {
            v.check_collateral_item(item, at)
        })
        .unwrap_or_else(|| Err(TdxError::EmbeddedRoots(String::from("no TDX verifier"))))
        .map_err(VerifyError::Tdx)
    }

    /// What `evidence` needs that this verifier does not hold: the VEK of an SEV-SNP report that
    /// carries none, or the collateral for a quote's FMSPC. `None` when nothing is missing (or
    /// nothing could be told). Collateral held counts whatever its dates; a long-running
    /// service asks [`Self::needed_endorsements_at`] instead.
    #[must_use]
    pub fn needed_endorsements(&self, evidence: &Evidence) -> Option<EndorsementRequest> {
        self.needed(evidence, None)
    }

    /// [`Self::needed_endorsements`] at verification time `at`: collateral held for the quote's
    /// FMSPC that is past its next update then (TCB info, QE identity or a CRL) counts as
    /// missing, and so does an SEV-SNP report's CRL while a held one is stale with no newer one
    /// ([`EndorsementRequest::SnpCrl`] when its VEK is held, else the VEK too),
    /// so that a service holding endorsements from its first guests asks its source again once
    /// they expire (the newest collateral held for an FMSPC, and the newest current CRL of each
    /// issuer, are the ones used).
    #[must_use]
    pub fn needed_endorsements_at(
        &self,
        evidence: &Evidence,
        at: UnixTime,
    ) -> Option<EndorsementRequest> {
        self.needed(evidence, Some(at))
    }

    /// What to ask an endorsement source for to learn of newer endorsements for `evidence`
    /// than those held, even when nothing is missing: the ARK's CRL of an SEV-SNP report whose
    /// VEK is held or carried ([`EndorsementRequest::SnpCrl`]; else its endorsements), the
    /// collateral of a quote's FMSPC. For a long-running service that checks its source
    /// every so often, so that a CRL revoking a chip, or TCB info of a newer evaluation, is
    /// applied once its source has it rather than when the one held expires. `None` when
    /// nothing could be told (a v2 report of no known product, a quote without a PCK
    /// certificate).
    #[must_use]
    pub fn endorsements_to_recheck(&self, evidence: &Evidence) -> Option<EndorsementRequest> {
        self.needed_or_recheck(evidence, None, true)
    }

    fn needed(&self, evidence: &Evidence, at: Option<UnixTime>) -> Option<EndorsementRequest> {
        self.needed_or_recheck(evidence, at, false)
    }

    fn needed_or_recheck(
        &self,
        evidence: &Evidence,
        at: Option<UnixTime>,
        recheck: bool,
    ) -> Option<EndorsementRequest> {
        let store = self.endorsements();
        match &evidence.body {
            Body::Snp {
                evidence: snp,
                cert_chain,
            } => {
                let vek_held =
                    carries_vek(snp, cert_chain) || !store.veks_for(snp.report()).is_empty();
                // A held CRL gone stale (with no newer one) fails every report on its chain:
                // ask again, and the source's current CRL supersedes it.
                let stale_crl = at.is_some_and(|at| store.has_stale_crl(at));
                if vek_held && !stale_crl && !recheck {
                    return None;
                }
                let report = snp.report();
                let kind = match report.signer_info().signing_key() {
                    tessera_snp::abi::SigningKey::Vcek => tessera_snp::certs::VekKind::Vcek,
                    tessera_snp::abi::SigningKey::Vlek => tessera_snp::certs::VekKind::Vlek,
                    _ => return None,
                };
                // Only where to ask: verification checks the product against the chain.
                // A v2 report does not say it; the configured product, or a held or carried
                // VEK's productName, may.
                let product = report
                    .cpuid()
                    .and_then(Product::from_cpuid)
                    .or(self.inner.snp_product)
                    .or_else(|| vek_product(&store, snp, cert_chain));
                if vek_held {
                    return Some(EndorsementRequest::SnpCrl { kind, product });
                }
                Some(EndorsementRequest::SnpVek {
                    kind,
                    product,
                    chip_id: *report.chip_id(),
                    reported_tcb: report.reported_tcb().0,
                })
            }
            Body::Quote { quote, tee, .. } => {
                let id = tcb_info_id(*tee);
                let fmspc = fmspc_of(quote)?;
                (recheck || !store.has_collateral(id, fmspc, at)).then_some(
                    EndorsementRequest::TdxCollateral {
                        tee: id.as_str(),
                        fmspc,
                    },
                )
            }
        }
    }

    /// Verify `evidence` at time `at`: the vendor chain, revocation where CRLs are held, the
    /// signature, and (TDX/SGX) Intel's collateral and TCB status.
    ///
    /// # Errors
    /// The first failed check ([`VerifyError::check`] names it).
    pub fn verify(
        &self,
        evidence: &Evidence,
        at: UnixTime,
    ) -> Result<VerifiedEvidence, VerifyError> {
        let store = self.endorsements();
        let digest = evidence.digest();
        let verified = match &evidence.body {
            Body::Snp {
                evidence: snp,
                cert_chain,
            } => Verified::Snp(Box::new(self.verify_snp(&store, snp, cert_chain, at)?)),
            Body::Quote { quote, tee, .. } => {
                Verified::Quote(Box::new(self.verify_quote(&store, quote, *tee, at)?))
            }
        };
        Ok(VerifiedEvidence {
            verified,
            form: evidence.form(),
            digest,
        })
    }

    fn verify_snp(
        &self,
        store: &Endorsements,
        snp: &SnpEvidence,
        cert_chain: &[(CertKind, Vec<u8>)],
        at: UnixTime,
    ) -> Result<tessera_snp::Verified<SnpEvidence>, VerifyError> {
        // The certificates: held VEKs matching this chip and TCB first, then what the evidence
        // carried, then (when neither has a VEK) every held VEK so the verifier names the
        // mismatch, then held intermediates.
        let mut certs: Vec<Certificate> = store.veks_for(snp.report());
        let chain_from = certs.len();
        {
            // Read-locked while the chain is parsed; written only once evidence verified.
            let carried = lock_read(&self.inner.carried);
            let known: Vec<&Certificate> = carried.iter().collect();
            for (i, (_, der)) in cert_chain.iter().enumerate() {
                let mut found =
                    tessera_pki::load_certificates_reusing(der, &known).map_err(|source| {
                        SnpError::Pki {
                            check: "cert_chain",
                            source,
                        }
                    })?;
                if found.len() != 1 {
                    return Err(VerifyError::Snp(SnpError::Pki {
                        check: "cert_chain",
                        source: tessera_pki::PkiError::Der {
                            what: "cert_chain entry",
                            detail: format!("entry {i}: expected exactly one certificate"),
                        },
                    }));
                }
                certs.append(&mut found);
            }
        }
        let chain_to = certs.len();
        if !certs.iter().any(is_vek_candidate) && !carries_vek(snp, cert_chain) {
            certs.extend(store.all_veks().cloned());
        }
        certs.extend(store.intermediates().cloned());
        let mut crls = self.inner.crls.clone();
        crls.extend(relevant_crls(store, &certs, snp, &self.inner.snp, at));
        let product = self.inner.snp_product;
        let verified = first_success(
            &self.inner.snp,
            &self.inner.snp_last,
            SnpError::check,
            |v| v.verify_evidence(snp.clone(), &certs, &crls, at, product),
        )
        .unwrap_or(Err(SnpError::NoCertificate))
        .map_err(VerifyError::Snp)?;
        // Only certificates of evidence that verified are kept, so evidence that does not verify
        // cannot fill the list.
        let held = |list: &[Certificate], c: &Certificate| list.iter().any(|k| k.der() == c.der());
        let new: Vec<&Certificate> = {
            let carried = lock_read(&self.inner.carried);
            certs
                .get(chain_from..chain_to)
                .unwrap_or_default()
                .iter()
                .filter(|c| !held(&carried, c))
                .collect()
        };
        if !new.is_empty() {
            let mut carried = self
                .inner
                .carried
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if carried.len() + new.len() > MAX_CARRIED_CERTS {
                carried.clear();
            }
            for cert in new {
                // Another verification may have added it meanwhile.
                if !held(&carried, cert) {
                    carried.push(cert.clone());
                }
            }
        }
        Ok(verified)
    }

    fn verify_quote(
        &self,
        store: &Endorsements,
        quote: &Quote,
        tee: Tee,
        at: UnixTime,
    ) -> Result<tessera_tdx::Verified<Quote>, VerifyError> {
        let id = tcb_info_id(tee);
        // With one collateral held for this TEE there is nothing to choose: skip reading the
        // PCK certificate.
        let held = store
            .collateral()
            .iter()
            .filter(|c| c.tcb_info().value().id == id)
            .count();
        let (fmspc, pck_issuer) = if held > 1 {
            pck_leaf(quote).map_or((None, None), |leaf| {
                (fmspc_of_leaf(&leaf), Some(leaf.issuer_der().to_vec()))
            })
        } else {
            (None, None)
        };
        let Some(collateral) = store.collateral_for(id, fmspc, at) else {
            return Err(VerifyError::MissingCollateral {
                tee: id.as_str(),
                fmspc: fmspc_of(quote).map(|f| tessera_pki::to_hex(&f)),
            });
        };
        let newest = store.with_newest_crls(collateral, at, pck_issuer.as_deref());
        let collateral = newest.as_ref().unwrap_or(collateral);
        let options = self.inner.tdx_options;
        first_success(
            &self.inner.tdx,
            &self.inner.tdx_last,
            TdxError::check,
            |v| v.verify(quote, collateral, at, &options),
        )
        .unwrap_or_else(|| Err(TdxError::EmbeddedRoots(String::from("no TDX verifier"))))
        .map_err(VerifyError::Tdx)
    }
}

fn tcb_info_id(tee: Tee) -> TcbInfoId {
    match tee {
        Tee::Sgx => TcbInfoId::Sgx,
        _ => TcbInfoId::Tdx,
    }
}

/// A quote's PCK certificate (the first certificate of its PCK chain): its FMSPC says which
/// collateral is for it, its issuer whose PCK CRL applies to it.
fn pck_leaf(quote: &Quote) -> Option<Certificate> {
    let chain = &quote.signature_data().certification.pck_cert_chain;
    tessera_pki::load_certificates(chain)
        .ok()?
        .into_iter()
        .next()
}

/// The FMSPC of a PCK certificate.
fn fmspc_of_leaf(leaf: &Certificate) -> Option<[u8; 6]> {
    tessera_tdx::pck::PckExtensions::from_certificate(leaf)
        .ok()
        .map(|p| p.fmspc)
}

/// The FMSPC of a quote's PCK certificate.
fn fmspc_of(quote: &Quote) -> Option<[u8; 6]> {
    fmspc_of_leaf(&pck_leaf(quote)?)
}

/// The productName of a VEK held for this report, or carried with it (KBS `cert_chain` or
/// the extended report's certificate table).
fn vek_product(
    store: &Endorsements,
    snp: &SnpEvidence,
    cert_chain: &[(CertKind, Vec<u8>)],
) -> Option<Product> {
    let of = |cert: &Certificate| {
        tessera_snp::certs::VekExtensions::from_certificate(cert)
            .ok()
            .and_then(|ext| ext.product())
    };
    let vek = |k: CertKind| matches!(k, CertKind::Vcek | CertKind::Vlek);
    store
        .veks_for(snp.report())
        .iter()
        .find_map(of)
        .or_else(|| {
            cert_chain
                .iter()
                .filter(|(k, _)| vek(*k))
                .filter_map(|(_, der)| tessera_pki::load_certificates(der).ok())
                .flatten()
                .find_map(|c| of(&c))
        })
        .or_else(|| {
            snp.certs()?
                .certificates()
                .iter()
                .filter(|(k, _)| vek(*k))
                .find_map(|(_, c)| of(c))
        })
}

/// Whether the evidence itself carries a VCEK or VLEK (certificate table or `cert_chain`).
fn carries_vek(snp: &SnpEvidence, cert_chain: &[(CertKind, Vec<u8>)]) -> bool {
    let vek = |k: CertKind| matches!(k, CertKind::Vcek | CertKind::Vlek);
    cert_chain.iter().any(|(k, _)| vek(*k))
        || snp
            .certs()
            .is_some_and(|t| t.entries.iter().any(|e| vek(e.kind())))
}

/// The held CRLs that belong on this report's chain: issued by the VEK's issuer, or by the
/// issuer of a certificate with that name (the ARK over the ASK/ASVK).
fn relevant_crls(
    store: &Endorsements,
    certs: &[Certificate],
    snp: &SnpEvidence,
    verifiers: &[tessera_snp::Verifier],
    at: UnixTime,
) -> Vec<Crl> {
    if store.crls().is_empty() {
        return Vec::new();
    }
    let table_certs: Vec<Certificate> = snp
        .certs()
        .map(|t| t.certificates().into_iter().map(|(_, c)| c).collect())
        .unwrap_or_default();
    let all = || certs.iter().chain(table_certs.iter());
    let mut names: Vec<String> = all()
        .filter(|c| is_vek_candidate(c))
        .map(|c| c.issuer().to_owned())
        .collect();
    let intermediates: Vec<&Certificate> = verifiers
        .iter()
        .flat_map(|v| v.anchors().products())
        .flat_map(|r| r.asks.iter().chain(r.asvks.iter()))
        .chain(all().filter(|c| !is_vek_candidate(c)))
        .collect();
    let mut above = Vec::new();
    for c in intermediates {
        if names.iter().any(|n| n == c.subject()) {
            above.push(c.issuer().to_owned());
        }
    }
    names.extend(above);
    crate::endorsements::crls_in_force(
        store
            .crls()
            .iter()
            .filter(|crl| names.iter().any(|n| n == crl.issuer())),
        at,
    )
    .into_iter()
    .cloned()
    .collect()
}

#[derive(Clone, Debug)]
enum Verified {
    Snp(Box<tessera_snp::Verified<SnpEvidence>>),
    Quote(Box<tessera_tdx::Verified<Quote>>),
}

/// Evidence that passed verification, TEE-neutral: only [`Verifier::verify`] makes one. Appraise
/// it against a policy with [`VerifiedEvidence::appraise`].
#[derive(Clone, Debug)]
pub struct VerifiedEvidence {
    verified: Verified,
    form: Form,
    digest: String,
}

impl VerifiedEvidence {
    /// The TEE.
    #[must_use]
    pub fn tee(&self) -> Tee {
        match &self.verified {
            Verified::Snp(_) => Tee::Snp,
            Verified::Quote(v) => {
                if v.quote().body().td().is_some() {
                    Tee::Tdx
                } else {
                    Tee::Sgx
                }
            }
        }
    }

    /// The form the evidence came in.
    #[must_use]
    pub fn form(&self) -> Form {
        self.form
    }

    /// REPORT_DATA / REPORTDATA, now vouched for by the TEE's signature.
    #[must_use]
    pub fn report_data(&self) -> &[u8; 64] {
        match &self.verified {
            Verified::Snp(v) => v.report().report_data(),
            Verified::Quote(v) => v.quote().report_data(),
        }
    }

    /// SEV-SNP HOST_DATA (32 bytes), TDX MR_CONFIG_ID (48 bytes); `None` for SGX.
    #[must_use]
    pub fn init_data_field(&self) -> Option<&[u8]> {
        match &self.verified {
            Verified::Snp(v) => Some(v.report().host_data()),
            Verified::Quote(v) => v.quote().body().td().map(|td| &td.mr_config_id[..]),
        }
    }

    /// The evidence digest ([`Evidence::digest`]): hex SHA-384 of the signed report or quote.
    #[must_use]
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The verification time.
    #[must_use]
    pub fn verified_at(&self) -> UnixTime {
        match &self.verified {
            Verified::Snp(v) => v.verification().verified_at,
            Verified::Quote(v) => v.verification().verified_at,
        }
    }

    /// Whether revocation was checked with a current CRL: the ARK's CRL for an SEV-SNP
    /// report (the revocations built into Tessera apply either way), the PCK and Root CA
    /// CRLs for a quote.
    #[must_use]
    pub fn revocation_checked(&self) -> bool {
        match &self.verified {
            Verified::Snp(v) => v.verification().revocation_checked,
            Verified::Quote(v) => v.verification().revocation_checked,
        }
    }

    /// Whether a `dangerous_` test root anchored the evidence instead of a vendor's root.
    #[must_use]
    pub fn dangerous_test_root(&self) -> bool {
        match &self.verified {
            Verified::Snp(v) => v.verification().dangerous_test_root,
            Verified::Quote(v) => v.verification().dangerous_root,
        }
    }

    /// The evidence's claims as a JSON object (hex for bytes): the SEV-SNP report's fields
    /// (`tessera_snp::claims::ReportClaims`) or the quote's (`tessera_tdx::claims::QuoteClaims`).
    #[must_use]
    pub fn claims(&self) -> Value {
        let value = match &self.verified {
            Verified::Snp(v) => serde_json::to_value(tessera_snp::claims::ReportClaims::new(
                v.report(),
                Some(v.verification().product),
            )),
            Verified::Quote(v) => {
                serde_json::to_value(tessera_tdx::claims::QuoteClaims::new(v.quote()))
            }
        };
        value.unwrap_or(Value::Null)
    }

    /// What verification established as JSON: the chain, revocation, and for TDX/SGX Intel's
    /// TCB status and advisories.
    #[must_use]
    pub fn verification(&self) -> Value {
        let value = match &self.verified {
            Verified::Snp(v) => serde_json::to_value(v.verification()),
            Verified::Quote(v) => serde_json::to_value(
                tessera_tdx::claims::VerificationClaims::new(v.verification()),
            ),
        };
        value.unwrap_or(Value::Null)
    }

    /// The SEV-SNP result, for SNP evidence.
    #[must_use]
    pub fn snp(&self) -> Option<&tessera_snp::Verified<SnpEvidence>> {
        match &self.verified {
            Verified::Snp(v) => Some(v),
            Verified::Quote(_) => None,
        }
    }

    /// The TDX/SGX result, for a quote.
    #[must_use]
    pub fn quote(&self) -> Option<&tessera_tdx::Verified<Quote>> {
        match &self.verified {
            Verified::Quote(v) => Some(v),
            Verified::Snp(_) => None,
        }
    }

    /// Apply every rule of `policy` (see [`tessera_policy::appraise`]).
    #[must_use]
    pub fn appraise(&self, policy: &Policy) -> Appraisal {
        self.appraise_with(policy)
    }
}

impl Appraise for VerifiedEvidence {
    fn appraise_with(&self, policy: &Policy) -> Appraisal {
        match &self.verified {
            Verified::Snp(v) => tessera_policy::appraise(v.as_ref(), policy),
            Verified::Quote(v) => tessera_policy::appraise(v.as_ref(), policy),
        }
    }
}

impl FromEvidence for VerifiedEvidence {
    fn strict_policy(&self, id: &str) -> Policy {
        match &self.verified {
            Verified::Snp(v) => tessera_policy::policy_from_evidence(v.as_ref(), id),
            Verified::Quote(v) => tessera_policy::policy_from_evidence(v.as_ref(), id),
        }
    }
}
