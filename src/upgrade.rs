//! A connection handed over after `101 Switching Protocols`.
//!
//! The handler asks for the upgrade by returning [`Response::upgrade`](crate::Response::upgrade);
//! the connection driver writes the 101 response and then gives the raw stream, with any bytes
//! the client already sent past the request head, to the upgrade callback. From then on the
//! callback owns the stream, on the same core.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_lite::io::{AsyncRead, AsyncWrite};

/// The raw connection after an upgrade.
#[derive(Debug)]
pub struct Upgraded {
    /// The byte stream: the connection's socket, or the session over it that the
    /// connection was served through.
    pub stream: UpgradedStream,
    /// Bytes received after the request head that belong to the new protocol.
    pub read_ahead: Bytes,
    /// The peer's address.
    pub peer: SocketAddr,
}

/// The byte stream an upgraded connection continues on, whatever it was served over (a
/// plain socket, or a TLS session whose records it keeps reading and writing). Boxed once per
/// upgrade, so that the upgrade callback's type does not depend on the transport.
pub struct UpgradedStream(Pin<Box<dyn Stream>>);

/// What an upgraded stream can do: read and write asynchronously.
trait Stream: AsyncRead + AsyncWrite {}

impl<T: AsyncRead + AsyncWrite> Stream for T {}

impl UpgradedStream {
    /// Wraps `stream`.
    pub fn new(stream: impl AsyncRead + AsyncWrite + 'static) -> UpgradedStream {
        UpgradedStream(Box::pin(stream))
    }
}

impl fmt::Debug for UpgradedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpgradedStream")
    }
}

impl AsyncRead for UpgradedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.0.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for UpgradedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.as_mut().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.0.as_mut().poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_close(cx)
    }
}
