//! Test helpers for applications built on squall.
//!
//! Two levels, as in Tornado's `AsyncHTTPTestCase`:
//!
//! - [`TestClient`] sends requests through an [`App`](crate::App)'s router, middleware and handlers in
//!   process, without a socket. It is fast, keeps cookies between requests like a browser
//!   (so a login flow can be tested), and runs inside [`run`], which gives handlers the
//!   per-core executor they expect (timers, `spawn_local`, database pools).
//! - [`serve`] starts a real server on an ephemeral loopback port, for tests that need the
//!   wire: connection handling, WebSockets, a real client library.
//!
//! ```
//! use squall::testing::{run, TestClient};
//! use squall::{App, Request};
//!
//! async fn hello(req: Request) -> String {
//!     format!("hello, {}", req.arg_or("name", "world".to_owned()).unwrap_or_default())
//! }
//!
//! run(async {
//!     let client = TestClient::new(App::new().get("/", hello)).expect("valid routes");
//!     let response = client.get("/?name=ada").send().await;
//!     assert_eq!(response.status(), 200);
//!     assert_eq!(response.text(), "hello, ada");
//! })
//! .expect("an executor");
//! ```
//!
//! Behind the head it writes, a request takes the same path as one read from a socket: the
//! same decoder, then the one dispatch step the connection driver also calls (routing,
//! middleware, error pages, debug pages). What the in-process client does not do: the
//! connection driver's work. `Date` and
//! `Server` headers, `Content-Length`, keep-alive and protocol upgrades belong to the server
//! and show only through [`serve`].

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::body::RequestBody;
use crate::config::{Config, Limits};
use crate::dispatch::Dispatcher;
use crate::error::Error;
use crate::http::decode_head;
use crate::request::{Peer, Request};
use crate::router::IntoApp;
use crate::{RunningServer, Server};

/// Runs `test` on a fresh single-core executor, the environment handlers normally run in.
pub fn run<T>(test: impl Future<Output = T>) -> Result<T, Error> {
    let executor = glommio::LocalExecutorBuilder::default()
        .make()
        .map_err(|e| Error::startup(format!("cannot start a test executor: {e}")))?;
    Ok(executor.run(test))
}

/// Starts `app` on a real server at an ephemeral loopback port with one worker; the server
/// stops when the returned handle is dropped. Use
/// [`RunningServer::local_addr`] to connect.
pub fn serve<F, A>(app: F) -> Result<RunningServer, Error>
where
    F: Fn() -> A + Send + Sync + 'static,
    A: IntoApp,
{
    let config = Config::default()
        .addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .workers(1)
        .shutdown_timeout(std::time::Duration::from_secs(2));
    Server::new(config).spawn(app)
}

/// An in-process client for one application; see the [module docs](self).
pub struct TestClient {
    dispatcher: Dispatcher,
    cookies: RefCell<Vec<(String, String)>>,
    limits: Limits,
}

impl TestClient {
    /// A client for `app` (an [`App`](crate::App), or the `Result` a fallible factory returns). Its
    /// error and route mistakes are reported here, as the server would at startup.
    pub fn new(app: impl IntoApp) -> Result<TestClient, Error> {
        Ok(TestClient {
            dispatcher: Dispatcher::new(app.into_app()?.into_router(Vec::new())?, false),
            cookies: RefCell::default(),
            limits: Limits::default(),
        })
    }

    /// A request with `method` for `target` (path and query).
    pub fn request(&self, method: Method, target: &str) -> TestRequest<'_> {
        TestRequest {
            client: self,
            method,
            target: target.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A `GET` request.
    pub fn get(&self, target: &str) -> TestRequest<'_> {
        self.request(Method::GET, target)
    }

    /// A `POST` request.
    pub fn post(&self, target: &str) -> TestRequest<'_> {
        self.request(Method::POST, target)
    }

    /// A `PUT` request.
    pub fn put(&self, target: &str) -> TestRequest<'_> {
        self.request(Method::PUT, target)
    }

    /// A `DELETE` request.
    pub fn delete(&self, target: &str) -> TestRequest<'_> {
        self.request(Method::DELETE, target)
    }

    /// The value of the cookie `name` the client holds.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// Sets (or, with `None`, forgets) a cookie the client will send.
    pub fn set_cookie(&self, name: &str, value: Option<&str>) {
        let mut cookies = self.cookies.borrow_mut();
        cookies.retain(|(n, _)| n != name);
        if let Some(value) = value {
            cookies.push((name.to_owned(), value.to_owned()));
        }
    }

    fn remember_cookies(&self, headers: &HeaderMap) {
        for value in headers.get_all(http::header::SET_COOKIE) {
            let Some(cookie) = value
                .to_str()
                .ok()
                .and_then(|v| cookie::Cookie::parse_encoded(v).ok())
            else {
                continue;
            };
            let removed = cookie.max_age().is_some_and(|age| age.is_zero())
                || cookie
                    .expires_datetime()
                    .is_some_and(|at| at <= cookie::time::OffsetDateTime::now_utc());
            let value = (!removed).then(|| cookie.value().to_owned());
            self.set_cookie(cookie.name(), value.as_deref());
        }
    }
}

/// A request being built; [`send`](TestRequest::send) runs it.
pub struct TestRequest<'a> {
    client: &'a TestClient,
    method: Method,
    target: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl TestRequest<'_> {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body, as is.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("test values serialize to json");
        self.header("content-type", "application/json").body(body)
    }

    /// Sets a urlencoded form body and its content type.
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// Runs the request through the application. A request the server would refuse before
    /// routing (a malformed head, a body over the limits) answers with that status here too.
    pub async fn send(self) -> TestResponse {
        let client = self.client;
        let mut head = format!("{} {} HTTP/1.1\r\nhost: test\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let cookies: Vec<String> = (client.cookies.borrow().iter())
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if !cookies.is_empty() {
            head.push_str(&format!("cookie: {}\r\n", cookies.join("; ")));
        }
        if !self.body.is_empty() {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let decoded = match decode_head(head.as_bytes(), &client.limits) {
            Ok(Some((head, _))) => head,
            Ok(None) => return TestResponse::refused(StatusCode::BAD_REQUEST),
            Err(e) => return TestResponse::refused(e.status()),
        };
        let body = if self.body.is_empty() {
            RequestBody::empty()
        } else {
            RequestBody::buffered(self.body)
        };
        let peer = Peer::Ip(SocketAddr::from(([127, 0, 0, 1], 40_000)));
        let request = Request::new(decoded, body, peer, client.dispatcher.context().clone());
        let mut response = client.dispatcher.respond(request).await;
        let mut headers = response.headers().clone();
        if let Some(content_type) = response.content_type() {
            headers.insert(http::header::CONTENT_TYPE, content_type.clone());
        }
        client.remember_cookies(&headers);
        let status = response.status();
        let body = std::mem::replace(&mut response, crate::Response::new(status))
            .into_bytes()
            .await
            .unwrap_or_default();
        TestResponse {
            status,
            headers,
            body,
        }
    }
}

/// A response collected by a [`TestClient`].
#[derive(Debug)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    fn refused(status: StatusCode) -> TestResponse {
        TestResponse {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The first value of header `name` as text (`Content-Type` included).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&HeaderValue> {
        HeaderName::from_bytes(name.as_bytes())
            .map(|name| self.headers.get_all(name).iter().collect())
            .unwrap_or_default()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body when it is not, as a test assertion.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not the expected json ({e}): {}", self.text()))
    }
}
