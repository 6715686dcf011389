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
//! `SQUALL_STATIC_COMPRESSION` puts the `Compression` middleware in front: `on` (with its
//! cache of compressed bodies), `uncached` (`cache_bytes(0)`: every response compressed
//! afresh) or `off` (the default).

use squall::compress::Compression;
use squall::{App, Error, Server, StaticFiles};

fn main() -> Result<(), Error> {
    let dir = std::env::var("SQUALL_STATIC_DIR").unwrap_or_else(|_| ".".to_owned());
    // Checked once here, so a wrong directory is a clear startup error.
    StaticFiles::new(&dir)?;
    // Some(whether compressed bodies are cached) when the middleware is on.
    let compression = match std::env::var("SQUALL_STATIC_COMPRESSION").as_deref() {
        Err(_) | Ok("off") => None,
        Ok("on") => Some(true),
        Ok("uncached") => Some(false),
        Ok(other) => {
            eprintln!("invalid SQUALL_STATIC_COMPRESSION={other:?}: expected on, uncached or off");
            std::process::exit(2);
        }
    };
    Server::from_env()?.serve(move || {
        let files = StaticFiles::new(&dir).expect("checked before the server started");
        let app = App::new().get("/static/{*path}", files);
        match compression {
            Some(true) => app.wrap(Compression::default()),
            Some(false) => app.wrap(Compression::default().cache_bytes(0)),
            None => app,
        }
    })
}
