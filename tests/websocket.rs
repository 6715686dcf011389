//! WebSockets end to end over loopback: the handshake's refusals, echo, every close code the
//! session sends, keepalive, the slow-consumer policy, fan-out across cores and the Redis
//! bridge between servers.
//!
//! Frames the server must reject are written by hand ([`frame`]); well-behaved traffic goes
//! through tungstenite's blocking client.

// Only the Redis bridge's test reaches a service.
#[cfg(feature = "redis")]
mod services;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use squall::hub::Hub;
use squall::ws::{self, CloseCode, CloseInfo, WebSocket, WsConfig};
use squall::{App, Request, Response, RunningServer, StatusCode};
use tungstenite::protocol::frame::coding::CloseCode as ClientCloseCode;
use tungstenite::Message as ClientMessage;

use support::ws::{expect_close_code, frame, handshake, raw_open, raw_upgrade, read_frame, KEY};

const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// ---------------------------------------------------------------------------------------------
// The application under test
// ---------------------------------------------------------------------------------------------

/// How each connection ended, as the close hooks saw it, by route.
type Closes = Arc<Mutex<Vec<(String, CloseInfo)>>>;

async fn echo_loop(socket: WebSocket) {
    while let Some(message) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

fn recorded(closes: &Closes, route: &'static str) -> impl FnOnce(&CloseInfo) + 'static {
    let closes = Arc::clone(closes);
    move |info: &CloseInfo| {
        if let Ok(mut closes) = closes.lock() {
            closes.push((route.to_owned(), info.clone()));
        }
    }
}

fn upgrade(
    req: Request,
    config: WsConfig,
    closes: &Closes,
    route: &'static str,
) -> Result<ws::Upgrade, ws::Rejection> {
    Ok(ws::Upgrade::with_config(req, config)?.on_close(recorded(closes, route)))
}

fn app(closes: Closes) -> App {
    let c = closes;
    let (c1, c2, c3, c4, c5, c6, c7, c8) = (
        c.clone(),
        c.clone(),
        c.clone(),
        c.clone(),
        c.clone(),
        c.clone(),
        c.clone(),
        c.clone(),
    );
    App::new()
        .get("/echo", move |req| {
            let up = upgrade(req, WsConfig::default(), &c1, "echo");
            async move { up.map(|up| up.open(echo_loop)) }
        })
        .get("/small", move |req| {
            let config = WsConfig::default().max_message_size(1024);
            let up = upgrade(req, config, &c2, "small");
            async move { up.map(|up| up.open(echo_loop)) }
        })
        .get("/close", move |req| {
            let up = upgrade(req, WsConfig::default(), &c3, "close");
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
        .get("/return", move |req| {
            let up = upgrade(req, WsConfig::default(), &c4, "return");
            async move {
                up.map(|up| {
                    up.open(|socket: WebSocket| async move {
                        let _ = socket.send("hello and goodbye").await;
                    })
                })
            }
        })
        .get("/panic", move |req| {
            let up = upgrade(req, WsConfig::default(), &c5, "panic");
            async move {
                up.map(|up| {
                    up.open(|socket: WebSocket| async move {
                        if socket.recv().await.is_some() {
                            panic!("the handler fell over");
                        }
                    })
                })
            }
        })
        .get("/flood", move |req| {
            // Four 64 KiB messages may wait; the client reads nothing.
            let config = WsConfig::default().send_queue(4, 1 << 20);
            let up = upgrade(req, config, &c6, "flood");
            async move {
                up.map(|up| {
                    up.open(|socket: WebSocket| async move {
                        let chunk = bytes::Bytes::from(vec![b'x'; 64 << 10]);
                        while socket.try_send(chunk.clone()).is_ok() {
                            glommio::yield_if_needed().await;
                        }
                        while socket.recv().await.is_some() {}
                    })
                })
            }
        })
        .get("/busy", move |req| {
            let up = upgrade(req, WsConfig::default(), &c7, "busy");
            async move {
                up.map(|up| {
                    up.open(|socket: WebSocket| async move {
                        while let Some(message) = socket.recv().await {
                            glommio::timer::sleep(Duration::from_millis(1500)).await;
                            let _ = socket.send(message).await;
                        }
                    })
                })
            }
        })
        .get("/keepalive", move |req| {
            let config = WsConfig::default()
                .ping_interval(Some(Duration::from_millis(200)))
                .pong_timeout(Duration::from_millis(400));
            let up = upgrade(req, config, &c8, "keepalive");
            async move { up.map(|up| up.open(echo_loop)) }
        })
        .get("/auth", |req: Request| async move {
            if req.header("authorization") != Some("Bearer letmein") {
                return Ok(Response::text("who are you?\n").with_status(StatusCode::UNAUTHORIZED));
            }
            ws::Upgrade::new(req).map(|up| up.open(echo_loop))
        })
        .get("/proto", |req: Request| async move {
            let mut up = ws::Upgrade::new(req)?;
            up.select_protocol(&["chat.v2", "chat"]);
            Ok::<_, ws::Rejection>(up.open(echo_loop))
        })
        .get("/origin", |req: Request| async move {
            let config = WsConfig::default().allow_origin("https://allowed.example");
            ws::Upgrade::with_config(req, config).map(|up| up.open(echo_loop))
        })
        .get("/rooms/{room}", |req: Request| async move {
            ws::Upgrade::new(req).map(|up| {
                up.open(|socket: WebSocket| async move {
                    let room = socket
                        .request()
                        .param("room")
                        .unwrap_or_default()
                        .into_owned();
                    let _ = socket.send(format!("welcome to {room}")).await;
                    echo_loop(socket).await;
                })
            })
        })
        .get("/topic", |req: Request| async move {
            ws::Upgrade::new(req).map(|up| up.open(fan_out))
        })
}

/// Says which core it runs on, then relays everything it receives to the topic's
/// subscribers on every core.
async fn fan_out(socket: WebSocket) {
    let hub = Hub::current();
    let core = std::thread::current().name().unwrap_or("?").to_owned();
    let _subscription = hub.subscribe("news", socket.sender());
    let _ = socket.send(format!("core {core}")).await;
    while let Some(message) = socket.recv().await {
        let _ = hub.publish("news", message).await;
    }
}

fn start(closes: &Closes) -> RunningServer {
    let closes = Arc::clone(closes);
    support::start(move || app(Arc::clone(&closes)))
}

fn closes_for(closes: &Closes, route: &str, wait: Duration) -> Option<CloseInfo> {
    let deadline = Instant::now() + wait;
    loop {
        let found = closes.lock().ok().and_then(|c| {
            c.iter()
                .find(|(r, _)| r == route)
                .map(|(_, info)| info.clone())
        });
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Raw clients
// ---------------------------------------------------------------------------------------------

fn client(addr: SocketAddr, path: &str) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(support::READ_TIMEOUT))
        .expect("timeout");
    let url = format!("ws://{addr}{path}");
    let (socket, response) = tungstenite::client::client(url.as_str(), stream).expect("handshake");
    assert_eq!(response.status(), 101);
    socket
}

fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

// ---------------------------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------------------------

#[test]
fn a_valid_handshake_switches_protocols_with_the_rfc_accept_key() {
    let closes = Closes::default();
    let server = start(&closes);
    let (_stream, head) = raw_upgrade(server.local_addr(), &handshake("/echo", ""));
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(
        head.contains(&format!("sec-websocket-accept: {ACCEPT}\r\n")),
        "{head}"
    );
}

#[test]
fn bad_handshakes_are_refused_with_the_right_status() {
    let closes = Closes::default();
    let server = start(&closes);
    let addr = server.local_addr();
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "HTTP/1.0",
            handshake("/echo", "").replacen("HTTP/1.1", "HTTP/1.0", 1),
            400,
        ),
        (
            "no Upgrade header",
            format!(
                "GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
            ),
            400,
        ),
        (
            "Connection without the upgrade token",
            handshake("/echo", "").replace("Connection: Upgrade", "Connection: keep-alive"),
            400,
        ),
        (
            "another protocol",
            handshake("/echo", "").replace("Upgrade: websocket", "Upgrade: h2c"),
            400,
        ),
        (
            "a short key",
            handshake("/echo", "").replace(KEY, "c2hvcnQ="),
            400,
        ),
        (
            "version 12",
            handshake("/echo", "").replace("Version: 13", "Version: 12"),
            426,
        ),
        (
            "a body",
            handshake("/echo", "Content-Length: 3\r\n") + "abc",
            400,
        ),
        (
            "a foreign origin",
            handshake("/echo", "Origin: http://evil.example\r\n"),
            403,
        ),
        (
            "POST",
            handshake("/echo", "").replacen("GET", "POST", 1),
            405,
        ),
    ];
    for (what, request, status) in cases {
        let (mut stream, head) = raw_upgrade(addr, &request);
        assert_eq!(status_of(&head), status, "{what}: {head}");
        if status == 426 {
            assert!(
                head.to_ascii_lowercase()
                    .contains("sec-websocket-version: 13\r\n"),
                "{head}"
            );
        }
        drop(stream.flush());
    }
}

#[test]
fn origins_of_the_same_host_or_the_allow_list_are_accepted() {
    let closes = Closes::default();
    let server = start(&closes);
    let addr = server.local_addr();
    for (path, origin, status) in [
        ("/echo", "http://localhost", 101),
        ("/origin", "https://allowed.example", 101),
        ("/origin", "https://other.example", 403),
    ] {
        let (_s, head) = raw_upgrade(addr, &handshake(path, &format!("Origin: {origin}\r\n")));
        assert_eq!(status_of(&head), status, "{path} from {origin}: {head}");
    }
}

#[test]
fn a_handler_can_refuse_before_upgrading() {
    let closes = Closes::default();
    let server = start(&closes);
    let addr = server.local_addr();
    let (_s, head) = raw_upgrade(addr, &handshake("/auth", ""));
    assert_eq!(status_of(&head), 401, "{head}");
    let (_s, head) = raw_upgrade(
        addr,
        &handshake("/auth", "Authorization: Bearer letmein\r\n"),
    );
    assert_eq!(status_of(&head), 101, "{head}");
}

#[test]
fn the_handler_picks_a_subprotocol_the_client_offered() {
    let closes = Closes::default();
    let server = start(&closes);
    let addr = server.local_addr();
    let (_s, head) = raw_upgrade(
        addr,
        &handshake("/proto", "Sec-WebSocket-Protocol: chat, chat.v2\r\n"),
    );
    assert!(
        head.contains("sec-websocket-protocol: chat.v2\r\n"),
        "{head}"
    );
    let (_s, head) = raw_upgrade(
        addr,
        &handshake("/proto", "Sec-WebSocket-Protocol: mqtt\r\n"),
    );
    assert_eq!(status_of(&head), 101);
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
}

// ---------------------------------------------------------------------------------------------
// Messages and closing
// ---------------------------------------------------------------------------------------------

#[test]
fn text_and_binary_messages_echo() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut socket = client(server.local_addr(), "/echo");
    let big = "é".repeat(100_000);
    for message in [
        ClientMessage::text("hello"),
        ClientMessage::binary(vec![0u8, 1, 2, 255]),
        ClientMessage::text(big),
        ClientMessage::text(""),
    ] {
        socket.send(message.clone()).expect("send");
        assert_eq!(socket.read().expect("echo"), message);
    }
    socket
        .close(Some(tungstenite::protocol::CloseFrame {
            code: ClientCloseCode::Normal,
            reason: "done".into(),
        }))
        .expect("close");
    loop {
        match socket.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
    let info = closes_for(&closes, "echo", Duration::from_secs(3)).expect("close hook ran");
    assert!(info.by_peer);
    assert_eq!(info.code, CloseCode::Normal);
}

#[test]
fn read_ahead_after_the_handshake_is_not_lost() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut stream = TcpStream::connect(server.local_addr()).expect("connect");
    stream
        .set_read_timeout(Some(support::READ_TIMEOUT))
        .expect("timeout");
    let mut bytes = handshake("/echo", "").into_bytes();
    bytes.extend(frame(0x1, b"early", true));
    stream.write_all(&bytes).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("head");
        head.push(byte[0]);
    }
    assert_eq!(
        read_frame(&mut stream).expect("echo"),
        (0x1, b"early".to_vec())
    );
}

#[test]
fn path_parameters_and_the_request_reach_the_handler() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut socket = client(server.local_addr(), "/rooms/kitchen");
    assert_eq!(
        socket.read().expect("welcome"),
        ClientMessage::text("welcome to kitchen")
    );
}

#[test]
fn protocol_violations_close_with_1002() {
    let closes = Closes::default();
    let server = start(&closes);
    let addr = server.local_addr();
    // An unmasked client frame, then a reserved opcode.
    for bad in [frame(0x1, b"hi", false), frame(0x3, b"", true)] {
        let mut stream = raw_open(addr, "/echo");
        stream.write_all(&bad).expect("write");
        assert_eq!(expect_close_code(&mut stream), 1002);
    }
}

#[test]
fn invalid_utf8_closes_with_1007() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut stream = raw_open(server.local_addr(), "/echo");
    stream
        .write_all(&frame(0x1, &[b'o', b'k', 0xff, 0xfe], true))
        .expect("write");
    assert_eq!(expect_close_code(&mut stream), 1007);
}

#[test]
fn an_oversized_message_closes_with_1009() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut stream = raw_open(server.local_addr(), "/small");
    stream
        .write_all(&frame(0x2, &[7u8; 1000], true))
        .expect("write");
    assert_eq!(read_frame(&mut stream).expect("echo").0, 0x2);
    stream
        .write_all(&frame(0x2, &[7u8; 2000], true))
        .expect("write");
    assert_eq!(expect_close_code(&mut stream), 1009);
}

#[test]
fn the_handler_closes_with_its_code_and_reason() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut socket = client(server.local_addr(), "/close");
    socket
        .send(ClientMessage::text("close please"))
        .expect("send");
    match socket.read().expect("close frame") {
        ClientMessage::Close(Some(frame)) => {
            assert_eq!(frame.code, ClientCloseCode::from(4000));
            assert_eq!(frame.reason.as_str(), "bye now");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // Reading on sends the client's reply, which completes the handshake.
    assert!(matches!(
        socket.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    let info = closes_for(&closes, "close", Duration::from_secs(3)).expect("close hook ran");
    assert_eq!(info.code, CloseCode::Library(4000));
    assert!(!info.by_peer);
}

#[test]
fn a_returning_handler_closes_normally_after_its_messages() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut stream = raw_open(server.local_addr(), "/return");
    assert_eq!(
        read_frame(&mut stream).expect("message"),
        (0x1, b"hello and goodbye".to_vec())
    );
    assert_eq!(expect_close_code(&mut stream), 1000);
}

#[test]
fn a_panicking_handler_closes_with_1011_and_the_server_lives_on() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut stream = raw_open(server.local_addr(), "/panic");
    stream.write_all(&frame(0x1, b"boom", true)).expect("write");
    assert_eq!(expect_close_code(&mut stream), 1011);
    let mut socket = client(server.local_addr(), "/echo");
    socket
        .send(ClientMessage::text("still here"))
        .expect("send");
    assert_eq!(
        socket.read().expect("echo"),
        ClientMessage::text("still here")
    );
}

// ---------------------------------------------------------------------------------------------
// Liveness and backpressure
// ---------------------------------------------------------------------------------------------

#[test]
fn pings_are_answered_while_the_handler_is_busy() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut stream = raw_open(server.local_addr(), "/busy");
    stream
        .write_all(&frame(0x1, b"slow one", true))
        .expect("write");
    std::thread::sleep(Duration::from_millis(100));
    let sent = Instant::now();
    stream
        .write_all(&frame(0x9, b"are you there", true))
        .expect("ping");
    assert_eq!(
        read_frame(&mut stream).expect("pong"),
        (0xA, b"are you there".to_vec())
    );
    assert!(
        sent.elapsed() < Duration::from_millis(1000),
        "the pong waited for the handler"
    );
    assert_eq!(
        read_frame(&mut stream).expect("echo"),
        (0x1, b"slow one".to_vec())
    );
}

#[test]
fn a_silent_peer_is_pinged_and_dropped_when_it_never_answers() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut stream = raw_open(server.local_addr(), "/keepalive");
    let started = Instant::now();
    let (opcode, _) = read_frame(&mut stream).expect("a ping");
    assert_eq!(opcode, 0x9);
    // No pong: the server gives up after the pong timeout and closes the socket.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(3));
    let info = closes_for(&closes, "keepalive", Duration::from_secs(3)).expect("close hook ran");
    assert_eq!(info.code, CloseCode::Abnormal);
}

#[test]
fn a_peer_that_answers_pings_stays_connected() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut stream = raw_open(server.local_addr(), "/keepalive");
    let until = Instant::now() + Duration::from_millis(1500);
    let mut pings = 0;
    while Instant::now() < until {
        let (opcode, payload) = read_frame(&mut stream).expect("a ping");
        assert_eq!(opcode, 0x9);
        pings += 1;
        stream.write_all(&frame(0xA, &payload, true)).expect("pong");
    }
    assert!(
        pings >= 3,
        "only {pings} pings in 1.5 s at a 200 ms interval"
    );
    stream
        .write_all(&frame(0x1, b"alive", true))
        .expect("write");
    loop {
        let (opcode, payload) = read_frame(&mut stream).expect("echo");
        if opcode == 0x1 {
            assert_eq!(payload, b"alive");
            break;
        }
    }
    assert!(closes_for(&closes, "keepalive", Duration::ZERO).is_none());
}

#[test]
fn a_slow_consumer_is_closed_with_1008_instead_of_growing_memory() {
    let closes = Closes::default();
    let server = start(&closes);
    let stream = raw_open(server.local_addr(), "/flood");
    // The client reads nothing: once the socket buffers and the four-message queue are
    // full, the next try_send closes the connection.
    let info = closes_for(&closes, "flood", Duration::from_secs(10)).expect("closed");
    assert_eq!(info.code, CloseCode::Policy);
    assert!(info.reason.contains("slow consumer"), "{}", info.reason);
    drop(stream);
}

// ---------------------------------------------------------------------------------------------
// Fan-out
// ---------------------------------------------------------------------------------------------

/// Connects to `/topic` until subscribers sit on both cores; returns them.
fn subscribers_on_both_cores(addr: SocketAddr) -> Vec<tungstenite::WebSocket<TcpStream>> {
    let mut sockets = Vec::new();
    let mut cores = std::collections::BTreeSet::new();
    while cores.len() < 2 {
        assert!(sockets.len() < 64, "64 connections all landed on one core");
        let mut socket = client(addr, "/topic");
        match socket.read().expect("greeting") {
            ClientMessage::Text(core) => {
                cores.insert(core.to_string());
            }
            other => panic!("unexpected greeting {other:?}"),
        }
        sockets.push(socket);
    }
    sockets
}

#[test]
fn a_publish_reaches_subscribers_on_every_core() {
    let config = support::config().workers(2);
    let server = support::start_with(config, || app(Closes::default()));
    let mut sockets = subscribers_on_both_cores(server.local_addr());
    for round in 0..3 {
        let text = format!("headline {round}");
        let publisher = round % sockets.len();
        sockets[publisher]
            .send(ClientMessage::text(text.clone()))
            .expect("publish");
        for (i, socket) in sockets.iter_mut().enumerate() {
            assert_eq!(
                socket.read().expect("delivery"),
                ClientMessage::text(text.clone()),
                "subscriber {i}, round {round}"
            );
        }
    }
}

#[cfg(feature = "redis")]
#[test]
fn the_redis_bridge_carries_publishes_between_servers() {
    let url = services::env_or("REDIS_URL", "redis://127.0.0.1:6379");
    let redis = squall::db::redis::RedisConfig::from_url(&url).expect("REDIS_URL is a redis URL");
    let reachable = services::tcp_reachable(redis.host(), redis.port(), Duration::from_millis(500));
    if !services::require_or_skip(&format!("redis at {url}"), reachable) {
        return;
    }
    let prefix = format!("squall-test:{}:hub:", std::process::id());
    let bridged = |redis: squall::db::redis::RedisConfig, prefix: String| {
        move || {
            Hub::current().bridge_redis(redis.clone(), &prefix);
            app(Closes::default())
        }
    };
    let one = support::start_with(support::config(), bridged(redis.clone(), prefix.clone()));
    let two = support::start_with(support::config(), bridged(redis, prefix));
    let mut here = client(one.local_addr(), "/topic");
    let mut there = client(two.local_addr(), "/topic");
    for socket in [&mut here, &mut there] {
        assert!(matches!(
            socket.read().expect("greeting"),
            ClientMessage::Text(_)
        ));
    }
    // The bridges subscribe in the background; publish until the first message crosses.
    let deadline = Instant::now() + Duration::from_secs(5);
    there
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut attempt = 0;
    loop {
        attempt += 1;
        here.send(ClientMessage::text(format!("ping {attempt}")))
            .expect("publish");
        assert_eq!(
            here.read().expect("own delivery"),
            ClientMessage::text(format!("ping {attempt}"))
        );
        match there.read() {
            Ok(message) => {
                assert_eq!(message, ClientMessage::text(format!("ping {attempt}")));
                break;
            }
            Err(_) if Instant::now() < deadline => continue,
            Err(e) => panic!("nothing crossed the bridge in 5 s: {e}"),
        }
    }
    // Across and back, exactly once each way.
    there
        .get_ref()
        .set_read_timeout(Some(support::READ_TIMEOUT))
        .expect("timeout");
    there
        .send(ClientMessage::binary(vec![1u8, 2, 3]))
        .expect("publish");
    assert_eq!(
        there.read().expect("own"),
        ClientMessage::binary(vec![1u8, 2, 3])
    );
    assert_eq!(
        here.read().expect("bridged"),
        ClientMessage::binary(vec![1u8, 2, 3])
    );
    here.get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert!(
        here.read().is_err(),
        "a bridged message was delivered twice"
    );
}

#[test]
fn graceful_shutdown_closes_websockets_with_1001() {
    let closes = Closes::default();
    let server = start(&closes);
    let mut stream = raw_open(server.local_addr(), "/echo");
    stream
        .write_all(&frame(0x1, b"before", true))
        .expect("write");
    assert_eq!(
        read_frame(&mut stream).expect("echo"),
        (0x1, b"before".to_vec())
    );
    let started = Instant::now();
    server.shutdown();
    assert_eq!(expect_close_code(&mut stream), 1001);
    // The client answers the close; the session ends and the server stops well before its
    // shutdown deadline.
    let mut reply = vec![0x88, 0x82, 0, 0, 0, 0];
    reply.extend_from_slice(&1001u16.to_be_bytes());
    stream.write_all(&reply).expect("close reply");
    server.join().expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let info = closes_for(&closes, "echo", Duration::ZERO).expect("close hook ran");
    assert_eq!(info.code, CloseCode::Away);
}

#[test]
fn websockets_count_toward_the_connection_limit() {
    let limits = squall::Limits {
        max_connections_per_core: 1,
        ..squall::Limits::default()
    };
    let closes = Closes::default();
    let app_closes = Arc::clone(&closes);
    let server = support::start_with(support::config().limits(limits), move || {
        app(Arc::clone(&app_closes))
    });
    let mut socket = client(server.local_addr(), "/echo");
    // The upgraded connection holds the core's one place: the next is not taken on.
    let mut waiting = support::Client::connect(server.local_addr());
    waiting.send("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
    waiting.expect_open(Duration::from_millis(300));
    socket.close(None).expect("close");
    while socket.read().is_ok() {}
    assert_eq!(waiting.response().status, 404);
}
