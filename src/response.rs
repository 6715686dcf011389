//! Responses, and the [`IntoResponse`] conversions that let handlers return plain values.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, LOCATION, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use serde::Serialize;

use crate::body::Body;
use crate::error::Error;
use crate::future::LocalFuture;
use crate::http::encode::is_safe_reason;
use crate::http::fields::list_items;
use crate::upgrade::Upgraded;

/// `text/plain; charset=utf-8`
pub const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
/// `text/html; charset=utf-8`
pub const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
/// `application/json`
pub const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
/// `application/octet-stream`
pub const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// What runs on the raw connection after a `101 Switching Protocols` response is written.
pub type OnUpgrade = Box<dyn FnOnce(Upgraded) -> LocalFuture<'static, ()>>;

/// An HTTP response: status, headers and body. Handlers build one directly or return any
/// [`IntoResponse`] value.
pub struct Response {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Body,
    /// Everything most responses lack, boxed so the common response stays small: responses
    /// move through several futures, and their size showed up as memcpy in profiles.
    extras: Option<Box<Extras>>,
}

#[derive(Default)]
struct Extras {
    reason: Option<Cow<'static, str>>,
    headers: HeaderMap,
    on_upgrade: Option<OnUpgrade>,
    error: Option<Box<Error>>,
}

/// What [`Response::headers`] lends for a response without extra headers. The connection
/// driver and the crate's own middleware read [`Response::extra_headers`] instead, so this
/// process-wide static stays off their path.
static NO_HEADERS: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(HeaderMap::new);

impl Response {
    /// An empty response with `status`.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            content_type: None,
            body: Body::Empty,
            extras: None,
        }
    }

    /// 200 with a body and content type.
    pub fn with_body(content_type: HeaderValue, body: impl Into<Body>) -> Response {
        let mut r = Response::new(StatusCode::OK);
        r.content_type = Some(content_type);
        r.body = body.into();
        r
    }

    /// 200 `text/plain; charset=utf-8`.
    pub fn text(body: impl Into<Body>) -> Response {
        Response::with_body(TEXT_PLAIN, body)
    }

    /// 200 `text/html; charset=utf-8`.
    pub fn html(body: impl Into<Body>) -> Response {
        Response::with_body(TEXT_HTML, body)
    }

    /// 200 `application/json`, serialized now. A value that cannot be serialized gives 500.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(bytes) => Response::with_body(APPLICATION_JSON, bytes),
            Err(e) => Error::from(e).into_response(),
        }
    }

    /// A redirect with `302 Found`.
    pub fn redirect(location: &str) -> Response {
        Response::redirect_with(StatusCode::FOUND, location)
    }

    /// A redirect with 301, 302, 303, 307 or 308. Any other status, or a location that is not a
    /// valid header value, gives 500 rather than a broken redirect.
    pub fn redirect_with(status: StatusCode, location: &str) -> Response {
        let redirect_statuses = [301, 302, 303, 307, 308];
        if !redirect_statuses.contains(&status.as_u16()) {
            return Error::internal(format!("{status} is not a redirect status")).into_response();
        }
        match HeaderValue::from_str(location) {
            Ok(value) => {
                let mut r = Response::new(status);
                r.headers_mut().insert(LOCATION, value);
                r
            }
            Err(_) => {
                Error::internal("redirect location is not a valid header value").into_response()
            }
        }
    }

    /// Sets the status.
    pub fn with_status(mut self, status: StatusCode) -> Response {
        self.status = status;
        self
    }

    /// Sets a custom reason phrase. One with control characters is ignored and the standard
    /// phrase is sent instead, so a reason can never split the response.
    pub fn with_reason(mut self, reason: impl Into<Cow<'static, str>>) -> Response {
        let reason = reason.into();
        self.extras_mut().reason = is_safe_reason(&reason).then_some(reason);
        self
    }

    /// Sets a header, replacing earlier values of the same name.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Response {
        self.insert_header(name, value);
        self
    }

    /// Sets a header from strings; an invalid name or value is an error, never a broken response.
    pub fn try_header(mut self, name: &str, value: &str) -> Result<Response, Error> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::internal(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| Error::internal(format!("invalid value for header {name}")))?;
        self.insert_header(name, value);
        Ok(self)
    }

    /// Sets a header in place.
    pub fn insert_header(&mut self, name: HeaderName, value: HeaderValue) {
        if name == http::header::CONTENT_TYPE {
            self.content_type = Some(value);
        } else if !is_framing_header(&name) {
            self.headers_mut().insert(name, value);
        }
    }

    /// Adds a header value without replacing earlier ones.
    pub fn append_header(&mut self, name: HeaderName, value: HeaderValue) {
        if name == http::header::CONTENT_TYPE {
            self.content_type = Some(value);
        } else if !is_framing_header(&name) {
            self.headers_mut().append(name, value);
        }
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, value: HeaderValue) -> Response {
        self.content_type = Some(value);
        self
    }

    /// Adds a `Set-Cookie` header.
    pub fn set_cookie(mut self, cookie: cookie::Cookie<'_>) -> Response {
        match HeaderValue::from_str(&cookie.encoded().to_string()) {
            Ok(v) => self.headers_mut().append(SET_COOKIE, v),
            Err(_) => return Error::internal("cookie is not a valid header value").into_response(),
        };
        self
    }

    /// Adds a `Set-Cookie` header that removes cookie `name` (at path `/`).
    pub fn clear_cookie(self, name: &str) -> Response {
        let mut c = cookie::Cookie::build((name.to_owned(), ""))
            .path("/")
            .build();
        c.make_removal();
        self.set_cookie(c)
    }

    /// Adds `name` to `Vary` unless the response already varies on it (or on `*`), so
    /// middleware and handlers that each vary the response on something keep one list with
    /// no repeated entry.
    pub fn vary(&mut self, name: &'static str) {
        if self.header_list(http::header::VARY).next().is_none() {
            self.insert_header(http::header::VARY, HeaderValue::from_static(name));
            return;
        }
        let mut list: Vec<&[u8]> = self.header_list(http::header::VARY).collect();
        if list
            .iter()
            .any(|item| *item == b"*" || item.eq_ignore_ascii_case(name.as_bytes()))
        {
            return;
        }
        list.push(name.as_bytes());
        let value = HeaderValue::from_bytes(&list.join(&b", "[..]))
            .unwrap_or(HeaderValue::from_static(name));
        self.insert_header(http::header::VARY, value);
    }

    /// The elements of every value of the comma-separated header `name` (`Vary`,
    /// `Cache-Control`…), trimmed.
    pub(crate) fn header_list(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> {
        self.extra_headers()
            .into_iter()
            .flat_map(move |headers| headers.get_all(&name))
            .flat_map(|value| list_items(value.as_bytes()))
    }

    /// Replaces the body.
    pub fn with_body_of(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into();
        self
    }

    /// A `101 Switching Protocols` response that hands the connection to `on_upgrade` once
    /// written. Protocol-specific headers (`Upgrade`, `Sec-WebSocket-Accept`…) are the
    /// caller's to add.
    pub fn upgrade(on_upgrade: OnUpgrade) -> Response {
        let mut r = Response::new(StatusCode::SWITCHING_PROTOCOLS);
        let extras = r.extras_mut();
        extras.headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        extras.on_upgrade = Some(on_upgrade);
        r
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The custom reason phrase, if any.
    pub fn reason(&self) -> Option<&str> {
        self.extras.as_ref()?.reason.as_deref()
    }

    /// The content type.
    pub fn content_type(&self) -> Option<&HeaderValue> {
        self.content_type.as_ref()
    }

    /// The headers other than `Content-Type` and framing.
    pub fn headers(&self) -> &HeaderMap {
        match &self.extras {
            Some(extras) => &extras.headers,
            None => &NO_HEADERS,
        }
    }

    /// The headers other than `Content-Type` and framing, if the response has any.
    pub(crate) fn extra_headers(&self) -> Option<&HeaderMap> {
        self.extras.as_ref().map(|extras| &extras.headers)
    }

    /// Mutable access to the headers. Framing headers set here are ignored when encoding.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.extras_mut().headers
    }

    fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The error this response was made from, if any.
    pub fn error(&self) -> Option<&Error> {
        self.extras.as_ref()?.error.as_deref()
    }

    pub(crate) fn take_error(&mut self) -> Option<Box<Error>> {
        self.extras.as_mut()?.error.take()
    }

    pub(crate) fn take_body(&mut self) -> Body {
        std::mem::replace(&mut self.body, Body::Empty)
    }

    pub(crate) fn take_upgrade(&mut self) -> Option<OnUpgrade> {
        self.extras.as_mut()?.on_upgrade.take()
    }

    /// Collects the body into memory (for tests and small responses).
    pub async fn into_bytes(mut self) -> Result<Bytes, Error> {
        match self.take_body() {
            Body::Empty => Ok(Bytes::new()),
            Body::Full(b) => Ok(b),
            Body::Stream { mut chunks, .. } => {
                use futures_lite::StreamExt;
                let mut all = Vec::new();
                while let Some(chunk) = chunks.next().await {
                    all.extend_from_slice(&chunk?);
                }
                Ok(Bytes::from(all))
            }
        }
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("headers", self.headers())
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// The server owns message framing; a handler's `Content-Length`, `Transfer-Encoding` or
/// `Connection` would contradict it, so they are dropped.
fn is_framing_header(name: &HeaderName) -> bool {
    name == http::header::CONTENT_LENGTH
        || name == http::header::TRANSFER_ENCODING
        || name == http::header::CONNECTION
}

/// Anything a handler can return.
pub trait IntoResponse {
    /// Converts into a response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        Response::with_body(OCTET_STREAM, self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::with_body(OCTET_STREAM, self)
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(StatusCode::NO_CONTENT)
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(v) => v.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

impl IntoResponse for Error {
    /// A plain-text error response; the application's error page, if any, replaces it later.
    fn into_response(self) -> Response {
        let mut r = Response::text(Bytes::from(format!("{}\n", self.public_message())))
            .with_status(self.status());
        r.extras_mut().error = Some(Box::new(self));
        r
    }
}

/// A JSON response: `Json(value)` serializes `value` when converted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        Response::json(&self.0)
    }
}

/// An HTML response: `Html(markup)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Html<T>(pub T);

impl<T: Into<Body>> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        Response::html(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_with_control_characters_is_dropped() {
        let r = Response::new(StatusCode::OK).with_reason("Fine\r\nX-Evil: 1");
        assert_eq!(r.reason(), None);
        let r = Response::new(StatusCode::OK).with_reason("All Good");
        assert_eq!(r.reason(), Some("All Good"));
    }

    #[test]
    fn redirects_accept_only_redirect_statuses() {
        let r = Response::redirect_with(StatusCode::SEE_OTHER, "/next");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[LOCATION], "/next");
        let r = Response::redirect_with(StatusCode::OK, "/next");
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let r = Response::redirect("/a\r\nb");
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn framing_headers_from_handlers_are_ignored() {
        let r = Response::text("x")
            .try_header("content-length", "99")
            .and_then(|r| r.try_header("x-custom", "1"))
            .expect("valid headers");
        assert!(r.headers().get("content-length").is_none());
        assert_eq!(r.headers()["x-custom"], "1");
    }

    #[test]
    fn errors_keep_their_status_and_hide_5xx_details() {
        let r = Error::internal("db password wrong").into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(matches!(r.body(), Body::Full(b) if b.as_ref() == b"Internal Server Error\n"));
        assert!(r.error().is_some());
    }

    #[test]
    fn cookies_are_set_and_cleared() {
        let r = Response::new(StatusCode::OK)
            .set_cookie(
                cookie::Cookie::build(("session", "a b"))
                    .http_only(true)
                    .build(),
            )
            .clear_cookie("old");
        let values: Vec<_> = r.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(values.len(), 2);
        assert_eq!(values[0], "session=a%20b; HttpOnly");
        assert!(values[1]
            .to_str()
            .expect("ascii")
            .starts_with("old=; Path=/; Max-Age=0"));
    }
}
