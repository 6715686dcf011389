//! Sockets and process limits: connecting from a chosen source address, classifying I/O
//! errors, and raising RLIMIT_NOFILE / RLIMIT_MEMLOCK before the executors start.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use futures_util::AsyncWriteExt;
use glommio::net::TcpStream;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::driver::{Wake, wait};
use crate::stats::ErrorKind;

/// Descriptors kept free for the process itself: io_uring rings, eventfds and timers of each
/// executor, stdio, the JSON report.
pub const RESERVED_FDS_PER_THREAD: u64 = 16;
/// Descriptors kept free beyond the per-thread ones.
pub const RESERVED_FDS: u64 = 32;

/// Raises the soft descriptor limit to the hard one and checks `connections` fit under it.
pub fn raise_fd_limit(connections: usize, threads: usize) -> Result<u64, String> {
    let limit = raise(libc::RLIMIT_NOFILE).map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    let needed = connections as u64 + RESERVED_FDS + RESERVED_FDS_PER_THREAD * threads as u64;
    if limit != libc::RLIM_INFINITY && needed > limit {
        return Err(format!(
            "{connections} connections need about {needed} file descriptors but this process may \
             hold at most {limit} (the hard RLIMIT_NOFILE); run fewer connections per process \
             and start several processes (each with its own --source-addrs)"
        ));
    }
    Ok(limit)
}

/// Raises the soft RLIMIT_MEMLOCK to the hard one: io_uring rings count against it.
pub fn raise_memlock_limit() -> Result<(), String> {
    const NEEDED: u64 = 512 * 1024;
    let limit = raise(libc::RLIMIT_MEMLOCK).map_err(|e| format!("RLIMIT_MEMLOCK: {e}"))?;
    if limit != libc::RLIM_INFINITY && limit < NEEDED {
        return Err(format!(
            "RLIMIT_MEMLOCK is {limit} bytes and cannot be raised; io_uring needs at least \
             {NEEDED} (raise it with `ulimit -l`)"
        ));
    }
    Ok(())
}

/// Sets the soft limit of `resource` to its hard limit and returns the new soft limit.
fn raise(resource: libc::__rlimit_resource_t) -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(resource, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(resource, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// Opens a TCP connection to `addr`, from `source` if given, within `timeout`.
///
/// glommio's own `TcpStream::connect` cannot bind first, so the socket is built with socket2,
/// connected without blocking, handed to glommio, and a zero-length send waits for the
/// handshake: it fails with EAGAIN while the connection is pending (glommio then waits for
/// POLLOUT through io_uring) and with the connect error if it failed.
pub async fn connect(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let domain = match addr {
        SocketAddr::V4(_) => Domain::IPV4,
        SocketAddr::V6(_) => Domain::IPV6,
    };
    let socket = Socket::new(
        domain,
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        bind_address_no_port(&socket)?;
        socket.bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(ip), 0)))?;
    }
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let mut stream = TcpStream::from(socket);
    match wait(timeout, stream.write(&[])).await {
        Wake::Done(Ok(_)) => Ok(stream),
        Wake::Done(Err(e)) => Err(e),
        Wake::Timer => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// IP_BIND_ADDRESS_NO_PORT: with a source address bound, pick the port at connect time from
/// the whole 4-tuple, so each source/destination pair has its own ~28k ports and sockets in
/// TIME_WAIT towards another server port do not use them up.
fn bind_address_no_port(socket: &Socket) -> io::Result<()> {
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

/// The error kind of an I/O failure on an established connection.
pub fn classify(error: &io::Error) -> ErrorKind {
    match error.kind() {
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        io::ErrorKind::InvalidData => ErrorKind::Protocol,
        _ => ErrorKind::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(classify(&reset), ErrorKind::Reset);
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(classify(&pipe), ErrorKind::Reset);
        let timeout = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(classify(&timeout), ErrorKind::Timeout);
    }

    #[test]
    fn too_many_connections_are_refused_up_front() {
        let err = raise_fd_limit(usize::MAX / 2, 1).expect_err("cannot fit");
        assert!(err.contains("file descriptors"), "{err}");
    }
}
