//! TLS with rustls: the server's side (`https`, `wss`) and the PostgreSQL and Redis
//! clients' side.
//!
//! One crypto provider for both, aws-lc-rs: on these machines a full TLS 1.3 handshake
//! (ECDSA P-256 certificate, X25519) costs the server 96 µs of CPU with it against 112 µs
//! with ring, and it offers the X25519MLKEM768 hybrid key exchange that current browsers
//! send first (`perf/tls-provider`, BENCHMARKS.md "TLS"). TLS 1.2 and 1.3 only: rustls has
//! nothing older.
//!
//! Certificates, keys and CA bundles are read from PEM files here, so every file mistake
//! reads the same way: which file, and what is wrong with it.

#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) mod client;
pub(crate) mod server;

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{
    CipherSuite, ProtocolVersion, RootCertStore, SupportedCipherSuite, SupportedProtocolVersion,
};

use crate::error::Error;

pub use self::server::{ClientAuth, TlsConfig};
/// The certificate type [`TlsSession::peer_certificates`] returns (DER bytes).
pub use rustls::pki_types::CertificateDer as Certificate;

/// The protocol versions squall speaks, newest first.
pub(crate) static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A fresh handle on the crypto provider. Each core builds its configurations with its own,
/// so no reference count is shared between cores.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Every certificate in a PEM file, in order (a chain starts with the leaf). `what` names
/// the file's role in errors ("certificate chain", "client CA bundle").
pub(crate) fn read_certificates(
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = read_file(path, what)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::config(format!("{what} {}: not PEM: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(Error::config(format!(
            "{what} {}: no CERTIFICATE block in it",
            path.display()
        )));
    }
    Ok(certificates)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub(crate) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let bytes = read_file(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        Error::config(format!(
            "private key {}: no usable PRIVATE KEY block in it ({e})",
            path.display()
        ))
    })
}

/// A CA bundle as a root store; every certificate in it must be usable as a trust anchor.
pub(crate) fn read_roots(path: &Path, what: &str) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in read_certificates(path, what)?.into_iter().enumerate() {
        roots.add(certificate).map_err(|e| {
            Error::config(format!(
                "{what} {}: certificate {} is not a usable CA: {e}",
                path.display(),
                index + 1
            ))
        })?;
    }
    Ok(roots)
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::config(format!("{what} {}: {e}", path.display())))
}

/// What a request's TLS connection negotiated: [`Request::tls`](crate::Request::tls).
#[derive(Clone, Debug)]
pub struct TlsSession {
    protocol: Option<ProtocolVersion>,
    cipher_suite: Option<CipherSuite>,
    alpn: Option<Box<[u8]>>,
    server_name: Option<Box<str>>,
    peer_certificates: Box<[CertificateDer<'static>]>,
}

impl TlsSession {
    pub(crate) fn new(
        protocol: Option<ProtocolVersion>,
        cipher_suite: Option<SupportedCipherSuite>,
        alpn: Option<&[u8]>,
        server_name: Option<Box<str>>,
        peer_certificates: Option<&[CertificateDer<'static>]>,
    ) -> TlsSession {
        TlsSession {
            protocol,
            cipher_suite: cipher_suite.map(|s| s.suite()),
            alpn: alpn.map(Box::from),
            server_name,
            peer_certificates: peer_certificates.map(Box::from).unwrap_or_default(),
        }
    }

    /// The protocol version: `TLSv1_3` or `TLSv1_2`.
    pub fn protocol(&self) -> Option<ProtocolVersion> {
        self.protocol
    }

    /// The cipher suite, such as `TLS13_AES_128_GCM_SHA256`.
    pub fn cipher_suite(&self) -> Option<CipherSuite> {
        self.cipher_suite
    }

    /// The application protocol chosen by ALPN (`http/1.1`), if the client offered any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// The host name the client asked for (SNI), if it sent one.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The client's certificate chain, leaf first, verified against the configured client
    /// CAs; empty when the client presented none (allowed with [`ClientAuth::Optional`]).
    pub fn peer_certificates(&self) -> &[Certificate<'static>] {
        &self.peer_certificates
    }
}

thread_local! {
    /// The SNI of the handshake the certificate resolver just served. rustls's unbuffered
    /// server connection does not report SNI, but its resolver sees it inside the same
    /// synchronous call, on this core, so the handshake code takes it right after.
    static LAST_SNI: RefCell<Option<Box<str>>> = const { RefCell::new(None) };
}

/// Records the SNI of the ClientHello being resolved.
fn record_sni(name: Option<&str>) {
    LAST_SNI.with(|slot| *slot.borrow_mut() = name.map(Box::from));
}

/// The SNI recorded since the last call, if any.
pub(crate) fn take_sni() -> Option<Box<str>> {
    LAST_SNI.with(|slot| slot.borrow_mut().take())
}
