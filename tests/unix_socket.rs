//! The server on a Unix stream socket (`SQUALL_ADDR=unix:/path`): the same HTTP/1.1 and
//! WebSocket traffic as over TCP, the socket file's life (mode, stale and live sockets,
//! things at the path that are not sockets, removal at shutdown), Unix peers and trusted
//! proxies, TLS over the socket, connections shared by two cores, and `curl --unix-socket`
//! against examples/hello.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::StreamExt;
use squall::body::Body;
use squall::response::TEXT_PLAIN;
use squall::ws::{CloseCode, WebSocket};
use squall::{App, Config, Error, ListenAddr, Request, Response, RunningServer, Server};

use support::ws::{expect_close_code, frame, handshake, read_frame, upgrade_over};
use support::{get, post, Client, TempDir};

async fn echo(mut req: Request) -> Result<Response, Error> {
    let body = req.bytes().await?;
    Ok(Response::with_body(squall::response::OCTET_STREAM, body))
}

/// A body of unknown length, so the response goes out chunked.
async fn stream(_req: Request) -> Response {
    let chunks = futures_lite::stream::iter(["alpha-", "beta-", "gamma"])
        .then(|s| async move { Ok::<_, Error>(Bytes::from_static(s.as_bytes())) });
    Response::with_body(TEXT_PLAIN, Body::stream(chunks))
}

async fn peer(req: Request) -> String {
    format!(
        "{} {} {} {}",
        req.peer(),
        req.peer_addr(),
        req.client_ip(),
        req.is_secure()
    )
}

fn app() -> App {
    App::new()
        .get("/", |_req| async { "hello" })
        .post("/echo", echo)
        .get("/stream", stream)
        .get("/peer", peer)
        .get("/core", |_req| async {
            squall::cores::current().to_string()
        })
        .get("/ws", |req| {
            let up = squall::ws::Upgrade::new(req);
            async move {
                up.map(|up| {
                    up.open(|socket: WebSocket| async move {
                        while let Some(message) = socket.recv().await {
                            if socket.send(message).await.is_err() {
                                break;
                            }
                        }
                    })
                })
            }
        })
        .get("/close", |req| {
            let up = squall::ws::Upgrade::new(req);
            async move {
                up.map(|up| {
                    up.open(|socket: WebSocket| async move {
                        if socket.recv().await.is_some() {
                            socket.close(CloseCode::Library(4000), "bye now");
                        }
                        while socket.recv().await.is_some() {}
                    })
                })
            }
        })
}

/// A directory for the socket, and the socket's path in it.
fn socket_in(name: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(name);
    let path = dir.0.join("http.sock");
    (dir, path)
}

fn unix_config(path: &Path) -> Config {
    support::config().unix_socket(path)
}

fn start(path: &Path) -> RunningServer {
    support::start_with(unix_config(path), app)
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("the socket file")
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn http_requests_keep_alive_pipelining_and_chunked_bodies() {
    let (_dir, path) = socket_in("http");
    let server = start(&path);
    assert_eq!(server.listen_addr(), ListenAddr::unix(&path));
    let mut client = Client::connect_unix(&path);
    // Keep-alive: several requests on one connection.
    client.send(get("/"));
    let r = client.response();
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    client.send(post("/echo", "text/plain", "a body"));
    assert_eq!(client.response().text(), "a body");
    // Pipelined: three requests in one write, answered in order.
    client.send(format!(
        "{}{}{}",
        get("/"),
        post("/echo", "text/plain", "second"),
        get("/missing")
    ));
    let statuses: Vec<(u16, String)> = client
        .responses(3)
        .into_iter()
        .map(|r| (r.status, r.text()))
        .collect();
    assert_eq!(statuses[0], (200, "hello".to_owned()));
    assert_eq!(statuses[1], (200, "second".to_owned()));
    assert_eq!(statuses[2].0, 404);
    // A chunked request body, and a chunked response.
    client.send(
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\none\r\n4\r\n-two\r\n0\r\n\r\n",
    );
    assert_eq!(client.response().text(), "one-two");
    client.send(get("/stream"));
    let r = client.response();
    assert!(r.chunked, "{:?}", r.headers);
    assert_eq!(r.text(), "alpha-beta-gamma");
    // A large body both ways.
    let large = "x".repeat(300_000);
    let mut big = Client::connect_unix(&path);
    big.send(post("/echo", "text/plain", &large));
    assert_eq!(big.response().body.len(), large.len());
}

#[test]
fn a_unix_peer_has_no_address_and_is_trusted_only_when_configured() {
    let forwarded = "GET /peer HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.7\r\n\
                     X-Forwarded-Proto: https\r\n\r\n";
    let (_dir, path) = socket_in("peer");
    let server = start(&path);
    let mut client = Client::connect_unix(&path);
    client.send(forwarded);
    assert_eq!(client.response().text(), "unix 0.0.0.0:0 0.0.0.0 false");
    drop(server);

    let (_dir, path) = socket_in("trusted");
    let config = Config::default()
        .with_env_from(|name| (name == "SQUALL_TRUSTED_PROXIES").then(|| "unix".to_owned()))
        .expect("unix is a trusted-proxy entry");
    let config = unix_config(&path).trust_unix_peers(config.trust_unix_peers);
    let _server = support::start_with(config, app);
    let mut client = Client::connect_unix(&path);
    client.send(forwarded);
    assert_eq!(client.response().text(), "unix 0.0.0.0:0 203.0.113.7 true");
}

/// A text frame that is not the last of its message.
fn first_fragment(payload: &[u8]) -> Vec<u8> {
    let mut out = frame(0x1, payload, true);
    out[0] &= 0x7f;
    out
}

#[test]
fn a_websocket_echoes_a_fragmented_message_and_closes_with_a_code() {
    let (_dir, path) = socket_in("ws");
    let _server = start(&path);
    let open = |route: &str| {
        let stream = UnixStream::connect(&path).expect("connect");
        stream
            .set_read_timeout(Some(support::READ_TIMEOUT))
            .expect("timeout");
        let (stream, head) = upgrade_over(stream, &handshake(route, ""));
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        stream
    };
    let mut ws = open("/ws");
    // Three fragments: a first frame and a continuation without FIN, then the last.
    let mut message = first_fragment(b"hel");
    let mut middle = frame(0x0, b"lo ", true);
    middle[0] &= 0x7f;
    message.extend(middle);
    message.extend(frame(0x0, b"unix", true));
    ws.write_all(&message).expect("write");
    assert_eq!(
        read_frame(&mut ws).expect("echo"),
        (0x1, b"hello unix".to_vec())
    );
    ws.write_all(&frame(0x2, &[0, 1, 2, 255], true))
        .expect("write");
    assert_eq!(
        read_frame(&mut ws).expect("echo"),
        (0x2, vec![0, 1, 2, 255])
    );
    ws.write_all(&frame(0x8, &1000u16.to_be_bytes(), true))
        .expect("close");
    assert_eq!(expect_close_code(&mut ws), 1000);

    let mut ws = open("/close");
    ws.write_all(&frame(0x1, b"go", true)).expect("write");
    assert_eq!(expect_close_code(&mut ws), 4000);
}

#[test]
fn graceful_shutdown_removes_the_socket_file() {
    let (_dir, path) = socket_in("shutdown");
    let server = start(&path);
    assert!(path.exists());
    let mut client = Client::connect_unix(&path);
    client.send(get("/"));
    assert_eq!(client.response().status, 200);
    server.shutdown();
    server.join().expect("a clean stop");
    assert!(!path.exists(), "the socket file outlived the server");
}

#[test]
fn the_socket_file_gets_the_configured_mode_whatever_the_umask() {
    let (_dir, path) = socket_in("mode");
    let server = start(&path);
    // The default lets the user and group connect; the test's umask (022 usually) would
    // have taken the group's write bit.
    assert_eq!(mode_of(&path), 0o660);
    drop(server);
    let server = support::start_with(unix_config(&path).unix_mode(0o600), app);
    assert_eq!(mode_of(&path), 0o600);
    drop(server);
    let config = Config::default()
        .with_env_from(|name| (name == "SQUALL_UNIX_MODE").then(|| "666".to_owned()))
        .expect("an octal mode");
    let _server = support::start_with(unix_config(&path).unix_mode(config.unix_mode), app);
    assert_eq!(mode_of(&path), 0o666);
}

#[test]
fn a_stale_socket_is_replaced() {
    let (_dir, path) = socket_in("stale");
    // A server that died: its socket file stays, nobody listens.
    drop(UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let _server = start(&path);
    let mut client = Client::connect_unix(&path);
    client.send(get("/"));
    assert_eq!(client.response().text(), "hello");
}

#[test]
fn a_live_socket_is_refused_and_keeps_serving() {
    let (_dir, path) = socket_in("live");
    let live = UnixListener::bind(&path).expect("bind");
    let err = Server::new(unix_config(&path))
        .spawn(app)
        .expect_err("another server listens there");
    let message = err.to_string();
    assert!(
        message.contains("address in use") && message.contains(&path.display().to_string()),
        "{message}"
    );
    UnixStream::connect(&path).expect("the other server still listens");
    drop(live.accept().expect("its connection"));
}

#[test]
fn a_takeover_moves_the_path_to_the_new_server() {
    let (_dir, path) = socket_in("takeover");
    let old = start(&path);
    let mut old_client = Client::connect_unix(&path);
    let new = support::start_with(
        unix_config(&path).port_sharing(squall::PortSharing::Takeover),
        app,
    );
    // The old server drains the connection it has; the path leads to the new one.
    old_client.send(get("/"));
    assert_eq!(old_client.response().status, 200);
    drop(old);
    assert!(path.exists(), "the old server removed the new one's socket");
    let mut client = Client::connect_unix(&path);
    client.send(get("/"));
    assert_eq!(client.response().text(), "hello");
    drop(new);
    assert!(!path.exists());
}

#[test]
fn a_file_or_directory_at_the_path_is_refused_and_left_alone() {
    let (dir, path) = socket_in("file");
    std::fs::write(&path, "precious").expect("write");
    let err = Server::new(unix_config(&path))
        .spawn(app)
        .expect_err("a regular file");
    let message = err.to_string();
    assert!(
        message.contains("regular file") && message.contains("left alone"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("kept"), "precious");

    let subdir = dir.0.join("a-directory");
    std::fs::create_dir(&subdir).expect("mkdir");
    let err = Server::new(unix_config(&subdir))
        .spawn(app)
        .expect_err("a directory");
    assert!(err.to_string().contains("a directory"), "{err}");
    assert!(subdir.is_dir());

    let missing = dir.0.join("no-such-dir/http.sock");
    let err = Server::new(unix_config(&missing))
        .spawn(app)
        .expect_err("no directory");
    assert!(
        err.to_string().contains("directory does not exist"),
        "{err}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_works_over_a_unix_socket() {
    use support::certs::{CertDir, TestCa};
    use support::tls_client::{ClientOptions, TlsStream};

    let ca = TestCa::new("squall unix CA");
    let certs = CertDir::new("unix-tls");
    let issued = ca.server(&["localhost"]);
    let cert = certs.write("server.pem", &issued.cert_pem);
    let key = certs.write("server.key", &issued.key_pem);
    let (_dir, path) = socket_in("tls");
    let config = unix_config(&path).tls(squall::tls::TlsConfig::new(cert, key));
    let server = support::start_with(config, app);
    assert!(server.is_tls());
    let ca_pem = ca.cert_pem();
    let options = ClientOptions::new(&ca_pem);
    let stream = UnixStream::connect(&path).expect("connect");
    let tls = TlsStream::over(stream, "localhost", options.config()).expect("handshake");
    let mut client = Client::over_stream(tls);
    client.send(get("/peer"));
    // The connection itself is TLS, so the request is secure without any proxy header.
    assert_eq!(client.response().text(), "unix 0.0.0.0:0 0.0.0.0 true");
    client.send(post("/echo", "text/plain", "over tls"));
    assert_eq!(client.response().text(), "over tls");
}

/// Two cores share the one socket: under concurrent connections both take some.
#[test]
fn two_cores_share_the_connections() {
    let (_dir, path) = socket_in("cores");
    let _server = support::start_with(unix_config(&path).workers(2), app);
    let mut served: HashMap<String, usize> = HashMap::new();
    for _round in 0..10 {
        let clients: Vec<_> = (0..50)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut client = Client::connect_unix(&path);
                    let mut cores = Vec::new();
                    for _ in 0..5 {
                        client.send(get("/core"));
                        cores.push(client.response().text());
                    }
                    cores
                })
            })
            .collect();
        for client in clients {
            let cores = client.join().expect("a client");
            // A connection stays on the core that accepted it.
            assert!(cores.iter().all(|c| *c == cores[0]), "{cores:?}");
            *served.entry(cores[0].clone()).or_default() += 1;
        }
        if served.len() == 2 {
            break;
        }
    }
    println!("connections per core: {served:?}");
    assert_eq!(
        served.len(),
        2,
        "one core took every connection: {served:?}"
    );
}

/// examples/hello, when this run built it (`cargo test --all-targets` does).
fn hello_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let hello = exe.parent()?.parent()?.join("examples/hello");
    hello.exists().then_some(hello)
}

#[test]
fn curl_reaches_examples_hello_over_the_socket() {
    let Some(hello) = hello_binary() else {
        eprintln!("skipped: examples/hello is not built (cargo test --all-targets builds it)");
        return;
    };
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no curl");
        return;
    }
    let (_dir, path) = socket_in("curl");
    let mut child = std::process::Command::new(&hello)
        .env("SQUALL_ADDR", format!("unix:{}", path.display()))
        .env("SQUALL_WORKERS", "1")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start examples/hello");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&path).is_err() {
        assert!(std::time::Instant::now() < deadline, "hello never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "--unix-socket"])
        .arg(&path)
        .arg("http://localhost/plaintext")
        .output()
        .expect("run curl");
    // SIGTERM: a graceful stop, which removes the socket file.
    // SAFETY: kill with a child's pid, which is ours until waited for.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("hello stops");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "Hello, World!");
    assert!(status.success(), "{status}");
    assert!(!path.exists(), "hello left its socket file behind");
}

#[test]
fn a_bad_unix_address_is_one_clear_startup_error() {
    let Some(hello) = hello_binary() else {
        eprintln!("skipped: examples/hello is not built (cargo test --all-targets builds it)");
        return;
    };
    for (addr, why) in [("unix:", "empty"), ("unix:relative.sock", "absolute")] {
        let output = std::process::Command::new(&hello)
            .env("SQUALL_ADDR", addr)
            .output()
            .expect("run examples/hello");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("SQUALL_ADDR") && stderr.contains(why),
            "{stderr}"
        );
    }
}
