//! Listening sockets, built with socket2 so the backlog is ours to choose (glommio's own
//! `bind` hard-codes 1024) and each core gets its own `SO_REUSEPORT` socket.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::Error;

/// Binds one listener per worker, all on the same address. With port 0 the first bind picks
/// the port and the others join it.
pub(crate) fn bind_all(addr: SocketAddr, count: usize, backlog: u32) -> Result<Vec<Socket>, Error> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let socket = bind_one(addr, backlog).map_err(|e| describe_bind_error(addr, e))?;
        if addr.port() == 0 {
            let bound = socket
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .ok_or_else(|| Error::startup(format!("cannot read the port bound for {addr}")))?;
            addr.set_port(bound.port());
        }
        sockets.push(socket);
    }
    Ok(sockets)
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    // Accepted connections inherit it, so it costs no system call per connection: responses
    // are flushed in one write per batch, and Nagle would only add latency.
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    socket.listen(backlog)?;
    Ok(socket)
}

fn describe_bind_error(addr: SocketAddr, err: io::Error) -> Error {
    let why = match err.kind() {
        io::ErrorKind::AddrInUse => {
            "the address is already in use by a process that does not share it".to_owned()
        }
        io::ErrorKind::AddrNotAvailable => "the address does not belong to this machine".to_owned(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges)".to_owned()
        }
        _ => err.to_string(),
    };
    Error::startup(format!("cannot listen on {addr}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_binds_every_core_to_one_port() {
        let sockets = bind_all("127.0.0.1:0".parse().expect("literal"), 3, 128).expect("bind");
        let ports: Vec<u16> = sockets
            .iter()
            .map(|s| {
                s.local_addr()
                    .expect("bound")
                    .as_socket()
                    .expect("inet")
                    .port()
            })
            .collect();
        assert!(ports.iter().all(|&p| p == ports[0] && p != 0), "{ports:?}");
    }

    #[test]
    fn address_in_use_is_explained() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = held.local_addr().expect("bound");
        let err = bind_all(addr, 1, 128).expect_err("in use");
        assert!(err.to_string().contains("already in use"), "{err}");
    }
}
