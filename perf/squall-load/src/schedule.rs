//! When each request is meant to leave, and how long it took.
//!
//! Open loop: the aggregate rate R is split evenly over all N connections, whatever executor
//! they live on, and the connections are interleaved so the aggregate arrivals are evenly
//! spaced: connection *j*'s *k*-th request is due at `start + (k·N + j) / R`. Each connection
//! thus sends every N/R seconds, and an executor carries R × (its connections / N).
//!
//! Coordinated-omission correction: a request's latency runs from its *intended* send time,
//! which is the scheduled time in open loop (so a server stall that delays later sends counts
//! against every request it delayed) and the actual send time in closed loop (where there is
//! no schedule to fall behind).

use std::time::{Duration, Instant};

/// The pacing of one connection.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Send as soon as the pipeline has room.
    Closed,
    /// Send request *k* at `start + (k·connections + index) / rate`.
    Open {
        /// Time zero of the schedule.
        start: Instant,
        /// Seconds between two requests of the whole run (1 / aggregate rate).
        gap: f64,
        /// Connections sharing the rate.
        connections: u64,
        /// This connection's place among them.
        index: u64,
    },
}

impl Pace {
    /// The pace of connection `index` of `connections` for an aggregate `rate` (None: closed).
    pub fn new(rate: Option<f64>, start: Instant, connections: usize, index: usize) -> Pace {
        match rate {
            None => Pace::Closed,
            Some(rate) => Pace::Open {
                start,
                gap: 1.0 / rate,
                connections: connections as u64,
                index: index as u64,
            },
        }
    }

    /// When request `k` (counted from zero on this connection) is due; `None` in closed loop.
    pub fn due(&self, k: u64) -> Option<Instant> {
        match *self {
            Pace::Closed => None,
            Pace::Open {
                start,
                gap,
                connections,
                index,
            } => {
                let slot = k as f64 * connections as f64 + index as f64;
                Some(start + Duration::from_secs_f64(slot * gap))
            }
        }
    }

    /// The time request `k` counts its latency from if it is sent at `now`.
    pub fn intended(&self, k: u64, now: Instant) -> Instant {
        self.due(k).unwrap_or(now)
    }
}

/// A request's latency in nanoseconds, from its intended send time to `done`.
pub fn latency_ns(intended: Instant, done: Instant) -> u64 {
    u64::try_from(done.saturating_duration_since(intended).as_nanos()).unwrap_or(u64::MAX)
}

/// The measurement window: requests intended in `[start, end)` are counted.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// End of the warm-up.
    pub start: Instant,
    /// End of the measurement; `None` with a request count.
    pub end: Option<Instant>,
}

impl Window {
    /// Whether a request intended at `at` belongs to the measurement.
    pub fn contains(&self, at: Instant) -> bool {
        at >= self.start && self.end.is_none_or(|end| at < end)
    }

    /// Whether `at` is past the end.
    pub fn is_over(&self, at: Instant) -> bool {
        self.end.is_some_and(|end| at >= end)
    }
}

/// The share of `total` requests that connection `index` of `connections` sends: the
/// remainder goes one each to the first connections.
pub fn quota(total: u64, connections: usize, index: usize) -> u64 {
    let connections = connections as u64;
    total / connections + u64::from((index as u64) < total % connections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(start: Instant, at: Instant) -> f64 {
        at.duration_since(start).as_secs_f64()
    }

    #[test]
    fn open_loop_interleaves_connections_evenly() {
        let start = Instant::now();
        // 1,000 req/s over 4 connections: each sends every 4 ms, offset by 1 ms.
        let paces: Vec<_> = (0..4)
            .map(|j| Pace::new(Some(1000.0), start, 4, j))
            .collect();
        let mut all: Vec<f64> = paces
            .iter()
            .flat_map(|p| (0..250).map(move |k| secs(start, p.due(k).expect("open"))))
            .collect();
        all.sort_by(f64::total_cmp);
        for (m, at) in all.iter().enumerate() {
            assert!((at - m as f64 / 1000.0).abs() < 1e-6, "slot {m} at {at}");
        }
        assert!((secs(start, paces[1].due(3).expect("open")) - 0.013).abs() < 1e-9);
    }

    #[test]
    fn coordinated_omission_counts_from_the_schedule() {
        let start = Instant::now();
        let pace = Pace::new(Some(100.0), start, 1, 0);
        // Request 5 was due at 50 ms; the server stalled and it left at 400 ms and came back
        // at 401 ms: 351 ms of latency, not 1 ms.
        let sent = start + Duration::from_millis(400);
        let done = start + Duration::from_millis(401);
        let intended = pace.intended(5, sent);
        assert_eq!(latency_ns(intended, done), 351_000_000);
        // Closed loop measures from the send.
        assert_eq!(latency_ns(Pace::Closed.intended(5, sent), done), 1_000_000);
    }

    #[test]
    fn latency_never_goes_negative() {
        let now = Instant::now();
        assert_eq!(latency_ns(now + Duration::from_secs(1), now), 0);
    }

    #[test]
    fn window_membership() {
        let start = Instant::now() + Duration::from_secs(2);
        let window = Window {
            start,
            end: Some(start + Duration::from_secs(10)),
        };
        assert!(!window.contains(start - Duration::from_nanos(1)));
        assert!(window.contains(start));
        assert!(window.contains(start + Duration::from_secs(9)));
        assert!(!window.contains(start + Duration::from_secs(10)));
        assert!(window.is_over(start + Duration::from_secs(10)));
        let open_ended = Window { start, end: None };
        assert!(open_ended.contains(start + Duration::from_secs(1_000_000)));
        assert!(!open_ended.is_over(start + Duration::from_secs(1_000_000)));
    }

    #[test]
    fn quotas_add_up() {
        let shares: Vec<u64> = (0..7).map(|j| quota(100, 7, j)).collect();
        assert_eq!(shares.iter().sum::<u64>(), 100);
        assert_eq!(shares, [15, 15, 14, 14, 14, 14, 14]);
        assert_eq!(quota(3, 5, 4), 0);
    }
}
