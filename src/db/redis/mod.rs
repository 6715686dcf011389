//! Redis: a per-core client on the RESP codec of redis-protocol.
//!
//! ## The model
//!
//! Each core builds its own [`Client`] in the application factory. A client is an `Rc` handle
//! (cheap to clone, `!Send`) around **one** TCP connection, opened on first use:
//!
//! ```text
//! task ─cmd─▶ encode into the output buffer ─┐                ┌─▶ reader task ─decode─▶ waiter 1
//! task ─cmd─▶ encode into the output buffer ─┼─▶ writer task ─┤        (FIFO)          waiter 2
//! task ─pipeline─▶ N commands, one waiter ───┘    (socket)    └──────────────────────▶ waiter 3
//! ```
//!
//! - Any number of tasks may issue commands at once. Each command is encoded into a shared
//!   output buffer and its waiter queued, in the same synchronous step, so wire order and
//!   waiter order agree. One writer task writes whatever has accumulated in one `write`; one
//!   reader task decodes replies and hands each to the oldest waiter. Concurrent callers are
//!   pipelined without asking; [`Client::pipeline`] batches explicitly.
//! - Callers never touch the socket, so a caller that gives up (a timeout, a dropped request)
//!   cannot leave half a command on the wire: its reply is read and discarded.
//! - When the connection dies (the server restarts, `CLIENT KILL`), every command in flight
//!   fails with a 503 [`Error`] and the next command opens a new connection. A command that
//!   gets no reply within [`RedisConfig::command_timeout`] fails with a 503 too; if nothing at all
//!   arrived on the connection meanwhile, the connection is presumed dead and replaced.
//! - Publish/subscribe needs a connection of its own: [`Subscriber`] owns one, remembers its
//!   channels and patterns, and subscribes to them again after a reconnect.
//!
//! Only RESP2 is spoken, so the client works with every Redis since 2.0 and with its forks.
//!
//! ```no_run
//! use squall::db::redis::{Client, RedisConfig};
//!
//! # async fn demo() -> Result<(), squall::Error> {
//! let redis = Client::new(RedisConfig::from_env()?);
//! redis.set("greeting", "hello").await?;
//! let hits = redis.incr("hits").await?;
//! let greeting = redis.get("greeting").await?;
//! let raw = redis.cmd(&["HSET", "user:1", "name", "ada"]).await?;
//!
//! let mut batch = redis.pipeline();
//! batch.cmd(&["INCR", "a"]).cmd(&["INCR", "b"]);
//! let replies = batch.run().await?;
//! # let _ = (hits, greeting, raw, replies);
//! # Ok(())
//! # }
//! ```
//!
//! [`Error`]: crate::error::Error

// One file per concern: config (the URL), value (replies), cmd (encoding commands), conn (a
// running connection, its reader and writer tasks, and the waiters its replies go to), open
// (connecting and the handshake), client (Client and its typed helpers), pipeline (explicit
// batches), pubsub (Subscriber, whose connection has no tasks), stats (what clients and
// subscribers count for metrics). Replies reach their callers through futures-channel
// oneshots.
mod client;
mod cmd;
mod config;
mod conn;
mod open;
mod pipeline;
mod pubsub;
pub(crate) mod stats;
mod value;

pub use client::Client;
pub use cmd::Cmd;
pub use config::{RedisConfig, DEFAULT_URL};
pub use pipeline::Pipeline;
pub use pubsub::{Message, Subscriber};
pub use value::Value;
