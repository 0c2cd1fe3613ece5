//! TLS to PostgreSQL (rustls with aws-lc-rs), chosen by the store URL as libpq's `sslmode` and
//! `sslrootcert` would choose it, with one difference: a mode that encrypts always checks the
//! server's certificate.
//!
//! - `sslmode=disable`, `prefer` (the default) or none: no TLS, as before. `prefer` does not try
//!   TLS: a broker that could fall back to plain text without saying so would only seem
//!   protected.
//! - `sslmode=verify-full`: TLS; the server's certificate must chain to a CA in `sslrootcert`
//!   (a PEM file) and name the host of the URL (DNS name or IP address).
//! - `sslmode=verify-ca`, and `require` (as libpq treats `require` when a root CA is given):
//!   TLS; the certificate must chain to a CA in `sslrootcert`, whatever host it names.
//!
//! A mode with TLS needs `sslrootcert`: the trust anchors are explicit, as everywhere in
//! Tessera, and `require` without them (libpq's "encrypt, but accept any certificate") is
//! refused, as is `sslrootcert` without a TLS mode. A server that does not offer TLS is refused
//! in these modes, and so is a URL without a TCP host (a Unix socket, or `hostaddr` alone).
//! SCRAM channel binding is not offered (`channel_binding=prefer` falls back to plain
//! SCRAM-SHA-256). The caller also checks that no `sslmode` reached the driver in a form this
//! module did not read, and refuses `sslnegotiation=direct` without a TLS mode.
//!
//! The two parameters are read here and removed before the rest of the URL goes to
//! `tokio-postgres`, which knows neither `verify-ca` nor `verify-full`.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::StoreError;

/// Longest `sslrootcert` file read.
const MAX_ROOTS_FILE: u64 = 1024 * 1024;

/// What the URL's `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No TLS (`disable`, `prefer`, or no `sslmode`).
    Plain,
    /// TLS; the certificate chains to `sslrootcert` (`require`, `verify-ca`).
    VerifyCa,
    /// TLS; the certificate chains to `sslrootcert` and names the host (`verify-full`).
    VerifyFull,
}

/// The store URL split: what goes to `tokio-postgres`, and the TLS settings read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsUrl {
    /// The URL without `sslmode` and `sslrootcert`.
    pub url: String,
    /// The mode.
    pub mode: Mode,
    /// The `sslrootcert` file.
    pub root_cert: Option<PathBuf>,
}

/// A connection setting refused before connecting (`op: "connect"`).
pub(crate) fn bad(message: impl Into<String>) -> StoreError {
    StoreError::Database {
        op: "connect",
        message: message.into(),
    }
}

/// `%XX` escapes decoded (as `tokio-postgres` decodes URL parameters); `None` for a malformed
/// escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where the query of a `postgres://` URL starts (its `?`), found as `tokio-postgres` finds it:
/// the user information runs to the first `@` (a `?` in a password is part of it), the host to
/// the next `/` or `?`, the database name to the next `?`.
fn query_start(url: &str) -> Option<usize> {
    let mut i = ["postgresql://", "postgres://"]
        .iter()
        .find(|p| url.starts_with(*p))
        .map_or(0, |p| p.len());
    if let Some(at) = url.get(i..)?.find('@') {
        i += at + 1;
    }
    i += url.get(i..)?.find(['/', '?'])?;
    if url.get(i..)?.starts_with('/') {
        i += url.get(i..)?.find('?')?;
    }
    Some(i)
}

/// Reads `sslmode` and `sslrootcert` from a `postgres://` URL's query and removes them.
///
/// # Errors
/// [`StoreError::Database`] (`op: "connect"`): an unknown `sslmode`, a parameter given twice or
/// malformed, a TLS mode without `sslrootcert`, or `sslrootcert` without a TLS mode.
pub(crate) fn split_url(url: &str) -> Result<TlsUrl, StoreError> {
    let (base, query) = match query_start(url) {
        Some(q) => (url.get(..q).unwrap_or(url), url.get(q + 1..).unwrap_or("")),
        None => (url, ""),
    };
    let (mut mode, mut root_cert) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Keys are compared decoded, as the driver decodes them (`ssl%6Dode` is `sslmode`).
        let slot = match percent_decode(key).as_deref().unwrap_or(key) {
            "sslmode" => &mut mode,
            "sslrootcert" => &mut root_cert,
            _ => {
                kept.push(pair);
                continue;
            }
        };
        if slot.is_some() {
            return Err(bad(format!("the store URL gives {key} twice")));
        }
        let value = percent_decode(value)
            .ok_or_else(|| bad(format!("the store URL's {key} is malformed")))?;
        *slot = Some(value);
    }
    let mode = match mode.as_deref() {
        None | Some("disable" | "prefer") => Mode::Plain,
        Some("require" | "verify-ca") => Mode::VerifyCa,
        Some("verify-full") => Mode::VerifyFull,
        Some(other) => {
            return Err(bad(format!(
                "sslmode={}: use disable, verify-full (or verify-ca, require) with sslrootcert",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    if mode != Mode::Plain && root_cert.as_deref().is_none_or(str::is_empty) {
        return Err(bad(
            "a TLS sslmode needs sslrootcert=FILE (the PEM CA certificates that sign the \
             PostgreSQL server's certificate): without it any certificate would be accepted",
        ));
    }
    if mode == Mode::Plain && root_cert.is_some() {
        return Err(bad(
            "sslrootcert is given but sslmode asks for no TLS: add sslmode=verify-full",
        ));
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(TlsUrl {
        url,
        mode,
        root_cert: root_cert.map(PathBuf::from),
    })
}

/// The CA certificates in a PEM file.
fn read_roots(path: &Path) -> Result<RootCertStore, StoreError> {
    use std::io::Read as _;
    let shown = path.display();
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_ROOTS_FILE + 1).read_to_end(&mut pem))
        .map_err(|e| bad(format!("sslrootcert {shown}: {}", e.kind())))?;
    if pem.len() as u64 > MAX_ROOTS_FILE {
        return Err(bad(format!("sslrootcert {shown}: larger than 1 MiB")));
    }
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("sslrootcert {shown}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("sslrootcert {shown}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad(format!("sslrootcert {shown}: no certificate")));
    }
    Ok(roots)
}

/// `verify-ca`: the chain to a trust anchor, its validity and key usage, as `verify-full`, but
/// not the name.
#[derive(Debug)]
struct ChainOnly {
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls client configuration of a TLS mode.
///
/// # Errors
/// [`StoreError::Database`] (`op: "connect"`): an unreadable or empty `sslrootcert`.
pub(crate) fn client_config(mode: Mode, root_cert: &Path) -> Result<ClientConfig, StoreError> {
    let roots = read_roots(root_cert)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?;
    let mut config = match mode {
        Mode::VerifyCa => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly { roots, provider }))
            .with_no_client_auth(),
        Mode::VerifyFull | Mode::Plain => {
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    // What libpq 17 offers; servers that predate it ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// Connects `tokio-postgres` through rustls.
#[derive(Clone)]
pub(crate) struct MakeRustls(pub Arc<ClientConfig>);

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        if domain.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS needs the server's host name or IP address in the URL (not a Unix socket \
                 or hostaddr alone)",
            ));
        }
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.0.clone()),
            name,
        })
    }
}

/// One connection's handshake.
pub(crate) struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
        })
    }
}

/// A TLS connection to PostgreSQL.
pub(crate) struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

impl tokio_postgres::tls::TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_url_is_split() {
        let t = split_url("postgres://u:p@h:5432/db?sslmode=verify-full&options=-c%20x%3Dy&sslrootcert=/etc/ca%20dir/ca.pem").unwrap();
        assert_eq!(t.url, "postgres://u:p@h:5432/db?options=-c%20x%3Dy");
        assert_eq!(t.mode, Mode::VerifyFull);
        assert_eq!(
            t.root_cert.as_deref(),
            Some(Path::new("/etc/ca dir/ca.pem"))
        );
        for (q, mode) in [
            ("", Mode::Plain),
            ("?sslmode=disable", Mode::Plain),
            ("?sslmode=prefer", Mode::Plain),
            ("?sslmode=require&sslrootcert=ca.pem", Mode::VerifyCa),
            ("?sslrootcert=ca.pem&sslmode=verify-ca", Mode::VerifyCa),
        ] {
            let t = split_url(&format!("postgres://h/db{q}")).unwrap();
            assert_eq!((t.url.as_str(), t.mode), ("postgres://h/db", mode), "{q}");
        }
    }

    #[test]
    fn the_query_is_found_where_the_driver_finds_it() {
        // A `?` or `/` in the password: the query is after the host.
        let t = split_url("postgres://u:p?w/x@db/x?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(
            (t.url.as_str(), t.mode),
            ("postgres://u:p?w/x@db/x", Mode::VerifyCa)
        );
        let t = split_url("postgresql://u:p?sslmode=disable@db?sslmode=verify-full&sslrootcert=c")
            .unwrap();
        assert_eq!(t.mode, Mode::VerifyFull);
        assert_eq!(t.url, "postgresql://u:p?sslmode=disable@db");
        // No query at all.
        for url in ["postgres://db", "postgres://u:p?x@db/name", "postgres://"] {
            let t = split_url(url).unwrap();
            assert_eq!((t.url.as_str(), t.mode), (url, Mode::Plain));
        }
        // An encoded key is the parameter it decodes to.
        let t = split_url("postgres://db/x?ssl%6Dode=verify-ca&sslrootcert=ca.pem").unwrap();
        assert_eq!(
            (t.url.as_str(), t.mode),
            ("postgres://db/x", Mode::VerifyCa)
        );
    }

    #[test]
    fn tls_without_trust_anchors_and_malformed_settings_are_refused() {
        for q in [
            "?sslmode=require",
            "?sslmode=verify-ca",
            "?sslmode=verify-full",
            "?sslmode=verify-full&sslrootcert=",
            "?sslmode=allow",
            "?sslmode=VERIFY-FULL&sslrootcert=ca.pem",
            "?sslmode=disable&sslmode=verify-full&sslrootcert=ca.pem",
            "?sslmode=verify-full&sslrootcert=a&sslrootcert=b",
            "?sslmode=verify-full&sslrootcert=%zz",
            "?sslmode=verify-full&sslrootcert=%ff",
            "?sslrootcert=ca.pem",
            "?sslmode=disable&sslrootcert=ca.pem",
            "?ssl%6Dode=require",
            "?ssl%6Dode=verify-full&sslmode=disable",
        ] {
            assert!(
                matches!(
                    split_url(&format!("postgres://h/db{q}")),
                    Err(StoreError::Database { op: "connect", .. })
                ),
                "{q}"
            );
        }
    }

    #[test]
    fn unusable_root_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; 1024 * 1024 + 1]).unwrap();
        // A certificate block whose base64 is broken, and one that holds no certificate.
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for (path, says) in [
            (&missing, "not found"),
            (&empty, "no certificate"),
            (&big, "larger than 1 MiB"),
            (&broken, "sslrootcert"),
            (&junk, "sslrootcert"),
        ] {
            match client_config(Mode::VerifyFull, path) {
                Err(StoreError::Database { message, .. }) => {
                    assert!(message.contains(says), "{message}");
                }
                other => panic!("{path:?}: {:?}", other.map(|_| ())),
            }
        }
    }

    /// TLS needs a name or address to check the certificate against: a Unix socket or a bare
    /// `hostaddr` gives the connector none, and it refuses.
    #[test]
    fn tls_without_a_host_name_is_refused() {
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest/testdata/tls/ca.pem");
        let config = client_config(Mode::VerifyFull, &ca).unwrap();
        let mut make = MakeRustls(Arc::new(config));
        let e = MakeTlsConnect::<Socket>::make_tls_connect(&mut make, "")
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("host name or IP address"), "{e}");
        assert!(MakeTlsConnect::<Socket>::make_tls_connect(&mut make, "127.0.0.1").is_ok());
        assert!(MakeTlsConnect::<Socket>::make_tls_connect(&mut make, "db.example").is_ok());
    }

    proptest! {
        #[test]
        fn any_url_splits_or_is_refused_without_panicking(s in "\\PC{0,80}") {
            if let Ok(t) = split_url(&s) {
                let query = t.url.split_once('?').map_or("", |(_, q)| q);
                for pair in query.split('&') {
                    let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                    prop_assert!(key != "sslmode" && key != "sslrootcert", "{}", t.url);
                }
                prop_assert_eq!(t.mode != Mode::Plain, t.root_cert.is_some() && t.mode != Mode::Plain);
            }
        }
    }
}
