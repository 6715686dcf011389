//! The in-process test client and the ephemeral-port server helper, as an application's own
//! tests would use them; `testing_login.rs` drives a login flow through the toolkit.

use std::io::{Read, Write};

use squall::testing::{serve, TestClient};
use squall::{App, Error, Request};

async fn hello(_req: Request) -> &'static str {
    "hello"
}

#[test]
fn route_mistakes_surface_when_the_client_is_built() {
    let mistake = TestClient::new(App::new().get("/a", hello).get("/a", hello));
    assert!(mistake.is_err());
}

#[test]
fn serve_starts_a_real_server_on_an_ephemeral_port() {
    let server = serve(|| App::new().get("/", |_req: Request| async { "over the wire" }))
        .expect("server starts");
    let mut stream = std::net::TcpStream::connect(server.local_addr()).expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("\r\ndate: ") || answer.contains("\r\nDate: "),
        "{answer}"
    );
    assert!(answer.ends_with("over the wire"), "{answer}");
}

#[test]
fn a_factory_that_fails_stops_the_server_with_its_error() {
    let started =
        serve(|| -> Result<App, Error> { Err(Error::internal("the database url names no host")) });
    let err = started.expect_err("startup fails");
    assert!(
        err.to_string().contains("the database url names no host"),
        "{err}"
    );
}
