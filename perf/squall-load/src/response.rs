//! HTTP/1.1 response framing: where one response ends in a buffer that may hold several
//! (pipelining) or only part of one. A pure function over bytes, no I/O.
//!
//! Only the status, the length of the whole response and whether the server will close the
//! connection after it are read out; the caller keeps the bytes until the response is whole.

/// One complete response at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed {
    /// The status code.
    pub status: u16,
    /// Bytes the response takes, head and body: drop them to reach the next one.
    pub len: usize,
    /// The server announced `Connection: close` (or spoke HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// What the bytes at the front of the buffer are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A whole response.
    Complete(Framed),
    /// A prefix of one: read more.
    Partial,
    /// A response whose body runs until the server closes the connection (no length, not
    /// chunked); complete once the peer closes.
    UntilClose {
        /// The status code.
        status: u16,
    },
}

/// Why the bytes are not an HTTP/1.1 response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// The status line or a header is malformed.
    Head,
    /// More headers than the parser has room for.
    TooManyHeaders,
    /// A Content-Length that is not a number, or two that disagree.
    ContentLength,
    /// A malformed chunk size line or a chunk not followed by CRLF.
    Chunk,
    /// A 1xx interim response, which a plain GET/POST never asks for.
    Interim,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Head => "malformed response head",
            Self::TooManyHeaders => "too many response headers",
            Self::ContentLength => "invalid content-length",
            Self::Chunk => "malformed chunked body",
            Self::Interim => "unexpected 1xx response",
        })
    }
}

const MAX_HEADERS: usize = 64;

/// Frames the response at the front of `buf`. `head_request` says the request was HEAD, whose
/// response has headers describing a body that is not sent.
pub fn parse(buf: &[u8], head_request: bool) -> Result<Parse, ProtocolError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parse::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(ProtocolError::TooManyHeaders),
        Err(_) => return Err(ProtocolError::Head),
    };
    let status = response.code.ok_or(ProtocolError::Head)?;
    if (100..200).contains(&status) {
        return Err(ProtocolError::Interim);
    }
    let mut framing = Framing::UntilClose;
    let mut close = response.version == Some(0);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let len = parse_content_length(header.value)?;
            match framing {
                Framing::Length(previous) if previous != len => {
                    return Err(ProtocolError::ContentLength);
                }
                Framing::Chunked => {}
                _ => framing = Framing::Length(len),
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides; anything but chunked last means "until close".
            let last = header.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            framing = if trim(last).eq_ignore_ascii_case(b"chunked") {
                Framing::Chunked
            } else {
                Framing::UntilClose
            };
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = trim(token);
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    if head_request || status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    let body_len = match framing {
        Framing::Length(len) => {
            let total = head_len
                .checked_add(len)
                .ok_or(ProtocolError::ContentLength)?;
            return Ok(if buf.len() >= total {
                Parse::Complete(Framed {
                    status,
                    len: total,
                    close,
                })
            } else {
                Parse::Partial
            });
        }
        Framing::Chunked => chunked_len(&buf[head_len..])?,
        Framing::UntilClose => return Ok(Parse::UntilClose { status }),
    };
    Ok(match body_len {
        Some(len) => Parse::Complete(Framed {
            status,
            len: head_len + len,
            close,
        }),
        None => Parse::Partial,
    })
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn parse_content_length(value: &[u8]) -> Result<usize, ProtocolError> {
    let value = trim(value);
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::ContentLength);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ProtocolError::ContentLength)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The length of a complete chunked body at the front of `body` (chunks, the last chunk,
/// trailers, final CRLF), or `None` when it is not all there yet.
///
/// Strict where httparse's `parse_chunk_size` is lax: the size line must hold at least one hex
/// digit and end in CRLF; extensions are skipped but may not contain a bare LF.
fn chunked_len(body: &[u8]) -> Result<Option<usize>, ProtocolError> {
    let mut at = 0;
    loop {
        let Some(line_end) = find_crlf(&body[at..])? else {
            return Ok(None);
        };
        let line = &body[at..at + line_end];
        let digits_end = line
            .iter()
            .position(|b| !b.is_ascii_hexdigit())
            .unwrap_or(line.len());
        if digits_end == 0 || digits_end > 15 {
            return Err(ProtocolError::Chunk);
        }
        let rest = &line[digits_end..];
        if !rest.is_empty() && !matches!(rest[0], b';' | b' ' | b'\t') {
            return Err(ProtocolError::Chunk);
        }
        let size = line[..digits_end]
            .iter()
            .fold(0usize, |n, &d| n * 16 + hex_value(d));
        at += line_end + 2;
        if size == 0 {
            // Trailers: header lines until an empty one.
            loop {
                let Some(line_end) = find_crlf(&body[at..])? else {
                    return Ok(None);
                };
                at += line_end + 2;
                if line_end == 0 {
                    return Ok(Some(at));
                }
            }
        }
        let data_end = at.checked_add(size).ok_or(ProtocolError::Chunk)?;
        if body.len() < data_end + 2 {
            return Ok(None);
        }
        if &body[data_end..data_end + 2] != b"\r\n" {
            return Err(ProtocolError::Chunk);
        }
        at = data_end + 2;
    }
}

/// The offset of the first CRLF; a bare LF before it is an error.
fn find_crlf(bytes: &[u8]) -> Result<Option<usize>, ProtocolError> {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(0) => Err(ProtocolError::Chunk),
        Some(i) if bytes[i - 1] == b'\r' => Ok(Some(i - 1)),
        Some(_) => Err(ProtocolError::Chunk),
        None => Ok(None),
    }
}

fn hex_value(digit: u8) -> usize {
    match digit {
        b'0'..=b'9' => usize::from(digit - b'0'),
        b'a'..=b'f' => usize::from(digit - b'a' + 10),
        _ => usize::from(digit - b'A' + 10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> Framed {
        match parse(buf, false) {
            Ok(Parse::Complete(framed)) => framed,
            other => panic!("expected a complete response, got {other:?}"),
        }
    }

    #[test]
    fn content_length_response() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";
        assert_eq!(
            complete(buf),
            Framed {
                status: 200,
                len: buf.len(),
                close: false
            }
        );
    }

    #[test]
    fn every_prefix_is_partial() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for end in 0..buf.len() {
            assert_eq!(
                parse(&buf[..end], false),
                Ok(Parse::Partial),
                "prefix {end}"
            );
        }
    }

    #[test]
    fn pipelined_responses_are_framed_one_by_one() {
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".as_slice();
        let two = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".as_slice();
        let three = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let mut buf = [one, two, three.as_slice()].concat();
        buf.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-"); // the start of a fourth
        let mut at = 0;
        let mut statuses = Vec::new();
        while let Ok(Parse::Complete(framed)) = parse(&buf[at..], false) {
            statuses.push(framed.status);
            at += framed.len;
        }
        assert_eq!(statuses, [200, 404, 200]);
        assert_eq!(at, one.len() + two.len() + three.len());
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let buf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                    5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n";
        assert_eq!(complete(buf).len, buf.len());
        for end in 0..buf.len() {
            assert_eq!(
                parse(&buf[..end], false),
                Ok(Parse::Partial),
                "prefix {end}"
            );
        }
    }

    #[test]
    fn malformed_chunks_are_protocol_errors() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice();
        for body in [
            b"\r\n".as_slice(),            // empty size line
            b"zz\r\n",                     // not hex
            b"5\nhello\r\n0\r\n\r\n",      // bare LF
            b"3\r\nabcX\r\n0\r\n\r\n",     // data longer than its size
            b"1ffffffffffffffff\r\n",      // size overflow
            b"5;ext\nx\r\nhello\r\n0\r\n", // LF inside an extension
        ] {
            let buf = [head, body].concat();
            assert_eq!(
                parse(&buf, false),
                Err(ProtocolError::Chunk),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn connection_close_and_http10() {
        let buf = b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            complete(buf),
            Framed {
                status: 503,
                len: buf.len(),
                close: true
            }
        );
        let buf = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(complete(buf).close);
        let buf = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert!(!complete(buf).close);
    }

    #[test]
    fn bodiless_statuses_and_head() {
        let buf = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n";
        assert_eq!(complete(buf).len, buf.len());
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
        assert_eq!(
            parse(buf, true),
            Ok(Parse::Complete(Framed {
                status: 200,
                len: buf.len(),
                close: false
            }))
        );
    }

    #[test]
    fn no_length_reads_until_close() {
        let buf = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome body";
        assert_eq!(parse(buf, false), Ok(Parse::UntilClose { status: 200 }));
    }

    #[test]
    fn bad_heads_and_lengths() {
        assert_eq!(
            parse(b"HTTX/1.1 200 OK\r\n\r\n", false),
            Err(ProtocolError::Head)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false),
            Err(ProtocolError::ContentLength)
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                false
            ),
            Err(ProtocolError::ContentLength)
        );
        assert_eq!(
            parse(b"HTTP/1.1 100 Continue\r\n\r\n", false),
            Err(ProtocolError::Interim)
        );
    }
}
