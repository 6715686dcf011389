//! Head parsing and response encoding, the two codec steps every request pays for.
//!
//! `cargo bench --features internals --bench codec` (the feature exposes the codec internals it times)

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use squall::http::{Persistence, Version};
use squall::internals::{decode_head_into, encode_head, HeadArena, ResponseFraming, ResponseHead};

use squall::{HeaderMap, Limits, StatusCode};

/// What wrk sends for the plaintext test.
const WRK_REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// A browser-like request with the usual header load.
const BROWSER_REQUEST: &[u8] = b"GET /users/42/posts?page=2&sort=new HTTP/1.1\r\n\
Host: example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Connection: keep-alive\r\n\
Cookie: session=abcdef0123456789; theme=dark\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Cache-Control: max-age=0\r\n\r\n";

fn decode(c: &mut Criterion) {
    let limits = Limits::default();
    // One arena across iterations, as each core keeps one: heads are dropped each
    // iteration, so the arena's chunk is reused the way it is under load.
    let mut arena = HeadArena::default();
    let mut group = c.benchmark_group("decode_head");
    for (name, input) in [("wrk", WRK_REQUEST), ("browser", BROWSER_REQUEST)] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                decode_head_into(black_box(input), &limits, &mut arena)
                    .map(|h| h.map(|(h, n)| (h.header_count(), n)))
            })
        });
    }
    group.bench_function("httparse_only/wrk", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut req = httparse::Request::new(&mut headers);
            req.parse(black_box(WRK_REQUEST)).map(|s| s.is_complete())
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let headers = HeaderMap::new();
    let content_type = squall::HeaderValue::from_static("text/plain; charset=utf-8");
    let date_line = b"server: squall\r\ndate: Tue, 24 Nov 2026 01:47:59 GMT\r\n";
    let mut out = Vec::with_capacity(4096);
    c.bench_function("encode_head/plaintext", |b| {
        b.iter(|| {
            out.clear();
            let head = ResponseHead {
                status: StatusCode::OK,
                reason: None,
                content_type: Some(&content_type),
                headers: Some(&headers),
                framing: ResponseFraming::Length(13),
                persistence: Persistence::KeepAlive,
                version: Version::Http11,
            };
            encode_head(&mut out, black_box(&head), date_line);
            out.extend_from_slice(b"Hello, World!");
            out.len()
        })
    });
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
