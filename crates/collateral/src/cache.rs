//! The cache: entries in memory in front of a directory, refreshed before they expire, with at
//! most one fetch in flight per key.
//!
//! A fetch that fails is not repeated for its key for a while ([`DEFAULT_RETRY_AFTER_FAILURE`]):
//! callers in that time get the same error (or the stored entry while it is still valid)
//! without a request, so a guest retrying in a loop, or evidence naming a chip the service
//! does not know, costs the service one request per key and period, not one per attempt.
//!
//! On disk an entry is `DIR/entries/<key>.json` ([`Entry::to_json`]), written to a temporary
//! file in the same directory and renamed over the old one, so readers in other processes see
//! the old or the new file, never a torn one. Two processes may fetch the same key at once
//! (the single-flight lock is per process); the later rename wins and both copies are valid.
//!
//! A cache over a directory checks the file of an entry it holds in memory again at most every
//! [`Cache::with_disk_recheck`] (a minute by default; one `stat`, and a read only when the
//! file changed): a copy another process wrote there (`tessera collateral import` into a
//! running broker's directory, another process's fetch) that was issued no earlier replaces
//! the memory copy even while that copy is fresh, and a file removed is forgotten. Once the
//! memory copy is due for refresh the file is checked at every lookup, by the same rule: an
//! older, expired or refused file never replaces it.
//!
//! Nothing read from the cache is trusted: every entry is re-checked for shape when loaded,
//! and what [`Cache::get`] returns goes through the verifiers like fresh data.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tessera_pki::UnixTime;

use crate::CollateralError;
use crate::entry::{Entry, MAX_ENTRY_LEN};
use crate::error::sanitise;
use crate::fetch::Fetcher;
use crate::item::Item;

/// The sub-directory that holds entries (in a cache and in a bundle directory).
pub const ENTRIES_DIR: &str = "entries";
/// Most entries kept in memory (the map is cleared when full: entries reload from disk).
pub const MEMORY_CAPACITY: usize = 4096;
/// Most names in one entries directory: a directory holding more is refused (not cut short,
/// which would drop entries in no particular order).
pub const MAX_DIR_ENTRIES: usize = 65_536;
/// Most entries a cache writes to its directory for fetches (well below [`MAX_DIR_ENTRIES`]):
/// beyond it, new items are kept in memory only (see `CacheStats::not_stored`).
pub const MAX_FETCHED_FILES: usize = 8192;
/// Most bytes read from one entries directory (as the facade's `endorsement_dir` bounds its
/// directory).
pub const MAX_DIR_BYTES: u64 = 512 * 1024 * 1024;

/// How long a key whose fetch failed is not fetched again by default.
pub const DEFAULT_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// How often, by default, an entry held in memory is checked against its file in the
/// directory (see [`Cache::with_disk_recheck`]).
pub const DEFAULT_DISK_RECHECK: Duration = Duration::from_secs(60);

/// What tells one version of an entry file from another without reading it: its length,
/// modification time and (on Unix) device and inode. Every write is a new file renamed over
/// the old one ([`write_atomic`]), so a replaced file has another inode even when its length
/// and modification time (of the file system's granularity) are the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    id: (u64, u64),
}

impl FileStamp {
    fn of(m: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let id = (0, 0);
        Self {
            len: m.len(),
            modified: m.modified().ok(),
            id,
        }
    }
}

/// An entry held in memory, with what its file was when it was last read, written or checked.
#[derive(Clone, Debug)]
struct Held {
    entry: Arc<Entry>,
    /// The file's stamp; `None` when it has none (kept in memory only: a full directory).
    stamp: Option<FileStamp>,
    /// When the directory was last read or checked for it.
    checked: Instant,
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from memory or disk without fetching.
    pub hits: u64,
    /// Lookups that needed a fetch (or found nothing offline).
    pub misses: u64,
    /// Fetches that succeeded.
    pub fetches: u64,
    /// Fetches that failed.
    pub fetch_errors: u64,
    /// Lookups answered from a recent failure, without a fetch.
    pub failures_reused: u64,
    /// Fetched entries kept in memory only: the directory holds [`MAX_FETCHED_FILES`].
    pub not_stored: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    fetches: AtomicU64,
    fetch_errors: AtomicU64,
    failures_reused: AtomicU64,
    not_stored: AtomicU64,
}

/// Checks a fetched entry before the cache stores it (see [`Cache::with_vetter`]): `Err`
/// with the reason refuses it.
pub type Vetter = Arc<dyn Fn(&Entry, UnixTime) -> Result<(), String> + Send + Sync>;

/// A cache of fetched items; online when it has a [`Fetcher`], offline otherwise.
pub struct Cache {
    dir: Option<PathBuf>,
    memory: RwLock<HashMap<String, Held>>,
    flights: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    fetcher: Option<Fetcher>,
    refresh_before_secs: i64,
    /// Per key whose last fetch failed: no fetch before this instant, and that fetch's error.
    failed: Mutex<HashMap<String, (Instant, CollateralError)>>,
    retry_after_failure: Duration,
    disk_recheck: Duration,
    counters: Counters,
    vetter: Option<Vetter>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("dir", &self.dir)
            .field("fetcher", &self.fetcher)
            .field("refresh_before_secs", &self.refresh_before_secs)
            .field("retry_after_failure", &self.retry_after_failure)
            .field("disk_recheck", &self.disk_recheck)
            .field("counters", &self.counters)
            .field("vetter", &self.vetter.is_some())
            .finish_non_exhaustive()
    }
}

/// Refresh an entry a day before it expires by default.
pub const DEFAULT_REFRESH_BEFORE_SECS: i64 = 24 * 3600;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Cache {
    /// A cache over directory `dir` (created if missing). Offline until
    /// [`Cache::with_fetcher`].
    ///
    /// # Errors
    /// [`CollateralError::Io`] when the directory cannot be created.
    pub fn open(dir: &Path) -> Result<Self, CollateralError> {
        let entries = dir.join(ENTRIES_DIR);
        std::fs::create_dir_all(&entries).map_err(|e| CollateralError::io(&entries, &e))?;
        Ok(Self::with_dir(Some(dir.to_path_buf())))
    }

    /// A cache over an existing cache or bundle directory that holds entries, read only in
    /// spirit: nothing is created until an entry is stored (for `--collateral-dir`, which may be
    /// a bundle). A directory with no `entries/*.json` in it (an empty directory, a volume that
    /// did not mount, the wrong path) is refused, as `collateral pack` and `import` refuse one:
    /// offline, it could only answer that nothing is cached, item by item.
    ///
    /// # Errors
    /// [`CollateralError::Io`] when `dir` is not a directory or cannot be listed;
    /// [`CollateralError::Format`] when it holds no entry.
    pub fn open_existing(dir: &Path) -> Result<Self, CollateralError> {
        if !dir.is_dir() {
            let detail = if dir.is_file() {
                "a file, not a cache or bundle directory (a bundle file is imported first: \
                 `tessera collateral import FILE --cache-dir DIR`)"
            } else if dir.exists() {
                "not a directory"
            } else {
                "no such directory"
            };
            return Err(CollateralError::Io {
                path: dir.display().to_string(),
                detail: String::from(detail),
            });
        }
        let entries = dir.join(ENTRIES_DIR);
        let holds_one = match std::fs::read_dir(&entries) {
            // (Names as `read_entries_dir` takes them; no file is read here.)
            Ok(listing) => listing.take(MAX_DIR_ENTRIES).flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.ends_with(".json") && !name.starts_with('.')
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(CollateralError::io(&entries, &e)),
        };
        if !holds_one {
            return Err(CollateralError::Format {
                path: dir.display().to_string(),
                detail: format!(
                    "holds no collateral entries (no {ENTRIES_DIR}/*.json: an empty directory, a \
                     volume that is not mounted, or not a cache or bundle directory; \
                     `tessera collateral import` fills one)"
                ),
            });
        }
        Ok(Self::with_dir(Some(dir.to_path_buf())))
    }

    /// A cache in memory only.
    #[must_use]
    pub fn in_memory() -> Self {
        Self::with_dir(None)
    }

    fn with_dir(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            memory: RwLock::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            fetcher: None,
            refresh_before_secs: DEFAULT_REFRESH_BEFORE_SECS,
            failed: Mutex::new(HashMap::new()),
            retry_after_failure: DEFAULT_RETRY_AFTER_FAILURE,
            disk_recheck: DEFAULT_DISK_RECHECK,
            counters: Counters::default(),
            vetter: None,
        }
    }

    /// Check every fetched entry with `vetter` before it is stored (a service passes its
    /// verifier's check that the entry is signed under its roots): a refused entry counts as a
    /// failed fetch ([`CollateralError::Refused`]), so the copy held stays in use while valid
    /// and the item is not fetched again for the retry-after-failure wait. Without it, a forged
    /// copy that claims a later issue time would replace the genuine one, and once removed
    /// (see [`Cache::refuse`]) would let an older genuine copy back in.
    #[must_use]
    pub fn with_vetter(mut self, vetter: Vetter) -> Self {
        self.vetter = Some(vetter);
        self
    }

    /// Whether an expired held copy still holds an older one back: only a CRL or an Intel item
    /// (a VCEK or chain that is older revokes nothing, and the vetter does not judge those
    /// alone), and only when the vetter accepts it at the last second of its validity; with
    /// no vetter it is taken as genuine (newer-only then errs towards no rollback).
    fn genuine_when_it_lapsed(&self, entry: &Entry) -> bool {
        if matches!(entry.item(), Item::Vcek { .. } | Item::AmdChain { .. }) {
            return false;
        }
        let at = UnixTime::from_secs(entry.valid_until().as_secs().saturating_sub(1));
        self.vetter
            .as_ref()
            .is_none_or(|vet| vet(entry, at).is_ok())
    }

    /// The error of `item`'s last fetch while it is not fetched again (the
    /// retry-after-failure wait), for saying why a held copy was answered instead.
    #[must_use]
    pub fn last_failure(&self, item: &Item) -> Option<CollateralError> {
        self.recent_failure(&item.key())
    }

    /// `entry` if the vetter (when set) accepts it.
    fn vetted(&self, key: &str, entry: Entry, now: UnixTime) -> Result<Entry, CollateralError> {
        match &self.vetter {
            Some(vet) => match vet(&entry, now) {
                Ok(()) => Ok(entry),
                Err(reason) => Err(CollateralError::Refused {
                    key: key.to_owned(),
                    reason: sanitise(&reason, 300),
                }),
            },
            None => Ok(entry),
        }
    }

    /// Fetch missing and expiring items with `fetcher`.
    #[must_use]
    pub fn with_fetcher(mut self, fetcher: Fetcher) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Refresh entries `secs` before they expire (default a day; never before half their life;
    /// an item carrying revocation or TCB status also a day after it was fetched, whatever
    /// this says: [`crate::entry::STATUS_REFRESH_SECS`]).
    #[must_use]
    pub fn with_refresh_before(mut self, secs: i64) -> Self {
        self.refresh_before_secs = secs.max(0);
        self
    }

    /// After a failed fetch, do not fetch that key again for `wait` (default
    /// [`DEFAULT_RETRY_AFTER_FAILURE`]; zero fetches on every call).
    #[must_use]
    pub fn with_retry_after_failure(mut self, wait: Duration) -> Self {
        self.retry_after_failure = wait;
        self
    }

    /// Check an entry held in memory against its file in the directory when it was last read
    /// from or checked against it `every` ago or longer (default [`DEFAULT_DISK_RECHECK`], a
    /// minute; [`Duration::ZERO`] checks at every lookup; no effect on a cache without a
    /// directory). The check is one `stat` of the file: only when its length, modification
    /// time or inode changed is it read and parsed, and its entry, if it is for the same item,
    /// not expired, accepted by the vetter (when set) and not issued before the one held
    /// (newer-only, as [`crate::bundle::import`] and fetches), replaces the memory copy; a file
    /// removed is forgotten (as for an entry due for refresh). So a CRL imported with `tessera
    /// collateral import` into a running broker's directory is used within `every`, though the
    /// copy in memory is valid for months. A lookup answered from memory within `every` makes
    /// no system call.
    #[must_use]
    pub fn with_disk_recheck(mut self, every: Duration) -> Self {
        self.disk_recheck = every;
        self
    }

    /// The directory, if any.
    #[must_use]
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The fetcher, if online.
    #[must_use]
    pub fn fetcher(&self) -> Option<&Fetcher> {
        self.fetcher.as_ref()
    }

    /// Counters since the cache was made.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            fetches: c.fetches.load(Ordering::Relaxed),
            fetch_errors: c.fetch_errors.load(Ordering::Relaxed),
            failures_reused: c.failures_reused.load(Ordering::Relaxed),
            not_stored: c.not_stored.load(Ordering::Relaxed),
        }
    }

    /// Whether `entry` is not yet due at `now`. Online, by [`Entry::refresh_at`]: an item
    /// carrying revocation or TCB status is asked for again a day after it was fetched. Offline
    /// there is nobody to ask, and "due" only means reading the directory again, which the
    /// disk recheck ([`Cache::with_disk_recheck`]) does anyway: by its expiry alone
    /// ([`Entry::refresh_at_by_expiry`]), so that a bundle's CRLs and TCB info, always more
    /// than a day old, are not read from disk at every lookup.
    fn fresh(&self, entry: &Entry, now: UnixTime) -> bool {
        let due = if self.fetcher.is_some() {
            entry.refresh_at(self.refresh_before_secs, now)
        } else {
            entry.refresh_at_by_expiry(self.refresh_before_secs, now)
        };
        now < due
    }

    /// The entry for `item` at wall-clock time `now`.
    ///
    /// Online: a stored entry is used until it is due for refresh, then fetched again (one
    /// fetch per key at a time; concurrent callers wait for it); if the refresh fails, the
    /// stored entry is used while it is still valid. A fetched copy issued before the stored
    /// one is refused (newer-only, as [`crate::bundle::import`]): a lagging or replaying
    /// source does not roll collateral back. A key whose fetch failed is not fetched
    /// again for [`Cache::with_retry_after_failure`]: meanwhile the stored entry (while valid)
    /// or that fetch's error is the answer. Offline: whatever is stored is returned,
    /// expired or not — the verifier judges it at its verification time. With a directory,
    /// an entry fresh in memory is checked against its file every
    /// [`Cache::with_disk_recheck`]: a later-issued copy written there by another process
    /// replaces it, and a removed file is forgotten.
    ///
    /// # Errors
    /// [`CollateralError::Item`] for an item whose fields are malformed (one built by hand);
    /// [`CollateralError::NotCached`] offline when nothing is stored; the fetch error online
    /// when nothing valid is stored and the fetch fails; [`CollateralError::Io`] when the
    /// directory cannot be written.
    pub fn get(&self, item: &Item, now: UnixTime) -> Result<Arc<Entry>, CollateralError> {
        // A caller may build an item by hand: its key must be a plain file name.
        item.check()?;
        let key = item.key();
        if let Some(held) = self.memory_held(&key)
            && self.fresh(&held.entry, now)
            && !self.recheck_due(&held)
        {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(held.entry);
        }
        let flight = self.flight(&key);
        let result = {
            let _guard = flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.get_locked(item, &key, now)
        };
        self.land(&key, &flight);
        result
    }

    fn get_locked(
        &self,
        item: &Item,
        key: &str,
        now: UnixTime,
    ) -> Result<Arc<Entry>, CollateralError> {
        // Another caller may have fetched it (or checked the directory) while we waited.
        let stored = match self.memory_held(key) {
            Some(held) if self.dir.is_none() => Some(held.entry),
            // Fresh in memory, its file not due for a check: the memory copy.
            Some(held) if self.fresh(&held.entry, now) && !self.recheck_due(&held) => {
                Some(held.entry)
            }
            // Fresh in memory with its file due for a check, or due in memory: the directory
            // may hold a newer copy (`collateral import` into a running offline broker's
            // directory, another process's fetch), which replaces it, by the one rule of
            // `recheck` (an older, expired or refused file, such as an `import --replace` of an
            // old bundle, does not, however long the memory copy has been due); a file removed
            // since is forgotten.
            Some(held) => self.recheck(item, key, held, now),
            // A stored file that cannot be used (damaged, or holding another item) is a miss
            // when the cache can fetch: the fetched entry replaces it. Offline it is an error.
            None => match self.load(item) {
                Ok(stored) => stored,
                Err(_) if self.fetcher.is_some() => None,
                Err(e) => return Err(e),
            },
        };
        if let Some(e) = stored.as_ref().filter(|e| self.fresh(e, now)) {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::clone(e));
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let Some(fetcher) = &self.fetcher else {
            return stored.ok_or_else(|| CollateralError::NotCached {
                key: key.to_owned(),
            });
        };
        let fallback = |e: CollateralError| match &stored {
            Some(old) if old.valid_until() > now => Ok(Arc::clone(old)),
            _ => Err(e),
        };
        if let Some(e) = self.recent_failure(key) {
            self.counters
                .failures_reused
                .fetch_add(1, Ordering::Relaxed);
            return fallback(e);
        }
        match fetcher
            .fetch(item, now)
            .and_then(|entry| self.vetted(key, entry, now))
        {
            // Newer-only, as `import` is: a source answering with a copy issued before the
            // one held (a lagging PCCS, or a replay of an older CRL that the vendor really
            // signed, from before a revocation) does not roll the held one back. A copy issued
            // later replaces it even when its own window is shorter. A held copy past its
            // validity holds an older one back only when it is a CRL or Intel item the vetter
            // accepts (judged at the last second of its validity; see
            // `genuine_when_it_lapsed`): a forgery dated to have just expired, placed in the
            // directory, must not keep the genuine copy out for good, while a genuine one
            // still does (an Intel item's window can end with its issuer chain, so an older
            // copy can outlast a newer one).
            Ok(entry)
                if stored.as_ref().is_some_and(|old| {
                    old.issued_at() > entry.issued_at()
                        && (old.valid_until() > now || self.genuine_when_it_lapsed(old))
                }) =>
            {
                let e = CollateralError::Response {
                    key: key.to_owned(),
                    field: "issued",
                    detail: format!(
                        "issued {}, before the held copy (issued {}): an older copy, not stored",
                        entry.issued_at(),
                        stored.as_ref().map_or(now, |old| old.issued_at())
                    ),
                };
                self.counters.fetch_errors.fetch_add(1, Ordering::Relaxed);
                self.remember_failure(key, &e);
                fallback(e)
            }
            Ok(entry) => {
                self.counters.fetches.fetch_add(1, Ordering::Relaxed);
                self.forget_failure(key);
                self.put_fetched(entry)
            }
            Err(e) => {
                self.counters.fetch_errors.fetch_add(1, Ordering::Relaxed);
                self.remember_failure(key, &e);
                fallback(e)
            }
        }
    }

    /// The error of `key`'s last fetch while it must not be fetched again.
    fn recent_failure(&self, key: &str) -> Option<CollateralError> {
        let mut map = self
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(key) {
            Some((until, e)) if Instant::now() < *until => Some(e.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    fn remember_failure(&self, key: &str, error: &CollateralError) {
        if self.retry_after_failure.is_zero() {
            return;
        }
        let Some(until) = Instant::now().checked_add(self.retry_after_failure) else {
            return;
        };
        let mut map = self
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MEMORY_CAPACITY {
            // Bounded: keys made up by evidence must not grow it; the past ones go first.
            let now = Instant::now();
            map.retain(|_, (until, _)| *until > now);
            if map.len() >= MEMORY_CAPACITY {
                map.clear();
            }
        }
        map.insert(key.to_owned(), (until, error.clone()));
    }

    fn forget_failure(&self, key: &str) {
        self.failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    fn flight(&self, key: &str) -> Arc<Mutex<()>> {
        let mut map = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(key.to_owned()).or_default())
    }

    /// Drop the flight lock of `key` when no other caller holds it.
    fn land(&self, key: &str, flight: &Arc<Mutex<()>>) {
        let mut map = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One reference in the map, one here: nobody else waits on it.
        if Arc::strong_count(flight) == 2 {
            map.remove(key);
        }
    }

    fn memory_get(&self, key: &str) -> Option<Arc<Entry>> {
        self.memory_held(key).map(|held| held.entry)
    }

    fn memory_held(&self, key: &str) -> Option<Held> {
        self.memory.read().ok()?.get(key).cloned()
    }

    /// Hold `entry` in memory, read from or written to a file of `stamp` (`None`: no file)
    /// just now.
    fn memory_put(&self, entry: Arc<Entry>, stamp: Option<FileStamp>) {
        if let Ok(mut map) = self.memory.write() {
            if map.len() >= MEMORY_CAPACITY {
                map.clear();
            }
            map.insert(
                entry.item().key(),
                Held {
                    entry,
                    stamp,
                    checked: Instant::now(),
                },
            );
        }
    }

    /// Whether `held`'s file is to be checked again (never without a directory).
    fn recheck_due(&self, held: &Held) -> bool {
        self.dir.is_some() && held.checked.elapsed() >= self.disk_recheck
    }

    /// Check the file of `held` (fresh in memory with its check due, see
    /// [`Cache::with_disk_recheck`], or due in memory): the entry to use, `None` when the file
    /// was removed. The one rule for taking a directory's copy over a held one: for the same
    /// item, not expired, not issued before the held copy (`held_is_newer`) and accepted by the
    /// vetter. Called under `key`'s flight lock.
    fn recheck(&self, item: &Item, key: &str, held: Held, now: UnixTime) -> Option<Arc<Entry>> {
        let Some(path) = self.entry_path(key) else {
            return Some(held.entry);
        };
        let stamp = match std::fs::metadata(&path) {
            Ok(m) => Some(FileStamp::of(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            // Cannot tell (permissions, I/O): the memory copy stays; asked again after `every`.
            Err(_) => {
                self.mark_checked(key, &held, held.stamp);
                return Some(held.entry);
            }
        };
        if stamp == held.stamp {
            self.mark_checked(key, &held, held.stamp);
            return Some(held.entry);
        }
        if stamp.is_none() {
            // Removed since it was read or written: forgotten, as for an entry due.
            self.memory_remove(key, &held);
            return None;
        }
        match read_bounded_stamped(&path) {
            Ok(Some((bytes, stamp))) => {
                let newer = Entry::from_json(&bytes, &path.display().to_string())
                    .ok()
                    .filter(|e| e.item() == item && e.check_not_expired(now).is_ok())
                    .filter(|e| {
                        !crate::bundle::held_is_newer(&held.entry, e, now, || {
                            self.genuine_when_it_lapsed(&held.entry)
                        })
                    })
                    .filter(|e| self.vetter.as_ref().is_none_or(|vet| vet(e, now).is_ok()));
                match newer {
                    Some(entry) => {
                        let entry = Arc::new(entry);
                        self.memory_replace(key, &held, Arc::clone(&entry), Some(stamp));
                        Some(entry)
                    }
                    // Damaged, another item's, expired, older or refused: the memory copy
                    // stays, and this version of the file is not read again.
                    None => {
                        self.mark_checked(key, &held, Some(stamp));
                        Some(held.entry)
                    }
                }
            }
            // Removed between the two looks.
            Ok(None) => {
                self.memory_remove(key, &held);
                None
            }
            Err(_) => {
                self.mark_checked(key, &held, stamp);
                Some(held.entry)
            }
        }
    }

    /// Record that `held`'s file was checked just now and found as `stamp`, unless another
    /// entry has replaced it in memory meanwhile.
    fn mark_checked(&self, key: &str, held: &Held, stamp: Option<FileStamp>) {
        self.memory_replace(key, held, Arc::clone(&held.entry), stamp);
    }

    /// Hold `entry` (of a file of `stamp`, checked just now) for `key` in place of `held`,
    /// unless another entry has replaced `held` in memory meanwhile.
    fn memory_replace(&self, key: &str, held: &Held, entry: Arc<Entry>, stamp: Option<FileStamp>) {
        if let Ok(mut map) = self.memory.write()
            && let Some(slot) = map.get_mut(key)
            && Arc::ptr_eq(&slot.entry, &held.entry)
        {
            *slot = Held {
                entry,
                stamp,
                checked: Instant::now(),
            };
        }
    }

    /// Forget `held` for `key`, unless another entry has replaced it in memory meanwhile.
    fn memory_remove(&self, key: &str, held: &Held) {
        if let Ok(mut map) = self.memory.write()
            && map
                .get(key)
                .is_some_and(|slot| Arc::ptr_eq(&slot.entry, &held.entry))
        {
            map.remove(key);
        }
    }

    /// The stored entry for `item`, fetched or not, valid or not (no fetch).
    ///
    /// # Errors
    /// [`CollateralError::Format`] (and shape errors) when the stored file is malformed;
    /// [`CollateralError::Io`] when it cannot be read.
    pub fn lookup(&self, item: &Item) -> Result<Option<Arc<Entry>>, CollateralError> {
        item.check()?;
        match self.memory_get(&item.key()) {
            Some(e) => Ok(Some(e)),
            None => self.load(item),
        }
    }

    fn entry_path(&self, key: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(ENTRIES_DIR).join(format!("{key}.json")))
    }

    fn load(&self, item: &Item) -> Result<Option<Arc<Entry>>, CollateralError> {
        let key = item.key();
        let Some(path) = self.entry_path(&key) else {
            return Ok(None);
        };
        let Some((bytes, stamp)) = read_bounded_stamped(&path)? else {
            return Ok(None);
        };
        let entry = Entry::from_json(&bytes, &path.display().to_string())?;
        if entry.item() != item {
            return Err(CollateralError::Format {
                path: path.display().to_string(),
                detail: String::from("holds another item than its name says"),
            });
        }
        let entry = Arc::new(entry);
        self.memory_put(Arc::clone(&entry), Some(stamp));
        Ok(Some(entry))
    }

    /// Store `entry` (memory, and disk when the cache has a directory).
    ///
    /// # Errors
    /// [`CollateralError::Io`] when the file cannot be written.
    pub fn put(&self, entry: Entry) -> Result<Arc<Entry>, CollateralError> {
        let stamp = match self.entry_path(&entry.item().key()) {
            Some(path) => Some(write_atomic_stamped(&path, &entry.to_json())?),
            None => None,
        };
        let entry = Arc::new(entry);
        self.memory_put(Arc::clone(&entry), stamp);
        Ok(entry)
    }

    /// Store a fetched entry: on disk while the directory holds fewer than
    /// [`MAX_FETCHED_FILES`] entries (or the item already has a file), else in memory only.
    /// Which chip and TCB a VCEK is fetched for comes from evidence not yet verified (it
    /// cannot be before the VCEK is there): guests naming made-up TCB values of a real chip
    /// would otherwise fill the directory with genuine but useless VCEKs until it is past what
    /// a directory may hold ([`MAX_DIR_ENTRIES`]) and every listing of it fails.
    fn put_fetched(&self, entry: Entry) -> Result<Arc<Entry>, CollateralError> {
        if let Some(path) = self.entry_path(&entry.item().key())
            && !path.exists()
            && let Some(parent) = path.parent()
            && std::fs::read_dir(parent)
                .map(|l| l.take(MAX_FETCHED_FILES).count() >= MAX_FETCHED_FILES)
                .unwrap_or(false)
        {
            self.counters.not_stored.fetch_add(1, Ordering::Relaxed);
            let entry = Arc::new(entry);
            self.memory_put(Arc::clone(&entry), None);
            return Ok(entry);
        }
        self.put(entry)
    }

    /// Fetch again every stored entry that is due for refresh at `now` (for a background task
    /// of a long-running service); offline, nothing happens. Entries whose refresh fails stay.
    ///
    /// # Errors
    /// [`CollateralError::Io`] when the directory cannot be listed; each item's own result is
    /// in the list.
    #[allow(clippy::type_complexity)] // one pair per refreshed item
    pub fn refresh_due(
        &self,
        now: UnixTime,
    ) -> Result<Vec<(Item, Result<Arc<Entry>, CollateralError>)>, CollateralError> {
        Ok(self
            .due(now)?
            .into_iter()
            .map(|item| {
                let result = self.get(&item, now);
                (item, result)
            })
            .collect())
    }

    /// The items stored that are due for refresh at `now` (none offline): what
    /// [`Cache::refresh_due`] fetches, for a caller that fetches them one at a time (and can
    /// stop between them).
    ///
    /// # Errors
    /// [`CollateralError::Io`] when the directory cannot be listed.
    pub fn due(&self, now: UnixTime) -> Result<Vec<Item>, CollateralError> {
        if self.fetcher.is_none() {
            return Ok(Vec::new());
        }
        let (entries, _) = self.entries()?;
        Ok(entries
            .into_iter()
            .filter(|e| !self.fresh(e, now))
            .map(|e| e.item().clone())
            .collect())
    }

    /// Forget `item` (memory and disk), e.g. after the verifier refused it.
    ///
    /// # Errors
    /// [`CollateralError::Io`] when the file exists and cannot be removed.
    pub fn evict(&self, item: &Item) -> Result<(), CollateralError> {
        item.check()?;
        let key = item.key();
        if let Ok(mut map) = self.memory.write() {
            map.remove(&key);
        }
        if let Some(path) = self.entry_path(&key) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CollateralError::io(&path, &e)),
            }
        }
        Ok(())
    }

    /// The verifier refused `refused`, the entry for its item that this cache handed out (a
    /// forged VCEK, or an entry that still looks fresh but does not chain to its roots): forget
    /// it, so that the next lookup does not hand it out again. With a fetcher the stored file
    /// goes too (a fetch replaces it), and the item is not fetched again for the
    /// retry-after-failure wait, lookups meanwhile answering [`CollateralError::Refused`].
    /// Offline only the memory copy goes: the file is the operator's to replace, and is read
    /// (and refused) again on the next lookup. A copy stored since (another lookup's fetch, a
    /// refresh, an import) is not the one refused, and stays.
    ///
    /// # Errors
    /// As [`Cache::evict`].
    pub fn refuse(&self, refused: &Entry, reason: &str) -> Result<(), CollateralError> {
        let item = refused.item();
        item.check()?;
        let key = item.key();
        // Under the key's flight lock, so no fetch of it lands meanwhile.
        let flight = self.flight(&key);
        let result = {
            let _guard = flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.refuse_locked(refused, &key, reason)
        };
        self.land(&key, &flight);
        result
    }

    fn refuse_locked(
        &self,
        refused: &Entry,
        key: &str,
        reason: &str,
    ) -> Result<(), CollateralError> {
        let same =
            |e: &Entry| e.body() == refused.body() && e.issuer_chain() == refused.issuer_chain();
        // The directory's copy first (reading it puts it in memory): it goes only if it is the
        // refused one (an unreadable file is replaced by the next fetch anyway); offline it is
        // the operator's and stays. (Only this cache's own lookups and fetches hold the key's
        // flight lock: a file another process writes in between may be the one removed.)
        let mut removed = Ok(false);
        if self.fetcher.is_some()
            && let Some(path) = self.entry_path(key)
            && self
                .load(refused.item())
                .ok()
                .flatten()
                .is_some_and(|e| same(&e))
        {
            removed = match std::fs::remove_file(&path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
                Err(e) => Err(CollateralError::io(&path, &e)),
            };
        }
        let mut held = false;
        if let Ok(mut map) = self.memory.write() {
            match map.get(key) {
                Some(held) if same(&held.entry) => {
                    map.remove(key);
                }
                Some(_) => held = true,
                None => {}
            }
        }
        // Not fetched again for the wait, unless another copy is held (which its own refresh
        // may replace).
        if self.fetcher.is_some() && !held {
            let refused = CollateralError::Refused {
                key: key.to_owned(),
                reason: sanitise(reason, 300),
            };
            self.remember_failure(key, &refused);
        }
        removed.map(|_| ())
    }

    /// Every entry stored in the directory (or in memory, for a cache without one), each
    /// checked for shape; files that fail are returned as errors beside the good ones.
    ///
    /// # Errors
    /// [`CollateralError::Io`] when the directory cannot be listed.
    pub fn entries(&self) -> Result<(Vec<Entry>, Vec<CollateralError>), CollateralError> {
        let Some(dir) = &self.dir else {
            let map = self.memory.read().map_err(|_| CollateralError::Io {
                path: String::from("memory"),
                detail: String::from("poisoned"),
            })?;
            let mut all: Vec<Entry> = map.values().map(|h| Entry::clone(&h.entry)).collect();
            all.sort_by_key(|e| e.item().key());
            return Ok((all, Vec::new()));
        };
        read_entries_dir(&dir.join(ENTRIES_DIR))
    }
}

/// Every `*.json` entry of a directory, sorted by key; malformed files as errors.
pub(crate) fn read_entries_dir(
    dir: &Path,
) -> Result<(Vec<Entry>, Vec<CollateralError>), CollateralError> {
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(CollateralError::io(dir, &e)),
    };
    let mut paths = Vec::new();
    for (n, item) in listing.enumerate() {
        if n >= MAX_DIR_ENTRIES {
            return Err(CollateralError::Format {
                path: dir.display().to_string(),
                detail: format!("holds more than {MAX_DIR_ENTRIES} names"),
            });
        }
        let path = item.map_err(|e| CollateralError::io(dir, &e))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".json") && !name.starts_with('.') {
            paths.push(path);
        }
    }
    paths.sort();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let mut budget = MAX_DIR_BYTES;
    for path in paths {
        let name = path.display().to_string();
        // Sizes as the directory says them, before anything is read (a file that grows
        // meanwhile is still cut at MAX_ENTRY_LEN by `read_bounded`).
        // At most what `read_bounded` reads of it: one oversized file is that file's error
        // (below), not the whole directory's.
        let size = std::fs::metadata(&path).map_or(0, |m| m.len()).min(
            u64::try_from(MAX_ENTRY_LEN)
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        );
        budget = budget
            .checked_sub(size)
            .ok_or_else(|| CollateralError::Format {
                path: dir.display().to_string(),
                detail: format!("holds more than {MAX_DIR_BYTES} bytes of entries"),
            })?;
        let loaded = read_bounded(&path)
            .and_then(|b| {
                b.ok_or_else(|| CollateralError::Io {
                    path: name.clone(),
                    detail: String::from("vanished"),
                })
            })
            .and_then(|b| Entry::from_json(&b, &name));
        match loaded {
            Ok(e) if path.file_stem().and_then(|s| s.to_str()) == Some(e.item().key().as_str()) => {
                good.push(e)
            }
            Ok(_) => bad.push(CollateralError::Format {
                path: name,
                detail: String::from("holds another item than its name says"),
            }),
            Err(e) => bad.push(e),
        }
    }
    Ok((good, bad))
}

/// The file's bytes, `None` when it does not exist; at most [`MAX_ENTRY_LEN`] bytes.
/// Only a regular file (a symbolic link is followed to one) is read: a FIFO would block the
/// open itself, a device would never end.
pub(crate) fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, CollateralError> {
    Ok(read_bounded_stamped(path)?.map(|(bytes, _)| bytes))
}

/// [`read_bounded`], with the stamp of the file that was read (the one opened, whatever the
/// name points at since).
fn read_bounded_stamped(path: &Path) -> Result<Option<(Vec<u8>, FileStamp)>, CollateralError> {
    let not_regular = || CollateralError::Format {
        path: path.display().to_string(),
        detail: String::from("not a regular file"),
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(not_regular()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CollateralError::io(path, &e)),
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CollateralError::io(path, &e)),
    };
    // Checked again on what was opened: the name may have been swapped in between.
    let opened = file.metadata().map_err(|e| CollateralError::io(path, &e))?;
    if !opened.is_file() {
        return Err(not_regular());
    }
    let limit = u64::try_from(MAX_ENTRY_LEN).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| CollateralError::io(path, &e))?;
    if bytes.len() > MAX_ENTRY_LEN {
        return Err(CollateralError::Format {
            path: path.display().to_string(),
            detail: String::from("larger than the limit"),
        });
    }
    Ok(Some((bytes, FileStamp::of(&opened))))
}

/// Write `bytes` to `path` through a temporary file in the same directory (created
/// exclusively, so a name planted there, such as a symbolic link, is never written through)
/// and a rename, then sync the directory so the rename survives a crash.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CollateralError> {
    write_atomic_stamped(path, bytes).map(|_| ())
}

/// [`write_atomic`], with the stamp of the file written (renaming keeps it).
fn write_atomic_stamped(path: &Path, bytes: &[u8]) -> Result<FileStamp, CollateralError> {
    // A bare file name's parent is "": the current directory.
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| CollateralError::io(dir, &e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut created = false;
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        created = true;
        file.write_all(bytes)?;
        file.sync_all()?;
        let stamp = FileStamp::of(&file.metadata()?);
        std::fs::rename(&temp, path)?;
        Ok(stamp)
    })();
    let stamp = match written {
        Ok(stamp) => stamp,
        Err(e) => {
            // Only a file this call created is removed (not one somebody planted under the
            // name).
            if created {
                let _ = std::fs::remove_file(&temp);
            }
            return Err(CollateralError::io(path, &e));
        }
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CollateralError::io(dir, &e))?;
    Ok(stamp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A name planted where the temporary file goes (a link to a file elsewhere) is never
    /// written through, nor removed; the write fails and the link's target is untouched.
    #[test]
    fn planted_temporary_names_are_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"keep").unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        // Every name the next writes could take (other tests share the counter).
        let next = TEMP_COUNTER.load(Ordering::Relaxed);
        for n in next..next + 256 {
            let name = format!(".entry.{}.{n}.tmp", std::process::id());
            std::os::unix::fs::symlink(&outside, cache.join(name)).unwrap();
        }
        assert!(write_atomic(&cache.join("entry"), b"new").is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert!(!cache.join("entry").exists());
        // Elsewhere the same write goes through.
        write_atomic(&dir.path().join("entry"), b"new").unwrap();
        assert_eq!(std::fs::read(dir.path().join("entry")).unwrap(), b"new");
    }

    /// A bare file name (`collateral pack DIR --out bundle.json`) is written in the current
    /// directory, whose sync succeeds (the parent of a bare name is "", which cannot be opened).
    #[test]
    fn a_bare_file_name_is_written_in_the_current_directory() {
        let name = format!("tessera-bare-{}.json", std::process::id());
        let here = std::env::current_dir().unwrap();
        // Tests run in parallel: the current directory is the process's, so only this test
        // writes a bare name, and it cleans up.
        let path = Path::new(&name);
        let result = write_atomic(path, b"bare");
        let written = std::fs::read(here.join(&name));
        let _ = std::fs::remove_file(here.join(&name));
        result.unwrap();
        assert_eq!(written.unwrap(), b"bare");
    }

    /// An entries directory from elsewhere (a bundle given to `show` or `import`): a FIFO or a
    /// link to a device is an error for that name, not a hang or an endless read.
    #[test]
    fn only_regular_files_are_read_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("a.json");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("b.json")).unwrap();
        let (good, bad) = read_entries_dir(dir.path()).unwrap();
        assert!(good.is_empty());
        assert_eq!(bad.len(), 2);
        for e in &bad {
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        assert!(read_bounded(&fifo).is_err());
        assert_eq!(read_bounded(&dir.path().join("absent")).unwrap(), None);
    }

    /// The stamp a write records is what a later `stat` of the name sees (so a recheck after
    /// this process's own write reads nothing), and what reading the file gives; the same bytes
    /// written again (a new file renamed over the old) have another stamp.
    #[test]
    fn a_written_file_is_known_by_its_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry.json");
        let first = write_atomic_stamped(&path, b"same bytes").unwrap();
        let seen = FileStamp::of(&std::fs::metadata(&path).unwrap());
        assert_eq!(first, seen);
        let (bytes, read) = read_bounded_stamped(&path).unwrap().unwrap();
        assert_eq!((bytes.as_slice(), read), (&b"same bytes"[..], first));
        let second = write_atomic_stamped(&path, b"same bytes").unwrap();
        assert_ne!(first, second);
        assert_eq!(FileStamp::of(&std::fs::metadata(&path).unwrap()), second);
    }

    /// `open_existing` (`verify --collateral-dir`) takes a directory that holds an entry file,
    /// and refuses one that holds none: empty (a volume that did not mount), with an empty or
    /// only temporary-file `entries/`, or another directory; and a path that is no directory.
    #[test]
    fn an_existing_directory_must_hold_entries() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |path: &Path| match Cache::open_existing(path) {
            Err(e) => e,
            Ok(_) => panic!("{} was taken", path.display()),
        };
        for e in [
            refused(dir.path()),
            {
                std::fs::write(dir.path().join("report.bin"), b"x").unwrap();
                refused(dir.path())
            },
            {
                std::fs::create_dir(dir.path().join(ENTRIES_DIR)).unwrap();
                refused(dir.path())
            },
            {
                let entries = dir.path().join(ENTRIES_DIR);
                std::fs::write(entries.join(".amd-crl-x.json.1.2.tmp"), b"{").unwrap();
                std::fs::write(entries.join("notes.txt"), b"x").unwrap();
                refused(dir.path())
            },
        ] {
            assert!(
                matches!(&e, CollateralError::Format { detail, .. } if detail.contains("holds no collateral entries")),
                "{e}"
            );
        }
        assert!(matches!(
            refused(&dir.path().join("report.bin")),
            CollateralError::Io { .. }
        ));
        assert!(matches!(
            refused(&dir.path().join("absent")),
            CollateralError::Io { .. }
        ));
        // One entry file (damaged or not: reading it is the lookup's business) is enough.
        std::fs::write(dir.path().join(ENTRIES_DIR).join("junk.json"), b"{").unwrap();
        assert!(Cache::open_existing(dir.path()).is_ok());
    }

    /// An item built by hand with a path in its hwID is refused before any file is named.
    #[test]
    fn a_hand_made_item_cannot_name_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let item = Item::Vcek {
            product: tessera_snp::abi::Product::Milan,
            hwid: format!("../../{}", "a".repeat(122)),
            fmc: None,
            bl: 1,
            tee: 1,
            snp: 1,
            ucode: 1,
        };
        for e in [
            cache.get(&item, UnixTime::from_secs(0)).unwrap_err(),
            cache.lookup(&item).unwrap_err(),
            cache.evict(&item).unwrap_err(),
        ] {
            assert!(
                matches!(e, CollateralError::Item { field: "hwid", .. }),
                "{e}"
            );
        }
    }

    /// Past the bounds a directory is refused, not cut short.
    #[test]
    fn a_directory_past_its_bounds_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // One sparse file larger than the whole budget: that file's own error, no more (it
        // is charged what would be read of it).
        let big = std::fs::File::create(dir.path().join("big.json")).unwrap();
        big.set_len(MAX_DIR_BYTES + 1).unwrap();
        let (good, bad) = read_entries_dir(dir.path()).unwrap();
        assert!(good.is_empty());
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].to_string().contains("larger than the limit"),
            "{}",
            bad[0]
        );
        // Enough files at the entry limit to pass the directory's budget: refused.
        let per_file = u64::try_from(MAX_ENTRY_LEN).unwrap() + 1;
        for n in 0..=MAX_DIR_BYTES / per_file {
            let f = std::fs::File::create(dir.path().join(format!("big{n}.json"))).unwrap();
            f.set_len(per_file).unwrap();
        }
        let e = read_entries_dir(dir.path()).unwrap_err();
        assert!(e.to_string().contains("bytes of entries"), "{e}");
        // More names than the bound, of any kind (empty files that are no entries).
        let many = tempfile::tempdir().unwrap();
        for n in 0..=MAX_DIR_ENTRIES {
            std::fs::File::create(many.path().join(n.to_string())).unwrap();
        }
        let e = read_entries_dir(many.path()).unwrap_err();
        assert!(e.to_string().contains("names"), "{e}");
        std::fs::remove_file(many.path().join("0")).unwrap();
        assert_eq!(
            read_entries_dir(many.path()).unwrap(),
            (Vec::new(), Vec::new())
        );
    }
}
