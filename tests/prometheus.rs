//! `/metrics` for Prometheus on a two-core server: after known traffic, a scrape counts every
//! request by route and status class on both cores, and the text parses with Python's
//! `prometheus_client` (its 0.0.4 parser, and its strict OpenMetrics parser when the scrape
//! asks for OpenMetrics).
//!
//! `prometheus_client` (pinned in tests/prometheus/requirements.txt) is installed into a
//! virtualenv under the target directory on first use. Without python3, venv or pip the
//! parser checks are skipped with a printed reason (the value checks still run), unless
//! `SQUALL_REQUIRE_SERVICES=1`, which makes that a failure.
//!
//! With the `postgres` and `redis` features, the pools' families are checked too: against
//! the servers at `DATABASE_URL` and `REDIS_URL` (skipped when they are not reachable,
//! unless `SQUALL_REQUIRE_SERVICES=1`), and against a port where nothing listens.
#![cfg(feature = "metrics")]

#[cfg(all(feature = "postgres", feature = "redis"))]
mod services;
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use squall::{App, Request};
use support::{config, start_with, Client};

async fn hello(_req: Request) -> &'static str {
    "hello"
}

async fn user(req: Request) -> String {
    req.param("id")
        .map(|id| id.into_owned())
        .unwrap_or_default()
}

fn app() -> App {
    App::new()
        .prometheus("/metrics")
        .health()
        .get("/hello", hello)
        .get("/users/{id}", user)
}

/// One request on a connection of its own, so that SO_REUSEPORT spreads them over the cores.
fn get(addr: SocketAddr, target: &str, accept: Option<&str>) -> support::Response {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    support::request(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: a\r\n{accept}Connection: close\r\n\r\n"),
    )
}

/// The value of the sample written exactly as `series` (name and labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// The sum of every sample of `name` (any labels).
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_scrape_counts_every_request_of_both_cores_and_parses_as_prometheus_and_openmetrics() {
    let server = start_with(config().workers(2), app);
    let addr = server.local_addr();
    for _ in 0..40 {
        assert_eq!(get(addr, "/hello", None).status, 200);
    }
    for id in 0..10 {
        assert_eq!(get(addr, &format!("/users/{id}"), None).status, 200);
    }
    for _ in 0..5 {
        assert_eq!(get(addr, "/nowhere", None).status, 404);
    }
    // Keep-alive: three requests on one connection count three times, one connection.
    let mut kept = Client::connect(addr);
    for _ in 0..3 {
        kept.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(kept.response().status, 200);
    }

    let scraped = get(addr, "/metrics", None);
    assert_eq!(scraped.status, 200);
    assert_eq!(
        scraped.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = scraped.text();
    let requests = |route: &str, status: &str| {
        sample(
            &text,
            &format!("squall_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(requests("/hello", "2xx"), Some(43.0), "{text}");
    assert_eq!(requests("/users/{id}", "2xx"), Some(10.0), "{text}");
    assert_eq!(requests("(unmatched)", "4xx"), Some(5.0), "{text}");
    assert_eq!(requests("/hello", "5xx"), None, "{text}");
    assert_eq!(
        sample(
            &text,
            "squall_http_request_duration_seconds_count{route=\"/hello\"}"
        ),
        Some(43.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "squall_http_request_duration_seconds_bucket{route=\"/hello\",le=\"+Inf\"}"
        ),
        Some(43.0),
        "{text}"
    );
    // Both cores answer a scrape, whichever core took it.
    for core in ["0", "1"] {
        let open = format!("squall_connections_open{{core=\"{core}\"}}");
        assert!(sample(&text, &open).is_some(), "{text}");
        let ws = format!("squall_websocket_sessions_open{{core=\"{core}\"}}");
        assert_eq!(sample(&text, &ws), Some(0.0), "{text}");
    }
    // 55 single-request connections, the kept one, and the scrape's own.
    assert!(
        total(&text, "squall_connections_accepted_total") >= 57.0,
        "{text}"
    );
    assert!(total(&text, "squall_connections_open") >= 2.0, "{text}");
    assert_eq!(total(&text, "squall_accept_failures_total"), 0.0, "{text}");
    assert!(
        total(&text, "squall_received_bytes_total") > 58.0 * 30.0,
        "{text}"
    );
    assert!(
        total(&text, "squall_sent_bytes_total") > 58.0 * 60.0,
        "{text}"
    );

    let openmetrics = get(
        addr,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    );
    assert_eq!(
        openmetrics.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let open_text = openmetrics.text();
    assert!(open_text.ends_with("# EOF\n"), "{open_text}");
    assert!(
        open_text.contains("# TYPE squall_http_requests counter\n"),
        "{open_text}"
    );

    let Some(python) = python_with_prometheus_client() else {
        return;
    };
    let families = parse(python, "prometheus", &text);
    check_parsed(&families, "prometheus");
    let families = parse(python, "openmetrics", &open_text);
    check_parsed(&families, "openmetrics");
}

/// What the Python parser read: (family, type) → [(sample name, labels, value)].
type Parsed = BTreeMap<(String, String), Vec<(String, Value, f64)>>;

fn check_parsed(families: &Parsed, format: &str) {
    let kinds: BTreeMap<&str, &str> = families
        .keys()
        .map(|(name, kind)| (name.as_str(), kind.as_str()))
        .collect();
    let expected = [
        ("squall_http_requests", "counter"),
        ("squall_http_request_duration_seconds", "histogram"),
        ("squall_connections_accepted", "counter"),
        ("squall_accept_failures", "counter"),
        ("squall_connections_open", "gauge"),
        ("squall_received_bytes", "counter"),
        ("squall_sent_bytes", "counter"),
        ("squall_websocket_sessions_open", "gauge"),
        ("squall_hub_deliveries", "counter"),
    ];
    for (name, kind) in expected {
        assert_eq!(kinds.get(name), Some(&kind), "{format}: {families:?}");
    }
    assert_eq!(kinds.len(), expected.len(), "{format}: {kinds:?}");
    let hello_2xx = families[&("squall_http_requests".to_owned(), "counter".to_owned())]
        .iter()
        .find(|(name, labels, _)| {
            name == "squall_http_requests_total"
                && labels["route"] == "/hello"
                && labels["status"] == "2xx"
        })
        .map(|(_, _, value)| *value);
    assert_eq!(hello_2xx, Some(43.0), "{format}");
}

fn parse(python: &Path, format: &str, text: &str) -> Parsed {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prometheus/parse.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(format)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the exposition");
    let out = child.wait_with_output().expect("the parser's output");
    assert!(
        out.status.success(),
        "prometheus_client could not parse the {format} text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, String, Value, f64)> =
        serde_json::from_slice(&out.stdout).expect("json rows");
    let mut families = Parsed::new();
    for (family, kind, name, labels, value) in rows {
        families
            .entry((family, kind))
            .or_default()
            .push((name, labels, value));
    }
    families
}

/// A python with `prometheus_client` (tests/prometheus/requirements.txt) installed in a
/// virtualenv under the target directory, made once; `None` (with the reason printed) when
/// that cannot be done, unless `SQUALL_REQUIRE_SERVICES=1`.
fn python_with_prometheus_client() -> Option<&'static Path> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| match make_venv() {
            Ok(python) => Some(python),
            Err(why) => {
                assert!(
                    std::env::var("SQUALL_REQUIRE_SERVICES").as_deref() != Ok("1"),
                    "SQUALL_REQUIRE_SERVICES=1 but {why}"
                );
                eprintln!("skipped the prometheus_client parser checks: {why}");
                None
            }
        })
        .as_deref()
}

fn make_venv() -> Result<PathBuf, String> {
    let requirements =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prometheus/requirements.txt");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("venv-prometheus");
    let python = venv.join("bin/python");
    let stamp = venv.join(".requirements");
    let wanted =
        std::fs::read(&requirements).map_err(|e| format!("cannot read {requirements:?}: {e}"))?;
    if std::fs::read(&stamp).ok().as_ref() == Some(&wanted) && python.exists() {
        return Ok(python);
    }
    let run = |command: &mut Command, what: &str| -> Result<(), String> {
        match command.output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("{what} could not run: {e}")),
        }
    };
    if !python.exists() {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv (install python3 and python3-venv)",
        )?;
    }
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install prometheus-client",
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {stamp:?}: {e}"))?;
    Ok(python)
}

/// The sum of the samples of `name` whose labels include every one of `labels`
/// (`state="idle"`).
#[cfg(all(feature = "postgres", feature = "redis"))]
fn total_with(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let inner = series.strip_prefix(name)?.strip_prefix('{')?;
            let inner = inner.strip_suffix('}')?;
            let have: Vec<&str> = inner.split(',').collect();
            labels
                .iter()
                .all(|label| have.contains(label))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// The PostgreSQL and Redis families, as both parsers read them: every family has its
/// type, and every sample its `core` and `pool` or `client` label.
#[cfg(all(feature = "postgres", feature = "redis"))]
fn check_parsed_pools(families: &Parsed, format: &str) {
    let expected = [
        ("squall_postgres_connections", "gauge"),
        ("squall_postgres_connections_max", "gauge"),
        ("squall_postgres_queries_in_flight", "gauge"),
        ("squall_postgres_waiters", "gauge"),
        ("squall_postgres_connects", "counter"),
        ("squall_postgres_connect_errors", "counter"),
        ("squall_postgres_get_errors", "counter"),
        ("squall_postgres_queries", "counter"),
        ("squall_postgres_query_errors", "counter"),
        ("squall_redis_connections", "gauge"),
        ("squall_redis_subscriptions", "gauge"),
        ("squall_redis_commands_in_flight", "gauge"),
        ("squall_redis_waiters", "gauge"),
        ("squall_redis_connects", "counter"),
        ("squall_redis_connect_errors", "counter"),
        ("squall_redis_reconnects", "counter"),
        ("squall_redis_commands", "counter"),
        ("squall_redis_command_errors", "counter"),
    ];
    for (name, kind) in expected {
        let key = (name.to_owned(), kind.to_owned());
        let samples = families
            .get(&key)
            .unwrap_or_else(|| panic!("{format}: no {kind} {name} in {families:?}"));
        assert!(!samples.is_empty(), "{format}: {name} has no samples");
        let owner = if name.starts_with("squall_postgres") {
            "pool"
        } else {
            "client"
        };
        for (sample, labels, _) in samples {
            assert!(
                labels.get("core").is_some() && labels.get(owner).is_some(),
                "{format}: {sample} {labels}"
            );
        }
    }
    let server_errors: f64 = families[&(
        "squall_postgres_query_errors".to_owned(),
        "counter".to_owned(),
    )]
        .iter()
        .filter(|(_, labels, _)| labels["kind"] == "server")
        .map(|(_, _, value)| value)
        .sum();
    assert!(server_errors >= 3.0, "{format}: {server_errors}");
}

#[cfg(all(feature = "postgres", feature = "redis"))]
mod pools {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use squall::db::postgres::{PgConfig, PgPool, DEFAULT_DATABASE_URL};
    use squall::db::redis::{self, RedisConfig};
    use squall::{App, Error, Request};

    use super::support::{config, start_with};
    use super::{get, parse, python_with_prometheus_client, services, total, total_with};

    /// A two-core server whose every core builds a pool and a client from these settings,
    /// with routes that run a good and a failing statement on each.
    fn app(pg: PgConfig, redis: RedisConfig) -> impl Fn() -> App + Send + Sync + 'static {
        move || {
            let pool = PgPool::new(pg.clone()).unwrap_or_else(|e| panic!("pool: {e}"));
            let client = redis::Client::new(redis.clone());
            let sql = |pool: &Rc<PgPool>, sql: &'static str| {
                let pool = Rc::clone(pool);
                move |_req: Request| {
                    let pool = Rc::clone(&pool);
                    async move {
                        let rows = pool.get().await?.query(sql, &[]).await?;
                        Ok::<_, Error>(format!("{} rows", rows.len()))
                    }
                }
            };
            let command = |client: &redis::Client, parts: &'static [&'static str]| {
                let client = client.clone();
                move |_req: Request| {
                    let client = client.clone();
                    async move {
                        let reply = client.cmd(parts).await?;
                        Ok::<_, Error>(format!("{reply:?}"))
                    }
                }
            };
            // A subscriber kept by the core that served `/subscribe`.
            let kept = Rc::new(RefCell::new(None));
            let subscriber_client = client.clone();
            let subscribe = move |_req: Request| {
                let (client, kept) = (subscriber_client.clone(), Rc::clone(&kept));
                async move {
                    let mut subscriber = client.subscriber().await?;
                    let channel = format!("squall-test:{}:metrics", std::process::id());
                    subscriber.subscribe(&[&channel]).await?;
                    subscriber.psubscribe(&[format!("{channel}:*")]).await?;
                    *kept.borrow_mut() = Some(subscriber);
                    Ok::<_, Error>("subscribed")
                }
            };
            App::new()
                .prometheus("/metrics")
                .get("/subscribe", subscribe)
                .get("/pg", sql(&pool, "SELECT 1"))
                .get("/pg/bad", sql(&pool, "SELEKT 1"))
                .get("/pg/slow", sql(&pool, "SELECT pg_sleep(2)"))
                .get("/redis", command(&client, &["PING"]))
                .get("/redis/bad", command(&client, &["NO-SUCH-COMMAND"]))
        }
    }

    /// The configurations from `DATABASE_URL` and `REDIS_URL`, if both servers answer.
    fn reachable() -> Option<(PgConfig, RedisConfig)> {
        let url = services::env_or("DATABASE_URL", DEFAULT_DATABASE_URL);
        let pg = PgConfig::from_url(&url)
            .expect("DATABASE_URL is a valid postgres URL")
            .connect_timeout(Duration::from_secs(2));
        let probe = pg.clone().pool_size(1);
        let pg_up = glommio::LocalExecutorBuilder::default()
            .make()
            .expect("glommio executor")
            .run(async move {
                let pool = PgPool::connect(probe).await?;
                pool.get().await?.query("SELECT 1", &[]).await
            })
            .map_err(|e| e.to_string());
        let redis = RedisConfig::from_env().expect("REDIS_URL is a valid redis URL");
        let redis_up =
            services::tcp_reachable(redis.host(), redis.port(), Duration::from_millis(500));
        let why = pg_up.as_ref().err().map_or("", |e| e.as_str());
        let up = services::require_or_skip(&format!("PostgreSQL at {url} ({why})"), pg_up.is_ok())
            && services::require_or_skip(
                &format!("redis at {}:{}", redis.host(), redis.port()),
                redis_up,
            );
        up.then_some((pg, redis))
    }

    #[test]
    fn a_scrape_shows_each_cores_pool_and_client_with_their_queries_and_failures() {
        let Some((pg, redis)) = reachable() else {
            return;
        };
        let pg = pg.query_timeout(Duration::from_millis(300));
        let server = start_with(config().workers(2), app(pg, redis));
        let addr = server.local_addr();
        assert_eq!(get(addr, "/pg/slow", None).status, 503);
        for _ in 0..10 {
            assert_eq!(get(addr, "/pg", None).status, 200);
            assert_eq!(get(addr, "/redis", None).status, 200);
        }
        for _ in 0..3 {
            assert_eq!(get(addr, "/pg/bad", None).status, 500);
            assert_eq!(get(addr, "/redis/bad", None).status, 500);
        }
        assert_eq!(get(addr, "/subscribe", None).status, 200);

        let text = get(addr, "/metrics", None).text();
        // Connections open on the cores that served queries, idle between requests.
        let open = total_with(&text, "squall_postgres_connections", &["state=\"idle\""])
            + total_with(&text, "squall_postgres_connections", &["state=\"in_use\""]);
        assert!(open >= 1.0, "{text}");
        assert!(
            total(&text, "squall_postgres_connections_max") >= 2.0,
            "{text}"
        );
        assert!(
            total(&text, "squall_postgres_connects_total") >= 1.0,
            "{text}"
        );
        assert_eq!(
            total(&text, "squall_postgres_connect_errors_total"),
            0.0,
            "{text}"
        );
        assert_eq!(
            total(&text, "squall_postgres_queries_in_flight"),
            0.0,
            "{text}"
        );
        assert!(
            total(&text, "squall_postgres_queries_total") >= 13.0,
            "{text}"
        );
        let pg_errors = |kind: &str| {
            total_with(
                &text,
                "squall_postgres_query_errors_total",
                &[&format!("kind=\"{kind}\"")],
            )
        };
        assert_eq!(pg_errors("server"), 3.0, "{text}");
        assert_eq!(pg_errors("timeout"), 1.0, "{text}");
        assert_eq!(pg_errors("connection") + pg_errors("client"), 0.0, "{text}");

        let commands = ["role=\"commands\""];
        assert!(
            total_with(&text, "squall_redis_connections", &commands) >= 1.0,
            "{text}"
        );
        assert!(
            total(&text, "squall_redis_commands_total") >= 13.0,
            "{text}"
        );
        assert!(total(&text, "squall_redis_connects_total") >= 1.0, "{text}");
        assert_eq!(
            total(&text, "squall_redis_connect_errors_total"),
            0.0,
            "{text}"
        );
        let redis_errors = |kind: &str| {
            total_with(
                &text,
                "squall_redis_command_errors_total",
                &[&format!("kind=\"{kind}\"")],
            )
        };
        assert_eq!(redis_errors("server"), 3.0, "{text}");
        assert_eq!(redis_errors("connection"), 0.0, "{text}");
        let subscriber = ["role=\"subscriber\""];
        assert_eq!(
            total_with(&text, "squall_redis_connections", &subscriber),
            1.0,
            "{text}"
        );
        assert_eq!(total(&text, "squall_redis_subscriptions"), 2.0, "{text}");
        // Labels name the server and database, never the user or password.
        assert!(!text.contains('@'), "{text}");
        assert!(text.contains(",pool=\""), "{text}");

        let open_text = get(addr, "/metrics", Some("application/openmetrics-text")).text();
        let Some(python) = python_with_prometheus_client() else {
            return;
        };
        for (format, text) in [("prometheus", &text), ("openmetrics", &open_text)] {
            super::check_parsed_pools(&parse(python, format, text), format);
        }
    }

    #[test]
    fn a_pool_and_client_whose_server_is_unreachable_count_connect_errors() {
        // Port 1: nothing listens, so every connect is refused at once.
        let pg = PgConfig::from_url("postgres://postgres@127.0.0.1:1/test?sslmode=disable")
            .expect("a valid URL")
            .connect_timeout(Duration::from_secs(1));
        let redis = RedisConfig::from_url("redis://127.0.0.1:1").expect("a valid URL");
        let server = start_with(config().workers(1), app(pg, redis));
        let addr = server.local_addr();
        for _ in 0..3 {
            assert_eq!(get(addr, "/pg", None).status, 503);
            assert_eq!(get(addr, "/redis", None).status, 503);
        }

        let text = get(addr, "/metrics", None).text();
        let pool = "pool=\"127.0.0.1:1/test\"";
        assert!(
            total_with(&text, "squall_postgres_connect_errors_total", &[pool]) >= 1.0,
            "{text}"
        );
        assert_eq!(
            total_with(&text, "squall_postgres_get_errors_total", &[pool]),
            3.0,
            "{text}"
        );
        assert_eq!(total(&text, "squall_postgres_queries_total"), 0.0, "{text}");
        for state in ["idle", "in_use"] {
            let state = format!("state=\"{state}\"");
            assert_eq!(
                total_with(&text, "squall_postgres_connections", &[pool, &state]),
                0.0,
                "{text}"
            );
        }
        let client = "client=\"127.0.0.1:1/0\"";
        assert_eq!(
            total_with(&text, "squall_redis_connect_errors_total", &[client]),
            3.0,
            "{text}"
        );
        assert_eq!(
            total_with(
                &text,
                "squall_redis_command_errors_total",
                &[client, "kind=\"connection\""]
            ),
            3.0,
            "{text}"
        );
        assert_eq!(total(&text, "squall_redis_connections"), 0.0, "{text}");
    }
}
