//! What the pools and clients count for a metrics scrape, and where a scrape finds them.
//!
//! Each pool or client counts in plain cells of its own, bumped where things happen (an
//! add, no atomic, no lock), and registers a `Weak` to them on this core when it is built.
//! A scrape's job on the core walks the list; the query path never looks at it.
//!
//! The list is a plain thread-local, not a `per_core::ExecutorLocal`: a pool may be built
//! off an executor (before the server starts, in a test), where the executor's id cannot be
//! asked for. The entries are weak, so the pools of an executor that finished vanish with
//! its application, and a later executor on the thread does not see them.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

/// Why a query or command failed, as the metrics count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection was lost or could not be opened.
    Connection,
    /// No answer within the time limit (the pool's, or the handler's).
    Timeout,
    /// The server answered with an error.
    Server,
    /// Refused before or after the server: a wrong number of rows, a value that does not
    /// convert, an empty command.
    Client,
}

impl Failure {
    /// Every kind, in the order of [`Failures`]' cells.
    pub(crate) const ALL: [Failure; 4] = [
        Failure::Connection,
        Failure::Timeout,
        Failure::Server,
        Failure::Client,
    ];

    /// The `kind` label.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "read by the metrics feature alone")
    )]
    pub(crate) fn label(self) -> &'static str {
        match self {
            Failure::Connection => "connection",
            Failure::Timeout => "timeout",
            Failure::Server => "server",
            Failure::Client => "client",
        }
    }
}

/// Failures counted by kind.
#[derive(Debug, Default)]
pub(crate) struct Failures([Cell<u64>; Failure::ALL.len()]);

impl Failures {
    pub(crate) fn count(&self, failure: Failure) {
        bump(&self.0[failure as usize]);
    }

    /// The counts, in the order of [`Failure::ALL`].
    pub(crate) fn read(&self) -> [u64; Failure::ALL.len()] {
        self.0.each_ref().map(Cell::get)
    }
}

/// Adds one.
pub(crate) fn bump(counter: &Cell<u64>) {
    counter.set(counter.get().wrapping_add(1));
}

/// Takes one off a gauge.
pub(crate) fn drop_one(gauge: &Cell<u64>) {
    gauge.set(gauge.get().saturating_sub(1));
}

/// Counts one on a gauge while held: a wait that may be abandoned (its future dropped)
/// still takes itself off.
pub(crate) struct Held<'a>(&'a Cell<u64>);

impl<'a> Held<'a> {
    pub(crate) fn new(gauge: &'a Cell<u64>) -> Held<'a> {
        bump(gauge);
        Held(gauge)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop_one(self.0);
    }
}

/// The things of one type built on this core, held weakly (for a `thread_local!`).
pub(crate) struct Registry<T> {
    entries: RefCell<Vec<Weak<T>>>,
}

impl<T> Registry<T> {
    pub(crate) const fn new() -> Registry<T> {
        Registry {
            entries: RefCell::new(Vec::new()),
        }
    }

    /// Adds `entry`, forgetting those dropped since, so an application that builds pools
    /// over and over does not grow the list.
    pub(crate) fn add(&self, entry: &Rc<T>) {
        let mut entries = self.entries.borrow_mut();
        entries.retain(|e| e.strong_count() > 0);
        entries.push(Rc::downgrade(entry));
    }

    /// The entries still alive, oldest first.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "read by the metrics feature alone")
    )]
    pub(crate) fn live(&self) -> Vec<Rc<T>> {
        self.entries
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_forgets_dropped_entries() {
        let registry = Registry::new();
        let kept = Rc::new(1);
        registry.add(&kept);
        registry.add(&Rc::new(2));
        registry.add(&Rc::new(3));
        assert_eq!(registry.live(), vec![Rc::new(1)]);
        assert_eq!(
            registry.entries.borrow().len(),
            2,
            "pruned when the third came"
        );
    }

    #[test]
    fn a_held_gauge_takes_itself_off_when_dropped() {
        let gauge = Cell::new(0);
        let a = Held::new(&gauge);
        let b = Held::new(&gauge);
        assert_eq!(gauge.get(), 2);
        drop((a, b));
        assert_eq!(gauge.get(), 0);
    }
}
