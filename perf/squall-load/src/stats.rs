//! What an executor counts (a `Tally`, owned by that executor alone, merged once at the end)
//! and the report built from the merged tally: a human table and a JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Why a request, message or connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The TCP connect or the WebSocket handshake failed.
    Connect,
    /// No response within the timeout.
    Timeout,
    /// The server reset or closed the connection with requests outstanding.
    Reset,
    /// A response with a status outside 2xx (counted per code).
    BadStatus(u16),
    /// Bytes that are not a valid response or WebSocket frame.
    Protocol,
}

impl ErrorKind {
    /// The name in reports: `connect`, `timeout`, `reset`, `status_503`, `protocol`.
    pub fn name(self) -> String {
        match self {
            Self::Connect => "connect".into(),
            Self::Timeout => "timeout".into(),
            Self::Reset => "reset".into(),
            Self::BadStatus(code) => format!("status_{code}"),
            Self::Protocol => "protocol".into(),
        }
    }
}

/// Highest latency the histograms hold (an hour, in nanoseconds); longer ones are clamped.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// One executor's counts. Only its own executor touches it until the run ends.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latencies in nanoseconds of measured requests (or messages, or deliveries).
    pub latency: Histogram<u64>,
    /// Measured responses (or echoes, or deliveries), whatever their status; in `ws-idle`,
    /// connections held to the end.
    pub completed: u64,
    /// Measured responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Latencies of measured HTTP responses outside 2xx (a server shedding load answers
    /// 503s, and how fast it refuses is part of the result); `latency` has every response.
    pub refused_latency: Histogram<u64>,
    /// Errors by kind, over the whole run including connects and warm-up.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Connections that were open when the measurement started.
    pub connected: u64,
    /// Broadcast messages the publisher sent inside the window (subscribe mode).
    pub published: u64,
    /// Responses (or messages) seen over the whole run, warm-up included, for the progress line.
    pub seen: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("constant histogram bounds are valid"),
            completed: 0,
            statuses: BTreeMap::new(),
            refused_latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("constant histogram bounds are valid"),
            errors: BTreeMap::new(),
            connected: 0,
            published: 0,
            seen: 0,
        }
    }
}

impl Tally {
    /// Records one measured completion.
    pub fn record(&mut self, latency_ns: u64) {
        self.latency.saturating_record(latency_ns.max(1));
        self.completed += 1;
    }

    /// Records one measured HTTP response outside 2xx, beside [`record`](Self::record).
    pub fn record_refused(&mut self, latency_ns: u64) {
        self.refused_latency.saturating_record(latency_ns.max(1));
    }

    /// Counts an error.
    pub fn error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Total errors of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds another executor's counts into this one.
    pub fn merge(&mut self, other: &Tally) {
        self.latency
            .add(&other.latency)
            .expect("histograms with the same bounds merge");
        self.refused_latency
            .add(&other.refused_latency)
            .expect("histograms with the same bounds merge");
        self.completed += other.completed;
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
        self.connected += other.connected;
        self.published += other.published;
        self.seen += other.seen;
    }
}

/// The percentiles every report shows.
pub const PERCENTILES: [(&str, f64); 4] =
    [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)];

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// `http`, `ws-echo`, `ws-subscribe` or `ws-idle`.
    pub mode: &'static str,
    /// The target URL.
    pub url: String,
    /// Connections asked for (subscribers in subscribe mode).
    pub connections: usize,
    /// Executors.
    pub threads: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// The open-loop aggregate rate, if any.
    pub rate: Option<f64>,
    /// The measured span (the duration asked for, the time the request count took, or in
    /// `ws-idle` how long the connections were held after any warm-up).
    pub elapsed: Duration,
    /// The generator's own CPU time (user and system, every thread) from the start line to
    /// the end of the run: the load, without opening the connections.
    pub cpu: Duration,
    /// Everything counted, merged across executors.
    pub tally: Tally,
}

impl Report {
    /// Completions per second over the measured span.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.tally.completed as f64 / secs
        } else {
            0.0
        }
    }

    /// Deliveries that a subscribe run expected: messages published in the window times the
    /// subscribers connected.
    pub fn expected_deliveries(&self) -> Option<u64> {
        (self.mode == "ws-subscribe").then(|| self.tally.published * self.tally.connected)
    }

    /// Latencies of the 2xx responses alone: every response's less the others'.
    fn ok_latency(&self) -> Histogram<u64> {
        let mut ok = self.tally.latency.clone();
        // Both record the same measured responses, so the subtraction cannot underflow.
        let _ = ok.subtract(&self.tally.refused_latency);
        ok
    }

    /// A latency percentile in nanoseconds.
    pub fn percentile_ns(&self, percentile: f64) -> u64 {
        self.tally.latency.value_at_quantile(percentile / 100.0)
    }

    /// Whether this is a `ws-idle` run, whose table and JSON describe held connections
    /// rather than latencies.
    fn is_idle(&self) -> bool {
        self.mode == "ws-idle"
    }

    /// The human-readable summary.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if self.is_idle() {
            let _ = writeln!(
                out,
                "{} {}: {} connections ({} open) on {} thread(s)",
                self.mode, self.url, self.connections, self.tally.connected, self.threads,
            );
            let _ = writeln!(
                out,
                "  held         {} of {} for {:.2}s, {} lost",
                self.tally.completed,
                self.tally.connected,
                self.elapsed.as_secs_f64(),
                self.tally.connected.saturating_sub(self.tally.completed)
            );
            self.footer(&mut out);
            return out;
        }
        let pacing = match self.rate {
            Some(rate) => format!("open loop at {rate:.0}/s"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(
            out,
            "{} {}: {} connections ({} open) on {} thread(s), pipeline {}, {pacing}",
            self.mode,
            self.url,
            self.connections,
            self.tally.connected,
            self.threads,
            self.pipeline,
        );
        let h = &self.tally.latency;
        let _ = writeln!(out, "  latency      mean {:>10}", micros(h.mean() as u64));
        for (name, p) in PERCENTILES {
            let _ = writeln!(
                out,
                "               {name:<5}{:>10}",
                micros(self.percentile_ns(p))
            );
        }
        let _ = writeln!(out, "               max  {:>10}", micros(h.max()));
        let _ = writeln!(
            out,
            "  completed    {} in {:.2}s = {:.1}/s",
            self.tally.completed,
            self.elapsed.as_secs_f64(),
            self.throughput()
        );
        if let Some(expected) = self.expected_deliveries() {
            let _ = writeln!(
                out,
                "  broadcast    {} published x {} subscribers = {expected} expected, {} missing",
                self.tally.published,
                self.tally.connected,
                expected.saturating_sub(self.tally.completed)
            );
        }
        if !self.tally.statuses.is_empty() {
            let statuses: Vec<String> = self
                .tally
                .statuses
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            let _ = writeln!(out, "  statuses     {}", statuses.join(", "));
        }
        let refused = &self.tally.refused_latency;
        if !refused.is_empty() {
            for (class, h) in [("2xx", &self.ok_latency()), ("non-2xx", refused)] {
                let _ = writeln!(
                    out,
                    "  {class:<8}     p50 {} p99 {} max {}",
                    micros(h.value_at_quantile(0.5)),
                    micros(h.value_at_quantile(0.99)),
                    micros(h.max())
                );
            }
        }
        self.footer(&mut out);
        out
    }

    /// The table's last lines: errors (the count, then each kind's) and the generator's CPU.
    fn footer(&self, out: &mut String) {
        if self.tally.errors.is_empty() {
            let _ = writeln!(out, "  errors       0");
        } else {
            let errors: Vec<String> = self
                .tally
                .errors
                .iter()
                .map(|(kind, n)| format!("{} {n}", kind.name()))
                .collect();
            let _ = writeln!(
                out,
                "  errors       {} ({})",
                self.tally.error_count(),
                errors.join(", ")
            );
        }
        let _ = writeln!(out, "  client cpu   {:.3}s", self.cpu.as_secs_f64());
    }

    /// The JSON report: latencies in microseconds (fractional), counts, errors by kind.
    pub fn json(&self) -> Value {
        let h = &self.tally.latency;
        let mut latency = serde_json::Map::new();
        latency.insert("mean".into(), json!(h.mean() / 1e3));
        latency.insert("min".into(), json!(h.min() as f64 / 1e3));
        for (name, p) in PERCENTILES {
            latency.insert(name.into(), json!(self.percentile_ns(p) as f64 / 1e3));
        }
        latency.insert("max".into(), json!(h.max() as f64 / 1e3));
        let statuses: serde_json::Map<String, Value> = self
            .tally
            .statuses
            .iter()
            .map(|(code, n)| (code.to_string(), json!(n)))
            .collect();
        let errors: serde_json::Map<String, Value> = self
            .tally
            .errors
            .iter()
            .map(|(kind, n)| (kind.name(), json!(n)))
            .collect();
        json!({
            "mode": self.mode,
            "url": self.url,
            "connections": self.connections,
            "connected": self.tally.connected,
            "threads": self.threads,
            "pipeline": self.pipeline,
            "rate": self.rate,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "completed": self.tally.completed,
            // Everything seen, warm-up and grace included: a script dividing the server's CPU
            // over the whole run needs every delivery it paid for, not just the measured ones.
            "seen": self.tally.seen,
            "throughput": self.throughput(),
            "latency_us": latency,
            // Every recorded bucket as [nanoseconds, count], so reports of several
            // processes can be merged exactly (scripts/bench-c10k.py does).
            "histogram_ns": h
                .iter_recorded()
                .map(|v| json!([v.value_iterated_to(), v.count_at_value()]))
                .collect::<Vec<_>>(),
            "statuses": statuses,
            // Latencies of the 2xx and the other responses apart, when there were others.
            "latency_2xx_us": (!self.tally.refused_latency.is_empty())
                .then(|| summary_us(&self.ok_latency())),
            "latency_non_2xx_us": (!self.tally.refused_latency.is_empty())
                .then(|| summary_us(&self.tally.refused_latency)),
            "errors": errors,
            "error_count": self.tally.error_count(),
            "published": (self.mode == "ws-subscribe").then_some(self.tally.published),
            "expected_deliveries": self.expected_deliveries(),
            "held": self.is_idle().then_some(self.tally.completed),
            "cpu_s": self.cpu.as_secs_f64(),
        })
    }
}

/// p50, p99 and max of `h`, in microseconds, for the JSON report.
fn summary_us(h: &Histogram<u64>) -> Value {
    json!({
        "p50": h.value_at_quantile(0.5) as f64 / 1e3,
        "p99": h.value_at_quantile(0.99) as f64 / 1e3,
        "max": h.max() as f64 / 1e3,
    })
}

/// Nanoseconds as microseconds or milliseconds, whichever reads better.
fn micros(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else {
        format!("{:.1}us", ns as f64 / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(latencies_us: &[u64]) -> Tally {
        let mut tally = Tally::default();
        for &us in latencies_us {
            tally.record(us * 1000);
            *tally.statuses.entry(200).or_default() += 1;
        }
        tally
    }

    #[test]
    fn merging_adds_counts_and_histograms() {
        let mut a = tally(&[100, 200]);
        a.error(ErrorKind::Timeout);
        a.connected = 2;
        let mut b = tally(&[300]);
        b.error(ErrorKind::BadStatus(503));
        b.error(ErrorKind::Timeout);
        b.connected = 1;
        a.merge(&b);
        assert_eq!(a.completed, 3);
        assert_eq!(a.latency.len(), 3);
        assert_eq!(a.statuses[&200], 3);
        assert_eq!(a.errors[&ErrorKind::Timeout], 2);
        assert_eq!(a.errors[&ErrorKind::BadStatus(503)], 1);
        assert_eq!(a.error_count(), 3);
        assert_eq!(a.connected, 3);
        assert!(a.latency.equivalent(a.latency.max(), 300_000));
    }

    fn report(tally: Tally) -> Report {
        Report {
            mode: "http",
            url: "http://127.0.0.1:8080/".into(),
            connections: 4,
            threads: 1,
            pipeline: 1,
            rate: Some(1000.0),
            elapsed: Duration::from_secs(2),
            cpu: Duration::from_millis(1500),
            tally,
        }
    }

    #[test]
    fn json_report_fields() {
        let latencies: Vec<u64> = (1..=1000).collect();
        let mut t = tally(&latencies);
        t.error(ErrorKind::BadStatus(404));
        t.error(ErrorKind::Connect);
        let json = report(t).json();
        assert_eq!(json["completed"], 1000);
        assert_eq!(json["throughput"], 500.0);
        assert_eq!(json["errors"]["status_404"], 1);
        assert_eq!(json["errors"]["connect"], 1);
        assert_eq!(json["error_count"], 2);
        assert_eq!(json["statuses"]["200"], 1000);
        let p50 = json["latency_us"]["p50"].as_f64().expect("number");
        let p99 = json["latency_us"]["p99"].as_f64().expect("number");
        assert!((p50 - 500.0).abs() <= 1.0, "p50 {p50}");
        assert!((p99 - 990.0).abs() <= 1.0, "p99 {p99}");
        assert!(json["published"].is_null());
        assert!(json["held"].is_null());
        assert_eq!(json["cpu_s"], 1.5);
        assert_eq!(json["seen"], 0);
    }

    #[test]
    fn idle_reports_held_connections() {
        let mut t = Tally {
            connected: 4,
            completed: 3,
            ..Tally::default()
        };
        t.error(ErrorKind::Reset);
        let mut idle = report(t);
        idle.mode = "ws-idle";
        let table = idle.table();
        assert!(
            table.contains("held         3 of 4 for 2.00s, 1 lost"),
            "{table}"
        );
        assert!(!table.contains("p99"), "{table}");
        assert!(table.contains("errors       1 (reset 1)"), "{table}");
        assert_eq!(idle.json()["held"], 3);
    }

    #[test]
    fn table_lists_latencies_and_errors() {
        let mut t = tally(&[50, 60, 70]);
        t.error(ErrorKind::Reset);
        t.error(ErrorKind::BadStatus(500));
        let table = report(t).table();
        assert!(table.contains("open loop at 1000/s"), "{table}");
        assert!(table.contains("p99.9"), "{table}");
        assert!(table.contains("completed    3 in 2.00s = 1.5/s"), "{table}");
        assert!(
            table.contains("errors       2 (reset 1, status_500 1)"),
            "{table}"
        );
        assert!(table.contains("70.0us"), "{table}");
        assert!(table.contains("client cpu   1.500s"), "{table}");
        assert_eq!(micros(25_000_000), "25.00ms");
    }
}
