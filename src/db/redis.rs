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
//!   gets no reply within [`Config::command_timeout`] fails with a 503 too; if nothing at all
//!   arrived on the connection meanwhile, the connection is presumed dead and replaced.
//! - Publish/subscribe needs a connection of its own: [`Subscriber`] owns one, remembers its
//!   channels and patterns, and subscribes to them again after a reconnect.
//!
//! Only RESP2 is spoken, so the client works with every Redis since 2.0 and with its forks.
//!
//! ```no_run
//! use squall::db::redis::{Client, Config};
//!
//! # async fn demo() -> Result<(), squall::Error> {
//! let redis = Client::new(Config::from_env()?);
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

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite, Stream};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::encode::extend_encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, BytesFrame};
use smallvec::SmallVec;

use crate::Error;

/// The URL used when `REDIS_URL` is not set.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// How many bytes one socket read asks for.
const READ_CHUNK: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Where the Redis server is and how long to wait for it.
///
/// Built from a URL, `redis://[[username]:password@]host[:port][/db]`, usually the `REDIS_URL`
/// environment variable; the password may be percent-encoded. `Debug` never shows the password.
#[derive(Clone)]
pub struct Config {
    host: String,
    port: u16,
    db: u32,
    username: Option<String>,
    password: Option<String>,
    client_name: Option<String>,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl Default for Config {
    /// `redis://127.0.0.1:6379`, database 0, no password, 1 s connect and 2 s command timeouts.
    fn default() -> Config {
        Config {
            host: "127.0.0.1".to_owned(),
            port: 6379,
            db: 0,
            username: None,
            password: None,
            client_name: None,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
        }
    }
}

impl Config {
    /// Parses `redis://[[username]:password@]host[:port][/db]`.
    ///
    /// The port defaults to 6379 and the database to 0. `rediss://` (TLS) and Unix sockets are
    /// not supported and say so. Error messages never repeat the password.
    pub fn from_url(url: &str) -> Result<Config, Error> {
        let bad = |why: String| Error::config(format!("invalid redis URL: {why}"));
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("expected redis://host[:port][/db]".to_owned()));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "redis" => {}
            "rediss" => return Err(bad("TLS (rediss://) is not supported".to_owned())),
            "unix" | "redis+unix" => {
                return Err(bad(
                    "unix sockets are not supported; use redis://host".to_owned()
                ))
            }
            other => return Err(bad(format!("unknown scheme {other:?}, expected redis://"))),
        }
        if rest.contains(['?', '#']) {
            return Err(bad(
                "query parameters and fragments are not supported".to_owned()
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let mut config = Config::default();
        let hostport = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let Some((user, password)) = userinfo.split_once(':') else {
                    return Err(bad(
                        "credentials must be user:password@ or :password@".to_owned()
                    ));
                };
                let decode = |part: &str, what: &str| {
                    percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .map(Cow::into_owned)
                        .map_err(|_| bad(format!("the {what} is not valid percent-encoded UTF-8")))
                };
                if !user.is_empty() {
                    config.username = Some(decode(user, "username")?);
                }
                config.password = Some(decode(password, "password")?);
                hostport
            }
            None => authority,
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(bad("unterminated [ in an IPv6 host".to_owned()));
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(bad(format!("unexpected {after:?} after the host"))),
                },
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host".to_owned()));
        }
        config.host = host.to_owned();
        if let Some(port) = port {
            config.port = match port.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad(format!("invalid port {port:?}"))),
            };
        }
        if !path.is_empty() {
            config.db = path
                .parse()
                .map_err(|_| bad(format!("invalid database index {path:?}")))?;
        }
        Ok(config)
    }

    /// Reads `REDIS_URL`, falling back to [`DEFAULT_URL`] when it is unset or empty.
    pub fn from_env() -> Result<Config, Error> {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => Config::from_url(url.trim()),
            Ok(_) | Err(std::env::VarError::NotPresent) => Config::from_url(DEFAULT_URL),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::config(
                "invalid redis URL: REDIS_URL is not valid UTF-8",
            )),
        }
    }

    /// How long opening a connection (TCP connect plus `AUTH`/`SELECT`) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Config {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command or pipeline may take from call to reply, connecting included.
    ///
    /// Blocking commands (`BLPOP` and friends) need a timeout longer than their own.
    pub fn command_timeout(mut self, timeout: Duration) -> Config {
        self.command_timeout = timeout;
        self
    }

    /// A name sent with `CLIENT SETNAME` on every connection, shown by `CLIENT LIST`.
    ///
    /// Names may not contain spaces; Redis rejects such a name when connecting.
    pub fn client_name(mut self, name: impl Into<String>) -> Config {
        self.client_name = Some(name.into());
        self
    }

    /// The server's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database index selected on every connection.
    pub fn db(&self) -> u32 {
        self.db
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_name", &self.client_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Values and commands
// ---------------------------------------------------------------------------------------------

/// One reply from Redis (RESP2).
///
/// A top-level error reply becomes an `Err` of the call that sent the command; `Value::Error`
/// only appears nested, for example inside the reply to `EXEC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// The null bulk string or null array: a missing key, a timed-out `BLPOP`.
    Nil,
    /// An integer reply (`INCR`, `DEL`, `EXISTS`, ...).
    Int(i64),
    /// A bulk string: binary-safe data.
    Bulk(Bytes),
    /// A simple status string such as `OK` or `PONG`.
    Status(Bytes),
    /// An array reply (`MGET`, `KEYS`, `EXEC`, ...).
    Array(Vec<Value>),
    /// An error reply nested in an array.
    Error(String),
}

impl Value {
    /// Whether this is [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The bytes of a bulk or status string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) | Value::Status(b) => Some(b),
            _ => None,
        }
    }

    /// A bulk or status string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// An integer reply, or a string holding a decimal integer (`GET` of a counter).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => self.as_str().and_then(|s| s.parse().ok()),
        }
    }

    /// Takes the bytes of a bulk or status string without copying.
    pub fn into_bytes(self) -> Option<Bytes> {
        match self {
            Value::Bulk(b) | Value::Status(b) => Some(b),
            _ => None,
        }
    }

    /// Takes the elements of an array reply.
    pub fn into_array(self) -> Option<Vec<Value>> {
        match self {
            Value::Array(values) => Some(values),
            _ => None,
        }
    }
}

impl From<BytesFrame> for Value {
    fn from(frame: BytesFrame) -> Value {
        match frame {
            BytesFrame::Null => Value::Nil,
            BytesFrame::Integer(n) => Value::Int(n),
            BytesFrame::BulkString(b) => Value::Bulk(b),
            BytesFrame::SimpleString(b) => Value::Status(b),
            BytesFrame::Error(message) => Value::Error(message.to_string()),
            BytesFrame::Array(frames) => {
                Value::Array(frames.into_iter().map(Value::from).collect())
            }
        }
    }
}

/// A command built argument by argument, for arguments of mixed types.
///
/// ```
/// use squall::db::redis::Cmd;
///
/// let mut cmd = Cmd::new("SET");
/// cmd.arg("counter").arg_int(42).arg("EX").arg_int(60);
/// assert_eq!(cmd.len(), 5);
/// ```
#[derive(Clone, Debug)]
pub struct Cmd {
    data: Vec<u8>,
    ends: SmallVec<[usize; 8]>,
}

impl Cmd {
    /// A command named `name` (`"GET"`, `"HSET"`, ...) with no arguments yet.
    pub fn new(name: impl AsRef<[u8]>) -> Cmd {
        let mut cmd = Cmd {
            data: Vec::with_capacity(64),
            ends: SmallVec::new(),
        };
        cmd.arg(name);
        cmd
    }

    /// Appends a binary-safe argument.
    pub fn arg(&mut self, arg: impl AsRef<[u8]>) -> &mut Cmd {
        self.data.extend_from_slice(arg.as_ref());
        self.ends.push(self.data.len());
        self
    }

    /// Appends an integer argument in decimal.
    pub fn arg_int(&mut self, n: i64) -> &mut Cmd {
        self.arg(itoa::Buffer::new().format(n))
    }

    /// The number of parts, the command name included.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the command has no parts; never true for a command made by [`Cmd::new`].
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn parts(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.ends.iter().enumerate().map(|(i, &end)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.data[start..end]
        })
    }
}

/// Encodes one command as a RESP2 array of bulk strings at the end of `out`.
fn encode<'a>(out: &mut BytesMut, parts: impl Iterator<Item = &'a [u8]>) -> Result<(), Error> {
    let frames: SmallVec<[BorrowedFrame<'a>; 8]> = parts.map(BorrowedFrame::BulkString).collect();
    if frames.is_empty() {
        return Err(Error::internal("redis: empty command"));
    }
    extend_encode_borrowed(out, &BorrowedFrame::Array(&frames), false)
        .map(drop)
        .map_err(|e| Error::internal("redis: cannot encode command").with_source(e))
}

/// The error for an error reply. Replies that say "try later" answer 503, others 500.
fn reply_error(message: &str) -> Error {
    const TRANSIENT: [&str; 6] = [
        "LOADING",
        "BUSY",
        "MASTERDOWN",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "READONLY",
    ];
    let code = message.split(' ').next().unwrap_or_default();
    let text = format!("redis: {message}");
    if TRANSIENT.contains(&code) {
        Error::unavailable(text)
    } else {
        Error::internal(text)
    }
}

fn unexpected(command: &str, value: &Value) -> Error {
    Error::internal(format!("redis: unexpected reply to {command}: {value:?}"))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------
// A one-shot slot: one reply handed from the reader task to one caller
// ---------------------------------------------------------------------------------------------

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    closed: bool,
}

struct Sender<T>(Rc<RefCell<Slot<T>>>);

struct Receiver<T>(Rc<RefCell<Slot<T>>>);

fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
        closed: false,
    }));
    (Sender(Rc::clone(&slot)), Receiver(slot))
}

impl<T> Sender<T> {
    fn send(self, value: T) {
        let waker = {
            let mut slot = self.0.borrow_mut();
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = self.0.borrow_mut();
            slot.closed = true;
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    /// `None` when the sender was dropped without sending.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = self.0.borrow_mut();
        if let Some(value) = slot.value.take() {
            return Poll::Ready(Some(value));
        }
        if slot.closed {
            return Poll::Ready(None);
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------------
// One connection: the socket, the output buffer, the waiters, and its two tasks
// ---------------------------------------------------------------------------------------------

/// Who is waiting for the next reply(ies) on a connection.
enum Waiter {
    One(Sender<Result<Value, Error>>),
    Batch {
        expected: usize,
        replies: Vec<Value>,
        tx: Sender<Result<Vec<Value>, Error>>,
    },
}

impl Waiter {
    fn fail(self, reason: &str) {
        let error = || Error::unavailable(format!("redis connection lost: {reason}"));
        match self {
            Waiter::One(tx) => tx.send(Err(error())),
            Waiter::Batch { tx, .. } => tx.send(Err(error())),
        }
    }
}

/// Shared by the client (which enqueues), the writer task and the reader task. Every borrow
/// below ends before the next `.await` or poll of anything else, so none can overlap.
struct Conn {
    /// `None` once the connection has failed: dropping the stream closes the socket.
    stream: RefCell<Option<TcpStream>>,
    /// Commands encoded but not yet handed to the writer task.
    out: RefCell<BytesMut>,
    /// One entry per command or pipeline on the wire, oldest first.
    waiters: RefCell<VecDeque<Waiter>>,
    broken: Cell<bool>,
    /// Replies received so far; a timed-out caller uses it to tell a slow server from a dead
    /// connection.
    replies: Cell<u64>,
    writer: Cell<Option<Waker>>,
    reader: Cell<Option<Waker>>,
}

impl Conn {
    /// Starts the reader and writer tasks on an open, authenticated connection.
    fn start(stream: TcpStream, unread: BytesMut) -> Rc<Conn> {
        let conn = Rc::new(Conn {
            stream: RefCell::new(Some(stream)),
            out: RefCell::new(BytesMut::with_capacity(READ_CHUNK)),
            waiters: RefCell::new(VecDeque::new()),
            broken: Cell::new(false),
            replies: Cell::new(0),
            writer: Cell::new(None),
            reader: Cell::new(None),
        });
        glommio::spawn_local(read_loop(Rc::clone(&conn), unread)).detach();
        glommio::spawn_local(write_loop(Rc::clone(&conn))).detach();
        conn
    }

    /// Encodes a command and queues its waiter in one step, so wire order is waiter order.
    fn enqueue(
        &self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), Error>,
        waiter: Waiter,
    ) -> Result<(), Error> {
        if self.broken.get() {
            return Err(Error::unavailable("redis connection lost"));
        }
        {
            let mut out = self.out.borrow_mut();
            let mark = out.len();
            if let Err(e) = encode(&mut out) {
                out.truncate(mark);
                return Err(e);
            }
        }
        self.waiters.borrow_mut().push_back(waiter);
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
        Ok(())
    }

    /// Hands one decoded reply to the oldest waiter. False if nobody was waiting.
    fn dispatch(&self, frame: BytesFrame) -> bool {
        self.replies.set(self.replies.get() + 1);
        let value = Value::from(frame);
        let mut waiters = self.waiters.borrow_mut();
        let done = match waiters.front_mut() {
            None => return false,
            Some(Waiter::One(_)) => {
                let waiter = waiters.pop_front();
                drop(waiters);
                if let Some(Waiter::One(tx)) = waiter {
                    tx.send(Ok(value));
                }
                return true;
            }
            Some(Waiter::Batch {
                expected, replies, ..
            }) => {
                replies.push(value);
                replies.len() >= *expected
            }
        };
        if done {
            let waiter = waiters.pop_front();
            drop(waiters);
            if let Some(Waiter::Batch { replies, tx, .. }) = waiter {
                tx.send(Ok(replies));
            }
        }
        true
    }

    /// Marks the connection dead, closes the socket, fails every waiter and stops both tasks.
    /// Idempotent.
    fn fail(&self, reason: &str) {
        self.broken.set(true);
        drop(self.stream.borrow_mut().take());
        self.out.borrow_mut().clear();
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waiter in waiters {
            waiter.fail(reason);
        }
        for waker in [self.writer.take(), self.reader.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
    }

    fn poll_read(
        &self,
        cx: &mut Context<'_>,
        scratch: &mut [u8],
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        let mut stream = self.stream.borrow_mut();
        let Some(stream) = stream.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let result = poll_read_into(stream, cx, scratch, buf);
        if result.is_pending() {
            self.reader.set(Some(cx.waker().clone()));
        }
        result
    }

    fn poll_write(&self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        let mut stream = self.stream.borrow_mut();
        let Some(stream) = stream.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let result = Pin::new(stream).poll_write(cx, bytes);
        if result.is_pending() {
            self.writer.set(Some(cx.waker().clone()));
        }
        result
    }
}

/// Reads what the socket has (through `scratch`) and appends it to `buf`, in one poll, so a
/// dropped read never leaves partial state behind.
fn poll_read_into(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    scratch: &mut [u8],
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let n = ready!(Pin::new(stream).poll_read(cx, scratch))?;
    buf.extend_from_slice(&scratch[..n]);
    Poll::Ready(Ok(n))
}

/// The reader task: decode every complete reply, hand it over, read more.
async fn read_loop(conn: Rc<Conn>, mut buf: BytesMut) {
    let mut scratch = vec![0; READ_CHUNK];
    let reason: Cow<'static, str> = 'conn: loop {
        loop {
            match decode_bytes_mut(&mut buf) {
                Ok(Some((frame, _, _))) => {
                    if !conn.dispatch(frame) {
                        break 'conn "a reply arrived that no command asked for".into();
                    }
                }
                Ok(None) => break,
                Err(e) => break 'conn format!("not a RESP2 reply: {e}").into(),
            }
        }
        match poll_fn(|cx| conn.poll_read(cx, &mut scratch, &mut buf)).await {
            Ok(0) => break "closed by the server".into(),
            Ok(_) => {}
            Err(e) if conn.broken.get() => break e.to_string().into(),
            Err(e) => break format!("read failed: {e}").into(),
        }
    };
    conn.fail(&reason);
}

/// The writer task: wait for encoded commands, write all of them, repeat.
async fn write_loop(conn: Rc<Conn>) {
    // Two buffers swapped back and forth: callers fill one while this task writes the other.
    let mut chunk = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let more = poll_fn(|cx| {
            if conn.broken.get() {
                Poll::Ready(false)
            } else if !conn.out.borrow().is_empty() {
                Poll::Ready(true)
            } else {
                conn.writer.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        if !more {
            return;
        }
        std::mem::swap(&mut chunk, &mut *conn.out.borrow_mut());
        while !chunk.is_empty() {
            match poll_fn(|cx| conn.poll_write(cx, &chunk)).await {
                Ok(0) => return conn.fail("the socket accepts no more bytes"),
                Ok(n) => chunk.advance(n),
                Err(e) => return conn.fail(&format!("write failed: {e}")),
            }
        }
        chunk.clear();
    }
}

// ---------------------------------------------------------------------------------------------
// Opening a connection
// ---------------------------------------------------------------------------------------------

/// [`open`] within the connect timeout.
async fn open_in_time(config: &Config) -> Result<(TcpStream, BytesMut), Error> {
    let timeout = config.connect_timeout;
    match glommio::future::timeout(timeout, open(config)).await {
        Ok(result) => result,
        Err(_) => Err(Error::unavailable(format!(
            "connecting to redis at {}:{} timed out after {timeout:?}",
            config.host, config.port
        ))),
    }
}

/// Connects and runs `AUTH`, `SELECT` and `CLIENT SETNAME` as configured. Returns the stream
/// and any bytes read past the handshake replies.
async fn open(config: &Config) -> Result<(TcpStream, BytesMut), Error> {
    let target = || format!("{}:{}", config.host, config.port);
    let mut failure = io::Error::other("the host resolved to no addresses");
    let mut connected = None;
    // Every address in turn: `localhost` may resolve to ::1 first while Redis listens on
    // 127.0.0.1 only.
    for addr in resolve(config).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(e) => failure = e.into(),
        }
    }
    let Some(mut stream) = connected else {
        return Err(
            Error::unavailable(format!("cannot connect to redis at {}", target()))
                .with_source(failure),
        );
    };
    stream.set_nodelay(true).map_err(|e| {
        Error::unavailable(format!("cannot set TCP_NODELAY on {}", target()))
            .with_source(io::Error::from(e))
    })?;

    let mut out = BytesMut::new();
    let mut sent: SmallVec<[&str; 3]> = SmallVec::new();
    if let Some(password) = &config.password {
        match &config.username {
            Some(user) => encode(
                &mut out,
                [b"AUTH".as_slice(), user.as_bytes(), password.as_bytes()].into_iter(),
            )?,
            None => encode(
                &mut out,
                [b"AUTH".as_slice(), password.as_bytes()].into_iter(),
            )?,
        }
        sent.push("AUTH");
    }
    if config.db != 0 {
        let db = itoa::Buffer::new().format(config.db).to_owned();
        encode(&mut out, [b"SELECT".as_slice(), db.as_bytes()].into_iter())?;
        sent.push("SELECT");
    }
    if let Some(name) = &config.client_name {
        encode(
            &mut out,
            [b"CLIENT".as_slice(), b"SETNAME", name.as_bytes()].into_iter(),
        )?;
        sent.push("CLIENT SETNAME");
    }
    let mut buf = BytesMut::new();
    if sent.is_empty() {
        return Ok((stream, buf));
    }
    let lost = |e: io::Error| {
        Error::unavailable(format!(
            "redis connection to {} lost while connecting",
            target()
        ))
        .with_source(e)
    };
    futures_lite::AsyncWriteExt::write_all(&mut stream, &out)
        .await
        .map_err(lost)?;
    let mut scratch = [0; 512];
    for command in sent {
        match read_frame(&mut stream, &mut scratch, &mut buf)
            .await
            .map_err(lost)?
        {
            BytesFrame::Error(message) => {
                return Err(Error::unavailable(format!(
                    "redis at {} rejected {command}: {message}",
                    target()
                )))
            }
            _ => continue,
        }
    }
    Ok((stream, buf))
}

/// The addresses of the configured host: IP literals directly, names on glommio's blocking
/// thread pool (the system resolver blocks).
async fn resolve(config: &Config) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = config.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, config.port)]);
    }
    let (host, port) = (config.host.clone(), config.port);
    glommio::executor()
        .spawn_blocking(move || {
            (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>)
        })
        .await
        .map_err(|e| {
            Error::unavailable(format!("cannot resolve redis host {:?}", config.host))
                .with_source(e)
        })
}

/// Reads until `buf` holds one complete frame, and takes it.
async fn read_frame(
    stream: &mut TcpStream,
    scratch: &mut [u8],
    buf: &mut BytesMut,
) -> io::Result<BytesFrame> {
    loop {
        match decode_bytes_mut(buf) {
            Ok(Some((frame, _, _))) => return Ok(frame),
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
        let n = poll_fn(|cx| poll_read_into(stream, cx, scratch, buf)).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed by the server",
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// A per-core Redis client: one connection, many commands in flight.
///
/// Cloning is cheap and every clone shares the connection. The client is `!Send`: build one
/// per core in the application factory. Dropping the last clone closes the connection.
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

struct Inner {
    config: Config,
    conn: RefCell<Option<Rc<Conn>>>,
    /// Lets one caller at a time open the connection; the others wait and reuse it.
    gate: Semaphore,
    /// Connection attempts made, and why the last one failed (if it did).
    attempts: Cell<u64>,
    last_failure: RefCell<Option<String>>,
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
        match open_in_time(&self.config).await {
            Ok((stream, unread)) => {
                let conn = Conn::start(stream, unread);
                *self.conn.borrow_mut() = Some(Rc::clone(&conn));
                *self.last_failure.borrow_mut() = None;
                Ok(conn)
            }
            Err(e) => {
                *self.last_failure.borrow_mut() = Some(e.to_string());
                Err(e)
            }
        }
    }
}

impl Client {
    /// A client for `config`. Nothing is opened until the first command.
    pub fn new(config: Config) -> Client {
        Client {
            inner: Rc::new(Inner {
                config,
                conn: RefCell::new(None),
                gate: Semaphore::new(1),
                attempts: Cell::new(0),
                last_failure: RefCell::new(None),
            }),
        }
    }

    /// A client for `config` whose connection is open (and authenticated) on return.
    pub async fn connect(config: Config) -> Result<Client, Error> {
        let client = Client::new(config);
        client.inner.connection().await?;
        Ok(client)
    }

    /// The configuration this client connects with.
    pub fn config(&self) -> &Config {
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
        Pipeline {
            client: self.clone(),
            out: BytesMut::new(),
            count: 0,
            atomic: false,
            error: None,
        }
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
                let (tx, rx) = oneshot();
                conn.enqueue(encode, Waiter::One(tx))?;
                Ok(rx)
            })
            .await?;
        match value {
            Value::Error(message) => Err(reply_error(&message)),
            value => Ok(value),
        }
    }

    /// Connects if needed, enqueues, and waits for the reply, all within the command timeout.
    async fn round_trip<T>(
        &self,
        enqueue: impl FnOnce(&Conn) -> Result<Receiver<Result<T, Error>>, Error>,
    ) -> Result<T, Error> {
        let sent: RefCell<Option<(Rc<Conn>, u64)>> = RefCell::new(None);
        let exchange = async {
            let conn = self.inner.connection().await?;
            let rx = enqueue(&conn)?;
            *sent.borrow_mut() = Some((Rc::clone(&conn), conn.replies.get()));
            rx.await
                .unwrap_or_else(|| Err(Error::unavailable("redis connection lost")))
        };
        let timeout = self.inner.config.command_timeout;
        match glommio::future::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
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

// ---------------------------------------------------------------------------------------------
// Explicit pipelines
// ---------------------------------------------------------------------------------------------

/// Commands sent in one write and answered together, made by [`Client::pipeline`].
///
/// Commands are encoded as they are added; [`Pipeline::run`] queues all of them at once, so
/// no other caller's command lands between them on the wire. With [`Pipeline::atomic`] they are
/// wrapped in `MULTI`/`EXEC` and Redis also runs them without interleaving.
pub struct Pipeline {
    client: Client,
    out: BytesMut,
    count: usize,
    atomic: bool,
    error: Option<Error>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("commands", &self.count)
            .field("atomic", &self.atomic)
            .finish()
    }
}

impl Pipeline {
    /// Adds a command given as its parts.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, parts: &[A]) -> &mut Pipeline {
        self.push(|out| encode(out, parts.iter().map(AsRef::as_ref)))
    }

    /// Adds a command built with [`Cmd`].
    pub fn query(&mut self, cmd: &Cmd) -> &mut Pipeline {
        self.push(|out| encode(out, cmd.parts()))
    }

    /// Wraps the commands in `MULTI`/`EXEC`, so Redis runs them as one transaction.
    pub fn atomic(&mut self) -> &mut Pipeline {
        self.atomic = true;
        self
    }

    /// How many commands have been added.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no command has been added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn push(&mut self, encode: impl FnOnce(&mut BytesMut) -> Result<(), Error>) -> &mut Pipeline {
        if self.error.is_none() {
            match encode(&mut self.out) {
                Ok(()) => self.count += 1,
                Err(e) => self.error = Some(e),
            }
        }
        self
    }

    /// Sends every command and returns one reply per command, in order.
    ///
    /// If any command got an error reply, returns that error (the first one) instead; the
    /// other commands still ran. The whole batch shares one command timeout.
    pub async fn run(self) -> Result<Vec<Value>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.count == 0 {
            return Ok(Vec::new());
        }
        let (body, count, atomic) = (self.out, self.count, self.atomic);
        let expected = if atomic { count + 2 } else { count };
        let mut replies = self
            .client
            .round_trip(|conn| {
                let (tx, rx) = oneshot();
                let waiter = Waiter::Batch {
                    expected,
                    replies: Vec::with_capacity(expected),
                    tx,
                };
                conn.enqueue(
                    |out| {
                        if atomic {
                            encode(out, [b"MULTI".as_slice()].into_iter())?;
                        }
                        out.extend_from_slice(&body);
                        if atomic {
                            encode(out, [b"EXEC".as_slice()].into_iter())?;
                        }
                        Ok(())
                    },
                    waiter,
                )?;
                Ok(rx)
            })
            .await?;
        if let Some((i, Value::Error(message))) = replies
            .iter()
            .enumerate()
            .find(|(_, v)| matches!(v, Value::Error(_)))
        {
            let error = reply_error(message);
            return Err(if atomic && i == expected - 1 {
                error
            } else {
                let index = if atomic { i.saturating_sub(1) } else { i };
                Error::new(
                    error.status(),
                    format!("{} (command {index})", error.message()),
                )
            });
        }
        if atomic {
            return match replies.pop() {
                Some(Value::Array(results)) => Ok(results),
                Some(Value::Nil) => Err(Error::internal("redis: transaction aborted")),
                other => Err(unexpected("EXEC", &other.unwrap_or(Value::Nil))),
            };
        }
        Ok(replies)
    }
}

// ---------------------------------------------------------------------------------------------
// Publish/subscribe
// ---------------------------------------------------------------------------------------------

/// One message delivered to a [`Subscriber`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The channel it was published to.
    pub channel: Bytes,
    /// What was published.
    pub payload: Bytes,
    /// The pattern that matched, for subscriptions made with [`Subscriber::psubscribe`].
    pub pattern: Option<Bytes>,
}

/// A connection in subscribe mode, delivering [`Message`]s from [`Subscriber::next`].
///
/// It remembers its channels and patterns. When the connection is lost, the next call to
/// `next` returns the error (messages published meanwhile are lost: that is pub/sub), and the
/// call after that reconnects and subscribes again, backing off while Redis stays away.
///
/// ```no_run
/// # async fn demo(redis: squall::db::redis::Client) -> Result<(), squall::Error> {
/// let mut news = redis.subscriber().await?;
/// news.subscribe(&["news"]).await?;
/// loop {
///     match news.next().await {
///         Ok(msg) => println!("{:?}: {:?}", msg.channel, msg.payload),
///         Err(e) => eprintln!("subscriber: {e}; resubscribing"),
///     }
/// }
/// # }
/// ```
pub struct Subscriber {
    config: Config,
    stream: Option<TcpStream>,
    buf: BytesMut,
    scratch: Box<[u8]>,
    /// Commands not yet written; kept here so a dropped call never leaves half of one.
    out: BytesMut,
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    /// Subscribe/unsubscribe confirmations still to come.
    unconfirmed: usize,
    queued: VecDeque<Message>,
    /// Connection attempts that failed in a row, for the backoff.
    failures: u32,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("connected", &self.stream.is_some())
            .field("channels", &self.channels.len())
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

/// Which subscription set a command changes.
#[derive(Clone, Copy)]
enum Change {
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
}

impl Subscriber {
    /// Opens a connection for subscribing.
    pub async fn connect(config: Config) -> Result<Subscriber, Error> {
        let mut subscriber = Subscriber {
            config,
            stream: None,
            buf: BytesMut::new(),
            scratch: vec![0; 4096].into_boxed_slice(),
            out: BytesMut::new(),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            unconfirmed: 0,
            queued: VecDeque::new(),
            failures: 0,
        };
        subscriber.ensure_connected().await?;
        Ok(subscriber)
    }

    /// `SUBSCRIBE`: returns once Redis has confirmed, so later publishes are delivered.
    ///
    /// This and the other subscription changes are remembered even when they fail (the
    /// connection was lost, say): the next reconnect subscribes to the updated set.
    pub async fn subscribe<A: AsRef<[u8]>>(&mut self, channels: &[A]) -> Result<(), Error> {
        self.change(Change::Subscribe, channels).await
    }

    /// `UNSUBSCRIBE` from some channels.
    pub async fn unsubscribe<A: AsRef<[u8]>>(&mut self, channels: &[A]) -> Result<(), Error> {
        self.change(Change::Unsubscribe, channels).await
    }

    /// `PSUBSCRIBE` to glob-style patterns (`news.*`).
    pub async fn psubscribe<A: AsRef<[u8]>>(&mut self, patterns: &[A]) -> Result<(), Error> {
        self.change(Change::PSubscribe, patterns).await
    }

    /// `PUNSUBSCRIBE` from some patterns.
    pub async fn punsubscribe<A: AsRef<[u8]>>(&mut self, patterns: &[A]) -> Result<(), Error> {
        self.change(Change::PUnsubscribe, patterns).await
    }

    /// How many channels and patterns this subscriber holds.
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// The next message, waiting as long as it takes; reconnects first if the connection was
    /// lost. An `Err` reports a lost connection or a failed reconnect; calling again retries.
    pub async fn next(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(message) = self.queued.pop_front() {
                return Ok(message);
            }
            self.ensure_connected().await?;
            self.read_one().await?;
        }
    }

    /// The messages as an endless stream; errors are items, as from [`Subscriber::next`].
    pub fn into_stream(self) -> impl Stream<Item = Result<Message, Error>> {
        futures_lite::stream::unfold(self, |mut subscriber| async move {
            let item = subscriber.next().await;
            Some((item, subscriber))
        })
    }

    async fn change<A: AsRef<[u8]>>(&mut self, change: Change, names: &[A]) -> Result<(), Error> {
        if names.is_empty() {
            return Ok(());
        }
        let (verb, set, add): (&[u8], _, _) = match change {
            Change::Subscribe => (b"SUBSCRIBE", &mut self.channels, true),
            Change::Unsubscribe => (b"UNSUBSCRIBE", &mut self.channels, false),
            Change::PSubscribe => (b"PSUBSCRIBE", &mut self.patterns, true),
            Change::PUnsubscribe => (b"PUNSUBSCRIBE", &mut self.patterns, false),
        };
        for name in names {
            if add {
                set.insert(name.as_ref().to_vec());
            } else {
                set.remove(name.as_ref());
            }
        }
        let timeout = self.config.command_timeout;
        let settle = async {
            if self.stream.is_none() {
                // Reconnecting subscribes to the updated sets.
                self.ensure_connected().await?;
            } else {
                let parts = std::iter::once(verb).chain(names.iter().map(AsRef::as_ref));
                encode(&mut self.out, parts)?;
                self.unconfirmed += names.len();
            }
            while self.unconfirmed > 0 {
                self.read_one().await?;
            }
            Ok(())
        };
        match glommio::future::timeout(timeout, settle).await {
            Ok(result) => result,
            Err(_) => Err(Error::unavailable(format!(
                "redis did not confirm the subscription change within {timeout:?}"
            ))),
        }
    }

    /// Connects (after a backoff if the last attempt failed) and subscribes to everything.
    async fn ensure_connected(&mut self) -> Result<(), Error> {
        if self.stream.is_some() {
            return Ok(());
        }
        if self.failures > 0 {
            let backoff =
                Duration::from_millis(50 << self.failures.min(6)).min(Duration::from_secs(2));
            glommio::timer::sleep(backoff).await;
        }
        let (stream, unread) = match open_in_time(&self.config).await {
            Ok(opened) => opened,
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                return Err(e);
            }
        };
        self.failures = 0;
        self.stream = Some(stream);
        self.buf = unread;
        self.out.clear();
        self.unconfirmed = 0;
        for (verb, set) in [
            (b"SUBSCRIBE".as_slice(), &self.channels),
            (b"PSUBSCRIBE".as_slice(), &self.patterns),
        ] {
            if !set.is_empty() {
                let parts = std::iter::once(verb).chain(set.iter().map(Vec::as_slice));
                encode(&mut self.out, parts)?;
                self.unconfirmed += set.len();
            }
        }
        Ok(())
    }

    /// Writes what is pending, then reads and handles one frame.
    async fn read_one(&mut self) -> Result<(), Error> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(Error::unavailable("redis subscriber is not connected"));
        };
        let io = async {
            while !self.out.is_empty() {
                let out = &self.out;
                let n = poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, out)).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                self.out.advance(n);
            }
            read_frame(stream, &mut self.scratch, &mut self.buf).await
        };
        match io.await {
            Ok(frame) => self.handle(frame),
            Err(e) => {
                self.stream = None;
                Err(Error::unavailable("redis subscriber connection lost").with_source(e))
            }
        }
    }

    fn handle(&mut self, frame: BytesFrame) -> Result<(), Error> {
        let bytes = |frame: BytesFrame| match frame {
            BytesFrame::BulkString(b) | BytesFrame::SimpleString(b) => Some(b),
            _ => None,
        };
        match frame {
            BytesFrame::Array(parts) => {
                let mut parts = parts.into_iter();
                let kind = parts.next().and_then(bytes).unwrap_or_default();
                match &kind[..] {
                    b"message" => {
                        if let (Some(channel), Some(payload)) =
                            (parts.next().and_then(bytes), parts.next().and_then(bytes))
                        {
                            self.queued.push_back(Message {
                                channel,
                                payload,
                                pattern: None,
                            });
                            return Ok(());
                        }
                    }
                    b"pmessage" => {
                        if let (Some(pattern), Some(channel), Some(payload)) = (
                            parts.next().and_then(bytes),
                            parts.next().and_then(bytes),
                            parts.next().and_then(bytes),
                        ) {
                            self.queued.push_back(Message {
                                channel,
                                payload,
                                pattern: Some(pattern),
                            });
                            return Ok(());
                        }
                    }
                    b"subscribe" | b"unsubscribe" | b"psubscribe" | b"punsubscribe" => {
                        self.unconfirmed = self.unconfirmed.saturating_sub(1);
                        return Ok(());
                    }
                    b"pong" => return Ok(()),
                    _ => {}
                }
                self.stream = None;
                Err(Error::internal(
                    "redis: unexpected message on a subscriber connection",
                ))
            }
            BytesFrame::Error(message) => {
                // Confirmations can no longer be counted: start over on a new connection.
                self.stream = None;
                Err(reply_error(&message))
            }
            _ => {
                self.stream = None;
                Err(Error::internal(
                    "redis: unexpected reply on a subscriber connection",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    #[test]
    fn urls_parse_with_defaults() {
        let c = Config::from_url("redis://localhost").expect("valid");
        assert_eq!((c.host(), c.port(), c.db()), ("localhost", 6379, 0));
        let c = Config::from_url("redis://10.0.0.2:6380/3").expect("valid");
        assert_eq!((c.host(), c.port(), c.db()), ("10.0.0.2", 6380, 3));
        let c = Config::from_url("redis://[::1]:7000/").expect("valid");
        assert_eq!((c.host(), c.port(), c.db()), ("::1", 7000, 0));
        let c = Config::from_url("REDIS://:s%40cret@h").expect("valid");
        assert_eq!(c.password.as_deref(), Some("s@cret"));
        assert_eq!(c.username, None);
        let c = Config::from_url("redis://ann:pw@h:1/2").expect("valid");
        assert_eq!(c.username.as_deref(), Some("ann"));
        assert_eq!(c.password.as_deref(), Some("pw"));
    }

    #[test]
    fn bad_urls_are_config_errors_that_hide_the_password() {
        for url in [
            "localhost:6379",
            "http://localhost",
            "rediss://h",
            "unix:///tmp/redis.sock",
            "redis://",
            "redis://h:0",
            "redis://h:port",
            "redis://h:70000",
            "redis://h/db",
            "redis://h/-1",
            "redis://h?db=1",
            "redis://justuser@h",
            "redis://[::1",
            "redis://:hunter2@h:x",
        ] {
            let e = Config::from_url(url).expect_err(url);
            assert_eq!(e.kind(), Kind::Config, "{url}");
            assert!(e.message().starts_with("invalid redis URL: "), "{url}: {e}");
            assert!(!e.message().contains("hunter2"), "{url}: {e}");
        }
        let config = Config::from_url("redis://:hunter2@h").expect("valid");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn commands_encode_as_arrays_of_bulk_strings() {
        let mut out = BytesMut::new();
        let mut cmd = Cmd::new("SET");
        cmd.arg("k").arg(b"v\r\n").arg_int(-5);
        encode(&mut out, cmd.parts()).expect("encodes");
        assert_eq!(
            &out[..],
            b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\n-5\r\n"
        );
        assert!(encode(&mut out, std::iter::empty()).is_err());
    }

    #[test]
    fn replies_decode_into_values() {
        let mut buf = BytesMut::from(&b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n+OK\r\n-ERR x\r\n"[..]);
        let frames: Vec<Value> = std::iter::from_fn(|| {
            decode_bytes_mut(&mut buf)
                .expect("valid")
                .map(|(f, _, _)| Value::from(f))
        })
        .collect();
        assert_eq!(
            frames,
            vec![
                Value::Array(vec![
                    Value::Bulk(Bytes::from_static(b"a")),
                    Value::Nil,
                    Value::Int(7)
                ]),
                Value::Status(Bytes::from_static(b"OK")),
                Value::Error("ERR x".to_owned()),
            ]
        );
        assert_eq!(Value::Bulk(Bytes::from_static(b"42")).as_int(), Some(42));
    }

    #[test]
    fn error_replies_map_to_statuses() {
        assert_eq!(reply_error("LOADING dataset").status().as_u16(), 503);
        assert_eq!(reply_error("WRONGTYPE Operation").status().as_u16(), 500);
    }
}
