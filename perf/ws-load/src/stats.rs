//! Latency recording shared by many connection tasks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

/// Samples kept per task before they go into the shared histogram: one
/// histogram per connection would cost ~200 KiB each (nanosecond range, three
/// significant digits), far too much for 10,000 subscribers, and a lock per
/// sample would be needless work on a multi-thread runtime.
const BATCH: usize = 256;

/// The histogram all tasks record into, in nanoseconds.
#[derive(Clone)]
pub struct Latencies(Arc<Mutex<Histogram<u64>>>);

impl Latencies {
    pub fn new() -> Latencies {
        // 1 ns .. 1 h, three significant digits; larger values are clamped.
        let h =
            Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds");
        Latencies(Arc::new(Mutex::new(h)))
    }

    pub fn recorder(&self) -> Recorder {
        Recorder {
            batch: Vec::with_capacity(BATCH),
            shared: self.clone(),
        }
    }

    /// The percentiles of everything recorded so far (every Recorder dropped).
    pub fn summary(&self) -> Summary {
        let h = self.0.lock().expect("no panics while recording");
        let us = |ns: u64| ns as f64 / 1000.0;
        Summary {
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            mean_us: h.mean() / 1000.0,
        }
    }
}

/// A task's handle: buffers samples and adds them in batches (and on drop).
pub struct Recorder {
    batch: Vec<u64>,
    shared: Latencies,
}

impl Recorder {
    pub fn record(&mut self, latency: Duration) {
        self.record_ns(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn record_ns(&mut self, ns: u64) {
        self.batch.push(ns.max(1));
        if self.batch.len() == BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut h = self.shared.0.lock().expect("no panics while recording");
        for &ns in &self.batch {
            h.saturating_record(ns);
        }
        self.batch.clear();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

/// The `key=value` fields of the report lines: `p50_us=... p90_us=... p99_us=...
/// p999_us=... max_us=... mean_us=...`, in microseconds to one decimal.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50_us={:.1} p90_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} mean_us={:.1}",
            self.p50_us, self.p90_us, self.p99_us, self.p999_us, self.max_us, self.mean_us
        )
    }
}

/// CPU time (user + system) this process has used so far, every thread
/// included: the client's own cost, to tell whether it limited a run.
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Nanoseconds since the UNIX epoch, the clock broadcast messages carry.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorders_flush_into_the_shared_histogram() {
        let l = Latencies::new();
        {
            let mut a = l.recorder();
            let mut b = l.recorder();
            for i in 1..=1000u64 {
                a.record_ns(i * 1000);
            }
            b.record(Duration::from_millis(5));
        }
        let s = l.summary();
        assert!((s.p50_us - 500.0).abs() < 2.5, "{s:?}");
        assert!((s.max_us - 5000.0).abs() < 25.0, "{s:?}");
    }

    #[test]
    fn summary_prints_the_report_fields() {
        let s = Summary {
            p50_us: 1.0,
            p90_us: 2.34,
            p99_us: 3.0,
            p999_us: 4.0,
            max_us: 5.0,
            mean_us: 1.5,
        };
        assert_eq!(
            s.to_string(),
            "p50_us=1.0 p90_us=2.3 p99_us=3.0 p999_us=4.0 max_us=5.0 mean_us=1.5"
        );
    }
}
