//! Routing cost: a static route, a parameterised route, and a miss.
//!
//! `cargo bench --features internals --bench router` (the feature exposes the router internals it times)

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use squall::internals::RouteProbe;
use squall::{App, Request};

async fn ok(_: Request) -> &'static str {
    "ok"
}

fn route(c: &mut Criterion) {
    let app = App::new()
        .get("/", ok)
        .get("/plaintext", ok)
        .get("/json", ok)
        .get("/users/{id}", ok)
        .get("/users/{id}/posts/{post}", ok)
        .post("/echo", ok)
        .get("/static/{*path}", ok);
    let probe = RouteProbe::new(app).expect("valid routes");
    let mut group = c.benchmark_group("route");
    for path in ["/plaintext", "/users/42/posts/7", "/missing/path"] {
        group.bench_function(path, |b| b.iter(|| probe.route_get(black_box(path))));
    }
    group.finish();
}

criterion_group!(benches, route);
criterion_main!(benches);
