//! A simulated TEE: the project's fake AMD and Intel PKIs sign SEV-SNP reports and TDX quotes
//! carrying the REPORT_DATA a broker asked for, in the KBS evidence JSON a guest sends. For tests,
//! demos and development against a broker that trusts the simulator's roots
//! (`--dangerous-test-root`); a real guest collects evidence from the hardware instead.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tessera::snp::abi::{Product, RawReport};
use tessera::snp::sim::{SimPki, SimVek, VekSpec};
use tessera::tdx::collateral::{Collateral, TcbStatus};
use tessera::tdx::sim::{CollateralSpec, PlatformSpec, QuoteSpec, SimPck, SimPcs};
use tessera_pki::{Certificate, UnixTime};

use crate::client::ClientError;

/// What a simulated guest measures: the fields a policy pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurements {
    /// SNP MEASUREMENT / TDX MRTD (the first 48 bytes).
    pub measurement: [u8; 48],
    /// Whether the guest is debuggable (SNP policy bit 19 / TD_ATTRIBUTES.DEBUG).
    pub debug: bool,
    /// SNP HOST_DATA (32 bytes) / TDX MR_CONFIG_ID (48 bytes, zero-padded): the init-data digest.
    pub init_data_digest: Vec<u8>,
}

impl Default for Measurements {
    fn default() -> Self {
        Self {
            measurement: [0x4D; 48],
            debug: false,
            init_data_digest: Vec::new(),
        }
    }
}

fn sim_error(e: impl std::fmt::Display) -> ClientError {
    ClientError::Evidence {
        reason: format!("simulator: {e}"),
    }
}

/// A simulated SEV-SNP guest on one product, with its fake AMD PKI and VCEK.
#[derive(Debug)]
pub struct SimSnp {
    pki: SimPki,
    vcek: SimVek,
}

impl SimSnp {
    /// A fresh fake AMD PKI for `product` and a VCEK under it.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if the simulator fails.
    pub fn new(product: Product) -> Result<Self, ClientError> {
        let pki = SimPki::new(product).map_err(sim_error)?;
        Self::with_pki(pki)
    }

    /// A VCEK under an existing fake PKI.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if the simulator fails.
    pub fn with_pki(pki: SimPki) -> Result<Self, ClientError> {
        let vcek = pki
            .issue_vek(&VekSpec::vcek(pki.product()))
            .map_err(sim_error)?;
        Ok(Self { pki, vcek })
    }

    /// The fake ARK, the root a broker must be told to trust.
    pub fn root(&self) -> &Certificate {
        self.pki.ark()
    }

    /// The fake PKI.
    pub fn pki(&self) -> &SimPki {
        &self.pki
    }

    /// The raw signed report for `report_data` and `m`, after `edit` (for negative tests).
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if signing fails.
    pub fn report(
        &self,
        report_data: &[u8; 64],
        m: &Measurements,
        edit: impl FnOnce(&mut RawReport),
    ) -> Result<Vec<u8>, ClientError> {
        let mut raw = self.pki.report_template(&self.vcek);
        raw.report_data = *report_data;
        raw.measurement = m.measurement;
        let policy = raw.policy.get();
        let debug_bit = 1u64 << 19;
        raw.policy.set(if m.debug {
            policy | debug_bit
        } else {
            policy & !debug_bit
        });
        for (dst, src) in raw.host_data.iter_mut().zip(&m.init_data_digest) {
            *dst = *src;
        }
        edit(&mut raw);
        let report = self.vcek.sign(raw).map_err(sim_error)?;
        Ok(report.as_bytes().to_vec())
    }

    /// The KBS evidence JSON (`{"report": base64, "cert_chain": [VCEK, ASK, ARK]}`) for
    /// `report_data`.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if signing fails.
    pub fn evidence(&self, report_data: &[u8; 64], m: &Measurements) -> Result<Value, ClientError> {
        let report = self.report(report_data, m, |_| {})?;
        Ok(self.evidence_json(&report, true))
    }

    /// The KBS evidence JSON for raw report bytes, with or without the certificate chain (a guest
    /// that sends `cert_chain: null` relies on the broker's endorsements).
    pub fn evidence_json(&self, report: &[u8], with_chain: bool) -> Value {
        let cert = |kind: &str, c: &Certificate| json!({ "cert_type": kind, "data": c.der() });
        let chain = if with_chain {
            json!([
                cert("VCEK", self.vcek.certificate()),
                cert("ASK", self.pki.ask()),
                cert("ARK", self.pki.ark()),
            ])
        } else {
            Value::Null
        };
        json!({ "report": STANDARD.encode(report), "cert_chain": chain })
    }

    /// The VCEK (what a broker's endorsement directory would hold).
    pub fn vcek(&self) -> &Certificate {
        self.vcek.certificate()
    }
}

/// A simulated TDX guest: a fake Intel PKI, a PCK for one platform, and the collateral that
/// rates it UpToDate.
#[derive(Debug)]
pub struct SimTdx {
    pcs: SimPcs,
    pck: SimPck,
    platform: PlatformSpec,
    issued: UnixTime,
}

impl SimTdx {
    /// A fresh fake Intel PKI and a PCK for the default platform.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if the simulator fails.
    pub fn new() -> Result<Self, ClientError> {
        let pcs = SimPcs::new().map_err(sim_error)?;
        let platform = PlatformSpec::default();
        let pck = pcs.issue_pck(&platform).map_err(sim_error)?;
        Ok(Self {
            pcs,
            pck,
            platform,
            issued: UnixTime::now(),
        })
    }

    /// The collateral's shape: UpToDate, issued a day before this simulator was made and valid
    /// for 30 days after.
    fn collateral_spec(&self) -> CollateralSpec {
        let mut spec =
            CollateralSpec::matching(&self.platform, &QuoteSpec::tdx(), TcbStatus::UpToDate);
        let now = self.issued.as_secs();
        spec.issue_date = UnixTime::from_secs(now.saturating_sub(86_400));
        spec.next_update = UnixTime::from_secs(now.saturating_add(30 * 86_400));
        spec
    }

    /// The fake Intel root, the root a broker must be told to trust.
    pub fn root(&self) -> &Certificate {
        self.pcs.root()
    }

    fn spec(report_data: &[u8; 64], m: &Measurements) -> QuoteSpec {
        let mut spec = QuoteSpec::tdx();
        spec.report_data = *report_data;
        spec.mr_td = m.measurement;
        if m.debug {
            spec.td_attributes |= 1;
        }
        for (dst, src) in spec.mr_config_id.iter_mut().zip(&m.init_data_digest) {
            *dst = *src;
        }
        spec
    }

    /// The collateral that rates this platform UpToDate (what a broker must hold).
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if the simulator fails.
    pub fn collateral(&self) -> Result<Collateral, ClientError> {
        self.pcs
            .collateral(&self.collateral_spec())
            .map_err(sim_error)
    }

    /// The collateral as the bundle JSON a broker's endorsement directory holds.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if the simulator fails.
    pub fn collateral_json(&self) -> Result<String, ClientError> {
        self.pcs
            .collateral_json(&self.collateral_spec())
            .map_err(sim_error)
    }

    /// The raw quote for `report_data` and `m`, after `edit` of its spec.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if signing fails.
    pub fn quote(
        &self,
        report_data: &[u8; 64],
        m: &Measurements,
        edit: impl FnOnce(&mut QuoteSpec),
    ) -> Result<Vec<u8>, ClientError> {
        let mut spec = Self::spec(report_data, m);
        edit(&mut spec);
        let quote = self.pcs.quote(&self.pck, &spec).map_err(sim_error)?;
        Ok(quote.to_bytes())
    }

    /// The KBS evidence JSON (`{"quote": base64, "cc_eventlog": null}`) for `report_data`.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if signing fails.
    pub fn evidence(&self, report_data: &[u8; 64], m: &Measurements) -> Result<Value, ClientError> {
        let quote = self.quote(report_data, m, |_| {})?;
        Ok(json!({ "quote": STANDARD.encode(quote), "cc_eventlog": null }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera::{Evidence, Verifier};

    #[test]
    fn simulated_snp_evidence_verifies_under_its_root_only() {
        let sim = SimSnp::new(Product::Genoa).unwrap();
        let rd = [7u8; 64];
        let m = Measurements {
            init_data_digest: vec![9; 32],
            ..Measurements::default()
        };
        let json = sim.evidence(&rd, &m).unwrap();
        let e = Evidence::from_kbs("snp", &json).unwrap();
        assert_eq!(e.report_data(), &rd);
        assert_eq!(e.init_data_field(), Some(&[9u8; 32][..]));
        let trusting = Verifier::builder()
            .dangerous_test_root(sim.root().clone())
            .unwrap()
            .build()
            .unwrap();
        trusting.verify(&e, UnixTime::now()).unwrap();
        let vendor_only = Verifier::new().unwrap();
        assert!(vendor_only.verify(&e, UnixTime::now()).is_err());
    }

    #[test]
    fn simulated_tdx_evidence_verifies_with_its_collateral() {
        let sim = SimTdx::new().unwrap();
        let rd = [5u8; 64];
        let json = sim.evidence(&rd, &Measurements::default()).unwrap();
        let e = Evidence::from_kbs("tdx", &json).unwrap();
        assert_eq!(e.report_data(), &rd);
        let v = Verifier::builder()
            .dangerous_test_root(sim.root().clone())
            .unwrap()
            .collateral(sim.collateral().unwrap())
            .build()
            .unwrap();
        v.verify(&e, UnixTime::now()).unwrap();
    }
}
