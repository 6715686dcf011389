//! Codec tests: byte literals in, values or errors out.

use http::{HeaderMap, Method, StatusCode};
use proptest::prelude::*;

use super::encode::{encode_head, ResponseFraming, ResponseHead};
use super::*;
use crate::config::Limits;

fn limits() -> Limits {
    Limits::default()
}

fn decode(bytes: &[u8]) -> Result<Option<(Head, usize)>, ParseError> {
    decode_head(bytes, &limits())
}

fn head(bytes: &[u8]) -> Head {
    match decode(bytes) {
        Ok(Some((head, len))) => {
            assert_eq!(len, bytes.len(), "whole input is the head");
            head
        }
        other => panic!("expected a complete head, got {other:?}"),
    }
}

fn status_of(bytes: &[u8]) -> StatusCode {
    match decode(bytes) {
        Err(e) => e.status(),
        Ok(other) => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

#[test]
fn parses_a_simple_request() {
    let h = head(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    assert_eq!(h.method(), Method::GET);
    assert_eq!(h.version(), Version::Http11);
    assert_eq!(h.path(), "/a/b");
    assert_eq!(h.query(), Some("x=1&y=2"));
    assert_eq!(h.authority(), Some("example.com"));
    assert_eq!(h.header("accept"), Some(&b"*/*"[..]));
    assert_eq!(h.framing(), BodyFraming::Empty);
    assert_eq!(h.persistence(), Persistence::KeepAlive);
}

#[test]
fn incomplete_head_needs_more() {
    assert!(matches!(decode(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None)));
    assert!(matches!(decode(b"GE"), Ok(None)));
    assert!(matches!(decode(b""), Ok(None)));
}

#[test]
fn keep_alive_follows_rfc_9112() {
    assert_eq!(
        head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").persistence(),
        Persistence::Close
    );
    assert_eq!(
        head(b"GET / HTTP/1.0\r\n\r\n").persistence(),
        Persistence::Close
    );
    assert_eq!(
        head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").persistence(),
        Persistence::KeepAlive
    );
    assert_eq!(
        head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n").persistence(),
        Persistence::Close
    );
}

#[test]
fn malformed_syntax_is_400() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", // space before colon
        b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded\r\n\r\n", // obs-fold
        b"GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", // bare CR
        b"GET / HTTP/1.1\nHost: a\n\n",        // bare LF line ends
        b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", // one bare LF
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", // control byte
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", // raw non-ASCII target
        b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",  // bad method token
        b"GET / HTTP/1.x\r\nHost: a\r\n\r\n",  // bad version syntax
        b"GET / HTTX/1.1\r\nHost: a\r\n\r\n",
        b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", // fragment
        b"GET a HTTP/1.1\r\nHost: a\r\n\r\n",       // not a target form
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",       // asterisk outside OPTIONS
    ];
    for case in cases {
        assert_eq!(
            status_of(case),
            StatusCode::BAD_REQUEST,
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn empty_values_trailing_whitespace_and_leading_empty_lines_are_fine() {
    let h =
        head(b"\r\nGET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Space: \r\nX-Trail: v \t\r\n\r\n");
    assert_eq!(h.header("x-empty"), Some(&b""[..]));
    assert_eq!(h.header("x-space"), Some(&b""[..]));
    assert_eq!(h.header("x-trail").map(|v| v.trim_ascii()), Some(&b"v"[..]));
    let h = head(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h.header_count(), 0);
}

#[test]
fn unsupported_versions_are_505() {
    assert_eq!(
        status_of(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
        StatusCode::HTTP_VERSION_NOT_SUPPORTED
    );
    assert_eq!(
        status_of(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
        StatusCode::HTTP_VERSION_NOT_SUPPORTED
    );
}

#[test]
fn framing_conflicts_are_400() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for case in cases {
        assert_eq!(
            status_of(case),
            StatusCode::BAD_REQUEST,
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn identical_content_lengths_are_one() {
    let h = head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(h.framing(), BodyFraming::Length(5));
    let h = head(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert_eq!(h.framing(), BodyFraming::Chunked);
}

#[test]
fn host_rules() {
    assert_eq!(
        status_of(b"GET / HTTP/1.1\r\n\r\n"),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n"),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(head(b"GET / HTTP/1.0\r\n\r\n").authority(), None);
    assert_eq!(
        head(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").authority(),
        Some("[::1]:8080")
    );
    assert_eq!(
        head(b"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n").authority(),
        Some("10.0.0.1")
    );
}

#[test]
fn absolute_form_takes_authority_from_target() {
    let h = head(b"GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(h.authority(), Some("example.com:8080"));
    assert_eq!(h.path(), "/p");
    assert_eq!(h.query(), Some("q=1"));
    let h = head(b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(h.path(), "/");
    assert_eq!(
        status_of(b"GET http://u@evil/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        StatusCode::BAD_REQUEST
    );
    let h = head(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.path(), "*");
}

#[test]
fn size_limits_have_their_own_statuses() {
    let small = Limits {
        max_target_bytes: 32,
        max_head_bytes: 256,
        max_headers: 4,
        max_body_bytes: 100,
        ..Limits::default()
    };
    let cases = [
        (
            format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(40)),
            ParseError::TargetTooLong,
        ),
        // Known before the head is complete.
        (
            format!("GET /{}", "a".repeat(100)),
            ParseError::TargetTooLong,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n".to_owned(),
            ParseError::TooManyHeaders,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
                "v".repeat(300)
            ),
            ParseError::HeadTooLarge,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(300)),
            ParseError::HeadTooLarge,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n".to_owned(),
            ParseError::BodyTooLarge,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"
                .to_owned(),
            ParseError::BodyTooLarge,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            decode_head(input.as_bytes(), &small).map(|_| ()),
            Err(expected),
            "{input:?}"
        );
    }
}

#[test]
fn expectations() {
    let h =
        head(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    assert!(h.expects_continue());
    // HTTP/1.0 clients do not get 100 Continue.
    let h = head(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert!(!h.expects_continue());
    assert_eq!(
        status_of(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n"),
        StatusCode::EXPECTATION_FAILED
    );
}

#[test]
fn upgrade_needs_the_connection_token() {
    let h = head(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(h.upgrade(), Some("websocket"));
    let h = head(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(h.upgrade(), None);
}

fn decode_body(
    framing: BodyFraming,
    input: &[u8],
    limits: &Limits,
) -> Result<(Vec<u8>, usize), ParseError> {
    let mut decoder = BodyDecoder::new(framing, limits).expect("a body");
    let mut out = Vec::new();
    let p = decoder.decode(input, &mut out)?;
    assert!(p.done, "body incomplete");
    Ok((out, p.consumed))
}

#[test]
fn chunked_bodies_decode() {
    let input = b"5\r\nhello\r\n6;name=value;flag\r\n world\r\n0\r\nTrailer-A: 1\r\n\r\nNEXT";
    let (body, consumed) = decode_body(BodyFraming::Chunked, input, &limits()).expect("valid");
    assert_eq!(body, b"hello world");
    assert_eq!(&input[consumed..], b"NEXT");
    let (body, _) = decode_body(
        BodyFraming::Chunked,
        b"A ; ext\r\n0123456789\r\n000\r\n\r\n",
        &limits(),
    )
    .expect("valid");
    assert_eq!(body, b"0123456789");
}

#[test]
fn chunked_framing_is_strict() {
    let cases: &[&[u8]] = &[
        b"\r\nhello\r\n0\r\n\r\n",       // empty size line
        b"5\nhello\r\n0\r\n\r\n",        // bare LF after size
        b"5 \r\nhello\r\n0\r\n\r\n",     // whitespace without extension
        b"5;a\nb\r\nhello\r\n0\r\n\r\n", // LF inside extension
        b"5\r\nhelloX\r\n0\r\n\r\n",     // data longer than size
        b"5\r\nhello\n0\r\n\r\n",        // bare LF after data
        b"-5\r\nhello\r\n0\r\n\r\n",     // sign
        b"0x5\r\nhello\r\n0\r\n\r\n",    // prefix
        b"11111111111111111\r\n",        // 17 hex digits
        b"0\r\nbad trailer\r\n\r\n",     // trailer without colon
        b"0\r\n: empty-name\r\n\r\n",    // trailer without name
        b"0\r\n\rX",                     // bad final line
    ];
    for case in cases {
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked, &limits()).expect("a body");
        let result = decoder.decode(case, &mut Vec::new());
        assert!(
            matches!(result, Err(ParseError::Malformed(_))),
            "{:?} gave {result:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn chunked_limits() {
    let small = Limits {
        max_body_bytes: 8,
        max_chunk_extension_bytes: 8,
        max_trailer_bytes: 16,
        ..Limits::default()
    };
    let too_big = b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    assert_eq!(
        decode_body(BodyFraming::Chunked, too_big, &small).map(|_| ()),
        Err(ParseError::BodyTooLarge)
    );
    let long_ext = b"1;aaaaaaaaaaaa\r\nx\r\n0\r\n\r\n";
    assert!(matches!(
        decode_body(BodyFraming::Chunked, long_ext, &small),
        Err(ParseError::Malformed(_))
    ));
    let long_trailer = b"0\r\nX-Long: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    assert_eq!(
        decode_body(BodyFraming::Chunked, long_trailer, &small).map(|_| ()),
        Err(ParseError::HeadTooLarge)
    );
}

#[test]
fn length_bodies_stop_at_their_length() {
    let (body, consumed) =
        decode_body(BodyFraming::Length(3), b"abcGET", &limits()).expect("valid");
    assert_eq!(body, b"abc");
    assert_eq!(consumed, 3);
}

fn encoded(
    status: StatusCode,
    framing: ResponseFraming,
    persistence: Persistence,
    version: Version,
) -> String {
    let mut out = Vec::new();
    let headers = HeaderMap::new();
    let head = ResponseHead {
        status,
        reason: None,
        content_type: None,
        headers: Some(&headers),
        framing,
        persistence,
        version,
    };
    encode_head(&mut out, &head, b"server: t\r\n");
    String::from_utf8(out).expect("ascii")
}

#[test]
fn response_framing_rules() {
    assert_eq!(
        ResponseFraming::choose(StatusCode::NO_CONTENT, Version::Http11, Some(5)),
        ResponseFraming::NoBody
    );
    assert_eq!(
        ResponseFraming::choose(StatusCode::NOT_MODIFIED, Version::Http11, Some(5)),
        ResponseFraming::NoBody
    );
    assert_eq!(
        ResponseFraming::choose(StatusCode::CONTINUE, Version::Http11, None),
        ResponseFraming::NoBody
    );
    assert_eq!(
        ResponseFraming::choose(StatusCode::OK, Version::Http11, None),
        ResponseFraming::Chunked
    );
    assert_eq!(
        ResponseFraming::choose(StatusCode::OK, Version::Http10, None),
        ResponseFraming::CloseDelimited
    );
    assert_eq!(
        encoded(
            StatusCode::OK,
            ResponseFraming::Length(2),
            Persistence::KeepAlive,
            Version::Http11
        ),
        "HTTP/1.1 200 OK\r\nserver: t\r\ncontent-length: 2\r\n\r\n"
    );
    assert_eq!(
        encoded(
            StatusCode::IM_A_TEAPOT,
            ResponseFraming::NoBody,
            Persistence::Close,
            Version::Http11
        ),
        "HTTP/1.1 418 I'm a teapot\r\nserver: t\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(
        encoded(StatusCode::OK, ResponseFraming::Chunked, Persistence::KeepAlive, Version::Http10),
        "HTTP/1.1 200 OK\r\nserver: t\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn chunk_headers_are_hex() {
    let mut out = Vec::new();
    encode::encode_chunk_header(&mut out, 0x1a2);
    assert_eq!(out, b"1a2\r\n");
}

/// Decodes a stream of pipelined requests fed in the given pieces, the way the connection
/// driver does: heads from the front of a buffer, then bodies.
fn decode_stream(pieces: &[&[u8]]) -> Result<Vec<(String, Vec<u8>)>, ParseError> {
    let limits = limits();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut body: Option<(String, BodyDecoder, Vec<u8>)> = None;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            if let Some((_, decoder, data)) = &mut body {
                let p = decoder.decode(&buf, data)?;
                buf.drain(..p.consumed);
                if !p.done {
                    break;
                }
                let (target, _, data) = body.take().expect("present");
                out.push((target, data));
                continue;
            }
            match decode_head(&buf, &limits)? {
                None => break,
                Some((head, len)) => {
                    buf.drain(..len);
                    let target = head.target().to_owned();
                    match BodyDecoder::new(head.framing(), &limits) {
                        None => out.push((target, Vec::new())),
                        Some(decoder) => body = Some((target, decoder, Vec::new())),
                    }
                }
            }
        }
    }
    Ok(out)
}

const PIPELINE: &[u8] = b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n\
POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n\
GET /four?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";

fn split_at_points(input: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut last = 0;
    for cut in cuts {
        pieces.push(input[last..cut].to_vec());
        last = cut;
    }
    pieces.push(input[last..].to_vec());
    pieces
}

proptest! {
    #[test]
    fn splitting_valid_input_never_changes_the_requests(points in proptest::collection::vec(0usize..1000, 0..12)) {
        let whole = decode_stream(&[PIPELINE]).expect("valid pipeline");
        prop_assert_eq!(whole.len(), 4);
        let pieces = split_at_points(PIPELINE, &points);
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let split = decode_stream(&refs).expect("valid when split");
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn splitting_invalid_input_never_makes_it_valid(
        points in proptest::collection::vec(0usize..1000, 0..12),
        which in 0usize..4,
    ) {
        let invalid: [&[u8]; 4] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
        ];
        let input = invalid[which];
        prop_assert!(decode_stream(&[input]).is_err());
        let pieces = split_at_points(input, &points);
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        prop_assert!(decode_stream(&refs).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes);
        let mut d = BodyDecoder::new(BodyFraming::Chunked, &limits()).expect("a body");
        let _ = d.decode(&bytes, &mut Vec::new());
    }
}
