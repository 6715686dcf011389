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
//! - Load shedding: at most `SERVICE_MAX_IN_FLIGHT` requests in flight per core (default
//!   64), and none while tasks wait longer than `SERVICE_MAX_QUEUE_DELAY_MS` for the core
//!   (default 20); past either, requests get 503 with `Retry-After` at once. `0` turns
//!   either off.
//! - `/api/work`, a stand-in for a request with real work (about 0.07 ms of CPU per
//!   `rounds`), which the load-shedding benchmark drives (`scripts/bench-shedding.sh`).
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

/// Requests in flight per core before the service sheds load, unless
/// `SERVICE_MAX_IN_FLIGHT` says otherwise.
const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// How long a ready task may wait for its core before the service sheds load, unless
/// `SERVICE_MAX_QUEUE_DELAY_MS` says otherwise.
const DEFAULT_MAX_QUEUE_DELAY: Duration = Duration::from_millis(20);

/// What the service is built from: the environment, or a test's choice.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The one browser origin allowed to call the API.
    pub cors_origin: String,
    /// Requests in flight per core before shedding; `None`: no such bound.
    pub max_in_flight: Option<usize>,
    /// Waiting time for the core before shedding; `None`: no such bound.
    pub max_queue_delay: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            cors_origin: DEFAULT_CORS_ORIGIN.to_owned(),
            max_in_flight: Some(DEFAULT_MAX_IN_FLIGHT),
            max_queue_delay: Some(DEFAULT_MAX_QUEUE_DELAY),
        }
    }
}

impl Settings {
    /// The defaults, overridden by `SERVICE_CORS_ORIGIN`, `SERVICE_MAX_IN_FLIGHT` and
    /// `SERVICE_MAX_QUEUE_DELAY_MS`.
    fn from_env() -> Result<Settings, String> {
        let mut settings = Settings::default();
        if let Ok(origin) = std::env::var("SERVICE_CORS_ORIGIN") {
            settings.cors_origin = origin;
        }
        if let Ok(limit) = std::env::var("SERVICE_MAX_IN_FLIGHT") {
            let limit: usize = limit
                .trim()
                .parse()
                .map_err(|_| format!("SERVICE_MAX_IN_FLIGHT={limit:?}: not a number"))?;
            settings.max_in_flight = (limit > 0).then_some(limit);
        }
        if let Ok(ms) = std::env::var("SERVICE_MAX_QUEUE_DELAY_MS") {
            let ms: u64 = ms
                .trim()
                .parse()
                .map_err(|_| format!("SERVICE_MAX_QUEUE_DELAY_MS={ms:?}: not a number"))?;
            settings.max_queue_delay = (ms > 0).then(|| Duration::from_millis(ms));
        }
        Ok(settings)
    }
}

/// What `/api/work` runs over: 64 KiB, hashed `rounds` times.
static WORK: [u8; 64 * 1024] = [0x5a; 64 * 1024];

/// Hashes `WORK` `rounds` times (FNV-1a): CPU work the optimiser cannot skip.
async fn work(req: Request) -> Result<String, Error> {
    let rounds: u32 = req.arg_or("rounds", 3)?;
    if rounds > 64 {
        return Err(Error::bad_request("rounds: at most 64"));
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..rounds {
        hash ^= u64::from(round);
        for byte in std::hint::black_box(&WORK[..]) {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
        }
    }
    Ok(format!("{hash:016x}"))
}

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

/// The service (tests/service.rs builds it too).
pub fn app(settings: &Settings) -> App {
    let cors = Cors::new()
        .allow_origin(&settings.cors_origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(["content-type", "x-request-id"])
        .expose_headers(["x-request-id"])
        .max_age(Duration::from_secs(600));
    let app = App::new()
        // First, so that its latency figures cover everything wrapped after it.
        .prometheus("/metrics")
        .health()
        .request_ids(true)
        .handler_timeout(HANDLER_TIME_LIMIT)
        .wrap(cors)
        .get("/api/greeting", greeting)
        .get("/api/status", status)
        .get("/api/work", work);
    let app = match settings.max_in_flight {
        Some(limit) => app.max_in_flight(limit),
        None => app,
    };
    match settings.max_queue_delay {
        Some(limit) => app.max_queue_delay(limit),
        None => app,
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("service: {e}");
            std::process::exit(1);
        }
    };
    let served = Server::from_env().and_then(|server| server.serve(move || app(&settings)));
    if let Err(e) = served {
        eprintln!("service: {e}");
        std::process::exit(1);
    }
}
