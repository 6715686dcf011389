//! Loopback integration tests: a real server on 127.0.0.1, raw bytes in, responses parsed
//! strictly out. Each test starts its own server on an ephemeral port.

mod support;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::StreamExt;
use squall::response::TEXT_PLAIN;
use squall::{App, Body, Error, Json, Limits, Request, Response, StatusCode};

use support::{config, get, post, request, small_limits, start, start_with, Client, Ending};

// ---------------------------------------------------------------------------------------------
// The application under test
// ---------------------------------------------------------------------------------------------

async fn hello(_req: Request) -> &'static str {
    "hello world"
}

/// Echoes query argument `i`, so responses can be matched to requests.
async fn arg(req: Request) -> Result<String, Error> {
    req.arg::<String>("i")
}

async fn echo(mut req: Request) -> Result<Response, Error> {
    let content_type = req
        .header("content-type")
        .and_then(|v| squall::HeaderValue::from_str(v).ok())
        .unwrap_or(squall::response::OCTET_STREAM);
    let body = req.bytes().await?;
    Ok(Response::with_body(content_type, body))
}

async fn slow(_req: Request) -> &'static str {
    glommio::timer::sleep(Duration::from_millis(300)).await;
    "slow done"
}

/// A body of unknown length, produced over time.
async fn stream(_req: Request) -> Response {
    let chunks = futures_lite::stream::iter(["alpha-", "beta-", "gamma"]).then(|s| async move {
        glommio::timer::sleep(Duration::from_millis(5)).await;
        Ok::<_, Error>(Bytes::from_static(s.as_bytes()))
    });
    Response::with_body(TEXT_PLAIN, Body::stream(chunks))
}

/// A body fed from a spawned task through `Body::channel`, with a channel smaller than the body.
async fn channel_stream(_req: Request) -> Response {
    let (tx, body) = Body::channel(1);
    glommio::spawn_local(async move {
        for i in 0..5 {
            if tx.send(format!("part{i};")).await.is_err() {
                return;
            }
        }
    })
    .detach();
    Response::with_body(TEXT_PLAIN, body)
}

/// A stream that fails after its first chunk.
async fn stream_fails(_req: Request) -> Response {
    let chunks = futures_lite::stream::iter([
        Ok(Bytes::from_static(b"partial")),
        Err(Error::internal("the stream broke on purpose")),
    ]);
    Response::with_body(TEXT_PLAIN, Body::stream(chunks))
}

/// A stream whose length is known in advance.
async fn sized_stream(_req: Request) -> Response {
    let chunks = futures_lite::stream::iter(["alpha-", "beta-", "gamma"])
        .map(|s| Ok::<_, Error>(Bytes::from_static(s.as_bytes())));
    Response::with_body(TEXT_PLAIN, Body::sized_stream(16, chunks))
}

/// One MiB.
async fn big(_req: Request) -> Vec<u8> {
    vec![b'x'; 1 << 20]
}

async fn panics(_req: Request) -> &'static str {
    panic!("handler exploded on purpose")
}

async fn no_content(_req: Request) {}

async fn not_modified(_req: Request) -> (StatusCode, &'static str) {
    (StatusCode::NOT_MODIFIED, "this body must never be sent")
}

async fn user(req: Request) -> Result<String, Error> {
    let id: u32 = req.param_as("id")?;
    Ok(format!("user {id}"))
}

async fn add(req: Request) -> Result<String, Error> {
    let a: i64 = req.arg("a")?;
    let b: i64 = req.arg("b")?;
    Ok((a + b).to_string())
}

async fn json(mut req: Request) -> Result<Json<serde_json::Value>, Error> {
    let value: serde_json::Value = req.json().await?;
    let name = value
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| Error::bad_request("name is required"))?
        .to_owned();
    Ok(Json(serde_json::json!({ "hello": name })))
}

async fn set_cookie(_req: Request) -> Response {
    Response::text("set").set_cookie(
        squall::cookie::Cookie::build(("session", "a b"))
            .http_only(true)
            .build(),
    )
}

async fn get_cookie(req: Request) -> String {
    req.cookie("session").unwrap_or_else(|| "none".to_owned())
}

async fn old(_req: Request) -> Response {
    Response::redirect("/new")
}

async fn moved(_req: Request) -> Response {
    Response::redirect_with(StatusCode::MOVED_PERMANENTLY, "/elsewhere")
}

async fn link(req: Request) -> Result<String, Error> {
    req.url_for("user", &[("id", "7 x")])
}

async fn refuse(_req: Request) -> Result<&'static str, Error> {
    Err(Error::bad_request("refused by handler"))
}

async fn client_ip(req: Request) -> String {
    req.client_ip().to_string()
}

fn app() -> App {
    App::new()
        .get("/hello", hello)
        .get("/arg", arg)
        .post("/echo", echo)
        .get("/slow", slow)
        .get("/stream", stream)
        .get("/channel-stream", channel_stream)
        .get("/stream-fails", stream_fails)
        .get("/sized-stream", sized_stream)
        .get("/big", big)
        .get("/panic", panics)
        .get("/empty", no_content)
        .get("/not-modified", not_modified)
        .get("/users/{id}", user)
        .name("user")
        .get("/add", add)
        .post("/json", json)
        .get("/cookie/set", set_cookie)
        .get("/cookie/get", get_cookie)
        .get("/old", old)
        .get("/moved", moved)
        .get("/link", link)
        .get("/refuse", refuse)
        .get("/ip", client_ip)
}

fn app_with_error_page() -> App {
    app().error_page(|e: &Error| {
        Response::html(format!(
            "<h1>custom {} {}</h1>",
            e.status().as_u16(),
            e.public_message()
        ))
    })
}

/// A server with short timeouts for the timing tests.
fn timeout_limits(header: u64, keep_alive: u64, body: u64) -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(header),
        keep_alive_timeout: Duration::from_millis(keep_alive),
        body_read_timeout: Duration::from_millis(body),
        ..Limits::default()
    }
}

#[track_caller]
fn assert_ok(r: &support::Response, body: &str) {
    assert_eq!(r.status, 200, "status of {r:?}");
    assert_eq!(r.text(), body, "body of {r:?}");
}

// ---------------------------------------------------------------------------------------------
// 1. Keep-alive
// ---------------------------------------------------------------------------------------------

#[test]
fn http11_keeps_the_connection_alive_across_requests() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    for i in 0..5 {
        c.send(get(&format!("/arg?i={i}")));
        let r = c.response();
        assert_ok(&r, &i.to_string());
        assert_eq!(
            r.header("connection"),
            None,
            "HTTP/1.1 default needs no header"
        );
        assert!(r.header("date").is_some() && r.header("server").is_some());
    }
    c.expect_open(Duration::from_millis(200));
    c.send(get("/hello"));
    assert_ok(&c.response(), "hello world");
}

#[test]
fn http10_closes_by_default() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send("GET /hello HTTP/1.0\r\n\r\nGET /hello HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_ok(&r, "hello world");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed();
}

#[test]
fn http10_keep_alive_is_honoured() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    for i in 0..3 {
        c.send(format!(
            "GET /arg?i={i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        ));
        let r = c.response();
        assert_ok(&r, &i.to_string());
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    c.expect_open(Duration::from_millis(200));
    // Without the header the next HTTP/1.0 request closes.
    c.send("GET /hello HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed();
}

#[test]
fn connection_close_is_honoured_and_ends_the_pipeline() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(format!(
        "GET /arg?i=first HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n{}",
        get("/arg?i=behind")
    ));
    let r = c.response();
    assert_ok(&r, "first");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed();
}

// ---------------------------------------------------------------------------------------------
// 2. Pipelining
// ---------------------------------------------------------------------------------------------

#[test]
fn sixteen_pipelined_requests_are_answered_in_order() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    let batch: String = (0..16).map(|i| get(&format!("/arg?i=req{i}"))).collect();
    c.send(batch);
    for (i, r) in c.responses(16).iter().enumerate() {
        assert_ok(r, &format!("req{i}"));
    }
    assert!(c.buffered().is_empty());
    c.expect_open(Duration::from_millis(100));
}

#[test]
fn pipelined_mix_of_bodies_head_and_errors_stays_in_order() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    let mut batch = String::new();
    batch += &post("/echo", "text/plain", "body one");
    batch += "HEAD /hello HTTP/1.1\r\nHost: test\r\n\r\n";
    batch += "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n";
    batch += &get("/nope");
    batch += &get("/arg?i=last");
    c.send(batch);
    assert_ok(&c.response(), "body one");
    let h = c.head_response();
    assert_eq!((h.status, h.header("content-length")), (200, Some("11")));
    assert_ok(&c.response(), "two");
    assert_eq!(c.response().status, 404);
    assert_ok(&c.response(), "last");
}

// ---------------------------------------------------------------------------------------------
// 3. Bad input: each class answers with its status, closes, and never answers what follows.
// ---------------------------------------------------------------------------------------------

/// Sends a good request, then `bad`, then another good request, all in one write. The first
/// must be answered intact, the bad one with `status` (with `date` and `connection: close`),
/// and then the connection must close without an answer to the third.
#[track_caller]
fn assert_rejected(bad: &[u8], status: u16) {
    let server = start_with(config().limits(small_limits()), app);
    let mut c = Client::connect(server.local_addr());
    let mut wire = get("/arg?i=before").into_bytes();
    wire.extend_from_slice(bad);
    wire.extend_from_slice(get("/arg?i=behind").as_bytes());
    c.send(&wire);
    let first = c.response();
    assert_ok(&first, "before");
    let r = c.response();
    assert_eq!(
        r.status,
        status,
        "sent {:?}, got {r:?}",
        String::from_utf8_lossy(bad)
    );
    assert!(
        r.header("date").is_some(),
        "error response without date: {r:?}"
    );
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    assert!(!r.body.is_empty(), "error response should explain itself");
    c.expect_closed();
}

macro_rules! rejects {
    ($($name:ident: $bad:expr => $status:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let bad = $bad;
                assert_rejected(AsRef::<[u8]>::as_ref(&bad), $status);
            }
        )*
    };
}

rejects! {
    reject_space_before_colon:
        "GET /hello HTTP/1.1\r\nHost: test\r\nX-Foo : bar\r\n\r\n" => 400;
    reject_obs_fold:
        "GET /hello HTTP/1.1\r\nHost: test\r\nX-Foo: a\r\n  folded\r\n\r\n" => 400;
    reject_bare_cr_in_header:
        "GET /hello HTTP/1.1\r\nHost: test\r\nX-Foo: a\rb\r\n\r\n" => 400;
    reject_bare_cr_line_end:
        "GET /hello HTTP/1.1\rHost: test\r\n\r\n" => 400;
    reject_bare_lf_line_ends:
        "GET /hello HTTP/1.1\nHost: test\n\n" => 400;
    reject_one_bare_lf_among_crlf:
        "GET /hello HTTP/1.1\r\nHost: test\nX-Foo: bar\r\n\r\n" => 400;
    reject_control_byte_in_header_value:
        b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Foo: a\x01b\r\n\r\n" => 400;
    reject_nul_in_header_value:
        b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Foo: a\x00b\r\n\r\n" => 400;
    reject_del_in_header_value:
        b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Foo: a\x7fb\r\n\r\n" => 400;
    reject_non_ascii_in_target:
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: test\r\n\r\n" => 400;
    reject_bad_method_token:
        "G(T /hello HTTP/1.1\r\nHost: test\r\n\r\n" => 400;
    reject_bad_version_syntax:
        "GET /hello HTTP/1.x\r\nHost: test\r\n\r\n" => 400;
    reject_http2_version_with_505:
        "GET /hello HTTP/2.0\r\nHost: test\r\n\r\n" => 505;
    reject_content_length_with_transfer_encoding:
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => 400;
    reject_conflicting_content_lengths:
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" => 400;
    reject_conflicting_content_length_list:
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5, 6\r\n\r\nhello!" => 400;
    reject_signed_content_length:
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: +5\r\n\r\nhello" => 400;
    reject_hex_content_length:
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 0x5\r\n\r\nhello" => 400;
    reject_gzip_chunked_transfer_encoding:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" => 400;
    reject_transfer_encoding_on_http10:
        "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => 400;
    reject_bad_chunk_size:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" => 400;
    reject_missing_crlf_after_chunk:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" => 400;
    reject_empty_chunk_size:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n" => 400;
    reject_http11_without_host:
        "GET /hello HTTP/1.1\r\nX-Foo: bar\r\n\r\n" => 400;
    reject_two_host_headers:
        "GET /hello HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n" => 400;
    reject_target_over_limit_with_414:
        format!("GET /{} HTTP/1.1\r\nHost: test\r\n\r\n", "a".repeat(300)) => 414;
    reject_too_many_headers_with_431:
        format!(
            "GET /hello HTTP/1.1\r\nHost: test\r\n{}\r\n",
            (0..20).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
        ) => 431;
    reject_head_over_limit_with_431:
        format!("GET /hello HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n", "b".repeat(5000)) => 431;
    reject_content_length_over_limit_with_413:
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2048\r\n\r\n" => 413;
    reject_chunked_body_over_limit_with_413:
        format!(
            "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{}\r\n0\r\n\r\n",
            "c".repeat(0x800)
        ) => 413;
    reject_unknown_expectation_with_417:
        "GET /hello HTTP/1.1\r\nHost: test\r\nExpect: 200-ok\r\n\r\n" => 417;
    reject_empty_content_length:
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: \r\n\r\n" => 400;
    reject_content_length_beyond_u64_with_413:
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 99999999999999999999999\r\n\r\n" => 413;
    reject_chunked_twice:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => 400;
    reject_chunked_not_last:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" => 400;
    reject_identity_transfer_encoding:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: identity\r\n\r\n" => 400;
    reject_chunk_size_overflow:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n" => 400;
    reject_bare_lf_after_chunk_size:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n2\nhi\r\n0\r\n\r\n" => 400;
    reject_invalid_trailer:
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nno colon here\r\n\r\n" => 400;
    reject_invalid_host:
        "GET /hello HTTP/1.1\r\nHost: a b\r\n\r\n" => 400;
    reject_host_with_userinfo:
        "GET /hello HTTP/1.1\r\nHost: user@test\r\n\r\n" => 400;
    reject_fragment_in_target:
        "GET /hello#top HTTP/1.1\r\nHost: test\r\n\r\n" => 400;
    reject_header_line_without_colon:
        "GET /hello HTTP/1.1\r\nHost: test\r\nJunk\r\n\r\n" => 400;
    reject_http09_request_line:
        "GET /hello\r\n\r\n" => 400;
    reject_http2_preface_with_505:
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" => 505;
}

/// What RFC 9110/9112 allow a server to accept is accepted, and the connection stays usable.
#[test]
fn lenient_where_the_rfc_allows() {
    let server = start(app);
    let cases: &[(&str, &[u8], &str)] = &[
        ("leading empty line", b"\r\nGET /hello HTTP/1.1\r\nHost: test\r\n\r\n", "hello world"),
        (
            "repeated identical content-length",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5, 5\r\n\r\nhello",
            "hello",
        ),
        (
            "transfer-coding names are case-insensitive",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            "hi",
        ),
        (
            "header names are case-insensitive",
            b"POST /echo HTTP/1.1\r\nHOST: test\r\nCONTENT-LENGTH: 2\r\n\r\nhi",
            "hi",
        ),
        (
            "tab and obs-text in a header value",
            b"GET /hello HTTP/1.1\r\nHost: test\r\nX-A: a\tb\r\nX-B: caf\xc3\xa9\r\n\r\n",
            "hello world",
        ),
        (
            "expectation token is case-insensitive",
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\nExpect: 100-Continue\r\n\r\nhi",
            "hi",
        ),
        (
            "optional whitespace around values",
            b"POST /echo HTTP/1.1\r\nHost:test\r\nContent-Length:   2  \r\n\r\nhi",
            "hi",
        ),
    ];
    for (what, raw, body) in cases {
        let mut c = Client::connect(server.local_addr());
        let mut wire = raw.to_vec();
        wire.extend_from_slice(get("/arg?i=next").as_bytes());
        c.send(&wire);
        let r = c
            .try_response(false)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!((r.status, r.text().as_str()), (200, *body), "{what}: {r:?}");
        assert_ok(&c.response(), "next");
    }
}

#[test]
fn oversized_content_length_is_refused_before_the_body_is_sent() {
    let server = start_with(config().limits(small_limits()), app);
    let mut c = Client::connect(server.local_addr());
    c.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("date").is_some());
    c.expect_closed();
}

#[test]
fn oversized_expect_continue_body_gets_413_not_100() {
    let server = start_with(config().limits(small_limits()), app);
    let mut c = Client::connect(server.local_addr());
    c.send(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n",
    );
    let r = c.response();
    assert_eq!(r.status, 413, "{r:?}");
    c.expect_closed();
}

#[test]
fn partial_head_over_limit_is_refused_without_waiting_for_its_end() {
    let server = start_with(config().limits(small_limits()), app);
    let mut c = Client::connect(server.local_addr());
    // Never finished: the server must answer once the head passes the limit.
    c.send(format!(
        "GET /hello HTTP/1.1\r\nHost: test\r\nX-Big: {}",
        "b".repeat(6000)
    ));
    let r = c.response();
    assert_eq!(r.status, 431, "{r:?}");
    c.expect_closed();
}

#[test]
fn partial_request_line_over_limit_gets_414_without_waiting_for_its_end() {
    let server = start_with(config().limits(small_limits()), app);
    let mut c = Client::connect(server.local_addr());
    c.send(format!("GET /{}", "a".repeat(400)));
    let r = c.response();
    assert_eq!(r.status, 414, "{r:?}");
    c.expect_closed();
}

#[test]
fn absolute_form_target_is_routed_by_its_path() {
    let server = start(app);
    let r = request(
        server.local_addr(),
        "GET http://test/arg?i=absolute HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    assert_ok(&r, "absolute");
}

// ---------------------------------------------------------------------------------------------
// 4. Expect: 100-continue
// ---------------------------------------------------------------------------------------------

#[test]
fn expect_continue_is_answered_when_the_handler_reads_the_body() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.response();
    assert_eq!(interim.status, 100, "{interim:?}");
    assert!(interim.body.is_empty());
    c.send("hello");
    let r = c.response();
    assert_ok(&r, "hello");
    assert_eq!(r.header("connection"), None);
    // The connection goes on.
    c.send(get("/hello"));
    assert_ok(&c.response(), "hello world");
}

#[test]
fn expect_continue_is_not_sent_when_the_handler_ignores_the_body() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(
        "GET /hello HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    let r = c.response();
    assert_ok(&r, "hello world");
    if r.closes() {
        c.expect_closed();
    } else {
        // Kept open: the server must skip the body when it comes, then serve the next request.
        c.send(format!("hello{}", get("/arg?i=next")));
        assert_ok(&c.response(), "next");
    }
}

#[test]
fn expect_continue_from_http10_is_ignored() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send("POST /echo HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    // RFC 9110 10.1.1: no 100 to an HTTP/1.0 client.
    c.expect_open(Duration::from_millis(200));
    c.send("hello");
    let r = c.response();
    assert_ok(&r, "hello");
    c.expect_closed();
}

#[test]
fn expect_continue_with_the_body_already_sent_gets_no_interim() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello");
    let r = c.response();
    // The body arrived with the head, so there is nothing to continue.
    assert_ok(&r, "hello");
}

// ---------------------------------------------------------------------------------------------
// 5. Chunked request bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn chunked_body_is_echoed() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    let r = c.response();
    assert_ok(&r, "hello world");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("11"));
    c.send(get("/hello"));
    assert_ok(&c.response(), "hello world");
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(concat!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n",
        "5;name=value;quoted=\"a b\"\r\nhello\r\n",
        "1 ; bare\r\n!\r\n",
        "A\r\n0123456789\r\n",
        "0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n",
    ));
    assert_ok(&c.response(), "hello!0123456789");
    c.send(get("/arg?i=after"));
    assert_ok(&c.response(), "after");
}

#[test]
fn chunked_body_arriving_in_pieces() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    let pieces = [
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n",
        "5\r\nhel",
        "lo\r\n6;e=1\r",
        "\n worl",
        "d\r\n0\r\nX-T: 1\r\n",
        "\r\n",
    ];
    for piece in pieces {
        c.send(piece);
        thread::sleep(Duration::from_millis(20));
    }
    assert_ok(&c.response(), "hello world");
    c.send(get("/arg?i=after"));
    assert_ok(&c.response(), "after");
}

#[test]
fn content_length_body_arriving_after_the_head() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n01234");
    thread::sleep(Duration::from_millis(50));
    c.send(format!("56789{}", get("/arg?i=after")));
    assert_ok(&c.response(), "0123456789");
    assert_ok(&c.response(), "after");
}

#[test]
fn malformed_chunk_arriving_late_fails_the_request_and_closes() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send("POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    thread::sleep(Duration::from_millis(50));
    c.send(format!("loXX0\r\n\r\n{}", get("/arg?i=behind")));
    let r = c.response();
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed();
}

// ---------------------------------------------------------------------------------------------
// 6. HEAD, 204 and 304
// ---------------------------------------------------------------------------------------------

#[test]
fn head_on_a_get_route_has_the_headers_and_no_body() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(get("/hello"));
    let g = c.response();
    // HEAD then GET in one write: any body bytes after the HEAD response would corrupt the next.
    c.send(format!(
        "HEAD /hello HTTP/1.1\r\nHost: test\r\n\r\n{}",
        get("/arg?i=after")
    ));
    let h = c.head_response();
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("11"));
    assert_eq!(h.header("content-type"), g.header("content-type"));
    assert_eq!(h.header("transfer-encoding"), None);
    let next = c.response();
    assert_ok(&next, "after");
}

#[test]
fn head_on_a_streamed_route_sends_no_body() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(format!(
        "HEAD /stream HTTP/1.1\r\nHost: test\r\n\r\n{}",
        get("/arg?i=after")
    ));
    let h = c.head_response();
    assert_eq!(h.status, 200, "{h:?}");
    assert_ok(&c.response(), "after");
}

#[test]
fn no_content_and_not_modified_never_carry_a_body() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(format!(
        "{}{}{}",
        get("/empty"),
        get("/not-modified"),
        get("/arg?i=after")
    ));
    let r204 = c.response();
    assert_eq!(r204.status, 204, "{r204:?}");
    assert_eq!(r204.header("content-length"), None);
    assert_eq!(r204.header("transfer-encoding"), None);
    let r304 = c.response();
    assert_eq!(r304.status, 304, "{r304:?}");
    assert_eq!(r304.header("content-length"), None);
    assert_eq!(r304.header("transfer-encoding"), None);
    // If either had carried body bytes, this would not parse as the next response.
    assert_ok(&c.response(), "after");
}

#[test]
fn options_lists_allowed_methods() {
    let server = start(app);
    let r = request(
        server.local_addr(),
        "OPTIONS /users/1 HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
}

// ---------------------------------------------------------------------------------------------
// 7. Streamed responses
// ---------------------------------------------------------------------------------------------

#[test]
fn streamed_response_is_chunked_on_http11() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(get("/stream"));
    let r = c.response();
    assert_eq!(r.status, 200);
    assert!(r.chunked, "expected transfer-encoding: chunked, got {r:?}");
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.text(), "alpha-beta-gamma");
    assert_eq!(r.header("connection"), None);
    c.send(get("/arg?i=after"));
    assert_ok(&c.response(), "after");
}

#[test]
fn channel_body_streams_from_a_spawned_task() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(get("/channel-stream"));
    let r = c.response();
    assert_eq!(r.status, 200);
    assert!(r.chunked, "expected transfer-encoding: chunked, got {r:?}");
    assert_eq!(r.text(), "part0;part1;part2;part3;part4;");
    c.send(get("/arg?i=after"));
    assert_ok(&c.response(), "after");
}

#[test]
fn streamed_response_is_close_delimited_on_http10() {
    let server = start(app);
    for keep_alive in ["", "Connection: keep-alive\r\n"] {
        let mut c = Client::connect(server.local_addr());
        c.send(format!("GET /stream HTTP/1.0\r\n{keep_alive}\r\n"));
        let r = c.response();
        assert_eq!(r.status, 200);
        assert!(
            r.close_delimited,
            "expected a close-delimited body, got {r:?}"
        );
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.header("content-length"), None);
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.text(), "alpha-beta-gamma");
    }
}

#[test]
fn sized_stream_carries_content_length() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(get("/sized-stream"));
    let r = c.response();
    assert_eq!(r.header("content-length"), Some("16"), "{r:?}");
    assert!(!r.chunked);
    assert_eq!(r.text(), "alpha-beta-gamma");
    c.send(get("/arg?i=after"));
    assert_ok(&c.response(), "after");
}

#[test]
fn failing_stream_ends_with_a_truncated_chunked_body_and_a_close() {
    let server = start(app);
    let mut c = Client::connect(server.local_addr());
    c.send(format!("{}{}", get("/stream-fails"), get("/arg?i=behind")));
    let (raw, ending) = c.read_to_close();
    let raw = String::from_utf8_lossy(&raw);
    assert_eq!(ending, Ending::Eof, "{raw:?}");
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw:?}");
    assert!(
        raw.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{raw:?}"
    );
    assert!(
        raw.ends_with("\r\n\r\n7\r\npartial\r\n"),
        "the first chunk, then nothing: {raw:?}"
    );
    // No last chunk (a client can tell the body is incomplete) and nothing for the request behind.
    assert!(
        !raw.contains("0\r\n\r\n") && !raw.contains("behind"),
        "{raw:?}"
    );
    // The core is fine.
    assert_ok(&request(server.local_addr(), get("/hello")), "hello world");
}

// ---------------------------------------------------------------------------------------------
// 8. Timeouts
// ---------------------------------------------------------------------------------------------

#[test]
fn slowloris_head_times_out_from_its_first_byte() {
    let server = start_with(config().limits(timeout_limits(300, 5_000, 5_000)), app);
    let mut c = Client::connect(server.local_addr());
    let mut writer = c.stream().try_clone().expect("clone stream");
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writer = Arc::clone(&stop);
    let started = Instant::now();
    let trickle = thread::spawn(move || {
        use std::io::Write;
        let head = format!(
            "GET /hello HTTP/1.1\r\nHost: test\r\nX-Slow: {}",
            "a".repeat(40)
        );
        for byte in head.bytes() {
            if stop_writer.load(Ordering::SeqCst) || writer.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let ending = match c.try_response(false) {
        Ok(r) => {
            assert_eq!(r.status, 408, "{r:?}");
            assert_eq!(r.header("connection"), Some("close"));
            c.expect_closed_or_reset();
            "408"
        }
        Err(e) => {
            // A plain close is also acceptable.
            assert!(e.contains("eof") || e.contains("reset"), "{e}");
            "close"
        }
    };
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let _ = trickle.join();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_millis(1000),
        "slow head ended with {ending} after {elapsed:?}; expected ~300ms"
    );
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let server = start_with(config().limits(timeout_limits(5_000, 300, 5_000)), app);
    let mut c = Client::connect(server.local_addr());
    c.send(get("/hello"));
    assert_ok(&c.response(), "hello world");
    let waited = c.time_until_closed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_millis(1000),
        "idle connection closed after {waited:?}; expected ~300ms"
    );
}

#[test]
fn silent_new_connection_is_closed() {
    let server = start_with(config().limits(timeout_limits(5_000, 300, 5_000)), app);
    let mut c = Client::connect(server.local_addr());
    let waited = c.time_until_closed();
    assert!(
        waited < Duration::from_millis(1000),
        "silent connection closed after {waited:?}"
    );
}

#[test]
fn stalled_request_body_times_out() {
    let server = start_with(config().limits(timeout_limits(5_000, 5_000, 300)), app);
    let mut c = Client::connect(server.local_addr());
    let started = Instant::now();
    c.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n01234");
    match c.try_response(false) {
        Ok(r) => {
            assert_eq!(r.status, 408, "{r:?}");
            assert_eq!(r.header("connection"), Some("close"), "{r:?}");
            c.expect_closed();
        }
        Err(e) => assert!(e.contains("eof") || e.contains("reset"), "{e}"),
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1000), "took {elapsed:?}");
}

#[test]
fn peer_that_stops_reading_is_dropped_after_the_write_timeout() {
    const REQUESTS: usize = 48; // 48 MiB of responses, far more than socket buffers hold.
    let limits = Limits {
        write_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start_with(config().limits(limits), app);
    let mut c = Client::connect(server.local_addr());
    let wire: String = (0..REQUESTS).map(|_| get("/big")).collect();
    c.send(wire);
    thread::sleep(Duration::from_millis(1200)); // Read nothing for four write timeouts.
    let (received, ending) = c.drain_until_closed();
    assert!(
        received < REQUESTS << 20,
        "the server kept writing to a peer that did not read ({received} bytes, {ending:?})"
    );
    // The core is fine.
    assert_ok(&request(server.local_addr(), get("/hello")), "hello world");
}

#[test]
fn a_core_at_its_connection_limit_accepts_again_when_one_closes() {
    let limits = Limits {
        max_connections_per_core: 2,
        ..Limits::default()
    };
    let server = start_with(config().limits(limits), app);
    let mut first = Client::connect(server.local_addr());
    let mut second = Client::connect(server.local_addr());
    for c in [&mut first, &mut second] {
        c.send(get("/hello"));
        assert_ok(&c.response(), "hello world");
    }
    // The kernel completes the third handshake, but the core does not take it on.
    let mut third = Client::connect(server.local_addr());
    third.send(get("/hello"));
    third.expect_open(Duration::from_millis(300));
    drop(first);
    assert_ok(&third.response(), "hello world");
    second.send(get("/hello"));
    assert_ok(&second.response(), "hello world");
}

// ---------------------------------------------------------------------------------------------
// 9. Graceful shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn graceful_shutdown_finishes_requests_in_flight_and_closes_idle_connections() {
    let server = start_with(config().shutdown_timeout(Duration::from_secs(2)), app);
    let addr = server.local_addr();
    let mut idle = Client::connect(addr);
    idle.send(get("/hello"));
    assert_ok(&idle.response(), "hello world");
    let mut busy = Client::connect(addr);
    busy.send(get("/slow"));
    thread::sleep(Duration::from_millis(100)); // The handler is asleep now.

    let started = Instant::now();
    server.shutdown();
    let r = busy.response();
    assert_ok(&r, "slow done");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    busy.expect_closed();
    idle.expect_closed();
    let joined = server.join();
    let elapsed = started.elapsed();
    assert!(joined.is_ok(), "join failed: {joined:?}");
    assert!(
        elapsed < Duration::from_secs(2),
        "shutdown took {elapsed:?}"
    );
    // Nobody listens any more.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn a_request_sent_as_shutdown_begins_is_answered_with_connection_close() {
    let server = start_with(config().workers(1), app);
    let addr = server.local_addr();
    let mut client = Client::connect(addr);
    client.send(get("/hello"));
    assert_ok(&client.response(), "hello world");
    // The connection waits for its next request when the stop comes; a request sent right
    // then must be answered, not cut off by the close.
    server.shutdown();
    thread::sleep(Duration::from_millis(50));
    client.send(get("/hello"));
    let r = client.response();
    assert_ok(&r, "hello world");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    client.expect_closed();
    assert!(server.join().is_ok());
}

#[test]
fn shutdown_with_nothing_in_flight_is_quick() {
    let server = start_with(config().workers(2), app);
    let addr = server.local_addr();
    let mut idle = Client::connect(addr);
    idle.send(get("/hello"));
    assert_ok(&idle.response(), "hello world");
    let started = Instant::now();
    server.shutdown();
    idle.expect_closed();
    assert!(server.join().is_ok());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Panics
// ---------------------------------------------------------------------------------------------

#[test]
fn panicking_handler_gets_500_and_the_core_keeps_serving() {
    let server = start(app); // One worker: every connection lands on the core that panicked.
    let mut c = Client::connect(server.local_addr());
    c.send(get("/panic"));
    let r = c.response();
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        !r.text().contains("exploded"),
        "panic message leaked to the client: {r:?}"
    );
    if r.closes() {
        c.expect_closed();
    } else {
        c.send(get("/hello"));
        assert_ok(&c.response(), "hello world");
    }
    for _ in 0..3 {
        let r = request(server.local_addr(), get("/hello"));
        assert_ok(&r, "hello world");
    }
}

// ---------------------------------------------------------------------------------------------
// 11. Load: nothing lost
// ---------------------------------------------------------------------------------------------

#[test]
fn ten_thousand_requests_over_fifty_connections() {
    const CONNECTIONS: usize = 50;
    const PER_CONNECTION: usize = 200;
    let server = start_with(config().workers(2), app);
    let addr = server.local_addr();
    let answered = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|conn| {
            let answered = Arc::clone(&answered);
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut sent = 0;
                let mut round = 0;
                while sent < PER_CONNECTION {
                    // Batches of 1 to 16 pipelined requests.
                    let batch = (1 + (conn + round) % 16).min(PER_CONNECTION - sent);
                    let wire: String = (sent..sent + batch)
                        .map(|n| get(&format!("/arg?i={conn}-{n}")))
                        .collect();
                    c.send(wire);
                    for n in sent..sent + batch {
                        let r = c.response();
                        assert_ok(&r, &format!("{conn}-{n}"));
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    sent += batch;
                    round += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    assert_eq!(
        answered.load(Ordering::Relaxed),
        CONNECTIONS * PER_CONNECTION
    );
}

// ---------------------------------------------------------------------------------------------
// 12. Application features
// ---------------------------------------------------------------------------------------------

#[test]
fn path_parameters() {
    let server = start(app);
    let addr = server.local_addr();
    assert_ok(&request(addr, get("/users/42")), "user 42");
    let r = request(addr, get("/users/abc"));
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "invalid path parameter: id\n");
}

#[test]
fn query_arguments() {
    let server = start(app);
    let addr = server.local_addr();
    assert_ok(&request(addr, get("/add?a=2&b=40")), "42");
    let r = request(addr, get("/add?a=2"));
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "missing argument: b\n");
    let r = request(addr, get("/add?a=2&b=x"));
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "invalid argument: b\n");
}

#[test]
fn json_bodies() {
    let server = start(app);
    let addr = server.local_addr();
    let r = request(addr, post("/json", "application/json", r#"{"name":"ada"}"#));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let value: serde_json::Value = serde_json::from_slice(&r.body).expect("json response");
    assert_eq!(value, serde_json::json!({ "hello": "ada" }));

    let r = request(addr, post("/json", "application/json", "{not json"));
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.text().starts_with("invalid json"), "{r:?}");

    let r = request(addr, post("/json", "text/plain", r#"{"name":"ada"}"#));
    assert_eq!(r.status, 415, "{r:?}");
    assert!(r.text().contains("application/json"), "{r:?}");
}

#[test]
fn cookies_are_set_and_read() {
    let server = start(app);
    let addr = server.local_addr();
    let r = request(addr, get("/cookie/set"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header_all("set-cookie"), vec!["session=a%20b; HttpOnly"]);
    let r = request(
        addr,
        "GET /cookie/get HTTP/1.1\r\nHost: test\r\nCookie: theme=dark; session=a%20b\r\n\r\n",
    );
    assert_ok(&r, "a b");
    assert_ok(&request(addr, get("/cookie/get")), "none");
}

#[test]
fn redirects_carry_status_and_location() {
    let server = start(app);
    let addr = server.local_addr();
    let r = request(addr, get("/old"));
    assert_eq!((r.status, r.header("location")), (302, Some("/new")));
    let r = request(addr, get("/moved"));
    assert_eq!((r.status, r.header("location")), (301, Some("/elsewhere")));
}

#[test]
fn not_found_and_method_not_allowed() {
    let server = start(app);
    let addr = server.local_addr();
    let r = request(addr, get("/nope"));
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "not found\n");
    let r = request(addr, "DELETE /users/1 HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn custom_error_page_renders_every_error() {
    let server = start(app_with_error_page);
    let addr = server.local_addr();
    let r = request(addr, get("/nope"));
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.text(), "<h1>custom 404 not found</h1>");

    let r = request(
        addr,
        "POST /hello HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(r.text(), "<h1>custom 405 method not allowed</h1>");

    let r = request(addr, get("/refuse"));
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "<h1>custom 400 refused by handler</h1>");

    let r = request(addr, get("/panic"));
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), "<h1>custom 500 Internal Server Error</h1>");

    // Successful responses are untouched.
    assert_ok(&request(addr, get("/hello")), "hello world");
}

#[test]
fn reverse_url_for_a_named_route() {
    let server = start(app);
    assert_ok(&request(server.local_addr(), get("/link")), "/users/7%20x");
}

// ---------------------------------------------------------------------------------------------
// 13. Forwarded client addresses
// ---------------------------------------------------------------------------------------------

fn ip_request(headers: &str) -> String {
    format!("GET /ip HTTP/1.1\r\nHost: test\r\n{headers}\r\n")
}

#[test]
fn forwarded_for_is_ignored_from_untrusted_peers() {
    let localhost: IpAddr = [127, 0, 0, 1].into();
    for trusted in [None, Some("10.0.0.0/8")] {
        let mut config = config();
        if let Some(net) = trusted {
            config = config.trust_proxy(net.parse::<ipnet::IpNet>().expect("net"));
        }
        let server = start_with(config, app);
        let addr = server.local_addr();
        let r = request(addr, ip_request("X-Forwarded-For: 203.0.113.7\r\n"));
        assert_ok(&r, &localhost.to_string());
        let r = request(addr, ip_request("X-Real-IP: 203.0.113.8\r\n"));
        assert_ok(&r, &localhost.to_string());
    }
}

#[test]
fn forwarded_for_is_honoured_from_trusted_proxies() {
    let localhost: IpAddr = [127, 0, 0, 1].into();
    let server = start_with(config().trust_proxy(localhost), app);
    let addr = server.local_addr();
    assert_ok(
        &request(addr, ip_request("X-Forwarded-For: 203.0.113.7\r\n")),
        "203.0.113.7",
    );
    // The nearest address that is not a trusted proxy is the client.
    assert_ok(
        &request(
            addr,
            ip_request("X-Forwarded-For: 198.51.100.1, 203.0.113.7, 127.0.0.1\r\n"),
        ),
        "203.0.113.7",
    );
    assert_ok(
        &request(addr, ip_request("X-Real-IP: 203.0.113.8\r\n")),
        "203.0.113.8",
    );
    assert_ok(&request(addr, ip_request("")), "127.0.0.1");
}

// ---------------------------------------------------------------------------------------------
// 14. One server per port
// ---------------------------------------------------------------------------------------------

#[test]
fn a_second_server_on_a_served_port_fails_to_start() {
    let first = start_with(config().workers(2), app);
    let addr = first.local_addr();
    let second = squall::Server::new(config().addr(addr)).spawn(app);
    let err = second.expect_err("the port is served");
    let message = err.to_string();
    assert!(
        message.contains("address in use") && message.contains(&addr.to_string()),
        "{message}"
    );
    // The first one was not disturbed.
    assert_ok(&request(addr, get("/hello")), "hello world");
}

#[test]
fn the_new_half_of_a_restart_starts_beside_the_old_one() {
    let old = start_with(config(), app);
    let addr = old.local_addr();
    let new = start_with(
        config()
            .addr(addr)
            .port_sharing(squall::PortSharing::Takeover),
        app,
    );
    assert_eq!(new.local_addr(), addr);
    // The old server stops; the new one goes on answering on the same port.
    old.shutdown();
    assert!(old.join().is_ok());
    for _ in 0..4 {
        assert_ok(&request(addr, get("/hello")), "hello world");
    }
}
