//! tokio-tungstenite peer: WebSocket echo on `GET /ws`, shaped like the hyper
//! peer (one current-thread tokio runtime per worker thread, each pinned to a
//! core and accepting on its own SO_REUSEPORT listener).
//!
//! Text and binary messages are echoed back unchanged; pings are answered by
//! tungstenite itself; a close is answered and ends the connection. Any other
//! path is refused with 404 during the handshake.

use std::net::SocketAddr;

use futures_util::{FutureExt, SinkExt, StreamExt};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// tungstenite's defaults except for the read buffer: it is allocated eagerly
/// for every connection, and its 128 KiB default would make the idle-memory
/// comparison meaningless. squall reads into 4 KiB per connection, so the peer
/// gets the same 4 KiB for fairness.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// Refuses the upgrade for anything but `/ws`.
#[allow(clippy::result_large_err)] // the signature is tungstenite's Callback
fn only_ws(req: &Request, rsp: Response) -> Result<Response, ErrorResponse> {
    if req.uri().path() == "/ws" {
        Ok(rsp)
    } else {
        let mut err = ErrorResponse::new(Some("not found".to_owned()));
        *err.status_mut() = StatusCode::NOT_FOUND;
        Err(err)
    }
}

async fn echo(stream: TcpStream) -> Result<(), WsError> {
    let mut ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, only_ws, Some(ws_config())).await?;
    while let Some(msg) = ws.next().await {
        queue_echo(&mut ws, msg?).await?;
        // Queue the echo of every message that has already arrived and write
        // them all with one flush, as a pipelining HTTP server answers a batch
        // of requests with one write. Dropping a pending `next()` loses
        // nothing (tokio-tungstenite documents reads as cancel-safe).
        while let Some(Some(msg)) = ws.next().now_or_never() {
            queue_echo(&mut ws, msg?).await?;
        }
        // Also writes tungstenite's queued pong or close reply; after a close
        // the next `next()` ends the loop.
        ws.flush().await?;
    }
    Ok(())
}

/// Queues the echo of a data message without flushing it. tungstenite
/// answers pings and closes by itself (on the next flush).
async fn queue_echo<S>(ws: &mut S, msg: Message) -> Result<(), WsError>
where
    S: SinkExt<Message, Error = WsError> + Unpin,
{
    if msg.is_text() || msg.is_binary() {
        ws.feed(msg).await?;
    }
    Ok(())
}

/// A listener of its own for each worker; the kernel spreads incoming
/// connections across them because of SO_REUSEPORT.
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// One worker: a single-threaded runtime accepting on its own listener.
fn serve(listener: std::net::TcpListener) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    eprintln!("accept: {e}");
                    tokio::task::yield_now().await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                // Errors here are clients going away or bad handshakes;
                // nothing to do about them.
                let _ = echo(stream).await;
            });
        }
    });
}

fn main() {
    let addr: SocketAddr = std::env::var("SQUALL_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".into())
        .parse()
        .expect("SQUALL_ADDR must be ip:port");
    // Pin to the CPUs this process may run on (taskset), in order, as squall does.
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let workers = workers(cores.len());
    // Bind every listener up front so a bad address fails before any thread starts.
    let listeners: Vec<_> = (0..workers)
        .map(|_| reuseport_listener(addr).expect("bind"))
        .collect();
    eprintln!("tokio-tungstenite listening on {addr} with {workers} worker(s)");
    let threads: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let core = cores.get(i % cores.len().max(1)).copied();
            std::thread::Builder::new()
                .name(format!("tt-worker-{i}"))
                .spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    serve(l)
                })
                .expect("spawn worker")
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// SQUALL_WORKERS, else every core this process may run on.
fn workers(cores: usize) -> usize {
    std::env::var("SQUALL_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            if cores > 0 {
                cores
            } else {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            }
        })
}
