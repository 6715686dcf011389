//! Restarts that lose nothing: the running server hands its listening sockets to the next
//! process over a Unix socket ([`Config::handoff`](crate::Config::handoff), `SQUALL_HANDOFF`).
//!
//! ## Why hand the sockets over
//!
//! A new process started beside the old one on the same port
//! ([`PortSharing::Takeover`](crate::config::PortSharing)) binds listening sockets of its own,
//! and the kernel spreads new connections over both processes' sockets. When the old one
//! closes its listeners, the connections completed in their accept queues but not yet
//! accepted are reset. `scripts/restart-under-load.sh --mode reuseport` shows it under load
//! (BENCHMARKS.md, "Restarts"). Linux 5.14's `net.ipv4.tcp_migrate_req` would move them to
//! another socket of the group instead, but it is a host setting, off by default and out of
//! reach in most containers. Handing over the very sockets keeps every accept queue open
//! through the restart: the new process accepts from the same queues, and nothing is ever
//! closed.
//!
//! ## The exchange
//!
//! 1. A running server listens on the handoff path (mode 0600; a peer of another user is
//!    refused even if the mode lets it connect).
//! 2. A server started with the same path connects, and the old one sends one line,
//!    `squall-handoff 1 <pid> <count> <address>`, with its listening sockets attached
//!    (`SCM_RIGHTS`).
//! 3. The new server checks them (listening TCP sockets on its configured address), starts
//!    every core on them, takes the handoff path over for the next restart, and answers
//!    `ready <pid>`.
//! 4. The old server then stops accepting, turns `/readyz` to 503, lets its open connections
//!    finish as on `SIGTERM` — without the drain delay, since the port is never unserved —
//!    and exits.
//!
//! A new server that fails before step 3 closes its end; the old one never hears `ready`
//! and serves on as before.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::error::Error;

/// The first words of the offer line; the number is the version of the exchange.
const PROTOCOL: &str = "squall-handoff 1";
/// Most listening sockets one offer carries (one per core of the old server).
const MAX_LISTENERS: usize = 256;
/// Longest offer line: the protocol, a pid, a count and an address.
const MAX_OFFER_LINE: usize = 256;
/// How long the new server waits for the old one's offer; it is sent at once.
const OFFER_LIMIT: Duration = Duration::from_secs(10);
/// How long the old server waits for its successor to start every core (building each
/// core's application may connect to databases) before it gives up and serves on.
const SUCCESSOR_START_LIMIT: Duration = Duration::from_secs(120);
/// How often the offering thread looks up from a blocking wait to see if it should stop.
const WAKE_INTERVAL: Duration = Duration::from_millis(100);

/// The server whose listening sockets this one took over; it stops accepting once told.
#[derive(Debug)]
pub(crate) struct Predecessor {
    stream: UnixStream,
    pid: u32,
}

/// Takes the listening sockets of the server listening on `path`, if there is one; `None`
/// when nobody listens there (no file, or a socket a stopped server left behind).
pub(crate) fn take_over(
    path: &Path,
    addr: SocketAddr,
) -> Result<Option<(Vec<socket2::Socket>, Predecessor)>, Error> {
    let where_ = path.display();
    let stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(Error::startup(format!(
                "cannot reach the handoff socket {where_} (SQUALL_HANDOFF): {e}"
            )))
        }
    };
    let failed = |why: String| {
        Error::startup(format!(
            "taking the listening sockets over from the server at {where_} (SQUALL_HANDOFF) \
             failed: {why}"
        ))
    };
    stream
        .set_read_timeout(Some(OFFER_LIMIT))
        .map_err(|e| failed(e.to_string()))?;
    let (line, fds) = receive_offer(&stream).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => failed(
            "it closed the connection without an offer: it is shutting down or another \
             server is taking over; start this one once it has exited"
                .to_owned(),
        ),
        _ => failed(e.to_string()),
    })?;
    let offer = Offer::parse(&line).ok_or_else(|| failed(format!("unexpected offer {line:?}")))?;
    if fds.len() != offer.count {
        return Err(failed(format!(
            "{} sockets arrived of the {} offered",
            fds.len(),
            offer.count
        )));
    }
    if !same_address(offer.addr, addr) {
        return Err(failed(format!(
            "it listens on {}, and this server is configured for {addr}",
            offer.addr
        )));
    }
    let mut sockets = Vec::with_capacity(fds.len());
    for fd in fds {
        let socket = socket2::Socket::from(fd);
        super::listen::prepare_adopted(&socket).map_err(failed)?;
        sockets.push(socket);
    }
    Ok(Some((
        sockets,
        Predecessor {
            stream,
            pid: offer.pid,
        },
    )))
}

/// Whether a socket bound to `offered` serves `configured`; port 0 asks for any port.
fn same_address(offered: SocketAddr, configured: SocketAddr) -> bool {
    offered.ip() == configured.ip()
        && (configured.port() == 0 || offered.port() == configured.port())
}

impl Predecessor {
    /// The old server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Tells the old server that every core of this one accepts: it stops and drains.
    pub(crate) fn release(mut self) {
        let ready = format!("ready {}\n", std::process::id());
        if let Err(e) = self.stream.write_all(ready.as_bytes()) {
            tracing::warn!(
                target: "squall::server",
                "could not tell process {} that this server is ready ({e}); it may still be \
                 accepting on the same sockets — stop it with SIGTERM",
                self.pid
            );
        }
    }
}

/// Reads the offer line and the descriptors attached to it.
fn receive_offer(stream: &UnixStream) -> io::Result<(String, Vec<OwnedFd>)> {
    let mut line = Vec::with_capacity(MAX_OFFER_LINE);
    let mut fds = Vec::new();
    let mut control = nix::cmsg_space!([RawFd; MAX_LISTENERS]);
    let mut chunk = [0u8; MAX_OFFER_LINE];
    while !line.contains(&b'\n') {
        if line.len() >= MAX_OFFER_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the offer line is too long",
            ));
        }
        let mut iov = [IoSliceMut::new(&mut chunk)];
        let received = socket::recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let bytes = received.bytes;
        // SAFETY (for each descriptor): the kernel just installed it in this process for
        // us, and nothing else knows its number, so it is ours to own and close.
        let owned = |fd: RawFd| unsafe { OwnedFd::from_raw_fd(fd) };
        let mut truncated = false;
        match received.cmsgs() {
            Ok(cmsgs) => {
                for cmsg in cmsgs {
                    if let ControlMessageOwned::ScmRights(passed) = cmsg {
                        fds.extend(passed.into_iter().map(owned));
                    }
                }
            }
            Err(_) => truncated = true,
        }
        if truncated {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {MAX_LISTENERS} sockets were offered"),
            ));
        }
        if bytes == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        line.extend_from_slice(&chunk[..bytes]);
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let line = String::from_utf8_lossy(&line[..end]).into_owned();
    Ok((line, fds))
}

/// What the old server offers.
#[derive(Debug, PartialEq, Eq)]
struct Offer {
    pid: u32,
    count: usize,
    addr: SocketAddr,
}

impl Offer {
    fn line(&self) -> String {
        format!("{PROTOCOL} {} {} {}\n", self.pid, self.count, self.addr)
    }

    fn parse(line: &str) -> Option<Offer> {
        let rest = line.strip_prefix(PROTOCOL)?.strip_prefix(' ')?;
        let mut words = rest.split(' ');
        let offer = Offer {
            pid: words.next()?.parse().ok()?,
            count: words.next()?.parse().ok()?,
            addr: words.next()?.parse().ok()?,
        };
        (words.next().is_none() && offer.count <= MAX_LISTENERS).then_some(offer)
    }
}

/// A running server's handoff socket: a thread that waits for a successor, gives it the
/// listening sockets and, once it is ready, calls the server's stop. Dropping it stops the
/// thread and removes the socket file if it is still this server's.
#[derive(Debug)]
pub(crate) struct HandoffSocket {
    path: PathBuf,
    inode: u64,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Listens on `path` for the next server and offers it `listeners` (duplicates of what the
/// cores accept on). `on_taken` runs with the successor's pid once it is ready.
pub(crate) fn listen(
    path: &Path,
    listeners: Vec<socket2::Socket>,
    addr: SocketAddr,
    on_taken: impl FnOnce(u32) + Send + 'static,
) -> Result<HandoffSocket, Error> {
    let where_ = path.display();
    let cannot = |why: &dyn std::fmt::Display| {
        Error::startup(format!(
            "cannot listen on the handoff socket {where_} (SQUALL_HANDOFF): {why}"
        ))
    };
    match std::fs::symlink_metadata(path) {
        // A server that stopped left it behind, or the predecessor whose sockets this one
        // took: both done with it.
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| cannot(&e))?
        }
        Ok(_) => {
            return Err(cannot(
                &"the path exists and is not a socket; remove it or choose another path",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(cannot(&e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| cannot(&e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| cannot(&e))?;
    let inode = std::fs::symlink_metadata(path)
        .map_err(|e| cannot(&e))?
        .ino();
    // Accept waits at most WAKE_INTERVAL, so the thread sees `closing` promptly.
    socket2::SockRef::from(&listener)
        .set_read_timeout(Some(WAKE_INTERVAL))
        .map_err(|e| cannot(&e))?;
    let closing = Arc::new(AtomicBool::new(false));
    let offer = Offer {
        pid: std::process::id(),
        count: listeners.len(),
        addr,
    };
    let thread = {
        let closing = Arc::clone(&closing);
        std::thread::Builder::new()
            .name("squall-handoff".to_owned())
            .spawn(move || serve_successors(&listener, &listeners, &offer, &closing, on_taken))
            .map_err(|e| cannot(&e))?
    };
    Ok(HandoffSocket {
        path: path.to_owned(),
        inode,
        closing,
        thread: Some(thread),
    })
}

/// Waits for successors until one is ready (then calls `on_taken`) or the server stops.
fn serve_successors(
    listener: &UnixListener,
    listeners: &[socket2::Socket],
    offer: &Offer,
    closing: &AtomicBool,
    on_taken: impl FnOnce(u32),
) {
    while !closing.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::warn!(target: "squall::server", "handoff socket: accept failed: {e}");
                std::thread::sleep(WAKE_INTERVAL);
                continue;
            }
        };
        match hand_over(&stream, listeners, offer, closing) {
            Ok(pid) => {
                tracing::info!(
                    target: "squall::server",
                    "process {pid} took over the listening sockets (SQUALL_HANDOFF); \
                     draining the open connections, then exiting"
                );
                on_taken(pid);
                return;
            }
            Err(e) => tracing::warn!(
                target: "squall::server",
                "a restart through the handoff socket did not complete: {e}; serving on"
            ),
        }
    }
}

/// Gives one successor the listening sockets and waits until it says it is ready.
fn hand_over(
    stream: &UnixStream,
    listeners: &[socket2::Socket],
    offer: &Offer,
    closing: &AtomicBool,
) -> io::Result<u32> {
    let peer =
        socket::getsockopt(stream, socket::sockopt::PeerCredentials).map_err(io::Error::from)?;
    // SAFETY: geteuid cannot fail and touches no memory.
    let own_uid = unsafe { libc::geteuid() };
    if peer.uid() != own_uid && peer.uid() != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "process {} runs as user {}, not this server's user {own_uid}",
                peer.pid(),
                peer.uid()
            ),
        ));
    }
    let fds: Vec<RawFd> = listeners.iter().map(AsRawFd::as_raw_fd).collect();
    let line = offer.line();
    let sent = socket::sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(line.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(io::Error::from)?;
    if sent != line.len() {
        // A line this short goes in one piece on a Unix socket; anything else is a broken peer.
        return Err(io::Error::other("the offer was cut short"));
    }
    let mut stream = stream;
    stream.set_read_timeout(Some(WAKE_INTERVAL))?;
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 64];
    loop {
        if closing.load(Ordering::Relaxed) {
            return Err(io::Error::other("this server is stopping"));
        }
        if started.elapsed() > SUCCESSOR_START_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "process {} was not ready within {} s",
                    peer.pid(),
                    SUCCESSOR_START_LIMIT.as_secs()
                ),
            ));
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("process {} stopped before it was ready", peer.pid()),
                ))
            }
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
        if let Some(end) = answer.iter().position(|&b| b == b'\n') {
            let pid = std::str::from_utf8(&answer[..end])
                .ok()
                .and_then(|l| l.strip_prefix("ready "))
                .and_then(|pid| pid.parse().ok());
            return pid.ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "unexpected answer to the offer")
            });
        }
        if answer.len() > MAX_OFFER_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the answer is too long",
            ));
        }
    }
}

impl Drop for HandoffSocket {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // After a handoff the path holds the successor's socket: leave it.
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_line_reads_back() {
        let offer = Offer {
            pid: 4242,
            count: 2,
            addr: "[::1]:8080".parse().expect("literal"),
        };
        assert_eq!(Offer::parse(offer.line().trim_end()), Some(offer));
    }

    #[test]
    fn foreign_or_malformed_offers_are_refused() {
        for line in [
            "",
            "squall-handoff 2 1 1 127.0.0.1:80",
            "squall-handoff 1 x 1 127.0.0.1:80",
            "squall-handoff 1 1 1 localhost:80",
            "squall-handoff 1 1 1 127.0.0.1:80 extra",
            "squall-handoff 1 1 100000 127.0.0.1:80",
        ] {
            assert_eq!(Offer::parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn port_zero_takes_the_port_offered() {
        let offered: SocketAddr = "127.0.0.1:8080".parse().expect("literal");
        assert!(same_address(
            offered,
            "127.0.0.1:0".parse().expect("literal")
        ));
        assert!(same_address(offered, offered));
        assert!(!same_address(
            offered,
            "127.0.0.1:9090".parse().expect("literal")
        ));
        assert!(!same_address(
            offered,
            "0.0.0.0:8080".parse().expect("literal")
        ));
    }
}
