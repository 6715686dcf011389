//! Serves one directory under `/static/`: what `scripts/bench-static.sh` measures against
//! actix-files.
//!
//! ```sh
//! SQUALL_STATIC_DIR=path/to/dir cargo run --release --example static_files
//! curl -i http://127.0.0.1:8080/static/some-file.css
//! ```
//!
//! `SQUALL_STATIC_DIR` defaults to the current directory; `SQUALL_ADDR`, `SQUALL_WORKERS`
//! and the other `SQUALL_*` settings apply as for every squall server.

use squall::{App, Error, Server, StaticFiles};

fn main() -> Result<(), Error> {
    let dir = std::env::var("SQUALL_STATIC_DIR").unwrap_or_else(|_| ".".to_owned());
    // Checked once here, so a wrong directory is a clear startup error.
    StaticFiles::new(&dir)?;
    Server::from_env()?.serve(move || {
        let files = StaticFiles::new(&dir).expect("checked before the server started");
        App::new().get("/static/{*path}", files)
    })
}
