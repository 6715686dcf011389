//! hyper peer: the shape of its TechEmpower entry (hyper 1.x, one
//! current-thread tokio runtime per worker thread, each with its own
//! SO_REUSEPORT listener, HTTP/1 only with pipeline_flush).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

static TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (body, content_type) = match req.uri().path() {
        "/plaintext" => (Bytes::from_static(b"Hello, World!"), &TEXT_PLAIN),
        "/json" => {
            let msg = Message {
                message: "Hello, World!",
            };
            // Serialized on every request.
            let body = serde_json::to_vec(&msg).expect("serialize");
            (Bytes::from(body), &APPLICATION_JSON)
        }
        _ => {
            let mut rsp = Response::new(Full::default());
            *rsp.status_mut() = StatusCode::NOT_FOUND;
            return Ok(rsp);
        }
    };
    let mut rsp = Response::new(Full::new(body));
    rsp.headers_mut().insert(CONTENT_TYPE, content_type.clone());
    Ok(rsp)
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
        let mut http = http1::Builder::new();
        http.pipeline_flush(true);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let http = http.clone();
            tokio::spawn(async move {
                // Errors here are clients going away; nothing to do about them.
                let _ = http
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    });
}

fn main() {
    let addr: SocketAddr = std::env::var("SQUALL_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".into())
        .parse()
        .expect("SQUALL_ADDR must be ip:port");
    let workers = workers();
    // Bind every listener up front so a bad address fails before any thread starts.
    let listeners: Vec<_> = (0..workers)
        .map(|_| reuseport_listener(addr).expect("bind"))
        .collect();
    eprintln!("hyper listening on {addr} with {workers} worker(s)");
    let threads: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            std::thread::Builder::new()
                .name(format!("hyper-worker-{i}"))
                .spawn(move || serve(l))
                .expect("spawn worker")
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// SQUALL_WORKERS, else every core this process may run on.
fn workers() -> usize {
    std::env::var("SQUALL_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
