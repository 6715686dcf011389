//! WebSockets (RFC 6455): the upgrade from a route, a per-connection session that answers
//! control frames and keeps the peer alive while the handler works. Fanning messages out to
//! many connections, on every core and through Redis to other machines, is the job of
//! [`crate::hub`].
//!
//! ```no_run
//! use squall::ws::{self, WebSocket};
//! use squall::{App, Request, Response};
//!
//! async fn echo(req: Request) -> Result<Response, ws::Rejection> {
//!     Ok(ws::Upgrade::new(req)?.open(|socket: WebSocket| async move {
//!         while let Some(message) = socket.recv().await {
//!             if socket.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     }))
//! }
//!
//! let app = App::new().get("/ws", echo);
//! ```
//!
//! ## How a connection runs
//!
//! After the `101` the connection's task drives two things together: the **session pump**,
//! which owns the socket and tungstenite's framing, and the **handler**. The pump reads frames
//! into a small inbound queue (reading stops while the handler is behind, so a flood is held
//! back by TCP), answers pings and close frames itself, writes what the send queue holds,
//! pings a silent peer and drops it when the pong does not come. The handler only ever sees
//! text and binary messages.
//!
//! | event | close code |
//! |---|---|
//! | the handler returns, or calls [`WebSocket::close`] | 1000, or the code given |
//! | the handler panics | 1011 |
//! | a protocol violation | 1002 (1008 for what tungstenite takes for an attack) |
//! | a text message that is not UTF-8 | 1007 |
//! | a message over [`WsConfig::max_message_size`] | 1009 |
//! | the send queue overflows ([`WsConfig::send_queue`]), or output stalls ([`WsConfig::send_stall_timeout`]) | 1008 |
//! | no pong within [`WsConfig::pong_timeout`] | the socket is dropped (1006) |
//! | the server shuts down gracefully | 1001 |
//!
//! When the connection ends, [`WebSocket::recv`] returns the messages already received and
//! then `None`, and sends fail; a handler still running then has [`WsConfig::close_timeout`]
//! to return before it is dropped.

mod config;
mod handshake;
mod session;

use bytes::Bytes;

pub use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
pub use async_tungstenite::tungstenite::Utf8Bytes;

pub use self::config::WsConfig;
pub use self::handshake::{Rejection, Upgrade};
#[cfg(feature = "metrics")]
pub(crate) use self::session::open_count as open_sessions;
pub use self::session::{Closed, WebSocket, WsSender};

/// A text or binary message. Control frames (ping, pong, close) never reach handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A UTF-8 text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Message {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(bytes: impl Into<Bytes>) -> Message {
        Message::Binary(bytes.into())
    }

    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text.as_str()),
            Message::Binary(_) => None,
        }
    }

    /// The payload bytes, whatever the kind.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_frame(self) -> async_tungstenite::tungstenite::Message {
        match self {
            Message::Text(text) => async_tungstenite::tungstenite::Message::Text(text),
            Message::Binary(bytes) => async_tungstenite::tungstenite::Message::Binary(bytes),
        }
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::text(text)
    }
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::text(text)
    }
}

impl From<Bytes> for Message {
    fn from(bytes: Bytes) -> Message {
        Message::Binary(bytes)
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Message {
        Message::Binary(bytes.into())
    }
}

/// How a connection ended, as the close hook and [`WebSocket::close_info`] report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the peer's, or the one the server sent, or 1006 when the connection
    /// ended without a close frame.
    pub code: CloseCode,
    /// The reason text that went with the code.
    pub reason: String,
    /// Whether the peer started the close.
    pub by_peer: bool,
}

impl CloseInfo {
    fn new(code: CloseCode, reason: impl Into<String>, by_peer: bool) -> CloseInfo {
        CloseInfo {
            code,
            reason: reason.into(),
            by_peer,
        }
    }

    fn abnormal(reason: &str) -> CloseInfo {
        CloseInfo::new(CloseCode::Abnormal, reason, false)
    }
}
