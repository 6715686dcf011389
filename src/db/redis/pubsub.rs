//! Publish/subscribe: a [`Subscriber`] on a connection of its own, delivering [`Message`]s.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncWrite, Stream};
use redis_protocol::resp2::types::BytesFrame;

use super::cmd::encode;
use super::config::RedisConfig;
use super::open::{open_in_time, read_frame, TlsCache};
use super::stats::Stats;
use super::value::reply_error;
use crate::db::stats::{bump, Failure};
use crate::db::stream::Stream as Connection;
use crate::error::Error;

/// One message delivered to a [`Subscriber`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The channel it was published to.
    pub channel: Bytes,
    /// What was published.
    pub payload: Bytes,
    /// The pattern that matched, for subscriptions made with [`Subscriber::psubscribe`].
    pub pattern: Option<Bytes>,
}

/// A connection in subscribe mode, delivering [`Message`]s from [`Subscriber::next`].
///
/// It remembers its channels and patterns. When the connection is lost, the next call to
/// `next` returns the error (messages published meanwhile are lost: that is pub/sub), and the
/// call after that reconnects and subscribes again, backing off while Redis stays away.
///
/// ```no_run
/// # async fn demo(redis: squall::db::redis::Client) -> Result<(), squall::Error> {
/// let mut news = redis.subscriber().await?;
/// news.subscribe(&["news"]).await?;
/// loop {
///     match news.next().await {
///         Ok(msg) => println!("{:?}: {:?}", msg.channel, msg.payload),
///         Err(e) => eprintln!("subscriber: {e}; resubscribing"),
///     }
/// }
/// # }
/// ```
pub struct Subscriber {
    config: RedisConfig,
    tls: TlsCache,
    stream: Option<Connection>,
    buf: BytesMut,
    scratch: Box<[u8]>,
    /// Commands not yet written; kept here so a dropped call never leaves half of one.
    out: BytesMut,
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    /// Subscribe/unsubscribe confirmations still to come.
    unconfirmed: usize,
    queued: VecDeque<Message>,
    /// Connection attempts that failed in a row, for the backoff.
    failures: u32,
    stats: Rc<Stats>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("connected", &self.stream.is_some())
            .field("channels", &self.channels.len())
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

/// Which subscription set a command changes.
#[derive(Clone, Copy)]
enum Change {
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
}

impl Subscriber {
    /// Opens a connection for subscribing.
    pub async fn connect(config: RedisConfig) -> Result<Subscriber, Error> {
        let mut subscriber = Subscriber::new(config);
        subscriber.ensure_connected().await?;
        Ok(subscriber)
    }

    /// A subscriber that connects when first used, and from then on like any other: it
    /// reconnects, backing off, while Redis is away.
    pub fn new(config: RedisConfig) -> Subscriber {
        Subscriber {
            stats: Stats::register(&config),
            config,
            tls: TlsCache::default(),
            stream: None,
            buf: BytesMut::new(),
            scratch: vec![0; 4096].into_boxed_slice(),
            out: BytesMut::new(),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            unconfirmed: 0,
            queued: VecDeque::new(),
            failures: 0,
        }
    }

    /// `SUBSCRIBE`: returns once Redis has confirmed, so later publishes are delivered.
    ///
    /// This and the other subscription changes are remembered even when they fail (the
    /// connection was lost, say): the next reconnect subscribes to the updated set.
    pub async fn subscribe<A: AsRef<[u8]>>(&mut self, channels: &[A]) -> Result<(), Error> {
        self.change(Change::Subscribe, channels).await
    }

    /// `UNSUBSCRIBE` from some channels.
    pub async fn unsubscribe<A: AsRef<[u8]>>(&mut self, channels: &[A]) -> Result<(), Error> {
        self.change(Change::Unsubscribe, channels).await
    }

    /// `PSUBSCRIBE` to glob-style patterns (`news.*`).
    pub async fn psubscribe<A: AsRef<[u8]>>(&mut self, patterns: &[A]) -> Result<(), Error> {
        self.change(Change::PSubscribe, patterns).await
    }

    /// `PUNSUBSCRIBE` from some patterns.
    pub async fn punsubscribe<A: AsRef<[u8]>>(&mut self, patterns: &[A]) -> Result<(), Error> {
        self.change(Change::PUnsubscribe, patterns).await
    }

    /// How many channels and patterns this subscriber holds.
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// The next message, waiting as long as it takes; reconnects first if the connection was
    /// lost. An `Err` reports a lost connection or a failed reconnect; calling again retries.
    pub async fn next(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(message) = self.queued.pop_front() {
                return Ok(message);
            }
            self.ensure_connected().await?;
            self.read_one().await?;
        }
    }

    /// The messages as an endless stream; errors are items, as from [`Subscriber::next`].
    pub fn into_stream(self) -> impl Stream<Item = Result<Message, Error>> {
        futures_lite::stream::unfold(self, |mut subscriber| async move {
            let item = subscriber.next().await;
            Some((item, subscriber))
        })
    }

    async fn change<A: AsRef<[u8]>>(&mut self, change: Change, names: &[A]) -> Result<(), Error> {
        if names.is_empty() {
            return Ok(());
        }
        let (verb, set, add): (&[u8], _, _) = match change {
            Change::Subscribe => (b"SUBSCRIBE", &mut self.channels, true),
            Change::Unsubscribe => (b"UNSUBSCRIBE", &mut self.channels, false),
            Change::PSubscribe => (b"PSUBSCRIBE", &mut self.patterns, true),
            Change::PUnsubscribe => (b"PUNSUBSCRIBE", &mut self.patterns, false),
        };
        for name in names {
            if add {
                set.insert(name.as_ref().to_vec());
            } else {
                set.remove(name.as_ref());
            }
        }
        self.stats.subscriptions.set(self.subscriptions() as u64);
        bump(&self.stats.commands);
        let timeout = self.config.command_timeout;
        let settle = async {
            if self.stream.is_none() {
                // Reconnecting subscribes to the updated sets.
                self.ensure_connected().await?;
            } else {
                let parts = std::iter::once(verb).chain(names.iter().map(AsRef::as_ref));
                encode(&mut self.out, parts)?;
                self.unconfirmed += names.len();
            }
            while self.unconfirmed > 0 {
                self.read_one().await?;
            }
            Ok(())
        };
        match crate::deadline::within(timeout, settle).await {
            Ok(result) => result,
            Err(_) => {
                self.stats.failed(Failure::Timeout);
                Err(Error::unavailable(format!(
                    "redis did not confirm the subscription change within {timeout:?}"
                )))
            }
        }
    }

    /// Connects (after a backoff if the last attempt failed) and subscribes to everything.
    async fn ensure_connected(&mut self) -> Result<(), Error> {
        if self.stream.is_some() {
            return Ok(());
        }
        if self.failures > 0 {
            let backoff =
                Duration::from_millis(50 << self.failures.min(6)).min(Duration::from_secs(2));
            glommio::timer::sleep(backoff).await;
        }
        bump(&self.stats.connects);
        let (stream, unread) = match open_in_time(&self.config, &self.tls).await {
            Ok(opened) => opened,
            Err(e) => {
                bump(&self.stats.connect_failures);
                self.failures = self.failures.saturating_add(1);
                return Err(e);
            }
        };
        bump(&self.stats.opened);
        self.stats.subscribed.set(true);
        self.failures = 0;
        self.stream = Some(stream);
        self.buf = unread;
        self.out.clear();
        self.unconfirmed = 0;
        for (verb, set) in [
            (b"SUBSCRIBE".as_slice(), &self.channels),
            (b"PSUBSCRIBE".as_slice(), &self.patterns),
        ] {
            if !set.is_empty() {
                let parts = std::iter::once(verb).chain(set.iter().map(Vec::as_slice));
                encode(&mut self.out, parts)?;
                self.unconfirmed += set.len();
            }
        }
        Ok(())
    }

    /// Writes what is pending, then reads and handles one frame.
    async fn read_one(&mut self) -> Result<(), Error> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(Error::unavailable("redis subscriber is not connected"));
        };
        let io = async {
            while !self.out.is_empty() {
                let out = &self.out;
                let n = poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, out)).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                self.out.advance(n);
            }
            poll_fn(|cx| Pin::new(&mut *stream).poll_flush(cx)).await?;
            read_frame(stream, &mut self.scratch, &mut self.buf).await
        };
        match io.await {
            Ok(frame) => self.handle(frame),
            Err(e) => {
                self.stats.failed(Failure::Connection);
                self.disconnect();
                Err(Error::unavailable("redis subscriber connection lost").with_source(e))
            }
        }
    }

    fn handle(&mut self, frame: BytesFrame) -> Result<(), Error> {
        let bytes = |frame: BytesFrame| match frame {
            BytesFrame::BulkString(b) | BytesFrame::SimpleString(b) => Some(b),
            _ => None,
        };
        match frame {
            BytesFrame::Array(parts) => {
                let mut parts = parts.into_iter();
                let kind = parts.next().and_then(bytes).unwrap_or_default();
                match &kind[..] {
                    b"message" => {
                        if let (Some(channel), Some(payload)) =
                            (parts.next().and_then(bytes), parts.next().and_then(bytes))
                        {
                            self.queued.push_back(Message {
                                channel,
                                payload,
                                pattern: None,
                            });
                            return Ok(());
                        }
                    }
                    b"pmessage" => {
                        if let (Some(pattern), Some(channel), Some(payload)) = (
                            parts.next().and_then(bytes),
                            parts.next().and_then(bytes),
                            parts.next().and_then(bytes),
                        ) {
                            self.queued.push_back(Message {
                                channel,
                                payload,
                                pattern: Some(pattern),
                            });
                            return Ok(());
                        }
                    }
                    b"subscribe" | b"unsubscribe" | b"psubscribe" | b"punsubscribe" => {
                        self.unconfirmed = self.unconfirmed.saturating_sub(1);
                        return Ok(());
                    }
                    b"pong" => return Ok(()),
                    _ => {}
                }
                self.stats.failed(Failure::Client);
                self.disconnect();
                Err(Error::internal(
                    "redis: unexpected message on a subscriber connection",
                ))
            }
            BytesFrame::Error(message) => {
                // Confirmations can no longer be counted: start over on a new connection.
                self.stats.failed(Failure::Server);
                self.disconnect();
                Err(reply_error(&message))
            }
            _ => {
                self.stats.failed(Failure::Client);
                self.disconnect();
                Err(Error::internal(
                    "redis: unexpected reply on a subscriber connection",
                ))
            }
        }
    }

    /// Closes the connection; the next call reconnects.
    fn disconnect(&mut self) {
        self.stream = None;
        self.stats.subscribed.set(false);
    }
}
