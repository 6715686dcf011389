//! Ending a `ws-idle` hold early: SIGTERM or SIGINT sets a flag that each executor polls, so a
//! script can hold connections open for as long as it measures the server, then let go and
//! still get the report (the connections closed cleanly, the JSON written).
//!
//! The executor threads start with both signals blocked, so only the main thread takes them:
//! a signal never interrupts an executor in the middle of its ring wait, and the handler's
//! one atomic store is all that runs.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The signals that end a hold.
const SIGNALS: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGINT];

extern "C" fn note(_signal: libc::c_int) {
    // An atomic store is async-signal-safe; nothing else happens here.
    REQUESTED.store(true, Ordering::Relaxed);
}

/// Whether SIGTERM or SIGINT has arrived since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Replaces the default action of SIGTERM and SIGINT (ending the process without a report)
/// with noting them for [`requested`].
pub fn install() -> Result<(), String> {
    REQUESTED.store(false, Ordering::Relaxed);
    for signal in SIGNALS {
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags) once its handler is set;
        // the handler only stores to an atomic.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(format!(
                "cannot handle signal {signal}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Runs `start` with SIGTERM and SIGINT blocked on the calling thread, so the threads it
/// starts inherit the mask and never take them; the caller's mask is restored afterwards.
pub fn blocked_while<T>(start: impl FnOnce() -> T) -> T {
    // SAFETY: sigset_t values initialised by sigemptyset before use; pthread_sigmask only
    // reads and writes them.
    let previous = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous);
        previous
    };
    let result = start();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) };
    result
}
