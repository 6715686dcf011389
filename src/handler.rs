//! The one handler shape: `async fn(Request) -> impl IntoResponse`.
//!
//! Handlers run on the core that accepted the connection and never move, so neither they nor
//! their futures need to be `Send`: per-core state can live in `Rc<RefCell<…>>`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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
