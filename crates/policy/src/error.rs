//! Errors of loading a policy and of signing or verifying attestation-result tokens.

use std::path::PathBuf;

/// Loading a policy failed. Each variant says which part of the policy is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not valid TOML/JSON for a policy: syntax, an unknown field, a missing required
    /// field or a value of the wrong form (the message names the field).
    #[error("policy: {message}")]
    Syntax {
        /// The parser's message, naming the field and position.
        message: String,
    },
    /// The policy is well-formed but not usable (wrong version, contradictory settings).
    #[error("policy field `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The policy or a reference file it names could not be read.
    #[error("policy: reading {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A reference file the policy names could not be read. Its name is relative to the folder
    /// of the policy file (or to the base a caller of `resolve_references` gave).
    #[error(
        "policy: reference file \"{file}\" (relative to the policy's folder {base}): reading {path}: {reason}"
    )]
    ReferenceIo {
        /// The name as the policy wrote it.
        file: String,
        /// The folder it is relative to.
        base: PathBuf,
        /// Where it was looked for.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A reference file holds a value that is not of the field's form.
    #[error("reference file {path} line {line}: {reason}")]
    Reference {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The input is larger than a policy may be.
    #[error("policy: {what} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The policy or a reference file.
        what: String,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
}
