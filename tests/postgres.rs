//! The per-core PostgreSQL pool against a real server.
//!
//! Needs PostgreSQL at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) with
//! the TechEmpower tables from `bash scripts/setup-db.sh`. When it is not there, each test
//! prints why and passes, unless `SQUALL_REQUIRE_SERVICES=1`.
//!
//! Each test runs its own pool under its own `application_name`, so it can find and kill its
//! own server backends (through a separate admin connection) without touching other tests'.
#![cfg(feature = "postgres")]

mod services;

use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::timer::sleep;
use glommio::LocalExecutorBuilder;
use squall::db::postgres::tokio_postgres::error::{DbError, SqlState};
use squall::db::postgres::{join_all, PgConfig, PgConn, PgPool, DEFAULT_DATABASE_URL};
use squall::error::Kind;
use squall::StatusCode;

const WORLD_BY_ID: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
const BACKEND_PID: &str = "SELECT pg_backend_pid()";

fn database_url() -> String {
    services::env_or("DATABASE_URL", DEFAULT_DATABASE_URL)
}

/// What a test gets: its own configuration and an admin pool to watch and kill its backends.
struct Db {
    url: String,
    app: String,
    admin: Rc<PgPool>,
}

impl Db {
    /// The database URL with this test's application name.
    fn config(&self) -> PgConfig {
        PgConfig::from_url(&self.url)
            .expect("url already parsed by the probe")
            .application_name(&self.app)
            .connect_timeout(Duration::from_secs(2))
    }

    async fn admin(&self) -> PgConn {
        self.admin.get().await.expect("admin connection")
    }

    /// Server process ids of this test's connections.
    async fn backends(&self) -> Vec<i32> {
        let rows = self
            .admin()
            .await
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid",
                &[&self.app],
            )
            .await
            .expect("pg_stat_activity");
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Kills every backend of this test's pool; returns how many.
    async fn terminate(&self) -> usize {
        self.admin()
            .await
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&self.app],
            )
            .await
            .expect("pg_terminate_backend")
            .len()
    }

    /// Queries of this test's connections running right now whose text starts with `prefix`.
    async fn running(&self, prefix: &str) -> i64 {
        self.admin()
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND state = 'active' AND starts_with(query, $2)",
                &[&self.app, &prefix],
            )
            .await
            .expect("pg_stat_activity")
            .get(0)
    }

    /// Polls `check` every 10 ms until it holds or `limit` passes; returns whether it held.
    async fn eventually<F, Fut>(&self, limit: Duration, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        loop {
            if check().await {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Connects the admin pool and checks the tables exist; the reason when it cannot.
async fn probe(url: &str) -> Result<Rc<PgPool>, String> {
    let config = PgConfig::from_url(url)
        .map_err(|e| e.to_string())?
        .pool_size(1)
        .connect_timeout(Duration::from_secs(2))
        .application_name("squall-test-admin");
    let admin = PgPool::connect(config).await.map_err(|e| e.to_string())?;
    let conn = admin.get().await.map_err(|e| e.to_string())?;
    let ready: bool = conn
        .query_one(
            "SELECT to_regclass('world') IS NOT NULL AND to_regclass('fortune') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    if !ready {
        return Err("tables world and fortune missing; run bash scripts/setup-db.sh".into());
    }
    Ok(admin)
}

/// Runs `test` on a fresh glommio executor when PostgreSQL is there (see the module docs).
fn with_postgres<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    on_executor(async {
        let url = database_url();
        match probe(&url).await {
            Ok(admin) => {
                let app = format!("squall-test-{name}-{}", std::process::id());
                test(Db { url, app, admin }).await;
            }
            Err(reason) => {
                services::require_or_skip(&format!("PostgreSQL at {url} ({reason})"), false);
            }
        }
    });
}

fn on_executor<T>(body: impl Future<Output = T>) -> T {
    LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor")
        .run(body)
}

async fn backend_pid(conn: &PgConn) -> i32 {
    conn.query_one(BACKEND_PID, &[])
        .await
        .expect("pg_backend_pid")
        .get(0)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
fn pool_keeps_its_size_and_reuses_connections() {
    with_postgres("sizing", |db| async move {
        let pool = PgPool::new(db.config().pool_size(3)).expect("config");
        assert_eq!(pool.open_connections(), 0, "a new pool connects lazily");
        assert!(db.backends().await.is_empty());

        // The first user starts every connection; round-robin then cycles through all three.
        backend_pid(&pool.get().await.expect("get")).await;
        assert!(
            db.eventually(Duration::from_secs(2), || async {
                pool.open_connections() == 3
            })
            .await
        );
        let mut pids = Vec::new();
        for _ in 0..12 {
            pids.push(backend_pid(&pool.get().await.expect("get")).await);
        }
        let mut distinct = pids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            3,
            "round-robin over three connections: {pids:?}"
        );
        assert_eq!(
            pids[..3],
            pids[3..6],
            "handed out in a fixed rotation: {pids:?}"
        );

        // Two hundred concurrent users share the three connections; the pool does not grow.
        let users = join_all((0..200).map(|i: i32| {
            let pool = pool.clone();
            async move {
                let conn = pool.get().await?;
                conn.query_one(WORLD_BY_ID, &[&(i + 1)]).await
            }
        }))
        .await;
        for (i, row) in users.into_iter().enumerate() {
            let row = row.expect("query under load");
            assert_eq!(row.get::<_, i32>(0), i as i32 + 1);
        }
        assert_eq!(
            db.backends().await,
            distinct,
            "no connection opened or lost"
        );
        assert_eq!(pool.open_connections(), 3);
    });
}

#[test]
fn connect_opens_every_connection_up_front() {
    with_postgres("eager", |db| async move {
        let pool = PgPool::connect(db.config().pool_size(2))
            .await
            .expect("connect");
        assert_eq!(pool.open_connections(), 2);
        assert_eq!(pool.size(), 2);
        assert_eq!(db.backends().await.len(), 2);
    });
}

#[test]
fn each_executor_has_its_own_pool() {
    with_postgres("per-core", |db| async move {
        let (pids_tx, pids_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        let mut releases = Vec::new();
        for _ in 0..2 {
            let (config, pids_tx) = (db.config().pool_size(2), pids_tx.clone());
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            releases.push(release_tx);
            threads.push(std::thread::spawn(move || {
                on_executor(async move {
                    let pool = PgPool::connect(config).await.expect("connect");
                    let mut pids = Vec::new();
                    for _ in 0..4 {
                        pids.push(backend_pid(&pool.get().await.expect("get")).await);
                    }
                    pids.sort();
                    pids.dedup();
                    pids_tx.send(pids).expect("report");
                    // Keep the pool open until the test has looked at the server.
                    let _ = release_rx.recv();
                })
            }));
        }
        let mut seen: Vec<i32> = Vec::new();
        for _ in 0..2 {
            let pids = pids_rx.recv().expect("pids");
            assert_eq!(pids.len(), 2, "each pool uses its own two connections");
            assert!(
                pids.iter().all(|p| !seen.contains(p)),
                "pools share nothing"
            );
            seen.extend(pids);
        }
        seen.sort();
        assert_eq!(db.backends().await, seen);
        drop(releases);
        for thread in threads {
            thread.join().expect("executor thread");
        }
    });
}

#[test]
fn pipelining_beats_sequential_queries() {
    with_postgres("pipelining", |db| async move {
        let pool = PgPool::connect(db.config().pool_size(1))
            .await
            .expect("connect");
        let conn = pool.get().await.expect("get");
        conn.prepare_cached(WORLD_BY_ID).await.expect("prepare");
        let ids: Vec<i32> = (1..=64).map(|i| i * 150).collect();
        let (mut sequential, mut pipelined) = (Vec::new(), Vec::new());
        for _ in 0..15 {
            let start = Instant::now();
            for id in &ids {
                let row = conn.query_one(WORLD_BY_ID, &[id]).await.expect("query");
                assert_eq!(row.get::<_, i32>(0), *id);
            }
            sequential.push(start.elapsed());

            let start = Instant::now();
            let conn = &conn;
            let rows = join_all(
                ids.iter()
                    .map(|id| async move { conn.query_one(WORLD_BY_ID, &[id]).await }),
            )
            .await;
            pipelined.push(start.elapsed());
            for (row, id) in rows.into_iter().zip(&ids) {
                assert_eq!(
                    row.expect("query").get::<_, i32>(0),
                    *id,
                    "answers in order"
                );
            }
        }
        let (sequential, pipelined) = (median(sequential), median(pipelined));
        eprintln!(
            "64 queries on one connection, median of 15 rounds: pipelined {pipelined:?}, \
             sequential {sequential:?} ({:.1}x)",
            sequential.as_secs_f64() / pipelined.as_secs_f64()
        );
        assert!(pipelined < sequential, "{pipelined:?} vs {sequential:?}");
        assert_eq!(db.backends().await.len(), 1, "all on one connection");
    });
}

#[test]
fn statements_are_prepared_once_per_connection() {
    with_postgres("statements", |db| async move {
        let config = db.config().pool_size(1).statement_cache_capacity(2);
        let pool = PgPool::connect(config).await.expect("connect");
        let conn = pool.get().await.expect("get");
        for id in 1..=5 {
            conn.query_one(WORLD_BY_ID, &[&id]).await.expect("query");
        }
        assert_eq!(conn.cached_statements(), 1);
        let statement = conn.prepare_cached(WORLD_BY_ID).await.expect("prepare");
        assert_eq!(statement.params().len(), 1);
        assert_eq!(statement.columns()[1].name(), "randomnumber");
        pool.get()
            .await
            .expect("get")
            .prepare_cached(WORLD_BY_ID)
            .await
            .expect("prepare");
        let count = "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1";
        let on_server: i64 = conn
            .query_one(count, &[&WORLD_BY_ID])
            .await
            .expect("pg_prepared_statements")
            .get(0);
        assert_eq!(on_server, 1, "prepared once on the server");
        assert_eq!(conn.cached_statements(), 2);

        // A full cache still runs new statements; they are just not kept.
        let row = conn
            .query_one("SELECT $1::int4 * 2", &[&21_i32])
            .await
            .expect("uncached statement");
        assert_eq!(row.get::<_, i32>(0), 42);
        assert_eq!(conn.cached_statements(), 2);
    });
}

#[test]
fn stale_statements_are_prepared_again() {
    with_postgres("stale", |db| async move {
        let pool = PgPool::connect(db.config().pool_size(1))
            .await
            .expect("connect");
        let conn = pool.get().await.expect("get");
        conn.batch_execute("CREATE TEMP TABLE stale (a int); INSERT INTO stale VALUES (1)")
            .await
            .expect("temp table");
        let select = "SELECT * FROM stale";
        assert_eq!(conn.query(select, &[]).await.expect("select")[0].len(), 1);
        conn.batch_execute("ALTER TABLE stale ADD COLUMN b int")
            .await
            .expect("alter");
        // The cached plan no longer matches: one failure, and the entry is dropped...
        let err = conn
            .query(select, &[])
            .await
            .expect_err("cached plan must not change result type");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR, "{err}");
        // ...so the next call prepares it again.
        assert_eq!(
            conn.query(select, &[]).await.expect("reprepared")[0].len(),
            2
        );
    });
}

#[test]
fn sql_errors_answer_500_and_keep_the_connection() {
    with_postgres("sql-errors", |db| async move {
        let pool = PgPool::connect(db.config().pool_size(1))
            .await
            .expect("connect");
        let conn = pool.get().await.expect("get");
        let pid = backend_pid(&conn).await;
        let err = conn.query("SELEC 1", &[]).await.expect_err("syntax");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.message(), "postgres query failed");
        assert!(err.to_string().contains("syntax error"), "{err}");
        let db_error = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<DbError>())
            .expect("the server's error is the source");
        assert_eq!(*db_error.code(), SqlState::SYNTAX_ERROR);
        assert_eq!(err.public_message(), "Internal Server Error");

        let err = conn
            .query_one(WORLD_BY_ID, &[&0_i32])
            .await
            .expect_err("no row");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(conn
            .query_opt(WORLD_BY_ID, &[&0_i32])
            .await
            .expect("query_opt")
            .is_none());

        let changed = conn
            .execute(
                "UPDATE world SET randomnumber = randomnumber WHERE id = $1",
                &[&7_i32],
            )
            .await
            .expect("execute");
        assert_eq!(changed, 1);
        assert!(conn.is_usable());
        assert_eq!(backend_pid(&conn).await, pid, "same connection throughout");
    });
}

#[test]
fn failed_batch_retires_its_connection() {
    with_postgres("batch", |db| async move {
        let pool = PgPool::connect(db.config().pool_size(1))
            .await
            .expect("connect");
        let conn = pool.get().await.expect("get");
        let pid = backend_pid(&conn).await;
        conn.batch_execute("BEGIN; SELECT 1/0; COMMIT")
            .await
            .expect_err("division by zero");
        assert!(!conn.is_usable(), "may be inside an aborted transaction");
        let fresh = pool.get().await.expect("get");
        assert_ne!(backend_pid(&fresh).await, pid, "a new connection");
        fresh
            .batch_execute("BEGIN; SELECT 1; COMMIT")
            .await
            .expect("batch");
        assert!(fresh.is_usable());
    });
}

#[test]
fn killed_idle_connections_are_replaced() {
    with_postgres("kill-idle", |db| async move {
        let pool = PgPool::connect(db.config().pool_size(2))
            .await
            .expect("connect");
        let before = db.backends().await;
        assert_eq!(before.len(), 2);
        assert_eq!(db.terminate().await, 2);

        let deadline = Instant::now() + Duration::from_secs(3);
        let mut failures = 0;
        let pid = loop {
            assert!(
                Instant::now() < deadline,
                "no recovery after {failures} failures"
            );
            let result = match pool.get().await {
                Ok(conn) => conn.query_one(BACKEND_PID, &[]).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(row) => break row.get::<_, i32>(0),
                Err(e) => {
                    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE, "{e}");
                    failures += 1;
                    sleep(Duration::from_millis(10)).await;
                }
            }
        };
        assert!(!before.contains(&pid), "a new backend");
        assert!(
            failures <= 2,
            "at most one failure per dead connection: {failures}"
        );

        // Both slots come back, with no leftover connections.
        for _ in 0..4 {
            backend_pid(&pool.get().await.expect("get")).await;
        }
        assert!(
            db.eventually(Duration::from_secs(2), || async {
                db.backends().await.len() == 2
            })
            .await
        );
        assert_eq!(pool.open_connections(), 2);
    });
}

#[test]
fn queries_in_flight_on_a_killed_connection_fail_with_503() {
    with_postgres("kill-busy", |db| async move {
        let pool = PgPool::connect(db.config().pool_size(1))
            .await
            .expect("connect");
        let conn = pool.get().await.expect("get");
        let old = backend_pid(&conn).await;
        let slow = glommio::spawn_local({
            let conn = conn.clone();
            async move {
                let start = Instant::now();
                (
                    conn.query("SELECT pg_sleep(10)", &[]).await,
                    start.elapsed(),
                )
            }
        });
        // Pipelined behind the slow query on the same connection.
        let queued = glommio::spawn_local({
            let conn = conn.clone();
            async move { conn.query_one("SELECT 1", &[]).await }
        });
        assert!(
            db.eventually(Duration::from_secs(2), || async {
                db.running("SELECT pg_sleep(10)").await == 1
            })
            .await,
            "the slow query never started"
        );
        assert_eq!(db.terminate().await, 1);

        let (result, elapsed) = slow.await;
        let err = result.expect_err("killed mid-query");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
        assert_eq!(err.message(), "postgres connection lost");
        assert!(err.to_string().contains("terminating connection"), "{err}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        let err = queued.await.expect_err("queued on the dead connection");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
        assert!(!conn.is_usable());

        let fresh = pool.get().await.expect("reconnects");
        assert_ne!(backend_pid(&fresh).await, old);
    });
}

#[test]
fn timed_out_query_is_cancelled_and_its_connection_retired() {
    with_postgres("timeout", |db| async move {
        let config = db
            .config()
            .pool_size(1)
            .query_timeout(Duration::from_millis(300));
        let pool = PgPool::connect(config).await.expect("connect");
        let conn = pool.get().await.expect("get");
        let old = backend_pid(&conn).await;

        let start = Instant::now();
        let err = conn
            .query("SELECT pg_sleep(5)", &[])
            .await
            .expect_err("times out");
        let elapsed = start.elapsed();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
        assert!(err.message().contains("timed out"), "{err}");
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
        assert!(!conn.is_usable(), "retired, not left behind a slow query");

        // New users get a new connection at once instead of queueing behind pg_sleep.
        let start = Instant::now();
        let fresh = pool.get().await.expect("get");
        assert_ne!(backend_pid(&fresh).await, old);
        assert!(start.elapsed() < Duration::from_secs(1));

        // The server was told to stop, and the retired connection closes once released.
        assert!(
            db.eventually(Duration::from_secs(2), || async {
                db.running("SELECT pg_sleep(5)").await == 0
            })
            .await,
            "the slow query was not cancelled"
        );
        drop(conn);
        assert!(
            db.eventually(Duration::from_secs(2), || async {
                db.backends().await.len() == 1
            })
            .await,
            "the retired connection was not closed"
        );
    });
}

#[test]
fn dropped_queries_do_not_poison_the_connection() {
    with_postgres("dropped", |db| async move {
        let pool = PgPool::connect(db.config().pool_size(1))
            .await
            .expect("connect");
        let conn = pool.get().await.expect("get");
        let pid = backend_pid(&conn).await;
        let value = |i: i32| {
            let conn = &conn;
            async move { conn.query_one("SELECT $1::int4", &[&i]).await }
        };

        for i in 0..8_i32 {
            // A slow query abandoned at different moments: before it is sent, just after,
            // while the server runs it.
            let slow = conn.query("SELECT pg_sleep(0.02)", &[]);
            if i == 0 {
                assert!(future::poll_once(Box::pin(slow)).await.is_none());
            } else {
                let waited = Duration::from_millis(u64::from(i.unsigned_abs()) * 2);
                assert!(abandon(slow, waited).await.is_none());
            }
            assert_eq!(value(i).await.expect("next query").get::<_, i32>(0), i);

            // A large result dropped while rows are arriving.
            let big = conn.query("SELECT generate_series(1, 100000)", &[]);
            let _ = abandon(big, Duration::from_millis(u64::from(i.unsigned_abs()))).await;
            assert_eq!(
                value(100 + i).await.expect("next query").get::<_, i32>(0),
                100 + i
            );

            // A prepare dropped half-way, then the same statement used for real.
            let sql = format!("SELECT $1::int4 + {i}");
            assert!(future::poll_once(Box::pin(conn.prepare_cached(&sql)))
                .await
                .is_none());
            let row = conn
                .query_one(&sql, &[&1_i32])
                .await
                .expect("prepared again");
            assert_eq!(row.get::<_, i32>(0), 1 + i);

            // The middle one of three pipelined queries dropped after it was sent.
            let mut first = Box::pin(value(200 + i));
            assert!(future::poll_once(first.as_mut()).await.is_none());
            assert!(
                future::poll_once(Box::pin(conn.query("SELECT pg_sleep(0.01)", &[])))
                    .await
                    .is_none()
            );
            let (a, c) = future::zip(first, value(300 + i)).await;
            assert_eq!(a.expect("first").get::<_, i32>(0), 200 + i);
            assert_eq!(c.expect("third").get::<_, i32>(0), 300 + i);
        }
        assert!(conn.is_usable());
        assert_eq!(
            backend_pid(&conn).await,
            pid,
            "the same connection throughout"
        );
        assert_eq!(db.backends().await, [pid]);
    });
}

/// Runs `query` for at most `after`, dropping it if it has not finished.
async fn abandon<F: Future>(query: F, after: Duration) -> Option<F::Output> {
    future::or(async { Some(query.await) }, async {
        sleep(after).await;
        None
    })
    .await
}

#[test]
fn missing_database_is_a_clear_503() {
    with_postgres("no-db", |db| async move {
        let url = format!(
            "{}/squall_no_such_database",
            db.url
                .rsplit_once('/')
                .map_or(db.url.as_str(), |(base, _)| base)
        );
        let config = PgConfig::from_url(&url).expect("url").pool_size(1);
        let err = PgPool::connect(config).await.expect_err("no such database");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(err.message().contains("does not exist"), "{err}");
    });
}

// The following need no PostgreSQL: they point the pool at sockets the test controls.

#[test]
fn connect_timeout_applies_to_a_silent_server() {
    // The kernel completes the TCP handshake from the listen backlog, but nobody ever
    // answers the startup message.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    on_executor(async {
        let config = PgConfig::from_url(&format!("postgres://postgres@127.0.0.1:{port}/test"))
            .expect("url")
            .connect_timeout(Duration::from_millis(200));
        let start = Instant::now();
        let err = PgPool::connect(config).await.expect_err("silent server");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(err.message().contains("timed out"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn unreachable_server_fails_fast_and_backs_off() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    on_executor(async {
        let url = format!("postgres://postgres@127.0.0.1:{port}/test");
        let pool = PgPool::new(PgConfig::from_url(&url).expect("url").pool_size(2)).expect("pool");
        let err = pool.get().await.expect_err("refused");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(err.message().contains("cannot connect"), "{err}");
        // Within the back-off, callers get the last error without a new attempt.
        let start = Instant::now();
        for _ in 0..100 {
            let err = pool.get().await.expect_err("still down");
            assert!(err.message().contains("cannot connect"), "{err}");
        }
        assert!(start.elapsed() < Duration::from_millis(100));
        assert_eq!(pool.open_connections(), 0);
    });
}

#[test]
fn unix_socket_urls_are_refused_at_startup() {
    let config =
        PgConfig::from_url("postgres://postgres@%2Fvar%2Frun%2Fpostgresql/test").expect("url");
    let err = PgPool::new(config).expect_err("unix socket");
    assert_eq!(err.kind(), Kind::Config);
    assert!(err.message().contains("unix socket"), "{err}");
}
