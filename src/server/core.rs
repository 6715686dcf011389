//! One core's server: its listener, its connections, its clock and its buffers.
//!
//! Everything here is `Rc`/`Cell`: a core never shares it with another. A per-core ticker
//! keeps a coarse clock and the cached `Date` line fresh and trims the buffer pools;
//! connections' time limits live in the core's one deadline table ([`crate::deadline`]),
//! where a wait that completes at once (the common case under load) costs no timer at all.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use glommio::sync::Gate;
use glommio::timer::Timer;
use slab::Slab;

use super::pool::BufferPool;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::http::date::DateLine;
use crate::http::HeadArena;
use crate::per_core::Traffic;
use crate::router::Router;

/// Read buffers start at this size and grow only for large heads.
pub(crate) const READ_BUFFER_SIZE: usize = 16 * 1024;
/// Output buffers start at this size.
pub(crate) const WRITE_BUFFER_SIZE: usize = 16 * 1024;
/// TLS record buffers hold one whole record: the largest TLS 1.2 allows (16 KiB of data
/// plus 2 KiB of expansion and the 5-byte header).
#[cfg(feature = "tls")]
pub(crate) const TLS_RECORD_BUFFER_SIZE: usize = 16384 + 2048 + 5;
/// Free buffers of each kind kept per core, in bytes (256 read buffers); each ticker second
/// the pools also give back what sat unused (see [`BufferPool`]).
const POOL_BYTES: usize = 4 << 20;
/// How long, once graceful shutdown begins, a keep-alive connection waiting for its next
/// request may still send one. A client under load sends within milliseconds and gets its
/// answer with `Connection: close` rather than a connection closed under its request; one
/// that sends nothing delays the shutdown by this much at most.
const SHUTDOWN_IDLE_GRACE: Duration = Duration::from_millis(250);
/// How often the pools give back what they did not need.
const POOL_TRIM_PERIOD: Duration = Duration::from_secs(2);

/// The state one core's connections share.
pub(crate) struct Core {
    pub(crate) config: Config,
    pub(crate) dispatcher: Dispatcher,
    date: RefCell<DateLine>,
    /// A coarse clock, advanced by the ticker; deadlines need no finer resolution.
    now: Cell<Instant>,
    slots: RefCell<Slab<Rc<ConnSlot>>>,
    /// Whether shutdown has begun: the same fact as `per_core::shutting_down`, kept here as
    /// a plain cell because the driver reads it on every response, where the per-core slot
    /// would cost a thread-local lookup and glommio's executor id.
    stopping: Cell<bool>,
    /// During graceful shutdown, when idle keep-alive connections close.
    idle_close_at: Cell<Option<Instant>>,
    read_buffers: BufferPool,
    write_buffers: BufferPool,
    #[cfg(feature = "tls")]
    tls_buffers: BufferPool,
    /// This core's own TLS configuration, replaced whole on reload; `None` serves plain HTTP.
    #[cfg(feature = "tls")]
    tls: RefCell<Option<std::sync::Arc<rustls::ServerConfig>>>,
    /// Where every connection on this core keeps the bytes of the heads it decodes: one
    /// chunk for all of them, so neither a request nor an idle connection allocates for it.
    pub(crate) heads: RefCell<HeadArena>,
    /// The accept loop, while it waits for a connection to close (at the connection limit,
    /// or out of descriptors).
    accept_waiter: Cell<Option<Waker>>,
    pub(crate) connections: Gate,
    /// Whether the last pool trim found buffers in use since the one before.
    was_busy: Cell<bool>,
    /// Connections and bytes, for a metrics scrape (`per_core::Traffic`).
    pub(crate) traffic: Rc<crate::per_core::Traffic>,
}

/// What shutdown needs to reach a waiting connection.
#[derive(Default)]
pub(crate) struct ConnSlot {
    waker: RefCell<Option<Waker>>,
}

impl ConnSlot {
    /// Records the waker of a connection that is about to wait.
    pub(crate) fn park(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow().as_ref() {
            w.wake_by_ref();
        }
    }
}

/// A connection's registration with its core, removed when dropped.
pub(crate) struct ConnRegistration {
    core: Rc<Core>,
    key: usize,
    pub(crate) slot: Rc<ConnSlot>,
}

impl Drop for ConnRegistration {
    fn drop(&mut self) {
        self.core.slots.borrow_mut().try_remove(self.key);
        let open = &self.core.traffic.open;
        open.set(open.get().saturating_sub(1));
        // An accept loop parked at the connection limit or out of descriptors may go on.
        if let Some(waker) = self.core.accept_waiter.take() {
            waker.wake();
        }
    }
}

impl Core {
    pub(crate) fn new(config: Config, router: Router) -> Core {
        let dispatcher = Dispatcher::new(router, config.access_log);
        let date = DateLine::new(&config.server_name, SystemTime::now());
        Core {
            config,
            dispatcher,
            date: RefCell::new(date),
            now: Cell::new(Instant::now()),
            slots: RefCell::new(Slab::new()),
            stopping: Cell::new(false),
            idle_close_at: Cell::new(None),
            read_buffers: BufferPool::new(POOL_BYTES, READ_BUFFER_SIZE),
            // Output buffers may grow to four times their usual size and still be kept.
            write_buffers: BufferPool::new(POOL_BYTES, WRITE_BUFFER_SIZE * 4),
            #[cfg(feature = "tls")]
            tls_buffers: BufferPool::new(POOL_BYTES, TLS_RECORD_BUFFER_SIZE),
            #[cfg(feature = "tls")]
            tls: RefCell::new(None),
            heads: RefCell::new(HeadArena::default()),
            accept_waiter: Cell::new(None),
            connections: Gate::new(),
            was_busy: Cell::new(false),
            traffic: crate::per_core::traffic(),
        }
    }

    /// The coarse current time.
    pub(crate) fn now(&self) -> Instant {
        self.now.get()
    }

    /// Whether graceful shutdown has begun on this core.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// During graceful shutdown, when connections waiting for their next request close.
    pub(crate) fn idle_close_at(&self) -> Option<Instant> {
        self.idle_close_at.get()
    }

    /// Calls `f` with the cached `server` and `date` header lines.
    pub(crate) fn with_date_line<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.date.borrow().as_bytes())
    }

    pub(crate) fn register(self: &Rc<Self>) -> ConnRegistration {
        let slot = Rc::new(ConnSlot::default());
        let key = self.slots.borrow_mut().insert(Rc::clone(&slot));
        Traffic::add(&self.traffic.open, 1);
        ConnRegistration {
            core: Rc::clone(self),
            key,
            slot,
        }
    }

    /// A zeroed read buffer, from the pool when one is free.
    pub(crate) fn take_read_buffer(&self) -> Vec<u8> {
        self.read_buffers
            .take()
            .unwrap_or_else(|| vec![0; READ_BUFFER_SIZE])
    }

    /// Returns a read buffer to the pool. Buffers that grew for a large head are freed.
    pub(crate) fn give_read_buffer(&self, buffer: Vec<u8>) {
        if buffer.len() == READ_BUFFER_SIZE {
            self.read_buffers.give(buffer);
        }
    }

    /// An empty output buffer. Pooled like read buffers, and for the same reason: the most
    /// recently used buffer is the one still in cache.
    pub(crate) fn take_write_buffer(&self) -> Vec<u8> {
        self.write_buffers
            .take()
            .unwrap_or_else(|| Vec::with_capacity(WRITE_BUFFER_SIZE))
    }

    /// Returns an output buffer to the pool; one much larger or smaller than usual is freed.
    pub(crate) fn give_write_buffer(&self, mut buffer: Vec<u8>) {
        let usual_size = (WRITE_BUFFER_SIZE..=WRITE_BUFFER_SIZE * 4).contains(&buffer.capacity());
        if usual_size {
            buffer.clear();
            self.write_buffers.give(buffer);
        }
    }

    /// A zeroed buffer for one TLS record, from the pool when one is free.
    #[cfg(feature = "tls")]
    pub(crate) fn take_tls_buffer(&self) -> Vec<u8> {
        self.tls_buffers
            .take()
            .unwrap_or_else(|| vec![0; TLS_RECORD_BUFFER_SIZE])
    }

    /// Returns a TLS record buffer to the pool.
    #[cfg(feature = "tls")]
    pub(crate) fn give_tls_buffer(&self, buffer: Vec<u8>) {
        self.tls_buffers.give(buffer);
    }

    /// The TLS configuration new connections get, if the server speaks TLS.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> Option<std::sync::Arc<rustls::ServerConfig>> {
        self.tls.borrow().clone()
    }

    /// Replaces the TLS configuration for connections accepted from now on.
    #[cfg(feature = "tls")]
    pub(crate) fn set_tls(&self, config: rustls::ServerConfig) {
        *self.tls.borrow_mut() = Some(std::sync::Arc::new(config));
    }

    /// Resolves once this core has fewer than `limit` connections. Only the accept loop
    /// adds connections, and it is the one waiting, so meanwhile the count can only fall.
    pub(crate) async fn below_connection_limit(&self, limit: usize) {
        std::future::poll_fn(|cx| {
            if self.slots.borrow().len() < limit {
                return Poll::Ready(());
            }
            self.accept_waiter.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
    }

    /// Resolves when one of this core's connections closes, giving back its descriptor.
    pub(crate) async fn connection_closed(&self) {
        let open = self.slots.borrow().len();
        self.below_connection_limit(open).await
    }

    /// Starts graceful shutdown: waiting connections are woken to notice it; idle ones close
    /// unless a request arrives within [`SHUTDOWN_IDLE_GRACE`].
    pub(crate) fn begin_shutdown(&self) {
        self.stopping.set(true);
        self.idle_close_at
            .set(Some(Instant::now() + SHUTDOWN_IDLE_GRACE));
        crate::per_core::begin_shutdown();
        for (_, slot) in self.slots.borrow().iter() {
            slot.wake();
        }
    }

    /// How often the ticker runs: at most a second (the `Date` resolution), and often enough
    /// that deadlines reckoned from the coarse clock are late by at most a quarter of the
    /// shortest configured timeout.
    fn tick_interval(&self) -> Duration {
        let l = &self.config.limits;
        let shortest = [
            l.header_read_timeout,
            l.body_read_timeout,
            l.keep_alive_timeout,
            l.write_timeout,
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1));
        (shortest / 4).clamp(Duration::from_millis(5), Duration::from_secs(1))
    }

    /// Gives back the buffers the last period did not need; when the core has just gone
    /// quiet (buffers were taken in the period before, none in this one), also gives the
    /// heap's free pages back to the kernel, so that a burst does not leave its high-water
    /// mark behind.
    fn trim_pools(&self) {
        let read = self.read_buffers.trim();
        let write = self.write_buffers.trim();
        #[cfg(feature = "tls")]
        let write = self.tls_buffers.trim() | write;
        let busy = read || write;
        if self.was_busy.replace(busy) && !busy {
            super::os::release_free_heap();
        }
    }

    /// Starts the probe of load shedding by waiting time
    /// ([`App::max_queue_delay`](crate::App::max_queue_delay)) when the application set
    /// the limit: a task in the handler queue, so that it measures how long an admitted
    /// handler waits for the core.
    pub(crate) fn spawn_queue_probe(self: &Rc<Self>) -> Option<glommio::task::JoinHandle<()>> {
        let shedding = self.dispatcher.shedding()?;
        shedding.max_queue_delay()?;
        let probe = Rc::clone(self).run_queue_probe();
        glommio::spawn_local_into(probe, shedding.handler_queue())
            .ok()
            .map(glommio::Task::detach)
    }

    /// The probe: sleeps a short while and notes how much later than asked it woke.
    async fn run_queue_probe(self: Rc<Self>) {
        const PROBE_PERIOD: Duration = Duration::from_millis(5);
        let Some(shedding) = self.dispatcher.shedding() else {
            return;
        };
        if shedding.max_queue_delay().is_none() {
            return;
        }
        loop {
            let asked = Instant::now();
            Timer::new(PROBE_PERIOD).await;
            shedding.note_queue_delay(asked.elapsed().saturating_sub(PROBE_PERIOD));
        }
    }

    /// Refreshes the clock and the `Date` line, and trims the pools.
    pub(crate) async fn run_ticker(self: Rc<Self>) {
        let interval = self.tick_interval();
        let mut last_second = 0;
        let mut next_trim = Instant::now() + POOL_TRIM_PERIOD;
        loop {
            Timer::new(interval).await;
            let now = Instant::now();
            self.now.set(now);
            let wall = SystemTime::now();
            let second = wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if second != last_second {
                last_second = second;
                self.date.borrow_mut().refresh(wall);
            }
            if now >= next_trim {
                next_trim = now + POOL_TRIM_PERIOD;
                self.trim_pools();
            }
        }
    }
}
