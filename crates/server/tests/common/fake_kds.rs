//! A fake AMD KDS on loopback: a std TcpListener thread answering GETs with the KDS URL shapes
//! (`/vcek/v1/{product}/{hwid}?blSPL=..`, `/vcek/v1/{product}/cert_chain`, `/vcek/v1/{product}/crl`),
//! serving simulator-made items (copied in part from crates/collateral/tests/fake_services.rs).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tessera::snp::abi::Product;
use tessera_pki::{Certificate, UnixTime, to_hex, to_pem};

/// One answer: status, content type, body.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type,
            body,
        }
    }
    pub fn status(status: u16) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: Vec::new(),
        }
    }
}

type Handler = dyn Fn(&str) -> Reply + Send + Sync;

/// The server: its base URL and the number of requests per target.
pub struct FakeKds {
    pub base: String,
    addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
}

impl FakeKds {
    pub fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (h, st) = (Arc::clone(&hits), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, handler) = (Arc::clone(&h), Arc::clone(&handler));
                std::thread::spawn(move || serve(conn, &h, &*handler));
            }
        });
        Self {
            base: format!("http://{addr}"),
            addr,
            hits,
            stop,
        }
    }

    /// Requests answered so far.
    pub fn total(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }

    /// Requests for `target` answered so far.
    #[allow(dead_code)] // not every test binary that includes this file asks
    pub fn hits(&self, target: &str) -> usize {
        self.hits.lock().unwrap().get(target).copied().unwrap_or(0)
    }
}

impl Drop for FakeKds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, hits: &Mutex<HashMap<String, usize>>, handler: &Handler) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65_536 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut parts = text.split("\r\n").next().unwrap_or_default().split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    *hits.lock().unwrap().entry(target.to_owned()).or_insert(0) += 1;
    let reply = if method == "GET" {
        handler(target)
    } else {
        Reply::status(405)
    };
    let head = format!(
        "HTTP/1.1 {} Fake\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&reply.body);
}

/// What a KDS serves for one simulated chip.
pub struct KdsItems {
    pub product: Product,
    /// `/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..` (Milan/Genoa form).
    pub vcek_target: String,
    pub vcek_der: Vec<u8>,
    pub chain_pem: String,
    pub crl_der: Vec<u8>,
}

impl KdsItems {
    /// The items for the chip and TCB that `report` (raw SEV-SNP report bytes) names, the VCEK
    /// being `vcek`, the chain and CRL from `pki`.
    pub fn new(pki: &tessera::snp::sim::SimPki, report: &[u8], vcek: &Certificate) -> Self {
        let product = pki.product();
        assert_ne!(
            product,
            Product::Turin,
            "the Turin URL form is not built here"
        );
        let evidence = tessera::Evidence::from_bytes(report).unwrap();
        let report = evidence.snp_report().unwrap();
        let t = report.reported_tcb().decode(product);
        // The URL as AMD documents it, written out independently of the collateral crate.
        let vcek_target = format!(
            "/vcek/v1/{product}/{}?blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
            to_hex(report.chip_id()),
            t.bootloader,
            t.tee,
            t.snp,
            t.microcode
        );
        let now = UnixTime::now().as_secs();
        let crl = pki
            .ark_crl(
                &[],
                UnixTime::from_secs(now - 86_400),
                UnixTime::from_secs(now + 7 * 86_400),
            )
            .unwrap();
        Self {
            product,
            vcek_target,
            vcek_der: vcek.der().to_vec(),
            chain_pem: to_pem("CERTIFICATE", pki.ask().der())
                + &to_pem("CERTIFICATE", pki.ark().der()),
            crl_der: crl.der().to_vec(),
        }
    }

    /// A fake KDS serving these items (404 for anything else).
    pub fn serve(&self) -> FakeKds {
        let vcek = self.vcek_der.clone();
        self.serve_vcek(move || vcek.clone())
    }

    /// [`Self::serve`] with the VCEK's body from `vcek` at each request (a test switches it).
    pub fn serve_vcek(&self, vcek: impl Fn() -> Vec<u8> + Send + Sync + 'static) -> FakeKds {
        let product = self.product;
        let (target, chain, crl) = (
            self.vcek_target.clone(),
            self.chain_pem.clone(),
            self.crl_der.clone(),
        );
        FakeKds::start(move |t| {
            if t == target {
                Reply::ok("application/x-x509-ca-cert", vcek())
            } else if t == format!("/vcek/v1/{product}/cert_chain") {
                Reply::ok("application/x-pem-file", chain.clone().into_bytes())
            } else if t == format!("/vcek/v1/{product}/crl") {
                Reply::ok("application/pkix-crl", crl.clone())
            } else {
                Reply::status(404)
            }
        })
    }
}
