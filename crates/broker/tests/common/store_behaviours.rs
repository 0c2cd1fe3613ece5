//! The behaviours every [`Store`] must have, written once and run against each implementation
//! (tests/store_sqlite.rs, tests/store_postgres.rs) through a [`Backend`]: versions, policies,
//! tampered rows, single use of challenges under concurrency, sessions, the audit chain and KEK
//! rotation.

use std::sync::Arc;

use tessera_broker::audit::{AuditAction, AuditChainError, AuditEvent, AuditVerdict};
use tessera_broker::binding::HashAlgorithm;
use tessera_broker::resource::{PolicyDigest, ResourcePath};
use tessera_broker::seal::Keyring;
use tessera_broker::seal::{KeyringFile, SealError, SecretValue};
use tessera_broker::store::{
    self, AttestedSession, Challenge, ChangeBy, KeyCheck, KeyCheckError, RepoPolicy, Store,
    StoreError,
};

/// The test clock.
pub const NOW: i64 = 1_764_750_000_000;

/// Who the tests' puts are by.
pub const BY: ChangeBy<'static> = ChangeBy {
    actor: "admin:test",
    note: "",
    origin: None,
};

fn del_ev() -> AuditEvent {
    admin_event("admin:test", AuditAction::AdminDelete, "x")
}

fn policy_ev() -> AuditEvent {
    admin_event("admin:test", AuditAction::AdminPolicy, "x")
}

/// The audit entry of an admin change by `actor` (the database refuses `admin:refuse`'s once
/// [`Backend::refuse_marked_rows`] ran).
pub fn admin_event(actor: &str, action: AuditAction, resource: &str) -> AuditEvent {
    AuditEvent {
        time_ms: NOW,
        actor: actor.into(),
        action,
        resource: Some(resource.into()),
        evidence_digest: None,
        policy_digest: None,
        verdict: AuditVerdict::Pass,
        reason: String::new(),
    }
}

/// A store under test, its keyring, and direct access to its database (as someone holding the
/// database would have, bypassing the broker).
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// The store under test.
    fn store(&self) -> Arc<dyn Store>;
    /// Another independent handle on the same data (its own connection or pool), as another
    /// process or replica has.
    async fn another(&self) -> Arc<dyn Store>;
    /// The keyring file.
    fn keys(&self) -> &KeyringFile;
    /// Runs one SQL statement directly on the database; the rows it changed.
    async fn exec(&self, sql: &str) -> Result<u64, String>;
    /// Runs a query returning one integer.
    async fn count(&self, sql: &str) -> i64;
    /// Removes the triggers that keep the audit table append-only.
    async fn drop_audit_guard(&self);
    /// Everything the database holds, as bytes an attacker with the files/dump would see.
    async fn dump(&self) -> Vec<u8>;
    /// Makes the database refuse (by trigger) a session whose `tee` is `refuse` and an audit
    /// entry whose `reason` is `refuse`.
    async fn refuse_marked_rows(&self);
}

pub fn res(s: &str) -> ResourcePath {
    ResourcePath::parse(s).unwrap()
}

/// `repo`'s default policy `digest` in `s`, with its MAC under `ring`'s active KEK.
fn default_of(s: &dyn Store, ring: &Keyring, repo: &str, digest: &PolicyDigest) -> RepoPolicy {
    RepoPolicy::new(ring, s.identity(), repo, digest.clone()).unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub async fn versions_put_get_pin_delete_list(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let r = res("tenant-a/key/db");
    let ring = b.keys().current();
    // A put refused for its value (empty) stores nothing and takes no version number.
    let audit_before = s.audit_entries(0, 1000).await.unwrap().len();
    let refused = store::put_secret(
        s,
        &ring,
        &r,
        Some("policy zero"),
        &SecretValue::new(Vec::new()),
        NOW,
        BY,
    )
    .await;
    assert!(refused.is_err());
    assert_eq!(s.audit_entries(0, 1000).await.unwrap().len(), audit_before);
    let p1 = store::put_secret(
        s,
        &ring,
        &r,
        Some("policy one"),
        &SecretValue::new(b"v1".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    let p2 = store::put_secret(
        s,
        &ring,
        &r,
        Some("policy two"),
        &SecretValue::new(b"v2".to_vec()),
        NOW + 1,
        BY,
    )
    .await
    .unwrap();
    assert_eq!((p1.version, p2.version), (1, 2));
    assert_eq!(p1.policy_digest, PolicyDigest::of(b"policy one"));

    // Newest by default, pinned on request; the policy comes with it.
    let (rec, policy) = store::version_with_policy(s, &r, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.version, policy.as_str()), (2, "policy two"));
    assert_eq!(store::open_stored(&ring, &rec).unwrap().expose(), b"v2");
    let (rec1, policy1) = store::version_with_policy(s, &r, Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(policy1, "policy one");
    assert_eq!(store::open_stored(&ring, &rec1).unwrap().expose(), b"v1");
    assert!(s.get_version(&r, Some(3)).await.unwrap().is_none());
    assert!(
        s.get_version(&res("tenant-a/key/other"), None)
            .await
            .unwrap()
            .is_none()
    );

    // A value is never in the database in the clear.
    let marker = b"MARKER-4f1d9c-not-in-the-db";
    store::put_secret(
        s,
        &ring,
        &res("tenant-c/key/m"),
        Some("p"),
        &SecretValue::new(marker.to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    let dump = b.dump().await;
    assert!(!contains(&dump, marker));
    assert!(!contains(&dump, hex::encode(marker).as_bytes()));
    assert!(contains(&dump, b"tenant-c"), "the search itself works");
    s.delete_versions(&res("tenant-c/key/m"), None, del_ev())
        .await
        .unwrap();

    // Listing: names, versions, policy digests, KEK ids; per repository.
    store::put_secret(
        s,
        &ring,
        &res("tenant-b/key/x"),
        Some("p"),
        &SecretValue::new(b"b".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    let all = s.list_versions(None, None, 1000).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all.iter()
            .map(|i| (i.resource.as_str(), i.version))
            .collect::<Vec<_>>(),
        vec![
            ("tenant-a/key/db", 1),
            ("tenant-a/key/db", 2),
            ("tenant-b/key/x", 1)
        ]
    );
    // Pages: each starts after the last row of the one before, none skipped or repeated,
    // within a resource's versions and across resources.
    let page = |after: Option<(&'static str, u64)>, repo: Option<&'static str>| async move {
        let repos = repo.map(|r| vec![r.to_owned()]);
        s.list_versions(repos.as_deref(), after, 1)
            .await
            .unwrap()
            .iter()
            .map(|i| (i.resource.clone(), i.version))
            .collect::<Vec<_>>()
    };
    let own = |r: &str, v: u64| vec![(r.to_owned(), v)];
    assert_eq!(page(None, None).await, own("tenant-a/key/db", 1));
    assert_eq!(
        page(Some(("tenant-a/key/db", 1)), None).await,
        own("tenant-a/key/db", 2)
    );
    assert_eq!(
        page(Some(("tenant-a/key/db", 2)), None).await,
        own("tenant-b/key/x", 1)
    );
    assert!(page(Some(("tenant-b/key/x", 1)), None).await.is_empty());
    // A start between resources (one that is not stored), and with a repository.
    assert_eq!(
        page(Some(("tenant-a/key/da", 9)), None).await,
        own("tenant-a/key/db", 1)
    );
    assert!(
        page(Some(("tenant-a/key/db", 2)), Some("tenant-a"))
            .await
            .is_empty()
    );
    assert_eq!(s.list_versions(None, None, 2).await.unwrap().len(), 2);
    // Several repositories at once (a scoped token's), and one that holds nothing.
    let both = ["tenant-b".to_owned(), "tenant-a".to_owned()];
    assert_eq!(
        s.list_versions(Some(&both), None, 1000)
            .await
            .unwrap()
            .len(),
        3
    );
    let b_only = ["tenant-b".to_owned(), "nobody".to_owned()];
    assert_eq!(
        s.list_versions(Some(&b_only), None, 1000)
            .await
            .unwrap()
            .iter()
            .map(|i| i.resource.as_str())
            .collect::<Vec<_>>(),
        vec!["tenant-b/key/x"]
    );
    assert!(
        s.list_versions(Some(&[]), None, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    let a = s
        .list_versions(Some(&["tenant-a".to_owned()]), None, 1000)
        .await
        .unwrap();
    assert_eq!(a.iter().map(|i| i.version).collect::<Vec<_>>(), vec![1, 2]);
    assert!(a.iter().all(|i| i.kek_id == ring.active_id().as_str()));
    let json = serde_json::to_string(&a).unwrap();
    assert!(!json.contains("ciphertext") && !json.contains("wrapped"));

    // Delete the newest: the previous one becomes the newest; numbers are never reused.
    assert_eq!(
        s.delete_versions(&r, Some(2), del_ev()).await.unwrap(),
        vec![2]
    );
    assert_eq!(s.get_version(&r, None).await.unwrap().unwrap().version, 1);
    assert_eq!(
        s.delete_versions(&r, Some(2), del_ev()).await.unwrap(),
        Vec::<u64>::new()
    );
    let p3 = store::put_secret(
        s,
        &ring,
        &r,
        Some("policy one"),
        &SecretValue::new(b"v3".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    assert_eq!(p3.version, 3);
    assert_eq!(
        s.delete_versions(&r, None, del_ev()).await.unwrap(),
        vec![1, 3]
    );
    assert!(s.get_version(&r, None).await.unwrap().is_none());
    assert_eq!(
        s.list_versions(Some(&["tenant-a".to_owned()]), None, 1000)
            .await
            .unwrap()
            .len(),
        0
    );

    // Inserting an existing version number is refused.
    let rec = s
        .get_version(&res("tenant-b/key/x"), None)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        s.insert_version(&rec, admin_event("admin:test", AuditAction::AdminPut, "x"))
            .await,
        Err(StoreError::VersionExists { version: 1, .. })
    ));
}

/// A put, delete or repository policy change is written with the audit entry recording it, in
/// one transaction: when the database refuses the entry, the change is not made either.
pub async fn admin_changes_stand_or_fall_with_their_entries(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let ring = b.keys().current();
    let r = res("tenant-a/key/audited");
    let v = SecretValue::new(b"value".to_vec());
    let refused = ChangeBy {
        actor: "admin:refuse",
        note: "",
        origin: None,
    };
    b.refuse_marked_rows().await;
    let entries = || async { s.audit_entries(0, 10_000).await.unwrap() };

    // A put whose entry is refused leaves no version.
    assert!(
        store::put_secret(s, &ring, &r, Some("p"), &v, NOW, refused)
            .await
            .is_err()
    );
    assert!(s.get_version(&r, None).await.unwrap().is_none());
    assert!(
        s.list_versions(Some(&["tenant-a".to_owned()]), None, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(entries().await.is_empty());

    // One that is recorded: the entry names the version, its policy, size and KEK.
    let by = ChangeBy {
        actor: "admin:alice",
        note: "imported",
        origin: None,
    };
    let put = store::put_secret(s, &ring, &r, Some("p"), &v, NOW, by)
        .await
        .unwrap();
    assert_eq!(put.version, 2, "the refused put's number is not reused");
    let log = entries().await;
    assert_eq!(log.len(), 1);
    let e = &log[0].event;
    assert_eq!(e.action, AuditAction::AdminPut);
    assert_eq!(e.actor, "admin:alice");
    assert_eq!(
        e.resource.as_deref(),
        Some(format!("{r}@{}", put.version).as_str())
    );
    assert_eq!(e.policy_digest, Some(put.policy_digest.to_string()));
    assert_eq!(
        e.reason,
        format!("5 bytes sealed under {}; imported", put.kek_id)
    );

    // A delete whose entry is refused deletes nothing.
    let refuse_delete = admin_event("admin:refuse", AuditAction::AdminDelete, "x");
    assert!(s.delete_versions(&r, None, refuse_delete).await.is_err());
    assert_eq!(
        s.get_version(&r, None).await.unwrap().unwrap().version,
        put.version
    );

    // A repository policy change whose entry is refused changes nothing.
    let d = s.put_policy("default", NOW).await.unwrap();
    let d = default_of(s, &b.keys().current(), "tenant-a", &d);
    let refuse_policy = admin_event("admin:refuse", AuditAction::AdminPolicy, "tenant-a");
    assert!(
        s.set_repo_policy("tenant-a", Some(&d), NOW, refuse_policy)
            .await
            .is_err()
    );
    assert_eq!(s.repo_policy("tenant-a").await.unwrap(), None);
    assert_eq!(entries().await.len(), 1);

    // Recorded ones are made; the delete's entry names what it deleted.
    s.set_repo_policy("tenant-a", Some(&d), NOW, policy_ev())
        .await
        .unwrap();
    assert_eq!(s.repo_policy("tenant-a").await.unwrap(), Some(d));
    assert_eq!(
        s.delete_versions(&r, None, del_ev()).await.unwrap(),
        vec![put.version]
    );
    assert!(s.get_version(&r, None).await.unwrap().is_none());
    // Nothing left to delete: no change, no entry.
    assert!(
        s.delete_versions(&r, None, del_ev())
            .await
            .unwrap()
            .is_empty()
    );
    let log = entries().await;
    let actions: Vec<_> = log.iter().map(|e| e.event.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::AdminPut,
            AuditAction::AdminPolicy,
            AuditAction::AdminDelete
        ]
    );
    assert_eq!(log[2].event.reason, store::deletion_reason(&[put.version]));
    store::verify_audit_chain(s).await.unwrap();
}

pub async fn listing_is_in_byte_order(b: &dyn Backend) {
    let s = b.store();
    let ring = b.keys().current();
    // Upper case sorts before lower case, and `-` before letters, in byte order (a locale
    // collation would say otherwise).
    for name in ["t/key/b", "t/key/B", "t/key/a-x", "t/key/ax"] {
        store::put_secret(
            s.as_ref(),
            &ring,
            &res(name),
            Some("p"),
            &SecretValue::new(b"x".to_vec()),
            NOW,
            BY,
        )
        .await
        .unwrap();
    }
    let got = s
        .list_versions(Some(&["t".to_owned()]), None, 1000)
        .await
        .unwrap();
    let want = vec!["t/key/B", "t/key/a-x", "t/key/ax", "t/key/b"];
    assert_eq!(
        got.iter().map(|i| i.resource.as_str()).collect::<Vec<_>>(),
        want
    );
    // Paged one row at a time, in the same order: the page start compares as the order sorts.
    let mut paged = Vec::new();
    let mut after: Option<(String, u64)> = None;
    let t = ["t".to_owned()];
    loop {
        let page = s
            .list_versions(Some(&t), after.as_ref().map(|(r, v)| (r.as_str(), *v)), 1)
            .await
            .unwrap();
        let Some(row) = page.first() else { break };
        paged.push(row.resource.clone());
        after = Some((row.resource.clone(), row.version));
    }
    assert_eq!(paged, want);
}

pub async fn version_numbers_are_unique_under_concurrency(b: &dyn Backend) {
    let stores = [b.store(), b.another().await];
    let r = res("t/key/counted");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = Arc::clone(&stores[i % 2]);
        let r = r.clone();
        tasks.push(tokio::spawn(
            async move { s.next_version(&r).await.unwrap() },
        ));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (1..=40).collect::<Vec<u64>>());
    assert_eq!(
        stores[0].next_version(&res("t/key/other")).await.unwrap(),
        1
    );
}

/// A version sealed from `origin` under `policy`, with the next version number of `r`.
async fn version_from(
    s: &dyn Store,
    ring: &tessera_broker::seal::Keyring,
    r: &ResourcePath,
    policy: &PolicyDigest,
    origin: Option<&str>,
) -> store::NewSecretVersion {
    let version = s.next_version(r).await.unwrap();
    let sealed = tessera_broker::seal::seal(
        ring,
        &tessera_broker::seal::SealBinding {
            resource: r,
            version,
            policy_digest: policy,
        },
        &SecretValue::new(b"imported".to_vec()),
    )
    .unwrap();
    store::NewSecretVersion {
        resource: r.clone(),
        version,
        policy_digest: policy.clone(),
        sealed,
        created_ms: NOW,
        origin: origin.map(str::to_owned),
    }
}

/// Importing a sealed file is idempotent in the store itself: a version is not inserted when
/// the newest other version of its resource came from the same file under the same policy,
/// whatever order the version numbers were taken in, and of concurrent imports of one file
/// (from two handles, as two replicas) exactly one makes a version.
pub async fn an_import_the_newest_version_holds_inserts_nothing(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let ring = b.keys().current();
    let r = res("tenant-a/key/imported");
    let p1 = s.put_policy("policy one", NOW).await.unwrap();
    let p2 = s.put_policy("policy two", NOW).await.unwrap();
    let ev = || admin_event("admin:test", AuditAction::AdminPut, "x");

    // Two imports of one file took their numbers before either inserted; the later number
    // went in first.
    let first = version_from(s, &ring, &r, &p1, Some("file-a")).await;
    let second = version_from(s, &ring, &r, &p1, Some("file-a")).await;
    s.insert_version(&second, ev()).await.unwrap();
    let entries = b.count("SELECT count(*) FROM audit").await;
    let err = s.insert_version(&first, ev()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SameOrigin { version, .. } if version == second.version),
        "{err}"
    );
    assert_eq!(
        b.count("SELECT count(*) FROM audit").await,
        entries,
        "a refused insert records nothing"
    );
    assert!(
        s.get_version(&r, Some(first.version))
            .await
            .unwrap()
            .is_none()
    );
    // And again with a fresh number.
    let third = version_from(s, &ring, &r, &p1, Some("file-a")).await;
    assert!(matches!(
        s.insert_version(&third, ev()).await,
        Err(StoreError::SameOrigin { version, .. }) if version == second.version
    ));
    // The same file under another policy, another file, and versions with no origin go in.
    for (policy, origin) in [
        (&p2, Some("file-a")),
        (&p2, Some("file-b")),
        (&p2, None),
        (&p2, None),
        (&p1, Some("file-a")),
    ] {
        let v = version_from(s, &ring, &r, policy, origin).await;
        s.insert_version(&v, ev()).await.unwrap();
        assert_eq!(
            s.get_version(&r, None).await.unwrap().unwrap().version,
            v.version
        );
    }

    // Concurrent imports of one file through two handles: one version, and every other
    // import names it.
    let stores = [b.store(), b.another().await];
    let r = res("tenant-a/key/raced");
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = Arc::clone(&stores[i % 2]);
        let (r, ring, p1, start) = (r.clone(), ring.clone(), p1.clone(), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            let v = version_from(s.as_ref(), &ring, &r, &p1, Some("file-c")).await;
            start.wait().await;
            let got = s
                .insert_version(&v, admin_event("admin:test", AuditAction::AdminPut, "x"))
                .await;
            (v.version, got)
        }));
    }
    let mut made = Vec::new();
    let mut named = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (v, Ok(())) => made.push(v),
            (_, Err(StoreError::SameOrigin { version, .. })) => named.push(version),
            (_, Err(e)) => panic!("{e}"),
        }
    }
    assert_eq!(
        made.len(),
        1,
        "exactly one import makes a version: {made:?}"
    );
    assert!(named.iter().all(|v| *v == made[0]), "{named:?} {made:?}");
    let listed = s.list_versions(None, None, 1000).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .filter(|i| i.resource == "tenant-a/key/raced")
            .count(),
        1
    );
}

pub async fn repository_default_policy_and_override(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let ring = b.keys().current();
    let r = res("tenant-a/key/x");
    let v = SecretValue::new(b"x".to_vec());
    assert!(matches!(
        store::put_secret(s, &ring, &r, None, &v, NOW, BY).await,
        Err(StoreError::NoPolicy { .. })
    ));
    let d = s.put_policy("repo default", NOW).await.unwrap();
    assert_eq!(s.put_policy("repo default", NOW + 5).await.unwrap(), d);
    let rp = default_of(s, &ring, "tenant-a", &d);
    assert_eq!(rp.kek_id, ring.active_id().as_str());
    s.set_repo_policy("tenant-a", Some(&rp), NOW, policy_ev())
        .await
        .unwrap();
    assert_eq!(s.repo_policy("tenant-a").await.unwrap(), Some(rp.clone()));
    assert_eq!(s.repo_policy("tenant-b").await.unwrap(), None);
    let p = store::put_secret(s, &ring, &r, None, &v, NOW, BY)
        .await
        .unwrap();
    assert_eq!(p.policy_digest, d);
    // Another tenant's put is not affected by tenant-a's default.
    assert!(
        store::put_secret(s, &ring, &res("tenant-b/key/x"), None, &v, NOW, BY)
            .await
            .is_err()
    );
    // A resource's own policy overrides the default.
    let o = store::put_secret(s, &ring, &r, Some("override"), &v, NOW, BY)
        .await
        .unwrap();
    assert_eq!(o.policy_digest, PolicyDigest::of(b"override"));
    // Changing the default later does not change what version 1 is sealed with.
    let d2 = s.put_policy("new default", NOW).await.unwrap();
    let rp2 = default_of(s, &ring, "tenant-a", &d2);
    s.set_repo_policy("tenant-a", Some(&rp2), NOW, policy_ev())
        .await
        .unwrap();
    assert_eq!(s.repo_policy("tenant-a").await.unwrap(), Some(rp2.clone()));
    let (_, text) = store::version_with_policy(s, &r, Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, "repo default");
    s.set_repo_policy("tenant-a", None, NOW, policy_ev())
        .await
        .unwrap();
    assert_eq!(s.repo_policy("tenant-a").await.unwrap(), None);
    assert!(
        s.set_repo_policy("../x", Some(&rp), NOW, policy_ev())
            .await
            .is_err()
    );
    // Unknown policy digests cannot be made a default (foreign key).
    let unknown = PolicyDigest::of(b"never stored");
    assert!(matches!(
        s.set_repo_policy(
            "tenant-a",
            Some(&default_of(s, &ring, "tenant-a", &unknown)),
            NOW,
            policy_ev()
        )
        .await,
        Err(StoreError::Database { .. })
    ));
    assert_eq!(s.repo_policy("tenant-a").await.unwrap(), None);
    assert!(matches!(
        store::put_secret(s, &ring, &r, Some(""), &v, NOW, BY).await,
        Err(StoreError::PolicySize { .. })
    ));
    assert_eq!(s.get_policy(&unknown).await.unwrap(), None);
    assert_eq!(
        s.get_policy(&d).await.unwrap().as_deref(),
        Some("repo default")
    );
}

/// A default policy the broker did not set (written into the database, copied from another
/// repository or store, or set before defaults carried a MAC) is never sealed under: a put
/// naming no policy is refused and stores nothing.
pub async fn a_default_policy_the_broker_did_not_set_is_refused(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let ring = b.keys().current();
    let v = SecretValue::new(b"x".to_vec());
    let strict = s.put_policy("strict", NOW).await.unwrap();
    let loose = s.put_policy("loose", NOW).await.unwrap();
    let good = default_of(s, &ring, "tenant-a", &strict);
    s.set_repo_policy("tenant-a", Some(&good), NOW, policy_ev())
        .await
        .unwrap();
    let r = res("tenant-a/key/x");
    store::put_secret(s, &ring, &r, None, &v, NOW, BY)
        .await
        .unwrap();
    let (r, v) = (&r, &v);
    let refused = |what: &'static str| async move {
        let err = store::put_secret(s, &b.keys().current(), r, None, v, NOW, BY)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::RepoPolicyUnauthenticated { repo } if repo == "tenant-a"),
            "{what}: {err}"
        );
        // Nothing stored: version 1 is still the newest.
        assert_eq!(
            s.get_version(r, None).await.unwrap().unwrap().version,
            1,
            "{what}"
        );
    };
    // Another digest under the good MAC (the row's digest changed in the database).
    b.exec(&format!(
        "UPDATE repo_policies SET digest = '{}' WHERE repo = 'tenant-a'",
        loose.as_str()
    ))
    .await
    .unwrap();
    refused("digest changed").await;
    // A MAC made for another repository, or another store, or under another KEK.
    let kek = ring.active().unwrap();
    for (what, mac) in [
        (
            "another repository's MAC",
            kek.repo_policy_mac(s.identity(), "tenant-b", loose.as_str())
                .unwrap(),
        ),
        (
            "another store's MAC",
            kek.repo_policy_mac(b"another store", "tenant-a", loose.as_str())
                .unwrap(),
        ),
        ("no MAC (set before defaults had one)", String::new()),
    ] {
        b.exec(&format!(
            "UPDATE repo_policies SET mac = '{mac}' WHERE repo = 'tenant-a'"
        ))
        .await
        .unwrap();
        refused(what).await;
    }
    let foreign = Keyring::new(tessera_broker::seal::Kek::generate().unwrap());
    let forged = default_of(s, &foreign, "tenant-a", &loose);
    b.exec(&format!(
        "UPDATE repo_policies SET kek_id = '{}', mac = '{}' WHERE repo = 'tenant-a'",
        forged.kek_id, forged.mac
    ))
    .await
    .unwrap();
    refused("another keyring's KEK").await;
    b.exec(&format!(
        "UPDATE repo_policies SET kek_id = '{}', mac = '{}' WHERE repo = 'tenant-a'",
        ring.active_id().as_str(),
        forged.mac
    ))
    .await
    .unwrap();
    refused("another keyring's MAC under this KEK's id").await;
    // A text written under the strict policy's digest: storing the policy again puts its own
    // text back (a put naming it, or a release under it, re-hashes the text and would refuse).
    b.exec(&format!(
        "UPDATE policies SET text = 'loose' WHERE digest = '{}'",
        strict.as_str()
    ))
    .await
    .unwrap();
    assert_eq!(s.put_policy("strict", NOW).await.unwrap(), strict);
    assert_eq!(
        s.get_policy(&strict).await.unwrap().as_deref(),
        Some("strict")
    );
    // Setting the default again through the broker mends it.
    s.set_repo_policy("tenant-a", Some(&good), NOW, policy_ev())
        .await
        .unwrap();
    let p = store::put_secret(s, &ring, r, None, v, NOW, BY)
        .await
        .unwrap();
    assert_eq!((p.version, p.policy_digest), (2, strict));
}

pub async fn moved_or_repolicied_ciphertexts_do_not_open(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let ring = b.keys().current();
    let a = res("t/key/a");
    store::put_secret(
        s,
        &ring,
        &a,
        Some("strict"),
        &SecretValue::new(b"A".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    let lax = s.put_policy("lax", NOW).await.unwrap();
    // Swap the policy of the stored version for a laxer one.
    b.exec(&format!(
        "UPDATE secrets SET policy_digest = '{}' WHERE resource = 't/key/a'",
        lax.as_str()
    ))
    .await
    .unwrap();
    let (rec, text) = store::version_with_policy(s, &a, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, "lax");
    assert!(matches!(
        store::open_stored(&ring, &rec),
        Err(SealError::Open { .. })
    ));
    // Move the ciphertext to another path (and policy back).
    b.exec(&format!(
        "UPDATE secrets SET resource = 't/key/b', policy_digest = '{}' WHERE resource = 't/key/a'",
        PolicyDigest::of(b"strict").as_str()
    ))
    .await
    .unwrap();
    let rec = s.get_version(&res("t/key/b"), None).await.unwrap().unwrap();
    assert!(matches!(
        store::open_stored(&ring, &rec),
        Err(SealError::Open { .. })
    ));
    // A policy text changed in place no longer matches its digest.
    b.exec("UPDATE secrets SET resource = 't/key/a'")
        .await
        .unwrap();
    b.exec("UPDATE policies SET text = 'tampered' WHERE text = 'strict'")
        .await
        .unwrap();
    assert!(matches!(
        store::version_with_policy(s, &a, None).await,
        Err(StoreError::PolicyMissing { .. })
    ));
    // A stored nonce of the wrong length is reported as corrupt, not used.
    b.exec("UPDATE secrets SET nonce = ciphertext WHERE resource = 't/key/a'")
        .await
        .unwrap();
    assert!(matches!(
        s.get_version(&a, None).await,
        Err(StoreError::Corrupt {
            field: "secrets.nonce"
        })
    ));
    // A version below zero: reported as corrupt (checked before the nonce).
    b.exec("UPDATE secrets SET version = -1 WHERE resource = 't/key/a'")
        .await
        .unwrap();
    assert!(matches!(
        s.get_version(&a, None).await,
        Err(StoreError::Corrupt {
            field: "secrets.version"
        })
    ));
    assert!(matches!(
        s.list_versions(None, None, 1000).await,
        Err(StoreError::Corrupt {
            field: "secrets.version"
        })
    ));
    // A resource path that does not parse, met while listing versions to re-wrap.
    b.exec("UPDATE secrets SET resource = '../etc', version = 1 WHERE resource = 't/key/a'")
        .await
        .unwrap();
    assert!(matches!(
        s.versions_not_wrapped_by("no-such-kek", 10).await,
        Err(StoreError::Corrupt {
            field: "secrets.resource"
        })
    ));
}

fn session(ch: &Challenge) -> AttestedSession {
    AttestedSession {
        session_id: ch.session_id.clone(),
        tee: "snp".into(),
        tee_pubkey: r#"{"kty":"EC"}"#.into(),
        token_digest: store::token_digest("header.claims.sig"),
        claims: r#"{"x":1}"#.into(),
        evidence_digest: "sha384:00".into(),
        attested_ms: NOW,
        expires_ms: NOW + 300_000,
    }
}

pub async fn challenges_are_single_use_and_expire(b: &dyn Backend) {
    let s = b.store();
    // The store's identity: the same at every handle, so that a challenge issued by one is
    // answered at another.
    assert!(!s.identity().is_empty());
    assert_eq!(b.another().await.identity(), s.identity());
    let ch = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    assert_eq!(ch.expires_ms, NOW + store::CHALLENGE_TTL_MS);
    assert_eq!(Challenge::from_session(&ch.session_id), Some(ch.clone()));
    // Issuing stores nothing: the session id carries the challenge.
    assert_eq!(b.count("SELECT count(*) FROM challenges").await, 0);
    assert!(s.use_challenge(&ch).await.unwrap());
    assert!(!s.use_challenge(&ch).await.unwrap());
    // Used at one handle, used at every other.
    let other_handle = b.another().await;
    assert!(!other_handle.use_challenge(&ch).await.unwrap());
    let there = Challenge::generate("tdx", HashAlgorithm::Sha256, NOW).unwrap();
    assert!(other_handle.use_challenge(&there).await.unwrap());
    assert!(!s.use_challenge(&there).await.unwrap());
    // A session for a challenge already used is not stored, and no entry records it.
    let before = s.audit_entries(0, 10_000).await.unwrap().len();
    assert_eq!(
        s.put_session_audited(&ch, &session(&ch), event(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.get_session(&ch.session_id, NOW + 1).await.unwrap(), None);
    assert_eq!(s.audit_entries(0, 10_000).await.unwrap().len(), before);

    // The record of a use is kept one lifetime past the challenge's expiry, then purged, at
    // most `limit` per call (the broker refuses an expired challenge by its time alone).
    let late = Challenge::generate("snp", HashAlgorithm::Sha512, NOW + 10).unwrap();
    assert!(s.use_challenge(&late).await.unwrap());
    assert_eq!(
        ch.retain_until_ms(),
        ch.expires_ms + store::CHALLENGE_TTL_MS
    );
    assert_eq!(s.purge_expired(ch.expires_ms, 10).await.unwrap(), 0);
    assert_eq!(
        s.purge_expired(ch.retain_until_ms() - 1, 10).await.unwrap(),
        0
    );
    assert_eq!(s.purge_expired(ch.retain_until_ms(), 1).await.unwrap(), 1);
    assert_eq!(s.purge_expired(ch.retain_until_ms(), 1).await.unwrap(), 1);
    assert_eq!(s.purge_expired(ch.retain_until_ms(), 1).await.unwrap(), 0);
    assert!(!s.use_challenge(&late).await.unwrap(), "purged too early");
    assert_eq!(
        s.purge_expired(late.retain_until_ms(), 10).await.unwrap(),
        1
    );

    // Session ids are not stored in the clear.
    let fresh = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    assert!(s.use_challenge(&fresh).await.unwrap());
    let n = b
        .count(&format!(
            "SELECT count(*) FROM challenges WHERE session_key LIKE '%{}%'",
            fresh.session_id.as_str()
        ))
        .await;
    assert_eq!(n, 0);
    // Filed under the id's digest (the SQLite store puts the issue time in front of it).
    let n = b
        .count(&format!(
            "SELECT count(*) FROM challenges WHERE session_key LIKE '%{}'",
            fresh.session_id.storage_key()
        ))
        .await;
    assert_eq!(n, 1, "the count query itself works");
    assert!(store::SessionId::parse(ch.session_id.as_str()).is_some());
    assert!(store::SessionId::parse("short").is_none());
    assert!(store::SessionId::parse(&"+".repeat(60)).is_none());
}

/// `rounds` challenges, each raced by `consumers` tasks spread over `handles` independent
/// store handles, half of them refusing it (`use_challenge`), half storing a session for it
/// (`put_session_audited`): exactly one wins each, and a session is stored only if it won.
pub async fn concurrent_use_of_one_nonce_has_exactly_one_winner(
    b: &dyn Backend,
    handles: usize,
    consumers: usize,
    rounds: usize,
) {
    let mut stores: Vec<Arc<dyn Store>> = vec![b.store()];
    for _ in 1..handles {
        stores.push(b.another().await);
    }
    for round in 0..rounds {
        let ch = Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(consumers));
        let mut tasks = Vec::new();
        for i in 0..consumers {
            let s = Arc::clone(&stores[i % handles]);
            let ch = ch.clone();
            let start = Arc::clone(&start);
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                if i % 2 == 0 {
                    (false, s.use_challenge(&ch).await.unwrap())
                } else {
                    let won = s
                        .put_session_audited(&ch, &session(&ch), event(2))
                        .await
                        .unwrap();
                    (true, won.is_some())
                }
            }));
        }
        let mut wins = 0;
        let mut session_won = false;
        for t in tasks {
            let (put, won) = t.await.unwrap();
            if won {
                wins += 1;
                session_won = put;
            }
        }
        assert_eq!(wins, 1, "round {round}");
        let stored = stores[0]
            .get_session(&ch.session_id, NOW + 1)
            .await
            .unwrap()
            .is_some();
        assert_eq!(stored, session_won, "round {round}");
    }
}

pub async fn sessions_round_trip_and_expire(b: &dyn Backend) {
    let st = b.store();
    let fresh = || Challenge::generate("snp", HashAlgorithm::Sha384, NOW).unwrap();
    let ch = fresh();
    let s = session(&ch);
    assert!(
        st.put_session_audited(&ch, &s, event(5))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        st.get_session(&s.session_id, NOW + 1).await.unwrap(),
        Some(s.clone())
    );
    // Seen from another handle too.
    assert_eq!(
        b.another()
            .await
            .get_session(&s.session_id, NOW + 1)
            .await
            .unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        st.get_session(&s.session_id, s.expires_ms).await.unwrap(),
        None
    );
    // Its challenge is used: a second session for it is refused and the first one stays.
    let mut s2 = s.clone();
    s2.token_digest = store::token_digest("newer");
    assert_eq!(
        st.put_session_audited(&ch, &s2, event(6)).await.unwrap(),
        None
    );
    assert_eq!(
        st.get_session(&s.session_id, NOW + 1).await.unwrap(),
        Some(s.clone())
    );
    // Purged when it expires (its challenge's record later, see above).
    assert_eq!(st.purge_expired(s.expires_ms - 1, 100).await.unwrap(), 0);
    assert_eq!(st.purge_expired(s.expires_ms, 100).await.unwrap(), 1);
    assert_eq!(st.get_session(&s.session_id, NOW).await.unwrap(), None);
    assert_eq!(st.purge_expired(s.expires_ms, 100).await.unwrap(), 0);

    // A session is written once: after its challenge's record went (purged early, by a clock
    // running ahead), a second answer still finds the session and is refused.
    let long = fresh();
    let mut kept = session(&long);
    kept.expires_ms = long.retain_until_ms() + 1;
    assert!(
        st.put_session_audited(&long, &kept, event(10))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        st.purge_expired(long.retain_until_ms(), 100).await.unwrap(),
        2
    );
    let mut replaced = kept.clone();
    replaced.token_digest = store::token_digest("replayed");
    assert_eq!(
        st.put_session_audited(&long, &replaced, event(11))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        st.get_session(&long.session_id, NOW + 1).await.unwrap(),
        Some(kept.clone())
    );
    assert_eq!(st.purge_expired(kept.expires_ms, 100).await.unwrap(), 2);

    // A session stored together with the audit entry that records it.
    let before = st.audit_entries(0, 10_000).await.unwrap().len();
    let ch3 = fresh();
    let s3 = session(&ch3);
    let mut ev = event(7);
    ev.reason = "snp evidence verified".into();
    let entry = st
        .put_session_audited(&ch3, &s3, ev.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.event, ev);
    assert_eq!(
        st.get_session(&s3.session_id, NOW + 1).await.unwrap(),
        Some(s3.clone())
    );
    let entries = st.audit_entries(0, 10_000).await.unwrap();
    assert_eq!(entries.len(), before + 1);
    assert_eq!(entries.last().unwrap().hash, entry.hash);
    store::verify_audit_chain(st.as_ref()).await.unwrap();

    // A session the database refuses: no entry records it (the embedded store and PostgreSQL
    // commit both in one transaction).
    b.refuse_marked_rows().await;
    let ch4 = fresh();
    let mut s4 = session(&ch4);
    s4.tee = "refuse".into();
    assert!(st.put_session_audited(&ch4, &s4, event(8)).await.is_err());
    assert_eq!(st.get_session(&s4.session_id, NOW + 1).await.unwrap(), None);
    // Nor is its challenge's use: the guest may answer it again.
    assert!(st.use_challenge(&ch4).await.unwrap());
    // An entry the database refuses: the session it records is not stored either (a stored
    // session would be usable with its cookie although its attestation is not in the log).
    let ch5 = fresh();
    let s5 = session(&ch5);
    let mut refused = event(9);
    refused.reason = "refuse".into();
    assert!(st.put_session_audited(&ch5, &s5, refused).await.is_err());
    assert!(st.use_challenge(&ch5).await.unwrap());
    assert_eq!(st.get_session(&s5.session_id, NOW + 1).await.unwrap(), None);
    assert_eq!(st.audit_entries(0, 10_000).await.unwrap().len(), before + 1);
    store::verify_audit_chain(st.as_ref()).await.unwrap();
}

pub fn event(i: i64) -> AuditEvent {
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

/// `appends` concurrent appends from two handles form one chain; the table refuses edits;
/// edits made around that are named by the verifier.
/// Text a guest or an admin chose may hold NUL and other control characters (PostgreSQL's
/// `text` refuses NUL): such an entry is stored with U+FFFD in their place, and the entries
/// committed in the same batch as it are stored too.
pub async fn control_characters_in_audit_text_fail_no_batch(b: &dyn Backend) {
    let store = b.store();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = Arc::clone(&store);
        let mut ev = event(i);
        if i % 3 == 0 {
            ev.actor = format!("jwt:\u{0}{i}");
            ev.reason = "tee-pubkey: unknown member \"\u{0}\"\n".into();
            ev.resource = Some("t/key/\u{0}".into());
        }
        tasks.push(tokio::spawn(async move { s.append_audit(ev).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store::verify_audit_chain(store.as_ref()).await.unwrap(), 24);
    let entries = store.audit_entries(0, 100).await.unwrap();
    let cleaned: Vec<_> = entries
        .iter()
        .filter(|e| e.event.actor.starts_with("jwt:"))
        .collect();
    assert_eq!(cleaned.len(), 8);
    for e in cleaned {
        assert!(e.event.actor.starts_with("jwt:\u{fffd}"));
        assert_eq!(
            e.event.reason,
            "tee-pubkey: unknown member \"\u{fffd}\"\u{fffd}"
        );
        assert_eq!(e.event.resource.as_deref(), Some("t/key/\u{fffd}"));
    }
}

/// A release's entry is written only while what it read still holds: the version it opened,
/// under the same policy, and the same newest version. After a delete or a new version,
/// nothing is written (and nothing may leave).
pub async fn a_release_is_recorded_only_while_its_basis_holds(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let r = res("tenant-r/key/db");
    let ring = b.keys().current();
    for (policy, value) in [("policy one", b"v1"), ("policy two", b"v2")] {
        store::put_secret(
            s,
            &ring,
            &r,
            Some(policy),
            &SecretValue::new(value.to_vec()),
            NOW,
            BY,
        )
        .await
        .unwrap();
    }
    let basis = |version, policy: &[u8], newest| store::ReleaseBasis {
        resource: r.clone(),
        version,
        policy_digest: PolicyDigest::of(policy),
        newest,
    };
    let release = |i: i64| {
        let mut e = event(i);
        e.action = AuditAction::Release;
        e.reason = format!("release {i}");
        e
    };
    let entries = || async { s.audit_entries(0, 1000).await.unwrap().len() };
    let before = entries().await;
    // What was read holds: recorded.
    assert!(
        s.append_release(release(1), &basis(2, b"policy two", 2))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.append_release(release(2), &basis(1, b"policy one", 2))
            .await
            .unwrap()
            .is_some()
    );
    // Another policy than the version's, another newest, a version that never was: nothing.
    for wrong in [
        basis(2, b"policy one", 2),
        basis(1, b"policy one", 1),
        basis(3, b"policy two", 3),
    ] {
        assert!(
            s.append_release(release(3), &wrong)
                .await
                .unwrap()
                .is_none(),
            "{wrong:?}"
        );
    }
    assert_eq!(entries().await, before + 2);
    // A new version committed: a release judged against the old newest is not recorded.
    store::put_secret(
        s,
        &ring,
        &r,
        Some("policy three"),
        &SecretValue::new(b"v3".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    assert!(
        s.append_release(release(4), &basis(2, b"policy two", 2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.append_release(release(5), &basis(2, b"policy two", 3))
            .await
            .unwrap()
            .is_some()
    );
    // Deleted: not recorded.
    s.delete_versions(&r, Some(2), del_ev()).await.unwrap();
    assert!(
        s.append_release(release(6), &basis(2, b"policy two", 3))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store::verify_audit_chain(s).await.unwrap(),
        u64::try_from(entries().await).unwrap()
    );
}

pub async fn audit_chain_appends_verify_and_tampering_is_named(b: &dyn Backend, appends: u64) {
    let mine = b.store();
    let other = b.another().await;
    let n = i64::try_from(appends).unwrap();
    let mut tasks = Vec::new();
    for i in 0..n {
        let s = if i % 2 == 0 {
            Arc::clone(&mine)
        } else {
            Arc::clone(&other)
        };
        tasks.push(tokio::spawn(async move {
            s.append_audit(event(i)).await.unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=appends).collect::<Vec<_>>());
    assert_eq!(
        store::verify_audit_chain(mine.as_ref()).await.unwrap(),
        appends
    );
    let page = mine.audit_entries(5, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|x| x.seq).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );
    // After a sequence number past any a store can hold: an empty page, not an error.
    for after in [
        i64::MAX.unsigned_abs(),
        i64::MAX.unsigned_abs() + 1,
        u64::MAX,
    ] {
        assert!(mine.audit_entries(after, 3).await.unwrap().is_empty());
    }

    // The table refuses updates and deletes.
    assert!(
        b.exec("UPDATE audit SET verdict = 'fail' WHERE seq = 7")
            .await
            .is_err()
    );
    assert!(b.exec("DELETE FROM audit WHERE seq = 7").await.is_err());
    assert_eq!(
        store::verify_audit_chain(mine.as_ref()).await.unwrap(),
        appends
    );
    // Someone with the database drops the triggers and edits entry 7: the verifier names it.
    b.drop_audit_guard().await;
    assert_eq!(
        b.exec("UPDATE audit SET verdict = 'fail' WHERE seq = 7")
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        store::verify_audit_chain(mine.as_ref()).await,
        Err(StoreError::AuditChain(AuditChainError::Altered { seq: 7 }))
    ));
    b.exec("UPDATE audit SET verdict = 'pass' WHERE seq = 7")
        .await
        .unwrap();
    assert_eq!(
        store::verify_audit_chain(mine.as_ref()).await.unwrap(),
        appends
    );
    b.exec("DELETE FROM audit WHERE seq = 12").await.unwrap();
    assert!(matches!(
        store::verify_audit_chain(mine.as_ref()).await,
        Err(StoreError::AuditChain(AuditChainError::SequenceGap {
            seq: 13,
            ..
        }))
    ));
    // An unknown action or verdict name in a row: the verifier names the entry.
    b.exec("UPDATE audit SET action = 'nonsense' WHERE seq = 3")
        .await
        .unwrap();
    assert!(matches!(
        mine.audit_entries(0, 10).await,
        Err(StoreError::AuditChain(AuditChainError::Malformed {
            seq: 3,
            field: "action"
        }))
    ));
    b.exec("UPDATE audit SET action = 'attest', verdict = 'maybe' WHERE seq = 2")
        .await
        .unwrap();
    let e = store::verify_audit_chain(mine.as_ref()).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::AuditChain(AuditChainError::Malformed {
                seq: 2,
                field: "verdict"
            })
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("entry 2"), "{e}");
    // An entry edited before a damaged row: the edited one is named, not the row after it
    // that does not read (it is in the same page).
    b.exec("UPDATE audit SET reason = 'forged' WHERE seq = 1")
        .await
        .unwrap();
    assert!(matches!(
        store::verify_audit_chain(mine.as_ref()).await,
        Err(StoreError::AuditChain(AuditChainError::Altered { seq: 1 }))
    ));
    // The page before the damaged row, then the row's own error.
    let (page, damaged) = store::audit_entries_until_damage(mine.as_ref(), 0, 10)
        .await
        .unwrap();
    assert!(damaged);
    assert_eq!(page.iter().map(|x| x.seq).collect::<Vec<_>>(), vec![1]);
    assert!(matches!(
        store::audit_entries_until_damage(mine.as_ref(), 1, 10).await,
        Err(StoreError::AuditChain(AuditChainError::Malformed {
            seq: 2,
            field: "verdict"
        }))
    ));
    let (page, damaged) = store::audit_entries_until_damage(mine.as_ref(), 3, 3)
        .await
        .unwrap();
    assert!(!damaged);
    assert_eq!(
        page.iter().map(|x| x.seq).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
}

/// The readiness probe reads no row: an audit entry edited in the database so that it no
/// longer reads (a verdict the broker never writes) is `audit verify`'s to name, and leaves
/// the store answering the probe.
pub async fn the_probe_answers_over_a_damaged_audit_row(b: &dyn Backend) {
    let s = b.store();
    s.append_audit(event(0)).await.unwrap();
    s.ping().await.unwrap();
    b.drop_audit_guard().await;
    assert_eq!(
        b.exec("UPDATE audit SET verdict = 'PASS' WHERE seq = 1")
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        s.audit_entries(0, 1).await,
        Err(StoreError::AuditChain(AuditChainError::Malformed {
            seq: 1,
            field: "verdict"
        }))
    ));
    s.ping().await.unwrap();
}

/// An audit row edited to hold a reason longer than the broker ever writes, with its hash
/// recomputed so that the chain alone would verify, is named as that entry's damage, the
/// column with it, before its text is copied.
pub async fn an_audit_column_longer_than_the_broker_writes_is_named(b: &dyn Backend) {
    let s = b.store();
    for i in 0..3 {
        s.append_audit(event(i)).await.unwrap();
    }
    let last = s.audit_entries(2, 1).await.unwrap().remove(0);
    assert_eq!(last.seq, 3);
    let mut forged = last.event.clone();
    forged.reason = "x".repeat(1 << 20);
    let hash = tessera_broker::audit::entry_hash(3, &forged, &last.prev_hash).unwrap();
    b.drop_audit_guard().await;
    b.exec(&format!(
        "UPDATE audit SET reason = '{}', hash = '{hash}' WHERE seq = 3",
        forged.reason
    ))
    .await
    .unwrap();
    let e = store::verify_audit_chain(s.as_ref()).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::AuditChain(AuditChainError::Malformed {
                seq: 3,
                field: "reason"
            })
        ),
        "{e:?}"
    );
    // The entries before it still read, and the longest reason the broker writes reads too.
    assert_eq!(s.audit_entries(0, 2).await.unwrap().len(), 2);
    forged.reason = "y".repeat(tessera_broker::audit::MAX_REASON_LEN);
    let hash = tessera_broker::audit::entry_hash(3, &forged, &last.prev_hash).unwrap();
    b.exec(&format!(
        "UPDATE audit SET reason = '{}', hash = '{hash}' WHERE seq = 3",
        forged.reason
    ))
    .await
    .unwrap();
    assert_eq!(store::verify_audit_chain(s.as_ref()).await.unwrap(), 3);
}

pub async fn kek_rotation_rewraps_everything_and_retires_the_old_kek(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let keys = b.keys();
    let first = keys.current().active_id().clone();
    let mut expected = Vec::new();
    // The first version says which sealed file it came from; the others do not.
    const ORIGIN: &str = "5ea1ed0f11e";
    for i in 0..300u32 {
        let r = res(&format!("t{}/key/k{i}", i % 3));
        let v = format!("value-{i}").into_bytes();
        let by = ChangeBy {
            origin: (i == 0).then_some(ORIGIN),
            ..BY
        };
        store::put_secret(
            s,
            &keys.current(),
            &r,
            Some("p"),
            &SecretValue::new(v.clone()),
            NOW,
            by,
        )
        .await
        .unwrap();
        expected.push((r, v));
    }
    // Two repository defaults: one the broker set, one written into the database.
    let d = s.put_policy("p", NOW).await.unwrap();
    let set = default_of(s, &keys.current(), "t0", &d);
    s.set_repo_policy("t0", Some(&set), NOW, policy_ev())
        .await
        .unwrap();
    let mut forged = default_of(s, &keys.current(), "t1", &d);
    forged.mac = "00".repeat(32);
    s.set_repo_policy("t1", Some(&forged), NOW, policy_ev())
        .await
        .unwrap();
    // And one whose digest is not even one (it must not stop the rotation).
    s.set_repo_policy("t2", Some(&set), NOW, policy_ev())
        .await
        .unwrap();
    b.exec("INSERT INTO policies(digest, text, created_ms) VALUES ('not a digest', 'x', 0)")
        .await
        .unwrap();
    b.exec("UPDATE repo_policies SET digest = 'not a digest' WHERE repo = 't2'")
        .await
        .unwrap();
    // A store replicas share is not rotated online; its only user may rotate it.
    let report = if s.shared_by_replicas() {
        let err = store::rotate_kek(s, keys, tessera::UnixTime::now)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::RotationShared), "{err}");
        assert_eq!(keys.current().ids(), vec![&first]);
        store::rotate_kek_exclusive(s, keys, tessera::UnixTime::now)
            .await
            .unwrap()
    } else {
        store::rotate_kek(s, keys, tessera::UnixTime::now)
            .await
            .unwrap()
    };
    assert_eq!(report.rewrapped, 300);
    assert_eq!(report.retired, vec![first.clone()]);
    assert_ne!(report.kek_id, first);
    assert_eq!(
        (report.repo_policies, report.repo_policies_unauthentic),
        (1, 2)
    );
    let ring = KeyringFile::open(keys.path()).unwrap().current();
    assert_eq!(ring.ids(), vec![&report.kek_id]);
    // The default the broker set is under the new KEK and still serves puts; the forged one
    // was left as it was, and still refuses them.
    let t0 = s.repo_policy("t0").await.unwrap().unwrap();
    assert_eq!(t0.kek_id, report.kek_id.as_str());
    assert_eq!(t0.digest, d);
    let put = store::put_secret(
        s,
        &ring,
        &res("t0/key/new"),
        None,
        &SecretValue::new(b"n".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    assert_eq!(put.policy_digest, d);
    assert_eq!(s.repo_policy("t1").await.unwrap(), Some(forged.clone()));
    assert!(matches!(
        store::put_secret(
            s,
            &ring,
            &res("t1/key/new"),
            None,
            &SecretValue::new(b"n".to_vec()),
            NOW,
            BY
        )
        .await,
        Err(StoreError::RepoPolicyUnauthenticated { .. })
    ));
    // A MAC is replaced only over the row it was made from.
    assert!(!s.replace_repo_policy("t0", &set, &t0).await.unwrap());
    assert!(
        s.repo_policies_not_under(report.kek_id.as_str(), "", 10)
            .await
            .unwrap()
            .iter()
            .map(|(repo, p)| (repo.as_str(), p.is_some()))
            .eq([("t1", true), ("t2", false)])
    );
    assert!(
        s.repo_policies_not_under(report.kek_id.as_str(), "t2", 10)
            .await
            .unwrap()
            .is_empty()
    );
    for (i, (r, v)) in expected.iter().enumerate() {
        let rec = s.get_version(r, None).await.unwrap().unwrap();
        assert_eq!(rec.sealed.kek_id, report.kek_id.as_str());
        assert_eq!(store::open_stored(&ring, &rec).unwrap().expose(), &v[..]);
        // Re-wrapping keeps where the value came from.
        assert_eq!(rec.origin.as_deref(), (i == 0).then_some(ORIGIN), "{r}");
    }
    assert!(
        s.list_versions(None, None, 1000)
            .await
            .unwrap()
            .iter()
            .all(|i| i.kek_id == report.kek_id.as_str())
    );
    // A second rotation works on the result of the first.
    let again = store::rotate_kek_exclusive(s, keys, tessera::UnixTime::now)
        .await
        .unwrap();
    assert_eq!(again.rewrapped, 301);
    assert_eq!(
        (again.repo_policies, again.repo_policies_unauthentic),
        (1, 2)
    );

    // A wrapping made for other data is not installed.
    let rec = s
        .get_version(&res("t0/key/k0"), None)
        .await
        .unwrap()
        .unwrap();
    let other = s
        .get_version(&res("t1/key/k1"), None)
        .await
        .unwrap()
        .unwrap();
    let mut wrong = rec.sealed.clone();
    wrong.ciphertext = other.sealed.ciphertext.clone();
    assert!(
        !s.replace_wrapping(&rec.resource, rec.version, &rec.sealed.kek_id, &wrong)
            .await
            .unwrap()
    );
    let mut wrong = rec.sealed.clone();
    wrong.nonce = other.sealed.nonce;
    assert_ne!(wrong.nonce, rec.sealed.nonce);
    assert!(
        !s.replace_wrapping(&rec.resource, rec.version, &rec.sealed.kek_id, &wrong)
            .await
            .unwrap()
    );
    assert!(
        !s.replace_wrapping(&rec.resource, rec.version, "kek-other", &rec.sealed)
            .await
            .unwrap()
    );
    assert!(
        s.versions_not_wrapped_by(&rec.sealed.kek_id, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A record whose KEK is unknown stops the rotation (the key check, first, finds it).
    b.exec("UPDATE secrets SET kek_id = 'kek-lost' WHERE resource = 't0/key/k0'")
        .await
        .unwrap();
    let err = store::rotate_kek_exclusive(s, keys, tessera::UnixTime::now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::KeyCheck(KeyCheckError::Unopenable { store_kek, .. })
                if store_kek == "kek-lost"
        ),
        "{err}"
    );
    // Refused before it began: the keyring is as it was (one KEK, no new one added).
    assert_eq!(keys.current().ids().len(), 1);
}

/// A keyring of one new KEK, as a broker whose KEK file was not there makes it.
fn fresh_ring() -> Keyring {
    Keyring::new(tessera_broker::seal::Kek::generate().unwrap())
}

/// `err` is the key check's refusal `want` (matched on its kind), naming the KEK the store
/// was made with and the keyring's ids, and no key bytes.
fn assert_refused(err: StoreError, want: &str, store_kek: &str, ring: &Keyring) {
    let text = err.to_string();
    let kind = match &err {
        StoreError::KeyCheck(KeyCheckError::NotHeld { .. }) => "not held",
        StoreError::KeyCheck(KeyCheckError::Mismatch { .. }) => "mismatch",
        StoreError::KeyCheck(KeyCheckError::Unopenable { .. }) => "unopenable",
        other => panic!("not a key check refusal: {other:?}"),
    };
    assert_eq!(kind, want, "{text}");
    assert!(text.contains(&format!("`{store_kek}`")), "{text}");
    for id in ring.ids() {
        assert!(text.contains(&format!("`{id}`")), "{text}");
    }
    // No key bytes nor MAC: nothing base64 or hex long enough to be one (a KEK id is 20).
    let longest = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest < 40, "{text}");
}

/// The first keyring to open a store records its key check; another handle (another process
/// or replica) with another keyring, as a broker whose KEK file is missing makes it, is
/// refused, and so is a keyring holding another key under the store's KEK id; the same
/// keyring is accepted on every handle.
pub async fn a_store_refuses_a_keyring_it_was_not_made_with(b: &dyn Backend) {
    let s = b.store();
    let ring = b.keys().current();
    let kek = ring.active_id().as_str().to_owned();
    assert_eq!(s.key_check().await.unwrap(), None);
    let check = store::check_keyring(s.as_ref(), &ring).await.unwrap();
    assert_eq!(check.kek_id, kek);
    assert_eq!(s.key_check().await.unwrap(), Some(check.clone()));
    // The check holds no key: its MAC is not the KEK (in any spelling of the keyring file's),
    // and it is the store's: another store's is another MAC under the same KEK.
    assert_eq!(check.mac.len(), 64);
    let file = std::fs::read_to_string(b.keys().path()).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&file).unwrap();
    for k in doc["keys"].as_array().unwrap() {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD
            .decode(k["key"].as_str().unwrap())
            .unwrap();
        assert!(
            !check.mac.contains(&hex::encode(&key)),
            "the MAC holds the key"
        );
        assert!(!check.mac.contains(k["key"].as_str().unwrap()));
    }
    assert_ne!(
        KeyCheck::new(&ring, b"another store's identity")
            .unwrap()
            .mac,
        check.mac
    );
    // A secret put at the first handle.
    store::put_secret(
        s.as_ref(),
        &ring,
        &res("t/key/a"),
        Some("p"),
        &SecretValue::new(b"v".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();

    let other = b.another().await;
    // The same keyring: accepted, the same check, nothing written.
    assert_eq!(
        store::check_keyring(other.as_ref(), &ring).await.unwrap(),
        check
    );
    // A replica with a KEK of its own (its KEK file not mounted): refused.
    let fresh = fresh_ring();
    let err = store::check_keyring(other.as_ref(), &fresh)
        .await
        .unwrap_err();
    assert_refused(err, "not held", &kek, &fresh);
    // Another key under the store's KEK id: the MAC does not verify.
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut bytes).unwrap();
    let twin = Keyring::new(tessera_broker::seal::Kek::from_bytes(
        ring.active_id().clone(),
        bytes,
    ));
    let err = store::check_keyring(other.as_ref(), &twin)
        .await
        .unwrap_err();
    assert_refused(err, "mismatch", &kek, &twin);
    // A check changed in the database (its MAC) is refused too, even by the right keyring.
    b.exec("UPDATE key_check SET mac = 'ab'").await.unwrap();
    let err = store::check_keyring(other.as_ref(), &ring)
        .await
        .unwrap_err();
    assert_refused(err, "mismatch", &kek, &ring);
    // Nothing the refused keyrings did changed the check.
    assert!(
        s.replace_key_check(
            &KeyCheck {
                mac: "ab".into(),
                ..check.clone()
            },
            &check
        )
        .await
        .unwrap()
    );
    assert_eq!(other.key_check().await.unwrap(), Some(check));
}

/// Handles on one empty store, each with a keyring of its own, checking at once (replicas
/// starting together): one check is recorded, exactly one keyring is accepted, and it is the
/// one the recorded check names.
pub async fn handles_racing_on_an_empty_store_agree_on_one_check(b: &dyn Backend) {
    let mut handles = Vec::new();
    for _ in 0..6 {
        handles.push((b.another().await, Arc::new(fresh_ring())));
    }
    let start = Arc::new(tokio::sync::Barrier::new(handles.len()));
    let tasks: Vec<_> = handles
        .iter()
        .map(|(s, ring)| {
            let (s, ring, start) = (Arc::clone(s), Arc::clone(ring), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                store::check_keyring(s.as_ref(), &ring).await
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(check) => accepted.push((i, check)),
            Err(StoreError::KeyCheck(KeyCheckError::NotHeld { .. })) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let (winner, check) = &accepted[0];
    assert_eq!(
        check.kek_id,
        handles[*winner].1.active_id().as_str(),
        "the accepted keyring is the one the check names"
    );
    assert_eq!(b.store().key_check().await.unwrap().as_ref(), Some(check));
    assert_eq!(b.count("SELECT count(*) FROM key_check").await, 1);
}

/// A store that holds data but no key check (made before stores kept one) is given the check
/// of the first keyring that holds every KEK its secret versions are sealed under; a keyring
/// that does not is refused, and records nothing.
pub async fn a_store_without_a_check_takes_only_a_keyring_that_opens_it(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let ring = b.keys().current();
    let kek = ring.active_id().as_str().to_owned();
    // Nothing sealed yet: any keyring would do; none is checked.
    assert!(s.sealed_kek_ids(10).await.unwrap().is_empty());
    // A repository default under the KEK (and a default from before defaults carried a MAC,
    // which names none).
    let d = s.put_policy("p", NOW).await.unwrap();
    let set = default_of(s, &ring, "t", &d);
    s.set_repo_policy("t", Some(&set), NOW, policy_ev())
        .await
        .unwrap();
    s.set_repo_policy("u", Some(&set), NOW, policy_ev())
        .await
        .unwrap();
    b.exec("UPDATE repo_policies SET kek_id = '', mac = '' WHERE repo = 'u'")
        .await
        .unwrap();
    // Defaults are not what must open (a rotation leaves one it did not set under the KEK it
    // named, and a put refuses an unauthentic one): they name no KEK here.
    assert!(s.sealed_kek_ids(10).await.unwrap().is_empty());
    // Secret versions under the KEK and under a second one, 12 versions each.
    let second = fresh_ring();
    for i in 0..12 {
        for r in [&*ring, &second] {
            store::put_secret(
                s,
                r,
                &res(&format!("t/key/k{i}")),
                Some("p"),
                &SecretValue::new(b"v".to_vec()),
                NOW,
                BY,
            )
            .await
            .unwrap();
        }
    }
    let mut both = vec![kek.clone(), second.active_id().as_str().to_owned()];
    both.sort();
    assert_eq!(s.sealed_kek_ids(10).await.unwrap(), both);
    assert_eq!(s.sealed_kek_ids(1).await.unwrap(), both[..1]);
    // Either KEK alone is refused (the other's data would not open), naming the one missing.
    for (held, missing) in [(&*ring, &second), (&second, &*ring)] {
        let err = store::check_keyring(s, held).await.unwrap_err();
        assert_refused(err, "unopenable", missing.active_id().as_str(), held);
    }
    assert_eq!(s.key_check().await.unwrap(), None);
    // Once the second KEK's versions are gone, the keyring that holds the rest records its
    // check, and is accepted from then on.
    b.exec(&format!(
        "DELETE FROM secrets WHERE kek_id = '{}'",
        second.active_id()
    ))
    .await
    .unwrap();
    let check = store::check_keyring(s, &ring).await.unwrap();
    assert_eq!(check.kek_id, kek);
    assert_eq!(s.key_check().await.unwrap(), Some(check));
    let err = store::check_keyring(s, &second).await.unwrap_err();
    assert_refused(err, "not held", &kek, &second);
}

/// A keyring that lacks the KEK versions were sealed under since the store's check was
/// made (a rotation begun and not finished, or the two-rollout rotation of a store replicas
/// share, where the check keeps naming the first KEK; then a KEK file restored from before,
/// or a replica's Secret not given the new KEK) is refused, naming the KEK it lacks; the
/// keyring holding both is accepted.
pub async fn a_keyring_without_the_kek_of_newer_versions_is_refused(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let keys = b.keys();
    let before = keys.current();
    let check = store::check_keyring(s, &before).await.unwrap();
    assert_eq!(check.kek_id, before.active_id().as_str());
    let backup = std::fs::read(keys.path()).unwrap();
    let newer = keys.begin_rotation().unwrap();
    keys.end_rotation();
    let both = keys.current();
    assert_eq!(both.ids().len(), 2);
    store::put_secret(
        s,
        &both,
        &res("t/key/new"),
        Some("p"),
        &SecretValue::new(b"v".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let restored = dir.path().join("kek");
    std::fs::write(&restored, &backup).unwrap();
    std::fs::set_permissions(
        &restored,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let stale = KeyringFile::open(&restored).unwrap().current();
    let err = store::check_keyring(s, &stale).await.unwrap_err();
    assert_refused(err, "unopenable", newer.as_str(), &stale);
    assert_eq!(store::check_keyring(s, &both).await.unwrap(), check);
}

/// A KEK rotation re-makes the key check under the new KEK before it retires the old one: the
/// rotated keyring (read again from its file) is accepted, the old KEK alone is not. A rotation
/// interrupted before its end leaves the check under the old KEK, which the keyring still
/// holds: accepted, and the next rotation finishes it.
pub async fn a_rotated_store_opens_with_the_rotated_keyring(b: &dyn Backend) {
    let s = b.store();
    let s = s.as_ref();
    let keys = b.keys();
    let old_ring = keys.current();
    let first = old_ring.active_id().as_str().to_owned();
    store::put_secret(
        s,
        &old_ring,
        &res("t/key/a"),
        Some("p"),
        &SecretValue::new(b"v".to_vec()),
        NOW,
        BY,
    )
    .await
    .unwrap();
    assert_eq!(
        store::check_keyring(s, &old_ring).await.unwrap().kek_id,
        first
    );
    let report = store::rotate_kek_exclusive(s, keys, tessera::UnixTime::now)
        .await
        .unwrap();
    let rotated = KeyringFile::open(keys.path()).unwrap().current();
    assert_eq!(rotated.ids(), vec![&report.kek_id]);
    let check = store::check_keyring(s, &rotated).await.unwrap();
    assert_eq!(check.kek_id, report.kek_id.as_str());
    assert_eq!(s.key_check().await.unwrap(), Some(check.clone()));
    let err = store::check_keyring(s, &old_ring).await.unwrap_err();
    assert_refused(err, "not held", report.kek_id.as_str(), &old_ring);

    // Interrupted: the new KEK is active, nothing re-wrapped, the check under the old KEK.
    let second = report.kek_id.as_str().to_owned();
    let third = keys.begin_rotation().unwrap();
    keys.end_rotation();
    let midway = KeyringFile::open(keys.path()).unwrap().current();
    assert_eq!(midway.active_id(), &third);
    assert_eq!(midway.ids().len(), 2);
    assert_eq!(
        store::check_keyring(s, &midway).await.unwrap().kek_id,
        second
    );
    // The next rotation takes it up, and ends with the check under the third KEK.
    let report = store::rotate_kek_exclusive(s, keys, tessera::UnixTime::now)
        .await
        .unwrap();
    assert!(report.resumed);
    assert_eq!(report.kek_id, third);
    let rotated = KeyringFile::open(keys.path()).unwrap().current();
    assert_eq!(
        store::check_keyring(s, &rotated).await.unwrap().kek_id,
        third.as_str()
    );
    // A rotation is refused, before it changes anything, with a keyring the store was not
    // made with.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = KeyringFile::open_or_create(
        &stranger_dir.path().join("kek"),
        tessera_broker::keyfile::Symlinks::Refuse,
    )
    .unwrap();
    let err = store::rotate_kek_exclusive(s, &stranger, tessera::UnixTime::now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::KeyCheck(_)), "{err}");
    assert_eq!(stranger.current().ids().len(), 1);
    assert_eq!(s.key_check().await.unwrap().unwrap().kek_id, third.as_str());
}
