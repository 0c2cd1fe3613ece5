//! What can be fetched: one [`Item`] per vendor object, its cache key, and the items a piece
//! of evidence needs.
//!
//! AMD (Key Distribution Service, spec 57230 chapter 4): the VCEK of one chip at one TCB, the
//! ASK+ARK (VCEK) or ASVK+ARK (VLEK) chain of a product, and the ARK-signed CRL of a product.
//! A VLEK cannot be fetched: AMD issues it to a cloud provider, who installs it in the host and
//! hands it out with the report (the extended report's certificate table); only its chain and
//! CRL come from KDS.
//!
//! Intel (PCS API v4, also served by a PCCS): TCB info for an FMSPC (SGX or TDX), the QE
//! identity (SGX `QE`, TDX `TD_QE`), each at `update=standard` or `early`; the PCK CRL of the
//! processor or platform CA; the Intel SGX Root CA CRL.

use serde::{Deserialize, Serialize};
use tessera_snp::abi::{AttestationReport, Product, TcbParts};
use tessera_snp::certs::VekKind;
use tessera_tdx::abi::{Quote, TeeType};

use crate::CollateralError;

/// Which VEK a KDS chain or CRL belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmdSigner {
    /// VCEK: the ASK signs it (`/vcek/v1/...`).
    Vcek,
    /// VLEK: the ASVK signs it (`/vlek/v1/...`).
    Vlek,
}

impl From<VekKind> for AmdSigner {
    fn from(kind: VekKind) -> Self {
        match kind {
            VekKind::Vcek => Self::Vcek,
            VekKind::Vlek => Self::Vlek,
        }
    }
}

impl AmdSigner {
    /// `vcek` or `vlek`, as in KDS paths.
    #[must_use]
    pub fn path(self) -> &'static str {
        match self {
            Self::Vcek => "vcek",
            Self::Vlek => "vlek",
        }
    }
}

/// SGX or TDX collateral (PCS path prefix `/sgx` or `/tdx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntelTee {
    /// SGX: TCB info id `SGX`, QE identity `QE`.
    Sgx,
    /// TDX: TCB info id `TDX`, QE identity `TD_QE`.
    Tdx,
}

impl IntelTee {
    /// `sgx` or `tdx`, as in PCS paths.
    #[must_use]
    pub fn path(self) -> &'static str {
        match self {
            Self::Sgx => "sgx",
            Self::Tdx => "tdx",
        }
    }
}

/// PCS `update=`: which TCB recovery schedule the TCB info and identities follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateType {
    /// `standard` (PCS's default): the new TCB level is enforced after Intel's grace period.
    #[default]
    Standard,
    /// `early`: the new TCB level as soon as Intel publishes it.
    Early,
}

impl UpdateType {
    /// `standard` or `early`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Early => "early",
        }
    }
}

impl core::str::FromStr for UpdateType {
    type Err = CollateralError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "standard" => Ok(Self::Standard),
            "early" => Ok(Self::Early),
            _ => Err(CollateralError::Item {
                field: "update",
                detail: String::from("must be `standard` or `early`"),
            }),
        }
    }
}

/// The CA whose PCK CRL is asked for (`ca=processor|platform`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PckCa {
    /// Intel SGX PCK Processor CA.
    Processor,
    /// Intel SGX PCK Platform CA.
    Platform,
}

impl PckCa {
    /// `processor` or `platform`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processor => "processor",
            Self::Platform => "platform",
        }
    }

    /// The CA that issued a PCK certificate, from the issuer's common name.
    #[must_use]
    pub fn of_issuer(issuer: &str) -> Option<Self> {
        let cn = crate::entry::common_name(issuer)?;
        if cn.contains("PCK Platform CA") {
            Some(Self::Platform)
        } else if cn.contains("PCK Processor CA") {
            Some(Self::Processor)
        } else {
            None
        }
    }
}

/// One object to fetch, exactly as asked: the cache key is derived from it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Item {
    /// The VCEK of one chip at one reported TCB.
    Vcek {
        /// Milan, Genoa or Turin.
        product: Product,
        /// hwID in lower-case hex: 64 bytes (Milan, Genoa) or 8 (Turin).
        hwid: String,
        /// fmcSPL (Turin only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fmc: Option<u8>,
        /// blSPL.
        bl: u8,
        /// teeSPL.
        tee: u8,
        /// snpSPL.
        snp: u8,
        /// ucodeSPL.
        ucode: u8,
    },
    /// The intermediate and root of a product: ASK+ARK (VCEK) or ASVK+ARK (VLEK).
    AmdChain {
        /// The product.
        product: Product,
        /// Which intermediate.
        signer: AmdSigner,
    },
    /// The ARK-signed CRL of a product.
    AmdCrl {
        /// The product.
        product: Product,
        /// The KDS path it is fetched under (the list is the same ARK-signed one).
        signer: AmdSigner,
    },
    /// TCB info for an FMSPC.
    TcbInfo {
        /// SGX or TDX.
        tee: IntelTee,
        /// FMSPC, 12 upper-case hex digits.
        fmspc: String,
        /// Update schedule.
        update: UpdateType,
    },
    /// The QE identity (SGX `QE`, TDX `TD_QE`).
    QeIdentity {
        /// SGX or TDX.
        tee: IntelTee,
        /// Update schedule.
        update: UpdateType,
    },
    /// The PCK CRL of a CA.
    PckCrl {
        /// Processor or platform CA.
        ca: PckCa,
    },
    /// The Intel SGX Root CA CRL.
    RootCaCrl,
}

fn lower(p: Product) -> String {
    p.name().to_ascii_lowercase()
}

impl Item {
    /// The VCEK for `product`'s chip `hwid` at `tcb` (the report's REPORTED_TCB).
    ///
    /// `hwid` is the 64-byte CHIP_ID on Milan and Genoa; on Turin the 8-byte hwID or a
    /// CHIP_ID, of which the first 8 bytes are the hwID.
    ///
    /// # Errors
    /// [`CollateralError::Item`] for a hwID of the wrong length, an all-zero (masked)
    /// CHIP_ID, or an FMC SPL present off Turin / missing on Turin.
    pub fn vcek(product: Product, hwid: &[u8], tcb: TcbParts) -> Result<Self, CollateralError> {
        let bad = |field, detail: &str| CollateralError::Item {
            field,
            detail: detail.to_owned(),
        };
        let id = match (product, hwid.len()) {
            (Product::Turin, 8 | 64) => hwid.get(..8).unwrap_or_default(),
            (Product::Turin, _) => {
                return Err(bad("hwid", "Turin: 8 bytes (or a 64-byte CHIP_ID)"));
            }
            (_, 64) => hwid,
            _ => return Err(bad("hwid", "Milan/Genoa: 64 bytes")),
        };
        if id.iter().all(|b| *b == 0) {
            return Err(bad(
                "hwid",
                "all zeros: CHIP_ID is masked, so the VCEK cannot be looked up by it",
            ));
        }
        if product.has_fmc() != tcb.fmc.is_some() {
            return Err(bad(
                "fmc",
                "fmcSPL is required on Turin and absent on Milan/Genoa",
            ));
        }
        Ok(Self::Vcek {
            product,
            hwid: tessera_pki::to_hex(id),
            fmc: tcb.fmc,
            bl: tcb.bootloader,
            tee: tcb.tee,
            snp: tcb.snp,
            ucode: tcb.microcode,
        })
    }

    /// TCB info for `fmspc` (6 bytes).
    #[must_use]
    pub fn tcb_info(tee: IntelTee, fmspc: [u8; 6], update: UpdateType) -> Self {
        Self::TcbInfo {
            tee,
            fmspc: tessera_pki::to_hex(&fmspc).to_ascii_uppercase(),
            update,
        }
    }

    /// TCB info for an FMSPC given as 12 hex digits.
    ///
    /// # Errors
    /// [`CollateralError::Item`] when `hex` is not 12 hex digits.
    pub fn tcb_info_hex(
        tee: IntelTee,
        hex: &str,
        update: UpdateType,
    ) -> Result<Self, CollateralError> {
        let fmspc = parse_fmspc(hex)?;
        Ok(Self::tcb_info(tee, fmspc, update))
    }

    /// The cache key: lower-case ASCII letters, digits and `-` only, so it is a safe file name.
    #[must_use]
    pub fn key(&self) -> String {
        match self {
            Self::Vcek {
                product,
                hwid,
                fmc,
                bl,
                tee,
                snp,
                ucode,
            } => {
                let fmc = fmc.map(|f| format!("fmc{f}-")).unwrap_or_default();
                format!(
                    "amd-vcek-{}-{}-{fmc}bl{bl}-tee{tee}-snp{snp}-ucode{ucode}",
                    lower(*product),
                    hwid.to_ascii_lowercase()
                )
            }
            Self::AmdChain { product, signer } => {
                format!("amd-chain-{}-{}", lower(*product), signer.path())
            }
            Self::AmdCrl { product, signer } => {
                format!("amd-crl-{}-{}", lower(*product), signer.path())
            }
            Self::TcbInfo { tee, fmspc, update } => format!(
                "intel-tcb-{}-{}-{}",
                tee.path(),
                fmspc.to_ascii_lowercase(),
                update.as_str()
            ),
            Self::QeIdentity { tee, update } => {
                format!("intel-qe-{}-{}", tee.path(), update.as_str())
            }
            Self::PckCrl { ca } => format!("intel-pckcrl-{}", ca.as_str()),
            Self::RootCaCrl => String::from("intel-rootcacrl"),
        }
    }

    /// Whether the key of this item is well formed (a stored or imported item may not be).
    pub(crate) fn check(&self) -> Result<(), CollateralError> {
        let bad = |field, detail: &str| CollateralError::Item {
            field,
            detail: detail.to_owned(),
        };
        match self {
            Self::Vcek {
                product, hwid, fmc, ..
            } => {
                let want = if *product == Product::Turin { 16 } else { 128 };
                // Lower-case hex, as `Item::vcek` writes it: the key lower-cases it, so another
                // spelling would be stored under a name whose item it does not equal.
                if hwid.len() != want
                    || !hwid
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(bad(
                        "hwid",
                        "not the product's hwID length in lower-case hex",
                    ));
                }
                if product.has_fmc() != fmc.is_some() {
                    return Err(bad(
                        "fmc",
                        "fmcSPL is required on Turin and absent elsewhere",
                    ));
                }
                Ok(())
            }
            // Upper-case hex with nothing around it, as `Item::tcb_info` writes it.
            Self::TcbInfo { fmspc, .. } => {
                let canonical = tessera_pki::to_hex(&parse_fmspc(fmspc)?).to_ascii_uppercase();
                if *fmspc == canonical {
                    Ok(())
                } else {
                    Err(bad("fmspc", "not 12 upper-case hex digits"))
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether the item carries revocation or TCB status (an AMD CRL; Intel TCB info, QE
    /// identity, PCK CRL and Root CA CRL): what a newer copy can change for evidence that
    /// passed with the held one, so an online cache asks for it again at most
    /// [`crate::entry::STATUS_REFRESH_SECS`] after fetching it, whatever its own validity. A
    /// VCEK or certificate chain does not: a newer one revokes nothing.
    #[must_use]
    pub fn carries_status(&self) -> bool {
        // Exhaustive, so that a new kind of item is placed on one side or the other.
        match self {
            Self::Vcek { .. } | Self::AmdChain { .. } => false,
            Self::AmdCrl { .. }
            | Self::TcbInfo { .. }
            | Self::QeIdentity { .. }
            | Self::PckCrl { .. }
            | Self::RootCaCrl => true,
        }
    }

    /// Whether this is an AMD (KDS) item.
    #[must_use]
    pub fn is_amd(&self) -> bool {
        matches!(
            self,
            Self::Vcek { .. } | Self::AmdChain { .. } | Self::AmdCrl { .. }
        )
    }
}

impl core::fmt::Display for Item {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.key())
    }
}

/// Six bytes from 12 hex digits.
///
/// # Errors
/// [`CollateralError::Item`] otherwise.
pub fn parse_fmspc(hex: &str) -> Result<[u8; 6], CollateralError> {
    tessera_pki::from_hex(hex.trim().as_bytes())
        .and_then(|b| <[u8; 6]>::try_from(b).ok())
        .ok_or_else(|| CollateralError::Item {
            field: "fmspc",
            detail: String::from("must be 12 hex digits"),
        })
}

/// The items needed to verify an SEV-SNP report whose product is `product`: for a VCEK-signed
/// report its VCEK, the ASK+ARK chain and the CRL; for a VLEK-signed one the ASVK+ARK chain
/// and the CRL (the VLEK itself must come with the evidence).
///
/// # Errors
/// [`CollateralError::Item`] when the report's CHIP_ID is masked or its TCB cannot be asked
/// for; [`CollateralError::Evidence`] when the report names no signing key.
pub fn items_for_snp_report(
    report: &AttestationReport,
    product: Product,
) -> Result<Vec<Item>, CollateralError> {
    use tessera_snp::abi::SigningKey;
    let signer = match report.signer_info().signing_key() {
        SigningKey::Vcek => VekKind::Vcek,
        SigningKey::Vlek => VekKind::Vlek,
        _ => {
            return Err(CollateralError::Evidence {
                detail: String::from("SIGNER_INFO names neither the VCEK nor a VLEK"),
            });
        }
    };
    let tcb = report.reported_tcb().decode(product);
    let mut items = Vec::with_capacity(3);
    if signer == VekKind::Vcek {
        items.push(Item::vcek(product, &report.raw().chip_id, tcb)?);
    }
    let signer = AmdSigner::from(signer);
    items.push(Item::AmdChain { product, signer });
    items.push(Item::AmdCrl { product, signer });
    Ok(items)
}

/// The items needed to verify a TDX or SGX quote: TCB info for the PCK certificate's FMSPC,
/// the QE identity, the PCK CRL of the CA that issued the PCK certificate, the Root CA CRL.
///
/// # Errors
/// [`CollateralError::Evidence`] when the quote's PCK chain or its SGX extensions cannot be
/// read, or the PCK issuer is neither Intel PCK CA.
pub fn items_for_quote(quote: &Quote, update: UpdateType) -> Result<Vec<Item>, CollateralError> {
    let evidence = |detail: String| CollateralError::Evidence { detail };
    let tee = match quote.tee_type() {
        TeeType::TDX => IntelTee::Tdx,
        TeeType::SGX => IntelTee::Sgx,
        TeeType(other) => return Err(evidence(format!("TEE type {other:#x}"))),
    };
    let certs = quote
        .signature_data()
        .certification
        .pck_certificates()
        .map_err(|e| evidence(format!("PCK certificate chain: {e}")))?;
    let leaf = certs
        .first()
        .ok_or_else(|| evidence(String::from("PCK certificate chain is empty")))?;
    let pck = tessera_tdx::pck::PckExtensions::from_certificate(leaf)
        .map_err(|e| evidence(format!("PCK certificate: {e}")))?;
    let ca = PckCa::of_issuer(leaf.issuer()).ok_or_else(|| {
        evidence(String::from(
            "the PCK certificate's issuer is neither the Intel PCK Platform CA nor the Processor CA",
        ))
    })?;
    Ok(vec![
        Item::tcb_info(tee, pck.fmspc, update),
        Item::QeIdentity { tee, update },
        Item::PckCrl { ca },
        Item::RootCaCrl,
    ])
}

/// The items for an FMSPC without a quote (`collateral fetch --fmspc`): TCB info, QE
/// identity, both PCK CRLs and the Root CA CRL.
#[must_use]
pub fn items_for_fmspc(tee: IntelTee, fmspc: [u8; 6], update: UpdateType) -> Vec<Item> {
    vec![
        Item::tcb_info(tee, fmspc, update),
        Item::QeIdentity { tee, update },
        Item::PckCrl {
            ca: PckCa::Platform,
        },
        Item::PckCrl {
            ca: PckCa::Processor,
        },
        Item::RootCaCrl,
    ]
}

/// The items for one chip without a report (`collateral fetch --chip`): its VCEK at `tcb`,
/// the product's ASK+ARK chain and CRL.
///
/// # Errors
/// As [`Item::vcek`].
pub fn items_for_chip(
    product: Product,
    hwid: &[u8],
    tcb: TcbParts,
) -> Result<Vec<Item>, CollateralError> {
    Ok(vec![
        Item::vcek(product, hwid, tcb)?,
        Item::AmdChain {
            product,
            signer: AmdSigner::Vcek,
        },
        Item::AmdCrl {
            product,
            signer: AmdSigner::Vcek,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcb(fmc: Option<u8>) -> TcbParts {
        TcbParts {
            fmc,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
        }
    }

    #[test]
    fn vcek_items_follow_the_product_rules() {
        let chip = [0xAB; 64];
        let milan = Item::vcek(Product::Milan, &chip, tcb(None)).unwrap();
        assert_eq!(
            milan.key(),
            format!("amd-vcek-milan-{}-bl3-tee0-snp8-ucode115", "ab".repeat(64))
        );
        let mut turin_chip = [0u8; 64];
        turin_chip[..8].copy_from_slice(&[0x6b, 0xb1, 0x22, 0x9b, 0x76, 0x92, 0xb7, 0x10]);
        let turin = Item::vcek(Product::Turin, &turin_chip, tcb(Some(1))).unwrap();
        assert_eq!(
            turin.key(),
            "amd-vcek-turin-6bb1229b7692b710-fmc1-bl3-tee0-snp8-ucode115"
        );
        assert_eq!(
            Item::vcek(Product::Turin, &turin_chip[..8], tcb(Some(1))).unwrap(),
            turin
        );
        // Each rule rejects.
        assert!(Item::vcek(Product::Turin, &chip, tcb(None)).is_err());
        assert!(Item::vcek(Product::Milan, &chip, tcb(Some(1))).is_err());
        assert!(Item::vcek(Product::Genoa, &chip[..8], tcb(None)).is_err());
        assert!(Item::vcek(Product::Turin, &chip[..10], tcb(Some(1))).is_err());
        assert!(Item::vcek(Product::Milan, &[0; 64], tcb(None)).is_err());
        assert!(milan.check().is_ok() && turin.check().is_ok());
    }

    #[test]
    fn keys_are_file_names_and_items_round_trip() {
        let items = [
            Item::AmdChain {
                product: Product::Genoa,
                signer: AmdSigner::Vlek,
            },
            Item::AmdCrl {
                product: Product::Turin,
                signer: AmdSigner::Vcek,
            },
            Item::tcb_info_hex(IntelTee::Tdx, "00806f050000", UpdateType::Early).unwrap(),
            Item::QeIdentity {
                tee: IntelTee::Sgx,
                update: UpdateType::Standard,
            },
            Item::PckCrl {
                ca: PckCa::Platform,
            },
            Item::RootCaCrl,
        ];
        for item in &items {
            let key = item.key();
            assert!(
                key.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            );
            let json = serde_json::to_string(item).unwrap();
            assert_eq!(&serde_json::from_str::<Item>(&json).unwrap(), item);
        }
        assert_eq!(items[2].key(), "intel-tcb-tdx-00806f050000-early");
        assert!(Item::tcb_info_hex(IntelTee::Tdx, "00806f", UpdateType::Early).is_err());
        assert!(Item::tcb_info_hex(IntelTee::Tdx, "00806f05000g", UpdateType::Early).is_err());
        let bad: Item = serde_json::from_str(
            r#"{"kind":"vcek","product":"Milan","hwid":"../../etc","bl":1,"tee":0,"snp":1,"ucode":1}"#,
        )
        .unwrap();
        assert!(bad.check().is_err());
        // Spellings the key would fold together are refused: the file would hold an item that
        // is not the one its name is looked up by.
        let upper: Item = serde_json::from_str(&format!(
            r#"{{"kind":"vcek","product":"Milan","hwid":"{}","bl":1,"tee":0,"snp":1,"ucode":1}}"#,
            "AB".repeat(64)
        ))
        .unwrap();
        assert!(upper.check().is_err());
        for fmspc in ["00806f050000", " 00806F050000", "00806F050000 "] {
            let item: Item = serde_json::from_str(&format!(
                r#"{{"kind":"tcb_info","tee":"tdx","fmspc":"{fmspc}","update":"early"}}"#
            ))
            .unwrap();
            assert!(item.check().is_err(), "{fmspc:?}");
        }
        assert!(items.iter().all(|i| i.check().is_ok()));
        assert_eq!(
            PckCa::of_issuer("CN=Intel SGX PCK Platform CA, O=Intel Corporation"),
            Some(PckCa::Platform)
        );
        assert_eq!(
            PckCa::of_issuer("CN=Intel SGX PCK Processor CA"),
            Some(PckCa::Processor)
        );
        assert_eq!(PckCa::of_issuer("CN=Intel SGX Root CA"), None);
    }

    #[test]
    fn items_for_evidence() {
        use tessera_snp::sim::{SimPki, VekSpec};
        use zerocopy::little_endian::U32;
        let pki = SimPki::new(Product::Genoa).unwrap();
        let vcek = pki.issue_vek(&VekSpec::vcek(Product::Genoa)).unwrap();
        let report = vcek.sign(pki.report_template(&vcek)).unwrap();
        let items = items_for_snp_report(&report, Product::Genoa).unwrap();
        assert!(
            matches!(&items[0], Item::Vcek { product: Product::Genoa, hwid, .. } if hwid.len() == 128)
        );
        assert_eq!(
            items[1],
            Item::AmdChain {
                product: Product::Genoa,
                signer: AmdSigner::Vcek
            }
        );
        // A VLEK-signed report: chain and CRL under /vlek, no VEK to fetch.
        let vlek = pki
            .issue_vek(&VekSpec::vlek(Product::Genoa, "aws"))
            .unwrap();
        let report = vlek.sign(pki.report_template(&vlek)).unwrap();
        assert_eq!(
            items_for_snp_report(&report, Product::Genoa).unwrap(),
            vec![
                Item::AmdChain {
                    product: Product::Genoa,
                    signer: AmdSigner::Vlek
                },
                Item::AmdCrl {
                    product: Product::Genoa,
                    signer: AmdSigner::Vlek
                },
            ]
        );
        // A masked CHIP_ID names no VCEK.
        let mut raw = pki.report_template(&vcek);
        raw.chip_id = [0; 64];
        let masked = vcek.sign(raw).unwrap();
        assert!(matches!(
            items_for_snp_report(&masked, Product::Genoa),
            Err(CollateralError::Item { field: "hwid", .. })
        ));
        // SIGNER_INFO "no key".
        let mut raw = pki.report_template(&vcek);
        raw.signer_info = U32::new(7 << 2);
        let unsigned = vcek.sign(raw).unwrap();
        assert!(matches!(
            items_for_snp_report(&unsigned, Product::Genoa),
            Err(CollateralError::Evidence { .. })
        ));

        use tessera_tdx::sim::{PlatformSpec, QuoteSpec, SimPcs};
        let sim = SimPcs::new().unwrap();
        let platform = PlatformSpec::default();
        let pck = sim.issue_pck(&platform).unwrap();
        let tdx = sim.quote(&pck, &QuoteSpec::tdx()).unwrap();
        assert_eq!(
            items_for_quote(&tdx, UpdateType::Early).unwrap(),
            vec![
                Item::tcb_info(IntelTee::Tdx, platform.fmspc, UpdateType::Early),
                Item::QeIdentity {
                    tee: IntelTee::Tdx,
                    update: UpdateType::Early
                },
                Item::PckCrl {
                    ca: PckCa::Platform
                },
                Item::RootCaCrl,
            ]
        );
        let sgx = sim.quote(&pck, &QuoteSpec::sgx()).unwrap();
        let items = items_for_quote(&sgx, UpdateType::Standard).unwrap();
        assert_eq!(
            items[1],
            Item::QeIdentity {
                tee: IntelTee::Sgx,
                update: UpdateType::Standard
            }
        );
        assert_eq!(
            items_for_fmspc(IntelTee::Sgx, [1; 6], UpdateType::Standard).len(),
            5
        );
        assert_eq!(
            items_for_chip(
                Product::Milan,
                &[7; 64],
                TcbParts {
                    fmc: None,
                    bootloader: 1,
                    tee: 0,
                    snp: 2,
                    microcode: 3
                }
            )
            .unwrap()
            .len(),
            3
        );
    }
}
