//! Chain building by key and signature, validity at a given time, and revocation by CRL.

use crate::cert::{Certificate, SignatureScheme};
use crate::{Crl, PkiError, UnixTime};

/// A cap on signature verifications per operation, so hostile inputs cannot cost unbounded work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    remaining: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(32)
    }
}

impl Budget {
    /// A budget of `signatures` signature verifications.
    #[must_use]
    pub const fn new(signatures: u32) -> Self {
        Self {
            remaining: signatures,
        }
    }

    /// Signature verifications left.
    #[must_use]
    pub const fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Charge one signature verification.
    ///
    /// # Errors
    /// [`PkiError::BudgetExhausted`] when none is left.
    pub fn spend(&mut self) -> Result<(), PkiError> {
        self.remaining = self
            .remaining
            .checked_sub(1)
            .ok_or(PkiError::BudgetExhausted)?;
        Ok(())
    }
}

/// Verify `signature` over `signed` with `issuer`'s key, charging the budget. `subject` names
/// the signed object; it is called only to build an error.
pub(crate) fn verify_signature(
    signed: &[u8],
    scheme: SignatureScheme,
    signature: &[u8],
    subject: impl FnOnce() -> String,
    issuer: &Certificate,
    budget: &mut Budget,
) -> Result<(), PkiError> {
    budget.spend()?;
    issuer
        .verify_issued(scheme, signed, signature)
        .map_err(|mismatch| {
            if mismatch {
                PkiError::AlgorithmKeyMismatch {
                    subject: subject(),
                    issuer: issuer.subject().to_owned(),
                }
            } else {
                PkiError::BadSignature {
                    subject: subject(),
                    issuer: issuer.subject().to_owned(),
                }
            }
        })
}

/// Check that `issuer` issued `child`: neither carries a critical extension that is not
/// processed, the names chain, the issuer may sign certificates (basicConstraints present with
/// cA, and keyCertSign when it has keyUsage), and the signature verifies under its key.
/// pathLenConstraint depends on the whole path: [`ChainBuilder`] applies it, and callers with a
/// fixed path shape use [`check_path_len`].
///
/// # Errors
/// [`PkiError::UnhandledCriticalExtension`], [`PkiError::UnknownIssuer`] for a name mismatch,
/// [`PkiError::NotCa`],
/// [`PkiError::BadSignature`], [`PkiError::AlgorithmKeyMismatch`], [`PkiError::BudgetExhausted`].
pub fn verify_issued_by(
    child: &Certificate,
    issuer: &Certificate,
    budget: &mut Budget,
) -> Result<(), PkiError> {
    for cert in [child, issuer] {
        if let Some(ext) = cert.unhandled_critical_extension() {
            return Err(PkiError::UnhandledCriticalExtension {
                subject: cert.subject().to_owned(),
                oid: ext.oid.clone(),
            });
        }
    }
    if child.issuer_der() != issuer.subject_der() {
        return Err(PkiError::UnknownIssuer {
            subject: child.subject().to_owned(),
            issuer: child.issuer().to_owned(),
        });
    }
    // RFC 5280 4.2.1.9: a key may verify certificate signatures only when basicConstraints
    // asserts cA (so a leaf, e.g. a VCEK or PCK without the extension, never issues).
    match issuer.basic_constraints_ca() {
        Some(true) => {}
        Some(false) => {
            return Err(PkiError::NotCa {
                issuer: issuer.subject().to_owned(),
                detail: "basicConstraints cA is false",
            });
        }
        None => {
            return Err(PkiError::NotCa {
                issuer: issuer.subject().to_owned(),
                detail: "no basicConstraints",
            });
        }
    }
    if issuer.key_cert_sign() == Some(false) {
        return Err(PkiError::NotCa {
            issuer: issuer.subject().to_owned(),
            detail: "keyUsage lacks keyCertSign",
        });
    }
    verify_signature(
        child.tbs(),
        child.signature_scheme(),
        child.signature(),
        || child.subject().to_owned(),
        issuer,
        budget,
    )
}

/// Check `issuer`'s pathLenConstraint when `below` non-self-issued intermediates stand between
/// it and the leaf (RFC 5280 6.1.4 (l), (m)).
///
/// # Errors
/// [`PkiError::NotCa`] when the constraint allows fewer.
pub fn check_path_len(issuer: &Certificate, below: usize) -> Result<(), PkiError> {
    match issuer.path_len_constraint() {
        Some(max) if usize::try_from(max).is_ok_and(|max| below > max) => Err(PkiError::NotCa {
            issuer: issuer.subject().to_owned(),
            detail: "pathLenConstraint exceeded",
        }),
        _ => Ok(()),
    }
}

/// Non-self-issued certificates of `path` after the leaf (the intermediates a next issuer
/// would stand above).
fn intermediates_below(path: &[&Certificate]) -> usize {
    path.iter().skip(1).filter(|c| !c.is_self_issued()).count()
}

/// Builds a path from a leaf to one of the trust anchors through candidate intermediates.
///
/// Candidates are narrowed by name and accepted only when the signature verifies, so two
/// certificates sharing one subject (AMD's two Genoa ASKs) are told apart by key. Every
/// certificate on the path must be valid at the given time, and every issuer's
/// pathLenConstraint must allow the intermediates below it.
#[derive(Debug)]
pub struct ChainBuilder<'a> {
    anchors: Vec<&'a Certificate>,
    intermediates: Vec<&'a Certificate>,
    max_depth: usize,
}

impl<'a> ChainBuilder<'a> {
    /// A builder over trust `anchors` and candidate `intermediates`.
    pub fn new(
        anchors: impl IntoIterator<Item = &'a Certificate>,
        intermediates: impl IntoIterator<Item = &'a Certificate>,
    ) -> Self {
        Self {
            anchors: anchors.into_iter().collect(),
            intermediates: intermediates.into_iter().collect(),
            max_depth: 6,
        }
    }

    /// Build and verify a path `[leaf, intermediates..., anchor]` valid at `at`.
    ///
    /// # Errors
    /// The most specific failure seen: an expired or not-yet-valid certificate, a bad signature
    /// from a candidate issuer, or [`PkiError::UnknownIssuer`] when no candidate matched by name.
    pub fn build(
        &self,
        leaf: &'a Certificate,
        at: UnixTime,
        budget: &mut Budget,
    ) -> Result<Vec<&'a Certificate>, PkiError> {
        leaf.check_validity(at)?;
        if self.anchors.iter().any(|a| a.der() == leaf.der()) {
            return Ok(vec![leaf]);
        }
        let mut path = vec![leaf];
        let mut best: Option<PkiError> = None;
        if self.extend(&mut path, at, budget, &mut best)? {
            return Ok(path);
        }
        Err(best.unwrap_or_else(|| PkiError::UnknownIssuer {
            subject: leaf.subject().to_owned(),
            issuer: leaf.issuer().to_owned(),
        }))
    }

    fn extend(
        &self,
        path: &mut Vec<&'a Certificate>,
        at: UnixTime,
        budget: &mut Budget,
        best: &mut Option<PkiError>,
    ) -> Result<bool, PkiError> {
        let Some(&child) = path.last() else {
            return Ok(false);
        };
        let below = intermediates_below(path);
        for &anchor in &self.anchors {
            if anchor.subject_der() != child.issuer_der() {
                continue;
            }
            let checked = check_path_len(anchor, below)
                .and_then(|()| verify_issued_by(child, anchor, budget))
                .and_then(|()| anchor.check_validity(at));
            match checked {
                Ok(()) => {
                    path.push(anchor);
                    return Ok(true);
                }
                Err(PkiError::BudgetExhausted) => return Err(PkiError::BudgetExhausted),
                Err(e) => *best = Some(e),
            }
        }
        if path.len() >= self.max_depth {
            return Ok(false);
        }
        for &cand in &self.intermediates {
            if cand.subject_der() != child.issuer_der()
                || path.iter().any(|p| p.der() == cand.der())
                || self.anchors.iter().any(|a| a.der() == cand.der())
            {
                continue;
            }
            let checked = check_path_len(cand, below)
                .and_then(|()| verify_issued_by(child, cand, budget))
                .and_then(|()| cand.check_validity(at));
            match checked {
                Ok(()) => {
                    path.push(cand);
                    if self.extend(path, at, budget, best)? {
                        return Ok(true);
                    }
                    path.pop();
                }
                Err(PkiError::BudgetExhausted) => return Err(PkiError::BudgetExhausted),
                Err(e) => {
                    if best.is_none()
                        || matches!(e, PkiError::Expired { .. } | PkiError::NotYetValid { .. })
                    {
                        *best = Some(e);
                    }
                }
            }
        }
        Ok(false)
    }
}

/// Apply `crls` to a verified `path` (`[leaf, ..., anchor]`) at time `at`.
///
/// Each CRL must be issued (name and signature) by a certificate on the path and be current; the
/// certificate that issuer signed must not be listed. A CRL issued by no certificate of the path
/// is an error, so a caller never believes revocation was checked when it was not.
///
/// # Errors
/// [`PkiError::Revoked`], [`PkiError::CrlBadSignature`], [`PkiError::CrlNotCurrent`],
/// [`PkiError::CrlNoNextUpdate`], [`PkiError::CrlUnrelated`].
pub fn check_revocation(
    path: &[&Certificate],
    crls: &[Crl],
    at: UnixTime,
    budget: &mut Budget,
) -> Result<(), PkiError> {
    for crl in crls {
        let mut applied = false;
        for pair in path.windows(2) {
            let [child, issuer] = pair else { continue };
            if crl.issuer_der() != issuer.subject_der()
                || child.issuer_der() != issuer.subject_der()
            {
                continue;
            }
            crl.verify_signed_by(issuer, budget)?;
            crl.check_current(at)?;
            applied = true;
            if crl.is_revoked(child.serial()) {
                return Err(PkiError::Revoked {
                    subject: child.subject().to_owned(),
                    serial: child.serial_hex(),
                    issuer: crl.issuer().to_owned(),
                });
            }
        }
        if !applied {
            return Err(PkiError::CrlUnrelated {
                issuer: crl.issuer().to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PublicKeyKind;
    use crate::builder::{CertificateSpec, CrlSpec, IssuerKey, issue_certificate, issue_crl, name};

    const T0: i64 = 1_700_000_000;
    const YEAR: i64 = 365 * 86_400;

    fn t(offset: i64) -> UnixTime {
        UnixTime::from_secs(T0 + offset)
    }

    fn spec(serial: u64, issuer: &str, subject: &str, ca: Option<bool>) -> CertificateSpec {
        CertificateSpec {
            serial: serial.to_be_bytes().to_vec(),
            issuer: name(&[("2.5.4.3", issuer)]).unwrap(),
            subject: name(&[("2.5.4.3", subject)]).unwrap(),
            not_before: t(-YEAR),
            not_after: t(YEAR),
            ca,
            extensions: vec![],
            pss_explicit_trailer: false,
        }
    }

    struct Pki {
        root_key: IssuerKey,
        root: Certificate,
        int_key: IssuerKey,
        int: Certificate,
        leaf: Certificate,
    }

    fn pki() -> Pki {
        let root_key = IssuerKey::generate_rsa(2048).unwrap();
        let root = issue_certificate(
            &spec(1, "Root", "Root", Some(true)),
            &root_key.spki_der().unwrap(),
            &root_key,
        )
        .unwrap();
        let int_key = IssuerKey::generate_rsa(2048).unwrap();
        let mut int_spec = spec(2, "Root", "Int", Some(true));
        int_spec.pss_explicit_trailer = true;
        let int = issue_certificate(&int_spec, &int_key.spki_der().unwrap(), &root_key).unwrap();
        let leaf_key = IssuerKey::generate_ec(PublicKeyKind::EcP384).unwrap();
        let leaf = issue_certificate(
            &spec(0, "Int", "Leaf", None),
            &leaf_key.spki_der().unwrap(),
            &int_key,
        )
        .unwrap();
        Pki {
            root: Certificate::from_der(&root).unwrap(),
            int: Certificate::from_der(&int).unwrap(),
            leaf: Certificate::from_der(&leaf).unwrap(),
            root_key,
            int_key,
        }
    }

    #[test]
    fn builds_and_rejects() {
        let p = pki();
        assert_eq!(p.leaf.serial_hex(), "00");
        assert_eq!(p.leaf.public_key().kind(), PublicKeyKind::EcP384);
        let anchors = [p.root.clone()];
        let ints = [p.int.clone()];
        let b = ChainBuilder::new(&anchors, &ints);
        let path = b.build(&p.leaf, t(0), &mut Budget::default()).unwrap();
        assert_eq!(path.len(), 3);

        // Expired and not yet valid at the verification time.
        assert!(matches!(
            b.build(&p.leaf, t(2 * YEAR), &mut Budget::default()),
            Err(PkiError::Expired { .. })
        ));
        assert!(matches!(
            b.build(&p.leaf, t(-2 * YEAR), &mut Budget::default()),
            Err(PkiError::NotYetValid { .. })
        ));
        // No intermediate: unknown issuer.
        let none: [Certificate; 0] = [];
        assert!(matches!(
            ChainBuilder::new(&anchors, &none).build(&p.leaf, t(0), &mut Budget::default()),
            Err(PkiError::UnknownIssuer { .. })
        ));
        // Budget of one signature cannot cover two links.
        assert_eq!(
            b.build(&p.leaf, t(0), &mut Budget::new(1)),
            Err(PkiError::BudgetExhausted)
        );
    }

    #[test]
    fn same_subject_different_key_is_told_apart_by_signature() {
        let p = pki();
        // A second "Int" signed by the same root, with another key: the leaf must chain to the
        // right one whichever order the candidates come in.
        let other_key = IssuerKey::generate_rsa(2048).unwrap();
        let other = Certificate::from_der(
            &issue_certificate(
                &spec(3, "Root", "Int", Some(true)),
                &other_key.spki_der().unwrap(),
                &p.root_key,
            )
            .unwrap(),
        )
        .unwrap();
        let anchors = [p.root.clone()];
        let ints = [other.clone(), p.int.clone()];
        let path = ChainBuilder::new(&anchors, &ints)
            .build(&p.leaf, t(0), &mut Budget::default())
            .unwrap();
        assert_eq!(path[1].serial_hex(), "02");
        // With only the impostor, the signature check fails.
        let only_other = [other];
        assert!(matches!(
            ChainBuilder::new(&anchors, &only_other).build(&p.leaf, t(0), &mut Budget::default()),
            Err(PkiError::BadSignature { .. })
        ));
    }

    #[test]
    fn forged_root_with_same_name_does_not_anchor() {
        let p = pki();
        let fake_key = IssuerKey::generate_rsa(2048).unwrap();
        let fake_root = Certificate::from_der(
            &issue_certificate(
                &spec(1, "Root", "Root", Some(true)),
                &fake_key.spki_der().unwrap(),
                &fake_key,
            )
            .unwrap(),
        )
        .unwrap();
        let fake_int = Certificate::from_der(
            &issue_certificate(
                &spec(2, "Root", "Int", Some(true)),
                &p.int_key.spki_der().unwrap(),
                &fake_key,
            )
            .unwrap(),
        )
        .unwrap();
        let anchors = [p.root.clone()];
        let ints = [fake_int, fake_root];
        assert!(
            ChainBuilder::new(&anchors, &ints)
                .build(&p.leaf, t(0), &mut Budget::default())
                .is_err()
        );
    }

    #[test]
    fn not_ca_issuer_is_rejected() {
        let p = pki();
        let key = IssuerKey::generate_rsa(2048).unwrap();
        let int = Certificate::from_der(
            &issue_certificate(
                &spec(5, "Root", "Int", Some(false)),
                &key.spki_der().unwrap(),
                &p.root_key,
            )
            .unwrap(),
        )
        .unwrap();
        let leaf_key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let leaf = Certificate::from_der(
            &issue_certificate(
                &spec(6, "Int", "Leaf", None),
                &leaf_key.spki_der().unwrap(),
                &key,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(matches!(
            verify_issued_by(&leaf, &int, &mut Budget::default()),
            Err(PkiError::NotCa { .. })
        ));
    }

    #[test]
    fn unprocessed_critical_extensions_are_rejected_on_either_side() {
        let p = pki();
        let leaf_key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let leaf_with = |extensions: Vec<(String, bool, Vec<u8>)>| {
            let mut s = spec(7, "Int", "Leaf", None);
            s.extensions = extensions;
            Certificate::from_der(
                &issue_certificate(&s, &leaf_key.spki_der().unwrap(), &p.int_key).unwrap(),
            )
            .unwrap()
        };
        let name_constraints = || (String::from("2.5.29.30"), true, crate::der::seq(&[]));
        // The same extension, non-critical, or a critical basicConstraints: accepted.
        let fine = leaf_with(vec![(
            String::from("2.5.29.30"),
            false,
            crate::der::seq(&[]),
        )]);
        verify_issued_by(&fine, &p.int, &mut Budget::default()).unwrap();
        // Critical nameConstraints on the child: rejected before any signature is checked.
        let leaf = leaf_with(vec![name_constraints()]);
        let mut budget = Budget::new(1);
        assert!(matches!(
            verify_issued_by(&leaf, &p.int, &mut budget),
            Err(PkiError::UnhandledCriticalExtension { subject, oid }) if subject == "CN=Leaf" && oid == "2.5.29.30"
        ));
        assert_eq!(budget.remaining(), 1);
        let anchors = [p.root.clone()];
        let ints = [p.int.clone()];
        assert!(matches!(
            ChainBuilder::new(&anchors, &ints).build(&leaf, t(0), &mut Budget::default()),
            Err(PkiError::UnhandledCriticalExtension { .. })
        ));
        // On the issuer (an intermediate with a critical certificatePolicies).
        let mut int_spec = spec(8, "Root", "Int", Some(true));
        int_spec.extensions = vec![(String::from("2.5.29.32"), true, crate::der::seq(&[]))];
        let int = Certificate::from_der(
            &issue_certificate(&int_spec, &p.int_key.spki_der().unwrap(), &p.root_key).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            verify_issued_by(&p.leaf, &int, &mut Budget::default()),
            Err(PkiError::UnhandledCriticalExtension { subject, oid }) if subject == "CN=Int" && oid == "2.5.29.32"
        ));
        let ints = [int];
        assert!(matches!(
            ChainBuilder::new(&anchors, &ints).build(&p.leaf, t(0), &mut Budget::default()),
            Err(PkiError::UnhandledCriticalExtension { .. })
        ));
    }

    use crate::builder::{basic_constraints_extension as bc, key_usage_extension as ku};

    /// A certificate `issuer` → `subject` with a fresh key and `extensions`, and that key.
    fn issued(
        serial: u64,
        (issuer, issuer_key): (&str, &IssuerKey),
        subject: &str,
        extensions: Vec<(String, bool, Vec<u8>)>,
    ) -> (Certificate, IssuerKey) {
        let key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let mut s = spec(serial, issuer, subject, None);
        s.extensions = extensions;
        let der = issue_certificate(&s, &key.spki_der().unwrap(), issuer_key).unwrap();
        (Certificate::from_der(&der).unwrap(), key)
    }

    #[test]
    fn an_issuer_must_assert_ca_in_basic_constraints() {
        let p = pki();
        // A certificate without basicConstraints (a leaf, like a VCEK) issues nothing, even
        // with keyUsage keyCertSign.
        for extensions in [vec![], vec![ku(0x06)]] {
            let (int, int_key) = issued(20, ("Root", &p.root_key), "Int", extensions);
            let (leaf, _) = issued(21, ("Int", &int_key), "Leaf", vec![]);
            assert!(matches!(
                verify_issued_by(&leaf, &int, &mut Budget::default()),
                Err(PkiError::NotCa {
                    detail: "no basicConstraints",
                    ..
                })
            ));
            let anchors = [p.root.clone()];
            let ints = [int];
            assert!(
                ChainBuilder::new(&anchors, &ints)
                    .build(&leaf, t(0), &mut Budget::default())
                    .is_err()
            );
        }
    }

    #[test]
    fn path_len_constraints_bound_the_intermediates_below() {
        let p = pki();
        let anchors = [p.root.clone()];
        // Root → A (pathLen n) → B (CA) → leaf: A has one intermediate (B) below it.
        for (path_len, ok) in [(Some(0), false), (Some(1), true), (None, true)] {
            let (a, a_key) = issued(30, ("Root", &p.root_key), "A", vec![bc(true, path_len)]);
            let (b, b_key) = issued(31, ("A", &a_key), "B", vec![bc(true, Some(0))]);
            let (leaf, _) = issued(32, ("B", &b_key), "Leaf", vec![]);
            let ints = [a.clone(), b];
            let built =
                ChainBuilder::new(&anchors, &ints).build(&leaf, t(0), &mut Budget::default());
            assert_eq!(built.is_ok(), ok, "{path_len:?}: {built:?}");
            if !ok {
                assert!(matches!(
                    built,
                    Err(PkiError::NotCa {
                        detail: "pathLenConstraint exceeded",
                        ..
                    })
                ));
            }
            assert_eq!(a.path_len_constraint().map(u64::from), path_len);
        }
        // The anchor's own constraint counts too: a root with pathLen 0 issues only leaves.
        let root_key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let mut root_spec = spec(40, "R0", "R0", None);
        root_spec.extensions = vec![bc(true, Some(0))];
        let root = Certificate::from_der(
            &issue_certificate(&root_spec, &root_key.spki_der().unwrap(), &root_key).unwrap(),
        )
        .unwrap();
        let (int, int_key) = issued(41, ("R0", &root_key), "I", vec![bc(true, None)]);
        let (leaf, _) = issued(42, ("I", &int_key), "Leaf", vec![]);
        let (direct, _) = issued(43, ("R0", &root_key), "Direct", vec![]);
        let anchors = [root];
        let ints = [int];
        let b = ChainBuilder::new(&anchors, &ints);
        assert!(matches!(
            b.build(&leaf, t(0), &mut Budget::default()),
            Err(PkiError::NotCa {
                detail: "pathLenConstraint exceeded",
                ..
            })
        ));
        assert_eq!(
            b.build(&direct, t(0), &mut Budget::default())
                .unwrap()
                .len(),
            2
        );
        // Self-issued intermediates (key rollover) are not counted.
        let path = [&leaf, &anchors[0], &anchors[0]];
        assert_eq!(intermediates_below(&path), 0);
        assert!(check_path_len(&anchors[0], 0).is_ok());
        assert!(check_path_len(&anchors[0], 1).is_err());
    }

    #[test]
    fn crl_signers_and_data_signers_need_their_key_usage() {
        let p = pki();
        // An intermediate that may sign certificates but not CRLs.
        let (int, int_key) = issued(
            50,
            ("Root", &p.root_key),
            "Int",
            vec![bc(true, None), ku(0x04)],
        );
        let crl_of_int = crl(&int_key, "Int", -10, Some(10), &[]);
        assert!(matches!(
            crl_of_int.verify_signed_by(&int, &mut Budget::default()),
            Err(PkiError::CrlIssuerKeyUsage { .. })
        ));
        let (int, int_key) = issued(
            51,
            ("Root", &p.root_key),
            "Int",
            vec![bc(true, None), ku(0x06)],
        );
        crl(&int_key, "Int", -10, Some(10), &[])
            .verify_signed_by(&int, &mut Budget::default())
            .unwrap();
        // digitalSignature: required when keyUsage is present.
        for (extensions, ok) in [
            (vec![], true),
            (vec![ku(0x80)], true),
            (vec![ku(0xC0)], true),
            (vec![ku(0x04)], false),
            (vec![ku(0x40)], false),
        ] {
            let (leaf, _) = issued(52, ("Int", &int_key), "Leaf", extensions);
            assert_eq!(
                leaf.check_signs_data().is_ok(),
                ok,
                "{:?}",
                leaf.digital_signature()
            );
            if !ok {
                assert!(matches!(
                    leaf.check_signs_data(),
                    Err(PkiError::NotForSigning { subject }) if subject == "CN=Leaf"
                ));
            }
        }
    }

    #[test]
    fn a_signature_algorithm_the_issuer_key_cannot_verify_is_a_mismatch() {
        let p = pki();
        // An ECDSA-signed certificate naming the RSA intermediate as its issuer.
        let ec_key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let leaf_key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let ecdsa_signed = Certificate::from_der(
            &issue_certificate(
                &spec(60, "Int", "Leaf", None),
                &leaf_key.spki_der().unwrap(),
                &ec_key,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            ecdsa_signed.signature_scheme(),
            crate::SignatureScheme::EcdsaSha256
        );
        // An RSASSA-PSS-signed certificate naming an EC intermediate as its issuer.
        let (ec_int, _) = issued(61, ("Root", &p.root_key), "EcInt", vec![bc(true, None)]);
        let rsa_signed = Certificate::from_der(
            &issue_certificate(
                &spec(62, "EcInt", "Leaf", None),
                &leaf_key.spki_der().unwrap(),
                &p.int_key,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            rsa_signed.signature_scheme(),
            crate::SignatureScheme::RsaPssSha384
        );
        for (child, issuer) in [(&ecdsa_signed, &p.int), (&rsa_signed, &ec_int)] {
            let err = verify_issued_by(child, issuer, &mut Budget::default()).unwrap_err();
            assert_eq!(
                err,
                PkiError::AlgorithmKeyMismatch {
                    subject: String::from("CN=Leaf"),
                    issuer: issuer.subject().to_owned(),
                }
            );
            let anchors = [p.root.clone()];
            let ints = [issuer.clone()];
            assert_eq!(
                ChainBuilder::new(&anchors, &ints).build(child, t(0), &mut Budget::default()),
                Err(err)
            );
        }
    }

    #[test]
    fn tampered_certificate_fails_signature() {
        let p = pki();
        let mut der = p.leaf.der().to_vec();
        // Flip a byte inside the subject name ("Leaf" -> "Lea\x67").
        let pos = der.windows(4).position(|w| w == b"Leaf").unwrap() + 3;
        der[pos] ^= 1;
        let bad = Certificate::from_der(&der).unwrap();
        assert!(matches!(
            verify_issued_by(&bad, &p.int, &mut Budget::default()),
            Err(PkiError::BadSignature { .. })
        ));
    }

    fn crl(key: &IssuerKey, issuer: &str, this: i64, next: Option<i64>, revoked: &[u64]) -> Crl {
        Crl::from_der(
            &issue_crl(
                &CrlSpec {
                    issuer: name(&[("2.5.4.3", issuer)]).unwrap(),
                    this_update: t(this),
                    next_update: next.map(t),
                    revoked: revoked.iter().map(|s| s.to_be_bytes().to_vec()).collect(),
                },
                key,
            )
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn revocation() {
        let p = pki();
        let anchors = [p.root.clone()];
        let ints = [p.int.clone()];
        let path = ChainBuilder::new(&anchors, &ints)
            .build(&p.leaf, t(0), &mut Budget::default())
            .unwrap();
        let check = |crls: &[Crl]| check_revocation(&path, crls, t(0), &mut Budget::default());

        assert_eq!(
            check(&[crl(&p.root_key, "Root", -10, Some(10), &[7, 9])]),
            Ok(())
        );
        assert!(matches!(
            check(&[crl(&p.root_key, "Root", -10, Some(10), &[2])]),
            Err(PkiError::Revoked { .. })
        ));
        // Serial 0 leaf revoked by the intermediate's CRL.
        assert!(matches!(
            check(&[crl(&p.int_key, "Int", -10, Some(10), &[0])]),
            Err(PkiError::Revoked { .. })
        ));
        // Stale, not yet issued, no nextUpdate.
        assert!(matches!(
            check(&[crl(&p.root_key, "Root", -20, Some(-1), &[])]),
            Err(PkiError::CrlNotCurrent { .. })
        ));
        assert!(matches!(
            check(&[crl(&p.root_key, "Root", 5, Some(10), &[])]),
            Err(PkiError::CrlNotCurrent { .. })
        ));
        assert!(matches!(
            check(&[crl(&p.root_key, "Root", -5, None, &[])]),
            Err(PkiError::CrlNoNextUpdate { .. })
        ));
        // Signed by the wrong key under the right name.
        assert!(matches!(
            check(&[crl(&p.int_key, "Root", -5, Some(5), &[])]),
            Err(PkiError::CrlBadSignature { .. })
        ));
        // Issued by nobody on the path.
        assert!(matches!(
            check(&[crl(&p.int_key, "Other", -5, Some(5), &[])]),
            Err(PkiError::CrlUnrelated { .. })
        ));
    }

    #[test]
    fn load_pem_and_der_bundles() {
        let p = pki();
        let mut der = p.root.der().to_vec();
        der.extend_from_slice(p.int.der());
        assert_eq!(crate::load_certificates(&der).unwrap().len(), 2);
        let pem: String = [p.leaf.der(), p.int.der()]
            .iter()
            .map(|d| {
                format!(
                    "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                    data_encoding::BASE64.encode(d)
                )
            })
            .collect();
        let certs = crate::load_certificates(pem.as_bytes()).unwrap();
        assert_eq!(certs[0], p.leaf);
        assert_eq!(certs[1], p.int);
        assert!(crate::load_certificates(b"").is_err());
        assert!(crate::load_certificates(&der[..der.len() - 1]).is_err());
        let mut trailing = p.root.der().to_vec();
        trailing.push(0);
        assert!(Certificate::from_der(&trailing).is_err());
    }

    #[test]
    fn reusing_known_certificates_gives_what_parsing_gives() {
        let p = pki();
        let mut der = p.root.der().to_vec();
        der.extend_from_slice(p.int.der());
        der.extend_from_slice(p.leaf.der());
        let pem: String = [p.leaf.der(), p.int.der(), p.root.der()]
            .iter()
            .map(|d| crate::to_pem("CERTIFICATE", d))
            .collect();
        for known in [
            &[][..],
            &[&p.root][..],
            &[&p.int, &p.root],
            &[&p.leaf, &p.int, &p.root],
        ] {
            for input in [&der[..], pem.as_bytes()] {
                assert_eq!(
                    crate::load_certificates_reusing(input, known).unwrap(),
                    crate::load_certificates(input).unwrap()
                );
            }
            // Errors are those of a plain parse: a truncated last certificate, empty input.
            let truncated = &der[..der.len() - 1];
            assert_eq!(
                crate::load_certificates_reusing(truncated, known).unwrap_err(),
                crate::load_certificates(truncated).unwrap_err()
            );
            assert!(crate::load_certificates_reusing(b"", known).is_err());
        }
        // A known certificate is used only for its exact bytes: one flipped byte in the input is
        // parsed (and here rejected), never mistaken for the known certificate.
        let mut flipped = p.root.der().to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let parsed = crate::load_certificates_reusing(&flipped, &[&p.root]);
        assert_eq!(parsed, crate::load_certificates(&flipped));
        assert_ne!(parsed.ok(), Some(vec![p.root.clone()]));
    }
}
