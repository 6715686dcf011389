//! Answering a request for a static file: finding it, the preconditions and ranges, which
//! representation, and the body from memory or from disk.

use std::borrow::Cow;
use std::rc::Rc;

use glommio::io::BufferedFile;
use http::header::{
    HeaderValue, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_RANGE, ETAG, LAST_MODIFIED,
};
use http::{Method, StatusCode};

use super::cache::{Entry, Variant};
use super::conditional::{Conditions, Precondition, RangeOutcome, Validators};
use super::disk::{self, Kind, OpenError, Opened};
use super::path::{self, Tail};
use super::Inner;
use crate::body::Body;
use crate::compress::{AcceptEncoding, Coding};
use crate::error::Error;
use crate::request::Request;
use crate::response::Response;

/// The `Cache-Control` of a request whose `v` is the file's current version.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// A served path, found.
struct Found<'t> {
    /// The cache key: the path relative to the root, index file included.
    key: Cow<'t, str>,
    entry: Rc<Entry>,
    /// The plain file, when finding it just opened it.
    opened: Option<BufferedFile>,
}

/// What finding a path can end in besides a file.
enum Lookup<'t> {
    Found(Found<'t>),
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
    /// Answers one request. A file that turns out to have changed since the cache looked
    /// is looked up once more.
    pub(super) async fn serve(&self, req: &Request) -> Result<Response, Error> {
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
    async fn find<'t>(&self, tail: &Tail<'t>) -> Result<Lookup<'t>, Error> {
        let key: Cow<'t, str> = match (&self.settings.index, tail.trailing_slash) {
            (None, true) => return Err(self.refuse_directory(&tail.relative).await),
            (Some(index), true) if tail.relative.is_empty() => Cow::Owned(index.clone()),
            (Some(index), true) => Cow::Owned(format!("{}/{index}", tail.relative)),
            (_, false) => tail.relative.clone(),
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

    /// Answers `req` from a found file.
    async fn answer(&self, req: &Request, found: Found<'_>) -> Result<Response, Failure> {
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
                let body = match self.body(variant, opened, start, count, is_head).await {
                    Ok(body) => body,
                    Err(Failure::Stale) => {
                        self.files.borrow_mut().remove(&*key);
                        return Err(Failure::Stale);
                    }
                    Err(e) => return Err(e),
                };
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
            response.vary("Accept-Encoding");
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
