//! Per-core connections to PostgreSQL and Redis.
//!
//! Each core opens its own connections from the application factory and keeps them in `Rc`s:
//! a query never crosses cores and never takes a lock. Nothing here knows about HTTP.

mod dial;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis")]
mod stream;
#[cfg(any(feature = "postgres", all(feature = "redis", feature = "tls")))]
mod url;
