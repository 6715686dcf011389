//! Health probes for orchestrators and load balancers: `/healthz` (alive) and `/readyz`
//! (ready for traffic), opt-in with [`App::health`](crate::App::health).
//!
//! | path | answers |
//! |---|---|
//! | `/healthz` | `200 ok` while the core serves at all: the process is alive |
//! | `/readyz` | `200 ready` while serving; `503 draining` from the moment a stop is asked for |
//!
//! A stop (SIGTERM, SIGINT, [`RunningServer::shutdown`](crate::RunningServer::shutdown))
//! turns `/readyz` to 503 on every core at once; with a drain delay
//! ([`Config::drain_delay`](crate::Config::drain_delay), `SQUALL_DRAIN_DELAY`) the listener
//! goes on accepting and every request, `/readyz` aside, is served as before for that long,
//! so that the load balancer, seeing the probe fail, stops sending new connections before
//! the server stops taking them. Then the graceful shutdown runs (requests in flight finish,
//! idle connections close).
//!
//! Readiness is per core (each core learns of the stop from its own watch of the stop
//! signal), read from a thread-local cell: a probe takes no lock and touches nothing another
//! core writes. Routes that are not registered cost nothing.

use http::header::CACHE_CONTROL;
use http::{HeaderValue, StatusCode};

use crate::request::Request;
use crate::response::Response;

/// The path of the liveness probe.
pub const ALIVE_PATH: &str = "/healthz";
/// The path of the readiness probe.
pub const READY_PATH: &str = "/readyz";

/// `/healthz`: 200 while the server answers at all.
pub async fn alive(_req: Request) -> Response {
    Response::text("ok").with_header(CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// `/readyz`: 200 while serving, 503 once this core has been asked to stop.
pub async fn ready(_req: Request) -> Response {
    let response = if crate::per_core::draining() {
        Response::text("draining").with_status(StatusCode::SERVICE_UNAVAILABLE)
    } else {
        Response::text("ready")
    };
    response.with_header(CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

#[cfg(test)]
mod tests {
    use crate::testing::{run, TestClient};
    use crate::App;
    use http::StatusCode;

    #[test]
    fn readiness_turns_503_when_the_core_drains_while_liveness_stays() {
        run(async {
            let client = TestClient::new(App::new().health()).expect("valid");
            assert_eq!(client.get("/healthz").send().await.text(), "ok");
            let ready = client.get("/readyz").send().await;
            assert_eq!(ready.status(), StatusCode::OK);
            assert_eq!(ready.header("cache-control"), Some("no-store"));
            crate::per_core::begin_draining();
            let draining = client.get("/readyz").send().await;
            assert_eq!(draining.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(draining.text(), "draining");
            assert_eq!(client.get("/healthz").send().await.status(), StatusCode::OK);
        })
        .expect("an executor");
    }
}
