//! Request ids over real connections: made when absent, believed only from trusted proxies,
//! replaced when malformed or too long, echoed in the response and readable by handlers.

mod support;

use squall::{App, Request};
use support::{config, get, request, start, start_with};

async fn echo_id(req: Request) -> String {
    req.request_id().unwrap_or("none").to_owned()
}

fn app() -> App {
    App::new().request_ids(true).get("/id", echo_id)
}

fn with_id(id: &str) -> String {
    format!("GET /id HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\n\r\n")
}

#[test]
fn ids_are_made_echoed_and_seen_by_handlers() {
    let server = start(app);
    let addr = server.local_addr();
    let first = request(addr, get("/id"));
    let second = request(addr, get("/id"));
    let id = first.header("x-request-id").expect("an id").to_owned();
    assert_eq!(first.text(), id, "the handler sees the id the client gets");
    assert_ne!(second.header("x-request-id"), Some(id.as_str()));
    // Not from a trusted proxy: the client's own id is replaced.
    let r = request(addr, with_id("client-chose-this"));
    assert_ne!(r.header("x-request-id"), Some("client-chose-this"));
    assert_eq!(r.text(), r.header("x-request-id").expect("an id"));
    // The router's own answers carry one too.
    assert!(request(addr, get("/missing"))
        .header("x-request-id")
        .is_some());
}

#[test]
fn a_trusted_proxy_id_is_kept_unless_malformed() {
    let trusted = config().trust_proxy("127.0.0.1/32".parse::<ipnet::IpNet>().expect("net"));
    let server = start_with(trusted, app);
    let addr = server.local_addr();
    let r = request(addr, with_id("edge-7f3a"));
    assert_eq!(r.header("x-request-id"), Some("edge-7f3a"));
    assert_eq!(r.text(), "edge-7f3a");
    let longest = "a".repeat(squall::request_id::MAX_LEN);
    assert_eq!(
        request(addr, with_id(&longest)).header("x-request-id"),
        Some(longest.as_str())
    );
    let too_long = "a".repeat(squall::request_id::MAX_LEN + 1);
    for bad in [too_long.as_str(), "two words", "caf\u{e9}", "tab\there"] {
        let r = request(addr, with_id(bad));
        let id = r.header("x-request-id").expect("a replacement id");
        assert_ne!(id, bad);
        assert!(
            id.len() <= 33 && id.bytes().all(|b| b.is_ascii_graphic()),
            "{id}"
        );
    }
}

#[test]
fn without_request_ids_nothing_is_added() {
    let server = start(|| App::new().get("/id", echo_id));
    let r = request(server.local_addr(), with_id("x"));
    assert_eq!(r.header("x-request-id"), None);
    assert_eq!(r.text(), "none");
}
