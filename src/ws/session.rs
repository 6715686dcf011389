//! One WebSocket connection after the upgrade: the handles a handler holds ([`WebSocket`],
//! [`WsSender`]) and the pump that owns the socket.
//!
//! Handles and pump (in `pump.rs`) share one [`Shared`] record: two bounded queues and the close state.
//! Data flows one way through each queue (socket → pump → inbound → handler; handler or hub
//! → outbound → pump → socket), and only the pump touches the socket. The pump and the
//! handler run in the connection's own task, so nothing here is shared between cores.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::WebSocketStream;
use futures_lite::FutureExt;
use slab::Slab;

mod pump;

use self::pump::Pump;
use super::{CloseCode, CloseInfo, Message, WsConfig};
use crate::deadline::within;
use crate::per_core::{self, ExecutorLocal};
use crate::upgrade::Upgraded;
use crate::Request;

/// Runs after the connection has ended, with how it ended.
pub(crate) type CloseHook = Box<dyn FnOnce(&CloseInfo)>;

/// The connection has closed (or is closing): the message was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the websocket is closed")
    }
}

impl std::error::Error for Closed {}

/// Messages read ahead of the handler, at most; beyond that the pump stops reading and TCP
/// holds the peer back. Enough to keep reading (and answering pings) while the handler works.
const INBOUND_MESSAGES: usize = 16;

/// A close reason travels in a control frame: 125 bytes less the 2-byte code.
const MAX_REASON: usize = 123;

/// What the handles and the pump share.
struct Shared {
    inbound: VecDeque<Message>,
    inbound_bytes: usize,
    outbound: VecDeque<Message>,
    outbound_bytes: usize,
    max_outbound_messages: usize,
    max_outbound_bytes: usize,
    /// Set once either side has begun to close: nothing more can be queued.
    closing: bool,
    /// A close the server side asked for, not yet taken by the pump.
    close_request: Option<CloseFrame>,
    /// How the connection ended, once it has.
    ended: Option<CloseInfo>,
    /// The task waiting in `recv`.
    receiver: Option<Waker>,
    /// The pump's task.
    pump: Option<Waker>,
    /// Tasks waiting in `send` for room in the queue.
    senders: Vec<Waker>,
}

/// Whether a message joined the send queue.
enum Push {
    Queued,
    Full(Message),
    Closed,
}

impl Shared {
    fn new(config: &WsConfig) -> Shared {
        Shared {
            inbound: VecDeque::new(),
            inbound_bytes: 0,
            outbound: VecDeque::new(),
            outbound_bytes: 0,
            max_outbound_messages: config.send_queue_messages,
            max_outbound_bytes: config.send_queue_bytes,
            closing: false,
            close_request: None,
            ended: None,
            receiver: None,
            pump: None,
            senders: Vec::new(),
        }
    }

    fn is_closing(&self) -> bool {
        self.closing
    }

    fn push(&mut self, message: Message) -> Push {
        if self.is_closing() {
            return Push::Closed;
        }
        // One message always fits an empty queue, however large, so that a bound smaller
        // than a message cannot wedge the connection.
        if !self.outbound.is_empty()
            && (self.outbound.len() >= self.max_outbound_messages
                || self.outbound_bytes + message.len() > self.max_outbound_bytes)
        {
            return Push::Full(message);
        }
        self.outbound_bytes += message.len();
        self.outbound.push_back(message);
        wake(&mut self.pump);
        Push::Queued
    }

    fn pop_outbound(&mut self) -> Option<Message> {
        let message = self.outbound.pop_front()?;
        self.outbound_bytes -= message.len();
        Some(message)
    }

    fn request_close(&mut self, code: CloseCode, reason: &str) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.close_request = Some(CloseFrame {
            code,
            reason: truncate(reason, MAX_REASON).into(),
        });
        wake(&mut self.pump);
    }

    /// Drops what is queued and closes: for a slow consumer (1008), whose backlog is the
    /// problem, and after a handler panic (1011), when nothing it queued is worth waiting for.
    fn discard_and_close(&mut self, code: CloseCode, reason: &str) {
        self.request_close(code, reason);
        self.clear_outbound();
    }

    /// Drops what is waiting to be sent and wakes the tasks waiting for room, which then
    /// find the connection closing.
    fn clear_outbound(&mut self) {
        self.outbound.clear();
        self.outbound_bytes = 0;
        for waker in self.senders.drain(..) {
            waker.wake();
        }
    }

    /// Drops what the handler has not taken: it has returned, nobody will.
    fn clear_inbound(&mut self) {
        self.inbound.clear();
        self.inbound_bytes = 0;
    }

    /// The connection has ended. Messages already received stay for the handler to take.
    fn finish(&mut self, info: CloseInfo) {
        self.closing = true;
        self.ended = Some(info);
        self.clear_outbound();
        wake(&mut self.receiver);
    }
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(waker) = waker.take() {
        waker.wake();
    }
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A cheap, cloneable handle that queues messages on one connection: what a [`Hub`](crate::hub::Hub)
/// subscription holds, or another task that wants to write to this client.
#[derive(Clone)]
pub struct WsSender {
    shared: Rc<RefCell<Shared>>,
}

impl fmt::Debug for WsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsSender")
            .field("open", &self.is_open())
            .finish()
    }
}

impl WsSender {
    /// Queues `message` without waiting. A full queue means the client is not keeping up:
    /// the connection is closed with 1008 (see [`WsConfig::send_queue`]) and `Err` returned.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), Closed> {
        let mut shared = self.shared.borrow_mut();
        match shared.push(message.into()) {
            Push::Queued => Ok(()),
            Push::Full(_) => {
                shared.discard_and_close(CloseCode::Policy, "slow consumer: send queue full");
                Err(Closed)
            }
            Push::Closed => Err(Closed),
        }
    }

    /// Queues `message`, waiting while the queue is full.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Closed> {
        let mut message = Some(message.into());
        poll_fn(|cx| {
            let mut shared = self.shared.borrow_mut();
            let Some(next) = message.take() else {
                return Poll::Ready(Err(Closed));
            };
            match shared.push(next) {
                Push::Queued => Poll::Ready(Ok(())),
                Push::Closed => Poll::Ready(Err(Closed)),
                Push::Full(back) => {
                    message = Some(back);
                    if !shared.senders.iter().any(|w| w.will_wake(cx.waker())) {
                        shared.senders.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Starts the close handshake with `code` and `reason` (cut to 123 bytes) once the
    /// messages already queued are written.
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.shared.borrow_mut().request_close(code, reason);
    }

    /// Whether messages can still be queued.
    pub fn is_open(&self) -> bool {
        !self.shared.borrow().is_closing()
    }
}

/// The handler's side of one connection.
pub struct WebSocket {
    sender: WsSender,
    request: Request,
    peer: SocketAddr,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("path", &self.request.path())
            .field("peer", &self.peer)
            .field("open", &self.sender.is_open())
            .finish()
    }
}

impl WebSocket {
    /// The next text or binary message; `None` once the connection has ended (or is
    /// closing: messages that arrive after a close has begun are not delivered).
    pub async fn recv(&self) -> Option<Message> {
        poll_fn(|cx| {
            let mut shared = self.sender.shared.borrow_mut();
            if let Some(message) = shared.inbound.pop_front() {
                shared.inbound_bytes -= message.len();
                wake(&mut shared.pump); // There is room to read again.
                return Poll::Ready(Some(message));
            }
            if shared.ended.is_some() {
                return Poll::Ready(None);
            }
            register(&mut shared.receiver, cx);
            Poll::Pending
        })
        .await
    }

    /// Queues `message`, waiting while the send queue is full.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Closed> {
        self.sender.send(message).await
    }

    /// Queues `message` without waiting; see [`WsSender::try_send`].
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), Closed> {
        self.sender.try_send(message)
    }

    /// Starts the close handshake; [`recv`](WebSocket::recv) returns `None` once it is done.
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.sender.close(code, reason);
    }

    /// A handle for queueing messages from elsewhere (a hub subscription, another task).
    pub fn sender(&self) -> WsSender {
        self.sender.clone()
    }

    /// The upgrade request: path parameters, headers, cookies, query.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether messages can still be sent.
    pub fn is_open(&self) -> bool {
        self.sender.is_open()
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.sender.shared.borrow().ended.clone()
    }
}

/// The sessions open on this core, so that shutdown can close them with 1001.
type OpenSessions = RefCell<Slab<WsSender>>;

thread_local! {
    // Listed in `per_core`.
    static SESSIONS: ExecutorLocal<OpenSessions> = const { ExecutorLocal::new() };
}

/// This core's open sessions, made on first use together with the shutdown hook that
/// starts the close handshake with 1001 (going away) on each: the sessions then end within
/// their close timeout, which lets graceful shutdown finish without cutting them off.
fn open_sessions() -> Rc<OpenSessions> {
    SESSIONS.with(|slot| {
        slot.get_or_init(|| {
            per_core::on_shutdown(|| {
                let Some(open) = SESSIONS.with(ExecutorLocal::get) else {
                    return;
                };
                for (_, session) in open.borrow().iter() {
                    session.close(CloseCode::Away, "server shutting down");
                }
            });
            RefCell::default()
        })
    })
}

/// How many WebSocket sessions are open on this core (for a metrics scrape).
#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "read by the metrics feature alone")
)]
pub(crate) fn open_count() -> usize {
    SESSIONS.with(|slot| slot.get().map_or(0, |open| open.borrow().len()))
}

/// A session's place among the open ones, given up when it ends.
struct SessionRegistration {
    open: Rc<OpenSessions>,
    key: usize,
}

impl SessionRegistration {
    fn new(sender: &WsSender) -> SessionRegistration {
        if per_core::shutting_down() {
            sender.close(CloseCode::Away, "server shutting down");
        }
        let open = open_sessions();
        let key = open.borrow_mut().insert(sender.clone());
        SessionRegistration { open, key }
    }
}

impl Drop for SessionRegistration {
    fn drop(&mut self) {
        self.open.borrow_mut().try_remove(self.key);
    }
}

/// Runs one upgraded connection: the pump and the handler, side by side in this task.
pub(crate) async fn run<H, F>(
    upgraded: Upgraded,
    request: Request,
    config: Rc<WsConfig>,
    handler: H,
    on_close: Option<CloseHook>,
) where
    H: FnOnce(WebSocket) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    let Upgraded {
        stream,
        read_ahead,
        peer,
    } = upgraded;
    let socket = WebSocketStream::from_partially_read(
        stream,
        read_ahead.to_vec(),
        Role::Server,
        Some(config.framing()),
    )
    .await;
    let shared = Rc::new(RefCell::new(Shared::new(&config)));
    let mut pump = Pump::new(socket, Rc::clone(&shared), Rc::clone(&config));
    let websocket = WebSocket {
        sender: WsSender {
            shared: Rc::clone(&shared),
        },
        request,
        peer,
    };
    let _registration = SessionRegistration::new(&websocket.sender);
    let mut handler =
        pin!(AssertUnwindSafe(async move { handler(websocket).await }).catch_unwind());
    let mut handler_running = true;
    let info = poll_fn(|cx| {
        if handler_running {
            if let Poll::Ready(outcome) = handler.as_mut().poll(cx) {
                handler_running = false;
                let mut shared = shared.borrow_mut();
                shared.clear_inbound();
                match outcome {
                    Ok(()) => shared.request_close(CloseCode::Normal, ""),
                    Err(panic) => {
                        let what = crate::error::panic_message(&*panic);
                        tracing::error!(target: "squall::ws", %peer, "websocket handler panicked: {what}");
                        shared.discard_and_close(CloseCode::Error, "internal error");
                    }
                }
            }
        }
        pump.poll(cx)
    })
    .await;
    drop(pump); // Closes the socket.
    shared.borrow_mut().finish(info.clone());
    if handler_running {
        // The handler sees `recv` return `None` and its sends fail; it gets a moment to
        // finish its own business before it is dropped.
        let _ = within(config.close_timeout, handler).await;
    }
    if let Some(hook) = on_close {
        hook(&info);
    }
}
