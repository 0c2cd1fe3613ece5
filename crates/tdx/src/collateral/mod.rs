//! Intel DCAP collateral: parse TCB info, enclave (QE) identities, issuer chains and CRLs into
//! typed values, keeping the exact signed bytes; no signature or freshness checks (that is
//! `verify`'s job).
//!
//! Formats (Intel SGX and TDX DCAP Provisioning Certification Service API v4, appendices "TCB
//! Info V2/V3" and "Enclave Identity V2"):
//!
//! - [`tcb_info`]: [`TcbInfo`] from the object inside `"tcbInfo"` (versions 2 and 3, SGX and TDX).
//! - [`identity`]: [`EnclaveIdentity`] from the object inside `"enclaveIdentity"` (version 2).
//! - [`status`]: Intel's seven [`TcbStatus`] names.
//! - [`signed`]: [`Signed`], an item with its exact signed body and `r ‖ s` signature.
//! - [`bundle`]: [`Collateral`], the whole set, and [`CollateralBundle`], its JSON form in the
//!   dcap-qvl `QuoteCollateralV3` layout.
//! - [`pcs`]: [`Collateral::from_pcs_files`], collateral from files as PCS serves them.
//!
//! Untrusted input is bounded ([`MAX_BODY_LEN`], [`MAX_TCB_LEVELS`], ...), read without
//! indexing or panics, and rejected with a [`CollateralError`] naming the item and the JSON path
//! of the field. JSON with duplicate keys is rejected (parsers disagree on which one counts; the
//! verifier must read from signed bytes the values Intel's QVL reads).

pub mod bundle;
mod error;
pub mod identity;
mod json;
pub mod pcs;
pub mod signed;
pub mod status;
pub mod tcb_info;

pub use bundle::{Collateral, CollateralBundle, CollateralParts};
pub use error::CollateralError;
pub use identity::{EnclaveIdentity, EnclaveIdentityId, IsvTcbLevel};
pub use pcs::MAX_PCS_FILE_LEN;
pub use signed::{SIGNATURE_LEN, Signed};
pub use status::TcbStatus;
pub use tcb_info::{
    TCB_COMPONENTS, TcbComponent, TcbInfo, TcbInfoId, TcbLevel, TdxModule, TdxModuleIdentity,
};

/// Most bytes accepted for one signed body (TCB info or enclave identity). Intel's largest TCB
/// infos are a few tens of kilobytes.
pub const MAX_BODY_LEN: usize = 1024 * 1024;
/// Most bytes accepted for a collateral bundle JSON.
pub const MAX_BUNDLE_LEN: usize = 8 * 1024 * 1024;
/// Most levels in one `tcbLevels` array.
pub const MAX_TCB_LEVELS: usize = 256;
/// Most entries in `tdxModuleIdentities`.
pub const MAX_MODULE_IDENTITIES: usize = 64;
/// Most advisory IDs in one level.
pub const MAX_ADVISORY_IDS: usize = 256;
/// Most bytes in one string field (advisory ID, category, module id).
pub const MAX_STRING_LEN: usize = 256;
/// Most files accepted by [`Collateral::from_pcs_files`].
pub const MAX_PCS_FILES: usize = 64;

fn check_body_len(item: &'static str, body: &[u8], limit: usize) -> Result<(), CollateralError> {
    if body.len() > limit {
        return Err(CollateralError::TooLarge {
            item,
            what: "bytes",
            limit,
            actual: body.len(),
        });
    }
    Ok(())
}

// The functions below are fuzz harnesses: the `fuzz/` targets are three-line shims over them.
// A failed assertion is the finding a fuzzer reports, so they may panic, unlike the parsers.

/// Fuzz harness: `TcbInfo::parse_json`; on success the parsed value keeps the schema's
/// invariants and `Signed::tcb_info` over the same bytes gives the same value.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_tcb_info(data: &[u8]) {
    if let Ok(info) = TcbInfo::parse_json(data) {
        assert!(matches!(info.version, 2 | 3));
        assert_eq!(info.tcb_type, 0);
        assert!(!info.tcb_levels.is_empty() && info.tcb_levels.len() <= MAX_TCB_LEVELS);
        let tdx = info.id == TcbInfoId::Tdx;
        assert_eq!(info.tdx_module.is_some(), tdx);
        assert!(tdx || info.tdx_module_identities.is_empty());
        for level in &info.tcb_levels {
            match &level.tdx_components {
                Some(c) => assert!(tdx && c.len() == TCB_COMPONENTS),
                None => assert!(!tdx),
            }
        }
        let signed = Signed::tcb_info(data.to_vec(), [0; SIGNATURE_LEN]);
        assert_eq!(signed.map(Signed::into_value).as_ref(), Ok(&info));
        let _ = format!("{info:?}");
    }
}

/// Fuzz harness: `EnclaveIdentity::parse_json`; on success the value keeps the schema's
/// invariants and `Signed::qe_identity` over the same bytes gives the same value.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_qe_identity(data: &[u8]) {
    if let Ok(identity) = EnclaveIdentity::parse_json(data) {
        assert_eq!(identity.version, 2);
        assert!(!identity.tcb_levels.is_empty() && identity.tcb_levels.len() <= MAX_TCB_LEVELS);
        let signed = Signed::qe_identity(data.to_vec(), [0; SIGNATURE_LEN]);
        assert_eq!(signed.map(Signed::into_value).as_ref(), Ok(&identity));
    }
}

/// Fuzz harness: `Collateral::from_bundle_json` and `from_pcs_files` over one file; on success
/// the bundle form parses back to the same collateral with the same digest. Also the
/// `CollateralBundle` serde round trip.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_bundle(data: &[u8]) {
    if let Ok(collateral) = Collateral::from_bundle_json(data) {
        let json = serde_json::to_vec(&collateral.to_bundle())
            .unwrap_or_else(|e| panic!("bundle does not serialize: {e}"));
        let again = Collateral::from_bundle_json(&json);
        assert_eq!(again.as_ref(), Ok(&collateral));
        assert_eq!(again.map(|c| c.digest()).ok(), Some(collateral.digest()));
        assert_eq!(
            collateral.is_partial(),
            collateral.pck_crl().is_none() || collateral.root_ca_crl().is_none()
        );
        let _ = format!("{collateral:?}");
    }
    if let Ok(bundle) = serde_json::from_slice::<CollateralBundle>(data) {
        let json = serde_json::to_vec(&bundle)
            .unwrap_or_else(|e| panic!("bundle does not serialize: {e}"));
        let back = serde_json::from_slice::<CollateralBundle>(&json).ok();
        assert_eq!(back.as_ref(), Some(&bundle));
    }
    let _ = Collateral::from_pcs_files(&[(String::from("fuzz"), data.to_vec())]);
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};

    /// A TDX or SGX vector case with collateral.
    pub(crate) struct Case {
        /// `tdx/<case>` or `sgx/<case>`.
        pub(crate) name: String,
        /// The case folder.
        pub(crate) dir: PathBuf,
        /// `tee` from case.json.
        pub(crate) tee: String,
        /// The collateral bundle (`collateral.json` or `collateral.partial.json`).
        pub(crate) bundle: PathBuf,
    }

    pub(crate) use crate::abi::quote::tests::vectors_dir;

    pub(crate) fn read_json(path: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every `tdx/<case>/` and `sgx/<case>/` folder with a collateral bundle, sorted.
    pub(crate) fn collateral_cases() -> Vec<Case> {
        let Some(root) = vectors_dir() else {
            return Vec::new();
        };
        let mut cases = Vec::new();
        for tee in ["tdx", "sgx"] {
            let Ok(entries) = std::fs::read_dir(root.join(tee)) else {
                continue;
            };
            for entry in entries {
                let dir = entry.unwrap().path();
                let case_json = dir.join("case.json");
                if !case_json.is_file() {
                    continue;
                }
                let meta = read_json(&case_json);
                let Some(file) = meta["collateral"].as_str() else {
                    continue;
                };
                cases.push(Case {
                    name: format!("{tee}/{}", dir.file_name().unwrap().to_string_lossy()),
                    tee: meta["tee"].as_str().unwrap_or(tee).to_owned(),
                    bundle: dir.join(file),
                    dir,
                });
            }
        }
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(
            !cases.is_empty(),
            "no TDX/SGX cases under {}",
            root.display()
        );
        cases
    }

    proptest::proptest! {
        /// Real collateral with a few bytes changed: parsing may fail, never panic.
        #[test]
        fn mutated_real_collateral_never_panics(
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()),
                1..6,
            ),
        ) {
            let Some(case) = collateral_cases()
                .into_iter()
                .find(|c| c.name == "tdx/auto-tdx-v4-00806f-2025-06")
            else {
                return Ok(());
            };
            let bundle = std::fs::read(&case.bundle).unwrap();
            let json = read_json(&case.bundle);
            let mutate = |mut bytes: Vec<u8>| {
                for (at, value) in &edits {
                    let i = at.index(bytes.len());
                    bytes[i] = *value;
                }
                bytes
            };
            super::fuzz_bundle(&mutate(bundle));
            super::fuzz_tcb_info(&mutate(json["tcb_info"].as_str().unwrap().as_bytes().to_vec()));
            super::fuzz_qe_identity(&mutate(
                json["qe_identity"].as_str().unwrap().as_bytes().to_vec(),
            ));
        }
    }

    #[test]
    fn fuzz_harnesses_accept_real_inputs() {
        for case in collateral_cases() {
            let bytes = std::fs::read(&case.bundle).unwrap();
            super::fuzz_bundle(&bytes);
            let json = read_json(&case.bundle);
            super::fuzz_tcb_info(json["tcb_info"].as_str().unwrap().as_bytes());
            super::fuzz_qe_identity(json["qe_identity"].as_str().unwrap().as_bytes());
        }
    }
}
