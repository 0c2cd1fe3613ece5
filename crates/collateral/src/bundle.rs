//! Offline bundles for air-gapped and sovereign operation.
//!
//! A *bundle directory* is a cache directory (`entries/<key>.json`) plus `manifest.json`
//! listing what it holds, where each item came from, when it was fetched and until when it
//! is valid. A verifier pointed at it (`--collateral-dir`) reads it like a cache and never
//! goes online.
//!
//! A *bundle file* (`collateral pack`) is one JSON document holding the same entries:
//! `{"format": "tessera-collateral-bundle/1", "created": .., "entries": [..]}`. JSON rather
//! than tar: the entries are JSON already, serde_json is already trusted here, and a reader
//! needs no archive parser (no paths, links or permissions to sanitise) — an importer only
//! ever writes files named by the keys it recomputes itself. Every entry is checked for
//! shape again when a bundle is read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tessera_pki::UnixTime;

use crate::CollateralError;
use crate::cache::{Cache, ENTRIES_DIR, read_entries_dir, write_atomic};
use crate::entry::{Entry, StoredEntry};
use crate::item::Item;

/// The manifest's file name in a bundle directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's format tag.
pub const MANIFEST_FORMAT: &str = "tessera-collateral-manifest/1";
/// A bundle file's format tag.
pub const BUNDLE_FORMAT: &str = "tessera-collateral-bundle/1";
/// Most entries in one bundle file.
pub const MAX_BUNDLE_ENTRIES: usize = 4096;
/// Most bytes of one bundle file.
pub const MAX_BUNDLE_LEN: usize = 64 * 1024 * 1024;

/// One line of a manifest (and of `collateral show`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// The cache key.
    pub key: String,
    /// What was asked for.
    pub item: Item,
    /// The URL it came from.
    pub source: String,
    /// When it was fetched (RFC 3339).
    pub fetched_at: String,
    /// Until when it is valid (RFC 3339).
    pub valid_until: String,
    /// The field that sets `valid_until` (`notAfter`, `nextUpdate`).
    pub valid_until_field: String,
}

impl ManifestItem {
    fn of(entry: &Entry) -> Self {
        Self {
            key: entry.item().key(),
            item: entry.item().clone(),
            source: entry.source().to_owned(),
            fetched_at: entry.fetched_at().to_string(),
            valid_until: entry.valid_until().to_string(),
            valid_until_field: entry.valid_until_field().to_owned(),
        }
    }
}

/// A bundle directory's `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// When the bundle was written (RFC 3339).
    pub created: String,
    /// What it holds, sorted by key.
    pub items: Vec<ManifestItem>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    format: String,
    created: String,
    entries: Vec<StoredEntry>,
}

/// Write `entries` as a bundle directory at `dir` (entries and manifest), at time `now`.
///
/// # Errors
/// [`CollateralError::Io`] when a file cannot be written.
pub fn write_bundle_dir(
    dir: &Path,
    entries: &[Entry],
    now: UnixTime,
) -> Result<Manifest, CollateralError> {
    let cache = Cache::open(dir)?;
    for entry in entries {
        cache.put(entry.clone())?;
    }
    write_manifest(dir, now)
}

/// Rewrite `dir/manifest.json` from the entries the directory holds.
///
/// # Errors
/// [`CollateralError::Io`]; [`CollateralError::Format`] when an entry file is malformed.
pub fn write_manifest(dir: &Path, now: UnixTime) -> Result<Manifest, CollateralError> {
    let (entries, bad) = read_entries_dir(&dir.join(ENTRIES_DIR))?;
    if let Some(first) = bad.into_iter().next() {
        return Err(first);
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_owned(),
        created: now.to_string(),
        items: entries.iter().map(ManifestItem::of).collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| CollateralError::Format {
        path: dir.join(MANIFEST_FILE).display().to_string(),
        detail: e.to_string(),
    })?;
    write_atomic(&dir.join(MANIFEST_FILE), &json)?;
    Ok(manifest)
}

/// The keys a bundle directory's `manifest.json` lists that its `entries/` no longer holds
/// (a file deleted or lost in a copy), for a warning; empty for a cache directory (no
/// manifest) or a bundle file. Entries beside the manifest's are not listed: a bundle
/// directory used as a cache gains them by fetching. Only the manifest's `items[].key` are
/// read (a manifest of another version still compares), each against the names `entries/`
/// holds (never a path made from a key).
///
/// # Errors
/// [`CollateralError::Format`] when the manifest is malformed or larger than a bundle may be;
/// [`CollateralError::Io`].
pub fn manifest_gaps(path: &Path) -> Result<Vec<String>, CollateralError> {
    #[derive(Deserialize)]
    struct Keys {
        items: Vec<Key>,
    }
    #[derive(Deserialize)]
    struct Key {
        key: String,
    }
    let file = path.join(MANIFEST_FILE);
    if !path.is_dir() || !file.is_file() {
        return Ok(Vec::new());
    }
    let bytes = read_file(&file)?;
    let bad = |detail: String| CollateralError::Format {
        path: file.display().to_string(),
        detail,
    };
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(bad(format!("larger than {MAX_BUNDLE_LEN} bytes")));
    }
    let manifest: Keys = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if manifest.items.len() > MAX_BUNDLE_ENTRIES {
        return Err(bad(format!("lists more than {MAX_BUNDLE_ENTRIES} items")));
    }
    // By the names `entries/` holds (a file that cannot be read is not missing: `show` says
    // it is unreadable).
    let held: std::collections::HashSet<String> = match std::fs::read_dir(path.join(ENTRIES_DIR)) {
        Ok(listing) => listing
            .take(crate::cache::MAX_DIR_ENTRIES)
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_owned)
            })
            .collect(),
        Err(_) => std::collections::HashSet::new(),
    };
    Ok(manifest
        .items
        .into_iter()
        .map(|i| crate::error::sanitise(&i.key, 200))
        .filter(|key| !held.contains(key))
        .collect())
}

/// What [`fetch_into_bundle`] got and what it could not get.
#[derive(Debug, Default)]
pub struct FetchReport {
    /// The items fetched (or already fresh in the cache, or held while the service's copy
    /// could not be had: see `cached` and `stale`).
    pub fetched: Vec<Arc<Entry>>,
    /// The keys of those of `fetched` the cache held and that were not yet due for refresh
    /// (not asked for).
    pub cached: Vec<String>,
    /// Those of `fetched` that were due and asked for, but the service's copy could not be
    /// had (or was refused): the held copy, still valid, is in the bundle; key and why.
    pub stale: Vec<(String, String)>,
    /// The items that failed, with why.
    pub failed: Vec<(Item, CollateralError)>,
    /// Entries the bundle directory held before that the vetter refuses (key, reason), for
    /// items this run did not get an accepted copy of: [`fetch_into_bundle_vetted`] then writes
    /// nothing.
    pub refused_held: Vec<(String, String)>,
    /// Entries the bundle directory held before that the vetter refuses, replaced by the
    /// accepted copy this run fetched (key, reason).
    pub replaced_held: Vec<(String, String)>,
    /// Items the bundle directory already held a copy of that was issued later than the one
    /// this run got (and is still usable, as [`import_vetted`] judges it): that copy stays,
    /// and the item is not in `fetched` (but stays in `stale` when its refresh failed).
    pub kept_held: Vec<String>,
}

/// `collateral fetch`: get `items` through `cache` (online) and write them as a bundle
/// directory at `out`. Items that fail are reported, not fatal; the bundle holds the rest.
/// The manifest is `None` when nothing was got and `out` did not exist: no directory is
/// made.
///
/// # Errors
/// [`CollateralError::Io`] when the bundle cannot be written.
pub fn fetch_into_bundle(
    cache: &Cache,
    items: &[Item],
    out: &Path,
    now: UnixTime,
) -> Result<(FetchReport, Option<Manifest>), CollateralError> {
    fetch_into_bundle_vetted(cache, items, out, now, &|_| Vec::new())
}

/// Which entries of a set a verifier refuses: their indexes, each with the reason. For
/// [`fetch_into_bundle_vetted`] and [`import_vetted`], which take what a verifier accepts
/// only (this crate has no verifier: a service passes its own check, as for
/// [`Cache::with_vetter`], but over the whole set, so that a VCEK is judged with the chain
/// that comes with it).
pub type BundleVetter<'a> = &'a dyn Fn(&[Arc<Entry>]) -> Vec<(usize, String)>;

/// [`fetch_into_bundle`] keeping only what `vet` accepts: a fetched entry it refuses is left
/// out of the bundle, reported as failed ([`CollateralError::Refused`]) and forgotten by the
/// cache ([`Cache::refuse`]), so that the next fetch asks the service again instead of
/// reading the refused copy for as long as it looks valid. What the bundle directory `out`
/// already held is vetted with it (a directory fetched into before, or filled by hand): a
/// refused copy of an item this run fetched an accepted copy of is replaced
/// (`replaced_held`); when any other is refused (`refused_held`), nothing is written and the
/// manifest is `None`, so that a bundle never lists an entry the verifier refuses, and
/// nothing the operator put there is deleted (a root left off the command line would refuse
/// all of it). A copy the directory holds that was issued later than the one this run got
/// stays (`kept_held`), as [`import_vetted`] keeps it: fetching never rolls a bundle back.
/// When nothing was got and `out` did not exist, no directory is made and the manifest is
/// `None` too (with `refused_held` empty).
///
/// # Errors
/// As [`fetch_into_bundle`]; as [`read_entries`] when `out` is not a bundle directory or
/// holds a malformed entry (before anything is fetched).
pub fn fetch_into_bundle_vetted(
    cache: &Cache,
    items: &[Item],
    out: &Path,
    now: UnixTime,
    vet: BundleVetter<'_>,
) -> Result<(FetchReport, Option<Manifest>), CollateralError> {
    // What `out` holds, read first: a directory that is not a bundle (or holds an entry that
    // cannot be read) fails before anything is asked of the services.
    let held: Vec<Arc<Entry>> = if out.is_dir() {
        read_entries(out)?.into_iter().map(Arc::new).collect()
    } else if out.exists() {
        return Err(CollateralError::Format {
            path: out.display().to_string(),
            detail: String::from("not a directory (a bundle directory is written)"),
        });
    } else {
        Vec::new()
    };
    let mut report = FetchReport::default();
    let mut asked: Vec<&Item> = Vec::with_capacity(items.len());
    for item in items {
        if asked.contains(&item) {
            continue;
        }
        asked.push(item);
        // How the cache answered, from its counters (of an online cache no other thread
        // uses meanwhile, as the CLI's; offline, an entry that is due reads as stale).
        let before = cache.stats();
        match cache.get(item, now) {
            Ok(entry) => {
                let after = cache.stats();
                if after.fetches == before.fetches {
                    if after.hits > before.hits {
                        report.cached.push(entry.item().key());
                    } else {
                        let why = cache
                            .last_failure(item)
                            .map_or_else(|| String::from("the refresh failed"), |e| e.to_string());
                        report.stale.push((entry.item().key(), why));
                    }
                }
                report.fetched.push(entry);
            }
            Err(e) => report.failed.push((item.clone(), e)),
        }
    }
    let fetched = report.fetched.len();
    let all: Vec<Arc<Entry>> = report.fetched.iter().chain(&held).cloned().collect();
    let refused: std::collections::BTreeMap<usize, String> = vet(&all).into_iter().collect();
    for (&i, reason) in refused.iter().rev() {
        let reason = crate::error::sanitise(reason, 300);
        if i < fetched {
            let entry = report.fetched.remove(i);
            let key = entry.item().key();
            report.cached.retain(|k| *k != key);
            report.stale.retain(|(k, _)| *k != key);
            cache.refuse(&entry, &reason)?;
            report.failed.push((
                entry.item().clone(),
                CollateralError::Refused {
                    key: entry.item().key(),
                    reason,
                },
            ));
        } else if let Some(entry) = all.get(i) {
            report.refused_held.push((entry.item().key(), reason));
        }
    }
    // A refused copy held for an item this run got an accepted copy of is replaced by it.
    let accepted: std::collections::HashSet<String> =
        report.fetched.iter().map(|e| e.item().key()).collect();
    let refused_held: Vec<(String, String)> = std::mem::take(&mut report.refused_held)
        .into_iter()
        .rev()
        .collect();
    if refused_held.iter().all(|(key, _)| accepted.contains(key)) {
        report.replaced_held = refused_held;
    } else {
        // Nothing is written, so nothing is replaced either: each is reported refused.
        report.refused_held = refused_held;
        return Ok((report, None));
    }
    // Never a roll-back: a copy the directory holds that was issued later than the one this
    // run got (a lagging or replaying service, or a cache that had only the older) stays,
    // by the rule `import` keeps. The held copies the vetter refused are not among them.
    let held_accepted: std::collections::HashMap<String, &Arc<Entry>> = held
        .iter()
        .enumerate()
        .filter(|(i, _)| !refused.contains_key(&(fetched + i)))
        .map(|(_, e)| (e.item().key(), e))
        .collect();
    let mut kept = Vec::new();
    report.fetched.retain(|entry| {
        let key = entry.item().key();
        match held_accepted.get(&key) {
            Some(held) if held_is_newer(held, entry, now, || true) => {
                kept.push(key);
                false
            }
            _ => true,
        }
    });
    // A kept item the service could not renew stays in `stale`: the refresh failed, whatever
    // the directory holds.
    report.cached.retain(|k| !kept.contains(k));
    report.kept_held = kept;
    // Nothing got and no directory yet: none is made (an empty bundle would only be packed,
    // carried and imported to verify nothing).
    if report.fetched.is_empty() && !out.exists() {
        return Ok((report, None));
    }
    let entries: Vec<Entry> = report.fetched.iter().map(|e| Entry::clone(e)).collect();
    let manifest = write_bundle_dir(out, &entries, now)?;
    Ok((report, Some(manifest)))
}

/// `collateral pack`: the entries of bundle (or cache) directory `dir` as one bundle file.
///
/// # Errors
/// As [`read_entries`]; [`CollateralError::Format`] past [`MAX_BUNDLE_ENTRIES`].
pub fn pack(dir: &Path, now: UnixTime) -> Result<Vec<u8>, CollateralError> {
    let entries = read_entries(dir)?;
    pack_entries(&entries, now)
}

/// Entries as one bundle file.
///
/// # Errors
/// [`CollateralError::Format`] past [`MAX_BUNDLE_ENTRIES`].
pub fn pack_entries(entries: &[Entry], now: UnixTime) -> Result<Vec<u8>, CollateralError> {
    if entries.len() > MAX_BUNDLE_ENTRIES {
        return Err(CollateralError::Format {
            path: String::from("bundle"),
            detail: format!("more than {MAX_BUNDLE_ENTRIES} entries"),
        });
    }
    let file = BundleFile {
        format: BUNDLE_FORMAT.to_owned(),
        created: now.to_string(),
        entries: entries.iter().map(Entry::stored).collect(),
    };
    serde_json::to_vec_pretty(&file).map_err(|e| CollateralError::Format {
        path: String::from("bundle"),
        detail: e.to_string(),
    })
}

/// The entries of a bundle file's bytes, each checked for shape. `name` names it in errors.
///
/// # Errors
/// [`CollateralError::Format`] for a malformed bundle, or the first malformed entry.
pub fn unpack(bytes: &[u8], name: &str) -> Result<Vec<Entry>, CollateralError> {
    let bad = |detail: String| CollateralError::Format {
        path: name.to_owned(),
        detail,
    };
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(bad(String::from("larger than the limit")));
    }
    let file: BundleFile = serde_json::from_slice(bytes).map_err(|e| {
        // Another JSON file Tessera reads elsewhere: say which, not only that it does not fit.
        // (Probed without building its values: only which of these fields it has.)
        #[derive(Deserialize)]
        struct Probe {
            tcb_info: Option<serde::de::IgnoredAny>,
            pck_crl: Option<serde::de::IgnoredAny>,
            qe_identity: Option<serde::de::IgnoredAny>,
            #[serde(rename = "tcbInfo")]
            tcb_info_camel: Option<serde::de::IgnoredAny>,
            #[serde(rename = "enclaveIdentity")]
            enclave_identity: Option<serde::de::IgnoredAny>,
        }
        // (An object only: serde also reads a struct from an array.)
        let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let collateral = object
            && serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| {
                p.tcb_info.is_some()
                    || p.pck_crl.is_some()
                    || p.qe_identity.is_some()
                    || p.tcb_info_camel.is_some()
                    || p.enclave_identity.is_some()
            });
        if collateral {
            bad(String::from(
                "a TDX/SGX collateral file (for `verify --collateral`), not a collateral bundle \
                 (`collateral pack` makes one)",
            ))
        } else {
            bad(format!("JSON: {e}"))
        }
    })?;
    if file.format != BUNDLE_FORMAT {
        return Err(bad(format!("format is not {BUNDLE_FORMAT}")));
    }
    if file.entries.len() > MAX_BUNDLE_ENTRIES {
        return Err(bad(format!("more than {MAX_BUNDLE_ENTRIES} entries")));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(file.entries.len());
    for (i, stored) in file.entries.into_iter().enumerate() {
        let at = format!("{name}: entries[{i}]");
        let entry = Entry::from_stored_entry(stored, &at).map_err(|e| match e {
            CollateralError::Format { .. } => e,
            other => CollateralError::Format {
                path: at.clone(),
                detail: other.to_string(),
            },
        })?;
        if entries.iter().any(|e| e.item() == entry.item()) {
            return Err(bad(format!("entries[{i}]: {} twice", entry.item().key())));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The entries of `path`: a bundle or cache directory, or a bundle file.
///
/// # Errors
/// [`CollateralError::Io`]; [`CollateralError::Format`] and shape errors for the first
/// malformed entry (a bundle is all or nothing).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>, CollateralError> {
    let (entries, bad) = read_entries_and_faults(path)?;
    match bad.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(entries),
    }
}

/// [`read_entries`], with the entry files of a directory that cannot be read given apart
/// instead of failing the whole read (a bundle file stays all or nothing).
///
/// # Errors
/// As [`read_entries`], but for a directory's malformed entries.
pub fn read_entries_and_faults(
    path: &Path,
) -> Result<(Vec<Entry>, Vec<CollateralError>), CollateralError> {
    if path.is_dir() {
        let dir = path.join(ENTRIES_DIR);
        // Another directory (evidence files, a bundle's own entries/) would read as empty; an
        // empty directory is an empty cache.
        // (Dot files and a new volume's lost+found do not count.)
        let empty = std::fs::read_dir(path).is_ok_and(|l| {
            l.take(64).flatten().all(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with('.') || name == "lost+found"
            })
        });
        if !dir.is_dir() && !empty {
            return Err(CollateralError::Format {
                path: path.display().to_string(),
                detail: format!(
                    "not a cache or bundle directory (no {ENTRIES_DIR}/ in it; a bundle file is read as a file)"
                ),
            });
        }
        return read_entries_dir(&dir);
    }
    let bytes = read_file(path)?;
    Ok((unpack(&bytes, &path.display().to_string())?, Vec::new()))
}

fn read_file(path: &Path) -> Result<Vec<u8>, CollateralError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| CollateralError::io(path, &e))?;
    let limit = u64::try_from(MAX_BUNDLE_LEN).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| CollateralError::io(path, &e))?;
    Ok(bytes)
}

/// What [`import`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Keys written into the cache.
    pub imported: Vec<String>,
    /// Keys imported that were already past their validity at `now` (kept: a verification
    /// time in the past may still need them).
    pub expired: Vec<String>,
    /// Keys not imported because the cache holds an entry for the item issued later (newer
    /// collateral: an older TCB info or CRL must not roll it back).
    pub kept_newer: Vec<String>,
    /// Keys not imported because the verifier refused them ([`import_vetted`]), each with
    /// the reason.
    pub refused: Vec<(String, String)>,
    /// Keys whose very copy (body and issuer chain) the cache held already: not written.
    pub unchanged: Vec<String>,
}

/// `collateral import`: fill `cache` from the bundle (file or directory) at `path`. An item
/// the cache already holds in a copy issued later (CRL thisUpdate, TCB info or identity
/// issueDate, certificate notBefore) is kept as it is (reported in `kept_newer`): an
/// old bundle never replaces newer TCB info, QE identity or CRLs with older ones, which would
/// bring back TCB levels and revocations as they were. A stored entry that cannot be read is
/// replaced.
///
/// # Errors
/// As [`read_entries`] (nothing is imported from a bundle with a malformed entry);
/// [`CollateralError::Io`] when the cache cannot be written.
pub fn import(path: &Path, cache: &Cache, now: UnixTime) -> Result<ImportReport, CollateralError> {
    import_vetted(path, cache, now, false, &|_| Vec::new())
}

/// [`import`] that replaces what the cache holds for every item of the bundle, even an entry
/// issued later (`kept_newer` stays empty). For recovering a cache whose entry is
/// damaged or forged: the issue time [`import`] compares comes from the entry's body, which
/// the cache does not verify, so a forged entry claiming a distant `thisUpdate` would otherwise keep every
/// genuine bundle out (the verifier refuses the forged entry, so the cache fails closed
/// until it is replaced). It can roll TCB info and CRLs back to the bundle's: use it with a
/// bundle you trust.
///
/// # Errors
/// As [`import`].
pub fn import_replacing(
    path: &Path,
    cache: &Cache,
    now: UnixTime,
) -> Result<ImportReport, CollateralError> {
    import_vetted(path, cache, now, true, &|_| Vec::new())
}

/// [`import`] (or with `replace`, [`import_replacing`]) of what `vet` accepts: an entry it
/// refuses is not written (reported in `refused`), and the rest are imported.
///
/// # Errors
/// As [`import`].
pub fn import_vetted(
    path: &Path,
    cache: &Cache,
    now: UnixTime,
    replace: bool,
    vet: BundleVetter<'_>,
) -> Result<ImportReport, CollateralError> {
    let entries: Vec<Arc<Entry>> = read_entries(path)?.into_iter().map(Arc::new).collect();
    let refused: std::collections::HashMap<usize, String> = vet(&entries).into_iter().collect();
    let mut report = ImportReport::default();
    for (i, entry) in entries.into_iter().enumerate() {
        let key = entry.item().key();
        if let Some(reason) = refused.get(&i) {
            report
                .refused
                .push((key, crate::error::sanitise(reason, 300)));
            continue;
        }
        let entry = Arc::try_unwrap(entry).unwrap_or_else(|shared| Entry::clone(&shared));
        let stored = cache.lookup(entry.item()).ok().flatten();
        if !replace
            && let Some(stored) = &stored
            && held_is_newer(stored, &entry, now, || {
                vet(std::slice::from_ref(stored)).is_empty()
            })
        {
            report.kept_newer.push(key);
            continue;
        }
        // The very copy held already: nothing to write (a bundle imported again).
        if stored.as_ref().is_some_and(|held| {
            held.body() == entry.body() && held.issuer_chain() == entry.issuer_chain()
        }) {
            report.unchanged.push(key);
            continue;
        }
        if entry.check_not_expired(now).is_err() {
            report.expired.push(key.clone());
        }
        cache.put(entry)?;
        report.imported.push(key);
    }
    Ok(report)
}

/// Whether a copy already held (`held`, in a cache or a bundle directory) keeps `incoming`
/// out: it was issued later, and it is still valid, or `incoming` has expired too, or it is a
/// CRL or Intel item that the verifier accepts (`held_accepted`, judged at the last second of
/// its validity), as in the cache. A held copy that claims a later issue yet has expired and
/// is refused (a forgery placed in the directory) must not keep a current copy out, while a
/// genuine one still does; an older VCEK or chain revokes nothing.
pub(crate) fn held_is_newer(
    held: &Entry,
    incoming: &Entry,
    now: UnixTime,
    held_accepted: impl FnOnce() -> bool,
) -> bool {
    held.issued_at() > incoming.issued_at()
        && (held.check_not_expired(now).is_ok()
            || incoming.check_not_expired(now).is_err()
            || (!matches!(held.item(), Item::Vcek { .. } | Item::AmdChain { .. })
                && held_accepted()))
}

/// Whether an entry is usable at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Valid, not yet due for refresh.
    Valid,
    /// Valid, but within a day of its end (never before half its life): a new bundle is due.
    /// Judged by expiry alone ([`Entry::refresh_at_by_expiry`]): an online cache also asks for
    /// a CRL, TCB info or QE identity again a day after fetching it
    /// ([`Entry::refresh_at`]), which this does not report (a bundle's are always older).
    RefreshDue,
    /// Past its validity.
    Expired,
}

/// One line of `collateral show`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Key, item, source, fetched and valid-until times.
    #[serde(flatten)]
    pub manifest: ManifestItem,
    /// At the time asked.
    pub freshness: Freshness,
}

/// `collateral show`: what a cache or bundle (directory or file) holds and when each item
/// expires, judged at `now`.
///
/// # Errors
/// As [`read_entries`].
pub fn show(path: &Path, now: UnixTime) -> Result<Vec<Summary>, CollateralError> {
    let (summaries, bad) = show_with_faults(path, now)?;
    match bad.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(summaries),
    }
}

/// [`show`], with a directory's entry files that cannot be read given apart (so that one
/// damaged file does not hide the rest).
///
/// # Errors
/// As [`read_entries_and_faults`].
pub fn show_with_faults(
    path: &Path,
    now: UnixTime,
) -> Result<(Vec<Summary>, Vec<CollateralError>), CollateralError> {
    let (entries, bad) = read_entries_and_faults(path)?;
    let summaries = entries
        .iter()
        .map(|e| Summary {
            manifest: ManifestItem::of(e),
            freshness: if e.valid_until() <= now {
                Freshness::Expired
            } else if now >= e.refresh_at_by_expiry(crate::cache::DEFAULT_REFRESH_BEFORE_SECS, now)
            {
                Freshness::RefreshDue
            } else {
                Freshness::Valid
            },
        })
        .collect();
    Ok((summaries, bad))
}

/// `collateral pack DIR --out FILE`.
///
/// # Errors
/// As [`pack`]; [`CollateralError::Io`] when `out` cannot be written.
pub fn pack_to_file(dir: &Path, out: &Path, now: UnixTime) -> Result<usize, CollateralError> {
    let bytes = pack(dir, now)?;
    write_atomic(out, &bytes)?;
    Ok(bytes.len())
}

/// The default cache directory: `$TESSERA_CACHE_DIR`, else `$XDG_CACHE_HOME/tessera/collateral`,
/// else `$HOME/.cache/tessera/collateral`. An empty `TESSERA_CACHE_DIR` is no setting, and an
/// `XDG_CACHE_HOME` or `HOME` that is not absolute is ignored, as the XDG base directory
/// specification says (the cache would otherwise be wherever the command happened to run).
#[must_use]
pub fn default_cache_dir() -> Option<PathBuf> {
    default_cache_dir_from(|name| std::env::var_os(name))
}

/// [`default_cache_dir`] with the environment read through `var`.
#[must_use]
fn default_cache_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(dir) = var("TESSERA_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("tessera").join("collateral"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::AmdSigner;
    use tessera_snp::abi::Product;
    use tessera_snp::sim::SimPki;

    const NOW: UnixTime = tessera_tdx::sim::SIM_VERIFY_AT;

    /// An empty TESSERA_CACHE_DIR is no setting, and a relative XDG_CACHE_HOME or HOME is
    /// passed over (the XDG base
    /// directory specification).
    #[test]
    fn default_cache_dir_takes_no_empty_or_relative_setting() {
        let from = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            default_cache_dir_from(move |name| {
                vars.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            })
        };
        let home = PathBuf::from("/home/u/.cache/tessera/collateral");
        assert_eq!(
            from(&[("TESSERA_CACHE_DIR", "here"), ("HOME", "/home/u")]),
            Some(PathBuf::from("here"))
        );
        assert_eq!(
            from(&[("TESSERA_CACHE_DIR", ""), ("HOME", "/home/u")]),
            Some(home.clone())
        );
        assert_eq!(
            from(&[("XDG_CACHE_HOME", "/xdg"), ("HOME", "/home/u")]),
            Some(PathBuf::from("/xdg/tessera/collateral"))
        );
        assert_eq!(
            from(&[("XDG_CACHE_HOME", "relative"), ("HOME", "/home/u")]),
            Some(home)
        );
        assert_eq!(from(&[("XDG_CACHE_HOME", ""), ("HOME", "")]), None);
        assert_eq!(from(&[("HOME", "home/u")]), None);
        assert_eq!(from(&[]), None);
    }

    fn crl_entries() -> Vec<Entry> {
        let pki = SimPki::new(Product::Genoa).unwrap();
        let crl = pki
            .ark_crl(&[], NOW, UnixTime::from_secs(NOW.as_secs() + 86_400))
            .unwrap();
        [AmdSigner::Vcek, AmdSigner::Vlek]
            .into_iter()
            .map(|signer| {
                let item = Item::AmdCrl {
                    product: Product::Genoa,
                    signer,
                };
                Entry::new(item, "http://kds/crl", NOW, crl.der().to_vec(), None).unwrap()
            })
            .collect()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tessera-collateral-unit-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn bundle_files_are_checked_whole() {
        let entries = crl_entries();
        let packed = pack_entries(&entries, NOW).unwrap();
        assert_eq!(unpack(&packed, "b").unwrap(), entries);
        let mut v: serde_json::Value = serde_json::from_slice(&packed).unwrap();
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut w = v.clone();
            f(&mut w);
            unpack(&serde_json::to_vec(&w).unwrap(), "b").unwrap_err()
        };
        assert!(
            edit(&|w| w["format"] = serde_json::json!("tar"))
                .to_string()
                .contains("format")
        );
        assert!(
            edit(&|w| {
                let first = w["entries"][0].clone();
                w["entries"][1] = first;
            })
            .to_string()
            .contains("twice")
        );
        assert!(
            edit(&|w| w["entries"][1]["body_hex"] = serde_json::json!("00"))
                .to_string()
                .contains("entries[1]")
        );
        assert!(
            edit(&|w| w["manifest"] = serde_json::json!({}))
                .to_string()
                .contains("JSON")
        );
        v["entries"] =
            serde_json::Value::Array(vec![v["entries"][0].clone(); MAX_BUNDLE_ENTRIES + 1]);
        assert!(
            unpack(&serde_json::to_vec(&v).unwrap(), "b")
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
        assert!(unpack(&vec![b' '; MAX_BUNDLE_LEN + 1], "b").is_err());
        assert!(pack_entries(&vec![entries[0].clone(); MAX_BUNDLE_ENTRIES + 1], NOW).is_err());
    }

    #[test]
    fn directories_name_bad_files_and_manifests_list_entries() {
        let dir = temp_dir("dir");
        let manifest = write_bundle_dir(&dir, &crl_entries(), NOW).unwrap();
        assert_eq!(manifest.items.len(), 2);
        assert_eq!(manifest.items[0].key, "amd-crl-genoa-vcek");
        assert_eq!(manifest.items[0].valid_until_field, "nextUpdate");
        let on_disk: Manifest =
            serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
        assert_eq!(on_disk, manifest);
        assert_eq!(read_entries(&dir).unwrap().len(), 2);
        // A file whose content is another item than its name says.
        let entries = dir.join(ENTRIES_DIR);
        std::fs::copy(
            entries.join("amd-crl-genoa-vcek.json"),
            entries.join("amd-crl-milan-vcek.json"),
        )
        .unwrap();
        let err = read_entries(&dir).unwrap_err();
        assert!(err.to_string().contains("another item"), "{err}");
        let cache = Cache::open_existing(&dir).unwrap();
        let milan = Item::AmdCrl {
            product: Product::Milan,
            signer: AmdSigner::Vcek,
        };
        assert!(cache.lookup(&milan).is_err());
        std::fs::remove_file(entries.join("amd-crl-milan-vcek.json")).unwrap();
        // A malformed file is named; temporary files are ignored.
        std::fs::write(entries.join("junk.json"), b"{").unwrap();
        std::fs::write(entries.join(".amd-crl-x.json.1.2.tmp"), b"{").unwrap();
        let err = read_entries(&dir).unwrap_err();
        assert!(err.to_string().contains("junk.json"), "{err}");
        assert!(write_manifest(&dir, NOW).is_err());
        std::fs::remove_file(entries.join("junk.json")).unwrap();
        assert_eq!(show(&dir, NOW).unwrap().len(), 2);
        // Evict removes from disk and memory; the directory survives a missing file.
        let vcek = Item::AmdCrl {
            product: Product::Genoa,
            signer: AmdSigner::Vcek,
        };
        assert!(cache.lookup(&vcek).unwrap().is_some());
        cache.evict(&vcek).unwrap();
        assert_eq!(cache.lookup(&vcek).unwrap(), None);
        cache.evict(&vcek).unwrap();
        assert!(Cache::open_existing(&dir.join("nope")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn import_keeps_expired_entries_and_says_so() {
        let dir = temp_dir("import");
        let file = temp_dir("import-file");
        std::fs::write(&file, pack_entries(&crl_entries(), NOW).unwrap()).unwrap();
        let cache = Cache::open(&dir).unwrap();
        let later = UnixTime::from_secs(NOW.as_secs() + 2 * 86_400);
        let report = import(&file, &cache, later).unwrap();
        assert_eq!(report.imported.len(), 2);
        assert_eq!(report.expired, report.imported);
        assert!(
            show(&dir, later)
                .unwrap()
                .iter()
                .all(|s| s.freshness == Freshness::Expired)
        );
        // Offline, an expired entry is still returned: the verifier judges it at its time.
        let item = Item::AmdCrl {
            product: Product::Genoa,
            signer: AmdSigner::Vcek,
        };
        assert!(cache.get(&item, later).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&file);
    }

    /// An older bundle does not roll newer collateral back; the same or a newer one replaces.
    /// A TDX/SGX collateral file given where a bundle is expected is named as such; other
    /// JSON that is no bundle gets the parser's error.
    #[test]
    fn a_collateral_file_is_not_taken_for_a_bundle() {
        let said = |bytes: &[u8]| match unpack(bytes, "f.json") {
            Err(CollateralError::Format { detail, .. }) => detail,
            other => panic!("{other:?}"),
        };
        let collateral = br#"{"pck_crl_issuer_chain": "", "pck_crl": "00", "tcb_info": "{}"}"#;
        assert!(said(collateral).contains("a TDX/SGX collateral file"));
        assert!(said(br#"{"entries": 5}"#).starts_with("JSON: "));
        assert!(said(b" [1, 2, 3, 4, 5]").starts_with("JSON: "));
    }

    #[test]
    fn import_never_replaces_newer_collateral_with_older() {
        let dir = temp_dir("rollback");
        let cache = Cache::open(&dir).unwrap();
        let pki = SimPki::new(Product::Genoa).unwrap();
        let item = Item::AmdCrl {
            product: Product::Genoa,
            signer: AmdSigner::Vcek,
        };
        let bundle_of = |issued: i64, name: &str| {
            let crl = pki
                .ark_crl(
                    &[],
                    UnixTime::from_secs(issued),
                    UnixTime::from_secs(issued + 86_400),
                )
                .unwrap();
            let entry = Entry::new(
                item.clone(),
                "http://kds/crl",
                UnixTime::from_secs(issued),
                crl.der().to_vec(),
                None,
            )
            .unwrap();
            let file = temp_dir(name);
            std::fs::write(&file, pack_entries(&[entry], NOW).unwrap()).unwrap();
            file
        };
        let (old, new) = (
            bundle_of(NOW.as_secs(), "rollback-old"),
            bundle_of(NOW.as_secs() + 3_600, "rollback-new"),
        );
        let valid_until = |c: &Cache| c.lookup(&item).unwrap().unwrap().valid_until();
        let report = import(&new, &cache, NOW).unwrap();
        assert_eq!(report.imported.len(), 1);
        let newer = valid_until(&cache);
        let report = import(&old, &cache, NOW).unwrap();
        assert!(report.imported.is_empty());
        assert_eq!(report.kept_newer, vec![item.key()]);
        assert_eq!(valid_until(&cache), newer);
        assert_eq!(valid_until(&Cache::open(&dir).unwrap()), newer);
        // The same bundle again: the very copy is held, so nothing is written.
        let again = import(&new, &cache, NOW).unwrap();
        assert!(again.imported.is_empty());
        assert_eq!(again.unchanged, vec![item.key()]);
        // Issued later with a shorter window (an out-of-cycle CRL): newer, so imported.
        let pki_crl = pki
            .ark_crl(
                &[],
                UnixTime::from_secs(NOW.as_secs() + 7_200),
                UnixTime::from_secs(NOW.as_secs() + 7_200 + 3_600),
            )
            .unwrap();
        let shorter = Entry::new(
            item.clone(),
            "http://kds/crl",
            NOW,
            pki_crl.der().to_vec(),
            None,
        )
        .unwrap();
        let shorter_file = temp_dir("rollback-shorter");
        std::fs::write(&shorter_file, pack_entries(&[shorter], NOW).unwrap()).unwrap();
        let report = import(&shorter_file, &cache, NOW).unwrap();
        assert_eq!(report.imported, vec![item.key()]);
        assert!(valid_until(&cache) < newer);
        let _ = std::fs::remove_file(&shorter_file);
        // Replacing imports the older one all the same.
        let report = import_replacing(&old, &cache, NOW).unwrap();
        assert_eq!(report.imported, vec![item.key()]);
        assert!(report.kept_newer.is_empty());
        assert!(valid_until(&cache) < newer);
        assert!(valid_until(&Cache::open(&dir).unwrap()) < newer);
        // Once the held copy has expired, it holds back only what has expired too: a copy
        // that is current (issued before it, so one of the two dates lies) is imported.
        let report = import(&new, &cache, NOW).unwrap();
        assert_eq!(report.imported, vec![item.key()]);
        let lapsed = UnixTime::from_secs(NOW.as_secs() + 3_600 + 86_400 + 1);
        let current = {
            let crl = pki
                .ark_crl(&[], NOW, UnixTime::from_secs(NOW.as_secs() + 3 * 86_400))
                .unwrap();
            let entry = Entry::new(
                item.clone(),
                "http://kds/crl",
                NOW,
                crl.der().to_vec(),
                None,
            )
            .unwrap();
            let file = temp_dir("rollback-current");
            std::fs::write(&file, pack_entries(&[entry], NOW).unwrap()).unwrap();
            file
        };
        assert_eq!(
            import(&current, &cache, NOW).unwrap().kept_newer,
            vec![item.key()]
        );
        // Past it, a held copy the vetter accepts (genuine) still keeps it out: an Intel
        // item's window can end with its issuer chain, so an older copy can outlast it.
        assert_eq!(
            import(&current, &cache, lapsed).unwrap().kept_newer,
            vec![item.key()]
        );
        // One the vetter refuses (a forgery dated to have just expired) does not.
        let held_issued = cache.lookup(&item).unwrap().unwrap().issued_at();
        let refuse_held = |entries: &[Arc<Entry>]| -> Vec<(usize, String)> {
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.issued_at() == held_issued)
                .map(|(i, _)| (i, String::from("forged")))
                .collect()
        };
        let report = import_vetted(&current, &cache, lapsed, false, &refuse_held).unwrap();
        assert!(report.kept_newer.is_empty(), "{report:?}");
        assert_eq!(report.imported, vec![item.key()]);
        // An expired copy is still kept out by a newer expired one.
        let late = UnixTime::from_secs(NOW.as_secs() + 10 * 86_400);
        assert_eq!(
            import_replacing(&new, &cache, late).unwrap().imported.len(),
            1
        );
        let report = import(&old, &cache, late).unwrap();
        assert_eq!(report.kept_newer, vec![item.key()]);
        let _ = std::fs::remove_file(&current);
        for f in [&dir, &old, &new] {
            let _ = std::fs::remove_dir_all(f);
            let _ = std::fs::remove_file(f);
        }
    }
}
