//! The chat example over loopback: its page, its rooms, and the close codes for bad input.
//! (The two-tab browser test of the same example is `scripts/browser-test.sh`.)
#![cfg(feature = "redis")]

#[path = "../examples/chat/app.rs"]
mod app;
mod support;

use std::net::{SocketAddr, TcpStream};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

fn join(addr: SocketAddr, room: &str) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(support::READ_TIMEOUT))
        .expect("timeout");
    let url = format!("ws://{addr}/rooms/{room}/ws");
    tungstenite::client::client(url.as_str(), stream)
        .expect("handshake")
        .0
}

fn read_json(socket: &mut tungstenite::WebSocket<TcpStream>) -> serde_json::Value {
    match socket.read().expect("a message") {
        Message::Text(text) => serde_json::from_str(text.as_str()).expect("json"),
        other => panic!("expected text, got {other:?}"),
    }
}

fn close_code(socket: &mut tungstenite::WebSocket<TcpStream>) -> CloseCode {
    loop {
        match socket.read().expect("a close frame") {
            Message::Close(Some(frame)) => return frame.code,
            Message::Close(None) => panic!("a close frame without a code"),
            _ => continue,
        }
    }
}

#[test]
fn the_page_names_its_room_and_bad_rooms_are_404() {
    let server = support::start(|| app::app(None));
    let addr = server.local_addr();
    let root = support::request(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(root.status, 302);
    assert_eq!(root.header("location"), Some("/rooms/lobby"));
    let page = support::request(addr, "GET /rooms/kitchen HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("kitchen") && !html.contains("{{room}}"));
    assert!(html.contains("id=\"messages\""));
    let bad = support::request(addr, "GET /rooms/%3Cscript%3E HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(bad.status, 404);
}

#[test]
fn messages_reach_everyone_in_the_room_and_no_one_else() {
    let config = support::config().workers(2);
    let server = support::start_with(config, || app::app(None));
    let addr = server.local_addr();
    let mut alice = join(addr, "kitchen");
    let mut bob = join(addr, "kitchen");
    let mut carol = join(addr, "garden");
    alice
        .send(Message::text(r#"{"name": "alice", "text": "dinner?"}"#))
        .expect("send");
    for socket in [&mut alice, &mut bob] {
        let posted = read_json(socket);
        assert_eq!(posted["room"], "kitchen");
        assert_eq!(posted["name"], "alice");
        assert_eq!(posted["text"], "dinner?");
        assert!(posted["at"].as_u64().is_some_and(|at| at > 0));
    }
    carol
        .get_ref()
        .set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .expect("timeout");
    assert!(
        carol.read().is_err(),
        "a kitchen message reached the garden"
    );
}

#[test]
fn bad_messages_close_with_a_code() {
    let server = support::start(|| app::app(None));
    let addr = server.local_addr();
    let mut socket = join(addr, "lobby");
    socket.send(Message::text("not json")).expect("send");
    assert_eq!(close_code(&mut socket), CloseCode::Policy);
    let mut socket = join(addr, "lobby");
    socket.send(Message::binary(vec![1u8, 2])).expect("send");
    assert_eq!(close_code(&mut socket), CloseCode::Unsupported);
}
