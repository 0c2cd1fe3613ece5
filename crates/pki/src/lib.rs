//! X.509 certificates, chains and CRLs for attestation evidence, over the aws-lc-rs backend.
//!
//! Nothing here reads the clock or the network: the verification time is a [`UnixTime`] the caller
//! passes, and every certificate, CRL and trust anchor is an input. Chains are built by key and
//! signature (names only narrow the candidates), under a [`Budget`] that caps signature checks.
#![forbid(unsafe_code)]

mod backend;
pub mod builder;
mod cert;
mod chain;
mod crl;
pub mod der;
mod error;
mod pem;
mod time;

pub use backend::{PreparedKey, RawSignatureScheme, sha256, sha384, sha512};
pub use cert::{
    Certificate, Extension, PublicKey, PublicKeyKind, SignatureScheme, load_certificates,
    load_certificates_reusing,
};
pub use chain::{Budget, ChainBuilder, check_path_len, check_revocation, verify_issued_by};
pub use crl::{Crl, crls_among_pem, load_certificates_and_crls, load_crls};
pub use error::PkiError;
pub use pem::decode as from_pem;
pub use pem::encode as to_pem;
pub use time::UnixTime;

/// Most bytes accepted for one certificate or CRL (DER).
pub const MAX_OBJECT_LEN: usize = 256 * 1024;
/// Most certificates or CRLs accepted from one input (PEM bundle or concatenated DER).
pub const MAX_OBJECTS_PER_INPUT: usize = 64;
/// Most bytes accepted for one input file holding certificates or CRLs.
pub const MAX_INPUT_LEN: usize = 4 * 1024 * 1024;

/// Lower-case hex of `bytes` (for messages and JSON).
#[must_use]
pub fn to_hex(bytes: &[u8]) -> String {
    // Digit by digit, not through `write!` per byte: the claims of one SEV-SNP report are
    // about 400 bytes of hex, which took the formatter several microseconds.
    fn digit(n: u8) -> char {
        char::from(if n < 10 { b'0' + n } else { b'a' + (n - 10) })
    }
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(digit(b >> 4));
        s.push(digit(b & 0x0f));
    }
    s
}

/// Bytes from hex text (either case, no separators); `None` for an odd length or a character
/// that is not a hex digit. Reads two characters per byte without building intermediate strings.
#[must_use]
pub fn from_hex(text: &[u8]) -> Option<Vec<u8>> {
    /// The digit's value; 0x10 (a bit no digit has) when `c` is not one.
    fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0x10,
        }
    }
    let pairs = text.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 2);
    // Checked once at the end rather than per digit.
    let mut invalid = 0u8;
    for pair in pairs {
        let [hi, lo] = *pair else { return None };
        let (hi, lo) = (nibble(hi), nibble(lo));
        invalid |= hi | lo;
        out.push((hi << 4) | (lo & 0x0F));
    }
    (invalid & 0x10 == 0).then_some(out)
}

/// Normalise a DER INTEGER's content bytes (big-endian) for comparison: strip leading zeros.
#[must_use]
pub fn normalize_serial(raw: &[u8]) -> &[u8] {
    let first = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw.get(first..).unwrap_or_default()
}

/// Fuzz harness: load certificates and CRLs from arbitrary bytes (PEM or DER). Must not panic.
#[doc(hidden)]
pub fn fuzz_load(data: &[u8]) {
    if let Ok(certs) = load_certificates(data) {
        for c in &certs {
            let _ = c.check_validity(UnixTime::from_secs(0));
            let _ = c.serial_hex();
        }
        if let Some(leaf) = certs.last() {
            let _ = ChainBuilder::new(certs.iter().take(1), certs.iter()).build(
                leaf,
                UnixTime::from_secs(1_700_000_000),
                &mut Budget::new(8),
            );
        }
    }
    let _ = load_crls(data);
    let _ = load_certificates_and_crls(data);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The shared vectors folder (`TESSERA_VECTORS`, default `../shared/vectors` beside the
    /// repository), if it exists; the unit tests that read real certificates and CRLs skip
    /// without it (the workspace tests fail loudly in CI instead).
    pub(crate) fn vectors_dir() -> Option<std::path::PathBuf> {
        let dir = std::env::var_os("TESSERA_VECTORS").map_or_else(
            || {
                std::path::PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../../shared/vectors"
                ))
            },
            std::path::PathBuf::from,
        );
        dir.is_dir().then_some(dir)
    }

    #[test]
    fn from_hex_is_exact() {
        assert_eq!(from_hex(b""), Some(vec![]));
        assert_eq!(from_hex(b"00aBcD9f"), Some(vec![0x00, 0xab, 0xcd, 0x9f]));
        for bad in [
            &b"0"[..],
            b"abc",
            b"0g",
            b"g0",
            b" 00",
            b"00 ",
            b"0x00",
            "é0".as_bytes(),
        ] {
            assert_eq!(from_hex(bad), None, "{bad:?}");
        }
    }

    proptest! {
        /// The certificate and CRL walkers never panic on arbitrary bytes, DER-framed or not.
        #[test]
        fn loading_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            tag in proptest::sample::select(vec![0x30u8, 0xA0, 0x02, 0x03]),
        ) {
            fuzz_load(&bytes);
            fuzz_load(&der::tlv(0x30, &der::tlv(tag, &bytes)));
            fuzz_load(&der::seq(&[&der::seq(&[&bytes]), &bytes]));
        }

        #[test]
        fn from_hex_round_trips_and_agrees_with_the_hex_crate(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            text in "[0-9a-fA-FxX ]{0,16}",
        ) {
            prop_assert_eq!(to_hex(&bytes), hex::encode(&bytes));
            prop_assert_eq!(from_hex(to_hex(&bytes).as_bytes()), Some(bytes.clone()));
            prop_assert_eq!(from_hex(hex::encode_upper(&bytes).as_bytes()), Some(bytes));
            prop_assert_eq!(from_hex(text.as_bytes()), hex::decode(&text).ok());
        }
    }
}
