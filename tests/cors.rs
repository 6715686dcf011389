//! CORS over real connections: preflights answered or refused without reaching handlers,
//! actual requests from allowed and disallowed origins, `Vary`, and a bad policy stopping
//! the server at startup.
#![cfg(feature = "cors")]

mod support;

use std::time::Duration;

use squall::cors::Cors;
use squall::{App, Method, Request, Server};
use support::{config, request, start};

fn app() -> App {
    App::new()
        .wrap(
            Cors::new()
                .allow_origin("https://app.example.com")
                .allow_origin("https://*.example.org")
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers(["content-type", "x-api-key"])
                .expose_headers(["x-total"])
                .allow_credentials(true)
                .max_age(Duration::from_secs(600)),
        )
        .get("/items", |_req: Request| async {
            squall::Response::text("items").with_header(
                squall::HeaderName::from_static("x-total"),
                squall::HeaderValue::from_static("3"),
            )
        })
        .delete("/items", |_req: Request| async { "deleted" })
        .route(Method::OPTIONS, "/reached", |_req: Request| async {
            "the handler"
        })
}

fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
) -> support::Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: api.example.com\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    request(addr, raw)
}

#[test]
fn an_allowed_preflight_gets_the_policy() {
    let server = start(app);
    let r = send(
        server.local_addr(),
        "OPTIONS",
        "/items",
        &[
            "Origin: https://app.example.com",
            "Access-Control-Request-Method: DELETE",
            "Access-Control-Request-Headers: content-type, x-api-key",
        ],
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, DELETE")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-api-key")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    let vary = r.header("vary").expect("vary").to_ascii_lowercase();
    assert!(vary.contains("origin"), "{vary}");
}

#[test]
fn refused_preflights_get_no_cors_headers_and_never_reach_the_handler() {
    let server = start(app);
    let addr = server.local_addr();
    for headers in [
        // A disallowed origin, a suffix trick, `null`, a method and a header not allowed.
        &[
            "Origin: https://evil.com",
            "Access-Control-Request-Method: GET",
        ][..],
        &[
            "Origin: https://evil-example.org",
            "Access-Control-Request-Method: GET",
        ],
        &[
            "Origin: https://app.example.com.evil.com",
            "Access-Control-Request-Method: GET",
        ],
        &["Origin: null", "Access-Control-Request-Method: GET"],
        &[
            "Origin: https://app.example.com",
            "Access-Control-Request-Method: PATCH",
        ],
        &[
            "Origin: https://app.example.com",
            "Access-Control-Request-Method: POST",
            "Access-Control-Request-Headers: x-secret",
        ],
    ] {
        let r = send(addr, "OPTIONS", "/reached", headers);
        assert_eq!(r.status, 403, "{headers:?}");
        assert_ne!(r.text(), "the handler");
        assert!(
            r.headers
                .iter()
                .all(|(n, _)| !n.to_ascii_lowercase().starts_with("access-control-")),
            "{headers:?}: {:?}",
            r.headers
        );
    }
    // Without Access-Control-Request-Method an OPTIONS is no preflight: the handler answers.
    let r = send(
        addr,
        "OPTIONS",
        "/reached",
        &["Origin: https://app.example.com"],
    );
    assert_eq!(r.text(), "the handler");
}

#[test]
fn actual_requests_from_allowed_origins_may_read_the_response() {
    let server = start(app);
    let addr = server.local_addr();
    let r = send(addr, "GET", "/items", &["Origin: https://a.b.example.org"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "items");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://a.b.example.org")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-expose-headers"), Some("x-total"));
    assert_eq!(r.header("vary"), Some("origin"));

    // A disallowed origin: the handler answers, the browser may not read it.
    let r = send(addr, "DELETE", "/items", &["Origin: https://evil.com"]);
    assert_eq!(r.text(), "deleted");
    assert!(r.header("access-control-allow-origin").is_none());
    assert!(r.header("access-control-allow-credentials").is_none());
    assert_eq!(r.header("vary"), Some("origin"));

    // Two Origin headers are nothing a browser sends: no CORS headers.
    let r = send(
        addr,
        "GET",
        "/items",
        &[
            "Origin: https://app.example.com",
            "Origin: https://evil.com",
        ],
    );
    assert!(r.header("access-control-allow-origin").is_none());

    // Not cross-origin at all: only Vary.
    let r = send(addr, "GET", "/items", &[]);
    assert!(r.header("access-control-allow-origin").is_none());
    assert_eq!(r.header("vary"), Some("origin"));
}

#[test]
fn any_origin_without_credentials_answers_star() {
    let server = start(|| {
        App::new()
            .wrap(Cors::new().allow_any_origin().allow_any_header())
            .get("/", |_req: Request| async { "open" })
    });
    let addr = server.local_addr();
    let r = send(addr, "GET", "/", &["Origin: https://anyone.test"]);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("vary").is_none());
    let r = send(
        addr,
        "OPTIONS",
        "/",
        &[
            "Origin: null",
            "Access-Control-Request-Method: POST",
            "Access-Control-Request-Headers: x-anything",
        ],
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-anything"));
}

#[test]
fn a_bad_policy_is_one_clear_startup_error() {
    let err = Server::new(config())
        .spawn(|| {
            App::new()
                .wrap(Cors::new().allow_any_origin().allow_credentials(true))
                .get("/", |_req: Request| async { "x" })
        })
        .expect_err("refused at startup");
    let text = err.to_string();
    assert!(text.contains("cors: any origin with credentials"), "{text}");
    let err = Server::new(config())
        .spawn(|| App::new().wrap(Cors::new().allow_origin("https://app.example.com/")))
        .expect_err("refused at startup");
    assert!(err.to_string().contains("is not an origin"), "{err}");
}
