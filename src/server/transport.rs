//! The seam under the connection driver: the byte stream it reads requests from and writes
//! responses to.
//!
//! The HTTP/1.1 driver is generic over [`Transport`], so the same driver serves a plain
//! socket, a TLS session over one, or an in-memory pipe in a test, and never knows which.
//! Generic rather than a trait object: the plain path is monomorphised down to the socket's
//! own calls, and an idle connection stores no extra pointer.

use std::io;
use std::net::Shutdown;
use std::task::{Context, Poll};

use crate::net::Socket;
use crate::upgrade::UpgradedStream;

/// A connection's byte stream, as the driver sees it. Methods take `&self` because the
/// driver and a request body being read share the connection.
pub(crate) trait Transport: 'static {
    /// Reads into `buf`, or waits for data. `Ok(0)` is the end of the stream.
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes from `buf`, or waits for room.
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Sends whatever the transport itself buffered (a TLS session's records): called once
    /// per batch of responses, after their bytes were written.
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Ends the sending side, so the peer sees the end of the last response.
    fn shutdown_write(&self) -> io::Result<()>;

    /// The stream a protocol upgrade (a WebSocket) continues on.
    fn into_upgraded(self) -> UpgradedStream;

    /// What the TLS handshake negotiated, on an encrypted transport.
    #[cfg(feature = "tls")]
    fn tls_session(&self) -> Option<&std::rc::Rc<crate::tls::TlsSession>> {
        None
    }
}

impl Transport for Socket {
    #[inline]
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Socket::poll_read(self, cx, buf)
    }

    #[inline]
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Socket::poll_write(self, cx, buf)
    }

    #[inline]
    fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(())) // The kernel sends what `send` took.
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn into_upgraded(self) -> UpgradedStream {
        UpgradedStream::new(self)
    }
}

/// An in-memory transport for tests (and fuzzing): reads come from a fixed input, then the
/// end of the stream; writes are collected.
#[cfg(test)]
pub(crate) struct Pipe {
    input: std::cell::RefCell<std::collections::VecDeque<u8>>,
    output: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
}

#[cfg(test)]
impl Pipe {
    /// A pipe that delivers `input`, and the buffer its writes land in.
    pub(crate) fn new(input: &[u8]) -> (Pipe, std::rc::Rc<std::cell::RefCell<Vec<u8>>>) {
        let output = std::rc::Rc::default();
        let pipe = Pipe {
            input: std::cell::RefCell::new(input.iter().copied().collect()),
            output: std::rc::Rc::clone(&output),
        };
        (pipe, output)
    }
}

#[cfg(test)]
impl Transport for Pipe {
    fn poll_read(&self, _cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut input = self.input.borrow_mut();
        let n = buf.len().min(input.len());
        for (slot, byte) in buf.iter_mut().zip(input.drain(..n)) {
            *slot = byte;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write(&self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.output.borrow_mut().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }

    fn into_upgraded(self) -> UpgradedStream {
        let input: Vec<u8> = self.input.into_inner().into();
        UpgradedStream::new(futures_lite::io::Cursor::new(input))
    }
}
