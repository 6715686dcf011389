//! Per-route latency over loopback on a two-core server: requests land on both cores, and a
//! snapshot taken on either core counts all of them.
#![cfg(feature = "metrics")]

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use squall::{metrics, App, Error, Json, Request};
use support::{config, start_with, Client};

async fn user(req: Request) -> String {
    req.matched_route().unwrap_or("none").to_owned()
}

async fn hello(_req: Request) -> &'static str {
    "hello"
}

/// This core's index and the merged figures, as this core sees them.
async fn figures(_req: Request) -> Result<Json<Value>, Error> {
    let snapshot = metrics::snapshot().await?;
    let count = |route: &str| snapshot.route(route).map_or(0, |r| r.count);
    let four_xx = |route: &str| snapshot.route(route).map_or(0, |r| r.status.client_error);
    Ok(Json(serde_json::json!({
        "core": squall::cores::current(),
        "users": count("/users/{id}"),
        "hello": count("/hello"),
        "hello_4xx": four_xx("/hello"),
        "unmatched": count(metrics::UNMATCHED),
        "unmatched_4xx": four_xx(metrics::UNMATCHED),
    })))
}

async fn reset(_req: Request) -> Result<&'static str, Error> {
    metrics::reset().await?;
    Ok("reset")
}

fn app() -> App {
    App::new()
        .wrap(metrics::RouteLatency::new())
        .get("/users/{id}", user)
        .get("/hello", hello)
        .get("/figures", figures)
        .post("/reset", reset)
        .get("/metrics", metrics::route())
}

fn get(client: &mut Client, target: &str) -> support::Response {
    client.send(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n"));
    client.response()
}

/// Figures from both cores, asked over new connections until each core has answered.
fn figures_from_each_core(addr: std::net::SocketAddr) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    let mut answers = Vec::new();
    for _ in 0..200 {
        let mut c = Client::connect(addr);
        let response = get(&mut c, "/figures");
        assert_eq!(response.status, 200, "{}", response.text());
        let figures: Value = serde_json::from_slice(&response.body).expect("json");
        if seen.insert(figures["core"].as_u64().expect("core")) {
            answers.push(figures);
        }
        if seen.len() == 2 {
            return answers;
        }
    }
    panic!("200 connections all landed on core {seen:?}");
}

#[test]
fn both_cores_count_every_request_by_route() {
    let server = start_with(config().workers(2), app);
    let addr = server.local_addr();

    // Many connections, so SO_REUSEPORT spreads them over both cores; each records on its own.
    let mut cores_used = BTreeSet::new();
    let (mut users, mut hellos, mut refused, mut missing) = (0, 0, 0, 0);
    for i in 0..40 {
        let mut c = Client::connect(addr);
        let who = get(&mut c, "/figures");
        let who: Value = serde_json::from_slice(&who.body).expect("json");
        cores_used.insert(who["core"].as_u64().expect("core"));
        let response = get(&mut c, &format!("/users/{i}"));
        assert_eq!(
            response.text(),
            "/users/{id}",
            "the handler sees its pattern"
        );
        users += 1;
        if i % 2 == 0 {
            assert_eq!(get(&mut c, "/hello").status, 200);
            hellos += 1;
        }
        if i % 4 == 0 {
            c.send("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(c.response().status, 405);
            refused += 1;
        }
        if i % 5 == 0 {
            assert_eq!(get(&mut c, &format!("/nowhere/{i}")).status, 404);
            missing += 1;
        }
    }
    assert_eq!(cores_used.len(), 2, "all 40 connections landed on one core");

    for figures in figures_from_each_core(addr) {
        assert_eq!(figures["users"], users, "{figures}");
        assert_eq!(figures["hello"], hellos + refused, "{figures}");
        assert_eq!(figures["hello_4xx"], refused, "{figures}");
        // Each 404 path is its own path but they share one bucket.
        assert_eq!(figures["unmatched"], missing, "{figures}");
        assert_eq!(figures["unmatched_4xx"], missing, "{figures}");
    }

    // The metrics route: JSON by default, a table for ?format=text.
    let mut c = Client::connect(addr);
    let response = get(&mut c, "/metrics");
    assert_eq!(response.status, 200);
    assert!(response
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json")));
    let json: Value = serde_json::from_slice(&response.body).expect("json");
    let routes = json["routes"].as_array().expect("routes");
    let users_route = routes
        .iter()
        .find(|r| r["route"] == "/users/{id}")
        .expect("users route");
    assert_eq!(users_route["count"], users);
    assert_eq!(users_route["status"]["2xx"], users);
    let latency = &users_route["latency_us"];
    let p50 = latency["p50"].as_u64().expect("p50");
    let max = latency["max"].as_u64().expect("max");
    assert!(p50 <= max && max < 3_000_000, "{latency}");
    assert_eq!(
        routes.last().expect("routes")["route"],
        metrics::UNMATCHED,
        "unmatched last"
    );
    let text = get(&mut c, "/metrics?format=text");
    assert!(text
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain")));
    let table = text.text();
    let users_line = table
        .lines()
        .find(|l| l.starts_with("/users/{id}"))
        .unwrap_or_else(|| panic!("no users line in\n{table}"));
    assert_eq!(
        users_line.split_whitespace().nth(1),
        Some(users.to_string().as_str()),
        "{table}"
    );

    // Reset clears every core.
    let mut c = Client::connect(addr);
    c.send("POST /reset HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.response().status, 200);
    for figures in figures_from_each_core(addr) {
        assert_eq!(figures["users"], 0, "{figures}");
        assert_eq!(figures["unmatched"], 0, "{figures}");
    }
}

#[test]
fn without_the_middleware_nothing_is_recorded() {
    let server = start_with(config().workers(2), || {
        App::new()
            .get("/hello", hello)
            .get("/metrics", metrics::route())
    });
    let mut c = Client::connect(server.local_addr());
    assert_eq!(get(&mut c, "/hello").status, 200);
    let response = get(&mut c, "/metrics");
    assert_eq!(response.status, 200);
    let json: Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(json["routes"], serde_json::json!([]), "{json}");
}
