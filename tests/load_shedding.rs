//! Load shedding (`App::max_in_flight`): past the per-core bound a request is answered 503
//! with `Retry-After` at once, without waiting behind the others; slots come back when
//! requests finish.

mod support;

use std::time::{Duration, Instant};

use squall::{App, Request};
use support::Client;

const SLOW: Duration = Duration::from_millis(400);

fn app() -> App {
    App::new()
        .max_in_flight(2)
        .get("/slow", |_req: Request| async {
            glommio::timer::sleep(SLOW).await;
            "slow"
        })
        .get("/fast", |_req: Request| async { "fast" })
}

fn send(client: &mut Client, path: &str) {
    client.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
}

#[test]
fn past_the_bound_requests_get_503_at_once_and_slots_come_back() {
    let server = support::start(app);
    let mut busy: Vec<Client> = (0..2)
        .map(|_| Client::connect(server.local_addr()))
        .collect();
    for client in &mut busy {
        send(client, "/slow");
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = Client::connect(server.local_addr());
    let asked = Instant::now();
    send(&mut extra, "/fast");
    let refused = extra.response();
    let waited = asked.elapsed();
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        waited < SLOW / 2,
        "the refusal waited {waited:?} behind the slow requests"
    );
    for client in &mut busy {
        assert_eq!(client.response().text(), "slow");
    }
    // Both slots are free again, on the refused connection too.
    send(&mut extra, "/fast");
    assert_eq!(extra.response().text(), "fast");
    let mut pipelined = Client::connect(server.local_addr());
    pipelined.send("GET /fast HTTP/1.1\r\nHost: t\r\n\r\n".repeat(5));
    for response in pipelined.responses(5) {
        assert_eq!(response.status, 200, "pipelined requests run one at a time");
    }
}

#[test]
fn a_zero_bound_is_a_startup_error() {
    let err = squall::Server::new(support::config())
        .spawn(|| {
            App::new()
                .max_in_flight(0)
                .get("/", |_req: Request| async { "" })
        })
        .expect_err("refused");
    assert!(err.to_string().contains("max_in_flight"), "{err}");
}

/// A handler that keeps the core busy for `ms` without yielding, like real computation.
fn busy(ms: u64) -> &'static str {
    let until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    "done"
}

/// Twenty clients keep a core busy with 2 ms computations: with `max_queue_delay` the core
/// refuses some of them at once (the wait for the core passes 5 ms), without it none.
fn statuses_under_cpu_load(app: fn() -> App) -> (usize, usize) {
    let server = support::start(app);
    let addr = server.local_addr();
    let clients: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                (0..10)
                    .map(|_| {
                        send(&mut client, "/busy");
                        client.response().status
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    assert_eq!(statuses.len(), 200, "every request was answered");
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(ok + refused, 200, "{statuses:?}");
    (ok, refused)
}

#[test]
fn a_core_that_falls_behind_on_computation_sheds_by_waiting_time() {
    let (ok, refused) = statuses_under_cpu_load(|| {
        App::new()
            .max_queue_delay(Duration::from_millis(5))
            .get("/busy", |_req: Request| async { busy(2) })
    });
    assert!(refused > 0, "nothing was shed ({ok} served)");
    assert!(ok > 0, "everything was shed");
    let (ok, refused) =
        statuses_under_cpu_load(|| App::new().get("/busy", |_req: Request| async { busy(2) }));
    assert_eq!((ok, refused), (200, 0), "without a limit nothing is shed");
}

/// A handler that computes for `COMPUTE` without awaiting anything.
fn compute() -> &'static str {
    let started = Instant::now();
    while started.elapsed() < COMPUTE {
        std::hint::spin_loop();
    }
    "computed"
}

const COMPUTE: Duration = Duration::from_millis(20);

#[test]
fn handlers_that_compute_are_bounded_in_flight_and_the_rest_refused_ahead_of_them() {
    // One worker, so every request meets the same bound.
    let config = support::config().workers(1);
    let server = support::start_with(config, || {
        App::new()
            .max_in_flight(4)
            .get("/compute", |_req: Request| async { compute() })
            .get("/panic", |_req: Request| async {
                if true {
                    panic!("on purpose");
                }
                "never"
            })
    });
    let mut clients: Vec<Client> = (0..32)
        .map(|_| Client::connect(server.local_addr()))
        .collect();
    let sent = Instant::now();
    for client in &mut clients {
        send(client, "/compute");
    }
    let mut refused = 0;
    for client in &mut clients {
        let response = client.response();
        match response.status {
            200 => assert_eq!(response.text(), "computed"),
            503 => {
                refused += 1;
                // Handlers run in a queue of their own, below the connections': a refusal
                // waits for at most the handler that was running, not for all of them.
                let waited = sent.elapsed();
                assert!(
                    waited < COMPUTE * 16,
                    "a refusal waited {waited:?}, behind the admitted handlers"
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // Computing handlers finish in one poll each, yet they count in flight while queued.
    assert!(
        refused >= 16,
        "only {refused} of 32 refused past a bound of 4"
    );

    // A panic in the handler queue is still a 500, and the core serves on.
    let mut client = Client::connect(server.local_addr());
    send(&mut client, "/panic");
    assert_eq!(client.response().status, 500);
    send(&mut client, "/compute");
    assert_eq!(client.response().text(), "computed");
}
