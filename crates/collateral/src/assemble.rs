//! Turning cached entries into the verifiers' inputs: certificates and CRLs for
//! `tessera_snp::Verifier`, a `tessera_tdx::collateral::Collateral` for `tessera_tdx::Verifier`.
//!
//! The TDX collateral is built by the existing PCS-file loader
//! ([`Collateral::from_pcs_files`]) from the bodies and issuer chains exactly as PCS sent
//! them, so a fetched item and a file saved from PCS by hand take the same path.

use std::sync::Arc;

use tessera_pki::{Certificate, Crl, UnixTime, load_certificates, load_crls};
use tessera_snp::abi::{AttestationReport, Product};
use tessera_tdx::abi::Quote;
use tessera_tdx::collateral::Collateral;

use crate::CollateralError;
use crate::cache::Cache;
use crate::entry::Entry;
use crate::item::{Item, UpdateType, items_for_quote, items_for_snp_report};

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

/// A TDX/SGX collateral from Intel entries (TCB info, QE identity, PCK CRL, Root CA CRL).
///
/// # Errors
/// [`CollateralError::Assemble`] when the collateral loader refuses them (a missing TCB info
/// or QE identity, two different TCB infos, ...).
pub fn tdx_collateral_from_entries(entries: &[Arc<Entry>]) -> Result<Collateral, CollateralError> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(entries.len() * 2);
    for entry in entries {
        let key = entry.item().key();
        if entry.item().is_amd() {
            return Err(assemble_err(format!("{key}: not an Intel item")));
        }
        files.push((format!("{key}.body"), entry.body().to_vec()));
        if let Some(chain) = entry.issuer_chain() {
            files.push((format!("{key}.issuer-chain.pem"), chain.as_bytes().to_vec()));
        }
    }
    Collateral::from_pcs_files(&files).map_err(|e| assemble_err(e.to_string()))
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
