//! Per-route WebSocket settings.

use std::time::Duration;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Settings for the WebSockets of a route; pass one to
/// [`Upgrade::with_config`](super::Upgrade::with_config). Every field has a default fit for many idle
/// connections: see each setter.
///
/// # Memory per connection
///
/// What a peer sends cannot make a connection hold more than these settings allow:
///
/// - **Inbound**: the read buffer, one message being reassembled (at most
///   [`max_message_size`](WsConfig::max_message_size)), and up to 16 messages (and at most
///   `max_message_size` bytes) read ahead of the handler. Beyond that the connection stops
///   reading and TCP holds the peer back.
/// - **Outbound**: the send queue (see [`send_queue`](WsConfig::send_queue)), plus the frames
///   being written: at most [`write_buffer_size`](WsConfig::write_buffer_size), one message and
///   one control frame. Answers the peer provokes (a pong for each ping, the reply to a close)
///   are backpressured: while output cannot be written the connection reads nothing, so a peer
///   that floods pings without reading the pongs fills its own TCP buffers, not the server's
///   memory. Every pong is still sent once it reads; if it never does, the
///   [`send_stall_timeout`](WsConfig::send_stall_timeout) closes the connection with 1008.
#[derive(Clone, Debug)]
pub struct WsConfig {
    pub(crate) max_message_size: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) send_queue_messages: usize,
    pub(crate) send_queue_bytes: usize,
    pub(crate) send_stall_timeout: Duration,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) any_origin: bool,
}

impl Default for WsConfig {
    fn default() -> WsConfig {
        WsConfig {
            max_message_size: 1 << 20,
            // tungstenite allocates its read buffer up front: its 128 KiB default would cost
            // ≈135 KiB per idle connection. Measured with scripts/bench-ws.sh --only idle:
            // 4 KiB → 8,998 B per idle WebSocket, 2 KiB → 6,964 B (BENCHMARKS.md).
            read_buffer_size: 2 << 10,
            write_buffer_size: 16 << 10,
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            send_queue_messages: 1024,
            send_queue_bytes: 1 << 20,
            send_stall_timeout: Duration::from_secs(30),
            allowed_origins: Vec::new(),
            any_origin: false,
        }
    }
}

impl WsConfig {
    /// The largest message (after reassembling fragments) a peer may send; a bigger one
    /// closes the connection with 1009. Default 1 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> WsConfig {
        self.max_message_size = bytes.max(1);
        self
    }

    /// The read buffer tungstenite allocates per connection, and the most one read takes.
    /// Default 2 KiB, for many idle connections; endpoints that receive large messages read
    /// them in fewer calls with more, at that cost per connection.
    pub fn read_buffer_size(mut self, bytes: usize) -> WsConfig {
        self.read_buffer_size = bytes.max(256);
        self
    }

    /// How many bytes of outgoing frames are gathered before they are written. Default
    /// 16 KiB; queued messages are always written out before the connection waits again.
    pub fn write_buffer_size(mut self, bytes: usize) -> WsConfig {
        self.write_buffer_size = bytes;
        self
    }

    /// How long a connection may stay silent before the server pings it (silence is noticed
    /// within one to two intervals); `None` turns keepalive off. Default 30 s.
    pub fn ping_interval(mut self, interval: Option<Duration>) -> WsConfig {
        self.ping_interval = interval.filter(|i| !i.is_zero());
        self
    }

    /// How long a ping may go unanswered before the peer is taken for dead and the
    /// connection dropped (reported as 1006). Default 10 s.
    pub fn pong_timeout(mut self, timeout: Duration) -> WsConfig {
        self.pong_timeout = timeout;
        self
    }

    /// How long a close handshake may take before the socket is closed anyway. Default 5 s.
    pub fn close_timeout(mut self, timeout: Duration) -> WsConfig {
        self.close_timeout = timeout;
        self
    }

    /// The bound of the per-connection send queue, in messages and in bytes. A
    /// [`try_send`](super::WsSender::try_send) (what the hub's fan-out uses) that finds the
    /// queue full closes the connection with 1008: one slow client never grows memory
    /// without bound or holds up the others. An awaited [`send`](super::WsSender::send)
    /// waits for room instead. Defaults: 1024 messages, 1 MiB.
    pub fn send_queue(mut self, messages: usize, bytes: usize) -> WsConfig {
        self.send_queue_messages = messages.max(1);
        self.send_queue_bytes = bytes.max(1);
        self
    }

    /// How long queued output may make no progress (the peer has stopped reading) before
    /// the connection is closed with 1008. Default 30 s.
    pub fn send_stall_timeout(mut self, timeout: Duration) -> WsConfig {
        self.send_stall_timeout = timeout;
        self
    }

    /// Accepts upgrades whose `Origin` is `origin` (`scheme://host[:port]`, compared without
    /// regard to case), besides those from the request's own host, which are always allowed.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> WsConfig {
        let mut origin = origin.into();
        origin.make_ascii_lowercase();
        self.allowed_origins.push(origin);
        self
    }

    /// Accepts upgrades from pages of any origin. Only for endpoints that need no cookie
    /// or other ambient authority: any web page can open them in a visitor's name.
    pub fn allow_any_origin(mut self) -> WsConfig {
        self.any_origin = true;
        self
    }

    /// The settings tungstenite sees.
    pub(crate) fn framing(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
    }
}
