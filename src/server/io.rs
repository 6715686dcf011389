//! The socket side of a connection: a read buffer that exists only while there is data, and
//! reads and writes bounded by deadlines in the core's one deadline table
//! ([`Alarm`](crate::deadline::Alarm)).
//!
//! Reads are readiness-based ([`Socket`]): a read that would block leaves a waker with the
//! core's epoll set and the caller's buffer alone. So a waiting connection can give its
//! buffer back to the core's pool and take one again when woken — an idle keep-alive
//! connection holds no buffer.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::core::{ConnRegistration, Core, READ_BUFFER_SIZE};
use super::transport::Transport;
use crate::deadline::{within, Alarm};
use crate::per_core::Traffic;

/// How long a closing connection reads and discards what the peer still sends.
const LINGER: Duration = Duration::from_millis(100);

/// Why a read or write ended without data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IoStop {
    /// The peer closed its side.
    Eof,
    /// The deadline passed.
    TimedOut,
    /// Graceful shutdown and the connection was idle.
    Shutdown,
    /// The socket failed.
    Failed,
}

/// What a read is waiting for, which decides its deadline.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Between requests: keep-alive timeout; graceful shutdown ends the wait.
    Idle,
    /// Inside a head whose first byte arrived at the given time.
    Head(std::time::Instant),
    /// Inside a body: the body timeout, renewed per read.
    Body,
}

/// Bytes received and not yet decoded: `buffer[start..end]`.
#[derive(Default)]
pub(crate) struct InBuf {
    buffer: Option<Vec<u8>>,
    start: usize,
    end: usize,
}

impl InBuf {
    pub(crate) fn filled(&self) -> &[u8] {
        match &self.buffer {
            Some(b) => &b[self.start..self.end],
            None => &[],
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Takes every buffered byte out (for an upgrade).
    pub(crate) fn take_all(&mut self) -> bytes::Bytes {
        let taken = bytes::Bytes::copy_from_slice(self.filled());
        self.clear();
        taken
    }

    /// Drops every buffered byte.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Space to read into: compacts, and grows past the pooled size only as far as `max`.
    fn spare(&mut self, core: &Core, max: usize) -> &mut [u8] {
        let buffer = self.buffer.get_or_insert_with(|| core.take_read_buffer());
        if self.end == buffer.len() && self.start > 0 {
            buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == buffer.len() && buffer.len() < max {
            let grown = (buffer.len() * 2).min(max).max(READ_BUFFER_SIZE);
            buffer.resize(grown, 0);
        }
        &mut buffer[self.end..]
    }

    /// Gives an empty buffer back to the pool.
    fn release_if_empty(&mut self, core: &Core) {
        if self.is_empty() {
            if let Some(buffer) = self.buffer.take() {
                core.give_read_buffer(buffer);
            }
        }
    }
}

/// The time limit of the read or write under way: set when it first has to wait, gone when
/// it ends.
#[derive(Default)]
struct OpDeadline {
    at: Cell<Option<Instant>>,
    alarm: RefCell<Alarm>,
}

impl OpDeadline {
    /// Whether the limit has passed; the first call of an operation sets it from `limit`.
    /// Until it passes, the task in `cx` is woken when it does.
    fn has_passed(&self, cx: &mut Context<'_>, limit: impl FnOnce() -> Instant) -> bool {
        self.passes_at(cx, self.at.get().unwrap_or_else(limit))
    }

    /// Like [`has_passed`](Self::has_passed), with the limit brought forward to `earlier`
    /// if that comes first.
    fn has_passed_or(
        &self,
        cx: &mut Context<'_>,
        limit: impl FnOnce() -> Instant,
        earlier: Instant,
    ) -> bool {
        self.passes_at(cx, self.at.get().unwrap_or_else(limit).min(earlier))
    }

    fn passes_at(&self, cx: &mut Context<'_>, at: Instant) -> bool {
        self.at.set(Some(at));
        self.alarm.borrow_mut().poll_at(at, cx).is_ready()
    }

    fn clear(&self) {
        if self.at.take().is_some() {
            self.alarm.borrow_mut().clear();
        }
    }
}

/// A connection's socket, input buffer and registration, shared by the driver and a request
/// body being read.
pub(crate) struct ConnIo<T> {
    pub(crate) core: Rc<Core>,
    pub(crate) registration: ConnRegistration,
    stream: T,
    pub(crate) input: RefCell<InBuf>,
    deadline: OpDeadline,
}

impl<T: Transport> ConnIo<T> {
    /// The connection's I/O, counted in the core's connections by `registration`.
    pub(crate) fn new(core: Rc<Core>, registration: ConnRegistration, stream: T) -> ConnIo<T> {
        ConnIo {
            core,
            registration,
            stream,
            input: RefCell::new(InBuf::default()),
            deadline: OpDeadline::default(),
        }
    }

    /// The transport, for what it knows of the connection (its TLS session).
    #[cfg(feature = "tls")]
    pub(crate) fn stream(&self) -> &T {
        &self.stream
    }

    /// Reads at least one byte into the input buffer, growing it up to `max` bytes.
    pub(crate) async fn read_more(&self, wait: Wait, max: usize) -> Result<usize, IoStop> {
        let result = poll_fn(|cx| self.poll_read_more(cx, wait, max)).await;
        self.deadline.clear();
        result
    }

    fn poll_read_more(
        &self,
        cx: &mut Context<'_>,
        wait: Wait,
        max: usize,
    ) -> Poll<Result<usize, IoStop>> {
        let mut input = self.input.borrow_mut();
        // Graceful shutdown closes idle connections, but not at once: closing could cross a
        // request the client is sending right now, which would then fail with no response.
        // Each gets until `idle_close_at` to send one (answered with `Connection: close`).
        let idle_close_at = match wait {
            Wait::Idle if input.is_empty() => self.core.idle_close_at(),
            _ => None,
        };
        let spare = input.spare(&self.core, max);
        if spare.is_empty() {
            // The caller's size limit is reached; it reports the error.
            return Poll::Ready(Ok(0));
        }
        match self.stream.poll_read(cx, spare) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(IoStop::Eof)),
            Poll::Ready(Ok(n)) => {
                input.end += n;
                Traffic::add(&self.core.traffic.bytes_in, n as u64);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(_)) => Poll::Ready(Err(IoStop::Failed)),
            Poll::Pending => {
                input.release_if_empty(&self.core);
                let limits = &self.core.config.limits;
                let limit = || match wait {
                    Wait::Idle => self.core.now() + limits.keep_alive_timeout,
                    Wait::Head(started) => started + limits.header_read_timeout,
                    Wait::Body => self.core.now() + limits.body_read_timeout,
                };
                if let Some(close_at) = idle_close_at {
                    if self.deadline.has_passed_or(cx, limit, close_at) {
                        return Poll::Ready(Err(IoStop::Shutdown));
                    }
                } else if self.deadline.has_passed(cx, limit) {
                    return Poll::Ready(Err(IoStop::TimedOut));
                }
                // Graceful shutdown wakes waiting connections to notice it.
                self.registration.slot.park(cx.waker());
                Poll::Pending
            }
        }
    }

    /// Writes all of `data` and flushes the transport, waiting at most the write timeout for
    /// a peer that stops reading.
    pub(crate) async fn write_all(&self, data: &[u8]) -> Result<(), IoStop> {
        let mut written = 0;
        let result = poll_fn(|cx| {
            while written < data.len() {
                match self.stream.poll_write(cx, &data[written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(IoStop::Eof)),
                    Poll::Ready(Ok(n)) => written += n,
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(IoStop::Failed)),
                    Poll::Pending => return self.wait_to_write(cx),
                }
            }
            match self.stream.poll_flush(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => Poll::Ready(Err(IoStop::Failed)),
                Poll::Pending => self.wait_to_write(cx),
            }
        })
        .await;
        Traffic::add(&self.core.traffic.bytes_out, written as u64);
        self.deadline.clear();
        result
    }

    /// A write that has to wait: pending until the transport takes more, or timed out.
    fn wait_to_write(&self, cx: &mut Context<'_>) -> Poll<Result<(), IoStop>> {
        let timeout = self.core.config.limits.write_timeout;
        if self.deadline.has_passed(cx, || self.core.now() + timeout) {
            return Poll::Ready(Err(IoStop::TimedOut));
        }
        Poll::Pending
    }

    /// Ends the connection so that the last response survives: close the write side, then
    /// read and discard for a moment before the socket goes.
    pub(crate) async fn close_gracefully(&self) {
        // The write side closes so the peer sees the end of the response before the socket goes.
        let _ = self.stream.shutdown_write();
        self.linger().await;
    }

    /// Reads and discards input for a short while after a final response, so that closing
    /// with unread data does not turn into a reset that destroys the response in flight.
    async fn linger(&self) {
        let drain = async {
            loop {
                self.input.borrow_mut().clear();
                if self.read_more(Wait::Body, READ_BUFFER_SIZE).await.is_err() {
                    break;
                }
            }
        };
        let _ = within(LINGER, drain).await;
    }

    /// Hands the socket over after an upgrade, with the connection's place in the core's
    /// count: an upgraded connection still counts toward the limit of connections per core for as long as it lives.
    pub(crate) fn into_parts(self) -> (T, ConnRegistration) {
        (self.stream, self.registration)
    }

    /// Frees the read buffer if nothing is left in it.
    pub(crate) fn release_input(&self) {
        self.input.borrow_mut().release_if_empty(&self.core);
    }
}
