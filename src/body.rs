//! Bodies: what a request carries in and what a response carries out.
//!
//! A request body is read lazily. When the whole body arrived with the head it is already in
//! memory; otherwise reading it pulls from the connection, which is also when
//! `100 Continue` is sent to a client that asked for it.

use std::fmt;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use futures_lite::Stream;

use crate::error::Error;
use crate::future::LocalFuture;

/// A boxed stream of body chunks that stays on its core.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>>>>;

/// Where a request body that was not fully buffered comes from. The connection driver
/// implements it; handlers only see [`RequestBody`].
pub(crate) trait BodySource {
    /// The next piece of the decoded body, or `None` at its end.
    fn next_chunk(&self) -> LocalFuture<'_, Result<Option<Bytes>, Error>>;
}

/// The body of a request.
pub struct RequestBody {
    state: RequestBodyState,
}

enum RequestBodyState {
    Empty,
    Buffered(Bytes),
    Streaming(Rc<dyn BodySource>),
}

impl RequestBody {
    pub(crate) fn empty() -> RequestBody {
        RequestBody {
            state: RequestBodyState::Empty,
        }
    }

    pub(crate) fn buffered(bytes: Bytes) -> RequestBody {
        RequestBody {
            state: RequestBodyState::Buffered(bytes),
        }
    }

    pub(crate) fn streaming(source: Rc<dyn BodySource>) -> RequestBody {
        RequestBody {
            state: RequestBodyState::Streaming(source),
        }
    }

    /// The next chunk of the body, or `None` once it has all been read.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        match &mut self.state {
            RequestBodyState::Empty => Ok(None),
            RequestBodyState::Buffered(_) => {
                let RequestBodyState::Buffered(bytes) =
                    std::mem::replace(&mut self.state, RequestBodyState::Empty)
                else {
                    unreachable!("matched just above")
                };
                Ok(Some(bytes))
            }
            RequestBodyState::Streaming(source) => {
                let chunk = source.next_chunk().await?;
                if chunk.is_none() {
                    self.state = RequestBodyState::Empty;
                }
                Ok(chunk)
            }
        }
    }

    /// The rest of the body, collected. Size is bounded by `Limits::max_body_bytes`.
    pub async fn bytes(&mut self) -> Result<Bytes, Error> {
        let first = match self.chunk().await? {
            None => return Ok(Bytes::new()),
            Some(first) => first,
        };
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        let mut all = Vec::with_capacity(first.len() + second.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(more) = self.chunk().await? {
            all.extend_from_slice(&more);
        }
        Ok(Bytes::from(all))
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            RequestBodyState::Empty => f.write_str("RequestBody::Empty"),
            RequestBodyState::Buffered(b) => write!(f, "RequestBody::Buffered({} bytes)", b.len()),
            RequestBodyState::Streaming(_) => f.write_str("RequestBody::Streaming"),
        }
    }
}

/// The body of a response.
pub enum Body {
    /// No body (`Content-Length: 0` where the status allows a body).
    Empty,
    /// Bytes already in memory.
    Full(Bytes),
    /// Chunks produced as the response is written. With a known length the response carries
    /// `Content-Length`; otherwise it is chunked (HTTP/1.1) or close-delimited (HTTP/1.0).
    Stream {
        /// Total length, when known in advance.
        len: Option<u64>,
        /// The chunks.
        chunks: ChunkStream,
    },
}

impl Body {
    /// A streamed body of unknown length.
    pub fn stream(chunks: impl Stream<Item = Result<Bytes, Error>> + 'static) -> Body {
        Body::Stream {
            len: None,
            chunks: Box::pin(chunks),
        }
    }

    /// A streamed body whose total length is known.
    pub fn sized_stream(
        len: u64,
        chunks: impl Stream<Item = Result<Bytes, Error>> + 'static,
    ) -> Body {
        Body::Stream {
            len: Some(len),
            chunks: Box::pin(chunks),
        }
    }

    /// A streamed body fed through a bounded channel: the handler returns the body at once and
    /// a task it spawns (`glommio::spawn_local`) sends chunks into the [`BodySender`]. A full
    /// channel makes `send` wait until the connection has written earlier chunks, so a slow
    /// client slows the producer rather than growing memory. The body ends when the sender is
    /// dropped.
    pub fn channel(capacity: usize) -> (BodySender, Body) {
        let (tx, rx) = glommio::channels::local_channel::new_bounded(capacity.max(1));
        (BodySender { tx }, Body::stream(rx.into_stream()))
    }

    /// The length, when known without reading the body.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Full(b) => Some(b.len() as u64),
            Body::Stream { len, .. } => *len,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// The sending half of [`Body::channel`].
pub struct BodySender {
    tx: glommio::channels::local_channel::LocalSender<Result<Bytes, Error>>,
}

impl BodySender {
    /// Sends a chunk, waiting while the channel is full. Fails once the response is gone
    /// (the client disconnected).
    pub async fn send(&self, chunk: impl Into<Bytes>) -> Result<(), Error> {
        self.tx
            .send(Ok(chunk.into()))
            .await
            .map_err(|_| Error::internal("response body receiver is gone"))
    }

    /// Ends the body with an error: the connection closes without the final chunk, so the
    /// client sees the body is incomplete.
    pub async fn abort(self, error: Error) {
        let _ = self.tx.send(Err(error)).await;
    }
}

impl fmt::Debug for BodySender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodySender")
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Body::Stream { len, .. } => write!(f, "Body::Stream(len: {len:?})"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::Full(b)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Full(Bytes::from(s))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::Full(Bytes::from(v))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Full(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body::Full(Bytes::from_static(s))
    }
}
