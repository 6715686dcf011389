//! Where the server talks to the operating system beyond sockets: the CPUs it may run on,
//! the io_uring probe, resource limits, signals, the shutdown eventfd, and giving freed heap
//! memory back.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Where the process's cgroup is named: the cgroup v2 line reads `0::/path`.
const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";
/// Where the cgroup v2 hierarchy is mounted when the system runs cgroup v2 alone (systemd's
/// "unified" layout, every container runtime's default since 2021).
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The CPUs to pin workers to: the first `workers` of those this process may run on, or by
/// default as many as the smaller of that set and the cgroup's CPU quota allow. Logs the
/// count and what decided it.
pub(super) fn placement(workers: Option<usize>) -> Result<Vec<usize>, Error> {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .ok_or_else(|| Error::startup("cannot read the CPUs this process may run on"))?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let wanted = match workers {
        Some(wanted) => {
            if wanted > allowed.len() {
                return Err(Error::config(format!(
                    "{wanted} workers requested but this process may run on only {} cpus \
                     ({:?}); lower SQUALL_WORKERS or widen the cpu affinity",
                    allowed.len(),
                    allowed
                )));
            }
            tracing::info!(
                target: "squall::server",
                "{}, as configured (the cpu quota is not consulted)",
                workers_text(wanted)
            );
            wanted
        }
        None => {
            let quota = cpu_quota(Path::new(PROC_SELF_CGROUP), Path::new(CGROUP_ROOT))?;
            let wanted = default_workers(allowed.len(), quota.as_ref());
            match &quota {
                Some(quota) => tracing::info!(
                    target: "squall::server",
                    "{}: {} cpus in the affinity set, cpu quota {:.2} cpus \
                     ({} of every {} µs in cgroup {})",
                    workers_text(wanted),
                    allowed.len(),
                    quota.quota_us as f64 / quota.period_us as f64,
                    quota.quota_us,
                    quota.period_us,
                    quota.cgroup,
                ),
                None => tracing::info!(
                    target: "squall::server",
                    "{}: {} cpus in the affinity set, no cpu quota",
                    workers_text(wanted),
                    allowed.len(),
                ),
            }
            wanted
        }
    };
    Ok(allowed.into_iter().take(wanted).collect())
}

/// "1 worker", "2 workers".
pub(super) fn workers_text(count: usize) -> String {
    format!("{count} worker{}", if count == 1 { "" } else { "s" })
}

/// The default worker count: one per CPU the process may run on, but no more than its CPU
/// quota allows in full — a worker beyond the quota only gets the cgroup throttled sooner.
fn default_workers(allowed: usize, quota: Option<&CpuQuota>) -> usize {
    quota.map_or(allowed, |q| q.cpus().min(allowed)).max(1)
}

/// A cgroup v2 CPU bandwidth limit: `quota_us` of CPU time in every `period_us`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CpuQuota {
    pub(super) quota_us: u64,
    pub(super) period_us: u64,
    /// The cgroup that set it, as `/proc/self/cgroup` names it.
    pub(super) cgroup: String,
}

impl CpuQuota {
    /// Whole CPUs the quota keeps busy, rounded up: 1.5 CPUs' worth runs two workers, each
    /// idle part of the time, rather than one that could never use the other half.
    pub(super) fn cpus(&self) -> usize {
        let cpus = self.quota_us.div_ceil(self.period_us).max(1);
        usize::try_from(cpus).unwrap_or(usize::MAX)
    }

    /// Whether this quota allows less CPU time than `other`.
    fn is_below(&self, other: &CpuQuota) -> bool {
        u128::from(self.quota_us) * u128::from(other.period_us)
            < u128::from(other.quota_us) * u128::from(self.period_us)
    }
}

/// The CPU quota of this process's cgroup, read from `proc_self_cgroup` (the file naming the
/// cgroup) and the cgroup v2 hierarchy mounted at `cgroup_root`; `None` when nothing limits it.
///
/// The cgroup and every ancestor visible under the mount are read and the tightest quota
/// wins: a limit set on a parent (a systemd slice, a Kubernetes pod) binds its children too.
/// No `/proc`, no cgroup v2 line (cgroup v1 alone), no cgroup v2 mount at `cgroup_root` (no
/// `cgroup.controllers` there) and no `cpu.max` (the root cgroup, or the cpu controller not
/// enabled) all mean no quota. A quota file that exists but cannot be read or parsed is an
/// error naming it: guessing would start the wrong number of workers without a word.
pub(super) fn cpu_quota(
    proc_self_cgroup: &Path,
    cgroup_root: &Path,
) -> Result<Option<CpuQuota>, Error> {
    let Some(membership) = read_if_present(proc_self_cgroup)? else {
        return Ok(None);
    };
    let Some(cgroup) = cgroup_v2_path(&membership) else {
        return Ok(None);
    };
    if !cgroup_root.join("cgroup.controllers").exists() {
        return Ok(None);
    }
    // A path leading above the mount (`/..`) names a cgroup outside this cgroup namespace,
    // whose files are not visible here.
    let parts: Vec<&str> = cgroup.split('/').filter(|p| !p.is_empty()).collect();
    if parts.contains(&"..") {
        return Ok(None);
    }
    let mut tightest: Option<CpuQuota> = None;
    for depth in (0..=parts.len()).rev() {
        let dir = parts[..depth]
            .iter()
            .fold(cgroup_root.to_path_buf(), |d, p| d.join(p));
        let file = dir.join("cpu.max");
        let Some(text) = read_if_present(&file)? else {
            continue;
        };
        let limit = parse_cpu_max(&text).map_err(|why| {
            Error::startup(format!(
                "malformed cpu quota in {}: {:?}: {why}",
                file.display(),
                text.trim_end()
            ))
        })?;
        if let Some((quota_us, period_us)) = limit {
            let found = CpuQuota {
                quota_us,
                period_us,
                cgroup: format!("/{}", parts[..depth].join("/")),
            };
            if tightest.as_ref().is_none_or(|t| found.is_below(t)) {
                tightest = Some(found);
            }
        }
    }
    Ok(tightest)
}

/// A file's text, `None` when it does not exist, an error naming it when it cannot be read.
fn read_if_present(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::startup(format!(
            "cannot read {} to find the cpu quota: {e}",
            path.display()
        ))),
    }
}

/// The cgroup v2 path in the text of `/proc/self/cgroup`: the line `0::/path`.
fn cgroup_v2_path(membership: &str) -> Option<&str> {
    membership.lines().find_map(|line| line.strip_prefix("0::"))
}

/// Parses a `cpu.max` file: `max PERIOD` (no quota) or `QUOTA PERIOD`, both in microseconds.
fn parse_cpu_max(text: &str) -> Result<Option<(u64, u64)>, &'static str> {
    const EXPECTED: &str = "expected `max PERIOD` or `QUOTA PERIOD` in microseconds";
    let mut fields = text.split_whitespace();
    let (Some(quota), Some(period), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(EXPECTED);
    };
    let period: u64 = period.parse().map_err(|_| EXPECTED)?;
    if period == 0 {
        return Err("the period is zero");
    }
    if quota == "max" {
        return Ok(None);
    }
    let quota: u64 = quota.parse().map_err(|_| EXPECTED)?;
    if quota == 0 {
        return Err("the quota is zero");
    }
    Ok(Some((quota, period)))
}

/// Fails clearly when the kernel has no io_uring or a policy forbids it.
///
/// The probe runs on a short-lived thread: closing a ring interrupts the closing thread's next
/// blocking call with `EINTR`, which would otherwise surprise the caller of `spawn`.
pub(super) fn check_io_uring() -> Result<(), Error> {
    std::thread::Builder::new()
        .name("squall-probe".to_owned())
        .spawn(probe_io_uring)
        .map_err(|e| Error::io("cannot start the io_uring probe", e))?
        .join()
        .unwrap_or_else(|_| Err(Error::startup("the io_uring probe panicked")))
}

fn probe_io_uring() -> Result<(), Error> {
    // SAFETY: io_uring_setup with one entry and zeroed params; on success the returned fd is
    // closed at once.
    let fd = unsafe {
        let mut params = [0u8; 120];
        libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr())
    };
    if fd >= 0 {
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    let why = match err.raw_os_error() {
        Some(libc::ENOSYS) => {
            "this kernel has no io_uring (5.8 or newer is needed), or a seccomp profile \
             answers ENOSYS for it"
        }
        Some(libc::EPERM) => {
            "io_uring is forbidden here: most likely the container's seccomp profile (the \
             default profiles of Docker and of Kubernetes' RuntimeDefault refuse it), or \
             kernel.io_uring_disabled"
        }
        Some(libc::ENOMEM) => "the kernel refused io_uring memory (RLIMIT_MEMLOCK too low?)",
        _ => "io_uring_setup failed",
    };
    Err(Error::startup(format!(
        "io_uring unavailable: {why}: {err}; see \"Deploying\" in the README for what the \
         server needs, and deploy/seccomp/ for a seccomp profile that allows io_uring"
    )))
}

/// Raises the soft RLIMIT_MEMLOCK to the hard limit; io_uring rings count against it.
pub(super) fn raise_memlock_limit() -> Result<(), Error> {
    const NEEDED: u64 = 512 * 1024;
    let Some((_, limit)) = raise_soft_limit(libc::RLIMIT_MEMLOCK) else {
        return Ok(()); // Unknown: let io_uring decide.
    };
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < NEEDED {
        return Err(Error::startup(format!(
            "RLIMIT_MEMLOCK is {} bytes and cannot be raised; io_uring needs at least {NEEDED} \
             (raise it with `ulimit -l` or the service manager's LimitMEMLOCK)",
            limit.rlim_cur
        )));
    }
    Ok(())
}

/// Descriptors a worker holds besides its connections: 8 measured for the executor (three
/// io_uring rings, three eventfds, the epoll set and the listener, counted in
/// `/proc/self/fd` with one and two workers) and 8 for what an application keeps per core
/// (a PostgreSQL pool of 4 by default, a Redis connection, files being sent).
const DESCRIPTORS_PER_WORKER: u64 = 16;

/// Raises the soft RLIMIT_NOFILE to the hard limit and says how many connections that
/// leaves room for; warns when the configured connection limits add up to more.
///
/// Every connection is a descriptor, and the soft limit a shell hands down (often 1024)
/// would cap the server near a thousand connections. Raising it is safe for squall, which
/// polls with epoll and io_uring; code in the same process that still uses `select(2)`
/// cannot watch descriptors numbered 1024 and above, and child processes inherit the raised
/// limit. Room is the limit less the descriptors open now (the standard streams, log files,
/// whatever the application opened before starting the server) and `DESCRIPTORS_PER_WORKER`
/// for each worker.
pub(super) fn raise_descriptor_limit(workers: usize, max_connections_per_core: usize) {
    let Some((before, limit)) = raise_soft_limit(libc::RLIMIT_NOFILE) else {
        tracing::warn!(
            target: "squall::server",
            "cannot read the descriptor limit (RLIMIT_NOFILE); connection capacity unknown"
        );
        return;
    };
    let open = open_descriptors();
    let budget = DescriptorBudget::new(limit.rlim_cur, open, workers, max_connections_per_core);
    let raised = if before.rlim_cur < limit.rlim_cur {
        format!("raised from {}", before.rlim_cur)
    } else if limit.rlim_cur < limit.rlim_max {
        format!("could not be raised to the hard limit {}", limit.rlim_max)
    } else {
        "the hard limit".to_owned()
    };
    tracing::info!(
        target: "squall::server",
        "descriptor limit {} ({raised}): room for {} connections ({open} descriptors open \
         now, {DESCRIPTORS_PER_WORKER} kept per worker)",
        limit.rlim_cur,
        budget.capacity,
    );
    if budget.wanted > budget.capacity {
        tracing::warn!(
            target: "squall::server",
            "max_connections_per_core {max_connections_per_core} × {} = {} \
             connections, more than the descriptor limit leaves room for ({}); past it the \
             cores pause accepting until descriptors free up. Raise the hard limit \
             (`ulimit -Hn`, LimitNOFILE= in a systemd unit) or lower \
             SQUALL_MAX_CONNECTIONS_PER_CORE",
            workers_text(workers),
            budget.wanted,
            budget.capacity,
        );
    }
}

/// Connections the descriptor limit leaves room for, and how many the configuration allows.
#[derive(Debug, PartialEq, Eq)]
struct DescriptorBudget {
    capacity: u64,
    wanted: u64,
}

impl DescriptorBudget {
    fn new(
        soft_limit: u64,
        open: u64,
        workers: usize,
        max_connections_per_core: usize,
    ) -> DescriptorBudget {
        let workers = u64::try_from(workers).unwrap_or(u64::MAX);
        let per_core = u64::try_from(max_connections_per_core).unwrap_or(u64::MAX);
        let kept = open.saturating_add(DESCRIPTORS_PER_WORKER.saturating_mul(workers));
        DescriptorBudget {
            capacity: soft_limit.saturating_sub(kept),
            wanted: per_core.saturating_mul(workers),
        }
    }
}

/// Descriptors this process has open, counted in `/proc/self/fd` (0 without `/proc`).
fn open_descriptors() -> u64 {
    // The count includes the directory's own descriptor, open while it is read.
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count().saturating_sub(1) as u64)
}

/// The type glibc and musl give resource numbers.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

/// Raises a soft limit to its hard limit; returns the limit before and after, or `None` when
/// it cannot be read. A refused raise leaves the limit as it was.
fn raise_soft_limit(resource: Resource) -> Option<(libc::rlimit, libc::rlimit)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(resource, &mut limit) != 0 {
            return None;
        }
        let before = limit;
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(resource, &limit) != 0 {
                limit = before;
            }
        }
        Some((before, limit))
    }
}

/// The signals `serve` handles: two that stop the server, and SIGHUP, which reloads the TLS
/// certificates (and would otherwise end the process).
const CAUGHT_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Within this long of the first stop signal, the same signal again is the same request.
/// `timeout(1)` signals both the process and its group, so one stop arrives twice a few
/// milliseconds apart; a person or supervisor insisting waits longer than that.
pub(super) const REPEAT_WINDOW: Duration = Duration::from_secs(1);

/// The write end of the signal pipe, for the handler; -1 until the handler is installed.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Writes the signal's number to the signal pipe. It does only async-signal-safe work: one
/// `write` to a non-blocking pipe (a full pipe already holds a stop request, so a lost byte
/// loses nothing), with `errno` put back for the code it interrupted.
extern "C" fn on_stop_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let byte = u8::try_from(signal).unwrap_or(u8::MAX);
    // SAFETY: write and errno access are async-signal-safe; `byte` outlives the call.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(fd, (&byte as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// SIGINT and SIGTERM, caught by a handler that writes them to a pipe which `wait` reads.
///
/// A handler rather than only blocking the signals and waiting for them with `sigtimedwait`:
/// a process-wide signal goes to any thread that does not block it, and threads started
/// before `serve` (a log writer, a test harness, anything the application made) do not
/// inherit the mask; without a handler such a thread took the default action and the
/// process died without draining. The workers still block both signals, so that no
/// executor is interrupted to run the handler.
pub(super) struct StopSignals {
    read: std::os::fd::BorrowedFd<'static>,
    /// The dispositions the handler replaced, put back when serving ends.
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl std::fmt::Debug for StopSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopSignals")
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl StopSignals {
    /// Points SIGINT and SIGTERM at the handler until this value is dropped, and forgets
    /// signals caught before this call. The pipe is made once and never closed: a signal
    /// may run the handler at any moment, even while the disposition is being put back.
    pub(super) fn catch() -> Result<StopSignals, Error> {
        static READ_END: Mutex<Option<libc::c_int>> = Mutex::new(None);
        let mut read_end = READ_END.lock().unwrap_or_else(PoisonError::into_inner);
        let fd = match *read_end {
            Some(fd) => fd,
            None => {
                let fd = signal_pipe()?;
                *read_end = Some(fd);
                fd
            }
        };
        // SAFETY: the read end is never closed (above).
        let read = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let mut signals = StopSignals {
            read,
            previous: Vec::with_capacity(CAUGHT_SIGNALS.len()),
        };
        for signal in CAUGHT_SIGNALS {
            // SAFETY: a zeroed sigaction with an empty mask and a handler of the right
            // shape; the previous one is written into a zeroed local.
            let (rc, previous) = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                let rc = libc::sigaction(signal, &action, &mut previous);
                (rc, previous)
            };
            if rc != 0 {
                return Err(Error::io(
                    format!("cannot install a handler for signal {signal}"),
                    std::io::Error::last_os_error(),
                ));
            }
            signals.previous.push((signal, previous));
        }
        while signals.take().is_some() {}
        Ok(signals)
    }

    /// The next stop signal, waiting up to `timeout` for one.
    pub(super) fn wait(&self, timeout: Duration) -> Option<libc::c_int> {
        if let Some(signal) = self.take() {
            return Some(signal);
        }
        let mut poll = libc::pollfd {
            fd: self.read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd. EINTR (the handler ran on this thread) only means the
        // pipe is worth reading now.
        unsafe { libc::poll(&mut poll, 1, millis) };
        self.take()
    }

    /// A signal already in the pipe, without waiting.
    fn take(&self) -> Option<libc::c_int> {
        let mut byte = 0u8;
        // SAFETY: reads one byte into a local from a non-blocking pipe.
        let n = unsafe { libc::read(self.read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
        (n == 1).then_some(libc::c_int::from(byte))
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        for (signal, previous) in &self.previous {
            // SAFETY: puts back a disposition sigaction reported.
            unsafe { libc::sigaction(*signal, previous, std::ptr::null_mut()) };
        }
    }
}

/// Makes the signal pipe, non-blocking at both ends, and hands its write end to the
/// handler; returns the read end.
fn signal_pipe() -> Result<libc::c_int, Error> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills a two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(Error::io(
            "cannot create the signal pipe",
            std::io::Error::last_os_error(),
        ));
    }
    SIGNAL_PIPE.store(fds[1], Ordering::Relaxed);
    Ok(fds[0])
}

/// Blocks SIGINT, SIGTERM and SIGHUP on this thread; threads it starts inherit the mask.
pub(super) fn block_signals() -> Result<(), Error> {
    glommio::signal::block(&CAUGHT_SIGNALS)
        .map_err(|e| Error::startup(format!("cannot block SIGINT/SIGTERM/SIGHUP: {e}")))
}

/// Lets SIGINT, SIGTERM and SIGHUP reach this thread again (and its handler run on it).
pub(super) fn unblock_signals() {
    // SAFETY: sigset operations on a local set; pthread_sigmask with valid pointers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in CAUGHT_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// What a stop signal asks for, given those before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// The first: drain and stop.
    Drain,
    /// The same signal again within `REPEAT_WINDOW` of the first: still the same request.
    Repeated,
    /// Another signal, or the same one later: exit at once.
    Exit,
}

/// The stop signals received so far.
#[derive(Debug, Default)]
pub(super) struct StopRequests {
    first: Option<(libc::c_int, Instant)>,
}

impl StopRequests {
    /// Classifies `signal`, received at `now`.
    pub(super) fn on_signal(&mut self, signal: libc::c_int, now: Instant) -> Stop {
        match self.first {
            None => {
                self.first = Some((signal, now));
                Stop::Drain
            }
            Some((first, at))
                if first == signal && now.saturating_duration_since(at) <= REPEAT_WINDOW =>
            {
                Stop::Repeated
            }
            Some(_) => Stop::Exit,
        }
    }
}

/// A stop signal's name, for the log.
pub(super) fn signal_name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// The shutdown trigger: an eventfd that stays readable once written, so every core's watch
/// sees it.
#[derive(Debug)]
pub(super) struct EventFd(OwnedFd);

impl EventFd {
    pub(super) fn new() -> Result<EventFd, Error> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::io(
                "cannot create the shutdown eventfd",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd is new and owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(super) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local u64 to an eventfd we own.
        unsafe {
            libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    /// Resets the counter, so that a watch waits for the next signal (for an eventfd that is
    /// signalled more than once, unlike the shutdown one: TLS reloads).
    #[cfg(feature = "tls")]
    pub(super) fn clear(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a local u64 from an eventfd we own; a
        // non-blocking read of a zero counter fails with EAGAIN and changes nothing.
        unsafe {
            libc::read(self.0.as_raw_fd(), (&mut count as *mut u64).cast(), 8);
        }
    }

    /// A per-core handle that becomes readable when the server is told to stop.
    pub(super) fn watch(&self) -> Result<glommio::io::PollableFd<OwnedFd>, Error> {
        let fd = self
            .0
            .try_clone()
            .map_err(|e| Error::io("cannot duplicate the shutdown eventfd", e))?;
        glommio::io::PollableFd::new(fd)
            .map_err(|e| Error::startup(format!("cannot watch the shutdown eventfd: {e}")))
    }
}

/// Gives the heap's free pages back to the kernel, after a burst has come and gone: glibc
/// keeps freed memory in its per-thread arenas, and without this a process stays at its
/// high-water mark (scripts/burst-memory.sh measured 64.8 MiB staying 64.8 MiB). It walks
/// every arena under its lock, so it runs only when a core has gone quiet, never per request.
pub(super) fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only inspects and releases the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A scratch directory standing in for `/proc/self` and `/sys/fs/cgroup`.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("squall-os-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }

        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().expect("has a parent")).expect("dirs");
            std::fs::write(&path, text).expect("write");
            path
        }

        /// The quota found with `membership` as `/proc/self/cgroup` and `root/` as the mount.
        fn quota(&self, membership: &str) -> Result<Option<CpuQuota>, Error> {
            let proc = self.write("proc-self-cgroup", membership);
            cpu_quota(&proc, &self.0.join("root"))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn quota(quota_us: u64, period_us: u64, cgroup: &str) -> CpuQuota {
        CpuQuota {
            quota_us,
            period_us,
            cgroup: cgroup.to_owned(),
        }
    }

    #[test]
    fn descriptor_room_leaves_what_is_open_and_each_workers_own() {
        let budget = DescriptorBudget::new(20_000, 10, 2, 25_000);
        assert_eq!(
            budget,
            DescriptorBudget {
                capacity: 20_000 - 10 - 2 * DESCRIPTORS_PER_WORKER,
                wanted: 50_000
            }
        );
        let budget = DescriptorBudget::new(1_024, 2_000, 1, 100);
        assert_eq!(budget.capacity, 0, "more open than the limit");
        let budget = DescriptorBudget::new(libc::RLIM_INFINITY, 10, 4, usize::MAX);
        assert!(budget.capacity > 1 << 60 && budget.wanted == u64::MAX);
    }

    #[test]
    fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
        let nofile = || {
            let mut now = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: writes into a local struct.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
            now
        };
        let hard = nofile().rlim_max;
        // Lowered first where there is room, so that the raise is seen; 4096 leaves the
        // tests running beside this one plenty.
        if hard > 4096 {
            let lowered = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: hard,
            };
            // SAFETY: reads a local struct.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        }
        let (before, after) = raise_soft_limit(libc::RLIMIT_NOFILE).expect("readable");
        assert_eq!((after.rlim_cur, after.rlim_max), (hard, hard));
        if hard > 4096 {
            assert_eq!(before.rlim_cur, 4096);
        }
        assert_eq!(nofile().rlim_cur, hard);
    }

    #[test]
    fn the_same_signal_within_a_second_is_one_request_and_a_later_one_exits() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut stops = StopRequests::default();
        assert_eq!(stops.on_signal(libc::SIGTERM, at(0)), Stop::Drain);
        assert_eq!(stops.on_signal(libc::SIGTERM, at(4)), Stop::Repeated);
        assert_eq!(stops.on_signal(libc::SIGTERM, at(1000)), Stop::Repeated);
        assert_eq!(stops.on_signal(libc::SIGTERM, at(1001)), Stop::Exit);
        let mut stops = StopRequests::default();
        assert_eq!(stops.on_signal(libc::SIGTERM, at(0)), Stop::Drain);
        assert_eq!(
            stops.on_signal(libc::SIGINT, at(4)),
            Stop::Exit,
            "another signal"
        );
    }

    #[test]
    fn cpu_max_parses_quota_period_and_max() {
        assert_eq!(parse_cpu_max("max 100000\n"), Ok(None));
        assert_eq!(
            parse_cpu_max("150000 100000\n"),
            Ok(Some((150_000, 100_000)))
        );
        for bad in [
            "",
            "max",
            "150000",
            "1.5 100000",
            "max 0",
            "0 100000",
            "1 2 3",
        ] {
            assert!(parse_cpu_max(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_quota_is_rounded_up_to_whole_cpus_and_caps_the_affinity_set() {
        assert_eq!(quota(150_000, 100_000, "/").cpus(), 2);
        assert_eq!(quota(200_000, 100_000, "/").cpus(), 2);
        assert_eq!(quota(1_000, 100_000, "/").cpus(), 1);
        assert_eq!(default_workers(8, Some(&quota(150_000, 100_000, "/"))), 2);
        assert_eq!(default_workers(2, Some(&quota(400_000, 100_000, "/"))), 2);
        assert_eq!(default_workers(4, None), 4);
    }

    #[test]
    fn the_quota_comes_from_the_cgroup_named_in_proc_self_cgroup() {
        let scratch = Scratch::new("quota");
        scratch.write("root/cgroup.controllers", "cpu memory\n");
        scratch.write("root/kubepods/pod1/ctr/cpu.max", "150000 100000\n");
        scratch.write("root/kubepods/pod1/cpu.max", "max 100000\n");
        let found = scratch.quota("1:cpu:/ignored\n0::/kubepods/pod1/ctr\n");
        assert_eq!(
            found.expect("readable"),
            Some(quota(150_000, 100_000, "/kubepods/pod1/ctr"))
        );
        // A tighter limit on an ancestor binds the child.
        scratch.write("root/kubepods/cpu.max", "50000 100000\n");
        let found = scratch.quota("0::/kubepods/pod1/ctr\n");
        assert_eq!(
            found.expect("readable"),
            Some(quota(50_000, 100_000, "/kubepods"))
        );
    }

    #[test]
    fn no_quota_without_a_cgroup_v2_mount_line_or_file() {
        let scratch = Scratch::new("no-quota");
        scratch.write("root/a/cpu.max", "50000 100000\n");
        // No cgroup.controllers: /sys/fs/cgroup is not a cgroup v2 mount (cgroup v1, hybrid).
        assert_eq!(scratch.quota("0::/a\n").expect("readable"), None);
        scratch.write("root/cgroup.controllers", "cpu\n");
        // Only cgroup v1 lines.
        assert_eq!(scratch.quota("4:cpu,cpuacct:/a\n").expect("readable"), None);
        // The root cgroup has no cpu.max; "max" is no quota either.
        assert_eq!(scratch.quota("0::/\n").expect("readable"), None);
        scratch.write("root/b/cpu.max", "max 100000\n");
        assert_eq!(scratch.quota("0::/b\n").expect("readable"), None);
        // A cgroup outside this namespace's view.
        assert_eq!(scratch.quota("0::/../other\n").expect("readable"), None);
        // No /proc at all.
        let missing = scratch.0.join("no-such-file");
        assert_eq!(
            cpu_quota(&missing, &scratch.0.join("root")).expect("absent"),
            None
        );
    }

    #[test]
    fn an_unreadable_or_malformed_quota_file_is_an_error_naming_it() {
        let scratch = Scratch::new("bad-quota");
        scratch.write("root/cgroup.controllers", "cpu\n");
        let file = scratch.write("root/bad/cpu.max", "lots\n");
        let err = scratch.quota("0::/bad\n").expect_err("malformed");
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains("malformed cpu quota"), "{err}");
        // A directory where the file should be cannot be read, even by root.
        std::fs::create_dir_all(scratch.0.join("root/dir/cpu.max")).expect("dir");
        let err = scratch.quota("0::/dir\n").expect_err("unreadable");
        let named = scratch.0.join("root/dir/cpu.max").display().to_string();
        assert!(err.to_string().contains(&named), "{err}");
    }
}
