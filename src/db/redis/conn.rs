//! One connection: the socket, the output buffer, the waiters, and its two tasks.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use futures_channel::oneshot::Sender;
use futures_lite::{AsyncRead, AsyncWrite};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;

use super::value::Value;
use crate::db::stream::Stream;
use crate::error::Error;

/// How many bytes one socket read asks for.
const READ_CHUNK: usize = 16 * 1024;

/// Who is waiting for the next reply(ies) on a connection. A caller that gave up (a timeout,
/// a dropped request) has dropped its receiver; sending to it fails and the reply is
/// discarded, which is why every `send` below ignores its result.
pub(super) enum Waiter {
    One(Sender<Result<Value, Error>>),
    Batch {
        expected: usize,
        replies: Vec<Value>,
        tx: Sender<Result<Vec<Value>, Error>>,
    },
}

impl Waiter {
    fn fail(self, reason: &str) {
        let error = || Error::unavailable(format!("redis connection lost: {reason}"));
        match self {
            Waiter::One(tx) => {
                let _ = tx.send(Err(error()));
            }
            Waiter::Batch { tx, .. } => {
                let _ = tx.send(Err(error()));
            }
        }
    }
}

/// Shared by the client (which enqueues), the writer task and the reader task. Every borrow
/// below ends before the next `.await` or poll of anything else, so none can overlap.
pub(super) struct Conn {
    /// `None` once the connection has failed: dropping the stream closes the socket.
    stream: RefCell<Option<Stream>>,
    /// Commands encoded but not yet handed to the writer task.
    out: RefCell<BytesMut>,
    /// One entry per command or pipeline on the wire, oldest first.
    waiters: RefCell<VecDeque<Waiter>>,
    pub(super) broken: Cell<bool>,
    /// Replies received so far; a timed-out caller uses it to tell a slow server from a dead
    /// connection.
    pub(super) replies: Cell<u64>,
    writer: Cell<Option<Waker>>,
    reader: Cell<Option<Waker>>,
}

impl Conn {
    /// Starts the reader and writer tasks on an open, authenticated connection.
    pub(super) fn start(stream: Stream, unread: BytesMut) -> Rc<Conn> {
        let conn = Rc::new(Conn {
            stream: RefCell::new(Some(stream)),
            out: RefCell::new(BytesMut::with_capacity(READ_CHUNK)),
            waiters: RefCell::new(VecDeque::new()),
            broken: Cell::new(false),
            replies: Cell::new(0),
            writer: Cell::new(None),
            reader: Cell::new(None),
        });
        glommio::spawn_local(read_loop(Rc::clone(&conn), unread)).detach();
        glommio::spawn_local(write_loop(Rc::clone(&conn))).detach();
        conn
    }

    /// Encodes a command and queues its waiter in one step, so wire order is waiter order.
    pub(super) fn enqueue(
        &self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), Error>,
        waiter: Waiter,
    ) -> Result<(), Error> {
        if self.broken.get() {
            return Err(Error::unavailable("redis connection lost"));
        }
        {
            let mut out = self.out.borrow_mut();
            let mark = out.len();
            if let Err(e) = encode(&mut out) {
                out.truncate(mark);
                return Err(e);
            }
        }
        self.waiters.borrow_mut().push_back(waiter);
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
        Ok(())
    }

    /// Commands and pipelines on the wire whose replies have not all come.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "read by the metrics feature alone")
    )]
    pub(super) fn awaiting(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Hands one decoded reply to the oldest waiter. False if nobody was waiting.
    fn dispatch(&self, frame: BytesFrame) -> bool {
        self.replies.set(self.replies.get() + 1);
        let value = Value::from(frame);
        let mut waiters = self.waiters.borrow_mut();
        let done = match waiters.front_mut() {
            None => return false,
            Some(Waiter::One(_)) => {
                let waiter = waiters.pop_front();
                drop(waiters);
                if let Some(Waiter::One(tx)) = waiter {
                    let _ = tx.send(Ok(value));
                }
                return true;
            }
            Some(Waiter::Batch {
                expected, replies, ..
            }) => {
                replies.push(value);
                replies.len() >= *expected
            }
        };
        if done {
            let waiter = waiters.pop_front();
            drop(waiters);
            if let Some(Waiter::Batch { replies, tx, .. }) = waiter {
                let _ = tx.send(Ok(replies));
            }
        }
        true
    }

    /// Marks the connection dead, closes the socket, fails every waiter and stops both tasks.
    /// Idempotent.
    pub(super) fn fail(&self, reason: &str) {
        self.broken.set(true);
        drop(self.stream.borrow_mut().take());
        self.out.borrow_mut().clear();
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waiter in waiters {
            waiter.fail(reason);
        }
        for waker in [self.writer.take(), self.reader.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
    }

    fn poll_read(
        &self,
        cx: &mut Context<'_>,
        scratch: &mut [u8],
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        let mut stream = self.stream.borrow_mut();
        let Some(stream) = stream.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let result = poll_read_into(stream, cx, scratch, buf);
        if result.is_pending() {
            self.reader.set(Some(cx.waker().clone()));
        }
        result
    }

    fn poll_write(&self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        let mut stream = self.stream.borrow_mut();
        let Some(stream) = stream.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let result = Pin::new(stream).poll_write(cx, bytes);
        if result.is_pending() {
            self.writer.set(Some(cx.waker().clone()));
        }
        result
    }

    /// Pushes out what a TLS session still holds of the writes it accepted.
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut stream = self.stream.borrow_mut();
        let Some(stream) = stream.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let result = Pin::new(stream).poll_flush(cx);
        if result.is_pending() {
            self.writer.set(Some(cx.waker().clone()));
        }
        result
    }
}

/// Reads what the socket has (through `scratch`) and appends it to `buf`, in one poll, so a
/// dropped read never leaves partial state behind.
pub(super) fn poll_read_into(
    stream: &mut Stream,
    cx: &mut Context<'_>,
    scratch: &mut [u8],
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let n = ready!(Pin::new(stream).poll_read(cx, scratch))?;
    buf.extend_from_slice(&scratch[..n]);
    Poll::Ready(Ok(n))
}

/// The reader task: decode every complete reply, hand it over, read more.
async fn read_loop(conn: Rc<Conn>, mut buf: BytesMut) {
    let mut scratch = vec![0; READ_CHUNK];
    let reason: Cow<'static, str> = 'conn: loop {
        loop {
            match decode_bytes_mut(&mut buf) {
                Ok(Some((frame, _, _))) => {
                    if !conn.dispatch(frame) {
                        break 'conn "a reply arrived that no command asked for".into();
                    }
                }
                Ok(None) => break,
                Err(e) => break 'conn format!("not a RESP2 reply: {e}").into(),
            }
        }
        match poll_fn(|cx| conn.poll_read(cx, &mut scratch, &mut buf)).await {
            Ok(0) => break "closed by the server".into(),
            Ok(_) => {}
            Err(e) if conn.broken.get() => break e.to_string().into(),
            Err(e) => break format!("read failed: {e}").into(),
        }
    };
    conn.fail(&reason);
}

/// The writer task: wait for encoded commands, write all of them, repeat.
async fn write_loop(conn: Rc<Conn>) {
    // Two buffers swapped back and forth: callers fill one while this task writes the other.
    let mut chunk = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let more = poll_fn(|cx| {
            if conn.broken.get() {
                Poll::Ready(false)
            } else if !conn.out.borrow().is_empty() {
                Poll::Ready(true)
            } else {
                conn.writer.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        if !more {
            return;
        }
        std::mem::swap(&mut chunk, &mut *conn.out.borrow_mut());
        while !chunk.is_empty() {
            match poll_fn(|cx| conn.poll_write(cx, &chunk)).await {
                Ok(0) => return conn.fail("the socket accepts no more bytes"),
                Ok(n) => chunk.advance(n),
                Err(e) => return conn.fail(&format!("write failed: {e}")),
            }
        }
        if let Err(e) = poll_fn(|cx| conn.poll_flush(cx)).await {
            return conn.fail(&format!("write failed: {e}"));
        }
        chunk.clear();
    }
}
