//! Secrets sealed for Git, over real HTTP on loopback: the broker's public sealing key, an offline
//! seal to it, an idempotent import, refusals of a moved or altered seal, and the Confidential
//! Containers sealed-secret form whose verification key a guest fetches like any resource.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tessera::snp::abi::Product;
use tessera_broker::gitseal;
use tessera_broker::resource::ResourcePath;
use tessera_guest::client::{Client, ClientOptions};
use tessera_guest::sim::{Measurements, SimSnp};
use tessera_server::ServerConfig;

const POLICY: &str = r#"
version = 1
id = "smoke"
[snp]
measurement = ["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"]
debug = "must-not"
min_tcb = "any"
signer = "any"
vmpl = "any"
revocation = "if-given"
permit_provisional_firmware = true
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

struct Broker {
    url: String,
    token: String,
    /// The SQLite database file.
    db: std::path::PathBuf,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start(sim: &SimSnp) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.der");
    std::fs::write(&root, sim.root().der()).unwrap();
    let mut config = ServerConfig::with_data_dir(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.verifier.dangerous_test_roots.push(root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, info) = rt.block_on(tessera_server::start(&config)).unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    rt.spawn(server.run(std::future::pending()));
    let token = std::fs::read_to_string(info.admin_token_file.unwrap())
        .unwrap()
        .trim()
        .to_owned();
    Broker {
        url,
        token,
        db: dir.path().join("data").join("tessera.db"),
        _rt: rt,
        _dir: dir,
    }
}

impl Broker {
    /// Puts `resource` under `policy`, then asks for its CoCo sealed-secret pointer (the answer).
    fn put_and_coco_seal(&self, resource: &str, policy: &str) -> Value {
        let put = agent()
            .post(&format!("{}/kbs/v0/resource/{resource}", self.url))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send_json(serde_json::json!({"policy": policy, "value": "c2VjcmV0"}))
            .unwrap();
        assert_eq!(put.status().as_u16(), 200);
        agent()
            .post(&format!("{}/kbs/v0/admin/coco-sealed/{resource}", self.url))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send_empty()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

impl Broker {
    /// The broker's public sealing keys (`GET /kbs/v0/sealing-key`), what `gitseal::seal` takes.
    fn sealing_keys(&self) -> Value {
        agent()
            .get(&format!("{}/kbs/v0/sealing-key", self.url))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }

    fn import(&self, sealed: &str, resource: Option<&str>) -> (u16, Value) {
        let mut url = format!("{}/kbs/v0/admin/sealed", self.url);
        if let Some(r) = resource {
            url.push_str(&format!("?resource={r}"));
        }
        let mut answer = agent()
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .send(sealed.as_bytes())
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.body_mut().read_json().unwrap())
    }

    fn fetch(&self, sim: &SimSnp, resource: &str) -> Vec<u8> {
        let client = Client::new(&self.url, ClientOptions::default()).unwrap();
        client
            .get_secret("snp", resource, None, &mut |rd| {
                sim.evidence(rd, &Measurements::default())
            })
            .unwrap()
            .to_vec()
    }
}

#[test]
fn a_secret_sealed_offline_is_imported_once_and_released() {
    let sim = Arc::new(SimSnp::new(Product::Genoa).unwrap());
    let b = start(&sim);
    let keys = b.sealing_keys();
    assert!(keys["current"].is_string());
    let resource = ResourcePath::parse("app/key/db").unwrap();
    let sealed = gitseal::seal(&keys, &resource, POLICY, b"from git").unwrap();

    let (status, first) = b.import(&sealed, Some("app/key/db"));
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["version"], 1);
    assert_eq!(first["unchanged"], false);
    // GitOps sync: the same file again changes nothing.
    let (status, again) = b.import(&sealed, None);
    assert_eq!(status, 200);
    assert_eq!(again["version"], 1);
    assert_eq!(again["unchanged"], true);
    // With a trailing newline (an editor's), the same file still.
    let (status, again) = b.import(&format!("{sealed}\n"), None);
    assert_eq!(status, 200);
    assert_eq!(again["unchanged"], true, "{again}");
    assert_eq!(b.fetch(&sim, "app/key/db"), b"from git");
    // The same value sealed anew is another file: a new version. Whoever imports learns
    // nothing from the answer about whether a value they sealed equals the stored one.
    let resealed = gitseal::seal(&keys, &resource, POLICY, b"from git").unwrap();
    assert_ne!(resealed, sealed);
    let (status, answer) = b.import(&resealed, None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["version"], 2, "{answer}");
    assert_eq!(answer["unchanged"], false, "{answer}");
    // Then the new file is the one that changes nothing, and the first one makes a version.
    let (_, answer) = b.import(&resealed, None);
    assert_eq!(answer["unchanged"], true, "{answer}");
    let (_, answer) = b.import(&sealed, None);
    assert_eq!(
        (answer["version"].as_u64(), answer["unchanged"].as_bool()),
        (Some(3), Some(false)),
        "{answer}"
    );
    assert_eq!(b.fetch(&sim, "app/key/db"), b"from git");

    // Imported under another path: refused.
    let (status, body) = b.import(&sealed, Some("app/key/other"));
    assert_eq!(status, 400, "{body}");
    // Its header edited (another policy): it does not open.
    let mut parts: Vec<String> = sealed.split('.').map(str::to_owned).collect();
    let mut header: serde_json::Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[0]).unwrap()).unwrap();
    header.insert(gitseal::HEADER_RESOURCE.into(), "app/key/stolen".into());
    parts[0] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    let (status, body) = b.import(&parts.join("."), None);
    assert_eq!(status, 400, "{body}");
    // A sealed file whose policy the store refuses for its size: the request's fault (400),
    // not the broker's.
    let big_policy = format!(
        "{POLICY}\n#{}",
        "x".repeat(tessera_broker::store::MAX_POLICY_LEN)
    );
    let too_big = gitseal::seal(&keys, &resource, &big_policy, b"v").unwrap();
    let (status, body) = b.import(&too_big, None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(b.fetch(&sim, "app/key/db"), b"from git");
    // Without admin credentials: refused.
    let answer = agent()
        .post(&format!("{}/kbs/v0/admin/sealed", b.url))
        .send(sealed.as_bytes())
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
}

/// A GitOps controller on each of several nodes imports the same file at once: one version is
/// made, and every other import answers "unchanged" with that version.
#[test]
fn concurrent_imports_of_one_file_make_one_version() {
    let sim = Arc::new(SimSnp::new(Product::Genoa).unwrap());
    let b = Arc::new(start(&sim));
    let keys = b.sealing_keys();
    let resource = ResourcePath::parse("app/key/raced").unwrap();
    let sealed = Arc::new(gitseal::seal(&keys, &resource, POLICY, b"from git").unwrap());
    let start_line = Arc::new(std::sync::Barrier::new(12));
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let (b, sealed, start_line) =
                (Arc::clone(&b), Arc::clone(&sealed), Arc::clone(&start_line));
            std::thread::spawn(move || {
                start_line.wait();
                b.import(&sealed, None)
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let made: Vec<&Value> = answers
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a["unchanged"] == false)
        .collect();
    assert_eq!(made.len(), 1, "{answers:?}");
    let version = made[0]["version"].as_u64().unwrap();
    assert!(
        answers
            .iter()
            .all(|(_, a)| a["version"].as_u64() == Some(version)),
        "{answers:?}"
    );
    let list: Value = agent()
        .get(&format!("{}/kbs/v0/admin/resources?repo=app", b.url))
        .header("Authorization", &format!("Bearer {}", b.token))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let listed = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["resource"] == "app/key/raced")
        .count();
    assert_eq!(listed, 1, "{list}");
    assert_eq!(b.fetch(&sim, "app/key/raced"), b"from git");
}

#[test]
fn a_coco_sealed_secret_points_at_the_resource_and_verifies_with_the_served_key() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    let sim = Arc::new(SimSnp::new(Product::Genoa).unwrap());
    let b = start(&sim);
    let answer = b.put_and_coco_seal("app/key/db", POLICY);
    let sealed = answer["sealed"].as_str().unwrap();
    let parts: Vec<&str> = sealed.strip_prefix("sealed.").unwrap().split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(payload["name"], "kbs:///app/key/db");
    let kid = header["kid"].as_str().unwrap();
    let digest = tessera_broker::resource::PolicyDigest::of(POLICY.as_bytes());
    let jwk_path = format!(
        "app/sealed-secret/signing-jwk-{}",
        &digest.as_str()["sha384:".len()..][..24]
    );
    assert_eq!(kid, format!("kbs:///{jwk_path}"));
    // Another resource of the repository sealed under a policy this guest does not meet gets
    // its own copy of the key; this guest's copy stays under its policy.
    let other_policy = POLICY.replace("4d4d", "5e5e");
    let other = b.put_and_coco_seal("app/key/other", &other_policy);
    assert_ne!(other["kid"].as_str().unwrap(), kid, "{other}");
    // The guest fetches the verification key like any resource, then checks the signature.
    let jwk: Value = serde_json::from_slice(&b.fetch(&sim, &jwk_path)).unwrap();
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .unwrap();
    assert_eq!(b.fetch(&sim, "app/key/db"), b"secret");
}

/// The CoCo sealed secret's verification key is stored under the policy of the resource's
/// newest version only once that version opens: a row whose policy digest was changed in the
/// database (to a policy of the writer's) is refused, and no key is stored under it.
#[test]
fn a_coco_sealed_secret_refuses_a_policy_changed_in_the_database() {
    let sim = Arc::new(SimSnp::new(Product::Genoa).unwrap());
    let b = start(&sim);
    let loose = POLICY.replace("4d4d", "5e5e");
    let digest = tessera_broker::resource::PolicyDigest::of(loose.as_bytes());
    let put = agent()
        .post(&format!("{}/kbs/v0/resource/app/key/db", b.url))
        .header("Authorization", &format!("Bearer {}", b.token))
        .send_json(serde_json::json!({"policy": POLICY, "value": "c2VjcmV0"}))
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let db = rusqlite::Connection::open(&b.db).unwrap();
    db.execute(
        "INSERT INTO policies(digest, text, created_ms) VALUES (?1, ?2, 0)",
        rusqlite::params![digest.as_str(), loose],
    )
    .unwrap();
    db.execute(
        "UPDATE secrets SET policy_digest = ?1 WHERE resource = 'app/key/db'",
        rusqlite::params![digest.as_str()],
    )
    .unwrap();
    let answer = agent()
        .post(&format!("{}/kbs/v0/admin/coco-sealed/app/key/db", b.url))
        .header("Authorization", &format!("Bearer {}", b.token))
        .send_empty()
        .unwrap();
    assert!(answer.status().as_u16() >= 500, "{}", answer.status());
    let keys: i64 = db
        .query_row(
            "SELECT count(*) FROM secrets WHERE resource LIKE 'app/sealed-secret/%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        keys, 0,
        "a verification key was stored under the writer's policy"
    );
}
