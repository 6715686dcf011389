//! [`PgPool`]: a fixed number of connection slots per core, handed out round-robin, each
//! reopened in the background with a growing back-off after it fails.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::config::PgConfig;
use super::conn::{Conn, PgConn};
use super::open::{open, Target};
use super::stats::{self, Counters, PgFigures};
use crate::db::stats::{bump, Held};
use crate::error::Error;

/// First wait before reconnecting after a failed attempt; doubled per failure up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What the pool, its connections and its background connect tasks share.
pub(super) struct Settings {
    pub(super) config: PgConfig,
    pub(super) targets: Vec<Target>,
    /// This core's TLS connector; `None` for `sslmode=disable`.
    #[cfg(feature = "tls")]
    pub(super) tls: Option<crate::tls::client::Connector>,
    /// What the metrics count, and the `pool` label they carry.
    pub(super) counters: Counters,
    label: Box<str>,
}

/// A per-core pool of shared, pipelined PostgreSQL connections.
///
/// `!Send` by design: build one per core and keep it in an `Rc`.
pub struct PgPool {
    settings: Rc<Settings>,
    slots: RefCell<Vec<Slot>>,
    next: Cell<usize>,
    this: Weak<PgPool>,
}

struct Slot {
    state: State,
    /// Wait after the last failed attempt; zero after a success.
    backoff: Duration,
}

enum State {
    Empty,
    Connecting(Rc<Pending>),
    Ready(Rc<Conn>),
    Failed { retry_at: Instant, error: Rc<str> },
}

enum Pick {
    Ready(Rc<Conn>),
    Wait(Rc<Pending>),
    Fail(Rc<str>),
}

impl PgPool {
    /// A pool that opens its connections on first use. Fails only on an unusable
    /// configuration, including TLS certificate files that cannot be read or used.
    pub fn new(mut config: PgConfig) -> Result<Rc<PgPool>, Error> {
        let targets = config.validate()?;
        config.postgres.ssl_mode(config.tls.mode.wire());
        let slots = (0..config.pool_size)
            .map(|_| Slot {
                state: State::Empty,
                backoff: Duration::ZERO,
            })
            .collect();
        let label = label(&config, &targets).into();
        let settings = Rc::new(Settings {
            #[cfg(feature = "tls")]
            tls: config.tls.connector()?,
            config,
            targets,
            counters: Counters::default(),
            label,
        });
        let pool = Rc::new_cyclic(|this| PgPool {
            settings,
            slots: RefCell::new(slots),
            next: Cell::new(0),
            this: this.clone(),
        });
        stats::register(&pool);
        Ok(pool)
    }

    /// A pool with every connection open, or the first error (503) if one cannot be opened,
    /// so a wrong `DATABASE_URL` shows at startup.
    pub async fn connect(config: PgConfig) -> Result<Rc<PgPool>, Error> {
        let pool = PgPool::new(config)?;
        let pending: Vec<Rc<Pending>> = (0..pool.size()).map(|i| pool.start_connect(i)).collect();
        for p in pending {
            p.wait().await.map_err(unavailable)?;
        }
        Ok(pool)
    }

    /// A connection handle, round-robin over the open connections. Opens a connection if none
    /// is open; fails with 503 when the database cannot be reached.
    pub async fn get(&self) -> Result<PgConn, Error> {
        let counters = &self.settings.counters;
        // A fresh connection that is already dead again is tried a few times, not forever.
        for _ in 0..3 {
            match self.pick() {
                Pick::Ready(conn) => return Ok(PgConn { conn }),
                Pick::Fail(error) => {
                    bump(&counters.get_failures);
                    return Err(unavailable(error));
                }
                Pick::Wait(pending) => {
                    let waiting = Held::new(&counters.waiters);
                    let outcome = pending.wait().await;
                    drop(waiting);
                    if let Err(error) = outcome {
                        bump(&counters.get_failures);
                        return Err(unavailable(error));
                    }
                }
            }
        }
        bump(&counters.get_failures);
        Err(Error::unavailable("postgres connections keep closing"))
    }

    /// Connections this pool keeps (the configured pool size).
    pub fn size(&self) -> usize {
        self.settings.config.pool_size
    }

    /// Connections open and usable right now.
    pub fn open_connections(&self) -> usize {
        self.slots
            .borrow()
            .iter()
            .filter(|s| matches!(&s.state, State::Ready(c) if c.is_usable()))
            .count()
    }

    /// The settings this pool was built with.
    pub fn config(&self) -> &PgConfig {
        &self.settings.config
    }

    /// What a metrics scrape reads: the counters, and the slots' states now.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "read by the metrics feature alone")
    )]
    pub(super) fn figures(&self) -> PgFigures {
        let mut figures = PgFigures::of(self.settings.label.to_string(), &self.settings.counters);
        figures.size = self.size() as u64;
        for slot in self.slots.borrow().iter() {
            match &slot.state {
                State::Ready(conn) if conn.is_usable() => {
                    if conn.in_flight.get() == 0 {
                        figures.idle += 1;
                    } else {
                        figures.in_use += 1;
                    }
                }
                State::Connecting(_) => figures.connecting += 1,
                State::Ready(_) | State::Empty | State::Failed { .. } => {}
            }
        }
        figures
    }

    /// Chooses a usable connection, starting connects for empty and dead slots passed on
    /// the way; otherwise something to wait for, or the last error while backing off.
    fn pick(&self) -> Pick {
        let n = self.size();
        let start = self.next.get() % n;
        // Read the clock only if a failed slot needs it, not on every `get`.
        let now = std::cell::OnceCell::new();
        let mut wait = None;
        let mut failure = None;
        let mut to_start = Vec::new();
        {
            let slots = self.slots.borrow();
            for i in 0..n {
                let index = (start + i) % n;
                match &slots[index].state {
                    State::Ready(conn) if conn.is_usable() => {
                        self.next.set(index + 1);
                        let conn = conn.clone();
                        drop(slots);
                        for index in to_start {
                            self.start_connect(index);
                        }
                        return Pick::Ready(conn);
                    }
                    State::Connecting(p) => {
                        wait.get_or_insert_with(|| p.clone());
                    }
                    State::Failed { retry_at, error }
                        if *now.get_or_init(Instant::now) < *retry_at =>
                    {
                        failure.get_or_insert_with(|| error.clone());
                    }
                    State::Ready(_) | State::Empty | State::Failed { .. } => to_start.push(index),
                }
            }
        }
        for index in to_start {
            let p = self.start_connect(index);
            wait.get_or_insert(p);
        }
        match (wait, failure) {
            (Some(p), _) => Pick::Wait(p),
            (None, Some(error)) => Pick::Fail(error),
            (None, None) => Pick::Fail("postgres pool has no connections".into()),
        }
    }

    /// Opens a connection for slot `index` in a background task, so a caller that gives up
    /// waiting does not abandon it half-open.
    fn start_connect(&self, index: usize) -> Rc<Pending> {
        let pending = Rc::new(Pending::default());
        if let Some(slot) = self.slots.borrow_mut().get_mut(index) {
            slot.state = State::Connecting(pending.clone());
        }
        let settings = self.settings.clone();
        let pool = self.this.clone();
        let task_pending = pending.clone();
        glommio::spawn_local(async move {
            bump(&settings.counters.connects);
            let result = open(&settings).await;
            if result.is_err() {
                bump(&settings.counters.connect_failures);
            }
            let outcome = result.as_ref().map(|_| ()).map_err(Rc::clone);
            if let Some(pool) = pool.upgrade() {
                pool.finish_connect(index, &task_pending, result);
            }
            task_pending.complete(outcome);
        })
        .detach();
        pending
    }

    fn finish_connect(&self, index: usize, pending: &Rc<Pending>, result: Result<Conn, Rc<str>>) {
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(index) else {
            return;
        };
        if !matches!(&slot.state, State::Connecting(p) if Rc::ptr_eq(p, pending)) {
            return;
        }
        match result {
            Ok(conn) => {
                slot.state = State::Ready(Rc::new(conn));
                slot.backoff = Duration::ZERO;
            }
            Err(error) => {
                slot.backoff = (slot.backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                slot.state = State::Failed {
                    retry_at: Instant::now() + slot.backoff,
                    error,
                };
            }
        }
    }
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgPool")
            .field("targets", &self.settings.targets)
            .field("size", &self.size())
            .field("open", &self.open_connections())
            .finish()
    }
}

/// The `pool` label: the addresses dialled and the database, never the user or password.
fn label(config: &PgConfig, targets: &[Target]) -> String {
    let mut label = targets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    label.push('/');
    // The server's default database is the user's name.
    let pg = &config.postgres;
    label.push_str(pg.get_dbname().or(pg.get_user()).unwrap_or_default());
    label
}

fn unavailable(error: Rc<str>) -> Error {
    Error::unavailable(error.to_string())
}

/// A connect task's result, awaited by every `get` that found the slot connecting.
#[derive(Default)]
struct Pending {
    outcome: RefCell<Option<Result<(), Rc<str>>>>,
    waiters: RefCell<Vec<Waker>>,
}

impl Pending {
    fn complete(&self, outcome: Result<(), Rc<str>>) {
        *self.outcome.borrow_mut() = Some(outcome);
        for waker in self.waiters.take() {
            waker.wake();
        }
    }

    fn wait(self: &Rc<Self>) -> impl Future<Output = Result<(), Rc<str>>> + 'static {
        let pending = self.clone();
        std::future::poll_fn(move |cx| {
            if let Some(outcome) = pending.outcome.borrow().as_ref() {
                return Poll::Ready(outcome.clone());
            }
            let mut waiters = pending.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}
