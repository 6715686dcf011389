//! Per-core connections to PostgreSQL and Redis.
//!
//! Each core opens its own connections from the application factory and keeps them in `Rc`s:
//! a query never crosses cores and never takes a lock. Nothing here knows about HTTP.
//!
//! Pools and clients count what they do (connects, failures by kind, waiters) in cells of
//! their own and register on their core when built, so that a metrics scrape on the core
//! reads them (`App::prometheus`, with the `metrics` feature).

mod dial;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub(crate) mod stats;
#[cfg(feature = "redis")]
mod stream;
#[cfg(any(feature = "postgres", all(feature = "redis", feature = "tls")))]
mod url;
