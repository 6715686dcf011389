//! The one step every way of serving a request shares: a decoded request in, a finished
//! response out.
//!
//! Routing, middleware (metrics among them), the handler, a panic turned into 500, the
//! error page, debug pages and the access log all happen behind [`Dispatcher`]. The HTTP/1.1
//! driver and [`TestClient`](crate::testing::TestClient) call it, and so will an HTTP/2
//! driver: a stage added here reaches every caller, and none of them repeats one. What a
//! caller keeps is its protocol: framing bytes in, encoding the response out.
//!
//! With request ids on ([`App::request_ids`](crate::App::request_ids)) this is also where a
//! request gets its id, its response the `X-Request-Id` header, and the handler its
//! `tracing` span: off, the request pays one branch on a flag.
//!
//! Starting is synchronous and separate from finishing, so that a driver can take the head
//! out of its input buffer and start the handler before it awaits anything (what a
//! connection holds across an await is what every connection costs).

use std::rc::Rc;
use std::time::Instant;

use http::HeaderValue;
use tracing::field::Empty;
use tracing::Instrument;

use crate::future::LocalFuture;
use crate::request::{Request, RequestContext};
use crate::response::Response;
use crate::router::{InFlight, Router, Shedding};

/// An application ready to answer requests on this core; see the [module docs](self).
pub(crate) struct Dispatcher {
    router: Router,
    access_log: bool,
}

/// A request whose handler has started; [`Dispatcher::finish`] runs it to its response.
pub(crate) struct Responding {
    pending: LocalFuture<'static, Response>,
    /// Kept only when the access log or request ids are on.
    extras: Option<Box<Extras>>,
    /// Its place among the core's requests in flight, with load shedding on.
    _admitted: Option<InFlight>,
}

/// What finishing a request needs beyond its handler's future, taken before the handler
/// owns the request.
struct Extras {
    started: Instant,
    access: Option<AccessEntry>,
    /// The request's id, when request ids are on.
    id: Option<HeaderValue>,
    /// The request's span, when request ids are on and a subscriber wants it.
    span: Option<tracing::Span>,
}

/// What the access log line needs from the request.
struct AccessEntry {
    method: http::Method,
    target: String,
    peer: crate::request::Peer,
}

impl Dispatcher {
    /// Serves `router`; `access_log` logs a line per request through `tracing`
    /// (`squall::access`).
    pub(crate) fn new(router: Router, access_log: bool) -> Dispatcher {
        Dispatcher { router, access_log }
    }

    /// The application's load shedding, if it asked for any.
    pub(crate) fn shedding(&self) -> Option<&Shedding> {
        self.router.shedding()
    }

    /// What every request of this core shares (routes, trusted proxies, keys).
    pub(crate) fn context(&self) -> &Rc<RequestContext> {
        self.router.context()
    }

    /// Routes `request` and starts its handler; with load shedding on and the core at its
    /// bound, answers 503 instead, before routing.
    pub(crate) fn start(&self, mut request: Request) -> Responding {
        let admitted = match self.router.shedding() {
            None => None,
            Some(shedding) => match shedding.admit() {
                Some(admitted) => Some(admitted),
                None => {
                    return Responding {
                        pending: Box::pin(std::future::ready(Shedding::refusal())),
                        extras: None,
                        _admitted: None,
                    }
                }
            },
        };
        let handler = self.router.route_request(&mut request);
        if !self.access_log && !self.router.request_ids() {
            return Responding {
                pending: self.run(self.router.start(handler, request)),
                extras: None,
                _admitted: admitted,
            };
        }
        let access = self.access_log.then(|| AccessEntry {
            method: request.method().clone(),
            target: request.head().target().to_owned(),
            peer: request.peer(),
        });
        let (id, span) = if self.router.request_ids() {
            let id = request.assign_request_id();
            let span = tracing::info_span!(
                target: "squall::request",
                "request",
                method = %request.method(),
                route = request.matched_route(),
                request_id = id.to_str().unwrap_or_default(),
                status = Empty,
                latency_us = Empty,
            );
            (Some(id), (!span.is_disabled()).then_some(span))
        } else {
            (None, None)
        };
        let started = Instant::now();
        // The handler's synchronous start (a closure's body up to its first await, the
        // middleware's) runs inside the span too.
        let pending = match &span {
            Some(span) => span.in_scope(|| self.router.start(handler, request)),
            None => self.router.start(handler, request),
        };
        // A handler moved to the handler queue is polled outside the connection's task, so
        // it takes its span along.
        let pending = match (&span, self.router.shedding()) {
            (Some(span), Some(_)) => Box::pin(pending.instrument(span.clone())),
            _ => pending,
        };
        let pending = self.run(pending);
        Responding {
            pending,
            extras: Some(Box::new(Extras {
                started,
                access,
                id,
                span,
            })),
            _admitted: admitted,
        }
    }

    /// With load shedding on, moves a started handler into the core's handler queue
    /// ([`Shedding`]); otherwise it runs in the connection's task.
    fn run(&self, pending: LocalFuture<'static, Response>) -> LocalFuture<'static, Response> {
        match self.router.shedding() {
            Some(shedding) => shedding.run_admitted(pending),
            None => pending,
        }
    }

    /// Runs a started request to its finished response: a panic becomes 500, errors get
    /// the error page, the access log has its line and the span its status and latency.
    pub(crate) async fn finish(&self, responding: Responding) -> Response {
        // `_admitted` lives until the response is done, or until the future is dropped.
        let Responding {
            pending,
            extras,
            _admitted,
        } = responding;
        match extras {
            None => self.router.complete(pending).await,
            // Boxed: the span and the log's fields would otherwise grow every connection's
            // future (432 to 560 bytes, `an_idle_connection_future_stays_small`), with the
            // access log and request ids off too.
            Some(extras) => Box::pin(self.finish_with(pending, extras)).await,
        }
    }

    /// [`finish`](Dispatcher::finish) with the access log or request ids on.
    async fn finish_with(
        &self,
        pending: LocalFuture<'static, Response>,
        mut extras: Box<Extras>,
    ) -> Response {
        let mut response = match extras.span.take() {
            Some(span) => {
                let response = self.router.complete(pending).instrument(span.clone()).await;
                span.record("status", response.status().as_u16());
                span.record("latency_us", extras.started.elapsed().as_micros() as u64);
                response
            }
            None => self.router.complete(pending).await,
        };
        if let Some(entry) = extras.access {
            tracing::info!(
                target: "squall::access",
                status = response.status().as_u16(),
                method = %entry.method,
                target = %entry.target,
                micros = extras.started.elapsed().as_micros() as u64,
                peer = %entry.peer,
                request_id = extras.id.as_ref().and_then(|id| id.to_str().ok()),
            );
        }
        if let Some(id) = extras.id {
            response.insert_header(crate::request_id::HEADER, id);
        }
        response
    }

    /// [`start`](Dispatcher::start) and [`finish`](Dispatcher::finish) in one.
    pub(crate) async fn respond(&self, request: Request) -> Response {
        self.finish(self.start(request)).await
    }
}
