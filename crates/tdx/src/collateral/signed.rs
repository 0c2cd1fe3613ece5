//! A signed collateral item: the exact signed bytes, Intel's signature, and the parsed value.

use core::fmt;

use super::json::decode_hex;
use super::{CollateralError, EnclaveIdentity, TcbInfo};

/// Length of an ECDSA P-256 signature as Intel encodes it in collateral: `r ‖ s`, 32 bytes each.
pub const SIGNATURE_LEN: usize = 64;

/// A collateral item signed by the Intel SGX TCB Signing key: the body exactly as signed, the
/// signature over it, and the value parsed from that same body.
///
/// The only constructors parse the body, so the value always is what the signed bytes say.
/// Nothing here checks the signature: the verifier does.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signed<T> {
    body: Box<str>,
    signature: [u8; SIGNATURE_LEN],
    value: T,
}

impl<T> Signed<T> {
    /// The signed bytes (the JSON text of the `tcbInfo` / `enclaveIdentity` value, exactly as
    /// Intel produced it).
    #[must_use]
    pub fn body(&self) -> &[u8] {
        self.body.as_bytes()
    }

    /// The signed body as text.
    #[must_use]
    pub fn body_str(&self) -> &str {
        &self.body
    }

    /// The ECDSA P-256 signature, `r ‖ s`.
    #[must_use]
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The parsed value.
    #[must_use]
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The parsed value, dropping the signed bytes.
    #[must_use]
    pub fn into_value(self) -> T {
        self.value
    }

    fn parse(
        item: &'static str,
        body: Vec<u8>,
        signature: [u8; SIGNATURE_LEN],
        parse: fn(&[u8]) -> Result<T, CollateralError>,
    ) -> Result<Self, CollateralError> {
        let value = parse(&body)?;
        let body = String::from_utf8(body).map_err(|_| CollateralError::Json {
            item,
            detail: String::from("not UTF-8"),
        })?;
        Ok(Self {
            body: body.into_boxed_str(),
            signature,
            value,
        })
    }
}

impl Signed<TcbInfo> {
    /// A signed TCB info: `body` is the JSON object inside `"tcbInfo"`, exactly as signed.
    ///
    /// # Errors
    /// Any error of [`TcbInfo::parse_json`].
    pub fn tcb_info(
        body: Vec<u8>,
        signature: [u8; SIGNATURE_LEN],
    ) -> Result<Self, CollateralError> {
        Self::parse("tcb_info", body, signature, TcbInfo::parse_json)
    }
}

impl Signed<EnclaveIdentity> {
    /// A signed enclave identity (QE, QvE or TD QE): `body` is the JSON object inside
    /// `"enclaveIdentity"`, exactly as signed.
    ///
    /// # Errors
    /// Any error of [`EnclaveIdentity::parse_json`].
    pub fn qe_identity(
        body: Vec<u8>,
        signature: [u8; SIGNATURE_LEN],
    ) -> Result<Self, CollateralError> {
        Self::parse("qe_identity", body, signature, EnclaveIdentity::parse_json)
    }

    /// The same as [`Signed::qe_identity`], for identities of other enclaves (QvE).
    ///
    /// # Errors
    /// Any error of [`EnclaveIdentity::parse_json`].
    pub fn enclave_identity(
        body: Vec<u8>,
        signature: [u8; SIGNATURE_LEN],
    ) -> Result<Self, CollateralError> {
        Self::qe_identity(body, signature)
    }
}

impl<T: fmt::Debug> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("value", &self.value)
            .field("body_len", &self.body.len())
            .field("signature", &tessera_pki::to_hex(&self.signature))
            .finish()
    }
}

/// Read a signature written as 128 hex characters (`r ‖ s`).
pub(crate) fn signature_from_hex(
    item: &'static str,
    field: &str,
    hex: &str,
) -> Result<[u8; SIGNATURE_LEN], CollateralError> {
    decode_hex::<SIGNATURE_LEN>(hex.trim()).map_err(|actual| CollateralError::Hex {
        item,
        field: field.to_owned(),
        expected: 2 * SIGNATURE_LEN,
        actual,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collateral::identity::tests::sample as qe_sample;
    use crate::collateral::tcb_info::tests::sample_tdx;

    #[test]
    fn keeps_the_exact_body() {
        // Whitespace and key order are part of the signed bytes and must survive.
        let text = format!(" {} ", serde_json::to_string_pretty(&sample_tdx()).unwrap());
        let signed = Signed::tcb_info(text.clone().into_bytes(), [7; 64]).unwrap();
        assert_eq!(signed.body(), text.as_bytes());
        assert_eq!(signed.body_str(), text);
        assert_eq!(signed.signature(), &[7; 64]);
        assert_eq!(
            signed.value(),
            &TcbInfo::parse_json(text.as_bytes()).unwrap()
        );
        let debug = format!("{signed:?}");
        assert!(debug.contains("body_len") && debug.contains("0707"));

        let qe = Signed::qe_identity(serde_json::to_vec(&qe_sample()).unwrap(), [1; 64]).unwrap();
        assert_eq!(qe.value().isvprodid, 2);
        assert_eq!(
            Signed::enclave_identity(qe.body().to_vec(), [1; 64]).unwrap(),
            qe
        );
        assert_eq!(qe.clone().into_value(), *qe.value());
        assert!(Signed::tcb_info(qe.body().to_vec(), [0; 64]).is_err());
    }

    #[test]
    fn signature_hex_is_exact() {
        let hex = "ab".repeat(64);
        assert_eq!(signature_from_hex("t", "s", &hex).unwrap(), [0xab; 64]);
        assert_eq!(
            signature_from_hex("t", "s", &hex.to_uppercase()).unwrap(),
            [0xab; 64]
        );
        assert!(matches!(
            signature_from_hex("t", "s", &hex[..126]),
            Err(CollateralError::Hex {
                expected: 128,
                actual: 126,
                ..
            })
        ));
        assert!(signature_from_hex("t", "s", &"zz".repeat(64)).is_err());
        // A DER-encoded signature is not r ‖ s.
        assert!(signature_from_hex("t", "s", &format!("3044{}", "00".repeat(70))).is_err());
    }
}
