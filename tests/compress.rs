//! Response compression over real loopback connections: negotiation from Accept-Encoding,
//! what is never compressed, streams flushed chunk by chunk, and static files with
//! precompressed siblings. Every compressed body is decompressed and compared.
#![cfg(all(feature = "compress", feature = "files"))]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use squall::compress::{no_transform, Compression};
use squall::header::CONTENT_ENCODING;
use squall::{App, Body, HeaderValue, Html, IntoResponse, Request, Response, StaticFiles};
use support::{find, get, request, start, Client, TempDir, READ_TIMEOUT};

/// A page well above the minimum size, repetitive enough to compress well.
fn page() -> String {
    let mut html = String::from("<!doctype html><title>t</title><ul>");
    for i in 0..400 {
        html.push_str(&format!("<li class=item>item number {i}</li>"));
    }
    html.push_str("</ul>");
    html
}

const STREAM_PIECES: [&str; 4] = [
    "first line of a streamed body\n",
    "second line of a streamed body\n",
    "third\n",
    "and the last one\n",
];

fn app() -> App {
    // Per core: the SSE handler waits on this until /release is requested.
    let gate = Rc::new(glommio::sync::Semaphore::new(0));
    let release = Rc::clone(&gate);
    App::new()
        .wrap(Compression::default())
        .get("/page", |_req: Request| async { Html(page()) })
        .get("/small", |_req: Request| async { "tiny" })
        .get("/png", |_req: Request| async {
            Response::with_body(HeaderValue::from_static("image/png"), vec![7u8; 4096])
        })
        .get("/stream", |_req: Request| async {
            let chunks = STREAM_PIECES.map(|p| Ok(Bytes::from_static(p.as_bytes())));
            Response::text(Body::stream(futures_lite::stream::iter(chunks)))
        })
        .get("/opt-out", |_req: Request| async {
            no_transform(Html(page()).into_response())
        })
        .get("/encoded", |_req: Request| async {
            // Already encoded by the handler (a coding squall does not know, even).
            Html(page())
                .into_response()
                .with_header(CONTENT_ENCODING, HeaderValue::from_static("zstd"))
        })
        .get("/events", move |_req: Request| {
            let gate = Rc::clone(&gate);
            async move {
                let (tx, body) = Body::channel(4);
                glommio::spawn_local(async move {
                    let _ = tx.send("data: first\n\n").await;
                    let _ = gate.acquire(1).await;
                    let _ = tx.send("data: second\n\n").await;
                })
                .detach();
                Response::with_body(HeaderValue::from_static("text/event-stream"), body)
            }
        })
        .get("/release", move |_req: Request| {
            release.signal(1);
            async { "released" }
        })
}

fn get_accepting(path: &str, accept_encoding: Option<&str>) -> String {
    match accept_encoding {
        Some(ae) => format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept-Encoding: {ae}\r\n\r\n"),
        None => get(path),
    }
}

/// The body decoded according to its `Content-Encoding`.
fn decoded(r: &support::Response) -> Vec<u8> {
    let mut out = Vec::new();
    match r.header("content-encoding") {
        None => out = r.body.clone(),
        Some("gzip") => {
            flate2::read::GzDecoder::new(&r.body[..])
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        Some("br") => {
            brotli::Decompressor::new(&r.body[..], 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    out
}

fn varies_on_accept_encoding(r: &support::Response) -> bool {
    r.header_all("vary")
        .iter()
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"))
}

#[test]
fn accept_encoding_chooses_the_coding() {
    let server = start(app);
    let mut client = Client::connect(server.local_addr());
    let cases = [
        (Some("gzip"), Some("gzip")),
        (Some("br"), Some("br")),
        (Some("gzip, deflate, br"), Some("br")),
        (Some("gzip;q=1.0, br;q=0.5"), Some("gzip")),
        (Some("br;q=0, gzip"), Some("gzip")),
        (Some("gzip;q=0"), None),
        (Some("identity"), None),
        (Some("identity;q=1, br;q=0.5"), None),
        (Some("*"), Some("br")),
        (Some("*;q=0"), None),
        (Some("*;q=0, gzip"), Some("gzip")),
        (Some(""), None),
        (None, None),
    ];
    for (accept, expected) in cases {
        client.send(get_accepting("/page", accept));
        let r = client.response();
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(r.header("content-encoding"), expected, "{accept:?}");
        assert!(varies_on_accept_encoding(&r), "{accept:?}");
        assert_eq!(decoded(&r), page().as_bytes(), "{accept:?}");
        if expected.is_some() {
            assert!(
                r.body.len() < page().len() / 3,
                "{accept:?} barely compressed"
            );
        }
    }
}

#[test]
fn small_incompressible_and_opted_out_bodies_are_left_alone() {
    let server = start(app);
    let mut client = Client::connect(server.local_addr());
    let cases = [
        // Below the minimum size: still varies, the content might not always be small.
        ("/small", true),
        ("/png", false),
        ("/opt-out", false),
        ("/encoded", false),
    ];
    for (path, vary) in cases {
        client.send(get_accepting(path, Some("gzip, br")));
        let r = client.response();
        assert_eq!(r.status, 200, "{path}");
        let untouched = r.header("content-encoding").is_none() || path == "/encoded";
        assert!(untouched, "{path} was compressed");
        assert_eq!(varies_on_accept_encoding(&r), vary, "{path}");
    }
    for path in ["/opt-out", "/encoded"] {
        client.send(get_accepting(path, Some("gzip, br")));
        assert_eq!(client.response().text(), page(), "{path}");
    }
}

#[test]
fn streams_are_compressed_as_they_flow() {
    let server = start(app);
    let mut client = Client::connect(server.local_addr());
    for coding in ["gzip", "br"] {
        client.send(get_accepting("/stream", Some(coding)));
        let r = client.response();
        assert_eq!(r.header("content-encoding"), Some(coding));
        assert!(r.chunked, "a compressed stream has no length up front");
        assert_eq!(decoded(&r), STREAM_PIECES.concat().as_bytes(), "{coding}");
    }
}

#[test]
fn each_chunk_of_an_event_stream_arrives_before_the_next_is_produced() {
    let server = start(app);
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream
        .write_all(get_accepting("/events", Some("gzip")).as_bytes())
        .expect("send");
    // The handler holds the second event back until /release, so the first can only be
    // read if it was flushed through the encoder on its own.
    let mut received = Vec::new();
    let mut inflater = flate2::write::GzDecoder::new(Vec::new());
    let mut consumed = 0;
    while !String::from_utf8_lossy(inflater.get_ref()).contains("data: first") {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("the first event in time");
        assert!(n > 0, "closed early");
        received.extend_from_slice(&chunk[..n]);
        let Some(head_end) = find(&received, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
        assert!(head.contains("content-encoding: gzip"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        // Feed the data of every chunk after the head to the decoder. The CRLF that closes
        // a chunk's data goes out with the next chunk, so it may not be here yet.
        let mut at = head_end + 4 + consumed;
        loop {
            if received[at..].starts_with(b"\r\n") {
                at += 2;
            }
            let Some(line_end) = find(&received[at..], b"\r\n") else {
                break;
            };
            let size_text = String::from_utf8_lossy(&received[at..at + line_end]).into_owned();
            let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
            let data_start = at + line_end + 2;
            if received.len() < data_start + size {
                break;
            }
            inflater
                .write_all(&received[data_start..data_start + size])
                .expect("gzip data");
            inflater.flush().expect("flush");
            at = data_start + size;
            consumed = at - head_end - 4;
        }
    }
    assert!(!String::from_utf8_lossy(inflater.get_ref()).contains("second"));
    assert_eq!(request(addr, get("/release")).text(), "released");
    let mut rest = Vec::new();
    let mut chunk = [0u8; 4096];
    while find(&rest, b"0\r\n\r\n").is_none() {
        let n = stream.read(&mut chunk).expect("the rest of the stream");
        assert!(n > 0, "closed before the last chunk");
        rest.extend_from_slice(&chunk[..n]);
    }
    received.extend_from_slice(&rest);
    // Re-read the whole body from the start with the test client's strict parser.
    let head_end = find(&received, b"\r\n\r\n").expect("head") + 4;
    let mut body = Vec::new();
    let mut at = head_end;
    loop {
        let line_end = at + find(&received[at..], b"\r\n").expect("chunk line");
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&received[at..line_end]).trim(), 16)
                .expect("chunk size");
        if size == 0 {
            break;
        }
        body.extend_from_slice(&received[line_end + 2..line_end + 2 + size]);
        at = line_end + 2 + size + 2;
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("complete gzip stream");
    assert_eq!(text, "data: first\n\ndata: second\n\n");
}

#[test]
fn head_says_how_the_body_would_be_encoded() {
    let server = start(app);
    let mut client = Client::connect(server.local_addr());
    client.send("HEAD /page HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
    let r = client.head_response();
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.header("content-length").is_none());
    assert!(varies_on_accept_encoding(&r));
    // No body followed the head.
    client.send(get("/small"));
    assert_eq!(client.response().text(), "tiny");
}

fn script() -> String {
    "function greet(name) { return 'hello, ' + name; }\n".repeat(100)
}

/// `app.js` with `.br` and `.gz` siblings (made at the highest levels, so they differ from
/// anything the middleware would produce), `site.css` with none.
fn static_fixture(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    let js = script();
    dir.write("app.js", &js);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(js.as_bytes()).expect("gzip");
    dir.write("app.js.gz", gz.finish().expect("gzip"));
    let mut br = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut br, 4096, 11, 22);
        writer.write_all(js.as_bytes()).expect("brotli");
    }
    dir.write("app.js.br", br);
    dir.write("site.css", "body { margin: 0 auto; }\n".repeat(100));
    dir
}

fn static_server(root: PathBuf, compression: bool) -> squall::RunningServer {
    start(move || {
        let files = StaticFiles::new(&root).expect("fixture root");
        let app = App::new().get("/static/{*path}", files);
        if compression {
            app.wrap(Compression::default())
        } else {
            app
        }
    })
}

#[test]
fn precompressed_siblings_are_served_as_they_are() {
    let dir = static_fixture("siblings");
    let on_disk = |name: &str| std::fs::read(dir.0.join(name)).expect("fixture");
    for compression in [false, true] {
        let server = static_server(dir.0.clone(), compression);
        let mut client = Client::connect(server.local_addr());
        let mut etags = Vec::new();
        for (accept, coding, file) in [
            (Some("br, gzip"), Some("br"), "app.js.br"),
            (Some("gzip"), Some("gzip"), "app.js.gz"),
            (Some("br;q=0.5, gzip"), Some("gzip"), "app.js.gz"),
            (None, None, "app.js"),
            (Some("identity"), None, "app.js"),
        ] {
            client.send(get_accepting("/static/app.js", accept));
            let r = client.response();
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-encoding"), coding, "{accept:?}");
            // Exactly the file on disk: not compressed a second time.
            assert!(
                r.body == on_disk(file),
                "{accept:?} with compression {compression}"
            );
            assert_eq!(decoded(&r), script().as_bytes());
            assert!(varies_on_accept_encoding(&r), "{accept:?}");
            assert!(r
                .header("content-type")
                .is_some_and(|t| t.contains("javascript")));
            etags.push(r.header("etag").expect("etag").to_owned());
        }
        // Each representation has a tag of its own.
        assert_ne!(etags[0], etags[1]);
        assert_ne!(etags[0], etags[3]);
        assert_ne!(etags[1], etags[3]);
        // And revalidates against it.
        let r = support::request(
            server.local_addr(),
            format!(
                "GET /static/app.js HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br\r\nIf-None-Match: {}\r\n\r\n",
                etags[0]
            ),
        );
        assert_eq!(r.status, 304);
        assert!(varies_on_accept_encoding(&r));
        // A range is always of the plain file.
        client.send(
            "GET /static/app.js HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br\r\nRange: bytes=0-7\r\n\r\n",
        );
        let r = client.response();
        assert_eq!(r.status, 206);
        assert!(r.header("content-encoding").is_none());
        assert_eq!(r.body, &script().as_bytes()[..8]);
    }
}

#[test]
fn static_files_without_siblings_are_compressed_by_the_middleware() {
    let dir = static_fixture("middleware");
    let css = std::fs::read(dir.0.join("site.css")).expect("fixture");
    let server = static_server(dir.0.clone(), true);
    let mut client = Client::connect(server.local_addr());

    client.send(get_accepting("/static/site.css", Some("gzip")));
    let r = client.response();
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(decoded(&r), css);
    assert!(varies_on_accept_encoding(&r));
    assert!(r.header("accept-ranges").is_none());
    let etag = r.header("etag").expect("etag").to_owned();
    assert!(
        etag.starts_with("W/\""),
        "compressed bytes get a weak tag: {etag}"
    );

    // The weak tag still revalidates (If-None-Match compares weakly).
    client.send(format!(
        "GET /static/site.css HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nIf-None-Match: {etag}\r\n\r\n"
    ));
    let r = client.response();
    assert_eq!(r.status, 304);
    assert!(varies_on_accept_encoding(&r));

    // Ranges are never compressed.
    client.send(
        "GET /static/site.css HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nRange: bytes=5-9\r\n\r\n",
    );
    let r = client.response();
    assert_eq!(r.status, 206);
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, &css[5..10]);

    // Without Accept-Encoding: the plain file, still marked as varying.
    client.send(get("/static/site.css"));
    let r = client.response();
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, css);
    assert!(varies_on_accept_encoding(&r));
}

#[test]
fn a_changed_file_is_compressed_again_not_served_from_the_cache() {
    let dir = TempDir::new("recompress");
    let first = "body { margin: 0 auto; }\n".repeat(100);
    dir.write("site.css", &first);
    let root = dir.0.clone();
    let server = start(move || {
        let files = StaticFiles::new(&root)
            .expect("fixture root")
            .revalidate_every(Duration::ZERO);
        App::new()
            .get("/static/{*path}", files)
            .wrap(Compression::default())
    });
    let mut client = Client::connect(server.local_addr());
    let fetch = |client: &mut Client| {
        client.send(get_accepting("/static/site.css", Some("gzip")));
        let r = client.response();
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        (decoded(&r), r.header("etag").expect("etag").to_owned())
    };

    let (body, tag) = fetch(&mut client);
    assert_eq!(body, first.as_bytes());
    // The second answer (from the cache of compressed bodies) is the same representation.
    assert_eq!(fetch(&mut client), (body, tag.clone()));

    // A new version has a new strong tag, so its compressed body is made anew.
    let second = "body { margin: 1em; padding: 0; }\n".repeat(120);
    dir.write("site.css", &second);
    let (body, new_tag) = fetch(&mut client);
    assert_eq!(body, second.as_bytes());
    assert_ne!(new_tag, tag);
}
