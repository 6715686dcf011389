//! What `App::prometheus` costs a request: the in-process test client (routing, middleware,
//! the handler, no sockets) answering `GET /hello` with and without it, alternating rounds
//! on one executor, and the time one scrape takes with a few routes recorded. Plain timing
//! rather than criterion: each figure is a median over rounds of many requests.
//!
//!     taskset -c 1 cargo bench --bench metrics

use std::time::Instant;

use squall::testing::{run, TestClient};
use squall::{App, Request};

const REQUESTS: u32 = 200_000;
const ROUNDS: usize = 7;

async fn hello(_req: Request) -> &'static str {
    "Hello, World!"
}

fn app(prometheus: bool) -> App {
    let app = if prometheus {
        App::new().prometheus("/metrics")
    } else {
        App::new()
    };
    app.get("/hello", hello)
        .get("/users/{id}", hello)
        .get("/json", hello)
}

async fn nanos_per_request(client: &TestClient) -> f64 {
    let started = Instant::now();
    for _ in 0..REQUESTS {
        let response = client.get("/hello").send().await;
        assert_eq!(response.status(), 200);
    }
    started.elapsed().as_nanos() as f64 / f64::from(REQUESTS)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    run(async {
        let plain = TestClient::new(app(false)).expect("app");
        let recorded = TestClient::new(app(true)).expect("app");
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            off.push(nanos_per_request(&plain).await);
            on.push(nanos_per_request(&recorded).await);
        }
        let (off, on) = (median(off), median(on));
        println!(
            "GET /hello, test client: without prometheus {off:.0} ns, with {on:.0} ns, +{:.0} ns a request (median of {ROUNDS} rounds of {REQUESTS})",
            on - off
        );
        for path in ["/users/1", "/json"] {
            recorded.get(path).send().await;
        }
        let mut scrapes = Vec::new();
        for _ in 0..101 {
            let started = Instant::now();
            let response = recorded.get("/metrics").send().await;
            assert_eq!(response.status(), 200);
            scrapes.push(started.elapsed().as_nanos() as f64 / 1000.0);
        }
        println!("one scrape, 4 routes, one core: {:.0} µs (median of 101)", median(scrapes));
    })
    .expect("an executor");
}
