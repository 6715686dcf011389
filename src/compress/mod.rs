//! Response compression: gzip and brotli, negotiated from `Accept-Encoding`.
//!
//! [`Compression`] is a middleware:
//!
//! ```
//! use squall::{compress::Compression, App, Request};
//!
//! let app = App::new()
//!     .wrap(Compression::default())
//!     .get("/", |_req: Request| async { squall::Html("<p>hello</p>".repeat(200)) });
//! ```
//!
//! It compresses a response when all of these hold:
//!
//! - the client accepts brotli or gzip (q-values honoured: `q=0` excludes a coding, `*`
//!   stands for the codings not named, `identity` may be preferred explicitly; equal
//!   preferences pick brotli, then gzip, then no compression; no `Accept-Encoding` at all
//!   means no compression);
//! - the content type is one that compresses (text, JSON, JavaScript, XML, SVG, wasm,
//!   uncompressed fonts — see [`is_compressible`]);
//! - the body is at least [`Compression::min_size`] bytes, or of unknown length (a stream);
//! - the status carries a whole body: never `206 Partial Content` (a range is of the
//!   uncompressed bytes), `304`, `204` or `1xx`;
//! - the handler has not encoded the body itself (`Content-Encoding` already set, as static
//!   files do when they serve a precompressed `.br`/`.gz` sibling) and has not opted out
//!   with `Cache-Control: no-transform` (see [`no_transform`]).
//!
//! `Vary: Accept-Encoding` is added to every response of a compressible type, compressed
//! or not, so that a cache never hands the gzip bytes to a client that did not ask for them.
//! A compressed response's strong `ETag` becomes weak (its bytes differ from the identity
//! representation's) and its `Accept-Ranges` is dropped. `Content-Length` stays the
//! server's business: a compressed in-memory body gets one, a compressed stream is sent
//! chunked.
//!
//! Streamed bodies are compressed as they flow with bounded memory: each chunk is
//! compressed and flushed on its own, so server-sent events and other long-lived streams
//! reach the client chunk by chunk instead of waiting in the encoder. That costs a little
//! ratio on many tiny chunks and is why the streaming brotli window is smaller (256 KiB).
//! A `HEAD` request gets the `Content-Encoding` a `GET` would be offered, without the work
//! and without a `Content-Length` (which RFC 9110 allows for `HEAD`). It cannot know that a
//! `GET` whose compressed body would not be smaller goes out uncompressed.
//!
//! An in-memory body whose response carries a strong `ETag` is compressed once per target,
//! tag and coding: the result is kept in a per-core cache bounded by
//! [`Compression::cache_bytes`] (default 4 MiB), so static files without precompressed
//! siblings and handlers that tag their content pay for compression once per version. The
//! tag is trusted: content that changes must change its strong tag, as HTTP requires.
//!
//! The default levels, gzip 6 and brotli 4, are chosen for content compressed on every
//! response; BENCHMARKS.md ("Compression cost per response") has the measurements behind
//! them. Content that never changes compresses better once, ahead of time: write
//! `site.css.br` and `site.css.gz` next to `site.css` and [`StaticFiles`] serves them.
//!
//! [`StaticFiles`]: crate::files::StaticFiles

use std::io::{self, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_lite::Stream;
use http::header::{
    HeaderValue, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_RANGE, ETAG,
};
use http::{Method, StatusCode};

use crate::body::{Body, ChunkStream};
use crate::error::Error;
use crate::future::LocalFuture;
use crate::http::encode::status_allows_body;
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;

mod cache;
mod negotiate;

use cache::{EncodedCache, EncodedKey};

pub use negotiate::{AcceptEncoding, Coding};

/// Whether content of this type gets smaller when compressed: text, JSON, JavaScript, XML,
/// SVG, WebAssembly and the uncompressed font formats. Images, audio, video, archives and
/// WOFF fonts are compressed already.
pub fn is_compressible(content_type: &HeaderValue) -> bool {
    let Ok(value) = content_type.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let is = |name: &str| essence.eq_ignore_ascii_case(name);
    let suffix = |tail: &str| {
        essence.len() > tail.len()
            && essence.as_bytes()[essence.len() - tail.len()..]
                .eq_ignore_ascii_case(tail.as_bytes())
    };
    (essence.len() > 5 && essence.as_bytes()[..5].eq_ignore_ascii_case(b"text/"))
        || suffix("+json")
        || suffix("+xml")
        || [
            "application/json",
            "application/javascript",
            "application/x-javascript",
            "application/ecmascript",
            "application/xml",
            "application/wasm",
            "application/x-ndjson",
            "application/graphql",
            "application/vnd.ms-fontobject",
            "application/x-font-ttf",
            "font/ttf",
            "font/otf",
            "image/x-icon",
            "image/vnd.microsoft.icon",
            "image/bmp",
        ]
        .iter()
        .any(|name| is(name))
}

/// Marks `response` as not to be compressed (or otherwise transformed, by this middleware
/// or by proxies): adds `no-transform` to its `Cache-Control`.
pub fn no_transform(mut response: Response) -> Response {
    let value = match response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    {
        Some(existing) if !existing.trim().is_empty() => {
            HeaderValue::from_str(&format!("{existing}, no-transform"))
                .unwrap_or(HeaderValue::from_static("no-transform"))
        }
        _ => HeaderValue::from_static("no-transform"),
    };
    response.insert_header(CACHE_CONTROL, value);
    response
}

/// The compression middleware; see the [module documentation](self). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Compression {
    settings: Rc<Settings>,
    /// `None` when [`Compression::cache_bytes`] is 0.
    cache: Option<Rc<EncodedCache>>,
}

#[derive(Clone, Debug)]
struct Settings {
    gzip_level: u32,
    brotli_quality: u32,
    min_size: u64,
    gzip: bool,
    brotli: bool,
    cache_bytes: u64,
}

/// The brotli window for streams: memory held per compressed stream for its whole life.
const STREAM_BROTLI_WINDOW_BITS: u32 = 18;

/// The default bound of the per-core cache of compressed bodies.
const DEFAULT_CACHE_BYTES: u64 = 4 << 20;

impl Default for Compression {
    fn default() -> Compression {
        Compression {
            settings: Rc::new(Settings {
                gzip_level: 6,
                brotli_quality: 4,
                min_size: 1024,
                gzip: true,
                brotli: true,
                cache_bytes: DEFAULT_CACHE_BYTES,
            }),
            cache: Some(Rc::new(EncodedCache::new(DEFAULT_CACHE_BYTES))),
        }
    }
}

impl Compression {
    /// gzip and brotli at their default levels, for bodies of 1 KiB and more.
    pub fn new() -> Compression {
        Compression::default()
    }

    /// This middleware with `change` made to its settings, and a new cache: bodies
    /// compressed under the old settings must not be served under the new ones.
    fn configured(mut self, change: impl FnOnce(&mut Settings)) -> Compression {
        change(Rc::make_mut(&mut self.settings));
        let bytes = self.settings.cache_bytes;
        self.cache = (bytes > 0).then(|| Rc::new(EncodedCache::new(bytes)));
        self
    }

    /// The gzip level, 1 (fastest) to 9 (smallest); default 6.
    pub fn gzip_level(self, level: u32) -> Compression {
        self.configured(|s| s.gzip_level = level.clamp(1, 9))
    }

    /// The brotli quality, 0 (fastest) to 11 (smallest); default 4.
    pub fn brotli_quality(self, quality: u32) -> Compression {
        self.configured(|s| s.brotli_quality = quality.min(11))
    }

    /// Bodies shorter than this many bytes are sent as they are (default 1024): below about
    /// a packet, compression saves no round trip and costs CPU on both sides.
    pub fn min_size(self, bytes: u64) -> Compression {
        self.configured(|s| s.min_size = bytes)
    }

    /// Whether to offer gzip (default yes).
    pub fn gzip(self, enabled: bool) -> Compression {
        self.configured(|s| s.gzip = enabled)
    }

    /// Whether to offer brotli (default yes).
    pub fn brotli(self, enabled: bool) -> Compression {
        self.configured(|s| s.brotli = enabled)
    }

    /// The bytes of compressed bodies to keep per core for responses with a strong `ETag`
    /// (default 4 MiB); 0 compresses every response afresh. A middleware made on one core
    /// keeps one cache, shared by its clones.
    pub fn cache_bytes(self, bytes: u64) -> Compression {
        self.configured(|s| s.cache_bytes = bytes)
    }

    /// Compresses `content` in one piece with `coding` at this middleware's level; identity
    /// returns a copy. What the middleware does to an in-memory body, for callers that
    /// want to compress ahead of time or measure the cost.
    pub fn encode(&self, coding: Coding, content: &[u8]) -> io::Result<Vec<u8>> {
        let settings = &self.settings;
        match coding {
            Coding::Identity => Ok(content.to_vec()),
            Coding::Gzip => {
                let out = Vec::with_capacity(content.len() / 4 + 64);
                let level = flate2::Compression::new(settings.gzip_level);
                let mut encoder = flate2::write::GzEncoder::new(out, level);
                encoder.write_all(content)?;
                encoder.finish()
            }
            Coding::Brotli => {
                let params = brotli::enc::BrotliEncoderParams {
                    quality: settings.brotli_quality as i32,
                    lgwin: window_bits_for(content.len(), settings.brotli_quality) as i32,
                    size_hint: content.len(),
                    ..Default::default()
                };
                let out = Vec::with_capacity(content.len() / 4 + 64);
                let mut encoder = brotli::CompressorWriter::with_params(out, 4096, &params);
                encoder.write_all(content)?;
                Ok(encoder.into_inner())
            }
        }
    }

    fn offered(&self) -> &'static [Coding] {
        match (self.settings.brotli, self.settings.gzip) {
            (true, true) => &[Coding::Brotli, Coding::Gzip, Coding::Identity],
            (true, false) => &[Coding::Brotli, Coding::Identity],
            (false, true) => &[Coding::Gzip, Coding::Identity],
            (false, false) => &[Coding::Identity],
        }
    }

    /// Compresses `response` for a client that sent `accept`, if it should be. `target` is
    /// the request's, when its compressed body may come from or go to the cache.
    fn apply(
        &self,
        mut response: Response,
        accept: AcceptEncoding,
        is_head: bool,
        target: Option<Box<str>>,
    ) -> Response {
        let status = response.status();
        if status.is_informational()
            || has_header(&response, CONTENT_ENCODING)
            || has_no_transform(&response)
        {
            return response;
        }
        match response.content_type() {
            Some(content_type) if is_compressible(content_type) => response.vary("Accept-Encoding"),
            // A 304 has no content type of its own; the 200 it stands for may have varied.
            None if status == StatusCode::NOT_MODIFIED => {
                response.vary("Accept-Encoding");
                return response;
            }
            _ => return response,
        }
        if status == StatusCode::PARTIAL_CONTENT
            || !status_allows_body(status)
            || has_header(&response, CONTENT_RANGE)
        {
            return response;
        }
        match response.body().len() {
            Some(len) if len < self.settings.min_size => return response,
            _ => {}
        }
        let coding = match accept.preferred(self.offered()) {
            Some(coding @ (Coding::Brotli | Coding::Gzip)) => coding,
            _ => return response,
        };
        let body = match response.take_body() {
            Body::Empty => return response,
            Body::Full(content) if !is_head => {
                let key = target
                    .zip(strong_etag(&response))
                    .map(|(target, etag)| EncodedKey {
                        target,
                        etag,
                        coding,
                    });
                match self.encode_body(&content, coding, key) {
                    Some(encoded) => Body::Full(encoded),
                    None => return response.with_body_of(Body::Full(content)),
                }
            }
            Body::Stream { chunks, .. } if !is_head => {
                Body::stream(EncodingStream::new(chunks, coding, &self.settings))
            }
            // A HEAD response says how the body would be encoded but carries none, so
            // there is nothing to compress and no length to promise.
            _ => Body::stream(futures_lite::stream::empty()),
        };
        mark_encoded(&mut response, coding);
        response.with_body_of(body)
    }

    /// `content` compressed with `coding`, or `None` when that does not make it smaller (or
    /// fails). With a `key`, the result is taken from the cache or kept there.
    fn encode_body(
        &self,
        content: &Bytes,
        coding: Coding,
        key: Option<EncodedKey>,
    ) -> Option<Bytes> {
        let cache = self.cache.as_ref().zip(key);
        if let Some((cache, key)) = &cache {
            if let Some(remembered) = cache.get(key) {
                return remembered;
            }
        }
        let encoded = match self.encode(coding, content) {
            Ok(encoded) if encoded.len() < content.len() => Some(Bytes::from(encoded)),
            Ok(_) => None,
            Err(e) => {
                tracing::error!(target: "squall::compress", "compression failed: {e}");
                return None;
            }
        };
        if let Some((cache, key)) = cache {
            cache.insert(key, encoded.clone());
        }
        encoded
    }

    /// The request target to key the cache with: only a `GET` the client wants compressed
    /// can use it, so other requests do not pay for the copy.
    fn cache_target(&self, req: &Request, accept: &AcceptEncoding) -> Option<Box<str>> {
        self.cache.as_ref()?;
        if req.method() != Method::GET
            || !matches!(
                accept.preferred(self.offered()),
                Some(Coding::Brotli | Coding::Gzip)
            )
        {
            return None;
        }
        Some(match req.query() {
            Some(query) => format!("{}?{query}", req.path()).into(),
            None => req.path().into(),
        })
    }
}

impl Middleware for Compression {
    fn call(&self, req: Request, next: Next) -> LocalFuture<'static, Response> {
        let accept = AcceptEncoding::from_request(&req);
        let is_head = req.method() == Method::HEAD;
        let target = self.cache_target(&req, &accept);
        let this = self.clone();
        Box::pin(async move {
            let response = next.run(req).await;
            this.apply(response, accept, is_head, target)
        })
    }
}

/// The response's `ETag` if it is strong: only a strong tag promises the exact bytes.
fn strong_etag(response: &Response) -> Option<HeaderValue> {
    response
        .extra_headers()?
        .get(ETAG)
        .filter(|tag| tag.as_bytes().starts_with(b"\""))
        .cloned()
}

/// The brotli window for `len` bytes of content at `quality`: up to quality 4, no larger
/// than the content needs (the encoder sets up its tables for the window: at quality 4,
/// 64 KiB of JSON took 0.65 ms with 16 bits against 1.09 ms with 22); above, brotli's
/// default 22 bits, because this encoder's qualities 5 and 6 ran three times slower with the
/// smaller window.
fn window_bits_for(len: usize, quality: u32) -> u32 {
    if quality > 4 {
        return 22;
    }
    let bits = usize::BITS - len.saturating_sub(1).leading_zeros();
    bits.clamp(10, 22)
}

/// Whether `response` carries header `name` (without lending the shared empty map).
fn has_header(response: &Response, name: http::HeaderName) -> bool {
    response
        .extra_headers()
        .is_some_and(|h| h.contains_key(name))
}

fn has_no_transform(response: &Response) -> bool {
    response
        .header_list(CACHE_CONTROL)
        .any(|directive| directive.eq_ignore_ascii_case(b"no-transform"))
}

fn mark_encoded(response: &mut Response, coding: Coding) {
    response.insert_header(CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
    response.headers_mut().remove(ACCEPT_RANGES);
    let weakened = strong_etag(response)
        .and_then(|tag| HeaderValue::from_bytes(&[b"W/", tag.as_bytes()].concat()).ok());
    if let Some(weak) = weakened {
        response.insert_header(ETAG, weak);
    }
}

/// A compressor that hands out what it has produced after every chunk.
enum StreamEncoder {
    Gzip(Box<flate2::write::GzEncoder<Vec<u8>>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl StreamEncoder {
    fn new(coding: Coding, settings: &Settings) -> Option<StreamEncoder> {
        match coding {
            Coding::Gzip => Some(StreamEncoder::Gzip(Box::new(
                flate2::write::GzEncoder::new(
                    Vec::new(),
                    flate2::Compression::new(settings.gzip_level),
                ),
            ))),
            Coding::Brotli => Some(StreamEncoder::Brotli(Box::new(
                brotli::CompressorWriter::new(
                    Vec::new(),
                    4096,
                    settings.brotli_quality,
                    STREAM_BROTLI_WINDOW_BITS,
                ),
            ))),
            Coding::Identity => None,
        }
    }

    /// Compresses `chunk` and flushes, returning every byte produced so far.
    fn push(&mut self, chunk: &[u8]) -> io::Result<Bytes> {
        let out = match self {
            StreamEncoder::Gzip(encoder) => {
                encoder.write_all(chunk)?;
                encoder.flush()?;
                encoder.get_mut()
            }
            StreamEncoder::Brotli(encoder) => {
                encoder.write_all(chunk)?;
                encoder.flush()?;
                encoder.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(out)))
    }

    /// Ends the compressed stream, returning its last bytes.
    fn finish(self) -> io::Result<Bytes> {
        match self {
            StreamEncoder::Gzip(encoder) => encoder.finish().map(Bytes::from),
            StreamEncoder::Brotli(encoder) => Ok(Bytes::from(encoder.into_inner())),
        }
    }
}

/// A body stream compressed chunk by chunk.
struct EncodingStream {
    chunks: ChunkStream,
    encoder: Option<StreamEncoder>,
}

impl EncodingStream {
    fn new(chunks: ChunkStream, coding: Coding, settings: &Settings) -> EncodingStream {
        EncodingStream {
            chunks,
            encoder: StreamEncoder::new(coding, settings),
        }
    }
}

impl Stream for EncodingStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let failed = |e: io::Error| Error::internal("response compression failed").with_source(e);
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            let produced = match this.chunks.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => continue,
                Poll::Ready(Some(Ok(chunk))) => encoder.push(&chunk),
                Poll::Ready(Some(Err(e))) => {
                    this.encoder = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => match this.encoder.take() {
                    Some(encoder) => encoder.finish(),
                    None => return Poll::Ready(None),
                },
            };
            match produced {
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => return Poll::Ready(Some(Ok(bytes))),
                Err(e) => {
                    this.encoder = None;
                    return Poll::Ready(Some(Err(failed(e))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(target: &str, etag: &'static str) -> Option<EncodedKey> {
        Some(EncodedKey {
            target: target.into(),
            etag: HeaderValue::from_static(etag),
            coding: Coding::Gzip,
        })
    }

    #[test]
    fn a_tagged_body_is_compressed_once() {
        let compression = Compression::default();
        let content = Bytes::from("squall ".repeat(500));
        let first = compression.encode_body(&content, Coding::Gzip, key("/a", "\"1\""));
        let again = compression.encode_body(&content, Coding::Gzip, key("/a", "\"1\""));
        let (first, again) = (first.expect("smaller"), again.expect("smaller"));
        // The same allocation: the second answer came from the cache, not the encoder.
        assert_eq!(first.as_ptr(), again.as_ptr());
        let cache = compression.cache.as_ref().expect("cache on by default");
        assert_eq!(cache.len(), 1);

        // Another tag, another target or no tag at all: compressed afresh.
        let other_tag = compression.encode_body(&content, Coding::Gzip, key("/a", "\"2\""));
        let other_target = compression.encode_body(&content, Coding::Gzip, key("/b", "\"1\""));
        let untagged = compression.encode_body(&content, Coding::Gzip, None);
        for fresh in [other_tag, other_target, untagged] {
            assert_ne!(fresh.expect("smaller").as_ptr(), first.as_ptr());
        }
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn a_body_that_does_not_shrink_is_remembered_as_such() {
        let compression = Compression::default();
        // xorshift64: bytes with nothing for gzip to find.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let content = Bytes::from(noise);
        assert_eq!(
            compression.encode_body(&content, Coding::Gzip, key("/n", "\"1\"")),
            None
        );
        let cache = compression.cache.as_ref().expect("cache");
        assert_eq!(cache.get(&key("/n", "\"1\"").expect("key")), Some(None));
    }

    #[test]
    fn new_settings_or_a_zero_bound_drop_the_cache() {
        let compression = Compression::default();
        let content = Bytes::from("squall ".repeat(500));
        compression.encode_body(&content, Coding::Gzip, key("/a", "\"1\""));
        let relevelled = compression.clone().gzip_level(9);
        assert_eq!(relevelled.cache.as_ref().expect("cache").len(), 0);
        assert!(compression.cache_bytes(0).cache.is_none());
    }

    #[test]
    fn compressible_types() {
        let yes = [
            "text/html; charset=utf-8",
            "TEXT/CSS",
            "application/json",
            "application/problem+json",
            "image/svg+xml",
            "application/wasm",
            "text/event-stream",
        ];
        let no = [
            "image/png",
            "application/octet-stream",
            "font/woff2",
            "video/mp4",
            "text/",
        ];
        for t in yes {
            assert!(is_compressible(&HeaderValue::from_static(t)), "{t}");
        }
        for t in no {
            assert!(!is_compressible(&HeaderValue::from_static(t)), "{t}");
        }
    }

    #[test]
    fn window_fits_the_content() {
        assert_eq!(window_bits_for(0, 4), 10);
        assert_eq!(window_bits_for(1000, 4), 10);
        assert_eq!(window_bits_for(16 * 1024, 4), 14);
        assert_eq!(window_bits_for(16 * 1024 + 1, 4), 15);
        assert_eq!(window_bits_for(100 << 20, 4), 22);
        assert_eq!(window_bits_for(1000, 5), 22);
    }

    #[test]
    fn stream_encoder_output_decodes_to_the_input() {
        use std::io::Read;
        let settings = Compression::default().settings;
        let pieces: [&[u8]; 3] = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"];
        for coding in [Coding::Gzip, Coding::Brotli] {
            let mut encoder = StreamEncoder::new(coding, &settings).expect("a real coding");
            let mut wire = Vec::new();
            for piece in pieces {
                let out = encoder.push(piece).expect("in memory");
                // Flushed per chunk: every chunk produces output right away.
                assert!(!out.is_empty(), "{coding:?}");
                wire.extend_from_slice(&out);
            }
            wire.extend_from_slice(&encoder.finish().expect("in memory"));
            let mut decoded = Vec::new();
            match coding {
                Coding::Gzip => flate2::read::GzDecoder::new(&wire[..])
                    .read_to_end(&mut decoded)
                    .expect("valid gzip"),
                _ => brotli::Decompressor::new(&wire[..], 4096)
                    .read_to_end(&mut decoded)
                    .expect("valid brotli"),
            };
            assert_eq!(decoded, pieces.concat(), "{coding:?}");
        }
    }
}
