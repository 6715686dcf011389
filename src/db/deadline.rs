//! Time limits on database operations, enforced by one sweeper per core instead of one timer
//! per operation.
//!
//! glommio's `timeout` polls its timer on every poll of the guarded future, and each such poll
//! registers the timer with the reactor again; with queries pipelined through `join_all`,
//! stale entries piled up and `Reactor::process_timers` took 68% of the server's CPU on
//! `/updates?queries=20` (`perf record`, one connection per core). Even one timer per operation
//! left it at 30%: the reactor's timer processing grows with the thousands of live timers that
//! many pipelined queries need. So an operation here only writes its deadline and waker into a
//! per-core table, and one task sweeps the table every [`SWEEP`] while it is not empty. A limit
//! is enforced to within that interval.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// How often the sweeper looks for operations past their deadline.
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
    entries: Slab<Entry>,
    sweeping: bool,
}

thread_local! {
    // Per executor thread, so per core: nothing here is shared between cores.
    static DEADLINES: RefCell<Deadlines> = RefCell::new(Deadlines::default());
}

/// Removes an operation's entry when it finishes, fails or is dropped.
struct Registration(usize);

impl Drop for Registration {
    fn drop(&mut self) {
        DEADLINES.with(|d| {
            d.borrow_mut().entries.try_remove(self.0);
        });
    }
}

/// Runs `operation`, giving up once `limit` has passed (to within [`SWEEP`]).
pub(crate) async fn within<T>(
    limit: Duration,
    operation: impl Future<Output = T>,
) -> Result<T, Elapsed> {
    let deadline = Instant::now() + limit;
    let mut operation = pin!(operation);
    let mut registration: Option<Registration> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = operation.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        DEADLINES.with(|d| {
            let mut d = d.borrow_mut();
            match &registration {
                Some(Registration(key)) => {
                    let entry = &mut d.entries[*key];
                    if entry.expired {
                        return Poll::Ready(Err(Elapsed));
                    }
                    if !entry.waker.will_wake(cx.waker()) {
                        entry.waker = cx.waker().clone();
                    }
                }
                None => {
                    let key = d.entries.insert(Entry {
                        deadline,
                        waker: cx.waker().clone(),
                        expired: false,
                    });
                    registration = Some(Registration(key));
                    if !d.sweeping {
                        d.sweeping = true;
                        glommio::spawn_local(sweep()).detach();
                    }
                }
            }
            Poll::Pending
        })
    })
    .await
}

/// Wakes the operations past their deadline; ends when none is left to watch.
async fn sweep() {
    loop {
        glommio::timer::sleep(SWEEP).await;
        let idle = DEADLINES.with(|d| {
            let mut d = d.borrow_mut();
            let now = Instant::now();
            for (_, entry) in d.entries.iter_mut() {
                if !entry.expired && entry.deadline <= now {
                    entry.expired = true;
                    entry.waker.wake_by_ref();
                }
            }
            if d.entries.is_empty() {
                d.sweeping = false;
            }
            !d.sweeping
        });
        if idle {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finishes_in_time_or_reports_elapsed() {
        glommio::LocalExecutorBuilder::default()
            .make()
            .expect("executor")
            .run(async {
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
}
