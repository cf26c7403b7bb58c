//! A TLS client for tests against a node that ends TLS itself.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A TLS connection to `addr`, trusting the certificate(s) in `ca_pem` for
/// the name `localhost`.
pub async fn connect(addr: SocketAddr, ca_pem: &std::path::Path) -> Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).context("read the CA")? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost")?;
    let tls = tokio::time::timeout(
        crate::WAIT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .context("TLS handshake timed out")??;
    Ok(tls)
}

/// The certificate a TLS server presents, in DER.
pub async fn peer_certificate(addr: SocketAddr, ca_pem: &std::path::Path) -> Result<Vec<u8>> {
    let tls = connect(addr, ca_pem).await?;
    let (_, session) = tls.get_ref();
    Ok(session
        .peer_certificates()
        .and_then(|c| c.first())
        .context("no certificate")?
        .to_vec())
}
