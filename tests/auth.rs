//! Signed cookies and the login guard over real loopback connections.
#![cfg(all(feature = "auth", feature = "signed"))]

mod support;

use std::cell::Cell;
use std::rc::Rc;

use squall::auth::{authenticated, safe_next, RequestAuth};
use squall::signed::{SignedCookies, SigningKeys};
use squall::{App, Request, Response, StatusCode};
use support::{get, request, start};

const OLD_SECRET: &str = "version one secret, thirty-two bytes at least";
const NEW_SECRET: &str = "version two secret, thirty-two bytes at least";

async fn login(req: Request) -> Result<Response, squall::Error> {
    let name: String = req.arg("name")?;
    let cookie = req.sign_cookie("user", &name)?;
    let next = safe_next(req.query_args().raw("next")).to_owned();
    Ok(Response::redirect_with(StatusCode::SEE_OTHER, &next).set_cookie(cookie))
}

/// Names the user, and says how often the loader ran although it was asked twice.
async fn whoami(mut req: Request, loads: Rc<Cell<u32>>) -> String {
    let before = loads.get();
    let user = req.current_user::<String>().await;
    let again = req.current_user::<String>().await;
    assert_eq!(user, again);
    let runs = loads.get() - before;
    match user {
        Some(user) => format!("user {user}, loaded {runs}x"),
        None => format!("nobody, loaded {runs}x"),
    }
}

async fn secret(mut req: Request) -> String {
    let user = req
        .current_user::<String>()
        .await
        .expect("the guard checked");
    format!("secret for {user}")
}

fn app_with(keys: SigningKeys) -> App {
    let loads = Rc::new(Cell::new(0));
    let counted = Rc::clone(&loads);
    App::new()
        .signing_keys(keys)
        .login_url("/login")
        .current_user(move |req: &Request| {
            counted.set(counted.get() + 1);
            std::future::ready(req.signed_cookie("user"))
        })
        .post("/login", login)
        .get("/whoami", move |req| whoami(req, Rc::clone(&loads)))
        .get("/secret", authenticated(secret))
        .post("/secret", authenticated(secret))
}

fn keys_v1() -> SigningKeys {
    SigningKeys::new(1, OLD_SECRET).expect("long secret")
}

fn keys_v2_accepting_v1() -> SigningKeys {
    SigningKeys::new(2, NEW_SECRET)
        .and_then(|k| k.accept(1, OLD_SECRET))
        .expect("two keys")
}

/// Logs in as `name` on `addr` and returns the `user=...` cookie pair.
fn log_in(addr: std::net::SocketAddr, name: &str) -> String {
    let r = request(
        addr,
        format!(
            "POST /login?name={name}&next=/secret HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/secret"));
    let set_cookie = r.header("set-cookie").expect("a cookie").to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2678400"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    set_cookie.split(';').next().expect("name=value").to_owned()
}

fn get_with_cookie(addr: std::net::SocketAddr, path: &str, cookie: &str) -> support::Response {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\r\n"),
    )
}

#[test]
fn a_signed_cookie_identifies_the_user() {
    let server = start(|| app_with(keys_v1()));
    let addr = server.local_addr();
    let cookie = log_in(addr, "ada");
    assert_eq!(
        get_with_cookie(addr, "/whoami", &cookie).text(),
        "user ada, loaded 1x"
    );
    assert_eq!(
        get_with_cookie(addr, "/secret", &cookie).text(),
        "secret for ada"
    );
    assert_eq!(request(addr, get("/whoami")).text(), "nobody, loaded 1x");
}

#[test]
fn tampered_and_foreign_cookies_read_as_absent() {
    let server = start(|| app_with(keys_v1()));
    let addr = server.local_addr();
    let cookie = log_in(addr, "ada");
    let forged = cookie.replacen("user=s1", "user=s1.1.0.cm9vdA", 1);
    assert_eq!(
        get_with_cookie(addr, "/whoami", &forged).text(),
        "nobody, loaded 1x"
    );
    let mut flipped = cookie.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'x' { b'y' } else { b'x' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    assert_eq!(
        get_with_cookie(addr, "/whoami", &flipped).text(),
        "nobody, loaded 1x"
    );
    assert_eq!(
        get_with_cookie(addr, "/whoami", "user=ada").text(),
        "nobody, loaded 1x"
    );

    // A server with another key for the same version rejects it as foreign.
    let other = start(|| app_with(SigningKeys::new(1, NEW_SECRET).expect("long secret")));
    assert_eq!(
        get_with_cookie(other.local_addr(), "/whoami", &cookie).text(),
        "nobody, loaded 1x"
    );
}

#[test]
fn rotated_keys_accept_old_cookies_and_sign_with_the_new_version() {
    let before = start(|| app_with(keys_v1()));
    let old_cookie = log_in(before.local_addr(), "ada");
    let after = start(|| app_with(keys_v2_accepting_v1()));
    let addr = after.local_addr();
    assert_eq!(
        get_with_cookie(addr, "/whoami", &old_cookie).text(),
        "user ada, loaded 1x"
    );
    let new_cookie = log_in(addr, "grace");
    assert!(new_cookie.starts_with("user=s1.2."), "{new_cookie}");
    // The old server never held version 2.
    assert_eq!(
        get_with_cookie(before.local_addr(), "/whoami", &new_cookie).text(),
        "nobody, loaded 1x"
    );
}

#[test]
fn the_guard_redirects_reads_and_refuses_writes() {
    let server = start(|| app_with(keys_v1()));
    let addr = server.local_addr();
    let r = request(addr, get("/secret?tab=a%20b"));
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fsecret%3Ftab%3Da%2520b")
    );
    let r = request(
        addr,
        "POST /secret HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 403);
    let r = request(
        addr,
        "POST /login?name=x&next=//evil.example HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.header("location"), Some("/"));
}

#[test]
fn without_a_login_url_the_guard_answers_401() {
    let server = start(|| {
        App::new()
            .current_user(|_req: &Request| std::future::ready(None::<String>))
            .get("/secret", authenticated(secret))
    });
    let r = request(server.local_addr(), get("/secret"));
    assert_eq!(r.status, 401);
}

#[test]
fn signing_without_keys_is_a_server_error_not_a_panic() {
    let server = start(|| App::new().post("/login", login));
    let r = request(
        server.local_addr(),
        "POST /login?name=ada HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 500);
}
