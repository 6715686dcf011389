//! A time limit on one database operation that arms one timer, however often it is polled.
//!
//! glommio's `timeout` polls its timer on every poll of the guarded future, and each such poll
//! registers the timer with the reactor again; the old entries stay until they expire. Queries
//! pipelined with `join_all` are polled several times each, so thousands of stale entries piled
//! up and `Reactor::process_timers` took 68% of the server's CPU on `/updates?queries=20`
//! (`perf record`, one connection per core). Here the timer is polled once, to register the
//! task's waker; later polls compare the clock with the deadline.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use glommio::timer::Timer;

/// The time limit passed before the operation finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// Runs `operation`, giving up once `limit` has passed.
pub(crate) async fn within<T>(
    limit: Duration,
    operation: impl Future<Output = T>,
) -> Result<T, Elapsed> {
    let deadline = Instant::now() + limit;
    let mut operation = pin!(operation);
    let mut timer: Option<Timer> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = operation.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        let now = Instant::now();
        if now >= deadline {
            return Poll::Ready(Err(Elapsed));
        }
        if timer.is_none() {
            let mut armed = Timer::new(deadline - now);
            // Registers this task's waker once; the timer wakes it when the deadline comes.
            if pin!(&mut armed).poll(cx).is_ready() {
                return Poll::Ready(Err(Elapsed));
            }
            timer = Some(armed);
        }
        Poll::Pending
    })
    .await
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
            });
    }
}
