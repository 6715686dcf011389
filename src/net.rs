//! TCP sockets, and TCP or Unix listeners, driven by the executor's epoll set rather than
//! by a glommio poll per read or accept: the [`squall_net`] crate, re-exported so
//! applications name the same types squall does.
//!
//! A [`Socket`] reads and writes with plain non-blocking `recv`/`send`; only when one would
//! block does it leave its waker with the executor's readiness set and wait for the edge.
//! The server's connections, upgraded WebSockets and the database clients all use it, and a
//! [`Listener`] hands out the server's connections the same way. The layer lives in its own
//! crate so that tools such as the load generator can use it without the framework.

pub use squall_net::{Listener, Socket};

// Used by the server at startup; not part of squall's own API.
pub(crate) use squall_net::prepare;
