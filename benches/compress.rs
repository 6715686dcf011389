//! What compressing one response costs: a 16 KiB HTML page and a 64 KiB JSON body, each
//! through gzip and brotli at several levels, in one piece as the Compression middleware
//! compresses an in-memory body. The compressed sizes are printed first, since the level
//! trade-off is time against bytes.
//!
//! `cargo bench --bench compress`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use squall::compress::{Coding, Compression};

/// Words drawn from a fixed vocabulary by a fixed generator: text that compresses like
/// prose, not like a repeated string.
struct Words {
    state: u64,
}

const VOCABULARY: &[&str] = &[
    "the",
    "server",
    "request",
    "response",
    "core",
    "static",
    "file",
    "cache",
    "of",
    "and",
    "a",
    "to",
    "in",
    "is",
    "connection",
    "header",
    "body",
    "stream",
    "with",
    "for",
    "share",
    "nothing",
    "ring",
    "latency",
    "throughput",
    "measure",
    "client",
    "page",
    "template",
    "compression",
    "brotli",
    "gzip",
    "window",
    "quality",
    "level",
    "chunk",
    "flush",
    "vary",
    "encoding",
    "accept",
    "length",
    "bytes",
    "per",
    "second",
    "user",
    "post",
    "comment",
];

impl Words {
    fn next(&mut self) -> &'static str {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        VOCABULARY[(self.state >> 33) as usize % VOCABULARY.len()]
    }

    fn sentence(&mut self, words: usize) -> String {
        (0..words)
            .map(|_| self.next())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A blog listing page of about `size` bytes.
fn html_page(size: usize) -> Vec<u8> {
    let mut words = Words {
        state: 0x9e37_79b9_7f4a_7c15,
    };
    let mut page = String::from(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Posts</title>\
         <link rel=stylesheet href=\"/static/css/site.css?v=3f2a9c0d51e8b7a4\"></head>\
         <body><header><nav><a href=\"/\">Home</a> <a href=\"/about\">About</a></nav></header><main>",
    );
    let mut n = 0;
    while page.len() < size - 200 {
        n += 1;
        let title = words.sentence(5);
        let text = words.sentence(40);
        page.push_str(&format!(
            "<article class=\"post\" id=\"post-{n}\"><h2><a href=\"/posts/{n}\">{title}</a></h2>\
             <p class=\"meta\">Posted by user{} on 2026-11-{:02}</p><p>{text}</p></article>",
            n % 17,
            n % 28 + 1
        ));
    }
    page.push_str("</main><footer>squall</footer></body></html>");
    page.truncate(size);
    page.into_bytes()
}

/// A JSON array of records of about `size` bytes.
fn json_body(size: usize) -> Vec<u8> {
    let mut words = Words {
        state: 0x2545_f491_4f6c_dd1d,
    };
    let mut records = Vec::new();
    let mut total = 2;
    let mut id = 0u64;
    while total < size {
        id += 1;
        let record = serde_json::json!({
            "id": id,
            "author": format!("user{}", id % 23),
            "title": words.sentence(4),
            "tags": [words.next(), words.next()],
            "score": (id * 7919) % 1000,
            "published": !id.is_multiple_of(3),
        });
        let text = record.to_string();
        total += text.len() + 1;
        records.push(record);
    }
    let mut body = serde_json::to_vec(&records).expect("json");
    body.truncate(size);
    body
}

fn levels() -> Vec<(String, Coding, Compression)> {
    let mut all = Vec::new();
    for level in [1, 6, 9] {
        all.push((
            format!("gzip-{level}"),
            Coding::Gzip,
            Compression::new().gzip_level(level),
        ));
    }
    for quality in [1, 4, 5, 6, 9] {
        all.push((
            format!("br-{quality}"),
            Coding::Brotli,
            Compression::new().brotli_quality(quality),
        ));
    }
    all
}

fn bodies() -> [(&'static str, Vec<u8>); 2] {
    [
        ("html-16k", html_page(16 * 1024)),
        ("json-64k", json_body(64 * 1024)),
    ]
}

fn compress(c: &mut Criterion) {
    for (name, body) in bodies() {
        for (label, coding, compression) in levels() {
            let out = compression.encode(coding, &body).expect("in memory");
            eprintln!(
                "{name} {label}: {} -> {} bytes ({:.1}%)",
                body.len(),
                out.len(),
                100.0 * out.len() as f64 / body.len() as f64
            );
        }
        let mut group = c.benchmark_group(format!("compress/{name}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        for (label, coding, compression) in levels() {
            group.bench_function(label, |b| {
                b.iter(|| compression.encode(coding, black_box(&body)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, compress);
criterion_main!(benches);
