//! The shared store: PostgreSQL, so that several broker replicas serve from one database.
//!
//! Replicas share this database and nothing else. Every guarantee the [`Store`] trait makes
//! holds across replicas because it rests on one PostgreSQL statement or one serialised
//! transaction, never on state inside a process:
//!
//! - A challenge's single use is one `INSERT .. ON CONFLICT DO NOTHING RETURNING 1` keyed by
//!   its session: the unique index lets exactly one of any number of concurrent callers (on
//!   any replica) insert it; the others wait for its transaction, then insert nothing.
//! - Version numbers come from `INSERT .. ON CONFLICT DO UPDATE SET last_version =
//!   last_version + 1 RETURNING`, atomic under concurrency; a number is never handed out twice.
//! - An audit append is one transaction that takes a transaction-scoped advisory lock
//!   (`pg_advisory_xact_lock`), reads the last entry and inserts the next one chained to it
//!   ([`crate::audit::next_entry`]), so appends from every replica form one chain. The table
//!   refuses `UPDATE`, `DELETE` and `TRUNCATE` by trigger.
//! - The use of a refused challenge commits with `synchronous_commit = off` (`run_light`);
//!   every other write is a synchronous commit (an attested session and its challenge's use
//!   ride in the transaction of the audit entry that records them). The audit append that
//!   follows a refused challenge's use before the guest gets its answer flushes the WAL past
//!   it; should that append fail (it is best effort, and logged), a crash in the next moments
//!   could take the use back, letting the holder of that cookie and nonce answer once more, as
//!   on SQLite after a power cut. Every connection the pool opens runs at READ COMMITTED and
//!   with `synchronous_commit` on, whatever the server's, database's or role's defaults
//!   (`SESSION_SETTINGS`).
//! - The schema is created and upgraded by numbered migrations at [`PostgresStore::connect`],
//!   in one transaction holding an advisory lock, recorded in `schema_version`; replicas that
//!   start together apply each migration once, and a database from a newer broker is refused.
//!
//! Tables live in the connection's current schema (the first existing schema on
//! `search_path`), so one database can hold several brokers' stores in separate schemas; the
//! advisory lock keys are derived from the schema name.
//!
//! Connections come from a pool (`deadpool-postgres`): a connection that broke (a restarted
//! server) is dropped and a new one made on the next request; until the server is back,
//! operations fail with [`StoreError::Database`] (the HTTP layer answers 503), never with a
//! wrong answer. The connection is TLS (rustls) when the URL asks for it with
//! `sslmode=verify-full` (or `verify-ca`, `require`) and `sslrootcert=FILE`, the server's
//! certificate always checked against that file; otherwise plain TCP, for loopback or a trusted
//! network (see `pg_tls`).

use std::time::Duration;

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;
use tokio_postgres::Row;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{FromSql, ToSql};

use std::sync::Arc;

use super::pg_tls;
use super::{
    AttestedSession, Challenge, KeyCheck, NewSecretVersion, ReleaseBasis, RepoPolicy,
    SecretVersionInfo, SessionId, Store, StoreError, StoredSecret,
};
use crate::audit::{self, AuditAction, AuditChainError, AuditEntry, AuditEvent, AuditVerdict};
use crate::resource::{PolicyDigest, ResourcePath};
use crate::seal::SealedSecret;

/// Run on every new connection, whatever the server, database or role sets by default: the
/// appends' advisory lock must be taken before the snapshot their reads see, which holds only
/// at READ COMMITTED (under REPEATABLE READ or SERIALIZABLE a transaction's snapshot predates
/// the lock, and concurrent appends would collide on `seq`); and commits must reach the disk
/// before they return (`synchronous_commit = off` would let a crash take back a release's
/// entry, or an acknowledged put). A stronger setting (`remote_write`, `remote_apply`, or `on`
/// with synchronous standbys) is left as it is; `local` still flushes locally.
///
/// Waits are bounded where the server leaves them unbounded (a setting of its own is kept): a
/// replica that loses its network while it holds the audit chain's lock leaves its backend
/// idle in a transaction, which PostgreSQL would keep (and every replica's writes wait behind
/// it) until TCP keepalive gives up, hours later; after `idle_in_transaction_session_timeout`
/// (60 s) the server ends that session and the lock is free. A statement waiting for a lock
/// gives up after `lock_timeout` (30 s, the default request deadline) instead of waiting on,
/// its connection held, after the request that wanted it was answered (a start waiting for
/// another replica's migration is not bounded: `migrate_in`).
const SESSION_SETTINGS: &str = "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED; \
     SELECT set_config('synchronous_commit', 'on', false) \
     WHERE current_setting('synchronous_commit') = 'off'; \
     SELECT set_config('idle_in_transaction_session_timeout', '60s', false) \
     WHERE current_setting('idle_in_transaction_session_timeout') = '0'; \
     SELECT set_config('lock_timeout', '30s', false) \
     WHERE current_setting('lock_timeout') = '0'";

/// The migrations, in order: `(version, SQL)`. A released migration is never edited; a schema
/// change is a new entry.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, MIGRATION_1),
    (2, MIGRATION_2),
    (3, MIGRATION_3),
    (4, MIGRATION_4),
    (5, MIGRATION_5),
    (6, MIGRATION_6),
];

/// The store's key check (`KeyCheck`): which KEK it was made with. Empty until a broker of
/// this version starts on it and records its keyring's (see `check_keyring`).
const MIGRATION_6: &str = "
CREATE TABLE key_check (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one), kek_id TEXT NOT NULL, mac TEXT NOT NULL);
";

/// Repository default policies carry a MAC under a KEK (`RepoPolicy`): empty for every default
/// set before, which puts naming no policy then refuse until an admin sets it again.
const MIGRATION_5: &str = "
ALTER TABLE repo_policies ADD COLUMN kek_id TEXT NOT NULL DEFAULT '';
ALTER TABLE repo_policies ADD COLUMN mac TEXT NOT NULL DEFAULT '';
";

/// The sealed file a version was imported from (`NewSecretVersion::origin`): null for every
/// version put before, so that the first import of a sealed file after the upgrade makes one
/// new version.
const MIGRATION_4: &str = "
ALTER TABLE secrets ADD COLUMN origin TEXT;
";

/// The admin listing's order (byte order, whatever the database's collation) as an index, so
/// that a page starting after a resource reads from there instead of sorting every version.
const MIGRATION_3: &str = "
CREATE INDEX secrets_listing ON secrets (resource COLLATE \"C\", version);
";

/// The store's identity (see [`Store::identity`]): one row of random bytes.
const MIGRATION_2: &str = "
CREATE TABLE store_identity (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one), id BYTEA NOT NULL);
INSERT INTO store_identity(id) VALUES (uuid_send(gen_random_uuid()));
";

const MIGRATION_1: &str = "
CREATE TABLE policies (
    digest TEXT PRIMARY KEY, text TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE repo_policies (
    repo TEXT PRIMARY KEY, digest TEXT NOT NULL REFERENCES policies(digest),
    updated_ms BIGINT NOT NULL);
CREATE TABLE version_counters (
    resource TEXT PRIMARY KEY, last_version BIGINT NOT NULL);
CREATE TABLE secrets (
    resource TEXT NOT NULL, repo TEXT NOT NULL, version BIGINT NOT NULL,
    policy_digest TEXT NOT NULL REFERENCES policies(digest),
    kek_id TEXT NOT NULL, wrapped_key BYTEA NOT NULL, nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL, created_ms BIGINT NOT NULL,
    PRIMARY KEY (resource, version));
CREATE INDEX secrets_repo ON secrets(repo);
CREATE INDEX secrets_kek ON secrets(kek_id);
CREATE TABLE challenges (
    session_key TEXT PRIMARY KEY, nonce TEXT NOT NULL, tee TEXT NOT NULL, hash TEXT NOT NULL,
    issued_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL, used BOOLEAN NOT NULL DEFAULT false);
CREATE INDEX challenges_expiry ON challenges(expires_ms);
CREATE TABLE sessions (
    session_key TEXT PRIMARY KEY, tee TEXT NOT NULL, tee_pubkey TEXT NOT NULL,
    token TEXT NOT NULL, claims TEXT NOT NULL, evidence_digest TEXT NOT NULL,
    attested_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL);
CREATE INDEX sessions_expiry ON sessions(expires_ms);
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, resource TEXT, evidence_digest TEXT, policy_digest TEXT,
    verdict TEXT NOT NULL, reason TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
";

/// The newest schema version this broker knows.
pub const POSTGRES_SCHEMA_VERSION: i32 = 6;

/// Pool settings for [`PostgresStore::connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Most connections this store opens (per replica).
    pub max_connections: usize,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long an operation waits for a free connection.
    pub wait_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL store (cheap to clone: clones share the pool).
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    audit_lock: i64,
    schema: String,
    /// See [`Store::identity`].
    identity: Vec<u8>,
    /// Audit appends not yet committed (group commit: see [`PostgresStore::flush_audit`]).
    audit_queue: Arc<std::sync::Mutex<Vec<PendingAudit>>>,
    /// Held by the one task of this process committing a batch of audit appends.
    audit_flush: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("max_connections", &self.pool.status().max_size)
            .finish_non_exhaustive()
    }
}

/// The message of a PostgreSQL error, without values: a server error's severity, SQLSTATE and
/// primary message (not its DETAIL, which may quote row values), or the client's error kind
/// and cause (for example the connection refused).
fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn db(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Database {
        op,
        message: pg_message(&e),
    }
}

fn pool_err(op: &'static str) -> impl Fn(PoolError) -> StoreError {
    move |e| StoreError::Database {
        op,
        message: match &e {
            PoolError::Backend(b) => format!("connecting: {}", pg_message(b)),
            other => other.to_string(),
        },
    }
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize, op: &'static str) -> Result<T, StoreError> {
    row.try_get(idx).map_err(db(op))
}

fn to_i64(v: u64, field: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt { field })
}

fn to_u64(v: i64, field: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt { field })
}

/// An advisory lock key for `purpose` in `schema`: the first 8 bytes of a SHA-256, so stores in
/// different schemas of one database do not wait for each other.
fn lock_key(purpose: &str, schema: &str) -> i64 {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("tessera-broker/{purpose}/{schema}").as_bytes(),
    );
    d.as_ref()
        .first_chunk::<8>()
        .map_or(0, |b| i64::from_be_bytes(*b))
}

/// Whatever TLS the URL asks for was read by `pg_tls::split_url`: a setting the driver found
/// anyway (in a form `split_url` did not take) must not be overridden in silence, and direct TLS
/// negotiation without a TLS mode would fall back to plain text.
fn driver_tls_settings_ok(
    cfg: &tokio_postgres::Config,
    mode: pg_tls::Mode,
) -> Result<(), StoreError> {
    if cfg.get_ssl_mode() != SslMode::Prefer {
        return Err(pg_tls::bad(
            "the store URL's sslmode is written in a form this broker does not read (write \
             ?sslmode=... once)",
        ));
    }
    if mode == pg_tls::Mode::Plain
        && cfg.get_ssl_negotiation() == tokio_postgres::config::SslNegotiation::Direct
    {
        return Err(pg_tls::bad(
            "sslnegotiation=direct needs TLS: add sslmode=verify-full and sslrootcert",
        ));
    }
    Ok(())
}

/// The hosts of `cfg` reached over TCP that are not this machine (loopback addresses and
/// `localhost` are; Unix sockets are not TCP): where a connection without TLS crosses a
/// network.
fn remote_tcp_hosts(cfg: &tokio_postgres::Config) -> Vec<String> {
    use tokio_postgres::config::Host;
    let addrs = cfg.get_hostaddrs();
    cfg.get_hosts()
        .iter()
        .enumerate()
        .filter_map(|(i, host)| match host {
            Host::Tcp(name) => {
                // `hostaddr`, when given, is where the connection goes.
                let local = match addrs.get(i) {
                    Some(ip) => ip.is_loopback(),
                    None => {
                        name.eq_ignore_ascii_case("localhost")
                            || name
                                .trim_start_matches('[')
                                .trim_end_matches(']')
                                .parse::<std::net::IpAddr>()
                                .is_ok_and(|ip| ip.is_loopback())
                    }
                };
                (!local).then(|| name.clone())
            }
            Host::Unix(_) => None,
        })
        .collect()
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db?options=..`) with the default
    /// [`PostgresOptions`] and applies the schema migrations.
    ///
    /// # Errors
    /// [`StoreError::Database`]: a malformed URL, a TLS mode without a usable `sslrootcert`,
    /// an unreachable or refusing server, a TLS handshake that fails (a certificate that does
    /// not chain to `sslrootcert` or, with `verify-full`, does not name the host), a failed migration (`op: "migrate"`) or a database whose schema is newer
    /// than this broker (`op: "schema"`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &PostgresOptions::default()).await
    }

    /// [`PostgresStore::connect`] with pool settings.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`].
    pub async fn connect_with(url: &str, opts: &PostgresOptions) -> Result<Self, StoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(pg_tls::bad(
                "the store URL must start with postgres:// or postgresql://",
            ));
        }
        let tls = pg_tls::split_url(url)?;
        let mut cfg: tokio_postgres::Config = tls.url.parse().map_err(db("connect"))?;
        driver_tls_settings_ok(&cfg, tls.mode)?;
        if cfg.get_application_name().is_none() {
            cfg.application_name("tessera-broker");
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(opts.connect_timeout);
        }
        // Fast recycling: a connection the server closed (restart, failover) is detected by
        // the client and replaced; no extra round trip per operation.
        let recycling = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if tls.mode == pg_tls::Mode::Plain {
            // Allowed (a database on this host or behind its own encrypted link), but said: the
            // store's traffic (single use of challenges, sessions, audit entries) would cross
            // the network readable and changeable by anyone on the path.
            let remote = remote_tcp_hosts(&cfg);
            if !remote.is_empty() {
                tracing::warn!(
                    hosts = %remote.join(","),
                    "PostgreSQL without TLS to a host that is not this machine: add \
                     sslmode=verify-full and sslrootcert to the store URL"
                );
            }
            cfg.ssl_mode(SslMode::Disable);
            Manager::from_config(cfg, NoTls, recycling())
        } else {
            let roots = tls
                .root_cert
                .as_deref()
                .ok_or_else(|| pg_tls::bad("a TLS sslmode needs sslrootcert"))?;
            // TLS or nothing: a server that does not offer it is refused.
            cfg.ssl_mode(SslMode::Require);
            let config = pg_tls::client_config(tls.mode, roots)?;
            Manager::from_config(cfg, pg_tls::MakeRustls(Arc::new(config)), recycling())
        };
        let pool = Pool::builder(manager)
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(SESSION_SETTINGS)
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .max_size(opts.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.wait_timeout))
            .create_timeout(Some(opts.connect_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .build()
            .map_err(|e| StoreError::Database {
                op: "connect",
                message: e.to_string(),
            })?;
        let schema = migrate(&pool).await?;
        let identity: Vec<u8> = {
            let c = pool.get().await.map_err(pool_err("connect"))?;
            let row = c
                .query_one("SELECT id FROM store_identity", &[])
                .await
                .map_err(db("connect"))?;
            get(&row, 0, "connect")?
        };
        if identity.is_empty() || identity.len() > 255 {
            return Err(StoreError::Corrupt {
                field: "store_identity.id",
            });
        }
        Ok(Self {
            pool,
            audit_lock: lock_key("audit", &schema),
            schema,
            identity,
            audit_queue: Arc::new(std::sync::Mutex::new(Vec::new())),
            audit_flush: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The schema the tables live in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Queues an audit append (and what it is bound to) for the next group commit and waits
    /// for its entry; `None` when the challenge of its session was already used, or the basis
    /// of its release no longer holds.
    async fn queue_audit(
        &self,
        event: AuditEvent,
        bound: Bound,
    ) -> Result<Option<AuditEntry>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.audit_queue).push(((event, bound), tx));
        let this = self.clone();
        tokio::spawn(async move { this.flush_audit().await })
            .await
            .map_err(|_| StoreError::Worker)?;
        rx.await.map_err(|_| StoreError::Worker)?
    }

    /// Commit every queued audit append in one transaction, under the cross-replica advisory
    /// lock, and answer each; a no-op when an earlier flush already took them.
    async fn flush_audit(&self) {
        let _turn = self.audit_flush.lock().await;
        let batch = std::mem::take(&mut *lock(&self.audit_queue));
        if batch.is_empty() {
            return;
        }
        let (events, senders): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        answer_audit(senders, self.commit_audit(events).await);
    }

    async fn commit_audit(
        &self,
        events: Vec<(AuditEvent, Bound)>,
    ) -> Result<Vec<Option<AuditEntry>>, StoreError> {
        const OP: &str = "append_audit";
        let mut c = self.client(OP).await?;
        let tx = c.transaction().await.map_err(db(OP))?;
        // The sessions these entries record, with their challenges' use, in the same
        // transaction: all or nothing. A session whose challenge was already used is left
        // out, and so is its entry. In key order, so that two replicas' batches never wait
        // for each other's rows in opposite orders.
        let mut claimed = vec![true; events.len()];
        let mut sessions: Vec<(usize, String, &Challenge, &AttestedSession)> = events
            .iter()
            .enumerate()
            .filter_map(|(i, (_, bound))| match bound {
                Bound::Session(s) => {
                    let (ch, s) = s.as_ref();
                    Some((i, ch.session_id.storage_key(), ch, s))
                }
                _ => None,
            })
            .collect();
        sessions.sort_by(|a, b| a.1.cmp(&b.1));
        if !sessions.is_empty() {
            let mark = tx
                .prepare_cached(MARK_USED)
                .await
                .map_err(db("use_challenge"))?;
            let put = tx
                .prepare_cached(PUT_SESSION)
                .await
                .map_err(db("put_session"))?;
            for (i, key, ch, s) in sessions {
                let won = tx
                    .query_opt(
                        &mark,
                        &mark_params(&key, ch, &ch.hash.name(), &ch.retain_until_ms()),
                    )
                    .await
                    .map_err(db("use_challenge"))?;
                if won.is_none() {
                    if let Some(c) = claimed.get_mut(i) {
                        *c = false;
                    }
                    continue;
                }
                let params: [&(dyn ToSql + Sync); 8] = [
                    &s.session_id.storage_key(),
                    &s.tee,
                    &s.tee_pubkey,
                    &s.token_digest,
                    &s.claims,
                    &s.evidence_digest,
                    &s.attested_ms,
                    &s.expires_ms,
                ];
                // A session is written once: one that exists means its challenge was used
                // (its use's record purged early, by a clock running ahead).
                if tx.execute(&put, &params).await.map_err(db("put_session"))? == 0
                    && let Some(c) = claimed.get_mut(i)
                {
                    *c = false;
                }
            }
        }
        // Releases: checked under the cross-replica advisory lock, which every write of a
        // version (put, delete) also takes before it commits, with its own entry. Taken after
        // the sessions' rows, as in every other batch, so no two batches wait for each other.
        let releases: Vec<(usize, &ReleaseBasis)> = events
            .iter()
            .enumerate()
            .filter_map(|(i, (_, bound))| match bound {
                Bound::Release(basis) => Some((i, basis)),
                _ => None,
            })
            .collect();
        if !releases.is_empty() {
            take_audit_lock(&tx, self.audit_lock, "append_release").await?;
            for (i, basis) in releases {
                if !release_basis_holds(&tx, basis).await?
                    && let Some(c) = claimed.get_mut(i)
                {
                    *c = false;
                }
            }
        }
        let events = events
            .into_iter()
            .zip(claimed)
            .map(|((event, _), claimed)| claimed.then_some(event))
            .collect();
        let entries = append_chain(&tx, self.audit_lock, events).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(entries)
    }

    async fn client(&self, op: &'static str) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err(op))
    }

    /// Runs one statement, returning the rows.
    async fn query(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let c = self.client(op).await?;
        let st = c.prepare_cached(sql).await.map_err(db(op))?;
        c.query(&st, params).await.map_err(db(op))
    }

    /// Runs one statement, returning at most one row.
    async fn query_opt(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let c = self.client(op).await?;
        let st = c.prepare_cached(sql).await.map_err(db(op))?;
        c.query_opt(&st, params).await.map_err(db(op))
    }

    /// Runs one statement in a transaction with `synchronous_commit = off`: its commit returns
    /// before the WAL reaches disk. Only for the single use of a refused challenge: the broker
    /// answers `/attest` only after the audit append, a synchronous commit whose WAL flush
    /// covers every earlier record, so nothing a guest was told can be lost in a crash. Rows changed and, for
    /// `RETURNING` statements, the first row.
    async fn run_light(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(u64, Option<Row>), StoreError> {
        let mut c = self.client(op).await?;
        let st = c.prepare_cached(sql).await.map_err(db(op))?;
        let tx = c.transaction().await.map_err(db(op))?;
        // Pipelined: both go out before either answer comes back.
        let (set, rows) = tokio::join!(
            tx.batch_execute("SET LOCAL synchronous_commit TO OFF"),
            tx.query(&st, params)
        );
        set.map_err(db(op))?;
        let rows = rows.map_err(db(op))?;
        tx.commit().await.map_err(db(op))?;
        let n = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        Ok((n, rows.into_iter().next()))
    }

    /// Runs one statement, returning the number of rows it changed.
    async fn execute(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let c = self.client(op).await?;
        let st = c.prepare_cached(sql).await.map_err(db(op))?;
        c.execute(&st, params).await.map_err(db(op))
    }
}

/// Applies the missing migrations in one transaction under an advisory lock; returns the
/// schema the tables live in.
async fn migrate(pool: &Pool) -> Result<String, StoreError> {
    const OP: &str = "migrate";
    let mut c = pool.get().await.map_err(pool_err(OP))?;
    let tx = c.transaction().await.map_err(db(OP))?;
    match migrate_in(&tx).await {
        Ok(schema) => {
            tx.commit().await.map_err(db(OP))?;
            Ok(schema)
        }
        Err(e) => {
            // Roll back now (not when the connection is next used), releasing the lock.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Takes the cross-replica advisory lock `lock` (the audit chain's), held until `tx` ends;
/// taking it again in the same transaction is a no-op.
async fn take_audit_lock(
    tx: &deadpool_postgres::Transaction<'_>,
    lock: i64,
    op: &'static str,
) -> Result<(), StoreError> {
    let take = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await
        .map_err(db(op))?;
    tx.execute(&take, &[&lock]).await.map_err(db(op))?;
    Ok(())
}

/// Appends each `Some` event to the audit chain inside `tx` (a `None` stays `None`, and
/// writes nothing). It first takes the cross-replica advisory lock `lock`, held until `tx`
/// ends, so one appender at a time chains to the newest committed entry.
async fn append_chain(
    tx: &deadpool_postgres::Transaction<'_>,
    lock: i64,
    events: Vec<Option<AuditEvent>>,
) -> Result<Vec<Option<AuditEntry>>, StoreError> {
    const OP: &str = "append_audit";
    take_audit_lock(tx, lock, OP).await?;
    let newest = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .await
        .map_err(db(OP))?;
    let last = tx.query_opt(&newest, &[]).await.map_err(db(OP))?;
    let mut last = match &last {
        Some(r) => Some((
            to_u64(get(r, 0, OP)?, "audit.seq")?,
            get::<String>(r, 1, OP)?,
        )),
        None => None,
    };
    let st = tx
        .prepare_cached(
            "INSERT INTO audit(seq, time_ms, actor, action, resource, evidence_digest,
                policy_digest, verdict, reason, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .await
        .map_err(db(OP))?;
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        let Some(event) = event else {
            entries.push(None);
            continue;
        };
        let e = audit::next_entry(last.as_ref().map(|(s, h)| (*s, h.as_str())), event)?;
        tx.execute(
            &st,
            &[
                &to_i64(e.seq, "audit.seq")?,
                &e.event.time_ms,
                &e.event.actor,
                &e.event.action.as_str(),
                &e.event.resource,
                &e.event.evidence_digest,
                &e.event.policy_digest,
                &e.event.verdict.as_str(),
                &e.event.reason,
                &e.prev_hash,
                &e.hash,
            ],
        )
        .await
        .map_err(db(OP))?;
        last = Some((e.seq, e.hash.clone()));
        entries.push(Some(e));
    }
    Ok(entries)
}

async fn migrate_in(tx: &deadpool_postgres::Transaction<'_>) -> Result<String, StoreError> {
    const OP: &str = "migrate";
    let row = tx
        .query_one("SELECT current_schema()", &[])
        .await
        .map_err(db(OP))?;
    let schema: Option<String> = get(&row, 0, OP)?;
    let schema = schema.ok_or_else(|| StoreError::Database {
        op: OP,
        message: "no schema to create the tables in (no schema on search_path exists)".into(),
    })?;
    // Released when the transaction ends, committed or not. A replica starting beside one
    // that migrates waits for it however long the migration takes (not `lock_timeout`); the
    // statements after it wait no longer than `lock_timeout` again (a migration or a guard
    // restore queued behind a long reader, a dump say, would hold up every replica's writes).
    let row = tx
        .query_one("SELECT current_setting('lock_timeout')", &[])
        .await
        .map_err(db(OP))?;
    let lock_timeout: String = get(&row, 0, OP)?;
    tx.batch_execute("SET LOCAL lock_timeout = 0")
        .await
        .map_err(db(OP))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_key("migrate", &schema)],
    )
    .await
    .map_err(db(OP))?;
    tx.execute(
        "SELECT set_config('lock_timeout', $1, true)",
        &[&lock_timeout],
    )
    .await
    .map_err(db(OP))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )
    .await
    .map_err(db(OP))?;
    let row = tx
        .query_one("SELECT max(version) FROM schema_version", &[])
        .await
        .map_err(db(OP))?;
    let current: i32 = get::<Option<i32>>(&row, 0, OP)?.unwrap_or(0);
    if current > POSTGRES_SCHEMA_VERSION {
        return Err(StoreError::Database {
            op: "schema",
            message: format!(
                "schema version {current}, this broker knows {POSTGRES_SCHEMA_VERSION}"
            ),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await.map_err(db(OP))?;
        tx.execute(
            "INSERT INTO schema_version(version, applied_ms)
             VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
            &[version],
        )
        .await
        .map_err(db(OP))?;
    }
    restore_audit_guard(tx, &schema).await?;
    Ok(schema)
}

/// The audit table's append-only triggers, as migration 1 made them, with their
/// `pg_trigger.tgtype` (row 1, before 2, delete 8, update 16, truncate 32).
const AUDIT_TRIGGERS: [(&str, &str, i16); 3] = [
    ("audit_no_update", "BEFORE UPDATE ON audit FOR EACH ROW", 19),
    ("audit_no_delete", "BEFORE DELETE ON audit FOR EACH ROW", 11),
    (
        "audit_no_truncate",
        "BEFORE TRUNCATE ON audit FOR EACH STATEMENT",
        34,
    ),
];

/// Puts back what keeps the audit table append-only, as the SQLite store does at every open:
/// the function (written again, in case it was replaced by one that lets changes through) and
/// each trigger that is missing, disabled or calls another function, with a warning, since
/// only someone with the database's privileges removes them (`tessera audit verify` then
/// names what they changed).
async fn restore_audit_guard(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
) -> Result<(), StoreError> {
    const OP: &str = "migrate";
    const RAISE: &str = "RAISE EXCEPTION 'the audit log is append-only';";
    let mut restored = Vec::new();
    // Written again only when changed: an intact guard is left as it is.
    let source = tx
        .query_opt(
            "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = $1 AND p.proname = 'audit_append_only' AND p.pronargs = 0",
            &[&schema],
        )
        .await
        .map_err(db(OP))?;
    let source: Option<String> = source.as_ref().map(|r| get(r, 0, OP)).transpose()?;
    if source.as_deref().map(str::trim) != Some(&format!("BEGIN\n    {RAISE}\nEND")) {
        tx.batch_execute(&format!(
            "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql \
             AS $$\nBEGIN\n    {RAISE}\nEND\n$$"
        ))
        .await
        .map_err(db(OP))?;
        restored.push("audit_append_only()");
    }
    let rows = tx
        .query(
            "SELECT t.tgname::text, t.tgtype FROM pg_trigger t
             JOIN pg_class c ON c.oid = t.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_proc p ON p.oid = t.tgfoid
             WHERE n.nspname = $1 AND c.relname = 'audit' AND NOT t.tgisinternal
               AND t.tgenabled IN ('O', 'A') AND p.proname = 'audit_append_only'
               AND p.pronamespace = n.oid AND t.tgqual IS NULL AND t.tgnargs = 0
               AND cardinality(t.tgattr::int2[]) = 0",
            &[&schema],
        )
        .await
        .map_err(db(OP))?;
    // Intact: its name, event and timing, no condition, no column list, this function.
    let intact: Vec<(String, i16)> = rows
        .iter()
        .map(|r| Ok((get::<String>(r, 0, OP)?, get::<i16>(r, 1, OP)?)))
        .collect::<Result<_, StoreError>>()?;
    for (name, when, tgtype) in AUDIT_TRIGGERS {
        if intact.iter().any(|(n, t)| n == name && *t == tgtype) {
            continue;
        }
        tx.batch_execute(&format!(
            "DROP TRIGGER IF EXISTS {name} ON audit;
             CREATE TRIGGER {name} {when} EXECUTE FUNCTION audit_append_only()"
        ))
        .await
        .map_err(db(OP))?;
        restored.push(name);
    }
    if !restored.is_empty() {
        tracing::warn!(
            restored = %restored.join(","),
            "the audit log's append-only guard was missing, disabled or changed: restored; \
             run `tessera audit verify` to find what was changed meanwhile"
        );
    }
    Ok(())
}

/// A repository default policy from the row's columns `first..first + 3` (digest, KEK id, MAC).
fn repo_policy_of(row: &Row, first: usize, op: &'static str) -> Result<RepoPolicy, StoreError> {
    let digest: String = get(row, first, op)?;
    RepoPolicy::from_stored(&digest, get(row, first + 1, op)?, get(row, first + 2, op)?)
}

/// A key check from its row (`kek_id`, `mac`).
fn key_check_of(row: &Row, op: &'static str) -> Result<KeyCheck, StoreError> {
    Ok(KeyCheck {
        kek_id: get(row, 0, op)?,
        mac: get(row, 1, op)?,
    })
}

/// Whether what a release relied on still holds (see [`ReleaseBasis`]), read inside `tx`.
async fn release_basis_holds(
    tx: &deadpool_postgres::Transaction<'_>,
    basis: &ReleaseBasis,
) -> Result<bool, StoreError> {
    const OP: &str = "append_release";
    let resource = basis.resource.to_string();
    let st = tx
        .prepare_cached(
            "SELECT (SELECT policy_digest FROM secrets WHERE resource = $1 AND version = $2),
                    (SELECT MAX(version) FROM secrets WHERE resource = $1)",
        )
        .await
        .map_err(db(OP))?;
    let row = tx
        .query_one(
            &st,
            &[&resource, &to_i64(basis.version, "secrets.version")?],
        )
        .await
        .map_err(db(OP))?;
    let digest: Option<String> = get(&row, 0, OP)?;
    let newest: Option<i64> = get(&row, 1, OP)?;
    Ok(digest.as_deref() == Some(basis.policy_digest.as_str())
        && newest == Some(to_i64(basis.newest, "secrets.version")?))
}

/// What an audit append carries besides its event, stored or checked in its transaction.
enum Bound {
    /// Nothing: the entry is always written.
    Nothing,
    /// The attested session it records, with its challenge's use (left out, with its entry,
    /// when the challenge was already used).
    Session(Box<(Challenge, AttestedSession)>),
    /// What the release it records relied on (left out, with its entry, when it no longer
    /// holds).
    Release(ReleaseBasis),
}

/// An audit append waiting for the next group commit, and where its entry goes.
type PendingAudit = (
    (AuditEvent, Bound),
    tokio::sync::oneshot::Sender<Result<Option<AuditEntry>, StoreError>>,
);

/// A mutex's contents; a panic in an earlier holder rolled its transaction back when it
/// unwound, so what it guards is still usable.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answer the appends of one group commit: each its entry, or all the error that rolled the
/// batch back.
fn answer_audit(
    senders: Vec<tokio::sync::oneshot::Sender<Result<Option<AuditEntry>, StoreError>>>,
    result: Result<Vec<Option<AuditEntry>>, StoreError>,
) {
    match result {
        Ok(entries) => {
            for (sender, entry) in senders.into_iter().zip(entries) {
                let _ = sender.send(Ok(entry));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for sender in senders {
                let _ = sender.send(Err(StoreError::Database {
                    op: "append_audit",
                    message: message.clone(),
                }));
            }
        }
    }
}

/// Records the single use of a challenge; a row back when this call recorded it.
const MARK_USED: &str = "INSERT INTO challenges(session_key, nonce, tee, hash, issued_ms,
        expires_ms, used) VALUES ($1, '', $2, $3, $4, $5, true)
    ON CONFLICT (session_key) DO NOTHING RETURNING 1";

/// [`MARK_USED`]'s parameters.
fn mark_params<'a>(
    key: &'a String,
    ch: &'a Challenge,
    hash: &'a &'static str,
    retain: &'a i64,
) -> [&'a (dyn ToSql + Sync); 5] {
    [key, &ch.tee, hash, &ch.issued_ms, retain]
}

/// Records a session's attestation, once: a session is never replaced.
const PUT_SESSION: &str = "INSERT INTO sessions(session_key, tee, tee_pubkey, token, claims,
        evidence_digest, attested_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (session_key) DO NOTHING";

const SECRET_COLUMNS: &str =
    "resource, version, policy_digest, kek_id, wrapped_key, nonce, ciphertext, created_ms, origin";

fn row_to_secret(r: &Row, op: &'static str) -> Result<StoredSecret, StoreError> {
    let resource: String = get(r, 0, op)?;
    let version: i64 = get(r, 1, op)?;
    let policy_digest: String = get(r, 2, op)?;
    let nonce: Vec<u8> = get(r, 5, op)?;
    Ok(NewSecretVersion {
        resource: ResourcePath::parse(&resource).map_err(|_| StoreError::Corrupt {
            field: "secrets.resource",
        })?,
        version: to_u64(version, "secrets.version")?,
        policy_digest: PolicyDigest::parse(&policy_digest).map_err(|_| StoreError::Corrupt {
            field: "secrets.policy_digest",
        })?,
        sealed: SealedSecret {
            kek_id: get(r, 3, op)?,
            wrapped_key: get(r, 4, op)?,
            nonce: nonce
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt {
                    field: "secrets.nonce",
                })?,
            ciphertext: get(r, 6, op)?,
        },
        created_ms: get(r, 7, op)?,
        origin: get(r, 8, op)?,
    })
}

fn row_to_audit(r: &Row, op: &'static str) -> Result<AuditEntry, StoreError> {
    let seq = to_u64(get(r, 0, op)?, "audit.seq")?;
    let altered = |field| AuditChainError::Malformed { seq, field };
    // Text longer than the broker writes in its column is the entry's damage, as on SQLite
    // (see `audit_column_max`).
    let owned = |field: &'static str, t: &str| {
        if t.len() > super::audit_column_max(field) {
            Err(altered(field))
        } else {
            Ok(t.to_owned())
        }
    };
    let text = |idx, field| -> Result<String, StoreError> { Ok(owned(field, get(r, idx, op)?)?) };
    let optional = |idx, field| -> Result<Option<String>, StoreError> {
        let v: Option<&str> = get(r, idx, op)?;
        Ok(v.map(|t| owned(field, t)).transpose()?)
    };
    let action = text(3, "action")?;
    let verdict = text(7, "verdict")?;
    Ok(AuditEntry {
        seq,
        event: AuditEvent {
            time_ms: get(r, 1, op)?,
            actor: text(2, "actor")?,
            action: AuditAction::from_name(&action).ok_or(altered("action"))?,
            resource: optional(4, "resource")?,
            evidence_digest: optional(5, "evidence_digest")?,
            policy_digest: optional(6, "policy_digest")?,
            verdict: AuditVerdict::from_name(&verdict).ok_or(altered("verdict"))?,
            reason: text(8, "reason")?,
        },
        prev_hash: text(9, "prev_hash")?,
        hash: text(10, "hash")?,
    })
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn put_policy(&self, text: &str, now_ms: i64) -> Result<PolicyDigest, StoreError> {
        let digest = PolicyDigest::of(text.as_bytes());
        self.execute(
            "put_policy",
            "INSERT INTO policies(digest, text, created_ms) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET text = excluded.text
             WHERE policies.text IS DISTINCT FROM excluded.text",
            &[&digest.as_str(), &text, &now_ms],
        )
        .await?;
        Ok(digest)
    }

    async fn get_policy(&self, digest: &PolicyDigest) -> Result<Option<String>, StoreError> {
        const OP: &str = "get_policy";
        self.query_opt(
            OP,
            "SELECT text FROM policies WHERE digest = $1",
            &[&digest.as_str()],
        )
        .await?
        .map(|r| get(&r, 0, OP))
        .transpose()
    }

    async fn set_repo_policy(
        &self,
        repo: &str,
        policy: Option<&RepoPolicy>,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        const OP: &str = "set_repo_policy";
        crate::resource::check_repo(repo)?;
        let mut c = self.client(OP).await?;
        let tx = c.transaction().await.map_err(db(OP))?;
        match policy {
            Some(p) => {
                tx.execute(
                    "INSERT INTO repo_policies(repo, digest, updated_ms, kek_id, mac)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (repo) DO UPDATE SET digest = excluded.digest,
                     updated_ms = excluded.updated_ms, kek_id = excluded.kek_id,
                     mac = excluded.mac",
                    &[&repo, &p.digest.as_str(), &now_ms, &p.kek_id, &p.mac],
                )
                .await
            }
            None => {
                tx.execute("DELETE FROM repo_policies WHERE repo = $1", &[&repo])
                    .await
            }
        }
        .map_err(db(OP))?;
        append_chain(&tx, self.audit_lock, vec![Some(event)]).await?;
        tx.commit().await.map_err(db(OP))
    }

    async fn repo_policy(&self, repo: &str) -> Result<Option<RepoPolicy>, StoreError> {
        const OP: &str = "repo_policy";
        self.query_opt(
            OP,
            "SELECT digest, kek_id, mac FROM repo_policies WHERE repo = $1",
            &[&repo],
        )
        .await?
        .map(|row| repo_policy_of(&row, 0, OP))
        .transpose()
    }

    async fn repo_policies_not_under(
        &self,
        kek_id: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Option<RepoPolicy>)>, StoreError> {
        const OP: &str = "repo_policies_not_under";
        let rows = self
            .query(
                OP,
                "SELECT repo, digest, kek_id, mac FROM repo_policies
                 WHERE kek_id <> $1 AND repo COLLATE \"C\" > $2
                 ORDER BY repo COLLATE \"C\" LIMIT $3",
                &[&kek_id, &after, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((get(r, 0, OP)?, repo_policy_of(r, 1, OP).ok())))
            .collect()
    }

    async fn replace_repo_policy(
        &self,
        repo: &str,
        old: &RepoPolicy,
        new: &RepoPolicy,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "replace_repo_policy",
                "UPDATE repo_policies SET digest = $1, kek_id = $2, mac = $3
                 WHERE repo = $4 AND digest = $5 AND kek_id = $6 AND mac = $7",
                &[
                    &new.digest.as_str(),
                    &new.kek_id,
                    &new.mac,
                    &repo,
                    &old.digest.as_str(),
                    &old.kek_id,
                    &old.mac,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn next_version(&self, resource: &ResourcePath) -> Result<u64, StoreError> {
        const OP: &str = "next_version";
        let rows = self
            .query(
                OP,
                "INSERT INTO version_counters(resource, last_version) VALUES ($1, 1)
                 ON CONFLICT (resource) DO UPDATE
                     SET last_version = version_counters.last_version + 1
                 RETURNING last_version",
                &[&resource.to_string()],
            )
            .await?;
        let row = rows.first().ok_or(StoreError::Database {
            op: OP,
            message: "the counter upsert returned no row".into(),
        })?;
        to_u64(get(row, 0, OP)?, "version_counters.last_version")
    }

    async fn insert_version(
        &self,
        v: &NewSecretVersion,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        const OP: &str = "insert_version";
        let resource = v.resource.to_string();
        let version = to_i64(v.version, "secrets.version")?;
        let mut c = self.client(OP).await?;
        let tx = c.transaction().await.map_err(db(OP))?;
        if let Some(origin) = &v.origin {
            // The audit chain's lock first (`append_chain` takes it again, which is a no-op):
            // held until commit by every insert, it orders concurrent imports, and a statement
            // after it sees what the one before committed.
            take_audit_lock(&tx, self.audit_lock, OP).await?;
            let newest = tx
                .prepare_cached(
                    "SELECT version, origin, policy_digest FROM secrets
                     WHERE resource = $1 AND version <> $2 ORDER BY version DESC LIMIT 1",
                )
                .await
                .map_err(db(OP))?;
            let newest = tx
                .query_opt(&newest, &[&resource, &version])
                .await
                .map_err(db(OP))?;
            if let Some(row) = newest {
                let held: i64 = get(&row, 0, OP)?;
                let held_origin: Option<String> = get(&row, 1, OP)?;
                let held_policy: String = get(&row, 2, OP)?;
                if super::holds_import(
                    held_origin.as_deref(),
                    &held_policy,
                    origin,
                    v.policy_digest.as_str(),
                ) {
                    return Err(StoreError::SameOrigin {
                        resource,
                        version: to_u64(held, "secrets.version")?,
                    });
                }
            }
        }
        let n = tx
            .execute(
                "INSERT INTO secrets(resource, repo, version, policy_digest, kek_id,
                    wrapped_key, nonce, ciphertext, created_ms, origin)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (resource, version) DO NOTHING",
                &[
                    &resource,
                    &v.resource.repo(),
                    &version,
                    &v.policy_digest.as_str(),
                    &v.sealed.kek_id,
                    &v.sealed.wrapped_key,
                    &v.sealed.nonce.as_slice(),
                    &v.sealed.ciphertext,
                    &v.created_ms,
                    &v.origin,
                ],
            )
            .await
            .map_err(db(OP))?;
        if n == 0 {
            // Dropping `tx` rolls it back.
            return Err(StoreError::VersionExists {
                resource,
                version: v.version,
            });
        }
        append_chain(&tx, self.audit_lock, vec![Some(event)]).await?;
        tx.commit().await.map_err(db(OP))
    }

    async fn get_version(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
    ) -> Result<Option<StoredSecret>, StoreError> {
        // The policy's text comes along (one join; releases need it, this caller does not).
        Ok(self
            .get_version_and_policy(resource, version)
            .await?
            .map(|(rec, _)| rec))
    }

    async fn get_version_and_policy(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
    ) -> Result<Option<(StoredSecret, Option<String>)>, StoreError> {
        // One round trip: the version's row and its policy's text.
        const OP: &str = "get_version";
        const SELECT: &str = "SELECT s.resource, s.version, s.policy_digest, s.kek_id,
            s.wrapped_key, s.nonce, s.ciphertext, s.created_ms, s.origin, p.text
            FROM secrets s LEFT JOIN policies p ON p.digest = s.policy_digest";
        let r = resource.to_string();
        let row = match version {
            Some(v) => {
                let v = to_i64(v, "secrets.version")?;
                self.query_opt(
                    OP,
                    &format!("{SELECT} WHERE s.resource = $1 AND s.version = $2"),
                    &[&r, &v],
                )
                .await?
            }
            None => {
                self.query_opt(
                    OP,
                    &format!("{SELECT} WHERE s.resource = $1 ORDER BY s.version DESC LIMIT 1"),
                    &[&r],
                )
                .await?
            }
        };
        row.map(|row| Ok((row_to_secret(&row, OP)?, get(&row, 9, OP)?)))
            .transpose()
    }

    async fn delete_versions(
        &self,
        resource: &ResourcePath,
        version: Option<u64>,
        mut event: AuditEvent,
    ) -> Result<Vec<u64>, StoreError> {
        const OP: &str = "delete_versions";
        let version = version.map(|v| to_i64(v, "secrets.version")).transpose()?;
        let mut c = self.client(OP).await?;
        let tx = c.transaction().await.map_err(db(OP))?;
        let rows = tx
            .query(
                "DELETE FROM secrets WHERE resource = $1 AND ($2::BIGINT IS NULL OR version = $2)
                 RETURNING version",
                &[&resource.to_string(), &version],
            )
            .await
            .map_err(db(OP))?;
        let mut out = rows
            .iter()
            .map(|r| to_u64(get(r, 0, OP)?, "secrets.version"))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_unstable();
        if out.is_empty() {
            return Ok(out);
        }
        event.reason = super::deletion_reason(&out);
        append_chain(&tx, self.audit_lock, vec![Some(event)]).await?;
        tx.commit().await.map_err(db(OP))?;
        Ok(out)
    }

    async fn list_versions(
        &self,
        repos: Option<&[String]>,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<SecretVersionInfo>, StoreError> {
        const OP: &str = "list_versions";
        // COLLATE "C": byte order, as the SQLite store sorts, whatever the database's locale,
        // in the page's start as in its order (so that pages neither skip nor repeat rows), and
        // as the `secrets_listing` index holds it: a page is read from its start in that index.
        let limit = i64::from(limit);
        let rows = match after {
            None => {
                self.query(
                    OP,
                    "SELECT resource, version, policy_digest, created_ms, kek_id FROM secrets
                     WHERE $1::TEXT[] IS NULL OR repo = ANY($1)
                     ORDER BY resource COLLATE \"C\", version LIMIT $2",
                    &[&repos, &limit],
                )
                .await?
            }
            Some((resource, version)) => {
                let version = i64::try_from(version).unwrap_or(i64::MAX);
                self.query(
                    OP,
                    "SELECT resource, version, policy_digest, created_ms, kek_id FROM secrets
                     WHERE (resource COLLATE \"C\", version) > ($2::TEXT COLLATE \"C\", $3)
                       AND ($1::TEXT[] IS NULL OR repo = ANY($1))
                     ORDER BY resource COLLATE \"C\", version LIMIT $4",
                    &[&repos, &resource, &version, &limit],
                )
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                let pd: String = get(r, 2, OP)?;
                Ok(SecretVersionInfo {
                    resource: get(r, 0, OP)?,
                    version: to_u64(get(r, 1, OP)?, "secrets.version")?,
                    policy_digest: PolicyDigest::parse(&pd).map_err(|_| StoreError::Corrupt {
                        field: "secrets.policy_digest",
                    })?,
                    created_ms: get(r, 3, OP)?,
                    kek_id: get(r, 4, OP)?,
                })
            })
            .collect()
    }

    async fn versions_not_wrapped_by(
        &self,
        kek_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredSecret>, StoreError> {
        const OP: &str = "versions_not_wrapped_by";
        let rows = self
            .query(
                OP,
                &format!(
                    "SELECT {SECRET_COLUMNS} FROM secrets WHERE kek_id <> $1
                     ORDER BY resource COLLATE \"C\", version LIMIT $2"
                ),
                &[&kek_id, &i64::from(limit)],
            )
            .await?;
        rows.iter().map(|r| row_to_secret(r, OP)).collect()
    }

    async fn replace_wrapping(
        &self,
        resource: &ResourcePath,
        version: u64,
        old_kek_id: &str,
        new: &SealedSecret,
    ) -> Result<bool, StoreError> {
        let v = to_i64(version, "secrets.version")?;
        // The data ciphertext and nonce must be the ones the new wrapping was made for.
        let n = self
            .execute(
                "replace_wrapping",
                "UPDATE secrets SET kek_id = $1, wrapped_key = $2
                 WHERE resource = $3 AND version = $4 AND kek_id = $5
                   AND nonce = $6 AND ciphertext = $7",
                &[
                    &new.kek_id,
                    &new.wrapped_key,
                    &resource.to_string(),
                    &v,
                    &old_kek_id,
                    &new.nonce.as_slice(),
                    &new.ciphertext,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn key_check(&self) -> Result<Option<KeyCheck>, StoreError> {
        const OP: &str = "key_check";
        self.query_opt(OP, "SELECT kek_id, mac FROM key_check", &[])
            .await?
            .map(|row| key_check_of(&row, OP))
            .transpose()
    }

    async fn set_key_check_once(&self, check: &KeyCheck) -> Result<KeyCheck, StoreError> {
        const OP: &str = "set_key_check_once";
        self.execute(
            OP,
            "INSERT INTO key_check(kek_id, mac) VALUES ($1, $2) ON CONFLICT (one) DO NOTHING",
            &[&check.kek_id, &check.mac],
        )
        .await?;
        // A statement of its own: at READ COMMITTED it sees the row of a replica whose insert
        // committed while this one waited on it (the insert's own snapshot does not).
        let row = self
            .query_opt(OP, "SELECT kek_id, mac FROM key_check", &[])
            .await?
            .ok_or(StoreError::Corrupt { field: "key_check" })?;
        key_check_of(&row, OP)
    }

    async fn replace_key_check(&self, old: &KeyCheck, new: &KeyCheck) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "replace_key_check",
                "UPDATE key_check SET kek_id = $1, mac = $2 WHERE kek_id = $3 AND mac = $4",
                &[&new.kek_id, &new.mac, &old.kek_id, &old.mac],
            )
            .await?;
        Ok(n == 1)
    }

    async fn sealed_kek_ids(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        const OP: &str = "sealed_kek_ids";
        // The secrets' ids by skipping along their index (one lookup per distinct id, at most
        // `limit`: the recursion runs only as far as the outer query reads).
        let rows = self
            .query(
                OP,
                "WITH RECURSIVE k(id) AS (
                     SELECT (SELECT min(kek_id) FROM secrets)
                     UNION ALL
                     SELECT (SELECT min(kek_id) FROM secrets WHERE kek_id > k.id)
                         FROM k WHERE k.id IS NOT NULL)
                 SELECT id FROM k WHERE id IS NOT NULL ORDER BY 1 LIMIT $1",
                &[&i64::from(limit)],
            )
            .await?;
        rows.iter().map(|r| get(r, 0, OP)).collect()
    }

    fn identity(&self) -> &[u8] {
        &self.identity
    }

    fn shared_by_replicas(&self) -> bool {
        true
    }

    async fn use_challenge(&self, ch: &Challenge) -> Result<bool, StoreError> {
        let key = ch.session_id.storage_key();
        let (n, _) = self
            .run_light(
                "use_challenge",
                MARK_USED,
                &mark_params(&key, ch, &ch.hash.name(), &ch.retain_until_ms()),
            )
            .await?;
        Ok(n == 1)
    }

    async fn put_session_audited(
        &self,
        ch: &Challenge,
        s: &AttestedSession,
        event: AuditEvent,
    ) -> Result<Option<AuditEntry>, StoreError> {
        self.queue_audit(event, Bound::Session(Box::new((ch.clone(), s.clone()))))
            .await
    }

    async fn get_session(
        &self,
        session: &SessionId,
        now_ms: i64,
    ) -> Result<Option<AttestedSession>, StoreError> {
        const OP: &str = "get_session";
        let row = self
            .query_opt(
                OP,
                "SELECT tee, tee_pubkey, token, claims, evidence_digest, attested_ms, expires_ms
                 FROM sessions WHERE session_key = $1 AND expires_ms > $2",
                &[&session.storage_key(), &now_ms],
            )
            .await?;
        row.map(|r| {
            Ok(AttestedSession {
                session_id: session.clone(),
                tee: get(&r, 0, OP)?,
                tee_pubkey: get(&r, 1, OP)?,
                token_digest: get(&r, 2, OP)?,
                claims: get(&r, 3, OP)?,
                evidence_digest: get(&r, 4, OP)?,
                attested_ms: get(&r, 5, OP)?,
                expires_ms: get(&r, 6, OP)?,
            })
        })
        .transpose()
    }

    async fn purge_expired(&self, now_ms: i64, limit: u32) -> Result<u64, StoreError> {
        const OP: &str = "purge_expired";
        let limit = i64::from(limit);
        let rows = self
            .query(
                OP,
                "WITH c AS (DELETE FROM challenges WHERE session_key IN (SELECT session_key \
                     FROM challenges WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2) \
                     RETURNING 1),
                      s AS (DELETE FROM sessions WHERE session_key IN (SELECT session_key \
                     FROM sessions WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2) \
                     RETURNING 1)
                 SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM s)",
                &[&now_ms, &limit],
            )
            .await?;
        let n: i64 = match rows.first() {
            Some(r) => get(r, 0, OP)?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn append_audit(&self, event: AuditEvent) -> Result<AuditEntry, StoreError> {
        // Group commit: queue the event; the task that next gets this process's turn commits
        // everything queued by then in one transaction (one synchronous commit). The flush runs
        // as its own task, so a caller that goes away does not abandon the others' entries.
        // An entry without a session is always written.
        self.queue_audit(event, Bound::Nothing)
            .await?
            .ok_or(StoreError::Worker)
    }

    async fn append_release(
        &self,
        event: AuditEvent,
        basis: &ReleaseBasis,
    ) -> Result<Option<AuditEntry>, StoreError> {
        self.queue_audit(event, Bound::Release(basis.clone())).await
    }

    async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        const OP: &str = "audit_entries";
        let rows = self
            .query(
                OP,
                "SELECT seq, time_ms, actor, action, resource, evidence_digest, policy_digest,
                    verdict, reason, prev_hash, hash
                 FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                // Past the largest sequence number a store can hold: an empty page.
                &[&i64::try_from(after).unwrap_or(i64::MAX), &i64::from(limit)],
            )
            .await?;
        rows.iter().map(|r| row_to_audit(r, OP)).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query("ping", "SELECT 1", &[]).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_the_broker_did_not_read_are_refused() {
        let cfg = |url: &str| url.parse::<tokio_postgres::Config>().unwrap();
        // As the URL reaches the driver after `split_url`: no sslmode left.
        assert!(driver_tls_settings_ok(&cfg("postgres://h/db"), pg_tls::Mode::Plain).is_ok());
        assert!(
            driver_tls_settings_ok(
                &cfg("postgres://h/db?sslnegotiation=direct"),
                pg_tls::Mode::VerifyFull
            )
            .is_ok()
        );
        // An sslmode the driver found: refused in every mode, never overridden.
        for url in [
            "postgres://h/db?sslmode=require",
            "postgres://h/db?sslmode=disable",
        ] {
            for mode in [pg_tls::Mode::Plain, pg_tls::Mode::VerifyFull] {
                assert!(
                    driver_tls_settings_ok(&cfg(url), mode).is_err(),
                    "{url} {mode:?}"
                );
            }
        }
        // Direct TLS negotiation without TLS.
        assert!(
            driver_tls_settings_ok(
                &cfg("postgres://h/db?sslnegotiation=direct"),
                pg_tls::Mode::Plain
            )
            .is_err()
        );
    }

    /// Which hosts a connection without TLS would reach across a network (warned at connect).
    #[test]
    fn remote_hosts_are_told_from_this_machine() {
        let cfg = |url: &str| url.parse::<tokio_postgres::Config>().unwrap();
        for local in [
            "postgres://127.0.0.1/db",
            "postgres://localhost:5432/db",
            "postgres://[::1]:5432/db",
            "postgres://db.example/db?hostaddr=127.0.0.1",
            "postgres:///db?host=/var/run/postgresql",
        ] {
            assert!(remote_tcp_hosts(&cfg(local)).is_empty(), "{local}");
        }
        assert_eq!(
            remote_tcp_hosts(&cfg("postgres://db.example:5432/db")),
            ["db.example"]
        );
        assert_eq!(
            remote_tcp_hosts(&cfg("postgres://10.0.0.5/db")),
            ["10.0.0.5"]
        );
        assert_eq!(
            remote_tcp_hosts(&cfg("postgres://localhost/db?hostaddr=10.0.0.5")),
            ["localhost"]
        );
    }
}
