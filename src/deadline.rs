//! Time limits enforced by one sweeper per core instead of one reactor timer per wait.
//!
//! glommio's `timeout` polls its timer on every poll of the guarded future, and each such poll
//! registers the timer with the reactor again; with queries pipelined through `join_all`,
//! stale entries piled up and `Reactor::process_timers` took 68% of the server's CPU on
//! `/updates?queries=20` (`perf record`, one connection per core). Even one timer per operation
//! left it at 30%: the reactor's timer processing grows with the thousands of live timers that
//! many pipelined queries need. So a wait here only writes its deadline and waker into a
//! per-core table, and one task sweeps the table while it is not empty: when the earliest
//! deadline comes due, but at most every [`SWEEP`], so a limit is enforced to within that
//! interval. Between sweeps it sleeps until the earliest deadline, so a table of far
//! deadlines (idle WebSockets' 30 s keepalives) is scanned only as often as its deadlines
//! actually fall due, not a hundred times a second.
//!
//! [`Alarm`] is the re-armable primitive (a WebSocket's keepalive moves its deadline on every
//! frame; an HTTP connection's read or write sets one only when it has to wait); [`within`] is
//! a one-shot limit on a future built from it. It is the core's one deadline mechanism: the
//! server's connections, WebSocket sessions and the data layer all use it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// How often the sweeper looks for deadlines that have passed.
const SWEEP: Duration = Duration::from_millis(10);

/// The time limit passed before the operation finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Elapsed;

struct Entry {
    deadline: Instant,
    waker: Waker,
    expired: bool,
}

#[derive(Default)]
struct Deadlines {
    /// The executor whose waits these are: a later executor on the same thread (tests run
    /// several) starts afresh instead of inheriting entries and a sweeper that died with
    /// the old one.
    executor: usize,
    entries: Slab<Entry>,
    /// Whether a sweeper task is alive; it clears this when it ends or is dropped.
    sweeping: bool,
    /// When the sleeping sweeper will look next; `None` while it is awake.
    next_sweep: Option<Instant>,
    sweeper: Option<Waker>,
}

impl Deadlines {
    /// The table of the running executor, emptied first if it belonged to an earlier one.
    fn of_current_executor(&mut self) -> &mut Deadlines {
        let executor = glommio::executor().id();
        if self.executor != executor {
            *self = Deadlines {
                executor,
                ..Deadlines::default()
            };
        }
        self
    }

    /// Wakes the sweeper early when `deadline` comes before its next sweep.
    fn nudge(&mut self, deadline: Instant) {
        if self.next_sweep.is_some_and(|next| deadline < next) {
            self.next_sweep = None;
            if let Some(sweeper) = self.sweeper.take() {
                sweeper.wake();
            }
        }
    }
}

thread_local! {
    // Per executor thread, so per core: nothing here is shared between cores.
    static DEADLINES: RefCell<Deadlines> = RefCell::new(Deadlines::default());
    /// Set while work whose time limit passed is being dropped ([`drop_expired`]).
    static EXPIRING: Cell<bool> = const { Cell::new(false) };
}

/// Drops `work` (a handler's future, say) because its time limit passed. While it is being
/// dropped, [`is_expiring`] is true, so that what it was awaiting can tell abandonment by a
/// deadline (cancel the work elsewhere: a PostgreSQL query on its server) from the ordinary
/// end of a future nobody needs any more (a client that went away), which stays cheap.
pub(crate) fn drop_expired<T>(work: T) {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            EXPIRING.with(|e| e.set(self.0));
        }
    }
    let _reset = Reset(EXPIRING.with(|e| e.replace(true)));
    drop(work);
}

/// Whether the code running now is dropping work whose time limit passed
/// ([`drop_expired`]).
#[cfg_attr(
    not(feature = "postgres"),
    allow(dead_code, reason = "used by the postgres feature")
)]
pub(crate) fn is_expiring() -> bool {
    EXPIRING.with(Cell::get)
}

/// A deadline in the core's table that wakes its task once it has passed. It may be moved at
/// any time; dropping it removes the entry.
#[derive(Debug, Default)]
pub(crate) struct Alarm {
    /// The entry's place in the table, and the executor the table belonged to then.
    key: Option<(usize, usize)>,
}

impl Alarm {
    /// Ready once `deadline` has passed; otherwise the task in `cx` is woken when it does (to
    /// within [`SWEEP`]).
    pub(crate) fn poll_at(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let mut start_sweeper = false;
        let poll = DEADLINES.with(|d| {
            let mut d = d.borrow_mut();
            if let Some((executor, key)) = self.key {
                debug_assert_eq!(executor, d.executor, "an alarm moved between executors");
                let Some(entry) = d.entries.get_mut(key) else {
                    return Poll::Ready(()); // Unreachable: the entry lives as long as we do.
                };
                let moved = entry.deadline != deadline;
                if moved {
                    entry.deadline = deadline;
                    entry.expired = deadline <= Instant::now();
                }
                if entry.expired {
                    return Poll::Ready(());
                }
                if !entry.waker.will_wake(cx.waker()) {
                    entry.waker = cx.waker().clone();
                }
                if moved {
                    d.nudge(deadline);
                }
                return Poll::Pending;
            }
            if deadline <= Instant::now() {
                return Poll::Ready(());
            }
            let d = d.of_current_executor();
            let key = d.entries.insert(Entry {
                deadline,
                waker: cx.waker().clone(),
                expired: false,
            });
            self.key = Some((d.executor, key));
            if d.sweeping {
                d.nudge(deadline);
            } else {
                d.sweeping = true;
                start_sweeper = true;
            }
            Poll::Pending
        });
        if start_sweeper {
            // glommio may run a spawned task at once: the table is no longer borrowed.
            spawn_sweeper();
        }
        poll
    }

    /// Removes the entry: nothing is woken until the alarm is set again.
    pub(crate) fn clear(&mut self) {
        if let Some((executor, key)) = self.key.take() {
            // `try_with`: an alarm may be dropped while the thread's locals are torn down.
            let _ = DEADLINES.try_with(|d| {
                let mut d = d.borrow_mut();
                if d.executor == executor {
                    d.entries.try_remove(key);
                }
            });
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Runs `operation`, giving up once `limit` has passed (to within [`SWEEP`]).
///
/// A struct rather than an `async fn`: an `async fn` keeps its argument and the future it
/// awaits in separate slots of its state, so every guarded operation (a whole PostgreSQL query,
/// over a kilobyte) was stored, and copied, twice.
pub(crate) fn within<F: Future>(limit: Duration, operation: F) -> Within<F> {
    Within {
        operation,
        deadline: Instant::now() + limit,
        alarm: Alarm::default(),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`within`].
    pub(crate) struct Within<F> {
        #[pin]
        operation: F,
        deadline: Instant,
        alarm: Alarm,
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(value) = this.operation.poll(cx) {
            return Poll::Ready(Ok(value));
        }
        this.alarm
            .poll_at(*this.deadline, cx)
            .map(|()| Err(Elapsed))
    }
}

/// Starts the sweeper; the caller must not hold the table borrowed.
fn spawn_sweeper() {
    let executor = glommio::executor().id();
    glommio::spawn_local(async move {
        let _alive = SweeperAlive(executor);
        sweep().await;
    })
    .detach();
}

/// Held by the sweeper task: when the task ends, or is dropped with its executor, the next
/// wait starts a new one.
struct SweeperAlive(usize);

impl Drop for SweeperAlive {
    fn drop(&mut self) {
        let _ = DEADLINES.try_with(|d| {
            if let Ok(mut d) = d.try_borrow_mut() {
                if d.executor != self.0 {
                    return; // The table already serves a later executor.
                }
                d.sweeping = false;
                d.next_sweep = None;
                d.sweeper = None;
            }
        });
    }
}

/// Wakes the waits past their deadline; ends when none is left to watch.
async fn sweep() {
    loop {
        let next = DEADLINES.with(|d| {
            let mut d = d.borrow_mut();
            let now = Instant::now();
            let mut earliest: Option<Instant> = None;
            for (_, entry) in d.entries.iter_mut() {
                if entry.expired {
                    continue;
                }
                if entry.deadline <= now {
                    entry.expired = true;
                    entry.waker.wake_by_ref();
                } else {
                    earliest = Some(earliest.map_or(entry.deadline, |e| e.min(entry.deadline)));
                }
            }
            if d.entries.is_empty() {
                d.sweeping = false;
                return None;
            }
            // Nothing pending (all expired, not yet dropped): look again after a while.
            let next = earliest.unwrap_or(now + SWEEP).max(now + SWEEP);
            d.next_sweep = Some(next);
            Some(next)
        });
        let Some(next) = next else {
            return;
        };
        let mut timer = glommio::timer::Timer::new(next.saturating_duration_since(Instant::now()));
        std::future::poll_fn(|cx| {
            if Pin::new(&mut timer).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            DEADLINES.with(|d| {
                let mut d = d.borrow_mut();
                if d.next_sweep.is_none() {
                    return Poll::Ready(()); // Nudged: a nearer deadline arrived.
                }
                match &d.sweeper {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => d.sweeper = Some(cx.waker().clone()),
                }
                Poll::Pending
            })
        })
        .await;
        DEADLINES.with(|d| d.borrow_mut().next_sweep = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_executor(test: impl Future<Output = ()> + 'static) {
        glommio::LocalExecutorBuilder::default()
            .make()
            .expect("executor")
            .run(test);
    }

    #[test]
    fn finishes_in_time_or_reports_elapsed() {
        on_executor(async {
            let quick = within(Duration::from_secs(1), async { 7 }).await;
            assert_eq!(quick, Ok(7));
            let started = Instant::now();
            let slow = within(
                Duration::from_millis(50),
                glommio::timer::sleep(Duration::from_secs(5)),
            )
            .await;
            assert_eq!(slow, Err(Elapsed));
            let waited = started.elapsed();
            assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(2));
            // Finished and dropped operations leave nothing behind.
            let pending = within(
                Duration::from_secs(5),
                futures_lite::future::pending::<()>(),
            );
            assert!(futures_lite::future::poll_once(Box::pin(pending))
                .await
                .is_none());
            assert_eq!(DEADLINES.with(|d| d.borrow().entries.len()), 0);
        });
    }

    #[test]
    fn a_later_executor_on_the_same_thread_still_gets_its_timeouts() {
        // The first executor ends with its sweeper asleep (a far deadline pending).
        on_executor(async {
            glommio::spawn_local(within(
                Duration::from_secs(60),
                futures_lite::future::pending::<()>(),
            ))
            .detach();
            glommio::yield_if_needed().await;
            glommio::timer::sleep(Duration::from_millis(20)).await;
        });
        on_executor(async {
            let started = Instant::now();
            let slow = within(
                Duration::from_millis(50),
                glommio::timer::sleep(Duration::from_secs(3)),
            )
            .await;
            assert_eq!(slow, Err(Elapsed), "the timeout never fired");
            assert!(started.elapsed() < Duration::from_secs(2));
        });
    }

    #[test]
    fn an_alarm_can_be_moved_and_cleared() {
        on_executor(async {
            let mut alarm = Alarm::default();
            let started = Instant::now();
            let far = started + Duration::from_secs(60);
            let near = started + Duration::from_millis(30);
            assert!(
                std::future::poll_fn(|cx| Poll::Ready(alarm.poll_at(far, cx)))
                    .await
                    .is_pending()
            );
            // Moving the deadline nearer takes effect on the next poll.
            std::future::poll_fn(|cx| alarm.poll_at(near, cx)).await;
            assert!(started.elapsed() >= Duration::from_millis(30));
            assert!(started.elapsed() < Duration::from_secs(2));
            alarm.clear();
            assert_eq!(DEADLINES.with(|d| d.borrow().entries.len()), 0);
        });
    }
}
