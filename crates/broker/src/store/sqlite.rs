//! The embedded store: one SQLite file in the data directory (WAL).
//!
//! One connection, behind a mutex, runs every operation. A worker thread runs what callers hand
//! it: it takes whatever operations are waiting and runs them as one batch in one transaction
//! (`BEGIN IMMEDIATE`), then answers each caller only after that transaction committed: while
//! one commit waits for its fsync, the operations of other flows gather and share the next one
//! (group commit). A batch holding a durable write also waits for operations of other flows in
//! flight to join it, while they keep arriving (each within 250 µs) and 2 ms at most. A small
//! read, or a write that needs no fsync and has no other operation in
//! flight to share a commit with, runs on the caller's own thread instead when the connection is
//! free at that moment: two thread hand-offs fewer for most of a flow's operations. There it
//! never waits for another process's write lock (the task goes to the worker instead), never
//! checkpoints and never makes the first write after a checkpoint (which syncs the WAL's header);
//! reads of many rows, purges and durable writes always go to the worker. What can still wait
//! on the caller's thread is a read of a page not in memory, or, rarely, a read lock while
//! another process recovers the WAL.
//!
//! Durability: a batch that holds anything an operator relies on or that lets a secret out
//! (secrets, policies, admin changes, releases and refusals with their audit entries) is
//! answered only after the WAL holding its commit was fsync'd, so an acknowledged put survives
//! not just `kill -9` of the broker but a power cut too. The connection runs at
//! `synchronous=NORMAL` and the worker fsyncs the WAL itself after such a commit, once the
//! connection is released: that is the one sync `synchronous=FULL` adds to a WAL commit (SQLite's
//! documentation of `PRAGMA synchronous`; like FULL on Unix, it relies on SQLite's default
//! powersafe overwrite), taken outside the lock so that callers' own operations go on while the
//! disk works (the worker's next batch waits for it). If that fsync fails, the store refuses
//! every operation from then on: the kernel reports a failed write-back once, so a later fsync
//! could succeed over a commit that never reached the disk; a restart lets SQLite recover from
//! what is on disk. A durable write is visible to another process's readers from its commit,
//! a moment before its fsync; a power cut in that moment takes it back, and its audit sequence
//! number is then reused by the next entry. This process's audit export is answered only after
//! the fsync that follows it, so it never shows an entry a power cut could take back. Nothing is released in that
//! moment on its strength: a release's own entry is durable before the secret leaves, and its
//! fsync covers everything before it. Checkpoints (which sync the WAL before and the database
//! after) run on the worker only. The single use of challenges and attested sessions with the
//! entries recording them need no fsync of their own: written to the WAL before anyone is
//! answered (so they survive a crash of the broker), fsync'd with the next durable commit,
//! whose frames come after them in the WAL. What a power cut can take is therefore never
//! something a release relied on: a challenge whose use was lost can be answered once more, by
//! whoever holds its cookie and nonce, and that answer gets a new session of its own (the lost
//! one is gone with it); a lost session was never used for a release (the release's own entry
//! would have been fsync'd, and everything before it), so its token and cookie are refused and
//! its guest attests again. Its `attest pass` entry is lost with it (the next entry reuses its
//! sequence number), while the EAR token it was issued stays valid until it expires for
//! relying parties other than the broker. One connection: a second one to the same file would
//! lose its whole page cache each time the first one wrote, and read it back.
//!
//! Operations share a transaction. One that writes with one statement (single use of a nonce is
//! one `INSERT .. ON CONFLICT DO NOTHING`) is atomic by SQLite's statement rollback; one that
//! writes more (a challenge's use, its session and their audit entry) runs inside a savepoint,
//! so a failure leaves none of it. When SQLite rolls the whole transaction back, every operation in it gets the error.
//! `secure_delete` overwrites deleted rows. Several processes may open the same file: the
//! single-use and append guarantees rest on SQLite's own locking (every batch that writes takes
//! the write lock first with `BEGIN IMMEDIATE`, so reading the audit chain's head and appending
//! to it cannot interleave with another writer). The audit table also refuses `UPDATE` and
//! `DELETE` by trigger.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{
    AttestedSession, Challenge, KeyCheck, NewSecretVersion, ReleaseBasis, RepoPolicy,
    SecretVersionInfo, SessionId, Store, StoreError, StoredSecret,
};
use crate::audit::{self, AuditAction, AuditChainError, AuditEntry, AuditEvent, AuditVerdict};
use crate::resource::{PolicyDigest, ResourcePath};
use crate::seal::SealedSecret;

/// The database file's name in the data directory.
pub const DB_FILE: &str = "tessera.db";
/// 2: session keys start with the challenge's issue time (see `row_key`). 3: secret versions
/// record the sealed file they were imported from (`secrets.origin`). 4: repository default
/// policies carry a MAC under a KEK (`repo_policies.kek_id`, `.mac`; see `RepoPolicy`). 5: the
/// store keeps a key check, which KEK it was made with (`key_check`; see `KeyCheck`).
const SCHEMA_VERSION: i64 = 5;

/// The key check's one-row table (see `KeyCheck`): made with the schema at every open, and by
/// `migrate_4_to_5` for an older one.
const KEY_CHECK_TABLE: &str = "CREATE TABLE IF NOT EXISTS key_check (
    one INTEGER PRIMARY KEY CHECK (one = 1), kek_id TEXT NOT NULL, mac TEXT NOT NULL);";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS policies (
    digest TEXT PRIMARY KEY, text TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS repo_policies (
    repo TEXT PRIMARY KEY, digest TEXT NOT NULL REFERENCES policies(digest),
    updated_ms INTEGER NOT NULL, kek_id TEXT NOT NULL DEFAULT '', mac TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS version_counters (
    resource TEXT PRIMARY KEY, last_version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
    resource TEXT NOT NULL, repo TEXT NOT NULL, version INTEGER NOT NULL,
    policy_digest TEXT NOT NULL REFERENCES policies(digest),
    kek_id TEXT NOT NULL, wrapped_key BLOB NOT NULL, nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL, created_ms INTEGER NOT NULL, origin TEXT,
    PRIMARY KEY (resource, version));
CREATE INDEX IF NOT EXISTS secrets_repo ON secrets(repo);
CREATE INDEX IF NOT EXISTS secrets_kek ON secrets(kek_id);
CREATE TABLE IF NOT EXISTS challenges (
    session_key TEXT PRIMARY KEY, nonce TEXT NOT NULL, tee TEXT NOT NULL, hash TEXT NOT NULL,
    issued_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS challenges_expiry ON challenges(expires_ms);
CREATE TABLE IF NOT EXISTS sessions (
    session_key TEXT PRIMARY KEY, tee TEXT NOT NULL, tee_pubkey TEXT NOT NULL,
    token TEXT NOT NULL, claims TEXT NOT NULL, evidence_digest TEXT NOT NULL,
    attested_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_ms);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, resource TEXT, evidence_digest TEXT, policy_digest TEXT,
    verdict TEXT NOT NULL, reason TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS challenges_keyed_v2 BEFORE INSERT ON challenges
    WHEN length(NEW.session_key) <> 80
    BEGIN SELECT RAISE(ABORT, 'a key of schema version 1: restart every broker on this file'); END;
CREATE TRIGGER IF NOT EXISTS sessions_keyed_v2 BEFORE INSERT ON sessions
    WHEN length(NEW.session_key) <> 80
    BEGIN SELECT RAISE(ABORT, 'a key of schema version 1: restart every broker on this file'); END;
";

/// Most operations one transaction holds: bounds how long the first caller of a batch waits.
const MAX_BATCH: usize = 256;

/// How long a batch waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Commits after which the worker checkpoints the WAL into the database (SQLite's automatic
/// checkpoint is off, so that no caller's own operation ever runs one). At a few pages per
/// commit this is close to SQLite's default of 1,000 pages.
const CHECKPOINT_EVERY: u32 = 128;

/// How long at most a batch holding a durable write waits for the operations of other flows in
/// flight to join it (see `gather`): one fsync and one rewrite of the tables' last pages for
/// all of them. At 32 concurrent flows fsyncs per flow fell from 0.49 to about 0.25
/// (crates/bench, `broker`); a caller alone never waits.
const GATHER: Duration = Duration::from_millis(2);

/// How long a gathering batch waits for its next operation before it stops waiting.
const GATHER_SLICE: Duration = Duration::from_micros(250);

/// The WAL is truncated to this size after a checkpoint when it grew larger (large secrets).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The embedded SQLite store (a handle to its worker thread; clones share it, and the worker
/// stops when the last handle is dropped).
#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Task>>,
    db: Arc<Shared>,
    path: PathBuf,
    identity: [u8; 8],
}

/// The connection and the WAL file the worker fsyncs.
struct Shared {
    db: Mutex<Db>,
    wal: std::fs::File,
    /// Operations called and not yet answered.
    in_flight: AtomicUsize,
    /// The worker is waiting for the connection: callers leave it to the worker.
    worker_waiting: AtomicBool,
    /// An fsync of the WAL failed. The kernel reports a failed write-back once and then marks
    /// the pages clean, so a later fsync could succeed while a commit before it never reached
    /// the disk: from then on every operation is refused until the broker restarts (SQLite
    /// then recovers from what is on disk).
    broken: AtomicBool,
}

/// What every operation gets once the store is broken.
const BROKEN: &str = "an fsync of the write-ahead log failed; restart the broker";

/// The error of an operation whose commit failed, or that was refused before it ran.
fn commit_failed(message: &str) -> StoreError {
    StoreError::Database {
        op: "commit",
        message: message.to_owned(),
    }
}

/// One operation in flight, counted while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    fn new(conn: Connection, wal: std::fs::File) -> Self {
        Self {
            db: Mutex::new(Db::new(conn)),
            wal,
            in_flight: AtomicUsize::new(0),
            worker_waiting: AtomicBool::new(false),
            broken: AtomicBool::new(false),
        }
    }

    /// The connection, for the worker. A panic inside an operation is caught where it runs
    /// (the guard is not poisoned by it); any other poisoning leaves the connection as SQLite
    /// left it, and a transaction left open is rolled back before the next batch.
    fn lock(&self) -> MutexGuard<'_, Db> {
        self.worker_waiting.store(true, Ordering::Relaxed);
        let db = self
            .db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.worker_waiting.store(false, Ordering::Relaxed);
        db
    }

    /// The connection, for a caller's thread, when it is free and the worker is not waiting
    /// for it.
    fn try_lock(&self) -> Option<MutexGuard<'_, Db>> {
        if self.worker_waiting.load(Ordering::Relaxed) {
            return None;
        }
        match self.db.try_lock() {
            Ok(db) => Some(db),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Runs one batch of the worker's: refused when the store is broken; else run, checkpoint
    /// when due, and (with the connection released) fsync the WAL before the durable answers.
    fn process(&self, batch: Vec<Box<dyn Task>>) {
        if self.is_broken() {
            for task in batch {
                task.refuse(BROKEN);
            }
            return;
        }
        let after_sync = {
            let db = self.lock();
            let after_sync = run_batch(&db, batch, false);
            db.checkpoint_if_due();
            after_sync
        };
        if !after_sync.is_empty() {
            self.answer_after_sync(after_sync);
        }
    }

    /// Fsyncs the WAL (the sync `synchronous=FULL` adds after a commit), then answers. When
    /// the sync fails, the callers get the error and the store is broken (see `broken`).
    ///
    /// `fdatasync` (what SQLite itself calls when built with `HAVE_FDATASYNC`): the frames and
    /// the metadata that reading them back needs (the file's size, when a commit grew it),
    /// without also writing the inode for its new modification time after every commit (with
    /// one client, that write was a sixth of the sync's CPU in `perf`).
    fn answer_after_sync(&self, answers: Vec<Box<dyn Answer>>) {
        match self.wal.sync_data() {
            Ok(()) => {
                for answer in answers {
                    answer.send(Ok(()));
                }
            }
            Err(e) => {
                self.broken.store(true, Ordering::Relaxed);
                tracing::error!(error = %e, "store: could not fsync the WAL; refusing every operation until restarted");
                for answer in answers {
                    answer.send(Err(BROKEN));
                }
            }
        }
    }
}

/// Rolls back the open transaction, if any (SQLite may already have rolled it back).
fn roll_back(c: &Connection) {
    if !c.is_autocommit() {
        let _ = c.exec("ROLLBACK", []);
    }
}

/// Rolls back a transaction some failure left open (a `ROLLBACK` that failed), so that it
/// cannot take in operations that would then never commit.
fn roll_back_leftover(c: &Connection) {
    if !c.is_autocommit() {
        tracing::warn!("store: rolling back a transaction left open");
        roll_back(c);
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Database {
        op,
        message: e.to_string(),
    }
}

fn to_i64(v: u64, field: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt { field })
}

fn to_u64(v: i64, field: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt { field })
}

impl SqliteStore {
    /// Opens (creating if needed, mode 0700) the data directory and its database file, sets
    /// WAL, and creates the schema.
    ///
    /// # Errors
    /// [`StoreError::Io`], [`StoreError::Database`], [`StoreError::Worker`].
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dir = data_dir.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir))
            .await
            .map_err(|_| StoreError::Worker)?
    }

    /// [`SqliteStore::open`] for callers outside an async runtime.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_blocking(data_dir: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let io = |p: &Path| {
            let p = p.to_owned();
            move |e: std::io::Error| StoreError::Io {
                path: p.clone(),
                kind: e.kind(),
            }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(io(data_dir))?;
        let path = data_dir.join(DB_FILE);
        keep_private(&path).map_err(io(&path))?;
        let durable = connect(&path)?;
        durable.execute_batch(SCHEMA).map_err(db("schema"))?;
        durable
            .execute_batch(KEY_CHECK_TABLE)
            .map_err(db("schema"))?;
        durable
            .execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?1)
                 ON CONFLICT(key) DO NOTHING",
                params![SCHEMA_VERSION],
            )
            .map_err(db("schema"))?;
        migrate(&durable)?;
        check_schema_version(&durable, SCHEMA_VERSION)?;
        // The store's identity (see `Store::identity`): made once, by whoever opens it first.
        let mut fresh = [0u8; 8];
        aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut fresh)
            .map_err(|_| crate::seal::SealError::Crypto { step: "random" })?;
        durable
            .execute(
                "INSERT INTO meta(key, value) VALUES ('store_id', ?1) ON CONFLICT(key) DO NOTHING",
                params![i64::from_be_bytes(fresh)],
            )
            .map_err(db("schema"))?;
        let id = store_id(&durable)?;
        // Checkpoints run on the worker (see `CHECKPOINT_EVERY`).
        durable
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
            ))
            .map_err(db("pragma"))?;
        // The WAL exists while a connection is open; its directory entry is made durable once,
        // here, since the worker's own fsyncs of it do not reach the directory.
        let wal_path = wal_path(&path);
        let wal = std::fs::File::open(&wal_path).map_err(io(&wal_path))?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io(data_dir))?;
        Self::start(path, durable, wal, id)
    }

    /// Opens an existing store to read it (`tessera audit verify --data-dir`): nothing is
    /// created, migrated or repaired (a dropped trigger stays dropped), so a verification sees
    /// what was there and changes none of it. For reading only: callers write nothing through
    /// it.
    ///
    /// # Errors
    /// [`StoreError::Io`] when there is no database; [`StoreError::Database`], also for a
    /// schema of another version.
    pub fn open_read_only_blocking(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::Io {
                path,
                kind: std::io::ErrorKind::NotFound,
            });
        }
        // (Not `query_only`: the worker runs even reads of many rows in a write transaction
        // that writes nothing. Nothing here writes: no schema, migration or identity.)
        let conn = connect(&path)?;
        // A store the broker before this one made (schema 4: no key check, the same audit
        // table) reads too: verifying it needs no upgrade, and an anchor taken before an
        // upgrade stays checkable.
        check_schema_version(&conn, OLDEST_READABLE_SCHEMA)?;
        let id = store_id(&conn)?;
        let wal_path = wal_path(&path);
        let wal = std::fs::File::open(&wal_path).map_err(|e| StoreError::Io {
            path: wal_path.clone(),
            kind: e.kind(),
        })?;
        Self::start(path, conn, wal, id)
    }

    /// The store over an open connection: its worker thread started.
    fn start(
        path: PathBuf,
        durable: Connection,
        wal: std::fs::File,
        id: i64,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared::new(durable, wal));
        let (jobs, queue) = mpsc::channel::<Box<dyn Task>>();
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tessera-sqlite".into())
            .spawn(move || work(&worker, &queue))
            .map_err(|e| StoreError::Io {
                path: path.clone(),
                kind: e.kind(),
            })?;
        Ok(Self {
            jobs,
            db: shared,
            path,
            identity: id.to_be_bytes(),
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f`: here when it needs no fsync and the connection is free (see
    /// [`try_inline`]), else on the worker in the next batch; its result once its transaction
    /// committed (and, for a durable operation, the WAL was fsync'd), or the commit's error.
    async fn call<T: Send + 'static>(
        &self,
        commit: Commit,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.db.is_broken() {
            return Err(commit_failed(BROKEN));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _in_flight = InFlight::enter(&self.db.in_flight);
        if let Some(task) = self.run_here(Box::new(Op { commit, f, tx })) {
            self.jobs.send(task).map_err(|_| StoreError::Worker)?;
        }
        rx.await.map_err(|_| StoreError::Worker)?
    }

    /// Runs `task` on this thread when it needs no fsync and the connection is free; the task
    /// back when it must go to the worker.
    fn run_here(&self, task: Box<dyn Task>) -> Option<Box<dyn Task>> {
        if !task.commit().may_run_inline() {
            return Some(task);
        }
        let alone = self.db.in_flight.load(Ordering::Relaxed) <= 1;
        match self.db.try_lock() {
            Some(db) => try_inline(&db, task, alone),
            None => Some(task),
        }
    }
}

/// The key this store files a session and its challenge's use under: the challenge's issue
/// time in Unix ms as 16 hex digits, then [`SessionId::storage_key`]. The time first puts the
/// keys of one moment side by side in the indexes, so a commit of many sessions adds to one
/// index page instead of a random page each (a few per cent of the broker's CPU at 32 flows in
/// flight). An id that carries no challenge gets the digest alone, which no stored key equals.
fn row_key(session: &SessionId) -> String {
    let digest = session.storage_key();
    match Challenge::from_session(session) {
        Some(c) => format!("{:016x}{digest}", c.issued_ms.max(0)),
        None => digest,
    }
}

fn schema_version(c: &Connection) -> Result<i64, StoreError> {
    c.query_row(
        "SELECT value FROM meta WHERE key = 'schema_version'",
        [],
        |r| r.get(0),
    )
    .map_err(db("schema"))
}

/// A key check from its row (`kek_id`, `mac`).
fn key_check_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyCheck> {
    Ok(KeyCheck {
        kek_id: r.get(0)?,
        mac: r.get(1)?,
    })
}

/// A repository default policy from its stored digest, KEK id and MAC.
fn repo_policy_of(
    (digest, kek_id, mac): (String, String, String),
) -> Result<RepoPolicy, StoreError> {
    RepoPolicy::from_stored(&digest, kek_id, mac)
}

/// Brings an older store to [`SCHEMA_VERSION`], one version at a time.
fn migrate(c: &Connection) -> Result<(), StoreError> {
    migrate_1_to_2(c)?;
    migrate_2_to_3(c)?;
    migrate_3_to_4(c)?;
    migrate_4_to_5(c)
}

/// Brings a store of schema version 4 to 5: the `key_check` table, empty, in one transaction
/// that checks the version again under the write lock (another process may be doing the
/// same). The first broker of version 5 to start on it records its keyring's check, if that
/// keyring holds every KEK the store's data names (see `check_keyring`).
fn migrate_4_to_5(c: &Connection) -> Result<(), StoreError> {
    if schema_version(c)? != 4 {
        return Ok(());
    }
    let run = || -> Result<(), StoreError> {
        c.execute_batch("BEGIN IMMEDIATE").map_err(db("migrate"))?;
        if schema_version(c)? == 4 {
            c.execute_batch(KEY_CHECK_TABLE).map_err(db("migrate"))?;
            c.execute(
                "UPDATE meta SET value = 5 WHERE key = 'schema_version' AND value = 4",
                [],
            )
            .map_err(db("migrate"))?;
        }
        c.execute_batch("COMMIT").map_err(db("migrate"))
    };
    run().inspect_err(|_| roll_back(c))
}

/// Brings a store of schema version 3 to 4: `repo_policies.kek_id` and `.mac`, empty for every
/// default set before, which puts naming no policy then refuse until an admin sets the default
/// again (a default from before cannot be told from one written into the database).
fn migrate_3_to_4(c: &Connection) -> Result<(), StoreError> {
    add_columns(
        c,
        3,
        "repo_policies",
        &[
            ("kek_id", "TEXT NOT NULL DEFAULT ''"),
            ("mac", "TEXT NOT NULL DEFAULT ''"),
        ],
    )
}

/// Brings a store of schema version 2 to 3: `secrets.origin` (null for every version put
/// before, so that the first import of a sealed file after the upgrade makes one new version).
fn migrate_2_to_3(c: &Connection) -> Result<(), StoreError> {
    add_columns(c, 2, "secrets", &[("origin", "TEXT")])
}

/// Brings a store of schema version `from` to the next by adding `columns` (name, declaration)
/// to `table`, in one transaction that checks the version again under the write lock, since
/// another process may be doing the same; a column that is there already (a file made by the
/// next version, then set back) is kept.
fn add_columns(
    c: &Connection,
    from: i64,
    table: &str,
    columns: &[(&str, &str)],
) -> Result<(), StoreError> {
    if schema_version(c)? != from {
        return Ok(());
    }
    let run = || -> Result<(), StoreError> {
        c.execute_batch("BEGIN IMMEDIATE").map_err(db("migrate"))?;
        if schema_version(c)? == from {
            for (column, declaration) in columns {
                let has: i64 = c
                    .query_row(
                        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
                        params![table, column],
                        |r| r.get(0),
                    )
                    .map_err(db("migrate"))?;
                if has == 0 {
                    c.execute_batch(&format!(
                        "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
                    ))
                    .map_err(db("migrate"))?;
                }
            }
            c.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version' AND value = ?2",
                params![from + 1, from],
            )
            .map_err(db("migrate"))?;
        }
        c.execute_batch("COMMIT").map_err(db("migrate"))
    };
    run().inspect_err(|_| roll_back(c))
}

/// Brings a store of schema version 1 to 2, in one transaction (another process may be doing
/// the same): the recorded uses of challenges get their keys with the issue time in front, so
/// that a challenge answered before the upgrade is still refused after it; attested sessions,
/// whose issue time was not kept, are dropped (their guests attest again). A broker of version
/// 1 still running on the file would look challenges up under their old keys and take a used
/// one for unused: the schema's `*_keyed_v2` triggers (made before this runs) refuse its
/// inserts, so it fails closed, and every broker on the file must be restarted.
fn migrate_1_to_2(c: &Connection) -> Result<(), StoreError> {
    if schema_version(c)? != 1 {
        return Ok(());
    }
    c.execute_batch(
        "BEGIN IMMEDIATE;
         UPDATE challenges SET session_key = printf('%016x', max(issued_ms, 0)) || session_key
             WHERE length(session_key) = 64
             AND (SELECT value FROM meta WHERE key = 'schema_version') = 1;
         DELETE FROM sessions WHERE (SELECT value FROM meta WHERE key = 'schema_version') = 1;
         UPDATE meta SET value = 2 WHERE key = 'schema_version' AND value = 1;
         COMMIT;",
    )
    .map_err(|e| {
        roll_back(c);
        db("migrate")(e)
    })
}

/// Makes the database file at `path` (created empty when missing) and its WAL and
/// shared-memory files, when they exist, readable and writable by their owner alone: they hold
/// the audit log, challenges, sessions and the sealed secrets. SQLite creates the database
/// with its default mode (0644 less the umask) and gives the WAL and shared-memory files the
/// database file's mode, so a data directory that others may enter (one created 0755 before
/// the broker's first start) would otherwise expose them.
fn keep_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    for file in [path.to_owned(), wal_path(path), PathBuf::from(shm)] {
        let meta = match std::fs::symlink_metadata(&file) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode();
        if meta.is_file() && mode & 0o077 != 0 {
            tracing::warn!(file = %file.display(), mode = format!("{:o}", mode & 0o7777), "store: the file was readable by others; made 0600");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    Ok(())
}

/// The WAL of the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Opens a connection to the database file: WAL, `synchronous=NORMAL` (durable commits are
/// fsync'd by the worker), foreign keys, `secure_delete`, a statement cache and a 10 s busy
/// timeout (another process writing).
/// The database's schema is the one this broker knows, or, reading only, at least `oldest`.
fn check_schema_version(conn: &Connection, oldest: i64) -> Result<(), StoreError> {
    let v = schema_version(conn)?;
    if !(oldest..=SCHEMA_VERSION).contains(&v) {
        return Err(StoreError::Database {
            op: "schema",
            message: format!("schema version {v}, this broker knows {SCHEMA_VERSION}"),
        });
    }
    Ok(())
}

/// The oldest schema a read-only open reads (its audit table is this version's).
const OLDEST_READABLE_SCHEMA: i64 = 4;

/// The store's identity (see `Store::identity`), as its first opener made it.
fn store_id(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
        r.get(0)
    })
    .map_err(db("schema"))
}

/// The longest string, BLOB or row the broker's connection reads or writes
/// (`SQLITE_LIMIT_LENGTH`, by default 1,000,000,000 bytes): a database file edited to hold a
/// huge value fails the read with SQLite's "string or blob too big" ([`StoreError::Database`])
/// instead of taking that much memory. Far above anything the broker stores: a session record
/// (evidence and additional evidence up to `protocol::MAX_SESSION_EVIDENCE`, 2 MiB, in a short
/// JSON frame), a secret's ciphertext (`seal::MAX_SECRET_LEN`, 1 MiB, and its tag), a policy
/// (`MAX_POLICY_LEN`, 256 KiB), an audit entry (a few KiB, `audit::MAX_REASON_LEN`); the
/// assertions below keep it so.
const MAX_VALUE_LEN: i32 = 16 * 1024 * 1024;

const _: () = {
    let max = MAX_VALUE_LEN as usize;
    assert!(crate::protocol::MAX_SESSION_EVIDENCE + 64 * 1024 <= max / 4);
    assert!(crate::seal::MAX_SECRET_LEN + 64 * 1024 <= max / 4);
    assert!(super::MAX_POLICY_LEN <= max / 4);
    assert!(crate::audit::MAX_REASON_LEN + 64 * 1024 <= max / 4);
};

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(db("open"))?;
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_LEN)
        .map_err(db("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db("open"))?;
    conn.set_prepared_statement_cache_capacity(64);
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db("journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database {
            op: "journal_mode",
            message: format!("got {mode}"),
        });
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
    )
    .map_err(db("pragma"))?;
    Ok(conn)
}

/// What an operation's commit must be, and where it may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Reads only.
    Read,
    /// Reads of many rows (audit pages, listings, a rotation's batch): on the worker only,
    /// so a caller's thread never holds the connection long.
    BulkRead,
    /// Challenges and their single use, attested sessions with the entries recording them:
    /// answered once committed to the WAL, which survives the broker's crash but not a power
    /// cut until the next durable commit's fsync, which covers it (its frames come before
    /// that commit's). A session lost that way was never used for a release (a release's entry
    /// is durable, and so everything before it): its token and cookie are refused, and its
    /// guest attests again.
    Light,
    /// A light write that may run long (purging what expired): on the worker only.
    Background,
    /// Anything else: answered once the WAL holding the commit was fsync'd.
    Durable,
}

impl Commit {
    fn writes(self) -> bool {
        matches!(self, Self::Light | Self::Background | Self::Durable)
    }

    fn may_run_inline(self) -> bool {
        matches!(self, Self::Read | Self::Light)
    }
}

/// An operation waiting for the worker.
trait Task: Send {
    fn commit(&self) -> Commit;
    /// Runs the operation inside the batch's transaction; what to tell its caller once the
    /// transaction's fate is known.
    fn run(self: Box<Self>, c: &Connection) -> Box<dyn Answer>;
    /// Answers the caller with `message` without running the operation.
    fn refuse(self: Box<Self>, message: &str);
}

/// An operation's result, held until its transaction committed.
trait Answer: Send {
    /// `committed` is the commit's error message when the transaction did not commit.
    fn send(self: Box<Self>, committed: Result<(), &str>);
}

struct Op<T, F> {
    commit: Commit,
    f: F,
    tx: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

struct Reply<T> {
    result: Result<T, StoreError>,
    tx: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Task for Op<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn commit(&self) -> Commit {
        self.commit
    }

    fn run(self: Box<Self>, c: &Connection) -> Box<dyn Answer> {
        let Self { f, tx, .. } = *self;
        Box::new(Reply { result: f(c), tx })
    }

    fn refuse(self: Box<Self>, message: &str) {
        let _ = self.tx.send(Err(commit_failed(message)));
    }
}

impl<T: Send> Answer for Reply<T> {
    fn send(self: Box<Self>, committed: Result<(), &str>) {
        let out = committed.map_err(commit_failed).and(self.result);
        // The caller may have gone (its request was dropped); the work is done either way.
        let _ = self.tx.send(out);
    }
}

/// The connection, and the commits since the last checkpoint.
struct Db {
    conn: Connection,
    commits: std::cell::Cell<u32>,
}

impl Db {
    fn new(conn: Connection) -> Self {
        Self {
            conn,
            commits: std::cell::Cell::new(0),
        }
    }

    /// Checkpoints the WAL when enough commits gathered in it. The count starts again only
    /// when every frame reached the database; a checkpoint held back by a reader (another
    /// process) is tried again after the next batch.
    fn checkpoint_if_due(&self) {
        if self.commits.get() < CHECKPOINT_EVERY {
            return;
        }
        let done = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            });
        match done {
            Ok((0, log, moved)) if log == moved => self.commits.set(0),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "store: checkpoint failed"),
        }
    }
}

/// The worker: runs what is waiting, as one batch, until every handle is dropped. Durable
/// answers wait for the fsync of the WAL, which runs with the connection released (so that
/// callers' own operations go on meanwhile; the worker's next batch waits for it).
fn work(shared: &Shared, queue: &mpsc::Receiver<Box<dyn Task>>) {
    while let Ok(first) = queue.recv() {
        let batch = gather(&shared.in_flight, queue, first, GATHER, GATHER_SLICE);
        shared.process(batch);
    }
}

/// The batch that starts with `first`: every operation already waiting, and, when the batch
/// holds a durable write (whose commit costs an fsync) while other operations are counted in
/// flight (`in_flight` counts the batch's own too), those that keep arriving: each within
/// `slice` of the last, all within `window` of the start. `in_flight` also counts reads run on
/// callers' threads and callers answered but not yet resumed, which never come: the first
/// empty slice ends the wait, so they cost one slice at most. A lone caller never waits.
fn gather(
    in_flight: &AtomicUsize,
    queue: &mpsc::Receiver<Box<dyn Task>>,
    first: Box<dyn Task>,
    window: Duration,
    slice: Duration,
) -> Vec<Box<dyn Task>> {
    let until = std::time::Instant::now() + window;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(task) => batch.push(task),
            Err(_) => break,
        }
    }
    if !batch.iter().any(|t| t.commit() == Commit::Durable) {
        return batch;
    }
    while batch.len() < MAX_BATCH && in_flight.load(Ordering::Relaxed) > batch.len() {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match queue.recv_timeout(left.min(slice)) {
            Ok(task) => batch.push(task),
            Err(_) => break,
        }
    }
    batch
}

/// Runs `task` on the caller's thread, on the connection `db` the caller holds: a read as it
/// is; a light write in its own transaction, only when it is `alone` (no other operation in
/// flight that it could share a commit with on the worker), the write lock is free right now
/// (no waiting for another process on the async runtime), and the commit count is inside
/// `1..CHECKPOINT_EVERY`: at the limit the worker checkpoints, and the first write after a
/// complete checkpoint restarts the WAL, which syncs its header, so the worker makes it. The
/// task back when it must go to the worker.
fn try_inline(db: &Db, task: Box<dyn Task>, alone: bool) -> Option<Box<dyn Task>> {
    let c = &db.conn;
    match task.commit() {
        Commit::Read => {
            let after_sync = run_batch(db, vec![task], false);
            debug_assert!(after_sync.is_empty());
            None
        }
        Commit::Light if alone && (1..CHECKPOINT_EVERY).contains(&db.commits.get()) => {
            roll_back_leftover(c);
            if c.busy_timeout(Duration::ZERO).is_err() {
                return Some(task);
            }
            let began = c.exec("BEGIN IMMEDIATE", []);
            let _ = c.busy_timeout(BUSY_TIMEOUT);
            if began.is_err() {
                return Some(task);
            }
            let after_sync = run_batch(db, vec![task], true);
            debug_assert!(after_sync.is_empty());
            None
        }
        Commit::Light | Commit::BulkRead | Commit::Background | Commit::Durable => Some(task),
    }
}

/// Runs a task, or `None` when it panicked (its caller then gets [`StoreError::Worker`]: the
/// dropped sender says so).
fn run_caught(task: Box<dyn Task>, c: &Connection) -> Option<Box<dyn Answer>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run(c))).ok()
}

/// Whether SQLite said the database is locked by another connection.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Fails every held answer with `message` (their transaction did not commit).
fn fail_all(pending: &mut Vec<(Commit, Box<dyn Answer>)>, message: &str) {
    for (_, answer) in pending.drain(..) {
        answer.send(Err(message));
    }
}

/// Runs one batch: reads alone without a transaction; otherwise everything in one
/// `BEGIN IMMEDIATE` transaction (already open when `open`). Callers of reads and light writes
/// are answered once it committed; the answers of durable writes are returned, to be sent once
/// the WAL was fsync'd (empty when nothing durable committed).
fn run_batch(db: &Db, batch: Vec<Box<dyn Task>>, mut open: bool) -> Vec<Box<dyn Answer>> {
    let writes = batch.iter().any(|t| t.commit().writes());
    let c = &db.conn;
    if !open {
        roll_back_leftover(c);
    }
    if !writes && !open {
        for task in batch {
            if let Some(answer) = run_caught(task, c) {
                answer.send(Ok(()));
            }
        }
        return Vec::new();
    }
    let mut pending: Vec<(Commit, Box<dyn Answer>)> = Vec::with_capacity(batch.len());
    // Tasks that ran outside a transaction: each statement committed by itself, so no later
    // rollback in this batch concerns them.
    let mut ran_alone: Vec<(Commit, Box<dyn Answer>)> = Vec::new();
    // Whether another process held the write lock past the busy timeout in this batch: then
    // the rest of the batch does not wait for it again (each wait would be the whole timeout,
    // and a batch holds up to MAX_BATCH operations), and the timeout is restored after it.
    let mut busy = false;
    for task in batch {
        let commit = task.commit();
        if !open {
            if let Err(e) = c.exec("BEGIN IMMEDIATE", []) {
                tracing::warn!(error = %e, "store: could not begin a batch");
                if is_busy(&e) && c.is_autocommit() {
                    if !busy {
                        busy = true;
                        let _ = c.busy_timeout(Duration::ZERO);
                    }
                    // The task runs on its own, each statement committing by itself, and
                    // reports its own failure; one that failed midway leaves nothing open.
                    match run_caught(task, c) {
                        Some(answer) => ran_alone.push((commit, answer)),
                        None => {
                            if !c.is_autocommit() {
                                roll_back(c);
                            }
                        }
                    }
                } else {
                    task.refuse(&e.to_string());
                }
                continue;
            }
            open = true;
        }
        match run_caught(task, c) {
            Some(answer) => pending.push((commit, answer)),
            None => {
                roll_back(c);
                fail_all(&mut pending, "an operation in the same transaction failed");
                open = false;
                continue;
            }
        }
        if c.is_autocommit() {
            // SQLite rolled the whole transaction back (I/O error, disk full...).
            fail_all(&mut pending, "the transaction was rolled back");
            open = false;
        }
    }
    if open {
        match c.exec("COMMIT", []) {
            Ok(_) => db.commits.set(db.commits.get().saturating_add(1)),
            Err(e) => {
                roll_back(c);
                fail_all(&mut pending, &e.to_string());
            }
        }
    }
    if busy {
        let _ = c.busy_timeout(BUSY_TIMEOUT);
    }
    // What is left in `pending` committed.
    let mut after_sync = Vec::new();
    for (commit, answer) in pending.into_iter().chain(ran_alone) {
        if commit == Commit::Durable {
            after_sync.push(answer);
        } else {
            answer.send(Ok(()));
        }
    }
    after_sync
}

/// Whether what a release relied on still holds (see [`ReleaseBasis`]).
fn release_basis_holds(c: &Connection, basis: &ReleaseBasis) -> Result<bool, StoreError> {
    const OP: &str = "append_release";
    let resource = basis.resource.to_string();
    // One statement, as on PostgreSQL: the version's policy and the newest version.
    let (digest, newest): (Option<String>, Option<i64>) = c
        .row(
            "SELECT (SELECT policy_digest FROM secrets WHERE resource = ?1 AND version = ?2),
                    (SELECT MAX(version) FROM secrets WHERE resource = ?1)",
            params![resource, to_i64(basis.version, "secrets.version")?],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db(OP))?;
    Ok(digest.as_deref() == Some(basis.policy_digest.as_str())
        && newest == Some(to_i64(basis.newest, "secrets.version")?))
}

/// Appends `event` to the audit chain inside the batch's transaction (which holds the write
/// lock, so the head read here is still the head when the entry is inserted).
fn append_entry(c: &Connection, event: AuditEvent) -> Result<AuditEntry, StoreError> {
    let last: Option<(i64, String)> = c
        .row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db("append_audit"))?;
    let last = match last {
        Some((s, h)) => Some((to_u64(s, "audit.seq")?, h)),
        None => None,
    };
    let e = audit::next_entry(last.as_ref().map(|(s, h)| (*s, h.as_str())), event)?;
    c.exec(
        "INSERT INTO audit(seq, time_ms, actor, action, resource, evidence_digest,
            policy_digest, verdict, reason, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            to_i64(e.seq, "audit.seq")?,
            e.event.time_ms,
            e.event.actor,
            e.event.action.as_str(),
            e.event.resource,
            e.event.evidence_digest,
            e.event.policy_digest,
            e.event.verdict.as_str(),
            e.event.reason,
            e.prev_hash,
            e.hash
        ],
    )
    .map_err(db("append_audit"))?;
    Ok(e)
}

/// The columns [`row_to_secret`] reads, in its order (a macro so `concat!` can build constant
/// statements from it).
macro_rules! secret_columns {
    () => {
        "resource, version, policy_digest, kek_id, wrapped_key, nonce, ciphertext, created_ms, \
         origin"
    };
}
/// A pinned version's row, or (`None`) the newest one's.
fn select_version(
    c: &Connection,
    resource: &str,
    version: Option<i64>,
) -> Result<Option<RawSecret>, StoreError> {
    match version {
        Some(v) => c.row(
            concat!(
                "SELECT ",
                secret_columns!(),
                " FROM secrets WHERE resource = ?1 AND version = ?2"
            ),
            params![resource, v],
            row_to_secret,
        ),
        None => c.row(
            concat!(
                "SELECT ",
                secret_columns!(),
                " FROM secrets WHERE resource = ?1 ORDER BY version DESC LIMIT 1"
            ),
            params![resource],
            row_to_secret,
        ),
    }
    .optional()
    .map_err(db("get_version"))
}

/// The newest version of `resource` other than `version`, when it has this origin and
/// policy digest.
fn newest_other_with(
    c: &Connection,
    resource: &str,
    version: i64,
    origin: &str,
    policy_digest: &str,
) -> Result<Option<u64>, StoreError> {
    let newest: Option<(i64, Option<String>, String)> = c
        .row(
            "SELECT version, origin, policy_digest FROM secrets
             WHERE resource = ?1 AND version <> ?2 ORDER BY version DESC LIMIT 1",
            params![resource, version],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db("insert_version"))?;
    match newest {
        Some((held, o, pd)) if super::holds_import(o.as_deref(), &pd, origin, policy_digest) => {
            Ok(Some(to_u64(held, "secrets.version")?))
        }
        _ => Ok(None),
    }
}

/// A policy's text by digest.
fn select_policy(c: &Connection, digest: &str) -> Result<Option<String>, StoreError> {
    c.row(
        "SELECT text FROM policies WHERE digest = ?1",
        params![digest],
        |r| r.get(0),
    )
    .optional()
    .map_err(db("get_policy"))
}

/// Runs `f` inside a savepoint of the batch's transaction: its writes stand or fall together,
/// and the rest of the batch is not affected either way.
fn all_or_nothing<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    c.exec("SAVEPOINT op", []).map_err(db("savepoint"))?;
    let done = f(c).and_then(|v| c.exec("RELEASE op", []).map(|_| v).map_err(db("savepoint")));
    if done.is_err() {
        // Also when RELEASE failed: the caller hears of a failure, so nothing of it may stay.
        let _ = c.exec("ROLLBACK TO op", []);
        let _ = c.exec("RELEASE op", []);
    }
    done
}

/// Records the single use of a challenge; `false` when it was already recorded. One statement:
/// SQLite's locking makes it atomic against every other writer of the file.
fn mark_used(c: &Connection, ch: &Challenge) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "INSERT INTO challenges(session_key, nonce, tee, hash, issued_ms, expires_ms, used)
             VALUES (?1, '', ?2, ?3, ?4, ?5, 1) ON CONFLICT(session_key) DO NOTHING",
            params![
                row_key(&ch.session_id),
                ch.tee,
                ch.hash.name(),
                ch.issued_ms,
                ch.retain_until_ms()
            ],
        )
        .map_err(db("use_challenge"))?;
    Ok(n == 1)
}

/// Records a session's attestation; `false` (nothing written) when the session exists: a
/// session is written once and never replaced.
fn insert_session(c: &Connection, s: &AttestedSession) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "INSERT INTO sessions(session_key, tee, tee_pubkey, token, claims, evidence_digest,
                    attested_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(session_key) DO NOTHING",
            params![
                row_key(&s.session_id),
                s.tee,
                s.tee_pubkey,
                s.token_digest,
                s.claims,
                s.evidence_digest,
                s.attested_ms,
                s.expires_ms
            ],
        )
        .map_err(db("put_session"))?;
    Ok(n == 1)
}

fn row_to_secret(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawSecret> {
    Ok(RawSecret {
        resource: r.get(0)?,
        version: r.get(1)?,
        policy_digest: r.get(2)?,
        kek_id: r.get(3)?,
        wrapped_key: r.get(4)?,
        nonce: r.get(5)?,
        ciphertext: r.get(6)?,
        created_ms: r.get(7)?,
        origin: r.get(8)?,
    })
}

struct RawSecret {
    resource: String,
    version: i64,
    policy_digest: String,
    kek_id: String,
    wrapped_key: Vec<u8>,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    created_ms: i64,
    origin: Option<String>,
}

impl RawSecret {
    fn parse(self) -> Result<StoredSecret, StoreError> {
        Ok(NewSecretVersion {
            resource: ResourcePath::parse(&self.resource).map_err(|_| StoreError::Corrupt {
                field: "secrets.resource",
            })?,
            version: to_u64(self.version, "secrets.version")?,
            policy_digest: PolicyDigest::parse(&self.policy_digest).map_err(|_| {
                StoreError::Corrupt {
                    field: "secrets.policy_digest",
                }
            })?,
            sealed: SealedSecret {
                kek_id: self.kek_id,
                wrapped_key: self.wrapped_key,
                nonce: self
                    .nonce
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt {
                        field: "secrets.nonce",
                    })?,
                ciphertext: self.ciphertext,
            },
            created_ms: self.created_ms,
            origin: self.origin,
        })
    }
}

struct RawAudit {
    seq: i64,
    time_ms: i64,
    actor: String,
    action: String,
    resource: Option<String>,
    evidence_digest: Option<String>,
    policy_digest: Option<String>,
    verdict: String,
    reason: String,
    prev_hash: String,
    hash: String,
}

impl RawAudit {
    /// A row's columns. SQLite keeps any type in any column, so a row edited in the database
    /// can hold text where a number belongs: that is the entry's damage
    /// ([`AuditChainError::Malformed`], naming it and the column), not the database's failure.
    /// (`seq` is the rowid: always an integer.) So is text longer than the broker writes in
    /// that column (`audit_column_max`), refused before it is copied.
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Self, AuditChainError>> {
        let seq: i64 = r.get(0)?;
        let malformed = |field| AuditChainError::Malformed {
            seq: v_u64(seq),
            field,
        };
        macro_rules! column {
            ($i:expr, $field:expr) => {{
                match r.get_ref($i)? {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b)
                        if b.len() > super::audit_column_max($field) =>
                    {
                        return Ok(Err(malformed($field)));
                    }
                    _ => {}
                }
                match r.get($i) {
                    Ok(v) => v,
                    Err(
                        rusqlite::Error::InvalidColumnType(..)
                        | rusqlite::Error::FromSqlConversionFailure(..)
                        | rusqlite::Error::IntegralValueOutOfRange(..),
                    ) => return Ok(Err(malformed($field))),
                    Err(e) => return Err(e),
                }
            }};
        }
        Ok(Ok(Self {
            seq,
            time_ms: column!(1, "time_ms"),
            actor: column!(2, "actor"),
            action: column!(3, "action"),
            resource: column!(4, "resource"),
            evidence_digest: column!(5, "evidence_digest"),
            policy_digest: column!(6, "policy_digest"),
            verdict: column!(7, "verdict"),
            reason: column!(8, "reason"),
            prev_hash: column!(9, "prev_hash"),
            hash: column!(10, "hash"),
        }))
    }

    fn parse(self) -> Result<AuditEntry, StoreError> {
        let seq = to_u64(self.seq, "audit.seq")?;
        let altered = |field| AuditChainError::Malformed { seq, field };
        Ok(AuditEntry {
            seq,
            event: AuditEvent {
                time_ms: self.time_ms,
                actor: self.actor,
                action: AuditAction::from_name(&self.action).ok_or(altered("action"))?,
                resource: self.resource,
                evidence_digest: self.evidence_digest,
                policy_digest: self.policy_digest,
                verdict: AuditVerdict::from_name(&self.verdict).ok_or(altered("verdict"))?,
                reason: self.reason,
            },
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// Every statement of the store is prepared once per connection and kept (rusqlite's statement
/// cache): parsing SQL was a tenth of the broker's CPU per flow.
trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize>;
    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        p: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        p: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(p, f)
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn put_policy(&self, text: &str, now: i64) -> Result<PolicyDigest, StoreError> {
        let digest = PolicyDigest::of(text.as_bytes());
        let (d, text) = (digest.to_string(), text.to_owned());
        self.call(Commit::Durable, move |c| {
            c.exec(
                "INSERT INTO policies(digest, text, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(digest) DO UPDATE SET text = excluded.text
                 WHERE policies.text <> excluded.text",
                params![d, text, now],
            )
            .map_err(db("put_policy"))?;
            Ok(())
        })
        .await?;
        Ok(digest)
    }

    async fn get_policy(&self, digest: &PolicyDigest) -> Result<Option<String>, StoreError> {
        let d = digest.to_string();
        self.call(Commit::Read, move |c| select_policy(c, &d)).await
    }

    async fn set_repo_policy(
        &self,
        repo: &str,
        policy: Option<&RepoPolicy>,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        crate::resource::check_repo(repo)?;
        let (repo, policy) = (repo.to_owned(), policy.cloned());
        self.call(Commit::Durable, move |c| {
            all_or_nothing(c, |c| {
                match policy {
                    Some(p) => c.exec(
                        "INSERT INTO repo_policies(repo, digest, updated_ms, kek_id, mac)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT(repo) DO UPDATE SET digest = excluded.digest,
                         updated_ms = excluded.updated_ms, kek_id = excluded.kek_id,
                         mac = excluded.mac",
                        params![repo, p.digest.as_str(), now_ms, p.kek_id, p.mac],
                    ),
                    None => c.exec("DELETE FROM repo_policies WHERE repo = ?1", params![repo]),
                }
                .map_err(db("set_repo_policy"))?;
                append_entry(c, event).map(drop)
            })
        })
        .await
    }

    async fn repo_policy(&self, repo: &str) -> Result<Option<RepoPolicy>, StoreError> {
        let repo = repo.to_owned();
        let row: Option<(String, String, String)> = self
            .call(Commit::Read, move |c| {
                c.row(
                    "SELECT digest, kek_id, mac FROM repo_policies WHERE repo = ?1",
                    params![repo],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db("repo_policy"))
            })
            .await?;
        row.map(repo_policy_of).transpose()
    }

    async fn repo_policies_not_under(
        &self,
        kek_id: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Option<RepoPolicy>)>, StoreError> {
        let (k, after) = (kek_id.to_owned(), after.to_owned());
        let rows: Vec<(String, (String, String, String))> = self
            .call(Commit::BulkRead, move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT repo, digest, kek_id, mac FROM repo_policies
                         WHERE kek_id <> ?1 AND repo > ?2 ORDER BY repo LIMIT ?3",
                    )
                    .map_err(db("repo_policies_not_under"))?;
                let it = stmt
                    .query_map(params![k, after, limit], |r| {
                        Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
                    })
                    .map_err(db("repo_policies_not_under"))?;
                it.collect::<Result<Vec<_>, _>>()
                    .map_err(db("repo_policies_not_under"))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(repo, p)| (repo, repo_policy_of(p).ok()))
            .collect())
    }

    async fn replace_repo_policy(
        &self,
        repo: &str,
        old: &RepoPolicy,
        new: &RepoPolicy,
    ) -> Result<bool, StoreError> {
        let (repo, old, new) = (repo.to_owned(), old.clone(), new.clone());
        self.call(Commit::Durable, move |c| {
            let n = c
                .exec(
                    "UPDATE repo_policies SET digest = ?1, kek_id = ?2, mac = ?3
                     WHERE repo = ?4 AND digest = ?5 AND kek_id = ?6 AND mac = ?7",
                    params![
                        new.digest.as_str(),
                        new.kek_id,
                        new.mac,
                        repo,
                        old.digest.as_str(),
                        old.kek_id,
                        old.mac
                    ],
                )
                .map_err(db("replace_repo_policy"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn next_version(&self, resource: &ResourcePath) -> Result<u64, StoreError> {
        let r = resource.to_string();
        let v: i64 = self
            .call(Commit::Durable, move |c| {
                c.row(
                    "INSERT INTO version_counters(resource, last_version) VALUES (?1, 1)
                     ON CONFLICT(resource) DO UPDATE SET last_version = last_version + 1
                     RETURNING last_version",
                    params![r],
                    |row| row.get(0),
                )
                .map_err(db("next_version"))
            })
            .await?;
        to_u64(v, "version_counters.last_version")
    }

    async fn insert_version(
        &self,
        v: &NewSecretVersion,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        let resource = v.resource.to_string();
        let repo = v.resource.repo().to_owned();
        let version = to_i64(v.version, "secrets.version")?;
        let pd = v.policy_digest.to_string();
        let s = v.sealed.clone();
        let created = v.created_ms;
        let origin = v.origin.clone();
        let res = resource.clone();
        self.call(Commit::Durable, move |c| {
            all_or_nothing(c, |c| {
                // In the write transaction, so no other insert comes between this and ours.
                if let Some(origin) = &origin
                    && let Some(held) = newest_other_with(c, &res, version, origin, &pd)?
                {
                    return Err(StoreError::SameOrigin {
                        resource: res,
                        version: held,
                    });
                }
                let n = c
                    .exec(
                        "INSERT INTO secrets(resource, repo, version, policy_digest, kek_id,
                        wrapped_key, nonce, ciphertext, created_ms, origin)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT(resource, version) DO NOTHING",
                        params![
                            res,
                            repo,
                            version,
                            pd,
                            s.kek_id,
                            s.wrapped_key,
                            &s.nonce[..],
                            s.ciphertext,
                            created,
                            origin
                        ],
                    )
                    .map_err(db("insert_version"))?;
                if n == 0 {
                    return Err(StoreError::VersionExists {
                        resource: res,
                        version: v_u64(version),
                    });
                }
                append_entry(c, event).map(drop)
            })
        })
        .await
    }

    async fn get_version(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
    ) -> Result<Option<StoredSecret>, StoreError> {
        let r = resource.to_string();
        let version = version.map(|v| to_i64(v, "secrets.version")).transpose()?;
        let raw = self
            .call(Commit::Read, move |c| select_version(c, &r, version))
            .await?;
        raw.map(RawSecret::parse).transpose()
    }

    async fn get_version_and_policy(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
    ) -> Result<Option<(StoredSecret, Option<String>)>, StoreError> {
        let r = resource.to_string();
        let version = version.map(|v| to_i64(v, "secrets.version")).transpose()?;
        let found = self
            .call(Commit::Read, move |c| {
                let Some(raw) = select_version(c, &r, version)? else {
                    return Ok(None);
                };
                let text = select_policy(c, &raw.policy_digest)?;
                Ok(Some((raw, text)))
            })
            .await?;
        found
            .map(|(raw, text)| Ok((raw.parse()?, text)))
            .transpose()
    }

    async fn delete_versions(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
        mut event: AuditEvent,
    ) -> Result<Vec<u64>, StoreError> {
        let r = resource.to_string();
        let version = version.map(|v| to_i64(v, "secrets.version")).transpose()?;
        self.call(Commit::Durable, move |c| {
            all_or_nothing(c, |c| {
                let mut out = Vec::new();
                let mut stmt = match version {
                    Some(_) => c.prepare_cached(
                        "DELETE FROM secrets WHERE resource = ?1 AND version = ?2 RETURNING version",
                    ),
                    None => c.prepare_cached("DELETE FROM secrets WHERE resource = ?1 AND ?2 IS NULL RETURNING version"),
                }
                .map_err(db("delete_versions"))?;
                let rows = stmt
                    .query_map(params![r, version], |row| row.get::<_, i64>(0))
                    .map_err(db("delete_versions"))?;
                for v in rows {
                    out.push(to_u64(v.map_err(db("delete_versions"))?, "secrets.version")?);
                }
                drop(stmt);
                out.sort_unstable();
                if !out.is_empty() {
                    event.reason = super::deletion_reason(&out);
                    append_entry(c, event)?;
                }
                Ok(out)
            })
        })
        .await
    }

    async fn list_versions(
        &self,
        repos: Option<&[String]>,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<SecretVersionInfo>, StoreError> {
        // The repositories as a JSON array, read by json_each (one parameter for any number).
        let repos =
            repos
                .map(serde_json::to_string)
                .transpose()
                .map_err(|_| StoreError::Corrupt {
                    field: "repositories",
                })?;
        let after_resource = after.map(|(r, _)| r.to_owned());
        let after_version = after.map_or(0, |(_, v)| i64::try_from(v).unwrap_or(i64::MAX));
        // A page after a row is a search in the primary key's index from there (a statement of
        // its own: `?2 IS NULL OR ...` would make SQLite scan from the first row). Both take
        // the same four parameters (SQLite counts up to the highest number, `?4`).
        let sql = if after.is_some() {
            "SELECT resource, version, policy_digest, created_ms, kek_id FROM secrets
             WHERE (resource, version) > (?2, ?3)
               AND (?1 IS NULL OR repo IN (SELECT value FROM json_each(?1)))
             ORDER BY resource, version LIMIT ?4"
        } else {
            "SELECT resource, version, policy_digest, created_ms, kek_id FROM secrets
             WHERE ?1 IS NULL OR repo IN (SELECT value FROM json_each(?1))
             ORDER BY resource, version LIMIT ?4"
        };
        let rows: Vec<(String, i64, String, i64, String)> = self
            .call(Commit::BulkRead, move |c| {
                let mut stmt = c.prepare_cached(sql).map_err(db("list_versions"))?;
                let it = stmt
                    .query_map(
                        params![repos, after_resource, after_version, i64::from(limit)],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                    )
                    .map_err(db("list_versions"))?;
                it.collect::<Result<Vec<_>, _>>()
                    .map_err(db("list_versions"))
            })
            .await?;
        rows.into_iter()
            .map(|(resource, version, pd, created_ms, kek_id)| {
                Ok(SecretVersionInfo {
                    resource,
                    version: to_u64(version, "secrets.version")?,
                    policy_digest: PolicyDigest::parse(&pd).map_err(|_| StoreError::Corrupt {
                        field: "secrets.policy_digest",
                    })?,
                    created_ms,
                    kek_id,
                })
            })
            .collect()
    }

    async fn versions_not_wrapped_by(
        &self,
        kek_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredSecret>, StoreError> {
        let k = kek_id.to_owned();
        let raws: Vec<RawSecret> = self
            .call(Commit::BulkRead, move |c| {
                let mut stmt = c
                    .prepare_cached(concat!(
                        "SELECT ",
                        secret_columns!(),
                        " FROM secrets WHERE kek_id <> ?1 ORDER BY resource, version LIMIT ?2"
                    ))
                    .map_err(db("versions_not_wrapped_by"))?;
                let it = stmt
                    .query_map(params![k, limit], row_to_secret)
                    .map_err(db("versions_not_wrapped_by"))?;
                it.collect::<Result<Vec<_>, _>>()
                    .map_err(db("versions_not_wrapped_by"))
            })
            .await?;
        raws.into_iter().map(RawSecret::parse).collect()
    }

    async fn replace_wrapping(
        &self,
        resource: &ResourcePath,
        version: u64,
        old_kek_id: &str,
        new: &SealedSecret,
    ) -> Result<bool, StoreError> {
        let r = resource.to_string();
        let v = to_i64(version, "secrets.version")?;
        let old = old_kek_id.to_owned();
        let new = new.clone();
        self.call(Commit::Durable, move |c| {
            // The data ciphertext and nonce must be the ones the new wrapping was made for.
            let n = c
                .exec(
                    "UPDATE secrets SET kek_id = ?1, wrapped_key = ?2
                     WHERE resource = ?3 AND version = ?4 AND kek_id = ?5
                       AND nonce = ?6 AND ciphertext = ?7",
                    params![
                        new.kek_id,
                        new.wrapped_key,
                        r,
                        v,
                        old,
                        &new.nonce[..],
                        new.ciphertext
                    ],
                )
                .map_err(db("replace_wrapping"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn key_check(&self) -> Result<Option<KeyCheck>, StoreError> {
        self.call(Commit::Read, |c| {
            c.row("SELECT kek_id, mac FROM key_check", [], key_check_of)
                .optional()
                .map_err(db("key_check"))
        })
        .await
    }

    async fn set_key_check_once(&self, check: &KeyCheck) -> Result<KeyCheck, StoreError> {
        let check = check.clone();
        self.call(Commit::Durable, move |c| {
            c.exec(
                "INSERT INTO key_check(one, kek_id, mac) VALUES (1, ?1, ?2)
                 ON CONFLICT(one) DO NOTHING",
                params![check.kek_id, check.mac],
            )
            .map_err(db("set_key_check_once"))?;
            c.row("SELECT kek_id, mac FROM key_check", [], key_check_of)
                .map_err(db("set_key_check_once"))
        })
        .await
    }

    async fn replace_key_check(&self, old: &KeyCheck, new: &KeyCheck) -> Result<bool, StoreError> {
        let (old, new) = (old.clone(), new.clone());
        self.call(Commit::Durable, move |c| {
            let n = c
                .exec(
                    "UPDATE key_check SET kek_id = ?1, mac = ?2
                     WHERE one = 1 AND kek_id = ?3 AND mac = ?4",
                    params![new.kek_id, new.mac, old.kek_id, old.mac],
                )
                .map_err(db("replace_key_check"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn sealed_kek_ids(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        self.call(Commit::Read, move |c| {
            // The secrets' ids by skipping along their index (one lookup per distinct id, at
            // most `limit`).
            let mut stmt = c
                .prepare_cached(
                    "WITH RECURSIVE k(id) AS (
                         SELECT (SELECT min(kek_id) FROM secrets)
                         UNION ALL
                         SELECT (SELECT min(kek_id) FROM secrets WHERE kek_id > k.id)
                             FROM k WHERE k.id IS NOT NULL
                         LIMIT ?1)
                     SELECT id FROM k WHERE id IS NOT NULL ORDER BY 1 LIMIT ?1",
                )
                .map_err(db("sealed_kek_ids"))?;
            let it = stmt
                .query_map(params![limit], |r| r.get(0))
                .map_err(db("sealed_kek_ids"))?;
            it.collect::<Result<Vec<String>, _>>()
                .map_err(db("sealed_kek_ids"))
        })
        .await
    }

    fn identity(&self) -> &[u8] {
        &self.identity
    }

    async fn use_challenge(&self, ch: &Challenge) -> Result<bool, StoreError> {
        let ch = ch.clone();
        self.call(Commit::Light, move |c| mark_used(c, &ch)).await
    }

    async fn put_session_audited(
        &self,
        ch: &Challenge,
        s: &AttestedSession,
        event: AuditEvent,
    ) -> Result<Option<AuditEntry>, StoreError> {
        let (ch, s) = (ch.clone(), s.clone());
        // No fsync of its own (see `Commit::Light`): a release from this session fsyncs its own
        // entry, and with it this one, which the WAL holds before it.
        self.call(Commit::Light, move |c| {
            all_or_nothing(c, |c| {
                // The challenge's use stays recorded when its session already exists (a use
                // whose record was purged early, by a clock running ahead).
                if !mark_used(c, &ch)? || !insert_session(c, &s)? {
                    return Ok(None);
                }
                append_entry(c, event).map(Some)
            })
        })
        .await
    }

    async fn get_session(
        &self,
        session: &SessionId,
        now_ms: i64,
    ) -> Result<Option<AttestedSession>, StoreError> {
        let session = session.clone();
        self.call(Commit::Read, move |c| {
            c.row(
                "SELECT tee, tee_pubkey, token, claims, evidence_digest, attested_ms, expires_ms
                 FROM sessions WHERE session_key = ?1 AND expires_ms > ?2",
                params![row_key(&session), now_ms],
                |r| {
                    Ok(AttestedSession {
                        session_id: session.clone(),
                        tee: r.get(0)?,
                        tee_pubkey: r.get(1)?,
                        token_digest: r.get(2)?,
                        claims: r.get(3)?,
                        evidence_digest: r.get(4)?,
                        attested_ms: r.get(5)?,
                        expires_ms: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(db("get_session"))
        })
        .await
    }

    async fn purge_expired(&self, now_ms: i64, limit: u32) -> Result<u64, StoreError> {
        self.call(Commit::Background, move |c| {
            let mut deleted = 0usize;
            for sql in [
                "DELETE FROM challenges WHERE rowid IN (SELECT rowid FROM challenges \
                 WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2)",
                "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions \
                 WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2)",
            ] {
                let n = c
                    .exec(sql, params![now_ms, limit])
                    .map_err(db("purge_expired"))?;
                deleted = deleted.saturating_add(n);
            }
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn append_audit(&self, event: AuditEvent) -> Result<AuditEntry, StoreError> {
        self.call(Commit::Durable, move |c| append_entry(c, event))
            .await
    }

    async fn append_release(
        &self,
        event: AuditEvent,
        basis: &ReleaseBasis,
    ) -> Result<Option<AuditEntry>, StoreError> {
        // A write batch holds SQLite's write lock (BEGIN IMMEDIATE): no delete or put of any
        // process commits between the check and the entry.
        let basis = basis.clone();
        self.call(Commit::Durable, move |c| {
            // In a savepoint: should the batch run outside a transaction (another process
            // held the write lock past the busy timeout), the check and the entry still go
            // together or not at all.
            all_or_nothing(c, |c| {
                if release_basis_holds(c, &basis)? {
                    append_entry(c, event).map(Some)
                } else {
                    Ok(None)
                }
            })
        })
        .await
    }

    async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        // Past the largest sequence number a store can hold: an empty page, not corruption.
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        // Answered after the WAL's fsync, as a durable write is: entries committed without
        // one (attestations) are exported only once a power cut can no longer take them back,
        // so an exported chain head is never reused by another entry.
        let raws: Vec<Result<RawAudit, AuditChainError>> = self
            .call(Commit::Durable, move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT seq, time_ms, actor, action, resource, evidence_digest, policy_digest,
                            verdict, reason, prev_hash, hash
                         FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )
                    .map_err(db("audit_entries"))?;
                let it = stmt
                    .query_map(params![after, limit], RawAudit::read)
                    .map_err(db("audit_entries"))?;
                it.collect::<Result<Vec<_>, _>>().map_err(db("audit_entries"))
            })
            .await?;
        raws.into_iter()
            .map(|raw| raw.map_err(StoreError::from).and_then(RawAudit::parse))
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A read (on the caller's thread when the connection is free): no write lock, no
        // fsync, and no row, so a damaged one cannot fail it.
        self.call(Commit::Read, |c| {
            c.row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
                .map_err(db("ping"))
        })
        .await
    }
}

fn v_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
mod tests {
    use super::*;

    type Rx = tokio::sync::oneshot::Receiver<Result<i64, StoreError>>;

    fn conns(dir: &Path) -> Db {
        let path = dir.join("t.db");
        let conn = connect(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .unwrap();
        Db::new(conn)
    }

    fn task(
        commit: Commit,
        f: impl FnOnce(&Connection) -> Result<i64, StoreError> + Send + 'static,
    ) -> (Box<dyn Task>, Rx) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Box::new(Op { commit, f, tx }), rx)
    }

    fn insert(v: i64) -> impl FnOnce(&Connection) -> Result<i64, StoreError> + Send + 'static {
        move |c| {
            c.exec("INSERT INTO t(v) VALUES (?1)", params![v])
                .map_err(db("test"))?;
            Ok(v)
        }
    }

    fn rows(c: &Db) -> Vec<i64> {
        let mut stmt = c.conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn commits_of(batch: &[Box<dyn Task>]) -> Vec<Commit> {
        batch.iter().map(|t| t.commit()).collect()
    }

    /// A durable write waits for the operations in flight to join its batch (here one sent
    /// from another thread a little later), up to the window; a batch without a durable write,
    /// or a caller alone, does not wait; a batch holding one waits only while others are in
    /// flight, whatever the window.
    /// Long enough that a wait running it out fails the test's time bound.
    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn a_durable_batch_gathers_the_operations_in_flight_and_only_then() {
        let (jobs, queue) = mpsc::channel::<Box<dyn Task>>();
        let in_flight = AtomicUsize::new(2);
        let (late, _late_rx) = task(Commit::Light, insert(2));
        let sender = jobs.clone();
        let joined = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            sender.send(late).unwrap();
        });
        let (durable, _rx) = task(Commit::Durable, insert(1));
        let batch = gather(&in_flight, &queue, durable, LONG, LONG);
        joined.join().unwrap();
        assert_eq!(commits_of(&batch), [Commit::Durable, Commit::Light]);

        // Without a durable write, no wait though others are in flight; nor for a durable
        // write alone (only itself in flight). A wait would run out the 60 s window.
        let start = std::time::Instant::now();
        let (light, _rx) = task(Commit::Light, insert(3));
        let batch = gather(&in_flight, &queue, light, LONG, LONG);
        assert_eq!(commits_of(&batch), [Commit::Light]);
        let alone = AtomicUsize::new(1);
        let (durable, _rx) = task(Commit::Durable, insert(4));
        let batch = gather(&alone, &queue, durable, LONG, LONG);
        assert_eq!(batch.len(), 1);
        assert!(start.elapsed() < Duration::from_secs(30));

        // Others in flight that never come (inline reads): the window bounds the wait.
        let (durable, _rx) = task(Commit::Durable, insert(5));
        let short = Duration::from_millis(5);
        let batch = gather(&in_flight, &queue, durable, short, LONG);
        assert_eq!(batch.len(), 1);
        // ... and so does the first slice in which none comes, whatever the window.
        let start = std::time::Instant::now();
        let (durable, _rx) = task(Commit::Durable, insert(7));
        let batch = gather(&in_flight, &queue, durable, LONG, short);
        assert_eq!(batch.len(), 1);
        assert!(start.elapsed() < Duration::from_secs(30));
        // What was already waiting joins at once.
        let (waiting, _rx) = task(Commit::Read, count());
        jobs.send(waiting).unwrap();
        let (durable, _rx) = task(Commit::Durable, insert(6));
        let batch = gather(&alone, &queue, durable, Duration::ZERO, Duration::ZERO);
        assert_eq!(commits_of(&batch), [Commit::Durable, Commit::Read]);
    }

    /// Runs a batch as the worker does, the WAL's fsync included.
    fn run(c: &Db, tasks: Vec<(Box<dyn Task>, Rx)>) -> Vec<Result<i64, StoreError>> {
        let (tasks, mut rxs): (Vec<_>, Vec<_>) = tasks.into_iter().unzip();
        let after_sync = run_batch(c, tasks, false);
        for answer in after_sync {
            answer.send(Ok(()));
        }
        rxs.iter_mut()
            .map(|rx| match rx.try_recv() {
                Ok(r) => r,
                Err(_) => Err(StoreError::Worker),
            })
            .collect()
    }

    #[test]
    fn a_failing_statement_fails_only_its_own_operation() {
        let dir = tempfile::tempdir().unwrap();
        let c = conns(dir.path());
        let got = run(
            &c,
            vec![
                task(Commit::Light, insert(1)),
                // A primary key violation: SQLite undoes the statement, not the transaction.
                task(Commit::Light, insert(1)),
                task(Commit::Durable, insert(2)),
            ],
        );
        assert!(matches!(got[0], Ok(1)));
        assert!(matches!(
            got[1],
            Err(StoreError::Database { op: "test", .. })
        ));
        assert!(matches!(got[2], Ok(2)));
        assert_eq!(rows(&c), [1, 2]);
    }

    /// The connection of `conns` with the WAL file the worker would fsync (or `wal`).
    fn shared(dir: &Path, wal: Option<std::fs::File>) -> Shared {
        let c = conns(dir);
        let wal = wal.unwrap_or_else(|| std::fs::File::open(wal_path(&dir.join("t.db"))).unwrap());
        Shared::new(c.conn, wal)
    }

    fn count() -> impl FnOnce(&Connection) -> Result<i64, StoreError> + Send + 'static {
        |c| {
            c.row("SELECT count(*) FROM t", [], |r| r.get(0))
                .map_err(db("test"))
        }
    }

    #[test]
    fn durable_answers_wait_for_the_fsync_the_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let sh = shared(dir.path(), None);
        let (light, mut light_rx) = task(Commit::Light, insert(1));
        let (durable, mut durable_rx) = task(Commit::Durable, insert(2));
        let (read, mut read_rx) = task(Commit::Read, count());
        let after_sync = run_batch(&sh.lock(), vec![light, durable, read], false);
        assert!(matches!(light_rx.try_recv(), Ok(Ok(1))));
        assert!(matches!(read_rx.try_recv(), Ok(Ok(2))));
        assert_eq!(after_sync.len(), 1, "the durable answer is held");
        assert!(
            durable_rx.try_recv().is_err(),
            "not answered before the fsync"
        );
        sh.answer_after_sync(after_sync);
        assert!(matches!(durable_rx.try_recv(), Ok(Ok(2))));
        assert!(!sh.is_broken());
        // Reads and light writes alone hold nothing back.
        let (light, _rx) = task(Commit::Light, insert(3));
        let db = sh.lock();
        assert!(run_batch(&db, vec![light], false).is_empty());
        assert_eq!(rows(&db), [1, 2, 3]);
        // Every commit counts towards the next checkpoint; a complete one resets the count.
        assert_eq!(db.commits.get(), 2);
        db.commits.set(CHECKPOINT_EVERY);
        db.checkpoint_if_due();
        assert_eq!(db.commits.get(), 0);
    }

    #[test]
    fn a_task_run_outside_a_transaction_is_still_answered_after_the_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let sh = shared(dir.path(), None);
        sh.lock()
            .conn
            .busy_timeout(Duration::from_millis(10))
            .unwrap();
        // Another process holds the write lock: BEGIN fails, the task runs on its own.
        let outside = Connection::open(dir.path().join("t.db")).unwrap();
        outside.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (durable, mut durable_rx) = task(Commit::Durable, count());
        let (light, mut light_rx) = task(Commit::Light, insert(1));
        let after_sync = run_batch(&sh.lock(), vec![durable, light], false);
        assert_eq!(after_sync.len(), 1);
        assert!(durable_rx.try_recv().is_err(), "held for the fsync");
        // The light write ran alone too, and failed on its own (the lock).
        assert!(matches!(
            light_rx.try_recv(),
            Ok(Err(StoreError::Database { op: "test", .. }))
        ));
        outside.execute_batch("COMMIT").unwrap();
        sh.answer_after_sync(after_sync);
        assert!(matches!(durable_rx.try_recv(), Ok(Ok(0))));
    }

    /// Another process holding the write lock costs a batch one busy timeout, not one per
    /// operation (each BEGIN and each statement run alone would wait it out again), and the
    /// store's busy timeout is back after the batch.
    #[test]
    fn another_writer_costs_a_batch_one_busy_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let sh = shared(dir.path(), None);
        let timeout = Duration::from_millis(500);
        sh.lock().conn.busy_timeout(timeout).unwrap();
        let outside = Connection::open(dir.path().join("t.db")).unwrap();
        outside.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (tasks, mut rxs): (Vec<_>, Vec<_>) =
            (1..=8).map(|i| task(Commit::Light, insert(i))).unzip();
        let started = std::time::Instant::now();
        let after_sync = run_batch(&sh.lock(), tasks, false);
        let took = started.elapsed();
        assert!(after_sync.is_empty());
        // Eight operations waiting twice each would take 8 s; one wait is 0.5 s.
        assert!(took < Duration::from_secs(4), "{took:?}");
        for rx in &mut rxs {
            assert!(matches!(
                rx.try_recv(),
                Ok(Err(StoreError::Database { op: "test", .. }))
            ));
        }
        let restored: i64 = sh
            .lock()
            .conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            restored,
            i64::try_from(BUSY_TIMEOUT.as_millis()).unwrap(),
            "the store's own timeout"
        );
        outside.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn a_failed_fsync_fails_its_answers_and_every_operation_after_it() {
        let dir = tempfile::tempdir().unwrap();
        // fsync of a pipe fails (EINVAL), as a failed write-back would.
        let (reader, _writer) = std::io::pipe().unwrap();
        let not_syncable = std::fs::File::from(std::os::fd::OwnedFd::from(reader));
        let sh = shared(dir.path(), Some(not_syncable));
        let (durable, mut durable_rx) = task(Commit::Durable, insert(1));
        sh.process(vec![durable]);
        assert!(matches!(
            durable_rx.try_recv(),
            Ok(Err(StoreError::Database { op: "commit", .. }))
        ));
        assert!(sh.is_broken());
        // The kernel would report the failure once: nothing runs any more.
        let (light, mut light_rx) = task(Commit::Light, insert(2));
        let (read, mut read_rx) = task(Commit::Read, count());
        sh.process(vec![light, read]);
        for rx in [&mut light_rx, &mut read_rx] {
            match rx.try_recv() {
                Ok(Err(StoreError::Database {
                    op: "commit",
                    message,
                })) => {
                    assert_eq!(message, BROKEN);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(rows(&sh.lock()), [1]);
    }

    #[tokio::test]
    async fn a_broken_store_refuses_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.purge_expired(0, 10).await.unwrap();
        store.db.broken.store(true, Ordering::Relaxed);
        assert!(matches!(
            store.purge_expired(0, 10).await,
            Err(StoreError::Database { op: "commit", .. })
        ));
        assert!(store.audit_entries(0, 10).await.is_err());
    }

    #[test]
    fn a_transaction_left_open_is_rolled_back_before_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let sh = shared(dir.path(), None);
        // A failed ROLLBACK would leave this open; its insert never committed.
        sh.lock()
            .conn
            .execute_batch("BEGIN; INSERT INTO t(v) VALUES (9)")
            .unwrap();
        let (light, mut light_rx) = task(Commit::Light, insert(1));
        sh.process(vec![light]);
        assert!(matches!(light_rx.try_recv(), Ok(Ok(1))));
        let db = sh.lock();
        assert_eq!(rows(&db), [1]);
        assert!(db.conn.is_autocommit());
    }

    #[test]
    fn callers_leave_the_connection_to_a_waiting_worker_and_survive_poisoning() {
        let dir = tempfile::tempdir().unwrap();
        let sh = shared(dir.path(), None);
        assert!(sh.try_lock().is_some());
        sh.worker_waiting.store(true, Ordering::Relaxed);
        assert!(sh.try_lock().is_none());
        sh.worker_waiting.store(false, Ordering::Relaxed);
        let held = sh.lock();
        assert!(sh.try_lock().is_none(), "taken");
        drop(held);
        // A thread that panicked holding the lock poisons it; the connection is still usable.
        std::thread::scope(|s| {
            let _ = s
                .spawn(|| {
                    let _db = sh.lock();
                    panic!("poisons the lock");
                })
                .join();
        });
        assert!(sh.db.is_poisoned());
        let (light, mut light_rx) = task(Commit::Light, insert(1));
        sh.lock().commits.set(1);
        assert!(try_inline(&sh.try_lock().unwrap(), light, true).is_none());
        assert!(matches!(light_rx.try_recv(), Ok(Ok(1))));
    }

    #[test]
    fn inline_operations_run_on_the_callers_thread_unless_they_must_wait() {
        let dir = tempfile::tempdir().unwrap();
        let c = conns(dir.path());
        let (read, mut read_rx) = task(Commit::Read, count());
        assert!(try_inline(&c, read, false).is_none());
        assert!(matches!(read_rx.try_recv(), Ok(Ok(0))));
        // Right after a complete checkpoint (count 0) the first write restarts the WAL, which
        // syncs: the worker makes it.
        let (light, mut light_rx) = task(Commit::Light, insert(1));
        assert!(try_inline(&c, light, true).is_some());
        assert!(light_rx.try_recv().is_err());
        c.commits.set(1);
        let (light, mut light_rx) = task(Commit::Light, insert(1));
        assert!(try_inline(&c, light, true).is_none());
        assert!(matches!(light_rx.try_recv(), Ok(Ok(1))));
        assert_eq!(rows(&c), [1]);
        // A durable write always goes to the worker (it waits for the disk), and so do purging
        // and reads of many rows (they may run long).
        for kind in [Commit::Durable, Commit::Background, Commit::BulkRead] {
            let (t, mut rx) = task(kind, insert(2));
            assert!(try_inline(&c, t, true).is_some(), "{kind:?}");
            assert!(rx.try_recv().is_err());
        }
        // Another process holds the write lock: the light write is handed back at once
        // instead of waiting out the busy timeout on the caller's thread, and the busy
        // timeout is back for the worker.
        let outside = Connection::open(dir.path().join("t.db")).unwrap();
        outside.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        let (light, mut light_rx) = task(Commit::Light, insert(3));
        assert!(try_inline(&c, light, true).is_some());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(light_rx.try_recv().is_err());
        let timeout: i64 = c
            .conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, 10_000);
        outside.execute_batch("COMMIT").unwrap();
        // A checkpoint is due: the light write goes to the worker, which runs it.
        c.commits.set(CHECKPOINT_EVERY);
        let (light, _rx) = task(Commit::Light, insert(4));
        assert!(try_inline(&c, light, true).is_some());
        c.commits.set(1);
        // Other operations in flight: the light write goes to the worker, to share a commit.
        let (light, _rx) = task(Commit::Light, insert(5));
        assert!(try_inline(&c, light, false).is_some());
        assert_eq!(rows(&c), [1]);
    }

    #[test]
    fn a_rolled_back_transaction_fails_every_operation_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = conns(dir.path());
        let got = run(
            &c,
            vec![
                task(Commit::Light, insert(1)),
                // What SQLite does on an I/O error or a full disk: the transaction is gone.
                task(Commit::Light, |c| {
                    c.exec("ROLLBACK", []).map_err(db("test"))?;
                    Ok(0)
                }),
                task(Commit::Light, insert(3)),
            ],
        );
        assert!(matches!(
            got[0],
            Err(StoreError::Database { op: "commit", .. })
        ));
        assert!(matches!(
            got[1],
            Err(StoreError::Database { op: "commit", .. })
        ));
        assert!(
            matches!(got[2], Ok(3)),
            "the rest runs in a new transaction"
        );
        assert_eq!(rows(&c), [3]);
    }

    #[test]
    fn a_panicking_operation_fails_its_batch_not_the_worker() {
        let dir = tempfile::tempdir().unwrap();
        let c = conns(dir.path());
        let got = run(
            &c,
            vec![
                task(Commit::Light, insert(1)),
                task(Commit::Light, |_| panic!("a bug in one operation")),
                task(Commit::Light, insert(3)),
            ],
        );
        assert!(matches!(
            got[0],
            Err(StoreError::Database { op: "commit", .. })
        ));
        assert!(matches!(got[1], Err(StoreError::Worker)));
        assert!(matches!(got[2], Ok(3)));
        assert_eq!(rows(&c), [3]);
    }

    /// The database, its WAL and its shared-memory file are the owner's alone, whatever the
    /// data directory's mode and the umask; a database left readable by others is tightened.
    #[test]
    fn the_database_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        let store = SqliteStore::open_blocking(dir.path()).unwrap();
        for name in [DB_FILE, "tessera.db-wal", "tessera.db-shm"] {
            assert_eq!(mode(name), 0o600, "{name}");
        }
        drop(store);
        let db = dir.path().join(DB_FILE);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = SqliteStore::open_blocking(dir.path()).unwrap();
        assert_eq!(mode(DB_FILE), 0o600);
    }

    #[test]
    fn answers_wait_for_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let c = conns(dir.path());
        let watcher = connect(&dir.path().join("t.db")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let seen = move |c: &Connection| {
            // Inside the batch: the first insert is visible to this transaction only.
            let mine: i64 = c.row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
            let others: i64 = watcher
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap();
            tx.send((mine, others)).unwrap();
            Ok(0)
        };
        let got = run(
            &c,
            vec![task(Commit::Durable, insert(1)), task(Commit::Read, seen)],
        );
        assert!(got.iter().all(Result::is_ok));
        assert_eq!(rx.recv().unwrap(), (1, 0));
        assert_eq!(rows(&c), [1]);
    }

    #[tokio::test]
    async fn operations_wait_out_another_writer_and_the_worker_stops_with_its_last_handle() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        // Hold the write lock from outside so that the worker waits in BEGIN and the next
        // operations gather behind it.
        let outside = Connection::open(store.path()).unwrap();
        outside.execute_batch("BEGIN IMMEDIATE").unwrap();
        let first = tokio::spawn({
            let s = store.clone();
            async move { s.purge_expired(0, 10).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut waiting = Vec::new();
        for i in 0..40 {
            let s = store.clone();
            waiting.push(tokio::spawn(async move {
                let ch =
                    Challenge::generate("snp", crate::binding::HashAlgorithm::Sha384, i).unwrap();
                s.use_challenge(&ch).await.map(|won| (won, ch))
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        outside.execute_batch("COMMIT").unwrap();
        first.await.unwrap().unwrap();
        for w in waiting {
            let (won, ch) = w.await.unwrap().unwrap();
            assert!(won);
            assert!(!store.use_challenge(&ch).await.unwrap());
        }
        let path = store.path().to_owned();
        drop(outside);
        drop(store);
        // The last connection to close removes the WAL: the worker's closed when the last
        // handle went.
        let mut gone = false;
        for _ in 0..100 {
            if !path.with_extension("db-wal").exists() {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(gone, "the worker still holds the database");
    }
}
