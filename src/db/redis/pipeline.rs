//! Explicit pipelines: commands sent in one write and answered together.

use std::fmt;

use bytes::BytesMut;
use futures_channel::oneshot;

use super::client::Client;
use super::cmd::{encode, Cmd};
use super::conn::Waiter;
use super::value::{reply_error, unexpected, Value};
use crate::db::stats::Failure;
use crate::error::Error;

/// Commands sent in one write and answered together, made by [`Client::pipeline`].
///
/// Commands are encoded as they are added; [`Pipeline::run`] queues all of them at once, so
/// no other caller's command lands between them on the wire. With [`Pipeline::atomic`] they are
/// wrapped in `MULTI`/`EXEC` and Redis also runs them without interleaving.
pub struct Pipeline {
    client: Client,
    out: BytesMut,
    count: usize,
    atomic: bool,
    error: Option<Error>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("commands", &self.count)
            .field("atomic", &self.atomic)
            .finish()
    }
}

impl Pipeline {
    /// An empty pipeline that runs on `client`'s connection.
    pub(super) fn new(client: Client) -> Pipeline {
        Pipeline {
            client,
            out: BytesMut::new(),
            count: 0,
            atomic: false,
            error: None,
        }
    }

    /// Adds a command given as its parts.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, parts: &[A]) -> &mut Pipeline {
        self.push(|out| encode(out, parts.iter().map(AsRef::as_ref)))
    }

    /// Adds a command built with [`Cmd`].
    pub fn query(&mut self, cmd: &Cmd) -> &mut Pipeline {
        self.push(|out| encode(out, cmd.parts()))
    }

    /// Wraps the commands in `MULTI`/`EXEC`, so Redis runs them as one transaction.
    pub fn atomic(&mut self) -> &mut Pipeline {
        self.atomic = true;
        self
    }

    /// How many commands have been added.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no command has been added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn push(&mut self, encode: impl FnOnce(&mut BytesMut) -> Result<(), Error>) -> &mut Pipeline {
        if self.error.is_none() {
            match encode(&mut self.out) {
                Ok(()) => self.count += 1,
                Err(e) => self.error = Some(e),
            }
        }
        self
    }

    /// Sends every command and returns one reply per command, in order.
    ///
    /// If any command got an error reply, returns that error (the first one) instead; the
    /// other commands still ran. The whole batch shares one command timeout.
    pub async fn run(self) -> Result<Vec<Value>, Error> {
        if let Some(e) = self.error {
            self.client.stats().failed(Failure::Client);
            return Err(e);
        }
        if self.count == 0 {
            return Ok(Vec::new());
        }
        let (body, count, atomic) = (self.out, self.count, self.atomic);
        let expected = if atomic { count + 2 } else { count };
        let mut replies = self
            .client
            .round_trip(|conn| {
                let (tx, rx) = oneshot::channel();
                let waiter = Waiter::Batch {
                    expected,
                    replies: Vec::with_capacity(expected),
                    tx,
                };
                conn.enqueue(
                    |out| {
                        if atomic {
                            encode(out, [b"MULTI".as_slice()].into_iter())?;
                        }
                        out.extend_from_slice(&body);
                        if atomic {
                            encode(out, [b"EXEC".as_slice()].into_iter())?;
                        }
                        Ok(())
                    },
                    waiter,
                )?;
                Ok(rx)
            })
            .await?;
        if let Some((i, Value::Error(message))) = replies
            .iter()
            .enumerate()
            .find(|(_, v)| matches!(v, Value::Error(_)))
        {
            self.client.stats().failed(Failure::Server);
            let error = reply_error(message);
            return Err(if atomic && i == expected - 1 {
                error
            } else {
                let index = if atomic { i.saturating_sub(1) } else { i };
                Error::new(
                    error.status(),
                    format!("{} (command {index})", error.message()),
                )
            });
        }
        if atomic {
            return match replies.pop() {
                Some(Value::Array(results)) => Ok(results),
                Some(Value::Nil) => {
                    // A watched key changed: the server refused to run the transaction.
                    self.client.stats().failed(Failure::Server);
                    Err(Error::internal("redis: transaction aborted"))
                }
                other => Err(unexpected("EXEC", &other.unwrap_or(Value::Nil))),
            };
        }
        Ok(replies)
    }
}
