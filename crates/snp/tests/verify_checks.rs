//! Negative tests for the checks of `verify` that the workspace's simulator tests do not reach:
//! the HCL binding, certificate-table entries, the VEK's key, and certificates-only
//! verification. Each runs on evidence the simulator signs, so only the check under test can
//! refuse it, and each has the accepted case it starts from.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use tessera_pki::builder::{CertificateSpec, issue_certificate};
use tessera_pki::{Certificate, PkiError, UnixTime, der};
use tessera_snp::abi::{
    AttestationReport, CertTable, CertTableEntry, Guid, HclHashType, HclReport, Product,
    SnpEvidence,
};
use tessera_snp::sim::{SimPki, SimVek, VekSpec};
use tessera_snp::{SnpError, Verifier};

const AT: UnixTime = UnixTime::from_secs(1_767_225_600); // 2026-01-01

fn genoa() -> &'static SimPki {
    static PKI: OnceLock<SimPki> = OnceLock::new();
    PKI.get_or_init(|| SimPki::new(Product::Genoa).unwrap())
}

fn genoa_vcek() -> &'static SimVek {
    static VEK: OnceLock<SimVek> = OnceLock::new();
    VEK.get_or_init(|| genoa().issue_vek(&VekSpec::vcek(Product::Genoa)).unwrap())
}

fn verifier() -> Verifier {
    Verifier::new(genoa().dangerous_trust_anchors())
}

/// A Genoa report signed by the VCEK, with `report_data` as its REPORT_DATA.
fn report_with_data(report_data: [u8; 64]) -> AttestationReport {
    let vek = genoa_vcek();
    let mut raw = genoa().report_template(vek);
    raw.report_data = report_data;
    vek.sign(raw).unwrap()
}

/// `digest` zero-extended to 64 bytes.
fn padded(digest: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..digest.len()].copy_from_slice(digest);
    out
}

fn verify_hcl(hcl: HclReport) -> Result<(), SnpError> {
    let certs = [genoa_vcek().certificate().clone()];
    verifier()
        .verify_evidence(SnpEvidence::Hcl(hcl), &certs, &[], AT, None)
        .map(|_| ())
}

/// REPORT_DATA must be the runtime data's digest (of the hash the HCL report names), then
/// zeros: an unknown hash type, or non-zero bytes after the digest, are refused as such.
#[test]
fn hcl_binding_rejects_an_unknown_hash_type_and_bytes_after_the_digest() {
    let data = br#"{"keys":[],"user-data":"00"}"#.to_vec();
    let sha256 = tessera_pki::sha256(&data);
    let sha384 = tessera_pki::sha384(&data);
    let sha512 = tessera_pki::sha512(&data);
    // Each known hash type binds its digest.
    for (hash_type, digest) in [
        (HclHashType::Sha256, &sha256[..]),
        (HclHashType::Sha384, &sha384[..]),
        (HclHashType::Sha512, &sha512[..]),
    ] {
        let report = report_with_data(padded(digest));
        verify_hcl(HclReport::new(report, hash_type, data.clone())).unwrap();
    }
    let binding = |detail| SnpError::HclBinding { detail };
    // An unknown report_data_hash_type (0 is "invalid" in the IGVM definitions), even when
    // REPORT_DATA holds a digest of the runtime data of some hash.
    let report = report_with_data(padded(&sha256));
    for value in [0, 4, u32::MAX] {
        let hcl = HclReport::new(report.clone(), HclHashType::from(value), data.clone());
        assert_eq!(
            verify_hcl(hcl),
            Err(binding("unknown report_data_hash_type")),
            "{value}"
        );
    }
    let report = report_with_data(padded(&sha512));
    let hcl = HclReport::new(report, HclHashType::Unknown(0), data.clone());
    assert_eq!(
        verify_hcl(hcl),
        Err(binding("unknown report_data_hash_type"))
    );
    // The digest, then a non-zero byte anywhere after it.
    for (hash_type, digest) in [
        (HclHashType::Sha256, &sha256[..]),
        (HclHashType::Sha384, &sha384[..]),
    ] {
        for at in [digest.len(), 63] {
            let mut report_data = padded(digest);
            report_data[at] = 1;
            let hcl = HclReport::new(report_with_data(report_data), hash_type, data.clone());
            let err = verify_hcl(hcl).unwrap_err();
            assert_eq!(
                err,
                binding("bytes after the digest are not zero"),
                "{hash_type:?} byte {at}"
            );
            assert_eq!(
                (err.check(), err.field()),
                ("hcl_report_data", "REPORT_DATA")
            );
        }
    }
    // (And a digest of other data is told apart from both.)
    let hcl = HclReport::new(
        report_with_data(padded(&sha256)),
        HclHashType::Sha256,
        b"other".to_vec(),
    );
    assert_eq!(verify_hcl(hcl), Err(binding("digest differs")));
}

fn extended(entries: Vec<(Guid, Vec<u8>)>) -> SnpEvidence {
    let vek = genoa_vcek();
    SnpEvidence::Extended {
        report: vek.sign(genoa().report_template(vek)).unwrap(),
        certs: CertTable {
            entries: entries
                .into_iter()
                .map(|(guid, data)| CertTableEntry { guid, data })
                .collect(),
        },
    }
}

/// A certificate-table entry of a certificate kind (VCEK, VLEK, ASK, ARK) must hold exactly one
/// certificate. The VCEK is also passed beside the table, so the report verifies unless the
/// entry itself is refused.
#[test]
fn certificate_table_entries_must_hold_exactly_one_certificate() {
    let vcek = genoa_vcek().certificate().der().to_vec();
    let ask = genoa().ask().der().to_vec();
    let pem = |ders: &[&[u8]]| -> Vec<u8> {
        ders.iter()
            .map(|d| tessera_pki::to_pem("CERTIFICATE", d))
            .collect::<String>()
            .into_bytes()
    };
    let certs = [genoa_vcek().certificate().clone()];
    let verify = |entries| {
        verifier()
            .verify_evidence(extended(entries), &certs, &[], AT, None)
            .map(|_| ())
    };
    // One certificate per entry: DER, DER zero-padded, PEM; entries of other kinds are not read.
    verify(vec![(Guid::VCEK, vcek.clone()), (Guid::ASK, ask.clone())]).unwrap();
    verify(vec![(Guid::VCEK, [vcek.clone(), vec![0; 100]].concat())]).unwrap();
    verify(vec![(Guid::VCEK, pem(&[&vcek])), (Guid::ASK, pem(&[&ask]))]).unwrap();
    verify(vec![
        (Guid::CRL, b"not a CRL".to_vec()),
        (Guid([7; 16]), b"opaque".to_vec()),
    ])
    .unwrap();

    // Not a certificate.
    for guid in [Guid::VCEK, Guid::VLEK, Guid::ASK, Guid::ARK] {
        for data in [
            b"not a certificate".to_vec(),
            der::seq(&[&der::null()]),
            vcek[..vcek.len() - 1].to_vec(),
            vec![0; 64],
            Vec::new(),
        ] {
            let err = verify(vec![(guid, data.clone())]).unwrap_err();
            assert!(
                matches!(
                    &err,
                    SnpError::Pki {
                        check: "certificate_table",
                        source: PkiError::Der {
                            what: "certificate",
                            ..
                        },
                    }
                ),
                "{guid} {data:02x?}: {err:?}"
            );
        }
    }
    // Two certificates in one entry, DER or PEM.
    for data in [
        [vcek.clone(), ask.clone()].concat(),
        [ask.clone(), vcek.clone()].concat(),
        pem(&[&vcek, &ask]),
        pem(&[&vcek, &vcek]),
    ] {
        for guid in [Guid::VCEK, Guid::ASK] {
            let err = verify(vec![(guid, data.clone())]).unwrap_err();
            assert_eq!(
                err,
                SnpError::Pki {
                    check: "certificate_table",
                    source: PkiError::Der {
                        what: "certificate table entry",
                        detail: String::from("expected exactly one certificate"),
                    },
                },
                "{guid}"
            );
        }
    }
}

/// The Genoa VCEK re-issued by the ASK with `point` as its key (everything else the same).
fn vcek_with_point(point: &[u8]) -> Certificate {
    let vcek = genoa_vcek().certificate();
    let [_, ask, _] = genoa().export().unwrap();
    let spec = CertificateSpec {
        serial: vcek.serial().to_vec(),
        issuer: vcek.issuer_der().to_vec(),
        subject: vcek.subject_der().to_vec(),
        not_before: vcek.not_before(),
        not_after: vcek.not_after(),
        ca: None,
        extensions: vcek
            .extensions()
            .iter()
            .map(|e| (e.oid.clone(), e.critical, e.value.to_vec()))
            .collect(),
        pss_explicit_trailer: true,
    };
    let spki = der::seq(&[
        &der::seq(&[
            &der::oid("1.2.840.10045.2.1").unwrap(),
            &der::oid("1.3.132.0.34").unwrap(),
        ]),
        &der::bits(point),
    ]);
    let der = issue_certificate(&spec, &spki, &ask.key().unwrap()).unwrap();
    Certificate::from_der(&der).unwrap()
}

/// A VEK whose P-384 point is not on the curve is refused when its key is read (check
/// `vek_key`), although the ASK signed it and every other check passes.
#[test]
fn a_vek_whose_point_is_not_on_the_curve_is_refused() {
    let vek = genoa_vcek();
    let report = vek.sign(genoa().report_template(vek)).unwrap();
    let point = vek.certificate().public_key().raw().to_vec();
    assert_eq!((point.len(), point[0]), (97, 4));
    // Re-issued with its own point, it verifies the report.
    verifier()
        .verify(&report, &[vcek_with_point(&point)], &[], AT, None)
        .unwrap();
    let mut y_changed = point.clone();
    y_changed[96] ^= 1;
    let mut x_changed = point.clone();
    x_changed[1] ^= 0x80;
    let zero = [&[4u8][..], &[0; 96]].concat();
    for bad in [y_changed, x_changed, zero] {
        let cert = vcek_with_point(&bad);
        // Read as a P-384 key: the certificate parses and is a VEK candidate.
        assert_eq!(cert.public_key().kind(), tessera_pki::PublicKeyKind::EcP384);
        let err = verifier()
            .verify(&report, &[cert], &[], AT, None)
            .unwrap_err();
        assert!(matches!(err, SnpError::VekKey(_)), "{err:?}");
        assert_eq!(
            (err.check(), err.field()),
            ("vek_key", "subjectPublicKeyInfo")
        );
    }
}

/// Certificates-only verification: no certificate, a caller naming another product than the
/// chain's ARK, and a VEK whose productName names another product are each refused as such.
#[test]
fn verify_chain_rejects_no_certificate_and_a_product_disagreeing_with_the_chain() {
    let v = verifier();
    let vcek = genoa_vcek().certificate().clone();
    let ask = genoa().ask().clone();

    let err = v.verify_chain(&[], &[], AT, None).unwrap_err();
    assert_eq!(err, SnpError::NoCertificate);
    assert_eq!((err.check(), err.field()), ("vek_chain", "certificates"));

    // The caller's product: a VEK's chain and an intermediate's (two-certificate path) alike.
    for leaf in [&vcek, &ask] {
        let chain = v
            .verify_chain(std::slice::from_ref(leaf), &[], AT, Some(Product::Genoa))
            .unwrap();
        assert_eq!(chain.product, Product::Genoa);
        for caller in [Product::Milan, Product::Turin] {
            let err = v
                .verify_chain(std::slice::from_ref(leaf), &[], AT, Some(caller))
                .unwrap_err();
            assert_eq!(
                err,
                SnpError::ProductMismatch {
                    source_a: "certificate chain",
                    a: Product::Genoa,
                    source_b: "caller",
                    b: caller,
                },
                "{}",
                leaf.subject()
            );
            assert_eq!(err.check(), "product");
        }
    }

    // The VEK's productName: another product's is refused; none is accepted.
    for (name, product) in [("Milan-B0", Product::Milan), ("Turin", Product::Turin)] {
        let vek = genoa()
            .issue_vek(&VekSpec {
                product_name: Some(String::from(name)),
                ..VekSpec::vcek(Product::Genoa)
            })
            .unwrap();
        let err = v
            .verify_chain(&[vek.certificate().clone()], &[], AT, None)
            .unwrap_err();
        assert_eq!(
            err,
            SnpError::ProductMismatch {
                source_a: "certificate chain",
                a: Product::Genoa,
                source_b: "VEK productName",
                b: product,
            },
            "{name}"
        );
    }
    let unnamed = genoa()
        .issue_vek(&VekSpec {
            product_name: None,
            ..VekSpec::vcek(Product::Genoa)
        })
        .unwrap();
    let chain = v
        .verify_chain(&[unnamed.certificate().clone()], &[], AT, None)
        .unwrap();
    assert_eq!(chain.vek.unwrap().product_name, None);
}
