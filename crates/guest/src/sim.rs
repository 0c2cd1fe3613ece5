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
use tessera_pki::builder::KeyedCertificate;
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
        // Built by moving values in: `json!` copies a `Value` it is given, byte by byte here.
        let cert = |kind: &str, c: &Certificate| {
            let data = c.der().iter().map(|&b| Value::from(b)).collect();
            let mut entry = serde_json::Map::new();
            entry.insert("cert_type".into(), Value::from(kind));
            entry.insert("data".into(), Value::Array(data));
            Value::Object(entry)
        };
        let chain = if with_chain {
            Value::Array(vec![
                cert("VCEK", self.vcek.certificate()),
                cert("ASK", self.pki.ask()),
                cert("ARK", self.pki.ark()),
            ])
        } else {
            Value::Null
        };
        let mut evidence = serde_json::Map::new();
        evidence.insert("report".into(), Value::from(STANDARD.encode(report)));
        evidence.insert("cert_chain".into(), chain);
        Value::Object(evidence)
    }

    /// The VCEK (what a broker's endorsement directory would hold).
    pub fn vcek(&self) -> &Certificate {
        self.vcek.certificate()
    }

    /// The VCEK with its key (to sign reports built by hand).
    pub fn vek(&self) -> &SimVek {
        &self.vcek
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
        Self::with_pcs(SimPcs::new().map_err(sim_error)?)
    }

    /// A PCK for the default platform under an existing fake Intel PKI.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] if the simulator fails.
    pub fn with_pcs(pcs: SimPcs) -> Result<Self, ClientError> {
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

/// A fake vendor PKI kept in a directory (`tessera sim snp|tdx --pki DIR`, `tessera guest
/// --simulate DIR`): created on first use, reused after, so a broker started once with
/// `--dangerous-test-root DIR/root.pem --endorsements DIR/endorsements` accepts every piece of
/// evidence simulated from the directory later.
///
/// Layout: `root.pem` (the fake ARKs of every product and the fake Intel root),
/// `snp/<product>/{ark,ask,asvk}.pem` and `tdx/{root,pck-ca,processor-ca,tcb-signing}.pem`
/// (certificate and PKCS#8 private key, mode 0600), and `endorsements/sim-tdx-collateral.json`
/// (the collateral a broker needs for simulated TDX quotes, rewritten fresh at every open).
/// The keys are fake and trusted only by a `dangerous` flag; never put real keys here.
#[derive(Debug, Clone)]
pub struct PkiDir {
    dir: std::path::PathBuf,
}

const PKI_README: &str = "A fake AMD and Intel PKI made by `tessera sim --pki` for development and \
tests. Its keys are fake; trust root.pem only with --dangerous-test-root.\n";
const SNP_PARTS: [&str; 3] = ["ark", "ask", "asvk"];
const TDX_PARTS: [&str; 4] = ["root", "pck-ca", "processor-ca", "tcb-signing"];
/// The largest file this directory holds (a certificate and its key, or the collateral).
const PKI_FILE_LIMIT: u64 = 1 << 20;

fn pki_error(path: &std::path::Path, e: impl std::fmt::Display) -> ClientError {
    ClientError::Evidence {
        reason: format!("simulator PKI {}: {e}", path.display()),
    }
}

fn write_private(path: &std::path::Path, data: &[u8]) -> Result<(), ClientError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| pki_error(path, e))?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .map_err(|e| pki_error(path, e))
}

fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| pki_error(path, e))?;
    let mut out = Vec::new();
    file.take(PKI_FILE_LIMIT + 1)
        .read_to_end(&mut out)
        .map_err(|e| pki_error(path, e))?;
    if out.len() as u64 > PKI_FILE_LIMIT {
        return Err(pki_error(path, "larger than 1 MiB"));
    }
    Ok(out)
}

fn write_keyed(path: &std::path::Path, part: &KeyedCertificate) -> Result<(), ClientError> {
    let mut text =
        zeroize::Zeroizing::new(tessera_pki::to_pem("CERTIFICATE", part.certificate.der()));
    text.push_str(&tessera_pki::to_pem("PRIVATE KEY", &part.key_pkcs8));
    write_private(path, text.as_bytes())
}

fn read_keyed(path: &std::path::Path) -> Result<KeyedCertificate, ClientError> {
    let text = zeroize::Zeroizing::new(read_bounded(path)?);
    let one = |label: &str| -> Result<Vec<u8>, ClientError> {
        let mut blocks = tessera_pki::from_pem(&text, label).map_err(|e| pki_error(path, e))?;
        match (blocks.pop(), blocks.is_empty()) {
            (Some(der), true) => Ok(der),
            _ => Err(pki_error(
                path,
                format!("expected exactly one {label} block"),
            )),
        }
    };
    let certificate =
        Certificate::from_der(&one("CERTIFICATE")?).map_err(|e| pki_error(path, e))?;
    Ok(KeyedCertificate {
        certificate,
        key_pkcs8: zeroize::Zeroizing::new(one("PRIVATE KEY")?),
    })
}

/// Write `data` to `path` through a temporary file and a rename, so a reader never sees half.
fn replace_file(path: &std::path::Path, data: &[u8]) -> Result<(), ClientError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::fs::write(&tmp, data).map_err(|e| pki_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| pki_error(path, e))
}

impl PkiDir {
    /// Open the fake PKI in `dir`, creating it (every product's fake AMD PKI and a fake Intel
    /// PKI) if `dir` is missing or empty. Creation is atomic: a directory is built beside `dir`
    /// and renamed into place, so concurrent first uses agree on one PKI.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] naming the file when `dir` is not empty and not such a
    /// directory, a file is damaged or a key is not its certificate's.
    pub fn open_or_create(dir: &std::path::Path) -> Result<Self, ClientError> {
        let this = Self {
            dir: dir.to_path_buf(),
        };
        if !this.root_pem().exists() {
            let empty = match std::fs::read_dir(dir) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(pki_error(dir, e)),
            };
            if !empty {
                return Err(pki_error(
                    dir,
                    "not empty and holds no root.pem: not a simulator PKI directory",
                ));
            }
            this.create()?;
        }
        this.refresh_collateral()?;
        Ok(this)
    }

    fn create(&self) -> Result<(), ClientError> {
        let parent = match self.dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| pki_error(&parent, e))?;
        let name = self
            .dir
            .file_name()
            .map_or_else(|| "pki".into(), |n| n.to_string_lossy().into_owned());
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let staging = parent.join(format!(".{name}.partial-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        let result = Self::build(&staging).and_then(|()| {
            match std::fs::rename(&staging, &self.dir) {
                Ok(()) => Ok(()),
                // Another process created it first: use theirs.
                Err(_) if self.root_pem().exists() => Ok(()),
                Err(e) => Err(pki_error(&self.dir, e)),
            }
        });
        let _ = std::fs::remove_dir_all(&staging);
        result
    }

    fn build(staging: &std::path::Path) -> Result<(), ClientError> {
        let mkdir = |p: &std::path::Path| std::fs::create_dir_all(p).map_err(|e| pki_error(p, e));
        mkdir(staging)?;
        let mut roots = String::new();
        for product in [Product::Milan, Product::Genoa, Product::Turin] {
            let pki = SimPki::new(product).map_err(sim_error)?;
            let dir = staging
                .join("snp")
                .join(product.name().to_ascii_lowercase());
            mkdir(&dir)?;
            for (name, part) in SNP_PARTS
                .iter()
                .zip(pki.export().map_err(sim_error)?.iter())
            {
                write_keyed(&dir.join(format!("{name}.pem")), part)?;
            }
            roots.push_str(&tessera_pki::to_pem("CERTIFICATE", pki.ark().der()));
        }
        let pcs = SimPcs::new().map_err(sim_error)?;
        let dir = staging.join("tdx");
        mkdir(&dir)?;
        for (name, part) in TDX_PARTS
            .iter()
            .zip(pcs.export().map_err(sim_error)?.iter())
        {
            write_keyed(&dir.join(format!("{name}.pem")), part)?;
        }
        roots.push_str(&tessera_pki::to_pem("CERTIFICATE", pcs.root().der()));
        mkdir(&staging.join("endorsements"))?;
        std::fs::write(staging.join("README.txt"), PKI_README)
            .map_err(|e| pki_error(staging, e))?;
        // Last: its presence says the directory is complete.
        std::fs::write(staging.join("root.pem"), roots).map_err(|e| pki_error(staging, e))
    }

    fn refresh_collateral(&self) -> Result<(), ClientError> {
        let tdx = self.tdx()?;
        replace_file(&self.collateral_path(), tdx.collateral_json()?.as_bytes())
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }

    /// `DIR/root.pem`: every fake root, for `tessera serve --dangerous-test-root`.
    pub fn root_pem(&self) -> std::path::PathBuf {
        self.dir.join("root.pem")
    }

    /// `DIR/endorsements`: the collateral a broker needs for simulated TDX quotes, for
    /// `tessera serve --endorsements`.
    pub fn endorsements(&self) -> std::path::PathBuf {
        self.dir.join("endorsements")
    }

    fn collateral_path(&self) -> std::path::PathBuf {
        self.endorsements().join("sim-tdx-collateral.json")
    }

    /// The fake AMD PKI of `product`, with its VCEK: kept in `snp/PRODUCT/vcek.pem` (made on
    /// first use), so that a broker or cache holding it verifies every report simulated
    /// later, also from guests that send no certificates.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] naming a damaged file.
    pub fn snp(&self, product: Product) -> Result<SimSnp, ClientError> {
        let pki = self.snp_pki(product)?;
        let path = self
            .dir
            .join("snp")
            .join(product.name().to_ascii_lowercase())
            .join("vcek.pem");
        let spec = VekSpec::vcek(product);
        if !path.exists() {
            let fresh = pki.issue_vek(&spec).map_err(sim_error)?;
            // Written whole beside it, then linked into place: a concurrent first use either
            // wins or takes the one that did (never half a file).
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = path.with_extension(format!("partial-{}-{n}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            let written = fresh
                .export()
                .map_err(sim_error)
                .and_then(|part| write_keyed(&tmp, &part));
            let linked = written.and_then(|()| {
                match std::fs::hard_link(&tmp, &path) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    // A file system without hard links: moved into place instead.
                    Err(_) => std::fs::rename(&tmp, &path)
                        .map(|()| true)
                        .map_err(|e| pki_error(&path, e)),
                }
            });
            let _ = std::fs::remove_file(&tmp);
            if linked? {
                return Ok(SimSnp { pki, vcek: fresh });
            }
        }
        let vcek = pki
            .import_vek(spec, &read_keyed(&path)?)
            .map_err(|e| pki_error(&path, e))?;
        Ok(SimSnp { pki, vcek })
    }

    /// The fake AMD PKI of `product` (ARK, ASK, ASVK and their keys).
    ///
    /// # Errors
    /// [`ClientError::Evidence`] naming a damaged file.
    pub fn snp_pki(&self, product: Product) -> Result<SimPki, ClientError> {
        let dir = self
            .dir
            .join("snp")
            .join(product.name().to_ascii_lowercase());
        let [ark, ask, asvk] = SNP_PARTS.map(|name| read_keyed(&dir.join(format!("{name}.pem"))));
        SimPki::import(product, &[ark?, ask?, asvk?]).map_err(|e| pki_error(&dir, e))
    }

    /// The fake Intel PKI, with a fresh PCK for the default platform.
    ///
    /// # Errors
    /// [`ClientError::Evidence`] naming a damaged file.
    pub fn tdx(&self) -> Result<SimTdx, ClientError> {
        SimTdx::with_pcs(self.pcs()?)
    }

    /// The fake Intel PKI (root, PCK CA, Processor CA, TCB Signing and their keys).
    ///
    /// # Errors
    /// [`ClientError::Evidence`] naming a damaged file.
    pub fn pcs(&self) -> Result<SimPcs, ClientError> {
        let dir = self.dir.join("tdx");
        let [root, pck_ca, processor_ca, tcb] =
            TDX_PARTS.map(|name| read_keyed(&dir.join(format!("{name}.pem"))));
        SimPcs::import(&[root?, pck_ca?, processor_ca?, tcb?]).map_err(|e| pki_error(&dir, e))
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

    fn verifier_from(dir: &PkiDir) -> Verifier {
        let roots =
            tessera_pki::load_certificates(&std::fs::read(dir.root_pem()).unwrap()).unwrap();
        assert_eq!(roots.len(), 4, "three fake ARKs and the fake Intel root");
        let mut builder = Verifier::builder();
        for root in roots {
            builder = builder.dangerous_test_root(root).unwrap();
        }
        builder
            .endorsement_dir(&dir.endorsements())
            .unwrap()
            .build()
            .unwrap()
    }

    /// The point of `--pki`: a verifier (a broker) set up from the directory once accepts
    /// evidence simulated from a later opening of the same directory, for every product and TDX.
    #[test]
    fn pki_dir_is_created_once_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pki");
        let first = PkiDir::open_or_create(&path).unwrap();
        let verifier = verifier_from(&first);
        let root_pem = std::fs::read(first.root_pem()).unwrap();
        let later = PkiDir::open_or_create(&path).unwrap();
        assert_eq!(std::fs::read(later.root_pem()).unwrap(), root_pem);
        let rd = [3u8; 64];
        for product in [Product::Milan, Product::Genoa, Product::Turin] {
            let json = later
                .snp(product)
                .unwrap()
                .evidence(&rd, &Measurements::default())
                .unwrap();
            let e = Evidence::from_kbs("snp", &json).unwrap();
            verifier.verify(&e, UnixTime::now()).unwrap();
        }
        let json = later
            .tdx()
            .unwrap()
            .evidence(&rd, &Measurements::default())
            .unwrap();
        let e = Evidence::from_kbs("tdx", &json).unwrap();
        verifier.verify(&e, UnixTime::now()).unwrap();
        // A fresh PKI elsewhere is not trusted by that verifier.
        let other = PkiDir::open_or_create(&tmp.path().join("other")).unwrap();
        let json = other
            .snp(Product::Genoa)
            .unwrap()
            .evidence(&rd, &Measurements::default())
            .unwrap();
        let e = Evidence::from_kbs("snp", &json).unwrap();
        assert!(verifier.verify(&e, UnixTime::now()).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path.join("snp/genoa/ark.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// The VCEK is kept too: a verifier holding the VCEK of a first use (a broker's cache or
    /// endorsements) verifies reports a later use simulates without certificates, and a
    /// damaged or foreign kept VCEK is refused, naming the file.
    #[test]
    fn pki_dir_keeps_its_vcek() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pki");
        let first = PkiDir::open_or_create(&path)
            .unwrap()
            .snp(Product::Genoa)
            .unwrap();
        let holding = Verifier::builder()
            .dangerous_snp_test_roots([first.pki().roots()])
            .certificates([first.vcek().clone()])
            .build()
            .unwrap();
        let later = PkiDir::open_or_create(&path)
            .unwrap()
            .snp(Product::Genoa)
            .unwrap();
        assert_eq!(later.vcek().der(), first.vcek().der());
        let raw = later
            .report(&[5u8; 64], &Measurements::default(), |_| {})
            .unwrap();
        let bare = Evidence::from_kbs("snp", &later.evidence_json(&raw, false)).unwrap();
        holding.verify(&bare, UnixTime::now()).unwrap();
        // Another PKI's VCEK in its place is refused.
        let kept = path.join("snp/genoa/vcek.pem");
        let foreign = SimSnp::new(Product::Genoa).unwrap();
        std::fs::remove_file(&kept).unwrap();
        write_keyed(&kept, &foreign.vcek.export().unwrap()).unwrap();
        let err = PkiDir::open_or_create(&path)
            .unwrap()
            .snp(Product::Genoa)
            .unwrap_err()
            .to_string();
        assert!(err.contains("vcek.pem"), "{err}");
    }

    #[test]
    fn pki_dir_refuses_what_it_did_not_make() {
        let tmp = tempfile::tempdir().unwrap();
        // A directory with other files in it is not taken over.
        std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let err = PkiDir::open_or_create(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not a simulator PKI directory"), "{err}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

        let path = tmp.path().join("pki");
        let dir = PkiDir::open_or_create(&path).unwrap();
        // A key that is not its certificate's (files swapped) is refused.
        let ask = path.join("snp/milan/ask.pem");
        let asvk = std::fs::read(path.join("snp/milan/asvk.pem")).unwrap();
        let text = String::from_utf8(asvk).unwrap();
        let key_at = text.find("-----BEGIN PRIVATE KEY").unwrap();
        let ask_text = std::fs::read_to_string(&ask).unwrap();
        let cert_end = ask_text.find("-----BEGIN PRIVATE KEY").unwrap();
        std::fs::write(
            &ask,
            format!("{}{}", &ask_text[..cert_end], &text[key_at..]),
        )
        .unwrap();
        let err = dir.snp(Product::Milan).unwrap_err().to_string();
        assert!(err.contains("not the certificate's key"), "{err}");
        // A certificate from another product's PKI is refused (not signed by this ARK).
        let genoa_ask = std::fs::read(path.join("snp/genoa/ask.pem")).unwrap();
        std::fs::write(&ask, genoa_ask).unwrap();
        assert!(dir.snp(Product::Milan).is_err());
        // An oversized or empty file is refused, not read whole.
        let root = path.join("tdx/root.pem");
        std::fs::write(&root, vec![b'A'; 1024 * 1024 + 1]).unwrap();
        let err = dir.tdx().unwrap_err().to_string();
        assert!(err.contains("larger than 1 MiB"), "{err}");
        std::fs::write(&root, b"").unwrap();
        assert!(dir.tdx().is_err());
        // The others still open.
        dir.snp(Product::Turin).unwrap();
    }

    #[test]
    fn concurrent_first_uses_agree_on_one_pki() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pki");
        let roots: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let d = PkiDir::open_or_create(&path).unwrap();
                        std::fs::read(d.root_pem()).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(roots.windows(2).all(|w| w[0] == w[1]));
        // Nothing left over beside it.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
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
