//! Stream sockets (TCP, and Unix for a server behind a local proxy) and listeners driven by
//! the executor's epoll set (`readiness.rs`) rather than by a glommio poll per read or accept: the socket layer of the squall web framework
//! (re-exported there as `squall::net`), in a crate of its own so that clients such as
//! squall's load generator use it without compiling the framework.
//!
//! A [`Socket`] reads and writes with plain non-blocking `recv`/`send`; only when one would
//! block does it leave its waker with the executor's readiness set and wait for the edge.
//! A [`Listener`] hands out connections the same way, with `accept4`. Both are `!Send`, like
//! everything on a glommio executor, and must be made inside one. `Socket` implements the
//! futures-io `AsyncRead` and `AsyncWrite` traits (also through `&Socket`, so a reader and a
//! writer can share one).
//!
//! Each executor (each thread running a `glommio::LocalExecutor`) gets one edge-triggered
//! epoll set, made with its first socket, and one task that turns its events into wake-ups;
//! the io_uring ring polls only the epoll descriptor. Nothing is shared between threads.
//!
//! ```no_run
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//! use squall_net::Socket;
//!
//! let executor = glommio::LocalExecutorBuilder::default().make().expect("executor");
//! executor.run(async {
//!     let addr = "127.0.0.1:8080".parse().expect("address");
//!     let mut socket = Socket::connect(addr, None).await?;
//!     socket.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await?;
//!     let mut reply = Vec::new();
//!     socket.read_to_end(&mut reply).await?;
//!     Ok::<_, std::io::Error>(())
//! })
//! .expect("a reply");
//! ```

mod listener;
mod readiness;

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use socket2::{Domain, Protocol, SockAddr, Type};

pub use listener::Listener;
use readiness::{Direction, Readiness};

/// Makes the current executor's epoll set (and starts the task that drives it) now rather
/// than with the first socket, so that a process that reaches its descriptor limit later can
/// still take over the sockets it accepts. Must be called inside a glommio executor; calling
/// it again on the same executor does nothing.
pub fn prepare() -> io::Result<()> {
    Readiness::current().map(drop)
}

/// A non-blocking stream socket (TCP, or Unix when accepted from a Unix listener)
/// registered with the current executor.
pub struct Socket {
    fd: OwnedFd,
    key: usize,
    readiness: Rc<Readiness>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl Socket {
    /// Takes over a connected stream socket (made non-blocking here) on the current executor.
    /// Must be called inside a glommio executor.
    pub fn new(fd: OwnedFd) -> io::Result<Socket> {
        let socket = socket2::Socket::from(fd);
        socket.set_nonblocking(true)?;
        Socket::register(OwnedFd::from(socket))
    }

    /// Registers a socket that is non-blocking already.
    fn register(fd: OwnedFd) -> io::Result<Socket> {
        let readiness = Readiness::current()?;
        let key = readiness.register(fd.as_raw_fd())?;
        Ok(Socket { fd, key, readiness })
    }

    /// Connects to `addr`, optionally from the local address `from`, with `TCP_NODELAY` set.
    pub async fn connect(addr: SocketAddr, from: Option<SocketAddr>) -> io::Result<Socket> {
        let socket = socket2::Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        socket.set_tcp_nodelay(true)?;
        if let Some(from) = from {
            if from.is_ipv4() {
                // Pick the port at connect time from the whole 4-tuple, so each source and
                // destination pair has its own ephemeral range.
                set_bind_address_no_port(&socket)?;
            }
            socket.bind(&SockAddr::from(from))?;
        }
        match socket.connect(&SockAddr::from(addr)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let socket = Socket::new(OwnedFd::from(socket))?;
        // Writable means the handshake ended; SO_ERROR says how.
        std::future::poll_fn(|cx| socket.poll_ready(cx, Direction::Write)).await;
        match socket.as_socket2().take_error()? {
            Some(error) => Err(error),
            None => Ok(socket),
        }
    }

    /// Reads into `buf`, or waits for data. `Ok(0)` is the end of the stream.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if !buf.is_empty() && self.wait_for_edge_if_drained(cx) {
            return Poll::Pending;
        }
        loop {
            // SAFETY: the buffer is valid for buf.len() bytes; the descriptor is ours.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            match self.settle(n, cx, Direction::Read) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A short read emptied the socket (EAGAIN is handled in settle).
                Poll::Ready(Ok(read)) if read > 0 && read < buf.len() => {
                    self.readiness.drained(self.key);
                    return Poll::Ready(Ok(read));
                }
                other => return other,
            }
        }
    }

    /// Writes from `buf`, or waits for room.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            // SAFETY: the buffer is valid for buf.len() bytes; MSG_NOSIGNAL turns a closed
            // peer into EPIPE instead of SIGPIPE.
            let n = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            match self.settle(n, cx, Direction::Write) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Writes from several buffers in one `sendmsg`, or waits for room.
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let count = bufs.len().min(libc::UIO_MAXIOV as usize);
        loop {
            // SAFETY: IoSlice is ABI-compatible with iovec; the message points at `count`
            // of them, which outlive the call.
            let n = unsafe {
                let mut message: libc::msghdr = std::mem::zeroed();
                message.msg_iov = bufs.as_ptr().cast_mut().cast();
                message.msg_iovlen = count;
                libc::sendmsg(
                    self.fd.as_raw_fd(),
                    &message,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            match self.settle(n, cx, Direction::Write) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Turns a system call's result into a poll result, waiting when it would have blocked.
    fn settle(
        &self,
        n: isize,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<usize>> {
        match usize::try_from(n) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(_) => self
                .failed(io::Error::last_os_error(), cx, direction)
                .map(Err),
        }
    }

    /// Whether a read found the socket drained and no edge has come since; if so, the task
    /// in `cx` is left to be woken by the next one, since a `recv` (or `accept`) now could
    /// only say EAGAIN.
    fn wait_for_edge_if_drained(&self, cx: &mut Context<'_>) -> bool {
        if self.readiness.may_read(self.key) {
            return false;
        }
        self.readiness.wait(self.key, Direction::Read, cx.waker());
        true
    }

    /// `error`, from the system call that just failed, or a wait when it would have blocked.
    fn failed(
        &self,
        error: io::Error,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Error> {
        if error.kind() == io::ErrorKind::WouldBlock {
            if direction == Direction::Read {
                self.readiness.drained(self.key);
            }
            self.readiness.wait(self.key, direction, cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(error)
    }

    /// Resolves once the socket is ready in `direction` (or has failed), as `poll(2)` says:
    /// asked on every call, so a wake-up for an edge that was already used cannot be mistaken
    /// for readiness. Only connecting uses it; reads and writes learn from their own calls.
    fn poll_ready(&self, cx: &mut Context<'_>, direction: Direction) -> Poll<()> {
        let mut pollfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: match direction {
                Direction::Read => libc::POLLIN,
                Direction::Write => libc::POLLOUT,
            },
            revents: 0,
        };
        // SAFETY: one valid pollfd; timeout 0 never blocks.
        if unsafe { libc::poll(&mut pollfd, 1, 0) } > 0 {
            return Poll::Ready(());
        }
        self.readiness.wait(self.key, direction, cx.waker());
        Poll::Pending
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.as_socket2().shutdown(how)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.as_socket2()
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.as_socket2()
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.as_socket2().set_tcp_nodelay(on)
    }

    /// socket2's view of the descriptor, for options not wrapped here.
    pub fn as_socket2(&self) -> socket2::SockRef<'_> {
        socket2::SockRef::from(&self.fd)
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.readiness.deregister(self.fd.as_raw_fd(), self.key);
    }
}

/// IP_BIND_ADDRESS_NO_PORT on `socket`.
fn set_bind_address_no_port(socket: &socket2::Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option value of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// The futures-io traits, for `Socket` and for `&Socket` (so a reader and a writer can share
// one socket); both forward to the inherent methods, which take `&self`.
macro_rules! futures_io_for {
    ($($socket:ty),*) => {$(
        impl AsyncRead for $socket {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                Socket::poll_read(self.get_mut(), cx, buf)
            }
        }

        impl AsyncWrite for $socket {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Socket::poll_write(self.get_mut(), cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Socket::poll_write_vectored(self.get_mut(), cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.get_mut().shutdown(Shutdown::Write))
            }
        }
    )*};
}

futures_io_for!(Socket, &Socket);
