//! The server as a process: what SIGTERM and SIGHUP do to `Server::serve`, how a startup
//! error ends the process, and restarts through the handoff socket (`SQUALL_HANDOFF`).
//!
//! Signals go to a whole process, so each test runs a server in a child: this test binary
//! started again with `SQUALL_TEST_CHILD` set, running only `child_server`, which serves a
//! hello-like application with `Server::serve` under the test harness's own threads (which
//! do not block the signals, like threads an application starts before serving). The
//! parent reads the child's log from its stderr.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use squall::{App, Error, Request, Response, Server};
use support::Client;

/// Set in the child's environment: `child_server` serves only when it is.
const CHILD: &str = "SQUALL_TEST_CHILD";

/// Set in the child's environment: it refuses itself `io_uring_setup` before serving, the
/// way a container's default seccomp profile does.
const DENY_IO_URING: &str = "SQUALL_TEST_DENY_IO_URING";

/// Set in the child's environment: its application factory fails, after the listening
/// sockets are taken (a new release that cannot start).
const FAIL_APP: &str = "SQUALL_TEST_FAIL_APP";

/// The child: this binary, running only `child_server`.
const CHILD_ARGS: [&str; 4] = ["child_server", "--exact", "--nocapture", "--test-threads=1"];

/// systemd's tool for trying socket activation by hand (Debian's `systemd` package).
const SOCKET_ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

async fn hello(_req: Request) -> &'static str {
    "hello"
}

async fn pid(_req: Request) -> String {
    std::process::id().to_string()
}

async fn echo(mut req: Request) -> Result<Response, Error> {
    let body = req.bytes().await?;
    Ok(Response::with_body(squall::response::OCTET_STREAM, body))
}

/// Not a test of its own: the child's server (see the module docs). Configured from the
/// `SQUALL_*` variables the parent sets.
#[test]
fn child_server() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    if std::env::var_os(DENY_IO_URING).is_some() {
        refuse_io_uring_setup();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter("squall=debug")
        .init();
    let fail_app = std::env::var_os(FAIL_APP).is_some();
    let served = Server::from_env().and_then(|server| {
        server.serve(move || {
            if fail_app {
                return Err(Error::internal("this release cannot start"));
            }
            Ok(App::new()
                .health()
                .get("/", hello)
                .get("/pid", pid)
                .post("/echo", echo))
        })
    });
    if let Err(e) = served {
        eprintln!("child: {e}");
        std::process::exit(1);
    }
}

/// A server running in a child process, and its log.
struct ServerProcess {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts the child with `vars` on top of one worker and a 10 s shutdown deadline.
    fn start(vars: &[(&str, &str)]) -> ServerProcess {
        let mut command = Command::new(std::env::current_exe().expect("test binary"));
        command
            .args(CHILD_ARGS)
            .env(CHILD, "1")
            .env("SQUALL_ADDR", "127.0.0.1:0")
            .env("SQUALL_WORKERS", "1")
            .env("SQUALL_SHUTDOWN_TIMEOUT", "10s");
        for (name, value) in vars {
            command.env(name, value);
        }
        ServerProcess::spawn(command)
    }

    /// Starts the child under `systemd-socket-activate`, which listens on `listen` and starts
    /// the child with that socket (`LISTEN_FDS`) when the first connection arrives. The
    /// child's environment is only `vars` and what socket activation sets.
    fn start_activated(listen: &str, vars: &[&str]) -> ServerProcess {
        let mut command = Command::new(SOCKET_ACTIVATE);
        command.args(["-l", listen, "-E", &format!("{CHILD}=1")]);
        for var in vars {
            command.args(["-E", var]);
        }
        command
            .arg(std::env::current_exe().expect("test binary"))
            .args(CHILD_ARGS);
        ServerProcess::spawn(command)
    }

    fn spawn(mut command: Command) -> ServerProcess {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the child");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        ServerProcess { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// The address from the "listening on" line, waiting for it.
    fn addr(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            let found = ["listening on http://", "listening on https://"]
                .iter()
                .find_map(|prefix| log.find(prefix).map(|at| at + prefix.len()));
            if let Some(at) = found {
                let rest = &log[at..];
                let addr = rest.split_whitespace().next().expect("an address");
                return addr.parse().expect("a socket address");
            }
            assert!(
                self.child.try_wait().expect("try_wait").is_none(),
                "the child exited before listening: {log}"
            );
            assert!(Instant::now() < deadline, "the child never listened: {log}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill has no memory-safety preconditions; the child is ours and alive.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill");
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// The exit status, waiting up to `wait` for it; panics with the log if it does not come.
    fn exit_within(&mut self, wait: Duration) -> ExitStatus {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {wait:?}: {}",
                self.log()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server in a child process, with a POST to /echo in flight: its head and the first half
/// of its body sent, the rest held back so the request cannot finish on its own.
fn server_with_slow_post() -> (ServerProcess, Client) {
    let mut server = ServerProcess::start(&[]);
    let mut client = Client::connect(server.addr());
    client.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello");
    // Long enough for the server to have read the head and started on the body.
    thread::sleep(Duration::from_millis(200));
    (server, client)
}

impl ServerProcess {
    /// Sends `first`, then `second` after `gap`.
    fn signal_twice(&self, first: libc::c_int, gap: Duration, second: libc::c_int) {
        self.signal(first);
        thread::sleep(gap);
        self.signal(second);
    }
}

#[test]
fn two_sigterms_a_few_ms_apart_drain_a_request_whose_body_is_still_arriving() {
    let (mut server, mut client) = server_with_slow_post();
    // What `timeout` does: the process, then its group, 4 ms apart.
    server.signal_twice(libc::SIGTERM, Duration::from_millis(4), libc::SIGTERM);
    thread::sleep(Duration::from_millis(300));
    assert!(server.is_running(), "exited: {}", server.log());

    client.send("world");
    let response = client.response();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.text(), "helloworld");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    client.expect_closed();

    let status = server.exit_within(Duration::from_secs(5));
    let log = server.log();
    assert!(status.success(), "{status:?}: {log}");
    assert_eq!(log.matches("shutting down gracefully").count(), 1, "{log}");
    assert!(log.contains("already shutting down"), "{log}");
    assert!(!log.contains("exiting now"), "{log}");
}

#[test]
fn a_second_sigterm_after_more_than_a_second_exits_at_once() {
    let (mut server, mut client) = server_with_slow_post();
    // The request in flight keeps the drain from finishing before the second signal.
    server.signal_twice(libc::SIGTERM, Duration::from_millis(1300), libc::SIGTERM);
    let status = server.exit_within(Duration::from_secs(1));
    let log = server.log();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{log}");
    assert_eq!(log.matches("shutting down gracefully").count(), 1, "{log}");
    assert!(log.contains("exiting now"), "{log}");
    client.expect_closed_or_reset();
}

#[test]
fn sigint_after_sigterm_exits_at_once() {
    let (mut server, _client) = server_with_slow_post();
    server.signal_twice(libc::SIGTERM, Duration::from_millis(20), libc::SIGINT);
    let status = server.exit_within(Duration::from_secs(1));
    assert_eq!(status.code(), Some(128 + libc::SIGINT), "{}", server.log());
}

#[test]
fn a_second_server_on_a_served_port_exits_non_zero_naming_the_address() {
    let mut first = ServerProcess::start(&[]);
    let addr = first.addr().to_string();
    let mut second = ServerProcess::start(&[("SQUALL_ADDR", &addr)]);
    let status = second.exit_within(Duration::from_secs(10));
    let log = second.log();
    assert_eq!(status.code(), Some(1), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("child:")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains("address in use") && errors[0].contains(&addr),
        "{log}"
    );
    assert!(first.is_running());

    let mut third =
        ServerProcess::start(&[("SQUALL_ADDR", &addr), ("SQUALL_PORT_SHARING", "takeover")]);
    assert_eq!(third.addr().to_string(), addr);
}

#[test]
fn a_socket_passed_by_socket_activation_is_served_by_every_worker() {
    if !std::path::Path::new(SOCKET_ACTIVATE).exists() {
        eprintln!("skipped: {SOCKET_ACTIVATE} is not installed");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = ServerProcess::start_activated(
        &listen,
        &[
            "SQUALL_WORKERS=2",
            "SQUALL_SHUTDOWN_TIMEOUT=10s",
            "SQUALL_ADDR=127.0.0.1:1",
        ],
    );
    let addr: SocketAddr = listen.parse().expect("an address");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens: {}",
            server.log()
        );
        thread::sleep(Duration::from_millis(10));
    }
    // The first connection starts the child; every answer comes through the passed socket
    // (SQUALL_ADDR points elsewhere), whichever worker takes it.
    for _ in 0..20 {
        let response = support::request(
            addr,
            "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(response.status, 200, "{}", server.log());
        assert_eq!(response.body, b"hello");
    }
    assert!(server.log().contains("LISTEN_FDS"), "{}", server.log());
    server.signal(libc::SIGTERM);
    assert!(server.exit_within(Duration::from_secs(10)).code().is_some());
}

#[test]
fn listen_fds_meant_for_another_process_is_a_startup_error() {
    let mut server = ServerProcess::start(&[("LISTEN_FDS", "1"), ("LISTEN_PID", "1")]);
    let status = server.exit_within(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{}", server.log());
    assert!(server.log().contains("LISTEN_PID"), "{}", server.log());
}

/// Installs a seccomp filter on this thread (and the threads it starts) that answers
/// `io_uring_setup` with EPERM and allows everything else: what Docker's and Kubernetes'
/// default profiles do to it.
fn refuse_io_uring_setup() {
    let nr = u32::try_from(libc::SYS_io_uring_setup).expect("a syscall number");
    // Classic BPF over `struct seccomp_data`, whose first field is the syscall number.
    let filter = [
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        }, // ld [nr]
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: nr,
        }, // jeq io_uring_setup
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with valid arguments; the program outlives the call, which copies it.
    unsafe {
        assert_eq!(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            0,
            "no_new_privs"
        );
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog
            ),
            0,
            "seccomp filter"
        );
    }
}

#[test]
fn without_io_uring_startup_names_the_cause_and_where_to_look() {
    let mut server = ServerProcess::start(&[(DENY_IO_URING, "1")]);
    let status = server.exit_within(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{}", server.log());
    let log = server.log();
    assert!(log.contains("seccomp profile"), "{log}");
    assert!(
        log.contains("deploy/") && log.contains("Deploying"),
        "{log}"
    );
}

impl ServerProcess {
    /// Waits until the log has `count` lines containing `text`.
    fn wait_for_log(&self, text: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log().matches(text).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in the log: {}",
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(feature = "tls")]
#[test]
fn sighup_reloads_the_tls_certificate_and_a_broken_one_changes_nothing() {
    use support::certs::{CertDir, TestCa};
    use support::tls_client::{ClientOptions, TlsStream};
    let ca = TestCa::new("signals CA");
    let dir = CertDir::new("sighup");
    let first = ca.server(&["localhost"]);
    let cert = dir.write("server.pem", &first.cert_pem);
    let key = dir.write("server.key", &first.key_pem);
    let mut server = ServerProcess::start(&[
        ("SQUALL_TLS_CERT", cert.to_str().expect("utf-8 path")),
        ("SQUALL_TLS_KEY", key.to_str().expect("utf-8 path")),
    ]);
    let addr = server.addr();
    assert!(
        server.log().contains("listening on https://"),
        "{}",
        server.log()
    );
    let ca_pem = ca.cert_pem();
    let config = ClientOptions::new(&ca_pem).config();
    let serial = || {
        TlsStream::connect(addr, "localhost", config.clone())
            .expect("handshake")
            .server_serial()
    };
    assert_eq!(serial(), first.serial);

    let renewed = ca.server(&["localhost"]);
    dir.write("server.pem", &renewed.cert_pem);
    dir.write("server.key", &renewed.key_pem);
    server.signal(libc::SIGHUP);
    server.wait_for_log("SIGHUP: TLS reloaded", 1);
    assert_eq!(serial(), renewed.serial);

    dir.write("server.pem", "not a certificate");
    server.signal(libc::SIGHUP);
    server.wait_for_log(
        "SIGHUP: TLS reload failed, keeping the certificates in use",
        1,
    );
    assert!(server.log().contains("server.pem"), "{}", server.log());
    assert_eq!(serial(), renewed.serial);
    assert!(server.is_running());
    server.signal(libc::SIGTERM);
    assert_eq!(server.exit_within(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn sighup_without_tls_is_logged_and_changes_nothing() {
    let mut server = ServerProcess::start(&[]);
    let addr = server.addr();
    server.signal(libc::SIGHUP);
    server.wait_for_log("SIGHUP: no TLS configured", 1);
    assert!(server.is_running());
    assert_eq!(
        support::request(addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").status,
        200
    );
}

#[cfg(feature = "tls")]
#[test]
fn an_expired_certificate_stops_startup_with_one_message() {
    use support::certs::{CertDir, TestCa};
    let ca = TestCa::new("signals CA");
    let dir = CertDir::new("expired");
    let expired = ca.issue(&["localhost"], "localhost", |params| {
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(10);
        params.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    });
    let cert = dir.write("server.pem", &expired.cert_pem);
    let key = dir.write("server.key", &expired.key_pem);
    let mut server = ServerProcess::start(&[
        ("SQUALL_TLS_CERT", cert.to_str().expect("utf-8 path")),
        ("SQUALL_TLS_KEY", key.to_str().expect("utf-8 path")),
    ]);
    assert_eq!(server.exit_within(Duration::from_secs(10)).code(), Some(1));
    let log = server.log();
    assert!(log.contains("expired on"), "{log}");
    assert!(log.contains("server.pem"), "{log}");
}

#[test]
fn with_a_drain_delay_sigterm_turns_readyz_503_at_once_and_serves_on_until_the_delay_ends() {
    let mut server = ServerProcess::start(&[("SQUALL_DRAIN_DELAY", "1500ms")]);
    let addr = server.addr();
    let get = |target: &str| {
        support::request(
            addr,
            format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        )
    };
    assert_eq!(get("/readyz").status, 200);
    assert_eq!(get("/healthz").text(), "ok");
    // A keep-alive connection opened before the stop is served through the delay too.
    let mut kept = Client::connect(addr);
    kept.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(kept.response().status, 200);

    let stopped = Instant::now();
    server.signal(libc::SIGTERM);
    server.wait_for_log("after a drain delay of 1.5s", 1);
    thread::sleep(Duration::from_millis(100));
    // New connections are still accepted and served; only readiness changed.
    let readiness = get("/readyz");
    assert_eq!(readiness.status, 503, "{}", server.log());
    assert_eq!(readiness.text(), "draining");
    assert_eq!(get("/").status, 200);
    assert_eq!(get("/healthz").status, 200);
    kept.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let during = kept.response();
    assert_eq!(during.status, 200);
    assert_eq!(during.header("connection"), None, "{during:?}");
    assert!(
        stopped.elapsed() < Duration::from_millis(1400),
        "the checks took too long to prove anything"
    );
    assert!(server.is_running());

    let status = server.exit_within(Duration::from_secs(5));
    assert!(status.success(), "{status:?}: {}", server.log());
    assert!(
        stopped.elapsed() >= Duration::from_millis(1400),
        "exited {:?} after SIGTERM, before the drain delay ended",
        stopped.elapsed()
    );
    // After the delay the listener is gone.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn without_a_drain_delay_readyz_is_ready_until_sigterm_and_shutdown_is_prompt() {
    let mut server = ServerProcess::start(&[]);
    let addr = server.addr();
    let ready = support::request(
        addr,
        "GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready"));
    let stopped = Instant::now();
    server.signal(libc::SIGTERM);
    assert!(server.exit_within(Duration::from_secs(5)).success());
    assert!(
        stopped.elapsed() < Duration::from_secs(1),
        "{:?}",
        stopped.elapsed()
    );
}

#[test]
fn a_second_signal_during_the_drain_delay_exits_at_once() {
    let mut server = ServerProcess::start(&[("SQUALL_DRAIN_DELAY", "30s")]);
    let _ = server.addr();
    server.signal_twice(libc::SIGTERM, Duration::from_millis(50), libc::SIGINT);
    let status = server.exit_within(Duration::from_secs(2));
    assert_eq!(status.code(), Some(128 + libc::SIGINT), "{}", server.log());
}

/// Clients of a restart: keep-alive connections and a new connection per request, each
/// asking `/pid` in a loop until told to stop. Every request must be answered with 200; a
/// `Connection: close` answer is followed by a new connection, as any client does.
struct RestartLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<thread::JoinHandle<Result<Vec<String>, String>>>,
}

impl RestartLoad {
    fn start(addr: SocketAddr) -> RestartLoad {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut threads = Vec::new();
        for keep_alive in [true, true, false] {
            let stop = Arc::clone(&stop);
            threads.push(thread::spawn(move || {
                let mut answered_by = Vec::new();
                let mut client: Option<Client> = None;
                let mut sent = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let c = client.get_or_insert_with(|| Client::connect(addr));
                    let request = if keep_alive {
                        "GET /pid HTTP/1.1\r\nHost: t\r\n\r\n"
                    } else {
                        "GET /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    };
                    c.try_send(request)
                        .map_err(|e| format!("request {sent}: send failed: {e}"))?;
                    let response = c
                        .try_response(false)
                        .map_err(|e| format!("request {sent}: {e}"))?;
                    if response.status != 200 {
                        return Err(format!("request {sent}: status {}", response.status));
                    }
                    let pid = response.text();
                    if answered_by.last() != Some(&pid) {
                        answered_by.push(pid);
                    }
                    if response.closes() {
                        client = None;
                    }
                    sent += 1;
                    thread::sleep(Duration::from_micros(500));
                }
                Ok(answered_by)
            }));
        }
        RestartLoad { stop, threads }
    }

    /// Stops the clients; the pids that answered each, in order, or the first failure.
    fn finish(self) -> Vec<Vec<String>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| {
                t.join()
                    .expect("client thread")
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    }
}

#[test]
fn restarts_through_the_handoff_socket_lose_no_request() {
    let dir = support::TempDir::new("handoff-restart");
    let path = dir.0.join("handoff.sock");
    let path = path.to_str().expect("a utf-8 path");
    let vars = [("SQUALL_HANDOFF", path), ("SQUALL_DRAIN_DELAY", "5s")];
    let mut first = ServerProcess::start(&vars);
    let addr = first.addr();
    let load = RestartLoad::start(addr);
    thread::sleep(Duration::from_millis(300));

    // Twice: the second restart goes through the socket the first successor took over.
    let mut second = ServerProcess::start(&vars);
    assert_eq!(second.addr(), addr, "{}", second.log());
    // The drain delay is skipped: the port never stops being served.
    let status = first.exit_within(Duration::from_secs(4));
    assert_eq!(status.code(), Some(0), "{}", first.log());
    assert!(
        first.log().contains("took over the listening sockets"),
        "{}",
        first.log()
    );
    let taken = format!(
        "took over the listening sockets of process {}",
        first.child.id()
    );
    assert!(second.log().contains(&taken), "{}", second.log());
    thread::sleep(Duration::from_millis(300));

    let mut third = ServerProcess::start(&vars);
    assert_eq!(third.addr(), addr, "{}", third.log());
    assert_eq!(second.exit_within(Duration::from_secs(4)).code(), Some(0));
    thread::sleep(Duration::from_millis(300));

    let pids = [&first, &second, &third].map(|s| s.child.id().to_string());
    for answered_by in load.finish() {
        // Each client was answered by the three servers in turn, with no request lost.
        assert_served_in_turn(&answered_by, &pids);
    }
    assert!(third.is_running());
    assert!(std::path::Path::new(path).exists());
    third.signal(libc::SIGTERM);
    assert_eq!(third.exit_within(Duration::from_secs(10)).code(), Some(0));
    assert!(
        !std::path::Path::new(path).exists(),
        "the socket file is removed at exit"
    );
}

#[test]
fn a_successor_that_cannot_start_leaves_the_old_server_serving() {
    let dir = support::TempDir::new("handoff-failed");
    let path = dir.0.join("handoff.sock");
    let path = path.to_str().expect("a utf-8 path");
    let mut first = ServerProcess::start(&[("SQUALL_HANDOFF", path)]);
    let addr = first.addr();
    let load = RestartLoad::start(addr);

    let mut broken = ServerProcess::start(&[("SQUALL_HANDOFF", path), (FAIL_APP, "1")]);
    assert_eq!(broken.exit_within(Duration::from_secs(10)).code(), Some(1));
    assert!(
        broken.log().contains("this release cannot start"),
        "{}",
        broken.log()
    );
    thread::sleep(Duration::from_millis(300));
    assert!(first.is_running());
    assert!(first.log().contains("did not complete"), "{}", first.log());

    // The next attempt still finds the first server's socket.
    let mut fixed = ServerProcess::start(&[("SQUALL_HANDOFF", path)]);
    assert_eq!(fixed.addr(), addr);
    assert_eq!(first.exit_within(Duration::from_secs(10)).code(), Some(0));
    thread::sleep(Duration::from_millis(200));
    let pids = [&first, &fixed].map(|s| s.child.id().to_string());
    for answered_by in load.finish() {
        assert_served_in_turn(&answered_by, &pids);
    }
}

/// `answered_by` (the pids that answered one client, runs collapsed) began with the first
/// server and ended with the last, met them in order, and no other answered. While both
/// halves of a restart accept from the same queues, a client that connects anew for each
/// request may go back and forth between them for a moment.
fn assert_served_in_turn(answered_by: &[String], pids: &[String]) {
    let mut met: Vec<&String> = Vec::new();
    for pid in answered_by {
        assert!(
            pids.contains(pid),
            "{pid} is none of {pids:?}: {answered_by:?}"
        );
        if !met.contains(&pid) {
            met.push(pid);
        }
    }
    assert_eq!(met, pids.iter().collect::<Vec<_>>(), "{answered_by:?}");
    assert_eq!(answered_by.last(), pids.last(), "{answered_by:?}");
}

#[test]
fn a_handoff_path_that_is_not_a_socket_or_a_different_address_stops_startup() {
    let dir = support::TempDir::new("handoff-refused");
    let file = dir.write("not-a-socket", "keep me");
    let file = file.to_str().expect("a utf-8 path");
    let mut server = ServerProcess::start(&[("SQUALL_HANDOFF", file)]);
    assert_eq!(server.exit_within(Duration::from_secs(10)).code(), Some(1));
    let log = server.log();
    assert!(
        log.contains(file) && log.contains("is not a socket"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(file).expect("left alone"),
        "keep me"
    );

    let path = dir.0.join("handoff.sock");
    let path = path.to_str().expect("a utf-8 path");
    let mut running = ServerProcess::start(&[("SQUALL_HANDOFF", path)]);
    let addr = running.addr();
    let elsewhere = format!("127.0.0.1:{}", addr.port() ^ 1);
    let mut other = ServerProcess::start(&[("SQUALL_HANDOFF", path), ("SQUALL_ADDR", &elsewhere)]);
    assert_eq!(other.exit_within(Duration::from_secs(10)).code(), Some(1));
    let log = other.log();
    assert!(log.contains(&format!("it listens on {addr}")), "{log}");
    assert!(running.is_running());
}
