//! Evidence from the Linux configfs-tsm report interface (`/sys/kernel/config/tsm/report`,
//! Linux 6.7+), for SEV-SNP and TDX guests alike.
//!
//! One report is: create an entry directory, read `generation`, write `inblob` (the 64-byte
//! REPORT_DATA) and, for SEV-SNP, `privlevel` (the VMPL), read `outblob`, `auxblob` (SEV-SNP's
//! certificate table, when the host supplied one) and `provider`, read `generation` again, and
//! remove the entry. The kernel increments `generation` on every write to the entry; when it moved
//! by more than our own writes, another writer used the same entry between our write and our read,
//! the `outblob` may carry its REPORT_DATA, and the report is taken again (a bounded number of
//! times). The root directory is a parameter, and file access goes through [`TsmFs`], so the
//! exact sequence of operations is tested without a kernel.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Where the kernel mounts the report interface.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";

/// Largest `outblob` read (a TDX quote with its certification data is a few KiB; an SNP report
/// 1184 bytes).
pub const MAX_OUTBLOB: u64 = 64 * 1024;
/// Largest `auxblob` read (the SNP certificate table: VCEK, ASK, ARK, a few KiB).
pub const MAX_AUXBLOB: u64 = 64 * 1024;
/// Largest `provider` or `generation` read.
const MAX_SMALL: u64 = 64;

/// How configfs-tsm failed.
#[derive(Debug, Error)]
pub enum TsmError {
    /// A file operation failed.
    #[error("configfs-tsm: {op} {path}: {source}")]
    Io {
        /// The operation (`mkdir`, `read`, `write`, `rmdir`).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file held something unexpected.
    #[error("configfs-tsm: {field}: {reason}")]
    Malformed {
        /// The attribute.
        field: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Another writer kept changing the entry.
    #[error("configfs-tsm: generation changed by another writer in each of {attempts} attempts")]
    Contended {
        /// Attempts made.
        attempts: u32,
    },
}

/// The file operations configfs-tsm needs; [`RealFs`] does them on the file system. Every
/// method fails with the operating system's error for that file.
#[allow(clippy::missing_errors_doc)]
pub trait TsmFs {
    /// Create a directory.
    fn mkdir(&self, path: &Path) -> std::io::Result<()>;
    /// Remove an (attribute-only) directory.
    fn rmdir(&self, path: &Path) -> std::io::Result<()>;
    /// Write the whole of `bytes` to an attribute.
    fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()>;
    /// Read an attribute, at most `max` bytes (more is an error).
    fn read(&self, path: &Path, max: u64) -> std::io::Result<Vec<u8>>;
    /// Whether an attribute exists.
    fn exists(&self, path: &Path) -> bool;
}

/// [`TsmFs`] on the real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl TsmFs for RealFs {
    fn mkdir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir(path)
    }
    fn rmdir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        // One write(2) of the whole blob: configfs binary attributes take it at once.
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.write_all(bytes)
    }
    fn read(&self, path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        std::fs::File::open(path)?
            .take(max.saturating_add(1))
            .read_to_end(&mut out)?;
        if u64::try_from(out.len()).unwrap_or(u64::MAX) > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than {max} bytes"),
            ));
        }
        Ok(out)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// One report read from configfs-tsm.
#[derive(Debug, Clone)]
pub struct TsmReport {
    /// The kernel's provider name (`sev_guest`, `tdx_guest`).
    pub provider: String,
    /// The report or quote.
    pub outblob: Vec<u8>,
    /// The SEV-SNP certificate table, when present and not empty.
    pub auxblob: Option<Vec<u8>>,
    /// Attempts it took (1 without contention).
    pub attempts: u32,
}

/// The configfs-tsm report interface at a root directory.
#[derive(Debug, Clone)]
pub struct ConfigfsTsm<F: TsmFs = RealFs> {
    root: PathBuf,
    privlevel: Option<u8>,
    max_attempts: u32,
    fs: F,
}

impl ConfigfsTsm<RealFs> {
    /// The interface at `root` (normally [`DEFAULT_ROOT`]).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_fs(root, RealFs)
    }
}

/// Parses a `generation` attribute (decimal, a trailing newline allowed).
///
/// # Errors
/// [`TsmError::Malformed`].
pub fn parse_generation(bytes: &[u8]) -> Result<u64, TsmError> {
    let text = std::str::from_utf8(bytes)
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| TsmError::Malformed {
            field: "generation",
            reason: "not a decimal number".into(),
        })?;
    text.parse().map_err(|_| TsmError::Malformed {
        field: "generation",
        reason: "out of range".into(),
    })
}

/// Parses a `provider` attribute: a short name of lowercase letters, digits and `_`.
///
/// # Errors
/// [`TsmError::Malformed`].
pub fn parse_provider(bytes: &[u8]) -> Result<String, TsmError> {
    std::str::from_utf8(bytes)
        .ok()
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && t.len() <= 32
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(str::to_owned)
        .ok_or_else(|| TsmError::Malformed {
            field: "provider",
            reason: "not a provider name".into(),
        })
}

/// What [`parse_generation`] must give, worked out apart from it: the text between whitespace
/// is ASCII digits whose value (leading zeros dropped) fits a `u64`.
fn expected_generation(bytes: &[u8]) -> Option<u64> {
    let t = std::str::from_utf8(bytes)
        .ok()?
        .trim_matches(char::is_whitespace);
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let significant = t.trim_start_matches('0');
    if significant.len() > 20 {
        return None;
    }
    let v = significant
        .chars()
        .try_fold(0u128, |v, c| Some(v * 10 + u128::from(c.to_digit(10)?)))?;
    u64::try_from(v).ok()
}

/// What [`parse_provider`] must give: the text between whitespace when it is 1..=32 of
/// `[a-z0-9_]`.
fn expected_provider(bytes: &[u8]) -> Option<&str> {
    let t = std::str::from_utf8(bytes)
        .ok()?
        .trim_matches(char::is_whitespace);
    let ok =
        (1..=32).contains(&t.len()) && t.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'));
    ok.then_some(t)
}

/// Fuzz entry point for the attribute parsers. Oracles: each accepts exactly what its
/// grammar allows (worked out apart from it) with that value, and what it accepts round-trips
/// as the kernel writes it (the value and a newline) to the same value.
#[doc(hidden)]
#[allow(clippy::panic)]
pub fn fuzz_attributes(data: &[u8]) {
    let generation = parse_generation(data).ok();
    assert_eq!(generation, expected_generation(data), "generation {data:?}");
    if let Some(n) = generation {
        assert_eq!(parse_generation(format!("{n}\n").as_bytes()).ok(), Some(n));
    }
    let provider = parse_provider(data).ok();
    assert_eq!(
        provider.as_deref(),
        expected_provider(data),
        "provider {data:?}"
    );
    if let Some(p) = provider {
        assert_eq!(parse_provider(format!("{p}\n").as_bytes()).ok(), Some(p));
    }
}

impl<F: TsmFs> ConfigfsTsm<F> {
    /// The interface at `root`, with file access through `fs`.
    #[must_use]
    pub fn with_fs(root: impl Into<PathBuf>, fs: F) -> Self {
        Self {
            root: root.into(),
            privlevel: None,
            max_attempts: 3,
            fs,
        }
    }

    /// Write `privlevel` (SEV-SNP: the VMPL the report is requested for, 0..=3).
    #[must_use]
    pub fn with_privlevel(mut self, level: u8) -> Self {
        self.privlevel = Some(level);
        self
    }

    /// Attempts before giving up on a contended entry (at least 1; 3 by default).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the interface is there.
    #[must_use]
    pub fn available(&self) -> bool {
        self.fs.exists(&self.root)
    }

    fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TsmError {
        let path = path.to_owned();
        move |source| TsmError::Io { op, path, source }
    }

    /// The kernel's provider name (`sev_guest`, `tdx_guest`): an entry is made, its `provider`
    /// read, and the entry removed.
    ///
    /// # Errors
    /// [`TsmError`].
    pub fn provider(&self) -> Result<String, TsmError> {
        let entry = self.root.join(entry_name());
        self.fs.mkdir(&entry).map_err(Self::io("mkdir", &entry))?;
        let path = entry.join("provider");
        let read = self
            .fs
            .read(&path, MAX_SMALL)
            .map_err(Self::io("read", &path))
            .and_then(|b| parse_provider(&b));
        let removed = self.fs.rmdir(&entry).map_err(Self::io("rmdir", &entry));
        let provider = read?;
        removed?;
        Ok(provider)
    }

    /// Takes one report carrying `report_data`, retrying while another writer interferes.
    ///
    /// # Errors
    /// [`TsmError`]: file operations, malformed attributes, or contention in every attempt.
    pub fn report(&self, report_data: &[u8; 64]) -> Result<TsmReport, TsmError> {
        let entry = self.root.join(entry_name());
        self.fs.mkdir(&entry).map_err(Self::io("mkdir", &entry))?;
        let result = self.report_in(&entry, report_data);
        let removed = self.fs.rmdir(&entry).map_err(Self::io("rmdir", &entry));
        let report = result?;
        removed?;
        Ok(report)
    }

    fn report_in(&self, entry: &Path, report_data: &[u8; 64]) -> Result<TsmReport, TsmError> {
        let generation = entry.join("generation");
        for attempt in 1..=self.max_attempts {
            let before = parse_generation(
                &self
                    .fs
                    .read(&generation, MAX_SMALL)
                    .map_err(Self::io("read", &generation))?,
            )?;
            let mut writes = 0u64;
            let inblob = entry.join("inblob");
            self.fs
                .write(&inblob, report_data)
                .map_err(Self::io("write", &inblob))?;
            writes += 1;
            if let Some(level) = self.privlevel {
                let path = entry.join("privlevel");
                self.fs
                    .write(&path, level.to_string().as_bytes())
                    .map_err(Self::io("write", &path))?;
                writes += 1;
            }
            let out_path = entry.join("outblob");
            let outblob = self
                .fs
                .read(&out_path, MAX_OUTBLOB)
                .map_err(Self::io("read", &out_path))?;
            let aux_path = entry.join("auxblob");
            let auxblob = if self.fs.exists(&aux_path) {
                Some(
                    self.fs
                        .read(&aux_path, MAX_AUXBLOB)
                        .map_err(Self::io("read", &aux_path))?,
                )
                .filter(|a| !a.is_empty())
            } else {
                None
            };
            let prov_path = entry.join("provider");
            let provider = parse_provider(
                &self
                    .fs
                    .read(&prov_path, MAX_SMALL)
                    .map_err(Self::io("read", &prov_path))?,
            )?;
            let after = parse_generation(
                &self
                    .fs
                    .read(&generation, MAX_SMALL)
                    .map_err(Self::io("read", &generation))?,
            )?;
            if after == before.saturating_add(writes) {
                if outblob.is_empty() {
                    return Err(TsmError::Malformed {
                        field: "outblob",
                        reason: "empty".into(),
                    });
                }
                return Ok(TsmReport {
                    provider,
                    outblob,
                    auxblob,
                    attempts: attempt,
                });
            }
        }
        Err(TsmError::Contended {
            attempts: self.max_attempts,
        })
    }
}

/// A name for a new report entry: `tessera-PID-COUNT-RANDOM`.
fn entry_name() -> String {
    format!(
        "tessera-{}-{}-{:016x}",
        std::process::id(),
        unique_suffix(),
        random_suffix()
    )
}

/// 64 random bits, so that processes of two PID namespaces (containers sharing one configfs)
/// with the same process id and count do not pick one entry name (the second `mkdir` would
/// fail). Zero if the system's generator fails, leaving the id and count.
fn random_suffix() -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).map_or(0, |()| u64::from_le_bytes(bytes))
}

/// A suffix that differs between calls in one process.
fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entry names carry random bits besides the process id and count: another PID namespace's
    /// process with the same id and count picks another name.
    #[test]
    fn entry_names_carry_random_bits() {
        let names: Vec<String> = (0..4).map(|_| entry_name()).collect();
        let randoms: std::collections::BTreeSet<&str> = names
            .iter()
            .map(|n| {
                let parts: Vec<&str> = n.split('-').collect();
                assert_eq!(parts.len(), 4, "{n}");
                assert_eq!(parts[0], "tessera");
                assert_eq!(parts[1], std::process::id().to_string());
                assert_eq!(parts[3].len(), 16, "{n}");
                assert!(parts[3].bytes().all(|b| b.is_ascii_hexdigit()), "{n}");
                parts[3]
            })
            .collect();
        assert_eq!(randoms.len(), 4, "{names:?}");
    }
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// The kernel's side of an entry, scripted: attributes appear at mkdir, every write bumps
    /// `generation`, `outblob` echoes the REPORT_DATA; `interfere` extra bumps happen at the
    /// next `outblob` reads (another writer). Every operation is recorded.
    #[derive(Default)]
    struct ScriptedKernel {
        files: RefCell<BTreeMap<PathBuf, Vec<u8>>>,
        ops: RefCell<Vec<String>>,
        interfere: RefCell<u32>,
        provider: &'static str,
        aux: Option<Vec<u8>>,
        /// `outblob` stays empty (the kernel produced no report).
        empty_outblob: bool,
    }

    impl ScriptedKernel {
        fn bump(&self, dir: &Path) {
            let mut files = self.files.borrow_mut();
            let g = files.entry(dir.join("generation")).or_default();
            let n = parse_generation(g).unwrap_or(0) + 1;
            *g = format!("{n}\n").into_bytes();
        }
        fn name(p: &Path) -> String {
            p.file_name().unwrap().to_string_lossy().into_owned()
        }
    }

    impl TsmFs for &ScriptedKernel {
        fn mkdir(&self, path: &Path) -> std::io::Result<()> {
            self.ops.borrow_mut().push("mkdir".into());
            let mut files = self.files.borrow_mut();
            files.insert(path.join("generation"), b"0\n".to_vec());
            files.insert(
                path.join("provider"),
                format!("{}\n", self.provider).into_bytes(),
            );
            if let Some(aux) = &self.aux {
                files.insert(path.join("auxblob"), aux.clone());
            }
            Ok(())
        }
        fn rmdir(&self, _: &Path) -> std::io::Result<()> {
            self.ops.borrow_mut().push("rmdir".into());
            Ok(())
        }
        fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
            self.ops
                .borrow_mut()
                .push(format!("write {}", ScriptedKernel::name(path)));
            let dir = path.parent().unwrap();
            if path.ends_with("inblob") {
                let mut out = Vec::new();
                if !self.empty_outblob {
                    out.extend_from_slice(b"REPORT:");
                    out.extend_from_slice(bytes);
                }
                self.files.borrow_mut().insert(dir.join("outblob"), out);
            }
            self.bump(dir);
            Ok(())
        }
        fn read(&self, path: &Path, _max: u64) -> std::io::Result<Vec<u8>> {
            self.ops
                .borrow_mut()
                .push(format!("read {}", ScriptedKernel::name(path)));
            if path.ends_with("outblob") && *self.interfere.borrow() > 0 {
                *self.interfere.borrow_mut() -= 1;
                self.bump(path.parent().unwrap());
            }
            self.files
                .borrow()
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
        fn exists(&self, path: &Path) -> bool {
            self.files.borrow().contains_key(path)
        }
    }

    #[test]
    fn one_snp_report_is_the_documented_sequence() {
        let k = ScriptedKernel {
            provider: "sev_guest",
            aux: Some(vec![7; 100]),
            ..ScriptedKernel::default()
        };
        let tsm = ConfigfsTsm::with_fs("/tsm", &k).with_privlevel(0);
        let r = tsm.report(&[0x42; 64]).unwrap();
        assert_eq!(r.provider, "sev_guest");
        assert_eq!(&r.outblob[..7], b"REPORT:");
        assert_eq!(&r.outblob[7..], &[0x42; 64]);
        assert_eq!(r.auxblob.as_deref(), Some(&[7u8; 100][..]));
        assert_eq!(r.attempts, 1);
        assert_eq!(
            *k.ops.borrow(),
            [
                "mkdir",
                "read generation",
                "write inblob",
                "write privlevel",
                "read outblob",
                "read auxblob",
                "read provider",
                "read generation",
                "rmdir"
            ]
        );
    }

    #[test]
    fn a_tdx_quote_has_no_privlevel_and_no_auxblob() {
        let k = ScriptedKernel {
            provider: "tdx_guest",
            ..ScriptedKernel::default()
        };
        let r = ConfigfsTsm::with_fs("/tsm", &k).report(&[1; 64]).unwrap();
        assert_eq!(r.provider, "tdx_guest");
        assert!(r.auxblob.is_none());
        assert!(!k.ops.borrow().iter().any(|o| o.contains("privlevel")));
    }

    #[test]
    fn a_generation_mismatch_retries_then_gives_up() {
        let k = ScriptedKernel {
            provider: "sev_guest",
            ..ScriptedKernel::default()
        };
        *k.interfere.borrow_mut() = 1;
        let r = ConfigfsTsm::with_fs("/tsm", &k).report(&[3; 64]).unwrap();
        assert_eq!(r.attempts, 2);
        assert_eq!(
            k.ops
                .borrow()
                .iter()
                .filter(|o| *o == "write inblob")
                .count(),
            2
        );
        // Interference in every attempt: refused after the bound, and the entry is removed.
        let k = ScriptedKernel {
            provider: "sev_guest",
            ..ScriptedKernel::default()
        };
        *k.interfere.borrow_mut() = 10;
        let e = ConfigfsTsm::with_fs("/tsm", &k)
            .with_max_attempts(3)
            .report(&[3; 64])
            .unwrap_err();
        assert!(matches!(e, TsmError::Contended { attempts: 3 }), "{e}");
        assert_eq!(k.ops.borrow().last().map(String::as_str), Some("rmdir"));
    }

    #[test]
    fn an_empty_outblob_is_malformed_and_the_entry_is_removed() {
        let k = ScriptedKernel {
            provider: "sev_guest",
            empty_outblob: true,
            ..ScriptedKernel::default()
        };
        let e = ConfigfsTsm::with_fs("/tsm", &k)
            .report(&[4; 64])
            .unwrap_err();
        assert!(
            matches!(&e, TsmError::Malformed { field: "outblob", reason } if reason == "empty"),
            "{e}"
        );
        assert_eq!(k.ops.borrow().last().map(String::as_str), Some("rmdir"));
    }

    #[test]
    fn a_plain_directory_is_no_kernel_and_the_entry_is_cleaned_up() {
        // The real file operations on a directory without the kernel behind it: mkdir works,
        // the attributes are missing, the error names the file, and the entry is removed.
        let dir = tempfile::tempdir().unwrap();
        let e = ConfigfsTsm::new(dir.path()).report(&[0; 64]).unwrap_err();
        assert!(e.to_string().contains("generation"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // No root at all.
        let e = ConfigfsTsm::new(dir.path().join("missing"))
            .report(&[0; 64])
            .unwrap_err();
        assert!(matches!(e, TsmError::Io { op: "mkdir", .. }), "{e}");
    }

    #[test]
    fn attributes_are_parsed_strictly() {
        assert_eq!(parse_generation(b"12\n").unwrap(), 12);
        assert!(parse_generation(b"").is_err());
        assert!(parse_generation(b"-1").is_err());
        assert!(parse_generation(b"99999999999999999999999").is_err());
        assert_eq!(parse_provider(b"sev_guest\n").unwrap(), "sev_guest");
        assert!(parse_provider(b"../etc").is_err());
        assert!(parse_provider(&[b'a'; 40]).is_err());
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn attribute_parsers_meet_their_oracle(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            fuzz_attributes(&bytes);
        }

        /// Text near the grammars: digits, names, whitespace of several kinds, signs and
        /// other characters, and numbers at and past `u64::MAX`.
        #[test]
        fn generated_attributes_meet_their_oracle(
            lead in "[ \t\n\u{a0}\u{3000}]{0,2}",
            body in proptest::prop_oneof![
                "0{0,3}[0-9]{1,22}",
                "[a-z0-9_]{1,34}",
                "[+-]?[0-9a-zA-Z_./]{0,8}",
                proptest::prelude::any::<u64>().prop_map(|n| n.to_string()),
                proptest::prelude::Just("18446744073709551616".to_owned()),
            ],
            trail in "[ \t\n\r]{0,2}",
        ) {
            fuzz_attributes(format!("{lead}{body}{trail}").as_bytes());
        }
    }
}
