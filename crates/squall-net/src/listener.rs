//! A listening socket on the executor's epoll set: connections are taken with `accept4`
//! until the backlog is empty, and only then does the listener wait for its next edge.
//!
//! glommio's listener submitted an io_uring accept per connection; each completion that
//! arrived while the core was running interrupted it (the reads' problem, see squall's
//! BENCHMARKS.md "Load generator validation"), and every accepted stream was a glommio
//! object made only to be taken apart into a [`Socket`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::task::{Context, Poll};

use super::readiness::Direction;
use super::Socket;

/// A listening stream socket (TCP, or Unix) registered with the current executor.
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

    /// The next connection, non-blocking and registered with this executor, and its peer's
    /// IP address: `None` on a Unix socket, whose peers have no address worth reporting
    /// (a client rarely binds its end, and a path would not identify it).
    pub async fn accept(&self) -> io::Result<(Socket, Option<SocketAddr>)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Accepts a connection, or waits for one. Errors are the kernel's (`EMFILE` when out of
    /// descriptors, `ECONNABORTED` for a connection reset while it was queued): the caller
    /// decides whether to retry.
    pub fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Socket, Option<SocketAddr>)>> {
        let socket = &self.socket;
        if socket.wait_for_edge_if_drained(cx) {
            return Poll::Pending;
        }
        loop {
            // accept4 hands over the peer's address too, so no getpeername follows.
            let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            match socket.as_socket2().accept4(flags) {
                Ok((accepted, addr)) => {
                    let socket = Socket::register(OwnedFd::from(accepted));
                    return Poll::Ready(socket.map(|socket| (socket, addr.as_socket())));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return socket.failed(e, cx, Direction::Read).map(Err),
            }
        }
    }

    /// The IP address it listens on (an error on a Unix socket).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}
