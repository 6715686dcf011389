//! XSRF protection over real loopback connections: the token cookie, the form field and
//! header paths, and every way a request is refused.
#![cfg(feature = "xsrf")]

mod support;

use squall::xsrf::{self, Xsrf};
use squall::{App, Request};
use support::{get, request, start};

async fn form_page(req: Request) -> Result<String, squall::Error> {
    xsrf::form_field(&req)
}

async fn token(req: Request) -> Result<String, squall::Error> {
    xsrf::token(&req)
}

async fn submit(mut req: Request) -> Result<String, squall::Error> {
    let args = req.args().await?;
    Ok(format!("saved {}", args.raw("title").unwrap_or("-")))
}

fn app() -> App {
    App::new()
        .wrap(Xsrf::default())
        .get("/form", form_page)
        .get("/token", token)
        .post("/submit", submit)
        .delete("/submit", submit)
}

/// Fetches a page, returning the cookie pair the middleware set and the page's body.
fn visit(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let r = request(addr, get(path));
    assert_eq!(r.status, 200);
    let set_cookie = r.header("set-cookie").expect("a token cookie").to_owned();
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !set_cookie.contains("HttpOnly"),
        "scripts must read it: {set_cookie}"
    );
    let pair = set_cookie.split(';').next().expect("pair").to_owned();
    (pair, r.text())
}

fn form_value(field: &str) -> String {
    let start = field.find("value=\"").expect("value") + 7;
    field[start..]
        .split('"')
        .next()
        .expect("closing quote")
        .to_owned()
}

fn post_form(addr: std::net::SocketAddr, cookie: Option<&str>, body: &str) -> support::Response {
    let cookie = cookie.map_or_else(String::new, |c| format!("Cookie: {c}\r\n"));
    request(
        addr,
        format!(
            "POST /submit HTTP/1.1\r\nHost: t\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn a_form_with_the_token_field_passes_and_the_handler_still_reads_the_body() {
    let server = start(app);
    let addr = server.local_addr();
    let (cookie, page) = visit(addr, "/form");
    assert!(
        page.starts_with(r#"<input type="hidden" name="_xsrf" value=""#),
        "{page}"
    );
    let token = form_value(&page);
    let r = post_form(addr, Some(&cookie), &format!("title=hello&_xsrf={token}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "saved hello");
    // A request that already has the cookie is not given a new one.
    assert!(r.header("set-cookie").is_none());
}

#[test]
fn each_page_masks_the_token_differently() {
    let server = start(app);
    let addr = server.local_addr();
    let (cookie, _) = visit(addr, "/form");
    let fetch = || {
        request(
            addr,
            format!("GET /token HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\r\n"),
        )
        .text()
    };
    let (a, b) = (fetch(), fetch());
    assert_ne!(a, b);
    for t in [a, b] {
        let r = post_form(addr, Some(&cookie), &format!("_xsrf={t}"));
        assert_eq!(r.status, 200);
    }
}

#[test]
fn the_token_may_travel_in_either_header_masked_or_raw() {
    let server = start(app);
    let addr = server.local_addr();
    let (cookie, page) = visit(addr, "/form");
    let masked = form_value(&page);
    let raw = cookie.split_once('=').expect("pair").1.to_owned();
    for (header, value) in [
        ("X-XSRF-Token", masked.as_str()),
        ("X-CSRF-Token", masked.as_str()),
        ("X-XSRF-Token", raw.as_str()),
    ] {
        let r = request(
            addr,
            format!("DELETE /submit HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n{header}: {value}\r\n\r\n"),
        );
        assert_eq!(r.status, 200, "{header}: {}", r.text());
    }
}

#[test]
fn missing_or_wrong_tokens_are_refused_with_403() {
    let server = start(app);
    let addr = server.local_addr();
    let (cookie, page) = visit(addr, "/form");
    let token = form_value(&page);
    let (other_cookie, other_page) = visit(addr, "/form");
    assert_ne!(cookie, other_cookie);

    let r = post_form(addr, Some(&cookie), "title=x");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("xsrf token missing"), "{}", r.text());

    let r = post_form(addr, None, &format!("_xsrf={token}"));
    assert_eq!(r.status, 403);
    assert!(r.text().contains("xsrf cookie missing"), "{}", r.text());

    // Another browser's token does not match this browser's cookie.
    let r = post_form(
        addr,
        Some(&cookie),
        &format!("_xsrf={}", form_value(&other_page)),
    );
    assert_eq!(r.status, 403);
    assert!(r.text().contains("does not match"), "{}", r.text());

    for junk in ["", "abc", "!!!!"] {
        let r = post_form(addr, Some(&cookie), &format!("_xsrf={junk}"));
        assert_eq!(r.status, 403, "{junk:?}");
    }
    // A tampered cookie counts as missing.
    let r = post_form(addr, Some("_xsrf=short"), &format!("_xsrf={token}"));
    assert_eq!(r.status, 403);
}

#[test]
fn multipart_forms_carry_the_token_in_the_query() {
    let server = start(app);
    let addr = server.local_addr();
    let (cookie, page) = visit(addr, "/form");
    let token = form_value(&page);
    let body = "--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n--b--\r\n";
    let send = |target: &str| {
        request(
            addr,
            format!(
                "POST {target} HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert_eq!(send("/submit").status, 403);
    assert_eq!(send(&format!("/submit?_xsrf={token}")).status, 200);
}

#[test]
fn safe_methods_pass_without_a_token() {
    let server = start(app);
    let r = request(server.local_addr(), get("/form"));
    assert_eq!(r.status, 200);
    let mut client = support::Client::connect(server.local_addr());
    client.send("HEAD /form HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.head_response().status, 200);
}
