//! TLS for the broker: a rustls server configuration from PEM files (certificate chain and key).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServerError;

/// Largest PEM file read.
const MAX_PEM: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_PEM {
        return Err(ServerError::Tls(format!(
            "{}: larger than {MAX_PEM} bytes",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| ServerError::Tls(format!("{}: {e}", path.display())))
}

/// A TLS acceptor for the certificate chain at `cert` and the private key at `key` (PEM).
///
/// # Errors
/// [`ServerError::Tls`]: unreadable files, no certificate, no usable key, a key that does not
/// match the certificate.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    let cert_pem = read(cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate",
            cert.display()
        )));
    }
    // The key is checked as every other secret key file is: a regular file (reached through
    // a link only because the configuration names it), owned by this user or root, that group
    // and others cannot write and others cannot read (a Secret volume's 0440 is fine).
    let key_pem = tessera_broker::keyfile::read(
        key,
        tessera_broker::keyfile::Symlinks::Follow,
        crate::startup::SECRET_FILE_FORBIDDEN,
        crate::startup::SECRET_FILE_EXPOSED,
        MAX_PEM,
    )
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| ServerError::Tls(format!("{}: no usable private key ({e})", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ServerError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    let mut config = config;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../guest/testdata/tls")
            .join(name)
    }

    fn refused(cert: &Path, key: &Path, why: &str) {
        match acceptor(cert, key) {
            Err(ServerError::Tls(m)) => assert!(m.contains(why), "{m}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted {} with {}", cert.display(), key.display()),
        }
    }

    /// The loopback test PKI's server certificate and key make an acceptor; no certificate, no
    /// key, a key of another certificate and an oversized file are each refused.
    /// `bytes` at `path`, mode `mode`.
    fn write(path: &Path, bytes: &[u8], mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::remove_file(path);
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn pem_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cert = testdata("server.pem");
        let key = dir.path().join("server.key");
        write(&key, &std::fs::read(testdata("server.key")).unwrap(), 0o600);
        assert!(acceptor(&cert, &key).is_ok());
        // Group-readable (a Kubernetes Secret volume's 0440), and through a link: accepted.
        let linked = dir.path().join("linked.key");
        std::os::unix::fs::symlink(&key, &linked).unwrap();
        write(&key, &std::fs::read(testdata("server.key")).unwrap(), 0o440);
        assert!(acceptor(&cert, &linked).is_ok());
        // Readable by others, or writable by the group: refused.
        for mode in [0o644, 0o604, 0o660] {
            write(&key, &std::fs::read(testdata("server.key")).unwrap(), mode);
            refused(&cert, &key, "readable by others");
        }
        write(&key, &std::fs::read(testdata("server.key")).unwrap(), 0o600);
        let empty = dir.path().join("empty.pem");
        write(&empty, b"", 0o600);
        refused(&empty, &key, "no certificate");
        refused(&cert, &empty, "no usable private key");
        // The CA's certificate with the server's key: they do not match.
        refused(&testdata("ca.pem"), &key, "KeyMismatch");
        let huge = dir.path().join("huge.pem");
        std::fs::write(&huge, vec![b'a'; 1024 * 1024 + 1]).unwrap();
        refused(&huge, &key, "larger than");
    }
}
