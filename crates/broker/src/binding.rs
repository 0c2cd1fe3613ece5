//! Checks that REPORT_DATA and HOST_DATA / MR_CONFIG_ID bind the evidence to this challenge.
//!
//! REPORT_DATA (64 bytes, SNP and TDX) must be
//! `H(JCS({"additional-evidence": <string>, "nonce": <nonce>, "tee-pubkey": <JWK as sent>}))`
//! followed by zero bytes up to 64, with H = SHA-384 unless the challenge selected another
//! (PROTOCOL.md, step 3). Init data (step 4): `H(raw TOML bytes)` with H named by the TOML's own
//! `algorithm`, compared with SNP HOST_DATA (32 bytes; a longer digest cut to 32) or TDX
//! MR_CONFIG_ID (48 bytes; a shorter digest zero-padded).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use serde_json::{Value, json};

use crate::jcs;

/// Length of REPORT_DATA in SNP reports and TDX quotes.
pub const REPORT_DATA_LEN: usize = 64;
/// Largest init-data TOML body accepted.
pub const MAX_INIT_DATA_LEN: usize = 256 * 1024;

/// A hash the guest and broker agree on for the runtime-data and init-data digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384, the protocol default.
    #[default]
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Parses a protocol name (`sha256`, `sha384`, `sha512`).
    ///
    /// # Errors
    /// [`BindingError::UnsupportedHash`] for any other name (including `sm3`).
    pub fn from_name(name: &str) -> Result<Self, BindingError> {
        match name {
            "sha256" => Ok(Self::Sha256),
            "sha384" => Ok(Self::Sha384),
            "sha512" => Ok(Self::Sha512),
            other => Err(BindingError::UnsupportedHash {
                name: other.chars().take(32).collect(),
            }),
        }
    }

    /// The protocol name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Digest length in bytes.
    #[must_use]
    pub fn output_len(self) -> usize {
        self.aws().output_len()
    }

    /// `H(data)`.
    #[must_use]
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.aws(), data).as_ref().to_vec()
    }

    fn aws(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }
}

/// A binding check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The hash algorithm name is not one the broker supports.
    #[error("binding: hash algorithm `{name}` is not supported (sha256, sha384, sha512)")]
    UnsupportedHash {
        /// The name received (cut to 32 characters).
        name: String,
    },
    /// The runtime data could not be canonicalized.
    #[error("binding: runtime data cannot be canonicalized")]
    Canonicalization,
    /// REPORT_DATA is not 64 bytes.
    #[error("binding: report_data is {len} bytes, not 64")]
    ReportDataLength {
        /// Length received.
        len: usize,
    },
    /// The first digest-length bytes of REPORT_DATA are not the runtime-data digest.
    #[error(
        "binding: report_data does not hold the {hash} digest of the runtime data (nonce and tee-pubkey)"
    )]
    ReportDataMismatch {
        /// The hash used.
        hash: &'static str,
    },
    /// A byte of REPORT_DATA after the digest is not zero.
    #[error("binding: report_data byte {offset} after the {hash} digest is not zero")]
    NonZeroPadding {
        /// Offset of the first non-zero byte.
        offset: usize,
        /// The hash used.
        hash: &'static str,
    },
    /// The init-data `format` is not `toml`.
    #[error("binding: init-data format `{format}` is not supported (toml)")]
    InitDataFormat {
        /// The format received (cut to 32 characters).
        format: String,
    },
    /// The init-data body is longer than [`MAX_INIT_DATA_LEN`].
    #[error("binding: init-data body is {len} bytes, more than {max}")]
    InitDataTooLarge {
        /// Length received.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The init-data body is not TOML.
    #[error("binding: init-data body is not valid TOML")]
    InitDataToml,
    /// The init-data TOML has no string `algorithm`.
    #[error("binding: init-data has no `algorithm` string")]
    InitDataAlgorithmMissing,
    /// The init-data digest does not match the evidence field.
    #[error("binding: init-data {hash} digest does not match {field}")]
    InitDataMismatch {
        /// `host_data` (SNP) or `mr_config_id` (TDX).
        field: &'static str,
        /// The hash used.
        hash: &'static str,
    },
}

/// The runtime data object the guest hashes, exactly as PROTOCOL.md defines it.
#[must_use]
pub fn runtime_data(nonce: &str, tee_pubkey_as_sent: &Value, additional_evidence: &str) -> Value {
    json!({
        "additional-evidence": additional_evidence,
        "nonce": nonce,
        "tee-pubkey": tee_pubkey_as_sent,
    })
}

/// The REPORT_DATA the evidence must carry: the runtime-data digest, zero-padded to 64 bytes.
///
/// # Errors
/// [`BindingError::Canonicalization`] if the JWK cannot be canonicalized.
pub fn expected_report_data(
    hash: HashAlgorithm,
    nonce: &str,
    tee_pubkey_as_sent: &Value,
    additional_evidence: &str,
) -> Result<[u8; REPORT_DATA_LEN], BindingError> {
    let canonical = jcs::to_vec(&runtime_data(
        nonce,
        tee_pubkey_as_sent,
        additional_evidence,
    ))
    .map_err(|_| BindingError::Canonicalization)?;
    let d = hash.digest(&canonical);
    let mut out = [0u8; REPORT_DATA_LEN];
    for (o, b) in out.iter_mut().zip(d.iter()) {
        *o = *b;
    }
    Ok(out)
}

/// Takes REPORT_DATA from a slice, refusing any length but 64.
///
/// # Errors
/// [`BindingError::ReportDataLength`].
pub fn report_data_from_slice(bytes: &[u8]) -> Result<&[u8; REPORT_DATA_LEN], BindingError> {
    bytes
        .try_into()
        .map_err(|_| BindingError::ReportDataLength { len: bytes.len() })
}

/// Checks REPORT_DATA against the challenge's nonce and the TEE key as sent.
///
/// # Errors
/// [`BindingError::ReportDataMismatch`] when the digest differs, [`BindingError::NonZeroPadding`]
/// when it matches but a later byte is not zero, [`BindingError::Canonicalization`].
pub fn check_report_data(
    actual: &[u8; REPORT_DATA_LEN],
    hash: HashAlgorithm,
    nonce: &str,
    tee_pubkey_as_sent: &Value,
    additional_evidence: &str,
) -> Result<(), BindingError> {
    let expected = expected_report_data(hash, nonce, tee_pubkey_as_sent, additional_evidence)?;
    let n = hash.output_len();
    let (exp_digest, _) = expected.split_at(n);
    let (act_digest, act_pad) = actual.split_at(n);
    verify_slices_are_equal(exp_digest, act_digest)
        .map_err(|_| BindingError::ReportDataMismatch { hash: hash.name() })?;
    if let Some(i) = act_pad.iter().position(|b| *b != 0) {
        return Err(BindingError::NonZeroPadding {
            offset: n + i,
            hash: hash.name(),
        });
    }
    Ok(())
}

/// The evidence field init data is compared with.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum InitDataField<'a> {
    /// SEV-SNP HOST_DATA (32 bytes): a longer digest is cut to 32.
    SnpHostData(&'a [u8; 32]),
    /// TDX MR_CONFIG_ID (48 bytes): a shorter digest is zero-padded.
    TdxMrConfigId(&'a [u8; 48]),
}

/// A checked init-data digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitDataDigest {
    /// The hash the TOML named.
    pub hash: HashAlgorithm,
    /// `H(raw TOML bytes)`, full length.
    pub digest: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct InitDataHeader {
    algorithm: Option<toml::Value>,
}

/// Computes the init-data digest of a raw body (`format` must be `toml`).
///
/// # Errors
/// [`BindingError::InitDataFormat`], [`BindingError::InitDataTooLarge`],
/// [`BindingError::InitDataToml`], [`BindingError::InitDataAlgorithmMissing`],
/// [`BindingError::UnsupportedHash`].
pub fn init_data_digest(format: &str, body: &str) -> Result<InitDataDigest, BindingError> {
    if format != "toml" {
        return Err(BindingError::InitDataFormat {
            format: format.chars().take(32).collect(),
        });
    }
    if body.len() > MAX_INIT_DATA_LEN {
        return Err(BindingError::InitDataTooLarge {
            len: body.len(),
            max: MAX_INIT_DATA_LEN,
        });
    }
    let header: InitDataHeader = toml::from_str(body).map_err(|_| BindingError::InitDataToml)?;
    let name = match header.algorithm {
        Some(toml::Value::String(s)) => s,
        _ => return Err(BindingError::InitDataAlgorithmMissing),
    };
    let hash = HashAlgorithm::from_name(&name)?;
    Ok(InitDataDigest {
        hash,
        digest: hash.digest(body.as_bytes()),
    })
}

/// Checks init data against HOST_DATA (SNP) or MR_CONFIG_ID (TDX): the digest fills the
/// field from its first byte, cut to the field's length when longer (HOST_DATA takes the first
/// 32 bytes of a SHA-384 or SHA-512 digest, MR_CONFIG_ID the first 48 of a SHA-512 one, as
/// PROTOCOL.md cuts for SNP) and zero-padded when shorter (a SHA-256 digest in MR_CONFIG_ID).
///
/// # Errors
/// Any error of [`init_data_digest`], or [`BindingError::InitDataMismatch`].
pub fn check_init_data(
    format: &str,
    body: &str,
    field: InitDataField<'_>,
) -> Result<InitDataDigest, BindingError> {
    let d = init_data_digest(format, body)?;
    let (name, actual): (&'static str, &[u8]) = match field {
        InitDataField::SnpHostData(h) => ("host_data", h),
        InitDataField::TdxMrConfigId(m) => ("mr_config_id", m),
    };
    let mut expected = vec![0u8; actual.len()];
    for (o, b) in expected.iter_mut().zip(d.digest.iter()) {
        *o = *b;
    }
    verify_slices_are_equal(&expected, actual).map_err(|_| BindingError::InitDataMismatch {
        field: name,
        hash: d.hash.name(),
    })?;
    Ok(d)
}

/// What [`init_data_digest`] must give for `body`, worked out independently of it: the body
/// read as a plain TOML table (`None`: not TOML), and its `algorithm` member when a string.
/// For the fuzz harness and the tests.
fn init_data_expected(body: &str) -> Result<HashAlgorithm, BindingError> {
    let table: toml::Table = toml::from_str(body).map_err(|_| BindingError::InitDataToml)?;
    match table.get("algorithm") {
        Some(toml::Value::String(name)) => HashAlgorithm::from_name(name),
        _ => Err(BindingError::InitDataAlgorithmMissing),
    }
}

/// Fuzz harness: init data as `/attest` carries it (any text up to [`MAX_INIT_DATA_LEN`]).
/// Oracles: no panic; the digest is accepted exactly when the body is a TOML table whose
/// `algorithm` is a supported hash name, and is then the full `H(raw body bytes)`; that digest
/// passes [`check_init_data`] as HOST_DATA (cut to 32) and as MR_CONFIG_ID (cut or zero-padded
/// to 48), and a field one bit off fails; only format `toml` is read.
#[doc(hidden)]
#[allow(clippy::panic, clippy::indexing_slicing)] // fuzz harness: a failed check is the finding; no request path calls it
pub fn fuzz_init_data(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    assert!(matches!(
        init_data_digest("json", body),
        Err(BindingError::InitDataFormat { .. })
    ));
    let got = init_data_digest("toml", body);
    if body.len() > MAX_INIT_DATA_LEN {
        assert!(matches!(got, Err(BindingError::InitDataTooLarge { .. })));
        return;
    }
    let expected = init_data_expected(body);
    match (got, expected) {
        (Ok(d), Ok(hash)) => {
            assert_eq!(d.hash, hash);
            assert_eq!(d.digest, hash.digest(body.as_bytes()));
            assert_eq!(d.digest.len(), hash.output_len());
            init_data_fields_agree(body, &d);
        }
        (Err(e), Err(f)) => assert_eq!(e, f),
        (got, expected) => panic!("init data: got {got:?}, expected {expected:?}"),
    }
}

/// `d` (the digest of `body`) passes as HOST_DATA and MR_CONFIG_ID laid out as PROTOCOL.md
/// says (from byte 0, cut to the field, zero-padded), and every one-bit change of either field
/// is a mismatch. For the fuzz harness and the tests.
#[allow(clippy::panic, clippy::indexing_slicing)]
fn init_data_fields_agree(body: &str, d: &InitDataDigest) {
    let mut host = [0u8; 32];
    let mut mr = [0u8; 48];
    let n = d.digest.len();
    host.copy_from_slice(&d.digest[..32]);
    mr[..n.min(48)].copy_from_slice(&d.digest[..n.min(48)]);
    assert_eq!(
        check_init_data("toml", body, InitDataField::SnpHostData(&host)).as_ref(),
        Ok(d)
    );
    assert_eq!(
        check_init_data("toml", body, InitDataField::TdxMrConfigId(&mr)).as_ref(),
        Ok(d)
    );
    // One byte per field is enough to fail on a check that ignores a region: the last byte
    // (the cut's or the padding's edge) and one chosen by the digest itself.
    for i in [31, usize::from(d.digest[0]) % 32] {
        let mut h = host;
        h[i] ^= 1;
        assert!(matches!(
            check_init_data("toml", body, InitDataField::SnpHostData(&h)),
            Err(BindingError::InitDataMismatch {
                field: "host_data",
                ..
            })
        ));
    }
    for i in [47, n.min(48) - 1, usize::from(d.digest[1]) % 48] {
        let mut m = mr;
        m[i] ^= 0x80;
        assert!(matches!(
            check_init_data("toml", body, InitDataField::TdxMrConfigId(&m)),
            Err(BindingError::InitDataMismatch {
                field: "mr_config_id",
                ..
            })
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn jwk() -> Value {
        json!({"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW",
               "x":"ddr9gTjiN2oy1NWuQQFd4CBpexMxiSAODHjMNFdWB9c",
               "y":"wkFEZRb4Fxz_ppoRqCjLXNAKa1LfbrF6H3blMwQ8i6o"})
    }

    #[test]
    fn expected_report_data_is_the_digest_of_the_jcs_runtime_data() {
        let nonce = "q1UyeOuBKdyxHb5bZYqWp1NbsjglYgfMtXtfYkbqLOQ=";
        // Written by hand in canonical form (keys sorted, no whitespace).
        let canonical = format!(
            r#"{{"additional-evidence":"","nonce":"{nonce}","tee-pubkey":{{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"ddr9gTjiN2oy1NWuQQFd4CBpexMxiSAODHjMNFdWB9c","y":"wkFEZRb4Fxz_ppoRqCjLXNAKa1LfbrF6H3blMwQ8i6o"}}}}"#
        );
        for hash in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            let rd = expected_report_data(hash, nonce, &jwk(), "").unwrap();
            let d = hash.digest(canonical.as_bytes());
            assert_eq!(&rd[..d.len()], &d[..]);
            assert!(rd[d.len()..].iter().all(|b| *b == 0));
            check_report_data(&rd, hash, nonce, &jwk(), "").unwrap();
        }
        assert_eq!(HashAlgorithm::default(), HashAlgorithm::Sha384);
    }

    #[test]
    fn every_report_data_check_rejects() {
        let nonce = "bm9uY2U=";
        let h = HashAlgorithm::Sha384;
        let good = expected_report_data(h, nonce, &jwk(), "").unwrap();
        // Other nonce, other key, other additional evidence, other hash.
        let other_key = json!({"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AA"});
        for (n, k, a, hh) in [
            ("b3RoZXI=", jwk(), "", h),
            (nonce, other_key, "", h),
            (nonce, jwk(), "x", h),
            (nonce, jwk(), "", HashAlgorithm::Sha512),
        ] {
            assert_eq!(
                check_report_data(&good, hh, n, &k, a),
                Err(BindingError::ReportDataMismatch { hash: hh.name() })
            );
        }
        let mut padded = good;
        padded[63] = 1;
        assert_eq!(
            check_report_data(&padded, h, nonce, &jwk(), ""),
            Err(BindingError::NonZeroPadding {
                offset: 63,
                hash: "sha384"
            })
        );
        let sha256 = expected_report_data(HashAlgorithm::Sha256, nonce, &jwk(), "").unwrap();
        let mut p = sha256;
        p[32] = 0x80;
        assert_eq!(
            check_report_data(&p, HashAlgorithm::Sha256, nonce, &jwk(), ""),
            Err(BindingError::NonZeroPadding {
                offset: 32,
                hash: "sha256"
            })
        );
        assert_eq!(
            report_data_from_slice(&[0u8; 63]),
            Err(BindingError::ReportDataLength { len: 63 })
        );
        assert_eq!(
            report_data_from_slice(&[0u8; 65]),
            Err(BindingError::ReportDataLength { len: 65 })
        );
        assert!(report_data_from_slice(&[0u8; 64]).is_ok());
        assert!(matches!(
            HashAlgorithm::from_name("sm3"),
            Err(BindingError::UnsupportedHash { .. })
        ));
    }

    const INIT: &str = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs]\n'''\n";

    #[test]
    fn init_data_snp_cuts_and_tdx_pads() {
        let d384 = HashAlgorithm::Sha384.digest(INIT.as_bytes());
        let mut host = [0u8; 32];
        host.copy_from_slice(&d384[..32]);
        let got = check_init_data("toml", INIT, InitDataField::SnpHostData(&host)).unwrap();
        assert_eq!(got.digest, d384);
        let mut mr = [0u8; 48];
        mr.copy_from_slice(&d384);
        check_init_data("toml", INIT, InitDataField::TdxMrConfigId(&mr)).unwrap();

        let body256 = INIT.replace("sha384", "sha256");
        let d256 = HashAlgorithm::Sha256.digest(body256.as_bytes());
        let mut mr = [0u8; 48];
        mr[..32].copy_from_slice(&d256);
        check_init_data("toml", &body256, InitDataField::TdxMrConfigId(&mr)).unwrap();
        mr[40] = 1; // non-zero where the padding must be
        assert!(matches!(
            check_init_data("toml", &body256, InitDataField::TdxMrConfigId(&mr)),
            Err(BindingError::InitDataMismatch {
                field: "mr_config_id",
                ..
            })
        ));
        let body512 = INIT.replace("sha384", "sha512");
        let d512 = HashAlgorithm::Sha512.digest(body512.as_bytes());
        let host: [u8; 32] = d512[..32].try_into().unwrap();
        check_init_data("toml", &body512, InitDataField::SnpHostData(&host)).unwrap();
        // SHA-512 in MR_CONFIG_ID: its first 48 bytes; any other byte there is a mismatch.
        let mut mr: [u8; 48] = d512[..48].try_into().unwrap();
        check_init_data("toml", &body512, InitDataField::TdxMrConfigId(&mr)).unwrap();
        mr[47] ^= 1;
        assert!(matches!(
            check_init_data("toml", &body512, InitDataField::TdxMrConfigId(&mr)),
            Err(BindingError::InitDataMismatch {
                field: "mr_config_id",
                ..
            })
        ));
    }

    #[test]
    fn every_init_data_check_rejects() {
        let d = HashAlgorithm::Sha384.digest(INIT.as_bytes());
        let host: [u8; 32] = d[..32].try_into().unwrap();
        // One byte changed in the body.
        let changed = INIT.replace("0.1.0", "0.1.1");
        assert_eq!(
            check_init_data("toml", &changed, InitDataField::SnpHostData(&host)).unwrap_err(),
            BindingError::InitDataMismatch {
                field: "host_data",
                hash: "sha384"
            }
        );
        assert!(matches!(
            check_init_data("json", INIT, InitDataField::SnpHostData(&host)),
            Err(BindingError::InitDataFormat { .. })
        ));
        assert_eq!(
            init_data_digest("toml", "algorithm = ").unwrap_err(),
            BindingError::InitDataToml
        );
        assert_eq!(
            init_data_digest("toml", "version = \"1\"").unwrap_err(),
            BindingError::InitDataAlgorithmMissing
        );
        assert_eq!(
            init_data_digest("toml", "algorithm = 384").unwrap_err(),
            BindingError::InitDataAlgorithmMissing
        );
        assert!(matches!(
            init_data_digest("toml", "algorithm = \"sm3\""),
            Err(BindingError::UnsupportedHash { .. })
        ));
        let big = format!("algorithm = \"sha384\"\n#{}", "x".repeat(MAX_INIT_DATA_LEN));
        assert!(matches!(
            init_data_digest("toml", &big),
            Err(BindingError::InitDataTooLarge { .. })
        ));
    }

    /// The fuzz seeds (fuzz/seed.sh writes the same): init data as CoCo guests send it, for
    /// each hash, and the deepest nesting that fits the bound, which must be refused as TOML
    /// (not overflow the stack) and agree with the harness's oracle.
    #[test]
    fn init_data_seeds_reach_the_oracle() {
        for name in ["sha256", "sha384", "sha512"] {
            let body = INIT.replace("sha384", name);
            assert!(init_data_digest("toml", &body).is_ok());
            fuzz_init_data(body.as_bytes());
        }
        for open in ["[", "{a=", "[{a=["] {
            let mut deep = String::from("algorithm = \"sha384\"\na=");
            while deep.len() + open.len() <= MAX_INIT_DATA_LEN {
                deep.push_str(open);
            }
            assert_eq!(
                init_data_digest("toml", &deep),
                Err(BindingError::InitDataToml)
            );
            fuzz_init_data(deep.as_bytes());
        }
    }

    proptest! {
        #[test]
        fn any_single_bit_flip_is_rejected(byte in 0usize..64, bit in 0u8..8) {
            let h = HashAlgorithm::Sha384;
            let mut rd = expected_report_data(h, "n", &jwk(), "").unwrap();
            rd[byte] ^= 1 << bit;
            prop_assert!(check_report_data(&rd, h, "n", &jwk(), "").is_err());
        }

        /// Arbitrary text: the harness's oracles (accepted exactly when a TOML table names a
        /// supported hash; the digest is the body's; both field layouts) hold.
        #[test]
        fn init_data_digest_agrees_with_its_oracle(body in ".{0,200}") {
            fuzz_init_data(body.as_bytes());
        }

        /// Generated init data: `algorithm` one of the three names, another name, another
        /// type or absent, among random keys. Accepted exactly when the name is supported, with
        /// the digest of the raw bytes sent, laid into HOST_DATA and MR_CONFIG_ID as PROTOCOL.md
        /// says (cut to 32; cut or zero-padded to 48).
        #[test]
        fn generated_init_data_is_accepted_exactly_when_its_hash_is(
            algorithm in prop_oneof![
                Just(Some(toml::Value::from("sha256"))),
                Just(Some(toml::Value::from("sha384"))),
                Just(Some(toml::Value::from("sha512"))),
                "[a-zA-Z0-9-]{0,8}".prop_map(|s| Some(toml::Value::from(s))),
                Just(Some(toml::Value::from(384))),
                Just(None),
            ],
            extra in proptest::collection::btree_map(
                "[a-z_][a-z0-9_.-]{0,10}",
                prop_oneof![
                    ".{0,20}".prop_map(toml::Value::from),
                    any::<i64>().prop_map(toml::Value::from),
                    any::<bool>().prop_map(toml::Value::from),
                    proptest::collection::vec("[ -~]{0,8}", 0..4).prop_map(toml::Value::from),
                ],
                0..6,
            ),
            data in proptest::collection::btree_map("[a-z]{1,6}\\.toml", ".{0,40}", 0..3),
            lead in "(#[ -~]{0,10}\n|\n| ){0,3}",
        ) {
            let mut table = toml::Table::new();
            for (k, v) in extra {
                if k != "algorithm" {
                    table.insert(k, v);
                }
            }
            if let Some(a) = &algorithm {
                table.insert("algorithm".into(), a.clone());
            }
            if !data.is_empty() {
                let d: toml::Table = data.into_iter().map(|(k, v)| (k, v.into())).collect();
                table.insert("data".into(), d.into());
            }
            let body = format!("{lead}{}", toml::to_string(&table).unwrap());
            let supported = match algorithm.as_ref().and_then(toml::Value::as_str) {
                Some(n @ ("sha256" | "sha384" | "sha512")) => Some(n),
                _ => None,
            };
            match (init_data_digest("toml", &body), supported) {
                (Ok(d), Some(name)) => {
                    prop_assert_eq!(d.hash.name(), name);
                    let full = HashAlgorithm::from_name(name).unwrap().digest(body.as_bytes());
                    prop_assert_eq!(&d.digest, &full);
                    let host: [u8; 32] = full[..32].try_into().unwrap();
                    let mut mr = [0u8; 48];
                    let n = full.len().min(48);
                    mr[..n].copy_from_slice(&full[..n]);
                    prop_assert_eq!(
                        check_init_data("toml", &body, InitDataField::SnpHostData(&host)),
                        Ok(d.clone())
                    );
                    prop_assert_eq!(
                        check_init_data("toml", &body, InitDataField::TdxMrConfigId(&mr)),
                        Ok(d.clone())
                    );
                    init_data_fields_agree(&body, &d);
                }
                (Err(BindingError::UnsupportedHash { name }), None) => {
                    let sent = algorithm.as_ref().and_then(toml::Value::as_str);
                    prop_assert_eq!(Some(name.as_str()), sent);
                }
                (Err(BindingError::InitDataAlgorithmMissing), None) => {
                    prop_assert!(algorithm.as_ref().and_then(toml::Value::as_str).is_none());
                }
                (got, supported) => {
                    prop_assert!(false, "{body:?}: got {got:?}, supported {supported:?}");
                }
            }
        }
    }
}
