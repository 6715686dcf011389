//! Debug mode: detailed pages for server errors when on, nothing internal when off.

mod support;

use squall::{App, Error, Request};
use support::{get, request, start};

async fn failing(_req: Request) -> Result<&'static str, Error> {
    let cause = std::io::Error::other("connection refused by 10.0.0.7:5432");
    Err(Error::internal("could not load the <user>").with_source(cause))
}

async fn panicking(req: Request) -> &'static str {
    if req.path().len() > 1 {
        panic!("index out of bounds in the cart");
    }
    "never"
}

fn app(debug: bool) -> App {
    App::new()
        .debug(debug)
        .error_page(|e| squall::Response::html(format!("<p>sorry: {}</p>", e.status())))
        .get("/fail", failing)
        .get("/panic", panicking)
}

#[test]
fn debug_pages_show_the_error_its_cause_and_the_request() {
    let server = start(|| app(true));
    let addr = server.local_addr();
    let r = request(
        addr,
        "GET /fail?x=1 HTTP/1.1\r\nHost: t\r\nX-Probe: <script>\r\n\r\n",
    );
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    for expected in [
        "could not load the &lt;user&gt;",
        "caused by: connection refused by 10.0.0.7:5432",
        "GET /fail?x=1 HTTP/1.1",
        "X-Probe",
        "&lt;script&gt;",
    ] {
        assert!(page.contains(expected), "{expected:?} missing from {page}");
    }
    assert!(!page.contains("<script>"));
    let page = request(addr, get("/panic")).text();
    assert!(page.contains("index out of bounds in the cart"), "{page}");
    // Client errors keep the application's own page.
    let r = request(addr, get("/missing"));
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "<p>sorry: 404 Not Found</p>");
}

#[test]
fn without_debug_a_server_error_shows_nothing_internal() {
    let server = start(|| app(false));
    let addr = server.local_addr();
    for path in ["/fail", "/panic"] {
        let r = request(addr, get(path));
        assert_eq!(r.status, 500);
        assert_eq!(r.text(), "<p>sorry: 500 Internal Server Error</p>");
    }
    let plain = start(|| App::new().get("/fail", failing));
    let r = request(plain.local_addr(), get("/fail"));
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("10.0.0.7"), "{}", r.text());
    assert!(!r.text().contains("user"), "{}", r.text());
}
