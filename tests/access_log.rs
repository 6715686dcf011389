//! The access log: one `tracing` event per request on target `squall::access`, off unless
//! configured. Its own test binary, because it installs a process-wide subscriber.

mod support;

use squall::{App, Request};
use support::{config, start_with, Client};

async fn teapot(_req: Request) -> (squall::StatusCode, &'static str) {
    (squall::StatusCode::IM_A_TEAPOT, "short and stout")
}

fn app() -> App {
    App::new().get("/tea", teapot)
}

#[test]
fn requests_are_logged_only_when_the_access_log_is_on() {
    let captured = support::CapturedLog::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let logged = || captured.text();

    let quiet = start_with(config(), app);
    let mut c = Client::connect(quiet.local_addr());
    c.send("GET /tea?quiet=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.response().status, 418);
    drop(quiet);
    assert!(!logged().contains("squall::access"), "{}", logged());

    let loud = start_with(config().access_log(true), app);
    let mut c = Client::connect(loud.local_addr());
    c.send("GET /tea?loud=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.response().status, 418);
    drop(loud);
    let log = logged();
    let line = log
        .lines()
        .find(|l| l.contains("squall::access"))
        .unwrap_or_else(|| panic!("no access line in {log}"));
    for part in [
        "status=418",
        "method=GET",
        "target=/tea?loud=1",
        "micros=",
        "peer=127.0.0.1:",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
}
