//! actix-web peer: the shape of its TechEmpower entry (one worker per core,
//! an `App` with the two routes), plus `/mib` (a 1 MiB body) for the TLS
//! benchmark. With SQUALL_TLS_CERT and SQUALL_TLS_KEY set it serves https
//! (rustls 0.23 on aws-lc-rs, TLS 1.2 and 1.3, ALPN http/1.1).

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, HttpServer, get};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;

/// The body of `/mib`: 1 MiB, static so no request allocates it.
static MIB: [u8; 1 << 20] = [b'x'; 1 << 20];

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

#[get("/plaintext")]
async fn plaintext() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("Hello, World!")
}

#[get("/json")]
async fn json() -> HttpResponse {
    let msg = Message {
        message: "Hello, World!",
    };
    // Serialized on every request.
    let body = serde_json::to_vec(&msg).expect("serialize");
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
}

#[get("/mib")]
async fn mib() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::octet_stream())
        .body(Bytes::from_static(&MIB))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("SQUALL_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let workers = workers();
    let tls = tls_config();
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("actix-web listening on {scheme}://{addr} with {workers} worker(s)");
    let server = HttpServer::new(|| App::new().service(plaintext).service(json).service(mib))
        .workers(workers)
        .backlog(4096);
    match tls {
        Some(config) => server.bind_rustls_0_23(&addr, config)?,
        None => server.bind(&addr)?,
    }
    .run()
    .await
}

/// The TLS configuration when SQUALL_TLS_CERT (PEM chain) and SQUALL_TLS_KEY (PEM key) are
/// set: rustls's defaults on the aws-lc-rs provider (the one squall uses), TLS 1.3 and 1.2.
/// actix puts `http/1.1` into the ALPN list itself (and `h2` only with its http2 feature,
/// which is off here).
fn tls_config() -> Option<rustls::ServerConfig> {
    let cert = std::env::var("SQUALL_TLS_CERT").ok()?;
    let key =
        std::env::var("SQUALL_TLS_KEY").expect("SQUALL_TLS_CERT is set, so SQUALL_TLS_KEY must be");
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("reading the certificate chain {cert}: {e}"));
    let key =
        PrivateKeyDer::from_pem_file(&key).unwrap_or_else(|e| panic!("reading the key {key}: {e}"));
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the key matches the certificate");
    Some(config)
}

/// SQUALL_WORKERS, else every core this process may run on.
fn workers() -> usize {
    std::env::var("SQUALL_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
