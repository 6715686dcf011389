//! Uploads over loopback: multipart fields and files, every limit (413 naming it), malformed
//! bodies (400), wrong content types (415), a multi-MiB file streamed and checksummed, and a
//! slow handler streaming a body far larger than the socket buffers with backpressure.
#![cfg(feature = "multipart")]

mod support;

use std::hash::Hasher;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use squall::multipart::{Multipart, MultipartLimits};
use squall::{App, Config, Error, Limits, Request};
use support::{request, start, start_with, Client};

const BOUNDARY: &str = "----squall-test-7MA4YWxkTrZu0gW";

/// A checksum whose result does not depend on how the bytes are split into writes.
fn checksum(pieces: &[&[u8]]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    for piece in pieces {
        hasher.write(piece);
    }
    hasher.finish()
}

/// `len` bytes of a pattern that does not repeat at any power-of-two stride.
fn pattern(len: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..65_521u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    block.iter().copied().cycle().take(len).collect()
}

/// Limits read from the query, so each test states the ones it exercises.
fn limits_from(req: &Request) -> Result<MultipartLimits, Error> {
    let defaults = MultipartLimits::default();
    Ok(MultipartLimits {
        max_parts: req.arg_or("parts", defaults.max_parts)?,
        max_part_header_bytes: req.arg_or("header", defaults.max_part_header_bytes)?,
        max_field_bytes: req.arg_or("field", defaults.max_field_bytes)?,
        max_file_bytes: req.arg_or("file", defaults.max_file_bytes)?,
        max_total_bytes: req.arg_or("total", defaults.max_total_bytes)?,
    })
}

/// One line per part: name, file name, content type, length, checksum (and the text of
/// short fields), all streamed through `Part::chunk` except fields, read with `text`.
async fn describe(mut req: Request) -> Result<String, Error> {
    let limits = limits_from(&req)?;
    let mut form = Multipart::new(&mut req, limits)?;
    let mut out = String::new();
    while let Some(mut part) = form.next_part().await? {
        let name = part.name().unwrap_or("-").to_owned();
        let file = part.file_name().unwrap_or("-").to_owned();
        let kind = part.content_type().unwrap_or("-").to_owned();
        if part.is_file() {
            let mut hasher = std::hash::DefaultHasher::new();
            let mut len = 0;
            while let Some(chunk) = part.chunk().await? {
                len += chunk.len();
                hasher.write(&chunk);
            }
            out += &format!("{name}|{file}|{kind}|{len}|{:x}\n", hasher.finish());
        } else {
            let text = part.text().await?;
            out += &format!("{name}|{file}|{kind}|{}|{text}\n", text.len());
        }
    }
    Ok(out)
}

/// Reads only the parts named `keep`, skipping the others unread.
async fn pick(mut req: Request) -> Result<String, Error> {
    let limits = limits_from(&req)?;
    let mut form = Multipart::new(&mut req, limits)?;
    let mut kept = Vec::new();
    while let Some(mut part) = form.next_part().await? {
        if part.name() == Some("keep") {
            kept.push(part.text().await?);
        }
    }
    Ok(kept.join(","))
}

fn app() -> App {
    App::new().post("/describe", describe).post("/pick", pick)
}

/// A multipart body from `(header lines, content)` pairs.
fn body(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (headers, content) in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n{headers}\r\n\r\n").as_bytes());
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

fn field(name: &str) -> String {
    format!("Content-Disposition: form-data; name=\"{name}\"")
}

fn file(name: &str, file_name: &str, content_type: &str) -> String {
    format!(
        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}"
    )
}

fn head(target: &str, content_type: &str, len: usize) -> String {
    format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n"
    )
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// Posts `body` as multipart to `target`; the body is written from another thread so that a
/// server answering early (413) cannot leave the test blocked in a write.
fn post(addr: SocketAddr, target: &str, body: Vec<u8>) -> support::Response {
    post_as(addr, target, &multipart_type(), body)
}

fn post_as(addr: SocketAddr, target: &str, content_type: &str, body: Vec<u8>) -> support::Response {
    let mut client = Client::connect(addr);
    client.send(head(target, content_type, body.len()));
    let mut writer = client.stream().try_clone().expect("clone stream");
    let sending = thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let response = client.response();
    sending.join().expect("writer thread");
    response
}

#[test]
fn fields_and_files_arrive_with_their_headers() {
    let server = start(app);
    let picture = pattern(70_000);
    let parts = body(&[
        (&field("title"), b"Hello, world"),
        (&field("tags"), "ñandú & café".as_bytes()),
        (&field("empty"), b""),
        (&file("picture", "cat.png", "image/png"), &picture),
        (&file("notes", "empty.txt", "text/plain"), b""),
    ]);
    let r = post(server.local_addr(), "/describe", parts);
    assert_eq!(r.status, 200, "{}", r.text());
    let expected = format!(
        "title|-|-|12|Hello, world\n\
         tags|-|-|15|ñandú & café\n\
         empty|-|-|0|\n\
         picture|cat.png|image/png|70000|{:x}\n\
         notes|empty.txt|text/plain|0|{:x}\n",
        checksum(&[&picture]),
        checksum(&[]),
    );
    assert_eq!(r.text(), expected);
}

#[test]
fn a_body_with_no_parts_is_empty_and_unread_parts_are_skipped() {
    let server = start(app);
    let addr = server.local_addr();
    let r = post(
        addr,
        "/describe",
        format!("--{BOUNDARY}--\r\n").into_bytes(),
    );
    assert_eq!((r.status, r.text()), (200, String::new()));
    let big = pattern(200_000);
    let parts = body(&[
        (&field("keep"), b"one"),
        (&file("skip", "big.bin", "application/octet-stream"), &big),
        (&field("skip"), b"unread"),
        (&field("keep"), b"two"),
    ]);
    let r = post(addr, "/pick", parts);
    assert_eq!((r.status, r.text()), (200, "one,two".to_owned()));
}

#[test]
fn each_limit_answers_413_naming_it() {
    let server = start(app);
    let addr = server.local_addr();
    let three_fields = body(&[
        (&field("a"), b"1"),
        (&field("b"), b"2"),
        (&field("c"), b"3"),
    ]);
    let long_header = format!("{}\r\nX-Padding: {}", field("a"), "p".repeat(600));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("/describe?parts=2", three_fields.clone(), "max_parts (2)"),
        ("/describe?parts=3", three_fields, ""),
        (
            "/describe?header=512",
            body(&[(&long_header, b"x")]),
            "max_part_header_bytes (512 bytes)",
        ),
        ("/describe?header=1024", body(&[(&long_header, b"x")]), ""),
        (
            "/describe?field=16",
            body(&[(&field("a"), &[b'a'; 17])]),
            "\"a\" is larger than max_field_bytes (16 bytes)",
        ),
        (
            "/describe?field=16",
            body(&[(&field("a"), &[b'a'; 16])]),
            "",
        ),
        (
            "/describe?file=64&field=16",
            body(&[(&file("f", "f.bin", "application/octet-stream"), &[7; 65])]),
            "\"f\" is larger than max_file_bytes (64 bytes)",
        ),
        (
            "/describe?file=64&field=16",
            body(&[(&file("f", "f.bin", "application/octet-stream"), &[7; 64])]),
            "",
        ),
        (
            "/describe?total=1024",
            body(&[(&file("f", "f.bin", "application/octet-stream"), &[7; 1100])]),
            "max_total_bytes (1024 bytes)",
        ),
    ];
    for (target, body, limit) in cases {
        let r = post(addr, target, body);
        if limit.is_empty() {
            assert_eq!(r.status, 200, "{target}: {}", r.text());
        } else {
            assert_eq!(r.status, 413, "{target}: {}", r.text());
            assert!(r.text().contains(limit), "{target}: {}", r.text());
        }
    }
}

#[test]
fn limits_answer_before_the_rest_of_the_body_arrives() {
    let server = start(app);
    let addr = server.local_addr();
    // Headers that never end and a file past its limit: the client sends 128 KiB of a
    // declared 4 MiB and waits; the server answers from what it has.
    let endless_header = format!(
        "--{BOUNDARY}\r\n{}\r\nX-Padding: {}",
        field("a"),
        "p".repeat(128 * 1024)
    );
    let mut big_file = format!(
        "--{BOUNDARY}\r\n{}\r\n\r\n",
        file("f", "f.bin", "application/octet-stream")
    )
    .into_bytes();
    big_file.extend(pattern(128 * 1024));
    let cases = [
        (
            "/describe?header=1024",
            endless_header.into_bytes(),
            "max_part_header_bytes",
        ),
        ("/describe?file=65536", big_file, "max_file_bytes"),
    ];
    for (target, partial, limit) in cases {
        let mut client = Client::connect(addr);
        client.send(head(target, &multipart_type(), 4 << 20));
        client.send(&partial);
        let r = client.response();
        assert_eq!(r.status, 413, "{target}: {}", r.text());
        assert!(r.text().contains(limit), "{target}: {}", r.text());
    }
}

#[test]
fn malformed_bodies_answer_400() {
    let server = start(app);
    let addr = server.local_addr();
    let whole = body(&[(&field("a"), b"value")]);
    let truncated = whole[..whole.len() - 12].to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated before the closing boundary", truncated),
        ("no boundary at all", b"just some bytes".to_vec()),
        ("empty body", Vec::new()),
        (
            "a header line without a colon",
            format!("--{BOUNDARY}\r\nContent-Disposition form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n")
                .into_bytes(),
        ),
        (
            "headers that never end",
            format!("--{BOUNDARY}\r\n{}\r\n", field("a")).into_bytes(),
        ),
        (
            "text that is not utf-8",
            body(&[(&field("a"), &[0xff, 0xfe])]),
        ),
    ];
    for (what, body) in cases {
        let r = post(addr, "/describe", body);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
    }
}

#[test]
fn content_types_and_boundaries_are_checked_first() {
    let server = start(app);
    let addr = server.local_addr();
    let parts = body(&[(&field("a"), b"1")]);
    let r = post_as(addr, "/describe", "application/json", parts.clone());
    assert_eq!(r.status, 415);
    assert!(r.text().contains("multipart/form-data"), "{}", r.text());
    let r = request(
        addr,
        "POST /describe HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 415);
    for content_type in [
        "multipart/form-data",
        "multipart/form-data; charset=utf-8",
        "multipart/form-data; boundary=\"\"",
    ] {
        let r = post_as(addr, "/describe", content_type, parts.clone());
        assert_eq!(r.status, 400, "{content_type}: {}", r.text());
        assert!(r.text().contains("boundary"), "{}", r.text());
    }
    let long = format!("multipart/form-data; boundary={}", "b".repeat(71));
    assert_eq!(post_as(addr, "/describe", &long, parts).status, 400);
}

#[test]
fn a_multi_mib_file_streams_through_intact() {
    let server = start(app);
    let content = pattern(6 << 20);
    let expected = format!(
        "note|-|-|2|hi\nblob|blob.bin|application/octet-stream|{}|{:x}\n",
        content.len(),
        checksum(&[&content])
    );
    let parts = body(&[
        (&field("note"), b"hi"),
        (
            &file("blob", "blob.bin", "application/octet-stream"),
            &content,
        ),
    ]);
    let r = post(server.local_addr(), "/describe", parts);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), expected);
}

#[test]
fn the_checksum_does_not_depend_on_how_bytes_are_split() {
    let data = pattern(100_000);
    let (a, b) = data.split_at(33_333);
    assert_eq!(checksum(&[&data]), checksum(&[a, b]));
    assert_ne!(checksum(&[&data]), checksum(&[b, a]));
}

/// The server reads a body only as fast as its handler asks for it: while the handler
/// pauses, the client's writes stall at what the socket buffers hold; after, every byte
/// arrives, in chunks of at most one read buffer.
#[test]
fn a_slow_handler_streams_a_large_body_with_backpressure() {
    const TOTAL: usize = 32 << 20;
    let paused = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let config = Config {
        limits: Limits {
            max_body_bytes: 48 << 20,
            ..Limits::default()
        },
        ..support::config()
    };
    let (paused_flag, release_flag) = (Arc::clone(&paused), Arc::clone(&release));
    let server = start_with(config, move || {
        let (paused, release) = (Arc::clone(&paused_flag), Arc::clone(&release_flag));
        App::new().post("/stream", move |mut req: Request| {
            let (paused, release) = (Arc::clone(&paused), Arc::clone(&release));
            async move {
                let body = req.body_mut();
                let mut hasher = std::hash::DefaultHasher::new();
                let (mut len, mut chunks, mut largest) = (0usize, 0usize, 0usize);
                while let Some(chunk) = body.chunk().await? {
                    if chunks == 0 {
                        paused.store(true, Ordering::SeqCst);
                        while !release.load(Ordering::SeqCst) {
                            glommio::timer::sleep(Duration::from_millis(5)).await;
                        }
                    }
                    hasher.write(&chunk);
                    len += chunk.len();
                    chunks += 1;
                    largest = largest.max(chunk.len());
                }
                Ok::<_, Error>(format!("{len} {:x} {chunks} {largest}", hasher.finish()))
            }
        })
    });
    let content = Arc::new(pattern(TOTAL));
    let written = Arc::new(AtomicUsize::new(0));
    let mut client = Client::connect(server.local_addr());
    client.send(format!(
        "POST /stream HTTP/1.1\r\nHost: t\r\nContent-Length: {TOTAL}\r\n\r\n"
    ));
    let mut writer = client.stream().try_clone().expect("clone stream");
    let sending = {
        let (content, written) = (Arc::clone(&content), Arc::clone(&written));
        thread::spawn(move || {
            for piece in content.chunks(64 * 1024) {
                writer.write_all(piece).expect("server keeps reading");
                written.fetch_add(piece.len(), Ordering::SeqCst);
            }
        })
    };
    while !paused.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(5));
    }
    // Long enough for the client to send everything if the server were reading ahead.
    thread::sleep(Duration::from_millis(400));
    let stalled_at = written.load(Ordering::SeqCst);
    release.store(true, Ordering::SeqCst);
    sending.join().expect("writer thread");
    client.set_read_timeout(Duration::from_secs(30));
    let r = client.response();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        stalled_at < TOTAL / 2,
        "the client wrote {stalled_at} of {TOTAL} bytes while the handler paused"
    );
    let fields: Vec<String> = r.text().split(' ').map(str::to_owned).collect();
    assert_eq!(fields[0], TOTAL.to_string());
    assert_eq!(fields[1], format!("{:x}", checksum(&[&content])));
    let chunks: usize = fields[2].parse().expect("chunk count");
    let largest: usize = fields[3].parse().expect("largest chunk");
    assert!(largest <= 64 * 1024, "largest chunk {largest}");
    assert!(chunks >= TOTAL / (64 * 1024), "{chunks} chunks");
    eprintln!("client stalled at {stalled_at} bytes; {chunks} chunks, largest {largest}");
}
