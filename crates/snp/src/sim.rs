//! A simulated AMD PKI that signs SEV-SNP reports with chosen fields — for negative tests and
//! for users without hardware.
//!
//! The fake ARK/ASK/ASVK use RSASSA-PSS SHA-384 and the VCEK/VLEK ECDSA P-384 with AMD's TCB
//! extensions, like the real ones. Its roots are trusted only through
//! [`SimPki::dangerous_trust_anchors`] (or the CLI's `--dangerous-test-root`).

use tessera_pki::builder::{
    CertificateSpec, CrlSpec, IssuerKey, KeyedCertificate, basic_constraints_extension,
    issue_certificate, issue_crl, key_usage_extension, name,
};
use tessera_pki::{Certificate, Crl, PublicKeyKind, UnixTime};
use zerocopy::little_endian::{U32, U64};

use crate::SnpError;
use crate::abi::{AttestationReport, Product, RawReport, TcbParts};
use crate::certs::{
    OID_BL_SPL, OID_CSP_ID, OID_FMC_SPL, OID_HWID, OID_PRODUCT_NAME, OID_SNP_SPL,
    OID_STRUCT_VERSION, OID_TEE_SPL, OID_UCODE_SPL, ProductRoots, VekKind,
};
use crate::verify::TrustAnchors;

/// 2020-01-01T00:00:00Z: the simulated roots' notBefore.
pub const SIM_NOT_BEFORE: UnixTime = UnixTime::from_secs(1_577_836_800);
/// 2049-12-31T23:59:59Z: the simulated roots' notAfter.
pub const SIM_NOT_AFTER: UnixTime = UnixTime::from_secs(2_524_607_999);

fn sim_err(e: tessera_pki::PkiError) -> SnpError {
    SnpError::Pki {
        check: "simulator",
        source: e,
    }
}

fn amd_style_name(cn: &str) -> Result<Vec<u8>, SnpError> {
    name(&[
        ("2.5.4.11", "Engineering"),
        ("2.5.4.6", "US"),
        ("2.5.4.7", "Santa Clara"),
        ("2.5.4.8", "CA"),
        ("2.5.4.10", "Tessera Simulator (not AMD)"),
        ("2.5.4.3", cn),
    ])
    .map_err(sim_err)
}

/// What to put in a simulated VCEK or VLEK.
#[derive(Clone, Debug)]
pub struct VekSpec {
    /// VCEK (hwID) or VLEK (cspID).
    pub kind: VekKind,
    /// The TCB the key is issued for (fmc is written only when `Some`).
    pub tcb: TcbParts,
    /// hwID (VCEK): 64 bytes, or 8 on Turin.
    pub hwid: Vec<u8>,
    /// cspID (VLEK).
    pub csp_id: String,
    /// productName extension (`None` omits it).
    pub product_name: Option<String>,
    /// notBefore.
    pub not_before: UnixTime,
    /// notAfter.
    pub not_after: UnixTime,
    /// Issue under the other intermediate (a VCEK under the ASVK...): for negative tests.
    pub wrong_issuer: bool,
    /// Further extensions (dotted OID, critical, value), none in AMD's VEKs: for negative
    /// tests of the path checks (a keyUsage without digitalSignature, a critical extension).
    pub extra_extensions: Vec<(String, bool, Vec<u8>)>,
}

impl VekSpec {
    /// A VCEK for `product` with a plausible TCB and a fixed test hwID.
    #[must_use]
    pub fn vcek(product: Product) -> Self {
        let hwid_len = if product == Product::Turin { 8 } else { 64 };
        Self {
            kind: VekKind::Vcek,
            tcb: TcbParts {
                fmc: product.has_fmc().then_some(1),
                bootloader: 9,
                tee: 0,
                snp: 23,
                microcode: 72,
            },
            hwid: (0..hwid_len).map(|i| 0xA0 ^ i).collect(),
            csp_id: String::new(),
            product_name: Some(format!("{}-B0", product.name())),
            not_before: SIM_NOT_BEFORE,
            not_after: SIM_NOT_AFTER,
            wrong_issuer: false,
            extra_extensions: Vec::new(),
        }
    }

    /// A VLEK for `product` provisioned by `csp_id`.
    #[must_use]
    pub fn vlek(product: Product, csp_id: &str) -> Self {
        Self {
            kind: VekKind::Vlek,
            csp_id: csp_id.to_owned(),
            hwid: Vec::new(),
            ..Self::vcek(product)
        }
    }
}

/// A simulated VCEK/VLEK: its certificate and private key.
#[derive(Debug)]
pub struct SimVek {
    /// The spec it was issued from.
    pub spec: VekSpec,
    key: IssuerKey,
    cert: Certificate,
}

impl SimVek {
    /// The certificate and its key, to keep (see [`SimPki::import_vek`]).
    ///
    /// # Errors
    /// Backend failures.
    pub fn export(&self) -> Result<KeyedCertificate, SnpError> {
        KeyedCertificate::new(&self.cert, &self.key).map_err(sim_err)
    }

    /// The certificate.
    #[must_use]
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// Sign `raw`'s first 0x2A0 bytes and write R and S (little-endian, zero-extended to 72
    /// bytes) into its signature field.
    ///
    /// # Errors
    /// [`SnpError::Parse`] if `raw` has an unsupported version; backend failures.
    pub fn sign(&self, mut raw: RawReport) -> Result<AttestationReport, SnpError> {
        raw.signature.r = [0; 72];
        raw.signature.s = [0; 72];
        let unsigned = AttestationReport::from_raw(raw.clone())?;
        let sig = self
            .key
            .sign_fixed(unsigned.signed_bytes())
            .map_err(sim_err)?;
        let (r, s) = sig.split_at(sig.len() / 2);
        for (dst, src) in raw.signature.r.iter_mut().zip(r.iter().rev()) {
            *dst = *src;
        }
        for (dst, src) in raw.signature.s.iter_mut().zip(s.iter().rev()) {
            *dst = *src;
        }
        Ok(AttestationReport::from_raw(raw)?)
    }
}

/// A fake AMD PKI for one product: ARK, ASK and ASVK with their private keys.
#[derive(Debug)]
pub struct SimPki {
    product: Product,
    ark_key: IssuerKey,
    ask_key: IssuerKey,
    asvk_key: IssuerKey,
    ark: Certificate,
    ask: Certificate,
    asvk: Certificate,
}

impl SimPki {
    /// Generate a fake ARK, ASK and ASVK for `product` (RSA-2048, RSASSA-PSS SHA-384).
    ///
    /// # Errors
    /// Backend failures.
    pub fn new(product: Product) -> Result<Self, SnpError> {
        let p = product.name();
        let ark_name = amd_style_name(&format!("ARK-{p}"))?;
        // AMD's constraints: the ARK signs certificates and CRLs; an ASK or ASVK signs only
        // VEKs (pathLenConstraint 0) and no CRLs.
        let root_spec =
            |serial: u64, subject: Vec<u8>, path_len: Option<u64>, usage: u8| CertificateSpec {
                serial: serial.to_be_bytes().to_vec(),
                issuer: ark_name.clone(),
                subject,
                not_before: SIM_NOT_BEFORE,
                not_after: SIM_NOT_AFTER,
                ca: None,
                extensions: vec![
                    basic_constraints_extension(true, path_len),
                    key_usage_extension(usage),
                ],
                pss_explicit_trailer: false,
            };
        let ark_key = IssuerKey::generate_rsa(2048).map_err(sim_err)?;
        let ask_key = IssuerKey::generate_rsa(2048).map_err(sim_err)?;
        let asvk_key = IssuerKey::generate_rsa(2048).map_err(sim_err)?;
        let issue = |spec: CertificateSpec,
                     subject_key: &IssuerKey|
         -> Result<Certificate, SnpError> {
            let der = issue_certificate(&spec, &subject_key.spki_der().map_err(sim_err)?, &ark_key)
                .map_err(sim_err)?;
            Certificate::from_der(&der).map_err(sim_err)
        };
        let ark = issue(root_spec(0x10000, ark_name.clone(), None, 0x06), &ark_key)?;
        let ask = issue(
            root_spec(0x10001, amd_style_name(&format!("SEV-{p}"))?, Some(0), 0x04),
            &ask_key,
        )?;
        let asvk = issue(
            root_spec(
                0x10101,
                amd_style_name(&format!("SEV-VLEK-{p}"))?,
                Some(0),
                0x04,
            ),
            &asvk_key,
        )?;
        Ok(Self {
            product,
            ark_key,
            ask_key,
            asvk_key,
            ark,
            ask,
            asvk,
        })
    }

    /// The ARK, ASK and ASVK with their private keys, to keep this fake PKI on disk
    /// (`tessera sim --pki DIR`); [`SimPki::import`] reads them back.
    ///
    /// # Errors
    /// Backend failures.
    pub fn export(&self) -> Result<[KeyedCertificate; 3], SnpError> {
        Ok([
            KeyedCertificate::new(&self.ark, &self.ark_key).map_err(sim_err)?,
            KeyedCertificate::new(&self.ask, &self.ask_key).map_err(sim_err)?,
            KeyedCertificate::new(&self.asvk, &self.asvk_key).map_err(sim_err)?,
        ])
    }

    /// A fake PKI from what [`SimPki::export`] wrote (`[ark, ask, asvk]`): each key must be its
    /// certificate's, the ARK self-signed and named for `product`, the ASK and ASVK signed by it.
    ///
    /// # Errors
    /// [`SnpError::Pki`] (`simulator`) naming what does not fit.
    pub fn import(product: Product, parts: &[KeyedCertificate; 3]) -> Result<Self, SnpError> {
        let [ark, ask, asvk] = parts;
        let mut budget = tessera_pki::Budget::default();
        let want = format!("ARK-{}", product.name());
        if !ark.certificate.subject().contains(&want) || !ark.certificate.is_self_issued() {
            return Err(sim_err(tessera_pki::PkiError::Builder(
                "the ARK is not this product's self-issued fake ARK",
            )));
        }
        for c in [ark, ask, asvk] {
            tessera_pki::verify_issued_by(&c.certificate, &ark.certificate, &mut budget)
                .map_err(sim_err)?;
        }
        Ok(Self {
            product,
            ark_key: ark.key().map_err(sim_err)?,
            ask_key: ask.key().map_err(sim_err)?,
            asvk_key: asvk.key().map_err(sim_err)?,
            ark: ark.certificate.clone(),
            ask: ask.certificate.clone(),
            asvk: asvk.certificate.clone(),
        })
    }

    /// The product.
    #[must_use]
    pub fn product(&self) -> Product {
        self.product
    }
    /// The fake ARK.
    #[must_use]
    pub fn ark(&self) -> &Certificate {
        &self.ark
    }
    /// The fake ASK.
    #[must_use]
    pub fn ask(&self) -> &Certificate {
        &self.ask
    }
    /// The fake ASVK.
    #[must_use]
    pub fn asvk(&self) -> &Certificate {
        &self.asvk
    }

    /// The fake roots as a product's roots (ARK anchoring, ASK/ASVK embedded).
    #[must_use]
    pub fn roots(&self) -> ProductRoots {
        ProductRoots {
            product: self.product,
            ark: self.ark.clone(),
            asks: vec![self.ask.clone()],
            asvks: vec![self.asvk.clone()],
        }
    }

    /// Trust anchors that accept this fake PKI. Dangerous: only for tests and simulation.
    #[must_use]
    pub fn dangerous_trust_anchors(&self) -> TrustAnchors {
        TrustAnchors::dangerous_custom(vec![self.roots()])
    }

    /// A VEK kept with [`SimVek::export`], issued per `spec` by this PKI: its key must be its
    /// certificate's, this PKI's ASK (VCEK) or ASVK (VLEK) must have signed it, and its hwID,
    /// TCB and kind must be `spec`'s.
    ///
    /// # Errors
    /// [`SnpError::Pki`] (`simulator`) naming what does not fit.
    pub fn import_vek(&self, spec: VekSpec, part: &KeyedCertificate) -> Result<SimVek, SnpError> {
        let issuer = if spec.kind == VekKind::Vcek {
            &self.ask
        } else {
            &self.asvk
        };
        tessera_pki::verify_issued_by(
            &part.certificate,
            issuer,
            &mut tessera_pki::Budget::default(),
        )
        .map_err(sim_err)?;
        let ext = crate::certs::VekExtensions::from_certificate(&part.certificate)?;
        let hwid_fits = match spec.kind {
            VekKind::Vcek => ext.hwid.as_deref() == Some(spec.hwid.as_slice()),
            VekKind::Vlek => true,
        };
        if ext.kind() != spec.kind || ext.tcb != spec.tcb || !hwid_fits {
            return Err(sim_err(tessera_pki::PkiError::Builder(
                "the kept VEK is not the one this spec describes",
            )));
        }
        Ok(SimVek {
            key: part.key().map_err(sim_err)?,
            cert: part.certificate.clone(),
            spec,
        })
    }

    /// Issue a VCEK or VLEK per `spec` under the ASK (VCEK) or ASVK (VLEK).
    ///
    /// # Errors
    /// Backend failures.
    pub fn issue_vek(&self, spec: &VekSpec) -> Result<SimVek, SnpError> {
        let under_ask = (spec.kind == VekKind::Vcek) != spec.wrong_issuer;
        let (issuer_cert, issuer_key) = if under_ask {
            (&self.ask, &self.ask_key)
        } else {
            (&self.asvk, &self.asvk_key)
        };
        issue_vek_under(spec, issuer_cert, issuer_key)
    }

    /// A VEK-shaped certificate issued by `vek`'s own key (as whoever extracted one VCEK's key
    /// could make): the chain check must refuse it, since a VEK is not a CA.
    ///
    /// # Errors
    /// Backend failures.
    pub fn dangerous_issue_vek_under_vek(
        &self,
        spec: &VekSpec,
        vek: &SimVek,
    ) -> Result<SimVek, SnpError> {
        issue_vek_under(spec, &vek.cert, &vek.key)
    }

    /// A VEK-shaped certificate issued directly by the ARK (no ASK/ASVK between): AMD never
    /// issues one, and the chain check must refuse it.
    ///
    /// # Errors
    /// Backend failures.
    pub fn dangerous_issue_vek_under_ark(&self, spec: &VekSpec) -> Result<SimVek, SnpError> {
        issue_vek_under(spec, &self.ark, &self.ark_key)
    }

    /// An RSA-2048 end-entity certificate (not a VEK) issued by the ASK: an ASK issues only
    /// VCEKs, so the chain check must refuse it as a leaf.
    ///
    /// # Errors
    /// Backend failures.
    pub fn dangerous_issue_non_vek_under_ask(&self) -> Result<Certificate, SnpError> {
        let key = IssuerKey::generate_rsa(2048).map_err(sim_err)?;
        let spec = CertificateSpec {
            serial: vec![0x42],
            issuer: self.ask.subject_der().to_vec(),
            subject: amd_style_name("not-a-VEK")?,
            not_before: SIM_NOT_BEFORE,
            not_after: SIM_NOT_AFTER,
            ca: None,
            extensions: Vec::new(),
            pss_explicit_trailer: false,
        };
        let der = issue_certificate(&spec, &key.spki_der().map_err(sim_err)?, &self.ask_key)
            .map_err(sim_err)?;
        Certificate::from_der(&der).map_err(sim_err)
    }

    /// An ARK-signed CRL listing `revoked` (e.g. the ASK), current from `this_update` to
    /// `next_update`.
    ///
    /// # Errors
    /// Backend failures.
    pub fn ark_crl(
        &self,
        revoked: &[&Certificate],
        this_update: UnixTime,
        next_update: UnixTime,
    ) -> Result<Crl, SnpError> {
        let spec = CrlSpec {
            issuer: self.ark.subject_der().to_vec(),
            this_update,
            next_update: Some(next_update),
            revoked: revoked.iter().map(|c| c.serial().to_vec()).collect(),
        };
        let der = issue_crl(&spec, &self.ark_key).map_err(sim_err)?;
        Crl::from_der(&der).map_err(sim_err)
    }

    /// A version-5 report consistent with `vek` (CPUID of the product, REPORTED/CURRENT/
    /// COMMITTED/LAUNCH TCB = the VEK's TCB, CHIP_ID = hwID, SIGNER_INFO = the VEK's kind),
    /// unsigned: change fields, then [`SimVek::sign`] it.
    #[must_use]
    pub fn report_template(&self, vek: &SimVek) -> RawReport {
        let mut raw = zerocopy::FromZeros::new_zeroed();
        let r: &mut RawReport = &mut raw;
        let tcb = U64::new(vek.spec.tcb.encode(self.product).0);
        r.version = U32::new(5);
        r.guest_svn = U32::new(1);
        r.policy = U64::new(0x3_0000);
        r.signature_algo = U32::new(1);
        r.current_tcb = tcb;
        r.reported_tcb = tcb;
        r.committed_tcb = tcb;
        r.launch_tcb = tcb;
        r.platform_info = U64::new(0x25);
        r.signer_info = U32::new(match vek.spec.kind {
            VekKind::Vcek => 0,
            VekKind::Vlek => 1 << 2,
        });
        r.measurement = [0x4D; 48];
        r.report_id = [0x1D; 32];
        let (fam, model, step) = match self.product {
            Product::Milan => (0x19, 0x01, 1),
            Product::Genoa => (0x19, 0x11, 1),
            Product::Turin => (0x1A, 0x02, 0),
        };
        r.cpuid_fam_id = fam;
        r.cpuid_mod_id = model;
        r.cpuid_step = step;
        for (dst, src) in r.chip_id.iter_mut().zip(vek.spec.hwid.iter()) {
            *dst = *src;
        }
        r.current_major = 1;
        r.current_minor = 55;
        r.current_build = 40;
        r.committed_major = 1;
        r.committed_minor = 55;
        r.committed_build = 40;
        r.launch_mit_vector = U64::new(1);
        r.current_mit_vector = U64::new(1);
        raw
    }
}

/// Issue a VCEK or VLEK per `spec`, signed by `issuer_key` with `issuer_cert`'s subject as issuer.
fn issue_vek_under(
    spec: &VekSpec,
    issuer_cert: &Certificate,
    issuer_key: &IssuerKey,
) -> Result<SimVek, SnpError> {
    let key = IssuerKey::generate_ec(PublicKeyKind::EcP384).map_err(sim_err)?;
    let der_int = |v: u8| tessera_pki::der::uint(&[v]);
    let mut extensions = vec![
        (
            OID_STRUCT_VERSION.to_owned(),
            false,
            tessera_pki::der::uint_u64(1),
        ),
        (OID_BL_SPL.to_owned(), false, der_int(spec.tcb.bootloader)),
        (OID_TEE_SPL.to_owned(), false, der_int(spec.tcb.tee)),
        (OID_SNP_SPL.to_owned(), false, der_int(spec.tcb.snp)),
        (OID_UCODE_SPL.to_owned(), false, der_int(spec.tcb.microcode)),
    ];
    if let Some(name) = &spec.product_name {
        extensions.push((
            OID_PRODUCT_NAME.to_owned(),
            false,
            tessera_pki::der::ia5(name),
        ));
    }
    if let Some(fmc) = spec.tcb.fmc {
        extensions.push((OID_FMC_SPL.to_owned(), false, der_int(fmc)));
    }
    match spec.kind {
        VekKind::Vcek => extensions.push((OID_HWID.to_owned(), false, spec.hwid.clone())),
        VekKind::Vlek => {
            extensions.push((
                OID_CSP_ID.to_owned(),
                false,
                tessera_pki::der::ia5(&spec.csp_id),
            ));
        }
    }
    extensions.extend(spec.extra_extensions.iter().cloned());
    let cert_spec = CertificateSpec {
        serial: vec![0],
        issuer: issuer_cert.subject_der().to_vec(),
        subject: amd_style_name(&format!("SEV-{}", spec.kind.name()))?,
        not_before: spec.not_before,
        not_after: spec.not_after,
        ca: None,
        extensions,
        pss_explicit_trailer: true,
    };
    let der = issue_certificate(&cert_spec, &key.spki_der().map_err(sim_err)?, issuer_key)
        .map_err(sim_err)?;
    let cert = Certificate::from_der(&der).map_err(sim_err)?;
    Ok(SimVek {
        spec: spec.clone(),
        key,
        cert,
    })
}
