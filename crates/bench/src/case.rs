//! Loads one SEV-SNP case of the shared vectors: report, VCEK, AMD chain and verification time.

use std::path::{Path, PathBuf};

use tessera_pki::{Certificate, PkiError, UnixTime, load_certificates};

/// The case every scenario runs on unless told otherwise: a Milan v3 report signed by a VCEK.
pub const DEFAULT_CASE: &str = "snp/milan-v3_oak-rk_20241205-4bf52c";

/// Environment variable naming the vectors folder.
pub const VECTORS_ENV: &str = "TESSERA_VECTORS";

/// Why a case could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum CaseError {
    /// A file of the case could not be read (wrong `TESSERA_VECTORS`, or a missing file).
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `case.json` is not schema-1 JSON with `evidence`, `certs` and `at`.
    Json {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A certificate file does not parse, or `at` is not RFC 3339.
    Pki {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: PkiError,
    },
    /// The certificates are not one VEK followed by ASK and ARK.
    Shape {
        /// What is wrong.
        detail: String,
    },
}

impl std::fmt::Display for CaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::Json { path, source } => write!(f, "bad case file {}: {source}", path.display()),
            Self::Pki { path, source } => write!(f, "bad input in {}: {source}", path.display()),
            Self::Shape { detail } => write!(f, "unexpected case shape: {detail}"),
        }
    }
}

impl std::error::Error for CaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Json { source, .. } => Some(source),
            Self::Pki { source, .. } => Some(source),
            Self::Shape { .. } => None,
        }
    }
}

/// The fields of `case.json` the bench reads.
#[derive(serde::Deserialize)]
struct CaseFile {
    evidence: String,
    certs: Vec<String>,
    at: String,
}

/// One SNP case, loaded: the raw inputs every contestant starts from.
#[derive(Clone, Debug)]
pub struct Case {
    /// The case folder, relative to the vectors folder.
    pub name: String,
    /// The raw attestation report (0x4A0 bytes).
    pub report: Vec<u8>,
    /// The VEK (VCEK or VLEK) certificate, DER.
    pub vek_der: Vec<u8>,
    /// The VEK, parsed (setup only; the cold scenario parses `vek_der` itself).
    pub vek: Certificate,
    /// The AMD SEV Key (intermediate), parsed.
    pub ask: Certificate,
    /// The AMD Root Key, parsed.
    pub ark: Certificate,
    /// The verification time from `case.json`.
    pub at: UnixTime,
}

/// The vectors folder: `TESSERA_VECTORS`, or `/work/shared/vectors` relative to this crate.
#[must_use]
pub fn vectors_dir() -> PathBuf {
    std::env::var_os(VECTORS_ENV).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
        PathBuf::from,
    )
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CaseError> {
    std::fs::read(path).map_err(|source| CaseError::Io {
        path: path.to_owned(),
        source,
    })
}

impl Case {
    /// Load `name` (e.g. [`DEFAULT_CASE`]) from [`vectors_dir`].
    ///
    /// # Errors
    /// [`CaseError`] when a file is missing or malformed, or the case does not hold one VEK and an
    /// ASK + ARK chain.
    pub fn load(name: &str) -> Result<Self, CaseError> {
        let dir = vectors_dir().join(name);
        let case_path = dir.join("case.json");
        let file: CaseFile =
            serde_json::from_slice(&read(&case_path)?).map_err(|source| CaseError::Json {
                path: case_path.clone(),
                source,
            })?;
        let report = read(&dir.join(&file.evidence))?;
        let at = UnixTime::parse_rfc3339(&file.at).map_err(|source| CaseError::Pki {
            path: case_path.clone(),
            source,
        })?;

        // The case lists the VEK first, then the AMD chain (ASK then ARK), as DER or PEM files.
        let mut certs = Vec::new();
        for cert_file in &file.certs {
            let path = dir.join(cert_file);
            let bytes = read(&path)?;
            let loaded =
                load_certificates(&bytes).map_err(|source| CaseError::Pki { path, source })?;
            certs.extend(loaded);
        }
        let [vek, ask, ark]: [Certificate; 3] =
            certs
                .try_into()
                .map_err(|certs: Vec<Certificate>| CaseError::Shape {
                    detail: format!(
                        "want VEK, ASK, ARK; case lists {} certificates",
                        certs.len()
                    ),
                })?;
        if !ark.is_self_issued() || ask.issuer_der() != ark.subject_der() {
            return Err(CaseError::Shape {
                detail: String::from("the chain is not ASK then a self-issued ARK"),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            report,
            vek_der: vek.der().to_vec(),
            vek,
            ask,
            ark,
            at,
        })
    }
}
