//! `/metrics` for Prometheus: every core's figures, gathered at scrape time.
//!
//! Nothing here runs per request. A scrape sends one job to every core through the
//! cross-core mesh ([`cores`](crate::cores)); each reads its own plain counters — the route
//! recorder's histograms and status counts, the server's connection and byte counters, its
//! WebSocket sessions and hub deliveries, its database pools (`pools`) — reduces them to a
//! few numbers per series (bucket counts, not whole histograms) and sends them back; the
//! scraping core adds them up and writes the text ([`exposition`](super::exposition)).
//!
//! Per-route latency and request counts come from [`RouteLatency`], which
//! [`App::prometheus`] installs; the rest is counted by the server whether or not anyone
//! scrapes (an add to a per-core cell per accept, read and write: no branch, no atomic).

use crate::error::Error;
use crate::handler::Handler;
use crate::hub::Deliveries;
use crate::request::Request;
use crate::response::Response;
use crate::router::App;

use super::exposition::{encode, Family, Format, Kind, Labels, Sample};
use super::{current_records, Record, RouteLatency, CURRENT};

/// Upper bounds of the latency buckets, in microseconds (Prometheus's default buckets,
/// 100 µs to 10 s, with 100 µs and 250 µs added below 5 ms for a fast server).
const BUCKETS_MICROS: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// One route's figures on one core, reduced to what the exposition needs.
#[derive(Clone, Debug)]
struct RouteFigures {
    route: Box<str>,
    /// Count per bucket (not cumulative), then the count above the last bound.
    buckets: [u64; BUCKETS_MICROS.len() + 1],
    sum_micros: u64,
    count: u64,
    statuses: [u64; 5],
}

impl RouteFigures {
    fn of(record: &Record) -> RouteFigures {
        let mut buckets = [0; BUCKETS_MICROS.len() + 1];
        let mut sum_micros: u64 = 0;
        for value in record.latency.iter_recorded() {
            let micros = record.latency.median_equivalent(value.value_iterated_to());
            let n = value.count_at_value();
            let at = BUCKETS_MICROS.partition_point(|&bound| bound < micros);
            buckets[at] += n;
            sum_micros = sum_micros.saturating_add(micros.saturating_mul(n));
        }
        RouteFigures {
            route: record.route.clone(),
            buckets,
            sum_micros,
            count: record.latency.len(),
            statuses: record.statuses,
        }
    }

    fn add(&mut self, other: &RouteFigures) {
        for (sum, n) in self.buckets.iter_mut().zip(other.buckets) {
            *sum += n;
        }
        for (sum, n) in self.statuses.iter_mut().zip(other.statuses) {
            *sum += n;
        }
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
        self.count += other.count;
    }
}

/// What one core reports to a scrape.
#[derive(Debug)]
struct CoreFigures {
    core: usize,
    routes: Vec<RouteFigures>,
    /// Connections and bytes, if this core runs a server (not on a bare test executor).
    traffic: Option<[u64; 5]>,
    websockets: usize,
    hub: Deliveries,
    /// Its PostgreSQL pools and Redis clients.
    #[cfg(any(feature = "postgres", feature = "redis"))]
    pools: super::pools::CorePools,
}

fn this_core() -> CoreFigures {
    let routes = current_records().iter().map(RouteFigures::of).collect();
    let traffic = crate::per_core::traffic_if_counted().map(|t| {
        [
            t.accepted.get(),
            t.accept_failures.get(),
            t.open.get(),
            t.bytes_in.get(),
            t.bytes_out.get(),
        ]
    });
    CoreFigures {
        core: crate::cores::current(),
        routes,
        traffic,
        websockets: crate::ws::open_sessions(),
        hub: crate::hub::deliveries(),
        #[cfg(any(feature = "postgres", feature = "redis"))]
        pools: super::pools::CorePools::here(),
    }
}

/// Every core's figures as metric families, in a stable order.
fn families(cores: Vec<CoreFigures>) -> Vec<Family> {
    let mut routes: Vec<RouteFigures> = Vec::new();
    for figures in cores.iter().flat_map(|c| &c.routes) {
        match routes.iter_mut().find(|r| r.route == figures.route) {
            Some(into) => into.add(figures),
            None => routes.push(figures.clone()),
        }
    }
    routes.sort_by(|a, b| {
        let unmatched = |r: &RouteFigures| &*r.route == super::UNMATCHED;
        (unmatched(a), &a.route).cmp(&(unmatched(b), &b.route))
    });
    let route = |r: &RouteFigures| vec![("route", r.route.to_string())];
    let mut requests = Vec::new();
    let mut latency = Vec::new();
    for r in &routes {
        for (class, &n) in r.statuses.iter().enumerate() {
            if n > 0 {
                let mut labels = route(r);
                labels.push(("status", format!("{}xx", class + 1)));
                requests.push(Sample::Value(labels, n));
            }
        }
        let mut cumulative = 0;
        let buckets = BUCKETS_MICROS
            .iter()
            .zip(r.buckets)
            .map(|(&bound, n)| {
                cumulative += n;
                (bound as f64 / 1e6, cumulative)
            })
            .collect();
        latency.push(Sample::Histogram {
            labels: route(r),
            buckets,
            sum: r.sum_micros as f64 / 1e6,
            count: r.count,
        });
    }
    let per_core = |value: &dyn Fn(&CoreFigures) -> Option<u64>| -> Vec<Sample> {
        cores
            .iter()
            .filter_map(|c| value(c).map(|v| (c.core, v)))
            .map(|(core, v)| Sample::Value(core_label(core), v))
            .collect()
    };
    let traffic = |i: usize| move |c: &CoreFigures| c.traffic.map(|t| t[i]);
    let mut hub = Vec::new();
    for c in &cores {
        for (result, n) in [("delivered", c.hub.delivered), ("refused", c.hub.refused)] {
            let mut labels = core_label(c.core);
            labels.push(("result", result.to_owned()));
            hub.push(Sample::Value(labels, n));
        }
    }
    #[cfg(any(feature = "postgres", feature = "redis"))]
    let pools = {
        let pools: Vec<_> = cores.iter().map(|c| (c.core, &c.pools)).collect();
        super::pools::families(&pools)
    };
    #[cfg(not(any(feature = "postgres", feature = "redis")))]
    let pools = Vec::new();
    let mut families = vec![
        Family {
            name: "squall_http_requests",
            help: "HTTP requests answered, by route pattern and status class.",
            kind: Kind::Counter,
            samples: requests,
        },
        Family {
            name: "squall_http_request_duration_seconds",
            help: "Time from the middleware receiving a request to the handler's response head, by route pattern.",
            kind: Kind::Histogram,
            samples: latency,
        },
        Family {
            name: "squall_connections_accepted",
            help: "Connections accepted, per core.",
            kind: Kind::Counter,
            samples: per_core(&traffic(0)),
        },
        Family {
            name: "squall_accept_failures",
            help: "Accepts that failed for want of file descriptors or memory, per core; the connection waits in the listen backlog.",
            kind: Kind::Counter,
            samples: per_core(&traffic(1)),
        },
        Family {
            name: "squall_connections_open",
            help: "Connections open, per core, upgraded ones included.",
            kind: Kind::Gauge,
            samples: per_core(&traffic(2)),
        },
        Family {
            name: "squall_received_bytes",
            help: "Bytes read from HTTP connections (after TLS, before a WebSocket upgrade), per core.",
            kind: Kind::Counter,
            samples: per_core(&traffic(3)),
        },
        Family {
            name: "squall_sent_bytes",
            help: "Bytes written to HTTP connections (before TLS, before a WebSocket upgrade), per core.",
            kind: Kind::Counter,
            samples: per_core(&traffic(4)),
        },
        Family {
            name: "squall_websocket_sessions_open",
            help: "WebSocket sessions open, per core.",
            kind: Kind::Gauge,
            samples: per_core(&|c: &CoreFigures| Some(c.websockets as u64)),
        },
        Family {
            name: "squall_hub_deliveries",
            help: "Hub messages offered to a subscriber on this core: delivered, or refused (its queue was full or it had closed).",
            kind: Kind::Counter,
            samples: hub,
        },
    ];
    families.extend(pools);
    families
}

fn core_label(core: usize) -> Labels {
    vec![("core", core.to_string())]
}

/// A handler that answers a Prometheus scrape: the text format 0.0.4, or OpenMetrics 1.0
/// when the `Accept` header asks for `application/openmetrics-text`. Route it with
/// [`App::prometheus`], which also installs the [`RouteLatency`] recorder it reads.
pub fn scrape() -> impl Handler {
    |req: Request| async move {
        let format = Format::from_accept(req.header("accept"));
        let cores = crate::cores::ask_everywhere(this_core).await?;
        let text = encode(&families(cores), format);
        let content_type = http::HeaderValue::from_static(format.content_type());
        Ok::<Response, Error>(Response::with_body(content_type, text))
    }
}

impl App {
    /// Serves Prometheus metrics at `path` (the `metrics` feature): per-route latency
    /// histograms and request counts by status class, connections, bytes, WebSocket
    /// sessions, hub deliveries and PostgreSQL and Redis pools of every core, gathered at
    /// scrape time. Installs a
    /// [`RouteLatency`] recorder as middleware, so call it before `wrap`ping other
    /// middleware for the latency to include theirs, and do not wrap another recorder. See
    /// [`metrics`](crate::metrics) for the metric names.
    ///
    /// Keep the path from the public (a guard, or an address only operators reach): the
    /// figures describe your traffic.
    pub fn prometheus(self, path: &str) -> App {
        let recording = CURRENT.with(|current| current.get().is_some());
        let app = if recording {
            self
        } else {
            self.wrap(RouteLatency::new())
        };
        app.get(path, scrape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn routes_merge_across_cores_into_cumulative_buckets() {
        let mut a = Record::new("/a");
        for micros in [50, 100, 300, 20_000_000] {
            a.latency.saturating_record(micros);
        }
        a.statuses = [0, 3, 0, 1, 0];
        let mut b = Record::new("/a");
        b.latency.saturating_record(200);
        b.statuses = [0, 1, 0, 0, 0];
        let core = |core, records: &[Record]| CoreFigures {
            core,
            routes: records.iter().map(RouteFigures::of).collect(),
            traffic: Some([5, 0, 2, 100, 200]),
            websockets: core,
            hub: Deliveries::default(),
            #[cfg(any(feature = "postgres", feature = "redis"))]
            pools: Default::default(),
        };
        let text = encode(
            &families(vec![core(0, &[a]), core(1, &[b])]),
            Format::Prometheus,
        );
        let has = |line: &str| assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        has("squall_http_requests_total{route=\"/a\",status=\"2xx\"} 4");
        has("squall_http_requests_total{route=\"/a\",status=\"4xx\"} 1");
        has("squall_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0001\"} 2");
        has("squall_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.00025\"} 3");
        has("squall_http_request_duration_seconds_bucket{route=\"/a\",le=\"10.0\"} 4");
        has("squall_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 5");
        has("squall_http_request_duration_seconds_count{route=\"/a\"} 5");
        has("squall_connections_open{core=\"1\"} 2");
        has("squall_websocket_sessions_open{core=\"1\"} 1");
        let sum = text
            .lines()
            .find_map(|l| l.strip_prefix("squall_http_request_duration_seconds_sum{route=\"/a\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("a sum");
        let expected = Duration::from_micros(20_000_650).as_secs_f64();
        assert!((sum - expected).abs() / expected < 0.001, "{sum}");
    }
}
