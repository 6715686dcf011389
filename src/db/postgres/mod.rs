//! PostgreSQL: a per-core pool of tokio-postgres connections over the core's epoll-driven sockets.
//!
//! ## The model
//!
//! Each core builds its own [`PgPool`] (in the application factory, or lazily on first use) and
//! keeps it in an `Rc`. The pool holds a few connections (`pool_size`, default 4) and hands out
//! [`PgConn`] handles round-robin. A handle is *shared*, not exclusive: tokio-postgres pipelines
//! every request, so many handlers can have queries in flight on one connection at once and the
//! server answers them in order. That is why a handful of connections per core serves thousands
//! of concurrent requests, and why [`join_all`] over several queries of one request costs about
//! one round trip instead of one per query.
//!
//! Connections are tokio-postgres clients over [`crate::net::Socket`] wrapped in
//! tokio-util's `compat` adapter and opened with [`tokio_postgres::Config::connect_raw`]; the
//! `Connection` half runs as a local task on the same executor. No tokio runtime, no threads,
//! no locks.
//!
//! ## Failure
//!
//! - Every operation runs under the pool's query timeout (the whole prepare + execute, never a
//!   per-read timeout). On expiry the caller gets a 503, the connection is retired (new requests
//!   go to a fresh connection rather than queueing behind the slow query) and a cancel request is
//!   sent so the server stops working on it.
//! - When a connection dies (server restart, `pg_terminate_backend`, network), queries in
//!   flight on it fail with a 503 [`Error`], the pool drops it and opens a new one on the next
//!   [`PgPool::get`]. While the server cannot be reached, `get` fails fast with a 503 and
//!   retries with a growing back-off (100 ms up to 1 s), so it is back within about a second
//!   of the server.
//! - Dropping a query future (the client went away, a timeout fired) never leaves the
//!   connection in a bad state: requests are queued whole to the connection task, which reads
//!   and discards the answers nobody waits for.
//!
//! ## Session state
//!
//! Because connections are shared, do not change session state through them (`SET`, `LISTEN`,
//! a `BEGIN` without its `COMMIT` in the same [`PgConn::batch_execute`] string): the next user of
//! the connection would inherit it. A multi-statement transaction sent as one
//! `batch_execute("BEGIN; ...; COMMIT")` is fine; if it fails, the connection is retired because
//! the server may have left it inside an aborted transaction.
//!
//! ## Configuration
//!
//! [`PgConfig::from_env`] reads:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DATABASE_URL` | `postgres://user:password@host:port/dbname?...` (TCP hosts only) | [`DEFAULT_DATABASE_URL`] |
//! | `SQUALL_PG_POOL_SIZE` | connections per core | `4` |
//! | `SQUALL_PG_CONNECT_TIMEOUT` | TCP connect + startup + authentication | URL `connect_timeout`, else `5s` |
//! | `SQUALL_PG_QUERY_TIMEOUT` | one whole operation | `5s` |
//! | `SQUALL_PG_STATEMENT_CACHE` | prepared statements cached per connection | `256` |
//!
//! ## Example
//!
//! ```no_run
//! use std::rc::Rc;
//! use squall::db::postgres::{join_all, PgConfig, PgPool};
//!
//! # async fn example() -> Result<(), squall::Error> {
//! let pool: Rc<PgPool> = PgPool::connect(PgConfig::from_env()?).await?;
//! let conn = pool.get().await?;
//! let row = conn
//!     .query_one("SELECT id, randomnumber FROM world WHERE id = $1", &[&42_i32])
//!     .await?;
//! let random: i32 = row.get(1);
//!
//! // Twenty queries pipelined on one connection: about one round trip. (The `async move`
//! // block keeps the parameter slice alive inside each future.)
//! let conn = &conn;
//! let rows = join_all((1..=20_i32).map(|id| async move {
//!     conn.query_one("SELECT id, randomnumber FROM world WHERE id = $1", &[&id])
//!         .await
//! }))
//! .await;
//! # let _ = (random, rows);
//! # Ok(())
//! # }
//! ```
//!
//! [`Error`]: crate::error::Error

// One file per concern: config (the connection string, the environment, validation), open
// (dialling an address and the startup handshake), pool (PgPool: slots, round-robin,
// reconnecting with back-off), conn (a connection's statement cache and error mapping, and
// the PgConn handle that runs queries on it).
mod config;
mod conn;
mod open;
mod pool;
#[cfg(feature = "tls")]
mod tls;

pub use config::{PgConfig, PgTls, RootCert, SslMode, DEFAULT_DATABASE_URL};
pub use conn::PgConn;
pub use pool::PgPool;

/// Re-exported so applications name the same tokio-postgres types squall does
/// (`Row`, `Statement`, `types::ToSql`, `types::FromSql`, `error::SqlState`).
pub use tokio_postgres;

/// Pipelining: await the queries of one request together with [`join_all`].
pub use crate::tasks::join_all;
