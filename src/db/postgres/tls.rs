//! TLS for PostgreSQL: tokio-postgres's `TlsConnect` over the pool's rustls connector
//! ([`crate::tls::client`]). tokio-postgres sends the `SSLRequest` and falls back to plain
//! text under `sslmode=prefer`; this does the handshake once the server has said yes, and
//! gives tokio-postgres the `tls-server-end-point` channel binding for SCRAM-SHA-256-PLUS.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use crate::net::Socket;
use crate::tls::client::{self, Connector};

/// One connection's (or cancel request's) TLS handshake.
pub(super) struct Connect {
    /// `None` under `sslmode=disable`, where tokio-postgres never asks for a handshake.
    connector: Option<Connector>,
    /// The name sent as SNI and, under `verify-full`, checked against the certificate.
    server_name: String,
}

impl Connect {
    pub(super) fn new(connector: Option<Connector>, server_name: String) -> Connect {
        Connect {
            connector,
            server_name,
        }
    }
}

impl TlsConnect<Compat<Socket>> for Connect {
    type Stream = TlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream>>>>;

    fn connect(self, stream: Compat<Socket>) -> Self::Future {
        Box::pin(async move {
            let Some(connector) = self.connector else {
                return Err(io::Error::other("TLS is off (sslmode=disable)"));
            };
            let session = connector
                .connect(&self.server_name, stream.into_inner())
                .await?;
            Ok(TlsStream(Box::new(session).compat()))
        })
    }
}

/// The session, seen through tokio's I/O traits as tokio-postgres wants. Boxed so that the
/// connection task of a plain connection does not carry a session's worth of space.
pub(super) struct TlsStream(Compat<Box<client::TlsStream<Socket>>>);

impl tokio_postgres::tls::TlsStream for TlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        match client::server_end_point(self.0.get_ref()) {
            Some(hash) => ChannelBinding::tls_server_end_point(hash),
            None => ChannelBinding::none(),
        }
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
