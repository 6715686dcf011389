//! Middleware: code that runs around every request of an application — compression, XSRF
//! checks, locale negotiation, timing, your own.
//!
//! A middleware receives the request and a [`Next`] that runs the rest of the chain (further
//! middleware, then the route's handler). It may answer by itself without calling `next`,
//! change the request on the way in, or change the response on the way out:
//!
//! ```
//! use squall::{middleware::Next, App, Request};
//!
//! let app = App::new()
//!     .wrap(|req: Request, next: Next| async move {
//!         let mut response = next.run(req).await;
//!         response.insert_header(
//!             squall::header::X_CONTENT_TYPE_OPTIONS,
//!             squall::HeaderValue::from_static("nosniff"),
//!         );
//!         response
//!     })
//!     .get("/", |_req: Request| async { "hi" });
//! ```
//!
//! Middleware registered first runs first (outermost). Every request the application answers
//! passes through the chain, including the 404, 405 and `OPTIONS` answers the router makes,
//! so a timing or logging middleware sees them too. An application without middleware pays
//! nothing for the mechanism.

use std::future::Future;
use std::rc::Rc;

use crate::future::LocalFuture;
use crate::handler::Handler;
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// Something that runs around an application's handlers. Implemented for every
/// `Fn(Request, Next) -> impl Future<Output = impl IntoResponse>`.
pub trait Middleware: 'static {
    /// Handles `req`, usually by calling `next.run(req)` somewhere inside.
    fn call(&self, req: Request, next: Next) -> LocalFuture<'static, Response>;

    /// A mistake made while configuring this middleware (a CORS policy allowing any origin
    /// with credentials, say). [`App::wrap`](crate::App::wrap) reports it with the
    /// application's registration mistakes when the server starts.
    fn registration_error(&self) -> Option<String> {
        None
    }
}

impl<F, Fut, R> Middleware for F
where
    F: Fn(Request, Next) -> Fut + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request, next: Next) -> LocalFuture<'static, Response> {
        let fut = self(req, next);
        Box::pin(async move { fut.await.into_response() })
    }
}

/// The middleware registered on an application, outermost first.
pub(crate) type Stack = Rc<[Rc<dyn Middleware>]>;

/// The rest of the chain after the current middleware.
pub struct Next {
    stack: Stack,
    position: usize,
    handler: Rc<dyn Handler>,
}

impl Next {
    pub(crate) fn start(stack: Stack, handler: Rc<dyn Handler>) -> Next {
        Next {
            stack,
            position: 0,
            handler,
        }
    }

    /// Runs the remaining middleware and then the handler.
    pub fn run(mut self, req: Request) -> LocalFuture<'static, Response> {
        match self.stack.get(self.position).cloned() {
            Some(middleware) => {
                self.position += 1;
                middleware.call(req, self)
            }
            None => self.handler.call(req),
        }
    }
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &(self.stack.len() - self.position))
            .finish_non_exhaustive()
    }
}
