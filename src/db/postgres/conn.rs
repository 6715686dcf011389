//! One open connection and [`PgConn`], the shared handle that runs statements on it: the
//! per-connection statement cache, the query timeout, and mapping tokio-postgres errors to
//! squall's (retiring the connection when an error shows it dead or stuck).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::rc::Rc;

use http::StatusCode;
use tokio_postgres::error::{Severity, SqlState};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::open::{tls_for, Target};
use super::pool::Settings;
use crate::db::stats::{bump, drop_one, Failure};
use crate::error::Error;

/// One open connection and what is known about it.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) statements: RefCell<HashMap<Box<str>, Statement>>,
    /// Set when an error showed the connection dead or stuck; the pool replaces it.
    pub(super) broken: Cell<bool>,
    /// Operations under way on it, for the metrics' idle and in-use connections.
    pub(super) in_flight: Cell<u64>,
    pub(super) settings: Rc<Settings>,
    pub(super) target: Target,
}

impl Conn {
    pub(super) fn is_usable(&self) -> bool {
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

    /// Retires the connection after a timeout (its own, or the handler's) and asks the
    /// server to cancel what it is running, once. Queries queued behind the slow one keep their own deadlines.
    fn retire_after_timeout(&self) {
        if self.broken.replace(true) {
            return;
        }
        let token = self.client.cancel_token();
        let target = self.target.clone();
        let tls = tls_for(&self.settings, &target);
        let limit = self.settings.config.connect_timeout;
        glommio::spawn_local(async move {
            let cancel = async {
                let stream = target.dial().await.map_err(|e| e.to_string())?;
                token
                    .cancel_query_raw(stream.compat(), tls)
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
        let failure = if fatal {
            Failure::Connection
        } else if db.is_some() {
            Failure::Server
        } else {
            Failure::Client
        };
        self.settings.counters.failures.count(failure);
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
pub(super) fn describe(err: &tokio_postgres::Error) -> String {
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
        let guard = InFlight::start(&$conn.conn);
        let outcome = $conn
            .within_limit(async {
                let statement = $conn.conn.statement($sql).await?;
                $conn.conn.client.$method(&statement, $params).await
            })
            .await;
        guard.finish();
        $conn.finish(outcome, $sql)
    }};
}

/// Held while an operation is in flight, counting it on its connection and pool, and
/// [finished](Self::finish) with it. Dropped with an unfinished operation whose handler's
/// time limit passed ([`crate::deadline::drop_expired`]), it cancels the statement on the
/// server and retires the connection, as the pool's own query timeout does. A future
/// dropped for any other reason (the client went away) leaves its answer to be read and
/// discarded: cancelling costs a connection to the server and a new connection for the pool.
struct InFlight<'a>(&'a Conn);

impl<'a> InFlight<'a> {
    fn start(conn: &'a Conn) -> InFlight<'a> {
        let counters = &conn.settings.counters;
        bump(&counters.queries);
        bump(&counters.in_flight);
        bump(&conn.in_flight);
        InFlight(conn)
    }

    fn end(&self) {
        drop_one(&self.0.settings.counters.in_flight);
        drop_one(&self.0.in_flight);
    }

    /// The operation finished, with whatever outcome.
    fn finish(self) {
        self.end();
        std::mem::forget(self);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.end();
        if crate::deadline::is_expiring() {
            self.0.settings.counters.failures.count(Failure::Timeout);
            self.0.retire_after_timeout();
        }
    }
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
    pub(super) conn: Rc<Conn>,
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
        let guard = InFlight::start(&self.conn);
        let outcome = self.within_limit(self.conn.statement(sql)).await;
        guard.finish();
        self.finish(outcome, sql)
    }

    /// Sends `sql` (one or more statements separated by `;`, no parameters) in the simple
    /// protocol, uncached. If it fails the connection is retired, since an explicit `BEGIN`
    /// in the string may have left the session inside an aborted transaction.
    pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        let guard = InFlight::start(&self.conn);
        let outcome = self.within_limit(self.conn.client.batch_execute(sql)).await;
        guard.finish();
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
                let failures = &self.conn.settings.counters.failures;
                failures.count(Failure::Timeout);
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
