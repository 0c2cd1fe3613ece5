//! Collateral from files as Intel PCS (or a PCCS cache) serves them, told apart by content.
//!
//! Recognised (Intel SGX and TDX DCAP PCS API v4):
//! - `{"tcbInfo":{..},"signature":".."}` (`GET /tcb`): the signed body is the exact text of the
//!   `tcbInfo` value;
//! - `{"enclaveIdentity":{..},"signature":".."}` (`GET /qe/identity`);
//! - a collateral bundle JSON (the dcap-qvl layout, see [`super::CollateralBundle`]);
//! - certificates, PEM or DER, also URL-encoded PEM as in the `TCB-Info-Issuer-Chain`,
//!   `SGX-Enclave-Identity-Issuer-Chain` and `SGX-PCK-CRL-Issuer-Chain` response headers;
//! - CRLs, DER, PEM or hex text (`GET /pckcrl` answers DER or PEM; older PCCS keep hex), told
//!   apart by issuer common name: `Intel SGX Root CA` issues the root CA CRL,
//!   `Intel SGX PCK Platform CA` or `Intel SGX PCK Processor CA` the PCK CRL.
//!
//! `README*`, `*.md` and `case.json` are skipped; any other file is an error naming it.
//! Certificates from loose files form one pool that serves all three issuer chains (the
//! verifier builds chains by signature, so extra certificates do no harm).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tessera_pki::{Certificate, Crl, load_certificates, load_crls};

use super::bundle::CollateralParts;
use super::signed::signature_from_hex;
use super::{
    Collateral, CollateralError, EnclaveIdentity, MAX_PCS_FILES, Signed, TcbInfo, error::quote,
};

/// Most bytes accepted for one file.
pub const MAX_PCS_FILE_LEN: usize = tessera_pki::MAX_INPUT_LEN;

const ITEM: &str = "pcs_files";

/// The issuer common name of the root CA CRL.
const ROOT_CA_CN: &str = "Intel SGX Root CA";
/// Issuer common names of PCK CRLs.
const PCK_CA_CNS: [&str; 2] = ["Intel SGX PCK Platform CA", "Intel SGX PCK Processor CA"];

/// A PCS `tcbInfo` / `enclaveIdentity` envelope, or a bundle (its keys are only looked at).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "tcbInfo", borrow, default)]
    tcb_info: Option<&'a RawValue>,
    #[serde(rename = "enclaveIdentity", borrow, default)]
    enclave_identity: Option<&'a RawValue>,
    /// The version 1 name of the QE identity (read, then rejected by version).
    #[serde(rename = "qeIdentity", borrow, default)]
    qe_identity_v1: Option<&'a RawValue>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(rename = "tcb_info", borrow, default)]
    bundle_tcb_info: Option<&'a RawValue>,
    #[serde(rename = "qe_identity", borrow, default)]
    bundle_qe_identity: Option<&'a RawValue>,
}

/// A value for one collateral item, and the file it came from.
struct Slot<T> {
    item: &'static str,
    value: Option<(T, String)>,
}

impl<T: PartialEq> Slot<T> {
    fn new(item: &'static str) -> Self {
        Self { item, value: None }
    }

    /// Fill the slot; the same value twice is fine, a different one is a conflict.
    fn put(&mut self, value: T, name: &str) -> Result<(), CollateralError> {
        match &self.value {
            None => {
                self.value = Some((value, name.to_owned()));
                Ok(())
            }
            Some((existing, _)) if *existing == value => Ok(()),
            Some((_, first)) => Err(CollateralError::Conflict {
                item: self.item,
                first: quote(first),
                second: quote(name),
            }),
        }
    }

    fn take(self) -> Option<T> {
        self.value.map(|(v, _)| v)
    }
}

/// Everything found so far.
struct Found {
    tcb_info: Slot<Signed<TcbInfo>>,
    qe_identity: Slot<Signed<EnclaveIdentity>>,
    pck_crl: Slot<Crl>,
    root_ca_crl: Slot<Crl>,
    /// Chains given per item by bundles.
    tcb_info_issuer_chain: Vec<Certificate>,
    qe_identity_issuer_chain: Vec<Certificate>,
    pck_crl_issuer_chain: Vec<Certificate>,
    /// Certificates from loose files.
    pool: Vec<Certificate>,
}

fn add_unique(list: &mut Vec<Certificate>, certs: impl IntoIterator<Item = Certificate>) {
    for c in certs {
        if !list.iter().any(|have| have.der() == c.der()) {
            list.push(c);
        }
    }
}

impl Collateral {
    /// Collateral from files as found (PCS responses, certificates, CRLs, bundles), each
    /// classified by its content, not its name; see the [module documentation](self) for the
    /// formats. Files are read in name order, so the result does not depend on the order given.
    /// Missing CRLs give partial collateral.
    ///
    /// # Errors
    /// [`CollateralError::UnrecognisedFile`] for a file of no known format,
    /// [`CollateralError::InFile`] for a recognised but malformed one,
    /// [`CollateralError::Conflict`] when two files give different values for one item,
    /// [`CollateralError::Missing`] when no TCB info, QE identity or certificate was found,
    /// [`CollateralError::TooLarge`] past [`MAX_PCS_FILES`] files or [`MAX_PCS_FILE_LEN`] bytes.
    pub fn from_pcs_files(files: &[(String, Vec<u8>)]) -> Result<Self, CollateralError> {
        if files.len() > MAX_PCS_FILES {
            return Err(CollateralError::TooLarge {
                item: ITEM,
                what: "files",
                limit: MAX_PCS_FILES,
                actual: files.len(),
            });
        }
        let mut ordered: Vec<&(String, Vec<u8>)> = files.iter().collect();
        ordered.sort_by(|a, b| a.0.cmp(&b.0));
        let mut found = Found {
            tcb_info: Slot::new("tcb_info"),
            qe_identity: Slot::new("qe_identity"),
            pck_crl: Slot::new("pck_crl"),
            root_ca_crl: Slot::new("root_ca_crl"),
            tcb_info_issuer_chain: Vec::new(),
            qe_identity_issuer_chain: Vec::new(),
            pck_crl_issuer_chain: Vec::new(),
            pool: Vec::new(),
        };
        for (name, bytes) in ordered {
            if is_skipped(name) {
                continue;
            }
            if bytes.len() > MAX_PCS_FILE_LEN {
                return Err(CollateralError::in_file(name)(CollateralError::TooLarge {
                    item: ITEM,
                    what: "bytes",
                    limit: MAX_PCS_FILE_LEN,
                    actual: bytes.len(),
                }));
            }
            read_file(&mut found, name, bytes)?;
        }
        let tcb_info = found
            .tcb_info
            .take()
            .ok_or(CollateralError::Missing { item: "tcb_info" })?;
        let qe_identity = found.qe_identity.take().ok_or(CollateralError::Missing {
            item: "qe_identity",
        })?;
        let chain = |mut given: Vec<Certificate>, item: &'static str| {
            add_unique(&mut given, found.pool.iter().cloned());
            if given.is_empty() && item != "pck_crl_issuer_chain" {
                Err(CollateralError::Missing { item })
            } else {
                Ok(given)
            }
        };
        let tcb_info_issuer_chain = chain(found.tcb_info_issuer_chain, "tcb_info_issuer_chain")?;
        let qe_identity_issuer_chain =
            chain(found.qe_identity_issuer_chain, "qe_identity_issuer_chain")?;
        let pck_crl_issuer_chain = chain(found.pck_crl_issuer_chain, "pck_crl_issuer_chain")?;
        let pck_crl = found.pck_crl.take();
        super::bundle::refuse_pck_crl_without_chain(pck_crl.as_ref(), &pck_crl_issuer_chain)?;
        Ok(Self::from_parts(CollateralParts {
            tcb_info,
            qe_identity,
            tcb_info_issuer_chain,
            qe_identity_issuer_chain,
            pck_crl_issuer_chain,
            pck_crl,
            root_ca_crl: found.root_ca_crl.take(),
        }))
    }
}

/// Files that accompany collateral without being collateral.
fn is_skipped(name: &str) -> bool {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let lower = base.to_ascii_lowercase();
    lower.starts_with("readme") || lower.ends_with(".md") || lower == "case.json"
}

fn unrecognised(name: &str, detail: impl Into<String>) -> CollateralError {
    CollateralError::UnrecognisedFile {
        name: quote(name),
        detail: detail.into(),
    }
}

fn read_file(found: &mut Found, name: &str, bytes: &[u8]) -> Result<(), CollateralError> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = start.and_then(|i| bytes.get(i)) else {
        return Err(unrecognised(name, "empty"));
    };
    if *first == b'{' {
        return read_json(found, name, bytes);
    }
    if *first == 0x30 {
        return read_der(found, name, bytes);
    }
    let Ok(text) = core::str::from_utf8(bytes) else {
        return Err(unrecognised(name, "neither JSON, DER, PEM nor hex"));
    };
    let pem: Cow<'_, [u8]> = match percent_decode_pem(bytes) {
        Some(decoded) => Cow::Owned(decoded),
        None => Cow::Borrowed(bytes),
    };
    if let Some(found_any) = read_pem(found, name, &pem)? {
        return found_any
            .then_some(())
            .ok_or_else(|| unrecognised(name, "PEM without CERTIFICATE or X509 CRL blocks"));
    }
    let compact: String = text.split_ascii_whitespace().collect();
    if !compact.is_empty() && compact.bytes().all(|b| b.is_ascii_hexdigit()) {
        let der = hex::decode(&compact).map_err(|_| unrecognised(name, "odd-length hex text"))?;
        return read_der(found, name, &der);
    }
    Err(unrecognised(name, "neither JSON, DER, PEM nor hex"))
}

/// PEM blocks: `None` when `bytes` has no BEGIN line; `Some(false)` when none is a certificate
/// or CRL.
fn read_pem(found: &mut Found, name: &str, bytes: &[u8]) -> Result<Option<bool>, CollateralError> {
    let has = |label: &str| {
        let marker = format!("-----BEGIN {label}-----");
        bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
    };
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Ok(None);
    }
    let (certs, crls) = (has("CERTIFICATE"), has("X509 CRL"));
    if certs {
        let list = load_certificates(bytes)
            .map_err(CollateralError::pki("certificate"))
            .map_err(CollateralError::in_file(name))?;
        add_unique(&mut found.pool, list);
    }
    if crls {
        let list = load_crls(bytes)
            .map_err(CollateralError::pki("crl"))
            .map_err(CollateralError::in_file(name))?;
        for crl in list {
            put_crl(found, name, crl)?;
        }
    }
    Ok(Some(certs || crls))
}

/// DER: certificates (one or several), else CRLs.
fn read_der(found: &mut Found, name: &str, der: &[u8]) -> Result<(), CollateralError> {
    match load_certificates(der) {
        Ok(certs) => {
            add_unique(&mut found.pool, certs);
            Ok(())
        }
        Err(cert_error) => match load_crls(der) {
            Ok(crls) => crls
                .into_iter()
                .try_for_each(|crl| put_crl(found, name, crl)),
            Err(_) => Err(unrecognised(
                name,
                format!("DER that is neither a certificate nor a CRL ({cert_error})"),
            )),
        },
    }
}

/// The common name in an issuer written as `CN=..., O=...`.
fn common_name(issuer: &str) -> Option<&str> {
    issuer
        .split(", ")
        .find_map(|part| part.trim().strip_prefix("CN="))
}

fn put_crl(found: &mut Found, name: &str, crl: Crl) -> Result<(), CollateralError> {
    match common_name(crl.issuer()) {
        Some(ROOT_CA_CN) => found.root_ca_crl.put(crl, name),
        Some(cn) if PCK_CA_CNS.contains(&cn) => found.pck_crl.put(crl, name),
        _ => Err(unrecognised(
            name,
            format!("CRL of an unexpected issuer {:?}", quote(crl.issuer())),
        )),
    }
}

fn read_json(found: &mut Found, name: &str, bytes: &[u8]) -> Result<(), CollateralError> {
    let text =
        core::str::from_utf8(bytes).map_err(|_| unrecognised(name, "JSON that is not UTF-8"))?;
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        CollateralError::in_file(name)(CollateralError::Json {
            item: ITEM,
            detail: super::error::detail(&e.to_string()),
        })
    })?;
    let signature = |item: &'static str| -> Result<[u8; 64], CollateralError> {
        let hex = envelope
            .signature
            .as_deref()
            .ok_or(CollateralError::MissingField {
                item,
                field: String::from("signature"),
            })?;
        signature_from_hex(item, "signature", hex)
    };
    match (
        envelope.tcb_info,
        envelope.enclave_identity.or(envelope.qe_identity_v1),
    ) {
        (Some(_), Some(_)) => Err(unrecognised(
            name,
            "both tcbInfo and enclaveIdentity in one file",
        )),
        (Some(body), None) => {
            let signed = signature("tcb_info")
                .and_then(|sig| Signed::tcb_info(body.get().as_bytes().to_vec(), sig))
                .map_err(CollateralError::in_file(name))?;
            found.tcb_info.put(signed, name)
        }
        (None, Some(body)) => {
            let signed = signature("qe_identity")
                .and_then(|sig| Signed::qe_identity(body.get().as_bytes().to_vec(), sig))
                .map_err(CollateralError::in_file(name))?;
            found.qe_identity.put(signed, name)
        }
        (None, None)
            if envelope.bundle_tcb_info.is_some() || envelope.bundle_qe_identity.is_some() =>
        {
            let bundle =
                Collateral::from_bundle_json(bytes).map_err(CollateralError::in_file(name))?;
            let parts = bundle.into_parts();
            found.tcb_info.put(parts.tcb_info, name)?;
            found.qe_identity.put(parts.qe_identity, name)?;
            if let Some(crl) = parts.pck_crl {
                found.pck_crl.put(crl, name)?;
            }
            if let Some(crl) = parts.root_ca_crl {
                found.root_ca_crl.put(crl, name)?;
            }
            add_unique(
                &mut found.tcb_info_issuer_chain,
                parts.tcb_info_issuer_chain,
            );
            add_unique(
                &mut found.qe_identity_issuer_chain,
                parts.qe_identity_issuer_chain,
            );
            add_unique(&mut found.pck_crl_issuer_chain, parts.pck_crl_issuer_chain);
            Ok(())
        }
        (None, None) => Err(unrecognised(
            name,
            "JSON without tcbInfo, enclaveIdentity or collateral bundle fields",
        )),
    }
}

/// Decode URL-encoded PEM (`-----BEGIN%20CERTIFICATE-----%0A...`), as PCS sends issuer chains
/// in response headers. `None` when `bytes` is not URL-encoded PEM (or the encoding is broken).
pub(crate) fn percent_decode_pem(bytes: &[u8]) -> Option<Vec<u8>> {
    let text = core::str::from_utf8(bytes).ok()?.trim();
    let encoded = text.starts_with("-----BEGIN%20") || text.starts_with("%2D%2D%2D%2D%2DBEGIN");
    if !encoded {
        return None;
    }
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let (hi, lo, after) = match tail {
                [hi, lo, after @ ..] => (*hi, *lo, after),
                _ => return None,
            };
            let hex_pair = [hi, lo];
            let pair = core::str::from_utf8(&hex_pair).ok()?;
            out.push(u8::from_str_radix(pair, 16).ok()?);
            rest = after;
        } else {
            // `+` stays `+`: it is a base64 character, and PCS encodes it as `%2B` anyway.
            out.push(b);
            rest = tail;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collateral::tests::{collateral_cases, read_json as read_case_json};

    fn folder_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// Every as-found `collateral/` folder loads; where a bundle exists, both give the same
    /// signed bodies and signatures. Folders missing CRLs load as partial and are reported.
    #[test]
    fn raw_folders_load_like_their_bundles() {
        let mut report = Vec::new();
        for case in collateral_cases() {
            let dir = case.dir.join("collateral");
            if !dir.is_dir() {
                report.push(format!("{}: no collateral/ folder", case.name));
                continue;
            }
            let files = folder_files(&dir);
            let loaded = match Collateral::from_pcs_files(&files) {
                Ok(c) => c,
                Err(e) => panic!("{}: could not load: {e}", case.name),
            };
            let bundle = read_case_json(&case.bundle);
            assert_eq!(
                loaded.tcb_info().body_str(),
                bundle["tcb_info"].as_str().unwrap(),
                "{}",
                case.name
            );
            assert_eq!(
                loaded.qe_identity().body_str(),
                bundle["qe_identity"].as_str().unwrap(),
                "{}",
                case.name
            );
            assert_eq!(
                hex::encode(loaded.tcb_info().signature()),
                bundle["tcb_info_signature"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
            );
            assert_eq!(
                hex::encode(loaded.qe_identity().signature()),
                bundle["qe_identity_signature"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
            );
            let from_bundle =
                Collateral::from_bundle_json(&std::fs::read(&case.bundle).unwrap()).unwrap();
            // CRLs found in the folder are the bundle's.
            if let Some(crl) = loaded.pck_crl() {
                assert_eq!(Some(crl), from_bundle.pck_crl(), "{}", case.name);
            }
            if let Some(crl) = loaded.root_ca_crl() {
                assert_eq!(Some(crl), from_bundle.root_ca_crl(), "{}", case.name);
            }
            // The folder's certificates include the bundle's TCB signer.
            let signer = &from_bundle.tcb_info_issuer_chain()[0];
            assert!(
                loaded.tcb_info_issuer_chain().contains(signer),
                "{}",
                case.name
            );
            let missing: Vec<&str> = [
                ("pck_crl", loaded.pck_crl().is_none()),
                ("root_ca_crl", loaded.root_ca_crl().is_none()),
            ]
            .into_iter()
            .filter_map(|(n, m)| m.then_some(n))
            .collect();
            report.push(if missing.is_empty() {
                format!("{}: complete ({} files)", case.name, files.len())
            } else {
                format!(
                    "{}: partial, missing {} ({} files)",
                    case.name,
                    missing.join(" and "),
                    files.len()
                )
            });
        }
        for line in &report {
            eprintln!("{line}");
        }
    }

    #[test]
    fn file_order_does_not_matter() {
        let Some(case) = collateral_cases()
            .into_iter()
            .find(|c| c.name == "tdx/tinfoil-tdx-v4-90c06f-2026-01")
        else {
            return;
        };
        let mut files = folder_files(&case.dir.join("collateral"));
        let a = Collateral::from_pcs_files(&files).unwrap();
        files.reverse();
        let b = Collateral::from_pcs_files(&files).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert!(!a.is_partial());
        // The same files plus a README and a duplicate of the TCB info: still the same.
        let tcb = files
            .iter()
            .find(|(n, _)| n.starts_with("tcb_info_90c06f000000.json"))
            .unwrap()
            .clone();
        files.push((String::from("copy-of-tcb.json"), tcb.1));
        files.push((String::from("README.md"), b"notes".to_vec()));
        files.push((String::from("sub/readme.txt"), b"notes".to_vec()));
        assert_eq!(
            Collateral::from_pcs_files(&files).unwrap().digest(),
            a.digest()
        );
    }

    #[test]
    fn conflicts_and_unrecognised_files_are_named() {
        let cases = collateral_cases();
        let (Some(tdx), Some(other)) = (
            cases
                .iter()
                .find(|c| c.name == "tdx/auto-tdx-v4-00806f-2025-06"),
            cases
                .iter()
                .find(|c| c.name == "tdx/auto-tdx-v4-90c06f-2025-02"),
        ) else {
            return;
        };
        let mut files = folder_files(&tdx.dir.join("collateral"));
        let base = Collateral::from_pcs_files(&files).unwrap();
        assert!(!base.is_partial());

        // A second, different TCB info.
        let other_tcb = std::fs::read(other.dir.join("collateral/tcbinfo.json")).unwrap();
        let mut two = files.clone();
        two.push((String::from("zz_other_tcbinfo.json"), other_tcb));
        let err = Collateral::from_pcs_files(&two).unwrap_err();
        assert_eq!(
            err,
            CollateralError::Conflict {
                item: "tcb_info",
                first: String::from("tcbinfov3_00806f050000.json"),
                second: String::from("zz_other_tcbinfo.json"),
            }
        );
        // A different root CA CRL (another issue of it).
        let other_crl = std::fs::read(other.dir.join("collateral/root_ca_crl.der")).unwrap();
        let mut two = files.clone();
        two.push((String::from("zz_root.crl"), other_crl));
        assert!(matches!(
            Collateral::from_pcs_files(&two),
            Err(CollateralError::Conflict {
                item: "root_ca_crl",
                ..
            })
        ));

        for (name, bytes, check) in [
            (
                "notes.txt",
                &b"hello world"[..],
                "neither JSON, DER, PEM nor hex",
            ),
            (
                "data.bin",
                b"\x01\x02\x03",
                "neither JSON, DER, PEM nor hex",
            ),
            ("empty.pem", b"  \n", "empty"),
            ("other.json", b"{\"foo\": 1}", "JSON without"),
            (
                "key.pem",
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "PEM without",
            ),
            ("bad.der", b"\x30\x03\x02\x01\x01", "DER that is neither"),
        ] {
            let mut with = files.clone();
            with.push((name.to_owned(), bytes.to_vec()));
            match Collateral::from_pcs_files(&with) {
                Err(CollateralError::UnrecognisedFile { name: n, detail }) => {
                    assert_eq!(n, name);
                    assert!(detail.contains(check), "{name}: {detail}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        // Recognised but malformed: named by file.
        let mut with = files.clone();
        with.push((
            String::from("broken.json"),
            b"{\"tcbInfo\": {\"version\": 9}, \"signature\": \"00\"}".to_vec(),
        ));
        assert!(matches!(
            Collateral::from_pcs_files(&with),
            Err(CollateralError::InFile { name, .. }) if name == "broken.json"
        ));
        // Missing pieces.
        files.retain(|(n, _)| !n.starts_with("qe_td"));
        assert_eq!(
            Collateral::from_pcs_files(&files).unwrap_err(),
            CollateralError::Missing {
                item: "qe_identity"
            }
        );
        files.retain(|(n, _)| !n.starts_with("tcbinfo"));
        assert_eq!(
            Collateral::from_pcs_files(&files).unwrap_err(),
            CollateralError::Missing { item: "tcb_info" }
        );
        let too_many = vec![(String::from("x"), Vec::new()); MAX_PCS_FILES + 1];
        assert!(matches!(
            Collateral::from_pcs_files(&too_many),
            Err(CollateralError::TooLarge { .. })
        ));
    }

    #[test]
    fn hex_and_pem_crls_and_url_encoded_chains() {
        let Some(case) = collateral_cases()
            .into_iter()
            .find(|c| c.name == "tdx/auto-tdx-v4-00806f-2025-06")
        else {
            return;
        };
        let dir = case.dir.join("collateral");
        let base = Collateral::from_pcs_files(&folder_files(&dir)).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, bytes) in folder_files(&dir) {
            let converted = if name == "pck_crl_platform.der" {
                // Hex text with line breaks, as some caches store it.
                let hex = hex::encode_upper(&bytes);
                hex.as_bytes()
                    .chunks(64)
                    .flat_map(|l| l.iter().copied().chain(*b"\n"))
                    .collect()
            } else if name == "root_ca_crl.der" {
                tessera_pki::to_pem("X509 CRL", &bytes).into_bytes()
            } else if name.ends_with(".der") {
                // URL-encoded PEM, as in a PCS response header.
                let pem = tessera_pki::to_pem("CERTIFICATE", &bytes);
                pem.replace(' ', "%20")
                    .replace('\n', "%0A")
                    .replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D")
                    .into_bytes()
            } else {
                bytes
            };
            files.push((name, converted));
        }
        let converted = Collateral::from_pcs_files(&files).unwrap();
        assert_eq!(converted.digest(), base.digest());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode_pem(b"-----BEGIN%20CERTIFICATE-----%0AAB%2Bc%3D%0A").unwrap(),
            b"-----BEGIN CERTIFICATE-----\nAB+c=\n"
        );
        assert_eq!(
            percent_decode_pem(b"%2D%2D%2D%2D%2DBEGIN%20X+y").unwrap(),
            b"-----BEGIN X+y"
        );
        assert_eq!(percent_decode_pem(b"-----BEGIN CERTIFICATE-----"), None);
        assert_eq!(percent_decode_pem(b"-----BEGIN%20%4"), None);
        assert_eq!(percent_decode_pem(b"-----BEGIN%20%zz"), None);
        assert_eq!(percent_decode_pem(b"-----BEGIN%20%"), None);
        assert_eq!(percent_decode_pem(b"\xff"), None);
    }

    #[test]
    fn crl_issuers_by_common_name() {
        assert_eq!(
            common_name("CN=Intel SGX Root CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US"),
            Some("Intel SGX Root CA")
        );
        assert_eq!(
            common_name("C=US, CN=Intel SGX PCK Platform CA"),
            Some("Intel SGX PCK Platform CA")
        );
        assert_eq!(common_name("O=Intel"), None);
        assert!(is_skipped("README"));
        assert!(is_skipped("a/b/Readme.txt"));
        assert!(is_skipped("case.json"));
        assert!(is_skipped("NOTES.md"));
        assert!(!is_skipped("tcbinfo.json"));
    }
}
