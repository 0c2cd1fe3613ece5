//! Shared helpers for the end-to-end tests: locating the real-hardware vector folder.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// The vectors folder (`TESSERA_VECTORS`, default `../shared/vectors`), or `None` with a printed
/// notice when it is missing outside CI. In CI (`CI` set) a missing folder fails the test.
pub fn vectors() -> Option<PathBuf> {
    let dir = std::env::var_os("TESSERA_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/vectors"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "real-hardware vectors not found at {} (set TESSERA_VECTORS)",
            dir.display()
        );
    }
    eprintln!(
        "NOTICE: vectors not found at {}; skipping real-hardware tests",
        dir.display()
    );
    None
}

/// The workspace root: the nearest ancestor of the test crate holding `Cargo.lock` (this module
/// is shared by the root tests and, through `#[path]`, by member crates' tests).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .map_or(manifest.clone(), PathBuf::from)
}

/// A case folder's `case.json`.
pub fn case(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap()
}

/// All case folders under `vectors/<tee>`, sorted.
pub fn cases(vectors: &std::path::Path, tee: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(vectors.join(tee))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").is_file())
        .collect();
    v.sort();
    v
}
