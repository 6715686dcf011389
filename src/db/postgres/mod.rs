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
//! - A query dropped because its handler's time limit passed
//!   ([`App::handler_timeout`](crate::App::handler_timeout)) is treated like one past the
//!   pool's own query timeout: a cancel request stops it on the server and its connection is
//!   retired, so that nothing queues behind it.
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
//! ## TLS
//!
//! With the `tls` feature (on by default) squall reads libpq's TLS parameters from the
//! connection string itself ([`PgTls`]) and does the handshake with rustls:
//!
//! | parameter | meaning |
//! |---|---|
//! | `sslmode` | [`SslMode`]: `disable`; `prefer` (the default, as in libpq: TLS when the server offers it); `require` (TLS, certificate unchecked unless `sslrootcert` is given); `verify-ca` (the chain); `verify-full` (the chain and the host name) |
//! | `sslrootcert` | a PEM file of the CAs to check the server's certificate against, or `system` for the operating system's; needed by `verify-ca` and `verify-full` |
//! | `sslcert`, `sslkey` | a client certificate and its key (PEM), for `clientcert=` in `pg_hba.conf` |
//! | `sslnegotiation=direct` | PostgreSQL 17's TLS without the `SSLRequest` round trip (with `require` or stronger) |
//!
//! `postgres://app@db.internal/app?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`.
//! Nothing is read from `~/.postgresql/`. The files are read when a pool is built (a
//! missing or unusable one fails [`PgPool::new`] with an error naming it), and each core's
//! pool builds its own rustls configuration. Over TLS, SCRAM authentication binds to the
//! server's certificate (`tls-server-end-point`, SCRAM-SHA-256-PLUS) when the server offers
//! it; `channel_binding=require` insists on it. Query cancellation after a timeout uses TLS
//! the same way. Without the `tls` feature only `disable` and `prefer` (which then means
//! plain text) are accepted; anything else is a configuration error naming the feature.
//!
//! `prefer` encrypts connections to a server on the same host too, where there is nobody to
//! protect against; `sslmode=disable` there skips the handshake and the encryption.
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
// the PgConn handle that runs queries on it), stats (what a pool counts for metrics).
mod config;
mod conn;
mod open;
mod pool;
pub(crate) mod stats;
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
