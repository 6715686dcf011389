//! What a [`Client`](super::Client) or [`Subscriber`](super::Subscriber) counts for
//! metrics, and this core's for a scrape to read (`crate::db::stats` says how they are
//! found).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::config::RedisConfig;
use super::conn::Conn;
use crate::db::stats::{Failure, Failures, Registry};

/// One client's or subscriber's counters: each counts for its own connection.
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// The `client` label: `host:port/db`.
    label: Box<str>,
    /// A client's connection for commands, once it has opened one.
    pub(super) conn: RefCell<Weak<Conn>>,
    /// Whether a subscriber's connection is open, and what it is subscribed to.
    pub(super) subscribed: Cell<bool>,
    pub(super) subscriptions: Cell<u64>,
    /// Commands waiting for the connection to open (a gauge).
    pub(super) waiters: Cell<u64>,
    /// Connections begun, failed, and opened.
    pub(super) connects: Cell<u64>,
    pub(super) connect_failures: Cell<u64>,
    pub(super) opened: Cell<u64>,
    /// Commands, pipelines and subscription changes sent, and those that failed.
    pub(super) commands: Cell<u64>,
    pub(super) failures: Failures,
}

impl Stats {
    /// Counters for a client or subscriber of `config`, visible to scrapes on this core.
    pub(super) fn register(config: &RedisConfig) -> Rc<Stats> {
        let host = &config.host;
        let label = if host.contains(':') {
            format!("[{host}]:{}/{}", config.port, config.db)
        } else {
            format!("{host}:{}/{}", config.port, config.db)
        };
        let stats = Rc::new(Stats {
            label: label.into(),
            ..Stats::default()
        });
        CLIENTS.with(|clients| clients.add(&stats));
        stats
    }

    pub(super) fn failed(&self, failure: Failure) {
        self.failures.count(failure);
    }

    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "read by the metrics feature alone")
    )]
    fn figures(&self) -> RedisFigures {
        let conn = self.conn.borrow().upgrade().filter(|c| !c.broken.get());
        RedisFigures {
            client: self.label.to_string(),
            command_connections: u64::from(conn.is_some()),
            subscriber_connections: u64::from(self.subscribed.get()),
            subscriptions: self.subscriptions.get(),
            in_flight: conn.map_or(0, |c| c.awaiting() as u64),
            waiters: self.waiters.get(),
            connects: self.connects.get(),
            connect_failures: self.connect_failures.get(),
            // Every open after the first replaced a connection that was lost.
            reconnects: self.opened.get().saturating_sub(1),
            commands: self.commands.get(),
            failures: self.failures.read(),
        }
    }
}

/// One client's or subscriber's figures on one core, or several added up when they share
/// a label.
#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "read by the metrics feature alone")
)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RedisFigures {
    /// The server and database, `host:port/db` (no user or password).
    pub(crate) client: String,
    /// Open connections: clients' for commands, subscribers'.
    pub(crate) command_connections: u64,
    pub(crate) subscriber_connections: u64,
    /// Channels and patterns the subscribers hold.
    pub(crate) subscriptions: u64,
    /// Commands (or pipelines) sent and not yet answered.
    pub(crate) in_flight: u64,
    pub(crate) waiters: u64,
    pub(crate) connects: u64,
    pub(crate) connect_failures: u64,
    pub(crate) reconnects: u64,
    pub(crate) commands: u64,
    /// Failed commands, in the order of [`Failure::ALL`].
    pub(crate) failures: [u64; Failure::ALL.len()],
}

#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "read by the metrics feature alone")
)]
impl RedisFigures {
    fn add(&mut self, other: &RedisFigures) {
        let sums = [
            (&mut self.command_connections, other.command_connections),
            (
                &mut self.subscriber_connections,
                other.subscriber_connections,
            ),
            (&mut self.subscriptions, other.subscriptions),
            (&mut self.in_flight, other.in_flight),
            (&mut self.waiters, other.waiters),
            (&mut self.connects, other.connects),
            (&mut self.connect_failures, other.connect_failures),
            (&mut self.reconnects, other.reconnects),
            (&mut self.commands, other.commands),
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
    static CLIENTS: Registry<Stats> = const { Registry::new() };
}

/// The figures of this core's clients and subscribers, one entry per label (those of the
/// same server and database added up), ordered by label.
#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "read by the metrics feature alone")
)]
pub(crate) fn figures() -> Vec<RedisFigures> {
    let mut merged: Vec<RedisFigures> = Vec::new();
    for stats in CLIENTS.with(Registry::live) {
        let figures = stats.figures();
        match merged.iter_mut().find(|m| m.client == figures.client) {
            Some(into) => into.add(&figures),
            None => merged.push(figures),
        }
    }
    merged.sort_by(|a, b| a.client.cmp(&b.client));
    merged
}
