//! Socket readiness for one executor: an edge-triggered epoll set whose own descriptor is the
//! only thing the io_uring ring polls.
//!
//! Why not glommio's per-socket polls: glommio arms an `IORING_OP_POLL_ADD` per socket read,
//! and its ring is set up without `IORING_SETUP_COOP_TASKRUN`, so every poll that completes
//! while the executor is running sends its thread an inter-processor interrupt to run the
//! completion. On these virtual machines that was one interrupt per response: squall-load
//! reached 57k req/s where wrk reached 74–81k against the same server, and the server took
//! 0.35 interrupts per request (`perf stat -a -e irq_vectors:reschedule_entry`, squall's
//! BENCHMARKS.md "Load generator validation"). With the sockets in an epoll set, readiness piles up on
//! epoll's ready list for free, and the ring carries one poll, on the epoll descriptor, per
//! batch. It also keeps thousands of armed polls out of io_uring's poll hash, which every
//! `IORING_OP_ASYNC_CANCEL` walks (glommio cancels its park timeout after each wake-up).
//!
//! One `Readiness` exists per executor (per thread, re-made for a new executor on the same
//! thread). A waiting socket leaves its waker here; the driver task drains epoll and wakes
//! them. Nothing here is shared between threads.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::Waker;

use glommio::io::PollableFd;
use slab::Slab;

/// Events taken from epoll per `epoll_wait`; more wait for the next round of the loop.
const EVENTS_PER_WAIT: usize = 256;

/// The wakers of one registered socket, and whether data may be waiting.
struct Waiters {
    read: Option<Waker>,
    write: Option<Waker>,
    /// False after a read found the socket drained, until the next edge: edge-triggered epoll
    /// reports every arrival after that read, so until then another `recv` could only say
    /// EAGAIN. Skipping it saved a system call per request.
    readable: bool,
    /// The peer closed its side (or the socket failed). A short read no longer means drained:
    /// the end of the stream may be waiting behind the data, and no new edge would announce it.
    ended: bool,
}

impl Default for Waiters {
    fn default() -> Waiters {
        Waiters {
            read: None,
            write: None,
            readable: true,
            ended: false,
        }
    }
}

/// Which direction a socket waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// One executor's epoll set and the wakers of its sockets.
pub(crate) struct Readiness {
    /// The epoll set, polled through the executor's ring.
    epoll: PollableFd<OwnedFd>,
    waiters: RefCell<Slab<Waiters>>,
    /// False once the driver task is gone (its executor ended): a new one is needed.
    driven: Cell<bool>,
    /// The executor it serves: a later executor on the same thread needs its own.
    executor: usize,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Readiness>>> = const { RefCell::new(None) };
}

impl Readiness {
    /// The current executor's readiness, made (with its driver task) on first use.
    pub(crate) fn current() -> io::Result<Rc<Readiness>> {
        let executor = glommio::executor().id();
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            if let Some(readiness) = current.as_ref() {
                if readiness.driven.get() && readiness.executor == executor {
                    return Ok(Rc::clone(readiness));
                }
            }
            let readiness = Rc::new(Readiness::new(executor)?);
            readiness.spawn_driver();
            *current = Some(Rc::clone(&readiness));
            Ok(readiness)
        })
    }

    fn new(executor: usize) -> io::Result<Readiness> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: see above.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Readiness {
            epoll: PollableFd::new(epoll).map_err(io::Error::other)?,
            waiters: RefCell::new(Slab::new()),
            driven: Cell::new(true),
            executor,
        })
    }

    /// Starts the task that turns epoll events into wake-ups. It runs for the life of the
    /// executor; `driven` falls when it is dropped.
    fn spawn_driver(self: &Rc<Self>) {
        let driver = DriverMark(Rc::clone(self));
        glommio::spawn_local(async move {
            let readiness = &driver.0;
            let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
            loop {
                if readiness.epoll.readable().await.is_err() {
                    return;
                }
                while readiness.dispatch(&mut events) == EVENTS_PER_WAIT {}
            }
        })
        .detach();
    }

    /// Takes what epoll has ready without blocking and wakes the sockets waiting on it;
    /// returns how many events there were.
    fn dispatch(&self, events: &mut [libc::epoll_event]) -> usize {
        // SAFETY: the buffer is valid for `events.len()` entries; timeout 0 never blocks.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.get_ref().as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                0,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            return 0; // EINTR: the next readable() brings us back.
        };
        let mut woken: smallvec::SmallVec<[Waker; 32]> = smallvec::SmallVec::new();
        {
            let mut waiters = self.waiters.borrow_mut();
            for event in &events[..n] {
                let Some(waiter) = waiters.get_mut(event.u64 as usize) else {
                    continue;
                };
                let flags = event.events as libc::c_int;
                let failed = flags & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
                if failed || flags & libc::EPOLLRDHUP != 0 {
                    waiter.ended = true;
                }
                if failed || flags & (libc::EPOLLIN | libc::EPOLLRDHUP) != 0 {
                    waiter.readable = true;
                    woken.extend(waiter.read.take());
                }
                if failed || flags & libc::EPOLLOUT != 0 {
                    woken.extend(waiter.write.take());
                }
            }
        }
        // Woken outside the borrow: a waker may run code that registers or waits again.
        woken.into_iter().for_each(Waker::wake);
        n
    }

    /// Adds `fd` to the set, edge-triggered for both directions; returns its key.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<usize> {
        let key = self.waiters.borrow_mut().insert(Waiters::default());
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: key as u64,
        };
        // SAFETY: valid descriptors and a pointer to a local event.
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll.get_ref().as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd,
                &mut event,
            )
        };
        if rc != 0 {
            self.waiters.borrow_mut().remove(key);
            return Err(io::Error::last_os_error());
        }
        Ok(key)
    }

    /// Takes `fd` out of the set before it is closed, so no event can name its key again.
    pub(crate) fn deregister(&self, fd: RawFd, key: usize) {
        // SAFETY: valid descriptors; a null event is allowed for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.epoll.get_ref().as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
        self.waiters.borrow_mut().try_remove(key);
    }

    /// Whether the socket with `key` may have data: no read has found it drained since its
    /// last edge.
    pub(crate) fn may_read(&self, key: usize) -> bool {
        self.waiters.borrow().get(key).is_none_or(|w| w.readable)
    }

    /// Notes that a read took everything the socket with `key` had.
    pub(crate) fn drained(&self, key: usize) {
        if let Some(waiter) = self.waiters.borrow_mut().get_mut(key) {
            waiter.readable = waiter.ended;
        }
    }

    /// Leaves `waker` to be woken when the socket with `key` becomes ready in `direction`.
    /// Only the latest waker of each direction is kept.
    pub(crate) fn wait(&self, key: usize, direction: Direction, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        let Some(waiter) = waiters.get_mut(key) else {
            return;
        };
        let slot = match direction {
            Direction::Read => &mut waiter.read,
            Direction::Write => &mut waiter.write,
        };
        match slot {
            Some(existing) if existing.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

/// The driver task's hold on its readiness; marks it undriven when the task is dropped with
/// its executor.
struct DriverMark(Rc<Readiness>);

impl Drop for DriverMark {
    fn drop(&mut self) {
        self.0.driven.set(false);
    }
}
