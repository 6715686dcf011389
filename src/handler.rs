//! The one handler shape: `async fn(Request) -> impl IntoResponse`.
//!
//! Handlers run on the core that accepted the connection and never move, so neither they nor
//! their futures need to be `Send`: per-core state can live in `Rc<RefCell<…>>`.

use std::future::Future;

use crate::body::LocalFuture;
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
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request) -> LocalFuture<'static, Response> {
        let fut = self(req);
        Box::pin(async move { fut.await.into_response() })
    }
}
