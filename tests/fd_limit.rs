//! Running out of file descriptors: the server keeps serving the connections it has, does not
//! spin on `accept`, says so in the log, and accepts again once descriptors free up.
//!
//! Its own test binary, because it lowers the process's `RLIMIT_NOFILE` and installs a
//! process-wide log subscriber. The limit caps descriptor *numbers*, so the client's sockets
//! are moved above it before it is lowered: only the server's descriptors run out.

mod support;

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use squall::{App, Request};
use support::{config, start_with, Client};

/// Client sockets live at or above this descriptor number, out of the lowered limit's way.
const CLIENT_FDS_FROM: i32 = 1000;
/// Descriptors left to the server under the lowered limit: its connections.
const SERVER_CONNECTIONS: usize = 4;

async fn hello(_req: Request) -> &'static str {
    "hello"
}

/// An unconnected TCP socket whose descriptor is at least `CLIENT_FDS_FROM`.
fn high_socket() -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let low = socket.into_raw_fd();
    // SAFETY: duplicates a descriptor we own, then closes the original.
    let high = unsafe {
        let high = libc::fcntl(low, libc::F_DUPFD_CLOEXEC, CLIENT_FDS_FROM);
        libc::close(low);
        high
    };
    assert!(high >= CLIENT_FDS_FROM, "cannot move a socket up: {high}");
    // SAFETY: `high` is a new descriptor owned by nobody else.
    unsafe { Socket::from_raw_fd(high) }
}

fn connect(socket: Socket, addr: SocketAddr) -> Client {
    socket.connect(&addr.into()).expect("connect");
    Client::over(TcpStream::from(socket))
}

fn ask(client: &mut Client) -> u16 {
    client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let response = client.response();
    assert_eq!(response.text(), "hello");
    response.status
}

fn nofile_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writes into a local struct.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit");
    limit
}

fn set_nofile_limit(limit: libc::rlimit) {
    // SAFETY: reads a local struct.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// How many more descriptors this process may open now, found by opening them.
fn free_descriptors() -> usize {
    let mut probes = Vec::new();
    loop {
        // SAFETY: dup of stdin's descriptor number; a failure returns -1.
        let fd = unsafe { libc::dup(0) };
        if fd < 0 {
            break;
        }
        probes.push(fd);
    }
    for &fd in &probes {
        // SAFETY: closes the probes opened above.
        unsafe { libc::close(fd) };
    }
    probes.len()
}

/// Lowers the soft limit until exactly `wanted` descriptors are free.
fn leave_free(wanted: usize, original: libc::rlimit) {
    // SAFETY: dup/close of a descriptor number, to find the lowest free one.
    let lowest_free = unsafe {
        let fd = libc::dup(0);
        assert!(fd >= 0, "dup");
        libc::close(fd);
        fd as libc::rlim_t
    };
    let mut soft = lowest_free;
    loop {
        set_nofile_limit(libc::rlimit {
            rlim_cur: soft,
            rlim_max: original.rlim_max,
        });
        let free = free_descriptors();
        if free >= wanted {
            assert_eq!(free, wanted, "the limit opened too many at once");
            return;
        }
        soft += 1;
    }
}

/// The worker threads' statistics files, opened while descriptors are still free.
fn worker_stats() -> Vec<File> {
    let mut stats = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("tasks") {
        let path = task.expect("task").path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if name.trim_end().starts_with("squall-") {
            stats.push(File::open(path.join("stat")).expect("task stat"));
        }
    }
    assert!(!stats.is_empty(), "no worker threads found");
    stats
}

/// CPU time (user + system, in clock ticks) the workers have used so far.
fn cpu_ticks(stats: &[File]) -> u64 {
    stats
        .iter()
        .map(|file| {
            let mut buf = [0u8; 1024];
            let n = file.read_at(&mut buf, 0).expect("read task stat");
            let text = std::str::from_utf8(&buf[..n]).expect("ascii");
            // Fields after the parenthesised name: state is the first, utime the 12th.
            let after_name = &text[text.rfind(')').expect("stat format") + 1..];
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let ticks = |i: usize| fields[i].parse::<u64>().expect("number");
            ticks(11) + ticks(12)
        })
        .sum()
}

#[test]
fn at_the_descriptor_limit_the_server_serves_what_it_has_and_recovers() {
    let captured = support::CapturedLog::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let logged = || captured.text();
    let lines_with = |text: &str| logged().lines().filter(|l| l.contains(text)).count();

    // A connection limit no descriptor limit can meet, so the startup warning is certain.
    let limits = squall::Limits {
        max_connections_per_core: 1 << 40,
        ..squall::Limits::default()
    };
    let server = start_with(config().limits(limits), || App::new().get("/", hello));
    let startup = logged();
    assert!(
        startup.contains("descriptor limit") && startup.contains("room for"),
        "no descriptor capacity in the startup log: {startup}"
    );
    assert!(
        startup.contains("more than the descriptor limit leaves room for"),
        "no warning about max_connections_per_core: {startup}"
    );
    let addr = server.local_addr();
    let stats = worker_stats();
    let original = nofile_limit();
    // A soft limit of 1024 (a common default) leaves too little room above CLIENT_FDS_FROM.
    set_nofile_limit(libc::rlimit {
        rlim_cur: original.rlim_cur.max(original.rlim_max.min(4096)),
        rlim_max: original.rlim_max,
    });
    let mut spare_sockets: Vec<Socket> =
        (0..SERVER_CONNECTIONS + 4).map(|_| high_socket()).collect();
    let mut socket = || spare_sockets.pop().expect("enough sockets made");

    leave_free(SERVER_CONNECTIONS, original);

    // Fill the server's descriptors with keep-alive connections, each answered.
    let mut open: Vec<Client> = (0..SERVER_CONNECTIONS)
        .map(|_| connect(socket(), addr))
        .collect();
    for client in &mut open {
        assert_eq!(ask(client), 200);
    }

    // Two more complete the TCP handshake into the backlog, but the server cannot accept them.
    let mut waiting: Vec<Client> = (0..2).map(|_| connect(socket(), addr)).collect();
    for client in &mut waiting {
        client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        client.expect_open(Duration::from_millis(200));
    }

    // At the limit the workers sleep instead of retrying accept in a loop.
    let before = cpu_ticks(&stats);
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(&stats) - before;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second =
        u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).expect("clock ticks");
    assert!(
        spent * 10 <= ticks_per_second,
        "the workers used {spent} of {ticks_per_second} ticks in a second at the limit"
    );

    // The connections the server has are still served.
    for client in &mut open {
        assert_eq!(ask(client), 200);
    }

    // The condition was logged, and not once per failed accept.
    let log = logged();
    assert!(
        log.contains("cannot accept connections") && log.contains("Too many open files"),
        "no warning about the limit in {log}"
    );
    let warnings = lines_with("cannot accept connections");
    assert!(
        (1..=3).contains(&warnings),
        "{warnings} warnings in about a second and a half:\n{log}"
    );

    // Closing two connections frees two descriptors: the waiting clients are served.
    open.truncate(SERVER_CONNECTIONS - 2);
    for client in &mut waiting {
        let response = client.response();
        assert_eq!((response.status, response.text().as_str()), (200, "hello"));
    }
    assert!(
        logged().contains("accepting connections again"),
        "no recovery line in {}",
        logged()
    );

    // Full again; once one more closes, a new client gets in.
    open.truncate(SERVER_CONNECTIONS - 3);
    let mut late = connect(socket(), addr);
    assert_eq!(ask(&mut late), 200);
    for client in open.iter_mut().chain(&mut waiting) {
        assert_eq!(ask(client), 200);
    }

    set_nofile_limit(original);
    drop((open, waiting, late));
    drop(server);
}
