//! Where the server talks to the operating system beyond sockets: the CPUs it may run on,
//! the io_uring probe, resource limits, signals, the shutdown eventfd, and giving freed heap
//! memory back.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::error::Error;

/// The CPUs to pin workers to: the first `workers` of those this process may run on.
pub(super) fn placement(workers: Option<usize>) -> Result<Vec<usize>, Error> {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .ok_or_else(|| Error::startup("cannot read the CPUs this process may run on"))?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let wanted = workers.unwrap_or(allowed.len());
    if wanted > allowed.len() {
        return Err(Error::config(format!(
            "{wanted} workers requested but this process may run on only {} cpus ({:?}); \
             lower SQUALL_WORKERS or widen the cpu affinity",
            allowed.len(),
            allowed
        )));
    }
    Ok(allowed.into_iter().take(wanted).collect())
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
        Some(libc::ENOSYS) => "this kernel has no io_uring (5.8 or newer is needed)",
        Some(libc::EPERM) => {
            "io_uring is forbidden here (kernel.io_uring_disabled or a seccomp profile)"
        }
        Some(libc::ENOMEM) => "the kernel refused io_uring memory (RLIMIT_MEMLOCK too low?)",
        _ => "io_uring_setup failed",
    };
    Err(Error::startup(format!(
        "io_uring unavailable: {why}: {err}"
    )))
}

/// Raises the soft RLIMIT_MEMLOCK to the hard limit; io_uring rings count against it.
pub(super) fn raise_memlock_limit() -> Result<(), Error> {
    const NEEDED: u64 = 512 * 1024;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) != 0 {
            return Ok(()); // Unknown: let io_uring decide.
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit);
        }
    }
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < NEEDED {
        return Err(Error::startup(format!(
            "RLIMIT_MEMLOCK is {} bytes and cannot be raised; io_uring needs at least {NEEDED} \
             (raise it with `ulimit -l` or the service manager's LimitMEMLOCK)",
            limit.rlim_cur
        )));
    }
    Ok(())
}

pub(super) fn block_signals() -> Result<(), Error> {
    glommio::signal::block(&[libc::SIGINT, libc::SIGTERM])
        .map_err(|e| Error::startup(format!("cannot block SIGINT/SIGTERM: {e}")))
}

/// Waits up to `timeout` for SIGINT or SIGTERM (blocked by `block_signals`).
pub(super) fn wait_for_signal(timeout: Duration) -> Option<i32> {
    // SAFETY: sigset operations on a local set; sigtimedwait with valid pointers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        let signal = libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
        (signal > 0).then_some(signal)
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
