//! Request bodies: a sans-IO decoder for `Content-Length` and a strict chunked decoder.
//!
//! The chunked decoder is written here rather than taken from httparse because
//! `httparse::parse_chunk_size` reads an empty size line as 0 and lets LF through inside chunk
//! extensions — both are ways to make two parsers disagree about where a message ends.
//!
//! Grammar enforced (RFC 9112 7.1):
//! ```text
//! chunk      = 1*HEXDIG [ BWS ";" chunk-ext ] CRLF chunk-data CRLF
//! last-chunk = 1*"0"    [ BWS ";" chunk-ext ] CRLF
//! trailers   = *( field-line CRLF ) CRLF
//! ```
//! Extensions may hold visible characters, spaces and tabs only, and are bounded per line;
//! trailer lines need a token name and a colon and are bounded in total. Trailers are read and
//! discarded.

use super::head::BodyFraming;
use super::ParseError;
use crate::config::Limits;

/// Progress of one [`BodyDecoder::decode`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes used.
    pub consumed: usize,
    /// Whether the body ended within them.
    pub done: bool,
}

/// Decodes one request body from successive slices of input.
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    kind: Kind,
    max_body: u64,
    max_extension: usize,
    max_trailer: usize,
}

#[derive(Clone, Debug)]
enum Kind {
    Length { remaining: u64 },
    Chunked(Chunked),
}

#[derive(Clone, Debug)]
struct Chunked {
    state: State,
    /// Sum of chunk sizes so far, checked against the body limit.
    total: u64,
    size: u64,
    digits: u8,
    extension_bytes: usize,
    trailer_bytes: usize,
    trailer_line_has_colon: bool,
    trailer_line_len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size,
    /// Between the digits and `;` (BWS).
    SizeSpace,
    /// Inside chunk extensions.
    Extension,
    /// Saw CR after the size line; LF must follow.
    SizeLf,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Chunk data ended; CR must follow.
    DataCr,
    /// Saw CR after chunk data; LF must follow.
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    /// Inside a trailer line.
    TrailerLine,
    /// Saw CR ending a trailer line.
    TrailerLf,
    /// Saw CR of the final empty line.
    FinalLf,
    /// The body is complete.
    Done,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`, or `None` when there is no body.
    pub fn new(framing: BodyFraming, limits: &Limits) -> Option<BodyDecoder> {
        let kind = match framing {
            BodyFraming::Empty => return None,
            BodyFraming::Length(n) => Kind::Length { remaining: n },
            BodyFraming::Chunked => Kind::Chunked(Chunked {
                state: State::Size,
                total: 0,
                size: 0,
                digits: 0,
                extension_bytes: 0,
                trailer_bytes: 0,
                trailer_line_has_colon: false,
                trailer_line_len: 0,
            }),
        };
        Some(BodyDecoder {
            kind,
            max_body: limits.max_body_bytes,
            max_extension: limits.max_chunk_extension_bytes,
            max_trailer: limits.max_trailer_bytes,
        })
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        match &self.kind {
            Kind::Length { remaining } => *remaining == 0,
            Kind::Chunked(c) => c.state == State::Done,
        }
    }

    /// Decodes from `input`, appending body bytes to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Progress, ParseError> {
        match &mut self.kind {
            Kind::Length { remaining } => {
                let take = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                out.extend_from_slice(&input[..take]);
                *remaining -= take as u64;
                Ok(Progress {
                    consumed: take,
                    done: *remaining == 0,
                })
            }
            Kind::Chunked(c) => c.decode(
                input,
                out,
                self.max_body,
                self.max_extension,
                self.max_trailer,
            ),
        }
    }
}

impl Chunked {
    fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_body: u64,
        max_extension: usize,
        max_trailer: usize,
    ) -> Result<Progress, ParseError> {
        let bad = |why| Err(ParseError::Malformed(why));
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if let State::Data { remaining } = self.state {
                let take = (input.len() - i).min(usize::try_from(remaining).unwrap_or(usize::MAX));
                out.extend_from_slice(&input[i..i + take]);
                i += take;
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining }
                };
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match self.state {
                State::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if self.digits == 16 {
                            return bad("chunk size too long");
                        }
                        self.digits += 1;
                        self.size = (self.size << 4) | u64::from(hex_value(b));
                        State::Size
                    }
                    _ if self.digits == 0 => return bad("invalid chunk size"),
                    b'\r' => State::SizeLf,
                    b' ' | b'\t' => State::SizeSpace,
                    b';' => self.start_extension(max_extension)?,
                    _ => return bad("invalid chunk size"),
                },
                State::SizeSpace => match b {
                    b' ' | b'\t' => State::SizeSpace,
                    b';' => self.start_extension(max_extension)?,
                    _ => return bad("invalid chunk size line"),
                },
                State::Extension => match b {
                    b'\r' => State::SizeLf,
                    b'\t' | b' '..=b'~' | 0x80..=0xff => {
                        self.extension_bytes += 1;
                        if self.extension_bytes > max_extension {
                            return bad("chunk extension too long");
                        }
                        State::Extension
                    }
                    _ => return bad("invalid byte in chunk extension"),
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return bad("invalid chunk size line ending");
                    }
                    self.end_size_line(max_body)?
                }
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    _ => return bad("missing crlf after chunk data"),
                },
                State::DataLf => match b {
                    b'\n' => State::Size,
                    _ => return bad("missing crlf after chunk data"),
                },
                State::TrailerStart => match b {
                    b'\r' => State::FinalLf,
                    _ => {
                        self.trailer_line_has_colon = false;
                        self.trailer_line_len = 0;
                        self.trailer_byte(b, max_trailer)?;
                        State::TrailerLine
                    }
                },
                State::TrailerLine => match b {
                    b'\r' => {
                        if !self.trailer_line_has_colon {
                            return bad("invalid trailer field");
                        }
                        State::TrailerLf
                    }
                    _ => {
                        self.trailer_byte(b, max_trailer)?;
                        State::TrailerLine
                    }
                },
                State::TrailerLf => match b {
                    b'\n' => State::TrailerStart,
                    _ => return bad("invalid trailer line ending"),
                },
                State::FinalLf => match b {
                    b'\n' => State::Done,
                    _ => return bad("invalid end of chunked body"),
                },
                State::Data { .. } | State::Done => unreachable!("handled above the match"),
            };
        }
        Ok(Progress {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn start_extension(&mut self, max_extension: usize) -> Result<State, ParseError> {
        self.extension_bytes = 1;
        if self.extension_bytes > max_extension {
            return Err(ParseError::Malformed("chunk extension too long"));
        }
        Ok(State::Extension)
    }

    fn end_size_line(&mut self, max_body: u64) -> Result<State, ParseError> {
        let size = std::mem::take(&mut self.size);
        self.digits = 0;
        self.extension_bytes = 0;
        if size == 0 {
            return Ok(State::TrailerStart);
        }
        self.total = self
            .total
            .checked_add(size)
            .filter(|&t| t <= max_body)
            .ok_or(ParseError::BodyTooLarge)?;
        Ok(State::Data { remaining: size })
    }

    fn trailer_byte(&mut self, b: u8, max_trailer: usize) -> Result<(), ParseError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > max_trailer {
            return Err(ParseError::HeadTooLarge);
        }
        let in_name = !self.trailer_line_has_colon;
        self.trailer_line_len += 1;
        let ok = if in_name {
            if b == b':' {
                // A field name must be a non-empty token.
                self.trailer_line_has_colon = self.trailer_line_len > 1;
                self.trailer_line_has_colon
            } else {
                is_tchar(b)
            }
        } else {
            b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
        };
        if ok {
            Ok(())
        } else {
            Err(ParseError::Malformed("invalid trailer field"))
        }
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// RFC 9110 5.6.2 token characters.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}
