//! The clients' side: TLS for the PostgreSQL and Redis connections in [`crate::db`].
//!
//! One function, [`connector`], turns the settings both clients share (trusted roots, an
//! optional client certificate, how much of the server's certificate to check) into a
//! [`Connector`] that wraps a socket in a TLS session. The settings are read from PEM files
//! when the connector is built, so a missing or broken file is one configuration error at
//! that point, naming the file.
//!
//! **Per core.** A pool or client builds its own connector (and so its own rustls
//! `ClientConfig`, with its own session cache for resumption on reconnects) on the core that
//! runs it: nothing behind a connection's handshake or records is shared with another core.
//!
//! **What is checked** is the [`Verify`] mode, named after libpq's `sslmode` values:
//! nothing (`require` without a root certificate: encrypted, but anyone can answer), the
//! chain (`verify-ca`: the certificate was issued by a trusted CA, whatever names it
//! carries), or the chain and the host name (`verify-full`, and what `https` means).

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::{provider, read_certificates, read_private_key, read_roots, PROTOCOL_VERSIONS};
use crate::error::Error;

/// The TLS session over a database connection's socket.
pub(crate) type TlsStream<IO> = futures_rustls::client::TlsStream<IO>;

/// How much of the server's certificate the client checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Nothing: any certificate is accepted. The connection is encrypted against someone
    /// listening, not against someone in the middle (libpq's `require` without a root
    /// certificate).
    Nothing,
    /// The chain must lead to a trusted root; the names in the certificate are not checked
    /// (libpq's `verify-ca`).
    Chain,
    /// The chain, and the host name (or IP address) connected to must be one of the
    /// certificate's names (libpq's `verify-full`).
    Full,
}

/// Where the trusted roots come from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Roots<'a> {
    /// A PEM bundle of CA certificates.
    File(&'a Path),
    /// The operating system's bundle (found as OpenSSL would find it).
    System,
}

/// A client certificate and its private key, as PEM files.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Identity<'a> {
    pub(crate) cert: &'a Path,
    pub(crate) key: &'a Path,
}

/// What a connector is built from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings<'a> {
    pub(crate) verify: Verify,
    /// Needed unless `verify` is [`Verify::Nothing`], where they are ignored.
    pub(crate) roots: Option<Roots<'a>>,
    pub(crate) identity: Option<Identity<'a>>,
    /// The one ALPN protocol to offer, if any (`postgresql` for PostgreSQL 17's direct TLS).
    pub(crate) alpn: Option<&'static [u8]>,
}

/// Wraps sockets in client TLS sessions; cheap to clone (within its core).
#[derive(Clone)]
pub(crate) struct Connector {
    inner: futures_rustls::TlsConnector,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

/// Reads the files `settings` name and builds this core's connector. Errors are
/// configuration errors naming the file or the missing piece.
pub(crate) fn connector(settings: &Settings<'_>) -> Result<Connector, Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| Error::config(format!("tls client: {e}")))?;
    let builder = match settings.verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            })),
        Verify::Chain | Verify::Full => {
            let roots = match settings.roots {
                Some(Roots::File(path)) => read_roots(path, "CA bundle")?,
                Some(Roots::System) => system_roots()?,
                None => {
                    return Err(Error::config(
                        "tls client: verifying the server needs trusted CA certificates",
                    ))
                }
            };
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::config(format!("tls client: CA certificates: {e}")))?;
            if settings.verify == Verify::Full {
                builder.with_webpki_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { webpki }))
            }
        }
    };
    let mut config = match settings.identity {
        Some(identity) => {
            let chain = read_certificates(identity.cert, "client certificate")?;
            let key = read_private_key(identity.key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::config(format!(
                    "client certificate {} with key {}: {e}",
                    identity.cert.display(),
                    identity.key.display()
                ))
            })?
        }
        None => builder.with_no_client_auth(),
    };
    if let Some(protocol) = settings.alpn {
        config.alpn_protocols = vec![protocol.to_vec()];
    }
    Ok(Connector {
        inner: futures_rustls::TlsConnector::from(Arc::new(config)),
    })
}

impl Connector {
    /// The TLS handshake over `io` with the server known as `host` (a DNS name or an IP
    /// address: the name sent as SNI and, under [`Verify::Full`], checked against the
    /// certificate). A refused certificate is an `InvalidData` error saying why.
    pub(crate) async fn connect<IO>(&self, host: &str, io: IO) -> io::Result<TlsStream<IO>>
    where
        IO: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{host:?} is not a valid TLS server name: {e}"),
            )
        })?;
        self.inner.connect(name, io).await
    }
}

/// RFC 5929's `tls-server-end-point` channel binding of a session: the hash of the server's
/// certificate, with the hash function of its signature (SHA-256 for MD5 and SHA-1).
/// `None` when there is no certificate or its signature names no single hash (RSA-PSS,
/// EdDSA), where PostgreSQL offers no channel binding either.
pub(crate) fn server_end_point<IO>(stream: &TlsStream<IO>) -> Option<Vec<u8>> {
    let (_, session) = stream.get_ref();
    let certificate = session.peer_certificates()?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    use aws_lc_rs::digest;
    let algorithm = match parsed.signature_algorithm.algorithm.to_id_string().as_str() {
        // md5WithRSAEncryption, sha1WithRSAEncryption, sha256WithRSAEncryption,
        // ecdsa-with-SHA1, ecdsa-with-SHA256
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2" => &digest::SHA256,
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => &digest::SHA384,
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => &digest::SHA512,
        _ => return None,
    };
    Some(digest::digest(algorithm, certificate).as_ref().to_vec())
}

/// The operating system's CA bundle; certificates in it that cannot serve as roots are
/// skipped, as every client of a system bundle does.
fn system_roots() -> Result<RootCertStore, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "no certificates found".to_owned(), ToString::to_string);
        return Err(Error::config(format!(
            "tls client: cannot read the system's CA certificates ({why}); name a CA file instead"
        )));
    }
    Ok(roots)
}

/// [`Verify::Chain`]: rustls's WebPKI verification, less the check of the server's name.
/// That check comes last in rustls (after the chain, validity and revocation), so a
/// name mismatch means everything else passed.
#[derive(Debug)]
struct ChainOnly {
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}

/// [`Verify::Nothing`]: any certificate. The handshake's signatures are still checked
/// against the certificate presented, as TLS requires, which proves nothing about who the
/// server is.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
