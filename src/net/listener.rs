//! A listening socket on the executor's epoll set: connections are taken with `accept4`
//! until the backlog is empty, and only then does the listener wait for its next edge.
//!
//! glommio's listener submitted an io_uring accept per connection; each completion that
//! arrived while the core was running interrupted it (the reads' problem, see
//! BENCHMARKS.md "Load generator validation"), and every accepted stream was a glommio
//! object made only to be taken apart into a [`Socket`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::{Context, Poll};

use super::readiness::Direction;
use super::Socket;

/// A listening TCP socket registered with the current executor.
#[derive(Debug)]
pub struct Listener {
    socket: Socket,
}

impl Listener {
    /// Takes over a bound, listening socket (made non-blocking here). Must be called inside
    /// a glommio executor.
    pub fn new(fd: OwnedFd) -> io::Result<Listener> {
        Ok(Listener {
            socket: Socket::new(fd)?,
        })
    }

    /// The next connection, non-blocking and registered with this executor.
    pub async fn accept(&self) -> io::Result<Socket> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Accepts a connection, or waits for one. Errors are the kernel's (`EMFILE` when out of
    /// descriptors, `ECONNABORTED` for a connection reset while it was queued): the caller
    /// decides whether to retry.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Socket>> {
        let socket = &self.socket;
        if !socket.readiness.may_read(socket.key) {
            socket
                .readiness
                .wait(socket.key, Direction::Read, cx.waker());
            return Poll::Pending;
        }
        loop {
            // SAFETY: the descriptor is ours; a null address asks for no peer address.
            let fd = unsafe {
                libc::accept4(
                    socket.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd >= 0 {
                // SAFETY: accept4 returned a new descriptor that nothing else owns.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                return Poll::Ready(Socket::register(fd));
            }
            match socket.failed(cx, Direction::Read) {
                Poll::Ready(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                failed => return failed.map(Err),
            }
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.socket.local_addr()
    }
}
