//! The one handler shape: `async fn(Request) -> impl IntoResponse`.
//!
//! Handlers run on the core that accepted the connection and never move, so neither they nor
//! their futures need to be `Send`: per-core state can live in `Rc<RefCell<…>>`.
//!
//! ## Time limits
//!
//! [`App::handler_timeout`](crate::App::handler_timeout) limits every handler (with the
//! middleware around it), [`with_timeout`] one route's (its limit replaces the application's).
//! When the limit passes, to within the 10 ms of the core's deadline sweep, the handler's
//! future is dropped and the client gets **503 Service Unavailable** (an error, so the error
//! page and the server-error log see it). 503 rather than 504 Gateway Timeout: the server is
//! the origin, not a gateway, and a 504 from it would send whoever reads a proxy's log
//! looking for a slow upstream behind the server; 503 is also what a database timeout
//! already answers. No `Retry-After`: the server cannot know when the slow dependency
//! recovers. The limit covers producing the response, not sending a streamed body (the
//! write timeout does).
//!
//! Dropping the future cancels every await inside it, and what it held is released:
//!
//! - a PostgreSQL query in flight is cancelled on the server (a cancel request, as after the
//!   pool's own query timeout), and its connection is retired so that nothing queues behind
//!   the cancelled query; the pool opens a fresh one;
//! - a Redis command's reply is read and discarded when it comes (Redis runs commands one at
//!   a time and quickly; a blocking command such as `BLPOP` keeps the connection busy until
//!   its own timeout, so give those a timeout shorter than the handler's);
//! - anything the handler owned (a pool handle, a buffer, a guard) is dropped.
//!
//! Tasks the handler spawned with `glommio::spawn_local(...).detach()` are not its future
//! and keep running.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::future::LocalFuture;
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// Something that answers requests. Implemented for every
/// `Fn(Request) -> impl Future<Output = impl IntoResponse>`.
pub trait Handler: 'static {
    /// Starts answering `req`.
    fn call(&self, req: Request) -> LocalFuture<'static, Response>;

    /// A mistake made while building this handler (a JSON-RPC method registered twice, say).
    /// [`App`](crate::App) reports it with its own registration mistakes when the server
    /// starts, so a handler that is configured by a builder need not panic or defer the error
    /// to its first request.
    fn registration_error(&self) -> Option<String> {
        None
    }

    /// The time limit this handler enforces itself ([`with_timeout`]); the router then does
    /// not apply the application's [`handler_timeout`](crate::App::handler_timeout) to it.
    fn time_limit(&self) -> Option<Duration> {
        None
    }
}

/// `handler` under a time limit of its own, which replaces the application's
/// [`handler_timeout`](crate::App::handler_timeout) for its route: once `limit` has passed,
/// its future is dropped and the client gets 503 (see [Time limits](self#time-limits)).
///
/// ```
/// use std::time::Duration;
/// use squall::{handler::with_timeout, App, Request};
///
/// async fn report(_req: Request) -> &'static str {
///     "slow but worth it"
/// }
///
/// let app = App::new()
///     .handler_timeout(Duration::from_secs(2))
///     .get("/report", with_timeout(Duration::from_secs(30), report));
/// ```
pub fn with_timeout<H: Handler>(limit: Duration, handler: H) -> WithTimeout<H> {
    WithTimeout { limit, handler }
}

/// A handler under its own time limit; made by [`with_timeout`].
#[derive(Debug)]
pub struct WithTimeout<H> {
    limit: Duration,
    handler: H,
}

impl<H: Handler> Handler for WithTimeout<H> {
    fn call(&self, req: Request) -> LocalFuture<'static, Response> {
        Box::pin(TimeLimited::new(self.limit, self.handler.call(req)))
    }

    fn registration_error(&self) -> Option<String> {
        if self.limit.is_zero() {
            return Some("with_timeout: a time limit of zero".to_owned());
        }
        self.handler.registration_error()
    }

    fn time_limit(&self) -> Option<Duration> {
        Some(self.limit)
    }
}

/// A started handler that answers 503 once its time limit has passed, dropping the
/// handler's future as work whose limit expired
/// ([`deadline::drop_expired`](crate::deadline::drop_expired)), so that what it awaited is
/// cancelled.
pub(crate) struct TimeLimited {
    pending: Option<LocalFuture<'static, Response>>,
    limit: Duration,
    deadline: Instant,
    alarm: crate::deadline::Alarm,
}

impl TimeLimited {
    pub(crate) fn new(limit: Duration, pending: LocalFuture<'static, Response>) -> TimeLimited {
        TimeLimited {
            pending: Some(pending),
            limit,
            deadline: Instant::now() + limit,
            alarm: crate::deadline::Alarm::default(),
        }
    }
}

impl Future for TimeLimited {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = &mut *self;
        let Some(pending) = this.pending.as_mut() else {
            // Polled again after answering: nothing left to do but answer the same way.
            return Poll::Ready(timed_out(this.limit));
        };
        if let Poll::Ready(response) = pending.as_mut().poll(cx) {
            this.pending = None;
            this.alarm.clear();
            return Poll::Ready(response);
        }
        if this.alarm.poll_at(this.deadline, cx).is_pending() {
            return Poll::Pending;
        }
        crate::deadline::drop_expired(this.pending.take());
        Poll::Ready(timed_out(this.limit))
    }
}

fn timed_out(limit: Duration) -> Response {
    crate::error::Error::unavailable(format!("handler timed out after {limit:?}")).into_response()
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request) -> LocalFuture<'static, Response> {
        // The allocation comes first and the future is written straight into it: boxing an
        // `async move` wrapper instead copied a database handler's future (over a kilobyte)
        // twice per request, about 3% of the server's CPU on `/db` (`perf record`).
        let slot = Box::<Responding<Fut>>::new_uninit();
        let boxed = Box::write(
            slot,
            Responding {
                handler_future: self(req),
            },
        );
        Box::into_pin(boxed)
    }
}

pin_project_lite::pin_project! {
    /// A handler's future, its output made into a [`Response`].
    struct Responding<Fut> {
        #[pin]
        handler_future: Fut,
    }
}

impl<Fut, R> Future for Responding<Fut>
where
    Fut: Future<Output = R>,
    R: IntoResponse,
{
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        self.project()
            .handler_future
            .poll(cx)
            .map(IntoResponse::into_response)
    }
}
