//! Where items come from: a base URL per vendor service, and the URL of each item under it.
//!
//! Each source is a base URL, so a mirror or a PCCS inside the operator's network replaces the
//! vendor's service; the only hosts written here are the vendors' documented defaults.

use core::fmt;

use zeroize::Zeroizing;

use crate::CollateralError;
use crate::item::Item;

/// AMD's Key Distribution Service.
pub const AMD_KDS_URL: &str = "https://kdsintf.amd.com";
/// Intel's Provisioning Certification Service.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com";
/// Where Intel publishes the Intel SGX Root CA CRL (DER); PCS has no endpoint for it.
pub const INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// The header that carries a PCS subscription key (and that a PCCS accepts and ignores).
pub const PCS_API_KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

/// `url` without a trailing `/`, when it is `http(s)://host[...]` without query or fragment.
fn base_url(url: &str) -> Result<String, CollateralError> {
    // Credentials before an `@` are not repeated in the error.
    let shown = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    };
    let bad = |detail| CollateralError::BaseUrl {
        url: shown.chars().take(200).collect(),
        detail,
    };
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with https:// or http://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("has no host"));
    }
    if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not carry a query, fragment or spaces"));
    }
    // The URL goes into every entry's `source`, manifests and error messages.
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad(
            "must not carry credentials (a name or password before @): it is recorded with every entry",
        ));
    }
    Ok(trimmed.to_owned())
}

/// An AMD KDS (or a mirror of its URL layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KdsSource {
    base: String,
}

impl KdsSource {
    /// AMD's public KDS.
    #[must_use]
    pub fn amd() -> Self {
        Self {
            base: AMD_KDS_URL.to_owned(),
        }
    }

    /// A KDS mirror at `base` (e.g. `http://kds.internal:8080`).
    ///
    /// # Errors
    /// [`CollateralError::BaseUrl`] when `base` is not an http(s) URL without query.
    pub fn new(base: &str) -> Result<Self, CollateralError> {
        Ok(Self {
            base: base_url(base)?,
        })
    }

    /// The base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of an AMD item, `None` for an Intel one.
    ///
    /// VCEK: `/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`, the SPLs in
    /// decimal, two digits at least (as AMD's tools write them); on Turin `fmcSPL` comes first
    /// and `{hwid}` is 8 bytes (16 hex digits). Chains: `/{vcek|vlek}/v1/{product}/cert_chain`
    /// (intermediate then ARK, PEM). CRLs: `/{vcek|vlek}/v1/{product}/crl` (DER).
    #[must_use]
    pub fn url(&self, item: &Item) -> Option<String> {
        let base = &self.base;
        match item {
            Item::Vcek {
                product,
                hwid,
                fmc,
                bl,
                tee,
                snp,
                ucode,
            } => {
                let fmc = fmc.map(|f| format!("fmcSPL={f:02}&")).unwrap_or_default();
                Some(format!(
                    "{base}/vcek/v1/{product}/{hwid}?{fmc}blSPL={bl:02}&teeSPL={tee:02}&snpSPL={snp:02}&ucodeSPL={ucode:02}",
                    hwid = hwid.to_ascii_lowercase()
                ))
            }
            Item::AmdChain { product, signer } => {
                Some(format!("{base}/{}/v1/{product}/cert_chain", signer.path()))
            }
            Item::AmdCrl { product, signer } => {
                Some(format!("{base}/{}/v1/{product}/crl", signer.path()))
            }
            _ => None,
        }
    }
}

/// A PCS subscription key: zeroized on drop, never printed.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// A key from its text, surrounding whitespace trimmed (a file's final newline): one word
    /// of printable ASCII, as Intel's keys (32 hex digits) are. The one check of every key the
    /// CLI (`--pcs-api-key-file`, `--pcs-api-key`, `TESSERA_PCS_API_KEY`) and the broker
    /// (`collateral.pcs_api_key_file`) take, so that an empty file is not sent as an empty key
    /// and a key of two lines, or with a control character, never reaches a request header.
    ///
    /// # Errors
    /// [`CollateralError::ApiKey`] when it is empty or holds anything else (the message never
    /// quotes the key).
    pub fn new(text: &str) -> Result<Self, CollateralError> {
        let key = text.trim();
        if key.is_empty() {
            return Err(CollateralError::ApiKey { detail: "empty" });
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CollateralError::ApiKey {
                detail: "not one word of printable ASCII (a space, line break, control or \
                         non-ASCII character inside)",
            });
        }
        Ok(Self(Zeroizing::new(key.to_owned())))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl PartialEq for ApiKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant time in the key's bytes (lengths may differ publicly).
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for ApiKey {}

/// Intel's PCS v4, or a PCCS (same API under another base URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcsSource {
    base: String,
    root_ca_crl_url: String,
    api_key: Option<ApiKey>,
}

impl PcsSource {
    /// Intel's public PCS, with the Root CA CRL from Intel's certificate host.
    #[must_use]
    pub fn intel() -> Self {
        Self {
            base: INTEL_PCS_URL.to_owned(),
            root_ca_crl_url: INTEL_ROOT_CA_CRL_URL.to_owned(),
            api_key: None,
        }
    }

    /// A PCCS (or PCS mirror) at `base`; the Root CA CRL is asked of it too
    /// (`/sgx/certification/v4/rootcacrl`, which a PCCS serves).
    ///
    /// # Errors
    /// [`CollateralError::BaseUrl`] when `base` is not an http(s) URL without query.
    pub fn new(base: &str) -> Result<Self, CollateralError> {
        let base = base_url(base)?;
        Ok(Self {
            root_ca_crl_url: format!("{base}/sgx/certification/v4/rootcacrl"),
            base,
            api_key: None,
        })
    }

    /// Fetch the Root CA CRL from `url` instead.
    ///
    /// # Errors
    /// [`CollateralError::BaseUrl`] when `url` is not an http(s) URL without query.
    pub fn with_root_ca_crl_url(mut self, url: &str) -> Result<Self, CollateralError> {
        self.root_ca_crl_url = base_url(url)?;
        Ok(self)
    }

    /// Send `key` in the `Ocp-Apim-Subscription-Key` header.
    #[must_use]
    pub fn with_api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// The base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The API key to send with a request for `url`: only to URLs under the base (Intel's
    /// PCS, or the PCCS), never to another host such as Intel's Root CA CRL host or a URL set
    /// with [`PcsSource::with_root_ca_crl_url`].
    pub(crate) fn api_key_for(&self, url: &str) -> Option<&ApiKey> {
        let under_base = url
            .strip_prefix(self.base.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
        self.api_key.as_ref().filter(|_| under_base)
    }

    /// The URL of an Intel item, `None` for an AMD one.
    ///
    /// TCB info: `/{sgx|tdx}/certification/v4/tcb?fmspc=..&update=..`; QE identity:
    /// `/{sgx|tdx}/certification/v4/qe/identity?update=..`; PCK CRL:
    /// `/sgx/certification/v4/pckcrl?ca=..&encoding=der`; Root CA CRL: see
    /// [`PcsSource::intel`] and [`PcsSource::new`].
    #[must_use]
    pub fn url(&self, item: &Item) -> Option<String> {
        let base = &self.base;
        match item {
            Item::TcbInfo { tee, fmspc, update } => Some(format!(
                "{base}/{}/certification/v4/tcb?fmspc={fmspc}&update={}",
                tee.path(),
                update.as_str()
            )),
            Item::QeIdentity { tee, update } => Some(format!(
                "{base}/{}/certification/v4/qe/identity?update={}",
                tee.path(),
                update.as_str()
            )),
            Item::PckCrl { ca } => Some(format!(
                "{base}/sgx/certification/v4/pckcrl?ca={}&encoding=der",
                ca.as_str()
            )),
            Item::RootCaCrl => Some(self.root_ca_crl_url.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{AmdSigner, IntelTee, PckCa, UpdateType};
    use tessera_snp::abi::{Product, TcbParts};

    /// A key is one word of printable ASCII, trimmed: an empty text, or one with a space,
    /// a line break or a control character inside, is refused without being quoted.
    #[test]
    fn api_keys_are_one_printable_word() {
        assert_eq!(
            ApiKey::new("  0123abcd\n").unwrap(),
            ApiKey::new("0123abcd").unwrap()
        );
        assert_eq!(ApiKey::new("0123abcd\n").unwrap().expose(), "0123abcd");
        for bad in [
            "",
            " \n",
            "\n\n",
            "ab cd",
            "ab\ncd\n",
            "ab\r\ncd",
            "\u{1b}[2J",
            "kéy",
            "a\tb",
        ] {
            let e = ApiKey::new(bad).unwrap_err();
            assert!(matches!(e, CollateralError::ApiKey { .. }), "{bad:?}: {e}");
            let said = e.to_string();
            assert!(said.starts_with("PCS subscription key: "), "{said}");
            assert!(
                bad.trim().is_empty() || !said.contains(bad.trim()),
                "{said}"
            );
        }
    }

    /// The API key goes to the PCS (or PCCS) base only: not to Intel's Root CA CRL host, nor
    /// to a Root CA CRL URL elsewhere, nor to a host whose name merely starts like the base's.
    #[test]
    fn the_pcs_api_key_goes_to_the_base_only() {
        let key = ApiKey::new("k3y").unwrap();
        let intel = PcsSource::intel().with_api_key(key.clone());
        let tcb = intel
            .url(&Item::tcb_info(
                IntelTee::Tdx,
                [0, 0x80, 0x6f, 5, 0, 0],
                UpdateType::Standard,
            ))
            .unwrap();
        assert!(intel.api_key_for(&tcb).is_some(), "{tcb}");
        let root = intel.url(&Item::RootCaCrl).unwrap();
        assert!(intel.api_key_for(&root).is_none(), "{root}");
        let pccs = PcsSource::new("https://pccs.example:8081")
            .unwrap()
            .with_api_key(key.clone());
        assert!(
            pccs.api_key_for(&pccs.url(&Item::RootCaCrl).unwrap())
                .is_some()
        );
        let elsewhere = pccs
            .clone()
            .with_root_ca_crl_url("http://crl.example/root.crl")
            .unwrap();
        assert!(
            elsewhere
                .api_key_for(&elsewhere.url(&Item::RootCaCrl).unwrap())
                .is_none()
        );
        assert!(pccs.api_key_for("https://pccs.example:80812/x").is_none());
        assert!(
            pccs.api_key_for("https://pccs.example:8081.evil/x")
                .is_none()
        );
    }

    #[test]
    fn kds_urls() {
        let kds = KdsSource::amd();
        let mut chip = [0u8; 64];
        chip[..8].copy_from_slice(&[0x6b, 0xb1, 0x22, 0x9b, 0x76, 0x92, 0xb7, 0x10]);
        let tcb = TcbParts {
            fmc: Some(1),
            bootloader: 1,
            tee: 1,
            snp: 4,
            microcode: 82,
        };
        let turin = Item::vcek(Product::Turin, &chip, tcb).unwrap();
        assert_eq!(
            kds.url(&turin).unwrap(),
            "https://kdsintf.amd.com/vcek/v1/Turin/6bb1229b7692b710?fmcSPL=01&blSPL=01&teeSPL=01&snpSPL=04&ucodeSPL=82"
        );
        let milan = Item::vcek(
            Product::Milan,
            &[0xC0; 64],
            TcbParts {
                fmc: None,
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115,
            },
        )
        .unwrap();
        assert_eq!(
            kds.url(&milan).unwrap(),
            format!(
                "https://kdsintf.amd.com/vcek/v1/Milan/{}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115",
                "c0".repeat(64)
            )
        );
        let mirror = KdsSource::new("http://127.0.0.1:9/kds/").unwrap();
        assert_eq!(
            mirror
                .url(&Item::AmdChain {
                    product: Product::Genoa,
                    signer: AmdSigner::Vlek
                })
                .unwrap(),
            "http://127.0.0.1:9/kds/vlek/v1/Genoa/cert_chain"
        );
        assert_eq!(
            mirror
                .url(&Item::AmdCrl {
                    product: Product::Milan,
                    signer: AmdSigner::Vcek
                })
                .unwrap(),
            "http://127.0.0.1:9/kds/vcek/v1/Milan/crl"
        );
        assert_eq!(mirror.url(&Item::RootCaCrl), None);
    }

    #[test]
    fn pcs_urls() {
        let pcs = PcsSource::intel();
        let tcb = Item::tcb_info(IntelTee::Tdx, [0, 0x80, 0x6f, 5, 0, 0], UpdateType::Early);
        assert_eq!(
            pcs.url(&tcb).unwrap(),
            "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=00806F050000&update=early"
        );
        assert_eq!(
            pcs.url(&Item::QeIdentity {
                tee: IntelTee::Sgx,
                update: UpdateType::Standard
            })
            .unwrap(),
            "https://api.trustedservices.intel.com/sgx/certification/v4/qe/identity?update=standard"
        );
        assert_eq!(
            pcs.url(&Item::PckCrl {
                ca: PckCa::Processor
            })
            .unwrap(),
            "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=processor&encoding=der"
        );
        assert_eq!(pcs.url(&Item::RootCaCrl).unwrap(), INTEL_ROOT_CA_CRL_URL);
        let pccs = PcsSource::new("https://pccs.local:8081").unwrap();
        assert_eq!(
            pccs.url(&Item::RootCaCrl).unwrap(),
            "https://pccs.local:8081/sgx/certification/v4/rootcacrl"
        );
        assert_eq!(
            pccs.url(&tcb).unwrap().split('/').nth(2),
            Some("pccs.local:8081")
        );
    }

    #[test]
    fn base_urls_are_checked_and_keys_hidden() {
        for bad in [
            "ftp://x",
            "https://",
            "https:///x",
            "x.com",
            "https://a?b=1",
            "https://a b",
            "https://user:pass@pccs.example",
        ] {
            assert!(
                !KdsSource::new(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("user:pass"),
                "{bad}"
            );
            assert!(KdsSource::new(bad).is_err(), "{bad}");
            assert!(PcsSource::new(bad).is_err(), "{bad}");
        }
        let key = ApiKey::new("sekrit").unwrap();
        assert!(!format!("{key:?}").contains("sekrit"));
        let pcs = PcsSource::intel().with_api_key(key.clone());
        assert!(!format!("{pcs:?}").contains("sekrit"));
        let qe = pcs.url(&Item::QeIdentity {
            tee: IntelTee::Sgx,
            update: UpdateType::Standard,
        });
        let qe = qe.unwrap();
        assert_eq!(pcs.api_key_for(&qe), Some(&key));
        assert_ne!(Some(&ApiKey::new("sekriT").unwrap()), pcs.api_key_for(&qe));
    }
}
