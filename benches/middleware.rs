//! What each opt-in part of issue 17 costs per request, through the in-process test client
//! (dispatch, middleware and handler; no socket): the same hello application plain, with
//! request ids (no subscriber, so no span), with a CORS policy (a cross-origin GET from an
//! allowed origin), with a handler time limit and with load shedding (`max_in_flight`).
//!
//! `cargo bench --bench middleware` (run it with nothing else on the machine; each figure is
//! the time of one request, the difference to `plain` the part's cost)

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use squall::testing::{run, TestClient};
use squall::{App, Request};

async fn hello(_: Request) -> &'static str {
    "Hello, World!"
}

fn time(app: fn() -> App, origin: Option<&'static str>, iters: u64) -> Duration {
    run(async move {
        let client = TestClient::new(app()).expect("valid app");
        let started = Instant::now();
        for _ in 0..iters {
            let request = client.get("/");
            let request = match origin {
                Some(origin) => request.header("origin", origin),
                None => request,
            };
            std::hint::black_box(request.send().await);
        }
        started.elapsed()
    })
    .expect("an executor")
}

fn parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("issue17");
    group.bench_function("plain", |b| {
        b.iter_custom(|n| time(|| App::new().get("/", hello), None, n))
    });
    group.bench_function("plain_with_origin", |b| {
        b.iter_custom(|n| {
            time(
                || App::new().get("/", hello),
                Some("https://app.example.com"),
                n,
            )
        })
    });
    group.bench_function("request_ids", |b| {
        b.iter_custom(|n| time(|| App::new().request_ids(true).get("/", hello), None, n))
    });
    #[cfg(feature = "cors")]
    group.bench_function("cors", |b| {
        b.iter_custom(|n| {
            time(
                || {
                    App::new()
                        .wrap(
                            squall::cors::Cors::new()
                                .allow_origin("https://app.example.com")
                                .allow_credentials(true),
                        )
                        .get("/", hello)
                },
                Some("https://app.example.com"),
                n,
            )
        })
    });
    // Shedding on moves every admitted handler into the core's handler queue: a task spawn.
    group.bench_function("max_in_flight", |b| {
        b.iter_custom(|n| time(|| App::new().max_in_flight(1024).get("/", hello), None, n))
    });
    group.bench_function("handler_timeout", |b| {
        b.iter_custom(|n| {
            time(
                || {
                    App::new()
                        .handler_timeout(Duration::from_secs(5))
                        .get("/", hello)
                },
                None,
                n,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, parts);
criterion_main!(benches);
