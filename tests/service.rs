//! The production-shaped example (examples/service.rs) with everything it switches on:
//! probes, Prometheus, request ids, CORS for its demonstration origin, handler time limits.

#![cfg(all(feature = "cors", feature = "metrics"))]

#[path = "../examples/service.rs"]
#[allow(dead_code)] // its main() is the example's, not the test's
mod service;
mod support;

use support::Client;

fn get(client: &mut Client, path: &str, extra: &str) -> support::Response {
    client.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n"));
    client.response()
}

#[test]
fn probes_metrics_request_ids_and_cors_are_all_on() {
    let server = support::start(|| service::app(&service::Settings::default()));
    let mut client = Client::connect(server.local_addr());
    assert_eq!(get(&mut client, "/healthz", "").status, 200);
    assert_eq!(get(&mut client, "/readyz", "").status, 200);

    let greeting = get(&mut client, "/api/greeting?name=ops", "");
    assert_eq!(greeting.status, 200);
    let id = greeting
        .header("x-request-id")
        .expect("a request id")
        .to_owned();
    assert!(
        greeting.text().contains("Hello, ops!"),
        "{}",
        greeting.text()
    );
    assert!(greeting.text().contains(&id), "{}", greeting.text());
    let long = "x".repeat(65);
    assert_eq!(
        get(&mut client, &format!("/api/greeting?name={long}"), "").status,
        400
    );

    // The demonstration origin may call the API from a browser; another may not.
    let preflight =
        "OPTIONS /api/greeting HTTP/1.1\r\nHost: t\r\nAccess-Control-Request-Method: GET\r\n";
    client.send(format!("{preflight}Origin: http://localhost:3000\r\n\r\n"));
    let allowed = client.response();
    assert_eq!(allowed.status, 204);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    client.send(format!("{preflight}Origin: http://evil.example\r\n\r\n"));
    let refused = client.response();
    assert!(refused.header("access-control-allow-origin").is_none());
    let actual = get(
        &mut client,
        "/api/status",
        "Origin: http://evil.example\r\n",
    );
    assert_eq!(actual.status, 200);
    assert!(actual.header("access-control-allow-origin").is_none());

    // Preflights count on their route: the greeting and the allowed one are 2xx, the
    // over-long name and the refused preflight 4xx.
    assert_eq!(get(&mut client, "/api/work?rounds=1", "").status, 200);
    assert_eq!(get(&mut client, "/api/work?rounds=65", "").status, 400);

    let metrics = get(&mut client, "/metrics", "").text();
    for line in [
        "squall_http_requests_total{route=\"/api/greeting\",status=\"2xx\"} 2",
        "squall_http_requests_total{route=\"/api/greeting\",status=\"4xx\"} 2",
        "squall_http_requests_total{route=\"/readyz\",status=\"2xx\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line:?} in {metrics}");
    }
}
