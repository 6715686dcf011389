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
//! - `HEAD` gets the same headers, `Content-Length` included, and no body; a large file
//!   is not even opened for it.
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
//! All file I/O goes through io_uring and never blocks the core.
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

mod conditional;
mod disk;
mod path;

use std::cell::RefCell;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::io::BufferedFile;
use http::header::{
    HeaderValue, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_RANGE, ETAG,
    LAST_MODIFIED, VARY,
};
use http::{Method, StatusCode};

use crate::body::{Body, LocalFuture};
use crate::compress::{AcceptEncoding, Coding};
use crate::error::Error;
use crate::handler::Handler;
use crate::request::Request;
use crate::response::{IntoResponse, Response, OCTET_STREAM};

use conditional::{Conditions, Precondition, RangeOutcome, Validators};
use disk::{Kind, OpenError, Opened, Stamp};
use path::Tail;

/// The `Cache-Control` of a request whose `v` is the file's current version.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

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

type FileCache = quick_cache::unsync::Cache<Box<str>, Rc<Entry>, EntryWeight>;

/// What the cache knows about one served path.
struct Entry {
    checked: Instant,
    content_type: HeaderValue,
    identity: Variant,
    brotli: Option<Variant>,
    gzip: Option<Variant>,
}

impl Entry {
    fn has_siblings(&self) -> bool {
        self.brotli.is_some() || self.gzip.is_some()
    }
}

/// One file on disk: the plain file or a precompressed sibling.
#[derive(Clone)]
struct Variant {
    path: PathBuf,
    stamp: Stamp,
    etag: HeaderValue,
    last_modified: HeaderValue,
    modified: u64,
    /// The content, for a file small enough to keep.
    body: Option<Bytes>,
}

/// A file's content version, for `static_url` and the `v` of requests.
#[derive(Clone)]
struct Version {
    stamp: Stamp,
    tag: Rc<str>,
    checked: Instant,
}

/// Weighs cache entries by the content they hold, plus what an entry costs anyway.
#[derive(Clone, Copy)]
struct EntryWeight;

impl quick_cache::Weighter<Box<str>, Rc<Entry>> for EntryWeight {
    fn weight(&self, key: &Box<str>, entry: &Rc<Entry>) -> u64 {
        let held = |v: &Option<Variant>| v.as_ref().map_or(0, Variant::held);
        512 + key.len() as u64 + entry.identity.held() + held(&entry.brotli) + held(&entry.gzip)
    }
}

impl Variant {
    fn held(&self) -> u64 {
        self.body.as_ref().map_or(0, |b| b.len() as u64)
    }
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
    /// between 4 KiB and 4 MiB).
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

/// A served path, found.
struct Found {
    key: Box<str>,
    entry: Rc<Entry>,
    /// The plain file, when finding it just opened it.
    opened: Option<BufferedFile>,
}

/// What finding a path can end in besides a file.
enum Lookup {
    Found(Found),
    /// A directory named without its trailing slash.
    AddSlash,
}

/// Why an answer could not be completed.
enum Failure {
    /// The file changed between the cache's look and the read: look again.
    Stale,
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Error(e)
    }
}

impl Inner {
    async fn serve(&self, req: &Request) -> Result<Response, Error> {
        let settings = &self.settings;
        let Some(raw) = req.path().strip_prefix(settings.prefix.as_str()) else {
            return Err(Error::internal(format!(
                "StaticFiles for {} is mounted on a route outside that prefix",
                settings.prefix
            )));
        };
        let tail = path::sanitize(raw).map_err(|why| {
            tracing::debug!(target: "squall::files", ?why, path = req.path(), "refused");
            Error::forbidden("forbidden path")
        })?;
        for _ in 0..2 {
            let found = match self.find(&tail).await? {
                Lookup::Found(found) => found,
                Lookup::AddSlash => {
                    let location = match req.query() {
                        Some(query) => format!("{}/?{query}", req.path()),
                        None => format!("{}/", req.path()),
                    };
                    return Ok(Response::redirect_with(
                        StatusCode::MOVED_PERMANENTLY,
                        &location,
                    ));
                }
            };
            match self.answer(req, found).await {
                Ok(response) => return Ok(response),
                Err(Failure::Error(e)) => return Err(e),
                Err(Failure::Stale) => continue,
            }
        }
        Err(Error::unavailable("static file is changing"))
    }

    /// Finds the file `tail` names, from the cache while it is fresh.
    async fn find(&self, tail: &Tail) -> Result<Lookup, Error> {
        let key: Box<str> = match (&self.settings.index, tail.trailing_slash) {
            (None, true) => return Err(self.refuse_directory(&tail.relative).await),
            (Some(index), true) if tail.relative.is_empty() => index.as_str().into(),
            (Some(index), true) => format!("{}/{index}", tail.relative).into(),
            (_, false) => tail.relative.as_str().into(),
        };
        if let Some(entry) = self.fresh(&key) {
            return Ok(Lookup::Found(Found {
                key,
                entry,
                opened: None,
            }));
        }
        match self.load(&key).await {
            Ok(Some((entry, opened))) => Ok(Lookup::Found(Found { key, entry, opened })),
            Ok(None) if !tail.trailing_slash && self.settings.index.is_some() => {
                Ok(Lookup::AddSlash)
            }
            Ok(None) => Err(Error::forbidden("directory listing is not allowed")),
            Err(OpenError::Missing) if tail.trailing_slash => {
                Err(self.refuse_directory(&tail.relative).await)
            }
            Err(e) => Err(e.into_error(&key)),
        }
    }

    /// The answer to `dir/` without an index file: 403 for a directory, 404 otherwise.
    async fn refuse_directory(&self, relative: &str) -> Error {
        let root = &self.settings.root;
        match disk::open_confined(root, &root.join(relative)).await {
            Ok(Opened {
                kind: Kind::Dir, ..
            }) => Error::forbidden("directory listing is not allowed"),
            Ok(_) | Err(OpenError::Missing) => Error::not_found(),
            Err(e) => e.into_error(relative),
        }
    }

    fn fresh(&self, key: &str) -> Option<Rc<Entry>> {
        let files = self.files.borrow();
        let entry = files.get(key)?;
        (entry.checked.elapsed() < self.settings.revalidate_every).then(|| Rc::clone(entry))
    }

    /// Opens `key` and its siblings, reusing what the cache holds for files that have not
    /// changed. `None` for a directory. A large plain file comes back open, to be sent.
    async fn load(
        &self,
        key: &str,
    ) -> Result<Option<(Rc<Entry>, Option<BufferedFile>)>, OpenError> {
        let settings = &self.settings;
        let path = settings.root.join(key);
        let opened = disk::open_confined(&settings.root, &path).await?;
        match opened.kind {
            Kind::File => {}
            Kind::Dir => return Ok(None),
            Kind::Other => return Err(OpenError::Forbidden),
        }
        let previous = self.files.borrow().peek(key).cloned();
        let (identity, opened) = self
            .variant(
                path.clone(),
                opened,
                previous.as_ref().map(|p| &p.identity),
                "",
            )
            .await?;
        let (brotli, gzip) = if settings.precompressed {
            let brotli = previous.as_ref().and_then(|p| p.brotli.as_ref());
            let gzip = previous.as_ref().and_then(|p| p.gzip.as_ref());
            (
                self.sibling(&path, "br", brotli).await,
                self.sibling(&path, "gz", gzip).await,
            )
        } else {
            (None, None)
        };
        let entry = Rc::new(Entry {
            checked: Instant::now(),
            content_type: content_type_of(key),
            identity,
            brotli,
            gzip,
        });
        self.files
            .borrow_mut()
            .insert(key.into(), Rc::clone(&entry));
        Ok(Some((entry, opened)))
    }

    /// What is known about an opened file: the previous knowledge if the file has not
    /// changed, else fresh validators and, for a small file, its content. A large file's
    /// handle is handed back, to be read from.
    async fn variant(
        &self,
        path: PathBuf,
        opened: Opened,
        previous: Option<&Variant>,
        etag_suffix: &str,
    ) -> Result<(Variant, Option<BufferedFile>), OpenError> {
        let keep_open = |variant: Variant, file: BufferedFile| {
            let file = variant.body.is_none().then_some(file);
            (variant, file)
        };
        if let Some(previous) = previous.filter(|p| p.stamp == opened.stamp) {
            return Ok(keep_open(previous.clone(), opened.file));
        }
        let stamp = opened.stamp;
        let body = if stamp.len <= self.settings.max_cached_file_size {
            Some(
                disk::read_all(&opened.file, stamp.len)
                    .await
                    .map_err(OpenError::Io)?,
            )
        } else {
            None
        };
        let header = |text: String| HeaderValue::from_str(&text).map_err(std::io::Error::other);
        let variant = Variant {
            path,
            stamp,
            etag: header(stamp.etag(etag_suffix)).map_err(OpenError::Io)?,
            last_modified: header(httpdate::fmt_http_date(opened.modified))
                .map_err(OpenError::Io)?,
            modified: conditional::epoch_seconds(opened.modified),
            body,
        };
        Ok(keep_open(variant, opened.file))
    }

    /// The precompressed sibling `<path>.<extension>`, if there is one to serve.
    async fn sibling(
        &self,
        path: &Path,
        extension: &str,
        previous: Option<&Variant>,
    ) -> Option<Variant> {
        let mut name = OsString::from(path.as_os_str());
        name.push(".");
        name.push(extension);
        let path = PathBuf::from(name);
        let opened = disk::open_confined(&self.settings.root, &path).await.ok()?;
        if opened.kind != Kind::File {
            return None;
        }
        let suffix = format!("-{extension}");
        let (variant, _) = self.variant(path, opened, previous, &suffix).await.ok()?;
        Some(variant)
    }

    /// Answers `req` from a found file.
    async fn answer(&self, req: &Request, found: Found) -> Result<Response, Failure> {
        let Found {
            key,
            entry,
            mut opened,
        } = found;
        let conditions = Conditions::from_headers(req.headers());
        let (variant, coding) = choose_variant(req, &entry, conditions.has_range());
        if coding != Coding::Identity {
            opened = None;
        }
        let validators = Validators {
            etag: variant.etag.to_str().unwrap_or_default(),
            modified: variant.modified,
        };
        let cache_control = self.cache_control(req, &key, &entry.identity).await;
        let len = variant.stamp.len;
        let mut response = match conditions.evaluate(validators) {
            Precondition::NotModified => Response::new(StatusCode::NOT_MODIFIED),
            Precondition::Failed => {
                return Err(
                    Error::new(StatusCode::PRECONDITION_FAILED, "precondition failed").into(),
                )
            }
            Precondition::Proceed => {
                let range = if req.method() == Method::GET && coding == Coding::Identity {
                    conditions.range(validators, len)
                } else {
                    RangeOutcome::Full
                };
                let is_head = req.method() == Method::HEAD;
                let (status, start, count) = match range {
                    RangeOutcome::Full => (StatusCode::OK, 0, len),
                    RangeOutcome::Partial { start, end } => {
                        (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
                    }
                    RangeOutcome::Unsatisfiable => return Ok(unsatisfiable(len)),
                };
                let body = self.body(variant, opened, start, count, is_head).await?;
                let mut response =
                    Response::with_body(entry.content_type.clone(), body).with_status(status);
                if status == StatusCode::PARTIAL_CONTENT {
                    let end = start + count - 1;
                    response.insert_header(
                        CONTENT_RANGE,
                        header_value(format!("bytes {start}-{end}/{len}")),
                    );
                }
                response.insert_header(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                if coding != Coding::Identity {
                    response
                        .insert_header(CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
                }
                response
            }
        };
        response.insert_header(ETAG, variant.etag.clone());
        response.insert_header(LAST_MODIFIED, variant.last_modified.clone());
        response.insert_header(CACHE_CONTROL, cache_control);
        if entry.has_siblings() {
            response.insert_header(VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        Ok(response)
    }

    /// Bytes `start..start + count` of `variant`: from memory, or streamed from the file
    /// (opened now, unless `opened` already holds it). `HEAD` gets the length alone.
    async fn body(
        &self,
        variant: &Variant,
        opened: Option<BufferedFile>,
        start: u64,
        count: u64,
        is_head: bool,
    ) -> Result<Body, Failure> {
        if let Some(content) = &variant.body {
            // Both fit in memory: the content is held, and the range lies within it.
            let from = start as usize;
            return Ok(Body::Full(content.slice(from..from + count as usize)));
        }
        if is_head {
            return Ok(Body::sized_stream(count, futures_lite::stream::empty()));
        }
        let file = match opened {
            Some(file) => file,
            None => match disk::open_confined(&self.settings.root, &variant.path).await {
                Ok(now) if now.kind == Kind::File && now.stamp == variant.stamp => now.file,
                Ok(_) | Err(OpenError::Missing) => return Err(Failure::Stale),
                Err(e) => return Err(e.into_error("open").into()),
            },
        };
        let chunks = disk::stream(file, start, count, self.settings.chunk_size);
        Ok(Body::sized_stream(count, chunks))
    }

    /// Long-lived caching for a request whose `v` is the file's current version.
    async fn cache_control(&self, req: &Request, key: &str, identity: &Variant) -> HeaderValue {
        let fallback = || self.settings.cache_control.clone();
        let Some(query) = req.query() else {
            return fallback();
        };
        let Some(asked) = form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "v")
            .map(|(_, value)| value)
        else {
            return fallback();
        };
        match self.version(key, identity).await {
            Some(current) if *current == *asked => IMMUTABLE,
            _ => fallback(),
        }
    }

    /// The content version of the plain file, computed once per file version.
    async fn version(&self, key: &str, identity: &Variant) -> Option<Rc<str>> {
        if let Some(known) = self.versions.borrow().peek(key) {
            if known.stamp == identity.stamp {
                return Some(Rc::clone(&known.tag));
            }
        }
        let tag: Rc<str> = match &identity.body {
            Some(content) => disk::version_of_bytes(content).into(),
            None => {
                let opened = disk::open_confined(&self.settings.root, &identity.path)
                    .await
                    .ok()
                    .filter(|o| o.stamp == identity.stamp)?;
                let chunk = self.settings.chunk_size;
                disk::version_of_file(&opened.file, identity.stamp.len, chunk)
                    .await
                    .ok()?
                    .into()
            }
        };
        let version = Version {
            stamp: identity.stamp,
            tag: Rc::clone(&tag),
            checked: Instant::now(),
        };
        self.versions.borrow_mut().insert(key.into(), version);
        Some(tag)
    }

    /// `static_url`'s version of the file named by the encoded path `encoded`.
    fn version_blocking(&self, encoded: &str) -> Result<Rc<str>, String> {
        let tail = path::sanitize(encoded).map_err(|why| format!("refused path ({why:?})"))?;
        if tail.trailing_slash {
            return Err("a directory has no version".to_owned());
        }
        let key = tail.relative.as_str();
        let known = self.versions.borrow().peek(key).cloned();
        if let Some(known) = &known {
            if known.checked.elapsed() < self.settings.revalidate_every {
                return Ok(Rc::clone(&known.tag));
            }
        }
        let root = &self.settings.root;
        let path = root.join(key);
        let stamp = disk::stamp_blocking(&path).map_err(|e| e.to_string())?;
        let version = match known {
            Some(known) if known.stamp == stamp => Version {
                checked: Instant::now(),
                ..known
            },
            _ => {
                let (stamp, tag) =
                    disk::version_blocking(root, &path).map_err(|e| e.to_string())?;
                Version {
                    stamp,
                    tag: tag.into(),
                    checked: Instant::now(),
                }
            }
        };
        let tag = Rc::clone(&version.tag);
        self.versions.borrow_mut().insert(key.into(), version);
        Ok(tag)
    }
}

/// The representation to send: a precompressed sibling the client prefers, or the file.
fn choose_variant<'e>(req: &Request, entry: &'e Entry, has_range: bool) -> (&'e Variant, Coding) {
    if has_range || !entry.has_siblings() {
        return (&entry.identity, Coding::Identity);
    }
    let mut offered = smallvec::SmallVec::<[Coding; 3]>::new();
    if entry.brotli.is_some() {
        offered.push(Coding::Brotli);
    }
    if entry.gzip.is_some() {
        offered.push(Coding::Gzip);
    }
    offered.push(Coding::Identity);
    match AcceptEncoding::from_request(req).preferred(&offered) {
        Some(Coding::Brotli) => (
            entry.brotli.as_ref().unwrap_or(&entry.identity),
            Coding::Brotli,
        ),
        Some(Coding::Gzip) => (entry.gzip.as_ref().unwrap_or(&entry.identity), Coding::Gzip),
        _ => (&entry.identity, Coding::Identity),
    }
}

/// 416, saying how long the file is. Not an [`Error`], so an application's error page does
/// not replace it and lose `Content-Range`.
fn unsatisfiable(len: u64) -> Response {
    Response::text("range not satisfiable\n")
        .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
        .with_header(CONTENT_RANGE, header_value(format!("bytes */{len}")))
        .with_header(ACCEPT_RANGES, HeaderValue::from_static("bytes"))
}

/// A header value from text made of digits, letters and punctuation only.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::from_str(&text).expect("built from ASCII digits and punctuation")
}

/// The content type for a path's extension; text gets `charset=utf-8`.
fn content_type_of(key: &str) -> HeaderValue {
    let Some(mime) = mime_guess::from_path(key).first_raw() else {
        return OCTET_STREAM;
    };
    let is_text = mime.starts_with("text/") || mime == "application/javascript";
    let value = if is_text {
        HeaderValue::from_str(&format!("{mime}; charset=utf-8"))
    } else {
        HeaderValue::from_str(mime)
    };
    value.unwrap_or(OCTET_STREAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(content_type_of("css/site.css"), "text/css; charset=utf-8");
        assert_eq!(content_type_of("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type_of("logo.png"), "image/png");
        assert_eq!(content_type_of("data.json"), "application/json");
        assert_eq!(content_type_of("icon.svg"), "image/svg+xml");
        assert_eq!(content_type_of("README"), "application/octet-stream");
        assert!(content_type_of("app.js")
            .to_str()
            .expect("ascii")
            .ends_with("javascript; charset=utf-8"));
    }

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
