//! What a [`PgPool`] counts for metrics, and this core's pools for a scrape to read
//! (`crate::db::stats` says how they are found).

use std::cell::Cell;
use std::rc::Rc;

use super::pool::PgPool;
use crate::db::stats::{Failure, Failures, Registry};

/// A pool's counters, shared by the pool, its connections and its connect tasks.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Connections the pool began to open, and those that failed to open.
    pub(super) connects: Cell<u64>,
    pub(super) connect_failures: Cell<u64>,
    /// `PgPool::get` calls waiting for a connection to open (a gauge).
    pub(super) waiters: Cell<u64>,
    /// `PgPool::get` calls that failed: no connection could be opened.
    pub(super) get_failures: Cell<u64>,
    /// Operations started (query, execute, prepare, batch), and those under way (a gauge).
    pub(super) queries: Cell<u64>,
    pub(super) in_flight: Cell<u64>,
    pub(super) failures: Failures,
}

/// One pool's figures on one core, or several pools' added up when they share a label.
#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "read by the metrics feature alone")
)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PgFigures {
    /// The servers and database, `host:port/dbname` (no user or password).
    pub(crate) pool: String,
    /// Connections the pool keeps (its configured size).
    pub(crate) size: u64,
    /// Open connections with no operation under way, and with one or more.
    pub(crate) idle: u64,
    pub(crate) in_use: u64,
    /// Connections being opened.
    pub(crate) connecting: u64,
    pub(crate) waiters: u64,
    pub(crate) in_flight: u64,
    pub(crate) connects: u64,
    pub(crate) connect_failures: u64,
    pub(crate) get_failures: u64,
    pub(crate) queries: u64,
    /// Failed operations, in the order of [`Failure::ALL`].
    pub(crate) failures: [u64; Failure::ALL.len()],
}

impl PgFigures {
    /// What `counters` say, with the connection states left for the pool to fill in.
    pub(super) fn of(pool: String, counters: &Counters) -> PgFigures {
        PgFigures {
            pool,
            waiters: counters.waiters.get(),
            in_flight: counters.in_flight.get(),
            connects: counters.connects.get(),
            connect_failures: counters.connect_failures.get(),
            get_failures: counters.get_failures.get(),
            queries: counters.queries.get(),
            failures: counters.failures.read(),
            ..PgFigures::default()
        }
    }

    fn add(&mut self, other: &PgFigures) {
        let sums = [
            (&mut self.size, other.size),
            (&mut self.idle, other.idle),
            (&mut self.in_use, other.in_use),
            (&mut self.connecting, other.connecting),
            (&mut self.waiters, other.waiters),
            (&mut self.in_flight, other.in_flight),
            (&mut self.connects, other.connects),
            (&mut self.connect_failures, other.connect_failures),
            (&mut self.get_failures, other.get_failures),
            (&mut self.queries, other.queries),
        ];
        for (sum, n) in sums {
            *sum = sum.wrapping_add(n);
        }
        for (sum, n) in self.failures.iter_mut().zip(other.failures) {
            *sum = sum.wrapping_add(n);
        }
    }
}

thread_local! {
    static POOLS: Registry<PgPool> = const { Registry::new() };
}

/// Makes `pool` visible to scrapes on this core.
pub(super) fn register(pool: &Rc<PgPool>) {
    POOLS.with(|pools| pools.add(pool));
}

/// The figures of this core's pools, one entry per label (pools to the same database
/// added up), ordered by label.
#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "read by the metrics feature alone")
)]
pub(crate) fn figures() -> Vec<PgFigures> {
    let mut merged: Vec<PgFigures> = Vec::new();
    for pool in POOLS.with(Registry::live) {
        let figures = pool.figures();
        match merged.iter_mut().find(|m| m.pool == figures.pool) {
            Some(into) => into.add(&figures),
            None => merged.push(figures),
        }
    }
    merged.sort_by(|a, b| a.pool.cmp(&b.pool));
    merged
}
