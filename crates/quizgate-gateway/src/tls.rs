//! TLS on the node itself (`QUIZGATE_TLS_CERT`, `QUIZGATE_TLS_KEY`), for
//! deployments whose balancer passes TCP through: rustls with the `ring`
//! provider, TLS 1.2 and 1.3. The certificate is reloaded when its files
//! change, for new connections only: live ones keep their session.
//!
//! The handshake is tokio-rustls's; afterwards the connection's rustls state
//! moves into its [`crate::wire::Wire`], so that the fan-out encrypts each
//! event into the socket without waking the connection's task, as it does in
//! the clear.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Where the node's certificate chain and private key are (PEM files).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The node's TLS acceptor, with the certificate it serves.
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    certificate: Arc<Reloading>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.certificate.files.cert)
            .finish()
    }
}

impl Tls {
    /// Loads the files (an error names what is wrong with them).
    pub(crate) fn new(files: TlsFiles) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = load(&files, &provider)?;
        let certificate = Arc::new(Reloading {
            stamp: Mutex::new(stamp(&files)),
            files,
            current: RwLock::new(Arc::new(current)),
            provider: Arc::clone(&provider),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate,
        })
    }

    /// Loads the files again if they changed since the last look; a bad new
    /// pair is logged and the old certificate kept. True if it reloaded.
    pub(crate) fn reload_if_changed(&self) -> bool {
        self.certificate.reload_if_changed()
    }
}

#[derive(Debug)]
struct Reloading {
    files: TlsFiles,
    /// The files' modification times when last loaded.
    stamp: Mutex<Option<(SystemTime, SystemTime)>>,
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl Reloading {
    fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.files);
        {
            let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
            if now.is_none() || *last == now {
                return false;
            }
            *last = now;
        }
        match load(&self.files, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays");
                false
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

fn stamp(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(&files.cert)?, modified(&files.key)?))
}

fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("TLS certificate {}: {e}", files.cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate {}: no certificate in it",
            files.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("TLS key {}: {e}", files.key.display()))?;
    CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| format!("TLS key {}: {e}", files.key.display()))
}
