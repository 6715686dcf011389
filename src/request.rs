//! The request a handler receives: head, path parameters, arguments, cookies, body.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::str::FromStr;

use bytes::Bytes;
use http::Method;
use serde::de::DeserializeOwned;
use smallvec::SmallVec;

use crate::body::RequestBody;
use crate::error::Error;
use crate::http::{Head, Version};
use crate::routes::Routes;

/// What every request on a core shares: the route data (for reverse URLs), the proxies
/// whose forwarding headers are believed, and the settings toolkit modules keep per core.
pub(crate) struct RequestContext {
    pub(crate) routes: Routes,
    pub(crate) trusted_proxies: TrustedProxies,
    /// The application's per-core settings, one per type, put there by the toolkit modules
    /// while the [`App`](crate::App) is built (the signing keys, say) and looked up only
    /// when a feature that needs them is used.
    #[cfg_attr(
        not(any(feature = "auth", feature = "signed")),
        allow(dead_code, reason = "used by the auth and signed features")
    )]
    pub(crate) app_extensions: Extensions,
}

/// The peers whose forwarding headers (`X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`,
/// a forwarded request id) are believed: [`Config::trusted_proxies`](crate::Config), and
/// whether a peer on the server's Unix socket is one ([`Config::trust_unix_peers`](crate::Config)).
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustedProxies {
    pub(crate) nets: Vec<ipnet::IpNet>,
    pub(crate) unix: bool,
}

impl From<&crate::config::Config> for TrustedProxies {
    fn from(config: &crate::config::Config) -> TrustedProxies {
        TrustedProxies {
            nets: config.trusted_proxies.clone(),
            unix: config.trust_unix_peers,
        }
    }
}

impl From<Vec<ipnet::IpNet>> for TrustedProxies {
    fn from(nets: Vec<ipnet::IpNet>) -> TrustedProxies {
        TrustedProxies { nets, unix: false }
    }
}

/// Who is at the other end of a request's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A TCP client (or the proxy in front), at this address.
    Ip(SocketAddr),
    /// A process on this machine, connected to the server's Unix socket: usually a local
    /// proxy. Unix peers have no address worth reporting (a client rarely binds its end).
    Unix,
}

impl Peer {
    /// The peer's IP address and port; for a Unix peer, the unspecified address `0.0.0.0:0`,
    /// which no TCP peer can have.
    pub fn addr(self) -> SocketAddr {
        match self {
            Peer::Ip(addr) => addr,
            Peer::Unix => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Ip(addr) => addr.fmt(f),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

/// Named path parameters, as byte ranges of the request path.
#[derive(Clone, Debug, Default)]
pub(crate) struct PathParams {
    names: Option<Rc<[Box<str>]>>,
    values: SmallVec<[(u32, u32); 4]>,
}

impl PathParams {
    pub(crate) fn new(names: Rc<[Box<str>]>, values: SmallVec<[(u32, u32); 4]>) -> PathParams {
        PathParams {
            names: Some(names),
            values,
        }
    }
}

/// An HTTP request.
///
/// The parts live in one box so that a request moving into a handler and its future costs a
/// pointer copy; moving the parts by value showed up as ~10% of server CPU in memcpy.
pub struct Request {
    inner: Box<Parts>,
}

struct Parts {
    head: Head,
    params: PathParams,
    /// The index of the route whose pattern matched, in `context.routes`.
    route: Option<u32>,
    body: RequestBody,
    peer: Peer,
    context: Rc<RequestContext>,
    extensions: Extensions,
    /// The request's id, when the application turned request ids on.
    request_id: Option<http::HeaderValue>,
    /// The connection's TLS session, when it came over TLS.
    #[cfg(feature = "tls")]
    tls: Option<Rc<crate::tls::TlsSession>>,
}

impl Request {
    pub(crate) fn new(
        head: Head,
        body: RequestBody,
        peer: Peer,
        context: Rc<RequestContext>,
    ) -> Request {
        Request {
            inner: Box::new(Parts {
                head,
                params: PathParams::default(),
                route: None,
                body,
                peer,
                context,
                extensions: Extensions::default(),
                request_id: None,
                #[cfg(feature = "tls")]
                tls: None,
            }),
        }
    }

    /// Marks the request as received over TLS, with what its handshake negotiated.
    #[cfg(feature = "tls")]
    pub(crate) fn set_tls(&mut self, session: Rc<crate::tls::TlsSession>) {
        self.inner.tls = Some(session);
    }

    /// What the connection's TLS handshake negotiated (protocol, cipher suite, ALPN, SNI,
    /// the client's verified certificate), or `None` over plain HTTP.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&crate::tls::TlsSession> {
        self.inner.tls.as_deref()
    }

    /// Gives the head bytes of their own, for a request kept for a connection's whole life
    /// (a WebSocket session), so that it does not hold on to the core's shared head arena.
    pub(crate) fn detach(&mut self) {
        self.inner.head.detach();
    }

    pub(crate) fn set_route(&mut self, index: usize, params: PathParams) {
        self.inner.route = u32::try_from(index).ok();
        self.inner.params = params;
    }

    /// The index of the route whose pattern matched, for per-route bookkeeping.
    pub(crate) fn route_index(&self) -> Option<usize> {
        self.inner.route.map(|i| i as usize)
    }

    /// The pattern of the route that matched this request (`/users/{id}`), also when that
    /// route answered 405 or `OPTIONS` for the method. `None` when no pattern matched: a
    /// 404, the application's fallback, `OPTIONS *`.
    pub fn matched_route(&self) -> Option<&str> {
        let index = self.route_index()?;
        self.inner.context.routes.pattern(index)
    }

    /// This request's id (`X-Request-Id`), when the application turned request ids on with
    /// [`App::request_ids`](crate::App::request_ids): the one a trusted proxy sent, or one
    /// made for it (see [`request_id`](crate::request_id)). The response carries it too.
    pub fn request_id(&self) -> Option<&str> {
        let id = self.inner.request_id.as_ref()?;
        // Always visible ASCII: `request_id::accept` and `generate` make sure of it.
        id.to_str().ok()
    }

    /// Gives the request its id: the trusted proxy's when it sent a usable one, else a new
    /// one. The id, for the response and the log.
    pub(crate) fn assign_request_id(&mut self) -> http::HeaderValue {
        let forwarded = if self.came_through_trusted_proxy() {
            self.inner
                .head
                .header("x-request-id")
                .and_then(crate::request_id::accept)
        } else {
            None
        };
        let id = forwarded.unwrap_or_else(crate::request_id::generate);
        self.inner.request_id = Some(id.clone());
        id
    }

    /// The parsed head.
    pub fn head(&self) -> &Head {
        &self.inner.head
    }

    /// The method.
    pub fn method(&self) -> &Method {
        self.inner.head.method()
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.inner.head.version()
    }

    /// The path, still percent-encoded.
    pub fn path(&self) -> &str {
        self.inner.head.path()
    }

    /// The raw query string, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.inner.head.query()
    }

    /// The host the request was sent to (absolute-form authority, else `Host`).
    pub fn host(&self) -> Option<&str> {
        self.inner.head.authority()
    }

    /// The first value of header `name` as text; `None` if absent or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .head
            .header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.inner.head.headers()
    }

    /// The media type of the body (`Content-Type` without parameters), lowercased.
    pub fn content_type(&self) -> Option<String> {
        let value = self.header("content-type")?;
        let essence = value.split(';').next().unwrap_or("").trim();
        Some(essence.to_ascii_lowercase())
    }

    /// Path parameter `name`, percent-decoded.
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        let names = self.inner.params.names.as_deref()?;
        let at = names.iter().position(|n| &**n == name)?;
        let &(start, end) = self.inner.params.values.get(at)?;
        let raw = self.path().get(start as usize..end as usize)?;
        Some(percent_encoding::percent_decode_str(raw).decode_utf8_lossy())
    }

    /// Path parameter `name` parsed as `T`; missing or malformed → 400 naming it.
    pub fn param_as<T: FromStr>(&self, name: &str) -> Result<T, Error> {
        let value = self
            .param(name)
            .ok_or_else(|| Error::bad_request(format!("missing path parameter: {name}")))?;
        value
            .parse()
            .map_err(|_| Error::bad_request(format!("invalid path parameter: {name}")))
    }

    /// The query arguments.
    pub fn query_args(&self) -> Args {
        Args::parse(self.query().unwrap_or("").as_bytes())
    }

    /// Query argument `name` as `T`: missing or malformed → 400 naming it.
    pub fn arg<T: FromStr>(&self, name: &str) -> Result<T, Error> {
        self.query_args().get(name)
    }

    /// Query argument `name` as `T`, or `default` when absent; malformed → 400.
    pub fn arg_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, Error> {
        self.query_args().get_or(name, default)
    }

    /// The query string deserialized into `T`; failure → 400.
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_urlencoded::from_str(self.query().unwrap_or(""))
            .map_err(|e| Error::bad_request(format!("invalid query: {e}")))
    }

    /// Cookie `name`, percent-decoded.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.parsed_cookies()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    /// Every cookie the client sent.
    pub fn cookies(&self) -> Vec<cookie::Cookie<'_>> {
        self.parsed_cookies().collect()
    }

    /// The cookies as they are parsed, so that looking one up (the XSRF, locale and login
    /// cookies on every request of an app using all three) stops at the one it wants.
    fn parsed_cookies(&self) -> impl Iterator<Item = cookie::Cookie<'_>> {
        self.inner
            .head
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(|v| cookie::Cookie::split_parse_encoded(v).filter_map(Result::ok))
    }

    /// Whether the client reached the server over TLS: the connection is TLS, or a trusted
    /// proxy says so with `X-Forwarded-Proto: https`.
    pub fn is_secure(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.inner.tls.is_some() {
            return true;
        }
        self.came_through_trusted_proxy()
            && self
                .header("x-forwarded-proto")
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }

    /// The address of the socket's peer; for a connection over a Unix socket, which has
    /// none, the unspecified address `0.0.0.0:0` (see [`peer`](Request::peer)).
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer.addr()
    }

    /// Who is at the other end of the connection: a TCP peer's address, or a process
    /// connected over the server's Unix socket.
    pub fn peer(&self) -> Peer {
        self.inner.peer
    }

    /// The client's address: the peer, unless the peer is a configured trusted proxy, in which
    /// case `X-Real-IP` or the nearest untrusted address in `X-Forwarded-For`. A Unix peer
    /// that sent neither (or is not trusted) gives the unspecified address `0.0.0.0`.
    pub fn client_ip(&self) -> IpAddr {
        let peer = self.inner.peer.addr().ip();
        if !self.came_through_trusted_proxy() {
            return peer;
        }
        if let Some(ip) = self
            .header("x-real-ip")
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return ip;
        }
        let forwarded: Vec<IpAddr> = self
            .inner
            .head
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map_while(|item| item.trim().parse::<IpAddr>().ok())
            .collect();
        // Walk from the nearest hop outwards; the first address we do not trust is the client.
        forwarded
            .iter()
            .rev()
            .find(|ip| !self.is_trusted_proxy(ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer)
    }

    fn came_through_trusted_proxy(&self) -> bool {
        match self.inner.peer {
            Peer::Ip(addr) => self.is_trusted_proxy(&addr.ip()),
            Peer::Unix => self.inner.context.trusted_proxies.unix,
        }
    }

    fn is_trusted_proxy(&self, ip: &IpAddr) -> bool {
        self.inner
            .context
            .trusted_proxies
            .nets
            .iter()
            .any(|n| n.contains(ip))
    }

    /// Builds the URL of the route named `name`, filling its parameters.
    pub fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        self.inner.context.routes.url_for(name, params)
    }

    /// The application's per-core settings, for the toolkit modules that keep theirs there.
    #[cfg_attr(
        not(any(feature = "auth", feature = "signed")),
        allow(dead_code, reason = "used by the auth and signed features")
    )]
    pub(crate) fn app_extensions(&self) -> &Extensions {
        &self.inner.context.app_extensions
    }

    /// Values middleware attached to this request (a negotiated locale, a loaded user…).
    pub fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }

    /// Mutable access to the request's [`Extensions`].
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.inner.extensions
    }

    /// The body, to read in pieces.
    pub fn body_mut(&mut self) -> &mut RequestBody {
        &mut self.inner.body
    }

    /// The whole body.
    pub async fn bytes(&mut self) -> Result<Bytes, Error> {
        self.inner.body.bytes().await
    }

    /// The whole body as UTF-8 text; invalid UTF-8 → 400.
    pub async fn text(&mut self) -> Result<String, Error> {
        let bytes = self.inner.body.bytes().await?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::bad_request("request body is not valid utf-8"))
    }

    /// The body parsed as JSON: another content type → 415, invalid JSON → 400.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        let bytes = self.json_bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::bad_request(format!("invalid json: {e}")))
    }

    /// The whole body of a JSON request (`application/json` or any `+json` type); another
    /// content type → 415.
    pub(crate) async fn json_bytes(&mut self) -> Result<Bytes, Error> {
        let is_json = self
            .content_type()
            .is_some_and(|t| t == "application/json" || t.ends_with("+json"));
        if !is_json {
            return Err(Error::unsupported_media_type("application/json"));
        }
        self.inner.body.bytes().await
    }

    /// The body parsed as a urlencoded form into `T`: another content type → 415, bad
    /// fields → 400.
    pub async fn form<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        let bytes = self.form_body().await?;
        serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| Error::bad_request(format!("invalid form: {e}")))
    }

    /// Query and form arguments together, like Tornado's `get_argument`: the form body is
    /// read when the request has one, and its values follow the query's.
    pub async fn args(&mut self) -> Result<Args, Error> {
        let mut args = self.query_args();
        if self.content_type().as_deref() == Some("application/x-www-form-urlencoded") {
            let body = self.inner.body.bytes().await?;
            args.pairs.extend(Args::parse(&body).pairs);
        }
        Ok(args)
    }

    async fn form_body(&mut self) -> Result<Bytes, Error> {
        if self.content_type().as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(Error::unsupported_media_type(
                "application/x-www-form-urlencoded",
            ));
        }
        self.inner.body.bytes().await
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", self.method())
            .field("target", &self.inner.head.target())
            .field("peer", &self.inner.peer)
            .finish_non_exhaustive()
    }
}

/// Values kept one per type. A request's are how middleware hands what it worked out to the
/// handler ([`Request::extensions`]). Empty until the first insert, so a request that carries
/// none allocates nothing. Values need not be `Send`: a request never leaves its core.
#[derive(Default)]
pub struct Extensions {
    /// A few values at most, so a scan beats hashing.
    values: Vec<Extension>,
}

type Extension = (TypeId, Box<dyn Any>);

impl Extensions {
    /// Attaches `value`, returning the value of the same type it replaces.
    pub fn insert<T: 'static>(&mut self, value: T) -> Option<T> {
        let previous = self.remove::<T>();
        self.values.push((TypeId::of::<T>(), Box::new(value)));
        previous
    }

    /// The attached value of type `T`.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.values
            .iter()
            .find(|(id, _)| *id == TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_ref())
    }

    /// The attached value of type `T`, attaching `make()` first when there is none.
    #[cfg_attr(
        not(feature = "auth"),
        allow(dead_code, reason = "used by the auth feature alone")
    )]
    pub(crate) fn get_or_insert_with<T: 'static>(&mut self, make: impl FnOnce() -> T) -> &mut T {
        if self.get::<T>().is_none() {
            self.values.push((TypeId::of::<T>(), Box::new(make())));
        }
        self.get_mut()
            .expect("a value of this type is attached by now")
    }

    /// The attached value of type `T`, mutably.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.values
            .iter_mut()
            .find(|(id, _)| *id == TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_mut())
    }

    /// Detaches and returns the value of type `T`.
    pub fn remove<T: 'static>(&mut self) -> Option<T> {
        let at = self
            .values
            .iter()
            .position(|(id, _)| *id == TypeId::of::<T>())?;
        self.values
            .swap_remove(at)
            .1
            .downcast()
            .ok()
            .map(|value| *value)
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("values", &self.values.len())
            .finish()
    }
}

/// Decoded `name=value` arguments with typed access.
#[derive(Clone, Debug, Default)]
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    /// Parses `application/x-www-form-urlencoded` bytes.
    pub fn parse(input: &[u8]) -> Args {
        Args {
            pairs: form_urlencoded::parse(input)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The last value of `name` as text.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Argument `name` as `T`: missing → 400 "missing argument", malformed → 400
    /// "invalid argument".
    pub fn get<T: FromStr>(&self, name: &str) -> Result<T, Error> {
        self.opt(name)?
            .ok_or_else(|| Error::bad_request(format!("missing argument: {name}")))
    }

    /// Argument `name` as `T`, or `default` when absent; malformed → 400.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, Error> {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    /// Argument `name` as `T` if present; malformed → 400.
    pub fn opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, Error> {
        self.raw(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| Error::bad_request(format!("invalid argument: {name}")))
            })
            .transpose()
    }

    /// Every value of `name`, in order, as `T`.
    pub fn all<T: FromStr>(&self, name: &str) -> Result<Vec<T>, Error> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| {
                v.trim()
                    .parse()
                    .map_err(|_| Error::bad_request(format!("invalid argument: {name}")))
            })
            .collect()
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_hold_one_value_per_type() {
        let mut ext = Extensions::default();
        assert!(ext.get::<u32>().is_none());
        assert_eq!(ext.insert(5u32), None);
        assert_eq!(ext.insert(String::from("fr")), None);
        assert_eq!(ext.insert(7u32), Some(5));
        *ext.get_mut::<u32>().expect("inserted") += 1;
        assert_eq!(ext.get::<u32>(), Some(&8));
        assert_eq!(ext.remove::<String>().as_deref(), Some("fr"));
        assert!(ext.get::<String>().is_none());
    }

    #[test]
    fn typed_arguments_explain_what_is_wrong() {
        let args = Args::parse(b"n=5&name=a%20b&n2=x&tag=1&tag=2");
        assert_eq!(args.get::<u32>("n").expect("present"), 5);
        assert_eq!(args.raw("name"), Some("a b"));
        let e = args.get::<u32>("n2").expect_err("not a number");
        assert_eq!(e.message(), "invalid argument: n2");
        let e = args.get::<u32>("missing").expect_err("absent");
        assert_eq!(e.message(), "missing argument: missing");
        assert_eq!(args.get_or("missing", 7u8).expect("default"), 7);
        assert_eq!(args.all::<u8>("tag").expect("numbers"), vec![1, 2]);
    }
}
