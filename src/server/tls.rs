//! TLS over a connection's socket: the handshake, and the [`Transport`] the HTTP/1.1 driver
//! reads decrypted requests from and writes responses through.
//!
//! rustls's unbuffered API, so that this module owns every buffer and takes them from the
//! core's pools only while they hold bytes: an idle TLS connection keeps its session keys
//! and no record buffer (the buffered `ServerConnection` keeps a deframer buffer for life).
//!
//! Writes are encrypted into one outgoing buffer and sent by `poll_flush`, which the driver
//! calls once per batch of responses: pipelined responses leave in one `send`, not one per
//! response.

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_lite::io::{AsyncRead, AsyncWrite};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ServerConfig;

use super::conn;
use super::core::{ConnRegistration, Core};
use super::transport::Transport;
use crate::deadline::within;
use crate::net::Socket;
use crate::request::Peer;
use crate::tls::{take_sni, TlsSession};
use crate::upgrade::UpgradedStream;

/// Encrypted output kept before a write waits for the socket to take some: the driver
/// flushes its batches at `max_pending_output` (64 KiB) anyway.
const OUTGOING_HIGH_WATER: usize = 256 * 1024;

/// Plaintext encrypted per `poll_write` call, so the outgoing buffer grows in steps.
const ENCRYPT_STEP: usize = 64 * 1024;

/// Room for a record's header, tag and padding beyond its payload, per 16 KiB record.
const RECORD_OVERHEAD: usize = 64;

/// A TLS session over a socket.
pub(crate) struct TlsStream {
    socket: Socket,
    session: RefCell<Session>,
    info: Rc<TlsSession>,
}

/// What the handshake ended in, when it did not finish.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// The peer spoke plain HTTP to the TLS port; it was answered with a 400.
    PlainHttp,
    /// The peer closed, or the socket failed.
    Io(io::Error),
    /// TLS refused the peer (an old protocol version, a bad certificate, garbage); the
    /// alert, if any, was sent.
    Tls(rustls::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::PlainHttp => f.write_str("plain HTTP sent to the TLS port"),
            HandshakeError::Io(e) => write!(f, "{e}"),
            HandshakeError::Tls(e) => write!(f, "{e}"),
        }
    }
}

/// The answer to plain HTTP on the TLS port. It goes out in the clear, because the client
/// is not speaking TLS; it carries nothing but this sentence.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
    Content-Type: text/plain; charset=utf-8\r\nContent-Length: 47\r\nConnection: close\r\n\r\n\
    This port speaks HTTPS; plain HTTP was refused\n";

/// Runs the server's side of a handshake over `socket`. The caller bounds it in time.
pub(crate) async fn accept(
    core: Rc<Core>,
    socket: Socket,
    config: Arc<ServerConfig>,
) -> Result<TlsStream, HandshakeError> {
    let conn = UnbufferedServerConnection::new(config).map_err(HandshakeError::Tls)?;
    let mut session = Session::new(core, conn);
    let mut sni = None;
    let mut first_read = true;
    loop {
        let progress = session.advance(Want::Nothing);
        if let Some(name) = take_sni() {
            sni = Some(name);
        }
        match progress {
            // In TLS 1.3 the server may write after its own flight; the handshake (and a
            // client certificate) is done only when the client's Finished has arrived.
            Ok(Progress::Ready) if !session.conn.is_handshaking() => break,
            Ok(Progress::Ready) => {}
            Ok(Progress::Blocked) => {}
            Ok(Progress::Closed) => {
                return Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof.into()))
            }
            Ok(Progress::Read(_) | Progress::Wrote(_)) => {}
            Err(e) => {
                // The alert rustls queued goes out before the socket closes.
                let _ = std::future::poll_fn(|cx| session.flush(cx, &socket)).await;
                return Err(HandshakeError::Tls(e));
            }
        }
        std::future::poll_fn(|cx| session.flush(cx, &socket))
            .await
            .map_err(HandshakeError::Io)?;
        let n = std::future::poll_fn(|cx| session.read_input(cx, &socket))
            .await
            .map_err(HandshakeError::Io)?;
        if n == 0 {
            return Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        if first_read {
            first_read = false;
            if session.input_looks_like_plain_http() {
                let mut written = 0;
                while written < PLAIN_HTTP_ANSWER.len() {
                    let n = std::future::poll_fn(|cx| {
                        socket.poll_write(cx, &PLAIN_HTTP_ANSWER[written..])
                    })
                    .await
                    .map_err(HandshakeError::Io)?;
                    written += n.max(1);
                }
                let _ = socket.shutdown(Shutdown::Write);
                return Err(HandshakeError::PlainHttp);
            }
        }
    }
    // The handshake's last flight (and the session tickets) go out now.
    std::future::poll_fn(|cx| session.flush(cx, &socket))
        .await
        .map_err(HandshakeError::Io)?;
    let info = Rc::new(session.describe(sni));
    session.release_idle_buffers();
    Ok(TlsStream {
        socket,
        session: RefCell::new(session),
        info,
    })
}

impl Transport for TlsStream {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.session.borrow_mut().poll_read(cx, &self.socket, buf)
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.session.borrow_mut().poll_write(cx, &self.socket, buf)
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.session.borrow_mut().flush(cx, &self.socket)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        let mut session = self.session.borrow_mut();
        // close_notify, then whatever of it the socket takes at once: a peer that reads
        // nothing more does not hold the close up.
        session.close_notify_queued = true;
        if session.advance(Want::CloseNotify).is_ok() {
            let mut cx = Context::from_waker(Waker::noop());
            let _ = session.flush(&mut cx, &self.socket);
        }
        session.release_idle_buffers();
        self.socket.shutdown(Shutdown::Write)
    }

    fn into_upgraded(self) -> UpgradedStream {
        UpgradedStream::new(self)
    }

    fn tls_session(&self) -> Option<&Rc<TlsSession>> {
        Some(&self.info)
    }
}

impl Drop for TlsStream {
    /// What was written but not flushed still goes out, with a close_notify, as far as the
    /// socket takes it now: over a plain socket, written bytes are the kernel's to send even
    /// after the close, and an upgraded stream's owner (tungstenite answering a close) may
    /// write its last frame and drop the stream without flushing.
    fn drop(&mut self) {
        let session = self.session.get_mut();
        if !session.close_notify_queued {
            session.close_notify_queued = true;
            let _ = session.advance(Want::CloseNotify);
        }
        let mut cx = Context::from_waker(Waker::noop());
        let _ = session.flush(&mut cx, &self.socket);
        session.release_idle_buffers();
    }
}

// An upgraded connection (a WebSocket over `wss://`) goes on through the same session.
impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Transport::poll_read(&*self, cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Transport::poll_write(&*self, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Transport::poll_flush(&*self, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut session = self.session.borrow_mut();
        if !session.close_notify_queued {
            session.close_notify_queued = true;
            let _ = session.advance(Want::CloseNotify);
        }
        match session.flush(cx, &self.socket) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(_) => {}
        }
        session.release_idle_buffers();
        Poll::Ready(self.socket.shutdown(Shutdown::Write))
    }
}

/// What a call into rustls is for.
enum Want<'a> {
    /// Only to move the handshake on.
    Nothing,
    /// Decrypted bytes, into this buffer.
    Read(&'a mut [u8]),
    /// To encrypt (some of) these bytes.
    Write(&'a [u8]),
    /// To queue a close_notify alert.
    CloseNotify,
}

/// Where rustls stopped.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// It needs more input to go on with the handshake.
    Blocked,
    /// The handshake is done and nothing is left to decrypt in the input.
    Ready,
    /// This many decrypted bytes were copied out.
    Read(usize),
    /// This many bytes were encrypted.
    Wrote(usize),
    /// Both sides sent close_notify.
    Closed,
}

/// The session's state and its buffers, each held only while it has bytes in it.
struct Session {
    core: Rc<Core>,
    conn: UnbufferedServerConnection,
    /// Received ciphertext not yet processed: `incoming[..filled]`.
    incoming: Option<Vec<u8>>,
    filled: usize,
    /// Decrypted bytes not yet read: `plaintext[taken..]`.
    plaintext: Vec<u8>,
    taken: usize,
    /// Ciphertext to send.
    outgoing: Outgoing,
    /// The peer sent close_notify: reads see the end of the stream once `plaintext` is empty.
    peer_closed: bool,
    close_notify_queued: bool,
}

impl Session {
    fn new(core: Rc<Core>, conn: UnbufferedServerConnection) -> Session {
        Session {
            core,
            conn,
            incoming: None,
            filled: 0,
            plaintext: Vec::new(),
            taken: 0,
            outgoing: Outgoing::default(),
            peer_closed: false,
            close_notify_queued: false,
        }
    }

    /// Runs rustls over the received ciphertext until it reaches what `want` asks for or
    /// needs more input. Handshake records it produces go into the outgoing buffer.
    fn advance(&mut self, mut want: Want<'_>) -> Result<Progress, rustls::Error> {
        loop {
            let incoming = match self.incoming.as_mut() {
                Some(buffer) => &mut buffer[..self.filled],
                None => &mut [],
            };
            let UnbufferedStatus { mut discard, state } = self.conn.process_tls_records(incoming);
            let step = match state {
                Err(e) => {
                    // rustls queued an alert; one more call hands it over for sending.
                    drop_discard(&mut self.incoming, &mut self.filled, discard);
                    self.encode_pending_alert();
                    return Err(e);
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut copied = None;
                    while let Some(record) = traffic.next_record() {
                        let record = record?;
                        discard += record.discard;
                        match &mut want {
                            // Straight into the caller's buffer, the rest kept for later.
                            Want::Read(buf) if copied.is_none() && self.plaintext.is_empty() => {
                                let n = record.payload.len().min(buf.len());
                                buf[..n].copy_from_slice(&record.payload[..n]);
                                self.plaintext.extend_from_slice(&record.payload[n..]);
                                copied = Some(n);
                            }
                            _ => self.plaintext.extend_from_slice(record.payload),
                        }
                    }
                    match copied {
                        Some(n) => Some(Progress::Read(n)),
                        None if matches!(want, Want::Read(_)) => Some(Progress::Read(0)),
                        None => None,
                    }
                }
                Ok(ConnectionState::ReadEarlyData(mut early)) => {
                    // max_early_data_size is 0, so this does not happen; drop it if it does.
                    while let Some(record) = early.next_record() {
                        discard += record?.discard;
                    }
                    None
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    self.outgoing
                        .append_record(&self.core, |out| encode.encode(out));
                    None
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    // The records stay in `outgoing`, which is sent before anything later.
                    transmit.done();
                    None
                }
                Ok(ConnectionState::BlockedHandshake) => Some(Progress::Blocked),
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    None
                }
                Ok(ConnectionState::Closed) => Some(Progress::Closed),
                Ok(ConnectionState::WriteTraffic(mut traffic)) => match &mut want {
                    Want::Write(data) => {
                        let data = &data[..data.len().min(ENCRYPT_STEP)];
                        let room = data.len() + (data.len() / 16384 + 1) * RECORD_OVERHEAD;
                        self.outgoing
                            .append(&self.core, room, |out| match traffic.encrypt(data, out) {
                                Ok(n) => Ok(n),
                                Err(EncryptError::InsufficientSize(short)) => {
                                    Err(Some(short.required_size))
                                }
                                Err(_) => Err(None),
                            })
                            .map_err(|()| rustls::Error::General("cannot encrypt".into()))?;
                        Some(Progress::Wrote(data.len()))
                    }
                    Want::CloseNotify => {
                        let _ = self.outgoing.append(&self.core, RECORD_OVERHEAD, |out| {
                            traffic.queue_close_notify(out).map_err(|_| None)
                        });
                        Some(Progress::Ready)
                    }
                    // `poll_read` asks only once earlier plaintext is all taken.
                    Want::Read(_) | Want::Nothing => Some(Progress::Ready),
                },
                Ok(_) => {
                    return Err(rustls::Error::General(
                        "unexpected TLS connection state".into(),
                    ))
                }
            };
            drop_discard(&mut self.incoming, &mut self.filled, discard);
            if let Some(progress) = step {
                return Ok(progress);
            }
        }
    }

    /// After an error, rustls hands what it still had to send (the rest of its flight, then
    /// the alert) over as records to encode, one per call.
    fn encode_pending_alert(&mut self) {
        // A handful at most: a flight's messages and the alert.
        for _ in 0..16 {
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
            let Ok(ConnectionState::EncodeTlsData(mut encode)) = state else {
                return;
            };
            self.outgoing
                .append_record(&self.core, |out| encode.encode(out));
        }
    }

    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        socket: &Socket,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.taken < self.plaintext.len() {
                let n = (self.plaintext.len() - self.taken).min(buf.len());
                buf[..n].copy_from_slice(&self.plaintext[self.taken..self.taken + n]);
                self.taken += n;
                if self.taken == self.plaintext.len() {
                    self.plaintext = Vec::new();
                    self.taken = 0;
                }
                return Poll::Ready(Ok(n));
            }
            if self.peer_closed {
                return Poll::Ready(Ok(0));
            }
            match self.advance(Want::Read(buf)) {
                Ok(Progress::Read(0)) => continue,
                Ok(Progress::Read(n)) => return Poll::Ready(Ok(n)),
                Ok(Progress::Closed) => return Poll::Ready(Ok(0)),
                Ok(_) if self.peer_closed => continue,
                Ok(_) => {}
                Err(e) => {
                    let _ = self.flush(cx, socket);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                }
            }
            // A key update or ticket rustls wants to send goes before we wait for input.
            if let Poll::Ready(Err(e)) = self.flush(cx, socket) {
                return Poll::Ready(Err(e));
            }
            match self.read_input(cx, socket) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.release_idle_buffers();
                    return Poll::Pending;
                }
            }
        }
    }

    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        socket: &Socket,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.pending_output() >= OUTGOING_HIGH_WATER {
            match self.flush(cx, socket) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if self.pending_output() >= OUTGOING_HIGH_WATER => {
                    return Poll::Pending
                }
                Poll::Pending => {}
            }
        }
        match self.advance(Want::Write(data)) {
            Ok(Progress::Wrote(n)) => Poll::Ready(Ok(n)),
            Ok(_) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Err(e) => {
                let _ = self.flush(cx, socket);
                Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)))
            }
        }
    }

    /// Sends the outgoing ciphertext. The buffer stays for the next batch; it goes back to
    /// the pool when the connection waits for input (`release_idle_buffers`).
    fn flush(&mut self, cx: &mut Context<'_>, socket: &Socket) -> Poll<io::Result<()>> {
        while !self.outgoing.pending().is_empty() {
            match socket.poll_write(cx, self.outgoing.pending()) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.outgoing.consume(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads ciphertext from the socket into the incoming buffer.
    fn read_input(&mut self, cx: &mut Context<'_>, socket: &Socket) -> Poll<io::Result<usize>> {
        let incoming = self
            .incoming
            .get_or_insert_with(|| self.core.take_tls_buffer());
        if self.filled == incoming.len() {
            // A whole record always fits, so a full buffer that rustls left alone is not TLS.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a TLS record longer than the protocol allows",
            )));
        }
        match socket.poll_read(cx, &mut incoming[self.filled..]) {
            Poll::Ready(Ok(n)) => {
                self.filled += n;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn pending_output(&self) -> usize {
        self.outgoing.pending().len()
    }

    /// Whether what arrived first is an HTTP request line rather than a TLS record.
    fn input_looks_like_plain_http(&self) -> bool {
        let received = self
            .incoming
            .as_deref()
            .map_or(&[][..], |b| &b[..self.filled]);
        received.first().is_some_and(u8::is_ascii_uppercase)
    }

    /// Gives the record buffers back to the core's pools when they hold nothing.
    fn release_idle_buffers(&mut self) {
        if self.filled == 0 {
            if let Some(buffer) = self.incoming.take() {
                self.core.give_tls_buffer(buffer);
            }
        }
        self.outgoing.release_if_empty(&self.core);
    }

    /// What the finished handshake negotiated.
    fn describe(&self, server_name: Option<Box<str>>) -> TlsSession {
        TlsSession::new(
            self.conn.protocol_version(),
            self.conn.negotiated_cipher_suite(),
            self.conn.alpn_protocol(),
            server_name,
            self.conn.peer_certificates(),
        )
    }
}

/// Ciphertext waiting to be sent: `buffer[sent..end]`. The buffer's length is how much of it
/// is initialized, and it is kept between batches while the connection is busy, so records
/// are encrypted straight into it without zeroing it again for every write.
#[derive(Default)]
struct Outgoing {
    buffer: Option<Vec<u8>>,
    sent: usize,
    end: usize,
}

impl Outgoing {
    fn pending(&self) -> &[u8] {
        self.buffer
            .as_deref()
            .map_or(&[], |b| &b[self.sent..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.end {
            self.sent = 0;
            self.end = 0;
        }
    }

    /// Lets `write` put bytes after the pending ones, in at least `room` bytes of space;
    /// `write` answers how many it wrote, or `Err(Some(n))` to be called again with `n`
    /// bytes of room, or `Err(None)` to give up.
    fn append(
        &mut self,
        core: &Core,
        mut room: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
    ) -> Result<(), ()> {
        let buffer = self.buffer.get_or_insert_with(|| core.take_write_buffer());
        loop {
            if buffer.len() < self.end + room {
                buffer.resize(self.end + room, 0);
            }
            match write(&mut buffer[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(Some(needed)) if needed > room => room = needed,
                Err(_) => return Err(()),
            }
        }
    }

    /// Appends one handshake record, making room as rustls asks.
    fn append_record(
        &mut self,
        core: &Core,
        mut encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
    ) {
        let _ = self.append(core, 4096, |out| match encode(out) {
            Ok(n) => Ok(n),
            Err(EncodeError::InsufficientSize(short)) => Err(Some(short.required_size)),
            Err(EncodeError::AlreadyEncoded) => Err(None),
        });
    }

    /// Gives the buffer back to the pool when nothing waits in it.
    fn release_if_empty(&mut self, core: &Core) {
        if self.end == 0 {
            if let Some(mut buffer) = self.buffer.take() {
                buffer.clear();
                core.give_write_buffer(buffer);
            }
        }
    }
}

/// Drops `discard` processed bytes from the front of the incoming buffer.
fn drop_discard(incoming: &mut Option<Vec<u8>>, filled: &mut usize, discard: usize) {
    if discard == 0 {
        return;
    }
    if let Some(buffer) = incoming.as_mut() {
        buffer.copy_within(discard..*filled, 0);
        *filled -= discard;
    }
}

/// Serves one TLS connection: the handshake, bounded by the header-read timeout (a client
/// that starts one and stalls holds nothing for longer than one that stalls mid-head), then
/// the HTTP/1.1 driver over the session. The connection counts toward the core's limit from
/// the start, so a flood of unfinished handshakes is bounded like any other connections.
pub(crate) fn serve(
    core: Rc<Core>,
    socket: Socket,
    peer: Peer,
    config: Arc<ServerConfig>,
) -> impl std::future::Future<Output = ()> {
    // Not an `async fn`: its arguments would stay reserved in the task for the connection's
    // life. The handshake is boxed, so its state (a whole session and its buffers'
    // bookkeeping) is freed when it ends, and what it hands on is taken out of its result in
    // a `let`, not a `match`, whose scrutinee would be kept across the driver's awaits.
    let handshake = Box::pin(handshake(core, socket, peer, config));
    async move {
        let Some((core, registration, stream, peer)) = handshake.await else {
            return;
        };
        conn::serve_registered(core, registration, stream, peer).await
    }
}

/// The handshake, within the header-read deadline and counted among the core's connections
/// from the start; `None` (logged) when it does not finish.
async fn handshake(
    core: Rc<Core>,
    socket: Socket,
    peer: Peer,
    config: Arc<ServerConfig>,
) -> Option<(Rc<Core>, ConnRegistration, TlsStream, Peer)> {
    let registration = core.register();
    let limit = core.config.limits.header_read_timeout;
    match within(limit, accept(Rc::clone(&core), socket, config)).await {
        Ok(Ok(stream)) => Some((core, registration, stream, peer)),
        Ok(Err(e)) => {
            tracing::debug!(target: "squall::server", "TLS handshake with {peer} failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(target: "squall::server", "TLS handshake with {peer} did not finish within {limit:?}");
            None
        }
    }
}
