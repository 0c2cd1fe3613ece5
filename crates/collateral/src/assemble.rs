//! Turning cached entries into the verifiers' inputs: certificates and CRLs for
//! `tessera_snp::Verifier`, a `tessera_tdx::collateral::Collateral` for `tessera_tdx::Verifier`.
//!
//! Each item is read by the existing parsers (tessera-pki for certificates and CRLs,
//! tessera-tdx's `Signed` for TCB info and identities) from the body and issuer chain exactly
//! as the vendor sent them.

use std::sync::Arc;

use tessera_pki::{Certificate, Crl, UnixTime, load_certificates, load_crls};
use tessera_snp::abi::{AttestationReport, Product};
use tessera_tdx::CollateralItem;
use tessera_tdx::abi::Quote;
use tessera_tdx::collateral::{Collateral, CollateralParts, Signed};

use crate::CollateralError;
use crate::cache::Cache;
use crate::entry::{Entry, one_crl, signed_body};
use crate::item::{AmdSigner, Item, UpdateType, items_for_quote, items_for_snp_report};

/// What the SEV-SNP verifier takes besides the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnpEndorsements {
    /// VCEK (when fetched), intermediate and ARK.
    pub certificates: Vec<Certificate>,
    /// The product's ARK-signed CRL.
    pub crls: Vec<Crl>,
}

fn assemble_err(detail: String) -> CollateralError {
    CollateralError::Assemble { detail }
}

/// Certificates and CRLs from AMD entries (VCEK, chain, CRL), in that order.
///
/// # Errors
/// [`CollateralError::Assemble`] when an entry is not an AMD item or its body does not parse.
pub fn snp_endorsements_from_entries(
    entries: &[Arc<Entry>],
) -> Result<SnpEndorsements, CollateralError> {
    let mut out = SnpEndorsements::default();
    for entry in entries {
        let key = entry.item().key();
        let parse = |e: tessera_pki::PkiError| assemble_err(format!("{key}: {e}"));
        match entry.item() {
            Item::Vcek { .. } | Item::AmdChain { .. } => {
                out.certificates
                    .extend(load_certificates(entry.body()).map_err(parse)?);
            }
            Item::AmdCrl { .. } => out.crls.extend(load_crls(entry.body()).map_err(parse)?),
            _ => return Err(assemble_err(format!("{key}: not an AMD item"))),
        }
    }
    Ok(out)
}

/// One Intel entry read into the verifier's types (TCB info or QE identity with its issuer
/// chain, a CRL), for [`tessera_tdx::Verifier::check_collateral_item`] and
/// [`tdx_collateral_from_entries`].
///
/// # Errors
/// [`CollateralError::Assemble`] when the entry is not an Intel item or does not parse.
pub fn intel_item(entry: &Entry) -> Result<CollateralItem, CollateralError> {
    let key = entry.item().key();
    let parse = |e: CollateralError| assemble_err(e.to_string());
    let chain = || -> Result<Vec<Certificate>, CollateralError> {
        let pem = entry
            .issuer_chain()
            .ok_or_else(|| assemble_err(format!("{key}: no issuer chain")))?;
        load_certificates(pem.as_bytes())
            .map_err(|e| assemble_err(format!("{key}: issuer chain: {e}")))
    };
    Ok(match entry.item() {
        Item::TcbInfo { .. } => {
            let (body, signature) = signed_body(&key, entry.body(), true).map_err(parse)?;
            let signed = Signed::tcb_info(body.get().as_bytes().to_vec(), signature)
                .map_err(|e| assemble_err(format!("{key}: {e}")))?;
            CollateralItem::TcbInfo(signed, chain()?)
        }
        Item::QeIdentity { .. } => {
            let (body, signature) = signed_body(&key, entry.body(), false).map_err(parse)?;
            let signed = Signed::qe_identity(body.get().as_bytes().to_vec(), signature)
                .map_err(|e| assemble_err(format!("{key}: {e}")))?;
            CollateralItem::QeIdentity(signed, chain()?)
        }
        Item::PckCrl { .. } => {
            CollateralItem::PckCrl(one_crl(&key, entry.body()).map_err(parse)?, chain()?)
        }
        Item::RootCaCrl => CollateralItem::RootCaCrl(one_crl(&key, entry.body()).map_err(parse)?),
        _ => return Err(assemble_err(format!("{key}: not an Intel item"))),
    })
}

/// A TDX/SGX collateral from Intel entries (TCB info, QE identity, PCK CRL, Root CA CRL), each
/// read by the tessera-tdx and tessera-pki parsers into `CollateralParts`: the issuer chain
/// that came with each item is that item's chain.
///
/// # Errors
/// [`CollateralError::Assemble`] when an item is missing, given twice, not an Intel item, or
/// does not parse.
pub fn tdx_collateral_from_entries(entries: &[Arc<Entry>]) -> Result<Collateral, CollateralError> {
    let mut tcb_info = None;
    let mut qe_identity = None;
    let mut pck_crl = None;
    let mut root_ca_crl = None;
    for entry in entries {
        let key = entry.item().key();
        let twice = || assemble_err(format!("{key}: a second item of this kind"));
        match intel_item(entry)? {
            CollateralItem::TcbInfo(signed, chain) => {
                if tcb_info.replace((signed, chain)).is_some() {
                    return Err(twice());
                }
            }
            CollateralItem::QeIdentity(signed, chain) => {
                if qe_identity.replace((signed, chain)).is_some() {
                    return Err(twice());
                }
            }
            CollateralItem::PckCrl(crl, chain) => {
                if pck_crl.replace((crl, chain)).is_some() {
                    return Err(twice());
                }
            }
            CollateralItem::RootCaCrl(crl) => {
                if root_ca_crl.replace(crl).is_some() {
                    return Err(twice());
                }
            }
        }
    }
    let (tcb_info, tcb_info_issuer_chain) =
        tcb_info.ok_or_else(|| assemble_err(String::from("no TCB info")))?;
    let (qe_identity, qe_identity_issuer_chain) =
        qe_identity.ok_or_else(|| assemble_err(String::from("no QE identity")))?;
    let (pck_crl, pck_crl_issuer_chain) = match pck_crl {
        Some((crl, chain)) => (Some(crl), chain),
        None => (None, Vec::new()),
    };
    Ok(Collateral::from_parts(CollateralParts {
        tcb_info,
        qe_identity,
        tcb_info_issuer_chain,
        qe_identity_issuer_chain,
        pck_crl_issuer_chain,
        pck_crl,
        root_ca_crl,
    }))
}

fn get_all(
    cache: &Cache,
    items: &[Item],
    now: UnixTime,
) -> Result<Vec<Arc<Entry>>, CollateralError> {
    items.iter().map(|item| cache.get(item, now)).collect()
}

/// The endorsements for an SEV-SNP report from `cache` (fetched when the cache is online):
/// its VCEK, chain and CRL — or, for a VLEK-signed report, the chain and CRL (the VLEK must
/// come with the evidence). `now` is the wall-clock time for the cache; verification takes
/// its own time.
///
/// # Errors
/// As [`items_for_snp_report`] and [`Cache::get`]; [`CollateralError::Assemble`].
pub fn snp_endorsements(
    cache: &Cache,
    report: &AttestationReport,
    product: Product,
    now: UnixTime,
) -> Result<SnpEndorsements, CollateralError> {
    let items = items_for_snp_report(report, product)?;
    snp_endorsements_from_entries(&get_all(cache, &items, now)?)
}

/// The ARK's CRL for `product`'s VCEK or VLEK chain from `cache` (fetched when the cache is
/// online), alone: for a report whose VEK is held while its CRL went stale, so neither a masked
/// CHIP_ID nor a VEK the service does not know stands in the way of the CRL.
///
/// # Errors
/// As [`Cache::get`]; [`CollateralError::Assemble`].
pub fn snp_crl(
    cache: &Cache,
    product: Product,
    signer: AmdSigner,
    now: UnixTime,
) -> Result<SnpEndorsements, CollateralError> {
    let item = Item::AmdCrl { product, signer };
    snp_endorsements_from_entries(&get_all(cache, &[item], now)?)
}

/// The collateral for a TDX/SGX quote from `cache` (fetched when the cache is online).
///
/// # Errors
/// As [`items_for_quote`] and [`Cache::get`]; [`CollateralError::Assemble`].
pub fn tdx_collateral(
    cache: &Cache,
    quote: &Quote,
    update: UpdateType,
    now: UnixTime,
) -> Result<Collateral, CollateralError> {
    let items = items_for_quote(quote, update)?;
    tdx_collateral_from_entries(&get_all(cache, &items, now)?)
}
