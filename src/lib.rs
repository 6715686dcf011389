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
//! ## Layout
//!
//! Every module has one job; data flows down this list, never up. `scripts/check-layers.py`
//! (run with the tests) fails on a dependency against the flow or on an import cycle.
//!
//! | module | its one job |
//! |---|---|
//! | `lib.rs` | these docs, lints and re-exports; no logic |
//! | `server/` | the only owner of executors and listening sockets: per-core startup ([`Server`]), `os` (every system call beyond sockets: CPU placement, io_uring probe, rlimits, signals, giving heap back), `listen` (bind and accept), `unix` (a Unix socket that every core shares, and its file), `core` (a core's clock, `Date` line and buffer pools), `conn` (the HTTP/1.1 driver) over `io` and `transport` (the seam: a socket, or `tls`, a rustls session over one), `reload` (TLS material to every core) |
//! | `dispatch` | a decoded request in, a finished response out: routing, middleware, panics, error and debug pages, the access log; called by the HTTP/1.1 driver and [`testing`] alike |
//! | [`net`] | sockets and listeners on one epoll set per core (the `squall-net` crate, which uses only the OS) |
//! | [`http`] | the sans-IO codec: request heads and bodies in, response bytes out; nothing async |
//! | [`router`], `routes` | the frozen application (routes, middleware, error page) and the route table with its reverse URLs |
//! | [`request`], [`response`], [`body`], [`handler`], [`middleware`], [`error`] | the values a handler sees and returns, and the one error type; handler time limits |
//! | [`request_id`] | request ids believed from trusted proxies or made per core (`dispatch` gives them out, with each request's `tracing` span) |
//! | [`upgrade`], [`ws`] | a connection after `101`, and the WebSocket protocol over it |
//! | [`hub`] | topics fanned out to WebSockets across cores, and its Redis bridge between servers |
//! | [`cores`], [`tasks`] | explicit work between cores; timers, periodic and blocking work |
//! | [`health`] | the `/healthz` and `/readyz` probes ([`App::health`]), ready until a stop is asked for |
//! | `per_core`, `deadline` | what a core owns (one table of every per-core slot; the shutdown signal) and the one per-core table of time limits |
//! | [`db`] | per-core PostgreSQL and Redis pools; never sees HTTP (the `postgres` and `redis` features) |
//! | [`tls`] | certificates and keys read and checked, rustls configurations built per core, session tickets every core can open; never sees sockets (the `tls` feature) |
//! | toolkit | [`auth`], [`signed`], [`xsrf`], [`cors`], [`i18n`], [`files`], [`compress`], [`multipart`], [`rpc`], [`metrics`], [`template`]: opt-in, each a Cargo feature; never see sockets or the server |
//!
//! How a request flows: `server::listen` accepts and spawns the connection's task;
//! `server::conn` reads through its transport, decodes with [`http`], builds a [`Request`]
//! and hands it to `dispatch`, which routes it ([`router`]) through the middleware to the
//! handler; the [`Response`] comes back the same way, and the driver encodes every response
//! of a batch into one buffer and writes it once.
//!
//! **The connection model.** A connection is one task from accept to close, idle or not,
//! and TLS builds on that: an encrypted connection is the same task over another
//! `Transport`. Measured (BENCHMARKS.md, "Idle keep-alive connections"): an idle keep-alive
//! connection costs 904 bytes (10,000 connections), of which the task and its future were
//! 640 in a dhat profile (2026-11-24); the future is 432 bytes. Parking an idle connection
//! as plain state (its descriptor, deadline entry and a few flags) and making a task when it
//! becomes readable would reach the 512-byte goal on plain connections, but it needs every
//! driver (HTTP/1.1 now, HTTP/2 next) in a second, resumable form, and on a TLS connection the
//! session's keys and state outweigh the task. So the task stays; the transport seam is built
//! so that a parked connection would own its `Transport` value, should the plain-connection
//! goal call for parking later.
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
//! `authenticated` guard), [`xsrf`] protection, [`cors`] (cross-origin requests), [`files`] (static files) and [`compress`],
//! [`multipart`] uploads, [`i18n`] (Fluent translations, negotiation, numbers and dates),
//! [`tasks`] (periodic tasks, timers, blocking work) and [`cores`] (jobs sent to other cores),
//! [`rpc`] (JSON-RPC 2.0), [`template`] (Sailfish), and [`testing`] (an in-process client and
//! an ephemeral-port server for your tests). `App::debug` shows detailed pages for server
//! errors while developing.
//!
//! ## Cargo features
//!
//! The core is always built: the server, HTTP/1.1, routing, middleware, WebSockets and the
//! [`hub`], [`tasks`], [`cores`] and [`testing`]. Each toolkit part is a feature named after
//! the module it turns on, and every one is on by default; with `default-features = false`
//! a build compiles none of their dependencies and names only the features it uses:
//!
//! ```toml
//! squall = { version = "0.1", default-features = false, features = ["postgres", "template"] }
//! ```
//!
//! | feature | turns on | pulls in |
//! |---|---|---|
//! | `auth` | [`auth`]: `App::login_url`, `App::current_user`, the `authenticated` guard | — |
//! | `signed` | [`signed`]: `App::signing_keys`, signed cookies | hmac, sha2 |
//! | `xsrf` | [`xsrf`] | getrandom, subtle |
//! | `compress` | [`compress`] and [`Compression`] | flate2 (zlib-rs), brotli, quick_cache |
//! | `cors` | [`cors`]: the [`cors::Cors`] middleware | — |
//! | `files` | [`files`] and [`StaticFiles`]; turns on `compress`, whose `Accept-Encoding` parser picks precompressed siblings | mime_guess, quick_cache, sha2 |
//! | `i18n` | [`i18n`] | fluent-bundle, fluent-syntax, unic-langid, intl-memoizer, ICU4X (icu_decimal, icu_datetime, icu_calendar, icu_locale_core), time |
//! | `multipart` | [`multipart`] | multer |
//! | `postgres` | `db::postgres` | tokio-postgres, tokio-util |
//! | `redis` | `db::redis` and the hub's Redis bridge (`Hub::bridge_redis`) | redis-protocol |
//! | `rpc` | [`rpc`] | — |
//! | `metrics` | [`metrics`]: per-route latency, and Prometheus/OpenMetrics `/metrics` (`App::prometheus`) | hdrhistogram |
//! | `template` | [`template`] | sailfish |
//! | `tls` | [`tls`]: HTTPS and `wss://` ([`Config::tls`], `SQUALL_TLS_*`), [`Request::tls`], [`RunningServer::reload_tls`] | rustls (aws-lc-rs), aws-lc-rs, x509-parser |
//!
//! What a feature adds to the core's types lives in its own module and comes and goes with
//! it: the `App` builder methods `signing_keys` (`signed`), `login_url` and `current_user`
//! (`auth`), and the request traits [`signed::SignedCookies`] and [`auth::RequestAuth`].
//! The `internals` feature exposes codec and
//! router internals to this crate's benchmarks and is no API.
//!
//! On docs.rs each gated item is marked with its feature.

// docs.rs builds with `--cfg docsrs` on nightly, where `doc_cfg` marks each item that a
// feature gates with that feature; stable builds never see the attribute.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "auth")]
pub mod auth;
pub mod body;
#[cfg(feature = "compress")]
pub mod compress;
pub mod config;
pub mod cores;
#[cfg(feature = "cors")]
pub mod cors;
#[cfg(any(feature = "postgres", feature = "redis"))]
pub mod db;
pub mod error;
#[cfg(feature = "files")]
pub mod files;
pub mod future;
pub mod handler;
pub mod health;
pub mod http;
pub mod hub;
#[cfg(feature = "i18n")]
pub mod i18n;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod middleware;
#[cfg(feature = "multipart")]
pub mod multipart;
pub mod net;
pub mod request;
pub mod request_id;
pub mod response;
pub mod router;
#[cfg(feature = "rpc")]
pub mod rpc;
#[cfg(feature = "signed")]
pub mod signed;
pub mod tasks;
#[cfg(feature = "template")]
pub mod template;
pub mod testing;
#[cfg(feature = "tls")]
pub mod tls;
pub mod upgrade;
pub mod ws;
#[cfg(feature = "xsrf")]
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
#[cfg(feature = "compress")]
pub use crate::compress::Compression;
pub use crate::config::{Config, Limits, ListenAddr, PortSharing};
pub use crate::error::Error;
#[cfg(feature = "files")]
pub use crate::files::StaticFiles;
pub use crate::handler::Handler;
pub use crate::request::{Args, Extensions, Peer, Request};
pub use crate::response::{Html, IntoResponse, Json, Response};
pub use crate::router::{App, IntoApp};
pub use crate::server::{RunningServer, Server};
pub use crate::upgrade::Upgraded;

/// Re-exported so applications name the same types squall does.
pub use ::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
/// Cookies, re-exported for [`Response::set_cookie`] and [`Request::cookies`].
pub use cookie;
