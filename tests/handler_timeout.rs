//! Handler time limits: the application's and a route's own, the 503 a client gets, what the
//! dropped handler releases, and (with PostgreSQL) a query cancelled on the server.

mod services;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::timer::sleep;
use squall::handler::with_timeout;
use squall::testing::{run, TestClient};
use squall::{App, Request, StatusCode};

async fn sleepy(req: Request) -> String {
    let ms: u64 = req.arg_or("ms", 0).unwrap_or(0);
    sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

/// Sets its flag when dropped: shows that the handler's future, and what it held, went.
struct Released(Rc<Cell<bool>>);

impl Drop for Released {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_handler_past_its_limit_is_dropped_and_answers_503() {
    run(async {
        let released = Rc::new(Cell::new(false));
        let flag = Rc::clone(&released);
        let app = App::new()
            .handler_timeout(Duration::from_millis(100))
            .get("/sleep", sleepy)
            .get("/hold", move |_req: Request| {
                let held = Released(Rc::clone(&flag));
                async move {
                    sleep(Duration::from_secs(30)).await;
                    drop(held);
                    "never"
                }
            })
            .get("/patient", with_timeout(Duration::from_secs(2), sleepy))
            .get("/hasty", with_timeout(Duration::from_millis(50), sleepy));
        let client = TestClient::new(app).expect("valid app");

        assert_eq!(client.get("/sleep?ms=10").send().await.text(), "slept 10");

        let started = Instant::now();
        let r = client.get("/sleep?ms=5000").send().await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.header("retry-after").is_none());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(1),
            "{waited:?}"
        );

        assert!(!released.get());
        let r = client.get("/hold").send().await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(released.get(), "the handler's future was dropped");

        // A route's own limit replaces the application's, longer or shorter.
        let r = client.get("/patient?ms=300").send().await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text(), "slept 300");
        let started = Instant::now();
        let r = client.get("/hasty?ms=80").send().await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < Duration::from_millis(500));
    })
    .expect("an executor");
}

#[test]
fn the_limit_reaches_middleware_and_error_pages() {
    run(async {
        let app = App::new()
            .handler_timeout(Duration::from_millis(50))
            .wrap(|req: Request, next: squall::middleware::Next| async move {
                sleep(Duration::from_secs(10)).await;
                next.run(req).await
            })
            .error_page(|e| squall::Response::text(format!("sorry: {}", e.status().as_u16())))
            .get("/", sleepy);
        let client = TestClient::new(app).expect("valid app");
        let r = client.get("/").send().await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.text(), "sorry: 503");
    })
    .expect("an executor");
}

#[test]
fn a_zero_limit_is_one_clear_startup_error() {
    let err = TestClient::new(App::new().handler_timeout(Duration::ZERO).get("/", sleepy))
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("handler_timeout: a time limit of zero"),
        "{err}"
    );
    let err = TestClient::new(App::new().get("/", with_timeout(Duration::ZERO, sleepy)))
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("GET /: with_timeout: a time limit of zero"),
        "{err}"
    );
}

#[test]
fn an_app_without_limits_waits_for_its_handlers() {
    run(async {
        let client = TestClient::new(App::new().get("/", sleepy)).expect("valid app");
        assert_eq!(client.get("/?ms=150").send().await.text(), "slept 150");
    })
    .expect("an executor");
}

/// A `pg_sleep` past the handler's limit: 503 at the limit, the query cancelled on the server
/// (gone from `pg_stat_activity`), and the pool still answering.
#[cfg(feature = "postgres")]
#[test]
fn a_postgres_query_past_the_limit_is_cancelled_on_the_server() {
    use squall::db::postgres::{PgConfig, PgPool, DEFAULT_DATABASE_URL};

    let url = services::env_or("DATABASE_URL", DEFAULT_DATABASE_URL);
    let app_name = format!("squall-handler-timeout-{}", std::process::id());
    run(async move {
        let config = PgConfig::from_url(&url)
            .expect("url")
            .pool_size(1)
            .connect_timeout(Duration::from_secs(2))
            .application_name(&app_name);
        let pool = match PgPool::connect(config).await {
            Ok(pool) => pool,
            Err(e) => {
                services::require_or_skip(&format!("PostgreSQL at {url}: {e}"), false);
                return;
            }
        };
        let admin = PgPool::connect(
            PgConfig::from_url(&url)
                .expect("url")
                .pool_size(1)
                .application_name("squall-test-admin"),
        )
        .await
        .expect("admin connection");
        let queries = Rc::clone(&pool);
        let app = App::new()
            .handler_timeout(Duration::from_millis(300))
            .get("/sleep", move |_req: Request| {
                let pool = Rc::clone(&queries);
                async move {
                    let conn = pool.get().await?;
                    conn.execute("SELECT pg_sleep(30)", &[]).await?;
                    Ok::<_, squall::Error>("slept")
                }
            })
            .get("/one", {
                let pool = Rc::clone(&pool);
                move |_req: Request| {
                    let pool = Rc::clone(&pool);
                    async move {
                        let conn = pool.get().await?;
                        let row = conn.query_one("SELECT 1::int4", &[]).await?;
                        Ok::<_, squall::Error>(row.get::<_, i32>(0).to_string())
                    }
                }
            });
        let client = TestClient::new(app).expect("valid app");
        let sleeping = || async {
            let admin = admin.get().await.expect("admin");
            let n: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                     AND state = 'active' AND query LIKE '%pg_sleep%'",
                    &[&app_name],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            n
        };

        let started = Instant::now();
        let r = client.get("/sleep").send().await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while sleeping().await > 0 {
            assert!(
                Instant::now() < deadline,
                "pg_sleep still running on the server"
            );
            sleep(Duration::from_millis(20)).await;
        }
        assert!(started.elapsed() < Duration::from_secs(10));

        // The pool replaced the retired connection and answers at once.
        let started = Instant::now();
        let r = client.get("/one").send().await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
        assert_eq!(r.text(), "1");
        assert!(started.elapsed() < Duration::from_secs(2));
    })
    .expect("an executor");
}
