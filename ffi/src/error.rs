//! The stable numeric result codes, grouped by family (the hundreds digit), and the mapping
//! from the library's typed errors to them. A code's number never changes once released; new
//! codes are added inside their family.

use std::ffi::c_char;

use tessera::{BuildError, EvidenceError, VerifyError};
use tessera_guest::client::ClientError;

/// A result code. `0` is success; the hundreds digit names the family:
/// 1xx the call itself (arguments, panics), 2xx reading evidence, 3xx verification,
/// 4xx policy, 5xx trust configuration and endorsements, 6xx the key broker client.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tessera_result {
    /// Success.
    TESSERA_RESULT_OK = 0,

    /// A required pointer argument was NULL (or NULL with a non-zero length).
    TESSERA_RESULT_NULL_POINTER = 100,
    /// A string argument, or the policy given to `tessera_verifier_verify`, is not UTF-8.
    TESSERA_RESULT_INVALID_UTF8 = 101,
    /// An argument has the wrong size or value.
    TESSERA_RESULT_INVALID_ARGUMENT = 102,
    /// Tessera panicked (a bug: please report it). No handle was made: an out-parameter handle
    /// is NULL (set on entry). Besides that NULL, the one thing written is the message buffer
    /// of `tessera_client_get_secret`, which then says a panic was caught.
    TESSERA_RESULT_PANIC = 103,
    /// An argument is larger than Tessera accepts: certificates or CRLs over 4 MiB
    /// (`tessera_endorsements_add_certificates`, `_add_crls`,
    /// `tessera_verifier_builder_dangerous_add_test_root`), a collateral bundle over 8 MiB, a
    /// policy over 1 MiB (`tessera_verifier_verify`), callback evidence over 16 MiB, an
    /// endorsement file over 16 MiB (`tessera_endorsements_add_file`, or one in the directory
    /// read by `tessera_verifier_builder_add_endorsement_dir`), or such a directory past its
    /// bounds (4096 files, 512 MiB in all). (Evidence given to `tessera_verifier_verify` or
    /// `tessera_decode` that is too large is an outcome, `TESSERA_RESULT_EVIDENCE_TOO_LARGE`.)
    TESSERA_RESULT_TOO_LARGE = 104,

    /// The bytes are not evidence in any form Tessera reads (the message lists every form tried).
    TESSERA_RESULT_EVIDENCE_UNRECOGNIZED = 200,
    /// Recognised as a form, but a field or structure is malformed.
    TESSERA_RESULT_EVIDENCE_MALFORMED = 201,
    /// The evidence is larger than accepted.
    TESSERA_RESULT_EVIDENCE_TOO_LARGE = 202,
    /// The evidence is of another TEE than named.
    TESSERA_RESULT_EVIDENCE_WRONG_TEE = 203,

    /// An SEV-SNP check failed (the failed check names it: `report_signature`, `vek_chain`, ...).
    TESSERA_RESULT_VERIFY_SNP = 300,
    /// A TDX/SGX check failed (`pck_chain`, `quote_signature`, `tcb_status`, ...).
    TESSERA_RESULT_VERIFY_TDX = 301,
    /// No TDX/SGX collateral is held for the quote's platform.
    TESSERA_RESULT_VERIFY_MISSING_COLLATERAL = 302,

    /// The policy text is not a valid policy (TOML or JSON).
    TESSERA_RESULT_POLICY_INVALID = 400,
    /// The evidence verified but the policy rejected it (the appraisal lists every rule).
    TESSERA_RESULT_POLICY_REJECTED = 401,
    /// The evidence verified, but no policy was given (NULL), so it was not appraised: the
    /// verdict is `TESSERA_VERDICT_VERIFIED_UNAPPRAISED`, not `TESSERA_VERDICT_ACCEPTED`.
    TESSERA_RESULT_NOT_APPRAISED = 402,

    /// Certificates (PEM or DER) could not be read.
    TESSERA_RESULT_CERTIFICATE_INVALID = 500,
    /// CRLs (PEM or DER) could not be read.
    TESSERA_RESULT_CRL_INVALID = 501,
    /// A TDX/SGX collateral bundle (JSON) could not be read.
    TESSERA_RESULT_COLLATERAL_INVALID = 502,
    /// An endorsement file or directory could not be read or holds something unreadable.
    TESSERA_RESULT_ENDORSEMENT_FILE = 503,
    /// A test root is not a self-issued certificate.
    TESSERA_RESULT_TEST_ROOT_INVALID = 504,
    /// The embedded vendor roots did not load (a build defect).
    TESSERA_RESULT_EMBEDDED_ROOTS = 505,

    /// The broker URL, CA, TEE name or resource path is invalid.
    TESSERA_RESULT_CLIENT_CONFIG = 600,
    /// The broker could not be reached (connection, TLS, timeout).
    TESSERA_RESULT_CLIENT_TRANSPORT = 601,
    /// The broker refused the secret (403: the policy denied the evidence).
    TESSERA_RESULT_BROKER_DENIED = 602,
    /// The broker did not accept the attestation or session (401).
    TESSERA_RESULT_BROKER_UNAUTHORIZED = 603,
    /// The broker answered another error status (the message carries its public detail).
    TESSERA_RESULT_BROKER_ERROR = 604,
    /// The broker's answer is malformed or larger than accepted.
    TESSERA_RESULT_BROKER_MALFORMED = 605,
    /// The secret did not decrypt with this session's key.
    TESSERA_RESULT_SECRET_DECRYPT = 606,
    /// The evidence callback failed, returned no evidence, or evidence Tessera cannot read.
    TESSERA_RESULT_EVIDENCE_CALLBACK = 607,
    /// A local crypto operation (the ephemeral TEE key) failed.
    TESSERA_RESULT_CLIENT_CRYPTO = 608,
}

use tessera_result as R;

impl tessera_result {
    /// The code's name (`TESSERA_RESULT_OK`, ...), a NUL-terminated static string.
    pub(crate) fn name_nul(self) -> &'static str {
        match self {
            R::TESSERA_RESULT_OK => "TESSERA_RESULT_OK\0",
            R::TESSERA_RESULT_NULL_POINTER => "TESSERA_RESULT_NULL_POINTER\0",
            R::TESSERA_RESULT_INVALID_UTF8 => "TESSERA_RESULT_INVALID_UTF8\0",
            R::TESSERA_RESULT_INVALID_ARGUMENT => "TESSERA_RESULT_INVALID_ARGUMENT\0",
            R::TESSERA_RESULT_PANIC => "TESSERA_RESULT_PANIC\0",
            R::TESSERA_RESULT_TOO_LARGE => "TESSERA_RESULT_TOO_LARGE\0",
            R::TESSERA_RESULT_EVIDENCE_UNRECOGNIZED => "TESSERA_RESULT_EVIDENCE_UNRECOGNIZED\0",
            R::TESSERA_RESULT_EVIDENCE_MALFORMED => "TESSERA_RESULT_EVIDENCE_MALFORMED\0",
            R::TESSERA_RESULT_EVIDENCE_TOO_LARGE => "TESSERA_RESULT_EVIDENCE_TOO_LARGE\0",
            R::TESSERA_RESULT_EVIDENCE_WRONG_TEE => "TESSERA_RESULT_EVIDENCE_WRONG_TEE\0",
            R::TESSERA_RESULT_VERIFY_SNP => "TESSERA_RESULT_VERIFY_SNP\0",
            R::TESSERA_RESULT_VERIFY_TDX => "TESSERA_RESULT_VERIFY_TDX\0",
            R::TESSERA_RESULT_VERIFY_MISSING_COLLATERAL => {
                "TESSERA_RESULT_VERIFY_MISSING_COLLATERAL\0"
            }
            R::TESSERA_RESULT_POLICY_INVALID => "TESSERA_RESULT_POLICY_INVALID\0",
            R::TESSERA_RESULT_POLICY_REJECTED => "TESSERA_RESULT_POLICY_REJECTED\0",
            R::TESSERA_RESULT_NOT_APPRAISED => "TESSERA_RESULT_NOT_APPRAISED\0",
            R::TESSERA_RESULT_CERTIFICATE_INVALID => "TESSERA_RESULT_CERTIFICATE_INVALID\0",
            R::TESSERA_RESULT_CRL_INVALID => "TESSERA_RESULT_CRL_INVALID\0",
            R::TESSERA_RESULT_COLLATERAL_INVALID => "TESSERA_RESULT_COLLATERAL_INVALID\0",
            R::TESSERA_RESULT_ENDORSEMENT_FILE => "TESSERA_RESULT_ENDORSEMENT_FILE\0",
            R::TESSERA_RESULT_TEST_ROOT_INVALID => "TESSERA_RESULT_TEST_ROOT_INVALID\0",
            R::TESSERA_RESULT_EMBEDDED_ROOTS => "TESSERA_RESULT_EMBEDDED_ROOTS\0",
            R::TESSERA_RESULT_CLIENT_CONFIG => "TESSERA_RESULT_CLIENT_CONFIG\0",
            R::TESSERA_RESULT_CLIENT_TRANSPORT => "TESSERA_RESULT_CLIENT_TRANSPORT\0",
            R::TESSERA_RESULT_BROKER_DENIED => "TESSERA_RESULT_BROKER_DENIED\0",
            R::TESSERA_RESULT_BROKER_UNAUTHORIZED => "TESSERA_RESULT_BROKER_UNAUTHORIZED\0",
            R::TESSERA_RESULT_BROKER_ERROR => "TESSERA_RESULT_BROKER_ERROR\0",
            R::TESSERA_RESULT_BROKER_MALFORMED => "TESSERA_RESULT_BROKER_MALFORMED\0",
            R::TESSERA_RESULT_SECRET_DECRYPT => "TESSERA_RESULT_SECRET_DECRYPT\0",
            R::TESSERA_RESULT_EVIDENCE_CALLBACK => "TESSERA_RESULT_EVIDENCE_CALLBACK\0",
            R::TESSERA_RESULT_CLIENT_CRYPTO => "TESSERA_RESULT_CLIENT_CRYPTO\0",
        }
    }

    /// Every code, for the name lookup and the tests.
    pub(crate) const ALL: [tessera_result; 31] = [
        R::TESSERA_RESULT_OK,
        R::TESSERA_RESULT_NULL_POINTER,
        R::TESSERA_RESULT_INVALID_UTF8,
        R::TESSERA_RESULT_INVALID_ARGUMENT,
        R::TESSERA_RESULT_PANIC,
        R::TESSERA_RESULT_TOO_LARGE,
        R::TESSERA_RESULT_EVIDENCE_UNRECOGNIZED,
        R::TESSERA_RESULT_EVIDENCE_MALFORMED,
        R::TESSERA_RESULT_EVIDENCE_TOO_LARGE,
        R::TESSERA_RESULT_EVIDENCE_WRONG_TEE,
        R::TESSERA_RESULT_VERIFY_SNP,
        R::TESSERA_RESULT_VERIFY_TDX,
        R::TESSERA_RESULT_VERIFY_MISSING_COLLATERAL,
        R::TESSERA_RESULT_POLICY_INVALID,
        R::TESSERA_RESULT_POLICY_REJECTED,
        R::TESSERA_RESULT_NOT_APPRAISED,
        R::TESSERA_RESULT_CERTIFICATE_INVALID,
        R::TESSERA_RESULT_CRL_INVALID,
        R::TESSERA_RESULT_COLLATERAL_INVALID,
        R::TESSERA_RESULT_ENDORSEMENT_FILE,
        R::TESSERA_RESULT_TEST_ROOT_INVALID,
        R::TESSERA_RESULT_EMBEDDED_ROOTS,
        R::TESSERA_RESULT_CLIENT_CONFIG,
        R::TESSERA_RESULT_CLIENT_TRANSPORT,
        R::TESSERA_RESULT_BROKER_DENIED,
        R::TESSERA_RESULT_BROKER_UNAUTHORIZED,
        R::TESSERA_RESULT_BROKER_ERROR,
        R::TESSERA_RESULT_BROKER_MALFORMED,
        R::TESSERA_RESULT_SECRET_DECRYPT,
        R::TESSERA_RESULT_EVIDENCE_CALLBACK,
        R::TESSERA_RESULT_CLIENT_CRYPTO,
    ];
}

/// The name of a result code (`"TESSERA_RESULT_BROKER_DENIED"`), or NULL for a number that is
/// no code. The string is static: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_result_name(code: u32) -> *const c_char {
    crate::panic::boundary(|| {
        tessera_result::ALL
            .iter()
            .find(|r| **r as u32 == code)
            .map_or(std::ptr::null(), |r| r.name_nul().as_ptr().cast())
    })
}

/// The code for evidence that could not be read.
pub(crate) fn evidence_code(e: &EvidenceError) -> tessera_result {
    match e {
        EvidenceError::TooLarge { .. } => R::TESSERA_RESULT_EVIDENCE_TOO_LARGE,
        EvidenceError::Unrecognized { .. } => R::TESSERA_RESULT_EVIDENCE_UNRECOGNIZED,
        EvidenceError::WrongTee { .. } | EvidenceError::UnsupportedTee(_) => {
            R::TESSERA_RESULT_EVIDENCE_WRONG_TEE
        }
        _ => R::TESSERA_RESULT_EVIDENCE_MALFORMED,
    }
}

/// The code for a failed verification.
pub(crate) fn verify_code(e: &VerifyError) -> tessera_result {
    match e {
        VerifyError::Tdx(_) => R::TESSERA_RESULT_VERIFY_TDX,
        VerifyError::MissingCollateral { .. } => R::TESSERA_RESULT_VERIFY_MISSING_COLLATERAL,
        _ => R::TESSERA_RESULT_VERIFY_SNP,
    }
}

/// The code for a verifier that could not be built.
pub(crate) fn build_code(e: &BuildError) -> tessera_result {
    match e {
        BuildError::Endorsements(_) => R::TESSERA_RESULT_ENDORSEMENT_FILE,
        BuildError::TestRoot { .. } => R::TESSERA_RESULT_TEST_ROOT_INVALID,
        _ => R::TESSERA_RESULT_EMBEDDED_ROOTS,
    }
}

/// The code for a failed secret fetch.
pub(crate) fn client_code(e: &ClientError) -> tessera_result {
    match e {
        ClientError::InvalidBaseUrl { .. }
        | ClientError::PlainHttpRefused
        | ClientError::InvalidCaPem { .. }
        | ClientError::InvalidTee
        | ClientError::InvalidResourcePath { .. } => R::TESSERA_RESULT_CLIENT_CONFIG,
        ClientError::Crypto { .. } => R::TESSERA_RESULT_CLIENT_CRYPTO,
        ClientError::Evidence { .. } => R::TESSERA_RESULT_EVIDENCE_CALLBACK,
        ClientError::Transport { .. } => R::TESSERA_RESULT_CLIENT_TRANSPORT,
        ClientError::ResponseTooLarge { .. }
        | ClientError::MalformedResponse { .. }
        | ClientError::UnsupportedHash { .. }
        | ClientError::Jwe { .. } => R::TESSERA_RESULT_BROKER_MALFORMED,
        ClientError::DecryptFailed => R::TESSERA_RESULT_SECRET_DECRYPT,
        // Denied or unauthorized by the broker itself (its error body); a proxy's 403 or 401
        // is an error of the way there.
        ClientError::Broker { status: 403, .. } => R::TESSERA_RESULT_BROKER_DENIED,
        ClientError::Broker { status: 401, .. } => R::TESSERA_RESULT_BROKER_UNAUTHORIZED,
        _ => R::TESSERA_RESULT_BROKER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variants listed once, giving both an exhaustive `match` (which stops compiling when
    /// a variant is added to the enum and not here) and the list itself (compared with `ALL`).
    macro_rules! every_variant {
        ($($v:ident),* $(,)?) => {{
            fn exhaustive(r: tessera_result) {
                match r {
                    $(R::$v)|* => {}
                }
            }
            let _ = exhaustive;
            [$(R::$v),*]
        }};
    }

    #[test]
    fn all_lists_every_variant() {
        let every = every_variant!(
            TESSERA_RESULT_OK,
            TESSERA_RESULT_NULL_POINTER,
            TESSERA_RESULT_INVALID_UTF8,
            TESSERA_RESULT_INVALID_ARGUMENT,
            TESSERA_RESULT_PANIC,
            TESSERA_RESULT_TOO_LARGE,
            TESSERA_RESULT_EVIDENCE_UNRECOGNIZED,
            TESSERA_RESULT_EVIDENCE_MALFORMED,
            TESSERA_RESULT_EVIDENCE_TOO_LARGE,
            TESSERA_RESULT_EVIDENCE_WRONG_TEE,
            TESSERA_RESULT_VERIFY_SNP,
            TESSERA_RESULT_VERIFY_TDX,
            TESSERA_RESULT_VERIFY_MISSING_COLLATERAL,
            TESSERA_RESULT_POLICY_INVALID,
            TESSERA_RESULT_POLICY_REJECTED,
            TESSERA_RESULT_NOT_APPRAISED,
            TESSERA_RESULT_CERTIFICATE_INVALID,
            TESSERA_RESULT_CRL_INVALID,
            TESSERA_RESULT_COLLATERAL_INVALID,
            TESSERA_RESULT_ENDORSEMENT_FILE,
            TESSERA_RESULT_TEST_ROOT_INVALID,
            TESSERA_RESULT_EMBEDDED_ROOTS,
            TESSERA_RESULT_CLIENT_CONFIG,
            TESSERA_RESULT_CLIENT_TRANSPORT,
            TESSERA_RESULT_BROKER_DENIED,
            TESSERA_RESULT_BROKER_UNAUTHORIZED,
            TESSERA_RESULT_BROKER_ERROR,
            TESSERA_RESULT_BROKER_MALFORMED,
            TESSERA_RESULT_SECRET_DECRYPT,
            TESSERA_RESULT_EVIDENCE_CALLBACK,
            TESSERA_RESULT_CLIENT_CRYPTO,
        );
        // Every variant (the match above is exhaustive), each once, and nothing else.
        let listed: std::collections::HashSet<u32> = every.iter().map(|r| *r as u32).collect();
        let all: std::collections::HashSet<u32> =
            tessera_result::ALL.iter().map(|r| *r as u32).collect();
        assert_eq!(listed.len(), every.len(), "a variant listed twice");
        assert_eq!(all, listed, "tessera_result::ALL is not every variant");
        assert_eq!(tessera_result::ALL.len(), every.len());
        for r in every {
            assert!(
                !tessera_result_name(r as u32).is_null(),
                "{r:?} has no name"
            );
        }
    }

    #[test]
    fn every_code_has_its_own_name_and_number() {
        let mut seen = std::collections::HashSet::new();
        for r in tessera_result::ALL {
            assert!(seen.insert(r as u32), "duplicate {r:?}");
            let name = r.name_nul();
            assert_eq!(name.trim_end_matches('\0'), format!("{r:?}"));
            assert_eq!(name.matches('\0').count(), 1);
        }
        assert!(tessera_result_name(7).is_null());
        assert!(!tessera_result_name(602).is_null());
    }
}
