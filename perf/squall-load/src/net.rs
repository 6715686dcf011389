//! Sockets and the process: connecting from a chosen source address (squall's epoll-driven
//! sockets), classifying I/O errors, raising RLIMIT_NOFILE / RLIMIT_MEMLOCK before the
//! executors start, and the process's CPU time for the report.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use squall_net::Socket;

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

/// The CPU time (user and system, every thread) this process has used so far.
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given and reads nothing from it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Opens a TCP connection to `addr`, from `source` if given, within `timeout`.
pub async fn connect(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    timeout: Duration,
) -> io::Result<Socket> {
    let from = source.map(|ip| SocketAddr::new(IpAddr::V4(ip), 0));
    match wait(timeout, Socket::connect(addr, from)).await {
        Wake::Done(result) => result,
        Wake::Timer => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
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
