//! `tessera collateral fetch|pack|import|show` against a fake AMD KDS on loopback, and an
//! air-gapped `tessera verify --collateral-dir` with the KDS stopped; a forged VCEK served by
//! the KDS, or carried by a bundle, is refused by `fetch` and `import`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unused_imports // common re-exports the vector helpers, unused here
)]

mod common;
// One fake KDS for the broker and the CLI tests.
#[path = "../../server/tests/common/fake_kds.rs"]
mod fake_kds;
// Intel cache entries from a collateral bundle, shared with the server's tests.
#[path = "../../server/tests/common/intel_entries.rs"]
mod intel_entries;

use std::path::Path;

use common::{code, json, s, stderr, stdout, tempdir, tessera};
use fake_kds::KdsItems;
use tessera::snp::abi::{CertTable, CertTableEntry, Guid, Product};
use tessera_guest::sim::{Measurements, SimSnp};
use tessera_pki::to_pem;

/// A simulated guest: its raw report (no certificates) at `dir/report.bin` and its ARK at
/// `dir/ark.pem`.
fn guest(dir: &Path) -> (SimSnp, Vec<u8>) {
    let g = SimSnp::new(Product::Genoa).unwrap();
    let report = g
        .report(&[7u8; 64], &Measurements::default(), |_| {})
        .unwrap();
    std::fs::write(dir.join("report.bin"), &report).unwrap();
    std::fs::write(dir.join("ark.pem"), to_pem("CERTIFICATE", g.root().der())).unwrap();
    (g, report)
}

/// `tessera collateral fetch --evidence EVIDENCE --kds-url KDS --cache-dir CACHE --out OUT`,
/// with `--dangerous-test-root` for each of `roots`.
fn collateral_fetch(
    evidence: &Path,
    kds: &str,
    cache: &Path,
    out: &Path,
    roots: &[&Path],
) -> std::process::Output {
    let mut args = vec![
        "collateral",
        "fetch",
        "--evidence",
        s(evidence),
        "--kds-url",
        kds,
        "--cache-dir",
        s(cache),
        "--out",
        s(out),
    ];
    for root in roots {
        args.extend(["--dangerous-test-root", s(root)]);
    }
    tessera(&args)
}

fn verify_offline(dir: &Path, collateral: &Path) -> std::process::Output {
    tessera(&[
        "verify",
        s(&dir.join("report.bin")),
        "--collateral-dir",
        s(collateral),
        "--dangerous-test-root",
        s(&dir.join("ark.pem")),
    ])
}

#[test]
fn fetch_pack_import_show_then_air_gapped_verify() {
    let dir = tempdir("coll-airgap");
    let (g, report) = guest(&dir);
    let bundle = dir.join("bundle");
    // Without endorsements the report does not verify.
    let bare = tessera(&[
        "verify",
        s(&dir.join("report.bin")),
        "--dangerous-test-root",
        s(&dir.join("ark.pem")),
    ]);
    assert_ne!(code(&bare), 0, "{}", stdout(&bare));

    {
        let kds = KdsItems::new(g.pki(), &report, g.vcek()).serve();
        let evidence = dir.join("report.bin");
        let fetch = |roots: &[&str], cache: &str, out: &Path| {
            let mut args = vec![
                "collateral",
                "fetch",
                "--evidence",
                s(&evidence),
                "--kds-url",
                &kds.base,
                "--cache-dir",
                cache,
                "--out",
                s(out),
            ];
            args.extend_from_slice(roots);
            tessera(&args)
        };
        // Without the simulator's root nothing it signed is kept: each item refused, by name.
        let untrusted = dir.join("untrusted");
        let o = fetch(&[], s(&dir.join("untrusted-cache")), &untrusted);
        assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
        assert_eq!(
            stdout(&o).matches("refused by the verifier").count(),
            3,
            "{}",
            stdout(&o)
        );
        assert!(!stdout(&o).contains("fetched "), "{}", stdout(&o));
        // With nothing got, no empty bundle is left to be packed and carried.
        assert!(!untrusted.exists(), "an empty bundle was made");
        assert!(
            stderr(&o).contains("nothing written: nothing could be fetched"),
            "{}",
            stderr(&o)
        );
        // ... and its cache keeps none of them either.
        let o = tessera(&["collateral", "show", s(&dir.join("untrusted-cache"))]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(stdout(&o).contains("(empty)"), "{}", stdout(&o));
        let o = fetch(
            &["--dangerous-test-root", s(&dir.join("ark.pem"))],
            s(&dir.join("online-cache")),
            &bundle,
        );
        assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
        assert_eq!(kds.total(), 6);
        assert_eq!(stdout(&o).matches("fetched").count(), 3, "{}", stdout(&o));
        // Again through the same cache: nothing is due, so nothing is asked, and it says so.
        let o = fetch(
            &["--dangerous-test-root", s(&dir.join("ark.pem"))],
            s(&dir.join("online-cache")),
            &dir.join("again"),
        );
        assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
        assert_eq!(stdout(&o).matches("cached ").count(), 3, "{}", stdout(&o));
        assert_eq!(kds.total(), 6);
        // A CRL within a day of its end is due: with the service down, the held copy goes
        // into the bundle, but as STALE, and the fetch exits 1.
        let now = tessera_pki::UnixTime::now().as_secs();
        let mut short = KdsItems::new(g.pki(), &report, g.vcek());
        short.crl_der = g
            .pki()
            .ark_crl(
                &[],
                tessera_pki::UnixTime::from_secs(now - 86_400),
                tessera_pki::UnixTime::from_secs(now + 3600),
            )
            .unwrap()
            .der()
            .to_vec();
        let stale_cache = dir.join("stale-cache");
        let fetch_stale = |kds: &str| {
            collateral_fetch(
                &evidence,
                kds,
                &stale_cache,
                &dir.join("stale-bundle"),
                &[&dir.join("ark.pem")],
            )
        };
        {
            let short_kds = short.serve();
            let o = fetch_stale(&short_kds.base);
            assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
        }
        // (Fetched, by its file, long enough ago that half its life is past too.)
        for e in std::fs::read_dir(stale_cache.join("entries")).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("amd-crl-")
            {
                let mut entry: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                entry["fetched_at"] = serde_json::Value::String(
                    tessera_pki::UnixTime::from_secs(now - 5 * 86_400).to_string(),
                );
                std::fs::write(&p, serde_json::to_vec(&entry).unwrap()).unwrap();
            }
        }
        let o = fetch_stale("http://127.0.0.1:9");
        assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("STALE    amd-crl-genoa-vcek"), "{out}");
        assert!(out.contains("127.0.0.1:9"), "{out}");
        assert_eq!(out.matches("cached ").count(), 2, "{out}");
    } // the fake KDS stops here: from now on, nothing is online.

    let packed = dir.join("bundle.json");
    let o = tessera(&["collateral", "pack", s(&bundle), "--out", s(&packed)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    // A copy of the bundle directory that lost an entry: `show` says which.
    let lossy = dir.join("lossy");
    std::fs::create_dir_all(lossy.join("entries")).unwrap();
    std::fs::copy(bundle.join("manifest.json"), lossy.join("manifest.json")).unwrap();
    let kept: Vec<_> = std::fs::read_dir(bundle.join("entries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for f in &kept[1..] {
        std::fs::copy(f, lossy.join("entries").join(f.file_name().unwrap())).unwrap();
    }
    let o = tessera(&["collateral", "show", s(&lossy)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lost = kept[0].file_stem().unwrap().to_str().unwrap();
    assert!(
        stderr(&o).contains(&format!("the manifest lists {lost}")),
        "{}",
        stderr(&o)
    );
    // A manifest that cannot be read is said, and the entries are still what counts.
    std::fs::write(lossy.join("manifest.json"), b"{").unwrap();
    let o = tessera(&["collateral", "show", s(&lossy)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("warning"), "{}", stderr(&o));
    // The other side: import the one file into an empty cache, list it, verify offline.
    let cache = dir.join("airgapped-cache");
    // Without the root the bundle was signed under, nothing is imported.
    let o = tessera(&["collateral", "import", s(&packed), "--cache-dir", s(&cache)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(stdout(&o).matches("REFUSED  ").count(), 3, "{}", stdout(&o));
    assert!(stderr(&o).contains("imported 0 items"), "{}", stderr(&o));
    let import_trusting = || {
        tessera(&[
            "collateral",
            "import",
            s(&packed),
            "--cache-dir",
            s(&cache),
            "--dangerous-test-root",
            s(&dir.join("ark.pem")),
        ])
    };
    let o = import_trusting();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("imported 3 items"), "{}", stderr(&o));
    assert_eq!(stdout(&o).matches("imported ").count(), 3, "{}", stdout(&o));
    // Again: the very copies are held, so nothing is written, and it says so.
    let o = import_trusting();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("imported 0 items") && stderr(&o).contains("3 held already"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o).matches("held     ").count(), 3, "{}", stdout(&o));
    let o = tessera(&["collateral", "show", s(&cache)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let listing = stdout(&o);
    assert_eq!(listing.matches("valid ").count(), 3, "{listing}");
    assert!(listing.contains("vcek"), "{listing}");
    // --check, for monitoring: 0 while every item is valid; 1 when one is due for refresh
    // (an hour before the first expiry), expired, or nothing is held.
    let check = |path: &Path, at: Option<&str>| {
        let mut args = vec!["collateral", "show", s(path), "--check"];
        args.extend(at.map(|at| ["--at", at]).into_iter().flatten());
        tessera(&args)
    };
    assert_eq!(code(&check(&cache, None)), 0);
    let o = tessera(&["collateral", "show", s(&cache), "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let first_expiry = shown["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            tessera_pki::UnixTime::parse_rfc3339(i["valid_until"].as_str().unwrap())
                .unwrap()
                .as_secs()
        })
        .min()
        .unwrap();
    let due = tessera_pki::UnixTime::from_secs(first_expiry - 3600).to_string();
    let o = check(&cache, Some(&due));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("0 item(s) expired, 1 due for refresh"),
        "{}",
        stderr(&o)
    );
    let o = check(&cache, Some("2200-01-01T00:00:00Z"));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("3 item(s) expired"), "{}", stderr(&o));
    let nothing = dir.join("nothing");
    std::fs::create_dir_all(&nothing).unwrap();
    let o = check(&nothing, None);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing is held"), "{}", stderr(&o));
    // ... nor is there anything to import or pack from it.
    let (nothing_json, nothing_cache) = (dir.join("nothing.json"), dir.join("nothing-cache"));
    for what in ["import", "pack"] {
        let mut args = vec!["collateral", what, s(&nothing)];
        args.extend(if what == "pack" {
            ["--out", s(&nothing_json)]
        } else {
            ["--cache-dir", s(&nothing_cache)]
        });
        let o = tessera(&args);
        assert_eq!(code(&o), 2, "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("holds no collateral entries"),
            "{}",
            stderr(&o)
        );
    }
    // The lossy copy: its manifest lists an item entries/ lacks, which --check counts.
    std::fs::copy(bundle.join("manifest.json"), lossy.join("manifest.json")).unwrap();
    let o = check(&lossy, None);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("missing from entries/"),
        "{}",
        stderr(&o)
    );
    // A damaged entry file does not hide the others: listed as unreadable, and --check fails.
    let damaged = dir.join("damaged");
    std::fs::create_dir_all(damaged.join("entries")).unwrap();
    for f in &kept {
        std::fs::copy(f, damaged.join("entries").join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        damaged.join("entries").join(kept[0].file_name().unwrap()),
        b"{",
    )
    .unwrap();
    let o = tessera(&["collateral", "show", s(&damaged)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("UNREADABLE").count(),
        1,
        "{}",
        stdout(&o)
    );
    assert_eq!(stdout(&o).matches("valid ").count(), 2, "{}", stdout(&o));
    let o = check(&damaged, None);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 entry file(s) unreadable"),
        "{}",
        stderr(&o)
    );
    for source in [&cache, &bundle] {
        let o = verify_offline(&dir, source);
        assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    }
    // An empty directory holds nothing: no verdict from thin air.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = verify_offline(&dir, &empty);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
}

#[test]
fn forged_vcek_from_the_kds_fails_verification() {
    let dir = tempdir("coll-forged");
    let (g, report) = guest(&dir);
    let forger = SimSnp::new(Product::Genoa).unwrap();
    let mut items = KdsItems::new(g.pki(), &report, g.vcek());
    items.vcek_der = forger.vcek().der().to_vec();
    let kds = items.serve();
    let bundle = dir.join("bundle");
    let online = dir.join("online-cache");
    let o = collateral_fetch(
        &dir.join("report.bin"),
        &kds.base,
        &online,
        &bundle,
        &[&dir.join("ark.pem")],
    );
    // The forged certificate has the right shape (a Genoa VCEK for this chip and TCB), but no
    // chain to the trusted root: refused, by name and check, and kept neither in the bundle
    // nor in the cache (the next fetch asks again); the chain and CRL are genuine and kept.
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("FAILED   amd-vcek-genoa-") && out.contains("vek_chain"),
        "{out}"
    );
    assert_eq!(out.matches("fetched ").count(), 2, "{out}");
    drop(kds);
    for held in [&bundle, &online] {
        let o = tessera(&["collateral", "show", s(held)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(!stdout(&o).contains("amd-vcek-"), "{}", stdout(&o));
        assert_eq!(stdout(&o).matches("valid ").count(), 2, "{}", stdout(&o));
    }
    // So verification finds no VCEK (a usage error naming it), never the forged one.
    let o = verify_offline(&dir, &bundle);
    assert_eq!(code(&o), 2, "{}\n{}", stdout(&o), stderr(&o));
}

/// `import` vets a bundle as the broker vets what it fetches: a forged VCEK in an otherwise
/// genuine bundle is refused (exit 1) and the rest imported; a genuine VCEK arriving alone is
/// judged with the chain the cache already holds, and refused where the cache holds none.
#[test]
fn import_refuses_a_forged_vcek_and_keeps_the_rest() {
    let dir = tempdir("coll-import-forged");
    let (g, report) = guest(&dir);
    let root = dir.join("ark.pem");
    let fetch = |items: &KdsItems, trusted: &Path, out: &Path| {
        let kds = items.serve();
        let o = collateral_fetch(
            &dir.join("report.bin"),
            &kds.base,
            &out.with_extension("cache"),
            out,
            &[trusted],
        );
        assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    };
    let genuine = dir.join("genuine");
    fetch(&KdsItems::new(g.pki(), &report, g.vcek()), &root, &genuine);
    // A forger with a PKI of its own makes a bundle for the same chip and TCB (it trusts its
    // own root), and its VCEK entry is put in place of the genuine one.
    let forger = SimSnp::new(Product::Genoa).unwrap();
    let forger_root = dir.join("forger.pem");
    std::fs::write(&forger_root, to_pem("CERTIFICATE", forger.root().der())).unwrap();
    let forged = dir.join("forged");
    fetch(
        &KdsItems::new(forger.pki(), &report, forger.vcek()),
        &forger_root,
        &forged,
    );
    let vcek_file = |bundle: &Path| {
        std::fs::read_dir(bundle.join("entries"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("amd-vcek-")
            })
            .unwrap()
    };
    let (real, fake) = (vcek_file(&genuine), vcek_file(&forged));
    assert_eq!(real.file_name(), fake.file_name());
    let mixed = dir.join("mixed");
    std::fs::create_dir_all(mixed.join("entries")).unwrap();
    for e in std::fs::read_dir(genuine.join("entries")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, mixed.join("entries").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(&fake, mixed.join("entries").join(fake.file_name().unwrap())).unwrap();
    let import = |bundle: &Path, cache: &Path| {
        tessera(&[
            "collateral",
            "import",
            s(bundle),
            "--cache-dir",
            s(cache),
            "--dangerous-test-root",
            s(&root),
        ])
    };
    let cache = dir.join("cache");
    let o = import(&mixed, &cache);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("REFUSED  amd-vcek-genoa-") && out.contains("vek_chain"),
        "{out}"
    );
    // The chain is there, so the reason is the signature, not a missing chain.
    assert!(!out.contains("neither the bundle nor the cache"), "{out}");
    assert_eq!(out.matches("imported ").count(), 2, "{out}");
    assert!(stderr(&o).contains("imported 2 items"), "{}", stderr(&o));
    let o = tessera(&["collateral", "show", s(&cache)]);
    assert!(!stdout(&o).contains("amd-vcek-"), "{}", stdout(&o));
    // --replace does not let it in either.
    let o = tessera(&[
        "collateral",
        "import",
        s(&mixed),
        "--cache-dir",
        s(&cache),
        "--replace",
        "--dangerous-test-root",
        s(&root),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let o = tessera(&["collateral", "show", s(&cache)]);
    assert!(!stdout(&o).contains("amd-vcek-"), "{}", stdout(&o));
    // Fetching into a bundle directory that holds a forged entry (planted, or from an
    // earlier unvetted run) vets what it held too: each refused entry is named, and nothing
    // is written or deleted (exit 1); into a new directory the same fetch succeeds.
    // (`forged` was fetched trusting the forger's root: all three of its entries are the
    // forger's, at the keys the genuine ones have.)
    let kds = KdsItems::new(g.pki(), &report, g.vcek()).serve();
    let fetch_into = |out: &Path| {
        collateral_fetch(
            &dir.join("report.bin"),
            &kds.base,
            &dir.join("refetch.cache"),
            out,
            &[&root],
        )
    };
    // A copy of it, to plant the forger's entries where they are not fetched again.
    let planted = dir.join("planted");
    std::fs::create_dir_all(planted.join("entries")).unwrap();
    for e in std::fs::read_dir(forged.join("entries")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, planted.join("entries").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(forged.join("manifest.json"), planted.join("manifest.json")).unwrap();
    // The same items fetched again: each refused copy is replaced by the genuine one.
    let o = fetch_into(&forged);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).matches("REPLACED ").count(), 3, "{}", stdout(&o));
    let o = verify_offline(&dir, &forged);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    // Other items (a Milan guest's) fetched into the planted copy: the forger's Genoa entries
    // are refused and not replaced, so nothing is written or deleted (exit 1).
    let milan = SimSnp::new(Product::Milan).unwrap();
    let milan_report = milan
        .report(&[7u8; 64], &Measurements::default(), |_| {})
        .unwrap();
    std::fs::write(dir.join("milan.bin"), &milan_report).unwrap();
    std::fs::write(
        dir.join("milan-ark.pem"),
        to_pem("CERTIFICATE", milan.root().der()),
    )
    .unwrap();
    let milan_kds = KdsItems::new(milan.pki(), &milan_report, milan.vcek()).serve();
    let before = std::fs::read_to_string(planted.join("manifest.json")).unwrap();
    let o = collateral_fetch(
        &dir.join("milan.bin"),
        &milan_kds.base,
        &dir.join("milan.cache"),
        &planted,
        &[&dir.join("milan-ark.pem"), &root],
    );
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("REFUSED  ").count(), 3, "{out}");
    for key in [
        "amd-chain-genoa-vcek",
        "amd-crl-genoa-vcek",
        "amd-vcek-genoa-",
    ] {
        assert!(out.contains(&format!("REFUSED  {key}")), "{out}");
    }
    assert!(stderr(&o).contains("nothing written"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(planted.join("manifest.json")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_dir(planted.join("entries")).unwrap().count(),
        3,
        "nothing written or deleted"
    );
    // Into a new directory the same fetch succeeds.
    let fresh = dir.join("fresh");
    let o = fetch_into(&fresh);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let o = verify_offline(&dir, &fresh);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    // Not a bundle directory: refused before anything is fetched.
    let hits = kds.total();
    let o = fetch_into(&dir);
    assert_eq!(code(&o), 2, "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("not a cache or bundle directory"),
        "{}",
        stderr(&o)
    );
    // A file: refused before anything is fetched (through a cache that holds nothing, so
    // that a fetch would show).
    let o = collateral_fetch(
        &dir.join("report.bin"),
        &kds.base,
        &dir.join("empty.cache"),
        &dir.join("report.bin"),
        &[&root],
    );
    assert_eq!(code(&o), 2, "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
    assert_eq!(kds.total(), hits);
    // The genuine VCEK alone: judged with the chain the cache holds, and imported.
    let alone = dir.join("alone");
    std::fs::create_dir_all(alone.join("entries")).unwrap();
    std::fs::copy(&real, alone.join("entries").join(real.file_name().unwrap())).unwrap();
    let o = import(&alone, &cache);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("imported 1 items"), "{}", stderr(&o));
    let o = verify_offline(&dir, &cache);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    // Into a cache with no chain it cannot be judged, so it is refused.
    let o = import(&alone, &dir.join("no-chain"));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).contains("REFUSED  amd-vcek-"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("neither the bundle nor the cache holds the Genoa ASK/ARK chain"),
        "{}",
        stdout(&o)
    );
}

/// `--collateral-dir` fetches only what the evidence and the command line lack: a directory
/// without the VCEK (and the CRL: it holds the chain alone) is no error when `--certs` gives
/// it (a note, then verification), and is one (exit 2) when nothing gives it.
#[test]
fn a_collateral_dir_without_the_vcek_is_fine_when_certs_give_it() {
    let dir = tempdir("coll-carried");
    let (g, _) = guest(&dir);
    let empty = dir.join("chain-only-cache");
    let chain = tessera_collateral::Entry::new(
        tessera_collateral::Item::AmdChain {
            product: Product::Genoa,
            signer: tessera_collateral::AmdSigner::Vcek,
        },
        "test",
        tessera_pki::UnixTime::now(),
        (to_pem("CERTIFICATE", g.pki().ask().der()) + &to_pem("CERTIFICATE", g.pki().ark().der()))
            .into_bytes(),
        None,
    )
    .unwrap();
    tessera_collateral::Cache::open(&empty)
        .unwrap()
        .put(chain)
        .unwrap();
    let o = verify_offline(&dir, &empty);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("amd-vcek-genoa-"), "{}", stderr(&o));
    // A manifest listing the CRL, which entries/ lacks (a file lost in a copy): said.
    std::fs::write(
        empty.join("manifest.json"),
        br#"{"items": [{"key": "amd-chain-genoa-vcek"}, {"key": "amd-crl-genoa-vcek"}]}"#,
    )
    .unwrap();
    let certs = dir.join("certs.pem");
    std::fs::write(
        &certs,
        to_pem("CERTIFICATE", g.vcek().der()) + &to_pem("CERTIFICATE", g.pki().ask().der()),
    )
    .unwrap();
    let o = tessera(&[
        "verify",
        s(&dir.join("report.bin")),
        "--certs",
        s(&certs),
        "--collateral-dir",
        s(&empty),
        "--dangerous-test-root",
        s(&dir.join("ark.pem")),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("endorsements not fetched"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("the manifest lists amd-crl-genoa-vcek, which entries/ does not hold"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("lists amd-chain"), "{}", stderr(&o));
}

/// `verify --fetch` vets what it fetched with its own verifier: a forged VCEK (another PKI's,
/// naming this chip and TCB) fails verification and is not kept in the cache directory (the
/// chain and CRL are), so
/// the next `verify --fetch` asks the KDS again and, served the genuine VCEK, passes.
#[test]
fn verify_fetch_does_not_keep_a_forged_vcek() {
    let dir = tempdir("coll-verify-fetch");
    let (g, report) = guest(&dir);
    let cache = dir.join("cache");
    let verify_fetch = |kds: &str| {
        tessera(&[
            "verify",
            s(&dir.join("report.bin")),
            "--fetch",
            "--kds-url",
            kds,
            "--cache-dir",
            s(&cache),
            "--dangerous-test-root",
            s(&dir.join("ark.pem")),
        ])
    };
    let forger = SimSnp::new(Product::Genoa).unwrap();
    let mut forged = KdsItems::new(g.pki(), &report, g.vcek());
    forged.vcek_der = forger.vcek().der().to_vec();
    {
        let kds = forged.serve();
        let o = verify_fetch(&kds.base);
        assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("not kept"), "{}", stderr(&o));
    }
    // Only the VCEK went: the chain and CRL (which every chip of the product needs) stay.
    let o = tessera(&["collateral", "show", s(&cache)]);
    assert_eq!(stdout(&o).matches("valid ").count(), 2, "{}", stdout(&o));
    assert!(!stdout(&o).contains("amd-vcek-"), "{}", stdout(&o));
    let kds = KdsItems::new(g.pki(), &report, g.vcek()).serve();
    let o = verify_fetch(&kds.base);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert!(kds.total() >= 1);
}

/// Operator mistakes are usage errors (exit 2) that say what is wrong: a `--chip` without
/// every SPL (a left-out one would ask for another TCB's VCEK) or with one twice, `pack` or
/// `import` of a directory that is not a cache or bundle (it read as empty before), and
/// `--collateral-dir` naming a bundle file or nothing.
#[test]
fn collateral_operator_mistakes_are_usage_errors() {
    let dir = tempdir("coll-mistakes");
    let hwid = "ab".repeat(64);
    for (spec, says) in [
        (format!("Genoa:{hwid}:bl=9,tee=0,snp=23"), "ucode missing"),
        (
            format!("Genoa:{hwid}:bl=9,tee=0,snp=23,ucode=72,bl=9"),
            "bl given twice",
        ),
    ] {
        let o = tessera(&[
            "collateral",
            "fetch",
            "--chip",
            &spec,
            "--kds-url",
            "http://127.0.0.1:9",
            "--out",
            s(&dir.join("b")),
        ]);
        assert_eq!(code(&o), 2, "{spec}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{spec}: {}", stderr(&o));
    }
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("report.bin"), b"x").unwrap();
    let o = tessera(&[
        "collateral",
        "pack",
        s(&plain),
        "--out",
        s(&dir.join("p.json")),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a cache or bundle directory"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("p.json").exists());
    let o = tessera(&[
        "collateral",
        "import",
        s(&plain),
        "--cache-dir",
        s(&dir.join("c")),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    // A bundle that is not there: nothing is created.
    let o = tessera(&[
        "collateral",
        "import",
        s(&dir.join("missing.json")),
        "--cache-dir",
        s(&dir.join("c2")),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(!dir.join("c2").exists());
    // A hostile bundle's text quoted in an error reaches the terminal escaped, never as the
    // escape sequence it was.
    let evil = dir.join("evil.json");
    std::fs::write(
        &evil,
        br#"{"format":"tessera-collateral-bundle/1","created":"2026-01-01T00:00:00Z","entries":[{"item":{"kind":"\u001b]0;owned\u0007\u001b[2J"}}]}"#,
    )
    .unwrap();
    let o = tessera(&[
        "collateral",
        "import",
        s(&evil),
        "--cache-dir",
        s(&dir.join("c3")),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(r"\u{1b}]0;owned\u{7}"),
        "{}",
        stderr(&o)
    );
    assert!(
        !o.stderr.iter().any(|&b| b == 0x1b || b == 0x07),
        "{}",
        stderr(&o)
    );
    // A file that is no JSON at all is named as not a bundle.
    let pem = dir.join("root.pem");
    std::fs::write(&pem, b"-----BEGIN CERTIFICATE-----\n").unwrap();
    let o = tessera(&[
        "collateral",
        "import",
        s(&pem),
        "--cache-dir",
        s(&dir.join("c4")),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a collateral bundle"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("c4").exists());
    // So does `collateral show` of a directory holding such an entry file.
    let hostile = dir.join("hostile");
    std::fs::create_dir_all(hostile.join("entries")).unwrap();
    std::fs::write(
        hostile.join("entries").join("evil.json"),
        br#"{"item":{"kind":"\u001b]0;owned\u0007"}}"#,
    )
    .unwrap();
    let o = tessera(&["collateral", "show", s(&hostile)]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(r"UNREADABLE"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        !o.stdout.iter().any(|&b| b == 0x1b || b == 0x07),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    guest(&dir);
    // A directory holding no entry (empty: a volume that did not mount; another directory;
    // an empty `entries/`) is refused as `pack` and `import` refuse it, not read as a cache
    // that misses every item.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let no_entries = dir.join("no-entries");
    std::fs::create_dir_all(no_entries.join("entries")).unwrap();
    for (path, says) in [
        (plain.join("report.bin"), "collateral import"),
        (dir.join("nothing"), "no such directory"),
        (empty.clone(), "holds no collateral entries"),
        (plain.clone(), "holds no collateral entries"),
        (no_entries.clone(), "holds no collateral entries"),
    ] {
        let o = tessera(&[
            "verify",
            s(&dir.join("report.bin")),
            "--collateral-dir",
            s(&path),
        ]);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
}

/// `verify --fetch` asks only for what the command line and the evidence lack: with the VCEK
/// given (`--certs`), the chain and CRL; with the CRL given too (`--crl`), the chain alone.
#[test]
fn verify_fetch_asks_only_for_what_is_lacking() {
    let dir = tempdir("coll-lacking");
    let (g, report) = guest(&dir);
    let items = KdsItems::new(g.pki(), &report, g.vcek());
    std::fs::write(dir.join("vcek.der"), g.vcek().der()).unwrap();
    std::fs::write(dir.join("crl.der"), &items.crl_der).unwrap();
    let kds = items.serve();
    let (report_bin, ark) = (dir.join("report.bin"), dir.join("ark.pem"));
    let verify = |extra: &[&str], cache: &str| {
        let mut args = vec![
            "verify",
            s(&report_bin),
            "--fetch",
            "--kds-url",
            &kds.base,
            "--cache-dir",
            cache,
            "--dangerous-test-root",
            s(&ark),
        ];
        args.extend_from_slice(extra);
        tessera(&args)
    };
    let vcek = dir.join("vcek.der");
    let o = verify(&["--certs", s(&vcek)], s(&dir.join("c1")));
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(kds.hits(&items.vcek_target), 0);
    assert_eq!(kds.total(), 2);
    let crl = dir.join("crl.der");
    let o = verify(&["--certs", s(&vcek), "--crl", s(&crl)], s(&dir.join("c2")));
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(kds.total(), 3, "only the chain");
    assert_eq!(kds.hits("/vcek/v1/Genoa/cert_chain"), 2);
    // A VCEK of this chip for another TCB (a host's stale certificate table) is not the
    // report's: the right one is fetched, and the report verifies.
    let mut spec = tessera::snp::sim::VekSpec::vcek(Product::Genoa);
    spec.tcb.snp += 1;
    let stale = dir.join("stale.der");
    std::fs::write(
        &stale,
        g.pki().issue_vek(&spec).unwrap().certificate().der(),
    )
    .unwrap();
    let o = verify(&["--certs", s(&stale)], s(&dir.join("c3")));
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(kds.hits(&items.vcek_target), 1);
}

/// `--allow-missing-crls` also lets a quote verify from a cache or bundle that lacks a CRL
/// (before, the missing item was an error whatever the flag said).
#[test]
fn allow_missing_crls_applies_to_a_collateral_dir_without_a_crl() {
    let dir = tempdir("coll-no-crl");
    let o = tessera(&["sim", "tdx", "--out", s(&dir)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let json = std::fs::read_to_string(dir.join("collateral.json")).unwrap();
    let cache_dir = dir.join("cache");
    let cache = tessera_collateral::Cache::open(&cache_dir).unwrap();
    // Everything but the Root CA CRL (the last).
    let [tcb_info, qe_identity, pck_crl, _] =
        intel_entries::intel_entries(&json, tessera_pki::UnixTime::now());
    for entry in [tcb_info, qe_identity, pck_crl] {
        cache.put(entry).unwrap();
    }
    let (quote, root) = (dir.join("quote.bin"), dir.join("root.pem"));
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            s(&quote),
            "--collateral-dir",
            s(&cache_dir),
            "--dangerous-test-root",
            s(&root),
        ];
        args.extend_from_slice(extra);
        tessera(&args)
    };
    // No Root CA CRL in the cache: an error without the flag...
    let o = verify(&[]);
    assert_eq!(code(&o), 2, "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("rootcacrl"), "{}", stderr(&o));
    // ...and verified with it, saying what was left out.
    let o = verify(&["--allow-missing-crls"]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("verifying without it"),
        "{}",
        stderr(&o)
    );
}

/// `report` followed by a GHCB certificate table holding `entries` (an extended report, as a
/// host hands it out).
fn extended_report(report: &[u8], entries: &[(Guid, &[u8])]) -> Vec<u8> {
    let table = CertTable {
        entries: entries
            .iter()
            .map(|&(guid, der)| CertTableEntry {
                guid,
                data: der.to_vec(),
            })
            .collect(),
    };
    [report, &table.to_bytes()].concat()
}

/// A fake KDS serving `items`' chain, answering `crl()` for the CRL and 404 for anything else
/// (the VCEK included).
fn kds_with_crl(
    items: &KdsItems,
    crl: impl Fn() -> fake_kds::Reply + Send + Sync + 'static,
) -> fake_kds::FakeKds {
    let product = items.product;
    let chain = items.chain_pem.clone();
    fake_kds::FakeKds::start(move |t| {
        if t == format!("/vcek/v1/{product}/cert_chain") {
            fake_kds::Reply::ok("application/x-pem-file", chain.clone().into_bytes())
        } else if t == format!("/vcek/v1/{product}/crl") {
            crl()
        } else {
            fake_kds::Reply::status(404)
        }
    })
}

/// A guest whose report's VCEK is supplied, and `verify --fetch` against a fake KDS.
struct Supplied {
    dir: std::path::PathBuf,
    items: KdsItems,
    report: Vec<u8>,
    runs: std::cell::Cell<usize>,
}

impl Supplied {
    fn new(name: &str) -> Self {
        let dir = tempdir(name);
        let (g, report) = guest(&dir);
        let items = KdsItems::new(g.pki(), &report, g.vcek());
        let (vcek, ask, ark) = (g.vcek().der(), g.pki().ask().der(), g.pki().ark().der());
        // As hosts hand it out: the VCEK, ASK and ARK in the certificate table.
        let full = extended_report(
            &report,
            &[(Guid::VCEK, vcek), (Guid::ASK, ask), (Guid::ARK, ark)],
        );
        std::fs::write(dir.join("extended.bin"), full).unwrap();
        // The VCEK alone in the table: the chain is fetched.
        let alone = extended_report(&report, &[(Guid::VCEK, vcek)]);
        std::fs::write(dir.join("extended-vcek.bin"), alone).unwrap();
        std::fs::write(dir.join("vcek.der"), vcek).unwrap();
        std::fs::write(dir.join("chain.pem"), &items.chain_pem).unwrap();
        Self {
            dir,
            items,
            report,
            runs: std::cell::Cell::new(0),
        }
    }

    fn crl_target(&self) -> String {
        format!("/vcek/v1/{}/crl", self.items.product)
    }

    /// The ways the report's VCEK comes: the extended report with the chain, the raw report
    /// with `--certs` VCEK and chain, and (when `alone`) the extended report with the VCEK
    /// alone.
    fn ways(&self, alone: bool) -> Vec<(std::path::PathBuf, Vec<String>)> {
        let certs = |name: &str| vec![String::from("--certs"), s(&self.dir.join(name)).to_owned()];
        let mut ways = vec![
            (self.dir.join("extended.bin"), Vec::new()),
            (self.dir.join("report.bin"), {
                let mut a = certs("vcek.der");
                a.extend(certs("chain.pem"));
                a
            }),
        ];
        if alone {
            ways.push((self.dir.join("extended-vcek.bin"), Vec::new()));
        }
        ways
    }

    /// `verify EVIDENCE --fetch --kds-url KDS --cache-dir (a new one) --dangerous-test-root
    /// ARK --json EXTRA...`
    fn verify(&self, kds: &str, evidence: &Path, extra: &[String]) -> std::process::Output {
        self.runs.set(self.runs.get() + 1);
        let cache = self.dir.join(format!("cache{}", self.runs.get()));
        let ark = self.dir.join("ark.pem");
        let mut args = vec![
            "verify",
            s(evidence),
            "--fetch",
            "--kds-url",
            kds,
            "--cache-dir",
            s(&cache),
            "--dangerous-test-root",
            s(&ark),
            "--json",
        ];
        args.extend(extra.iter().map(String::as_str));
        tessera(&args)
    }
}

/// `verify --fetch` with the report's VCEK supplied (in the extended report's certificate
/// table, or with `--certs`): a CRL the KDS cannot give for any reason but a miss (a 503, a
/// 500, a timeout, a forged CRL the vetting refuses) is an error naming it (exit 2). Before,
/// each was a note and the report verified (exit 0) with revocation not checked.
#[test]
fn verify_fetch_does_not_go_on_without_a_crl_the_kds_failed_to_give() {
    let g = Supplied::new("coll-crl-fail");
    let forger = SimSnp::new(Product::Genoa).unwrap();
    let forged_crl = KdsItems::new(forger.pki(), &g.report, forger.vcek()).crl_der;
    let failures: Vec<(fake_kds::FakeKds, &[&str], &str)> = vec![
        (
            kds_with_crl(&g.items, || fake_kds::Reply::status(503)),
            &[],
            "HTTP status 503",
        ),
        (
            kds_with_crl(&g.items, || fake_kds::Reply::status(500)),
            &[],
            "HTTP status 500",
        ),
        (
            kds_with_crl(&g.items, || {
                std::thread::sleep(std::time::Duration::from_millis(2500));
                fake_kds::Reply::status(404)
            }),
            &["--timeout", "1"],
            "transport",
        ),
        (
            kds_with_crl(&g.items, move || {
                fake_kds::Reply::ok("application/pkix-crl", forged_crl.clone())
            }),
            &[],
            "refused by the verifier",
        ),
    ];
    for (kds, flags, says) in &failures {
        for (evidence, mut extra) in g.ways(true) {
            extra.extend(flags.iter().map(|f| (*f).to_owned()));
            let o = g.verify(&kds.base, &evidence, &extra);
            assert_eq!(code(&o), 2, "{says}\n{}\n{}", stdout(&o), stderr(&o));
            let err = stderr(&o);
            assert!(err.contains("amd-crl-genoa-vcek"), "{says}: {err}");
            assert!(err.contains(says), "{says}: {err}");
            assert!(!err.contains("note:"), "{says}: {err}");
            assert_eq!(json(&o)["verdict"], "error");
        }
        assert!(kds.hits(&g.crl_target()) >= 3, "{says}");
        assert_eq!(kds.hits(&g.items.vcek_target), 0, "{says}");
    }
}

/// With the report's VCEK supplied, a CRL the KDS does not have (404) is a note naming it,
/// and the report verifies without revocation checked (which a policy requiring the CRL
/// fails); what was fetched besides (the chain, when the table holds the VCEK alone) is used.
#[test]
fn verify_fetch_leaves_out_a_crl_the_kds_does_not_have() {
    let g = Supplied::new("coll-crl-miss");
    let kds = kds_with_crl(&g.items, || fake_kds::Reply::status(404));
    for (evidence, extra) in g.ways(true) {
        let o = g.verify(&kds.base, &evidence, &extra);
        assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("note:"), "{err}");
        assert!(err.contains("amd-crl-genoa-vcek: HTTP status 404"), "{err}");
        let j = json(&o);
        assert_eq!(j["verdict"], "pass", "{j}");
        assert_eq!(j["verification"]["revocation_checked"], false, "{j}");
    }
    assert_eq!(kds.hits(&g.crl_target()), 3);
    assert_eq!(kds.hits(&g.items.vcek_target), 0);
    // A 404 is not authenticated (an intercepting proxy can answer it): under a policy that
    // requires the ARK's CRL (`snp.revocation = "required"`, as `policy from-evidence` writes
    // it), the evidence verified without one is refused on that rule alone.
    let evidence = g.dir.join("extended.bin");
    let ark = g.dir.join("ark.pem");
    let o = tessera(&[
        "policy",
        "from-evidence",
        s(&evidence),
        "--dangerous-test-root",
        s(&ark),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("revocation = \"required\""),
        "{}",
        stdout(&o)
    );
    let policy = g.dir.join("policy.toml");
    std::fs::write(&policy, stdout(&o)).unwrap();
    let o = g.verify(
        &kds.base,
        &evidence,
        &[String::from("--policy"), s(&policy).to_owned()],
    );
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("amd-crl-genoa-vcek: HTTP status 404"));
    let j = json(&o);
    assert_eq!(j["verdict"], "fail", "{j}");
    let failed: Vec<&str> = j["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["rule"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["snp.revocation"], "{j}");
}

/// A miss is a note only when what is supplied holds the report's own VEK: with the ASK and
/// ARK alone given (`--certs`), the VCEK the KDS does not have is an error naming it (exit 2),
/// not a note followed by a verification that cannot succeed.
#[test]
fn verify_fetch_a_miss_is_no_note_without_the_reports_vek() {
    let dir = tempdir("coll-no-vek");
    let (g, report) = guest(&dir);
    let items = KdsItems::new(g.pki(), &report, g.vcek());
    let chain = dir.join("chain.pem");
    std::fs::write(&chain, &items.chain_pem).unwrap();
    let kds = kds_with_crl(&items, || fake_kds::Reply::status(404));
    let o = tessera(&[
        "verify",
        s(&dir.join("report.bin")),
        "--certs",
        s(&chain),
        "--fetch",
        "--kds-url",
        &kds.base,
        "--cache-dir",
        s(&dir.join("cache")),
        "--dangerous-test-root",
        s(&dir.join("ark.pem")),
    ]);
    assert_eq!(code(&o), 2, "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("amd-vcek-genoa-"), "{}", stderr(&o));
    assert!(stderr(&o).contains("HTTP status 404"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("note:"), "{}", stderr(&o));
    assert_eq!(kds.hits(&items.vcek_target), 1);
}

/// `--timeout` is bounded as the broker bounds `collateral.timeout_secs` (1 to 300): a value
/// out of range is a usage error (exit 2) naming the range, for `verify --fetch` and
/// `collateral fetch` alike. Before, 0 was taken as 1 and a huge value made the HTTP client
/// panic (an Instant overflow) at the first request.
#[test]
fn timeout_out_of_range_is_a_usage_error() {
    let dir = tempdir("coll-timeout");
    let (g, report) = guest(&dir);
    let kds = KdsItems::new(g.pki(), &report, g.vcek()).serve();
    let (report_bin, cache, out) = (
        dir.join("report.bin"),
        dir.join("cache"),
        dir.join("bundle"),
    );
    let verify = |secs: &str| {
        tessera(&[
            "verify",
            s(&report_bin),
            "--fetch",
            "--kds-url",
            &kds.base,
            "--cache-dir",
            s(&cache),
            "--dangerous-test-root",
            s(&dir.join("ark.pem")),
            "--timeout",
            secs,
        ])
    };
    for secs in ["18446744073709551615", "301", "0"] {
        for o in [
            verify(secs),
            tessera(&[
                "collateral",
                "fetch",
                "--evidence",
                s(&report_bin),
                "--kds-url",
                &kds.base,
                "--cache-dir",
                s(&cache),
                "--out",
                s(&out),
                "--timeout",
                secs,
            ]),
        ] {
            assert_eq!(code(&o), 2, "--timeout {secs}\n{}", stderr(&o));
            assert!(stderr(&o).contains("1..=300"), "{}", stderr(&o));
            assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        }
    }
    assert_eq!(kds.total(), 0, "nothing is asked for");
    // The bounds themselves are accepted.
    for secs in ["1", "300"] {
        let o = verify(secs);
        assert_eq!(code(&o), 0, "--timeout {secs}\n{}", stderr(&o));
    }
}

/// A version-2 report (no CPUID: no product named) carrying its VCEK, verified with `--fetch`
/// and no `--product`: nothing can be asked for, which is a note as for a miss, and the report
/// verifies with what it carries; the KDS is not asked. A `--product` the report's CPUID
/// contradicts is still an error (checked elsewhere).
#[test]
fn verify_fetch_of_a_v2_report_carrying_its_vcek_needs_no_product() {
    let dir = tempdir("coll-v2-vcek");
    let g = SimSnp::new(Product::Genoa).unwrap();
    let report = g
        .report(&[7u8; 64], &Measurements::default(), |raw| {
            raw.version = 2u32.into();
            (raw.cpuid_fam_id, raw.cpuid_mod_id, raw.cpuid_step) = (0, 0, 0);
            // Reserved before version 5.
            raw.launch_mit_vector = 0u64.into();
            raw.current_mit_vector = 0u64.into();
        })
        .unwrap();
    let (vcek, ask, ark) = (g.vcek().der(), g.pki().ask().der(), g.pki().ark().der());
    let extended = extended_report(
        &report,
        &[(Guid::VCEK, vcek), (Guid::ASK, ask), (Guid::ARK, ark)],
    );
    std::fs::write(dir.join("extended.bin"), extended).unwrap();
    std::fs::write(dir.join("ark.pem"), to_pem("CERTIFICATE", g.root().der())).unwrap();
    let kds = KdsItems::new(g.pki(), &report, g.vcek()).serve();
    let o = tessera(&[
        "verify",
        s(&dir.join("extended.bin")),
        "--fetch",
        "--kds-url",
        &kds.base,
        "--cache-dir",
        s(&dir.join("cache")),
        "--dangerous-test-root",
        s(&dir.join("ark.pem")),
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("does not say its product"),
        "{}",
        stderr(&o)
    );
    assert_eq!(json(&o)["verdict"], "pass");
    assert_eq!(kds.total(), 0);
}
