//! The HTTP/1.1 codec: bytes in, values out, and values back to bytes.
//!
//! Nothing here does I/O, awaits, or knows about routing. The connection driver in
//! `server` feeds it bytes and writes what it encodes; that split is what lets every rule
//! below be tested with byte literals.

pub(crate) mod date;
pub(crate) mod encode;
pub(crate) mod fields;
pub(crate) mod framing;
pub(crate) mod head;

#[cfg(test)]
mod tests;

use http::StatusCode;

// The request side of the codec is public: a pure function from bytes to a validated head
// and body, for fuzzing and second-opinion tests. The server's arena-backed decoder and the
// response encoder are its own business (benchmarks reach them through the `internals`
// feature).
pub(crate) use encode::{ResponseFraming, ResponseHead};
pub use framing::{BodyDecoder, Progress};
pub use head::{decode_head, BodyFraming, Head, Persistence, Version};
pub(crate) use head::{decode_head_into, HeadArena};

/// Why a request could not be decoded. Every variant is final for the connection: the server
/// answers with [`status`](ParseError::status) and closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Syntax or framing the server will not guess about (400).
    Malformed(&'static str),
    /// The request target is longer than `max_target_bytes` (414).
    TargetTooLong,
    /// The head or the trailers are larger than allowed (431).
    HeadTooLarge,
    /// More header fields than `max_headers` (431).
    TooManyHeaders,
    /// The body is larger than `max_body_bytes` (413).
    BodyTooLarge,
    /// A well-formed version other than HTTP/1.0 or HTTP/1.1 (505).
    UnsupportedVersion,
    /// An `Expect` other than `100-continue` (417).
    UnsupportedExpectation,
}

impl ParseError {
    /// The status to answer with.
    pub fn status(self) -> StatusCode {
        match self {
            ParseError::Malformed(_) => StatusCode::BAD_REQUEST,
            ParseError::TargetTooLong => StatusCode::URI_TOO_LONG,
            ParseError::HeadTooLarge | ParseError::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            ParseError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ParseError::UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ParseError::UnsupportedExpectation => StatusCode::EXPECTATION_FAILED,
        }
    }

    /// A short lowercase explanation, sent as the error response body.
    pub fn message(self) -> &'static str {
        match self {
            ParseError::Malformed(why) => why,
            ParseError::TargetTooLong => "request target too long",
            ParseError::HeadTooLarge => "request header fields too large",
            ParseError::TooManyHeaders => "too many header fields",
            ParseError::BodyTooLarge => "request body too large",
            ParseError::UnsupportedVersion => "http version not supported",
            ParseError::UnsupportedExpectation => "unsupported expectation",
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ParseError {}
