//! # squall
//!
//! An asynchronous HTTP/1.1 server and web framework for very many concurrent connections,
//! built share-nothing on io_uring.
//!
//! ## The model
//!
//! ```text
//! socket ─read─▶ server (connection driver) ─bytes─▶ http (decode) ─Request─▶ router ─▶ handler
//!    ▲                                                                           │
//!    └─write── server (connection driver) ◀─bytes── http (encode) ◀──Response───┘
//! ```
//!
//! - One [glommio](https://docs.rs/glommio-ng) executor per core, pinned, each with its own
//!   `SO_REUSEPORT` listener and io_uring ring. A connection lives and dies on the core that
//!   accepted it, and nothing on the request path takes a lock or writes memory shared with
//!   another core; work between cores goes through explicit channels ([`cores`], the
//!   WebSocket [`hub`]).
//! - Sockets and listeners ([`net`]) read, write and accept with plain `recv`/`send`/`accept4`
//!   and learn readiness from one edge-triggered epoll set per core; its descriptor is the
//!   only one the ring polls.
//! - The application is built **per core** by a factory closure, so handler state is
//!   `Rc`/`RefCell` and handlers need not be `Send`.
//! - Only the connection driver touches the socket. Handlers return values; a protocol upgrade
//!   travels inside the response and the driver hands the socket over.
//! - The HTTP codec ([`http`]) is sans-IO: bytes in, values out. It rejects anything two
//!   parsers could read differently (bare LF, conflicting framing, malformed chunks) so
//!   requests cannot be smuggled through a proxy in front.
//!
//! ## Hello, world
//!
//! ```no_run
//! use squall::{App, Json, Request, Server};
//!
//! async fn hello(_req: Request) -> &'static str {
//!     "Hello, World!"
//! }
//!
//! async fn greet(req: Request) -> Result<Json<serde_json::Value>, squall::Error> {
//!     let name: String = req.arg_or("name", "world".to_owned())?;
//!     Ok(Json(serde_json::json!({ "hello": name })))
//! }
//!
//! fn main() -> Result<(), squall::Error> {
//!     Server::from_env()?.serve(|| App::new().get("/", hello).get("/greet", greet))
//! }
//! ```
//!
//! Configuration (address, workers, every limit and timeout) is described in [`config`];
//! WebSockets in [`ws`], and the hub that fans their messages out across cores in [`hub`].
//!
//! ## The application toolkit
//!
//! Opt-in parts for what a web application needs beyond routing, each in its own module:
//! [`middleware`] (code around every request), [`signed`] cookies and [`auth`] (login, the
//! `authenticated` guard), [`xsrf`] protection, [`files`] (static files) and [`compress`],
//! [`multipart`] uploads, [`i18n`] (Fluent translations, negotiation, numbers and dates),
//! [`tasks`] (periodic tasks, timers, blocking work) and [`cores`] (jobs sent to other cores),
//! [`rpc`] (JSON-RPC 2.0), [`template`] (Sailfish), and [`testing`] (an in-process client and
//! an ephemeral-port server for your tests). `App::debug` shows detailed pages for server
//! errors while developing.

pub mod auth;
pub mod body;
pub mod compress;
pub mod config;
pub mod cores;
pub mod db;
pub mod error;
pub mod files;
pub mod future;
pub mod handler;
pub mod http;
pub mod hub;
pub mod i18n;
pub mod metrics;
pub mod middleware;
pub mod multipart;
pub mod net;
pub mod request;
pub mod response;
pub mod router;
pub mod rpc;
pub mod signed;
pub mod tasks;
pub mod template;
pub mod testing;
pub mod upgrade;
pub mod ws;
pub mod xsrf;

/// Codec and router internals for this crate's criterion benchmarks (the `internals`
/// feature); not part of the stable API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::http::encode::{encode_head, ResponseFraming, ResponseHead};
    pub use crate::http::head::{decode_head_into, HeadArena};
    pub use crate::router::bench_support::RouteProbe;
}

mod deadline;
mod debug;
mod dispatch;
mod per_core;
mod routes;
mod server;

pub use crate::body::{Body, BodySender, RequestBody};
pub use crate::compress::Compression;
pub use crate::config::{Config, Limits};
pub use crate::error::Error;
pub use crate::files::StaticFiles;
pub use crate::handler::Handler;
pub use crate::request::{Args, Extensions, Request};
pub use crate::response::{Html, IntoResponse, Json, Response};
pub use crate::router::{App, IntoApp};
pub use crate::server::{RunningServer, Server};
pub use crate::upgrade::Upgraded;

/// Re-exported so applications name the same types squall does.
pub use ::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
/// Cookies, re-exported for [`Response::set_cookie`] and [`Request::cookies`].
pub use cookie;
