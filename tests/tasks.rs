//! Timers, blocking work and cross-core jobs, on real executors.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use squall::testing::run;
use squall::{cores, tasks, App, Request};
use support::{get, request, start_with};

const TICK: Duration = Duration::from_millis(40);
/// Long enough that a loaded machine running other tests beside this one stays inside the
/// half-tick tolerance the grid test allows.
const GRID_TICK: Duration = Duration::from_millis(100);

/// Waits until `runs` reaches `n` or 5 s pass, and returns it. Printing a panic (with a
/// backtrace, when RUST_BACKTRACE is set) can take longer than a tick, so the tests wait for
/// runs rather than for a fixed time.
async fn wait_for_runs(runs: &Cell<i32>, n: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs.get() < n && Instant::now() < deadline {
        glommio::timer::sleep(TICK).await;
    }
    runs.get()
}

#[test]
fn a_periodic_task_keeps_its_grid_never_overlaps_and_skips_missed_ticks() {
    let starts = run(async {
        let origin = Instant::now();
        let runs: Rc<RefCell<Vec<(Duration, Duration)>>> = Rc::default();
        let log = Rc::clone(&runs);
        let task = tasks::every(GRID_TICK, move || {
            let log = Rc::clone(&log);
            async move {
                let began = origin.elapsed();
                // The second run takes 2.5 ticks: the ticks it overlaps must be skipped.
                let slow = log.borrow().len() == 1;
                if slow {
                    glommio::timer::sleep(GRID_TICK * 5 / 2).await;
                }
                log.borrow_mut().push((began, origin.elapsed()));
            }
        });
        glommio::timer::sleep(GRID_TICK * 8 + GRID_TICK / 2).await;
        drop(task);
        let after_stop = runs.borrow().len();
        glommio::timer::sleep(GRID_TICK * 2).await;
        assert_eq!(
            runs.borrow().len(),
            after_stop,
            "dropping the handle stops it"
        );
        runs.take()
    })
    .expect("an executor");
    // Runs at 1, 2 (slow, ends at 4.5), then 5, 6, 7, 8 ticks: 3 and 4 were skipped.
    let ticks: Vec<f64> = starts
        .iter()
        .map(|(began, _)| began.as_secs_f64() / GRID_TICK.as_secs_f64())
        .collect();
    assert!((5..=6).contains(&ticks.len()), "runs at ticks {ticks:?}");
    for (at, expected) in ticks.iter().zip([1.0, 2.0, 5.0, 6.0, 7.0, 8.0]) {
        assert!(
            (*at - expected).abs() < 0.5,
            "a run started at tick {at:.2}, expected {expected} ({ticks:?})"
        );
    }
    for pair in starts.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlapped: {starts:?}");
    }
}

#[test]
fn a_panicking_run_does_not_end_the_schedule() {
    let runs = run(async {
        let runs = Rc::new(Cell::new(0));
        let counter = Rc::clone(&runs);
        let _task = tasks::every(TICK, move || {
            counter.set(counter.get() + 1);
            let first = counter.get() == 1;
            async move {
                assert!(!first, "the first run fails");
            }
        });
        wait_for_runs(&runs, 3).await
    })
    .expect("an executor");
    assert!(runs >= 3, "only {runs} runs");
}

#[test]
fn a_callback_that_panics_before_making_its_future_does_not_end_the_schedule() {
    let runs = run(async {
        let runs = Rc::new(Cell::new(0));
        let counter = Rc::clone(&runs);
        let _task = tasks::every(TICK, move || {
            counter.set(counter.get() + 1);
            assert!(
                counter.get() > 1,
                "the first call fails before any future exists"
            );
            async {}
        });
        wait_for_runs(&runs, 3).await
    })
    .expect("an executor");
    assert!(runs >= 3, "only {runs} runs");
}

#[test]
fn a_timer_fires_once_unless_cancelled() {
    let (fired, cancelled_fired) = run(async {
        let fired = Rc::new(Cell::new(0));
        let f = Rc::clone(&fired);
        tasks::after(TICK, move || async move { f.set(f.get() + 1) }).detach();
        let cancelled = Rc::new(Cell::new(false));
        let c = Rc::clone(&cancelled);
        let timer = tasks::after(TICK, move || async move { c.set(true) });
        timer.cancel();
        glommio::timer::sleep(TICK * 3).await;
        (fired.get(), cancelled.get())
    })
    .expect("an executor");
    assert_eq!(fired, 1);
    assert!(!cancelled_fired);
}

#[test]
fn blocking_work_runs_off_the_core_while_it_keeps_serving() {
    let (answer, ticks_meanwhile, panic) = run(async {
        let ticks = Rc::new(Cell::new(0));
        let t = Rc::clone(&ticks);
        let _ticker = tasks::every(Duration::from_millis(10), move || {
            t.set(t.get() + 1);
            async {}
        });
        let answer = tasks::run_blocking(|| {
            std::thread::sleep(Duration::from_millis(200));
            6 * 7
        })
        .await
        .expect("no panic");
        let panic = tasks::run_blocking(|| -> u8 { panic!("bad input") }).await;
        (answer, ticks.get(), panic)
    })
    .expect("an executor");
    assert_eq!(answer, 42);
    assert!(
        ticks_meanwhile >= 5,
        "the core stalled: {ticks_meanwhile} ticks"
    );
    let err = panic.expect_err("the panic comes back as an error");
    assert!(err.message().contains("bad input"), "{err}");
}

thread_local! {
    static PINGS: Cell<u32> = const { Cell::new(0) };
}

/// Asks every core for its count of pings and sums them.
async fn census() -> (usize, u32) {
    let (tx, rx) = std::sync::mpsc::channel();
    for core in 0..cores::count() {
        let tx = tx.clone();
        cores::run_on(core, move || async move {
            let _ = tx.send((cores::current(), PINGS.with(Cell::get)));
        })
        .await
        .expect("a core that exists");
    }
    drop(tx);
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while answers.len() < cores::count() && Instant::now() < deadline {
        match rx.try_recv() {
            Ok(answer) => answers.push(answer),
            Err(_) => glommio::timer::sleep(Duration::from_millis(1)).await,
        }
    }
    answers.sort_unstable();
    answers.dedup_by_key(|(core, _)| *core);
    (answers.len(), answers.iter().map(|(_, n)| n).sum())
}

#[test]
fn jobs_reach_one_core_or_every_core() {
    let config = support::config().workers(2);
    let server = start_with(config, || {
        App::new()
            .get("/ping-everywhere", |_req: Request| async {
                cores::run_everywhere(|| async { PINGS.with(|p| p.set(p.get() + 1)) })
                    .await
                    .map(|()| "sent")
            })
            .get("/census", |_req: Request| async {
                let (cores, pings) = census().await;
                format!("{cores} cores, {pings} pings")
            })
            .get("/to-core-9", |_req: Request| async {
                cores::run_on(9, || async {}).await.map(|()| "sent")
            })
    });
    let addr = server.local_addr();
    assert_eq!(request(addr, get("/census")).text(), "2 cores, 0 pings");
    for _ in 0..3 {
        assert_eq!(request(addr, get("/ping-everywhere")).text(), "sent");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(request(addr, get("/census")).text(), "2 cores, 6 pings");
    assert_eq!(request(addr, get("/to-core-9")).status, 500);
}

#[test]
fn outside_a_server_there_is_one_core() {
    let (count, current, ran) = run(async {
        let ran = Rc::new(Cell::new(false));
        cores::run_on(0, || async {})
            .await
            .expect("core 0 is this one");
        let missing = cores::run_on(1, || async {}).await;
        assert!(missing.is_err());
        ran.set(true);
        (cores::count(), cores::current(), ran.get())
    })
    .expect("an executor");
    assert_eq!((count, current, ran), (1, 0, true));
}
