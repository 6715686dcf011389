//! Middleware over real loopback connections: order, short-circuits, extensions handed to
//! handlers, and the router's own answers passing through the chain.

mod support;

use squall::middleware::Next;
use squall::{App, HeaderName, HeaderValue, Request, Response, StatusCode};
use support::{get, request, start};

/// Appends `tag` to the `x-trail` response header, so the order middleware ran in shows.
fn tagging(
    tag: &'static str,
) -> impl Fn(Request, Next) -> squall::future::LocalFuture<'static, Response> {
    move |req, next| {
        Box::pin(async move {
            let mut response = next.run(req).await;
            let trail = response
                .headers()
                .get("x-trail")
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| tag.to_owned(), |t| format!("{t},{tag}"));
            response.insert_header(
                HeaderName::from_static("x-trail"),
                HeaderValue::from_str(&trail).expect("ascii"),
            );
            response
        })
    }
}

struct Tenant(String);

async fn whoami(req: Request) -> String {
    req.extensions()
        .get::<Tenant>()
        .map_or_else(|| "nobody".to_owned(), |t| t.0.clone())
}

fn app() -> App {
    App::new()
        .wrap(tagging("outer"))
        .wrap(tagging("inner"))
        .wrap(|mut req: Request, next: Next| async move {
            if req.path() == "/blocked" {
                return Response::new(StatusCode::FORBIDDEN);
            }
            if let Some(tenant) = req.header("x-tenant").map(str::to_owned) {
                req.extensions_mut().insert(Tenant(tenant));
            }
            next.run(req).await
        })
        .get("/who", whoami)
        .get("/blocked", whoami)
        .get("/panic", |req: Request| async move {
            if req.path() == "/panic" {
                panic!("handler failed");
            }
            "unreachable"
        })
}

#[test]
fn middleware_runs_outermost_first_and_hands_values_to_handlers() {
    let server = start(app);
    let addr = server.local_addr();
    let r = request(
        addr,
        "GET /who HTTP/1.1\r\nHost: t\r\nX-Tenant: acme\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "acme");
    // The inner middleware's response is what the outer one sees.
    assert_eq!(r.header("x-trail"), Some("inner,outer"));
    assert_eq!(request(addr, get("/who")).text(), "nobody");
}

#[test]
fn middleware_can_answer_without_the_handler() {
    let server = start(app);
    let r = request(server.local_addr(), get("/blocked"));
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-trail"), Some("inner,outer"));
}

#[test]
fn router_answers_and_panics_pass_through_the_chain() {
    let server = start(app);
    let addr = server.local_addr();
    let r = request(addr, get("/missing"));
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-trail"), Some("inner,outer"));
    let r = request(addr, "DELETE /who HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    let r = request(addr, get("/panic"));
    assert_eq!(r.status, 500);
}
