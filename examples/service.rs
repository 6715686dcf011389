//! A production-shaped service: everything an operator expects switched on, around two small
//! JSON endpoints. The `hello` example stays minimal so that its benchmarks stay comparable;
//! this is the one to copy.
//!
//! - `/healthz` and `/readyz` for the load balancer's probes (`/readyz` turns 503 as soon as
//!   SIGTERM arrives; `SQUALL_DRAIN_DELAY` keeps serving that long before draining).
//! - `/metrics` for Prometheus (text format 0.0.4, OpenMetrics when asked).
//! - Request ids (`X-Request-Id`, in the access log and the `request` span) and a time limit
//!   on every handler.
//! - CORS for one web front end, `http://localhost:3000` here (`SERVICE_CORS_ORIGIN`
//!   changes it).
//! - HTTPS when `SQUALL_TLS_CERT` and `SQUALL_TLS_KEY` are set, reloaded on SIGHUP.
//!
//! ```sh
//! RUST_LOG=info SQUALL_ACCESS_LOG=1 SQUALL_DRAIN_DELAY=5s cargo run --release --example service
//! curl -i http://127.0.0.1:8080/api/greeting?name=ops
//! curl http://127.0.0.1:8080/metrics
//! ```

use std::time::Duration;

use serde::Serialize;
use squall::cors::Cors;
use squall::{App, Error, Json, Method, Request, Server};

/// The front end allowed to call the API from a browser, unless `SERVICE_CORS_ORIGIN` says
/// otherwise.
const DEFAULT_CORS_ORIGIN: &str = "http://localhost:3000";

/// No handler here should take longer; a stuck one is cut off with a 503.
const HANDLER_TIME_LIMIT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct Greeting {
    greeting: String,
    request_id: Option<String>,
}

async fn greeting(req: Request) -> Result<Json<Greeting>, Error> {
    let name: String = req.arg_or("name", "world".to_owned())?;
    if name.len() > 64 {
        return Err(Error::bad_request("name: at most 64 bytes"));
    }
    Ok(Json(Greeting {
        greeting: format!("Hello, {name}!"),
        request_id: req.request_id().map(str::to_owned),
    }))
}

#[derive(Serialize)]
struct Status {
    version: &'static str,
    secure: bool,
}

async fn status(req: Request) -> Json<Status> {
    Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        secure: req.is_secure(),
    })
}

/// The service, with `cors_origin` as the one browser origin allowed to call it (tests/service.rs
/// builds it too).
pub fn app(cors_origin: &str) -> App {
    let cors = Cors::new()
        .allow_origin(cors_origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(["content-type", "x-request-id"])
        .expose_headers(["x-request-id"])
        .max_age(Duration::from_secs(600));
    App::new()
        // First, so that its latency figures cover everything wrapped after it.
        .prometheus("/metrics")
        .health()
        .request_ids(true)
        .handler_timeout(HANDLER_TIME_LIMIT)
        .wrap(cors)
        .get("/api/greeting", greeting)
        .get("/api/status", status)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cors_origin =
        std::env::var("SERVICE_CORS_ORIGIN").unwrap_or_else(|_| DEFAULT_CORS_ORIGIN.to_owned());
    let served = Server::from_env().and_then(|server| server.serve(move || app(&cors_origin)));
    if let Err(e) = served {
        eprintln!("service: {e}");
        std::process::exit(1);
    }
}
