//! Login: who the current user is, and a guard for handlers that need one.
//!
//! The application says how to find the user of a request with [`App::current_user`]
//! (typically from a signed cookie, perhaps looked up in a database), and where to send
//! visitors who must log in with [`App::login_url`]. Handlers get the user through
//! [`RequestAuth`], a trait on [`Request`]; handlers wrapped in [`authenticated`] run only
//! for a request with a user:
//!
//! ```
//! use squall::auth::{authenticated, RequestAuth};
//! use squall::signed::SignedCookies;
//! use squall::{App, Request, Response};
//!
//! async fn home(mut req: Request) -> String {
//!     let user = req.current_user::<String>().await.expect("the guard checked");
//!     format!("hello, {user}")
//! }
//!
//! async fn login(req: Request) -> Result<Response, squall::Error> {
//!     // …check a password…
//!     let cookie = req.sign_cookie("user", "ada")?;
//!     let args = req.query_args();
//!     let next = squall::auth::safe_next(args.raw("next"));
//!     Ok(Response::redirect_with(squall::StatusCode::SEE_OTHER, next).set_cookie(cookie))
//! }
//!
//! # fn keys() -> squall::signed::SigningKeys {
//! #     squall::signed::SigningKeys::new(1, [7u8; 32]).expect("32 bytes")
//! # }
//! let app = App::new()
//!     .signing_keys(keys())
//!     .login_url("/login")
//!     .current_user(|req: &Request| std::future::ready(req.signed_cookie("user")))
//!     .get("/", authenticated(home))
//!     .post("/login", login);
//! ```
//!
//! Without a user, the guard redirects `GET` and `HEAD` to the login URL with the requested
//! path and query in `?next=`, and answers other methods `403` — a form posted after the
//! session expired must not be replayed by a redirect. With no login URL configured every
//! method gets `401`.

use std::any::Any;
use std::future::Future;
use std::rc::Rc;

use http::Method;

use crate::error::Error;
use crate::future::LocalFuture;
use crate::handler::Handler;
use crate::request::Request;
use crate::response::{IntoResponse, Response};
use crate::router::App;

/// Finds the user of a request; type-erased so an [`App`] stays one type.
type UserLoader = Rc<dyn Fn(&Request) -> LocalFuture<'static, Option<Rc<dyn Any>>>>;

/// The application's login settings, kept in its per-core settings and so shared by every
/// request on a core.
#[derive(Default)]
struct LoginSettings {
    loader: Option<UserLoader>,
    login_url: Option<String>,
}

impl App {
    /// How to find the user of a request, for [`RequestAuth::current_user`] and the
    /// [`authenticated`] guard. The loader reads what it needs from the request (a signed
    /// cookie, a header) and returns a future that may look the user up elsewhere; it runs
    /// at most once per request.
    pub fn current_user<F, Fut, U>(mut self, loader: F) -> App
    where
        F: Fn(&Request) -> Fut + 'static,
        Fut: Future<Output = Option<U>> + 'static,
        U: 'static,
    {
        self.login_settings().loader = Some(erase_loader(loader));
        self
    }

    /// Where [`authenticated`] sends visitors who must log in.
    pub fn login_url(mut self, url: &str) -> App {
        self.login_settings().login_url = Some(url.to_owned());
        self
    }

    fn login_settings(&mut self) -> &mut LoginSettings {
        self.extensions_mut()
            .get_or_insert_with(LoginSettings::default)
    }
}

/// The user of a request, found by the application's loader ([`App::current_user`]).
/// Implemented for [`Request`]; bring it into scope with `use squall::auth::RequestAuth`.
pub trait RequestAuth {
    /// The request's user, found by the application's [`App::current_user`] loader (run at
    /// most once per request). `None` without a user, without a loader, or when the loader
    /// produces another type than `U`.
    fn current_user<U: 'static>(&mut self) -> impl Future<Output = Option<Rc<U>>>;
}

impl RequestAuth for Request {
    async fn current_user<U: 'static>(&mut self) -> Option<Rc<U>> {
        load_user(self).await.and_then(|user| user.downcast().ok())
    }
}

/// The request's user of whatever type the loader produces, loaded on first use.
async fn load_user(req: &mut Request) -> Option<Rc<dyn Any>> {
    if let Some(LoadedUser(user)) = req.extensions().get::<LoadedUser>() {
        return user.clone();
    }
    let loader = req
        .app_extensions()
        .get::<LoginSettings>()?
        .loader
        .clone()?;
    let user = loader(req).await;
    req.extensions_mut().insert(LoadedUser(user.clone()));
    user
}

/// Wraps a loader that returns `Option<U>` into the type-erased form.
fn erase_loader<F, Fut, U>(loader: F) -> UserLoader
where
    F: Fn(&Request) -> Fut + 'static,
    Fut: Future<Output = Option<U>> + 'static,
    U: 'static,
{
    Rc::new(move |req: &Request| {
        let user = loader(req);
        Box::pin(async move { user.await.map(|u| Rc::new(u) as Rc<dyn Any>) })
    })
}

/// The current user of a request once loaded, kept in the request's extensions so the
/// loader runs at most once per request.
struct LoadedUser(Option<Rc<dyn Any>>);

/// Runs `handler` only for requests with a current user; see the [module docs](self).
pub fn authenticated(handler: impl Handler) -> impl Handler {
    Authenticated(Rc::new(handler))
}

/// The guard: a handler that passes on to the wrapped one when there is a user.
struct Authenticated<H>(Rc<H>);

impl<H: Handler> Handler for Authenticated<H> {
    fn call(&self, mut req: Request) -> LocalFuture<'static, Response> {
        let handler = Rc::clone(&self.0);
        Box::pin(async move {
            if load_user(&mut req).await.is_some() {
                return handler.call(req).await;
            }
            refuse(&req)
        })
    }

    /// The wrapped handler's mistake still stops startup (a JSON-RPC endpoint behind the
    /// guard with a method registered twice, say).
    fn registration_error(&self) -> Option<String> {
        self.0.registration_error()
    }
}

fn refuse(req: &Request) -> Response {
    let login_url = req
        .app_extensions()
        .get::<LoginSettings>()
        .and_then(|settings| settings.login_url.as_deref());
    let Some(login_url) = login_url else {
        return Error::unauthorized("login required").into_response();
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Error::forbidden("login required").into_response();
    }
    let mut next = req.path().to_owned();
    if let Some(query) = req.query() {
        next.push('?');
        next.push_str(query);
    }
    let separator = if login_url.contains('?') { '&' } else { '?' };
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    Response::redirect(&format!("{login_url}{separator}next={next}"))
}

/// Where to send a user after logging in: `next` when it is a path on this site, else `/`.
/// Anything else — `//evil.example`, `/\evil.example`, `https://…` — would make the login
/// page an open redirect.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.bytes().any(|b| b.is_ascii_control()) =>
        {
            next
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The wrapped handler is an Rpc endpoint, whose duplicate method is such a mistake.
    #[cfg(feature = "rpc")]
    #[test]
    fn the_guard_passes_on_the_wrapped_handlers_registration_mistake() {
        async fn echo(
            params: serde_json::Value,
        ) -> Result<serde_json::Value, crate::rpc::RpcError> {
            Ok(params)
        }
        let twice = crate::rpc::Rpc::new()
            .method("echo", echo)
            .method("echo", echo);
        let guarded = authenticated(twice);
        let why = guarded
            .registration_error()
            .expect("a duplicate method is a mistake");
        assert!(why.contains("echo"), "{why}");
        let once = authenticated(crate::rpc::Rpc::new().method("echo", echo));
        assert_eq!(once.registration_error(), None);
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/posts?page=2")), "/posts?page=2");
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/a\r\nSet-Cookie: x",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
