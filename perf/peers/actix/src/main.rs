//! actix-web peer: the shape of its TechEmpower entry (one worker per core,
//! an `App` with the two routes).

use actix_web::http::header::ContentType;
use actix_web::{App, HttpResponse, HttpServer, get};
use serde::Serialize;

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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("SQUALL_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let workers = workers();
    eprintln!("actix-web listening on {addr} with {workers} worker(s)");
    HttpServer::new(|| App::new().service(plaintext).service(json))
        .workers(workers)
        .backlog(4096)
        .bind(&addr)?
        .run()
        .await
}

/// SQUALL_WORKERS, else every core this process may run on.
fn workers() -> usize {
    std::env::var("SQUALL_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
