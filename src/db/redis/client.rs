//! The client: [`Client`], how it opens and replaces its connection, and its typed helpers.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_channel::oneshot;
use glommio::sync::Semaphore;

use super::cmd::{encode, Cmd};
use super::config::RedisConfig;
use super::conn::{Conn, Waiter};
use super::open::{open_in_time, TlsCache};
use super::pipeline::Pipeline;
use super::pubsub::Subscriber;
use super::stats::Stats;
use super::value::{reply_error, unexpected, Value};
use crate::db::stats::{bump, Failure, Held};
use crate::error::Error;

/// A per-core Redis client: one connection, many commands in flight.
///
/// Cloning is cheap and every clone shares the connection. The client is `!Send`: build one
/// per core in the application factory. Dropping the last clone closes the connection.
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

struct Inner {
    config: RedisConfig,
    tls: TlsCache,
    conn: RefCell<Option<Rc<Conn>>>,
    /// Lets one caller at a time open the connection; the others wait and reuse it.
    gate: Semaphore,
    /// Connection attempts made, and why the last one failed (if it did).
    attempts: Cell<u64>,
    last_failure: RefCell<Option<String>>,
    stats: Rc<Stats>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.get_mut().take() {
            conn.fail("the client was dropped");
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("connected", &self.inner.live().is_some())
            .finish()
    }
}

impl Inner {
    fn live(&self) -> Option<Rc<Conn>> {
        self.conn
            .borrow()
            .as_ref()
            .filter(|conn| !conn.broken.get())
            .cloned()
    }

    /// The open connection, opening one if there is none. Callers that arrive while another
    /// opens it wait for that attempt and share its outcome.
    async fn connection(&self) -> Result<Rc<Conn>, Error> {
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        let _waiting = Held::new(&self.stats.waiters);
        let seen = self.attempts.get();
        let _permit = self
            .gate
            .acquire_permit(1)
            .await
            .map_err(|e| Error::internal("redis: connect gate closed").with_source(e))?;
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        if self.attempts.get() != seen {
            if let Some(reason) = self.last_failure.borrow().as_ref() {
                return Err(Error::unavailable(reason.clone()));
            }
        }
        self.attempts.set(seen.wrapping_add(1));
        bump(&self.stats.connects);
        match open_in_time(&self.config, &self.tls).await {
            Ok((stream, unread)) => {
                let conn = Conn::start(stream, unread);
                *self.conn.borrow_mut() = Some(Rc::clone(&conn));
                *self.last_failure.borrow_mut() = None;
                bump(&self.stats.opened);
                *self.stats.conn.borrow_mut() = Rc::downgrade(&conn);
                Ok(conn)
            }
            Err(e) => {
                bump(&self.stats.connect_failures);
                *self.last_failure.borrow_mut() = Some(e.to_string());
                Err(e)
            }
        }
    }
}

impl Client {
    /// A client for `config`. Nothing is opened until the first command.
    pub fn new(config: RedisConfig) -> Client {
        Client {
            inner: Rc::new(Inner {
                config: config.clone(),
                tls: TlsCache::default(),
                conn: RefCell::new(None),
                gate: Semaphore::new(1),
                attempts: Cell::new(0),
                last_failure: RefCell::new(None),
                stats: Stats::register(&config),
            }),
        }
    }

    /// A client for `config` whose connection is open (and authenticated) on return.
    pub async fn connect(config: RedisConfig) -> Result<Client, Error> {
        let client = Client::new(config);
        client.inner.connection().await?;
        Ok(client)
    }

    /// The configuration this client connects with.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// Sends one command, given as its parts (`&["SET", "k", "v"]`), and returns the reply.
    ///
    /// An error reply becomes an `Err` answering 500 (503 for `LOADING`, `BUSY` and other
    /// "try again" replies); a lost connection or timeout answers 503.
    pub async fn cmd<A: AsRef<[u8]>>(&self, parts: &[A]) -> Result<Value, Error> {
        self.send(|out| encode(out, parts.iter().map(AsRef::as_ref)))
            .await
    }

    /// Sends a command built with [`Cmd`] and returns the reply, as [`Client::cmd`].
    pub async fn query(&self, cmd: &Cmd) -> Result<Value, Error> {
        self.send(|out| encode(out, cmd.parts())).await
    }

    /// Starts an explicit batch of commands sent together, see [`Pipeline`].
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.clone())
    }

    /// What this client counts for metrics.
    pub(super) fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Opens a [`Subscriber`] on a connection of its own, with this client's configuration.
    pub async fn subscriber(&self) -> Result<Subscriber, Error> {
        Subscriber::connect(self.inner.config.clone()).await
    }

    async fn send(
        &self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), Error>,
    ) -> Result<Value, Error> {
        let value = self
            .round_trip(|conn| {
                let (tx, rx) = oneshot::channel();
                conn.enqueue(encode, Waiter::One(tx))?;
                Ok(rx)
            })
            .await?;
        match value {
            Value::Error(message) => {
                self.stats().failed(Failure::Server);
                Err(reply_error(&message))
            }
            value => Ok(value),
        }
    }

    /// Connects if needed, enqueues, and waits for the reply, all within the command timeout.
    pub(super) async fn round_trip<T>(
        &self,
        enqueue: impl FnOnce(&Conn) -> Result<oneshot::Receiver<Result<T, Error>>, Error>,
    ) -> Result<T, Error> {
        let stats = self.stats();
        bump(&stats.commands);
        let sent: RefCell<Option<(Rc<Conn>, u64)>> = RefCell::new(None);
        let exchange = async {
            let lost = |_: &Error| stats.failed(Failure::Connection);
            let conn = self.inner.connection().await.inspect_err(lost)?;
            let rx = enqueue(&conn).inspect_err(|_| {
                // On a live connection, a command that cannot be encoded.
                let failure = if conn.broken.get() {
                    Failure::Connection
                } else {
                    Failure::Client
                };
                stats.failed(failure);
            })?;
            *sent.borrow_mut() = Some((Rc::clone(&conn), conn.replies.get()));
            // Canceled: the connection dropped this command's waiter without answering.
            rx.await
                .unwrap_or_else(|_| Err(Error::unavailable("redis connection lost")))
                .inspect_err(lost)
        };
        let timeout = self.inner.config.command_timeout;
        match crate::deadline::within(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                stats.failed(Failure::Timeout);
                if let Some((conn, seen)) = sent.borrow_mut().take() {
                    // Nothing at all arrived while this command waited: a server that is
                    // merely slow would have answered someone. Start over on a new socket.
                    if conn.replies.get() == seen && !conn.broken.get() {
                        conn.fail(&format!("no reply within {timeout:?}"));
                    }
                }
                Err(Error::unavailable(format!(
                    "redis command timed out after {timeout:?}"
                )))
            }
        }
    }

    // -- typed helpers ------------------------------------------------------------------------

    /// `PING`: a round trip that checks the connection.
    pub async fn ping(&self) -> Result<(), Error> {
        self.cmd(&["PING"]).await.map(drop)
    }

    /// `GET key`: the value, or `None` if the key does not exist.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, Error> {
        match self.cmd(&[b"GET".as_slice(), key.as_ref()]).await? {
            Value::Nil => Ok(None),
            Value::Bulk(b) => Ok(Some(b)),
            other => Err(unexpected("GET", &other)),
        }
    }

    /// `SET key value`.
    pub async fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        self.cmd(&[b"SET".as_slice(), key.as_ref(), value.as_ref()])
            .await
            .map(drop)
    }

    /// `SET key value PX ms`: set with an expiry, to the millisecond.
    pub async fn set_ex(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<(), Error> {
        let ms = itoa::Buffer::new().format(millis(ttl)).to_owned();
        self.cmd(&[
            b"SET".as_slice(),
            key.as_ref(),
            value.as_ref(),
            b"PX",
            ms.as_bytes(),
        ])
        .await
        .map(drop)
    }

    /// `SET key value NX [PX ms]`: set only if the key does not exist; true if it was set.
    pub async fn set_nx(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool, Error> {
        let mut cmd = Cmd::new("SET");
        cmd.arg(key).arg(value).arg("NX");
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg_int(millis(ttl));
        }
        Ok(!self.query(&cmd).await?.is_nil())
    }

    /// `INCR key`: the new value.
    pub async fn incr(&self, key: impl AsRef<[u8]>) -> Result<i64, Error> {
        self.int("INCR", &[b"INCR".as_slice(), key.as_ref()]).await
    }

    /// `INCRBY key by`: the new value. A negative `by` decrements.
    pub async fn incr_by(&self, key: impl AsRef<[u8]>, by: i64) -> Result<i64, Error> {
        let by = itoa::Buffer::new().format(by).to_owned();
        self.int(
            "INCRBY",
            &[b"INCRBY".as_slice(), key.as_ref(), by.as_bytes()],
        )
        .await
    }

    /// `MGET key...`: one entry per key, `None` where a key does not exist.
    pub async fn mget<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let parts = std::iter::once(b"MGET".as_slice()).chain(keys.iter().map(AsRef::as_ref));
        let reply = self.send(|out| encode(out, parts)).await?;
        let Value::Array(values) = reply else {
            return Err(unexpected("MGET", &reply));
        };
        values
            .into_iter()
            .map(|value| match value {
                Value::Nil => Ok(None),
                Value::Bulk(b) => Ok(Some(b)),
                other => Err(unexpected("MGET", &other)),
            })
            .collect()
    }

    /// `MSET key value...`.
    pub async fn mset<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        pairs: &[(K, V)],
    ) -> Result<(), Error> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut cmd = Cmd::new("MSET");
        for (key, value) in pairs {
            cmd.arg(key).arg(value);
        }
        self.query(&cmd).await.map(drop)
    }

    /// `DEL key...`: how many keys existed.
    pub async fn del<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<i64, Error> {
        if keys.is_empty() {
            return Ok(0);
        }
        let parts = std::iter::once(b"DEL".as_slice()).chain(keys.iter().map(AsRef::as_ref));
        match self.send(|out| encode(out, parts)).await? {
            Value::Int(n) => Ok(n),
            other => Err(unexpected("DEL", &other)),
        }
    }

    /// `EXISTS key`.
    pub async fn exists(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        Ok(self
            .int("EXISTS", &[b"EXISTS".as_slice(), key.as_ref()])
            .await?
            > 0)
    }

    /// `PEXPIRE key ms`: true if the key exists and now expires after `ttl`.
    pub async fn expire(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool, Error> {
        let ms = itoa::Buffer::new().format(millis(ttl)).to_owned();
        let set = self
            .int(
                "PEXPIRE",
                &[b"PEXPIRE".as_slice(), key.as_ref(), ms.as_bytes()],
            )
            .await?;
        Ok(set == 1)
    }

    /// `PTTL key`: the time left to live, or `None` if the key is missing or never expires.
    pub async fn ttl(&self, key: impl AsRef<[u8]>) -> Result<Option<Duration>, Error> {
        let ms = self
            .int("PTTL", &[b"PTTL".as_slice(), key.as_ref()])
            .await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    /// `HGET key field`.
    pub async fn hget(
        &self,
        key: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>, Error> {
        match self
            .cmd(&[b"HGET".as_slice(), key.as_ref(), field.as_ref()])
            .await?
        {
            Value::Nil => Ok(None),
            Value::Bulk(b) => Ok(Some(b)),
            other => Err(unexpected("HGET", &other)),
        }
    }

    /// `HSET key field value`: true if the field is new.
    pub async fn hset(
        &self,
        key: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<bool, Error> {
        let parts = [
            b"HSET".as_slice(),
            key.as_ref(),
            field.as_ref(),
            value.as_ref(),
        ];
        Ok(self.int("HSET", &parts).await? == 1)
    }

    /// `PUBLISH channel message`: how many subscribers received it.
    pub async fn publish(
        &self,
        channel: impl AsRef<[u8]>,
        message: impl AsRef<[u8]>,
    ) -> Result<i64, Error> {
        let parts = [b"PUBLISH".as_slice(), channel.as_ref(), message.as_ref()];
        self.int("PUBLISH", &parts).await
    }

    async fn int(&self, name: &str, parts: &[&[u8]]) -> Result<i64, Error> {
        match self.cmd(parts).await? {
            Value::Int(n) => Ok(n),
            other => Err(unexpected(name, &other)),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
