//! The one step every way of serving a request shares: a decoded request in, a finished
//! response out.
//!
//! Routing, middleware (metrics among them), the handler, a panic turned into 500, the
//! error page, debug pages and the access log all happen behind [`Dispatcher`]. The HTTP/1.1
//! driver and [`TestClient`](crate::testing::TestClient) call it, and so will an HTTP/2
//! driver: a stage added here reaches every caller, and none of them repeats one. What a
//! caller keeps is its protocol: framing bytes in, encoding the response out.
//!
//! Starting is synchronous and separate from finishing, so that a driver can take the head
//! out of its input buffer and start the handler before it awaits anything (what a
//! connection holds across an await is what every connection costs).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use crate::future::LocalFuture;
use crate::request::{Request, RequestContext};
use crate::response::Response;
use crate::router::Router;

/// An application ready to answer requests on this core; see the [module docs](self).
pub(crate) struct Dispatcher {
    router: Router,
    access_log: bool,
}

/// A request whose handler has started; [`Dispatcher::finish`] runs it to its response.
pub(crate) struct Responding {
    pending: LocalFuture<'static, Response>,
    /// Kept only when the access log is on.
    access: Option<Box<AccessEntry>>,
}

/// What the access log line needs from the request, taken before the handler owns it.
struct AccessEntry {
    started: Instant,
    method: http::Method,
    target: String,
    peer: SocketAddr,
}

impl Dispatcher {
    /// Serves `router`; `access_log` logs a line per request through `tracing`
    /// (`squall::access`).
    pub(crate) fn new(router: Router, access_log: bool) -> Dispatcher {
        Dispatcher { router, access_log }
    }

    /// What every request of this core shares (routes, trusted proxies, keys).
    pub(crate) fn context(&self) -> &Rc<RequestContext> {
        self.router.context()
    }

    /// Routes `request` and starts its handler.
    pub(crate) fn start(&self, request: Request) -> Responding {
        let access = self.access_log.then(|| {
            Box::new(AccessEntry {
                started: Instant::now(),
                method: request.method().clone(),
                target: request.head().target().to_owned(),
                peer: request.peer_addr(),
            })
        });
        Responding {
            pending: self.router.dispatch(request),
            access,
        }
    }

    /// Runs a started request to its finished response: a panic becomes 500, errors get
    /// the error page, and the access log has its line.
    pub(crate) async fn finish(&self, responding: Responding) -> Response {
        let Responding { pending, access } = responding;
        let response = self.router.complete(pending).await;
        if let Some(entry) = access {
            tracing::info!(
                target: "squall::access",
                status = response.status().as_u16(),
                method = %entry.method,
                target = %entry.target,
                micros = entry.started.elapsed().as_micros() as u64,
                peer = %entry.peer,
            );
        }
        response
    }

    /// [`start`](Dispatcher::start) and [`finish`](Dispatcher::finish) in one.
    pub(crate) async fn respond(&self, request: Request) -> Response {
        self.finish(self.start(request)).await
    }
}
