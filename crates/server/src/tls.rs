//! TLS for the broker: a rustls server configuration from PEM files (certificate chain and
//! key), read again while it serves so that a renewed certificate needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest::{SHA256, digest};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use zeroize::Zeroizing;

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

/// The certificate and key a [`Reloading`] resolver serves, with what they were loaded from.
struct Loaded {
    cert_pem: Vec<u8>,
    /// SHA-256 of the key file (only to tell whether it changed; the file is not kept).
    key_digest: Vec<u8>,
    certified: Arc<CertifiedKey>,
}

/// The broker's certificate, read again from its files by [`Reloading::reload`] (see
/// `TlsFiles::reload_secs`): each handshake is answered with the pair last loaded.
pub(crate) struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    loaded: RwLock<Loaded>,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl Reloading {
    /// The pair served now.
    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(
            &self
                .loaded
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .certified,
        )
    }

    /// Read both files again; when either changed and the pair loads, serve it from the next
    /// handshake on. `Ok(true)`: a new pair is served; `Ok(false)`: nothing changed.
    ///
    /// # Errors
    /// As [`acceptor`]; the pair before stays in use.
    pub(crate) fn reload(&self) -> Result<bool, ServerError> {
        let (cert_pem, key_pem) = read_pair(&self.cert, &self.key)?;
        let key_digest = digest(&SHA256, &key_pem).as_ref().to_vec();
        {
            let loaded = self
                .loaded
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if loaded.cert_pem == cert_pem && loaded.key_digest == key_digest {
                return Ok(false);
            }
        }
        let certified = certified_key(&self.cert, &cert_pem, &self.key, &key_pem)?;
        // A renewal is valid now: an expired or not yet valid certificate (a stale copy, a
        // clock far off) does not replace the one served.
        // (Dates that cannot be read do not hold a renewal back: rustls accepted the pair.)
        let now = tessera_pki::UnixTime::now();
        if let Some((not_before, not_after)) = leaf_validity(&cert_pem)
            && !(not_before <= now && now < not_after)
        {
            return Err(ServerError::Tls(format!(
                "{}: the certificate is not valid now (notBefore {not_before}, notAfter {not_after})",
                self.cert.display(),
            )));
        }
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Loaded {
            cert_pem,
            key_digest,
            certified: Arc::new(certified),
        };
        Ok(true)
    }
}

/// The certificate chain's and the key's PEM (the key read as every secret key file is: a
/// regular file, reached through a link only because the configuration names it, owned by
/// this user or root, that group and others cannot write and others cannot read; a Secret
/// volume's 0440 is fine).
fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), ServerError> {
    let cert_pem = read(cert)?;
    let key_pem = tessera_broker::keyfile::read(
        key,
        tessera_broker::keyfile::Symlinks::Follow,
        crate::startup::SECRET_FILE_FORBIDDEN,
        crate::startup::SECRET_FILE_EXPOSED,
        MAX_PEM,
    )
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    Ok((cert_pem, key_pem))
}

/// The leaf certificate's notBefore and notAfter, read leniently (any key or signature
/// algorithm rustls serves with): `None` when its dates cannot be read.
fn leaf_validity(cert_pem: &[u8]) -> Option<(tessera_pki::UnixTime, tessera_pki::UnixTime)> {
    let leaf = CertificateDer::pem_slice_iter(cert_pem).next()?.ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let validity = parsed.validity();
    Some((
        tessera_pki::UnixTime::from_secs(validity.not_before.timestamp()),
        tessera_pki::UnixTime::from_secs(validity.not_after.timestamp()),
    ))
}

impl Reloading {
    /// The notAfter of the certificate served now (for the log).
    pub(crate) fn not_after(&self) -> Option<tessera_pki::UnixTime> {
        let pem = self
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .cert_pem
            .clone();
        leaf_validity(&pem).map(|(_, until)| until)
    }
}

fn certified_key(
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
) -> Result<CertifiedKey, ServerError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| ServerError::Tls(format!("{}: no usable private key ({e})", key.display())))?;
    CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| {
        ServerError::Tls(format!(
            "{} with the key {}: {e}",
            cert.display(),
            key.display()
        ))
    })
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// A TLS acceptor for the certificate chain at `cert` and the private key at `key` (PEM), and
/// the resolver that reloads them.
///
/// # Errors
/// [`ServerError::Tls`]: unreadable files, no certificate, no usable key, a key that does not
/// match the certificate.
pub(crate) fn acceptor(
    cert: &Path,
    key: &Path,
) -> Result<(tokio_rustls::TlsAcceptor, Arc<Reloading>), ServerError> {
    let (cert_pem, key_pem) = read_pair(cert, key)?;
    let certified = certified_key(cert, &cert_pem, key, &key_pem)?;
    // Served all the same (there is no other), but said: clients will refuse it.
    if let Some((not_before, not_after)) = leaf_validity(&cert_pem) {
        let now = tessera_pki::UnixTime::now();
        if !(not_before <= now && now < not_after) {
            tracing::warn!(
                cert = %cert.display(),
                %not_before,
                %not_after,
                "the TLS certificate is not valid now: clients will refuse it"
            );
        }
    }
    let resolver = Arc::new(Reloading {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        loaded: RwLock::new(Loaded {
            cert_pem,
            key_digest: digest(&SHA256, &key_pem).as_ref().to_vec(),
            certified: Arc::new(certified),
        }),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), resolver))
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

    /// A self-signed certificate for 127.0.0.1 and its PKCS#8 key, both PEM.
    fn self_signed() -> (String, String) {
        self_signed_at(-3600, 86_400)
    }

    /// [`self_signed`], valid from `from` to `until` seconds from now.
    fn self_signed_at(from: i64, until: i64) -> (String, String) {
        use tessera_pki::PublicKeyKind;
        use tessera_pki::builder::{CertificateSpec, IssuerKey, issue_certificate, name};
        let now = tessera_pki::UnixTime::now().as_secs();
        let subject = name(&[("2.5.4.3", "127.0.0.1")]).unwrap();
        let key = IssuerKey::generate_ec(PublicKeyKind::EcP256).unwrap();
        let spec = CertificateSpec {
            serial: vec![9],
            issuer: subject.clone(),
            subject,
            not_before: tessera_pki::UnixTime::from_secs(now + from),
            not_after: tessera_pki::UnixTime::from_secs(now + until),
            ca: None,
            extensions: Vec::new(),
            pss_explicit_trailer: false,
        };
        let cert = issue_certificate(&spec, &key.spki_der().unwrap(), &key).unwrap();
        let tessera_pki::builder::IssuerKey::EcdsaP256 { asn1, .. } = &key else {
            unreachable!()
        };
        let pkcs8 = asn1.to_pkcs8v1().unwrap();
        (
            tessera_pki::to_pem("CERTIFICATE", &cert),
            tessera_pki::to_pem("PRIVATE KEY", pkcs8.as_ref()),
        )
    }

    /// `reload` serves a changed pair that loads, reports an unchanged one, and keeps the
    /// pair before when the files do not load (a certificate without its key yet, an empty
    /// file, a key others can read).
    #[test]
    fn reload_takes_a_renewed_pair_and_keeps_the_old_one_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        write(
            &cert,
            &std::fs::read(testdata("server.pem")).unwrap(),
            0o644,
        );
        write(&key, &std::fs::read(testdata("server.key")).unwrap(), 0o600);
        let (_, resolver) = acceptor(&cert, &key).unwrap();
        let served = |r: &Reloading| r.current().cert[0].as_ref().to_vec();
        let first = served(&resolver);
        assert!(!resolver.reload().unwrap(), "nothing changed");
        let (new_cert, new_key) = self_signed();
        // The certificate first: it does not match the key.
        write(&cert, new_cert.as_bytes(), 0o644);
        assert!(matches!(resolver.reload(), Err(ServerError::Tls(m)) if m.contains("KeyMismatch")));
        assert_eq!(served(&resolver), first);
        // Then the key, readable by others: refused as at start.
        write(&key, new_key.as_bytes(), 0o644);
        assert!(
            matches!(resolver.reload(), Err(ServerError::Tls(m)) if m.contains("readable by others"))
        );
        assert_eq!(served(&resolver), first);
        write(&key, new_key.as_bytes(), 0o600);
        assert!(resolver.reload().unwrap());
        let second = served(&resolver);
        assert_ne!(second, first);
        assert!(!resolver.reload().unwrap());
        // A key type rustls serves but attestation's certificate parser does not take
        // (Ed25519): renewed all the same.
        write(
            &key,
            &std::fs::read(testdata("ed25519.key")).unwrap(),
            0o600,
        );
        write(
            &cert,
            &std::fs::read(testdata("ed25519.pem")).unwrap(),
            0o644,
        );
        assert!(resolver.reload().unwrap());
        let second = served(&resolver);
        assert!(resolver.not_after().is_some());
        // A pair that loads but has expired does not replace the one served.
        let (old_cert, old_key) = self_signed_at(-2 * 86_400, -86_400);
        write(&key, old_key.as_bytes(), 0o600);
        write(&cert, old_cert.as_bytes(), 0o644);
        assert!(
            matches!(resolver.reload(), Err(ServerError::Tls(m)) if m.contains("not valid now"))
        );
        assert_eq!(served(&resolver), second);
        // A half-written certificate file: the renewed pair stays.
        write(&cert, b"", 0o644);
        assert!(
            matches!(resolver.reload(), Err(ServerError::Tls(m)) if m.contains("no certificate"))
        );
        assert_eq!(served(&resolver), second);
    }
}
