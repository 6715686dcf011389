//! Routes: method + path patterns (matchit), 404/405, automatic HEAD and OPTIONS, named
//! routes with reverse URLs, a fallback, and the application-wide error page.
//!
//! Patterns use matchit's syntax: `/users/{id}` names a segment, `/files/{*path}` catches the
//! rest; `{{` and `}}` are literal braces.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::FutureExt;
use http::header::{HeaderValue, ALLOW};
use http::{Method, StatusCode};
use smallvec::SmallVec;

use crate::debug::RequestSummary;
use crate::error::Error;
use crate::future::LocalFuture;
use crate::handler::Handler;
use crate::middleware::{Middleware, Next, Stack};
use crate::request::{Extensions, PathParams, Request, RequestContext, TrustedProxies};
use crate::response::{IntoResponse, Response};
use crate::routes::{Pattern, Routes};

type ErrorPage = Box<dyn Fn(&Error) -> Response>;

/// An application: routes, a fallback and an error page. Built once per core by the factory
/// given to [`Server::serve`](crate::Server::serve).
///
/// The toolkit modules add the settings of their features, kept per core for the requests
/// that use them: [`signing_keys`](App::signing_keys) comes from [`signed`](crate::signed),
/// [`current_user`](App::current_user) and [`login_url`](App::login_url) from
/// [`auth`](crate::auth).
pub struct App {
    table: RouteTable,
    fallback: Option<Rc<dyn Handler>>,
    error_page: Option<ErrorPage>,
    middleware: Vec<Rc<dyn Middleware>>,
    /// Per-core settings of the toolkit modules, handed to every request.
    extensions: Extensions,
    debug: bool,
    request_ids: bool,
    handler_timeout: Option<Duration>,
    max_in_flight: Option<usize>,
    max_queue_delay: Option<Duration>,
    /// The first registration mistake; reported when the server starts.
    mistake: Option<String>,
    last_route: Option<usize>,
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    /// An application with no routes.
    pub fn new() -> App {
        App {
            table: RouteTable {
                matcher: matchit::Router::new(),
                handlers: Vec::new(),
                routes: Routes::default(),
            },
            fallback: None,
            error_page: None,
            middleware: Vec::new(),
            extensions: Extensions::default(),
            debug: false,
            request_ids: false,
            handler_timeout: None,
            max_in_flight: None,
            max_queue_delay: None,
            mistake: None,
            last_route: None,
        }
    }

    /// Routes `method` requests for `pattern` to `handler`.
    pub fn route(mut self, method: Method, pattern: &str, handler: impl Handler) -> App {
        if let Some(why) = handler.registration_error() {
            self.mistake
                .get_or_insert(format!("{method} {pattern}: {why}"));
        }
        match self.table.insert(method, pattern, Rc::new(handler)) {
            Ok(index) => self.last_route = Some(index),
            Err(why) => {
                self.mistake.get_or_insert(why);
            }
        }
        self
    }

    /// Routes `GET` (and so `HEAD`) requests.
    pub fn get(self, pattern: &str, handler: impl Handler) -> App {
        self.route(Method::GET, pattern, handler)
    }

    /// Routes `POST` requests.
    pub fn post(self, pattern: &str, handler: impl Handler) -> App {
        self.route(Method::POST, pattern, handler)
    }

    /// Routes `PUT` requests.
    pub fn put(self, pattern: &str, handler: impl Handler) -> App {
        self.route(Method::PUT, pattern, handler)
    }

    /// Routes `PATCH` requests.
    pub fn patch(self, pattern: &str, handler: impl Handler) -> App {
        self.route(Method::PATCH, pattern, handler)
    }

    /// Routes `DELETE` requests.
    pub fn delete(self, pattern: &str, handler: impl Handler) -> App {
        self.route(Method::DELETE, pattern, handler)
    }

    /// Serves the health probes: `/healthz` (200 while alive) and `/readyz` (200 while
    /// serving, 503 from the moment a stop is asked for, through the drain delay). See
    /// [`health`](crate::health).
    pub fn health(self) -> App {
        self.get(crate::health::ALIVE_PATH, crate::health::alive)
            .get(crate::health::READY_PATH, crate::health::ready)
    }

    /// Debug mode: a server error answers with a page showing the error, its causes and the
    /// request (line and headers) instead of the bare status. Off by default; never turn it
    /// on in production, where error details help an attacker.
    pub fn debug(mut self, on: bool) -> App {
        self.debug = on;
        self
    }

    /// Request ids and spans: every request gets an id (`X-Request-Id` from a trusted proxy,
    /// or a new one; see [`request_id`](crate::request_id)), which
    /// [`Request::request_id`] returns, the response carries and the access log shows; and
    /// the request runs inside a `tracing` span `request` (target `squall::request`, level
    /// INFO) with fields `method`, `route` (the matched pattern), `request_id`, `status` and
    /// `latency_us`, for `tracing-opentelemetry` and similar layers to export. The span is
    /// made only when a subscriber enables it. Off by default, and then it costs nothing.
    pub fn request_ids(mut self, on: bool) -> App {
        self.request_ids = on;
        self
    }

    /// A time limit on every request's handler (with the middleware): once `limit` has
    /// passed the handler's future is dropped, which cancels whatever it was awaiting, and
    /// the client gets 503 Service Unavailable. A route with its own limit
    /// ([`handler::with_timeout`](crate::handler::with_timeout)) keeps its own instead.
    /// See [`handler`](crate::handler#time-limits) for what is released and why 503.
    /// Zero is a configuration mistake, reported at startup.
    pub fn handler_timeout(mut self, limit: Duration) -> App {
        if limit.is_zero() {
            self.mistake
                .get_or_insert("handler_timeout: a time limit of zero".to_owned());
        }
        self.handler_timeout = Some(limit);
        self
    }

    /// Load shedding: at most `limit` requests in flight per core (started and not yet
    /// answered). A request beyond it is answered at once with `503 Service Unavailable`
    /// and `Retry-After: 1`, without routing or running a handler, so that a core past its
    /// capacity keeps the latency of the requests it does take instead of letting every
    /// request wait longer (measured in BENCHMARKS.md, "Load shedding"). With shedding on,
    /// admitted handlers run as tasks in a queue below the connections' (see
    /// `router::Shedding`): requests are read and refused ahead of the work, and a handler
    /// waiting for the core counts in flight. Pick the limit from the concurrency one core
    /// sustains at the latency you promise (Little's law: requests per second × seconds per
    /// request). Zero is a configuration mistake.
    pub fn max_in_flight(mut self, limit: usize) -> App {
        if limit == 0 {
            self.mistake
                .get_or_insert("max_in_flight: a limit of zero would refuse everything".to_owned());
        }
        self.max_in_flight = Some(limit);
        self
    }

    /// Load shedding by waiting time: a probe on each core, a task among the admitted
    /// handlers, measures how late it runs (every 5 ms it sleeps and notes how much later
    /// than asked it woke: the time an admitted handler waits for the core). While that
    /// delay is over `limit`, new requests are answered at once with `503` and
    /// `Retry-After: 1`, as past [`max_in_flight`](App::max_in_flight). It bounds the wait
    /// in time rather than in requests, whatever each costs. Zero is a configuration
    /// mistake.
    pub fn max_queue_delay(mut self, limit: Duration) -> App {
        if limit.is_zero() {
            self.mistake.get_or_insert(
                "max_queue_delay: a limit of zero would refuse everything".to_owned(),
            );
        }
        self.max_queue_delay = Some(limit);
        self
    }

    /// Names the pattern of the route added last, for [`Request::url_for`].
    pub fn name(mut self, name: &str) -> App {
        match self.last_route {
            Some(index) => {
                if let Err(why) = self.table.routes.name(name, index) {
                    self.mistake.get_or_insert(why);
                }
            }
            None => {
                self.mistake
                    .get_or_insert(format!("route name {name:?} given before any route"));
            }
        }
        self
    }

    /// Answers requests that match no route (instead of 404).
    pub fn fallback(mut self, handler: impl Handler) -> App {
        if let Some(why) = handler.registration_error() {
            self.mistake.get_or_insert(format!("fallback: {why}"));
        }
        self.fallback = Some(Rc::new(handler));
        self
    }

    /// Runs `middleware` around every request; the first registered runs outermost. See
    /// [`middleware`](crate::middleware).
    pub fn wrap(mut self, middleware: impl Middleware) -> App {
        if let Some(why) = middleware.registration_error() {
            self.mistake.get_or_insert(why);
        }
        self.middleware.push(Rc::new(middleware));
        self
    }

    /// Renders every error response (404, 405, handler errors, panics) through `page`.
    pub fn error_page(mut self, page: impl Fn(&Error) -> Response + 'static) -> App {
        self.error_page = Some(Box::new(page));
        self
    }

    /// Builds the URL of route `name` with `params` filled in and percent-encoded.
    pub fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, Error> {
        self.table.routes.url_for(name, params)
    }

    /// The per-core settings the toolkit modules keep for their features (the signing keys,
    /// say); every request of this application reaches them.
    #[cfg_attr(
        not(any(feature = "auth", feature = "signed")),
        allow(dead_code, reason = "used by the auth and signed features")
    )]
    pub(crate) fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Freezes the application for serving on this core.
    pub(crate) fn into_router(
        self,
        trusted_proxies: impl Into<TrustedProxies>,
    ) -> Result<Router, Error> {
        if let Some(mistake) = self.mistake {
            return Err(Error::config(format!("invalid routes: {mistake}")));
        }
        let RouteTable {
            matcher,
            handlers,
            routes,
        } = self.table;
        let refusals = handlers
            .iter()
            .map(|route| {
                let allow = allow_header(route.methods.iter().map(|(m, _)| m));
                RouteRefusals {
                    options: Rc::new(RouterAnswer::Options(allow.clone())),
                    not_allowed: Rc::new(RouterAnswer::MethodNotAllowed(allow)),
                }
            })
            .collect();
        let all_methods = handlers
            .iter()
            .flat_map(|r| r.methods.iter().map(|(m, _)| m));
        let server_options = Rc::new(RouterAnswer::Options(allow_header(all_methods)));
        Ok(Router {
            context: Rc::new(RequestContext {
                routes,
                trusted_proxies: trusted_proxies.into(),
                app_extensions: self.extensions,
            }),
            refusals,
            not_found: self
                .fallback
                .unwrap_or_else(|| Rc::new(RouterAnswer::NotFound)),
            server_options,
            matcher,
            handlers,
            error_page: self.error_page,
            middleware: (!self.middleware.is_empty()).then(|| self.middleware.into()),
            debug: self.debug,
            request_ids: self.request_ids,
            handler_timeout: self.handler_timeout,
            shedding: (self.max_in_flight.is_some() || self.max_queue_delay.is_some())
                .then(|| Shedding::new(self.max_in_flight, self.max_queue_delay)),
        })
    }
}

/// What an application factory returns: an [`App`], or `Result<App, Error>` when building it
/// can fail (a pool that cannot be configured, a missing directory) — the error then stops
/// the server at startup with its message.
pub trait IntoApp {
    /// The application, or why there is none.
    fn into_app(self) -> Result<App, Error>;
}

impl IntoApp for App {
    fn into_app(self) -> Result<App, Error> {
        Ok(self)
    }
}

impl IntoApp for Result<App, Error> {
    fn into_app(self) -> Result<App, Error> {
        self
    }
}

/// The routes of an application while it is built: the matcher, what answers each route,
/// and the route data (patterns, names) that requests read once it is frozen.
struct RouteTable {
    matcher: matchit::Router<usize>,
    /// Per route, by the index [`Routes`] gives it.
    handlers: Vec<RouteHandlers>,
    routes: Routes,
}

/// The handlers of one route, by method, and the names of its parameters.
struct RouteHandlers {
    methods: SmallVec<[(Method, Rc<dyn Handler>); 2]>,
    param_names: Rc<[Box<str>]>,
}

impl RouteTable {
    fn insert(
        &mut self,
        method: Method,
        pattern: &str,
        handler: Rc<dyn Handler>,
    ) -> Result<usize, String> {
        let index = match self.matcher.at(pattern) {
            Ok(found) if self.routes.pattern(*found.value) == Some(pattern) => *found.value,
            _ => {
                let parsed = Pattern::parse(pattern)?;
                let index = self.handlers.len();
                self.matcher
                    .insert(pattern, index)
                    .map_err(|e| format!("{pattern}: {e}"))?;
                self.handlers.push(RouteHandlers {
                    methods: SmallVec::new(),
                    param_names: Rc::clone(parsed.param_names()),
                });
                let pushed = self.routes.push(parsed);
                debug_assert_eq!(pushed, index, "handlers and patterns share indices");
                index
            }
        };
        let route = &mut self.handlers[index];
        if route.methods.iter().any(|(m, _)| *m == method) {
            return Err(format!("{method} {pattern} is routed twice"));
        }
        route.methods.push((method, handler));
        Ok(index)
    }
}

/// An application ready to serve on one core.
pub(crate) struct Router {
    matcher: matchit::Router<usize>,
    /// Per route, by index.
    handlers: Vec<RouteHandlers>,
    context: Rc<RequestContext>,
    /// Per route, by index: the router's answers to `OPTIONS` and to a method the route does
    /// not serve, each with its `Allow` list built once here rather than per request.
    refusals: Vec<RouteRefusals>,
    /// What answers a path no route matches: the fallback, or a 404.
    not_found: Rc<dyn Handler>,
    /// The answer to `OPTIONS *`.
    server_options: Rc<dyn Handler>,
    error_page: Option<ErrorPage>,
    /// `None` when the application has no middleware, so it pays nothing for the chain.
    middleware: Option<Stack>,
    debug: bool,
    request_ids: bool,
    handler_timeout: Option<Duration>,
    /// The per-core bound on requests in flight, when the application set one.
    shedding: Option<Shedding>,
}

/// This core's load-shedding state: requests in flight against their bound
/// ([`App::max_in_flight`]), and whether handlers wait longer than allowed for the core
/// ([`App::max_queue_delay`], set by the core's probe).
///
/// ## Refusing ahead of the work
///
/// With shedding on, admitted handlers run as tasks of their own in a task queue of lower
/// priority than the connections' (`handler_queue`). A core past its capacity then still
/// reads every request promptly and answers the ones over the bound with 503 at once, while
/// the admitted ones wait their turn in the handler queue; and handlers that compute
/// without awaiting pile up there, in flight, where the bounds see them. Were handlers
/// polled inside their connection's task, as they are without shedding, a refused request
/// would wait behind the work of every connection ahead of it before anyone read it.
pub(crate) struct Shedding {
    limit: usize,
    in_flight: Rc<Cell<usize>>,
    max_queue_delay: Option<Duration>,
    lagging: Cell<bool>,
    /// Made on first use, on the core's executor.
    handler_queue: Cell<Option<glommio::TaskQueueHandle>>,
}

/// The connections' task queue has glommio's default 1,000 shares; handlers get a tenth of
/// that. Shares decide only while both queues have work: the connections' tasks are short
/// (read, parse, admit or refuse, write), so handlers get the rest of the core.
const HANDLER_QUEUE_SHARES: usize = 100;
/// While handlers are queued, the core stops running them this often to look for new
/// events, so that reading and refusing requests waits at most about this long.
const HANDLER_QUEUE_PREEMPT: Duration = Duration::from_millis(1);

/// One admitted request's place in the count, given back when it is dropped: answered,
/// or abandoned by a client that went away.
pub(crate) struct InFlight(Rc<Cell<usize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Shedding {
    fn new(max_in_flight: Option<usize>, max_queue_delay: Option<Duration>) -> Shedding {
        Shedding {
            limit: max_in_flight.unwrap_or(usize::MAX),
            in_flight: Rc::new(Cell::new(0)),
            max_queue_delay,
            lagging: Cell::new(false),
            handler_queue: Cell::new(None),
        }
    }

    /// The task queue admitted handlers run in (see the type's docs), made on first use.
    pub(crate) fn handler_queue(&self) -> glommio::TaskQueueHandle {
        if let Some(queue) = self.handler_queue.get() {
            return queue;
        }
        let queue = glommio::executor().create_task_queue(
            glommio::Shares::Static(HANDLER_QUEUE_SHARES),
            glommio::Latency::Matters(HANDLER_QUEUE_PREEMPT),
            "squall-handlers",
        );
        self.handler_queue.set(Some(queue));
        queue
    }

    /// Runs an admitted request's handler as a task in the handler queue; the returned
    /// future waits for its response. Dropping it (the client went away) cancels the task.
    pub(crate) fn run_admitted(
        &self,
        pending: LocalFuture<'static, Response>,
    ) -> LocalFuture<'static, Response> {
        // A panic is carried out of the task and resumed in the caller's future, where
        // `Router::complete` turns it into a 500 as for any handler.
        let work = AssertUnwindSafe(pending).catch_unwind();
        match glommio::spawn_local_into(work, self.handler_queue()) {
            Ok(task) => Box::pin(async move {
                match task.await {
                    Ok(response) => response,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }),
            // Only a queue that no longer exists fails, and this core's lives as long as it.
            Err(_) => Box::pin(std::future::ready(Shedding::refusal())),
        }
    }

    /// The waiting time past which requests are refused, if the application set one: the
    /// server runs the probe ([`note_queue_delay`](Self::note_queue_delay)) only then.
    pub(crate) fn max_queue_delay(&self) -> Option<Duration> {
        self.max_queue_delay
    }

    /// The probe's latest measure of how long a ready task waits for the core.
    pub(crate) fn note_queue_delay(&self, delay: Duration) {
        self.lagging
            .set(self.max_queue_delay.is_some_and(|limit| delay > limit));
    }

    /// A place for one more request, or `None` when the core is at a bound.
    pub(crate) fn admit(&self) -> Option<InFlight> {
        let now = self.in_flight.get();
        if now >= self.limit || self.lagging.get() {
            return None;
        }
        self.in_flight.set(now + 1);
        Some(InFlight(Rc::clone(&self.in_flight)))
    }

    /// The answer to a request refused at the bound.
    pub(crate) fn refusal() -> Response {
        Error::unavailable("overloaded: too many requests in flight, retry shortly")
            .into_response()
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
    }
}

fn panic_response(panic: Box<dyn std::any::Any + Send>) -> Response {
    let what = crate::error::panic_message(&*panic);
    Error::internal(format!("handler panicked: {what}")).into_response()
}

/// What the router decided for one request: who answers it (a handler of the application's,
/// or one of the router's own answers), and the route whose pattern matched, if one did.
struct Routed<'a> {
    handler: &'a Rc<dyn Handler>,
    route: Option<(usize, PathParams)>,
}

/// A route's answers for methods it has no handler for.
struct RouteRefusals {
    options: Rc<dyn Handler>,
    not_allowed: Rc<dyn Handler>,
}

/// A response the router decides without a handler of the application's.
enum RouterAnswer {
    Options(HeaderValue),
    MethodNotAllowed(HeaderValue),
    NotFound,
}

impl RouterAnswer {
    fn response(&self) -> Response {
        match self {
            RouterAnswer::Options(allow) => {
                Response::new(StatusCode::NO_CONTENT).with_header(ALLOW, allow.clone())
            }
            RouterAnswer::MethodNotAllowed(allow) => {
                Error::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
                    .into_response()
                    .with_header(ALLOW, allow.clone())
            }
            RouterAnswer::NotFound => Error::not_found().into_response(),
        }
    }
}

/// The router's answers are handlers, so they run through the middleware like any other.
impl Handler for RouterAnswer {
    fn call(&self, _req: Request) -> LocalFuture<'static, Response> {
        Box::pin(std::future::ready(self.response()))
    }
}

impl Router {
    pub(crate) fn context(&self) -> &Rc<RequestContext> {
        &self.context
    }

    /// Whether the application turned request ids and spans on.
    pub(crate) fn request_ids(&self) -> bool {
        self.request_ids
    }

    /// The bound on requests in flight, if the application set one.
    pub(crate) fn shedding(&self) -> Option<&Shedding> {
        self.shedding.as_ref()
    }

    fn route(&self, method: &Method, path: &str) -> Routed<'_> {
        if path == "*" {
            // `OPTIONS *` asks about the server as a whole (the parser allows `*` nowhere else).
            return Routed {
                handler: &self.server_options,
                route: None,
            };
        }
        let Ok(found) = self.matcher.at(path) else {
            return Routed {
                handler: &self.not_found,
                route: None,
            };
        };
        let index = *found.value;
        let route = &self.handlers[index];
        let handler = route.methods.iter().find(|(m, _)| m == method).or_else(|| {
            (method == Method::HEAD)
                .then(|| route.methods.iter().find(|(m, _)| *m == Method::GET))
                .flatten()
        });
        let Some((_, handler)) = handler else {
            let refusals = &self.refusals[index];
            return Routed {
                handler: if method == Method::OPTIONS {
                    &refusals.options
                } else {
                    &refusals.not_allowed
                },
                route: Some((index, PathParams::default())),
            };
        };
        let params = if found.params.is_empty() {
            PathParams::default()
        } else {
            let values = found
                .params
                .iter()
                .map(|(_, v)| {
                    // matchit's values are slices of `path`; keep their offsets.
                    let start = v.as_ptr() as usize - path.as_ptr() as usize;
                    (start as u32, (start + v.len()) as u32)
                })
                .collect();
            PathParams::new(Rc::clone(&route.param_names), values)
        };
        Routed {
            handler,
            route: Some((index, params)),
        }
    }

    /// Routes a request: marks it with the route that matched, and says who answers it.
    pub(crate) fn route_request(&self, req: &mut Request) -> &Rc<dyn Handler> {
        let Routed { handler, route } = self.route(req.method(), req.path());
        if let Some((index, params)) = route {
            req.set_route(index, params);
        }
        handler
    }

    /// Starts the handler [`route_request`](Router::route_request) chose (through the
    /// middleware, if any). The router's own answers (404, 405, OPTIONS) are handlers too,
    /// and a handler that panics before returning its future becomes a ready 500; one boxed
    /// future either way keeps the connection's awaiting state to a pointer.
    pub(crate) fn start(
        &self,
        handler: &Rc<dyn Handler>,
        req: Request,
    ) -> LocalFuture<'static, Response> {
        let summary = self.debug.then(|| RequestSummary::of(&req));
        // A handler with a limit of its own enforces it; the application's covers the rest.
        // Asked only when there is an application-wide limit, so none costs nothing.
        let limit = self
            .handler_timeout
            .filter(|_| handler.time_limit().is_none());
        // Answers decided here still go through `complete`, which logs them and applies the
        // error page. A closure handler or middleware may panic before it returns its future.
        let start = std::panic::catch_unwind(AssertUnwindSafe(|| match &self.middleware {
            None => handler.call(req),
            Some(stack) => Next::start(Rc::clone(stack), Rc::clone(handler)).run(req),
        }));
        let mut pending =
            start.unwrap_or_else(|panic| Box::pin(std::future::ready(panic_response(panic))));
        if let Some(limit) = limit {
            pending = Box::pin(crate::handler::TimeLimited::new(limit, pending));
        }
        match summary {
            None => pending,
            Some(summary) => Box::pin(async move {
                let response = AssertUnwindSafe(pending)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(panic_response);
                crate::debug::explain(response, &summary)
            }),
        }
    }

    /// Runs a started handler to its response; a panic becomes 500.
    pub(crate) async fn complete(&self, pending: LocalFuture<'static, Response>) -> Response {
        let response = AssertUnwindSafe(pending)
            .catch_unwind()
            .await
            .unwrap_or_else(panic_response);
        self.finish(response)
    }

    /// Logs server errors and applies the application's error page.
    fn finish(&self, mut response: Response) -> Response {
        let Some(error) = response.take_error() else {
            return response;
        };
        if error.status().is_server_error() {
            tracing::error!(target: "squall::handler", status = error.status().as_u16(), "{error}");
        }
        match &self.error_page {
            // Debug mode's page for a server error (already in the response) wins.
            Some(_) if self.debug && error.status().is_server_error() => response,
            Some(page) => {
                let mut page = page(&error);
                if let Some(allow) = response.headers().get(ALLOW) {
                    page.insert_header(ALLOW, allow.clone());
                }
                page.with_status(error.status())
            }
            None => response,
        }
    }
}

/// Routing without a server, for the criterion benchmarks.
#[cfg(feature = "internals")]
pub(crate) mod bench_support {
    use super::*;

    /// A frozen application whose routing step can be timed alone.
    pub struct RouteProbe(Router);

    impl RouteProbe {
        /// Freezes `app`.
        pub fn new(app: App) -> Result<RouteProbe, Error> {
            app.into_router(Vec::new()).map(RouteProbe)
        }

        /// Routes a GET for `path`; true when a route's pattern matched.
        pub fn route_get(&self, path: &str) -> bool {
            self.0.route(&Method::GET, path).route.is_some()
        }
    }
}

fn allow_header<'a>(methods: impl Iterator<Item = &'a Method>) -> HeaderValue {
    let mut methods: Vec<&str> = methods.map(Method::as_str).collect();
    if methods.contains(&"GET") && !methods.contains(&"HEAD") {
        methods.push("HEAD");
    }
    if !methods.contains(&"OPTIONS") {
        methods.push("OPTIONS");
    }
    methods.sort_unstable();
    methods.dedup();
    HeaderValue::from_str(&methods.join(", ")).unwrap_or(HeaderValue::from_static("GET"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok(_: Request) -> &'static str {
        "ok"
    }

    #[test]
    fn patterns_fill_and_encode_parameters() {
        let app = App::new()
            .get("/users/{id}/posts/{slug}", ok)
            .name("post")
            .get("/files/{*path}", ok)
            .name("file");
        assert_eq!(
            app.url_for("post", &[("id", "4 2"), ("slug", "a/b")])
                .expect("named"),
            "/users/4%202/posts/a%2Fb"
        );
        assert_eq!(
            app.url_for("file", &[("path", "css/site.css")])
                .expect("named"),
            "/files/css/site.css"
        );
        assert!(app.url_for("post", &[("id", "1")]).is_err());
        assert!(app.url_for("nope", &[]).is_err());
    }

    #[test]
    fn registration_mistakes_fail_at_startup() {
        let app = App::new().get("/a", ok).get("/a", ok);
        let err = app.into_router(Vec::new()).err().expect("duplicate route");
        assert!(err.to_string().contains("GET /a is routed twice"), "{err}");
        let err = App::new()
            .get("/{id}", ok)
            .get("/{name}", ok)
            .into_router(Vec::new())
            .err()
            .expect("conflicting patterns");
        assert!(err.to_string().contains("invalid routes"), "{err}");
    }

    #[test]
    fn routing_decides_404_405_options_and_head() {
        use crate::testing::{run, TestClient};
        run(async {
            let client = TestClient::new(App::new().get("/a", ok).post("/a", ok)).expect("valid");
            let answer = |method: &'static str, target: &'static str| {
                let client = &client;
                async move {
                    let method = Method::from_bytes(method.as_bytes()).expect("method");
                    client.request(method, target).send().await
                }
            };
            assert_eq!(answer("GET", "/a").await.text(), "ok");
            assert_eq!(answer("HEAD", "/a").await.status(), StatusCode::OK);
            assert_eq!(answer("GET", "/b").await.status(), StatusCode::NOT_FOUND);
            let refused = answer("PUT", "/a").await;
            assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(refused.header("allow"), Some("GET, HEAD, OPTIONS, POST"));
            let options = answer("OPTIONS", "/a").await;
            assert_eq!(options.status(), StatusCode::NO_CONTENT);
            let everything = answer("OPTIONS", "*").await;
            assert_eq!(everything.header("allow"), Some("GET, HEAD, OPTIONS, POST"));
        })
        .expect("an executor");
    }
}
