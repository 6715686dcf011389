//! The TechEmpower rules, checked against `examples/techempower` running on the local
//! PostgreSQL (tables from `scripts/setup-db.sh`). Skips with a reason when PostgreSQL is down,
//! unless `SQUALL_REQUIRE_SERVICES=1`.
#![cfg(all(feature = "postgres", feature = "template"))]

#[path = "../examples/techempower/app.rs"]
#[allow(dead_code)]
mod app;
mod services;
mod support;

use std::time::Duration;

use serde::Deserialize;
use squall::db::postgres::{PgConfig, PgPool};
use squall::RunningServer;
use support::{config, get, normalise_html, request, start_with, Response};

#[derive(Debug, Deserialize, PartialEq)]
struct World {
    id: i32,
    #[serde(rename = "randomNumber")]
    random_number: i32,
}

/// The server, or `None` (test skipped) when PostgreSQL is not reachable.
fn server() -> Option<RunningServer> {
    let url = services::env_or("DATABASE_URL", squall::db::postgres::DEFAULT_DATABASE_URL);
    let pg = PgConfig::from_url(&url).expect("DATABASE_URL parses");
    // postgres://user@host:port/db → host:port
    let authority = url.split('/').nth(2).unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
    let port = port.parse().unwrap_or(5432);
    let reachable = services::tcp_reachable(host, port, Duration::from_secs(1));
    if !services::require_or_skip(&format!("PostgreSQL at {url}"), reachable) {
        return None;
    }
    Some(start_with(config().workers(2), move || app::app(&pg)))
}

fn fetch(server: &RunningServer, path: &str) -> Response {
    let response = request(server.local_addr(), get(path));
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    for header in ["server", "date", "content-type"] {
        assert!(
            response.header(header).is_some(),
            "{path}: no {header} header"
        );
    }
    response
}

fn worlds(server: &RunningServer, path: &str) -> Vec<World> {
    let response = fetch(server, path);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let worlds: Vec<World> = serde_json::from_slice(&response.body).expect("a JSON array of rows");
    for w in &worlds {
        assert!(
            (1..=10_000).contains(&w.id),
            "{path}: id {} out of range",
            w.id
        );
        assert!((1..=10_000).contains(&w.random_number), "{path}: {w:?}");
    }
    worlds
}

#[test]
fn plaintext_and_json() {
    let Some(server) = server() else { return };
    let r = fetch(&server, "/plaintext");
    assert_eq!(r.text(), "Hello, World!");
    assert!(r
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain")));
    let r = fetch(&server, "/json");
    assert_eq!(r.text(), r#"{"message":"Hello, World!"}"#);
}

#[test]
fn db_returns_one_row_object() {
    let Some(server) = server() else { return };
    let r = fetch(&server, "/db");
    let world: World = serde_json::from_slice(&r.body).expect("one row object");
    assert!((1..=10_000).contains(&world.id));
}

#[test]
fn queries_are_clamped_to_1_through_500() {
    let Some(server) = server() else { return };
    for (query, expected) in [
        ("/queries?queries=0", 1),
        ("/queries?queries=foo", 1),
        ("/queries?queries=", 1),
        ("/queries", 1),
        ("/queries?queries=20", 20),
        ("/queries?queries=501", 500),
        ("/cached-queries?count=0", 1),
        ("/cached-queries?count=foo", 1),
        ("/cached-queries?count=100", 100),
        ("/cached-queries?count=501", 500),
    ] {
        assert_eq!(worlds(&server, query).len(), expected, "{query}");
    }
}

#[test]
fn updates_are_persisted_before_the_response() {
    let Some(server) = server() else { return };
    let updated = worlds(&server, "/updates?queries=20");
    assert_eq!(updated.len(), 20);
    let url = services::env_or("DATABASE_URL", squall::db::postgres::DEFAULT_DATABASE_URL);
    let stored: Vec<World> = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("executor")
        .run(async move {
            let pool = PgPool::connect(PgConfig::from_url(&url).expect("url"))
                .await
                .expect("pool");
            let conn = pool.get().await.expect("connection");
            let mut stored = Vec::new();
            for w in &updated {
                let row = conn
                    .query_one("SELECT id, randomnumber FROM world WHERE id = $1", &[&w.id])
                    .await
                    .expect("row");
                stored.push((
                    w,
                    World {
                        id: row.get(0),
                        random_number: row.get(1),
                    },
                ));
            }
            // Another request may have updated a row since; the response must still have
            // matched what was stored at the time, which holds unless a concurrent test
            // touched the same id (none here: one server, one request).
            stored
                .into_iter()
                .map(|(sent, now)| {
                    assert_eq!(sent, &now, "the response and the stored row differ");
                    now
                })
                .collect()
        });
    assert_eq!(stored.len(), 20);
}

#[test]
fn fortunes_match_the_reference_page() {
    let Some(server) = server() else { return };
    let r = fetch(&server, "/fortunes");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tfb/fortunes_expected.html");
    let Ok(expected) = std::fs::read_to_string(&path) else {
        assert!(!services::required(), "{} is missing", path.display());
        eprintln!("skipping: {} is missing", path.display());
        return;
    };
    assert_eq!(normalise_html(&r.text()), normalise_html(&expected));
}
