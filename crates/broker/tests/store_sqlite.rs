//! The SQLite store against a real database file in a temporary directory: versions, policies,
//! tampered rows, single use of challenges under concurrency, sessions, the audit chain and KEK
//! rotation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use tessera_broker::audit::{AuditAction, AuditChainError, AuditEvent, AuditVerdict};
use tessera_broker::binding::HashAlgorithm;
use tessera_broker::resource::{PolicyDigest, ResourcePath};
use tessera_broker::seal::{KeyringFile, SealError, SecretValue};
use tessera_broker::store::{
    self, AttestedSession, Challenge, ConsumeOutcome, SqliteStore, Store, StoreError,
};

const NOW: i64 = 1_764_750_000_000;

fn res(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

struct Env {
    dir: tempfile::TempDir,
    store: SqliteStore,
    keys: KeyringFile,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("data")).await.unwrap();
    let keys = KeyringFile::open_or_create(&dir.path().join("data").join("kek")).unwrap();
    Env { dir, store, keys }
}

fn raw(e: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(e.store.path()).unwrap()
}

#[tokio::test]
async fn versions_put_get_pin_delete_list() {
    let e = env().await;
    let r = res("tenant-a/key/db");
    let ring = e.keys.current();
    let p1 = store::put_secret(
        &e.store,
        &ring,
        &r,
        Some("policy one"),
        &SecretValue::new(b"v1".to_vec()),
        NOW,
    )
    .await
    .unwrap();
    let p2 = store::put_secret(
        &e.store,
        &ring,
        &r,
        Some("policy two"),
        &SecretValue::new(b"v2".to_vec()),
        NOW + 1,
    )
    .await
    .unwrap();
    assert_eq!((p1.version, p2.version), (1, 2));
    assert_eq!(p1.policy_digest, PolicyDigest::of(b"policy one"));

    // Newest by default, pinned on request; the policy comes with it.
    let (rec, policy) = store::version_with_policy(&e.store, &r, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.version, policy.as_str()), (2, "policy two"));
    assert_eq!(store::open_stored(&ring, &rec).unwrap().expose(), b"v2");
    let (rec1, policy1) = store::version_with_policy(&e.store, &r, Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(policy1, "policy one");
    assert_eq!(store::open_stored(&ring, &rec1).unwrap().expose(), b"v1");
    assert!(e.store.get_version(&r, Some(3)).await.unwrap().is_none());
    assert!(
        e.store
            .get_version(&res("tenant-a/key/other"), None)
            .await
            .unwrap()
            .is_none()
    );

    // A value is never in the database files in the clear.
    let marker = b"MARKER-4f1d9c-not-in-the-db";
    store::put_secret(
        &e.store,
        &ring,
        &res("tenant-c/key/m"),
        Some("p"),
        &SecretValue::new(marker.to_vec()),
        NOW,
    )
    .await
    .unwrap();
    let mut files = std::fs::read(e.store.path()).unwrap();
    files.extend(std::fs::read(e.store.path().with_extension("db-wal")).unwrap());
    assert!(files.windows(marker.len()).all(|w| w != marker));
    assert!(
        files.windows(8).any(|w| w == b"tenant-c"),
        "the search itself works"
    );
    e.store
        .delete_versions(&res("tenant-c/key/m"), None)
        .await
        .unwrap();

    // Listing: names, versions, policy digests, KEK ids; per repository.
    store::put_secret(
        &e.store,
        &ring,
        &res("tenant-b/key/x"),
        Some("p"),
        &SecretValue::new(b"b".to_vec()),
        NOW,
    )
    .await
    .unwrap();
    let all = e.store.list_versions(None).await.unwrap();
    assert_eq!(all.len(), 3);
    let a = e.store.list_versions(Some("tenant-a")).await.unwrap();
    assert_eq!(a.iter().map(|i| i.version).collect::<Vec<_>>(), vec![1, 2]);
    assert!(a.iter().all(|i| i.kek_id == ring.active_id().as_str()));
    let json = serde_json::to_string(&a).unwrap();
    assert!(!json.contains("ciphertext") && !json.contains("wrapped"));

    // Delete the newest: the previous one becomes the newest; numbers are never reused.
    assert_eq!(e.store.delete_versions(&r, Some(2)).await.unwrap(), vec![2]);
    assert_eq!(
        e.store
            .get_version(&r, None)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        e.store.delete_versions(&r, Some(2)).await.unwrap(),
        Vec::<u64>::new()
    );
    let p3 = store::put_secret(
        &e.store,
        &ring,
        &r,
        Some("policy one"),
        &SecretValue::new(b"v3".to_vec()),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(p3.version, 3);
    assert_eq!(e.store.delete_versions(&r, None).await.unwrap(), vec![1, 3]);
    assert!(e.store.get_version(&r, None).await.unwrap().is_none());
    assert_eq!(
        e.store.list_versions(Some("tenant-a")).await.unwrap().len(),
        0
    );

    // Inserting an existing version number is refused.
    let rec = e
        .store
        .get_version(&res("tenant-b/key/x"), None)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        e.store.insert_version(&rec).await,
        Err(StoreError::VersionExists { version: 1, .. })
    ));
    drop(e.dir);
}

#[tokio::test]
async fn repository_default_policy_and_override() {
    let e = env().await;
    let ring = e.keys.current();
    let r = res("tenant-a/key/x");
    let v = SecretValue::new(b"x".to_vec());
    assert!(matches!(
        store::put_secret(&e.store, &ring, &r, None, &v, NOW).await,
        Err(StoreError::NoPolicy { .. })
    ));
    let d = e.store.put_policy("repo default", NOW).await.unwrap();
    e.store
        .set_repo_policy("tenant-a", Some(&d), NOW)
        .await
        .unwrap();
    assert_eq!(
        e.store.repo_policy("tenant-a").await.unwrap(),
        Some(d.clone())
    );
    assert_eq!(e.store.repo_policy("tenant-b").await.unwrap(), None);
    let p = store::put_secret(&e.store, &ring, &r, None, &v, NOW)
        .await
        .unwrap();
    assert_eq!(p.policy_digest, d);
    // Another tenant's put is not affected by tenant-a's default.
    assert!(
        store::put_secret(&e.store, &ring, &res("tenant-b/key/x"), None, &v, NOW)
            .await
            .is_err()
    );
    // A resource's own policy overrides the default.
    let o = store::put_secret(&e.store, &ring, &r, Some("override"), &v, NOW)
        .await
        .unwrap();
    assert_eq!(o.policy_digest, PolicyDigest::of(b"override"));
    // Changing the default later does not change what version 1 is sealed with.
    let d2 = e.store.put_policy("new default", NOW).await.unwrap();
    e.store
        .set_repo_policy("tenant-a", Some(&d2), NOW)
        .await
        .unwrap();
    let (_, text) = store::version_with_policy(&e.store, &r, Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, "repo default");
    e.store
        .set_repo_policy("tenant-a", None, NOW)
        .await
        .unwrap();
    assert_eq!(e.store.repo_policy("tenant-a").await.unwrap(), None);
    assert!(
        e.store
            .set_repo_policy("../x", Some(&d), NOW)
            .await
            .is_err()
    );
    // Unknown policy digests cannot be made a default (foreign key).
    let unknown = PolicyDigest::of(b"never stored");
    assert!(
        e.store
            .set_repo_policy("tenant-a", Some(&unknown), NOW)
            .await
            .is_err()
    );
    assert!(matches!(
        store::put_secret(&e.store, &ring, &r, Some(""), &v, NOW).await,
        Err(StoreError::PolicySize { .. })
    ));
}

#[tokio::test]
async fn moved_or_repolicied_ciphertexts_do_not_open() {
    let e = env().await;
    let ring = e.keys.current();
    let a = res("t/key/a");
    store::put_secret(
        &e.store,
        &ring,
        &a,
        Some("strict"),
        &SecretValue::new(b"A".to_vec()),
        NOW,
    )
    .await
    .unwrap();
    let lax = e.store.put_policy("lax", NOW).await.unwrap();
    let c = raw(&e);
    // Swap the policy of the stored version for a laxer one.
    c.execute(
        "UPDATE secrets SET policy_digest = ?1 WHERE resource = 't/key/a'",
        [lax.as_str()],
    )
    .unwrap();
    let (rec, text) = store::version_with_policy(&e.store, &a, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, "lax");
    assert!(matches!(
        store::open_stored(&ring, &rec),
        Err(SealError::Open { .. })
    ));
    // Move the ciphertext to another path (and policy back).
    c.execute(
        "UPDATE secrets SET resource = 't/key/b', policy_digest = ?1 WHERE resource = 't/key/a'",
        [PolicyDigest::of(b"strict").as_str()],
    )
    .unwrap();
    let rec = e
        .store
        .get_version(&res("t/key/b"), None)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store::open_stored(&ring, &rec),
        Err(SealError::Open { .. })
    ));
    // A policy text changed in place no longer matches its digest.
    c.execute("UPDATE secrets SET resource = 't/key/a'", [])
        .unwrap();
    c.execute(
        "UPDATE policies SET text = 'tampered' WHERE text = 'strict'",
        [],
    )
    .unwrap();
    assert!(matches!(
        store::version_with_policy(&e.store, &a, None).await,
        Err(StoreError::PolicyMissing { .. })
    ));
}

#[tokio::test]
async fn challenges_are_single_use_and_expire() {
    let e = env().await;
    let ch = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    assert_eq!(ch.expires_ms, NOW + store::CHALLENGE_TTL_MS);
    assert_eq!(base64_len(&ch.nonce), 32);
    e.store.insert_challenge(&ch).await.unwrap();
    assert!(matches!(
        e.store.insert_challenge(&ch).await,
        Err(StoreError::ChallengeExists)
    ));
    match e
        .store
        .consume_challenge(&ch.session_id, NOW + 1000)
        .await
        .unwrap()
    {
        ConsumeOutcome::Consumed(got) => assert_eq!(got, ch),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        e.store
            .consume_challenge(&ch.session_id, NOW + 2000)
            .await
            .unwrap(),
        ConsumeOutcome::AlreadyUsed
    );

    let late = Challenge::generate("tdx", HashAlgorithm::Sha512, NOW).unwrap();
    e.store.insert_challenge(&late).await.unwrap();
    assert_eq!(
        e.store
            .consume_challenge(&late.session_id, late.expires_ms)
            .await
            .unwrap(),
        ConsumeOutcome::Expired
    );
    let other = store::SessionId::generate().unwrap();
    assert_eq!(
        e.store.consume_challenge(&other, NOW).await.unwrap(),
        ConsumeOutcome::Unknown
    );
    // Purge removes expired challenges.
    assert!(
        e.store
            .purge_expired(NOW + store::CHALLENGE_TTL_MS + 1)
            .await
            .unwrap()
            >= 2
    );
    assert_eq!(
        e.store
            .consume_challenge(&ch.session_id, NOW)
            .await
            .unwrap(),
        ConsumeOutcome::Unknown
    );
    // Session ids are not stored in the clear.
    let c = raw(&e);
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM challenges WHERE session_key = ?1",
            [ch.session_id.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    assert!(store::SessionId::parse(ch.session_id.as_str()).is_some());
    assert!(store::SessionId::parse("short").is_none());
    assert!(store::SessionId::parse(&"+".repeat(43)).is_none());
}

fn base64_len(s: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_use_of_one_nonce_has_exactly_one_winner() {
    let e = env().await;
    let data = e.dir.path().join("data");
    // Several independent connections to the same file, as several processes would have.
    let mut stores: Vec<Arc<dyn Store>> = vec![Arc::new(e.store.clone())];
    for _ in 0..3 {
        stores.push(Arc::new(SqliteStore::open(&data).await.unwrap()));
    }
    for round in 0..10 {
        let ch = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
        stores[round % 4].insert_challenge(&ch).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = Arc::clone(&stores[i % 4]);
            let id = ch.session_id.clone();
            tasks.push(tokio::spawn(async move {
                s.consume_challenge(&id, NOW + 1).await.unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                ConsumeOutcome::Consumed(_) => wins += 1,
                ConsumeOutcome::AlreadyUsed => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
}

#[tokio::test]
async fn sessions_round_trip_and_expire() {
    let e = env().await;
    let s = AttestedSession {
        session_id: store::SessionId::generate().unwrap(),
        tee: "snp".into(),
        tee_pubkey: r#"{"kty":"EC"}"#.into(),
        token: "header.claims.sig".into(),
        claims: r#"{"x":1}"#.into(),
        evidence_digest: "sha384:00".into(),
        attested_ms: NOW,
        expires_ms: NOW + 300_000,
    };
    e.store.put_session(&s).await.unwrap();
    assert_eq!(
        e.store.get_session(&s.session_id, NOW + 1).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        e.store
            .get_session(&s.session_id, s.expires_ms)
            .await
            .unwrap(),
        None
    );
    let mut s2 = s.clone();
    s2.token = "newer".into();
    s2.expires_ms += 1000;
    e.store.put_session(&s2).await.unwrap();
    assert_eq!(
        e.store
            .get_session(&s.session_id, s.expires_ms)
            .await
            .unwrap(),
        Some(s2.clone())
    );
    assert_eq!(e.store.purge_expired(s2.expires_ms).await.unwrap(), 1);
    assert_eq!(e.store.get_session(&s.session_id, NOW).await.unwrap(), None);
}

fn event(i: i64) -> AuditEvent {
    AuditEvent {
        time_ms: NOW + i,
        actor: format!("admin:op{i}"),
        action: if i % 2 == 0 {
            AuditAction::AdminPut
        } else {
            AuditAction::Release
        },
        resource: Some("t/key/a".into()),
        evidence_digest: (i % 2 == 1).then(|| "sha384:ee".into()),
        policy_digest: Some(PolicyDigest::of(b"p").to_string()),
        verdict: AuditVerdict::Pass,
        reason: "ok".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_chain_appends_verify_and_tampering_is_named() {
    let e = env().await;
    let data = e.dir.path().join("data");
    let other: Arc<dyn Store> = Arc::new(SqliteStore::open(&data).await.unwrap());
    let mine: Arc<dyn Store> = Arc::new(e.store.clone());
    // Concurrent appends from two connections still form one chain.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 {
            Arc::clone(&mine)
        } else {
            Arc::clone(&other)
        };
        tasks.push(tokio::spawn(async move {
            s.append_audit(event(i)).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store::verify_audit_chain(&e.store).await.unwrap(), 20);
    let page = e.store.audit_entries(5, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|x| x.seq).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );

    // The table refuses updates and deletes.
    let c = raw(&e);
    assert!(
        c.execute("UPDATE audit SET verdict = 'fail' WHERE seq = 7", [])
            .is_err()
    );
    assert!(c.execute("DELETE FROM audit WHERE seq = 7", []).is_err());
    // Someone with the file drops the trigger and edits entry 7: the verifier names it.
    c.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    c.execute("UPDATE audit SET verdict = 'fail' WHERE seq = 7", [])
        .unwrap();
    assert!(matches!(
        store::verify_audit_chain(&e.store).await,
        Err(StoreError::AuditChain(AuditChainError::Altered { seq: 7 }))
    ));
    c.execute("UPDATE audit SET verdict = 'pass' WHERE seq = 7", [])
        .unwrap();
    assert_eq!(store::verify_audit_chain(&e.store).await.unwrap(), 20);
    c.execute("DELETE FROM audit WHERE seq = 12", []).unwrap();
    assert!(matches!(
        store::verify_audit_chain(&e.store).await,
        Err(StoreError::AuditChain(AuditChainError::SequenceGap {
            seq: 13,
            ..
        }))
    ));
}

#[tokio::test]
async fn kek_rotation_rewraps_everything_and_retires_the_old_kek() {
    let e = env().await;
    let first = e.keys.current().active_id().clone();
    let mut expected = Vec::new();
    for i in 0..300u32 {
        let r = res(&format!("t{}/key/k{i}", i % 3));
        let v = format!("value-{i}").into_bytes();
        store::put_secret(
            &e.store,
            &e.keys.current(),
            &r,
            Some("p"),
            &SecretValue::new(v.clone()),
            NOW,
        )
        .await
        .unwrap();
        expected.push((r, v));
    }
    let report = store::rotate_kek(&e.store, &e.keys).await.unwrap();
    assert_eq!(report.rewrapped, 300);
    assert_eq!(report.retired, vec![first.clone()]);
    assert_ne!(report.kek_id, first);
    let ring = KeyringFile::open(e.keys.path()).unwrap().current();
    assert_eq!(ring.ids(), vec![&report.kek_id]);
    for (r, v) in &expected {
        let rec = e.store.get_version(r, None).await.unwrap().unwrap();
        assert_eq!(rec.sealed.kek_id, report.kek_id.as_str());
        assert_eq!(store::open_stored(&ring, &rec).unwrap().expose(), &v[..]);
    }
    assert!(
        e.store
            .list_versions(None)
            .await
            .unwrap()
            .iter()
            .all(|i| i.kek_id == report.kek_id.as_str())
    );
    // A second rotation works on the result of the first.
    let again = store::rotate_kek(&e.store, &e.keys).await.unwrap();
    assert_eq!(again.rewrapped, 300);

    // A record whose KEK is unknown stops the rotation, and every KEK stays in the keyring.
    let c = raw(&e);
    c.execute(
        "UPDATE secrets SET kek_id = 'kek-lost' WHERE resource = 't0/key/k0'",
        [],
    )
    .unwrap();
    let err = store::rotate_kek(&e.store, &e.keys).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Seal(SealError::UnknownKek { .. })),
        "{err}"
    );
    assert_eq!(e.keys.current().ids().len(), 2);
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
    let id = store::SessionId::generate().unwrap();
    let s = AttestedSession {
        session_id: id.clone(),
        tee: "snp".into(),
        tee_pubkey: "{}".into(),
        token: "TOKEN-SHOULD-NOT-SHOW".into(),
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
    let ch = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    let other = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    assert!(ch.nonce_matches(&ch.nonce.clone()));
    assert!(!ch.nonce_matches(&other.nonce));
    assert!(!ch.nonce_matches(""));
    assert!(!ch.nonce_matches(&ch.nonce[..10]));
}
