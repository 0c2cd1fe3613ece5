//! Loads one TDX case of the shared vectors: quote, collateral bundle, verification time, status.

use tessera_pki::UnixTime;

use crate::CaseError;
use crate::case::{read, vectors_dir};

/// The TDX case every TDX scenario runs on unless told otherwise: dcap-qvl's own v4 TDX quote
/// (FMSPC 20a06f000000), UpToDate at its `at` time.
pub const DEFAULT_TDX_CASE: &str = "tdx/phala-tdx-v4-20a06f-2025-09";

/// The fields of a TDX `case.json` the bench reads.
#[derive(serde::Deserialize)]
struct CaseFile {
    evidence: String,
    collateral: String,
    at: String,
    expect: Expect,
}

/// `expect` of `case.json`.
#[derive(serde::Deserialize)]
struct Expect {
    verdict: String,
    tcb_status: Option<String>,
}

/// One TDX case, loaded: the raw inputs every contestant starts from.
#[derive(Clone, Debug)]
pub struct TdxCase {
    /// The case folder, relative to the vectors folder.
    pub name: String,
    /// The raw quote (trailing padding included, as found).
    pub quote: Vec<u8>,
    /// The collateral bundle, JSON in dcap-qvl's `QuoteCollateralV3` layout.
    pub collateral_json: Vec<u8>,
    /// The verification time from `case.json`.
    pub at: UnixTime,
    /// Intel's TCB status at `at` (`expect.tcb_status`), e.g. `UpToDate`.
    pub tcb_status: String,
}

impl TdxCase {
    /// Load `name` (e.g. [`DEFAULT_TDX_CASE`]) from [`vectors_dir`].
    ///
    /// # Errors
    /// [`CaseError`] when a file is missing or malformed, or the case is not one that verifies
    /// (`expect.verdict` `accept` with an `expect.tcb_status`).
    pub fn load(name: &str) -> Result<Self, CaseError> {
        let dir = vectors_dir().join(name);
        let case_path = dir.join("case.json");
        let file: CaseFile =
            serde_json::from_slice(&read(&case_path)?).map_err(|source| CaseError::Json {
                path: case_path.clone(),
                source,
            })?;
        let at = UnixTime::parse_rfc3339(&file.at).map_err(|source| CaseError::Pki {
            path: case_path.clone(),
            source,
        })?;
        // Only a quote that verifies can be timed: an error path is not the verification path.
        let tcb_status = match (file.expect.verdict.as_str(), file.expect.tcb_status) {
            ("accept", Some(status)) => status,
            (verdict, status) => {
                return Err(CaseError::Shape {
                    detail: format!(
                        "want a TDX case that verifies; {name} expects {verdict:?} with TCB status {status:?}"
                    ),
                });
            }
        };
        Ok(Self {
            name: name.to_owned(),
            quote: read(&dir.join(&file.evidence))?,
            collateral_json: read(&dir.join(&file.collateral))?,
            at,
            tcb_status,
        })
    }
}
