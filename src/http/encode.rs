//! Response encoding: one status line, the cached server/date lines, framing, headers.
//!
//! The framing rules live here: 1xx, 204 and 304 never carry a body or a `Content-Length`;
//! a body of unknown length is chunked for HTTP/1.1 and close-delimited for HTTP/1.0.

use http::{HeaderMap, HeaderValue, StatusCode};

use super::head::{Persistence, Version};

/// How a response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFraming {
    /// The status forbids a body (1xx, 204, 304).
    NoBody,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0, unknown length).
    CloseDelimited,
}

impl ResponseFraming {
    /// The framing for a body of `len` bytes (`None` when unknown) answering a request of
    /// `version` with `status`.
    pub fn choose(status: StatusCode, version: Version, len: Option<u64>) -> ResponseFraming {
        if !status_allows_body(status) {
            return ResponseFraming::NoBody;
        }
        match (len, version) {
            (Some(n), _) => ResponseFraming::Length(n),
            (None, Version::Http11) => ResponseFraming::Chunked,
            (None, Version::Http10) => ResponseFraming::CloseDelimited,
        }
    }
}

/// Whether a response with `status` may carry a body (RFC 9110 6.4.1).
pub fn status_allows_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Everything needed to write a response head.
#[derive(Debug)]
pub struct ResponseHead<'a> {
    /// The status code.
    pub status: StatusCode,
    /// A custom reason phrase, already checked to be safe.
    pub reason: Option<&'a str>,
    /// The `Content-Type`, kept apart from `headers` so common responses need no header map.
    pub content_type: Option<&'a HeaderValue>,
    /// Every other header; `None` for the many responses that have none.
    pub headers: Option<&'a HeaderMap>,
    /// Body framing.
    pub framing: ResponseFraming,
    /// Whether the connection stays open after this response.
    pub persistence: Persistence,
    /// The version of the request being answered.
    pub version: Version,
}

/// Appends the response head to `out`. `server_and_date` is the cached
/// [`DateLine`](super::date::DateLine).
pub fn encode_head(out: &mut Vec<u8>, head: &ResponseHead<'_>, server_and_date: &[u8]) {
    // One reservation for the fixed parts, so the appends below never reallocate one by one.
    const FIXED: usize = 128;
    let content_type = head.content_type.map_or(0, |ct| ct.len());
    out.reserve(FIXED + server_and_date.len() + content_type);
    write_status_line(out, head.status, head.reason);
    out.extend_from_slice(server_and_date);
    if let Some(ct) = head.content_type {
        out.extend_from_slice(b"content-type: ");
        out.extend_from_slice(ct.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match head.framing {
        ResponseFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        ResponseFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        ResponseFraming::NoBody | ResponseFraming::CloseDelimited => {}
    }
    for (name, value) in head.headers.into_iter().flatten() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let closes =
        head.persistence == Persistence::Close || head.framing == ResponseFraming::CloseDelimited;
    if head.status != StatusCode::SWITCHING_PROTOCOLS {
        match (closes, head.version) {
            (true, _) => out.extend_from_slice(b"connection: close\r\n"),
            (false, Version::Http10) => out.extend_from_slice(b"connection: keep-alive\r\n"),
            (false, Version::Http11) => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn write_status_line(out: &mut Vec<u8>, status: StatusCode, reason: Option<&str>) {
    if reason.is_none() {
        let line: &[u8] = match status.as_u16() {
            200 => b"HTTP/1.1 200 OK\r\n",
            201 => b"HTTP/1.1 201 Created\r\n",
            204 => b"HTTP/1.1 204 No Content\r\n",
            301 => b"HTTP/1.1 301 Moved Permanently\r\n",
            302 => b"HTTP/1.1 302 Found\r\n",
            304 => b"HTTP/1.1 304 Not Modified\r\n",
            400 => b"HTTP/1.1 400 Bad Request\r\n",
            404 => b"HTTP/1.1 404 Not Found\r\n",
            500 => b"HTTP/1.1 500 Internal Server Error\r\n",
            _ => b"",
        };
        if !line.is_empty() {
            out.extend_from_slice(line);
            return;
        }
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    let reason = reason
        .or_else(|| status.canonical_reason())
        .unwrap_or("Unknown");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Whether `reason` may be sent as a reason phrase: `*( HTAB / SP / VCHAR / obs-text )`.
pub fn is_safe_reason(reason: &str) -> bool {
    reason
        .bytes()
        .all(|b| b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80)
}

/// Appends a chunk-size line for `len` bytes of chunk data.
pub fn encode_chunk_header(out: &mut Vec<u8>, len: usize) {
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

/// The CRLF that closes each chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk and an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
