//! Server-side latency per route, opt-in.
//!
//! Wrap an application in [`RouteLatency`] and every request it answers is timed, from the
//! moment the middleware sees it until the handler returns its response (for a streamed body,
//! until the head is ready, not the last byte), and counted by status class. Each core keeps
//! its own figures — an [HdrHistogram](https://docs.rs/hdrhistogram) per route pattern — with
//! no lock or shared atomic. [`snapshot`] asks every core for its figures through the
//! cross-core mesh ([`cores`](crate::cores)) and merges them; [`route`] serves the merged
//! figures as JSON or as a text table:
//!
//! ```no_run
//! use squall::{metrics, App, Request, Server};
//!
//! async fn user(_req: Request) -> &'static str {
//!     "someone"
//! }
//!
//! fn main() -> Result<(), squall::Error> {
//!     Server::from_env()?.serve(|| {
//!         App::new()
//!             .wrap(metrics::RouteLatency::new()) // first, so it times the other middleware too
//!             .get("/users/{id}", user)
//!             .get("/metrics", metrics::route()) // `?format=text` for a table
//!     })
//! }
//! ```
//!
//! Routes are keyed by pattern (`/users/{id}`), never by path, so the number of histograms
//! is bounded by the application's routes; requests no pattern matched (404s, the fallback,
//! `OPTIONS *`) share one bucket, [`UNMATCHED`]. A 405 counts under the pattern it matched.
//!
//! ## Prometheus
//!
//! `App::new().prometheus("/metrics")` serves every core's figures to a Prometheus scrape,
//! in the text format 0.0.4, or in OpenMetrics 1.0 when the scraper's `Accept` asks for
//! `application/openmetrics-text` (Prometheus does by default). It installs a
//! [`RouteLatency`] recorder; call it before wrapping other middleware so their time
//! counts too. The values are gathered when scraped: one job per core through the
//! cross-core mesh, which reads that core's plain counters; nothing on the request path
//! takes a lock or touches a shared atomic.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `squall_http_requests_total` | counter | `route`, `status` (`2xx`…) | requests answered, by route pattern and status class |
//! | `squall_http_request_duration_seconds` | histogram | `route` | middleware to response head; buckets 100 µs to 10 s |
//! | `squall_connections_accepted_total` | counter | `core` | connections accepted |
//! | `squall_accept_failures_total` | counter | `core` | accepts that failed for want of descriptors or memory (the connection waits in the backlog; squall refuses none) |
//! | `squall_connections_open` | gauge | `core` | connections open, upgraded ones included |
//! | `squall_received_bytes_total`, `squall_sent_bytes_total` | counter | `core` | bytes read and written by the HTTP/1.1 driver (after TLS; a WebSocket's after its upgrade are not counted) |
//! | `squall_websocket_sessions_open` | gauge | `core` | WebSocket sessions open |
//! | `squall_hub_deliveries_total` | counter | `core`, `result` (`delivered`, `refused`) | hub messages offered to this core's subscribers |
//!
//! With the `postgres` and `redis` features, each core's PostgreSQL pools and Redis clients
//! and subscribers, found through the list they register on when built ([`db`](crate::db));
//! `pool` and `client` name the server and database (`host:port/dbname`, `host:port/db`),
//! never the credentials, and those of one core with the same label are added up. The
//! families appear once a core has built a pool or client; zero series are written too.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `squall_postgres_connections` | gauge | `core`, `pool`, `state` (`idle`, `in_use`, `connecting`) | connections by state; `in_use` has queries under way (connections are shared and pipelined) |
//! | `squall_postgres_connections_max` | gauge | `core`, `pool` | the pool's size |
//! | `squall_postgres_queries_in_flight` | gauge | `core`, `pool` | operations under way |
//! | `squall_postgres_waiters` | gauge | `core`, `pool` | `PgPool::get` calls waiting for a connection to open |
//! | `squall_postgres_connects_total`, `squall_postgres_connect_errors_total` | counter | `core`, `pool` | connections begun, and those that could not be opened |
//! | `squall_postgres_get_errors_total` | counter | `core`, `pool` | `get` calls that failed: no connection could be opened |
//! | `squall_postgres_queries_total` | counter | `core`, `pool` | operations (query, execute, prepare, batch) started |
//! | `squall_postgres_query_errors_total` | counter | `core`, `pool`, `kind` (`connection`, `timeout`, `server`, `client`) | failed operations: connection lost, a time limit, the server's error, or refused by the client (row count, conversion) |
//! | `squall_redis_connections` | gauge | `core`, `client`, `role` (`commands`, `subscriber`) | open connections |
//! | `squall_redis_subscriptions` | gauge | `core`, `client` | channels and patterns the subscribers hold |
//! | `squall_redis_commands_in_flight` | gauge | `core`, `client` | commands awaiting their reply (a pipeline counts once) |
//! | `squall_redis_waiters` | gauge | `core`, `client` | commands waiting for the connection to open |
//! | `squall_redis_connects_total`, `squall_redis_connect_errors_total`, `squall_redis_reconnects_total` | counter | `core`, `client` | connections begun, failed, and opened to replace a lost one |
//! | `squall_redis_commands_total` | counter | `core`, `client` | commands, pipelines and subscription changes sent |
//! | `squall_redis_command_errors_total` | counter | `core`, `client`, `kind` (`connection`, `timeout`, `server`, `client`) | failed commands: connection lost or not opened, no reply in time, an error reply, not encodable |
//!
//! Routes are patterns, so the number of series is bounded by the application's routes.
//! The connection and byte counters are kept by the server whether or not metrics are
//! served: an add to a cell of the core's own per accept, read and write, which is no
//! branch and no atomic.
//!
//! **Cost.** Memory: one histogram per route per core, created by the route's first request,
//! tracking 1 µs to 60 s at 3 significant digits (0.1% error): about 136 KiB each; longer
//! requests count as 60 s. Time: two clock reads and one histogram increment per request,
//! ≈ 60 ns in a standalone loop over hdrhistogram outside this repository (about 24 ns a
//! clock read; an order of magnitude, with no bench here to re-run it), plus what any
//! middleware costs (the chain's boxed future) — under 1% of the ≈ 9 µs of server CPU a small
//! JSON request takes (BENCHMARKS.md).

mod exposition;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod pools;
mod prometheus;

pub use self::prometheus::scrape;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Error;
use crate::future::LocalFuture;
use crate::handler::Handler;
use crate::middleware::{Middleware, Next};
use crate::per_core::ExecutorLocal;
use crate::request::Request;
use crate::response::{IntoResponse, Json, Response};

/// The route name under which requests that matched no pattern are counted.
pub const UNMATCHED: &str = "(unmatched)";

/// The slowest latency told apart; anything slower counts as this.
const HIGHEST_MICROS: u64 = 60_000_000;
/// Significant digits kept: latencies are accurate to 0.1%.
const SIGNIFICANT_DIGITS: u8 = 3;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
        .expect("the bounds are constants hdrhistogram accepts")
}

/// Middleware that records each request's latency and status under its route's pattern.
/// See the [module documentation](self).
///
/// Build it inside the application factory, so each core gets its own; the one built last on
/// a core is the one [`snapshot`] reads there.
pub struct RouteLatency {
    recorder: Rc<Recorder>,
}

impl RouteLatency {
    /// Starts recording on this core.
    pub fn new() -> RouteLatency {
        let recorder = Rc::new(Recorder::default());
        CURRENT.with(|current| current.set(Rc::clone(&recorder)));
        RouteLatency { recorder }
    }
}

impl Default for RouteLatency {
    fn default() -> Self {
        RouteLatency::new()
    }
}

impl std::fmt::Debug for RouteLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteLatency").finish_non_exhaustive()
    }
}

impl Middleware for RouteLatency {
    fn call(&self, req: Request, next: Next) -> LocalFuture<'static, Response> {
        let slot = self.recorder.slot_for(&req);
        let recorder = Rc::clone(&self.recorder);
        let started = Instant::now();
        let pending = next.run(req);
        Box::pin(async move {
            match AssertUnwindSafe(pending).catch_unwind().await {
                Ok(response) => {
                    recorder.record(slot, started.elapsed(), response.status().as_u16());
                    response
                }
                Err(panic) => {
                    // The router turns the panic into a 500; count it as one.
                    recorder.record(slot, started.elapsed(), 500);
                    std::panic::resume_unwind(panic)
                }
            }
        })
    }
}

thread_local! {
    /// The recorder of this core's application, for the jobs `snapshot` and `reset` send.
    static CURRENT: ExecutorLocal<Recorder> = const { ExecutorLocal::new() };
}

/// Where a request's figures go: its route's record (by route index), or, for `None`, the
/// unmatched one.
type Slot = Option<usize>;

/// One core's figures for one route.
#[derive(Clone, Debug)]
struct Record {
    route: Box<str>,
    latency: Histogram<u64>,
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    statuses: [u64; 5],
}

impl Record {
    fn new(route: &str) -> Record {
        Record {
            route: route.into(),
            latency: new_histogram(),
            statuses: [0; 5],
        }
    }
}

/// One core's figures. Routes are indexed by their position in the application's route
/// table, so recording finds its histogram without hashing.
#[derive(Default)]
struct Recorder {
    routes: RefCell<Vec<Option<Record>>>,
    unmatched: RefCell<Option<Record>>,
}

impl Recorder {
    /// The slot for `req`, its record made on the route's first request.
    fn slot_for(&self, req: &Request) -> Slot {
        let (Some(index), Some(pattern)) = (req.route_index(), req.matched_route()) else {
            self.unmatched
                .borrow_mut()
                .get_or_insert_with(|| Record::new(UNMATCHED));
            return None;
        };
        let mut routes = self.routes.borrow_mut();
        if routes.len() <= index {
            routes.resize_with(index + 1, || None);
        }
        routes[index].get_or_insert_with(|| Record::new(pattern));
        Some(index)
    }

    fn record(&self, slot: Slot, latency: Duration, status: u16) {
        let mut routes;
        let mut unmatched;
        let record = match slot {
            Some(index) => {
                routes = self.routes.borrow_mut();
                routes.get_mut(index).and_then(Option::as_mut)
            }
            None => {
                unmatched = self.unmatched.borrow_mut();
                unmatched.as_mut()
            }
        };
        // A `reset` between the request's start and end dropped its record.
        let Some(record) = record else { return };
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        record.latency.saturating_record(micros);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        record.statuses[class] += 1;
    }

    /// A copy of this core's records, to send to the core merging them.
    fn records(&self) -> Vec<Record> {
        let routes = self.routes.borrow();
        let unmatched = self.unmatched.borrow();
        routes
            .iter()
            .flatten()
            .chain(unmatched.iter())
            .cloned()
            .collect()
    }

    fn clear(&self) {
        self.routes.borrow_mut().clear();
        *self.unmatched.borrow_mut() = None;
    }
}

fn current_records() -> Vec<Record> {
    CURRENT.with(|current| {
        current
            .get()
            .map(|recorder| recorder.records())
            .unwrap_or_default()
    })
}

/// The latency and status figures of every route, merged across all cores. Call it from a
/// handler or a task on a server core; each core answers through the cross-core mesh.
pub async fn snapshot() -> Result<Snapshot, Error> {
    let per_core = crate::cores::ask_everywhere(current_records).await?;
    Ok(Snapshot::merge(per_core.into_iter().flatten()))
}

/// Forgets every core's figures (their memory too); routes start again from their next
/// request. Returns once every core has done so.
pub async fn reset() -> Result<(), Error> {
    crate::cores::ask_everywhere(|| {
        CURRENT.with(|current| {
            if let Some(recorder) = current.get() {
                recorder.clear();
            }
        })
    })
    .await?;
    Ok(())
}

/// A handler that answers with [`snapshot`]: JSON, or a text table for `?format=text`.
/// Route it yourself (`.get("/metrics", metrics::route())`) and keep it from the public
/// (a guard middleware, or an address only operators reach): the figures describe your
/// traffic.
pub fn route() -> impl Handler {
    |req: Request| async move {
        let text = req
            .query_args()
            .raw("format")
            .is_some_and(|f| f.eq_ignore_ascii_case("text"));
        let snapshot = snapshot().await?;
        Ok::<Response, Error>(if text {
            Response::text(snapshot.to_text())
        } else {
            Json(snapshot).into_response()
        })
    }
}

/// Every route's figures, merged across cores, sorted by route with [`UNMATCHED`] last.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// One entry per route that has answered at least one request.
    pub routes: Vec<RouteStats>,
}

/// One route's figures.
#[derive(Clone, Debug, Serialize)]
pub struct RouteStats {
    /// The route's pattern (`/users/{id}`), or [`UNMATCHED`].
    pub route: String,
    /// Requests answered.
    pub count: u64,
    /// Latency percentiles and maximum, in microseconds.
    pub latency_us: Percentiles,
    /// Responses by status class.
    pub status: StatusClasses,
    #[serde(skip)]
    latency: Histogram<u64>,
}

/// Latency figures in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    /// Slowest.
    pub max: u64,
}

/// Response counts by status class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusClasses {
    /// 1xx responses.
    #[serde(rename = "1xx")]
    pub informational: u64,
    /// 2xx responses.
    #[serde(rename = "2xx")]
    pub success: u64,
    /// 3xx responses.
    #[serde(rename = "3xx")]
    pub redirection: u64,
    /// 4xx responses.
    #[serde(rename = "4xx")]
    pub client_error: u64,
    /// 5xx responses.
    #[serde(rename = "5xx")]
    pub server_error: u64,
}

impl Snapshot {
    fn merge(records: impl IntoIterator<Item = Record>) -> Snapshot {
        let mut merged: Vec<Record> = Vec::new();
        for record in records {
            match merged.iter_mut().find(|m| m.route == record.route) {
                Some(into) => {
                    // Same bounds on every core, so adding cannot fail.
                    let _ = into.latency.add(&record.latency);
                    for (sum, n) in into.statuses.iter_mut().zip(record.statuses) {
                        *sum += n;
                    }
                }
                None => merged.push(record),
            }
        }
        merged.sort_by(|a, b| {
            let unmatched = |r: &Record| &*r.route == UNMATCHED;
            (unmatched(a), &a.route).cmp(&(unmatched(b), &b.route))
        });
        let routes = merged.into_iter().map(RouteStats::from).collect();
        Snapshot { routes }
    }

    /// The figures of the route with pattern `route` (or [`UNMATCHED`]).
    pub fn route(&self, route: &str) -> Option<&RouteStats> {
        self.routes.iter().find(|r| r.route == route)
    }

    /// The figures as an aligned text table, one route a line, latencies in microseconds.
    pub fn to_text(&self) -> String {
        let width = self
            .routes
            .iter()
            .map(|r| r.route.len())
            .chain([5])
            .max()
            .unwrap_or(5);
        let mut out = format!(
            "{:<width$} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>10} {:>8} {:>8} {:>8}\n",
            "route",
            "count",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "1xx",
            "2xx",
            "3xx",
            "4xx",
            "5xx"
        );
        for r in &self.routes {
            let (l, s) = (&r.latency_us, &r.status);
            let _ = writeln!(
                out,
                "{:<width$} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>10} {:>8} {:>8} {:>8}",
                r.route,
                r.count,
                l.p50,
                l.p90,
                l.p99,
                l.p99_9,
                l.max,
                s.informational,
                s.success,
                s.redirection,
                s.client_error,
                s.server_error
            );
        }
        out
    }
}

impl RouteStats {
    /// The latency below which `quantile` (0.0–1.0) of the requests fell.
    pub fn latency_at(&self, quantile: f64) -> Duration {
        Duration::from_micros(self.latency.value_at_quantile(quantile))
    }
}

impl From<Record> for RouteStats {
    fn from(record: Record) -> RouteStats {
        let h = &record.latency;
        let [informational, success, redirection, client_error, server_error] = record.statuses;
        RouteStats {
            count: h.len(),
            latency_us: Percentiles {
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p99: h.value_at_quantile(0.99),
                p99_9: h.value_at_quantile(0.999),
                max: h.max(),
            },
            status: StatusClasses {
                informational,
                success,
                redirection,
                client_error,
                server_error,
            },
            route: record.route.into(),
            latency: record.latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(route: &str, micros: &[u64], statuses: [u64; 5]) -> Record {
        let mut record = Record::new(route);
        for &m in micros {
            record.latency.saturating_record(m);
        }
        record.statuses = statuses;
        record
    }

    #[test]
    fn records_count_latency_and_status_classes_per_slot() {
        let recorder = Recorder::default();
        recorder.routes.borrow_mut().resize_with(3, || None);
        recorder.routes.borrow_mut()[2] = Some(Record::new("/users/{id}"));
        *recorder.unmatched.borrow_mut() = Some(Record::new(UNMATCHED));
        recorder.record(Some(2), Duration::from_micros(150), 200);
        recorder.record(Some(2), Duration::from_millis(3), 503);
        recorder.record(None, Duration::from_micros(20), 404);
        // Out-of-range statuses land in the nearest class rather than panicking.
        recorder.record(None, Duration::from_micros(20), 99);
        recorder.record(None, Duration::from_secs(3600), 999);
        // A slot whose record was reset is ignored.
        recorder.record(Some(7), Duration::from_micros(1), 200);

        let records = recorder.records();
        assert_eq!(records.len(), 2);
        let users = &records[0];
        assert_eq!(&*users.route, "/users/{id}");
        assert_eq!(users.latency.len(), 2);
        assert_eq!(users.statuses, [0, 1, 0, 0, 1]);
        assert!(users.latency.equivalent(users.latency.max(), 3000));
        let unmatched = &records[1];
        assert_eq!(unmatched.statuses, [1, 0, 0, 1, 1]);
        assert!(
            unmatched.latency.max() >= HIGHEST_MICROS,
            "an hour counts as the ceiling"
        );

        recorder.clear();
        assert!(recorder.records().is_empty());
    }

    #[test]
    fn snapshots_merge_cores_by_route_with_unmatched_last() {
        let core0 = vec![
            record(UNMATCHED, &[5], [0, 0, 0, 1, 0]),
            record("/b", &[100; 90], [0, 90, 0, 0, 0]),
        ];
        let core1 = vec![
            record("/b", &[1000; 10], [0, 9, 0, 1, 0]),
            record("/a", &[7], [0, 1, 0, 0, 0]),
            record(UNMATCHED, &[6, 8], [0, 0, 0, 2, 0]),
        ];
        let snapshot = Snapshot::merge(core0.into_iter().chain(core1));
        let routes: Vec<&str> = snapshot.routes.iter().map(|r| r.route.as_str()).collect();
        assert_eq!(routes, ["/a", "/b", UNMATCHED]);

        let b = snapshot.route("/b").expect("merged");
        assert_eq!(b.count, 100);
        assert_eq!(b.status.success, 99);
        assert_eq!(b.status.client_error, 1);
        assert_eq!(b.latency_us.p50, 100);
        assert!(
            (995..=1001).contains(&b.latency_us.p99),
            "{:?}",
            b.latency_us
        );
        assert!(
            (995..=1001).contains(&b.latency_us.max),
            "{:?}",
            b.latency_us
        );
        assert_eq!(b.latency_at(0.5), Duration::from_micros(100));
        let unmatched = snapshot.route(UNMATCHED).expect("merged");
        assert_eq!((unmatched.count, unmatched.status.client_error), (3, 3));

        let json = serde_json::to_value(&snapshot).expect("serializable");
        assert_eq!(json["routes"][1]["route"], "/b");
        assert_eq!(json["routes"][1]["status"]["2xx"], 99);
        assert_eq!(json["routes"][1]["latency_us"]["p50"], 100);
        assert!(json["routes"][1]["latency_us"]["p99.9"].is_u64());

        let text = snapshot.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("route"), "{text}");
        assert!(lines[3].starts_with(UNMATCHED), "{text}");
        let b_line: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(b_line[..3], ["/b", "100", "100"], "{text}");
    }
}
