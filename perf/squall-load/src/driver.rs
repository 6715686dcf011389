//! One executor's share of the run: open its connections along the ramp, meet the other
//! executors at the start line, drive every connection, hand back its `Tally`.
//!
//! Executors share nothing on the hot path. Each owns its `Core` (counts in a `RefCell`); the
//! only cross-thread state is `Shared`: a start-line counter touched once per executor, and
//! progress counters each executor stores into four times a second for the progress line.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::Write as _;
use std::os::fd::RawFd;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures_util::future::{Either, select};
use glommio::sync::Semaphore;
use glommio::timer::Timer;
use glommio::{LocalExecutorBuilder, Placement};
use squall_net::Socket;

use crate::config::{Config, Mode, Stop};
use crate::schedule::{Pace, Window, quota};
use crate::stats::{ErrorKind, Tally};
use crate::tls::{self, Stream};
use crate::{http, net, signal, ws};

/// A WebSocket over one of squall's sockets.
pub type WsStream = WebSocketStream<Socket>;

/// An open connection, before or after the WebSocket handshake.
pub enum Conn {
    /// HTTP/1.1, plain or over TLS.
    Http(Stream),
    /// After a successful handshake.
    Ws(Box<WsStream>),
}

impl Conn {
    /// The HTTP stream, if this is one.
    pub fn into_http(self) -> Option<Stream> {
        match self {
            Conn::Http(s) => Some(s),
            Conn::Ws(_) => None,
        }
    }

    /// The WebSocket, if this is one.
    pub fn into_ws(self) -> Option<Box<WsStream>> {
        match self {
            Conn::Ws(s) => Some(s),
            Conn::Http(_) => None,
        }
    }
}

/// How a connection's session ended.
pub enum Outcome {
    /// Its share of the load is sent and answered.
    Done,
    /// The server closed it cleanly; reconnect if there is more to do.
    Closed,
    /// It failed; counted, then reconnect if there is more to do.
    Failed(ErrorKind),
}

/// What `wait` woke up for.
pub enum Wake<T> {
    /// The operation finished.
    Done(T),
    /// The time ran out first (the operation is dropped).
    Timer,
}

/// Runs `operation` for at most `limit`, raced against a timer (the operation is dropped if
/// the timer wins).
pub async fn wait<F: Future>(limit: Duration, operation: F) -> Wake<F::Output> {
    let operation = pin!(operation);
    let timer = pin!(Timer::new(limit));
    match select(operation, timer).await {
        Either::Left((output, _)) => Wake::Done(output),
        Either::Right(_) => Wake::Timer,
    }
}

/// Sleeps until `at` (at once if it has passed).
pub async fn sleep_until(at: Instant) {
    let left = at.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        Timer::new(left).await;
    }
}

/// Wall-clock time paired with the monotonic clock at the start line, so that timestamps
/// carried in broadcast messages (Unix nanoseconds, comparable across executors and processes)
/// translate to and from `Instant`s.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    /// The start line on the monotonic clock.
    pub instant: Instant,
    /// The same moment in Unix nanoseconds.
    pub unix_ns: u64,
}

impl Anchor {
    fn now() -> Anchor {
        Anchor {
            instant: Instant::now(),
            unix_ns: unix_now_ns(),
        }
    }

    /// `at` (not before the anchor) in Unix nanoseconds.
    pub fn unix_ns_at(&self, at: Instant) -> u64 {
        let since = u64::try_from(at.saturating_duration_since(self.instant).as_nanos());
        self.unix_ns.saturating_add(since.unwrap_or(u64::MAX))
    }
}

/// The current time in Unix nanoseconds.
pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What one executor publishes for the progress line.
#[derive(Default)]
pub struct Progress {
    /// Responses or messages seen, warm-up included.
    pub seen: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// The executor finished.
    pub finished: AtomicBool,
}

/// The little the executors share.
pub struct Shared {
    threads: usize,
    arrived: AtomicUsize,
    /// Connections open at the start line, summed as the executors arrive.
    connected: AtomicU64,
    /// In `WsIdle`, the connections asked for: the ready line is printed at the start line.
    announce_ready: Option<usize>,
    /// Set by the last executor to reach the start line.
    pub go: OnceLock<Anchor>,
    /// The process's CPU time at the start line, so the report can leave out connecting.
    pub start_cpu: OnceLock<Duration>,
    /// One slot per executor.
    pub progress: Vec<Progress>,
}

impl Shared {
    /// State for the executors of `config`.
    pub fn new(config: &Config) -> Shared {
        Shared {
            threads: config.threads,
            arrived: AtomicUsize::new(0),
            connected: AtomicU64::new(0),
            announce_ready: (config.mode == Mode::WsIdle).then_some(config.connections),
            go: OnceLock::new(),
            start_cpu: OnceLock::new(),
            progress: (0..config.threads).map(|_| Progress::default()).collect(),
        }
    }

    /// Waits until every executor has opened its connections (`connected` of them here);
    /// all get the same start line.
    async fn start_line(&self, connected: u64) -> Anchor {
        self.connected.fetch_add(connected, Ordering::Relaxed);
        // The AcqRel chain on `arrived` makes every executor's `connected` visible to the last.
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            let _ = self.start_cpu.set(net::process_cpu());
            if let Some(total) = self.announce_ready {
                // A script holding idle connections waits for this line before it measures
                // the server; stdout is flushed so the line is there the moment it is due.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "ready connections={total} connected={}",
                    self.connected.load(Ordering::Relaxed)
                );
                let _ = out.flush();
            }
            let _ = self.go.set(Anchor::now());
        }
        loop {
            if let Some(anchor) = self.go.get() {
                return *anchor;
            }
            // Polled rather than blocked on, so this executor's sockets stay serviced.
            Timer::new(Duration::from_millis(1)).await;
        }
    }
}

/// Connect attempts in flight at once per executor when no ramp is set.
pub const CONNECTS_IN_FLIGHT: u64 = 256;

/// A connection's deadline, enforced by its executor's watchdog: a timer per read or write
/// costs more than the request itself at 100k requests/s (glommio re-arms its timer on each
/// one), so the hot path only stores an `Instant` and the watchdog, a few times per timeout,
/// shuts down the sockets that are late. Their pending read or write then ends at once.
#[derive(Debug)]
pub struct Deadline {
    fd: Cell<RawFd>,
    at: Cell<Option<Instant>>,
    fired: Cell<bool>,
}

impl Deadline {
    /// Watches `fd` until `at`.
    pub fn arm(&self, fd: RawFd, at: Instant) {
        self.fd.set(fd);
        self.at.set(Some(at));
    }

    /// Stops watching; returns whether the deadline had passed (and the socket was shut down).
    pub fn disarm(&self) -> bool {
        self.at.set(None);
        self.fd.set(-1);
        self.fired.replace(false)
    }

    fn check(&self, now: Instant) {
        if let Some(at) = self.at.get()
            && now >= at
            && self.fd.get() >= 0
        {
            // SAFETY: shutdown on a descriptor the connection still owns (it disarms before
            // dropping the socket); no memory is involved.
            unsafe { libc::shutdown(self.fd.get(), libc::SHUT_RDWR) };
            self.fired.set(true);
            self.at.set(None);
        }
    }
}

/// Consecutive failed connects after which a lane of a `-n` run gives up its share.
pub const COUNT_RUN_CONNECT_ATTEMPTS: u32 = 3;

/// One executor's state, shared by its tasks through `Rc`.
pub struct Core {
    /// The run.
    pub config: Arc<Config>,
    /// Counts, read back when the executor finishes.
    pub tally: RefCell<Tally>,
    /// Connections open now.
    pub open: Cell<u64>,
    /// The latest measured completion (for `-n` runs, the end of the measurement).
    pub last_done: Cell<Option<Instant>>,
    /// `pipeline` copies of the encoded request, so a burst is one write.
    pub requests: Vec<u8>,
    /// Bytes of one request.
    pub request_len: usize,
    connects: Semaphore,
    deadlines: RefCell<Vec<Rc<Deadline>>>,
    /// This executor's TLS client, for `https://`.
    tls: Option<tls::Client>,
}

/// Requests sent and not yet answered: each one's intended send time and whether it is
/// measured.
pub type InFlight = std::collections::VecDeque<(Instant, bool)>;

/// Per-connection progress through its share of the schedule.
pub struct Lane {
    /// The connection's index across the whole run (decides its source address).
    pub global: usize,
    pace: Pace,
    /// The measurement window.
    pub window: Window,
    next: u64,
    quota: Option<u64>,
    failed_connects: u32,
}

impl Lane {
    /// A lane over `pace` and `window`, with `quota` measured requests if the run counts them.
    pub fn new(global: usize, pace: Pace, window: Window, quota: Option<u64>) -> Lane {
        Lane {
            global,
            pace,
            window,
            next: 0,
            quota,
            failed_connects: 0,
        }
    }

    /// Whether this connection still has requests to send.
    pub fn more_to_send(&self, now: Instant) -> bool {
        if let Some(left) = self.quota {
            // A count cannot be reached without a server: give up after a few failed connects.
            return left > 0 && self.failed_connects < COUNT_RUN_CONNECT_ATTEMPTS;
        }
        // Open loop stops at the end even when behind schedule: requests due but never sent
        // by then are not measured (as in wrk2 and oha), so an overloaded run ends on time.
        !self.window.is_over(now) && !self.window.is_over(self.pace.due(self.next).unwrap_or(now))
    }

    /// When the connection must wake to send its next request (open loop): only while it has
    /// room among its `pipeline` in flight and more to send.
    pub fn next_send(
        &self,
        now: Instant,
        in_flight: &InFlight,
        pipeline: usize,
    ) -> Option<Instant> {
        (in_flight.len() < pipeline && self.more_to_send(now))
            .then(|| self.pace.due(self.next))
            .flatten()
    }

    /// Moves the requests due at `now` into `in_flight`, up to `pipeline` there at once, each
    /// with its intended send time and whether it is measured; returns how many.
    pub fn take_due(&mut self, now: Instant, in_flight: &mut InFlight, pipeline: usize) -> usize {
        let room = pipeline.saturating_sub(in_flight.len());
        let mut taken = 0;
        while taken < room && self.more_to_send(now) {
            let intended = self.pace.intended(self.next, now);
            if intended > now {
                break;
            }
            let measured = self.window.contains(intended);
            if measured && let Some(left) = self.quota.as_mut() {
                *left -= 1;
            }
            in_flight.push_back((intended, measured));
            self.next += 1;
            taken += 1;
        }
        taken
    }
}

impl Core {
    fn new(config: Arc<Config>) -> Core {
        let request = http::encode_request(&config);
        let request_len = request.len();
        let connects = match config.ramp {
            Some(_) => u64::MAX >> 1,
            None => CONNECTS_IN_FLIGHT,
        };
        let tls = config.target.tls.then(|| {
            tls::Client::new(&config.target.host, config.tls_resume)
                .expect("Config::validate built this client once already")
        });
        Core {
            requests: request.repeat(config.pipeline),
            request_len,
            config,
            tally: RefCell::new(Tally::default()),
            open: Cell::new(0),
            last_done: Cell::new(None),
            connects: Semaphore::new(connects),
            deadlines: RefCell::new(Vec::new()),
            tls,
        }
    }

    /// A deadline the watchdog of this executor enforces.
    pub fn deadline(&self) -> Rc<Deadline> {
        let deadline = Rc::new(Deadline {
            fd: Cell::new(-1),
            at: Cell::new(None),
            fired: Cell::new(false),
        });
        self.deadlines.borrow_mut().push(Rc::clone(&deadline));
        deadline
    }

    async fn watch_deadlines(&self, finished: &Cell<bool>) {
        let period =
            (self.config.timeout / 10).clamp(Duration::from_millis(10), Duration::from_millis(250));
        while !finished.get() {
            Timer::new(period).await;
            let now = Instant::now();
            for deadline in self.deadlines.borrow().iter() {
                deadline.check(now);
            }
        }
    }

    /// Opens connection `global` (TCP, then the TLS handshake for https or the WebSocket
    /// handshake for ws modes); failures are counted as connect errors.
    pub async fn open_connection(&self, global: usize) -> Option<Conn> {
        let config = &self.config;
        let _permit = self.connects.acquire_permit(1).await.ok()?;
        let source =
            (!config.sources.is_empty()).then(|| config.sources[global % config.sources.len()]);
        let opened = async {
            let stream = net::connect(config.target.addr, source, config.connect_timeout)
                .await
                .ok()?;
            if config.mode == Mode::Http {
                let Some(tls) = &self.tls else {
                    return Some(Conn::Http(Stream::Plain(stream)));
                };
                return match wait(config.connect_timeout, tls.connect(stream)).await {
                    Wake::Done(Ok(stream)) => Some(Conn::Http(stream)),
                    _ => None,
                };
            }
            let ws_config = WebSocketConfig::default()
                .read_buffer_size(4 * 1024)
                .max_message_size(Some(64 << 20));
            match wait(
                config.connect_timeout,
                async_tungstenite::client_async_with_config(
                    config.target.url.as_str(),
                    stream,
                    Some(ws_config),
                ),
            )
            .await
            {
                Wake::Done(Ok((ws, _response))) => Some(Conn::Ws(Box::new(ws))),
                _ => None,
            }
        };
        match opened.await {
            Some(conn) => {
                self.open.set(self.open.get() + 1);
                Some(conn)
            }
            None => {
                self.tally.borrow_mut().error(ErrorKind::Connect);
                None
            }
        }
    }

    /// Reconnects a lane after a failure, pausing after a failed attempt so a dead server is
    /// not hammered.
    pub async fn reconnect(&self, lane: &mut Lane) -> Option<Conn> {
        let conn = self.open_connection(lane.global).await;
        if conn.is_none() {
            lane.failed_connects += 1;
            Timer::new(Duration::from_millis(100)).await;
        } else {
            lane.failed_connects = 0;
        }
        conn
    }

    fn publish_progress(&self, slot: &Progress) {
        let tally = self.tally.borrow();
        slot.seen.store(tally.seen, Ordering::Relaxed);
        slot.errors.store(tally.error_count(), Ordering::Relaxed);
        slot.open.store(self.open.get(), Ordering::Relaxed);
    }
}

/// What an executor hands back.
pub struct CoreOutcome {
    /// Its counts.
    pub tally: Tally,
    /// The start of the measurement.
    pub window_start: Instant,
    /// Its last measured completion.
    pub last_done: Option<Instant>,
}

/// Runs executor `index` on the current thread until its connections are done.
pub fn run_executor(
    index: usize,
    config: Arc<Config>,
    shared: Arc<Shared>,
    ramp_start: Instant,
) -> Result<CoreOutcome, String> {
    let placement = match config.cpus.len() {
        0 => Placement::Unbound,
        n => Placement::Fixed(config.cpus[index % n]),
    };
    let executor = LocalExecutorBuilder::new(placement)
        .name(&format!("squall-load-{index}"))
        .io_memory(512 * 1024)
        .make()
        .map_err(|e| format!("cannot start executor {index}: {e}"))?;
    let slot = Arc::clone(&shared);
    let outcome = executor.run(run_core(index, config, shared, ramp_start));
    slot.progress[index].finished.store(true, Ordering::Release);
    Ok(outcome)
}

async fn run_core(
    index: usize,
    config: Arc<Config>,
    shared: Arc<Shared>,
    ramp_start: Instant,
) -> CoreOutcome {
    let core = Rc::new(Core::new(Arc::clone(&config)));
    let finished = Rc::new(Cell::new(false));
    let reporter = glommio::spawn_local({
        let (core, shared, finished) =
            (Rc::clone(&core), Arc::clone(&shared), Rc::clone(&finished));
        async move {
            while !finished.get() {
                core.publish_progress(&shared.progress[index]);
                Timer::new(Duration::from_millis(250)).await;
            }
            core.publish_progress(&shared.progress[index]);
        }
    });

    let watchdog = glommio::spawn_local({
        let (core, finished) = (Rc::clone(&core), Rc::clone(&finished));
        async move { core.watch_deadlines(&finished).await }
    });

    // Connection g lives on executor g % threads; the publisher (subscribe mode) is the last.
    let mine: Vec<usize> = (index..config.total_connections())
        .step_by(config.threads)
        .collect();
    let opening: Vec<_> = mine
        .iter()
        .map(|&global| {
            let core = Rc::clone(&core);
            glommio::spawn_local(async move {
                if let Some(ramp) = core.config.ramp {
                    sleep_until(ramp_start + Duration::from_secs_f64(global as f64 / ramp)).await;
                }
                core.open_connection(global).await
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(opening.len());
    for task in opening {
        conns.push(task.await);
    }
    let publisher = config.mode == Mode::WsSubscribe;
    let connected = mine
        .iter()
        .zip(&conns)
        .filter(|(global, conn)| conn.is_some() && !(publisher && **global == config.connections))
        .count() as u64;
    core.tally.borrow_mut().connected = connected;

    let anchor = shared.start_line(connected).await;
    let window_start = anchor.instant + config.warmup;
    let window = Window {
        start: window_start,
        end: match config.stop {
            Stop::After(duration) => Some(window_start + duration),
            Stop::Count(_) => None,
        },
    };
    // ws-idle: the holds end together when this closes (see release_holds).
    let release = Rc::new(Semaphore::new(0));
    let releaser = (config.mode == Mode::WsIdle).then(|| {
        let (core, release) = (Rc::clone(&core), Rc::clone(&release));
        let end = window.end.expect("ws-idle runs have a duration");
        glommio::spawn_local(async move { release_holds(&core, end, &release).await })
    });
    let driving: Vec<_> = mine
        .iter()
        .zip(conns)
        .map(|(&global, conn)| {
            let core = Rc::clone(&core);
            let config = Arc::clone(&config);
            let release = Rc::clone(&release);
            glommio::spawn_local(async move {
                let share = match config.stop {
                    Stop::Count(total) => Some(quota(total, config.connections, global)),
                    Stop::After(_) => None,
                };
                let pace = Pace::new(config.rate, anchor.instant, config.connections, global);
                let lane = Lane::new(global, pace, window, share);
                match config.mode {
                    Mode::Http => http::drive(&core, conn.and_then(Conn::into_http), lane).await,
                    Mode::WsEcho => ws::echo(&core, conn.and_then(Conn::into_ws), lane).await,
                    Mode::WsSubscribe if global == config.connections => {
                        ws::publish(&core, conn.and_then(Conn::into_ws), window, anchor).await
                    }
                    Mode::WsSubscribe => {
                        ws::subscribe(&core, conn.and_then(Conn::into_ws), window, anchor).await
                    }
                    Mode::WsIdle => ws::hold(&core, conn.and_then(Conn::into_ws), &release).await,
                }
            })
        })
        .collect();
    for task in driving {
        task.await;
    }
    if let Some(releaser) = releaser {
        releaser.await;
    }
    finished.set(true);
    reporter.await;
    watchdog.await;
    let tally = core.tally.borrow().clone();
    CoreOutcome {
        tally,
        window_start,
        last_done: core.last_done.get(),
    }
}

/// How often a holding executor looks for SIGTERM/SIGINT: a script that signals the end of a
/// hold waits at most this long before the connections start closing.
pub const RELEASE_POLL: Duration = Duration::from_millis(50);

/// Ends this executor's ws-idle holds at `end`, or soon after SIGTERM/SIGINT, by closing
/// `release` (every holder waits on it); notes the moment as the end of the measurement.
/// One poll per executor rather than a timer per connection: 10,000 held connections cost
/// nothing until they are let go.
async fn release_holds(core: &Core, end: Instant, release: &Semaphore) {
    loop {
        let now = Instant::now();
        if now >= end || signal::requested() {
            break;
        }
        Timer::new((end - now).min(RELEASE_POLL)).await;
    }
    core.last_done.set(Some(Instant::now()));
    release.close();
}
