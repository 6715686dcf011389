//! actix-files peer: `Files` mounted at `/static` over one directory, with its defaults
//! (ETag, Last-Modified, ranges, content type by extension), one worker per core.

use actix_files::Files;
use actix_web::{App, HttpServer};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("SQUALL_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let dir = std::env::var("SQUALL_STATIC_DIR").unwrap_or_else(|_| ".".into());
    let workers = workers();
    eprintln!("actix-files serving {dir} on {addr} with {workers} worker(s)");
    HttpServer::new(move || App::new().service(Files::new("/static", &dir)))
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
