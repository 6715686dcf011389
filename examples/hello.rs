//! The hello-world server: plaintext, JSON, echo, a WebSocket echo and a broadcast topic.
//!
//! - `GET /mib`: 1 MiB of `x` (the large-response benchmarks, `scripts/bench-tls.sh`).
//! - `GET /ws`: WebSocket echo of text and binary messages (what the Autobahn suite and the
//!   echo benchmark drive).
//! - `GET /broadcast`: a WebSocket subscribed to one topic; every message a client sends is
//!   published to every `/broadcast` connection on every core.
//!
//! ```sh
//! cargo run --release --example hello          # http://127.0.0.1:8080
//! SQUALL_TLS_CERT=cert.pem SQUALL_TLS_KEY=key.pem cargo run --release --example hello  # https
//! SQUALL_ADDR=0.0.0.0:9000 SQUALL_WORKERS=1 cargo run --release --example hello
//! ```

use std::rc::Rc;

use serde::Serialize;
use squall::hub::Hub;
use squall::ws::{self, WebSocket, WsConfig};
use squall::{App, Error, Json, Request, Response, Server};

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

async fn plaintext(_req: Request) -> &'static str {
    "Hello, World!"
}

async fn json(_req: Request) -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

/// The body of `/mib`: static, so no request allocates or fills it.
static MIB: [u8; 1 << 20] = [b'x'; 1 << 20];

async fn mib(_req: Request) -> Response {
    Response::with_body(squall::response::OCTET_STREAM, &MIB[..])
}

async fn echo(mut req: Request) -> Result<Response, Error> {
    let content_type = req
        .header("content-type")
        .and_then(|v| squall::HeaderValue::from_str(v).ok())
        .unwrap_or(squall::response::OCTET_STREAM);
    let body = req.bytes().await?;
    Ok(Response::with_body(content_type, body))
}

async fn ws_echo(req: Request, config: Rc<WsConfig>) -> Result<Response, ws::Rejection> {
    Ok(
        ws::Upgrade::with_config(req, config)?.open(|socket: WebSocket| async move {
            while let Some(message) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        }),
    )
}

const BROADCAST_TOPIC: &str = "broadcast";

async fn broadcast(req: Request) -> Result<Response, ws::Rejection> {
    Ok(ws::Upgrade::new(req)?.open(|socket: WebSocket| async move {
        let hub = Hub::current();
        let _subscription = hub.subscribe(BROADCAST_TOPIC, socket.sender());
        while let Some(message) = socket.recv().await {
            let _ = hub.publish(BROADCAST_TOPIC, message).await;
        }
    }))
}

fn app() -> App {
    // The echo endpoint takes messages as large as the Autobahn suite sends (16 MiB).
    let echo_config = Rc::new(WsConfig::default().max_message_size(16 << 20));
    App::new()
        .get("/", plaintext)
        .get("/plaintext", plaintext)
        .get("/json", json)
        .post("/echo", echo)
        .get("/mib", mib)
        .get("/ws", move |req| ws_echo(req, Rc::clone(&echo_config)))
        .get("/broadcast", broadcast)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Err(e) = Server::from_env().and_then(|server| server.serve(app)) {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
}
