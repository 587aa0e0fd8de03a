//! Optional TLS of the replication transport (rustls, server-authenticated).
//!
//! The cluster secret already authenticates both directions and protects every byte's
//! integrity; TLS adds confidentiality on networks that are not private. With `[replication]
//! tls_cert`/`tls_key` a node's endpoint speaks HTTPS only; with `tls_ca` a node's client
//! uses HTTPS to every peer and accepts only certificates issued by that CA for the address
//! the peer advertises. A deployment turns it on for every share node at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
pub use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A handshake that takes longer than this is dropped, so a stalled peer cannot hold up the
/// endpoint's accept loop.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

fn invalid(what: &str, err: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {err}"))
}

/// A TLS acceptor for the certificate chain `cert_pem` and its private key `key_pem`.
pub fn acceptor(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("the replication TLS certificate", e))?;
    if certs.is_empty() {
        return Err(invalid(
            "the replication TLS certificate",
            "no certificate in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| invalid("the replication TLS key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("the replication TLS certificate and key", e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TCP listener whose connections are TLS sessions (for `axum::serve`). A failed or
/// stalled handshake drops that connection only.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    /// Serves TLS with `acceptor` on the bound `tcp`.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Self {
        Self { tcp, acceptor }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors and the like: let it pass rather than spin.
                    tracing::warn!(error = %err, "replication endpoint accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(err)) => {
                    tracing::warn!(%peer, error = %err, "TLS handshake with {peer} failed: {err}")
                }
                Err(_) => tracing::warn!(%peer, "TLS handshake with {peer} timed out"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
