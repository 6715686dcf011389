//! Request heads: bytes in, a validated [`Head`] out.
//!
//! httparse does the tokenising; this module adds what it leaves to the caller and what keeps
//! requests from being smuggled: bare LF line ends, raw non-ASCII in the target, `Host` rules,
//! `Content-Length` / `Transfer-Encoding` framing, `Expect`, and every size limit.

use bytes::Bytes;
use http::Method;
use smallvec::SmallVec;

use super::fields::{list_items, trim_ows};
use super::ParseError;
use crate::config::{Limits, MAX_HEADERS_CEILING, MAX_HEAD_CEILING};

/// The protocol version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Whether the connection may carry another request after this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Keep the connection open.
    KeepAlive,
    /// Close after the response.
    Close,
}

/// A byte range inside [`Head::raw`]. `u16` offsets keep a `Head` small enough that moving it
/// through the handler pipeline is cheap (memcpy of heads and responses was ~20% of server CPU
/// for pipelined plaintext before heads shrank); configuration caps heads at
/// [`MAX_HEAD_CEILING`] bytes to match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u16,
    end: u16,
}

impl Span {
    fn of(base: &[u8], part: &[u8]) -> Span {
        // httparse hands out subslices of `base`, so the offset is their pointer distance.
        let start = part.as_ptr() as usize - base.as_ptr() as usize;
        Span {
            start: start as u16,
            end: (start + part.len()) as u16,
        }
    }

    fn sub(self, from: usize, to: usize) -> Span {
        Span {
            start: self.start + from as u16,
            end: self.start + to as u16,
        }
    }

    pub(crate) fn get(self, raw: &[u8]) -> &[u8] {
        &raw[self.start as usize..self.end as usize]
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct HeaderSpan {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// A parsed and validated request head. It owns a copy of its bytes, so it outlives the
/// connection's read buffer; every accessor is a slice of that copy.
#[derive(Clone, Debug)]
pub struct Head {
    raw: Bytes,
    method: Method,
    version: Version,
    target: Span,
    path: Span,
    query: Option<Span>,
    authority: Option<Span>,
    headers: SmallVec<[HeaderSpan; 10]>,
    framing: BodyFraming,
    persistence: Persistence,
    expect_continue: bool,
    upgrade: Option<Span>,
}

impl Head {
    /// Copies the head's bytes out of the arena chunk they share with other heads.
    pub(crate) fn detach(&mut self) {
        self.raw = Bytes::copy_from_slice(&self.raw);
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request target exactly as sent.
    pub fn target(&self) -> &str {
        self.str_at(self.target)
    }

    /// The path, still percent-encoded (`*` for an asterisk-form `OPTIONS`).
    pub fn path(&self) -> &str {
        match self.str_at(self.path) {
            "" => "/",
            path => path,
        }
    }

    /// The query string after `?`, still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        self.query.map(|s| self.str_at(s))
    }

    /// The authority: from an absolute-form target if there is one, else the `Host` header.
    pub fn authority(&self) -> Option<&str> {
        self.authority.map(|s| self.str_at(s))
    }

    /// How the body is delimited.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// What the client asked of the connection.
    pub fn persistence(&self) -> Persistence {
        self.persistence
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        self.expect_continue
    }

    /// The `Upgrade` header, when `Connection` also carries the `upgrade` token.
    pub fn upgrade(&self) -> Option<&str> {
        // A header value, which may hold obs-text: convert with a check.
        self.upgrade
            .and_then(|s| std::str::from_utf8(s.get(&self.raw)).ok())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header field in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers
            .iter()
            .map(|h| (self.str_at(h.name), h.value.get(&self.raw)))
    }

    /// Number of header fields.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    fn str_at(&self, span: Span) -> &str {
        let bytes = span.get(&self.raw);
        debug_assert!(bytes.is_ascii());
        // SAFETY: `str_at` is only given spans of the target (and its path and query), header
        // names and a validated authority, which parsing checked to be ASCII
        // (`decode_head_into`, `is_valid_host`). A checked conversion here was
        // ~200 instructions per request under callgrind.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

/// Decodes one request head from the start of `buf`.
///
/// `Ok(None)` means the head is not complete yet; `Ok(Some((head, n)))` means the first `n`
/// bytes were the head and the body (if any) starts at `buf[n]`. Errors are final: the
/// connection answers with [`ParseError::status`] and closes.
pub fn decode_head(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, ParseError> {
    decode_head_into(buf, limits, &mut HeadArena::default())
}

/// Where decoded heads keep their bytes: a chunk that many heads share, so that decoding a
/// head costs a copy but not an allocation. Once every head cut from the chunk is dropped,
/// the chunk is reused in place.
#[derive(Debug, Default)]
pub struct HeadArena {
    chunk: bytes::BytesMut,
}

impl HeadArena {
    /// Heads are small; one chunk holds dozens of them.
    const CHUNK: usize = 4096;

    fn store(&mut self, head: &[u8]) -> Bytes {
        if self.chunk.capacity() < head.len() {
            self.chunk.reserve(head.len().max(Self::CHUNK));
        }
        self.chunk.extend_from_slice(head);
        self.chunk.split().freeze()
    }
}

/// [`decode_head`], keeping the head's bytes in `arena`.
pub fn decode_head_into(
    buf: &[u8],
    limits: &Limits,
    arena: &mut HeadArena,
) -> Result<Option<(Head, usize)>, ParseError> {
    let mut slots = [std::mem::MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS_CEILING];
    let slots = &mut slots[..limits.max_headers.min(MAX_HEADERS_CEILING)];
    let mut req = httparse::Request::new(&mut []);
    let parsed =
        httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, slots);
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            check_partial(buf, limits)?;
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(e) => {
            // A line that is too long to finish is a size problem, not a syntax one.
            check_partial(buf, limits)?;
            return Err(ParseError::Malformed(syntax_message(e)));
        }
    };
    if head_len > limits.max_head_bytes.min(MAX_HEAD_CEILING) {
        return Err(ParseError::HeadTooLarge);
    }
    let head = &buf[..head_len];

    let method = req.method.ok_or(ParseError::Malformed("missing method"))?;
    let method_start = Span::of(head, method.as_bytes()).start as usize;
    let target = req
        .path
        .ok_or(ParseError::Malformed("missing request target"))?;
    if target.len() > limits.max_target_bytes {
        return Err(ParseError::TargetTooLong);
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(ParseError::UnsupportedVersion),
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| ParseError::Malformed("invalid method"))?;

    let target_span = Span::of(head, target.as_bytes());
    let (path, query, target_authority) = split_target(&method, target, target_span)?;

    let mut parts = HeadParts::default();
    let mut headers = SmallVec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let span = HeaderSpan {
            name: Span::of(head, h.name.as_bytes()),
            value: Span::of(head, h.value),
        };
        parts.note(h.name, h.value, span.value, limits)?;
        headers.push(span);
    }

    check_line_ends(head, method_start, &headers)?;

    let framing = parts.framing(version)?;
    let host = match (version, parts.host_count) {
        (_, n) if n > 1 => return Err(ParseError::Malformed("more than one host header")),
        (Version::Http11, 0) => return Err(ParseError::Malformed("missing host header")),
        (_, _) => parts.host,
    };
    if let Some(h) = host {
        if !is_valid_host(h.get(head)) {
            return Err(ParseError::Malformed("invalid host header"));
        }
    }
    let persistence = match (version, parts.connection_close, parts.connection_keep_alive) {
        (_, true, _) => Persistence::Close,
        (Version::Http11, false, _) => Persistence::KeepAlive,
        (Version::Http10, false, true) => Persistence::KeepAlive,
        (Version::Http10, false, false) => Persistence::Close,
    };
    // RFC 9110 10.1.1: a server ignores 100-continue from an HTTP/1.0 client.
    let expect_continue = parts.expect_continue && version == Version::Http11;
    let upgrade = parts.upgrade.filter(|_| parts.connection_upgrade);

    Ok(Some((
        Head {
            raw: arena.store(head),
            method,
            version,
            target: target_span,
            path,
            query,
            authority: target_authority.or(host),
            headers,
            framing,
            persistence,
            expect_continue,
            upgrade,
        },
        head_len,
    )))
}

/// The header fields that decide framing and connection handling, gathered in one pass.
#[derive(Default)]
struct HeadParts {
    content_length: Option<u64>,
    transfer_encoding_chunked: Option<bool>,
    host: Option<Span>,
    host_count: usize,
    connection_close: bool,
    connection_keep_alive: bool,
    connection_upgrade: bool,
    expect_continue: bool,
    upgrade: Option<Span>,
}

impl HeadParts {
    fn note(
        &mut self,
        name: &str,
        value: &[u8],
        span: Span,
        limits: &Limits,
    ) -> Result<(), ParseError> {
        // Control characters in values are already refused by httparse (its value map is
        // HTAB, SP, VCHAR and obs-text); a second scan here took `decode_head/browser` in
        // `cargo bench --bench codec` from ~570 ns to ~910 ns.
        let is = |known: &str| name.len() == known.len() && name.eq_ignore_ascii_case(known);
        if is("content-length") {
            let length = parse_content_length(value, limits)?;
            if self.content_length.is_some_and(|seen| seen != length) {
                return Err(ParseError::Malformed("conflicting content-length headers"));
            }
            self.content_length = Some(length);
        } else if is("transfer-encoding") {
            // Several fields combine into one list; only a lone final `chunked` is accepted.
            for coding in list_items(value) {
                let chunked = coding.eq_ignore_ascii_case(b"chunked");
                if !chunked || self.transfer_encoding_chunked.is_some() {
                    return Err(ParseError::Malformed("unsupported transfer-encoding"));
                }
                self.transfer_encoding_chunked = Some(true);
            }
            self.transfer_encoding_chunked.get_or_insert(false);
        } else if is("host") {
            self.host_count += 1;
            self.host = Some(span);
        } else if is("connection") {
            for token in list_items(value) {
                if token.eq_ignore_ascii_case(b"close") {
                    self.connection_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.connection_keep_alive = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    self.connection_upgrade = true;
                }
            }
        } else if is("expect") {
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(ParseError::UnsupportedExpectation);
            }
            self.expect_continue = true;
        } else if is("upgrade") {
            self.upgrade = Some(span);
        }
        Ok(())
    }

    fn framing(&self, version: Version) -> Result<BodyFraming, ParseError> {
        match (self.transfer_encoding_chunked, self.content_length) {
            (Some(_), _) if version == Version::Http10 => Err(ParseError::Malformed(
                "transfer-encoding in an http/1.0 request",
            )),
            (Some(_), Some(_)) => Err(ParseError::Malformed(
                "both content-length and transfer-encoding",
            )),
            (Some(true), None) => Ok(BodyFraming::Chunked),
            (Some(false), None) => Err(ParseError::Malformed("empty transfer-encoding")),
            (None, Some(0)) | (None, None) => Ok(BodyFraming::Empty),
            (None, Some(n)) => Ok(BodyFraming::Length(n)),
        }
    }
}

/// `Content-Length = 1*DIGIT`, possibly repeated as an identical list (RFC 9110 8.6).
fn parse_content_length(value: &[u8], limits: &Limits) -> Result<u64, ParseError> {
    let mut length = None;
    for item in value.split(|&b| b == b',') {
        let item = trim_ows(item);
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::Malformed("invalid content-length"));
        }
        let n = item.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        // A decimal too large for u64 is certainly too large for the body limit.
        let n = n.ok_or(ParseError::BodyTooLarge)?;
        if length.is_some_and(|seen| seen != n) {
            return Err(ParseError::Malformed("conflicting content-length values"));
        }
        length = Some(n);
    }
    let length = length.ok_or(ParseError::Malformed("invalid content-length"))?;
    if length > limits.max_body_bytes {
        return Err(ParseError::BodyTooLarge);
    }
    Ok(length)
}

/// Splits a target into path and query, and finds the authority of an absolute-form target.
fn split_target(
    method: &Method,
    target: &str,
    span: Span,
) -> Result<(Span, Option<Span>, Option<Span>), ParseError> {
    let bytes = target.as_bytes();
    let (path_start, authority) = if bytes.first() == Some(&b'/') {
        (0, None)
    } else if target == "*" {
        if method != Method::OPTIONS {
            return Err(ParseError::Malformed(
                "asterisk-form target outside options",
            ));
        }
        return Ok((span, None, None));
    } else if let Some(rest_at) = absolute_form_rest(bytes) {
        let rest = &bytes[rest_at..];
        let authority_len = rest
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        if authority.is_empty() || authority.contains(&b'@') || !is_valid_host(authority) {
            return Err(ParseError::Malformed("invalid authority in request target"));
        }
        let authority = span.sub(rest_at, rest_at + authority_len);
        (rest_at + authority_len, Some(authority))
    } else {
        return Err(ParseError::Malformed("invalid request target"));
    };
    // One pass checks every byte (httparse lets raw non-ASCII through) and finds the query.
    let after = &bytes[path_start..];
    let mut query_at = None;
    for (i, &b) in after.iter().enumerate() {
        match b {
            b'#' => return Err(ParseError::Malformed("fragment in request target")),
            b'?' if query_at.is_none() => query_at = Some(i),
            _ if !b.is_ascii_graphic() => {
                return Err(ParseError::Malformed("invalid byte in request target"))
            }
            _ => {}
        }
    }
    let (path, query) = match query_at {
        Some(q) => (
            span.sub(path_start, path_start + q),
            Some(span.sub(path_start + q + 1, bytes.len())),
        ),
        None => (span.sub(path_start, bytes.len()), None),
    };
    // `http://host` and `http://host?q` have an empty path, which means "/" (see `Head::path`).
    Ok((path, query, authority))
}

fn absolute_form_rest(bytes: &[u8]) -> Option<usize> {
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        if bytes.len() > scheme.len() && bytes[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(scheme.len());
        }
    }
    None
}

/// `uri-host [ ":" port ]` — reg-name, IPv4 or a bracketed IP literal; empty is allowed
/// (RFC 9110 7.2), whitespace and delimiters are not.
fn is_valid_host(host: &[u8]) -> bool {
    if let Some(rest) = host.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &rest[..close];
        let literal_ok = !literal.is_empty()
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
        return literal_ok && is_port_suffix(&rest[close + 1..]);
    }
    // A reg-name or IPv4 address, then an optional `:port`. REG_NAME has no `:`, so a second
    // colon fails the name check.
    let (name, port) = match memchr::memrchr(b':', host) {
        Some(colon) => host.split_at(colon),
        None => (host, &[][..]),
    };
    name.iter().all(|&b| REG_NAME[b as usize]) && is_port_suffix(port)
}

/// Nothing, or `:` and at most five digits.
fn is_port_suffix(s: &[u8]) -> bool {
    match s {
        [] => true,
        [b':', port @ ..] => port.len() <= 5 && port.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// reg-name bytes: unreserved, sub-delims and `%` (RFC 3986 3.2.2). A table, because the
/// chain of comparisons it replaces was 2% of server CPU on pipelined plaintext (`perf`).
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let allowed = b"-._~%!$&'()*+,;=";
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric();
        i += 1;
    }
    let mut j = 0;
    while j < allowed.len() {
        table[allowed[j] as usize] = true;
        j += 1;
    }
    table
};

/// Line ends must be CRLF; httparse also accepts a bare LF, which another parser in front of
/// or behind this one might read differently.
///
/// httparse has checked everything else about the lines, so only their ends need looking at:
/// the empty lines it skipped before the request line, the end of the request line, the end of
/// each header line (past optional whitespace) and the final empty line. Finding every LF with
/// memchr instead cost ~250 instructions per request (callgrind).
fn check_line_ends(
    head: &[u8],
    method_start: usize,
    headers: &[HeaderSpan],
) -> Result<(), ParseError> {
    let skipped_ok = head[..method_start].chunks(2).all(|pair| pair == b"\r\n");
    let request_line_end = headers
        .first()
        .map_or(head.len().saturating_sub(2), |h| h.name.start as usize);
    let request_line_ok = head[..request_line_end].ends_with(b"\r\n");
    let headers_ok = headers.iter().all(|h| {
        let rest = &head[h.value.end as usize..];
        let ows = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        rest[ows..].starts_with(b"\r\n")
    });
    if skipped_ok && request_line_ok && headers_ok && head.ends_with(b"\r\n") {
        Ok(())
    } else {
        Err(ParseError::Malformed("bare lf line ending"))
    }
}

/// Limits that can be enforced before a head is complete.
fn check_partial(buf: &[u8], limits: &Limits) -> Result<(), ParseError> {
    let line_end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
    // Method, two spaces and "HTTP/1.1" take at most a few dozen bytes besides the target.
    const REQUEST_LINE_OVERHEAD: usize = 32;
    if line_end > limits.max_target_bytes + REQUEST_LINE_OVERHEAD {
        return Err(ParseError::TargetTooLong);
    }
    if buf.len() > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge);
    }
    Ok(())
}

/// httparse reports any version other than 1.0/1.1 as one error; tell a well-formed
/// `HTTP/x.y` (505) from garbage (400).
fn version_error(buf: &[u8]) -> ParseError {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(line);
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            ParseError::UnsupportedVersion
        }
        _ => ParseError::Malformed("invalid http version"),
    }
}

fn syntax_message(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid request line",
        httparse::Error::Token => "invalid method",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid http version",
    }
}
