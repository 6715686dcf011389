//! TLS with rustls: the server's side (`https`, `wss`) and the PostgreSQL and Redis
//! clients' side.
//!
//! One crypto provider for both, aws-lc-rs: on these machines a full TLS 1.3 handshake
//! (ECDSA P-256 certificate, X25519) costs the server 95 µs of CPU with it against 112 µs
//! with ring, and it offers the X25519MLKEM768 hybrid key exchange that current browsers
//! send first (`perf/tls-provider`, BENCHMARKS.md "TLS"). TLS 1.2 and 1.3 only: rustls has
//! nothing older.
//!
//! Certificates, keys and CA bundles are read from PEM files here, so every file mistake
//! reads the same way: which file, and what is wrong with it.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, SupportedProtocolVersion};

use crate::error::Error;

#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) mod client;

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
