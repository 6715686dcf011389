//! The hello-world server: plaintext, JSON and echo.
//!
//! ```sh
//! cargo run --release --example hello          # http://127.0.0.1:8080
//! SQUALL_ADDR=0.0.0.0:9000 SQUALL_WORKERS=1 cargo run --release --example hello
//! ```

use serde::Serialize;
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

async fn echo(mut req: Request) -> Result<Response, Error> {
    let content_type = req
        .header("content-type")
        .and_then(|v| squall::HeaderValue::from_str(v).ok())
        .unwrap_or(squall::response::OCTET_STREAM);
    let body = req.bytes().await?;
    Ok(Response::with_body(content_type, body))
}

fn app() -> App {
    App::new()
        .get("/", plaintext)
        .get("/plaintext", plaintext)
        .get("/json", json)
        .post("/echo", echo)
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
