//! Static files: a handler that serves a directory, and versioned URLs for what it serves.
//!
//! ```no_run
//! use squall::{files::StaticFiles, App, Html, Request, Server};
//!
//! fn main() -> Result<(), squall::Error> {
//!     Server::from_env()?.serve(|| {
//!         // Built per core, like the rest of the application; clones share one cache.
//!         let files = StaticFiles::new("examples/blog/static").expect("static directory");
//!         let urls = files.clone();
//!         App::new()
//!             .get("/static/{*path}", files)
//!             .get("/", move |_req: Request| {
//!                 // "/static/css/site.css?v=3f2a…": cacheable for a year, and a new URL
//!                 // as soon as the file changes.
//!                 let css = urls.static_url("css/site.css");
//!                 async move { Html(format!("<link rel=stylesheet href=\"{css}\">")) }
//!             })
//!     })
//! }
//! ```
//!
//! ## Which file a request names
//!
//! `StaticFiles` is mounted on a catch-all route whose literal part is its URL prefix
//! (`/static/` unless [`url_prefix`](StaticFiles::url_prefix) says otherwise):
//! `/static/{*path}`. The file is named by the rest of the **request path after the
//! prefix**, taken still percent-encoded rather than from the decoded route parameter, so
//! that a separator hidden inside a segment can be told from a real one. Each segment is
//! decoded on its own and the request is refused with 403 when a segment is `.` or `..`
//! (literally or as `%2e%2e`), holds an encoded `/` (`%2F`), a backslash or NUL, is empty
//! (`a//b`, or an absolute path such as `/static//etc/passwd`), or is not UTF-8. The file is
//! then opened, and refused with 403 if its real path, symbolic links resolved, lies
//! outside the root. A missing file is 404. A directory is 403, unless an
//! [`index_file`](StaticFiles::index_file) is configured: then `dir/` serves `dir/index.html`
//! and `dir` redirects (301) to `dir/` so relative links in the page resolve.
//!
//! ## What a response carries
//!
//! - `Content-Type` from the file extension (`; charset=utf-8` for text), `Accept-Ranges:
//!   bytes`, `Last-Modified`, and an `ETag` made of the file's size and modification time —
//!   never a hash of the content, so it costs nothing to compute.
//! - `Cache-Control`: `public, max-age=31536000, immutable` when the query's `v` is the
//!   current version of the file, as [`static_url`](StaticFiles::static_url) writes it;
//!   otherwise `no-cache` (store, but revalidate every time; the `ETag` makes that a 304),
//!   or what [`cache_control`](StaticFiles::cache_control) sets.
//! - Conditional requests per RFC 9110: `If-None-Match` (lists, weak comparison, `*`)
//!   answers 304 and makes `If-Modified-Since` irrelevant; `If-Modified-Since` alone
//!   answers 304 when the file is not newer; `If-Match` / `If-Unmodified-Since` answer 412.
//!   A 304 carries `ETag`, `Last-Modified` and `Cache-Control` and no body.
//! - One range per request: `bytes=a-b`, `a-` and `-n` answer 206 with `Content-Range`
//!   (an end past the file is clamped); a range with no byte in the file answers 416 with
//!   `Content-Range: bytes */len`. Several ranges in one header answer 200 with the whole
//!   file rather than `multipart/byteranges`, which nothing common needs and which is easy to
//!   abuse. `If-Range` with the current strong `ETag` or exact `Last-Modified` keeps the
//!   range; anything else gets the whole file. Ranges apply to `GET` only (RFC 9110 14.2).
//! - `HEAD` gets the same headers, `Content-Length` included, and no body; a large file's
//!   content is not read for it (the file is still opened when its cache entry is due for a
//!   fresh look).
//! - Precompressed siblings: when `x.css.br` or `x.css.gz` exists next to `x.css` and the
//!   client's `Accept-Encoding` prefers it, it is sent with `Content-Encoding`, its own
//!   `ETag` and `Vary: Accept-Encoding` (which every response for a file with siblings
//!   carries). Its `Content-Encoding` is what tells the
//!   [`Compression`](crate::compress::Compression) middleware to leave it alone. A request
//!   with `Range` always gets the uncompressed file.
//!
//! ## Memory and disk
//!
//! Files up to [`max_cached_file_size`](StaticFiles::max_cached_file_size) (64 KiB) are
//! kept in memory, per core, in a cache bounded by [`cache_size`](StaticFiles::cache_size)
//! (16 MiB); larger files are read from disk for every request in chunks of
//! [`chunk_size`](StaticFiles::chunk_size) (128 KiB), one chunk at a time as the client
//! takes them, so a slow client holds back the reader and never a whole file in memory.
//! Answering a request does no blocking file I/O (only `static_url`'s stat and hash block;
//! see below): files are opened through io_uring, and read either straight
//! from the page cache with `preadv2(RWF_NOWAIT)` (which fails instead of waiting) or, when
//! the data is not cached, through io_uring.
//!
//! **How often the disk is asked.** What the cache knows about a file (its size,
//! modification time and inode, and whether `.br`/`.gz` siblings exist) is trusted for
//! [`revalidate_every`](StaticFiles::revalidate_every) (1 s) per core; the first request
//! after that opens the file again and compares, and an edited file is read afresh. So an
//! edit shows within that interval, and a hot small file costs the disk three opens (file
//! and two siblings) per interval per core and no system call in between. A large file is
//! opened for every `GET`, and its size and time are checked then, so it is never served
//! stale. `Duration::ZERO` checks on every request.
//!
//! [`static_url`](StaticFiles::static_url) is synchronous, for templates, and so is its
//! file access: a `stat` per file per interval, and a read of the whole file (64 KiB at a
//! time) to hash it the first time and whenever it changes. The version is the first 16
//! hex digits of the content's SHA-256, computed once per file version and per core.

mod cache;
mod conditional;
mod disk;
mod path;
mod respond;

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use http::header::HeaderValue;

use crate::error::Error;
use crate::future::LocalFuture;
use crate::handler::Handler;
use crate::request::Request;
use crate::response::{IntoResponse, Response};

use cache::{EntryWeight, FileCache, Version};

/// How `static_url` encodes a path: everything but unreserved characters and `/`.
const URL_PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// A handler serving the files under one directory; see the [module documentation](self).
///
/// Cheap to clone: clones share their settings and their per-core caches, so an application
/// can mount one clone and keep another for [`static_url`](StaticFiles::static_url).
#[derive(Clone)]
pub struct StaticFiles {
    inner: Rc<Inner>,
}

#[derive(Clone, Debug)]
struct Settings {
    root: PathBuf,
    prefix: String,
    index: Option<String>,
    max_cached_file_size: u64,
    cache_size: u64,
    revalidate_every: Duration,
    chunk_size: usize,
    precompressed: bool,
    cache_control: HeaderValue,
}

struct Inner {
    settings: Settings,
    files: RefCell<FileCache>,
    versions: RefCell<quick_cache::unsync::Cache<Box<str>, Version>>,
}

impl StaticFiles {
    /// Serves the files under `root`, mounted at `/static/`. Fails if `root` is not a
    /// readable directory, or if this system has no `/proc/self/fd` (used to check where
    /// an opened file really is).
    pub fn new(root: impl AsRef<Path>) -> Result<StaticFiles, Error> {
        let given = root.as_ref();
        let root = std::fs::canonicalize(given)
            .map_err(|e| Error::config(format!("static root {}: {e}", given.display())))?;
        if !root.is_dir() {
            return Err(Error::config(format!(
                "static root {} is not a directory",
                given.display()
            )));
        }
        if !disk::proc_fd_available() {
            return Err(Error::config(
                "static files need /proc/self/fd to confine paths to their root",
            ));
        }
        Ok(StaticFiles::with_settings(Settings {
            root,
            prefix: "/static/".to_owned(),
            index: None,
            max_cached_file_size: 64 * 1024,
            cache_size: 16 * 1024 * 1024,
            revalidate_every: Duration::from_secs(1),
            chunk_size: 128 * 1024,
            precompressed: true,
            cache_control: HeaderValue::from_static("no-cache"),
        }))
    }

    fn with_settings(settings: Settings) -> StaticFiles {
        let files = FileCache::with_weighter(1024, settings.cache_size, EntryWeight);
        StaticFiles {
            inner: Rc::new(Inner {
                settings,
                files: RefCell::new(files),
                versions: RefCell::new(quick_cache::unsync::Cache::new(4096)),
            }),
        }
    }

    /// A handler with `change` applied to its settings and empty caches of its own.
    fn reconfigured(self, change: impl FnOnce(&mut Settings)) -> StaticFiles {
        let mut settings = self.inner.settings.clone();
        change(&mut settings);
        StaticFiles::with_settings(settings)
    }

    /// The URL path the route is mounted at, as it appears in URLs (`/assets/`); slashes
    /// are added at either end if missing. The route must be `{prefix}{*path}`.
    pub fn url_prefix(self, prefix: &str) -> StaticFiles {
        let trimmed = prefix.trim_matches('/');
        let prefix = if trimmed.is_empty() {
            "/".to_owned()
        } else {
            format!("/{trimmed}/")
        };
        self.reconfigured(|s| s.prefix = prefix)
    }

    /// Serves `dir/<name>` for `dir/` (typically `index.html`). Without one, directories
    /// answer 403.
    pub fn index_file(self, name: &str) -> StaticFiles {
        let name = name.trim_matches('/').to_owned();
        self.reconfigured(|s| s.index = Some(name))
    }

    /// Files up to this size are kept in memory (default 64 KiB); larger ones are streamed
    /// from disk for every request.
    pub fn max_cached_file_size(self, bytes: u64) -> StaticFiles {
        self.reconfigured(|s| s.max_cached_file_size = bytes)
    }

    /// The memory each core's cache may hold, contents included (default 16 MiB).
    pub fn cache_size(self, bytes: u64) -> StaticFiles {
        self.reconfigured(|s| s.cache_size = bytes.max(1))
    }

    /// How long what is known about a file is trusted before the disk is asked again
    /// (default 1 s; zero asks on every request).
    pub fn revalidate_every(self, interval: Duration) -> StaticFiles {
        self.reconfigured(|s| s.revalidate_every = interval)
    }

    /// The size of the pieces large files are read and sent in (default 128 KiB, kept
    /// between 4 KiB and 4 MiB). Each connection sending a large file holds one piece until
    /// the client has taken it; 256 KiB pieces cost about 7% less CPU per 1 MiB response and
    /// twice the memory per slow client.
    pub fn chunk_size(self, bytes: usize) -> StaticFiles {
        self.reconfigured(|s| s.chunk_size = bytes.clamp(4096, 4 << 20))
    }

    /// Whether to serve `x.br` / `x.gz` siblings to clients that accept them (default yes).
    pub fn precompressed(self, enabled: bool) -> StaticFiles {
        self.reconfigured(|s| s.precompressed = enabled)
    }

    /// The `Cache-Control` of responses to requests without the current version in their
    /// URL (default `no-cache`).
    pub fn cache_control(self, value: HeaderValue) -> StaticFiles {
        self.reconfigured(|s| s.cache_control = value)
    }

    /// The directory served, canonical.
    pub fn root(&self) -> &Path {
        &self.inner.settings.root
    }

    /// The URL prefix (`/static/`).
    pub fn prefix(&self) -> &str {
        &self.inner.settings.prefix
    }

    /// The URL of `path` (relative to the root, not encoded) with its content version:
    /// `static_url("css/site.css")` is `/static/css/site.css?v=3f2a9c0d51e8b7a4`. Requests
    /// for that URL are cached for a year; editing the file changes the URL. A path that
    /// cannot be served (missing, outside the root) gets a URL without a version, and a
    /// warning in the log.
    pub fn static_url(&self, path: &str) -> String {
        let encoded: String =
            percent_encoding::utf8_percent_encode(path.trim_start_matches('/'), URL_PATH).collect();
        let mut url = format!("{}{encoded}", self.inner.settings.prefix);
        match self.inner.version_blocking(&encoded) {
            Ok(version) => {
                url.push_str("?v=");
                url.push_str(&version);
            }
            Err(e) => {
                tracing::warn!(target: "squall::files", path, "static_url without a version: {e}");
            }
        }
        url
    }
}

impl fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticFiles")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Handler for StaticFiles {
    fn call(&self, req: Request) -> LocalFuture<'static, Response> {
        let inner = Rc::clone(&self.inner);
        Box::pin(async move { inner.serve(&req).await.unwrap_or_else(Error::into_response) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        let dir = std::env::temp_dir();
        let files = StaticFiles::new(&dir).expect("temp dir exists");
        assert_eq!(files.prefix(), "/static/");
        assert_eq!(files.clone().url_prefix("assets").prefix(), "/assets/");
        assert_eq!(files.clone().url_prefix("/a/b/").prefix(), "/a/b/");
        assert_eq!(files.url_prefix("/").prefix(), "/");
    }
}
