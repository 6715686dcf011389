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

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::str::FromStr;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::net::Socket;
use http::StatusCode;
use tokio_postgres::config::{Host, SslMode, SslNegotiation};
use tokio_postgres::error::{Severity, SqlState};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use crate::config::parse_duration;
use crate::error::Error;

/// Re-exported so applications name the same tokio-postgres types squall does
/// (`Row`, `Statement`, `types::ToSql`, `types::FromSql`, `error::SqlState`).
pub use tokio_postgres;

/// The database used when `DATABASE_URL` is not set: the local server, user `postgres`,
/// database `test`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// First wait before reconnecting after a failed attempt; doubled per failure up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Connection pool settings: where the database is and how the pool behaves.
#[derive(Clone, Debug)]
pub struct PgConfig {
    /// Connection parameters (host, port, user, password, dbname, options, application name,
    /// keepalives). TLS is not supported; `sslmode=prefer` (the default) connects in plain text.
    pub postgres: tokio_postgres::Config,
    /// Connections each core's pool keeps open.
    pub pool_size: usize,
    /// Limit on opening one connection: TCP connect, startup and authentication.
    pub connect_timeout: Duration,
    /// Limit on one whole operation (prepare and execute) from the caller's point of view.
    pub query_timeout: Duration,
    /// Prepared statements kept per connection; beyond it statements are prepared per use.
    pub statement_cache_capacity: usize,
}

impl PgConfig {
    /// Parses a connection string (`postgres://...` URL or `key=value` pairs) with default pool
    /// settings. A `connect_timeout` parameter in the string is honoured. The rest is checked
    /// when a pool is built ([`PgPool::new`]).
    pub fn from_url(url: &str) -> Result<PgConfig, Error> {
        let postgres = tokio_postgres::Config::from_str(url).map_err(|e| {
            let error = Error::config("invalid postgres connection string");
            // The cause says what is wrong; tokio-postgres's own text only repeats "invalid".
            match e.into_source() {
                Some(cause) => error.with_source(cause),
                None => error,
            }
        })?;
        let connect_timeout = postgres
            .get_connect_timeout()
            .copied()
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(5));
        Ok(PgConfig {
            postgres,
            pool_size: 4,
            connect_timeout,
            query_timeout: Duration::from_secs(5),
            statement_cache_capacity: 256,
        })
    }

    /// `DATABASE_URL` (or [`DEFAULT_DATABASE_URL`]) and the `SQUALL_PG_*` variables described
    /// in the [module documentation](self). A variable that cannot be parsed is an error
    /// naming it.
    pub fn from_env() -> Result<PgConfig, Error> {
        PgConfig::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<PgConfig, Error> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let url = var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let mut config = PgConfig::from_url(&url)
            .map_err(|e| Error::config(format!("invalid DATABASE_URL: {e}")))?;
        let bad = |name: &str, value: &str, expected: &str| {
            Error::config(format!("invalid {name}={value:?}: expected {expected}"))
        };
        if let Some(v) = var("SQUALL_PG_POOL_SIZE") {
            config.pool_size = v
                .trim()
                .parse()
                .map_err(|_| bad("SQUALL_PG_POOL_SIZE", &v, "a positive integer"))?;
        }
        if let Some(v) = var("SQUALL_PG_STATEMENT_CACHE") {
            config.statement_cache_capacity = v
                .trim()
                .parse()
                .map_err(|_| bad("SQUALL_PG_STATEMENT_CACHE", &v, "a non-negative integer"))?;
        }
        let durations = [
            ("SQUALL_PG_CONNECT_TIMEOUT", &mut config.connect_timeout),
            ("SQUALL_PG_QUERY_TIMEOUT", &mut config.query_timeout),
        ];
        for (name, slot) in durations {
            if let Some(v) = var(name) {
                *slot = parse_duration(&v)
                    .ok_or_else(|| bad(name, &v, "a duration such as 250ms, 10s or 2m"))?;
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets the number of connections per core.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Sets the limit on opening one connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the limit on one whole operation.
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// Sets how many prepared statements each connection keeps.
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.statement_cache_capacity = capacity;
        self
    }

    /// Sets the `application_name` the server shows in `pg_stat_activity`.
    pub fn application_name(mut self, name: &str) -> Self {
        self.postgres.application_name(name);
        self
    }

    /// Checks what would otherwise fail later, less clearly; returns the addresses to dial.
    fn validate(&self) -> Result<Vec<Target>, Error> {
        let invalid = |what: String| Err(Error::config(format!("invalid postgres config: {what}")));
        if self.pool_size == 0 {
            return invalid("pool_size must be at least 1".into());
        }
        if self.connect_timeout.is_zero() || self.query_timeout.is_zero() {
            return invalid("timeouts must be longer than zero".into());
        }
        if self.postgres.get_ssl_mode() == SslMode::Require
            || self.postgres.get_ssl_negotiation() == SslNegotiation::Direct
        {
            return invalid("TLS is not supported; use sslmode=disable or prefer".into());
        }
        let ports = self.postgres.get_ports();
        let addrs = self.postgres.get_hostaddrs();
        let hosts = self.postgres.get_hosts();
        let count = hosts.len().max(addrs.len());
        if count == 0 {
            return invalid("no host; give a TCP host such as 127.0.0.1".into());
        }
        if ports.len() > 1 && ports.len() != count {
            return invalid("give one port, or one port per host".into());
        }
        let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let mut targets = Vec::with_capacity(count);
        for i in 0..count {
            if let Some(ip) = addrs.get(i) {
                targets.push(Target::Addr(SocketAddr::new(*ip, port(i))));
                continue;
            }
            match hosts.get(i) {
                Some(Host::Tcp(name)) => targets.push(Target::Host(name.clone(), port(i))),
                Some(Host::Unix(path)) => {
                    return invalid(format!(
                        "unix socket host {} is not supported; give a TCP host such as 127.0.0.1",
                        path.display()
                    ))
                }
                None => return invalid("hostaddr and host lists differ in length".into()),
            }
        }
        Ok(targets)
    }
}

/// One address to dial.
#[derive(Clone, Debug)]
enum Target {
    Addr(SocketAddr),
    Host(String, u16),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(addr) => write!(f, "{addr}"),
            Target::Host(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

impl Target {
    async fn dial(&self) -> std::io::Result<Socket> {
        match self {
            Target::Addr(addr) => super::dial::connect_any(&[*addr]).await,
            Target::Host(host, port) => {
                super::dial::connect_any(&super::dial::resolve(host, *port).await?).await
            }
        }
    }
}

/// What the pool, its connections and its background connect tasks share.
struct Settings {
    config: PgConfig,
    targets: Vec<Target>,
}

/// A per-core pool of shared, pipelined PostgreSQL connections.
///
/// `!Send` by design: build one per core and keep it in an `Rc`.
pub struct PgPool {
    settings: Rc<Settings>,
    slots: RefCell<Vec<Slot>>,
    next: Cell<usize>,
    this: Weak<PgPool>,
}

struct Slot {
    state: State,
    /// Wait after the last failed attempt; zero after a success.
    backoff: Duration,
}

enum State {
    Empty,
    Connecting(Rc<Pending>),
    Ready(Rc<Conn>),
    Failed { retry_at: Instant, error: Rc<str> },
}

enum Pick {
    Ready(Rc<Conn>),
    Wait(Rc<Pending>),
    Fail(Rc<str>),
}

impl PgPool {
    /// A pool that opens its connections on first use. Fails only on an unusable configuration.
    pub fn new(config: PgConfig) -> Result<Rc<PgPool>, Error> {
        let targets = config.validate()?;
        let slots = (0..config.pool_size)
            .map(|_| Slot {
                state: State::Empty,
                backoff: Duration::ZERO,
            })
            .collect();
        let settings = Rc::new(Settings { config, targets });
        Ok(Rc::new_cyclic(|this| PgPool {
            settings,
            slots: RefCell::new(slots),
            next: Cell::new(0),
            this: this.clone(),
        }))
    }

    /// A pool with every connection open, or the first error (503) if one cannot be opened,
    /// so a wrong `DATABASE_URL` shows at startup.
    pub async fn connect(config: PgConfig) -> Result<Rc<PgPool>, Error> {
        let pool = PgPool::new(config)?;
        let pending: Vec<Rc<Pending>> = (0..pool.size()).map(|i| pool.start_connect(i)).collect();
        for p in pending {
            p.wait().await.map_err(unavailable)?;
        }
        Ok(pool)
    }

    /// A connection handle, round-robin over the open connections. Opens a connection if none
    /// is open; fails with 503 when the database cannot be reached.
    pub async fn get(&self) -> Result<PgConn, Error> {
        // A fresh connection that is already dead again is tried a few times, not forever.
        for _ in 0..3 {
            match self.pick() {
                Pick::Ready(conn) => return Ok(PgConn { conn }),
                Pick::Fail(error) => return Err(unavailable(error)),
                Pick::Wait(pending) => pending.wait().await.map_err(unavailable)?,
            }
        }
        Err(Error::unavailable("postgres connections keep closing"))
    }

    /// Connections this pool keeps (the configured pool size).
    pub fn size(&self) -> usize {
        self.settings.config.pool_size
    }

    /// Connections open and usable right now.
    pub fn open_connections(&self) -> usize {
        self.slots
            .borrow()
            .iter()
            .filter(|s| matches!(&s.state, State::Ready(c) if c.is_usable()))
            .count()
    }

    /// The settings this pool was built with.
    pub fn config(&self) -> &PgConfig {
        &self.settings.config
    }

    /// Chooses a usable connection, starting connects for empty and dead slots passed on
    /// the way; otherwise something to wait for, or the last error while backing off.
    fn pick(&self) -> Pick {
        let n = self.size();
        let start = self.next.get() % n;
        // Read the clock only if a failed slot needs it, not on every `get`.
        let now = std::cell::OnceCell::new();
        let mut wait = None;
        let mut failure = None;
        let mut to_start = Vec::new();
        {
            let slots = self.slots.borrow();
            for i in 0..n {
                let index = (start + i) % n;
                match &slots[index].state {
                    State::Ready(conn) if conn.is_usable() => {
                        self.next.set(index + 1);
                        let conn = conn.clone();
                        drop(slots);
                        for index in to_start {
                            self.start_connect(index);
                        }
                        return Pick::Ready(conn);
                    }
                    State::Connecting(p) => {
                        wait.get_or_insert_with(|| p.clone());
                    }
                    State::Failed { retry_at, error }
                        if *now.get_or_init(Instant::now) < *retry_at =>
                    {
                        failure.get_or_insert_with(|| error.clone());
                    }
                    State::Ready(_) | State::Empty | State::Failed { .. } => to_start.push(index),
                }
            }
        }
        for index in to_start {
            let p = self.start_connect(index);
            wait.get_or_insert(p);
        }
        match (wait, failure) {
            (Some(p), _) => Pick::Wait(p),
            (None, Some(error)) => Pick::Fail(error),
            (None, None) => Pick::Fail("postgres pool has no connections".into()),
        }
    }

    /// Opens a connection for slot `index` in a background task, so a caller that gives up
    /// waiting does not abandon it half-open.
    fn start_connect(&self, index: usize) -> Rc<Pending> {
        let pending = Rc::new(Pending::default());
        if let Some(slot) = self.slots.borrow_mut().get_mut(index) {
            slot.state = State::Connecting(pending.clone());
        }
        let settings = self.settings.clone();
        let pool = self.this.clone();
        let task_pending = pending.clone();
        glommio::spawn_local(async move {
            let result = open(&settings).await;
            let outcome = result.as_ref().map(|_| ()).map_err(Rc::clone);
            if let Some(pool) = pool.upgrade() {
                pool.finish_connect(index, &task_pending, result);
            }
            task_pending.complete(outcome);
        })
        .detach();
        pending
    }

    fn finish_connect(&self, index: usize, pending: &Rc<Pending>, result: Result<Conn, Rc<str>>) {
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(index) else {
            return;
        };
        if !matches!(&slot.state, State::Connecting(p) if Rc::ptr_eq(p, pending)) {
            return;
        }
        match result {
            Ok(conn) => {
                slot.state = State::Ready(Rc::new(conn));
                slot.backoff = Duration::ZERO;
            }
            Err(error) => {
                slot.backoff = (slot.backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                slot.state = State::Failed {
                    retry_at: Instant::now() + slot.backoff,
                    error,
                };
            }
        }
    }
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgPool")
            .field("targets", &self.settings.targets)
            .field("size", &self.size())
            .field("open", &self.open_connections())
            .finish()
    }
}

fn unavailable(error: Rc<str>) -> Error {
    Error::unavailable(error.to_string())
}

/// Opens one connection, trying each configured address in turn under the connect timeout.
async fn open(settings: &Rc<Settings>) -> Result<Conn, Rc<str>> {
    let limit = settings.config.connect_timeout;
    let mut last = String::from("no address to connect to");
    for target in &settings.targets {
        match crate::deadline::within(limit, open_one(settings, target)).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => last = format!("cannot connect to postgres at {target}: {e}"),
            Err(_) => {
                last = format!("cannot connect to postgres at {target}: timed out after {limit:?}")
            }
        }
        tracing::warn!(target: "squall::db", "{last}");
    }
    Err(last.into())
}

async fn open_one(settings: &Rc<Settings>, target: &Target) -> Result<Conn, String> {
    let pg = &settings.config.postgres;
    let stream = target.dial().await.map_err(|e| e.to_string())?;
    if pg.get_keepalives() {
        set_keepalive(&stream, pg);
    }
    let (client, connection) = pg
        .connect_raw(stream.compat(), NoTls)
        .await
        .map_err(|e| describe(&e))?;
    glommio::spawn_local(async move {
        if let Err(e) = connection.await {
            tracing::info!(target: "squall::db", "postgres connection closed: {}", describe(&e));
        }
    })
    .detach();
    Ok(Conn {
        client,
        statements: RefCell::new(HashMap::new()),
        broken: Cell::new(false),
        settings: settings.clone(),
        target: target.clone(),
    })
}

/// TCP keepalive as the connection string asks (`keepalives`, `keepalives_idle`, ...), so a
/// server host that vanished without closing is noticed on idle connections too.
fn set_keepalive(stream: &Socket, pg: &tokio_postgres::Config) {
    let mut keepalive = socket2::TcpKeepalive::new().with_time(pg.get_keepalives_idle());
    if let Some(interval) = pg.get_keepalives_interval() {
        keepalive = keepalive.with_interval(interval);
    }
    if let Some(retries) = pg.get_keepalives_retries() {
        keepalive = keepalive.with_retries(retries);
    }
    if let Err(e) = stream.as_socket2().set_tcp_keepalive(&keepalive) {
        tracing::debug!(target: "squall::db", "cannot set tcp keepalive: {e}");
    }
}

/// A connect task's result, awaited by every `get` that found the slot connecting.
#[derive(Default)]
struct Pending {
    outcome: RefCell<Option<Result<(), Rc<str>>>>,
    waiters: RefCell<Vec<Waker>>,
}

impl Pending {
    fn complete(&self, outcome: Result<(), Rc<str>>) {
        *self.outcome.borrow_mut() = Some(outcome);
        for waker in self.waiters.take() {
            waker.wake();
        }
    }

    fn wait(self: &Rc<Self>) -> impl Future<Output = Result<(), Rc<str>>> + 'static {
        let pending = self.clone();
        std::future::poll_fn(move |cx| {
            if let Some(outcome) = pending.outcome.borrow().as_ref() {
                return Poll::Ready(outcome.clone());
            }
            let mut waiters = pending.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

/// One open connection and what is known about it.
struct Conn {
    client: Client,
    statements: RefCell<HashMap<Box<str>, Statement>>,
    /// Set when an error showed the connection dead or stuck; the pool replaces it.
    broken: Cell<bool>,
    settings: Rc<Settings>,
    target: Target,
}

impl Conn {
    fn is_usable(&self) -> bool {
        !self.broken.get() && !self.client.is_closed()
    }

    async fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        // Boxed: preparing is rare, and its kilobyte-sized future would otherwise be part of
        // every query's future (and every handler's that awaits one).
        Box::pin(self.prepare_and_cache(sql)).await
    }

    async fn prepare_and_cache(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        // Two users preparing the same text at once both prepare; the first one cached wins
        // and the other statement is closed when its user drops it.
        let statement = self.client.prepare(sql).await?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() < self.settings.config.statement_cache_capacity {
            cache.entry(sql.into()).or_insert_with(|| statement.clone());
        }
        Ok(statement)
    }

    /// Retires the connection after a timeout and asks the server to cancel what it is
    /// running, once. Queries queued behind the slow one keep their own deadlines.
    fn retire_after_timeout(&self) {
        if self.broken.replace(true) {
            return;
        }
        let token = self.client.cancel_token();
        let target = self.target.clone();
        let limit = self.settings.config.connect_timeout;
        glommio::spawn_local(async move {
            let cancel = async {
                let stream = target.dial().await.map_err(|e| e.to_string())?;
                token
                    .cancel_query_raw(stream.compat(), NoTls)
                    .await
                    .map_err(|e| describe(&e))
            };
            match crate::deadline::within(limit, cancel).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(target: "squall::db", "postgres cancel failed: {e}"),
                Err(_) => tracing::warn!(target: "squall::db", "postgres cancel timed out"),
            }
        })
        .detach();
    }

    /// Maps a tokio-postgres error to a squall error, noting what it says about the connection.
    fn fail(&self, err: tokio_postgres::Error, sql: &str) -> Error {
        let db = err.as_db_error();
        let code = db.map_or("", |d| d.code().code());
        let io = std::error::Error::source(&err).is_some_and(|s| s.is::<std::io::Error>());
        let fatal = err.is_closed()
            || io
            || db.is_some_and(|d| {
                matches!(d.parsed_severity(), Some(Severity::Fatal | Severity::Panic))
            })
            || code.starts_with("08") // connection exception
            || code.starts_with("57P"); // shutdown, crash, database dropped
        if fatal {
            self.broken.set(true);
        }
        // A statement the server no longer knows (DISCARD ALL) or whose result type changed
        // (ALTER TABLE) must be prepared again next time.
        if code == SqlState::INVALID_SQL_STATEMENT_NAME.code()
            || (code == SqlState::FEATURE_NOT_SUPPORTED.code()
                && db.is_some_and(|d| d.message().contains("cached plan")))
        {
            self.statements.borrow_mut().remove(sql);
        }
        // Worth retrying later: out of resources, cancelled, serialization conflicts.
        let retryable = code.starts_with("53")
            || code == SqlState::QUERY_CANCELED.code()
            || code == SqlState::T_R_SERIALIZATION_FAILURE.code()
            || code == SqlState::T_R_DEADLOCK_DETECTED.code();
        let (status, what) = if fatal {
            (StatusCode::SERVICE_UNAVAILABLE, "postgres connection lost")
        } else if retryable {
            (StatusCode::SERVICE_UNAVAILABLE, "postgres query failed")
        } else {
            (StatusCode::INTERNAL_SERVER_ERROR, "postgres query failed")
        };
        // The source is what says most: the server's own error (its Display is the server's
        // message, and callers can downcast it to `DbError` for the SQLSTATE), the I/O error,
        // or else the tokio-postgres error itself.
        let source = if db.is_some() || io {
            err.into_source()
        } else {
            Some(Box::new(err) as Box<dyn std::error::Error + Send + Sync>)
        };
        let error = Error::new(status, what);
        match source {
            Some(source) => error.with_source(source),
            None => error,
        }
    }
}

/// The most useful text of a tokio-postgres error: the server's message when there is one
/// (tokio-postgres alone says just "db error"), with the underlying cause otherwise.
fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return db.to_string();
    }
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

/// The body of a [`PgConn`] method that runs `sql`'s cached statement with the client's
/// `$method(&statement, $params)`, under the query timeout, its outcome mapped by `finish`.
/// A macro rather than a method taking a closure: that kept the operation's future in one
/// more state (104 bytes more for `query_one`, in every handler future that awaits one).
macro_rules! run_prepared {
    ($conn:ident, $sql:ident, $method:ident($params:expr)) => {{
        let outcome = $conn
            .within_limit(async {
                let statement = $conn.conn.statement($sql).await?;
                $conn.conn.client.$method(&statement, $params).await
            })
            .await;
        $conn.finish(outcome, $sql)
    }};
}

/// A handle on one pooled connection, shared with other users of the pool.
///
/// Cheap to clone. Queries from several handles (or several concurrent futures on one handle)
/// are pipelined. Every method runs under the pool's query timeout and maps failures to
/// [`Error`]: 503 when the connection was lost, the query was cancelled or timed out, or
/// the server is out of resources; 500 for other errors. The error's source carries the
/// detail for logs: the server's [`DbError`](tokio_postgres::error::DbError) (downcast it for
/// the SQLSTATE), the I/O error, or the tokio-postgres error.
#[derive(Clone)]
pub struct PgConn {
    conn: Rc<Conn>,
}

impl PgConn {
    /// Runs `sql` (prepared once per connection and cached) and returns all rows.
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        run_prepared!(self, sql, query(params))
    }

    /// Runs `sql` and returns its one row; no row or several rows is an error (500). Use
    /// [`PgConn::query_opt`] when absence is an answer (a 404, say).
    pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        run_prepared!(self, sql, query_one(params))
    }

    /// Runs `sql` and returns its row if there is one; several rows is an error (500).
    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        run_prepared!(self, sql, query_opt(params))
    }

    /// Runs `sql` and returns the number of rows it changed.
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        run_prepared!(self, sql, execute(params))
    }

    /// The prepared statement for `sql` on this connection, from the cache or prepared now
    /// (and cached if there is room). Useful to warm the cache or to read column types.
    /// A statement belongs to its connection; use it with [`PgConn::client`] of the same
    /// handle only.
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, Error> {
        let outcome = self.within_limit(self.conn.statement(sql)).await;
        self.finish(outcome, sql)
    }

    /// Sends `sql` (one or more statements separated by `;`, no parameters) in the simple
    /// protocol, uncached. If it fails the connection is retired, since an explicit `BEGIN`
    /// in the string may have left the session inside an aborted transaction.
    pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        let outcome = self.within_limit(self.conn.client.batch_execute(sql)).await;
        let result = self.finish(outcome, sql);
        if result.is_err() {
            self.conn.broken.set(true);
        }
        result
    }

    /// Prepared statements cached on this connection.
    pub fn cached_statements(&self) -> usize {
        self.conn.statements.borrow().len()
    }

    /// False once the connection is known dead or retired; the pool no longer hands it out.
    pub fn is_usable(&self) -> bool {
        self.conn.is_usable()
    }

    /// The underlying tokio-postgres client, for what this API does not cover (streaming rows,
    /// `COPY`). It is shared with other users of the pool: leave the session as you found it.
    /// Operations through it do not get the pool's timeout or error mapping.
    pub fn client(&self) -> &Client {
        &self.conn.client
    }

    /// `operation` under the query timeout. The methods above await this and then
    /// [`finish`](Self::finish) rather than sharing an `async fn` taking the operation: that
    /// would hold each query's kilobyte-sized future twice (argument and awaited copy).
    fn within_limit<F: Future>(&self, operation: F) -> crate::deadline::Within<F> {
        crate::deadline::within(self.conn.settings.config.query_timeout, operation)
    }

    /// The caller's result for an operation run under [`within_limit`](Self::within_limit):
    /// errors mapped, and a connection that timed out retired.
    fn finish<T>(
        &self,
        outcome: Result<Result<T, tokio_postgres::Error>, crate::deadline::Elapsed>,
        sql: &str,
    ) -> Result<T, Error> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.conn.fail(e, sql)),
            Err(_) => {
                self.conn.retire_after_timeout();
                Err(Error::unavailable(format!(
                    "postgres query timed out after {:?}",
                    self.conn.settings.config.query_timeout
                )))
            }
        }
    }
}

impl fmt::Debug for PgConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConn")
            .field("target", &self.conn.target)
            .field("usable", &self.conn.is_usable())
            .field("cached_statements", &self.cached_statements())
            .finish()
    }
}

/// Pipelining: await the queries of one request together with [`join_all`].
pub use crate::tasks::join_all;

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn defaults_to_the_local_test_database() {
        let c = PgConfig::from_lookup(lookup(&[])).expect("default url");
        assert_eq!(c.postgres.get_user(), Some("postgres"));
        assert_eq!(c.postgres.get_dbname(), Some("test"));
        assert_eq!(c.pool_size, 4);
        let targets = c.validate().expect("valid");
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].to_string(), "127.0.0.1:5432");
    }

    #[test]
    fn environment_overrides_pool_settings() {
        let c = PgConfig::from_lookup(lookup(&[
            (
                "DATABASE_URL",
                "postgres://u:p@db.internal:6543/app?connect_timeout=2",
            ),
            ("SQUALL_PG_POOL_SIZE", "8"),
            ("SQUALL_PG_QUERY_TIMEOUT", "250ms"),
            ("SQUALL_PG_STATEMENT_CACHE", "16"),
        ]))
        .expect("valid");
        assert_eq!(c.pool_size, 8);
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.query_timeout, Duration::from_millis(250));
        assert_eq!(c.statement_cache_capacity, 16);
        let targets = c.validate().expect("valid");
        assert_eq!(targets[0].to_string(), "db.internal:6543");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = PgConfig::from_lookup(lookup(&[("SQUALL_PG_POOL_SIZE", "many")]))
            .expect_err("not a number");
        assert!(err.to_string().contains("SQUALL_PG_POOL_SIZE"), "{err}");
        let err = PgConfig::from_lookup(lookup(&[("SQUALL_PG_POOL_SIZE", "0")]))
            .expect_err("zero connections");
        assert!(err.to_string().contains("pool_size"), "{err}");
        let err = PgConfig::from_lookup(lookup(&[("DATABASE_URL", "postgres://a:b@h:notaport/")]))
            .expect_err("bad url");
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    }

    #[test]
    fn unix_socket_hosts_are_refused_clearly() {
        let c = PgConfig::from_url("postgres://postgres@%2Fvar%2Frun%2Fpostgresql/test")
            .expect("parses");
        let err = c.validate().expect_err("unix socket");
        assert!(err.to_string().contains("unix socket"), "{err}");
        let c = PgConfig::from_url("host=/tmp user=postgres").expect("parses");
        assert!(c.validate().is_err());
    }

    #[test]
    fn tls_and_missing_hosts_are_refused() {
        let c = PgConfig::from_url("postgres://postgres@127.0.0.1/test?sslmode=require")
            .expect("parses");
        let err = c.validate().expect_err("tls");
        assert!(err.to_string().contains("TLS"), "{err}");
        let c = PgConfig::from_url("user=postgres dbname=test").expect("parses");
        let err = c.validate().expect_err("no host");
        assert!(err.to_string().contains("no host"), "{err}");
    }

    #[test]
    fn several_hosts_pair_with_their_ports() {
        let c = PgConfig::from_url("postgres://u@a:1,b:2/db").expect("parses");
        let targets: Vec<String> = c
            .validate()
            .expect("valid")
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(targets, ["a:1", "b:2"]);
    }
}
