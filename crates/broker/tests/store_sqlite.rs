//! The SQLite store against a real database file in a temporary directory: the shared store
//! behaviours (tests/common/store_behaviours.rs: versions, policies, tampered rows, single use
//! of challenges under concurrency, sessions, the audit chain, KEK rotation) with several
//! connections to one file standing in for several processes, and SQLite's own settings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::store_behaviours::{self as behaviours, BY, Backend, NOW, res};
use tessera_broker::audit::AuditChainError;
use tessera_broker::binding::HashAlgorithm;
use tessera_broker::seal::{Kek, Keyring, KeyringFile, SecretValue};
use tessera_broker::store::{self, AttestedSession, Challenge, SqliteStore, Store, StoreError};

struct Env {
    dir: tempfile::TempDir,
    store: SqliteStore,
    keys: KeyringFile,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("data")).await.unwrap();
    let keys = KeyringFile::open_or_create(
        &dir.path().join("data").join("kek"),
        tessera_broker::keyfile::Symlinks::Refuse,
    )
    .unwrap();
    Env { dir, store, keys }
}

fn raw(e: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(e.store.path()).unwrap()
}

#[async_trait::async_trait]
impl Backend for Env {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    async fn another(&self) -> Arc<dyn Store> {
        Arc::new(
            SqliteStore::open(&self.dir.path().join("data"))
                .await
                .unwrap(),
        )
    }

    fn keys(&self) -> &KeyringFile {
        &self.keys
    }

    async fn exec(&self, sql: &str) -> Result<u64, String> {
        raw(self)
            .execute(sql, [])
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
    }

    async fn count(&self, sql: &str) -> i64 {
        raw(self).query_row(sql, [], |r| r.get(0)).unwrap()
    }

    async fn drop_audit_guard(&self) {
        raw(self)
            .execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            .unwrap();
    }

    async fn refuse_marked_rows(&self) {
        raw(self)
            .execute_batch(
                "CREATE TRIGGER refuse_session BEFORE INSERT ON sessions WHEN NEW.tee = 'refuse'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;
                 CREATE TRIGGER refuse_entry BEFORE INSERT ON audit
                     WHEN NEW.reason = 'refuse' OR NEW.actor = 'admin:refuse'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
    }

    async fn dump(&self) -> Vec<u8> {
        let mut files = std::fs::read(self.store.path()).unwrap();
        if let Ok(wal) = std::fs::read(self.store.path().with_extension("db-wal")) {
            files.extend(wal);
        }
        files
    }
}

#[tokio::test]
async fn versions_put_get_pin_delete_list() {
    behaviours::versions_put_get_pin_delete_list(&env().await).await;
}

#[tokio::test]
async fn admin_changes_stand_or_fall_with_their_entries() {
    behaviours::admin_changes_stand_or_fall_with_their_entries(&env().await).await;
}

#[tokio::test]
async fn listing_is_in_byte_order() {
    behaviours::listing_is_in_byte_order(&env().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn version_numbers_are_unique_under_concurrency() {
    behaviours::version_numbers_are_unique_under_concurrency(&env().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_the_newest_version_holds_inserts_nothing() {
    behaviours::an_import_the_newest_version_holds_inserts_nothing(&env().await).await;
}

#[tokio::test]
async fn repository_default_policy_and_override() {
    behaviours::repository_default_policy_and_override(&env().await).await;
}

#[tokio::test]
async fn a_default_policy_the_broker_did_not_set_is_refused() {
    behaviours::a_default_policy_the_broker_did_not_set_is_refused(&env().await).await;
}

#[tokio::test]
async fn moved_or_repolicied_ciphertexts_do_not_open() {
    behaviours::moved_or_repolicied_ciphertexts_do_not_open(&env().await).await;
}

#[tokio::test]
async fn challenges_are_single_use_and_expire() {
    behaviours::challenges_are_single_use_and_expire(&env().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_use_of_one_nonce_has_exactly_one_winner() {
    // Several independent connections to the same file, as several processes would have.
    behaviours::concurrent_use_of_one_nonce_has_exactly_one_winner(&env().await, 4, 16, 10).await;
}

#[tokio::test]
async fn sessions_round_trip_and_expire() {
    behaviours::sessions_round_trip_and_expire(&env().await).await;
}

#[tokio::test]
async fn a_release_is_recorded_only_while_its_basis_holds() {
    behaviours::a_release_is_recorded_only_while_its_basis_holds(&env().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_characters_in_audit_text_fail_no_batch() {
    behaviours::control_characters_in_audit_text_fail_no_batch(&env().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_chain_appends_verify_and_tampering_is_named() {
    // Enough concurrent appends on two connections that group commits take several at once.
    behaviours::audit_chain_appends_verify_and_tampering_is_named(&env().await, 120).await;
}

/// SQLite keeps any type in any column: a row edited to hold text where the time belongs is
/// that entry's damage, named with its column, and an entry edited before it is named first.
#[tokio::test]
async fn an_audit_row_of_the_wrong_type_is_named() {
    let e = env().await;
    for i in 0..4 {
        e.store.append_audit(behaviours::event(i)).await.unwrap();
    }
    assert_eq!(store::verify_audit_chain(&e.store).await.unwrap(), 4);
    e.drop_audit_guard().await;
    raw(&e)
        .execute_batch("UPDATE audit SET time_ms = 'yesterday' WHERE seq = 3")
        .unwrap();
    let err = store::verify_audit_chain(&e.store).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::AuditChain(AuditChainError::Malformed {
                seq: 3,
                field: "time_ms"
            })
        ),
        "{err:?}"
    );
    raw(&e)
        .execute_batch("UPDATE audit SET actor = x'00ff' WHERE seq = 2")
        .unwrap();
    assert!(matches!(
        store::verify_audit_chain(&e.store).await,
        Err(StoreError::AuditChain(AuditChainError::Malformed {
            seq: 2,
            field: "actor"
        }))
    ));
    raw(&e)
        .execute_batch("UPDATE audit SET reason = 'forged' WHERE seq = 1")
        .unwrap();
    assert!(matches!(
        store::verify_audit_chain(&e.store).await,
        Err(StoreError::AuditChain(AuditChainError::Altered { seq: 1 }))
    ));
}

#[tokio::test]
async fn the_probe_answers_over_a_damaged_audit_row() {
    let e = env().await;
    behaviours::the_probe_answers_over_a_damaged_audit_row(&e).await;
    // Text where SQLite keeps the time: the entry's damage too, not the store's.
    raw(&e)
        .execute_batch("UPDATE audit SET verdict = 'pass', time_ms = 'yesterday' WHERE seq = 1")
        .unwrap();
    assert!(matches!(
        e.store.audit_entries(0, 1).await,
        Err(StoreError::AuditChain(AuditChainError::Malformed {
            seq: 1,
            field: "time_ms"
        }))
    ));
    e.store.ping().await.unwrap();
}

#[tokio::test]
async fn an_audit_column_longer_than_the_broker_writes_is_named() {
    behaviours::an_audit_column_longer_than_the_broker_writes_is_named(&env().await).await;
}

/// A value longer than the connection's length limit (16 MiB; far above anything the broker
/// stores) is refused by SQLite when read, as the database's error, not taken into memory;
/// one well above every stored bound but below the limit still reads.
#[tokio::test]
async fn a_value_past_the_length_limit_is_refused_when_read() {
    let e = env().await;
    let d = e.store.put_policy("version = 1", NOW).await.unwrap();
    let limit = 16 * 1024 * 1024;
    raw(&e)
        .execute(
            "UPDATE policies SET text = CAST(zeroblob(?1) AS TEXT) WHERE digest = ?2",
            rusqlite::params![limit, d.as_str()],
        )
        .unwrap();
    assert_eq!(e.store.get_policy(&d).await.unwrap().unwrap().len(), limit);
    raw(&e)
        .execute(
            "UPDATE policies SET text = CAST(zeroblob(?1) AS TEXT) WHERE digest = ?2",
            rusqlite::params![limit + 1, d.as_str()],
        )
        .unwrap();
    match e.store.get_policy(&d).await {
        Err(StoreError::Database {
            op: "get_policy",
            message,
        }) if message.contains("too big") => {}
        Err(other) => panic!("{other:?}"),
        // (Not the value itself: 16 MiB in the test's output.)
        Ok(v) => panic!("read {} bytes", v.map_or(0, |t| t.len())),
    }
    // An audit row too: the read fails as the database's error, and the store goes on.
    e.store.append_audit(behaviours::event(0)).await.unwrap();
    e.drop_audit_guard().await;
    raw(&e)
        .execute(
            "UPDATE audit SET reason = zeroblob(?1) WHERE seq = 1",
            rusqlite::params![limit + 1],
        )
        .unwrap();
    match store::verify_audit_chain(&e.store).await {
        Err(StoreError::Database { message, .. }) if message.contains("too big") => {}
        other => panic!("{:?}", other.map_err(|e| e.to_string())),
    }
    e.store.ping().await.unwrap();
}

#[tokio::test]
async fn a_store_refuses_a_keyring_it_was_not_made_with() {
    behaviours::a_store_refuses_a_keyring_it_was_not_made_with(&env().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handles_racing_on_an_empty_store_agree_on_one_check() {
    behaviours::handles_racing_on_an_empty_store_agree_on_one_check(&env().await).await;
}

#[tokio::test]
async fn a_store_without_a_check_takes_only_a_keyring_that_opens_it() {
    behaviours::a_store_without_a_check_takes_only_a_keyring_that_opens_it(&env().await).await;
}

#[tokio::test]
async fn a_rotated_store_opens_with_the_rotated_keyring() {
    behaviours::a_rotated_store_opens_with_the_rotated_keyring(&env().await).await;
}

#[tokio::test]
async fn a_keyring_without_the_kek_of_newer_versions_is_refused() {
    behaviours::a_keyring_without_the_kek_of_newer_versions_is_refused(&env().await).await;
}

/// A store of schema version 4 (no key check) gets the `key_check` table when opened, empty:
/// a keyring that cannot open what it holds (a KEK file made anew beside it) is refused and
/// records nothing; the keyring its data was sealed with records its check.
#[tokio::test]
async fn a_version_4_store_gets_its_key_check_from_the_keyring_that_opens_it() {
    let e = env().await;
    let path = e.dir.path().join("data");
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
    drop(e.store);
    // Back to version 4: no key check table.
    let c = rusqlite::Connection::open(path.join(store::DB_FILE)).unwrap();
    c.execute_batch(
        "DROP TABLE key_check;
         UPDATE meta SET value = 4 WHERE key = 'schema_version';",
    )
    .unwrap();
    // Read only (`tessera audit verify --data-dir`), a version-4 store reads as it is: its
    // audit chain verifies, and nothing is migrated.
    let read_only = SqliteStore::open_read_only_blocking(&path).unwrap();
    store::verify_audit_chain(&read_only).await.unwrap();
    drop(read_only);
    assert_eq!(schema_version(&c), 4);
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(schema_version(&c), 5);
    assert_eq!(again.key_check().await.unwrap(), None);
    let other = Keyring::new(Kek::generate().unwrap());
    let err = store::check_keyring(&again, &other).await.unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::KeyCheck(store::KeyCheckError::Unopenable { store_kek, .. })
                if store_kek == ring.active_id().as_str()
        ),
        "{err}"
    );
    assert_eq!(again.key_check().await.unwrap(), None);
    let check = store::check_keyring(&again, &ring).await.unwrap();
    assert_eq!(check.kek_id, ring.active_id().as_str());
    // Opened again, the check stays, and the other keyring is still refused.
    drop(again);
    let third = SqliteStore::open(&path).await.unwrap();
    assert_eq!(schema_version(&c), 5);
    assert_eq!(third.key_check().await.unwrap(), Some(check));
    assert!(matches!(
        store::check_keyring(&third, &other).await,
        Err(StoreError::KeyCheck(store::KeyCheckError::NotHeld { .. }))
    ));
}

#[tokio::test]
async fn kek_rotation_rewraps_everything_and_retires_the_old_kek() {
    behaviours::kek_rotation_rewraps_everything_and_retires_the_old_kek(&env().await).await;
}

#[tokio::test]
async fn durable_settings_and_reopen() {
    let e = env().await;
    let c = raw(&e);
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
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
    let path = e.dir.path().join("data");
    drop(e.store);
    let again = SqliteStore::open(&path).await.unwrap();
    let rec = again
        .get_version(&res("t/k/a"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store::open_stored(&ring, &rec).unwrap().expose(), b"x");
    // A database from a future schema is refused.
    c.execute(
        "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    assert!(matches!(
        SqliteStore::open(&path).await,
        Err(StoreError::Database { op: "schema", .. })
    ));
}

#[test]
fn debug_output_hides_session_ids_and_tokens() {
    let id = Challenge::generate("snp", HashAlgorithm::Sha384, NOW)
        .unwrap()
        .session_id;
    let s = AttestedSession {
        session_id: id.clone(),
        tee: "snp".into(),
        tee_pubkey: "{}".into(),
        token_digest: "TOKEN-SHOULD-NOT-SHOW".into(),
        claims: "{}".into(),
        evidence_digest: "d".into(),
        attested_ms: 0,
        expires_ms: 1,
    };
    let dbg = format!("{s:?} {id:?}");
    assert!(!dbg.contains("TOKEN-SHOULD-NOT-SHOW"));
    assert!(!dbg.contains(id.as_str()));
}

#[test]
fn nonce_comparison() {
    let keyring = Keyring::new(Kek::generate().unwrap());
    let kek = keyring.active().unwrap();
    let ch = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    let other = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    let store = b"this store";
    let nonce = ch.nonce(kek, store).unwrap();
    assert!(ch.nonce_matches(&keyring, store, &nonce, NOW));
    assert!(!ch.nonce_matches(&keyring, store, &other.nonce(kek, store).unwrap(), NOW));
    assert!(!ch.nonce_matches(&keyring, store, "", NOW));
    assert!(!ch.nonce_matches(&keyring, store, &nonce[..10], NOW));
    // Under another KEK, or for another store, the same session id has another nonce.
    let elsewhere = Keyring::new(Kek::generate().unwrap());
    assert!(!ch.nonce_matches(&elsewhere, store, &nonce, NOW));
    assert!(!ch.nonce_matches(&keyring, b"another store", &nonce, NOW));
}

#[tokio::test]
async fn each_store_has_its_own_identity_and_keeps_it() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = SqliteStore::open(one.path()).await.unwrap();
    let b = SqliteStore::open(two.path()).await.unwrap();
    assert_eq!(a.identity().len(), 8);
    assert_ne!(a.identity(), b.identity());
    let kept = a.identity().to_vec();
    drop(a);
    let again = SqliteStore::open(one.path()).await.unwrap();
    assert_eq!(again.identity(), &kept[..], "reopened, the same store");
}

/// A store of schema version 1 (keys without the issue time in front) is brought to 2 when
/// opened: a challenge answered before the upgrade is still refused after it, and the sessions,
/// which cannot be rekeyed, are gone (their guests attest again).
#[tokio::test]
async fn a_version_1_store_is_migrated_and_used_challenges_stay_used() {
    let e = env().await;
    let path = e.dir.path().join("data");
    let used = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    let attested = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    assert!(e.store.use_challenge(&used).await.unwrap());
    let session = AttestedSession {
        session_id: attested.session_id.clone(),
        tee: "snp".into(),
        tee_pubkey: "{}".into(),
        token_digest: store::token_digest("t"),
        claims: "{}".into(),
        evidence_digest: "d".into(),
        attested_ms: NOW,
        expires_ms: NOW + 300_000,
    };
    let ev = tessera_broker::audit::AuditEvent {
        time_ms: NOW,
        actor: "guest".into(),
        action: tessera_broker::audit::AuditAction::Attest,
        resource: None,
        evidence_digest: None,
        policy_digest: None,
        verdict: tessera_broker::audit::AuditVerdict::Pass,
        reason: "r".into(),
    };
    assert!(
        e.store
            .put_session_audited(&attested, &session, ev)
            .await
            .unwrap()
            .is_some()
    );
    drop(e.store);
    // Back to version 1: the keys as that version wrote them (the digest alone).
    let c = rusqlite::Connection::open(path.join(store::DB_FILE)).unwrap();
    let key = used.session_id.storage_key();
    assert_eq!(
        c.execute(
            "UPDATE challenges SET session_key = substr(session_key, 17)",
            []
        )
        .unwrap(),
        2
    );
    c.execute(
        "UPDATE sessions SET session_key = substr(session_key, 17)",
        [],
    )
    .unwrap();
    c.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'", [])
        .unwrap();
    let old: i64 = c
        .query_row(
            "SELECT count(*) FROM challenges WHERE session_key = ?1",
            [&key],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 1, "stored as version 1 did");

    let again = SqliteStore::open(&path).await.unwrap();
    assert!(
        !again.use_challenge(&used).await.unwrap(),
        "a challenge used before the upgrade is refused after it"
    );
    assert!(
        again
            .get_session(&attested.session_id, NOW)
            .await
            .unwrap()
            .is_none()
    );
    let (version, sessions): (i64, i64) = c
        .query_row(
            "SELECT (SELECT value FROM meta WHERE key = 'schema_version'),
                    (SELECT count(*) FROM sessions)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, sessions), (5, 0));
    // A broker of version 1 still running on the file would insert under the old keys: refused.
    let old_insert = c.execute(
        "INSERT INTO challenges(session_key, nonce, tee, hash, issued_ms, expires_ms, used)
         VALUES (?1, '', 'snp', 'sha384', 0, 0, 1)",
        [&key],
    );
    assert!(old_insert.is_err(), "a version-1 key is refused");
    // Opened again, nothing more changes (the migration runs once).
    drop(again);
    let third = SqliteStore::open(&path).await.unwrap();
    assert!(!third.use_challenge(&used).await.unwrap());
}

/// The schema version a store file records.
fn schema_version(c: &rusqlite::Connection) -> i64 {
    c.query_row(
        "SELECT value FROM meta WHERE key = 'schema_version'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// How many of `names` `table` has as columns.
fn columns_of(c: &rusqlite::Connection, table: &str, names: &[&str]) -> usize {
    names
        .iter()
        .filter(|name| {
            c.query_row(
                "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
                [table, **name],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
                == 1
        })
        .count()
}

/// A store of schema version 3 (repository defaults without a MAC) gets the columns when
/// opened; a default set before has none, so a put naming no policy is refused until an admin
/// sets the default again.
#[tokio::test]
async fn a_version_3_store_gets_macs_for_repository_defaults() {
    let e = env().await;
    let path = e.dir.path().join("data");
    let d = e.store.put_policy("p", NOW).await.unwrap();
    let set =
        store::RepoPolicy::new(&e.keys.current(), e.store.identity(), "t", d.clone()).unwrap();
    let ev = tessera_broker::audit::AuditEvent {
        time_ms: NOW,
        actor: "admin:test".into(),
        action: tessera_broker::audit::AuditAction::AdminPolicy,
        resource: Some("t".into()),
        evidence_digest: None,
        policy_digest: None,
        verdict: tessera_broker::audit::AuditVerdict::Pass,
        reason: String::new(),
    };
    e.store
        .set_repo_policy("t", Some(&set), NOW, ev.clone())
        .await
        .unwrap();
    drop(e.store);
    // Back to version 3: the table as that version made it.
    let c = rusqlite::Connection::open(path.join(store::DB_FILE)).unwrap();
    c.execute_batch(
        "ALTER TABLE repo_policies DROP COLUMN kek_id;
         ALTER TABLE repo_policies DROP COLUMN mac;
         UPDATE meta SET value = 3 WHERE key = 'schema_version';",
    )
    .unwrap();
    let columns = |c: &rusqlite::Connection| columns_of(c, "repo_policies", &["kek_id", "mac"]);
    assert_eq!(columns(&c), 0);

    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(columns(&c), 2);
    assert_eq!(schema_version(&c), 5);
    let old = again.repo_policy("t").await.unwrap().unwrap();
    assert_eq!(
        (old.digest.clone(), old.kek_id.as_str(), old.mac.as_str()),
        (d.clone(), "", "")
    );
    let r = res("t/key/x");
    let v = SecretValue::new(b"x".to_vec());
    let err = store::put_secret(&again, &e.keys.current(), &r, None, &v, NOW, BY)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RepoPolicyUnauthenticated { .. }),
        "{err}"
    );
    assert!(again.get_version(&r, None).await.unwrap().is_none());
    again
        .set_repo_policy("t", Some(&set), NOW, ev)
        .await
        .unwrap();
    let put = store::put_secret(&again, &e.keys.current(), &r, None, &v, NOW, BY)
        .await
        .unwrap();
    assert_eq!(put.policy_digest, d);
    // Opened again, nothing more changes.
    drop(again);
    SqliteStore::open(&path).await.unwrap();
    assert_eq!(columns(&c), 2);
}

/// A store of schema version 2 (no `secrets.origin`) gets the column when opened: versions put
/// before read back with no origin, and new ones keep theirs.
#[tokio::test]
async fn a_version_2_store_gets_the_origin_column() {
    let e = env().await;
    let path = e.dir.path().join("data");
    let before = res("t/key/before");
    store::put_secret(
        &e.store,
        &e.keys.current(),
        &before,
        Some("p"),
        &SecretValue::new(b"v1".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    drop(e.store);
    // Back to version 2: the table as that version made it.
    let c = rusqlite::Connection::open(path.join(store::DB_FILE)).unwrap();
    c.execute_batch(
        "ALTER TABLE secrets DROP COLUMN origin;
         UPDATE meta SET value = 2 WHERE key = 'schema_version';",
    )
    .unwrap();
    let columns = |c: &rusqlite::Connection| columns_of(c, "secrets", &["origin"]);
    assert_eq!(columns(&c), 0);

    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(columns(&c), 1);
    assert_eq!(schema_version(&c), 5);
    let rec = again.get_version(&before, None).await.unwrap().unwrap();
    assert_eq!(rec.origin, None);
    assert_eq!(
        store::open_stored(&e.keys.current(), &rec)
            .unwrap()
            .expose(),
        b"v1"
    );
    let after = res("t/key/after");
    let by = store::ChangeBy {
        origin: Some("0123abcd"),
        ..BY
    };
    store::put_secret(
        &again,
        &e.keys.current(),
        &after,
        Some("p"),
        &SecretValue::new(b"v2".to_vec()),
        NOW,
        by,
    )
    .await
    .unwrap();
    let rec = again.get_version(&after, None).await.unwrap().unwrap();
    assert_eq!(rec.origin.as_deref(), Some("0123abcd"));
    // Opened again, nothing more changes.
    drop(again);
    let third = SqliteStore::open(&path).await.unwrap();
    assert_eq!(columns(&c), 1);
    assert!(third.get_version(&after, None).await.unwrap().is_some());
}

/// Keys start with the issue time, so later challenges file after earlier ones.
#[tokio::test]
async fn keys_are_in_issue_order() {
    let e = env().await;
    let mut issued = Vec::new();
    for i in 0..20 {
        // Issue times out of order, each with a random id.
        let t = NOW + (i * 7919) % 20 * 1000;
        let ch = Challenge::generate("snp", HashAlgorithm::Sha384, t).unwrap();
        assert!(e.store.use_challenge(&ch).await.unwrap());
        issued.push(t);
    }
    issued.sort_unstable();
    let c = raw(&e);
    let mut st = c
        .prepare("SELECT issued_ms FROM challenges ORDER BY session_key")
        .unwrap();
    let in_key_order: Vec<i64> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(in_key_order, issued);
}

/// A store opened to be read (`audit verify --data-dir`) verifies the chain and changes
/// nothing: a trigger dropped from the file stays dropped (verifying does not repair the
/// traces of tampering), where opening it as a broker does restore it.
#[tokio::test]
async fn a_read_only_store_verifies_and_repairs_nothing() {
    let e = env().await;
    let ev = |reason: &str| tessera_broker::audit::AuditEvent {
        time_ms: NOW,
        actor: "admin:t".into(),
        action: tessera_broker::audit::AuditAction::AdminPut,
        resource: None,
        evidence_digest: None,
        policy_digest: None,
        verdict: tessera_broker::audit::AuditVerdict::Pass,
        reason: reason.into(),
    };
    e.store.append_audit(ev("one")).await.unwrap();
    e.drop_audit_guard().await;
    let data = e.dir.path().join("data");
    let triggers = || {
        rusqlite::Connection::open(data.join(store::DB_FILE))
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit_no_%'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
    };
    assert_eq!(triggers(), 0);
    let read_only = SqliteStore::open_read_only_blocking(&data).unwrap();
    store::verify_audit_chain_from(&read_only, None)
        .await
        .unwrap();
    drop(read_only);
    assert_eq!(triggers(), 0, "verifying repaired nothing");
    drop(SqliteStore::open_blocking(&data).unwrap());
    assert_eq!(triggers(), 2, "a broker's open restores them");
    // No store there: refused, nothing created.
    let none = e.dir.path().join("none");
    assert!(SqliteStore::open_read_only_blocking(&none).is_err());
    assert!(!none.exists());
}
