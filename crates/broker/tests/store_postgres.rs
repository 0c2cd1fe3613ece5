//! The PostgreSQL store against a real server: the shared store behaviours
//! (tests/common/store_behaviours.rs) with independent pools standing in for replicas, plus
//! migrations (concurrent starts, a newer schema refused), broken connections and URL checks.
//!
//! The server comes from `TESSERA_TEST_DATABASE_URL` (`.ci/run` starts one and sets it). When
//! it is unset the tests that need it print a notice and pass, except under CI (`CI` set),
//! where they fail. Each test works in a schema of its own (`search_path` set through the URL's
//! `options`), dropped at the end, so the tests run in parallel.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use common::store_behaviours::{self as behaviours, BY, Backend, NOW, res};
use tessera_broker::binding::HashAlgorithm;
use tessera_broker::seal::{KeyringFile, SecretValue};
use tessera_broker::store::{
    self, Challenge, POSTGRES_SCHEMA_VERSION, PostgresStore, Store, StoreError,
};
use tokio_postgres::NoTls;

const URL_VAR: &str = "TESSERA_TEST_DATABASE_URL";

/// The test server's URL; `None` (after a notice) when unset outside CI.
fn base_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
            assert!(
                !ci,
                "{URL_VAR} is not set, but CI is: the PostgreSQL store tests must run in CI \
                 (.ci/run starts PostgreSQL and exports {URL_VAR})"
            );
            eprintln!(
                "NOTICE: {URL_VAR} is not set; PostgreSQL store test skipped \
                 (set it to postgres://user:password@host:port/db to run it)"
            );
            None
        }
    }
}

/// A fresh, empty schema on the test server: `(base URL, schema, URL selecting the schema)`.
async fn fresh_schema() -> Option<(String, String, String)> {
    let base = base_url()?;
    let mut b = [0u8; 8];
    SystemRandom::new().fill(&mut b).unwrap();
    let schema = format!("tessera_test_{}", hex::encode(b));
    let admin = raw_client(&base).await;
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}&application_name={schema}");
    Some((base, schema, url))
}

async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Drops the schema when the test ends (also when it fails).
struct SchemaGuard {
    base: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((c, conn)) = tokio_postgres::connect(&base, NoTls).await {
                    tokio::spawn(conn);
                    let _ = c
                        .batch_execute(&format!(
                            "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                        ))
                        .await;
                }
            });
        })
        .join();
    }
}

struct Pg {
    url: String,
    store: PostgresStore,
    raw: tokio_postgres::Client,
    keys: KeyringFile,
    _dir: tempfile::TempDir,
    // Last: dropped after the pools above are closed.
    guard: SchemaGuard,
}

async fn env() -> Option<Pg> {
    let (base, schema, url) = fresh_schema().await?;
    let guard = SchemaGuard { base, schema };
    let store = PostgresStore::connect(&url).await.unwrap();
    let raw = raw_client(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyringFile::open_or_create(
        &dir.path().join("kek"),
        tessera_broker::keyfile::Symlinks::Refuse,
    )
    .unwrap();
    Some(Pg {
        url,
        store,
        raw,
        keys,
        _dir: dir,
        guard,
    })
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
}

#[async_trait::async_trait]
impl Backend for Pg {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    async fn another(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::connect(&self.url).await.unwrap())
    }

    fn keys(&self) -> &KeyringFile {
        &self.keys
    }

    async fn exec(&self, sql: &str) -> Result<u64, String> {
        self.raw.execute(sql, &[]).await.map_err(|e| db_message(&e))
    }

    async fn count(&self, sql: &str) -> i64 {
        self.raw.query_one(sql, &[]).await.unwrap().get(0)
    }

    async fn drop_audit_guard(&self) {
        self.raw
            .batch_execute(
                "DROP TRIGGER audit_no_update ON audit; DROP TRIGGER audit_no_delete ON audit;",
            )
            .await
            .unwrap();
    }

    async fn refuse_marked_rows(&self) {
        self.raw
            .batch_execute(
                "CREATE FUNCTION refuse_session() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF NEW.tee = 'refuse' THEN RAISE EXCEPTION 'refused'; END IF;
                     RETURN NEW;
                 END $$;
                 CREATE TRIGGER refuse_session BEFORE INSERT ON sessions
                     FOR EACH ROW EXECUTE FUNCTION refuse_session();
                 CREATE FUNCTION refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF NEW.reason = 'refuse' OR NEW.actor = 'admin:refuse' THEN
                         RAISE EXCEPTION 'refused';
                     END IF;
                     RETURN NEW;
                 END $$;
                 CREATE TRIGGER refuse_entry BEFORE INSERT ON audit
                     FOR EACH ROW EXECUTE FUNCTION refuse_entry();",
            )
            .await
            .unwrap();
    }

    async fn dump(&self) -> Vec<u8> {
        // Every row of every table as PostgreSQL prints it (bytea in hex).
        let mut out = Vec::new();
        for t in [
            "policies",
            "repo_policies",
            "version_counters",
            "secrets",
            "challenges",
            "sessions",
            "audit",
            "schema_version",
        ] {
            let row = self
                .raw
                .query_one(
                    &format!("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM {t} t"),
                    &[],
                )
                .await
                .unwrap();
            out.extend(row.get::<_, String>(0).into_bytes());
        }
        out
    }
}

macro_rules! pg_test {
    ($(#[$m:meta])* $name:ident $(, $arg:expr)*) => {
        $(#[$m])*
        async fn $name() {
            let Some(e) = env().await else { return };
            behaviours::$name(&e $(, $arg)*).await;
        }
    };
}

pg_test!(
    #[tokio::test]
    versions_put_get_pin_delete_list
);
pg_test!(
    #[tokio::test]
    a_store_refuses_a_keyring_it_was_not_made_with
);
pg_test!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    handles_racing_on_an_empty_store_agree_on_one_check
);
pg_test!(
    #[tokio::test]
    a_store_without_a_check_takes_only_a_keyring_that_opens_it
);
pg_test!(
    #[tokio::test]
    a_rotated_store_opens_with_the_rotated_keyring
);
pg_test!(
    #[tokio::test]
    a_keyring_without_the_kek_of_newer_versions_is_refused
);
pg_test!(
    #[tokio::test]
    admin_changes_stand_or_fall_with_their_entries
);
pg_test!(
    #[tokio::test]
    listing_is_in_byte_order
);
pg_test!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    version_numbers_are_unique_under_concurrency
);
pg_test!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    an_import_the_newest_version_holds_inserts_nothing
);
pg_test!(
    #[tokio::test]
    repository_default_policy_and_override
);
pg_test!(
    #[tokio::test]
    a_default_policy_the_broker_did_not_set_is_refused
);
pg_test!(
    #[tokio::test]
    moved_or_repolicied_ciphertexts_do_not_open
);
pg_test!(
    #[tokio::test]
    challenges_are_single_use_and_expire
);
// 64 concurrent consumers of one challenge across two independent pools (two replicas).
pg_test!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_use_of_one_nonce_has_exactly_one_winner,
    2,
    64,
    8
);
pg_test!(
    #[tokio::test]
    sessions_round_trip_and_expire
);
pg_test!(
    #[tokio::test]
    a_release_is_recorded_only_while_its_basis_holds
);
pg_test!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    control_characters_in_audit_text_fail_no_batch
);
// Concurrent appends from two pools (two replicas) form one chain.
pg_test!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    audit_chain_appends_verify_and_tampering_is_named,
    64
);
pg_test!(
    #[tokio::test]
    kek_rotation_rewraps_everything_and_retires_the_old_kek
);
pg_test!(
    #[tokio::test]
    the_probe_answers_over_a_damaged_audit_row
);
pg_test!(
    #[tokio::test]
    an_audit_column_longer_than_the_broker_writes_is_named
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_once_when_replicas_start_together() {
    let Some((base, schema, url)) = fresh_schema().await else {
        return;
    };
    let _guard = SchemaGuard { base, schema };
    let start = Arc::new(tokio::sync::Barrier::new(4));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (url, start) = (url.clone(), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            PostgresStore::connect(&url).await.unwrap()
        }));
    }
    let mut stores = Vec::new();
    for t in tasks {
        stores.push(t.await.unwrap());
    }
    let raw = raw_client(&url).await;
    let rows = raw
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=POSTGRES_SCHEMA_VERSION).collect::<Vec<_>>());
    // Every replica works on the one schema: a put at one is read at the others.
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyringFile::open_or_create(
        &dir.path().join("kek"),
        tessera_broker::keyfile::Symlinks::Refuse,
    )
    .unwrap();
    store::put_secret(
        &stores[0],
        &keys.current(),
        &res("t/key/a"),
        Some("p"),
        &SecretValue::new(b"v".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    for s in &stores[1..] {
        let rec = s.get_version(&res("t/key/a"), None).await.unwrap().unwrap();
        assert_eq!(
            store::open_stored(&keys.current(), &rec).unwrap().expose(),
            b"v"
        );
    }
}

#[tokio::test]
async fn reconnect_and_refuse_a_newer_schema() {
    let Some(e) = env().await else { return };
    let ring = e.keys.current();
    store::put_secret(
        &e.store,
        &ring,
        &res("t/k/a"),
        Some("p"),
        &SecretValue::new(b"x".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    // A second start finds the schema in place and the data there.
    let again = PostgresStore::connect(&e.url).await.unwrap();
    assert_eq!(again.schema(), e.guard.schema);
    let rec = again
        .get_version(&res("t/k/a"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store::open_stored(&ring, &rec).unwrap().expose(), b"x");
    assert_eq!(
        e.count("SELECT count(*) FROM schema_version").await,
        i64::from(POSTGRES_SCHEMA_VERSION)
    );
    // A store identity (which MACs and challenge nonces are bound to) that is empty or longer
    // than any this broker makes is refused as corrupt, not used.
    for id in ["''::bytea", "decode(repeat('ab', 256), 'hex')"] {
        e.exec(&format!("UPDATE store_identity SET id = {id}"))
            .await
            .unwrap();
        assert!(matches!(
            PostgresStore::connect(&e.url).await,
            Err(StoreError::Corrupt {
                field: "store_identity.id"
            })
        ));
    }
    // A database migrated by a newer broker is refused.
    e.exec("INSERT INTO schema_version VALUES (99, 0)")
        .await
        .unwrap();
    assert!(matches!(
        PostgresStore::connect(&e.url).await,
        Err(StoreError::Database { op: "schema", .. })
    ));
}

#[tokio::test]
async fn broken_connections_fail_cleanly_and_are_replaced() {
    let Some(e) = env().await else { return };
    let ch = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    assert!(e.store.use_challenge(&ch).await.unwrap());
    e.store.ping().await.unwrap();
    // Kill every connection of the store's pool, as a server restart does.
    let killed = e
        .count(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = '{}' AND pid <> pg_backend_pid()",
            e.guard.schema
        ))
        .await;
    assert!(killed >= 1, "the store's connections were found");
    // Each later attempt either fails with a database error or gives the true answer, and
    // the pool reconnects: within a few attempts the answer comes.
    let mut answered = false;
    for _ in 0..20 {
        match e.store.use_challenge(&ch).await {
            Ok(false) => {
                answered = true;
                break;
            }
            Ok(true) => panic!("wrong answer after reconnecting: used twice"),
            Err(StoreError::Database { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert!(answered, "the pool did not reconnect");
    // The readiness check answers over the new connections.
    e.store.ping().await.unwrap();
    // Operations fail as database errors when the tables are gone (never a panic).
    e.raw.batch_execute("DROP TABLE challenges").await.unwrap();
    assert!(matches!(
        e.store.use_challenge(&ch).await,
        Err(StoreError::Database {
            op: "use_challenge",
            ..
        })
    ));
}

#[tokio::test]
async fn bad_credentials_and_missing_schema_are_refused_without_leaking() {
    let Some((base, schema, url)) = fresh_schema().await else {
        return;
    };
    let _guard = SchemaGuard {
        base: base.clone(),
        schema: schema.clone(),
    };
    // Wrong password: refused, and the error does not carry the password.
    let cfg: tokio_postgres::Config = url.parse().unwrap();
    let user = cfg.get_user().unwrap();
    let wrong = url.replacen(
        &format!("{user}:"),
        &format!("{user}:WRONG-pass-4c1f%40"),
        1,
    );
    assert_ne!(wrong, url, "the URL carries a password to replace");
    let err = PostgresStore::connect(&wrong).await.unwrap_err();
    assert!(matches!(err, StoreError::Database { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("WRONG-pass"), "{err}");
    // A search_path naming no existing schema: no tables are created anywhere.
    let nowhere = url.replace(&schema, "tessera_no_such_schema");
    let err = PostgresStore::connect(&nowhere).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Database { op: "migrate", .. }),
        "{err}"
    );
    // The Debug form of a store does not show its URL.
    let s = PostgresStore::connect(&url).await.unwrap();
    let dbg = format!("{s:?}");
    assert!(!dbg.contains('@') && !dbg.contains("postgres://"), "{dbg}");
    assert!(dbg.contains(&schema));
}

/// Checks of the URL before any connection: these run without a server.
#[tokio::test]
async fn urls_are_checked() {
    for url in [
        "sqlite:///var/lib/tessera",
        "host=127.0.0.1 user=tessera",
        "postgres://u:p@127.0.0.1/db?sslmode=require",
        "postgres://u:p@127.0.0.1/db?no_such_option=1",
    ] {
        assert!(
            matches!(
                PostgresStore::connect(url).await,
                Err(StoreError::Database { op: "connect", .. })
            ),
            "{url}"
        );
    }
    // Nothing listens on port 1: a database error, promptly, without the password.
    let err = PostgresStore::connect("postgres://u:SECRET-pw@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Database { op: "migrate", .. }),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("SECRET-pw"));
}

/// Server, database or role defaults that would weaken the store (SERIALIZABLE transactions,
/// `synchronous_commit = off`) are overridden on every connection the store opens: its
/// transactions run at READ COMMITTED with synchronous commits, so concurrent appends from two
/// pools still form one chain and a release's entry is on disk when it is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn weakening_server_defaults_are_overridden() {
    let Some((base, schema, url)) = fresh_schema().await else {
        return;
    };
    let _guard = SchemaGuard { base, schema };
    let url = url.replacen(
        "options=-c%20search_path",
        "options=-c%20default_transaction_isolation%3Dserializable\
         %20-c%20synchronous_commit%3Doff%20-c%20search_path",
        1,
    );
    let first = PostgresStore::connect(&url).await.unwrap();
    let raw = raw_client(&url).await;
    let settings = "current_setting('transaction_isolation') || ' ' || \
                    current_setting('synchronous_commit') || ' ' || \
                    current_setting('idle_in_transaction_session_timeout') || ' ' || \
                    current_setting('lock_timeout')";
    // A connection of the same URL outside the store runs with the weakened defaults.
    let row = raw
        .query_one(&format!("SELECT {settings}"), &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "serializable off 0 0");
    raw.batch_execute(&format!(
        "CREATE TABLE seen (setting text NOT NULL);
         CREATE FUNCTION note_settings() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO seen VALUES ({settings}); RETURN NEW; END $$;
         CREATE TRIGGER note_settings BEFORE INSERT ON audit
             FOR EACH ROW EXECUTE FUNCTION note_settings();"
    ))
    .await
    .unwrap();
    let stores = [
        Arc::new(first),
        Arc::new(PostgresStore::connect(&url).await.unwrap()),
    ];
    let mut tasks = Vec::new();
    for i in 0..64_i64 {
        let s = Arc::clone(&stores[usize::try_from(i % 2).unwrap()]);
        tasks.push(tokio::spawn(
            async move { s.append_audit(put_event(i)).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        store::verify_audit_chain(stores[0].as_ref()).await.unwrap(),
        64
    );
    let seen: Vec<String> = raw
        .query("SELECT DISTINCT setting FROM seen", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Unbounded waits (the server's default) are bounded.
    assert_eq!(seen, ["read committed on 1min 30s"]);
}

/// Someone with the database's privileges removes what keeps the audit table append-only (a
/// trigger dropped, one disabled, the function made to let changes through): a broker's next
/// start puts it all back, as the SQLite store does at every open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_restores_the_audit_guard() {
    let Some(e) = env().await else {
        return;
    };
    // An intact guard is left as it is: neither the function nor a trigger is written again.
    let written = "SELECT string_agg(xmin::text || ':' || oid::text, ',' ORDER BY oid) FROM (
                       SELECT xmin, oid FROM pg_proc WHERE proname = 'audit_append_only'
                           AND pronamespace = current_schema()::regnamespace
                       UNION ALL
                       SELECT xmin, oid FROM pg_trigger WHERE tgrelid = 'audit'::regclass
                   ) w";
    let before: String = e.raw.query_one(written, &[]).await.unwrap().get(0);
    drop(PostgresStore::connect(&e.url).await.unwrap());
    let after: String = e.raw.query_one(written, &[]).await.unwrap().get(0);
    assert_eq!(before, after);
    assert_eq!(before.split(',').count(), 4, "{before}");
    let refused = |r: Result<u64, tokio_postgres::Error>| {
        let err = r.expect_err("the audit table accepted a change");
        assert!(db_message(&err).contains("append-only"), "{err}");
    };
    e.store.append_audit(put_event(0)).await.unwrap();
    e.raw
        .batch_execute(
            "DROP TRIGGER audit_no_truncate ON audit;
             ALTER TABLE audit DISABLE TRIGGER audit_no_update;
             CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RETURN NULL; END $$;",
        )
        .await
        .unwrap();
    // Unguarded now: an update goes through (to the same value), a delete is dropped in silence.
    let same = "UPDATE audit SET reason = reason";
    assert_eq!(e.raw.execute(same, &[]).await.unwrap(), 1);
    assert_eq!(e.raw.execute("DELETE FROM audit", &[]).await.unwrap(), 0);
    let restarted = PostgresStore::connect(&e.url).await.unwrap();
    refused(e.raw.execute(same, &[]).await);
    refused(e.raw.execute("DELETE FROM audit", &[]).await);
    refused(e.raw.execute("TRUNCATE audit", &[]).await);
    assert_eq!(store::verify_audit_chain(&restarted).await.unwrap(), 1);

    // Triggers with the right names that guard nothing: one with a condition that never holds
    // and a column list, one that calls another function.
    e.raw
        .batch_execute(
            "DROP TRIGGER audit_no_update ON audit;
             CREATE TRIGGER audit_no_update BEFORE UPDATE OF actor ON audit FOR EACH ROW
                 WHEN (false) EXECUTE FUNCTION audit_append_only();
             CREATE FUNCTION let_through() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RETURN NULL; END $$;
             DROP TRIGGER audit_no_delete ON audit;
             CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW
                 EXECUTE FUNCTION let_through();",
        )
        .await
        .unwrap();
    assert_eq!(e.raw.execute(same, &[]).await.unwrap(), 1);
    assert_eq!(e.raw.execute("DELETE FROM audit", &[]).await.unwrap(), 0);
    drop(PostgresStore::connect(&e.url).await.unwrap());
    refused(e.raw.execute(same, &[]).await);
    refused(e.raw.execute("DELETE FROM audit", &[]).await);
}

/// An admin put's audit event at `NOW + i`, by actor `admin:op{i}`.
fn put_event(i: i64) -> tessera_broker::audit::AuditEvent {
    tessera_broker::audit::AuditEvent {
        time_ms: NOW + i,
        actor: format!("admin:op{i}"),
        action: tessera_broker::audit::AuditAction::AdminPut,
        resource: Some("t/key/a".into()),
        evidence_digest: None,
        policy_digest: None,
        verdict: tessera_broker::audit::AuditVerdict::Pass,
        reason: "ok".into(),
    }
}

/// A fresh schema whose URL sets `lock_timeout` to 1 s (an operator's own setting, which the
/// store keeps), and a raw client of it holding the store's advisory lock for `purpose`
/// (`migrate`, `audit`) in an open transaction, as a replica in the middle of that would.
async fn schema_with_lock_held(
    purpose: &str,
) -> Option<(SchemaGuard, String, tokio_postgres::Client)> {
    let (base, schema, url) = fresh_schema().await?;
    let url = url.replacen(
        "options=-c%20search_path",
        "options=-c%20lock_timeout%3D1s%20-c%20search_path",
        1,
    );
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("tessera-broker/{purpose}/{schema}").as_bytes(),
    );
    let key = i64::from_be_bytes(*digest.as_ref().first_chunk::<8>().unwrap());
    let holder = raw_client(&url).await;
    holder
        .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({key})"))
        .await
        .unwrap();
    Some((SchemaGuard { base, schema }, url, holder))
}

/// A replica starting while another migrates waits for it, however long that takes, even with
/// a short `lock_timeout` (1 s here): a start is not refused for a migration in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_waits_for_another_replicas_migration() {
    let Some((_guard, url, migrating)) = schema_with_lock_held("migrate").await else {
        return;
    };
    let start = tokio::spawn({
        let url = url.clone();
        async move { PostgresStore::connect(&url).await }
    });
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        !start.is_finished(),
        "the start did not wait for the migration"
    );
    migrating.batch_execute("ROLLBACK").await.unwrap();
    let store = start.await.unwrap().unwrap();
    store.ping().await.unwrap();
}

/// A replica that holds the audit chain's lock and does not let go (its node lost the network
/// in the middle of an append) does not stall the others' writes for ever: they give up after
/// `lock_timeout` (the store's 30 s, or the operator's own, 1 s here) with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_stuck_replica_times_out() {
    let Some((_guard, url, stuck)) = schema_with_lock_held("audit").await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        store.append_audit(put_event(0)),
    )
    .await
    .expect("the append waited past lock_timeout")
    .unwrap_err();
    assert!(err.to_string().contains("lock timeout"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // Once the stuck transaction ends, appends go on.
    stuck.batch_execute("ROLLBACK").await.unwrap();
    store.append_audit(put_event(0)).await.unwrap();
    assert_eq!(store::verify_audit_chain(&store).await.unwrap(), 1);
}

/// A store of schema version 5 (no key check) gets the `key_check` table when a broker of
/// version 6 connects, empty: a replica with another keyring is refused (the store holds data
/// it cannot open) and records nothing; the keyring the data was sealed with records its check.
/// This is the replica of the review (D2): a KEK file that was not mounted, so a new one.
#[tokio::test]
async fn a_version_5_store_gets_its_key_check_from_the_keyring_that_opens_it() {
    let Some(e) = env().await else { return };
    let ring = e.keys.current();
    store::put_secret(
        &e.store,
        &ring,
        &res("t/key/a"),
        Some("p"),
        &SecretValue::new(b"v".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    // Back to version 5.
    e.exec("DROP TABLE key_check").await.unwrap();
    e.exec("DELETE FROM schema_version WHERE version = 6")
        .await
        .unwrap();
    let replica = PostgresStore::connect(&e.url).await.unwrap();
    assert_eq!(
        e.count("SELECT max(version)::bigint FROM schema_version")
            .await,
        i64::from(POSTGRES_SCHEMA_VERSION)
    );
    assert_eq!(POSTGRES_SCHEMA_VERSION, 6);
    assert_eq!(replica.key_check().await.unwrap(), None);
    let dir = tempfile::tempdir().unwrap();
    let own = KeyringFile::open_or_create(
        &dir.path().join("kek"),
        tessera_broker::keyfile::Symlinks::Refuse,
    )
    .unwrap()
    .current();
    let err = store::check_keyring(&replica, &own).await.unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::KeyCheck(store::KeyCheckError::Unopenable { store_kek, .. })
                if store_kek == ring.active_id().as_str()
        ),
        "{err}"
    );
    assert_eq!(e.count("SELECT count(*) FROM key_check").await, 0);
    let check = store::check_keyring(&e.store, &ring).await.unwrap();
    assert_eq!(check.kek_id, ring.active_id().as_str());
    assert_eq!(replica.key_check().await.unwrap(), Some(check));
    assert!(matches!(
        store::check_keyring(&replica, &own).await,
        Err(StoreError::KeyCheck(store::KeyCheckError::NotHeld { .. }))
    ));
}
