//! Cross-origin resource sharing, as the Fetch standard has browsers check it: which other
//! origins' pages may call this application, with which methods and headers, and whether
//! with cookies.
//!
//! [`Cors`] is a [middleware](crate::middleware); register it first so that it sees every
//! request, the router's own answers included:
//!
//! ```
//! use std::time::Duration;
//! use squall::{cors::Cors, App, Method, Request};
//!
//! let app = App::new()
//!     .wrap(
//!         Cors::new()
//!             .allow_origin("https://app.example.com")
//!             .allow_origin("https://*.example.org")
//!             .allow_methods([Method::GET, Method::POST, Method::DELETE])
//!             .allow_headers(["content-type", "x-api-key"])
//!             .expose_headers(["x-request-id"])
//!             .allow_credentials(true)
//!             .max_age(Duration::from_secs(600)),
//!     )
//!     .get("/", |_req: Request| async { "hi" });
//! ```
//!
//! What it does with a request:
//!
//! - **No `Origin`**: not a cross-origin request; the handler answers and only `Vary: Origin`
//!   is added (so that a cache never serves it to a cross-origin request).
//! - **A preflight** (`OPTIONS` with `Origin` and `Access-Control-Request-Method`): answered
//!   here, never by a handler. When the origin, the method and every requested header are
//!   allowed: 204 with `Access-Control-Allow-Origin`, `-Allow-Methods`, `-Allow-Headers`,
//!   `-Allow-Credentials` and `-Max-Age` as configured. Otherwise 403 with no CORS header,
//!   which the browser reports as a CORS failure.
//! - **Any other request with an allowed `Origin`**: the handler answers, and the response
//!   gets `Access-Control-Allow-Origin` (the origin itself, or `*` when any origin is
//!   allowed without credentials), `-Allow-Credentials` and `-Expose-Headers`.
//! - **A disallowed `Origin`**: the handler answers (a simple request reaches the server
//!   whatever CORS says; protecting state-changing requests is [`xsrf`](crate::xsrf)'s job)
//!   but the response has no CORS header, so the page cannot read it.
//!
//! Origins are compared as the browser serializes them (`scheme://host[:port]`, lowercase,
//! no path). A pattern `https://*.example.com` allows any subdomain at any depth of
//! `example.com` over `https` on the default port, and not `example.com` itself nor
//! `evil-example.com`; it is matched in one pass over the header, with no regular
//! expression. `Origin: null` (sandboxed frames, `file:` pages, some redirects) is allowed
//! only when `"null"` is listed explicitly, since any page can make a request with it.
//!
//! Mistakes in the configuration (no origin, an origin with a path, a bad pattern, any
//! origin with credentials, a header name that is not one) stop the server at startup with
//! one message naming the mistake.

use std::time::Duration;

use http::header::{
    HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE,
};
use http::{Method, StatusCode};

use crate::future::LocalFuture;
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;

/// The CORS middleware; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Cors {
    any_origin: bool,
    /// Exact origins, lowercased.
    origins: Vec<Box<str>>,
    patterns: Vec<Pattern>,
    methods: Vec<Method>,
    /// Lowercased.
    headers: Vec<HeaderName>,
    any_header: bool,
    credentials: bool,
    expose: Vec<HeaderName>,
    max_age: Option<Duration>,
    /// The first configuration mistake; reported when the server starts.
    mistake: Option<String>,
    /// Header values built once, as the settings they come from are made.
    values: Values,
}

/// `scheme://*.suffix[:port]`: the parts around the wildcard.
#[derive(Clone, Debug)]
struct Pattern {
    /// `https://`.
    scheme: Box<str>,
    /// `.example.com` or `.example.com:8443`, lowercased.
    suffix: Box<str>,
}

#[derive(Clone, Debug, Default)]
struct Values {
    methods: Option<HeaderValue>,
    headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

impl Default for Cors {
    fn default() -> Self {
        Cors::new()
    }
}

impl Cors {
    /// A policy allowing nothing yet: add at least one origin. The methods allowed start as
    /// `GET`, `HEAD` and `POST` (the ones browsers never preflight).
    pub fn new() -> Cors {
        Cors {
            any_origin: false,
            origins: Vec::new(),
            patterns: Vec::new(),
            methods: vec![Method::GET, Method::HEAD, Method::POST],
            headers: Vec::new(),
            any_header: false,
            credentials: false,
            expose: Vec::new(),
            max_age: None,
            mistake: None,
            values: Values::default(),
        }
        .refreshed()
    }

    fn mistake(&mut self, what: String) {
        self.mistake.get_or_insert(format!("cors: {what}"));
    }

    /// Allows `origin`: exact (`https://app.example.com`, `http://localhost:8080`), a pattern
    /// with a leading wildcard label (`https://*.example.com`), or `"null"`.
    pub fn allow_origin(mut self, origin: &str) -> Cors {
        let origin = origin.to_ascii_lowercase();
        if origin == "null" {
            self.origins.push(origin.into());
            return self;
        }
        let Some((scheme, authority)) = origin.split_once("://") else {
            self.mistake(format!(
                "{origin:?} is not an origin (scheme://host[:port])"
            ));
            return self;
        };
        let scheme_ok = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !authority.ends_with(']') => (host, Some(port)),
            _ => (authority, None),
        };
        let port_ok = port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
        let wildcard = host.strip_prefix("*.");
        let name = wildcard.unwrap_or(host);
        if !scheme_ok || !port_ok || !is_host(name) {
            self.mistake(format!(
                "{origin:?} is not an origin (scheme://host[:port], no path, no trailing slash)"
            ));
            return self;
        }
        match wildcard {
            None if host.contains('*') => self.mistake(format!(
                "{origin:?}: a wildcard must be the whole leftmost label (https://*.example.com)"
            )),
            None => self.origins.push(origin.into()),
            Some(name) if !name.contains('.') || name.starts_with('[') => self.mistake(format!(
                "{origin:?}: a pattern needs a domain of at least two labels after the wildcard"
            )),
            Some(_) if scheme != "http" && scheme != "https" => self.mistake(format!(
                "{origin:?}: patterns are for http and https origins"
            )),
            Some(_) => {
                let suffix = &authority[1..]; // `.example.com[:port]`
                self.patterns.push(Pattern {
                    scheme: format!("{scheme}://").into(),
                    suffix: suffix.into(),
                });
            }
        }
        self
    }

    /// Allows every origin: responses say `Access-Control-Allow-Origin: *`. Cannot be
    /// combined with credentials.
    pub fn allow_any_origin(mut self) -> Cors {
        self.any_origin = true;
        self
    }

    /// The methods a preflight may ask for (replacing the default `GET`, `HEAD`, `POST`).
    /// `GET`, `HEAD` and `POST` are always allowed by browsers without asking.
    pub fn allow_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Cors {
        self.methods = methods.into_iter().collect();
        self.refreshed()
    }

    /// The request headers a preflight may ask for (`content-type` for JSON, say); a name
    /// that is not a valid header name is a configuration mistake.
    pub fn allow_headers<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Cors {
        for name in names {
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => self.headers.push(name),
                Err(_) => self.mistake(format!("{name:?} is not a header name")),
            }
        }
        self.refreshed()
    }

    /// Allows whatever request headers a preflight asks for (it answers with the list it
    /// was asked).
    pub fn allow_any_header(mut self) -> Cors {
        self.any_header = true;
        self
    }

    /// Lets pages send cookies and HTTP authentication, and read the response
    /// (`Access-Control-Allow-Credentials: true`). Needs origins listed, not any origin.
    pub fn allow_credentials(mut self, on: bool) -> Cors {
        self.credentials = on;
        self
    }

    /// Response headers the page may read beyond the safelisted ones
    /// (`Access-Control-Expose-Headers`).
    pub fn expose_headers<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Cors {
        for name in names {
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => self.expose.push(name),
                Err(_) => self.mistake(format!("{name:?} is not a header name")),
            }
        }
        self.refreshed()
    }

    /// How long a browser may cache a preflight's answer (`Access-Control-Max-Age`, whole
    /// seconds; browsers cap it, Chromium at 2 hours).
    pub fn max_age(mut self, age: Duration) -> Cors {
        self.max_age = Some(age);
        self.refreshed()
    }

    /// The first configuration mistake, or a contradiction between settings.
    fn check(&self) -> Option<String> {
        if let Some(mistake) = &self.mistake {
            return Some(mistake.clone());
        }
        if !self.any_origin && self.origins.is_empty() && self.patterns.is_empty() {
            return Some("cors: no origin allowed (allow_origin or allow_any_origin)".into());
        }
        if self.any_origin && self.credentials {
            return Some(
                "cors: any origin with credentials: browsers refuse `*` with credentials; \
                 list the origins instead"
                    .into(),
            );
        }
        None
    }

    /// The policy with its header values built again from its settings.
    fn refreshed(mut self) -> Cors {
        let join = |items: &mut dyn Iterator<Item = &str>| {
            let text = items.collect::<Vec<_>>().join(", ");
            (!text.is_empty())
                .then(|| HeaderValue::from_str(&text).ok())
                .flatten()
        };
        self.values = Values {
            methods: join(&mut self.methods.iter().map(Method::as_str)),
            headers: join(&mut self.headers.iter().map(HeaderName::as_str)),
            expose: join(&mut self.expose.iter().map(HeaderName::as_str)),
            max_age: self.max_age.map(|age| HeaderValue::from(age.as_secs())),
        };
        self
    }

    /// Whether `origin` (the request's `Origin` header, as sent) is allowed.
    fn allows(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        self.origins.iter().any(|o| **o == *origin)
            || self.patterns.iter().any(|p| p.matches(origin))
    }

    /// Whether a preflight's method and headers are allowed.
    fn allows_preflight(&self, method: &str, headers: Option<&str>) -> bool {
        let safelisted = matches!(method, "GET" | "HEAD" | "POST");
        if !safelisted && !self.methods.iter().any(|m| m.as_str() == method) {
            return false;
        }
        if self.any_header {
            return true;
        }
        headers.unwrap_or("").split(',').map(str::trim).all(|h| {
            h.is_empty()
                || self
                    .headers
                    .iter()
                    .any(|allowed| allowed.as_str().eq_ignore_ascii_case(h))
        })
    }

    /// `Access-Control-Allow-Origin`'s value for `origin`, when it is allowed.
    fn allowed_origin(&self, origin: &str) -> Option<HeaderValue> {
        if !self.allows(origin) {
            return None;
        }
        if self.any_origin && !self.credentials {
            return Some(HeaderValue::from_static("*"));
        }
        // Always valid: it matched an allowed origin, all of whose characters are.
        HeaderValue::from_str(origin).ok()
    }

    /// `Access-Control-Allow-Origin` and `-Allow-Credentials`.
    fn allow(&self, response: &mut Response, allowed: HeaderValue) {
        response.insert_header(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        if self.credentials {
            response.insert_header(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// The answer to a preflight.
    fn preflight(&self, req: &Request, origin: &str, method: &str) -> Response {
        let requested = req.header("access-control-request-headers");
        let allowed = self
            .allowed_origin(origin)
            .filter(|_| self.allows_preflight(method, requested));
        let mut response = if let Some(allowed) = allowed {
            let mut response = Response::new(StatusCode::NO_CONTENT);
            self.allow(&mut response, allowed);
            if let Some(methods) = &self.values.methods {
                response.insert_header(ACCESS_CONTROL_ALLOW_METHODS, methods.clone());
            }
            let headers = if self.any_header {
                requested
                    .filter(|h| !h.trim().is_empty())
                    .and_then(|h| HeaderValue::from_str(h).ok())
            } else {
                self.values.headers.clone()
            };
            if let Some(headers) = headers {
                response.insert_header(ACCESS_CONTROL_ALLOW_HEADERS, headers);
            }
            if let Some(age) = &self.values.max_age {
                response.insert_header(ACCESS_CONTROL_MAX_AGE, age.clone());
            }
            response
        } else {
            Response::new(StatusCode::FORBIDDEN)
        };
        if !self.any_origin {
            response.vary("origin");
        }
        response.vary("access-control-request-method");
        response.vary("access-control-request-headers");
        response
    }
}

impl Pattern {
    /// Whether `origin` is this pattern's scheme, one or more labels, then its suffix: every
    /// byte looked at once.
    fn matches(&self, origin: &str) -> bool {
        let Some(rest) = origin.strip_prefix(&*self.scheme) else {
            return false;
        };
        let Some(labels) = rest.strip_suffix(&*self.suffix) else {
            return false;
        };
        // `labels` is what the wildcard stands for: `a` or `a.b`, never empty, never with a
        // port or anything but host characters (so `evil.com/.example.com` cannot match).
        is_host(labels)
    }
}

/// A DNS host name (or IP literal) as an origin serializes it: lowercase labels of letters,
/// digits and hyphens, separated by single dots.
fn is_host(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// A policy with a mistake is reported by [`Middleware::registration_error`], which stops the
/// server at startup.
impl Middleware for Cors {
    fn call(&self, req: Request, next: Next) -> LocalFuture<'static, Response> {
        let origin = single_origin(&req);
        let Some(origin) = origin else {
            let fut = next.run(req);
            let vary = !self.any_origin;
            return Box::pin(async move {
                let mut response = fut.await;
                if vary {
                    response.vary("origin");
                }
                response
            });
        };
        if req.method() == Method::OPTIONS {
            if let Some(method) = req.header("access-control-request-method") {
                let response = self.preflight(&req, &origin, method.trim());
                return Box::pin(std::future::ready(response));
            }
        }
        let allowed = self.allowed_origin(&origin);
        let credentials = self.credentials;
        let expose = self.values.expose.clone().filter(|_| allowed.is_some());
        let vary = !self.any_origin;
        let fut = next.run(req);
        Box::pin(async move {
            let mut response = fut.await;
            if let Some(allowed) = allowed {
                response.insert_header(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
                if credentials {
                    response.insert_header(
                        ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        HeaderValue::from_static("true"),
                    );
                }
                if let Some(expose) = expose {
                    response.insert_header(ACCESS_CONTROL_EXPOSE_HEADERS, expose);
                }
            }
            if vary {
                response.vary("origin");
            }
            response
        })
    }

    fn registration_error(&self) -> Option<String> {
        self.check()
    }
}

/// The request's one `Origin`, as text; several `Origin` headers count as none allowed.
fn single_origin(req: &Request) -> Option<String> {
    let mut origins = req
        .headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case("origin"));
    let (_, first) = origins.next()?;
    if origins.next().is_some() {
        // Not something a browser sends: no CORS headers for it (an unparseable origin).
        return Some(String::new());
    }
    Some(String::from_utf8_lossy(first).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Cors {
        Cors::new()
            .allow_origin("https://app.example.com")
            .allow_origin("http://localhost:8080")
            .allow_origin("https://*.example.org")
            .allow_methods([Method::PUT, Method::DELETE])
            .allow_headers(["content-type", "x-api-key"])
    }

    #[test]
    fn exact_origins_match_exactly() {
        let cors = policy();
        assert!(cors.allows("https://app.example.com"));
        assert!(cors.allows("http://localhost:8080"));
        for no in [
            "http://app.example.com",
            "https://app.example.com:443",
            "https://app.example.com.evil.com",
            "https://evilapp.example.com",
            "http://localhost:8081",
            "http://localhost",
            "null",
            "",
            "https://app.example.com/",
        ] {
            assert!(!cors.allows(no), "{no}");
        }
    }

    #[test]
    fn patterns_match_subdomains_and_nothing_else() {
        let cors = policy();
        for yes in [
            "https://a.example.org",
            "https://a.b.example.org",
            "https://x-1.example.org",
        ] {
            assert!(cors.allows(yes), "{yes}");
        }
        for no in [
            "https://example.org",
            "https://.example.org",
            "https://evil-example.org",
            "https://evil.com/.example.org",
            "https://evil.com?.example.org",
            "https://evil.com#.example.org",
            "https://evil.com:1@a.example.org",
            "https://a..example.org",
            "https://a.example.org:8443",
            "https://a.example.org.evil.com",
            "http://a.example.org",
            "https://A.example.org",
            "https://a b.example.org",
        ] {
            assert!(!cors.allows(no), "{no}");
        }
        // Long hostile input is one linear pass, not a backtracking search.
        let long = format!("https://{}.example.org", "a.".repeat(100_000));
        assert!(!cors.allows(&long), "longer than a host name may be");
    }

    #[test]
    fn null_is_allowed_only_when_listed() {
        assert!(!policy().allows("null"));
        let cors = Cors::new().allow_origin("null");
        assert!(cors.allows("null"));
    }

    #[test]
    fn preflight_methods_and_headers() {
        let cors = policy();
        assert!(cors.allows_preflight("PUT", Some("content-type, X-Api-Key")));
        assert!(cors.allows_preflight("GET", None), "safelisted");
        assert!(cors.allows_preflight("POST", Some("content-type")));
        assert!(!cors.allows_preflight("PATCH", None));
        assert!(!cors.allows_preflight("PUT", Some("content-type, x-other")));
        assert!(
            !cors.allows_preflight("put", None),
            "methods are case-sensitive"
        );
        let any = Cors::new().allow_any_origin().allow_any_header();
        assert!(any.allows_preflight("POST", Some("x-whatever")));
    }

    #[test]
    fn configuration_mistakes_are_named() {
        let mistake = |cors: Cors| cors.check().expect("a mistake");
        assert!(mistake(Cors::new()).contains("no origin allowed"));
        assert!(
            mistake(Cors::new().allow_any_origin().allow_credentials(true))
                .contains("any origin with credentials")
        );
        for bad in [
            "https://app.example.com/",
            "app.example.com",
            "https://app.example.com/path",
            "https://",
            "https://host:port",
            "https://*",
            "https://*.com",
            "https://a.*.example.com",
            "https://*example.com",
            "ftp+://*.example.com",
            "*://a.example.com",
        ] {
            let m = mistake(Cors::new().allow_origin(bad));
            assert!(m.starts_with("cors: "), "{bad}: {m}");
        }
        assert!(mistake(
            Cors::new()
                .allow_origin("https://a.com")
                .allow_headers(["bad header"])
        )
        .contains("not a header name"));
        assert!(Cors::new()
            .allow_origin("https://a.com")
            .allow_origin("https://*.a.com:8443")
            .allow_origin("http://[::1]:3000")
            .allow_credentials(true)
            .check()
            .is_none());
    }
}
