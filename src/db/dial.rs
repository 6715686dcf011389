//! Opening TCP connections to a database server, shared by the PostgreSQL pool and the
//! Redis client.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::net::Socket;

/// The addresses of `host`: an IP literal directly, a name on glommio's blocking thread pool
/// (the system resolver blocks, and must not block the core).
pub(crate) async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host = host.to_owned();
    glommio::executor()
        .spawn_blocking(move || {
            (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect)
        })
        .await
}

/// Connects to the first of `addrs` that accepts, trying every one in turn — `localhost` may
/// resolve to `::1` first while the server listens on 127.0.0.1 only — with `TCP_NODELAY`
/// set, since queries and commands are small writes that must leave at once.
pub(crate) async fn connect_any(addrs: &[SocketAddr]) -> io::Result<Socket> {
    let mut failure = io::Error::other("the host resolved to no addresses");
    for addr in addrs {
        match Socket::connect(*addr, None).await {
            Ok(socket) => return Ok(socket),
            Err(e) => failure = e,
        }
    }
    Err(failure)
}
