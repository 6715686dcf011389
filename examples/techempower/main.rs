//! The seven TechEmpower test types, by their rules.
//!
//! ```sh
//! bash scripts/setup-db.sh                     # the world and fortune tables, once
//! cargo run --release --example techempower    # http://127.0.0.1:8080
//! ```
//!
//! Every core builds its own application: its own PostgreSQL pool (`DATABASE_URL`,
//! `SQUALL_PG_POOL_SIZE`) and its own row cache, warmed when the core starts. The queries of
//! one request are pipelined on one connection.

mod app;

use squall::db::postgres::PgConfig;
use squall::Server;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let started = PgConfig::from_env().and_then(|pg| {
        let server = Server::from_env()?;
        server.serve(move || app::app(&pg))
    });
    if let Err(e) = started {
        eprintln!("techempower: {e}");
        std::process::exit(1);
    }
}
