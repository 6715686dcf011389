//! The connection driver: the only code that reads requests from and writes responses to a
//! socket.
//!
//! One loop: decode every complete request in the input buffer, answer each in order into one
//! output buffer, write it once, then wait for more input. Framing errors answer with their
//! status and close; nothing behind them reaches a handler.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use futures_lite::StreamExt;
use http::StatusCode;

use super::core::{ConnRegistration, Core};
use super::io::{ConnIo, IoStop, Wait};
use super::transport::Transport;
use crate::body::{Body, BodySource, ChunkStream, RequestBody};
use crate::dispatch::Responding;
use crate::error::Error;
use crate::future::LocalFuture;
use crate::http::encode::{encode_chunk_header, encode_head, CHUNK_END, LAST_CHUNK};
use crate::http::{
    decode_head_into, BodyDecoder, Head, ParseError, Persistence, ResponseFraming, ResponseHead,
    Version,
};
use crate::request::{Peer, Request};
use crate::response::{Response, TEXT_PLAIN};
use crate::upgrade::Upgraded;

/// What to do after one request is answered.
enum AfterResponse {
    /// Keep serving this connection.
    Continue,
    /// Write what is buffered, then close.
    Close,
    /// The head is encoded; the body streams from these chunks, then the connection persists
    /// or closes.
    Stream(ChunkStream, ResponseFraming, Persistence),
    /// The 101 response is encoded; after it is written the socket goes to this callback.
    Upgrade(crate::response::OnUpgrade),
}

/// A request's body, and the reader that pulls the rest of it from the connection when it
/// was not all received with the head.
type PreparedBody<T> = (RequestBody, Option<Rc<BodyReader<T>>>);

/// What answering one request needs to remember while its handler runs.
struct Exchange<T> {
    version: Version,
    is_head: bool,
    persistence: Persistence,
    reader: Option<Rc<BodyReader<T>>>,
}

/// Serves one connection until it closes.
///
/// Not an `async fn`: the setup runs before the future exists, so the future does not also
/// carry the stream it was given (an `async fn` keeps its arguments in every state).
pub(crate) fn serve<T: Transport>(
    core: Rc<Core>,
    stream: T,
    peer: Peer,
) -> impl std::future::Future<Output = ()> {
    let registration = core.register();
    serve_registered(core, registration, stream, peer)
}

/// Serves a connection already counted among the core's (a TLS connection is, from before
/// its handshake).
pub(crate) fn serve_registered<T: Transport>(
    core: Rc<Core>,
    registration: ConnRegistration,
    stream: T,
    peer: Peer,
) -> impl std::future::Future<Output = ()> {
    let io = Rc::new(ConnIo::new(core, registration, stream));
    let driver = Driver {
        io,
        peer,
        output: Vec::new(),
    };
    driver.run()
}

struct Driver<T> {
    io: Rc<ConnIo<T>>,
    peer: Peer,
    output: Vec<u8>,
}

impl<T: Transport> Driver<T> {
    async fn run(mut self) {
        let core = Rc::clone(&self.io.core);
        let limits = &core.config.limits;
        let max_input = limits.max_head_bytes + 1;
        let mut head_started: Option<Instant> = None;
        loop {
            // Answer every complete request already received.
            self.ensure_output();
            let next = loop {
                // Decoding and starting the request are synchronous, and the head is consumed
                // before any await: the state held across awaits is what every connection,
                // idle or not, carries (see `an_idle_connection_future_stays_small`).
                let started = match self.decode_and_begin(limits) {
                    Ok(Some(started)) => started,
                    Ok(None) => break AfterResponse::Continue,
                    Err(e) => {
                        self.encode_error(e.status(), e.message(), Version::Http11);
                        break AfterResponse::Close;
                    }
                };
                head_started = None;
                let (exchange, responding) = started;
                let response = core.dispatcher.finish(responding).await;
                match self.finish(exchange, response) {
                    AfterResponse::Continue => {}
                    AfterResponse::Close => break AfterResponse::Close,
                    AfterResponse::Stream(chunks, framing, after) => {
                        // Rare paths are boxed so that their state does not widen every
                        // connection's future (it is what an idle connection costs).
                        if !Box::pin(self.stream_body(chunks, framing)).await {
                            break AfterResponse::Close;
                        }
                        if after == Persistence::Close {
                            break AfterResponse::Close;
                        }
                    }
                    AfterResponse::Upgrade(on_upgrade) => {
                        return Box::pin(self.hand_over(on_upgrade)).await
                    }
                }
                if self.output.len() >= limits.max_pending_output && self.flush().await.is_err() {
                    return;
                }
            };
            if self.flush().await.is_err() {
                return;
            }
            if let AfterResponse::Close = next {
                break;
            }
            let wait = if self.io.input.borrow().is_empty() {
                self.io.release_input();
                Wait::Idle
            } else {
                Wait::Head(*head_started.get_or_insert_with(|| self.io.core.now()))
            };
            match self.io.read_more(wait, max_input).await {
                Ok(_) => {}
                Err(IoStop::TimedOut) if matches!(wait, Wait::Head(_)) => {
                    self.encode_error(
                        StatusCode::REQUEST_TIMEOUT,
                        "request head timed out",
                        Version::Http11,
                    );
                    let _ = self.flush().await;
                    break;
                }
                Err(_) => return,
            }
        }
        Box::pin(self.io.close_gracefully()).await;
    }

    /// Decodes the next complete head in the input, if any, and starts its handler.
    fn decode_and_begin(
        &mut self,
        limits: &crate::config::Limits,
    ) -> Result<Option<(Exchange<T>, Responding)>, ParseError> {
        let decoded = {
            let mut heads = self.io.core.heads.borrow_mut();
            decode_head_into(self.io.input.borrow().filled(), limits, &mut heads)?
        };
        let Some((head, len)) = decoded else {
            return Ok(None);
        };
        self.io.input.borrow_mut().consume(len);
        let (exchange, request) = self.begin(head)?;
        Ok(Some((exchange, self.io.core.dispatcher.start(request))))
    }

    /// Turns a decoded head into a request, with what the response will need to know.
    fn begin(&self, head: Head) -> Result<(Exchange<T>, Request), ParseError> {
        let core = &self.io.core;
        let (body, reader) = self.prepare_body(&head)?;
        let exchange = Exchange {
            version: head.version(),
            is_head: head.method() == http::Method::HEAD,
            persistence: head.persistence(),
            reader,
        };
        #[allow(unused_mut)]
        let mut request = Request::new(head, body, self.peer, Rc::clone(core.dispatcher.context()));
        #[cfg(feature = "tls")]
        if let Some(session) = self.io.stream().tls_session() {
            request.set_tls(Rc::clone(session));
        }
        Ok((exchange, request))
    }

    /// Encodes the response to one exchange into `output`, and decides what comes next.
    fn finish(&mut self, exchange: Exchange<T>, mut response: Response) -> AfterResponse {
        let Exchange {
            version,
            is_head,
            mut persistence,
            reader,
        } = exchange;
        if let Some(reader) = &reader {
            if !reader.settle_after_response() {
                persistence = Persistence::Close;
            }
        }
        if self.io.core.stopping() {
            persistence = Persistence::Close;
        }
        let status = response.status();

        if status == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(on_upgrade) = response.take_upgrade() {
                return self.accept_upgrade(&response, on_upgrade, version);
            }
        }
        let body = response.take_body();
        let framing = ResponseFraming::choose(status, version, body.len());
        if framing == ResponseFraming::CloseDelimited {
            persistence = Persistence::Close;
        }
        let response_head = ResponseHead {
            status,
            reason: response.reason(),
            content_type: response.content_type(),
            headers: response.extra_headers(),
            framing,
            persistence,
            version,
        };
        self.encode(&response_head);
        let after = match persistence {
            Persistence::KeepAlive => AfterResponse::Continue,
            Persistence::Close => AfterResponse::Close,
        };
        if is_head || framing == ResponseFraming::NoBody {
            return after;
        }
        match body {
            Body::Empty => after,
            Body::Full(bytes) => {
                self.output.extend_from_slice(&bytes);
                after
            }
            Body::Stream { chunks, .. } => AfterResponse::Stream(chunks, framing, persistence),
        }
    }

    /// Uses the body bytes already received; otherwise sets up a reader that pulls the rest
    /// when the handler asks for it.
    fn prepare_body(&self, head: &Head) -> Result<PreparedBody<T>, ParseError> {
        let limits = &self.io.core.config.limits;
        let Some(mut decoder) = BodyDecoder::new(head.framing(), limits) else {
            return Ok((RequestBody::empty(), None));
        };
        let mut decoded = Vec::new();
        let progress = {
            let mut input = self.io.input.borrow_mut();
            let progress = decoder.decode(input.filled(), &mut decoded)?;
            input.consume(progress.consumed);
            progress
        };
        if progress.done {
            return Ok((RequestBody::buffered(Bytes::from(decoded)), None));
        }
        let reader = Rc::new(BodyReader {
            io: Rc::clone(&self.io),
            state: RefCell::new(BodyState {
                decoder,
                pending: (!decoded.is_empty()).then(|| Bytes::from(decoded)),
                continue_owed: head.expects_continue(),
                phase: BodyPhase::Reading,
            }),
        });
        let source: Rc<dyn BodySource> = reader.clone();
        Ok((RequestBody::streaming(source), Some(reader)))
    }

    /// Writes a streamed body as it is produced. Returns false if the connection must close.
    async fn stream_body(&mut self, mut chunks: ChunkStream, framing: ResponseFraming) -> bool {
        if self.flush().await.is_err() {
            return false;
        }
        let chunked = framing == ResponseFraming::Chunked;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    // The status is already sent; closing without the last chunk tells the
                    // client the body is incomplete.
                    tracing::error!(target: "squall::handler", "response stream failed: {e}");
                    return false;
                }
            };
            if chunk.is_empty() {
                continue;
            }
            if chunked {
                encode_chunk_header(&mut self.output, chunk.len());
                if self.flush().await.is_err() || self.io.write_all(&chunk).await.is_err() {
                    return false;
                }
                self.output.extend_from_slice(CHUNK_END);
            } else if self.flush().await.is_err() || self.io.write_all(&chunk).await.is_err() {
                return false;
            }
        }
        if chunked {
            self.output.extend_from_slice(LAST_CHUNK);
        }
        framing != ResponseFraming::CloseDelimited
    }

    /// Encodes the 101 response, or refuses an upgrade that HTTP/1.0 cannot carry.
    fn accept_upgrade(
        &mut self,
        response: &Response,
        on_upgrade: crate::response::OnUpgrade,
        version: Version,
    ) -> AfterResponse {
        if version != Version::Http11 {
            self.encode_error(
                StatusCode::BAD_REQUEST,
                "upgrade requires http/1.1",
                version,
            );
            return AfterResponse::Close;
        }
        let head = ResponseHead {
            status: StatusCode::SWITCHING_PROTOCOLS,
            reason: response.reason(),
            content_type: None,
            headers: response.extra_headers(),
            framing: ResponseFraming::NoBody,
            persistence: Persistence::KeepAlive,
            version,
        };
        self.encode(&head);
        AfterResponse::Upgrade(on_upgrade)
    }

    /// Writes the 101 response and gives the socket, with any bytes already received past
    /// the request head, to the upgrade callback.
    async fn hand_over(mut self, on_upgrade: crate::response::OnUpgrade) {
        if self.flush().await.is_err() {
            return;
        }
        let Ok(io) = Rc::try_unwrap(self.io) else {
            tracing::error!(target: "squall::server", "upgrade abandoned: a request body reader outlived its handler");
            return;
        };
        let read_ahead = io.input.borrow_mut().take_all();
        let (stream, _registration) = io.into_parts();
        let upgraded = Upgraded {
            stream: stream.into_upgraded(),
            read_ahead,
            peer: self.peer.addr(),
        };
        on_upgrade(upgraded).await;
    }

    /// Appends a response head, with the core's cached `Date` line, to the output.
    fn encode(&mut self, head: &ResponseHead<'_>) {
        self.io
            .core
            .with_date_line(|date| encode_head(&mut self.output, head, date));
    }

    /// Appends a plain-text error response that closes the connection.
    fn encode_error(&mut self, status: StatusCode, message: &str, version: Version) {
        let body = format!("{message}\n");
        let headers = http::HeaderMap::new();
        let head = ResponseHead {
            status,
            reason: None,
            content_type: Some(&TEXT_PLAIN),
            headers: Some(&headers),
            framing: ResponseFraming::Length(body.len() as u64),
            persistence: Persistence::Close,
            version,
        };
        self.encode(&head);
        self.output.extend_from_slice(body.as_bytes());
    }

    /// Writes the buffered output and gives the buffer back to the core's pool.
    async fn flush(&mut self) -> Result<(), IoStop> {
        if self.output.is_empty() {
            return Ok(());
        }
        let result = self.io.write_all(&self.output).await;
        let used = std::mem::take(&mut self.output);
        self.io.core.give_write_buffer(used);
        result
    }

    /// Makes sure there is an output buffer to encode into.
    fn ensure_output(&mut self) {
        if self.output.capacity() == 0 {
            self.output = self.io.core.take_write_buffer();
        }
    }
}

/// A request body being read from the connection on the handler's behalf.
struct BodyReader<T> {
    io: Rc<ConnIo<T>>,
    state: RefCell<BodyState>,
}

struct BodyState {
    decoder: BodyDecoder,
    /// Body bytes decoded before the handler ran.
    pending: Option<Bytes>,
    /// `Expect: 100-continue` was asked and not yet answered.
    continue_owed: bool,
    phase: BodyPhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyPhase {
    Reading,
    /// The body was malformed or the connection failed; the connection must close.
    Broken,
    /// The handler has returned; the body belongs to the connection again.
    Detached,
}

impl<T: Transport> BodyReader<T> {
    /// After the handler: finishes the body from bytes already received, so the next request
    /// starts at the right place. Returns false when the connection must close instead (the
    /// body is broken, the client still waits for `100 Continue`, or more is still to come).
    fn settle_after_response(&self) -> bool {
        let mut state = self.state.borrow_mut();
        let phase = std::mem::replace(&mut state.phase, BodyPhase::Detached);
        if phase == BodyPhase::Broken || state.continue_owed {
            return false;
        }
        if state.decoder.is_done() {
            return true;
        }
        let mut discard = Vec::new();
        let mut input = self.io.input.borrow_mut();
        match state.decoder.decode(input.filled(), &mut discard) {
            Ok(progress) => {
                input.consume(progress.consumed);
                progress.done
            }
            Err(_) => false,
        }
    }

    async fn read_chunk(&self) -> Result<Option<Bytes>, Error> {
        {
            let mut state = self.state.borrow_mut();
            match state.phase {
                BodyPhase::Reading => {}
                BodyPhase::Broken => return Err(Error::bad_request("request body is unreadable")),
                BodyPhase::Detached => {
                    return Err(Error::internal("request body read after its response"))
                }
            }
            if let Some(pending) = state.pending.take() {
                return Ok(Some(pending));
            }
            if state.decoder.is_done() {
                return Ok(None);
            }
        }
        if self.state.borrow().continue_owed {
            self.state.borrow_mut().continue_owed = false;
            if let Err(stop) = self.io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await {
                return Err(self.fail(stop));
            }
        }
        loop {
            let mut decoded = Vec::new();
            let progress = {
                let mut state = self.state.borrow_mut();
                let mut input = self.io.input.borrow_mut();
                let progress = state.decoder.decode(input.filled(), &mut decoded);
                if let Ok(p) = &progress {
                    input.consume(p.consumed);
                }
                progress
            };
            match progress {
                Err(e) => {
                    self.state.borrow_mut().phase = BodyPhase::Broken;
                    return Err(Error::new(e.status(), e.message()));
                }
                Ok(_) if !decoded.is_empty() => return Ok(Some(Bytes::from(decoded))),
                Ok(p) if p.done => return Ok(None),
                Ok(_) => {}
            }
            if let Err(stop) = self
                .io
                .read_more(Wait::Body, super::core::READ_BUFFER_SIZE)
                .await
            {
                return Err(self.fail(stop));
            }
        }
    }

    fn fail(&self, stop: IoStop) -> Error {
        self.state.borrow_mut().phase = BodyPhase::Broken;
        match stop {
            IoStop::TimedOut => Error::new(StatusCode::REQUEST_TIMEOUT, "request body timed out"),
            _ => Error::bad_request("connection closed before the request body ended"),
        }
    }
}

impl<T: Transport> BodySource for BodyReader<T> {
    fn next_chunk(&self) -> LocalFuture<'_, Result<Option<Bytes>, Error>> {
        Box::pin(self.read_chunk())
    }
}
