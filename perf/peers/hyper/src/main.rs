//! hyper peer: the shape of its TechEmpower entry (hyper 1.x, one
//! current-thread tokio runtime per worker thread, each with its own
//! SO_REUSEPORT listener, HTTP/1 only with pipeline_flush), plus `/mib` (a 1 MiB
//! body) for the TLS benchmark. With SQUALL_TLS_CERT and SQUALL_TLS_KEY set it
//! serves https through tokio-rustls (rustls 0.23 on aws-lc-rs, TLS 1.2 and 1.3,
//! ALPN http/1.1).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

static TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
static OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// The body of `/mib`: 1 MiB, static so no request allocates it.
static MIB: [u8; 1 << 20] = [b'x'; 1 << 20];

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
        "/mib" => (Bytes::from_static(&MIB), &OCTET_STREAM),
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

/// One worker: a single-threaded runtime accepting on its own listener, with its own
/// TLS configuration (so no session cache or reference count is shared between workers).
fn serve(listener: std::net::TcpListener) {
    let tls = tls_config().map(|config| TlsAcceptor::from(Arc::new(config)));
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
            let tls = tls.clone();
            tokio::spawn(async move {
                // Errors here are clients going away; nothing to do about them.
                match tls {
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            serve_connection(&http, stream).await;
                        }
                    }
                    None => serve_connection(&http, stream).await,
                }
            });
        }
    });
}

/// HTTP/1.1 over one connection, plain or TLS; errors are the client going away.
async fn serve_connection(http: &http1::Builder, io: impl AsyncRead + AsyncWrite + Unpin) {
    let _ = http
        .serve_connection(TokioIo::new(io), service_fn(handle))
        .await;
}

/// The TLS configuration when SQUALL_TLS_CERT (PEM chain) and SQUALL_TLS_KEY (PEM key) are
/// set: rustls's defaults on the aws-lc-rs provider (the one squall uses), TLS 1.3 and 1.2,
/// ALPN http/1.1.
fn tls_config() -> Option<rustls::ServerConfig> {
    let cert = std::env::var("SQUALL_TLS_CERT").ok()?;
    let key =
        std::env::var("SQUALL_TLS_KEY").expect("SQUALL_TLS_CERT is set, so SQUALL_TLS_KEY must be");
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("reading the certificate chain {cert}: {e}"));
    let key =
        PrivateKeyDer::from_pem_file(&key).unwrap_or_else(|e| panic!("reading the key {key}: {e}"));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the key matches the certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(config)
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
    // Fail on a bad certificate before any thread starts, too.
    let scheme = if tls_config().is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!("hyper listening on {scheme}://{addr} with {workers} worker(s)");
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
