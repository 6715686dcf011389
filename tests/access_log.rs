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
        // Spans' closing lines carry their recorded status and latency.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
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
    assert!(!line.contains("request_id"), "{line}");
    assert!(
        !log.contains("request{"),
        "no spans without request ids: {log}"
    );
    check_request_ids(&captured);
}

async fn traced(_req: Request) -> (squall::StatusCode, &'static str) {
    tracing::info!(target: "app", "brewing");
    (squall::StatusCode::IM_A_TEAPOT, "short and stout")
}

/// The log and spans of a request with request ids on; run by the test above, since a
/// process has one subscriber.
fn check_request_ids(captured: &support::CapturedLog) {
    let trusted = config()
        .access_log(true)
        .trust_proxy("127.0.0.1/32".parse::<ipnet::IpNet>().expect("net"));
    let server = start_with(trusted, || {
        App::new().request_ids(true).get("/tea/{kind}", traced)
    });
    let mut c = Client::connect(server.local_addr());
    c.send("GET /tea/green HTTP/1.1\r\nHost: a\r\nX-Request-Id: proxy-42\r\n\r\n");
    let response = c.response();
    assert_eq!(response.status, 418);
    assert_eq!(response.header("x-request-id"), Some("proxy-42"));
    drop(server);
    let log = captured.text();
    let find = |what: &str| {
        log.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no line with {what} in {log}"))
            .to_owned()
    };
    let access = find("target=/tea/green");
    assert!(access.contains("squall::access"), "{access}");
    assert!(access.contains("request_id=\"proxy-42\""), "{access}");
    // The handler's event is inside the request's span, which names the route pattern.
    let event = find("brewing");
    for part in [
        "request{",
        "method=GET",
        "route=\"/tea/{kind}\"",
        "proxy-42",
    ] {
        assert!(event.contains(part), "{part} missing from {event}");
    }
    // The span's close carries the status and the latency.
    let close = find("close");
    for part in ["status=418", "latency_us="] {
        assert!(close.contains(part), "{part} missing from {close}");
    }
}
