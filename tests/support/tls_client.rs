//! A TLS client for tests: rustls over a blocking `TcpStream` (or any test stream), trusting
//! the test's CA.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};

use super::certs::Issued;
use super::TestStream;

/// What a test client offers.
pub struct ClientOptions<'a> {
    /// The CA to trust (PEM).
    pub ca_pem: &'a str,
    /// TLS versions to offer; both when empty.
    pub versions: &'a [&'static SupportedProtocolVersion],
    /// ALPN protocols to offer.
    pub alpn: &'a [&'a [u8]],
    /// A client certificate to present.
    pub client_cert: Option<&'a Issued>,
    /// Whether to keep and offer session tickets.
    pub resumption: bool,
}

impl<'a> ClientOptions<'a> {
    /// Trusts `ca_pem`, offers both versions and ALPN `http/1.1`, no client certificate, no
    /// resumption.
    pub fn new(ca_pem: &'a str) -> ClientOptions<'a> {
        ClientOptions {
            ca_pem,
            versions: &[],
            alpn: &[b"http/1.1"],
            client_cert: None,
            resumption: false,
        }
    }

    /// The rustls configuration these options describe.
    pub fn config(&self) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("add CA");
        }
        let versions: &[&'static SupportedProtocolVersion] = if self.versions.is_empty() {
            rustls::ALL_VERSIONS
        } else {
            self.versions
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = match self.client_cert {
            Some(issued) => {
                let chain = vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
                    .expect("client cert PEM")];
                let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
                    .expect("client key PEM");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client cert")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.iter().map(|p| p.to_vec()).collect();
        if !self.resumption {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Arc::new(config)
    }
}

/// A TLS session over a TCP connection (or another test stream, such as a `UnixStream`).
pub struct TlsStream<S: Read + Write = TcpStream>(pub StreamOwned<ClientConnection, S>);

impl TlsStream {
    /// Connects to `addr` as `server_name` and completes the handshake.
    pub fn connect(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> std::io::Result<TlsStream> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_nodelay(true)?;
        TlsStream::over(tcp, server_name, config)
    }
}

impl<S: TestStream> TlsStream<S> {
    /// Completes a handshake as `server_name` over `sock`, a stream the test connected.
    pub fn over(
        sock: S,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> std::io::Result<TlsStream<S>> {
        sock.set_read_timeout(super::READ_TIMEOUT);
        let name = ServerName::try_from(server_name.to_owned()).expect("server name");
        let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsStream(stream))
    }

    /// The rustls connection (negotiated version, ALPN, server certificate).
    pub fn conn(&self) -> &ClientConnection {
        &self.0.conn
    }

    /// The serial number of the server's certificate, as the CA issued it.
    pub fn server_serial(&self) -> u64 {
        let leaf = &self.conn().peer_certificates().expect("server certificate")[0];
        serial_of(leaf)
    }
}

/// The serial number in a DER certificate made by `TestCa` (8 bytes, big-endian): found by
/// its DER encoding, INTEGER of length 8 or 9 right after the version field.
pub fn serial_of(der: &[u8]) -> u64 {
    // tbsCertificate starts with [0] { INTEGER 2 } (a0 03 02 01 02), then the serial.
    let at = super::find(der, &[0xa0, 0x03, 0x02, 0x01, 0x02]).expect("version field") + 5;
    assert_eq!(der[at], 0x02, "serial is an INTEGER");
    let len = usize::from(der[at + 1]);
    let bytes = &der[at + 2..at + 2 + len];
    let bytes = &bytes[bytes.len().saturating_sub(8)..];
    bytes.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
}

impl<S: TestStream> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: TestStream> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<S: TestStream> TestStream for TlsStream<S> {
    fn set_read_timeout(&self, timeout: Duration) {
        self.0.sock.set_read_timeout(timeout);
    }
}
