//! Byte layouts of SEV-SNP evidence (no crypto).
