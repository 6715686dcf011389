//! What a core owns beyond its connections, in one list, and the per-core shutdown signal.
//!
//! Each executor runs on its own thread, so per-core state is thread-local. Every slot is an
//! [`ExecutorLocal`]: it belongs to the executor that filled it (by glommio's executor id),
//! and a later executor on the same thread (the test helpers run several, one after
//! another) starts afresh instead of inheriting state whose tasks died with the old one. The slots, each declared beside the
//! code that uses it:
//!
//! | slot | module | what it holds |
//! |---|---|---|
//! | `LOCAL` | [`cores`](crate::cores) | the cross-core mesh's senders and the server's id |
//! | `HUB` | [`hub`](crate::hub) | this core's topic subscriptions |
//! | `READS_IN_FLIGHT` | `files::disk` | the budget of file reads under way |
//! | `SESSIONS` | `ws::session` | the open WebSockets, to close them with 1001 at shutdown |
//! | `CURRENT` | [`metrics`](crate::metrics) | the application's latency recorder |
//! | `DEADLINES` | `deadline` | the time limits of waits under way, and their sweeper |
//! | `CURRENT` | `net::readiness` | the epoll set and the wakers of waiting sockets |
//! | `SHUTDOWN` | here | the drain and shutdown signals below |
//! | `TRAFFIC` | here | the connection and byte counters the server keeps ([`Traffic`]) |
//! | `POOLS`, `CLIENTS` | `db::postgres::stats`, `db::redis::stats` | weak references to the PostgreSQL pools and Redis clients built on this core, for a metrics scrape |
//!
//! (`DEADLINES` and the readiness set guard themselves the same way, by executor id. The
//! pool lists are plain thread-locals of weak references, since a pool may be built off an
//! executor: `db::stats` says why that is enough.)
//!
//! Shutdown reaches the parts of a core that need to act on it through [`on_shutdown`]:
//! the server calls [`begin_shutdown`] without knowing who listens (WebSocket sessions close
//! with 1001, for one). Before it, a stop with a drain delay calls [`begin_draining`]: the
//! core still accepts and serves, but says it is not ready ([`draining`], read by
//! `/readyz`), so that a load balancer stops sending before the listener closes.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A per-core slot; see the [module docs](self).
pub(crate) struct ExecutorLocal<T> {
    /// The value, and the id of the executor that made it.
    value: RefCell<Option<(usize, Rc<T>)>>,
}

impl<T> ExecutorLocal<T> {
    /// An empty slot, for a `thread_local!`.
    pub(crate) const fn new() -> ExecutorLocal<T> {
        ExecutorLocal {
            value: RefCell::new(None),
        }
    }

    /// The running executor's value, made by `init` on its first use. Only on an executor.
    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> Rc<T> {
        if let Some(value) = self.get() {
            return value;
        }
        let value = Rc::new(init());
        self.set(Rc::clone(&value));
        value
    }

    /// The running executor's value, if it has made one. An empty slot answers without
    /// asking glommio, so a slot never filled on this thread may be read off an executor
    /// (`cores::count` is 1 there); a filled one is read on an executor only.
    pub(crate) fn get(&self) -> Option<Rc<T>> {
        let value = self.value.borrow();
        let (owner, value) = value.as_ref()?;
        (*owner == glommio::executor().id()).then(|| Rc::clone(value))
    }

    /// Replaces the running executor's value. Only on an executor.
    pub(crate) fn set(&self, value: Rc<T>) {
        *self.value.borrow_mut() = Some((glommio::executor().id(), value));
    }
}

/// What this core's server has seen: plain cells the server bumps as it accepts, reads and
/// writes, read by a metrics scrape on the same core. The server holds the `Rc` (its `Core`
/// takes it once), so counting is an add to a cell already at hand, not a lookup, and costs
/// the same whether anyone scrapes or not.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    /// Connections accepted.
    pub(crate) accepted: Cell<u64>,
    /// Accepts that failed for want of descriptors or memory (the connection waits in the
    /// backlog; see `server::listen`).
    pub(crate) accept_failures: Cell<u64>,
    /// Connections open now, upgraded ones included.
    pub(crate) open: Cell<u64>,
    /// Bytes read from connections by the HTTP/1.1 driver (after TLS).
    pub(crate) bytes_in: Cell<u64>,
    /// Bytes written to connections by the HTTP/1.1 driver (before TLS).
    pub(crate) bytes_out: Cell<u64>,
}

impl Traffic {
    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &Cell<u64>, n: u64) {
        counter.set(counter.get().wrapping_add(n));
    }
}

thread_local! {
    static TRAFFIC: ExecutorLocal<Traffic> = const { ExecutorLocal::new() };
}

/// This core's traffic counters. Only on an executor.
pub(crate) fn traffic() -> Rc<Traffic> {
    TRAFFIC.with(|t| t.get_or_init(Traffic::default))
}

/// This core's traffic counters if the server has made them; never makes them.
#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "read by the metrics feature alone")
)]
pub(crate) fn traffic_if_counted() -> Option<Rc<Traffic>> {
    TRAFFIC.with(ExecutorLocal::get)
}

/// What runs when this core begins to shut down.
#[derive(Default)]
struct Shutdown {
    /// A stop was asked for: not ready any more, though still serving.
    draining: Cell<bool>,
    begun: Cell<bool>,
    hooks: RefCell<Vec<Box<dyn Fn()>>>,
}

thread_local! {
    static SHUTDOWN: ExecutorLocal<Shutdown> = const { ExecutorLocal::new() };
}

/// Runs `hook` when this core begins to shut down (at once if it has begun).
pub(crate) fn on_shutdown(hook: impl Fn() + 'static) {
    let shutdown = SHUTDOWN.with(|s| s.get_or_init(Shutdown::default));
    if shutdown.begun.get() {
        hook();
    }
    shutdown.hooks.borrow_mut().push(Box::new(hook));
}

/// Whether this core has begun to shut down.
pub(crate) fn shutting_down() -> bool {
    SHUTDOWN.with(|s| s.get().is_some_and(|s| s.begun.get()))
}

/// Marks this core as draining: a stop was asked for, and the core serves on for the drain
/// delay while `/readyz` answers 503.
pub(crate) fn begin_draining() {
    SHUTDOWN.with(|s| s.get_or_init(Shutdown::default).draining.set(true));
}

/// Whether this core has been asked to stop (draining, or shutting down already).
pub(crate) fn draining() -> bool {
    SHUTDOWN.with(|s| s.get().is_some_and(|s| s.draining.get() || s.begun.get()))
}

/// Begins this core's shutdown: every hook runs once.
pub(crate) fn begin_shutdown() {
    let shutdown = SHUTDOWN.with(|s| s.get_or_init(Shutdown::default));
    if shutdown.begun.replace(true) {
        return;
    }
    // Taken out first: a hook may register another.
    let hooks = std::mem::take(&mut *shutdown.hooks.borrow_mut());
    for hook in &hooks {
        hook();
    }
    shutdown.hooks.borrow_mut().extend(hooks);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_executor<R: 'static>(test: impl std::future::Future<Output = R> + 'static) -> R {
        glommio::LocalExecutorBuilder::default()
            .make()
            .expect("executor")
            .run(test)
    }

    #[test]
    fn a_later_executor_starts_with_a_fresh_slot() {
        thread_local! {
            static SLOT: ExecutorLocal<Cell<u32>> = const { ExecutorLocal::new() };
        }
        on_executor(async {
            SLOT.with(|s| s.get_or_init(Default::default)).set(7);
            assert_eq!(SLOT.with(|s| s.get()).map(|v| v.get()), Some(7));
        });
        on_executor(async {
            assert!(
                SLOT.with(|s| s.get()).is_none(),
                "the old executor's value leaked"
            );
        });
    }

    #[test]
    fn shutdown_hooks_run_once_and_late_ones_at_once() {
        on_executor(async {
            let runs = Rc::new(Cell::new(0));
            let counted = Rc::clone(&runs);
            on_shutdown(move || counted.set(counted.get() + 1));
            assert!(!shutting_down());
            begin_shutdown();
            begin_shutdown();
            assert_eq!(runs.get(), 1);
            assert!(shutting_down());
            let late = Rc::clone(&runs);
            on_shutdown(move || late.set(late.get() + 10));
            assert_eq!(runs.get(), 11);
        });
    }
}
