//! The verifier side of the C ABI: endorsement sets, the verifier builder and handle, `verify`
//! with its result handle, and `decode`.

use std::ffi::{CString, c_char};

use tessera::pki::{
    Certificate, PkiError, crls_among_pem, load_certificates, load_certificates_and_crls, load_crls,
};
use tessera::tdx::collateral::{Collateral, CollateralError};
use tessera::{Endorsements, Evidence, Policy, Tee, UnixTime, Verifier};

use crate::error::{build_code, evidence_code, tessera_result, verify_code};
use crate::panic::{boundary, call};
use crate::{bytes, c_ptr, c_string, clear_out, free, handle, handle_mut, put};

use tessera_result as R;

/// The TEE evidence came from.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tessera_tee {
    /// Not known: the evidence could not be read, or was not read because the policy given is
    /// invalid (`TESSERA_RESULT_POLICY_INVALID`: the policy is read first).
    TESSERA_TEE_UNKNOWN = 0,
    /// AMD SEV-SNP.
    TESSERA_TEE_SNP = 1,
    /// Intel TDX.
    TESSERA_TEE_TDX = 2,
    /// Intel SGX.
    TESSERA_TEE_SGX = 3,
}

impl From<Tee> for tessera_tee {
    fn from(t: Tee) -> Self {
        match t {
            Tee::Snp => Self::TESSERA_TEE_SNP,
            Tee::Tdx => Self::TESSERA_TEE_TDX,
            Tee::Sgx => Self::TESSERA_TEE_SGX,
        }
    }
}

/// A verification's verdict. `REJECTED` is zero so that a zeroed value never means accepted.
///
/// `TESSERA_VERDICT_ACCEPTED` is the only yes, and it needs a policy: evidence verified with no
/// policy (NULL) is `TESSERA_VERDICT_VERIFIED_UNAPPRAISED`, never `ACCEPTED`, so a policy that
/// failed to load (a NULL pointer) cannot turn into a yes for a debug guest or any
/// measurement. Compare with `== TESSERA_VERDICT_ACCEPTED`, never `!= TESSERA_VERDICT_REJECTED`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tessera_verdict {
    /// The evidence was not read, did not verify, the policy was invalid or rejected it; also
    /// what a NULL verification handle gives.
    TESSERA_VERDICT_REJECTED = 0,
    /// The evidence verified AND the policy given passed every rule. Only with a policy.
    TESSERA_VERDICT_ACCEPTED = 1,
    /// The evidence verified (authentic: signature, certificate chain, TCB checks), but no
    /// policy was given (NULL), so nothing the guest reports (debug mode, measurement, TCB
    /// minimums, ...) was appraised. Not an acceptance: the result code is
    /// `TESSERA_RESULT_NOT_APPRAISED`.
    TESSERA_VERDICT_VERIFIED_UNAPPRAISED = 2,
}

/// A set of endorsements: certificates (VCEKs, VLEKs, ASKs, ASVKs), CRLs and TDX/SGX collateral
/// bundles. Given to a verifier builder, or to one `tessera_verifier_verify` call. For one
/// thread at a time.
#[derive(Debug, Default)]
pub struct tessera_endorsements {
    inner: Endorsements,
}

/// Most bytes of one endorsement file read by `tessera_endorsements_add_file`.
const MAX_FILE_LEN: u64 = tessera::MAX_FILE_LEN;

/// Make an empty endorsement set.
///
/// # Safety
/// `out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_endorsements_new(
    out: *mut *mut tessera_endorsements,
) -> tessera_result {
    call(|| {
        // SAFETY: `out` is NULL or writable (the caller's contract).
        unsafe { clear_out(out) }?;
        // SAFETY: `out` checked non-NULL; writable by the caller's contract.
        unsafe { put(out, tessera_endorsements::default()) };
        Ok(())
    })
}

/// Free an endorsement set; NULL is fine.
///
/// # Safety
/// `endorsements` is NULL or a live set from `tessera_endorsements_new`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_endorsements_free(endorsements: *mut tessera_endorsements) {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { free(endorsements) });
}

/// Most bytes of certificates or CRLs given in one call (4 MiB; the parser's own bound, which
/// the calls map to `TOO_LARGE`).
const MAX_PKI_INPUT_LEN: usize = tessera::pki::MAX_INPUT_LEN;
/// Most bytes of one collateral bundle (8 MiB; likewise).
const MAX_BUNDLE_LEN: usize = tessera::tdx::collateral::MAX_BUNDLE_LEN;
/// Most bytes of a policy (1 MiB).
const MAX_POLICY_LEN: usize = tessera::policy::MAX_POLICY_LEN;

/// The code of a certificate or CRL parse error: `TOO_LARGE` for input past the parser's own
/// bounds, else `invalid`.
fn pki_code(invalid: tessera_result) -> impl Fn(PkiError) -> tessera_result {
    move |e| match e {
        PkiError::TooLarge { .. } => R::TESSERA_RESULT_TOO_LARGE,
        _ => invalid,
    }
}

fn read_certificates(data: &[u8]) -> Result<Vec<Certificate>, tessera_result> {
    load_certificates(data).map_err(pki_code(R::TESSERA_RESULT_CERTIFICATE_INVALID))
}

/// Add certificates: DER, or PEM (bundles allowed). A PEM bundle's `X509 CRL` blocks are added
/// as CRLs too (as `tessera_endorsements_add_file` reads such a file), never dropped unseen.
///
/// Returns `TESSERA_RESULT_CERTIFICATE_INVALID` when the bytes hold no readable certificate,
/// `TESSERA_RESULT_CRL_INVALID` when a CRL block among them is not a CRL,
/// `TESSERA_RESULT_TOO_LARGE` over 4 MiB.
///
/// # Safety
/// `endorsements` is NULL or a live set; `data` is NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_endorsements_add_certificates(
    endorsements: *mut tessera_endorsements,
    data: *const u8,
    len: usize,
) -> tessera_result {
    call(|| {
        // SAFETY: forwarded contract.
        let e = unsafe { handle_mut(endorsements) }?;
        // SAFETY: forwarded contract.
        let data = unsafe { bytes(data, len) }?;
        let certs = read_certificates(data)?;
        let crls = crls_among_pem(data).map_err(pki_code(R::TESSERA_RESULT_CRL_INVALID))?;
        e.inner.add_certificates(certs);
        e.inner.add_crls(crls);
        Ok(())
    })
}

/// Add CRLs: DER, or PEM (bundles allowed). A CRL applies to the chains it belongs to.
///
/// Returns `TESSERA_RESULT_CRL_INVALID` when the bytes hold no readable CRL,
/// `TESSERA_RESULT_TOO_LARGE` over 4 MiB.
///
/// # Safety
/// `endorsements` is NULL or a live set; `data` is NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_endorsements_add_crls(
    endorsements: *mut tessera_endorsements,
    data: *const u8,
    len: usize,
) -> tessera_result {
    call(|| {
        // SAFETY: forwarded contract.
        let e = unsafe { handle_mut(endorsements) }?;
        // SAFETY: forwarded contract.
        let data = unsafe { bytes(data, len) }?;
        let crls = load_crls(data).map_err(pki_code(R::TESSERA_RESULT_CRL_INVALID))?;
        e.inner.add_crls(crls);
        Ok(())
    })
}

/// Add a TDX/SGX collateral bundle (JSON, the dcap-qvl `QuoteCollateralV3` layout).
///
/// Returns `TESSERA_RESULT_COLLATERAL_INVALID` when the bytes are not a bundle,
/// `TESSERA_RESULT_TOO_LARGE` over 8 MiB.
///
/// # Safety
/// `endorsements` is NULL or a live set; `data` is NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_endorsements_add_collateral(
    endorsements: *mut tessera_endorsements,
    data: *const u8,
    len: usize,
) -> tessera_result {
    call(|| {
        // SAFETY: forwarded contract.
        let e = unsafe { handle_mut(endorsements) }?;
        // SAFETY: forwarded contract.
        let data = unsafe { bytes(data, len) }?;
        let c = Collateral::from_bundle_json(data).map_err(|e| match e {
            CollateralError::TooLarge { .. } => R::TESSERA_RESULT_TOO_LARGE,
            _ => R::TESSERA_RESULT_COLLATERAL_INVALID,
        })?;
        e.inner.add_collateral(c);
        Ok(())
    })
}

/// Read one endorsement file now: certificates and CRLs (a PEM file may hold both: every
/// `CERTIFICATE` and `X509 CRL` block is read), else a collateral bundle, told apart by
/// content. At most 16 MiB. `path` is any NUL-terminated bytes (it need not be UTF-8).
///
/// Returns `TESSERA_RESULT_ENDORSEMENT_FILE` when it cannot be read, is not a regular file
/// (a FIFO or a device is never read), or is none of these; `TESSERA_RESULT_TOO_LARGE` when it
/// is larger than 16 MiB, or is none of these and larger than what it would be may be
/// (certificates and CRLs are read up to 4 MiB, a collateral bundle, JSON, up to 8 MiB, as in
/// the calls taking bytes).
///
/// # Safety
/// `endorsements` is NULL or a live set; `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_endorsements_add_file(
    endorsements: *mut tessera_endorsements,
    path: *const c_char,
) -> tessera_result {
    call(|| {
        // SAFETY: forwarded contract.
        let e = unsafe { handle_mut(endorsements) }?;
        // SAFETY: forwarded contract.
        let path = unsafe { crate::path(path) }?;
        // Opened without blocking and refused unless a regular file (a FIFO would block).
        let data = tessera::read_regular_file(path, MAX_FILE_LEN).map_err(|e| match e {
            tessera::EndorsementError::TooLarge { .. } => R::TESSERA_RESULT_TOO_LARGE,
            _ => R::TESSERA_RESULT_ENDORSEMENT_FILE,
        })?;
        // Certificates and CRLs both, when one PEM file holds the two: added to a copy that
        // replaces the set in one step, so a panic between the two (caught at the boundary)
        // cannot leave the certificates without their CRLs.
        if let Ok((certs, crls)) = load_certificates_and_crls(&data) {
            let mut next = e.inner.clone();
            next.add_certificates(certs);
            next.add_crls(crls);
            e.inner = next;
        } else if let Ok(c) = Collateral::from_bundle_json(&data) {
            e.inner.add_collateral(c);
        } else if data.len() > MAX_BUNDLE_LEN
            || (data.len() > MAX_PKI_INPUT_LEN && data.trim_ascii_start().first() != Some(&b'{'))
        {
            // Too large for any of them, or for the certificates that a file not in JSON
            // would be. (A bundle within its bound that cannot be read is what it is.)
            return Err(R::TESSERA_RESULT_TOO_LARGE);
        } else {
            return Err(R::TESSERA_RESULT_ENDORSEMENT_FILE);
        }
        Ok(())
    })
}

/// What a verifier is built from; kept by the verifier so one call can add endorsements.
#[derive(Debug, Clone, Default)]
struct Config {
    endorsements: Endorsements,
    test_roots: Vec<Certificate>,
    allow_missing_crls: bool,
}

impl Config {
    fn build(&self, extra: Option<&Endorsements>) -> Result<Verifier, tessera_result> {
        let mut builder = Verifier::builder()
            .endorsements(self.endorsements.clone())
            .allow_missing_crls(self.allow_missing_crls);
        if let Some(extra) = extra {
            builder = builder.endorsements(extra.clone());
        }
        for root in &self.test_roots {
            builder = builder
                .dangerous_test_root(root.clone())
                .map_err(|e| build_code(&e))?;
        }
        builder.build().map_err(|e| build_code(&e))
    }
}

/// Builds a `tessera_verifier`: the vendors' embedded roots (AMD, Intel), endorsements, test
/// roots. For one thread at a time; reusable after `tessera_verifier_builder_build`.
#[derive(Debug, Default)]
pub struct tessera_verifier_builder {
    config: Config,
}

/// Make a builder: the vendors' embedded roots, no endorsements.
///
/// # Safety
/// `out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_builder_new(
    out: *mut *mut tessera_verifier_builder,
) -> tessera_result {
    call(|| {
        // SAFETY: `out` is NULL or writable (the caller's contract).
        unsafe { clear_out(out) }?;
        // SAFETY: `out` checked non-NULL; writable by the caller's contract.
        unsafe { put(out, tessera_verifier_builder::default()) };
        Ok(())
    })
}

/// Free a builder; NULL is fine.
///
/// # Safety
/// `builder` is NULL or a live builder, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_builder_free(builder: *mut tessera_verifier_builder) {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { free(builder) });
}

/// Add (a copy of) an endorsement set.
///
/// # Safety
/// `builder` and `endorsements` are NULL or live handles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_builder_add_endorsements(
    builder: *mut tessera_verifier_builder,
    endorsements: *const tessera_endorsements,
) -> tessera_result {
    call(|| {
        // SAFETY: forwarded contract.
        let b = unsafe { handle_mut(builder) }?;
        // SAFETY: forwarded contract.
        let e = unsafe { handle(endorsements) }?;
        b.config.endorsements.extend(e.inner.clone());
        Ok(())
    })
}

/// Read a directory of endorsements now (VCEKs, certificates, CRLs, collateral bundles, PCS
/// folders; see the README); verification never reads it again.
///
/// Returns `TESSERA_RESULT_TOO_LARGE` when a file in it is larger than 16 MiB, or than what
/// its name says it is may be (certificates and CRLs: 4 MiB, a collateral bundle: 8 MiB), as
/// `tessera_endorsements_add_file` does, or the directory holds more than it reads (4096 files,
/// 512 MiB in all, 64 files in a PCS folder); else `TESSERA_RESULT_ENDORSEMENT_FILE`, naming no
/// file (use `tessera` on the command line to see which one), when a file cannot be read or is
/// not what its name says. `path` is any NUL-terminated bytes (it need not be UTF-8).
///
/// # Safety
/// `builder` is NULL or a live builder; `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_builder_add_endorsement_dir(
    builder: *mut tessera_verifier_builder,
    path: *const c_char,
) -> tessera_result {
    call(|| {
        // SAFETY: forwarded contract.
        let b = unsafe { handle_mut(builder) }?;
        // SAFETY: forwarded contract.
        let path = unsafe { crate::path(path) }?;
        let found = Endorsements::from_dir(path).map_err(|e| match e {
            tessera::EndorsementError::TooLarge { .. } => R::TESSERA_RESULT_TOO_LARGE,
            _ => R::TESSERA_RESULT_ENDORSEMENT_FILE,
        })?;
        b.config.endorsements.extend(found);
        Ok(())
    })
}

/// DANGEROUS: also trust this root (a simulator's, for tests): a self-issued certificate, DER
/// or PEM. An AMD-style ARK (`CN=ARK-Milan|Genoa|Turin`) is an SEV-SNP root, anything else a
/// TDX/SGX root. Evidence it anchors verifies, flagged `dangerous_test_root` in the
/// verification JSON; the vendors' roots stay trusted.
///
/// Returns `TESSERA_RESULT_CERTIFICATE_INVALID` for bytes that are not one certificate,
/// `TESSERA_RESULT_TEST_ROOT_INVALID` for a certificate that is not self-issued,
/// `TESSERA_RESULT_TOO_LARGE` over 4 MiB.
///
/// # Safety
/// `builder` is NULL or a live builder; `data` is NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_builder_dangerous_add_test_root(
    builder: *mut tessera_verifier_builder,
    data: *const u8,
    len: usize,
) -> tessera_result {
    call(|| {
        // SAFETY: forwarded contract.
        let b = unsafe { handle_mut(builder) }?;
        // SAFETY: forwarded contract.
        let data = unsafe { bytes(data, len) }?;
        let mut certs = read_certificates(data)?;
        let (Some(root), None) = (certs.pop(), certs.pop()) else {
            return Err(R::TESSERA_RESULT_CERTIFICATE_INVALID);
        };
        // Checked now, so the error comes from the call that caused it.
        let _checked = Verifier::builder()
            .dangerous_test_root(root.clone())
            .map_err(|e| build_code(&e))?;
        b.config.test_roots.push(root);
        Ok(())
    })
}

/// TDX/SGX: accept collateral without the PCK CRL or Root CA CRL (the verification JSON then
/// says revocation was not checked). Off by default.
///
/// # Safety
/// `builder` is NULL or a live builder.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_builder_allow_missing_crls(
    builder: *mut tessera_verifier_builder,
    allow: bool,
) -> tessera_result {
    call(|| {
        // SAFETY: forwarded contract.
        let b = unsafe { handle_mut(builder) }?;
        b.config.allow_missing_crls = allow;
        Ok(())
    })
}

/// A verifier: trust anchors, endorsements and their caches. Thread-safe: share one
/// `const tessera_verifier *` between any number of threads; free it after the last use.
#[derive(Debug)]
pub struct tessera_verifier {
    verifier: Verifier,
    config: Config,
}

/// Build a verifier from the builder (which stays usable).
///
/// # Safety
/// `builder` is NULL or a live builder; `out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_builder_build(
    builder: *const tessera_verifier_builder,
    out: *mut *mut tessera_verifier,
) -> tessera_result {
    call(|| {
        // SAFETY: `out` is NULL or writable (the caller's contract).
        unsafe { clear_out(out) }?;
        // SAFETY: forwarded contract.
        let b = unsafe { handle(builder) }?;
        let config = b.config.clone();
        let verifier = config.build(None)?;
        // SAFETY: `out` checked non-NULL; writable by the caller's contract.
        unsafe { put(out, tessera_verifier { verifier, config }) };
        Ok(())
    })
}

/// Make a verifier with the vendors' embedded roots and no endorsements (SEV-SNP evidence must
/// then carry its VCEK/VLEK, or one must be given to `tessera_verifier_verify`).
///
/// # Safety
/// `out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_new(out: *mut *mut tessera_verifier) -> tessera_result {
    call(|| {
        // SAFETY: `out` is NULL or writable (the caller's contract).
        unsafe { clear_out(out) }?;
        let config = Config::default();
        let verifier = config.build(None)?;
        // SAFETY: `out` checked non-NULL; writable by the caller's contract.
        unsafe { put(out, tessera_verifier { verifier, config }) };
        Ok(())
    })
}

/// Free a verifier; NULL is fine. No other thread may be using it.
///
/// # Safety
/// `verifier` is NULL or a live verifier, not used afterwards by any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_free(verifier: *mut tessera_verifier) {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { free(verifier) });
}

/// The outcome of `tessera_verifier_verify`: verdict, TEE, result code, the failed check and a
/// message, and the JSON documents. Immutable; its strings live until it is freed.
#[derive(Debug)]
pub struct tessera_verification {
    result: tessera_result,
    tee: tessera_tee,
    check: Option<CString>,
    message: Option<CString>,
    tcb_status: Option<CString>,
    claims: Option<CString>,
    verification: Option<CString>,
    appraisal: Option<CString>,
}

impl tessera_verification {
    fn failed(result: tessera_result, tee: tessera_tee, check: &str, message: &str) -> Self {
        Self {
            result,
            tee,
            check: Some(c_string(check)),
            message: Some(c_string(message)),
            tcb_status: None,
            claims: None,
            verification: None,
            appraisal: None,
        }
    }
}

/// The message of evidence that verified with no policy given.
const NOT_APPRAISED: &str = "no policy was given: the evidence verified, but nothing it reports \
     (debug mode, measurement, TCB, ...) was appraised; this is not an acceptance";

/// Run one verification: every failure of the evidence is an outcome, never a call error.
/// `TESSERA_RESULT_OK` only when a policy was given and passed; verified evidence with no
/// policy is `TESSERA_RESULT_NOT_APPRAISED`. The policy is read first: an invalid one is
/// `POLICY_INVALID` whatever the evidence (a configuration error is never hidden behind the
/// evidence's), and the evidence, not read, has the TEE `UNKNOWN`.
fn run_verify(
    verifier: &Verifier,
    evidence: &[u8],
    at: UnixTime,
    policy: Option<&str>,
) -> tessera_verification {
    use tessera_tee::TESSERA_TEE_UNKNOWN as UNKNOWN;
    let policy = match policy.map(Policy::from_text).transpose() {
        Ok(p) => p,
        Err(e) => {
            return tessera_verification::failed(
                R::TESSERA_RESULT_POLICY_INVALID,
                UNKNOWN,
                "policy",
                &e.to_string(),
            );
        }
    };
    let evidence = match Evidence::from_bytes(evidence) {
        Ok(e) => e,
        Err(e) => {
            return tessera_verification::failed(
                evidence_code(&e),
                UNKNOWN,
                e.check(),
                &e.to_string(),
            );
        }
    };
    let tee = tessera_tee::from(evidence.tee());
    let verified = match verifier.verify(&evidence, at) {
        Ok(v) => v,
        Err(e) => {
            return tessera_verification::failed(verify_code(&e), tee, e.check(), &e.to_string());
        }
    };
    let details = verified.verification();
    let mut out = tessera_verification {
        // Not yet a yes: only a policy that passes makes it one (below).
        result: R::TESSERA_RESULT_NOT_APPRAISED,
        tee,
        check: None,
        message: Some(c_string(NOT_APPRAISED)),
        tcb_status: details
            .get("tcb_status")
            .and_then(|s| s.as_str())
            .map(c_string),
        claims: Some(c_string(&verified.claims().to_string())),
        verification: Some(c_string(&details.to_string())),
        appraisal: None,
    };
    if let Some(policy) = policy {
        let appraisal = verified.appraise(&policy);
        let json = serde_json::to_string(&appraisal).unwrap_or_default();
        out.appraisal = Some(c_string(&json));
        if appraisal.passed() {
            out.result = R::TESSERA_RESULT_OK;
            out.message = None;
        } else {
            let failures: Vec<String> = appraisal
                .failures()
                .map(tessera::policy::RuleResult::message)
                .collect();
            out.result = R::TESSERA_RESULT_POLICY_REJECTED;
            out.check = Some(c_string("policy"));
            out.message = Some(c_string(&format!(
                "policy {:?} rejected the evidence: {}",
                appraisal.policy_id(),
                failures.join("; ")
            )));
        }
    }
    out
}

/// Verify evidence of any form Tessera reads (raw SEV-SNP report, extended report, Azure HCL
/// report, TDX/SGX quote, KBS evidence JSON) at `at` (Unix seconds: verification never reads the
/// clock), with the verifier's endorsements plus `extra` (may be NULL: certificates, CRLs and
/// collateral for this call only), and appraise it against `policy` (TOML or JSON text).
/// With `extra`, a verifier is assembled for this one call from the verifier's configuration
/// and `extra` (its caches start empty); the shared verifier is not changed.
/// The policy is text alone: reference files (`{ file = "..." }`) are not read through the C
/// API, and a rule naming one fails (`TESSERA_RESULT_POLICY_REJECTED`, the message ending
/// "(reference file FILE was not loaded)"); write the values into the policy instead.
///
/// The policy is `policy_len` bytes of UTF-8, not NUL-terminated: every one of them is read,
/// so a file's bytes can be passed as read (for a C string, pass its `strlen`: a terminator
/// counted in the length is a NUL in the text). A NUL byte is not an end: it is part of the
/// text, which the policy loader refuses (`TESSERA_RESULT_POLICY_INVALID`), never read as a
/// shorter policy.
///
/// The verdict: `TESSERA_VERDICT_ACCEPTED` only when the evidence verified AND `policy` was
/// given and passed. A NULL `policy` with `policy_len` 0 means no appraisal: verified evidence
/// is then `TESSERA_VERDICT_VERIFIED_UNAPPRAISED` (result `TESSERA_RESULT_NOT_APPRAISED`),
/// never `ACCEPTED`. An empty policy (non-NULL, `policy_len` 0, e.g. an empty file read) is not
/// "no policy": it is `TESSERA_RESULT_POLICY_INVALID`, rejected. The policy is read before the
/// evidence: an invalid one is `TESSERA_RESULT_POLICY_INVALID` whatever the evidence, with the
/// TEE `TESSERA_TEE_UNKNOWN` (the evidence is then not read).
///
/// The return code is not the verdict. `TESSERA_RESULT_OK` says the call worked and `*out`
/// holds a result handle: the evidence may still be rejected; read
/// `tessera_verification_verdict(*out) == TESSERA_VERDICT_ACCEPTED`. Other returns: a 1xx code
/// for unusable arguments (`TESSERA_RESULT_NULL_POINTER` for a NULL `policy` with a length,
/// `TESSERA_RESULT_TOO_LARGE` for a policy over 1 MiB, `TESSERA_RESULT_INVALID_UTF8` for one
/// that is not UTF-8), or, when a verifier with `extra` could not be built,
/// `TESSERA_RESULT_ENDORSEMENT_FILE`, `TESSERA_RESULT_TEST_ROOT_INVALID` or
/// `TESSERA_RESULT_EMBEDDED_ROOTS`; `*out` is then NULL (set first, before any check).
///
/// # Safety
/// `verifier` is NULL or a live verifier; `evidence` is NULL or valid for reads of
/// `evidence_len` bytes, not modified during the call; `extra` is NULL or a live endorsement set
/// (not changed during the call); `policy` is NULL or valid for reads of `policy_len` bytes,
/// not modified during the call; `out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verifier_verify(
    verifier: *const tessera_verifier,
    evidence: *const u8,
    evidence_len: usize,
    extra: *const tessera_endorsements,
    at: i64,
    policy: *const u8,
    policy_len: usize,
    out: *mut *mut tessera_verification,
) -> tessera_result {
    call(|| {
        // SAFETY: `out` is NULL or writable (the caller's contract).
        unsafe { clear_out(out) }?;
        // SAFETY: forwarded contract.
        let v = unsafe { handle(verifier) }?;
        // SAFETY: forwarded contract.
        let evidence = unsafe { bytes(evidence, evidence_len) }?;
        // SAFETY: forwarded contract (NULL is allowed: no extra endorsements).
        let extra = unsafe { extra.as_ref() };
        // SAFETY: forwarded contract (NULL with length 0 is no policy).
        let policy = unsafe { policy_text(policy, policy_len) }?;
        let result = match extra {
            None => run_verify(&v.verifier, evidence, UnixTime::from_secs(at), policy),
            Some(extra) => {
                let once = v.config.build(Some(&extra.inner))?;
                run_verify(&once, evidence, UnixTime::from_secs(at), policy)
            }
        };
        // SAFETY: `out` checked non-NULL; writable by the caller's contract.
        unsafe { put(out, result) };
        Ok(())
    })
}

/// The policy argument of `tessera_verifier_verify`: (NULL, 0) is no policy; any other pair
/// is the whole text, NUL bytes included (the loader refuses them), never cut at a NUL. Over
/// 1 MiB is `TOO_LARGE` and bytes that are not UTF-8 `INVALID_UTF8`: call errors (`*out`
/// stays NULL), not a result saying `POLICY_INVALID`.
///
/// # Safety
/// As [`bytes`]: `ptr` is NULL or valid for reads of `len` bytes for `'a`.
unsafe fn policy_text<'a>(ptr: *const u8, len: usize) -> Result<Option<&'a str>, tessera_result> {
    if ptr.is_null() && len == 0 {
        return Ok(None);
    }
    // SAFETY: forwarded contract; NULL with a length is refused there.
    let policy = unsafe { bytes(ptr, len) }?;
    if policy.len() > MAX_POLICY_LEN {
        return Err(R::TESSERA_RESULT_TOO_LARGE);
    }
    std::str::from_utf8(policy)
        .map(Some)
        .map_err(|_| R::TESSERA_RESULT_INVALID_UTF8)
}

/// Free a verification; NULL is fine. Its strings are freed with it.
///
/// # Safety
/// `verification` is NULL or a live verification, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_free(verification: *mut tessera_verification) {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { free(verification) });
}

/// `TESSERA_VERDICT_ACCEPTED` when the evidence verified and the policy given passed (only
/// with a policy); `TESSERA_VERDICT_VERIFIED_UNAPPRAISED` when it verified and no policy was
/// given; `TESSERA_VERDICT_REJECTED` otherwise, and for NULL (so a handle left NULL by a
/// failed call reads as rejected).
///
/// # Safety
/// `verification` is NULL or a live verification.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_verdict(
    verification: *const tessera_verification,
) -> tessera_verdict {
    // SAFETY: forwarded contract.
    let r = boundary(|| unsafe { verification.as_ref() }.map(|v| v.result as u32));
    match r {
        Some(code) if code == R::TESSERA_RESULT_OK as u32 => {
            tessera_verdict::TESSERA_VERDICT_ACCEPTED
        }
        Some(code) if code == R::TESSERA_RESULT_NOT_APPRAISED as u32 => {
            tessera_verdict::TESSERA_VERDICT_VERIFIED_UNAPPRAISED
        }
        _ => tessera_verdict::TESSERA_VERDICT_REJECTED,
    }
}

impl crate::panic::OnPanic for Option<u32> {
    fn on_panic() -> Self {
        None
    }
}

/// Why the evidence was not accepted: `TESSERA_RESULT_OK` only when accepted (verified, and
/// the policy given passed); `TESSERA_RESULT_NOT_APPRAISED` when it verified but no policy was
/// given; else a 2xx (evidence), 3xx (verification) or 4xx (policy) code;
/// `TESSERA_RESULT_NULL_POINTER` for NULL.
///
/// # Safety
/// `verification` is NULL or a live verification.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_result(
    verification: *const tessera_verification,
) -> tessera_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { verification.as_ref() }.map_or(R::TESSERA_RESULT_NULL_POINTER, |v| v.result)
    })
}

/// The TEE: `TESSERA_TEE_UNKNOWN` when the evidence could not be read, when the policy given
/// is invalid (`TESSERA_RESULT_POLICY_INVALID`: the policy is read first, and the evidence is
/// then not read, whatever it is), and for NULL.
///
/// # Safety
/// `verification` is NULL or a live verification.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_tee(
    verification: *const tessera_verification,
) -> tessera_tee {
    // SAFETY: forwarded contract.
    let tee = boundary(|| unsafe { verification.as_ref() }.map(|v| v.tee as u32));
    match tee {
        Some(1) => tessera_tee::TESSERA_TEE_SNP,
        Some(2) => tessera_tee::TESSERA_TEE_TDX,
        Some(3) => tessera_tee::TESSERA_TEE_SGX,
        _ => tessera_tee::TESSERA_TEE_UNKNOWN,
    }
}

/// The name of the failed check (`report_signature`, `vek_chain`, `pck_chain`, `collateral`,
/// `parse`, `policy`, ...), NULL when accepted or verified with no policy (no check failed).
///
/// The string is owned by the handle: valid until the handle is freed; never free it yourself.
///
/// # Safety
/// `handle` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_failed_check(
    handle: *const tessera_verification,
) -> *const c_char {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { handle.as_ref() }.map_or(std::ptr::null(), |h| c_ptr(h.check.as_ref()))
    })
}
/// A message naming the failed check and field (for a policy, every failed rule with the
/// expected and actual value); for evidence verified with no policy, a message saying it was
/// not appraised; NULL when accepted.
///
/// The string is owned by the handle: valid until the handle is freed; never free it yourself.
///
/// # Safety
/// `handle` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_message(
    handle: *const tessera_verification,
) -> *const c_char {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { handle.as_ref() }.map_or(std::ptr::null(), |h| c_ptr(h.message.as_ref()))
    })
}
/// Intel's TCB status for TDX/SGX (`UpToDate`, `OutOfDate`, `SWHardeningNeeded`, ...);
/// NULL for SEV-SNP (AMD has no such status: see `reported_tcb` in the claims) and when the
/// evidence did not verify.
///
/// The string is owned by the handle: valid until the handle is freed; never free it yourself.
///
/// # Safety
/// `handle` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_tcb_status(
    handle: *const tessera_verification,
) -> *const c_char {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { handle.as_ref() }.map_or(std::ptr::null(), |h| c_ptr(h.tcb_status.as_ref()))
    })
}
/// The verified evidence's claims as a JSON object (hex for bytes), NULL when it did not
/// verify.
///
/// The string is owned by the handle: valid until the handle is freed; never free it yourself.
///
/// # Safety
/// `handle` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_claims_json(
    handle: *const tessera_verification,
) -> *const c_char {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { handle.as_ref() }.map_or(std::ptr::null(), |h| c_ptr(h.claims.as_ref()))
    })
}
/// What verification established as a JSON object (chain, revocation, TCB status,
/// `dangerous_test_root`), NULL when it did not verify.
///
/// The string is owned by the handle: valid until the handle is freed; never free it yourself.
///
/// # Safety
/// `handle` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_verification_json(
    handle: *const tessera_verification,
) -> *const c_char {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { handle.as_ref() }.map_or(std::ptr::null(), |h| c_ptr(h.verification.as_ref()))
    })
}
/// The appraisal as a JSON object (every rule with outcome, expected and actual values),
/// NULL when no policy was given or the evidence did not verify.
///
/// The string is owned by the handle: valid until the handle is freed; never free it yourself.
///
/// # Safety
/// `handle` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_verification_appraisal_json(
    handle: *const tessera_verification,
) -> *const c_char {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { handle.as_ref() }.map_or(std::ptr::null(), |h| c_ptr(h.appraisal.as_ref()))
    })
}

/// Evidence decoded without verification (`tessera show --json`). Immutable.
#[derive(Debug)]
pub struct tessera_decoded {
    result: tessera_result,
    tee: tessera_tee,
    json: Option<CString>,
    message: Option<CString>,
}

/// Decode evidence without verifying it: nothing it says is vouched for. Sets `*out` to NULL
/// first; returns `TESSERA_RESULT_OK` and writes `*out` whenever the arguments were usable;
/// whether the bytes were evidence is `tessera_decoded_result`.
///
/// # Safety
/// `evidence` is NULL or valid for reads of `evidence_len` bytes, not modified during the call;
/// `out` is NULL or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_decode(
    evidence: *const u8,
    evidence_len: usize,
    out: *mut *mut tessera_decoded,
) -> tessera_result {
    call(|| {
        // SAFETY: `out` is NULL or writable (the caller's contract).
        unsafe { clear_out(out) }?;
        // SAFETY: forwarded contract.
        let evidence = unsafe { bytes(evidence, evidence_len) }?;
        let decoded = match Evidence::from_bytes(evidence) {
            Ok(e) => tessera_decoded {
                result: R::TESSERA_RESULT_OK,
                tee: e.tee().into(),
                json: Some(c_string(&e.show_json(None).to_string())),
                message: None,
            },
            Err(e) => tessera_decoded {
                result: evidence_code(&e),
                tee: tessera_tee::TESSERA_TEE_UNKNOWN,
                json: None,
                message: Some(c_string(&e.to_string())),
            },
        };
        // SAFETY: `out` checked non-NULL; writable by the caller's contract.
        unsafe { put(out, decoded) };
        Ok(())
    })
}

/// Free a decoded evidence handle; NULL is fine.
///
/// # Safety
/// `decoded` is NULL or live, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_decoded_free(decoded: *mut tessera_decoded) {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { free(decoded) });
}

/// `TESSERA_RESULT_OK` when the bytes were evidence, else a 2xx code;
/// `TESSERA_RESULT_NULL_POINTER` for NULL.
///
/// # Safety
/// `decoded` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_decoded_result(decoded: *const tessera_decoded) -> tessera_result {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { decoded.as_ref() }.map_or(R::TESSERA_RESULT_NULL_POINTER, |d| d.result)
    })
}

/// The TEE (`TESSERA_TEE_UNKNOWN` when not evidence, or for NULL).
///
/// # Safety
/// `decoded` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_decoded_tee(decoded: *const tessera_decoded) -> tessera_tee {
    // SAFETY: forwarded contract.
    let tee = boundary(|| unsafe { decoded.as_ref() }.map(|d| d.tee as u32));
    match tee {
        Some(1) => tessera_tee::TESSERA_TEE_SNP,
        Some(2) => tessera_tee::TESSERA_TEE_TDX,
        Some(3) => tessera_tee::TESSERA_TEE_SGX,
        _ => tessera_tee::TESSERA_TEE_UNKNOWN,
    }
}

/// The decoded evidence as JSON (what `tessera show --json` prints), NULL when the bytes
/// were not evidence.
///
/// The string is owned by the handle: valid until the handle is freed; never free it yourself.
///
/// # Safety
/// `handle` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_decoded_json(handle: *const tessera_decoded) -> *const c_char {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { handle.as_ref() }.map_or(std::ptr::null(), |h| c_ptr(h.json.as_ref()))
    })
}
/// Why the bytes are not evidence (every form tried), NULL when they were.
///
/// The string is owned by the handle: valid until the handle is freed; never free it yourself.
///
/// # Safety
/// `handle` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_decoded_message(handle: *const tessera_decoded) -> *const c_char {
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe { handle.as_ref() }.map_or(std::ptr::null(), |h| c_ptr(h.message.as_ref()))
    })
}

/// Fuzz harness: the C ABI's verify and decode entry points on arbitrary bytes (without a
/// policy, with one, and with the bytes themselves as the policy); no call returns
/// `TESSERA_RESULT_PANIC`, `*out` is NULL exactly when a call fails (it is set, not left),
/// only a policy that is not UTF-8 or too large makes the verify call fail, and the verdict
/// agrees with the result code: never `TESSERA_VERDICT_ACCEPTED` without a policy.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: a failed assertion is the finding
pub fn fuzz_verify(data: &[u8]) {
    // A verifier holding the sample's VCEK (examples/evidence/snp-milan), so that evidence
    // near the sample verifies and the verdict's rules are exercised.
    let vcek = include_bytes!("../../examples/evidence/snp-milan/vcek.der");
    let mut endorsements: *mut tessera_endorsements = std::ptr::null_mut();
    let mut builder: *mut tessera_verifier_builder = std::ptr::null_mut();
    let mut verifier: *mut tessera_verifier = std::ptr::null_mut();
    // SAFETY: valid out-pointers; the handles made here, each freed once; `vcek` valid for
    // its length.
    unsafe {
        assert_eq!(
            tessera_endorsements_new(&mut endorsements),
            R::TESSERA_RESULT_OK
        );
        let rc = tessera_endorsements_add_certificates(endorsements, vcek.as_ptr(), vcek.len());
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        assert_eq!(
            tessera_verifier_builder_new(&mut builder),
            R::TESSERA_RESULT_OK
        );
        let rc = tessera_verifier_builder_add_endorsements(builder, endorsements);
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        let rc = tessera_verifier_builder_build(builder, &mut verifier);
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        tessera_verifier_builder_free(builder);
        tessera_endorsements_free(endorsements);
    }
    // A policy that parses, so the appraisal runs on whatever verifies; and the input itself
    // as the policy, which may be refused as an argument (not UTF-8, too large).
    let policy = include_bytes!("../../examples/policies/development.toml");
    let policies = [
        (std::ptr::null(), 0, true),
        (policy.as_ptr(), policy.len(), true),
        (data.as_ptr(), data.len(), false),
    ];
    for (p, p_len, must_work) in policies {
        // Not NULL before the call: a failed call must set it NULL itself.
        let unset = std::ptr::NonNull::<tessera_verification>::dangling().as_ptr();
        let mut out: *mut tessera_verification = unset;
        // SAFETY: live verifier, `data` and the policy valid for their lengths, a valid
        // out-pointer.
        let rc = unsafe {
            tessera_verifier_verify(
                verifier,
                data.as_ptr(),
                data.len(),
                std::ptr::null(),
                1_664_067_328, // the sample's time
                p,
                p_len,
                &mut out,
            )
        };
        assert_ne!(rc, R::TESSERA_RESULT_PANIC);
        assert_ne!(out, unset, "*out left as it was");
        assert_eq!(out.is_null(), rc != R::TESSERA_RESULT_OK, "{rc:?}");
        if must_work {
            assert_eq!(rc, R::TESSERA_RESULT_OK);
        } else {
            assert!(
                matches!(
                    rc,
                    R::TESSERA_RESULT_OK
                        | R::TESSERA_RESULT_INVALID_UTF8
                        | R::TESSERA_RESULT_TOO_LARGE
                ),
                "{rc:?}"
            );
        }
        if out.is_null() {
            continue;
        }
        // SAFETY: `out` was written by the successful call above; freed once.
        let (verdict, result) = unsafe {
            let _ = tessera_verification_message(out);
            let both = (
                tessera_verification_verdict(out),
                tessera_verification_result(out),
            );
            tessera_verification_free(out);
            both
        };
        use tessera_verdict::{
            TESSERA_VERDICT_ACCEPTED as YES, TESSERA_VERDICT_VERIFIED_UNAPPRAISED,
        };
        assert!(
            !(p.is_null() && verdict == YES),
            "accepted without a policy"
        );
        assert_eq!(verdict == YES, result == R::TESSERA_RESULT_OK);
        assert_eq!(
            verdict == TESSERA_VERDICT_VERIFIED_UNAPPRAISED,
            result == R::TESSERA_RESULT_NOT_APPRAISED
        );
    }
    let mut decoded: *mut tessera_decoded = std::ptr::null_mut();
    // SAFETY: `data` valid for its length; valid out-pointer.
    let rc = unsafe { tessera_decode(data.as_ptr(), data.len(), &mut decoded) };
    assert_eq!(rc, R::TESSERA_RESULT_OK);
    // SAFETY: handles made above, freed once.
    unsafe {
        tessera_decoded_free(decoded);
        tessera_verifier_free(verifier);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!("../../examples/evidence/snp-milan/report.bin");

    /// A PEM file holding certificates and a CRL gives both (the CRL was once left behind).
    #[test]
    fn an_endorsement_file_of_certificates_and_a_crl_adds_both() {
        use tessera::pki::to_pem;
        use tessera::snp::{abi::Product, sim::SimPki};
        let pki = SimPki::new(Product::Milan).unwrap_or_else(|e| panic!("{e}"));
        let crl = pki
            .ark_crl(&[], UnixTime::from_secs(0), UnixTime::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
        let vcek = include_bytes!("../../examples/evidence/snp-milan/vcek.der");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("mixed.pem");
        let text = to_pem("CERTIFICATE", vcek)
            + &to_pem("X509 CRL", crl.der())
            + &to_pem("CERTIFICATE", pki.ask().der());
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
        let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut e = std::ptr::null_mut();
        // SAFETY: a valid out-pointer.
        let rc = unsafe { tessera_endorsements_new(&raw mut e) };
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        // SAFETY: a live handle and a NUL-terminated path.
        let rc = unsafe { tessera_endorsements_add_file(e, path.as_ptr()) };
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        // SAFETY: the live handle made above.
        let held = unsafe { &*e };
        assert_eq!(
            (held.inner.certificates().len(), held.inner.crls().len()),
            (2, 1)
        );
        // SAFETY: the handle, freed once.
        unsafe { tessera_endorsements_free(e) };

        // The same bytes through the in-memory call: the CRL is added too, and a CRL block
        // that is no CRL is refused, not skipped.
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"));
        let broken = to_pem("CERTIFICATE", vcek) + &to_pem("X509 CRL", b"not a CRL");
        let mut e = std::ptr::null_mut();
        // SAFETY: a valid out-pointer.
        let rc = unsafe { tessera_endorsements_new(&raw mut e) };
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        // SAFETY: a live handle and a buffer of the length given.
        let rc = unsafe { tessera_endorsements_add_certificates(e, bytes.as_ptr(), bytes.len()) };
        assert_eq!(rc, R::TESSERA_RESULT_OK);
        // SAFETY: the live handle made above.
        let held = unsafe { &*e };
        assert_eq!(
            (held.inner.certificates().len(), held.inner.crls().len()),
            (2, 1)
        );
        // SAFETY: a live handle and a buffer of the length given.
        let rc = unsafe { tessera_endorsements_add_certificates(e, broken.as_ptr(), broken.len()) };
        assert_eq!(rc, R::TESSERA_RESULT_CRL_INVALID);
        // SAFETY: the handle, freed once.
        unsafe { tessera_endorsements_free(e) };
    }

    #[test]
    fn handles_shared_between_threads_are_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<tessera_verifier>();
        shared::<tessera_verification>();
        shared::<tessera_decoded>();
        shared::<crate::tessera_client>();
    }

    #[test]
    fn the_fuzz_harness_runs_on_real_and_broken_evidence() {
        fuzz_verify(SAMPLE);
        fuzz_verify(SAMPLE.get(..700).unwrap());
        fuzz_verify(b"{\"report\": \"AAAA\", \"cert_chain\": null}");
        fuzz_verify(&[3, 0, 2, 0, 0, 0]);
        fuzz_verify(&[]);
    }

    #[test]
    fn an_sev_snp_report_verifies_without_tcb_status_and_a_bad_one_names_its_check() {
        let config = Config::default();
        let verifier = config.build(None).unwrap();
        // No VCEK held: rejected by an SEV-SNP check, with TEE known.
        let r = run_verify(&verifier, SAMPLE, UnixTime::from_secs(1_664_067_328), None);
        assert_eq!(r.result, R::TESSERA_RESULT_VERIFY_SNP);
        assert_eq!(r.tee, tessera_tee::TESSERA_TEE_SNP);
        assert!(r.check.is_some() && r.claims.is_none());
        let mut extra = Endorsements::new();
        extra.add_certificates(
            load_certificates(include_bytes!("../../examples/evidence/snp-milan/vcek.der"))
                .unwrap(),
        );
        let verifier = config.build(Some(&extra)).unwrap();
        // Verified, with no policy: not appraised, which is not OK (not accepted).
        let r = run_verify(&verifier, SAMPLE, UnixTime::from_secs(1_664_067_328), None);
        assert_eq!(r.result, R::TESSERA_RESULT_NOT_APPRAISED, "{:?}", r.message);
        assert!(r.tcb_status.is_none() && r.claims.is_some() && r.check.is_none());
        assert!(r.message.is_some() && r.appraisal.is_none());
        // Verified and a policy passed: the one OK.
        let r = run_verify(
            &verifier,
            SAMPLE,
            UnixTime::from_secs(1_664_067_328),
            Some(DEVELOPMENT),
        );
        assert_eq!(r.result, R::TESSERA_RESULT_OK, "{:?}", r.message);
        assert!(r.message.is_none() && r.check.is_none() && r.appraisal.is_some());
        // A policy naming a reference file (not read through the C API): rejected, and the
        // message says why the value was not matched.
        let with_file = "version = 1\nid = \"f\"\n[snp]\nmeasurement = { file = \"m.txt\" }\n\
                         debug = \"any\"\nmin_tcb = \"any\"\nsigner = \"any\"\nvmpl = \"any\"\n\
                         revocation = \"if-given\"\n";
        let r = run_verify(
            &verifier,
            SAMPLE,
            UnixTime::from_secs(1_664_067_328),
            Some(with_file),
        );
        assert_eq!(r.result, R::TESSERA_RESULT_POLICY_REJECTED);
        let message = r.message.as_ref().map(|m| m.to_string_lossy().into_owned());
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("(reference file m.txt was not loaded)")),
            "{message:?}"
        );
    }

    const DEVELOPMENT: &str = include_str!("../../examples/policies/development.toml");

    /// A verifier holding the sample's VCEK, through the C API.
    fn sample_verifier() -> *mut tessera_verifier {
        let vcek = include_bytes!("../../examples/evidence/snp-milan/vcek.der");
        let (mut e, mut b, mut v) = (
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        // SAFETY: valid out-pointers, live handles made here, `vcek` valid for its length.
        unsafe {
            assert_eq!(tessera_endorsements_new(&raw mut e), R::TESSERA_RESULT_OK);
            let rc = tessera_endorsements_add_certificates(e, vcek.as_ptr(), vcek.len());
            assert_eq!(rc, R::TESSERA_RESULT_OK);
            assert_eq!(
                tessera_verifier_builder_new(&raw mut b),
                R::TESSERA_RESULT_OK
            );
            let rc = tessera_verifier_builder_add_endorsements(b, e);
            assert_eq!(rc, R::TESSERA_RESULT_OK);
            let rc = tessera_verifier_builder_build(b, &raw mut v);
            assert_eq!(rc, R::TESSERA_RESULT_OK);
            tessera_verifier_builder_free(b);
            tessera_endorsements_free(e);
        }
        v
    }

    /// `tessera_verifier_verify` of the sample at its time: the return code and the handle.
    /// `None` is no policy (NULL, 0).
    fn verify_sample(
        v: *const tessera_verifier,
        evidence: &[u8],
        policy: Option<&[u8]>,
        out: &mut *mut tessera_verification,
    ) -> tessera_result {
        let (p, p_len) = policy.map_or((std::ptr::null(), 0), |p| (p.as_ptr(), p.len()));
        // SAFETY: a live verifier, `evidence` valid for its length, the policy NULL with length
        // 0 or valid for its length, a writable out-pointer.
        unsafe {
            tessera_verifier_verify(
                v,
                evidence.as_ptr(),
                evidence.len(),
                std::ptr::null(),
                1_664_067_328,
                p,
                p_len,
                out,
            )
        }
    }

    #[test]
    fn accepted_needs_a_policy_that_passed_and_no_policy_is_verified_unappraised() {
        use tessera_verdict::*;
        let v = sample_verifier();
        let dev = DEVELOPMENT.as_bytes();
        let verdict_of = |policy: Option<&[u8]>| {
            let mut out = std::ptr::null_mut();
            assert_eq!(
                verify_sample(v, SAMPLE, policy, &mut out),
                R::TESSERA_RESULT_OK
            );
            // SAFETY: the handle the call wrote; freed once.
            unsafe {
                let got = (
                    tessera_verification_verdict(out),
                    tessera_verification_result(out),
                );
                tessera_verification_free(out);
                got
            }
        };
        assert_eq!(
            verdict_of(None),
            (
                TESSERA_VERDICT_VERIFIED_UNAPPRAISED,
                R::TESSERA_RESULT_NOT_APPRAISED
            )
        );
        assert_eq!(
            verdict_of(Some(dev)),
            (TESSERA_VERDICT_ACCEPTED, R::TESSERA_RESULT_OK)
        );
        // An empty policy (an empty file read) is not "no policy": invalid, rejected.
        assert_eq!(
            verdict_of(Some(b"")),
            (TESSERA_VERDICT_REJECTED, R::TESSERA_RESULT_POLICY_INVALID)
        );
        // Forged evidence is rejected with no policy too.
        let mut bad = SAMPLE.to_vec();
        if let Some(b) = bad.get_mut(0x2A0) {
            *b ^= 1;
        }
        let mut out = std::ptr::null_mut();
        assert_eq!(verify_sample(v, &bad, None, &mut out), R::TESSERA_RESULT_OK);
        // SAFETY: the handle the call wrote; freed once.
        unsafe {
            assert_eq!(tessera_verification_verdict(out), TESSERA_VERDICT_REJECTED);
            tessera_verification_free(out);
        }
        // SAFETY: the verifier, freed once.
        unsafe { tessera_verifier_free(v) };
    }

    /// The whole policy is read: a NUL byte does not cut it to a shorter (here weaker, yet
    /// valid) policy, it makes it invalid; (NULL, 0) alone is no policy and NULL with a length
    /// a call error.
    #[test]
    fn a_policy_with_a_nul_byte_is_invalid_not_cut_short() {
        let v = sample_verifier();
        let result_of = |policy: Option<&[u8]>| {
            let mut out = std::ptr::null_mut();
            assert_eq!(
                verify_sample(v, SAMPLE, policy, &mut out),
                R::TESSERA_RESULT_OK
            );
            // SAFETY: the handle the call wrote; freed once.
            unsafe {
                let got = tessera_verification_result(out);
                tessera_verification_free(out);
                got
            }
        };
        let lenient = "version = 1\nid = \"nul\"\n[snp]\nmeasurement = \"any\"\ndebug = \"any\"\n\
                       min_tcb = \"any\"\nsigner = \"any\"\nvmpl = \"any\"\n\
                       revocation = \"if-given\"\npermit_provisional_firmware = true\n";
        // The sample's guest policy allows SMT: this rule rejects it.
        let strict = "[snp.guest_policy]\nsmt = \"must-not\"\n";
        assert_eq!(result_of(Some(lenient.as_bytes())), R::TESSERA_RESULT_OK);
        let whole = format!("{lenient}\n{strict}");
        assert_eq!(
            result_of(Some(whole.as_bytes())),
            R::TESSERA_RESULT_POLICY_REJECTED
        );
        for cut in [
            format!("{lenient}\0\n{strict}"),
            format!("{lenient}# a comment\0\n{strict}"),
            // A C string's terminator counted in the length.
            format!("{lenient}\0"),
        ] {
            assert_eq!(
                result_of(Some(cut.as_bytes())),
                R::TESSERA_RESULT_POLICY_INVALID,
                "{cut:?}"
            );
        }
        let json = "{\"version\": 1}\0";
        assert_eq!(
            result_of(Some(json.as_bytes())),
            R::TESSERA_RESULT_POLICY_INVALID
        );
        let mut out = std::ptr::null_mut();
        // SAFETY: a live verifier, the sample valid for its length, a NULL policy with a length
        // (refused before it is read), a writable out-pointer.
        let rc = unsafe {
            tessera_verifier_verify(
                v,
                SAMPLE.as_ptr(),
                SAMPLE.len(),
                std::ptr::null(),
                1_664_067_328,
                std::ptr::null(),
                1,
                &raw mut out,
            )
        };
        assert_eq!(rc, R::TESSERA_RESULT_NULL_POINTER);
        assert!(out.is_null());
        // Not UTF-8: a call error, as before.
        assert_eq!(
            verify_sample(v, SAMPLE, Some(b"version = \xff"), &mut out),
            R::TESSERA_RESULT_INVALID_UTF8
        );
        assert!(out.is_null());
        // SAFETY: the verifier, freed once.
        unsafe { tessera_verifier_free(v) };
    }

    #[test]
    fn a_failed_call_leaves_out_null_so_a_reused_handle_reads_rejected() {
        use tessera_verdict::*;
        let v = sample_verifier();
        let dev = DEVELOPMENT.as_bytes();
        let mut out = std::ptr::null_mut();
        assert_eq!(
            verify_sample(v, SAMPLE, Some(dev), &mut out),
            R::TESSERA_RESULT_OK
        );
        let accepted = out;
        // SAFETY: the handle the call wrote.
        let verdict = unsafe { tessera_verification_verdict(accepted) };
        assert_eq!(verdict, TESSERA_VERDICT_ACCEPTED);
        // The same variable for a call that fails (a policy over 1 MiB): NULL, read as rejected.
        let huge = vec![b'#'; MAX_POLICY_LEN + 1];
        assert_eq!(
            verify_sample(v, SAMPLE, Some(&huge), &mut out),
            R::TESSERA_RESULT_TOO_LARGE
        );
        assert!(out.is_null());
        // SAFETY: NULL is allowed.
        let verdict = unsafe { tessera_verification_verdict(out) };
        assert_eq!(verdict, TESSERA_VERDICT_REJECTED);
        // A NULL verifier, and a length no buffer can have: NULL again.
        out = accepted;
        // SAFETY: a NULL verifier is refused before anything is read; `out` is writable.
        let rc = unsafe {
            tessera_verifier_verify(
                std::ptr::null(),
                SAMPLE.as_ptr(),
                SAMPLE.len(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                &raw mut out,
            )
        };
        assert_eq!(rc, R::TESSERA_RESULT_NULL_POINTER);
        assert!(out.is_null());
        out = accepted;
        // SAFETY: a length over `isize::MAX` is refused before the evidence is read.
        let rc = unsafe {
            tessera_verifier_verify(
                v,
                SAMPLE.as_ptr(),
                usize::MAX,
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                &raw mut out,
            )
        };
        assert_eq!(rc, R::TESSERA_RESULT_INVALID_ARGUMENT);
        assert!(out.is_null());
        // SAFETY: the handles made above, each freed once.
        unsafe {
            tessera_verification_free(accepted);
            tessera_verifier_free(v);
        }
    }

    #[test]
    fn oversized_certificates_crls_and_collateral_are_too_large() {
        let big = vec![0u8; MAX_BUNDLE_LEN + 1];
        let mut e = std::ptr::null_mut();
        let mut b = std::ptr::null_mut();
        // SAFETY: valid out-pointers; live handles; `big` is valid for every length used.
        unsafe {
            assert_eq!(tessera_endorsements_new(&raw mut e), R::TESSERA_RESULT_OK);
            assert_eq!(
                tessera_verifier_builder_new(&raw mut b),
                R::TESSERA_RESULT_OK
            );
            let pki = MAX_PKI_INPUT_LEN + 1;
            assert_eq!(
                tessera_endorsements_add_certificates(e, big.as_ptr(), pki),
                R::TESSERA_RESULT_TOO_LARGE
            );
            assert_eq!(
                tessera_endorsements_add_crls(e, big.as_ptr(), pki),
                R::TESSERA_RESULT_TOO_LARGE
            );
            assert_eq!(
                tessera_verifier_builder_dangerous_add_test_root(b, big.as_ptr(), pki),
                R::TESSERA_RESULT_TOO_LARGE
            );
            assert_eq!(
                tessera_endorsements_add_collateral(e, big.as_ptr(), big.len()),
                R::TESSERA_RESULT_TOO_LARGE
            );
            // A file too large for what it would be is said to be, not unreadable.
            let dir = std::env::temp_dir().join(format!("tessera-ffi-big-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            for (len, expected) in [
                (MAX_PKI_INPUT_LEN + 1, R::TESSERA_RESULT_TOO_LARGE),
                (MAX_BUNDLE_LEN + 1, R::TESSERA_RESULT_TOO_LARGE),
                (1024, R::TESSERA_RESULT_ENDORSEMENT_FILE),
            ] {
                let file = dir.join(format!("{len}.pem"));
                std::fs::write(&file, &big[..len]).unwrap();
                let path = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
                assert_eq!(
                    tessera_endorsements_add_file(e, path.as_ptr()),
                    expected,
                    "{len}"
                );
            }
            // A malformed bundle within a bundle's bound is not a size problem.
            let mut json = vec![b' '; MAX_PKI_INPUT_LEN + 1];
            json[0] = b'{';
            let file = dir.join("malformed.json");
            std::fs::write(&file, &json).unwrap();
            let path = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
            assert_eq!(
                tessera_endorsements_add_file(e, path.as_ptr()),
                R::TESSERA_RESULT_ENDORSEMENT_FILE
            );
            // A file over 16 MiB (sparse): TOO_LARGE read alone or in a directory.
            let big_dir = dir.join("big");
            std::fs::create_dir_all(&big_dir).unwrap();
            let big_file = big_dir.join("big.pem");
            std::fs::File::create(&big_file)
                .and_then(|f| f.set_len(MAX_FILE_LEN + 1))
                .unwrap();
            let path = std::ffi::CString::new(big_file.to_str().unwrap()).unwrap();
            assert_eq!(
                tessera_endorsements_add_file(e, path.as_ptr()),
                R::TESSERA_RESULT_TOO_LARGE
            );
            let path = std::ffi::CString::new(big_dir.to_str().unwrap()).unwrap();
            assert_eq!(
                tessera_verifier_builder_add_endorsement_dir(b, path.as_ptr()),
                R::TESSERA_RESULT_TOO_LARGE
            );
            // In a directory too, a file too large for what its name says it is.
            std::fs::remove_file(&big_file).unwrap();
            std::fs::write(&big_file, &big[..=MAX_PKI_INPUT_LEN]).unwrap();
            assert_eq!(
                tessera_verifier_builder_add_endorsement_dir(b, path.as_ptr()),
                R::TESSERA_RESULT_TOO_LARGE
            );
            std::fs::write(&big_file, &big[..1024]).unwrap();
            assert_eq!(
                tessera_verifier_builder_add_endorsement_dir(b, path.as_ptr()),
                R::TESSERA_RESULT_ENDORSEMENT_FILE
            );
            let _ = std::fs::remove_dir_all(&dir);
            // At the bounds: read, and refused as what they are not.
            assert_eq!(
                tessera_endorsements_add_certificates(e, big.as_ptr(), MAX_PKI_INPUT_LEN),
                R::TESSERA_RESULT_CERTIFICATE_INVALID
            );
            assert_eq!(
                tessera_endorsements_add_collateral(e, big.as_ptr(), MAX_BUNDLE_LEN),
                R::TESSERA_RESULT_COLLATERAL_INVALID
            );
            tessera_verifier_builder_free(b);
            tessera_endorsements_free(e);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The fuzz harness's oracles (no panic code; `*out` NULL exactly when the call
        /// failed) on the real samples, changed: the SEV-SNP report with a certificate table
        /// holding its VCEK, the report alone, or the example policy, with bytes changed and
        /// sometimes cut short.
        #[test]
        fn mutated_samples_keep_the_c_abi_contract(
            which in 0usize..3,
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()),
                0..4,
            ),
            cut in proptest::option::weighted(0.2, proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let vcek = include_bytes!("../../examples/evidence/snp-milan/vcek.der");
            let mut data = match which {
                0 => {
                    let table = tessera::snp::abi::CertTable {
                        entries: vec![tessera::snp::abi::CertTableEntry {
                            guid: tessera::snp::abi::Guid::VCEK,
                            data: vcek.to_vec(),
                        }],
                    };
                    [SAMPLE, table.to_bytes().as_slice()].concat()
                }
                1 => SAMPLE.to_vec(),
                _ => include_bytes!("../../examples/policies/development.toml").to_vec(),
            };
            for (at, b) in edits {
                let i = at.index(data.len());
                if let Some(byte) = data.get_mut(i) {
                    *byte = b;
                }
            }
            if let Some(at) = cut {
                data.truncate(at.index(data.len()));
            }
            fuzz_verify(&data);
        }
    }
}
