//! Where a core's connections come from: binding its listening socket and accepting on it.
//!
//! Listening sockets are built with socket2 so the backlog is ours to choose (glommio's own
//! `bind` hard-codes 1024) and each core gets its own `SO_REUSEPORT` socket. Each accepted
//! connection gets a task of its own, counted by the core's gate and shielded from panics.
//!
//! ## When accepting fails
//!
//! Out of descriptors (`EMFILE`, `ENFILE`) or kernel memory (`ENOBUFS`, `ENOMEM`), `accept`
//! fails at once for as long as the condition lasts, and the listener stays readable, so
//! retrying straight away would spin a core. The loop instead pauses — until one of this
//! core's connections closes (giving back a descriptor) or a short, growing timer runs out
//! (descriptors freed elsewhere: another core, the file cache, a database pool) — while
//! the core goes on serving the connections it has. It says so at most once a second, with
//! how many accepts failed, and once more when it accepts again.
//!
//! Connections that arrive meanwhile wait in the kernel's backlog and are served when
//! descriptors free up. Some servers keep a spare descriptor to accept such a connection
//! and close it at once; squall does not: a closed connection is an error for the client,
//! whereas a wait in the backlog usually ends within a keep-alive timeout, and the backlog
//! is bounded (`Config::backlog`) so a long outage still turns new clients away at the
//! TCP level. A spare descriptor would also race: the cores share one descriptor table, so
//! another core could take the descriptor freed for the accept-and-close.
//!
//! Errors that belong to one connection (it was reset while queued, a network error on it)
//! are skipped at once: each consumed a backlog entry, so they cannot repeat forever.

use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use socket2::{Domain, Protocol, Type};

use super::conn;
use super::core::Core;
use crate::config::PortSharing;
use crate::error::Error;
use crate::net::{Listener, Socket};
use crate::per_core::Traffic;
use crate::request::Peer;

/// Binds one listener per worker, all on the same address. With port 0 the first bind picks
/// the port and the others join it. Unless `sharing` is `Takeover`, an address another
/// socket already listens on is refused first (see `refuse_if_served`).
pub(crate) fn bind_all(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
    sharing: PortSharing,
) -> Result<Vec<socket2::Socket>, Error> {
    if sharing == PortSharing::Exclusive {
        refuse_if_served(addr)?;
    }
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let socket = bind_one(addr, backlog).map_err(|e| describe_bind_error(addr, e))?;
        if addr.port() == 0 {
            let bound = socket
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .ok_or_else(|| Error::startup(format!("cannot read the port bound for {addr}")))?;
            addr.set_port(bound.port());
        }
        sockets.push(socket);
    }
    Ok(sockets)
}

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START`).
const FIRST_PASSED_FD: i32 = 3;

/// Whether this process has taken its passed sockets already: they are adopted once.
static ADOPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The listening sockets a service manager passed (systemd's socket activation:
/// `LISTEN_FDS` descriptors from 3, for the process `LISTEN_PID`), one per worker, or `None`
/// when none were passed (then the server binds its own).
///
/// One passed socket serves every core: each gets a duplicate, so they share one accept
/// queue. As many sockets as workers (a socket unit listing the address once per worker
/// with `ReusePort=yes`) keep one accept queue per core. Any other count, a `LISTEN_PID`
/// that is not this process, or a descriptor that is not a listening TCP socket is a
/// startup error.
pub(crate) fn passed_listeners(workers: usize) -> Result<Option<Vec<socket2::Socket>>, Error> {
    let Ok(count) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    let count: usize = count.trim().parse().map_err(|_| {
        Error::config(format!(
            "LISTEN_FDS={count:?} is not a number of descriptors"
        ))
    })?;
    match std::env::var("LISTEN_PID") {
        Ok(pid) if pid.trim() == std::process::id().to_string() => {}
        Ok(pid) => {
            return Err(Error::config(format!(
                "LISTEN_FDS is meant for process {pid} (LISTEN_PID), not this one ({}); \
                 unset it or start the server from the service manager",
                std::process::id()
            )))
        }
        Err(_) => return Err(Error::config("LISTEN_FDS is set without LISTEN_PID")),
    }
    if count == 0 {
        return Ok(None);
    }
    if count != 1 && count != workers {
        return Err(Error::config(format!(
            "{count} listening sockets were passed (LISTEN_FDS) for {workers} workers; pass \
             one, or one per worker (SQUALL_WORKERS={count})"
        )));
    }
    if ADOPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::config(
            "the listening sockets passed by LISTEN_FDS belong to the first server started",
        ));
    }
    let mut passed = Vec::with_capacity(count);
    for offset in 0..count {
        let fd = FIRST_PASSED_FD + offset as i32;
        passed.push(adopt_listener(fd)?);
    }
    tracing::info!(
        target: "squall::server",
        "serving {count} listening socket(s) passed by the service manager (LISTEN_FDS)"
    );
    // One socket is shared by every core: `spread_over_cores` duplicates it.
    Ok(Some(passed))
}

/// Takes over descriptor `fd`, which must be a listening TCP socket.
fn adopt_listener(fd: i32) -> Result<socket2::Socket, Error> {
    use std::os::fd::FromRawFd;
    // SAFETY: fstat on any integer is harmless; it tells whether `fd` is open at all.
    let open = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut stat) == 0 && (stat.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    };
    if !open {
        return Err(Error::config(format!(
            "descriptor {fd} passed by LISTEN_FDS is not an open socket"
        )));
    }
    // SAFETY: the service manager passed `fd` to this process for it to own, and ADOPTED
    // makes sure it is taken once.
    let socket = unsafe { socket2::Socket::from_raw_fd(fd) };
    if let Err(why) = prepare_adopted(&socket) {
        // Not ours to close: leave the descriptor to whoever passed it.
        std::mem::forget(socket);
        return Err(Error::config(format!(
            "descriptor {fd} passed by LISTEN_FDS: {why}"
        )));
    }
    Ok(socket)
}

/// Checks that a socket another process gave us (a service manager, or the server whose
/// listeners a restart takes over) is a listening TCP socket, and sets it up like ours.
pub(crate) fn prepare_adopted(socket: &socket2::Socket) -> Result<(), String> {
    let listening = socket.is_listener().unwrap_or(false);
    let tcp = matches!(socket.r#type(), Ok(t) if t == Type::STREAM)
        && socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some();
    if !listening || !tcp {
        return Err("not a listening TCP socket".to_owned());
    }
    socket
        .set_cloexec(true)
        .and_then(|()| socket.set_nonblocking(true))
        .and_then(|()| socket.set_tcp_nodelay(true))
        .map_err(|e| format!("cannot prepare it: {e}"))
}

/// Fails with "address in use" when a socket already listens on `addr`, even one that would
/// share it: our listeners set `SO_REUSEPORT`, so binding them alone would quietly join
/// another server's and split its traffic.
///
/// The probe binds a socket with `SO_REUSEADDR` but without `SO_REUSEPORT`. Linux refuses
/// that bind while any socket listens on an overlapping address (the wildcard included),
/// and allows it beside sockets that do not listen: the connections a previous instance
/// left in `TIME_WAIT` or is still draining after closing its listener, which must not
/// stop a restart. The probe is closed before the listeners bind, because holding it
/// would not exclude anyone: a second probe with `SO_REUSEADDR` binds beside one that
/// does not listen.
///
/// What remains racy: two servers starting at the same moment can both probe before
/// either listens, and then both start. The window is the few system calls between the
/// probe and the first `listen` (microseconds), so it guards against the real mistake — an
/// old instance left running — not against two started together. Port 0 is not probed:
/// the kernel picks a port that no `SO_REUSEPORT` socket holds.
fn refuse_if_served(addr: SocketAddr) -> Result<(), Error> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = || -> io::Result<()> {
        let socket =
            socket2::Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_cloexec(true)?;
        socket.bind(&addr.into())
    };
    match probe() {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(Error::startup(format!(
            "cannot listen on {addr}: address in use: another server already listens on it; \
             stop it, or if this is the new half of a restart set \
             SQUALL_PORT_SHARING=takeover (Config::port_sharing) to start beside it"
        ))),
        // Other failures (a foreign address, a privileged port) are the listeners' to
        // report, in the same words as when sharing.
        _ => Ok(()),
    }
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<socket2::Socket> {
    let socket =
        socket2::Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    // Accepted connections inherit it, so it costs no system call per connection: responses
    // are flushed in one write per batch, and Nagle would only add latency.
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    socket.listen(backlog)?;
    Ok(socket)
}

fn describe_bind_error(addr: SocketAddr, err: io::Error) -> Error {
    let why = match err.kind() {
        io::ErrorKind::AddrInUse => {
            "the address is already in use by a process that does not share it".to_owned()
        }
        io::ErrorKind::AddrNotAvailable => "the address does not belong to this machine".to_owned(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges)".to_owned()
        }
        _ => err.to_string(),
    };
    Error::startup(format!("cannot listen on {addr}: {why}"))
}

/// The first pause after a failed accept; doubled on each failure in a row.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause: how late the loop may notice descriptors freed outside this core.
const LONGEST_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning per interval while accepts keep failing.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Accepts connections until shutdown, then drains what the kernel already queued.
///
/// A core usually has one listener; after a restart that took over more sockets than this
/// server has cores ([`handoff`](super::handoff)), some cores accept on several.
pub(crate) async fn accept_loop(
    core: Rc<Core>,
    listeners: &[Listener],
    shutdown: impl std::future::Future<Output = ()>,
) {
    let limit = core.config.limits.max_connections_per_core;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failures = Failures::default();
    // Errors about one connection in a row: a few are the kernel's news of connections that
    // died in the queue; an endless run (a seccomp profile refusing accept4 fails every
    // call at once, leaving the connection queued) must not spin without ever yielding.
    let mut one_connection_errors = 0u32;
    loop {
        let ready = futures_lite::future::or(
            async {
                // At the connection limit, wait for one to close before accepting more.
                core.below_connection_limit(limit).await;
                Some(accept_any(listeners).await)
            },
            async {
                (&mut shutdown).await;
                None
            },
        )
        .await;
        let Some(accepted) = ready else { break };
        let err = match accepted {
            Ok((stream, peer)) => {
                if let Some(outage) = failures.succeeded(Instant::now()) {
                    tracing::info!(
                        target: "squall::server",
                        core = crate::cores::current(),
                        failed = outage.failed,
                        "accepting connections again after {:.1} s in which {} accepts failed",
                        outage.lasted.as_secs_f64(),
                        outage.failed,
                    );
                }
                Traffic::add(&core.traffic.accepted, 1);
                one_connection_errors = 0;
                spawn_connection(Rc::clone(&core), stream, peer);
                continue;
            }
            Err(e) => e,
        };
        if is_about_one_connection(&err) && one_connection_errors < MAX_ONE_CONNECTION_ERRORS {
            one_connection_errors += 1;
            continue;
        }
        Traffic::add(&core.traffic.accept_failures, 1);
        let (pause, report) = failures.failed(Instant::now());
        match report {
            Some(Report::Began) => tracing::warn!(
                target: "squall::server",
                core = crate::cores::current(),
                "cannot accept connections: {err}; serving the open ones and retrying as \
                 descriptors free up",
            ),
            Some(Report::Continues { failed, over }) => tracing::warn!(
                target: "squall::server",
                core = crate::cores::current(),
                failed,
                "still cannot accept connections: {err}; {failed} accepts failed in the last \
                 {:.1} s",
                over.as_secs_f64(),
            ),
            None => {}
        }
        let resumed = futures_lite::future::or(
            async {
                futures_lite::future::or(glommio::timer::sleep(pause), core.connection_closed())
                    .await;
                true
            },
            async {
                (&mut shutdown).await;
                false
            },
        )
        .await;
        if !resumed {
            break;
        }
    }
    // Connections the kernel completed before shutdown are ours to answer.
    for listener in listeners {
        while let Some(Ok((stream, peer))) =
            futures_lite::future::poll_once(listener.accept()).await
        {
            Traffic::add(&core.traffic.accepted, 1);
            spawn_connection(Rc::clone(&core), stream, peer);
        }
    }
}

/// The next connection (or error) from any of `listeners`, taking them in turn so that a
/// busy one does not starve the others.
async fn accept_any(listeners: &[Listener]) -> io::Result<(Socket, Option<SocketAddr>)> {
    if let [listener] = listeners {
        return listener.accept().await;
    }
    let mut first = 0;
    std::future::poll_fn(|cx| {
        for offset in 0..listeners.len() {
            let index = (first + offset) % listeners.len();
            if let std::task::Poll::Ready(accepted) = listeners[index].poll_accept(cx) {
                first = index + 1;
                return std::task::Poll::Ready(accepted);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Shares `sockets` out over `cores`: core `i` gets sockets `i`, `i + cores`, and so on;
/// with fewer sockets than cores, the cores left over accept on a duplicate of one (a
/// shared accept queue).
pub(crate) fn spread_over_cores(
    sockets: Vec<socket2::Socket>,
    cores: usize,
) -> Result<Vec<Vec<socket2::Socket>>, Error> {
    let count = sockets.len();
    if count == 0 {
        return Err(Error::startup("no listening socket to serve"));
    }
    let mut per_core: Vec<Vec<socket2::Socket>> = (0..cores).map(|_| Vec::new()).collect();
    for (index, socket) in sockets.into_iter().enumerate() {
        per_core[index % cores].push(socket);
    }
    for index in count..cores {
        let shared = per_core[index % count][0]
            .try_clone()
            .map_err(|e| Error::io("cannot duplicate a listening socket for a core", e))?;
        per_core[index].push(shared);
    }
    Ok(per_core)
}

/// How many errors about single connections in a row are retried at once before the next
/// is handled like any failure (logged, and retried after a pause).
const MAX_ONE_CONNECTION_ERRORS: u32 = 64;

/// Whether `err` concerns only the connection being accepted (reset while it waited, a
/// network error on it), so the next accept may succeed at once. Linux's accept(2) asks
/// for these to be retried like `EAGAIN`.
fn is_about_one_connection(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EINTR
                | libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::ETIMEDOUT
                | libc::EAFNOSUPPORT
        )
    )
}

/// Accepts failing in a row (out of descriptors or memory, or anything unexpected — a
/// failure nobody understands is no reason to spin either): how long to pause, and what to
/// report.
#[derive(Debug, Default)]
struct Failures {
    outage: Option<Outage>,
}

#[derive(Debug)]
struct Outage {
    began: Instant,
    failed: u64,
    next_pause: Duration,
    last_report: Instant,
    failed_since_report: u64,
}

/// What to log about a failed accept.
#[derive(Debug, PartialEq, Eq)]
enum Report {
    /// Accepting just started failing.
    Began,
    /// Accepts have kept failing: `failed` of them over the last `over`.
    Continues { failed: u64, over: Duration },
}

/// An outage that ended.
#[derive(Debug, PartialEq, Eq)]
struct Ended {
    failed: u64,
    lasted: Duration,
}

impl Failures {
    /// Records a failed accept at `now`: how long to pause before the next, and whether to
    /// log (at most once per `REPORT_INTERVAL`).
    fn failed(&mut self, now: Instant) -> (Duration, Option<Report>) {
        let Some(outage) = &mut self.outage else {
            self.outage = Some(Outage {
                began: now,
                failed: 1,
                next_pause: (FIRST_PAUSE * 2).min(LONGEST_PAUSE),
                last_report: now,
                failed_since_report: 0,
            });
            return (FIRST_PAUSE, Some(Report::Began));
        };
        outage.failed += 1;
        outage.failed_since_report += 1;
        let pause = outage.next_pause;
        outage.next_pause = (pause * 2).min(LONGEST_PAUSE);
        let over = now.saturating_duration_since(outage.last_report);
        if over < REPORT_INTERVAL {
            return (pause, None);
        }
        let failed = std::mem::take(&mut outage.failed_since_report);
        outage.last_report = now;
        (pause, Some(Report::Continues { failed, over }))
    }

    /// Records a successful accept at `now`; returns the outage it ends, if any.
    fn succeeded(&mut self, now: Instant) -> Option<Ended> {
        self.outage.take().map(|outage| Ended {
            failed: outage.failed,
            lasted: now.saturating_duration_since(outage.began),
        })
    }
}

/// Spawns the task serving one connection, counted by the core's gate and shielded from
/// panics so that a bug in one connection never takes down the core. A connection without
/// an IP peer came through the Unix socket.
fn spawn_connection(core: Rc<Core>, stream: Socket, peer: Option<SocketAddr>) {
    let peer = peer.map_or(Peer::Unix, Peer::Ip);
    let Ok(pass) = core.connections.enter() else {
        return; // The gate closed: shutdown finished counting connections.
    };
    // Each kind of connection is its own task type, so that a plain connection's future
    // does not grow by the size of the TLS handshake.
    #[cfg(feature = "tls")]
    if let Some(config) = core.tls() {
        spawn_guarded(pass, super::tls::serve(core, stream, peer, config));
        return;
    }
    spawn_guarded(pass, conn::serve(core, stream, peer));
}

/// Runs a connection's task with its pass through the shutdown gate, logging a panic.
fn spawn_guarded(
    pass: glommio::sync::Pass,
    connection: impl std::future::Future<Output = ()> + 'static,
) {
    glommio::spawn_local(async move {
        let _pass = pass;
        if let Err(panic) = AssertUnwindSafe(connection).catch_unwind().await {
            let what = crate::error::panic_message(&*panic);
            tracing::error!(target: "squall::server", "connection task panicked: {what}");
        }
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_a_ceiling_and_reset_after_a_success() {
        let start = Instant::now();
        let mut failures = Failures::default();
        let pauses: Vec<Duration> = (0..6).map(|_| failures.failed(start).0).collect();
        let ms: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [10, 20, 40, 80, 100, 100]);
        let ended = failures.succeeded(start + Duration::from_millis(300));
        assert_eq!(
            ended,
            Some(Ended {
                failed: 6,
                lasted: Duration::from_millis(300)
            })
        );
        assert_eq!(failures.failed(start).0, FIRST_PAUSE);
        assert_eq!(failures.succeeded(start).map(|e| e.failed), Some(1));
        assert_eq!(failures.succeeded(start), None, "no outage to end");
    }

    #[test]
    fn an_outage_is_reported_when_it_begins_then_once_a_second_with_a_count() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut failures = Failures::default();
        assert_eq!(failures.failed(at(0)).1, Some(Report::Began));
        let mut reports = Vec::new();
        for ms in (50..=2500).step_by(50) {
            if let Some(report) = failures.failed(at(ms)).1 {
                reports.push((ms, report));
            }
        }
        assert_eq!(
            reports,
            [
                (
                    1000,
                    Report::Continues {
                        failed: 20,
                        over: Duration::from_secs(1)
                    }
                ),
                (
                    2000,
                    Report::Continues {
                        failed: 20,
                        over: Duration::from_secs(1)
                    }
                ),
            ]
        );
    }

    #[test]
    fn errors_about_one_connection_are_told_from_exhaustion() {
        let os = io::Error::from_raw_os_error;
        for code in [libc::ECONNABORTED, libc::EINTR, libc::EPROTO] {
            assert!(is_about_one_connection(&os(code)), "{code}");
        }
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(!is_about_one_connection(&os(code)), "{code}");
        }
        assert!(!is_about_one_connection(&io::Error::other("unexplained")));
    }

    #[test]
    fn port_zero_binds_every_core_to_one_port() {
        let sockets = bind_all(
            "127.0.0.1:0".parse().expect("literal"),
            3,
            128,
            PortSharing::Exclusive,
        )
        .expect("bind");
        let ports: Vec<u16> = sockets
            .iter()
            .map(|s| {
                s.local_addr()
                    .expect("bound")
                    .as_socket()
                    .expect("inet")
                    .port()
            })
            .collect();
        assert!(ports.iter().all(|&p| p == ports[0] && p != 0), "{ports:?}");
    }

    #[test]
    fn address_in_use_is_explained() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = held.local_addr().expect("bound");
        let err = bind_all(addr, 1, 128, PortSharing::Exclusive).expect_err("in use");
        assert!(err.to_string().contains("address in use"), "{err}");
        // A listener that does not share the port refuses a takeover too.
        let err = bind_all(addr, 1, 128, PortSharing::Takeover).expect_err("not shared");
        assert!(err.to_string().contains("already in use"), "{err}");
    }

    fn port_of(sockets: &[socket2::Socket]) -> SocketAddr {
        sockets[0]
            .local_addr()
            .expect("bound")
            .as_socket()
            .expect("inet")
    }

    #[test]
    fn a_served_port_is_refused_unless_taking_over() {
        let loopback = "127.0.0.1:0".parse().expect("literal");
        let first = bind_all(loopback, 2, 128, PortSharing::Exclusive).expect("first");
        let addr = port_of(&first);
        let err = bind_all(addr, 2, 128, PortSharing::Exclusive).expect_err("served");
        let message = err.to_string();
        assert!(
            message.contains("address in use") && message.contains(&addr.to_string()),
            "{message}"
        );
        // The wildcard address overlaps the loopback listener.
        let wildcard = SocketAddr::from(([0, 0, 0, 0], addr.port()));
        let err = bind_all(wildcard, 1, 128, PortSharing::Exclusive).expect_err("overlaps");
        assert!(err.to_string().contains("address in use"), "{err}");
        let second = bind_all(addr, 2, 128, PortSharing::Takeover).expect("takeover");
        assert_eq!(port_of(&second), addr);
    }

    #[test]
    fn sockets_taken_over_are_shared_out_over_any_number_of_cores() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal");
        let port_of = |s: &socket2::Socket| {
            s.local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .map(|a| a.port())
        };
        // Three sockets over two cores: one core accepts on two of them.
        let three = bind_all(addr, 3, 16, PortSharing::Exclusive).expect("bind");
        let spread = spread_over_cores(three, 2).expect("spread");
        assert_eq!(spread.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        // One socket over three cores: the others share its accept queue.
        let one = bind_all(addr, 1, 16, PortSharing::Exclusive).expect("bind");
        let port = port_of(&one[0]);
        let spread = spread_over_cores(one, 3).expect("spread");
        assert_eq!(spread.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
        assert!(spread.iter().all(|core| port_of(&core[0]) == port));
        assert!(spread_over_cores(Vec::new(), 2).is_err());
    }

    #[test]
    fn connections_a_previous_server_left_do_not_block_a_restart() {
        let loopback = "127.0.0.1:0".parse().expect("literal");
        let old = bind_all(loopback, 1, 128, PortSharing::Exclusive).expect("old");
        let addr = port_of(&old);
        let listener = std::net::TcpListener::from(old.into_iter().next().expect("one listener"));
        listener.set_nonblocking(false).expect("blocking");
        let closed_client = std::net::TcpStream::connect(addr).expect("connect");
        let (closed, _) = listener.accept().expect("accept");
        // Closed by the server first: its side waits in TIME_WAIT on the port.
        drop(closed);
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(closed_client);
        let _draining_client = std::net::TcpStream::connect(addr).expect("connect");
        let (draining, _) = listener.accept().expect("accept");
        // The old server stops listening and goes on draining a connection.
        drop(listener);
        let new = bind_all(addr, 1, 128, PortSharing::Exclusive).expect("restart");
        assert_eq!(port_of(&new), addr);
        drop(draining);
    }

    #[test]
    fn only_a_listening_tcp_socket_is_adopted() {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open("/proc/self/status").expect("a file");
        let error = adopt_listener(file.as_raw_fd()).expect_err("a file");
        assert!(error.to_string().contains("not an open socket"), "{error}");
        let idle = socket2::Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let error = adopt_listener(idle.as_raw_fd()).expect_err("not listening");
        assert!(
            error.to_string().contains("not a listening TCP socket"),
            "{error}"
        );
        // Refused descriptors stay with their owner, open.
        assert!(idle.r#type().is_ok());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let fd = std::os::fd::IntoRawFd::into_raw_fd(listener);
        let adopted = adopt_listener(fd).expect("a listening socket");
        assert!(adopted.nonblocking().expect("flags"));
    }
}
