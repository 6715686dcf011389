//! squall-load against tiny servers on loopback (plain threads, no async): counts, statuses,
//! errors, the open-loop schedule, https (keep-alive, a handshake per request, resumption)
//! and WebSocket echo / broadcast / idle holds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use squall_load::config::{Config, Mode, Stop, Target};
use squall_load::stats::ErrorKind;

/// How the test server answers each request head it reads.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 with Content-Length, then 200 chunked, alternately.
    Mixed,
    /// 503 every time.
    Unavailable,
    /// Never answers.
    Silent,
    /// 200 with `Connection: close`, then closes.
    Close,
}

/// Serves HTTP/1.1 keep-alive (pipelining included) on an ephemeral port; counts requests.
fn http_server(answer: Answer) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let count = Arc::clone(&count);
            std::thread::spawn(move || serve(stream, answer, &count));
        }
    });
    (addr, served)
}

fn serve(mut stream: impl Read + Write, answer: Answer, served: &AtomicU64) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            let index = served.fetch_add(1, Ordering::Relaxed);
            match answer {
                Answer::Mixed if index.is_multiple_of(2) => out.extend_from_slice(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!",
                ),
                Answer::Mixed => out.extend_from_slice(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                      5\r\nHello\r\n8\r\n, World!\r\n0\r\n\r\n",
                ),
                Answer::Unavailable => out.extend_from_slice(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                ),
                Answer::Silent => {}
                Answer::Close => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\n\
                          Hello, World!",
                    );
                    return;
                }
            }
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// Handshakes a TLS server completed, and how many of them resumed a session.
#[derive(Default)]
struct Handshakes {
    full: AtomicU64,
    resumed: AtomicU64,
}

/// `http_server` over TLS 1.3/1.2 (rustls on aws-lc-rs, a fresh ECDSA P-256 certificate,
/// rustls's default session cache and tickets).
fn https_server(answer: Answer) -> (SocketAddr, Arc<AtomicU64>, Arc<Handshakes>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = Arc::new(AtomicU64::new(0));
    let handshakes = Arc::new(Handshakes::default());
    let (count, seen) = (Arc::clone(&served), Arc::clone(&handshakes));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let (config, count, seen) =
                (Arc::clone(&config), Arc::clone(&count), Arc::clone(&seen));
            std::thread::spawn(move || {
                let mut conn = rustls::ServerConnection::new(config).expect("connection");
                while conn.is_handshaking() {
                    if conn.complete_io(&mut stream).is_err() {
                        return;
                    }
                }
                match conn.handshake_kind() {
                    Some(rustls::HandshakeKind::Resumed) => &seen.resumed,
                    _ => &seen.full,
                }
                .fetch_add(1, Ordering::Relaxed);
                let mut tls = rustls::StreamOwned::new(conn, stream);
                serve(&mut tls, answer, &count);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (addr, served, handshakes)
}

fn config_for(url: &str) -> Config {
    let mut config = Config::new(Target::parse(url).expect("valid url"));
    config.timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(2);
    config
}

#[test]
fn pipelined_requests_are_all_counted() {
    let (addr, served) = http_server(Answer::Mixed);
    let mut config = config_for(&format!("http://{addr}/plaintext"));
    config.connections = 4;
    config.threads = 2;
    config.pipeline = 8;
    config.stop = Stop::Count(1000);
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.tally.completed, 1000);
    assert_eq!(report.tally.statuses.get(&200), Some(&1000));
    assert_eq!(report.tally.error_count(), 0, "{:?}", report.tally.errors);
    assert_eq!(report.tally.connected, 4);
    assert_eq!(report.tally.latency.len(), 1000);
    assert_eq!(served.load(Ordering::Relaxed), 1000);
    assert!(report.elapsed > Duration::ZERO);
}

#[test]
fn https_keep_alive_pipelines_over_one_handshake_per_connection() {
    let (addr, served, handshakes) = https_server(Answer::Mixed);
    let mut config = config_for(&format!("https://localhost:{}/plaintext", addr.port()));
    config.connections = 2;
    config.pipeline = 8;
    config.stop = Stop::Count(200);
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.tally.completed, 200);
    assert_eq!(report.tally.error_count(), 0, "{:?}", report.tally.errors);
    assert_eq!(served.load(Ordering::Relaxed), 200);
    assert_eq!(handshakes.full.load(Ordering::Relaxed), 2);
}

#[test]
fn https_with_connection_close_is_a_full_handshake_per_request() {
    let (addr, served, handshakes) = https_server(Answer::Close);
    let mut config = config_for(&format!("https://127.0.0.1:{}/", addr.port()));
    config.connections = 2;
    config.headers = vec![("Connection".into(), "close".into())];
    config.stop = Stop::Count(20);
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.tally.completed, 20);
    assert_eq!(report.tally.error_count(), 0, "{:?}", report.tally.errors);
    let requests = served.load(Ordering::Relaxed);
    assert!(requests >= 20, "{requests}");
    assert_eq!(handshakes.full.load(Ordering::Relaxed), requests);
    assert_eq!(handshakes.resumed.load(Ordering::Relaxed), 0);
}

#[test]
fn https_resumes_sessions_when_asked() {
    let (addr, served, handshakes) = https_server(Answer::Close);
    let mut config = config_for(&format!("https://127.0.0.1:{}/", addr.port()));
    config.connections = 1;
    config.tls_resume = true;
    config.stop = Stop::Count(10);
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.tally.completed, 10);
    assert_eq!(report.tally.error_count(), 0, "{:?}", report.tally.errors);
    let resumed = handshakes.resumed.load(Ordering::Relaxed);
    assert!(
        resumed >= 1,
        "{resumed} of {} resumed",
        served.load(Ordering::Relaxed)
    );
}

#[test]
fn bad_statuses_are_errors_by_code() {
    let (addr, _) = http_server(Answer::Unavailable);
    let mut config = config_for(&format!("http://{addr}/"));
    config.connections = 2;
    config.stop = Stop::Count(10);
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.tally.completed, 10);
    assert_eq!(report.tally.statuses.get(&503), Some(&10));
    assert_eq!(
        report.tally.errors.get(&ErrorKind::BadStatus(503)),
        Some(&10)
    );
    assert_eq!(report.json()["errors"]["status_503"], 10);
}

#[test]
fn open_loop_sends_exactly_the_scheduled_requests() {
    let (addr, served) = http_server(Answer::Mixed);
    let mut config = config_for(&format!("http://{addr}/"));
    config.connections = 3;
    config.rate = Some(200.0);
    config.warmup = Duration::from_millis(200);
    config.stop = Stop::After(Duration::from_millis(500));
    let report = squall_load::run(config).expect("run");
    // 200/s over 0.5 s after a 0.2 s warm-up: slots 40..140 are measured, 0..40 are not.
    assert_eq!(report.tally.completed, 100);
    assert_eq!(served.load(Ordering::Relaxed), 140);
    assert_eq!(report.tally.error_count(), 0, "{:?}", report.tally.errors);
    assert!((report.throughput() - 200.0).abs() < 1e-9);
}

#[test]
fn silent_servers_time_out_and_closed_ports_fail_to_connect() {
    let (addr, _) = http_server(Answer::Silent);
    let mut config = config_for(&format!("http://{addr}/"));
    config.connections = 1;
    config.timeout = Duration::from_millis(200);
    config.stop = Stop::After(Duration::from_millis(500));
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.tally.completed, 0);
    assert!(report.tally.errors.get(&ErrorKind::Timeout) >= Some(&1));

    // A port nobody listens on: bind one, note it, close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut config = config_for(&format!("http://127.0.0.1:{port}/"));
    config.connections = 2;
    config.stop = Stop::Count(10);
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.tally.completed, 0);
    assert_eq!(report.tally.connected, 0);
    // The first attempt plus the retries of each connection.
    assert_eq!(report.tally.errors.get(&ErrorKind::Connect), Some(&8));
}

/// A WebSocket server: echo on every connection, or (broadcast) nothing but holding the
/// connection open while forwarding everything the first connection sends to all others.
fn ws_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                while let Ok(message) = ws.read() {
                    if (message.is_text() || message.is_binary()) && ws.send(message).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn websocket_echo_round_trips() {
    let addr = ws_echo_server();
    let mut config = config_for(&format!("ws://{addr}/ws"));
    assert_eq!(config.mode, Mode::WsEcho);
    config.connections = 3;
    config.pipeline = 4;
    config.message_size = 100;
    config.stop = Stop::Count(300);
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.tally.completed, 300);
    assert_eq!(report.tally.error_count(), 0, "{:?}", report.tally.errors);
    assert_eq!(report.mode, "ws-echo");
}

#[test]
fn websocket_broadcast_deliveries_are_counted() {
    // The server forwards every message from any connection to every connection (like
    // squall's /broadcast topic, the sender included).
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (publish_tx, publish_rx) = std::sync::mpsc::channel::<tungstenite::Message>();
    let subscribers: Arc<std::sync::Mutex<Vec<std::sync::mpsc::Sender<tungstenite::Message>>>> =
        Arc::default();
    let fan_out = Arc::clone(&subscribers);
    std::thread::spawn(move || {
        while let Ok(message) = publish_rx.recv() {
            for subscriber in fan_out.lock().expect("lock").iter() {
                let _ = subscriber.send(message.clone());
            }
        }
    });
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let Ok(mut ws) = tungstenite::accept(stream) else {
                continue;
            };
            let (tx, rx) = std::sync::mpsc::channel();
            subscribers.lock().expect("lock").push(tx);
            let publish_tx = publish_tx.clone();
            ws.get_mut()
                .set_read_timeout(Some(Duration::from_millis(5)))
                .expect("timeout");
            std::thread::spawn(move || {
                loop {
                    match ws.read() {
                        Ok(m) if m.is_text() => {
                            let _ = publish_tx.send(m);
                        }
                        Ok(_) => {}
                        Err(tungstenite::Error::Io(e))
                            if e.kind() == std::io::ErrorKind::WouldBlock =>
                        {
                            let _ = ws.flush();
                        }
                        Err(_) => return,
                    }
                    while let Ok(m) = rx.try_recv() {
                        if ws.send(m).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    let mut config = config_for(&format!("ws://{addr}/broadcast"));
    config.mode = Mode::WsSubscribe;
    config.connections = 5;
    config.threads = 2;
    config.rate = Some(20.0);
    config.warmup = Duration::from_millis(200);
    config.stop = Stop::After(Duration::from_millis(500));
    config.grace = Duration::from_millis(500);
    let report = squall_load::run(config).expect("run");
    // 20 messages/s: seq 4..14 fall in the window, each to five subscribers.
    assert_eq!(report.tally.published, 10);
    assert_eq!(report.tally.connected, 5);
    assert_eq!(report.expected_deliveries(), Some(50));
    assert_eq!(report.tally.completed, 50);
    assert_eq!(report.tally.error_count(), 0, "{:?}", report.tally.errors);
}

#[test]
fn websocket_idle_connections_are_held_for_the_duration() {
    let addr = ws_echo_server();
    let mut config = config_for(&format!("ws://{addr}/ws"));
    config.mode = Mode::WsIdle;
    config.connections = 4;
    config.threads = 2;
    config.stop = Stop::After(Duration::from_millis(300));
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.mode, "ws-idle");
    assert_eq!(report.tally.connected, 4);
    assert_eq!(
        report.tally.completed, 4,
        "every connection held to the end"
    );
    assert_eq!(report.tally.error_count(), 0, "{:?}", report.tally.errors);
    assert_eq!(report.elapsed, Duration::from_millis(300));
    assert_eq!(report.json()["held"], 4);
}

#[test]
fn idle_connections_the_server_closes_are_lost() {
    // Every second connection is closed by the server shortly after its handshake.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for (index, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                if index % 2 == 1 {
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = ws.close(None);
                    let _ = ws.flush();
                }
                while ws.read().is_ok() {}
            });
        }
    });
    let mut config = config_for(&format!("ws://{addr}/ws"));
    config.mode = Mode::WsIdle;
    config.connections = 4;
    config.stop = Stop::After(Duration::from_millis(500));
    let report = squall_load::run(config).expect("run");
    assert_eq!(report.tally.connected, 4);
    assert_eq!(report.tally.completed, 2);
    assert_eq!(report.tally.errors.get(&ErrorKind::Reset), Some(&2));
    assert!(
        report.table().contains("held         2 of 4"),
        "{}",
        report.table()
    );
}

#[test]
fn the_idle_command_announces_ready_and_lets_go_on_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let addr = ws_echo_server();
    let json = std::env::temp_dir().join(format!("squall-load-idle-{}.json", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall-load"))
        .args([
            "--mode", "ws-idle", "-c", "3", "-t", "2", "-d", "30s", "-q", "--json",
        ])
        .arg(&json)
        .arg(format!("ws://{addr}/ws"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("squall-load starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut ready = String::new();
    stdout.read_line(&mut ready).expect("read stdout");
    assert_eq!(ready.trim_end(), "ready connections=3 connected=3");

    // SAFETY: kill with the pid of a child this test started and has not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("squall-load did not let go within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let mut table = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut table).expect("read stdout");
    assert!(table.contains("held         3 of 3"), "{table}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON report")).expect("JSON");
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["held"], 3);
    assert_eq!(report["error_count"], 0);
    assert!(
        report["elapsed_s"].as_f64().expect("seconds") < 10.0,
        "{report}"
    );
}
