//! Uploads: `multipart/form-data` parsed as it arrives, and request bodies read as streams.
//!
//! ## Streaming a body (Tornado's `stream_request_body`)
//!
//! A handler that wants a large body piece by piece reads [`RequestBody::chunk`] through
//! [`Request::body_mut`] instead of [`Request::bytes`]. Nothing is buffered ahead of it: the
//! connection driver reads from the socket only while a `chunk()` call is waiting, at most
//! one read buffer (16 KiB) at a time, and hands over what it decoded (the first piece may
//! be larger: whatever arrived together with the request head). While the handler is
//! busy elsewhere (writing the previous chunk to disk, sleeping, waiting on a database),
//! no read is issued, the kernel's receive buffer fills, TCP's window closes, and the
//! client's sends block: the client is slowed to the handler's pace and the server holds
//! one read buffer per connection, however large the body. `Limits::max_body_bytes` still
//! bounds the whole body (413), and `Limits::body_read_timeout` bounds only the silence of
//! a client while a `chunk()` waits, not the handler's own pauses.
//!
//! ```
//! use squall::{Error, Request};
//!
//! async fn upload(mut req: Request) -> Result<String, Error> {
//!     let mut total = 0usize;
//!     while let Some(chunk) = req.body_mut().chunk().await? {
//!         total += chunk.len(); // or write it somewhere, awaiting as long as that takes
//!     }
//!     Ok(format!("{total} bytes"))
//! }
//! ```
//!
//! ## Multipart forms
//!
//! [`Multipart`] takes the request's body and yields its parts one at a time; each part's
//! content streams through [`Part::chunk`] the same way, or is collected by
//! [`Part::bytes`] / [`Part::text`] within the part's limit. [`MultipartLimits`] bound the
//! number of parts, the size of each part's headers, of each field, of each file and of the
//! whole body; going over one answers 413 naming it. A malformed body answers 400, a
//! request that is not `multipart/form-data` 415.
//!
//! ```
//! use squall::multipart::{Multipart, MultipartLimits};
//! use squall::{Error, Request};
//!
//! async fn post(mut req: Request) -> Result<String, Error> {
//!     let mut form = Multipart::new(&mut req, MultipartLimits::default())?;
//!     let mut title = String::new();
//!     let mut image_bytes = 0;
//!     while let Some(mut part) = form.next_part().await? {
//!         match (part.name(), part.file_name()) {
//!             (Some("title"), None) => title = part.text().await?,
//!             (Some("image"), Some(_)) => {
//!                 while let Some(chunk) = part.chunk().await? {
//!                     image_bytes += chunk.len();
//!                 }
//!             }
//!             _ => {} // a part left unread is read past, within its limits
//!         }
//!     }
//!     Ok(format!("{title}: {image_bytes} bytes of image"))
//! }
//! ```

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_lite::future::poll_once;
use futures_lite::Stream;
use http::{HeaderMap, StatusCode};

use crate::body::RequestBody;
use crate::error::Error;
use crate::request::Request;

/// Bounds on what one multipart body may make the server hold or read.
///
/// The server's own `Limits::max_body_bytes` applies first; raise both for large uploads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartLimits {
    /// Parts in one body.
    pub max_parts: usize,
    /// One part's header section (plus, for the first part, any preamble before it), in
    /// bytes. A part's headers are the one thing buffered whole before it is handed out.
    pub max_part_header_bytes: usize,
    /// Content of one part without a file name (a form field), in bytes.
    pub max_field_bytes: u64,
    /// Content of one part with a file name (an uploaded file), in bytes.
    pub max_file_bytes: u64,
    /// The whole multipart body, in bytes.
    pub max_total_bytes: u64,
}

impl Default for MultipartLimits {
    fn default() -> Self {
        MultipartLimits {
            max_parts: 100,
            max_part_header_bytes: 8 * 1024,
            max_field_bytes: 64 * 1024,
            max_file_bytes: 16 * 1024 * 1024,
            max_total_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A `multipart/form-data` body being read part by part. See the [module docs](self).
pub struct Multipart {
    parser: multer::Multipart<'static>,
    feeder: Feeder,
    current: Option<Current>,
    limits: MultipartLimits,
    parts: usize,
    /// The boundary delimiter line's length, which the header-size check allows for.
    delimiter_len: u64,
    /// The first error, repeated to every later call: the body's position is lost.
    failed: Option<(StatusCode, Cow<'static, str>)>,
}

/// The part most recently handed out.
struct Current {
    field: multer::Field<'static>,
    is_file: bool,
    read: u64,
    done: bool,
}

impl Multipart {
    /// Takes `req`'s body to read it as `multipart/form-data` (afterwards the request's own
    /// body is empty; its head, cookies and extensions stay usable). Another content type →
    /// 415; a missing or invalid boundary → 400.
    pub fn new(req: &mut Request, limits: MultipartLimits) -> Result<Multipart, Error> {
        const EXPECTED: &str = "multipart/form-data";
        if req.content_type().as_deref() != Some(EXPECTED) {
            return Err(Error::unsupported_media_type(EXPECTED));
        }
        let content_type = req.header("content-type").unwrap_or_default();
        let boundary = multer::parse_boundary(content_type)
            .map_err(|_| Error::bad_request("multipart/form-data without a boundary parameter"))?;
        if !(1..=70).contains(&boundary.len()) {
            return Err(Error::bad_request(
                "multipart boundary must be 1 to 70 characters",
            ));
        }
        let body = std::mem::replace(req.body_mut(), RequestBody::empty());
        let slot = Arc::new(Mutex::new(Slot::default()));
        let delimiter_len = (boundary.len() + "--\r\n".len()) as u64;
        Ok(Multipart {
            parser: multer::Multipart::new(
                SlotStream {
                    slot: Arc::clone(&slot),
                },
                boundary,
            ),
            feeder: Feeder {
                body,
                slot,
                total: 0,
                max_total: limits.max_total_bytes,
                ended: false,
            },
            current: None,
            limits,
            parts: 0,
            delimiter_len,
            failed: None,
        })
    }

    /// The next part, or `None` after the last. Whatever the previous part's content was
    /// not read is read past first.
    pub async fn next_part(&mut self) -> Result<Option<Part<'_>>, Error> {
        self.check()?;
        while self.current.as_ref().is_some_and(|c| !c.done) {
            self.next_chunk().await?;
        }
        // multer hands out the next field only once the previous one is dropped.
        self.current = None;
        let fed_before = self.feeder.total;
        let field = loop {
            match poll_once(self.parser.next_field()).await {
                Some(Ok(Some(field))) => break field,
                Some(Ok(None)) => return Ok(None),
                Some(Err(e)) => return Err(self.fail(malformed(e))),
                None => {}
            }
            // Everything fed since the previous part ended, bar its delimiter line, is still
            // in the parser's buffer looking for the end of these headers: a lower bound on
            // their size, so a client cannot make the server buffer more than the limit and
            // one read.
            let buffered = (self.feeder.total - fed_before).saturating_sub(self.delimiter_len);
            if buffered > self.limits.max_part_header_bytes as u64 {
                return Err(self.fail(self.header_too_large()));
            }
            if let Err(e) = self.feeder.feed().await {
                return Err(self.fail(e));
            }
        };
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            let message = format!(
                "multipart body has more than max_parts ({}) parts",
                self.limits.max_parts
            );
            return Err(self.fail(Error::new(StatusCode::PAYLOAD_TOO_LARGE, message)));
        }
        if header_size(field.headers()) > self.limits.max_part_header_bytes {
            return Err(self.fail(self.header_too_large()));
        }
        self.current = Some(Current {
            is_file: field.file_name().is_some(),
            field,
            read: 0,
            done: false,
        });
        Ok(Some(Part { multipart: self }))
    }

    /// The current part's next piece of content, or `None` at its end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.check()?;
        let Multipart {
            feeder,
            current,
            limits,
            ..
        } = self;
        let Some(current) = current.as_mut().filter(|c| !c.done) else {
            return Ok(None);
        };
        let outcome = loop {
            match poll_once(current.field.chunk()).await {
                Some(Ok(Some(chunk))) if chunk.is_empty() => {}
                Some(Ok(Some(chunk))) => {
                    current.read += chunk.len() as u64;
                    let (limit, which) = if current.is_file {
                        (limits.max_file_bytes, "max_file_bytes")
                    } else {
                        (limits.max_field_bytes, "max_field_bytes")
                    };
                    if current.read > limit {
                        let name = current.field.name().unwrap_or("");
                        let message = format!(
                            "multipart part {name:?} is larger than {which} ({limit} bytes)"
                        );
                        break Err(Error::new(StatusCode::PAYLOAD_TOO_LARGE, message));
                    }
                    break Ok(Some(chunk));
                }
                Some(Ok(None)) => {
                    current.done = true;
                    break Ok(None);
                }
                Some(Err(e)) => break Err(malformed(e)),
                None => {
                    if let Err(e) = feeder.feed().await {
                        break Err(e);
                    }
                }
            }
        };
        outcome.map_err(|e| self.fail(e))
    }

    fn check(&self) -> Result<(), Error> {
        match &self.failed {
            None => Ok(()),
            Some((status, message)) => Err(Error::new(*status, message.clone())),
        }
    }

    fn fail(&mut self, error: Error) -> Error {
        self.failed = Some((error.status(), Cow::Owned(error.message().to_owned())));
        error
    }

    fn header_too_large(&self) -> Error {
        Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "multipart part headers are larger than max_part_header_bytes ({} bytes)",
                self.limits.max_part_header_bytes
            ),
        )
    }
}

impl std::fmt::Debug for Multipart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multipart")
            .field("parts", &self.parts)
            .field("read", &self.feeder.total)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One part of a [`Multipart`] body: its headers, and its content to read.
pub struct Part<'m> {
    multipart: &'m mut Multipart,
}

impl Part<'_> {
    fn field(&self) -> &multer::Field<'static> {
        &self
            .multipart
            .current
            .as_ref()
            .expect("a Part exists only while its field is current")
            .field
    }

    /// The form field's name (`Content-Disposition: form-data; name="…"`).
    pub fn name(&self) -> Option<&str> {
        self.field().name()
    }

    /// The uploaded file's name as the client gave it, if the part is a file. Untrusted:
    /// never use it as a path.
    pub fn file_name(&self) -> Option<&str> {
        self.field().file_name()
    }

    /// Whether the part is a file (it has a file name), which selects its size limit.
    pub fn is_file(&self) -> bool {
        self.file_name().is_some()
    }

    /// The part's `Content-Type`, if it has one that is visible ASCII.
    pub fn content_type(&self) -> Option<&str> {
        self.headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// Every header of the part.
    pub fn headers(&self) -> &HeaderMap {
        self.field().headers()
    }

    /// The next piece of the part's content, or `None` at its end. Over the part's limit
    /// ([`MultipartLimits::max_field_bytes`] or [`max_file_bytes`]) → 413.
    ///
    /// [`max_file_bytes`]: MultipartLimits::max_file_bytes
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.multipart.next_chunk().await
    }

    /// The rest of the content, collected (bounded by the part's limit).
    pub async fn bytes(&mut self) -> Result<Bytes, Error> {
        let mut all = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }

    /// The rest of the content as UTF-8 text; invalid UTF-8 → 400.
    pub async fn text(&mut self) -> Result<String, Error> {
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            let name = self.name().unwrap_or("");
            Error::bad_request(format!("multipart part {name:?} is not valid utf-8"))
        })
    }
}

impl std::fmt::Debug for Part<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("name", &self.name())
            .field("file_name", &self.file_name())
            .field("content_type", &self.content_type())
            .finish()
    }
}

/// Moves body chunks into the parser one at a time, when it asks for more.
struct Feeder {
    body: RequestBody,
    slot: Arc<Mutex<Slot>>,
    total: u64,
    max_total: u64,
    ended: bool,
}

impl Feeder {
    /// Reads the next chunk of the body into the slot, or marks the body's end. Errors
    /// reading the body keep their status (413 over `max_body_bytes`, 408, 400).
    async fn feed(&mut self) -> Result<(), Error> {
        if self.ended {
            // The parser asked for more after the end: it could not finish the body.
            return Err(Error::bad_request(
                "malformed multipart body: it ends before its closing boundary",
            ));
        }
        loop {
            match self.body.chunk().await? {
                Some(chunk) if chunk.is_empty() => {}
                Some(chunk) => {
                    self.total += chunk.len() as u64;
                    if self.total > self.max_total {
                        return Err(Error::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "multipart body is larger than max_total_bytes ({} bytes)",
                                self.max_total
                            ),
                        ));
                    }
                    lock(&self.slot).chunk = Some(chunk);
                    return Ok(());
                }
                None => {
                    self.ended = true;
                    lock(&self.slot).ended = true;
                    return Ok(());
                }
            }
        }
    }
}

/// The hand-over point between [`Feeder`] and the parser.
///
/// multer reads from a `Send` stream, and a request body is not `Send` (it is read on its
/// core through `Rc`s), so the parser reads this slot and [`Multipart`] fills it whenever
/// the parser reports it needs more: the parser never runs ahead of the handler. The
/// mutex is never contended (one task on one core uses both ends); multer itself keeps
/// its state behind one too.
#[derive(Default)]
struct Slot {
    chunk: Option<Bytes>,
    ended: bool,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A panic while holding this lock can only come from a bug in `Bytes`; the data is
    // still consistent.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct SlotStream {
    slot: Arc<Mutex<Slot>>,
}

impl Stream for SlotStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut slot = lock(&self.slot);
        match slot.chunk.take() {
            Some(chunk) => Poll::Ready(Some(Ok(chunk))),
            None if slot.ended => Poll::Ready(None),
            // No waker is kept: `Multipart` polls the parser once, sees it pending, and
            // feeds the slot itself before polling again.
            None => Poll::Pending,
        }
    }
}

/// A part's header section size as received, give or take optional whitespace.
fn header_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + ": \r\n".len() + value.len())
        .sum::<usize>()
        + "\r\n".len()
}

fn malformed(error: multer::Error) -> Error {
    match error {
        multer::Error::LockFailure => Error::internal("multipart parser state was shared"),
        other => Error::bad_request(format!("malformed multipart body: {other}")),
    }
}
