//! A chat server with rooms over WebSocket: the page and its script come from the app, and
//! every message reaches everyone in the room on every core (and, with `CHAT_REDIS_URL` set,
//! on every squall machine bridged to that Redis). The routes are described in `app.rs`.
//!
//! ```sh
//! cargo run --release --example chat       # then open http://127.0.0.1:8080/
//! CHAT_REDIS_URL=redis://127.0.0.1:6379 SQUALL_ADDR=127.0.0.1:8081 cargo run --release --example chat
//! ```

mod app;

use squall::db::redis;
use squall::Server;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let bridge = match std::env::var("CHAT_REDIS_URL") {
        Ok(url) => match redis::RedisConfig::from_url(&url) {
            Ok(config) => Some(config),
            Err(e) => {
                eprintln!("chat: CHAT_REDIS_URL: {e}");
                std::process::exit(2);
            }
        },
        Err(_) => None,
    };
    if let Err(e) =
        Server::from_env().and_then(|server| server.serve(move || app::app(bridge.clone())))
    {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
}
