//! Loading a policy: TOML or JSON text, strict validation, and reference files resolved relative
//! to the policy file.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::PolicyError;
use crate::model::{POLICY_VERSION, PerProductTcb, Policy, SgxPolicy, SnpPolicy, TcbFloor};
use crate::value::{RefList, Setting};

/// The largest policy text accepted.
pub const MAX_POLICY_LEN: usize = 1 << 20;
/// The largest reference file accepted.
pub const MAX_REFERENCE_FILE_LEN: usize = 8 << 20;
const MAX_ID_LEN: usize = 256;

fn syntax(message: impl ToString) -> PolicyError {
    PolicyError::Syntax {
        message: message.to_string(),
    }
}

/// The fields a policy must give, by section (`""` is the top level). Checked against the
/// model by `required_fields_are_the_models` below.
const REQUIRED: &[(&str, &[&str])] = &[
    ("", &["version", "id"]),
    (
        "snp",
        &[
            "measurement",
            "debug",
            "min_tcb",
            "signer",
            "vmpl",
            "revocation",
        ],
    ),
    (
        "tdx",
        &["mr_td", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "debug", "tcb"],
    ),
    ("tdx.tcb", &["accepted_statuses"]),
    ("sgx", &["mr_enclave", "mr_signer", "debug", "tcb"]),
    ("sgx.tcb", &["accepted_statuses"]),
];

/// The required fields `tree` (a policy's text as a generic tree) leaves out, as dotted paths,
/// in the order of [`REQUIRED`]. A section that is absent (or not a table) is not looked into.
fn missing_required(tree: &serde_json::Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (section, fields) in REQUIRED {
        let table = section
            .split('.')
            .filter(|s| !s.is_empty())
            .try_fold(tree, |t, key| t.get(key));
        let Some(table) = table.and_then(serde_json::Value::as_object) else {
            continue;
        };
        for field in *fields {
            if !table.contains_key(*field) {
                missing.push(if section.is_empty() {
                    (*field).to_owned()
                } else {
                    format!("{section}.{field}")
                });
            }
        }
    }
    missing
}

/// A parser's error, with every required field the policy leaves out named when it is one of
/// several (the parser stops at the first), so that a new policy is not fixed one run at a
/// time.
fn with_all_missing(e: impl ToString, tree: Option<&serde_json::Value>) -> PolicyError {
    let message = e.to_string();
    if !message.contains("missing field") {
        return syntax(message);
    }
    match tree.map(missing_required) {
        Some(all) if all.len() > 1 => syntax(format!(
            "{}\nrequired fields missing: {}",
            message.trim_end(),
            all.join(", ")
        )),
        _ => syntax(message),
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

impl Policy {
    /// Parse a TOML policy. Reference files it names stay unloaded (rules using them fail);
    /// use [`Policy::load`] or [`Policy::resolve_references`] to load them.
    ///
    /// # Errors
    /// [`PolicyError`] naming the field at fault.
    pub fn from_toml_str(text: &str) -> Result<Self, PolicyError> {
        check_len("the policy", text.len(), MAX_POLICY_LEN)?;
        let p: Self = toml::from_str(text).map_err(|e| {
            let tree = toml::from_str::<toml::Table>(text)
                .ok()
                .and_then(|t| serde_json::to_value(t).ok());
            with_all_missing(e, tree.as_ref())
        })?;
        p.validate()?;
        Ok(p)
    }

    /// Parse a JSON policy (same fields as TOML).
    ///
    /// # Errors
    /// [`PolicyError`] naming the field at fault.
    pub fn from_json_str(text: &str) -> Result<Self, PolicyError> {
        check_len("the policy", text.len(), MAX_POLICY_LEN)?;
        let p: Self = serde_json::from_str(text).map_err(|e| {
            let tree = serde_json::from_str::<serde_json::Value>(text).ok();
            with_all_missing(e, tree.as_ref())
        })?;
        // `null` would read as a field left out ("not checked"), where `[]` is refused: a tool
        // writing an empty allow-list as null (Go's nil slice) would accept everything.
        let tree: serde_json::Value = serde_json::from_str(text).map_err(syntax)?;
        if let Some(field) = first_null(&tree, &mut Vec::new()) {
            return Err(invalid(
                &field,
                "null: leave the field out (not checked) or give it a value",
            ));
        }
        p.validate()?;
        Ok(p)
    }

    /// Parse TOML or JSON: text whose first non-blank character is `{` is JSON.
    ///
    /// # Errors
    /// [`PolicyError`] naming the field at fault.
    pub fn from_text(text: &str) -> Result<Self, PolicyError> {
        // A byte-order mark (some editors write one) is not content.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim_start().starts_with('{') {
            Self::from_json_str(text)
        } else {
            Self::from_toml_str(text)
        }
    }

    /// Read a policy file (TOML, or JSON when it starts with `{`) and the reference files it
    /// names, relative to the policy's directory.
    ///
    /// # Errors
    /// [`PolicyError`]: unreadable files, syntax, invalid settings, bad reference values.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        Self::load_with_text(path).map(|(policy, _)| policy)
    }

    /// [`Self::load`], with the text it read: the file is read once, so what was checked is
    /// what the caller sends on (a pipe such as `/dev/stdin` reads empty the second time).
    ///
    /// # Errors
    /// As [`Self::load`].
    pub fn load_with_text(path: &Path) -> Result<(Self, String), PolicyError> {
        let text = read_bounded(path, MAX_POLICY_LEN)?;
        let mut p = Self::from_text(&text)?;
        // A bare file name's parent is the empty path: the current directory, said as `.`.
        let base = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        p.resolve_references(base)?;
        Ok((p, text))
    }

    /// Whether any rule names a reference file (loaded or not), rather than holding its
    /// values: a policy kept by a broker, which cannot read the operator's files, must not
    /// (its rule would fail every appraisal); the CLI inlines loaded files before sending.
    #[must_use]
    pub fn names_reference_files(&self) -> bool {
        fn names(v: &serde_json::Value) -> bool {
            match v {
                serde_json::Value::Object(m) => {
                    (m.len() == 1 && m.contains_key("file")) || m.values().any(names)
                }
                serde_json::Value::Array(a) => a.iter().any(names),
                _ => false,
            }
        }
        // A policy always serializes; were it not to, it is treated as naming files.
        serde_json::to_value(self).map_or(true, |v| names(&v))
    }

    /// Load every reference file the policy names, relative to `base`.
    ///
    /// # Errors
    /// [`PolicyError::ReferenceIo`] or [`PolicyError::Reference`].
    pub fn resolve_references(&mut self, base: &Path) -> Result<(), PolicyError> {
        self.walk_references(Walk::Resolve(base))
    }

    /// Replaces every loaded reference file by its values, so that the policy is
    /// self-contained (a broker keeps it without the operator's files); a file not loaded
    /// stays named ([`Self::names_reference_files`] says so). The same walk over the rules as
    /// [`Self::resolve_references`]: every rule that can name a file is inlined.
    pub fn inline_references(&mut self) {
        // Inlining reads nothing and fails nowhere; the walk's checks passed at loading.
        let _ = self.walk_references(Walk::Inline);
    }

    /// Every rule that can name a reference file, in one walk, resolving or inlining it.
    fn walk_references(&mut self, base: Walk<'_>) -> Result<(), PolicyError> {
        if let Some(s) = &mut self.snp {
            setting(&mut s.measurement, base)?;
            setting(&mut s.vmpl, base)?;
            check_vmpls(&s.vmpl)?;
            for a in [s.id_key_digests.as_mut(), s.author_key_digests.as_mut()]
                .into_iter()
                .flatten()
            {
                setting(a, base)?;
            }
            deny_list(s.denied_id_key_digests.as_mut(), base)?;
            deny_list(s.denied_author_key_digests.as_mut(), base)?;
            if let Some(a) = s.host_data.as_mut() {
                setting(a, base)?;
            }
            if let Some(a) = s.report_data.as_mut() {
                setting(a, base)?;
            }
            for a in [s.family_id.as_mut(), s.image_id.as_mut()]
                .into_iter()
                .flatten()
            {
                setting(a, base)?;
            }
            if let Some(a) = s.chip_ids.as_mut() {
                setting(a, base)?;
            }
        }
        if let Some(t) = &mut self.tdx {
            for a in [
                &mut t.mr_td,
                &mut t.rtmr0,
                &mut t.rtmr1,
                &mut t.rtmr2,
                &mut t.rtmr3,
            ] {
                setting(a, base)?;
            }
            for a in [
                t.mr_config_id.as_mut(),
                t.mr_owner.as_mut(),
                t.mr_owner_config.as_mut(),
                t.mr_seam.as_mut(),
                t.mr_signer_seam.as_mut(),
                t.mr_service_td.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                setting(a, base)?;
            }
            if let Some(a) = t.report_data.as_mut() {
                setting(a, base)?;
            }
        }
        if let Some(g) = &mut self.sgx {
            setting(&mut g.mr_enclave, base)?;
            setting(&mut g.mr_signer, base)?;
            opt(g.isv_prod_id.as_mut(), base)?;
            if let Some(a) = g.report_data.as_mut() {
                setting(a, base)?;
            }
            for a in [g.isv_ext_prod_id.as_mut(), g.isv_family_id.as_mut()]
                .into_iter()
                .flatten()
            {
                setting(a, base)?;
            }
            if let Some(a) = g.config_id.as_mut() {
                setting(a, base)?;
            }
        }
        Ok(())
    }

    /// The policy as TOML.
    ///
    /// # Errors
    /// [`PolicyError::Syntax`] if a value cannot be written (does not happen for loaded policies).
    pub fn to_toml(&self) -> Result<String, PolicyError> {
        toml::to_string(self).map_err(syntax)
    }

    /// Checks serde cannot express.
    fn validate(&self) -> Result<(), PolicyError> {
        if self.version != POLICY_VERSION {
            return Err(invalid(
                "version",
                format!(
                    "{} is not a known policy version ({POLICY_VERSION})",
                    self.version
                ),
            ));
        }
        if self.id.is_empty() || self.id.len() > MAX_ID_LEN || self.id.chars().any(char::is_control)
        {
            return Err(invalid(
                "id",
                format!("1 to {MAX_ID_LEN} printable characters"),
            ));
        }
        if let Some(s) = &self.snp {
            check_snp_signer_based(s)?;
        }
        if let Some(g) = &self.sgx {
            check_signer_based(g)?;
        }
        if self.snp.is_none() && self.tdx.is_none() && self.sgx.is_none() {
            return Err(invalid(
                "snp/tdx/sgx",
                "the policy has no section, so it accepts nothing",
            ));
        }
        if let Some(s) = &self.snp {
            if let Setting::Is(t) = &s.min_tcb {
                check_floors("snp.min_tcb", t)?;
            }
            if let Some(t) = &s.min_launch_tcb {
                check_floors("snp.min_launch_tcb", t)?;
            }
            check_vmpls(&s.vmpl)?;
            if s.report_versions.as_ref().is_some_and(Vec::is_empty) {
                return Err(invalid(
                    "snp.report_versions",
                    "an empty list accepts nothing",
                ));
            }
        }
        for (name, tcb) in [
            (
                "tdx.tcb.accepted_statuses",
                self.tdx.as_ref().map(|t| &t.tcb),
            ),
            (
                "sgx.tcb.accepted_statuses",
                self.sgx.as_ref().map(|t| &t.tcb),
            ),
        ] {
            if let Some(Setting::Is(list)) = tcb.map(|t| &t.accepted_statuses) {
                if list.is_empty() {
                    return Err(invalid(name, "an empty list accepts nothing"));
                }
                if list
                    .iter()
                    .any(|s| s.0 == tessera_tdx::collateral::TcbStatus::Revoked)
                {
                    return Err(invalid(name, "Revoked is never acceptable"));
                }
            }
        }
        for (name, tcb) in [
            (
                "tdx.tcb.denied_advisories",
                self.tdx.as_ref().map(|t| &t.tcb),
            ),
            (
                "sgx.tcb.denied_advisories",
                self.sgx.as_ref().map(|t| &t.tcb),
            ),
        ] {
            let denied = tcb.and_then(|t| t.denied_advisories.as_deref());
            // Empty, it would deny nothing yet read as a deny list in force, as the other
            // deny lists' `[]` would (refused where they are read).
            if denied.is_some_and(<[String]>::is_empty) {
                return Err(invalid(
                    name,
                    "an empty list (a deny list would deny nothing: leave it out)",
                ));
            }
            // A misspelt ID would match nothing and deny nothing: refused at load.
            if let Some(bad) = denied.and_then(|ids| ids.iter().find(|id| !is_advisory_id(id))) {
                return Err(invalid(
                    name,
                    format!(
                        "{:?} is not an Intel advisory ID (INTEL-SA- and five digits, or more \
                         without a leading zero, as Intel's TCB info lists them)",
                        bad.chars().take(64).collect::<String>()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// An `[sgx]` section that trusts a signer (`mr_enclave = "any"` with `mr_signer` pinned): that
/// signer's key signs every product and every version it ever shipped, an old vulnerable one
/// included, so the policy must say which products (`isv_prod_id`) and from which version on
/// (`min_isv_svn`; 0 accepts every version, on purpose). Left out, the policy would accept them
/// all without saying so.
fn check_signer_based(g: &SgxPolicy) -> Result<(), PolicyError> {
    if !sgx_signer_based(g) {
        return Ok(());
    }
    if g.isv_prod_id.is_none() {
        return Err(invalid(
            "sgx.isv_prod_id",
            "required when mr_enclave is \"any\" and mr_signer is pinned: the signer's key signs \
             all of its products, so list the ISVPRODIDs accepted",
        ));
    }
    if g.min_isv_svn.is_none() {
        return Err(invalid(
            "sgx.min_isv_svn",
            "required when mr_enclave is \"any\" and mr_signer is pinned: the signer's older \
             versions would pass too; write 0 to accept every version on purpose",
        ));
    }
    Ok(())
}

/// Whether an `[sgx]` section trusts a signer rather than enclave builds: see
/// [`check_signer_based`].
pub(crate) fn sgx_signer_based(g: &SgxPolicy) -> bool {
    matches!(g.mr_enclave, Setting::Any) && !matches!(g.mr_signer, Setting::Any)
}

/// An `[snp]` section that trusts an ID block signer (`measurement = "any"` with
/// `id_key_digests` or `author_key_digests` pinned): that key signs every image of every family
/// it ever shipped, an old vulnerable one included, so the policy must say which (`family_id`
/// and `image_id`, allow-lists or `"any"` on purpose) and from which version on
/// (`min_guest_svn`; 0 accepts every version, on purpose), as an SGX policy that trusts a signer
/// must.
fn check_snp_signer_based(s: &SnpPolicy) -> Result<(), PolicyError> {
    if !snp_signer_based(s) {
        return Ok(());
    }
    let why = "required when measurement is \"any\" and an ID or author key is pinned: that \
               key signs all of its images";
    if s.family_id.is_none() {
        return Err(invalid(
            "snp.family_id",
            format!("{why}; list the FAMILY_IDs accepted, or write \"any\" on purpose"),
        ));
    }
    if s.image_id.is_none() {
        return Err(invalid(
            "snp.image_id",
            format!("{why}; list the IMAGE_IDs accepted, or write \"any\" on purpose"),
        ));
    }
    if s.min_guest_svn.is_none() {
        return Err(invalid(
            "snp.min_guest_svn",
            format!("{why}, old versions too; write 0 to accept every version on purpose"),
        ));
    }
    Ok(())
}

/// Whether an `[snp]` section trusts an ID block signer rather than measurements: see
/// [`check_snp_signer_based`].
pub(crate) fn snp_signer_based(s: &SnpPolicy) -> bool {
    let pinned = |d: Option<&crate::value::AllowList<48>>| matches!(d, Some(Setting::Is(_)));
    matches!(s.measurement, Setting::Any)
        && (pinned(s.id_key_digests.as_ref()) || pinned(s.author_key_digests.as_ref()))
}

/// `snp.vmpl`: the guest VMPLs, 0 to 3 (a larger one is a report the host requested).
fn check_vmpls(vmpl: &Setting<RefList<u32>>) -> Result<(), PolicyError> {
    match vmpl {
        Setting::Is(list) if list.values().is_some_and(|v| v.iter().any(|&n| n > 3)) => {
            Err(invalid(
                "snp.vmpl",
                "guest VMPLs are 0 to 3; a larger one is a report the host requested, never accepted",
            ))
        }
        _ => Ok(()),
    }
}

/// The dotted path of the first `null` in a JSON policy, if any.
fn first_null(value: &serde_json::Value, path: &mut Vec<String>) -> Option<String> {
    match value {
        serde_json::Value::Null => Some(if path.is_empty() {
            String::from("the policy")
        } else {
            path.join(".")
        }),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, v)| {
            path.push(key.clone());
            let found = first_null(v, path);
            path.pop();
            found
        }),
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
            path.push(i.to_string());
            let found = first_null(v, path);
            path.pop();
            found
        }),
        _ => None,
    }
}

/// An Intel security advisory ID as the TCB info's `advisoryIDs` list it: `INTEL-SA-` and
/// five digits, or more without a leading zero (`INTEL-SA-00001`, `INTEL-SA-123456`; never
/// `INTEL-SA-000001`, which no list holds and the appraisal, matching the text without regard
/// to case, would never match).
fn is_advisory_id(id: &str) -> bool {
    (14..=32).contains(&id.len())
        && id
            .get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case("INTEL-SA-"))
        && id.get(9..).is_some_and(|n| {
            n.bytes().all(|b| b.is_ascii_digit()) && (n.len() == 5 || !n.starts_with('0'))
        })
}

fn check_floors(field: &str, t: &PerProductTcb) -> Result<(), PolicyError> {
    if t.milan.is_none() && t.genoa.is_none() && t.turin.is_none() {
        return Err(invalid(
            field,
            "no product listed; name milan, genoa or turin, or write \"any\"",
        ));
    }
    let check = |name: &str, f: Option<&TcbFloor>, fmc: bool| -> Result<(), PolicyError> {
        match f {
            Some(f) if f.fmc.is_some() != fmc => Err(invalid(
                &format!("{field}.{name}.fmc"),
                if fmc {
                    "Turin's TCB has an FMC SPL: state it"
                } else {
                    "only Turin's TCB has an FMC SPL"
                },
            )),
            _ => Ok(()),
        }
    };
    check("milan", t.milan.as_ref(), false)?;
    check("genoa", t.genoa.as_ref(), false)?;
    check("turin", t.turin.as_ref(), true)
}

fn check_len(what: &str, len: usize, max: usize) -> Result<(), PolicyError> {
    if len > max {
        return Err(PolicyError::TooLarge {
            what: what.to_owned(),
            len,
            max,
        });
    }
    Ok(())
}

fn read_bounded(path: &Path, max: usize) -> Result<String, PolicyError> {
    use std::io::Read;
    let io = |e: std::io::Error| PolicyError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let f = std::fs::File::open(path).map_err(io)?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(PolicyError::Io {
            path: path.to_owned(),
            reason: String::from("is a directory, not a file: name the policy's TOML or JSON file"),
        });
    }
    let mut text = String::new();
    f.take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_string(&mut text)
        .map_err(io)?;
    check_len(&path.display().to_string(), text.len(), max)?;
    Ok(text)
}

/// What a walk over the reference lists does to each: load its file relative to a folder, or
/// put a loaded file's values in its place.
#[derive(Clone, Copy)]
enum Walk<'a> {
    Resolve(&'a Path),
    Inline,
}

fn visit<T: FromStr>(list: &mut RefList<T>, walk: Walk<'_>, words: Words) -> Result<(), PolicyError>
where
    T::Err: ToString,
{
    match walk {
        Walk::Resolve(base) => resolve(list, base, words),
        Walk::Inline => {
            if let RefList::Loaded { values, .. } = list {
                *list = RefList::Values(std::mem::take(values));
            }
            Ok(())
        }
    }
}

fn setting<T: FromStr>(s: &mut Setting<RefList<T>>, walk: Walk<'_>) -> Result<(), PolicyError>
where
    T::Err: ToString,
{
    match s {
        Setting::Any => Ok(()),
        Setting::Is(list) => visit(list, walk, Words::First),
    }
}

fn opt<T: FromStr>(s: Option<&mut RefList<T>>, walk: Walk<'_>) -> Result<(), PolicyError>
where
    T::Err: ToString,
{
    s.map_or(Ok(()), |l| visit(l, walk, Words::First))
}

/// A deny list's reference file: every word of a line that reads as a value is denied.
fn deny_list<T: FromStr>(s: Option<&mut RefList<T>>, walk: Walk<'_>) -> Result<(), PolicyError>
where
    T::Err: ToString,
{
    s.map_or(Ok(()), |l| visit(l, walk, Words::Every))
}

/// Which words of a reference-file line are values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Words {
    /// The first (an allow list: what follows is a name, as `sha384sum` writes it; taking a
    /// name that reads as a value would accept more than was meant).
    First,
    /// Every word that reads as a value, after a first that must (a deny list: dropping a
    /// second value on a line would deny less than was meant; a name taken as one denies
    /// only more).
    Every,
}

/// Load a reference file: one value per line (the first word of the line, so `sha384sum`-style
/// "digest  name" lines work; in a deny list, every word that reads as a value); `#` starts a
/// comment; blank lines are skipped.
fn resolve<T: FromStr>(list: &mut RefList<T>, base: &Path, words: Words) -> Result<(), PolicyError>
where
    T::Err: ToString,
{
    let RefList::File(file) = list else {
        return Ok(());
    };
    let path: PathBuf = base.join(&*file);
    let text = read_bounded(&path, MAX_REFERENCE_FILE_LEN).map_err(|e| match e {
        PolicyError::Io { path, reason } => PolicyError::ReferenceIo {
            file: file.display().to_string(),
            base: base.to_owned(),
            path,
            reason,
        },
        other => other,
    })?;
    let values = parse_reference_text::<T>(&text, words).map_err(|(line, reason)| {
        PolicyError::Reference {
            path: path.clone(),
            line,
            reason,
        }
    })?;
    *list = RefList::Loaded {
        file: file.clone(),
        values,
    };
    Ok(())
}

/// Parse reference-file text; on error, the 1-based line and the reason.
pub(crate) fn parse_reference_text<T: FromStr>(
    text: &str,
    which: Words,
) -> Result<Vec<T>, (usize, String)>
where
    T::Err: ToString,
{
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        let mut words = content.split_whitespace();
        let Some(word) = words.next() else {
            continue;
        };
        if values.len() == crate::value::MAX_LIST_LEN {
            return Err((i + 1, String::from("too many values")));
        }
        values.push(word.parse::<T>().map_err(|e| (i + 1, e.to_string()))?);
        if which == Words::Every {
            for value in words.filter_map(|w| w.parse::<T>().ok()) {
                if values.len() == crate::value::MAX_LIST_LEN {
                    return Err((i + 1, String::from("too many values")));
                }
                values.push(value);
            }
        }
    }
    if values.is_empty() {
        return Err((
            0,
            String::from(
                "no values (an allow list would accept nothing, a deny list deny nothing)",
            ),
        ));
    }
    Ok(values)
}

/// Fuzz harness: the policy loader on arbitrary text (TOML, then JSON). On success the policy
/// round-trips through TOML and JSON unchanged and `warnings` runs. A failed assertion is the
/// finding a fuzzer reports, so this may panic, unlike the loader.
#[doc(hidden)]
#[allow(clippy::panic, clippy::expect_used)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_policy(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    for p in [Policy::from_toml_str(text), Policy::from_json_str(text)]
        .into_iter()
        .flatten()
    {
        let toml = p.to_toml().expect("a loaded policy serializes");
        assert_eq!(Policy::from_toml_str(&toml).expect("TOML round trip"), p);
        let json = serde_json::to_string(&p).expect("JSON");
        assert_eq!(Policy::from_json_str(&json).expect("JSON round trip"), p);
        let _ = p.warnings();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Hex;

    const MINIMAL: &str = r#"
version = 1
id = "t"
[snp]
measurement = "any"
debug = "must-not"
min_tcb = "any"
signer = "vcek"
vmpl = 0
revocation = "required"
"#;

    #[test]
    fn minimal_policy_loads() {
        let p = Policy::from_toml_str(MINIMAL).expect("loads");
        assert!(p.snp.is_some());
        let back = Policy::from_toml_str(&p.to_toml().expect("toml")).expect("round trip");
        assert_eq!(back, p);
        let json = serde_json::to_string(&p).expect("json");
        assert_eq!(Policy::from_text(&json).expect("json loads"), p);
    }

    /// A rule naming a reference file is found wherever it is (loaded or not); values are not.
    #[test]
    fn reference_files_are_found_in_any_rule() {
        assert!(
            !Policy::from_toml_str(MINIMAL)
                .unwrap()
                .names_reference_files()
        );
        for (from, to) in [
            (
                "measurement = \"any\"",
                "measurement = { file = \"m.txt\" }",
            ),
            ("vmpl = 0", "vmpl = { file = \"v.txt\" }"),
            (
                "revocation = \"required\"",
                "revocation = \"required\"\nhost_data = { file = \"h.txt\" }",
            ),
        ] {
            let text = MINIMAL.replace(from, to);
            let p = Policy::from_toml_str(&text).unwrap();
            assert!(p.names_reference_files(), "{to}");
        }
    }

    #[test]
    fn fails_closed() {
        // Each required field removed in turn.
        for field in [
            "measurement",
            "debug",
            "min_tcb",
            "signer",
            "vmpl",
            "revocation",
        ] {
            let text: String = MINIMAL
                .lines()
                .filter(|l| !l.starts_with(field))
                .collect::<Vec<_>>()
                .join("\n");
            let e = Policy::from_toml_str(&text).expect_err(field);
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
        // Unknown fields, at the top and inside a section.
        assert!(Policy::from_toml_str(&format!("{MINIMAL}\nmeasurment = \"any\"")).is_err());
        assert!(
            Policy::from_toml_str(&MINIMAL.replace("id = \"t\"", "id = \"t\"\nextra = 1")).is_err()
        );
        // Wrong version, empty id, no section, contradictory floors.
        assert!(Policy::from_toml_str(&MINIMAL.replace("version = 1", "version = 2")).is_err());
        assert!(Policy::from_toml_str(&MINIMAL.replace("id = \"t\"", "id = \"\"")).is_err());
        assert!(Policy::from_toml_str("version = 1\nid = \"t\"").is_err());
        let turin_no_fmc = MINIMAL.replace(
            "min_tcb = \"any\"",
            "min_tcb = { turin = { bootloader = 1, tee = 1, snp = 1, microcode = 1 } }",
        );
        assert!(Policy::from_toml_str(&turin_no_fmc).is_err());
        let milan_fmc = MINIMAL.replace(
            "min_tcb = \"any\"",
            "min_tcb = { milan = { fmc = 1, bootloader = 1, tee = 1, snp = 1, microcode = 1 } }",
        );
        assert!(Policy::from_toml_str(&milan_fmc).is_err());
        assert!(
            Policy::from_toml_str(&MINIMAL.replace("min_tcb = \"any\"", "min_tcb = {}")).is_err()
        );
        let no_signer = MINIMAL.replace("signer = \"vcek\"", "signer = { vcek = false }");
        assert!(Policy::from_toml_str(&no_signer).is_err());
        // VMPL: "any", one value, a list; never an empty list or a string other than "any".
        for ok in ["\"any\"", "1", "[0, 1]"] {
            let text = MINIMAL.replace("vmpl = 0", &format!("vmpl = {ok}"));
            assert!(Policy::from_toml_str(&text).is_ok(), "{ok}");
        }
        for bad in ["[]", "\"zero\"", "-1", "4", "[0, 4]"] {
            let text = MINIMAL.replace("vmpl = 0", &format!("vmpl = {bad}"));
            assert!(Policy::from_toml_str(&text).is_err(), "{bad}");
        }
        // A byte-order mark before a JSON policy is not content.
        let json = serde_json::to_string(&Policy::from_toml_str(MINIMAL).unwrap()).unwrap();
        assert!(Policy::from_text(&format!("\u{feff}{json}")).is_ok());
        // Revocation: "required" or "if-given" only ("any" is not a spelling of either).
        assert!(Policy::from_toml_str(&MINIMAL.replace("\"required\"", "\"if-given\"")).is_ok());
        for bad in ["\"any\"", "\"optional\"", "true"] {
            let text = MINIMAL.replace("\"required\"", bad);
            assert!(Policy::from_toml_str(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn tdx_statuses_are_checked() {
        let base = r#"
version = 1
id = "t"
[tdx]
mr_td = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
debug = "must-not"
[tdx.tcb]
accepted_statuses = STATUSES
"#;
        assert!(Policy::from_toml_str(&base.replace("STATUSES", "[\"UpToDate\"]")).is_ok());
        assert!(Policy::from_toml_str(&base.replace("STATUSES", "\"any\"")).is_ok());
        for bad in ["[]", "[\"Revoked\"]", "[\"Fine\"]", "[\"uptodate\"]"] {
            assert!(
                Policy::from_toml_str(&base.replace("STATUSES", bad)).is_err(),
                "{bad}"
            );
        }
        assert!(Policy::from_toml_str(&base.replace("accepted_statuses = STATUSES", "")).is_err());
    }

    #[test]
    fn reference_files_resolve() {
        let dir = std::env::temp_dir().join(format!("tessera-policy-ref-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let m = "ab".repeat(48);
        std::fs::write(dir.join("m.txt"), format!("# allowed\n{m}  image-1\n\n")).expect("write");
        std::fs::write(
            dir.join("p.toml"),
            MINIMAL.replace(
                "measurement = \"any\"",
                "measurement = { file = \"m.txt\" }",
            ),
        )
        .expect("write");
        let p = Policy::load(&dir.join("p.toml")).expect("loads");
        let list = p
            .snp
            .as_ref()
            .and_then(|s| s.measurement.rule())
            .expect("list");
        assert_eq!(list.values().map(<[_]>::len), Some(1));
        assert_eq!(
            list.values().and_then(|v| v.first()).map(|h| h.0),
            Some([0xab; 48])
        );

        // VMPLs from a file are held to 0..=3 as written ones are.
        std::fs::write(dir.join("v.txt"), "0\n4\n").expect("write");
        std::fs::write(
            dir.join("v.toml"),
            MINIMAL.replace("vmpl = 0", "vmpl = { file = \"v.txt\" }"),
        )
        .expect("write");
        let e = Policy::load(&dir.join("v.toml")).expect_err("VMPL 4");
        assert!(e.to_string().contains("VMPLs are 0 to 3"), "{e}");
        std::fs::write(dir.join("v.txt"), "0\n3\n").expect("write");
        Policy::load(&dir.join("v.toml")).expect("VMPLs 0 and 3");

        std::fs::write(dir.join("m.txt"), "abcd\n").expect("write");
        let e = Policy::load(&dir.join("p.toml")).expect_err("short value");
        assert!(matches!(e, PolicyError::Reference { line: 1, .. }), "{e}");
        std::fs::remove_file(dir.join("m.txt")).expect("rm");
        // A missing reference file: named as written, with the folder it is relative to and
        // the path that was tried.
        let e = Policy::load(&dir.join("p.toml")).expect_err("missing reference file");
        assert!(
            matches!(&e, PolicyError::ReferenceIo { file, path, .. }
                if file == "m.txt" && *path == dir.join("m.txt")),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.contains("relative to the policy's folder")
                && text.contains(&dir.join("m.txt").display().to_string()),
            "{text}"
        );
        // A directory given as the policy says so.
        let e = Policy::load(&dir).expect_err("a directory");
        assert!(e.to_string().contains("is a directory"), "{e}");
        // And a directory given as a reference file.
        std::fs::create_dir(dir.join("m.txt")).expect("mkdir");
        let e = Policy::load(&dir.join("p.toml")).expect_err("a directory");
        assert!(
            matches!(&e, PolicyError::ReferenceIo { reason, .. } if reason.contains("is a directory")),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reference_text_parsing() {
        assert_eq!(
            parse_reference_text::<u32>("0\n1 # c\n", Words::First).expect("ok"),
            vec![0, 1]
        );
        assert!(parse_reference_text::<u32>("# nothing\n", Words::First).is_err());
        assert!(parse_reference_text::<Hex<2>>("abcd\nabc\n", Words::First).is_err());
        // An allow list takes the first word (what follows is a name, even one that reads as
        // a value, as `sha256sum` writes for files named by their digest); a deny list takes
        // every word that reads as a value, so none it names is dropped.
        let text = "abcd  image.bin\nbbbb 0000\n";
        let allow = parse_reference_text::<Hex<2>>(text, Words::First).expect("ok");
        assert_eq!(allow.len(), 2);
        let deny = parse_reference_text::<Hex<2>>(text, Words::Every).expect("ok");
        assert_eq!(deny.len(), 3);
        assert!(deny.iter().any(|h| h.0 == [0, 0]));
    }

    /// A JSON `null` is refused wherever it is, not read as a field left out.
    #[test]
    fn json_nulls_are_refused() {
        let json = serde_json::to_string(&Policy::from_toml_str(MINIMAL).unwrap()).unwrap();
        Policy::from_json_str(&json).unwrap();
        let mut tree: serde_json::Value = serde_json::from_str(&json).unwrap();
        tree["snp"]["chip_ids"] = serde_json::Value::Null;
        let name = "snp";
        let e = Policy::from_json_str(&tree.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("{name}.chip_ids")) && e.contains("null"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod missing_fields {
    use super::*;

    /// Only what is required, in every section: the base the tests below take fields from.
    const ALL_REQUIRED: &str = r#"
version = 1
id = "required-only"
[snp]
measurement = "any"
debug = "any"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
[tdx]
mr_td = "any"
rtmr0 = "any"
rtmr1 = "any"
rtmr2 = "any"
rtmr3 = "any"
debug = "any"
[tdx.tcb]
accepted_statuses = "any"
[sgx]
mr_enclave = "any"
mr_signer = "any"
debug = "any"
[sgx.tcb]
accepted_statuses = "any"
"#;

    fn tree() -> toml::Table {
        toml::from_str(ALL_REQUIRED).unwrap()
    }

    fn table_at<'a>(tree: &'a mut toml::Table, section: &str) -> &'a mut toml::Table {
        section
            .split('.')
            .filter(|s| !s.is_empty())
            .fold(tree, |t, key| {
                t.get_mut(key).unwrap().as_table_mut().unwrap()
            })
    }

    /// [`REQUIRED`] is what the model requires: each field it lists, left out on its own,
    /// fails the parse as missing, and every other field of the base may be left out (so a
    /// field made required in the model without being listed fails this test, by failing
    /// the base's parse or by its removal failing).
    #[test]
    fn required_fields_are_the_models() {
        assert!(Policy::from_toml_str(ALL_REQUIRED).is_ok());
        let mut sections = vec![String::new()];
        let mut i = 0;
        while i < sections.len() {
            let mut base = tree();
            let keys: Vec<(String, bool)> = table_at(&mut base, &sections[i])
                .iter()
                .map(|(k, v)| (k.clone(), v.is_table()))
                .collect();
            for (key, is_table) in keys {
                let path = if sections[i].is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", sections[i])
                };
                if is_table {
                    sections.push(path.clone());
                }
                let mut without = tree();
                table_at(&mut without, &sections[i]).remove(&key);
                let text = toml::to_string(&without).unwrap();
                let listed = REQUIRED.iter().any(|(s, fields)| {
                    *s == sections[i].as_str() && fields.contains(&key.as_str())
                });
                match Policy::from_toml_str(&text) {
                    Err(PolicyError::Syntax { message }) if message.contains("missing field") => {
                        assert!(listed, "{path} is required by the model but not listed");
                    }
                    other => assert!(
                        !listed,
                        "{path} is listed as required, but leaving it out gave {other:?}"
                    ),
                }
            }
            i += 1;
        }
    }

    #[test]
    fn every_missing_required_field_is_named_at_once() {
        // TOML: two of [snp]'s and the top level's id.
        let text = "version = 1\n[snp]\nmeasurement = \"any\"\ndebug = \"any\"\nsigner = \"any\"\nrevocation = \"if-given\"\n";
        let Err(PolicyError::Syntax { message }) = Policy::from_toml_str(text) else {
            panic!("parsed");
        };
        assert!(
            message.contains("required fields missing: id, snp.min_tcb, snp.vmpl"),
            "{message}"
        );
        // JSON: the whole [tdx.tcb] rule and [sgx]'s signer and debug.
        let json = r#"{"version": 1, "id": "x", "tdx": {"mr_td": "any", "rtmr0": "any", "rtmr1": "any",
                       "rtmr2": "any", "rtmr3": "any", "debug": "any", "tcb": {}},
                       "sgx": {"mr_enclave": "any", "tcb": {"accepted_statuses": "any"}}}"#;
        let Err(PolicyError::Syntax { message }) = Policy::from_json_str(json) else {
            panic!("parsed");
        };
        assert!(
            message.contains(
                "required fields missing: tdx.tcb.accepted_statuses, sgx.mr_signer, sgx.debug"
            ),
            "{message}"
        );
        // One missing: the parser's message alone, as before.
        let one = ALL_REQUIRED.replace("vmpl = \"any\"\n", "");
        let Err(PolicyError::Syntax { message }) = Policy::from_toml_str(&one) else {
            panic!("parsed");
        };
        assert!(message.contains("missing field `vmpl`"), "{message}");
        assert!(!message.contains("required fields missing"), "{message}");
        // Another error than a missing field: untouched, though fields are missing too.
        let Err(PolicyError::Syntax { message }) =
            Policy::from_toml_str("version = 1\n[snp]\nmeasurement = 7\n")
        else {
            panic!("parsed");
        };
        assert!(!message.contains("required fields missing"), "{message}");
    }
}

#[cfg(test)]
mod sgx_references {
    use super::*;

    /// The KSS identity rules (`isv_ext_prod_id`, `isv_family_id`, `config_id`) read reference
    /// files as the other allow-lists do: loaded, each rule holds the file's values.
    #[test]
    fn kss_rules_read_reference_files() {
        let dir = std::env::temp_dir().join(format!("tessera-policy-kss-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("ext.txt"), format!("{}\n", "11".repeat(16))).expect("write");
        std::fs::write(dir.join("fam.txt"), format!("{}\n", "22".repeat(16))).expect("write");
        std::fs::write(dir.join("cfg.txt"), format!("{}\n", "33".repeat(64))).expect("write");
        let text = "version = 1\nid = \"kss\"\n[sgx]\nmr_enclave = \"any\"\nmr_signer = \"any\"\n\
                    debug = \"must-not\"\nisv_ext_prod_id = { file = \"ext.txt\" }\n\
                    isv_family_id = { file = \"fam.txt\" }\nconfig_id = { file = \"cfg.txt\" }\n\
                    [sgx.tcb]\naccepted_statuses = \"any\"\n";
        std::fs::write(dir.join("p.toml"), text).expect("write");
        let p = Policy::load(&dir.join("p.toml")).expect("loads");
        let sgx = p.sgx.as_ref().expect("sgx");
        let first16 = |a: Option<&crate::value::AllowList<16>>| {
            a.and_then(Setting::rule)
                .and_then(RefList::values)
                .and_then(|v| v.first())
                .map(|h| h.0)
        };
        assert_eq!(first16(sgx.isv_ext_prod_id.as_ref()), Some([0x11; 16]));
        assert_eq!(first16(sgx.isv_family_id.as_ref()), Some([0x22; 16]));
        let config = sgx
            .config_id
            .as_ref()
            .and_then(Setting::rule)
            .and_then(RefList::values)
            .and_then(|v| v.first())
            .map(|h| h.0);
        assert_eq!(config, Some([0x33; 64]));
        // Inlined (as the CLI sends a policy to a broker): self-contained, the same values.
        let mut inlined = p.clone();
        inlined.inline_references();
        assert!(!inlined.names_reference_files());
        let again = Policy::from_text(&inlined.to_toml().expect("toml")).expect("loads");
        assert!(!again.names_reference_files());
        assert_eq!(
            first16(again.sgx.as_ref().and_then(|g| g.isv_family_id.as_ref())),
            Some([0x22; 16])
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
