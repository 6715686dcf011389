//! The opening handshake: checking an upgrade request (RFC 6455 §4.2.1) and answering it.

use std::fmt;
use std::future::Future;
use std::rc::Rc;

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use http::{HeaderName, HeaderValue, Method, StatusCode};

use super::session::{self, CloseHook, WebSocket};
use super::{CloseInfo, WsConfig};
use crate::http::fields::list_items;
use crate::http::{BodyFraming, Version};
use crate::response::{IntoResponse, Response};
use crate::Request;

const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
const SEC_WEBSOCKET_PROTOCOL: HeaderName = HeaderName::from_static("sec-websocket-protocol");
const SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");

/// Why an upgrade request was refused; answers with the status and a plain-text message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: StatusCode,
    message: &'static str,
}

impl Rejection {
    fn new(status: StatusCode, message: &'static str) -> Rejection {
        Rejection { status, message }
    }

    /// The status the refusal is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What was wrong with the request.
    pub fn message(&self) -> &'static str {
        self.message
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let response = Response::text(format!("{}\n", self.message)).with_status(self.status);
        match self.status {
            StatusCode::UPGRADE_REQUIRED => {
                response.with_header(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"))
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                response.with_header(http::header::ALLOW, HeaderValue::from_static("GET"))
            }
            _ => response,
        }
    }
}

impl From<Rejection> for Response {
    fn from(rejection: Rejection) -> Response {
        rejection.into_response()
    }
}

/// A checked upgrade request, waiting for the handler to accept it with [`Upgrade::open`] or
/// to answer something else instead (a 401 after failed authentication, say).
pub struct Upgrade {
    request: Request,
    accept_key: HeaderValue,
    protocol: Option<HeaderValue>,
    config: Rc<WsConfig>,
    on_close: Option<CloseHook>,
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrade")
            .field("path", &self.request.path())
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Upgrade {
    /// Checks `request` as a WebSocket opening handshake with the default [`WsConfig`].
    pub fn new(request: Request) -> Result<Upgrade, Rejection> {
        Upgrade::with_config(request, WsConfig::default())
    }

    /// Checks `request` against `config`: a `WsConfig`, or an `Rc<WsConfig>` that the
    /// route's connections share.
    ///
    /// Refusals: a method other than GET is 405; HTTP/1.0, a missing `Upgrade: websocket`
    /// or `Connection: upgrade`, a `Sec-WebSocket-Key` that is not 16 bytes in base64, or a
    /// body are 400; a `Sec-WebSocket-Version` other than 13 is 426 naming version 13; an
    /// `Origin` that is neither the request's host nor allowed by the config is 403.
    pub fn with_config(
        request: Request,
        config: impl Into<Rc<WsConfig>>,
    ) -> Result<Upgrade, Rejection> {
        let config = config.into();
        let accept_key = check(&request, &config)?;
        Ok(Upgrade {
            request,
            accept_key,
            protocol: None,
            config,
            on_close: None,
        })
    }

    /// The upgrade request: headers, cookies, path parameters.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn offered_protocols(&self) -> impl Iterator<Item = &str> {
        self.request
            .header("sec-websocket-protocol")
            .into_iter()
            .flat_map(|value| list_items(value.as_bytes()))
            // Items of a `&str` cut at commas and blanks are UTF-8 still.
            .filter_map(|item| std::str::from_utf8(item).ok())
    }

    /// Chooses the first of `supported` (in the server's order of preference) that the
    /// client offered, and returns it; without a match no subprotocol is chosen, and the
    /// client decides whether to go on.
    pub fn select_protocol<'a>(&mut self, supported: &[&'a str]) -> Option<&'a str> {
        let chosen = supported
            .iter()
            .copied()
            .find(|wanted| self.offered_protocols().any(|offered| offered == *wanted))?;
        self.protocol = HeaderValue::from_str(chosen).ok();
        Some(chosen)
    }

    /// Calls `hook` once the connection has ended, however it ended.
    pub fn on_close(mut self, hook: impl FnOnce(&CloseInfo) + 'static) -> Upgrade {
        self.on_close = Some(Box::new(hook));
        self
    }

    /// Accepts the upgrade: the `101` response that, once written, runs `handler` on the
    /// connection.
    pub fn open<H, F>(self, handler: H) -> Response
    where
        H: FnOnce(WebSocket) -> F + 'static,
        F: Future<Output = ()> + 'static,
    {
        let Upgrade {
            mut request,
            accept_key,
            protocol,
            config,
            on_close,
        } = self;
        // The session keeps the request for its whole life: give it bytes of its own
        // rather than a share of the core's head arena.
        request.detach();
        let mut response = Response::upgrade(Box::new(move |upgraded| {
            Box::pin(session::run(upgraded, request, config, handler, on_close))
        }));
        response.insert_header(http::header::UPGRADE, HeaderValue::from_static("websocket"));
        response.insert_header(SEC_WEBSOCKET_ACCEPT, accept_key);
        if let Some(protocol) = protocol {
            response.insert_header(SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
    }
}

/// RFC 6455 §4.2.1, plus the origin policy; returns the `Sec-WebSocket-Accept` value.
fn check(request: &Request, config: &WsConfig) -> Result<HeaderValue, Rejection> {
    use StatusCode as S;
    if request.method() != Method::GET {
        return Err(Rejection::new(
            S::METHOD_NOT_ALLOWED,
            "a websocket upgrade must be a GET",
        ));
    }
    if request.version() != Version::Http11 {
        return Err(Rejection::new(
            S::BAD_REQUEST,
            "a websocket upgrade needs HTTP/1.1",
        ));
    }
    // `Head::upgrade` is only set when `Connection` carries the `upgrade` token.
    let upgrade = request.head().upgrade().ok_or(Rejection::new(
        S::BAD_REQUEST,
        "expected `Connection: upgrade` and `Upgrade: websocket`",
    ))?;
    if !list_items(upgrade.as_bytes()).any(|p| p.eq_ignore_ascii_case(b"websocket")) {
        return Err(Rejection::new(
            S::BAD_REQUEST,
            "expected `Upgrade: websocket`",
        ));
    }
    if request.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Rejection::new(
            S::UPGRADE_REQUIRED,
            "unsupported websocket version: this server speaks version 13",
        ));
    }
    let key = request
        .header("sec-websocket-key")
        .map(str::trim)
        .filter(|key| is_base64_of_16_bytes(key))
        .ok_or(Rejection::new(
            S::BAD_REQUEST,
            "`Sec-WebSocket-Key` must be 16 bytes in base64",
        ))?;
    match request.head().framing() {
        BodyFraming::Empty | BodyFraming::Length(0) => {}
        BodyFraming::Length(_) | BodyFraming::Chunked => {
            return Err(Rejection::new(
                S::BAD_REQUEST,
                "a websocket upgrade request cannot carry a body",
            ));
        }
    }
    if let Some(origin) = request.header("origin") {
        if !origin_allowed(origin, request.host(), config) {
            return Err(Rejection::new(
                S::FORBIDDEN,
                "websocket connections from this origin are not allowed",
            ));
        }
    }
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| Rejection::new(S::INTERNAL_SERVER_ERROR, "could not derive the accept key"))
}

/// Whether `key` is the canonical base64 of 16 bytes; the standard engine refuses missing
/// padding and non-zero trailing bits.
fn is_base64_of_16_bytes(key: &str) -> bool {
    use base64::Engine;
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|bytes| bytes.len() == 16)
}

/// Same-host origins are allowed, so are those configured; a browser always sends `Origin`,
/// other clients usually do not, and those are not checked here.
fn origin_allowed(origin: &str, host: Option<&str>, config: &WsConfig) -> bool {
    if config.any_origin
        || config
            .allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_16_bytes_of_canonical_base64() {
        assert!(is_base64_of_16_bytes("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_base64_of_16_bytes("dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!is_base64_of_16_bytes("dGhlIHNhbXBsZSBub25jZR=="));
        assert!(!is_base64_of_16_bytes("dGhlIHNhbXBsZSBub25j*Q=="));
        assert!(!is_base64_of_16_bytes("c2hvcnQ="));
        assert!(!is_base64_of_16_bytes(""));
    }

    #[test]
    fn the_accept_key_is_rfc_6455s_example() {
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn origins_match_the_host_or_the_allow_list() {
        let config = WsConfig::default().allow_origin("https://App.Example");
        let allowed = |origin, host| origin_allowed(origin, host, &config);
        assert!(allowed("http://localhost:8080", Some("localhost:8080")));
        assert!(allowed("https://LOCALHOST:8080", Some("localhost:8080")));
        assert!(allowed("https://app.example", Some("api.example")));
        assert!(!allowed("http://localhost:8081", Some("localhost:8080")));
        assert!(!allowed("null", Some("localhost:8080")));
        assert!(!allowed("http://evil.example", None));
        assert!(origin_allowed(
            "http://evil.example",
            None,
            &WsConfig::default().allow_any_origin()
        ));
    }
}
