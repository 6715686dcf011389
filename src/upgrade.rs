//! A connection handed over after `101 Switching Protocols`.
//!
//! The handler asks for the upgrade by returning [`Response::upgrade`](crate::Response::upgrade);
//! the connection driver writes the 101 response and then gives the raw stream, with any bytes
//! the client already sent past the request head, to the upgrade callback. From then on the
//! callback owns the socket, on the same core.

use std::net::SocketAddr;

use crate::net::Socket;
use bytes::Bytes;

/// The raw connection after an upgrade.
#[derive(Debug)]
pub struct Upgraded {
    /// The socket.
    pub stream: Socket,
    /// Bytes received after the request head that belong to the new protocol.
    pub read_ahead: Bytes,
    /// The peer's address.
    pub peer: SocketAddr,
}
