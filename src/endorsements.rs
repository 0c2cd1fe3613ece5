//! Where endorsements come from: certificates (VCEKs, VLEKs, ASKs/ASVKs), CRLs and Intel
//! collateral held in memory, from the caller or read from a directory when a
//! [`Verifier`](crate::Verifier) is built — never during verification.
//!
//! The seam for fetching: [`crate::Verifier::needed_endorsements`] says what a piece of evidence
//! needs that the verifier does not hold ([`EndorsementRequest`]: a VCEK/VLEK for a chip and
//! TCB, or collateral for an FMSPC); a fetcher (AMD KDS, Intel PCS, a PCCS) gets it and hands it
//! over with [`crate::Verifier::add_endorsements`]; then [`crate::Verifier::verify`] runs without
//! I/O.
//!
//! # Directory layout ([`Endorsements::from_dir`])
//!
//! One level deep, files sorted by name:
//! - `*.der`, `*.pem`, `*.crt`, `*.cer`: certificates (DER or PEM, bundles allowed), CRLs, or
//!   both in one PEM file (every `CERTIFICATE` and `X509 CRL` block is read);
//! - `*.crl`: CRLs (DER or PEM);
//! - `*.json`: a TDX/SGX collateral bundle (the dcap-qvl `QuoteCollateralV3` layout);
//! - a sub-folder: a folder of Intel PCS responses for one FMSPC (TCB info, QE identity, CRLs,
//!   issuer chains);
//! - anything else (a README, dot-files) is skipped.

use std::path::{Path, PathBuf};

use tessera_pki::{Certificate, Crl, load_certificates_and_crls, load_crls};
use tessera_snp::abi::{AttestationReport, Product, SigningKey};
use tessera_snp::certs::{VekExtensions, VekKind, is_vek_candidate};
use tessera_tdx::collateral::{Collateral, TcbInfoId};

/// Most files read from an endorsement directory (sub-folder files count too).
pub const MAX_DIR_FILES: usize = 4096;
/// Most bytes of one endorsement file.
pub const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;
/// Most bytes read from an endorsement directory in all.
pub const MAX_DIR_BYTES: u64 = 512 * 1024 * 1024;
/// Most files in one PCS sub-folder.
const MAX_PCS_FILES: usize = 64;

/// Reading endorsements failed. Names the file and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndorsementError {
    /// A file or folder could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// A file is not what its name says (not certificates, not a CRL, not a collateral bundle).
    #[error("{path}: {what}")]
    Format {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The directory is larger than accepted ([`MAX_DIR_FILES`], [`MAX_FILE_LEN`],
    /// [`MAX_DIR_BYTES`]).
    #[error("{path}: {what}")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Which bound.
        what: String,
    },
}

/// A VCEK or VLEK with its AMD extensions, indexed for lookup by chip and TCB.
#[derive(Clone, Debug)]
struct IndexedVek {
    ext: VekExtensions,
    cert: Certificate,
}

/// Endorsements held in memory: certificates, CRLs and TDX/SGX collateral.
#[derive(Clone, Debug, Default)]
pub struct Endorsements {
    /// Every certificate, in the order added.
    certs: Vec<Certificate>,
    /// The VCEKs and VLEKs among them whose AMD extensions decode.
    veks: Vec<IndexedVek>,
    crls: Vec<Crl>,
    collateral: Vec<Collateral>,
}

/// What a piece of evidence needs that a verifier does not hold: the seam for a fetcher.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndorsementRequest {
    /// The VCEK (AMD KDS `/vcek/v1/{product}/{hwid}?blSPL=..`) or VLEK for this chip and TCB.
    SnpVek {
        /// VCEK or VLEK, as the report's SIGNER_INFO says.
        kind: VekKind,
        /// The product, when the report says (CPUID, report version 3 and later).
        product: Option<Product>,
        /// CHIP_ID (all zeros when the host masks it: then no VCEK can be fetched).
        chip_id: [u8; 64],
        /// REPORTED_TCB, raw.
        reported_tcb: u64,
    },
    /// The ARK's current CRL (AMD KDS `/vcek/v1/{product}/crl`) for a report whose VEK is held
    /// (carried by the evidence or held by the verifier) while the CRL held for its chain is
    /// past its next update: only the CRL is needed, so a source need not (and, with CHIP_ID
    /// masked, could not) look the VEK up.
    SnpCrl {
        /// VCEK or VLEK, as the report's SIGNER_INFO says (their chains have separate CRLs).
        kind: VekKind,
        /// The product, when the report says (CPUID, report version 3 and later).
        product: Option<Product>,
    },
    /// Intel collateral (TCB info, QE identity, CRLs) for this FMSPC.
    TdxCollateral {
        /// `TDX` or `SGX`.
        tee: &'static str,
        /// The FMSPC from the quote's PCK certificate.
        fmspc: [u8; 6],
    },
}

impl Endorsements {
    /// No endorsements.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Add certificates: VCEKs/VLEKs (indexed by chip and TCB), ASKs/ASVKs, ARKs.
    pub fn add_certificates(&mut self, certs: impl IntoIterator<Item = Certificate>) -> &mut Self {
        for cert in certs {
            if is_vek_candidate(&cert)
                && let Ok(ext) = VekExtensions::from_certificate(&cert)
            {
                self.veks.push(IndexedVek {
                    ext,
                    cert: cert.clone(),
                });
            }
            self.certs.push(cert);
        }
        self
    }

    /// Add CRLs. SEV-SNP CRLs are applied to every chain they can be on (see
    /// [`crate::VerifierBuilder::crls`]).
    pub fn add_crls(&mut self, crls: impl IntoIterator<Item = Crl>) -> &mut Self {
        self.crls.extend(crls);
        self
    }

    /// Add TDX/SGX collateral for one FMSPC.
    pub fn add_collateral(&mut self, collateral: Collateral) -> &mut Self {
        self.collateral.push(collateral);
        self
    }

    /// Add everything `other` holds that is not held yet (the same bytes are not held twice, so
    /// a source that answers with the same endorsements again does not grow the set), and drop
    /// what a newer item of its kind has long replaced (see `drop_superseded`): a source
    /// reissuing them daily does not grow the set for ever either.
    pub fn extend(&mut self, other: Endorsements) -> &mut Self {
        for cert in other.certs {
            if !self.certs.iter().any(|c| c.der() == cert.der()) {
                self.certs.push(cert);
            }
        }
        for vek in other.veks {
            if !self.veks.iter().any(|v| v.cert.der() == vek.cert.der()) {
                self.veks.push(vek);
            }
        }
        for crl in other.crls {
            if !self.crls.iter().any(|c| c.der() == crl.der()) {
                self.crls.push(crl);
            }
        }
        for c in other.collateral {
            if !self.collateral.contains(&c) {
                self.collateral.push(c);
            }
        }
        self.drop_superseded();
        self
    }

    /// Drops what a newer item of its kind has long replaced: a CRL that had expired more than
    /// [`SUPERSEDED_MARGIN_SECS`] before another CRL of its issuer was issued, a collateral
    /// whose TCB info had expired so long before another of its TEE, FMSPC and TCB evaluation
    /// was issued. A service asking its source every minute, whose CRLs and TCB info are
    /// reissued daily, then holds about one of each per day of their validity, not one more
    /// every day for ever; nothing is dropped that was current within the margin of the newest
    /// (evidence verified again at an earlier time, a session rebuilt at another replica, still
    /// finds what was current then), and nothing is dropped by count, so a CRL of one chain is
    /// never pushed out by reissues of another chain's CRL of the same issuer (AMD's VCEK and
    /// VLEK CRLs are both signed by the ARK).
    fn drop_superseded(&mut self) {
        let crls = std::mem::take(&mut self.crls);
        self.crls = drop_long_replaced(
            crls,
            |c| c.issuer_der().to_vec(),
            Crl::this_update,
            Crl::next_update,
        );
        let collateral = std::mem::take(&mut self.collateral);
        self.collateral = drop_long_replaced(
            collateral,
            |c| {
                let info = c.tcb_info().value();
                (info.id, info.fmspc, info.tcb_evaluation_data_number)
            },
            |c| c.tcb_info().value().issue_date,
            // The latest of its parts: its CRLs may be the best held, lent to another.
            |c| {
                [
                    Some(c.tcb_info().value().next_update),
                    Some(c.qe_identity().value().next_update),
                    c.pck_crl().and_then(Crl::next_update),
                    c.root_ca_crl().and_then(Crl::next_update),
                ]
                .into_iter()
                .flatten()
                .max()
            },
        );
    }

    /// Whether a CRL held is past its next update at `at` with no other from its issuer current
    /// then (see [`crls_in_force`]).
    pub(crate) fn has_stale_crl(&self, at: tessera_pki::UnixTime) -> bool {
        crls_in_force(self.crls.iter(), at)
            .iter()
            .any(|crl| crl.check_current(at).is_err())
    }

    /// Whether both hold the same endorsements in the same order.
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        self.certs
            .iter()
            .map(Certificate::der)
            .eq(other.certs.iter().map(Certificate::der))
            && self
                .crls
                .iter()
                .map(Crl::der)
                .eq(other.crls.iter().map(Crl::der))
            && self.collateral == other.collateral
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty() && self.crls.is_empty() && self.collateral.is_empty()
    }

    /// The certificates held.
    #[must_use]
    pub fn certificates(&self) -> &[Certificate] {
        &self.certs
    }

    /// The CRLs held.
    #[must_use]
    pub fn crls(&self) -> &[Crl] {
        &self.crls
    }

    /// The collateral held.
    #[must_use]
    pub fn collateral(&self) -> &[Collateral] {
        &self.collateral
    }

    /// Read a directory of endorsements (layout in the module docs above).
    ///
    /// # Errors
    /// [`EndorsementError`] naming the first file that cannot be read or is not what its name
    /// says, or the bound exceeded.
    pub fn from_dir(dir: &Path) -> Result<Self, EndorsementError> {
        let mut out = Self::new();
        let mut budget = Budget {
            files: 0,
            bytes: 0,
            root: dir.to_path_buf(),
        };
        for path in sorted_entries(dir)? {
            if path.is_dir() {
                out.add_collateral(read_pcs_folder(&path, &mut budget)?);
                continue;
            }
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            let Some(ext) = ext else { continue };
            match ext.as_str() {
                "der" | "pem" | "crt" | "cer" => {
                    let bytes = budget.read(&path)?;
                    // Both kinds from one file: a PEM file of certificates may carry CRLs too,
                    // and they are not left behind.
                    let (certs, crls) = load_certificates_and_crls(&bytes).map_err(|e| {
                        pki_too_large(&path, &e).unwrap_or_else(|| {
                            format_error(&path, "not certificates or CRLs (DER or PEM)")
                        })
                    })?;
                    out.add_certificates(certs);
                    out.add_crls(crls);
                }
                "crl" => {
                    let bytes = budget.read(&path)?;
                    let crls = load_crls(&bytes).map_err(|e| {
                        pki_too_large(&path, &e)
                            .unwrap_or_else(|| format_error(&path, &format!("not a CRL: {e}")))
                    })?;
                    out.add_crls(crls);
                }
                "json" => {
                    let bytes = budget.read(&path)?;
                    let c = Collateral::from_bundle_json(&bytes).map_err(|e| {
                        collateral_too_large(&path, &e).unwrap_or_else(|| {
                            format_error(&path, &format!("not a collateral bundle: {e}"))
                        })
                    })?;
                    out.add_collateral(c);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// VEKs held for this report (see [`vek_is_for`]).
    pub(crate) fn veks_for(&self, report: &AttestationReport) -> Vec<Certificate> {
        self.veks
            .iter()
            .filter(|v| vek_is_for(&v.ext, report))
            .map(|v| v.cert.clone())
            .collect()
    }

    /// Every VEK held (for a report no held VEK matches: the verifier then names the mismatch).
    pub(crate) fn all_veks(&self) -> impl Iterator<Item = &Certificate> {
        self.certs.iter().filter(|c| is_vek_candidate(c))
    }

    /// Certificates that are not VEKs (ASKs, ASVKs, ARKs).
    pub(crate) fn intermediates(&self) -> impl Iterator<Item = &Certificate> {
        self.certs.iter().filter(|c| !is_vek_candidate(c))
    }

    /// Collateral for `tee` and `fmspc` at `at`: of the matching entries, one current at `at`
    /// before one that is not, then the highest TCB evaluation data number (Intel signs TCB
    /// info for earlier evaluations with current dates too: an older evaluation may rate a
    /// platform up to date that the newest rates out of date), then TCB info version 3 before
    /// version 2 (which need not list advisory IDs), then one with its CRLs, then the newest
    /// TCB info; when none matches, the first held for that TEE, else the first held (the
    /// verifier then names the mismatch: collateral of the wrong type is what a bundle made for
    /// another TEE is, and saying so helps more than "missing").
    pub(crate) fn collateral_for(
        &self,
        tee: TcbInfoId,
        fmspc: Option<[u8; 6]>,
        at: tessera_pki::UnixTime,
    ) -> Option<&Collateral> {
        let of_tee = || {
            self.collateral
                .iter()
                .filter(move |c| c.tcb_info().value().id == tee)
        };
        let matching = of_tee()
            .filter(|c| Some(c.tcb_info().value().fmspc) == fmspc)
            .max_by_key(|c| {
                let info = c.tcb_info().value();
                (
                    collateral_current(c, at),
                    info.tcb_evaluation_data_number,
                    info.version >= 3,
                    c.pck_crl().is_some() && c.root_ca_crl().is_some(),
                    info.issue_date,
                )
            });
        matching
            .or_else(|| of_tee().next())
            .or_else(|| self.collateral.first())
    }

    /// `chosen` with the best CRLs any held collateral has for it, when one has better: of the
    /// PCK CRLs of `pck_issuer` (the quote's PCK certificate's issuer; else that of `chosen`'s
    /// PCK CRL) and of the Root CA CRLs (of `chosen`'s issuer, else any), one current at `at`
    /// before one that is not, then the latest thisUpdate. `None` when `chosen`'s are the
    /// best. (Collateral is chosen by its TCB evaluation first, see [`Self::collateral_for`]:
    /// one of a higher evaluation, from a bundle, must neither keep an older PCK CRL in use
    /// while the cache has brought a newer one with another, nor go without CRLs another
    /// brings.)
    pub(crate) fn with_newest_crls(
        &self,
        chosen: &Collateral,
        at: tessera_pki::UnixTime,
        pck_issuer: Option<&[u8]>,
    ) -> Option<Collateral> {
        let rank = |c: &Crl| (c.check_current(at).is_ok(), c.this_update());
        let better =
            |held: Option<&Crl>, candidate: &Crl| held.is_none_or(|h| rank(candidate) > rank(h));
        let pck_target = pck_issuer.or_else(|| chosen.pck_crl().map(Crl::issuer_der));
        let root_target = chosen.root_ca_crl().map(Crl::issuer_der);
        // What the chosen collateral holds counts only when it is of the issuer wanted.
        let chosen_pck = chosen
            .pck_crl()
            .filter(|held| Some(held.issuer_der()) == pck_target);
        let mut pck: Option<&Collateral> = None;
        let mut root: Option<&Crl> = None;
        for c in &self.collateral {
            if let (Some(crl), Some(target)) = (c.pck_crl(), pck_target)
                && crl.issuer_der() == target
                && better(pck.and_then(Collateral::pck_crl).or(chosen_pck), crl)
                && chosen_pck.is_none_or(|held| held.der() != crl.der())
            {
                pck = Some(c);
            }
            if let Some(crl) = c.root_ca_crl()
                && root_target.is_none_or(|target| crl.issuer_der() == target)
                && better(root.or(chosen.root_ca_crl()), crl)
                && chosen
                    .root_ca_crl()
                    .is_none_or(|held| held.der() != crl.der())
            {
                root = Some(crl);
            }
        }
        if pck.is_none() && root.is_none() {
            return None;
        }
        let mut parts = chosen.clone().into_parts();
        if let Some(c) = pck {
            parts.pck_crl = c.pck_crl().cloned();
            parts.pck_crl_issuer_chain = c.pck_crl_issuer_chain().to_vec();
        }
        if let Some(crl) = root {
            parts.root_ca_crl = Some(crl.clone());
        }
        Some(Collateral::from_parts(parts))
    }

    /// Whether collateral for `tee` and `fmspc` is held; with `at`, collateral that is still
    /// current then (its TCB info, QE identity and CRLs all before their next update).
    pub(crate) fn has_collateral(
        &self,
        tee: TcbInfoId,
        fmspc: [u8; 6],
        at: Option<tessera_pki::UnixTime>,
    ) -> bool {
        self.collateral.iter().any(|c| {
            let info = c.tcb_info().value();
            info.id == tee && info.fmspc == fmspc && at.is_none_or(|at| collateral_current(c, at))
        })
    }
}

/// How long after an item expired a newer one of its kind must have been issued for the item
/// to be dropped (see `Endorsements::extend`): two days, more than a token's or session's
/// longest life and any clock skew between replicas.
pub(crate) const SUPERSEDED_MARGIN_SECS: i64 = 2 * 86_400;

/// `items` without those that expired more than [`SUPERSEDED_MARGIN_SECS`] before another of
/// the same `key` was issued, in the order held. An item with no expiry is kept.
fn drop_long_replaced<T, K: PartialEq>(
    items: Vec<T>,
    key: impl Fn(&T) -> K,
    issued: impl Fn(&T) -> tessera_pki::UnixTime,
    expires: impl Fn(&T) -> Option<tessera_pki::UnixTime>,
) -> Vec<T> {
    let keep: Vec<bool> = items
        .iter()
        .map(|item| {
            let Some(until) = expires(item) else {
                return true;
            };
            let k = key(item);
            !items.iter().any(|other| {
                key(other) == k
                    && issued(other).as_secs()
                        > until.as_secs().saturating_add(SUPERSEDED_MARGIN_SECS)
            })
        })
        .collect();
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, keep)| keep.then_some(item))
        .collect()
}

/// Of `crls`, what applies at `at` for each issuer: every one current then (a newer CRL
/// lists what an older one did, and AMD's VCEK and VLEK CRLs share their issuer, so each held
/// current CRL is applied, never fewer), or, when none of that issuer's is, the newest of them
/// (which verification then refuses as stale). A CRL past its next update does not count next
/// to a current one of its issuer: CRLs are grouped by issuer, not by the endpoint they came
/// from, because an issuer's current CRL is its whole list. AMD's ARK issues one: KDS's
/// `vcek/v1/Milan/crl` and `vlek/v1/Milan/crl` served the same bytes (CRL number 4; the corpus's
/// `certs-only_milan-vcek_spire` and `certs-only_milan-vlek_spire`), so an expired copy fetched
/// for VLEKs next to a current one fetched for VCEKs is the same list, only older.
pub(crate) fn crls_in_force<'a>(
    crls: impl Iterator<Item = &'a Crl>,
    at: tessera_pki::UnixTime,
) -> Vec<&'a Crl> {
    let crls: Vec<&'a Crl> = crls.collect();
    let mut chosen: Vec<&'a Crl> = Vec::new();
    for (i, crl) in crls.iter().enumerate() {
        let issuer = crl.issuer_der();
        if crls.iter().take(i).any(|c| c.issuer_der() == issuer) {
            continue;
        }
        let of_issuer = || crls.iter().filter(|c| c.issuer_der() == issuer);
        let current: Vec<&'a Crl> = of_issuer()
            .filter(|c| c.check_current(at).is_ok())
            .copied()
            .collect();
        if current.is_empty() {
            if let Some(newest) = of_issuer().max_by_key(|c| c.this_update()) {
                chosen.push(newest);
            }
        } else {
            chosen.extend(current);
        }
    }
    chosen
}

/// Whether every dated part of `c` is before its next update at `at`.
fn collateral_current(c: &Collateral, at: tessera_pki::UnixTime) -> bool {
    let crl_current = |crl: Option<&Crl>| crl.is_none_or(|crl| crl.check_current(at).is_ok());
    at < c.tcb_info().value().next_update
        && at < c.qe_identity().value().next_update
        && crl_current(c.pck_crl())
        && crl_current(c.root_ca_crl())
}

/// A certificate or CRL parser's refusal for size, as [`EndorsementError::TooLarge`]: the
/// file's size, not its content, is what to mend.
fn pki_too_large(path: &Path, e: &tessera_pki::PkiError) -> Option<EndorsementError> {
    matches!(e, tessera_pki::PkiError::TooLarge { .. }).then(|| EndorsementError::TooLarge {
        path: path.to_path_buf(),
        what: e.to_string(),
    })
}

/// [`pki_too_large`] for the collateral readers (a bundle, or a file of a PCS folder).
fn collateral_too_large(
    path: &Path,
    e: &tessera_tdx::collateral::CollateralError,
) -> Option<EndorsementError> {
    use tessera_tdx::collateral::CollateralError as E;
    let mut inner = e;
    while let E::InFile { source, .. } = inner {
        inner = source;
    }
    matches!(inner, E::TooLarge { .. }).then(|| EndorsementError::TooLarge {
        path: path.to_path_buf(),
        what: e.to_string(),
    })
}

fn format_error(path: &Path, what: &str) -> EndorsementError {
    EndorsementError::Format {
        path: path.to_path_buf(),
        what: what.to_owned(),
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> EndorsementError {
    EndorsementError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The bounds of one directory read.
struct Budget {
    files: usize,
    bytes: u64,
    root: PathBuf,
}

impl Budget {
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, EndorsementError> {
        self.files += 1;
        if self.files > MAX_DIR_FILES {
            return Err(EndorsementError::TooLarge {
                path: self.root.clone(),
                what: format!("more than {MAX_DIR_FILES} files"),
            });
        }
        let data = read_regular_file(path, MAX_FILE_LEN)?;
        self.bytes = self.bytes.saturating_add(data.len() as u64);
        if self.bytes > MAX_DIR_BYTES {
            return Err(EndorsementError::TooLarge {
                path: self.root.clone(),
                what: format!("more than {MAX_DIR_BYTES} bytes in all"),
            });
        }
        Ok(data)
    }
}

/// The bytes of the regular file at `path`, at most `max`. Opened without blocking and
/// refused unless it is a regular file: a FIFO with no writer would block the open and the
/// read for ever, and a link to a device such as `/dev/zero` would never end.
///
/// # Errors
/// [`EndorsementError::Io`] when it cannot be opened or read or is not a regular file;
/// [`EndorsementError::TooLarge`] when it holds more than `max` bytes.
pub fn read_regular_file(path: &Path, max: u64) -> Result<Vec<u8>, EndorsementError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io_error(path, &e))?;
    let meta = file.metadata().map_err(|e| io_error(path, &e))?;
    if !meta.is_file() {
        return Err(EndorsementError::Io {
            path: path.to_path_buf(),
            message: "not a regular file".into(),
        });
    }
    let too_large = || EndorsementError::TooLarge {
        path: path.to_path_buf(),
        what: format!("larger than {max} bytes"),
    };
    if meta.len() > max {
        return Err(too_large());
    }
    let mut data = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| io_error(path, &e))?;
    if data.len() as u64 > max {
        return Err(too_large());
    }
    Ok(data)
}

/// The entries of `dir`, sorted, dot-files skipped.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, EndorsementError> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, &e))? {
        let entry = entry.map_err(|e| io_error(dir, &e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        entries.push(entry.path());
        if entries.len() > MAX_DIR_FILES {
            return Err(EndorsementError::TooLarge {
                path: dir.to_path_buf(),
                what: format!("more than {MAX_DIR_FILES} entries"),
            });
        }
    }
    entries.sort();
    Ok(entries)
}

/// A folder of Intel PCS responses.
fn read_pcs_folder(dir: &Path, budget: &mut Budget) -> Result<Collateral, EndorsementError> {
    let entries = sorted_entries(dir)?;
    if entries.len() > MAX_PCS_FILES {
        return Err(EndorsementError::TooLarge {
            path: dir.to_path_buf(),
            what: format!("more than {MAX_PCS_FILES} files in a PCS folder"),
        });
    }
    let mut files = Vec::new();
    for path in entries.into_iter().filter(|p| p.is_file()) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((name, budget.read(&path)?));
    }
    Collateral::from_pcs_files(&files).map_err(|e| {
        collateral_too_large(dir, &e).unwrap_or_else(|| {
            format_error(dir, &format!("not a folder of Intel PCS collateral: {e}"))
        })
    })
}

/// Whether a VEK with extensions `ext` is `report`'s: the kind SIGNER_INFO names, REPORTED_TCB
/// equal to the certificate's TCB (under its productName, else the report's product, else any
/// product), and (a VCEK) CHIP_ID starting with its hwID. What a fetcher or a holder of VEKs
/// uses to pick one; verification checks all of it again.
#[must_use]
pub fn vek_is_for(ext: &VekExtensions, report: &AttestationReport) -> bool {
    let kind = match report.signer_info().signing_key() {
        SigningKey::Vcek => VekKind::Vcek,
        SigningKey::Vlek => VekKind::Vlek,
        _ => return false,
    };
    if ext.kind() != kind {
        return false;
    }
    let product = ext
        .product()
        .or_else(|| report.cpuid().and_then(Product::from_cpuid));
    let products: &[Product] = match &product {
        Some(p) => core::slice::from_ref(p),
        None => &[Product::Milan, Product::Genoa, Product::Turin],
    };
    products
        .iter()
        .any(|p| ext.tcb.encode(*p) == report.reported_tcb())
        && match (&ext.hwid, kind) {
            (Some(hwid), VekKind::Vcek) => report.chip_id().starts_with(hwid),
            (None, VekKind::Vcek) => false,
            (_, VekKind::Vlek) => true,
        }
}
