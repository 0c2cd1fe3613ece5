// Test-only: sets cfg(tessera_vectors) / cfg(tessera_dcap_samples); see the included file.
include!("../../build/vectors_cfg.rs");
