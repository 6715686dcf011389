//! The pump: the one owner of a WebSocket's stream. It reads frames into the inbound queue,
//! writes the outbound queue, answers control frames, keeps the peer alive, and runs the close
//! handshake, all from [`Pump::poll`] in the connection's task.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message as Frame};
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures_lite::Stream;
use futures_sink::Sink;

use super::{register, wake, Shared, INBOUND_MESSAGES};
use crate::deadline::Alarm;
use crate::upgrade::UpgradedStream;
use crate::ws::{CloseCode, CloseInfo, Message, WsConfig};

/// A close handshake under way.
struct Closing {
    info: CloseInfo,
    deadline: Instant,
}

/// Owns the socket: reads frames into the inbound queue, writes the outbound queue, answers
/// control frames, keeps the peer alive, and runs the close handshake.
pub(super) struct Pump {
    socket: WebSocketStream<UpgradedStream>,
    shared: Rc<RefCell<Shared>>,
    config: Rc<WsConfig>,
    alarm: Alarm,
    /// When the peer was last known to have sent anything, and whether it has since. The
    /// times are refreshed only when a deadline comes due: reading the clock on every frame
    /// was 3% of the CPU of an echo benchmark (`perf record`).
    heard_at: Instant,
    heard: bool,
    ping_sent_at: Option<Instant>,
    /// When queued output was last known to move, for the stall limit, and whether it has
    /// moved since.
    progress_at: Instant,
    progressed: bool,
    needs_flush: bool,
    reading: bool,
    /// A read error's close, held until the handler has answered the messages before it
    /// (or until the deadline).
    failure: Option<(CloseFrame, Instant)>,
    closing: Option<Closing>,
}

/// The session is over.
type Over = CloseInfo;

impl Pump {
    pub(super) fn new(
        socket: WebSocketStream<UpgradedStream>,
        shared: Rc<RefCell<Shared>>,
        config: Rc<WsConfig>,
    ) -> Pump {
        let now = Instant::now();
        Pump {
            socket,
            shared,
            config,
            alarm: Alarm::default(),
            heard_at: now,
            heard: false,
            ping_sent_at: None,
            progress_at: now,
            progressed: false,
            needs_flush: false,
            reading: true,
            failure: None,
            closing: None,
        }
    }

    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<CloseInfo> {
        register(&mut self.shared.borrow_mut().pump, cx);
        loop {
            if let Err(over) = self.step(cx) {
                self.alarm.clear();
                return Poll::Ready(over);
            }
            let Some(deadline) = self.next_deadline() else {
                self.alarm.clear();
                return Poll::Pending;
            };
            if self.alarm.poll_at(deadline, cx).is_pending() {
                return Poll::Pending;
            }
            if let Err(over) = self.on_deadline(Instant::now()) {
                self.alarm.clear();
                return Poll::Ready(over);
            }
        }
    }

    /// Moves everything that can move without waiting.
    fn step(&mut self, cx: &mut Context<'_>) -> Result<(), Over> {
        self.write_queued(cx)?;
        self.flush(cx)?;
        self.read(cx)?;
        self.flush(cx)?; // Pongs and close replies tungstenite queued while reading.
        if self.begin_due_close()? {
            self.flush(cx)?;
        }
        match &self.closing {
            // Our close is out and nothing more can be read: done.
            Some(closing) if !self.reading && !self.needs_flush => Err(closing.info.clone()),
            _ => Ok(()),
        }
    }

    /// Starts a close that is due: a requested one once the messages queued before it are
    /// out, a failure's once the handler has also taken (and answered) what arrived before
    /// the bad frame.
    fn begin_due_close(&mut self) -> Result<bool, Over> {
        if self.closing.is_some() || self.output_pending() {
            return Ok(false);
        }
        let handler_caught_up = self.shared.borrow().inbound.is_empty();
        let frame = match self.failure.take() {
            Some((frame, _)) if handler_caught_up => Some(frame),
            pending => {
                self.failure = pending;
                self.shared.borrow_mut().close_request.take()
            }
        };
        match frame {
            Some(frame) => self.begin_close(frame).map(|()| true),
            None => Ok(false),
        }
    }

    fn flush(&mut self, cx: &mut Context<'_>) -> Result<(), Over> {
        if !self.needs_flush {
            return Ok(());
        }
        match Pin::new(&mut self.socket).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.needs_flush = false;
                self.progressed = true;
                Ok(())
            }
            Poll::Ready(Err(e)) => Err(self.lost(e)),
            Poll::Pending => Ok(()),
        }
    }

    fn write_queued(&mut self, cx: &mut Context<'_>) -> Result<(), Over> {
        if self.closing.is_some() {
            return Ok(());
        }
        let mut wrote = false;
        loop {
            if self.shared.borrow().outbound.is_empty() {
                break;
            }
            match Pin::new(&mut self.socket).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(self.lost(e)),
                Poll::Pending => break,
            }
            let Some(message) = self.shared.borrow_mut().pop_outbound() else {
                break;
            };
            if let Err(e) = Pin::new(&mut self.socket).start_send(message.into_frame()) {
                return Err(self.lost(e));
            }
            wrote = true;
        }
        if wrote {
            self.needs_flush = true;
            self.progressed = true;
            let mut shared = self.shared.borrow_mut();
            for waker in shared.senders.drain(..) {
                waker.wake();
            }
        }
        Ok(())
    }

    fn read(&mut self, cx: &mut Context<'_>) -> Result<(), Over> {
        // While closing, frames are read (and data dropped) to reach the peer's close. While
        // output cannot be written, nothing is read: every ping read queues a pong, so a peer
        // that sends pings (or closes) without reading the answers would otherwise grow the
        // write buffer without bound. Unread, its frames wait in TCP's buffers and hold it back.
        while self.reading && (self.closing.is_some() || self.has_inbound_room()) {
            if self.needs_flush {
                self.flush(cx)?;
                if self.needs_flush {
                    return Ok(()); // Woken when the socket takes more.
                }
            }
            let frame = match Pin::new(&mut self.socket).poll_next(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(None) => {
                    self.reading = false;
                    return Err(self.ended_without_close());
                }
                Poll::Ready(Some(Err(e))) => {
                    self.reading = false;
                    return self.fail(e);
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            self.heard = true;
            match frame {
                Frame::Text(text) => self.deliver(Message::Text(text)),
                Frame::Binary(bytes) => self.deliver(Message::Binary(bytes)),
                // tungstenite has queued the pong: out it goes before the next frame is read.
                Frame::Ping(_) => self.needs_flush = true,
                Frame::Pong(_) => self.ping_sent_at = None,
                Frame::Close(frame) => self.peer_closed(frame),
                Frame::Frame(_) => {}
            }
        }
        Ok(())
    }

    fn has_inbound_room(&self) -> bool {
        let shared = self.shared.borrow();
        shared.inbound.len() < INBOUND_MESSAGES
            && shared.inbound_bytes < self.config.max_message_size
    }

    fn deliver(&mut self, message: Message) {
        if self.closing.is_some() {
            return; // A close has begun: the handler is no longer listening.
        }
        let mut shared = self.shared.borrow_mut();
        shared.inbound_bytes += message.len();
        shared.inbound.push_back(message);
        wake(&mut shared.receiver);
    }

    fn peer_closed(&mut self, frame: Option<CloseFrame>) {
        if self.closing.is_some() {
            // The answer to our close: tungstenite reports the end of the stream next.
            return;
        }
        let info = match frame {
            Some(frame) => CloseInfo::new(frame.code, frame.reason.as_str(), true),
            None => CloseInfo::new(CloseCode::Status, "", true),
        };
        // tungstenite has queued the reply; reading on flushes it and ends the stream.
        self.needs_flush = true;
        self.start_closing(info);
        let mut shared = self.shared.borrow_mut();
        shared.close_request = None;
        shared.clear_outbound();
    }

    fn begin_close(&mut self, frame: CloseFrame) -> Result<(), Over> {
        let info = CloseInfo::new(frame.code, frame.reason.as_str(), false);
        self.start_closing(info);
        match Pin::new(&mut self.socket).start_send(Frame::Close(Some(frame))) {
            Ok(()) => {
                self.needs_flush = true;
                Ok(())
            }
            Err(e) => Err(self.lost(e)),
        }
    }

    fn start_closing(&mut self, info: CloseInfo) {
        self.shared.borrow_mut().closing = true;
        self.closing = Some(Closing {
            info,
            deadline: Instant::now() + self.config.close_timeout,
        });
    }

    /// A read error: a protocol violation is answered with its close code; a broken
    /// connection just ends.
    fn fail(&mut self, error: WsError) -> Result<(), Over> {
        let (code, reason) = match &error {
            WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
            WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in a text message"),
            WsError::Capacity(_) => (CloseCode::Size, "message too big"),
            WsError::AttackAttempt => (CloseCode::Policy, "attack attempt"),
            _ => return Err(self.lost(error)),
        };
        tracing::debug!(target: "squall::ws", "closing with {code}: {error}");
        if self.closing.is_none() {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            self.failure = Some((frame, Instant::now() + self.config.close_timeout));
        }
        // Already closing: the handshake (or its deadline) ends it.
        Ok(())
    }

    /// The stream ended: after a close handshake that is the normal end.
    fn ended_without_close(&mut self) -> Over {
        match &self.closing {
            Some(closing) => closing.info.clone(),
            None => CloseInfo::abnormal("the connection ended without a close frame"),
        }
    }

    /// The socket failed; a close already under way keeps its code.
    fn lost(&mut self, error: WsError) -> Over {
        match (&self.closing, error) {
            (Some(closing), _) => closing.info.clone(),
            (None, WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                CloseInfo::abnormal("the connection ended without a close frame")
            }
            (None, error) => CloseInfo::abnormal(&error.to_string()),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        if let Some(closing) = &self.closing {
            return Some(closing.deadline);
        }
        if let Some((_, deadline)) = &self.failure {
            return Some(*deadline);
        }
        let keepalive = self
            .config
            .ping_interval
            .map(|interval| match self.ping_sent_at {
                Some(sent) => sent + self.config.pong_timeout,
                None => self.heard_at + interval,
            });
        let stalled = self
            .output_pending()
            .then(|| self.progress_at + self.config.send_stall_timeout);
        match (keepalive, stalled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn output_pending(&self) -> bool {
        self.needs_flush || !self.shared.borrow().outbound.is_empty()
    }

    fn on_deadline(&mut self, now: Instant) -> Result<(), Over> {
        if std::mem::take(&mut self.heard) {
            self.heard_at = now;
        }
        if std::mem::take(&mut self.progressed) {
            self.progress_at = now;
        }
        if let Some(closing) = &self.closing {
            if now >= closing.deadline {
                return Err(closing.info.clone());
            }
            return Ok(());
        }
        if let Some((frame, deadline)) = self.failure.take() {
            if now >= deadline {
                return self.begin_close(frame);
            }
            self.failure = Some((frame, deadline));
            return Ok(());
        }
        if self.output_pending() && now >= self.progress_at + self.config.send_stall_timeout {
            // What is stuck in tungstenite's buffer goes before the close frame; the close
            // deadline then ends a peer that reads nothing at all.
            self.shared
                .borrow_mut()
                .discard_and_close(CloseCode::Policy, "slow consumer: output stalled");
            let request = self.shared.borrow_mut().close_request.take();
            if let Some(frame) = request {
                return self.begin_close(frame);
            }
            return Ok(());
        }
        let Some(interval) = self.config.ping_interval else {
            return Ok(());
        };
        match self.ping_sent_at {
            // A pong may be waiting behind messages the busy handler has not taken yet, or
            // unread while our own output is stuck (the stall limit governs that case).
            Some(sent)
                if now >= sent + self.config.pong_timeout
                    && (!self.has_inbound_room() || self.output_pending()) =>
            {
                self.ping_sent_at = Some(now);
                Ok(())
            }
            Some(sent) if now >= sent + self.config.pong_timeout => {
                Err(CloseInfo::abnormal("no pong within the timeout"))
            }
            None if now >= self.heard_at + interval => {
                self.ping_sent_at = Some(now);
                match Pin::new(&mut self.socket).start_send(Frame::Ping(Bytes::new())) {
                    Ok(()) => {
                        self.needs_flush = true;
                        Ok(())
                    }
                    Err(e) => Err(self.lost(e)),
                }
            }
            _ => Ok(()),
        }
    }
}
