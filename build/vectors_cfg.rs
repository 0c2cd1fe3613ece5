// Shared by every crate whose tests read the real-hardware corpus (each `build.rs` includes it).
// Test-only configuration: `cfg(tessera_vectors)` when the real-hardware corpus is present
// (`TESSERA_VECTORS`, default `../shared/vectors` beside the workspace), so that without it the
// tests that need it are reported as *ignored* in the test summary instead of passing silently.
// Nothing in the library depends on it.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tessera_vectors)");
    println!("cargo::rustc-check-cfg=cfg(tessera_dcap_samples)");
    println!("cargo::rerun-if-env-changed=TESSERA_VECTORS");
    println!("cargo::rerun-if-env-changed=DCAP_QVL_SAMPLES");
    println!("cargo::rerun-if-env-changed=CI");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = std::env::var_os("TESSERA_VECTORS").map_or_else(
        || {
            manifest
                .ancestors()
                .find(|d| d.join("Cargo.lock").is_file())
                .map_or(manifest.as_path(), |d| d)
                .join("../shared/vectors")
        },
        PathBuf::from,
    );
    // In CI the tests run (and fail loudly when the corpus is missing).
    if dir.join("README.md").is_file() || std::env::var_os("CI").is_some() {
        println!("cargo::rustc-cfg=tessera_vectors");
    }
    if std::env::var_os("DCAP_QVL_SAMPLES").is_some() || dcap_qvl_in_registry() {
        println!("cargo::rustc-cfg=tessera_dcap_samples");
    }
}

/// Whether cargo's registry holds the dcap-qvl 0.7 sources (with their `sample/` folder).
fn dcap_qvl_in_registry() -> bool {
    let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    else {
        return false;
    };
    let registry = home.join("registry/src");
    let Ok(indexes) = std::fs::read_dir(&registry) else {
        return false;
    };
    indexes
        .filter_map(Result::ok)
        .flat_map(|i| std::fs::read_dir(i.path()).into_iter().flatten())
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("dcap-qvl-0.7"))
                && Path::new(&e.path()).join("sample/tdx_quote").is_file()
        })
}
